//! The emulator as a process (first line, signals, state across restarts),
//! with Entra ID tokens and roles, and over TLS.

mod common;

use acgbulk::emulator::auth::Client as AppClient;
use acgbulk::emulator::{Emulator, EmulatorConfig, SeedSource, TlsSource};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const V: &str = "api-version=2024-02-29";

/// Starts `acgbulk emulator ARGS` and returns it with the URL from its
/// first line.
fn spawn(args: &[&str]) -> (Child, String) {
    let mut child = Command::new(common::bin())
        .arg("emulator")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the emulator starts");
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    let line = line.trim_end().to_owned();
    let url = line
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("first line was {line:?}"))
        .to_owned();
    let port: u16 = url
        .strip_prefix("http://127.0.0.1:")
        .expect("http://127.0.0.1:PORT")
        .parse()
        .expect("a port");
    assert_ne!(port, 0, "the real port is printed");
    (child, url)
}

fn terminate(mut child: Child) -> i32 {
    // SAFETY: signalling our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    child.wait().unwrap().code().unwrap_or(-1)
}

#[test]
fn state_survives_a_restart() {
    let dir = common::tempdir();
    let state = dir.path().join("state.json");
    let state = state.to_str().unwrap();
    let args = [
        "--listen",
        "127.0.0.1:0",
        "--state",
        state,
        "--empty",
        "--rate-limit",
        "off",
        "--sync-delay",
        "50ms",
    ];
    let (child, url) = spawn(&args);
    let http = reqwest::blocking::Client::new();
    let response = http
        .put(format!("{url}/accounts/kept?{V}"))
        .json(&json!({ "serviceDetails": { "teamsDirectRouting": { "enabled": true } } }))
        .send()
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let batch = json!({ "numbers": [
        { "telephoneNumber": "+14255550100", "serviceDetails": { "teamsDirectRouting": { "enabled": true } } },
        { "telephoneNumber": "+14255550101", "serviceDetails": { "teamsDirectRouting": { "enabled": true } } }
    ] });
    let response = http
        .post(format!("{url}/accounts/kept:createOrUpdateNumbers?{V}"))
        .header("Repeatability-Request-ID", "survives-restart")
        .json(&batch)
        .send()
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let etag = http
        .get(format!("{url}/accounts/kept/numbers/%2B14255550100?{V}"))
        .send()
        .unwrap()
        .headers()["etag"]
        .clone();
    assert_eq!(terminate(child), 0, "a clean stop on SIGTERM");
    assert!(std::fs::metadata(state).unwrap().len() > 0);

    let (child, url) = spawn(&args);
    let response = http
        .get(format!("{url}/accounts/kept/numbers?{V}"))
        .send()
        .unwrap();
    let body: Value = response.json().unwrap();
    assert_eq!(body["value"].as_array().unwrap().len(), 2);
    let again = http
        .get(format!("{url}/accounts/kept/numbers/%2B14255550100?{V}"))
        .send()
        .unwrap();
    assert_eq!(again.headers()["etag"], etag, "ETags survive");
    // The repeatability id is remembered across the restart.
    let response = http
        .post(format!("{url}/accounts/kept:createOrUpdateNumbers?{V}"))
        .header("Repeatability-Request-ID", "survives-restart")
        .json(&batch)
        .send()
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let stats: Value = http
        .get(format!("{url}/_emulator/stats"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(stats["repeatsReplayed"], 1);
    assert_eq!(stats["maxWritesPerNumber"], 1);
    // A new write after the restart gets a new, larger ETag.
    http.put(format!("{url}/accounts/kept/numbers/%2B14255550102?{V}"))
        .json(&json!({ "serviceDetails": { "teamsDirectRouting": { "enabled": true } } }))
        .send()
        .unwrap();
    assert_eq!(terminate(child), 0);
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(state).unwrap()).unwrap();
    assert_eq!(saved["numbers"].as_array().unwrap().len(), 3);
    assert!(saved["repeatability"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["id"] == "survives-restart"));
}

/// The `listening on` line is the emulator's promise that it is ready, so
/// a SIGTERM sent the moment that line is read must stop it cleanly and
/// save its state; before the signal handlers were installed ahead of that
/// line, such a SIGTERM killed it outright (and CI once caught it).
#[test]
fn a_sigterm_as_soon_as_it_is_ready_still_saves_the_state() {
    let dir = common::tempdir();
    for attempt in 0..10 {
        let state = dir.path().join(format!("state-{attempt}.json"));
        let (child, _url) = spawn(&[
            "--listen",
            "127.0.0.1:0",
            "--state",
            state.to_str().unwrap(),
            "--empty",
        ]);
        assert_eq!(terminate(child), 0, "attempt {attempt}: a clean stop");
        assert!(state.exists(), "attempt {attempt}: the state is saved");
    }
}

#[test]
fn bad_options_exit_2_with_a_message() {
    let run = common::run(
        std::path::Path::new("."),
        &["emulator", "--rate-limit", "lots"],
    );
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("not a rate"), "{}", run.stderr);
    let run = common::run(
        std::path::Path::new("."),
        &["emulator", "--auth", "entra", "--listen", "127.0.0.1:0"],
    );
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("--client"), "{}", run.stderr);
    let run = common::run(
        std::path::Path::new("."),
        &["emulator", "--listen", "127.0.0.1:0", "--fault-rate", "2"],
    );
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("between 0 and 1"), "{}", run.stderr);
}

async fn token(
    http: &reqwest::Client,
    url: &str,
    client: &str,
    secret: &str,
) -> (StatusCode, Value) {
    let response = http
        .post(format!("{url}/tenant-1/oauth2/v2.0/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", client),
            ("client_secret", secret),
            (
                "scope",
                "https://func-voiceservice-rp-prod-eastuseuap.azurewebsites.net/.default",
            ),
        ])
        .send()
        .await
        .unwrap();
    (response.status(), response.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_roles_and_expiry() {
    let emulator = Emulator::start(EmulatorConfig {
        rate_limit: None,
        clients: Some(vec![
            AppClient::parse_secret("reader:read-secret:Read").unwrap(),
            AppClient::parse_secret("writer:write-secret:Read,Write").unwrap(),
            AppClient::parse_secret("admin:admin-secret:Admin").unwrap(),
        ]),
        token_lifetime: Duration::from_secs(2),
        ..EmulatorConfig::default()
    })
    .await
    .unwrap();
    let url = emulator.url.clone();
    let http = reqwest::Client::new();

    // No token, a bad secret, an unknown client.
    let response = http
        .get(format!("{url}/accounts?{V}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Bearer"));
    let (status, body) = token(&http, &url, "reader", "wrong").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "invalid_client");
    let (status, _) = token(&http, &url, "stranger", "x").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // A reader reads but may not write; a writer writes but may not delete.
    let (status, body) = token(&http, &url, "reader", "read-secret").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 2);
    let reader = format!("Bearer {}", body["access_token"].as_str().unwrap());
    let claims: Value = {
        let payload = body["access_token"]
            .as_str()
            .unwrap()
            .split('.')
            .nth(1)
            .unwrap();
        use base64::Engine;
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .unwrap(),
        )
        .unwrap()
    };
    assert_eq!(claims["roles"], json!(["ProvisioningAPI.Read"]));
    assert_eq!(
        claims["aud"],
        "https://func-voiceservice-rp-prod-eastuseuap.azurewebsites.net"
    );
    assert!(claims["exp"].as_u64().unwrap() > claims["iat"].as_u64().unwrap());
    let response = http
        .get(format!("{url}/accounts/contoso?{V}"))
        .header("Authorization", &reader)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let dr = json!({ "serviceDetails": { "teamsDirectRouting": { "enabled": true } } });
    let response = http
        .put(format!("{url}/accounts/contoso/numbers/%2B14255550100?{V}"))
        .header("Authorization", &reader)
        .json(&dr)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let body: Value = response.json().await.unwrap();
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("ProvisioningAPI.Write"));

    let (_, body) = token(&http, &url, "writer", "write-secret").await;
    let writer = format!("Bearer {}", body["access_token"].as_str().unwrap());
    let response = http
        .put(format!("{url}/accounts/contoso/numbers/%2B14255550100?{V}"))
        .header("Authorization", &writer)
        .json(&dr)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let response = http
        .post(format!("{url}/accounts/contoso:deleteNumbers?{V}"))
        .header("Authorization", &writer)
        .json(&json!({ "numbers": [{ "telephoneNumber": "+14255550100" }] }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::FORBIDDEN,
        "the batch delete needs Delete"
    );
    let (_, body) = token(&http, &url, "admin", "admin-secret").await;
    let admin = format!("Bearer {}", body["access_token"].as_str().unwrap());
    let response = http
        .post(format!("{url}/accounts/contoso:deleteNumbers?{V}"))
        .header("Authorization", &admin)
        .json(&json!({ "numbers": [{ "telephoneNumber": "+14255550100" }] }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);

    // Tokens expire.
    tokio::time::sleep(Duration::from_millis(3100)).await;
    let response = http
        .get(format!("{url}/accounts?{V}"))
        .header("Authorization", &reader)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        response.headers()["x-ms-error-code"],
        "ExpiredAuthenticationToken"
    );
    let stats = emulator.stats();
    assert_eq!(stats.counters.tokens_issued, 3);
    assert_eq!(stats.counters.forbidden, 2);
    assert_eq!(stats.counters.unauthorized, 2);
    emulator.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn serves_https_with_a_certificate_it_makes() {
    let dir = common::tempdir();
    let ca = dir.path().join("emulator-ca.pem");
    let emulator = Emulator::start(EmulatorConfig {
        seed: SeedSource::Demo,
        rate_limit: None,
        tls: Some(TlsSource::SelfSigned { ca_out: ca.clone() }),
        ..EmulatorConfig::default()
    })
    .await
    .unwrap();
    assert!(emulator.url.starts_with("https://127.0.0.1:"));
    let untrusting = reqwest::Client::new();
    assert!(
        untrusting
            .get(format!("{}/accounts?{V}", emulator.url))
            .send()
            .await
            .is_err(),
        "an unknown CA is refused"
    );
    let certificate = reqwest::Certificate::from_pem(&std::fs::read(&ca).unwrap()).unwrap();
    let trusting = reqwest::Client::builder()
        .tls_certs_merge([certificate])
        .build()
        .unwrap();
    let response = trusting
        .get(format!("{}/accounts?{V}&maxpagesize=1", emulator.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert!(body["nextLink"]
        .as_str()
        .unwrap()
        .starts_with("https://127.0.0.1:"));
    emulator.stop().await.unwrap();
}
