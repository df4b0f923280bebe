//! The ingest server writing to a real NATS JetStream (`nats-server -js` on 127.0.0.1): acks only
//! after JetStream's acks, every record in the stream once, retries and a second ingest server
//! deduplicated by `Nats-Msg-Id`, a nats-server restart in the middle of a load run with exact
//! accounting, and rejections with a reason while JetStream is away.
//!
//! The server is `$SLUICEGATE_INGEST_NATS_URL` if set (`.ci/run` starts one), else a
//! `nats-server` on PATH started by the test; without either the tests print why they skip.
//! The restart tests always run their own `nats-server`.
#![cfg(feature = "nats")]

mod ingest_nats_support;
mod ingest_support;

use std::collections::HashMap;
use std::time::Duration;

use ingest_nats_support::{Nats, NatsServer, available, logs};
use ingest_support::{PATIENCE, RawStream, channel, config, ids, start};
use sluicegate::ingest::JetStreamConfig;
use sluicegate::ingest::RunningServer;
use sluicegate::ingest::load::{self, LoadConfig};
use sluicegate::ingest::proto::Reason;
use sluicegate::ingest::proto::ingest_client::IngestClient;
use sluicegate::ingest::read_stream;
use sluicegate::ingest::{ServerConfig, StoreTarget};

fn jetstream_config(dir: &tempfile::TempDir, store: &JetStreamConfig) -> ServerConfig {
    ServerConfig {
        store: StoreTarget::JetStream(store.clone()),
        ..config(dir)
    }
}

async fn serve(store: &JetStreamConfig) -> (RunningServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let server = start(jetstream_config(&dir, store)).await;
    (server, dir)
}

fn load_config(server: &RunningServer, records: usize, prefix: &str) -> LoadConfig {
    let mut config = LoadConfig::new(server.local_addr(), records);
    config.record_size = 64;
    config.batch_size = 100;
    config.id_prefix = prefix.into();
    config
}

/// How many times each id is in the stream.
async fn copies(store: &JetStreamConfig) -> HashMap<String, usize> {
    let records = tokio::time::timeout(PATIENCE, read_stream(store))
        .await
        .expect("the stream is read in time")
        .expect("the stream can be read");
    let mut copies = HashMap::new();
    for record in records {
        *copies.entry(record.id).or_default() += 1;
    }
    copies
}

fn assert_each_once(copies: &HashMap<String, usize>, prefix: &str, count: usize) {
    let twice: Vec<_> = copies.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "ids stored twice: {twice:?}");
    let missing: Vec<_> = ids(prefix, 0..count)
        .into_iter()
        .filter(|id| !copies.contains_key(id))
        .collect();
    assert!(
        missing.is_empty(),
        "{} ids missing: {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acked_record_is_in_the_stream_once_with_its_payload_and_key() {
    let Some(nats) = Nats::any("every_acked_record_is_in_the_stream_once").await else {
        return;
    };
    let store = nats.store("ACKED");
    let (server, _dir) = serve(&store).await;
    let mut client = IngestClient::new(channel(server.local_addr()).await);
    let mut stream = RawStream::open(&mut client).await;
    let sent = ids("raw", 0..10);
    stream.send_ids(&sent).await;
    let answers = stream.answers(10).await;
    assert_eq!(answers.stored, sent, "acked in order, all of them");

    let report = load::run(load_config(&server, 5_000, "load"))
        .await
        .unwrap();
    assert!(report.accounting.is_exact(), "{}", report.render());
    assert_eq!(report.accounting.stored, 5_000);

    let records = read_stream(&store).await.unwrap();
    let raw = records.iter().find(|record| record.id == "raw-3").unwrap();
    assert_eq!(raw.payload.as_ref(), b"payload of raw-3");
    assert_eq!(raw.key.as_deref(), Some("k"));
    let copies = copies(&store).await;
    assert_eq!(copies.len(), 5_010);
    assert_each_once(&copies, "load", 5_000);
    server.shutdown();
    assert!(server.wait().await.unwrap().drained);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_through_a_new_ingest_server_is_acked_and_stored_once() {
    let Some(nats) = Nats::any("a_retry_through_a_new_ingest_server").await else {
        return;
    };
    let store = nats.store("RETRY");
    let (first, _dir) = serve(&store).await;
    let report = load::run(load_config(&first, 2_000, "again"))
        .await
        .unwrap();
    assert!(report.accounting.is_exact(), "{}", report.render());
    first.shutdown();
    first.wait().await.unwrap();

    // A new ingest server knows no ids locally: JetStream's Nats-Msg-Id dedup is what catches
    // the repeats.
    let (second, _dir) = serve(&store).await;
    assert_eq!(second.recovery().records, 2_000);
    let report = load::run(load_config(&second, 2_000, "again"))
        .await
        .unwrap();
    assert!(report.accounting.is_exact(), "{}", report.render());
    assert_eq!(report.accounting.stored, 2_000);
    let stats = second.stats();
    assert_eq!(
        stats.duplicates, 2_000,
        "every record was a duplicate: {stats:?}"
    );
    let copies = copies(&store).await;
    assert_eq!(copies.len(), 2_000);
    assert_each_once(&copies, "again", 2_000);
    second.shutdown();
    second.wait().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_ingest_servers_write_one_stream_and_each_id_is_stored_once() {
    let Some(nats) = Nats::any("two_ingest_servers_write_one_stream").await else {
        return;
    };
    let store = nats.store("TWO");
    let (left, _left_dir) = serve(&store).await;
    let (right, _right_dir) = serve(&store).await;
    // The same 3 000 ids through both servers at once, as a client failing over would.
    let (a, b) = tokio::join!(
        load::run(load_config(&left, 3_000, "both")),
        load::run(load_config(&right, 3_000, "both")),
    );
    for report in [a.unwrap(), b.unwrap()] {
        assert!(report.accounting.is_exact(), "{}", report.render());
        assert_eq!(report.accounting.stored, 3_000);
    }
    let copies = copies(&store).await;
    assert_eq!(copies.len(), 3_000);
    assert_each_once(&copies, "both", 3_000);
    for server in [left, right] {
        server.shutdown();
        server.wait().await.unwrap();
    }
}

/// A load run with nats-server stopped by `signal` and started again in the middle: every record
/// is acked (the accounting is exact) and in the stream exactly once.
async fn restart_mid_load(test: &str, signal: &str) {
    if !available(test) {
        return;
    }
    logs();
    let mut nats = NatsServer::start().await;
    let mut store = nats.store("RESTART");
    store.retry_timeout = Duration::from_secs(60);
    store.ack_timeout = Duration::from_secs(1);
    let (server, _dir) = serve(&store).await;
    let records = 20_000;
    let mut config = load_config(&server, records, "restart");
    // About 4 s of load, so the restart lands in the middle.
    config.rate = 5_000.0;
    let run = tokio::spawn(load::run(config));

    // Wait until a quarter is stored, polling the counters within a bounded deadline.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while server.stats().stored < (records / 4) as u64 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no progress: {:?}",
            server.stats()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    nats.stop(signal).await;
    let stored_while_down = server.stats().stored;
    nats.restart().await;

    let report = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("the load run ends in time")
        .unwrap()
        .unwrap();
    assert!(report.accounting.is_exact(), "{}", report.render());
    assert_eq!(
        report.accounting.stored,
        records as u64,
        "{}",
        report.render()
    );
    assert!(
        stored_while_down < records as u64,
        "the restart came after the run: {stored_while_down}"
    );
    let copies = copies(&store).await;
    assert_eq!(copies.len(), records, "records in the stream");
    assert_each_once(&copies, "restart", records);
    server.shutdown();
    server.wait().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nats_server_restart_mid_load_loses_nothing_and_stores_nothing_twice() {
    restart_mid_load("a_nats_server_restart_mid_load", "TERM").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nats_server_killed_mid_load_loses_nothing_and_stores_nothing_twice() {
    restart_mid_load("a_nats_server_killed_mid_load", "KILL").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_jetstream_is_away_nothing_is_acked_and_records_are_rejected_after_the_retry_time() {
    let test = "while_jetstream_is_away_nothing_is_acked";
    if !available(test) {
        return;
    }
    let mut nats = NatsServer::start().await;
    let mut store = nats.store("AWAY");
    store.ack_timeout = Duration::from_millis(200);
    store.retry_timeout = Duration::from_millis(1_000);
    let (server, _dir) = serve(&store).await;
    let mut client = IngestClient::new(channel(server.local_addr()).await);
    nats.stop("TERM").await;

    let mut stream = RawStream::open(&mut client).await;
    let sent = ids("away", 0..20);
    stream.send_ids(&sent).await;
    let answers = stream.answers(20).await;
    assert!(
        answers.stored.is_empty(),
        "acked without JetStream: {:?}",
        answers.stored
    );
    assert_eq!(answers.rejected.len(), 20);
    for rejection in &answers.rejected {
        assert_eq!(
            rejection.reason,
            Reason::StoreFailed as i32,
            "{rejection:?}"
        );
        assert!(
            rejection.detail.contains("did not confirm"),
            "{rejection:?}"
        );
    }

    // Back again: the client's retry is stored (once, even if a publish from the outage got
    // through after the reconnect).
    nats.restart().await;
    stream.send_ids(&sent).await;
    let answers = stream.answers(20).await;
    assert_eq!(answers.stored, sent, "{:?}", answers.rejected);
    let copies = copies(&store).await;
    assert_eq!(copies.len(), 20);
    assert_each_once(&copies, "away", 20);
    stream.close();
    server.shutdown();
    server.wait().await.unwrap();
}
