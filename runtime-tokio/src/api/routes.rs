//! The axum routes and their handlers.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use http_body_util::{BodyExt as _, LengthLimitError, Limited};
use serde::Serialize;
use vigil_core::control::{ControlError, ControlPlane};
use vigil_core::registry::HEALTH_ENDPOINT;
use vigil_core::registry::{HealthStatus, Instance, Query, RegisterOutcome, RegistryError};
use vigil_core::{Duration, InstanceId, Instant, NodeId};

use super::LIVENESS_ENDPOINT;
use super::model::{
    ErrorBody, InstanceList, InstanceRecord, Lease, MonitorCounts, MonitorRecord, Outcome, RegisterInstance,
    Registered, ServiceList, ServiceRecord,
};
use crate::driver::MachineRef;
use crate::error::Error;
use crate::probe::HttpTarget;
use crate::transport::HttpPeer;

/// Most `tag=` filters one query may give.
pub const MAX_TAG_FILTERS: usize = 32;

/// Entries in one page of a list (`GET /v1/instances`, `GET /v1/services`)
/// when the query gives no `limit`.
pub const DEFAULT_PAGE: usize = 100;

/// Most entries in one page of a list: a larger `limit` is refused. Bounds
/// both the answer and the time the control driver spends building it.
pub const MAX_PAGE: usize = 1000;

/// What every handler shares.
#[derive(Clone)]
pub(super) struct Api {
    pub(super) control: MachineRef<ControlPlane>,
    pub(super) read_token: Option<Arc<str>>,
    pub(super) write_token: Option<Arc<str>>,
    /// No token needed ([`ApiConfig::insecure_open`](super::ApiConfig::insecure_open)).
    pub(super) open: bool,
    pub(super) body_limit: usize,
    /// The HTTP peers this API set on the driver, by node: for which
    /// instance. Only touched on the driver task (inside its closures).
    pub(super) http_peers: Arc<Mutex<OwnedPeers>>,
}

/// Nodes whose HTTP peer an API registration set, and the instance whose
/// registration set it.
pub(super) type OwnedPeers = BTreeMap<NodeId, InstanceId>;

pub(super) fn router(api: Api) -> Router {
    Router::new()
        .route("/v1/instances", get(list_instances).post(register))
        .route("/v1/instances/{id}", get(get_instance).delete(deregister))
        .route("/v1/services", get(list_services))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(api)
}

/// A JSON answer.
fn json<T: Serialize>(status: StatusCode, value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => (status, [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], body)
            .into_response(),
        // Our own types of strings, numbers and string-keyed maps: cannot fail.
        Err(error) => {
            tracing::error!(%error, "cannot encode an answer");
            (StatusCode::INTERNAL_SERVER_ERROR, "cannot encode the answer").into_response()
        }
    }
}

/// An error answer: `{"error": reason, "kind": kind}` with `status`.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    kind: &'static str,
    reason: String,
}

fn error(status: StatusCode, kind: &'static str, reason: impl Into<String>) -> ApiError {
    ApiError { status, kind, reason: reason.into() }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = json(self.status, &ErrorBody { error: self.reason, kind: self.kind.to_owned() });
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<Error> for ApiError {
    /// The control plane's driver is not running.
    fn from(e: Error) -> Self {
        error(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            format!("the control plane is not running: {e}"),
        )
    }
}

async fn not_found() -> ApiError {
    error(StatusCode::NOT_FOUND, "not_found", "no such route; see /v1/instances and /v1/services")
}

async fn method_not_allowed() -> ApiError {
    error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "method not allowed on this route")
}

// ----- authorisation and bodies -----

/// What a request needs its token for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scope {
    /// Reading the catalog: the read or the write token.
    Read,
    /// Changing it: the write token.
    Write,
}

/// Check the bearer token of a request against `scope`.
fn authorise(api: &Api, headers: &HeaderMap, scope: Scope) -> Result<(), ApiError> {
    if api.open {
        return Ok(());
    }
    let forbidden = |reason: &str| error(StatusCode::FORBIDDEN, "forbidden", reason);
    match scope {
        Scope::Write if api.write_token.is_none() => {
            return Err(forbidden("mutations are disabled: this API has no write token configured"));
        }
        Scope::Read if api.write_token.is_none() && api.read_token.is_none() => {
            return Err(forbidden("reads are disabled: this API has no token configured"));
        }
        _ => {}
    }
    let unauthorised = |reason: &str| error(StatusCode::UNAUTHORIZED, "unauthorized", reason);
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(unauthorised("this request needs a token: send `Authorization: Bearer <token>`"));
    };
    let given = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim);
    let Some(given) = given else {
        return Err(unauthorised("the Authorization header must be `Bearer <token>`"));
    };
    // Both compared, whatever the first says: the time tells nothing.
    let matches = |token: &Option<Arc<str>>| {
        token.as_deref().is_some_and(|t| constant_time_eq(given.as_bytes(), t.as_bytes()))
    };
    let (write, read) = (matches(&api.write_token), matches(&api.read_token));
    match (write, read, scope) {
        (true, _, _) | (false, true, Scope::Read) => Ok(()),
        (false, true, Scope::Write) => Err(forbidden("the read token cannot make mutations")),
        (false, false, _) => Err(unauthorised("invalid token")),
    }
}

/// Refuse a body that is not declared `application/json` (parameters such
/// as `charset` allowed): a web page cannot send one across origins without
/// a preflight, which the API does not answer.
fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
    let media = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").trim().to_ascii_lowercase());
    match media.as_deref() {
        Some("application/json") => Ok(()),
        Some(other) => Err(error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!("the body must be `Content-Type: application/json`, not {:?}", truncate(other, 64)),
        )),
        None => Err(error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "the body must be sent with `Content-Type: application/json`",
        )),
    }
}

/// Whether `error` or one of its sources is a `T`.
fn caused_by<T: std::error::Error + 'static>(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(e) = current {
        if e.is::<T>() {
            return true;
        }
        current = e.source();
    }
    false
}

/// Equality whose time does not depend on where the inputs differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = u8::from(a.len() != b.len());
    for i in 0..a.len().max(b.len()) {
        diff |= a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0);
    }
    diff == 0
}

/// Read a body of at most `limit` bytes.
async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, ApiError> {
    let too_large = || {
        error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("the body exceeds the limit of {limit} bytes"),
        )
    };
    // Refuse a declared length at once, before reading anything.
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(too_large());
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if caused_by::<LengthLimitError>(&*e) => Err(too_large()),
        Err(e) if caused_by::<tower_http::timeout::TimeoutError>(&*e) => Err(error(
            StatusCode::REQUEST_TIMEOUT,
            "timeout",
            "the body did not arrive within the body read timeout",
        )),
        Err(e) => Err(error(StatusCode::BAD_REQUEST, "invalid_json", format!("cannot read the body: {e}"))),
    }
}

fn parse_id(id: &str) -> Result<InstanceId, ApiError> {
    id.parse::<u32>().map(InstanceId).map_err(|_| {
        error(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            format!("instance id {:?} is not an integer in 0..=4294967295", truncate(id, 32)),
        )
    })
}

fn truncate(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

// ----- records -----

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn record(c: &ControlPlane, i: &Instance, now: Instant) -> InstanceRecord {
    let liveness = c.detector().instance(i.id);
    let monitor = c.monitor().instance(i.id).map(|v| MonitorRecord {
        status: v.status,
        ready: v.ready,
        started: v.started,
        flapping: v.flapping,
        needs_recovery: v.needs_recovery,
    });
    InstanceRecord {
        id: i.id.0,
        service: c.registry().service_name(i.service).unwrap_or_default().to_owned(),
        version: i.version.clone(),
        zone: i.zone.clone(),
        tags: i.tags.iter().cloned().collect(),
        weight: i.weight,
        node: c.node_of(i.id).map(|n| n.0),
        endpoints: i.endpoints.as_slice().into(),
        health: i.health(),
        routable: c.is_routable(i.id),
        liveness: liveness.map(|l| l.status),
        class: liveness.map(|l| l.class),
        monitor,
        lease: Lease {
            ttl_ms: ms(i.ttl),
            expired: i.lease_expired,
            expires_in_ms: if i.lease_expired {
                0
            } else {
                ms(i.lease_expires_at.saturating_duration_since(now))
            },
        },
        critical_for_ms: i.critical_since.map(|since| ms(now.saturating_duration_since(since))),
        registered_ms_ago: ms(now.saturating_duration_since(i.registered_at)),
        create_index: i.create_index,
        modify_index: i.modify_index,
    }
}

// ----- HTTP peers of registered instances -----

/// The HTTP peer a registration's endpoints ask for: probes to its
/// [`HEALTH_ENDPOINT`], liveness probes to its [`LIVENESS_ENDPOINT`] if it
/// has one; `None` without a health endpoint. Err: the reason one of them
/// is not an `http://` target (the liveness endpoint is only read, so only
/// checked, along with a health endpoint).
fn http_peer(endpoints: &super::Endpoints) -> Result<Option<HttpPeer>, String> {
    let Some(health) = endpoints.get(HEALTH_ENDPOINT) else { return Ok(None) };
    let target = |name: &str, url: &str| {
        HttpTarget::parse(url)
            .map_err(|e| format!("endpoint {name:?} must be an http URL the control node can probe: {e}"))
    };
    let health = target(HEALTH_ENDPOINT, health)?;
    let liveness = endpoints.get(LIVENESS_ENDPOINT).map(|url| target(LIVENESS_ENDPOINT, url)).transpose()?;
    Ok(Some(HttpPeer { health: Some(health), liveness, service: None }))
}

/// Remove the HTTP peers this API set whose entry matches `which`.
fn release(
    owned: &mut OwnedPeers,
    peers: &mut BTreeMap<NodeId, HttpPeer>,
    mut which: impl FnMut(NodeId, InstanceId) -> bool,
) {
    owned.retain(|&node, &mut owner| {
        let drop = which(node, owner);
        if drop {
            peers.remove(&node);
            tracing::debug!(node = node.0, instance = owner.0, "http peer removed");
        }
        !drop
    });
}

/// Remove the HTTP peers this API set for instances that left (deregistered,
/// or let go by the catalog since) or moved to another node.
fn release_stale(c: &ControlPlane, owned: &mut OwnedPeers, peers: &mut BTreeMap<NodeId, HttpPeer>) {
    release(owned, peers, |node, owner| c.node_of(owner) != Some(node));
}

// ----- handlers -----

async fn register(State(api): State<Api>, headers: HeaderMap, body: Body) -> Result<Response, ApiError> {
    authorise(&api, &headers, Scope::Write)?;
    require_json(&headers)?;
    let bytes = read_body(&headers, body, api.body_limit).await?;
    let request: RegisterInstance = serde_json::from_slice(&bytes)
        .map_err(|e| error(StatusCode::BAD_REQUEST, "invalid_json", format!("invalid body: {e}")))?;
    let id = InstanceId(request.id);
    let node = NodeId(request.node);
    // Before anything changes: a health endpoint the driver cannot probe is
    // a bad registration.
    let peer = http_peer(&request.endpoints)
        .map_err(|reason| error(StatusCode::BAD_REQUEST, "invalid_registration", reason))?;
    let owned = Arc::clone(&api.http_peers);
    let answer = api
        .control
        .with_machine_and_http_peers_mut(move |c: &mut ControlPlane, now, peers| {
            let outcome = c.register(now, request.to_request())?;
            // In the same step: the probes the registration asks for, drained
            // after this closure, already go to the instance over HTTP.
            let mut owned = owned.lock().unwrap_or_else(PoisonError::into_inner);
            match peer {
                Some(peer) => {
                    // It may have moved: its old node's peer goes.
                    release(&mut owned, peers, |n, owner| owner == id && n != node);
                    peers.insert(node, peer);
                    owned.insert(node, id);
                }
                None => release(&mut owned, peers, |_, owner| owner == id),
            }
            release_stale(c, &mut owned, peers);
            let record = c.registry().instance(id).map(|i| record(c, i, now));
            Ok::<_, ControlError>((outcome, record))
        })
        .await?;
    let (outcome, instance) = answer.map_err(|e| {
        tracing::debug!(instance = id.0, error = %e, "registration refused");
        let (status, kind) = match &e {
            ControlError::Registry(RegistryError::DuplicateInstance { .. }) => {
                (StatusCode::CONFLICT, "conflict")
            }
            ControlError::Registry(
                RegistryError::CatalogFull { .. } | RegistryError::TooManyServices { .. },
            ) => (StatusCode::SERVICE_UNAVAILABLE, "catalog_full"),
            _ => (StatusCode::BAD_REQUEST, "invalid_registration"),
        };
        error(status, kind, e.to_string())
    })?;
    // Just registered, on the same task: it is there.
    let instance = instance
        .ok_or_else(|| error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", format!("{id} left at once")))?;
    let (status, outcome) = match outcome {
        RegisterOutcome::Created => (StatusCode::CREATED, Outcome::Created),
        RegisterOutcome::Updated => (StatusCode::OK, Outcome::Updated),
        RegisterOutcome::Renewed => (StatusCode::OK, Outcome::Renewed),
    };
    tracing::info!(instance = id.0, service = %instance.service, ?outcome, "registered over the API");
    let mut response = json(status, &Registered { outcome, instance });
    if status == StatusCode::CREATED {
        if let Ok(location) = HeaderValue::from_str(&format!("/v1/instances/{}", id.0)) {
            response.headers_mut().insert(header::LOCATION, location);
        }
    }
    Ok(response)
}

async fn deregister(
    State(api): State<Api>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    authorise(&api, &headers, Scope::Write)?;
    let id = parse_id(&id)?;
    let owned = Arc::clone(&api.http_peers);
    let known = api
        .control
        .with_machine_and_http_peers_mut(move |c: &mut ControlPlane, now, peers| {
            let known = c.registry().instance(id).is_some() && c.deregister(now, id);
            let mut owned = owned.lock().unwrap_or_else(PoisonError::into_inner);
            release_stale(c, &mut owned, peers);
            known
        })
        .await?;
    if !known {
        return Err(error(StatusCode::NOT_FOUND, "not_found", format!("{id} is not registered")));
    }
    tracing::info!(instance = id.0, "deregistered over the API");
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn get_instance(
    State(api): State<Api>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    authorise(&api, &headers, Scope::Read)?;
    let id = parse_id(&id)?;
    let found = api
        .control
        .with_machine_at(move |c: &ControlPlane, now| c.registry().instance(id).map(|i| record(c, i, now)))
        .await?;
    match found {
        Some(record) => Ok(json(StatusCode::OK, &record)),
        None => Err(error(StatusCode::NOT_FOUND, "not_found", format!("{id} is not registered"))),
    }
}

/// The filters and page of `GET /v1/instances`.
#[derive(Debug)]
struct InstanceFilter {
    service: Option<String>,
    query: Query,
    /// Page size, 1 to [`MAX_PAGE`].
    limit: usize,
    /// Only ids above this one.
    after: Option<InstanceId>,
}

impl Default for InstanceFilter {
    fn default() -> Self {
        InstanceFilter { service: None, query: Query::default(), limit: DEFAULT_PAGE, after: None }
    }
}

/// A `limit=` value: 1 to [`MAX_PAGE`].
fn parse_limit(value: &str) -> Result<usize, ApiError> {
    match value.parse::<usize>() {
        Ok(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
        _ => Err(error(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            format!("limit {:?} is not an integer in 1..={MAX_PAGE}", truncate(value, 32)),
        )),
    }
}

impl InstanceFilter {
    fn parse(query: Option<&str>) -> Result<Self, ApiError> {
        let mut filter = InstanceFilter::default();
        let bad = |reason: String| error(StatusCode::BAD_REQUEST, "invalid_query", reason);
        for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            let value = value.into_owned();
            match &*key {
                "service" => filter.service = Some(value),
                "version" => filter.query.version = Some(value),
                "zone" => filter.query.zone = Some(value),
                "tag" if filter.query.tags.len() < MAX_TAG_FILTERS => filter.query.tags.push(value),
                "tag" => return Err(bad(format!("at most {MAX_TAG_FILTERS} tag filters"))),
                "limit" => filter.limit = parse_limit(&value)?,
                "after" => filter.after = Some(parse_id(&value)?),
                other => {
                    return Err(bad(format!(
                        "unknown query parameter {:?}; use service, version, zone, tag, limit, after",
                        truncate(other, 64)
                    )));
                }
            }
        }
        Ok(filter)
    }
}

/// The `limit` smallest of `keys`, sorted, and whether there were more.
fn first_page<K: Ord>(mut keys: Vec<K>, limit: usize) -> (Vec<K>, bool) {
    let more = keys.len() > limit;
    if more {
        keys.select_nth_unstable(limit);
        keys.truncate(limit);
    }
    keys.sort_unstable();
    (keys, more)
}

async fn list_instances(
    State(api): State<Api>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    authorise(&api, &headers, Scope::Read)?;
    let filter = InstanceFilter::parse(query.as_deref())?;
    // On the driver: the matching ids (no copy of any record), then the
    // records of one page only. The answer is encoded here, off the driver.
    let list = api
        .control
        .with_machine_at(move |c: &ControlPlane, now| {
            let registry = c.registry();
            let services: Vec<_> = match &filter.service {
                Some(name) => registry.service_id(name).into_iter().collect(),
                None => registry.services().map(|(id, _)| id).collect(),
            };
            let ids: Vec<InstanceId> = services
                .into_iter()
                .flat_map(|s| registry.instances(s, &filter.query))
                .map(|i| i.id)
                .filter(|&id| filter.after.is_none_or(|after| id > after))
                .collect();
            let (page, more) = first_page(ids, filter.limit);
            let next = if more { page.last().map(|id| id.0) } else { None };
            let instances =
                page.into_iter().filter_map(|id| registry.instance(id)).map(|i| record(c, i, now)).collect();
            InstanceList { index: registry.index(), instances, next }
        })
        .await?;
    Ok(json(StatusCode::OK, &list))
}

/// The page of `GET /v1/services`.
#[derive(Debug)]
struct ServicePage {
    limit: usize,
    after: Option<String>,
}

impl ServicePage {
    fn parse(query: Option<&str>) -> Result<Self, ApiError> {
        let mut page = ServicePage { limit: DEFAULT_PAGE, after: None };
        for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            match &*key {
                "limit" => page.limit = parse_limit(&value)?,
                "after" => page.after = Some(value.into_owned()),
                other => {
                    return Err(error(
                        StatusCode::BAD_REQUEST,
                        "invalid_query",
                        format!("unknown query parameter {:?}; use limit, after", truncate(other, 64)),
                    ));
                }
            }
        }
        Ok(page)
    }
}

async fn list_services(
    State(api): State<Api>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    authorise(&api, &headers, Scope::Read)?;
    let page = ServicePage::parse(query.as_deref())?;
    let list = api
        .control
        .with_machine(move |c: &ControlPlane| {
            let registry = c.registry();
            let all = Query::all();
            // Empty services (known, not yet forgotten) are not listed.
            let names: Vec<(&str, vigil_core::ServiceId)> = registry
                .services()
                .filter(|(_, name)| page.after.as_deref().is_none_or(|after| *name > after))
                .filter(|&(id, _)| registry.instances(id, &all).next().is_some())
                .map(|(id, name)| (name, id))
                .collect();
            let (names, more) = first_page(names, page.limit);
            let next = if more { names.last().map(|(name, _)| (*name).to_owned()) } else { None };
            let services: Vec<ServiceRecord> = names
                .into_iter()
                .filter_map(|(name, id)| {
                    let mut record = ServiceRecord {
                        name: name.to_owned(),
                        instances: 0,
                        passing: 0,
                        warning: 0,
                        critical: 0,
                        routable: 0,
                        monitor: None,
                    };
                    for i in registry.instances(id, &all) {
                        record.instances += 1;
                        match i.health() {
                            HealthStatus::Passing => record.passing += 1,
                            HealthStatus::Warning => record.warning += 1,
                            HealthStatus::Critical => record.critical += 1,
                        }
                        record.routable += u32::from(c.is_routable(i.id));
                    }
                    if record.instances == 0 {
                        return None; // empty services (known, not yet forgotten) are not listed
                    }
                    record.monitor = c.monitor().service(id).filter(|s| s.instances > 0).map(|s| {
                        use vigil_core::health::HealthStatus as M;
                        MonitorCounts {
                            instances: s.instances,
                            healthy: s.count(M::Healthy),
                            degraded: s.count(M::Degraded),
                            unknown: s.count(M::Unknown),
                            unresponsive: s.count(M::Unresponsive),
                            failed: s.count(M::Failed),
                            ready: s.ready,
                            flapping: s.flapping,
                        }
                    });
                    Some(record)
                })
                .collect();
            ServiceList { index: registry.index(), services, next }
        })
        .await?;
    Ok(json(StatusCode::OK, &list))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_whole() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
        assert!(!constant_time_eq(b"", b"x"));
        assert!(constant_time_eq(b"", b""));
    }

    #[test]
    fn filters_parse_and_refuse_strangers() {
        let f = InstanceFilter::parse(Some("service=web&version=v1&zone=a&tag=x&tag=y%20z")).unwrap();
        assert_eq!(f.service.as_deref(), Some("web"));
        assert_eq!(f.query, Query::all().version("v1").zone("a").tag("x").tag("y z"));
        assert!(InstanceFilter::parse(None).unwrap().service.is_none());
        assert_eq!(InstanceFilter::parse(Some("servcie=web")).unwrap_err().status, StatusCode::BAD_REQUEST);
        let many: Vec<String> = (0..=MAX_TAG_FILTERS).map(|i| format!("tag=t{i}")).collect();
        assert!(InstanceFilter::parse(Some(&many.join("&"))).is_err());
    }

    #[test]
    fn health_and_liveness_endpoints_make_the_http_peer() {
        use super::super::Endpoints;
        let none = Endpoints::default().with(LIVENESS_ENDPOINT, "not a url at all");
        assert_eq!(http_peer(&none), Ok(None), "no health endpoint: no peer, liveness unread");
        let both = Endpoints::default()
            .with(HEALTH_ENDPOINT, "http://10.0.0.1:8080/readyz")
            .with(LIVENESS_ENDPOINT, "10.0.0.1:8080/livez");
        let peer = http_peer(&both).unwrap().unwrap();
        assert_eq!(peer.health.unwrap().path(), "/readyz");
        assert_eq!(peer.liveness.unwrap().path(), "/livez");
        assert!(peer.service.is_none());
        let health_only = Endpoints::default().with(HEALTH_ENDPOINT, "http://h/readyz");
        assert!(http_peer(&health_only).unwrap().unwrap().liveness.is_none());
        let bad = Endpoints::default().with(HEALTH_ENDPOINT, "https://h/readyz");
        assert!(http_peer(&bad).unwrap_err().contains("\"health\""));
    }

    #[test]
    fn ids_parse() {
        assert_eq!(parse_id("7").unwrap(), InstanceId(7));
        assert!(parse_id("-1").is_err());
        assert!(parse_id("4294967296").is_err());
        assert!(parse_id("é".repeat(100).as_str()).is_err());
    }
}
