//! The sizes of the report's matrix: what a full and a `--quick` run measure.

use std::time::Duration;

use crate::replica::Mode;

/// The sizes of the matrix: what a full and a `--quick` run measure.
#[derive(Clone, Debug)]
pub struct Matrix {
    /// Repetitions of every timed cell.
    pub reps: usize,
    /// Repetitions of the ceiling loop each time it is sampled (at the start, after each
    /// backend's appends, before the replica cells and at the end of the run).
    pub ceiling_reps: usize,
    /// Length of one ceiling repetition.
    pub ceiling_time: Duration,
    /// Length of one repetition of an append cell.
    pub append_time: Duration,
    /// Entries per `write_atomically` of the append cells.
    pub append_batches: Vec<usize>,
    /// Entry sizes of the append cells.
    pub entry_sizes: Vec<usize>,
    /// Entries in the log the read cells read from.
    pub read_fill: usize,
    /// Entries per `get_entries` of the read cells.
    pub read_batches: Vec<usize>,
    /// Length of one repetition of a read cell.
    pub read_time: Duration,
    /// Entries in the log each trim repetition trims.
    pub trim_fill: usize,
    /// Entries per `Trim`.
    pub trim_batches: Vec<usize>,
    /// Entries in the log reopened.
    pub reopen_entries: usize,
    /// The replica's `batch_size` values.
    pub replica_batches: Vec<usize>,
    /// How appends arrive in the replica cells.
    pub replica_modes: Vec<Mode>,
    /// Whether persistent backends also run the cluster with `Buffered` storage.
    pub replica_buffered: bool,
    /// Length of one repetition of a replica cell.
    pub replica_time: Duration,
}

impl Matrix {
    /// The full matrix: every cell of the issue, 3 repetitions (10–20 minutes here).
    pub fn full() -> Self {
        Matrix {
            reps: 3,
            ceiling_reps: 2,
            ceiling_time: Duration::from_secs(1),
            append_time: Duration::from_millis(500),
            append_batches: vec![1, 10, 100, 1000],
            entry_sizes: vec![16, 128, 4096],
            read_fill: 100_000,
            read_batches: vec![1, 100, 1000],
            read_time: Duration::from_millis(300),
            trim_fill: 100_000,
            trim_batches: vec![100, 1000],
            reopen_entries: 1_000_000,
            replica_batches: vec![1, 10, 100, 1000],
            replica_modes: Mode::ALL.to_vec(),
            replica_buffered: true,
            replica_time: Duration::from_millis(1500),
        }
    }

    /// The quick matrix for CI: every backend and op, 128-byte entries, fewer and
    /// shorter repetitions, a 100,000-entry reopen (about 3–4 minutes here).
    pub fn quick() -> Self {
        Matrix {
            reps: 2,
            ceiling_reps: 1,
            ceiling_time: Duration::from_millis(400),
            append_time: Duration::from_millis(120),
            append_batches: vec![1, 10, 100, 1000],
            entry_sizes: vec![128],
            read_fill: 20_000,
            read_batches: vec![100],
            read_time: Duration::from_millis(100),
            trim_fill: 20_000,
            trim_batches: vec![1000],
            reopen_entries: 100_000,
            replica_batches: vec![1, 10, 100, 1000],
            replica_modes: Mode::ALL.to_vec(),
            replica_buffered: false,
            replica_time: Duration::from_millis(400),
        }
    }
}
