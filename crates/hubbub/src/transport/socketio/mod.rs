//! Socket.IO (protocol v5, via `socketioxide`): browsers and the official
//! clients as sessions of the same hub as line clients (docs/PROTOCOL.md).
//!
//! On connect a socket becomes a hub [`Session`] named `guest-N`, and gets a
//! writer task that drains its outbox into `socket.emit` ([`events`]).
//! Requests from the client are handled in [`requests`]. socketioxide's own
//! per-socket packet buffer is only a transmission window: when it is full
//! the writer waits, so the session's outbox stays the one bound, with the
//! same slow-consumer rule as every other transport.

mod events;
mod requests;

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::ConnectInfo;
use socketioxide::adapter::Adapter;
use socketioxide::extract::{SocketRef, State};
use socketioxide::handler::{ConnectHandler, FromMessageParts};
use socketioxide::layer::SocketIoLayer;
use socketioxide::socket::{DisconnectReason, Socket};
use socketioxide::SocketIo;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::hub::{Hub, HubError, Session};
use crate::limits::{ConnectionGuard, ConnectionLimiter, FloodControl};
use crate::telemetry::{self, Transport};

/// What the Socket.IO transport needs from the configuration.
#[derive(Debug, Clone)]
pub struct SocketIoSettings {
    /// Longest chat text in bytes (the line protocol's line limit).
    pub max_text_bytes: usize,
    pub flood_rate: f64,
    pub flood_burst: u32,
    pub flood_kick: u32,
}

/// Shared by every socket's handlers.
#[derive(Debug, Clone)]
pub struct SocketIoTransport {
    pub hub: Arc<Hub>,
    pub limiter: Arc<ConnectionLimiter>,
    pub settings: Arc<SocketIoSettings>,
    pub shutdown: CancellationToken,
    pub tracker: TaskTracker,
    guests: Arc<AtomicU64>,
}

/// Packets socketioxide may hold per socket before `emit` reports it full.
/// Room messages are two packets (`message` and the seed's `notice`).
const SOCKET_BUFFER_PACKETS: usize = 256;
/// How long an Engine.IO session may wait for its Socket.IO CONNECT before it
/// is closed (socketioxide's default is 45 s); the official clients send it
/// at once.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);
/// How long the writer waits before retrying a full socket buffer.
const FULL_BUFFER_RETRY: Duration = Duration::from_millis(2);

impl SocketIoTransport {
    pub fn new(
        hub: Arc<Hub>,
        limiter: Arc<ConnectionLimiter>,
        settings: SocketIoSettings,
        shutdown: CancellationToken,
        tracker: TaskTracker,
    ) -> SocketIoTransport {
        SocketIoTransport {
            limiter,
            settings: Arc::new(settings),
            shutdown,
            tracker,
            // Nodes of a cluster number their guests from far-apart
            // starting points, so their first names rarely collide.
            guests: Arc::new(AtomicU64::new(match hub.cluster() {
                Some(link) => guest_base(link.node()),
                None => 1,
            })),
            hub,
        }
    }

    /// The tower layer serving `/socket.io/`, and its handle.
    pub fn layer(self) -> (SocketIoLayer, SocketIo) {
        // A packet carries at most one text plus its JSON framing. The text
        // limit applies to the decoded text, so the packet must leave room
        // for the widest escaping a client may use: `\uXXXX` surrogate
        // pairs, 12 bytes for a 4-byte character (python-socketio writes
        // every non-ASCII character so), three times the text. The same
        // bound for polling bodies and for WebSocket messages, whose default
        // would be 64 MiB.
        let max_payload = self.settings.max_text_bytes * 3 + 4096;
        let (layer, io) = SocketIo::builder()
            .max_buffer_size(SOCKET_BUFFER_PACKETS)
            .connect_timeout(CONNECT_TIMEOUT)
            // Allocated for every socket, idle or not (default 4 KiB; the
            // bound on a message is max_payload, not this).
            .ws_read_buffer_size(1024)
            .max_payload(max_payload as u64)
            .ws_max_message_size(max_payload)
            .ws_max_frame_size(max_payload)
            .with_state(self)
            .build_layer();
        // `admit` runs as connect middleware, which socketioxide awaits
        // before it answers the client's CONNECT: the session and every
        // request handler exist before the client may send its first event.
        // (Registered in the connect handler, a request sent the moment the
        // CONNECT was answered could arrive first and be dropped.) The
        // handler proper starts the writer, once the socket may emit.
        io.ns("/", start_writer.with(admit));
        (layer, io)
    }

    /// A session named `guest-N`, skipping names already taken.
    async fn connect_guest(&self) -> Result<Session, HubError> {
        // Lazy: the counter advances only for names actually tried.
        let names =
            (0..100).map(|_| format!("guest-{}", self.guests.fetch_add(1, Ordering::Relaxed)));
        self.hub.open_first_free(names, true).await
    }
}

/// One connected socket's state, shared by its handlers.
#[derive(Debug)]
pub(crate) struct Connection {
    session: Session,
    flood: Mutex<FloodControl>,
    /// When each room last relayed a typing start from this socket (bounded
    /// by the rooms it is in: entries are only added for joined rooms).
    typing_sent: Mutex<HashMap<Arc<str>, Instant>>,
    settings: Arc<SocketIoSettings>,
    /// Holds the connection's slot until it disconnects.
    slot: Mutex<Option<ConnectionGuard>>,
    /// Requests waiting for this socket's worker, in arrival order.
    jobs: mpsc::Sender<requests::Job>,
    /// Slots for messages submitted but not yet committed.
    in_flight: Arc<tokio::sync::Semaphore>,
    /// The session has ended (see [`Connection::finish`]).
    finished: std::sync::atomic::AtomicBool,
}

/// How long a disconnected socket's queued requests may take before its
/// leave is announced anyway.
const DRAIN_ON_DISCONNECT: Duration = Duration::from_secs(5);

impl Connection {
    /// Ends the session (the room hears the leave) and frees the slot, once.
    fn finish(&self) {
        if self.finished.swap(true, Ordering::SeqCst) {
            return;
        }
        telemetry::session_closed(
            Transport::SocketIo,
            self.session.outbox().closing().as_ref(),
        );
        self.session.end();
        self.slot.lock().unwrap_or_else(|e| e.into_inner()).take();
    }
}

/// Why a socket was refused at connect (sent as its `connect_error`).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Refusal(String);

/// Connect middleware: takes a connection slot, opens the hub session, and
/// registers the request handlers (see [`SocketIoTransport::layer`]).
async fn admit(
    socket: SocketRef,
    State(transport): State<SocketIoTransport>,
) -> Result<(), Refusal> {
    let ip = socket
        .req_parts()
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::LOCALHOST), |info| info.0.ip());
    let slot = transport.limiter.acquire(ip).map_err(|refused| {
        crate::limits::warn_refusal("connection_cap", &ip.to_string());
        Refusal(refused.to_string())
    })?;
    let session = transport
        .connect_guest()
        .await
        .map_err(|e| Refusal(e.to_string()))?;
    let settings = &transport.settings;
    let (jobs, queued) = mpsc::channel(requests::MAX_QUEUED_REQUESTS);
    let conn = Arc::new(Connection {
        jobs,
        in_flight: Arc::new(tokio::sync::Semaphore::new(requests::MAX_IN_FLIGHT)),
        flood: Mutex::new(FloodControl::new(
            settings.flood_rate,
            settings.flood_burst,
            settings.flood_kick,
        )),
        typing_sent: Mutex::new(HashMap::new()),
        settings: settings.clone(),
        slot: Mutex::new(Some(slot)),
        session,
        finished: std::sync::atomic::AtomicBool::new(false),
    });
    tracing::debug!(sid = %socket.id, %ip, "socket.io client connected");
    telemetry::session_opened(Transport::SocketIo);

    requests::register(&socket, &conn);
    let outbox = conn.session.outbox().clone();
    let worker = conn.clone();
    transport.tracker.spawn(async move {
        tokio::select! {
            _ = requests::worker(queued) => {}
            _ = outbox.closed() => {}
        }
        // Closed by the server (slow consumer, flood, shutdown), or ended
        // by the job below: either way the session is over.
        worker.finish();
    });
    let on_disconnect = conn.clone();
    socket.on_disconnect(move |reason: DisconnectReason| async move {
        tracing::debug!(?reason, "socket.io client disconnected");
        // What the client sent before it went is handled before it is
        // gone: the end is queued behind its requests, in order, and waits
        // for their messages to be committed and relayed, so the room sees
        // them before the leave.
        let conn = on_disconnect.clone();
        let end: requests::Job = Box::pin(async move {
            let all = requests::MAX_IN_FLIGHT as u32;
            let _ =
                tokio::time::timeout(DRAIN_ON_DISCONNECT, conn.in_flight.acquire_many(all)).await;
            conn.finish();
        });
        if let Err(refused) = on_disconnect.jobs.send(end).await {
            // The worker is gone (the server closed the session): end now.
            refused.0.await;
        }
    });
    socket.extensions.insert(conn);
    Ok(())
}

/// Connect handler: the socket is connected; start draining its outbox.
async fn start_writer(socket: SocketRef, State(transport): State<SocketIoTransport>) {
    if let Some(conn) = socket.extensions.get::<Arc<Connection>>() {
        transport
            .tracker
            .spawn(events::write_loop(socket, conn, transport.shutdown.clone()));
    }
}

/// Whether the client asked for an acknowledgement: a failing request
/// without one gets an `error` event instead.
pub(crate) struct AckWanted(pub bool);

impl<A: Adapter> FromMessageParts<A> for AckWanted {
    type Error = Infallible;
    fn from_message_parts(
        _: &Arc<Socket<A>>,
        _: &mut socketioxide_core::Value,
        ack_id: &Option<i64>,
    ) -> Result<Self, Infallible> {
        Ok(AckWanted(ack_id.is_some()))
    }
}

/// Where a cluster node starts numbering guests: from its node id, in
/// steps of 10 000 below 10 000 000.
fn guest_base(node: &str) -> u64 {
    use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
    let hash = BuildHasherDefault::<DefaultHasher>::default().hash_one(node);
    1 + (hash % 1000) * 10_000
}
