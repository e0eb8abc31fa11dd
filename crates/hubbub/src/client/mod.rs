//! The client core: what a client does, once for every transport.
//!
//! A transport parses its wire format into one transport-neutral
//! [`Command`], hands it to [`Client::apply`], and renders the [`Reply`]
//! (or the [`Refusal`]'s code and text) its own way; the events a client
//! is sent come through its hub session's outbox as before. What every
//! transport used to repeat lives here once:
//!
//! - **who the client is** ([`identity`]): login, logout, tokens, guest
//!   names, session tokens, the registered-nickname rule;
//! - **the order rule**: a command that changes presence (a rename, a
//!   login or logout, a join or part) first waits until the client's
//!   messages in flight are committed and fanned out ([`InFlight::settle`]),
//!   so the room sees them before the change;
//! - **the gate** is asked by the hub for every action and read
//!   (`hub::gate`), and by `crate::moderation` for operators' actions.
//!
//! Room messages are not commands here: a transport pipelines them (up
//! to [`MAX_IN_FLIGHT`] waiting for their commit) through
//! `hub::Session::submit`, which asks the gate too.

use std::sync::Arc;

use crate::accounts::{AccountError, Whois};
use crate::hub::{names, Event, HubError, MembersQuery, RoomMembers, Session};
use crate::moderation::{Moderation, Outcome, Request};
use crate::store::{PageQuery, StoredMessage};

pub mod identity;

pub use identity::{Credentials, GuestNames, Identity, LoginDone, TokenDone};

/// Most nickname changes a client may make within [`RENAME_WINDOW`]
/// (IRC servers' anti-nick-flood, e.g. Solanum's 5 in 20 s): a rename is
/// seen by every room the client is in.
pub const MAX_RENAMES: usize = 5;
/// The window [`MAX_RENAMES`] counts in.
pub const RENAME_WINDOW: std::time::Duration = std::time::Duration::from_secs(20);

/// Most room messages one connection may have submitted and not yet
/// committed, on every transport: past this, its reads wait for the
/// oldest (backpressure), and group commit has this many to batch.
pub const MAX_IN_FLIGHT: usize = 64;

/// Why a command was refused: a stable `code` for programs and a
/// sentence for people. Every refusal of the hub, the accounts and the
/// gate becomes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: &'static str,
    pub message: String,
}

impl Refusal {
    pub fn new(code: &'static str, message: String) -> Refusal {
        Refusal { code, message }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<HubError> for Refusal {
    fn from(e: HubError) -> Refusal {
        Refusal::new(e.code(), e.to_string())
    }
}

impl From<AccountError> for Refusal {
    fn from(e: AccountError) -> Refusal {
        Refusal::new(e.code(), e.to_string())
    }
}

/// A transport's messages in flight: what a presence change waits for.
#[async_trait::async_trait]
pub trait InFlight: Send {
    /// Returns once every message this client submitted so far is
    /// committed and fanned out (or failed).
    async fn settle(&mut self);
}

/// What a client asks, whatever its protocol.
#[derive(Debug, Clone)]
pub enum Command<'a> {
    /// Take nickname `nick`; `first` is queued for this client once the
    /// name is its own (a protocol's direct answer).
    Rename {
        nick: &'a str,
        first: Option<Arc<Event>>,
    },
    Register {
        password: &'a str,
    },
    Login {
        nick: Option<&'a str>,
        password: &'a str,
    },
    Logout,
    Password {
        old: &'a str,
        new: &'a str,
    },
    Unregister {
        password: &'a str,
    },
    Whois {
        nick: &'a str,
    },
    /// Log in with an application token, or refresh the one logged in with.
    Token {
        token: &'a str,
    },
    /// Refresh the application token logged in with (same subject only).
    Refresh {
        token: &'a str,
    },
    /// Join `room`; with `alone`, leave every other room (a line client
    /// is in one room at a time); `since`: resume after that message id.
    Join {
        room: &'a str,
        since: Option<u64>,
        alone: bool,
    },
    Part {
        room: &'a str,
    },
    /// A page of a room's history (default: the current room).
    History {
        room: Option<&'a str>,
        query: PageQuery,
    },
    /// A page of a room's members (default: the current room).
    Members {
        room: Option<&'a str>,
        query: MembersQuery,
    },
    Moderate(Request),
}

impl Command<'_> {
    /// Whether the room sees this command: then it waits for the
    /// client's messages in flight first.
    pub fn changes_presence(&self) -> bool {
        matches!(
            self,
            Command::Rename { .. }
                | Command::Login { .. }
                | Command::Logout
                | Command::Unregister { .. }
                | Command::Token { .. }
                | Command::Join { .. }
                | Command::Part { .. }
        )
    }
}

/// What a command did, for the transport to render.
#[derive(Debug, Clone)]
pub enum Reply {
    /// Renamed; `logged_out`: the new name left the account's.
    Renamed {
        logged_out: bool,
    },
    /// Registered the nickname, and logged in to it.
    Registered(LoginDone),
    LoggedIn(LoginDone),
    /// Logged out; the guest name taken, when the account's other
    /// devices keep its nickname.
    LoggedOut(Option<Arc<str>>),
    /// Password changed; a new session token, when the transport uses them.
    PasswordChanged(Option<String>),
    /// The account of this nickname is deleted.
    Unregistered(String),
    Whois(Whois),
    Token(TokenDone),
    /// The token's new expiry (seconds since the Unix epoch).
    Refreshed(u64),
    /// In the room; its last message id.
    Joined {
        members: RoomMembers,
        last_id: u64,
    },
    /// Left the room (its display name).
    Parted(Arc<str>),
    History {
        room: Arc<str>,
        messages: Vec<StoredMessage>,
        /// The page reaches the room's first message.
        complete: bool,
    },
    Members(RoomMembers),
    Moderated(Outcome),
}

/// One connection's client: who it is, and the services its commands use.
#[derive(Debug)]
pub struct Client {
    pub identity: Identity,
    moderation: Arc<Moderation>,
    /// When the last [`MAX_RENAMES`] renames were made.
    renames: std::sync::Mutex<std::collections::VecDeque<std::time::Instant>>,
}

impl Client {
    pub fn new(identity: Identity, moderation: Arc<Moderation>) -> Client {
        Client {
            identity,
            moderation,
            // Allocated by the first rename: most connections never rename.
            renames: std::sync::Mutex::new(std::collections::VecDeque::new()),
        }
    }

    /// Refuses a rename when [`MAX_RENAMES`] were made within
    /// [`RENAME_WINDOW`] (refused renames, which nobody sees, do not count).
    ///
    /// Errors: `rename_flood`, with how long to wait.
    fn may_rename(&self) -> Result<(), Refusal> {
        let now = std::time::Instant::now();
        let mut renames = self.renames.lock().unwrap_or_else(|e| e.into_inner());
        while renames
            .front()
            .is_some_and(|at| now.duration_since(*at) >= RENAME_WINDOW)
        {
            renames.pop_front();
        }
        if renames.len() >= MAX_RENAMES {
            let wait = renames
                .front()
                .map_or(RENAME_WINDOW, |at| RENAME_WINDOW - now.duration_since(*at));
            return Err(Refusal::new(
                "rename_flood",
                format!(
                    "you are changing nicknames too fast; wait {} s",
                    wait.as_secs().max(1)
                ),
            ));
        }
        Ok(())
    }

    fn renamed(&self) {
        let mut renames = self.renames.lock().unwrap_or_else(|e| e.into_inner());
        if renames.len() >= MAX_RENAMES {
            renames.pop_front();
        }
        renames.push_back(std::time::Instant::now());
    }

    /// Carries out `command` for `session`, after `in_flight` has settled
    /// if the command changes presence.
    ///
    /// Errors: each command's refusals (see [`Identity`], `hub::Session`,
    /// `crate::moderation::Moderation::act`).
    pub async fn apply(
        &self,
        session: &Session,
        in_flight: &mut dyn InFlight,
        command: Command<'_>,
    ) -> Result<Reply, Refusal> {
        if command.changes_presence() {
            in_flight.settle().await;
        }
        // Every rename counts against the rename budget, whatever caused it
        // (a login or a token takes the account's name); one that cannot
        // be known beforehand is counted after.
        let before = session.nick()?;
        let renames = match &command {
            Command::Login {
                nick: Some(nick), ..
            } => **nick != *before,
            Command::Token { .. } => !self.identity.is_logged_in(),
            _ => false,
        };
        if renames {
            self.may_rename()?;
        }
        let reply = self.carry_out(session, command).await;
        if !matches!(reply, Ok(Reply::Renamed { .. })) && session.nick().is_ok_and(|n| n != before)
        {
            self.renamed();
        }
        reply
    }

    async fn carry_out(&self, session: &Session, command: Command<'_>) -> Result<Reply, Refusal> {
        let identity = &self.identity;
        Ok(match command {
            Command::Rename { nick, first } if *session.nick()? == *names::normalize(nick) => {
                // Its own name, spelled the same: no rename to count.
                session.rename_with(nick, first).await?;
                Reply::Renamed { logged_out: false }
            }
            Command::Rename { nick, first } => {
                self.may_rename()?;
                let logged_out = identity.rename(session, nick, first).await?;
                self.renamed();
                Reply::Renamed { logged_out }
            }
            Command::Register { password } => {
                Reply::Registered(identity.register(session, password).await?)
            }
            Command::Login { nick, password } => {
                Reply::LoggedIn(identity.login(session, nick, password).await?)
            }
            Command::Logout => Reply::LoggedOut(identity.logout(session).await?),
            Command::Password { old, new } => {
                Reply::PasswordChanged(identity.change_password(session, old, new).await?)
            }
            Command::Unregister { password } => {
                Reply::Unregistered(identity.unregister(session, password).await?)
            }
            Command::Whois { nick } => Reply::Whois(identity.whois(session, nick).await?),
            Command::Token { token } => Reply::Token(identity.token(session, token).await?),
            Command::Refresh { token } => Reply::Refreshed(identity.refresh(token).await?),
            Command::Join { room, since, alone } => {
                if alone {
                    let members = session.switch_to(room).await?;
                    Reply::Joined {
                        members,
                        last_id: 0,
                    }
                } else {
                    let (members, last_id) = session.enter(room, since).await?;
                    Reply::Joined { members, last_id }
                }
            }
            Command::Part { room } => Reply::Parted(session.exit(room)?),
            Command::History { room, query } => {
                let room = match room {
                    Some(room) => room.to_string(),
                    None => session.room_name()?.to_string(),
                };
                let (room, messages, complete) =
                    session.hub().history(session.id(), &room, query).await?;
                Reply::History {
                    room,
                    messages,
                    complete,
                }
            }
            Command::Members { room, query } => Reply::Members(match room {
                Some(room) => session.hub().members(session.id(), room, &query).await?,
                None => session.room_members(&query)?,
            }),
            Command::Moderate(request) => {
                Reply::Moderated(self.moderation.act(session, request).await?)
            }
        })
    }
}
