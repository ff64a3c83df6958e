//! Recording: a finished cell's repetitions become a row of the report (medians, spread,
//! percentiles), and its one-line progress summary.

use std::time::Duration;

use paxstore::Durability;
use paxstore_backends::BackendKind;

use super::execute::{Rep, Runner};
use super::paired::Paired;
use super::plan::{pair_of, target_of, Cell, Impl, Pair, Work, FLOOR_BARE};
use crate::replica::{self, Mode, REPLICAS};
use crate::report::{self, DeviceWrites, ReopenRow, ReplicaRow, StorageRow, OMNI_MEMORY_NAME};
use crate::stats::{self, Samples, Summary};
use crate::workload::durability_label;

impl Runner<'_> {
    /// Records a finished cell (for a replica cell with a [`Pair`], with the ratios of its
    /// repetitions to those of its pair); returns its progress summary.
    pub(super) fn record(
        &mut self,
        work: Work,
        cell: Cell,
        reps: Vec<Rep>,
        paired: Option<Paired>,
        target: Option<Paired>,
    ) -> String {
        let (kind, durability) = (cell.kind, cell.durability);
        let mut samples = Vec::new();
        let mut device: Vec<DeviceWrites> = Vec::new();
        let mut ms = Vec::new();
        let mut runs = Vec::new();
        for r in reps {
            match r {
                Rep::Storage(s, writes) => {
                    samples.push(s);
                    device.extend(writes);
                }
                Rep::Reopen(d) => ms.push(d.as_secs_f64() * 1e3),
                Rep::Replica(c) => runs.push(c),
            }
        }
        let bytes = report::HEADLINE_ENTRY_BYTES;
        match work {
            Work::Append { batch, bytes } => {
                let line = self.push_storage(kind, durability, "append", batch, bytes, &samples);
                if let Some(row) = self.storage.last_mut() {
                    row.device_bytes_per_payload_byte = DeviceWrites::lowest(&device);
                    row.device_writes = device.clone();
                }
                match device.is_empty() {
                    false => format!("{line}, {}", report::fmt_device_writes(&device)),
                    true => line,
                }
            }
            Work::Read { range, batch } => {
                self.push_storage(kind, durability, range.op_name(), batch, bytes, &samples)
            }
            Work::Trim { per_trim } => {
                self.push_storage(kind, durability, "trim", per_trim, bytes, &samples)
            }
            Work::Reopen => self.push_reopen(kind, ms),
            Work::Replica { batch_size, mode } => {
                self.push_replica(cell, batch_size, mode, &runs, paired, target)
            }
        }
    }

    pub(super) fn push_reopen(&mut self, kind: BackendKind, mut ms: Vec<f64>) -> String {
        let min = ms.iter().copied().fold(f64::INFINITY, f64::min);
        let max = ms.iter().copied().fold(0.0, f64::max);
        let median = stats::median(&mut ms);
        self.reopen.push(ReopenRow {
            backend: kind.name().to_owned(),
            entries: self.m().reopen_entries,
            entry_bytes: report::HEADLINE_ENTRY_BYTES,
            ms: median,
            ms_min: min,
            ms_max: max,
            reps: ms.len(),
        });
        format!(
            "{} ms (spread {}–{})",
            report::fmt_num(median),
            report::fmt_num(min),
            report::fmt_num(max)
        )
    }

    pub(super) fn push_storage(
        &mut self,
        kind: BackendKind,
        durability: Option<Durability>,
        op: &str,
        batch: usize,
        entry_bytes: usize,
        runs: &[Samples],
    ) -> String {
        let s: Summary = stats::summarize(runs);
        let durable = durability == Some(Durability::Immediate) && (op == "append" || op == "trim");
        self.storage.push(StorageRow {
            backend: kind.name().to_owned(),
            durability: durability_label(durability).to_owned(),
            op: op.to_owned(),
            batch,
            entry_bytes,
            entries_per_s: s.items_per_s,
            batches_per_s: s.calls_per_s,
            p50_us: s.p50_us,
            p99_us: s.p99_us,
            entries_per_s_min: s.items_per_s_min,
            entries_per_s_max: s.items_per_s_max,
            reps: s.reps,
            // Filled in at the end, against the ceiling of the whole run.
            fraction_of_ceiling: durable.then_some(0.0),
            device_bytes_per_payload_byte: None,
            device_writes: Vec::new(),
        });
        format!(
            "{} entries/s ({}–{}), {} calls/s, p50 {:.0} µs, p99 {:.0} µs",
            report::fmt_num(s.items_per_s),
            report::fmt_num(s.items_per_s_min),
            report::fmt_num(s.items_per_s_max),
            report::fmt_num(s.calls_per_s),
            s.p50_us,
            s.p99_us
        )
    }

    pub(super) fn push_replica(
        &mut self,
        cell: Cell,
        batch_size: usize,
        mode: Mode,
        runs: &[replica::ClusterRun],
        paired: Option<Paired>,
        target: Option<Paired>,
    ) -> String {
        let (kind, durability) = (cell.kind, cell.durability);
        let mut rates: Vec<f64> = runs.iter().map(replica::ClusterRun::decided_per_s).collect();
        let min = rates.iter().copied().fold(f64::INFINITY, f64::min);
        let max = rates.iter().copied().fold(0.0, f64::max);
        let median = stats::median(&mut rates);
        let mut lat: Vec<Duration> =
            runs.iter().flat_map(|r| r.latencies.iter().copied()).collect();
        lat.sort_unstable();
        let (p50, p99) = (stats::percentile_us(&lat, 0.5), stats::percentile_us(&lat, 0.99));
        let mut total = replica::ClusterRun { syncs: Some(0), ..Default::default() };
        for r in runs {
            total.absorb(r.clone());
        }
        let (writes, syncs) = (total.writes_per_entry(), total.syncs_per_entry());
        let (replica, backend) = match cell.imp {
            Impl::Paxstore => ("paxstore", kind.name()),
            Impl::OmniPaxos => ("omnipaxos", kind.name()),
            Impl::OmniMemoryStorage => ("omnipaxos", OMNI_MEMORY_NAME),
            Impl::Floor => ("floor", FLOOR_BARE),
            Impl::FloorStore => ("floor", kind.name()),
        };
        let target_pair = target_of(cell).map(|t| match t.imp {
            Impl::OmniMemoryStorage => format!("omnipaxos over {OMNI_MEMORY_NAME}"),
            _ => format!("omnipaxos over {}", t.kind.name()),
        });
        let (vs_omnipaxos, wal_over_this) = match pair_of(cell) {
            Some(Pair::VsOmniPaxos(_)) => (paired, None),
            Some(Pair::WalOverThis(_)) => (None, paired),
            None => (None, None),
        };
        self.replica.push(ReplicaRow {
            replica: replica.to_owned(),
            backend: backend.to_owned(),
            durability: durability_label(durability).to_owned(),
            mode: mode.name().to_owned(),
            batch_size,
            replicas: REPLICAS,
            decided_per_s: median,
            decided_per_s_min: min,
            decided_per_s_max: max,
            p50_us: p50,
            p99_us: p99,
            reps: runs.len(),
            writes_per_entry: writes,
            syncs_per_entry: syncs,
            vs_omnipaxos: vs_omnipaxos.map(|p| p.wall.median),
            omnipaxos_pair: matches!(cell.imp, Impl::Paxstore)
                .then(|| format!("omnipaxos over {}", kind.name())),
            wal_over_this: wal_over_this.map(|p| p.wall.median),
            vs_target: target.map(Paired::ratios),
            target_pair,
            fraction_of_ceiling: (durability == Some(Durability::Immediate)).then_some(0.0),
        });
        format!(
            "{} decided/s ({}–{}), p50 {:.0} µs, p99 {:.0} µs, {} writes{} per entry per replica{}{}",
            report::fmt_num(median),
            report::fmt_num(min),
            report::fmt_num(max),
            p50,
            p99,
            report::fmt_per_entry(writes),
            syncs.map_or(String::new(), |s| format!(" and {} syncs", report::fmt_per_entry(s))),
            match (vs_omnipaxos, wal_over_this) {
                (Some(p), _) => format!(", vs OmniPaxos (paired) {}", p.show()),
                (_, Some(p)) => format!(", OmniPaxos on the WAL vs here (paired) {}", p.show()),
                (None, None) => String::new(),
            },
            target.map_or(String::new(), |p| format!(
                ", vs {} (paired) {}",
                target_of(cell).map_or("", |t| if t.imp == Impl::OmniMemoryStorage {
                    "OmniPaxos over MemoryStorage"
                } else {
                    "OmniPaxos over rocksdb"
                }),
                p.show()
            ))
        )
    }
}
