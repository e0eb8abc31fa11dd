//! History against both stores (SQLite and PostgreSQL): on join, scroll-back,
//! pagination, resume without gap or duplicate, restart persistence,
//! retention. Each test runs once per backend.

mod common;

use std::time::Duration;

use common::TestServer;
use hubbub::Config;
use serde_json::json;

/// Runs `$body(config)` as one test per backend.
macro_rules! both_stores {
    ($name:ident, $body:ident) => {
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                super::$body(super::common::config()).await;
            }
            #[tokio::test]
            async fn postgres() {
                let (config, _schema) = super::common::postgres_config().await;
                super::$body(config).await;
            }
        }
    };
}

both_stores!(history_on_join, history_on_join_for_both_transports);
both_stores!(scrollback, scrollback_and_pagination);
both_stores!(restart, history_and_rooms_survive_a_restart);
both_stores!(resume, a_resuming_socket_gets_exactly_what_it_missed);
both_stores!(retention, retention_keeps_the_newest_messages);
both_stores!(
    look_alike,
    a_look_alike_means_the_stored_room_after_a_restart
);

async fn history_on_join_for_both_transports(config: Config) {
    let server = TestServer::start(config).await;
    let mut a = server.client().await;
    a.nick("alice").await;
    for i in 1..=3 {
        a.send(&format!("m{i}")).await;
        a.expect(&format!("alice: m{i}")).await;
    }
    a.send("/me waves").await;
    a.expect("** alice waves").await;

    // A line client gets the room's history, with times, before live traffic.
    let mut b = server.client().await;
    b.expect("* history of lobby (4):").await;
    for text in ["alice: m1", "alice: m2", "alice: m3", "** alice waves"] {
        let line = b.line().await;
        assert!(line.starts_with("[20"), "{line:?}");
        assert!(line.ends_with(&format!("] {text}")), "{line:?}");
    }
    b.expect("* end of history").await;

    // A socket gets a history event with ids and timestamps.
    let mut web = server.socket().await;
    let history = web.event("history").await;
    assert_eq!(history["room"], "lobby");
    assert_eq!(history["complete"], true);
    let messages = history["messages"].as_array().unwrap();
    let ids: Vec<_> = messages.iter().map(|m| m["id"].as_u64().unwrap()).collect();
    assert_eq!(ids, [1, 2, 3, 4]);
    assert_eq!(messages[0]["text"], "m1");
    assert_eq!(messages[3]["action"], true);
    // Then live traffic continues the ids.
    b.send("live").await;
    let live = web.event_skipping("message").await;
    assert_eq!(live["id"], 5);
}

async fn scrollback_and_pagination(mut config: Config) {
    config.history_on_join = 2;
    let server = TestServer::start(config).await;
    let mut a = server.client().await;
    a.nick("alice").await;
    for i in 1..=30 {
        a.send(&format!("n{i}")).await;
    }
    for i in 1..=30 {
        a.expect(&format!("alice: n{i}")).await;
    }
    a.send("/history 5").await;
    a.expect("* history of lobby (5, more before):").await;
    for i in 26..=30 {
        assert!(a.line().await.ends_with(&format!("] alice: n{i}")));
    }
    a.expect("* end of history").await;
    a.send("/history 0").await;
    assert!(a.line().await.starts_with("! usage: /history"));

    let mut web = server.socket().await;
    let joined = web.event("history").await;
    assert_eq!(joined["messages"].as_array().unwrap().len(), 2);
    assert_eq!(joined["complete"], false);

    let page = web.ok("history", Some(json!({"limit": 10}))).await;
    let ids = |page: &serde_json::Value| -> Vec<u64> {
        page["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(ids(&page), (21..=30).collect::<Vec<_>>());
    assert_eq!(page["complete"], false);
    let page = web
        .ok(
            "history",
            Some(json!({"room": "LOBBY", "before": 21, "limit": 10})),
        )
        .await;
    assert_eq!(ids(&page), (11..=20).collect::<Vec<_>>());
    let page = web
        .ok("history", Some(json!({"before": 3, "limit": 10})))
        .await;
    assert_eq!(ids(&page), [1, 2]);
    assert_eq!(page["complete"], true);
    // Exactly `limit` left: still complete.
    let page = web
        .ok("history", Some(json!({"before": 4, "limit": 3})))
        .await;
    assert_eq!(ids(&page), [1, 2, 3]);
    assert_eq!(page["complete"], true);
    assert_eq!(
        web.error_code("history", Some(json!({"room": "nowhere"})))
            .await,
        "no_such_room"
    );
    assert_eq!(
        web.error_code("history", Some(json!({"before": "x"})))
            .await,
        "bad_request"
    );
}

async fn history_and_rooms_survive_a_restart(config: Config) {
    let server = TestServer::start(config.clone()).await;
    let mut a = server.client().await;
    a.nick("alice").await;
    a.send("/join Attic").await;
    a.line().await;
    a.send("before the restart").await;
    a.expect("alice: before the restart").await;
    a.send("/msg alice a note to self").await;
    a.expect("*alice* a note to self").await;
    a.expect("-> *alice* a note to self").await;
    server.shutdown().await;

    let server = TestServer::start(config).await;
    let mut b = server.client().await;
    // Only rooms with someone in them are live (listed, counted); Attic
    // waits in the store and comes back, history and name, when joined.
    b.send("/rooms").await;
    b.expect("* 1 room: lobby (1)").await;
    b.send("/join attic").await;
    b.expect("* history of Attic (1):").await;
    assert!(b.line().await.ends_with("] alice: before the restart"));
    b.expect("* end of history").await;
    b.line().await; // you are now in Attic
    b.send("after").await;
    b.expect(&format!("{}: after", b.name)).await;
    // Ids continue where they were.
    let mut web = server.socket().await;
    web.ok("join", Some(json!("attic"))).await;
    let history = web.event_skipping("history").await;
    let ids: Vec<_> = history["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, [1, 2]);
}

async fn a_resuming_socket_gets_exactly_what_it_missed(config: Config) {
    let server = TestServer::start(config).await;
    let mut tcp = server.client().await;
    tcp.send("/join den").await;
    tcp.line().await;
    let mut web = server.socket().await;
    let joined = web.ok("join", Some(json!({"room": "den"}))).await;
    assert_eq!(joined["last_id"], 0);
    tcp.line().await; // joined
    for i in 1..=3 {
        tcp.send(&format!("seen {i}")).await;
        tcp.expect(&format!("{}: seen {i}", tcp.name)).await;
    }
    let mut last_seen = 0;
    for _ in 1..=3 {
        last_seen = web.event_skipping("message").await["id"].as_u64().unwrap();
    }
    assert_eq!(last_seen, 3);
    drop(web);

    // Missed while away.
    for i in 1..=5 {
        tcp.send(&format!("missed {i}")).await;
    }
    tcp.line().await; // left
    for i in 1..=5 {
        tcp.expect(&format!("{}: missed {i}", tcp.name)).await;
    }

    let mut web = server.socket().await;
    let joined = web
        .ok("join", Some(json!({"room": "den", "since": last_seen})))
        .await;
    assert_eq!(joined["last_id"], 8);
    let history = web.event_skipping("history").await;
    assert_eq!(history["complete"], true);
    let texts = common::sio::id_texts(&history);
    let expected: Vec<_> = (1..=5).map(|i| (3 + i, format!("missed {i}"))).collect();
    assert_eq!(texts, expected);
    // Then live, continuing without a gap or a repeat.
    tcp.send("live again").await;
    let live = web.event_skipping("message").await;
    assert_eq!(live["id"], 9);
    assert_eq!(
        web.error_code("join", Some(json!({"room": "den2", "since": "x"})))
            .await,
        "bad_request"
    );
}

async fn retention_keeps_the_newest_messages(mut config: Config) {
    config.retention.max_messages_per_room = Some(3);
    config.purge_interval = Duration::from_millis(200);
    let server = TestServer::start(config).await;
    let mut a = server.client().await;
    for i in 1..=10 {
        a.send(&format!("r{i}")).await;
        a.expect(&format!("{}: r{i}", a.name)).await;
    }
    let mut web = server.socket().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let page = web.ok("history", Some(json!({"limit": 50}))).await;
        let ids: Vec<_> = page["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_u64().unwrap())
            .collect();
        if ids == [8, 9, 10] {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not purged: {ids:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Rows a database made by the first schema version (0001) holds: room
/// `lobby` with messages 1 to 3.
const OLD_ROWS: &[&str] = &[
    "INSERT INTO rooms (key, name, created_at) VALUES ('lobby', 'lobby', 1)",
    "INSERT INTO messages (room, id, ts, sender, text, action) VALUES ('lobby', 1, 1, 'old', 'one', false)",
    "INSERT INTO messages (room, id, ts, sender, text, action) VALUES ('lobby', 2, 2, 'old', 'two', false)",
    "INSERT INTO messages (room, id, ts, sender, text, action) VALUES ('lobby', 3, 3, 'old', 'three', false)",
];

/// Starts the server on a database from before the room counter
/// (migration 0002): its messages keep their ids and new ones follow.
async fn ids_go_on_after_the_upgrade(config: Config) {
    let server = TestServer::start(config).await;
    let mut a = server.client().await;
    a.expect("* history of lobby (3):").await;
    for text in ["one", "two", "three"] {
        a.expect(&format!("[1970-01-01 00:00] old: {text}")).await;
    }
    a.expect("* end of history").await;
    a.send("four").await;
    a.expect(&format!("{}: four", a.name)).await;
    let query = hubbub::store::PageQuery {
        before: None,
        after: None,
        limit: 10,
    };
    let reader = server.hub.open("reader", false).await.unwrap();
    let (_, page, _) = server
        .hub
        .history(reader.id(), "lobby", query)
        .await
        .unwrap();
    let ids: Vec<u64> = page.iter().map(|m| m.id).collect();
    assert_eq!(ids, [1, 2, 3, 4]);
}

#[tokio::test]
async fn an_old_sqlite_database_is_upgraded() {
    let url = format!(
        "sqlite://{}?mode=rwc",
        common::data_dir().join("old.db").display()
    );
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let mut first = sqlx::migrate!("migrations/sqlite");
    first.migrations = std::borrow::Cow::Owned(first.migrations[..1].to_vec());
    first.run(&pool).await.unwrap();
    for row in OLD_ROWS {
        sqlx::query(row).execute(&pool).await.unwrap();
    }
    pool.close().await;
    ids_go_on_after_the_upgrade(Config {
        database_url: Some(url),
        ..common::config()
    })
    .await;
}

#[tokio::test]
async fn an_old_postgres_database_is_upgraded() {
    let schema = common::postgres_schema().await;
    let url = schema.url.clone();
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let mut first = sqlx::migrate!("migrations/postgres");
    first.migrations = std::borrow::Cow::Owned(first.migrations[..1].to_vec());
    first.run(&pool).await.unwrap();
    for row in OLD_ROWS {
        sqlx::query(row).execute(&pool).await.unwrap();
    }
    pool.close().await;
    ids_go_on_after_the_upgrade(Config {
        store: hubbub::config::StoreKind::Postgres,
        database_url: Some(url),
        ..common::config()
    })
    .await;
}

#[tokio::test]
async fn empty_rooms_leave_memory_and_come_back_with_their_history() {
    // Room limits count what is live: with at most 3 rooms in memory, one
    // client can still talk in 10 rooms one after the other, and each
    // comes back from the store, history included, when someone returns.
    let config = hubbub::Config {
        max_rooms: 3,
        ..common::config()
    };
    let server = TestServer::start(config).await;
    let mut ann = server.client().await;
    ann.nick("ann").await;
    for i in 0..10 {
        ann.send(&format!("/join room{i}")).await;
        ann.expect(&format!("* you are now in room{i} (1 member: ann)"))
            .await;
        ann.send(&format!("said in room{i}")).await;
        ann.expect(&format!("ann: said in room{i}")).await;
    }
    ann.send("/join lobby").await;
    ann.expect("* you are now in lobby (1 member: ann)").await;
    assert!(
        server.hub.room_count() <= 2,
        "{} rooms in memory",
        server.hub.room_count()
    );
    // Coming back to one brings its history with it.
    ann.send("/join room3").await;
    let header = ann.line().await;
    assert!(header.starts_with("* history of room3 (1"), "{header}");
    let line = ann.line().await;
    assert!(line.ends_with("ann: said in room3"), "{line}");
    ann.expect("* end of history").await;
    ann.expect("* you are now in room3 (1 member: ann)").await;
    // And its ids go on from the store.
    let mut web = server.socket().await;
    web.ok("join", Some(json!({"room": "room3"}))).await;
    ann.line().await; // the socket joined
    ann.send("again").await;
    let message = web.event_skipping("message").await;
    assert_eq!(message["text"], "again");
    assert_eq!(message["id"], 2);
}

/// A room whose rules alone are stored (no message yet) keeps its name
/// after a restart: a look-alike spelling (Cyrillic `е`) means that room,
/// with its rules, instead of creating a new room past them.
async fn a_look_alike_means_the_stored_room_after_a_restart(config: Config) {
    let server = TestServer::start(config.clone()).await;
    let mut owner = server.client().await;
    owner.nick("owner").await;
    owner.send("/register long enough").await;
    owner
        .expect("* you registered owner; you are logged in")
        .await;
    owner.send("/join Den").await;
    owner.line_starting("* you are now in Den").await;
    owner.send("/mode +i").await;
    owner.line_starting("* modes of Den").await;
    server.shutdown().await;

    let server = TestServer::start(config).await;
    let mut guest = server.client().await;
    guest.send("/join D\u{0435}n").await;
    guest
        .expect("! Den is invite-only: ask one of its operators for an invitation")
        .await;
    guest.send("/join d\u{0435}N").await;
    guest
        .expect("! Den is invite-only: ask one of its operators for an invitation")
        .await;
}
