//! Socket.IO protocol v5 packets, carried in Engine.IO message packets
//! (<https://github.com/socketio/socket.io-protocol>, "Packet format"):
//!
//! ```text
//! <type>[<attachments>-][<namespace>,][<ack id>][<JSON data>]
//! ```
//!
//! Types: `0` CONNECT, `1` DISCONNECT, `2` EVENT, `3` ACK, `4`
//! CONNECT_ERROR, `5` BINARY_EVENT, `6` BINARY_ACK. The main namespace `/`
//! is written by leaving it out. EVENT data is a JSON array whose first
//! element is the event name.

use serde_json::Value;

/// Socket.IO packet types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketKind {
    Connect,
    Disconnect,
    Event,
    Ack,
    ConnectError,
    BinaryEvent,
    BinaryAck,
}

impl PacketKind {
    fn from_digit(b: u8) -> Option<PacketKind> {
        Some(match b {
            b'0' => PacketKind::Connect,
            b'1' => PacketKind::Disconnect,
            b'2' => PacketKind::Event,
            b'3' => PacketKind::Ack,
            b'4' => PacketKind::ConnectError,
            b'5' => PacketKind::BinaryEvent,
            b'6' => PacketKind::BinaryAck,
            _ => return None,
        })
    }

    fn digit(self) -> u8 {
        match self {
            PacketKind::Connect => b'0',
            PacketKind::Disconnect => b'1',
            PacketKind::Event => b'2',
            PacketKind::Ack => b'3',
            PacketKind::ConnectError => b'4',
            PacketKind::BinaryEvent => b'5',
            PacketKind::BinaryAck => b'6',
        }
    }

    fn is_binary(self) -> bool {
        matches!(self, PacketKind::BinaryEvent | PacketKind::BinaryAck)
    }
}

/// One packet, borrowing from the text it was decoded from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet<'a> {
    pub kind: PacketKind,
    /// Binary attachments that follow as separate Engine.IO messages
    /// (binary kinds only).
    pub attachments: usize,
    /// `/` for the main namespace.
    pub namespace: &'a str,
    /// The acknowledgement id the sender asked for (EVENT) or answers (ACK).
    pub id: Option<u64>,
    /// The JSON data, unparsed; empty when the packet has none.
    pub data: &'a str,
}

/// Why a packet could not be decoded; the client is told.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PacketError {
    #[error("empty socket.io packet")]
    Empty,
    #[error("unknown socket.io packet type")]
    UnknownType,
    #[error("bad attachment count in a binary socket.io packet")]
    Attachments,
    #[error("socket.io ack id too long")]
    AckId,
    #[error("socket.io event data must be a JSON array starting with the event name")]
    EventData,
    /// Well-formed but for a string escape that encodes half of a UTF-16
    /// surrogate pair (`"\ud83d"`, what a client that cut text by UTF-16
    /// length sends): bad text, not a broken packet. Carries the event's
    /// name, for the refusal.
    #[error("text with half of a UTF-16 surrogate pair (a cut emoji)")]
    LoneSurrogate(String),
}

/// Longest acknowledgement id accepted, in digits: enough for 2^53, the
/// integers JavaScript clients count with exactly.
const MAX_ID_DIGITS: usize = 16;

/// Decodes one packet from an Engine.IO message's text.
pub fn decode(text: &str) -> Result<Packet<'_>, PacketError> {
    let bytes = text.as_bytes();
    let kind = PacketKind::from_digit(*bytes.first().ok_or(PacketError::Empty)?)
        .ok_or(PacketError::UnknownType)?;
    let mut at = 1;
    let mut attachments = 0;
    if kind.is_binary() {
        let digits = bytes[at..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        if digits == 0 || digits > 6 || bytes.get(at + digits) != Some(&b'-') {
            return Err(PacketError::Attachments);
        }
        attachments = text[at..at + digits]
            .parse()
            .map_err(|_| PacketError::Attachments)?;
        at += digits + 1;
    }
    let mut namespace = "/";
    if bytes.get(at) == Some(&b'/') {
        let end = text[at..].find(',').map_or(text.len(), |i| at + i);
        namespace = &text[at..end];
        at = (end + 1).min(text.len());
    }
    let digits = bytes[at..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .count();
    let id = if digits == 0 {
        None
    } else if digits > MAX_ID_DIGITS {
        return Err(PacketError::AckId);
    } else {
        let id = text[at..at + digits]
            .parse()
            .map_err(|_| PacketError::AckId)?;
        at += digits;
        Some(id)
    };
    Ok(Packet {
        kind,
        attachments,
        namespace,
        id,
        data: &text[at..],
    })
}

/// Appends `packet` (with the Engine.IO message prefix `4` when
/// `engine_prefix`) to `out`.
pub fn encode_into(packet: &Packet<'_>, engine_prefix: bool, out: &mut Vec<u8>) {
    if engine_prefix {
        out.push(b'4');
    }
    out.push(packet.kind.digit());
    if packet.kind.is_binary() {
        out.extend_from_slice(packet.attachments.to_string().as_bytes());
        out.push(b'-');
    }
    if packet.namespace != "/" {
        out.extend_from_slice(packet.namespace.as_bytes());
        out.push(b',');
    }
    if let Some(id) = packet.id {
        out.extend_from_slice(id.to_string().as_bytes());
    }
    out.extend_from_slice(packet.data.as_bytes());
}

/// An EVENT's name and first argument (`null` when it has none; further
/// arguments are ignored).
///
/// Errors: `EventData` for anything that is not such an array;
/// `LoneSurrogate` for one that is, but for half a surrogate pair in a
/// string (the request is refused as bad text; the socket stays).
pub fn event_parts(data: &str) -> Result<(String, Value), PacketError> {
    let mut args: Vec<Value> = match serde_json::from_str(data) {
        Ok(args) => args,
        Err(_) => {
            // Would it parse with its lone surrogates replaced? Then it is
            // bad text in a good packet.
            let repaired = replace_lone_surrogates(data).ok_or(PacketError::EventData)?;
            let (name, _) = event_parts(&repaired)?;
            return Err(PacketError::LoneSurrogate(name));
        }
    };
    if args.is_empty() {
        return Err(PacketError::EventData);
    }
    let first = if args.len() > 1 {
        args.swap_remove(1)
    } else {
        Value::Null
    };
    match args.swap_remove(0) {
        Value::String(name) => Ok((name, first)),
        _ => Err(PacketError::EventData),
    }
}

/// `json` with every `\uXXXX` escape of an unpaired UTF-16 surrogate
/// replaced by `\ufffd`; `None` when it has none (nothing to repair).
fn replace_lone_surrogates(json: &str) -> Option<String> {
    let bytes = json.as_bytes();
    let hex = |at: usize| -> Option<u16> {
        let digits = json.get(at..at + 4)?;
        if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        u16::from_str_radix(digits, 16).ok()
    };
    // `\uXXXX` at `at`: its code unit.
    let escape = |at: usize| -> Option<u16> {
        (bytes.get(at) == Some(&b'\\') && bytes.get(at + 1) == Some(&b'u'))
            .then(|| hex(at + 2))
            .flatten()
    };
    let mut out = String::with_capacity(json.len());
    let mut repaired = false;
    let mut in_string = false;
    let mut i = 0;
    let mut copied = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => in_string = !in_string,
            b'\\' if in_string => {
                if let Some(unit) = escape(i) {
                    let high = (0xD800..0xDC00).contains(&unit);
                    let low = (0xDC00..0xE000).contains(&unit);
                    let paired =
                        high && escape(i + 6).is_some_and(|u| (0xDC00..0xE000).contains(&u));
                    if paired {
                        i += 12;
                        continue;
                    }
                    if high || low {
                        out.push_str(&json[copied..i]);
                        out.push_str("\\ufffd");
                        copied = i + 6;
                        repaired = true;
                    }
                    i += 6;
                    continue;
                }
                // Any other escape: skip the escaped character.
                i += 2;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    out.push_str(&json[copied.min(json.len())..]);
    repaired.then_some(out)
}

/// The Engine.IO message carrying EVENT `name` with one argument (already
/// JSON): `42["name",<arg>]`.
pub fn event_message(name: &str, arg_json: &str) -> Vec<u8> {
    let name = serde_json::to_string(name).unwrap_or_else(|_| "\"\"".into());
    let mut out = Vec::with_capacity(name.len() + arg_json.len() + 5);
    out.extend_from_slice(b"42[");
    out.extend_from_slice(name.as_bytes());
    if !arg_json.is_empty() {
        out.push(b',');
        out.extend_from_slice(arg_json.as_bytes());
    }
    out.push(b']');
    out
}

/// The Engine.IO message carrying the ACK for `id` with one argument
/// (already JSON): `43<id>[<arg>]`.
pub fn ack_message(id: u64, arg_json: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(arg_json.len() + 24);
    encode_into(
        &Packet {
            kind: PacketKind::Ack,
            attachments: 0,
            namespace: "/",
            id: Some(id),
            data: "",
        },
        true,
        &mut out,
    );
    out.push(b'[');
    out.extend_from_slice(arg_json.as_bytes());
    out.push(b']');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn decodes_the_spec_examples() {
        let p = decode("2/admin,456[\"project:delete\",123]").unwrap();
        assert_eq!(p.kind, PacketKind::Event);
        assert_eq!(
            (p.namespace, p.id, p.data),
            ("/admin", Some(456), "[\"project:delete\",123]")
        );
        let p = decode("0{\"token\":\"123\"}").unwrap();
        assert_eq!(
            (p.kind, p.namespace, p.data),
            (PacketKind::Connect, "/", "{\"token\":\"123\"}")
        );
        let p = decode("51-[\"hello\",{\"_placeholder\":true,\"num\":0}]").unwrap();
        assert_eq!((p.kind, p.attachments), (PacketKind::BinaryEvent, 1));
        let p = decode("0/admin").unwrap();
        assert_eq!((p.namespace, p.data), ("/admin", ""));
        assert_eq!(decode("1").unwrap().kind, PacketKind::Disconnect);
        assert_eq!(decode("9"), Err(PacketError::UnknownType));
        assert_eq!(decode("5x"), Err(PacketError::Attachments));
        assert_eq!(decode("212345678901234567[]"), Err(PacketError::AckId));
    }

    #[test]
    fn event_parts_takes_the_name_and_first_argument() {
        assert_eq!(
            event_parts(r#"["chat",{"message":"hi"},2]"#).unwrap(),
            ("chat".to_string(), serde_json::json!({"message": "hi"}))
        );
        assert_eq!(
            event_parts(r#"["x"]"#).unwrap(),
            ("x".to_string(), Value::Null)
        );
        assert!(event_parts("[]").is_err());
        assert!(event_parts("[1]").is_err());
        assert!(event_parts("{}").is_err());
    }

    #[test]
    fn half_a_surrogate_pair_is_bad_text_not_a_bad_packet() {
        for (data, name) in [
            (r#"["message",{"text":"\ud83d"}]"#, "message"),
            (r#"["chat",{"message":"a\udc00b"}]"#, "chat"),
            (r#"["x",{"t":"\ud83d\ud83d\ude00"}]"#, "x"),
        ] {
            assert_eq!(
                event_parts(data),
                Err(PacketError::LoneSurrogate(name.into())),
                "{data}"
            );
        }
        // A whole pair, an escaped backslash before `u`, and plain
        // malformed JSON are what they were.
        assert!(event_parts(r#"["m",{"t":"\ud83d\ude00"}]"#).is_ok());
        assert!(event_parts(r#"["m",{"t":"\\ud83d"}]"#).is_ok());
        assert_eq!(
            event_parts(r#"["m",{"t":"\ud83d"#),
            Err(PacketError::EventData)
        );
        assert_eq!(event_parts(r#"[5,"\ud83d"]"#), Err(PacketError::EventData));
    }

    #[test]
    fn messages_are_what_clients_expect() {
        assert_eq!(
            event_message("nickname ready", ""),
            b"42[\"nickname ready\"]"
        );
        assert_eq!(ack_message(7, "{\"ok\":1}"), b"437[{\"ok\":1}]");
    }

    fn kind() -> impl Strategy<Value = PacketKind> {
        (0u8..7).prop_map(|d| PacketKind::from_digit(b'0' + d).unwrap())
    }

    proptest! {
        #[test]
        fn repairing_surrogates_in_arbitrary_json_never_panics(
            text in r#"[\["\\u0-9a-fA-FdD, ]{0,60}"#
        ) {
            let _ = event_parts(&text);
            let _ = replace_lone_surrogates(&text);
        }

        #[test]
        fn decoding_arbitrary_text_never_panics(text in any::<String>()) {
            if let Ok(p) = decode(&text) {
                if p.kind == PacketKind::Event {
                    let _ = event_parts(p.data);
                }
            }
        }

        #[test]
        fn encode_then_decode_round_trips(
            kind in kind(),
            attachments in 0usize..1000,
            namespace in prop_oneof![Just("/".to_string()), "/[a-z]{1,8}"],
            id in proptest::option::of(0u64..(1 << 53)),
            data in prop_oneof![Just(String::new()), "\\[[^,]*\\]", "\\{.*\\}"],
        ) {
            let attachments = if matches!(kind, PacketKind::BinaryEvent | PacketKind::BinaryAck) { attachments } else { 0 };
            let packet = Packet { kind, attachments, namespace: &namespace, id, data: &data };
            let mut out = Vec::new();
            encode_into(&packet, false, &mut out);
            let text = String::from_utf8(out).unwrap();
            prop_assert_eq!(decode(&text).unwrap(), packet);
        }
    }
}
