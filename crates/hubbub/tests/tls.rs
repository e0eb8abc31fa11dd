//! TLS on every listener, against the real server: a TLS line client
//! chatting with a plain one, HTTPS (Engine.IO polling, the page) and a WSS
//! Socket.IO session, passwords over TLS from a non-loopback address, the
//! handshake timeout and the connection caps, certificate reloads (the
//! function SIGHUP calls, and SIGHUP sent to the binary), plain listeners
//! turned off, and clear start-up errors for bad certificates.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use common::sio::SioClient;
use common::tls::{self, client_trusting, presented, TestPki};
use common::{Client, Process, TestServer, WAIT};
use hubbub::config::Options;
use hubbub::{Config, Server};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The test configuration with TLS on, every listener on loopback port 0.
fn tls_config(pki: &TestPki) -> Config {
    Config {
        tls_cert: Some(pki.cert.clone()),
        tls_key: Some(pki.key.clone()),
        tls_tcp_addr: Some("127.0.0.1:0".into()),
        https_addr: Some("127.0.0.1:0".into()),
        ..common::config()
    }
}

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
    let server = TestServer::start(tls_config(&pki)).await;
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
    let server = TestServer::start(tls_config(&pki)).await;
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
        tls_tcp_addr: Some(SocketAddr::new(ip, 0).to_string()),
        ..tls_config(&pki)
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
    server.shutdown().await;
}
