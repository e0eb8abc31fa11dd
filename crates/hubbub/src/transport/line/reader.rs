//! Splits a byte stream (TCP, or TLS over TCP) into checked text lines.
//!
//! Written by hand rather than with `tokio_util`'s `LinesCodec` for two
//! reasons. `FramedRead` keeps an 8 KiB buffer per connection for its whole
//! life, while an idle hubbub connection must cost a few KiB in all: this
//! reader waits with no buffer (each read goes to the stack first and only
//! what arrived is kept) and gives its buffer back whenever it is empty. And the line protocol wants to keep the connection
//! after bad input, with a distinct answer per fault (too long, not UTF-8,
//! control characters), which `LinesCodec` reports as fatal errors.
//!
//! Rules: a line ends at LF; one CR before it is dropped; a final line
//! without LF at end of stream still counts. A line longer than the limit is
//! reported once as [`Line::TooLong`] and the rest of it, up to its LF, is
//! discarded. Invalid UTF-8 and control characters other than TAB reject the
//! whole line.

use std::io;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::Poll;

use tokio::io::{AsyncRead, ReadBuf};

/// Bytes asked of the kernel per read.
const READ_CHUNK: usize = 4096;

/// One line as received, or why it was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    Text(String),
    /// Longer than the limit; the whole line is discarded.
    TooLong,
    /// Not valid UTF-8; the line is discarded.
    InvalidUtf8,
    /// Contains a control character (other than TAB); the line is discarded.
    Control,
}

/// Incremental line splitter with a byte limit per line.
#[derive(Debug)]
pub struct LineReader {
    buf: Vec<u8>,
    /// How much of `buf` is known to hold no LF.
    scanned: usize,
    max_line: usize,
    /// Inside an over-long line: drop bytes until the next LF.
    discarding: bool,
    eof: bool,
}

impl LineReader {
    pub fn new(max_line: usize) -> LineReader {
        LineReader {
            buf: Vec::new(),
            scanned: 0,
            max_line,
            discarding: false,
            eof: false,
        }
    }

    /// The next line, or `None` at end of stream. A read error after
    /// bytes without a newline ends the stream with them as its last line.
    ///
    /// Cancel safe: a read that completes moves its bytes into the buffer
    /// within the same poll, so a cancelled wait loses nothing.
    pub async fn next_line<R: AsyncRead + Unpin>(
        &mut self,
        socket: &mut R,
    ) -> io::Result<Option<Line>> {
        loop {
            if let Some(line) = self.take_line() {
                return Ok(Some(line));
            }
            if self.eof {
                return Ok(None);
            }
            let read = std::future::poll_fn(|cx| {
                let mut chunk = [MaybeUninit::<u8>::uninit(); READ_CHUNK];
                let mut chunk = ReadBuf::uninit(&mut chunk);
                match Pin::new(&mut *socket).poll_read(cx, &mut chunk) {
                    Poll::Ready(Ok(())) => {
                        self.buf.extend_from_slice(chunk.filled());
                        Poll::Ready(Ok(chunk.filled().len()))
                    }
                    Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                    Poll::Pending => Poll::Pending,
                }
            });
            match read.await {
                Ok(0) => self.eof = true,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // A connection reset ends the stream as a close does: what
                // the client sent before it (a last line without its
                // newline) is still a line. (Other errors, such as a TLS
                // stream cut short, drop the partial line.)
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset && !self.buf.is_empty() => {
                    self.eof = true
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Feeds bytes directly (for tests and non-socket sources).
    pub fn feed(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Marks the end of the stream (for tests and non-socket sources).
    pub fn finish(&mut self) {
        self.eof = true;
    }

    /// Takes one complete line out of the buffer, if there is one.
    pub fn take_line(&mut self) -> Option<Line> {
        loop {
            let newline = self.buf[self.scanned..]
                .iter()
                .position(|&b| b == b'\n')
                .map(|p| p + self.scanned);
            match newline {
                Some(end) => {
                    let line = self.consume(end, 1);
                    if std::mem::take(&mut self.discarding) {
                        // The tail of an over-long line already reported.
                        continue;
                    }
                    return Some(line);
                }
                None if self.discarding => {
                    self.buf.clear();
                    self.scanned = 0;
                    self.release_if_empty();
                    return None;
                }
                None if self.buf.len() > self.max_line + 1 => {
                    // No LF within the limit (+1 leaves room for a CR): report
                    // once, then drop the rest of the line as it arrives.
                    self.buf.clear();
                    self.scanned = 0;
                    self.discarding = true;
                    self.release_if_empty();
                    return Some(Line::TooLong);
                }
                None if self.eof && !self.buf.is_empty() => {
                    let end = self.buf.len();
                    return Some(self.consume(end, 0));
                }
                None => {
                    self.scanned = self.buf.len();
                    self.release_if_empty();
                    return None;
                }
            }
        }
    }

    /// Removes `buf[..end + skip]` and checks `buf[..end]` as a line.
    fn consume(&mut self, end: usize, skip: usize) -> Line {
        let mut raw = &self.buf[..end];
        if let Some(stripped) = raw.strip_suffix(b"\r") {
            raw = stripped;
        }
        let line = check(raw, self.max_line);
        self.buf.drain(..end + skip);
        self.scanned = 0;
        self.release_if_empty();
        line
    }

    /// An idle connection keeps no buffer.
    fn release_if_empty(&mut self) {
        if self.buf.is_empty() && self.buf.capacity() > 0 {
            self.buf = Vec::new();
        }
    }
}

fn check(raw: &[u8], max_line: usize) -> Line {
    if raw.len() > max_line {
        return Line::TooLong;
    }
    let Ok(text) = std::str::from_utf8(raw) else {
        return Line::InvalidUtf8;
    };
    if text.chars().any(|c| c.is_control() && c != '\t') {
        return Line::Control;
    }
    Line::Text(text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(max: usize, input: &[&[u8]]) -> Vec<Line> {
        let mut reader = LineReader::new(max);
        let mut out = Vec::new();
        for chunk in input {
            reader.feed(chunk);
            while let Some(line) = reader.take_line() {
                out.push(line);
            }
        }
        reader.finish();
        while let Some(line) = reader.take_line() {
            out.push(line);
        }
        out
    }

    fn text(s: &str) -> Line {
        Line::Text(s.into())
    }

    #[test]
    fn lf_crlf_and_final_line() {
        assert_eq!(
            lines(100, &[b"a\nb\r\nc"]),
            [text("a"), text("b"), text("c")]
        );
        assert_eq!(lines(100, &[b"\n"]), [text("")]);
    }

    #[test]
    fn split_across_reads() {
        assert_eq!(
            lines(100, &[b"hel", b"lo\r", b"\nwor", b"ld\n"]),
            [text("hello"), text("world")]
        );
    }

    #[test]
    fn too_long_is_reported_once_and_the_rest_discarded() {
        let long = vec![b'x'; 50];
        assert_eq!(
            lines(10, &[&long, &long, b"tail\nok\n"]),
            [Line::TooLong, text("ok")]
        );
        // Over the limit with the LF in the same read.
        assert_eq!(
            lines(10, &[b"0123456789ab\nok\n"]),
            [Line::TooLong, text("ok")]
        );
        // Exactly the limit is fine, with or without CR.
        assert_eq!(
            lines(10, &[b"0123456789\r\n0123456789\n"]),
            [text("0123456789"), text("0123456789")]
        );
    }

    #[test]
    fn invalid_utf8_and_controls() {
        assert_eq!(
            lines(100, &[b"ok\n\xff\xfe\nnul\0x\nesc\x1b[31m\ntab\there\n"]),
            [
                text("ok"),
                Line::InvalidUtf8,
                Line::Control,
                Line::Control,
                text("tab\there")
            ]
        );
        assert_eq!(
            lines(100, &["héllo wörld ✓\n".as_bytes()]),
            [text("héllo wörld ✓")]
        );
    }

    #[test]
    fn buffer_is_released_when_idle() {
        let mut reader = LineReader::new(100);
        reader.feed(b"hello\n");
        assert_eq!(reader.take_line(), Some(text("hello")));
        assert_eq!(reader.take_line(), None);
        assert_eq!(reader.buf.capacity(), 0);
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            /// Arbitrary bytes in arbitrary chunks: no panic, no line over
            /// the limit, and the buffer never holds more than a line and a
            /// read beyond it.
            #[test]
            fn arbitrary_input_never_panics(
                bytes in proptest::collection::vec(any::<u8>(), 0..2048),
                cuts in proptest::collection::vec(0usize..2048, 0..8),
                max in 1usize..64,
            ) {
                let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(bytes.len())).collect();
                cuts.push(0);
                cuts.push(bytes.len());
                cuts.sort_unstable();
                let chunks: Vec<&[u8]> = cuts.windows(2).map(|w| &bytes[w[0]..w[1]]).collect();
                for line in lines(max, &chunks) {
                    if let Line::Text(t) = line {
                        prop_assert!(t.len() <= max);
                        prop_assert!(!t.contains('\n'));
                    }
                }
            }

            /// Lines a client may send, joined with LF or CR LF and cut
            /// anywhere, come back exactly.
            #[test]
            fn encode_then_read_round_trips(
                sent in proptest::collection::vec("([^\\p{Cc}]|\t){0,40}", 0..12),
                crlf: bool,
                cut in 0usize..512,
            ) {
                let ending = if crlf { "\r\n" } else { "\n" };
                let wire: String = sent.iter().map(|l| format!("{l}{ending}")).collect();
                let cut = cut.min(wire.len());
                let read = lines(1024, &[&wire.as_bytes()[..cut], &wire.as_bytes()[cut..]]);
                let expected: Vec<Line> = sent.iter().map(|l| text(l)).collect();
                prop_assert_eq!(read, expected);
            }
        }
    }
}
