//! Line-protocol client: hubbub's TCP listener and the Go chat.
//!
//! Connect, read the greeting `You are ADDR`, optionally `/join ROOM` (hubbub
//! only) and wait for `* you are now in ROOM`, then read lines until told to
//! stop. A sender writes its messages from a second task, so a sender never
//! stops reading while its writes wait for the server.

use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use anyhow::{bail, Context};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

use crate::shared::{message_text, now_us, step, Recorder, SendPlan, Shared};

/// Initial read buffer per connection; it grows for longer lines.
const READ_BUFFER: usize = 4096;

/// A connected, greeted (and joined) line client.
pub struct Conn {
    reader: LineReader,
    writer: OwnedWriteHalf,
}

/// Reads lines with one reusable buffer; no allocation per line.
struct LineReader {
    half: OwnedReadHalf,
    buf: Vec<u8>,
    len: usize,
}

impl LineReader {
    /// The next whole line (without LF), for the handshake.
    async fn line(&mut self) -> anyhow::Result<String> {
        loop {
            if let Some(nl) = self.buf[..self.len].iter().position(|&b| b == b'\n') {
                let line = String::from_utf8_lossy(&self.buf[..nl]).into_owned();
                self.buf.copy_within(nl + 1..self.len, 0);
                self.len -= nl + 1;
                return Ok(line);
            }
            if self.fill().await? == 0 {
                bail!("connection closed by the server during the handshake");
            }
        }
    }

    /// Reads more bytes after the buffered ones; 0 at EOF.
    async fn fill(&mut self) -> io::Result<usize> {
        if self.len == self.buf.len() {
            self.buf.resize(self.buf.len() * 2, 0);
        }
        let n = self.half.read(&mut self.buf[self.len..]).await?;
        self.len += n;
        Ok(n)
    }

    /// Reads and records lines until cancelled; an error if the server
    /// closes the connection first.
    async fn run(&mut self, recorder: &mut Recorder, shared: &Shared) -> anyhow::Result<()> {
        // Whether the last read left room in the buffer (so it took all
        // that was waiting).
        let mut filled_part = false;
        loop {
            let mut start = 0;
            let mut delivered = 0;
            while let Some(nl) = self.buf[start..self.len].iter().position(|&b| b == b'\n') {
                let line = &self.buf[start..start + nl];
                if recorder.record(line) {
                    delivered += 1;
                } else if line.starts_with(b"! ") {
                    // An error line for this client (flooding, too slow, …).
                    shared.error(format!("server sent {:?}", String::from_utf8_lossy(line)));
                }
                start += nl + 1;
            }
            if delivered > 0 {
                shared.delivered.fetch_add(delivered, Ordering::Relaxed);
            }
            self.buf.copy_within(start..self.len, 0);
            self.len -= start;
            if filled_part {
                shared.lazy_pause().await;
            }
            let n = tokio::select! {
                biased;
                _ = shared.cancel.cancelled() => return Ok(()),
                n = self.fill() => n.context("read")?,
            };
            if n == 0 {
                bail!("connection closed by the server");
            }
            filled_part = self.len < self.buf.len();
            shared.bytes.fetch_add(n as u64, Ordering::Relaxed);
        }
    }
}

/// Connects, reads the greeting, and joins `room` if given.
pub async fn connect(addr: &str, room: Option<&str>) -> anyhow::Result<Conn> {
    let stream = step("connect", async { Ok(TcpStream::connect(addr).await?) })
        .await
        .context("connect")?;
    stream.set_nodelay(true).context("TCP_NODELAY")?;
    let (half, writer) = stream.into_split();
    let mut conn = Conn {
        reader: LineReader {
            half,
            buf: vec![0; READ_BUFFER],
            len: 0,
        },
        writer,
    };
    let greeting = step("the connect (greeting)", conn.reader.line()).await?;
    if !greeting.starts_with("You are ") {
        bail!("unexpected greeting {greeting:?}");
    }
    if let Some(room) = room {
        conn.writer
            .write_all(format!("/join {room}\n").as_bytes())
            .await
            .context("send /join")?;
        step(&format!("/join {room}"), async {
            loop {
                let line = conn.reader.line().await?;
                if line.starts_with("* you are now in ") {
                    return Ok(());
                }
                if line.starts_with("! ") {
                    bail!("/join {room} refused: {line}");
                }
            }
        })
        .await?;
    }
    Ok(conn)
}

impl Conn {
    /// Receives (and, with a plan, sends) until the run is cancelled.
    pub async fn run(
        self,
        plan: Option<SendPlan>,
        recorder: &mut Recorder,
        shared: &Arc<Shared>,
    ) -> anyhow::Result<()> {
        let Conn { mut reader, writer } = self;
        // Dropping a write half shuts the socket down for writing, which
        // the servers take as a disconnect: keep it until the end.
        let _writer = match plan {
            Some(plan) => {
                tokio::spawn(send_loop(writer, plan, shared.clone()));
                None
            }
            None => Some(writer),
        };
        reader.run(recorder, shared).await
    }
}

/// Counts a sender as done however its loop ends.
pub(crate) struct SenderDone<'a>(pub &'a Shared);

impl Drop for SenderDone<'_> {
    fn drop(&mut self) {
        self.0.senders_done.fetch_add(1, Ordering::Relaxed);
    }
}

async fn send_loop(mut writer: OwnedWriteHalf, plan: SendPlan, shared: Arc<Shared>) {
    {
        let _done = SenderDone(&shared);
        tokio::select! {
            _ = shared.start.cancelled() => {}
            _ = shared.cancel.cancelled() => return,
        }
        let mut text = String::with_capacity(plan.payload + 1);
        for seq in 0..plan.messages {
            let stamp = tokio::select! {
                at = plan.due(&shared, seq) => at,
                _ = shared.cancel.cancelled() => return,
            };
            message_text(
                &mut text,
                shared.run_id,
                plan.sender,
                seq,
                stamp,
                plan.payload,
            );
            text.push('\n');
            let sent_at = now_us();
            let written = tokio::select! {
                r = writer.write_all(text.as_bytes()) => r,
                _ = shared.cancel.cancelled() => return,
            };
            if let Err(e) = written {
                shared.error(format!("tcp send: {e}"));
                return;
            }
            shared.note_send(sent_at);
        }
    }
    shared.cancel.cancelled().await;
}
