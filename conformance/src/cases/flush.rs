//! `flush`: every acknowledged batch made durable on demand, changing nothing a getter
//! shows. A power-loss check waits for the crash filesystem; until then the reopen and
//! SIGKILL cases hold what a process can see.

use paxstore::Storage;
use paxstore::StorageOp::*;

use super::ops::{ballot, stopsign};
use crate::crash::{self, CrashConfig};
use crate::{Factory, Fixture, TestSnapshot};

fn flush<F: Factory>(fx: &mut Fixture<'_, F>) {
    fx.note("flush()");
    if let Err(err) = fx.storage().flush() {
        panic!("flush failed: {err}");
    }
    fx.check();
}

/// `flush` succeeds on a fresh store, after every kind of write and twice in a row, and
/// changes nothing any getter shows.
pub fn flush_changes_nothing<F: Factory>(factory: &F) {
    let mut fx = Fixture::new(factory);
    flush(&mut fx);
    let entries = fx.entries(20, 10);
    fx.write(vec![AppendEntries(entries), SetPromise(ballot(3)), SetDecidedIndex(5)]);
    flush(&mut fx);
    let entries = fx.entries(2, 10);
    fx.write(vec![AppendOnPrefix(8, entries), Trim(4), SetAcceptedRound(ballot(3))]);
    fx.write(vec![SetStopsign(Some(stopsign(2))), SetSnapshot(Some(TestSnapshot::default()))]);
    flush(&mut fx);
    flush(&mut fx);
}

/// Every batch written before a `flush` survives dropping the store and opening it again.
pub fn reopen_after_flush<F: Factory>(factory: &F) {
    let mut fx = Fixture::new(factory);
    for round in 0..3 {
        let entries = fx.entries(10, 50);
        fx.write(vec![AppendEntries(entries), SetDecidedIndex(round * 10 + 5)]);
        flush(&mut fx);
        fx.reopen();
    }
}

/// The SIGKILL harness with a `flush` after every acknowledged batch (a third of
/// `PAXSTORE_CRASH_ITERATIONS`, at least one): every acknowledged batch survives, none is
/// torn. `test_path` is `module_path!()::<this test's name>`.
pub fn crash_sigkill_after_flush_keeps_acknowledged_batches<F: Factory>(
    factory: &F,
    test_path: &str,
) {
    let mut config = CrashConfig::from_env();
    config.iterations = config.iterations.div_ceil(3).max(1);
    match crash::run_flushing(factory, test_path, &config) {
        Ok(report) => eprintln!("{report}"),
        Err(err) => panic!("{err}"),
    }
}
