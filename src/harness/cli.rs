//! (placeholder)
/// Flags of `sluicegate test`.
#[derive(clap::Args)]
pub struct TestArgs {}
/// Runs `sluicegate test`.
pub fn run(_args: TestArgs) -> anyhow::Result<std::process::ExitCode> {
    anyhow::bail!("not built yet")
}
