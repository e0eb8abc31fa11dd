//! The README's story for a newcomer, end to end: register on the page
//! (Socket.IO over WSS), log in from a line client over TLS on a second
//! device and be one member in both, and a host application's JWT letting
//! its user in without any form.

mod common;

use common::sio::SioClient;
use common::tls::{self, server_config, TestPki};
use common::TestServer;
use jsonwebtoken::{encode, EncodingKey, Header};
use serde_json::json;

const SECRET: &str = "a secret the host application shares";

#[tokio::test]
async fn register_on_the_page_log_in_over_tls_be_one_member_and_embed_by_token() {
    let pki = TestPki::new();
    let server = TestServer::start(hubbub::Config {
        jwt_secret: Some(SECRET.into()),
        ..server_config(&pki)
    })
    .await;
    let https = server.https.expect("an HTTPS listener");
    let tls_line = server.tls_tcp.expect("a TLS line listener");

    // The page: a nickname, then the register form.
    let mut page = SioClient::connect_tls(https, pki.client()).await;
    page.ok("set nickname", Some(json!("newbie"))).await;
    let registered = page
        .ok("register", Some(json!({"password": "correct horse"})))
        .await;
    assert!(registered["session"].is_string(), "{registered}");

    // A second device: a line client over TLS (as `openssl s_client`).
    let mut terminal = tls::line_client(tls_line, pki.client()).await;
    terminal.send("/login newbie correct horse").await;
    loop {
        if terminal.line().await == "* you are logged in as newbie" {
            break;
        }
    }
    // One member, on both.
    terminal.send("/who").await;
    loop {
        let line = terminal.line().await;
        if line.starts_with("* lobby (") {
            assert_eq!(line, "* lobby (1 member): newbie (logged in)");
            break;
        }
    }
    let members = page.ok("members", None).await;
    assert_eq!(members["members"], json!(["newbie"]));
    // Said on one device, seen on the other.
    terminal.send("from the terminal").await;
    let message = page.event_skipping("message").await;
    assert_eq!(
        (message["from"].as_str(), message["text"].as_str()),
        (Some("newbie"), Some("from the terminal"))
    );

    // A host application's user, by its JWT: no form.
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 600;
    let jwt = encode(
        &Header::default(),
        &json!({"sub": "host-user-7", "name": "hostuser", "exp": exp}),
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap();
    let embedded = SioClient::connect_tls_auth(https, pki.client(), json!({ "token": jwt })).await;
    assert_eq!(embedded.nick, "hostuser");
    terminal.send("/whois hostuser").await;
    loop {
        let line = terminal.line().await;
        if line.starts_with("* hostuser: ") {
            assert_eq!(line, "* hostuser: registered; here, logged in");
            break;
        }
    }
}
