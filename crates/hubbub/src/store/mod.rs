//! Durable history: the [`HistoryStore`] trait and its implementations,
//! SQLite (the default, a file in `--data-dir`) and PostgreSQL.
//!
//! The store only persists and reads. Ids are assigned, and batches are
//! committed before anyone sees them, by the hub's sequencer
//! (`hub::sequencer`): a message is relayed, and acknowledged, only once its
//! batch is committed.

mod batch;
mod postgres;
mod sql;
mod sqlite;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

/// A room message as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    /// The room's display name.
    pub room: Arc<str>,
    pub id: u64,
    pub ts: u64,
    pub from: Arc<str>,
    pub text: Arc<str>,
    pub action: bool,
}

/// One row to write; a batch of them is written in one transaction.
#[derive(Debug, Clone)]
pub enum Record {
    /// A room message; `room_key` is the room's folded name. Its `id` is
    /// assigned by the store (see [`HistoryStore::commit`]); the id given
    /// here is ignored.
    Message {
        room_key: String,
        message: StoredMessage,
    },
    Private {
        ts: u64,
        from: Arc<str>,
        to: Arc<str>,
        text: Arc<str>,
    },
}

/// A room as stored, with its last message id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRoom {
    pub key: String,
    pub name: Arc<str>,
    pub last_id: u64,
}

/// An account as stored (see `crate::accounts`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAccount {
    /// The nickname's comparison key (`hub::names::nick_key`).
    pub key: String,
    /// The nickname as spelled at registration.
    pub name: String,
    /// A PHC string (Argon2id): algorithm, parameters, salt and hash.
    pub password_hash: String,
    /// Milliseconds since the Unix epoch.
    pub created_ms: u64,
    /// The account's stable identity, never reused (accounts registered
    /// before ids existed have their key): what rights refer to.
    pub id: String,
    /// Set by the administrator on the server itself (`hubbub operator
    /// add`), never by registering a name.
    pub server_operator: bool,
}

/// One moderation action, as the log keeps it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ModerationEntry {
    /// Room key (`''` for server-wide actions).
    pub room: String,
    /// Who acted (a nickname).
    pub actor: String,
    /// `kick`, `ban`, `unban`, `mute`, `topic`, `mode`, `op`… (docs/PROTOCOL.md).
    pub action: String,
    pub target: Option<String>,
    pub reason: Option<String>,
    /// Milliseconds since the Unix epoch.
    pub ms: u64,
}

/// Which messages a page holds: the newest `limit` with `after < id < before`,
/// returned oldest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageQuery {
    pub before: Option<u64>,
    pub after: Option<u64>,
    pub limit: u32,
}

/// What the retention task deletes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retention {
    /// Keep at most this many messages per room.
    pub max_messages_per_room: Option<u64>,
    /// Delete messages (room and private) older than this.
    pub max_age: Option<Duration>,
}

impl Retention {
    pub fn is_off(&self) -> bool {
        self.max_messages_per_room.is_none() && self.max_age.is_none()
    }
}

/// A store failure; the request that needed it gets an error, the server stays up.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A query through sqlx (PostgreSQL, or SQLite reads) failed.
    #[error("history store: {0}")]
    Sql(#[from] sqlx::Error),
    /// A commit on the SQLite writer's connection failed.
    #[error("history store (SQLite): {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The SQLite writer thread is gone (it panicked); nothing more can be
    /// committed.
    #[error("history store: the SQLite writer has stopped")]
    WriterStopped,
}

#[async_trait]
pub trait HistoryStore: Send + Sync + std::fmt::Debug + 'static {
    /// Writes `batch` in one transaction: all of it or none. Takes the batch
    /// by value so that a store writing on another thread need not copy it. Creates each
    /// message's room if new and numbers its messages from the room's
    /// counter, in batch order; returns the ids of the batch's messages, in
    /// order. Counters are locked in key order, so concurrent commits (from
    /// other nodes sharing the database) serialise per room without
    /// deadlocking, and a rolled-back batch consumes no ids.
    async fn commit(&self, batch: Vec<Record>) -> Result<Vec<u64>, StoreError>;

    /// Every stored room with its last message id.
    async fn rooms(&self) -> Result<Vec<StoredRoom>, StoreError>;

    /// The stored room under folded key `key`, if it has ever had a message.
    async fn room(&self, key: &str) -> Result<Option<StoredRoom>, StoreError> {
        Ok(self.rooms().await?.into_iter().find(|room| room.key == key))
    }

    /// A page of a room's messages (see [`PageQuery`]).
    /// Records each `(look_alike, room)`: room key `room` (stored, with
    /// history or rules) is what a name of look-alike key `look_alike`
    /// means. A key already taken keeps its room (the first stored wins,
    /// on every node); so does a repeated call.
    async fn claim_room_names(&self, names: &[(String, String)]) -> Result<(), StoreError>;

    /// The key of the stored room whose name has look-alike key
    /// `look_alike`, if any (see [`HistoryStore::claim_room_names`]).
    async fn room_by_look_alike(&self, look_alike: &str) -> Result<Option<String>, StoreError>;

    async fn page(
        &self,
        room_key: &str,
        query: PageQuery,
    ) -> Result<Vec<StoredMessage>, StoreError>;

    /// Deletes what `retention` no longer keeps; returns rows deleted.
    async fn purge(&self, retention: Retention, now_ms: u64) -> Result<u64, StoreError>;

    /// The account under nickname key `key`, if registered.
    async fn account(&self, key: &str) -> Result<Option<StoredAccount>, StoreError>;

    /// Registers `account`; `false` if its key is taken already.
    async fn create_account(&self, account: &StoredAccount) -> Result<bool, StoreError>;

    /// Replaces the password hash of account `key`; `false` if there is none.
    async fn set_password_hash(&self, key: &str, hash: &str) -> Result<bool, StoreError>;

    /// Marks account `key` a server operator (`on`) or not; `false` if
    /// there is no such account.
    async fn set_server_operator(&self, key: &str, on: bool) -> Result<bool, StoreError>;

    /// Deletes account `key`; `false` if there was none.
    async fn delete_account(&self, key: &str) -> Result<bool, StoreError>;

    /// Stores session token hash `hash` (hex SHA-256) for account `key`,
    /// valid until `expires_ms`; drops every expired token, and the
    /// account's oldest beyond its newest `keep` (`crate::session_tokens`).
    async fn create_session_token(
        &self,
        hash: &str,
        key: &str,
        expires_ms: u64,
        now_ms: u64,
        keep: usize,
    ) -> Result<(), StoreError>;

    /// The account key of session token hash `hash`, unless expired.
    async fn session_token(&self, hash: &str, now_ms: u64) -> Result<Option<String>, StoreError>;

    /// Deletes session token hash `hash`, or with `hash: None` every
    /// session token of account `key`.
    async fn delete_session_tokens(&self, key: &str, hash: Option<&str>) -> Result<(), StoreError>;

    /// The policy of room `key` (`''`: the server's) as stored: its JSON
    /// and version, if one was ever set.
    async fn policy(&self, key: &str) -> Result<Option<(String, i64)>, StoreError>;

    /// Stores `json` as the policy of room `key` if its stored version is
    /// still `read` (`None`: none was stored); `false` if another writer
    /// came first (read again and retry).
    async fn put_policy(
        &self,
        key: &str,
        json: &str,
        read: Option<i64>,
    ) -> Result<bool, StoreError>;

    /// Appends `entry` to the moderation log.
    async fn log_moderation(&self, entry: &ModerationEntry) -> Result<(), StoreError>;

    /// The newest `limit` entries of room `key`'s moderation log, oldest first.
    async fn moderation_log(
        &self,
        key: &str,
        limit: u32,
    ) -> Result<Vec<ModerationEntry>, StoreError>;

    /// Whether the store answers (`SELECT 1`), for readiness checks.
    async fn ping(&self) -> Result<(), StoreError>;

    /// `sqlite` or `postgres`, for logs.
    fn kind(&self) -> &'static str;

    /// Where the history lives, for logs: the SQLite file's path, or
    /// `user@host:port/database` for PostgreSQL (never a password).
    fn location(&self) -> &str;
}

/// Clamps a u64 into SQL's signed 64-bit integers.
fn sql_int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}
