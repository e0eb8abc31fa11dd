//! Command-line options of a benchmark run.

use clap::{Args, ValueEnum};
use serde::{Deserialize, Serialize};

/// Wire protocol the clients speak.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    /// The line protocol: `You are ADDR`, then `NAME: text` per relayed line
    /// (hubbub's TCP listener, the Go chat).
    #[default]
    Tcp,
    /// Socket.IO v5 over WebSocket: `chat` {message} in, `notice` {message} out
    /// (hubbub's HTTP listener, the Node socket.io chat).
    Socketio,
}

/// One benchmark run. Every field has a default except `addr`, so tests can
/// write `Options { addr, ..Options::default() }`.
#[derive(Debug, Clone, Args, Serialize)]
pub struct Options {
    /// Protocol to speak.
    #[arg(long, value_enum, default_value = "tcp")]
    pub proto: Proto,
    /// Server address (HOST:PORT): the TCP listener, or the HTTP listener for
    /// socketio. Several, comma-separated, spread the clients over the nodes
    /// of a cluster: client i connects to the (i mod N)-th.
    #[arg(
        long,
        value_name = "HOST:PORT",
        default_value = "",
        hide_default_value = true
    )]
    pub addr: String,
    /// Connections to open (every one is a receiver).
    #[arg(long, default_value_t = 100)]
    pub clients: usize,
    /// How many of the clients also send (the first S; with rooms they spread over the rooms).
    #[arg(long, default_value_t = 10)]
    pub senders: usize,
    /// Messages per sender.
    #[arg(long, default_value_t = 100)]
    pub messages: usize,
    /// Total messages per second over all senders; 0 = each sender as fast as it can.
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,
    /// Bytes of chat text per message (at least the timestamp header, ~30 bytes).
    #[arg(long, default_value_t = 64)]
    pub payload: usize,
    /// Spread the clients over K rooms (client i in room r(i mod K)); needs
    /// hubbub (`/join` on TCP, `join` on Socket.IO). The peers have one room.
    #[arg(long, default_value_t = 1)]
    pub rooms: usize,
    /// The server's pid, to read its RSS (VmRSS in /proc/PID/status).
    #[arg(long)]
    pub pid: Option<u32>,
    /// Only connect the clients, wait until the server is quiet, measure RSS
    /// per connection, disconnect.
    #[arg(long)]
    pub idle_only: bool,
    /// Print the report as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Hard stop for the whole run, in seconds (connects, settling, load, drain).
    #[arg(long, default_value_t = 60.0)]
    pub timeout: f64,
    /// Exit non-zero when messages were lost or connections failed.
    #[arg(long)]
    pub strict: bool,
    /// Connection attempts (connect + handshake + room join) in flight at once.
    #[arg(long, default_value_t = 200)]
    pub connect_concurrency: usize,
    /// After the last send, stop once nothing has been delivered for this many seconds.
    #[arg(long, default_value_t = 5.0)]
    pub drain: f64,
    /// The server counts as quiet (before load, and for --idle-only) once no
    /// client has received a byte for this many milliseconds.
    #[arg(long, default_value_t = 500)]
    pub quiet_ms: u64,
    /// Longest wait for the server to become quiet after connecting, in seconds.
    #[arg(long, default_value_t = 120.0)]
    pub settle_max: f64,
    /// Name of the server's default room, which Socket.IO clients leave after
    /// joining their own room (so connects do not announce themselves to everyone).
    #[arg(long, default_value = "lobby")]
    pub default_room: String,
    /// Socket.IO with rooms: send `join` right after the connect (`40{…}`)
    /// instead of after hubbub's `welcome` event (reproduces a lost-join race).
    #[arg(long)]
    pub eager_join: bool,
    /// Label copied into the report (for `hubbub-bench report`).
    #[arg(long)]
    pub scenario: Option<String>,
    /// Label copied into the report (for `hubbub-bench report`).
    #[arg(long)]
    pub server: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            proto: Proto::Tcp,
            addr: String::new(),
            clients: 100,
            senders: 10,
            messages: 100,
            rate: 0.0,
            payload: 64,
            rooms: 1,
            pid: None,
            idle_only: false,
            json: false,
            timeout: 60.0,
            strict: false,
            connect_concurrency: 200,
            drain: 5.0,
            quiet_ms: 500,
            settle_max: 120.0,
            default_room: "lobby".into(),
            eager_join: false,
            scenario: None,
            server: None,
        }
    }
}

impl Options {
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            !self.addr.is_empty() && self.addr.split(',').all(|a| !a.trim().is_empty()),
            "--addr is required (HOST:PORT, or several, comma-separated)"
        );
        anyhow::ensure!(self.clients > 0, "--clients must be at least 1");
        anyhow::ensure!(self.rooms > 0, "--rooms must be at least 1");
        anyhow::ensure!(
            self.senders <= self.clients,
            "--senders ({}) cannot exceed --clients ({})",
            self.senders,
            self.clients
        );
        anyhow::ensure!(
            self.rate >= 0.0 && self.rate.is_finite(),
            "--rate must be >= 0"
        );
        anyhow::ensure!(self.timeout > 0.0, "--timeout must be > 0");
        anyhow::ensure!(
            self.connect_concurrency > 0,
            "--connect-concurrency must be >= 1"
        );
        Ok(())
    }

    /// The address client `client` connects to (see `addr`).
    pub fn addr_of(&self, client: usize) -> &str {
        let addrs: Vec<&str> = self.addr.split(',').map(str::trim).collect();
        addrs[client % addrs.len()]
    }

    /// Room index of client `i`.
    pub fn room_of(&self, client: usize) -> usize {
        client % self.rooms
    }
}

/// Name of room `k` (`r0`, `r1`, …).
pub fn room_name(k: usize) -> String {
    format!("r{k}")
}
