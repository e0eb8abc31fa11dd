//! The gate's input, parsed into meaning and trusted no further: ban
//! masks (what they name, what they refuse, how they are stored and read
//! back), typed Socket.IO arguments, the handshake's credentials (all or
//! nothing), and application tokens (claims checked, no switching users).

mod common;

use common::sio::SioClient;
use common::TestServer;
use serde_json::{json, Value};

const PASSWORD: &str = "long enough";

#[tokio::test]
async fn masks_are_parsed_into_meaning_and_wide_ones_need_a_server_operator() {
    let server = TestServer::default().await;
    let mut owner = server.client().await;
    owner.nick("owner").await;
    owner.send(&format!("/register {PASSWORD}")).await;
    owner.line_starting("* you registered owner").await;
    owner.send("/join r").await;
    owner.line_starting("* you are now in r").await;
    for mask in [
        "127.0.0.0/33",
        "300.1.1.1",
        "10.1.2.3/8",
        "*\u{200b}*",
        "*\u{2060}?",
        "**",
        "\u{ff0a}",
        "account:nobody_here",
    ] {
        owner.send(&format!("/ban {mask}")).await;
        let line = owner.line_starting("! ").await;
        assert!(
            line.contains("invalid mask") || line.contains("not a registered nickname"),
            "{mask}: {line}"
        );
    }
    for mask in ["0.0.0.0/0", "10.0.0.0/8", "::/0"] {
        owner.send(&format!("/ban {mask}")).await;
        let line = owner.line_starting("! ").await;
        assert!(line.contains("only a server operator"), "{mask}: {line}");
    }
    owner.send("/ban 10.9.0.0/16").await;
    owner.line_starting("* ip:10.9.0.0/16 is banned in r").await;

    // Typed Socket.IO arguments: a duration of the wrong type is refused,
    // not taken as "for good".
    let mut page =
        SioClient::connect_auth(server.http, json!({"nick": "owner", "password": PASSWORD})).await;
    for data in [
        json!({"room": "r", "mask": "someone", "duration": 10}),
        json!({"room": "r", "mask": "someone", "duration": true}),
        json!({"room": "r", "mask": 5}),
        json!({"room": "r", "mask": "someone", "reason": ["x"]}),
        json!({"room": 7, "mask": "someone"}),
    ] {
        assert_eq!(
            page.error_code("ban", Some(data.clone())).await,
            "bad_request",
            "{data}"
        );
    }
    let bans = page.ok("bans", Some(json!({"room": "r"}))).await;
    assert!(!bans.to_string().contains("someone"), "{bans}");
}

#[tokio::test]
async fn handshake_credentials_are_all_or_nothing() {
    let server = TestServer::default().await;
    let mut bob = server.client().await;
    bob.nick("bob").await;
    bob.send(&format!("/register {PASSWORD}")).await;
    bob.line_starting("* you registered bob").await;
    for auth in [
        json!({"nick": "bob"}),
        json!({"password": PASSWORD}),
        json!(42),
        json!("bob"),
        json!({"nick": "bob", "password": 12345678}),
        json!({"session": 5}),
        json!({"token": {"a": 1}}),
        json!({"session": "not-a-session"}),
        json!({"nick": "bob", "password": "wrong password"}),
    ] {
        let answer = SioClient::connect_answer(server.http, auth.clone()).await;
        let Err(error) = answer else {
            panic!("{auth} connected: {answer:?}");
        };
        assert!(error["data"]["code"].is_string(), "{auth}: {error}");
    }
    // No auth, or other settings only, is a guest.
    for auth in [json!({}), json!({"vocabulary": "hubbub"})] {
        assert!(SioClient::connect_answer(server.http, auth).await.is_ok());
    }
}

#[tokio::test]
async fn a_token_does_not_turn_one_user_into_another() {
    let secret = "a secret long enough for HS256 tests";
    let config = hubbub::Config {
        jwt_secret: Some(secret.into()),
        jwt_audience: Some("chat".into()),
        ..common::config()
    };
    let server = TestServer::start(config).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let sign = |claims: Value| {
        jsonwebtoken::encode(
            &jsonwebtoken::Header::default(),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    };
    let u1 = sign(json!({"sub": "u1", "name": "uone", "exp": now + 600, "aud": "chat"}));
    let u2 = sign(json!({"sub": "u2", "name": "utwo", "exp": now + 600, "aud": "chat"}));
    let mut line = server.client().await;
    line.send(&format!("/token {u1}")).await;
    line.line_starting("* you are logged in as uone").await;
    line.send(&format!("/token {u2}")).await;
    let refused = line.line_starting("! ").await;
    assert!(refused.contains("log out first"), "{refused}");
    line.send("/whois uone").await;
    line.line_starting("* uone: registered; here, logged in")
        .await;

    // The audience is required, not only checked when present; `nbf` and
    // `iat` are checked.
    for claims in [
        json!({"sub": "u3", "exp": now + 600}),
        json!({"sub": "u3", "exp": now + 600, "aud": "chat", "nbf": now + 600}),
        json!({"sub": "u3", "exp": now + 600, "aud": "chat", "iat": now + 600}),
        json!({"sub": "u3", "exp": now + 600, "aud": "chat", "nbf": "soon"}),
    ] {
        let answer =
            SioClient::connect_answer(server.http, json!({"token": sign(claims.clone())})).await;
        let Err(error) = answer else {
            panic!("{claims} connected");
        };
        assert_eq!(error["data"]["code"], "invalid_token", "{claims}");
    }
}

#[tokio::test]
async fn a_long_pattern_ban_reads_back_and_the_policy_survives() {
    let config = common::config();
    let server = TestServer::start(config.clone()).await;
    let mut owner = server.client().await;
    owner.nick("owner").await;
    owner.send(&format!("/register {PASSWORD}")).await;
    owner.line_starting("* you registered owner").await;
    owner.send("/join r").await;
    owner.line_starting("* you are now in r").await;
    // As long as a typed mask may be: its stored form is longer.
    let pattern = format!("{}*", "a".repeat(99));
    owner.send(&format!("/ban {pattern}")).await;
    owner.line_starting("* nick:aaaa").await;
    owner.send("/mode +i").await;
    owner.line_starting("* modes of r").await;
    // Another change reads the stored policy back: nothing is lost.
    owner.send("/topic still mine").await;
    owner.line_starting("* topic of r set").await;
    owner.send("/bans").await;
    owner.line_starting("* bans of r (1):").await;
    drop(owner);
    server.shutdown().await;

    let server = TestServer::start(config).await;
    let mut owner = server.client().await;
    owner.send(&format!("/login owner {PASSWORD}")).await;
    owner.line_starting("* you are logged in as owner").await;
    owner.send("/join r").await;
    owner.line_starting("* you are now in r").await;
    owner.send("/bans").await;
    owner.line_starting("* bans of r (1):").await;
    let mut guest = server.client().await;
    guest.send("/join r").await;
    guest.line_starting("! r is invite-only").await;
}
