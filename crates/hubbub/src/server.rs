//! Binds the listeners, runs the transports, and owns graceful shutdown.
//!
//! The listeners for clients are the line protocol and HTTP, in plain text
//! and (with a certificate) over TLS; any of them may be off. The admin
//! listener is always on. SIGHUP reloads the TLS certificate
//! ([`crate::tls::reload_on_sighup`]).
//!
//! Shutdown, as in mini-redis, uses two mechanisms: a [`CancellationToken`]
//! tells every task to stop (the accept loop stops accepting; each
//! connection tells its client and closes its outbox), and a [`TaskTracker`]
//! waits, up to the configured grace, until they have flushed and ended.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;

use crate::config::listening;
use crate::limits::Acceptor;
use crate::tls::Tls;
use crate::transport::line;
use crate::web::serve::{HttpTimeouts, Listener};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::cluster::{self, ClusterConfig, Link};
use crate::config::{Config, StoreKind};
use crate::hub::{Hub, HubConfig};
use crate::limits::ConnectionLimiter;
use crate::store::{
    HistoryStore, PageQuery, PostgresStore, Retention, SqliteStore, StoreError, StoredMessage,
    StoredRoom,
};
use crate::transport::line::{LineSettings, LineTransport};
use crate::transport::socketio::{SocketIoSettings, SocketIoTransport};
use crate::web;

/// A bound, not yet running server.
#[derive(Debug)]
pub struct Server {
    config: Config,
    store: Option<Arc<dyn HistoryStore>>,
    /// The data directory's lock, held while the server lives: two
    /// servers on one SQLite file would each think it theirs.
    _data_dir_lock: Option<std::fs::File>,
    hub: Arc<Hub>,
    accounts: Arc<crate::accounts::Accounts>,
    /// Open sockets, on every listener, from accept to close.
    limiter: Arc<ConnectionLimiter>,
    /// Socket.IO sessions (a polling session may outlive its requests'
    /// connections), under the same caps.
    sessions: Arc<ConnectionLimiter>,
    /// The listeners for clients; `None` when off.
    tcp: Option<Acceptor>,
    http: Option<Acceptor>,
    tls_tcp: Option<Acceptor>,
    https: Option<Acceptor>,
    admin: Acceptor,
    /// The certificate and handshakes of `tls_tcp` and `https`.
    tls: Option<Arc<Tls>>,
}

/// Where the listeners are bound; `None` for one that is off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Addresses {
    /// The line protocol.
    pub tcp: Option<SocketAddr>,
    /// The page and Socket.IO.
    pub http: Option<SocketAddr>,
    /// The line protocol over TLS.
    pub tls_tcp: Option<SocketAddr>,
    /// The page and Socket.IO over TLS (HTTPS, WSS).
    pub https: Option<SocketAddr>,
    /// /metrics and /readyz.
    pub admin: SocketAddr,
}

impl Server {
    /// Binds every listener of `config` (those that are not off); port 0
    /// picks a free port. With TLS configured, the certificate and key are
    /// loaded first.
    ///
    /// # Errors
    /// Inconsistent listener or TLS settings, a certificate or key that
    /// does not load, an address that cannot be bound, a store that does
    /// not open.
    pub async fn bind(config: Config) -> anyhow::Result<Server> {
        config.validate_listeners()?;
        let tls = match (&config.tls_cert, &config.tls_key) {
            (Some(cert), Some(key)) => {
                let tls = Tls::load(cert, key, config.tls_handshake_timeout)?;
                tracing::info!(cert = %cert.display(), "TLS certificate loaded");
                Some(Arc::new(tls))
            }
            _ => None,
        };
        let tcp = bind_listener("TCP", listening(&config.tcp_addr)).await?;
        let http = bind_listener("HTTP", listening(&config.http_addr)).await?;
        let tls_tcp = bind_listener("TLS line", config.tls_tcp_addr.as_deref()).await?;
        let https = bind_listener("HTTPS", config.https_addr.as_deref()).await?;
        let admin = TcpListener::bind(&config.admin_addr)
            .await
            .with_context(|| format!("binding the admin listener on {}", config.admin_addr))?;
        if let Ok(addr) = admin.local_addr() {
            if !addr.ip().is_loopback() {
                tracing::warn!(
                    %addr,
                    "the admin listener (/metrics, /readyz: no credentials) is reachable from \
                     other hosts; bind --admin-addr to loopback or a private network"
                );
            }
        }
        let data_dir_lock = lock_data_dir(&config)?;
        if !config.allowed_origins.has_public() {
            tracing::info!(
                "browsers may open chat sessions from pages served at an IP address or \
                 localhost; a chat served under a name needs --public-origins \
                 (https://chat.example.com)"
            );
        }
        let store = open_store(&config).await?;
        let hub_config = HubConfig {
            default_room: config.default_room.clone(),
            outbox_limit: config.outbound_limit,
            history_on_join: config.history_on_join,
            history_cache: config.history_cache,
            max_rooms: config.max_rooms,
            history_cache_bytes: config.history_cache_bytes,
            outbox_total_limit: config.outbound_total_limit,
            presence_threshold: config.presence_threshold,
            presence_interval: config.presence_interval,
        };
        let stored = match &store {
            Some(store) => load_default_room(
                store.as_ref(),
                &hub_config.default_room,
                hub_config.history_cache.max(hub_config.history_on_join),
            )
            .await
            .with_context(|| format!("reading the default room from the {} store", store.kind()))?,
            None => Vec::new(),
        };
        let cluster = match &config.redis_url {
            Some(url) => {
                let node = config
                    .node_id
                    .clone()
                    .unwrap_or_else(cluster::generate_node_id);
                tracing::info!(%node, prefix = %config.cluster_prefix, "cluster mode");
                Some(Link::new(ClusterConfig {
                    redis_url: url.clone(),
                    node: node.into(),
                    prefix: config.cluster_prefix.clone(),
                    lease: config.cluster_lease,
                })?)
            }
            None => None,
        };
        let (link, tasks) = cluster.unzip();
        let broker = link.map(|link| Arc::new(link) as Arc<dyn crate::hub::broker::Broker>);
        let hub = Hub::start(hub_config, store.clone(), stored, broker);
        // Server-wide bans hold from the first connection on; the default
        // room's policy too.
        hub.reload_policy("").await;
        hub.reload_policy(&crate::hub::names::fold(&config.default_room))
            .await;
        if let Some(tasks) = tasks {
            tasks.spawn(&hub);
        }
        let limiter = ConnectionLimiter::new(config.max_connections, config.max_connections_per_ip);
        let sessions =
            ConnectionLimiter::new(config.max_connections, config.max_connections_per_ip);
        let tcp = tcp.map(|l| Acceptor::new(l, line::OUT_OF_DESCRIPTORS));
        let http = http.map(|l| Acceptor::new(l, web::serve::OUT_OF_DESCRIPTORS));
        // A client that has not done its handshake cannot read a refusal.
        let tls_tcp = tls_tcp.map(|l| Acceptor::new(l, b""));
        let https = https.map(|l| Acceptor::new(l, b""));
        let admin = Acceptor::new(admin, web::serve::OUT_OF_DESCRIPTORS);
        let tokens = match (&config.jwt_secret, &config.jwt_public_key) {
            (Some(_), Some(_)) => anyhow::bail!("--jwt-secret and --jwt-public-key: choose one"),
            (Some(secret), None) => Some(crate::tokens::Tokens::with_secret(secret.as_bytes())),
            (None, Some(path)) => Some(crate::tokens::Tokens::with_public_key(path)?),
            (None, None) => None,
        }
        .map(|tokens| match &config.jwt_audience {
            Some(audience) => tokens.audience(audience),
            None => tokens,
        })
        .map(|tokens| match &config.jwt_issuer {
            Some(issuer) => tokens.issuer(issuer),
            None => tokens,
        });
        let mut accounts = crate::accounts::Accounts::new(
            store.clone(),
            config.argon2,
            config.allow_insecure_passwords,
        )
        .with_tokens(tokens)
        .with_session_ttl(config.session_token_ttl);
        // A cluster's nodes count failed logins together.
        if let Some(url) = &config.redis_url {
            let limits = cluster::logins::RedisLoginLimits::new(url, &config.cluster_prefix)?;
            accounts = accounts.with_login_limits(Arc::new(limits));
        }
        let accounts = Arc::new(accounts);
        Ok(Server {
            config,
            store,
            _data_dir_lock: data_dir_lock,
            hub,
            accounts,
            limiter,
            sessions,
            tcp,
            http,
            tls_tcp,
            https,
            admin,
            tls,
        })
    }

    /// Where each listener is bound.
    pub fn addresses(&self) -> Addresses {
        let addr = |acceptor: &Option<Acceptor>| {
            acceptor.as_ref().map(|a| {
                a.local_addr()
                    .expect("a bound listener has a local address")
            })
        };
        Addresses {
            tcp: addr(&self.tcp),
            http: addr(&self.http),
            tls_tcp: addr(&self.tls_tcp),
            https: addr(&self.https),
            admin: self.admin_addr(),
        }
    }

    /// Where the TCP line listener is bound.
    ///
    /// # Panics
    /// When it is off (`--tcp-addr off`); see [`Server::addresses`].
    pub fn tcp_addr(&self) -> SocketAddr {
        self.addresses().tcp.expect("the TCP listener is off")
    }

    /// Where the HTTP listener (page, Socket.IO) is bound.
    ///
    /// # Panics
    /// When it is off (`--http-addr off`); see [`Server::addresses`].
    pub fn http_addr(&self) -> SocketAddr {
        self.addresses().http.expect("the HTTP listener is off")
    }

    /// The TLS side, when configured: what SIGHUP reloads.
    pub fn tls(&self) -> Option<&Arc<Tls>> {
        self.tls.as_ref()
    }

    /// Where the admin listener (/metrics, /readyz) is bound.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin
            .local_addr()
            .expect("a bound listener has a local address")
    }

    /// The accounts service (registrations, logins, server operators).
    pub fn accounts(&self) -> &Arc<crate::accounts::Accounts> {
        &self.accounts
    }

    pub fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    /// Serves until `shutdown` completes, then drains within the grace period.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        let token = CancellationToken::new();
        let tracker = TaskTracker::new();
        // Before the "listening" line: a SIGHUP sent by whoever read it
        // must find the handler, not the default action (termination).
        #[cfg(unix)]
        match crate::tls::reload_on_sighup(self.tls.clone(), token.clone()) {
            Ok(reloads) => drop(tracker.spawn(reloads)),
            Err(e) => tracing::warn!(error = %e, "cannot handle SIGHUP (certificate reloads)"),
        }
        let addresses = self.addresses();
        let shown =
            |addr: Option<SocketAddr>| addr.map_or_else(|| "off".to_string(), |a| a.to_string());
        tracing::info!(
            tcp = %shown(addresses.tcp),
            http = %shown(addresses.http),
            tls_tcp = %shown(addresses.tls_tcp),
            https = %shown(addresses.https),
            admin = %addresses.admin,
            "hubbub listening"
        );

        let accounts = self.accounts.clone();
        let moderation = Arc::new(crate::moderation::Moderation::new(
            self.hub.clone(),
            accounts.clone(),
        ));
        let line = LineTransport {
            hub: self.hub.clone(),
            accounts: accounts.clone(),
            moderation: moderation.clone(),
            limiter: self.limiter.clone(),
            settings: Arc::new(LineSettings {
                max_line_bytes: self.config.max_line_bytes,
                flood_rate: self.config.flood_rate,
                flood_burst: self.config.flood_burst,
                flood_kick: self.config.flood_kick,
                idle_timeout: self.config.idle_timeout,
                linger: self.config.shutdown_grace,
            }),
            shutdown: token.clone(),
            tracker: tracker.clone(),
        };
        let mut accepting = Vec::new();
        if let Some(tcp) = self.tcp {
            accepting.push(tokio::spawn(line.clone().serve(tcp, None)));
        }
        if let (Some(tls_tcp), Some(tls)) = (self.tls_tcp, &self.tls) {
            accepting.push(tokio::spawn(line.serve(tls_tcp, Some(tls.clone()))));
        }

        let socket_io = SocketIoTransport::new(
            self.hub.clone(),
            accounts,
            self.sessions.clone(),
            SocketIoSettings {
                max_text_bytes: self.config.max_line_bytes,
                flood_rate: self.config.flood_rate,
                flood_burst: self.config.flood_burst,
                flood_kick: self.config.flood_kick,
                ping_interval: self.config.ping_interval,
                ping_timeout: self.config.ping_timeout,
                connect_timeout: self.config.connect_timeout,
            },
            tracker.clone(),
        )
        .with_moderation(moderation);
        let engine = socket_io.start(token.clone(), tracker.clone());
        let app = web::router(
            self.hub.clone(),
            engine,
            self.config.allowed_origins.clone(),
            self.config.frame_ancestors.clone(),
        );
        let timeouts = HttpTimeouts {
            header: self.config.http_header_timeout,
            idle: self.config.http_idle_timeout,
        };
        let plain = self.http.map(|http| (Listener::plain("http"), http));
        let https = match (self.https, &self.tls) {
            (Some(https), Some(tls)) => Some((Listener::https(tls.clone()), https)),
            _ => None,
        };
        for (listener, acceptor) in plain.into_iter().chain(https) {
            accepting.push(tokio::spawn(web::serve::serve(
                listener,
                acceptor,
                app.clone(),
                self.limiter.clone(),
                timeouts,
                token.clone(),
                tracker.clone(),
            )));
        }
        // The admin listener has caps of its own, so that monitoring still
        // answers while the public ports are at theirs.
        let admin = tokio::spawn(web::serve::serve(
            Listener::plain("admin"),
            self.admin,
            web::admin::router(self.hub.clone(), self.limiter.clone()),
            ConnectionLimiter::new(ADMIN_CONNECTIONS, ADMIN_CONNECTIONS_PER_IP),
            timeouts,
            token.clone(),
            tracker.clone(),
        ));

        if let (Some(store), false) = (&self.store, self.config.retention.is_off()) {
            tracker.spawn(purge_loop(
                store.clone(),
                self.config.retention,
                self.config.purge_interval,
                token.clone(),
            ));
        }

        tracker.spawn(return_freed_memory(token.clone()));

        shutdown.await;
        tracing::info!(
            connections = self.limiter.open(),
            "shutting down: telling clients and flushing"
        );
        self.hub.begin_shutdown();
        token.cancel();
        for task in accepting {
            let _ = task.await;
        }
        let _ = admin.await;
        tracker.close();
        let drained = tokio::time::timeout(self.config.shutdown_grace, async {
            // Sockets were told and disconnected; HTTP connections were
            // asked to finish their exchange and close.
            tracker.wait().await;
        });
        if drained.await.is_err() {
            tracing::warn!(
                grace = ?self.config.shutdown_grace,
                "some connections did not finish flushing in time"
            );
        }
        if let Some(link) = self.hub.broker() {
            link.stop().await;
        }
        let stats = self.hub.stats();
        tracing::info!(
            sessions = stats.sessions_opened.load(Ordering::Relaxed),
            messages = stats.messages.load(Ordering::Relaxed),
            slow_consumers = stats.slow_consumers.load(Ordering::Relaxed),
            flood_disconnects = stats.flood_disconnects.load(Ordering::Relaxed),
            gap_repairs = stats.gap_repairs.load(Ordering::Relaxed),
            skipped_ids = stats.skipped_ids.load(Ordering::Relaxed),
            "hubbub stopped"
        );
        Ok(())
    }
}

/// Binds `addr` for the `what` listener, unless it is off (`None`).
async fn bind_listener(what: &str, addr: Option<&str>) -> anyhow::Result<Option<TcpListener>> {
    let Some(addr) = addr else {
        return Ok(None);
    };
    let listener = listen(addr)
        .await
        .with_context(|| format!("binding the {what} listener on {addr}"))?;
    Ok(Some(listener))
}

/// Connections the kernel holds for a listener before they are accepted
/// (`listen(2)`'s backlog; Linux caps it at `net.core.somaxconn`, 4096 by
/// default). When every client of a restarted server reconnects within a
/// second, a backlog of 1024 (tokio's default) drops the rest's SYNs, and
/// they wait seconds for their retransmission.
pub const LISTEN_BACKLOG: u32 = 4096;

/// Binds a listener on `addr` (`HOST:PORT`; the first address it resolves
/// to that binds) with [`LISTEN_BACKLOG`].
async fn listen(addr: &str) -> std::io::Result<TcpListener> {
    let mut last = None;
    for addr in tokio::net::lookup_host(addr).await? {
        let socket = match addr {
            std::net::SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
            std::net::SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
        };
        // As `TcpListener::bind` does: a restarted server rebinds its port
        // while the old connections are in TIME_WAIT.
        socket.set_reuseaddr(true)?;
        match socket
            .bind(addr)
            .and_then(|()| socket.listen(LISTEN_BACKLOG))
        {
            Ok(listener) => return Ok(listener),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, "no address to bind")
    }))
}

/// Connections the admin listener takes at once.
const ADMIN_CONNECTIONS: usize = 64;
/// Of those, from one address: a few idle sockets from one place cannot
/// fill the listener and turn the local `/readyz` into a 503.
const ADMIN_CONNECTIONS_PER_IP: usize = 8;

/// Opens the configured history store, migrating it; a store that cannot
/// be opened is an error (the server does not start without its history).
/// `hubbub operator add|remove NICK`: confirms (or revokes) a server
/// operator in the configured store, which every node shares.
///
/// Errors: the store cannot be opened; no account under NICK; no store
/// (`--store memory` keeps accounts in the server's memory only).
pub async fn set_operator(config: &Config, nick: &str, on: bool) -> anyhow::Result<()> {
    let store = open_store(config)
        .await?
        .ok_or_else(|| anyhow::anyhow!("--store memory keeps no accounts to confirm"))?;
    let accounts =
        crate::accounts::Accounts::new(Some(store), config.argon2, config.allow_insecure_passwords);
    accounts
        .set_server_operator(nick, on)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))
}

/// Takes the data directory (`--data-dir`, SQLite's default home) for
/// this server: an exclusive lock on `hubbub.lock` in it, released when
/// the process ends however it ends. (`hubbub operator` opens the same
/// store without it: SQLite itself serialises their writes.)
///
/// Errors: another server holds it (with the path, so the administrator
/// sees which); the directory cannot be created.
fn lock_data_dir(config: &Config) -> anyhow::Result<Option<std::fs::File>> {
    if config.store != StoreKind::Sqlite || config.database_url.is_some() {
        return Ok(None);
    }
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating the data directory {}", config.data_dir.display()))?;
    let path = config.data_dir.join("hubbub.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
            "another hubbub server is using the data directory {} (it holds {}); \
             give each server its own --data-dir",
            config.data_dir.display(),
            path.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("locking {}", path.display()))
        }
    }
}

async fn open_store(config: &Config) -> anyhow::Result<Option<Arc<dyn HistoryStore>>> {
    let store: Arc<dyn HistoryStore> = match config.store {
        StoreKind::Memory => {
            tracing::info!(
                store = "memory",
                "no history store: history is kept in memory only and lost on restart"
            );
            return Ok(None);
        }
        StoreKind::Postgres => {
            let url = config.database_url.as_deref().unwrap_or_default();
            Arc::new(
                PostgresStore::connect(url)
                    .await
                    .context("opening the PostgreSQL history store (--database-url)")?,
            )
        }
        StoreKind::Sqlite => match config.database_url.as_deref() {
            Some(url) => Arc::new(
                SqliteStore::connect(url)
                    .await
                    .with_context(|| format!("opening the SQLite history store {url}"))?,
            ),
            None => {
                std::fs::create_dir_all(&config.data_dir).with_context(|| {
                    format!("creating the data directory {}", config.data_dir.display())
                })?;
                let path = config.data_dir.join("hubbub.db");
                Arc::new(SqliteStore::open(&path).await.with_context(|| {
                    format!("opening the SQLite history store {}", path.display())
                })?)
            }
        },
    };
    tracing::info!(
        store = store.kind(),
        location = store.location(),
        "history store open"
    );
    Ok(Some(store))
}

/// The default room as stored, with its most recent messages (at most
/// `recent`). Other rooms stay in the store until someone joins them.
async fn load_default_room(
    store: &dyn HistoryStore,
    default_room: &str,
    recent: usize,
) -> Result<Vec<(StoredRoom, Vec<StoredMessage>)>, StoreError> {
    let key = crate::hub::names::fold(default_room);
    let Some(room) = store.room(&key).await? else {
        return Ok(Vec::new());
    };
    let query = PageQuery {
        before: None,
        after: None,
        limit: u32::try_from(recent).unwrap_or(u32::MAX),
    };
    let messages = if recent > 0 {
        store.page(&key, query).await?
    } else {
        Vec::new()
    };
    Ok(vec![(room, messages)])
}

/// Applies the retention policy every `interval` until shutdown.
async fn purge_loop(
    store: Arc<dyn HistoryStore>,
    retention: Retention,
    interval: std::time::Duration,
    shutdown: CancellationToken,
) {
    let mut ticks = tokio::time::interval(interval);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        match store
            .purge(retention, crate::hub::event::now_millis())
            .await
        {
            Ok(0) => {}
            Ok(deleted) => tracing::info!(deleted, "retention purge"),
            Err(e) => tracing::warn!(error = %e, "retention purge failed"),
        }
    }
}

/// Hands memory that glibc's allocator keeps after a burst (a storm of
/// joins in a big room queues millions of short-lived events) back to the
/// system, every 10 s. Without it, RSS stays at the burst's high-water mark.
async fn return_freed_memory(shutdown: CancellationToken) {
    let mut ticks = tokio::time::interval(std::time::Duration::from_secs(10));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: malloc_trim only releases free heap pages; it is
        // thread-safe and has no preconditions.
        unsafe {
            libc::malloc_trim(0);
        }
    }
}

/// Raises the soft open-files limit to the hard limit, so the server can
/// hold as many connections as the machine allows; returns the new limit.
pub fn raise_fd_limit() -> std::io::Result<u64> {
    let (soft, hard) = rlimit::Resource::NOFILE.get()?;
    if soft < hard {
        rlimit::Resource::NOFILE.set(hard, hard)?;
    }
    Ok(hard)
}

/// Completes on SIGINT or SIGTERM.
pub fn shutdown_signal() -> impl Future<Output = ()> {
    // The handlers are registered now, not when the future is first polled:
    // `run` logs "listening" before it awaits this, and a SIGTERM sent by
    // whoever read that line must not find the default action (termination
    // without a graceful shutdown).
    #[cfg(unix)]
    let signals = {
        use tokio::signal::unix::{signal, SignalKind};
        (
            signal(SignalKind::terminate()).ok(),
            signal(SignalKind::interrupt()).ok(),
        )
    };
    async move {
        #[cfg(unix)]
        {
            async fn received(signal: Option<tokio::signal::unix::Signal>) {
                match signal {
                    Some(mut signal) => {
                        signal.recv().await;
                    }
                    None => std::future::pending().await,
                }
            }
            let (terminate, interrupt) = signals;
            tokio::select! {
                _ = received(terminate) => {},
                _ = received(interrupt) => {},
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
