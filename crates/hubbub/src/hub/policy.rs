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
    /// Account id of the owner: the logged-in user who created the room.
    pub owner: Option<String>,
    pub topic: Option<Topic>,
    pub modes: Modes,
    /// Account ids of the room's operators (besides the owner).
    pub ops: BTreeSet<String>,
    /// Voiced members, who may speak in a moderated room: account ids, or
    /// guests' session subjects ([`session_subject`]).
    pub voiced: BTreeSet<String>,
    pub bans: Vec<Ban>,
    /// Who may be in the room but not speak (IRC's quiet).
    pub mutes: Vec<Ban>,
    /// Invited into an invite-only room: account ids, or guests' session
    /// subjects.
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
///
/// As typed by an operator ([`Mask::parse`]) and as stored
/// ([`Mask::stored`], [`Mask::from_stored`]): an account by its stable id
/// (with the name it had, for people), a nickname pattern, or an address
/// range. (A guest is its session: a ban set on a guest who is here also
/// names its session, in [`Ban::sessions`].)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum Mask {
    /// An account, whatever nickname it uses, on any device. `id` is the
    /// account's stable id (empty until resolved: matches nobody); `name`
    /// is how it was named, for display only.
    Account { id: String, name: String },
    /// Nicknames matching this pattern (`*` any run, `?` one character),
    /// compared as nickname uniqueness compares them — by [`names::nick_key`]
    /// and by [`names::nick_look_alike`] — so a name refused as looking
    /// like a banned one is covered too (the pattern is kept as written:
    /// folding is not idempotent).
    Nick(String),
    /// Addresses in this network (`10.0.0.0/8`, a single address).
    Ip(ipnet::IpNet),
}

/// Narrowest prefix a room operator may ban by address: wider ranges need
/// a server operator (IPv4, IPv6).
pub const MAX_ROOM_BAN_WIDTH: (u8, u8) = (16, 32);

impl Mask {
    /// A mask as an operator types it: `account:NAME`, `nick:PATTERN`,
    /// `ip:ADDR[/BITS]`; a bare word with `*` or `?` is a nickname
    /// pattern, a bare address (or anything shaped like one) an address
    /// ban, any other bare word a nickname (`nick:` without wildcards; the
    /// moderation layer turns the nickname of someone present into their
    /// account or session). `account:NAME` comes back unresolved (an empty
    /// id) for the caller to look up.
    ///
    /// Refused (`bad_mask`): a pattern whose literal part is empty or holds
    /// characters no nickname has (invisible, control, punctuation other
    /// than guest names' `.:[]`), so `*`, `*\u{200b}*` or look-alike
    /// wildcards name nobody rather than everyone; an address that does not
    /// parse (`300.1.1.1`), a prefix longer than the address
    /// (`/33`), or a network with host bits set (`10.1.2.3/8`: did you mean
    /// `10.0.0.0/8`?).
    pub fn parse(text: &str) -> Result<Mask, HubError> {
        let bad = || HubError::BadMask(text.chars().take(64).collect());
        if text.is_empty() || text.len() > 100 || text.chars().any(char::is_whitespace) {
            return Err(bad());
        }
        if let Some(rest) = text.strip_prefix("account:") {
            names::validate_nick(rest).map_err(|_| bad())?;
            return Ok(Mask::Account {
                id: String::new(),
                name: rest.to_string(),
            });
        }
        if let Some(rest) = text.strip_prefix("nick:") {
            return nick_pattern(rest).ok_or_else(bad);
        }
        if let Some(rest) = text.strip_prefix("ip:") {
            return ip_mask(rest).ok_or_else(bad);
        }
        if looks_like_address(text) {
            return ip_mask(text).ok_or_else(bad);
        }
        nick_pattern(text).ok_or_else(bad)
    }

    /// The form the store keeps: `account:NAME@ID`, `nick:PATTERN`,
    /// `ip:NET`.
    pub fn stored(&self) -> String {
        match self {
            Mask::Account { id, name } => format!("account:{name}@{id}"),
            other => other.to_string(),
        }
    }

    /// Reads [`Mask::stored`]'s form back; lenient, as a reader of what
    /// this or an earlier version wrote must be (a policy that does not
    /// read back is refused whole): `account:NAME` without an id (written
    /// before accounts had ids) means the account whose id is NAME's key,
    /// which is what such accounts' ids are; `nick:` patterns are taken as
    /// stored, whatever rules for new ones say; a network with host bits
    /// set is taken as its network.
    ///
    /// Errors: `bad_mask` for an address that does not parse, or a form
    /// no version writes.
    pub fn from_stored(text: &str) -> Result<Mask, HubError> {
        let bad = || HubError::BadMask(text.chars().take(64).collect());
        if let Some(rest) = text.strip_prefix("account:") {
            return Ok(match rest.split_once('@') {
                Some((name, id)) => Mask::Account {
                    id: id.to_string(),
                    name: name.to_string(),
                },
                None => Mask::Account {
                    id: names::nick_key(rest),
                    name: rest.to_string(),
                },
            });
        }
        if let Some(rest) = text.strip_prefix("nick:") {
            return Ok(Mask::Nick(rest.to_string()));
        }
        if let Some(rest) = text.strip_prefix("ip:") {
            return match ip_mask(rest) {
                Some(mask) => Ok(mask),
                None => rest
                    .parse::<ipnet::IpNet>()
                    .map(|net| Mask::Ip(net.trunc()))
                    .map_err(|_| bad()),
            };
        }
        Mask::parse(text)
    }

    /// Whether only a server operator may set this mask in a room: an
    /// address range wider than [`MAX_ROOM_BAN_WIDTH`].
    pub fn is_wide(&self) -> bool {
        match self {
            Mask::Ip(ipnet::IpNet::V4(net)) => net.prefix_len() < MAX_ROOM_BAN_WIDTH.0,
            Mask::Ip(ipnet::IpNet::V6(net)) => net.prefix_len() < MAX_ROOM_BAN_WIDTH.1,
            _ => false,
        }
    }

    /// Whether `who` is covered.
    pub fn matches(&self, who: &Who<'_>) -> bool {
        match self {
            Mask::Account { id, .. } => !id.is_empty() && who.account == Some(id.as_str()),
            Mask::Nick(pattern) => {
                glob(
                    &fold_pattern(pattern, names::nick_key),
                    &names::nick_key(who.nick),
                ) || glob(
                    &fold_pattern(pattern, names::nick_look_alike),
                    &names::nick_look_alike(who.nick),
                )
            }
            Mask::Ip(net) => who.ip.is_some_and(|ip| net.contains(&ip.to_canonical())),
        }
    }
}

/// Whether `text` is shaped like an address or network (digits and dots,
/// hex and colons, a `/` prefix), so it is parsed as one — and refused if
/// it is not a valid one — instead of becoming a nickname pattern that
/// matches nobody.
fn looks_like_address(text: &str) -> bool {
    text.contains('/')
        || (text.contains('.') && text.chars().all(|c| c.is_ascii_digit() || c == '.'))
        || (text.contains(':')
            && text
                .chars()
                .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.'))
}

/// An address or network, validated: host bits must be zero.
fn ip_mask(text: &str) -> Option<Mask> {
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(Mask::Ip(ipnet::IpNet::from(ip.to_canonical())));
    }
    let net = text.parse::<ipnet::IpNet>().ok()?;
    let net = match net {
        ipnet::IpNet::V6(v6) => match v6.addr().to_ipv4_mapped() {
            Some(v4) if v6.prefix_len() >= 96 => {
                ipnet::IpNet::V4(ipnet::Ipv4Net::new(v4, v6.prefix_len() - 96).ok()?)
            }
            _ => net,
        },
        _ => net,
    };
    (net.trunc() == net).then_some(Mask::Ip(net))
}

/// A nickname pattern, if its literal part names someone: characters a
/// nickname (or a guest's `IP:PORT` name) can hold, at least one letter
/// or digit, and something left after folding.
fn nick_pattern(text: &str) -> Option<Mask> {
    let literal: String = text.chars().filter(|c| *c != '*' && *c != '?').collect();
    let allowed = |c: char| names::is_name_char(c) || matches!(c, '.' | ':' | '[' | ']');
    if literal.is_empty()
        || !literal.chars().all(allowed)
        || !literal.chars().any(char::is_alphanumeric)
        || names::nick_key(&literal).is_empty()
    {
        return None;
    }
    Some(Mask::Nick(text.to_string()))
}

impl std::fmt::Display for Mask {
    /// The form people read: `account:NAME`, `nick:PATTERN`, `ip:NET`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mask::Account { name, .. } => write!(f, "account:{name}"),
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
        mask.stored()
    }
}

impl TryFrom<String> for Mask {
    type Error = HubError;
    fn try_from(text: String) -> Result<Mask, HubError> {
        Mask::from_stored(&text)
    }
}

/// A nickname pattern in comparison form: each run between wildcards
/// folded by `key` as nicknames are.
fn fold_pattern(pattern: &str, key: fn(&str) -> String) -> String {
    let mut out = String::new();
    let mut run = String::new();
    for c in pattern.chars() {
        if c == '*' || c == '?' {
            out.push_str(&key(&run));
            run.clear();
            out.push(c);
        } else {
            run.push(c);
        }
    }
    out.push_str(&key(&run));
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
    /// The sessions of the person it was set on, when set on someone
    /// present ([`session_subject`]s): covered too, so that a logout or a
    /// rename sheds nothing. One entry in listings, lifted with the mask.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub sessions: BTreeSet<String>,
    /// The rank of whoever set it: only someone ranked as high may lift it
    /// (an operator cannot undo the owner's ban, nor a room operator a
    /// server operator's). Bans from before ranks were kept have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rank: Option<super::gate::Rank>,
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

    /// Whether `who` is covered: by the mask, or as one of the sessions.
    pub fn covers(&self, who: &Who<'_>) -> bool {
        self.mask.matches(who)
            || (!self.sessions.is_empty() && self.sessions.contains(&who.session_subject()))
    }
}

/// Someone a policy is applied to: a person, not a nickname. A logged-in
/// user is their account's stable id; a guest is its session (and its
/// address). The nickname only matters to nickname patterns.
#[derive(Debug, Clone)]
pub struct Who<'a> {
    pub nick: &'a str,
    /// The account's stable id, when logged in (`StoredAccount::id`).
    pub account: Option<&'a str>,
    pub ip: Option<IpAddr>,
    /// The session: the node it is on (`""` for a single server) and its
    /// id there.
    pub session: (&'a str, u64),
    /// A server operator (confirmed by the administrator, logged in).
    pub server_operator: bool,
}

impl Who<'_> {
    /// The subject string of this session, as guests' grants and bans
    /// name it: `session:NODE/ID`.
    pub fn session_subject(&self) -> String {
        session_subject(self.session.0, self.session.1)
    }

    /// Whether a set of subjects (voice, invitations) names this person:
    /// its account, or, for a guest, its session.
    pub fn named_in(&self, subjects: &BTreeSet<String>) -> bool {
        match self.account {
            Some(id) => subjects.contains(id),
            None => subjects.contains(&self.session_subject()),
        }
    }
}

/// `session:NODE/ID`: a guest session as a subject.
pub fn session_subject(node: &str, id: u64) -> String {
    format!("session:{node}/{id}")
}

impl Policy {
    /// The active ban covering `who`, if any.
    pub fn ban_of(&self, who: &Who<'_>, now_ms: u64) -> Option<&Ban> {
        self.bans.iter().find(|b| b.active(now_ms) && b.covers(who))
    }

    /// The active mute covering `who`, if any.
    pub fn mute_of(&self, who: &Who<'_>, now_ms: u64) -> Option<&Ban> {
        self.mutes
            .iter()
            .find(|b| b.active(now_ms) && b.covers(who))
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

    fn bob() -> Who<'static> {
        Who {
            nick: "Bob_99",
            account: Some("~b0b"),
            ip: Some("10.1.2.3".parse().unwrap()),
            session: ("", 4),
            server_operator: false,
        }
    }

    #[test]
    fn masks_cover_accounts_nicknames_and_networks() {
        let bob = bob();
        for (mask, covers) in [
            ("bob*", true),
            ("nick:b?b_99", true),
            ("nick:*_9", false),
            ("Bob_99", true),
            ("10.0.0.0/8", true),
            ("ip:10.1.2.3", true),
            ("10.1.2.4", false),
            ("::ffff:10.1.2.3", true),
            ("::ffff:10.0.0.0/104", true),
        ] {
            let parsed = Mask::parse(mask).unwrap();
            assert_eq!(parsed.matches(&bob), covers, "{mask} → {parsed}");
        }
        let account = Mask::Account {
            id: "~b0b".into(),
            name: "Bob_99".into(),
        };
        assert!(account.matches(&bob));
        // The same name, another account (deleted and registered again).
        let stranger = Who {
            account: Some("~5742"),
            ..bob.clone()
        };
        assert!(!account.matches(&stranger));
        // Unresolved (as typed): nobody.
        assert!(!Mask::parse("account:Bob_99").unwrap().matches(&bob));
    }

    #[test]
    fn masks_that_name_nobody_or_everybody_are_refused() {
        for bad in [
            "",
            "*",
            "**?*",
            "account:",
            "ip:300.1.1.1",
            "300.1.1.1",
            "127.0.0.0/33",
            "10.1.2.3/8",
            "::1/129",
            "1.2.3",
            "nick:a b",
            "account:a:b",
            "*\u{200b}*",
            "*\u{2060}*",
            "\u{ff0a}",
            "*\u{00ad}?",
            "*.*",
            "*!*@*",
        ] {
            assert!(Mask::parse(bad).is_err(), "{bad:?}");
        }
        // Guest names (`IP:PORT`) are patterns, not addresses.
        assert!(matches!(Mask::parse("nick:127.0.0.1:*"), Ok(Mask::Nick(_))));
    }

    #[test]
    fn patterns_fold_as_nickname_uniqueness_does() {
        // `trolIbase` with a capital i looks like `trollbase` and is
        // refused as in use; a ban of `Troll*` must cover it too.
        let mask = Mask::parse("Troll*").unwrap();
        for nick in [
            "trollbase",
            "TROLLISH",
            "tr\u{043e}ll",
            "ＴＲＯＬＬ",
            "TroIlbase",
        ] {
            let who = Who {
                nick,
                account: None,
                ip: None,
                session: ("", 1),
                server_operator: false,
            };
            assert!(mask.matches(&who), "{nick}");
        }
    }

    #[test]
    fn wide_ranges_are_marked() {
        assert!(Mask::parse("0.0.0.0/0").unwrap().is_wide());
        assert!(Mask::parse("10.0.0.0/8").unwrap().is_wide());
        assert!(!Mask::parse("10.1.0.0/16").unwrap().is_wide());
        assert!(Mask::parse("2001::/16").unwrap().is_wide());
        assert!(!Mask::parse("2001:db8::/32").unwrap().is_wide());
    }

    #[test]
    fn stored_masks_read_back_and_old_account_bans_keep_their_meaning() {
        for mask in [
            Mask::Account {
                id: "~ab".into(),
                name: "Ann".into(),
            },
            Mask::parse("nick:tr*").unwrap(),
            Mask::parse("10.0.0.0/8").unwrap(),
        ] {
            assert_eq!(Mask::from_stored(&mask.stored()).unwrap(), mask);
        }
        assert_eq!(
            Mask::from_stored("account:Ann").unwrap(),
            Mask::Account {
                id: names::nick_key("Ann"),
                name: "Ann".into()
            }
        );
    }

    #[test]
    fn bans_and_mutes_expire() {
        let mut policy = Policy::default();
        policy.bans.push(Ban {
            mask: Mask::parse("eve").unwrap(),
            sessions: BTreeSet::new(),
            rank: None,
            reason: Some("spam".into()),
            by: "op".into(),
            ms: 0,
            until: Some(1000),
        });
        let eve = Who {
            nick: "eve",
            account: None,
            ip: None,
            session: ("", 2),
            server_operator: false,
        };
        assert!(matches!(
            policy.refuse_banned("r", &eve, 999),
            Err(HubError::Banned(_, _))
        ));
        assert!(policy.refuse_banned("r", &eve, 1000).is_ok());
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
            let net = ipnet::Ipv4Net::new([a, b, 0, 0].into(), bits).unwrap().trunc();
            for text in [format!("nick:{nick}"), format!("ip:{net}")] {
                let mask = Mask::parse(&text).unwrap();
                prop_assert_eq!(Mask::parse(&mask.to_string()).unwrap(), mask.clone());
                prop_assert_eq!(Mask::from_stored(&mask.stored()).unwrap(), mask);
            }
            // With host bits set, the same network is refused, not truncated.
            if net.prefix_len() < 32 {
                let host = ipnet::Ipv4Net::new(net.broadcast(), net.prefix_len()).unwrap();
                prop_assert!(Mask::parse(&host.to_string()).is_err());
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
