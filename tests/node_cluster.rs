//! Several nodes wired together in-process (100 ms per node-to-node message, links that can be
//! cut), on tokio's paused clock: values spread, partitions lose nothing, quiet means silent.
#![cfg(feature = "node")]

mod node_support;

use std::time::Duration;

use node_support::Cluster;
use sluicegate::node::{NodeConfig, Profile};
use tokio::time::sleep;

const HOP: Duration = Duration::from_millis(100);

fn config(profile: Profile) -> NodeConfig {
    NodeConfig::for_profile(profile)
}

async fn reads_of_every_node(cluster: &mut Cluster) -> Vec<Vec<i64>> {
    let mut reads = Vec::new();
    for id in cluster.ids() {
        reads.push(cluster.read(&id).await);
    }
    reads
}

#[tokio::test(start_paused = true)]
async fn the_efficient_star_reaches_every_node_within_two_hops_and_one_linger() {
    let config = config(Profile::Efficient);
    let deadline = 2 * HOP + config.linger;
    let mut cluster = Cluster::start(5, config, HOP).await;
    cluster.broadcast("n3", 30).await;
    cluster.broadcast("n0", 0).await;
    sleep(deadline).await;
    assert_eq!(
        reads_of_every_node(&mut cluster).await,
        vec![vec![0, 30]; 5]
    );
}

#[tokio::test(start_paused = true)]
async fn a_fast_node_reaches_every_node_in_one_hop_after_its_linger() {
    let config = config(Profile::Fast);
    let deadline = HOP + config.linger;
    let mut cluster = Cluster::start(5, config, HOP).await;
    cluster.broadcast("n2", 7).await;
    sleep(deadline).await;
    assert_eq!(reads_of_every_node(&mut cluster).await, vec![vec![7]; 5]);
}

#[tokio::test(start_paused = true)]
async fn one_value_through_the_star_costs_one_message_per_link_and_one_ack_per_link() {
    let mut cluster = Cluster::start(5, config(Profile::Efficient), HOP).await;
    cluster.broadcast("n3", 1).await;
    sleep(Duration::from_secs(60)).await;
    // n3 -> hub; hub -> n1, n2, n4 (not back to n3); then every receiver's bare ack after the
    // ack delay, since nothing else went back: hub -> n3, and n1, n2, n4 -> hub.
    assert_eq!(cluster.sent_and_dropped(), (1 + 3 + 4, 0));
    assert_eq!(reads_of_every_node(&mut cluster).await, vec![vec![1]; 5]);
}

#[tokio::test(start_paused = true)]
async fn a_quiet_cluster_sends_nothing() {
    for profile in [Profile::Efficient, Profile::Fast] {
        let mut cluster = Cluster::start(5, config(profile), HOP).await;
        for (index, id) in cluster.ids().iter().enumerate() {
            cluster.broadcast(id, index as i64).await;
        }
        sleep(Duration::from_secs(30)).await;
        let settled = cluster.sent_and_dropped();
        sleep(Duration::from_secs(60)).await;
        assert_eq!(cluster.sent_and_dropped(), settled, "{profile:?}");
    }
}

async fn partition_then_heal(profile: Profile, isolated: &[&str]) {
    let config = config(profile);
    let recovery = config.retry_after + 2 * HOP + config.linger + Duration::from_millis(10);
    let mut cluster = Cluster::start(5, config, HOP).await;
    cluster.partition(isolated);
    let mut acknowledged = Vec::new();
    for (index, id) in cluster.ids().iter().enumerate() {
        let value = 100 + index as i64;
        cluster.broadcast(id, value).await;
        acknowledged.push(value);
    }
    sleep(Duration::from_secs(10)).await;
    let (_, dropped) = cluster.sent_and_dropped();
    assert!(dropped > 0, "{profile:?}: the partition dropped messages");
    let during = cluster.read(isolated[0]).await;
    assert!(during.len() < acknowledged.len(), "{profile:?}: {during:?}");

    cluster.heal();
    sleep(recovery).await;
    assert_eq!(
        reads_of_every_node(&mut cluster).await,
        vec![acknowledged; 5],
        "{profile:?}: every acknowledged value everywhere, within one retry of the heal"
    );
    // And once everything is acknowledged, silence again.
    sleep(Duration::from_secs(30)).await;
    let settled = cluster.sent_and_dropped();
    sleep(Duration::from_secs(60)).await;
    assert_eq!(cluster.sent_and_dropped(), settled, "{profile:?}");
}

#[tokio::test(start_paused = true)]
async fn an_isolated_hub_loses_nothing_once_the_partition_heals() {
    partition_then_heal(Profile::Efficient, &["n0"]).await;
}

#[tokio::test(start_paused = true)]
async fn an_isolated_minority_of_leaves_loses_nothing_once_the_partition_heals() {
    partition_then_heal(Profile::Efficient, &["n3", "n4"]).await;
}

#[tokio::test(start_paused = true)]
async fn a_fast_cluster_split_in_two_loses_nothing_once_the_partition_heals() {
    partition_then_heal(Profile::Fast, &["n1", "n2"]).await;
}

#[tokio::test(start_paused = true)]
async fn acks_lost_in_a_one_way_cut_are_repaired_by_retries() {
    // n2 hears the hub but the hub does not hear n2: n2's values and acks vanish meanwhile.
    let mut cluster = Cluster::start(3, config(Profile::Efficient), HOP).await;
    cluster.cut_one_way("n2", "n0");
    cluster.broadcast("n0", 1).await;
    cluster.broadcast("n2", 2).await;
    sleep(Duration::from_secs(10)).await;
    assert_eq!(cluster.read("n2").await, vec![1, 2]);
    assert_eq!(cluster.read("n1").await, vec![1]);
    cluster.heal();
    sleep(Duration::from_secs(5)).await;
    assert_eq!(reads_of_every_node(&mut cluster).await, vec![vec![1, 2]; 3]);
    sleep(Duration::from_secs(30)).await;
    let settled = cluster.sent_and_dropped();
    sleep(Duration::from_secs(60)).await;
    assert_eq!(cluster.sent_and_dropped(), settled);
}

#[tokio::test(start_paused = true)]
async fn fast_acks_owed_at_the_end_of_a_burst_are_passed_on_by_the_hub() {
    for (via_hub, acks) in [(false, 20), (true, 8)] {
        let config = NodeConfig {
            ack_via_hub: via_hub,
            ..config(Profile::Fast)
        };
        let mut cluster = Cluster::start(5, config, HOP).await;
        for (index, id) in cluster.ids().iter().enumerate() {
            cluster.broadcast(id, index as i64).await;
        }
        sleep(Duration::from_secs(60)).await;
        // 5 nodes x 4 peers carry the values. Nothing goes back in time to carry the acks:
        // directly that is one bare ack per link (20); via the hub, one digest from each of
        // the 4 other nodes and one message from the hub to each of them (8). No retries.
        assert_eq!(
            cluster.sent_and_dropped(),
            (20 + acks, 0),
            "via hub: {via_hub}"
        );
        assert_eq!(
            reads_of_every_node(&mut cluster).await,
            vec![vec![0, 1, 2, 3, 4]; 5]
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_fast_cluster_whose_ack_hub_is_cut_off_loses_nothing_once_the_partition_heals() {
    partition_then_heal(Profile::Fast, &["n0"]).await;
}
