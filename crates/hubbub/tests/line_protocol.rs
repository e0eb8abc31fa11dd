//! The TCP line protocol against a real server: the Go chat transcript,
//! every command, and every kind of bad input.

mod common;

use std::time::Duration;

use common::{Client, TestServer};

const QUIET: Duration = Duration::from_millis(200);

#[tokio::test]
async fn go_chat_transcript_byte_for_byte() {
    let server = TestServer::default().await;
    let addr = server.addr;

    // Raw bytes, to check line ends and the greeting exactly.
    let mut a = Client::connect_raw(addr).await;
    let a_name = a.name.clone();
    assert_eq!(a.line().await, format!("You are {a_name}"));

    let mut b = Client::connect_raw(addr).await;
    let b_name = b.name.clone();
    assert_eq!(b.line().await, format!("You are {b_name}"));
    a.expect(&format!("{b_name} has joined us")).await;

    let mut c = Client::connect_raw(addr).await;
    let c_name = c.name.clone();
    assert_eq!(c.line().await, format!("You are {c_name}"));
    a.expect(&format!("{c_name} has joined us")).await;
    b.expect(&format!("{c_name} has joined us")).await;

    a.send("hello from a").await;
    for client in [&mut a, &mut b, &mut c] {
        client.expect(&format!("{a_name}: hello from a")).await;
    }
    c.send_bytes(b"crlf line\r\n").await;
    for client in [&mut a, &mut b, &mut c] {
        client.expect(&format!("{c_name}: crlf line")).await;
    }

    drop(b);
    a.expect(&format!("{b_name} has left")).await;
    c.expect(&format!("{b_name} has left")).await;
    // The joiner never sees its own join, the leaver nothing more.
    a.expect_silence(QUIET).await;
    c.expect_silence(QUIET).await;
}

#[tokio::test]
async fn nick_rename_and_case_insensitive_collisions() {
    let server = TestServer::default().await;
    let mut a = server.client().await;
    let mut b = server.client().await;
    a.expect(&format!("{} has joined us", b.name)).await;

    let a_old = a.name.clone();
    a.nick("Alice").await;
    b.expect(&format!("{a_old} is now known as Alice")).await;

    b.send("/nick alice").await;
    b.expect("! nickname alice is already in use").await;
    b.send("/nick ALICE").await;
    b.expect("! nickname ALICE is already in use").await;
    a.expect_silence(QUIET).await;

    // Changing the case of one's own nick is fine.
    a.nick("ALICE").await;
    b.expect("Alice is now known as ALICE").await;

    b.send("/nick bad name").await;
    b.expect("! usage: /nick NAME").await;
    b.send("/nick -dash").await;
    assert!(b.line().await.starts_with("! invalid nickname: "));
    b.send(&format!("/nick {}", "x".repeat(33))).await;
    assert!(b.line().await.starts_with("! invalid nickname: "));
    b.send("/nick a*b").await;
    assert!(b.line().await.starts_with("! invalid nickname: "));

    // A freed nickname can be taken.
    drop(a);
    b.expect("ALICE has left").await;
    b.nick("alice").await;

    // Unicode nicknames and text.
    b.nick("Zoë").await;
    b.send("héllo wörld ✓ 你好").await;
    b.expect("Zoë: héllo wörld ✓ 你好").await;
}

#[tokio::test]
async fn rooms_join_who_and_announcements() {
    let server = TestServer::default().await;
    let [mut a, mut b, mut c] = common::named_clients(&server, ["alice", "bob", "carol"])
        .await
        .try_into()
        .unwrap_or_else(|_| unreachable!());

    a.send("/who").await;
    a.expect("* lobby (3 members): alice, bob, carol").await;

    a.send("/join #games").await;
    a.expect("* you are now in games (1 member: alice)").await;
    b.expect("alice has left").await;
    c.expect("alice has left").await;

    b.send("/join GAMES").await;
    b.expect("* you are now in games (2 members: alice, bob)")
        .await;
    a.expect("bob has joined us").await;
    c.expect("bob has left").await;

    b.send("/join games").await;
    b.expect("! you are already in games").await;
    b.send("/join no/slash").await;
    assert!(b.line().await.starts_with("! invalid room name: "));

    a.send("/rooms").await;
    a.expect("* 2 rooms: games (2), lobby (1)").await;

    // Messages stay in their room.
    a.send("in games").await;
    a.expect("alice: in games").await;
    b.expect("alice: in games").await;
    c.send("in lobby").await;
    c.expect("carol: in lobby").await;
    a.expect_silence(QUIET).await;
    b.expect_silence(QUIET).await;

    // Back in the lobby, alice first gets what was said there, marked
    // with its time, then live traffic.
    a.send("/join lobby").await;
    a.expect("* history of lobby (1):").await;
    let line = a.line().await;
    assert!(
        line.starts_with("[20") && line.ends_with("] carol: in lobby"),
        "{line:?}"
    );
    a.expect("* end of history").await;
    a.expect("* you are now in lobby (2 members: alice, carol)")
        .await;
    c.expect("alice has joined us").await;
    b.expect("alice has left").await;
    c.send("/join lobby").await;
    c.expect("! you are already in lobby").await;

    // Only rooms with someone in them are listed: games, emptied, waits
    // in the store with its history.
    b.send("/join quiet").await;
    b.expect("* you are now in quiet (1 member: bob)").await;
    a.send("/rooms").await;
    a.expect("* 2 rooms: lobby (2), quiet (1)").await;
    b.send("/quit").await;
    b.expect("* bye").await;
    assert_eq!(b.read_to_end(Duration::from_secs(5)).await, "");
    a.send("/rooms").await;
    a.expect("* 1 room: lobby (2)").await;
}

#[tokio::test]
async fn private_messages_actions_escapes_and_help() {
    let server = TestServer::default().await;
    let [mut a, mut b, mut c] = common::named_clients(&server, ["alice", "bob", "carol"])
        .await
        .try_into()
        .unwrap_or_else(|_| unreachable!());

    // Private messages reach the target wherever it is, and nobody else.
    c.send("/join elsewhere").await;
    c.line().await;
    a.expect("carol has left").await;
    b.expect("carol has left").await;
    a.send("/msg CAROL psst, over here").await;
    a.expect("-> *carol* psst, over here").await;
    c.expect("*alice* psst, over here").await;
    b.expect_silence(QUIET).await;
    a.send("/msg nobody hi").await;
    a.expect("! no such nickname: nobody").await;
    a.send("/msg bob").await;
    a.expect("! usage: /msg NICK TEXT").await;

    a.send("/me waves").await;
    a.expect("** alice waves").await;
    b.expect("** alice waves").await;
    a.send("/me").await;
    a.expect("! usage: /me ACTION").await;

    a.send("//shrug").await;
    a.expect("alice: /shrug").await;
    b.expect("alice: /shrug").await;

    a.send("/frobnicate now").await;
    a.expect("! unknown command /frobnicate (try /help)").await;
    a.send("/who extra words").await;
    a.expect("! usage: /who [AFTER]").await;
    a.send("/who zzz").await;
    a.expect("* lobby (2 members, none after that)").await;

    a.send("/help").await;
    a.expect("* commands:").await;
    let mut help = Vec::new();
    loop {
        let line = a.line().await;
        assert!(line.starts_with("* /"), "help line {line:?}");
        let done = line.starts_with("* //TEXT");
        help.push(line);
        if done {
            break;
        }
    }
    for command in [
        "/nick", "/join", "/rooms", "/who", "/msg", "/me", "/quit", "/help",
    ] {
        assert!(
            help.iter().any(|l| l.starts_with(&format!("* {command} "))),
            "/help lists {command}"
        );
    }
    b.expect_silence(QUIET).await;

    b.send("/quit gone fishing").await;
    b.expect("* bye").await;
    // A user's reason reads as theirs (IRC's `Quit:`), never as the
    // server's own (`server went away`).
    a.expect("bob has left (quit: gone fishing)").await;
}

#[tokio::test]
async fn bad_input_gets_an_error_and_keeps_the_connection() {
    let mut config = common::config();
    config.max_line_bytes = 64;
    let server = TestServer::start(config).await;
    let [mut a, mut b] = common::named_clients(&server, ["alice", "bob"])
        .await
        .try_into()
        .unwrap_or_else(|_| unreachable!());

    a.send_bytes(b"bad \xff\xfe utf8\n").await;
    a.expect("! line is not valid UTF-8; it was discarded")
        .await;
    a.send_bytes(b"nul\0byte\n").await;
    a.expect("! line contains control characters; it was discarded")
        .await;
    a.send_bytes(b"\x1b[31mred\x1b[0m\n").await;
    a.expect("! line contains control characters; it was discarded")
        .await;

    // Over the limit, sent in pieces: one error, the rest of the line dropped.
    a.send_bytes(&[b'x'; 50]).await;
    a.send_bytes(&[b'y'; 50]).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    a.send_bytes(&[b'z'; 500]).await;
    a.send_bytes(b"end of the long line\nshort again\n").await;
    a.expect("! line too long (at most 64 bytes); it was discarded")
        .await;
    a.expect("alice: short again").await;
    // Exactly the limit passes.
    let exact = "e".repeat(64);
    a.send(&exact).await;
    a.expect(&format!("alice: {exact}")).await;

    a.send("tab\tis fine").await;
    a.expect("alice: tab\tis fine").await;

    // Bob saw only the valid lines.
    b.expect("alice: short again").await;
    b.expect(&format!("alice: {exact}")).await;
    b.expect("alice: tab\tis fine").await;
    b.expect_silence(QUIET).await;
}

#[tokio::test]
async fn last_line_without_newline_is_relayed_at_eof() {
    let server = TestServer::default().await;
    let [mut a, mut b] = common::named_clients(&server, ["alice", "bob"])
        .await
        .try_into()
        .unwrap_or_else(|_| unreachable!());
    a.send_bytes(b"no newline").await;
    a.writer_shutdown().await;
    b.expect("alice: no newline").await;
    b.expect("alice has left").await;
}

#[tokio::test]
async fn a_room_listing_is_capped_at_the_rooms_with_most_members() {
    let server = TestServer::default().await;
    // 150 live rooms: five sockets in 30 rooms each (and in the lobby,
    // where a TCP client is too: the lobby has the most members).
    let mut sockets = Vec::new();
    for s in 0..5 {
        let mut web = server.socket().await;
        for i in 0..30 {
            web.ok(
                "join",
                Some(serde_json::json!({ "room": format!("r{s}{i:02}") })),
            )
            .await;
        }
        sockets.push(web);
    }
    let mut other = server.client().await;
    other.send("/rooms").await;
    let listing = other.line().await;
    assert!(
        listing.starts_with("* 151 rooms, the 100 with the most members: "),
        "{listing}"
    );
    assert!(listing.contains("lobby (6)"), "{listing}");
    assert_eq!(listing.matches(" (").count(), 100, "{listing}");
}
