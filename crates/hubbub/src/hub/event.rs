//! Events the hub delivers to sessions, and their once-per-format encoding.
//!
//! An [`Event`] is built once by the hub and shared (`Arc`) by every
//! recipient's outbox. Each transport encodes it into its own wire format the
//! first time one of its sessions writes it; the encoded bytes are cached in
//! the event, so a message fanned out to 1000 line clients is formatted once,
//! not 1000 times.

use std::any::Any;
use std::sync::{Arc, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;

/// The wire formats events can be cached in; one cache slot each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireFormat {
    /// The TCP line protocol (`transport::line`).
    Line = 0,
    /// The Socket.IO transport (`transport::socketio`).
    SocketIo = 1,
}

const FORMATS: usize = 2;

/// Why a session's connection is being closed by the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseReason {
    /// Its outbound queue passed the configured bound: it does not read fast enough.
    SlowConsumer { limit: usize },
    /// It kept sending faster than the flood limit after being warned.
    Flooding,
    /// It sent nothing for the configured idle timeout.
    IdleTimeout,
    /// The server is shutting down.
    Shutdown,
    /// The client asked to leave (`/quit`).
    Quit,
    /// It sent a packet that cannot be parsed (Socket.IO); as in the
    /// reference server, the connection is not trusted further.
    ProtocolError,
    /// The application token it logged in with expired, not refreshed.
    TokenExpired,
    /// A server operator banned or disconnected it (`reason` says who and why).
    Removed { reason: Arc<str> },
}

impl CloseReason {
    /// The reason as one human-readable sentence, sent to the client when possible.
    pub fn describe(&self) -> String {
        match self {
            CloseReason::SlowConsumer { limit } => {
                format!("too slow reading: more than {limit} bytes were waiting for you")
            }
            CloseReason::Flooding => "flooding: too many lines too fast".to_string(),
            CloseReason::IdleTimeout => "idle timeout".to_string(),
            CloseReason::Shutdown => "server is shutting down".to_string(),
            CloseReason::Quit => "bye".to_string(),
            CloseReason::ProtocolError => "sent a packet that cannot be parsed".to_string(),
            CloseReason::TokenExpired => "your token expired".to_string(),
            CloseReason::Removed { reason } => reason.to_string(),
        }
    }
}

/// What happened; transports decide how it looks on their wire.
#[derive(Debug, Clone)]
pub enum EventKind {
    /// First event of every session: the name it was given.
    Welcome { nick: Arc<str>, room: Arc<str> },
    /// A room message (`/me` actions have `action: true`).
    Message {
        room: Arc<str>,
        id: u64,
        ts: u64,
        from: Arc<str>,
        text: Arc<str>,
        action: bool,
    },
    /// Earlier messages of a room, oldest first: sent to a session when it
    /// joins (before any live message), or when it asks for scroll-back.
    /// `complete` is false when older messages it asked for exist but are
    /// not included (page further back with a history request).
    History {
        room: Arc<str>,
        messages: Vec<Arc<Event>>,
        complete: bool,
    },
    /// Someone entered the room (sent to the others, not to the joiner).
    Joined { room: Arc<str>, nick: Arc<str> },
    /// Someone left the room; `reason` is set for `/quit REASON` and server disconnects.
    Left {
        room: Arc<str>,
        nick: Arc<str>,
        reason: Option<Arc<str>>,
    },
    /// What changed in a big room's membership since its last summary
    /// (its joins, leaves and renames are not announced one by one; see
    /// `hub::presence`), and how many users it has now.
    Presence {
        room: Arc<str>,
        joined: u32,
        left: u32,
        renamed: u32,
        members: usize,
    },
    /// Someone in the room changed nickname (sent to the whole room, renamer included).
    Renamed {
        room: Arc<str>,
        old: Arc<str>,
        new: Arc<str>,
    },
    /// Someone in the room started or stopped typing (not sent to them, nor
    /// to sessions that did not ask for typing events).
    Typing {
        room: Arc<str>,
        nick: Arc<str>,
        typing: bool,
    },
    /// Someone was removed from the room by an operator: kicked, or
    /// `banned` (a ban covering them was set).
    Kicked {
        room: Arc<str>,
        nick: Arc<str>,
        by: Arc<str>,
        reason: Option<Arc<str>>,
        banned: bool,
    },
    /// The room's topic: set or cleared by `by` (`changed`), or as it is,
    /// for whoever joins.
    Topic {
        room: Arc<str>,
        topic: Option<Arc<str>>,
        by: Arc<str>,
        changed: bool,
    },
    /// An operator changed the room's modes or roles: `change` in IRC's
    /// notation (`+m`, `-i`, `+l 20`, `+o alice`, `+v bob`, `+b nick:eve*`).
    Mode {
        room: Arc<str>,
        by: Arc<str>,
        change: Arc<str>,
    },
    /// A private message, delivered to its recipient.
    Private {
        ts: u64,
        from: Arc<str>,
        to: Arc<str>,
        text: Arc<str>,
    },
    /// The sender's copy of a private message it sent: for the session
    /// that sent it (`own`, which has its answer already) and for the
    /// sender's other sessions (its other devices, which show it).
    PrivateSent {
        ts: u64,
        from: Arc<str>,
        to: Arc<str>,
        text: Arc<str>,
        own: bool,
    },
    /// A reply from the server to this session only (command output); may span lines.
    Notice { text: String },
    /// An error for this session only; `code` is stable, `message` is for people.
    Error { code: &'static str, message: String },
    /// The last event before the server closes this connection.
    Closing { reason: CloseReason },
    /// Bytes already in this session's wire format, queued by its own
    /// transport so they keep their place among the hub's events (a
    /// Socket.IO acknowledgement, an Engine.IO ping). The hub never
    /// sends these; other transports write them as they are.
    Wire { bytes: Bytes },
}

impl EventKind {
    /// The live form of a stored room message.
    pub fn from_stored(message: &crate::store::StoredMessage) -> EventKind {
        EventKind::Message {
            room: message.room.clone(),
            id: message.id,
            ts: message.ts,
            from: message.from.clone(),
            text: message.text.clone(),
            action: message.action,
        }
    }
}

/// An event plus its cached encodings, shared by all its recipients.
#[derive(Debug)]
pub struct Event {
    pub kind: EventKind,
    /// One slot per wire format; each transport decides what it caches
    /// (bytes for lines, pre-serialized JSON for Socket.IO).
    encoded: [OnceLock<Box<dyn Any + Send + Sync>>; FORMATS],
}

impl Event {
    pub fn new(kind: EventKind) -> Arc<Event> {
        Arc::new(Event {
            kind,
            encoded: Default::default(),
        })
    }

    /// This event in `format`, encoded by `encode` on first use and cached.
    pub fn encoded(&self, format: WireFormat, encode: fn(&EventKind) -> Bytes) -> &Bytes {
        self.encoded_as(format, encode)
    }

    /// Like [`Event::encoded`], for any encoded form. A format must always
    /// be cached as the same type (the first `encode` decides it).
    pub fn encoded_as<T: Any + Send + Sync>(
        &self,
        format: WireFormat,
        encode: fn(&EventKind) -> T,
    ) -> &T {
        self.encoded[format as usize]
            .get_or_init(|| Box::new(encode(&self.kind)))
            .downcast_ref::<T>()
            .expect("one encoded type per wire format")
    }

    /// An estimate of the event's encoded size, charged against outbox bounds.
    ///
    /// It is computed before any encoding happens, so it is an upper-ish guess
    /// (text plus names plus a fixed overhead for framing), not exact bytes.
    pub fn weight(&self) -> usize {
        const OVERHEAD: usize = 64;
        OVERHEAD
            + match &self.kind {
                EventKind::Welcome { nick, room } => nick.len() + room.len(),
                EventKind::Message {
                    room, from, text, ..
                } => room.len() + from.len() + text.len(),
                EventKind::History { room, messages, .. } => {
                    room.len() + messages.iter().map(|m| m.weight()).sum::<usize>()
                }
                EventKind::Joined { room, nick } => room.len() + nick.len(),
                EventKind::Presence { room, .. } => room.len() + 40,
                EventKind::Kicked {
                    room,
                    nick,
                    by,
                    reason,
                    ..
                } => room.len() + nick.len() + by.len() + reason.as_ref().map_or(0, |r| r.len()),
                EventKind::Topic {
                    room, topic, by, ..
                } => room.len() + by.len() + topic.as_ref().map_or(0, |t| t.len()),
                EventKind::Mode { room, by, change } => room.len() + by.len() + change.len(),
                EventKind::Left { room, nick, reason } => {
                    room.len() + nick.len() + reason.as_ref().map_or(0, |r| r.len())
                }
                EventKind::Renamed { room, old, new } => room.len() + old.len() + new.len(),
                EventKind::Typing { room, nick, .. } => room.len() + nick.len(),
                EventKind::Private { from, to, text, .. }
                | EventKind::PrivateSent { from, to, text, .. } => {
                    from.len() + to.len() + text.len()
                }
                EventKind::Notice { text } => text.len(),
                EventKind::Error { message, .. } => message.len(),
                EventKind::Closing { .. } => 64,
                EventKind::Wire { bytes } => bytes.len(),
            }
    }
}

/// Milliseconds since the Unix epoch, the timestamp unit of every event.
pub fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
