//! The typed service layer on its own, against the in-process emulator
//! over real HTTP on loopback: the pager (empty pages, absolute and
//! relative links, resuming from a stored link), the path encoder end to
//! end, and the one classification of failures.

use acgbulk::client::auth::{Credential, TokenProvider, DEFAULT_AUTHORITY, DEFAULT_SCOPE};
use acgbulk::client::pacer::Pacer;
use acgbulk::client::{
    ClientError, Connection, ListOptions, Precondition, ProvisioningClient, RetryPolicy,
    ServiceError, WriteOptions,
};
use acgbulk::emulator::auth::Client;
use acgbulk::emulator::{Emulator, EmulatorConfig, IpNet, SeedSource};
use acgbulk::model::{Account, CustomerRelationship, RfiPatch};
use azure_core::credentials::Secret;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

async fn emulator(config: EmulatorConfig) -> Emulator {
    Emulator::start(EmulatorConfig {
        seed: SeedSource::Empty,
        rate_limit: None,
        ..config
    })
    .await
    .expect("the emulator starts")
}

fn client(url: &str, credential: Credential) -> ProvisioningClient {
    let connection = Connection::new(url.parse().unwrap());
    let http = connection.http_client().unwrap();
    let auth = TokenProvider::new(credential, DEFAULT_SCOPE, DEFAULT_AUTHORITY, http);
    let policy = RetryPolicy {
        max_attempts: 2,
        backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(50),
        outage_timeout: None,
    };
    ProvisioningClient::new(connection, auth, Arc::new(Pacer::new(100_000)), policy).unwrap()
}

fn no_stop() -> watch::Receiver<bool> {
    let (sender, receiver) = watch::channel(false);
    std::mem::forget(sender);
    receiver
}

fn create() -> WriteOptions {
    WriteOptions {
        repeatability: Some((
            uuid::Uuid::new_v4().to_string(),
            httpdate::fmt_http_date(std::time::SystemTime::now()),
        )),
    }
}

async fn put_accounts(client: &ProvisioningClient, names: &[String]) {
    let mut stop = no_stop();
    for name in names {
        client
            .put_account(
                name,
                &Account::default(),
                Precondition::IfNoneMatchAny,
                &create(),
                &mut stop,
            )
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[tokio::test]
async fn the_pager_follows_links_pages_empty_lists_and_resumes_from_a_stored_link() {
    let server = emulator(EmulatorConfig::default()).await;
    let client = client(&server.url, Credential::None);
    let names: Vec<String> = (0..7).map(|i| format!("pager-{i}")).collect();
    put_accounts(&client, &names).await;
    let mut stop = no_stop();

    let mut pager = client.list_accounts(&ListOptions::page_size(3));
    let mut pages = Vec::new();
    while let Some(page) = pager.next_page(&mut stop).await {
        pages.push(page.unwrap());
    }
    assert_eq!(
        pages.iter().map(|p| p.items.len()).collect::<Vec<_>>(),
        [3, 3, 1]
    );
    let listed: Vec<String> = pages
        .iter()
        .flat_map(|p| p.items.iter().filter_map(|a| a.name.clone()))
        .collect();
    assert_eq!(listed, names);
    let second = pages[0].next_link.clone().expect("a link after page one");
    assert!(second.as_str().starts_with(&server.url), "{second}");
    assert!(pages[2].next_link.is_none());

    // A stored link, made relative: the rest of the list, once.
    let relative = &second.as_str()[server.url.trim_end_matches('/').len()..];
    assert!(relative.starts_with("/accounts?"), "{relative}");
    let rest = client
        .resume_list::<Account>(relative)
        .unwrap()
        .collect_all(&mut stop)
        .await
        .unwrap();
    let rest: Vec<String> = rest.into_iter().filter_map(|a| a.name).collect();
    assert_eq!(rest, names[3..]);

    // An account with no numbers: one empty page, no link.
    let mut pager = client.list_numbers(Some("pager-0"), &ListOptions::page_size(3));
    let page = pager.next_page(&mut stop).await.unwrap().unwrap();
    assert!(page.items.is_empty() && page.next_link.is_none());
    assert!(pager.next_page(&mut stop).await.is_none());

    // Counting: the first page carries the total.
    let options = ListOptions {
        max_page_size: Some(2),
        count_records: true,
    };
    let mut pager = client.list_accounts(&options);
    let page = pager.next_page(&mut stop).await.unwrap().unwrap();
    assert_eq!(page.record_count, Some(7));
    server.stop().await.unwrap();
}

#[tokio::test]
async fn refusals_are_classified_once_with_one_wording_each() {
    let server = emulator(EmulatorConfig::default()).await;
    let client = client(&server.url, Credential::None);
    put_accounts(&client, &["taken".to_owned()]).await;
    let mut stop = no_stop();

    let missing = client.get_account("nobody", &mut stop).await.unwrap_err();
    let ServiceError::NotFound(refusal) = &missing else {
        panic!("{missing:?}")
    };
    assert_eq!(refusal.status.as_u16(), 404);
    assert_eq!(refusal.code.as_deref(), Some("AccountNotFound"));
    assert_eq!(refusal.target(), Some("accountName"));
    assert!(
        missing.to_string().starts_with(
            "not found (404 AccountNotFound: account 'nobody' does not exist (request "
        ),
        "{missing}"
    );
    assert!(!missing.stops_the_run() && missing.answered());

    let read = client.get_account("taken", &mut stop).await.unwrap();
    let etag = read.etag().expect("an ETag").to_owned();
    let account = read.model().unwrap();
    let exists = client
        .put_account(
            "taken",
            &account,
            Precondition::IfNoneMatchAny,
            &create(),
            &mut stop,
        )
        .await
        .unwrap_err();
    assert!(matches!(exists, ServiceError::Conflict(_)), "{exists:?}");

    let stale = client
        .put_account(
            "taken",
            &account,
            Precondition::IfMatch("\"stale\"".into()),
            &create(),
            &mut stop,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(stale, ServiceError::PreconditionFailed(_)),
        "{stale:?}"
    );
    assert!(stale.to_string().contains("read it again and retry"));
    let replaced = client
        .put_account(
            "taken",
            &account,
            Precondition::IfMatch(etag),
            &create(),
            &mut stop,
        )
        .await
        .unwrap();
    assert_eq!(replaced.status.as_u16(), 200);

    // A name the API does not allow, sent percent-encoded: the service
    // reads the space, and says which field.
    let bad = client
        .put_account(
            "bad name",
            &Account::default(),
            Precondition::IfNoneMatchAny,
            &create(),
            &mut stop,
        )
        .await
        .unwrap_err();
    let ServiceError::BadRequest(refusal) = &bad else {
        panic!("{bad:?}")
    };
    assert!(
        refusal
            .message()
            .unwrap_or("")
            .contains("' ' is not allowed"),
        "{bad}"
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn path_segments_reach_the_service_as_they_were_written() {
    let server = emulator(EmulatorConfig::default()).await;
    let client = client(&server.url, Credential::None);
    let mut stop = no_stop();
    let patch = RfiPatch {
        customer_relationship: CustomerRelationship {
            status: Some("Agreement signed".into()),
            ..CustomerRelationship::default()
        },
    };
    let tenant = "tenant a+b/c%20ü?";
    let error = client
        .patch_rfi(tenant, &patch, &create(), &mut stop)
        .await
        .unwrap_err();
    let ServiceError::NotFound(refusal) = &error else {
        panic!("{error:?}")
    };
    assert_eq!(
        refusal.message(),
        Some(format!("no Request for Information for tenant '{tenant}'").as_str())
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_machine_off_the_allowlist_is_told_so() {
    let server = emulator(EmulatorConfig {
        allowed_ips: vec![IpNet::parse("10.0.0.0/8").unwrap()],
        ..EmulatorConfig::default()
    })
    .await;
    let client = client(&server.url, Credential::None);
    let error = client
        .list_accounts(&ListOptions::default())
        .collect_all(&mut no_stop())
        .await
        .unwrap_err();
    assert!(matches!(error, ServiceError::IpNotAllowed(_)), "{error:?}");
    assert!(error.stops_the_run());
    assert!(
        error.to_string().contains("403 ClientIpAddressNotAllowed")
            && error.to_string().contains(
                "add this machine's address to the gateway's Provisioning API IP allowlist"
            ),
        "{error}"
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn credentials_without_the_role_or_without_a_token_are_told_apart() {
    let server = emulator(EmulatorConfig {
        clients: Some(vec![Client::parse_secret("reader:s3cret:Read").unwrap()]),
        ..EmulatorConfig::default()
    })
    .await;
    let token: serde_json::Value = reqwest::Client::new()
        .post(format!("{}/contoso/oauth2/v2.0/token", server.url))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "reader"),
            ("client_secret", "s3cret"),
            ("scope", DEFAULT_SCOPE),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["access_token"].as_str().expect("a token").to_owned();
    let mut stop = no_stop();

    let reader = client(&server.url, Credential::Token(Secret::new(token)));
    let listed = reader
        .list_accounts(&ListOptions::default())
        .collect_all(&mut stop)
        .await;
    assert!(listed.is_ok(), "{listed:?}");
    let error = reader
        .put_account(
            "contoso",
            &Account::default(),
            Precondition::IfNoneMatchAny,
            &create(),
            &mut stop,
        )
        .await
        .unwrap_err();
    assert!(matches!(error, ServiceError::MissingRole(_)), "{error:?}");
    let text = error.to_string();
    assert!(
        text.contains("ProvisioningAPI.Write") && text.contains("grant the application"),
        "{text}"
    );

    let anonymous = client(&server.url, Credential::None);
    let error = anonymous
        .get_account("contoso", &mut stop)
        .await
        .unwrap_err();
    assert!(
        matches!(error, ServiceError::NotAuthenticated(_)),
        "{error:?}"
    );
    assert!(!error.stops_the_run());

    let forged = client(
        &server.url,
        Credential::Token(Secret::new("not-a-token".to_owned())),
    );
    let error = forged.get_account("contoso", &mut stop).await.unwrap_err();
    assert!(
        matches!(
            error,
            ServiceError::Client(ClientError::Unauthorized { .. })
        ),
        "{error:?}"
    );
    assert!(error.to_string().contains("refused the credentials twice"));
    server.stop().await.unwrap();
}
