//! A minimal WebSocket client (RFC 6455) for the load generator: the
//! upgrade, masked text frames out, and server frames parsed in place from
//! one reusable buffer (no allocation per frame), so that reading 10^6
//! frames costs the generator less than it costs the server to send them.
//!
//! Only what chat servers send is handled: unfragmented text frames and
//! control frames. A fragmented frame is an error.

use std::io;

use anyhow::{bail, Context};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

pub const OP_TEXT: u8 = 0x1;
pub const OP_CLOSE: u8 = 0x8;
pub const OP_PING: u8 = 0x9;

/// Initial read buffer; it grows for larger frames.
const READ_BUFFER: usize = 4096;

/// Upgrades `stream` to a WebSocket at `path` on `host`.
pub async fn connect(
    stream: TcpStream,
    host: &str,
    path: &str,
) -> anyhow::Result<(Reader, Writer)> {
    let (half, mut write) = stream.into_split();
    // Any 16 bytes, base64: the server only hashes it back.
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: aHViYnViLWJlbmNoLWtleQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    write
        .write_all(request.as_bytes())
        .await
        .context("send the upgrade")?;
    let mut reader = Reader {
        half,
        buf: vec![0; READ_BUFFER],
        start: 0,
        len: 0,
    };
    let head_end = loop {
        if let Some(i) = reader.buf[..reader.len]
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
        {
            break i + 4;
        }
        if reader.fill().await? == 0 {
            bail!("closed during the websocket upgrade");
        }
    };
    let head = String::from_utf8_lossy(&reader.buf[..head_end]).into_owned();
    if !head.starts_with("HTTP/1.1 101") {
        bail!(
            "websocket upgrade refused: {}",
            head.lines().next().unwrap_or("")
        );
    }
    reader.start = head_end;
    Ok((
        reader,
        Writer {
            half: write,
            frame: Vec::new(),
        },
    ))
}

/// The read half: frames are parsed where they were read.
pub struct Reader {
    half: OwnedReadHalf,
    buf: Vec<u8>,
    /// Unparsed bytes are `buf[start..len]`.
    start: usize,
    len: usize,
}

impl Reader {
    /// Reads more bytes after the buffered ones (compacting, or growing the
    /// buffer for a large frame); 0 at EOF.
    pub async fn fill(&mut self) -> io::Result<usize> {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.len, 0);
            self.len -= self.start;
            self.start = 0;
        }
        if self.len == self.buf.len() {
            self.buf.resize(self.buf.len() * 2, 0);
        }
        let n = self.half.read(&mut self.buf[self.len..]).await?;
        self.len += n;
        Ok(n)
    }

    /// Whether the last read filled the buffer (more may be waiting).
    pub fn is_full(&self) -> bool {
        self.len == self.buf.len()
    }

    /// Calls `on_frame(opcode, payload)` for every complete frame buffered.
    pub fn drain(&mut self, mut on_frame: impl FnMut(u8, &[u8])) -> anyhow::Result<()> {
        while let Some((opcode, from, to)) = self.parse()? {
            on_frame(opcode, &self.buf[from..to]);
            self.start = to;
        }
        Ok(())
    }

    /// The next frame, reading as needed (for handshakes; allocates).
    pub async fn frame(&mut self) -> anyhow::Result<(u8, Vec<u8>)> {
        loop {
            if let Some((opcode, from, to)) = self.parse()? {
                self.start = to;
                return Ok((opcode, self.buf[from..to].to_vec()));
            }
            if self.fill().await.context("read")? == 0 {
                bail!("connection closed by the server");
            }
        }
    }

    /// The frame at `start`, if complete: (opcode, payload start, end).
    fn parse(&self) -> anyhow::Result<Option<(u8, usize, usize)>> {
        let b = &self.buf[self.start..self.len];
        if b.len() < 2 {
            return Ok(None);
        }
        if b[0] & 0x80 == 0 {
            bail!("fragmented websocket frames are not supported");
        }
        if b[1] & 0x80 != 0 {
            bail!("the server masked a frame");
        }
        let (len, header) = match b[1] & 0x7f {
            126 if b.len() < 4 => return Ok(None),
            126 => (u16::from_be_bytes([b[2], b[3]]) as usize, 4),
            127 if b.len() < 10 => return Ok(None),
            127 => {
                let mut n = [0u8; 8];
                n.copy_from_slice(&b[2..10]);
                (u64::from_be_bytes(n) as usize, 10)
            }
            n => (n as usize, 2),
        };
        if b.len() < header + len {
            return Ok(None);
        }
        let from = self.start + header;
        Ok(Some((b[0] & 0x0f, from, from + len)))
    }
}

/// The write half: masked text frames (with a zero mask, which RFC 6455
/// allows; the generator has nothing to hide from a proxy).
pub struct Writer {
    half: OwnedWriteHalf,
    frame: Vec<u8>,
}

impl Writer {
    pub async fn text(&mut self, text: &str) -> io::Result<()> {
        self.frame.clear();
        self.frame.push(0x80 | OP_TEXT);
        let len = text.len();
        if len < 126 {
            self.frame.push(0x80 | len as u8);
        } else if len <= u16::MAX as usize {
            self.frame.push(0x80 | 126);
            self.frame.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            self.frame.push(0x80 | 127);
            self.frame.extend_from_slice(&(len as u64).to_be_bytes());
        }
        self.frame.extend_from_slice(&[0, 0, 0, 0]);
        self.frame.extend_from_slice(text.as_bytes());
        self.half.write_all(&self.frame).await
    }
}
