//! No one can pass for the server or for someone else: look-alike nicknames
//! are the same nickname on every transport, names the server hands out
//! cannot be chosen, and no line a user causes reads like a server line.

mod common;

use common::TestServer;
use serde_json::json;

#[tokio::test]
async fn look_alike_nicknames_are_taken_on_every_transport() {
    let server = TestServer::default().await;
    let mut evan = server.client().await;
    evan.nick("evan").await;
    let mut other = server.client().await;
    evan.line().await; // other joined

    // Cyrillic е, uppercase, and fullwidth: all refused while evan is here.
    other.send("/nick \u{435}van").await;
    other
        .expect("! nickname \u{435}van is already in use")
        .await;
    other.send("/nick EVAN").await;
    other.expect("! nickname EVAN is already in use").await;
    other.send("/nick ｅｖａｎ").await;
    let line = other.line().await;
    assert!(line.starts_with("! "), "fullwidth refused: {line}");
    // An invisible character does not make a new name either.
    other.send("/nick ev\u{200b}an").await;
    let line = other.line().await;
    assert!(line.starts_with("! "), "zero-width space refused: {line}");

    // The same over Socket.IO.
    let mut web = server.socket().await;
    assert_eq!(
        web.error_code("set nickname", Some(json!("\u{435}van")))
            .await,
        "nick_in_use"
    );
    assert_eq!(
        web.error_code("set nickname", Some(json!("Evan"))).await,
        "nick_in_use"
    );
}

#[tokio::test]
async fn names_the_server_hands_out_cannot_be_chosen() {
    let server = TestServer::default().await;
    let mut web = server.socket().await;
    for name in ["guest-557", "GUEST-1", "gu\u{435}st-2"] {
        assert_eq!(
            web.error_code("set nickname", Some(json!(name))).await,
            "invalid_nick",
            "{name}"
        );
    }
    let mut tcp = server.client().await;
    tcp.send("/nick guest-9").await;
    let line = tcp.line().await;
    assert!(
        line.contains("names guest-N are given out by the server"),
        "{line}"
    );
    // So the next visitor always gets a guest name.
    let next = server.socket().await;
    assert!(next.nick.starts_with("guest-"), "{}", next.nick);
}

#[tokio::test]
async fn a_user_named_server_cannot_forge_a_server_line() {
    let server = TestServer::default().await;
    let mut fake = server.client().await;
    fake.nick("server").await;
    let mut victim = server.client().await;
    fake.line().await; // victim joined
    fake.send("/me is shutting down, bye").await;
    let line = victim.line().await;
    assert_eq!(line, "** server is shutting down, bye");
    assert!(!line.starts_with("* ") && !line.starts_with("! "));
    fake.send("/me of lobby (4):").await;
    assert_eq!(victim.line().await, "** server of lobby (4):");
}

#[tokio::test]
async fn a_capital_i_does_not_pass_for_an_l() {
    let server = TestServer::default().await;
    let mut alice = server.client().await;
    alice.nick("alice").await;
    let mut other = server.client().await;
    alice.line().await; // other joined
                        // `AIice` with a capital i reads as `Alice` in most fonts.
    other.send("/nick AIice").await;
    other.expect("! nickname AIice is already in use").await;
    let mut web = server.socket().await;
    assert_eq!(
        web.error_code("set nickname", Some(json!("AIice"))).await,
        "nick_in_use"
    );
    // Once alice is gone, the name is free again.
    alice.send("/quit").await;
    while other.line().await != "alice has left" {}
    other.send("/nick AIice").await;
    other
        .expect(&format!("{} is now known as AIice", other.name))
        .await;
}

#[tokio::test]
async fn a_look_alike_room_name_is_the_same_room() {
    let server = TestServer::default().await;
    let mut ann = server.client().await;
    ann.nick("ann").await;
    ann.send("/join games").await;
    ann.expect("* you are now in games (1 member: ann)").await;
    let mut bob = server.client().await;
    bob.nick("bob").await;
    // Cyrillic а: not a second room that looks like games, but games.
    bob.send("/join g\u{430}mes").await;
    bob.expect("* you are now in games (2 members: ann, bob)")
        .await;
    ann.expect("bob has joined us").await;
    let mut web = server.socket().await;
    let joined = web.ok("join", Some(json!({"room": "GAM\u{415}S"}))).await;
    assert_eq!(joined["room"], "games");
}
