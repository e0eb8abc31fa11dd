//! The sequencer: the one task that numbers, commits and then fans out every
//! room and private message, in order.
//!
//! Sessions hand their messages to it over a bounded channel (a full channel
//! makes senders wait: backpressure). It takes everything waiting — up to
//! [`MAX_BATCH`] — assigns each room message the next id of its room, writes
//! the whole batch to the history store in one transaction (group commit),
//! where the store numbers each room's messages, and only then, under the
//! hub lock, fans the batch out in order and answers each sender. So a
//! message anyone has seen, or whose sender got an acknowledgement, is
//! committed; and ids are gap-free, because a failed batch consumes no ids.
//! In a cluster the committed batch is then published to the other nodes.
//! It is also where senders are paced: after fanning out a batch that found
//! a room backlogged, it waits for that room's writers before taking the
//! next batch.

use std::collections::VecDeque;
use std::sync::{Arc, Weak};

use tokio::sync::{mpsc, oneshot};

use super::broker::Outgoing;
use super::remote::RemoteId;
use super::state::State;
use super::{event, names, Event, EventKind, Hub, HubError, Posted, SessionId};
use crate::store::{HistoryStore, Record, StoredMessage};

/// Most messages committed in one transaction.
pub const MAX_BATCH: usize = 4096;
/// Messages that may wait for the sequencer before senders are held back.
pub const QUEUE: usize = 4096;

/// A room message accepted by its sender's session.
pub(crate) struct PendingMessage {
    pub room_key: String,
    pub from: Arc<str>,
    pub text: Arc<str>,
    pub action: bool,
    /// The answer: what was recorded.
    pub done: oneshot::Sender<Result<Posted, HubError>>,
    /// Counts the message as not yet fanned out (`Hub::quiesce`).
    pub ticket: Ticket,
}

/// A private message accepted by its sender's session.
pub(crate) struct PendingPrivate {
    pub from: SessionId,
    pub to: String,
    pub text: Arc<str>,
    /// The answer: the recipient's nickname and the timestamp.
    pub done: oneshot::Sender<Result<(Arc<str>, u64), HubError>>,
    pub ticket: Ticket,
}

/// One message handed to the sequencer and not yet fanned out (or
/// failed): dropped when its sender is answered. Shutdown waits for none
/// to be left before it closes anyone's connection, so a message its
/// sender sees committed reaches every other member too.
#[derive(Debug)]
pub(crate) struct Ticket(Arc<PendingCount>);

#[derive(Debug, Default)]
pub(crate) struct PendingCount {
    count: std::sync::atomic::AtomicUsize,
    none_left: tokio::sync::Notify,
}

impl Ticket {
    pub(crate) fn new(pending: &Arc<PendingCount>) -> Ticket {
        pending
            .count
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ticket(pending.clone())
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if self
            .0
            .count
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst)
            == 1
        {
            self.0.none_left.notify_waiters();
        }
    }
}

impl PendingCount {
    /// Returns once no message is pending.
    pub(crate) async fn none_left(&self) {
        loop {
            let notified = self.none_left.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.count.load(std::sync::atomic::Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }
}

pub(crate) enum Pending {
    Message(PendingMessage),
    Private(PendingPrivate),
}

/// What the planning step decided for one pending item.
enum Planned {
    Message {
        pending: PendingMessage,
        message: StoredMessage,
    },
    Private {
        pending: PendingPrivate,
        ts: u64,
        from: Arc<str>,
        to: Recipient,
    },
}

/// Where a private message goes: every session (device) holding the
/// recipient's nickname, here and on other nodes.
struct Recipient {
    /// As the recipient spells it.
    nick: Arc<str>,
    local: Vec<SessionId>,
    /// Sessions of other nodes (cluster mode).
    remote: Vec<RemoteId>,
}

impl Recipient {
    /// The holders of folded nickname `key`, if anyone holds it.
    fn of(state: &State, key: &str) -> Option<Recipient> {
        let local: Vec<SessionId> = state.holders(key).collect();
        let (remote, remote_nick) = state.remote.by_nick(key).unzip();
        let nick = local
            .first()
            .and_then(|id| state.sessions.get(id))
            .map(|m| m.nick.clone())
            .or(remote_nick)?;
        Some(Recipient {
            nick,
            local,
            remote: remote.unwrap_or_default(),
        })
    }
}

pub(crate) async fn run(
    hub: Weak<Hub>,
    mut queue: mpsc::Receiver<Pending>,
    store: Option<Arc<dyn HistoryStore>>,
) {
    let mut waiting: VecDeque<Pending> = VecDeque::with_capacity(MAX_BATCH);
    let mut received = Vec::with_capacity(MAX_BATCH);
    loop {
        if waiting.is_empty() {
            if queue.recv_many(&mut received, MAX_BATCH).await == 0 {
                return;
            }
            waiting.extend(received.drain(..));
        }
        let Some(hub) = hub.upgrade() else {
            return;
        };
        let batch = take_batch(&mut waiting, hub.config.outbox_limit / 4);
        let planned = plan(&hub, batch.into_iter());
        if planned.is_empty() {
            continue;
        }
        let committed = match &store {
            Some(store) => {
                let started = std::time::Instant::now();
                let committed = store.commit(records(&planned)).await;
                crate::telemetry::store_commit(started.elapsed().as_secs_f64());
                committed
            }
            // Without a store the tentative ids are final.
            None => Ok(planned
                .iter()
                .filter_map(|p| match p {
                    Planned::Message { message, .. } => Some(message.id),
                    Planned::Private { .. } => None,
                })
                .collect()),
        };
        match committed {
            Ok(ids) => {
                let applied = apply(&hub, planned, ids);
                if let Some(link) = &hub.broker {
                    link.publish(applied.published).await;
                }
                for answer in applied.answers {
                    answer.send();
                }
                let backlogged = applied.backlogged;
                // Pace here, at the one place every message passes: while
                // a room's writers are behind, no further batch is fanned
                // out, the queue fills, and senders' reads wait.
                for room_key in backlogged {
                    hub.pace(&room_key).await;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, messages = planned.len(), "history store write failed");
                hub.stats
                    .store_failures
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                for item in planned {
                    match item {
                        Planned::Message { pending, .. } => {
                            let _ = pending.done.send(Err(HubError::StoreUnavailable));
                        }
                        Planned::Private { pending, .. } => {
                            let _ = pending.done.send(Err(HubError::StoreUnavailable));
                        }
                    }
                }
            }
        }
    }
}

/// The next batch: up to [`MAX_BATCH`] messages and about `budget` bytes
/// (always at least one), so that one batch can never push a recipient's
/// outbox past the mark where pacing starts.
fn take_batch(waiting: &mut VecDeque<Pending>, budget: usize) -> Vec<Pending> {
    let mut batch = Vec::new();
    let mut bytes = 0;
    while let Some(next) = waiting.front() {
        let size = match next {
            Pending::Message(m) => m.text.len() + m.from.len() + 64,
            Pending::Private(p) => p.text.len() + 64,
        };
        if !batch.is_empty() && (bytes + size > budget || batch.len() == MAX_BATCH) {
            break;
        }
        bytes += size;
        batch.extend(waiting.pop_front());
    }
    batch
}

/// Numbers the batch (tentatively: the store assigns the final ids) and
/// resolves private recipients; answers at once what cannot be sent.
fn plan(hub: &Hub, batch: impl Iterator<Item = Pending>) -> Vec<Planned> {
    let state = hub.lock();
    let mut next_ids: std::collections::HashMap<String, u64> = Default::default();
    let mut planned = Vec::new();
    let ts = event::now_millis();
    for pending in batch {
        match pending {
            Pending::Message(pending) => {
                let Some(room) = state.rooms.get(&pending.room_key) else {
                    let _ = pending.done.send(Err(HubError::SessionEnded));
                    continue;
                };
                let next = next_ids
                    .entry(pending.room_key.clone())
                    .or_insert(room.last_id);
                *next += 1;
                let message = StoredMessage {
                    room: room.name.clone(),
                    id: *next,
                    ts,
                    from: pending.from.clone(),
                    text: pending.text.clone(),
                    action: pending.action,
                };
                planned.push(Planned::Message { pending, message });
            }
            Pending::Private(pending) => {
                let from = match state.member(pending.from) {
                    Ok(member) => member.nick.clone(),
                    Err(e) => {
                        let _ = pending.done.send(Err(e));
                        continue;
                    }
                };
                let key = names::nick_key(&pending.to);
                let Some(to) = Recipient::of(&state, &key) else {
                    let error = HubError::NoSuchNick(pending.to.clone());
                    let _ = pending.done.send(Err(error));
                    continue;
                };
                if to.local.is_empty() && !hub.broker.as_ref().is_some_and(|l| l.is_connected()) {
                    let error = HubError::ClusterUnavailable(to.nick.to_string());
                    let _ = pending.done.send(Err(error));
                    continue;
                }
                planned.push(Planned::Private {
                    pending,
                    ts,
                    from,
                    to,
                });
            }
        }
    }
    planned
}

fn records(planned: &[Planned]) -> Vec<Record> {
    let mut records = Vec::with_capacity(planned.len() + 1);
    for item in planned {
        match item {
            Planned::Message { pending, message } => {
                records.push(Record::Message {
                    room_key: pending.room_key.clone(),
                    message: message.clone(),
                });
            }
            Planned::Private {
                pending,
                ts,
                from,
                to,
            } => records.push(Record::Private {
                ts: *ts,
                from: from.clone(),
                to: to.nick.clone(),
                text: pending.text.clone(),
            }),
        }
    }
    records
}

/// A sender's answer, held until the batch has been published too.
enum Answer {
    Message(oneshot::Sender<Result<Posted, HubError>>, Posted, Ticket),
    Private(
        oneshot::Sender<Result<(Arc<str>, u64), HubError>>,
        (Arc<str>, u64),
        Ticket,
    ),
}

impl Answer {
    /// Answers the sender; the message is no longer pending.
    fn send(self) {
        match self {
            Answer::Message(done, posted, _ticket) => {
                let _ = done.send(Ok(posted));
            }
            Answer::Private(done, sent, _ticket) => {
                let _ = done.send(Ok(sent));
            }
        }
    }
}

/// What [`apply`] leaves to do once the hub lock is released.
struct Applied {
    /// Rooms where fan-out found a backlog.
    backlogged: Vec<String>,
    /// What the other nodes of a cluster must be told.
    published: Vec<Outgoing>,
    /// The senders' answers, in batch order.
    answers: Vec<Answer>,
}

/// The batch is committed, `ids` its message ids: deliver it in order. The
/// answers are returned, not sent: a session waits for its answers before
/// it changes presence (joins, leaves, renames), so answering only after
/// the batch is also published keeps every node's order — messages, then
/// the presence change — the order the sender performed them in.
fn apply(hub: &Arc<Hub>, planned: Vec<Planned>, ids: Vec<u64>) -> Applied {
    let mut backlogged_rooms: Vec<String> = Vec::new();
    let mut published = Vec::new();
    let mut answers = Vec::new();
    let clustered = hub.broker.is_some();
    let mut ids = ids.into_iter();
    let mut state = hub.lock();
    for item in planned {
        match item {
            Planned::Message {
                pending,
                mut message,
            } => {
                let Some(id) = ids.next() else {
                    let _ = pending.done.send(Err(HubError::StoreUnavailable));
                    continue;
                };
                message.id = id;
                let Some(room) = state.rooms.get(&pending.room_key) else {
                    let _ = pending.done.send(Err(HubError::SessionEnded));
                    continue;
                };
                let posted = Posted {
                    id,
                    ts: message.ts,
                    room: room.name.clone(),
                };
                let event = Event::new(EventKind::from_stored(&message));
                if hub.accept(&mut state, &pending.room_key, id, event)
                    && !backlogged_rooms.contains(&pending.room_key)
                {
                    backlogged_rooms.push(pending.room_key.clone());
                }
                if clustered {
                    published.push(Outgoing::Message {
                        key: pending.room_key,
                        room: message.room,
                        id,
                        ts: message.ts,
                        from: message.from,
                        text: message.text,
                        action: message.action,
                    });
                }
                hub.stats
                    .messages
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                answers.push(Answer::Message(pending.done, posted, pending.ticket));
            }
            Planned::Private {
                pending,
                ts,
                from,
                to,
            } => {
                let to_nick = to.nick.clone();
                let private = |echo: bool, own: bool| {
                    let (from, to, text) = (from.clone(), to_nick.clone(), pending.text.clone());
                    Event::new(if echo {
                        EventKind::PrivateSent {
                            ts,
                            from,
                            to,
                            text,
                            own,
                        }
                    } else {
                        EventKind::Private { ts, from, to, text }
                    })
                };
                // The recipient on every device, and the sender's own copy
                // on every device of the sender (the sender's other
                // sessions show what it said) unless it wrote to itself.
                let from_key = names::nick_key(&from);
                let to_self = from_key == names::nick_key(&to_nick);
                let mut copies: Vec<(SessionId, bool)> =
                    to.local.iter().map(|&id| (id, false)).collect();
                let mut remote: Vec<(RemoteId, bool)> =
                    to.remote.into_iter().map(|id| (id, false)).collect();
                if to_self {
                    copies.push((pending.from, true));
                } else {
                    copies.extend(state.holders(&from_key).map(|id| (id, true)));
                    remote.extend(state.remote.holders(&from_key).map(|id| (id.clone(), true)));
                }
                for (id, echo) in copies {
                    if let Some(target) = state.sessions.get(&id) {
                        hub.deliver(&target.outbox, private(echo, id == pending.from));
                    }
                }
                for ((node, session), echo) in remote {
                    published.push(Outgoing::Private {
                        to_node: node,
                        to_session: session,
                        ts,
                        from: from.clone(),
                        to: to_nick.clone(),
                        text: pending.text.clone(),
                        echo,
                    });
                }
                answers.push(Answer::Private(pending.done, (to_nick, ts), pending.ticket));
            }
        }
    }
    // Keeps `state` borrowed mutably for the whole batch: one lock, one order.
    drop(state);
    Applied {
        backlogged: backlogged_rooms,
        published,
        answers,
    }
}
