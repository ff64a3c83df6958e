//! Full-width values survive a reopen: ballots and configuration ids at `u32::MAX`, pids
//! and node ids past `2^32`, indices past `2^32`, flexible quorums, large, empty and
//! absent stop-sign metadata. Volatile backends report this case as ignored, by name.

use paxstore::StorageOp::*;
use paxstore::{Ballot, ClusterConfig, FlexibleQuorum, StopSign};

use crate::{Factory, Fixture};

/// The first index past `u32::MAX` the case compacts to.
const WIDE_IDX: usize = (1 << 32) + 5;

fn wide_stopsign(metadata: Option<Vec<u8>>) -> StopSign {
    StopSign {
        next_config: ClusterConfig {
            configuration_id: u32::MAX,
            nodes: vec![1, u64::MAX, (1 << 40) + 3],
            flexible_quorum: Some(FlexibleQuorum {
                read_quorum_size: u32::MAX,
                write_quorum_size: 2,
            }),
        },
        metadata,
    }
}

/// Every field at full width, each write followed by a reopen: ballots with `u32::MAX`
/// fields and pids past `2^32`, a compacted index past `2^32` with entries, a decided
/// index and a decided stop sign after it, flexible quorums and varied node ids, and
/// stop-sign metadata large (256 KiB), empty and absent.
pub fn reopen_full_width_values<F: Factory>(factory: &F) {
    let mut fx = Fixture::new(factory);
    let batches = vec![
        vec![
            SetPromise(Ballot::new(u32::MAX, u32::MAX, u32::MAX, u64::MAX)),
            SetAcceptedRound(Ballot::new(7, u32::MAX - 1, 1, (1 << 32) + 9)),
        ],
        vec![SetCompactedIdx(WIDE_IDX)],
        vec![AppendEntries(fx.entries(10, 8)), SetDecidedIndex(WIDE_IDX + 4)],
        vec![SetStopsign(Some(wide_stopsign(Some(vec![0xA5; 256 << 10]))))],
        vec![SetStopsign(Some(wide_stopsign(Some(Vec::new()))))],
        vec![SetStopsign(Some(wide_stopsign(None))), SetDecidedIndex(WIDE_IDX + 11)],
        vec![SetPromise(Ballot::new(0, u32::MAX, 0, 1 << 32))],
    ];
    for ops in batches {
        fx.write(ops);
        fx.reopen();
    }
}
