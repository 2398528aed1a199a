use std::time::Duration;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::{header, HeaderValue, Method};
use axum::response::Response;
use axum::Router;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::trace::TraceLayer;
use tracing::{Level, Span};

use crate::{
    admin, attachments, auth, guests, health, metrics, recordings, room_access, rooms, web, webrtc,
    ws, ApiError, AppState,
};

/// Options of the HTTP layer itself (not of any use case).
#[derive(Debug, Clone, Default)]
pub struct HttpOptions {
    /// Origins allowed to call the API from another site; empty means same-origin
    /// only, `*` means any.
    pub cors_origins: Vec<String>,
}

/// Largest JSON body accepted (the API's bodies are a few hundred bytes).
const BODY_LIMIT: usize = 64 * 1024;

/// The whole HTTP application.
pub fn router(state: AppState, options: &HttpOptions) -> Router {
    let app = Router::new()
        .merge(auth::router())
        .merge(health::router())
        .merge(webrtc::router())
        .merge(rooms::router())
        .merge(room_access::router())
        .merge(ws::router())
        .merge(admin::router())
        .merge(guests::router())
        .merge(attachments::router())
        .merge(recordings::router())
        .merge(web::router())
        .fallback(web::not_found)
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::from_fn(web::security_headers))
        .route_layer(axum::middleware::from_fn(metrics::track))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_response(log_response),
        )
        .with_state(state);
    match cors(&options.cors_origins) {
        Some(cors) => app.layer(cors),
        None => app,
    }
}

/// One span per request with the method and the path only: query strings (the
/// WebSocket URL carries `?token=`) and headers never reach the log. The API,
/// the signaling socket and the pages are at INFO; the files a page loads, the
/// favicon and the health probes at DEBUG (`RUST_LOG=webcall_http=debug` shows
/// them), so that one page view is one line.
fn request_span(request: &Request) -> Span {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned());
    let path = request.uri().path();
    let route = route.as_deref().unwrap_or("-");
    if is_quiet(path) {
        tracing::debug_span!("http", method = %request.method(), path = %path, route)
    } else {
        tracing::info_span!("http", method = %request.method(), path = %path, route)
    }
}

/// Requests logged at DEBUG only: static files and health probes.
fn is_quiet(path: &str) -> bool {
    path.starts_with("/static/") || matches!(path, "/favicon.ico" | "/healthz" | "/readyz")
}

/// The response's status and latency, at the level of the request's span (a
/// span filtered out has no metadata: its request is a quiet one).
fn log_response(response: &Response, latency: Duration, span: &Span) {
    let status = response.status().as_u16();
    let latency_ms = latency.as_secs_f64() * 1000.0;
    if span.metadata().map(|m| *m.level()) == Some(Level::INFO) {
        tracing::info!(status, latency_ms, "finished processing request");
    } else {
        tracing::debug!(status, latency_ms, "finished processing request");
    }
}

fn cors(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([
                Method::GET,
                Method::POST,
                Method::PUT,
                Method::PATCH,
                Method::DELETE,
            ])
            .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
            .max_age(Duration::from_secs(600)),
    )
}
