//! Moderation arguments on arbitrary text: ban masks, durations and mode
//! changes must parse or be refused without panicking, a parsed mask must
//! read back as itself (as people read it and as the store keeps it), and
//! matching must not panic.
#![no_main]

use hubbub::hub::policy::{glob, parse_duration, Mask, Modes, Who};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let mut mid = text.len() / 2;
    while !text.is_char_boundary(mid) {
        mid -= 1;
    }
    let (first, second) = text.split_at(mid);
    let _ = parse_duration(text);
    let _ = Modes::default().apply(first, Some(second));
    if let Ok(mask) = Mask::parse(text) {
        assert_eq!(Mask::parse(&mask.to_string()).ok(), Some(mask.clone()));
        assert_eq!(Mask::from_stored(&mask.stored()).ok(), Some(mask.clone()));
        let who = Who {
            nick: second,
            account: Some(second),
            ip: "10.0.0.1".parse().ok(),
            session: (first, 1),
            server_operator: false,
        };
        let _ = mask.matches(&who);
    }
    let _ = glob(first, second);
});
