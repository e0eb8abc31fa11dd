//! Moderation in the hub: changing a room's (or the server's) policy and
//! enforcing it on the members present, kicks, and the server operators'
//! disconnects and notices — here and, through the broker, on every node.
//!
//! A policy change is written to the store first (retried when another
//! node changed the same policy meanwhile: the write names the version it
//! read), then installed here, then announced to the other nodes
//! ([`ModerationEvent::PolicyChanged`]), which read it from the store and
//! install it too. Installing removes at once the members, on this node,
//! that a new ban covers. Without a store a policy lives in this process.
//! Who may change what is decided by the caller (`crate::moderation`).

use super::broker::ModerationEvent;
use super::state::Device;
use super::*;

/// How many times a policy change is retried against concurrent changes
/// from other nodes before giving up (`store_unavailable`).
const MAX_POLICY_RETRIES: usize = 8;

impl Hub {
    /// The key, display name and policy of room `room`, reading the room
    /// in from the store if it is not in memory.
    ///
    /// Errors: `invalid_room`; `no_such_room` for a room that was never
    /// used (nobody in it, no history, no policy).
    pub async fn room_policy(
        self: &Arc<Self>,
        room: &str,
    ) -> Result<(String, Arc<str>, Arc<Policy>), HubError> {
        let key = self.open_room(&names::validate_room(room)?).await?;
        let state = self.lock();
        let room_state = state
            .rooms
            .get(&key)
            .ok_or_else(|| HubError::NoSuchRoom(room.to_string()))?;
        Ok((key, room_state.name.clone(), room_state.policy.clone()))
    }

    /// The server's policy (server-wide bans).
    pub fn server_policy(&self) -> Arc<Policy> {
        self.lock().server_policy.clone()
    }

    /// Changes the policy of room `key` (`""`: the server's) by `change`,
    /// which may refuse; stores it, installs it here (removing whoever a
    /// new ban covers, `by` named as who did it) and tells the other nodes.
    /// `name` is the room's display name, for a room not in memory.
    ///
    /// Errors: what `change` returns; `store_unavailable`.
    pub async fn change_policy(
        &self,
        key: &str,
        by: &str,
        mut change: impl FnMut(&mut Policy) -> Result<(), HubError>,
    ) -> Result<Arc<Policy>, HubError> {
        let policy = match &self.store {
            Some(store) => {
                let unavailable = |e: crate::store::StoreError| {
                    tracing::warn!(error = %e, "policy store failed");
                    HubError::StoreUnavailable
                };
                let mut stored = None;
                for _ in 0..MAX_POLICY_RETRIES {
                    let read = store.policy(key).await.map_err(unavailable)?;
                    let (mut policy, version) = match read {
                        Some((json, version)) => (parse_policy(key, &json)?, Some(version)),
                        None => (Policy::default(), None),
                    };
                    self.forget_gone_guests(&mut policy);
                    change(&mut policy)?;
                    policy.expire(event::now_millis());
                    let json = serde_json::to_string(&policy).unwrap_or_default();
                    if store
                        .put_policy(key, &json, version)
                        .await
                        .map_err(unavailable)?
                    {
                        // The store's version after this write.
                        if version.is_none() && !key.is_empty() {
                            // A room whose rules are stored is a stored room.
                            self.claim_room_name(key);
                        }
                        stored = Some((policy, version.map_or(1, |v| v + 1)));
                        break;
                    }
                }
                let (policy, version) = stored.ok_or(HubError::StoreUnavailable)?;
                (Arc::new(policy), Some(version))
            }
            None => {
                let mut policy = (*self.current_policy(key)).clone();
                self.forget_gone_guests(&mut policy);
                change(&mut policy)?;
                policy.expire(event::now_millis());
                (Arc::new(policy), None)
            }
        };
        let (policy, version) = policy;
        self.install_policy(key, policy.clone(), by, version);
        if let Some(broker) = &self.broker {
            broker.moderation(ModerationEvent::PolicyChanged {
                key: key.to_string(),
                by: by.into(),
            });
        }
        Ok(policy)
    }

    /// The policy in memory for room `key` (`""`: the server's).
    fn current_policy(&self, key: &str) -> Arc<Policy> {
        let state = self.lock();
        if key.is_empty() {
            return state.server_policy.clone();
        }
        state
            .rooms
            .get(key)
            .map(|r| r.policy.clone())
            .unwrap_or_default()
    }

    /// Reads room `key`'s policy (`""`: the server's) from the store and
    /// installs it: the server is starting.
    pub(crate) async fn reload_policy(&self, key: &str) {
        self.reload_policy_by(key, "an operator").await;
    }

    /// Reads again every policy in memory (the rooms' and the server's),
    /// after this node may have missed announcements of changes (its
    /// subscription to the cluster was lost). Until a room's is read, the
    /// room admits nobody new (`Room::policy_stale`): never an older policy
    /// than one that may exist.
    pub(crate) fn resync_policies(self: &Arc<Self>) {
        if self.store.is_none() {
            return;
        }
        let keys: Vec<String> = {
            let mut state = self.lock();
            for room in state.rooms.values_mut() {
                room.policy_stale = true;
            }
            state.rooms.keys().cloned().collect()
        };
        let hub = self.clone();
        tokio::spawn(async move {
            hub.reload_policy_by("", "an operator").await;
            for key in keys {
                hub.reload_policy_by(&key, "an operator").await;
            }
        });
    }

    /// Reads room `key`'s policy from the store and installs it: `by`
    /// changed it on another node.
    async fn reload_policy_by(&self, key: &str, by: &str) {
        let Some(store) = &self.store else {
            return;
        };
        match store.policy(key).await {
            Ok(Some((json, version))) => match parse_policy(key, &json) {
                Ok(policy) => self.install_policy(key, Arc::new(policy), by, Some(version)),
                Err(_) => {
                    if let Some(room) = self.lock().rooms.get_mut(key) {
                        room.policy_stale = true;
                    }
                }
            },
            Ok(None) => {
                // Nothing stored: the default rules are the room's.
                if let Some(room) = self.lock().rooms.get_mut(key) {
                    room.policy = Arc::default();
                    room.policy_stale = false;
                }
            }
            Err(e) => {
                // Never serve a policy older than one known to exist: the
                // room refuses entries until the next read succeeds.
                tracing::warn!(error = %e, "reading a room policy failed");
                if let Some(room) = self.lock().rooms.get_mut(key) {
                    room.policy_stale = true;
                }
            }
        }
    }

    /// Makes `policy` room `key`'s (`""`: the server's) here, and removes
    /// the members it bans: from the room, or for the server's, from the
    /// server. A room not in memory is left alone (it reads its policy
    /// when someone joins it).
    ///
    /// `version` is the store's version of it (`None` without a store):
    /// one older than the version installed already is dropped, so reads
    /// that finish out of order never take a room back to older rules.
    pub(crate) fn install_policy(
        &self,
        key: &str,
        policy: Arc<Policy>,
        by: &str,
        version: Option<i64>,
    ) {
        let now = event::now_millis();
        let mut changed_sessions = Vec::new();
        {
            let mut guard = self.lock();
            let state = &mut *guard;
            if key.is_empty() {
                if let Some(version) = version {
                    if version < state.server_policy_version {
                        return;
                    }
                    state.server_policy_version = version;
                }
                state.server_policy = policy.clone();
                for (id, member) in &state.sessions {
                    let Some(who) = state.who(*id) else { continue };
                    if self.is_server_operator(&who) {
                        continue;
                    }
                    if let Some(ban) = policy.ban_of(&who, now) {
                        let reason = match &ban.reason {
                            Some(r) => format!("you are banned from this server: {r}"),
                            None => "you are banned from this server".to_string(),
                        };
                        member.outbox.close(CloseReason::Removed {
                            reason: reason.into(),
                        });
                    }
                }
                return;
            }
            let Some(room) = state.rooms.get_mut(key) else {
                return;
            };
            if let Some(version) = version {
                if version < room.policy_version {
                    return;
                }
                room.policy_version = version;
            }
            room.policy = policy.clone();
            room.policy_stale = false;
            let room = &state.rooms[key];
            // Who the new policy bans, once per user (every device goes).
            let mut banned: Vec<(String, Option<Arc<str>>)> = Vec::new();
            let locals = room.members.keys().filter_map(|id| state.who(*id));
            let remotes = room.remote.iter().filter_map(|id| state.remote.who(id));
            for who in locals.chain(remotes) {
                if self.is_operator(&policy, &who) {
                    continue;
                }
                if let Some(ban) = policy.ban_of(&who, now) {
                    let nick = names::nick_key(who.nick);
                    if !banned.iter().any(|(n, _)| *n == nick) {
                        banned.push((nick, ban.reason.as_deref().map(Arc::from)));
                    }
                }
            }
            for (nick, reason) in banned {
                changed_sessions.extend(self.remove_user(state, key, &nick, by, reason, true));
            }
        }
        for id in changed_sessions {
            self.presence_changed(id);
        }
    }

    /// Kicks the user `nick` from room `key`, on every node: each of its
    /// sessions leaves the room, which sees [`EventKind::Kicked`].
    ///
    /// Errors: `no_such_nick` when nobody of that name is in the room.
    pub fn kick(
        &self,
        key: &str,
        nick: &str,
        by: &str,
        reason: Option<&str>,
    ) -> Result<(), HubError> {
        let nick_key = names::nick_key(nick);
        let reason: Option<Arc<str>> = reason.map(Arc::from);
        let changed = {
            let mut state = self.lock();
            if !state.user_in_room(&nick_key, key, Device::Nobody) {
                return Err(HubError::NoSuchNick(nick.to_string()));
            }
            self.remove_user(&mut state, key, &nick_key, by, reason.clone(), false)
        };
        for id in changed {
            self.presence_changed(id);
        }
        if let Some(broker) = &self.broker {
            broker.moderation(ModerationEvent::Kick {
                key: key.to_string(),
                nick: nick_key,
                by: by.into(),
                reason,
                banned: false,
            });
        }
        Ok(())
    }

    /// Disconnects every session of `nick` on every node (a server
    /// operator's `/kill`).
    ///
    /// Errors: `no_such_nick` when nobody holds it anywhere.
    pub fn disconnect_user(&self, nick: &str, reason: &str) -> Result<(), HubError> {
        let key = names::nick_key(nick);
        if self.whois(nick).is_none() {
            return Err(HubError::NoSuchNick(nick.to_string()));
        }
        self.disconnect_here(&key, reason);
        if let Some(broker) = &self.broker {
            broker.moderation(ModerationEvent::Disconnect {
                nick: key,
                reason: reason.into(),
            });
        }
        Ok(())
    }

    /// A server operator's notice, to every session on every node.
    pub fn notice_everyone(&self, text: &str) {
        self.notice_here(text);
        if let Some(broker) = &self.broker {
            broker.moderation(ModerationEvent::Notice { text: text.into() });
        }
    }

    /// Applies another node's moderation action to this node's sessions.
    pub(crate) fn remote_moderation(self: &Arc<Self>, event: ModerationEvent) {
        match event {
            ModerationEvent::PolicyChanged { key, by } => {
                let hub = self.clone();
                tokio::spawn(async move { hub.reload_policy_by(&key, &by).await });
            }
            ModerationEvent::Kick {
                key,
                nick,
                by,
                reason,
                banned,
            } => {
                let changed = {
                    let mut state = self.lock();
                    self.remove_user(&mut state, &key, &nick, &by, reason, banned)
                };
                for id in changed {
                    self.presence_changed(id);
                }
            }
            ModerationEvent::Disconnect { nick, reason } => self.disconnect_here(&nick, &reason),
            ModerationEvent::Notice { text } => self.notice_here(&text),
            ModerationEvent::Topic { key, topic, by } => {
                self.announce_here(&key, |room| EventKind::Topic {
                    room,
                    topic,
                    by,
                    changed: true,
                })
            }
            ModerationEvent::Mode { key, by, change } => {
                self.announce_here(&key, |room| EventKind::Mode { room, by, change })
            }
        }
    }

    /// Tells room `key`'s members on every node that its topic changed.
    pub fn announce_topic(&self, key: &str, topic: Option<&str>, by: &str) {
        let topic: Option<Arc<str>> = topic.map(Arc::from);
        let by: Arc<str> = by.into();
        self.announce_here(key, |room| EventKind::Topic {
            room,
            topic: topic.clone(),
            by: by.clone(),
            changed: true,
        });
        if let Some(broker) = &self.broker {
            broker.moderation(ModerationEvent::Topic {
                key: key.to_string(),
                topic,
                by,
            });
        }
    }

    /// Tells room `key`'s members on every node of a mode or role change.
    pub fn announce_mode(&self, key: &str, change: &str, by: &str) {
        let (change, by): (Arc<str>, Arc<str>) = (change.into(), by.into());
        self.announce_here(key, |room| EventKind::Mode {
            room,
            by: by.clone(),
            change: change.clone(),
        });
        if let Some(broker) = &self.broker {
            broker.moderation(ModerationEvent::Mode {
                key: key.to_string(),
                by,
                change,
            });
        }
    }

    fn disconnect_here(&self, nick_key: &str, reason: &str) {
        let state = self.lock();
        for id in state.holders(nick_key) {
            if let Some(member) = state.sessions.get(&id) {
                member.outbox.close(CloseReason::Removed {
                    reason: reason.into(),
                });
            }
        }
    }

    fn notice_here(&self, text: &str) {
        let state = self.lock();
        let notice = Event::new(EventKind::Notice {
            text: text.to_string(),
        });
        for member in state.sessions.values() {
            self.deliver(&member.outbox, notice.clone());
        }
    }

    /// Removes user `nick_key` (all its sessions here, and this node's
    /// mirror of its sessions elsewhere) from room `key`, telling the room
    /// once. A line client removed from its only room goes to the default
    /// room, or, removed from that, is disconnected. Returns the local
    /// sessions whose rooms changed (the caller tells the cluster).
    pub(super) fn remove_user(
        &self,
        state: &mut State,
        key: &str,
        nick_key: &str,
        by: &str,
        reason: Option<Arc<str>>,
        banned: bool,
    ) -> Vec<SessionId> {
        let Some(room) = state.rooms.get(key) else {
            return Vec::new();
        };
        let local: Vec<SessionId> = state
            .holders(nick_key)
            .filter(|id| room.members.contains_key(id))
            .collect();
        let remote: Vec<RemoteId> = state
            .remote
            .holders(nick_key)
            .filter(|id| room.remote.contains(*id))
            .cloned()
            .collect();
        let nick = local
            .first()
            .and_then(|id| state.sessions.get(id))
            .map(|m| m.nick.clone())
            .or_else(|| {
                remote
                    .first()
                    .and_then(|id| state.remote.member(id))
                    .map(|(n, _)| n)
            });
        let Some(nick) = nick else {
            return Vec::new();
        };
        let kicked = Event::new(EventKind::Kicked {
            room: room.name.clone(),
            nick,
            by: by.into(),
            reason,
            banned,
        });
        self.fan_out(room, &kicked);
        let room_name = room.name.clone();
        if let Some(room) = state.rooms.get_mut(key) {
            for id in &local {
                room.members.remove(id);
            }
            for id in &remote {
                room.remote.remove(id);
            }
        }
        self.hear_room(state, key);
        let default_key = names::fold(&self.config.default_room);
        for id in &local {
            let Some(member) = state.sessions.get_mut(id) else {
                continue;
            };
            member.rooms.retain(|r| r != key);
            if !(member.one_room && member.rooms.is_empty()) {
                continue;
            }
            if key == default_key {
                member.outbox.close(CloseReason::Removed {
                    reason: format!("removed from {room_name}").into(),
                });
                continue;
            }
            let default_room = self.config.default_room.clone();
            let entered = self
                .check_entry(state, *id, &default_key)
                .and_then(|()| self.enter_room(state, *id, &default_key, &default_room, None));
            match entered {
                Ok(()) => {
                    if let Some(member) = state.sessions.get_mut(id) {
                        member.rooms.push(default_key.clone());
                        let notice = format!("you are now in {default_room}");
                        self.deliver(
                            &member.outbox,
                            Event::new(EventKind::Notice { text: notice }),
                        );
                    }
                }
                Err(e) => {
                    if let Some(member) = state.sessions.get(id) {
                        member.outbox.close(CloseReason::Removed {
                            reason: e.to_string().into(),
                        });
                    }
                }
            }
        }
        state.drop_room_if_empty(key, &self.config.default_room, self.store.is_some());
        local
    }

    /// Makes session `id`, if logged in, the owner of room `key`, which it
    /// has just created (`name`: as it spelled it). A guest creates rooms
    /// nobody owns.
    pub(super) async fn claim_room(&self, key: &str, name: &str, id: SessionId) {
        let (account, nick) = {
            let state = self.lock();
            match state.who(id) {
                Some(Who {
                    account: Some(account),
                    nick,
                    ..
                }) => (account.to_string(), nick.to_string()),
                _ => return,
            }
        };
        let claimed = self
            .change_policy(key, &nick, |policy| {
                if policy.owner.is_none() {
                    policy.owner = Some(account.clone());
                    policy.name.get_or_insert_with(|| name.to_string());
                }
                Ok(())
            })
            .await;
        if let Err(e) = claimed {
            tracing::warn!(room = key, error = %e, "could not record a room's owner");
        }
    }

    /// Tells session `id` the topic of room `key`, if it has one.
    pub(super) fn send_topic(&self, state: &State, id: SessionId, key: &str) {
        let (Some(room), Some(member)) = (state.rooms.get(key), state.sessions.get(&id)) else {
            return;
        };
        if let Some(topic) = &room.policy.topic {
            self.deliver(
                &member.outbox,
                Event::new(EventKind::Topic {
                    room: room.name.clone(),
                    topic: Some(topic.text.as_str().into()),
                    by: topic.by.as_str().into(),
                    changed: false,
                }),
            );
        }
    }

    /// Tells room `key`'s members here the event `make` builds from the
    /// room's display name.
    fn announce_here(&self, key: &str, make: impl FnOnce(Arc<str>) -> EventKind) {
        let state = self.lock();
        if let Some(room) = state.rooms.get(key) {
            self.fan_out(room, &Event::new(make(room.name.clone())));
        }
    }
}

/// A stored policy. One that does not parse (written by a newer version,
/// or damaged) is never taken for the default rules, nor written over:
/// the room fails closed (`policy_unavailable`) until an administrator
/// repairs it, and the error is logged.
///
/// Errors: `policy_unavailable`.
pub(super) fn parse_policy(key: &str, json: &str) -> Result<Policy, HubError> {
    serde_json::from_str(json).map_err(|e| {
        tracing::error!(room = key, error = %e, "a stored room policy does not parse");
        HubError::PolicyUnavailable(if key.is_empty() {
            "this server".to_string()
        } else {
            key.to_string()
        })
    })
}
