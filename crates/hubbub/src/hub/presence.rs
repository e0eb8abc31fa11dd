//! Presence that scales with the room: who joins, leaves and renames, and
//! who is in a room, at a cost per change that does not grow with the room.
//!
//! In a room of up to `presence_threshold` users (default 100) every change
//! is announced as it happens, as the Go chat does (`ADDR has joined us`).
//! Past that, a change is only counted, and every `presence_interval`
//! (default 2 s) the room hears one summary ([`EventKind::Presence`]:
//! `* 37 joined, 4 left (5012 here)`): a storm of 10,000 joins costs the
//! room one line per interval instead of 50 million. Typing is not relayed
//! in such rooms either (each keystroke would cost the whole room). The
//! precedents: Discord's `large_threshold` (members sent on request past
//! it), Matrix's lazy-loaded members, Twitch's membership capability.
//!
//! Member lists are paged ([`MembersQuery`]) and counted: a page is cut
//! from a sorted listing of the room, rebuilt for every request in a room
//! up to the threshold and at most once per [`LISTING_MAX_AGE`] past it,
//! so a thousand joiners asking at once cost one sort.

use std::time::Instant;

use super::state::Device;
use super::*;

/// How old the member listing of a big room may be when a page is cut from it.
pub(super) const LISTING_MAX_AGE: Duration = Duration::from_secs(1);

/// Members in one page when the client does not say ([`MembersQuery`]);
/// also what a join answer lists.
pub const MEMBERS_PAGE: usize = 200;

/// Most members one page may list.
pub const MAX_MEMBERS_PAGE: usize = 1000;

/// Which page of a room's members to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MembersQuery {
    /// List the members sorted after this nickname (case-insensitively):
    /// the `next` of the previous page. `None`: from the first.
    pub after: Option<String>,
    /// Most members to list; 0 means [`MEMBERS_PAGE`], and more than
    /// [`MAX_MEMBERS_PAGE`] is cut to it.
    pub limit: usize,
}

impl MembersQuery {
    /// The first page, of the default size.
    pub fn first() -> MembersQuery {
        MembersQuery::default()
    }

    fn limit(&self) -> usize {
        match self.limit {
            0 => MEMBERS_PAGE,
            n => n.min(MAX_MEMBERS_PAGE),
        }
    }
}

/// One user in a room's listing.
#[derive(Debug, Clone)]
pub(super) struct Listed {
    /// The folded nickname, the listing's sort key.
    key: Box<str>,
    nick: Arc<str>,
    logged_in: bool,
}

/// Joins, leaves and renames of a big room not yet summarized.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Tally {
    pub(super) joined: u32,
    pub(super) left: u32,
    pub(super) renamed: u32,
}

impl Tally {
    fn is_empty(&self) -> bool {
        *self == Tally::default()
    }
}

/// One presence change of a room.
#[derive(Debug, Clone, Copy)]
pub(super) enum Change {
    Joined,
    Left,
    Renamed,
}

impl Room {
    /// Sessions in the room, here and on other nodes (a user on two
    /// devices counts twice: this is the cheap measure of size).
    pub(super) fn sessions(&self) -> usize {
        self.members.len() + self.remote.len()
    }
}

impl Hub {
    /// Whether changes in `room` are summarized rather than announced.
    pub(super) fn is_big(&self, room: &Room) -> bool {
        self.config.presence_threshold > 0 && room.sessions() > self.config.presence_threshold
    }

    /// Tells `room`'s members here about `event` (a join, leave or rename
    /// of `change`'s kind), except session `except`: at once in a room up
    /// to the threshold, counted for the next summary past it.
    pub(super) fn announce(
        &self,
        state: &mut State,
        key: &str,
        change: Change,
        event: impl FnOnce(&Room) -> EventKind,
        except: Option<SessionId>,
    ) {
        let Some(room) = state.rooms.get_mut(key) else {
            return;
        };
        if !self.is_big(room) {
            let event = Event::new(event(room));
            self.fan_out_except(room, &event, except);
            return;
        }
        let tally = &mut room.tally;
        if tally.is_empty() {
            state.presence_due.insert(key.to_string());
        }
        let count = match change {
            Change::Joined => &mut tally.joined,
            Change::Left => &mut tally.left,
            Change::Renamed => &mut tally.renamed,
        };
        *count = count.saturating_add(1);
    }

    /// Sends every room with changes counted since the last time its
    /// summary: who joined, left and renamed, and how many are there now.
    pub(super) fn summarize_presence(&self) {
        let mut guard = self.lock();
        let state = &mut *guard;
        let due = std::mem::take(&mut state.presence_due);
        for key in due {
            let Some(room) = state.rooms.get_mut(&key) else {
                continue;
            };
            let tally = std::mem::take(&mut room.tally);
            if tally.is_empty() || room.members.is_empty() {
                continue;
            }
            // Counted afresh: the summary says how many are here now.
            let members = listing(&state.sessions, &state.remote, room, Fresh::Now).len();
            let event = Event::new(EventKind::Presence {
                room: room.name.clone(),
                joined: tally.joined,
                left: tally.left,
                renamed: tally.renamed,
                members,
            });
            self.fan_out(room, &event);
        }
    }

    /// Whether a typing event is relayed in room `key`: not in a big room.
    pub(super) fn relays_typing(&self, state: &State, key: &str) -> bool {
        state.rooms.get(key).is_some_and(|room| !self.is_big(room))
    }

    /// A page of `key`'s members (see [`MembersQuery`]), and how many
    /// users the room has. The room must exist.
    pub(super) fn members_page(
        &self,
        state: &mut State,
        key: &str,
        query: &MembersQuery,
    ) -> RoomMembers {
        let State {
            rooms,
            sessions,
            remote,
            ..
        } = state;
        let room = rooms.get_mut(key).expect("members of a room that exists");
        let fresh = if self.is_big(room) {
            Fresh::Cached
        } else {
            Fresh::Uncached
        };
        let all = listing(sessions, remote, room, fresh);
        let start = match &query.after {
            None => 0,
            Some(after) => {
                let after = names::fold(after);
                all.partition_point(|m| *m.key <= *after)
            }
        };
        let page = &all[start..all.len().min(start + query.limit())];
        let more = start + page.len() < all.len();
        RoomMembers {
            name: room.name.clone(),
            count: all.len(),
            members: page.iter().map(|m| m.nick.clone()).collect(),
            logged_in: page
                .iter()
                .filter(|m| m.logged_in)
                .map(|m| m.nick.clone())
                .collect(),
            next: more.then(|| page.last().map(|m| m.nick.clone())).flatten(),
        }
    }

    /// Tells the room `key` that `nick` joined (the caller checked it is
    /// new there).
    pub(super) fn announce_joined(&self, state: &mut State, key: &str, nick: &Arc<str>) {
        self.announce(
            state,
            key,
            Change::Joined,
            |room| EventKind::Joined {
                room: room.name.clone(),
                nick: nick.clone(),
            },
            None,
        );
    }

    /// Tells the room `key` that `nick` left, unless the user is still
    /// there on another device than `device`.
    pub(super) fn announce_left(
        &self,
        state: &mut State,
        key: &str,
        nick: &Arc<str>,
        reason: Option<Arc<str>>,
        device: Device<'_>,
    ) {
        if state.user_in_room(&names::nick_key(nick), key, device) {
            return;
        }
        self.announce(
            state,
            key,
            Change::Left,
            |room| EventKind::Left {
                room: room.name.clone(),
                nick: nick.clone(),
                reason,
            },
            None,
        );
    }
}

/// How current a member listing must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fresh {
    /// Built now, and kept for the next [`Fresh::Cached`].
    Now,
    /// Built at most [`LISTING_MAX_AGE`] ago (a big room).
    Cached,
    /// Built now, not kept (a small room: exact, and cheap).
    Uncached,
}

/// The users of `room`, each once however many sessions, sorted by folded
/// nickname, as current as `fresh` says.
fn listing(
    sessions: &HashMap<SessionId, state::Member>,
    remote: &remote::Remote,
    room: &mut Room,
    fresh: Fresh,
) -> Arc<[Listed]> {
    if fresh == Fresh::Cached {
        if let Some((built, listing)) = &room.listing {
            if built.elapsed() < LISTING_MAX_AGE {
                return listing.clone();
            }
        }
    }
    let mut all: Vec<Listed> = room
        .members
        .keys()
        .filter_map(|id| {
            sessions
                .get(id)
                .map(|m| (m.nick.clone(), m.account.is_some()))
        })
        .chain(room.remote.iter().filter_map(|id| remote.member(id)))
        .map(|(nick, logged_in)| Listed {
            key: names::fold(&nick).into(),
            nick,
            logged_in,
        })
        .collect();
    all.sort_unstable_by(|a, b| a.key.cmp(&b.key));
    // Sessions share a nickname only spelled the same
    // (`check_nick_free`), so one user's are equal and now adjacent; a
    // user is logged in if any of its sessions is.
    all.dedup_by(|later, kept| {
        let same = later.nick == kept.nick;
        if same {
            kept.logged_in |= later.logged_in;
        }
        same
    });
    let listing: Arc<[Listed]> = all.into();
    room.listing = (fresh != Fresh::Uncached).then(|| (Instant::now(), listing.clone()));
    listing
}

/// Sends the summaries of big rooms every `interval` while the hub lives.
pub(super) async fn run(hub: std::sync::Weak<Hub>, interval: Duration) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        let Some(hub) = hub.upgrade() else {
            return;
        };
        hub.summarize_presence();
    }
}
