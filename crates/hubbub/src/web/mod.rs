//! The HTTP side: the chat page (embedded in the binary, so it works with no
//! internet), `/healthz`, and the Socket.IO endpoint (`/socket.io/`, served
//! by [`crate::transport::engineio`]) behind the origin check ([`origin`]).

pub mod admin;
pub mod origin;
pub mod serve;

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{middleware, Json, Router};

use crate::hub::Hub;
use crate::transport::engineio::{self, Engine};
use crate::transport::socketio::SocketIoTransport;
pub use origin::AllowedOrigins;

const INDEX_HTML: &str = include_str!("../../assets/index.html");
const APP_JS: &str = include_str!("../../assets/app.js");
const STYLE_CSS: &str = include_str!("../../assets/style.css");
const SOCKET_IO_JS: &str = include_str!("../../assets/socket.io.min.js");

/// The page's Content-Security-Policy: everything from this server only (the
/// WebSocket too: CSP 3's `'self'` covers `ws:`/`wss:` to the same host), no
/// inline script or style, and no framing by other sites (clickjacking).
const PAGE_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'";

/// The HTTP application: static page, health, and Socket.IO (for the
/// origins `allowed`, see [`origin`]).
pub fn router(
    hub: Arc<Hub>,
    socket_io: Arc<Engine<SocketIoTransport>>,
    allowed: AllowedOrigins,
) -> Router {
    let socket_io = Router::new().route(
        "/socket.io/",
        axum::routing::any(move |request: axum::extract::Request| {
            engineio::serve(socket_io.clone(), request)
        }),
    );
    Router::new()
        .route("/", get(page))
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
        .merge(socket_io)
        .layer(middleware::from_fn_with_state(
            Arc::new(allowed),
            origin::check,
        ))
}

async fn page() -> impl IntoResponse {
    (
        [
            (header::CONTENT_SECURITY_POLICY, PAGE_CSP),
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        asset("text/html; charset=utf-8", INDEX_HTML).await,
    )
}

async fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
            // Served as the type named, never sniffed as another.
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
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
