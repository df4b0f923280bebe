//! The node's settings: a profile with good defaults, each knob overridable by an environment
//! variable (Maelstrom runs `--bin` with no arguments).

use std::str::FromStr;
use std::time::Duration;

use thiserror::Error;

/// Which gossip shape the node uses. Both send nothing when there is nothing new.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Profile {
    /// Few messages: a star. Leaves forward their clients' new values to the hub at once; the hub
    /// alone batches (linger about 300 ms) and sends each batch to every other node, except a
    /// value's origin. Two hops plus one linger: about 500 ms worst case at 100 ms per hop.
    #[default]
    Efficient,
    /// Low latency: every node sends its clients' new values straight to every other node after
    /// a short linger. One hop: about 100 ms plus the linger.
    Fast,
}

impl FromStr for Profile {
    type Err = ConfigError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().as_str() {
            "efficient" => Ok(Profile::Efficient),
            "fast" => Ok(Profile::Fast),
            _ => Err(ConfigError::Profile(text.to_owned())),
        }
    }
}

/// A setting from the environment that could not be used.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ConfigError {
    /// `SLUICEGATE_PROFILE` is neither `efficient` nor `fast`.
    #[error("SLUICEGATE_PROFILE must be 'efficient' or 'fast', not {0:?}")]
    Profile(String),
    /// A variable did not parse, or is out of range.
    #[error("{name} must be {expected}, not {value:?}")]
    Number {
        /// The variable's name.
        name: &'static str,
        /// What it must be.
        expected: &'static str,
        /// What it was.
        value: String,
    },
}

/// Everything a node needs to know before `init`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeConfig {
    /// The gossip shape (`SLUICEGATE_PROFILE`).
    pub profile: Profile,
    /// The hub of the efficient star (`SLUICEGATE_HUB`); `None` picks the first id of `init`'s
    /// `node_ids` (n0, which also gets twice the client traffic of the others).
    pub hub: Option<String>,
    /// Linger of the batches a node sends to many peers: the hub's in the efficient profile,
    /// every node's in the fast one (`SLUICEGATE_LINGER_MS`).
    pub linger: Duration,
    /// Linger of a leaf's batches to the hub in the efficient profile
    /// (`SLUICEGATE_FORWARD_LINGER_MS`). Waiting here costs latency and saves little: a leaf
    /// rarely has two new values within a few milliseconds.
    pub forward_linger: Duration,
    /// Most values in one gossip message (`SLUICEGATE_BATCH_MAX`).
    pub batch_max: usize,
    /// How long unacknowledged gossip waits before it is sent again (`SLUICEGATE_RETRY_MS`).
    /// Longer than `ack_delay` plus a round trip, so that a healthy link never retries.
    pub retry_after: Duration,
    /// How long a receiver waits for an outgoing message to carry its acknowledgement before it
    /// sends one on its own (`SLUICEGATE_ACK_DELAY_MS`).
    pub ack_delay: Duration,
    /// Whether acks that no outgoing message carried are gathered and passed on by the hub
    /// (`SLUICEGATE_ACK_VIA_HUB`, `true`/`false`): about 2N messages instead of N² when every
    /// node talks to every other one. See `node/acks.rs`.
    pub ack_via_hub: bool,
    /// How long the ack collector and the hub's relay each gather (`SLUICEGATE_ACK_GATHER_MS`).
    pub ack_gather: Duration,
    /// Batches queued per peer link before the fan-out waits (`Block`: nothing is dropped)
    /// (`SLUICEGATE_PEER_CAPACITY`).
    pub peer_capacity: usize,
    /// Messages queued for stdout before producers wait (`Block`: nothing is dropped)
    /// (`SLUICEGATE_OUTPUT_CAPACITY`).
    pub output_capacity: usize,
    /// Distinct values the gossip dedup remembers; beyond it the oldest is forgotten (counted)
    /// (`SLUICEGATE_DEDUP_WINDOW`).
    pub dedup_window: usize,
    /// Messages kept while waiting for `init`; beyond it they are refused with error 11
    /// (counted) (`SLUICEGATE_PRE_INIT_LIMIT`).
    pub pre_init_limit: usize,
    /// The per-process part of generated unique ids; `None` draws a random one at start
    /// (`SLUICEGATE_ID_EPOCH`).
    pub id_epoch: Option<u64>,
    /// Longest input line kept, in bytes (`SLUICEGATE_MAX_LINE_BYTES`); a longer one is skipped
    /// as it arrives, never held whole (logged and counted).
    pub max_line_bytes: usize,
}

impl NodeConfig {
    /// Every environment variable [`from_env`](Self::from_env) reads, with what it sets: the
    /// node binary's `--help` prints this list.
    pub const VARIABLES: &[(&str, &str)] = &[
        (
            "SLUICEGATE_PROFILE",
            "efficient (few messages, default) or fast (low latency)",
        ),
        (
            "SLUICEGATE_HUB",
            "hub of the efficient star (default: first id of init's node_ids)",
        ),
        (
            "SLUICEGATE_LINGER_MS",
            "linger of batches to many peers (efficient 350, fast 20)",
        ),
        (
            "SLUICEGATE_FORWARD_LINGER_MS",
            "linger of a leaf's batches to the hub (0)",
        ),
        (
            "SLUICEGATE_BATCH_MAX",
            "most values in one gossip message (1024)",
        ),
        (
            "SLUICEGATE_RETRY_MS",
            "wait before unacknowledged gossip is resent (3000 / 6000)",
        ),
        (
            "SLUICEGATE_ACK_DELAY_MS",
            "wait for a message to carry an ack (2000 / 3000)",
        ),
        (
            "SLUICEGATE_ACK_VIA_HUB",
            "gather lone acks at the hub: true/false (false / true)",
        ),
        (
            "SLUICEGATE_ACK_GATHER_MS",
            "how long ack collectors gather (1000)",
        ),
        (
            "SLUICEGATE_PEER_CAPACITY",
            "batches queued per peer link before waiting (1024)",
        ),
        (
            "SLUICEGATE_OUTPUT_CAPACITY",
            "messages queued for stdout before waiting (4096)",
        ),
        (
            "SLUICEGATE_DEDUP_WINDOW",
            "distinct values the gossip dedup remembers (1048576)",
        ),
        (
            "SLUICEGATE_PRE_INIT_LIMIT",
            "messages kept before init; more get error 11 (65536)",
        ),
        (
            "SLUICEGATE_ID_EPOCH",
            "per-process part of unique ids (default: random)",
        ),
        (
            "SLUICEGATE_MAX_LINE_BYTES",
            "longest input line kept; longer ones are skipped (1048576)",
        ),
    ];

    /// The defaults of a profile.
    pub fn for_profile(profile: Profile) -> Self {
        // Efficient: the hub's linger sets the worst case, about linger + 100 ms at 100 ms per
        // hop (a read that reaches a leaf while a hub batch is in flight waits behind it).
        // Fast: a node rarely gets two broadcasts within a few ms, so the linger mostly costs
        // latency; it is kept short. Its acks go via the hub, so its retries wait longer.
        let (linger, retry_after, ack_delay, ack_via_hub) = match profile {
            Profile::Efficient => (
                Duration::from_millis(350),
                Duration::from_millis(3000),
                Duration::from_millis(2000),
                false,
            ),
            Profile::Fast => (
                Duration::from_millis(20),
                Duration::from_millis(6000),
                Duration::from_millis(3000),
                true,
            ),
        };
        NodeConfig {
            profile,
            hub: None,
            linger,
            forward_linger: Duration::ZERO,
            batch_max: 1024,
            retry_after,
            ack_delay,
            ack_via_hub,
            ack_gather: Duration::from_millis(1000),
            peer_capacity: 1024,
            output_capacity: 4096,
            dedup_window: 1 << 20,
            pre_init_limit: 65_536,
            id_epoch: None,
            max_line_bytes: 1 << 20,
        }
    }

    /// Reads the settings from the process environment. See [`from_lookup`](Self::from_lookup).
    ///
    /// # Errors
    ///
    /// Returns a [`ConfigError`] naming the first variable that cannot be used.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the settings through `lookup` (a variable's value, or `None` when unset): the
    /// profile first, then every knob that is set overrides that profile's default.
    ///
    /// # Errors
    ///
    /// Returns a [`ConfigError`] naming the first variable that cannot be used.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let profile = match lookup("SLUICEGATE_PROFILE") {
            Some(text) if !text.trim().is_empty() => text.parse()?,
            _ => Profile::default(),
        };
        let mut config = NodeConfig::for_profile(profile);
        if let Some(hub) = lookup("SLUICEGATE_HUB").filter(|hub| !hub.trim().is_empty()) {
            config.hub = Some(hub.trim().to_owned());
        }
        let millis = |name: &'static str, value: &mut Duration| -> Result<(), ConfigError> {
            if let Some(text) = lookup(name) {
                *value = Duration::from_millis(parse_number(name, &text, 0)?);
            }
            Ok(())
        };
        millis("SLUICEGATE_LINGER_MS", &mut config.linger)?;
        millis("SLUICEGATE_FORWARD_LINGER_MS", &mut config.forward_linger)?;
        millis("SLUICEGATE_RETRY_MS", &mut config.retry_after)?;
        millis("SLUICEGATE_ACK_DELAY_MS", &mut config.ack_delay)?;
        millis("SLUICEGATE_ACK_GATHER_MS", &mut config.ack_gather)?;
        if let Some(text) = lookup("SLUICEGATE_ACK_VIA_HUB") {
            config.ack_via_hub = match text.trim().to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "on" => true,
                "0" | "false" | "no" | "off" => false,
                _ => {
                    return Err(ConfigError::Number {
                        name: "SLUICEGATE_ACK_VIA_HUB",
                        expected: "true or false",
                        value: text,
                    });
                }
            };
        }
        let count = |name: &'static str, value: &mut usize| -> Result<(), ConfigError> {
            if let Some(text) = lookup(name) {
                *value = usize::try_from(parse_number(name, &text, 1)?).unwrap_or(usize::MAX);
            }
            Ok(())
        };
        count("SLUICEGATE_BATCH_MAX", &mut config.batch_max)?;
        count("SLUICEGATE_PEER_CAPACITY", &mut config.peer_capacity)?;
        count("SLUICEGATE_OUTPUT_CAPACITY", &mut config.output_capacity)?;
        count("SLUICEGATE_DEDUP_WINDOW", &mut config.dedup_window)?;
        count("SLUICEGATE_PRE_INIT_LIMIT", &mut config.pre_init_limit)?;
        count("SLUICEGATE_MAX_LINE_BYTES", &mut config.max_line_bytes)?;
        if let Some(text) = lookup("SLUICEGATE_ID_EPOCH") {
            config.id_epoch = Some(parse_number("SLUICEGATE_ID_EPOCH", &text, 0)?);
        }
        Ok(config)
    }
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig::for_profile(Profile::default())
    }
}

fn parse_number(name: &'static str, text: &str, minimum: u64) -> Result<u64, ConfigError> {
    match text.trim().parse::<u64>() {
        Ok(value) if value >= minimum => Ok(value),
        _ => Err(ConfigError::Number {
            name,
            expected: if minimum == 0 {
                "a whole number"
            } else {
                "a whole number of at least 1"
            },
            value: text.to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect();
        move |name| {
            vars.iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.clone())
        }
    }

    #[test]
    fn no_variables_give_the_efficient_defaults() {
        assert_eq!(
            NodeConfig::from_lookup(lookup(&[])),
            Ok(NodeConfig::for_profile(Profile::Efficient))
        );
    }

    #[test]
    fn the_profile_sets_the_defaults_and_knobs_override_them() {
        let config = NodeConfig::from_lookup(lookup(&[
            ("SLUICEGATE_PROFILE", "Fast"),
            ("SLUICEGATE_RETRY_MS", "900"),
            ("SLUICEGATE_HUB", "n3"),
        ]))
        .unwrap();
        assert_eq!(config.profile, Profile::Fast);
        assert_eq!(config.linger, NodeConfig::for_profile(Profile::Fast).linger);
        assert_eq!(config.retry_after, Duration::from_millis(900));
        assert_eq!(config.hub.as_deref(), Some("n3"));
    }

    #[test]
    fn every_listed_variable_is_read() {
        let defaults = NodeConfig::default();
        for (name, _) in NodeConfig::VARIABLES {
            let value = match *name {
                "SLUICEGATE_PROFILE" => "fast",
                "SLUICEGATE_HUB" => "n9",
                "SLUICEGATE_ACK_VIA_HUB" => "true",
                _ => "7",
            };
            let config = NodeConfig::from_lookup(lookup(&[(name, value)])).unwrap();
            assert_ne!(config, defaults, "{name} changed nothing");
        }
    }

    #[test]
    fn capacities_must_be_positive() {
        for name in ["SLUICEGATE_PEER_CAPACITY", "SLUICEGATE_PRE_INIT_LIMIT"] {
            assert!(
                NodeConfig::from_lookup(lookup(&[(name, "0")])).is_err(),
                "{name}=0 accepted"
            );
        }
        let config = NodeConfig::from_lookup(lookup(&[("SLUICEGATE_DEDUP_WINDOW", "64")])).unwrap();
        assert_eq!(config.dedup_window, 64);
        assert_eq!(NodeConfig::default().max_line_bytes, 1 << 20);
        let config =
            NodeConfig::from_lookup(lookup(&[("SLUICEGATE_MAX_LINE_BYTES", "4096")])).unwrap();
        assert_eq!(config.max_line_bytes, 4096);
        assert!(NodeConfig::from_lookup(lookup(&[("SLUICEGATE_MAX_LINE_BYTES", "0")])).is_err());
    }

    #[test]
    fn bad_values_are_named() {
        assert_eq!(
            NodeConfig::from_lookup(lookup(&[("SLUICEGATE_PROFILE", "quick")])),
            Err(ConfigError::Profile("quick".into()))
        );
        assert!(matches!(
            NodeConfig::from_lookup(lookup(&[("SLUICEGATE_BATCH_MAX", "0")])),
            Err(ConfigError::Number {
                name: "SLUICEGATE_BATCH_MAX",
                ..
            })
        ));
    }
}
