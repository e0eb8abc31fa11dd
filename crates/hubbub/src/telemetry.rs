//! What an operator can watch: Prometheus metrics, recorded through the
//! `metrics` facade and rendered by `metrics-exporter-prometheus` at
//! `GET /metrics` on the admin listener (`--admin-addr`, loopback by
//! default; see `web::admin`).
//!
//! Labels say which transport, listener or reason, never which user, nick or
//! room, so the number of series is fixed. The names:
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `hubbub_connections_accepted_total` | counter | `listener` = `line`, `http`, `tls_line`, `https`, `admin` |
//! | `hubbub_refusals_total` | counter | `kind` = `connection_cap`, `origin`, `out_of_descriptors`, `outbound_total`, `tls_handshake` (failed), `tls_handshake_timeout` |
//! | `hubbub_sessions_opened_total` | counter | `transport` = `line`, `socketio` |
//! | `hubbub_sessions_closed_total` | counter | `transport`, `reason` = `quit`, `closed`, `slow_consumer`, `flood`, `idle_timeout`, `shutdown`, `protocol_error`, `token_expired` |
//! | `hubbub_messages_received_total` | counter | `transport` (room and private messages accepted from clients) |
//! | `hubbub_deliveries_total` | counter | `transport` (events written to clients) |
//! | `hubbub_sent_bytes_total` | counter | `transport` = `line` (bytes written to line clients) |
//! | `hubbub_flood_refusals_total` | counter | `transport` (lines or requests dropped by flood control) |
//! | `hubbub_store_commit_seconds` | histogram | (one observation per committed batch) |
//! | `hubbub_store_failures_total` | counter | |
//! | `hubbub_slow_consumers_total` | counter | |
//! | `hubbub_cluster_gap_repairs_total`, `hubbub_cluster_skipped_ids_total` | counter | |
//! | `hubbub_cluster_lag_seconds` | histogram | (from a message's timestamp on the node that committed it to its arrival here over pub/sub) |
//! | `hubbub_sockets_open`, `hubbub_sessions_open`, `hubbub_rooms` | gauge | |
//! | `hubbub_history_cache_bytes` | gauge | (bytes the rooms' history caches hold) |
//! | `hubbub_outbound_queued_bytes` | gauge | (bytes waiting for all clients together) |
//! | `hubbub_login_failures_total` | counter | `reason` = `invalid_credentials`, `rate_limited` (password logins refused) |
//! | `hubbub_moderation_actions_total` | counter | `action` = `kick`, `ban`, `mute`, `unban`, `unmute`, `op`, `deop`, `voice`, `devoice`, `invite`, `mode`, `topic`, `kill`, `wall`, `other` |
//!
//! The recorder is process-wide (the `metrics` facade has one): several
//! servers in one process, as in tests, share it.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::hub::CloseReason;

/// The process's Prometheus recorder, installed on first use.
pub fn prometheus() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                metrics_exporter_prometheus::Matcher::Full("hubbub_store_commit_seconds".into()),
                &[
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                ],
            )
            .expect("the bucket list is not empty")
            // A histogram, not a rolling summary: its count and buckets are
            // cumulative (what Prometheus rates and sums across nodes),
            // where a summary forgets what is older than its window.
            .set_buckets_for_metric(
                metrics_exporter_prometheus::Matcher::Full("hubbub_cluster_lag_seconds".into()),
                &[
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                ],
            )
            .expect("the bucket list is not empty")
            .build_recorder();
        let handle = recorder.handle();
        // Another recorder may already be installed (a program embedding
        // the library); then these metrics go there, and /metrics shows
        // what this recorder sees.
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}

/// A transport's label value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Line,
    SocketIo,
}

impl Transport {
    pub fn label(self) -> &'static str {
        match self {
            Transport::Line => "line",
            Transport::SocketIo => "socketio",
        }
    }
}

/// A session of `transport` opened.
pub fn session_opened(transport: Transport) {
    metrics::counter!("hubbub_sessions_opened_total", "transport" => transport.label())
        .increment(1);
}

/// A session of `transport` ended: by the server for `reason`, or by the
/// client (`None`: it closed, or quit over Socket.IO).
pub fn session_closed(transport: Transport, reason: Option<&CloseReason>) {
    let reason = match reason {
        None => "closed",
        Some(CloseReason::Quit) => "quit",
        Some(CloseReason::SlowConsumer { .. }) => "slow_consumer",
        Some(CloseReason::Flooding) => "flood",
        Some(CloseReason::IdleTimeout) => "idle_timeout",
        Some(CloseReason::Shutdown) => "shutdown",
        Some(CloseReason::ProtocolError) => "protocol_error",
        Some(CloseReason::TokenExpired) => "token_expired",
        Some(CloseReason::Removed { .. }) => "removed",
    };
    metrics::counter!("hubbub_sessions_closed_total", "transport" => transport.label(), "reason" => reason)
        .increment(1);
}

/// A message (room or private) accepted from a client of `transport`.
pub fn message_received(transport: Transport) {
    metrics::counter!("hubbub_messages_received_total", "transport" => transport.label())
        .increment(1);
}

/// The counters a connection's writer adds to for every write: events and
/// bytes written to clients of one transport. Looked up once per
/// connection, not per event (the lookup hashes the labels; a write is the
/// hot path).
#[derive(Debug, Clone)]
pub struct Delivered {
    events: metrics::Counter,
    bytes: metrics::Counter,
}

impl Delivered {
    pub fn new(transport: Transport) -> Delivered {
        Delivered {
            events: metrics::counter!("hubbub_deliveries_total", "transport" => transport.label()),
            bytes: metrics::counter!("hubbub_sent_bytes_total", "transport" => transport.label()),
        }
    }

    /// `events` written, `bytes` long in all (0 if the transport does not know).
    pub fn add(&self, events: u64, bytes: u64) {
        self.events.increment(events);
        if bytes > 0 {
            self.bytes.increment(bytes);
        }
    }
}

/// A line or request of `transport` dropped by flood control.
pub fn flood_refused(transport: Transport) {
    metrics::counter!("hubbub_flood_refusals_total", "transport" => transport.label()).increment(1);
}

/// A connection accepted on `listener` (`line` or `http`).
pub fn connection_accepted(listener: &'static str) {
    metrics::counter!("hubbub_connections_accepted_total", "listener" => listener).increment(1);
}

/// A refusal of `kind` (see [`crate::limits::warn_refusal`]).
pub fn refused(kind: &'static str) {
    metrics::counter!("hubbub_refusals_total", "kind" => kind).increment(1);
}

/// A message from another node arrived `seconds` after its timestamp
/// (set when its node took it in; the nodes' clocks are assumed in step).
pub fn cluster_lag(seconds: f64) {
    metrics::histogram!("hubbub_cluster_lag_seconds").record(seconds.max(0.0));
}

/// A batch committed to the history store in `seconds`.
pub fn store_commit(seconds: f64) {
    metrics::histogram!("hubbub_store_commit_seconds").record(seconds);
}

/// A password login was refused (`reason`: `invalid_credentials` or
/// `rate_limited`).
pub fn login_failed(reason: &'static str) {
    metrics::counter!("hubbub_login_failures_total", "reason" => reason).increment(1);
}

/// An operator's action was carried out (`action` as the audit log names
/// it; anything outside the fixed set counts as `other`).
pub fn moderation_action(action: &str) {
    const ACTIONS: &[&str] = &[
        "kick", "ban", "mute", "unban", "unmute", "op", "deop", "voice", "devoice", "invite",
        "mode", "topic", "kill", "wall",
    ];
    let action = ACTIONS
        .iter()
        .find(|a| **a == action)
        .copied()
        .unwrap_or("other");
    metrics::counter!("hubbub_moderation_actions_total", "action" => action).increment(1);
}
