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
    Who,
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
}

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
/who              list who is in your room
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
        "who" => none(Input::Who, "/who"),
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
        _ => Err(ParseError::Unknown(name.to_string())),
    }
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
        assert_eq!(parse("/who"), Ok(Input::Who));
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
        assert!(matches!(parse("/who extra"), Err(ParseError::Usage(_))));
        assert!(matches!(parse("/me"), Err(ParseError::Usage(_))));
    }
}
