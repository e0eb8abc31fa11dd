//! One run: connect every client (bounded concurrency), wait until the
//! server is quiet, read its idle RSS, fire the load, wait for the
//! deliveries (or the drain / hard timeout), stop, and merge the results.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::options::{room_name, Options, Proto};
use crate::report::{ErrorCount, Latency, Report, Rss};
use crate::shared::{now_us, ClientResult, Recorder, SendPlan, Shared};
use crate::{sio, tcp};

/// How often progress is polled.
const POLL: Duration = Duration::from_millis(10);

/// VmRSS of `pid` in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// User + system CPU seconds of `pid` ("self" for this process).
pub fn cpu_secs(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces; fields resume after its ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of stat(5), i.e. 11 and 12 here.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // USER_HZ is 100 on every Linux this runs on.
    Some(ticks as f64 / 100.0)
}

/// Bytes `pid` has caused to be written to storage (`write_bytes` in
/// /proc/PID/io; readable for one's own processes).
pub fn written_bytes(pid: u32) -> Option<u64> {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).ok()?;
    let line = io.lines().find(|l| l.starts_with("write_bytes:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

enum Conn {
    Tcp(tcp::Conn),
    Sio(Box<sio::Conn>),
}

async fn connect(opts: &Options, client: usize) -> anyhow::Result<Conn> {
    let room = (opts.rooms > 1).then(|| room_name(opts.room_of(client)));
    Ok(match opts.proto {
        Proto::Tcp => Conn::Tcp(tcp::connect(opts.addr_of(client), room.as_deref()).await?),
        Proto::Socketio => Conn::Sio(Box::new(
            sio::connect(
                opts.addr_of(client),
                room.as_deref(),
                &opts.default_room,
                opts.eager_join,
            )
            .await?,
        )),
    })
}

async fn client_task(
    client: usize,
    opts: Arc<Options>,
    shared: Arc<Shared>,
    connecting: Arc<Semaphore>,
    connected: Arc<Vec<AtomicBool>>,
    plan: Option<SendPlan>,
) -> ClientResult {
    let mut result = ClientResult {
        connected: false,
        recorder: Recorder {
            run_id: shared.run_id,
            ..Recorder::default()
        },
    };
    let conn = {
        let _permit = tokio::select! {
            permit = connecting.acquire() => permit,
            _ = shared.cancel.cancelled() => return result,
        };
        tokio::select! {
            conn = connect(&opts, client) => conn,
            _ = shared.cancel.cancelled() => return result,
        }
    };
    let conn = match conn {
        Ok(conn) => conn,
        Err(e) => {
            shared.error(format!("connect: {e:#}"));
            shared.failed.fetch_add(1, Ordering::Relaxed);
            return result;
        }
    };
    result.connected = true;
    connected[client].store(true, Ordering::Relaxed);
    shared.ready.fetch_add(1, Ordering::Relaxed);
    let outcome = match conn {
        Conn::Tcp(conn) => conn.run(plan, &mut result.recorder, &shared).await,
        Conn::Sio(conn) => conn.run(plan, &mut result.recorder, &shared).await,
    };
    if let Err(e) = outcome {
        if !shared.cancel.is_cancelled() {
            shared.closed_early.fetch_add(1, Ordering::Relaxed);
            shared.error(format!("{e:#}"));
        }
    }
    result
}

/// Waits until no client has received a byte for `quiet`, or `until`.
/// Returns whether it went quiet.
async fn wait_quiet(shared: &Shared, quiet: Duration, until: Instant) -> bool {
    let mut last = shared.bytes.load(Ordering::Relaxed);
    let mut since = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = Instant::now();
        let bytes = shared.bytes.load(Ordering::Relaxed);
        if bytes != last {
            last = bytes;
            since = now;
        } else if now - since >= quiet {
            return true;
        }
        if now >= until {
            return false;
        }
    }
}

/// Nearest-rank percentile of sorted `v`, in milliseconds.
fn percentile_ms(sorted: &[u32], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1] as f64 / 1000.0
}

/// Runs one benchmark as `opts` describes.
pub async fn run(opts: Options) -> anyhow::Result<Report> {
    opts.validate()?;
    let opts = Arc::new(opts);
    let begin = Instant::now();
    let deadline = begin + Duration::from_secs_f64(opts.timeout);
    let shared = Shared::new();
    let baseline_kib = opts.pid.and_then(rss_kib);
    let mut report = Report {
        scenario: opts.scenario.clone(),
        server: opts.server.clone(),
        proto: opts.proto,
        addr: opts.addr.clone(),
        clients: opts.clients,
        senders: if opts.idle_only { 0 } else { opts.senders },
        messages: opts.messages,
        rate: opts.rate,
        payload: opts.payload,
        rooms: opts.rooms,
        idle_only: opts.idle_only,
        ..Report::default()
    };

    // Senders are the first S clients: with rooms (client i in room i mod K)
    // they spread over the rooms. With a rate, sender i sends at
    // i/R + j·S/R seconds after the start, so the total is R per second.
    let senders = if opts.idle_only { 0 } else { opts.senders };
    let plan = |client: usize| -> Option<SendPlan> {
        (client < senders).then(|| SendPlan {
            sender: client,
            messages: opts.messages,
            payload: opts.payload,
            schedule: (opts.rate > 0.0).then(|| {
                let step = 1e6 / opts.rate;
                (
                    (client as f64 * step) as u64,
                    (senders as f64 * step) as u64,
                )
            }),
        })
    };

    let connecting = Arc::new(Semaphore::new(opts.connect_concurrency));
    let connected: Arc<Vec<AtomicBool>> =
        Arc::new((0..opts.clients).map(|_| AtomicBool::new(false)).collect());
    let handles: Vec<_> = (0..opts.clients)
        .map(|client| {
            tokio::spawn(client_task(
                client,
                opts.clone(),
                shared.clone(),
                connecting.clone(),
                connected.clone(),
                plan(client),
            ))
        })
        .collect();

    // 1. Connects.
    loop {
        let done = shared.ready.load(Ordering::Relaxed) + shared.failed.load(Ordering::Relaxed);
        if done >= opts.clients {
            break;
        }
        if Instant::now() >= deadline {
            report.timed_out = true;
            break;
        }
        tokio::time::sleep(POLL).await;
    }
    report.connect_secs = begin.elapsed().as_secs_f64();
    report.connected = shared.ready.load(Ordering::Relaxed);
    report.connect_failed = opts.clients - report.connected;

    // 2. Quiet: join announcements and greetings have all been delivered.
    let settle_start = Instant::now();
    if !report.timed_out {
        let until = deadline.min(settle_start + Duration::from_secs_f64(opts.settle_max));
        report.settled = wait_quiet(&shared, Duration::from_millis(opts.quiet_ms), until).await;
        if !report.settled && Instant::now() >= deadline {
            report.timed_out = true;
        }
    }
    report.settle_secs = settle_start.elapsed().as_secs_f64();
    if report.settled {
        // What idle connections cost, on both sides.
        let server_before = opts.pid.and_then(|pid| cpu_secs(&pid.to_string()));
        let bench_before = cpu_secs("self");
        tokio::time::sleep(crate::report::IDLE_WINDOW).await;
        report.idle_server_cpu_secs = opts
            .pid
            .and_then(|pid| cpu_secs(&pid.to_string()))
            .zip(server_before)
            .map(|(after, before)| after - before);
        report.idle_bench_cpu_secs = cpu_secs("self")
            .zip(bench_before)
            .map(|(after, before)| after - before);
    }
    let idle_kib = opts.pid.and_then(rss_kib);
    let mut peak_kib = idle_kib;

    // 3. Load.
    if !opts.idle_only && !report.timed_out {
        let mut room_sizes = vec![0u64; opts.rooms];
        for (client, ok) in connected.iter().enumerate() {
            if ok.load(Ordering::Relaxed) {
                room_sizes[opts.room_of(client)] += 1;
            }
        }
        let live_senders: Vec<usize> = (0..senders)
            .filter(|&s| connected[s].load(Ordering::Relaxed))
            .collect();
        report.expected = live_senders
            .iter()
            .map(|&s| opts.messages as u64 * room_sizes[opts.room_of(s)])
            .sum();

        let sampling = tokio_util::sync::CancellationToken::new();
        let sampler = opts.pid.map(|pid| {
            let sampling = sampling.clone();
            tokio::spawn(async move {
                let mut peak = 0;
                let mut tick = tokio::time::interval(Duration::from_millis(50));
                loop {
                    tokio::select! {
                        _ = tick.tick() => peak = peak.max(rss_kib(pid).unwrap_or(0)),
                        _ = sampling.cancelled() => return peak.max(rss_kib(pid).unwrap_or(0)),
                    }
                }
            })
        });
        let server_cpu_before = opts.pid.and_then(|pid| cpu_secs(&pid.to_string()));
        let bench_cpu_before = cpu_secs("self");
        let written_before = opts.pid.and_then(written_bytes);

        shared.start_us.store(now_us(), Ordering::Relaxed);
        shared.start.cancel();
        let drain = Duration::from_secs_f64(opts.drain);
        let mut last_delivered = 0;
        let mut last_change = Instant::now();
        loop {
            tokio::time::sleep(POLL).await;
            let delivered = shared.delivered.load(Ordering::Relaxed);
            let now = Instant::now();
            if delivered >= report.expected {
                break;
            }
            if delivered != last_delivered {
                last_delivered = delivered;
                last_change = now;
            }
            let senders_done = shared.senders_done.load(Ordering::Relaxed) >= live_senders.len();
            if senders_done && now - last_change >= drain {
                break;
            }
            if now >= deadline {
                report.timed_out = true;
                break;
            }
        }
        report.server_cpu_secs = opts
            .pid
            .and_then(|pid| cpu_secs(&pid.to_string()))
            .zip(server_cpu_before)
            .map(|(after, before)| after - before);
        report.server_written_bytes = opts
            .pid
            .and_then(written_bytes)
            .zip(written_before)
            .map(|(after, before)| after.saturating_sub(before));
        report.bench_cpu_secs = cpu_secs("self")
            .zip(bench_cpu_before)
            .map(|(after, before)| after - before);
        sampling.cancel();
        if let Some(sampler) = sampler {
            if let Ok(peak) = sampler.await {
                peak_kib = Some(peak.max(idle_kib.unwrap_or(0)));
            }
        }
    }

    // 4. Stop and merge.
    shared.cancel.cancel();
    let mut latencies: Vec<u32> = Vec::new();
    let mut last_delivery_us = 0;
    for handle in handles {
        let Ok(result) = handle.await else {
            shared.error("a client task panicked");
            continue;
        };
        report.received += result.recorder.delivered;
        last_delivery_us = last_delivery_us.max(result.recorder.last_delivery_us);
        latencies.extend_from_slice(&result.recorder.latencies);
    }
    report.sent = shared.sent.load(Ordering::Relaxed);
    report.bytes_received = shared.bytes.load(Ordering::Relaxed);
    report.lost = report.expected.saturating_sub(report.received);
    report.closed_early = shared.closed_early.load(Ordering::Relaxed);
    let first_send_us = shared.first_send_us.load(Ordering::Relaxed);
    if report.received > 0 && first_send_us != u64::MAX && last_delivery_us > first_send_us {
        report.window_secs = (last_delivery_us - first_send_us) as f64 / 1e6;
        report.deliveries_per_sec = report.received as f64 / report.window_secs;
    }
    if !latencies.is_empty() {
        latencies.sort_unstable();
        report.latency_ms = Some(Latency {
            p50: percentile_ms(&latencies, 50.0),
            p99: percentile_ms(&latencies, 99.0),
            max: percentile_ms(&latencies, 100.0),
        });
    }
    if let (Some(baseline), Some(idle)) = (baseline_kib, idle_kib) {
        let per_connection = if report.connected > 0 {
            idle.saturating_sub(baseline) * 1024 / report.connected as u64
        } else {
            0
        };
        report.rss = Some(Rss {
            baseline_kib: baseline,
            idle_kib: idle,
            peak_kib: peak_kib.unwrap_or(idle),
            per_connection_bytes: per_connection,
        });
    }
    report.errors = shared
        .errors()
        .into_iter()
        .map(|(message, count)| ErrorCount { message, count })
        .collect();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<u32> = (1..=100).map(|ms| ms * 1000).collect();
        assert_eq!(percentile_ms(&v, 50.0), 50.0);
        assert_eq!(percentile_ms(&v, 99.0), 99.0);
        assert_eq!(percentile_ms(&v, 100.0), 100.0);
        assert_eq!(percentile_ms(&[7000], 50.0), 7.0);
    }

    #[test]
    fn reads_own_rss_and_cpu() {
        assert!(rss_kib(std::process::id()).unwrap() > 0);
        assert!(cpu_secs("self").is_some());
    }
}
