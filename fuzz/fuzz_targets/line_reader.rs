//! The TCP line reader on arbitrary bytes, fed in arbitrary chunks: it must
//! not panic, and every line it yields is within the limit and has no LF.
#![no_main]

use hubbub::transport::line::reader::{Line, LineReader};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&cut, bytes)) = data.split_first() else {
        return;
    };
    let max = 1 + (cut as usize % 64);
    let mut reader = LineReader::new(max);
    let split = (cut as usize * 7) % (bytes.len() + 1);
    for chunk in [&bytes[..split], &bytes[split..]] {
        reader.feed(chunk);
        while let Some(line) = reader.take_line() {
            check(&line, max);
        }
    }
    reader.finish();
    while let Some(line) = reader.take_line() {
        check(&line, max);
    }
});

fn check(line: &Line, max: usize) {
    if let Line::Text(text) = line {
        assert!(text.len() <= max);
        assert!(!text.contains('\n'));
    }
}
