//! The `hubbub` binary: parse the configuration, set up logging, run the server.

use std::io::IsTerminal;

use clap::Parser;
use hubbub::config::{Cli, Command, Config, OperatorAction};
use hubbub::server::{self, Server};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // First, so that a SIGTERM at any point from here on stops gracefully
    // (during start-up: as soon as it is noticed, before serving).
    let mut shutdown = std::pin::pin!(server::shutdown_signal());
    // A SIGHUP (a certificate reload) during start-up is ignored rather
    // than fatal: once tokio handles a signal, its default action is gone
    // for good. The server reloads on those that come once it runs.
    #[cfg(unix)]
    let _early_hangups =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    let cli = Cli::parse();
    let config = Config::load(cli.options)?;
    if let Some(Command::Operator { action }) = cli.command {
        let (nick, on) = match action {
            OperatorAction::Add { nick } => (nick, true),
            OperatorAction::Remove { nick } => (nick, false),
        };
        server::set_operator(&config, &nick, on).await?;
        let done = if on { "is now" } else { "is no longer" };
        println!("{nick} {done} a server operator (from its next login)");
        return Ok(());
    }

    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_new(&config.log)?)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    match server::raise_fd_limit() {
        Ok(limit) => tracing::info!(limit, "open-files limit"),
        Err(e) => tracing::warn!(error = %e, "could not raise the open-files limit"),
    }

    let server = tokio::select! {
        server = Server::bind(config) => server?,
        () = &mut shutdown => {
            tracing::info!("stopped during start-up");
            return Ok(());
        }
    };
    server.run(shutdown).await
}
