//! Engine.IO protocol v4, server side: HTTP long-polling, WebSocket, and
//! the upgrade from one to the other
//! (<https://github.com/socketio/engine.io-protocol>).
//!
//! hubbub serves Engine.IO itself rather than through a library because
//! this is its hot path: an idle connection holds no read or write buffer
//! and no task but its WebSocket's own, and every packet for a socket —
//! pings, replies, chat — goes through the hub's bounded [`Outbox`], so a
//! batch of them is one `write` (docs/BENCHMARKS.md has the numbers that
//! decided it).
//!
//! The protocol above (Socket.IO) plugs in as a [`Handler`]: it gets each
//! session's message packets and encodes hub events into packets; the
//! engine owns sessions, transports and the heartbeat.

pub mod frame;
pub mod packet;
mod polling;
mod session;
mod websocket;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::http::{header, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::hub::{CloseReason, Event, EventKind, Outbox};
pub use frame::Flow;
pub use session::{Carrier, Ended, Session};

/// Engine.IO settings; the defaults are the reference server's.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Time between the server's pings (`pingInterval`, 25 s).
    pub ping_interval: Duration,
    /// How long a pong may take before the session is closed
    /// (`pingTimeout`, 20 s).
    pub ping_timeout: Duration,
    /// Largest WebSocket message and polling body accepted, in bytes
    /// (`maxPayload`). Past it a WebSocket is closed with 1009 and a
    /// polling body refused with 413.
    pub max_payload: usize,
    /// How long a session may go without the protocol above connecting
    /// (a Socket.IO CONNECT), before it is closed.
    pub connect_timeout: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            ping_interval: Duration::from_secs(25),
            ping_timeout: Duration::from_secs(20),
            max_payload: 100_000,
            connect_timeout: Duration::from_secs(20),
        }
    }
}

/// A message packet's data.
#[derive(Debug, Clone, Copy)]
pub enum Input<'a> {
    Text(&'a str),
    Binary(&'a [u8]),
}

/// The protocol carried over Engine.IO (Socket.IO), as the engine sees it.
pub trait Handler: Send + Sync + 'static {
    /// Per-session state of the protocol.
    type Socket: Send + Sync + 'static;

    /// A new session from `ip`: its protocol state and the outbox
    /// everything for it goes through, or why it is refused (the HTTP
    /// request is answered `503` with that text).
    fn open(&self, ip: IpAddr) -> Result<(Self::Socket, Arc<Outbox>), String>;

    /// A message packet arrived. [`Flow::Pause`] asks the transport to
    /// stop reading until [`Session::space`] is notified and
    /// [`Handler::can_take`] says yes.
    fn message(&self, session: &Arc<Session<Self::Socket>>, input: Input<'_>) -> Flow;

    /// Whether the socket can take input again after a pause.
    fn can_take(&self, socket: &Self::Socket) -> bool;

    /// A packet or frame the engine answers itself arrived (a client's
    /// Engine.IO ping, a WebSocket ping): whether to answer it. Replies a
    /// client provokes spend its flood budget like requests; past the
    /// budget they are dropped, and a client that keeps on is disconnected.
    fn control(&self, session: &Arc<Session<Self::Socket>>) -> bool;

    /// Whether the protocol's own connect happened (the connect timeout
    /// no longer applies).
    fn is_connected(&self, socket: &Self::Socket) -> bool;

    /// Appends the Engine.IO text packets for `event` (never
    /// [`EventKind::Wire`], which the engine writes as it is), each
    /// through `emit`.
    fn encode(&self, socket: &Self::Socket, event: &Event, emit: &mut dyn FnMut(&[u8]));

    /// The session is over; called once per session.
    fn closed(&self, session: &Arc<Session<Self::Socket>>, why: Ended);

    /// At shutdown, before every session is told goodbye: returns once
    /// what clients sent before it is delivered (bounded by the caller).
    fn settled(&self) -> futures_util::future::BoxFuture<'static, ()>;
}

/// Open sessions by id.
type Sessions<S> = HashMap<Arc<str>, Arc<Session<S>>>;

/// The Engine.IO server: sessions by id, the heartbeat, and the HTTP
/// entry point for `/socket.io/`.
pub struct Engine<H: Handler> {
    handler: H,
    config: EngineConfig,
    sessions: Mutex<Sessions<H::Socket>>,
    /// Sessions their clients closed a moment ago (sid → when): a long-poll
    /// that raced the close is answered with a noop once, as the reference
    /// server answers the poll it holds, instead of `400`.
    closed_by_clients: Mutex<HashMap<Arc<str>, std::time::Instant>>,
    /// The ping packet, shared by every session.
    ping: Arc<Event>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
}

impl<H: Handler> std::fmt::Debug for Engine<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("config", &self.config)
            .field("sessions", &self.session_count())
            .finish()
    }
}

/// Packets that are the same for every session.
const PING: &[u8] = b"2";
const NOOP: &[u8] = b"6";
const CLOSE: &[u8] = b"1";

impl<H: Handler> Engine<H> {
    /// An engine serving `handler`'s protocol; its heartbeat and
    /// connections run in `tracker` until `shutdown`, when every session
    /// is closed with [`CloseReason::Shutdown`].
    pub fn start(
        handler: H,
        config: EngineConfig,
        shutdown: CancellationToken,
        tracker: TaskTracker,
    ) -> Arc<Engine<H>> {
        let engine = Arc::new(Engine {
            handler,
            config,
            sessions: Mutex::new(HashMap::new()),
            closed_by_clients: Mutex::new(HashMap::new()),
            ping: Event::new(EventKind::Wire {
                bytes: Bytes::from_static(PING),
            }),
            shutdown,
            tracker,
        });
        engine
            .tracker
            .spawn(heartbeat(Arc::downgrade(&engine), engine.shutdown.clone()));
        engine
    }

    pub fn handler(&self) -> &H {
        &self.handler
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Sessions open now.
    pub fn session_count(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Sessions<H::Socket>> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn find(&self, sid: &str) -> Option<Arc<Session<H::Socket>>> {
        self.lock().get(sid).cloned()
    }

    /// Remembers (for [`CLOSED_MEMORY`], at most [`CLOSED_REMEMBERED`] at
    /// once) that the client closed session `sid`.
    fn note_client_close(&self, sid: &Arc<str>) {
        let mut closed = self
            .closed_by_clients
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let now = std::time::Instant::now();
        if closed.len() >= CLOSED_REMEMBERED {
            closed.retain(|_, at| now.duration_since(*at) < CLOSED_MEMORY);
            if closed.len() >= CLOSED_REMEMBERED {
                closed.clear();
            }
        }
        closed.insert(sid.clone(), now);
    }

    /// Whether the client closed session `sid` a moment ago (once: the
    /// memory is spent).
    pub(super) fn just_closed_by_client(&self, sid: &str) -> bool {
        let mut closed = self
            .closed_by_clients
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        closed
            .remove(sid)
            .is_some_and(|at| at.elapsed() < CLOSED_MEMORY)
    }

    /// Opens a session from `ip` (over TLS if `encrypted`) carried by
    /// `carrier`, or says why not.
    fn open(
        &self,
        ip: IpAddr,
        encrypted: bool,
        carrier: Carrier,
    ) -> Result<Arc<Session<H::Socket>>, String> {
        if self.shutdown.is_cancelled() {
            return Err("server is shutting down".into());
        }
        let (socket, outbox) = self.handler.open(ip)?;
        let sid: Arc<str> = new_sid().into();
        let session = Arc::new(Session::new(
            sid.clone(),
            ip,
            encrypted,
            socket,
            outbox,
            carrier,
            self.config.ping_interval,
        ));
        self.lock().insert(sid, session.clone());
        Ok(session)
    }

    /// The open packet for `session`.
    fn handshake(&self, session: &Session<H::Socket>, upgrades: &[&str]) -> Vec<u8> {
        let data = serde_json::to_string(&packet::Handshake {
            sid: &session.sid,
            upgrades,
            ping_interval: self.config.ping_interval.as_millis() as u64,
            ping_timeout: self.config.ping_timeout.as_millis() as u64,
            max_payload: self.config.max_payload,
        })
        .unwrap_or_default();
        let mut out = Vec::with_capacity(data.len() + 1);
        packet::encode_into(packet::PacketType::Open, &data, &mut out);
        out
    }

    /// Ends `session` once: it leaves the registry, its transport's
    /// waiters wake, and the handler hears why.
    pub fn end(&self, session: &Arc<Session<H::Socket>>, why: Ended) {
        if session.mark_ended(why) {
            self.lock().remove(&session.sid);
            if why == Ended::ClientClosed {
                self.note_client_close(&session.sid);
            }
            tracing::debug!(sid = %session.sid, ?why, "engine.io session ended");
            self.handler.closed(session, why);
        }
    }

    /// Encodes a batch taken from a session's outbox, each packet through
    /// `emit`. Returns the close reason when the batch ends with the
    /// session's [`EventKind::Closing`] (nothing follows it).
    fn encode_batch(
        &self,
        session: &Session<H::Socket>,
        batch: &[Arc<Event>],
        emit: &mut dyn FnMut(&[u8]),
    ) -> Option<CloseReason> {
        for event in batch {
            match &event.kind {
                EventKind::Wire { bytes } => emit(bytes),
                EventKind::Closing { reason } => {
                    self.handler.encode(&session.socket, event, emit);
                    return Some(reason.clone());
                }
                _ => self.handler.encode(&session.socket, event, emit),
            }
        }
        None
    }

    /// Closes every session for shutdown: each is told why, then its
    /// transport closes.
    fn close_all(&self) {
        let sessions: Vec<_> = self.lock().values().cloned().collect();
        for session in sessions {
            session.outbox.close(CloseReason::Shutdown);
        }
    }
}

/// How long a session its client closed is remembered (see
/// `Engine::closed_by_clients`), and how many at most.
const CLOSED_MEMORY: Duration = Duration::from_secs(2);
const CLOSED_REMEMBERED: usize = 4096;

/// How long shutdown waits for what clients sent to be delivered before
/// it tells every session goodbye.
const SHUTDOWN_SETTLE: Duration = Duration::from_secs(1);

/// Every second: queues due pings, and ends sessions that missed their
/// pong or never connected. One task for all sessions, so an idle session
/// costs no timer of its own.
async fn heartbeat<H: Handler>(engine: std::sync::Weak<Engine<H>>, shutdown: CancellationToken) {
    // Once a second, or a twentieth of the ping interval, ping timeout or
    // connect timeout when that is shorter (down to 10 ms), so short
    // settings are kept to.
    let period = match engine.upgrade() {
        Some(engine) => (engine
            .config
            .ping_interval
            .min(engine.config.ping_timeout)
            .min(engine.config.connect_timeout)
            / 20)
            .clamp(Duration::from_millis(10), Duration::from_secs(1)),
        None => return,
    };
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.cancelled() => {
                if let Some(engine) = engine.upgrade() {
                    let settled = engine.handler.settled();
                    let _ = tokio::time::timeout(SHUTDOWN_SETTLE, settled).await;
                    engine.close_all();
                }
                return;
            }
        }
        let Some(engine) = engine.upgrade() else {
            return;
        };
        let now = Instant::now();
        let sessions: Vec<_> = engine.lock().values().cloned().collect();
        let config = &engine.config;
        for session in sessions {
            if !engine.handler.is_connected(&session.socket)
                && now.duration_since(session.opened) >= config.connect_timeout
            {
                engine.end(&session, Ended::ConnectTimeout);
                continue;
            }
            if session.is_between_polls()
                && session.outbox.closing().is_some()
                && session.outbox.queued_bytes() == 0
            {
                // Closed by the server while its client was not polling
                // (one that stopped polling is also too slow): it leaves
                // now rather than at the ping timeout.
                engine.end(&session, Ended::ServerClosed);
                continue;
            }
            match session.heartbeat(now, config.ping_interval, config.ping_timeout, period) {
                session::Beat::Nothing => {}
                session::Beat::Ping => {
                    session.outbox.push(engine.ping.clone());
                }
                session::Beat::TimedOut => engine.end(&session, Ended::PingTimeout),
            }
        }
    }
}

/// 20 characters of base64url from 15 random bytes.
fn new_sid() -> String {
    use base64::Engine as _;
    let mut bytes = [0u8; 15];
    // The OS's generator; if it ever fails, a clock-and-counter id still
    // separates sessions (ids are not secrets: the socket is the proof).
    if getrandom::fill(&mut bytes).is_err() {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        bytes[..8].copy_from_slice(&t.to_le_bytes());
        bytes[8..15].copy_from_slice(&n.to_le_bytes()[..7]);
    }
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Engine.IO's error answers (the reference server's codes and messages).
#[derive(Debug, Clone, Copy)]
enum EngineError {
    UnknownTransport,
    UnknownSid,
    BadHandshakeMethod,
    BadRequest,
    UnsupportedVersion,
}

impl IntoResponse for EngineError {
    fn into_response(self) -> Response {
        let (code, message) = match self {
            EngineError::UnknownTransport => (0, "Transport unknown"),
            EngineError::UnknownSid => (1, "Session ID unknown"),
            EngineError::BadHandshakeMethod => (2, "Bad handshake method"),
            EngineError::BadRequest => (3, "Bad request"),
            EngineError::UnsupportedVersion => (5, "Unsupported protocol version"),
        };
        (
            StatusCode::BAD_REQUEST,
            axum::Json(serde_json::json!({ "code": code, "message": message })),
        )
            .into_response()
    }
}

/// The query parameters Engine.IO uses.
#[derive(Debug, Default)]
struct Query<'a> {
    eio: Option<&'a str>,
    transport: Option<&'a str>,
    sid: Option<&'a str>,
}

fn parse_query(query: &str) -> Query<'_> {
    let mut q = Query::default();
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "EIO" => q.eio = Some(value),
            "transport" => q.transport = Some(value),
            "sid" => q.sid = Some(value),
            _ => {}
        }
    }
    q
}

/// The HTTP entry point: every request under `/socket.io/`.
pub async fn serve<H: Handler>(engine: Arc<Engine<H>>, request: Request) -> Response {
    let ip = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), |info| {
            info.0.ip()
        });
    let encrypted = request
        .extensions()
        .get::<crate::tls::Encrypted>()
        .is_some_and(|e| e.0);
    let query = parse_query(request.uri().query().unwrap_or(""));
    if query.eio != Some("4") {
        return EngineError::UnsupportedVersion.into_response();
    }
    // A session stays on the kind of connection it was opened on: one
    // opened over TLS is not continued in plain text (where its traffic
    // could be read), nor a plain one over TLS (it would pass for
    // encrypted when a password is checked).
    let find = |sid: &str| {
        let session = engine
            .find(sid)
            .filter(|session| session.encrypted == encrypted)?;
        // A session whose pong is overdue is over now, whether or not the
        // heartbeat has come round to it (it ticks, a request is exact).
        if session.pong_overdue(std::time::Instant::now(), engine.config.ping_timeout) {
            engine.end(&session, Ended::PingTimeout);
            return None;
        }
        Some(session)
    };
    let sid = query.sid.map(str::to_owned);
    match (query.transport, request.method().clone(), sid) {
        (Some("polling"), Method::GET, None) => polling::handshake(&engine, ip, encrypted),
        (Some("polling"), _, None) => EngineError::BadHandshakeMethod.into_response(),
        (Some("polling"), Method::GET, Some(sid)) => match find(&sid) {
            Some(session) => polling::poll(&engine, session).await,
            None if engine.just_closed_by_client(&sid) => text(StatusCode::OK, NOOP),
            None => EngineError::UnknownSid.into_response(),
        },
        (Some("polling"), Method::POST, Some(sid)) => match find(&sid) {
            Some(session) => polling::post(&engine, session, request.into_body()).await,
            None => EngineError::UnknownSid.into_response(),
        },
        (Some("polling"), _, Some(_)) => EngineError::BadRequest.into_response(),
        (Some("websocket"), Method::GET, sid) => {
            let existing = match sid {
                None => None,
                Some(sid) => match find(&sid) {
                    Some(session) => Some(session),
                    None => return EngineError::UnknownSid.into_response(),
                },
            };
            websocket::upgrade(engine, request, ip, encrypted, existing)
        }
        (Some("websocket"), _, _) => EngineError::BadRequest.into_response(),
        _ => EngineError::UnknownTransport.into_response(),
    }
}

/// A plain-text response.
fn text(status: StatusCode, body: impl Into<Body>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=UTF-8")],
        body.into(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sids_are_distinct_url_safe_and_20_characters() {
        let a = new_sid();
        let b = new_sid();
        assert_ne!(a, b);
        assert_eq!(a.len(), 20);
        assert!(a
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
    }

    #[test]
    fn query_parameters_are_read() {
        let q = parse_query("EIO=4&transport=polling&t=abc&sid=xyz");
        assert_eq!(
            (q.eio, q.transport, q.sid),
            (Some("4"), Some("polling"), Some("xyz"))
        );
    }
}
