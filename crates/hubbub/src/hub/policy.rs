//! Room policy: who runs a room and who may enter and speak in it — its
//! owner, operators and voiced members, its modes, bans, mutes and
//! invitations — and its topic: IRC's channel modes and ban masks, in
//! hubbub's words (docs/PROTOCOL.md, "Moderation"). One [`Policy`] per
//! room, and one for the whole server (server-wide bans), stored as JSON
//! in the history store so every node and a restart see the same.
//!
//! This file holds the data and the rules that read it; changing a policy
//! and enforcing it on the members present is in `hub::moderation`.

use std::collections::BTreeSet;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::{names, HubError};

/// Most bans (and, separately, mutes and invitations, and operators and
/// voiced members) one policy holds: a bound on what a room's operators
/// can make every node keep.
pub const MAX_ENTRIES: usize = 500;
/// Longest topic, in bytes.
pub const MAX_TOPIC_BYTES: usize = 400;
/// Longest ban reason, in bytes.
pub const MAX_REASON_BYTES: usize = 200;

/// A room's (or the server's) policy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Policy {
    /// The room's display name as first spelled (a room with a policy
    /// but no message yet has no other record of it).
    pub name: Option<String>,
    /// Account key of the owner: the logged-in user who created the room.
    pub owner: Option<String>,
    pub topic: Option<Topic>,
    pub modes: Modes,
    /// Account keys of the room's operators (besides the owner).
    pub ops: BTreeSet<String>,
    /// Nickname keys of voiced members: they may speak in a moderated room.
    pub voiced: BTreeSet<String>,
    pub bans: Vec<Ban>,
    /// Who may be in the room but not speak (IRC's quiet).
    pub mutes: Vec<Ban>,
    /// Nickname keys invited into an invite-only room.
    pub invites: BTreeSet<String>,
}

/// A room's topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Topic {
    pub text: String,
    /// Who set it (a nickname).
    pub by: String,
    /// When, in milliseconds since the Unix epoch.
    pub ms: u64,
}

/// A room's modes, set by its operators.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Modes {
    /// `+i`: only the invited (and operators) may join.
    pub invite_only: bool,
    /// `+m`: only operators and voiced members may speak.
    pub moderated: bool,
    /// `+R`: only logged-in users may join.
    pub registered_only: bool,
    /// `-t`: anyone in the room may set the topic (`+t`, the default: only
    /// operators).
    pub open_topic: bool,
    /// `+l N`: at most N members.
    pub limit: Option<u32>,
}

impl Modes {
    /// `+imR`, `+l 10`… as IRC writes them (`+` alone when none are set).
    pub fn describe(&self) -> String {
        let mut flags = String::from("+");
        for (on, flag) in [
            (self.invite_only, 'i'),
            (self.moderated, 'm'),
            (self.registered_only, 'R'),
            (!self.open_topic, 't'),
        ] {
            if on {
                flags.push(flag);
            }
        }
        match self.limit {
            Some(limit) => format!("{flags}l {limit}"),
            None => flags,
        }
    }

    /// Applies a change such as `+i`, `-m`, `+l 20`, `-l`, `+R`, `-t`.
    ///
    /// Errors: `bad_mode` for anything else.
    pub fn apply(&mut self, change: &str, arg: Option<&str>) -> Result<(), HubError> {
        let bad = || HubError::BadMode(change.to_string());
        let mut chars = change.chars();
        let on = match chars.next() {
            Some('+') => true,
            Some('-') => false,
            _ => return Err(bad()),
        };
        let flag = chars.next().ok_or_else(bad)?;
        if chars.next().is_some() {
            return Err(bad());
        }
        match flag {
            'i' => self.invite_only = on,
            'm' => self.moderated = on,
            'R' => self.registered_only = on,
            't' => self.open_topic = !on,
            'l' if on => {
                let limit = arg
                    .and_then(|a| a.parse::<u32>().ok())
                    .filter(|&n| n > 0)
                    .ok_or_else(bad)?;
                self.limit = Some(limit);
            }
            'l' => self.limit = None,
            _ => return Err(bad()),
        }
        Ok(())
    }
}

/// Whom a ban or mute covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum Mask {
    /// The account of this nickname (logged in to it, on any device).
    Account(String),
    /// Nicknames matching this pattern (`*` any run, `?` one character),
    /// compared by [`names::nick_key`] like nicknames themselves (the
    /// pattern is kept as written: folding is not idempotent).
    Nick(String),
    /// Addresses in this network (`10.0.0.0/8`, a single address).
    Ip(ipnet::IpNet),
}

impl Mask {
    /// `account:NAME`, `nick:PATTERN`, `ip:ADDR[/BITS]`; a bare word with
    /// `*` or `?` is a nickname pattern, a bare address an IP ban, any other
    /// bare word a nickname (`nick:` without wildcards).
    ///
    /// Errors: `bad_mask`.
    pub fn parse(text: &str) -> Result<Mask, HubError> {
        let bad = || HubError::BadMask(text.chars().take(64).collect());
        if text.is_empty() || text.len() > 100 || text.chars().any(char::is_whitespace) {
            return Err(bad());
        }
        let ip = |s: &str| {
            s.parse::<IpAddr>()
                .map(|ip| ipnet::IpNet::from(ip.to_canonical()))
                .or_else(|_| s.parse::<ipnet::IpNet>())
                .map(|net| Mask::Ip(net.trunc()))
                .map_err(|_| bad())
        };
        // A pattern names someone: wildcards alone (everyone) are refused.
        let nick = |s: &str| {
            if s.chars().all(|c| c == '*' || c == '?') || s.contains(':') {
                return Err(bad());
            }
            Ok(Mask::Nick(s.to_string()))
        };
        if let Some(rest) = text.strip_prefix("account:") {
            names::validate_nick(rest).map_err(|_| bad())?;
            return Ok(Mask::Account(rest.to_string()));
        }
        if let Some(rest) = text.strip_prefix("nick:") {
            return nick(rest);
        }
        if let Some(rest) = text.strip_prefix("ip:") {
            return ip(rest);
        }
        if text.parse::<IpAddr>().is_ok() || text.parse::<ipnet::IpNet>().is_ok() {
            return ip(text);
        }
        nick(text)
    }

    /// Whether `who` is covered.
    pub fn matches(&self, who: &Who<'_>) -> bool {
        match self {
            Mask::Account(name) => who.account.as_deref() == Some(names::nick_key(name).as_str()),
            Mask::Nick(pattern) => glob(&fold_pattern(pattern), &names::nick_key(who.nick)),
            Mask::Ip(net) => who.ip.is_some_and(|ip| net.contains(&ip.to_canonical())),
        }
    }
}

impl std::fmt::Display for Mask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mask::Account(key) => write!(f, "account:{key}"),
            Mask::Nick(pattern) => write!(f, "nick:{pattern}"),
            Mask::Ip(net) if net.prefix_len() == net.max_prefix_len() => {
                write!(f, "ip:{}", net.addr())
            }
            Mask::Ip(net) => write!(f, "ip:{net}"),
        }
    }
}

impl From<Mask> for String {
    fn from(mask: Mask) -> String {
        mask.to_string()
    }
}

impl TryFrom<String> for Mask {
    type Error = HubError;
    fn try_from(text: String) -> Result<Mask, HubError> {
        Mask::parse(&text)
    }
}

/// A nickname pattern in comparison form: each run between wildcards
/// folded like a nickname.
fn fold_pattern(pattern: &str) -> String {
    let mut out = String::new();
    let mut run = String::new();
    for c in pattern.chars() {
        if c == '*' || c == '?' {
            out.push_str(&names::nick_key(&run));
            run.clear();
            out.push(c);
        } else {
            run.push(c);
        }
    }
    out.push_str(&names::nick_key(&run));
    out
}

/// Glob match (`*`, `?`) of `pattern` against `text`, by characters; linear
/// in their lengths (backtracking only to the last `*`).
pub fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// A ban or mute.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ban {
    pub mask: Mask,
    pub reason: Option<String>,
    /// Who set it (a nickname).
    pub by: String,
    /// When, in milliseconds since the Unix epoch.
    pub ms: u64,
    /// Until when, if not for good (milliseconds since the Unix epoch).
    pub until: Option<u64>,
}

impl Ban {
    pub fn active(&self, now_ms: u64) -> bool {
        self.until.is_none_or(|until| now_ms < until)
    }
}

/// Someone a policy is applied to.
#[derive(Debug, Clone)]
pub struct Who<'a> {
    pub nick: &'a str,
    /// The account key, when logged in.
    pub account: Option<String>,
    pub ip: Option<IpAddr>,
}

impl Policy {
    /// The active ban covering `who`, if any.
    pub fn ban_of(&self, who: &Who<'_>, now_ms: u64) -> Option<&Ban> {
        self.bans
            .iter()
            .find(|b| b.active(now_ms) && b.mask.matches(who))
    }

    /// The active mute covering `who`, if any.
    pub fn mute_of(&self, who: &Who<'_>, now_ms: u64) -> Option<&Ban> {
        self.mutes
            .iter()
            .find(|b| b.active(now_ms) && b.mask.matches(who))
    }

    /// Whether `who` runs this room: its owner or one of its operators,
    /// logged in (server operators are checked by the caller).
    pub fn is_op(&self, who: &Who<'_>) -> bool {
        who.account
            .as_deref()
            .is_some_and(|a| self.owner.as_deref() == Some(a) || self.ops.contains(a))
    }

    /// Whether `who` may enter now, with `members` in the room already.
    /// Operators (`op`: the room's, or the server's) pass every check.
    ///
    /// Errors: `banned`, `invite_only`, `registered_only`, `room_full`.
    pub fn may_enter(
        &self,
        room: &str,
        who: &Who<'_>,
        members: usize,
        op: bool,
        now_ms: u64,
    ) -> Result<(), HubError> {
        if op {
            return Ok(());
        }
        self.refuse_banned(room, who, now_ms)?;
        let invited = self.invites.contains(&names::nick_key(who.nick));
        if self.modes.invite_only && !invited {
            return Err(HubError::InviteOnly(room.to_string()));
        }
        if self.modes.registered_only && who.account.is_none() {
            return Err(HubError::RegisteredOnly(room.to_string()));
        }
        if let Some(limit) = self.modes.limit {
            if members >= limit as usize && !invited {
                return Err(HubError::RoomFull(room.to_string(), limit));
            }
        }
        Ok(())
    }

    /// Whether `who` may speak in the room now.
    ///
    /// Errors: `muted` (banned or muted), `moderated` (not voiced).
    pub fn may_speak(
        &self,
        room: &str,
        who: &Who<'_>,
        op: bool,
        now_ms: u64,
    ) -> Result<(), HubError> {
        if op {
            return Ok(());
        }
        if self.ban_of(who, now_ms).is_some() || self.mute_of(who, now_ms).is_some() {
            return Err(HubError::Muted(room.to_string()));
        }
        if self.modes.moderated && !self.voiced.contains(&names::nick_key(who.nick)) {
            return Err(HubError::Moderated(room.to_string()));
        }
        Ok(())
    }

    /// Drops expired bans and mutes; returns whether any were.
    pub fn expire(&mut self, now_ms: u64) -> bool {
        let before = self.bans.len() + self.mutes.len();
        self.bans.retain(|b| b.active(now_ms));
        self.mutes.retain(|b| b.active(now_ms));
        before != self.bans.len() + self.mutes.len()
    }

    /// The soonest expiry of a ban or mute, if any is timed.
    pub fn next_expiry(&self) -> Option<u64> {
        self.bans
            .iter()
            .chain(&self.mutes)
            .filter_map(|b| b.until)
            .min()
    }

    /// Refuses `who` from `place` (a room, or "this server") if an active
    /// ban covers them.
    ///
    /// Errors: `banned`, with the ban's reason.
    pub fn refuse_banned(&self, place: &str, who: &Who<'_>, now_ms: u64) -> Result<(), HubError> {
        match self.ban_of(who, now_ms) {
            Some(ban) => Err(HubError::Banned(place.to_string(), reason_of(ban))),
            None => Ok(()),
        }
    }

    /// Whether this is the policy of a room nobody ever set anything on.
    pub fn is_default(&self) -> bool {
        *self == Policy::default()
    }
}

/// `: REASON` (or nothing), for refusals.
fn reason_of(ban: &Ban) -> String {
    ban.reason
        .as_deref()
        .map(|r| format!(": {r}"))
        .unwrap_or_default()
}

/// Parses a duration such as `30s`, `10m`, `2h`, `7d` (at most a year)
/// into milliseconds.
///
/// Errors: `bad_duration`.
pub fn parse_duration(text: &str) -> Result<u64, HubError> {
    let bad = || HubError::BadDuration(text.chars().take(32).collect());
    let split = text.len().checked_sub(1).ok_or_else(bad)?;
    if !text.is_char_boundary(split) {
        return Err(bad());
    }
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().map_err(|_| bad())?;
    let seconds = match unit {
        "s" => n,
        "m" => n.checked_mul(60).ok_or_else(bad)?,
        "h" => n.checked_mul(3600).ok_or_else(bad)?,
        "d" => n.checked_mul(86_400).ok_or_else(bad)?,
        _ => return Err(bad()),
    };
    if seconds == 0 || seconds > 366 * 86_400 {
        return Err(bad());
    }
    Ok(seconds * 1000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn masks_cover_accounts_nicknames_and_networks() {
        let bob = Who {
            nick: "Bob_99",
            account: Some("bob_99".into()),
            ip: Some("10.1.2.3".parse().unwrap()),
        };
        for (mask, covers) in [
            ("account:BOB_99", true),
            ("account:alice", false),
            ("bob*", true),
            ("nick:b?b_99", true),
            ("nick:*_9", false),
            ("Bob_99", true),
            ("10.0.0.0/8", true),
            ("ip:10.1.2.3", true),
            ("10.1.2.4", false),
            ("::ffff:10.1.2.3", true),
        ] {
            let parsed = Mask::parse(mask).unwrap();
            assert_eq!(parsed.matches(&bob), covers, "{mask} → {parsed}");
        }
        for bad in [
            "",
            "*",
            "account:",
            "ip:300.1.1.1",
            "nick:a b",
            "account:a:b",
        ] {
            assert!(Mask::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn bans_and_mutes_expire() {
        let mut policy = Policy::default();
        policy.bans.push(Ban {
            mask: Mask::parse("eve").unwrap(),
            reason: Some("spam".into()),
            by: "op".into(),
            ms: 0,
            until: Some(1000),
        });
        let eve = Who {
            nick: "eve",
            account: None,
            ip: None,
        };
        assert!(matches!(
            policy.may_enter("r", &eve, 0, false, 999),
            Err(HubError::Banned(_, _))
        ));
        assert!(policy.may_enter("r", &eve, 0, false, 1000).is_ok());
        assert_eq!(policy.next_expiry(), Some(1000));
        assert!(policy.expire(1000));
        assert!(policy.bans.is_empty());
    }

    #[test]
    fn modes_apply_and_describe() {
        let mut modes = Modes::default();
        assert_eq!(modes.describe(), "+t");
        modes.apply("+i", None).unwrap();
        modes.apply("+m", None).unwrap();
        modes.apply("-t", None).unwrap();
        modes.apply("+l", Some("20")).unwrap();
        assert_eq!(modes.describe(), "+iml 20");
        for (bad, arg) in [
            ("+x", None),
            ("i", None),
            ("+l", None),
            ("+l", Some("0")),
            ("+ii", None),
        ] {
            assert!(modes.apply(bad, arg).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s").unwrap(), 90_000);
        assert_eq!(parse_duration("2h").unwrap(), 7_200_000);
        for bad in ["", "h", "0m", "5y", "999999999999999d", "é"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn parsing_arbitrary_masks_and_durations_never_panics(text in "\\PC{0,120}") {
            let _ = Mask::parse(&text);
            let _ = parse_duration(&text);
            let _ = Modes::default().apply(&text, Some(&text));
        }

        #[test]
        fn a_mask_reads_back_as_written(
            nick in "[a-z][a-z0-9_]{0,10}\\*?",
            a in 0u8..=255, b in 0u8..=255, bits in 8u8..=32,
        ) {
            for text in [format!("nick:{nick}"), format!("ip:{a}.{b}.0.0/{bits}")] {
                let mask = Mask::parse(&text).unwrap();
                prop_assert_eq!(Mask::parse(&mask.to_string()).unwrap(), mask);
            }
        }

        #[test]
        fn glob_agrees_with_a_regex_free_reference(p in "[ab*?]{0,8}", t in "[ab]{0,8}") {
            fn reference(p: &[char], t: &[char]) -> bool {
                match (p.first(), t.first()) {
                    (None, None) => true,
                    (Some('*'), _) => reference(&p[1..], t) || (!t.is_empty() && reference(p, &t[1..])),
                    (Some('?'), Some(_)) => reference(&p[1..], &t[1..]),
                    (Some(c), Some(d)) if c == d => reference(&p[1..], &t[1..]),
                    _ => false,
                }
            }
            let (pc, tc): (Vec<char>, Vec<char>) = (p.chars().collect(), t.chars().collect());
            prop_assert_eq!(glob(&p, &t), reference(&pc, &tc));
        }
    }
}
