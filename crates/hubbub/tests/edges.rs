//! Edges of a connection: what a client sends that is almost right (a
//! name it already has, half an emoji, an empty binary event) gets a
//! precise answer, and nothing more.

mod common;

use std::time::Duration;

use common::sio::SioClient;
use common::{named_clients, Client, TestServer};
use serde_json::json;

#[tokio::test]
async fn taking_the_name_one_has_announces_nothing() {
    let server = TestServer::default().await;
    let [mut zed, mut watcher]: [Client; 2] = named_clients(&server, ["ZED", "watcher"])
        .await
        .try_into()
        .ok()
        .unwrap();
    zed.send("/nick ZED").await;
    zed.send("/who").await;
    // The next thing either sees is the `/who` answer, not a rename.
    let line = zed.line().await;
    assert!(line.starts_with("* lobby (2 members)"), "{line}");
    watcher.expect_silence(Duration::from_millis(200)).await;

    let mut page = SioClient::connect(server.http).await;
    page.ok("set nickname", Some(json!("same"))).await;
    let ready = page.event_skipping("nickname ready").await;
    assert!(ready.is_null());
    watcher.send("/who").await;
    watcher.line_starting("* lobby (3 members)").await;
    // Again, the same spelling: the seed's answer and the ack, no rename.
    page.ok("set nickname", Some(json!("same"))).await;
    page.event_skipping("nickname ready").await;
    watcher.expect_silence(Duration::from_millis(200)).await;
}

#[tokio::test]
async fn half_an_emoji_is_refused_as_bad_text_and_the_socket_stays() {
    let server = TestServer::default().await;
    let mut page = SioClient::connect(server.http).await;
    let mut watcher = server.client().await;
    for data in [
        r#"{"text":"\ud83d"}"#,
        r#"{"text":"x\ude00"}"#,
        r#"{"text":"\ud83d\ud83d"}"#,
    ] {
        let answer = page.request_json("message", data).await;
        assert_eq!(answer["error"]["code"], "invalid_text", "{data}: {answer}");
    }
    // Still connected, and a whole emoji goes through.
    let sent = page
        .request_json("message", r#"{"text":"ok \ud83d\ude00"}"#)
        .await;
    assert!(sent.get("ok").is_some(), "{sent}");
    let line = watcher.line_starting(&format!("{}: ", page.nick)).await;
    assert!(line.ends_with("ok \u{1f600}"), "{line}");
}

#[tokio::test]
async fn binary_events_spend_the_flood_budget() {
    let server = TestServer::start(hubbub::Config {
        flood_rate: 10.0,
        ..common::config()
    })
    .await;
    let mut page = SioClient::connect(server.http).await;
    // A burst of 20, then 50 refusals: disconnected at the 71st.
    for _ in 0..71 {
        page.send_raw("450-[\"x\"]").await;
    }
    page.expect_closed().await;
}

#[tokio::test]
async fn a_case_only_rename_keeps_the_account_open_to_other_devices() {
    let server = TestServer::default().await;
    let mut desk = server.client().await;
    desk.nick("erin").await;
    desk.send("/register long enough").await;
    desk.line_starting("* you registered erin").await;
    desk.nick("Erin").await;
    let mut phone = server.client().await;
    phone.send("/login erin long enough").await;
    phone.line_starting("* you are logged in as").await;
    phone.send("/whois erin").await;
    phone
        .line_starting("* Erin: registered; here, logged in (on 2 devices)")
        .await;
}

#[tokio::test]
async fn a_look_alike_name_means_the_stored_room_even_while_it_is_empty() {
    let server = TestServer::default().await;
    let mut alice = server.client().await;
    alice.send("/join games").await;
    alice.line_starting("* you are now in games").await;
    alice.send("first").await;
    let echo = format!("{}: first", alice.name);
    alice.line_starting(&echo).await;
    // Everyone leaves: the room is only in the store now.
    alice.send("/join lobby").await;
    alice.line_starting("* you are now in lobby").await;
    let mut mallory = server.client().await;
    mallory.send("/join g\u{0430}mes").await; // Cyrillic а
    mallory.line_starting("* you are now in games").await;
    alice.send("/join games").await;
    alice
        .line_starting("* you are now in games (2 members")
        .await;
}

#[tokio::test]
async fn a_user_cannot_quit_with_the_servers_words() {
    let server = TestServer::default().await;
    let [mut bob, mut watcher]: [Client; 2] = named_clients(&server, ["bob", "watcher"])
        .await
        .try_into()
        .ok()
        .unwrap();
    bob.send("/quit server went away").await;
    let line = watcher.line_starting("bob has left").await;
    assert_eq!(line, "bob has left (quit: server went away)");
}

#[tokio::test]
async fn idle_outside_sockets_cannot_fill_the_admin_listener() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = TestServer::default().await;
    let mut idle = Vec::new();
    for _ in 0..70 {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
        if let Ok(stream) = socket.connect(server.admin).await {
            idle.push(stream);
        }
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut local = tokio::net::TcpStream::connect(server.admin).await.unwrap();
    local
        .write_all(b"GET /readyz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(5), local.read_to_string(&mut answer))
        .await
        .expect("answered")
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    drop(idle);
}

#[tokio::test]
async fn names_in_every_script_with_their_marks_are_welcome() {
    let server = TestServer::default().await;
    let mut client = server.client().await;
    client.nick("नमस्ते").await;
    client.send("/join தமிழ்").await;
    client.line_starting("* you are now in தமிழ்").await;
    // Typed decomposed (e + U+0301), the name is the composed one.
    let mut other = server.client().await;
    let old = other.name.clone();
    other.send("/nick e\u{301}mile").await;
    other
        .line_starting(&format!("{old} is now known as \u{e9}mile"))
        .await;
    other.send("/whois e\u{301}mile").await;
    other
        .line_starting("* \u{e9}mile: not registered; here")
        .await;
}

#[tokio::test]
async fn a_last_line_without_newline_survives_a_reset() {
    use tokio::io::AsyncWriteExt;
    let server = TestServer::default().await;
    let mut watcher = server.client().await;
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let me = stream.local_addr().unwrap().to_string();
    watcher.line_starting(&format!("{me} has joined us")).await;
    stream.write_all(b"last words").await.unwrap();
    // The server has read them, and waits for the newline...
    tokio::time::sleep(Duration::from_millis(200)).await;
    // ...when the connection is reset.
    // A zero linger resets at once (it cannot block the thread).
    #[allow(deprecated)]
    stream.set_linger(Some(Duration::ZERO)).unwrap();
    drop(stream);
    watcher.line_starting(&format!("{me}: last words")).await;
}

#[tokio::test]
async fn two_servers_cannot_share_a_data_directory() {
    let dir = common::data_dir();
    let dir = dir.to_str().unwrap().to_string();
    let _first = common::Process::start(&["--data-dir".to_string(), dir.clone()]).await;
    let refused = common::start_fails(&["--data-dir", &dir]).await;
    assert!(
        refused.contains("another hubbub server is using the data directory"),
        "{refused}"
    );
}

#[tokio::test]
async fn one_address_opens_a_bounded_number_of_rooms_a_minute() {
    let server = TestServer::default().await;
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
    let mut client = Client::greeted(socket.connect(server.addr).await.unwrap()).await;
    for i in 0..10 {
        client.send(&format!("/join grab{i}")).await;
        client
            .line_starting(&format!("* you are now in grab{i}"))
            .await;
    }
    client.send("/join grab10").await;
    let refused = client.line_starting("! ").await;
    assert!(refused.contains("opened 10 rooms this minute"), "{refused}");
    // Joining a room that exists costs nothing.
    client.send("/join lobby").await;
    client.line_starting("* you are now in lobby").await;
    // Others may still open rooms.
    let mut other = server.client().await;
    other.send("/join mine").await;
    other.line_starting("* you are now in mine").await;
}
