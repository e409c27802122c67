//! The axum routes: `GET /livez`, `GET /readyz`, `GET /healthz`.

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::checks::HealthChecks;
use super::report::Endpoint;

/// How many `?exclude=` names one request may give; the rest are ignored.
/// The URI's length already bounds them (hyper refuses very long request
/// lines); this bounds the work per request below that.
pub const MAX_EXCLUDES: usize = 64;

impl HealthChecks {
    /// The probe routes, ready to serve or to merge into the service's own
    /// router (`app.merge(checks.router())`).
    ///
    /// `GET` (and `HEAD`) on `/livez`, `/readyz` and `/healthz`; other
    /// methods there get 405 and other paths 404 (when served alone).
    /// Queries: `?verbose` lists every check even on success;
    /// `?exclude=name` (repeatable) skips a check.
    pub fn router(&self) -> Router {
        Router::new()
            .route(Endpoint::Livez.path(), get(livez))
            .route(Endpoint::Readyz.path(), get(readyz))
            .route(Endpoint::Healthz.path(), get(healthz))
            .with_state(self.clone())
    }
}

async fn livez(State(checks): State<HealthChecks>, RawQuery(query): RawQuery) -> Response {
    respond(&checks, Endpoint::Livez, query.as_deref()).await
}

async fn readyz(State(checks): State<HealthChecks>, RawQuery(query): RawQuery) -> Response {
    respond(&checks, Endpoint::Readyz, query.as_deref()).await
}

async fn healthz(State(checks): State<HealthChecks>, RawQuery(query): RawQuery) -> Response {
    respond(&checks, Endpoint::Healthz, query.as_deref()).await
}

async fn respond(checks: &HealthChecks, endpoint: Endpoint, query: Option<&str>) -> Response {
    let options = ProbeQuery::parse(query.unwrap_or(""));
    let report = checks.evaluate(endpoint, &options.exclude).await;
    let status = if report.passed() { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let headers = [
        (header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8")),
        (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        // A probe answer is true only now: no cache may keep it.
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
    ];
    (status, headers, report.render(options.verbose)).into_response()
}

/// The query options Kubernetes defines for its health endpoints.
#[derive(Debug, Default, PartialEq, Eq)]
struct ProbeQuery {
    /// `verbose` is present, with any value or none (as in Kubernetes).
    verbose: bool,
    /// Every `exclude=` value, percent-decoded, up to [`MAX_EXCLUDES`].
    exclude: Vec<String>,
}

impl ProbeQuery {
    fn parse(query: &str) -> Self {
        let mut options = ProbeQuery::default();
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            match &*key {
                "verbose" => options.verbose = true,
                "exclude" if options.exclude.len() < MAX_EXCLUDES => options.exclude.push(value.into_owned()),
                _ => {}
            }
        }
        options
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_parse_like_kubernetes() {
        assert_eq!(ProbeQuery::parse(""), ProbeQuery::default());
        assert!(ProbeQuery::parse("verbose").verbose);
        assert!(ProbeQuery::parse("verbose=1").verbose);
        assert!(ProbeQuery::parse("verbose=false").verbose, "presence is what counts");
        let q = ProbeQuery::parse("exclude=a&exclude=b%2Fc&verbose&exclude=d+e&other=1");
        assert_eq!(q, ProbeQuery { verbose: true, exclude: vec!["a".into(), "b/c".into(), "d e".into()] });
        // Malformed escapes decode lossily instead of failing.
        assert_eq!(ProbeQuery::parse("exclude=%zz%").exclude, ["%zz%"]);
    }

    #[test]
    fn excludes_are_bounded() {
        let query: Vec<String> = (0..1000).map(|i| format!("exclude=c{i}")).collect();
        assert_eq!(ProbeQuery::parse(&query.join("&")).exclude.len(), MAX_EXCLUDES);
    }
}
