//! What the hub needs from a broker that joins several nodes into one chat
//! (`crate::cluster` implements it over Redis). The hub owns this
//! interface, so the hub depends on no broker and the broker on the hub.
//!
//! Order: everything the hub hands a broker — presence changes and
//! committed messages — must reach the other nodes in the order it was
//! handed over. The hub hands a session's presence change over only after
//! that session's earlier messages were handed over (docs/ARCHITECTURE.md,
//! "Order guarantees"), so other nodes see a join, a message and a leave in
//! the order the sender performed them.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::SessionId;

/// The answer to a nickname claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    Granted,
    /// Held by a session of a live node.
    Taken,
    /// The broker did not answer: the node decides from what it knows.
    Unknown,
}

/// A session as the other nodes see it (and as a broker stores it, so a
/// node starting late reads the same shape).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionState {
    pub id: u64,
    pub nick: Arc<str>,
    /// Logged in to its nickname's account: then the account's sessions
    /// on other nodes may hold the same nickname (one user, several
    /// devices), and it makes no cluster claim.
    #[serde(default)]
    pub logged_in: bool,
    /// The account's stable id, when logged in: what bans and rights of
    /// the account name on every node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// A server operator (spared server bans on every node).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub server_operator: bool,
    /// The client's address: every node enforces IP bans on every member.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<std::net::IpAddr>,
    /// `(folded key, display name)` of each room the session is in.
    pub rooms: Vec<(String, Arc<str>)>,
}

/// What happened here that the other nodes must show too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outgoing {
    /// A committed room message (its id is final: assigned by the store).
    Message {
        key: String,
        room: Arc<str>,
        id: u64,
        ts: u64,
        from: Arc<str>,
        text: Arc<str>,
        action: bool,
    },
    /// A committed private message for session `to_session` of `to_node`:
    /// the recipient's copy, or with `echo` the sender's own (that session
    /// being another device of the sender's).
    Private {
        to_node: Arc<str>,
        to_session: u64,
        ts: u64,
        from: Arc<str>,
        to: Arc<str>,
        text: Arc<str>,
        echo: bool,
    },
    /// Someone here started or stopped typing in a room with members elsewhere.
    Typing {
        key: String,
        room: Arc<str>,
        nick: Arc<str>,
        typing: bool,
    },
}

/// A moderation action the other nodes must apply to their own sessions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "m", rename_all = "snake_case")]
pub enum ModerationEvent {
    /// The policy of room `key` (`''`: the server's) changed in the store:
    /// read it again, and remove whoever it now bans (`by` names who
    /// changed it, for the room's announcement).
    PolicyChanged { key: String, by: Arc<str> },
    /// `nick` (a nickname key) was kicked from room `key` (`banned`: a
    /// ban that covers them now removed them, as after a rename into it).
    Kick {
        key: String,
        nick: String,
        by: Arc<str>,
        reason: Option<Arc<str>>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        banned: bool,
    },
    /// A server operator disconnected `nick` (a nickname key) everywhere.
    Disconnect { nick: String, reason: Arc<str> },
    /// A server operator's notice to every user.
    Notice { text: Arc<str> },
    /// Room `key`'s topic was set (or cleared) by `by`: for its members.
    Topic {
        key: String,
        topic: Option<Arc<str>>,
        by: Arc<str>,
    },
    /// Room `key`'s modes or roles were changed by `by` (`+m`, `+o alice`…).
    Mode {
        key: String,
        by: Arc<str>,
        change: Arc<str>,
    },
}

/// A broker between this node and the others.
#[async_trait::async_trait]
pub trait Broker: Send + Sync + std::fmt::Debug + 'static {
    /// This node's id, unique in the cluster.
    fn node(&self) -> &Arc<str>;

    /// Whether the others can be reached right now.
    fn is_connected(&self) -> bool;

    /// Claims folded nickname `key` for `session`, cluster-wide.
    async fn claim(&self, key: String, session: SessionId) -> Claim;

    /// Gives a claim back.
    fn release(&self, key: String, session: SessionId);

    /// A session opened or changed nickname or rooms: its state as of the
    /// change. Never waits; if it cannot be queued, the broker resyncs.
    fn session_changed(&self, state: SessionState);

    /// A session ended (with its `/quit` reason, if any).
    fn session_closed(&self, session: SessionId, reason: Option<Arc<str>>);

    /// Committed messages, in order; waits for room rather than drop them
    /// (backpressure on the sequencer).
    async fn publish(&self, events: Vec<Outgoing>);

    /// A passing event (typing) that may be dropped rather than wait.
    fn publish_now(&self, event: Outgoing);

    /// A moderation action, for the other nodes to apply (never waits; if
    /// it cannot be queued it is lost, as a typing event would be, and the
    /// policy still holds on every node at its next read from the store).
    fn moderation(&self, event: ModerationEvent);

    /// Whether this node wants room `key`'s messages and typing (it has
    /// members there): a node hears only the rooms it has members in, so
    /// its work grows with its own rooms' traffic, not the cluster's.
    /// Never waits; once the node hears the room, the broker calls
    /// [`super::Hub::rooms_heard`], which reads from the store what was
    /// committed before (nothing is lost in between).
    fn watch_room(&self, key: &str, watch: bool);

    /// Leaves the cluster: the others see this node's users leave.
    async fn stop(&self);
}
