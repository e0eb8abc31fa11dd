//! The WebSocket frame reader on arbitrary bytes, cut into arbitrary
//! chunks: it must not panic, never hold more than one message's worth,
//! and a refused frame is refused for good.
#![no_main]

use hubbub::transport::engineio::frame::{Flow, FrameReader};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (u8, Vec<u8>)| {
    let (cut, mut bytes) = input;
    let mut reader = FrameReader::new(1024);
    let at = (cut as usize).min(bytes.len());
    let (first, second) = bytes.split_at_mut(at);
    let mut on_frame = |_frame: hubbub::transport::engineio::frame::Frame<'_>| Flow::Continue;
    if reader.feed(first, &mut on_frame).is_ok() {
        let _ = reader.feed(second, &mut on_frame);
    }
});
