//! Session tokens: a Socket.IO client that logged in comes back (a
//! reconnect, a page reload, a restart of the server) without its
//! password; logging out, a new password and deleting the account end
//! them. On SQLite and on PostgreSQL.

mod common;

use common::sio::SioClient;
use common::TestServer;
use serde_json::{json, Value};

/// The code of a CONNECT_ERROR answer to `auth`.
async fn refused(server: &TestServer, auth: Value) -> String {
    let answer = SioClient::connect_answer(server.http, auth).await;
    let error = answer.expect_err("the CONNECT is refused");
    assert!(error["message"].is_string(), "{error}");
    error["data"]["code"].as_str().unwrap().to_string()
}

/// Registers `nick` from a new socket; returns it and its session token.
async fn registered(server: &TestServer, nick: &str) -> (SioClient, String) {
    let mut web = server.socket().await;
    web.ok("set nickname", Some(json!(nick))).await;
    let answer = web
        .ok("register", Some(json!({"password": "long enough"})))
        .await;
    assert_eq!(answer["nick"], nick);
    let token = answer["session"]
        .as_str()
        .expect("a session token")
        .to_string();
    assert_eq!(token.len(), 43, "32 random bytes, base64url");
    (web, token)
}

async fn a_session_token_keeps_a_client_logged_in(config: hubbub::Config) {
    let server = TestServer::start(config.clone()).await;
    let (web, token) = registered(&server, "sam").await;
    drop(web);

    // A reload: the token logs sam in, without a password.
    let mut back = SioClient::connect_auth(server.http, json!({ "session": token })).await;
    assert_eq!(back.nick, "sam");
    let members = back.ok("members", None).await;
    assert_eq!(members["logged_in"], json!(["sam"]));
    // Another device logs in with the password and gets a token of its own.
    let mut phone = server.socket().await;
    let login = phone
        .ok(
            "login",
            Some(json!({"nick": "sam", "password": "long enough"})),
        )
        .await;
    let phone_token = login["session"].as_str().unwrap().to_string();
    assert_ne!(phone_token, token);
    drop(back);
    drop(phone);

    // It survives a restart of the server (it lives in the store).
    server.shutdown().await;
    let server = TestServer::start(config).await;
    let mut back = SioClient::connect_auth(server.http, json!({ "session": token })).await;
    assert_eq!(back.nick, "sam");

    // Logging out ends the token it logged in with, not the phone's.
    back.ok("logout", None).await;
    drop(back);
    assert_eq!(
        refused(&server, json!({ "session": token })).await,
        "invalid_session"
    );
    let mut phone = SioClient::connect_auth(server.http, json!({ "session": phone_token })).await;
    assert_eq!(phone.nick, "sam");

    // A new password ends every token but the one it answers with.
    let changed = phone
        .ok(
            "password",
            Some(json!({"old": "long enough", "new": "longer still"})),
        )
        .await;
    let fresh = changed["session"].as_str().unwrap().to_string();
    assert_eq!(
        refused(&server, json!({ "session": phone_token })).await,
        "invalid_session"
    );
    let again = SioClient::connect_auth(server.http, json!({ "session": fresh })).await;
    assert_eq!(again.nick, "sam");
    drop(again);
    // Wait until only the phone holds sam, then delete the account: its
    // tokens end with it.
    let deadline = tokio::time::Instant::now() + common::WAIT;
    while phone.ok("whois", Some(json!("sam"))).await["sessions"] != 1 {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    phone
        .ok("unregister", Some(json!({"password": "longer still"})))
        .await;
    assert_eq!(
        refused(&server, json!({ "session": fresh })).await,
        "invalid_session"
    );
    // Nonsense is refused the same way, whatever its size.
    assert_eq!(
        refused(&server, json!({ "session": "" })).await,
        "invalid_session"
    );
    assert_eq!(
        refused(&server, json!({ "session": "x".repeat(10_000) })).await,
        "invalid_session"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_session_token_keeps_a_client_logged_in_on_sqlite() {
    a_session_token_keeps_a_client_logged_in(common::config()).await;
}

#[tokio::test]
async fn a_session_token_keeps_a_client_logged_in_on_postgres() {
    let (config, _schema) = common::postgres_config().await;
    a_session_token_keeps_a_client_logged_in(config).await;
}

#[tokio::test]
async fn a_refused_connect_says_why_in_a_code() {
    let server = TestServer::default().await;
    let (_web, _) = registered(&server, "kim").await;
    assert_eq!(
        refused(
            &server,
            json!({"nick": "kim", "password": "wrong password"})
        )
        .await,
        "invalid_credentials"
    );
    assert_eq!(
        refused(&server, json!({"token": "not.a.jwt"})).await,
        "tokens_disabled"
    );
}
