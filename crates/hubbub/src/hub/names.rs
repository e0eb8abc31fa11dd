//! Nickname and room-name rules, shared by every transport.
//!
//! Nicknames are compared by [`nick_key`]: the Unicode confusable skeleton
//! (UTS #39) of their NFKC form after full case folding, so `alice`, `ALICE`,
//! Cyrillic `аlice` and fullwidth `ａｌｉｃｅ` are one nickname and nobody can
//! pass for another user by spelling; a second key, [`nick_look_alike`],
//! catches upper-case look-alikes that folding hides. Room names are stored
//! under [`fold`] (lowercase); a name that looks like a live or stored
//! room's (same [`nick_key`]) means that room (`Hub::open_room`). The spelling a user chose is kept for
//! display.

use unicode_normalization::UnicodeNormalization;
use unicode_security::GeneralSecurityProfile;

use super::HubError;

/// Longest nickname, in characters.
pub const MAX_NICK_CHARS: usize = 32;
/// Longest room name, in characters.
pub const MAX_ROOM_CHARS: usize = 32;

/// The key two room names are compared (and rooms stored) by: `Games` and
/// `GAMES` are the same room.
pub fn fold(name: &str) -> String {
    name.to_lowercase()
}

/// The key two nicknames are compared by: the UTS #39 skeleton of the NFKC
/// form after full case folding (`internalSkeleton(toCaseFold(NFKC(X)))`),
/// so names that look alike are the same nickname. (Folding first keeps
/// `ALICE` equal to `alice`, but loses the upper-case confusables: `AIice`
/// with a capital i is not `alice`.)
pub fn nick_key(nick: &str) -> String {
    let normalized: String = nick.nfkc().collect();
    let folded = caseless::default_case_fold_str(&normalized);
    unicode_security::skeleton(&folded).collect()
}

/// A second key nicknames are compared by, for what [`nick_key`] folds
/// away: the skeleton of the NFKC form *before* case folding, so an
/// upper-case letter that looks like a lower-case one (`AIice`, with a
/// capital i, and `alice`) is caught. Two nicknames collide when either
/// key does. (It also takes `ALICE` and `allce` for look-alikes: a rare
/// refusal, not a way to pass for someone.)
pub fn nick_look_alike(nick: &str) -> String {
    let normalized: String = nick.nfkc().collect();
    let skeleton: String = unicode_security::skeleton(&normalized).collect();
    caseless::default_case_fold_str(&skeleton)
}

/// Prefix of the names the server gives Socket.IO guests (`guest-N`).
pub const GUEST_PREFIX: &str = "guest-";

/// Whether `nick` is, or looks like, a name the server hands out
/// (`guest-` and digits); users may not choose those.
fn is_server_assigned(nick: &str) -> bool {
    let key = nick_key(nick);
    let digits = nick_key("0123456789");
    key.strip_prefix(nick_key(GUEST_PREFIX).as_str())
        .is_some_and(|rest| !rest.is_empty() && rest.chars().all(|c| digits.contains(c)))
}

/// A character a chosen name may hold: `_`, `-`, or a letter or digit that
/// UTS #39 allows in identifiers (which leaves out invisible and filler
/// characters, compatibility forms such as fullwidth letters, and
/// obsolete scripts).
///
/// Combining marks count (UAX #31's identifiers are letters followed by
/// marks): the vowel signs and viramas of Devanagari, Tamil, Thai, Kannada,
/// Bengali and the other Indic and Southeast Asian scripts are marks, and a
/// name in them is nothing without. A name may not start with one.
fn name_char(c: char) -> bool {
    c == '_'
        || c == '-'
        || ((c.is_alphanumeric() || unicode_normalization::char::is_combining_mark(c))
            && c.identifier_allowed())
}

/// A name as typed, in Unicode's composed form (NFC): `e` + U+0301 and
/// `é` are one spelling, shown and stored once.
pub fn normalize(name: &str) -> std::borrow::Cow<'_, str> {
    use unicode_normalization::{is_nfc_quick, IsNormalized};
    match is_nfc_quick(name.chars()) {
        IsNormalized::Yes => std::borrow::Cow::Borrowed(name),
        _ => std::borrow::Cow::Owned(name.nfc().collect()),
    }
}

/// Whether `name` starts with a combining mark (which would attach to
/// whatever is printed before it).
fn starts_with_mark(name: &str) -> bool {
    name.chars()
        .next()
        .is_some_and(unicode_normalization::char::is_combining_mark)
}

/// Whether `c` may appear in a chosen nickname (ban patterns are checked
/// against the same alphabet, so they cannot hide in invisible characters).
pub fn is_name_char(c: char) -> bool {
    name_char(c)
}

/// Checks a nickname chosen by a user: 1–32 letters, digits, `_` or `-`,
/// starting with a letter or digit, not a name the server hands out
/// (`guest-N`). (Default names, such as a TCP client's `IP:PORT`, are
/// assigned by the server and not subject to this.)
pub fn validate_nick(nick: &str) -> Result<(), HubError> {
    let count = nick.chars().count();
    let first = nick.chars().next();
    if count == 0 {
        return Err(HubError::InvalidNick("a nickname cannot be empty".into()));
    }
    if count > MAX_NICK_CHARS {
        return Err(HubError::InvalidNick(format!(
            "a nickname has at most {MAX_NICK_CHARS} characters"
        )));
    }
    if !nick.chars().all(name_char)
        || first.is_some_and(|c| c == '-' || c == '_')
        || starts_with_mark(nick)
    {
        return Err(HubError::InvalidNick(
            "a nickname is letters, digits, '_' and '-', starting with a letter or digit".into(),
        ));
    }
    if is_server_assigned(nick) {
        return Err(HubError::InvalidNick(format!(
            "names {GUEST_PREFIX}N are given out by the server; choose another"
        )));
    }
    Ok(())
}

/// Checks a room name and strips one leading `#`: 1–32 letters (with
/// their combining marks), digits, `_` or `-`; returns it in composed
/// form ([`normalize`]).
pub fn validate_room(room: &str) -> Result<std::borrow::Cow<'_, str>, HubError> {
    let room = normalize(room.strip_prefix('#').unwrap_or(room));
    let count = room.chars().count();
    if count == 0 {
        return Err(HubError::InvalidRoom("a room name cannot be empty".into()));
    }
    if count > MAX_ROOM_CHARS {
        return Err(HubError::InvalidRoom(format!(
            "a room name has at most {MAX_ROOM_CHARS} characters"
        )));
    }
    if !room.chars().all(name_char) || starts_with_mark(&room) {
        return Err(HubError::InvalidRoom(
            "a room name is letters, digits, '_' and '-'".into(),
        ));
    }
    Ok(room)
}

/// Checks chat text from a transport that does not frame lines itself
/// (Socket.IO): at most `max_bytes`, and no control characters but TAB, so
/// it cannot forge extra lines or terminal escapes on line clients.
pub fn validate_text(text: &str, max_bytes: usize) -> Result<(), HubError> {
    if text.len() > max_bytes {
        return Err(HubError::TooLarge(max_bytes));
    }
    if text.chars().any(|c| c.is_control() && c != '\t') {
        return Err(HubError::InvalidText(
            "text cannot contain control characters (such as newlines)".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_capital_i_for_an_l_is_caught_by_the_second_key() {
        assert_ne!(nick_key("AIice"), nick_key("alice"));
        assert_eq!(nick_look_alike("AIice"), nick_look_alike("alice"));
        assert_eq!(nick_key("ALICE"), nick_key("alice"));
    }

    #[test]
    fn nicks() {
        assert!(validate_nick("alice").is_ok());
        assert!(validate_nick("Zoë_2-x").is_ok());
        assert!(validate_nick("名前").is_ok());
        assert!(validate_nick("").is_err());
        assert!(validate_nick("-dash").is_err());
        assert!(validate_nick("a b").is_err());
        assert!(validate_nick("127.0.0.1:80").is_err());
        assert!(validate_nick(&"x".repeat(32)).is_ok());
        assert!(validate_nick(&"x".repeat(33)).is_err());
        assert_eq!(fold("ALICE"), fold("alice"));
    }

    #[test]
    fn look_alike_nicks_are_one_nick() {
        let alice = nick_key("alice");
        assert_eq!(nick_key("ALICE"), alice);
        assert_eq!(nick_key("\u{430}lice"), alice, "Cyrillic a");
        assert_eq!(nick_key("ａｌｉｃｅ"), alice, "fullwidth");
        assert_eq!(nick_key("evan"), nick_key("\u{435}van"), "Cyrillic e");
        assert_eq!(nick_key("STRASSE"), nick_key("straße"), "full case folding");
        assert_ne!(nick_key("alice"), nick_key("alicia"));
    }

    #[test]
    fn invisible_filler_and_compatibility_characters_are_refused() {
        assert!(validate_nick("ev\u{200b}an").is_err(), "zero-width space");
        assert!(validate_nick("\u{3164}").is_err(), "Hangul filler");
        assert!(validate_nick("ev\u{3164}an").is_err(), "Hangul filler");
        assert!(validate_nick("ｅｖａｎ").is_err(), "fullwidth");
        assert!(
            validate_nick("\u{301}evan").is_err(),
            "a leading combining mark"
        );
    }

    #[test]
    fn every_script_with_its_marks_is_a_name() {
        for name in [
            "नमस्ते",     // Devanagari: vowel signs and a virama
            "தமிழ்",     // Tamil
            "สวัสดี",     // Thai
            "ಕನ್ನಡ",     // Kannada
            "বাংলা",      // Bengali
            "Ελληνικά", // Greek
            "עברית",    // Hebrew
            "한국어",   // Hangul
        ] {
            assert!(validate_nick(name).is_ok(), "nickname {name}");
            assert!(validate_room(name).is_ok(), "room {name}");
        }
        // Decomposed and composed: one name.
        let decomposed = "e\u{301}mile";
        assert!(validate_nick(decomposed).is_ok());
        assert_eq!(normalize(decomposed), "\u{e9}mile");
        assert_eq!(nick_key(decomposed), nick_key("\u{e9}mile"));
        assert_eq!(validate_room(decomposed).unwrap(), "\u{e9}mile");
    }

    use proptest::strategy::Strategy;

    proptest::proptest! {
        #[test]
        fn composed_and_decomposed_forms_are_one_name(
            chars in proptest::collection::vec(
                proptest::prelude::any::<char>()
                    .prop_filter("a name character", |c| name_char(*c)),
                1..12,
            )
        ) {
            let name: String = chars.into_iter().collect();
            let nfc: String = name.nfc().collect();
            let nfd: String = name.nfd().collect();
            proptest::prop_assert_eq!(nick_key(&nfc), nick_key(&nfd));
            proptest::prop_assert_eq!(normalize(&nfd).into_owned(), nfc.clone());
            // What composes to an accepted room name is accepted decomposed.
            if validate_room(&nfc).is_ok() {
                proptest::prop_assert_eq!(validate_room(&nfd).unwrap().into_owned(), nfc);
            }
        }
    }

    #[test]
    fn server_assigned_names_cannot_be_chosen() {
        assert!(validate_nick("guest-557").is_err());
        assert!(validate_nick("GUEST-1").is_err());
        assert!(validate_nick("gu\u{435}st-1").is_err(), "Cyrillic e");
        assert!(validate_nick("guest-").is_ok());
        assert!(validate_nick("guest-bob").is_ok());
        assert!(validate_nick("guest").is_ok());
    }

    #[test]
    fn texts() {
        assert!(validate_text("hello ✓\ttab", 100).is_ok());
        assert_eq!(validate_text("abc", 2), Err(HubError::TooLarge(2)));
        assert!(validate_text("two\nlines", 100).is_err());
        assert!(validate_text("esc\x1b[1m", 100).is_err());
    }

    #[test]
    fn rooms() {
        assert_eq!(validate_room("#games").unwrap(), "games");
        assert_eq!(validate_room("lobby").unwrap(), "lobby");
        assert!(validate_room("#").is_err());
        assert!(validate_room("a/b").is_err());
        assert!(validate_room(&"r".repeat(33)).is_err());
    }
}
