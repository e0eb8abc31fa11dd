//! The subscriber: other nodes' events into this node's hub.
//!
//! A reader thread holds the pub/sub connection and hands each payload to
//! the subscriber task through a bounded queue ([`INCOMING`]); when the
//! queue is full the thread stops reading, so a node that falls behind
//! leaves the backlog in its socket and in Redis (which disconnects a
//! subscriber past its `client-output-buffer-limit pubsub`), never in its
//! own memory; it then reconnects and catches up from the store. (The
//! async pub/sub client of the `redis` crate reads ahead into an unbounded
//! channel, hence the thread.) A silent connection is pinged every third of
//! the lease and replaced, with backoff, if it does not answer.
//!
//! It subscribes to the channel every node hears, to its own node's (private
//! messages), and to the channel of each room the hub wants to hear (the
//! rooms with members here, `Broker::watch_room`), following the hub's
//! changes within [`WATCH_POLL`]; once a room's channel is subscribed, the
//! hub reads from the store what was committed there before
//! (`Hub::rooms_heard`), so nothing falls between the two.
//!
//! After every (re)subscription the task reads the cluster's presence from
//! Redis and asks the hub to catch up on messages from the store: nothing
//! published in between is missed (at worst seen twice, which the hub's
//! state-based presence and id-ordered delivery both absorb).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use tokio::sync::mpsc;

use super::wire::{Envelope, Event};
use super::{connect, read_cluster, read_sessions, Node, IO_TIMEOUT, MAX_BACKOFF, MIN_BACKOFF};
use crate::hub::{EventKind, Hub};
use crate::store::StoredMessage;

/// Payloads read from Redis and not yet applied to the hub: envelopes of
/// about 64 KiB at most (`link::ENVELOPE_BYTES`), so some 16 MiB.
const INCOMING: usize = 256;

/// How often the reader looks at the rooms the hub wants to hear while
/// nothing arrives (a subscription waits at most this long to be made).
const WATCH_POLL: Duration = Duration::from_millis(20);

/// What the reader thread reports.
enum Incoming {
    /// A new subscription is in place: resynchronise.
    Subscribed,
    /// These rooms are heard from now on: read what came before.
    Heard(Vec<String>),
    Payload(Vec<u8>),
    Lost(redis::RedisError),
}

pub(super) async fn run(cx: Node) {
    let (tx, mut incoming) = mpsc::channel(INCOMING);
    let reader = Reader {
        client: cx.client.clone(),
        channels: vec![cx.keys.channel(), cx.keys.node_channel(&cx.config.node)],
        rooms: Some(Rooms {
            keys: cx.keys.clone(),
            shared: cx.shared.clone(),
        }),
        name: format!("hubbub-{}-events", cx.config.node),
        ping_every: cx.config.lease / 3,
        tx,
    };
    if let Err(e) = std::thread::Builder::new()
        .name("hubbub-cluster-sub".into())
        .spawn(move || reader.run())
    {
        tracing::error!(error = %e, "could not start the cluster subscriber thread");
        return;
    }
    let mut conn = None;
    // Dropping `incoming` when the hub is gone stops the thread.
    while let Some(next) = incoming.recv().await {
        let Some(hub) = cx.hub.upgrade() else {
            return;
        };
        let applied = match next {
            Incoming::Subscribed => {
                resync(&cx, &hub, &mut conn).await;
                tracing::info!("subscribed to the cluster");
                Ok(())
            }
            Incoming::Heard(keys) => {
                hub.rooms_heard(&keys);
                Ok(())
            }
            Incoming::Payload(bytes) => match serde_json::from_slice::<Envelope>(&bytes) {
                Ok(envelope) if envelope.from != cx.config.node => {
                    handle(&cx, &hub, &mut conn, envelope).await
                }
                Ok(_) => Ok(()),
                Err(e) => {
                    tracing::warn!(error = %e, "ignoring an unreadable cluster message");
                    Ok(())
                }
            },
            Incoming::Lost(e) => {
                tracing::warn!(error = %e, "cluster subscription lost; reconnecting");
                Ok(())
            }
        };
        if let Err(e) = applied {
            // What the event needed from Redis (a node's sessions) is
            // missing: read the whole cluster again instead.
            tracing::warn!(error = %e, "reading cluster state from Redis failed");
            resync(&cx, &hub, &mut conn).await;
        }
    }
}

/// The command connection, (re)connected on demand.
async fn command<'a>(
    cx: &Node,
    conn: &'a mut Option<MultiplexedConnection>,
) -> redis::RedisResult<&'a mut MultiplexedConnection> {
    if conn.is_none() {
        *conn = Some(connect(&cx.client).await?);
    }
    Ok(conn.as_mut().expect("just connected"))
}

/// Replaces the hub's picture of the other nodes with Redis's, then has it
/// catch up on messages from the store; retries until Redis answers.
async fn resync(cx: &Node, hub: &Arc<Hub>, conn: &mut Option<MultiplexedConnection>) {
    let mut backoff = MIN_BACKOFF;
    loop {
        let read = match command(cx, conn).await {
            Ok(c) => read_cluster(c, &cx.keys, &cx.config.node).await,
            Err(e) => Err(e),
        };
        match read {
            Ok(cluster) => {
                hub.remote_sync(cluster);
                hub.catch_up();
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?backoff, "reading the cluster's presence failed");
                *conn = None;
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// The pub/sub connection, on its own thread (see the module docs).
struct Reader {
    client: redis::Client,
    /// Channels always subscribed: the one every node hears, this node's own.
    channels: Vec<String>,
    /// The rooms' channels, subscribed as the hub wants them (none in tests
    /// of the reader alone).
    rooms: Option<Rooms>,
    /// The connection's name in Redis (`CLIENT LIST`).
    name: String,
    ping_every: Duration,
    tx: mpsc::Sender<Incoming>,
}

/// Where the reader learns which rooms' channels to subscribe to.
struct Rooms {
    keys: super::Keys,
    shared: Arc<super::Shared>,
}

impl Rooms {
    /// Makes the connection's room subscriptions (`subscribed`, room keys)
    /// those the hub wants, if that changed or `force`; returns the keys
    /// newly subscribed.
    fn reconcile(
        &self,
        pubsub: &mut redis::PubSub<'_>,
        subscribed: &mut std::collections::HashSet<String>,
        force: bool,
    ) -> redis::RedisResult<Vec<String>> {
        if !self.shared.watch_changed.swap(false, Ordering::AcqRel) && !force {
            return Ok(Vec::new());
        }
        let wanted = self
            .shared
            .watched
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let gone: Vec<String> = subscribed.difference(&wanted).cloned().collect();
        let new: Vec<String> = wanted.difference(subscribed).cloned().collect();
        if gone.is_empty() && new.is_empty() {
            return Ok(new);
        }
        // A command's answer may take longer than a poll.
        pubsub.set_read_timeout(Some(IO_TIMEOUT))?;
        // One channel per command: Redis confirms each channel of a
        // command separately, and the client returns at the first
        // confirmation, so a command for several would return before the
        // rest are in place (and leave their confirmations for the next
        // command to take as its answer).
        for key in &gone {
            pubsub.unsubscribe(self.keys.room_channel(key))?;
            subscribed.remove(key);
        }
        for key in &new {
            // Returns once Redis confirmed: from here on nothing published
            // there is missed.
            pubsub.subscribe(self.keys.room_channel(key))?;
            subscribed.insert(key.clone());
        }
        pubsub.set_read_timeout(Some(WATCH_POLL))?;
        Ok(new)
    }
}

impl Reader {
    fn run(self) {
        let mut backoff = MIN_BACKOFF;
        loop {
            let error = match self.subscription(&mut backoff) {
                Ok(()) => return,
                Err(e) => e,
            };
            if self.tx.blocking_send(Incoming::Lost(error)).is_err() {
                return;
            }
            std::thread::sleep(backoff);
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// Reads one subscription until it fails, or (`Ok`) the hub is gone.
    fn subscription(&self, backoff: &mut Duration) -> redis::RedisResult<()> {
        let mut conn = self.client.get_connection_with_timeout(IO_TIMEOUT)?;
        conn.set_write_timeout(Some(IO_TIMEOUT))?;
        conn.set_read_timeout(Some(IO_TIMEOUT))?;
        redis::cmd("CLIENT")
            .arg("SETNAME")
            .arg(&self.name)
            .query::<()>(&mut conn)?;
        let mut pubsub = conn.as_pubsub();
        // One channel per command (see `Rooms::reconcile`).
        for channel in &self.channels {
            pubsub.subscribe(channel)?;
        }
        // The rooms first, so that the resynchronisation `Subscribed`
        // starts (a read of every room here from the store) covers them.
        let mut rooms = std::collections::HashSet::new();
        if let Some(wanted) = &self.rooms {
            wanted.reconcile(&mut pubsub, &mut rooms, true)?;
        }
        let poll = match &self.rooms {
            Some(_) => WATCH_POLL.min(self.ping_every),
            None => self.ping_every,
        };
        pubsub.set_read_timeout(Some(poll))?;
        if self.tx.blocking_send(Incoming::Subscribed).is_err() {
            return Ok(());
        }
        *backoff = MIN_BACKOFF;
        let mut last_heard = std::time::Instant::now();
        loop {
            if let Some(wanted) = &self.rooms {
                let heard = wanted.reconcile(&mut pubsub, &mut rooms, false)?;
                if !heard.is_empty() && self.tx.blocking_send(Incoming::Heard(heard)).is_err() {
                    return Ok(());
                }
            }
            match pubsub.get_message() {
                Ok(message) => {
                    last_heard = std::time::Instant::now();
                    let payload = message.get_payload_bytes().to_vec();
                    // Waits while the queue is full: backpressure on Redis.
                    if self.tx.blocking_send(Incoming::Payload(payload)).is_err() {
                        return Ok(());
                    }
                }
                Err(e) if e.is_timeout() => {
                    if self.tx.is_closed() {
                        return Ok(());
                    }
                    if last_heard.elapsed() >= self.ping_every {
                        // Its answer has the whole ping interval to come.
                        pubsub.set_read_timeout(Some(self.ping_every))?;
                        pubsub.ping::<redis::Value>()?;
                        pubsub.set_read_timeout(Some(poll))?;
                        last_heard = std::time::Instant::now();
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }
}

async fn handle(
    cx: &Node,
    hub: &Arc<Hub>,
    conn: &mut Option<MultiplexedConnection>,
    envelope: Envelope,
) -> redis::RedisResult<()> {
    let from = envelope.from;
    // Consecutive messages are handed over together (one hub lock).
    let mut messages = Vec::new();
    for event in envelope.events {
        if !messages.is_empty() && !matches!(event, Event::Message { .. }) {
            hub.remote_messages(std::mem::take(&mut messages));
        }
        match event {
            Event::Hello => {
                let sessions = read_sessions(command(cx, conn).await?, &cx.keys, &from).await?;
                hub.remote_replace(&from, sessions);
                // It may have committed messages while unreachable.
                hub.catch_up();
            }
            Event::Gone { node } if node == cx.config.node => {
                // Declared dead while alive: the link registers again.
                cx.shared.dirty.store(true, Ordering::Relaxed);
            }
            Event::Gone { node } => hub.remote_replace(&node, Vec::new()),
            Event::Session(session) => hub.remote_session(&from, session),
            Event::Closed { id, reason } => hub.remote_closed(&from, id, reason),
            Event::Moderation(event) => hub.remote_moderation(event),
            Event::Message {
                key,
                room,
                id,
                ts,
                from: sender,
                text,
                action,
            } => {
                let lag_ms = crate::hub::event::now_millis().saturating_sub(ts);
                crate::telemetry::cluster_lag(lag_ms as f64 / 1000.0);
                messages.push((
                    key,
                    StoredMessage {
                        room,
                        id,
                        ts,
                        from: sender,
                        text,
                        action,
                    },
                ));
                continue;
            }
            Event::Private {
                to_node,
                to_session,
                ts,
                from: sender,
                to,
                text,
                echo,
            } => {
                if to_node == cx.config.node {
                    let from = sender;
                    hub.remote_private(
                        to_session,
                        if echo {
                            EventKind::PrivateSent {
                                ts,
                                from,
                                to,
                                text,
                                own: false,
                            }
                        } else {
                            EventKind::Private { ts, from, to, text }
                        },
                    );
                }
            }
            Event::Typing {
                key,
                room,
                nick,
                typing,
            } => hub.remote_typing(&key, EventKind::Typing { room, nick, typing }),
        }
    }
    if !messages.is_empty() {
        hub.remote_messages(messages);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Needs the Redis at 127.0.0.1:6379.
    #[tokio::test]
    async fn a_node_that_falls_behind_leaves_the_backlog_in_redis() {
        const MESSAGES: usize = 2000;
        let client = redis::Client::open("redis://127.0.0.1:6379").unwrap();
        let unique = format!(
            "hubbub-test-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        );
        let (tx, mut incoming) = mpsc::channel(4);
        let reader = Reader {
            client: client.clone(),
            channels: vec![unique.clone()],
            rooms: None,
            name: unique.clone(),
            ping_every: Duration::from_secs(1),
            tx,
        };
        std::thread::spawn(move || reader.run());
        assert!(matches!(incoming.recv().await, Some(Incoming::Subscribed)));

        // 16 MB published to a node that is not taking anything.
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        let padding = "x".repeat(8192);
        for chunk in (0..MESSAGES).collect::<Vec<_>>().chunks(100) {
            let mut pipe = redis::pipe();
            for i in chunk {
                pipe.cmd("PUBLISH")
                    .arg(&unique)
                    .arg(format!("{i:06}{padding}"))
                    .ignore();
            }
            pipe.query_async::<()>(&mut conn).await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        // The node holds at most its queue; the rest waits in Redis.
        let clients: String = redis::cmd("CLIENT")
            .arg("LIST")
            .arg("TYPE")
            .arg("pubsub")
            .query_async(&mut conn)
            .await
            .unwrap();
        let line = clients
            .lines()
            .find(|l| l.contains(&format!(" name={unique} ")))
            .expect("the reader's connection");
        let omem: u64 = line
            .split_whitespace()
            .find_map(|f| f.strip_prefix("omem="))
            .and_then(|v| v.parse().ok())
            .unwrap();
        assert!(omem > 1_000_000, "backlog in Redis: {line}");

        // Taking again, everything arrives, once, in order.
        for i in 0..MESSAGES {
            match tokio::time::timeout(Duration::from_secs(10), incoming.recv()).await {
                Ok(Some(Incoming::Payload(payload))) => {
                    assert_eq!(&payload[..6], format!("{i:06}").as_bytes());
                }
                _ => panic!("message {i} did not arrive"),
            }
        }
    }
}
