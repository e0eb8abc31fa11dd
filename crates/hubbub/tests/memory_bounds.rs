//! Memory that grows with input has a bound in bytes: one client writing
//! long lines into many rooms cannot grow the rooms' history caches past
//! `--history-cache-bytes`, and what it wrote is still served from the
//! store.

mod common;

use std::time::Duration;

use common::{Client, Process};

/// VmRSS of `pid`, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_client_writing_long_lines_into_many_rooms_stays_within_the_cache_budget() {
    const ROOMS: usize = 100;
    const LINES: usize = 100;
    const BUDGET: usize = 2 * 1024 * 1024;
    let server = Process::start(&[
        "--store".into(),
        "memory".into(),
        "--flood-rate".into(),
        "0".into(),
        "--history-cache-bytes".into(),
        BUDGET.to_string(),
    ])
    .await;
    let pid = server.child.id().unwrap();
    let baseline = rss_kib(pid);

    // 100 rooms × 100 lines of 4 KB: 40 MB of text, ~120 MB of cache
    // without the budget.
    let mut client = Client::connect(server.tcp).await;
    let line = "x".repeat(4000);
    for room in 0..ROOMS {
        client.send(&format!("/join r{room}")).await;
        loop {
            if client.line().await.starts_with("* you are now in") {
                break;
            }
        }
        for _ in 0..LINES {
            client.send(&line).await;
        }
        for _ in 0..LINES {
            let echo = client.line().await;
            assert!(
                echo.ends_with(&line[..100]),
                "{}",
                &echo[..echo.len().min(80)]
            );
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let grown = rss_kib(pid).saturating_sub(baseline);
    eprintln!("RSS grew by {grown} KiB for 40 MB of text (budget {BUDGET} bytes)");
    // The budget plus the connection's buffers and allocator slack; without
    // the budget this is over 100 MiB.
    assert!(grown < 24 * 1024, "RSS grew by {grown} KiB");

    // The cache holds what fits: the last rooms written, not the first.
    client.send("/join r98").await;
    let mut history = 0;
    loop {
        let l = client.line().await;
        if l == "* end of history" {
            break;
        }
        history += usize::from(l.starts_with('['));
    }
    assert_eq!(history, 20, "the most recent room kept its cache");
}

/// `GET /metrics` on the admin listener.
async fn metrics(admin: std::net::SocketAddr) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(admin).await.unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = String::new();
    stream.read_to_string(&mut out).await.unwrap();
    out
}

fn series(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_slow_readers_together_stay_within_the_total_outbound_bound() {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    // (Which sessions go first is a heuristic a slow test machine can blur:
    // the writer's own reading may lag. What must hold is the bound.)
    const TOTAL: usize = 2 * 1024 * 1024;
    // Each silent socket can absorb up to tcp_wmem's maximum (4 MiB by
    // default) in the kernel: send more than that, whatever the timing.
    const LINES: usize = 1500;
    let server = common::TestServer::start(hubbub::Config {
        outbound_limit: TOTAL / 2,
        outbound_total_limit: TOTAL,
        ..common::config()
    })
    .await;
    // Twelve clients that never read; each may queue half the total, so
    // together they pass it long before each meets its own bound.
    // (A small receive buffer, so the kernel does not absorb megabytes for
    // them before their queues grow.)
    let mut silent = Vec::new();
    for _ in 0..12 {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        silent.push(socket.connect(server.addr).await.unwrap());
    }
    // A writer that reads its echoes meanwhile.
    let stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let (read, mut write) = stream.into_split();
    let reader = tokio::spawn(async move {
        let mut lines = BufReader::new(read).lines();
        while let Ok(Some(_)) = lines.next_line().await {}
    });
    let line = format!("{}\n", "y".repeat(4000));
    for _ in 0..LINES {
        if write.write_all(line.as_bytes()).await.is_err() {
            break;
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    reader.abort();

    let metrics = metrics(server.admin).await;
    let shed = series(&metrics, "hubbub_refusals_total{kind=\"outbound_total\"}");
    assert!(shed >= 1.0, "the largest queues were shed:\n{metrics}");
    let queued = series(&metrics, "hubbub_outbound_queued_bytes");
    assert!(queued <= TOTAL as f64, "{queued} bytes queued");
    drop(silent);
    // The server goes on serving.
    let mut fresh = Client::connect(server.addr).await;
    fresh.send("hello").await;
    loop {
        if fresh.line().await == format!("{}: hello", fresh.name) {
            break;
        }
    }
}

/// Opens a WebSocket to `http`'s Engine.IO endpoint over a socket with a
/// small receive buffer, reading nothing but the upgrade's answer.
async fn raw_websocket(http: std::net::SocketAddr) -> tokio::net::TcpStream {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stream = socket.connect(http).await.unwrap();
    let request = format!(
        "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: {http}\r\n\
         Upgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        stream.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    stream
}

/// A masked client frame (RFC 6455 §5.2) of `opcode` carrying `payload`
/// (under 126 bytes).
fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x12, 0x34, 0x56, 0x78];
    let mut frame = vec![0x80 | opcode, 0x80 | payload.len() as u8];
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    frame
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_pings_and_never_reads_cannot_grow_the_server() {
    use tokio::io::AsyncWriteExt;
    let server = Process::start(&[
        "--store".into(),
        "memory".into(),
        // Flood control off: the bound on unwritten replies alone holds.
        "--flood-rate".into(),
        "0".into(),
    ])
    .await;
    let pid = server.child.id().unwrap();
    let baseline = rss_kib(pid);
    // WebSocket pings and Engine.IO pings, 64 KiB per write, until the
    // server stops reading (the writes stall) or 200 MB were offered.
    let mut burst = Vec::new();
    while burst.len() < 64 * 1024 {
        burst.extend(client_frame(0x9, b"ping-payload"));
        burst.extend(client_frame(0x1, b"2ping"));
    }
    let mut streams = Vec::new();
    for _ in 0..4 {
        let mut stream = raw_websocket(server.http).await;
        let mut offered = 0usize;
        while offered < 200 * 1024 * 1024 {
            match tokio::time::timeout(Duration::from_millis(500), stream.write_all(&burst)).await {
                Ok(Ok(())) => offered += burst.len(),
                Ok(Err(_)) | Err(_) => break,
            }
        }
        assert!(
            offered < 200 * 1024 * 1024,
            "the server kept reading {offered} bytes of pings from a client that reads nothing"
        );
        streams.push(stream);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let grown = rss_kib(pid).saturating_sub(baseline);
    assert!(
        grown < 32 * 1024,
        "RSS grew {grown} KiB for four clients that ping and never read"
    );
}

#[tokio::test]
async fn pings_spend_the_flood_budget_like_requests() {
    // Default flood control: 10 a second, bursts of 20, disconnected
    // after 50 refusals within 10 s.
    let server = common::TestServer::start(hubbub::Config {
        flood_rate: 10.0,
        ..common::config()
    })
    .await;
    let mut client = common::sio::SioClient::connect(server.http).await;
    // A burst of 20, then 50 refusals: disconnected at the 71st.
    for _ in 0..71 {
        client.send_raw("2").await;
    }
    client.expect_closed().await;
}
