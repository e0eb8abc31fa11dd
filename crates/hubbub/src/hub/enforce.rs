//! Asking the gate (`hub::gate`) for sessions: whether one may enter,
//! speak in or read a room now, who a nickname is (their rank, the
//! subject a grant names, their sessions), and asking again for a session
//! whose identity just changed (a rename, login, logout), so a rule is
//! kept and not only checked once.

use super::broker::ModerationEvent;
use super::state::Device;
use super::*;

impl Hub {
    /// Whether session `id` may enter room `key` (in memory, or about to
    /// be created: a new room has the default policy): the gate's
    /// [`gate::Action::Enter`].
    ///
    /// Errors: `banned`, `invite_only`, `registered_only`, `room_full`.
    pub(super) fn check_entry(
        &self,
        state: &State,
        id: SessionId,
        key: &str,
    ) -> Result<(), HubError> {
        let Some(room) = state.rooms.get(key) else {
            return Ok(());
        };
        if room.policy_stale {
            return Err(HubError::PolicyUnavailable(room.name.to_string()));
        }
        if room.policy.is_default() {
            return Ok(());
        }
        let who = state.who(id).ok_or(HubError::SessionEnded)?;
        // Another device of the user is in already: no new member.
        let members = if state.user_in_room(&names::nick_key(who.nick), key, Device::Local(id)) {
            0
        } else {
            room.members.len() + room.remote.len()
        };
        gate::may(
            &room.policy,
            &room.name,
            &who,
            gate::Action::Enter { members },
            event::now_millis(),
        )
    }

    /// Whether session `id` may be heard in room `key` now (a message, an
    /// action, typing, a rename): the gate's [`gate::Action::Speak`].
    ///
    /// Errors: `muted`, `registered_only`, `moderated`.
    pub(super) fn check_speech(
        &self,
        state: &State,
        id: SessionId,
        key: &str,
    ) -> Result<(), HubError> {
        let Some(room) = state.rooms.get(key) else {
            return Ok(());
        };
        let policy = &room.policy;
        if !policy.modes.moderated
            && !policy.modes.registered_only
            && policy.mutes.is_empty()
            && policy.bans.is_empty()
        {
            return Ok(());
        }
        let who = state.who(id).ok_or(HubError::SessionEnded)?;
        gate::may(
            policy,
            &room.name,
            &who,
            gate::Action::Speak,
            event::now_millis(),
        )
    }

    /// Whether session `id` may read room `key` (history, members, topic,
    /// modes): the gate's [`gate::Action::Read`].
    ///
    /// Errors: `banned`, `invite_only`, `registered_only`.
    pub(super) fn check_read(
        &self,
        state: &State,
        id: SessionId,
        key: &str,
    ) -> Result<(), HubError> {
        let Some(room) = state.rooms.get(key) else {
            return Ok(());
        };
        if room.policy.is_default() {
            return Ok(());
        }
        let who = state.who(id).ok_or(HubError::SessionEnded)?;
        let in_room = room.members.contains_key(&id);
        gate::may(
            &room.policy,
            &room.name,
            &who,
            gate::Action::Read { in_room },
            event::now_millis(),
        )
    }

    /// Runs `f` on session `id` as the gate sees it (`None` once it ended).
    pub fn with_who<T>(&self, id: SessionId, f: impl FnOnce(Option<&Who<'_>>) -> T) -> T {
        let state = self.lock();
        f(state.who(id).as_ref())
    }

    /// The rank in `policy` of the user holding nickname `nick`, here or on
    /// another node (the highest of its sessions); `None` when nobody
    /// holds it.
    pub fn rank_of_nick(&self, policy: &Policy, nick: &str) -> Option<gate::Rank> {
        let key = names::nick_key(nick);
        let state = self.lock();
        let locals = state.holders(&key).filter_map(|id| state.who(id));
        let remotes = state
            .remote
            .holders(&key)
            .filter_map(|id| state.remote.who(id));
        locals
            .chain(remotes)
            .map(|who| gate::rank(policy, &who))
            .max()
    }

    /// The subject a grant to `nick` names (voice, an invitation): the
    /// account of whoever is logged in under it, else the guest session
    /// holding it here (or on another node). `None` when no one holds it.
    pub fn subject_of_nick(&self, nick: &str) -> Option<(String, bool)> {
        let key = names::nick_key(nick);
        let state = self.lock();
        let locals = state.holders(&key).filter_map(|id| state.who(id));
        let remotes = state
            .remote
            .holders(&key)
            .filter_map(|id| state.remote.who(id));
        let who = locals.chain(remotes).next()?;
        Some(match who.account {
            Some(id) => (id.to_string(), true),
            None => (who.session_subject(), false),
        })
    }

    /// Drops from `policy` the guest sessions that have ended (their voice,
    /// invitations, and the sessions their bans also named): a guest's
    /// grant is its session's and ends with it, and dead entries must not
    /// fill the policy's bounded lists.
    pub(super) fn forget_gone_guests(&self, policy: &mut Policy) {
        let state = self.lock();
        let live =
            |subject: &String| !subject.starts_with("session:") || state.session_live(subject);
        policy.voiced.retain(live);
        policy.invites.retain(live);
        for ban in policy.bans.iter_mut().chain(policy.mutes.iter_mut()) {
            ban.sessions.retain(live);
        }
    }

    /// The session subjects ([`policy::session_subject`]) of everyone
    /// holding nickname `nick`, here and on other nodes: a ban of a person
    /// names their sessions too, so that logging out sheds nothing.
    pub fn sessions_of_nick(&self, nick: &str) -> Vec<String> {
        let key = names::nick_key(nick);
        let state = self.lock();
        let locals = state.holders(&key).filter_map(|id| state.who(id));
        let remotes = state
            .remote
            .holders(&key)
            .filter_map(|id| state.remote.who(id));
        locals.chain(remotes).map(|w| w.session_subject()).collect()
    }

    /// Asks the gate again, for session `id`, every rule that depends on
    /// who it is, after that changed (a rename, a login, a logout, a token
    /// switch): a server ban that now covers it disconnects it; a room ban
    /// removes it from that room, on every node (its presence changes),
    /// as a new ban would. Mutes, voice and modes are asked at each act.
    pub(super) fn recheck_session(&self, id: SessionId) {
        let now = event::now_millis();
        let mut changed = Vec::new();
        let mut removed = Vec::new();
        {
            let mut guard = self.lock();
            let state = &mut *guard;
            let Some(who) = state.who(id) else { return };
            if !who.server_operator {
                if let Some(ban) = state.server_policy.ban_of(&who, now) {
                    let reason = match &ban.reason {
                        Some(r) => format!("you are banned from this server: {r}"),
                        None => "you are banned from this server".to_string(),
                    };
                    if let Some(member) = state.sessions.get(&id) {
                        member.outbox.close(CloseReason::Removed {
                            reason: reason.into(),
                        });
                    }
                    return;
                }
            }
            let Some(member) = state.sessions.get(&id) else {
                return;
            };
            let nick_key = names::nick_key(&member.nick);
            for key in member.rooms.clone() {
                let Some(room) = state.rooms.get(&key) else {
                    continue;
                };
                let Some(who) = state.who(id) else { break };
                if self.is_operator(&room.policy, &who) {
                    continue;
                }
                if let Some(ban) = room.policy.ban_of(&who, now) {
                    let (by, reason) = (ban.by.clone(), ban.reason.as_deref().map(Arc::from));
                    changed.extend(self.remove_user(
                        state,
                        &key,
                        &nick_key,
                        &by,
                        reason.clone(),
                        true,
                    ));
                    removed.push((key, by, reason));
                }
            }
        }
        // The other nodes show the removal as the ban it is, before the
        // presence change that follows it.
        if let Some(broker) = &self.broker {
            let nick = self
                .lock()
                .sessions
                .get(&id)
                .map(|m| names::nick_key(&m.nick));
            for (key, by, reason) in removed {
                if let Some(nick) = &nick {
                    broker.moderation(ModerationEvent::Kick {
                        key,
                        nick: nick.clone(),
                        by: by.as_str().into(),
                        reason,
                        banned: true,
                    });
                }
            }
        }
        for id in changed {
            self.presence_changed(id);
        }
    }
}
