//! The JetStream store on a three-server cluster (`nats-server -js` x3 clustered on loopback), a
//! stream with `replicas=3` created by the ingest server from its `--store nats://...` spec, and
//! the stream leader killed with SIGKILL in the middle of a load: the load completes once a new
//! leader is elected, every acked id is in the stream exactly once, nothing acked is lost, and
//! the killed server, restarted, catches up. Skips (saying so) without `nats-server` on PATH;
//! `.ci/nats-cluster.sh` installs it. The recipe is in docs/jetstream-cluster.md.
#![cfg(feature = "nats")]

mod ingest_nats_cluster_support;
mod ingest_support;

use std::collections::HashMap;
use std::time::Duration;

use ingest_nats_cluster_support::{NatsCluster, PATIENCE, available};
use ingest_support::{config, ids, start};
use sluicegate::ingest::load::{self, LoadConfig};
use sluicegate::ingest::{JetStreamConfig, ServerConfig, StoreTarget, read_stream};

const STREAM: &str = "FAILOVER";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_stream_leader_mid_load_loses_nothing_acked_and_the_killed_server_catches_up() {
    if !available("killing_the_stream_leader_mid_load") {
        return;
    }
    let mut cluster = NatsCluster::start().await;
    let spec = format!(
        "{}?stream={STREAM}&replicas=3&ack_timeout_ms=1000&retry_timeout_ms=60000",
        cluster.urls()
    );
    let store = JetStreamConfig::parse(&spec).expect("a valid --store spec");
    assert_eq!(store.replicas, 3);
    let dir = tempfile::tempdir().unwrap();
    let server = start(ServerConfig {
        store: StoreTarget::JetStream(store.clone()),
        ..config(&dir)
    })
    .await;
    let before = cluster
        .wait_for(STREAM, "the stream has three current replicas", |state| {
            state.replicas.len() == 2 && state.replicas.iter().all(|r| r.current && !r.offline)
        })
        .await;

    let records = 20_000;
    let mut load = LoadConfig::new(server.local_addr(), records);
    load.record_size = 64;
    load.batch_size = 100;
    load.id_prefix = "failover".into();
    // About 4 s of load, so that the kill lands in the middle.
    load.rate = 5_000.0;
    let run = tokio::spawn(load::run(load));

    // Kill the leader once a quarter is stored (polling the counters, bounded).
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while server.stats().stored < (records / 4) as u64 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no progress: {:?}",
            server.stats()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let killed = cluster.index_of(&before.leader);
    cluster.kill(killed).await;
    let stored_at_kill = server.stats().stored;
    let after = cluster
        .wait_for(STREAM, "a new leader is elected", |state| {
            state.leader != before.leader
        })
        .await;
    eprintln!(
        "killed leader {} after {stored_at_kill} stored; new leader {}",
        before.leader, after.leader
    );

    let report = tokio::time::timeout(Duration::from_secs(180), run)
        .await
        .expect("the load run ends in time")
        .unwrap()
        .unwrap();
    assert!(report.accounting.is_exact(), "{}", report.render());
    assert_eq!(
        report.accounting.stored,
        records as u64,
        "every record acked: {}",
        report.render()
    );
    assert!(
        stored_at_kill < records as u64,
        "the kill came after the run: {stored_at_kill}"
    );

    let read = JetStreamConfig::new(cluster.urls(), STREAM);
    let stream = tokio::time::timeout(PATIENCE, read_stream(&read))
        .await
        .expect("the stream is read in time")
        .expect("the stream can be read");
    let mut copies: HashMap<String, usize> = HashMap::new();
    for record in stream {
        *copies.entry(record.id).or_default() += 1;
    }
    let twice: Vec<_> = copies.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "ids stored twice: {twice:?}");
    let missing: Vec<_> = ids("failover", 0..records)
        .into_iter()
        .filter(|id| !copies.contains_key(id))
        .collect();
    assert!(
        missing.is_empty(),
        "{} acked ids missing: {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    assert_eq!(copies.len(), records, "nothing else in the stream");

    cluster.restart(killed);
    let killed_name = before.leader.clone();
    let caught_up = cluster
        .wait_for(STREAM, "the restarted server catches up", |state| {
            state.messages == records as u64
                && state.replicas.len() == 2
                && state
                    .replicas
                    .iter()
                    .all(|r| r.current && !r.offline && r.lag == 0)
                && (state.leader == killed_name
                    || state.replicas.iter().any(|r| r.name == killed_name))
        })
        .await;
    eprintln!("after the restart: {caught_up:?}");
    server.shutdown();
    server.wait().await.unwrap();
}
