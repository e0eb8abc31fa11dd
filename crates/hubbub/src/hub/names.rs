//! Nickname and room-name rules, shared by every transport.
//!
//! Both are compared case-insensitively through [`fold`]; the spelling a user
//! chose is kept for display.

use super::HubError;

/// Longest nickname, in characters.
pub const MAX_NICK_CHARS: usize = 32;
/// Longest room name, in characters.
pub const MAX_ROOM_CHARS: usize = 32;

/// The key two names are compared by: `Alice` and `ALICE` are the same nick.
pub fn fold(name: &str) -> String {
    name.to_lowercase()
}

fn name_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '-'
}

/// Checks a nickname chosen by a user: 1–32 letters, digits, `_` or `-`,
/// starting with a letter or digit. (Default names, such as a TCP client's
/// `IP:PORT`, are assigned by the server and not subject to this.)
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
    if !nick.chars().all(name_char) || first.is_some_and(|c| c == '-' || c == '_') {
        return Err(HubError::InvalidNick(
            "a nickname is letters, digits, '_' and '-', starting with a letter or digit".into(),
        ));
    }
    Ok(())
}

/// Checks a room name and strips one leading `#`: 1–32 letters, digits, `_` or `-`.
pub fn validate_room(room: &str) -> Result<&str, HubError> {
    let room = room.strip_prefix('#').unwrap_or(room);
    let count = room.chars().count();
    if count == 0 {
        return Err(HubError::InvalidRoom("a room name cannot be empty".into()));
    }
    if count > MAX_ROOM_CHARS {
        return Err(HubError::InvalidRoom(format!(
            "a room name has at most {MAX_ROOM_CHARS} characters"
        )));
    }
    if !room.chars().all(name_char) {
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
