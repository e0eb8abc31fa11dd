//! A cluster for tests: nodes (processes) sharing a fresh PostgreSQL
//! schema and a fresh Redis key prefix, removed when dropped; and clients
//! on its nodes.
#![allow(dead_code)]

use serde_json::json;

use super::sio::SioClient;
use super::{Client, Process};

/// The local Redis the tests use.
pub const REDIS: &str = "redis://127.0.0.1:6379";
/// A short lease, so that dead nodes are noticed within a test's patience.
pub const LEASE_SECS: u64 = 2;

/// One cluster's shared ground: a fresh PostgreSQL schema and a Redis key
/// prefix no other test or run uses; both are removed when it is dropped
/// (declare it before the nodes, so they are stopped first).
pub struct Cluster {
    pub database: super::PgSchema,
    pub prefix: String,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let deleted = (|| -> redis::RedisResult<()> {
            let mut redis = redis::Client::open(REDIS)?.get_connection()?;
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg(format!("{}:*", self.prefix))
                .query(&mut redis)?;
            if !keys.is_empty() {
                redis::cmd("DEL").arg(keys).query::<()>(&mut redis)?;
            }
            Ok(())
        })();
        if let Err(e) = deleted {
            eprintln!("could not delete test keys {}:*: {e}", self.prefix);
        }
    }
}

impl Cluster {
    pub async fn new() -> Cluster {
        Cluster {
            database: super::postgres_schema().await,
            prefix: format!(
                "hubbub-test-{}-{}",
                std::process::id(),
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos()
            ),
        }
    }

    /// A node of this cluster reaching Redis at `redis`, started and subscribed.
    pub async fn node(&self, redis: &str, name: &str) -> Process {
        self.node_via(redis, name, &self.database.url).await
    }

    /// [`Cluster::node`], reaching this cluster's PostgreSQL schema at
    /// `database_url` (through a proxy, say).
    pub async fn node_via(&self, redis: &str, name: &str, database_url: &str) -> Process {
        let args: Vec<String> = [
            "--store",
            "postgres",
            "--database-url",
            database_url,
            "--redis-url",
            redis,
            "--cluster-prefix",
            &self.prefix,
            "--node-id",
            name,
            "--cluster-lease",
            &LEASE_SECS.to_string(),
            "--flood-rate",
            "0",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let process = Process::start(&args).await;
        process.wait_for_log("joined the cluster").await;
        process.wait_for_log("subscribed to the cluster").await;
        process
    }
}

/// A Socket.IO client on `node` named `nick`, with the rename's events read.
pub async fn socket(node: &Process, nick: &str) -> SioClient {
    let mut web = SioClient::connect(node.http).await;
    web.ok("set nickname", Some(json!(nick))).await;
    web.nick = nick.to_string();
    web
}

/// A TCP client on `node` named `nick`.
pub async fn tcp(node: &Process, nick: &str) -> Client {
    let mut client = Client::connect(node.tcp).await;
    client.send(&format!("/nick {nick}")).await;
    let renamed = format!(" is now known as {nick}");
    tcp_skip_until(&mut client, |line| line.ends_with(&renamed)).await;
    client.name = nick.to_string();
    client
}

/// Reads `client`'s lines until one equals `expected`, skipping others.
pub async fn tcp_skip_to(client: &mut Client, expected: &str) {
    tcp_skip_until(client, |line| line == expected).await;
}

/// Reads `client`'s lines until one matches, skipping others.
pub async fn tcp_skip_until(client: &mut Client, wanted: impl Fn(&str) -> bool) -> String {
    loop {
        let line = client.line().await;
        if wanted(&line) {
            return line;
        }
    }
}
