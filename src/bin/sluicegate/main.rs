//! The `sluicegate` command line: the Maelstrom-compatible harness (`test`) and the gRPC ingest
//! server and load client (`ingest ...`). Thin by design: parse flags, set up logging on stderr,
//! hand over to the library.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

mod ingest;
mod logfiles;
#[cfg(feature = "serve")]
mod serve;
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
    /// Browse the store: an index of every run and each run's results, diagram, timeline and logs.
    #[cfg(feature = "serve")]
    Serve(serve::ServeArgs),
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
            init_logging(args.echoes_node_logs());
            test::run_test(args)
        }
        #[cfg(feature = "serve")]
        Command::Serve(args) => {
            init_logging(false);
            serve::run(args)
        }
        Command::Ingest(command) => {
            init_logging(false);
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
/// colour only when stderr is a terminal: a log file gets no escape codes. Events of a run also
/// go to its `harness.log`, and an in-process node's to its `node-logs/<node>.log`
/// ([`logfiles::RunFiles`]); on stderr, a node's events show only with `echo_node_logs`
/// (`--log-stderr`), as a process node's stderr does.
fn init_logging(echo_node_logs: bool) {
    use tracing_subscriber::filter::{FilterExt, dynamic_filter_fn};
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::{EnvFilter, Layer};

    let env_filter =
        || EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let not_a_node = dynamic_filter_fn(move |metadata, context| {
        echo_node_logs
            || metadata.is_span()
            || context
                .lookup_current()
                .is_none_or(|span| span.scope().all(|span| span.name() != "node"))
    });
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_filter(env_filter().and(not_a_node));
    tracing_subscriber::registry()
        .with(stderr)
        .with(logfiles::RunFiles::new().with_filter(env_filter()))
        .init();
}
