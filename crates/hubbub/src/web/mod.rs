//! The HTTP side: the chat page (embedded in the binary, so it works with no
//! internet), `/healthz`, and the Socket.IO endpoint (`/socket.io/`, served
//! by [`crate::transport::engineio`]) behind the origin check ([`origin`]).

pub mod admin;
pub mod frame;
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
pub use frame::FrameAncestors;
pub use origin::AllowedOrigins;

const INDEX_HTML: &str = include_str!("../../assets/index.html");
/// The page's own scripts: ES modules under `/js/`, entered at `main.js`
/// (each a file of `assets/js/`, one concern each).
const SCRIPTS: &[(&str, &str)] = &[
    ("/js/main.js", include_str!("../../assets/js/main.js")),
    ("/js/state.js", include_str!("../../assets/js/state.js")),
    ("/js/chat.js", include_str!("../../assets/js/chat.js")),
    ("/js/view.js", include_str!("../../assets/js/view.js")),
    (
        "/js/composer.js",
        include_str!("../../assets/js/composer.js"),
    ),
    ("/js/account.js", include_str!("../../assets/js/account.js")),
    ("/js/notify.js", include_str!("../../assets/js/notify.js")),
    ("/js/keep.js", include_str!("../../assets/js/keep.js")),
    ("/js/layout.js", include_str!("../../assets/js/layout.js")),
    (
        "/js/moderation.js",
        include_str!("../../assets/js/moderation.js"),
    ),
    ("/js/net.js", include_str!("../../assets/js/net.js")),
    ("/js/util.js", include_str!("../../assets/js/util.js")),
];
const STYLE_CSS: &str = include_str!("../../assets/style.css");
const SOCKET_IO_JS: &str = include_str!("../../assets/socket.io.min.js");

/// The page's Content-Security-Policy, less its `frame-ancestors`:
/// everything from this server only (the WebSocket too: CSP 3's `'self'`
/// covers `ws:`/`wss:` to the same host) and no inline script or style.
/// Framing is refused unless `--frame-ancestors` names the host sites
/// ([`frame`]).
const PAGE_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'";

/// The HTTP application: static page, health, and Socket.IO (for the
/// origins `allowed`, see [`origin`]).
pub fn router(
    hub: Arc<Hub>,
    socket_io: Arc<Engine<SocketIoTransport>>,
    allowed: AllowedOrigins,
    frames: FrameAncestors,
) -> Router {
    let csp: Arc<str> = format!("{PAGE_CSP}; frame-ancestors {}", frames.directive()).into();
    let deny_frames = frames.is_none();
    let socket_io = Router::new().route(
        "/socket.io/",
        axum::routing::any(move |request: axum::extract::Request| {
            engineio::serve(socket_io.clone(), request)
        }),
    );
    let mut pages = Router::new().route("/", get(move || page(csp.clone(), deny_frames)));
    for &(path, body) in SCRIPTS {
        pages = pages.route(
            path,
            get(move || asset("text/javascript; charset=utf-8", body)),
        );
    }
    pages
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

async fn page(csp: Arc<str>, deny_frames: bool) -> impl IntoResponse {
    let mut headers = axum::http::HeaderMap::new();
    if let Ok(value) = header::HeaderValue::from_str(&csp) {
        headers.insert(header::CONTENT_SECURITY_POLICY, value);
    }
    if deny_frames {
        // For browsers older than CSP 2; with sites allowed to frame the
        // page it is left out (it cannot name them, and would win there).
        headers.insert(
            header::X_FRAME_OPTIONS,
            header::HeaderValue::from_static("DENY"),
        );
    }
    headers.insert(
        header::REFERRER_POLICY,
        header::HeaderValue::from_static("no-referrer"),
    );
    (headers, asset("text/html; charset=utf-8", INDEX_HTML).await)
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
