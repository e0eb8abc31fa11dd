//! The hub: rooms, sessions, nicknames, presence and fan-out.
//!
//! The hub knows nothing about sockets. A transport calls [`Hub::open`] to
//! get a [`Session`], calls its methods for what the client asks, and drains
//! the session's [`Outbox`] onto its wire. Every room event is built once as
//! an `Arc<Event>` and pushed to each member's outbox; pushing never waits, so
//! a client that stops reading cannot stall the hub or anyone else (see
//! [`outbox`] for what happens at the bound).
//!
//! All state sits behind one short, never-awaited lock. That one lock is what
//! gives every member of a room the same order of events, whatever their
//! transport: an event is pushed to all members before the next one is built.
//! Room messages are also delivered strictly in id order ([`order`]), which
//! is what keeps that order across the nodes of a cluster; the other nodes'
//! sessions are mirrored in [`remote`].
//!
//! Files: `state` (what the lock guards), `open` (admitting and naming
//! sessions), `session` (a client's handle), `rooms` (entering, leaving,
//! listings), `presence` (announcing joins and leaves, summarized in
//! big rooms; paged member lists), `fanout` (pushing, pacing, shedding), `sequencer`
//! (numbering, commit, then fan-out of messages), `policy` and
//! `moderation` (who may enter and speak; enforcing it), `broker` (what
//! the hub needs from a cluster, which implements it).

pub mod broker;
mod budget;
mod cache;
mod enforce;
pub mod event;
mod fanout;
pub mod gate;
mod moderation;
pub mod names;
mod open;
mod order;
pub mod outbox;
pub mod policy;
mod presence;
pub(crate) mod remote;
mod rooms;
mod sequencer;
mod session;
mod state;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

pub use event::{CloseReason, Event, EventKind, WireFormat};
pub use outbox::{Batch, Outbox, Pushed};
pub use presence::{MembersQuery, MAX_MEMBERS_PAGE, MEMBERS_PAGE};
pub use session::{Session, Submitted};

use tokio::sync::{mpsc, oneshot};

use crate::store::{HistoryStore, PageQuery, StoredMessage, StoredRoom};
use broker::{Broker, Claim, Outgoing, SessionState};
use cache::{CacheBudget, RoomCache};
use outbox::QueuedTotal;
use policy::{Policy, Who};
use remote::RemoteId;
use state::{Room, State};

/// A session's identity inside the hub; never reused while the process lives.
pub type SessionId = u64;

/// What the hub needs to know from the configuration.
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// The room every session starts in.
    pub default_room: String,
    /// Bound of each session's outbox, in bytes.
    pub outbox_limit: usize,
    /// Messages of a room sent to whoever joins it.
    pub history_on_join: usize,
    /// Recent messages kept in memory per room (for joins and resumes
    /// without a store round trip); at least `history_on_join`.
    pub history_cache: usize,
    /// Most rooms that may exist at once.
    pub max_rooms: usize,
    /// Most bytes the rooms' recent-history caches hold together (see
    /// [`cache`]).
    pub history_cache_bytes: usize,
    /// Most bytes all outboxes together may hold; past it the largest
    /// queues are closed as slow consumers (see [`Hub::shed_queues`]).
    pub outbox_total_limit: usize,
    /// Past this many sessions in a room, its joins, leaves and renames
    /// are summarized every `presence_interval` instead of announced one
    /// by one, and typing is not relayed there ([`presence`]); 0: never.
    pub presence_threshold: usize,
    /// How often a big room hears its presence summary.
    pub presence_interval: Duration,
}

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig {
            default_room: "lobby".into(),
            outbox_limit: 1024 * 1024,
            history_on_join: 20,
            history_cache: 100,
            max_rooms: 10_000,
            history_cache_bytes: 64 * 1024 * 1024,
            outbox_total_limit: 256 * 1024 * 1024,
            presence_threshold: 100,
            presence_interval: Duration::from_secs(2),
        }
    }
}

/// The account a session is logged in to, as the hub's rules need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedIn {
    /// The account's stable id (`store::StoredAccount::id`): what rights
    /// and bans refer to.
    pub id: Arc<str>,
    /// Confirmed a server operator by the administrator.
    pub server_operator: bool,
}

/// Where this process starts numbering its sessions: a random point
/// below 2^52 (ids stay exact in JSON numbers). A guest's grants and bans
/// name its session (`policy::session_subject`), and survive a restart in
/// the store: a node that restarts under the same node id must not hand
/// an old session's id to someone new.
fn first_session_id() -> u64 {
    let mut bytes = [0u8; 8];
    let random = match getrandom::fill(&mut bytes) {
        Ok(()) => u64::from_le_bytes(bytes),
        // No randomness: the clock is the next best thing.
        Err(_) => event::now_millis().wrapping_mul(1_000_003),
    };
    1 + random % (1 << 52)
}

/// A request the hub refused; `code` is stable for programs, the text is for people.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HubError {
    #[error("invalid nickname: {0}")]
    InvalidNick(String),
    #[error("nickname {0} is already in use")]
    NickInUse(String),
    #[error("invalid room name: {0}")]
    InvalidRoom(String),
    #[error("you are already in {0}")]
    AlreadyInRoom(String),
    #[error("you are not in {0}")]
    NotInRoom(String),
    #[error("no such nickname: {0}")]
    NoSuchNick(String),
    #[error("no such room: {0}")]
    NoSuchRoom(String),
    #[error("a message cannot be empty")]
    EmptyMessage,
    #[error("text too long (at most {0} bytes)")]
    TooLarge(usize),
    #[error("invalid text: {0}")]
    InvalidText(String),
    #[error("this session has ended")]
    SessionEnded,
    #[error("the message was not sent: the history store is unavailable")]
    StoreUnavailable,
    #[error("too many rooms (at most {0})")]
    TooManyRooms(usize),
    #[error("you are in {0} rooms already, the most one connection may join; leave one first")]
    TooManyJoined(usize),
    #[error("{0} is on another server of this cluster, which cannot be reached right now")]
    ClusterUnavailable(String),
    #[error("{0} other session(s) are logged in to this account; log them out first")]
    OtherSessions(usize),
    #[error("you are banned from {0}{1}")]
    Banned(String, String),
    #[error("{0} is invite-only: ask one of its operators for an invitation")]
    InviteOnly(String),
    #[error("{0} is for registered users: log in first")]
    RegisteredOnly(String),
    #[error("{0} is full ({1} members)")]
    RoomFull(String, u32),
    #[error("you are muted in {0}")]
    Muted(String),
    #[error("{0} is moderated: only its operators and voiced members may speak")]
    Moderated(String),
    #[error("you are not an operator of {0}")]
    NotOperator(String),
    #[error("you are not a server operator")]
    NotServerOperator,
    #[error("invalid mode change {0}: use +i, +m, +R, +t, +l N or their - forms")]
    BadMode(String),
    #[error("invalid mask {0}: use a nickname, account:NAME, nick:PATTERN (* and ?, with letters or digits) or ip:ADDRESS[/BITS] (no host bits set)")]
    BadMask(String),
    #[error("invalid duration {0}: use a number and s, m, h or d (at most 366 days)")]
    BadDuration(String),
    #[error("{0} holds too many entries of that kind (at most {1})")]
    PolicyFull(String, usize),
    #[error("{0}")]
    NotFound(String),
    #[error("{1} ranks at or above you in {0}")]
    Outranked(String, String),
    #[error("{0} is not a registered nickname, nor anyone here: grant it to someone who is")]
    NoSuchSubject(String),
    #[error("the rules of {0} cannot be read right now; try again")]
    PolicyUnavailable(String),
    #[error("in {0}, only a server operator may ban an address range wider than /16 (IPv4) or /32 (IPv6)")]
    WideMask(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("the server is shutting down; the message was not sent")]
    ShuttingDown,
    #[error("your address has opened {0} rooms this minute; join an existing one or wait")]
    RoomBudget(u32),
}

impl HubError {
    /// A stable, machine-readable code for the error.
    pub fn code(&self) -> &'static str {
        match self {
            HubError::InvalidNick(_) => "invalid_nick",
            HubError::NickInUse(_) => "nick_in_use",
            HubError::InvalidRoom(_) => "invalid_room",
            HubError::AlreadyInRoom(_) => "already_in_room",
            HubError::NotInRoom(_) => "not_in_room",
            HubError::NoSuchNick(_) => "no_such_nick",
            HubError::NoSuchRoom(_) => "no_such_room",
            HubError::EmptyMessage => "empty_message",
            HubError::TooLarge(_) => "too_large",
            HubError::InvalidText(_) => "invalid_text",
            HubError::SessionEnded => "session_ended",
            HubError::StoreUnavailable => "store_unavailable",
            HubError::TooManyRooms(_) => "too_many_rooms",
            HubError::TooManyJoined(_) => "too_many_joined",
            HubError::ClusterUnavailable(_) => "cluster_unavailable",
            HubError::OtherSessions(_) => "other_sessions",
            HubError::Banned(..) => "banned",
            HubError::InviteOnly(_) => "invite_only",
            HubError::RegisteredOnly(_) => "registered_only",
            HubError::RoomFull(..) => "room_full",
            HubError::Muted(_) => "muted",
            HubError::Moderated(_) => "moderated",
            HubError::NotOperator(_) => "not_operator",
            HubError::NotServerOperator => "not_server_operator",
            HubError::BadMode(_) => "bad_mode",
            HubError::BadMask(_) => "bad_mask",
            HubError::BadDuration(_) => "bad_duration",
            HubError::PolicyFull(..) => "policy_full",
            HubError::NotFound(_) => "not_found",
            HubError::Outranked(..) => "outranked",
            HubError::NoSuchSubject(_) => "no_such_subject",
            HubError::PolicyUnavailable(_) => "policy_unavailable",
            HubError::WideMask(_) => "wide_mask",
            HubError::BadRequest(_) => "bad_request",
            HubError::ShuttingDown => "shutting_down",
            HubError::RoomBudget(_) => "room_budget",
        }
    }
}

/// Counters, readable at any time; the server logs them and tests read them.
#[derive(Debug, Default)]
pub struct HubStats {
    pub sessions_opened: AtomicU64,
    pub sessions_closed: AtomicU64,
    pub messages: AtomicU64,
    pub deliveries: AtomicU64,
    pub slow_consumers: AtomicU64,
    pub flood_rejected_lines: AtomicU64,
    pub flood_disconnects: AtomicU64,
    pub store_failures: AtomicU64,
    /// Times a room's messages arrived with a gap that was then read from
    /// the store (cluster mode: pub/sub reordering or loss).
    pub gap_repairs: AtomicU64,
    /// Message ids skipped because the store no longer had them.
    pub skipped_ids: AtomicU64,
}

/// A room message as the hub recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Posted {
    /// Monotonic within the room.
    pub id: u64,
    /// Milliseconds since the Unix epoch.
    pub ts: u64,
    /// The room's display name.
    pub room: Arc<str>,
}

/// A room's name and how many are in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomSummary {
    pub name: Arc<str>,
    pub members: usize,
    /// The room's topic, if it has one.
    pub topic: Option<Arc<str>>,
}

/// A room listing: at most [`MAX_LISTED_ROOMS`] rooms (with more, the ones
/// with the most members), sorted case-insensitively, and how many exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomList {
    pub total: usize,
    pub rooms: Vec<RoomSummary>,
}

/// Most rooms one listing shows.
pub const MAX_LISTED_ROOMS: usize = 100;
/// With this many rooms or more, a listing may be up to [`DIRECTORY_MAX_AGE`] old.
const DIRECTORY_LIVE_BELOW: usize = 1000;
/// How old a listing of many rooms may be.
const DIRECTORY_MAX_AGE: Duration = Duration::from_secs(1);

/// A page of a room's members, sorted case-insensitively, and how many
/// there are ([`MembersQuery`] says which page).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomMembers {
    pub name: Arc<str>,
    /// Users in the room, each once however many devices, here and on
    /// other nodes (in a room past the presence threshold, as of at most
    /// a second ago).
    pub count: usize,
    /// This page of them.
    pub members: Vec<Arc<str>>,
    /// Those of `members` logged in to their nickname's account.
    pub logged_in: Vec<Arc<str>>,
    /// When more members follow this page: its last nickname, the
    /// `after` of the next page.
    pub next: Option<Arc<str>>,
}

impl RoomMembers {
    /// `alice (logged in), bob`: the members for people to read.
    pub fn listing(&self) -> String {
        let logged_in: HashSet<&Arc<str>> = self.logged_in.iter().collect();
        self.members
            .iter()
            .map(|m| {
                if logged_in.contains(m) {
                    format!("{m} (logged in)")
                } else {
                    m.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// What the hub knows of a client besides its name.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClientInfo {
    /// The transport shows typing indicators ([`EventKind::Typing`]).
    pub wants_typing: bool,
    /// Always in exactly one room (a line client): when removed from its
    /// room (kicked, banned) it is moved to the default room.
    pub one_room: bool,
    /// The client's address, for IP bans.
    pub ip: Option<std::net::IpAddr>,
}

/// A nickname in use, as [`Hub::whois`] finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presence {
    /// As its holder spells it.
    pub nick: Arc<str>,
    /// Logged in to the account that owns it.
    pub logged_in: bool,
    /// Sessions holding it, on every node (one account's devices).
    pub sessions: usize,
}

/// The chat core shared by every transport.
#[derive(Debug)]
pub struct Hub {
    config: HubConfig,
    state: Mutex<State>,
    next_session: AtomicU64,
    stats: HubStats,
    /// Signalled by writers that drained a backlogged outbox; paced senders wait on it.
    relief: Arc<tokio::sync::Notify>,
    /// Set once the server is stopping: sessions then leave without telling
    /// the room, which is being told goodbye as a whole.
    shutting_down: std::sync::atomic::AtomicBool,
    /// Where sessions hand messages to be numbered, committed and fanned out.
    sequencer: mpsc::Sender<sequencer::Pending>,
    /// Bytes queued in every outbox together.
    queued: Arc<QueuedTotal>,
    /// The last room listing taken (see [`Hub::rooms`]).
    directory: Mutex<Option<(std::time::Instant, Arc<Vec<RoomSummary>>)>>,
    store: Option<Arc<dyn HistoryStore>>,
    /// The broker to the other nodes of a cluster, if any.
    broker: Option<Arc<dyn Broker>>,
    /// Messages handed to the sequencer and not yet fanned out.
    pending: Arc<sequencer::PendingCount>,
}

/// Most rooms one session may be in at once (Socket.IO sessions join
/// several; a line session is in one).
pub const MAX_ROOMS_PER_SESSION: usize = 32;

/// The longest a sender is held back after one message (see [`Hub::pace`]).
const MAX_PACING: Duration = Duration::from_secs(5);
/// How often a paced sender re-checks its room without a relief signal.
const PACING_RECHECK: Duration = Duration::from_millis(50);

impl Hub {
    /// A hub without persistence (history lives in memory only).
    pub fn new(config: HubConfig) -> Arc<Hub> {
        Hub::start(config, None, Vec::new(), None)
    }

    /// A hub writing history to `store`, starting with the rooms and recent
    /// messages read from it; a node of a cluster through `broker` if given.
    /// Spawns the sequencer (needs a tokio runtime).
    pub fn start(
        mut config: HubConfig,
        store: Option<Arc<dyn HistoryStore>>,
        stored: Vec<(StoredRoom, Vec<StoredMessage>)>,
        broker: Option<Arc<dyn Broker>>,
    ) -> Arc<Hub> {
        config.history_cache = config.history_cache.max(config.history_on_join);
        let mut state = State {
            cache: CacheBudget::new(config.history_cache_bytes),
            // Guests' grants and bans name their session by node and id;
            // a single server's id is new at each start, so a session id
            // reused after a restart is not taken for the old session.
            node: match &broker {
                Some(broker) => broker.node().clone(),
                None => crate::cluster::generate_node_id().into(),
            },
            ..State::default()
        };
        let claims = stored
            .iter()
            .map(|(room, _)| (names::nick_key(&room.key), room.key.clone()))
            .collect();
        for (room, messages) in stored {
            let recent = messages
                .iter()
                .map(|m| Event::new(EventKind::from_stored(m)))
                .collect();
            let mut entry = Room {
                persisted: true,
                ..Room::new(room.name, room.last_id)
            };
            state.cache.replace(&room.key, &mut entry.recent, recent);
            state.rooms.insert(room.key.clone(), entry);
            state.note_room(&room.key);
        }
        state.trim_caches();
        let default_key = names::fold(&config.default_room);
        let _ = state.room_entry(&default_key, &config.default_room, usize::MAX);
        let (sequencer_tx, sequencer_rx) = mpsc::channel(sequencer::QUEUE);
        let config_outbox_total = config.outbox_total_limit;
        let hub = Arc::new(Hub {
            config,
            state: Mutex::new(state),
            next_session: AtomicU64::new(first_session_id()),
            stats: HubStats::default(),
            relief: Arc::new(tokio::sync::Notify::new()),
            shutting_down: std::sync::atomic::AtomicBool::new(false),
            sequencer: sequencer_tx,
            directory: Mutex::new(None),
            queued: QueuedTotal::new(config_outbox_total),
            store: store.clone(),
            broker,
            pending: Arc::default(),
        });
        tokio::spawn(sequencer::run(Arc::downgrade(&hub), sequencer_rx, store));
        tokio::spawn(shed_when_over(Arc::downgrade(&hub), hub.queued.clone()));
        if hub.config.presence_threshold > 0 {
            tokio::spawn(presence::run(
                Arc::downgrade(&hub),
                hub.config.presence_interval,
            ));
        }
        // Rooms stored before their names were recorded (see `open_room`).
        hub.claim_room_names(claims);
        // The default room is heard always: every session starts there.
        hub.hear_room(&mut hub.lock(), &default_key);
        hub
    }

    /// A page of `room`'s history (see [`PageQuery`]): from the store, or
    /// from memory when there is none.
    ///
    /// Returns the room's display name, the page, and whether the page
    /// reaches back to the room's first message (or `query.after`).
    /// `reader` must be allowed to read the room (the gate's
    /// [`gate::Action::Read`]): a member, or an outsider the room would
    /// admit.
    ///
    /// Errors: `invalid_room`, `no_such_room`, the gate's refusals
    /// (`banned`, `invite_only`, `registered_only`), `store_unavailable`.
    pub async fn history(
        self: &Arc<Self>,
        reader: SessionId,
        room: &str,
        query: PageQuery,
    ) -> Result<(Arc<str>, Vec<StoredMessage>, bool), HubError> {
        // One more than asked tells whether anything older exists.
        let probe = PageQuery {
            limit: query.limit.saturating_add(1),
            ..query
        };
        // Without a member here, the policy in memory may be older than
        // the store's (a room mirrored from other nodes): read it first.
        let key = self.open_room(&names::validate_room(room)?).await?;
        let (key, name, cached) = {
            let state = self.lock();
            let room = state
                .rooms
                .get(&key)
                .ok_or_else(|| HubError::NoSuchRoom(room.to_string()))?;
            self.check_read(&state, reader, &key)?;
            let cached: Vec<StoredMessage> = room
                .recent
                .iter()
                .filter_map(|e| stored_of(e))
                .filter(|m| {
                    query.after.is_none_or(|a| m.id > a) && query.before.is_none_or(|b| m.id < b)
                })
                .collect();
            (key, room.name.clone(), cached)
        };
        let mut messages = match &self.store {
            Some(store) => store.page(&key, probe).await.map_err(|e| {
                tracing::warn!(error = %e, "history store read failed");
                HubError::StoreUnavailable
            })?,
            None => {
                let skip = cached.len().saturating_sub(probe.limit as usize);
                cached.into_iter().skip(skip).collect()
            }
        };
        let complete = messages.len() <= query.limit as usize;
        if !complete {
            messages.remove(0);
        }
        Ok((name, messages, complete))
    }

    pub fn config(&self) -> &HubConfig {
        &self.config
    }

    /// The history store, if any.
    pub fn store(&self) -> Option<&Arc<dyn HistoryStore>> {
        self.store.as_ref()
    }

    /// Bytes the rooms' recent-history caches hold (within
    /// `history_cache_bytes`).
    pub fn history_cache_bytes(&self) -> usize {
        self.lock().cache.bytes()
    }

    /// Rooms in memory (with members, history, or both).
    pub fn room_count(&self) -> usize {
        self.lock().rooms.len()
    }

    pub fn stats(&self) -> &HubStats {
        &self.stats
    }

    /// From now on sessions that end are not announced to their rooms.
    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
    }

    /// Returns once every message handed to the hub is fanned out (or
    /// failed). Once shutdown has begun no new one is taken, so this is
    /// what shutdown waits for before it closes anyone's connection: no
    /// member is told goodbye before a message its sender saw committed.
    pub async fn quiesce(&self) {
        self.pending.none_left().await;
    }

    /// Whether shutdown has begun: new messages are refused
    /// (`shutting_down`), so that what is pending only drains.
    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }

    /// Whether `who` acts as an operator under `policy`: the room's owner
    /// or operators, or a server operator.
    pub(super) fn is_operator(&self, policy: &Policy, who: &Who<'_>) -> bool {
        gate::rank(policy, who) >= gate::Rank::Operator
    }

    /// Whether `who` is a server operator (confirmed by the administrator,
    /// logged in).
    fn is_server_operator(&self, who: &Who<'_>) -> bool {
        who.server_operator
    }

    /// Refuses `who` when a server-wide ban covers them (server operators
    /// excepted, as everywhere a server ban applies).
    ///
    /// Errors: `banned`.
    fn check_server_ban(&self, state: &State, who: &Who<'_>) -> Result<(), HubError> {
        if self.is_server_operator(who) {
            return Ok(());
        }
        state
            .server_policy
            .refuse_banned("this server", who, event::now_millis())
    }

    /// The broker to the other nodes, if this node is part of a cluster.
    pub fn broker(&self) -> Option<&Arc<dyn Broker>> {
        self.broker.as_ref()
    }

    /// Tells the cluster (if any) that session `id` changed nick or rooms.
    fn presence_changed(&self, id: SessionId) {
        if let Some(broker) = &self.broker {
            if let Some(state) = self.presence(id) {
                broker.session_changed(state);
            }
        }
    }

    /// Gives back a cluster claim on folded nickname `key`.
    fn release_nick(&self, key: String, session: SessionId) {
        if let Some(broker) = &self.broker {
            broker.release(key, session);
        }
    }

    /// Session `id` as the cluster should know it.
    pub(crate) fn presence(&self, id: SessionId) -> Option<SessionState> {
        self.lock().presence_of(id)
    }

    /// Hands `pending` to the sequencer and waits for its answer.
    async fn submit<T>(
        &self,
        pending: sequencer::Pending,
        answer: oneshot::Receiver<Result<T, HubError>>,
    ) -> Result<T, HubError> {
        self.sequencer
            .send(pending)
            .await
            .map_err(|_| HubError::SessionEnded)?;
        answer.await.map_err(|_| HubError::SessionEnded)?
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every mutation of `State` completes before anything that could
        // panic, so a poisoned lock still guards consistent state.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The stored form of a cached message event.
fn stored_of(event: &Event) -> Option<StoredMessage> {
    match &event.kind {
        EventKind::Message {
            room,
            id,
            ts,
            from,
            text,
            action,
        } => Some(StoredMessage {
            room: room.clone(),
            id: *id,
            ts: *ts,
            from: from.clone(),
            text: text.clone(),
            action: *action,
        }),
        _ => None,
    }
}

/// Sheds the largest queues whenever all of them together pass their bound
/// (see [`Hub::shed_queues`]); ends with the hub.
async fn shed_when_over(hub: std::sync::Weak<Hub>, queued: Arc<QueuedTotal>) {
    loop {
        queued.over_limit.notified().await;
        let Some(hub) = hub.upgrade() else {
            return;
        };
        hub.shed_queues();
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        // Lets `shed_when_over` see the hub is gone and end.
        self.queued.over_limit.notify_one();
    }
}
