//! Where a room becomes live on a node: a client joining (or resuming) a
//! busy room on a node where nobody else is in it gets history and live
//! messages that meet at one id — none skipped, none twice — however the
//! join falls between the messages another node commits.

mod common;

use std::time::Duration;

use common::cluster::{socket, tcp, tcp_skip_until, Cluster, REDIS};
use serde_json::{json, Value};

/// The ids of `message` events of room `room` among `events`.
fn message_ids(events: &[(String, Value)], room: &str) -> Vec<u64> {
    events
        .iter()
        .filter(|(name, v)| name == "message" && v["room"] == room)
        .filter_map(|(_, v)| v["id"].as_u64())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joins_on_a_quiet_node_meet_the_live_stream_at_one_id() {
    const JOINS: usize = 50;
    let cluster = Cluster::new().await;
    let n1 = cluster.node(REDIS, "n1").await;
    // n2 reads the store slowly (each byte 5 ms late each way) and hears
    // the cluster fast: a message committed while it reads a room it is
    // joining arrives before the read is over, as on a busy node.
    let slow = common::proxy::Proxy::start_delayed(
        "127.0.0.1:5432".parse().unwrap(),
        Duration::from_millis(5),
    )
    .await;
    let url = cluster
        .database
        .url
        .replace("127.0.0.1:5432", &slow.addr.to_string());
    let n2 = cluster.node_via(REDIS, "n2", &url).await;
    let mut poster = tcp(&n1, "poster").await;
    poster.send("/join busy").await;
    tcp_skip_until(&mut poster, |l| l.starts_with("* you are now in busy")).await;
    let mut reader = socket(&n2, "reader").await;

    // A message every 3 ms on n1 while the reader comes and goes on n2.
    let posting = tokio::spawn(async move {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        let mut i = 0u64;
        loop {
            poster.send(&format!("m{i}")).await;
            i += 1;
            // Read the echoes as they come (so the poster is never a slow
            // consumer), for 3 ms between messages.
            let pause = tokio::time::Instant::now() + Duration::from_millis(3);
            while tokio::time::timeout_at(pause, poster.line()).await.is_ok() {}
            if tokio::time::Instant::now() > deadline {
                return;
            }
        }
    });

    let mut since: Option<u64> = None;
    let mut failures = Vec::new();
    for round in 0..JOINS {
        let data = match since {
            Some(since) => json!({"room": "busy", "since": since}),
            None => json!({"room": "busy"}),
        };
        let answer = reader.request("join", Some(data)).await;
        let last_id = answer["ok"]["last_id"].as_u64().expect("last_id");
        // What arrived with the join: its history, then live messages.
        let mut events = Vec::new();
        let until = tokio::time::Instant::now() + Duration::from_millis(100);
        while let Ok(event) = tokio::time::timeout_at(until, reader.next_event()).await {
            events.push(event);
        }
        let leave = reader.request("leave", Some(json!({"room": "busy"}))).await;
        assert!(leave.get("ok").is_some(), "{leave}");
        // Events that came with the leave's answer were sent before it.
        while let Ok(event) =
            tokio::time::timeout(Duration::from_millis(20), reader.next_event()).await
        {
            events.push(event);
        }
        let history: Vec<u64> = events
            .iter()
            .filter(|(name, v)| name == "history" && v["room"] == "busy")
            .flat_map(|(_, v)| {
                v["messages"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|m| m["id"].as_u64())
            })
            .collect();
        let live = message_ids(&events, "busy");
        // History ends at the ack's last id (or, resuming with nothing
        // new, there is none and `since` is it).
        let history_end = history.last().copied().or(since).unwrap_or(0);
        if history_end != last_id {
            failures.push(format!(
                "round {round}: history ends at {history_end}, ack says {last_id}"
            ));
        }
        if let Some(since) = since {
            if history.first().is_some_and(|&first| first != since + 1) {
                failures.push(format!(
                    "round {round}: resumed after {since}, history starts at {:?}",
                    history.first()
                ));
            }
        }
        // Live messages follow on, one by one.
        let expected: Vec<u64> = (last_id + 1..last_id + 1 + live.len() as u64).collect();
        if live != expected {
            failures.push(format!(
                "round {round}: after last id {last_id} live came {:?}…",
                &live[..live.len().min(5)]
            ));
        }
        since = Some(live.last().copied().unwrap_or(last_id));
    }
    posting.abort();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
