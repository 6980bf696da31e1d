//! The emulator answers the requests of the public documentation's examples
//! as the service does, and enforces each rule of the contract. Real HTTP
//! over loopback to an emulator each test starts on a free port.

use acgbulk::emulator::{Emulator, EmulatorConfig, Faults, SeedSource};
use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;

const V: &str = "api-version=2024-02-29";

async fn start(config: EmulatorConfig) -> Emulator {
    Emulator::start(config).await.expect("the emulator starts")
}

fn quick() -> EmulatorConfig {
    EmulatorConfig {
        rate_limit: None,
        sync_delay: Duration::from_millis(300),
        seed: SeedSource::Empty,
        ..EmulatorConfig::default()
    }
}

struct Api {
    http: Client,
    base: String,
}

impl Api {
    fn new(emulator: &Emulator) -> Api {
        Api {
            http: Client::builder().pool_max_idle_per_host(0).build().unwrap(),
            base: emulator.url.clone(),
        }
    }

    fn url(&self, path: &str) -> String {
        let sep = if path.contains('?') { '&' } else { '?' };
        format!("{}{path}{sep}{V}", self.base)
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let mut request = self.http.request(method, self.url(path));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("a response");
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, headers, body)
    }

    async fn get(&self, path: &str) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        self.send(Method::GET, path, None, &[]).await
    }

    async fn put(
        &self,
        path: &str,
        body: Value,
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        self.send(Method::PUT, path, Some(body), &[]).await
    }
}

fn oc_account() -> Value {
    json!({
        "correlationId": "crm-0042",
        "serviceDetails": {
            "teamsTenantId": "0f6f2e1e-3f0a-4a5e-9a53-8d7a3c6e2b11",
            "teamsOperatorConnect": { "enabled": true, "syncEnabled": true }
        }
    })
}

fn oc_number(usage: &str) -> Value {
    json!({
        "serviceDetails": {
            "teamsOperatorConnect": {
                "enabled": true,
                "assignmentStatus": "unassigned",
                "configuration": {
                    "usage": usage,
                    "choosableCapabilities": ["InboundCalling", "OutboundCalling"],
                    "allowTenantAddressUpdate": true
                }
            }
        }
    })
}

/// The documentation's walk-through, request by request.
#[tokio::test(flavor = "multi_thread")]
async fn documentation_examples() {
    let emulator = start(EmulatorConfig {
        seed: SeedSource::Demo,
        ..quick()
    })
    .await;
    let api = Api::new(&emulator);

    // Create an account for Direct Routing.
    let (status, headers, body) = api
        .put(
            "/accounts/example-dr",
            json!({
                "correlationId": "crm-0041",
                "serviceDetails": {
                    "teamsDirectRouting": {
                        "enabled": true,
                        "configuration": {
                            "callScreening": true,
                            "subdomain": "exampledr",
                            "subdomainTokens": { "region1Token": "AbC123-x", "region2Token": "dEf456_y" }
                        }
                    }
                }
            }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert!(headers.contains_key("etag"));
    assert_eq!(body["name"], "example-dr");
    assert_eq!(
        body["serviceDetails"]["teamsDirectRouting"]["subdomainStatus"],
        "notProvisioned"
    );
    assert_eq!(
        body["serviceDetails"]["teamsDirectRouting"]["numberCount"],
        0
    );

    // Create an account for Operator Connect.
    let (status, headers, body) = api.put("/accounts/example-oc", oc_account()).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["serviceProvisioningStatus"], "pending");
    let etag = headers["etag"].to_str().unwrap().to_owned();

    // Get it.
    let (status, headers, body) = api.get("/accounts/example-oc").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["etag"].to_str().unwrap(), etag);
    assert_eq!(body["correlationId"], "crm-0042");

    // Update it with its ETag.
    let mut update = oc_account();
    update["correlationId"] = json!("crm-0043");
    let (status, headers, body) = api
        .send(
            Method::PUT,
            "/accounts/example-oc",
            Some(update.clone()),
            &[("If-Match", &etag)],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_ne!(headers["etag"].to_str().unwrap(), etag);
    // The old ETag no longer matches.
    let (status, _, body) = api
        .send(
            Method::PUT,
            "/accounts/example-oc",
            Some(update),
            &[("If-Match", &etag)],
        )
        .await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED, "{body}");
    assert_eq!(body["error"]["code"], "PreconditionFailed");

    // Add a number; its backend sync is pending.
    let (status, headers, body) = api
        .put(
            "/accounts/example-oc/numbers/%2B442079460100",
            oc_number("CallingUserAssignment"),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert!(headers.contains_key("etag"));
    assert_eq!(body["telephoneNumber"], "+442079460100");
    assert_eq!(body["accountName"], "example-oc");
    assert_eq!(body["serviceProvisioningStatus"], "pending");

    // The failing number: an empty usage is accepted, then fails in sync.
    let (status, _, body) = api
        .put("/accounts/example-oc/numbers/+442079460101", oc_number(""))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["serviceProvisioningStatus"], "pending");

    // Check their status later.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (_, _, body) = api
        .get("/accounts/example-oc/numbers/%2B442079460100")
        .await;
    assert_eq!(body["serviceProvisioningStatus"], "synced");
    assert_eq!(
        body["serviceDetails"]["teamsOperatorConnect"]["configuration"]["acquiredCapabilities"],
        json!(["InboundCalling", "OutboundCalling"])
    );
    let (_, _, body) = api.get("/accounts/example-oc/numbers/+442079460101").await;
    assert_eq!(body["serviceProvisioningStatus"], "failed");
    assert_eq!(
        body["serviceProvisioningErrors"],
        json!([{ "code": "InvalidRequest", "message": "Invalid/missing required configuration attributes: Usage", "target": "oc" }])
    );
    let (_, _, body) = api.get("/accounts/example-oc").await;
    assert_eq!(body["serviceProvisioningStatus"], "synced");
    assert_eq!(
        body["serviceDetails"]["teamsOperatorConnect"]["numberCount"],
        2
    );
    let (_, _, body) = api.get("/accounts/example-dr").await;
    assert_eq!(
        body["serviceDetails"]["teamsDirectRouting"]["subdomainStatus"],
        "provisioned"
    );

    // Update a number.
    let (status, _, body) = api
        .put(
            "/accounts/example-oc/numbers/+442079460101",
            oc_number("ConferenceAssignment"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["serviceDetails"]["teamsOperatorConnect"]["configuration"]["usage"],
        "ConferenceAssignment"
    );

    // List RFIs and patch one.
    let (status, _, body) = api.get("/teamsRequestsForInformation").await;
    assert_eq!(status, StatusCode::OK);
    let rfis = body["value"].as_array().unwrap();
    assert!(!rfis.is_empty());
    let tenant = rfis[0]["tenantId"].as_str().unwrap().to_owned();
    assert_eq!(rfis[0]["productContext"], "teams");
    assert!(rfis[0]["contacts"][0]["email"].is_string());
    let (status, _, body) = api
        .send(
            Method::PATCH,
            &format!("/teamsRequestsForInformation/{tenant}"),
            Some(json!({ "customerRelationship": { "status": "agreementSigned", "comment": "signed 2026-11-20" } })),
            &[],
        )
        .await;
    assert!(
        status == StatusCode::OK || status == StatusCode::CREATED,
        "{status} {body}"
    );
    assert_eq!(body["customerRelationship"]["status"], "agreementSigned");
    assert!(body["customerRelationship"]["lastModifiedOn"].is_string());
    let (status, _, body) = api
        .send(
            Method::PATCH,
            &format!("/teamsRequestsForInformation/{tenant}"),
            Some(json!({ "customerRelationship": { "status": "consentDeclined" } })),
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["details"][0]["code"], "CommentRequired");

    // List numbers, of the account and of the gateway.
    let (status, _, body) = api.get("/accounts/example-oc/numbers").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["value"].as_array().unwrap().len(), 2);
    let (_, _, body) = api.get("/numbers").await;
    assert_eq!(body["value"].as_array().unwrap().len(), 2);

    // List civic addresses and get one.
    let (status, _, body) = api.get("/accounts/contoso/teamsCivicAddresses").await;
    assert_eq!(status, StatusCode::OK);
    let id = body["value"][0]["id"].as_str().unwrap().to_owned();
    assert!(!body["value"][0]["locations"].as_array().unwrap().is_empty());
    let (status, headers, body) = api
        .get(&format!("/accounts/contoso/teamsCivicAddresses/{id}"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers.contains_key("etag"));
    assert_eq!(body["id"], id.as_str());

    // Capability plans and available capabilities.
    let (status, _, body) = api
        .send(
            Method::POST,
            "/accounts/example-oc:getTeamsCapabilityPlans",
            None,
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(body["capabilityPlans"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["usage"] == "CallingUserAssignment"));
    let (status, _, body) = api
        .send(
            Method::POST,
            "/accounts/example-oc:getTeamsAvailableCapabilities",
            Some(json!({ "numbers": [{ "telephoneNumber": "+442079460100" }] })),
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(body["availableCapabilities"]
        .as_array()
        .unwrap()
        .contains(&json!("InboundCalling")));

    // Delete a number, then the account that no longer holds numbers... but
    // not while it still holds one.
    let (status, _, _) = api
        .send(
            Method::DELETE,
            "/accounts/example-oc/numbers/+442079460100",
            None,
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _, _) = api.get("/accounts/example-oc/numbers/+442079460100").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, body) = api
        .send(Method::DELETE, "/accounts/example-oc", None, &[])
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error"]["code"], "AccountHasNumbers");
    let (status, _, _) = api
        .send(
            Method::DELETE,
            "/accounts/example-oc?deleteNumbers=true",
            None,
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(emulator.stats().numbers, 0);
    emulator.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn checks_fields_services_accounts_and_versions() {
    let emulator = start(quick()).await;
    let api = Api::new(&emulator);
    let (status, _, _) = api
        .put(
            "/accounts/dr-only",
            json!({ "serviceDetails": { "teamsDirectRouting": { "enabled": true } } }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);

    // A wrong or missing api-version.
    let response = api
        .http
        .get(format!("{}/accounts?api-version=2023-01-01", api.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        response.headers()["x-ms-error-code"],
        "InvalidApiVersionParameter"
    );
    let response = api
        .http
        .get(format!("{}/accounts", api.base))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["x-ms-error-code"],
        "MissingApiVersionParameter"
    );

    // Unknown account.
    let (status, headers, body) = api
        .put(
            "/accounts/nobody/numbers/+14255550100",
            oc_number("CallingUserAssignment"),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(headers["x-ms-error-code"], "AccountNotFound");
    assert_eq!(body["error"]["code"], "AccountNotFound");

    // A service the account has not enabled.
    let (status, _, body) = api
        .put(
            "/accounts/dr-only/numbers/+14255550100",
            oc_number("CallingUserAssignment"),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["error"]["details"][0]["code"],
        "ServiceNotEnabledOnAccount"
    );
    assert_eq!(
        body["error"]["details"][0]["target"],
        "serviceDetails.teamsOperatorConnect"
    );

    // Field formats and enumerations, with the field's path as target.
    let mut bad = oc_number("Calling");
    bad["serviceDetails"]["teamsDirectRouting"] = json!({ "enabled": true });
    bad["serviceDetails"]["teamsOperatorConnect"]["configuration"]["choosableCapabilities"] =
        json!(["Fax"]);
    bad["configuration"] = json!({ "customSipHeader": "not allowed!" });
    let (status, headers, body) = api
        .send(Method::POST, "/accounts/dr-only:createOrUpdateNumbers", Some(json!({ "numbers": [ { "telephoneNumber": "+1425555010x" }, { "telephoneNumber": "+14255550101", "serviceDetails": bad["serviceDetails"], "configuration": bad["configuration"] } ] })), &[])
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(headers["x-ms-error-code"], "InvalidRequestBody");
    let targets: Vec<&str> = body["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["target"].as_str().unwrap())
        .collect();
    for expected in [
        "numbers[0].telephoneNumber",
        "numbers[1].serviceDetails.teamsOperatorConnect.configuration.usage",
        "numbers[1].serviceDetails.teamsOperatorConnect.configuration.choosableCapabilities[0]",
        "numbers[1].configuration.customSipHeader",
    ] {
        assert!(
            targets.contains(&expected),
            "{expected} missing from {targets:?}"
        );
    }
    assert_eq!(
        emulator.stats().numbers,
        0,
        "a batch with a bad number applies nothing"
    );

    // A body that is not JSON of the right shape.
    let (status, _, body) = api
        .send(
            Method::POST,
            "/accounts/dr-only:createOrUpdateNumbers",
            Some(json!({ "numbers": "x" })),
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["target"], "numbers");

    // More than 100 numbers in a batch.
    let many: Vec<Value> = (0..101).map(|i| json!({ "telephoneNumber": format!("+1425555{i:04}"), "serviceDetails": { "teamsDirectRouting": { "enabled": true } } })).collect();
    let (status, headers, _) = api
        .send(
            Method::POST,
            "/accounts/dr-only:createOrUpdateNumbers",
            Some(json!({ "numbers": many })),
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(headers["x-ms-error-code"], "TooManyNumbers");
    let (status, _, _) = api
        .send(
            Method::POST,
            "/accounts/dr-only:deleteNumbers",
            Some(json!({ "numbers": many })),
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // A number belongs to one account.
    let (status, _, _) = api
        .put(
            "/accounts/other",
            json!({ "serviceDetails": { "teamsDirectRouting": { "enabled": true } } }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let dr = json!({ "serviceDetails": { "teamsDirectRouting": { "enabled": true } } });
    assert_eq!(
        api.put("/accounts/dr-only/numbers/+14255550102", dr.clone())
            .await
            .0,
        StatusCode::CREATED
    );
    let (status, _, body) = api
        .put("/accounts/other/numbers/+14255550102", dr.clone())
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error"]["code"], "NumberInAnotherAccount");

    // A service cannot be disabled while numbers use it.
    let (status, _, body) = api
        .put(
            "/accounts/dr-only",
            json!({ "serviceDetails": { "zoomPhoneCloudPeering": { "enabled": true } } }),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["details"][0]["code"], "ServiceInUse");

    // Unknown paths and actions.
    let (status, _, body) = api.get("/nothing/here").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "NotFound");
    let (status, _, _) = api
        .send(
            Method::POST,
            "/accounts/dr-only:explode",
            Some(json!({})),
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    emulator.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn etags_and_conditional_requests() {
    let emulator = start(quick()).await;
    let api = Api::new(&emulator);
    let account = json!({ "serviceDetails": { "teamsDirectRouting": { "enabled": true } } });
    let (status, headers, _) = api
        .send(
            Method::PUT,
            "/accounts/a",
            Some(account.clone()),
            &[("If-None-Match", "*")],
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let etag = headers["etag"].to_str().unwrap().to_owned();
    // Create-only on an existing resource: 409 (as the contract documents).
    let (status, _, body) = api
        .send(
            Method::PUT,
            "/accounts/a",
            Some(account.clone()),
            &[("If-None-Match", "*")],
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error"]["code"], "ResourceAlreadyExists");
    // A read with the current ETag: 304.
    let (status, _, _) = api
        .send(
            Method::GET,
            "/accounts/a",
            None,
            &[("If-None-Match", &etag)],
        )
        .await;
    assert_eq!(status, StatusCode::NOT_MODIFIED);
    // If-Match on a resource that does not exist: 412.
    let (status, _, _) = api
        .send(
            Method::PUT,
            "/accounts/b",
            Some(account.clone()),
            &[("If-Match", &etag)],
        )
        .await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED);
    // If-Unmodified-Since in the past: 412; in the future: applied.
    let past = httpdate::fmt_http_date(std::time::SystemTime::now() - Duration::from_secs(3600));
    let future = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(3600));
    assert_eq!(
        api.send(
            Method::PUT,
            "/accounts/a",
            Some(account.clone()),
            &[("If-Unmodified-Since", &past)]
        )
        .await
        .0,
        StatusCode::PRECONDITION_FAILED
    );
    assert_eq!(
        api.send(
            Method::PUT,
            "/accounts/a",
            Some(account.clone()),
            &[("If-Unmodified-Since", &future)]
        )
        .await
        .0,
        StatusCode::OK
    );
    assert_eq!(
        api.send(
            Method::GET,
            "/accounts/a",
            None,
            &[("If-Modified-Since", &future)]
        )
        .await
        .0,
        StatusCode::NOT_MODIFIED
    );
    // Numbers: ETag on read and write, If-Match on delete.
    let dr = json!({ "serviceDetails": { "teamsDirectRouting": { "enabled": true } } });
    let (_, headers, _) = api
        .put("/accounts/a/numbers/+14255550100", dr.clone())
        .await;
    let number_etag = headers["etag"].to_str().unwrap().to_owned();
    // Writing the same again changes nothing, ETag included.
    let (status, headers, _) = api
        .put("/accounts/a/numbers/+14255550100", dr.clone())
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["etag"].to_str().unwrap(), number_etag);
    let mut changed = dr.clone();
    changed["configuration"] = json!({ "customSipHeader": "trunk-2" });
    let (_, headers, _) = api.put("/accounts/a/numbers/+14255550100", changed).await;
    assert_ne!(headers["etag"].to_str().unwrap(), number_etag);
    let (status, _, _) = api
        .send(
            Method::DELETE,
            "/accounts/a/numbers/+14255550100",
            None,
            &[("If-Match", &number_etag)],
        )
        .await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED);
    let (_, headers, _) = api.get("/accounts/a/numbers/+14255550100").await;
    let current = headers["etag"].to_str().unwrap().to_owned();
    let (status, _, _) = api
        .send(
            Method::DELETE,
            "/accounts/a/numbers/+14255550100",
            None,
            &[("If-Match", &current)],
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    emulator.stop().await.unwrap();
}

fn dr_batch(from: u64, count: u64) -> Value {
    let numbers: Vec<Value> = (from..from + count)
        .map(|n| json!({ "telephoneNumber": format!("+{n}"), "serviceDetails": { "teamsDirectRouting": { "enabled": true } } }))
        .collect();
    json!({ "numbers": numbers })
}

#[tokio::test(flavor = "multi_thread")]
async fn repeatability_applies_once_replays_and_rejects() {
    let emulator = start(EmulatorConfig {
        seed: SeedSource::Demo,
        ..quick()
    })
    .await;
    let api = Api::new(&emulator);
    let first_sent = httpdate::fmt_http_date(std::time::SystemTime::now());
    let id = "6d1a7c7e-3b8e-4a8e-9d55-0d7c9a1f0001";
    let headers = [
        ("Repeatability-Request-ID", id),
        ("Repeatability-First-Sent", first_sent.as_str()),
    ];
    let (status, h1, body1) = api
        .send(
            Method::POST,
            "/accounts/contoso:createOrUpdateNumbers",
            Some(dr_batch(14255550100, 10)),
            &headers,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body1}");
    assert_eq!(h1["repeatability-result"], "accepted");
    let before = emulator.stats();
    assert_eq!(before.counters.writes_applied, 1);
    // The same id and body: the remembered answer, not applied again.
    let (status, h2, body2) = api
        .send(
            Method::POST,
            "/accounts/contoso:createOrUpdateNumbers",
            Some(dr_batch(14255550100, 10)),
            &headers,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(h2["repeatability-result"], "accepted");
    assert_eq!(body1, body2);
    let after = emulator.stats();
    assert_eq!(after.counters.writes_applied, 1);
    assert_eq!(after.counters.repeats_replayed, 1);
    assert_eq!(after.max_writes_per_number, 1);
    // The same id with another body: rejected.
    let (status, h3, body3) = api
        .send(
            Method::POST,
            "/accounts/contoso:createOrUpdateNumbers",
            Some(dr_batch(14255550100, 11)),
            &headers,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(h3["repeatability-result"], "rejected");
    assert_eq!(body3["error"]["code"], "RepeatabilityRequestIdReused");
    assert_eq!(emulator.stats().numbers, 10);
    // An id whose first-sent date is older than the window, never seen.
    let old =
        httpdate::fmt_http_date(std::time::SystemTime::now() - Duration::from_secs(3 * 24 * 3600));
    let (status, _, body) = api
        .send(
            Method::POST,
            "/accounts/contoso:deleteNumbers",
            Some(json!({ "numbers": [{ "telephoneNumber": "+14255550100" }] })),
            &[
                ("Repeatability-Request-ID", "old-id"),
                ("Repeatability-First-Sent", &old),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], "RepeatabilityFirstSentTooOld");
    emulator.stop().await.unwrap();

    // Ids are forgotten after the window.
    let emulator = start(EmulatorConfig {
        seed: SeedSource::Demo,
        repeatability_window: Duration::from_millis(200),
        ..quick()
    })
    .await;
    let api = Api::new(&emulator);
    let headers = [("Repeatability-Request-ID", "short-lived")];
    api.send(
        Method::POST,
        "/accounts/contoso:createOrUpdateNumbers",
        Some(dr_batch(14255550100, 2)),
        &headers,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (status, _, _) = api
        .send(
            Method::POST,
            "/accounts/contoso:createOrUpdateNumbers",
            Some(dr_batch(14255550100, 3)),
            &headers,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "a forgotten id is new again");
    emulator.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn paging_through_thousands_of_numbers() {
    let emulator = start(EmulatorConfig {
        seed: SeedSource::Demo,
        default_page_size: 100,
        max_page_size: 500,
        ..quick()
    })
    .await;
    let api = Api::new(&emulator);
    for batch in 0..30 {
        let (status, _, _) = api
            .send(
                Method::POST,
                "/accounts/fabrikam:createOrUpdateNumbers",
                Some(dr_batch(14255500000 + batch * 100, 100)),
                &[],
            )
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    // Follow nextLink as given; countRecords on every page.
    let mut url = format!(
        "{}/accounts/fabrikam/numbers?{V}&maxpagesize=700&countRecords=true",
        api.base
    );
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let response = api.http.get(&url).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["x-ms-record-count"], "3000");
        let body: Value = response.json().await.unwrap();
        let value = body["value"].as_array().unwrap();
        assert!(
            value.len() <= 500,
            "the server caps the page at its maximum"
        );
        seen.extend(
            value
                .iter()
                .map(|n| n["telephoneNumber"].as_str().unwrap().to_owned()),
        );
        pages += 1;
        match body["nextLink"].as_str() {
            Some(next) => url = next.to_owned(),
            None => break,
        }
    }
    assert_eq!(pages, 6);
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 3000);
    assert_eq!(sorted, seen, "a stable order");

    // Default page size, top and skip.
    let (_, _, body) = api.get("/numbers").await;
    assert_eq!(body["value"].as_array().unwrap().len(), 100);
    let (_, _, body) = api.get("/numbers?top=150&skip=10&maxpagesize=100").await;
    assert_eq!(body["value"][0]["telephoneNumber"], "+14255500010");
    let next = body["nextLink"].as_str().unwrap().to_owned();
    let body: Value = api
        .http
        .get(&next)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        body["value"].as_array().unwrap().len(),
        50,
        "top counts across pages"
    );
    assert!(body.get("nextLink").is_none());

    // A number added behind an open cursor does not repeat or hide others.
    let (_, _, first) = api.get("/numbers?maxpagesize=1000").await;
    api.send(
        Method::POST,
        "/accounts/fabrikam:createOrUpdateNumbers",
        Some(dr_batch(14255400000, 1)),
        &[],
    )
    .await;
    let rest: Value = api
        .http
        .get(first["nextLink"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(rest["value"][0]["telephoneNumber"], "+14255500500");
    let (status, _, _) = api.get("/numbers?maxpagesize=abc").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    emulator.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn rate_limit_answers_429_with_a_correct_retry_after() {
    let emulator = start(EmulatorConfig {
        seed: SeedSource::Demo,
        rate_limit: Some(120),
        ..quick()
    })
    .await;
    let api = Api::new(&emulator);
    // The bucket holds a minute's worth; then one every half second.
    let mut ok = 0;
    let mut throttled = None;
    for _ in 0..130 {
        let response = api
            .http
            .get(format!("{}/accounts/contoso?{V}", api.base))
            .send()
            .await
            .unwrap();
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            throttled = Some(response);
            break;
        }
        ok += 1;
    }
    assert_eq!(ok, 120);
    let response = throttled.expect("throttled past the limit");
    assert_eq!(response.headers()["x-ms-error-code"], "TooManyRequests");
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        retry_after, 1,
        "one request a half second: retry within a second"
    );
    let response = api
        .http
        .get(format!("{}/accounts/contoso?{V}", api.base))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "still throttled at once"
    );
    tokio::time::sleep(Duration::from_secs(retry_after)).await;
    let response = api
        .http
        .get(format!("{}/accounts/contoso?{V}", api.base))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "after Retry-After the request goes through"
    );
    // Stats are never rate limited.
    let stats: Value = api
        .http
        .get(format!("{}/_emulator/stats", api.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["throttled"], 2);
    assert_eq!(stats["requests"], 123);
    emulator.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn injected_faults_and_dropped_connections() {
    let emulator = start(EmulatorConfig {
        seed: SeedSource::Demo,
        faults: Faults {
            seed: 7,
            fault_rate: 1.0,
            ..Faults::default()
        },
        ..quick()
    })
    .await;
    let api = Api::new(&emulator);
    let mut codes = std::collections::BTreeSet::new();
    for _ in 0..20 {
        let (status, _, _) = api
            .send(
                Method::POST,
                "/accounts/contoso:createOrUpdateNumbers",
                Some(dr_batch(14255550100, 1)),
                &[],
            )
            .await;
        codes.insert(status.as_u16());
    }
    assert_eq!(codes, [500, 503].into_iter().collect());
    let stats = emulator.stats();
    assert_eq!(stats.counters.faults_injected, 20);
    assert_eq!(stats.numbers, 0, "faults answer before applying");
    emulator.stop().await.unwrap();

    let emulator = start(EmulatorConfig {
        seed: SeedSource::Demo,
        faults: Faults {
            seed: 7,
            drop_after_commit_rate: 1.0,
            ..Faults::default()
        },
        ..quick()
    })
    .await;
    let api = Api::new(&emulator);
    let result = api
        .http
        .post(format!(
            "{}/accounts/contoso:createOrUpdateNumbers?{V}",
            api.base
        ))
        .header("Repeatability-Request-ID", "dropped-1")
        .json(&dr_batch(14255550100, 5))
        .send()
        .await;
    let error = result.expect_err("the connection is closed with no answer");
    assert!(
        error.is_request() || error.is_connect() || error.to_string().contains("connection"),
        "{error:?}"
    );
    let stats = emulator.stats();
    assert_eq!(stats.numbers, 5, "the write was applied");
    assert_eq!(stats.counters.dropped_after_commit, 1);
    // Reads are never dropped.
    assert_eq!(api.get("/accounts/contoso/numbers").await.0, StatusCode::OK);
    emulator.stop().await.unwrap();

    // Latency.
    let emulator = start(EmulatorConfig {
        faults: Faults {
            latency: Duration::from_millis(200),
            ..Faults::default()
        },
        ..quick()
    })
    .await;
    let api = Api::new(&emulator);
    let started = std::time::Instant::now();
    api.get("/accounts").await;
    assert!(started.elapsed() >= Duration::from_millis(200));
    emulator.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn ip_allowlist_refuses_other_addresses() {
    let emulator = start(EmulatorConfig {
        allowed_ips: vec![acgbulk::emulator::IpNet::parse("10.0.0.0/8").unwrap()],
        ..quick()
    })
    .await;
    let api = Api::new(&emulator);
    let (status, headers, body) = api.get("/accounts").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(headers["x-ms-error-code"], "ClientIpAddressNotAllowed");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("127.0.0.1"));
    emulator.stop().await.unwrap();
}
