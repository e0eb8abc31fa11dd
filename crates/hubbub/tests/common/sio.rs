//! A minimal Socket.IO v5 client over WebSocket for tests: enough of
//! Engine.IO (open, ping/pong) and Socket.IO (connect, events, acks) to
//! drive the server, and raw frames to send it garbage.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::WAIT;

pub struct SioClient {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_ack: u64,
    /// Events that arrived while waiting for something else.
    events: VecDeque<(String, Value)>,
    /// Acknowledgements that arrived while waiting for events.
    acks: std::collections::HashMap<u64, Value>,
    pub nick: String,
}

/// What one received frame was.
enum Incoming {
    Event(String, Value),
    Ack(u64, Value),
    Other,
}

impl SioClient {
    /// Connects to the default namespace and reads `welcome`.
    pub async fn connect(http: SocketAddr) -> SioClient {
        SioClient::connect_then(http, None).await
    }

    /// Connects, sending `frame` the moment the namespace CONNECT is
    /// answered (as official clients flush their buffered emits); reads
    /// `welcome`.
    pub async fn connect_then(http: SocketAddr, frame: Option<&str>) -> SioClient {
        SioClient::connect_as(http, None, frame).await
    }

    /// Sends CONNECT with `auth` and returns the answer as parsed JSON:
    /// `Ok(data)` for CONNECT (`40`), `Err(data)` for CONNECT_ERROR (`44`).
    pub async fn connect_answer(http: SocketAddr, auth: Value) -> Result<Value, Value> {
        let mut client = SioClient::engine_open(websocket(http).await).await;
        client.send_raw(&format!("40{auth}")).await;
        let answer = client.frame().await.expect("socket.io connect answer");
        let data = |p: &str| serde_json::from_str(p).expect("json");
        match answer.split_at(2) {
            ("40", rest) => Ok(data(rest)),
            ("44", rest) => Err(data(rest)),
            _ => panic!("a CONNECT answer, got {answer:?}"),
        }
    }

    /// Connects with CONNECT `auth` (credentials, a token); reads `welcome`.
    pub async fn connect_auth(http: SocketAddr, auth: Value) -> SioClient {
        SioClient::connect_as(http, Some(auth), None).await
    }

    async fn connect_as(http: SocketAddr, auth: Option<Value>, frame: Option<&str>) -> SioClient {
        SioClient::open(websocket(http).await, auth, frame).await
    }

    /// Connects over WSS to the HTTPS listener `https`, trusting what
    /// `tls` trusts; reads `welcome`.
    pub async fn connect_tls(
        https: SocketAddr,
        tls: std::sync::Arc<rustls::ClientConfig>,
    ) -> SioClient {
        SioClient::connect_tls_auth_on(None, https, tls, None).await
    }

    /// [`SioClient::connect_tls`] with CONNECT `auth` (a token, a session).
    pub async fn connect_tls_auth(
        https: SocketAddr,
        tls: std::sync::Arc<rustls::ClientConfig>,
        auth: Value,
    ) -> SioClient {
        SioClient::connect_tls_auth_on(None, https, tls, Some(auth)).await
    }

    /// Like [`SioClient::connect_tls`], on a TCP connection already open
    /// to `https` (one with small socket buffers, say).
    pub async fn connect_tls_on(
        tcp: TcpStream,
        https: SocketAddr,
        tls: std::sync::Arc<rustls::ClientConfig>,
    ) -> SioClient {
        SioClient::connect_tls_auth_on(Some(tcp), https, tls, None).await
    }

    async fn connect_tls_auth_on(
        tcp: Option<TcpStream>,
        https: SocketAddr,
        tls: std::sync::Arc<rustls::ClientConfig>,
        auth: Option<Value>,
    ) -> SioClient {
        let tcp = match tcp {
            Some(tcp) => tcp,
            None => TcpStream::connect(https).await.expect("connect"),
        };
        let url = format!("wss://{https}/socket.io/?EIO=4&transport=websocket");
        let connecting = tokio_tungstenite::client_async_tls_with_config(
            url,
            tcp,
            None,
            Some(tokio_tungstenite::Connector::Rustls(tls)),
        );
        let (ws, _) = tokio::time::timeout(WAIT, connecting)
            .await
            .expect("connect in time")
            .expect("websocket connect over TLS");
        SioClient::open(ws, auth, None).await
    }

    /// A client on `ws` once the Engine.IO open packet is read.
    async fn engine_open(ws: WebSocketStream<MaybeTlsStream<TcpStream>>) -> SioClient {
        let mut client = SioClient {
            ws,
            next_ack: 1,
            events: VecDeque::new(),
            acks: Default::default(),
            nick: String::new(),
        };
        let open = client.frame().await.expect("engine.io open");
        assert!(open.starts_with('0'), "engine.io open packet, got {open:?}");
        client
    }

    /// Engine.IO open, Socket.IO CONNECT with `auth` (then `frame`), and
    /// `welcome`.
    async fn open(
        ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
        auth: Option<Value>,
        frame: Option<&str>,
    ) -> SioClient {
        let mut client = SioClient::engine_open(ws).await;
        match auth {
            Some(auth) => client.send_raw(&format!("40{auth}")).await,
            None => client.send_raw("40").await,
        }
        let connected = client.frame().await.expect("socket.io connect");
        assert!(
            connected.starts_with("40"),
            "socket.io connect, got {connected:?}"
        );
        // As official clients do: emits buffered while connecting are
        // flushed the moment the CONNECT is answered.
        if let Some(frame) = frame {
            client.send_raw(frame).await;
        }
        let welcome = client.event_skipping("welcome").await;
        client.nick = welcome["nick"].as_str().unwrap().to_string();
        client
    }

    pub async fn send_raw(&mut self, frame: &str) {
        self.ws
            .send(Message::text(frame.to_string()))
            .await
            .expect("send");
    }

    /// Emits `event` without asking for an acknowledgement.
    pub async fn emit(&mut self, event: &str, data: Value) {
        let frame = format!("42{}", json!([event, data]));
        self.send_raw(&frame).await;
    }

    /// Emits `event` with `data` (or no payload) and waits for the ack's first argument.
    pub async fn request(&mut self, event: &str, data: Option<Value>) -> Value {
        let id = self.next_ack;
        self.next_ack += 1;
        let payload = match data {
            Some(data) => json!([event, data]),
            None => json!([event]),
        };
        self.send_raw(&format!("42{id}{payload}")).await;
        loop {
            match self.incoming().await {
                Incoming::Ack(got, value) if got == id => return value,
                Incoming::Event(name, value) => self.events.push_back((name, value)),
                _ => {}
            }
        }
    }

    /// Like [`SioClient::request`], with the data as JSON text, exactly as
    /// given (for escapes serde_json would not write).
    pub async fn request_json(&mut self, event: &str, data_json: &str) -> Value {
        let id = self.next_ack;
        self.next_ack += 1;
        self.send_raw(&format!("42{id}[{},{data_json}]", json!(event)))
            .await;
        loop {
            match self.incoming().await {
                Incoming::Ack(got, value) if got == id => return value,
                Incoming::Event(name, value) => self.events.push_back((name, value)),
                _ => {}
            }
        }
    }

    /// Reads one frame; returns the argument if it is the ack with `id`.
    pub async fn take_ack(&mut self, id: u64) -> Option<Value> {
        if let Some(value) = self.acks.remove(&id) {
            return Some(value);
        }
        match self.incoming().await {
            Incoming::Ack(got, value) if got == id => Some(value),
            Incoming::Event(name, value) => {
                self.events.push_back((name, value));
                None
            }
            _ => None,
        }
    }

    /// What request `event` was answered: `"ok"`, or its error code.
    pub async fn verdict(&mut self, event: &str, data: Value) -> String {
        let answer = self.request(event, Some(data)).await;
        match answer["error"]["code"].as_str() {
            Some(code) => code.to_string(),
            None => {
                assert!(answer.get("ok").is_some(), "neither ok nor error: {answer}");
                "ok".to_string()
            }
        }
    }

    /// The `ok` value of a request that must succeed.
    pub async fn ok(&mut self, event: &str, data: Option<Value>) -> Value {
        let answer = self.request(event, data).await;
        assert!(answer.get("ok").is_some(), "{event} failed: {answer}");
        answer["ok"].clone()
    }

    /// The error code of a request that must fail.
    pub async fn error_code(&mut self, event: &str, data: Option<Value>) -> String {
        let answer = self.request(event, data).await;
        answer["error"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("{event} should fail: {answer}"))
            .to_string()
    }

    /// The next event packet's JSON array, verbatim.
    pub async fn next_raw_event(&mut self) -> String {
        assert!(self.events.is_empty(), "events already parsed");
        loop {
            let frame = self.frame().await.expect("open");
            if let Some(array) = frame.strip_prefix("42") {
                return array.to_string();
            }
        }
    }

    /// The next event, whatever its name.
    pub async fn next_event(&mut self) -> (String, Value) {
        if let Some(event) = self.events.pop_front() {
            return event;
        }
        loop {
            match self.incoming().await {
                Incoming::Event(name, value) => return (name, value),
                Incoming::Ack(id, value) => {
                    self.acks.insert(id, value);
                }
                Incoming::Other => {}
            }
        }
    }

    /// The next event, which must be `name`; returns its first argument.
    pub async fn event(&mut self, name: &str) -> Value {
        let (got, value) = self.next_event().await;
        assert_eq!(
            got, name,
            "{}: expected event {name}, got {got} {value}",
            self.nick
        );
        value
    }

    /// The next event named `name`, skipping others.
    pub async fn event_skipping(&mut self, name: &str) -> Value {
        loop {
            let (got, value) = self.next_event().await;
            if got == name {
                return value;
            }
        }
    }

    /// Asserts no event arrives for `wait`.
    pub async fn expect_no_event(&mut self, wait: Duration) {
        if let Some(event) = self.events.pop_front() {
            panic!("{}: unexpected event {event:?}", self.nick);
        }
        let deadline = tokio::time::Instant::now() + wait;
        while let Ok(incoming) = tokio::time::timeout_at(deadline, self.incoming()).await {
            if let Incoming::Event(name, value) = incoming {
                panic!("{}: unexpected event {name} {value}", self.nick);
            }
        }
    }

    /// Waits until the server disconnects this socket: a Socket.IO
    /// disconnect packet (`41`) or the connection closing.
    pub async fn expect_closed(&mut self) {
        loop {
            match tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("closed in time")
            {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(Message::Text(text))) if text.as_str() == "41" => return,
                Some(Ok(_)) => {}
            }
        }
    }

    async fn incoming(&mut self) -> Incoming {
        let frame = self
            .frame()
            .await
            .unwrap_or_else(|| panic!("{}: connection closed", self.nick));
        let Some(packet) = frame.strip_prefix('4') else {
            return Incoming::Other;
        };
        let (kind, rest) = packet.split_at(1);
        let digits = rest.chars().take_while(char::is_ascii_digit).count();
        let (id, json_text) = rest.split_at(digits);
        match kind {
            "2" => {
                let mut array: Vec<Value> = serde_json::from_str(json_text).expect("event json");
                let name = array.remove(0).as_str().unwrap().to_string();
                let first = array.into_iter().next().unwrap_or(Value::Null);
                Incoming::Event(name, first)
            }
            "3" => {
                let array: Vec<Value> = serde_json::from_str(json_text).expect("ack json");
                Incoming::Ack(
                    id.parse().unwrap(),
                    array.into_iter().next().unwrap_or(Value::Null),
                )
            }
            _ => Incoming::Other,
        }
    }

    /// The next text frame (answering pings), or `None` once closed.
    async fn frame(&mut self) -> Option<String> {
        loop {
            let message = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .unwrap_or_else(|_| panic!("{}: nothing received within {WAIT:?}", self.nick))?;
            match message.ok()? {
                Message::Text(text) if text.as_str() == "2" => self.send_raw("3").await,
                Message::Text(text) => return Some(text.to_string()),
                Message::Close(_) => return None,
                _ => {}
            }
        }
    }
}

/// `(id, text)` of a `message` payload.
pub fn id_text(message: &Value) -> (u64, String) {
    (
        message["id"].as_u64().expect("id"),
        message["text"].as_str().expect("text").to_string(),
    )
}

/// `(id, text)` of each message of a `history` payload.
pub fn id_texts(history: &Value) -> Vec<(u64, String)> {
    history["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(id_text)
        .collect()
}

/// A plain WebSocket to the Socket.IO endpoint of `http`.
async fn websocket(http: SocketAddr) -> WebSocketStream<MaybeTlsStream<TcpStream>> {
    let url = format!("ws://{http}/socket.io/?EIO=4&transport=websocket");
    let (ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url))
        .await
        .expect("connect in time")
        .expect("websocket connect");
    ws
}
