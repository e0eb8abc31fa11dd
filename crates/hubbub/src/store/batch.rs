//! A batch to commit, arranged the way both SQL stores write it: one
//! statement per table per batch, never one per message.
//!
//! A commit costs round trips to the database (to SQLite's worker thread, or
//! over the network to PostgreSQL), not work: a batch of 2,000 messages in
//! 2,000 `INSERT`s spends its time in wake-ups and context switches. So each
//! store sends a batch as a handful of set-based statements: the new rooms,
//! the room counters (once per room), the messages, the private messages.
//! This module holds the part both stores share: the rooms in lock order
//! with their message counts, and the numbering from the updated counters.

use std::collections::{BTreeMap, HashMap};

use super::{Record, StoredMessage};

/// One room a batch writes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct RoomCount<'a> {
    /// The folded name (`rooms.key`).
    pub key: &'a str,
    /// The display name, for a room created by this batch.
    pub name: &'a str,
    /// `rooms.created_at` for a room created by this batch: its first
    /// message's timestamp, ms since the Unix epoch.
    pub created_at: u64,
    /// Messages of this batch in the room.
    pub count: u64,
}

/// A batch of records, with its rooms grouped.
#[derive(Debug)]
pub(super) struct Batch<'a> {
    /// Every room written to, in key order: the order counters are locked
    /// in, so concurrent commits from several nodes never deadlock.
    pub rooms: Vec<RoomCount<'a>>,
    records: &'a [Record],
}

impl<'a> Batch<'a> {
    pub fn new(records: &'a [Record]) -> Batch<'a> {
        let mut rooms: BTreeMap<&str, RoomCount<'a>> = BTreeMap::new();
        for (key, message) in messages(records) {
            rooms
                .entry(key)
                .or_insert(RoomCount {
                    key,
                    name: &message.room,
                    created_at: message.ts,
                    count: 0,
                })
                .count += 1;
        }
        Batch {
            rooms: rooms.into_values().collect(),
            records,
        }
    }

    /// The batch's room messages in order, as `(room key, message)`.
    pub fn messages(&self) -> impl Iterator<Item = (&'a str, &'a StoredMessage)> {
        messages(self.records)
    }

    /// The batch's private messages in order, as `(ts, from, to, text)`.
    pub fn privates(&self) -> impl Iterator<Item = (u64, &'a str, &'a str, &'a str)> {
        self.records.iter().filter_map(|record| match record {
            Record::Private { ts, from, to, text } => Some((*ts, &**from, &**to, &**text)),
            Record::Message { .. } => None,
        })
    }

    /// The ids of the batch's messages, in order, given each room's counter
    /// after the batch's update (`last`: key → the last id now taken). A
    /// room's messages take the ids just below its new counter, in batch
    /// order. `None` if a room's counter is missing.
    pub fn number(&self, last: &HashMap<String, u64>) -> Option<Vec<u64>> {
        let mut next: HashMap<&str, u64> = HashMap::with_capacity(self.rooms.len());
        for room in &self.rooms {
            let last = *last.get(room.key)?;
            next.insert(room.key, (last + 1).checked_sub(room.count)?);
        }
        Some(
            self.messages()
                .map(|(key, _)| {
                    let id = next.get_mut(key).expect("every room is counted");
                    *id += 1;
                    *id - 1
                })
                .collect(),
        )
    }
}

fn messages(records: &[Record]) -> impl Iterator<Item = (&str, &StoredMessage)> {
    records.iter().filter_map(|record| match record {
        Record::Message { room_key, message } => Some((room_key.as_str(), message)),
        Record::Private { .. } => None,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn message(room: &str, ts: u64) -> Record {
        Record::Message {
            room_key: room.to_lowercase(),
            message: StoredMessage {
                room: room.into(),
                id: 0,
                ts,
                from: "a".into(),
                text: "t".into(),
                action: false,
            },
        }
    }

    #[test]
    fn rooms_in_key_order_with_counts_and_first_timestamp() {
        let records = vec![
            message("Zed", 5),
            message("Abc", 6),
            Record::Private {
                ts: 7,
                from: "a".into(),
                to: "b".into(),
                text: Arc::from("p"),
            },
            message("Zed", 8),
        ];
        let batch = Batch::new(&records);
        assert_eq!(
            batch.rooms,
            vec![
                RoomCount {
                    key: "abc",
                    name: "Abc",
                    created_at: 6,
                    count: 1
                },
                RoomCount {
                    key: "zed",
                    name: "Zed",
                    created_at: 5,
                    count: 2
                },
            ]
        );
        assert_eq!(batch.privates().count(), 1);
        assert_eq!(batch.messages().count(), 3);
    }

    #[test]
    fn numbers_each_room_below_its_new_counter_in_batch_order() {
        let records = vec![message("a", 1), message("b", 1), message("a", 2)];
        let batch = Batch::new(&records);
        // a had 10 (now 12), b had 0 (now 1).
        let last = HashMap::from([("a".to_string(), 12), ("b".to_string(), 1)]);
        assert_eq!(batch.number(&last), Some(vec![11, 1, 12]));
        // A counter missing from the answer is an error, not a guess.
        assert_eq!(batch.number(&HashMap::from([("a".to_string(), 12)])), None);
    }
}
