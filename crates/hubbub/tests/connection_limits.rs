//! Every connection is bounded in number and time, on every listener: an
//! HTTP socket counts against the caps from accept to close whatever it
//! sends (or does not), silent and half-sent requests are closed, one IP at
//! its cap does not affect another, and running out of file descriptors
//! refuses new connections without stopping anyone already connected.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{Client, Process, TestServer};
use hubbub::Config;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// A connection from `local_ip` (127.0.0.x) to `addr`.
async fn connect_from(local_ip: &str, addr: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket
        .bind(format!("{local_ip}:0").parse().unwrap())
        .unwrap();
    socket.connect(addr).await.unwrap()
}

/// Reads until the server closes the connection (or `wait` passes: panics);
/// returns what it sent.
async fn read_until_closed(stream: &mut TcpStream, wait: Duration) -> String {
    let mut out = Vec::new();
    tokio::time::timeout(wait, stream.read_to_end(&mut out))
        .await
        .expect("the server closes the connection in time")
        .ok();
    String::from_utf8_lossy(&out).into_owned()
}

/// Reads `client`'s lines until `expected`, skipping join and leave
/// announcements (of connections the test opened to load the server).
async fn expect_past_presence(client: &mut Client, expected: &str) {
    loop {
        let line = client.line().await;
        if line == expected {
            return;
        }
        assert!(
            line.ends_with(" has joined us") || line.contains(" has left"),
            "{}: unexpected line {line:?} (waiting for {expected:?})",
            client.name
        );
    }
}

fn capped(per_ip: usize) -> Config {
    Config {
        max_connections_per_ip: per_ip,
        http_header_timeout: Duration::from_secs(1),
        http_idle_timeout: Duration::from_secs(2),
        ..common::config()
    }
}

#[tokio::test]
async fn silent_http_sockets_count_against_the_caps_on_every_listener() {
    let server = TestServer::start(capped(5)).await;
    // Five sockets to the HTTP port that send nothing take 127.0.0.1's slots.
    let mut silent = Vec::new();
    for _ in 0..5 {
        silent.push(connect_from("127.0.0.1", server.http).await);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    // A sixth HTTP socket is refused with 503 and closed; so is a line client.
    let mut sixth = connect_from("127.0.0.1", server.http).await;
    let answer = read_until_closed(&mut sixth, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(
        answer.contains("too many connections from your address"),
        "{answer}"
    );
    let mut line = connect_from("127.0.0.1", server.addr).await;
    let answer = read_until_closed(&mut line, Duration::from_secs(5)).await;
    assert!(answer.starts_with("! too many connections"), "{answer}");

    // Another address is not affected.
    let other = connect_from("127.0.0.2", server.addr).await;
    let mut other = Client::greeted(other).await;
    assert!(other.name.starts_with("127.0.0.2:"), "{}", other.name);

    // The silent sockets are closed once idle for 2 s, which frees the slots.
    let started = Instant::now();
    for stream in &mut silent {
        read_until_closed(stream, Duration::from_secs(10)).await;
    }
    assert!(started.elapsed() < Duration::from_secs(8));
    drop(silent);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let again = connect_from("127.0.0.1", server.addr).await;
    Client::greeted(again).await;
    other.send("still here").await;
    let expected = format!("{}: still here", other.name);
    expect_past_presence(&mut other, &expected).await;
}

#[tokio::test]
async fn half_sent_requests_are_closed_at_the_header_timeout() {
    let server = TestServer::start(capped(0)).await;
    for partial in [&b"GET / HTT"[..], b"GET / HTTP/1.1\r\nHost: x\r\n"] {
        let mut stream = TcpStream::connect(server.http).await.unwrap();
        stream.write_all(partial).await.unwrap();
        let started = Instant::now();
        read_until_closed(&mut stream, Duration::from_secs(5)).await;
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "closed after {:?}",
            started.elapsed()
        );
    }
    // A keep-alive connection that goes quiet after a request is closed too.
    let mut stream = TcpStream::connect(server.http).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let answer = read_until_closed(&mut stream, Duration::from_secs(6)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[tokio::test]
async fn a_websocket_session_holds_its_slot_until_it_closes() {
    let server = TestServer::start(capped(2)).await;
    let first = server.socket().await;
    let _second = server.socket().await;
    // Two WebSocket sessions fill 127.0.0.1's two slots: a third socket is
    // refused, even a plain HTTP request.
    let mut third = connect_from("127.0.0.1", server.http).await;
    let answer = read_until_closed(&mut third, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    drop(first);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut fourth = connect_from("127.0.0.1", server.http).await;
    fourth
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let answer = read_until_closed(&mut fourth, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn running_out_of_file_descriptors_refuses_new_connections_only() {
    // The server with at most 64 open files (it raises its soft limit to the
    // hard one at start, so both are set).
    let data = common::data_dir();
    let server = Process::start_with_open_files(
        64,
        &[
            "--max-connections-per-ip".into(),
            "0".into(),
            "--flood-rate".into(),
            "0".into(),
            "--data-dir".into(),
            data.display().to_string(),
        ],
    )
    .await;
    let mut alice = Client::connect(server.tcp).await;
    let mut bob = Client::connect(server.tcp).await;
    alice.line().await; // bob joined

    // Far more connections than descriptors, to both listeners.
    let mut flood = Vec::new();
    for i in 0..120 {
        let addr = if i % 2 == 0 { server.tcp } else { server.http };
        if let Ok(Ok(stream)) =
            tokio::time::timeout(Duration::from_secs(1), TcpStream::connect(addr)).await
        {
            flood.push(stream);
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Those already connected carry on.
    bob.send("hello").await;
    expect_past_presence(&mut alice, &format!("{}: hello", bob.name)).await;

    // Once the flood is gone, new clients get in again.
    drop(flood);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut carol = Client::connect(server.tcp).await;
    carol.send("back").await;
    expect_past_presence(&mut alice, &format!("{}: back", carol.name)).await;

    // The log says so, rate-limited: not one line per refused attempt.
    let warned = server.log_count("out_of_descriptors");
    assert!((1..=3).contains(&warned), "{warned} warnings");
}
