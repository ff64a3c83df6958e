//! Sizes at the edges: empty entries, 1 MiB entries, a 100,000-entry log.

use paxstore::Storage;
use paxstore::StorageOp::*;

use crate::{Factory, Fixture};

/// Entries with empty payloads store and read back.
pub fn empty_entries<F: Factory>(factory: &F) {
    let mut fx = Fixture::new(factory);
    let es = fx.entries(5, 0);
    fx.write(vec![AppendEntries(es)]);
    let e = fx.entry(0);
    fx.write(vec![AppendEntry(e)]);
    let tail = fx.entries(2, 0);
    fx.write(vec![AppendOnPrefix(3, tail)]);
}

/// 1 MiB entries, alone and several in one batch, store and read back intact.
pub fn one_mib_entries<F: Factory>(factory: &F) {
    let mut fx = Fixture::new(factory);
    let e = fx.entry(1 << 20);
    fx.write(vec![AppendEntry(e)]);
    let es = fx.entries(4, 1 << 20);
    fx.write(vec![AppendEntries(es)]);
    let small = fx.entries(3, 10);
    fx.write(vec![AppendEntries(small), Trim(2)]);
}

/// A log of 100,000 entries, written in batches of 1,000, reads back whole and by
/// range, and trims.
pub fn hundred_thousand_entry_log<F: Factory>(factory: &F) {
    let mut fx = Fixture::new(factory);
    fx.note("100 batches of AppendEntries of 1,000 entries of 24 B");
    for _ in 0..100 {
        let es = fx.entries(1000, 24);
        let ops = vec![AppendEntries(es)];
        if let Err(err) = fx.model.apply_batch(&ops) {
            panic!("model refused an append: {err:?}");
        }
        if let Err(err) = fx.storage().write_atomically(ops) {
            panic!("append of 1,000 entries failed: {err}");
        }
    }
    fx.check();
    fx.write(vec![SetDecidedIndex(90_000), Trim(50_000)]);
}
