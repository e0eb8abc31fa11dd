//! Rooms: entering and leaving (with their announcements and the history
//! a joiner gets), the room listing, and member lists.

use std::collections::VecDeque;

use super::state::Device;
use super::*;

impl Hub {
    /// Every room with its member count, sorted by name.
    pub fn rooms(&self) -> RoomList {
        let all = self.directory();
        let total = all.len();
        let mut rooms: Vec<RoomSummary> = all.iter().cloned().collect();
        if total > MAX_LISTED_ROOMS {
            rooms.select_nth_unstable_by(MAX_LISTED_ROOMS - 1, |a, b| b.members.cmp(&a.members));
            rooms.truncate(MAX_LISTED_ROOMS);
        }
        rooms.sort_by_cached_key(|r| names::fold(&r.name));
        RoomList { total, rooms }
    }

    /// Every room with its member count, unsorted. The copy is taken under
    /// the hub lock (no sorting, no allocation per room); with many rooms
    /// it is reused for up to [`DIRECTORY_MAX_AGE`], so listings asked for
    /// often cannot hold the lock for work proportional to the server's
    /// size, however many clients ask.
    pub(super) fn directory(&self) -> Arc<Vec<RoomSummary>> {
        let mut cached = self.directory.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((taken, list)) = &*cached {
            if list.len() >= DIRECTORY_LIVE_BELOW && taken.elapsed() < DIRECTORY_MAX_AGE {
                return list.clone();
            }
        }
        let list: Vec<RoomSummary> = self
            .lock()
            .rooms
            .values()
            .map(|r| RoomSummary {
                // The listing is everyone's: the topic of a room not every
                // one may read (`+i`, `+R`) is the gate's to show, to those
                // it lets read the room (`topic` with the room's name).
                topic: r
                    .policy
                    .topic
                    .as_ref()
                    .filter(|_| !(r.policy.modes.invite_only || r.policy.modes.registered_only))
                    .map(|t| t.text.as_str().into()),
                name: r.name.clone(),
                members: r.members.len() + r.remote.len(),
            })
            .collect();
        let list = Arc::new(list);
        *cached = Some((std::time::Instant::now(), list.clone()));
        list
    }

    /// A page of the members of `room` (case-insensitive name, optional
    /// `#`), as `reader` may see them (the gate's [`gate::Action::Read`]).
    ///
    /// Errors: `invalid_room`, `no_such_room`, the gate's refusals.
    pub async fn members(
        self: &Arc<Self>,
        reader: SessionId,
        room: &str,
        query: &MembersQuery,
    ) -> Result<RoomMembers, HubError> {
        // As for history: the store's policy, if none is current here.
        let key = self.open_room(&names::validate_room(room)?).await?;
        let mut state = self.lock();
        if !state.rooms.contains_key(&key) {
            return Err(HubError::NoSuchRoom(room.to_string()));
        }
        self.check_read(&state, reader, &key)?;
        Ok(self.members_page(&mut state, &key, query))
    }

    pub(super) fn leave(&self, id: SessionId, reason: Option<Arc<str>>) {
        let mut state = self.lock();
        let Some(member) = state.sessions.remove(&id) else {
            return;
        };
        let folded = names::nick_key(&member.nick);
        state.release_nick(&member.nick, id);
        let announce = !self.shutting_down.load(Ordering::Relaxed);
        for key in &member.rooms {
            self.exit_room(&mut state, id, key, &member.nick, reason.clone(), announce);
        }
        drop(state);
        // When the server stops, the cluster hears it once, as the node
        // leaving (`Broker::stop`), which announces every session.
        if announce {
            if let Some(broker) = &self.broker {
                broker.session_closed(id, reason);
            }
            self.release_nick(folded, id);
        }
        self.stats.sessions_closed.fetch_add(1, Ordering::Relaxed);
    }

    /// Takes session `id` out of room `key`, tells the others, and drops the
    /// room if that emptied it. (The caller updates the member's room list.)
    pub(super) fn exit_room(
        &self,
        state: &mut State,
        id: SessionId,
        key: &str,
        nick: &Arc<str>,
        reason: Option<Arc<str>>,
        announce: bool,
    ) {
        let Some(room) = state.rooms.get_mut(key) else {
            return;
        };
        room.members.remove(&id);
        self.hear_room(state, key);
        if announce {
            self.announce_left(state, key, nick, reason, Device::Local(id));
        }
        state.drop_room_if_empty(key, &self.config.default_room, self.store.is_some());
    }

    /// Tells room `room_key` that one session (`device`) of user `old` is
    /// now `new`: `Renamed` when that was the user's only session there
    /// and `new` was not there yet; otherwise the join of `new` and/or
    /// the leave of `old` that keep each user once in the member list.
    pub(super) fn renamed_in(
        &self,
        state: &mut State,
        room_key: &str,
        old: &Arc<str>,
        new: &Arc<str>,
        device: Device<'_>,
    ) {
        let Some(room) = state.rooms.get(room_key) else {
            return;
        };
        let (old_key, new_key) = (names::nick_key(old), names::nick_key(new));
        let (old_stays, new_here) = if old_key == new_key {
            (false, false)
        } else {
            (
                state.user_in_room(&old_key, room_key, device),
                state.user_in_room(&new_key, room_key, device),
            )
        };
        let renamed = Event::new(EventKind::Renamed {
            room: room.name.clone(),
            old: old.clone(),
            new: new.clone(),
        });
        // The session renamed sees its rename; the others what changed
        // in the member list, if anything.
        let own = match device {
            Device::Local(id) => {
                if let Some(outbox) = room.members.get(&id) {
                    self.deliver(outbox, renamed.clone());
                }
                Some(id)
            }
            Device::Remote(_) | Device::Nobody => None,
        };
        let name = room.name.clone();
        let (change, event) = match (old_stays, new_here) {
            (false, false) => (presence::Change::Renamed, renamed.kind.clone()),
            (true, false) => (
                presence::Change::Joined,
                EventKind::Joined {
                    room: name,
                    nick: new.clone(),
                },
            ),
            (false, true) => (
                presence::Change::Left,
                EventKind::Left {
                    room: name,
                    nick: old.clone(),
                    reason: None,
                },
            ),
            (true, true) => return,
        };
        self.announce(state, room_key, change, |_| event, own);
    }

    /// Puts session `id` into room `key` (display name `name`, created if
    /// new), telling the others first, then gives the joiner the room's
    /// recent history: the last `history_on_join` messages, or with
    /// `since`, every message after that id that memory still holds. Both
    /// happen under the lock, so history and live messages neither overlap
    /// nor leave a gap. (The caller updates the member's room list.)
    pub(super) fn enter_room(
        &self,
        state: &mut State,
        id: SessionId,
        key: &str,
        name: &str,
        since: Option<u64>,
    ) -> Result<(), HubError> {
        let (nick, outbox) = {
            let member = state.member(id)?;
            (member.nick.clone(), member.outbox.clone())
        };
        // The user may be here already on another device.
        let shown = state.user_in_room(&names::nick_key(&nick), key, Device::Local(id));
        state.room_entry(key, name, self.config.max_rooms)?;
        if !shown {
            self.announce_joined(state, key, &nick);
        }
        let room = state.rooms.get_mut(key).expect("entered just now");
        room.members.insert(id, outbox.clone());
        self.send_history(room, &outbox, since);
        self.hear_room(state, key);
        self.send_topic(state, id, key);
        Ok(())
    }

    /// Gives a member of `room` its recent history: the last
    /// `history_on_join` messages, or with `since`, every message after that
    /// id that memory still holds (`complete: false` when memory no longer
    /// reaches back to it: the client pages back from the store). Called
    /// under the lock, so history and live messages neither overlap nor
    /// leave a gap.
    pub(super) fn send_history(&self, room: &Room, outbox: &Outbox, since: Option<u64>) {
        let (messages, complete) = match since {
            Some(since) => {
                let messages: Vec<_> = room
                    .recent
                    .iter()
                    .filter(|e| stored_of(e).is_some_and(|m| m.id > since))
                    .cloned()
                    .collect();
                let oldest_held =
                    room.last_id + 1 - (room.recent.len() as u64).min(room.last_id + 1);
                (
                    messages,
                    since >= oldest_held.saturating_sub(1) || room.last_id <= since,
                )
            }
            None => {
                let skip = room
                    .recent
                    .len()
                    .saturating_sub(self.config.history_on_join);
                let messages: Vec<_> = room.recent.iter().skip(skip).cloned().collect();
                let complete = room.last_id as usize <= messages.len();
                (messages, complete)
            }
        };
        if !messages.is_empty() || (since.is_some() && !complete) {
            self.deliver(
                outbox,
                Event::new(EventKind::History {
                    room: room.name.clone(),
                    messages,
                    complete,
                }),
            );
        }
    }

    /// The key room name `name` (validated) means, with that room brought
    /// in from the store ([`Hub::load_room`]): a room in memory of that
    /// name or look-alike name; else the stored room whose name looks the
    /// same, wherever and whenever it was created (`room_names`, so a
    /// Cyrillic `gаmes` means an empty stored `games` on every node and
    /// after a restart); else its own folded name.
    ///
    /// Errors: `policy_unavailable` when the store does not answer.
    pub(super) async fn open_room(&self, name: &str) -> Result<String, HubError> {
        let known = self.lock().known_room_key(name);
        let key = match (known, &self.store) {
            (Some(key), _) => key,
            (None, None) => names::fold(name),
            (None, Some(store)) => match store.room_by_look_alike(&names::nick_key(name)).await {
                Ok(stored) => stored.unwrap_or_else(|| names::fold(name)),
                Err(e) => {
                    tracing::warn!(error = %e, "reading a room name from the history store failed");
                    return Err(HubError::PolicyUnavailable(name.to_string()));
                }
            },
        };
        self.load_room(&key).await?;
        Ok(key)
    }

    /// Records in the store that room `key`, now stored, is what names
    /// looking like it mean (see [`Hub::open_room`]); in the background,
    /// as it changes nothing a caller waits for.
    pub(super) fn claim_room_name(&self, key: &str) {
        self.claim_room_names(vec![(names::nick_key(key), key.to_string())]);
    }

    /// [`Hub::claim_room_name`] for several rooms at once.
    pub(super) fn claim_room_names(&self, rooms: Vec<(String, String)>) {
        let (Some(store), Ok(runtime)) = (&self.store, tokio::runtime::Handle::try_current())
        else {
            return;
        };
        let store = store.clone();
        runtime.spawn(async move {
            if let Err(e) = store.claim_room_names(&rooms).await {
                tracing::warn!(error = %e, "recording room names in the history store failed");
            }
        });
    }

    /// Brings room `key` back from the store unless sessions here are in
    /// it (then it is current): its display name, last id and recent
    /// messages, so that whoever joins continues its history. A room in
    /// memory with nobody here (only members on other nodes) is refreshed
    /// the same way. Nothing to do without a store, or for a room that
    /// never had a message.
    ///
    /// Fails closed: if the store does not answer, nobody is admitted to
    /// a room whose rules this node cannot know (`policy_unavailable`, a
    /// "try again"), rather than to the default rules; a room whose newer
    /// policy this node was told of but could not read
    /// (`Room::policy_stale`) is the same.
    pub(super) async fn load_room(&self, key: &str) -> Result<(), HubError> {
        let Some(store) = &self.store else {
            return Ok(());
        };
        let current = |state: &State| {
            state
                .rooms
                .get(key)
                .is_some_and(|r| !r.members.is_empty() && !r.policy_stale)
        };
        if current(&self.lock()) {
            return Ok(());
        }
        let recent = self.config.history_cache;
        let loaded = async {
            let policy = store.policy(key).await?;
            let Some(room) = store.room(key).await? else {
                // A room with a policy but no message yet.
                return Ok(policy.map(|policy| {
                    let name = serde_json::from_str::<serde_json::Value>(&policy.0)
                        .ok()
                        .and_then(|p| p["name"].as_str().map(str::to_string))
                        .unwrap_or_else(|| key.to_string());
                    let room = crate::store::StoredRoom {
                        key: key.to_string(),
                        name: name.into(),
                        last_id: 0,
                    };
                    (room, Vec::new(), Some(policy))
                }));
            };
            let query = PageQuery {
                before: None,
                after: None,
                limit: u32::try_from(recent).unwrap_or(u32::MAX),
            };
            let messages = if recent > 0 {
                store.page(key, query).await?
            } else {
                Vec::new()
            };
            Ok::<_, crate::store::StoreError>(Some((room, messages, policy)))
        }
        .await;
        let (stored, messages, policy) = match loaded {
            Ok(Some((stored, messages, policy))) => {
                let policy = match policy {
                    Some((json, version)) => Some((moderation::parse_policy(key, &json)?, version)),
                    None => None,
                };
                (stored, messages, policy)
            }
            Ok(None) => {
                // Never used: the default rules are its rules. A stale
                // room whose policy is gone from the store is the same.
                if let Some(room) = self.lock().rooms.get_mut(key) {
                    if room.policy_stale {
                        room.policy = Arc::default();
                        room.policy_stale = false;
                    }
                }
                return Ok(());
            }
            Err(e) => {
                tracing::warn!(error = %e, "reading a room from the history store failed");
                let name = self
                    .lock()
                    .rooms
                    .get(key)
                    .map_or_else(|| key.to_string(), |r| r.name.to_string());
                return Err(HubError::PolicyUnavailable(name));
            }
        };
        let mut guard = self.lock();
        let state = &mut *guard;
        // Someone joined it meanwhile (it is current then); or the room
        // limit is reached, which the join will report.
        if current(state)
            || (!state.rooms.contains_key(key) && state.rooms.len() >= self.config.max_rooms)
        {
            return Ok(());
        }
        let last_id = messages
            .last()
            .map_or(stored.last_id, |m| m.id.max(stored.last_id));
        let recent = messages
            .iter()
            .map(|m| Event::new(EventKind::from_stored(m)))
            .collect();
        let persisted = stored.last_id > 0 || !messages.is_empty();
        let room = state
            .rooms
            .entry(key.to_string())
            .or_insert_with(|| Room::new(stored.name, 0));
        if !room.persisted {
            // Stored before names were recorded, or first read here.
            self.claim_room_name(key);
        }
        room.persisted |= persisted;
        let (policy, version) = policy.unwrap_or_default();
        // A newer version installed meanwhile (a change announced while
        // this read was in flight) stays.
        if version >= room.policy_version {
            room.policy = Arc::new(policy);
            room.policy_version = version;
        }
        room.policy_stale = false;
        // What arrived while the store was read (ids past what it
        // returned) is kept after what it returned, if it follows on;
        // otherwise the room resumes from the store's last id and the rest
        // is repaired from the store once the joiner is in
        // (`Hub::repair_if_behind`): either way history and the live
        // stream meet at one id.
        let mut recent: VecDeque<Arc<Event>> = recent;
        if room.members.is_empty() && room.last_id > last_id {
            let newer: Vec<Arc<Event>> = room
                .recent
                .iter()
                .filter(|e| stored_of(e).is_some_and(|m| m.id > last_id))
                .cloned()
                .collect();
            let follows = newer.len() as u64 == room.last_id - last_id
                && newer
                    .first()
                    .and_then(|e| stored_of(e))
                    .is_some_and(|m| m.id == last_id + 1);
            if follows {
                recent.extend(newer);
                while recent.len() > self.config.history_cache.max(1) {
                    recent.pop_front();
                }
            } else {
                room.known_id = room.known_id.max(room.last_id);
                room.last_id = last_id;
            }
        } else {
            room.last_id = room.last_id.max(last_id);
        }
        room.known_id = room.known_id.max(room.last_id);
        room.held.clear();
        state.cache.replace(key, &mut room.recent, recent);
        // Messages committed after the read (announced here meanwhile, or
        // while nobody here was in the room) are read from the store once
        // the joiner is in (`Hub::repair_if_behind`), after its history.
        state.note_room(key);
        state.trim_caches();
        Ok(())
    }

    /// Whether nickname `nick` is in use in the cluster (with its
    /// spelling) and, if so, whether its holder is logged in to its
    /// account, and through how many sessions (devices).
    pub fn whois(&self, nick: &str) -> Option<Presence> {
        let state = self.lock();
        let key = names::nick_key(nick);
        let mut holders = state
            .holders(&key)
            .filter_map(|id| state.sessions.get(&id))
            .map(|m| (m.nick.clone(), m.account.is_some()))
            .chain(
                state
                    .remote
                    .holders(&key)
                    .filter_map(|id| state.remote.member(id)),
            );
        let (nick, logged_in) = holders.next()?;
        Some(Presence {
            nick,
            logged_in,
            sessions: 1 + holders.count(),
        })
    }
}
