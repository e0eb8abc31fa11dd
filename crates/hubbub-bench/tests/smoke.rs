//! Smoke test of the load generator against an in-process hubbub, so the
//! harness cannot rot: small runs over both protocols must deliver every
//! message. Counts only; timings are never asserted.

use std::net::SocketAddr;
use std::path::PathBuf;

use hubbub_bench::{run, Options, Proto, Report};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

struct TestServer {
    tcp: SocketAddr,
    http: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<anyhow::Result<()>>,
    data_dir: PathBuf,
}

/// A fresh data directory, so the history store starts empty.
fn data_dir(name: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    std::env::temp_dir().join(format!(
        "hubbub-bench-smoke-{name}-{}-{nanos}",
        std::process::id()
    ))
}

async fn start(name: &str) -> TestServer {
    let data_dir = data_dir(name);
    let config = hubbub::Config {
        tcp_addr: "127.0.0.1:0".into(),
        http_addr: "127.0.0.1:0".into(),
        admin_addr: "127.0.0.1:0".into(),
        flood_rate: 0.0,
        data_dir: data_dir.clone(),
        ..Default::default()
    };
    let server = hubbub::Server::bind(config).await.expect("bind");
    let (tcp, http) = (server.tcp_addr(), server.http_addr());
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(server.run(async {
        let _ = stopped.await;
    }));
    TestServer {
        tcp,
        http,
        stop,
        task,
        data_dir,
    }
}

impl TestServer {
    async fn stop(self) {
        let _ = self.stop.send(());
        let _ = tokio::time::timeout(std::time::Duration::from_secs(30), self.task).await;
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

fn options(proto: Proto, server: &TestServer) -> Options {
    Options {
        proto,
        addr: match proto {
            Proto::Tcp => server.tcp.to_string(),
            Proto::Socketio => server.http.to_string(),
        },
        clients: 20,
        senders: 2,
        messages: 10,
        payload: 48,
        timeout: 60.0,
        drain: 10.0,
        quiet_ms: 200,
        settle_max: 20.0,
        ..Options::default()
    }
}

fn assert_complete(report: &Report, expected: u64) {
    let text = report.to_text();
    assert_eq!(report.connected, report.clients, "{text}");
    assert_eq!(report.expected, expected, "{text}");
    assert_eq!(report.lost, 0, "{text}");
    assert_eq!(report.received, expected, "{text}");
    assert!(report.deliveries_per_sec > 0.0, "{text}");
    assert!(report.latency_ms.is_some(), "{text}");
    assert!(!report.timed_out, "{text}");
    assert_eq!(report.closed_early, 0, "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fan_out_over_tcp_and_socketio_loses_nothing() {
    let server = start("fanout").await;
    for proto in [Proto::Tcp, Proto::Socketio] {
        let report = run(options(proto, &server)).await.expect("run");
        // 2 senders × 10 messages, each to all 20 clients.
        assert_complete(&report, 400);
        assert!(!report.has_problems(), "{}", report.to_text());
        // A report survives the JSON round trip `hubbub-bench report` relies on.
        let json = serde_json::to_string(&report).unwrap();
        let back: Report = serde_json::from_str(&json).unwrap();
        assert_eq!(back.received, report.received);
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_and_a_fixed_rate_over_both_protocols() {
    let server = start("rooms").await;
    for proto in [Proto::Tcp, Proto::Socketio] {
        let report = run(Options {
            rooms: 2,
            senders: 4,
            rate: 200.0,
            ..options(proto, &server)
        })
        .await
        .expect("run");
        // 4 senders × 10 messages, each to the 10 clients of its room.
        assert_complete(&report, 400);
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_only_reads_the_servers_rss() {
    let server = start("idle").await;
    let report = run(Options {
        idle_only: true,
        // The server runs in this process.
        pid: Some(std::process::id()),
        ..options(Proto::Tcp, &server)
    })
    .await
    .expect("run");
    assert_eq!(report.connected, 20);
    assert_eq!(report.sent, 0);
    let rss = report.rss.expect("rss read from /proc");
    assert!(rss.baseline_kib > 0 && rss.idle_kib > 0);
    server.stop().await;
}
