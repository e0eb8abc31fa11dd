//! HTTP long-polling: the handshake `GET`, the long-poll `GET` that
//! carries what the server sends, and the `POST` that carries what the
//! client sends (Engine.IO v4, "HTTP long-polling").
//!
//! A waiting `GET` holds no timer of its own: the heartbeat's ping arrives
//! through the outbox like everything else and answers it.

use std::sync::Arc;

use axum::body::Body;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::packet::{self, Packet, PacketType, SEPARATOR};
use super::session::{Carrier, Ended, PollRefusal, Session};
use super::{text, Engine, EngineError, Flow, Handler, Input, CLOSE, NOOP};
use crate::hub::Batch;
use crate::telemetry::{Delivered, Transport};

/// `GET` without a session id: opens a session and answers the open packet.
pub(super) fn handshake<H: Handler>(
    engine: &Engine<H>,
    ip: std::net::IpAddr,
    encrypted: bool,
) -> Response {
    match engine.open(ip, encrypted, Carrier::Polling) {
        Ok(session) => text(StatusCode::OK, engine.handshake(&session, &["websocket"])),
        Err(refused) => text(StatusCode::SERVICE_UNAVAILABLE, refused),
    }
}

/// Most packets one long-poll answer carries (python-engineio's
/// `max_decode_packets` is 16; one is kept for a close packet).
pub const MAX_POLL_PACKETS: usize = 15;

/// `GET` with a session id: waits until there is something to send, then
/// answers it all as one payload.
pub(super) async fn poll<H: Handler>(
    engine: &Arc<Engine<H>>,
    session: Arc<Session<H::Socket>>,
) -> Response {
    let _polling = match session.begin_poll() {
        Ok(guard) => guard,
        Err(PollRefusal::Overlapping) => {
            // Two long-polls at once: the protocol says the session is broken.
            engine.end(&session, Ended::TransportLost);
            return EngineError::BadRequest.into_response();
        }
        Err(PollRefusal::Ended | PollRefusal::NotPolling) => {
            return EngineError::BadRequest.into_response();
        }
    };
    let mut batch = Vec::new();
    loop {
        let changed = session.changed().notified();
        tokio::pin!(changed);
        changed.as_mut().enable();
        if session.is_ended() {
            if session.closed_by_client() {
                // This poll is the one the close is answered on.
                engine.just_closed_by_client(&session.sid);
                return text(StatusCode::OK, NOOP);
            }
            return text(StatusCode::OK, CLOSE);
        }
        let Some(taken) = session.take_batch(Carrier::Polling, &mut batch) else {
            // Upgrading: this poll ends so the WebSocket can take over.
            return text(StatusCode::OK, NOOP);
        };
        match taken {
            Batch::Taken => {
                // At most MAX_POLL_PACKETS packets an answer: python-engineio
                // refuses a payload of more than 16 ("Unexpected packet
                // from server") and gives the session up. Events that do
                // not fit go back to the front of the queue, for the next
                // poll (which the client sends at once).
                let mut body = Vec::new();
                let mut packets = 0;
                let mut closing = None;
                let mut sent = 0;
                for event in &batch {
                    let mut encoded: Vec<Vec<u8>> = Vec::new();
                    let close = engine.encode_batch(
                        &session,
                        std::slice::from_ref(event),
                        &mut |p: &[u8]| encoded.push(p.to_vec()),
                    );
                    // A closing answer also carries the close packet.
                    let needed = encoded.len() + usize::from(close.is_some());
                    if sent > 0 && packets + needed > MAX_POLL_PACKETS {
                        break;
                    }
                    for p in &encoded {
                        if !body.is_empty() {
                            body.push(SEPARATOR);
                        }
                        body.extend_from_slice(p);
                    }
                    packets += encoded.len();
                    sent += 1;
                    if close.is_some() {
                        closing = close;
                        break;
                    }
                }
                let rest: Vec<_> = batch.drain(sent..).collect();
                if closing.is_none() {
                    session.outbox.requeue_front(rest);
                }
                Delivered::new(Transport::SocketIo).add(batch.len() as u64, body.len() as u64);
                if closing.is_some() {
                    body.push(SEPARATOR);
                    body.extend_from_slice(CLOSE);
                    engine.end(&session, Ended::ServerClosed);
                }
                return text(StatusCode::OK, body);
            }
            Batch::Finished => {
                engine.end(&session, Ended::ServerClosed);
                return text(StatusCode::OK, CLOSE);
            }
            Batch::Empty => {}
        }
        tokio::select! {
            _ = session.outbox.ready() => {}
            _ = changed => {}
        }
    }
}

/// How long a `POST` body may take to arrive, waits for the server to take
/// its packets (backpressure) not counted: a body trickled in byte by byte
/// does not hold its connection and session for minutes.
pub const BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// `POST` with a session id: the client's packets, handled in order as
/// they arrive. The body may hold any number of packets — clients such as
/// python-socketio batch what they queued into one body, whatever its
/// size — but each packet is bounded by `max_payload`, and only one
/// packet (the one arriving) is held at a time: `413` for a packet over
/// the bound, `408` for a body slower than [`BODY_TIMEOUT`].
pub(super) async fn post<H: Handler>(
    engine: &Arc<Engine<H>>,
    session: Arc<Session<H::Socket>>,
    body: Body,
) -> Response {
    use futures_util::StreamExt;
    let Some(_posting) = session.begin_post() else {
        return EngineError::BadRequest.into_response();
    };
    let limit = engine.config.max_payload;
    let mut chunks = body.into_data_stream();
    // The packet being received: bytes after the last separator.
    let mut pending: Vec<u8> = Vec::new();
    let mut reading = std::time::Duration::ZERO;
    loop {
        let started = tokio::time::Instant::now();
        let left = BODY_TIMEOUT.saturating_sub(reading);
        let chunk = match tokio::time::timeout(left, chunks.next()).await {
            Err(_) => {
                return text(
                    StatusCode::REQUEST_TIMEOUT,
                    format!(
                        "a polling body must arrive within {} s",
                        BODY_TIMEOUT.as_secs()
                    ),
                )
            }
            Ok(None) => None,
            Ok(Some(Ok(chunk))) => Some(chunk),
            Ok(Some(Err(_))) => return EngineError::BadRequest.into_response(),
        };
        reading += started.elapsed();
        let done = chunk.is_none();
        if let Some(chunk) = chunk {
            pending.extend_from_slice(&chunk);
        }
        // Every complete packet in what has arrived, in order; the last
        // one is complete only once the body has ended.
        let mut start = 0;
        while let Some(at) = pending[start..]
            .iter()
            .position(|&b| b == packet::SEPARATOR)
        {
            let end = start + at;
            if end - start > limit {
                return text(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("a polling packet may hold at most {limit} bytes"),
                );
            }
            if let Some(response) = handle_record(engine, &session, &pending[start..end]).await {
                return response;
            }
            start = end + 1;
        }
        pending.drain(..start);
        if pending.len() > limit {
            return text(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("a polling packet may hold at most {limit} bytes"),
            );
        }
        if done {
            if pending.len() > limit {
                return text(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("a polling packet may hold at most {limit} bytes"),
                );
            }
            if !pending.is_empty() {
                if let Some(response) = handle_record(engine, &session, &pending).await {
                    return response;
                }
            }
            return text(StatusCode::OK, "ok");
        }
    }
}

/// One packet of a `POST` body; a response when the body must end here.
async fn handle_record<H: Handler>(
    engine: &Arc<Engine<H>>,
    session: &Arc<Session<H::Socket>>,
    record: &[u8],
) -> Option<Response> {
    let Ok(record) = std::str::from_utf8(record) else {
        return Some(EngineError::BadRequest.into_response());
    };
    let flow = match packet::decode(record) {
        Ok(Packet::Text(PacketType::Message, data)) => {
            engine.handler.message(session, Input::Text(data))
        }
        Ok(Packet::Binary(data)) => engine.handler.message(session, Input::Binary(&data)),
        Ok(Packet::Text(PacketType::Pong, _)) => {
            session.pong();
            Flow::Continue
        }
        Ok(Packet::Text(PacketType::Close, _)) => {
            engine.end(session, Ended::ClientClosed);
            return Some(text(StatusCode::OK, "ok"));
        }
        Ok(Packet::Text(_, _)) => Flow::Continue,
        Err(e) => {
            // As the reference server does: a client that sends what
            // cannot be parsed has lost the thread; end the session.
            tracing::debug!(sid = %session.sid, error = %e, "bad engine.io packet");
            engine.end(session, Ended::TransportLost);
            return Some(text(StatusCode::BAD_REQUEST, e.to_string()));
        }
    };
    if flow == Flow::Pause {
        wait_for_space(engine, session).await;
    }
    None
}

/// Holds this `POST` (and so the client's next one) until the protocol
/// above can take input again, or the session ends.
async fn wait_for_space<H: Handler>(engine: &Engine<H>, session: &Session<H::Socket>) {
    loop {
        let space = session.space.notified();
        let changed = session.changed().notified();
        tokio::pin!(space, changed);
        space.as_mut().enable();
        changed.as_mut().enable();
        if session.is_ended() || engine.handler.can_take(&session.socket) {
            return;
        }
        tokio::select! {
            _ = space => {}
            _ = changed => {}
        }
    }
}
