//! The HTTP side: the chat page (embedded in the binary, so it works with no
//! internet), `/healthz`, and the Socket.IO endpoint mounted as a layer.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use socketioxide::layer::SocketIoLayer;

use crate::hub::Hub;

const INDEX_HTML: &str = include_str!("../../assets/index.html");
const APP_JS: &str = include_str!("../../assets/app.js");
const STYLE_CSS: &str = include_str!("../../assets/style.css");
const SOCKET_IO_JS: &str = include_str!("../../assets/socket.io.min.js");

/// The HTTP application: static page, health, and Socket.IO.
pub fn router(hub: Arc<Hub>, socket_io: SocketIoLayer) -> Router {
    Router::new()
        .route("/", get(|| asset("text/html; charset=utf-8", INDEX_HTML)))
        .route(
            "/app.js",
            get(|| asset("text/javascript; charset=utf-8", APP_JS)),
        )
        .route(
            "/style.css",
            get(|| asset("text/css; charset=utf-8", STYLE_CSS)),
        )
        .route(
            "/socket.io.min.js",
            get(|| asset("text/javascript; charset=utf-8", SOCKET_IO_JS)),
        )
        .route("/healthz", get(healthz))
        .with_state(hub)
        .layer(socket_io)
}

async fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
}

async fn healthz(State(hub): State<Arc<Hub>>) -> impl IntoResponse {
    let stats = hub.stats();
    let opened = stats.sessions_opened.load(Ordering::Relaxed);
    let closed = stats.sessions_closed.load(Ordering::Relaxed);
    Json(serde_json::json!({
        "status": "ok",
        "sessions": opened.saturating_sub(closed),
        "messages": stats.messages.load(Ordering::Relaxed),
        "slow_consumers": stats.slow_consumers.load(Ordering::Relaxed),
    }))
}
