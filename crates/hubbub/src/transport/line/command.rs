//! Parsing one line of the line protocol: chat text or a slash command.
//!
//! A line that does not start with `/` is chat text, relayed as typed. `//`
//! escapes a leading slash. Everything else starting with `/` is a command;
//! parsing only checks the shape (names are validated by the hub).

/// What one input line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input<'a> {
    /// Text for the room.
    Say(&'a str),
    Nick(&'a str),
    Join(&'a str),
    Rooms,
    /// `/who [AFTER]`: the current room's members, from the first or
    /// those sorted after AFTER (the next page).
    Who(Option<&'a str>),
    Msg {
        to: &'a str,
        text: &'a str,
    },
    Me(&'a str),
    Quit(Option<&'a str>),
    /// `/history [N]`: scroll-back, N messages (default 20, at most 500).
    History(u32),
    Help,
    /// `/register PASSWORD`: registers the current nickname.
    Register(&'a str),
    /// `/login [NICK] PASSWORD`: NICK defaults to the current nickname.
    Login {
        nick: Option<&'a str>,
        password: &'a str,
    },
    Logout,
    /// `/password OLD NEW`.
    Password {
        old: &'a str,
        new: &'a str,
    },
    /// `/unregister PASSWORD`: deletes the account of the current nickname.
    Unregister(&'a str),
    /// `/whois NICK`.
    Whois(&'a str),
    /// `/token JWT`: logs in with an application's token.
    Token(&'a str),
    /// A moderation command (`/topic`, `/kick`, `/ban`… see [`HELP`]),
    /// for the current room.
    Moderate(Request),
}

use crate::hub::policy;
use crate::moderation::{Request, MAX_LOG_READ};

/// Most messages one `/history` returns.
pub const MAX_HISTORY: u32 = 500;

/// Why a command line could not be parsed; sent to the client as an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    Unknown(String),
    Usage(&'static str),
}

impl ParseError {
    pub fn code(&self) -> &'static str {
        match self {
            ParseError::Unknown(_) => "unknown_command",
            ParseError::Usage(_) => "bad_arguments",
        }
    }

    pub fn message(&self) -> String {
        match self {
            ParseError::Unknown(name) => format!("unknown command /{name} (try /help)"),
            ParseError::Usage(usage) => format!("usage: {usage}"),
        }
    }
}

/// The `/help` text, one command per line.
pub const HELP: &str = "\
commands:
/nick NAME        change your nickname (letters, digits, _ and -, up to 32)
/join ROOM        leave this room and join ROOM (created if new)
/rooms            list rooms and how many are in each
/who [AFTER]      list who is in your room (a page; AFTER: the next)
/msg NICK TEXT    send TEXT to NICK only
/me ACTION        tell the room what you are doing
/history [N]      show the last N messages of this room (default 20)
/quit [REASON]    leave the chat
/register PASSWORD      register your nickname: nobody else can take it
/login [NICK] PASSWORD  log in to your registered nickname
/logout           log out (you keep your nickname until you change it)
/password OLD NEW change your password
/unregister PASSWORD    delete your account
/whois NICK       whether NICK is registered, here and logged in
/token JWT        log in with a token from the site you came from
/topic [TEXT|-]   show, set or (with -) clear this room's topic
/mode [CHANGE]    show or change this room's modes (+i invite-only, +m moderated, +R registered users only, -t anyone sets the topic, +l N at most N members)
/kick NICK [REASON]                 remove NICK from this room
/ban MASK [DURATION] [REASON]       ban from this room; MASK: NICK, account:NAME, nick:PATTERN (* and ?) or ip:ADDRESS[/BITS]; DURATION: 10m, 2h, 7d…
/unban MASK       lift a ban
/mute MASK [DURATION] [REASON]      may stay, may not speak
/unmute MASK      lift a mute
/bans             list this room's bans and mutes
/op NICK, /deop NICK                give or take operator status (the owner)
/voice NICK, /devoice NICK          let NICK speak in a moderated room, or not
/invite NICK      let NICK into this invite-only room
/modlog [ROOM] [N]                  the last N moderation actions (operators; ROOM * for the server's)
/kline MASK [DURATION] [REASON]     ban from the server (server operators)
/unkline MASK, /klines              lift or list server bans (server operators)
/kill NICK [REASON]                 disconnect NICK everywhere (server operators)
/wall TEXT        a notice to everyone (server operators)
/help             this list
//TEXT            send a line that starts with /";

pub fn parse(line: &str) -> Result<Input<'_>, ParseError> {
    let Some(rest) = line.strip_prefix('/') else {
        return Ok(Input::Say(line));
    };
    if rest.starts_with('/') {
        return Ok(Input::Say(rest));
    }
    let (name, args) = match rest.split_once(char::is_whitespace) {
        Some((name, args)) => (name, args.trim()),
        None => (rest, ""),
    };
    let single = |usage| {
        if args.is_empty() || args.contains(char::is_whitespace) {
            Err(ParseError::Usage(usage))
        } else {
            Ok(args)
        }
    };
    let none = |input, usage| {
        if args.is_empty() {
            Ok(input)
        } else {
            Err(ParseError::Usage(usage))
        }
    };
    match name.to_ascii_lowercase().as_str() {
        "nick" => single("/nick NAME").map(Input::Nick),
        "join" => single("/join ROOM").map(Input::Join),
        "rooms" => none(Input::Rooms, "/rooms"),
        "who" if args.is_empty() => Ok(Input::Who(None)),
        "who" => single("/who [AFTER]").map(|after| Input::Who(Some(after))),
        "msg" => match args.split_once(char::is_whitespace) {
            Some((to, text)) if !text.trim().is_empty() => Ok(Input::Msg {
                to,
                text: text.trim_start(),
            }),
            _ => Err(ParseError::Usage("/msg NICK TEXT")),
        },
        "me" if !args.is_empty() => Ok(Input::Me(args)),
        "me" => Err(ParseError::Usage("/me ACTION")),
        "quit" => Ok(Input::Quit((!args.is_empty()).then_some(args))),
        "history" if args.is_empty() => Ok(Input::History(20)),
        "history" => match args.parse::<u32>() {
            Ok(n) if (1..=MAX_HISTORY).contains(&n) => Ok(Input::History(n)),
            _ => Err(ParseError::Usage("/history [N], N from 1 to 500")),
        },
        "help" => Ok(Input::Help),
        "register" if !args.is_empty() => Ok(Input::Register(args)),
        "register" => Err(ParseError::Usage("/register PASSWORD")),
        "login" => match args.split_once(char::is_whitespace) {
            _ if args.is_empty() => Err(ParseError::Usage("/login [NICK] PASSWORD")),
            Some((nick, password)) => Ok(Input::Login {
                nick: Some(nick),
                password: password.trim_start(),
            }),
            None => Ok(Input::Login {
                nick: None,
                password: args,
            }),
        },
        "logout" => none(Input::Logout, "/logout"),
        "password" => match args.split_once(char::is_whitespace) {
            Some((old, new)) if !new.trim().contains(char::is_whitespace) => Ok(Input::Password {
                old,
                new: new.trim(),
            }),
            _ => Err(ParseError::Usage("/password OLD NEW (each without spaces)")),
        },
        "unregister" if !args.is_empty() => Ok(Input::Unregister(args)),
        "unregister" => Err(ParseError::Usage("/unregister PASSWORD")),
        "whois" => single("/whois NICK").map(Input::Whois),
        "token" => single("/token JWT").map(Input::Token),
        other => match moderation(other, args) {
            Some(request) => request.map(Input::Moderate),
            None => Err(ParseError::Unknown(name.to_string())),
        },
    }
}

/// The moderation commands: `None` for a name that is not one.
fn moderation(name: &str, args: &str) -> Option<Result<Request, ParseError>> {
    let words: Vec<&str> = args.split_whitespace().collect();
    let owned = |s: &str| s.to_string();
    // `WORD [DURATION] [REASON…]`
    let with_duration =
        |usage: &'static str| -> Result<(String, Option<String>, Option<String>), ParseError> {
            let (&first, rest) = words.split_first().ok_or(ParseError::Usage(usage))?;
            let (duration, rest) = match rest.split_first() {
                Some((&d, rest)) if policy::parse_duration(d).is_ok() => (Some(owned(d)), rest),
                _ => (None, rest),
            };
            let reason = (!rest.is_empty()).then(|| rest.join(" "));
            Ok((owned(first), duration, reason))
        };
    let one = |usage: &'static str| match words.as_slice() {
        [word] => Ok(owned(word)),
        _ => Err(ParseError::Usage(usage)),
    };
    let role = |op: bool, grant: bool, usage: &'static str| {
        one(usage).map(|nick| Request::Role {
            room: None,
            nick,
            op,
            grant,
        })
    };
    Some(match name {
        "topic" => Ok(Request::Topic {
            room: None,
            text: match args {
                "" => None,
                "-" => Some(String::new()),
                text => Some(owned(text)),
            },
        }),
        "kick" => match words.split_first() {
            Some((&nick, rest)) => Ok(Request::Kick {
                room: None,
                nick: owned(nick),
                reason: (!rest.is_empty()).then(|| rest.join(" ")),
            }),
            None => Err(ParseError::Usage("/kick NICK [REASON]")),
        },
        "ban" | "mute" => {
            let usage = if name == "ban" {
                "/ban MASK [DURATION] [REASON]"
            } else {
                "/mute MASK [DURATION] [REASON]"
            };
            with_duration(usage).map(|(mask, duration, reason)| Request::Ban {
                room: None,
                mask,
                duration,
                reason,
                mute: name == "mute",
            })
        }
        "unban" => one("/unban MASK").map(|mask| Request::Unban {
            room: None,
            mask,
            mute: false,
        }),
        "unmute" => one("/unmute MASK").map(|mask| Request::Unban {
            room: None,
            mask,
            mute: true,
        }),
        "bans" if words.is_empty() => Ok(Request::Bans { room: None }),
        "bans" => Err(ParseError::Usage("/bans")),
        "op" => role(true, true, "/op NICK"),
        "deop" => role(true, false, "/deop NICK"),
        "voice" => role(false, true, "/voice NICK"),
        "devoice" => role(false, false, "/devoice NICK"),
        "invite" => one("/invite NICK").map(|nick| Request::Invite { room: None, nick }),
        "mode" => match words.as_slice() {
            [] => Ok(Request::Mode {
                room: None,
                change: None,
                arg: None,
            }),
            [change] => Ok(Request::Mode {
                room: None,
                change: Some(owned(change)),
                arg: None,
            }),
            [change, arg] => Ok(Request::Mode {
                room: None,
                change: Some(owned(change)),
                arg: Some(owned(arg)),
            }),
            _ => Err(ParseError::Usage("/mode [CHANGE [ARG]]")),
        },
        "modlog" => {
            let usage = "/modlog [ROOM] [N], N from 1 to 200";
            let limit = |n: &str| {
                n.parse::<u32>()
                    .ok()
                    .filter(|n| (1..=MAX_LOG_READ).contains(n))
                    .ok_or(ParseError::Usage(usage))
            };
            match words.as_slice() {
                [] => Ok((None, 20)),
                [n] if n.parse::<u32>().is_ok() => limit(n).map(|n| (None, n)),
                [room] => Ok((Some(owned(room)), 20)),
                [room, n] => limit(n).map(|n| (Some(owned(room)), n)),
                _ => Err(ParseError::Usage(usage)),
            }
            .map(|(room, limit)| Request::Modlog { room, limit })
        }
        "kline" => {
            with_duration("/kline MASK [DURATION] [REASON]").map(|(mask, duration, reason)| {
                Request::ServerBan {
                    mask,
                    duration,
                    reason,
                }
            })
        }
        "unkline" => one("/unkline MASK").map(|mask| Request::ServerUnban { mask }),
        "klines" if words.is_empty() => Ok(Request::ServerBans),
        "klines" => Err(ParseError::Usage("/klines")),
        "kill" => match words.split_first() {
            Some((&nick, rest)) => Ok(Request::Kill {
                nick: owned(nick),
                reason: (!rest.is_empty()).then(|| rest.join(" ")),
            }),
            None => Err(ParseError::Usage("/kill NICK [REASON]")),
        },
        "wall" if !args.is_empty() => Ok(Request::Wall { text: owned(args) }),
        "wall" => Err(ParseError::Usage("/wall TEXT")),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_escapes() {
        assert_eq!(parse("hello"), Ok(Input::Say("hello")));
        assert_eq!(parse(""), Ok(Input::Say("")));
        assert_eq!(parse("//etc/passwd"), Ok(Input::Say("/etc/passwd")));
        assert_eq!(parse(" /nick x"), Ok(Input::Say(" /nick x")));
    }

    #[test]
    fn commands() {
        assert_eq!(parse("/nick bob"), Ok(Input::Nick("bob")));
        assert_eq!(parse("/NICK  bob "), Ok(Input::Nick("bob")));
        assert_eq!(parse("/join #games"), Ok(Input::Join("#games")));
        assert_eq!(parse("/rooms"), Ok(Input::Rooms));
        assert_eq!(parse("/who"), Ok(Input::Who(None)));
        assert_eq!(parse("/who bob"), Ok(Input::Who(Some("bob"))));
        assert_eq!(
            parse("/msg bob  hi  there"),
            Ok(Input::Msg {
                to: "bob",
                text: "hi  there"
            })
        );
        assert_eq!(parse("/me waves"), Ok(Input::Me("waves")));
        assert_eq!(parse("/quit"), Ok(Input::Quit(None)));
        assert_eq!(parse("/quit see you"), Ok(Input::Quit(Some("see you"))));
        assert_eq!(parse("/help"), Ok(Input::Help));
        assert_eq!(parse("/history"), Ok(Input::History(20)));
        assert_eq!(parse("/history 5"), Ok(Input::History(5)));
        assert!(matches!(parse("/history 0"), Err(ParseError::Usage(_))));
        assert!(matches!(parse("/history 501"), Err(ParseError::Usage(_))));
        assert!(matches!(parse("/history x"), Err(ParseError::Usage(_))));
    }

    #[test]
    fn errors() {
        assert_eq!(
            parse("/frobnicate"),
            Err(ParseError::Unknown("frobnicate".into()))
        );
        assert_eq!(parse("/"), Err(ParseError::Unknown("".into())));
        assert!(matches!(parse("/nick"), Err(ParseError::Usage(_))));
        assert!(matches!(parse("/nick a b"), Err(ParseError::Usage(_))));
        assert!(matches!(parse("/msg bob"), Err(ParseError::Usage(_))));
        assert!(matches!(parse("/msg bob   "), Err(ParseError::Usage(_))));
        assert!(matches!(parse("/who bob carol"), Err(ParseError::Usage(_))));
        assert!(matches!(parse("/me"), Err(ParseError::Usage(_))));
    }
}
