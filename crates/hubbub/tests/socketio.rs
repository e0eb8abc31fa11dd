//! Socket.IO against a real server, side by side with line clients: the
//! seed's events, the full request API, cross-transport delivery, and errors.

mod common;

use std::time::Duration;

use common::TestServer;
use serde_json::json;

const QUIET: Duration = Duration::from_millis(300);

#[tokio::test]
async fn seed_events_and_a_tcp_user_in_the_same_room() {
    let server = TestServer::default().await;
    let mut tcp = server.client().await;
    tcp.nick("tcpuser").await;
    let mut web = server.socket().await;
    assert!(web.nick.starts_with("guest-"), "{}", web.nick);
    tcp.expect(&format!("{} has joined us", web.nick)).await;

    // set nickname -> nickname ready (and the ack), the TCP user sees the rename.
    web.emit("set nickname", json!("webby")).await;
    // Like the seed: the event carries no argument at all.
    assert_eq!(web.next_raw_event().await, r#"["nickname ready"]"#);
    let renamed = web.event("renamed").await;
    assert_eq!(
        renamed,
        json!({"room": "lobby", "old": web.nick, "new": "webby"})
    );
    tcp.expect(&format!("{} is now known as webby", web.nick))
        .await;

    // chat -> notice {message: "nick:text"} to everyone, sender included.
    web.emit("chat", json!({"message": "hi from the web"}))
        .await;
    let message = web.event("message").await;
    assert_eq!(message["from"], "webby");
    assert_eq!(message["text"], "hi from the web");
    assert_eq!(message["room"], "lobby");
    assert_eq!(
        web.event("notice").await,
        json!({"message": "webby:hi from the web"})
    );
    tcp.expect("webby: hi from the web").await;

    // A TCP line reaches the socket as message and notice.
    tcp.send("hello browser").await;
    tcp.expect("tcpuser: hello browser").await;
    let message = web.event("message").await;
    assert_eq!(message["from"], "tcpuser");
    assert_eq!(message["text"], "hello browser");
    assert!(message["id"].as_u64().unwrap() > 1);
    assert!(message["ts"].as_u64().unwrap() > 1_600_000_000_000);
    assert_eq!(
        web.event("notice").await,
        json!({"message": "tcpuser:hello browser"})
    );

    // Taken (case-insensitively) and invalid names get an error event.
    web.emit("set nickname", json!("TCPUSER")).await;
    let error = web.event("error").await;
    assert_eq!(error["code"], "nick_in_use");
    web.emit("set nickname", json!("no spaces")).await;
    assert_eq!(web.event("error").await["code"], "invalid_nick");
    tcp.expect_silence(QUIET).await;

    // The socket leaving is announced to the TCP user.
    drop(web);
    tcp.expect("webby has left").await;
}

#[tokio::test]
async fn requests_answer_with_acks() {
    let server = TestServer::default().await;
    let mut a = server.socket().await;
    let mut b = server.socket().await;
    a.event("joined").await;

    assert_eq!(
        a.ok("set nickname", Some(json!("alice"))).await,
        json!({"nick": "alice"})
    );
    a.event("nickname ready").await;
    a.event("renamed").await;
    b.event("renamed").await;
    assert_eq!(
        a.error_code("set nickname", Some(json!(42))).await,
        "bad_request"
    );

    // join: ack with members; the room sees joined.
    let joined = a.ok("join", Some(json!({"room": "#Dev"}))).await;
    assert_eq!(
        joined,
        json!({"room": "Dev", "count": 1, "members": ["alice"], "last_id": 0})
    );
    let joined = b.ok("join", Some(json!("dev"))).await;
    assert_eq!(joined["members"], json!(["alice", b.nick]));
    assert_eq!(
        a.event("joined").await,
        json!({"room": "Dev", "nick": b.nick})
    );

    // rooms and members.
    let rooms = a.ok("rooms", None).await;
    assert_eq!(
        rooms,
        json!([{"name": "Dev", "members": 2}, {"name": "lobby", "members": 2}])
    );
    let members = a.ok("members", Some(json!({"room": "lobby"}))).await;
    assert_eq!(members["members"], json!(["alice", b.nick]));
    let current = a.ok("members", None).await;
    assert_eq!(current["room"], "Dev");
    assert_eq!(
        a.error_code("members", Some(json!("nowhere"))).await,
        "no_such_room"
    );

    // message to a room: the ack carries id and ts; everyone gets message.
    let posted = a
        .ok("message", Some(json!({"room": "dev", "text": "in dev"})))
        .await;
    assert_eq!(posted["room"], "Dev");
    let id = posted["id"].as_u64().unwrap();
    for client in [&mut a, &mut b] {
        let message = client.event("message").await;
        assert_eq!(message["id"].as_u64().unwrap(), id);
        assert_eq!(message["ts"], posted["ts"]);
        assert_eq!(message["text"], "in dev");
        client.event("notice").await;
    }
    // Ids increase within the room.
    let next = a
        .ok("message", Some(json!({"text": "again", "action": true})))
        .await;
    assert_eq!(next["id"].as_u64().unwrap(), id + 1);
    let action = b.event("message").await;
    assert_eq!(action["action"], true);
    assert_eq!(b.event("notice").await, json!({"message": "* alice again"}));
    a.event("message").await;
    a.event("notice").await;

    // leave: the others see left; then sending there is refused.
    assert_eq!(
        a.ok("leave", Some(json!("dev"))).await,
        json!({"room": "Dev"})
    );
    let left = b.event("left").await;
    assert_eq!(
        left,
        json!({"room": "Dev", "nick": "alice", "reason": null})
    );
    assert_eq!(
        a.error_code("message", Some(json!({"room": "dev", "text": "x"})))
            .await,
        "not_in_room"
    );
    assert_eq!(
        a.error_code("leave", Some(json!("dev"))).await,
        "not_in_room"
    );
    // After leaving its current room, the earlier one is current again.
    let back = a
        .ok("message", Some(json!({"text": "back in the lobby"})))
        .await;
    assert_eq!(back["room"], "lobby");
    b.event_skipping("message").await;
}

#[tokio::test]
async fn private_messages_cross_transports() {
    let server = TestServer::default().await;
    let mut tcp = server.client().await;
    tcp.nick("carol").await;
    let mut web = server.socket().await;
    tcp.line().await; // joined
    web.ok("set nickname", Some(json!("dave"))).await;
    tcp.line().await; // renamed

    let sent = web
        .ok("private", Some(json!({"to": "CAROL", "text": "psst"})))
        .await;
    assert_eq!(sent["to"], "carol");
    tcp.expect("*dave* psst").await;

    tcp.send("/msg dave hi back").await;
    tcp.expect("-> *dave* hi back").await;
    let private = web.event_skipping("private").await;
    assert_eq!(private["from"], "carol");
    assert_eq!(private["to"], "dave");
    assert_eq!(private["text"], "hi back");

    assert_eq!(
        web.error_code("private", Some(json!({"to": "nobody", "text": "x"})))
            .await,
        "no_such_nick"
    );
    assert_eq!(
        web.error_code("private", Some(json!({"to": "carol"})))
            .await,
        "bad_request"
    );
}

#[tokio::test]
async fn typing_is_relayed_to_others_and_throttled() {
    let server = TestServer::default().await;
    let mut tcp = server.client().await;
    let mut a = server.socket().await;
    let mut b = server.socket().await;
    a.event("joined").await;
    tcp.line().await;
    tcp.line().await;

    assert_eq!(
        a.ok("typing", Some(json!({"typing": true}))).await,
        json!(null)
    );
    assert_eq!(
        b.event("typing").await,
        json!({"room": "lobby", "nick": a.nick, "typing": true})
    );
    // A second start within a second is not relayed; a stop always is.
    a.ok("typing", Some(json!({"typing": true}))).await;
    a.ok("typing", Some(json!({"typing": false}))).await;
    assert_eq!(b.event("typing").await["typing"], false);
    b.expect_no_event(QUIET).await;
    // Not to the typist, and not to line clients.
    a.expect_no_event(QUIET).await;
    tcp.expect_silence(QUIET).await;
    assert_eq!(a.error_code("typing", Some(json!({}))).await, "bad_request");
    assert_eq!(
        a.error_code("typing", Some(json!({"room": "elsewhere", "typing": true})))
            .await,
        "not_in_room"
    );
}

#[tokio::test]
async fn bad_requests_get_errors_and_hurt_nobody() {
    let mut config = common::config();
    config.max_line_bytes = 100;
    let server = TestServer::start(config).await;
    let mut tcp = server.client().await;
    tcp.nick("watcher").await;
    let mut web = server.socket().await;
    tcp.line().await;

    assert_eq!(
        web.error_code("frobnicate", Some(json!(1))).await,
        "unknown_event"
    );
    assert_eq!(web.error_code("join", Some(json!(5))).await, "bad_request");
    assert_eq!(
        web.error_code("join", Some(json!("a/b"))).await,
        "invalid_room"
    );
    assert_eq!(
        web.error_code("message", Some(json!("text"))).await,
        "bad_request"
    );
    assert_eq!(
        web.error_code("message", Some(json!({"text": "   "})))
            .await,
        "empty_message"
    );
    assert_eq!(
        web.error_code("message", Some(json!({"text": "x".repeat(101)})))
            .await,
        "too_large"
    );
    // Newlines would forge lines for TCP users; escapes would drive terminals.
    assert_eq!(
        web.error_code("chat", Some(json!({"message": "hi\nwatcher: fake"})))
            .await,
        "invalid_text"
    );
    assert_eq!(
        web.error_code("message", Some(json!({"text": "\u{1b}[2J"})))
            .await,
        "invalid_text"
    );
    assert_eq!(
        web.error_code("message", Some(json!({"text": "x", "room": 3})))
            .await,
        "bad_request"
    );
    // Without an ack, the error comes as an event.
    web.emit("join", json!(null)).await;
    assert_eq!(web.event("error").await["code"], "bad_request");
    tcp.expect_silence(QUIET).await;

    // A malformed packet costs that socket its connection, nobody else anything.
    let mut other = server.socket().await;
    tcp.line().await;
    web.send_raw("42[not json").await;
    web.expect_closed().await;
    tcp.expect(&format!("{} has left", web.nick)).await;
    other
        .ok("chat", Some(json!({"message": "still fine"})))
        .await;
    tcp.expect(&format!("{}: still fine", other.nick)).await;
}

#[tokio::test]
async fn oversized_packets_are_refused() {
    let mut config = common::config();
    config.max_line_bytes = 100;
    let server = TestServer::start(config).await;
    let mut tcp = server.client().await;
    let mut web = server.socket().await;
    tcp.line().await;
    // Far past the payload limit (twice the text limit plus framing).
    let huge = format!("42{}", json!(["chat", {"message": "x".repeat(64 * 1024)}]));
    web.send_raw(&huge).await;
    web.expect_closed().await;
    tcp.expect(&format!("{} has left", web.nick)).await;
    tcp.expect_silence(QUIET).await;
}

#[tokio::test]
async fn flooding_sockets_get_errors_then_are_disconnected() {
    let mut config = common::config();
    config.flood_rate = 1.0;
    config.flood_burst = 2;
    config.flood_kick = 3;
    let server = TestServer::start(config).await;
    let mut web = server.socket().await;
    web.ok("rooms", None).await;
    web.ok("rooms", None).await;
    assert_eq!(web.error_code("rooms", None).await, "flood");
    assert_eq!(web.error_code("rooms", None).await, "flood");
    assert_eq!(web.error_code("rooms", None).await, "flood");
    web.emit("rooms", json!(null)).await;
    let closing = web.event_skipping("closing").await;
    assert_eq!(closing["reason"], "flooding: too many lines too fast");
    web.expect_closed().await;
}

#[tokio::test]
async fn a_room_has_one_order_for_every_transport() {
    let server = TestServer::default().await;
    let [mut tcp_sender, mut tcp_watcher] = common::named_clients(&server, ["ts", "tw"])
        .await
        .try_into()
        .unwrap_or_else(|_| unreachable!());
    let mut web_sender = server.socket().await;
    let mut web_watcher = server.socket().await;
    web_sender.ok("set nickname", Some(json!("ws"))).await;
    web_watcher.ok("set nickname", Some(json!("ww"))).await;
    // The join and rename chatter so far: two joins, two renames.
    for _ in 0..4 {
        tcp_watcher.line().await;
    }

    let sending = async {
        for i in 0..50 {
            tcp_sender.send(&format!("t{i}")).await;
            web_sender
                .emit("chat", json!({"message": format!("w{i}")}))
                .await;
        }
    };
    sending.await;
    let mut tcp_order = Vec::new();
    while tcp_order.len() < 100 {
        let line = tcp_watcher.line().await;
        if let Some(text) = line.strip_prefix("ts: ").or(line.strip_prefix("ws: ")) {
            tcp_order.push(text.to_string());
        }
    }
    let mut web_order = Vec::new();
    while web_order.len() < 100 {
        let message = web_watcher.event_skipping("message").await;
        web_order.push(message["text"].as_str().unwrap().to_string());
    }
    assert_eq!(tcp_order, web_order);
    // Each sender's own messages stay in its order.
    let t: Vec<_> = tcp_order.iter().filter(|m| m.starts_with('t')).collect();
    assert_eq!(
        t,
        (0..50)
            .map(|i| format!("t{i}"))
            .collect::<Vec<_>>()
            .iter()
            .collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn shutdown_tells_sockets_why() {
    let server = TestServer::default().await;
    let mut web = server.socket().await;
    server.shutdown().await;
    let closing = web.event("closing").await;
    assert_eq!(closing["reason"], "server is shutting down");
    web.expect_closed().await;
}

#[tokio::test]
async fn a_sockets_requests_are_handled_in_the_order_sent() {
    let server = TestServer::default().await;
    let mut sender = server.socket().await;
    let mut tcp = server.client().await;
    sender.event("joined").await;
    // Fire without waiting for answers; the server still takes them in order.
    for i in 0..60 {
        sender
            .emit("message", json!({"text": format!("n{i}")}))
            .await;
    }
    for i in 0..60 {
        tcp.expect(&format!("{}: n{i}", sender.nick)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_that_never_reads_is_disconnected_and_holds_nobody_back() {
    use std::sync::atomic::Ordering;
    let mut config = common::config();
    config.outbound_limit = 256 * 1024;
    config.history_cache = 0;
    config.history_on_join = 0;
    let server = TestServer::start(config).await;
    let stalled = server.socket().await; // never read from again
    let mut watcher = server.client().await;
    // The sender reads (and drops) its own echoes, so it is not slow itself.
    let sender = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let (mut from_server, mut to_server) = sender.into_split();
    tokio::spawn(async move {
        let _ = tokio::io::copy(&mut from_server, &mut tokio::io::sink()).await;
    });
    let padding = "p".repeat(1000);
    let writer = async {
        use tokio::io::AsyncWriteExt;
        for i in 0..6000 {
            let line = format!("{i} {padding}\n");
            to_server.write_all(line.as_bytes()).await.unwrap();
        }
    };
    let left = format!("{} has left", stalled.nick);
    let mut saw_left = false;
    let reader = async {
        let mut i = 0;
        while i < 6000 {
            let line = watcher.line().await;
            if line.ends_with("has joined us") {
                continue;
            }
            if line == left {
                saw_left = true;
                continue;
            }
            assert!(line.contains(&format!(": {i} ")), "{line:?}");
            i += 1;
        }
    };
    tokio::join!(writer, reader);
    assert_eq!(server.hub.stats().slow_consumers.load(Ordering::Relaxed), 1);
    if !saw_left {
        watcher.expect(&left).await;
    }
    drop(stalled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_sent_right_behind_connect_is_not_lost() {
    // Many at once, so the server is busy when each CONNECT is answered:
    // a handler registered any later than that answer would miss the join.
    let server = TestServer::default().await;
    let mut clients = Vec::new();
    for _ in 0..200 {
        let http = server.http;
        clients.push(tokio::spawn(async move {
            let frame = r#"4242["join","eager"]"#;
            let mut web = common::sio::SioClient::connect_then(http, Some(frame)).await;
            // Every other client's joins arrive too (hundreds of events):
            // read until the answer, within a deadline.
            let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
            while tokio::time::Instant::now() < deadline {
                if let Some(answer) = web.take_ack(42).await {
                    assert_eq!(answer["ok"]["room"], "eager");
                    return;
                }
            }
            panic!("the early join was never answered");
        }));
    }
    for client in clients {
        client.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fast_socket_is_slowed_down_not_dropped() {
    let server = TestServer::default().await;
    let mut sender = server.socket().await;
    let mut tcp = server.client().await;
    sender.event("joined").await;
    // Far more than the request queue and in-flight slots hold (256 + 64),
    // without waiting for a single answer.
    let nick = sender.nick.clone();
    let blast = async {
        for i in 0..1000 {
            sender
                .emit("message", json!({"text": format!("b{i}")}))
                .await;
        }
    };
    let watch = async {
        for i in 0..1000 {
            tcp.expect(&format!("{nick}: b{i}")).await;
        }
    };
    tokio::join!(blast, watch);
    assert_eq!(
        server
            .hub
            .stats()
            .flood_rejected_lines
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
}

/// JSON text for `text` as python-socketio writes it: every non-ASCII
/// character escaped (`\ud83d\ude00` for an emoji, 12 bytes for 4).
fn ascii_json(text: &str) -> String {
    let mut out = String::from("\"");
    for unit in text.encode_utf16() {
        if unit < 0x80 {
            out.push(char::from(unit as u8));
        } else {
            out.push_str(&format!("\\u{unit:04x}"));
        }
    }
    out.push('"');
    out
}

#[tokio::test]
async fn the_text_limit_is_on_what_the_user_typed_not_on_its_escaping() {
    let server = TestServer::default().await;
    let mut tcp = server.client().await;
    let mut web = server.socket().await;
    tcp.line().await; // the socket joined
                      // 1023 emoji: 4092 bytes of text, within the 4096-byte limit, 12276
                      // bytes of escaped JSON.
    let text = "😀".repeat(1023);
    let answer = web
        .request_json("message", &format!("{{\"text\":{}}}", ascii_json(&text)))
        .await;
    assert!(answer.get("ok").is_some(), "{answer}");
    tcp.expect(&format!("{}: {text}", web.nick)).await;
    // 1025 emoji: over the limit, an error for this request; the connection stays.
    let text = "😀".repeat(1025);
    let answer = web
        .request_json("message", &format!("{{\"text\":{}}}", ascii_json(&text)))
        .await;
    assert_eq!(answer["error"]["code"], "too_large", "{answer}");
    web.ok("message", Some(json!({"text": "still connected"})))
        .await;
    tcp.expect(&format!("{}: still connected", web.nick)).await;
}

#[tokio::test]
async fn unknown_events_spend_flood_budget_too() {
    let mut config = common::config();
    config.flood_rate = 1.0;
    config.flood_burst = 2;
    config.flood_kick = 3;
    let server = TestServer::start(config).await;
    let mut web = server.socket().await;
    assert_eq!(web.error_code("no such event", None).await, "unknown_event");
    assert_eq!(web.error_code("no such event", None).await, "unknown_event");
    assert_eq!(web.error_code("no such event", None).await, "flood");
    for _ in 0..10 {
        web.emit("no such event", json!(null)).await;
    }
    let closing = web.event_skipping("closing").await;
    assert_eq!(closing["reason"], "flooding: too many lines too fast");
    web.expect_closed().await;
}

#[tokio::test]
async fn join_with_since_resumes_a_room_the_socket_is_already_in() {
    let server = TestServer::default().await;
    let mut tcp = server.client().await;
    tcp.nick("writer").await;
    for i in 1..=5 {
        tcp.send(&format!("m{i}")).await;
        tcp.expect(&format!("writer: m{i}")).await;
    }
    // A socket that had seen up to id 2, reconnecting: it starts in the
    // default room (the welcome history is the last messages, not "since").
    let mut web = server.socket().await;
    tcp.line().await; // the socket joined
    let welcome = web.event_skipping("history").await;
    assert_eq!(welcome["messages"].as_array().unwrap().len(), 5);
    let joined = web
        .ok("join", Some(json!({"room": "lobby", "since": 2})))
        .await;
    assert_eq!(joined["last_id"], 5);
    let history = web.event_skipping("history").await;
    let missed: Vec<u64> = history["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_u64().unwrap())
        .collect();
    assert_eq!(missed, [3, 4, 5]);
    assert_eq!(history["complete"], true);

    // The same for a room joined earlier on this connection.
    web.ok("join", Some(json!({"room": "games"}))).await;
    tcp.send("/join games").await;
    tcp.expect(&format!(
        "* you are now in games (2 members: {}, writer)",
        web.nick
    ))
    .await;
    for i in 1..=3 {
        tcp.send(&format!("g{i}")).await;
        tcp.expect(&format!("writer: g{i}")).await;
    }
    web.ok("join", Some(json!({"room": "games", "since": 1})))
        .await;
    let history = loop {
        let history = web.event_skipping("history").await;
        if history["room"] == "games" && history["messages"][0]["id"] == 2 {
            break history;
        }
    };
    assert_eq!(history["messages"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn one_connection_may_join_a_bounded_number_of_rooms() {
    let server = TestServer::default().await;
    let mut web = server.socket().await;
    // In the default room already: 31 more reach the cap of 32.
    for i in 1..32 {
        web.ok("join", Some(json!({"room": format!("r{i}")}))).await;
    }
    assert_eq!(
        web.error_code("join", Some(json!({"room": "one-too-many"})))
            .await,
        "too_many_joined"
    );
    web.ok("leave", Some(json!({"room": "r1"}))).await;
    web.ok("join", Some(json!({"room": "one-more"}))).await;
}

#[tokio::test]
async fn what_a_socket_sent_before_it_went_is_relayed_before_its_leave() {
    let server = TestServer::default().await;
    let mut tcp = server.client().await;
    let mut web = server.socket().await;
    tcp.line().await; // the socket joined
                      // Twenty messages and the DISCONNECT packet, back to back, no acks awaited.
    for i in 0..20 {
        web.emit("message", json!({"text": format!("m{i}")})).await;
    }
    web.send_raw("41").await;
    for i in 0..20 {
        tcp.expect(&format!("{}: m{i}", web.nick)).await;
    }
    tcp.expect(&format!("{} has left", web.nick)).await;

    // The same when the transport just closes.
    let mut web = server.socket().await;
    tcp.line().await; // the socket joined
    for i in 0..20 {
        web.emit("message", json!({"text": format!("n{i}")})).await;
    }
    let nick = web.nick.clone();
    drop(web);
    for i in 0..20 {
        tcp.expect(&format!("{nick}: n{i}")).await;
    }
    tcp.expect(&format!("{nick} has left")).await;
}
