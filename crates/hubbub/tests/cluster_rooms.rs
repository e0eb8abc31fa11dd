//! A node of a cluster hears only the rooms it has members in: their
//! messages come on the room's own channel, which a node subscribes to
//! while it has members there, and nothing committed in between is lost.

mod common;

use std::time::Duration;

use common::cluster::{tcp, tcp_skip_to, tcp_skip_until, Cluster, REDIS};
use common::{Client, Process};

/// How many nodes listen on room `room`'s channel (Redis `PUBSUB NUMSUB`).
async fn listeners(cluster: &Cluster, room: &str) -> u64 {
    let mut redis = redis::Client::open(REDIS)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let (_, count): (String, u64) = redis::cmd("PUBSUB")
        .arg("NUMSUB")
        .arg(format!("{}:room:{room}", cluster.prefix))
        .query_async(&mut redis)
        .await
        .unwrap();
    count
}

/// Waits (at most 5 s) until `room`'s channel has `expected` listeners.
async fn await_listeners(cluster: &Cluster, room: &str, expected: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let count = listeners(cluster, room).await;
        if count == expected {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{room}: {count} listeners, expected {expected}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Two nodes, and alice on the first in room busy. (The cluster is
/// returned first, so it is dropped after the nodes.)
async fn alice_in_busy() -> (Cluster, Process, Process, Client) {
    let cluster = Cluster::new().await;
    let n1 = cluster.node(REDIS, "n1").await;
    let n2 = cluster.node(REDIS, "n2").await;
    let mut alice = tcp(&n1, "alice").await;
    alice.send("/join busy").await;
    tcp_skip_until(&mut alice, |l| l.starts_with("* you are now in busy")).await;
    (cluster, n1, n2, alice)
}

#[tokio::test]
async fn a_node_hears_a_room_only_while_it_has_members_there() {
    let (cluster, _n1, n2, mut alice) = alice_in_busy().await;
    // Only n1 has a member in busy; both hear the lobby, where everyone starts.
    await_listeners(&cluster, "busy", 1).await;
    await_listeners(&cluster, "lobby", 2).await;
    for i in 0..20 {
        alice.send(&format!("before {i}")).await;
        tcp_skip_to(&mut alice, &format!("alice: before {i}")).await;
    }
    // bob on n2 joins: history from the store, then the live stream, with
    // nothing missing between them.
    let mut bob = tcp(&n2, "bob").await;
    bob.send("/join busy").await;
    tcp_skip_until(&mut bob, |l| l.starts_with("* history of busy (20)")).await;
    let mut seen = Vec::new();
    loop {
        let line = bob.line().await;
        if line == "* end of history" {
            break;
        }
        seen.push(line);
    }
    assert_eq!(seen.len(), 20, "{seen:?}");
    assert!(seen[19].ends_with("alice: before 19"), "{seen:?}");
    tcp_skip_until(&mut bob, |l| l.starts_with("* you are now in busy")).await;
    await_listeners(&cluster, "busy", 2).await;
    for i in 0..20 {
        alice.send(&format!("after {i}")).await;
    }
    for i in 0..20 {
        tcp_skip_to(&mut bob, &format!("alice: after {i}")).await;
    }
    // bob leaves: n2 stops hearing busy.
    bob.send("/join lobby").await;
    await_listeners(&cluster, "busy", 1).await;
    await_listeners(&cluster, "lobby", 2).await;
    drop(n2);
}

#[tokio::test]
async fn joining_while_the_room_is_busy_misses_nothing() {
    let (_cluster, _n1, n2, mut alice) = alice_in_busy().await;
    // alice posts every 3 ms while bob, on the other node, comes and goes:
    // each join subscribes n2 to busy anew, in the middle of the stream.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let posting = stop.clone();
    let poster = tokio::spawn(async move {
        let mut i = 0;
        while !posting.load(std::sync::atomic::Ordering::Relaxed) {
            alice.send(&format!("m{i}")).await;
            i += 1;
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
        alice
    });
    let mut bob = tcp(&n2, "bob").await;
    for round in 0..8 {
        bob.send("/join busy").await;
        // History then live messages: every id once, in order, none
        // missing where the one meets the other.
        let mut last: Option<u64> = None;
        for _ in 0..60 {
            let line = bob.line().await;
            let number = line.rsplit_once("alice: m").map(|(_, n)| n.to_string());
            let Some(n) = number.and_then(|n| n.parse::<u64>().ok()) else {
                continue;
            };
            if let Some(last) = last {
                assert_eq!(n, last + 1, "round {round}: after m{last} came m{n}");
            }
            last = Some(n);
        }
        bob.send("/join lobby").await;
        tcp_skip_until(&mut bob, |l| l.starts_with("* you are now in lobby")).await;
        // Long enough for n2 to drop its subscription to busy.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    poster.await.unwrap();
    drop(n2);
}
