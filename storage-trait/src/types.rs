//! The protocol values a replica persists: ballots, cluster configurations and stop signs.

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

/// A round of Sequence Paxos, as promised or accepted by a replica.
///
/// Ballots are ordered by `(n, priority, pid)`, the order the protocol compares them in;
/// `config_id` breaks the remaining tie only so that `Ord` agrees with `Eq` (two ballots
/// that differ only in `config_id` are never compared by the protocol).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Ballot {
    /// The configuration this ballot belongs to.
    pub config_id: u32,
    /// The round number.
    pub n: u32,
    /// A user-chosen priority that breaks ties between candidates of the same round.
    pub priority: u32,
    /// The id of the replica that owns the ballot.
    pub pid: u64,
}

impl Ballot {
    /// A ballot with every field given.
    pub fn new(config_id: u32, n: u32, priority: u32, pid: u64) -> Self {
        Ballot { config_id, n, priority, pid }
    }
}

impl Ord for Ballot {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.n, self.priority, self.pid, self.config_id).cmp(&(
            other.n,
            other.priority,
            other.pid,
            other.config_id,
        ))
    }
}

impl PartialOrd for Ballot {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Quorum sizes for a configuration that does not use simple majorities.
///
/// A read quorum and a write quorum must intersect: `read + write > nodes.len()`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FlexibleQuorum {
    /// Replicas that must promise before a leader may propose (phase 1).
    pub read_quorum_size: u32,
    /// Replicas that must accept before an entry is decided (phase 2).
    pub write_quorum_size: u32,
}

/// The replicas of one configuration of the cluster.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ClusterConfig {
    /// Identifies the configuration; a reconfiguration moves to a higher id.
    pub configuration_id: u32,
    /// The ids of the replicas in this configuration.
    pub nodes: Vec<u64>,
    /// `None` means majority quorums.
    pub flexible_quorum: Option<FlexibleQuorum>,
}

/// The last entry of a configuration: once decided, the log of this configuration is
/// closed and the cluster continues in `next_config`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct StopSign {
    /// The configuration that takes over.
    pub next_config: ClusterConfig,
    /// Opaque application data carried with the stop sign.
    pub metadata: Option<Vec<u8>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ballots_order_by_round_then_priority_then_pid() {
        let b = |n, priority, pid| Ballot::new(1, n, priority, pid);
        assert!(b(2, 0, 1) > b(1, 9, 9));
        assert!(b(1, 2, 1) > b(1, 1, 9));
        assert!(b(1, 1, 2) > b(1, 1, 1));
        assert_eq!(b(1, 1, 1).cmp(&b(1, 1, 1)), Ordering::Equal);
        // Ord agrees with Eq: ballots that differ only in config_id are not equal.
        assert_ne!(Ballot::new(1, 1, 1, 1).cmp(&Ballot::new(2, 1, 1, 1)), Ordering::Equal);
    }
}
