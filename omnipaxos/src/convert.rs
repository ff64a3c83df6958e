//! The value types of the two contracts, mapped field for field: ballots, stop signs,
//! cluster configurations and flexible quorums; and [`OmniEntry`] / [`OmniSnapshot`], the
//! paxstore entry and snapshot types that carry an OmniPaxos entry and snapshot unchanged.

use std::fmt;

use omnipaxos::ballot_leader_election::Ballot as OpBallot;
use omnipaxos::storage::{Entry as OpEntry, Snapshot as OpSnapshot, StopSign as OpStopSign};
use omnipaxos::util::FlexibleQuorum as OpQuorum;
use omnipaxos::ClusterConfig as OpConfig;
use paxstore::{Ballot, ClusterConfig, FlexibleQuorum, StopSign};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::OmniStorageError;

/// An OmniPaxos entry type paxstore can hold: `Send + 'static`, with its snapshot type
/// (what paxstore's `Entry` asks beyond OmniPaxos'). Implemented for every such type.
pub trait OmniPaxosEntry: OpEntry<Snapshot: Send + 'static> + Send + 'static {}

impl<T: OpEntry<Snapshot: Send + 'static> + Send + 'static> OmniPaxosEntry for T {}

/// An OmniPaxos entry stored in a paxstore backend, unchanged: the wrapper only gives it
/// paxstore's `Entry` trait, and serializes exactly as `T` does.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OmniEntry<T>(pub T);

/// An OmniPaxos snapshot stored in a paxstore backend, unchanged (serialized exactly as
/// `T::Snapshot`).
#[derive(Serialize, Deserialize)]
#[serde(transparent)]
#[serde(bound(
    serialize = "T::Snapshot: Serialize",
    deserialize = "T::Snapshot: DeserializeOwned"
))]
pub struct OmniSnapshot<T: OpEntry>(pub T::Snapshot);

impl<T: OpEntry> Clone for OmniSnapshot<T> {
    fn clone(&self) -> Self {
        OmniSnapshot(self.0.clone())
    }
}

impl<T: OpEntry> fmt::Debug for OmniSnapshot<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("OmniSnapshot").field(&self.0).finish()
    }
}

impl<T: OmniPaxosEntry> paxstore::Entry for OmniEntry<T> {
    type Snapshot = OmniSnapshot<T>;
}

impl<T: OmniPaxosEntry> paxstore::Snapshot<OmniEntry<T>> for OmniSnapshot<T> {
    fn create(entries: &[OmniEntry<T>]) -> Self {
        let entries: Vec<T> = entries.iter().map(|e| e.0.clone()).collect();
        OmniSnapshot(T::Snapshot::create(&entries))
    }

    fn merge(&mut self, delta: Self) {
        self.0.merge(delta.0);
    }

    fn use_snapshots() -> bool {
        T::Snapshot::use_snapshots()
    }
}

/// OmniPaxos' ballot as paxstore's (the same four fields).
pub fn ballot_to_paxstore(b: OpBallot) -> Ballot {
    Ballot { config_id: b.config_id, n: b.n, priority: b.priority, pid: b.pid }
}

/// paxstore's ballot as OmniPaxos' (the same four fields).
pub fn ballot_to_omnipaxos(b: Ballot) -> OpBallot {
    OpBallot { config_id: b.config_id, n: b.n, priority: b.priority, pid: b.pid }
}

/// OmniPaxos' stop sign as paxstore's. Quorum sizes are `usize` in OmniPaxos and `u32` in
/// paxstore: a size above `u32::MAX` is [`OmniStorageError::QuorumTooLarge`].
pub fn stopsign_to_paxstore(s: OpStopSign) -> Result<StopSign, OmniStorageError> {
    let c = s.next_config;
    let size = |field: &'static str, value: usize| {
        u32::try_from(value).map_err(|_| OmniStorageError::QuorumTooLarge { field, value })
    };
    let flexible_quorum = match c.flexible_quorum {
        Some(q) => Some(FlexibleQuorum {
            read_quorum_size: size("read_quorum_size", q.read_quorum_size)?,
            write_quorum_size: size("write_quorum_size", q.write_quorum_size)?,
        }),
        None => None,
    };
    Ok(StopSign {
        next_config: ClusterConfig {
            configuration_id: c.configuration_id,
            nodes: c.nodes,
            flexible_quorum,
        },
        metadata: s.metadata,
    })
}

/// paxstore's stop sign as OmniPaxos'. A `u32` quorum size always fits OmniPaxos'
/// `usize` on the 32- and 64-bit targets Rust's standard library supports for files;
/// one that does not is [`OmniStorageError::QuorumTooLarge`].
pub fn stopsign_to_omnipaxos(s: StopSign) -> Result<OpStopSign, OmniStorageError> {
    let c = s.next_config;
    let size = |field: &'static str, value: u32| {
        usize::try_from(value)
            .map_err(|_| OmniStorageError::QuorumTooLarge { field, value: usize::MAX })
    };
    let flexible_quorum = match c.flexible_quorum {
        Some(q) => Some(OpQuorum {
            read_quorum_size: size("read_quorum_size", q.read_quorum_size)?,
            write_quorum_size: size("write_quorum_size", q.write_quorum_size)?,
        }),
        None => None,
    };
    Ok(OpStopSign {
        next_config: OpConfig {
            configuration_id: c.configuration_id,
            nodes: c.nodes,
            flexible_quorum,
        },
        metadata: s.metadata,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stopsign(quorum: Option<(usize, usize)>) -> OpStopSign {
        OpStopSign {
            next_config: OpConfig {
                configuration_id: 7,
                nodes: vec![1, 2, 5],
                flexible_quorum: quorum
                    .map(|(r, w)| OpQuorum { read_quorum_size: r, write_quorum_size: w }),
            },
            metadata: Some(vec![1, 2, 3]),
        }
    }

    #[test]
    fn ballots_map_field_for_field() {
        let b = OpBallot { config_id: 3, n: 9, priority: 4, pid: u64::MAX };
        let p = ballot_to_paxstore(b);
        assert_eq!((p.config_id, p.n, p.priority, p.pid), (3, 9, 4, u64::MAX));
        assert_eq!(ballot_to_omnipaxos(p), b);
    }

    #[test]
    fn stop_signs_map_field_for_field() {
        for quorum in [None, Some((3, 2))] {
            let s = stopsign(quorum);
            let p = stopsign_to_paxstore(s.clone()).unwrap();
            assert_eq!(p.next_config.configuration_id, 7);
            assert_eq!(p.next_config.nodes, vec![1, 2, 5]);
            assert_eq!(p.metadata, Some(vec![1, 2, 3]));
            assert_eq!(
                p.next_config.flexible_quorum.map(|q| (q.read_quorum_size, q.write_quorum_size)),
                quorum.map(|(r, w)| (r as u32, w as u32))
            );
            assert_eq!(stopsign_to_omnipaxos(p).unwrap(), s);
        }
    }

    #[test]
    fn a_quorum_size_past_u32_is_a_typed_error() {
        let err = stopsign_to_paxstore(stopsign(Some((1 << 33, 2)))).unwrap_err();
        assert!(matches!(
            err,
            OmniStorageError::QuorumTooLarge { field: "read_quorum_size", value } if value == 1 << 33
        ));
    }
}
