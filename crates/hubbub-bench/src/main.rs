//! `hubbub-bench`: one benchmark run from the command line, or
//! `hubbub-bench report FILE…` to turn JSON reports into markdown tables.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use hubbub_bench::{Options, Report};

#[derive(Debug, Parser)]
#[command(
    name = "hubbub-bench",
    about = "Load generator for hubbub and the reference peer chats",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    options: Options,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print markdown tables of JSON reports (one per line, as `--json` prints them).
    Report {
        /// Leave out the `#### SCENARIO` heading above each table.
        #[arg(long)]
        no_headings: bool,
        /// Files of JSON reports, one per line.
        files: Vec<std::path::PathBuf>,
    },
}

fn report_files(files: &[std::path::PathBuf], headings: bool) -> anyhow::Result<()> {
    let mut reports = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(file)?;
        for (n, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let report: Report = serde_json::from_str(line)
                .map_err(|e| anyhow::anyhow!("{}:{}: {e}", file.display(), n + 1))?;
            reports.push(report);
        }
    }
    print!("{}", hubbub_bench::report::markdown(&reports, headings));
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Report { no_headings, files }) = &cli.command {
        return match report_files(files, !no_headings) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("hubbub-bench: {e:#}");
                ExitCode::from(2)
            }
        };
    }
    let options = cli.options;
    if let Err(e) = options.validate() {
        eprintln!("hubbub-bench: {e:#}");
        return ExitCode::from(2);
    }
    if let Err(e) = hubbub_bench::raise_fd_limit() {
        eprintln!("hubbub-bench: could not raise the open-files limit: {e}");
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("hubbub-bench: {e}");
            return ExitCode::from(2);
        }
    };
    let json = options.json;
    let strict = options.strict;
    // The run stops itself at --timeout; this is the backstop if it does not.
    let backstop = Duration::from_secs_f64(options.timeout + 30.0);
    let outcome = runtime
        .block_on(async { tokio::time::timeout(backstop, hubbub_bench::run(options)).await });
    let code = match outcome {
        Err(_) => {
            eprintln!("hubbub-bench: did not stop within --timeout + 30 s; giving up");
            ExitCode::from(3)
        }
        Ok(Err(e)) => {
            eprintln!("hubbub-bench: {e:#}");
            ExitCode::from(2)
        }
        Ok(Ok(report)) => {
            if json {
                match serde_json::to_string(&report) {
                    Ok(line) => println!("{line}"),
                    Err(e) => eprintln!("hubbub-bench: {e}"),
                }
            } else {
                print!("{}", report.to_text());
            }
            if strict && report.has_problems() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
    };
    // Thousands of sockets and tasks: do not wait for an orderly teardown.
    runtime.shutdown_background();
    code
}
