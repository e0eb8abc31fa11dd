//! Test helpers: a real server on port 0, raw TCP line clients, and a
//! small Socket.IO client ([`sio`]).
#![allow(dead_code)]

pub mod sio;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hubbub::hub::Hub;
use hubbub::{Config, Server};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
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
        flood_rate: 0.0,
        data_dir: data_dir(),
        ..Config::default()
    }
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
    pub hub: Arc<Hub>,
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
        let hub = server.hub().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server.run(async {
            let _ = stopped.await;
        }));
        TestServer {
            addr,
            http,
            hub,
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

/// A raw line-protocol client.
pub struct Client {
    pub name: String,
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
}

impl Client {
    /// Connects and reads the greeting (`You are NAME`).
    pub async fn connect(addr: SocketAddr) -> Client {
        let mut client = Client::connect_raw(addr).await;
        let greeting = client.line().await;
        client.name = greeting
            .strip_prefix("You are ")
            .unwrap_or_else(|| panic!("unexpected greeting {greeting:?}"))
            .to_string();
        client
    }

    /// Connects without reading anything.
    pub async fn connect_raw(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).await.expect("connect");
        let local = stream.local_addr().unwrap().to_string();
        let (r, w) = stream.into_split();
        Client {
            name: local,
            reader: BufReader::new(r),
            writer: w,
        }
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
