//! Engine.IO packets and polling payloads on arbitrary text (a WebSocket
//! text frame or a polling body): decoding must not panic, and a decoded
//! text packet encodes back to the same record.
#![no_main]

use hubbub::transport::engineio::packet::{decode, encode_into, split_payload, Packet};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    for record in split_payload(text) {
        if let Ok(Packet::Text(kind, data)) = decode(record) {
            let mut out = Vec::new();
            encode_into(kind, data, &mut out);
            assert_eq!(out, record.as_bytes());
        }
    }
});
