//! The entry types the simulator and the scenarios replicate.

use paxstore::{Entry, NoSnapshot, Snapshot};
use serde::{Deserialize, Serialize};

/// An entry type the simulator can generate and check: a wrapper around a `u64`.
pub trait SimValue: Entry + Copy + PartialEq {
    /// The entry holding `value`.
    fn from_value(value: u64) -> Self;
    /// The value held.
    fn value(&self) -> u64;
    /// `(entries covered, digest)` of a snapshot, if the type snapshots, so the checker
    /// can compare it with the decided prefix it stands for.
    fn snapshot_digest(snapshot: &Self::Snapshot) -> Option<(u64, u64)>;
}

/// A `u64` entry that snapshots into a [`DigestSnapshot`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SimEntry(pub u64);

impl Entry for SimEntry {
    type Snapshot = DigestSnapshot;
}

impl SimValue for SimEntry {
    fn from_value(value: u64) -> Self {
        SimEntry(value)
    }
    fn value(&self) -> u64 {
        self.0
    }
    fn snapshot_digest(snapshot: &DigestSnapshot) -> Option<(u64, u64)> {
        Some((snapshot.len, snapshot.digest))
    }
}

/// A `u64` entry that does not snapshot (compaction can only trim).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TrimEntry(pub u64);

impl Entry for TrimEntry {
    type Snapshot = NoSnapshot;
}

impl SimValue for TrimEntry {
    fn from_value(value: u64) -> Self {
        TrimEntry(value)
    }
    fn value(&self) -> u64 {
        self.0
    }
    fn snapshot_digest(_: &NoSnapshot) -> Option<(u64, u64)> {
        None
    }
}

/// A snapshot of a sequence of values: its length and a positional polynomial hash, so
/// two snapshots are equal exactly when (with overwhelming probability) they cover the
/// same values in the same order. Merging is exact: `merge(create(a), create(b)) ==
/// create(a ++ b)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DigestSnapshot {
    /// The number of entries covered.
    pub len: u64,
    /// The hash of the values, in order.
    pub digest: u64,
}

const BASE: u64 = 0x9E37_79B9_7F4A_7C15 | 1;

impl DigestSnapshot {
    /// The snapshot of `values`, in order.
    pub fn of_values(values: impl IntoIterator<Item = u64>) -> Self {
        let mut s = DigestSnapshot::default();
        for v in values {
            s.digest = s.digest.wrapping_mul(BASE).wrapping_add(mix(v));
            s.len += 1;
        }
        s
    }
}

fn mix(v: u64) -> u64 {
    let mut z = v.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn pow(mut base: u64, mut exp: u64) -> u64 {
    let mut acc = 1u64;
    while exp > 0 {
        if exp & 1 == 1 {
            acc = acc.wrapping_mul(base);
        }
        base = base.wrapping_mul(base);
        exp >>= 1;
    }
    acc
}

impl Snapshot<SimEntry> for DigestSnapshot {
    fn create(entries: &[SimEntry]) -> Self {
        DigestSnapshot::of_values(entries.iter().map(|e| e.0))
    }
    fn merge(&mut self, delta: Self) {
        self.digest = self.digest.wrapping_mul(pow(BASE, delta.len)).wrapping_add(delta.digest);
        self.len += delta.len;
    }
    fn use_snapshots() -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merging_snapshots_equals_snapshotting_the_concatenation() {
        let all: Vec<SimEntry> = (0..10).map(SimEntry).collect();
        let mut a = DigestSnapshot::create(&all[..4]);
        a.merge(DigestSnapshot::create(&all[4..]));
        assert_eq!(a, DigestSnapshot::create(&all));
        assert_ne!(a, DigestSnapshot::create(&all[1..]));
    }
}
