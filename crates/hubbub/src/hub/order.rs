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

use super::cache::CacheBudget;
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
        if room.members.is_empty() {
            // Nobody here to deliver to, so no order to keep (a room only
            // other nodes' members are in). The next id is kept in the
            // room's cache (nobody to send it to), so a session joining
            // right now gets it in its history; past a gap the cache is
            // dropped and the room just notes how far it got — a session
            // joining it reloads it from the store first (`Hub::load_room`,
            // which keeps what arrived during its read).
            room.known_id = room.known_id.max(id);
            if !room.persisted {
                self.claim_room_name(key);
            }
            room.persisted = true;
            if id == room.last_id + 1 {
                self.record(&mut state.cache, key, room, id, event);
                state.trim_caches();
            } else {
                room.last_id = id;
                room.held.clear();
                state.cache.clear(&mut room.recent);
            }
            return false;
        }
        room.known_id = room.known_id.max(id);
        let mut backlogged = false;
        if id == room.last_id + 1 {
            backlogged |= self.record(&mut state.cache, key, room, id, event);
            while let Some(next) = room.held.remove(&(room.last_id + 1)) {
                let next_id = room.last_id + 1;
                backlogged |= self.record(&mut state.cache, key, room, next_id, next);
            }
        } else if room.held.len() < MAX_HELD {
            room.held.insert(id, event);
        }
        if room.known_id > room.last_id && !room.repairing {
            room.repairing = true;
            self.stats
                .gap_repairs
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tokio::spawn(repair(Arc::downgrade(self), key.to_string(), GAP_WAIT));
        }
        state.trim_caches();
        backlogged
    }

    /// Reads room `key`'s missing ids from the store now, if it has
    /// members here and ids committed that were not delivered: what a
    /// session that has just joined a room (read from the store a moment
    /// before) must get live, so that its history and the live stream meet
    /// at one id.
    pub(super) fn repair_if_behind(self: &Arc<Self>, key: &str) {
        let mut state = self.lock();
        let Some(room) = state.rooms.get_mut(key) else {
            return;
        };
        if room.members.is_empty() || room.known_id <= room.last_id || room.repairing {
            return;
        }
        room.repairing = true;
        drop(state);
        tokio::spawn(repair(
            Arc::downgrade(self),
            key.to_string(),
            Duration::ZERO,
        ));
    }

    /// Reads from the store whatever this node may have missed while it
    /// did not hear the cluster: messages of the rooms with members here,
    /// delivered in order. (Rooms nobody here is in are read when someone
    /// joins them, `Hub::load_room`.)
    pub(crate) fn catch_up(self: &Arc<Self>) {
        let mut state = self.lock();
        for (key, room) in state.rooms.iter_mut() {
            self.read_again(key, room);
        }
        drop(state);
        // Policy changes announced while this node was away were missed
        // too: read every policy in memory again (`Hub::resync_policies`).
        self.resync_policies();
    }

    /// The cluster now delivers these rooms' messages here: what was
    /// committed before, while this node did not hear them, is read from
    /// the store (for rooms with members here; the others are read when
    /// someone joins them, [`Hub::load_room`]).
    pub(crate) fn rooms_heard(self: &Arc<Self>, keys: &[String]) {
        let mut state = self.lock();
        for key in keys {
            if let Some(room) = state.rooms.get_mut(key) {
                self.read_again(key, room);
            }
        }
    }

    /// Reads room `key` (if it has members here) from the store after its
    /// last delivered id, now: a repair task, or one more round of the one
    /// running, whose read may have begun before what made this necessary
    /// (a resubscription, a new subscription to the room).
    fn read_again(self: &Arc<Self>, key: &str, room: &mut Room) {
        if room.members.is_empty() {
            return;
        }
        if room.repairing {
            room.reread = true;
            return;
        }
        room.repairing = true;
        tokio::spawn(repair(
            Arc::downgrade(self),
            key.to_string(),
            Duration::ZERO,
        ));
    }

    /// Makes `event` (message `id`) room `key`'s latest: cache and fan
    /// out. (The caller then trims the caches to their budget.)
    fn record(
        &self,
        cache: &mut CacheBudget,
        key: &str,
        room: &mut Room,
        id: u64,
        event: Arc<Event>,
    ) -> bool {
        room.last_id = id;
        if !room.persisted {
            // Its first message is stored: its name is the store's now.
            self.claim_room_name(key);
        }
        room.persisted = true;
        cache.push(
            key,
            &mut room.recent,
            event.clone(),
            self.config.history_cache,
        );
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
        // Both read together: every id up to `known` was committed before
        // the read below starts, so the store must return it.
        let Some((after, known)) = hub.lock().rooms.get(&key).map(|r| (r.last_id, r.known_id))
        else {
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
        let next = {
            let mut guard = hub.lock();
            let state = &mut *guard;
            for message in page {
                let event = Event::new(super::EventKind::from_stored(&message));
                hub.accept(state, &key, message.id, event);
            }
            let Some(room) = state.rooms.get_mut(&key) else {
                return;
            };
            if room.last_id > after {
                Round::Again
            } else if known > after {
                // No progress, yet ids up to `known` were committed before
                // the read: the store no longer has them (retention deleted
                // them). They cannot come back; deliver what is held among
                // them and go on after them. (Ids learnt during the read are
                // not judged by it: the next round reads them.)
                let bound = known.min(after + u64::from(PAGE));
                while let Some(entry) = room.held.first_entry() {
                    if *entry.key() > bound {
                        break;
                    }
                    let (id, event) = entry.remove_entry();
                    hub.record(&mut state.cache, &key, room, id, event);
                }
                if bound > room.last_id {
                    hub.stats
                        .skipped_ids
                        .fetch_add(bound - room.last_id, std::sync::atomic::Ordering::Relaxed);
                    room.last_id = bound;
                }
                while let Some(event) = room.held.remove(&(room.last_id + 1)) {
                    let id = room.last_id + 1;
                    hub.record(&mut state.cache, &key, room, id, event);
                }
                state.trim_caches();
                Round::Again
            } else if room.known_id > room.last_id {
                // A gap opened while reading: give it the usual time to fill.
                Round::AfterWait
            } else if std::mem::take(&mut room.reread) {
                // Asked for again after this round's read began
                // (`Hub::read_again`): what was committed before that is
                // read once more.
                Round::Again
            } else {
                room.held.clear();
                room.repairing = false;
                return;
            }
        };
        drop(hub);
        if let Round::AfterWait = next {
            tokio::time::sleep(GAP_WAIT).await;
        }
    }
}

/// What a repair does after one round.
enum Round {
    Again,
    AfterWait,
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use crate::hub::{Event, EventKind, Hub, HubConfig, Session};
    use crate::store::{HistoryStore, Record, SqliteStore, StoredMessage};

    fn message(id: u64, text: &str) -> StoredMessage {
        StoredMessage {
            room: "lobby".into(),
            id,
            ts: 1,
            from: "other".into(),
            text: text.into(),
            action: false,
        }
    }

    /// A hub on a fresh SQLite store, and one session in its lobby.
    async fn hub_with_store() -> (Arc<Hub>, Arc<dyn HistoryStore>, Session, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn HistoryStore> =
            Arc::new(SqliteStore::open(&dir.path().join("h.db")).await.unwrap());
        let hub = Hub::start(HubConfig::default(), Some(store.clone()), Vec::new(), None);
        let session = hub.open("me", false).await.unwrap();
        (hub, store, session, dir)
    }

    /// Commits `texts` as another node would; returns their ids.
    async fn commit_elsewhere(store: &Arc<dyn HistoryStore>, texts: &[&str]) -> Vec<u64> {
        let records: Vec<Record> = texts
            .iter()
            .map(|t| Record::Message {
                room_key: "lobby".into(),
                message: message(0, t),
            })
            .collect();
        store.commit(records).await.unwrap()
    }

    /// The texts of the messages queued for `session` within `wait`.
    async fn texts(session: &Session, wait: Duration) -> Vec<String> {
        let mut batch: Vec<Arc<Event>> = Vec::new();
        let mut texts = Vec::new();
        let deadline = tokio::time::Instant::now() + wait;
        while let Ok(true) =
            tokio::time::timeout_at(deadline, session.outbox().next_batch(&mut batch)).await
        {
            for event in batch.drain(..) {
                if let EventKind::Message { text, .. } = &event.kind {
                    texts.push(text.to_string());
                }
            }
        }
        texts
    }

    #[tokio::test]
    async fn out_of_order_and_repeated_messages_are_delivered_once_in_order() {
        let (hub, store, session, _dir) = hub_with_store().await;
        let ids = commit_elsewhere(&store, &["one", "two", "three"]).await;
        assert_eq!(ids, [1, 2, 3], "the store numbers from the room's counter");
        hub.remote_message("lobby", message(2, "two"));
        hub.remote_message("lobby", message(1, "one"));
        hub.remote_message("lobby", message(1, "one"));
        hub.remote_message("lobby", message(3, "three"));
        hub.remote_message("lobby", message(2, "two"));
        assert_eq!(
            texts(&session, Duration::from_millis(100)).await,
            ["one", "two", "three"]
        );
    }

    #[tokio::test]
    async fn a_gap_that_does_not_fill_is_read_from_the_store() {
        let (hub, store, session, _dir) = hub_with_store().await;
        commit_elsewhere(&store, &["a", "b", "c", "d"]).await;
        // Only the last one arrives (the others were lost on the way).
        hub.remote_message("lobby", message(4, "d"));
        assert_eq!(
            texts(&session, Duration::from_secs(2)).await,
            ["a", "b", "c", "d"]
        );
        // Later messages flow on from there.
        commit_elsewhere(&store, &["e"]).await;
        hub.remote_message("lobby", message(5, "e"));
        assert_eq!(texts(&session, Duration::from_millis(100)).await, ["e"]);
    }

    /// A store whose next read returns what it held when the read began,
    /// while meanwhile messages 4 to 6 commit and 5 and 6 reach the hub:
    /// a read that races with newer commits, as in a busy cluster.
    #[derive(Debug)]
    struct RacingStore {
        inner: Arc<dyn HistoryStore>,
        hub: std::sync::OnceLock<std::sync::Weak<Hub>>,
        armed: std::sync::atomic::AtomicBool,
    }

    #[async_trait::async_trait]
    impl HistoryStore for RacingStore {
        async fn commit(&self, batch: Vec<Record>) -> Result<Vec<u64>, crate::store::StoreError> {
            self.inner.commit(batch).await
        }
        async fn rooms(&self) -> Result<Vec<crate::store::StoredRoom>, crate::store::StoreError> {
            self.inner.rooms().await
        }
        async fn claim_room_names(
            &self,
            names: &[(String, String)],
        ) -> Result<(), crate::store::StoreError> {
            self.inner.claim_room_names(names).await
        }
        async fn room_by_look_alike(
            &self,
            look_alike: &str,
        ) -> Result<Option<String>, crate::store::StoreError> {
            self.inner.room_by_look_alike(look_alike).await
        }
        async fn page(
            &self,
            room_key: &str,
            query: crate::store::PageQuery,
        ) -> Result<Vec<StoredMessage>, crate::store::StoreError> {
            let page = self.inner.page(room_key, query).await?;
            if self.armed.swap(false, std::sync::atomic::Ordering::SeqCst) {
                commit_elsewhere(&self.inner, &["four", "five", "six"]).await;
                let hub = self.hub.get().and_then(|h| h.upgrade()).unwrap();
                hub.remote_message("lobby", message(5, "five"));
                hub.remote_message("lobby", message(6, "six"));
            }
            Ok(page)
        }
        async fn purge(
            &self,
            retention: crate::store::Retention,
            now_ms: u64,
        ) -> Result<u64, crate::store::StoreError> {
            self.inner.purge(retention, now_ms).await
        }
        async fn ping(&self) -> Result<(), crate::store::StoreError> {
            self.inner.ping().await
        }
        async fn account(
            &self,
            key: &str,
        ) -> Result<Option<crate::store::StoredAccount>, crate::store::StoreError> {
            self.inner.account(key).await
        }
        async fn create_account(
            &self,
            account: &crate::store::StoredAccount,
        ) -> Result<bool, crate::store::StoreError> {
            self.inner.create_account(account).await
        }
        async fn set_password_hash(
            &self,
            key: &str,
            hash: &str,
        ) -> Result<bool, crate::store::StoreError> {
            self.inner.set_password_hash(key, hash).await
        }
        async fn set_server_operator(
            &self,
            key: &str,
            on: bool,
        ) -> Result<bool, crate::store::StoreError> {
            self.inner.set_server_operator(key, on).await
        }
        async fn delete_account(&self, key: &str) -> Result<bool, crate::store::StoreError> {
            self.inner.delete_account(key).await
        }
        async fn create_session_token(
            &self,
            hash: &str,
            key: &str,
            expires_ms: u64,
            now_ms: u64,
            keep: usize,
        ) -> Result<(), crate::store::StoreError> {
            self.inner
                .create_session_token(hash, key, expires_ms, now_ms, keep)
                .await
        }
        async fn session_token(
            &self,
            hash: &str,
            now_ms: u64,
        ) -> Result<Option<String>, crate::store::StoreError> {
            self.inner.session_token(hash, now_ms).await
        }
        async fn policy(
            &self,
            key: &str,
        ) -> Result<Option<(String, i64)>, crate::store::StoreError> {
            self.inner.policy(key).await
        }
        async fn put_policy(
            &self,
            key: &str,
            json: &str,
            read: Option<i64>,
        ) -> Result<bool, crate::store::StoreError> {
            self.inner.put_policy(key, json, read).await
        }
        async fn log_moderation(
            &self,
            entry: &crate::store::ModerationEntry,
        ) -> Result<(), crate::store::StoreError> {
            self.inner.log_moderation(entry).await
        }
        async fn moderation_log(
            &self,
            key: &str,
            limit: u32,
        ) -> Result<Vec<crate::store::ModerationEntry>, crate::store::StoreError> {
            self.inner.moderation_log(key, limit).await
        }
        async fn delete_session_tokens(
            &self,
            key: &str,
            hash: Option<&str>,
        ) -> Result<(), crate::store::StoreError> {
            self.inner.delete_session_tokens(key, hash).await
        }
        fn kind(&self) -> &'static str {
            "racing"
        }
        fn location(&self) -> &str {
            "memory"
        }
    }

    #[tokio::test]
    async fn a_gap_that_opens_during_a_read_is_not_taken_for_deleted_ids() {
        let dir = tempfile::tempdir().unwrap();
        let inner: Arc<dyn HistoryStore> =
            Arc::new(SqliteStore::open(&dir.path().join("h.db")).await.unwrap());
        let racing = Arc::new(RacingStore {
            inner: inner.clone(),
            hub: std::sync::OnceLock::new(),
            armed: std::sync::atomic::AtomicBool::new(false),
        });
        let hub = Hub::start(HubConfig::default(), Some(racing.clone()), Vec::new(), None);
        racing.hub.set(Arc::downgrade(&hub)).unwrap();
        let session = hub.open("me", false).await.unwrap();
        commit_elsewhere(&inner, &["one", "two", "three"]).await;
        // 3 before 2: a repair starts; 2 fills the gap before it reads, so
        // its read finds nothing new, while 5 and 6 arrive without 4.
        racing
            .armed
            .store(true, std::sync::atomic::Ordering::SeqCst);
        hub.remote_message("lobby", message(1, "one"));
        hub.remote_message("lobby", message(3, "three"));
        hub.remote_message("lobby", message(2, "two"));
        assert_eq!(
            texts(&session, Duration::from_secs(2)).await,
            ["one", "two", "three", "four", "five", "six"]
        );
    }

    #[tokio::test]
    async fn a_room_first_heard_of_through_presence_gets_its_history() {
        // Another node opened `lobby2` and spoke there while this node did
        // not hear the cluster; then it hears of a member there first.
        let (hub, store, session, _dir) = hub_with_store().await;
        let records: Vec<Record> = ["earlier", "later"]
            .iter()
            .map(|t| Record::Message {
                room_key: "lobby2".into(),
                message: StoredMessage {
                    room: "lobby2".into(),
                    ..message(0, t)
                },
            })
            .collect();
        store.commit(records).await.unwrap();
        hub.remote_session(
            &"n2".into(),
            crate::hub::broker::SessionState {
                id: 1,
                nick: "ava".into(),
                logged_in: false,
                account: None,
                server_operator: false,
                ip: None,
                rooms: vec![("lobby2".into(), "lobby2".into())],
            },
        );
        hub.catch_up();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let (_, last_id) = session.enter("lobby2", None).await.unwrap();
        assert_eq!(last_id, 2);
        let mut batch = Vec::new();
        session.outbox().next_batch(&mut batch).await;
        let history = batch.iter().find_map(|e| match &e.kind {
            EventKind::History { messages, .. } => Some(messages.len()),
            _ => None,
        });
        assert_eq!(history, Some(2), "{batch:?}");
    }

    #[tokio::test]
    async fn ids_the_store_no_longer_has_are_skipped() {
        let (hub, store, session, _dir) = hub_with_store().await;
        // Ids 1 and 2 were committed and then deleted (retention), as far
        // as this node can tell: the store has only 3.
        let ids = commit_elsewhere(&store, &["x", "y", "z"]).await;
        assert_eq!(ids, [1, 2, 3]);
        store
            .purge(
                crate::store::Retention {
                    max_messages_per_room: Some(1),
                    max_age: None,
                },
                0,
            )
            .await
            .unwrap();
        hub.remote_message("lobby", message(3, "z"));
        assert_eq!(texts(&session, Duration::from_secs(2)).await, ["z"]);
    }
}
