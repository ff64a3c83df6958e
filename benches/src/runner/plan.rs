//! The plan: which groups of cells a run measures, in which order, and which cell each
//! replica cell is paired with. Add a workload: a [`Work`] variant, its groups in
//! [`plan`], how one repetition runs in `execute.rs`, how its row is made in `record.rs`.

use paxstore::Durability;
use paxstore_backends::BackendKind;

use super::matrix::Matrix;
use crate::replica::{self, Mode, REPLICAS};
use crate::report::OMNI_MEMORY_NAME;

/// The backend name of the floor over bare `Vec`s.
pub(super) const FLOOR_BARE: &str = "bare";
use crate::workload::{durability_label, ReadRange};

/// What a group of cells measures; every backend of the group runs it.
#[derive(Clone, Copy, Debug)]
pub(super) enum Work {
    Append { batch: usize, bytes: usize },
    Read { range: ReadRange, batch: usize },
    Trim { per_trim: usize },
    Reopen,
    Replica { batch_size: usize, mode: Mode },
}

/// Which replica implementation a replica cell drives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Impl {
    /// paxstore's replica, over the cell's backend.
    Paxstore,
    /// OmniPaxos 0.2.4 over the cell's backend, through `paxstore_omnipaxos::OmniStorage`.
    OmniPaxos,
    /// OmniPaxos 0.2.4 over its own `MemoryStorage` (the cell's backend is memory).
    OmniMemoryStorage,
    /// The floor over bare `Vec`s (the cell's backend is memory): see [`crate::floor`].
    Floor,
    /// The floor through the cell's backend.
    FloorStore,
}

/// One cell of a group: a backend with its durability, and (for replica cells) which
/// replica runs over it.
#[derive(Clone, Copy, Debug)]
pub(super) struct Cell {
    pub(super) kind: BackendKind,
    pub(super) durability: Option<Durability>,
    pub(super) imp: Impl,
}

impl Cell {
    pub(super) fn storage(kind: BackendKind, durability: Option<Durability>) -> Self {
        Cell { kind, durability, imp: Impl::Paxstore }
    }
}

/// What a replica cell is compared with, repetition by repetition (the two run in the
/// same round).
#[derive(Clone, Copy, Debug)]
pub(super) enum Pair {
    /// A paxstore cell against OmniPaxos over the same backend and durability: this
    /// cell's decided/s over the other's.
    VsOmniPaxos(Cell),
    /// An OmniPaxos cell over a persistent backend other than the WAL against OmniPaxos
    /// over the WAL with the same durability: the other's decided/s over this cell's.
    WalOverThis(Cell),
}

/// The cell `cell` is compared with, if any.
pub(super) fn pair_of(cell: Cell) -> Option<Pair> {
    let wal: Option<BackendKind> = "wal".parse().ok();
    match cell.imp {
        Impl::Paxstore => Some(Pair::VsOmniPaxos(Cell { imp: Impl::OmniPaxos, ..cell })),
        Impl::OmniPaxos if cell.kind.is_persistent() && Some(cell.kind) != wal => {
            wal.map(|kind| Pair::WalOverThis(Cell { kind, ..cell }))
        }
        Impl::OmniPaxos | Impl::OmniMemoryStorage | Impl::Floor | Impl::FloorStore => None,
    }
}

/// The OmniPaxos cell of the target comparison for a cell of paxstore's replica
/// or of the floor over `kind`: over memory, OmniPaxos over its own `MemoryStorage`; over
/// the WAL, OmniPaxos over paxstore's RocksDB with the same durability (each in the same
/// group).
pub(super) fn target_of(cell: Cell) -> Option<Cell> {
    if !matches!(cell.imp, Impl::Paxstore | Impl::Floor | Impl::FloorStore) {
        return None;
    }
    match cell.kind.name() {
        "memory" => Some(Cell { imp: Impl::OmniMemoryStorage, ..cell }),
        "wal" => "rocksdb".parse().ok().map(|kind| Cell { kind, imp: Impl::OmniPaxos, ..cell }),
        _ => None,
    }
}

/// One workload over several backends. Its repetitions are interleaved (repetition 1 of
/// every backend, then repetition 2, ..., in alternating order), so a noisy minute on the
/// shared disk hits every backend of the comparison alike; a durable group also takes a ceiling sample in
/// every round, so the ceiling is measured under the same conditions as the cells.
#[derive(Clone, Debug)]
pub(super) struct Group {
    pub(super) work: Work,
    /// The backends, the durability each runs with, and the replica.
    pub(super) cells: Vec<Cell>,
    /// Whether a ceiling sample joins each round.
    pub(super) with_ceiling: bool,
}

/// The durability of the read cells' store: what a replica serving reads runs with.
pub(super) fn read_durability(kind: BackendKind) -> Option<Durability> {
    kind.is_persistent().then_some(Durability::Immediate)
}

impl Group {
    pub(super) fn label(&self, m: &Matrix, cell: Cell) -> String {
        let (kind, d) = (cell.kind, durability_label(cell.durability));
        match self.work {
            Work::Append { batch, bytes } => {
                format!("{kind} {d} append batch={batch} entry={bytes}B")
            }
            Work::Read { range, batch } => {
                format!("{kind} {d} {} batch={batch} (log of {})", range.op_name(), m.read_fill)
            }
            Work::Trim { per_trim } => {
                format!("{kind} {d} trim batch={per_trim} (log of {})", m.trim_fill)
            }
            Work::Reopen => format!("{kind} reopen of {} entries", m.reopen_entries),
            Work::Replica { batch_size, mode } => {
                let (replica, over) = match cell.imp {
                    Impl::Paxstore => ("paxstore", format!("{kind} {d}")),
                    Impl::OmniPaxos => ("omnipaxos", format!("{kind} {d}")),
                    Impl::OmniMemoryStorage => ("omnipaxos", OMNI_MEMORY_NAME.to_owned()),
                    Impl::Floor => ("floor", FLOOR_BARE.to_owned()),
                    Impl::FloorStore => ("floor", format!("{kind} {d}")),
                };
                format!("{replica} x{REPLICAS} over {over} {} batch_size={batch_size}", mode.name())
            }
        }
    }
}

/// The cells of one durability class: `Immediate` groups hold every persistent backend
/// with `Immediate` and the memory backend (durability none); `Buffered` groups hold the
/// persistent backends with `Buffered`.
pub(super) fn class(backends: &[BackendKind], durability: Durability) -> Vec<Cell> {
    backends
        .iter()
        .filter_map(|&k| match (k.is_persistent(), durability) {
            (true, d) => Some(Cell::storage(k, Some(d))),
            (false, Durability::Immediate) => Some(Cell::storage(k, None)),
            (false, Durability::Buffered) => None,
        })
        .collect()
}

pub(super) fn plan(m: &Matrix, backends: &[BackendKind]) -> Vec<Group> {
    let mut groups = Vec::new();
    let classes = [Durability::Immediate, Durability::Buffered];
    for d in classes {
        for &bytes in &m.entry_sizes {
            for &batch in &m.append_batches {
                groups.push(Group {
                    work: Work::Append { batch, bytes },
                    cells: class(backends, d),
                    with_ceiling: d == Durability::Immediate,
                });
            }
        }
    }
    let reads: Vec<_> = backends.iter().map(|&k| Cell::storage(k, read_durability(k))).collect();
    for range in [ReadRange::Recent, ReadRange::Old] {
        for &batch in &m.read_batches {
            groups.push(Group {
                work: Work::Read { range, batch },
                cells: reads.clone(),
                with_ceiling: false,
            });
        }
    }
    for d in classes {
        for &per_trim in &m.trim_batches {
            groups.push(Group {
                work: Work::Trim { per_trim },
                cells: class(backends, d),
                with_ceiling: false,
            });
        }
    }
    groups.push(Group {
        work: Work::Reopen,
        cells: backends
            .iter()
            .filter(|k| k.is_persistent())
            .map(|&k| Cell::storage(k, Some(Durability::Immediate)))
            .collect(),
        with_ceiling: false,
    });
    groups.extend(replica_plan(m, backends));
    groups.retain(|g| !g.cells.is_empty());
    groups
}

/// The replica groups: every mode and batch size; in each, paxstore's replica and OmniPaxos
/// over each backend side by side, and (with the memory backend) OmniPaxos over its own
/// `MemoryStorage`; the floor bare and through the memory backend, and through the WAL.
pub(super) fn replica_plan(m: &Matrix, backends: &[BackendKind]) -> Vec<Group> {
    let mut groups = Vec::new();
    if !replica::AVAILABLE {
        return groups;
    }
    let classes = [Durability::Immediate, Durability::Buffered];
    let replica_classes: &[Durability] = if m.replica_buffered { &classes } else { &classes[..1] };
    for &d in replica_classes {
        for &mode in &m.replica_modes {
            for &batch_size in &m.replica_batches {
                let mut cells = Vec::new();
                for c in class(backends, d) {
                    cells.push(c);
                    cells.push(Cell { imp: Impl::OmniPaxos, ..c });
                    if c.kind == BackendKind::Memory {
                        cells.push(Cell { imp: Impl::OmniMemoryStorage, ..c });
                        cells.push(Cell { imp: Impl::Floor, ..c });
                    }
                    if matches!(c.kind.name(), "memory" | "wal") {
                        cells.push(Cell { imp: Impl::FloorStore, ..c });
                    }
                }
                groups.push(Group {
                    work: Work::Replica { batch_size, mode },
                    cells,
                    with_ceiling: d == Durability::Immediate,
                });
            }
        }
    }
    groups
}
