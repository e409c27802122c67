//! A small client of the API: what an [`Instance`](crate::Instance) uses to
//! register itself, and what tools and tests use to read the catalog.
//!
//! One request per connection (`Connection: close`), HTTP/1.1, no TLS, as
//! the prober: a control node is reached on a trusted network.

use std::time::Duration;

use axum::http::uri::PathAndQuery;
use axum::http::{HeaderValue, Method, Request, StatusCode, header};
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;

use super::model::{ErrorBody, InstanceList, InstanceRecord, RegisterInstance, Registered, ServiceList};
use crate::probe::{HttpTarget, ProbeOutcome};

/// Default [`ApiClient::timeout`].
pub const DEFAULT_CLIENT_TIMEOUT: Duration = Duration::from_secs(1);

/// Default [`ApiClient::max_answer`]: 16 MiB, a catalog of tens of
/// thousands of instances.
pub const DEFAULT_MAX_ANSWER: usize = 16 << 20;

/// Why a call to the API failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApiClientError {
    /// The server could not be reached, or the exchange broke off.
    #[error("cannot reach the control API: {0}")]
    Unreachable(String),
    /// No complete answer within the client's timeout.
    #[error("the control API did not answer within {0:?}")]
    Timeout(Duration),
    /// The server answered with an error status.
    #[error("the control API refused ({status}): {reason}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The server's reason (its `error` field, or the raw body).
        reason: String,
    },
    /// The answer was not what the API sends.
    #[error("unexpected answer from the control API: {0}")]
    InvalidAnswer(String),
    /// The request could not be built (a token or path with characters a
    /// header or URL cannot carry).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
}

impl ApiClientError {
    /// Whether trying again later may succeed: the server was unreachable,
    /// slow, or answered 5xx (its control plane not running yet).
    pub fn is_transient(&self) -> bool {
        match self {
            ApiClientError::Unreachable(_) | ApiClientError::Timeout(_) => true,
            ApiClientError::Refused { status, .. } => *status >= 500,
            ApiClientError::InvalidAnswer(_) | ApiClientError::InvalidRequest(_) => false,
        }
    }
}

/// An answer, as it came.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiResponse {
    /// The HTTP status.
    pub status: StatusCode,
    /// The body (JSON, or empty).
    pub body: Bytes,
}

impl ApiResponse {
    /// The `error` field of an error answer, or the body as text.
    pub fn reason(&self) -> String {
        match serde_json::from_slice::<ErrorBody>(&self.body) {
            Ok(e) => e.error,
            Err(_) => String::from_utf8_lossy(&self.body).into_owned(),
        }
    }

    fn refused(&self) -> ApiClientError {
        ApiClientError::Refused { status: self.status.as_u16(), reason: self.reason() }
    }

    fn parse<T: DeserializeOwned>(&self) -> Result<T, ApiClientError> {
        serde_json::from_slice(&self.body).map_err(|e| ApiClientError::InvalidAnswer(e.to_string()))
    }
}

/// A client of the control API at a base URL.
#[derive(Clone)]
pub struct ApiClient {
    base: HttpTarget,
    token: Option<String>,
    /// Bound of one whole exchange: connect, request, answer.
    pub timeout: Duration,
    /// Largest answer body read; a longer one is an error.
    pub max_answer: usize,
}

impl std::fmt::Debug for ApiClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiClient")
            .field("base", &self.base.to_string())
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl ApiClient {
    /// The API whose routes start at `base` (`http://host:port`, or with a
    /// path prefix), without a token.
    pub fn new(base: HttpTarget) -> Self {
        ApiClient { base, token: None, timeout: DEFAULT_CLIENT_TIMEOUT, max_answer: DEFAULT_MAX_ANSWER }
    }

    /// Send `token` as `Authorization: Bearer` on every request, builder
    /// style.
    #[must_use]
    pub fn with_token(mut self, token: Option<String>) -> Self {
        self.token = token;
        self
    }

    /// The base URL.
    pub fn base(&self) -> &HttpTarget {
        &self.base
    }

    /// Send one request to `path` (from the base, e.g. `/v1/instances`) and
    /// return the answer, whatever its status.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
    ) -> Result<ApiResponse, ApiClientError> {
        match tokio::time::timeout(self.timeout, self.exchange(method, path, body)).await {
            Ok(result) => result,
            Err(_elapsed) => Err(ApiClientError::Timeout(self.timeout)),
        }
    }

    async fn exchange(
        &self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
    ) -> Result<ApiResponse, ApiClientError> {
        let invalid = |e: String| ApiClientError::InvalidRequest(e);
        let base = self.base.path().split('?').next().unwrap_or("").trim_end_matches('/');
        let uri: PathAndQuery = format!("{base}{path}").parse().map_err(|e| invalid(format!("path: {e}")))?;
        let stream =
            crate::probe::connect(&self.base).await.map_err(|e| match crate::probe::io_outcome(&e) {
                ProbeOutcome::Refused => ApiClientError::Unreachable("connection refused".to_owned()),
                _ => ApiClientError::Unreachable(e.to_string()),
            })?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(stream))
                .await
                .map_err(|e| ApiClientError::Unreachable(e.to_string()))?;
        let _connection = AbortOnDrop(tokio::spawn(async move {
            let _ = connection.await;
        }));
        let mut request = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::HOST, self.base.authority())
            .header(header::USER_AGENT, USER_AGENT)
            .header(header::ACCEPT, "application/json")
            .header(header::CONNECTION, "close");
        if let Some(token) = &self.token {
            let value = HeaderValue::from_str(&format!("Bearer {token}"))
                .map_err(|_| invalid("the token has characters a header cannot carry".to_owned()))?;
            request = request.header(header::AUTHORIZATION, value);
        }
        if body.is_some() {
            request = request.header(header::CONTENT_TYPE, "application/json");
        }
        let request =
            request.body(Full::new(body.unwrap_or_default())).map_err(|e| invalid(e.to_string()))?;
        let response =
            sender.send_request(request).await.map_err(|e| ApiClientError::Unreachable(e.to_string()))?;
        let status = response.status();
        let body = Limited::new(response.into_body(), self.max_answer)
            .collect()
            .await
            .map_err(|e| ApiClientError::InvalidAnswer(format!("reading the body: {e}")))?
            .to_bytes();
        Ok(ApiResponse { status, body })
    }

    /// `POST /v1/instances`.
    pub async fn register(&self, registration: &RegisterInstance) -> Result<Registered, ApiClientError> {
        let body =
            serde_json::to_vec(registration).map_err(|e| ApiClientError::InvalidRequest(e.to_string()))?;
        let answer = self.send(Method::POST, "/v1/instances", Some(body.into())).await?;
        match answer.status {
            StatusCode::OK | StatusCode::CREATED => answer.parse(),
            _ => Err(answer.refused()),
        }
    }

    /// `DELETE /v1/instances/{id}`: whether it was registered.
    pub async fn deregister(&self, id: u32) -> Result<bool, ApiClientError> {
        let answer = self.send(Method::DELETE, &format!("/v1/instances/{id}"), None).await?;
        match answer.status {
            StatusCode::NO_CONTENT => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(answer.refused()),
        }
    }

    /// `GET /v1/instances/{id}`.
    pub async fn instance(&self, id: u32) -> Result<Option<InstanceRecord>, ApiClientError> {
        let answer = self.send(Method::GET, &format!("/v1/instances/{id}"), None).await?;
        match answer.status {
            StatusCode::OK => answer.parse().map(Some),
            StatusCode::NOT_FOUND => Ok(None),
            _ => Err(answer.refused()),
        }
    }

    /// Every matching instance, page after page of [`MAX_PAGE`](super::MAX_PAGE)
    /// (`query` already encoded, may be empty, without `limit` or `after`).
    /// Pages are read one after another, so an instance registered or
    /// removed meanwhile may be missed or listed by a later page.
    pub async fn all_instances(&self, query: &str) -> Result<Vec<InstanceRecord>, ApiClientError> {
        let mut all = Vec::new();
        let mut after: Option<u32> = None;
        loop {
            let mut page_query = format!("limit={}", super::MAX_PAGE);
            if let Some(after) = after {
                page_query.push_str(&format!("&after={after}"));
            }
            if !query.is_empty() {
                page_query = format!("{query}&{page_query}");
            }
            let page = self.instances(&page_query).await?;
            all.extend(page.instances);
            match page.next {
                // Ids only grow from page to page: this ends.
                Some(next) if after.is_none_or(|a| next > a) => after = Some(next),
                _ => return Ok(all),
            }
        }
    }

    /// `GET /v1/instances?{query}` (`query` already encoded, may be empty):
    /// one page ([`InstanceList::next`] tells whether there are more).
    pub async fn instances(&self, query: &str) -> Result<InstanceList, ApiClientError> {
        let path =
            if query.is_empty() { "/v1/instances".to_owned() } else { format!("/v1/instances?{query}") };
        let answer = self.send(Method::GET, &path, None).await?;
        match answer.status {
            StatusCode::OK => answer.parse(),
            _ => Err(answer.refused()),
        }
    }

    /// `GET /v1/services`.
    pub async fn services(&self) -> Result<ServiceList, ApiClientError> {
        let answer = self.send(Method::GET, "/v1/services", None).await?;
        match answer.status {
            StatusCode::OK => answer.parse(),
            _ => Err(answer.refused()),
        }
    }
}

/// The `User-Agent` of API calls.
pub const USER_AGENT: &str = concat!("vigil-api-client/", env!("CARGO_PKG_VERSION"));

/// Aborts the connection task when the exchange ends, whichever way.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
