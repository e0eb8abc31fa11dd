//! Many clients at once: no loss, per-sender order, and a client that stops
//! reading never holds the others back.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::TestServer;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpSocket, TcpStream};

/// Connects, reads the greeting, and returns the stream and our name.
async fn connect(addr: SocketAddr) -> (BufReader<TcpStream>, String) {
    let stream = TcpStream::connect(addr).await.unwrap();
    let mut reader = BufReader::new(stream);
    let mut greeting = String::new();
    reader.read_line(&mut greeting).await.unwrap();
    let name = greeting
        .trim_end()
        .strip_prefix("You are ")
        .unwrap()
        .to_string();
    (reader, name)
}

/// Every client sends `per_client` numbered messages while reading; returns,
/// per client, the sequence numbers it saw from each sender, and the worst
/// latency observed.
async fn chat(
    clients: Vec<(BufReader<TcpStream>, String)>,
    per_client: usize,
    payload: usize,
) -> (Vec<HashMap<String, Vec<usize>>>, Duration) {
    let expected = clients.len() * per_client;
    let start = Instant::now();
    let padding = "p".repeat(payload);
    let mut tasks = Vec::new();
    for (stream, name) in clients {
        let padding = padding.clone();
        tasks.push(tokio::spawn(async move {
            let (read, mut write) = stream.into_inner().into_split();
            let sender = tokio::spawn(async move {
                for seq in 0..per_client {
                    let sent = start.elapsed().as_micros();
                    let line = format!("m {seq} {sent} {padding}\n");
                    write.write_all(line.as_bytes()).await.unwrap();
                    if seq % 10 == 9 {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                }
                write
            });
            let mut lines = BufReader::new(read).lines();
            let mut seen: HashMap<String, Vec<usize>> = HashMap::new();
            let mut count = 0;
            let mut worst = Duration::ZERO;
            while count < expected {
                let line = tokio::time::timeout(common::WAIT, lines.next_line())
                    .await
                    .unwrap_or_else(|_| panic!("{name}: stalled after {count} messages"))
                    .unwrap()
                    .unwrap_or_else(|| panic!("{name}: closed after {count} messages"));
                let Some((from, rest)) = line.split_once(": m ") else {
                    continue; // joins and leaves
                };
                let mut fields = rest.split(' ');
                let seq: usize = fields.next().unwrap().parse().unwrap();
                let sent: u128 = fields.next().unwrap().parse().unwrap();
                let latency = Duration::from_micros((start.elapsed().as_micros() - sent) as u64);
                worst = worst.max(latency);
                seen.entry(from.to_string()).or_default().push(seq);
                count += 1;
            }
            let _keep_open = sender.await.unwrap();
            (seen, worst)
        }));
    }
    let mut all = Vec::new();
    let mut worst = Duration::ZERO;
    for task in tasks {
        let (seen, w) = task.await.unwrap();
        all.push(seen);
        worst = worst.max(w);
    }
    (all, worst)
}

fn assert_complete_and_ordered(seen: &[HashMap<String, Vec<usize>>], senders: usize, per: usize) {
    let in_order: Vec<usize> = (0..per).collect();
    for per_client in seen {
        assert_eq!(per_client.len(), senders, "messages from every sender");
        for (sender, seqs) in per_client {
            assert_eq!(seqs, &in_order, "everything from {sender}, in order");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_clients_lose_nothing_and_keep_order() {
    let server = TestServer::default().await;
    let mut clients = Vec::new();
    for _ in 0..200 {
        clients.push(connect(server.addr).await);
    }
    let (seen, _) = chat(clients, 10, 16).await;
    assert_complete_and_ordered(&seen, 200, 10);
    assert_eq!(server.hub.stats().slow_consumers.load(Ordering::Relaxed), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_does_not_hold_back_the_others() {
    let mut config = common::config();
    config.outbound_limit = 256 * 1024;
    config.shutdown_grace = Duration::from_secs(2);
    let server = TestServer::start(config).await;
    let rss_before = rss_bytes();

    // The stalled client: a tiny receive window, and it never reads.
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stalled = BufReader::new(socket.connect(server.addr).await.unwrap());
    let mut greeting = String::new();
    stalled.read_line(&mut greeting).await.unwrap();

    let mut clients = Vec::new();
    for _ in 0..50 {
        clients.push(connect(server.addr).await);
    }
    // 50 × 120 messages of ~1 KB: ~6 MB for each reader, past the stalled
    // client's 256 KiB bound plus what the kernel buffers (up to 4 MiB).
    let (seen, worst) = chat(clients, 120, 1000).await;
    assert_complete_and_ordered(&seen, 50, 120);
    assert!(
        worst < Duration::from_secs(5),
        "the others kept flowing (worst latency {worst:?})"
    );
    assert_eq!(server.hub.stats().slow_consumers.load(Ordering::Relaxed), 1);

    // The stalled client was cut off: reading now ends at EOF, short of
    // the 6000 messages the others got.
    let mut received = 0;
    let mut last = String::new();
    loop {
        let mut line = String::new();
        let n = tokio::time::timeout(common::WAIT, stalled.read_line(&mut line))
            .await
            .expect("the server closed the stalled connection")
            .unwrap_or(0);
        if n == 0 {
            break;
        }
        received += 1;
        last = line;
    }
    assert!(received < 6000, "stalled client got {received} lines");
    if !last.starts_with("! disconnected") {
        // The reason line is best effort: the socket may have been full.
        eprintln!("stalled client's last line: {last:?}");
    }

    // Memory stayed bounded: one outbox of 256 KiB could be held back, not
    // the ~1 MB that was sent past it (nor 50 copies of it).
    let growth = rss_bytes().saturating_sub(rss_before);
    assert!(growth < 64 * 1024 * 1024, "RSS grew by {growth} bytes");
}

/// This process's resident memory (client and server share it).
fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap();
    kb * 1024
}
