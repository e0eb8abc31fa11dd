//! Room messages reach members in id order, exactly once, whichever node
//! committed them.
//!
//! On one node the sequencer commits in order, so every message is simply
//! the next one. In a cluster, messages of one room are numbered by the
//! shared store but travel to each node over Redis from several publishers,
//! so one may arrive before an earlier one, or (Redis disconnected, a
//! publisher's queue dropped it) never. [`Hub::accept`] therefore holds a
//! message that is ahead of a gap, and a repair task reads the missing ids
//! from the store after [`GAP_WAIT`]: whatever has a later id is committed,
//! so the store has every earlier one (each commit locks its room's counter
//! row, so a later id commits after every earlier one). Duplicates (an id
//! at or below the last delivered) are dropped.

use std::sync::{Arc, Weak};
use std::time::Duration;

use super::{Event, Hub, Room, State};
use crate::store::PageQuery;

/// Most messages held per room while waiting for a gap to fill; past it,
/// new arrivals are dropped and the repair reads them from the store.
pub(super) const MAX_HELD: usize = 4096;
/// How long a gap may stay open before the store is asked: long enough for
/// a message published a little later by another node to arrive by itself.
const GAP_WAIT: Duration = Duration::from_millis(250);
/// Messages read from the store per repair round.
const PAGE: u32 = 256;
/// Wait before retrying a failed store read.
const RETRY: Duration = Duration::from_secs(1);

impl Hub {
    /// Delivers committed message `id` of room `key` to the room's members
    /// in order (holding it if an earlier id has not arrived yet). Returns
    /// true when an outbox is backlogged (see [`Hub::pace`]).
    pub(super) fn accept(
        self: &Arc<Self>,
        state: &mut State,
        key: &str,
        id: u64,
        event: Arc<Event>,
    ) -> bool {
        let Some(room) = state.rooms.get_mut(key) else {
            return false;
        };
        if id <= room.last_id {
            return false;
        }
        room.known_id = room.known_id.max(id);
        let mut backlogged = false;
        if id == room.last_id + 1 {
            backlogged |= self.record(room, id, event);
            while let Some(next) = room.held.remove(&(room.last_id + 1)) {
                backlogged |= self.record(room, room.last_id + 1, next);
            }
        } else if room.held.len() < MAX_HELD {
            room.held.insert(id, event);
        }
        if room.known_id > room.last_id && !room.repairing {
            room.repairing = true;
            tokio::spawn(repair(Arc::downgrade(self), key.to_string(), GAP_WAIT));
        }
        backlogged
    }

    /// Reads from the store whatever the rooms with members here may have
    /// missed (after the cluster link was down), and delivers it in order.
    pub(crate) fn catch_up(self: &Arc<Self>) {
        let mut state = self.lock();
        for (key, room) in state.rooms.iter_mut() {
            if !room.members.is_empty() && !room.repairing {
                room.repairing = true;
                tokio::spawn(repair(Arc::downgrade(self), key.clone(), Duration::ZERO));
            }
        }
    }

    /// Makes `event` (message `id`) the room's latest: cache and fan out.
    fn record(&self, room: &mut Room, id: u64, event: Arc<Event>) -> bool {
        room.last_id = id;
        room.persisted = true;
        if self.config.history_cache > 0 {
            if room.recent.len() >= self.config.history_cache {
                room.recent.pop_front();
            }
            room.recent.push_back(event.clone());
        }
        self.fan_out(room, &event)
    }
}

/// Reads room `key`'s messages after its last delivered id from the store
/// until it has caught up with every id known, then ends (a later gap
/// starts a new one).
async fn repair(hub: Weak<Hub>, key: String, wait: Duration) {
    tokio::time::sleep(wait).await;
    loop {
        let Some(hub) = hub.upgrade() else {
            return;
        };
        let Some(after) = hub.lock().rooms.get(&key).map(|r| r.last_id) else {
            return;
        };
        let page = match &hub.store {
            Some(store) => {
                let query = PageQuery {
                    after: Some(after),
                    before: Some(after.saturating_add(u64::from(PAGE) + 1)),
                    limit: PAGE,
                };
                match store.page(&key, query).await {
                    Ok(page) => page,
                    Err(e) => {
                        tracing::warn!(error = %e, room = %key, "reading missed messages failed; retrying");
                        drop(hub);
                        tokio::time::sleep(RETRY).await;
                        continue;
                    }
                }
            }
            None => Vec::new(),
        };
        let mut state = hub.lock();
        let fetched = !page.is_empty();
        for message in page {
            let event = Event::new(super::EventKind::from_stored(&message));
            hub.accept(&mut state, &key, message.id, event);
        }
        let Some(room) = state.rooms.get_mut(&key) else {
            return;
        };
        if fetched {
            continue;
        }
        if room.last_id < room.known_id {
            // Known ids the store no longer has (retention deleted them)
            // cannot come back: go on from the next message there is.
            let next = room
                .held
                .keys()
                .next()
                .copied()
                .unwrap_or(room.known_id + 1);
            room.last_id = (next - 1).min(after + u64::from(PAGE));
            while let Some(event) = room.held.remove(&(room.last_id + 1)) {
                let id = room.last_id + 1;
                hub.record(room, id, event);
            }
            continue;
        }
        room.held.clear();
        room.repairing = false;
        return;
    }
}
