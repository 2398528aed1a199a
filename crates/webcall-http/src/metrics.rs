//! `GET /metrics` (Prometheus text format), the per-request HTTP metrics, and
//! the description of this layer's metrics ([`describe_metrics`]: these and the
//! signaling frames counted in `ws`). The exporter itself is wired by the
//! binary; this layer only records through the `metrics` facade and serves what
//! the exporter renders, on a listener of its own (`METRICS_LISTEN`), never on
//! the public one.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderMap};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use secrecy::{ExposeSecret, SecretString};
use webcall_app::AppError;

use crate::ApiError;

/// Renders the exporter's text.
pub type Render = Arc<dyn Fn() -> String + Send + Sync>;

#[derive(Clone)]
struct Exporter {
    render: Render,
    /// `METRICS_TOKEN`: a scrape must send it as a bearer token.
    token: Option<Arc<SecretString>>,
}

/// The metrics listener's whole application: `GET /metrics`, behind `token`
/// when one is set (401 `token_missing` / `token_invalid` otherwise); anything
/// else is 404.
pub fn router(render: Render, token: Option<SecretString>) -> Router {
    Router::new()
        .route("/metrics", get(serve))
        .fallback(|| async { ApiError::NotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .with_state(Exporter {
            render,
            token: token.map(Arc::new),
        })
}

async fn serve(State(exporter): State<Exporter>, headers: HeaderMap) -> Response {
    if let Some(token) = &exporter.token {
        let sent = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        match sent {
            None => return ApiError::from(AppError::TokenMissing).into_response(),
            Some(sent) if !same(sent.as_bytes(), token.expose_secret().as_bytes()) => {
                return ApiError::from(AppError::TokenInvalid).into_response()
            }
            Some(_) => {}
        }
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        (exporter.render)(),
    )
        .into_response()
}

/// Compares without an early exit, so the time taken says nothing of the token.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

/// Counts requests and their latency by route (the route pattern, never the
/// concrete path, so room names and ids do not explode the label space).
pub async fn track(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().as_str().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("webcall_http_requests_total", "route" => route.clone(), "method" => method, "status" => status)
        .increment(1);
    metrics::histogram!("webcall_http_request_duration_seconds", "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

/// Describes this layer's metrics to the installed recorder and starts its
/// counters at zero (a series that appears only after its first event makes
/// rates and alerts misleading).
pub fn describe_metrics() {
    use metrics::{counter, describe_counter, describe_histogram, Unit};
    describe_counter!(
        "webcall_ws_frames_total",
        "Signaling frames received (in) and sent (out)"
    );
    describe_counter!(
        "webcall_http_requests_total",
        "HTTP requests by route, method and status"
    );
    describe_histogram!(
        "webcall_http_request_duration_seconds",
        Unit::Seconds,
        "HTTP request latency by route"
    );
    for direction in ["in", "out"] {
        counter!("webcall_ws_frames_total", "direction" => direction).absolute(0);
    }
}
