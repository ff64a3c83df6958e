//! Power loss and failed writes on the crash filesystem (see [`crate::power`]).

use paxstore::Durability;

use crate::power::{self, PowerConfig};
use crate::Factory;

/// Cuts the power under a writer at random moments (`PAXSTORE_POWER_CUTS`, default 4,
/// every kind of cut in turn): with `Immediate`, every acknowledged batch survives; with
/// `Buffered`, a prefix of whole batches does and the store opens. `test_path` is
/// `module_path!()::<this test's name>`, so the harness can re-run the test binary as the
/// child. Where FUSE cannot be mounted: see [`power::fuse_or_skip`].
pub fn power_loss_keeps_acknowledged_batches<F: Factory>(
    factory: &F,
    test_path: &str,
    durability: Durability,
) {
    if std::env::var(crate::crash::CHILD_DIR_ENV).is_err()
        && !power::fuse_or_skip("power_loss_keeps_acknowledged_batches")
    {
        return;
    }
    match power::run(factory, test_path, &PowerConfig::from_env(durability)) {
        Ok(report) => eprintln!("{report}"),
        Err(err) => panic!("{err}"),
    }
}

/// Fails each I/O call of a batch in turn, with `EIO` and with `ENOSPC`: the write returns
/// `Err`, every getter still shows the state before the batch, the next write is
/// acknowledged or refused with a typed `Poisoned`, and a reopen shows the state before
/// the batch (or after it, whole, if nothing acknowledged came after). An `Immediate`
/// write that makes no I/O call at all fails the case. Where FUSE cannot be mounted: see
/// [`power::fuse_or_skip`].
pub fn failed_write_changes_nothing<F: Factory>(factory: &F, durability: Durability) {
    if !power::fuse_or_skip("failed_write_changes_nothing") {
        return;
    }
    match crate::faults::run_faults(factory, durability) {
        Ok(report) => eprintln!("{report}"),
        Err(err) => panic!("{err}"),
    }
}

/// Kills the writer at each I/O call of a big batch in turn (the call and every later one
/// not done, unsynced writes kept, as a killed process leaves them): the reopened store
/// is the model before the batch or after it, whole (after it, if an `Immediate` write was
/// acknowledged), and takes a write after it. Deterministic where the SIGKILL case is
/// not: a torn temporary file adopted on open, or a batch made durable in pieces, fails it
/// on every run. Where FUSE cannot be mounted: see [`power::fuse_or_skip`].
pub fn kill_at_each_io_call_leaves_the_batch_whole_or_absent<F: Factory>(
    factory: &F,
    durability: Durability,
) {
    if !power::fuse_or_skip("kill_at_each_io_call_leaves_the_batch_whole_or_absent") {
        return;
    }
    match crate::kill::run(factory, durability) {
        Ok(report) => eprintln!("{report}"),
        Err(err) => panic!("{err}"),
    }
}
