//! The PostgreSQL store, for larger deployments and for clusters: the same
//! schema and queries as SQLite, migrations applied at start.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Row};

#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
    /// `user@host:port/database`, for logs (no password).
    location: String,
}

impl PostgresStore {
    /// Connects to a `postgres://` URL and migrates the database. A
    /// `search_path` can be given in the URL (`?options=-csearch_path%3Dname`)
    /// to keep several deployments, or test runs, apart.
    pub async fn connect(url: &str) -> anyhow::Result<PostgresStore> {
        let options = PgConnectOptions::from_str(url)?;
        let location = format!(
            "{}@{}:{}/{}",
            options.get_username(),
            options.get_host(),
            options.get_port(),
            options.get_database().unwrap_or(options.get_username())
        );
        let pool = PgPoolOptions::new()
            .max_connections(8)
            // Fail requests fast while the database is unreachable; the
            // pool reconnects by itself once it is back.
            .acquire_timeout(Duration::from_secs(3))
            .connect_with(options)
            .await?;
        sqlx::migrate!("migrations/postgres").run(&pool).await?;
        Ok(PostgresStore { pool, location })
    }
}

super::sql::impl_history_store!(PostgresStore, "postgres");
