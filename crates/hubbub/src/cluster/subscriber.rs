//! The subscriber task: other nodes' events into this node's hub.
//!
//! It subscribes first and only then reads the cluster's presence from
//! Redis and asks the hub to catch up on messages from the store, so
//! nothing published in between is missed (at worst seen twice, which the
//! hub's state-based presence and id-ordered delivery both absorb). A
//! connection that ends or stops answering pings is replaced, with backoff,
//! and the resynchronisation runs again.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use futures_util::StreamExt;

use super::wire::{Envelope, Event};
use super::{connect, read_cluster, read_sessions, Node, IO_TIMEOUT, MAX_BACKOFF, MIN_BACKOFF};
use crate::hub::{EventKind, Hub};
use crate::store::StoredMessage;

pub(super) async fn run(cx: Node) {
    let mut backoff = MIN_BACKOFF;
    loop {
        if cx.hub.strong_count() == 0 {
            return;
        }
        match listen(&cx, &mut backoff).await {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?backoff, "cluster subscription lost");
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// One subscription, until it fails; `Ok` once the hub is gone.
async fn listen(cx: &Node, backoff: &mut std::time::Duration) -> anyhow::Result<()> {
    let mut pubsub = tokio::time::timeout(IO_TIMEOUT, cx.client.get_async_pubsub()).await??;
    tokio::time::timeout(IO_TIMEOUT, pubsub.subscribe(cx.keys.channel())).await??;
    let mut conn = connect(&cx.client).await?;
    let me = cx.config.node.clone();
    {
        let cluster = read_cluster(&mut conn, &cx.keys, &me).await?;
        let Some(hub) = cx.hub.upgrade() else {
            return Ok(());
        };
        hub.remote_sync(cluster);
        hub.catch_up();
    }
    *backoff = MIN_BACKOFF;
    tracing::info!("subscribed to the cluster");
    let (mut sink, mut stream) = pubsub.split();
    let mut ping = tokio::time::interval(cx.config.lease / 3);
    ping.tick().await;
    loop {
        tokio::select! {
            message = stream.next() => {
                let Some(message) = message else {
                    anyhow::bail!("Redis closed the subscription");
                };
                let Some(hub) = cx.hub.upgrade() else {
                    return Ok(());
                };
                match serde_json::from_slice::<Envelope>(message.get_payload_bytes()) {
                    Ok(envelope) if envelope.from != me => {
                        handle(cx, &hub, &mut conn, envelope).await?;
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "ignoring an unreadable cluster message"),
                }
            }
            _ = ping.tick() => {
                tokio::time::timeout(IO_TIMEOUT, sink.ping::<redis::Value>()).await??;
            }
        }
    }
}

async fn handle(
    cx: &Node,
    hub: &Arc<Hub>,
    conn: &mut redis::aio::MultiplexedConnection,
    envelope: Envelope,
) -> redis::RedisResult<()> {
    let from = envelope.from;
    for event in envelope.events {
        match event {
            Event::Hello => {
                let sessions = read_sessions(conn, &cx.keys, &from).await?;
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
            Event::Message {
                key,
                room,
                id,
                ts,
                from: sender,
                text,
                action,
            } => hub.remote_message(
                &key,
                StoredMessage {
                    room,
                    id,
                    ts,
                    from: sender,
                    text,
                    action,
                },
            ),
            Event::Private {
                to_node,
                to_session,
                ts,
                from: sender,
                to,
                text,
            } => {
                if to_node == cx.config.node {
                    hub.remote_private(
                        to_session,
                        EventKind::Private {
                            ts,
                            from: sender,
                            to,
                            text,
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
    Ok(())
}
