//! WebSocket framing, server side (RFC 6455 §5), written for Engine.IO's
//! needs: small text messages, many idle connections.
//!
//! A [`FrameReader`] holds no buffer while the connection is idle: bytes
//! are parsed where they were read, and only an incomplete frame (or a
//! fragmented message) is copied aside until it completes. Every buffer
//! is bounded by the largest message allowed; a frame announcing more is
//! refused from its header, before its payload is read, with close code
//! 1009. Outgoing frames are unmasked and never fragmented.

use sha1::{Digest, Sha1};

/// Close codes (RFC 6455 §7.4.1) the server sends.
pub mod close_code {
    /// The connection did its job (or the client asked to close).
    pub const NORMAL: u16 = 1000;
    /// The server is going away (shutdown).
    pub const GOING_AWAY: u16 = 1001;
    /// The client broke the framing rules.
    pub const PROTOCOL_ERROR: u16 = 1002;
    /// A text message that is not UTF-8.
    pub const INVALID_DATA: u16 = 1007;
    /// The server's policy closed it (slow consumer, flooding).
    pub const POLICY: u16 = 1008;
    /// A message larger than the server accepts.
    pub const TOO_BIG: u16 = 1009;
}

/// The `Sec-WebSocket-Accept` value for a client's `Sec-WebSocket-Key`
/// (RFC 6455 §4.2.2: base64 of SHA-1 of the key and a fixed GUID).
pub fn accept_key(key: &[u8]) -> String {
    use base64::Engine as _;
    let mut sha = Sha1::new();
    sha.update(key);
    sha.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    base64::engine::general_purpose::STANDARD.encode(sha.finalize())
}

const OP_CONTINUATION: u8 = 0x0;
const OP_TEXT: u8 = 0x1;
const OP_BINARY: u8 = 0x2;
const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;
const OP_PONG: u8 = 0xA;

/// One complete message or control frame from the client.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    Text(&'a str),
    Binary(&'a [u8]),
    /// A ping; the reply is a pong with the same payload.
    Ping(&'a [u8]),
    Pong,
    /// The client's close, with its status code if it gave one.
    Close(Option<u16>),
}

/// Whether the reader should go on to the next frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    /// Stop after this frame; the rest stays buffered for [`FrameReader::resume`].
    Pause,
}

/// Framing the client got wrong; the connection is closed with
/// [`FrameError::close_code`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("websocket protocol error: {0}")]
    Protocol(&'static str),
    #[error("websocket message larger than {limit} bytes")]
    TooBig { limit: usize },
    #[error("websocket text message is not UTF-8")]
    InvalidUtf8,
}

impl FrameError {
    /// The close code that tells the client what it did wrong.
    pub fn close_code(&self) -> u16 {
        match self {
            FrameError::Protocol(_) => close_code::PROTOCOL_ERROR,
            FrameError::TooBig { .. } => close_code::TOO_BIG,
            FrameError::InvalidUtf8 => close_code::INVALID_DATA,
        }
    }
}

/// Parses client frames incrementally; see the module docs.
#[derive(Debug)]
pub struct FrameReader {
    /// Bytes of frames not yet processed: an incomplete frame, or what was
    /// left when the consumer paused. Empty (unallocated) otherwise.
    pending: Vec<u8>,
    /// The payload so far of a fragmented message, and its opcode.
    message: Vec<u8>,
    fragmented: Option<u8>,
    /// Largest message (and so frame) accepted, in bytes.
    max_message: usize,
}

/// A parsed frame header.
struct Header {
    fin: bool,
    opcode: u8,
    mask: [u8; 4],
    /// Offset of the payload from the frame's start.
    start: usize,
    len: usize,
}

impl FrameReader {
    pub fn new(max_message: usize) -> FrameReader {
        FrameReader {
            pending: Vec::new(),
            message: Vec::new(),
            fragmented: None,
            max_message,
        }
    }

    /// Whether bytes are buffered that [`FrameReader::resume`] would process.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Processes `input` (just read from the socket), calling `on_frame` for
    /// every complete message and control frame, in order. Stops early when
    /// `on_frame` says [`Flow::Pause`]; the rest is kept for
    /// [`FrameReader::resume`]. Must not be called while paused bytes are
    /// pending (resume first).
    pub fn feed(
        &mut self,
        input: &mut [u8],
        on_frame: &mut dyn FnMut(Frame<'_>) -> Flow,
    ) -> Result<Flow, FrameError> {
        if self.pending.is_empty() {
            let (used, flow) = self.process(input, on_frame)?;
            self.keep(&input[used..]);
            Ok(flow)
        } else {
            self.pending.extend_from_slice(input);
            self.resume(on_frame)
        }
    }

    /// Processes what an earlier [`FrameReader::feed`] left buffered.
    pub fn resume(
        &mut self,
        on_frame: &mut dyn FnMut(Frame<'_>) -> Flow,
    ) -> Result<Flow, FrameError> {
        let mut pending = std::mem::take(&mut self.pending);
        let (used, flow) = self.process(&mut pending, on_frame)?;
        if used < pending.len() {
            pending.drain(..used);
            if pending.capacity() > 4 * pending.len().max(1024) {
                pending.shrink_to_fit();
            }
            self.pending = pending;
        }
        Ok(flow)
    }

    fn keep(&mut self, rest: &[u8]) {
        if !rest.is_empty() {
            self.pending.extend_from_slice(rest);
        }
    }

    /// Processes whole frames from the start of `buf`; returns the bytes used.
    fn process(
        &mut self,
        buf: &mut [u8],
        on_frame: &mut dyn FnMut(Frame<'_>) -> Flow,
    ) -> Result<(usize, Flow), FrameError> {
        let mut at = 0;
        while let Some(header) = self.header(&buf[at..])? {
            let end = at + header.start + header.len;
            if end > buf.len() {
                break;
            }
            let payload = &mut buf[at + header.start..end];
            for (i, byte) in payload.iter_mut().enumerate() {
                *byte ^= header.mask[i & 3];
            }
            at = end;
            if self.deliver(&header, payload, on_frame)? == Flow::Pause {
                return Ok((at, Flow::Pause));
            }
        }
        Ok((at, Flow::Continue))
    }

    /// The header at the start of `buf`, `None` if incomplete; checks what
    /// can be checked before the payload arrives.
    fn header(&self, buf: &[u8]) -> Result<Option<Header>, FrameError> {
        if buf.len() < 2 {
            return Ok(None);
        }
        let (b0, b1) = (buf[0], buf[1]);
        if b0 & 0x70 != 0 {
            return Err(FrameError::Protocol(
                "reserved bits set (no extension was agreed)",
            ));
        }
        let opcode = b0 & 0x0f;
        let fin = b0 & 0x80 != 0;
        if b1 & 0x80 == 0 {
            return Err(FrameError::Protocol("client frames must be masked"));
        }
        let (len, mut start) = match b1 & 0x7f {
            126 if buf.len() < 4 => return Ok(None),
            126 => (u16::from_be_bytes([buf[2], buf[3]]) as u64, 4),
            127 if buf.len() < 10 => return Ok(None),
            127 => {
                let mut n = [0u8; 8];
                n.copy_from_slice(&buf[2..10]);
                (u64::from_be_bytes(n), 10)
            }
            n => (n as u64, 2),
        };
        match opcode {
            OP_CLOSE | OP_PING | OP_PONG => {
                if !fin || len > 125 {
                    return Err(FrameError::Protocol("control frames are short and whole"));
                }
            }
            OP_TEXT | OP_BINARY if self.fragmented.is_some() => {
                return Err(FrameError::Protocol("new message inside a fragmented one"));
            }
            OP_CONTINUATION if self.fragmented.is_none() => {
                return Err(FrameError::Protocol("continuation without a message"));
            }
            OP_TEXT | OP_BINARY | OP_CONTINUATION => {
                let so_far = self.message.len() as u64;
                if so_far.saturating_add(len) > self.max_message as u64 {
                    return Err(FrameError::TooBig {
                        limit: self.max_message,
                    });
                }
            }
            _ => return Err(FrameError::Protocol("unknown opcode")),
        }
        if buf.len() < start + 4 {
            return Ok(None);
        }
        let mut mask = [0u8; 4];
        mask.copy_from_slice(&buf[start..start + 4]);
        start += 4;
        Ok(Some(Header {
            fin,
            opcode,
            mask,
            start,
            // Bounded above by max_message or 125, so it fits.
            len: len as usize,
        }))
    }

    fn deliver(
        &mut self,
        header: &Header,
        payload: &[u8],
        on_frame: &mut dyn FnMut(Frame<'_>) -> Flow,
    ) -> Result<Flow, FrameError> {
        match header.opcode {
            OP_PING => Ok(on_frame(Frame::Ping(payload))),
            OP_PONG => Ok(on_frame(Frame::Pong)),
            OP_CLOSE => {
                let code =
                    (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]));
                Ok(on_frame(Frame::Close(code)))
            }
            opcode if header.fin && self.fragmented.is_none() => {
                message_frame(opcode, payload, on_frame)
            }
            opcode => {
                if opcode != OP_CONTINUATION {
                    self.fragmented = Some(opcode);
                }
                self.message.extend_from_slice(payload);
                if !header.fin {
                    return Ok(Flow::Continue);
                }
                let message = std::mem::take(&mut self.message);
                let opcode = self.fragmented.take().unwrap_or(OP_BINARY);
                message_frame(opcode, &message, on_frame)
            }
        }
    }
}

fn message_frame(
    opcode: u8,
    payload: &[u8],
    on_frame: &mut dyn FnMut(Frame<'_>) -> Flow,
) -> Result<Flow, FrameError> {
    if opcode == OP_TEXT {
        let text = std::str::from_utf8(payload).map_err(|_| FrameError::InvalidUtf8)?;
        Ok(on_frame(Frame::Text(text)))
    } else {
        Ok(on_frame(Frame::Binary(payload)))
    }
}

fn write_header(out: &mut Vec<u8>, opcode: u8, len: usize) {
    out.push(0x80 | opcode);
    if len < 126 {
        out.push(len as u8);
    } else if len <= u16::MAX as usize {
        out.push(126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
}

/// Appends one unfragmented text frame carrying `parts` concatenated.
pub fn write_text(out: &mut Vec<u8>, parts: &[&[u8]]) {
    let len = parts.iter().map(|p| p.len()).sum();
    out.reserve(len + 10);
    write_header(out, OP_TEXT, len);
    for part in parts {
        out.extend_from_slice(part);
    }
}

/// Appends a pong answering a ping with `payload` (at most 125 bytes).
pub fn write_pong(out: &mut Vec<u8>, payload: &[u8]) {
    write_header(out, OP_PONG, payload.len());
    out.extend_from_slice(payload);
}

/// Appends a close frame with `code` and a short `reason` (cut to fit the
/// 125-byte control frame limit at a character boundary).
pub fn write_close(out: &mut Vec<u8>, code: u16, reason: &str) {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    write_header(out, OP_CLOSE, 2 + end);
    out.extend_from_slice(&code.to_be_bytes());
    out.extend_from_slice(&reason.as_bytes()[..end]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A frame as a client sends it (masked).
    fn client_frame(fin: bool, opcode: u8, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
        let mut out = Vec::new();
        write_header(&mut out, opcode, payload.len());
        if !fin {
            out[0] &= 0x7f;
        }
        out[1] |= 0x80;
        out.extend_from_slice(&mask);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i & 3]));
        out
    }

    #[derive(Debug, PartialEq, Eq)]
    enum Owned {
        Text(String),
        Binary(Vec<u8>),
        Ping(Vec<u8>),
        Pong,
        Close(Option<u16>),
    }

    fn collect(reader: &mut FrameReader, chunks: &[&[u8]]) -> Result<Vec<Owned>, FrameError> {
        let mut got = Vec::new();
        for chunk in chunks {
            let mut chunk = chunk.to_vec();
            reader.feed(&mut chunk, &mut |frame| {
                got.push(match frame {
                    Frame::Text(t) => Owned::Text(t.to_string()),
                    Frame::Binary(b) => Owned::Binary(b.to_vec()),
                    Frame::Ping(p) => Owned::Ping(p.to_vec()),
                    Frame::Pong => Owned::Pong,
                    Frame::Close(c) => Owned::Close(c),
                });
                Flow::Continue
            })?;
        }
        Ok(got)
    }

    #[test]
    fn the_rfc_accept_key_example() {
        assert_eq!(
            accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn reads_fragmented_messages_with_control_frames_between() {
        let mut bytes = client_frame(false, OP_TEXT, b"hel", [1, 2, 3, 4]);
        bytes.extend(client_frame(true, OP_PING, b"p", [5, 6, 7, 8]));
        bytes.extend(client_frame(true, OP_CONTINUATION, b"lo", [9, 9, 9, 9]));
        let mut reader = FrameReader::new(100);
        let got = collect(&mut reader, &[&bytes]).unwrap();
        assert_eq!(
            got,
            [Owned::Ping(b"p".to_vec()), Owned::Text("hello".into())]
        );
        assert!(!reader.has_pending());
    }

    #[test]
    fn refuses_an_oversized_frame_from_its_header() {
        let frame = client_frame(true, OP_TEXT, &[b'a'; 200], [0; 4]);
        let mut reader = FrameReader::new(100);
        // Only the header has arrived: refused before the payload is read.
        assert_eq!(
            collect(&mut reader, &[&frame[..8]]),
            Err(FrameError::TooBig { limit: 100 })
        );
        assert_eq!(FrameError::TooBig { limit: 1 }.close_code(), 1009);
    }

    #[test]
    fn refuses_unmasked_frames_and_bad_utf8() {
        let mut unmasked = client_frame(true, OP_TEXT, b"x", [0; 4]);
        unmasked[1] &= 0x7f;
        assert!(matches!(
            collect(&mut FrameReader::new(100), &[&unmasked]),
            Err(FrameError::Protocol(_))
        ));
        let bad = client_frame(true, OP_TEXT, &[0xff, 0xfe], [1, 1, 1, 1]);
        assert_eq!(
            collect(&mut FrameReader::new(100), &[&bad]),
            Err(FrameError::InvalidUtf8)
        );
    }

    #[test]
    fn pausing_keeps_the_rest_for_resume() {
        let mut bytes = client_frame(true, OP_TEXT, b"a", [1, 2, 3, 4]);
        bytes.extend(client_frame(true, OP_TEXT, b"b", [1, 2, 3, 4]));
        let mut reader = FrameReader::new(100);
        let mut got = Vec::new();
        let flow = reader
            .feed(&mut bytes, &mut |f| {
                got.push(format!("{f:?}"));
                Flow::Pause
            })
            .unwrap();
        assert_eq!(flow, Flow::Pause);
        assert!(reader.has_pending());
        reader
            .resume(&mut |f| {
                got.push(format!("{f:?}"));
                Flow::Continue
            })
            .unwrap();
        assert_eq!(got, ["Text(\"a\")", "Text(\"b\")"]);
        assert!(!reader.has_pending());
    }

    #[test]
    fn server_frames_have_the_right_lengths() {
        for len in [0, 125, 126, 65_535, 65_536] {
            let payload = vec![b'x'; len];
            let mut out = Vec::new();
            write_text(&mut out, &[&payload]);
            // Parse it back as if masked with a zero mask.
            let mut masked = out.clone();
            masked[1] |= 0x80;
            let header = match len {
                0..=125 => 2,
                126..=65_535 => 4,
                _ => 10,
            };
            masked.splice(header..header, [0u8; 4]);
            let got = collect(&mut FrameReader::new(1 << 20), &[&masked]).unwrap();
            assert_eq!(got, [Owned::Text("x".repeat(len))]);
        }
        let mut close = Vec::new();
        write_close(&mut close, 1009, &"é".repeat(100));
        assert!(close.len() <= 127);
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..8)) {
            let mut reader = FrameReader::new(256);
            let chunks: Vec<&[u8]> = chunks.iter().map(|c| c.as_slice()).collect();
            let _ = collect(&mut reader, &chunks);
        }

        #[test]
        fn encoded_frames_read_back_whatever_the_chunking(
            messages in proptest::collection::vec(("\\PC{0,40}", 1usize..4, any::<[u8; 4]>()), 1..6),
            cut in any::<proptest::sample::Index>(),
        ) {
            let mut bytes = Vec::new();
            for (text, pieces, mask) in &messages {
                // Split each message into fragments at char boundaries.
                let chars: Vec<char> = text.chars().collect();
                let per = chars.len().div_ceil(*pieces).max(1);
                let parts: Vec<String> = if chars.is_empty() {
                    vec![String::new()]
                } else {
                    chars.chunks(per).map(|c| c.iter().collect()).collect()
                };
                for (i, part) in parts.iter().enumerate() {
                    let opcode = if i == 0 { OP_TEXT } else { OP_CONTINUATION };
                    bytes.extend(client_frame(i + 1 == parts.len(), opcode, part.as_bytes(), *mask));
                }
            }
            let at = cut.index(bytes.len() + 1);
            let mut reader = FrameReader::new(1024);
            let got = collect(&mut reader, &[&bytes[..at], &bytes[at..]]).unwrap();
            let expected: Vec<_> = messages.iter().map(|(t, _, _)| Owned::Text(t.clone())).collect();
            prop_assert_eq!(got, expected);
            prop_assert!(!reader.has_pending());
        }
    }
}
