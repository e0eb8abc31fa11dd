//! The per-session outbound queue, bounded in bytes.
//!
//! The hub pushes events into an [`Outbox`] without ever waiting: a push takes
//! a short lock, appends an `Arc`, and wakes the session's writer. The writer
//! takes everything queued in one go and writes it with one syscall.
//!
//! What happens at the bound is the slow-consumer rule: when a push would take
//! the queued bytes past the limit, the queue is emptied, a single
//! [`EventKind::Closing`] event is queued in its place, and the outbox closes.
//! The session's writer sends that reason line and hangs up; nobody else
//! waits for the slow reader.
//!
//! Every outbox also counts its bytes into one [`QueuedTotal`] shared by all
//! sessions, so that many slow readers together cannot hold more than a
//! global bound; past it, the hub closes the largest queues first (see
//! `Hub::shed_queues`).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tokio_util::sync::{CancellationToken, WaitForCancellationFuture};

use super::event::{CloseReason, Event, EventKind};

/// What [`Outbox::try_next_batch`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Batch {
    /// Events were moved into the batch.
    Taken,
    /// Nothing queued; wait on [`Outbox::ready`].
    Empty,
    /// Closed and drained: the writer should hang up.
    Finished,
}

/// What a push did, so the hub can count backlogs and slow consumers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// Queued; the queue is not backlogged.
    Queued,
    /// Queued, and the queue is backlogged (see [`Outbox::is_backlogged`]):
    /// the sender should be paced.
    Backlogged,
    /// The push would have passed the bound: the session is now closing as a slow consumer.
    Overflowed,
    /// The outbox was already closed; the event was not queued.
    Closed,
}

#[derive(Debug)]
struct State {
    queue: VecDeque<Arc<Event>>,
    /// Sum of [`Event::weight`] over `queue`.
    bytes: usize,
    /// Set once; after it, pushes are refused and the writer finishes the queue and hangs up.
    closing: Option<CloseReason>,
    /// Since when the writer has held a batch it has not finished writing.
    writing_since: Option<Instant>,
}

impl State {
    fn backlogged(&self, limit: usize) -> bool {
        // The Instant is read only for a queue already over the mark.
        self.bytes * 4 > limit
            && self
                .writing_since
                .is_none_or(|since| since.elapsed() < STALLED_WRITE)
    }
}

/// Bytes queued in every outbox together, against a bound in bytes.
#[derive(Debug)]
pub struct QueuedTotal {
    bytes: AtomicUsize,
    limit: usize,
    /// Woken when a push takes the total past the limit.
    pub over_limit: Notify,
}

impl QueuedTotal {
    pub fn new(limit: usize) -> Arc<QueuedTotal> {
        Arc::new(QueuedTotal {
            bytes: AtomicUsize::new(0),
            limit,
            over_limit: Notify::new(),
        })
    }

    /// Bytes queued now, in all outboxes.
    pub fn bytes(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }

    /// The bound, in bytes.
    pub fn limit(&self) -> usize {
        self.limit
    }

    fn add(&self, bytes: usize) {
        if bytes > 0
            && self
                .bytes
                .fetch_add(bytes, Ordering::Relaxed)
                .saturating_add(bytes)
                > self.limit
        {
            self.over_limit.notify_one();
        }
    }

    fn remove(&self, bytes: usize) {
        if bytes > 0 {
            self.bytes.fetch_sub(bytes, Ordering::Relaxed);
        }
    }
}

/// A writer stuck this long in one write has a client that stopped
/// reading: its backlog no longer paces senders, it meets the bound instead.
pub const STALLED_WRITE: Duration = Duration::from_millis(500);

/// A bounded queue of events waiting to be written to one session.
#[derive(Debug)]
pub struct Outbox {
    state: Mutex<State>,
    /// Wakes the single writer when the queue becomes non-empty or closes.
    ready: Notify,
    /// Fires when the outbox closes, so the session's reader stops too.
    closed: CancellationToken,
    /// Signalled when a writer drains a backlogged queue, so paced senders re-check.
    relief: Option<Arc<Notify>>,
    /// Where this queue's bytes are also counted, if anywhere.
    total: Option<Arc<QueuedTotal>>,
    limit: usize,
}

impl Outbox {
    pub fn new(limit: usize) -> Outbox {
        Outbox::with_relief(limit, None)
    }

    /// An outbox that signals `relief` whenever it drains a backlogged queue.
    pub fn with_relief(limit: usize, relief: Option<Arc<Notify>>) -> Outbox {
        Outbox::shared(limit, relief, None)
    }

    /// Like [`Outbox::with_relief`], counting its bytes into `total` too.
    pub fn shared(
        limit: usize,
        relief: Option<Arc<Notify>>,
        total: Option<Arc<QueuedTotal>>,
    ) -> Outbox {
        Outbox {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                bytes: 0,
                closing: None,
                writing_since: None,
            }),
            ready: Notify::new(),
            closed: CancellationToken::new(),
            relief,
            total,
            limit,
        }
    }

    fn count_in(&self, bytes: usize) {
        if let Some(total) = &self.total {
            total.add(bytes);
        }
    }

    fn count_out(&self, bytes: usize) {
        if let Some(total) = &self.total {
            total.remove(bytes);
        }
    }

    /// The bound, in bytes of queued events.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Queues `event` unless that would pass the bound; never waits.
    pub fn push(&self, event: Arc<Event>) -> Pushed {
        let mut state = self.lock();
        if state.closing.is_some() {
            return Pushed::Closed;
        }
        let weight = event.weight();
        if state.bytes + weight > self.limit {
            self.close_as_slow(state);
            return Pushed::Overflowed;
        }
        let was_empty = state.queue.is_empty();
        state.bytes += weight;
        state.queue.push_back(event);
        // Counted under the queue's lock, as the writer's drain is, so the
        // total never sees a drain before the push it drains.
        self.count_in(weight);
        let backlogged = state.backlogged(self.limit);
        drop(state);
        if was_empty {
            self.ready.notify_one();
        }
        if backlogged {
            Pushed::Backlogged
        } else {
            Pushed::Queued
        }
    }

    /// Closes the outbox for `reason`: what is queued is still written, then
    /// the reason, then the connection ends. A second close keeps the first reason.
    pub fn close(&self, reason: CloseReason) {
        let state = self.lock();
        if state.closing.is_some() {
            return;
        }
        self.close_with(state, reason);
    }

    /// Closes the outbox as a slow consumer now, dropping what is queued
    /// (the hub sheds the largest queues when all of them together pass
    /// their global bound). Returns the bytes dropped.
    pub fn shed(&self) -> usize {
        let state = self.lock();
        if state.closing.is_some() || state.bytes == 0 {
            return 0;
        }
        let dropped = state.bytes;
        self.close_as_slow(state);
        dropped
    }

    /// The slow-consumer rule: what is queued is dropped, one reason event
    /// takes its place, and the outbox closes.
    fn close_as_slow(&self, mut state: std::sync::MutexGuard<'_, State>) {
        state.queue.clear();
        self.count_out(state.bytes);
        state.bytes = 0;
        self.close_with(state, CloseReason::SlowConsumer { limit: self.limit });
    }

    /// Queues the reason event, marks the outbox closing and wakes the
    /// writer and the session's reader.
    fn close_with(&self, mut state: std::sync::MutexGuard<'_, State>, reason: CloseReason) {
        state.queue.push_back(Event::new(EventKind::Closing {
            reason: reason.clone(),
        }));
        state.closing = Some(reason);
        drop(state);
        self.ready.notify_one();
        self.closed.cancel();
    }

    /// Closes the outbox without a farewell event (the client already left).
    pub fn close_silently(&self, reason: CloseReason) {
        let mut state = self.lock();
        if state.closing.is_none() {
            state.closing = Some(reason);
        }
        drop(state);
        self.ready.notify_one();
        self.closed.cancel();
    }

    /// Completes once the outbox is closed, for whatever reason.
    pub fn closed(&self) -> WaitForCancellationFuture<'_> {
        self.closed.cancelled()
    }

    /// Why the outbox closed, if it has.
    pub fn closing(&self) -> Option<CloseReason> {
        self.lock().closing.clone()
    }

    /// Waits until events are queued or the outbox is closed, then moves every
    /// queued event into `batch`. Returns `false` once the outbox is closed and
    /// nothing is left to write: the writer should hang up.
    ///
    /// Meant for the one writer task of the session.
    pub async fn next_batch(&self, batch: &mut Vec<Arc<Event>>) -> bool {
        loop {
            match self.try_next_batch(batch) {
                Batch::Taken => return true,
                Batch::Finished => return false,
                Batch::Empty => self.ready().await,
            }
        }
    }

    /// [`Outbox::next_batch`] without waiting: the writer calls it when it
    /// has written everything it took before, and waits on
    /// [`Outbox::ready`] when it finds the queue [`Batch::Empty`].
    pub fn try_next_batch(&self, batch: &mut Vec<Arc<Event>>) -> Batch {
        self.try_next_batch_up_to(batch, usize::MAX)
    }

    /// [`Outbox::try_next_batch`], taking at most `max` events (the rest
    /// wait for the next call): for a carrier whose clients take a bounded
    /// number of packets at once (long-polling).
    pub fn try_next_batch_up_to(&self, batch: &mut Vec<Arc<Event>>, max: usize) -> Batch {
        let mut state = self.lock();
        state.writing_since = None;
        if state.queue.is_empty() {
            return if state.closing.is_some() {
                Batch::Finished
            } else {
                Batch::Empty
            };
        }
        let was_backlogged = state.backlogged(self.limit);
        let taken = state.queue.len().min(max.max(1));
        let before = batch.len();
        batch.extend(state.queue.drain(..taken));
        let bytes = if state.queue.is_empty() {
            state.bytes
        } else {
            batch[before..].iter().map(|e| e.weight()).sum()
        };
        self.count_out(bytes);
        state.bytes -= bytes;
        state.writing_since = Some(Instant::now());
        if was_backlogged {
            if let Some(relief) = &self.relief {
                relief.notify_waiters();
            }
        }
        // A burst may have grown the ring; give that memory back so an
        // idle session stays small (only once it is empty: a bounded take
        // leaves events for the next one).
        if state.queue.is_empty() && state.queue.capacity() > 64 {
            state.queue = VecDeque::new();
        }
        Batch::Taken
    }

    /// Puts `events` (taken by the last batch, not sent) back at the front
    /// of the queue, in order: a carrier that could take only part of a
    /// batch. They count against the bound again.
    pub fn requeue_front(&self, events: Vec<Arc<Event>>) {
        if events.is_empty() {
            return;
        }
        let mut state = self.lock();
        let bytes: usize = events.iter().map(|e| e.weight()).sum();
        for event in events.into_iter().rev() {
            state.queue.push_front(event);
        }
        state.bytes += bytes;
        self.count_in(bytes);
        drop(state);
        self.ready.notify_one();
    }

    /// Completes when events may have been queued (or the outbox closed)
    /// since the writer last found it empty. One writer waits at a time; a
    /// wake-up that finds nobody waiting is kept for the next wait.
    pub fn ready(&self) -> tokio::sync::futures::Notified<'_> {
        self.ready.notified()
    }

    /// More than a quarter of the bound is queued and the writer is making
    /// progress (idle, waiting to be scheduled, or in a write that began
    /// less than [`STALLED_WRITE`] ago): fan-out is behind, and senders to
    /// this session should slow down rather than push it to its bound.
    ///
    /// A client that stopped reading keeps its writer stuck in one write, so
    /// after [`STALLED_WRITE`] it stops counting here and meets the bound.
    pub fn is_backlogged(&self) -> bool {
        self.lock().backlogged(self.limit)
    }

    /// Whether the writer has been inside one write for [`STALLED_WRITE`]
    /// or more: its client stopped reading.
    pub fn is_stalled(&self) -> bool {
        self.lock()
            .writing_since
            .is_some_and(|since| since.elapsed() >= STALLED_WRITE)
    }

    /// Bytes currently queued (by [`Event::weight`]).
    pub fn queued_bytes(&self) -> usize {
        self.lock().bytes
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding this short lock cannot leave `State` torn
        // (every update is a single push or clear), so poisoning is ignored.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for Outbox {
    fn drop(&mut self) {
        let bytes = self.state.get_mut().map_or(0, |state| state.bytes);
        self.count_out(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notice(text: &str) -> Arc<Event> {
        Event::new(EventKind::Notice { text: text.into() })
    }

    #[tokio::test]
    async fn batches_everything_queued_in_order() {
        let outbox = Outbox::new(10_000);
        for i in 0..5 {
            assert_eq!(outbox.push(notice(&i.to_string())), Pushed::Queued);
        }
        let mut batch = Vec::new();
        assert!(outbox.next_batch(&mut batch).await);
        let texts: Vec<_> = batch
            .iter()
            .map(|e| match &e.kind {
                EventKind::Notice { text } => text.clone(),
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(texts, ["0", "1", "2", "3", "4"]);
        assert_eq!(outbox.queued_bytes(), 0);
    }

    #[tokio::test]
    async fn overflow_replaces_the_queue_with_one_closing_event() {
        let one = notice("x").weight();
        let outbox = Outbox::new(one * 3);
        assert_eq!(outbox.push(notice("x")), Pushed::Backlogged);
        assert_eq!(outbox.push(notice("x")), Pushed::Backlogged);
        assert_eq!(outbox.push(notice("x")), Pushed::Backlogged);
        assert_eq!(outbox.push(notice("x")), Pushed::Overflowed);
        assert_eq!(outbox.push(notice("x")), Pushed::Closed);
        let mut batch = Vec::new();
        assert!(outbox.next_batch(&mut batch).await);
        assert_eq!(batch.len(), 1);
        assert!(matches!(
            batch[0].kind,
            EventKind::Closing {
                reason: CloseReason::SlowConsumer { .. }
            }
        ));
        batch.clear();
        assert!(!outbox.next_batch(&mut batch).await);
    }

    #[tokio::test]
    async fn close_keeps_what_is_queued_and_ends_with_the_reason() {
        let outbox = Outbox::new(10_000);
        outbox.push(notice("last words"));
        outbox.close(CloseReason::Shutdown);
        outbox.close(CloseReason::Quit);
        assert_eq!(outbox.closing(), Some(CloseReason::Shutdown));
        let mut batch = Vec::new();
        assert!(outbox.next_batch(&mut batch).await);
        assert_eq!(batch.len(), 2);
        assert!(matches!(
            batch[1].kind,
            EventKind::Closing {
                reason: CloseReason::Shutdown
            }
        ));
    }
}

#[cfg(test)]
mod backlog_tests {
    use super::*;

    fn notice() -> Arc<Event> {
        Event::new(EventKind::Notice { text: "x".into() })
    }

    #[tokio::test]
    async fn a_stalled_write_stops_pacing() {
        let outbox = Outbox::new(notice().weight() * 8);
        outbox.push(notice());
        let mut batch = Vec::new();
        assert!(outbox.next_batch(&mut batch).await);
        // The writer holds a batch; the queue grows past a quarter.
        for _ in 0..3 {
            outbox.push(notice());
        }
        assert!(outbox.is_backlogged(), "a fresh write still counts");
        std::thread::sleep(STALLED_WRITE);
        assert!(!outbox.is_backlogged(), "a stuck write does not");
        batch.clear();
        assert!(outbox.next_batch(&mut batch).await);
        assert_eq!(batch.len(), 3);
    }
}
