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
    // Member lists say who is logged in.
    back.send("/who").await;
    loop {
        let line = back.line().await;
        if line.starts_with("* lobby (") {
            assert!(line.contains("alice (logged in)"), "{line}");
            break;
        }
    }
    let members = web.ok("members", None).await;
    assert_eq!(members["logged_in"], json!(["alice"]));
    let whois = web.ok("whois", Some(json!("alice"))).await;
    assert_eq!(
        whois,
        json!({"nick": "alice", "registered": true, "here": true, "logged_in": true, "sessions": 1})
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
    assert_eq!(registered["nick"], "sam");
    assert!(registered["session"].is_string(), "{registered}");
    // Another socket logs in to it while sam is here: a second device of
    // sam's (tests/devices.rs), the guest it was leaves the room.
    let mut other = server.socket().await;
    let guest = other.nick.clone();
    let taken = other
        .ok(
            "login",
            Some(json!({"nick": "sam", "password": "long enough"})),
        )
        .await;
    while watcher.line().await != format!("{guest} has left") {}
    // The account is not deleted from under its other session.
    assert_eq!(
        other
            .error_code("unregister", Some(json!({"password": "long enough"})))
            .await,
        "other_sessions"
    );
    drop(web);
    // Once the first socket is gone, the other is sam alone.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while other.ok("whois", Some(json!({"nick": "sam"}))).await["sessions"] != 1 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "sam's first socket never left"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(taken["nick"], "sam");
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

mod tokens {
    use super::*;
    use futures_util::{SinkExt, StreamExt};
    use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
    use serde_json::Value;
    use tokio_tungstenite::tungstenite::Message;

    const SECRET: &[u8] = b"the application's secret";

    fn now() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    fn token(claims: Value, secret: &[u8], algorithm: Algorithm) -> String {
        encode(
            &Header::new(algorithm),
            &claims,
            &EncodingKey::from_secret(secret),
        )
        .unwrap()
    }

    async fn server() -> TestServer {
        TestServer::start(hubbub::Config {
            jwt_secret: Some(String::from_utf8(SECRET.to_vec()).unwrap()),
            ..common::config()
        })
        .await
    }

    type Ws = tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >;

    /// A raw WebSocket that sent CONNECT with `auth`; the first frame after
    /// the open packet (`40…` or `44…`).
    async fn connect_with(server: &TestServer, auth: Value) -> (Ws, String) {
        let url = format!("ws://{}/socket.io/?EIO=4&transport=websocket", server.http);
        let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        assert!(next_text(&mut ws).await.starts_with('0'));
        ws.send(Message::text(format!("40{auth}"))).await.unwrap();
        let answer = next_text(&mut ws).await;
        (ws, answer)
    }

    /// The next text frame other than a ping.
    async fn next_text(ws: &mut Ws) -> String {
        loop {
            match tokio::time::timeout(common::WAIT, ws.next()).await.unwrap() {
                Some(Ok(Message::Text(t))) if t.as_str() != "2" => return t.as_str().to_string(),
                Some(Ok(_)) => {}
                other => panic!("{other:?}"),
            }
        }
    }

    async fn event(ws: &mut Ws, name: &str) -> Value {
        let prefix = format!("42[\"{name}\"");
        loop {
            match tokio::time::timeout(common::WAIT, ws.next()).await.unwrap() {
                Some(Ok(Message::Text(t))) if t.as_str().starts_with(&prefix) => {
                    let event: Value = serde_json::from_str(&t.as_str()[2..]).unwrap();
                    return event[1].clone();
                }
                Some(Ok(Message::Text(t))) if t.as_str() == "2" => {
                    ws.send(Message::text("3")).await.unwrap();
                }
                Some(Ok(_)) => {}
                other => panic!("waiting for {name}: {other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn a_token_lets_the_applications_user_in_on_both_transports() {
        let server = server().await;
        let dana = token(
            json!({"sub": "u42", "name": "dana", "exp": now() + 3600, "rooms": ["ops"]}),
            SECRET,
            Algorithm::HS256,
        );
        let (mut ws, answer) = connect_with(&server, json!({ "token": dana })).await;
        assert!(answer.starts_with("40{"), "{answer}");
        assert_eq!(event(&mut ws, "welcome").await["nick"], "dana");
        // Joined the token's rooms on connect (right after `welcome`: ask
        // until the room shows her).
        let mut tcp = server.client().await;
        tcp.send("/join ops").await;
        let want = format!("* ops (2 members): {}, dana (logged in)", tcp.name);
        let deadline = tokio::time::Instant::now() + common::WAIT;
        loop {
            tcp.send("/who").await;
            let who = loop {
                let line = tcp.line().await;
                if line.starts_with("* ops (") {
                    break line;
                }
            };
            if who == want {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "{who}");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        // The name is the token user's: refused to others.
        tcp.send("/nick dana").await;
        let refused = tcp.line().await;
        assert!(
            refused.starts_with("! the nickname dana is registered"),
            "{refused}"
        );
        // Over TCP, the same user with `/token` (here: another of theirs).
        let erin = token(
            json!({"sub": "u43", "name": "erin", "exp": now() + 3600}),
            SECRET,
            Algorithm::HS256,
        );
        let mut line = server.client().await;
        line.send(&format!("/token {erin}")).await;
        line.expect(&format!("{} is now known as erin", line.name))
            .await;
        line.expect("* you are logged in as erin").await;
    }

    #[tokio::test]
    async fn bad_tokens_and_bad_credentials_are_refused_at_connect() {
        let server = server().await;
        let expired = token(
            json!({"sub": "u1", "exp": now() - 3600}),
            SECRET,
            Algorithm::HS256,
        );
        let forged = token(
            json!({"sub": "u1", "exp": now() + 3600}),
            b"not it",
            Algorithm::HS256,
        );
        let other_alg = token(
            json!({"sub": "u1", "exp": now() + 3600}),
            SECRET,
            Algorithm::HS384,
        );
        for bad in [expired, forged, other_alg] {
            let (_, answer) = connect_with(&server, json!({ "token": bad })).await;
            assert!(
                answer.starts_with("44{") && answer.contains("invalid token"),
                "{answer}"
            );
        }
        let (_, answer) =
            connect_with(&server, json!({"nick": "zed", "password": "long enough"})).await;
        assert!(answer.contains("invalid nickname or password"), "{answer}");
        // Registered, the same credentials connect as the account.
        let mut zed = server.client().await;
        zed.nick("zed").await;
        zed.send("/register long enough").await;
        zed.expect("* you registered zed; you are logged in").await;
        zed.send("/quit").await;
        zed.expect("* bye").await;
        let mut answer = String::new();
        for _ in 0..20 {
            let (mut ws, a) =
                connect_with(&server, json!({"nick": "zed", "password": "long enough"})).await;
            answer = a;
            if answer.starts_with("40{") {
                assert_eq!(event(&mut ws, "welcome").await["nick"], "zed");
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert!(answer.starts_with("40{"), "{answer}");
    }

    #[tokio::test]
    async fn an_expiring_token_warns_then_closes_unless_refreshed() {
        let server = server().await;
        let short = token(
            json!({"sub": "u7", "name": "fay", "exp": now() + 2}),
            SECRET,
            Algorithm::HS256,
        );
        let (mut ws, _) = connect_with(&server, json!({ "token": short })).await;
        let warning = event(&mut ws, "error").await;
        assert_eq!(warning["code"], "token_expiring");
        let closing = event(&mut ws, "closing").await;
        assert_eq!(closing["reason"], "your token expired");

        // Refreshed in time, it stays.
        let short = token(
            json!({"sub": "u8", "name": "gus", "exp": now() + 2}),
            SECRET,
            Algorithm::HS256,
        );
        let (mut ws, _) = connect_with(&server, json!({ "token": short })).await;
        event(&mut ws, "welcome").await;
        let fresh = token(
            json!({"sub": "u8", "name": "gus", "exp": now() + 3600}),
            SECRET,
            Algorithm::HS256,
        );
        ws.send(Message::text(format!(
            "421{}",
            json!(["refresh", {"token": fresh}])
        )))
        .await
        .unwrap();
        tokio::time::sleep(std::time::Duration::from_secs(4)).await;
        let mut tcp = server.client().await;
        tcp.send("/whois gus").await;
        tcp.expect("* gus: registered; here, logged in").await;

        // Over TCP, an expired token ends the connection with the reason.
        let short = token(
            json!({"sub": "u9", "name": "hal", "exp": now() + 1}),
            SECRET,
            Algorithm::HS256,
        );
        let mut line = server.client().await;
        line.send(&format!("/token {short}")).await;
        line.expect(&format!("{} is now known as hal", line.name))
            .await;
        line.expect("* you are logged in as hal").await;
        let warning = line.line().await;
        assert!(
            warning.starts_with("! your token expires in ")
                && warning.ends_with(" s; send /token JWT with a new one"),
            "{warning}"
        );
        line.expect("! disconnected: your token expired").await;

        // Over TCP too, a new `/token` in time keeps the connection.
        let short = token(
            json!({"sub": "u10", "name": "ida", "exp": now() + 2}),
            SECRET,
            Algorithm::HS256,
        );
        let mut line = server.client().await;
        line.send(&format!("/token {short}")).await;
        line.expect(&format!("{} is now known as ida", line.name))
            .await;
        line.expect("* you are logged in as ida").await;
        let warning = line.line().await;
        assert!(warning.starts_with("! your token expires in "), "{warning}");
        let fresh = token(
            json!({"sub": "u10", "name": "ida", "exp": now() + 3600}),
            SECRET,
            Algorithm::HS256,
        );
        line.send(&format!("/token {fresh}")).await;
        line.expect("* you are logged in as ida").await;
        line.expect_silence(std::time::Duration::from_secs(3)).await;
        line.send("/whois ida").await;
        line.expect("* ida: registered; here, logged in").await;
    }
}
