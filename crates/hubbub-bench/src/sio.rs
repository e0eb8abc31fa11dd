//! A minimal Socket.IO v5 client over WebSocket: hubbub's HTTP listener and
//! the Node socket.io chat.
//!
//! Engine.IO: the server's open packet `0{...}`, pings `2` answered with `3`.
//! Socket.IO: `40{"vocabulary":"seed"}` to connect to `/`, `40{...}` back;
//! events `42[...]`; acks `43N[...]`. A chat is
//! `42["chat",{"message":TEXT}]`; a delivery is
//! `42["notice",{"message":"NICK:TEXT"}]`. The `seed` vocabulary asks hubbub
//! for the seed's `notice` only (one packet per message, as the Node chat
//! sends); the Node chat ignores the auth.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use anyhow::{bail, Context};
use futures_util::stream::SplitSink;
use futures_util::{FutureExt, SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::shared::{message_text, now_us, step, Recorder, SendPlan, Shared};
use crate::tcp::SenderDone;

type Ws = WebSocketStream<TcpStream>;
type Sink = SplitSink<Ws, Message>;

/// A connected Socket.IO client (in its room, if it was given one).
pub struct Conn {
    ws: Ws,
}

/// Connects to the default namespace; with `room` (hubbub only), waits for
/// hubbub's `welcome` (unless `eager_join`), joins the room and then leaves
/// `default_room` (hubbub keeps a socket in every room it joined; leaving the
/// default room keeps connects from being announced to every other socket).
pub async fn connect(
    addr: &str,
    room: Option<&str>,
    default_room: &str,
    eager_join: bool,
) -> anyhow::Result<Conn> {
    let stream = step("connect", async { Ok(TcpStream::connect(addr).await?) })
        .await
        .context("connect")?;
    stream.set_nodelay(true).context("TCP_NODELAY")?;
    let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket");
    // tungstenite allocates its read buffer up front (128 KiB by default);
    // 10,000 of those would dwarf the server being measured.
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0);
    let (ws, _) = step("the websocket handshake", async {
        Ok(tokio_tungstenite::client_async_with_config(url, stream, Some(config)).await?)
    })
    .await
    .context("websocket handshake")?;
    let mut conn = Conn { ws };
    let open = step("the websocket (engine.io open)", conn.frame()).await?;
    if !open.starts_with('0') {
        bail!("expected the engine.io open packet, got {open:?}");
    }
    conn.send(r#"40{"vocabulary":"seed"}"#.to_string()).await?;
    step("the socket.io connect (40)", async {
        loop {
            let frame = conn.frame().await?;
            if frame.starts_with("40") {
                return Ok(());
            }
            if frame.starts_with("44") {
                bail!("socket.io connect refused: {frame}");
            }
        }
    })
    .await?;
    if let Some(room) = room {
        // `eager_join` sends the join right behind the connect, as the
        // official clients flush their buffered emits; otherwise it waits
        // for hubbub's `welcome` first.
        if !eager_join {
            step("the welcome event", async {
                loop {
                    if conn.frame().await?.starts_with("42[\"welcome\"") {
                        return Ok(());
                    }
                }
            })
            .await?;
        }
        let room_json = serde_json::to_string(room)?;
        conn.send(format!("421[\"join\",{room_json}]")).await?;
        let ack = step(&format!("join {room}"), conn.ack(1)).await?;
        if !ack.contains("\"ok\"") {
            bail!("join {room} refused: {ack}");
        }
        let lobby_json = serde_json::to_string(default_room)?;
        conn.send(format!("422[\"leave\",{lobby_json}]")).await?;
        let ack = step(&format!("leave {default_room}"), conn.ack(2)).await?;
        if !ack.contains("\"ok\"") {
            bail!("leave {default_room} refused: {ack}");
        }
    }
    Ok(conn)
}

impl Conn {
    async fn send(&mut self, frame: String) -> anyhow::Result<()> {
        self.ws.send(Message::text(frame)).await.context("send")
    }

    /// The next text frame, answering pings.
    async fn frame(&mut self) -> anyhow::Result<String> {
        loop {
            match self.ws.next().await {
                None => bail!("connection closed by the server during the handshake"),
                Some(Err(e)) => return Err(e).context("read"),
                Some(Ok(Message::Text(text))) if text.as_str() == "2" => {
                    self.send("3".to_string()).await?
                }
                Some(Ok(Message::Text(text))) => return Ok(text.as_str().to_string()),
                Some(Ok(Message::Close(_))) => bail!("closed by the server during the handshake"),
                Some(Ok(_)) => {}
            }
        }
    }

    /// The acknowledgement with id `id`, skipping other frames.
    async fn ack(&mut self, id: u64) -> anyhow::Result<String> {
        let prefix = format!("43{id}[");
        loop {
            let frame = self.frame().await?;
            if let Some(rest) = frame.strip_prefix(&prefix) {
                return Ok(rest.to_string());
            }
        }
    }

    /// Receives (and, with a plan, sends) until the run is cancelled.
    pub async fn run(
        self,
        plan: Option<SendPlan>,
        recorder: &mut Recorder,
        shared: &Arc<Shared>,
    ) -> anyhow::Result<()> {
        let (sink, mut stream) = self.ws.split();
        let mut pong = match plan {
            Some(plan) => {
                let (tx, rx) = mpsc::unbounded_channel();
                tokio::spawn(send_loop(sink, rx, plan, shared.clone()));
                Pong::Via(tx)
            }
            None => Pong::Direct(sink),
        };
        loop {
            let message = match stream.next().now_or_never() {
                Some(message) => message,
                None => {
                    // Nothing buffered: before the load, pause (see
                    // `LAZY_READ_PAUSE`), then wait for the next frame.
                    shared.lazy_pause().await;
                    tokio::select! {
                        biased;
                        _ = shared.cancel.cancelled() => return Ok(()),
                        message = stream.next() => message,
                    }
                }
            };
            if shared.cancel.is_cancelled() {
                return Ok(());
            }
            let text = match message {
                None => bail!("connection closed by the server"),
                Some(Err(e)) => return Err(e).context("read"),
                Some(Ok(Message::Text(text))) => text,
                Some(Ok(Message::Close(_))) => bail!("websocket closed by the server"),
                Some(Ok(_)) => continue,
            };
            shared.bytes.fetch_add(text.len() as u64, Ordering::Relaxed);
            let text = text.as_str();
            if text == "2" {
                pong.send().await?;
            } else if text.starts_with("42[\"notice\"") {
                if recorder.record(text.as_bytes()) {
                    shared.delivered.fetch_add(1, Ordering::Relaxed);
                }
            } else if text.starts_with("42[\"error\"") {
                // The server refused one of our requests (e.g. `flood`).
                shared.error(format!("server sent {text}"));
            } else if text == "41" || text.starts_with('1') {
                bail!("disconnected by the server ({text})");
            }
        }
    }
}

/// Where a receiver's pong goes: straight out, or to the sender task that
/// owns the write half.
enum Pong {
    Direct(Sink),
    Via(mpsc::UnboundedSender<()>),
}

impl Pong {
    async fn send(&mut self) -> anyhow::Result<()> {
        match self {
            Pong::Direct(sink) => sink.send(Message::text("3")).await.context("pong"),
            Pong::Via(tx) => tx.send(()).context("sender gone"),
        }
    }
}

async fn send_loop(
    mut sink: Sink,
    mut pongs: mpsc::UnboundedReceiver<()>,
    plan: SendPlan,
    shared: Arc<Shared>,
) {
    {
        let _done = SenderDone(&shared);
        let mut started = false;
        let mut seq = 0;
        let mut text = String::with_capacity(plan.payload);
        while seq < plan.messages {
            tokio::select! {
                biased;
                _ = shared.cancel.cancelled() => return,
                Some(()) = pongs.recv() => {
                    if sink.send(Message::text("3")).await.is_err() {
                        return;
                    }
                }
                _ = shared.start.cancelled(), if !started => started = true,
                stamp = plan.due(&shared, seq), if started => {
                    message_text(&mut text, shared.run_id, plan.sender, seq, stamp, plan.payload);
                    let frame = format!("42[\"chat\",{{\"message\":\"{text}\"}}]");
                    let sent_at = now_us();
                    if let Err(e) = sink.send(Message::text(frame)).await {
                        shared.error(format!("socket.io send: {e}"));
                        return;
                    }
                    shared.note_send(sent_at);
                    seq += 1;
                }
            }
        }
    }
    loop {
        tokio::select! {
            _ = shared.cancel.cancelled() => return,
            Some(()) = pongs.recv() => {
                if sink.send(Message::text("3")).await.is_err() {
                    return;
                }
            }
        }
    }
}
