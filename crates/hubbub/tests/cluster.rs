//! Several nodes, one chat: hubbub processes sharing one PostgreSQL schema
//! and one Redis (a fresh key prefix per test), with TCP clients on one
//! node and Socket.IO clients on the others; then the faults: a node
//! killed with SIGKILL, and Redis cut off and restored through a proxy.

mod common;

use std::time::Duration;

use common::cluster::{socket, tcp, tcp_skip_to, tcp_skip_until, Cluster, LEASE_SECS, REDIS};
use common::proxy::Proxy;
use common::sio::SioClient;
use common::Client;
use serde_json::{json, Value};

/// Waits until `client` hears that `nick` is in the room: a socket joins
/// as a guest and is renamed, which another node may see as one change.
async fn tcp_sees_arrival(client: &mut Client, nick: &str) {
    let joined = format!("{nick} has joined us");
    let renamed = format!(" is now known as {nick}");
    tcp_skip_until(client, |line| line == joined || line.ends_with(&renamed)).await;
}

/// The next `message` event of `web` (skipping presence events).
async fn message(web: &mut SioClient) -> Value {
    web.event_skipping("message").await
}

#[tokio::test]
async fn three_nodes_act_as_one_chat() {
    let cluster = Cluster::new().await;
    let n1 = cluster.node(REDIS, "n1").await;
    let n2 = cluster.node(REDIS, "n2").await;
    let n3 = cluster.node(REDIS, "n3").await;

    let mut ann = tcp(&n1, "ann").await;
    let mut bob = socket(&n2, "bob").await;
    tcp_sees_arrival(&mut ann, "bob").await;
    let mut cat = socket(&n3, "cat").await;
    tcp_sees_arrival(&mut ann, "cat").await;

    // A line from the TCP user reaches both sockets, with one id.
    ann.send("hello from tcp").await;
    ann.expect("ann: hello from tcp").await;
    let at_bob = message(&mut bob).await;
    let at_cat = message(&mut cat).await;
    assert_eq!(at_bob["text"], "hello from tcp");
    assert_eq!(at_bob, at_cat);

    // A socket's chat reaches the TCP user and the other socket.
    bob.emit("chat", json!({"message": "hi from n2"})).await;
    tcp_skip_to(&mut ann, "bob: hi from n2").await;
    let at_cat = message(&mut cat).await;
    assert_eq!(at_cat["from"], "bob");
    assert_eq!(message(&mut bob).await, at_cat, "the sender's own copy");
    assert_eq!(
        at_cat["id"].as_u64(),
        Some(at_bob["id"].as_u64().unwrap() + 1)
    );

    // All three talk at once: everyone sees every message once, in the
    // same order, with consecutive ids.
    const EACH: usize = 30;
    let first_id = at_cat["id"].as_u64().unwrap() + 1;
    for i in 0..EACH {
        ann.send(&format!("a{i}")).await;
        bob.emit("chat", json!({"message": format!("b{i}")})).await;
        cat.emit("chat", json!({"message": format!("c{i}")})).await;
    }
    let mut seen_by_bob = Vec::new();
    let mut seen_by_cat = Vec::new();
    for _ in 0..3 * EACH {
        let m = message(&mut bob).await;
        seen_by_bob.push((
            m["id"].as_u64().unwrap(),
            m["from"].clone(),
            m["text"].clone(),
        ));
        let m = message(&mut cat).await;
        seen_by_cat.push((
            m["id"].as_u64().unwrap(),
            m["from"].clone(),
            m["text"].clone(),
        ));
    }
    assert_eq!(seen_by_bob, seen_by_cat, "one order on every node");
    let ids: Vec<u64> = seen_by_bob.iter().map(|m| m.0).collect();
    let expected: Vec<u64> = (first_id..first_id + 3 * EACH as u64).collect();
    assert_eq!(ids, expected, "ids unique, gap-free, in order");
    let mut seen_by_ann = Vec::new();
    while seen_by_ann.len() < 3 * EACH {
        let line = ann.line().await;
        if let Some((from, text)) = line.split_once(": ") {
            seen_by_ann.push((from.to_string(), text.to_string()));
        }
    }
    let as_lines: Vec<(String, String)> = seen_by_bob
        .iter()
        .map(|(_, f, t)| {
            (
                f.as_str().unwrap().to_string(),
                t.as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(seen_by_ann, as_lines, "the TCP node sees the same order");

    // Typing shows on the other nodes' sockets (not to line clients).
    bob.ok("typing", Some(json!({"typing": true}))).await;
    assert_eq!(
        cat.event_skipping("typing").await,
        json!({"room": "lobby", "nick": "bob", "typing": true})
    );

    // /who lists the whole cluster.
    ann.send("/who").await;
    ann.expect("* lobby (3 members): ann, bob, cat").await;
    let members = bob.ok("members", Some(json!({"room": "lobby"}))).await;
    assert_eq!(
        members["members"],
        json!(["ann", "bob", "cat"]),
        "{members}"
    );

    // Private messages cross nodes both ways.
    ann.send("/msg cat psst").await;
    ann.expect("-> *cat* psst").await;
    let private = cat.event_skipping("private").await;
    assert_eq!(private["from"], "ann");
    assert_eq!(private["text"], "psst");
    cat.ok("private", Some(json!({"to": "ANN", "text": "back at you"})))
        .await;
    tcp_skip_to(&mut ann, "*cat* back at you").await;
    assert_eq!(
        bob.error_code("private", Some(json!({"to": "nobody", "text": "x"})))
            .await,
        "no_such_nick"
    );

    // Nicknames are unique cluster-wide, case-insensitively.
    assert_eq!(
        cat.error_code("set nickname", Some(json!("ANN"))).await,
        "nick_in_use"
    );
    ann.send("/nick Bob").await;
    let refused = ann.line().await;
    assert!(
        refused.starts_with("! ") && refused.contains("in use"),
        "{refused}"
    );
    // A freed nickname can be taken on another node.
    bob.ok("set nickname", Some(json!("robert"))).await;
    tcp_skip_to(&mut ann, "bob is now known as robert").await;
    ann.send("/nick bob").await;
    ann.expect("ann is now known as bob").await;

    // A socket that drops and resumes on another node gets exactly what
    // it missed, with the same ids, then live messages without a gap.
    let last_seen = seen_by_cat.last().unwrap().0;
    drop(cat);
    for i in 1..=3 {
        ann.send(&format!("missed {i}")).await;
    }
    let mut back = socket(&n2, "cat").await;
    back.event_skipping("history").await; // the lobby's, on connect
                                          // Already in the lobby (the default room): `since` still resumes it.
    let joined = back
        .ok("join", Some(json!({"room": "lobby", "since": last_seen})))
        .await;
    // What n2 had when the socket came back is in the history (none, if
    // nothing had arrived yet: the ack's last_id says so); anything still
    // on its way arrives live after it.
    let mut got = if joined["last_id"].as_u64() > Some(last_seen) {
        common::sio::id_texts(&back.event_skipping("history").await)
    } else {
        Vec::new()
    };
    while got.last().is_none_or(|(_, text)| text != "missed 3") {
        got.push(common::sio::id_text(&message(&mut back).await));
    }
    let expected: Vec<(u64, String)> = (1..=3)
        .map(|i| (last_seen + i, format!("missed {i}")))
        .collect();
    assert_eq!(got, expected);
    ann.send("live again").await;
    let live = message(&mut back).await;
    assert_eq!(live["id"].as_u64(), Some(last_seen + 4));
    let mut cat = back;

    // Rooms are shared: a room opened on n3 is listed on n1.
    cat.ok("join", Some(json!({"room": "dev"}))).await;
    let mut rooms = String::new();
    for _ in 0..50 {
        ann.send("/rooms").await;
        rooms = tcp_skip_until(&mut ann, |l| {
            l.contains(" rooms: ") || l.contains(" room: ")
        })
        .await;
        if rooms == "* 2 rooms: dev (1), lobby (3)" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(rooms, "* 2 rooms: dev (1), lobby (3)");
    ann.send("/join dev").await;
    tcp_skip_to(&mut ann, "* you are now in dev (2 members: bob, cat)").await;
    let joined = cat.event_skipping("joined").await;
    assert_eq!(joined, json!({"room": "dev", "nick": "bob"}));
}

#[tokio::test]
async fn a_burst_from_every_node_reaches_everyone_once_in_one_order() {
    // Concurrent traffic from every node, and node 1 behind a slow link to
    // Redis (0.4 s each way, longer than a gap may stay open), so messages
    // of the one room reach every node out of order and gaps are read from
    // the store.
    const CLIENTS_PER_NODE: usize = 10;
    const SENDERS_PER_NODE: usize = 2;
    const MESSAGES: usize = 150;
    let cluster = Cluster::new().await;
    let slow = Proxy::start_delayed(
        "127.0.0.1:6379".parse().unwrap(),
        Duration::from_millis(400),
    )
    .await;
    let nodes = vec![
        cluster.node(&format!("redis://{}", slow.addr), "n1").await,
        cluster.node(REDIS, "n2").await,
        cluster.node(REDIS, "n3").await,
    ];
    let mut clients = Vec::new();
    for (n, node) in nodes.iter().enumerate() {
        for c in 0..CLIENTS_PER_NODE {
            clients.push(tcp(node, &format!("u{n}x{c}")).await);
        }
    }
    // Let every node hear of every client before the burst.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let total = nodes.len() * SENDERS_PER_NODE * MESSAGES;
    let mut readers = Vec::new();
    for (i, mut client) in clients.into_iter().enumerate() {
        let sender = i % CLIENTS_PER_NODE < SENDERS_PER_NODE;
        readers.push(tokio::spawn(async move {
            if sender {
                let lines: String = (0..MESSAGES)
                    .map(|m| format!("{}-{m}\n", client.name))
                    .collect();
                client.send_bytes(lines.as_bytes()).await;
            }
            let mut seen = Vec::with_capacity(total);
            while seen.len() < total {
                let line = client.line().await;
                if let Some((from, text)) = line.split_once(": ") {
                    if text.starts_with(from) {
                        seen.push(line);
                    }
                }
            }
            seen
        }));
    }
    let mut orders = Vec::new();
    for reader in readers {
        orders.push(
            tokio::time::timeout(Duration::from_secs(60), reader)
                .await
                .unwrap()
                .unwrap(),
        );
    }
    let first = &orders[0];
    let distinct: std::collections::HashSet<&String> = first.iter().collect();
    assert_eq!(distinct.len(), total, "every message once");
    for (i, order) in orders.iter().enumerate() {
        assert!(order == first, "client {i} saw another order");
    }
    // What the nodes did to get there (logged when they stop).
    let mut repairs = Vec::new();
    for mut node in nodes {
        assert!(node.terminate().await.success());
        node.wait_for_log("hubbub stopped").await;
        repairs.push(node.log_field("hubbub stopped", "gap_repairs"));
        assert_eq!(node.log_field("hubbub stopped", "skipped_ids"), 0);
    }
    assert!(
        repairs.iter().sum::<u64>() > 0,
        "no gap was repaired: {repairs:?}"
    );
}

#[tokio::test]
async fn a_killed_node_leaves_and_frees_its_nicknames() {
    let cluster = Cluster::new().await;
    let n1 = cluster.node(REDIS, "n1").await;
    let mut n2 = cluster.node(REDIS, "n2").await;

    let mut ann = tcp(&n1, "ann").await;
    let mut web = socket(&n2, "dan").await;
    tcp_sees_arrival(&mut ann, "dan").await;
    web.emit("chat", json!({"message": "about to vanish"}))
        .await;
    tcp_skip_to(&mut ann, "dan: about to vanish").await;

    // A node started late sees who is there already.
    let n3 = cluster.node(REDIS, "n3").await;
    let mut eve = tcp(&n3, "eve").await;
    eve.send("/who").await;
    tcp_skip_to(&mut eve, "* lobby (3 members): ann, dan, eve").await;
    tcp_sees_arrival(&mut ann, "eve").await;

    n2.kill_9().await;
    let killed = std::time::Instant::now();
    tcp_skip_to(&mut ann, "dan has left (server went away)").await;
    tcp_skip_to(&mut eve, "dan has left (server went away)").await;
    let noticed = killed.elapsed();
    assert!(
        noticed < Duration::from_secs(LEASE_SECS * 3),
        "noticed after {noticed:?}"
    );
    drop(web);
    // Announced once, by each node to its own users.
    ann.expect_silence(Duration::from_millis(1500)).await;

    // Its nickname is free for anyone, on any node.
    eve.send("/nick dan").await;
    eve.expect("eve is now known as dan").await;
    ann.expect("eve is now known as dan").await;
    ann.send("/who").await;
    ann.expect("* lobby (2 members): ann, dan").await;
}

#[tokio::test]
async fn a_node_that_stops_says_goodbye_at_once() {
    let cluster = Cluster::new().await;
    let n1 = cluster.node(REDIS, "n1").await;
    let mut n2 = cluster.node(REDIS, "n2").await;
    let mut ann = tcp(&n1, "ann").await;
    let _dan = tcp(&n2, "dan").await;
    let _eve = tcp(&n2, "eve").await;
    tcp_sees_arrival(&mut ann, "eve").await;

    let stopping = std::time::Instant::now();
    assert!(n2.terminate().await.success());
    // Each user of the stopped node leaves once, well within a lease.
    let mut left = vec![ann.line().await, ann.line().await];
    left.sort();
    assert_eq!(
        left,
        [
            "dan has left (server went away)",
            "eve has left (server went away)"
        ]
    );
    assert!(stopping.elapsed() < Duration::from_secs(LEASE_SECS));
    ann.expect_silence(Duration::from_millis(500)).await;
    // Their nicknames are free at once.
    ann.send("/nick dan").await;
    ann.expect("ann is now known as dan").await;
}

#[tokio::test]
async fn nodes_ride_out_a_redis_outage() {
    let cluster = Cluster::new().await;
    let proxy = Proxy::start("127.0.0.1:6379".parse().unwrap()).await;
    let redis = format!("redis://{}", proxy.addr);
    let n1 = cluster.node(&redis, "n1").await;
    let n2 = cluster.node(&redis, "n2").await;

    let mut ann = tcp(&n1, "ann").await;
    let mut amy = tcp(&n1, "amy").await;
    tcp_sees_arrival(&mut ann, "amy").await;
    let mut bob = socket(&n2, "bob").await;
    tcp_sees_arrival(&mut ann, "bob").await;
    ann.send("before").await;
    assert_eq!(message(&mut bob).await["text"], "before");

    proxy.cut();
    n1.wait_for_log("cluster link to Redis failed").await;
    n2.wait_for_log("cluster link to Redis failed").await;

    // Local users keep chatting; the message is committed, not relayed yet.
    ann.send("during 1").await;
    tcp_skip_to(&mut amy, "ann: during 1").await;
    ann.send("during 2").await;
    tcp_skip_to(&mut amy, "ann: during 2").await;
    // Private messages to the unreachable node fail clearly.
    ann.send("/msg bob are you there").await;
    tcp_skip_to(&mut ann, "ann: during 2").await;
    let refused = ann.line().await;
    assert!(
        refused.starts_with("! ") && refused.contains("cannot be reached"),
        "{refused}"
    );
    // A room opened meanwhile is unknown to n2.
    let mut ava = tcp(&n1, "ava").await;
    ava.send("/join news").await;
    ava.send("scoop").await;
    tcp_skip_to(&mut ava, "ava: scoop").await;
    // Nobody is reaped during the outage or right after it.
    let lease = Duration::from_secs(LEASE_SECS);
    tokio::time::sleep(lease * 2).await;

    proxy.restore();
    // Bob gets what he missed, in order, then live traffic again.
    assert_eq!(message(&mut bob).await["text"], "during 1");
    assert_eq!(message(&mut bob).await["text"], "during 2");
    n1.wait_for_log("joined the cluster").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    ann.send("after").await;
    assert_eq!(message(&mut bob).await["text"], "after");
    bob.emit("chat", json!({"message": "back"})).await;
    tcp_skip_to(&mut amy, "bob: back").await;
    ann.send("/msg bob welcome back").await;
    assert_eq!(bob.event_skipping("private").await["text"], "welcome back");
    // Presence survived: no one was announced as gone.
    tokio::time::sleep(lease * 2).await;
    tcp_skip_to(&mut ann, "-> *bob* welcome back").await;
    ann.send("/who").await;
    tcp_skip_to(&mut ann, "* lobby (3 members): amy, ann, bob").await;
    let mut heard = Vec::new();
    while let Ok(line) = tokio::time::timeout(Duration::from_millis(500), amy.line()).await {
        heard.push(line);
    }
    assert!(
        !heard.iter().any(|l| l.starts_with("bob has left")),
        "{heard:?}"
    );

    // n2 learnt of the room opened during the outage: joining it shows its
    // history, and live messages go on from there.
    let joined = bob.ok("join", Some(json!({"room": "news"}))).await;
    assert_eq!(joined["last_id"], 1, "{joined}");
    let history = bob.event_skipping("history").await;
    assert_eq!(history["messages"][0]["text"], "scoop", "{history}");
    ava.send("fresh").await;
    let next = message(&mut bob).await;
    assert_eq!(
        (next["room"].as_str(), next["text"].as_str()),
        (Some("news"), Some("fresh"))
    );
}

#[tokio::test]
async fn a_nickname_taken_on_both_sides_of_a_split_is_made_unique() {
    let cluster = Cluster::new().await;
    let proxy = Proxy::start("127.0.0.1:6379".parse().unwrap()).await;
    let redis = format!("redis://{}", proxy.addr);
    let n1 = cluster.node(&redis, "n1").await;
    let n2 = cluster.node(&redis, "n2").await;

    proxy.cut();
    n1.wait_for_log("cluster link to Redis failed").await;
    n2.wait_for_log("cluster link to Redis failed").await;
    // Neither node can ask the other: both accept the name.
    let mut zed1 = tcp(&n1, "zed").await;
    let mut zed2 = socket(&n2, "Zed").await;
    proxy.restore();

    // Whichever node registers second gives way: its user becomes zed-2
    // (or Zed-2), is told so, and everyone sees the rename.
    let renamed = tokio::time::timeout(common::WAIT, async {
        tokio::select! {
            line = tcp_skip_until(&mut zed1, |l| l.starts_with("* zed was also taken")) => {
                (1, line)
            }
            info = zed2.event_skipping("info") => (2, info["text"].to_string()),
        }
    })
    .await
    .expect("one of them is renamed");
    let (loser, text) = renamed;
    let (kept, new) = if loser == 1 {
        ("Zed", "zed-2")
    } else {
        ("zed", "Zed-2")
    };
    assert!(text.contains(&format!("you are now {new}")), "{text}");
    let mut ann = tcp(&n1, "ann").await;
    let mut who = String::new();
    for _ in 0..50 {
        ann.send("/who").await;
        who = tcp_skip_until(&mut ann, |l| l.starts_with("* lobby (")).await;
        if who.contains(new) && who.contains(&format!(" {kept},")) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(who, format!("* lobby (3 members): ann, {kept}, {new}"));
}

#[tokio::test]
async fn nodes_rebuild_what_a_restarted_redis_forgot() {
    // Redis here keeps nothing on disk: a restart loses every key. Deleting
    // this cluster's keys under the nodes' feet is the same loss.
    let cluster = Cluster::new().await;
    let n1 = cluster.node(REDIS, "n1").await;
    let n2 = cluster.node(REDIS, "n2").await;
    let mut ann = tcp(&n1, "ann").await;
    let mut bob = socket(&n2, "bob").await;
    tcp_sees_arrival(&mut ann, "bob").await;

    let mut redis = redis::Client::open(REDIS)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}:*", cluster.prefix))
        .query_async(&mut redis)
        .await
        .unwrap();
    assert!(keys.len() >= 5, "{keys:?}");
    let _: () = redis::cmd("DEL")
        .arg(&keys)
        .query_async(&mut redis)
        .await
        .unwrap();

    // Within a heartbeat each node notices and registers again.
    n1.wait_for_log("registering again").await;
    n2.wait_for_log("registering again").await;
    tokio::time::sleep(Duration::from_secs(LEASE_SECS * 2)).await;
    let claimed: Vec<String> = redis::cmd("HKEYS")
        .arg(format!("{}:nicks", cluster.prefix))
        .query_async(&mut redis)
        .await
        .unwrap();
    let mut claimed = claimed;
    claimed.sort();
    assert_eq!(claimed, ["ann", "bob"]);
    // Nobody was announced as gone, chat and nicknames work as before.
    ann.send("/who").await;
    ann.expect("* lobby (2 members): ann, bob").await;
    bob.emit("chat", json!({"message": "still here"})).await;
    ann.expect("bob: still here").await;
    assert_eq!(
        bob.error_code("set nickname", Some(json!("Ann"))).await,
        "nick_in_use"
    );
}

#[tokio::test]
async fn one_client_address_on_two_nodes_gets_two_names() {
    // A client keeps its source port for connections to different servers
    // (so does a load balancer): the Go-chat default name `IP:PORT` then
    // exists on two nodes at once.
    let cluster = Cluster::new().await;
    let n1 = cluster.node(REDIS, "n1").await;
    let n2 = cluster.node(REDIS, "n2").await;
    let bound = |port: u16| {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_reuseaddr(true).unwrap();
        socket.set_reuseport(true).unwrap();
        socket
            .bind(std::net::SocketAddr::from(([127, 0, 0, 1], port)))
            .unwrap();
        socket
    };
    let first = bound(0);
    let port = first.local_addr().unwrap().port();
    let second = bound(port);
    let one = Client::greeted(first.connect(n1.tcp).await.unwrap()).await;
    assert_eq!(one.name, format!("127.0.0.1:{port}"));
    // Let n2 hear of it, then the same address arrives there.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let two = Client::greeted(second.connect(n2.tcp).await.unwrap()).await;
    assert_eq!(two.name, format!("127.0.0.1:{port}-2"));
}

#[tokio::test]
async fn a_cluster_refuses_a_store_of_its_own() {
    let stderr = common::start_fails(&["--redis-url", REDIS]).await;
    assert!(stderr.contains("--store postgres"), "{stderr}");
    let stderr = common::start_fails(&["--redis-url", REDIS, "--store", "memory"]).await;
    assert!(stderr.contains("--store postgres"), "{stderr}");
}

#[tokio::test]
async fn presence_is_ordered_with_messages_on_every_node() {
    let cluster = Cluster::new().await;
    let n1 = cluster.node(REDIS, "n1").await;
    let n2 = cluster.node(REDIS, "n2").await;
    let mut watcher = tcp(&n2, "watcher").await;
    watcher.send("/join games").await;
    tcp_skip_until(&mut watcher, |line| {
        line.starts_with("* you are now in games")
    })
    .await;
    for run in 0..20 {
        // A script on the other node: join, speak and move on, at once.
        let bot = format!("bot{run}");
        let mut script = Client::connect(n1.tcp).await;
        script
            .send_bytes(format!("/nick {bot}\n/join games\nhello {run}\n/join lobby\n").as_bytes())
            .await;
        let left = format!("{bot} has left");
        let mut seen = Vec::new();
        loop {
            let line = watcher.line().await;
            let done = line == left;
            seen.push(line);
            if done {
                break;
            }
        }
        assert_eq!(
            seen,
            [
                format!("{bot} has joined us"),
                format!("{bot}: hello {run}"),
                left.clone(),
            ],
            "run {run}"
        );
    }
    // An operator sees how late other nodes' messages arrive.
    let mut admin = tokio::net::TcpStream::connect(n2.admin).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    admin
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut metrics = String::new();
    admin.read_to_string(&mut metrics).await.unwrap();
    let lagged: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("hubbub_cluster_lag_seconds_count "))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    assert!(lagged >= 20.0, "{metrics}");
}

#[tokio::test]
async fn an_account_registered_on_one_node_is_owned_on_every_node() {
    let cluster = Cluster::new().await;
    let n1 = cluster.node(REDIS, "n1").await;
    let n2 = cluster.node(REDIS, "n2").await;
    let mut ann = tcp(&n1, "ann").await;
    ann.send("/register long enough").await;
    tcp_skip_to(&mut ann, "* you registered ann; you are logged in").await;
    ann.send("/quit").await;
    tcp_skip_to(&mut ann, "* bye").await;
    // On the other node the name is hers: refused to others, hers by login.
    let mut other = Client::connect(n2.tcp).await;
    other.send("/nick ann").await;
    tcp_skip_to(
        &mut other,
        "! the nickname ann is registered; log in to use it (/login ann PASSWORD)",
    )
    .await;
    other.send("/login ann long enough").await;
    tcp_skip_to(&mut other, "* you are logged in as ann").await;
}

#[tokio::test]
async fn one_account_on_two_nodes_is_one_member_and_gets_everything() {
    let cluster = Cluster::new().await;
    let n1 = cluster.node(REDIS, "n1").await;
    let n2 = cluster.node(REDIS, "n2").await;
    let mut bob = tcp(&n1, "bob").await;
    let mut desk = tcp(&n1, "ann").await;
    desk.send("/register long enough").await;
    tcp_skip_to(&mut desk, "* you registered ann; you are logged in").await;

    // ann's second device, on the other node, logging in as it connects.
    let mut phone =
        SioClient::connect_auth(n2.http, json!({"nick": "ann", "password": "long enough"})).await;
    assert_eq!(phone.nick, "ann");
    // One member on both nodes' lists, logged in.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        bob.send("/who").await;
        let who = tcp_skip_until(&mut bob, |l| l.starts_with("* lobby (")).await;
        if who == "* lobby (2 members): ann (logged in), bob" {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{who}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let members = phone.ok("members", None).await;
    assert_eq!(members["members"], json!(["ann", "bob"]));
    assert_eq!(members["logged_in"], json!(["ann"]));
    // The list above shows ann once whether or not n1 knows of the phone
    // yet; her second device is known when whois counts it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        bob.send("/whois ann").await;
        let line = tcp_skip_until(&mut bob, |l| l.starts_with("* ann: ")).await;
        if line.ends_with("(on 2 devices)") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{line}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // A private message to ann reaches both devices, on both nodes; what
    // the phone sends privately shows on the desk.
    bob.send("/msg ann psst").await;
    tcp_skip_to(&mut desk, "*bob* psst").await;
    let private = phone.event_skipping("private").await;
    assert_eq!(
        (private["from"].as_str(), private["text"].as_str()),
        (Some("bob"), Some("psst"))
    );
    phone
        .ok(
            "private",
            Some(json!({"to": "bob", "text": "from the phone"})),
        )
        .await;
    tcp_skip_to(&mut bob, "*ann* from the phone").await;
    tcp_skip_to(&mut desk, "-> *bob* from the phone").await;
    desk.send("/msg bob from the desk").await;
    let copy = phone.event_skipping("private").await;
    assert_eq!(
        (
            copy["from"].as_str(),
            copy["to"].as_str(),
            copy["text"].as_str()
        ),
        (Some("ann"), Some("bob"), Some("from the desk"))
    );
    // A room message reaches both.
    bob.send("hello ann").await;
    tcp_skip_to(&mut desk, "bob: hello ann").await;
    assert_eq!(message(&mut phone).await["text"], "hello ann");

    // A guest on either node is refused the name.
    let mut guest = SioClient::connect(n2.http).await;
    assert_eq!(
        guest.error_code("set nickname", Some(json!("ann"))).await,
        "nick_registered"
    );

    // The room hears ann leave only when her last session goes: once the
    // phone is gone (whois counts one device), bob has not heard her leave.
    drop(phone);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        bob.send("/whois ann").await;
        let line = tcp_skip_until(&mut bob, |l| {
            l.starts_with("* ann: ") || l.starts_with("ann ")
        })
        .await;
        assert_ne!(line, "ann has left", "the phone's leave was announced");
        if line == "* ann: registered; here, logged in" {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{line}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    desk.send("/quit").await;
    let left = tcp_skip_until(&mut bob, |l| l.starts_with("ann ")).await;
    assert_eq!(left, "ann has left");
}

#[tokio::test]
async fn a_ban_on_one_node_removes_and_keeps_out_a_member_of_another() {
    let cluster = Cluster::new().await;
    let n1 = cluster.node(REDIS, "n1").await;
    let n2 = cluster.node(REDIS, "n2").await;
    let mut alice = tcp(&n1, "alice").await;
    alice.send("/register long enough").await;
    tcp_skip_to(&mut alice, "* you registered alice; you are logged in").await;
    alice.send("/join games").await;
    tcp_skip_until(&mut alice, |l| l.starts_with("* you are now in games")).await;
    let mut mallory = tcp(&n2, "mallory").await;
    mallory.send("/join games").await;
    tcp_skip_until(&mut mallory, |l| l.starts_with("* you are now in games")).await;
    tcp_skip_to(&mut alice, "mallory has joined us").await;
    let mut web = socket(&n2, "watcher").await;
    web.ok("join", Some(json!({"room": "games"}))).await;

    // The topic set on n1 reaches n2's members.
    alice.send("/topic no spam").await;
    let topic = web.event_skipping("topic").await;
    assert_eq!(
        (topic["topic"].as_str(), topic["by"].as_str()),
        (Some("no spam"), Some("alice"))
    );

    // A kick on n1 removes mallory on n2.
    alice.send("/kick mallory first warning").await;
    tcp_skip_to(
        &mut mallory,
        "mallory was kicked from games by alice (first warning)",
    )
    .await;
    tcp_skip_until(&mut mallory, |l| l.starts_with("* you are now in lobby")).await;
    mallory.send("/join games").await;
    tcp_skip_until(&mut mallory, |l| l.starts_with("* you are now in games")).await;

    // A ban on n1 removes mallory on n2 at once, and keeps her out there.
    alice.send("/ban mallory spam").await;
    tcp_skip_to(
        &mut mallory,
        "mallory was banned from games by alice (spam)",
    )
    .await;
    tcp_skip_until(&mut mallory, |l| l.starts_with("* you are now in lobby")).await;
    mallory.send("/join games").await;
    tcp_skip_to(&mut mallory, "! you are banned from games: spam").await;
    let kicked = web.event_skipping("kicked").await;
    assert_eq!(kicked["nick"], "mallory");
    // The room's member list on n1 no longer has her.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        alice.send("/who").await;
        let who = tcp_skip_until(&mut alice, |l| l.starts_with("* games (")).await;
        if !who.contains("mallory") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{who}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
