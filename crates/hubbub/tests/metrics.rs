//! An operator sees what is happening: after a scripted session the
//! Prometheus counters on the admin listener have moved, and `/readyz` says
//! whether the history store answers.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{proxy::Proxy, Client, Process, TestServer};
use hubbub::Config;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// `GET path` on `addr`: (status, body).
async fn get(addr: SocketAddr, path: &str, origin: Option<&str>) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let origin = origin.map_or(String::new(), |o| format!("Origin: {o}\r\n"));
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{origin}Connection: close\r\n\r\n")
                .as_bytes(),
        )
        .await
        .unwrap();
    let mut response = String::new();
    tokio::time::timeout(common::WAIT, stream.read_to_string(&mut response))
        .await
        .expect("answer in time")
        .unwrap();
    let status = response.split(' ').nth(1).unwrap().parse().unwrap();
    let body = response
        .split_once("\r\n\r\n")
        .map_or(String::new(), |(_, b)| b.to_string());
    (status, body)
}

/// The value of the series `name{labels}` (labels as rendered, or none).
fn value(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no series {series} in:\n{metrics}"))
}

#[tokio::test]
async fn counters_move_with_a_scripted_session() {
    let server = TestServer::start(Config {
        flood_rate: 1.0,
        flood_burst: 3,
        ..common::config()
    })
    .await;
    let (_, before) = get(server.admin, "/metrics", None).await;
    let accepted_before = before
        .lines()
        .find_map(|l| {
            l.strip_prefix("hubbub_connections_accepted_total{listener=\"line\"} ")?
                .parse::<f64>()
                .ok()
        })
        .unwrap_or(0.0);

    let mut a = server.client().await;
    let mut web = server.socket().await;
    a.line().await; // the socket joined
    a.send("hello").await;
    a.expect(&format!("{}: hello", a.name)).await;
    web.ok("message", Some(json!({"text": "hi"}))).await;
    // Past the burst: refused for flooding.
    for i in 0..6 {
        a.send(&format!("flood {i}")).await;
    }
    // A page from another site.
    let (status, _) = get(
        server.http,
        "/socket.io/?EIO=4&transport=polling",
        Some("https://evil.example"),
    )
    .await;
    assert_eq!(status, 403);
    tokio::time::sleep(Duration::from_millis(300)).await;

    let (status, metrics) = get(server.admin, "/metrics", None).await;
    assert_eq!(status, 200);
    assert!(
        value(
            &metrics,
            "hubbub_connections_accepted_total{listener=\"line\"}"
        ) > accepted_before
    );
    assert!(
        value(
            &metrics,
            "hubbub_connections_accepted_total{listener=\"http\"}"
        ) >= 1.0
    );
    assert!(value(&metrics, "hubbub_sessions_opened_total{transport=\"line\"}") >= 1.0);
    assert!(
        value(
            &metrics,
            "hubbub_sessions_opened_total{transport=\"socketio\"}"
        ) >= 1.0
    );
    assert!(
        value(
            &metrics,
            "hubbub_messages_received_total{transport=\"line\"}"
        ) >= 1.0
    );
    assert!(
        value(
            &metrics,
            "hubbub_messages_received_total{transport=\"socketio\"}"
        ) >= 1.0
    );
    assert!(value(&metrics, "hubbub_deliveries_total{transport=\"line\"}") >= 2.0);
    assert!(value(&metrics, "hubbub_deliveries_total{transport=\"socketio\"}") >= 2.0);
    assert!(value(&metrics, "hubbub_sent_bytes_total{transport=\"line\"}") > 0.0);
    assert!(value(&metrics, "hubbub_flood_refusals_total{transport=\"line\"}") >= 1.0);
    assert!(value(&metrics, "hubbub_refusals_total{kind=\"origin\"}") >= 1.0);
    assert!(value(&metrics, "hubbub_store_commit_seconds_count") >= 2.0);
    assert!(value(&metrics, "hubbub_sockets_open") >= 2.0);
    assert!(value(&metrics, "hubbub_sessions_open") >= 2.0);
    // Never labelled by user, nick or room.
    assert!(!metrics.contains(&a.name) && !metrics.contains("lobby"));

    // A client that has not flooded quits.
    let mut b = server.client().await;
    b.send("/quit").await;
    let bye = b.read_to_end(common::WAIT).await;
    assert!(bye.ends_with("* bye\n"), "{bye}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, metrics) = get(server.admin, "/metrics", None).await;
    assert!(
        value(
            &metrics,
            "hubbub_sessions_closed_total{transport=\"line\",reason=\"quit\"}"
        ) >= 1.0
    );

    // The admin listener is not the public one.
    let (status, _) = get(server.http, "/metrics", None).await;
    assert_eq!(status, 404);
    let (status, body) = get(server.admin, "/readyz", None).await;
    assert_eq!((status, body.as_str()), (200, "ready\n"));
}

#[tokio::test]
async fn readyz_fails_while_the_store_is_unreachable() {
    let proxy = Proxy::start("127.0.0.1:5432".parse().unwrap()).await;
    let base = format!("postgres://postgres@{}/test", proxy.addr);
    let schema = common::postgres_schema_at(&base).await;
    let server = Process::start(&["--database-url".into(), schema.url.clone()]).await;
    let admin = server.admin;
    let (status, _) = get(admin, "/readyz", None).await;
    assert_eq!(status, 200);
    proxy.cut();
    let (status, body) = get(admin, "/readyz", None).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("history store"), "{body}");
    proxy.restore();
    let mut ready = false;
    for _ in 0..50 {
        if get(admin, "/readyz", None).await.0 == 200 {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(ready, "ready again once the database is back");
    drop(Client::connect(server.tcp).await);
}
