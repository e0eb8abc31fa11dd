//! Moderation actions, for every transport: who may do what, doing it
//! (through the hub, which stores and enforces a room's policy on every
//! node: `hub::moderation`), and the audit log.
//!
//! Who may is the gate's to say (`hub::gate::may`): this layer resolves
//! what an action names — a room, a person (an account's id, a guest's
//! session), a mask — asks the gate with the target's rank, and carries
//! the action out. In short: a room's owner grants and takes operator
//! status; its operators set the topic and modes, kick, ban, mute, voice
//! and invite those ranked below them, and read the log; anyone allowed to
//! speak in a `-t` room sets its topic. Server operators (confirmed by the
//! administrator: `hubbub operator add NAME`) rank above every owner and
//! alone ban server-wide or by wide address ranges, disconnect users and
//! send notices to all. Every action is logged (who, what, to whom, why,
//! when): in the store's `moderation_log`, or without a store the last
//! [`MEMORY_LOG`] per room.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

mod bans;
mod log;

use log::list_bans;

use crate::accounts::Accounts;
use crate::hub::event::now_millis;
use crate::hub::gate::{self, Action, Power, Rank};
use crate::hub::policy::{self, Policy};
use crate::hub::{names, Hub, HubError, Session};
use crate::store::{HistoryStore, ModerationEntry};

/// Log entries kept per room without a store.
pub const MEMORY_LOG: usize = 1000;
/// Most log entries one `/modlog` returns.
pub const MAX_LOG_READ: u32 = 200;

/// A moderation request, as either transport parsed it. `room: None` is
/// the session's current room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Shows the topic (`text: None`), sets it, or clears it (`Some("")`).
    Topic {
        room: Option<String>,
        text: Option<String>,
    },
    Kick {
        room: Option<String>,
        nick: String,
        reason: Option<String>,
    },
    /// Bans (or with `mute`, mutes) `mask` (`duration`: like `10m`).
    Ban {
        room: Option<String>,
        mask: String,
        duration: Option<String>,
        reason: Option<String>,
        mute: bool,
    },
    Unban {
        room: Option<String>,
        mask: String,
        mute: bool,
    },
    /// Lists bans and mutes.
    Bans {
        room: Option<String>,
    },
    /// Grants or takes operator status (`op`) or voice.
    Role {
        room: Option<String>,
        nick: String,
        op: bool,
        grant: bool,
    },
    Invite {
        room: Option<String>,
        nick: String,
    },
    /// Shows the modes (`change: None`) or changes one (`+m`, `+l 20`).
    Mode {
        room: Option<String>,
        change: Option<String>,
        arg: Option<String>,
    },
    Modlog {
        room: Option<String>,
        limit: u32,
    },
    /// Server operators: server-wide ban, unban, list.
    ServerBan {
        mask: String,
        duration: Option<String>,
        reason: Option<String>,
    },
    ServerUnban {
        mask: String,
    },
    ServerBans,
    /// Server operators: disconnect a user everywhere.
    Kill {
        nick: String,
        reason: Option<String>,
    },
    /// Server operators: a notice to everyone.
    Wall {
        text: String,
    },
}

/// What an action answers: a sentence for line clients, data for
/// Socket.IO acknowledgements.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub text: String,
    pub data: Value,
}

impl Outcome {
    fn new(text: impl Into<String>, data: Value) -> Outcome {
        Outcome {
            text: text.into(),
            data,
        }
    }
}

/// The moderation service shared by every transport.
#[derive(Debug)]
pub struct Moderation {
    hub: Arc<Hub>,
    /// Resolves names of accounts not connected now (grants, `account:`).
    accounts: Arc<Accounts>,
    /// The log without a store: room key → newest entries.
    memory_log: Mutex<HashMap<String, VecDeque<ModerationEntry>>>,
}

/// A room resolved for an action.
pub(crate) struct Target {
    key: String,
    name: Arc<str>,
    policy: Arc<Policy>,
}

impl Moderation {
    pub fn new(hub: Arc<Hub>, accounts: Arc<Accounts>) -> Moderation {
        Moderation {
            hub,
            accounts,
            memory_log: Mutex::new(HashMap::new()),
        }
    }

    fn store(&self) -> Option<&Arc<dyn HistoryStore>> {
        self.hub.store()
    }

    /// Carries out `request` for `session`.
    ///
    /// Errors: `not_operator` / `not_server_operator` when the session may
    /// not; `no_such_room`, `no_such_nick`, `bad_mask`, `bad_mode`,
    /// `bad_duration`, `not_found` (unbanning what is not banned),
    /// `policy_full`, `store_unavailable`.
    pub async fn act(&self, session: &Session, request: Request) -> Result<Outcome, HubError> {
        let by = session.nick()?.to_string();
        self.confirm_server_operator(session, &by).await?;
        match request {
            Request::Topic { room, text } => self.topic(session, &by, room, text).await,
            Request::Kick { room, nick, reason } => {
                let room = self.room(session, room).await?;
                let target = self
                    .hub
                    .rank_of_nick(&room.policy, &nick)
                    .ok_or_else(|| HubError::NoSuchNick(nick.clone()))?;
                self.gate(session, &room, Power::Kick, Some(target), &nick)?;
                let reason = reason
                    .map(|r| clean(&r, policy::MAX_REASON_BYTES))
                    .transpose()?;
                self.hub.kick(&room.key, &nick, &by, reason.as_deref())?;
                self.log(&room.key, &by, "kick", Some(&nick), reason.as_deref())
                    .await;
                Ok(Outcome::new(
                    format!("you kicked {nick} from {}", room.name),
                    json!({ "room": room.name, "nick": nick }),
                ))
            }
            Request::Ban {
                room,
                mask,
                duration,
                reason,
                mute,
            } => {
                let room = self.room(session, room).await?;
                self.ban(session, Some(&room), &by, &mask, duration, reason, mute)
                    .await
            }
            Request::Unban { room, mask, mute } => {
                let room = self.room(session, room).await?;
                self.gate(session, &room, Power::Unban, None, "")?;
                let rank = self.rank(session, &room.policy)?;
                self.unban(&room.key, &room.name, &by, &mask, mute, rank)
                    .await
            }
            Request::Bans { room } => {
                let room = self.room(session, room).await?;
                self.gate(session, &room, Power::Inspect, None, "")?;
                Ok(list_bans(&room.name, &room.policy))
            }
            Request::Role {
                room,
                nick,
                op,
                grant,
            } => self.role(session, &by, room, &nick, op, grant).await,
            Request::Invite { room, nick } => {
                let room = self.room(session, room).await?;
                self.gate(session, &room, Power::Invite, None, &nick)?;
                let key = self.subject(&nick).await?;
                self.hub
                    .change_policy(&room.key, &by, |p| {
                        if p.invites.len() >= policy::MAX_ENTRIES {
                            return Err(HubError::PolicyFull(
                                "the invitation list".into(),
                                policy::MAX_ENTRIES,
                            ));
                        }
                        p.invites.insert(key.clone());
                        Ok(())
                    })
                    .await?;
                self.log(&room.key, &by, "invite", Some(&nick), None).await;
                Ok(Outcome::new(
                    format!("you invited {nick} to {}", room.name),
                    json!({ "room": room.name, "nick": nick }),
                ))
            }
            Request::Mode { room, change, arg } => self.mode(session, &by, room, change, arg).await,
            // `*`: the server's own log (server bans, kills, notices).
            Request::Modlog { room, limit } if room.as_deref() == Some("*") => {
                self.server_operator(session)?;
                self.modlog("", "this server", limit).await
            }
            Request::Modlog { room, limit } => {
                let room = self.room(session, room).await?;
                self.gate(session, &room, Power::Inspect, None, "")?;
                self.modlog(&room.key, &room.name, limit).await
            }
            Request::ServerBan {
                mask,
                duration,
                reason,
            } => {
                self.server_operator(session)?;
                self.ban(session, None, &by, &mask, duration, reason, false)
                    .await
            }
            Request::ServerUnban { mask } => {
                self.server_operator(session)?;
                self.unban("", "this server", &by, &mask, false, Rank::ServerOperator)
                    .await
            }
            Request::ServerBans => {
                self.server_operator(session)?;
                Ok(list_bans("this server", &self.hub.server_policy()))
            }
            Request::Kill { nick, reason } => {
                self.server_operator(session)?;
                let server = self.hub.server_policy();
                if self.hub.rank_of_nick(&server, &nick) == Some(Rank::ServerOperator) {
                    return Err(HubError::Outranked("this server".into(), nick));
                }
                let why = match &reason {
                    Some(r) => format!(
                        "disconnected by {by}: {}",
                        clean(r, policy::MAX_REASON_BYTES)?
                    ),
                    None => format!("disconnected by {by}"),
                };
                self.hub.disconnect_user(&nick, &why)?;
                self.log("", &by, "kill", Some(&nick), reason.as_deref())
                    .await;
                Ok(Outcome::new(
                    format!("you disconnected {nick}"),
                    json!({ "nick": nick }),
                ))
            }
            Request::Wall { text } => {
                self.server_operator(session)?;
                let text = clean(&text, policy::MAX_TOPIC_BYTES)?;
                self.hub
                    .notice_everyone(&format!("notice from {by} to everyone: {text}"));
                self.log("", &by, "wall", None, Some(&text)).await;
                Ok(Outcome::new("notice sent", Value::Null))
            }
        }
    }

    async fn topic(
        &self,
        session: &Session,
        by: &str,
        room: Option<String>,
        text: Option<String>,
    ) -> Result<Outcome, HubError> {
        let room = self.room(session, room).await?;
        let in_room = session.rooms()?.iter().any(|r| **r == *room.name);
        let Some(text) = text else {
            self.may(session, &room, Action::Read { in_room })?;
            let topic = room.policy.topic.as_ref();
            return Ok(Outcome::new(
                match topic {
                    Some(t) => format!("topic of {}: {} (set by {})", room.name, t.text, t.by),
                    None => format!("{} has no topic", room.name),
                },
                json!({ "room": room.name, "topic": topic.map(|t| &t.text), "by": topic.map(|t| &t.by) }),
            ));
        };
        self.may(session, &room, Action::SetTopic { in_room })?;
        let text = clean(text.trim(), policy::MAX_TOPIC_BYTES)?;
        let topic = (!text.is_empty()).then(|| policy::Topic {
            text: text.clone(),
            by: by.to_string(),
            ms: now_millis(),
        });
        self.hub
            .change_policy(&room.key, by, |p| {
                p.topic.clone_from(&topic);
                Ok(())
            })
            .await?;
        let shown = (!text.is_empty()).then_some(text.as_str());
        self.hub.announce_topic(&room.key, shown, by);
        self.log(&room.key, by, "topic", None, shown).await;
        Ok(Outcome::new(
            format!("topic of {} set", room.name),
            json!({ "room": room.name, "topic": shown }),
        ))
    }

    async fn role(
        &self,
        session: &Session,
        by: &str,
        room: Option<String>,
        nick: &str,
        op: bool,
        grant: bool,
    ) -> Result<Outcome, HubError> {
        let room = self.room(session, room).await?;
        let power = if op { Power::Op } else { Power::Voice };
        let target = self.hub.rank_of_nick(&room.policy, nick);
        // Granting voice to an operator changes nothing about their rank:
        // only taking a role away (or raising one) is weighed.
        let weighed = (op || !grant).then_some(target).flatten();
        self.gate(session, &room, power, weighed, nick)?;
        let key = self.subject(nick).await?;
        if op && key.starts_with("session:") {
            return Err(HubError::BadRequest(format!(
                "{nick} is a guest: only a logged-in user can be an operator"
            )));
        }
        self.hub
            .change_policy(&room.key, by, |p| {
                let set = if op { &mut p.ops } else { &mut p.voiced };
                if grant {
                    if set.len() >= policy::MAX_ENTRIES {
                        return Err(HubError::PolicyFull(
                            "that list".into(),
                            policy::MAX_ENTRIES,
                        ));
                    }
                    set.insert(key.clone());
                } else {
                    set.remove(&key);
                }
                Ok(())
            })
            .await?;
        let flag = match (grant, op) {
            (true, true) => "+o",
            (false, true) => "-o",
            (true, false) => "+v",
            (false, false) => "-v",
        };
        self.hub
            .announce_mode(&room.key, &format!("{flag} {nick}"), by);
        let action = match (grant, op) {
            (true, true) => "op",
            (false, true) => "deop",
            (true, false) => "voice",
            (false, false) => "devoice",
        };
        self.log(&room.key, by, action, Some(nick), None).await;
        Ok(Outcome::new(
            format!("{flag} {nick} in {}", room.name),
            json!({ "room": room.name, "nick": nick, "change": flag }),
        ))
    }

    async fn mode(
        &self,
        session: &Session,
        by: &str,
        room: Option<String>,
        change: Option<String>,
        arg: Option<String>,
    ) -> Result<Outcome, HubError> {
        let Some(change) = change else {
            let room = self.room(session, room).await?;
            let in_room = session.rooms()?.iter().any(|r| **r == *room.name);
            self.may(session, &room, Action::Read { in_room })?;
            let modes = room.policy.modes.describe();
            return Ok(Outcome::new(
                format!("modes of {}: {modes}", room.name),
                json!({ "room": room.name, "modes": modes }),
            ));
        };
        let room = self.room(session, room).await?;
        self.gate(session, &room, Power::Mode, None, "")?;
        // Checked before the store is touched, so a bad change costs nothing.
        room.policy.modes.clone().apply(&change, arg.as_deref())?;
        let policy = self
            .hub
            .change_policy(&room.key, by, |p| p.modes.apply(&change, arg.as_deref()))
            .await?;
        let shown = match &arg {
            Some(arg) if change == "+l" => format!("{change} {arg}"),
            _ => change.clone(),
        };
        self.hub.announce_mode(&room.key, &shown, by);
        self.log(&room.key, by, "mode", Some(&shown), None).await;
        let modes = policy.modes.describe();
        Ok(Outcome::new(
            format!("modes of {}: {modes}", room.name),
            json!({ "room": room.name, "modes": modes }),
        ))
    }

    /// The room `room` names (default: the session's current room).
    async fn room(&self, session: &Session, room: Option<String>) -> Result<Target, HubError> {
        let room = match room {
            Some(room) => room,
            None => session.room_name()?.to_string(),
        };
        let (key, name, policy) = self.hub.room_policy(&room).await?;
        Ok(Target { key, name, policy })
    }

    /// Asks the gate whether `session` may do `action` in `room`.
    fn may(&self, session: &Session, room: &Target, action: Action) -> Result<(), HubError> {
        let now = now_millis();
        self.hub.with_who(session.id(), |who| {
            let who = who.ok_or(HubError::SessionEnded)?;
            gate::may(&room.policy, &room.name, who, action, now)
        })
    }

    /// Asks the gate whether `session` may use `power` in `room` on a
    /// target of rank `target` (named `nick`, for the refusal).
    fn gate(
        &self,
        session: &Session,
        room: &Target,
        power: Power,
        target: Option<Rank>,
        nick: &str,
    ) -> Result<(), HubError> {
        match self.may(session, room, Action::Moderate { power, target }) {
            Err(HubError::Outranked(room, _)) => Err(HubError::Outranked(room, nick.to_string())),
            other => other,
        }
    }

    /// A server operator's status is the store's: re-read before each of
    /// their actions, so that `hubbub operator remove` takes effect at
    /// once, not at the next login.
    ///
    /// Errors: `store_unavailable` when it cannot be read.
    async fn confirm_server_operator(&self, session: &Session, nick: &str) -> Result<(), HubError> {
        let Some(account) = session.account().filter(|a| a.server_operator) else {
            return Ok(());
        };
        let stored = self
            .accounts
            .find(nick)
            .await
            .map_err(|_| HubError::StoreUnavailable)?;
        let confirmed = stored.is_some_and(|s| s.server_operator && *s.id == *account.id);
        if !confirmed {
            session.demote_server_operator();
        }
        Ok(())
    }

    /// Where `session` stands under `policy`.
    fn rank(&self, session: &Session, policy: &Policy) -> Result<Rank, HubError> {
        self.hub.with_who(session.id(), |who| {
            Ok(gate::rank(policy, who.ok_or(HubError::SessionEnded)?))
        })
    }

    fn server_operator(&self, session: &Session) -> Result<(), HubError> {
        self.hub.with_who(session.id(), |who| {
            gate::may_act_on_server(who.ok_or(HubError::SessionEnded)?)
        })
    }

    /// The subject a grant to `nick` names: the account of whoever is
    /// logged in under it, or of the registered name; else the guest
    /// session holding it now (a guest is its session: the grant ends
    /// with it and does not pass to whoever takes the name later).
    ///
    /// Errors: `invalid_nick`; `no_such_subject` when nobody holds the
    /// name and no account has it; `accounts_unavailable` as
    /// `store_unavailable`.
    async fn subject(&self, nick: &str) -> Result<String, HubError> {
        target_key(nick)?;
        if let Some((subject, _)) = self.hub.subject_of_nick(nick) {
            return Ok(subject);
        }
        match self.accounts.find(nick).await {
            Ok(Some(account)) => Ok(account.id),
            Ok(None) => Err(HubError::NoSuchSubject(nick.to_string())),
            Err(_) => Err(HubError::StoreUnavailable),
        }
    }
}

/// The key of a nickname named as the target of an action: any name a
/// session can hold (guest names included), so not checked as a new
/// nickname would be, only for shape.
///
/// Errors: `invalid_nick`.
fn target_key(nick: &str) -> Result<String, HubError> {
    if nick.is_empty()
        || nick.len() > 64
        || nick.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(HubError::InvalidNick(format!("{nick:?} is not a nickname")));
    }
    Ok(names::nick_key(nick))
}

/// `2h 5m`, `40s`: a duration in milliseconds, for people.
fn describe_for(ms: u64) -> String {
    let s = ms.div_ceil(1000);
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m", s / 60),
        3600..=86_399 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}

/// `text` cut to at most `max` bytes, on a character boundary, and
/// checked for control characters (which would forge lines for line
/// clients).
///
/// Errors: `invalid_text`.
fn clean(text: &str, max: usize) -> Result<String, HubError> {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    names::validate_text(&text[..end], max)?;
    Ok(text[..end].to_string())
}
