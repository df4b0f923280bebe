//! The `sluicegate` command line: the Maelstrom-compatible harness (`test`) and the gRPC ingest
//! server and load client (`ingest ...`). Thin by design: parse flags, set up logging on stderr,
//! hand over to the library.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

mod ingest;
mod test;

#[derive(Parser)]
#[command(
    name = "sluicegate",
    version,
    about = "Streaming with backpressure, where overflow is never silent"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a Maelstrom workload against any node binary (same flags as `maelstrom test`).
    Test(test::TestArgs),
    /// The gRPC bi-stream ingest server, its load client and store tools.
    #[command(subcommand)]
    Ingest(ingest::IngestCommand),
    /// Print a shell completion script (e.g. `sluicegate completions bash > ~/.local/share/bash-completion/completions/sluicegate`).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// Maelstrom exits 254 on bad arguments to `test`, and scripts written for it check that; the
/// other subcommands keep clap's usual code 2. Help and version output exit 0.
const MAELSTROM_BAD_ARGUMENTS: u8 = 254;

fn usage_error(error: clap::Error) -> ExitCode {
    if !error.use_stderr() {
        error.exit();
    }
    // A failure to print the usage message leaves nothing better to do than exit with its code.
    if let Err(print_error) = error.print() {
        report(&format!("sluicegate: {print_error}"));
    }
    if std::env::args().nth(1).as_deref() == Some("test") {
        ExitCode::from(MAELSTROM_BAD_ARGUMENTS)
    } else {
        ExitCode::from(2)
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return usage_error(error),
    };
    let outcome = match cli.command {
        Command::Test(args) => {
            init_logging();
            test::run_test(args)
        }
        Command::Ingest(command) => {
            init_logging();
            ingest::run(command)
        }
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "sluicegate",
                &mut std::io::stdout(),
            );
            Ok(ExitCode::SUCCESS)
        }
    };
    match outcome {
        Ok(code) => code,
        Err(error) => {
            report(&format!("sluicegate: {error:#}"));
            ExitCode::from(255)
        }
    }
}

/// Writes `line` to stderr. Unlike `eprintln!`, a closed stderr (`2>&1 | head -1`) is not a
/// panic: there is nobody left to tell, and the exit code still says what happened.
fn report(line: &str) {
    use std::io::Write;
    if writeln!(std::io::stderr(), "{line}").is_err() {
        // Nothing to do: stderr was the last place to say it.
    }
}

/// Logs go to stderr (stdout carries results), filtered by `RUST_LOG` (default `info`), with
/// colour only when stderr is a terminal: a log file gets no escape codes.
fn init_logging() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
}
