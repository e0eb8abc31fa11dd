//! Engine.IO protocol v4 packets and polling payloads
//! (<https://github.com/socketio/engine.io-protocol>, "Packet encoding").
//!
//! A text packet is one type digit then its data: `0` open, `1` close,
//! `2` ping, `3` pong, `4` message, `5` upgrade, `6` noop. A polling
//! payload is text packets joined by the record separator `0x1e`. Binary
//! messages travel as WebSocket binary frames, or as `b` plus base64 in a
//! polling payload.

/// The byte between packets of a polling payload (v4; v3 used lengths).
pub const SEPARATOR: u8 = 0x1e;

/// Engine.IO packet types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketType {
    Open,
    Close,
    Ping,
    Pong,
    Message,
    Upgrade,
    Noop,
}

impl PacketType {
    fn from_digit(b: u8) -> Option<PacketType> {
        Some(match b {
            b'0' => PacketType::Open,
            b'1' => PacketType::Close,
            b'2' => PacketType::Ping,
            b'3' => PacketType::Pong,
            b'4' => PacketType::Message,
            b'5' => PacketType::Upgrade,
            b'6' => PacketType::Noop,
            _ => return None,
        })
    }

    /// The packet type's digit on the wire.
    pub fn digit(self) -> u8 {
        match self {
            PacketType::Open => b'0',
            PacketType::Close => b'1',
            PacketType::Ping => b'2',
            PacketType::Pong => b'3',
            PacketType::Message => b'4',
            PacketType::Upgrade => b'5',
            PacketType::Noop => b'6',
        }
    }
}

/// One decoded packet, borrowing its data from the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet<'a> {
    /// A text packet: its type and the data after the digit (`probe` for
    /// an upgrade's ping and pong, the message for `4`).
    Text(PacketType, &'a str),
    /// A binary message (a WebSocket binary frame, or a polling `b` packet
    /// once decoded).
    Binary(Vec<u8>),
}

/// Why a packet could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PacketError {
    #[error("empty engine.io packet")]
    Empty,
    #[error("unknown engine.io packet type {0:?}")]
    UnknownType(char),
    #[error("invalid base64 in a binary engine.io packet")]
    Base64,
}

/// Decodes one text packet (a WebSocket text frame, or one record of a
/// polling payload).
pub fn decode(text: &str) -> Result<Packet<'_>, PacketError> {
    let first = *text.as_bytes().first().ok_or(PacketError::Empty)?;
    if first == b'b' {
        use base64::Engine as _;
        return base64::engine::general_purpose::STANDARD
            .decode(&text[1..])
            .map(Packet::Binary)
            .map_err(|_| PacketError::Base64);
    }
    let kind = PacketType::from_digit(first)
        .ok_or_else(|| PacketError::UnknownType(text.chars().next().unwrap_or('\u{fffd}')))?;
    // The digit is ASCII, so index 1 is a char boundary.
    Ok(Packet::Text(kind, &text[1..]))
}

/// The records of a polling payload, each to be [`decode`]d.
pub fn split_payload(payload: &str) -> impl Iterator<Item = &str> {
    payload.split(SEPARATOR as char)
}

/// Appends the text packet `kind` + `data` to `out`.
pub fn encode_into(kind: PacketType, data: &str, out: &mut Vec<u8>) {
    out.push(kind.digit());
    out.extend_from_slice(data.as_bytes());
}

/// The open packet's data: the handshake a client reads first.
#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Handshake<'a> {
    pub sid: &'a str,
    /// Transports the client may upgrade to (`["websocket"]` from polling).
    pub upgrades: &'a [&'a str],
    /// Milliseconds between the server's pings.
    pub ping_interval: u64,
    /// Milliseconds the server waits for a pong before closing.
    pub ping_timeout: u64,
    /// Largest payload the server accepts, in bytes (a polling client
    /// splits what it sends to fit).
    pub max_payload: usize,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn decodes_each_type() {
        assert_eq!(
            decode("2probe"),
            Ok(Packet::Text(PacketType::Ping, "probe"))
        );
        assert_eq!(decode("3"), Ok(Packet::Text(PacketType::Pong, "")));
        assert_eq!(
            decode("42[\"a\"]"),
            Ok(Packet::Text(PacketType::Message, "2[\"a\"]"))
        );
        assert_eq!(decode("bAQID"), Ok(Packet::Binary(vec![1, 2, 3])));
        assert_eq!(decode(""), Err(PacketError::Empty));
        assert_eq!(decode("9"), Err(PacketError::UnknownType('9')));
        assert_eq!(decode("é"), Err(PacketError::UnknownType('é')));
        assert_eq!(decode("b!!"), Err(PacketError::Base64));
    }

    #[test]
    fn splits_a_payload_on_the_separator() {
        let packets: Vec<_> = split_payload("4hello\u{1e}2\u{1e}4€€€").collect();
        assert_eq!(packets, ["4hello", "2", "4€€€"]);
    }

    fn packet_type() -> impl Strategy<Value = PacketType> {
        prop_oneof![
            Just(PacketType::Open),
            Just(PacketType::Close),
            Just(PacketType::Ping),
            Just(PacketType::Pong),
            Just(PacketType::Message),
            Just(PacketType::Upgrade),
            Just(PacketType::Noop),
        ]
    }

    proptest! {
        #[test]
        fn decoding_arbitrary_text_never_panics(text in any::<String>()) {
            let _ = decode(&text);
            for record in split_payload(&text) {
                let _ = decode(record);
            }
        }

        #[test]
        fn encode_then_decode_round_trips(kind in packet_type(), data in "[^\u{1e}]*") {
            let mut out = Vec::new();
            encode_into(kind, &data, &mut out);
            let text = String::from_utf8(out).unwrap();
            prop_assert_eq!(decode(&text), Ok(Packet::Text(kind, data.as_str())));
        }

        #[test]
        fn a_payload_of_encoded_packets_splits_back(
            packets in proptest::collection::vec((packet_type(), "[^\u{1e}]*"), 1..8)
        ) {
            let mut out = Vec::new();
            for (i, (kind, data)) in packets.iter().enumerate() {
                if i > 0 {
                    out.push(SEPARATOR);
                }
                encode_into(*kind, data, &mut out);
            }
            let text = String::from_utf8(out).unwrap();
            let decoded: Vec<_> = split_payload(&text).map(|r| decode(r).unwrap()).collect();
            let expected: Vec<_> = packets.iter().map(|(k, d)| Packet::Text(*k, d.as_str())).collect();
            prop_assert_eq!(decoded, expected);
        }
    }
}
