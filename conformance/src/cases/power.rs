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
    match power::run_faults(factory, durability) {
        Ok(report) => eprintln!("{report}"),
        Err(err) => panic!("{err}"),
    }
}
