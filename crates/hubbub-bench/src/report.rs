//! The result of a run, as text, JSON, and markdown tables (for
//! `hubbub-bench report results.jsonl`, which bench/compare.sh uses).

use std::fmt::Write;

use serde::{Deserialize, Serialize};

use crate::options::Proto;

/// Everything a run measured. Every field has a default so that a line
/// written by a script for a run that could not happen (`{"scenario": …,
/// "server": …, "failure": "why"}`) parses too.
/// How long the bench measures CPU with every client connected and the
/// server quiet, before any load (see [`Report::idle_bench_cpu_secs`]).
pub const IDLE_WINDOW: std::time::Duration = std::time::Duration::from_secs(2);

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Report {
    pub scenario: Option<String>,
    pub server: Option<String>,
    /// Why there are no numbers (set by scripts for skipped or failed runs).
    pub failure: Option<String>,
    pub proto: Proto,
    pub addr: String,
    pub clients: usize,
    pub senders: usize,
    pub messages: usize,
    pub rate: f64,
    pub payload: usize,
    pub rooms: usize,
    pub idle_only: bool,

    pub connected: usize,
    pub connect_failed: usize,
    /// From the first connect attempt until every client is connected (or failed).
    pub connect_secs: f64,
    /// Whether the server went quiet (no byte to any client for --quiet-ms)
    /// before the load started / the idle RSS was read.
    pub settled: bool,
    pub settle_secs: f64,

    /// Bytes the clients received in all (greetings, announcements, messages).
    pub bytes_received: u64,
    /// Messages actually written by the senders.
    pub sent: u64,
    /// Planned messages of the connected senders × clients in the sender's room.
    pub expected: u64,
    /// Benchmark messages received, over all clients.
    pub received: u64,
    /// `expected − received` (0 if more arrived).
    pub lost: u64,
    /// From the first send to the last delivery.
    pub window_secs: f64,
    pub deliveries_per_sec: f64,
    pub latency_ms: Option<Latency>,
    pub rss: Option<Rss>,
    /// CPU time (user + system) the server used during the load window.
    pub server_cpu_secs: Option<f64>,
    /// CPU time the benchmark process used during the load window.
    pub bench_cpu_secs: Option<f64>,
    /// CPU time the server used during [`IDLE_WINDOW`] of quiet after the
    /// clients settled: what idle connections cost it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_server_cpu_secs: Option<f64>,
    /// CPU time the benchmark process used in the same window: an idle
    /// client must cost nothing (no reader or channel left spinning).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_bench_cpu_secs: Option<f64>,
    /// Bytes the server caused to be written to storage during the load
    /// window (`write_bytes` of /proc/PID/io: history, WAL, checkpoints).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_written_bytes: Option<u64>,
    /// Connections that ended before the run did (closed by the server, or errors).
    pub closed_early: usize,
    pub timed_out: bool,
    pub errors: Vec<ErrorCount>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Latency {
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

/// Resident set size of the server (VmRSS), in KiB.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Rss {
    /// Before the first connection.
    pub baseline_kib: u64,
    /// With every client connected, once the server was quiet.
    pub idle_kib: u64,
    /// Highest sample (every 50 ms) during the load; the idle value without load.
    pub peak_kib: u64,
    /// (idle − baseline) / connected clients, in bytes.
    pub per_connection_bytes: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ErrorCount {
    pub message: String,
    pub count: u64,
}

impl Report {
    /// Whether `--strict` fails this run.
    pub fn has_problems(&self) -> bool {
        self.lost > 0 || self.connect_failed > 0 || self.timed_out
    }

    /// A few lines for people.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{:?} {}: {} clients ({} connected, {} failed) in {} room(s), connected in {:.2}s, {} after {:.2}s; {} bytes received in all",
            self.proto,
            self.addr,
            self.clients,
            self.connected,
            self.connect_failed,
            self.rooms,
            self.connect_secs,
            if self.settled { "quiet" } else { "NOT quiet" },
            self.settle_secs,
            self.bytes_received,
        );
        if !self.idle_only {
            let rate = if self.rate > 0.0 {
                format!("{} msg/s total", self.rate)
            } else {
                "as fast as possible".to_string()
            };
            let _ = writeln!(
                s,
                "load: {} senders x {} messages of {} bytes, {rate}; sent {}",
                self.senders, self.messages, self.payload, self.sent
            );
            let _ = writeln!(
                s,
                "deliveries: {} of {} expected, lost {}; {:.0} deliveries/s over {:.3}s",
                self.received, self.expected, self.lost, self.deliveries_per_sec, self.window_secs
            );
            if let Some(l) = &self.latency_ms {
                let _ = writeln!(
                    s,
                    "latency: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
                    l.p50, l.p99, l.max
                );
            }
        }
        if let Some(r) = &self.rss {
            let _ = writeln!(
                s,
                "server RSS: baseline {} KiB, idle {} KiB, peak {} KiB; {} bytes per connection",
                r.baseline_kib, r.idle_kib, r.peak_kib, r.per_connection_bytes
            );
        }
        if let (Some(server), Some(bench)) = (self.idle_server_cpu_secs, self.idle_bench_cpu_secs) {
            let _ = writeln!(
                s,
                "CPU while idle ({} s): server {server:.3}s, bench {bench:.3}s",
                IDLE_WINDOW.as_secs()
            );
        }
        if let (Some(server), Some(bench)) = (self.server_cpu_secs, self.bench_cpu_secs) {
            let _ = writeln!(
                s,
                "CPU during the load: server {server:.2}s, bench {bench:.2}s"
            );
        }
        if let Some(written) = self.server_written_bytes {
            let _ = writeln!(
                s,
                "written to storage during the load: {written} bytes, {} per message sent",
                written.checked_div(self.sent).unwrap_or(0)
            );
        }
        if self.closed_early > 0 {
            let _ = writeln!(s, "connections closed early: {}", self.closed_early);
        }
        if self.timed_out {
            let _ = writeln!(s, "TIMED OUT (--timeout)");
        }
        for e in &self.errors {
            let _ = writeln!(s, "error x{}: {}", e.count, e.message);
        }
        s
    }
}

fn mib(kib: u64) -> String {
    format!("{:.1}", kib as f64 / 1024.0)
}

fn label(r: &Report) -> String {
    r.server
        .clone()
        .unwrap_or_else(|| format!("{:?} {}", r.proto, r.addr))
}

/// Caveats of a row, for the notes column.
fn notes(r: &Report) -> String {
    let mut notes = Vec::new();
    if let (Some(written), true) = (r.server_written_bytes, r.sent > 0) {
        notes.push(format!("{} B written per message", written / r.sent));
    }
    if r.connect_failed > 0 {
        notes.push(format!("{} connects failed", r.connect_failed));
    }
    if !r.settled {
        notes.push(format!(
            "not quiet after {:.0}s of connects' chatter",
            r.settle_secs
        ));
    }
    if r.closed_early > 0 {
        notes.push(format!("{} connections closed early", r.closed_early));
    }
    if r.timed_out {
        notes.push("timed out".into());
    }
    if let Some(e) = r.errors.first() {
        notes.push(format!(
            "error x{}: {}",
            e.count,
            e.message.replace('|', "/")
        ));
    }
    notes.join("; ")
}

/// The scenario whose table shows a join storm: every client connects at
/// once, then one message goes to all of them.
pub const STORM: &str = "storm";

/// The storm table: how long the connects and the room's settling took,
/// how many connections the server closed early (shed), its RSS once the
/// room is quiet, and the one message after the storm.
fn storm_table(out: &mut String, rows: &[&Report]) {
    let _ = writeln!(
        out,
        "| server | clients | connected | connect time | quiet after | shed | RSS when quiet MiB | delivered / expected | p99 ms | notes |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    for r in rows {
        if let Some(failure) = &r.failure {
            let _ = writeln!(
                out,
                "| {} |{} {} |",
                label(r),
                " – |".repeat(8),
                failure.replace('|', "/")
            );
            continue;
        }
        let quiet = if r.settled {
            format!("{:.1} s", r.settle_secs)
        } else {
            format!("not within {:.0} s", r.settle_secs)
        };
        let p99 = r
            .latency_ms
            .as_ref()
            .map_or("–".to_string(), |l| format!("{:.1}", l.p99));
        let peak = r
            .rss
            .as_ref()
            .map_or("–".to_string(), |rss| mib(rss.idle_kib));
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.1} s | {quiet} | {} | {peak} | {} / {} | {p99} | {} |",
            label(r),
            r.clients,
            r.connected,
            r.connect_secs,
            r.closed_early,
            r.received,
            r.expected,
            notes(r)
        );
    }
    let _ = writeln!(out);
}

/// Markdown tables of `reports`, one per scenario, in order of first
/// appearance; each under a `####` heading naming it if `headings`.
pub fn markdown(reports: &[Report], headings: bool) -> String {
    let mut scenarios: Vec<String> = Vec::new();
    for r in reports {
        let name = r.scenario.clone().unwrap_or_default();
        if !scenarios.contains(&name) {
            scenarios.push(name);
        }
    }
    let mut out = String::new();
    for scenario in scenarios {
        let rows: Vec<&Report> = reports
            .iter()
            .filter(|r| r.scenario.clone().unwrap_or_default() == scenario)
            .collect();
        let idle = rows.iter().any(|r| r.idle_only);
        if headings && !scenario.is_empty() {
            let _ = writeln!(out, "#### {scenario}\n");
        }
        if scenario == STORM {
            storm_table(&mut out, &rows);
            continue;
        }
        if idle {
            let _ = writeln!(
                out,
                "| server | connections | connect time | sent to clients | RSS before | RSS with connections | RSS per connection | server CPU idle {w} s | bench CPU idle {w} s | notes |",
                w = IDLE_WINDOW.as_secs()
            );
            let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|");
        } else {
            let _ = writeln!(
                out,
                "| server | clients | sent | deliveries expected | received | lost | deliveries/s | p50 ms | p99 ms | max ms | RSS idle MiB | RSS peak MiB | server CPU s | bench CPU s | notes |"
            );
            let _ = writeln!(
                out,
                "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
            );
        }
        for r in rows {
            if let Some(failure) = &r.failure {
                let cols = if idle { 8 } else { 13 };
                let _ = writeln!(
                    out,
                    "| {} |{} {} |",
                    label(r),
                    " – |".repeat(cols),
                    failure.replace('|', "/")
                );
                continue;
            }
            if idle {
                let (before, with, per) = match &r.rss {
                    Some(rss) => (
                        format!("{} MiB", mib(rss.baseline_kib)),
                        format!("{} MiB", mib(rss.idle_kib)),
                        format!("{:.1} KiB", rss.per_connection_bytes as f64 / 1024.0),
                    ),
                    None => ("–".into(), "–".into(), "–".into()),
                };
                let idle_cpu =
                    |v: Option<f64>| v.map_or("–".to_string(), |v| format!("{v:.3} s"));
                let _ = writeln!(
                    out,
                    "| {} | {} | {:.1} s | {:.1} MB | {before} | {with} | {per} | {} | {} | {} |",
                    label(r),
                    r.connected,
                    r.connect_secs,
                    r.bytes_received as f64 / 1e6,
                    idle_cpu(r.idle_server_cpu_secs),
                    idle_cpu(r.idle_bench_cpu_secs),
                    notes(r)
                );
            } else {
                let (p50, p99, max) = match &r.latency_ms {
                    Some(l) => (
                        format!("{:.1}", l.p50),
                        format!("{:.1}", l.p99),
                        format!("{:.1}", l.max),
                    ),
                    None => ("–".into(), "–".into(), "–".into()),
                };
                let (idle_mib, peak_mib) = match &r.rss {
                    Some(rss) => (mib(rss.idle_kib), mib(rss.peak_kib)),
                    None => ("–".into(), "–".into()),
                };
                let cpu = |v: Option<f64>| v.map_or("–".to_string(), |v| format!("{v:.1}"));
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {} | {} | {:.0} | {p50} | {p99} | {max} | {idle_mib} | {peak_mib} | {} | {} | {} |",
                    label(r),
                    r.connected,
                    r.sent,
                    r.expected,
                    r.received,
                    r.lost,
                    r.deliveries_per_sec,
                    cpu(r.server_cpu_secs),
                    cpu(r.bench_cpu_secs),
                    notes(r)
                );
            }
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_lines_parse_and_render() {
        let lines = [
            r#"{"scenario":"fan-out","server":"go","failure":"go is not installed"}"#,
            r#"{"scenario":"idle","server":"hubbub tcp","idle_only":true,"connected":10,"settled":true,"rss":{"baseline_kib":1000,"idle_kib":1100,"peak_kib":1100,"per_connection_bytes":10240}}"#,
        ];
        let reports: Vec<Report> = lines
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let md = markdown(&reports, true);
        assert!(md.contains("| go |"), "{md}");
        assert!(md.contains("go is not installed"), "{md}");
        assert!(md.contains("| hubbub tcp | 10 |"), "{md}");
        assert!(md.contains("10.0 KiB"), "{md}");
    }
}
