//! `acgbulk accounts`, `acgbulk rfis` and `acgbulk acs` end to end: the
//! real binary over loopback against an emulator each test starts on a free
//! port.

mod common;

use acgbulk::emulator::acs::AcsConfig;
use acgbulk::emulator::auth::Client;
use acgbulk::emulator::{EmulatorConfig, Faults, SeedSource, TlsSource};
use azure_core::credentials::SecretBytes;
use common::{read_csv, Run, Server};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const KEY: &str = "YW4gZW11bGF0b3IgYWNjZXNzIGtleSwgMzIgYnl0ZXM=";

fn quick() -> EmulatorConfig {
    common::unlimited_emulator(Duration::from_secs(30), SeedSource::Demo)
}

fn acg(dir: &Path, url: &str, args: &[&str]) -> Run {
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--endpoint", url, "--rate-limit", "off"]);
    common::run(dir, &all)
}

/// The results file as maps keyed by the key column's value.
fn results(path: &Path, key: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    let rows = read_csv(path);
    let headings = rows[0].clone();
    let at = headings.iter().position(|h| h == key).unwrap();
    rows[1..]
        .iter()
        .map(|r| {
            (
                r[at].clone(),
                headings.iter().cloned().zip(r.iter().cloned()).collect(),
            )
        })
        .collect()
}

const ACCOUNT_HEADINGS: &str = "name,correlationId,serviceDetails_teamsTenantId,serviceDetails_teamsOperatorConnect_enabled,serviceDetails_teamsDirectRouting_enabled,serviceDetails_teamsDirectRouting_configuration_callScreening,serviceDetails_teamsDirectRouting_configuration_subdomain,serviceDetails_teamsDirectRouting_configuration_subdomainTokens_region1Token,serviceDetails_teamsDirectRouting_configuration_subdomainTokens_region2Token";

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn correlation_id(server: &Server, account: &str) -> Option<String> {
    server.emulator().with_store(|s| {
        s.accounts
            .get(account)
            .and_then(|r| r.account.correlation_id.clone())
    })
}

#[test]
fn accounts_are_created_updated_and_deleted_with_and_without_numbers() {
    let server = Server::start(quick());
    let url = server.url();
    let dir = common::tempdir();
    let sheet = write(
        dir.path(),
        "accounts.csv",
        &format!(
            "{ACCOUNT_HEADINGS}\n\
             newco,crm-1,0f6f2e1e-3f0a-4a5e-9a53-8d7a3c6e2b11,true,false,,,,\n\
             drco,crm-2,,false,true,true,drco,tok-one,tok-two\n\
             badco,crm-3,,false,true,,badco,,\n\
             emptyco,crm-4,0f6f2e1e-3f0a-4a5e-9a53-8d7a3c6e2b12,true,,,,,\n"
        ),
    );
    let run = acg(
        dir.path(),
        &url,
        &[
            "accounts",
            "import",
            sheet.to_str().unwrap(),
            "--mode",
            "create",
        ],
    );
    assert_eq!(run.code, 1, "an invalid row makes exit 1: {}", run.stderr);
    let lines = results(&dir.path().join("accounts.results.csv"), "name");
    assert_eq!(lines["newco"]["outcome"], "ok");
    assert_eq!(lines["emptyco"]["outcome"], "ok");
    assert_eq!(lines["badco"]["outcome"], "invalid");
    assert!(
        lines["badco"]["errorMessage"].contains("region1Token"),
        "{:?}",
        lines["badco"]
    );
    // Direct Routing: not provisioned yet, so the DNS records to create.
    assert_eq!(lines["drco"]["subdomainStatus"], "notProvisioned");
    let host = url::Url::parse(&url)
        .unwrap()
        .host_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        lines["drco"]["dnsRecords"],
        format!("TXT drco.1-r1.{host} \"tok-one\"; TXT drco.1-r2.{host} \"tok-two\"")
    );
    assert_eq!(correlation_id(&server, "newco").as_deref(), Some("crm-1"));
    assert!(server
        .emulator()
        .with_store(|s| !s.accounts.contains_key("badco")));

    // Creating again refuses: If-None-Match: * meets existing accounts.
    let run = acg(
        dir.path(),
        &url,
        &[
            "accounts",
            "import",
            sheet.to_str().unwrap(),
            "--mode",
            "create",
        ],
    );
    assert_eq!(run.code, 1);
    let lines = results(&dir.path().join("accounts.results.csv"), "name");
    assert_eq!(lines["newco"]["outcome"], "failed");
    assert!(
        lines["newco"]["errorMessage"].contains("already exists"),
        "{:?}",
        lines["newco"]
    );

    // Update: the export, edited, goes back with If-Match.
    let export = dir.path().join("export.csv");
    let run = acg(
        dir.path(),
        &url,
        &["export", "accounts", "-o", export.to_str().unwrap()],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let text = std::fs::read_to_string(&export)
        .unwrap()
        .replace(",crm-1,", ",crm-1-renamed,");
    let edited = write(dir.path(), "edited.csv", &text);
    let run = acg(
        dir.path(),
        &url,
        &[
            "accounts",
            "import",
            edited.to_str().unwrap(),
            "--mode",
            "update",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        correlation_id(&server, "newco").as_deref(),
        Some("crm-1-renamed")
    );

    // Give newco numbers; delete newco and emptyco without --with-numbers.
    let numbers = write(
        dir.path(),
        "numbers.csv",
        "telephoneNumber,accountName,serviceDetails_teamsOperatorConnect_enabled,serviceDetails_teamsOperatorConnect_configuration_usage,serviceDetails_teamsOperatorConnect_configuration_choosableCapabilities,serviceDetails_teamsOperatorConnect_configuration_allowTenantAddressUpdate\n\
         +14255550100,newco,true,CallingUserAssignment,InboundCalling;OutboundCalling,true\n\
         +14255550101,newco,true,CallingUserAssignment,InboundCalling;OutboundCalling,true\n",
    );
    let run = acg(dir.path(), &url, &["import", numbers.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let doomed = write(dir.path(), "doomed.csv", "name\nnewco\nemptyco\n");
    let run = acg(
        dir.path(),
        &url,
        &["accounts", "delete", doomed.to_str().unwrap()],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    let lines = results(&dir.path().join("doomed.results.csv"), "name");
    assert_eq!(lines["emptyco"]["outcome"], "ok");
    assert_eq!(lines["newco"]["outcome"], "failed");
    assert!(
        lines["newco"]["errorMessage"].contains("--with-numbers"),
        "{:?}",
        lines["newco"]
    );
    assert!(server
        .emulator()
        .with_store(|s| s.accounts.contains_key("newco") && !s.accounts.contains_key("emptyco")));
    assert_eq!(server.numbers().len(), 2);

    let run = acg(
        dir.path(),
        &url,
        &[
            "accounts",
            "delete",
            doomed.to_str().unwrap(),
            "--with-numbers",
            "--restart",
        ],
    );
    assert_eq!(run.code, 1, "emptyco is gone already: {}", run.stderr);
    let lines = results(&dir.path().join("doomed.results.csv"), "name");
    assert_eq!(lines["newco"]["outcome"], "ok", "{:?}", lines["newco"]);
    assert_eq!(lines["emptyco"]["httpStatus"], "404");
    assert!(server
        .emulator()
        .with_store(|s| !s.accounts.contains_key("newco")));
    assert!(server.numbers().is_empty());
}

#[test]
fn a_concurrent_change_is_a_conflict_not_an_overwrite() {
    let server = Server::start(EmulatorConfig {
        faults: Faults {
            latency: Duration::from_millis(800),
            ..Faults::default()
        },
        ..quick()
    });
    let url = server.url();
    let dir = common::tempdir();
    let sheet = write(
        dir.path(),
        "update.csv",
        &format!("{ACCOUNT_HEADINGS}\ncontoso,from-the-sheet,0f6f2e1e-3f0a-4a5e-9a53-8d7a3c6e2b13,true,,,,,\n"),
    );
    let child = Command::new(common::bin())
        .args([
            "accounts",
            "import",
            sheet.to_str().unwrap(),
            "--mode",
            "update",
            "--endpoint",
            &url,
            "--rate-limit",
            "off",
        ])
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The PUT is counted as it arrives and applied 800 ms later; change the
    // account in between, as another operator would.
    let put = "PUT /accounts/{account}";
    let deadline = Instant::now() + Duration::from_secs(30);
    while server
        .stats()
        .counters
        .per_route
        .get(put)
        .copied()
        .unwrap_or(0)
        == 0
    {
        assert!(Instant::now() < deadline, "no PUT arrived");
        std::thread::sleep(Duration::from_millis(10));
    }
    // The ETag is derived from the account as served: changing it changes
    // the ETag.
    server.emulator().with_store(|store| {
        let record = store.accounts.get_mut("contoso").unwrap();
        record.account.correlation_id = Some("someone-else".into());
    });
    let run: Run = child.wait_with_output().unwrap().into();
    assert_eq!(run.code, 1, "{}", run.stderr);
    let lines = results(&dir.path().join("update.results.csv"), "name");
    assert_eq!(lines["contoso"]["outcome"], "failed");
    assert_eq!(lines["contoso"]["httpStatus"], "412");
    assert_eq!(lines["contoso"]["errorCode"], "Conflict");
    assert_eq!(
        correlation_id(&server, "contoso").as_deref(),
        Some("someone-else")
    );
}

#[test]
fn a_killed_accounts_job_resumes_without_creating_anything_twice() {
    let server = Server::start(EmulatorConfig {
        faults: Faults {
            latency: Duration::from_millis(150),
            ..Faults::default()
        },
        ..quick()
    });
    let url = server.url();
    let dir = common::tempdir();
    let mut text = format!("{ACCOUNT_HEADINGS}\n");
    for i in 0..30 {
        text.push_str(&format!(
            "bulk{i:02},crm-{i},0f6f2e1e-3f0a-4a5e-9a53-8d7a3c6e{i:04},true,,,,,\n"
        ));
    }
    let sheet = write(dir.path(), "bulk.csv", &text);
    let args = [
        "accounts",
        "import",
        sheet.to_str().unwrap(),
        "--mode",
        "create",
        "--concurrency",
        "2",
        "--endpoint",
        &url,
        "--rate-limit",
        "off",
    ];
    let mut child = Command::new(common::bin())
        .args(args)
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while server
        .emulator()
        .with_store(|s| s.accounts.keys().filter(|k| k.starts_with("bulk")).count())
        < 8
    {
        assert!(Instant::now() < deadline, "the job made no progress");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let before = server
        .emulator()
        .with_store(|s| s.accounts.keys().filter(|k| k.starts_with("bulk")).count());
    assert!(before < 30, "killed before the end");

    let run = common::run(dir.path(), &args);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("(continued)"), "{}", run.stderr);
    let lines = results(&dir.path().join("bulk.results.csv"), "name");
    assert_eq!(lines.len(), 30);
    assert!(lines.values().all(|l| l["outcome"] == "ok"), "{lines:?}");
    assert_eq!(
        server.emulator().with_store(|s| s
            .accounts
            .keys()
            .filter(|k| k.starts_with("bulk"))
            .count()),
        30
    );
    // Each create was applied once; an in-flight one sent again was
    // answered from the repeatability cache, not created twice.
    let stats = server.stats();
    assert_eq!(stats.counters.writes_applied, 30, "{stats:?}");
}

#[test]
fn rfis_are_patched_and_declining_needs_a_reason() {
    let server = Server::start(quick());
    let url = server.url();
    let dir = common::tempdir();
    let export = dir.path().join("rfis.csv");
    let run = acg(
        dir.path(),
        &url,
        &["export", "rfis", "-o", export.to_str().unwrap()],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let tenants: Vec<String> = read_csv(&export)[1..]
        .iter()
        .map(|r| r[0].clone())
        .collect();
    assert!(tenants.len() >= 3, "{tenants:?}");
    let sheet = write(
        dir.path(),
        "update.csv",
        &format!(
            "tenantId,customerRelationship_status,customerRelationship_comment,customerRelationship_ticketId\n\
             {},Agreement signed,signed on the phone,TICKET-1\n\
             {},consentDeclined,,\n\
             {},contactInitiated,,{}\n",
            tenants[0],
            tenants[1],
            tenants[2],
            "x".repeat(65)
        ),
    );
    let before = server
        .emulator()
        .with_store(|s| s.rfis[&tenants[1]].rfi.customer_relationship.clone());
    let run = acg(
        dir.path(),
        &url,
        &["rfis", "update", sheet.to_str().unwrap()],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    let lines = results(&dir.path().join("update.results.csv"), "tenantId");
    assert_eq!(
        lines[&tenants[0]]["outcome"], "ok",
        "{:?}",
        lines[&tenants[0]]
    );
    assert_eq!(lines[&tenants[1]]["outcome"], "invalid");
    assert_eq!(lines[&tenants[1]]["errorCode"], "COMMENT_REQUIRED");
    assert_eq!(lines[&tenants[2]]["errorCode"], "TICKET_ID");
    let (signed, declined) = server.emulator().with_store(|s| {
        (
            s.rfis[&tenants[0]]
                .rfi
                .customer_relationship
                .clone()
                .unwrap(),
            s.rfis[&tenants[1]].rfi.customer_relationship.clone(),
        )
    });
    assert_eq!(signed.status.as_deref(), Some("agreementSigned"));
    assert_eq!(signed.comment.as_deref(), Some("signed on the phone"));
    assert_eq!(signed.ticket_id.as_deref(), Some("TICKET-1"));
    assert_eq!(declined, before, "the refused row was not sent");
}

fn acs_server(stock: Option<u32>) -> Server {
    use base64::Engine;
    Server::start(EmulatorConfig {
        seed: SeedSource::Empty,
        rate_limit: None,
        acs: AcsConfig {
            access_key: Some(SecretBytes::new(
                base64::engine::general_purpose::STANDARD
                    .decode(KEY)
                    .unwrap(),
            )),
            stock,
            out_of_stock: vec!["999".into()],
            // Long enough that the first poll (Retry-After: 1) comes before
            // the end even on a loaded machine.
            operation_delay: Duration::from_secs(3),
            ..AcsConfig::default()
        },
        ..EmulatorConfig::default()
    })
}

fn acs(dir: &Path, connection: &str, args: &[&str]) -> Run {
    common::run_with_env(dir, args, &[("ACS_CONNECTION_STRING", connection)])
}

#[test]
fn acs_searches_are_signed_polled_to_completion_and_report_shortfalls() {
    let server = acs_server(Some(4));
    let dir = common::tempdir();
    let connection = format!("endpoint={};accesskey={KEY}", server.url());
    let requests = write(
        dir.path(),
        "requests.csv",
        "countryCode,phoneNumberType,assignmentType,calling,sms,areaCode,quantity\n\
         US,geographic,person,inbound+outbound,none,425,2\n\
         us,toll-free,application,none,inbound+outbound,,5\n\
         US,geographic,person,,,999,3\n\
         GB,geographic,person,,,20,1\n",
    );
    // No Retry-After would mean 10 s between polls, past the 8 s limit: the
    // searches end only because the operation's Retry-After is honoured.
    let run = acs(
        dir.path(),
        &connection,
        &[
            "acs",
            "search",
            "--requests",
            requests.to_str().unwrap(),
            "-o",
            "found.csv",
            "--json",
            "--poll-interval",
            "10s",
            "--poll-timeout",
            "8s",
        ],
    );
    assert_eq!(run.code, 1, "a partial and a failed search: {}", run.stderr);
    assert!(!run.stderr.contains(KEY) && !run.stdout.contains(KEY));
    let summary: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(summary["searches"], 4);
    assert_eq!(summary["complete"], 2);
    assert_eq!(summary["partial"], 1);
    assert_eq!(summary["failed"], 1);
    assert_eq!(summary["numbersFound"], 2 + 4 + 1);

    let rows = read_csv(&dir.path().join("found.csv"));
    assert_eq!(rows[0].join(","), acgbulk::acs::search::COLUMNS.join(","));
    let by_row =
        |row: &str| -> Vec<&Vec<String>> { rows[1..].iter().filter(|r| r[0] == row).collect() };
    let numbers = |row: &str| by_row(row).iter().filter(|r| !r[2].is_empty()).count();
    assert_eq!(numbers("2"), 2);
    assert!(by_row("2")
        .iter()
        .all(|r| r[2].starts_with("+1425") && r[11].is_empty()));
    assert_eq!(numbers("3"), 4);
    let shortfall: Vec<_> = by_row("3")
        .into_iter()
        .filter(|r| r[2].is_empty())
        .collect();
    assert_eq!(shortfall.len(), 1);
    assert_eq!(shortfall[0][11], "PartialResult");
    assert!(
        shortfall[0][12].contains("4 of the 5"),
        "{:?}",
        shortfall[0]
    );
    assert_eq!(by_row("4").len(), 1);
    assert_eq!(by_row("4")[0][11], "OutOfStock");
    assert_eq!(numbers("5"), 1);
    assert!(by_row("5")[0][2].starts_with("+4420"));
    let toll_free = &by_row("3")[0];
    assert_eq!(
        &toll_free[3..11],
        [
            "tollFree",
            "application",
            "none",
            "inbound+outbound",
            "2",
            "USD",
            "monthly",
            &toll_free[10]
        ]
    );

    let stats = server.stats().acs;
    assert_eq!(stats.searches, 4);
    assert_eq!(stats.unauthorized, 0);
    assert!(
        stats.max_polls_per_operation >= 2 && stats.max_polls_per_operation <= 5,
        "{stats:?}"
    );
    assert_eq!(
        stats.result_reads, 3,
        "a failed search has no result to read"
    );
}

#[test]
fn acs_refuses_a_bad_signature_and_bad_requests_send_nothing() {
    let server = acs_server(None);
    let dir = common::tempdir();
    let wrong = format!("endpoint={};accesskey=d3Jvbmcga2V5", server.url());
    let run = acs(
        dir.path(),
        &wrong,
        &[
            "acs",
            "search",
            "--country",
            "US",
            "--type",
            "tollFree",
            "--assignment",
            "application",
            "-o",
            "out.csv",
        ],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    let rows = read_csv(&dir.path().join("out.csv"));
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1][11], "Denied", "{:?}", rows[1]);
    let stats = server.stats().acs;
    assert_eq!((stats.unauthorized, stats.searches), (1, 0));

    let requests = write(
        dir.path(),
        "requests.csv",
        "countryCode,phoneNumberType,assignmentType,quantity\nUS,geographic,person,2\nXX,mobile,person,0\n",
    );
    let good = format!("endpoint={};accesskey={KEY}", server.url());
    let run = acs(
        dir.path(),
        &good,
        &[
            "acs",
            "search",
            "--requests",
            requests.to_str().unwrap(),
            "-o",
            "out2.csv",
        ],
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    for expected in [
        "requests.csv: row 3, column countryCode",
        "row 3, column phoneNumberType",
        "row 3, column quantity",
    ] {
        assert!(run.stderr.contains(expected), "{expected}: {}", run.stderr);
    }
    assert!(!dir.path().join("out2.csv").exists());
    assert_eq!(server.stats().acs.searches, 0);

    let run = acs(
        dir.path(),
        "endpoint=http://127.0.0.1:1;accesskey=***",
        &[
            "acs",
            "search",
            "--country",
            "US",
            "--type",
            "tollFree",
            "--assignment",
            "person",
        ],
    );
    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .contains("ACS_CONNECTION_STRING: not a connection string"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("***"), "{}", run.stderr);
}

#[test]
fn acs_buys_only_when_told_so() {
    let server = acs_server(None);
    let dir = common::tempdir();
    let connection = format!("endpoint={};accesskey={KEY}", server.url());
    let run = acs(
        dir.path(),
        &connection,
        &[
            "acs",
            "search",
            "--country",
            "US",
            "--type",
            "geographic",
            "--assignment",
            "person",
            "--area-code",
            "206",
            "--quantity",
            "3",
            "-o",
            "found.csv",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let rows = read_csv(&dir.path().join("found.csv"));
    assert_eq!(rows.len(), 4);
    let search_id = rows[1][1].clone();

    let run = acs(
        dir.path(),
        &connection,
        &["acs", "purchase", "--search-id", &search_id],
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("--yes"), "{}", run.stderr);
    assert!(
        run.stderr.contains("3 geographic numbers"),
        "{}",
        run.stderr
    );
    assert_eq!(server.stats().acs.purchases, 0);

    let run = acs(
        dir.path(),
        &connection,
        &[
            "acs",
            "purchase",
            "--search-id",
            &search_id,
            "--yes",
            "--json",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["purchases"][0]["status"], "bought");
    assert_eq!(report["bought"], 1);
    let stats = server.stats().acs;
    assert_eq!((stats.purchases, stats.numbers_purchased), (1, 3));

    let run = acs(
        dir.path(),
        &connection,
        &["acs", "purchase", "--search-id", &search_id, "--yes"],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("already bought"), "{}", run.stderr);
    assert_eq!(server.stats().acs.numbers_purchased, 3);
}

#[test]
fn acs_takes_entra_id_tokens_for_its_own_audience() {
    // Entra ID authorities are HTTPS only: the emulator serves TLS with a
    // CA it makes, which the client is told to trust.
    let dir = common::tempdir();
    let ca = dir.path().join("ca.pem");
    let mut config = EmulatorConfig {
        seed: SeedSource::Empty,
        rate_limit: None,
        clients: Some(vec![Client::parse_secret("searcher:s3cret:Read").unwrap()]),
        tls: Some(TlsSource::SelfSigned { ca_out: ca.clone() }),
        ..EmulatorConfig::default()
    };
    config.acs.operation_delay = Duration::from_millis(200);
    let server = Server::start(config);
    let url = server.url();
    let ca = ca.to_str().unwrap();
    let env = [
        ("AZURE_TENANT_ID", "tenant"),
        ("AZURE_CLIENT_ID", "searcher"),
        ("AZURE_CLIENT_SECRET", "s3cret"),
        ("AZURE_AUTHORITY_HOST", url.as_str()),
    ];
    let run = common::run_with_env(
        dir.path(),
        &[
            "acs",
            "search",
            "--endpoint",
            &url,
            "--ca-cert",
            ca,
            "--country",
            "DK",
            "--type",
            "geographic",
            "--assignment",
            "application",
            "--area-code",
            "33",
        ],
        &env,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!run.stderr.contains("s3cret"));
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", run.stdout);
    assert!(lines[1].contains(",+4533"), "{}", lines[1]);

    // A token for another audience (the Provisioning API's) is refused.
    let run = common::run_with_env(
        dir.path(),
        &[
            "acs",
            "search",
            "--endpoint",
            &url,
            "--ca-cert",
            ca,
            "--scope",
            &format!("{}/.default", acgbulk::emulator::auth::DEFAULT_AUDIENCE),
            "--country",
            "DK",
            "--type",
            "geographic",
            "--assignment",
            "application",
        ],
        &env,
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stdout.contains(",Unauthorized,") && run.stdout.contains("audience"),
        "{}",
        run.stdout
    );
}

#[test]
fn the_acs_emulator_checks_date_body_and_version() {
    use acgbulk::acs::signing::AccessKeySigner;
    use base64::Engine;
    let server = acs_server(None);
    let key = SecretBytes::new(
        base64::engine::general_purpose::STANDARD
            .decode(KEY)
            .unwrap(),
    );
    let signer = AccessKeySigner::new(key);
    let http = reqwest::blocking::Client::new();
    let body = br#"{"phoneNumberType":"tollFree","assignmentType":"person","capabilities":{"calling":"inbound","sms":"none"}}"#;
    let send = |query: &str, date: std::time::SystemTime, sent: &[u8]| {
        let url = url::Url::parse(&format!(
            "{}/availablePhoneNumbers/countries/US/:search?{query}",
            server.url()
        ))
        .unwrap();
        let headers = signer.headers_at(
            &reqwest::Method::POST,
            &url,
            body,
            &httpdate::fmt_http_date(date),
        );
        let mut request = http
            .post(url.as_str())
            .header("content-type", "application/json")
            .body(sent.to_vec());
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let response = request.send().unwrap();
        (response.status().as_u16(), response.text().unwrap())
    };
    let now = std::time::SystemTime::now();
    assert_eq!(send("api-version=2022-12-01", now, body).0, 202);
    let (status, text) = send(
        "api-version=2022-12-01",
        now - Duration::from_secs(20 * 60),
        body,
    );
    assert_eq!(status, 401);
    assert!(text.contains("15 minutes"), "{text}");
    let mut tampered = body.to_vec();
    tampered[30] = b'X';
    let (status, text) = send("api-version=2022-12-01", now, &tampered);
    assert_eq!(status, 401);
    assert!(text.contains("hash of the body"), "{text}");
    let (status, text) = send("api-version=2024-02-29", now, body);
    assert_eq!(status, 400, "{text}");
    // Signed for another path: the signature does not carry over.
    let url = url::Url::parse(&format!(
        "{}/availablePhoneNumbers/countries/CA/:search?api-version=2022-12-01",
        server.url()
    ))
    .unwrap();
    let signed_for = url::Url::parse(&format!(
        "{}/availablePhoneNumbers/countries/US/:search?api-version=2022-12-01",
        server.url()
    ))
    .unwrap();
    let mut request = http.post(url.as_str()).body(body.to_vec());
    for (name, value) in signer.headers_at(
        &reqwest::Method::POST,
        &signed_for,
        body,
        &httpdate::fmt_http_date(now),
    ) {
        request = request.header(name, value);
    }
    assert_eq!(request.send().unwrap().status().as_u16(), 401);
    assert_eq!(server.stats().acs.searches, 1);
    assert_eq!(server.stats().acs.unauthorized, 3);
}
