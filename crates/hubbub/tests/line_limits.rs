//! Limits against a real server: flood control, connection caps, idle timeout.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{Client, TestServer};

#[tokio::test]
async fn flooding_is_rejected_then_disconnected() {
    let mut config = common::config();
    config.flood_rate = 1.0;
    config.flood_burst = 3;
    config.flood_kick = 5;
    let server = TestServer::start(config).await;
    let [mut a, mut b] = common::named_clients(&server, ["alice", "bob"])
        .await
        .try_into()
        .unwrap_or_else(|_| unreachable!());
    // The renames spent one token each; let the buckets refill.
    tokio::time::sleep(Duration::from_millis(1100)).await;

    // A burst of 3 passes; the 4th and later are rejected with one error.
    let burst: String = (1..=6).map(|i| format!("line {i}\n")).collect();
    a.send_bytes(burst.as_bytes()).await;
    // The error is immediate; the accepted lines come once committed, so
    // the two may interleave for the sender.
    let mut got: Vec<String> = Vec::new();
    for _ in 0..4 {
        got.push(a.line().await);
    }
    let error = "! you are sending too fast; lines are dropped until you slow down";
    assert_eq!(got.iter().filter(|l| *l == error).count(), 1, "{got:?}");
    got.retain(|l| l != error);
    assert_eq!(got, ["alice: line 1", "alice: line 2", "alice: line 3"]);
    for i in 1..=3 {
        b.expect(&format!("alice: line {i}")).await;
    }
    b.expect_silence(Duration::from_millis(300)).await;
    assert_eq!(
        server
            .hub
            .stats()
            .flood_rejected_lines
            .load(Ordering::Relaxed),
        3
    );

    // Keeping it up past the kick threshold disconnects.
    a.send_bytes(b"more\nmore\nmore\n").await;
    let rest = a.read_to_end(Duration::from_secs(5)).await;
    assert!(
        rest.ends_with("! disconnected: flooding: too many lines too fast\n"),
        "got {rest:?}"
    );
    b.expect("alice has left").await;
    assert_eq!(
        server.hub.stats().flood_disconnects.load(Ordering::Relaxed),
        1
    );

    // Bob, at a normal pace, was never affected.
    b.send("still here").await;
    b.expect("bob: still here").await;
}

#[tokio::test]
async fn connection_caps_refuse_with_a_line() {
    let mut config = common::config();
    config.max_connections_per_ip = 2;
    let server = TestServer::start(config).await;
    let mut a = server.client().await;
    let _b = server.client().await;
    a.line().await; // b has joined

    let mut refused = Client::connect_raw(server.addr).await;
    assert_eq!(
        refused.read_to_end(Duration::from_secs(5)).await,
        "! too many connections from your address (at most 2)\n"
    );
    // Nobody heard of the refused connection.
    a.expect_silence(Duration::from_millis(200)).await;

    // A freed slot can be used again.
    drop(a);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let _c = server.client().await;

    let mut config = common::config();
    config.max_connections = 1;
    let server = TestServer::start(config).await;
    let _only = server.client().await;
    let mut refused = Client::connect_raw(server.addr).await;
    assert_eq!(
        refused.read_to_end(Duration::from_secs(5)).await,
        "! server full: 1 connections already\n"
    );
}

#[tokio::test]
async fn idle_clients_are_disconnected_when_configured() {
    let mut config = common::config();
    config.idle_timeout = Some(Duration::from_secs(1));
    let server = TestServer::start(config).await;
    let mut idle = server.client().await;
    let mut chatty = server.client().await;
    idle.line().await; // chatty has joined
                       // Others' traffic does not count as the idle client's activity.
    for _ in 0..2 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        chatty.send("tick").await;
        chatty.expect(&format!("{}: tick", chatty.name)).await;
    }
    let rest = idle.read_to_end(Duration::from_secs(5)).await;
    assert!(
        rest.ends_with("! disconnected: idle timeout\n"),
        "got {rest:?}"
    );
    chatty.expect(&format!("{} has left", idle.name)).await;
}

#[tokio::test]
async fn a_request_that_returns_much_costs_what_it_returns() {
    let mut config = common::config();
    config.flood_rate = 20.0;
    config.flood_burst = 40;
    config.flood_kick = 1000;
    let server = TestServer::start(config).await;
    let mut writer = server.client().await;
    // 30 long lines: within the writer's burst.
    let long = "w".repeat(3000);
    for i in 0..30 {
        writer.send(&format!("{i} {long}")).await;
    }
    for i in 0..30 {
        writer.expect(&format!("{}: {i} {long}", writer.name)).await;
    }
    // Another client asks for that history twice (about 90 KB each): the
    // first costs it ~23 tokens, the second ~23 more, and a cheap request
    // right after is refused.
    let mut reader = server.client().await;
    // The room's recent messages come on arrival, free.
    while reader.line().await != "* end of history" {}
    reader.send("/history 30").await;
    reader.send("/history 30").await;
    reader.send("/history 30").await;
    let mut ends = 0;
    let refused = loop {
        let line = reader.line().await;
        if line.starts_with("! you are sending too fast") {
            break true;
        }
        if line == "* end of history" {
            ends += 1;
            if ends == 3 {
                break false;
            }
        }
    };
    assert!(refused, "the third history request was not refused");
}
