//! The hub's state under its one lock: sessions (`Member`), rooms, and
//! the lookups every operation starts with.

use super::*;

#[derive(Debug)]
pub(super) struct Member {
    pub(super) nick: Arc<str>,
    /// Folded keys of the rooms the session is in, in joining order; the
    /// last is its current room (where room-less requests go). A line
    /// client is always in exactly one; a Socket.IO client may be in several.
    pub(super) rooms: Vec<String>,
    pub(super) outbox: Arc<Outbox>,
    /// Whether the transport shows typing indicators.
    pub(super) wants_typing: bool,
    /// Always in exactly one room (a line client): moved to the default
    /// room when removed from its room.
    pub(super) one_room: bool,
    /// The client's address (IP bans).
    pub(super) ip: Option<std::net::IpAddr>,
    /// The account it is logged in to (`crate::accounts`), whose nickname
    /// it holds: only then may other sessions hold the same nickname (the
    /// same user on several devices), and only sessions logged in to it too.
    pub(super) account: Option<LoggedIn>,
}

/// The sessions holding one nickname: one, or several sessions logged in
/// to the account that owns it (one user on several devices).
pub(super) type Holders = smallvec::SmallVec<[SessionId; 1]>;

/// One session of a user, here or on another node, as presence checks
/// name the one they leave out ([`State::user_in_room`]).
#[derive(Debug, Clone, Copy)]
pub(super) enum Device<'a> {
    Local(SessionId),
    Remote(&'a RemoteId),
    /// None left out: any session of the user counts.
    Nobody,
}

#[derive(Debug)]
pub(super) struct Room {
    pub(super) name: Arc<str>,
    pub(super) members: HashMap<SessionId, Arc<Outbox>>,
    /// Members on other nodes of the cluster.
    pub(super) remote: HashSet<RemoteId>,
    /// Id of the last message delivered here.
    pub(super) last_id: u64,
    /// Highest id known to be committed (above `last_id` while a gap is open).
    pub(super) known_id: u64,
    /// Messages that arrived ahead of a gap (see [`order`]).
    pub(super) held: BTreeMap<u64, Arc<Event>>,
    /// A task is reading the gap from the store.
    pub(super) repairing: bool,
    /// That task must read once more before it ends: it was asked for
    /// again while it ran (`Hub::read_again`).
    pub(super) reread: bool,
    /// The last `history_cache` committed messages, oldest first, within
    /// the shared byte budget ([`cache`]).
    pub(super) recent: RoomCache,
    /// Has had a message (and so, with a store, a row): kept when empty.
    pub(super) persisted: bool,
    /// Who runs the room and who may enter and speak ([`policy`]).
    pub(super) policy: Arc<Policy>,
    /// Another node changed the policy and this node could not read the
    /// new one: entries are refused until it is read (fail closed).
    pub(super) policy_stale: bool,
    /// The store's version of `policy` (0: none read yet): an older one
    /// read later is not installed over it.
    pub(super) policy_version: i64,
    /// Joins, leaves and renames not yet summarized (a big room, see
    /// [`presence`]).
    pub(super) tally: presence::Tally,
    /// The sorted member listing of a big room and when it was built
    /// ([`presence::LISTING_MAX_AGE`]).
    pub(super) listing: Option<(std::time::Instant, Arc<[presence::Listed]>)>,
    /// This node asked the cluster for the room's messages (it has members
    /// here, or it is the default room): [`Hub::hear_room`].
    pub(super) heard: bool,
}

/// Look-alike keys of stored rooms out of memory this node remembers (a
/// bound on what room names it keeps; past it, such a room is found by
/// its exact name only).
pub(super) const MAX_REMEMBERED_ROOM_NAMES: usize = 100_000;

#[derive(Debug, Default)]
pub(super) struct State {
    /// This node's id (in a cluster, the broker's; else new at each start):
    /// half of a guest session's subject ([`policy::session_subject`]).
    pub(super) node: Arc<str>,
    /// [`names::nick_look_alike`] of each session's nickname → its
    /// holders: the second key nicknames must not collide by.
    pub(super) nick_look_alikes: HashMap<String, Holders>,
    /// The look-alike key (UTS #39 skeleton, as for nicknames) of each
    /// room in memory → that room's key, so a spelling that looks like a
    /// live room's name finds that room ([`State::room_key`]).
    pub(super) look_alikes: HashMap<String, String>,
    pub(super) sessions: HashMap<SessionId, Member>,
    /// Folded nickname → the sessions holding it; makes nicknames unique
    /// case-insensitively (save for one account's several sessions).
    pub(super) nicks: HashMap<String, Holders>,
    /// Folded room name → room. A room is in memory while someone (here or
    /// on another node) is in it, and the default room always; without a
    /// store, also once it has had a message (its memory is its history).
    pub(super) rooms: HashMap<String, Room>,
    /// Sessions of the other nodes of a cluster.
    pub(super) remote: remote::Remote,
    /// The byte budget of every room's `recent` cache.
    pub(super) cache: CacheBudget,
    /// The server's own policy: server-wide bans.
    pub(super) server_policy: Arc<Policy>,
    /// The store's version of `server_policy` (see `Room::policy_version`).
    pub(super) server_policy_version: i64,
    /// New rooms each address may still open this minute.
    pub(super) room_budget: super::budget::RoomBudget,
    /// Keys of the rooms with a presence summary due ([`presence`]).
    pub(super) presence_due: HashSet<String>,
}

impl Room {
    pub(super) fn new(name: Arc<str>, last_id: u64) -> Room {
        Room {
            name,
            members: HashMap::new(),
            remote: HashSet::new(),
            last_id,
            known_id: last_id,
            held: BTreeMap::new(),
            repairing: false,
            reread: false,
            recent: RoomCache::default(),
            persisted: false,
            policy: Arc::default(),
            policy_stale: false,
            policy_version: 0,
            tally: presence::Tally::default(),
            listing: None,
            heard: false,
        }
    }
}

impl State {
    /// Drops the least recently written rooms' caches while the caches are
    /// over their byte budget.
    pub(super) fn trim_caches(&mut self) {
        while let Some(key) = self.cache.over() {
            if let Some(room) = self.rooms.get_mut(&key) {
                self.cache.evicted(&mut room.recent);
            }
        }
    }

    /// The room under `key`, created with display name `name` if missing
    /// and fewer than `max_rooms` exist.
    pub(super) fn room_entry(
        &mut self,
        key: &str,
        name: &str,
        max_rooms: usize,
    ) -> Result<&mut Room, HubError> {
        let count = self.rooms.len();
        match self.rooms.entry(key.to_string()) {
            std::collections::hash_map::Entry::Occupied(room) => Ok(room.into_mut()),
            std::collections::hash_map::Entry::Vacant(_) if count >= max_rooms => {
                Err(HubError::TooManyRooms(max_rooms))
            }
            std::collections::hash_map::Entry::Vacant(slot) => {
                self.look_alikes
                    .entry(names::nick_key(name))
                    .or_insert_with(|| key.to_string());
                Ok(slot.insert(Room::new(name.into(), 0)))
            }
        }
    }

    /// Drops a room nobody is in and that never had a message (rooms with
    /// history stay, so do their ids).
    /// Takes an empty room (nobody here or on other nodes) out of memory,
    /// except the default room. A room with history goes too when `stored`
    /// (a store holds its history, and [`Hub::load_room`] brings it back on
    /// the next join); without a store, its memory is its only history.
    pub(super) fn drop_room_if_empty(&mut self, key: &str, default_room: &str, stored: bool) {
        if key != names::fold(default_room)
            && self.rooms.get(key).is_some_and(|r| {
                r.members.is_empty()
                    && r.remote.is_empty()
                    && (stored || (!r.persisted && r.policy.is_default()))
            })
        {
            if let Some(mut room) = self.rooms.remove(key) {
                self.cache.clear(&mut room.recent);
                // A room the store keeps (history, or rules) keeps its
                // name too: a look-alike spelling still means it, so no
                // one takes an empty room's name with a Cyrillic `а`.
                let kept = stored && (room.persisted || !room.policy.is_default());
                let look_alike = names::nick_key(&room.name);
                if self.look_alikes.get(&look_alike).is_some_and(|k| k == key)
                    && !(kept && self.look_alikes.len() <= MAX_REMEMBERED_ROOM_NAMES)
                {
                    self.look_alikes.remove(&look_alike);
                }
            }
        }
    }

    /// Whether the user with folded nickname `key` is in room `room_key`
    /// through a session other than `except` (another device of theirs,
    /// here or on another node): its arrival or departure through
    /// `except` then changes nothing the room sees.
    pub(super) fn user_in_room(&self, key: &str, room_key: &str, except: Device<'_>) -> bool {
        let Some(room) = self.rooms.get(room_key) else {
            return false;
        };
        let local = self.nicks.get(key).into_iter().flatten().any(|id| {
            !matches!(except, Device::Local(e) if e == *id) && room.members.contains_key(id)
        });
        local
            || self.remote.holders(key).any(|rid| {
                !matches!(except, Device::Remote(e) if e == rid) && room.remote.contains(rid)
            })
    }

    /// Refuses nickname `nick` (folded key `key`) if anyone but session
    /// `id` holds it, here or (as far as this node knows) on another node;
    /// or a nickname that looks the same. With `as_account` (the session
    /// is logged in to the account that owns `nick`), sessions logged in
    /// to it may already hold it, spelled the same: the same user on
    /// another device.
    pub(super) fn check_nick_free(
        &self,
        key: &str,
        nick: &str,
        id: SessionId,
        as_account: bool,
    ) -> Result<(), HubError> {
        let shares = |other: &SessionId| {
            as_account
                && self
                    .sessions
                    .get(other)
                    .is_some_and(|m| m.account.is_some() && &*m.nick == nick)
        };
        let blocked = |holders: Option<&Holders>| {
            holders
                .into_iter()
                .flatten()
                .any(|other| *other != id && !shares(other))
        };
        if blocked(self.nicks.get(key))
            || blocked(self.nick_look_alikes.get(&names::nick_look_alike(nick)))
            || self.remote.blocks(key, nick, as_account)
        {
            return Err(HubError::NickInUse(nick.to_string()));
        }
        Ok(())
    }

    /// The sessions here holding folded nickname `key`.
    pub(super) fn holders(&self, key: &str) -> impl Iterator<Item = SessionId> + '_ {
        self.nicks.get(key).into_iter().flatten().copied()
    }

    /// Records `nick` (whose [`names::nick_key`] is `key`) as session `id`'s.
    pub(super) fn claim_nick(&mut self, key: String, nick: &str, id: SessionId) {
        let holders = self.nicks.entry(key).or_default();
        if !holders.contains(&id) {
            holders.push(id);
        }
        let holders = self
            .nick_look_alikes
            .entry(names::nick_look_alike(nick))
            .or_default();
        if !holders.contains(&id) {
            holders.push(id);
        }
    }

    /// Forgets session `id`'s nickname `nick`.
    pub(super) fn release_nick(&mut self, nick: &str, id: SessionId) {
        fn release(map: &mut HashMap<String, Holders>, key: String, id: SessionId) {
            if let std::collections::hash_map::Entry::Occupied(mut holders) = map.entry(key) {
                holders.get_mut().retain(|h| *h != id);
                if holders.get().is_empty() {
                    holders.remove();
                }
            }
        }
        release(&mut self.nicks, names::nick_key(nick), id);
        release(&mut self.nick_look_alikes, names::nick_look_alike(nick), id);
    }

    /// Session `id` as the cluster should know it.
    pub(super) fn presence_of(&self, id: SessionId) -> Option<SessionState> {
        let member = self.sessions.get(&id)?;
        Some(SessionState {
            id,
            nick: member.nick.clone(),
            logged_in: member.account.is_some(),
            account: member.account.as_ref().map(|a| a.id.to_string()),
            server_operator: member.account.as_ref().is_some_and(|a| a.server_operator),
            ip: member.ip,
            rooms: member
                .rooms
                .iter()
                .filter_map(|k| Some((k.clone(), self.rooms.get(k)?.name.clone())))
                .collect(),
        })
    }

    /// Session `id` as policies see it.
    /// Whether the session a subject names (`session:NODE/ID`) is live,
    /// here or, as far as this node knows, on another node.
    pub(super) fn session_live(&self, subject: &str) -> bool {
        let Some((node, id)) = subject
            .strip_prefix("session:")
            .and_then(|rest| rest.rsplit_once('/'))
        else {
            return false;
        };
        let Ok(id) = id.parse::<SessionId>() else {
            return false;
        };
        if node == &*self.node {
            self.sessions.contains_key(&id)
        } else {
            self.remote.contains(node, id)
        }
    }

    pub(super) fn who(&self, id: SessionId) -> Option<Who<'_>> {
        let member = self.sessions.get(&id)?;
        Some(Who {
            nick: &member.nick,
            account: member.account.as_ref().map(|a| &*a.id),
            ip: member.ip,
            session: (&self.node, id),
            server_operator: member.account.as_ref().is_some_and(|a| a.server_operator),
        })
    }

    pub(super) fn member(&self, id: SessionId) -> Result<&Member, HubError> {
        self.sessions.get(&id).ok_or(HubError::SessionEnded)
    }

    pub(super) fn member_mut(&mut self, id: SessionId) -> Result<&mut Member, HubError> {
        self.sessions.get_mut(&id).ok_or(HubError::SessionEnded)
    }

    /// Key of the session's current room.
    pub(super) fn current_room(&self, id: SessionId) -> Result<String, HubError> {
        self.member(id)?
            .rooms
            .last()
            .cloned()
            .ok_or_else(|| HubError::NotInRoom("any room".into()))
    }

    /// The key a room name means: its own (case-folded) if that room is in
    /// memory, else that of a room in memory whose name looks the same
    /// (`gаmes` with a Cyrillic `а` is `games`), else its own.
    pub(super) fn room_key(&self, name: &str) -> String {
        let folded = names::fold(name);
        if self.rooms.contains_key(&folded) {
            return folded;
        }
        self.look_alikes
            .get(&names::nick_key(name))
            .cloned()
            .unwrap_or(folded)
    }

    /// The key of the room in memory (or remembered) that name `name`
    /// means, if any: [`State::room_key`] without the fallback.
    pub(super) fn known_room_key(&self, name: &str) -> Option<String> {
        let folded = names::fold(name);
        if self.rooms.contains_key(&folded) {
            return Some(folded);
        }
        self.look_alikes.get(&names::nick_key(name)).cloned()
    }

    /// Records room `key` (just put in memory) under its look-alike key.
    pub(super) fn note_room(&mut self, key: &str) {
        if let Some(room) = self.rooms.get(key) {
            self.look_alikes
                .entry(names::nick_key(&room.name))
                .or_insert_with(|| key.to_string());
        }
    }

    /// Key of `room`, which the session must be in.
    pub(super) fn joined_room(&self, id: SessionId, room: &str) -> Result<String, HubError> {
        let key = self.room_key(&names::validate_room(room)?);
        if self.member(id)?.rooms.contains(&key) {
            Ok(key)
        } else {
            Err(HubError::NotInRoom(room.to_string()))
        }
    }
}
