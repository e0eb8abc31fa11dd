//! The SQLite store: one file, WAL journal, migrations applied at start.
//!
//! Reads (and retention's deletes) go through sqlx's pool; every commit goes
//! to one writer thread that owns its own connection ([`writer`]), so a batch
//! costs one hand-off between threads, not one per statement.

mod writer;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

use super::{Record, StoreError};
use writer::Writer;

#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    writer: Writer,
    /// The database file, for logs.
    location: String,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and migrates it.
    pub async fn open(path: &Path) -> anyhow::Result<SqliteStore> {
        let url = format!("sqlite://{}", path.display());
        Self::connect(&url).await
    }

    /// Opens a `sqlite://` URL and migrates it. An in-memory database is
    /// refused (each connection would see its own): `--store memory` is
    /// the way to keep no history.
    pub async fn connect(url: &str) -> anyhow::Result<SqliteStore> {
        let options = SqliteConnectOptions::from_str(url)?;
        let file = options.get_filename().to_path_buf();
        anyhow::ensure!(
            !url.contains(":memory:") && !url.contains("mode=memory"),
            "an in-memory SQLite database cannot be shared by the store's \
             connections; use --store memory to keep no history"
        );
        let location = file.display().to_string();
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a commit survives power loss, not only a crash; group
            // commit keeps its fsync per batch, not per message.
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(writer::BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options)
            .await?;
        sqlx::migrate!("migrations/sqlite").run(&pool).await?;
        let writer = Writer::open(&file)?;
        Ok(SqliteStore {
            pool,
            writer,
            location,
        })
    }
}

impl SqliteStore {
    /// Whether the writer thread still takes commits.
    fn writer_alive(&self) -> Result<(), StoreError> {
        if self.writer.is_alive() {
            Ok(())
        } else {
            Err(StoreError::WriterStopped)
        }
    }

    /// Hands `records` to the writer thread (see [`writer`]).
    async fn commit_batch(&self, records: Vec<Record>) -> Result<Vec<u64>, StoreError> {
        self.writer.commit(records).await
    }
}

super::sql::impl_history_store!(SqliteStore, "sqlite");
