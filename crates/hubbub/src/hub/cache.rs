//! The byte budget of the rooms' recent-history caches.
//!
//! Each room keeps its last `--history-cache` messages in memory, so that a
//! join gets its history under the hub lock, exactly meeting live traffic.
//! Without a bound on their sum, one client writing long lines into many
//! rooms grows memory for good (4 KB lines in 10,000 rooms: about 12 GB). So
//! the caches share one budget in bytes (`--history-cache-bytes`, measured as
//! [`Event::weight`]): when a message would take the total past it, the
//! caches of the least recently written rooms are dropped whole until it
//! fits. A room whose cache was dropped still has its history in the store:
//! joiners get what the cache holds (possibly nothing) marked incomplete, and
//! page back from the store (`history` with `before`, `/history`).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use super::Event;

/// One room's cache: its recent messages and their weight.
#[derive(Debug, Default)]
pub(super) struct RoomCache {
    /// Oldest first.
    pub messages: VecDeque<Arc<Event>>,
    /// Sum of the messages' weights, in bytes.
    bytes: usize,
    /// When this room's cache was last written (its key in the LRU order),
    /// if it holds anything.
    used: Option<u64>,
}

impl RoomCache {
    pub fn len(&self) -> usize {
        self.messages.len()
    }

    pub fn iter(&self) -> std::collections::vec_deque::Iter<'_, Arc<Event>> {
        self.messages.iter()
    }
}

/// The budget shared by every room's cache.
#[derive(Debug, Default)]
pub(super) struct CacheBudget {
    /// Most bytes all caches may hold together.
    limit: usize,
    /// Bytes they hold now.
    bytes: usize,
    /// Ticks a cache write; orders the rooms by last write.
    clock: u64,
    /// Last write → room key, oldest first: the eviction order.
    lru: BTreeMap<u64, String>,
}

impl CacheBudget {
    pub fn new(limit: usize) -> CacheBudget {
        CacheBudget {
            limit,
            ..CacheBudget::default()
        }
    }

    /// Bytes all caches hold now.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Appends `event` to room `key`'s `cache`, dropping its oldest message
    /// when it already holds `keep`; marks the room most recently written.
    /// The caller then calls [`CacheBudget::over`] to find what to evict.
    pub fn push(&mut self, key: &str, cache: &mut RoomCache, event: Arc<Event>, keep: usize) {
        if keep == 0 {
            return;
        }
        while cache.messages.len() >= keep {
            let Some(oldest) = cache.messages.pop_front() else {
                break;
            };
            let weight = oldest.weight();
            cache.bytes -= weight;
            self.bytes -= weight;
        }
        let weight = event.weight();
        cache.bytes += weight;
        self.bytes += weight;
        cache.messages.push_back(event);
        self.touch(key, cache);
    }

    /// Replaces room `key`'s cache with `messages` (history read from the store).
    pub fn replace(&mut self, key: &str, cache: &mut RoomCache, messages: VecDeque<Arc<Event>>) {
        self.clear(cache);
        cache.bytes = messages.iter().map(|e| e.weight()).sum();
        self.bytes += cache.bytes;
        cache.messages = messages;
        if !cache.messages.is_empty() {
            self.touch(key, cache);
        }
    }

    /// Empties `cache` (its room is evicted or gone).
    pub fn clear(&mut self, cache: &mut RoomCache) {
        self.bytes -= cache.bytes;
        cache.bytes = 0;
        cache.messages = VecDeque::new();
        if let Some(used) = cache.used.take() {
            self.lru.remove(&used);
        }
    }

    /// While over the limit: the least recently written room's key, taken
    /// out of the eviction order (the caller clears that room's cache).
    pub fn over(&mut self) -> Option<String> {
        if self.bytes <= self.limit {
            return None;
        }
        self.lru.pop_first().map(|(_, key)| key)
    }

    fn touch(&mut self, key: &str, cache: &mut RoomCache) {
        self.clock += 1;
        match cache.used.replace(self.clock) {
            Some(previous) => {
                let key = self
                    .lru
                    .remove(&previous)
                    .unwrap_or_else(|| key.to_string());
                self.lru.insert(self.clock, key);
            }
            None => {
                self.lru.insert(self.clock, key.to_string());
            }
        }
    }

    /// Forgets the eviction slot of a cache whose key [`CacheBudget::over`]
    /// just handed out, then empties it.
    pub fn evicted(&mut self, cache: &mut RoomCache) {
        cache.used = None;
        self.clear(cache);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::EventKind;

    fn message(text: &str) -> Arc<Event> {
        Event::new(EventKind::Notice { text: text.into() })
    }

    #[test]
    fn the_least_recently_written_rooms_go_first() {
        let one = message(&"x".repeat(100)).weight();
        let mut budget = CacheBudget::new(one * 3);
        let (mut a, mut b, mut c) = (
            RoomCache::default(),
            RoomCache::default(),
            RoomCache::default(),
        );
        budget.push("a", &mut a, message(&"x".repeat(100)), 10);
        budget.push("b", &mut b, message(&"x".repeat(100)), 10);
        budget.push("a", &mut a, message(&"x".repeat(100)), 10);
        assert_eq!(budget.over(), None);
        budget.push("c", &mut c, message(&"x".repeat(100)), 10);
        // Four messages, room for three: b was written least recently.
        assert_eq!(budget.over(), Some("b".to_string()));
        budget.evicted(&mut b);
        assert_eq!(budget.over(), None);
        assert_eq!(budget.bytes(), one * 3);
        assert_eq!((a.len(), b.len(), c.len()), (2, 0, 1));
    }

    #[test]
    fn a_full_cache_drops_its_oldest_message() {
        let mut budget = CacheBudget::new(usize::MAX);
        let mut a = RoomCache::default();
        for i in 0..5 {
            budget.push("a", &mut a, message(&i.to_string()), 3);
        }
        assert_eq!(a.len(), 3);
        assert_eq!(budget.bytes(), a.iter().map(|e| e.weight()).sum::<usize>());
    }
}
