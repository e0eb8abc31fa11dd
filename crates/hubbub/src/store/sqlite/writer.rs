//! The SQLite writer: one thread that owns the connection every commit goes
//! through.
//!
//! sqlx runs each SQLite statement on a worker thread and wakes the calling
//! task when it is done; under load that task then waits its turn behind
//! every connection's task, once per statement. Measured with 1000 rooms
//! talking at once (docs/BENCHMARKS.md, "History at line rate"), those
//! hand-offs, not SQLite, bounded commits. So a commit is one job for this
//! thread: it runs the whole transaction with cached prepared statements and
//! answers once. The job queue holds [`QUEUE`] batches (the sequencer has
//! one in flight), so a caller that outruns the thread waits.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use rusqlite::{params, Connection, OpenFlags, TransactionBehavior};
use tokio::sync::{mpsc, oneshot};

use crate::store::batch::Batch;
use crate::store::{sql_int, Record, StoreError};

/// How long a statement waits for another connection's lock (retention's
/// deletes run on the read pool) before failing.
pub(super) const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Batches that may wait for the writer.
const QUEUE: usize = 4;

/// Pages of WAL after which a commit copies them back into the database
/// (16384 pages of 4 KiB: 64 MiB). Larger than SQLite's default (1000) so
/// that a page many batches touch, such as a room counter's, is copied once
/// per checkpoint rather than once per few batches.
const WAL_AUTOCHECKPOINT_PAGES: u32 = 16_384;

/// Pages the writer keeps in memory (negative: KiB, so 32 MiB).
const CACHE_SIZE_KIB: i64 = -32_768;

struct Job {
    records: Vec<Record>,
    done: oneshot::Sender<Result<Vec<u64>, rusqlite::Error>>,
}

/// The handle to the writer thread; the thread ends when the last handle is
/// dropped.
#[derive(Debug, Clone)]
pub(super) struct Writer {
    jobs: mpsc::Sender<Job>,
}

impl Writer {
    /// Opens a connection to the (already migrated) database at `path` and
    /// starts the thread that owns it.
    pub fn open(path: &Path) -> anyhow::Result<Writer> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // The journal mode is the file's (WAL, set when it was opened);
        // these are the connection's own.
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "cache_size", CACHE_SIZE_KIB)?;
        conn.pragma_update(None, "wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES)?;
        let (jobs, mut queue) = mpsc::channel::<Job>(QUEUE);
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || {
                let mut conn = conn;
                while let Some(job) = queue.blocking_recv() {
                    let _ = job.done.send(commit(&mut conn, &job.records));
                }
            })?;
        Ok(Writer { jobs })
    }

    /// Whether the thread is still running (it ends only if it panicked).
    pub fn is_alive(&self) -> bool {
        !self.jobs.is_closed()
    }

    /// Commits `records` in one transaction (see
    /// [`HistoryStore::commit`](crate::store::HistoryStore::commit)).
    pub async fn commit(&self, records: Vec<Record>) -> Result<Vec<u64>, StoreError> {
        let (done, answer) = oneshot::channel();
        let job = Job { records, done };
        self.jobs
            .send(job)
            .await
            .map_err(|_| StoreError::WriterStopped)?;
        Ok(answer.await.map_err(|_| StoreError::WriterStopped)??)
    }
}

/// The transaction: each room's counter advanced by its messages (the room
/// created if new) and read back, the messages numbered from it, then the
/// messages and private messages inserted. `IMMEDIATE` takes the write lock
/// at the start, so the transaction never fails half-way to upgrade it.
fn commit(conn: &mut Connection, records: &[Record]) -> Result<Vec<u64>, rusqlite::Error> {
    let batch = Batch::new(records);
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut last = HashMap::with_capacity(batch.rooms.len());
    {
        let mut counter = tx.prepare_cached(
            "INSERT INTO rooms (key, name, created_at, last_id) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (key) DO UPDATE SET last_id = last_id + excluded.last_id \
             RETURNING last_id",
        )?;
        for room in &batch.rooms {
            let last_id: i64 = counter.query_row(
                params![
                    room.key,
                    room.name,
                    sql_int(room.created_at),
                    sql_int(room.count)
                ],
                |row| row.get(0),
            )?;
            last.insert(room.key.to_string(), last_id as u64);
        }
    }
    let ids = batch
        .number(&last)
        .ok_or(rusqlite::Error::QueryReturnedNoRows)?;
    {
        let mut insert = tx.prepare_cached(
            "INSERT INTO messages (room, id, ts, sender, text, action) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        for ((key, message), id) in batch.messages().zip(&ids) {
            insert.execute(params![
                key,
                sql_int(*id),
                sql_int(message.ts),
                &*message.from,
                &*message.text,
                message.action
            ])?;
        }
    }
    {
        let mut insert = tx.prepare_cached(
            "INSERT INTO private_messages (ts, sender, recipient, text) VALUES (?1, ?2, ?3, ?4)",
        )?;
        for (ts, from, to, text) in batch.privates() {
            insert.execute(params![sql_int(ts), from, to, text])?;
        }
    }
    tx.commit()?;
    Ok(ids)
}
