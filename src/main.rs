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

fn main() -> ExitCode {
    // Parse before logging is set up so that `--help` and usage errors print cleanly; clap exits
    // with code 2 on bad arguments, which `harness::cli` remaps where Maelstrom expects 254.
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let outcome = match cli.command {
        Command::Test(args) => sluicegate::harness::cli::run(args),
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
