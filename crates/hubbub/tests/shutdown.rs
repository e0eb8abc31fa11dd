//! Graceful shutdown: in-process, and the real binary on SIGTERM.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::{Client, TestServer};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

#[tokio::test]
async fn shutdown_flushes_queued_lines_then_says_goodbye() {
    let server = TestServer::default().await;
    let addr = server.addr;
    let [mut a, mut b] = common::named_clients(&server, ["alice", "bob"])
        .await
        .try_into()
        .unwrap_or_else(|_| unreachable!());
    a.send("last words").await;
    a.expect("alice: last words").await;
    server.shutdown().await;

    // Bob had not read alice's line yet: it comes first, then the goodbye.
    assert_eq!(
        b.read_to_end(Duration::from_secs(5)).await,
        "alice: last words\n* server is shutting down, bye\n"
    );
    let rest = a.read_to_end(Duration::from_secs(5)).await;
    assert!(
        rest.starts_with("* server is shutting down, bye\n"),
        "{rest:?}"
    );
    // Nothing listens any more.
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn the_binary_exits_zero_on_sigterm_and_logs_its_address() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hubbub"))
        .args([
            "serve",
            "--tcp-addr",
            "127.0.0.1:0",
            "--http-addr",
            "127.0.0.1:0",
            "--admin-addr",
            "127.0.0.1:0",
        ])
        .arg("--data-dir")
        .arg(common::data_dir())
        .env("HUBBUB_LOG", "info")
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start hubbub");
    let mut log = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = loop {
        let line = tokio::time::timeout(common::WAIT, log.next_line())
            .await
            .expect("startup log in time")
            .unwrap()
            .expect("hubbub exited early");
        if let Some(rest) = line.split(" tcp=").nth(1) {
            break rest.split_whitespace().next().unwrap().parse().unwrap();
        }
    };
    let mut client = Client::connect(addr).await;
    client.send("hello").await;
    client.expect(&format!("{}: hello", client.name)).await;

    let pid = child.id().unwrap().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    assert!(killed.success());
    assert_eq!(
        client.read_to_end(Duration::from_secs(10)).await,
        "* server is shutting down, bye\n"
    );
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("exits in time")
        .unwrap();
    assert!(status.success(), "exit status {status}");
}

#[tokio::test]
async fn a_bad_config_file_is_a_clear_error() {
    let dir = std::env::temp_dir().join(format!("hubbub-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("hubbub.toml");
    std::fs::write(&file, "flod-rate = 3\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_hubbub"))
        .arg("--config")
        .arg(&file)
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("parsing config file"), "{stderr}");
    assert!(stderr.contains("flod-rate"), "{stderr}");

    // A good file is used, and a flag beats it.
    std::fs::write(
        &file,
        "tcp-addr = \"127.0.0.1:1\"\ndefault-room = \"main\"\n",
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_hubbub"))
        .arg("--config")
        .arg(&file)
        .args(["--tcp-addr", "127.0.0.1:0"])
        .args(["--http-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(common::data_dir())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut log = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = loop {
        let line = log.next_line().await.unwrap().expect("running");
        if let Some(rest) = line.split(" tcp=").nth(1) {
            break rest.split_whitespace().next().unwrap().parse().unwrap();
        }
    };
    let mut client = Client::connect(addr).await;
    client.send("/who").await;
    client
        .expect(&format!("* main (1 member): {}", client.name))
        .await;
    child.kill().await.unwrap();
}

/// One run: a client posting every 2 ms and a member watching, the server
/// shut down mid-stream. Returns what the poster saw committed that the
/// watcher never got.
async fn missed_at_shutdown() -> Vec<String> {
    use tokio::io::AsyncWriteExt;
    let server = TestServer::default().await;
    let mut watcher = server.client().await;
    let stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let me = stream.local_addr().unwrap().to_string();
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    lines.next_line().await.unwrap(); // You are …
    loop {
        let line = watcher.line().await;
        if line == format!("{me} has joined us") {
            break;
        }
    }
    let posting = tokio::spawn(async move {
        for i in 0.. {
            if write.write_all(format!("m{i}\n").as_bytes()).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    });
    let echoes = tokio::spawn(async move {
        let mut seen = Vec::new();
        while let Ok(Some(line)) = lines.next_line().await {
            seen.push(line);
        }
        seen
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.shutdown().await;
    posting.abort();
    let echoed = echoes.await.unwrap();
    let watched = watcher.read_to_end(Duration::from_secs(10)).await;
    let watched: std::collections::HashSet<&str> = watched.lines().collect();
    echoed
        .into_iter()
        .filter(|l| l.starts_with(&format!("{me}: ")) && !watched.contains(l.as_str()))
        .collect()
}

#[tokio::test]
async fn every_message_its_sender_saw_committed_reaches_the_others_before_goodbye() {
    for run in 0..15 {
        let missed = missed_at_shutdown().await;
        assert!(
            missed.is_empty(),
            "run {run}: the watcher missed {missed:?}"
        );
    }
}
