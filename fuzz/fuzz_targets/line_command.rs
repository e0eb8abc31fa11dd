//! The line protocol's command parser on arbitrary text (what the line
//! reader lets through): it must not panic.
#![no_main]

use hubbub::transport::line::command::parse;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let _ = parse(text);
});
