//! One Engine.IO session: which transport carries it, its heartbeat, and
//! the protocol state above it.
//!
//! Everything the server sends a session goes through its [`Outbox`] (the
//! hub's bounded queue), so there is one writer at a time: the polling
//! `GET` being answered, or the WebSocket once the upgrade completed.
//! Which of them may take from the outbox is decided here, under the
//! session's lock, so a long-poll ending and a WebSocket starting never
//! both write.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::hub::{Batch, Event, Outbox};

/// Which transport carries the session now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Carrier {
    /// HTTP long-polling.
    Polling,
    /// A WebSocket answered the upgrade probe; polling is being paused
    /// (a waiting `GET` is answered with a noop).
    Upgrading,
    /// The WebSocket carries everything.
    WebSocket,
}

/// Why a session ended, as the protocol above hears it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The client closed it (Engine.IO close packet, WebSocket close,
    /// protocol DISCONNECT).
    ClientClosed,
    /// The connection dropped, or the client sent what cannot be parsed.
    TransportLost,
    /// No pong within the ping timeout.
    PingTimeout,
    /// The protocol above never connected within its timeout.
    ConnectTimeout,
    /// The server closed the session's outbox (slow consumer, flooding,
    /// shutdown, or the protocol's own end): it was told why.
    ServerClosed,
}

#[derive(Debug)]
struct State {
    carrier: Carrier,
    /// A polling `GET` is being answered.
    polling: bool,
    /// A polling `POST` is being read.
    posting: bool,
    /// When the ping now awaiting its pong was queued.
    ping_sent: Option<Instant>,
    /// When the next ping is due.
    next_ping: Instant,
    ended: bool,
    /// Why it ended, once it has.
    ended_by: Option<Ended>,
}

/// One Engine.IO session; `S` is the protocol state above it.
#[derive(Debug)]
pub struct Session<S> {
    /// The session id clients send back (`sid`).
    pub sid: Arc<str>,
    /// The client's address, for limits and logs.
    pub ip: IpAddr,
    /// Opened over TLS (HTTPS / WSS); its requests must all come so.
    pub encrypted: bool,
    /// The protocol above (a Socket.IO socket).
    pub socket: S,
    /// Everything the server sends this session, in order.
    pub outbox: Arc<Outbox>,
    state: Mutex<State>,
    /// Wakes whoever holds the transport when the carrier changes or the
    /// session ends (waiters enable their `notified()` before checking).
    changed: Notify,
    /// Signalled by the protocol above when it can take input again
    /// after asking the transport to pause reading.
    pub space: Notify,
    pub(super) opened: Instant,
}

impl<S> Session<S> {
    pub(super) fn new(
        sid: Arc<str>,
        ip: IpAddr,
        encrypted: bool,
        socket: S,
        outbox: Arc<Outbox>,
        carrier: Carrier,
        ping_interval: Duration,
    ) -> Session<S> {
        let now = Instant::now();
        Session {
            sid,
            ip,
            encrypted,
            socket,
            outbox,
            state: Mutex::new(State {
                carrier,
                polling: false,
                posting: false,
                ping_sent: None,
                next_ping: now + ping_interval,
                ended: false,
                ended_by: None,
            }),
            changed: Notify::new(),
            space: Notify::new(),
            opened: now,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Every update is a single field write: a panic cannot tear it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn carrier(&self) -> Carrier {
        self.lock().carrier
    }

    pub fn is_ended(&self) -> bool {
        self.lock().ended
    }

    /// Wakes the transport's waiters (carrier change, end).
    pub(super) fn changed(&self) -> &Notify {
        &self.changed
    }

    /// Marks the session ended for `why`; `false` if it already was.
    pub(super) fn mark_ended(&self, why: Ended) -> bool {
        let first = {
            let mut state = self.lock();
            let first = !std::mem::replace(&mut state.ended, true);
            if first {
                state.ended_by = Some(why);
            }
            first
        };
        self.changed.notify_waiters();
        first
    }

    /// Whether the client itself closed the session (a waiting long-poll
    /// is then answered with a noop, as the reference server does: the
    /// client knows, and a close packet would read as the server's).
    pub(super) fn closed_by_client(&self) -> bool {
        self.lock().ended_by == Some(Ended::ClientClosed)
    }

    /// A pong arrived: the client is alive.
    pub(super) fn pong(&self) {
        self.lock().ping_sent = None;
    }

    /// The heartbeat's verdict at `now`: whether to queue a ping, or that
    /// the client missed the last one.
    ///
    /// `tick` is how often it is asked: a ping is counted as sent when it
    /// was due if that was at most one tick ago (the client's time to
    /// answer is then exactly `timeout`), else from now.
    pub(super) fn heartbeat(
        &self,
        now: Instant,
        interval: Duration,
        timeout: Duration,
        tick: Duration,
    ) -> Beat {
        let mut state = self.lock();
        if state.ended {
            return Beat::Nothing;
        }
        if let Some(sent) = state.ping_sent {
            return if now.duration_since(sent) >= timeout {
                Beat::TimedOut
            } else {
                Beat::Nothing
            };
        }
        if now >= state.next_ping {
            // Counted from when it was due, not from the tick that noticed
            // (the client's time to answer is exactly the timeout) — unless
            // that was more than a tick ago: then from now.
            let due = state.next_ping;
            let sent = if now.duration_since(due) <= tick {
                due
            } else {
                now
            };
            state.ping_sent = Some(sent);
            state.next_ping = sent + interval;
            return Beat::Ping;
        }
        Beat::Nothing
    }

    /// Whether the pong to the last ping is overdue at `now`.
    pub(super) fn pong_overdue(&self, now: Instant, timeout: Duration) -> bool {
        let state = self.lock();
        !state.ended
            && state
                .ping_sent
                .is_some_and(|sent| now.duration_since(sent) >= timeout)
    }

    /// Starts answering a polling `GET`; `Err` when one is already being
    /// answered (the protocol says to close the session) or the session
    /// does not poll.
    pub(super) fn begin_poll(&self) -> Result<PollGuard<'_, S>, PollRefusal> {
        let mut state = self.lock();
        if state.ended {
            return Err(PollRefusal::Ended);
        }
        if state.carrier == Carrier::WebSocket {
            return Err(PollRefusal::NotPolling);
        }
        if state.polling {
            return Err(PollRefusal::Overlapping);
        }
        state.polling = true;
        Ok(PollGuard(self))
    }

    /// Polling carries the session and no `GET` is being answered.
    pub(super) fn is_between_polls(&self) -> bool {
        let state = self.lock();
        state.carrier == Carrier::Polling && !state.polling
    }

    /// Starts reading a polling `POST`; `false` when one is already being read.
    pub(super) fn begin_post(&self) -> Option<PostGuard<'_, S>> {
        let mut state = self.lock();
        if state.posting || state.ended {
            return None;
        }
        state.posting = true;
        Some(PostGuard(self))
    }

    /// A WebSocket answered the probe: pause polling.
    pub(super) fn start_upgrade(&self) -> bool {
        let mut state = self.lock();
        if state.carrier != Carrier::Polling || state.ended {
            return false;
        }
        state.carrier = Carrier::Upgrading;
        drop(state);
        self.changed.notify_waiters();
        true
    }

    /// The client sent the upgrade packet: the WebSocket carries the
    /// session from now on. `false` if no upgrade was under way.
    pub(super) fn finish_upgrade(&self) -> bool {
        let mut state = self.lock();
        if state.carrier != Carrier::Upgrading || state.ended {
            return false;
        }
        state.carrier = Carrier::WebSocket;
        drop(state);
        self.changed.notify_waiters();
        true
    }

    /// The probing WebSocket went away before the upgrade completed:
    /// polling carries on.
    pub(super) fn abort_upgrade(&self) {
        let mut state = self.lock();
        if state.carrier == Carrier::Upgrading {
            state.carrier = Carrier::Polling;
        }
        drop(state);
        self.changed.notify_waiters();
    }

    /// Takes the outbox's queued packets for the transport `carrier`, if
    /// that transport carries the session now (checked under the session's
    /// lock, so a poll ending and a WebSocket starting never both take).
    pub(super) fn take_batch(
        &self,
        carrier: Carrier,
        batch: &mut Vec<Arc<Event>>,
    ) -> Option<Batch> {
        let state = self.lock();
        if state.ended || state.carrier != carrier {
            return None;
        }
        Some(self.outbox.try_next_batch(batch))
    }
}

/// What the heartbeat should do for one session.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Beat {
    Nothing,
    Ping,
    TimedOut,
}

/// Why a polling `GET` was refused.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum PollRefusal {
    Ended,
    NotPolling,
    Overlapping,
}

/// Held while a `GET` is answered; clears the flag however it ends (the
/// client may drop the request while it waits).
pub(super) struct PollGuard<'a, S>(&'a Session<S>);

impl<S> Drop for PollGuard<'_, S> {
    fn drop(&mut self) {
        self.0.lock().polling = false;
        self.0.changed.notify_waiters();
    }
}

/// Held while a `POST` is read.
pub(super) struct PostGuard<'a, S>(&'a Session<S>);

impl<S> Drop for PostGuard<'_, S> {
    fn drop(&mut self) {
        self.0.lock().posting = false;
    }
}
