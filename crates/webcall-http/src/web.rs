//! The web client: the files of `static/`, embedded in the binary so one file
//! deploys. `/` leads to the app, `/r/{room}` is the app opened on a room (a call
//! can be shared as a link), `/check` is the connection check, `/docs` the API
//! reference rendered from `/api/openapi.json`, `/admin` the admin panel (the page
//! asks the API whether you are an admin; the API decides), `/reset` the page of a
//! one-time password-reset link, and the seed's `/static/auth.html` and
//! `/static/index.html` keep working. Security headers for every response are in
//! [`security_headers`].
//!
//! A path nothing serves is a 404 ([`not_found`]): the HTML page `404.html` for a
//! browser (the path is not under `/api/` or `/ws/`, and `Accept` names
//! `text/html`, as a browser opening a page sends), else the API's JSON error.
//! `/r/` and `/r/{name}` with an invalid room name answer 404 with
//! `room-404.html`, which says what a room name is.

use axum::extract::{Path, Request};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use include_dir::{include_dir, Dir};

use webcall_domain::signaling::RoomName;

use crate::{ApiError, AppState};

static STATIC: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../../static");

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/static/index.html") }))
        .route(
            "/favicon.ico",
            get(|| async { Redirect::permanent("/static/favicon.svg") }),
        )
        .route(
            "/r",
            get(|| async { page(StatusCode::NOT_FOUND, "room-404.html") }),
        )
        .route(
            "/r/",
            get(|| async { page(StatusCode::NOT_FOUND, "room-404.html") }),
        )
        .route("/r/{room}", get(room_page))
        .route("/check", get(|| async { serve("check.html") }))
        .route("/join", get(|| async { serve("guest.html") }))
        .route("/docs", get(|| async { serve("docs.html") }))
        .route("/admin", get(|| async { serve("admin.html") }))
        .route("/reset", get(|| async { serve("reset.html") }))
        .route("/api/openapi.json", get(|| async { serve("openapi.json") }))
        .route("/static/{*path}", get(file))
}

/// The app opened on a room; a name that cannot be a room's is a 404 page that
/// says what a room name is.
async fn room_page(Path(room): Path<String>) -> Response {
    match RoomName::parse(&room) {
        Ok(_) => serve("index.html"),
        Err(_) => page(StatusCode::NOT_FOUND, "room-404.html"),
    }
}

async fn file(Path(path): Path<String>, uri: Uri, headers: HeaderMap) -> Response {
    if STATIC.get_file(path.trim_start_matches('/')).is_none() {
        return not_found(uri, headers).await;
    }
    serve(&path)
}

/// The 404 for a path nothing serves: the HTML page for a browser opening a page,
/// the API's JSON error for everything else (see the module's comment).
pub async fn not_found(uri: Uri, headers: HeaderMap) -> Response {
    if wants_page(uri.path(), &headers) {
        page(StatusCode::NOT_FOUND, "404.html")
    } else {
        ApiError::NotFound.into_response()
    }
}

/// Whether a 404 for `path` is answered with a page: never under `/api/` or
/// `/ws/`, and only when the client accepts HTML.
fn wants_page(path: &str, headers: &HeaderMap) -> bool {
    let api = ["/api", "/ws"]
        .iter()
        .any(|prefix| path == *prefix || path.starts_with(&format!("{prefix}/")));
    let html = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.to_ascii_lowercase().contains("text/html"));
    !api && html
}

/// An embedded HTML page with `status`.
fn page(status: StatusCode, path: &str) -> Response {
    let mut response = serve(path);
    *response.status_mut() = status;
    response
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
        for page in [
            "index.html",
            "auth.html",
            "404.html",
            "room-404.html",
            "admin.html",
            "reset.html",
        ] {
            assert!(STATIC.get_file(page).is_some(), "{page}");
        }
        assert_eq!(content_type("js/app.js"), "text/javascript; charset=utf-8");
    }

    #[test]
    fn a_404_is_a_page_only_for_a_browser_outside_the_api() {
        let browser = HeaderMap::from_iter([(
            header::ACCEPT,
            HeaderValue::from_static("text/html,application/xhtml+xml,*/*;q=0.8"),
        )]);
        let program = HeaderMap::from_iter([(header::ACCEPT, HeaderValue::from_static("*/*"))]);
        assert!(wants_page("/nope", &browser));
        assert!(wants_page("/static/nope.html", &browser));
        assert!(wants_page("/apis", &browser));
        assert!(!wants_page("/nope", &program));
        assert!(!wants_page("/nope", &HeaderMap::new()));
        for api in ["/api", "/api/v1/nothing", "/ws/rooms/a/b"] {
            assert!(!wants_page(api, &browser), "{api}");
        }
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
