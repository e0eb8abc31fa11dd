//! The one typed configuration, from flags, `HUBBUB_*` environment variables
//! and an optional TOML file, in that order of precedence, over defaults.
//!
//! Every setting has all three spellings: `--flood-rate 5`,
//! `HUBBUB_FLOOD_RATE=5`, `flood-rate = 5` in the file named by `--config`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use serde::Deserialize;

use crate::store::Retention;
use crate::web::{AllowedOrigins, FrameAncestors};

/// Command line of the `hubbub` binary.
#[derive(Debug, Parser)]
#[command(name = "hubbub", version, about = "A self-hosted group-chat server")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub options: Options,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (the default when no subcommand is given).
    Serve,
    /// Server operators: confirm or revoke an account, in the configured
    /// store. Only this makes an account a server operator; it takes
    /// effect at the account's next login.
    Operator {
        #[command(subcommand)]
        action: OperatorAction,
    },
}

/// What `hubbub operator` does.
#[derive(Debug, Clone, Subcommand)]
pub enum OperatorAction {
    /// Makes the account registered under NICK a server operator.
    Add { nick: String },
    /// Takes server operator status from the account under NICK.
    Remove { nick: String },
}

/// Settings as given on the command line or in the environment; unset ones
/// fall back to the config file, then to [`Config::default`].
#[derive(Debug, Default, Args, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Options {
    /// TOML file with any of these settings (keys as the long flags, without --).
    #[arg(long, global = true, env = "HUBBUB_CONFIG", value_name = "FILE")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// TCP line-protocol listener, or `off` [default: 0.0.0.0:8888].
    #[arg(long, global = true, env = "HUBBUB_TCP_ADDR", value_name = "HOST:PORT")]
    pub tcp_addr: Option<String>,
    /// HTTP listener for the web page and Socket.IO, or `off` [default: 0.0.0.0:8080].
    #[arg(
        long,
        global = true,
        env = "HUBBUB_HTTP_ADDR",
        value_name = "HOST:PORT"
    )]
    pub http_addr: Option<String>,
    /// Admin listener for /metrics (Prometheus) and /readyz; keep it private [default: 127.0.0.1:8081].
    #[arg(
        long,
        global = true,
        env = "HUBBUB_ADMIN_ADDR",
        value_name = "HOST:PORT"
    )]
    pub admin_addr: Option<String>,
    /// Certificate chain (PEM, leaf first) for the TLS listeners; with --tls-key. SIGHUP reloads it [default: no TLS].
    #[arg(long, global = true, env = "HUBBUB_TLS_CERT", value_name = "PATH")]
    pub tls_cert: Option<PathBuf>,
    /// Private key (PEM: PKCS#8, RSA or EC) of --tls-cert.
    #[arg(long, global = true, env = "HUBBUB_TLS_KEY", value_name = "PATH")]
    pub tls_key: Option<PathBuf>,
    /// TLS line-protocol listener, or `off`; needs --tls-cert [default: 0.0.0.0:6697 with --tls-cert].
    #[arg(
        long,
        global = true,
        env = "HUBBUB_TLS_TCP_ADDR",
        value_name = "HOST:PORT"
    )]
    pub tls_tcp_addr: Option<String>,
    /// HTTPS listener (page, Socket.IO polling and WSS), or `off`; needs --tls-cert [default: 0.0.0.0:8443 with --tls-cert].
    #[arg(
        long,
        global = true,
        env = "HUBBUB_HTTPS_ADDR",
        value_name = "HOST:PORT"
    )]
    pub https_addr: Option<String>,
    /// Milliseconds a client has to complete the TLS handshake [default: 10000].
    #[arg(
        long,
        global = true,
        env = "HUBBUB_TLS_HANDSHAKE_TIMEOUT_MS",
        value_name = "MS"
    )]
    pub tls_handshake_timeout_ms: Option<u64>,
    /// Directory for persistent data [default: ./data].
    #[arg(long, global = true, env = "HUBBUB_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Room every client starts in [default: lobby].
    #[arg(long, global = true, env = "HUBBUB_DEFAULT_ROOM", value_name = "ROOM")]
    pub default_room: Option<String>,
    /// Longest accepted line in bytes; longer lines are rejected [default: 4096].
    #[arg(
        long,
        global = true,
        env = "HUBBUB_MAX_LINE_BYTES",
        value_name = "BYTES"
    )]
    pub max_line_bytes: Option<usize>,
    /// Lines per second per connection; 0 turns flood control off [default: 10].
    #[arg(long, global = true, env = "HUBBUB_FLOOD_RATE", value_name = "N")]
    pub flood_rate: Option<f64>,
    /// Lines a connection may send at once before the rate applies [default: 20].
    #[arg(long, global = true, env = "HUBBUB_FLOOD_BURST", value_name = "N")]
    pub flood_burst: Option<u32>,
    /// Lines rejected for flooding within 10 s before a disconnect; 0 = never [default: 50].
    #[arg(long, global = true, env = "HUBBUB_FLOOD_KICK", value_name = "N")]
    pub flood_kick: Option<u32>,
    /// Most connections open at once; 0 = no cap [default: 16384].
    #[arg(long, global = true, env = "HUBBUB_MAX_CONNECTIONS", value_name = "N")]
    pub max_connections: Option<usize>,
    /// Most connections from one IP address; 0 = no cap [default: 256].
    #[arg(
        long,
        global = true,
        env = "HUBBUB_MAX_CONNECTIONS_PER_IP",
        value_name = "N"
    )]
    pub max_connections_per_ip: Option<usize>,
    /// Seconds without input before a client is disconnected; 0 = never [default: 0].
    #[arg(long, global = true, env = "HUBBUB_IDLE_TIMEOUT", value_name = "SECS")]
    pub idle_timeout: Option<u64>,
    /// Bytes that may wait for one slow client before it is disconnected [default: 1048576].
    #[arg(
        long,
        global = true,
        env = "HUBBUB_OUTBOUND_LIMIT",
        value_name = "BYTES"
    )]
    pub outbound_limit: Option<usize>,
    /// Bytes that may wait for all clients together; past it the largest queues are disconnected as too slow first [default: 268435456].
    #[arg(
        long,
        global = true,
        env = "HUBBUB_OUTBOUND_TOTAL_LIMIT",
        value_name = "BYTES"
    )]
    pub outbound_total_limit: Option<usize>,
    /// Past this many connections in a room, its joins, leaves and renames are summarized every --presence-interval-ms (`* 37 joined, 4 left (5012 here)`) instead of announced one by one, and typing is not relayed there; 0: always announce [default: 100].
    #[arg(
        long,
        global = true,
        env = "HUBBUB_PRESENCE_THRESHOLD",
        value_name = "N"
    )]
    pub presence_threshold: Option<usize>,
    /// How often a room past --presence-threshold hears its presence summary, in milliseconds [default: 2000].
    #[arg(
        long,
        global = true,
        env = "HUBBUB_PRESENCE_INTERVAL_MS",
        value_name = "MS"
    )]
    pub presence_interval_ms: Option<u64>,
    /// Seconds an HTTP client has to send a request's head (request line and headers) [default: 10].
    #[arg(
        long,
        global = true,
        env = "HUBBUB_HTTP_HEADER_TIMEOUT",
        value_name = "SECS"
    )]
    pub http_header_timeout: Option<u64>,
    /// Seconds an HTTP connection may go without a byte either way (a WebSocket is watched by the Engine.IO heartbeat instead) [default: 60].
    #[arg(
        long,
        global = true,
        env = "HUBBUB_HTTP_IDLE_TIMEOUT",
        value_name = "SECS"
    )]
    pub http_idle_timeout: Option<u64>,
    /// Seconds between the server's Engine.IO pings to Socket.IO clients (`pingInterval`) [default: 25].
    #[arg(long, global = true, env = "HUBBUB_PING_INTERVAL", value_name = "SECS")]
    pub ping_interval: Option<u64>,
    /// Seconds a Socket.IO client has to answer a ping before it is disconnected (`pingTimeout`) [default: 20].
    #[arg(long, global = true, env = "HUBBUB_PING_TIMEOUT", value_name = "SECS")]
    pub ping_timeout: Option<u64>,
    /// `--ping-interval` in milliseconds, as Engine.IO counts it (the reference server's test settings are 300) [overrides --ping-interval].
    #[arg(
        long,
        global = true,
        env = "HUBBUB_PING_INTERVAL_MS",
        value_name = "MS"
    )]
    pub ping_interval_ms: Option<u64>,
    /// `--ping-timeout` in milliseconds (the reference server's test settings are 200) [overrides --ping-timeout].
    #[arg(long, global = true, env = "HUBBUB_PING_TIMEOUT_MS", value_name = "MS")]
    pub ping_timeout_ms: Option<u64>,
    /// Milliseconds an Engine.IO session may wait for its Socket.IO CONNECT before it is closed (`connectTimeout`) [default: 20000].
    #[arg(
        long,
        global = true,
        env = "HUBBUB_CONNECT_TIMEOUT_MS",
        value_name = "MS"
    )]
    pub connect_timeout_ms: Option<u64>,
    /// Seconds a shutdown waits for clients to receive what is queued [default: 5].
    #[arg(
        long,
        global = true,
        env = "HUBBUB_SHUTDOWN_GRACE",
        value_name = "SECS"
    )]
    pub shutdown_grace: Option<u64>,
    /// Where history is kept: sqlite, postgres or memory (none kept) [default: sqlite, or postgres for a postgres:// --database-url].
    #[arg(long, global = true, env = "HUBBUB_STORE", value_name = "KIND")]
    pub store: Option<String>,
    /// Database URL: postgres://… for PostgreSQL, sqlite://FILE to override the SQLite file [default: sqlite in --data-dir].
    #[arg(long, global = true, env = "HUBBUB_DATABASE_URL", value_name = "URL")]
    pub database_url: Option<String>,
    /// Join a cluster of nodes through this Redis (redis://HOST:PORT); needs --store postgres shared by every node [default: no cluster].
    #[arg(long, global = true, env = "HUBBUB_REDIS_URL", value_name = "URL")]
    pub redis_url: Option<String>,
    /// This node's name in the cluster, unique among nodes [default: generated at start].
    #[arg(long, global = true, env = "HUBBUB_NODE_ID", value_name = "ID")]
    pub node_id: Option<String>,
    /// Prefix of every Redis key and channel, to keep clusters apart on one Redis [default: hubbub].
    #[arg(
        long,
        global = true,
        env = "HUBBUB_CLUSTER_PREFIX",
        value_name = "PREFIX"
    )]
    pub cluster_prefix: Option<String>,
    /// Seconds after which a silent node is dead: its users leave and its nicknames are freed [default: 10].
    #[arg(long, global = true, env = "HUBBUB_CLUSTER_LEASE", value_name = "SECS")]
    pub cluster_lease: Option<u64>,
    /// Messages of a room sent to whoever joins it [default: 20].
    #[arg(long, global = true, env = "HUBBUB_HISTORY_ON_JOIN", value_name = "N")]
    pub history_on_join: Option<usize>,
    /// Recent messages kept in memory per room, for joins and resumes [default: 100].
    #[arg(long, global = true, env = "HUBBUB_HISTORY_CACHE", value_name = "N")]
    pub history_cache: Option<usize>,
    /// Bytes all rooms' recent-history caches may hold together; the least recently written rooms' caches are dropped past it (their history stays in the store) [default: 67108864].
    #[arg(
        long,
        global = true,
        env = "HUBBUB_HISTORY_CACHE_BYTES",
        value_name = "BYTES"
    )]
    pub history_cache_bytes: Option<usize>,
    /// Accept passwords on unencrypted connections from anywhere, not only from loopback: for a server behind a TLS-terminating proxy [default: false].
    #[arg(long, global = true, env = "HUBBUB_ALLOW_INSECURE_PASSWORDS", value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub allow_insecure_passwords: Option<bool>,
    /// Secret for application tokens signed with HS256 (JWT); enables `/token` and Socket.IO `auth: {token}`.
    #[arg(long, global = true, env = "HUBBUB_JWT_SECRET", value_name = "SECRET")]
    pub jwt_secret: Option<String>,
    /// PEM public key for application tokens signed with RS256 (RSA) or ES256 (P-256).
    #[arg(
        long,
        global = true,
        env = "HUBBUB_JWT_PUBLIC_KEY",
        value_name = "PATH"
    )]
    pub jwt_public_key: Option<std::path::PathBuf>,
    /// Required `aud` of application tokens.
    #[arg(long, global = true, env = "HUBBUB_JWT_AUDIENCE", value_name = "AUD")]
    pub jwt_audience: Option<String>,
    /// Required `iss` of application tokens.
    #[arg(long, global = true, env = "HUBBUB_JWT_ISSUER", value_name = "ISS")]
    pub jwt_issuer: Option<String>,
    /// Argon2id memory per password hash, in KiB [default: 19456, OWASP's minimum].
    #[arg(
        long,
        global = true,
        env = "HUBBUB_ARGON2_MEMORY_KIB",
        value_name = "KIB"
    )]
    pub argon2_memory_kib: Option<u32>,
    /// Argon2id passes per password hash [default: 2].
    #[arg(long, global = true, env = "HUBBUB_ARGON2_PASSES", value_name = "N")]
    pub argon2_passes: Option<u32>,
    /// How long a session token (what keeps a page logged in across reloads) stays valid, in hours [default: 24].
    #[arg(
        long,
        global = true,
        env = "HUBBUB_SESSION_TOKEN_HOURS",
        value_name = "HOURS"
    )]
    pub session_token_hours: Option<u64>,
    /// Most rooms that may exist [default: 10000].
    #[arg(long, global = true, env = "HUBBUB_MAX_ROOMS", value_name = "N")]
    pub max_rooms: Option<usize>,
    /// Keep at most N messages per room; 0 = no limit [default: 0].
    #[arg(
        long,
        global = true,
        env = "HUBBUB_RETENTION_MESSAGES",
        value_name = "N"
    )]
    pub retention_messages: Option<u64>,
    /// Delete messages older than N days; 0 = keep forever [default: 0].
    #[arg(
        long,
        global = true,
        env = "HUBBUB_RETENTION_DAYS",
        value_name = "DAYS"
    )]
    pub retention_days: Option<u64>,
    /// Seconds between retention purges [default: 60].
    #[arg(
        long,
        global = true,
        env = "HUBBUB_PURGE_INTERVAL",
        value_name = "SECS"
    )]
    pub purge_interval: Option<u64>,
    /// Web origins, besides the page's own, whose pages may open Socket.IO sessions: comma-separated `https://host[:port]`, or `*` for any [default: the page's own only].
    #[arg(
        long,
        global = true,
        env = "HUBBUB_ALLOWED_ORIGINS",
        value_name = "ORIGINS",
        value_delimiter = ','
    )]
    pub allowed_origins: Option<Vec<String>>,
    /// The origins the chat page itself is served under, when reached by a name (comma-separated `https://chat.example.com`): the page's own origin is one of these, never whatever a request's `Host` says (DNS rebinding). Without it, only a page served at an IP address or `localhost` counts as the server's own [default: none].
    #[arg(
        long,
        global = true,
        env = "HUBBUB_PUBLIC_ORIGINS",
        value_name = "ORIGINS",
        value_delimiter = ','
    )]
    pub public_origins: Option<Vec<String>>,
    /// Sites that may show the chat page in a frame (a host application embedding it): space-separated `https://host[:port]` (`https://*.domain` too) or `'self'` [default: none, the page refuses to be framed].
    #[arg(
        long,
        global = true,
        env = "HUBBUB_FRAME_ANCESTORS",
        value_name = "ORIGINS"
    )]
    pub frame_ancestors: Option<String>,
    /// Gone: a listed name made whoever registered it first a server
    /// operator. Refused at start with a pointer to `hubbub operator add`.
    #[arg(
        long,
        global = true,
        env = "HUBBUB_OPERATORS",
        value_name = "NICKS",
        value_delimiter = ',',
        hide = true
    )]
    pub operators: Option<Vec<String>>,
    /// Log filter, in tracing's EnvFilter syntax [default: info].
    #[arg(long, global = true, env = "HUBBUB_LOG", value_name = "FILTER")]
    pub log: Option<String>,
}

/// The resolved configuration the server runs with.
#[derive(Debug, Clone)]
pub struct Config {
    /// The line listener; [`OFF`] = none.
    pub tcp_addr: String,
    /// The HTTP listener; [`OFF`] = none.
    pub http_addr: String,
    /// Certificate chain (PEM) of the TLS listeners.
    pub tls_cert: Option<PathBuf>,
    /// Private key (PEM) of `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// The TLS line listener; `None` = none.
    pub tls_tcp_addr: Option<String>,
    /// The HTTPS listener; `None` = none.
    pub https_addr: Option<String>,
    /// Time a client has to complete the TLS handshake.
    pub tls_handshake_timeout: Duration,
    /// Where /metrics and /readyz are served.
    pub admin_addr: String,
    pub data_dir: PathBuf,
    pub default_room: String,
    pub max_line_bytes: usize,
    /// Lines per second per connection; `0.0` = off.
    pub flood_rate: f64,
    pub flood_burst: u32,
    pub flood_kick: u32,
    /// `0` = no cap.
    pub max_connections: usize,
    /// `0` = no cap.
    pub max_connections_per_ip: usize,
    pub idle_timeout: Option<Duration>,
    pub outbound_limit: usize,
    /// Bytes that may wait for all clients together.
    pub outbound_total_limit: usize,
    /// Connections in a room past which presence is summarized (0: never).
    pub presence_threshold: usize,
    /// How often a big room hears its presence summary.
    pub presence_interval: Duration,
    /// Time to send an HTTP request head.
    pub http_header_timeout: Duration,
    /// Time an HTTP connection may go without a byte either way.
    pub http_idle_timeout: Duration,
    /// Time between Engine.IO pings.
    pub ping_interval: Duration,
    /// Time a client has to answer a ping.
    pub ping_timeout: Duration,
    /// How long a Socket.IO session may wait for its CONNECT.
    pub connect_timeout: Duration,
    pub shutdown_grace: Duration,
    pub store: StoreKind,
    pub database_url: Option<String>,
    /// Cluster mode when set (see [`crate::cluster`]).
    pub redis_url: Option<String>,
    /// Generated at start when `None`.
    pub node_id: Option<String>,
    pub cluster_prefix: String,
    pub cluster_lease: Duration,
    pub history_on_join: usize,
    pub history_cache: usize,
    /// Bytes all recent-history caches may hold together.
    pub history_cache_bytes: usize,
    /// Passwords accepted on unencrypted connections from anywhere.
    pub allow_insecure_passwords: bool,
    /// Argon2id cost of password hashes.
    pub argon2: crate::accounts::HashCost,
    /// How long a session token stays valid (`crate::session_tokens`).
    pub session_token_ttl: Duration,
    /// HS256 secret for application tokens.
    pub jwt_secret: Option<String>,
    /// PEM public key (RS256 / ES256) for application tokens.
    pub jwt_public_key: Option<std::path::PathBuf>,
    pub jwt_audience: Option<String>,
    pub jwt_issuer: Option<String>,
    pub max_rooms: usize,
    pub retention: Retention,
    pub purge_interval: Duration,
    /// Origins, besides the page's own, allowed to open Socket.IO sessions.
    pub allowed_origins: AllowedOrigins,
    /// Sites allowed to frame the page (none by default).
    pub frame_ancestors: FrameAncestors,
    pub log: String,
}

/// Which history store the server uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    Sqlite,
    Postgres,
    /// No persistence: history lives in memory and is lost on restart.
    Memory,
}

/// A listener address that means "do not listen".
pub const OFF: &str = "off";
/// The TLS line listener's address when --tls-cert is given.
pub const DEFAULT_TLS_TCP_ADDR: &str = "0.0.0.0:6697";
/// The HTTPS listener's address when --tls-cert is given.
pub const DEFAULT_HTTPS_ADDR: &str = "0.0.0.0:8443";
/// The shortest TLS handshake timeout accepted.
pub const MIN_TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_millis(100);

/// `addr`, unless it is [`OFF`].
pub fn listening(addr: &str) -> Option<&str> {
    (!addr.eq_ignore_ascii_case(OFF)).then_some(addr)
}

impl Default for Config {
    fn default() -> Self {
        Config {
            tcp_addr: "0.0.0.0:8888".into(),
            http_addr: "0.0.0.0:8080".into(),
            tls_cert: None,
            tls_key: None,
            tls_tcp_addr: None,
            https_addr: None,
            tls_handshake_timeout: Duration::from_secs(10),
            admin_addr: "127.0.0.1:8081".into(),
            data_dir: PathBuf::from("./data"),
            default_room: "lobby".into(),
            max_line_bytes: 4096,
            flood_rate: 10.0,
            flood_burst: 20,
            flood_kick: 50,
            max_connections: 16384,
            max_connections_per_ip: 256,
            idle_timeout: None,
            outbound_limit: 1024 * 1024,
            outbound_total_limit: 256 * 1024 * 1024,
            presence_threshold: 100,
            presence_interval: Duration::from_secs(2),
            http_header_timeout: Duration::from_secs(10),
            http_idle_timeout: Duration::from_secs(60),
            ping_interval: Duration::from_secs(25),
            ping_timeout: Duration::from_secs(20),
            connect_timeout: Duration::from_secs(20),
            shutdown_grace: Duration::from_secs(5),
            store: StoreKind::Sqlite,
            database_url: None,
            redis_url: None,
            node_id: None,
            cluster_prefix: "hubbub".into(),
            cluster_lease: Duration::from_secs(10),
            history_on_join: 20,
            history_cache: 100,
            history_cache_bytes: 64 * 1024 * 1024,
            allow_insecure_passwords: false,
            argon2: crate::accounts::HashCost::default(),
            session_token_ttl: crate::session_tokens::DEFAULT_TTL,
            jwt_secret: None,
            jwt_public_key: None,
            jwt_audience: None,
            jwt_issuer: None,
            max_rooms: 10_000,
            retention: Retention::default(),
            purge_interval: Duration::from_secs(60),
            allowed_origins: AllowedOrigins::default(),
            frame_ancestors: FrameAncestors::default(),
            log: "info".into(),
        }
    }
}

impl Config {
    /// Resolves `options` over the file it names (if any) over the defaults.
    pub fn load(options: Options) -> anyhow::Result<Config> {
        let file = match &options.config {
            Some(path) => read_file(path)?,
            None => Options::default(),
        };
        let store = options.store.clone().or(file.store.clone());
        let mut config = Config::merge(options, file)?;
        config.store = match store.as_deref() {
            Some("sqlite") => StoreKind::Sqlite,
            Some("postgres") => StoreKind::Postgres,
            Some("memory") => StoreKind::Memory,
            Some(other) => {
                anyhow::bail!("--store: unknown store {other:?} (sqlite, postgres or memory)")
            }
            None if config
                .database_url
                .as_deref()
                .is_some_and(|u| u.starts_with("postgres")) =>
            {
                StoreKind::Postgres
            }
            None => StoreKind::Sqlite,
        };
        config.validate()?;
        Ok(config)
    }

    fn merge(cli: Options, file: Options) -> anyhow::Result<Config> {
        if cli.operators.is_some() || file.operators.is_some() {
            anyhow::bail!(
                "--operators (operators in a config file, HUBBUB_OPERATORS) is gone: it made \
                 whoever registered a listed name first a server operator; confirm accounts \
                 with `hubbub operator add NAME` instead"
            );
        }
        let d = Config::default();
        macro_rules! pick {
            ($field:ident) => {
                cli.$field.or(file.$field).unwrap_or(d.$field)
            };
        }
        let secs = |v: Option<u64>| v.filter(|&s| s > 0).map(Duration::from_secs);
        let allowed_origins = AllowedOrigins::parse(
            &cli.allowed_origins
                .or(file.allowed_origins)
                .unwrap_or_default(),
        )
        .map_err(|e| anyhow::anyhow!("--allowed-origins: {e}"))?
        .with_public(
            &cli.public_origins
                .or(file.public_origins)
                .unwrap_or_default(),
        )
        .map_err(|e| anyhow::anyhow!("--public-origins: {e}"))?;
        let frame_ancestors = FrameAncestors::parse(
            cli.frame_ancestors
                .or(file.frame_ancestors)
                .as_deref()
                .unwrap_or(""),
        )
        .map_err(|e| anyhow::anyhow!("--frame-ancestors: {e}"))?;
        let tls_cert = cli.tls_cert.or(file.tls_cert);
        let tls_key = cli.tls_key.or(file.tls_key);
        // The TLS listeners are on, at their defaults, once there is a
        // certificate; an address given without one is refused by
        // `validate`.
        let tls_listener = |given: Option<String>, default: &str| match given {
            Some(addr) => listening(&addr).map(str::to_string),
            None if tls_cert.is_some() || tls_key.is_some() => Some(default.to_string()),
            None => None,
        };
        Ok(Config {
            tcp_addr: pick!(tcp_addr),
            http_addr: pick!(http_addr),
            tls_tcp_addr: tls_listener(
                cli.tls_tcp_addr.or(file.tls_tcp_addr),
                DEFAULT_TLS_TCP_ADDR,
            ),
            https_addr: tls_listener(cli.https_addr.or(file.https_addr), DEFAULT_HTTPS_ADDR),
            tls_cert,
            tls_key,
            tls_handshake_timeout: cli
                .tls_handshake_timeout_ms
                .or(file.tls_handshake_timeout_ms)
                .map_or(d.tls_handshake_timeout, Duration::from_millis),
            admin_addr: pick!(admin_addr),
            data_dir: pick!(data_dir),
            default_room: pick!(default_room),
            max_line_bytes: pick!(max_line_bytes),
            flood_rate: pick!(flood_rate),
            flood_burst: pick!(flood_burst),
            flood_kick: pick!(flood_kick),
            max_connections: pick!(max_connections),
            max_connections_per_ip: pick!(max_connections_per_ip),
            idle_timeout: match cli.idle_timeout.or(file.idle_timeout) {
                Some(v) => secs(Some(v)),
                None => d.idle_timeout,
            },
            outbound_limit: pick!(outbound_limit),
            outbound_total_limit: pick!(outbound_total_limit),
            presence_threshold: pick!(presence_threshold),
            presence_interval: cli
                .presence_interval_ms
                .or(file.presence_interval_ms)
                .map_or(d.presence_interval, |ms| Duration::from_millis(ms.max(10))),
            http_header_timeout: cli
                .http_header_timeout
                .or(file.http_header_timeout)
                .map_or(d.http_header_timeout, |s| Duration::from_secs(s.max(1))),
            http_idle_timeout: cli
                .http_idle_timeout
                .or(file.http_idle_timeout)
                .map_or(d.http_idle_timeout, |s| Duration::from_secs(s.max(1))),
            ping_interval: match cli.ping_interval_ms.or(file.ping_interval_ms) {
                Some(ms) => Duration::from_millis(ms.max(10)),
                None => cli
                    .ping_interval
                    .or(file.ping_interval)
                    .map_or(d.ping_interval, |s| Duration::from_secs(s.max(1))),
            },
            connect_timeout: cli
                .connect_timeout_ms
                .or(file.connect_timeout_ms)
                .map_or(d.connect_timeout, |ms| Duration::from_millis(ms.max(10))),
            ping_timeout: match cli.ping_timeout_ms.or(file.ping_timeout_ms) {
                Some(ms) => Duration::from_millis(ms.max(10)),
                None => cli
                    .ping_timeout
                    .or(file.ping_timeout)
                    .map_or(d.ping_timeout, |s| Duration::from_secs(s.max(1))),
            },
            shutdown_grace: cli
                .shutdown_grace
                .or(file.shutdown_grace)
                .map_or(d.shutdown_grace, Duration::from_secs),
            store: d.store,
            database_url: cli.database_url.or(file.database_url),
            redis_url: cli.redis_url.or(file.redis_url),
            node_id: cli.node_id.or(file.node_id),
            cluster_prefix: pick!(cluster_prefix),
            cluster_lease: cli
                .cluster_lease
                .or(file.cluster_lease)
                .map_or(d.cluster_lease, |s| Duration::from_secs(s.max(1))),
            history_on_join: pick!(history_on_join),
            history_cache: pick!(history_cache),
            history_cache_bytes: pick!(history_cache_bytes),
            allow_insecure_passwords: pick!(allow_insecure_passwords),
            jwt_secret: cli.jwt_secret.or(file.jwt_secret),
            jwt_public_key: cli.jwt_public_key.or(file.jwt_public_key),
            jwt_audience: cli.jwt_audience.or(file.jwt_audience),
            jwt_issuer: cli.jwt_issuer.or(file.jwt_issuer),
            argon2: crate::accounts::HashCost {
                memory_kib: cli
                    .argon2_memory_kib
                    .or(file.argon2_memory_kib)
                    .unwrap_or(d.argon2.memory_kib)
                    .max(8),
                passes: cli
                    .argon2_passes
                    .or(file.argon2_passes)
                    .unwrap_or(d.argon2.passes)
                    .max(1),
            },
            session_token_ttl: cli
                .session_token_hours
                .or(file.session_token_hours)
                .map_or(d.session_token_ttl, |h| {
                    Duration::from_secs(h.clamp(1, 24 * 365) * 3600)
                }),
            max_rooms: pick!(max_rooms),
            retention: Retention {
                max_messages_per_room: cli
                    .retention_messages
                    .or(file.retention_messages)
                    .filter(|&n| n > 0),
                max_age: cli
                    .retention_days
                    .or(file.retention_days)
                    .filter(|&d| d > 0)
                    .map(|d| Duration::from_secs(d * 86400)),
            },
            purge_interval: cli
                .purge_interval
                .or(file.purge_interval)
                .map_or(d.purge_interval, |s| Duration::from_secs(s.max(1))),
            allowed_origins,
            frame_ancestors,
            log: pick!(log),
        })
    }

    /// Checks what the TLS settings and listener addresses say together:
    /// a certificate and a key, or neither; TLS listeners only with them;
    /// a handshake timeout of 100 ms or more; at least one listener for
    /// clients. (The files themselves are read
    /// by [`crate::server::Server::bind`].)
    ///
    /// # Errors
    /// The first inconsistency, naming the flags.
    pub fn validate_listeners(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.tls_cert.is_some() == self.tls_key.is_some(),
            "--tls-cert and --tls-key go together: give both (PEM files) or neither"
        );
        if self.tls_cert.is_none() {
            anyhow::ensure!(
                self.tls_tcp_addr.is_none(),
                "--tls-tcp-addr needs --tls-cert and --tls-key"
            );
            anyhow::ensure!(
                self.https_addr.is_none(),
                "--https-addr needs --tls-cert and --tls-key"
            );
        }
        anyhow::ensure!(
            self.tls_handshake_timeout >= MIN_TLS_HANDSHAKE_TIMEOUT,
            "--tls-handshake-timeout-ms must be at least {} (a handshake takes round trips)",
            MIN_TLS_HANDSHAKE_TIMEOUT.as_millis()
        );
        anyhow::ensure!(
            listening(&self.tcp_addr).is_some()
                || listening(&self.http_addr).is_some()
                || self.tls_tcp_addr.is_some()
                || self.https_addr.is_some(),
            "every listener is off: keep --tcp-addr or --http-addr, or give --tls-cert and --tls-key"
        );
        Ok(())
    }

    fn validate(&self) -> anyhow::Result<()> {
        self.validate_listeners()?;
        crate::hub::names::validate_room(&self.default_room)
            .map_err(|e| anyhow::anyhow!("--default-room: {e}"))?;
        anyhow::ensure!(
            self.max_line_bytes >= 16,
            "--max-line-bytes must be at least 16"
        );
        anyhow::ensure!(
            self.flood_rate.is_finite() && self.flood_rate >= 0.0,
            "--flood-rate must be 0 or more"
        );
        anyhow::ensure!(
            self.outbound_limit >= 4096,
            "--outbound-limit must be at least 4096 bytes"
        );
        anyhow::ensure!(
            self.outbound_total_limit >= self.outbound_limit,
            "--outbound-total-limit must be at least --outbound-limit"
        );
        anyhow::ensure!(
            self.store != StoreKind::Postgres || self.database_url.is_some(),
            "--store postgres needs --database-url postgres://…"
        );
        anyhow::ensure!(self.max_rooms >= 1, "--max-rooms must be at least 1");
        if self.redis_url.is_some() {
            anyhow::ensure!(
                self.store == StoreKind::Postgres,
                "--redis-url: a cluster needs history shared by every node: \
                 use --store postgres with one --database-url for all nodes \
                 ({} is local to one node)",
                if self.store == StoreKind::Sqlite {
                    "SQLite"
                } else {
                    "the memory store"
                }
            );
        }
        if let Some(node) = &self.node_id {
            anyhow::ensure!(
                !node.is_empty()
                    && node.len() <= 64
                    && node
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.'),
                "--node-id: 1 to 64 letters, digits, '-', '_' or '.'"
            );
        }
        Ok(())
    }
}

/// Reads the TOML file at `path`. Relative paths in it (`data-dir`,
/// `tls-cert`, `tls-key`, a `sqlite://` `database-url`) are resolved against
/// the file's folder, so a configuration means the same whatever directory
/// the server starts in.
fn read_file(path: &Path) -> anyhow::Result<Options> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading config file {}", path.display()))?;
    let options: Options =
        toml::from_str(&text).with_context(|| format!("parsing config file {}", path.display()))?;
    Ok(options.relative_to(path.parent().unwrap_or(Path::new("."))))
}

impl Options {
    /// These options with relative paths resolved against `base`.
    fn relative_to(mut self, base: &Path) -> Options {
        if let Some(dir) = self.data_dir.take() {
            self.data_dir = Some(base.join(dir));
        }
        if let Some(cert) = self.tls_cert.take() {
            self.tls_cert = Some(base.join(cert));
        }
        if let Some(key) = self.tls_key.take() {
            self.tls_key = Some(base.join(key));
        }
        if let Some(url) = self.database_url.take() {
            self.database_url = Some(match url.strip_prefix("sqlite://") {
                Some(file)
                    if !file.is_empty()
                        && !file.starts_with(':')
                        && Path::new(file.split('?').next().unwrap_or(file)).is_relative() =>
                {
                    format!("sqlite://{}", base.join(file).display())
                }
                _ => url,
            });
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_over_file_over_default() {
        let cli = Options {
            flood_rate: Some(3.0),
            ..Options::default()
        };
        let file: Options = toml::from_str(
            "flood-rate = 7.0\nflood-burst = 9\ntcp-addr = \"127.0.0.1:0\"\nidle-timeout = 30",
        )
        .unwrap();
        let config = Config::merge(cli, file).unwrap();
        assert_eq!(config.flood_rate, 3.0);
        assert_eq!(config.flood_burst, 9);
        assert_eq!(config.tcp_addr, "127.0.0.1:0");
        assert_eq!(config.idle_timeout, Some(Duration::from_secs(30)));
        assert_eq!(config.max_line_bytes, 4096);
    }

    #[test]
    fn file_paths_are_relative_to_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("hubbub.toml");
        std::fs::write(
            &file,
            "data-dir = \"state\"\ndatabase-url = \"sqlite://db/chat.db?mode=rwc\"",
        )
        .unwrap();
        let options = read_file(&file).unwrap();
        assert_eq!(options.data_dir, Some(dir.path().join("state")));
        assert_eq!(
            options.database_url.as_deref(),
            Some(format!("sqlite://{}/db/chat.db?mode=rwc", dir.path().display()).as_str())
        );
        // Absolute paths, URLs of other stores and in-memory SQLite stay as written.
        std::fs::write(
            &file,
            "data-dir = \"/var/lib/hubbub\"\ndatabase-url = \"postgres://u@h/db\"",
        )
        .unwrap();
        let options = read_file(&file).unwrap();
        assert_eq!(options.data_dir, Some(PathBuf::from("/var/lib/hubbub")));
        assert_eq!(options.database_url.as_deref(), Some("postgres://u@h/db"));
        std::fs::write(&file, "database-url = \"sqlite://:memory:\"").unwrap();
        assert_eq!(
            read_file(&file).unwrap().database_url.as_deref(),
            Some("sqlite://:memory:")
        );
    }

    #[test]
    fn ping_settings_in_milliseconds_win_over_seconds() {
        let cli = Options {
            ping_interval: Some(25),
            ping_interval_ms: Some(300),
            ..Options::default()
        };
        let file: Options = toml::from_str("ping-timeout-ms = 200\nping-timeout = 9").unwrap();
        let config = Config::merge(cli, file).unwrap();
        assert_eq!(config.ping_interval, Duration::from_millis(300));
        assert_eq!(config.ping_timeout, Duration::from_millis(200));
        // `--operators` is refused, pointing to its replacement.
        let old = Options {
            operators: Some(vec!["root".into()]),
            ..Options::default()
        };
        let refused = Config::merge(old, Options::default())
            .unwrap_err()
            .to_string();
        assert!(refused.contains("hubbub operator add"), "{refused}");
    }

    #[test]
    fn unknown_file_keys_are_an_error() {
        assert!(toml::from_str::<Options>("flod-rate = 1").is_err());
    }

    #[test]
    fn bad_values_are_refused() {
        let cli = Options {
            default_room: Some("no spaces".into()),
            ..Options::default()
        };
        assert!(Config::merge(cli, Options::default())
            .unwrap()
            .validate()
            .is_err());
        let cli = Options {
            allowed_origins: Some(vec!["ftp://nope".into()]),
            ..Options::default()
        };
        assert!(Config::merge(cli, Options::default()).is_err());
        let cli = Options {
            frame_ancestors: Some("https://app.example/page".into()),
            ..Options::default()
        };
        assert!(Config::merge(cli, Options::default()).is_err());
    }

    #[test]
    fn frame_ancestors_from_the_file() {
        let file: Options =
            toml::from_str("frame-ancestors = \"https://app.example 'self'\"").unwrap();
        let config = Config::merge(Options::default(), file).unwrap();
        assert_eq!(
            config.frame_ancestors.directive(),
            "https://app.example 'self'"
        );
    }
}
