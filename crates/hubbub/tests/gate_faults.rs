//! The gate fails closed: with the store out of reach, a room whose rules
//! this node cannot read admits nobody and shows nothing, rather than
//! fall back to the default rules; once the store is back, its own rules
//! decide again.

mod common;

use std::time::Duration;

use common::proxy::Proxy;
use common::sio::SioClient;
use common::TestServer;
use serde_json::json;

#[tokio::test]
async fn a_room_whose_rules_cannot_be_read_admits_nobody() {
    let proxy = Proxy::start("127.0.0.1:5432".parse().unwrap()).await;
    let base = format!("postgres://postgres@{}/test", proxy.addr);
    let schema = common::postgres_schema_at(&base).await;
    let config = hubbub::Config {
        store: hubbub::config::StoreKind::Postgres,
        database_url: Some(schema.url.clone()),
        ..common::config()
    };
    let server = TestServer::start(config).await;
    let mut owner = server.client().await;
    owner.nick("owner").await;
    owner.send("/register long enough").await;
    owner.line_starting("* you registered owner").await;
    owner.send("/join vault").await;
    owner.line_starting("* you are now in vault").await;
    owner.send("/mode +i").await;
    owner.line_starting("* modes of vault").await;
    // Everyone leaves: the room's rules are only in the store now.
    owner.send("/join lobby").await;
    owner.line_starting("* you are now in lobby").await;

    proxy.cut();
    let mut guest = server.client().await;
    guest.send("/join vault").await;
    guest
        .line_starting("! the rules of vault cannot be read right now; try again")
        .await;
    let mut page = SioClient::connect(server.http).await;
    for event in ["join", "history", "members"] {
        assert_eq!(
            page.error_code(event, Some(json!({"room": "vault"}))).await,
            "policy_unavailable",
            "{event}"
        );
    }

    proxy.restore();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        guest.send("/join vault").await;
        let line = guest.line_starting("! ").await;
        if line.contains("invite-only") {
            break;
        }
        assert!(line.contains("cannot be read"), "{line}");
        assert!(
            tokio::time::Instant::now() < deadline,
            "the store never came back"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        page.error_code("history", Some(json!({"room": "vault"})))
            .await,
        "invite_only"
    );
    drop(server);
    drop(schema);
}
