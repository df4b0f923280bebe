//! Who sends to whom: the gossip shape of a profile, decided once at `init`.
//!
//! The topology Maelstrom suggests is ignored: with 100 ms per hop, its grid costs both hops and
//! messages. Instead:
//!
//! - efficient: a star. Leaves send their clients' values to the hub; the hub relays every new
//!   value to every other node, except back to the node it came from.
//! - fast: every node sends its clients' values to every other node; nobody relays.

use std::time::Duration;

use super::config::{NodeConfig, Profile};

/// What one node does with values, given its place in the shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// The peers this node sends gossip to, in `node_ids` order.
    pub targets: Vec<String>,
    /// Whether values learnt from peers are passed on (only the hub does).
    pub relays_peer_values: bool,
    /// The linger of this node's gossip batches.
    pub linger: Duration,
    /// The hub: the star's centre, and in every profile the node that passes acks on.
    pub hub: Option<String>,
}

impl Plan {
    /// The plan of node `me` among `node_ids`.
    pub fn new(config: &NodeConfig, me: &str, node_ids: &[String]) -> Self {
        let others = || {
            node_ids
                .iter()
                .filter(|id| id.as_str() != me)
                .cloned()
                .collect::<Vec<_>>()
        };
        let hub = hub(config, node_ids);
        let owned_hub = hub.map(str::to_owned);
        match config.profile {
            Profile::Fast => Plan {
                targets: others(),
                relays_peer_values: false,
                linger: config.linger,
                hub: owned_hub,
            },
            Profile::Efficient if hub.is_none_or(|hub| hub == me) => Plan {
                targets: others(),
                relays_peer_values: true,
                linger: config.linger,
                hub: owned_hub,
            },
            Profile::Efficient => Plan {
                targets: owned_hub.iter().cloned().collect(),
                relays_peer_values: false,
                linger: config.forward_linger,
                hub: owned_hub,
            },
        }
    }
}

/// The configured hub if it is one of the nodes, else the first node.
fn hub<'a>(config: &'a NodeConfig, node_ids: &'a [String]) -> Option<&'a str> {
    match &config.hub {
        Some(hub) if node_ids.contains(hub) => Some(hub.as_str()),
        Some(hub) => {
            tracing::warn!(
                hub,
                "SLUICEGATE_HUB is not among node_ids; using the first node"
            );
            node_ids.first().map(String::as_str)
        }
        None => node_ids.first().map(String::as_str),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(count: usize) -> Vec<String> {
        (0..count).map(|index| format!("n{index}")).collect()
    }

    #[test]
    fn the_efficient_hub_relays_to_everyone_else_and_leaves_send_only_to_it() {
        let config = NodeConfig::for_profile(Profile::Efficient);
        let hub = Plan::new(&config, "n0", &ids(4));
        assert_eq!(hub.targets, ["n1", "n2", "n3"]);
        assert!(hub.relays_peer_values);
        assert_eq!(hub.linger, config.linger);
        let leaf = Plan::new(&config, "n2", &ids(4));
        assert_eq!(leaf.targets, ["n0"]);
        assert!(!leaf.relays_peer_values);
        assert_eq!(leaf.linger, config.forward_linger);
    }

    #[test]
    fn a_configured_hub_is_used_when_it_exists() {
        let config = NodeConfig {
            hub: Some("n2".into()),
            ..NodeConfig::for_profile(Profile::Efficient)
        };
        assert_eq!(Plan::new(&config, "n0", &ids(3)).targets, ["n2"]);
        assert_eq!(Plan::new(&config, "n2", &ids(3)).targets, ["n0", "n1"]);
    }

    #[test]
    fn fast_nodes_send_to_all_others_and_relay_nothing() {
        let config = NodeConfig::for_profile(Profile::Fast);
        let plan = Plan::new(&config, "n1", &ids(3));
        assert_eq!(plan.targets, ["n0", "n2"]);
        assert!(!plan.relays_peer_values);
    }

    #[test]
    fn a_single_node_has_nobody_to_tell() {
        for profile in [Profile::Efficient, Profile::Fast] {
            let plan = Plan::new(&NodeConfig::for_profile(profile), "n0", &ids(1));
            assert!(plan.targets.is_empty());
        }
    }
}
