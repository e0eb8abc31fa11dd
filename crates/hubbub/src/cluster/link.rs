//! The link task: the one writer of this node's state to Redis.
//!
//! It registers the node (alive key, session hash, nickname claims, a
//! `hello` to the others), then takes operations from the hub in order and
//! sends each batch as one pipeline with one PUBLISH, refreshes the alive
//! key every third of the lease, and reaps nodes whose key has expired.
//! When Redis fails it answers claims with [`Claim::Unknown`], drops the
//! rest (marking the node dirty), and reconnects with backoff; registering
//! again rewrites everything from the hub's current state.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use redis::aio::MultiplexedConnection;
use tokio::sync::mpsc;

use super::wire::SessionState;
use super::wire::{Envelope, Event};
use super::{connect, owner, Claim, Keys, Node, Op, MAX_BACKOFF, MIN_BACKOFF};
use crate::hub::{names, Hub, HubError};

/// Sets folded nickname ARGV[1] to owner ARGV[2] unless a live node (one
/// whose key ARGV[3]..node exists) holds it. Returns 1 if granted.
const CLAIM: &str = r"
local v = redis.call('HGET', KEYS[1], ARGV[1])
if v and v ~= ARGV[2] then
  local node = string.match(v, '^(.*)/[^/]*$')
  if node and redis.call('EXISTS', ARGV[3] .. node) == 1 then return 0 end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
";

/// Deletes nickname ARGV[1] if owner ARGV[2] still holds it.
const RELEASE: &str = r"
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  return redis.call('HDEL', KEYS[1], ARGV[1])
end
return 0
";

/// Most operations sent in one pipeline.
const BATCH: usize = 512;
/// An envelope is closed at about this size, so what a subscriber queues
/// per envelope stays small (see `subscriber::INCOMING`).
const ENVELOPE_BYTES: usize = 64 * 1024;

pub(super) struct Context {
    pub node: Node,
    pub ops: mpsc::Receiver<Op>,
    /// No reaping before this: after an outage every node needs a lease to
    /// refresh its key, and must not be taken for dead meanwhile.
    pub reap_after: tokio::time::Instant,
}

/// Why serving stopped.
enum Ended {
    Stopped,
    Failed(redis::RedisError),
    /// The others reaped this node (its key expired): register again.
    Reaped,
}

pub(super) async fn run(mut cx: Context) {
    let mut backoff = MIN_BACKOFF;
    loop {
        let ended = match connect(&cx.node.client).await {
            Ok(mut conn) => match register(&mut cx, &mut conn).await {
                Ok(()) => {
                    cx.node.shared.connected.store(true, Ordering::Relaxed);
                    tracing::info!(node = %cx.node.config.node, "joined the cluster");
                    backoff = MIN_BACKOFF;
                    serve(&mut cx, &mut conn).await
                }
                Err(e) => Ended::Failed(e),
            },
            Err(e) => Ended::Failed(e),
        };
        cx.node.shared.connected.store(false, Ordering::Relaxed);
        cx.node.shared.dirty.store(true, Ordering::Relaxed);
        match ended {
            Ended::Stopped => return,
            Ended::Reaped => {
                tracing::warn!("this node was declared dead by the cluster; registering again");
                continue;
            }
            Ended::Failed(e) => {
                tracing::warn!(error = %e, retry_in = ?backoff, "cluster link to Redis failed; serving local users only");
            }
        }
        // While down: claims are answered at once, the rest is dropped
        // (registering again rewrites it), until the backoff has passed.
        let retry = tokio::time::Instant::now() + backoff;
        loop {
            tokio::select! {
                op = cx.ops.recv() => match op {
                    None => return,
                    Some(Op::Claim { reply, .. }) => { let _ = reply.send(Claim::Unknown); }
                    Some(Op::Stop(done)) => { let _ = done.send(()); return; }
                    Some(_) => {}
                },
                _ = tokio::time::sleep_until(retry) => break,
            }
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Writes this node's whole state and says hello.
async fn register(cx: &mut Context, conn: &mut MultiplexedConnection) -> redis::RedisResult<()> {
    let Some(hub) = cx.node.hub.upgrade() else {
        return Ok(());
    };
    let me = cx.node.config.node.clone();
    let keys = &cx.node.keys;
    // Cleared first: a change made while registering sets it again.
    cx.node.shared.dirty.store(false, Ordering::Relaxed);
    cx.reap_after = tokio::time::Instant::now() + cx.node.config.lease;
    let sessions = hub.local_presence();
    let mut pipe = redis::pipe();
    pipe.atomic()
        .cmd("SADD")
        .arg(keys.nodes())
        .arg(&*me)
        .ignore()
        .cmd("SET")
        .arg(keys.alive(&me))
        .arg(1)
        .arg("PX")
        .arg(cx.node.config.lease.as_millis() as u64)
        .ignore()
        .cmd("DEL")
        .arg(keys.sessions(&me))
        .ignore();
    for session in &sessions {
        pipe.cmd("HSET")
            .arg(keys.sessions(&me))
            .arg(session.id)
            .arg(serde_json::to_string(session).unwrap_or_default())
            .ignore();
    }
    pipe.query_async::<()>(conn).await?;

    // Nicknames: claim every current one, drop stale claims of this node
    // (sessions that ended while Redis was unreachable).
    let held: Vec<(String, String)> = redis::cmd("HGETALL")
        .arg(keys.nicks())
        .query_async(conn)
        .await?;
    let mine: std::collections::HashSet<String> =
        sessions.iter().map(|s| owner(&me, s.id)).collect();
    for (nick, holder) in held {
        if holder.starts_with(&format!("{me}/")) && !mine.contains(&holder) {
            release(conn, keys, &nick, &holder).await?;
        }
    }
    // A session logged in to its nickname's account holds it by the shared
    // account store, not by a claim (its devices share it).
    for session in sessions.iter().filter(|s| !s.logged_in) {
        if !claim(
            conn,
            keys,
            &names::nick_key(&session.nick),
            &owner(&me, session.id),
        )
        .await?
        {
            give_way(conn, keys, &hub, &me, session).await?;
        }
    }
    publish(conn, keys, &me, vec![Event::Hello]).await
}

/// `session`'s nickname was taken on another node while the two could not
/// see each other: the node that registered first keeps it, this one
/// becomes `NICK-2` (or the next free number).
async fn give_way(
    conn: &mut MultiplexedConnection,
    keys: &Keys,
    hub: &Hub,
    me: &str,
    session: &SessionState,
) -> redis::RedisResult<()> {
    let holder = owner(me, session.id);
    let base: String = session
        .nick
        .chars()
        .take(names::MAX_NICK_CHARS - 3)
        .collect();
    for n in 2..100 {
        let candidate = format!("{base}-{n}");
        let key = names::nick_key(&candidate);
        if !claim(conn, keys, &key, &holder).await? {
            continue;
        }
        match hub.yield_nick(session.id, &candidate) {
            Ok(()) => {
                tracing::warn!(nick = %session.nick, now = %candidate, "nickname taken on two nodes during a split; renamed this node's user");
                return Ok(());
            }
            Err(e) => {
                release(conn, keys, &key, &holder).await?;
                if e == HubError::SessionEnded {
                    return Ok(());
                }
            }
        }
    }
    tracing::warn!(nick = %session.nick, "nickname taken on two nodes during a split; no free variant found");
    Ok(())
}

async fn serve(cx: &mut Context, conn: &mut MultiplexedConnection) -> Ended {
    let mut heartbeat = tokio::time::interval(cx.node.config.lease / 3);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        let result = tokio::select! {
            n = cx.ops.recv_many(&mut batch, BATCH) => {
                if n == 0 {
                    return Ended::Stopped;
                }
                match process(cx, conn, batch.drain(..)).await {
                    Ok(true) => return Ended::Stopped,
                    Ok(false) => Ok(()),
                    Err(e) => Err(e),
                }
            }
            _ = heartbeat.tick() => match beat(cx, conn).await {
                Ok(true) => Ok(()),
                Ok(false) => return Ended::Reaped,
                Err(e) => Err(e),
            },
        };
        if let Err(e) = result {
            return Ended::Failed(e);
        }
    }
}

/// Sends a batch of operations in order; true once told to stop.
async fn process(
    cx: &mut Context,
    conn: &mut MultiplexedConnection,
    ops: impl Iterator<Item = Op>,
) -> redis::RedisResult<bool> {
    let me = cx.node.config.node.clone();
    let keys = cx.node.keys.clone();
    let mut pipe = redis::pipe();
    let mut events = Vec::new();
    let mut bytes = 0;
    for op in ops {
        match op {
            Op::Claim {
                key,
                session,
                reply,
            } => {
                // Everything before the claim goes first, in order.
                flush(conn, &keys, &me, &mut pipe, &mut events).await?;
                bytes = 0;
                let granted = claim(conn, &keys, &key, &owner(&me, session)).await?;
                let _ = reply.send(if granted {
                    Claim::Granted
                } else {
                    Claim::Taken
                });
            }
            Op::Release { key, session } => {
                pipe.cmd("EVAL")
                    .arg(RELEASE)
                    .arg(1)
                    .arg(keys.nicks())
                    .arg(key)
                    .arg(owner(&me, session))
                    .ignore();
            }
            Op::Session(state) => {
                pipe.cmd("HSET")
                    .arg(keys.sessions(&me))
                    .arg(state.id)
                    .arg(serde_json::to_string(&state).unwrap_or_default())
                    .ignore();
                bytes += state.rooms.len() * 40 + 64;
                events.push(Event::Session(state));
            }
            Op::Closed { session, reason } => {
                pipe.cmd("HDEL")
                    .arg(keys.sessions(&me))
                    .arg(session)
                    .ignore();
                events.push(Event::Closed {
                    id: session,
                    reason,
                });
            }
            Op::Publish(event) => {
                bytes += event.approx_size();
                events.push(event);
            }
            Op::Stop(done) => {
                flush(conn, &keys, &me, &mut pipe, &mut events).await?;
                let _ = unregister(conn, &keys, &me).await;
                let _ = done.send(());
                return Ok(true);
            }
        }
        if bytes >= ENVELOPE_BYTES {
            seal(&keys, &me, &mut pipe, &mut events);
            bytes = 0;
        }
    }
    flush(conn, &keys, &me, &mut pipe, &mut events).await?;
    Ok(false)
}

/// Adds PUBLISHes of the events so far to the pipeline: one per run of
/// consecutive events for the same channel (a room's messages and typing
/// on the room's channel, private messages on the recipient node's, the
/// rest on the channel every node hears). Redis delivers one connection's
/// publications to a subscriber in the order they were made, across
/// channels too, so a node hearing a room sees its messages and the
/// presence around them in the order they happened.
fn seal(keys: &Keys, me: &Arc<str>, pipe: &mut redis::Pipeline, events: &mut Vec<Event>) {
    let mut run: Vec<Event> = Vec::new();
    let mut run_channel: Option<String> = None;
    let mut add = |channel: String, run: Vec<Event>| {
        let envelope = Envelope {
            from: me.clone(),
            events: run,
        };
        pipe.cmd("PUBLISH")
            .arg(channel)
            .arg(serde_json::to_string(&envelope).unwrap_or_default())
            .ignore();
    };
    for event in events.drain(..) {
        let channel = match &event {
            Event::Message { key, .. } | Event::Typing { key, .. } => keys.room_channel(key),
            Event::Private { to_node, .. } => keys.node_channel(to_node),
            _ => keys.channel(),
        };
        if let Some(previous) = run_channel.take_if(|c| *c != channel) {
            add(previous, std::mem::take(&mut run));
        }
        run_channel = Some(channel);
        run.push(event);
    }
    if let Some(channel) = run_channel {
        add(channel, run);
    }
}

/// Runs the pipeline so far, with one PUBLISH of the events so far.
async fn flush(
    conn: &mut MultiplexedConnection,
    keys: &Keys,
    me: &Arc<str>,
    pipe: &mut redis::Pipeline,
    events: &mut Vec<Event>,
) -> redis::RedisResult<()> {
    seal(keys, me, pipe, events);
    if !pipe.is_empty() {
        pipe.query_async::<()>(conn).await?;
        pipe.clear();
    }
    Ok(())
}

/// Refreshes this node's lease and reaps dead nodes; false if this node
/// had itself been reaped.
async fn beat(cx: &mut Context, conn: &mut MultiplexedConnection) -> redis::RedisResult<bool> {
    let me = cx.node.config.node.clone();
    let keys = cx.node.keys.clone();
    let (_, registered): ((), bool) = redis::pipe()
        .cmd("SET")
        .arg(keys.alive(&me))
        .arg(1)
        .arg("PX")
        .arg(cx.node.config.lease.as_millis() as u64)
        .cmd("SISMEMBER")
        .arg(keys.nodes())
        .arg(&*me)
        .query_async(conn)
        .await?;
    if !registered {
        return Ok(false);
    }
    if cx.node.shared.dirty.load(Ordering::Relaxed) {
        register(cx, conn).await?;
    }
    if tokio::time::Instant::now() < cx.reap_after {
        return Ok(true);
    }
    let nodes: Vec<String> = redis::cmd("SMEMBERS")
        .arg(keys.nodes())
        .query_async(conn)
        .await?;
    for node in nodes.into_iter().filter(|n| **n != *me) {
        let alive: bool = redis::cmd("EXISTS")
            .arg(keys.alive(&node))
            .query_async(conn)
            .await?;
        if !alive {
            reap(cx, conn, &node).await?;
        }
    }
    Ok(true)
}

/// Removes dead `node`: its sessions leave, its nicknames are freed. Only
/// the node whose DEL of the session hash succeeds announces it to all;
/// every node applies it locally anyway (idempotent).
async fn reap(
    cx: &Context,
    conn: &mut MultiplexedConnection,
    node: &str,
) -> redis::RedisResult<()> {
    let keys = &cx.node.keys;
    let sessions = super::read_sessions(conn, keys, node).await?;
    let deleted: u64 = redis::cmd("DEL")
        .arg(keys.sessions(node))
        .query_async(conn)
        .await?;
    let _: u64 = redis::cmd("SREM")
        .arg(keys.nodes())
        .arg(node)
        .query_async(conn)
        .await?;
    if deleted == 1 {
        tracing::info!(%node, sessions = sessions.len(), "reaped a dead node");
        for session in &sessions {
            release(
                conn,
                keys,
                &names::nick_key(&session.nick),
                &owner(node, session.id),
            )
            .await?;
        }
        publish(
            conn,
            keys,
            &cx.node.config.node,
            vec![Event::Gone { node: node.into() }],
        )
        .await?;
    }
    if let Some(hub) = cx.node.hub.upgrade() {
        hub.remote_replace(&Arc::from(node), Vec::new());
    }
    Ok(())
}

/// Takes this node out of the cluster at once (graceful shutdown).
async fn unregister(
    conn: &mut MultiplexedConnection,
    keys: &Keys,
    me: &Arc<str>,
) -> redis::RedisResult<()> {
    let held: Vec<(String, String)> = redis::cmd("HGETALL")
        .arg(keys.nicks())
        .query_async(conn)
        .await?;
    for (nick, holder) in held {
        if holder.starts_with(&format!("{me}/")) {
            release(conn, keys, &nick, &holder).await?;
        }
    }
    redis::pipe()
        .cmd("DEL")
        .arg(keys.sessions(me))
        .ignore()
        .cmd("DEL")
        .arg(keys.alive(me))
        .ignore()
        .cmd("SREM")
        .arg(keys.nodes())
        .arg(&**me)
        .ignore()
        .query_async::<()>(conn)
        .await?;
    publish(conn, keys, me, vec![Event::Gone { node: me.clone() }]).await
}

async fn claim(
    conn: &mut MultiplexedConnection,
    keys: &Keys,
    nick: &str,
    owner: &str,
) -> redis::RedisResult<bool> {
    redis::cmd("EVAL")
        .arg(CLAIM)
        .arg(1)
        .arg(keys.nicks())
        .arg(nick)
        .arg(owner)
        .arg(keys.alive(""))
        .query_async(conn)
        .await
}

async fn release(
    conn: &mut MultiplexedConnection,
    keys: &Keys,
    nick: &str,
    owner: &str,
) -> redis::RedisResult<()> {
    redis::cmd("EVAL")
        .arg(RELEASE)
        .arg(1)
        .arg(keys.nicks())
        .arg(nick)
        .arg(owner)
        .query_async::<u64>(conn)
        .await
        .map(drop)
}

async fn publish(
    conn: &mut MultiplexedConnection,
    keys: &Keys,
    me: &Arc<str>,
    events: Vec<Event>,
) -> redis::RedisResult<()> {
    let envelope = Envelope {
        from: me.clone(),
        events,
    };
    redis::cmd("PUBLISH")
        .arg(keys.channel())
        .arg(serde_json::to_string(&envelope).unwrap_or_default())
        .query_async::<u64>(conn)
        .await
        .map(drop)
}
