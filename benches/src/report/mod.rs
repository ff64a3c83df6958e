//! The report: its data model (`report.json`), what it concludes from the figures, its
//! Markdown, charts and HTML, and the check CI runs on it.
//!
//! Every conclusion (which backend for which need, the WAL's targets, the ratios) is
//! computed from the rows of the same run; none is written by hand.
//!
//! | file | job | touch it to |
//! |---|---|---|
//! | `model.rs` | [`Report`] and its rows: the JSON layout, [`SCHEMA_VERSION`] | add a column (then fill it in `runner/record.rs`) |
//! | `recommend.rs` | [`recommendations`]: which backend for which need | add a need |
//! | `targets.rs` | [`wal_targets`]: the WAL's targets against this run | add a target |
//! | `markdown.rs` | [`to_markdown`]: the sections in order, the storage and reopen tables | add a section or a storage column |
//! | `replica_tables.rs` | the replica tables: vs OmniPaxos, OmniPaxos on the WAL, every cell | add a replica column |
//! | `charts.rs` | [`CHARTS`] and [`charts::all_charts`]: the SVG charts | add a chart |
//! | `html.rs` | [`html::to_html`]: `index.html` from the Markdown, charts inline | change the page |
//! | `fmt.rs` | number formatting | |
//! | `check.rs` | [`missing`]: what a complete report must hold (`check-report`) | expect a new cell family |
//!
//! A backend needs nothing here: every backend `paxstore-backends` compiles in is a row of
//! every table (the runner's plan, `runner/plan.rs`, decides which cells it joins).

pub mod charts;
mod check;
mod fmt;
pub mod html;
mod markdown;
mod model;
mod recommend;
mod replica_tables;
mod targets;

#[cfg(test)]
pub(crate) mod tests;

pub use charts::CHARTS;
pub use check::missing;
pub use fmt::{fmt_device_writes, fmt_num, fmt_pct, fmt_per_entry, fmt_ratio};
pub use markdown::{headline_table, to_markdown};
pub use model::{
    Ceiling, DeviceWrites, Failure, PairedRatios, RatioSpread, Recommendation, ReopenRow,
    ReplicaRow, Report, StorageRow, HEADLINE_ENTRY_BYTES, OMNI_MEMORY_NAME, SCHEMA_VERSION,
};
pub use recommend::recommendations;
pub use replica_tables::{omnipaxos_table, omnipaxos_wal_table, replica_table, target_table};
pub use targets::{wal_targets, Target};
