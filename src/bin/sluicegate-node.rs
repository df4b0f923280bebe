//! The Maelstrom node binary: run it as `maelstrom test -w broadcast --bin sluicegate-node ...`.
//!
//! Maelstrom starts it with no arguments, so every setting comes from the environment (listed by
//! `--help`, read by [`NodeConfig::from_env`]); logs go to stderr (`SLUICEGATE_LOG`, default
//! `info`), coloured only when stderr is a terminal.

use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use sluicegate::node::{NodeConfig, run_node};
use tracing_subscriber::EnvFilter;

/// A Maelstrom node (Gossip Glomers echo, unique ids, broadcast, g-counter, kafka) on
/// sluicegate's pipeline.
///
/// Reads Maelstrom's JSON lines on stdin and answers on stdout; takes no arguments. Settings come
/// from the environment variables below.
#[derive(Parser)]
#[command(name = "sluicegate-node", version, after_help = environment_help())]
struct Args {}

fn environment_help() -> String {
    let mut help = String::from("Environment:\n");
    let width = NodeConfig::VARIABLES
        .iter()
        .map(|(name, _)| name.len())
        .max()
        .unwrap_or(0);
    for (name, what) in NodeConfig::VARIABLES {
        help.push_str(&format!("  {name:width$}  {what}\n"));
    }
    help.push_str(&format!(
        "  {:width$}  log filter for stderr (info)\n",
        "SLUICEGATE_LOG"
    ));
    help
}

fn main() -> ExitCode {
    Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            EnvFilter::try_from_env("SLUICEGATE_LOG").unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    let config = NodeConfig::from_env()?;
    // One thread: a node's work is tiny and 25 of them share the machine with the harness.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let report = runtime.block_on(run_node(
        tokio::io::BufReader::new(tokio::io::stdin()),
        tokio::io::stdout(),
        config,
    ))?;
    tracing::info!(?report, "input ended");
    Ok(())
}
