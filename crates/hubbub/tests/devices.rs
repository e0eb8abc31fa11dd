//! One user on several devices: an account connected from several clients
//! at once, on both transports, is one member; what is sent to it reaches
//! every session, what one session sends the others see, and the room
//! hears it leave only when its last session goes. (Across the nodes of a
//! cluster: tests/cluster.rs.)

mod common;

use std::time::Duration;

use common::sio::SioClient;
use common::{named_clients, Client, TestServer};
use serde_json::json;

const QUIET: Duration = Duration::from_millis(300);

/// Reads `client`'s lines until one starts with `prefix`; returns it.
async fn line_starting(client: &mut Client, prefix: &str) -> String {
    loop {
        let line = client.line().await;
        if line.starts_with(prefix) {
            return line;
        }
    }
}

/// bob and alice on TCP, alice registered and logged in.
async fn bob_and_alice(server: &TestServer) -> (Client, Client) {
    let mut clients = named_clients(server, ["bob", "alice"]).await;
    let mut alice = clients.pop().unwrap();
    let bob = clients.pop().unwrap();
    alice.send("/register correct horse").await;
    alice
        .expect("* you registered alice; you are logged in")
        .await;
    (bob, alice)
}

#[tokio::test]
async fn an_account_on_two_transports_is_one_member_and_gets_everything() {
    let server = TestServer::default().await;
    let (mut bob, mut alice) = bob_and_alice(&server).await;

    // A second device: the page, logging in as it connects.
    let mut phone = SioClient::connect_auth(
        server.http,
        json!({"nick": "alice", "password": "correct horse"}),
    )
    .await;
    assert_eq!(phone.nick, "alice");
    // Nobody hears a second alice arrive: she is here already.
    bob.expect_silence(QUIET).await;
    alice.expect_silence(QUIET).await;

    // One member, logged in, on both transports' lists.
    bob.send("/who").await;
    bob.expect("* lobby (2 members): alice (logged in), bob")
        .await;
    let members = phone.ok("members", None).await;
    assert_eq!(members["members"], json!(["alice", "bob"]));
    assert_eq!(members["logged_in"], json!(["alice"]));
    bob.send("/whois alice").await;
    bob.expect("* alice: registered; here, logged in (on 2 devices)")
        .await;

    // A room message reaches both sessions.
    bob.send("hello both").await;
    bob.expect("bob: hello both").await;
    alice.expect("bob: hello both").await;
    let message = phone.event_skipping("message").await;
    assert_eq!(
        (message["from"].as_str(), message["text"].as_str()),
        (Some("bob"), Some("hello both"))
    );

    // A private message to alice reaches both sessions.
    bob.send("/msg alice psst").await;
    bob.expect("-> *alice* psst").await;
    alice.expect("*bob* psst").await;
    let private = phone.event_skipping("private").await;
    assert_eq!(
        private,
        json!({"from": "bob", "to": "alice", "text": "psst", "ts": private["ts"]})
    );

    // What one session says privately, the other sees too.
    let sent = phone
        .ok(
            "private",
            Some(json!({"to": "bob", "text": "from my phone"})),
        )
        .await;
    assert_eq!(sent["to"], "bob");
    bob.expect("*alice* from my phone").await;
    alice.expect("-> *bob* from my phone").await;
    alice.send("/msg bob from my desk").await;
    alice.expect("-> *bob* from my desk").await;
    bob.expect("*alice* from my desk").await;
    let copy = phone.event_skipping("private").await;
    assert_eq!(
        (
            copy["from"].as_str(),
            copy["to"].as_str(),
            copy["text"].as_str()
        ),
        (Some("alice"), Some("bob"), Some("from my desk"))
    );
    // …and what one says in the room, the other gets like everyone.
    phone
        .ok("message", Some(json!({"text": "typed on the phone"})))
        .await;
    alice.expect("alice: typed on the phone").await;
    bob.expect("alice: typed on the phone").await;

    // A guest still cannot take the name, however many hold it.
    let mut guest = server.socket().await;
    assert_eq!(
        guest.error_code("set nickname", Some(json!("alice"))).await,
        "nick_registered"
    );
    bob.expect(&format!("{} has joined us", guest.nick)).await;

    // The room hears alice leave only when her last session goes.
    drop(phone);
    bob.expect_silence(QUIET).await;
    bob.send("/who").await;
    bob.expect(&format!(
        "* lobby (3 members): alice (logged in), bob, {}",
        guest.nick
    ))
    .await;
    alice.send("/quit").await;
    bob.expect("alice has left").await;
}

#[tokio::test]
async fn logging_in_where_the_account_is_already_joins_no_one_new() {
    let server = TestServer::default().await;
    let (mut bob, mut alice) = bob_and_alice(&server).await;

    // Another TCP client logs in to alice: it leaves its guest name
    // behind, and alice (here already) does not join again.
    let mut desk = server.client().await;
    bob.expect(&format!("{} has joined us", desk.name)).await;
    alice.expect(&format!("{} has joined us", desk.name)).await;
    desk.send("/login alice correct horse").await;
    desk.expect(&format!("{} is now known as alice", desk.name))
        .await;
    desk.expect("* you are logged in as alice").await;
    bob.expect(&format!("{} has left", desk.name)).await;
    alice.expect(&format!("{} has left", desk.name)).await;
    bob.send("/who").await;
    bob.expect("* lobby (2 members): alice (logged in), bob")
        .await;

    // The account cannot be deleted from under its other session.
    desk.send("/unregister correct horse").await;
    desk.expect("! 1 other session(s) are logged in to this account; log them out first")
        .await;

    // Logging out of one device: that session cannot keep a name its
    // account's other session holds, so it becomes a guest again, and
    // the room sees a newcomer rather than alice leaving.
    desk.send("/logout").await;
    let notice = line_starting(&mut desk, "* logged out").await;
    assert_eq!(
        notice,
        format!(
            "* logged out; your other sessions keep the account's nickname, you are now {}",
            desk.name
        )
    );
    bob.expect(&format!("{} has joined us", desk.name)).await;
    alice.expect(&format!("{} has joined us", desk.name)).await;
    bob.send("/who").await;
    let who = line_starting(&mut bob, "* lobby (").await;
    assert_eq!(
        who,
        format!("* lobby (3 members): {}, alice (logged in), bob", desk.name)
    );

    // alice on her own now: logging out keeps her name as a guest's.
    alice.send("/logout").await;
    alice
        .expect("* logged out (you keep your nickname until you change it)")
        .await;
    bob.send("/whois alice").await;
    bob.expect("* alice: registered; here, not logged in").await;
}

#[tokio::test]
async fn a_device_leaving_a_room_keeps_the_user_there_while_another_stays() {
    let server = TestServer::default().await;
    let (mut bob, mut alice) = bob_and_alice(&server).await;
    let mut phone = SioClient::connect_auth(
        server.http,
        json!({"nick": "alice", "password": "correct horse"}),
    )
    .await;
    // Both of alice's sessions and bob in `games`; the phone joins last.
    bob.send("/join games").await;
    line_starting(&mut bob, "* you are now in games").await;
    alice.expect("bob has left").await;
    alice.send("/join games").await;
    bob.expect("alice has joined us").await;
    phone.ok("join", Some(json!({"room": "games"}))).await;
    bob.expect_silence(QUIET).await;

    // The phone leaves games: alice is still there on her desk.
    phone.ok("leave", Some(json!({"room": "games"}))).await;
    bob.expect_silence(QUIET).await;
    bob.send("/who").await;
    bob.expect("* games (2 members): alice (logged in), bob")
        .await;

    // The desk moves away too: now games hears alice leave.
    alice.send("/join lobby").await;
    bob.expect("alice has left").await;
}
