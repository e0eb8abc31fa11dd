//! The gate: one function, [`may`], decides every action and every read a
//! person attempts in a room, on every transport and node. Transports and
//! the moderation layer never check rules themselves: they name the
//! [`Action`] and render the refusal's code (docs/PROTOCOL.md, "Who may do
//! what", is this file as a table).
//!
//! Subjects are people ([`Who`]): an account's stable id, or a guest's
//! session; ranks are ordered, owner > operator > voiced > member, with
//! server operators above every room's owner. The hub calls the gate
//! again whenever something a rule depends on changes (a rename, login,
//! logout, a new policy), so a rule is kept, not checked once
//! (`Hub::recheck_session`, `Hub::install_policy`).

use super::policy::{Policy, Who};
use super::HubError;

/// Where someone stands in a room, lowest first.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Rank {
    Member,
    /// May speak in a moderated (`+m`) room.
    Voiced,
    /// Sets the topic and modes, kicks, bans, mutes, voices, invites.
    Operator,
    /// The logged-in user who created the room: also grants and takes
    /// operator status.
    Owner,
    /// Confirmed by the administrator (`hubbub operator add`): above every
    /// room's owner, and alone acts server-wide.
    ServerOperator,
}

/// What an operator's action does, for [`Action::Moderate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Power {
    Kick,
    /// Ban or mute; `wide`: an address range wider than a room operator
    /// may set (`policy::MAX_ROOM_BAN_WIDTH`).
    Ban {
        wide: bool,
    },
    Unban,
    /// Grant or take voice.
    Voice,
    /// Grant or take operator status.
    Op,
    Invite,
    Mode,
    /// List bans and mutes, read the audit log.
    Inspect,
}

/// Something a person tries to do in a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Join, with `members` users in the room already (0 when another
    /// device of the same user is in it).
    Enter { members: usize },
    /// Be heard in any form the room sees: a message, an action, typing,
    /// a rename.
    Speak,
    /// Set or clear the topic; `in_room`: the person is in the room.
    SetTopic { in_room: bool },
    /// Read the room: history, members, topic, modes.
    Read { in_room: bool },
    /// An operator's action on `target` (their rank, when it is a person).
    Moderate { power: Power, target: Option<Rank> },
}

/// Where `who` stands under `policy`.
pub fn rank(policy: &Policy, who: &Who<'_>) -> Rank {
    if who.server_operator {
        return Rank::ServerOperator;
    }
    if let Some(id) = who.account {
        if policy.owner.as_deref() == Some(id) {
            return Rank::Owner;
        }
        if policy.ops.contains(id) {
            return Rank::Operator;
        }
    }
    if who.named_in(&policy.voiced) {
        Rank::Voiced
    } else {
        Rank::Member
    }
}

/// Whether `who` may do `action` in room `room` (its display name, for
/// the refusal) under `policy`, now (`now_ms`, milliseconds since the Unix
/// epoch).
///
/// Errors, by action:
/// - `Enter`: `banned`, `invite_only`, `registered_only`, `room_full`.
/// - `Speak`: `muted` (banned or muted), `registered_only` (a guest in a
///   `+R` room), `moderated` (not voiced in a `+m` room).
/// - `SetTopic`: what `Speak` refuses, `not_operator` (a `+t` room, or not
///   in it).
/// - `Read`: outside the room, what `Enter` refuses but a full room.
/// - `Moderate`: `not_operator`, `outranked` (the target ranks at or above
///   the actor), `wide_mask`.
pub fn may(
    policy: &Policy,
    room: &str,
    who: &Who<'_>,
    action: Action,
    now_ms: u64,
) -> Result<(), HubError> {
    let rank = rank(policy, who);
    let runs = rank >= Rank::Operator;
    let invited = who.named_in(&policy.invites);
    match action {
        Action::Enter { members } => {
            if runs {
                return Ok(());
            }
            admitted(policy, room, who, invited, now_ms)?;
            match policy.modes.limit {
                Some(limit) if members >= limit as usize && !invited => {
                    Err(HubError::RoomFull(room.to_string(), limit))
                }
                _ => Ok(()),
            }
        }
        Action::Speak => {
            if runs {
                return Ok(());
            }
            if policy.ban_of(who, now_ms).is_some() || policy.mute_of(who, now_ms).is_some() {
                return Err(HubError::Muted(room.to_string()));
            }
            if policy.modes.registered_only && who.account.is_none() {
                return Err(HubError::RegisteredOnly(room.to_string()));
            }
            if policy.modes.moderated && rank < Rank::Voiced {
                return Err(HubError::Moderated(room.to_string()));
            }
            Ok(())
        }
        Action::SetTopic { in_room } => {
            if runs {
                return Ok(());
            }
            if !(policy.modes.open_topic && in_room) {
                return Err(HubError::NotOperator(room.to_string()));
            }
            may(policy, room, who, Action::Speak, now_ms)
        }
        Action::Read { in_room } => {
            if runs {
                return Ok(());
            }
            if in_room {
                // Still checked: a ban set while the user was in has
                // already removed them, so a member here is admitted.
                return policy.refuse_banned(room, who, now_ms);
            }
            admitted(policy, room, who, invited, now_ms)
        }
        Action::Moderate { power, target } => {
            let needed = match power {
                Power::Op => Rank::Owner,
                Power::Ban { wide: true } => Rank::ServerOperator,
                _ => Rank::Operator,
            };
            if rank < needed {
                return Err(match power {
                    Power::Ban { wide: true } if runs => HubError::WideMask(room.to_string()),
                    _ => HubError::NotOperator(room.to_string()),
                });
            }
            match target {
                Some(target) if target >= rank => {
                    Err(HubError::Outranked(room.to_string(), String::new()))
                }
                _ => Ok(()),
            }
        }
    }
}

/// The entry rules a room's modes and bans set, for someone who does not
/// run it.
fn admitted(
    policy: &Policy,
    room: &str,
    who: &Who<'_>,
    invited: bool,
    now_ms: u64,
) -> Result<(), HubError> {
    policy.refuse_banned(room, who, now_ms)?;
    if policy.modes.invite_only && !invited {
        return Err(HubError::InviteOnly(room.to_string()));
    }
    if policy.modes.registered_only && who.account.is_none() {
        return Err(HubError::RegisteredOnly(room.to_string()));
    }
    Ok(())
}

/// Whether `who` may act server-wide (server bans, disconnects, notices
/// to all, the server's log).
///
/// Errors: `not_server_operator`.
pub fn may_act_on_server(who: &Who<'_>) -> Result<(), HubError> {
    if who.server_operator {
        Ok(())
    } else {
        Err(HubError::NotServerOperator)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::policy::{Ban, Mask};

    fn person<'a>(nick: &'a str, account: Option<&'a str>, session: u64) -> Who<'a> {
        Who {
            nick,
            account,
            ip: Some("10.0.0.1".parse().unwrap()),
            session: ("", session),
            server_operator: false,
        }
    }

    #[test]
    fn ranks_are_ordered_and_nobody_acts_on_their_equal_or_better() {
        let mut policy = Policy {
            owner: Some("~owner".into()),
            ..Policy::default()
        };
        policy.ops.insert("~op".into());
        policy.voiced.insert("~voiced".into());
        let owner = person("o", Some("~owner"), 1);
        let op = person("p", Some("~op"), 2);
        let kick = |target| Action::Moderate {
            power: Power::Kick,
            target: Some(target),
        };
        assert_eq!(rank(&policy, &owner), Rank::Owner);
        assert_eq!(rank(&policy, &op), Rank::Operator);
        assert!(may(&policy, "r", &op, kick(Rank::Member), 0).is_ok());
        assert!(matches!(
            may(&policy, "r", &op, kick(Rank::Owner), 0),
            Err(HubError::Outranked(..))
        ));
        assert!(matches!(
            may(&policy, "r", &op, kick(Rank::Operator), 0),
            Err(HubError::Outranked(..))
        ));
        assert!(may(&policy, "r", &owner, kick(Rank::Operator), 0).is_ok());
        let op_power = Action::Moderate {
            power: Power::Op,
            target: Some(Rank::Member),
        };
        assert!(may(&policy, "r", &op, op_power, 0).is_err());
        assert!(may(&policy, "r", &owner, op_power, 0).is_ok());
    }

    #[test]
    fn a_guest_is_its_session_not_its_name() {
        let mut policy = Policy::default();
        policy.modes.moderated = true;
        policy.modes.invite_only = true;
        let guest = person("gnick", None, 7);
        policy.voiced.insert(guest.session_subject());
        policy.invites.insert(guest.session_subject());
        assert!(may(&policy, "r", &guest, Action::Speak, 0).is_ok());
        assert!(may(&policy, "r", &guest, Action::Enter { members: 0 }, 0).is_ok());
        // Another session taking the same name has neither.
        let other = person("gnick", None, 8);
        assert!(matches!(
            may(&policy, "r", &other, Action::Speak, 0),
            Err(HubError::Moderated(_))
        ));
        assert!(matches!(
            may(&policy, "r", &other, Action::Enter { members: 0 }, 0),
            Err(HubError::InviteOnly(_))
        ));
    }

    #[test]
    fn reads_follow_entry_for_outsiders() {
        let mut policy = Policy::default();
        policy.modes.invite_only = true;
        let guest = person("g", None, 3);
        let outside = Action::Read { in_room: false };
        assert!(matches!(
            may(&policy, "r", &guest, outside, 0),
            Err(HubError::InviteOnly(_))
        ));
        policy.modes.invite_only = false;
        policy.bans.push(Ban {
            mask: Mask::parse("someone_else").unwrap(),
            sessions: [guest.session_subject()].into(),
            rank: None,
            reason: None,
            by: "op".into(),
            ms: 0,
            until: None,
        });
        assert!(matches!(
            may(&policy, "r", &guest, outside, 0),
            Err(HubError::Banned(..))
        ));
        assert!(matches!(
            may(&policy, "r", &guest, Action::Speak, 0),
            Err(HubError::Muted(_))
        ));
    }

    #[test]
    fn registered_only_silences_guests_already_inside() {
        let mut policy = Policy::default();
        policy.modes.registered_only = true;
        let guest = person("g", None, 3);
        let user = person("u", Some("~u"), 4);
        assert!(matches!(
            may(&policy, "r", &guest, Action::Speak, 0),
            Err(HubError::RegisteredOnly(_))
        ));
        assert!(may(&policy, "r", &user, Action::Speak, 0).is_ok());
    }

    #[test]
    fn wide_address_bans_need_a_server_operator() {
        let policy = Policy {
            owner: Some("~owner".into()),
            ..Policy::default()
        };
        let owner = person("o", Some("~owner"), 1);
        let wide = Action::Moderate {
            power: Power::Ban { wide: true },
            target: None,
        };
        assert!(matches!(
            may(&policy, "r", &owner, wide, 0),
            Err(HubError::WideMask(_))
        ));
        let mut admin = person("a", Some("~admin"), 2);
        admin.server_operator = true;
        assert!(may(&policy, "r", &admin, wide, 0).is_ok());
    }
}
