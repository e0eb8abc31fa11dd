//! Sessions on the other nodes of a cluster, as this node sees them.
//!
//! The cluster link (`crate::cluster`) feeds what other nodes publish into
//! the methods here; they update the mirror and tell this node's members
//! what changed (joins, leaves, renames), so a room's member list, `/who`,
//! `/rooms` and nickname checks cover the whole cluster while every read
//! stays synchronous under the hub lock. A node's whole state can be
//! replaced at once ([`Hub::remote_replace`]): when it says hello, when it
//! is found dead, and when this node resynchronises after losing Redis.
//!
//! A node hears only the rooms it has members in ([`Hub::hear_room`]):
//! their messages and typing, while presence and moderation reach every
//! node.

use std::collections::HashMap;
use std::sync::Arc;

use smallvec::SmallVec;

use super::broker::SessionState;
use super::state::Device;
use super::{names, Event, EventKind, Hub, SessionId, State};
use crate::store::StoredMessage;

/// A session on another node: `(node, session id there)`.
pub(crate) type RemoteId = (Arc<str>, SessionId);

/// What the room is told when a node's sessions go with it.
pub(crate) const NODE_LOST: &str = "server went away";

#[derive(Debug)]
struct RemoteSession {
    nick: Arc<str>,
    /// Logged in to its nickname's account.
    logged_in: bool,
    /// That account's stable id.
    account: Option<Arc<str>>,
    server_operator: bool,
    ip: Option<std::net::IpAddr>,
    /// Folded room keys.
    rooms: Vec<String>,
}

#[derive(Debug, Default)]
pub(super) struct Remote {
    sessions: HashMap<RemoteId, RemoteSession>,
    /// Folded nickname → its sessions (several: one account's devices).
    nicks: HashMap<String, SmallVec<[RemoteId; 1]>>,
}

impl Remote {
    /// The remote sessions holding folded nickname `key`.
    pub(super) fn holders(&self, key: &str) -> impl Iterator<Item = &RemoteId> + '_ {
        self.nicks.get(key).into_iter().flatten()
    }

    /// The remote sessions holding folded nickname `key`, with its spelling.
    pub(super) fn by_nick(&self, key: &str) -> Option<(Vec<RemoteId>, Arc<str>)> {
        let ids: Vec<RemoteId> = self.holders(key).cloned().collect();
        let nick = self.sessions.get(ids.first()?)?.nick.clone();
        Some((ids, nick))
    }

    /// Whether a remote session holds `nick` (folded: `key`) so that this
    /// node may not give it to a session of its own: any does, unless
    /// `as_account` and all of them are logged in to it, spelled the same.
    pub(super) fn blocks(&self, key: &str, nick: &str, as_account: bool) -> bool {
        self.holders(key).any(|id| {
            !as_account
                || self
                    .sessions
                    .get(id)
                    .is_none_or(|s| !s.logged_in || &*s.nick != nick)
        })
    }

    /// Whether session `id` of `node` is known here.
    pub(super) fn contains(&self, node: &str, id: SessionId) -> bool {
        self.sessions.contains_key(&(Arc::from(node), id))
    }

    /// A remote session as policies see it.
    pub(super) fn who(&self, id: &RemoteId) -> Option<super::policy::Who<'_>> {
        let (rid, s) = self.sessions.get_key_value(id)?;
        Some(super::policy::Who {
            nick: &s.nick,
            account: s.account.as_deref(),
            ip: s.ip,
            session: (&rid.0, rid.1),
            server_operator: s.server_operator,
        })
    }

    /// A remote session's nickname and whether it is logged in.
    pub(super) fn member(&self, id: &RemoteId) -> Option<(Arc<str>, bool)> {
        self.sessions.get(id).map(|s| (s.nick.clone(), s.logged_in))
    }

    fn forget_nick(&mut self, key: String, id: &RemoteId) {
        if let std::collections::hash_map::Entry::Occupied(mut holders) = self.nicks.entry(key) {
            holders.get_mut().retain(|h| h != id);
            if holders.get().is_empty() {
                holders.remove();
            }
        }
    }
}

impl Hub {
    /// A session of `node` opened, or changed its nickname or rooms.
    pub(crate) fn remote_session(&self, node: &Arc<str>, session: SessionState) {
        let mut state = self.lock();
        self.upsert_remote(&mut state, node, session);
    }

    /// A session of `node` ended.
    pub(crate) fn remote_closed(&self, node: &Arc<str>, id: SessionId, reason: Option<Arc<str>>) {
        let mut state = self.lock();
        self.remove_remote(&mut state, &(node.clone(), id), reason);
    }

    /// Everything `node` has now is `sessions`: the others have left.
    pub(crate) fn remote_replace(&self, node: &Arc<str>, sessions: Vec<SessionState>) {
        let mut state = self.lock();
        self.replace_node(&mut state, node, sessions);
    }

    /// The whole cluster is `nodes` (this node excluded): sessions of any
    /// other node have left.
    pub(crate) fn remote_sync(&self, mut nodes: HashMap<Arc<str>, Vec<SessionState>>) {
        let mut state = self.lock();
        let mut known: Vec<Arc<str>> = state
            .remote
            .sessions
            .keys()
            .map(|(n, _)| n.clone())
            .collect();
        known.sort();
        known.dedup();
        for node in known {
            if !nodes.contains_key(&node) {
                self.replace_node(&mut state, &node, Vec::new());
            }
        }
        for (node, sessions) in nodes.drain() {
            self.replace_node(&mut state, &node, sessions);
        }
    }

    /// A committed message from another node, for this node's members.
    #[cfg(test)]
    pub(crate) fn remote_message(self: &Arc<Self>, key: &str, message: StoredMessage) {
        self.remote_messages(vec![(key.to_string(), message)]);
    }

    /// Committed messages from another node (`(room key, message)`, as
    /// published), for this node's members: one lock for the lot.
    pub(crate) fn remote_messages(self: &Arc<Self>, messages: Vec<(String, StoredMessage)>) {
        let mut state = self.lock();
        for (key, message) in messages {
            if state.room_entry(&key, &message.room, usize::MAX).is_err() {
                continue;
            }
            let id = message.id;
            let event = Event::new(EventKind::from_stored(&message));
            self.accept(&mut state, &key, id, event);
        }
    }

    /// A private message from another node to session `to` of this one.
    pub(crate) fn remote_private(&self, to: SessionId, event: EventKind) {
        let state = self.lock();
        if let Some(member) = state.sessions.get(&to) {
            self.deliver(&member.outbox, Event::new(event));
        }
    }

    /// Someone on another node started or stopped typing in room `key`.
    pub(crate) fn remote_typing(&self, key: &str, event: EventKind) {
        let state = self.lock();
        let Some(room) = state.rooms.get(key) else {
            return;
        };
        if !self.relays_typing(&state, key) {
            return;
        }
        let event = Event::new(event);
        for (id, outbox) in &room.members {
            if state.sessions.get(id).is_some_and(|m| m.wants_typing) {
                self.deliver(outbox, event.clone());
            }
        }
    }

    /// Every local session as the cluster should know it.
    pub(crate) fn local_presence(&self) -> Vec<SessionState> {
        let state = self.lock();
        state
            .sessions
            .keys()
            .filter_map(|&id| state.presence_of(id))
            .collect()
    }

    fn replace_node(&self, state: &mut State, node: &Arc<str>, sessions: Vec<SessionState>) {
        let gone: Vec<RemoteId> = state
            .remote
            .sessions
            .keys()
            .filter(|(n, id)| n == node && !sessions.iter().any(|s| s.id == *id))
            .cloned()
            .collect();
        for id in gone {
            self.remove_remote(state, &id, Some(NODE_LOST.into()));
        }
        for session in sessions {
            self.upsert_remote(state, node, session);
        }
    }

    /// Records `session` of `node` and tells local members what changed;
    /// a user who is in a room through another session too (another
    /// device) neither joins nor leaves it.
    fn upsert_remote(&self, state: &mut State, node: &Arc<str>, session: SessionState) {
        let rid: RemoteId = (node.clone(), session.id);
        let old = state.remote.sessions.remove(&rid);
        let nick = session.nick.clone();
        let key = names::nick_key(&nick);
        if let Some(old) = &old {
            state.remote.forget_nick(names::nick_key(&old.nick), &rid);
        }
        let holders = state.remote.nicks.entry(key.clone()).or_default();
        if !holders.contains(&rid) {
            holders.push(rid.clone());
        }
        let old_rooms = old.as_ref().map(|o| o.rooms.clone()).unwrap_or_default();
        let new_keys: Vec<String> = session.rooms.iter().map(|(k, _)| k.clone()).collect();
        for room in old_rooms.iter().filter(|k| !new_keys.contains(k)) {
            let old_nick = old.as_ref().map_or(&nick, |o| &o.nick);
            self.remote_left(state, &rid, room, old_nick, None);
        }
        if let Some(old) = &old {
            if old.nick != nick {
                for room in old_rooms.iter().filter(|k| new_keys.contains(k)) {
                    self.renamed_in(state, room, &old.nick, &nick, Device::Remote(&rid));
                }
            }
        }
        for (room_key, name) in session.rooms.iter().filter(|(k, _)| !old_rooms.contains(k)) {
            let shown = state.user_in_room(&key, room_key, Device::Remote(&rid));
            if state.room_entry(room_key, name, usize::MAX).is_err() {
                continue;
            }
            if !shown {
                self.announce_joined(state, room_key, &nick);
            }
            if let Some(room) = state.rooms.get_mut(room_key) {
                room.remote.insert(rid.clone());
            }
        }
        state.remote.sessions.insert(
            rid,
            RemoteSession {
                nick,
                logged_in: session.logged_in,
                account: session
                    .account
                    .as_deref()
                    .filter(|_| session.logged_in)
                    .map(Arc::from),
                server_operator: session.server_operator,
                ip: session.ip,
                rooms: new_keys,
            },
        );
    }

    fn remove_remote(&self, state: &mut State, rid: &RemoteId, reason: Option<Arc<str>>) {
        let Some(old) = state.remote.sessions.remove(rid) else {
            return;
        };
        state.remote.forget_nick(names::nick_key(&old.nick), rid);
        let announce = !self
            .shutting_down
            .load(std::sync::atomic::Ordering::Relaxed);
        for room in &old.rooms {
            if announce {
                self.remote_left(state, rid, room, &old.nick, reason.clone());
            } else if let Some(r) = state.rooms.get_mut(room) {
                r.remote.remove(rid);
            }
        }
    }

    fn remote_left(
        &self,
        state: &mut State,
        rid: &RemoteId,
        key: &str,
        nick: &Arc<str>,
        reason: Option<Arc<str>>,
    ) {
        let Some(room) = state.rooms.get_mut(key) else {
            return;
        };
        if !room.remote.remove(rid) {
            return;
        }
        self.announce_left(state, key, nick, reason, Device::Remote(rid));
        state.drop_room_if_empty(key, &self.config.default_room, self.store.is_some());
    }

    /// Tells the broker whether this node needs room `key`'s messages:
    /// while it has members there (and always for the default room, where
    /// every session starts). Called under the lock wherever the room's
    /// members here change, so the broker's set follows the hub's state.
    pub(super) fn hear_room(&self, state: &mut State, key: &str) {
        let Some(broker) = &self.broker else {
            return;
        };
        let Some(room) = state.rooms.get_mut(key) else {
            return;
        };
        let wanted = !room.members.is_empty() || *key == *names::fold(&self.config.default_room);
        if room.heard != wanted {
            room.heard = wanted;
            broker.watch_room(key, wanted);
        }
    }
}
