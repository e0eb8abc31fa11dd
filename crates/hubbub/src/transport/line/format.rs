//! How hub events look on the line protocol (see docs/PROTOCOL.md).
//!
//! Plain chat uses the seed's Go chat bytes exactly (`You are ADDR`,
//! `NAME has joined us`, `NAME: text`, `NAME has left`). Additions keep out of
//! that space with fixed prefixes: `* ` for server replies, `! ` for errors
//! meant for this client only, `** ` for `/me` actions, `*NAME* ` for
//! private messages, `[time] ` for history.
//!
//! By construction no client can make a line that passes for the server's:
//! every line that starts with `* ` or `! ` is written by the server from
//! its own text. A line a client caused starts with a name (which begins
//! with a letter or digit), `**`, `*NAME*`, `->` or `[`; the client-chosen
//! parts (names, texts, reasons) hold no line breaks.

use bytes::Bytes;

use crate::hub::{CloseReason, EventKind};

/// Prefix of every error line.
pub const ERROR_PREFIX: &str = "! ";
/// Prefix of every server reply line.
pub const NOTICE_PREFIX: &str = "* ";
/// Prefix of a `/me` action (`** alice waves`): unlike the IRC habit of
/// `* alice waves`, it cannot be mistaken for a server reply.
pub const ACTION_PREFIX: &str = "** ";

/// Encodes one event as one or more `\n`-terminated lines.
pub fn encode(event: &EventKind) -> Bytes {
    let text = match event {
        // Queued by the line transport itself, already in its format.
        EventKind::Wire { bytes } => return bytes.clone(),
        EventKind::Welcome { nick, .. } => format!("You are {nick}\n"),
        EventKind::Message {
            from,
            text,
            action: false,
            ..
        } => format!("{from}: {text}\n"),
        EventKind::Message {
            from,
            text,
            action: true,
            ..
        } => format!("{ACTION_PREFIX}{from} {text}\n"),
        EventKind::History {
            room,
            messages,
            complete,
        } => {
            let mut out = format!(
                "{NOTICE_PREFIX}history of {room} ({}{}):\n",
                messages.len(),
                if *complete { "" } else { ", more before" }
            );
            for message in messages {
                if let EventKind::Message {
                    ts,
                    from,
                    text,
                    action,
                    ..
                } = &message.kind
                {
                    let time = timestamp(*ts);
                    if *action {
                        out.push_str(&format!("[{time}] {ACTION_PREFIX}{from} {text}\n"));
                    } else {
                        out.push_str(&format!("[{time}] {from}: {text}\n"));
                    }
                }
            }
            out.push_str(&format!("{NOTICE_PREFIX}end of history\n"));
            out
        }
        EventKind::Joined { nick, .. } => format!("{nick} has joined us\n"),
        EventKind::Presence {
            joined,
            left,
            renamed,
            members,
            ..
        } => {
            let changes: Vec<String> = [(joined, "joined"), (left, "left"), (renamed, "renamed")]
                .into_iter()
                .filter(|(n, _)| **n > 0)
                .map(|(n, what)| format!("{n} {what}"))
                .collect();
            format!("{NOTICE_PREFIX}{} ({members} here)\n", changes.join(", "))
        }
        EventKind::Kicked {
            room,
            nick,
            by,
            reason,
            banned,
        } => {
            let what = if *banned { "banned" } else { "kicked" };
            match reason {
                Some(reason) => format!("{nick} was {what} from {room} by {by} ({reason})\n"),
                None => format!("{nick} was {what} from {room} by {by}\n"),
            }
        }
        EventKind::Topic {
            room,
            topic,
            by,
            changed: true,
        } => match topic {
            Some(topic) => format!("{by} set the topic of {room}: {topic}\n"),
            None => format!("{by} cleared the topic of {room}\n"),
        },
        EventKind::Topic {
            room, topic, by, ..
        } => match topic {
            Some(topic) => format!("{room} topic: {topic} (set by {by})\n"),
            None => format!("{room} has no topic\n"),
        },
        EventKind::Mode { room, by, change } => format!("{by} sets mode {change} on {room}\n"),
        EventKind::Left {
            nick, reason: None, ..
        } => format!("{nick} has left\n"),
        EventKind::Left {
            nick,
            reason: Some(reason),
            ..
        } => format!("{nick} has left ({reason})\n"),
        EventKind::Renamed { old, new, .. } => format!("{old} is now known as {new}\n"),
        // Line sessions do not ask for typing events; nothing to show.
        EventKind::Typing { .. } => String::new(),
        EventKind::Private { from, text, .. } => format!("*{from}* {text}\n"),
        EventKind::PrivateSent { to, text, .. } => format!("-> *{to}* {text}\n"),
        EventKind::Notice { text } => prefixed(NOTICE_PREFIX, text),
        EventKind::Error { message, .. } => prefixed(ERROR_PREFIX, message),
        EventKind::Closing {
            reason: CloseReason::Quit,
        } => format!("{NOTICE_PREFIX}bye\n"),
        EventKind::Closing {
            reason: CloseReason::Shutdown,
        } => format!("{NOTICE_PREFIX}server is shutting down, bye\n"),
        EventKind::Closing { reason } => {
            format!("{ERROR_PREFIX}disconnected: {}\n", reason.describe())
        }
    };
    Bytes::from(text)
}

/// `2026-11-27 15:04` (UTC) for a millisecond timestamp.
fn timestamp(ms: u64) -> String {
    chrono::DateTime::from_timestamp_millis(ms as i64)
        .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_default()
}

/// Every line of `text` with `prefix` in front.
fn prefixed(prefix: &str, text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for line in text.lines() {
        out.push_str(prefix);
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_bytes() {
        let message = EventKind::Message {
            room: "lobby".into(),
            id: 1,
            ts: 0,
            from: "127.0.0.1:5000".into(),
            text: "hi".into(),
            action: false,
        };
        assert_eq!(encode(&message), "127.0.0.1:5000: hi\n");
        let joined = EventKind::Joined {
            room: "lobby".into(),
            nick: "a".into(),
        };
        assert_eq!(encode(&joined), "a has joined us\n");
        let left = EventKind::Left {
            room: "lobby".into(),
            nick: "a".into(),
            reason: None,
        };
        assert_eq!(encode(&left), "a has left\n");
    }

    /// Every line a client's input can cause, whatever the names and texts
    /// (within what the transports accept: no line breaks), must not start
    /// like a server line.
    #[test]
    fn no_client_line_passes_for_a_server_line() {
        use proptest::prelude::*;
        // Names as the hub accepts them (or a server-given `IP:PORT`), texts
        // as the line reader and Socket.IO accept them: no control
        // characters but TAB.
        let name = "([\\p{L}\\p{N}][\\p{L}\\p{N}_-]{0,31}|[0-9.:]{1,21})";
        let text = "([^\\p{Cc}]|\t){0,64}";
        proptest!(|(from in name, to in name, text in text, action: bool, reason in proptest::option::of(text))| {
            let from: std::sync::Arc<str> = from.as_str().into();
            let events = [
                EventKind::Message { room: "r".into(), id: 1, ts: 0, from: from.clone(), text: text.as_str().into(), action },
                EventKind::Joined { room: "r".into(), nick: from.clone() },
                EventKind::Left { room: "r".into(), nick: from.clone(), reason: reason.clone().map(|r| r.as_str().into()) },
                EventKind::Renamed { room: "r".into(), old: from.clone(), new: to.as_str().into() },
                EventKind::Private { ts: 0, from: from.clone(), to: to.as_str().into(), text: text.as_str().into() },
                EventKind::PrivateSent { ts: 0, from: from.clone(), to: to.as_str().into(), text: text.as_str().into(), own: true },
                EventKind::Kicked { room: "r".into(), nick: to.as_str().into(), by: from.clone(), reason: reason.clone().map(|r| r.as_str().into()), banned: action },
                EventKind::Topic { room: "r".into(), topic: Some(text.as_str().into()), by: from.clone(), changed: action },
                EventKind::Mode { room: "r".into(), by: from.clone(), change: format!("+b nick:{to}").into() },
            ];
            for event in &events {
                let bytes = encode(event);
                let lines = std::str::from_utf8(&bytes).unwrap();
                prop_assert_eq!(lines.matches('\n').count(), 1, "one line: {:?}", lines);
                prop_assert!(!lines.starts_with(NOTICE_PREFIX) && !lines.starts_with(ERROR_PREFIX),
                    "passes for a server line: {:?}", lines);
            }
        });
    }

    #[test]
    fn server_lines_a_nick_once_could_forge() {
        // `/me` by a user named `server`: once byte for byte the shutdown line.
        let action = EventKind::Message {
            room: "lobby".into(),
            id: 1,
            ts: 0,
            from: "server".into(),
            text: "is shutting down, bye".into(),
            action: true,
        };
        let shutdown = EventKind::Closing {
            reason: CloseReason::Shutdown,
        };
        assert_eq!(encode(&action), "** server is shutting down, bye\n");
        assert_ne!(encode(&action), encode(&shutdown));
    }

    #[test]
    fn multi_line_notice() {
        let notice = EventKind::Notice {
            text: "one\ntwo".into(),
        };
        assert_eq!(encode(&notice), "* one\n* two\n");
    }
}
