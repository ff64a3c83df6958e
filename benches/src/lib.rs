//! # paxstore-benches: the same workloads on every backend, and the comparison report
//!
//! This crate owns the benchmark **harness** ([`workload`]: the storage workloads, and
//! [`replica`]: a 3-replica cluster in one process driven in rounds, with [`omni`]:
//! OmniPaxos 0.2.4 under the same driver), the disk's raw **ceiling**
//! ([`ceiling`]), and the **report** (`src/bin/report.rs`, with its data model, tables,
//! charts and page in [`report`], and the run of its matrix in [`runner`]). Criterion
//! benches (`benches/storage.rs`, `benches/replica.rs`) and the `report` binary both drive
//! the harness, so a figure in the report and a criterion figure measure the same code
//! path.
//!
//! Everything is generic over [`paxstore_backends::BackendKind`]: a backend compiled into
//! `paxstore-backends` shows up in every bench and in the report with no change here.
//!
//! [`floor`] is the least work a replicated log does under the same driver: the report
//! shows its ratio to OmniPaxos beside paxstore's, cell by cell.
//!
//! [`tcp_cluster`] measures the cluster as users deploy it: three `paxstore-node`
//! processes over TCP, each syncing on its own.
//!
//! ## Where things live
//!
//! | path | job | touch it to |
//! |---|---|---|
//! | [`workload`] | the storage workloads (append, read, trim, reopen) over any backend | add a storage workload |
//! | [`replica`], [`omni`] | the in-process 3-replica clusters, paxstore's and OmniPaxos' | change the replica driver |
//! | [`tcp_cluster`] | three `paxstore-node` processes over TCP, and its report section | |
//! | [`ceiling`] | the disk's synced-write ceiling | |
//! | [`stats`], [`machine`] | percentiles and summaries; the machine description | |
//! | [`report`] (`src/report/`) | data model, conclusions, Markdown, charts, HTML, CI check | add a column, a table, a chart |
//! | [`runner`] (`src/runner/`) | the report's matrix, plan, execution, rows, files | add a workload to the report |
//! | `src/bin/` | the `report` and `check-report` binaries | a command-line flag |
//! | `benches/` | the criterion benches | a criterion bench |
//!
//! A new backend needs no change in this crate.
//!
//! ## How figures are taken
//!
//! - A batch of entries is built **before** its timer starts; the timer covers exactly
//!   one `write_atomically` (or one getter call), so entries/s is storage time only.
//! - Every cell runs in a fresh directory on the disk under test, is repeated a few
//!   times, and reports the median of the repetitions (and their spread). The backends
//!   of one comparison take turns repetition by repetition, so a noisy minute on a
//!   shared disk hits all of them alike.
//! - Durable figures are shown beside the disk's own ceiling measured in the same run:
//!   a loop of 4 KiB `pwrite` + `fdatasync` on a preallocated, already-written file,
//!   sampled in every round of every durable comparison.

pub mod ceiling;
pub mod error;
pub mod floor;
pub mod machine;
pub mod omni;
pub mod replica;
pub mod report;
pub mod runner;
pub mod stats;
pub mod tcp_cluster;
pub mod workload;

pub use error::BenchError;
pub use workload::BenchEntry;
