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

mod cache;
pub mod event;
pub mod names;
mod order;
pub mod outbox;
pub(crate) mod remote;
mod sequencer;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

pub use event::{CloseReason, Event, EventKind, WireFormat};
pub use outbox::{Batch, Outbox, Pushed};

use tokio::sync::{mpsc, oneshot};

use crate::cluster::{self, wire::SessionState, Claim, Link};
use crate::store::{HistoryStore, PageQuery, StoredMessage, StoredRoom};
use cache::{CacheBudget, RoomCache};
use outbox::QueuedTotal;
use remote::RemoteId;

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
        }
    }
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

/// A room and the nicknames in it, sorted case-insensitively.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomMembers {
    pub name: Arc<str>,
    pub members: Vec<Arc<str>>,
}

#[derive(Debug)]
struct Member {
    nick: Arc<str>,
    /// Folded keys of the rooms the session is in, in joining order; the
    /// last is its current room (where room-less requests go). A line
    /// client is always in exactly one; a Socket.IO client may be in several.
    rooms: Vec<String>,
    outbox: Arc<Outbox>,
    /// Whether the transport shows typing indicators.
    wants_typing: bool,
}

#[derive(Debug)]
struct Room {
    name: Arc<str>,
    members: HashMap<SessionId, Arc<Outbox>>,
    /// Members on other nodes of the cluster.
    remote: HashSet<RemoteId>,
    /// Id of the last message delivered here.
    last_id: u64,
    /// Highest id known to be committed (above `last_id` while a gap is open).
    known_id: u64,
    /// Messages that arrived ahead of a gap (see [`order`]).
    held: BTreeMap<u64, Arc<Event>>,
    /// A task is reading the gap from the store.
    repairing: bool,
    /// The last `history_cache` committed messages, oldest first, within
    /// the shared byte budget ([`cache`]).
    recent: RoomCache,
    /// Has had a message (and so, with a store, a row): kept when empty.
    persisted: bool,
}

#[derive(Debug, Default)]
struct State {
    sessions: HashMap<SessionId, Member>,
    /// Folded nickname → session; makes nicknames unique case-insensitively.
    nicks: HashMap<String, SessionId>,
    /// Folded room name → room. A room exists while someone is in it, or
    /// for good once it has had a message; the default room always.
    rooms: HashMap<String, Room>,
    /// Sessions of the other nodes of a cluster.
    remote: remote::Remote,
    /// The byte budget of every room's `recent` cache.
    cache: CacheBudget,
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
    /// The cluster this node is part of, if any.
    cluster: Option<Link>,
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
    /// messages read from it; a member of `cluster` if given. Spawns the
    /// sequencer (needs a tokio runtime).
    pub fn start(
        mut config: HubConfig,
        store: Option<Arc<dyn HistoryStore>>,
        stored: Vec<(StoredRoom, Vec<StoredMessage>)>,
        cluster: Option<Link>,
    ) -> Arc<Hub> {
        config.history_cache = config.history_cache.max(config.history_on_join);
        let mut state = State {
            cache: CacheBudget::new(config.history_cache_bytes),
            ..State::default()
        };
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
            state.rooms.insert(room.key, entry);
        }
        state.trim_caches();
        let default_key = names::fold(&config.default_room);
        let _ = state.room_entry(&default_key, &config.default_room, usize::MAX);
        let (sequencer_tx, sequencer_rx) = mpsc::channel(sequencer::QUEUE);
        let config_outbox_total = config.outbox_total_limit;
        let hub = Arc::new(Hub {
            config,
            state: Mutex::new(state),
            next_session: AtomicU64::new(1),
            stats: HubStats::default(),
            relief: Arc::new(tokio::sync::Notify::new()),
            shutting_down: std::sync::atomic::AtomicBool::new(false),
            sequencer: sequencer_tx,
            directory: Mutex::new(None),
            queued: QueuedTotal::new(config_outbox_total),
            store: store.clone(),
            cluster,
        });
        tokio::spawn(sequencer::run(Arc::downgrade(&hub), sequencer_rx, store));
        tokio::spawn(shed_when_over(Arc::downgrade(&hub), hub.queued.clone()));
        hub
    }

    /// A page of `room`'s history (see [`PageQuery`]): from the store, or
    /// from memory when there is none.
    ///
    /// Returns the room's display name, the page, and whether the page
    /// reaches back to the room's first message (or `query.after`).
    pub async fn history(
        &self,
        room: &str,
        query: PageQuery,
    ) -> Result<(Arc<str>, Vec<StoredMessage>, bool), HubError> {
        // One more than asked tells whether anything older exists.
        let probe = PageQuery {
            limit: query.limit.saturating_add(1),
            ..query
        };
        let key = names::fold(names::validate_room(room)?);
        let (name, cached) = {
            let state = self.lock();
            let room = state
                .rooms
                .get(&key)
                .ok_or_else(|| HubError::NoSuchRoom(room.to_string()))?;
            let cached: Vec<StoredMessage> = room
                .recent
                .iter()
                .filter_map(|e| stored_of(e))
                .filter(|m| {
                    query.after.is_none_or(|a| m.id > a) && query.before.is_none_or(|b| m.id < b)
                })
                .collect();
            (room.name.clone(), cached)
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
        self.shutting_down.store(true, Ordering::Relaxed);
    }

    /// Opens a session named `nick` in the default room; `wants_typing` says
    /// whether the transport shows [`EventKind::Typing`] events.
    ///
    /// Its first event is [`EventKind::Welcome`]; the room's other members get
    /// [`EventKind::Joined`]. `nick` is taken as given (a transport's default
    /// name such as `IP:PORT`); it must still be unique, cluster-wide.
    pub async fn open(
        self: &Arc<Self>,
        nick: &str,
        wants_typing: bool,
    ) -> Result<Session, HubError> {
        self.open_into(&self.new_outbox(), None, nick, wants_typing)
            .await
    }

    /// [`Hub::open`] under the first of `names` not in use (a transport's
    /// default names); if all are taken, the last `nick_in_use` error.
    pub async fn open_first_free(
        self: &Arc<Self>,
        names: impl IntoIterator<Item = String>,
        wants_typing: bool,
    ) -> Result<Session, HubError> {
        self.open_first_free_into(self.new_outbox(), None, names, wants_typing)
            .await
    }

    /// An outbox with this hub's bounds, for a transport that must queue
    /// its own packets before the session opens (see
    /// [`Hub::open_first_free_into`]).
    pub fn new_outbox(&self) -> Arc<Outbox> {
        Arc::new(Outbox::shared(
            self.config.outbox_limit,
            Some(self.relief.clone()),
            Some(self.queued.clone()),
        ))
    }

    /// [`Hub::open_first_free`] writing to `outbox` (from
    /// [`Hub::new_outbox`]); `first`, if any, is queued once the session is
    /// admitted, ahead of its [`EventKind::Welcome`] (a protocol's
    /// "connected" answer).
    pub async fn open_first_free_into(
        self: &Arc<Self>,
        outbox: Arc<Outbox>,
        first: Option<Arc<Event>>,
        names: impl IntoIterator<Item = String>,
        wants_typing: bool,
    ) -> Result<Session, HubError> {
        let mut taken = None;
        for name in names {
            match self
                .open_into(&outbox, first.clone(), &name, wants_typing)
                .await
            {
                Err(e @ HubError::NickInUse(_)) => taken = Some(e),
                other => return other,
            }
        }
        Err(taken.unwrap_or(HubError::SessionEnded))
    }

    async fn open_into(
        self: &Arc<Self>,
        outbox: &Arc<Outbox>,
        first: Option<Arc<Event>>,
        nick: &str,
        wants_typing: bool,
    ) -> Result<Session, HubError> {
        let id = self.next_session.fetch_add(1, Ordering::Relaxed);
        let folded = names::nick_key(nick);
        self.lock().check_nick_free(&folded, nick, id)?;
        if let Some(link) = &self.cluster {
            if link.claim(folded.clone(), id).await == Claim::Taken {
                return Err(HubError::NickInUse(nick.to_string()));
            }
        }
        let opened = self.open_claimed(id, nick, wants_typing, outbox.clone(), first);
        if opened.is_err() {
            self.release_nick(folded, id);
        }
        opened
    }

    /// [`Hub::open`] once the nickname is claimed in the cluster (if any).
    fn open_claimed(
        self: &Arc<Self>,
        id: SessionId,
        nick: &str,
        wants_typing: bool,
        outbox: Arc<Outbox>,
        first: Option<Arc<Event>>,
    ) -> Result<Session, HubError> {
        let nick: Arc<str> = nick.into();
        let room_key = names::fold(&self.config.default_room);

        let mut state = self.lock();
        let folded = names::nick_key(&nick);
        state.check_nick_free(&folded, &nick, id)?;
        state.nicks.insert(folded, id);
        state.sessions.insert(
            id,
            Member {
                nick: nick.clone(),
                rooms: vec![room_key.clone()],
                outbox: outbox.clone(),
                wants_typing,
            },
        );
        let room_name = state.rooms[&room_key].name.clone();
        if let Some(first) = first {
            outbox.push(first);
        }
        outbox.push(Event::new(EventKind::Welcome {
            nick,
            room: room_name,
        }));
        // The default room always exists, so entering it cannot fail.
        let _ = self.enter_room(&mut state, id, &room_key, &self.config.default_room, None);
        drop(state);
        self.presence_changed(id);

        self.stats.sessions_opened.fetch_add(1, Ordering::Relaxed);
        Ok(Session {
            hub: self.clone(),
            id,
            outbox,
            leave_reason: Mutex::new(None),
        })
    }

    /// The cluster link, if this node is part of a cluster.
    pub fn cluster(&self) -> Option<&Link> {
        self.cluster.as_ref()
    }

    /// Tells the cluster (if any) that session `id` changed nick or rooms.
    fn presence_changed(&self, id: SessionId) {
        if let Some(link) = &self.cluster {
            if let Some(state) = self.presence(id) {
                link.send(cluster::Op::Session(state));
            }
        }
    }

    /// Gives back a cluster claim on folded nickname `key`.
    fn release_nick(&self, key: String, session: SessionId) {
        if let Some(link) = &self.cluster {
            link.send(cluster::Op::Release { key, session });
        }
    }

    /// Session `id` as the cluster should know it.
    pub(crate) fn presence(&self, id: SessionId) -> Option<SessionState> {
        self.lock().presence_of(id)
    }

    /// Every room with its member count, sorted by name.
    pub fn rooms(&self) -> RoomList {
        let all = self.directory();
        let total = all.len();
        let mut rooms: Vec<RoomSummary> = all.iter().cloned().collect();
        if total > MAX_LISTED_ROOMS {
            rooms.select_nth_unstable_by(MAX_LISTED_ROOMS - 1, |a, b| b.members.cmp(&a.members));
            rooms.truncate(MAX_LISTED_ROOMS);
        }
        rooms.sort_by_cached_key(|r| names::fold(&r.name));
        RoomList { total, rooms }
    }

    /// Every room with its member count, unsorted. The copy is taken under
    /// the hub lock (no sorting, no allocation per room); with many rooms
    /// it is reused for up to [`DIRECTORY_MAX_AGE`], so listings asked for
    /// often cannot hold the lock for work proportional to the server's
    /// size, however many clients ask.
    fn directory(&self) -> Arc<Vec<RoomSummary>> {
        let mut cached = self.directory.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((taken, list)) = &*cached {
            if list.len() >= DIRECTORY_LIVE_BELOW && taken.elapsed() < DIRECTORY_MAX_AGE {
                return list.clone();
            }
        }
        let list: Vec<RoomSummary> = self
            .lock()
            .rooms
            .values()
            .map(|r| RoomSummary {
                name: r.name.clone(),
                members: r.members.len() + r.remote.len(),
            })
            .collect();
        let list = Arc::new(list);
        *cached = Some((std::time::Instant::now(), list.clone()));
        list
    }

    /// The members of `room` (case-insensitive name, optional `#`).
    pub fn members(&self, room: &str) -> Result<RoomMembers, HubError> {
        let key = names::fold(names::validate_room(room)?);
        let state = self.lock();
        let room = state
            .rooms
            .get(&key)
            .ok_or_else(|| HubError::NoSuchRoom(room.to_string()))?;
        Ok(state.room_members(room))
    }

    /// Pushes `event` to every member of `room`; returns true when an outbox
    /// is backlogged (see [`Outbox::is_backlogged`]): the sender should be paced.
    fn fan_out(&self, room: &Room, event: &Arc<Event>) -> bool {
        let mut backlogged = false;
        for outbox in room.members.values() {
            match outbox.push(event.clone()) {
                Pushed::Queued => {}
                Pushed::Backlogged => backlogged = true,
                Pushed::Overflowed => self.slow_consumer(outbox),
                Pushed::Closed => {}
            }
        }
        self.stats
            .deliveries
            .fetch_add(room.members.len() as u64, Ordering::Relaxed);
        backlogged
    }

    /// Holds a sender back while an outbox of its room is backlogged: the
    /// writers, i.e. the server, are behind, so the sender waits, and with
    /// it its socket reads, instead of anyone's messages being dropped.
    /// Clients that do not read never cause this (they are left to the
    /// outbox bound); the wait is capped at [`MAX_PACING`] per message.
    async fn pace(&self, room_key: &str) {
        let deadline = tokio::time::Instant::now() + MAX_PACING;
        loop {
            let relief = self.relief.notified();
            let backlogged = {
                let state = self.lock();
                let Some(room) = state.rooms.get(room_key) else {
                    return;
                };
                room.members.values().any(|o| o.is_backlogged())
            };
            if !backlogged || tokio::time::Instant::now() >= deadline {
                return;
            }
            let _ = tokio::time::timeout(PACING_RECHECK, relief).await;
        }
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

    /// Renames session `id` here, the cluster claim (if any) being made:
    /// every room of the session sees `Renamed`.
    fn rename_locally(
        &self,
        id: SessionId,
        new: &str,
        new_key: &str,
        first: Option<Arc<Event>>,
    ) -> Result<(), HubError> {
        let mut state = self.lock();
        let old = state.member(id)?.nick.clone();
        state.check_nick_free(new_key, new, id)?;
        let new: Arc<str> = new.into();
        state.nicks.remove(&names::nick_key(&old));
        state.nicks.insert(new_key.to_string(), id);
        let Some(member) = state.sessions.get_mut(&id) else {
            return Err(HubError::SessionEnded);
        };
        member.nick = new.clone();
        if let Some(first) = first {
            self.push_wire(&member.outbox, first);
        }
        let state = &*state;
        for key in &state.sessions[&id].rooms {
            if let Some(room) = state.rooms.get(key) {
                let renamed = Event::new(EventKind::Renamed {
                    room: room.name.clone(),
                    old: old.clone(),
                    new: new.clone(),
                });
                self.fan_out(room, &renamed);
            }
        }
        Ok(())
    }

    /// Session `id` loses its nickname to a session of another node that
    /// took it while the two could not see each other (Redis was
    /// unreachable): it becomes `new` (already claimed), and is told why.
    pub(crate) fn yield_nick(&self, id: SessionId, new: &str) -> Result<(), HubError> {
        let old = self.lock().member(id)?.nick.clone();
        self.rename_locally(id, new, &names::nick_key(new), None)?;
        self.presence_changed(id);
        if let Some(member) = self.lock().sessions.get(&id) {
            self.deliver(
                &member.outbox,
                Event::new(EventKind::Notice {
                    text: format!(
                        "{old} was also taken on another server while the servers \
                         could not reach each other; you are now {new}"
                    ),
                }),
            );
        }
        Ok(())
    }

    fn slow_consumer(&self, outbox: &Outbox) {
        self.stats.slow_consumers.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(
            limit = outbox.limit(),
            "disconnecting a slow consumer: its outbound queue is full"
        );
    }

    /// Bytes queued for every session together.
    pub fn queued_bytes(&self) -> usize {
        self.queued.bytes()
    }

    /// While all outboxes together hold more than `outbox_total_limit`,
    /// closes queues as slow consumers: first those whose writer is stalled
    /// (its client stopped reading), largest first, then the other largest
    /// ones. A fast reader with a momentary burst is the last to go; an
    /// empty queue is never closed; nobody else waits for them.
    fn shed_queues(&self) {
        if self.queued.bytes() <= self.queued.limit() {
            return;
        }
        let mut queues: Vec<(bool, usize, Arc<Outbox>)> = self
            .lock()
            .sessions
            .values()
            .map(|m| {
                (
                    m.outbox.is_stalled(),
                    m.outbox.queued_bytes(),
                    m.outbox.clone(),
                )
            })
            .collect();
        // Stalled first, then largest.
        queues.sort_unstable_by_key(|q| (!q.0, std::cmp::Reverse(q.1)));
        for (_, _, outbox) in queues {
            if self.queued.bytes() <= self.queued.limit() {
                break;
            }
            if outbox.shed() > 0 {
                self.stats.slow_consumers.fetch_add(1, Ordering::Relaxed);
                crate::limits::warn_refusal(
                    "outbound_total",
                    &format!(
                        "a session with the largest queue (all queues over {} bytes)",
                        self.queued.limit()
                    ),
                );
            }
        }
    }

    /// Queues a transport's own packet for one session (an
    /// [`EventKind::Wire`]: an acknowledgement, a protocol reply), in order
    /// with its events, under the same slow-consumer rule.
    pub fn push_wire(&self, outbox: &Outbox, event: Arc<Event>) {
        if outbox.push(event) == Pushed::Overflowed {
            self.slow_consumer(outbox);
        }
    }

    /// Pushes to one outbox, applying the slow-consumer rule.
    fn deliver(&self, outbox: &Outbox, event: Arc<Event>) {
        if outbox.push(event) == Pushed::Overflowed {
            self.slow_consumer(outbox);
        }
        self.stats.deliveries.fetch_add(1, Ordering::Relaxed);
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every mutation of `State` completes before anything that could
        // panic, so a poisoned lock still guards consistent state.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn leave(&self, id: SessionId, reason: Option<Arc<str>>) {
        let mut state = self.lock();
        let Some(member) = state.sessions.remove(&id) else {
            return;
        };
        let folded = names::nick_key(&member.nick);
        state.nicks.remove(&folded);
        let announce = !self.shutting_down.load(Ordering::Relaxed);
        for key in &member.rooms {
            self.exit_room(&mut state, id, key, &member.nick, reason.clone(), announce);
        }
        drop(state);
        // When the server stops, the cluster hears it once, as the node
        // leaving (`cluster::Link::stop`), which announces every session.
        if announce {
            if let Some(link) = &self.cluster {
                link.send(cluster::Op::Closed {
                    session: id,
                    reason,
                });
            }
            self.release_nick(folded, id);
        }
        self.stats.sessions_closed.fetch_add(1, Ordering::Relaxed);
    }

    /// Takes session `id` out of room `key`, tells the others, and drops the
    /// room if that emptied it. (The caller updates the member's room list.)
    fn exit_room(
        &self,
        state: &mut State,
        id: SessionId,
        key: &str,
        nick: &Arc<str>,
        reason: Option<Arc<str>>,
        announce: bool,
    ) {
        let Some(room) = state.rooms.get_mut(key) else {
            return;
        };
        room.members.remove(&id);
        if announce {
            self.announce_left(room, nick, reason);
        }
        state.drop_room_if_empty(key, &self.config.default_room);
    }

    /// Tells `room`'s members here that `nick` left.
    fn announce_left(&self, room: &Room, nick: &Arc<str>, reason: Option<Arc<str>>) {
        let left = Event::new(EventKind::Left {
            room: room.name.clone(),
            nick: nick.clone(),
            reason,
        });
        self.fan_out(room, &left);
    }

    /// Puts session `id` into room `key` (display name `name`, created if
    /// new), telling the others first, then gives the joiner the room's
    /// recent history: the last `history_on_join` messages, or with
    /// `since`, every message after that id that memory still holds. Both
    /// happen under the lock, so history and live messages neither overlap
    /// nor leave a gap. (The caller updates the member's room list.)
    fn enter_room(
        &self,
        state: &mut State,
        id: SessionId,
        key: &str,
        name: &str,
        since: Option<u64>,
    ) -> Result<(), HubError> {
        let (nick, outbox) = {
            let member = state.member(id)?;
            (member.nick.clone(), member.outbox.clone())
        };
        let room = state.room_entry(key, name, self.config.max_rooms)?;
        let joined = Event::new(EventKind::Joined {
            room: room.name.clone(),
            nick,
        });
        self.fan_out(room, &joined);
        room.members.insert(id, outbox.clone());
        self.send_history(room, &outbox, since);
        Ok(())
    }

    /// Gives a member of `room` its recent history: the last
    /// `history_on_join` messages, or with `since`, every message after that
    /// id that memory still holds (`complete: false` when memory no longer
    /// reaches back to it: the client pages back from the store). Called
    /// under the lock, so history and live messages neither overlap nor
    /// leave a gap.
    fn send_history(&self, room: &Room, outbox: &Outbox, since: Option<u64>) {
        let (messages, complete) = match since {
            Some(since) => {
                let messages: Vec<_> = room
                    .recent
                    .iter()
                    .filter(|e| stored_of(e).is_some_and(|m| m.id > since))
                    .cloned()
                    .collect();
                let oldest_held =
                    room.last_id + 1 - (room.recent.len() as u64).min(room.last_id + 1);
                (
                    messages,
                    since >= oldest_held.saturating_sub(1) || room.last_id <= since,
                )
            }
            None => {
                let skip = room
                    .recent
                    .len()
                    .saturating_sub(self.config.history_on_join);
                let messages: Vec<_> = room.recent.iter().skip(skip).cloned().collect();
                let complete = room.last_id as usize <= messages.len();
                (messages, complete)
            }
        };
        if !messages.is_empty() || (since.is_some() && !complete) {
            self.deliver(
                outbox,
                Event::new(EventKind::History {
                    room: room.name.clone(),
                    messages,
                    complete,
                }),
            );
        }
    }
}

impl Room {
    fn new(name: Arc<str>, last_id: u64) -> Room {
        Room {
            name,
            members: HashMap::new(),
            remote: HashSet::new(),
            last_id,
            known_id: last_id,
            held: BTreeMap::new(),
            repairing: false,
            recent: RoomCache::default(),
            persisted: false,
        }
    }
}

impl State {
    /// Drops the least recently written rooms' caches while the caches are
    /// over their byte budget.
    fn trim_caches(&mut self) {
        while let Some(key) = self.cache.over() {
            if let Some(room) = self.rooms.get_mut(&key) {
                self.cache.evicted(&mut room.recent);
            }
        }
    }

    /// The room under `key`, created with display name `name` if missing
    /// and fewer than `max_rooms` exist.
    fn room_entry(
        &mut self,
        key: &str,
        name: &str,
        max_rooms: usize,
    ) -> Result<&mut Room, HubError> {
        let count = self.rooms.len();
        match self.rooms.entry(key.to_string()) {
            std::collections::hash_map::Entry::Occupied(room) => Ok(room.into_mut()),
            std::collections::hash_map::Entry::Vacant(_) if count >= max_rooms => {
                Err(HubError::TooManyRooms(max_rooms))
            }
            std::collections::hash_map::Entry::Vacant(slot) => {
                Ok(slot.insert(Room::new(name.into(), 0)))
            }
        }
    }

    /// Drops a room nobody is in and that never had a message (rooms with
    /// history stay, so do their ids).
    fn drop_room_if_empty(&mut self, key: &str, default_room: &str) {
        if key != names::fold(default_room)
            && self
                .rooms
                .get(key)
                .is_some_and(|r| r.members.is_empty() && r.remote.is_empty() && !r.persisted)
        {
            self.rooms.remove(key);
        }
    }

    fn room_members(&self, room: &Room) -> RoomMembers {
        let mut members: Vec<Arc<str>> = room
            .members
            .keys()
            .filter_map(|id| self.sessions.get(id).map(|m| m.nick.clone()))
            .chain(
                room.remote
                    .iter()
                    .filter_map(|id| self.remote.nick(id).cloned()),
            )
            .collect();
        members.sort_by_key(|n| names::fold(n));
        RoomMembers {
            name: room.name.clone(),
            members,
        }
    }

    /// Refuses folded nickname `key` if anyone but session `id` holds it,
    /// here or (as far as this node knows) on another node.
    fn check_nick_free(&self, key: &str, nick: &str, id: SessionId) -> Result<(), HubError> {
        let local_owner = self.nicks.get(key).is_some_and(|&owner| owner != id);
        if local_owner || self.remote.has_nick(key) {
            return Err(HubError::NickInUse(nick.to_string()));
        }
        Ok(())
    }

    /// Session `id` as the cluster should know it.
    fn presence_of(&self, id: SessionId) -> Option<SessionState> {
        let member = self.sessions.get(&id)?;
        Some(SessionState {
            id,
            nick: member.nick.clone(),
            rooms: member
                .rooms
                .iter()
                .filter_map(|k| Some((k.clone(), self.rooms.get(k)?.name.clone())))
                .collect(),
        })
    }

    fn member(&self, id: SessionId) -> Result<&Member, HubError> {
        self.sessions.get(&id).ok_or(HubError::SessionEnded)
    }

    fn member_mut(&mut self, id: SessionId) -> Result<&mut Member, HubError> {
        self.sessions.get_mut(&id).ok_or(HubError::SessionEnded)
    }

    /// Key of the session's current room.
    fn current_room(&self, id: SessionId) -> Result<String, HubError> {
        self.member(id)?
            .rooms
            .last()
            .cloned()
            .ok_or_else(|| HubError::NotInRoom("any room".into()))
    }

    /// Key of `room`, which the session must be in.
    fn joined_room(&self, id: SessionId, room: &str) -> Result<String, HubError> {
        let key = names::fold(names::validate_room(room)?);
        if self.member(id)?.rooms.contains(&key) {
            Ok(key)
        } else {
            Err(HubError::NotInRoom(room.to_string()))
        }
    }
}

/// A message handed to the sequencer: await [`Submitted::committed`] for
/// the outcome.
#[derive(Debug)]
pub struct Submitted {
    answer: oneshot::Receiver<Result<Posted, HubError>>,
}

impl Submitted {
    /// Waits until the message is committed and fanned out (or failed).
    pub async fn committed(self) -> Result<Posted, HubError> {
        self.answer.await.map_err(|_| HubError::SessionEnded)?
    }
}

/// One client's presence in the hub. Dropping it leaves: the room is told
/// and the nickname is freed, however the connection ended.
#[derive(Debug)]
pub struct Session {
    hub: Arc<Hub>,
    id: SessionId,
    outbox: Arc<Outbox>,
    /// Shown to the room in the leave announcement (`/quit REASON`).
    leave_reason: Mutex<Option<Arc<str>>>,
}

impl Session {
    pub fn id(&self) -> SessionId {
        self.id
    }

    pub fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    /// Where the hub queues this session's events.
    pub fn outbox(&self) -> &Arc<Outbox> {
        &self.outbox
    }

    /// The session's current nickname.
    pub fn nick(&self) -> Result<Arc<str>, HubError> {
        Ok(self.hub.lock().member(self.id)?.nick.clone())
    }

    /// The session's current room (the one it joined last), with its members.
    pub fn room(&self) -> Result<RoomMembers, HubError> {
        let state = self.hub.lock();
        let key = state.current_room(self.id)?;
        Ok(state.room_members(&state.rooms[&key]))
    }

    /// Sends `text` to everyone in `room` (default: the current room), the
    /// sender included. `action` marks a `/me` action. The session must be
    /// in the room.
    ///
    /// Returns once the message is committed to history and queued for
    /// every member (see `hub::sequencer`, which also paces senders while
    /// fan-out is behind: see [`Hub::pace`]).
    pub async fn post(
        &self,
        room: Option<&str>,
        text: &str,
        action: bool,
    ) -> Result<Posted, HubError> {
        self.submit(room, text, action).await?.committed().await
    }

    /// The first half of [`Session::post`]: checks the message and hands it
    /// to the sequencer (waiting only if the sequencer's queue is full), so
    /// a transport can keep reading and have several messages in flight —
    /// which is what lets group commit put many in one transaction. The
    /// messages of one session are committed and fanned out in the order
    /// they were submitted.
    pub async fn submit(
        &self,
        room: Option<&str>,
        text: &str,
        action: bool,
    ) -> Result<Submitted, HubError> {
        if action && text.trim().is_empty() {
            return Err(HubError::EmptyMessage);
        }
        let (key, from) = {
            let state = self.hub.lock();
            let key = match room {
                None => state.current_room(self.id)?,
                Some(room) => state.joined_room(self.id, room)?,
            };
            (key, state.member(self.id)?.nick.clone())
        };
        let (done, answer) = oneshot::channel();
        let pending = sequencer::Pending::Message(sequencer::PendingMessage {
            room_key: key,
            from,
            text: text.into(),
            action,
            done,
        });
        self.hub
            .sequencer
            .send(pending)
            .await
            .map_err(|_| HubError::SessionEnded)?;
        Ok(Submitted { answer })
    }

    /// Changes nickname; every room of the session sees `Renamed`. Changing
    /// only the case of one's own nickname is allowed. In a cluster the new
    /// nickname is claimed cluster-wide first.
    pub async fn rename(&self, new: &str) -> Result<(), HubError> {
        self.rename_with(new, None).await
    }

    /// [`Session::rename`]; `first`, if any, is queued for this session once
    /// the name is its own, ahead of the room's [`EventKind::Renamed`] (a
    /// protocol's direct answer, such as the seed's `nickname ready`).
    pub async fn rename_with(&self, new: &str, first: Option<Arc<Event>>) -> Result<(), HubError> {
        names::validate_nick(new)?;
        let new_key = names::nick_key(new);
        let old_key = {
            let state = self.hub.lock();
            state.check_nick_free(&new_key, new, self.id)?;
            names::nick_key(&state.member(self.id)?.nick)
        };
        let claimed = new_key != old_key && self.hub.cluster.is_some();
        if claimed {
            if let Some(link) = &self.hub.cluster {
                if link.claim(new_key.clone(), self.id).await == Claim::Taken {
                    return Err(HubError::NickInUse(new.to_string()));
                }
            }
        }
        match self.hub.rename_locally(self.id, new, &new_key, first) {
            Ok(()) => {
                if claimed {
                    self.hub.release_nick(old_key, self.id);
                }
                self.hub.presence_changed(self.id);
                Ok(())
            }
            Err(e) => {
                if claimed {
                    self.hub.release_nick(new_key, self.id);
                }
                Err(e)
            }
        }
    }

    /// Moves the session to `room` alone (created on demand), leaving every
    /// room it was in: the line protocol's `/join`. The old room sees
    /// `Left`, the new one `Joined`.
    pub fn switch_to(&self, room: &str) -> Result<RoomMembers, HubError> {
        let name = names::validate_room(room)?;
        let key = names::fold(name);
        let mut state = self.hub.lock();
        let member = state.member(self.id)?;
        if member.rooms == [key.clone()] {
            return Err(HubError::AlreadyInRoom(state.rooms[&key].name.to_string()));
        }
        let nick = member.nick.clone();
        // Create the room first: if that is refused, nothing has changed.
        state.room_entry(&key, name, self.hub.config.max_rooms)?;
        let old_rooms = std::mem::take(&mut state.member_mut(self.id)?.rooms);
        for old in old_rooms.iter().filter(|&old| *old != key) {
            self.hub
                .exit_room(&mut state, self.id, old, &nick, None, true);
        }
        if !old_rooms.contains(&key) {
            self.hub.enter_room(&mut state, self.id, &key, name, None)?;
        }
        state.member_mut(self.id)?.rooms = vec![key.clone()];
        let members = state.room_members(&state.rooms[&key]);
        drop(state);
        self.hub.presence_changed(self.id);
        Ok(members)
    }

    /// Adds `room` (created on demand) to the session's rooms and makes it
    /// current; the room sees `Joined` and the session gets its history
    /// (after id `since`, when resuming). Joining a room one is already in
    /// only makes it current. Returns the members and the room's last id.
    pub fn enter(&self, room: &str, since: Option<u64>) -> Result<(RoomMembers, u64), HubError> {
        let name = names::validate_room(room)?;
        let key = names::fold(name);
        let mut state = self.hub.lock();
        let member = state.member_mut(self.id)?;
        if let Some(at) = member.rooms.iter().position(|r| *r == key) {
            // Already here: becomes current; with `since` (a client
            // resuming), it still gets what it missed.
            let key = member.rooms.remove(at);
            member.rooms.push(key);
            if since.is_some() {
                let outbox = member.outbox.clone();
                let key = member.rooms.last().expect("just pushed").clone();
                self.hub.send_history(&state.rooms[&key], &outbox, since);
            }
        } else {
            if member.rooms.len() >= MAX_ROOMS_PER_SESSION {
                return Err(HubError::TooManyJoined(MAX_ROOMS_PER_SESSION));
            }
            self.hub
                .enter_room(&mut state, self.id, &key, name, since)?;
            state.member_mut(self.id)?.rooms.push(key.clone());
        }
        let room = &state.rooms[&key];
        let entered = (state.room_members(room), room.last_id);
        drop(state);
        self.hub.presence_changed(self.id);
        Ok(entered)
    }

    /// Leaves `room`; the others there see `Left`. If it was the current
    /// room, the previously joined one becomes current.
    pub fn exit(&self, room: &str) -> Result<Arc<str>, HubError> {
        let mut state = self.hub.lock();
        let key = state.joined_room(self.id, room)?;
        let name = state.rooms[&key].name.clone();
        let member = state.member_mut(self.id)?;
        member.rooms.retain(|r| *r != key);
        let nick = member.nick.clone();
        self.hub
            .exit_room(&mut state, self.id, &key, &nick, None, true);
        drop(state);
        self.hub.presence_changed(self.id);
        Ok(name)
    }

    /// Sends `text` privately to the session named `to`, wherever it is;
    /// the sender gets its own copy as `PrivateSent`. Returns the
    /// recipient's nickname as spelled by them, and the timestamp.
    pub async fn private(&self, to: &str, text: &str) -> Result<(Arc<str>, u64), HubError> {
        if text.trim().is_empty() {
            return Err(HubError::EmptyMessage);
        }
        let (done, answer) = oneshot::channel();
        let pending = sequencer::Pending::Private(sequencer::PendingPrivate {
            from: self.id,
            to: to.to_string(),
            text: text.into(),
            done,
        });
        self.hub.submit(pending, answer).await
    }

    /// Tells the others in `room` (default: the current room) who want
    /// typing events that this session started or stopped typing.
    pub fn typing(&self, room: Option<&str>, typing: bool) -> Result<Arc<str>, HubError> {
        let state = self.hub.lock();
        let key = match room {
            None => state.current_room(self.id)?,
            Some(room) => state.joined_room(self.id, room)?,
        };
        let nick = state.member(self.id)?.nick.clone();
        let room = &state.rooms[&key];
        let event = Event::new(EventKind::Typing {
            room: room.name.clone(),
            nick,
            typing,
        });
        for (&id, outbox) in &room.members {
            if id != self.id && state.sessions.get(&id).is_some_and(|m| m.wants_typing) {
                self.hub.deliver(outbox, event.clone());
            }
        }
        if let (Some(link), false) = (&self.hub.cluster, room.remote.is_empty()) {
            if let EventKind::Typing { room, nick, typing } = &event.kind {
                link.send(cluster::Op::Publish(cluster::wire::Event::Typing {
                    key,
                    room: room.clone(),
                    nick: nick.clone(),
                    typing: *typing,
                }));
            }
        }
        Ok(room.name.clone())
    }

    /// Leaves the hub now rather than when dropped (idempotent).
    pub fn end(&self) {
        let reason = self
            .leave_reason
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        self.hub.leave(self.id, reason);
        self.outbox.close_silently(CloseReason::Quit);
    }

    /// Queues a page of history for this session only.
    pub fn deliver_history(&self, room: Arc<str>, messages: Vec<StoredMessage>, complete: bool) {
        let messages = messages
            .iter()
            .map(|m| Event::new(EventKind::from_stored(m)))
            .collect();
        self.hub.deliver(
            &self.outbox,
            Event::new(EventKind::History {
                room,
                messages,
                complete,
            }),
        );
    }

    /// Queues a reply for this session only.
    pub fn notice(&self, text: impl Into<String>) {
        self.hub.deliver(
            &self.outbox,
            Event::new(EventKind::Notice { text: text.into() }),
        );
    }

    /// Queues an error for this session only.
    pub fn error(&self, code: &'static str, message: impl Into<String>) {
        self.hub.deliver(
            &self.outbox,
            Event::new(EventKind::Error {
                code,
                message: message.into(),
            }),
        );
    }

    /// Sets what the room is told when this session leaves.
    pub fn set_leave_reason(&self, reason: Option<&str>) {
        *self.leave_reason.lock().unwrap_or_else(|e| e.into_inner()) = reason.map(Into::into);
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.end();
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
