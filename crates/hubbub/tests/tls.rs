//! TLS on every listener, against the real server: a TLS line client
//! chatting with a plain one, HTTPS (Engine.IO polling, the page) and a WSS
//! Socket.IO session, passwords over TLS from a non-loopback address, the
//! handshake timeout and the connection caps, a client that does not speak
//! TLS. Certificate reloads are in `tls_reload.rs`; flags, plain listeners
//! turned off and start-up errors in `tls_setup.rs`.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use common::sio::SioClient;
use common::tls::{self, client_trusting, presented, server_config, TestPki};
use common::{Client, TestServer, WAIT};
use hubbub::Config;
use rustls::pki_types::ServerName;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends `request` (a whole HTTP/1.1 request with `Connection: close`)
/// on `stream` and returns the response, head and body.
async fn exchange<S>(stream: &mut S, request: &str) -> String
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    let mut chunk = [0u8; 4096];
    // Until the server closes (a TLS close may come without close_notify).
    while let Ok(Ok(n)) = tokio::time::timeout(WAIT, stream.read(&mut chunk)).await {
        if n == 0 {
            break;
        }
        response.extend_from_slice(&chunk[..n]);
    }
    String::from_utf8_lossy(&response).into_owned()
}

fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
}

#[tokio::test]
async fn a_tls_line_client_chats_with_a_plain_one() {
    let pki = TestPki::new();
    let server = TestServer::start(server_config(&pki)).await;
    let stream = tls::connect(server.tls_tcp.unwrap(), pki.client())
        .await
        .expect("TLS handshake with the test CA");
    assert_eq!(presented(&stream), pki.leaf);
    let local = stream.get_ref().0.local_addr().unwrap().to_string();
    let mut secure = Client::greeted_over(stream, local.clone()).await;
    assert_eq!(
        secure.name, local,
        "named after its address, as plain clients"
    );
    let mut plain = server.client().await;
    secure
        .expect(&format!("{} has joined us", plain.name))
        .await;

    let old = secure.name.clone();
    secure.nick("alice").await;
    plain.expect(&format!("{old} is now known as alice")).await;
    let old = plain.name.clone();
    plain.nick("bob").await;
    secure.expect(&format!("{old} is now known as bob")).await;

    secure.send("hello over TLS").await;
    secure.expect("alice: hello over TLS").await;
    plain.expect("alice: hello over TLS").await;
    plain.send("hello in clear").await;
    plain.expect("bob: hello in clear").await;
    secure.expect("bob: hello in clear").await;
    secure.send("/msg bob psst").await;
    secure.expect("-> *bob* psst").await;
    plain.expect("*alice* psst").await;

    secure.send("/quit").await;
    secure.expect("* bye").await;
    assert_eq!(secure.try_line(WAIT).await, None, "closed after bye");
    server.shutdown().await;
}

#[tokio::test]
async fn https_serves_the_page_polling_and_a_wss_session() {
    let pki = TestPki::new();
    let server = TestServer::start(server_config(&pki)).await;
    let https = server.https.unwrap();

    // Offered h2 and HTTP/1.1, the server picks HTTP/1.1 (what its
    // WebSocket upgrade needs).
    let alpn = client_trusting(&pki.ca, &[b"h2", b"http/1.1"]);
    let mut stream = tls::connect(https, alpn.clone()).await.unwrap();
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    let handshake = exchange(&mut stream, &get("/socket.io/?EIO=4&transport=polling")).await;
    assert!(handshake.starts_with("HTTP/1.1 200"), "{handshake}");
    let body = &handshake[handshake.find("\r\n\r\n").unwrap() + 4..];
    assert!(
        body.starts_with("0{\"sid\":\""),
        "an Engine.IO open packet: {body}"
    );
    let sid = body["0{\"sid\":\"".len()..].split('"').next().unwrap();

    // The session is bound to TLS: its sid means nothing in plain HTTP.
    let mut clear = TcpStream::connect(server.http).await.unwrap();
    let answer = exchange(
        &mut clear,
        &get(&format!("/socket.io/?EIO=4&transport=polling&sid={sid}")),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    // Over TLS it is the session it was: a Socket.IO CONNECT posted, and
    // its answer polled.
    let mut stream = tls::connect(https, alpn.clone()).await.unwrap();
    let posted = exchange(
        &mut stream,
        &format!(
            "POST /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: 127.0.0.1\r\n\
             Content-Type: text/plain;charset=UTF-8\r\nContent-Length: 2\r\nConnection: close\r\n\r\n40"
        ),
    )
    .await;
    assert!(posted.starts_with("HTTP/1.1 200"), "{posted}");
    let mut stream = tls::connect(https, alpn.clone()).await.unwrap();
    let answer = exchange(
        &mut stream,
        &get(&format!("/socket.io/?EIO=4&transport=polling&sid={sid}")),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        answer.contains("40{\"sid\":"),
        "a Socket.IO CONNECT answer: {answer}"
    );

    let mut stream = tls::connect(https, alpn).await.unwrap();
    let page = exchange(&mut stream, &get("/")).await;
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(page.contains("text/html"), "{page}");

    // Socket.IO over WSS, next to a plain line client.
    let mut plain = server.client().await;
    let mut web = SioClient::connect_tls(https, pki.client()).await;
    plain.expect(&format!("{} has joined us", web.nick)).await;
    web.emit("chat", json!({"message": "over wss"})).await;
    plain.expect(&format!("{}: over wss", web.nick)).await;
    let own = web.event_skipping("message").await;
    assert_eq!(own["text"], "over wss");
    plain.send("back to wss").await;
    let message = web.event_skipping("message").await;
    assert_eq!(message["from"], plain.name.as_str());
    assert_eq!(message["text"], "back to wss");
    server.shutdown().await;
}

/// A TCP connection to `addr` whose receive buffer is small, so that the
/// server's writes to it block as soon as the client stops reading.
async fn small_window(addr: SocketAddr) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect(addr).await.unwrap()
}

#[tokio::test]
async fn tls_clients_that_read_late_get_every_message_in_order() {
    // Enough bytes to fill the socket buffers over and over: the server's
    // TLS writes block part-way and go on when the clients read again.
    // (That bytes TLS kept when a write blocked get flushed is tested
    // deterministically in `tls::stream`.)
    const LINES: usize = 1500;
    let pki = TestPki::new();
    let config = hubbub::Config {
        outbound_limit: 64 * 1024 * 1024,
        outbound_total_limit: 256 * 1024 * 1024,
        ..server_config(&pki)
    };
    let server = TestServer::start(config).await;
    let tls_tcp = small_window(server.tls_tcp.unwrap()).await;
    let name = ServerName::IpAddress(server.tls_tcp.unwrap().ip().into());
    let stream = tokio_rustls::TlsConnector::from(pki.client())
        .connect(name, tls_tcp)
        .await
        .unwrap();
    let mut secure = Client::greeted_over(stream, "tls".into()).await;
    let https = server.https.unwrap();
    let mut web = SioClient::connect_tls_on(small_window(https).await, https, pki.client()).await;
    secure.expect(&format!("{} has joined us", web.nick)).await;
    let mut sender = server.client().await;
    let text = |i: usize| format!("line {i} {}", "x".repeat(4000));
    let sending = tokio::spawn(async move {
        for i in 0..LINES {
            sender.send(&text(i)).await;
        }
        sender
    });
    // Nobody reads: the server's writes to both back up. Once the sender
    // has its last line back, that line was handed to every outbox.
    let mut sender = sending.await.unwrap();
    let last = format!("{}: {}", sender.name, text(LINES - 1));
    skip_to(&mut sender, &last).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    skip_to(&mut secure, &format!("{}: {}", sender.name, text(0))).await;
    for i in 1..LINES {
        secure
            .expect(&format!("{}: {}", sender.name, text(i)))
            .await;
    }
    for i in 0..LINES {
        let message = web.event_skipping("message").await;
        assert_eq!(message["text"], text(i).as_str());
    }
    server.shutdown().await;
}

/// Reads `client`'s lines until `expected`.
async fn skip_to(client: &mut Client, expected: &str) {
    while client.line().await != expected {}
}

/// An address of this machine that is not loopback (the one it would use
/// to reach the documentation network, 192.0.2.0/24; nothing is sent).
fn non_loopback_ip() -> Option<IpAddr> {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect("192.0.2.1:9").ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

#[tokio::test]
async fn passwords_from_a_non_loopback_address_need_tls() {
    // Listening on, and connecting to, the machine's own non-loopback
    // address: the server sees that address as the peer, not 127.0.0.1.
    let Some(ip) = non_loopback_ip() else {
        panic!("this test needs a non-loopback network interface");
    };
    let pki = TestPki::for_names(&["localhost", "127.0.0.1", &ip.to_string()]);
    let config = Config {
        tcp_addr: SocketAddr::new(ip, 0).to_string(),
        http_addr: SocketAddr::new(ip, 0).to_string(),
        tls_tcp_addr: Some(SocketAddr::new(ip, 0).to_string()),
        https_addr: Some(SocketAddr::new(ip, 0).to_string()),
        ..server_config(&pki)
    };
    let server = TestServer::start(config).await;
    let mut plain = server.client().await;
    assert!(
        plain.name.starts_with(&ip.to_string()),
        "the server sees {} as the peer",
        plain.name
    );
    plain.nick("plainpat").await;
    plain.send("/register correct horse battery").await;
    let refused = plain.line().await;
    assert!(
        refused.starts_with("! ") && refused.contains("not encrypted"),
        "{refused}"
    );

    let mut secure = tls::line_client(server.tls_tcp.unwrap(), pki.client()).await;
    assert!(secure.name.starts_with(&ip.to_string()), "{}", secure.name);
    plain
        .expect(&format!("{} has joined us", secure.name))
        .await;
    let old = secure.name.clone();
    secure.nick("tlstess").await;
    plain
        .expect(&format!("{old} is now known as tlstess"))
        .await;
    secure.send("/register correct horse battery").await;
    secure
        .expect("* you registered tlstess; you are logged in")
        .await;
    // Logging in to it in plain text is refused the same way.
    plain.send("/login tlstess correct horse battery").await;
    let refused = plain.line().await;
    assert!(refused.contains("not encrypted"), "{refused}");

    // Socket.IO the same: over WebSocket in plain text refused, over WSS
    // accepted.
    let mut ws = server.socket().await;
    ws.ok("set nickname", Some(json!("plainsam"))).await;
    let refused = ws
        .error_code("register", Some(json!({"password": "correct horse"})))
        .await;
    assert_eq!(refused, "insecure_connection");
    let mut wss = SioClient::connect_tls(server.https.unwrap(), pki.client()).await;
    wss.ok("set nickname", Some(json!("wsssam"))).await;
    let registered = wss
        .ok("register", Some(json!({"password": "correct horse"})))
        .await;
    assert_eq!(registered["nick"], "wsssam");
    server.shutdown().await;
}

/// The value of `series` (a metric name with its labels) as the admin
/// listener at `admin` shows it (0 before the first).
async fn metric(admin: SocketAddr, series: &str) -> f64 {
    let mut stream = TcpStream::connect(admin).await.unwrap();
    let metrics = exchange(&mut stream, &get("/metrics")).await;
    let series = format!("{series} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&series))
        .map_or(0.0, |v| v.parse().unwrap())
}

/// `hubbub_refusals_total{kind}` as the admin listener at `admin` shows it.
async fn refusals(admin: SocketAddr, kind: &str) -> f64 {
    metric(admin, &format!("hubbub_refusals_total{{kind=\"{kind}\"}}")).await
}

/// Waits until refusals of `kind` reach `at_least` (the server counts a
/// failed handshake just after the client sees it). Other tests of this
/// process may add to the counter, never take from it.
async fn refusals_reach(admin: SocketAddr, kind: &str, at_least: f64) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let now = refusals(admin, kind).await;
        if now >= at_least {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{kind} refusals: {now}, expected {at_least}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_silent_handshake_holds_a_slot_until_its_timeout() {
    let pki = TestPki::new();
    let timeout = Duration::from_millis(800);
    let config = Config {
        max_connections_per_ip: 1,
        tls_handshake_timeout: timeout,
        ..server_config(&pki)
    };
    let server = TestServer::start(config).await;
    let timeouts = refusals(server.admin, "tls_handshake_timeout").await;
    let started = tokio::time::Instant::now();
    let mut silent = TcpStream::connect(server.tls_tcp.unwrap()).await.unwrap();
    // Once the server has accepted it, it holds the address's one slot.
    let deadline = tokio::time::Instant::now() + WAIT;
    while metric(server.admin, "hubbub_sockets_open").await != 1.0 {
        assert!(tokio::time::Instant::now() < deadline, "never accepted");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // While it says nothing, it is this address's one connection: a plain
    // client is refused, and so is an HTTPS one (closed unanswered).
    let mut refused = Client::connect_raw(server.addr).await;
    let told = refused.read_to_end(WAIT).await;
    assert!(
        told.contains("too many connections from your address"),
        "{told:?}"
    );
    assert!(tls::connect(server.https.unwrap(), pki.client())
        .await
        .is_err());

    // The server closes it at the timeout, not before.
    let mut byte = [0u8; 1];
    let read = tokio::time::timeout(WAIT, silent.read(&mut byte))
        .await
        .expect("closed within the wait");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    let waited = started.elapsed();
    assert!(
        waited >= timeout,
        "closed after {waited:?}, before the timeout"
    );
    refusals_reach(server.admin, "tls_handshake_timeout", timeouts + 1.0).await;

    // And its slot is free again.
    let mut secure = tls::line_client(server.tls_tcp.unwrap(), pki.client()).await;
    secure.send("/who").await;
    assert!(secure.line().await.contains("1 member"));
    server.shutdown().await;
}

#[tokio::test]
async fn a_client_that_does_not_speak_tls_is_closed_and_counted() {
    let pki = TestPki::new();
    let server = TestServer::start(server_config(&pki)).await;
    let before = refusals(server.admin, "tls_handshake").await;
    let mut clear = TcpStream::connect(server.tls_tcp.unwrap()).await.unwrap();
    clear.write_all(b"hello\r\n").await.unwrap();
    let mut rest = Vec::new();
    // Closed at once (with a TLS alert at most), long before the 10 s
    // handshake timeout.
    let _ = tokio::time::timeout(Duration::from_secs(5), clear.read_to_end(&mut rest))
        .await
        .expect("closed at once");
    assert!(!String::from_utf8_lossy(&rest).contains("You are"));
    // A client that does not trust the certificate fails its handshake;
    // the server counts both (other tests may add to the process-wide
    // counter meanwhile, never take from it).
    let other = TestPki::new();
    assert!(tls::connect(server.tls_tcp.unwrap(), other.client())
        .await
        .is_err());
    refusals_reach(server.admin, "tls_handshake", before + 2.0).await;
    server.shutdown().await;
}
