//! A writer killed at each I/O call of a big batch, on the crash filesystem: the harness
//! behind
//! [`kill_at_each_io_call_leaves_the_batch_whole_or_absent`](crate::cases::kill_at_each_io_call_leaves_the_batch_whole_or_absent).
//!
//! For each call position of the batch, a fresh store gets the history, then the batch
//! with a power-off fault armed at that call: the call and every later one are not done.
//! The store is dropped (what it still does fails, as nothing runs after a kill), and the
//! power comes back *without* a cut ([`paxstore_crashfs::CrashFs::power_on`]): the disk
//! holds what a process killed at that call leaves, unsynced writes included. The
//! reopened store must be the model before the batch or after it, whole; after an
//! acknowledged `Immediate` write, after it. It must then take a write and keep it.
//!
//! The SIGKILL harness ([`crate::crash`]) kills where the clock says; this kills at every
//! call, so a torn temporary file adopted on open, or a batch made durable in pieces, is
//! found on every run.

use std::fmt;

use paxstore::{Durability, StorageOp};

use crate::{Factory, TestEntry};

/// What a kill run did.
#[derive(Clone, Debug, Default)]
pub struct KillReport {
    /// I/O calls the batch made when nothing went wrong.
    pub calls: u64,
    /// Kills, one per call position.
    pub kills: u32,
    /// Kills after which the batch was found, whole (its last needed call was done).
    pub found_whole: u32,
}

impl fmt::Display for KillReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "kills: batch_calls={} kills={} batch_found_whole={} batch_absent={} torn=0",
            self.calls,
            self.kills,
            self.found_whole,
            self.kills - self.found_whole
        )
    }
}

/// The batch the kills land in: a promise, 200 entries of 2 KiB (400 KiB, more than a
/// FUSE write request, so the entries reach the disk in several calls), a decided index,
/// an accepted round, a snapshot and a trim, in one batch.
pub fn big_batch() -> Vec<StorageOp<TestEntry>> {
    use crate::cases::ops::ballot;
    use paxstore::Snapshot;
    use paxstore::StorageOp::*;
    let entries: Vec<_> = (10..210).map(|i| TestEntry::new(i, 2048)).collect();
    let snapshot = crate::TestSnapshot::create(&entries[..50]);
    vec![
        SetPromise(ballot(3)),
        AppendEntries(entries),
        SetDecidedIndex(150),
        SetAcceptedRound(ballot(2)),
        SetSnapshot(Some(snapshot)),
        Trim(3),
    ]
}

/// Runs the kill harness: see the module docs.
#[cfg(target_os = "linux")]
pub fn run<F: Factory>(factory: &F, durability: Durability) -> Result<KillReport, String> {
    use crate::faults::{count_calls, FaultModels};
    use crate::power::Mount;
    let models = FaultModels::new(big_batch())?;
    let mount = Mount::new()?;
    let calls = count_calls(factory, &mount, &models)?;
    let mut report = KillReport { calls, ..KillReport::default() };
    for position in 1..=calls {
        let dir = mount.store.join(format!("kill-{position}"));
        kill_run(factory, durability, &mount, &dir, position, &models, &mut report).map_err(
            |e| format!("killed at I/O call {position} of the {calls} calls of the batch: {e}"),
        )?;
    }
    Ok(report)
}

/// One kill: a fresh store in `dir`, the history, the batch killed at I/O call
/// `position`, the reopen, and a write after it.
#[cfg(target_os = "linux")]
fn kill_run<F: Factory>(
    factory: &F,
    durability: Durability,
    mount: &crate::power::Mount,
    dir: &std::path::Path,
    position: u64,
    models: &crate::faults::FaultModels,
    report: &mut KillReport,
) -> Result<(), String> {
    use paxstore::Storage;
    use paxstore_crashfs::{Effect, Fault, Op};

    use crate::check::compare;
    let mut storage = factory.open(dir).map_err(|e| format!("open {}: {e}", dir.display()))?;
    storage.write_atomically(models.history.clone()).map_err(|e| format!("the history: {e}"))?;
    let fault = Fault::new(Op::Any, Effect::PowerOff).nth(position);
    mount.fs.arm(fault).map_err(|e| format!("arming: {e}"))?;
    let outcome = storage.write_atomically(models.batch.clone());
    // Whatever the store still does on its way out fails: nothing runs after a kill.
    drop(storage);
    mount.fs.clear_faults().map_err(|e| format!("clearing the fault: {e}"))?;
    mount.fs.power_on().map_err(|e| format!("the power back on: {e}"))?;
    report.kills += 1;
    let mut storage =
        factory.open(dir).map_err(|e| format!("the reopen after the kill failed: {e}"))?;
    let mut want = match (compare(&storage, &models.before), compare(&storage, &models.with_batch))
    {
        (Ok(()), _) if outcome.is_ok() && durability == Durability::Immediate => {
            return Err("the batch was acknowledged, but it is gone after the kill".into())
        }
        (Ok(()), _) => models.before.clone(),
        (_, Ok(())) => {
            report.found_whole += 1;
            models.with_batch.clone()
        }
        (Err(e), Err(_)) => {
            return Err(format!(
                "the reopened store is neither the model before the batch nor after it, whole \
                 (a torn batch, or a file of the killed write adopted on open); against the \
                 model before the batch: {e}"
            ))
        }
    };
    storage
        .write_atomically(models.after.clone())
        .map_err(|e| format!("after the kill and a reopen, a write failed: {e}"))?;
    let _ = want.apply_batch(&models.after);
    drop(storage);
    let storage = factory.open(dir).map_err(|e| format!("the second reopen failed: {e}"))?;
    compare(&storage, &want)
        .map_err(|e| format!("a write after the recovery did not survive a reopen: {e}"))
}

/// Off Linux the crash filesystem does not exist; the case never gets here
/// ([`crate::power::fuse_or_skip`] says why first).
#[cfg(not(target_os = "linux"))]
pub fn run<F: Factory>(_factory: &F, _durability: Durability) -> Result<KillReport, String> {
    Err("the crash filesystem runs on Linux only".into())
}
