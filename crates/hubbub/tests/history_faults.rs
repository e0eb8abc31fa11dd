//! History under faults: kill -9 under load, the database going away and
//! coming back, and stores that cannot be opened.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::{proxy::Proxy, sio::SioClient, Client, Process};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Clients send as fast as they can; each records what the server relayed
/// back to it (the line protocol's acknowledgement). Then kill -9, restart,
/// and every acknowledged message must be in history, with gap-free ids.
async fn kill_9_loses_nothing_acknowledged(store_args: Vec<String>) {
    let mut server =
        Process::start(&[&["--flood-rate".to_string(), "0".into()][..], &store_args].concat())
            .await;
    let mut senders = Vec::new();
    for c in 0..5 {
        let stream = TcpStream::connect(server.tcp).await.unwrap();
        senders.push(tokio::spawn(async move {
            let (read, mut write) = stream.into_split();
            let mut lines = BufReader::new(read).lines();
            let me = lines.next_line().await.unwrap().unwrap();
            let me = me.strip_prefix("You are ").unwrap().to_string();
            let writer = tokio::spawn(async move {
                for seq in 0.. {
                    let line = format!("k{c}-{seq}\n");
                    if write.write_all(line.as_bytes()).await.is_err() {
                        break;
                    }
                    if seq % 20 == 19 {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                }
            });
            let mut acknowledged = Vec::new();
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(text) = line.strip_prefix(&format!("{me}: ")) {
                    acknowledged.push(text.to_string());
                }
            }
            writer.abort();
            acknowledged
        }));
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    server.kill_9().await;
    let mut acknowledged = HashSet::new();
    for sender in senders {
        acknowledged.extend(sender.await.unwrap());
    }
    assert!(
        acknowledged.len() > 50,
        "load was applied ({})",
        acknowledged.len()
    );
    eprintln!("acknowledged before kill -9: {}", acknowledged.len());

    // Flood control off here too: reading back a fast store's history takes
    // many pages.
    let server =
        Process::start(&[&["--flood-rate".to_string(), "0".into()][..], &store_args].concat())
            .await;
    let mut web = SioClient::connect(server.http).await;
    let mut stored = Vec::new();
    let mut before: Option<u64> = None;
    loop {
        let page = web
            .ok("history", Some(json!({"limit": 500, "before": before})))
            .await;
        let messages = page["messages"].as_array().unwrap().clone();
        before = messages.first().map(|m| m["id"].as_u64().unwrap());
        for m in messages.iter().rev() {
            stored.push((
                m["id"].as_u64().unwrap(),
                m["text"].as_str().unwrap().to_string(),
            ));
        }
        if page["complete"] == true || messages.is_empty() {
            break;
        }
    }
    stored.reverse();
    let ids: Vec<u64> = stored.iter().map(|(id, _)| *id).collect();
    assert_eq!(
        ids,
        (1..=stored.len() as u64).collect::<Vec<_>>(),
        "gap-free ids"
    );
    eprintln!("stored after restart: {}", stored.len());
    let texts: HashSet<String> = stored.into_iter().map(|(_, t)| t).collect();
    let lost: Vec<_> = acknowledged.difference(&texts).collect();
    assert!(lost.is_empty(), "acknowledged but not stored: {lost:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_load_sqlite() {
    let dir = common::data_dir();
    kill_9_loses_nothing_acknowledged(vec!["--data-dir".into(), dir.display().to_string()]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_load_postgres() {
    let schema = common::postgres_schema().await;
    kill_9_loses_nothing_acknowledged(vec!["--database-url".into(), schema.url.clone()]).await;
}

#[tokio::test]
async fn a_database_outage_fails_requests_then_recovers() {
    let proxy = Proxy::start("127.0.0.1:5432".parse().unwrap()).await;
    let base = format!("postgres://postgres@{}/test", proxy.addr);
    let schema = common::postgres_schema_at(&base).await;
    let server = Process::start(&[
        "--database-url".into(),
        schema.url.clone(),
        "--flood-rate".into(),
        "0".into(),
    ])
    .await;
    let mut a = Client::connect(server.tcp).await;
    let mut b = Client::connect(server.tcp).await;
    a.line().await; // b joined
    a.send("before").await;
    a.expect(&format!("{}: before", a.name)).await;
    b.expect(&format!("{}: before", a.name)).await;

    proxy.cut();
    a.send("during").await;
    a.expect("! the message was not sent: the history store is unavailable")
        .await;
    // Nobody saw the message that could not be stored; the server is up.
    b.expect_silence(Duration::from_millis(300)).await;
    b.send("/who").await;
    assert!(b.line().await.starts_with("* lobby (2 members)"));

    proxy.restore();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        a.send("after").await;
        let line = a.line().await;
        if line == format!("{}: after", a.name) {
            break;
        }
        assert_eq!(
            line,
            "! the message was not sent: the history store is unavailable"
        );
        assert!(
            tokio::time::Instant::now() < deadline,
            "store never came back"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    b.expect(&format!("{}: after", a.name)).await;
    // History has what was acknowledged, without the failed message.
    let mut c = Client::connect(server.tcp).await;
    c.expect("* history of lobby (2):").await;
    assert!(c.line().await.ends_with(": before"));
    assert!(c.line().await.ends_with(": after"));
}

#[tokio::test]
async fn stores_that_cannot_be_opened_are_clear_errors() {
    let stderr =
        common::start_fails(&["--database-url", "postgres://postgres@127.0.0.1:1/test"]).await;
    assert!(
        stderr.contains("opening the PostgreSQL history store"),
        "{stderr}"
    );

    // A data dir that is a file.
    let dir = common::data_dir();
    let file = dir.join("not-a-dir");
    std::fs::write(&file, "x").unwrap();
    let stderr = common::start_fails(&["--data-dir", file.to_str().unwrap()]).await;
    assert!(stderr.contains("creating the data directory"), "{stderr}");

    // A corrupt database file.
    let dir = common::data_dir();
    std::fs::write(dir.join("hubbub.db"), vec![0x5a; 8192]).unwrap();
    let stderr = common::start_fails(&["--data-dir", dir.to_str().unwrap()]).await;
    assert!(
        stderr.contains("opening the SQLite history store"),
        "{stderr}"
    );

    let stderr = common::start_fails(&["--store", "postgres"]).await;
    assert!(
        stderr.contains("--store postgres needs --database-url"),
        "{stderr}"
    );

    // An in-memory SQLite database: each of the store's connections would
    // see its own, so commits would vanish from reads.
    let stderr = common::start_fails(&["--database-url", "sqlite::memory:"]).await;
    assert!(stderr.contains("use --store memory"), "{stderr}");
}
