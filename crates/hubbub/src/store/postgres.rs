//! The PostgreSQL store, for larger deployments and for clusters: the same
//! schema and queries as SQLite, migrations applied at start.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Row};

use super::{
    sql_int, HistoryStore, PageQuery, Record, Retention, StoreError, StoredMessage, StoredRoom,
};

#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Connects to a `postgres://` URL and migrates the database. A
    /// `search_path` can be given in the URL (`?options=-csearch_path%3Dname`)
    /// to keep several deployments, or test runs, apart.
    pub async fn connect(url: &str) -> anyhow::Result<PostgresStore> {
        let options = PgConnectOptions::from_str(url)?;
        let pool = PgPoolOptions::new()
            .max_connections(8)
            // Fail requests fast while the database is unreachable; the
            // pool reconnects by itself once it is back.
            .acquire_timeout(Duration::from_secs(3))
            .connect_with(options)
            .await?;
        sqlx::migrate!("migrations/postgres").run(&pool).await?;
        Ok(PostgresStore { pool })
    }
}

#[async_trait]
impl HistoryStore for PostgresStore {
    async fn commit(&self, batch: &[Record]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for record in batch {
            match record {
                Record::Room {
                    key,
                    name,
                    created_at,
                } => {
                    sqlx::query(
                        "INSERT INTO rooms (key, name, created_at) VALUES ($1, $2, $3) \
                         ON CONFLICT (key) DO NOTHING",
                    )
                    .bind(key)
                    .bind(name.as_ref())
                    .bind(sql_int(*created_at))
                    .execute(&mut *tx)
                    .await?;
                }
                Record::Message { room_key, message } => {
                    sqlx::query(
                        "INSERT INTO messages (room, id, ts, sender, text, action) \
                         VALUES ($1, $2, $3, $4, $5, $6)",
                    )
                    .bind(room_key)
                    .bind(sql_int(message.id))
                    .bind(sql_int(message.ts))
                    .bind(message.from.as_ref())
                    .bind(message.text.as_ref())
                    .bind(message.action)
                    .execute(&mut *tx)
                    .await?;
                }
                Record::Private { ts, from, to, text } => {
                    sqlx::query(
                        "INSERT INTO private_messages (ts, sender, recipient, text) \
                         VALUES ($1, $2, $3, $4)",
                    )
                    .bind(sql_int(*ts))
                    .bind(from.as_ref())
                    .bind(to.as_ref())
                    .bind(text.as_ref())
                    .execute(&mut *tx)
                    .await?;
                }
            }
        }
        tx.commit().await?;
        Ok(())
    }

    async fn rooms(&self) -> Result<Vec<StoredRoom>, StoreError> {
        let rows = sqlx::query(
            "SELECT r.key, r.name, COALESCE((SELECT MAX(id) FROM messages m \
             WHERE m.room = r.key), 0) AS last_id FROM rooms r",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|row| StoredRoom {
                key: row.get("key"),
                name: row.get::<String, _>("name").into(),
                last_id: row.get::<i64, _>("last_id") as u64,
            })
            .collect())
    }

    async fn page(
        &self,
        room_key: &str,
        query: PageQuery,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        let rows = sqlx::query(
            "SELECT r.name, m.id, m.ts, m.sender, m.text, m.action \
             FROM messages m JOIN rooms r ON r.key = m.room \
             WHERE m.room = $1 AND m.id > $2 AND m.id < $3 \
             ORDER BY m.id DESC LIMIT $4",
        )
        .bind(room_key)
        .bind(sql_int(query.after.unwrap_or(0)))
        .bind(sql_int(query.before.unwrap_or(u64::MAX)))
        .bind(i64::from(query.limit))
        .fetch_all(&self.pool)
        .await?;
        let mut page: Vec<StoredMessage> = rows
            .into_iter()
            .map(|row| StoredMessage {
                room: row.get::<String, _>(0).into(),
                id: row.get::<i64, _>(1) as u64,
                ts: row.get::<i64, _>(2) as u64,
                from: row.get::<String, _>(3).into(),
                text: row.get::<String, _>(4).into(),
                action: row.get::<bool, _>(5),
            })
            .collect();
        page.reverse();
        Ok(page)
    }

    async fn purge(&self, retention: Retention, now_ms: u64) -> Result<u64, StoreError> {
        let mut deleted = 0;
        if let Some(age) = retention.max_age {
            let cutoff = sql_int(now_ms.saturating_sub(age.as_millis() as u64));
            deleted += sqlx::query("DELETE FROM messages WHERE ts < $1")
                .bind(cutoff)
                .execute(&self.pool)
                .await?
                .rows_affected();
            deleted += sqlx::query("DELETE FROM private_messages WHERE ts < $1")
                .bind(cutoff)
                .execute(&self.pool)
                .await?
                .rows_affected();
        }
        if let Some(keep) = retention.max_messages_per_room {
            deleted += sqlx::query(
                "DELETE FROM messages WHERE id <= \
                 (SELECT MAX(id) FROM messages m WHERE m.room = messages.room) - $1",
            )
            .bind(sql_int(keep))
            .execute(&self.pool)
            .await?
            .rows_affected();
        }
        Ok(deleted)
    }

    fn kind(&self) -> &'static str {
        "postgres"
    }
}
