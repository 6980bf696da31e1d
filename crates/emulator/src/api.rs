//! The Provisioning API's operations: accounts, numbers (single and the two
//! batch POSTs), the all-numbers list, capability plans and available
//! capabilities, civic addresses, and Requests for Information.

use super::error::{field, ApiError};
use super::paging::{self, PageOut};
use super::rules::{self, account_syncs, number_syncs};
use super::store::{
    account_sync_errors, etag_matches, etag_of, now_ms, number_sync_errors, sync_status,
    AccountRecord, BackendSync, Millis, NumberRecord, RfiRecord, Store,
};
use super::App;
use crate::model::{
    Account, AssignmentStatus, AvailableCapabilities, CapabilityPlan, CapabilityPlans, Number,
    NumberRefsBody, NumbersBody, RelationshipStatus, RfiPatch, API_VERSION,
};
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::collections::HashSet;
use std::ops::Bound;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

/// The most numbers one batch may carry.
pub const MAX_BATCH: usize = 100;

type Result<T> = std::result::Result<T, ApiError>;

fn parse_body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    if bytes.is_empty() {
        return Err(ApiError::bad_request(
            "InvalidRequestBody",
            "the request needs a JSON body",
        ));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        // serde quotes the offending value: keep an answer to a huge one small.
        let error = ApiError::bad_request(
            "InvalidRequestBody",
            format!(
                "invalid JSON at {path}: {}",
                rules::clip(&e.inner().to_string())
            ),
        );
        if path == "." {
            error
        } else {
            error.target(path)
        }
    })
}

fn http_date(ms: Millis) -> String {
    httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_millis(ms))
}

fn header_text<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// `If-Match`, `If-None-Match` and `If-Unmodified-Since` on a write.
fn write_preconditions(
    headers: &HeaderMap,
    existing: Option<(&str, Millis)>,
    what: &str,
) -> Result<()> {
    if let Some(wanted) = header_text(headers, "if-match") {
        if !etag_matches(wanted, existing.map(|e| e.0)) {
            return Err(ApiError::new(
                StatusCode::PRECONDITION_FAILED,
                "PreconditionFailed",
                match existing {
                    Some(_) => format!(
                        "{what} has changed since it was read: its ETag is no longer {wanted}"
                    ),
                    None => format!("{what} does not exist, so If-Match: {wanted} fails"),
                },
            ));
        }
    }
    if let Some(unwanted) = header_text(headers, "if-none-match") {
        if unwanted.trim() == "*" && existing.is_some() {
            return Err(ApiError::conflict(
                "ResourceAlreadyExists",
                format!("{what} already exists (If-None-Match: *)"),
            ));
        }
        if unwanted.trim() != "*" && etag_matches(unwanted, existing.map(|e| e.0)) {
            return Err(ApiError::new(
                StatusCode::PRECONDITION_FAILED,
                "PreconditionFailed",
                format!("{what} still has ETag {unwanted}"),
            ));
        }
    }
    if let Some(since) = header_text(headers, "if-unmodified-since") {
        let since = httpdate::parse_http_date(since).map_err(|_| {
            ApiError::bad_request(
                "InvalidHeaderValue",
                format!("If-Unmodified-Since: '{since}' is not an HTTP date"),
            )
        })?;
        let since = since.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        if existing.is_some_and(|(_, modified)| modified / 1000 > since) {
            return Err(ApiError::new(
                StatusCode::PRECONDITION_FAILED,
                "PreconditionFailed",
                format!("{what} was modified after {}", http_date(since * 1000)),
            ));
        }
    }
    Ok(())
}

/// `If-None-Match` and `If-Modified-Since` on a read: true when the client's
/// copy is current (answer 304).
fn not_modified(headers: &HeaderMap, etag: &str, modified: Millis) -> bool {
    if let Some(tags) = header_text(headers, "if-none-match") {
        return etag_matches(tags, Some(etag));
    }
    if let Some(since) =
        header_text(headers, "if-modified-since").and_then(|s| httpdate::parse_http_date(s).ok())
    {
        let since = since.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        return modified / 1000 <= since;
    }
    false
}

/// A single resource as served: its JSON, and the strong ETag derived from
/// exactly those bytes. Reads, writes, `If-Match`, `If-None-Match` and 304
/// all use this one derivation.
pub struct Served {
    json: Vec<u8>,
    pub etag: String,
}

impl Served {
    pub fn of(value: &Value) -> Served {
        let json = serde_json::to_vec(value).expect("a JSON value serializes");
        let etag = etag_of(&json);
        Served { json, etag }
    }
}

/// A single resource with its `ETag` and `Last-Modified`.
fn resource(status: StatusCode, served: Served, modified: Millis) -> Response {
    let mut response = (status, served.json).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(
        header::ETAG,
        HeaderValue::from_str(&served.etag).expect("ASCII"),
    );
    headers.insert(
        header::LAST_MODIFIED,
        HeaderValue::from_str(&http_date(modified)).expect("ASCII"),
    );
    response
}

fn not_modified_response(etag: &str, modified: Millis) -> Response {
    let mut response = StatusCode::NOT_MODIFIED.into_response();
    let headers = response.headers_mut();
    headers.insert(header::ETAG, HeaderValue::from_str(etag).expect("ASCII"));
    headers.insert(
        header::LAST_MODIFIED,
        HeaderValue::from_str(&http_date(modified)).expect("ASCII"),
    );
    response
}

/// The output fields every account, number and RFI carries, whatever its
/// services: `serviceProvisioningStatus` (`synced` where no backend sync
/// applies or nothing is pending) and `serviceProvisioningErrors` (`null`
/// unless sync failed), as the documentation's examples show them.
fn with_provisioning_fields(mut value: Value) -> Value {
    if let Some(object) = value.as_object_mut() {
        object
            .entry("serviceProvisioningStatus")
            .or_insert_with(|| Value::from("synced"));
        object
            .entry("serviceProvisioningErrors")
            .or_insert(Value::Null);
    }
    value
}

fn to_json<T: serde::Serialize>(view: &T) -> Value {
    serde_json::to_value(view).expect("a resource serializes")
}

/// An account as served.
pub fn account_json(
    store: &Store,
    name: &str,
    record: &AccountRecord,
    now: Millis,
    sync_delay: Millis,
) -> Value {
    with_provisioning_fields(to_json(&account_view(store, name, record, now, sync_delay)))
}

/// A number as served.
pub fn number_json(number: u64, record: &NumberRecord, now: Millis) -> Value {
    with_provisioning_fields(to_json(&number_view(number, record, now)))
}

/// An RFI as served.
fn rfi_json(record: &RfiRecord) -> Value {
    with_provisioning_fields(to_json(&record.rfi))
}

/// A list page, with `x-ms-record-count` when asked for.
fn list<T: serde::Serialize>(page: PageOut<T>, count: Option<usize>) -> Response {
    let mut response = Json(page).into_response();
    if let Some(count) = count {
        response
            .headers_mut()
            .insert("x-ms-record-count", HeaderValue::from(count as u64));
    }
    response
}

/// `scheme://host/path` of the request, for `nextLink`.
fn base_url(app: &App, headers: &HeaderMap, path: &str) -> String {
    format!("{}{path}", app.base_url(headers))
}

fn account_missing(name: &str) -> ApiError {
    ApiError::not_found(
        "AccountNotFound",
        format!("account '{name}' does not exist"),
    )
    .target("accountName")
}

/// An account as the API shows it.
fn account_view(
    store: &Store,
    name: &str,
    record: &AccountRecord,
    now: Millis,
    sync_delay: Millis,
) -> Account {
    let counts = store.service_counts(record);
    let mut account = record.account.clone();
    account.name = Some(name.to_owned());
    let d = &mut account.service_details;
    for (service, count) in [
        (&mut d.teams_operator_connect, counts.operator_connect),
        (&mut d.teams_phone_mobile, counts.phone_mobile),
        (&mut d.zoom_phone_cloud_peering, counts.zoom),
        (
            &mut d.azure_operator_call_protection,
            counts.call_protection,
        ),
    ] {
        if let Some(service) = service {
            service.number_count = Some(count);
        }
    }
    if let Some(dr) = &mut d.teams_direct_routing {
        dr.number_count = Some(counts.direct_routing);
        let config = dr.configuration.clone().unwrap_or_default();
        let tokens = config.subdomain_tokens.unwrap_or_default();
        let status = match (
            config.subdomain.is_some(),
            tokens.region1_token.is_some(),
            tokens.region2_token.is_some(),
        ) {
            (true, true, true) if now >= record.subdomain_since + sync_delay => "provisioned",
            (true, true, false) | (true, false, true) => "inconsistent",
            _ => "notProvisioned",
        };
        if dr.enabled {
            dr.subdomain_status = Some(status.to_owned());
        }
    }
    if let Some((status, errors)) =
        sync_status(record.sync, now, || account_sync_errors(&record.account))
    {
        account.service_provisioning_status = Some(status.to_owned());
        account.service_provisioning_errors = errors;
    }
    account
}

/// What a Teams number shows as `assignmentStatus` when its writes never
/// said: a number the operator uploads is not yet assigned to a user.
pub const DEFAULT_ASSIGNMENT_STATUS: AssignmentStatus = AssignmentStatus::Unassigned;

/// A number as the API shows it.
pub fn number_view(number: u64, record: &NumberRecord, now: Millis) -> Number {
    let status = sync_status(record.sync, now, || number_sync_errors(&record.body));
    let mut details = record.body.service_details.clone();
    if let Some((status, _)) = &status {
        for (service, mobile) in [
            (&mut details.teams_operator_connect, false),
            (&mut details.teams_phone_mobile, true),
        ] {
            if let Some(config) = service
                .as_mut()
                .filter(|s| s.enabled)
                .map(|s| s.configuration.get_or_insert_with(Default::default))
            {
                let mut available = vec!["InboundCalling".to_owned(), "OutboundCalling".to_owned()];
                if mobile {
                    available.push("Mobile".to_owned());
                }
                // The backend grants what was chosen and is available:
                // never more than availableCapabilities lists.
                config.acquired_capabilities = Some(if *status == "synced" {
                    config
                        .choosable_capabilities
                        .iter()
                        .filter(|c| available.contains(c))
                        .cloned()
                        .collect()
                } else {
                    Vec::new()
                });
                config.available_capabilities = Some(available);
            }
        }
    }
    for service in [
        &mut details.teams_operator_connect,
        &mut details.teams_phone_mobile,
    ]
    .into_iter()
    .flatten()
    .filter(|s| s.enabled)
    {
        service
            .assignment_status
            .get_or_insert_with(|| DEFAULT_ASSIGNMENT_STATUS.as_str().to_owned());
    }
    let (status, errors) = status.map_or((None, None), |(s, e)| (Some(s.to_owned()), e));
    Number {
        telephone_number: format!("+{number}"),
        account_name: Some(record.account.to_string()),
        service_details: details,
        configuration: record.body.configuration.clone(),
        service_provisioning_status: status,
        service_provisioning_errors: errors,
    }
}

/// Writes one number that passed the rules; returns true when it was new.
fn write_number(
    store: &mut Store,
    account_name: &str,
    number: &Number,
    digits: u64,
    now: Millis,
    sync_delay: Millis,
) -> bool {
    // Writing what is already there changes nothing: same ETag, no new
    // backend sync, not counted as a number write (the emulator's own
    // rule, `rules::unchanged`, not the client's idea of the same).
    let body = rules::number_body(number);
    if let Some(existing) = store.numbers.get(&digits) {
        if *existing.account == *account_name && rules::unchanged(&existing.body, &body) {
            return false;
        }
    }
    let syncs = store
        .accounts
        .get(account_name)
        .is_some_and(|a| number_syncs(&a.account, number));
    let body = store.intern(body);
    let writes = store.numbers.get(&digits).map_or(0, |r| r.writes) + 1;
    let account = store.account_name(account_name);
    store.put_number(
        digits,
        NumberRecord {
            account,
            body,
            modified: now,
            sync: if syncs {
                BackendSync::Due(now + sync_delay)
            } else {
                BackendSync::None
            },
            writes,
        },
    )
}

fn delay_ms(app: &App) -> Millis {
    app.config.sync_delay.as_millis() as Millis
}

pub async fn list_accounts(
    State(app): State<Arc<App>>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response> {
    let query = app.list_query(raw.as_deref())?;
    let base = base_url(&app, &headers, "/accounts");
    let store = app.store();
    let now = now_ms();
    let after = query.after.clone();
    let items = match &after {
        Some(after) => store
            .accounts
            .range::<String, _>((Bound::Excluded(after), Bound::Unbounded)),
        None => store.accounts.range::<String, _>(..),
    };
    let page = paging::page(
        items,
        &query,
        &base,
        API_VERSION,
        |k| k.to_string(),
        |name, record| account_json(&store, name, record, now, delay_ms(&app)),
    );
    Ok(list(
        page,
        query.count_records.then_some(store.accounts.len()),
    ))
}

pub async fn get_account(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Response> {
    let store = app.store();
    let record = store
        .accounts
        .get(&name)
        .ok_or_else(|| account_missing(&name))?;
    let served = Served::of(&account_json(
        &store,
        &name,
        record,
        now_ms(),
        delay_ms(&app),
    ));
    if not_modified(&headers, &served.etag, record.modified) {
        return Ok(not_modified_response(&served.etag, record.modified));
    }
    Ok(resource(StatusCode::OK, served, record.modified))
}

pub async fn put_account(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response> {
    let account: Account = parse_body(&body)?;
    let mut store = app.store();
    let now = now_ms();
    let existing = store.accounts.get(&name);
    let current = existing.map(|r| {
        let served = Served::of(&account_json(&store, &name, r, now, delay_ms(&app)));
        (served.etag, r.modified)
    });
    write_preconditions(
        &headers,
        current
            .as_ref()
            .map(|(etag, modified)| (etag.as_str(), *modified)),
        &format!("account '{name}'"),
    )?;
    let existing = existing.map(|r| (r, store.service_counts(r)));
    let errors = rules::check_account(&name, &account, existing);
    if !errors.is_empty() {
        return Err(ApiError::invalid_fields(errors));
    }
    let mut stored = account.clone();
    stored.name = Some(name.clone());
    stored.service_provisioning_status = None;
    stored.service_provisioning_errors = None;
    let d = &mut stored.service_details;
    for service in [
        &mut d.teams_operator_connect,
        &mut d.teams_phone_mobile,
        &mut d.zoom_phone_cloud_peering,
        &mut d.azure_operator_call_protection,
    ]
    .into_iter()
    .flatten()
    {
        service.number_count = None;
    }
    if let Some(dr) = &mut d.teams_direct_routing {
        dr.number_count = None;
        dr.subdomain_status = None;
        if let Some(config) = &mut dr.configuration {
            config.call_screening.get_or_insert(true);
        }
    }
    let sync = if account_syncs(&stored) {
        BackendSync::Due(now + delay_ms(&app))
    } else {
        BackendSync::None
    };
    let previous = store.accounts.get(&name);
    let numbers = previous.map(|r| r.numbers.clone()).unwrap_or_default();
    let created = previous.is_none();
    // Rewriting the same subdomain and tokens does not start their
    // provisioning again.
    let subdomain_since = previous
        .filter(|r| direct_routing_setup(&r.account) == direct_routing_setup(&stored))
        .map_or(now, |r| r.subdomain_since);
    store.accounts.insert(
        name.clone(),
        AccountRecord {
            account: stored,
            modified: now,
            subdomain_since,
            sync,
            numbers,
        },
    );
    store.counters.writes_applied += 1;
    store.dirty = true;
    let record = &store.accounts[&name];
    let served = Served::of(&account_json(&store, &name, record, now, delay_ms(&app)));
    Ok(resource(
        if created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        },
        served,
        now,
    ))
}

/// What decides a Direct Routing subdomain's provisioning: whether the
/// service is on, the subdomain and its two tokens.
fn direct_routing_setup(
    account: &Account,
) -> Option<(Option<String>, crate::model::SubdomainTokens)> {
    let dr = account
        .service_details
        .teams_direct_routing
        .as_ref()
        .filter(|d| d.enabled)?;
    let config = dr.configuration.clone().unwrap_or_default();
    Some((
        config.subdomain,
        config.subdomain_tokens.unwrap_or_default(),
    ))
}

pub async fn delete_account(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response> {
    let with_numbers = url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
        .any(|(k, v)| k == "deleteNumbers" && v.eq_ignore_ascii_case("true"));
    let mut store = app.store();
    let record = store
        .accounts
        .get(&name)
        .ok_or_else(|| account_missing(&name))?;
    let served = Served::of(&account_json(
        &store,
        &name,
        record,
        now_ms(),
        delay_ms(&app),
    ));
    write_preconditions(
        &headers,
        Some((&served.etag, record.modified)),
        &format!("account '{name}'"),
    )?;
    if !record.numbers.is_empty() && !with_numbers {
        return Err(ApiError::conflict(
            "AccountHasNumbers",
            format!("account '{name}' still has {} numbers: delete them first or use deleteNumbers=true", record.numbers.len()),
        ));
    }
    let numbers: Vec<u64> = record.numbers.iter().copied().collect();
    for number in numbers {
        store.remove_number(number);
    }
    store.accounts.remove(&name);
    store.compact();
    store.counters.writes_applied += 1;
    store.dirty = true;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /accounts/{name}:action`.
pub async fn account_action(
    State(app): State<Arc<App>>,
    Path(segment): Path<String>,
    body: Bytes,
) -> Result<Response> {
    let Some((name, action)) = segment.split_once(':') else {
        return Err(ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed", "POST needs an action: /accounts/{name}:createOrUpdateNumbers, :deleteNumbers, :getTeamsCapabilityPlans or :getTeamsAvailableCapabilities"));
    };
    match action {
        "createOrUpdateNumbers" => create_or_update_numbers(&app, name, &body),
        "deleteNumbers" => delete_numbers(&app, name, &body),
        "getTeamsCapabilityPlans" => capability_plans(&app, name),
        "getTeamsAvailableCapabilities" => available_capabilities(&app, name, &body),
        other => Err(ApiError::not_found(
            "UnknownAction",
            format!("'{other}' is not an action of accounts"),
        )),
    }
}

fn batch_size_check(len: usize) -> Result<()> {
    if len == 0 {
        return Err(
            ApiError::bad_request("InvalidRequestBody", "numbers is empty").target("numbers"),
        );
    }
    if len > MAX_BATCH {
        return Err(ApiError::bad_request(
            "TooManyNumbers",
            format!("a batch may carry at most {MAX_BATCH} numbers; this one has {len}"),
        )
        .target("numbers"));
    }
    Ok(())
}

fn create_or_update_numbers(app: &App, name: &str, body: &[u8]) -> Result<Response> {
    let request: NumbersBody = parse_body(body)?;
    batch_size_check(request.numbers.len())?;
    let mut store = app.store();
    let account = store
        .accounts
        .get(name)
        .ok_or_else(|| account_missing(name))?;
    let mut errors = Vec::new();
    let mut seen = HashSet::new();
    let mut elsewhere = Vec::new();
    let mut digits = Vec::with_capacity(request.numbers.len());
    for (i, number) in request.numbers.iter().enumerate() {
        errors.extend(rules::check_number(
            number,
            name,
            account,
            &format!("numbers[{i}]"),
        ));
        let parsed = rules::parse_e164(&number.telephone_number);
        if let Some(n) = parsed {
            if !seen.insert(n) {
                errors.push(field(
                    "DuplicateNumber",
                    format!("numbers[{i}].telephoneNumber"),
                    format!("{} is in the batch more than once", number.telephone_number),
                ));
            }
            if let Some(owner) = store.numbers.get(&n).filter(|r| *r.account != *name) {
                elsewhere.push(field(
                    "NumberInAnotherAccount",
                    format!("numbers[{i}].telephoneNumber"),
                    format!(
                        "{} belongs to account '{}'",
                        number.telephone_number, owner.account
                    ),
                ));
            }
        }
        digits.push(parsed.unwrap_or(0));
    }
    if !errors.is_empty() {
        return Err(ApiError::invalid_fields(errors));
    }
    if !elsewhere.is_empty() {
        let mut error = ApiError::conflict("NumberInAnotherAccount", elsewhere[0].message.clone());
        error.detail.details = elsewhere;
        return Err(error);
    }
    let now = now_ms();
    for (number, &n) in request.numbers.iter().zip(&digits) {
        write_number(&mut store, name, number, n, now, delay_ms(app));
    }
    store.counters.writes_applied += 1;
    let numbers: Vec<Value> = digits
        .iter()
        .map(|n| number_json(*n, &store.numbers[n], now))
        .collect();
    Ok(Json(serde_json::json!({ "numbers": numbers })).into_response())
}

fn delete_numbers(app: &App, name: &str, body: &[u8]) -> Result<Response> {
    let request: NumberRefsBody = parse_body(body)?;
    batch_size_check(request.numbers.len())?;
    let mut store = app.store();
    if !store.accounts.contains_key(name) {
        return Err(account_missing(name));
    }
    let mut errors = Vec::new();
    let mut digits = Vec::new();
    for (i, number) in request.numbers.iter().enumerate() {
        match rules::parse_e164(&number.telephone_number) {
            None => errors.push(field(
                "InvalidTelephoneNumber",
                format!("numbers[{i}].telephoneNumber"),
                format!(
                    "'{}' is not an E.164 number",
                    rules::clip(&number.telephone_number)
                ),
            )),
            Some(n) => {
                if let Some(owner) = store.numbers.get(&n).filter(|r| *r.account != *name) {
                    errors.push(field(
                        "NumberInAnotherAccount",
                        format!("numbers[{i}].telephoneNumber"),
                        format!(
                            "{} belongs to account '{}'",
                            number.telephone_number, owner.account
                        ),
                    ));
                }
                digits.push(n);
            }
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::invalid_fields(errors));
    }
    // Numbers already gone are fine: a bulk delete is idempotent.
    for n in digits {
        store.remove_number(n);
    }
    store.compact();
    store.counters.writes_applied += 1;
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn capability_plans(app: &App, name: &str) -> Result<Response> {
    let store = app.store();
    let account = store
        .accounts
        .get(name)
        .ok_or_else(|| account_missing(name))?;
    let d = &account.account.service_details;
    let mut plans = Vec::new();
    let plan = |name: &str,
                offer: &[&str],
                usage: &str,
                mandatory: &[&str],
                choosable: &[&str],
                toll_free| CapabilityPlan {
        name: name.into(),
        offer_types: offer.iter().map(|s| s.to_string()).collect(),
        usage: usage.into(),
        mandatory_capabilities: mandatory.iter().map(|s| s.to_string()).collect(),
        choosable_capabilities: choosable.iter().map(|s| s.to_string()).collect(),
        supports_toll_free: toll_free,
    };
    if d.teams_operator_connect.as_ref().is_some_and(|s| s.enabled) {
        plans.push(plan(
            "CallingUser",
            &["OperatorConnect"],
            "CallingUserAssignment",
            &["InboundCalling"],
            &["OutboundCalling"],
            false,
        ));
        plans.push(plan(
            "FirstPartyApp",
            &["OperatorConnect"],
            "FirstPartyAppAssignment",
            &["InboundCalling"],
            &["OutboundCalling"],
            true,
        ));
        plans.push(plan(
            "Conference",
            &["OperatorConnect"],
            "ConferenceAssignment",
            &["InboundCalling"],
            &[],
            true,
        ));
    }
    if d.teams_phone_mobile.as_ref().is_some_and(|s| s.enabled) {
        plans.push(plan(
            "MobileUser",
            &["TeamsPhoneMobile"],
            "CallingUserAssignment",
            &["Mobile", "InboundCalling"],
            &["OutboundCalling"],
            false,
        ));
    }
    Ok(Json(CapabilityPlans {
        capability_plans: plans,
    })
    .into_response())
}

fn available_capabilities(app: &App, name: &str, body: &[u8]) -> Result<Response> {
    let request: NumberRefsBody = parse_body(body)?;
    batch_size_check(request.numbers.len())?;
    let store = app.store();
    if !store.accounts.contains_key(name) {
        return Err(account_missing(name));
    }
    let errors: Vec<_> = request
        .numbers
        .iter()
        .enumerate()
        .filter(|(_, n)| rules::parse_e164(&n.telephone_number).is_none())
        .map(|(i, n)| {
            field(
                "InvalidTelephoneNumber",
                format!("numbers[{i}].telephoneNumber"),
                format!(
                    "'{}' is not an E.164 number",
                    rules::clip(&n.telephone_number)
                ),
            )
        })
        .collect();
    if !errors.is_empty() {
        return Err(ApiError::invalid_fields(errors));
    }
    let toll_free = request
        .numbers
        .iter()
        .any(|n| crate::phone::is_north_american_toll_free(&n.telephone_number));
    let mut capabilities = vec!["InboundCalling".to_owned()];
    if !toll_free {
        capabilities.push("OutboundCalling".to_owned());
    }
    Ok(Json(AvailableCapabilities {
        available_capabilities: capabilities,
    })
    .into_response())
}

/// The digits of a number in a path (`+` as is or as `%2B`).
fn path_number(text: &str) -> Result<u64> {
    rules::parse_e164(text).ok_or_else(|| {
        ApiError::bad_request(
            "InvalidTelephoneNumber",
            format!("'{}' is not an E.164 number", rules::clip(text)),
        )
        .target("telephoneNumber")
    })
}

fn number_missing(name: &str, number: &str) -> ApiError {
    ApiError::not_found(
        "NumberNotFound",
        format!("number {number} is not in account '{name}'"),
    )
    .target("telephoneNumber")
}

pub async fn list_account_numbers(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response> {
    let query = app.list_query(raw.as_deref())?;
    let base = base_url(&app, &headers, &format!("/accounts/{name}/numbers"));
    let store = app.store();
    let account = store
        .accounts
        .get(&name)
        .ok_or_else(|| account_missing(&name))?;
    let items = account
        .numbers
        .range((numbers_after(&query)?, Bound::Unbounded))
        .map(|n| (*n, &store.numbers[n]));
    Ok(numbers_page(items, &query, &base, account.numbers.len()))
}

pub async fn list_numbers(
    State(app): State<Arc<App>>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response> {
    let query = app.list_query(raw.as_deref())?;
    let base = base_url(&app, &headers, "/numbers");
    let store = app.store();
    let items = store
        .numbers
        .range((numbers_after(&query)?, Bound::Unbounded))
        .map(|(n, r)| (*n, r));
    Ok(numbers_page(items, &query, &base, store.numbers.len()))
}

/// Where a page of numbers starts: after the continuation token's number.
fn numbers_after(query: &paging::ListQuery) -> Result<Bound<u64>> {
    Ok(match &query.after {
        Some(token) => Bound::Excluded(path_number(token)?),
        None => Bound::Unbounded,
    })
}

/// One page of `items` (numbers in ascending order) out of `total`.
fn numbers_page<'a>(
    items: impl Iterator<Item = (u64, &'a NumberRecord)>,
    query: &paging::ListQuery,
    base: &str,
    total: usize,
) -> Response {
    let now = now_ms();
    let page = paging::page(
        items,
        query,
        base,
        API_VERSION,
        |n| format!("+{n}"),
        |n, r| number_json(n, r, now),
    );
    list(page, query.count_records.then_some(total))
}

pub async fn get_number(
    State(app): State<Arc<App>>,
    Path((name, number)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response> {
    let digits = path_number(&number)?;
    let store = app.store();
    if !store.accounts.contains_key(&name) {
        return Err(account_missing(&name));
    }
    let record = store
        .numbers
        .get(&digits)
        .filter(|r| *r.account == *name)
        .ok_or_else(|| number_missing(&name, &number))?;
    let served = Served::of(&number_json(digits, record, now_ms()));
    if not_modified(&headers, &served.etag, record.modified) {
        return Ok(not_modified_response(&served.etag, record.modified));
    }
    Ok(resource(StatusCode::OK, served, record.modified))
}

pub async fn put_number(
    State(app): State<Arc<App>>,
    Path((name, number)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response> {
    let digits = path_number(&number)?;
    let mut request: Number = {
        let mut value: serde_json::Value = parse_body(&body)?;
        // The number is in the path; the body may leave it out.
        if let Some(object) = value.as_object_mut() {
            object
                .entry("telephoneNumber")
                .or_insert_with(|| serde_json::Value::String(format!("+{digits}")));
        }
        let text = value.to_string();
        let mut de = serde_json::Deserializer::from_str(&text);
        serde_path_to_error::deserialize(&mut de).map_err(|e| {
            ApiError::bad_request(
                "InvalidRequestBody",
                format!("invalid JSON at {}: {}", e.path(), e.inner()),
            )
            .target(e.path().to_string())
        })?
    };
    if rules::parse_e164(&request.telephone_number) != Some(digits) {
        return Err(ApiError::bad_request(
            "TelephoneNumberMismatch",
            format!(
                "telephoneNumber {} does not match {number} in the path",
                rules::clip(&request.telephone_number)
            ),
        )
        .target("telephoneNumber"));
    }
    let mut store = app.store();
    let account = store
        .accounts
        .get(&name)
        .ok_or_else(|| account_missing(&name))?;
    let existing = store.numbers.get(&digits);
    if let Some(owner) = existing.filter(|r| *r.account != *name) {
        return Err(ApiError::conflict(
            "NumberInAnotherAccount",
            format!("{number} belongs to account '{}'", owner.account),
        )
        .target("telephoneNumber"));
    }
    let now = now_ms();
    let current = existing.map(|r| (Served::of(&number_json(digits, r, now)).etag, r.modified));
    write_preconditions(
        &headers,
        current
            .as_ref()
            .map(|(etag, modified)| (etag.as_str(), *modified)),
        &format!("number {number}"),
    )?;
    let errors = rules::check_number(&request, &name, account, "");
    if !errors.is_empty() {
        return Err(ApiError::invalid_fields(errors));
    }
    request.account_name = Some(name.clone());
    let created = write_number(&mut store, &name, &request, digits, now, delay_ms(&app));
    store.counters.writes_applied += 1;
    let record = &store.numbers[&digits];
    let served = Served::of(&number_json(digits, record, now));
    Ok(resource(
        if created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        },
        served,
        record.modified,
    ))
}

pub async fn delete_number(
    State(app): State<Arc<App>>,
    Path((name, number)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response> {
    let digits = path_number(&number)?;
    let mut store = app.store();
    if !store.accounts.contains_key(&name) {
        return Err(account_missing(&name));
    }
    let record = store
        .numbers
        .get(&digits)
        .filter(|r| *r.account == *name)
        .ok_or_else(|| number_missing(&name, &number))?;
    let served = Served::of(&number_json(digits, record, now_ms()));
    write_preconditions(
        &headers,
        Some((&served.etag, record.modified)),
        &format!("number {number}"),
    )?;
    store.remove_number(digits);
    store.compact();
    store.counters.writes_applied += 1;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn list_civic(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response> {
    let query = app.list_query(raw.as_deref())?;
    let base = base_url(
        &app,
        &headers,
        &format!("/accounts/{name}/teamsCivicAddresses"),
    );
    let store = app.store();
    if !store.accounts.contains_key(&name) {
        return Err(account_missing(&name));
    }
    let empty = Default::default();
    let addresses = store.civic.get(&name).unwrap_or(&empty);
    let items = match &query.after {
        Some(after) => addresses.range::<String, _>((Bound::Excluded(after), Bound::Unbounded)),
        None => addresses.range::<String, _>(..),
    };
    let page = paging::page(
        items,
        &query,
        &base,
        API_VERSION,
        |k| k.to_string(),
        |_, a| a.clone(),
    );
    Ok(list(page, query.count_records.then_some(addresses.len())))
}

pub async fn get_civic(
    State(app): State<Arc<App>>,
    Path((name, id)): Path<(String, String)>,
) -> Result<Response> {
    let store = app.store();
    if !store.accounts.contains_key(&name) {
        return Err(account_missing(&name));
    }
    let address = store
        .civic
        .get(&name)
        .and_then(|a| a.get(&id))
        .ok_or_else(|| {
            ApiError::not_found(
                "CivicAddressNotFound",
                format!("civic address '{id}' is not in account '{name}'"),
            )
        })?;
    Ok(resource(StatusCode::OK, Served::of(&to_json(address)), 0))
}

fn rfi_missing(tenant: &str) -> ApiError {
    ApiError::not_found(
        "RequestForInformationNotFound",
        format!("no Request for Information for tenant '{tenant}'"),
    )
    .target("tenantId")
}

pub async fn list_rfis(
    State(app): State<Arc<App>>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response> {
    let query = app.list_query(raw.as_deref())?;
    let base = base_url(&app, &headers, "/teamsRequestsForInformation");
    let store = app.store();
    let items = match &query.after {
        Some(after) => store
            .rfis
            .range::<String, _>((Bound::Excluded(after), Bound::Unbounded)),
        None => store.rfis.range::<String, _>(..),
    };
    let page = paging::page(
        items,
        &query,
        &base,
        API_VERSION,
        |k| k.to_string(),
        |_, r: &RfiRecord| rfi_json(r),
    );
    Ok(list(page, query.count_records.then_some(store.rfis.len())))
}

pub async fn get_rfi(
    State(app): State<Arc<App>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
) -> Result<Response> {
    let store = app.store();
    let record = store
        .rfis
        .get(&tenant)
        .ok_or_else(|| rfi_missing(&tenant))?;
    let modified = record
        .rfi
        .last_modified_on
        .as_deref()
        .and_then(|t| humantime::parse_rfc3339(t).ok())
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_millis() as u64);
    let served = Served::of(&rfi_json(record));
    if not_modified(&headers, &served.etag, modified) {
        return Ok(not_modified_response(&served.etag, modified));
    }
    Ok(resource(StatusCode::OK, served, modified))
}

pub async fn patch_rfi(
    State(app): State<Arc<App>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response> {
    let patch: RfiPatch = parse_body(&body)?;
    let relationship = patch.customer_relationship;
    let mut errors = Vec::new();
    // The status is a free string, as in the published REST client; only
    // the two portal states that record a refusal need a reason.
    let status = relationship.status.as_deref().unwrap_or("");
    if status.trim().is_empty() {
        errors.push(field(
            "InvalidRelationshipStatus",
            "customerRelationship.status",
            "customerRelationship.status is required",
        ));
    } else if status.chars().count() > rules::MAX_RELATIONSHIP_STATUS {
        errors.push(field(
            "InvalidRelationshipStatus",
            "customerRelationship.status",
            format!(
                "status is longer than {} characters",
                rules::MAX_RELATIONSHIP_STATUS
            ),
        ));
    } else if RelationshipStatus::parse_exact(status).is_some_and(|s| s.needs_comment())
        && relationship
            .comment
            .as_deref()
            .unwrap_or("")
            .trim()
            .is_empty()
    {
        errors.push(field(
            "CommentRequired",
            "customerRelationship.comment",
            format!("a status of {status} needs a comment giving the reason"),
        ))
    }
    if relationship
        .comment
        .as_deref()
        .is_some_and(|c| c.chars().count() > rules::MAX_COMMENT)
    {
        errors.push(field(
            "InvalidComment",
            "customerRelationship.comment",
            format!("comment is longer than {} characters", rules::MAX_COMMENT),
        ));
    }
    if relationship
        .ticket_id
        .as_deref()
        .is_some_and(|t| t.chars().count() > rules::MAX_TICKET_ID)
    {
        errors.push(field(
            "InvalidTicketId",
            "customerRelationship.ticketId",
            format!(
                "ticketId is longer than {} characters",
                rules::MAX_TICKET_ID
            ),
        ));
    }
    if !errors.is_empty() {
        return Err(ApiError::invalid_fields(errors));
    }
    let mut store = app.store();
    let record = store
        .rfis
        .get_mut(&tenant)
        .ok_or_else(|| rfi_missing(&tenant))?;
    let current = Served::of(&rfi_json(record));
    write_preconditions(
        &headers,
        Some((&current.etag, 0)),
        &format!("the RFI of tenant '{tenant}'"),
    )?;
    let now = now_ms();
    let stamp =
        humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(now)).to_string();
    let created = record.rfi.customer_relationship.is_none();
    record.rfi.customer_relationship = Some(crate::model::CustomerRelationship {
        status: relationship.status,
        comment: relationship.comment,
        ticket_id: relationship.ticket_id,
        last_modified_on: Some(stamp.clone()),
    });
    record.rfi.last_modified_on = Some(stamp);
    let served = Served::of(&rfi_json(record));
    store.counters.writes_applied += 1;
    store.dirty = true;
    Ok(resource(
        if created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        },
        served,
        now,
    ))
}

/// Any path the API does not have.
pub async fn not_found(method: Method, uri: axum::http::Uri) -> Response {
    ApiError::not_found(
        "NotFound",
        format!(
            "{method} {} is not an operation of the Provisioning API",
            uri.path()
        ),
    )
    .into_response()
}
