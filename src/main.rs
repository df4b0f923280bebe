//! The `sluicegate` command line: the Maelstrom-compatible harness (`test`) and the gRPC ingest
//! server and load client (`ingest ...`). Thin by design: parse flags, set up logging on stderr,
//! hand over to the library.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
    Test(sluicegate::harness::cli::TestArgs),
    /// The gRPC bi-stream ingest server, its load client and store tools.
    #[command(subcommand)]
    Ingest(sluicegate::ingest::cli::IngestCommand),
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
        eprintln!("sluicegate: {print_error}");
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
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let outcome = match cli.command {
        Command::Test(args) => sluicegate::harness::cli::run_test(args),
        Command::Ingest(command) => sluicegate::ingest::cli::run(command),
    };
    match outcome {
        Ok(code) => code,
        Err(error) => {
            eprintln!("sluicegate: {error:#}");
            ExitCode::from(255)
        }
    }
}
