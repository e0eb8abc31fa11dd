//! Socket.IO packets (and EVENT payloads) on arbitrary text: decoding must
//! not panic, and a decoded packet whose data is JSON-shaped (what every
//! real packet carries) encodes back to what was decoded.
#![no_main]

use hubbub::transport::socketio::packet::{decode, encode_into, event_parts, PacketKind};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Ok(packet) = decode(text) {
        if !(packet.data.is_empty() || packet.data.starts_with(['[', '{'])) {
            return;
        }
        let mut out = Vec::new();
        encode_into(&packet, false, &mut out);
        let again = String::from_utf8(out).expect("encoding keeps UTF-8");
        assert_eq!(decode(&again), Ok(packet.clone()));
        if packet.kind == PacketKind::Event {
            let _ = event_parts(packet.data);
        }
    }
});
