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
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use crate::shared::{message_text, now_us, step, Recorder, SendPlan, Shared};
use crate::tcp::SenderDone;
use crate::ws::{self, OP_CLOSE, OP_TEXT};

/// A connected Socket.IO client (in its room, if it was given one).
pub struct Conn {
    reader: ws::Reader,
    writer: ws::Writer,
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
    let (reader, writer) = step(
        "the websocket handshake",
        ws::connect(stream, addr, "/socket.io/?EIO=4&transport=websocket"),
    )
    .await
    .context("websocket handshake")?;
    let mut conn = Conn { reader, writer };
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
        self.writer.text(&frame).await.context("send")
    }

    /// The next text frame, answering pings.
    async fn frame(&mut self) -> anyhow::Result<String> {
        loop {
            match self.reader.frame().await? {
                (OP_TEXT, payload) if payload == b"2" => self.send("3".to_string()).await?,
                (OP_TEXT, payload) => return String::from_utf8(payload).context("UTF-8"),
                (OP_CLOSE, _) => bail!("closed by the server during the handshake"),
                _ => {}
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
        let Conn { mut reader, writer } = self;
        let mut pong = match plan {
            Some(plan) => {
                let (tx, rx) = mpsc::unbounded_channel();
                tokio::spawn(send_loop(writer, rx, plan, shared.clone()));
                Pong::Via(tx)
            }
            None => Pong::Direct(writer),
        };
        // Whether the last read left room in the buffer (so it took all
        // that was waiting): then, before the load, pause (see
        // `LAZY_READ_PAUSE`).
        let mut filled_part = false;
        loop {
            let mut pings = 0;
            let mut delivered = 0;
            let mut ended = None;
            reader.drain(|opcode, payload| match opcode {
                OP_TEXT if payload == b"2" => pings += 1,
                OP_TEXT if payload.starts_with(b"42[\"notice\"") && recorder.record(payload) => {
                    delivered += 1;
                }
                OP_TEXT if payload.starts_with(b"42[\"error\"") => {
                    // The server refused one of our requests (e.g. `flood`).
                    shared.error(format!("server sent {}", String::from_utf8_lossy(payload)));
                }
                OP_TEXT if payload == b"41" || payload.starts_with(b"1") => {
                    ended = Some(format!(
                        "disconnected by the server ({})",
                        String::from_utf8_lossy(payload)
                    ));
                }
                OP_CLOSE => ended = Some("websocket closed by the server".to_string()),
                _ => {}
            })?;
            if delivered > 0 {
                shared.delivered.fetch_add(delivered, Ordering::Relaxed);
            }
            if let Some(why) = ended {
                if shared.cancel.is_cancelled() {
                    return Ok(());
                }
                bail!(why);
            }
            for _ in 0..pings {
                pong.send().await?;
            }
            if filled_part {
                shared.lazy_pause().await;
            }
            let n = tokio::select! {
                biased;
                _ = shared.cancel.cancelled() => return Ok(()),
                n = reader.fill() => n.context("read")?,
            };
            if n == 0 {
                if shared.cancel.is_cancelled() {
                    return Ok(());
                }
                bail!("connection closed by the server");
            }
            filled_part = !reader.is_full();
            shared.bytes.fetch_add(n as u64, Ordering::Relaxed);
        }
    }
}

/// Where a receiver's pong goes: straight out, or to the sender task that
/// owns the write half.
enum Pong {
    Direct(ws::Writer),
    Via(mpsc::UnboundedSender<()>),
}

impl Pong {
    async fn send(&mut self) -> anyhow::Result<()> {
        match self {
            Pong::Direct(writer) => writer.text("3").await.context("pong"),
            Pong::Via(tx) => tx.send(()).context("sender gone"),
        }
    }
}

async fn send_loop(
    mut sink: ws::Writer,
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
                    if sink.text("3").await.is_err() {
                        return;
                    }
                }
                _ = shared.start.cancelled(), if !started => started = true,
                stamp = plan.due(&shared, seq), if started => {
                    message_text(&mut text, shared.run_id, plan.sender, seq, stamp, plan.payload);
                    let frame = format!("42[\"chat\",{{\"message\":\"{text}\"}}]");
                    let sent_at = now_us();
                    if let Err(e) = sink.text(&frame).await {
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
                if sink.text("3").await.is_err() {
                    return;
                }
            }
        }
    }
}
