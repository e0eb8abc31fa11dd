//! Socket.IO handshake `auth` on arbitrary bytes: whatever JSON a client
//! sends, reading its credentials answers (a guest, credentials, or a
//! refusal) without panicking, and a refusal always has a code.
#![no_main]

use hubbub::client::Credentials;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    if let Ok(auth) = serde_json::from_slice::<serde_json::Value>(bytes) {
        if let Err(refusal) = Credentials::from_auth(&auth) {
            assert!(!refusal.code.is_empty());
        }
    }
});
