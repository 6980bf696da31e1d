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

/// The documented output fields are present with their documented defaults.
fn assert_provisioning_fields(body: &Value, status: &str, what: &str) {
    let object = body.as_object().unwrap_or_else(|| panic!("{what}: {body}"));
    assert_eq!(
        object.get("serviceProvisioningStatus"),
        Some(&json!(status)),
        "{what}: {body}"
    );
    assert!(
        object.contains_key("serviceProvisioningErrors"),
        "{what}: serviceProvisioningErrors is missing: {body}"
    );
    if status != "failed" {
        assert!(
            body["serviceProvisioningErrors"].is_null(),
            "{what}: {body}"
        );
    }
}

/// The error shape: a status, `x-ms-error-code`, and `{ error: { code,
/// message, target } }`.
fn assert_error(
    (status, headers, body): &(StatusCode, reqwest::header::HeaderMap, Value),
    expected: StatusCode,
    code: &str,
) {
    assert_eq!(*status, expected, "{body}");
    assert_eq!(headers["x-ms-error-code"], code, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(body["error"]["message"].is_string(), "{body}");
}

fn keys(value: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = value
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    keys.sort_unstable();
    keys
}

/// Every example of the Provisioning API documentation, field by field.
#[tokio::test(flavor = "multi_thread")]
async fn documented_shapes_field_by_field() {
    let emulator = start(EmulatorConfig {
        seed: SeedSource::Demo,
        ..quick()
    })
    .await;
    let api = Api::new(&emulator);

    // Account for Direct Routing: configuration, callScreening's default,
    // subdomainStatus, numberCount, and the provisioning fields though
    // nothing syncs.
    let (status, _, body) = api
        .put(
            "/accounts/shape-dr",
            json!({ "correlationId": "crm-1", "serviceDetails": { "teamsDirectRouting": { "enabled": true, "configuration": { "subdomain": "shapedr", "subdomainTokens": { "region1Token": "t1", "region2Token": "t2" } } } } }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(
        keys(&body),
        [
            "correlationId",
            "name",
            "serviceDetails",
            "serviceProvisioningErrors",
            "serviceProvisioningStatus"
        ]
    );
    assert_eq!(body["name"], "shape-dr");
    assert_eq!(body["correlationId"], "crm-1");
    let dr = &body["serviceDetails"]["teamsDirectRouting"];
    assert_eq!(dr["enabled"], true);
    assert_eq!(dr["configuration"]["callScreening"], true);
    assert_eq!(dr["configuration"]["subdomain"], "shapedr");
    assert_eq!(
        dr["configuration"]["subdomainTokens"],
        json!({ "region1Token": "t1", "region2Token": "t2" })
    );
    assert_eq!(dr["subdomainStatus"], "notProvisioned");
    assert_eq!(dr["numberCount"], 0);
    assert_provisioning_fields(&body, "synced", "a Direct Routing account");

    // Operator Connect without sync, then with it.
    let (_, _, body) = api
        .put(
            "/accounts/shape-oc-nosync",
            json!({ "serviceDetails": { "teamsTenantId": "t-1", "teamsOperatorConnect": { "enabled": true, "syncEnabled": false } } }),
        )
        .await;
    assert_provisioning_fields(&body, "synced", "an account whose sync is off");
    assert_eq!(
        body["serviceDetails"]["teamsOperatorConnect"],
        json!({ "enabled": true, "syncEnabled": false, "numberCount": 0 })
    );
    assert_eq!(body["serviceDetails"]["teamsTenantId"], "t-1");
    let (_, _, body) = api.put("/accounts/shape-oc", oc_account()).await;
    assert_provisioning_fields(&body, "pending", "a syncing account, just written");

    // Numbers: Direct Routing only, and Operator Connect without an
    // assignmentStatus (the default shows) choosing Mobile, which Operator
    // Connect does not have.
    let (status, _, body) = api
        .put(
            "/accounts/shape-dr/numbers/+14255550111",
            json!({ "serviceDetails": { "teamsDirectRouting": { "enabled": true } }, "configuration": { "customSipHeader": "trunk-1" } }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(
        keys(&body),
        [
            "accountName",
            "configuration",
            "serviceDetails",
            "serviceProvisioningErrors",
            "serviceProvisioningStatus",
            "telephoneNumber"
        ]
    );
    assert_eq!(body["telephoneNumber"], "+14255550111");
    assert_eq!(body["accountName"], "shape-dr");
    assert_eq!(
        body["serviceDetails"],
        json!({ "teamsDirectRouting": { "enabled": true } })
    );
    assert_eq!(
        body["configuration"],
        json!({ "customSipHeader": "trunk-1" })
    );
    assert_provisioning_fields(&body, "synced", "a Direct Routing number");
    let mut number = oc_number("CallingUserAssignment");
    let oc = &mut number["serviceDetails"]["teamsOperatorConnect"];
    oc.as_object_mut().unwrap().remove("assignmentStatus");
    oc["configuration"]["choosableCapabilities"] = json!(["InboundCalling", "Mobile"]);
    oc["configuration"]["civicAddressId"] = json!("civic-1");
    oc["configuration"]["locationId"] = json!("loc-1");
    oc["configuration"]["displayedCountryCode"] = json!("GB");
    let (_, _, body) = api
        .put("/accounts/shape-oc/numbers/+442079460111", number)
        .await;
    assert_provisioning_fields(&body, "pending", "a syncing number, just written");
    let oc = &body["serviceDetails"]["teamsOperatorConnect"];
    assert_eq!(oc["enabled"], true);
    assert_eq!(oc["assignmentStatus"], "unassigned");
    assert_eq!(oc["configuration"]["usage"], "CallingUserAssignment");
    assert_eq!(oc["configuration"]["civicAddressId"], "civic-1");
    assert_eq!(oc["configuration"]["locationId"], "loc-1");
    assert_eq!(oc["configuration"]["displayedCountryCode"], "GB");
    assert_eq!(oc["configuration"]["allowTenantAddressUpdate"], true);
    assert_eq!(oc["configuration"]["acquiredCapabilities"], json!([]));
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (_, _, body) = api.get("/accounts/shape-oc/numbers/+442079460111").await;
    assert_provisioning_fields(&body, "synced", "a synced number");
    let config = &body["serviceDetails"]["teamsOperatorConnect"]["configuration"];
    assert_eq!(
        config["availableCapabilities"],
        json!(["InboundCalling", "OutboundCalling"])
    );
    assert_eq!(config["acquiredCapabilities"], json!(["InboundCalling"]));
    let (_, _, body) = api.get("/accounts/shape-oc").await;
    assert_provisioning_fields(&body, "synced", "a synced account");
    assert_eq!(
        body["serviceDetails"]["teamsOperatorConnect"]["numberCount"],
        1
    );

    // RFIs, and customerRelationship.status as a free string: the
    // documentation's own example.
    let (_, _, body) = api.get("/teamsRequestsForInformation").await;
    let rfi = &body["value"][0];
    for field in [
        "id",
        "tenantId",
        "accountName",
        "productContext",
        "operatorId",
        "status",
        "consentedOn",
        "lastModifiedOn",
        "consentedCountries",
        "contacts",
        "customerRelationship",
    ] {
        assert!(rfi.get(field).is_some(), "{field} missing from {rfi}");
    }
    assert_provisioning_fields(rfi, "synced", "an RFI in a list");
    assert_eq!(
        keys(&rfi["contacts"][0]),
        [
            "companyName",
            "companySize",
            "email",
            "fullName",
            "telephoneNumber"
        ]
    );
    let tenant = rfi["tenantId"].as_str().unwrap().to_owned();
    let path = format!("/teamsRequestsForInformation/{tenant}");
    let (status, _, body) = api
        .send(
            Method::PATCH,
            &path,
            Some(json!({ "customerRelationship": { "status": "new status", "comment": "new comment" } })),
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["customerRelationship"]["status"], "new status");
    assert_eq!(body["customerRelationship"]["comment"], "new comment");
    assert!(body["customerRelationship"]["lastModifiedOn"].is_string());
    assert_provisioning_fields(&body, "synced", "a patched RFI");
    let (_, _, body) = api.get(&path).await;
    assert_eq!(body["customerRelationship"]["status"], "new status");
    assert_provisioning_fields(&body, "synced", "an RFI");

    // Civic addresses and their locations.
    let (_, _, body) = api.get("/accounts/contoso/teamsCivicAddresses").await;
    let address = &body["value"][0];
    for field in [
        "id",
        "country",
        "houseNumber",
        "streetName",
        "cityOrTown",
        "postalOrZipCode",
        "description",
        "companyName",
        "defaultLocationId",
        "validationStatus",
        "tenantId",
        "partnerId",
        "locations",
    ] {
        assert!(
            address.get(field).is_some(),
            "{field} missing from {address}"
        );
    }
    assert_eq!(
        keys(&address["locations"][0]),
        ["civicAddressId", "description", "id", "isDefault"]
    );

    // Capability plans and available capabilities.
    let (_, _, body) = api
        .send(
            Method::POST,
            "/accounts/shape-oc:getTeamsCapabilityPlans",
            None,
            &[],
        )
        .await;
    for plan in body["capabilityPlans"].as_array().unwrap() {
        assert_eq!(
            keys(plan),
            [
                "choosableCapabilities",
                "mandatoryCapabilities",
                "name",
                "offerTypes",
                "supportsTollFree",
                "usage"
            ]
        );
    }
    let (_, _, body) = api
        .send(
            Method::POST,
            "/accounts/shape-oc:getTeamsAvailableCapabilities",
            Some(json!({ "numbers": [{ "telephoneNumber": "+442079460111" }] })),
            &[],
        )
        .await;
    assert_eq!(keys(&body), ["availableCapabilities"]);

    // List pages: value, nextLink, and the count when asked for.
    let (_, headers, body) = api.get("/accounts?maxpagesize=2&countRecords=true").await;
    assert_eq!(keys(&body), ["nextLink", "value"]);
    assert_eq!(body["value"].as_array().unwrap().len(), 2);
    assert!(body["nextLink"].as_str().unwrap().starts_with(&api.base));
    assert!(headers.contains_key("x-ms-record-count"));
    for account in body["value"].as_array().unwrap() {
        assert_provisioning_fields(account, "synced", "an account in a list");
    }
    let (_, _, body) = api.get("/accounts/shape-dr/numbers").await;
    assert_eq!(keys(&body), ["value"]);
    assert_provisioning_fields(&body["value"][0], "synced", "a number in a list");

    // The error shape.
    let error = api.get("/accounts/nobody").await;
    assert_error(&error, StatusCode::NOT_FOUND, "AccountNotFound");
    assert_eq!(error.2["error"]["target"], "accountName");
    emulator.stop().await.unwrap();
}

/// A strong ETag changes exactly when the representation does: with sync
/// status and numberCount, not only with writes.
#[tokio::test(flavor = "multi_thread")]
async fn etags_change_exactly_when_the_representation_does() {
    let emulator = start(quick()).await;
    let api = Api::new(&emulator);
    let (_, headers, body) = api.put("/accounts/e", oc_account()).await;
    assert_eq!(body["serviceProvisioningStatus"], "pending");
    let pending = headers["etag"].to_str().unwrap().to_owned();
    // While nothing changes: the same ETag, and 304.
    let (_, headers, _) = api.get("/accounts/e").await;
    assert_eq!(headers["etag"].to_str().unwrap(), pending);
    let (status, _, _) = api
        .send(
            Method::GET,
            "/accounts/e",
            None,
            &[("If-None-Match", &pending)],
        )
        .await;
    assert_eq!(status, StatusCode::NOT_MODIFIED);
    // Synced: the body changed, so the ETag did.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (status, headers, body) = api
        .send(
            Method::GET,
            "/accounts/e",
            None,
            &[("If-None-Match", &pending)],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["serviceProvisioningStatus"], "synced");
    let synced = headers["etag"].to_str().unwrap().to_owned();
    assert_ne!(synced, pending);
    let (status, _, _) = api
        .send(
            Method::GET,
            "/accounts/e",
            None,
            &[("If-None-Match", &synced)],
        )
        .await;
    assert_eq!(status, StatusCode::NOT_MODIFIED);
    // A write against what was read before the sync is refused.
    let (status, _, _) = api
        .send(
            Method::PUT,
            "/accounts/e",
            Some(oc_account()),
            &[("If-Match", &pending)],
        )
        .await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED);
    // numberCount changes with a number added elsewhere.
    let (status, _, body) = api
        .put(
            "/accounts/e/numbers/+442079460200",
            oc_number("ConferenceAssignment"),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let number_pending = api.get("/accounts/e/numbers/+442079460200").await.1["etag"]
        .to_str()
        .unwrap()
        .to_owned();
    let (status, headers, body) = api
        .send(
            Method::GET,
            "/accounts/e",
            None,
            &[("If-None-Match", &synced)],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["serviceDetails"]["teamsOperatorConnect"]["numberCount"],
        1
    );
    assert_ne!(headers["etag"].to_str().unwrap(), synced);
    // A number's ETag changes when its sync ends.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (status, headers, body) = api
        .send(
            Method::GET,
            "/accounts/e/numbers/+442079460200",
            None,
            &[("If-None-Match", &number_pending)],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["serviceProvisioningStatus"], "synced");
    assert_ne!(headers["etag"].to_str().unwrap(), number_pending);
    // An RFI's ETag changes with a PATCH and is kept by reads.
    let emulator_demo = start(EmulatorConfig {
        seed: SeedSource::Demo,
        ..quick()
    })
    .await;
    let demo = Api::new(&emulator_demo);
    let (_, _, list) = demo.get("/teamsRequestsForInformation").await;
    let path = format!(
        "/teamsRequestsForInformation/{}",
        list["value"][0]["tenantId"].as_str().unwrap()
    );
    let before = demo.get(&path).await.1["etag"].to_str().unwrap().to_owned();
    assert_eq!(demo.get(&path).await.1["etag"].to_str().unwrap(), before);
    let (_, headers, _) = demo
        .send(
            Method::PATCH,
            &path,
            Some(json!({ "customerRelationship": { "status": "in talks" } })),
            &[("If-Match", &before)],
        )
        .await;
    assert_ne!(headers["etag"].to_str().unwrap(), before);
    emulator_demo.stop().await.unwrap();
    emulator.stop().await.unwrap();
}

/// Rewriting an account with its Direct Routing setup unchanged keeps its
/// subdomain provisioned; changing the subdomain starts again.
#[tokio::test(flavor = "multi_thread")]
async fn direct_routing_status_survives_unrelated_writes() {
    let emulator = start(quick()).await;
    let api = Api::new(&emulator);
    let account = |correlation: &str, subdomain: &str| json!({ "correlationId": correlation, "serviceDetails": { "teamsDirectRouting": { "enabled": true, "configuration": { "subdomain": subdomain, "subdomainTokens": { "region1Token": "a", "region2Token": "b" } } } } });
    api.put("/accounts/dr", account("one", "sub1")).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (_, headers, body) = api.get("/accounts/dr").await;
    let status = |body: &Value| {
        body["serviceDetails"]["teamsDirectRouting"]["subdomainStatus"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(status(&body), "provisioned");
    let provisioned = headers["etag"].to_str().unwrap().to_owned();
    // The same body again: nothing changes, ETag included.
    let (_, headers, body) = api.put("/accounts/dr", account("one", "sub1")).await;
    assert_eq!(status(&body), "provisioned");
    assert_eq!(headers["etag"].to_str().unwrap(), provisioned);
    // Another field: still provisioned.
    let (_, _, body) = api.put("/accounts/dr", account("two", "sub1")).await;
    assert_eq!(status(&body), "provisioned");
    // Another subdomain: provisioned again from now.
    let (_, _, body) = api.put("/accounts/dr", account("two", "sub2")).await;
    assert_eq!(status(&body), "notProvisioned");
    emulator.stop().await.unwrap();
}

/// Over-long fields get 400 with the field as target and a short message.
#[tokio::test(flavor = "multi_thread")]
async fn over_long_ids_and_strings_are_refused() {
    let emulator = start(EmulatorConfig {
        seed: SeedSource::Demo,
        ..quick()
    })
    .await;
    let api = Api::new(&emulator);
    let long = |n: usize| "x".repeat(n);

    // The 102,908-character locationId the issue saw accepted.
    let mut number = oc_number("CallingUserAssignment");
    number["serviceDetails"]["teamsOperatorConnect"]["configuration"]["locationId"] =
        json!(long(102_908));
    let refused = api
        .put("/accounts/contoso/numbers/+442079460300", number)
        .await;
    assert_error(&refused, StatusCode::BAD_REQUEST, "InvalidRequestBody");
    assert_eq!(
        refused.2["error"]["target"],
        "serviceDetails.teamsOperatorConnect.configuration.locationId"
    );
    assert!(refused.2.to_string().len() < 2000, "a short answer");
    assert_eq!(emulator.stats().numbers, 0);

    let number_with = |path: &str, value: Value| {
        let mut number = oc_number("CallingUserAssignment");
        let mut at = &mut number;
        let parts: Vec<&str> = path.split('.').collect();
        for part in &parts[..parts.len() - 1] {
            at = &mut at[*part];
        }
        at[parts[parts.len() - 1]] = value;
        number
    };
    for (path, value) in [
        (
            "serviceDetails.teamsOperatorConnect.configuration.civicAddressId",
            json!(long(257)),
        ),
        (
            "serviceDetails.teamsOperatorConnect.configuration.choosableCapabilities",
            json!(vec!["InboundCalling"; 11]),
        ),
        ("configuration", json!({ "customSipHeader": long(101) })),
    ] {
        let target = if path == "configuration" {
            "configuration.customSipHeader"
        } else {
            path
        };
        let refused = api
            .put(
                "/accounts/contoso/numbers/+442079460301",
                number_with(path, value),
            )
            .await;
        assert_error(&refused, StatusCode::BAD_REQUEST, "InvalidRequestBody");
        assert_eq!(refused.2["error"]["target"], target, "{}", refused.2);
    }
    // A telephone number of 17 characters, in a batch.
    let mut too_long = oc_number("CallingUserAssignment");
    too_long["telephoneNumber"] = json!("+1234567890123456");
    let refused = api
        .send(
            Method::POST,
            "/accounts/contoso:createOrUpdateNumbers",
            Some(json!({ "numbers": [too_long] })),
            &[],
        )
        .await;
    assert_error(&refused, StatusCode::BAD_REQUEST, "InvalidRequestBody");
    assert_eq!(refused.2["error"]["target"], "numbers[0].telephoneNumber");

    // Accounts: name, correlationId, teamsTenantId, subdomain, tokens.
    let refused = api
        .put(
            &format!("/accounts/{}", long(101)),
            json!({ "serviceDetails": { "teamsDirectRouting": { "enabled": true } } }),
        )
        .await;
    assert_error(&refused, StatusCode::BAD_REQUEST, "InvalidRequestBody");
    assert_eq!(refused.2["error"]["target"], "name");
    for (account, target) in [
        (
            json!({ "correlationId": long(101), "serviceDetails": {} }),
            "correlationId",
        ),
        (
            json!({ "serviceDetails": { "teamsTenantId": long(257) } }),
            "serviceDetails.teamsTenantId",
        ),
        (
            json!({ "serviceDetails": { "teamsDirectRouting": { "enabled": true, "configuration": { "subdomain": long(11) } } } }),
            "serviceDetails.teamsDirectRouting.configuration.subdomain",
        ),
        (
            json!({ "serviceDetails": { "teamsDirectRouting": { "enabled": false, "configuration": { "subdomainTokens": { "region1Token": long(101) } } } } }),
            "serviceDetails.teamsDirectRouting.configuration.subdomainTokens.region1Token",
        ),
    ] {
        let refused = api.put("/accounts/long-fields", account).await;
        assert_error(&refused, StatusCode::BAD_REQUEST, "InvalidRequestBody");
        assert_eq!(refused.2["error"]["target"], target, "{}", refused.2);
    }

    // RFIs: status, comment, ticket id.
    let (_, _, list) = api.get("/teamsRequestsForInformation").await;
    let path = format!(
        "/teamsRequestsForInformation/{}",
        list["value"][0]["tenantId"].as_str().unwrap()
    );
    for (relationship, target) in [
        (
            json!({ "status": long(257) }),
            "customerRelationship.status",
        ),
        (
            json!({ "status": "x", "comment": long(1001) }),
            "customerRelationship.comment",
        ),
        (
            json!({ "status": "x", "ticketId": long(65) }),
            "customerRelationship.ticketId",
        ),
    ] {
        let refused = api
            .send(
                Method::PATCH,
                &path,
                Some(json!({ "customerRelationship": relationship })),
                &[],
            )
            .await;
        assert_error(&refused, StatusCode::BAD_REQUEST, "InvalidRequestBody");
        assert_eq!(refused.2["error"]["target"], target, "{}", refused.2);
    }
    emulator.stop().await.unwrap();
}

/// 415 for a body that is not JSON, 414 for an over-long URL, and a
/// connection whose headers never finish is closed.
#[tokio::test(flavor = "multi_thread")]
async fn media_types_long_urls_and_slow_headers() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let emulator = start(EmulatorConfig {
        header_timeout: Duration::from_millis(500),
        ..quick()
    })
    .await;
    let api = Api::new(&emulator);
    let account = r#"{"serviceDetails":{"teamsDirectRouting":{"enabled":true}}}"#;
    for content_type in [Some("text/plain"), None] {
        let mut request = api.http.put(api.url("/accounts/typed")).body(account);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert_eq!(
            response.headers()["x-ms-error-code"],
            "UnsupportedMediaType"
        );
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "UnsupportedMediaType");
    }
    let response = api
        .http
        .put(api.url("/accounts/typed"))
        .header("content-type", "application/json; charset=utf-8")
        .body(account)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(emulator.stats().accounts, 1);
    // The search API too.
    let response = api
        .http
        .post(format!(
            "{}/availablePhoneNumbers/countries/US/:search?api-version=2022-12-01",
            api.base
        ))
        .header("content-type", "text/plain")
        .body(r#"{"phoneNumberType":"tollFree","assignmentType":"application","capabilities":{"calling":"none","sms":"inbound"}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

    // A 1 MB URL on a new connection (HTTP clients refuse to send one: by
    // hand), and a 20 KB one on a reused one.
    let host = emulator.addr.to_string();
    let request = |path: &str| format!("GET {path} HTTP/1.1\r\nhost: {host}\r\n\r\n").into_bytes();
    let stream = tokio::net::TcpStream::connect(emulator.addr).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let huge = request(&format!("/accounts?x={}&{V}", "a".repeat(1 << 20)));
    let sender = tokio::spawn(async move {
        let _ = writer.write_all(&huge).await;
        writer
    });
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), reader.read_to_end(&mut answer)).await;
    drop(sender.await);
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 414"), "{answer}");
    assert!(answer.contains("x-ms-error-code: UriTooLong"), "{answer}");
    assert!(
        answer.contains(r#"{"error":{"code":"UriTooLong""#),
        "{answer}"
    );
    let mut stream = tokio::net::TcpStream::connect(emulator.addr).await.unwrap();
    stream
        .write_all(&request(&format!("/accounts?{V}")))
        .await
        .unwrap();
    stream
        .write_all(&request(&format!("/accounts?x={}&{V}", "a".repeat(20_000))))
        .await
        .unwrap();
    let mut answers = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        let mut chunk = [0u8; 4096];
        while let Ok(n) = stream.read(&mut chunk).await {
            if n == 0 {
                break;
            }
            answers.extend_from_slice(&chunk[..n]);
            if String::from_utf8_lossy(&answers).contains("UriTooLong\"") {
                break;
            }
        }
    })
    .await;
    let answers = String::from_utf8_lossy(&answers);
    assert!(answers.starts_with("HTTP/1.1 200"), "{answers}");
    assert!(answers.contains("HTTP/1.1 414"), "{answers}");

    // Headers that never finish, and a connection that sends nothing:
    // both closed after the header time-out.
    for opening in [
        format!("GET /accounts?{V} HTTP/1.1\r\nhost: {host}\r\n"),
        String::new(),
    ] {
        let mut stream = tokio::net::TcpStream::connect(emulator.addr).await.unwrap();
        stream.write_all(opening.as_bytes()).await.unwrap();
        let started = std::time::Instant::now();
        let mut rest = Vec::new();
        let read =
            tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut rest)).await;
        assert!(read.is_ok(), "the connection is still open after 5 s");
        assert!(started.elapsed() >= Duration::from_millis(400));
    }
    emulator.stop().await.unwrap();
}
