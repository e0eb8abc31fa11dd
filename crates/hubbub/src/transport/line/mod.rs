//! The TCP line protocol: the seed's Go chat, plus nicknames, rooms, private
//! messages and slash commands (docs/PROTOCOL.md), in plain text or over TLS
//! (`--tls-tcp-addr`, see [`crate::tls`]).
//!
//! Each connection has two tasks. The connection task reads lines
//! ([`reader`]), applies flood control, parses them ([`command`]) and calls
//! the hub. The writer task drains the session's outbox and writes each batch
//! with one syscall, encoding events with [`format`]. A writer blocked on a
//! client that does not read blocks nobody else: the hub only ever pushes
//! into the outbox, and closes it at its bound.

pub mod command;
pub mod format;
pub mod reader;

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::stream::{FuturesOrdered, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio::time::{sleep_until, timeout, Instant};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::client::{self, Client, Command, GuestNames, Identity, Reply};
use crate::hub::{
    CloseReason, Event, Hub, HubError, MembersQuery, Outbox, Posted, RoomMembers, Session,
    WireFormat,
};
use crate::limits::{Acceptor, ConnectionGuard, ConnectionLimiter, FloodControl, FloodVerdict};
use crate::store::PageQuery;
use crate::telemetry::{self, Transport};
use crate::tls::{Tls, TlsListener};
use command::{Input, HELP};
use reader::{Line, LineReader};

/// What a connection refused for lack of file descriptors is told.
pub const OUT_OF_DESCRIPTORS: &[u8] = b"! server busy, retry later\n";

/// What the line transport needs from the configuration.
#[derive(Debug, Clone)]
pub struct LineSettings {
    /// Longest accepted line in bytes, line end excluded.
    pub max_line_bytes: usize,
    /// Lines per second per connection; `0` turns flood control off.
    pub flood_rate: f64,
    pub flood_burst: u32,
    /// Rejected lines within the strike window before a disconnect.
    pub flood_kick: u32,
    /// Disconnect after this long without a line; `None` = never.
    pub idle_timeout: Option<Duration>,
    /// How long a closing connection may take to flush what is queued.
    pub linger: Duration,
}

/// Everything a connection task shares with the others.
#[derive(Debug, Clone)]
pub struct LineTransport {
    pub hub: Arc<Hub>,
    pub accounts: Arc<crate::accounts::Accounts>,
    pub moderation: Arc<crate::moderation::Moderation>,
    pub limiter: Arc<ConnectionLimiter>,
    pub settings: Arc<LineSettings>,
    pub shutdown: CancellationToken,
    pub tracker: TaskTracker,
}

impl LineTransport {
    /// Accepts connections until shutdown, in plain text or, with `tls`,
    /// over TLS; each runs in its own tracked task.
    pub async fn serve(self, mut acceptor: Acceptor, tls: Option<Arc<Tls>>) {
        let listener = match tls {
            Some(_) => TlsListener::Line.label(),
            None => "line",
        };
        loop {
            let (stream, peer) = tokio::select! {
                _ = self.shutdown.cancelled() => return,
                accepted = acceptor.accept() => accepted,
            };
            telemetry::connection_accepted(listener);
            let transport = self.clone();
            let tls = tls.clone();
            self.tracker.spawn(async move {
                if let Err(e) = transport.connection(stream, peer, tls).await {
                    tracing::debug!(%peer, error = %e, "line connection ended with an error");
                }
            });
        }
    }

    /// Takes a connection slot, then (over TLS) does the handshake while
    /// holding it, and runs the session.
    async fn connection(
        self,
        stream: TcpStream,
        peer: SocketAddr,
        tls: Option<Arc<Tls>>,
    ) -> io::Result<()> {
        stream.set_nodelay(true)?;
        let guard = match self.limiter.acquire(peer.ip()) {
            Ok(guard) => guard,
            Err(refused) => {
                crate::limits::warn_refusal("connection_cap", &peer.to_string());
                if tls.is_some() {
                    // Before a handshake, closing is all it can be told.
                    return Ok(());
                }
                return refuse(stream, &refused.to_string()).await;
            }
        };
        match tls {
            None => {
                let (read_half, write_half) = stream.into_split();
                self.session(read_half, write_half, peer, false, guard)
                    .await
            }
            Some(tls) => {
                let handshake = tokio::select! {
                    done = Box::pin(tls.handshake(TlsListener::Line, stream, peer)) => done,
                    _ = self.shutdown.cancelled() => None,
                };
                let Some(stream) = handshake else {
                    return Ok(());
                };
                let (read_half, write_half) = tokio::io::split(stream);
                Box::pin(self.session(read_half, write_half, peer, true, guard)).await
            }
        }
    }

    /// One client's session, from the greeting to the goodbye, on a
    /// connection whose slot is `guard`; `encrypted` when over TLS.
    async fn session<R, W>(
        self,
        mut read_half: R,
        mut write_half: W,
        peer: SocketAddr,
        encrypted: bool,
        guard: ConnectionGuard,
    ) -> io::Result<()>
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let session = match Box::pin(open_as_peer(&self.hub, peer)).await {
            Ok(session) => session,
            Err(e) => return refuse(&mut write_half, &e.to_string()).await,
        };
        tracing::debug!(%peer, encrypted, "line client connected");
        telemetry::session_opened(Transport::Line);
        let outbox = session.outbox().clone();
        let mut writer = tokio::spawn(write_loop(write_half, outbox.clone()));

        let mut reader = LineReader::new(self.settings.max_line_bytes);
        let mut flood = FloodControl::new(
            self.settings.flood_rate,
            self.settings.flood_burst,
            self.settings.flood_kick,
        );
        let far_future = Instant::now() + Duration::from_secs(86400 * 365);
        let idle_deadline = || {
            self.settings
                .idle_timeout
                .map_or(far_future, |d| Instant::now() + d)
        };
        let mut deadline = idle_deadline();

        let mut in_flight = InFlight::new();
        let client = Client::new(
            Identity::new(
                self.accounts.clone(),
                crate::accounts::Peer {
                    ip: peer.ip(),
                    encrypted,
                },
                GuestNames::Address(peer),
                false,
            ),
            self.moderation.clone(),
        );

        // The token expiry this client was last warned of.
        let mut warned_for = None;
        let close = loop {
            let line = tokio::select! {
                biased;
                _ = self.shutdown.cancelled() => break Some(CloseReason::Shutdown),
                _ = outbox.closed() => break None,
                Some(outcome) = in_flight.next(), if !in_flight.is_empty() => {
                    report(&session, outcome);
                    continue;
                }
                // One timer for the idle timeout and the token (its
                // warning, then its expiry): each timer is part of every
                // idle connection's task.
                _ = sleep_until(token_due(&client, warned_for).map_or(deadline, |due| due.min(deadline))) => {
                    if Instant::now() >= deadline {
                        break Some(CloseReason::IdleTimeout);
                    }
                    match token_due(&client, warned_for) {
                        Some(due) if Instant::now() >= due => {}
                        _ => continue,
                    }
                    if warned_for == client.identity.token_exp() {
                        // Not refreshed with a new `/token` in time.
                        break Some(CloseReason::TokenExpired);
                    }
                    warned_for = client.identity.token_exp();
                    let left = client.identity.token_left().unwrap_or_default().as_secs();
                    session.error(
                        "token_expiring",
                        format!("your token expires in {left} s; send /token JWT with a new one"),
                    );
                    continue;
                }
                line = reader.next_line(&mut read_half) => line,
            };
            let line = match line {
                Ok(Some(line)) => line,
                Ok(None) => break None,
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "read failed");
                    break None;
                }
            };
            deadline = idle_deadline();
            match flood.check(std::time::Instant::now()) {
                FloodVerdict::Accept => {}
                FloodVerdict::Reject { first } => {
                    self.hub
                        .stats()
                        .flood_rejected_lines
                        .fetch_add(1, Ordering::Relaxed);
                    telemetry::flood_refused(Transport::Line);
                    if first {
                        session.error(
                            "flood",
                            "you are sending too fast; lines are dropped until you slow down",
                        );
                    }
                    continue;
                }
                FloodVerdict::Disconnect => {
                    self.hub
                        .stats()
                        .flood_disconnects
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::info!(%peer, "disconnecting a flooding client");
                    break Some(CloseReason::Flooding);
                }
            }
            match line {
                Line::Text(text) => {
                    let context = Context {
                        in_flight: &mut in_flight,
                        flood: &mut flood,
                        client: &client,
                    };
                    // On the heap while it runs: a command's state (a
                    // login, a moderation request) would otherwise be
                    // part of every idle connection's task, kilobytes each.
                    if let Some(quit) = Box::pin(handle(&session, &text, context)).await {
                        session.set_leave_reason(quit.as_deref());
                        break Some(CloseReason::Quit);
                    }
                }
                Line::TooLong => session.error(
                    "line_too_long",
                    format!(
                        "line too long (at most {} bytes); it was discarded",
                        self.settings.max_line_bytes
                    ),
                ),
                Line::InvalidUtf8 => {
                    session.error("invalid_utf8", "line is not valid UTF-8; it was discarded")
                }
                Line::Control => session.error(
                    "control_characters",
                    "line contains control characters; it was discarded",
                ),
            }
        };
        // Messages already accepted are still committed and relayed, and
        // their errors reported, before the goodbye.
        let settle = async {
            while let Some(outcome) = in_flight.next().await {
                report(&session, outcome);
            }
        };
        // One deadline for both waits, so the goodbye still has time.
        let deadline = Instant::now() + self.settings.linger / 2;
        let _ = tokio::time::timeout_at(deadline, Box::pin(settle)).await;
        if close == Some(CloseReason::Shutdown) {
            // Every other connection's messages too: nobody here is told
            // goodbye before a message its sender saw committed.
            let _ = tokio::time::timeout_at(deadline, Box::pin(self.hub.quiesce())).await;
        }
        telemetry::session_closed(
            Transport::Line,
            close.as_ref().or(outbox.closing().as_ref()),
        );
        if let Some(reason) = close {
            outbox.close(reason);
        }
        // Leave now, so the room hears of it without waiting for our flush.
        drop(session);
        drop(guard);
        Box::pin(finish_writer(&mut writer, self.settings.linger)).await;
        tracing::debug!(%peer, "line client disconnected");
        Ok(())
    }
}

/// When the client's token next needs something done, if it has one: its
/// expiry warning ([`crate::tokens::EXPIRY_WARNING`] before it expires)
/// unless the client was warned for this token (`warned_for`), else its
/// expiry. (Token times are whole seconds: a due time is exact to a second.)
fn token_due(client: &Client, warned_for: Option<u64>) -> Option<Instant> {
    let left = client.identity.token_left()?;
    Some(if warned_for == client.identity.token_exp() {
        Instant::now() + left
    } else {
        Instant::now() + left.saturating_sub(crate::tokens::EXPIRY_WARNING)
    })
}

/// Gives the writer `linger` to flush, then cuts it off.
async fn finish_writer(writer: &mut JoinHandle<io::Result<()>>, linger: Duration) {
    if timeout(linger, &mut *writer).await.is_err() {
        writer.abort();
    }
}

/// Tells a refused client why, without waiting on it for long.
async fn refuse<W: AsyncWrite + Unpin>(mut stream: W, why: &str) -> io::Result<()> {
    let line = format!("{}{why}\n", format::ERROR_PREFIX);
    let _ = timeout(Duration::from_secs(1), stream.write_all(line.as_bytes())).await;
    let _ = timeout(Duration::from_secs(1), stream.shutdown()).await;
    Ok(())
}

/// Drains the outbox onto the socket, one write per batch, until it closes.
async fn write_loop<W: AsyncWrite + Unpin>(mut socket: W, outbox: Arc<Outbox>) -> io::Result<()> {
    let mut batch: Vec<Arc<Event>> = Vec::new();
    let delivered = telemetry::Delivered::new(Transport::Line);
    while outbox.next_batch(&mut batch).await {
        if let [event] = batch.as_slice() {
            let bytes = event.encoded(WireFormat::Line, format::encode);
            socket.write_all(bytes).await?;
            socket.flush().await?;
            delivered.add(1, bytes.len() as u64);
        } else {
            let encoded: Vec<_> = batch
                .iter()
                .map(|e| e.encoded(WireFormat::Line, format::encode))
                .collect();
            let mut buf = Vec::with_capacity(encoded.iter().map(|b| b.len()).sum());
            for bytes in encoded {
                buf.extend_from_slice(bytes);
            }
            socket.write_all(&buf).await?;
            // Over TLS, what the session took may still wait in it.
            socket.flush().await?;
            delivered.add(batch.len() as u64, buf.len() as u64);
        }
        batch.clear();
        // Keep an idle connection small after a burst.
        if batch.capacity() > 16 {
            batch = Vec::new();
        }
    }
    socket.shutdown().await
}

/// Carries out one text line. Returns `Some(reason)` when the client quits.
/// Messages of one connection submitted but not yet committed, oldest first.
type InFlight = FuturesOrdered<BoxFuture<'static, Result<Posted, HubError>>>;

/// Most messages one line connection may have in flight: past this, its
/// reads wait for the oldest to be committed (backpressure).
const MAX_IN_FLIGHT: usize = client::MAX_IN_FLIGHT;

/// A line connection's messages in flight, as the client core waits for
/// them before a presence change: each outcome is reported as it comes.
struct Settle<'a> {
    session: &'a Session,
    in_flight: &'a mut InFlight,
}

#[async_trait::async_trait]
impl client::InFlight for Settle<'_> {
    async fn settle(&mut self) {
        while let Some(outcome) = self.in_flight.next().await {
            report(self.session, outcome);
        }
    }
}

/// Tells the client about a message that could not be sent.
fn report(session: &Session, outcome: Result<Posted, HubError>) {
    if let Err(e) = outcome {
        session.error(e.code(), e.to_string());
    }
}

/// Submits a room message and keeps reading: up to [`MAX_IN_FLIGHT`]
/// messages wait for their commit at once, so one connection's lines share
/// transactions instead of each paying for its own.
async fn send(
    session: &Session,
    text: &str,
    action: bool,
    in_flight: &mut InFlight,
) -> Result<(), HubError> {
    telemetry::message_received(Transport::Line);
    let submitted = session.submit(None, text, action).await?;
    in_flight.push_back(Box::pin(submitted.committed()));
    while in_flight.len() >= MAX_IN_FLIGHT {
        if let Some(outcome) = in_flight.next().await {
            report(session, outcome);
        }
    }
    Ok(())
}

/// What a command may use of its connection besides the session.
struct Context<'a> {
    in_flight: &'a mut InFlight,
    flood: &'a mut FloodControl,
    client: &'a Client,
}

async fn handle(session: &Session, line: &str, context: Context<'_>) -> Option<Option<String>> {
    let Context {
        in_flight,
        flood,
        client,
    } = context;
    let input = match command::parse(line) {
        Ok(input) => input,
        Err(e) => {
            session.error(e.code(), e.message());
            return None;
        }
    };
    let command = match input {
        Input::Say(text) => return refused(session, send(session, text, false, in_flight).await),
        Input::Me(action) => return refused(session, send(session, action, true, in_flight).await),
        Input::Msg { to, text } => {
            telemetry::message_received(Transport::Line);
            return refused(session, session.private(to, text).await.map(drop));
        }
        Input::Quit(reason) => return Some(reason.map(str::to_string)),
        Input::Help => {
            session.notice(HELP);
            return None;
        }
        Input::Rooms => {
            rooms(session, flood);
            return None;
        }
        Input::Who(after) => Command::Members {
            room: None,
            query: MembersQuery {
                after: after.map(str::to_string),
                limit: 0,
            },
        },
        Input::Nick(nick) => Command::Rename { nick, first: None },
        Input::Register(password) => Command::Register { password },
        Input::Login { nick, password } => Command::Login { nick, password },
        Input::Logout => Command::Logout,
        Input::Password { old, new } => Command::Password { old, new },
        Input::Unregister(password) => Command::Unregister { password },
        Input::Whois(nick) => Command::Whois { nick },
        Input::Token(token) => Command::Token { token },
        Input::Join(room) => Command::Join {
            room,
            since: None,
            alone: true,
        },
        Input::History(count) => Command::History {
            room: None,
            query: PageQuery {
                before: None,
                after: None,
                limit: count,
            },
        },
        Input::Moderate(request) => Command::Moderate(request),
    };
    let mut pending = Settle { session, in_flight };
    match client.apply(session, &mut pending, command).await {
        Ok(reply) => render(session, flood, reply).await,
        Err(refusal) => session.error(refusal.code, refusal.message),
    }
    None
}

/// Tells the client why a request failed, if it did.
fn refused(session: &Session, result: Result<(), HubError>) -> Option<Option<String>> {
    if let Err(e) = result {
        session.error(e.code(), e.to_string());
    }
    None
}

/// `/rooms`: the room listing, as one notice.
fn rooms(session: &Session, flood: &mut FloodControl) {
    let listing = session.hub().rooms();
    flood.charge(
        listing
            .rooms
            .iter()
            .map(|r| r.name.len() + 8 + r.topic.as_ref().map_or(0, |t| t.len()))
            .sum(),
    );
    let list: Vec<_> = listing
        .rooms
        .iter()
        .map(|r| match &r.topic {
            Some(topic) => format!("{} ({}, topic: {topic})", r.name, r.members),
            None => format!("{} ({})", r.name, r.members),
        })
        .collect();
    let count = plural(listing.total, "room");
    session.notice(if listing.rooms.len() < listing.total {
        format!(
            "{count}, the {} with the most members: {}",
            listing.rooms.len(),
            list.join(", ")
        )
    } else {
        format!("{count}: {}", list.join(", "))
    });
}

/// Renders what the client core did as the line protocol's notices;
/// replies that cost the server bytes are charged to flood control.
async fn render(session: &Session, flood: &mut FloodControl, reply: Reply) {
    match reply {
        Reply::Renamed { logged_out } => {
            if logged_out {
                session.notice("you left your account's nickname: logged out");
            }
        }
        Reply::Registered(done) => {
            session.notice(format!("you registered {}; you are logged in", done.nick))
        }
        Reply::LoggedIn(done) => session.notice(format!("you are logged in as {}", done.nick)),
        Reply::Token(done) => {
            // A refresh (the same subject's new token) reads the same.
            session.notice(format!("you are logged in as {}", done.nick));
            if done.refreshed {
                return;
            }
            if let Some(room) = done.rooms.first() {
                session.switch_to(room).await.ok();
            }
        }
        Reply::Refreshed(_) => session.notice("token refreshed"),
        Reply::LoggedOut(None) => {
            session.notice("logged out (you keep your nickname until you change it)")
        }
        Reply::LoggedOut(Some(nick)) => session.notice(format!(
            "logged out; your other sessions keep the account's nickname, you are now {nick}"
        )),
        Reply::PasswordChanged(_) => session.notice("password changed"),
        Reply::Unregistered(nick) => {
            session.notice(format!("account {nick} deleted; the nickname is free"))
        }
        Reply::Whois(whois) => {
            let status = match (whois.registered, whois.here, whois.logged_in) {
                (true, true, true) => "registered; here, logged in",
                (true, true, false) => "registered; here, not logged in",
                (true, false, _) => "registered; not here",
                (false, true, _) => "not registered; here",
                (false, false, _) => "not registered; not here",
            };
            let devices = if whois.sessions > 1 {
                format!(" (on {} devices)", whois.sessions)
            } else {
                String::new()
            };
            session.notice(format!("{}: {status}{devices}", whois.nick));
        }
        Reply::Joined { members, .. } => {
            let (header, listing, more) = member_page(&members);
            session.notice(format!(
                "you are now in {} ({header}: {listing}){more}",
                members.name
            ))
        }
        Reply::Parted(room) => session.notice(format!("you left {room}")),
        Reply::Members(room) => {
            flood.charge(room.members.iter().map(|m| m.len() + 2).sum());
            let (header, listing, more) = member_page(&room);
            session.notice(if listing.is_empty() {
                format!("{} ({header})", room.name)
            } else {
                format!("{} ({header}): {listing}{more}", room.name)
            })
        }
        Reply::History {
            room,
            messages,
            complete,
        } => {
            flood.charge(
                messages
                    .iter()
                    .map(|m| m.text.len() + m.from.len() + 24)
                    .sum(),
            );
            session.deliver_history(room, messages, complete);
        }
        Reply::Moderated(outcome) => {
            flood.charge(outcome.text.len());
            session.notice(outcome.text)
        }
    }
}

/// A page of members as `(header, listing, more)`: `3 members`,
/// `5012 members, 200 listed` or `5012 members, last 12`; `alice, bob`;
/// and ` (more: /who zed)` when a next page follows, else empty.
fn member_page(room: &RoomMembers) -> (String, String, String) {
    let count = plural(room.count, "member");
    let header = match &room.next {
        None if room.members.len() == room.count => count,
        None if room.members.is_empty() => format!("{count}, none after that"),
        None => format!("{count}, last {}", room.members.len()),
        Some(_) => format!("{count}, {} listed", room.members.len()),
    };
    let more = room
        .next
        .as_ref()
        .map_or_else(String::new, |next| format!(" (more: /who {next})"));
    (header, room.listing(), more)
}

fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// Opens a session named after the client's address, as the Go chat does.
/// An address can be in use already: a client keeps its source port for
/// connections to different servers, so two nodes of a cluster (or one
/// node behind a load balancer that reuses ports) can see the same
/// `IP:PORT`. Then the name gets a suffix: `IP:PORT-2`, `-3`, ….
async fn open_as_peer(hub: &Arc<Hub>, peer: SocketAddr) -> Result<Session, HubError> {
    let name = peer.to_string();
    let names = std::iter::once(name.clone()).chain((2..=9).map(|n| format!("{name}-{n}")));
    let client = crate::hub::ClientInfo {
        wants_typing: false,
        one_room: true,
        ip: Some(peer.ip()),
    };
    hub.open_first_free(names, client)
        .await
        .map_err(|e| match e {
            HubError::NickInUse(_) => HubError::NickInUse(name),
            e => e,
        })
}
