//! Several nodes, one chat: the cluster link through Redis.
//!
//! A node started with `--redis-url` shares with the others, through one
//! Redis:
//! - **room messages**, committed to the shared PostgreSQL store first (the
//!   store numbers them, so ids are unique and gap-free cluster-wide), then
//!   published on the room's own pub/sub channel, which only the nodes with
//!   members in the room subscribe to (a node's work follows its own rooms,
//!   not the whole cluster's traffic); every node delivers them in id order
//!   and reads from the store whatever pub/sub lost (`hub::order`), and
//!   whatever was committed before it subscribed (`Hub::rooms_heard`);
//! - **private messages** on the recipient's node's channel;
//! - **presence**: each node keeps its sessions (nickname, rooms) in a Redis
//!   hash and publishes every change; the others mirror it
//!   (`hub::remote`) and announce joins, leaves and renames to their users;
//! - **nicknames**: claimed in one Redis hash by a script that refuses a
//!   nickname held by a live node, so they are unique cluster-wide;
//! - **liveness**: each node refreshes a key with a TTL (the lease); a node
//!   whose key expired is reaped by whichever node notices first: its
//!   sessions leave (announced on every node), its nicknames are freed.
//!
//! Redis unreachable: each node keeps serving its own users, answers
//! nickname claims from what it knows, reconnects with backoff, then
//! re-registers and resynchronises presence and missed messages.
//!
//! Why pub/sub and not streams, and what it costs: docs/ARCHITECTURE.md.

mod link;
pub mod logins;
mod subscriber;
pub mod wire;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::hub::broker::{Broker, Outgoing};
use crate::hub::{Hub, SessionId};

/// Operations the link task accepts before callers wait (or, for presence
/// and typing, before they are dropped and a full resync is scheduled).
const QUEUE: usize = 8192;
/// Longest a nickname claim waits for Redis before the node decides alone.
const CLAIM_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest a connection attempt or a command may take.
const IO_TIMEOUT: Duration = Duration::from_secs(3);
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// How to join the cluster.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    pub redis_url: String,
    /// This node's name; unique in the cluster.
    pub node: Arc<str>,
    /// Prefix of every key and channel.
    pub prefix: String,
    /// A node silent this long is dead.
    pub lease: Duration,
}

/// A node id for a node not given one: unlikely to repeat across restarts.
pub fn generate_node_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    hasher.write_u32(std::process::id());
    format!("node-{:012x}", hasher.finish() & 0xffff_ffff_ffff)
}

/// Redis key and channel names.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    prefix: String,
}

impl Keys {
    /// The channel every node hears: presence, moderation, hellos.
    fn channel(&self) -> String {
        format!("{}:events", self.prefix)
    }
    /// Room `key`'s messages and typing, heard by the nodes with members
    /// there.
    fn room_channel(&self, key: &str) -> String {
        format!("{}:room:{key}", self.prefix)
    }
    /// Private messages for `node`'s sessions.
    fn node_channel(&self, node: &str) -> String {
        format!("{}:node:{node}", self.prefix)
    }
    /// Set of registered node ids.
    fn nodes(&self) -> String {
        format!("{}:nodes", self.prefix)
    }
    /// Exists while `node` is alive (refreshed with a TTL).
    fn alive(&self, node: &str) -> String {
        format!("{}:alive:{node}", self.prefix)
    }
    /// Hash: session id → [`wire::SessionState`] JSON.
    fn sessions(&self, node: &str) -> String {
        format!("{}:sessions:{node}", self.prefix)
    }
    /// Hash: folded nickname → `node/session`.
    fn nicks(&self) -> String {
        format!("{}:nicks", self.prefix)
    }
}

pub use crate::hub::broker::Claim;

/// What the hub hands the link task.
#[derive(Debug)]
pub(crate) enum Op {
    Claim {
        key: String,
        session: SessionId,
        reply: oneshot::Sender<Claim>,
    },
    Release {
        key: String,
        session: SessionId,
    },
    /// A session opened or changed: its state as of the change. Published
    /// in queue order with the messages around it, so the other nodes see
    /// a join, a message and a leave in the order they happened (a state
    /// read when the link got to it could skip the join, and show the
    /// message from someone not in the room).
    Session(wire::SessionState),
    Closed {
        session: SessionId,
        reason: Option<Arc<str>>,
    },
    Publish(wire::Event),
    /// Leave the cluster (graceful shutdown).
    Stop(oneshot::Sender<()>),
}

#[derive(Debug, Default)]
struct Shared {
    connected: AtomicBool,
    /// Presence changed without being sent (queue full, Redis down, or
    /// this node reaped by the others): re-register at the next heartbeat.
    dirty: AtomicBool,
    /// Keys of the rooms the hub wants to hear (`Broker::watch_room`); the
    /// subscriber's reader makes its subscriptions match.
    watched: std::sync::Mutex<std::collections::HashSet<String>>,
    /// `watched` changed since the reader last looked.
    watch_changed: AtomicBool,
}

/// The hub's handle on the cluster link.
#[derive(Debug, Clone)]
pub struct Link {
    node: Arc<str>,
    ops: mpsc::Sender<Op>,
    shared: Arc<Shared>,
}

/// The link's tasks, not yet started (they need the hub, which needs the link).
pub struct Tasks {
    config: ClusterConfig,
    client: redis::Client,
    ops: mpsc::Receiver<Op>,
    shared: Arc<Shared>,
}

impl Link {
    /// Checks the URL; nothing is connected until [`Tasks::spawn`].
    pub fn new(config: ClusterConfig) -> anyhow::Result<(Link, Tasks)> {
        let client = redis::Client::open(config.redis_url.as_str())
            .map_err(|e| anyhow::anyhow!("--redis-url {}: {e}", config.redis_url))?;
        let (tx, rx) = mpsc::channel(QUEUE);
        let shared = Arc::new(Shared::default());
        let link = Link {
            node: config.node.clone(),
            ops: tx,
            shared: shared.clone(),
        };
        Ok((
            link,
            Tasks {
                config,
                client,
                ops: rx,
                shared,
            },
        ))
    }

    pub fn node(&self) -> &Arc<str> {
        &self.node
    }

    /// Whether Redis is reachable right now.
    pub fn is_connected(&self) -> bool {
        self.shared.connected.load(Ordering::Relaxed)
    }

    /// Claims folded nickname `key` for `session` cluster-wide.
    pub(crate) async fn claim(&self, key: String, session: SessionId) -> Claim {
        if !self.is_connected() {
            return Claim::Unknown;
        }
        let (reply, answer) = oneshot::channel();
        if self
            .ops
            .try_send(Op::Claim {
                key,
                session,
                reply,
            })
            .is_err()
        {
            return Claim::Unknown;
        }
        tokio::time::timeout(CLAIM_TIMEOUT, answer)
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or(Claim::Unknown)
    }

    /// Queues `op` without waiting; if the queue is full it is dropped and
    /// a full resync is scheduled instead.
    pub(crate) fn send(&self, op: Op) {
        if self.ops.try_send(op).is_err() {
            self.shared.dirty.store(true, Ordering::Relaxed);
        }
    }

    /// Queues committed messages for the other nodes, waiting for room in
    /// the queue (backpressure on the sequencer rather than loss).
    pub(crate) async fn publish(&self, events: Vec<wire::Event>) {
        for event in events {
            if self.ops.send(Op::Publish(event)).await.is_err() {
                return;
            }
        }
    }

    /// Leaves the cluster: the other nodes see this node's users leave.
    pub async fn stop(&self) {
        let (done, stopped) = oneshot::channel();
        if self.ops.send(Op::Stop(done)).await.is_ok() {
            let _ = tokio::time::timeout(IO_TIMEOUT, stopped).await;
        }
    }
}

/// The hub's view of the cluster: every call becomes an op for the link
/// task, in order.
#[async_trait::async_trait]
impl Broker for Link {
    fn node(&self) -> &Arc<str> {
        Link::node(self)
    }

    fn is_connected(&self) -> bool {
        Link::is_connected(self)
    }

    async fn claim(&self, key: String, session: SessionId) -> Claim {
        Link::claim(self, key, session).await
    }

    fn release(&self, key: String, session: SessionId) {
        self.send(Op::Release { key, session });
    }

    fn session_changed(&self, state: wire::SessionState) {
        self.send(Op::Session(state));
    }

    fn session_closed(&self, session: SessionId, reason: Option<Arc<str>>) {
        self.send(Op::Closed { session, reason });
    }

    async fn publish(&self, events: Vec<Outgoing>) {
        Link::publish(self, events.into_iter().map(wire::Event::from).collect()).await;
    }

    fn moderation(&self, event: crate::hub::broker::ModerationEvent) {
        self.send(Op::Publish(wire::Event::Moderation(event)));
    }

    fn publish_now(&self, event: Outgoing) {
        self.send(Op::Publish(event.into()));
    }

    fn watch_room(&self, key: &str, watch: bool) {
        let mut watched = self
            .shared
            .watched
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let changed = if watch {
            watched.insert(key.to_string())
        } else {
            watched.remove(key)
        };
        if changed {
            self.shared.watch_changed.store(true, Ordering::Release);
        }
    }

    async fn stop(&self) {
        Link::stop(self).await;
    }
}

impl Tasks {
    /// Starts the link (registration, publishing, heartbeats, reaping) and
    /// the subscriber (other nodes' events into `hub`).
    pub fn spawn(self, hub: &Arc<Hub>) {
        let keys = Keys {
            prefix: self.config.prefix.clone(),
        };
        let node = Node {
            config: self.config,
            keys,
            client: self.client,
            hub: Arc::downgrade(hub),
            shared: self.shared,
        };
        tokio::spawn(link::run(link::Context {
            node: node.clone(),
            ops: self.ops,
            reap_after: tokio::time::Instant::now(),
        }));
        tokio::spawn(subscriber::run(node));
    }
}

/// What both tasks work with.
#[derive(Clone)]
struct Node {
    config: ClusterConfig,
    keys: Keys,
    client: redis::Client,
    hub: Weak<Hub>,
    shared: Arc<Shared>,
}

/// `node/session`: who holds a nickname.
fn owner(node: &str, session: SessionId) -> String {
    format!("{node}/{session}")
}

async fn connect(client: &redis::Client) -> redis::RedisResult<redis::aio::MultiplexedConnection> {
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(IO_TIMEOUT))
        .set_response_timeout(Some(IO_TIMEOUT));
    client
        .get_multiplexed_async_connection_with_config(&config)
        .await
}

/// Every live node's sessions but `me`'s, read from Redis.
async fn read_cluster(
    conn: &mut redis::aio::MultiplexedConnection,
    keys: &Keys,
    me: &str,
) -> redis::RedisResult<std::collections::HashMap<Arc<str>, Vec<wire::SessionState>>> {
    let nodes: Vec<String> = redis::cmd("SMEMBERS")
        .arg(keys.nodes())
        .query_async(conn)
        .await?;
    let mut cluster = std::collections::HashMap::new();
    for node in nodes.into_iter().filter(|n| n != me) {
        let alive: bool = redis::cmd("EXISTS")
            .arg(keys.alive(&node))
            .query_async(conn)
            .await?;
        if alive {
            let sessions = read_sessions(conn, keys, &node).await?;
            cluster.insert(Arc::from(node), sessions);
        }
    }
    Ok(cluster)
}

/// `node`'s sessions as stored in Redis.
async fn read_sessions(
    conn: &mut redis::aio::MultiplexedConnection,
    keys: &Keys,
    node: &str,
) -> redis::RedisResult<Vec<wire::SessionState>> {
    let values: Vec<String> = redis::cmd("HVALS")
        .arg(keys.sessions(node))
        .query_async(conn)
        .await?;
    Ok(values
        .iter()
        .filter_map(|v| serde_json::from_str(v).ok())
        .collect())
}
