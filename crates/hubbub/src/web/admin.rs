//! The admin listener (`--admin-addr`, loopback by default): what an
//! operator's tools read, kept off the public port.
//!
//! - `GET /metrics`: Prometheus text format (see [`crate::telemetry`] for the
//!   names).
//! - `GET /readyz`: `200 ready` when the history store answers and, in a
//!   cluster, Redis is connected; `503` with the reason otherwise (for a load
//!   balancer's health check).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use crate::hub::Hub;
use crate::limits::ConnectionLimiter;

/// How long `/readyz` waits for the store.
const STORE_PING_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, Clone)]
struct Admin {
    hub: Arc<Hub>,
    sockets: Arc<ConnectionLimiter>,
}

/// The admin application.
pub fn router(hub: Arc<Hub>, sockets: Arc<ConnectionLimiter>) -> Router {
    crate::telemetry::prometheus();
    Router::new()
        .route("/metrics", get(metrics))
        .route("/readyz", get(readyz))
        .with_state(Admin { hub, sockets })
}

async fn metrics(State(admin): State<Admin>) -> impl IntoResponse {
    // Values the hub keeps anyway are read now rather than counted twice.
    let stats = admin.hub.stats();
    let opened = stats.sessions_opened.load(Ordering::Relaxed);
    let closed = stats.sessions_closed.load(Ordering::Relaxed);
    metrics::gauge!("hubbub_sockets_open").set(admin.sockets.open() as f64);
    metrics::gauge!("hubbub_sessions_open").set(opened.saturating_sub(closed) as f64);
    metrics::gauge!("hubbub_rooms").set(admin.hub.room_count() as f64);
    metrics::gauge!("hubbub_history_cache_bytes").set(admin.hub.history_cache_bytes() as f64);
    metrics::gauge!("hubbub_outbound_queued_bytes").set(admin.hub.queued_bytes() as f64);
    for (name, value) in [
        ("hubbub_slow_consumers_total", &stats.slow_consumers),
        ("hubbub_store_failures_total", &stats.store_failures),
        ("hubbub_cluster_gap_repairs_total", &stats.gap_repairs),
        ("hubbub_cluster_skipped_ids_total", &stats.skipped_ids),
    ] {
        metrics::counter!(name).absolute(value.load(Ordering::Relaxed));
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        crate::telemetry::prometheus().render(),
    )
}

async fn readyz(State(admin): State<Admin>) -> impl IntoResponse {
    if let Some(store) = admin.hub.store() {
        match tokio::time::timeout(STORE_PING_TIMEOUT, store.ping()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                return (
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("history store: {e}\n"),
                );
            }
            Err(_) => {
                return (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "history store: no answer within 2 s\n".to_string(),
                );
            }
        }
    }
    if let Some(link) = admin.hub.broker() {
        if !link.is_connected() {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                "cluster: Redis is not connected\n".to_string(),
            );
        }
    }
    (StatusCode::OK, "ready\n".to_string())
}
