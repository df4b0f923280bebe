//! (placeholder)
/// `sluicegate ingest` subcommands.
#[derive(clap::Subcommand)]
pub enum IngestCommand {}
/// Runs an ingest subcommand.
pub fn run(_command: IngestCommand) -> anyhow::Result<std::process::ExitCode> {
    anyhow::bail!("not built yet")
}
