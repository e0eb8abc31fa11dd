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
