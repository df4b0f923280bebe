//! The ingest server over TLS, with certificates generated here: the load client's records are
//! exactly accounted for; a plaintext client and, under mutual TLS, a client without a trusted
//! certificate fail with a clear error and store nothing.
#![cfg(all(feature = "ingest", feature = "tls"))]

mod ingest_support;

use std::path::Path;

use ingest_support::pki::Pki;
use ingest_support::*;
use sluicegate::ingest::load::{self, LoadConfig};
use sluicegate::ingest::proto::ingest_client::IngestClient;
use sluicegate::ingest::{ClientTls, RunningServer};

async fn tls_server(dir: &tempfile::TempDir, pki: &Pki, mutual: bool) -> RunningServer {
    let mut config = config(dir);
    config.tls = Some(pki.server_tls(mutual));
    start(config).await
}

/// A server with TLS and the tokens `loader s3cret`.
async fn tls_token_server(dir: &tempfile::TempDir, pki: &Pki) -> RunningServer {
    let tokens = pki.path("tokens.txt");
    std::fs::write(&tokens, "# name token\nloader s3cret\n").unwrap();
    let mut config = config(dir);
    config.tls = Some(pki.server_tls(false));
    config.tokens = Some(tokens);
    start(config).await
}

fn tls_load(server: &RunningServer, records: usize, tls: ClientTls) -> LoadConfig {
    let mut config = LoadConfig::new(server.local_addr(), records);
    config.batch_size = 100;
    config.concurrency = 2;
    config.retries = 0;
    config.tls = Some(tls);
    config
}

async fn stop(server: RunningServer, dir: &Path) -> Vec<String> {
    server.shutdown();
    assert!(server.wait().await.unwrap().drained);
    stored_ids(dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_sent_over_tls_with_a_token_are_stored_and_acked_exactly_once() {
    let (dir, pki) = (tempfile::tempdir().unwrap(), Pki::new());
    let server = tls_token_server(&dir, &pki).await;
    let mut load_config = tls_load(&server, 2000, pki.client_tls(None));
    load_config.token = Some("s3cret".into());
    let report = tokio::time::timeout(PATIENCE, load::run(load_config))
        .await
        .expect("the load ends in time")
        .unwrap();
    assert!(report.accounting.is_exact(), "{}", report.render());
    assert_eq!(report.accounting.stored, 2000);
    let stored = stop(server, dir.path()).await;
    assert_eq!(stored.len(), 2000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plaintext_client_against_the_tls_port_fails_and_stores_nothing() {
    let (dir, pki) = (tempfile::tempdir().unwrap(), Pki::new());
    let server = tls_server(&dir, &pki, false).await;
    let attempt = async {
        let channel =
            tonic::transport::Endpoint::from_shared(format!("http://{}", server.local_addr()))
                .unwrap()
                .connect()
                .await?;
        let (_tx, rx) = tokio::sync::mpsc::channel(1);
        IngestClient::new(channel)
            .ingest(tokio_stream::wrappers::ReceiverStream::new(rx))
            .await
            .map(drop)
            .map_err(|status| Box::new(status) as Box<dyn std::error::Error + Send + Sync>)?;
        Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
    };
    let failed = tokio::time::timeout(PATIENCE, attempt)
        .await
        .expect("the attempt ends in time");
    assert!(failed.is_err(), "a plaintext call to a TLS port must fail");
    assert!(stop(server, dir.path()).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_mutual_tls_only_a_client_with_a_trusted_certificate_stores() {
    let (dir, pki) = (tempfile::tempdir().unwrap(), Pki::new());
    let server = tls_server(&dir, &pki, true).await;
    let trusted = pki.leaf("client", &["client"]);
    let untrusted = pki.untrusted("intruder");
    for (who, identity) in [
        ("no certificate", None),
        ("an untrusted certificate", Some(untrusted)),
    ] {
        let mut config = tls_load(&server, 10, pki.client_tls(identity));
        config.id_prefix = "refused".into();
        let report = tokio::time::timeout(PATIENCE, load::run(config))
            .await
            .expect("the load ends in time")
            .unwrap();
        assert_eq!(report.accounting.stored, 0, "{who}: {}", report.render());
        assert_eq!(
            report.accounting.unaccounted,
            10,
            "{who}: {}",
            report.render()
        );
    }
    let report = tokio::time::timeout(
        PATIENCE,
        load::run(tls_load(&server, 10, pki.client_tls(Some(trusted)))),
    )
    .await
    .expect("the load ends in time")
    .unwrap();
    assert!(report.accounting.is_exact(), "{}", report.render());
    assert_eq!(report.accounting.stored, 10);
    let stored = stop(server, dir.path()).await;
    assert!(
        stored.iter().all(|id| !id.starts_with("refused")),
        "{stored:?}"
    );
    assert_eq!(stored.len(), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_or_wrong_token_is_unauthenticated_and_stores_nothing_while_health_stays_open() {
    let (dir, pki) = (tempfile::tempdir().unwrap(), Pki::new());
    let server = tls_token_server(&dir, &pki).await;
    let endpoint =
        tonic::transport::Endpoint::from_shared(format!("https://{}", server.local_addr()))
            .unwrap()
            .tls_config(
                tonic::transport::ClientTlsConfig::new()
                    .ca_certificate(tonic::transport::Certificate::from_pem(
                        std::fs::read(pki.path("ca.pem")).unwrap(),
                    ))
                    .domain_name("localhost"),
            )
            .unwrap();
    let channel = endpoint.connect().await.unwrap();
    for token in [None, Some("Bearer wrong"), Some("s3cret")] {
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        tx.send(sluicegate::ingest::proto::IngestRequest {
            records: vec![record("sneaky")],
        })
        .await
        .unwrap();
        let mut request = tonic::Request::new(tokio_stream::wrappers::ReceiverStream::new(rx));
        if let Some(token) = token {
            request
                .metadata_mut()
                .insert("authorization", token.parse().unwrap());
        }
        let call =
            tokio::time::timeout(PATIENCE, IngestClient::new(channel.clone()).ingest(request))
                .await
                .expect("an answer in time");
        let status = call
            .err()
            .unwrap_or_else(|| panic!("{token:?} must be refused"));
        assert_eq!(
            status.code(),
            tonic::Code::Unauthenticated,
            "{token:?}: {status:?}"
        );
        assert!(!status.message().contains("s3cret"));
    }
    let health = tonic_health::pb::health_client::HealthClient::new(channel)
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .expect("health needs no token");
    assert_eq!(
        health.into_inner().status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
    assert!(stop(server, dir.path()).await.is_empty(), "nothing stored");
}

/// Connection exhaustion: raw TCP connections that never handshake fill the connection limit;
/// the handshake timeout frees their places, and a well-behaved client is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_connections_at_the_limit_are_cut_by_the_handshake_timeout_and_a_client_is_served() {
    let (dir, pki) = (tempfile::tempdir().unwrap(), Pki::new());
    let mut config = config(&dir);
    config.tls = Some(pki.server_tls(false));
    config.max_connections = 4;
    config.tls_handshake_timeout = std::time::Duration::from_millis(300);
    let server = start(config).await;
    let mut silent = Vec::new();
    for _ in 0..8 {
        silent.push(
            tokio::net::TcpStream::connect(server.local_addr())
                .await
                .unwrap(),
        );
    }
    let report = tokio::time::timeout(
        PATIENCE,
        load::run(tls_load(&server, 100, pki.client_tls(None))),
    )
    .await
    .expect("the client is served in time")
    .unwrap();
    assert!(report.accounting.is_exact(), "{}", report.render());
    let stats = server.stats();
    assert!(
        stats.connection_limit_waits > 0,
        "the limit was reached: {stats:?}"
    );
    drop(silent);
    assert_eq!(stop(server, dir.path()).await.len(), 100);
}
