//! The Maelstrom node binary: run it as `maelstrom test -w broadcast --bin sluicegate-node ...`.
//!
//! No arguments: settings come from the environment (`SLUICEGATE_PROFILE=efficient|fast` and the
//! knobs of [`NodeConfig::from_lookup`]); logs go to stderr (`SLUICEGATE_LOG`, default `info`).

use std::process::ExitCode;

use anyhow::Context;
use sluicegate::node::{NodeConfig, run_node};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
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
