//! The WebSocket transport: the upgrade handshake, and one task per
//! connection that reads frames and writes the session's outbox.
//!
//! The task owns the socket directly (taken back from hyper after the
//! upgrade; plain TCP or TLS, see [`MaybeTlsStream`]), so an idle
//! connection holds neither a read nor a write buffer: it waits for
//! readiness, reads into a stack buffer, and builds an output buffer only
//! while a batch is being written — all the outbox's queued packets as
//! frames, with one `write`. Over TLS, what the session took but could not
//! yet send counts as still being written.

use std::io;
use std::net::IpAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use hyper_util::rt::TokioIo;

use super::frame::{self, close_code, Flow, Frame, FrameReader};
use super::packet::{self, Packet, PacketType};
use super::session::{Carrier, Ended, Session};
use super::{text, Engine, EngineError, Handler, Input};
use crate::hub::{Batch, CloseReason, Event, EventKind};
use crate::limits::{ConnectionGuard, CountedStream};
use crate::telemetry::{Delivered, Transport};
use crate::tls::MaybeTlsStream;

/// Answers a WebSocket upgrade request: a new session, or (with `sid`)
/// the upgrade of a polling one.
pub(super) fn upgrade<H: Handler>(
    engine: Arc<Engine<H>>,
    mut request: Request,
    ip: IpAddr,
    encrypted: bool,
    existing: Option<Arc<Session<H::Socket>>>,
) -> Response {
    let Some(key) = websocket_key(request.headers()) else {
        return EngineError::BadRequest.into_response();
    };
    let (session, probing) = match existing {
        Some(session) if session.carrier() == Carrier::Polling && !session.is_ended() => {
            (session, true)
        }
        // A second WebSocket for a session that has one (or has ended):
        // accepted and closed at once, as the reference server does — a
        // `400` here is an error clients raise, a close they handle.
        Some(_) => return accept_and_close(&engine, &mut request, &key),
        None => match engine.open(ip, encrypted, Carrier::WebSocket) {
            Ok(session) => {
                // The open packet is the first thing the client reads.
                let open = engine.handshake(&session, &[]);
                session.outbox.push(Event::new(EventKind::Wire {
                    bytes: Bytes::from(open),
                }));
                (session, false)
            }
            Err(refused) => return text(StatusCode::SERVICE_UNAVAILABLE, refused),
        },
    };
    let accept = frame::accept_key(key.as_bytes());
    let on_upgrade = hyper::upgrade::on(&mut request);
    let tracker = engine.tracker.clone();
    tracker.spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(upgraded) => upgraded,
            Err(e) => {
                tracing::debug!(error = %e, "websocket upgrade failed");
                return give_up(&engine, &session, probing);
            }
        };
        match upgraded.downcast::<TokioIo<CountedStream>>() {
            Ok(parts) => {
                let (stream, slot) = parts.io.into_inner().into_parts();
                drive(engine, session, stream, slot, parts.read_buf, probing).await;
            }
            Err(_) => {
                tracing::error!("websocket upgrade on an unexpected connection type");
                give_up(&engine, &session, probing);
            }
        }
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::UPGRADE, "websocket")
        .header(header::CONNECTION, "Upgrade")
        .header(header::SEC_WEBSOCKET_ACCEPT, accept)
        .body(Body::empty())
        .unwrap_or_else(|_| EngineError::BadRequest.into_response())
}

/// Completes the upgrade, then closes the WebSocket (1000) without a word
/// of Engine.IO.
fn accept_and_close<H: Handler>(
    engine: &Arc<Engine<H>>,
    request: &mut Request,
    key: &str,
) -> Response {
    let accept = frame::accept_key(key.as_bytes());
    let on_upgrade = hyper::upgrade::on(request);
    engine.tracker.spawn(async move {
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        if let Ok(parts) = upgraded.downcast::<TokioIo<CountedStream>>() {
            let (mut stream, _slot) = parts.io.into_inner().into_parts();
            let mut out = Vec::new();
            frame::write_close(&mut out, close_code::NORMAL, "");
            let write = async {
                let mut sent = 0;
                while sent < out.len() {
                    stream.writable().await?;
                    match stream.try_write(&out[sent..]) {
                        Ok(n) => sent += n,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                        Err(e) => return Err(e),
                    }
                }
                Ok::<(), io::Error>(())
            };
            let _ = tokio::time::timeout(CLOSE_FLUSH, write).await;
        }
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::UPGRADE, "websocket")
        .header(header::CONNECTION, "Upgrade")
        .header(header::SEC_WEBSOCKET_ACCEPT, accept)
        .body(Body::empty())
        .unwrap_or_else(|_| EngineError::BadRequest.into_response())
}

/// The client's `Sec-WebSocket-Key`, if the request is a valid RFC 6455
/// upgrade (version 13).
fn websocket_key(headers: &HeaderMap) -> Option<String> {
    let has_token = |name: header::HeaderName, token: &str| {
        headers.get_all(name).iter().any(|v| {
            v.to_str()
                .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    if !has_token(header::CONNECTION, "upgrade") || !has_token(header::UPGRADE, "websocket") {
        return None;
    }
    if headers.get(header::SEC_WEBSOCKET_VERSION)?.as_bytes() != b"13" {
        return None;
    }
    let key = headers.get(header::SEC_WEBSOCKET_KEY)?.to_str().ok()?;
    Some(key.to_string())
}

fn give_up<H: Handler>(engine: &Engine<H>, session: &Arc<Session<H::Socket>>, probing: bool) {
    if probing {
        session.abort_upgrade();
    } else {
        engine.end(session, Ended::TransportLost);
    }
}

/// The connection's write side and what the reader decided.
struct Link {
    /// Frames not yet written; empty (unallocated) when idle.
    out: Vec<u8>,
    /// Bytes of `out` already written.
    sent: usize,
    /// A close frame is queued: end once `out` is written.
    closing: bool,
    /// This WebSocket carries the session (not only probing).
    carries: bool,
    /// Reading waits until the protocol above can take input.
    paused: bool,
    /// Reading waits until the replies the client provoked (pongs, the
    /// probe's answer) are written: a client that pings and never reads
    /// is held back by TCP, not by the server's memory.
    stalled: bool,
    why: Ended,
    /// When a closing connection stops trying to write what is left.
    give_up_at: Option<tokio::time::Instant>,
    /// The outbox's closing has been seen (its wake-up is spent).
    saw_outbox_close: bool,
}

impl Link {
    /// Bytes queued and not yet written.
    fn unsent(&self) -> usize {
        self.out.len() - self.sent
    }

    /// After queuing a reply: whether to stop reading until it is written.
    fn stall_if_full(&mut self) -> Flow {
        if self.unsent() >= MAX_UNSENT_REPLIES {
            self.stalled = true;
            Flow::Pause
        } else {
            Flow::Continue
        }
    }

    fn close(&mut self, code: u16, reason: &str, why: Ended) {
        if !self.closing {
            frame::write_close(&mut self.out, code, reason);
            self.closing = true;
            self.why = why;
            self.give_up_at = Some(tokio::time::Instant::now() + CLOSE_FLUSH);
        }
    }
}

/// The close code that tells a client why the server closed it.
fn close_code_for(reason: &CloseReason) -> u16 {
    match reason {
        CloseReason::Shutdown => close_code::GOING_AWAY,
        CloseReason::SlowConsumer { .. } | CloseReason::Flooding => close_code::POLICY,
        CloseReason::ProtocolError => close_code::PROTOCOL_ERROR,
        CloseReason::TokenExpired | CloseReason::Removed { .. } => close_code::POLICY,
        CloseReason::IdleTimeout | CloseReason::Quit => close_code::NORMAL,
    }
}

/// How long a closing connection may take to write its last frames (a
/// client that stopped reading never takes them).
const CLOSE_FLUSH: std::time::Duration = std::time::Duration::from_secs(2);

/// Size of the stack buffer each read uses.
const READ_CHUNK: usize = 8192;

/// Most bytes of replies a client provoked (pongs) that wait unwritten
/// before its socket is no longer read; reading resumes below half of it.
pub const MAX_UNSENT_REPLIES: usize = 64 * 1024;

/// Runs one WebSocket until either side closes it.
async fn drive<H: Handler>(
    engine: Arc<Engine<H>>,
    session: Arc<Session<H::Socket>>,
    mut stream: MaybeTlsStream,
    _slot: ConnectionGuard,
    leftover: Bytes,
    probing: bool,
) {
    let mut reader = FrameReader::new(engine.config.max_payload);
    let mut link = Link {
        out: Vec::new(),
        sent: 0,
        closing: false,
        carries: !probing,
        paused: false,
        stalled: false,
        why: Ended::TransportLost,
        give_up_at: None,
        saw_outbox_close: false,
    };
    let delivered = Delivered::new(Transport::SocketIo);
    let mut batch: Vec<Arc<Event>> = Vec::new();
    // What hyper read past the request, if anything. Even empty, this
    // shares hyper's whole read buffer (8 KiB and more): copy it out and
    // let the buffer go now, not when the connection ends.
    let mut early = leftover.to_vec();
    drop(leftover);
    if !early.is_empty() {
        feed(&engine, &session, &mut reader, &mut link, &mut early);
    }
    drop(early);
    loop {
        let changed = session.changed().notified();
        let space = session.space.notified();
        tokio::pin!(changed, space);
        changed.as_mut().enable();
        space.as_mut().enable();

        if link.carries && session.is_ended() {
            link.close(close_code::NORMAL, "", link.why);
        }
        if !link.carries && session.is_ended() {
            break;
        }
        if link.paused && !link.closing && engine.handler.can_take(&session.socket) {
            link.paused = false;
            if !link.stalled {
                resume(&engine, &session, &mut reader, &mut link);
            }
        }
        if link.stalled && !link.closing && link.unsent() < MAX_UNSENT_REPLIES / 2 {
            link.stalled = false;
            if !link.paused {
                resume(&engine, &session, &mut reader, &mut link);
            }
        }
        let taken = match link.carries && link.out.is_empty() && !link.closing {
            true => session.take_batch(Carrier::WebSocket, &mut batch),
            false => None,
        };
        if let Some(taken) = taken {
            match taken {
                Batch::Taken => {
                    let out = &mut link.out;
                    let closing = engine.encode_batch(&session, &batch, &mut |p: &[u8]| {
                        frame::write_text(out, &[p]);
                    });
                    delivered.add(batch.len() as u64, link.out.len() as u64);
                    batch.clear();
                    // A burst (a crowd joining) grows it; an idle socket
                    // should not keep that.
                    if batch.capacity() > 16 {
                        batch = Vec::new();
                    }
                    if let Some(reason) = closing {
                        engine.end(&session, Ended::ServerClosed);
                        link.close(
                            close_code_for(&reason),
                            &reason.describe(),
                            Ended::ServerClosed,
                        );
                    }
                }
                Batch::Finished => {
                    engine.end(&session, Ended::ServerClosed);
                    link.close(close_code::NORMAL, "", Ended::ServerClosed);
                }
                Batch::Empty => {}
            }
        }
        if link.sent < link.out.len() {
            // Most writes complete at once; readiness is awaited only for
            // a client that is slow to read.
            match stream.try_write(&link.out[link.sent..]) {
                Ok(n) => link.sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => break,
            }
            if link.sent == link.out.len() {
                link.out = Vec::new();
                link.sent = 0;
                if link.closing && !stream.has_pending_output() {
                    break;
                }
                continue;
            }
        } else if stream.has_pending_output() {
            // TLS took the frames and holds some of them, encrypted.
            match stream.try_flush() {
                Ok(()) => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => break,
            }
        } else if link.closing {
            break;
        }
        let writing = link.sent < link.out.len() || stream.has_pending_output();
        let give_up = link.give_up_at.unwrap_or_else(tokio::time::Instant::now);
        tokio::select! {
            _ = tokio::time::sleep_until(give_up), if link.closing && writing => break,
            // Stuck in a write while the outbox closed: the client is too
            // slow to read even its close. It leaves the hub now; its last
            // frames get CLOSE_FLUSH.
            _ = session.outbox.closed(), if writing && link.carries && !link.saw_outbox_close => {
                link.saw_outbox_close = true;
                if let Some(reason @ CloseReason::SlowConsumer { .. }) = session.outbox.closing() {
                    engine.end(&session, Ended::ServerClosed);
                    link.close(close_code_for(&reason), &reason.describe(), Ended::ServerClosed);
                }
            }
            ready = stream.writable(), if writing => {
                if ready.is_err() {
                    break;
                }
            }
            _ = session.outbox.ready(), if link.carries && !writing && !link.closing => {}
            ready = stream.readable(), if !link.paused && !link.stalled && !link.closing => {
                if ready.is_err() || !read(&engine, &session, &mut stream, &mut reader, &mut link) {
                    break;
                }
            }
            _ = space, if link.paused => {}
            _ = changed => {}
        }
    }
    if link.carries {
        engine.end(&session, link.why);
    } else {
        session.abort_upgrade();
    }
}

/// One read; `false` when the connection is gone.
fn read<H: Handler>(
    engine: &Engine<H>,
    session: &Arc<Session<H::Socket>>,
    stream: &mut MaybeTlsStream,
    reader: &mut FrameReader,
    link: &mut Link,
) -> bool {
    let mut buf = [0u8; READ_CHUNK];
    match stream.try_read(&mut buf) {
        Ok(0) => {
            link.why = Ended::TransportLost;
            false
        }
        Ok(n) => {
            feed(engine, session, reader, link, &mut buf[..n]);
            true
        }
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => true,
        Err(_) => false,
    }
}

fn feed<H: Handler>(
    engine: &Engine<H>,
    session: &Arc<Session<H::Socket>>,
    reader: &mut FrameReader,
    link: &mut Link,
    bytes: &mut [u8],
) {
    let result = reader.feed(bytes, &mut |f| on_frame(engine, session, link, f));
    if let Err(e) = result {
        link.close(e.close_code(), &e.to_string(), Ended::TransportLost);
    }
}

fn resume<H: Handler>(
    engine: &Engine<H>,
    session: &Arc<Session<H::Socket>>,
    reader: &mut FrameReader,
    link: &mut Link,
) {
    if reader.has_pending() {
        let result = reader.resume(&mut |f| on_frame(engine, session, link, f));
        if let Err(e) = result {
            link.close(e.close_code(), &e.to_string(), Ended::TransportLost);
        }
    }
}

fn on_frame<H: Handler>(
    engine: &Engine<H>,
    session: &Arc<Session<H::Socket>>,
    link: &mut Link,
    frame: Frame<'_>,
) -> Flow {
    if link.closing {
        return Flow::Pause;
    }
    let input = match frame {
        Frame::Text(text) => match packet::decode(text) {
            Ok(Packet::Text(PacketType::Message, data)) => Input::Text(data),
            Ok(Packet::Text(kind, data)) => {
                engine_packet(engine, session, link, kind, data);
                return if link.closing {
                    Flow::Pause
                } else {
                    link.stall_if_full()
                };
            }
            Ok(Packet::Binary(data)) => {
                return message(engine, session, link, Input::Binary(&data));
            }
            Err(e) => {
                link.close(
                    close_code::INVALID_DATA,
                    &e.to_string(),
                    Ended::TransportLost,
                );
                return Flow::Pause;
            }
        },
        Frame::Binary(data) => Input::Binary(data),
        Frame::Ping(payload) => {
            // A pong is a reply the client asked for: it spends the
            // client's flood budget, and waits its turn to be written.
            if engine.handler.control(session) {
                frame::write_pong(&mut link.out, payload);
            }
            return link.stall_if_full();
        }
        Frame::Pong => return Flow::Continue,
        Frame::Close(_) => {
            link.close(close_code::NORMAL, "", Ended::ClientClosed);
            return Flow::Pause;
        }
    };
    message(engine, session, link, input)
}

fn message<H: Handler>(
    engine: &Engine<H>,
    session: &Arc<Session<H::Socket>>,
    link: &mut Link,
    input: Input<'_>,
) -> Flow {
    let flow = engine.handler.message(session, input);
    if flow == Flow::Pause {
        link.paused = true;
    }
    flow
}

/// Engine.IO's own packets: heartbeat, the upgrade probe, close.
fn engine_packet<H: Handler>(
    engine: &Engine<H>,
    session: &Arc<Session<H::Socket>>,
    link: &mut Link,
    kind: PacketType,
    data: &str,
) {
    match kind {
        PacketType::Pong => session.pong(),
        PacketType::Ping if data == "probe" && !link.carries => {
            if session.start_upgrade() {
                frame::write_text(&mut link.out, &[b"3probe"]);
            } else {
                link.close(close_code::NORMAL, "upgrade refused", Ended::TransportLost);
            }
        }
        PacketType::Upgrade if !link.carries => {
            if session.finish_upgrade() {
                link.carries = true;
            }
        }
        PacketType::Close => link.close(close_code::NORMAL, "", Ended::ClientClosed),
        // Clients do not ping in v4; one that does is answered within its
        // flood budget (see `Handler::control`).
        PacketType::Ping => {
            if engine.handler.control(session) {
                let mut pong = Vec::with_capacity(data.len() + 1);
                packet::encode_into(PacketType::Pong, data, &mut pong);
                frame::write_text(&mut link.out, &[&pong]);
            }
        }
        PacketType::Open | PacketType::Upgrade | PacketType::Noop | PacketType::Message => {}
    }
}
