//! What a sink does when it is full.

use std::fmt;
use std::str::FromStr;

/// What a full sink does with one more item. Each choice names who pays for it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(rename_all = "snake_case")
)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum OverflowPolicy {
    /// Backpressure: [`emit`](super::SinkHandle::emit) waits until the consumer frees a slot.
    ///
    /// The producer pays, in time; nothing is lost. The time spent waiting is added to
    /// [`blocked`](super::SinkStats::blocked). [`try_emit`](super::SinkHandle::try_emit) never
    /// waits, so on a full sink it returns [`Rejected`](super::Emission::Rejected) and moves
    /// `rejected`.
    #[default]
    Block,
    /// The new item is not queued and is handed back as
    /// [`DroppedNewest`](super::Emission::DroppedNewest); the queue is untouched.
    ///
    /// The newest item pays; nobody waits. Moves `dropped_newest`.
    DropNewest,
    /// The oldest queued item is removed and handed back as
    /// [`Evicted`](super::Emission::Evicted); the new item takes its place at the back.
    ///
    /// The oldest item pays; nobody waits. Moves `queued` and `evicted_oldest`.
    DropOldest,
    /// Fail fast: the new item is handed back as [`Rejected`](super::Emission::Rejected) so the
    /// caller can tell its own client.
    ///
    /// The caller pays, by handling the refusal; nobody waits. Moves `rejected`.
    Reject,
}

impl OverflowPolicy {
    /// Every policy, in declaration order.
    const ALL: [OverflowPolicy; 4] = [
        OverflowPolicy::Block,
        OverflowPolicy::DropNewest,
        OverflowPolicy::DropOldest,
        OverflowPolicy::Reject,
    ];

    /// The kebab-case name that [`Display`](fmt::Display) writes and [`FromStr`] reads back.
    fn name(self) -> &'static str {
        match self {
            OverflowPolicy::Block => "block",
            OverflowPolicy::DropNewest => "drop-newest",
            OverflowPolicy::DropOldest => "drop-oldest",
            OverflowPolicy::Reject => "reject",
        }
    }
}

/// Writes the kebab-case name (`block`, `drop-newest`, `drop-oldest`, `reject`), the spelling
/// command lines and config files use; [`FromStr`] reads it back.
impl fmt::Display for OverflowPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Reads a policy by its kebab-case name, as [`Display`](fmt::Display) writes it, or by the
/// snake_case name (`drop_newest`, `drop_oldest`) that the serde form uses, so that a value
/// copied from either place is accepted. Matching is exact: names are lower case.
impl FromStr for OverflowPolicy {
    type Err = ParsePolicyError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let kebab = value.replace('_', "-");
        Self::ALL
            .into_iter()
            .find(|policy| policy.name() == kebab)
            .ok_or_else(|| ParsePolicyError {
                value: value.to_owned(),
            })
    }
}

/// The error of parsing an [`OverflowPolicy`] from a name that is none of the policies. Its
/// message names the value and lists the valid ones, so a user can fix a typo without the docs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsePolicyError {
    value: String,
}

impl ParsePolicyError {
    /// The value that was not a policy name.
    pub fn value(&self) -> &str {
        &self.value
    }
}

impl fmt::Display for ParsePolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown overflow policy {:?}; expected one of ",
            self.value
        )?;
        for (index, policy) in OverflowPolicy::ALL.into_iter().enumerate() {
            if index > 0 {
                f.write_str(", ")?;
            }
            f.write_str(policy.name())?;
        }
        Ok(())
    }
}

impl std::error::Error for ParsePolicyError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_round_trips_through_from_str_for_every_policy() {
        for policy in OverflowPolicy::ALL {
            let name = policy.to_string();
            assert_eq!(name.parse::<OverflowPolicy>(), Ok(policy), "{name}");
        }
    }

    #[test]
    fn display_writes_kebab_case_names() {
        let names: Vec<String> = OverflowPolicy::ALL.iter().map(|p| p.to_string()).collect();
        assert_eq!(names, ["block", "drop-newest", "drop-oldest", "reject"]);
    }

    #[test]
    fn from_str_accepts_the_snake_case_spellings_too() {
        assert_eq!("drop_newest".parse(), Ok(OverflowPolicy::DropNewest));
        assert_eq!("drop_oldest".parse(), Ok(OverflowPolicy::DropOldest));
        assert_eq!("drop-newest".parse(), Ok(OverflowPolicy::DropNewest));
        assert_eq!("block".parse(), Ok(OverflowPolicy::Block));
        assert_eq!("reject".parse(), Ok(OverflowPolicy::Reject));
    }

    #[test]
    fn an_unknown_name_is_a_typed_error_that_lists_the_valid_ones() {
        for value in ["drop", "Block", "drop newest", "", "drop-oldest "] {
            let error = value.parse::<OverflowPolicy>().unwrap_err();
            assert_eq!(error.value(), value);
            assert_eq!(
                error.to_string(),
                format!(
                    "unknown overflow policy {value:?}; expected one of \
                     block, drop-newest, drop-oldest, reject"
                )
            );
        }
        let boxed: Box<dyn std::error::Error> =
            Box::new("nope".parse::<OverflowPolicy>().unwrap_err());
        assert!(boxed.source().is_none());
    }
}
