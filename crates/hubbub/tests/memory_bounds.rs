//! Memory that grows with input has a bound in bytes: one client writing
//! long lines into many rooms cannot grow the rooms' history caches past
//! `--history-cache-bytes`, and what it wrote is still served from the
//! store.

mod common;

use std::time::Duration;

use common::{Client, Process};

/// VmRSS of `pid`, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_client_writing_long_lines_into_many_rooms_stays_within_the_cache_budget() {
    const ROOMS: usize = 100;
    const LINES: usize = 100;
    const BUDGET: usize = 2 * 1024 * 1024;
    let server = Process::start(&[
        "--store".into(),
        "memory".into(),
        "--flood-rate".into(),
        "0".into(),
        "--history-cache-bytes".into(),
        BUDGET.to_string(),
    ])
    .await;
    let pid = server.child.id().unwrap();
    let baseline = rss_kib(pid);

    // 100 rooms × 100 lines of 4 KB: 40 MB of text, ~120 MB of cache
    // without the budget.
    let mut client = Client::connect(server.tcp).await;
    let line = "x".repeat(4000);
    for room in 0..ROOMS {
        client.send(&format!("/join r{room}")).await;
        loop {
            if client.line().await.starts_with("* you are now in") {
                break;
            }
        }
        for _ in 0..LINES {
            client.send(&line).await;
        }
        for _ in 0..LINES {
            let echo = client.line().await;
            assert!(
                echo.ends_with(&line[..100]),
                "{}",
                &echo[..echo.len().min(80)]
            );
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let grown = rss_kib(pid).saturating_sub(baseline);
    eprintln!("RSS grew by {grown} KiB for 40 MB of text (budget {BUDGET} bytes)");
    // The budget plus the connection's buffers and allocator slack; without
    // the budget this is over 100 MiB.
    assert!(grown < 24 * 1024, "RSS grew by {grown} KiB");

    // The cache holds what fits: the last rooms written, not the first.
    client.send("/join r98").await;
    let mut history = 0;
    loop {
        let l = client.line().await;
        if l == "* end of history" {
            break;
        }
        history += usize::from(l.starts_with('['));
    }
    assert_eq!(history, 20, "the most recent room kept its cache");
}
