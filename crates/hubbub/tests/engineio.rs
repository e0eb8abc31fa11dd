//! Engine.IO as the real server speaks it: long-polling, the upgrade to
//! WebSocket, the heartbeat, its errors and limits, and the choice of
//! vocabulary in the Socket.IO CONNECT.

mod common;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

use common::{TestServer, WAIT};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

const SEP: char = '\u{1e}';

/// One HTTP/1.1 request on its own connection: (status, body).
async fn http(addr: SocketAddr, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: text/plain;charset=UTF-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut response))
        .await
        .expect("answered in time")
        .unwrap();
    let response = String::from_utf8(response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, body.to_string())
}

/// A polling session: its id and the handshake's data.
async fn handshake(addr: SocketAddr) -> (String, Value) {
    let (status, body) = http(addr, "GET", "/socket.io/?EIO=4&transport=polling", "").await;
    assert_eq!(status, 200, "{body}");
    let open: Value = serde_json::from_str(body.strip_prefix('0').expect("open packet")).unwrap();
    (open["sid"].as_str().unwrap().to_string(), open)
}

fn poll_path(sid: &str) -> String {
    format!("/socket.io/?EIO=4&transport=polling&sid={sid}")
}

/// A polling session's client side: packets received but not yet looked at.
struct Poller {
    addr: SocketAddr,
    sid: String,
    received: VecDeque<String>,
}

impl Poller {
    /// Long-polls until a packet starting with `prefix` arrives; returns it
    /// (packets before it are dropped).
    async fn until(&mut self, prefix: &str) -> String {
        loop {
            while let Some(packet) = self.received.pop_front() {
                if packet.starts_with(prefix) {
                    return packet;
                }
            }
            let (status, body) = http(self.addr, "GET", &poll_path(&self.sid), "").await;
            assert_eq!(status, 200, "{body}");
            self.received.extend(body.split(SEP).map(str::to_string));
        }
    }

    async fn post(&self, body: &str) -> (u16, String) {
        http(self.addr, "POST", &poll_path(&self.sid), body).await
    }
}

/// A connected polling socket: handshake, CONNECT, its `welcome`; its nick.
async fn polling_socket(addr: SocketAddr) -> (Poller, String) {
    let (sid, _) = handshake(addr).await;
    let mut poller = Poller {
        addr,
        sid,
        received: VecDeque::new(),
    };
    assert_eq!(poller.post("40").await, (200, "ok".into()));
    let welcome = poller.until("42[\"welcome\"").await;
    let welcome: Value = serde_json::from_str(&welcome[2..]).unwrap();
    (poller, welcome[1]["nick"].as_str().unwrap().to_string())
}

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

async fn websocket(addr: SocketAddr, sid: Option<&str>) -> Ws {
    let mut url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket");
    if let Some(sid) = sid {
        url.push_str(&format!("&sid={sid}"));
    }
    let (ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    ws
}

/// The next text frame (pings included).
async fn text(ws: &mut Ws) -> String {
    loop {
        match tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("frame in time")
        {
            Some(Ok(Message::Text(t))) => return t.as_str().to_string(),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            other => panic!("expected a text frame, got {other:?}"),
        }
    }
}

/// Reads text frames until one starts with `prefix`, answering pings.
async fn text_until(ws: &mut Ws, prefix: &str) -> String {
    loop {
        let frame = text(ws).await;
        if frame == "2" {
            ws.send(Message::text("3")).await.unwrap();
        } else if frame.starts_with(prefix) {
            return frame;
        }
    }
}

/// A WebSocket socket connected with `auth` (JSON, may be empty); its nick.
async fn ws_socket(addr: SocketAddr, auth: &str) -> (Ws, String) {
    let mut ws = websocket(addr, None).await;
    assert!(text(&mut ws).await.starts_with('0'));
    ws.send(Message::text(format!("40{auth}"))).await.unwrap();
    assert!(text(&mut ws).await.starts_with("40{\"sid\""));
    let welcome = text_until(&mut ws, "42[\"welcome\"").await;
    let welcome: Value = serde_json::from_str(&welcome[2..]).unwrap();
    let nick = welcome[1]["nick"].as_str().unwrap().to_string();
    (ws, nick)
}

#[tokio::test]
async fn a_polling_client_chats_with_a_tcp_user() {
    let server = TestServer::default().await;
    let mut tcp = server.client().await;
    let (sid, open) = handshake(server.http).await;
    assert_eq!(open["upgrades"], serde_json::json!(["websocket"]));
    assert_eq!(open["pingInterval"], 25_000);
    assert_eq!(open["pingTimeout"], 20_000);
    assert!(open["maxPayload"].as_u64().unwrap() > 3 * 4096);
    assert_eq!(sid.len(), 20);
    let mut poller = Poller {
        addr: server.http,
        sid,
        received: VecDeque::new(),
    };
    assert_eq!(poller.post("40").await.1, "ok");
    let connected = poller.until("40").await;
    assert!(connected.starts_with("40{\"sid\":"), "{connected}");
    let nick = {
        let welcome = poller.until("42[\"welcome\"").await;
        let welcome: Value = serde_json::from_str(&welcome[2..]).unwrap();
        welcome[1]["nick"].as_str().unwrap().to_string()
    };
    tcp.expect(&format!("{nick} has joined us")).await;
    // Two packets in one body, separated as the protocol says.
    let body =
        format!("421[\"message\",{{\"text\":\"one\"}}]{SEP}422[\"message\",{{\"text\":\"two\"}}]");
    assert_eq!(poller.post(&body).await.1, "ok");
    tcp.expect(&format!("{nick}: one")).await;
    tcp.expect(&format!("{nick}: two")).await;
    assert!(poller.until("432[").await.contains("\"ok\""));
    tcp.send("hello polling").await;
    tcp.expect(&format!("{}: hello polling", tcp.name)).await;
    let message = poller.until("42[\"message\"").await;
    assert!(message.contains("hello polling"), "{message}");
    // The client closes: the room hears it left.
    assert_eq!(poller.post("1").await.1, "ok");
    tcp.expect(&format!("{} has left", nick)).await;
}

#[tokio::test]
async fn engine_io_errors_are_the_reference_servers() {
    let server = TestServer::default().await;
    let addr = server.http;
    let (status, body) = http(addr, "GET", "/socket.io/?EIO=3&transport=polling", "").await;
    assert_eq!((status, body.contains("\"code\":5")), (400, true), "{body}");
    let (status, body) = http(
        addr,
        "GET",
        "/socket.io/?EIO=4&transport=carrier-pigeon",
        "",
    )
    .await;
    assert_eq!((status, body.contains("\"code\":0")), (400, true), "{body}");
    let (status, body) = http(addr, "GET", &poll_path("nosuchsession"), "").await;
    assert_eq!((status, body.contains("\"code\":1")), (400, true), "{body}");
    let (status, _) = http(addr, "POST", "/socket.io/?EIO=4&transport=polling", "40").await;
    assert_eq!(status, 400);
    // A body past maxPayload is refused; the session carries on.
    let (poller, nick) = polling_socket(addr).await;
    let (status, _) = poller.post(&"4".repeat(1 << 20)).await;
    assert_eq!(status, 413);
    let mut tcp = server.client().await;
    let ok = poller.post(r#"42["message",{"text":"still here"}]"#).await;
    assert_eq!(ok.1, "ok");
    tcp.expect(&format!("{nick}: still here")).await;
}

#[tokio::test]
async fn two_long_polls_at_once_end_the_session() {
    let server = TestServer::default().await;
    let mut tcp = server.client().await;
    let (poller, nick) = polling_socket(server.http).await;
    let sid = poller.sid.clone();
    tcp.expect(&format!("{nick} has joined us")).await;
    let addr = server.http;
    let path = poll_path(&sid);
    let first = tokio::spawn(async move { http(addr, "GET", &path, "").await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (status, _) = http(addr, "GET", &poll_path(&sid), "").await;
    assert_eq!(status, 400);
    // The waiting poll is answered with a close packet.
    assert_eq!(first.await.unwrap(), (200, "1".into()));
    tcp.expect(&format!("{nick} has left")).await;
    let (status, _) = http(addr, "GET", &poll_path(&sid), "").await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn the_upgrade_to_websocket_loses_and_repeats_nothing() {
    let server = TestServer::default().await;
    let mut tcp = server.client().await;
    let (mut poller, nick) = polling_socket(server.http).await;
    let sid = poller.sid.clone();
    tcp.expect(&format!("{nick} has joined us")).await;
    tcp.send("before").await;
    tcp.expect(&format!("{}: before", tcp.name)).await;
    let before = poller.until("42[\"message\"").await;
    assert!(before.contains("\"before\""));

    // A long-poll waits while the WebSocket probes.
    let addr = server.http;
    let path = poll_path(&sid);
    let waiting = tokio::spawn(async move { http(addr, "GET", &path, "").await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut ws = websocket(server.http, Some(&sid)).await;
    ws.send(Message::text("2probe")).await.unwrap();
    assert_eq!(text(&mut ws).await, "3probe");
    // The waiting poll ends with a noop so the client can pause polling.
    assert_eq!(waiting.await.unwrap(), (200, "6".into()));
    // Messages sent during the upgrade wait for the new transport.
    tcp.send("during").await;
    tcp.expect(&format!("{}: during", tcp.name)).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    ws.send(Message::text("5")).await.unwrap();
    tcp.send("after").await;
    tcp.expect(&format!("{}: after", tcp.name)).await;
    let mut got = Vec::new();
    while got.len() < 2 {
        let frame = text_until(&mut ws, "42[\"message\"").await;
        let message: Value = serde_json::from_str(&frame[2..]).unwrap();
        got.push(message[1]["text"].as_str().unwrap().to_string());
    }
    assert_eq!(got, ["during", "after"]);
    // Polling is over for this session.
    let (status, _) = http(server.http, "GET", &poll_path(&sid), "").await;
    assert_eq!(status, 400);
    ws.send(Message::text(r#"42["message",{"text":"over websocket"}]"#))
        .await
        .unwrap();
    tcp.expect(&format!("{nick}: over websocket")).await;
}

#[tokio::test]
async fn a_websocket_message_over_max_payload_is_closed_with_1009() {
    let mut config = common::config();
    config.max_line_bytes = 100;
    let server = TestServer::start(config).await;
    let mut tcp = server.client().await;
    let (mut ws, nick) = ws_socket(server.http, "").await;
    tcp.expect(&format!("{nick} has joined us")).await;
    let huge = format!("42[\"chat\",{{\"message\":\"{}\"}}]", "x".repeat(64 * 1024));
    ws.send(Message::text(huge)).await.unwrap();
    let code = loop {
        match tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("closed in time")
        {
            Some(Ok(Message::Close(Some(frame)))) => break frame.code,
            Some(Ok(_)) => {}
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    assert_eq!(code, CloseCode::Size);
    tcp.expect(&format!("{nick} has left")).await;
}

#[tokio::test]
async fn a_client_that_stops_answering_pings_is_closed() {
    let mut config = common::config();
    config.ping_interval = Duration::from_secs(1);
    config.ping_timeout = Duration::from_secs(1);
    let server = TestServer::start(config).await;
    let mut tcp = server.client().await;
    // One over WebSocket that stops reading, one that stops polling.
    let (_silent_ws, ws_nick) = ws_socket(server.http, "").await;
    let (_poller, polling_nick) = polling_socket(server.http).await;
    let mut left = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(8);
    while left.len() < 2 {
        let line = tokio::time::timeout_at(deadline, tcp.line())
            .await
            .expect("both closed by the heartbeat");
        if let Some(nick) = line.strip_suffix(" has left") {
            left.push(nick.to_string());
        }
    }
    left.sort();
    let mut expected = vec![ws_nick, polling_nick];
    expected.sort();
    assert_eq!(left, expected);
}

#[tokio::test]
async fn a_client_chooses_how_room_messages_reach_it() {
    let server = TestServer::default().await;
    let (mut hubbub, _) = ws_socket(server.http, r#"{"vocabulary":"hubbub"}"#).await;
    let (mut seed, _) = ws_socket(server.http, r#"{"vocabulary":"seed"}"#).await;
    let (mut both, _) = ws_socket(server.http, "").await;
    let mut tcp = server.client().await;
    tcp.send("first").await;
    tcp.send("second").await;
    // What each socket gets for the two messages, in order, events only.
    async fn room_events(ws: &mut Ws, count: usize) -> Vec<String> {
        let mut names = Vec::new();
        while names.len() < count {
            let frame = text(ws).await;
            if frame.starts_with("42[\"message\"") || frame.starts_with("42[\"notice\"") {
                let event: Value = serde_json::from_str(&frame[2..]).unwrap();
                let text = event[1]["text"]
                    .as_str()
                    .or(event[1]["message"].as_str())
                    .unwrap()
                    .to_string();
                names.push(format!("{} {text}", event[0].as_str().unwrap()));
            }
        }
        names
    }
    assert_eq!(
        room_events(&mut hubbub, 2).await,
        ["message first", "message second"]
    );
    let seed_got = room_events(&mut seed, 2).await;
    assert!(
        seed_got[0].starts_with("notice ") && seed_got[0].ends_with(":first"),
        "{seed_got:?}"
    );
    assert!(
        seed_got[1].starts_with("notice ") && seed_got[1].ends_with(":second"),
        "{seed_got:?}"
    );
    let both_got = room_events(&mut both, 4).await;
    assert_eq!(both_got[0], "message first");
    assert!(both_got[1].starts_with("notice ") && both_got[1].ends_with(":first"));
    assert_eq!(both_got[2], "message second");
    // An unknown vocabulary is refused at CONNECT.
    let mut ws = websocket(server.http, None).await;
    assert!(text(&mut ws).await.starts_with('0'));
    ws.send(Message::text(r#"40{"vocabulary":"klingon"}"#))
        .await
        .unwrap();
    let refused = text(&mut ws).await;
    assert!(
        refused.starts_with("44{") && refused.contains("vocabulary"),
        "{refused}"
    );
}

#[tokio::test]
async fn binary_frames_and_foreign_namespaces_spend_flood_budget() {
    let mut config = common::config();
    config.flood_rate = 1.0;
    config.flood_burst = 2;
    config.flood_kick = 3;
    let server = TestServer::start(config).await;
    for spray in [Message::binary(vec![1u8, 2, 3]), Message::text("40/admin,")] {
        let (mut ws, _) = ws_socket(server.http, "").await;
        for _ in 0..20 {
            if ws.send(spray.clone()).await.is_err() {
                break;
            }
        }
        let closing = text_until(&mut ws, "42[\"closing\"").await;
        assert!(closing.contains("flooding"), "{closing}");
    }
}

#[tokio::test]
async fn a_polling_body_of_many_packets_is_taken_whatever_its_size() {
    let server = TestServer::default().await;
    let (mut poller, nick) = polling_socket(server.http).await;
    let mut tcp = server.client().await;
    // 20 messages of 3 KB in one body, as python-socketio batches them: far
    // over maxPayload as a whole, each packet within it.
    let texts: Vec<String> = (0..20)
        .map(|i| format!("{i:02} {}", "x".repeat(3000)))
        .collect();
    let body = texts
        .iter()
        .map(|t| format!("42[\"message\",{{\"text\":\"{t}\"}}]"))
        .collect::<Vec<_>>()
        .join(&SEP.to_string());
    assert!(body.len() > 50_000);
    assert_eq!(poller.post(&body).await, (200, "ok".into()));
    for text in &texts {
        tcp.expect(&format!("{nick}: {text}")).await;
    }
    // Each long-poll answer carries a bounded number of packets
    // (python-engineio gives up past 16).
    let mut seen = 0;
    while seen < 20 {
        let (status, body) = http(server.http, "GET", &poll_path(&poller.sid), "").await;
        assert_eq!(status, 200);
        let packets = body.split(SEP).count();
        assert!(packets <= 16, "{packets} packets in one answer");
        seen += body.matches("42[\"message\"").count();
    }
    poller.received.clear();
    // One packet over maxPayload is still refused.
    let (status, _) = poller.post(&format!("4{}", "2".repeat(1 << 20))).await;
    assert_eq!(status, 413);
}

#[tokio::test]
async fn a_client_that_closes_gets_its_waiting_poll_answered_with_a_noop() {
    let server = TestServer::default().await;
    let (mut poller, _) = polling_socket(server.http).await;
    poller.received.clear();
    let addr = server.http;
    let path = poll_path(&poller.sid);
    let waiting = tokio::spawn(async move { http(addr, "GET", &path, "").await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(poller.post("1").await, (200, "ok".into()));
    let (status, body) = waiting.await.unwrap();
    assert_eq!((status, body.as_str()), (200, "6"));
}

#[tokio::test]
async fn a_close_the_poll_did_not_wait_for_is_answered_once_then_the_session_is_unknown() {
    let server = TestServer::default().await;
    let (poller, _) = polling_socket(server.http).await;
    assert_eq!(poller.post("1").await, (200, "ok".into()));
    let path = poll_path(&poller.sid);
    assert_eq!(http(server.http, "GET", &path, "").await, (200, "6".into()));
    let (status, _) = http(server.http, "GET", &path, "").await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn an_overdue_pong_ends_the_session_at_the_next_request() {
    let server = TestServer::start(hubbub::Config {
        ping_interval: Duration::from_millis(300),
        ping_timeout: Duration::from_millis(200),
        ..common::config()
    })
    .await;
    let (sid, open) = handshake(server.http).await;
    assert_eq!(open["pingInterval"], 300);
    assert_eq!(open["pingTimeout"], 200);
    // The interval and the timeout, exactly, with no pong.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (status, _) = http(server.http, "GET", &poll_path(&sid), "").await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn a_second_websocket_on_an_upgraded_session_is_accepted_then_closed() {
    let server = TestServer::default().await;
    let mut ws = websocket(server.http, None).await;
    let open = text(&mut ws).await;
    let open: Value = serde_json::from_str(open.strip_prefix('0').unwrap()).unwrap();
    let sid = open["sid"].as_str().unwrap().to_string();
    let mut second = websocket(server.http, Some(&sid)).await;
    match tokio::time::timeout(WAIT, second.next())
        .await
        .expect("closed in time")
    {
        None | Some(Ok(Message::Close(_))) | Some(Err(_)) => {}
        Some(Ok(other)) => panic!("expected a close, got {other:?}"),
    }
}

#[tokio::test]
async fn a_disconnect_of_the_namespace_keeps_the_engine_io_session() {
    let server = TestServer::start(hubbub::Config {
        ping_interval: Duration::from_millis(300),
        ping_timeout: Duration::from_millis(300),
        ..common::config()
    })
    .await;
    let mut tcp = server.client().await;
    let (mut ws, nick) = ws_socket(server.http, "").await;
    tcp.expect(&format!("{nick} has joined us")).await;
    ws.send(Message::text("41")).await.unwrap();
    // The room hears the socket leave; the Engine.IO session stays: it is
    // still pinged, and answers.
    tcp.expect(&format!("{nick} has left")).await;
    loop {
        if text(&mut ws).await == "2" {
            break;
        }
    }
    ws.send(Message::text("3")).await.unwrap();
    // A new CONNECT on the same Engine.IO session is a new session.
    ws.send(Message::text("40")).await.unwrap();
    assert!(text_until(&mut ws, "40{").await.starts_with("40{\"sid\""));
    let welcome = text_until(&mut ws, "42[\"welcome\"").await;
    let welcome: Value = serde_json::from_str(&welcome[2..]).unwrap();
    let again = welcome[1]["nick"].as_str().unwrap().to_string();
    tcp.expect(&format!("{again} has joined us")).await;
}

#[tokio::test]
async fn a_trickled_polling_body_is_cut_off_with_408() {
    let server = TestServer::default().await;
    let (sid, _) = handshake(server.http).await;
    let mut stream = TcpStream::connect(server.http).await.unwrap();
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: text/plain;charset=UTF-8\r\n\
         Content-Length: 1000\r\nConnection: close\r\n\r\n4",
        poll_path(&sid),
        server.http
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let (mut read, mut write) = stream.into_split();
    // One byte every 2 s: the connection looks alive, the body never ends.
    let trickle = tokio::spawn(async move {
        for _ in 0..20 {
            tokio::time::sleep(Duration::from_secs(2)).await;
            if write.write_all(b"x").await.is_err() {
                return;
            }
        }
    });
    let mut response = Vec::new();
    let mut buf = [0u8; 1024];
    while !response.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(20), read.read(&mut buf))
            .await
            .expect("answered before the trickle ends")
            .unwrap();
        assert!(n > 0, "closed without an answer");
        response.extend_from_slice(&buf[..n]);
    }
    trickle.abort();
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 408"), "{response}");
    // The session itself carries on: a complete POST is taken.
    let poller = Poller {
        addr: server.http,
        sid,
        received: VecDeque::new(),
    };
    assert_eq!(poller.post("40").await, (200, "ok".to_string()));
}
