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
    /// TCP line-protocol listener [default: 0.0.0.0:8888].
    #[arg(long, global = true, env = "HUBBUB_TCP_ADDR", value_name = "HOST:PORT")]
    pub tcp_addr: Option<String>,
    /// HTTP listener for the web page and Socket.IO [default: 0.0.0.0:8080].
    #[arg(
        long,
        global = true,
        env = "HUBBUB_HTTP_ADDR",
        value_name = "HOST:PORT"
    )]
    pub http_addr: Option<String>,
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
    /// Seconds a shutdown waits for clients to receive what is queued [default: 5].
    #[arg(
        long,
        global = true,
        env = "HUBBUB_SHUTDOWN_GRACE",
        value_name = "SECS"
    )]
    pub shutdown_grace: Option<u64>,
    /// Log filter, in tracing's EnvFilter syntax [default: info].
    #[arg(long, global = true, env = "HUBBUB_LOG", value_name = "FILTER")]
    pub log: Option<String>,
}

/// The resolved configuration the server runs with.
#[derive(Debug, Clone)]
pub struct Config {
    pub tcp_addr: String,
    pub http_addr: String,
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
    pub shutdown_grace: Duration,
    pub log: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            tcp_addr: "0.0.0.0:8888".into(),
            http_addr: "0.0.0.0:8080".into(),
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
            shutdown_grace: Duration::from_secs(5),
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
        let config = Config::merge(options, file);
        config.validate()?;
        Ok(config)
    }

    fn merge(cli: Options, file: Options) -> Config {
        let d = Config::default();
        macro_rules! pick {
            ($field:ident) => {
                cli.$field.or(file.$field).unwrap_or(d.$field)
            };
        }
        let secs = |v: Option<u64>| v.filter(|&s| s > 0).map(Duration::from_secs);
        Config {
            tcp_addr: pick!(tcp_addr),
            http_addr: pick!(http_addr),
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
            shutdown_grace: cli
                .shutdown_grace
                .or(file.shutdown_grace)
                .map_or(d.shutdown_grace, Duration::from_secs),
            log: pick!(log),
        }
    }

    fn validate(&self) -> anyhow::Result<()> {
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
        Ok(())
    }
}

fn read_file(path: &Path) -> anyhow::Result<Options> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading config file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("parsing config file {}", path.display()))
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
        let config = Config::merge(cli, file);
        assert_eq!(config.flood_rate, 3.0);
        assert_eq!(config.flood_burst, 9);
        assert_eq!(config.tcp_addr, "127.0.0.1:0");
        assert_eq!(config.idle_timeout, Some(Duration::from_secs(30)));
        assert_eq!(config.max_line_bytes, 4096);
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
        assert!(Config::merge(cli, Options::default()).validate().is_err());
    }
}
