//! The queries both SQL stores share. SQLite numbers `$1`-style
//! parameters by first appearance, so one SQL text serves both; the macro
//! stamps the one implementation onto each store type (whose field `pool`
//! is that driver's pool, which imports `sqlx::Row`, and which has its own
//! `commit_batch`: PostgreSQL passes a batch's rows as arrays, SQLite hands
//! the batch to its writer thread; and `writer_alive`, for the readiness
//! ping).

/// Implements [`HistoryStore`](crate::store::HistoryStore) for `$store`.
macro_rules! impl_history_store {
    ($store:ty, $kind:literal) => {
        #[async_trait::async_trait]
        impl $crate::store::HistoryStore for $store {
            async fn commit(
                &self,
                batch: Vec<$crate::store::Record>,
            ) -> Result<Vec<u64>, $crate::store::StoreError> {
                // Dialect-specific: each store writes a batch in a few
                // round trips, not one per message (see `store::batch`).
                self.commit_batch(batch).await
            }

            async fn rooms(&self) -> Result<Vec<$crate::store::StoredRoom>, $crate::store::StoreError> {
                let rows = sqlx::query(
                    "SELECT key, name, last_id FROM rooms",
                )
                .fetch_all(&self.pool)
                .await?;
                Ok(rows
                    .into_iter()
                    .map(|row| $crate::store::StoredRoom {
                        key: row.get("key"),
                        name: row.get::<String, _>("name").into(),
                        last_id: row.get::<i64, _>("last_id") as u64,
                    })
                    .collect())
            }

            async fn room(
                &self,
                key: &str,
            ) -> Result<Option<$crate::store::StoredRoom>, $crate::store::StoreError> {
                let row = sqlx::query("SELECT key, name, last_id FROM rooms WHERE key = $1")
                    .bind(key)
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(row.map(|row| $crate::store::StoredRoom {
                    key: row.get("key"),
                    name: row.get::<String, _>("name").into(),
                    last_id: row.get::<i64, _>("last_id") as u64,
                }))
            }

            async fn claim_room_names(
                &self,
                names: &[(String, String)],
            ) -> Result<(), $crate::store::StoreError> {
                // One statement per 256 rooms (512 parameters, well under
                // either database's limit).
                for chunk in names.chunks(256) {
                    let values: Vec<String> = (0..chunk.len())
                        .map(|i| format!("(${}, ${})", 2 * i + 1, 2 * i + 2))
                        .collect();
                    let sql = format!(
                        "INSERT INTO room_names (look_alike, room) VALUES {} \
                         ON CONFLICT (look_alike) DO NOTHING",
                        values.join(", ")
                    );
                    let mut query = sqlx::query(&sql);
                    for (look_alike, room) in chunk {
                        query = query.bind(look_alike).bind(room);
                    }
                    query.execute(&self.pool).await?;
                }
                Ok(())
            }

            async fn room_by_look_alike(
                &self,
                look_alike: &str,
            ) -> Result<Option<String>, $crate::store::StoreError> {
                let row = sqlx::query("SELECT room FROM room_names WHERE look_alike = $1")
                    .bind(look_alike)
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(row.map(|row| row.get("room")))
            }

            async fn account(
                &self,
                key: &str,
            ) -> Result<Option<$crate::store::StoredAccount>, $crate::store::StoreError> {
                let row = sqlx::query(
                    "SELECT key, name, password_hash, created_ms, id, server_operator \
                     FROM accounts WHERE key = $1",
                )
                .bind(key)
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.map(|row| $crate::store::StoredAccount {
                    key: row.get("key"),
                    name: row.get("name"),
                    password_hash: row.get("password_hash"),
                    created_ms: row.get::<i64, _>("created_ms") as u64,
                    id: row
                        .get::<Option<String>, _>("id")
                        .unwrap_or_else(|| row.get("key")),
                    server_operator: row.get("server_operator"),
                }))
            }

            async fn create_account(
                &self,
                account: &$crate::store::StoredAccount,
            ) -> Result<bool, $crate::store::StoreError> {
                let done = sqlx::query(
                    "INSERT INTO accounts (key, name, password_hash, created_ms, id, server_operator) \
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (key) DO NOTHING",
                )
                .bind(&account.key)
                .bind(&account.name)
                .bind(&account.password_hash)
                .bind($crate::store::sql_int(account.created_ms))
                .bind(&account.id)
                .bind(account.server_operator)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn set_password_hash(
                &self,
                key: &str,
                hash: &str,
            ) -> Result<bool, $crate::store::StoreError> {
                let done = sqlx::query("UPDATE accounts SET password_hash = $1 WHERE key = $2")
                    .bind(hash)
                    .bind(key)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn set_server_operator(
                &self,
                key: &str,
                on: bool,
            ) -> Result<bool, $crate::store::StoreError> {
                let done = sqlx::query("UPDATE accounts SET server_operator = $1 WHERE key = $2")
                    .bind(on)
                    .bind(key)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn delete_account(&self, key: &str) -> Result<bool, $crate::store::StoreError> {
                let done = sqlx::query("DELETE FROM accounts WHERE key = $1")
                    .bind(key)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn create_session_token(
                &self,
                hash: &str,
                key: &str,
                expires_ms: u64,
                now_ms: u64,
                keep: usize,
            ) -> Result<(), $crate::store::StoreError> {
                // Expired tokens of anyone (indexed by expiry: cheap), and
                // this account's beyond its newest `keep`, make room.
                sqlx::query("DELETE FROM session_tokens WHERE expires_ms <= $1")
                    .bind($crate::store::sql_int(now_ms))
                    .execute(&self.pool)
                    .await?;
                sqlx::query(
                    "DELETE FROM session_tokens WHERE account = $1 AND hash NOT IN \
                     (SELECT hash FROM session_tokens WHERE account = $1 \
                      ORDER BY expires_ms DESC LIMIT $2)",
                )
                .bind(key)
                .bind(keep.saturating_sub(1) as i64)
                .execute(&self.pool)
                .await?;
                sqlx::query(
                    "INSERT INTO session_tokens (hash, account, expires_ms) VALUES ($1, $2, $3)",
                )
                .bind(hash)
                .bind(key)
                .bind($crate::store::sql_int(expires_ms))
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn session_token(
                &self,
                hash: &str,
                now_ms: u64,
            ) -> Result<Option<String>, $crate::store::StoreError> {
                let row = sqlx::query(
                    "SELECT account FROM session_tokens WHERE hash = $1 AND expires_ms > $2",
                )
                .bind(hash)
                .bind($crate::store::sql_int(now_ms))
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.map(|row| row.get("account")))
            }

            async fn delete_session_tokens(
                &self,
                key: &str,
                hash: Option<&str>,
            ) -> Result<(), $crate::store::StoreError> {
                match hash {
                    Some(hash) => {
                        sqlx::query("DELETE FROM session_tokens WHERE hash = $1 AND account = $2")
                            .bind(hash)
                            .bind(key)
                            .execute(&self.pool)
                            .await?
                    }
                    None => {
                        sqlx::query("DELETE FROM session_tokens WHERE account = $1")
                            .bind(key)
                            .execute(&self.pool)
                            .await?
                    }
                };
                Ok(())
            }

            async fn policy(
                &self,
                key: &str,
            ) -> Result<Option<(String, i64)>, $crate::store::StoreError> {
                let row = sqlx::query("SELECT policy, version FROM room_policies WHERE room = $1")
                    .bind(key)
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(row.map(|row| (row.get("policy"), row.get("version"))))
            }

            async fn put_policy(
                &self,
                key: &str,
                json: &str,
                read: Option<i64>,
            ) -> Result<bool, $crate::store::StoreError> {
                let done = match read {
                    None => {
                        sqlx::query(
                            "INSERT INTO room_policies (room, policy, version) VALUES ($1, $2, 1) \
                             ON CONFLICT (room) DO NOTHING",
                        )
                        .bind(key)
                        .bind(json)
                        .execute(&self.pool)
                        .await?
                    }
                    Some(version) => {
                        sqlx::query(
                            "UPDATE room_policies SET policy = $1, version = version + 1 \
                             WHERE room = $2 AND version = $3",
                        )
                        .bind(json)
                        .bind(key)
                        .bind(version)
                        .execute(&self.pool)
                        .await?
                    }
                };
                Ok(done.rows_affected() == 1)
            }

            async fn log_moderation(
                &self,
                entry: &$crate::store::ModerationEntry,
            ) -> Result<(), $crate::store::StoreError> {
                sqlx::query(
                    "INSERT INTO moderation_log (room, actor, action, target, reason, ms) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(&entry.room)
                .bind(&entry.actor)
                .bind(&entry.action)
                .bind(&entry.target)
                .bind(&entry.reason)
                .bind($crate::store::sql_int(entry.ms))
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn moderation_log(
                &self,
                key: &str,
                limit: u32,
            ) -> Result<Vec<$crate::store::ModerationEntry>, $crate::store::StoreError> {
                let rows = sqlx::query(
                    "SELECT room, actor, action, target, reason, ms FROM moderation_log \
                     WHERE room = $1 ORDER BY id DESC LIMIT $2",
                )
                .bind(key)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?;
                let mut entries: Vec<_> = rows
                    .into_iter()
                    .map(|row| $crate::store::ModerationEntry {
                        room: row.get("room"),
                        actor: row.get("actor"),
                        action: row.get("action"),
                        target: row.get("target"),
                        reason: row.get("reason"),
                        ms: row.get::<i64, _>("ms") as u64,
                    })
                    .collect();
                entries.reverse();
                Ok(entries)
            }

            async fn page(
                &self,
                room_key: &str,
                query: $crate::store::PageQuery,
            ) -> Result<Vec<$crate::store::StoredMessage>, $crate::store::StoreError> {
                let rows = sqlx::query(
                    "SELECT r.name, m.id, m.ts, m.sender, m.text, m.action \
                     FROM messages m JOIN rooms r ON r.key = m.room \
                     WHERE m.room = $1 AND m.id > $2 AND m.id < $3 \
                     ORDER BY m.id DESC LIMIT $4",
                )
                .bind(room_key)
                .bind($crate::store::sql_int(query.after.unwrap_or(0)))
                .bind($crate::store::sql_int(query.before.unwrap_or(u64::MAX)))
                .bind(i64::from(query.limit))
                .fetch_all(&self.pool)
                .await?;
                let mut page: Vec<$crate::store::StoredMessage> = rows
                    .into_iter()
                    .map(|row| $crate::store::StoredMessage {
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

            async fn purge(&self, retention: $crate::store::Retention, now_ms: u64) -> Result<u64, $crate::store::StoreError> {
                let mut deleted = 0;
                if let Some(age) = retention.max_age {
                    let cutoff = $crate::store::sql_int(now_ms.saturating_sub(age.as_millis() as u64));
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
                    .bind($crate::store::sql_int(keep))
                    .execute(&self.pool)
                    .await?
                    .rows_affected();
                }
                Ok(deleted)
            }

            async fn ping(&self) -> Result<(), $crate::store::StoreError> {
                sqlx::query("SELECT 1").execute(&self.pool).await?;
                self.writer_alive()
            }

            fn kind(&self) -> &'static str {
                $kind
            }

            fn location(&self) -> &str {
                &self.location
            }
        }
    };
}

pub(crate) use impl_history_store;
