//! Accounts: a registered nickname is its owner's, on every transport and
//! across a restart.

mod common;

use common::TestServer;
use serde_json::json;

#[tokio::test]
async fn a_registered_nickname_is_its_owners() {
    let server = TestServer::default().await;
    let mut alice = server.client().await;
    alice.nick("alice").await;
    alice.send("/register correct horse").await;
    alice
        .expect("* you registered alice; you are logged in")
        .await;

    // Nobody else may take it, by any spelling.
    let mut mallory = server.client().await;
    alice.line().await; // mallory joined
    mallory.send("/nick ALICE").await;
    let refused = mallory.line().await;
    assert!(
        refused.starts_with("! the nickname alice is registered") || refused.contains("in use"),
        "{refused}"
    );
    let mut web = server.socket().await;
    assert_eq!(
        web.error_code("set nickname", Some(json!("alice"))).await,
        "nick_registered"
    );

    // Once alice is gone the name is still hers.
    alice.send("/quit").await;
    while mallory.line().await != "alice has left" {}
    mallory.send("/nick alice").await;
    mallory
        .expect("! the nickname alice is registered; log in to use it (/login alice PASSWORD)")
        .await;
    assert_eq!(
        web.error_code("set nickname", Some(json!("Alice"))).await,
        "nick_registered"
    );
    // A wrong password and an unknown account get one answer.
    mallory.send("/login alice battery staple").await;
    mallory.expect("! invalid nickname or password").await;
    mallory.send("/login nobody battery staple").await;
    mallory.expect("! invalid nickname or password").await;
    mallory.send("/whois alice").await;
    mallory.expect("* alice: registered; not here").await;

    // Its owner logs in from anywhere and gets the name back.
    let mut back = server.client().await;
    back.send("/login alice correct horse").await;
    back.expect(&format!("{} is now known as alice", back.name))
        .await;
    back.expect("* you are logged in as alice").await;
    mallory.send("/whois ALICE").await;
    loop {
        let line = mallory.line().await;
        if line.starts_with("* alice: ") {
            assert_eq!(line, "* alice: registered; here, logged in");
            break;
        }
    }
    let whois = web.ok("whois", Some(json!("alice"))).await;
    assert_eq!(
        whois,
        json!({"nick": "alice", "registered": true, "here": true, "logged_in": true})
    );

    // A new password; the old one stops working.
    back.send("/password correct-horse battery-staple").await;
    back.expect("! invalid nickname or password").await;
    back.send("/password one two three").await;
    let usage = back.line().await;
    assert!(usage.starts_with("! usage: /password"), "{usage}");
}

#[tokio::test]
async fn sockets_register_log_in_and_unregister() {
    let server = TestServer::default().await;
    let mut watcher = server.client().await;
    let mut web = server.socket().await;
    web.ok("set nickname", Some(json!("sam"))).await;
    assert_eq!(
        web.error_code("register", Some(json!({"password": "short"})))
            .await,
        "bad_password"
    );
    let registered = web
        .ok("register", Some(json!({"password": "long enough"})))
        .await;
    assert_eq!(registered, json!({"nick": "sam"}));
    // Another socket logs in to it while sam is here: the name is in use.
    let mut other = server.socket().await;
    assert_eq!(
        other
            .error_code(
                "login",
                Some(json!({"nick": "sam", "password": "long enough"}))
            )
            .await,
        "nick_in_use"
    );
    drop(web);
    // Once sam's socket is gone, logging in takes the name.
    while watcher.line().await != "sam has left" {}
    let taken = other
        .ok(
            "login",
            Some(json!({"nick": "sam", "password": "long enough"})),
        )
        .await;
    assert_eq!(taken, json!({"nick": "sam"}));
    assert_eq!(
        other
            .error_code("unregister", Some(json!({"password": "wrong one"})))
            .await,
        "invalid_credentials"
    );
    other
        .ok("unregister", Some(json!({"password": "long enough"})))
        .await;
    let whois = other.ok("whois", Some(json!({"nick": "sam"}))).await;
    assert_eq!(whois["registered"], false);
    assert_eq!(other.error_code("logout", None).await, "not_logged_in");
}

#[tokio::test]
async fn accounts_survive_a_restart() {
    let config = common::config();
    let server = TestServer::start(config.clone()).await;
    let mut ann = server.client().await;
    ann.nick("ann").await;
    ann.send("/register long enough").await;
    ann.expect("* you registered ann; you are logged in").await;
    server.shutdown().await;

    let server = TestServer::start(config).await;
    let mut someone = server.client().await;
    someone.send("/nick ann").await;
    someone
        .expect("! the nickname ann is registered; log in to use it (/login ann PASSWORD)")
        .await;
    someone.send("/login ann long enough").await;
    someone
        .expect(&format!("{} is now known as ann", someone.name))
        .await;
    someone.expect("* you are logged in as ann").await;
}
