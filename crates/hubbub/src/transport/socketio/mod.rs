//! Socket.IO (protocol v5) over hubbub's own Engine.IO
//! ([`crate::transport::engineio`]): browsers and the official clients as
//! sessions of the same hub as line clients (docs/PROTOCOL.md).
//!
//! Each Engine.IO session carries one [`Socket`] on the main namespace
//! `/`. Its CONNECT opens a hub [`Session`] named `guest-N` whose outbox
//! the engine drains; its events become requests ([`requests`]), run one
//! at a time in arrival order by a worker task that exists only while
//! requests wait; hub events are encoded once per event for every socket
//! ([`events`]).

mod account;
mod events;
mod moderation;
pub mod packet;
mod requests;

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::client::{Client, Credentials, GuestNames, Identity};
use crate::hub::{Event, EventKind, Hub, HubError, Outbox, Session};
use crate::limits::{ConnectionGuard, ConnectionLimiter, FloodControl, FloodVerdict};
use crate::telemetry::{self, Transport};
use crate::transport::engineio::{self, Ended, Engine, EngineConfig, Flow, Handler, Input};
pub use events::Vocabulary;
use packet::PacketKind;

/// What the Socket.IO transport needs from the configuration.
#[derive(Debug, Clone)]
pub struct SocketIoSettings {
    /// Longest chat text in bytes (the line protocol's line limit).
    pub max_text_bytes: usize,
    pub flood_rate: f64,
    pub flood_burst: u32,
    pub flood_kick: u32,
    /// Engine.IO `pingInterval`.
    pub ping_interval: Duration,
    /// Engine.IO `pingTimeout`.
    pub ping_timeout: Duration,
    /// How long an Engine.IO session may wait for its Socket.IO CONNECT
    /// before it is closed (`connectTimeout`; the official clients send it
    /// at once).
    pub connect_timeout: Duration,
}

/// The Socket.IO protocol, as the engine's [`Handler`].
#[derive(Debug, Clone)]
pub struct SocketIoTransport {
    pub hub: Arc<Hub>,
    pub accounts: Arc<crate::accounts::Accounts>,
    pub moderation: Arc<crate::moderation::Moderation>,
    /// Caps Socket.IO sessions, total and per IP.
    pub limiter: Arc<ConnectionLimiter>,
    pub settings: Arc<SocketIoSettings>,
    tracker: TaskTracker,
    guests: Arc<AtomicU64>,
}

/// Requests one socket may have waiting for its worker, each at most one
/// packet (`max_payload` bytes). At the bound the transport stops reading
/// the socket (WebSocket) or holds its `POST` until there is room: a fast
/// sender is slowed down, and loses nothing.
pub(crate) const MAX_QUEUED_REQUESTS: usize = 256;

/// How long a disconnected socket's queued requests may take before its
/// leave is announced anyway.
const DRAIN_ON_DISCONNECT: Duration = Duration::from_secs(5);

/// Binary attachments a client may announce at once; we support none, and
/// skip up to this many before closing.
const MAX_SKIPPED_ATTACHMENTS: usize = 16;

impl SocketIoTransport {
    /// Shares `moderation` (its log, without a store) with the other transports.
    pub fn with_moderation(mut self, moderation: Arc<crate::moderation::Moderation>) -> Self {
        self.moderation = moderation;
        self
    }

    pub fn new(
        hub: Arc<Hub>,
        accounts: Arc<crate::accounts::Accounts>,
        limiter: Arc<ConnectionLimiter>,
        settings: SocketIoSettings,
        tracker: TaskTracker,
    ) -> SocketIoTransport {
        SocketIoTransport {
            moderation: Arc::new(crate::moderation::Moderation::new(
                hub.clone(),
                accounts.clone(),
            )),
            accounts,
            limiter,
            settings: Arc::new(settings),
            tracker,
            // Nodes of a cluster number their guests from far-apart
            // starting points, so their first names rarely collide.
            guests: Arc::new(AtomicU64::new(match hub.broker() {
                Some(link) => guest_base(link.node()),
                None => 1,
            })),
            hub,
        }
    }

    /// The Engine.IO server carrying this protocol, running until `shutdown`.
    pub fn start(
        self,
        shutdown: CancellationToken,
        tracker: TaskTracker,
    ) -> Arc<Engine<SocketIoTransport>> {
        // A packet carries at most one text plus its JSON framing. The text
        // limit applies to the decoded text, so the packet must leave room
        // for the widest escaping a client may use: `\uXXXX` surrogate
        // pairs, 12 bytes for a 4-byte character (python-socketio writes
        // every non-ASCII character so), three times the text.
        let config = EngineConfig {
            max_payload: self.settings.max_text_bytes * 3 + 4096,
            connect_timeout: self.settings.connect_timeout,
            ping_interval: self.settings.ping_interval,
            ping_timeout: self.settings.ping_timeout,
        };
        Engine::start(self, config, shutdown, tracker)
    }

    /// The names a new socket tries, `guest-N`, lazily (the counter
    /// advances only for names actually tried).
    fn guest_names(&self) -> impl Iterator<Item = String> + '_ {
        (0..100).map(|_| format!("guest-{}", self.guests.fetch_add(1, Ordering::Relaxed)))
    }

    /// Queues `job` for the socket's worker, starting it if idle.
    fn enqueue(&self, session: &Arc<engineio::Session<Socket>>, job: Job) {
        let mut queue = session.socket.lock_queue();
        queue.jobs.push_back(job);
        if !queue.running {
            queue.running = true;
            self.tracker.spawn(worker(self.clone(), session.clone()));
        }
    }

    /// Queues the end of the socket (after what it sent before), once.
    fn enqueue_end(&self, session: &Arc<engineio::Session<Socket>>) {
        if !std::mem::replace(&mut session.socket.lock_queue().ending, true) {
            self.enqueue(session, Job::End);
        }
    }

    /// Queues bytes for the socket, in order with everything else.
    fn send(&self, session: &engineio::Session<Socket>, bytes: Vec<u8>) {
        self.hub.push_wire(
            &session.outbox,
            Event::new(EventKind::Wire {
                bytes: Bytes::from(bytes),
            }),
        );
    }

    /// Tells the client its request was refused: in the acknowledgement it
    /// asked for, or else as an `error` event.
    fn refuse(
        &self,
        session: &engineio::Session<Socket>,
        ack: Option<u64>,
        code: &str,
        message: &str,
    ) {
        let error = json!({ "code": code, "message": message });
        let bytes = match ack {
            Some(id) => packet::ack_message(id, &json!({ "error": error }).to_string()),
            None => packet::event_message("error", &error.to_string()),
        };
        self.send(session, bytes);
    }

    /// Charges flood budget for `bytes` a request returned.
    fn charge(&self, session: &engineio::Session<Socket>, bytes: usize) {
        session
            .socket
            .flood
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .charge(bytes);
    }

    /// Flood control: one token per packet, as for lines.
    fn admit(&self, session: &engineio::Session<Socket>) -> Result<(), ()> {
        let verdict = session
            .socket
            .flood
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .check(Instant::now());
        let stats = self.hub.stats();
        match verdict {
            FloodVerdict::Accept => return Ok(()),
            FloodVerdict::Reject { .. } => {
                stats.flood_rejected_lines.fetch_add(1, Ordering::Relaxed);
                telemetry::flood_refused(Transport::SocketIo);
            }
            FloodVerdict::Disconnect => {
                stats.flood_disconnects.fetch_add(1, Ordering::Relaxed);
                session.outbox.close(crate::hub::CloseReason::Flooding);
            }
        }
        Err(())
    }

    /// The CONNECT job: opens the hub session, or answers CONNECT_ERROR.
    async fn connect(&self, session: &Arc<engineio::Session<Socket>>, auth: Value) {
        let socket = &session.socket;
        let vocabulary = match Vocabulary::from_auth(&auth) {
            Ok(vocabulary) => vocabulary,
            Err(message) => return self.connect_error(session, "bad_request", &message),
        };
        // Who the client says it is: an application's token, a session
        // token from an earlier login, an account's credentials, or nobody
        // (a guest). All or nothing: credentials present but malformed or
        // wrong are a CONNECT_ERROR, never a guest.
        let credentials = match Credentials::from_auth(&auth) {
            Ok(credentials) => credentials,
            Err(e) => return self.connect_error(session, e.code, &e.message),
        };
        let resumed = match &credentials {
            Some(Credentials::Session(token)) => Some(token.clone()),
            _ => None,
        };
        let claimed = match &credentials {
            Some(credentials) => {
                match Identity::authenticate(&self.accounts, peer_of(session), credentials).await {
                    Ok(claimed) => Some(claimed),
                    Err(e) => return self.connect_error(session, e.code, &e.message),
                }
            }
            None => None,
        };
        let connected = format!("40{}", json!({ "sid": &*session.sid }));
        let first = Event::new(EventKind::Wire {
            bytes: Bytes::from(connected),
        });
        let outbox = session.outbox.clone();
        let client = crate::hub::ClientInfo {
            wants_typing: true,
            one_room: false,
            ip: Some(session.ip),
        };
        let opened = match &claimed {
            Some((account, _)) => {
                self.hub
                    .open_logged_in_into(
                        outbox,
                        Some(first),
                        &account.name,
                        client,
                        Identity::hub_account(account),
                    )
                    .await
            }
            None => {
                self.hub
                    .open_first_free_into(outbox, Some(first), self.guest_names(), client)
                    .await
            }
        };
        match opened {
            Ok(hub_session) => {
                telemetry::session_opened(Transport::SocketIo);
                tracing::debug!(sid = %session.sid, ip = %session.ip, "socket.io client connected");
                let conn = Arc::new(Connection {
                    session: hub_session,
                    typing_sent: Mutex::new(HashMap::new()),
                    settings: self.settings.clone(),
                    in_flight: Arc::new(tokio::sync::Semaphore::new(requests::MAX_IN_FLIGHT)),
                    finished: AtomicBool::new(false),
                    vocabulary,
                    client: Client::new(
                        Identity::new(
                            self.accounts.clone(),
                            peer_of(session),
                            GuestNames::Numbered(self.guests.clone()),
                            true,
                        ),
                        self.moderation.clone(),
                    ),
                });
                if let Some((account, identity)) = claimed {
                    conn.client
                        .identity
                        .connected(&account, identity.as_ref(), resumed.as_deref());
                    if let Some(identity) = identity {
                        for room in &identity.rooms {
                            conn.session.enter(room, None).await.ok();
                        }
                        self.tracker.spawn(account::expire_token(conn.clone()));
                    }
                }
                socket.connected_once.store(true, Ordering::SeqCst);
                *socket.conn.lock().unwrap_or_else(|e| e.into_inner()) = Some(conn);
            }
            Err(e) => self.connect_error(session, e.code(), &e.to_string()),
        }
        socket.lock_queue().connecting = false;
    }

    /// Answers CONNECT_ERROR: `{message, data: {code}}` (official clients
    /// hand `message` and `data` to their `connect_error` listeners).
    fn connect_error(&self, session: &engineio::Session<Socket>, code: &str, message: &str) {
        session.socket.lock_queue().connecting = false;
        let packet = json!({ "message": message, "data": { "code": code } });
        self.send(session, format!("44{packet}").into_bytes());
    }
}

impl Handler for SocketIoTransport {
    type Socket = Socket;

    fn open(&self, ip: IpAddr) -> Result<(Socket, Arc<Outbox>), String> {
        let slot = self.limiter.acquire(ip).map_err(|refused| {
            crate::limits::warn_refusal("connection_cap", &ip.to_string());
            refused.to_string()
        })?;
        let settings = &self.settings;
        let socket = Socket {
            _slot: slot,
            conn: Mutex::new(None),
            connected_once: AtomicBool::new(false),
            queue: Mutex::new(Queue::default()),
            flood: Mutex::new(FloodControl::new(
                settings.flood_rate,
                settings.flood_burst,
                settings.flood_kick,
            )),
        };
        Ok((socket, self.hub.new_outbox()))
    }

    fn message(&self, session: &Arc<engineio::Session<Socket>>, input: Input<'_>) -> Flow {
        if session.outbox.closing().is_some() {
            // The server is closing this socket: nothing more is taken.
            return Flow::Continue;
        }
        let text = match input {
            Input::Text(text) => text,
            Input::Binary(_) => {
                let mut queue = session.socket.lock_queue();
                if queue.skip_attachments > 0 {
                    queue.skip_attachments -= 1;
                } else {
                    drop(queue);
                    // Like any request, it spends flood budget.
                    if self.admit(session).is_ok() {
                        self.refuse(session, None, "bad_request", "binary data is not supported");
                    }
                }
                return Flow::Continue;
            }
        };
        let packet = match packet::decode(text) {
            Ok(packet) => packet,
            Err(e) => {
                // As the reference server does: a client that sends what
                // cannot be parsed is closed (it is told why first).
                tracing::debug!(sid = %session.sid, error = %e, "bad socket.io packet");
                session.outbox.close(crate::hub::CloseReason::ProtocolError);
                return Flow::Pause;
            }
        };
        if packet.namespace != "/" {
            if packet.kind == PacketKind::Connect && self.admit(session).is_ok() {
                let mut refusal = Vec::new();
                packet::encode_into(
                    &packet::Packet {
                        kind: PacketKind::ConnectError,
                        attachments: 0,
                        namespace: packet.namespace,
                        id: None,
                        data: r#"{"message":"Invalid namespace"}"#,
                    },
                    true,
                    &mut refusal,
                );
                self.send(session, refusal);
            }
            return Flow::Continue;
        }
        match packet.kind {
            PacketKind::Connect => {
                // No payload is a guest; one that is not JSON is not an
                // object, which the credentials check refuses
                // (`bad_credentials`), rather than a guest.
                // A CONNECT has no ack id: digits there are a payload such
                // as `42`, which is not an object either.
                let auth = match (packet.id, packet.data) {
                    (Some(_), _) => Value::Bool(false),
                    (None, "") => Value::Null,
                    (None, data) => serde_json::from_str(data).unwrap_or(Value::Bool(false)),
                };
                let mut queue = session.socket.lock_queue();
                if queue.connecting || queue.ending || session.socket.conn().is_some() {
                    return Flow::Continue;
                }
                queue.connecting = true;
                drop(queue);
                self.enqueue(session, Job::Connect(auth));
            }
            // The namespace only (Socket.IO v5): the Engine.IO session
            // stays, for pings and a later CONNECT, as the reference server
            // keeps it.
            PacketKind::Disconnect => {
                if !session.socket.lock_queue().ending {
                    self.enqueue(session, Job::Disconnect);
                }
            }
            PacketKind::Event => {
                if !self.is_connected(&session.socket) {
                    // As the reference server does: events for a namespace
                    // the client has not connected to are dropped.
                    return Flow::Continue;
                }
                if self.admit(session).is_err() {
                    self.refuse(
                        session,
                        packet.id,
                        "flood",
                        "you are sending too fast; requests are dropped until you slow down",
                    );
                    return Flow::Continue;
                }
                match packet::event_parts(packet.data) {
                    Ok((name, data)) => self.enqueue(
                        session,
                        Job::Request(requests::Request {
                            name,
                            data,
                            ack: packet.id,
                        }),
                    ),
                    Err(packet::PacketError::LoneSurrogate(name)) => {
                        // A good packet with bad text: refused on its ack,
                        // the socket stays (official clients do not
                        // reconnect after a protocol error).
                        self.refuse(
                            session,
                            packet.id,
                            "invalid_text",
                            &format!(
                                "{name}: the text holds half of a UTF-16 surrogate pair \
                                 (a cut emoji?); nothing was sent"
                            ),
                        );
                    }
                    Err(e) => {
                        // Not JSON, or not `["name", ...]`: a malformed
                        // packet, closed as the reference server does.
                        tracing::debug!(sid = %session.sid, error = %e, "bad socket.io event");
                        session.outbox.close(crate::hub::CloseReason::ProtocolError);
                        return Flow::Pause;
                    }
                }
            }
            PacketKind::BinaryEvent | PacketKind::BinaryAck => {
                let mut queue = session.socket.lock_queue();
                queue.skip_attachments += packet.attachments;
                if queue.skip_attachments > MAX_SKIPPED_ATTACHMENTS {
                    drop(queue);
                    session.outbox.close(crate::hub::CloseReason::Flooding);
                    return Flow::Continue;
                }
                drop(queue);
                // Refused, but not for free: it spends the flood budget
                // like any request.
                if self.admit(session).is_err() {
                    return Flow::Continue;
                }
                if packet.kind == PacketKind::BinaryEvent {
                    self.refuse(
                        session,
                        packet.id,
                        "bad_request",
                        "binary data is not supported",
                    );
                }
            }
            // The server asks for no acknowledgements; a client's
            // CONNECT_ERROR means nothing here.
            PacketKind::Ack | PacketKind::ConnectError => {}
        }
        if self.can_take(&session.socket) {
            Flow::Continue
        } else {
            Flow::Pause
        }
    }

    fn can_take(&self, socket: &Socket) -> bool {
        socket.lock_queue().jobs.len() < MAX_QUEUED_REQUESTS
    }

    fn control(&self, session: &Arc<engineio::Session<Socket>>) -> bool {
        self.admit(session).is_ok()
    }

    fn settled(&self) -> futures_util::future::BoxFuture<'static, ()> {
        let hub = self.hub.clone();
        Box::pin(async move { hub.quiesce().await })
    }

    fn is_connected(&self, socket: &Socket) -> bool {
        socket.connected_once.load(Ordering::SeqCst) || socket.lock_queue().connecting
    }

    fn encode(&self, socket: &Socket, event: &Event, emit: &mut dyn FnMut(&[u8])) {
        let vocabulary = socket.conn().map_or(Vocabulary::Both, |c| c.vocabulary);
        events::encode(vocabulary, event, emit);
    }

    fn closed(&self, session: &Arc<engineio::Session<Socket>>, why: Ended) {
        match (why, session.socket.conn()) {
            // The server closed it and the client was told: end now.
            (Ended::ServerClosed, Some(conn)) => conn.finish(),
            // The client went: what it sent before is handled first.
            _ => self.enqueue_end(session),
        }
    }
}

/// The Socket.IO state of one Engine.IO session.
#[derive(Debug)]
pub struct Socket {
    /// Holds the session's place under the caps until it is gone.
    _slot: ConnectionGuard,
    /// The CONNECTed namespace's connection: set by a CONNECT, taken by
    /// the client's DISCONNECT (the Engine.IO session stays, and may
    /// CONNECT again).
    conn: Mutex<Option<Arc<Connection>>>,
    /// A CONNECT has succeeded once (the connect timeout no longer applies).
    connected_once: AtomicBool,
    queue: Mutex<Queue>,
    flood: Mutex<FloodControl>,
}

impl Socket {
    fn lock_queue(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The connected namespace's connection, if any.
    fn conn(&self) -> Option<Arc<Connection>> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Work waiting for the socket's worker.
#[derive(Debug, Default)]
struct Queue {
    jobs: VecDeque<Job>,
    /// A worker task is running (it exits when the queue is empty).
    running: bool,
    /// A CONNECT is being handled.
    connecting: bool,
    /// The end is queued: nothing more is accepted.
    ending: bool,
    /// Binary attachments still to skip.
    skip_attachments: usize,
}

#[derive(Debug)]
enum Job {
    Connect(Value),
    /// The client DISCONNECTed its namespace.
    Disconnect,
    Request(requests::Request),
    End,
}

/// Runs a socket's jobs one at a time, in arrival order; exits when none
/// wait, so an idle socket has no task.
async fn worker(transport: SocketIoTransport, session: Arc<engineio::Session<Socket>>) {
    loop {
        let job = {
            let mut queue = session.socket.lock_queue();
            match queue.jobs.pop_front() {
                Some(job) => job,
                None => {
                    queue.running = false;
                    if queue.jobs.capacity() > 16 {
                        queue.jobs = VecDeque::new();
                    }
                    return;
                }
            }
        };
        session.space.notify_one();
        match job {
            Job::Connect(auth) => transport.connect(&session, auth).await,
            Job::Request(request) => {
                if let Some(conn) = session.socket.conn() {
                    requests::handle(&transport, &session, conn, request).await;
                }
            }
            Job::Disconnect => {
                let conn = session
                    .socket
                    .conn
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .take();
                if let Some(conn) = conn {
                    // As at the end: what it sent before is relayed first.
                    let all = requests::MAX_IN_FLIGHT as u32;
                    let _ =
                        tokio::time::timeout(DRAIN_ON_DISCONNECT, conn.in_flight.acquire_many(all))
                            .await;
                    conn.leave_namespace();
                }
            }
            Job::End => {
                if let Some(conn) = session.socket.conn() {
                    // What the client sent before it went is handled before
                    // it is gone: its messages are committed and relayed,
                    // so the room sees them before the leave.
                    let all = requests::MAX_IN_FLIGHT as u32;
                    let _ =
                        tokio::time::timeout(DRAIN_ON_DISCONNECT, conn.in_flight.acquire_many(all))
                            .await;
                    conn.finish();
                }
            }
        }
    }
}

/// One connected socket's hub session and what its requests share.
#[derive(Debug)]
pub(crate) struct Connection {
    session: Session,
    /// When each room last relayed a typing start from this socket (bounded
    /// by the rooms it is in: entries are only added for joined rooms).
    typing_sent: Mutex<HashMap<Arc<str>, Instant>>,
    settings: Arc<SocketIoSettings>,
    /// Slots for messages submitted but not yet committed.
    in_flight: Arc<tokio::sync::Semaphore>,
    /// The session has ended (see [`Connection::finish`]).
    finished: AtomicBool,
    /// How room messages are sent to this client.
    vocabulary: Vocabulary,
    /// Who the client is, and the commands it shares with every transport.
    client: Client,
}

/// A socket's messages in flight, as the client core waits for them
/// before a presence change: every slot free again.
struct Settle<'a>(&'a tokio::sync::Semaphore);

#[async_trait::async_trait]
impl crate::client::InFlight for Settle<'_> {
    async fn settle(&mut self) {
        drop(self.0.acquire_many(requests::MAX_IN_FLIGHT as u32).await);
    }
}

impl Connection {
    /// Carries out a client-core command for this socket.
    ///
    /// Errors: the command's refusal.
    pub(super) async fn apply(
        &self,
        command: crate::client::Command<'_>,
    ) -> Result<crate::client::Reply, crate::client::Refusal> {
        self.client
            .apply(&self.session, &mut Settle(&self.in_flight), command)
            .await
    }

    /// Ends the session (the room hears the leave), once.
    fn finish(&self) {
        if self.finished.swap(true, Ordering::SeqCst) {
            return;
        }
        telemetry::session_closed(
            Transport::SocketIo,
            self.session.outbox().closing().as_ref(),
        );
        self.session.end();
    }

    /// Whether the session ended (or left its namespace).
    fn is_finished(&self) -> bool {
        self.finished.load(Ordering::SeqCst)
    }

    /// The client DISCONNECTed the namespace: the hub session ends (the
    /// rooms hear it leave), the Engine.IO session and its outbox stay.
    fn leave_namespace(&self) {
        if self.finished.swap(true, Ordering::SeqCst) {
            return;
        }
        telemetry::session_closed(Transport::SocketIo, Some(&crate::hub::CloseReason::Quit));
        self.session.leave_keeping_outbox();
    }
}

/// Who sends passwords on `session`, for the accounts' checks.
fn peer_of(session: &engineio::Session<Socket>) -> crate::accounts::Peer {
    crate::accounts::Peer {
        ip: session.ip,
        encrypted: session.encrypted,
    }
}

/// Where a cluster node starts numbering guests: from its node id, in
/// steps of 10 000 below 10 000 000.
fn guest_base(node: &str) -> u64 {
    use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
    let hash = BuildHasherDefault::<DefaultHasher>::default().hash_one(node);
    1 + (hash % 1000) * 10_000
}

/// Used by errors that came from the hub.
impl From<HubError> for requests::RequestError {
    fn from(e: HubError) -> Self {
        requests::RequestError::new(e.code(), e.to_string())
    }
}
