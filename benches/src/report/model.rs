//! The report's data model: what `report.json` holds, one struct per table, and the
//! lookups the analysis and the tables use. Add a column: a field here (with
//! `#[serde(default)]` so older reports still load), filled in `runner/record.rs`, shown in
//! `markdown.rs` or `replica_tables.rs`.

use serde::{Deserialize, Serialize};

use crate::machine::Machine;

/// The version of this JSON layout; bumped when a field changes meaning. 3: OmniPaxos
/// rows over each paxstore backend (not only its `MemoryStorage`), `vs_omnipaxos` against
/// OmniPaxos over the same backend, and `wal_over_this`. 4: write amplification from the
/// block device's counter (`device_writes`), no longer from `/proc/self/io`.
pub const SCHEMA_VERSION: u32 = 4;

/// The entry size of the headline figures.
pub const HEADLINE_ENTRY_BYTES: usize = 128;

/// Everything one run of the `report` binary measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// `true` for a `--quick` run (fewer cells, shorter repetitions, smaller logs).
    pub quick: bool,
    /// The command line that produced the report.
    pub command: String,
    /// The machine it ran on.
    pub machine: Machine,
    /// The backends measured, in order.
    pub backends: Vec<String>,
    /// Wall time of the whole run, in seconds.
    pub duration_s: f64,
    /// The disk's raw ceiling.
    pub ceiling: Ceiling,
    /// The storage workloads.
    pub storage: Vec<StorageRow>,
    /// Reopen of a large log.
    pub reopen: Vec<ReopenRow>,
    /// The replicated cluster.
    pub replica: Vec<ReplicaRow>,
    /// Three node processes over TCP ([`crate::tcp_cluster`]).
    #[serde(default)]
    pub tcp_cluster: Vec<crate::tcp_cluster::TcpClusterRow>,
    /// Which backend to pick for which need, from the rows above.
    pub recommendations: Vec<Recommendation>,
    /// Cells that failed, with their error; a complete run has none.
    pub failures: Vec<Failure>,
}

/// The disk's raw synced-write rate: 4 KiB `pwrite` + `fdatasync` on a preallocated,
/// already-written file in the directory the backends wrote to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Ceiling {
    /// Median over repetitions of synced writes per second.
    pub sync_writes_per_s: f64,
    /// Slowest repetition.
    pub sync_writes_per_s_min: f64,
    /// Fastest repetition.
    pub sync_writes_per_s_max: f64,
    /// Median write+sync latency, µs.
    pub p50_us: f64,
    /// 99th-percentile write+sync latency, µs.
    pub p99_us: f64,
    /// Bytes per write.
    pub write_bytes: usize,
    /// Size of the preallocated file the writes cycle through.
    pub file_bytes: usize,
    /// Repetitions.
    pub reps: usize,
}

/// One cell of the storage workloads.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StorageRow {
    /// Backend name.
    pub backend: String,
    /// `immediate`, `buffered`, or `none` (memory).
    pub durability: String,
    /// `append`, `read_recent`, `read_old` or `trim`.
    pub op: String,
    /// Entries per call: appended per `write_atomically`, read per `get_entries`, or
    /// dropped per `Trim`.
    pub batch: usize,
    /// Payload bytes per entry.
    pub entry_bytes: usize,
    /// Median over repetitions of entries per second.
    pub entries_per_s: f64,
    /// Median over repetitions of calls per second.
    pub batches_per_s: f64,
    /// Median call latency, µs.
    pub p50_us: f64,
    /// 99th-percentile call latency, µs.
    pub p99_us: f64,
    /// Slowest repetition's entries per second.
    pub entries_per_s_min: f64,
    /// Fastest repetition's entries per second.
    pub entries_per_s_max: f64,
    /// Repetitions.
    pub reps: usize,
    /// For durable (`immediate`) appends and trims: calls per second divided by the
    /// ceiling's synced writes per second (each durable call needs at least one sync).
    pub fraction_of_ceiling: Option<f64>,
    /// For appends to a persistent backend: write amplification, the bytes that reached
    /// the storage device per byte of entry payload appended:
    /// [`DeviceWrites::lowest`] of [`device_writes`](Self::device_writes), which holds
    /// the counters it is computed from (`check-report` recomputes it).
    #[serde(default)]
    pub device_bytes_per_payload_byte: Option<f64>,
    /// For appends to a persistent backend: the counters behind
    /// [`device_bytes_per_payload_byte`](Self::device_bytes_per_payload_byte), one per
    /// repetition.
    #[serde(default)]
    pub device_writes: Vec<DeviceWrites>,
}

/// What reached the storage device during one repetition of an append cell.
///
/// `device_bytes` is the block device's "sectors written" counter (`/sys/block/<dev>/stat`
/// field 7, × 512) read after a `syncfs` before and after the repetition, so the
/// backend's buffered data and the filesystem's journal are in it, and so is whatever
/// other processes wrote to the device meanwhile: it is an upper bound of the backend's
/// share. `idle_bytes` shows how loose: the same counter over an idle window right before
/// the repetition, scaled to the repetition's length (one short window: a burst from
/// another process in it or in the repetition makes either figure jump).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DeviceWrites {
    /// Bytes the device counted as written during the repetition (every process).
    pub device_bytes: u64,
    /// The idle baseline scaled to the repetition's length: what other processes wrote
    /// in a window of the same length just before.
    pub idle_bytes: u64,
    /// Entry payload bytes appended (warm-up included).
    pub payload_bytes: u64,
    /// The backend's own count of bytes written, where it keeps one (the WAL:
    /// `WalStats::bytes_written`: records, headers, zeros ahead of the tail).
    pub own_bytes: Option<u64>,
    /// Page cache the process dirtied (`/proc/self/io` `write_bytes`: charged per folio
    /// when dirtied, so it overstates large-folio writes; not what reached the device).
    pub dirtied_bytes: Option<u64>,
}

impl DeviceWrites {
    /// One repetition: `device_bytes` written during `took`, after an idle window that saw
    /// `idle.0` bytes in `idle.1`.
    pub fn new(
        device_bytes: u64,
        idle: (u64, std::time::Duration),
        took: std::time::Duration,
        payload_bytes: u64,
        own_bytes: Option<u64>,
        dirtied_bytes: Option<u64>,
    ) -> Self {
        let window = idle.1.as_secs_f64();
        let idle_bytes =
            if window > 0.0 { (idle.0 as f64 * took.as_secs_f64() / window) as u64 } else { 0 };
        DeviceWrites { device_bytes, idle_bytes, payload_bytes, own_bytes, dirtied_bytes }
    }

    /// Device bytes per payload byte: an upper bound of the backend's write
    /// amplification (other processes' writes only add to the counter).
    pub fn amplification(&self) -> Option<f64> {
        (self.payload_bytes > 0).then(|| self.device_bytes as f64 / self.payload_bytes as f64)
    }

    /// The report's column: the lowest [`amplification`](Self::amplification) of the
    /// repetitions, the tightest of their upper bounds.
    pub fn lowest(reps: &[DeviceWrites]) -> Option<f64> {
        reps.iter().filter_map(DeviceWrites::amplification).min_by(f64::total_cmp)
    }

    /// The idle baseline per payload byte: how much of the device figure other processes
    /// may account for (an estimate from one short window).
    pub fn noise(&self) -> Option<f64> {
        (self.payload_bytes > 0).then(|| self.idle_bytes as f64 / self.payload_bytes as f64)
    }

    /// The backend's own bytes written per payload byte, where it counts them.
    pub fn own_amplification(&self) -> Option<f64> {
        let own = self.own_bytes?;
        (self.payload_bytes > 0).then(|| own as f64 / self.payload_bytes as f64)
    }
}

/// Reopen of a log of `entries` entries.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReopenRow {
    /// Backend name.
    pub backend: String,
    /// Entries in the log reopened.
    pub entries: usize,
    /// Payload bytes per entry.
    pub entry_bytes: usize,
    /// Median over repetitions of the time from `open` until `get_log_len` answered, ms.
    pub ms: f64,
    /// Fastest repetition, ms.
    pub ms_min: f64,
    /// Slowest repetition, ms.
    pub ms_max: f64,
    /// Repetitions.
    pub reps: usize,
}

/// One cell of the replicated cluster.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReplicaRow {
    /// `paxstore` or `omnipaxos` (0.2.4), driven the same way.
    #[serde(default = "paxstore_replica")]
    pub replica: String,
    /// Backend name (every replica uses it): a paxstore backend (OmniPaxos reaches it
    /// through `paxstore_omnipaxos::OmniStorage`), or `MemoryStorage`, OmniPaxos' own.
    pub backend: String,
    /// `immediate`, `buffered`, or `none` (memory).
    pub durability: String,
    /// How appends arrive: `upfront` (all, then delivery) or `stream` (one per round);
    /// `window` in reports of schema 1.
    #[serde(default = "window_mode")]
    pub mode: String,
    /// The replica's `batch_size`.
    pub batch_size: usize,
    /// Replicas in the cluster.
    pub replicas: usize,
    /// Median over repetitions of entries decided per second.
    pub decided_per_s: f64,
    /// Slowest repetition.
    pub decided_per_s_min: f64,
    /// Fastest repetition.
    pub decided_per_s_max: f64,
    /// Median latency from `append` on the leader until the entry is decided there, µs.
    pub p50_us: f64,
    /// 99th-percentile of that latency, µs.
    pub p99_us: f64,
    /// Repetitions.
    pub reps: usize,
    /// Storage writes per decided entry, per replica.
    #[serde(default)]
    pub writes_per_entry: f64,
    /// Syncs (`fdatasync`-type calls) per decided entry, per replica, where the storage
    /// counts them (the WAL does; memory has none).
    #[serde(default)]
    pub syncs_per_entry: Option<f64>,
    /// For a paxstore cell: the median over repetitions of paxstore's decided/s over
    /// OmniPaxos' over the same backend and durability, the two run back to back.
    /// (Schema 2: over OmniPaxos' `MemoryStorage`, for the memory backend only.)
    #[serde(default)]
    pub vs_omnipaxos: Option<f64>,
    /// The OmniPaxos cell `vs_omnipaxos` compares with, e.g. `omnipaxos over wal`.
    #[serde(default)]
    pub omnipaxos_pair: Option<String>,
    /// For an OmniPaxos cell over a persistent backend other than the WAL: the median over
    /// repetitions of OmniPaxos-over-the-WAL's decided/s over this cell's, the two run in
    /// the same round with the same durability (what moving an OmniPaxos service onto
    /// the WAL buys).
    #[serde(default)]
    pub wal_over_this: Option<f64>,
    /// For paxstore's replica and the floor over memory or the WAL: the paired ratios of
    /// this cell's decided/s to those of the OmniPaxos cell of the target comparison
    /// (`target_pair`), in wall time and in the driving thread's CPU time.
    #[serde(default)]
    pub vs_target: Option<PairedRatios>,
    /// The OmniPaxos cell `vs_target` compares with: `omnipaxos over MemoryStorage` for
    /// memory, `omnipaxos over rocksdb` (same durability) for the WAL.
    #[serde(default)]
    pub target_pair: Option<String>,
    /// For `immediate`: the share of the disk's sync budget the cell used, i.e. the
    /// storage writes of the three replicas per second (each a synced commit) divided by
    /// the ceiling's synced writes per second. (Schema 1: decided batches per second over
    /// the ceiling.)
    pub fraction_of_ceiling: Option<f64>,
}

/// Ratios of one cell's repetitions to those of the cell it ran beside, repetition by
/// repetition.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct PairedRatios {
    /// Of entries decided per second of wall time.
    pub wall: RatioSpread,
    /// Of entries decided per second of the driving thread's CPU time, where known.
    pub cpu: Option<RatioSpread>,
}

/// The lowest, median and highest of some ratios.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct RatioSpread {
    /// Lowest.
    pub min: f64,
    /// Median.
    pub median: f64,
    /// Highest.
    pub max: f64,
}

fn paxstore_replica() -> String {
    "paxstore".to_owned()
}

fn window_mode() -> String {
    "window".to_owned()
}

/// The name OmniPaxos' own in-memory storage has in the replica rows.
pub const OMNI_MEMORY_NAME: &str = "MemoryStorage";

/// A need and the backend the figures say to pick for it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Recommendation {
    /// The need, e.g. "durable commits of single entries".
    pub need: String,
    /// The backend with the best figure.
    pub pick: String,
    /// Its figure, formatted with its unit.
    pub figure: String,
    /// How it compares: the runner-up and the ratio.
    pub versus: String,
}

/// A cell that failed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    /// The cell, as shown in the progress line.
    pub cell: String,
    /// The error.
    pub error: String,
}

impl Report {
    /// The storage row of one cell, if measured.
    pub fn storage_row(
        &self,
        backend: &str,
        durability: &str,
        op: &str,
        batch: usize,
        entry_bytes: usize,
    ) -> Option<&StorageRow> {
        self.storage.iter().find(|r| {
            r.backend == backend
                && r.durability == durability
                && r.op == op
                && r.batch == batch
                && r.entry_bytes == entry_bytes
        })
    }

    /// The replica row of one cell, if measured.
    pub fn replica_row(
        &self,
        replica: &str,
        backend: &str,
        durability: &str,
        mode: &str,
        batch: usize,
    ) -> Option<&ReplicaRow> {
        self.replica.iter().find(|r| {
            r.replica == replica
                && r.backend == backend
                && r.durability == durability
                && r.mode == mode
                && r.batch_size == batch
        })
    }

    /// The reopen row of a backend, if measured.
    pub fn reopen_row(&self, backend: &str) -> Option<&ReopenRow> {
        self.reopen.iter().find(|r| r.backend == backend)
    }
}
