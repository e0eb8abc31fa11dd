//! Bans and mutes: setting and lifting them (in a room, or server-wide),
//! and what a typed mask means.

use std::collections::BTreeSet;

use serde_json::json;

use super::{clean, describe_for, Moderation, Outcome, Target};
use crate::hub::event::now_millis;
use crate::hub::gate::{self, Power};
use crate::hub::policy::{self, Ban, Mask};
use crate::hub::{names, HubError, Session};

impl Moderation {
    /// Bans (with `mute`: mutes) `mask` in `room` (`None`: server-wide),
    /// for `duration` (like `10m`) or for good. The hub removes whoever
    /// the ban covers, on every node. A bare nickname of someone here
    /// means that person: their account if logged in, else their guest
    /// session and the name; the gate weighs their rank.
    ///
    /// Errors: `not_operator`, `outranked`, `wide_mask`, `bad_mask`,
    /// `no_such_subject` (`account:NAME` of no account), `bad_duration`,
    /// `invalid_text` (a reason with control characters), `policy_full`,
    /// `store_unavailable`.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn ban(
        &self,
        session: &Session,
        room: Option<&Target>,
        by: &str,
        mask: &str,
        duration: Option<String>,
        reason: Option<String>,
        mute: bool,
    ) -> Result<Outcome, HubError> {
        let (key, name) = match room {
            Some(room) => (room.key.as_str(), &*room.name),
            None => ("", "this server"),
        };
        let (mask, sessions, target) = self.resolve_mask(mask, room.map(|r| &*r.policy)).await?;
        let rank = match room {
            Some(room) => {
                let wide = mask.is_wide();
                self.gate(
                    session,
                    room,
                    Power::Ban { wide },
                    target,
                    &mask.to_string(),
                )?;
                self.rank(session, &room.policy)?
            }
            None => gate::Rank::ServerOperator,
        };
        let now = now_millis();
        let until = match duration {
            Some(d) => Some(now + policy::parse_duration(&d)?),
            None => None,
        };
        let reason = reason
            .map(|r| clean(&r, policy::MAX_REASON_BYTES))
            .transpose()?;
        let kind = if mute { "mute" } else { "ban" };
        self.hub
            .change_policy(key, by, |p| {
                let list = if mute { &mut p.mutes } else { &mut p.bans };
                list.retain(|b| b.mask != mask);
                if list.len() >= policy::MAX_ENTRIES {
                    return Err(HubError::PolicyFull(
                        format!("the {kind} list"),
                        policy::MAX_ENTRIES,
                    ));
                }
                list.push(Ban {
                    mask: mask.clone(),
                    sessions: sessions.clone(),
                    rank: Some(rank),
                    reason: reason.clone(),
                    by: by.to_string(),
                    ms: now,
                    until,
                });
                Ok(())
            })
            .await?;
        let shown = mask.to_string();
        if !key.is_empty() {
            let flag = if mute { "+q" } else { "+b" };
            self.hub.announce_mode(key, &format!("{flag} {shown}"), by);
        }
        self.log(key, by, kind, Some(&shown), reason.as_deref())
            .await;
        let past = if mute { "muted" } else { "banned" };
        let until_text = until
            .map(|u| format!(" for {}", describe_for(u - now)))
            .unwrap_or_default();
        Ok(Outcome::new(
            format!("{shown} is {past} in {name}{until_text}"),
            json!({ "room": name, "mask": shown, "until": until, "reason": reason }),
        ))
    }

    /// Lifts a ban (with `mute`: a mute) of `mask` in room `key`, for
    /// someone of rank `rank`: a ban set by someone ranked higher, or of an
    /// address range only a server operator may set, stays.
    ///
    /// Errors: `bad_mask`; `not_found` when nothing of that mask is set;
    /// `outranked`.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn unban(
        &self,
        key: &str,
        name: &str,
        by: &str,
        mask: &str,
        mute: bool,
        rank: gate::Rank,
    ) -> Result<Outcome, HubError> {
        let typed = mask;
        let parsed = Mask::parse(typed)?;
        // A bare nickname lifts every ban naming that person or name: of
        // the account, the guest session, or the name (the user may have
        // logged in, out, or renamed since).
        let bare = !typed.contains([':', '*', '?']) && !matches!(parsed, Mask::Ip(_));
        let folded = names::nick_key(typed);
        let account = match &parsed {
            Mask::Account { name, .. } => self.accounts.find(name).await.ok().flatten(),
            _ if bare => self.accounts.find(typed).await.ok().flatten(),
            _ => None,
        };
        let covers = |b: &Mask| match b {
            Mask::Account { id, name } => {
                account.as_ref().is_some_and(|a| a.id == *id)
                    || ((bare || matches!(parsed, Mask::Account { .. }))
                        && names::nick_key(name) == folded.trim_start_matches("account:"))
            }
            other => *other == parsed,
        };
        let kind = if mute { "mute" } else { "ban" };
        self.hub
            .change_policy(key, by, |p| {
                let list = if mute { &mut p.mutes } else { &mut p.bans };
                let needed = list
                    .iter()
                    .filter(|b| covers(&b.mask))
                    .filter_map(|b| {
                        let wide = b.mask.is_wide().then_some(gate::Rank::ServerOperator);
                        b.rank.max(wide)
                    })
                    .max();
                if needed.is_some_and(|needed| needed > rank) {
                    return Err(HubError::Outranked(
                        name.to_string(),
                        "whoever set it".to_string(),
                    ));
                }
                let before = list.len();
                list.retain(|b| !covers(&b.mask));
                if list.len() == before {
                    return Err(HubError::NotFound(format!(
                        "no {kind} of {parsed} in {name}"
                    )));
                }
                Ok(())
            })
            .await?;
        if !key.is_empty() {
            let flag = if mute { "-q" } else { "-b" };
            self.hub.announce_mode(key, &format!("{flag} {parsed}"), by);
        }
        self.log(
            key,
            by,
            &format!("un{kind}"),
            Some(&parsed.to_string()),
            None,
        )
        .await;
        let past = if mute { "unmuted" } else { "unbanned" };
        Ok(Outcome::new(
            format!("{parsed} is {past} in {name}"),
            json!({ "room": name, "mask": parsed.to_string() }),
        ))
    }

    /// What a typed mask means, the sessions of the person it names (if
    /// it names someone here), and that person's rank under `policy`: a
    /// bare nickname of someone logged in is their account (every device,
    /// whatever name they take next); of a guest, the name and its
    /// session; `account:NAME` is the account registered under NAME now.
    ///
    /// Errors: `bad_mask`; `no_such_subject`; `store_unavailable`.
    async fn resolve_mask(
        &self,
        text: &str,
        policy: Option<&policy::Policy>,
    ) -> Result<(Mask, BTreeSet<String>, Option<gate::Rank>), HubError> {
        let mask = Mask::parse(text)?;
        let rank = |nick: &str| policy.and_then(|p| self.hub.rank_of_nick(p, nick));
        match mask {
            Mask::Account { name, .. } => {
                let account = self
                    .accounts
                    .find(&name)
                    .await
                    .map_err(|_| HubError::StoreUnavailable)?
                    .ok_or_else(|| HubError::NoSuchSubject(name.clone()))?;
                let target = rank(&name);
                let sessions = self.sessions_of_account(&name, &account.id);
                let mask = Mask::Account {
                    id: account.id,
                    name: account.name,
                };
                Ok((mask, sessions, target))
            }
            Mask::Nick(pattern) if !pattern.contains(['*', '?']) && !text.starts_with("nick:") => {
                let sessions: BTreeSet<String> =
                    self.hub.sessions_of_nick(&pattern).into_iter().collect();
                let target = rank(&pattern);
                match self.hub.subject_of_nick(&pattern) {
                    Some((id, true)) => {
                        let name = self
                            .hub
                            .whois(&pattern)
                            .map_or_else(|| pattern.clone(), |p| p.nick.to_string());
                        Ok((Mask::Account { id, name }, sessions, target))
                    }
                    _ => Ok((Mask::Nick(pattern), sessions, target)),
                }
            }
            mask => Ok((mask, BTreeSet::new(), None)),
        }
    }

    /// The sessions holding `name` now, if they are logged in to account `id`.
    fn sessions_of_account(&self, name: &str, id: &str) -> BTreeSet<String> {
        match self.hub.subject_of_nick(name) {
            Some((holder, true)) if holder == id => {
                self.hub.sessions_of_nick(name).into_iter().collect()
            }
            _ => BTreeSet::new(),
        }
    }
}
