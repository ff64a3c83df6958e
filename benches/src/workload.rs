//! The storage workloads, over any compiled-in backend: appends, range reads, trims and
//! reopen. The criterion benches and the report binary both call these.
//!
//! A [`BenchStore`] is one backend opened in a fresh temporary directory inside a parent
//! directory on the disk under test; the directory is removed when the store is dropped.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use paxstore::{Durability, Entry, NoSnapshot, Storage, StorageOp};
use paxstore_backends::{BackendKind, MemoryStorage};
use serde::{Deserialize, Serialize};
use tempfile::TempDir;

use crate::stats::Samples;
use crate::BenchError;

/// The entry every workload writes: an opaque payload of a chosen size. The first eight
/// bytes of a payload of at least eight bytes hold the entry's absolute index, little-
/// endian, so reads can be checked; the rest is pseudo-random (incompressible) filler.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BenchEntry {
    /// The bytes stored (serialized as one byte string, so the codec copies them whole).
    #[serde(with = "serde_bytes")]
    pub payload: Vec<u8>,
}

impl Entry for BenchEntry {
    type Snapshot = NoSnapshot;
}

impl BenchEntry {
    /// An entry of `bytes` bytes for absolute index `index`.
    ///
    /// Never inlined: the replica driver makes every entry with it, for every replica
    /// alike, and its cost must not move with how a build happens to inline it (seen: 470
    /// or 890 instructions an entry from two builds of the same code), or instruction
    /// counts of the driver could not be compared from one build to the next.
    #[inline(never)]
    pub fn new(index: u64, bytes: usize) -> Self {
        let mut payload = vec![0u8; bytes];
        let mut rng = Rng::new(index ^ 0x9e37_79b9_7f4a_7c15);
        for chunk in payload.chunks_mut(8) {
            let word = rng.next_u64().to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
        if bytes >= 8 {
            payload[..8].copy_from_slice(&index.to_le_bytes());
        }
        BenchEntry { payload }
    }

    /// The absolute index written into the payload, if it is long enough to hold one.
    pub fn index(&self) -> Option<u64> {
        let head: [u8; 8] = self.payload.get(..8)?.try_into().ok()?;
        Some(u64::from_le_bytes(head))
    }
}

/// `n` entries of `bytes` bytes for the absolute indices `first..first + n`.
pub fn entries(first: u64, n: usize, bytes: usize) -> Vec<BenchEntry> {
    (0..n as u64).map(|i| BenchEntry::new(first + i, bytes)).collect()
}

/// A small deterministic pseudo-random generator (xorshift64*), so the harness needs no
/// RNG crate and every run reads the same ranges.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed` (any value; zero is remapped).
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }

    /// The next 64 pseudo-random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A value in `0..bound` (0 when `bound` is 0).
    pub fn below(&mut self, bound: usize) -> usize {
        if bound == 0 {
            0
        } else {
            (self.next_u64() % bound as u64) as usize
        }
    }
}

/// The durability settings a backend is measured under: `Immediate` and `Buffered` for a
/// persistent backend; `None` (no durability at all) for the memory backend.
pub fn durabilities(kind: BackendKind) -> Vec<Option<Durability>> {
    if kind.is_persistent() {
        vec![Some(Durability::Immediate), Some(Durability::Buffered)]
    } else {
        vec![None]
    }
}

/// The durability of the read workloads' store: what a replica serving reads runs with
/// (`Immediate`; none for the memory backend).
pub fn read_durability(kind: BackendKind) -> Option<Durability> {
    kind.is_persistent().then_some(Durability::Immediate)
}

/// The name of a durability setting in reports: `immediate`, `buffered` or `none`.
pub fn durability_label(durability: Option<Durability>) -> &'static str {
    durability.map_or("none", Durability::as_str)
}

/// How long one repetition of a timed loop may run.
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    /// Stop once this much wall time has passed (after `min_calls`).
    pub time: Duration,
    /// Always make at least this many timed calls.
    pub min_calls: usize,
    /// Never make more than this many timed calls.
    pub max_calls: usize,
    /// Stop once this many payload bytes were written or read (bounds memory and disk).
    pub max_bytes: u64,
}

impl Budget {
    /// A budget of `time` with generous call and byte caps.
    pub fn time(time: Duration) -> Self {
        Budget { time, min_calls: 5, max_calls: 200_000, max_bytes: 256 << 20 }
    }

    /// Exactly `calls` timed calls, however long they take (a criterion iteration count).
    pub fn calls(calls: usize) -> Self {
        Budget { time: Duration::ZERO, min_calls: calls, max_calls: calls, max_bytes: u64::MAX }
    }

    fn go_on(&self, started: Instant, calls: usize, bytes: u64) -> bool {
        if calls < self.min_calls {
            return true;
        }
        calls < self.max_calls && bytes < self.max_bytes && started.elapsed() < self.time
    }
}

/// Which part of the log a read workload reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadRange {
    /// Ranges ending within the last 1,000 entries: a follower catching up.
    Recent,
    /// Ranges in the older half of the log: a lagging replica or a snapshot build.
    Old,
}

impl ReadRange {
    /// `read_recent` or `read_old`, the op name in reports.
    pub fn op_name(self) -> &'static str {
        match self {
            ReadRange::Recent => "read_recent",
            ReadRange::Old => "read_old",
        }
    }
}

/// A backend as a workload holds it: behind `dyn Storage`, except the WAL, held as itself
/// so its own counters ([`WalStats`](paxstore_backends::wal::WalStats)) can be read.
enum Opened {
    Any(Box<dyn Storage<BenchEntry>>),
    #[cfg(feature = "wal")]
    Wal(Box<paxstore_backends::wal::WalStorage<BenchEntry>>),
}

impl Opened {
    fn open(kind: BackendKind, path: &Path, durability: Durability) -> Result<Self, BenchError> {
        let err = BenchError::storage(kind.name());
        Ok(match kind {
            #[cfg(feature = "wal")]
            BackendKind::Wal => Opened::Wal(Box::new(
                paxstore_backends::wal::WalStorage::open(path, durability).map_err(err)?,
            )),
            _ => Opened::Any(kind.open::<BenchEntry>(path, durability).map_err(err)?),
        })
    }

    fn get(&self) -> &dyn Storage<BenchEntry> {
        match self {
            Opened::Any(s) => s.as_ref(),
            #[cfg(feature = "wal")]
            Opened::Wal(w) => w.as_ref(),
        }
    }

    fn get_mut(&mut self) -> &mut dyn Storage<BenchEntry> {
        match self {
            Opened::Any(s) => s.as_mut(),
            #[cfg(feature = "wal")]
            Opened::Wal(w) => w.as_mut(),
        }
    }
}

/// One backend opened in a fresh temporary directory; the directory goes with it.
pub struct BenchStore {
    // Field order matters: the store is dropped (and closes its files) before the
    // directory is removed.
    store: Opened,
    kind: BackendKind,
    durability: Option<Durability>,
    path: PathBuf,
    dir: TempDir,
    /// The absolute index the next append gets.
    next_index: u64,
}

impl BenchStore {
    /// Opens `kind` with `durability` (ignored by memory) in a fresh directory under
    /// `parent`.
    pub fn create_in(
        kind: BackendKind,
        durability: Option<Durability>,
        parent: &Path,
    ) -> Result<Self, BenchError> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("{}-", kind.name()))
            .tempdir_in(parent)
            .map_err(BenchError::io("creating a cell directory", parent))?;
        let path = dir.path().join("store");
        let store = Opened::open(kind, &path, durability.unwrap_or_default())?;
        Ok(BenchStore { store, kind, durability, path, dir, next_index: 0 })
    }

    /// The backend.
    pub fn kind(&self) -> BackendKind {
        self.kind
    }

    /// The directory holding the store.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The storage itself.
    pub fn storage(&mut self) -> &mut dyn Storage<BenchEntry> {
        self.store.get_mut()
    }

    /// The bytes the backend itself counts as written since it was opened, where it
    /// keeps such a count (the WAL's `WalStats::bytes_written`); `None` for the others.
    pub fn own_bytes_written(&self) -> Option<u64> {
        match &self.store {
            Opened::Any(_) => None,
            #[cfg(feature = "wal")]
            Opened::Wal(w) => Some(w.stats().bytes_written),
        }
    }

    fn err(&self) -> impl FnOnce(paxstore::StorageError) -> BenchError + '_ {
        BenchError::storage(self.kind.name())
    }

    /// Appends one batch of `batch` entries of `entry_bytes`, timing only the write.
    pub fn append_batch(
        &mut self,
        batch: usize,
        entry_bytes: usize,
    ) -> Result<Duration, BenchError> {
        let ops = vec![StorageOp::AppendEntries(entries(self.next_index, batch, entry_bytes))];
        let started = Instant::now();
        self.store
            .get_mut()
            .write_atomically(ops)
            .map_err(BenchError::storage(self.kind.name()))?;
        let took = started.elapsed();
        self.next_index += batch as u64;
        Ok(took)
    }

    /// Appends `warmup` untimed batches, then batches of `batch` entries of
    /// `entry_bytes` until the budget is spent; one latency per batch.
    pub fn append_run(
        &mut self,
        batch: usize,
        entry_bytes: usize,
        warmup: usize,
        budget: Budget,
    ) -> Result<Samples, BenchError> {
        for _ in 0..warmup {
            self.append_batch(batch, entry_bytes)?;
        }
        let mut samples = Samples::new(batch);
        let started = Instant::now();
        let per_call = (batch * entry_bytes) as u64;
        while budget.go_on(
            started,
            samples.latencies.len(),
            samples.latencies.len() as u64 * per_call,
        ) {
            samples.latencies.push(self.append_batch(batch, entry_bytes)?);
        }
        Ok(samples)
    }

    /// Appends `n` entries of `entry_bytes` in batches of 1,000, untimed.
    pub fn fill(&mut self, n: usize, entry_bytes: usize) -> Result<(), BenchError> {
        let mut left = n;
        while left > 0 {
            let batch = left.min(1_000);
            self.append_batch(batch, entry_bytes)?;
            left -= batch;
        }
        Ok(())
    }

    /// Reads ranges of `batch` entries from `range` until the budget is spent, checking
    /// that each call returns the entries asked for.
    pub fn read_run(
        &self,
        range: ReadRange,
        batch: usize,
        rng: &mut Rng,
        budget: Budget,
    ) -> Result<Samples, BenchError> {
        let compacted = self.store.get().get_compacted_idx().map_err(self.err())?;
        let end = compacted + self.store.get().get_log_len().map_err(self.err())?;
        let len = end - compacted;
        if len < batch {
            return Err(BenchError::WrongAnswer {
                backend: self.kind.name().to_owned(),
                detail: format!("log holds {len} entries, fewer than a read of {batch}"),
            });
        }
        let mut samples = Samples::new(batch);
        let started = Instant::now();
        let mut bytes = 0u64;
        while budget.go_on(started, samples.latencies.len(), bytes) {
            let from = match range {
                ReadRange::Recent => end - batch - rng.below((len - batch).min(1_000)),
                ReadRange::Old => compacted + rng.below((len / 2).saturating_sub(batch).max(1)),
            };
            let t = Instant::now();
            let got = self.store.get().get_entries(from, from + batch).map_err(self.err())?;
            samples.latencies.push(t.elapsed());
            self.check_read(from, batch, &got)?;
            bytes += got.iter().map(|e| e.payload.len() as u64).sum::<u64>();
        }
        Ok(samples)
    }

    fn check_read(&self, from: usize, batch: usize, got: &[BenchEntry]) -> Result<(), BenchError> {
        let first = got.first().and_then(BenchEntry::index);
        if got.len() != batch || (first.is_some() && first != Some(from as u64)) {
            return Err(BenchError::WrongAnswer {
                backend: self.kind.name().to_owned(),
                detail: format!(
                    "get_entries({from}, {}) returned {} entries starting at index {first:?}",
                    from + batch,
                    got.len()
                ),
            });
        }
        Ok(())
    }

    /// Trims `per_trim` entries at a time from the head of the log until the budget is
    /// spent or fewer than `per_trim` entries are left; one latency per `Trim`.
    pub fn trim_run(&mut self, per_trim: usize, budget: Budget) -> Result<Samples, BenchError> {
        let mut samples = Samples::new(per_trim);
        let started = Instant::now();
        let mut compacted = self.store.get().get_compacted_idx().map_err(self.err())?;
        let end = compacted + self.store.get().get_log_len().map_err(self.err())?;
        while compacted + per_trim <= end && budget.go_on(started, samples.latencies.len(), 0) {
            compacted += per_trim;
            let t = Instant::now();
            self.store
                .get_mut()
                .write_atomically(vec![StorageOp::Trim(compacted)])
                .map_err(BenchError::storage(self.kind.name()))?;
            samples.latencies.push(t.elapsed());
        }
        Ok(samples)
    }

    /// Closes the store and opens it again at the same path; returns the time from the
    /// start of `open` until `get_log_len` answered, and checks that nothing was lost.
    pub fn reopen(&mut self) -> Result<Duration, BenchError> {
        let expected = self.store.get().get_log_len().map_err(self.err())?;
        // Close the old store (and its files and locks) before opening again.
        self.store = Opened::Any(Box::new(MemoryStorage::<BenchEntry>::new()));
        let started = Instant::now();
        self.store = Opened::open(self.kind, &self.path, self.durability.unwrap_or_default())?;
        let len = self.store.get().get_log_len().map_err(self.err())?;
        let took = started.elapsed();
        if len != expected && self.kind.is_persistent() {
            return Err(BenchError::WrongAnswer {
                backend: self.kind.name().to_owned(),
                detail: format!("reopened with {len} entries, {expected} were written"),
            });
        }
        Ok(took)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_carry_their_index() {
        let es = entries(41, 3, 16);
        assert_eq!(es[1].index(), Some(42));
        assert_eq!(es[2].payload.len(), 16);
        assert_eq!(BenchEntry::new(7, 4).index(), None);
    }

    #[test]
    fn every_workload_runs_on_every_compiled_in_backend() {
        let parent = tempfile::tempdir().unwrap();
        let budget =
            Budget { time: Duration::ZERO, min_calls: 3, max_calls: 3, max_bytes: 1 << 30 };
        for kind in BackendKind::compiled_in() {
            for durability in durabilities(kind) {
                let mut store = BenchStore::create_in(kind, durability, parent.path()).unwrap();
                assert_eq!(store.append_run(10, 128, 1, budget).unwrap().latencies.len(), 3);
                store.fill(2_000, 16).unwrap();
                let mut rng = Rng::new(1);
                for range in [ReadRange::Recent, ReadRange::Old] {
                    let s = store.read_run(range, 100, &mut rng, budget).unwrap();
                    assert_eq!(s.latencies.len(), 3);
                }
                assert_eq!(store.trim_run(100, budget).unwrap().latencies.len(), 3);
                if kind.is_persistent() {
                    store.reopen().unwrap();
                    assert_eq!(store.storage().get_compacted_idx().unwrap(), 300);
                }
            }
        }
    }
}
