//! The SQLite store: one file, WAL journal, migrations applied at start.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// The database file, for logs.
    location: String,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and migrates it.
    pub async fn open(path: &Path) -> anyhow::Result<SqliteStore> {
        let url = format!("sqlite://{}", path.display());
        Self::connect(&url).await
    }

    /// Opens a `sqlite://` URL and migrates it.
    pub async fn connect(url: &str) -> anyhow::Result<SqliteStore> {
        let options = SqliteConnectOptions::from_str(url)?;
        let location = options.get_filename().display().to_string();
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a commit survives power loss, not only a crash; group
            // commit keeps its fsync per batch, not per message.
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options)
            .await?;
        sqlx::migrate!("migrations/sqlite").run(&pool).await?;
        Ok(SqliteStore { pool, location })
    }
}

super::sql::impl_history_store!(SqliteStore, "sqlite");
