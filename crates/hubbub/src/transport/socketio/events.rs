//! Hub events as Socket.IO packets, encoded once per event for every
//! socket that receives it.
//!
//! Room messages have two forms: hubbub's `message` {id, room, from, text,
//! ts, action}, and the seed's `notice` {message: "NAME:text"}. Which a
//! socket gets is its [`Vocabulary`], chosen in its CONNECT.

use bytes::Bytes;
use serde::Serialize;
use serde_json::{json, Value};

use super::packet;
use crate::hub::{CloseReason, Event, EventKind, WireFormat};
use crate::store::StoredMessage;

/// Which events a client reads room messages as, from the `vocabulary`
/// field of its CONNECT `auth` (docs/PROTOCOL.md, "Vocabularies").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vocabulary {
    /// No choice made (the seed's page sends no `auth`): both `message`
    /// and `notice`, two packets per room message.
    Both,
    /// `"hubbub"`: `message` only.
    Hubbub,
    /// `"seed"`: `notice` only.
    Seed,
}

impl Vocabulary {
    /// The vocabulary a CONNECT's `auth` asks for; an error names what is wrong.
    pub fn from_auth(auth: &Value) -> Result<Vocabulary, String> {
        match auth.get("vocabulary") {
            None | Some(Value::Null) => Ok(Vocabulary::Both),
            Some(Value::String(v)) if v == "hubbub" => Ok(Vocabulary::Hubbub),
            Some(Value::String(v)) if v == "seed" => Ok(Vocabulary::Seed),
            Some(_) => Err("auth.vocabulary must be \"hubbub\" or \"seed\"".into()),
        }
    }
}

#[derive(Serialize)]
struct Message<'a> {
    id: u64,
    room: &'a str,
    from: &'a str,
    text: &'a str,
    ts: u64,
    action: bool,
}

/// A stored message as the `message` event's payload (scroll-back pages).
pub(crate) fn stored_json(m: &StoredMessage) -> Value {
    serde_json::to_value(Message {
        id: m.id,
        room: &m.room,
        from: &m.from,
        text: &m.text,
        ts: m.ts,
        action: m.action,
    })
    .unwrap_or_default()
}

/// A room message as the `message` event's payload.
fn message_of(kind: &EventKind) -> Option<Message<'_>> {
    match kind {
        EventKind::Message {
            room,
            id,
            ts,
            from,
            text,
            action,
        } => Some(Message {
            id: *id,
            room,
            from,
            text,
            ts: *ts,
            action: *action,
        }),
        _ => None,
    }
}

/// An event's packets, cached in the event for every socket.
struct Encoded {
    /// The event in hubbub's vocabulary (`None` for what sockets are not sent).
    main: Option<Bytes>,
    /// The seed's `notice`, for room messages.
    notice: Option<Bytes>,
}

fn encode_once(kind: &EventKind) -> Encoded {
    let notice = match kind {
        EventKind::Message {
            from, text, action, ..
        } => {
            let line = if *action {
                format!("* {from} {text}")
            } else {
                format!("{from}:{text}")
            };
            Some(Bytes::from(packet::event_message(
                "notice",
                &json!({ "message": line }).to_string(),
            )))
        }
        _ => None,
    };
    // Room messages are the hot path: written straight from the struct
    // (fields in their documented order), not through a JSON tree.
    let main = match message_of(kind) {
        Some(message) => serde_json::to_string(&message)
            .ok()
            .map(|data| Bytes::from(packet::event_message("message", &data))),
        None => payload(kind)
            .map(|(name, data)| Bytes::from(packet::event_message(name, &data.to_string()))),
    };
    Encoded { main, notice }
}

/// Emits the Engine.IO packets of `event` for a socket speaking `vocabulary`.
pub(crate) fn encode(vocabulary: Vocabulary, event: &Event, emit: &mut dyn FnMut(&[u8])) {
    let encoded = event.encoded_as(WireFormat::SocketIo, encode_once);
    let is_message = encoded.notice.is_some();
    if vocabulary != Vocabulary::Seed || !is_message {
        if let Some(main) = &encoded.main {
            emit(main);
        }
    }
    if vocabulary != Vocabulary::Hubbub {
        if let Some(notice) = &encoded.notice {
            emit(notice);
        }
    }
    if let EventKind::Closing { reason } = &event.kind {
        // A Socket.IO DISCONNECT is final for the official clients: sent
        // when the server means it (flooding, too slow), not at shutdown,
        // after which they should reconnect to the server's successor.
        if *reason != CloseReason::Shutdown {
            emit(b"41");
        }
    }
}

/// The Socket.IO event name and payload of every event; `None` for what
/// sockets are not sent.
fn payload(kind: &EventKind) -> Option<(&'static str, Value)> {
    Some(match kind {
        EventKind::Message { .. } => ("message", serde_json::to_value(message_of(kind)?).ok()?),
        EventKind::Welcome { nick, room } => ("welcome", json!({"nick": nick, "room": room})),
        EventKind::History {
            room,
            messages,
            complete,
        } => {
            let messages: Vec<_> = messages
                .iter()
                .filter_map(|m| serde_json::to_value(message_of(&m.kind)?).ok())
                .collect();
            (
                "history",
                json!({"room": room, "messages": messages, "complete": complete}),
            )
        }
        EventKind::Joined { room, nick } => ("joined", json!({"room": room, "nick": nick})),
        EventKind::Presence {
            room,
            joined,
            left,
            renamed,
            members,
        } => (
            "presence",
            json!({"room": room, "joined": joined, "left": left, "renamed": renamed, "members": members}),
        ),
        EventKind::Kicked {
            room,
            nick,
            by,
            reason,
            banned,
        } => (
            "kicked",
            json!({"room": room, "nick": nick, "by": by, "reason": reason, "banned": banned}),
        ),
        EventKind::Topic {
            room,
            topic,
            by,
            changed,
        } => (
            "topic",
            json!({"room": room, "topic": topic, "by": by, "changed": changed}),
        ),
        EventKind::Mode { room, by, change } => {
            ("mode", json!({"room": room, "by": by, "change": change}))
        }
        EventKind::Left { room, nick, reason } => (
            "left",
            json!({"room": room, "nick": nick, "reason": reason}),
        ),
        EventKind::Renamed { room, old, new } => {
            ("renamed", json!({"room": room, "old": old, "new": new}))
        }
        EventKind::Typing { room, nick, typing } => (
            "typing",
            json!({"room": room, "nick": nick, "typing": typing}),
        ),
        // Also the copy for the sender's other devices (`from` is then
        // the client's own nickname); the sending session itself has the
        // acknowledgement already.
        EventKind::Private { ts, from, to, text }
        | EventKind::PrivateSent {
            ts,
            from,
            to,
            text,
            own: false,
        } => (
            "private",
            json!({"from": from, "to": to, "text": text, "ts": ts}),
        ),
        EventKind::PrivateSent { own: true, .. } => return None,
        EventKind::Notice { text } => ("info", json!({ "text": text })),
        EventKind::Error { code, message } => {
            ("error", json!({ "code": code, "message": message }))
        }
        EventKind::Closing { reason } => ("closing", json!({ "reason": reason.describe() })),
        // Written by the engine as they are.
        EventKind::Wire { .. } => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packets(vocabulary: Vocabulary, event: &Event) -> Vec<String> {
        let mut out = Vec::new();
        encode(vocabulary, event, &mut |p| {
            out.push(String::from_utf8(p.to_vec()).unwrap())
        });
        out
    }

    #[test]
    fn a_room_message_is_one_packet_per_vocabulary() {
        let event = Event::new(EventKind::Message {
            room: "lobby".into(),
            id: 3,
            ts: 9,
            from: "ann".into(),
            text: "hi".into(),
            action: false,
        });
        let message = r#"42["message",{"id":3,"room":"lobby","from":"ann","text":"hi","ts":9,"action":false}]"#;
        let notice = r#"42["notice",{"message":"ann:hi"}]"#;
        assert_eq!(packets(Vocabulary::Hubbub, &event), [message]);
        assert_eq!(packets(Vocabulary::Seed, &event), [notice]);
        assert_eq!(packets(Vocabulary::Both, &event), [message, notice]);
    }

    #[test]
    fn only_a_final_close_is_a_socket_io_disconnect() {
        let shutdown = Event::new(EventKind::Closing {
            reason: CloseReason::Shutdown,
        });
        assert_eq!(
            packets(Vocabulary::Hubbub, &shutdown),
            [r#"42["closing",{"reason":"server is shutting down"}]"#]
        );
        let flood = Event::new(EventKind::Closing {
            reason: CloseReason::Flooding,
        });
        assert_eq!(packets(Vocabulary::Hubbub, &flood).last().unwrap(), "41");
    }

    #[test]
    fn vocabulary_comes_from_auth() {
        assert_eq!(Vocabulary::from_auth(&Value::Null), Ok(Vocabulary::Both));
        assert_eq!(
            Vocabulary::from_auth(&json!({"vocabulary": "hubbub"})),
            Ok(Vocabulary::Hubbub)
        );
        assert!(Vocabulary::from_auth(&json!({"vocabulary": 1})).is_err());
    }
}
