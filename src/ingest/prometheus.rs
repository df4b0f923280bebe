//! Prometheus `/metrics` over HTTP, on a listener this module binds itself: the exporter crate's
//! own listener cannot say which port it bound, and `--metrics-listen 127.0.0.1:0` must be able
//! to tell the operator (and tests) where to scrape.

use std::net::SocketAddr;
use std::time::Duration;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio_util::sync::CancellationToken;

use crate::ingest::server::ServeError;

/// How often histograms are rotated (the exporter leaves that to whoever holds the handle).
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// Installs the Prometheus recorder as the process's global one and serves it at
/// `http://{addr}/metrics` until `shutdown`. Returns the address actually bound.
pub(crate) async fn serve(
    addr: SocketAddr,
    shutdown: CancellationToken,
) -> Result<SocketAddr, ServeError> {
    let bind_error = |source| ServeError::Bind { addr, source };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(bind_error)?;
    let bound = listener.local_addr().map_err(bind_error)?;
    let handle = PrometheusBuilder::new()
        .install_recorder()
        .map_err(|error| ServeError::Metrics(error.to_string()))?;
    let render = handle.clone();
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let render = render.clone();
            async move { render.render() }
        }),
    );
    tokio::spawn(upkeep(handle, shutdown.clone()));
    tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await;
        if let Err(error) = served {
            tracing::error!(%error, "the metrics endpoint stopped");
        }
    });
    tracing::info!(metrics_addr = %bound, "serving Prometheus metrics at /metrics");
    Ok(bound)
}

async fn upkeep(handle: PrometheusHandle, shutdown: CancellationToken) {
    let mut every = tokio::time::interval(UPKEEP_EVERY);
    loop {
        tokio::select! {
            _ = every.tick() => handle.run_upkeep(),
            () = shutdown.cancelled() => return,
        }
    }
}
