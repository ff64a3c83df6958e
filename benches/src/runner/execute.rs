//! Execution: the state a run carries between groups, and how one repetition of one cell
//! is built and run (a fresh store or cluster in the work directory, then the timed loop).

use std::path::PathBuf;
use std::time::Duration;

use paxstore::Durability;
use paxstore_backends::BackendKind;

use super::device::Device;
use super::matrix::Matrix;
use super::plan::{Cell, Impl, Work};
use super::RunOptions;
use crate::ceiling::CeilingFile;
use crate::floor::{self, FloorCluster};
use crate::omni::{self, OmniCluster};
use crate::replica::{self, PaxstoreCluster};
use crate::report::{self, DeviceWrites, ReopenRow, ReplicaRow, StorageRow};
use crate::stats::Samples;
use crate::workload::{BenchStore, Budget, Rng};
use crate::BenchError;

/// What one repetition of one cell produced.
pub(super) enum Rep {
    /// A storage cell's calls, and for appends to a persistent backend what reached the
    /// device (when the work directory's device was found).
    Storage(Samples, Option<DeviceWrites>),
    Reopen(Duration),
    Replica(replica::ClusterRun),
}

/// State carried between groups.
pub(super) struct Runner<'a> {
    pub(super) opts: &'a RunOptions,
    pub(super) work: PathBuf,
    /// The read cells' filled stores, one per backend, kept across the read groups.
    pub(super) read_stores: Vec<BenchStore>,
    /// The reopen group's filled stores.
    pub(super) reopen_stores: Vec<BenchStore>,
    pub(super) rng: Rng,
    pub(super) ceiling: Option<CeilingFile>,
    /// The block device under the work directory, for the write-amplification column.
    pub(super) device: Option<Device>,
    pub(super) ceiling_runs: Vec<Samples>,
    pub(super) storage: Vec<StorageRow>,
    pub(super) reopen: Vec<ReopenRow>,
    pub(super) replica: Vec<ReplicaRow>,
}

impl Runner<'_> {
    pub(super) fn m(&self) -> &Matrix {
        &self.opts.matrix
    }

    pub(super) fn ceiling_sample(&mut self, time: Duration) -> Result<f64, BenchError> {
        if self.ceiling.is_none() {
            self.ceiling = Some(CeilingFile::create_in(&self.work)?);
        }
        let Some(file) = self.ceiling.as_mut() else { return Ok(0.0) };
        let run = file.run(time)?;
        let rate = run.calls_per_s();
        self.ceiling_runs.push(run);
        Ok(rate)
    }

    /// Prepares what a group's repetitions share (filled stores).
    pub(super) fn prepare(
        &mut self,
        work: Work,
        kind: BackendKind,
        durability: Option<Durability>,
    ) -> Result<(), BenchError> {
        match work {
            Work::Read { .. } if !self.read_stores.iter().any(|s| s.kind() == kind) => {
                let mut store = BenchStore::create_in(kind, durability, &self.work)?;
                store.fill(self.m().read_fill, report::HEADLINE_ENTRY_BYTES)?;
                self.read_stores.push(store);
            }
            Work::Reopen => {
                let mut store = BenchStore::create_in(kind, durability, &self.work)?;
                store.fill(self.m().reopen_entries, report::HEADLINE_ENTRY_BYTES)?;
                self.reopen_stores.push(store);
            }
            _ => {}
        }
        Ok(())
    }

    /// One repetition of one cell.
    pub(super) fn rep(&mut self, work: Work, cell: Cell) -> Result<Rep, BenchError> {
        let (kind, durability) = (cell.kind, cell.durability);
        let bytes = report::HEADLINE_ENTRY_BYTES;
        Ok(match work {
            Work::Append { batch, bytes } => {
                let budget = Budget::time(self.m().append_time);
                let work = &self.work;
                let cell = || {
                    let mut store = BenchStore::create_in(kind, durability, work)?;
                    let warmup = 3;
                    let samples = store.append_run(batch, bytes, warmup, budget)?;
                    let payload = ((samples.latencies.len() + warmup) * batch * bytes) as u64;
                    Ok(((samples, store), payload))
                };
                match self.device.as_ref().filter(|_| kind.is_persistent()) {
                    Some(device) => {
                        let ((samples, _store), writes) =
                            device.measure(cell, |(_, store)| store.own_bytes_written())?;
                        Rep::Storage(samples, Some(writes))
                    }
                    None => Rep::Storage(cell()?.0 .0, None),
                }
            }
            Work::Read { range, batch } => {
                let budget = Budget::time(self.m().read_time);
                let Some(store) = self.read_stores.iter().find(|s| s.kind() == kind) else {
                    return Err(BenchError::WrongAnswer {
                        backend: kind.name().to_owned(),
                        detail: "its read store was not filled".to_owned(),
                    });
                };
                Rep::Storage(store.read_run(range, batch, &mut self.rng, budget)?, None)
            }
            Work::Trim { per_trim } => {
                let budget = Budget { min_calls: 1, ..Budget::time(self.m().append_time) };
                let mut store = BenchStore::create_in(kind, durability, &self.work)?;
                store.fill(self.m().trim_fill, bytes)?;
                Rep::Storage(store.trim_run(per_trim, budget)?, None)
            }
            Work::Reopen => {
                let Some(store) = self.reopen_stores.iter_mut().find(|s| s.kind() == kind) else {
                    return Err(BenchError::WrongAnswer {
                        backend: kind.name().to_owned(),
                        detail: "its reopen store was not filled".to_owned(),
                    });
                };
                Rep::Reopen(store.reopen()?)
            }
            Work::Replica { batch_size, mode } => {
                let time = self.m().replica_time;
                Rep::Replica(match cell.imp {
                    Impl::Paxstore => {
                        let mut c = PaxstoreCluster::new(kind, durability, &self.work, batch_size)?;
                        replica::timed_run(&mut c.rounds, mode, batch_size, time)?
                    }
                    Impl::OmniPaxos => {
                        let mut c = OmniCluster::new(kind, durability, &self.work, batch_size)?;
                        replica::timed_run(&mut c.rounds, mode, batch_size, time)?
                    }
                    Impl::OmniMemoryStorage => {
                        let mut rounds = omni::memory_cluster(batch_size)?;
                        replica::timed_run(&mut rounds, mode, batch_size, time)?
                    }
                    Impl::Floor => {
                        let mut rounds = floor::bare_cluster(batch_size)?;
                        replica::timed_run(&mut rounds, mode, batch_size, time)?
                    }
                    Impl::FloorStore => {
                        let mut c = FloorCluster::new(kind, durability, &self.work, batch_size)?;
                        replica::timed_run(&mut c.rounds, mode, batch_size, time)?
                    }
                })
            }
        })
    }
}
