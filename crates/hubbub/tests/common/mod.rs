//! Test helpers: a real server on port 0, raw TCP line clients, and a
//! small Socket.IO client ([`sio`]).
#![allow(dead_code)]

pub mod cluster;
pub mod proxy;
pub mod sio;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hubbub::hub::Hub;
use hubbub::{Config, Server};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How long a test waits for an expected line before failing.
pub const WAIT: Duration = Duration::from_secs(10);

/// A configuration for tests: loopback, port 0, flood control off, and
/// the default SQLite store in a fresh directory (kept for the process's
/// life; see [`data_dir`]).
pub fn config() -> Config {
    Config {
        tcp_addr: "127.0.0.1:0".into(),
        http_addr: "127.0.0.1:0".into(),
        admin_addr: "127.0.0.1:0".into(),
        flood_rate: 0.0,
        data_dir: data_dir(),
        ..Config::default()
    }
}

/// The local PostgreSQL the tests use (trust auth).
pub const POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A fresh schema in the test database, so runs and tests never collide;
/// dropped (with everything in it) when the guard is dropped, also when the
/// test fails. `scripts/clean-test-state.sh` sweeps what a killed test
/// process could not drop.
pub async fn postgres_schema() -> PgSchema {
    postgres_schema_at(POSTGRES).await
}

/// Like [`postgres_schema`], with the URL to reach the server by (a proxy).
pub async fn postgres_schema_at(base: &str) -> PgSchema {
    use sqlx::Connection;
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let name = format!(
        "hubbub_test_{}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    );
    let mut conn = sqlx::PgConnection::connect(POSTGRES)
        .await
        .expect("PostgreSQL at 127.0.0.1:5432 (database test)");
    sqlx::query(&format!("CREATE SCHEMA {name}"))
        .execute(&mut conn)
        .await
        .unwrap();
    PgSchema {
        url: format!("{base}?options=-csearch_path%3D{name}"),
        name,
    }
}

/// A test's own PostgreSQL schema; see [`postgres_schema`].
pub struct PgSchema {
    /// A URL whose connections use the schema.
    pub url: String,
    name: String,
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        // Drop runs inside the test's runtime (maybe its only thread), so the
        // cleanup gets a thread and runtime of its own. A lock timeout keeps
        // a server still holding the schema from hanging the test.
        let name = self.name.clone();
        let dropped = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(async move {
                    use sqlx::Connection;
                    let mut conn = sqlx::PgConnection::connect(POSTGRES).await?;
                    sqlx::query("SET lock_timeout = '5s'")
                        .execute(&mut conn)
                        .await?;
                    sqlx::query(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"))
                        .execute(&mut conn)
                        .await
                        .map(drop)
                })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop test schema {}: {dropped:?}", self.name);
        }
    }
}

/// A test configuration on PostgreSQL, in a fresh schema that lives as long
/// as the returned guard.
pub async fn postgres_config() -> (Config, PgSchema) {
    let schema = postgres_schema().await;
    let config = Config {
        store: hubbub::config::StoreKind::Postgres,
        database_url: Some(schema.url.clone()),
        ..config()
    };
    (config, schema)
}

/// A fresh directory under the system temp dir, removed when the test
/// process exits normally.
pub fn data_dir() -> std::path::PathBuf {
    static DIRS: std::sync::Mutex<Vec<tempfile::TempDir>> = std::sync::Mutex::new(Vec::new());
    let dir = tempfile::Builder::new()
        .prefix("hubbub-test-")
        .tempdir()
        .expect("temp dir");
    let path = dir.path().to_path_buf();
    DIRS.lock().unwrap().push(dir);
    path
}

pub struct TestServer {
    pub addr: SocketAddr,
    pub http: SocketAddr,
    /// The admin listener (/metrics, /readyz).
    pub admin: SocketAddr,
    /// The TLS listeners, when configured.
    pub tls_tcp: Option<SocketAddr>,
    pub https: Option<SocketAddr>,
    /// The TLS side (what SIGHUP reloads), when configured.
    pub tls: Option<Arc<hubbub::tls::Tls>>,
    pub hub: Arc<Hub>,
    /// The server's accounts (what `hubbub operator add` changes).
    pub accounts: Arc<hubbub::accounts::Accounts>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl TestServer {
    pub async fn start(config: Config) -> TestServer {
        // `RUST_LOG=debug cargo test` shows the server's log.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let server = Server::bind(config).await.expect("bind");
        let addr = server.tcp_addr();
        let http = server.http_addr();
        let admin = server.admin_addr();
        let addresses = server.addresses();
        let tls = server.tls().cloned();
        let hub = server.hub().clone();
        let accounts = server.accounts().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server.run(async {
            let _ = stopped.await;
        }));
        TestServer {
            addr,
            http,
            admin,
            tls_tcp: addresses.tls_tcp,
            https: addresses.https,
            tls,
            hub,
            accounts,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub async fn default() -> TestServer {
        TestServer::start(config()).await
    }

    pub async fn client(&self) -> Client {
        Client::connect(self.addr).await
    }

    pub async fn socket(&self) -> sio::SioClient {
        sio::SioClient::connect(self.http).await
    }

    /// Stops the server as SIGTERM would and waits for it to finish.
    pub async fn shutdown(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(30), self.task.take().unwrap())
            .await
            .expect("server stops in time")
            .expect("server task")
            .expect("server run");
    }
}

/// A raw line-protocol client, over TCP or TLS.
pub struct Client {
    pub name: String,
    reader: BufReader<Box<dyn AsyncRead + Send + Unpin>>,
    writer: Box<dyn AsyncWrite + Send + Unpin>,
}

impl Client {
    /// Connects and reads the greeting (`You are NAME`).
    pub async fn connect(addr: SocketAddr) -> Client {
        Client::greeted(TcpStream::connect(addr).await.expect("connect")).await
    }

    /// A client on an open connection, after reading the greeting.
    pub async fn greeted(stream: TcpStream) -> Client {
        let mut client = Client::on(stream);
        let greeting = client.line().await;
        client.name = greeting
            .strip_prefix("You are ")
            .unwrap_or_else(|| panic!("unexpected greeting {greeting:?}"))
            .to_string();
        client
    }

    /// Connects without reading anything.
    pub async fn connect_raw(addr: SocketAddr) -> Client {
        Client::on(TcpStream::connect(addr).await.expect("connect"))
    }

    fn on(stream: TcpStream) -> Client {
        let local = stream.local_addr().unwrap().to_string();
        let (r, w) = stream.into_split();
        Client {
            name: local,
            reader: BufReader::new(Box::new(r)),
            writer: Box::new(w),
        }
    }

    /// A client on any open connection (TLS), named `local` until the
    /// greeting is read.
    pub async fn greeted_over<S>(stream: S, local: String) -> Client
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (r, w) = tokio::io::split(stream);
        let mut client = Client {
            name: local,
            reader: BufReader::new(Box::new(r)),
            writer: Box::new(w),
        };
        let greeting = client.line().await;
        client.name = greeting
            .strip_prefix("You are ")
            .unwrap_or_else(|| panic!("unexpected greeting {greeting:?}"))
            .to_string();
        client
    }

    pub async fn send(&mut self, line: &str) {
        self.send_bytes(format!("{line}\n").as_bytes()).await;
    }

    pub async fn send_bytes(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).await.expect("write");
    }

    /// The next line, without its LF; panics after [`WAIT`] or at EOF.
    pub async fn line(&mut self) -> String {
        match self.try_line(WAIT).await {
            Some(line) => line,
            None => panic!("{}: connection closed while waiting for a line", self.name),
        }
    }

    /// The next line, or `None` at EOF; panics on timeout.
    pub async fn try_line(&mut self, wait: Duration) -> Option<String> {
        let mut buf = Vec::new();
        let n = tokio::time::timeout(wait, self.reader.read_until(b'\n', &mut buf))
            .await
            .unwrap_or_else(|_| panic!("{}: no line within {wait:?}", self.name))
            .expect("read");
        if n == 0 {
            return None;
        }
        assert_eq!(buf.pop(), Some(b'\n'), "{}: line without LF", self.name);
        Some(String::from_utf8(buf).expect("server sends UTF-8"))
    }

    pub async fn expect(&mut self, expected: &str) {
        let line = self.line().await;
        assert_eq!(line, expected, "{} got an unexpected line", self.name);
    }

    /// Asserts that nothing arrives for `wait`.
    pub async fn expect_silence(&mut self, wait: Duration) {
        let mut byte = [0u8; 1];
        if let Ok(result) = tokio::time::timeout(wait, self.reader.read(&mut byte)).await {
            let n = result.expect("read");
            let mut rest = String::new();
            if n > 0 {
                let _ = tokio::time::timeout(
                    Duration::from_millis(50),
                    self.reader.read_line(&mut rest),
                )
                .await;
            }
            panic!(
                "{}: expected silence, got {:?}",
                self.name,
                format!("{}{rest}", String::from_utf8_lossy(&byte[..n]))
            );
        }
    }

    /// Reads until the server closes the connection; returns what came.
    pub async fn read_to_end(&mut self, wait: Duration) -> String {
        let mut out = Vec::new();
        tokio::time::timeout(wait, self.reader.read_to_end(&mut out))
            .await
            .unwrap_or_else(|_| panic!("{}: not closed within {wait:?}", self.name))
            .expect("read");
        String::from_utf8_lossy(&out).into_owned()
    }

    /// Half-closes: the server sees EOF, this client can still read.
    pub async fn writer_shutdown(&mut self) {
        self.writer.shutdown().await.expect("shutdown");
    }

    /// Reads lines until one starts with `prefix`; returns it.
    pub async fn line_starting(&mut self, prefix: &str) -> String {
        loop {
            let line = self.line().await;
            if line.starts_with(prefix) {
                return line;
            }
        }
    }

    pub async fn nick(&mut self, nick: &str) {
        let old = std::mem::replace(&mut self.name, nick.to_string());
        self.send(&format!("/nick {nick}")).await;
        self.expect(&format!("{old} is now known as {nick}")).await;
    }
}

/// Connects one client per name, renames each, and consumes the join and
/// rename announcements, so every client starts with nothing unread.
pub async fn named_clients<const N: usize>(server: &TestServer, names: [&str; N]) -> Vec<Client> {
    let mut clients: Vec<Client> = Vec::new();
    for name in names {
        let mut client = server.client().await;
        for other in clients.iter_mut() {
            other
                .expect(&format!("{} has joined us", client.name))
                .await;
        }
        let old = client.name.clone();
        client.nick(name).await;
        for other in clients.iter_mut() {
            other.expect(&format!("{old} is now known as {name}")).await;
        }
        clients.push(client);
    }
    clients
}

/// The `hubbub` binary running as a child process.
pub struct Process {
    pub child: tokio::process::Child,
    pub tcp: SocketAddr,
    pub http: SocketAddr,
    /// The admin listener (/metrics, /readyz).
    pub admin: SocketAddr,
    /// The TLS listeners, when started with a certificate.
    pub tls_tcp: Option<SocketAddr>,
    pub https: Option<SocketAddr>,
    /// Every log line so far (stderr).
    log: Arc<std::sync::Mutex<Vec<String>>>,
}

impl Process {
    /// Starts the binary with `args` (plus loopback port-0 listeners unless
    /// given) and waits for its `listening` log line.
    pub async fn start(args: &[String]) -> Process {
        Process::start_command(
            tokio::process::Command::new(env!("CARGO_BIN_EXE_hubbub")),
            args,
        )
        .await
    }

    /// Like [`Process::start`], with the open-files limit (soft and hard)
    /// set to `limit`.
    pub async fn start_with_open_files(limit: u32, args: &[String]) -> Process {
        let mut command = tokio::process::Command::new("sh");
        command.args([
            "-c",
            &format!("ulimit -n {limit} && exec \"$0\" \"$@\""),
            env!("CARGO_BIN_EXE_hubbub"),
        ]);
        Process::start_command(command, args).await
    }

    async fn start_command(mut command: tokio::process::Command, args: &[String]) -> Process {
        use tokio::io::AsyncBufReadExt;
        if !args.iter().any(|a| a == "--tcp-addr") {
            command.args(["--tcp-addr", "127.0.0.1:0"]);
        }
        if !args.iter().any(|a| a == "--http-addr") {
            command.args(["--http-addr", "127.0.0.1:0"]);
        }
        if !args.iter().any(|a| a == "--admin-addr") {
            command.args(["--admin-addr", "127.0.0.1:0"]);
        }
        // A directory of its own (a server locks its data directory).
        if !args.iter().any(|a| a == "--data-dir") {
            command.arg("--data-dir").arg(data_dir());
        }
        let mut child = command
            .args(args)
            .env("HUBBUB_LOG", "info")
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start hubbub");
        let mut log = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
        // Every line is kept, those before `listening` too: background
        // tasks (the cluster link) may log before it.
        let lines: Arc<std::sync::Mutex<Vec<String>>> = Arc::default();
        let (tcp, http, admin, tls_tcp, https) = loop {
            let line = tokio::time::timeout(WAIT, log.next_line())
                .await
                .expect("startup log in time")
                .unwrap()
                .expect("hubbub exited before listening");
            lines.lock().unwrap().push(line.clone());
            let field = |name: &str| -> Option<SocketAddr> {
                line.split(&format!(" {name}="))
                    .nth(1)?
                    .split_whitespace()
                    .next()?
                    .parse()
                    .ok()
            };
            if let (Some(tcp), Some(http), Some(admin)) =
                (field("tcp"), field("http"), field("admin"))
            {
                break (tcp, http, admin, field("tls_tcp"), field("https"));
            }
        };
        // Keep draining the log so the child never blocks on a full pipe.
        let kept = lines.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = log.next_line().await {
                if std::env::var_os("HUBBUB_TEST_LOG").is_some() {
                    eprintln!("[{}] {line}", tcp.port());
                }
                kept.lock().unwrap().push(line);
            }
        });
        Process {
            child,
            tcp,
            http,
            admin,
            tls_tcp,
            https,
            log: lines,
        }
    }

    /// Waits until the process has logged a line containing `text`.
    pub async fn wait_for_log(&self, text: &str) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if self.log.lock().unwrap().iter().any(|l| l.contains(text)) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no log line with {text:?} in time; the log:\n{}",
                self.log.lock().unwrap().join("\n")
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The number logged as `name=N` on the first line containing `text`.
    pub fn log_field(&self, text: &str, name: &str) -> u64 {
        let log = self.log.lock().unwrap();
        let line = log.iter().find(|l| l.contains(text)).expect("logged");
        line.split_whitespace()
            .find_map(|f| f.strip_prefix(&format!("{name}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name}= in {line}"))
    }

    /// How many log lines so far contain `text`.
    pub fn log_count(&self, text: &str) -> usize {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(text))
            .count()
    }

    /// SIGTERM, then waits for the process to exit.
    pub async fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().expect("running");
        let sent = tokio::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .await
            .unwrap();
        assert!(sent.success());
        tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("exits after SIGTERM")
            .unwrap()
    }

    /// SIGKILL: no shutdown, no flush.
    pub async fn kill_9(&mut self) {
        self.child.start_kill().unwrap();
        self.child.wait().await.unwrap();
    }
}

/// Runs the binary with `args`, expecting it to fail at start; returns stderr.
pub async fn start_fails(args: &[&str]) -> String {
    let out = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::process::Command::new(env!("CARGO_BIN_EXE_hubbub"))
            .args(["--tcp-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"])
            .args(["--admin-addr", "127.0.0.1:0"])
            .args(args)
            .output(),
    )
    .await
    .expect("exits in time")
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "should fail to start: {stderr}");
    assert!(
        !stderr.contains("panicked"),
        "a clear error, not a panic: {stderr}"
    );
    stderr
}
