//! The web client: the files of `static/`, embedded in the binary so one file
//! deploys. `/` leads to the app, `/r/{room}` is the app opened on a room (a call
//! can be shared as a link), `/check` is the connection check, `/docs` the API
//! reference rendered from `/api/openapi.json`, and the seed's `/static/auth.html` and
//! `/static/index.html` keep working. Security headers for every response are in
//! [`security_headers`].

use axum::extract::{Path, Request};
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use include_dir::{include_dir, Dir};

use crate::{ApiError, AppState};

static STATIC: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../../static");

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/static/index.html") }))
        .route(
            "/favicon.ico",
            get(|| async { Redirect::permanent("/static/favicon.svg") }),
        )
        .route("/r/{room}", get(room_page))
        .route("/check", get(|| async { serve("check.html") }))
        .route("/docs", get(|| async { serve("docs.html") }))
        .route("/api/openapi.json", get(|| async { serve("openapi.json") }))
        .route("/static/{*path}", get(file))
}

async fn room_page(Path(_room): Path<String>) -> Response {
    serve("index.html")
}

async fn file(Path(path): Path<String>) -> Response {
    serve(&path)
}

fn serve(path: &str) -> Response {
    let path = path.trim_start_matches('/');
    let Some(file) = STATIC.get_file(path) else {
        return ApiError::NotFound.into_response();
    };
    let content_type = content_type(path);
    // HTML is re-checked on every load (so a new binary's assets are picked up);
    // the rest may be cached briefly.
    let cache = if content_type.starts_with("text/html") {
        "no-cache"
    } else {
        "public, max-age=300"
    };
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, cache),
        ],
        file.contents(),
    )
        .into_response()
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("json") => "application/json",
        Some("md" | "txt") => "text/plain; charset=utf-8",
        Some("woff2") => "font/woff2",
        _ => "application/octet-stream",
    }
}

/// No inline script or style anywhere; media and WebSockets from this origin only.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data: blob:; media-src 'self' blob: mediastream:; connect-src 'self'; \
     font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Adds the security headers to every response (API and pages alike).
pub async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let mut set = |name: HeaderName, value: &'static str| {
        headers
            .entry(name)
            .or_insert(HeaderValue::from_static(value));
    };
    set(header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY);
    set(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(header::REFERRER_POLICY, "no-referrer");
    set(header::X_FRAME_OPTIONS, "DENY");
    set(
        HeaderName::from_static("permissions-policy"),
        "camera=(self), microphone=(self), display-capture=(self)",
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_pages_are_embedded() {
        for page in ["index.html", "auth.html"] {
            assert!(STATIC.get_file(page).is_some(), "{page}");
        }
        assert_eq!(content_type("js/app.js"), "text/javascript; charset=utf-8");
    }

    #[test]
    fn no_page_has_inline_script_or_style() {
        for file in STATIC.find("**/*.html").unwrap() {
            let Some(file) = file.as_file() else { continue };
            let html = file.contents_utf8().unwrap();
            let lower = html.to_ascii_lowercase();
            assert!(
                !lower.contains(" style=\""),
                "{}: inline style attribute",
                file.path().display()
            );
            assert!(
                !lower.contains("<style"),
                "{}: inline <style>",
                file.path().display()
            );
            for script in lower.split("<script").skip(1) {
                let tag = script.split('>').next().unwrap_or_default();
                assert!(
                    tag.contains("src="),
                    "{}: inline <script>",
                    file.path().display()
                );
            }
            assert!(
                !lower.contains(" onclick="),
                "{}: inline handler",
                file.path().display()
            );
        }
    }
}
