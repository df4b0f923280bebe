//! `sluicegate serve`: browse the store (`maelstrom serve`'s counterpart).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

/// Flags of `sluicegate serve`.
#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// The store `sluicegate test` wrote its runs to.
    #[arg(long, default_value = "store")]
    store: PathBuf,
    /// Address to listen on; loopback by default, since the store holds node logs.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
}

/// Serves until interrupted.
pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("listening on {}", args.listen))?;
        let address = listener.local_addr().context("reading the bound address")?;
        // The one line a script (or the browser test) reads to find the port of `:0`.
        println!("serving {} on http://{address}/", args.store.display());
        tracing::info!(store = %args.store.display(), %address, "serving the store");
        sluicegate::harness::serve_store(&args.store, listener)
            .await
            .with_context(|| format!("serving {}", args.store.display()))
    })?;
    Ok(ExitCode::SUCCESS)
}
