//! The PostgreSQL store, for larger deployments and for clusters: the same
//! schema and queries as SQLite, migrations applied at start.

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Row};

use super::batch::Batch;
use super::{sql_int, Record, StoreError};

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

impl PostgresStore {
    /// PostgreSQL commits on the pool: nothing more to check than the ping.
    fn writer_alive(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Writes `batch` in one transaction of at most three statements (rooms
    /// and their counters, messages, private messages), whatever its size:
    /// each takes its rows as arrays, one per column, unpacked by `UNNEST`,
    /// so a batch costs three round trips, not one per message.
    async fn commit_batch(&self, records: Vec<Record>) -> Result<Vec<u64>, StoreError> {
        let batch = Batch::new(&records);
        let mut tx = self.pool.begin().await?;
        let mut last = HashMap::with_capacity(batch.rooms.len());
        if !batch.rooms.is_empty() {
            let keys: Vec<&str> = batch.rooms.iter().map(|r| r.key).collect();
            let names: Vec<&str> = batch.rooms.iter().map(|r| r.name).collect();
            let created: Vec<i64> = batch.rooms.iter().map(|r| sql_int(r.created_at)).collect();
            let counts: Vec<i64> = batch.rooms.iter().map(|r| sql_int(r.count)).collect();
            // One upsert creates new rooms and advances every counter. Its
            // rows are taken, and locked, in key order (the arrays are
            // sorted; ORDER BY their ordinality keeps it), so nodes
            // committing to the same rooms at once wait for each other
            // instead of deadlocking.
            let counters = sqlx::query(
                "INSERT INTO rooms (key, name, created_at, last_id) \
                 SELECT k, n, c, l FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::bigint[]) \
                 WITH ORDINALITY AS u(k, n, c, l, o) ORDER BY o \
                 ON CONFLICT (key) DO UPDATE SET last_id = rooms.last_id + EXCLUDED.last_id \
                 RETURNING key, last_id",
            )
            .bind(&keys)
            .bind(&names)
            .bind(&created)
            .bind(&counts)
            .fetch_all(&mut *tx)
            .await?;
            for row in counters {
                last.insert(row.get::<String, _>(0), row.get::<i64, _>(1) as u64);
            }
        }
        let ids = batch.number(&last).ok_or(sqlx::Error::RowNotFound)?;
        if !ids.is_empty() {
            let mut rooms = Vec::with_capacity(ids.len());
            let mut ts = Vec::with_capacity(ids.len());
            let mut senders = Vec::with_capacity(ids.len());
            let mut texts = Vec::with_capacity(ids.len());
            let mut actions = Vec::with_capacity(ids.len());
            for (key, message) in batch.messages() {
                rooms.push(key);
                ts.push(sql_int(message.ts));
                senders.push(&*message.from);
                texts.push(&*message.text);
                actions.push(message.action);
            }
            let ids: Vec<i64> = ids.iter().map(|&id| sql_int(id)).collect();
            sqlx::query(
                "INSERT INTO messages (room, id, ts, sender, text, action) \
                 SELECT * FROM UNNEST($1::text[], $2::bigint[], $3::bigint[], $4::text[], \
                 $5::text[], $6::bool[])",
            )
            .bind(&rooms)
            .bind(&ids)
            .bind(&ts)
            .bind(&senders)
            .bind(&texts)
            .bind(&actions)
            .execute(&mut *tx)
            .await?;
        }
        let privates: Vec<(u64, &str, &str, &str)> = batch.privates().collect();
        if !privates.is_empty() {
            let ts: Vec<i64> = privates.iter().map(|p| sql_int(p.0)).collect();
            let from: Vec<&str> = privates.iter().map(|p| p.1).collect();
            let to: Vec<&str> = privates.iter().map(|p| p.2).collect();
            let text: Vec<&str> = privates.iter().map(|p| p.3).collect();
            sqlx::query(
                "INSERT INTO private_messages (ts, sender, recipient, text) \
                 SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::text[])",
            )
            .bind(&ts)
            .bind(&from)
            .bind(&to)
            .bind(&text)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(ids)
    }
}

super::sql::impl_history_store!(PostgresStore, "postgres");
