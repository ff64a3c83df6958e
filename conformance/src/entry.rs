//! The entry and snapshot types the suite stores.

use paxstore::{Entry, Snapshot};
use serde::{Deserialize, Serialize};

/// The entry every case writes: a unique id and a payload of any size (including empty).
///
/// A backend under test must implement `Storage<TestEntry>`; persistent backends usually
/// do so by being generic over serde-serialisable entries.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TestEntry {
    /// Unique within a case, so a misplaced entry is always noticed.
    pub id: u64,
    /// Deterministic bytes derived from `id` (serialized as one byte string).
    #[serde(with = "serde_bytes")]
    pub payload: Vec<u8>,
}

impl TestEntry {
    /// An entry with `len` payload bytes derived from `id`.
    pub fn new(id: u64, len: usize) -> Self {
        let mut x = id.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let payload = (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        TestEntry { id, payload }
    }
}

/// `e(id, len)`, as failure messages show entries; a payload that is not the one
/// [`TestEntry::new`] derives from `id` shows as `e(id, len, payload [..])`.
impl std::fmt::Debug for TestEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let len = self.payload.len();
        if TestEntry::new(self.id, len).payload == self.payload {
            write!(f, "e({}, {len})", self.id)
        } else {
            write!(f, "e({}, {len}, payload {:?})", self.id, self.payload)
        }
    }
}

impl Entry for TestEntry {
    type Snapshot = TestSnapshot;
}

/// A snapshot that really summarises the entries it covers, so a backend that loses or
/// mixes up snapshots is noticed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TestSnapshot {
    /// How many entries it covers.
    pub entries: u64,
    /// The id of the last entry it covers.
    pub last_id: Option<u64>,
    /// A digest of the covered ids and payloads, in order.
    pub digest: u64,
}

fn fold(digest: u64, entry: &TestEntry) -> u64 {
    let mut d = digest ^ entry.id;
    for &b in &entry.payload {
        d = (d ^ u64::from(b)).wrapping_mul(0x0100_0000_01B3);
    }
    d.rotate_left(5)
}

impl Snapshot<TestEntry> for TestSnapshot {
    fn create(entries: &[TestEntry]) -> Self {
        TestSnapshot {
            entries: entries.len() as u64,
            last_id: entries.last().map(|e| e.id),
            digest: entries.iter().fold(0xCBF2_9CE4_8422_2325, fold),
        }
    }

    fn merge(&mut self, delta: Self) {
        self.entries += delta.entries;
        self.last_id = delta.last_id.or(self.last_id);
        self.digest = self.digest.rotate_left(17) ^ delta.digest;
    }

    fn use_snapshots() -> bool {
        true
    }
}
