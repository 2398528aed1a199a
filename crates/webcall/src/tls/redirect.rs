//! The plain-HTTP port (`HTTP_REDIRECT_PORT`) beside HTTPS: every request is
//! answered with a permanent redirect to the same path over HTTPS.

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Plain HTTP answers every request with a permanent redirect to HTTPS.
pub(crate) async fn serve_redirect(
    listener: TcpListener,
    https_port: u16,
    stop: CancellationToken,
) {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "redirecting HTTP to HTTPS");
    }
    let app = axum::Router::new().fallback(
        move |headers: axum::http::HeaderMap, uri: axum::http::Uri| async move {
            let host = headers
                .get(axum::http::header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or("localhost");
            let host = host
                .rsplit_once(':')
                .filter(|(_, p)| p.bytes().all(|b| b.is_ascii_digit()))
                .map_or(host, |(h, _)| h);
            let port = if https_port == 443 {
                String::new()
            } else {
                format!(":{https_port}")
            };
            let path = uri.path_and_query().map_or("/", |p| p.as_str());
            axum::response::Redirect::permanent(&format!("https://{host}{port}{path}"))
        },
    );
    let _ = axum::serve(listener, app)
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await;
}
