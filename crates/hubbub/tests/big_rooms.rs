//! Rooms past the presence threshold: joins, leaves and renames come as
//! periodic summaries, typing is not relayed, member lists are paged and
//! counted, and a storm of joins into one room sheds nobody.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{config, sio::SioClient, Client, TestServer, WAIT};
use serde_json::json;

/// A server whose rooms are big past `threshold` sessions, with summaries
/// every 100 ms.
async fn server_with_threshold(threshold: usize) -> TestServer {
    TestServer::start(hubbub::config::Config {
        presence_threshold: threshold,
        presence_interval: Duration::from_millis(100),
        ..config()
    })
    .await
}

/// The counts of one summary line `* 2 joined, 1 left, 1 renamed (5 here)`:
/// (joined, left, renamed, here); `None` for another line.
fn summary(line: &str) -> Option<(u32, u32, u32, usize)> {
    let body = line.strip_prefix("* ")?;
    let (changes, here) = body.rsplit_once(" (")?;
    let here = here.strip_suffix(" here)")?.parse().ok()?;
    let (mut joined, mut left, mut renamed) = (0, 0, 0);
    for change in changes.split(", ") {
        let (n, what) = change.split_once(' ')?;
        let n: u32 = n.parse().ok()?;
        match what {
            "joined" => joined += n,
            "left" => left += n,
            "renamed" => renamed += n,
            _ => return None,
        }
    }
    Some((joined, left, renamed, here))
}

#[tokio::test]
async fn a_line_client_in_a_big_room_reads_summaries_instead_of_each_join() {
    let server = server_with_threshold(3).await;
    let mut watcher = server.client().await;
    // Up to the threshold, every join is announced as the Go chat does.
    let mut early = Vec::new();
    for _ in 0..3 {
        let client = server.client().await;
        watcher
            .expect(&format!("{} has joined us", client.name))
            .await;
        early.push(client);
    }
    // Past it (4 sessions and more), changes are counted.
    let mut d = server.client().await;
    let mut e = server.client().await;
    d.send("/quit").await;
    e.send("/nick evelyn").await;
    e.expect(&format!("{} is now known as evelyn", e.name))
        .await;
    let (mut joined, mut left, mut renamed, mut here) = (0, 0, 0, 0);
    while (joined, left, renamed) != (2, 1, 1) {
        let line = watcher.line().await;
        let (j, l, r, h) =
            summary(&line).unwrap_or_else(|| panic!("a presence summary, got {line:?}"));
        (joined, left, renamed, here) = (joined + j, left + l, renamed + r, h);
    }
    assert_eq!(here, 5, "watcher, three early clients and evelyn");
    // The room is quiet once summarized: no second account of the same changes.
    watcher.expect_silence(Duration::from_millis(400)).await;
    drop(early);
}

#[tokio::test]
async fn a_socket_in_a_big_room_gets_presence_events_and_no_typing() {
    let server = server_with_threshold(1).await;
    let mut w = server.socket().await;
    w.ok("join", Some(json!({"room": "stage"}))).await;
    let mut x = server.socket().await;
    x.ok("join", Some(json!({"room": "stage"}))).await;
    let joined = w.event_skipping("joined").await;
    assert_eq!(
        joined["nick"],
        json!(x.nick),
        "up to the threshold: one by one"
    );
    let mut y = server.socket().await;
    // (Its answer's member list may be a second old in a big room.)
    y.ok("join", Some(json!({"room": "stage"}))).await;
    // (The lobby, where every socket starts, is big too.)
    let presence = loop {
        let presence = w.event_skipping("presence").await;
        if presence["room"] == json!("stage") {
            break presence;
        }
    };
    assert_eq!(
        presence,
        json!({"room": "stage", "joined": 1, "left": 0, "renamed": 0, "members": 3})
    );
    // Typing costs a big room a delivery per member per keystroke: not relayed.
    y.ok("typing", Some(json!({"room": "stage", "typing": true})))
        .await;
    let quiet = tokio::time::Instant::now() + Duration::from_millis(500);
    while let Ok((name, event)) = tokio::time::timeout_at(quiet, w.next_event()).await {
        assert_ne!(name, "typing", "{event}");
    }
    // A message still reaches everyone.
    y.ok("message", Some(json!({"room": "stage", "text": "hello"})))
        .await;
    let message = w.event_skipping("message").await;
    assert_eq!(message["text"], json!("hello"));
    drop(x);
}

#[tokio::test]
async fn member_lists_are_paged_and_counted_on_both_transports() {
    let server = TestServer::default().await;
    let mut clients = common::named_clients(&server, ["dave", "alice", "carol", "bob"]).await;
    let mut web = server.socket().await;
    web.ok("set nickname", Some(json!("erin"))).await;
    // Socket.IO: pages of 2, each continuing after the last of the one before.
    let first = web
        .ok("members", Some(json!({"room": "lobby", "limit": 2})))
        .await;
    assert_eq!(
        first,
        json!({"room": "lobby", "count": 5, "members": ["alice", "bob"], "next": "bob"})
    );
    let second = web
        .ok(
            "members",
            Some(json!({"room": "lobby", "limit": 2, "after": "BOB"})),
        )
        .await;
    assert_eq!(second["members"], json!(["carol", "dave"]));
    assert_eq!(second["next"], json!("dave"));
    let last = web
        .ok(
            "members",
            Some(json!({"room": "lobby", "limit": 2, "after": "dave"})),
        )
        .await;
    assert_eq!(
        last,
        json!({"room": "lobby", "count": 5, "members": ["erin"]})
    );
    for bad in [
        json!({"limit": 0}),
        json!({"limit": "2"}),
        json!({"after": 3}),
    ] {
        assert_eq!(web.error_code("members", Some(bad)).await, "bad_request");
    }
    // A line client: `/who` from the first, `/who AFTER` after AFTER.
    let alice = &mut clients[1];
    alice.send("/who").await;
    assert_eq!(
        alice.line_starting("* lobby (").await,
        "* lobby (5 members): alice, bob, carol, dave, erin"
    );
    alice.send("/who carol").await;
    alice
        .expect("* lobby (5 members, last 2): dave, erin")
        .await;
}

/// Reads `client` until the line `go`; counts it in `arrived`.
fn read_until_go(mut client: Client, arrived: Arc<AtomicUsize>, go: String) {
    tokio::spawn(async move {
        while let Some(line) = client.try_line(WAIT * 6).await {
            if line == go {
                arrived.fetch_add(1, Ordering::Relaxed);
                // Connected until the test ends.
                tokio::time::sleep(WAIT * 6).await;
                return;
            }
        }
    });
}

#[tokio::test]
async fn a_storm_of_joins_into_one_room_sheds_nobody() {
    const LINE_CLIENTS: usize = 1500;
    const SOCKETS: usize = 300;
    // A shared bound small enough that a join announced to every member
    // (quadratic: 3 million lines for 1800 joins) would pass it.
    let server = TestServer::start(hubbub::config::Config {
        outbound_total_limit: 8 * 1024 * 1024,
        presence_interval: Duration::from_millis(200),
        max_connections_per_ip: 0,
        ..config()
    })
    .await;
    let mut speaker = server.client().await;
    speaker.nick("speaker").await;
    let go = "speaker: go".to_string();
    let arrived = Arc::new(AtomicUsize::new(0));
    // Everyone connects at once, as after a restart.
    let connects = (0..LINE_CLIENTS).map(|_| {
        let (addr, arrived, go) = (server.addr, arrived.clone(), go.clone());
        tokio::spawn(async move { read_until_go(Client::connect(addr).await, arrived, go) })
    });
    let sockets = (0..SOCKETS).map(|_| {
        let (http, arrived) = (server.http, arrived.clone());
        tokio::spawn(async move {
            let mut socket = SioClient::connect(http).await;
            tokio::spawn(async move {
                loop {
                    let message = socket.event_skipping("message").await;
                    if message["text"] == json!("go") {
                        arrived.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(WAIT * 6).await;
                        return;
                    }
                }
            });
        })
    });
    let tasks: Vec<_> = connects.chain(sockets).collect();
    for task in tasks {
        task.await.expect("connected");
    }
    // Everyone is in; the speaker saw the joins while the room had up to
    // the threshold (100 sessions), then summaries, not 1800 joins.
    let mut one_by_one = 0;
    loop {
        let line = speaker.line().await;
        if summary(&line).is_some() {
            break;
        }
        assert!(line.ends_with(" has joined us"), "{line:?}");
        one_by_one += 1;
    }
    assert!(one_by_one <= 100, "{one_by_one} joins announced one by one");
    // A listing is at most a second old: then it counts everyone.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    // A line client past the first page is told how to get the next.
    speaker.send("/who").await;
    let who = speaker
        .line_starting("* lobby (1801 members, 200 listed): ")
        .await;
    let next = who
        .rsplit_once(" (more: /who ")
        .and_then(|(_, next)| next.strip_suffix(')'))
        .unwrap_or_else(|| panic!("a next page, got {who:?}"))
        .to_string();
    speaker.send(&format!("/who {next}")).await;
    speaker
        .line_starting("* lobby (1801 members, 200 listed): ")
        .await;
    speaker.send("go").await;
    let everyone = LINE_CLIENTS + SOCKETS;
    let deadline = tokio::time::Instant::now() + WAIT * 3;
    while arrived.load(Ordering::Relaxed) < everyone && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        server.hub.stats().slow_consumers.load(Ordering::Relaxed),
        0,
        "nobody shed"
    );
    assert_eq!(
        arrived.load(Ordering::Relaxed),
        everyone,
        "the message after the storm reached every client"
    );
}
