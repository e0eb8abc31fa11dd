//! What nodes tell each other over Redis pub/sub: one JSON [`Envelope`] per
//! PUBLISH, holding every event a node had ready at that moment, in the
//! order it produced them (Redis keeps one connection's publications in
//! order, so each node's events arrive in the order it sent them).

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::hub::broker::Outgoing;

/// A session as the cluster sees it: also the value stored in Redis under
/// its node's session hash, so a node starting late reads the same shape.
pub use crate::hub::broker::SessionState;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum Event {
    /// The sender has (re)registered: read its sessions from Redis anew.
    Hello,
    /// `node` is dead or has stopped: its sessions have left.
    Gone { node: Arc<str> },
    /// A session of the sender was opened or changed nickname or rooms.
    Session(SessionState),
    /// A session of the sender ended.
    Closed { id: u64, reason: Option<Arc<str>> },
    /// A moderation action for every node's own sessions.
    Moderation(crate::hub::broker::ModerationEvent),
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
    /// A committed private message for session `to_session` of `to_node`
    /// (with `echo`, the sender's own copy for another of its devices).
    Private {
        to_node: Arc<str>,
        to_session: u64,
        ts: u64,
        from: Arc<str>,
        to: Arc<str>,
        text: Arc<str>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        echo: bool,
    },
    Typing {
        key: String,
        room: Arc<str>,
        nick: Arc<str>,
        typing: bool,
    },
}

impl From<Outgoing> for Event {
    fn from(event: Outgoing) -> Event {
        match event {
            Outgoing::Message {
                key,
                room,
                id,
                ts,
                from,
                text,
                action,
            } => Event::Message {
                key,
                room,
                id,
                ts,
                from,
                text,
                action,
            },
            Outgoing::Private {
                to_node,
                to_session,
                ts,
                from,
                to,
                text,
                echo,
            } => Event::Private {
                to_node,
                to_session,
                ts,
                from,
                to,
                text,
                echo,
            },
            Outgoing::Typing {
                key,
                room,
                nick,
                typing,
            } => Event::Typing {
                key,
                room,
                nick,
                typing,
            },
        }
    }
}

impl Event {
    /// Roughly how many bytes the event takes in an envelope.
    pub fn approx_size(&self) -> usize {
        64 + match self {
            Event::Hello | Event::Gone { .. } | Event::Closed { .. } => 0,
            Event::Moderation(_) => 128,
            Event::Session(s) => s.nick.len() + s.rooms.len() * 40,
            Event::Message {
                key,
                room,
                from,
                text,
                ..
            } => key.len() + room.len() + from.len() + text.len(),
            Event::Private { from, to, text, .. } => from.len() + to.len() + text.len(),
            Event::Typing {
                key, room, nick, ..
            } => key.len() + room.len() + nick.len(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// The sending node; a node ignores its own envelopes.
    pub from: Arc<str>,
    pub events: Vec<Event>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_envelope_survives_json() {
        let envelope = Envelope {
            from: "n1".into(),
            events: vec![
                Event::Hello,
                Event::Session(SessionState {
                    id: 7,
                    nick: "ann".into(),
                    logged_in: true,
                    account: Some("~0123".into()),
                    server_operator: true,
                    ip: None,
                    rooms: vec![("lobby".into(), "Lobby".into())],
                }),
                Event::Closed {
                    id: 7,
                    reason: Some("bye".into()),
                },
            ],
        };
        let json = serde_json::to_string(&envelope).unwrap();
        assert!(json.contains(r#""t":"session""#), "{json}");
        assert_eq!(serde_json::from_str::<Envelope>(&json).unwrap(), envelope);
    }
}
