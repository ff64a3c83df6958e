//! The mmap WAL against its targets (issues 4 and 14), side by side in one run with the
//! disk's raw ceiling, RocksDB (sync writes), redb (reopen) and the memory backend (reads),
//! 128-byte entries.
//!
//! ```text
//! CARGO_TARGET_DIR=$HOME/.cache/paxstore-target cargo bench -p paxstore-benches --bench wal_targets
//! ```
//!
//! Environment: `WAL_TARGETS_DIR` (directory on the disk under test, default `/var/tmp`),
//! `WAL_TARGETS_REPS` (repetitions per cell, default 3), `WAL_TARGETS_REOPEN_ENTRIES`
//! (default 1,000,000), `WAL_TARGETS_ONLY` (comma-separated groups: `ceiling`, `append`,
//! `wear`, `reopen`; default all). Each cell reports the median over the repetitions and the
//! spread (min-max). The timer covers only the storage calls: batches are built before.
//!
//! Entries are the report's [`BenchEntry`] (a 128-byte payload serialized as one byte
//! string), so these figures and the report's measure the same thing. The reopen cells
//! write a fresh log per repetition (`Immediate`, 1,000 entries per batch, as the report
//! does), close it (the WAL seals its active segment at close), and time its first reopen
//! and then a second one; a last row times the WAL's worst case, a reopen after a crash
//! (no seal at close) with the active segment, replayed record by record, nearly full
//! (FORMAT.md, "Seals").
//!
//! Issue 14's rows: the WAL's syncs per commit and bytes per sync at 100 entries per batch
//! (from `WalStorage::stats`), the bytes each engine sent to the block device per payload
//! byte (its sectors-written counter around the cell, idle baseline subtracted; the WAL with
//! and without zeros ahead of the tail, each log left to grow and trimmed as it grows), reopen against redb and RocksDB, recent reads against the memory
//! backend, and the cost of the map's guards at open (one `SEEK_DATA`/`SEEK_HOLE` pass
//! per segment).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use paxstore::{Durability, Storage};
use paxstore_backends::wal::WalStorage;
use paxstore_benches::report::DeviceWrites;
use paxstore_benches::runner::Device;
use paxstore_benches::BenchEntry;

#[path = "wal_targets/cells.rs"]
mod cells;

use cells::*;

fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("wal_targets: bench");
        return;
    }
    let root = std::env::var("WAL_TARGETS_DIR").unwrap_or_else(|_| "/var/tmp".to_owned());
    let root = Path::new(&root);
    let reps = env_usize("WAL_TARGETS_REPS", 3);
    let reopen_n = env_usize("WAL_TARGETS_REOPEN_ENTRIES", 1_000_000);
    println!("wal_targets: {reps} repetitions per cell, in {}, 128-byte entries", root.display());
    println!("{:<52} {:>12} {:<10}", "cell", "median", "unit");
    let none = stat(Vec::new());

    let cell = |f: &dyn Fn(&Path) -> f64| {
        stat((0..reps).map(|_| f(tempfile::tempdir_in(root).unwrap().path())).collect())
    };
    let mut ceiling = none;
    if wanted("ceiling") {
        ceiling = cell(&|d| ceiling_pwrite(d, 3000, 4096));
        show("ceiling: 4 KiB pwrite + fdatasync (pre-written)", "ops/s", ceiling);
        show(
            "  pwrite 128 B + fdatasync (pre-written)",
            "ops/s",
            cell(&|d| ceiling_pwrite(d, 3000, 128)),
        );
        show(
            "  4 KiB memcpy into mmap + msync(MS_SYNC)",
            "ops/s",
            cell(&|d| ceiling_msync(d, 1500, 4096)),
        );
        show(
            "  128 B memcpy into mmap + msync(MS_SYNC)",
            "ops/s",
            cell(&|d| ceiling_msync(d, 1500, 128)),
        );
    }

    let (mut w1, mut w100, mut r100, mut wb) = (none, none, none, none);
    if wanted("append") {
        w1 = append_cell(root, Engine::Wal, Durability::Immediate, 3000, 1, reps);
        show("wal immediate, 1 entry/batch", "batches/s", w1);
        let r1 = append_cell(root, Engine::Rocks, Durability::Immediate, 3000, 1, reps);
        show("rocksdb sync, 1 entry/batch", "batches/s", r1);
        w100 = append_cell(root, Engine::Wal, Durability::Immediate, 1000, 100, reps);
        show("wal immediate, 100 entries/batch", "entries/s", w100);
        let nz1 = append_cell(root, Engine::WalNoZeros, Durability::Immediate, 3000, 1, reps);
        show("  no zeros ahead, 1 entry/batch", "batches/s", nz1);
        let nz100 = append_cell(root, Engine::WalNoZeros, Durability::Immediate, 1000, 100, reps);
        show("  no zeros ahead, 100 entries/batch", "entries/s", nz100);
        r100 = append_cell(root, Engine::Rocks, Durability::Immediate, 1000, 100, reps);
        show("rocksdb sync, 100 entries/batch", "entries/s", r100);
        wb = append_cell(root, Engine::Wal, Durability::Buffered, 1000, 1000, reps);
        show("wal buffered, 1000 entries/batch", "entries/s", wb);
        let rb = append_cell(root, Engine::Rocks, Durability::Buffered, 1000, 1000, reps);
        show("rocksdb no-sync, 1000 entries/batch", "entries/s", rb);
    }

    // Issue 14: where a durable 100-entry commit's syncs and bytes go, and what each
    // engine sends to the device per payload byte.
    let (mut syncs_per_commit, mut bytes_per_sync) = (none, none);
    let mut wear = Vec::new();
    if wanted("wear") {
        let (mut syncs, mut bytes) = (Vec::new(), Vec::new());
        for _ in 0..reps {
            let dir = tempfile::tempdir_in(root).unwrap();
            let mut w =
                WalStorage::<BenchEntry>::open(&dir.path().join("wal"), Durability::Immediate)
                    .unwrap();
            let before = w.stats();
            for b in 0..1000 {
                w.write_atomically(batch(b * 100, 100)).unwrap();
            }
            let after = w.stats();
            let n = (after.syncs - before.syncs) as f64;
            syncs.push(n / 1000.0);
            bytes.push((after.bytes_written - before.bytes_written) as f64 / n);
        }
        syncs_per_commit = stat(syncs);
        bytes_per_sync = stat(bytes);
        show_f("wal immediate 100/batch: syncs per commit", "syncs", syncs_per_commit, 3);
        show("wal immediate 100/batch: bytes written per sync", "bytes", bytes_per_sync);
        let Some(device) = Device::of(root) else {
            panic!("no block device found under {} for the wear cells", root.display())
        };
        println!(
            "  (device bytes from {}: every process's writes, an upper bound)",
            device.stat_path().display()
        );
        for trimmed in [false, true] {
            let commits = if trimmed { 3000 } else { 1000 };
            for (engine, zero_ahead) in [
                (Engine::Wal, true),
                (Engine::Wal, false),
                (Engine::Rocks, true),
                (Engine::Redb, true),
            ] {
                if !engine.built() {
                    continue;
                }
                let w = Wear { engine, zero_ahead, trimmed };
                let cells: Vec<DeviceWrites> =
                    (0..reps).map(|_| wear_cell(&device, root, w, commits)).collect();
                let of = |f: fn(&DeviceWrites) -> Option<f64>| {
                    stat(cells.iter().filter_map(f).collect())
                };
                let amp = of(DeviceWrites::amplification);
                let label = format!("{} immediate 100/batch, {commits} commits", w.label());
                show_f(&format!("{label}: device B / payload B"), "", amp, 2);
                show_f(
                    "    idle baseline (other processes, same length), per payload B",
                    "",
                    of(DeviceWrites::noise),
                    2,
                );
                if engine == Engine::Wal {
                    show_f(
                        "    own bytes written per payload B",
                        "",
                        of(DeviceWrites::own_amplification),
                        2,
                    );
                }
                if !trimmed && (engine != Engine::Wal || zero_ahead) {
                    wear.push((engine, amp));
                }
            }
        }
    }

    // Reopen and recent reads of a 1,000,000-entry log, written afresh for every
    // repetition; the engines alternate within a repetition.
    let engines = [Engine::Wal, Engine::Rocks, Engine::Redb];
    let (mut first, mut again, mut reads) =
        ([vec![], vec![], vec![]], [vec![], vec![], vec![]], [vec![], vec![], vec![]]);
    let (mut memory_reads, mut guard_us, mut segments) = (Vec::new(), Vec::new(), 0);
    let (mut full_wal, mut full_n) = (Vec::new(), 0);
    if wanted("reopen") {
        for _ in 0..reps {
            for (k, engine) in engines.into_iter().enumerate() {
                if !engine.built() {
                    continue;
                }
                let dir = tempfile::tempdir_in(root).unwrap();
                let path = dir.path().join(engine.name());
                fill(&path, engine, reopen_n, Durability::Immediate);
                let (ms, s) = reopen_ms(&path, engine, reopen_n);
                first[k].push(ms);
                drop(s);
                let (ms, s) = reopen_ms(&path, engine, reopen_n);
                again[k].push(ms);
                reads[k].push(recent_reads(&s, reopen_n));
                if engine == Engine::Wal {
                    drop(s);
                    let (us, n) = guard_pass_us(&path);
                    guard_us.push(us);
                    segments = n;
                }
            }
            // The worst case: after a crash (no seal at close), the active segment
            // (replayed record by record) nearly full.
            let dir = tempfile::tempdir_in(root).unwrap();
            let path = dir.path().join("wal-full");
            full_n = fill_wal_active_full(&path, reopen_n);
            reopen_crashed_wal_ms(&path, full_n);
            full_wal.push(reopen_crashed_wal_ms(&path, full_n));
            let dir = tempfile::tempdir_in(root).unwrap();
            let mut memory = Engine::Memory.open(dir.path(), Durability::Immediate);
            for b in 0..reopen_n / 1000 {
                memory.write_atomically(batch((b * 1000) as u64, 1000)).unwrap();
            }
            memory_reads.push(recent_reads(&memory, reopen_n));
        }
        for (k, engine) in engines.into_iter().enumerate() {
            show(
                &format!("{} first reopen of {reopen_n} entries", engine.name()),
                "ms",
                stat(first[k].clone()),
            );
            show(&format!("{} second reopen", engine.name()), "ms", stat(again[k].clone()));
        }
        show(
            &format!("wal reopen after a crash, {full_n} entries, active segment full"),
            "ms",
            stat(full_wal.clone()),
        );
        show(
            &format!("wal open's hole guard: SEEK_DATA/SEEK_HOLE over {segments} segments"),
            "us",
            stat(guard_us.clone()),
        );
        for (k, engine) in engines.into_iter().enumerate() {
            show(
                &format!("{} get_entries(100 recent)", engine.name()),
                "entries/s",
                stat(reads[k].clone()),
            );
        }
        show("memory get_entries(100 recent)", "entries/s", stat(memory_reads.clone()));
    }
    let [wf, rf, df] = first.map(stat);
    let [wa, ra, da] = again.map(stat);
    let [wr, rr, _] = reads.map(stat);
    let mr = stat(memory_reads);

    println!("\ntargets (medians):");
    let r = w1.median / ceiling.median;
    println!(
        "  immediate 1/batch >= 90% of ceiling: {:.0}% -> {}",
        r * 100.0,
        verdict(r, r >= 0.9)
    );
    ratio_line("immediate 100/batch vs rocksdb, entries/s", w100.median / r100.median, 2.5);
    println!(
        "    at the disk's ceiling: {:.3} syncs per commit, {:.0} bytes per sync, ceiling {:.0} syncs/s -> at most {:.0} entries/s",
        syncs_per_commit.median,
        bytes_per_sync.median,
        ceiling.median,
        ceiling.median / syncs_per_commit.median * 100.0
    );
    println!(
        "  buffered 1000/batch >= 3M entries/s: {:.2}M -> {}",
        wb.median / 1e6,
        verdict(wb.median, wb.median >= 3e6)
    );
    let best_other = |w: Stat, others: [Stat; 2]| {
        others.iter().map(|s| s.median).fold(f64::INFINITY, f64::min) / w.median
    };
    ratio_line(
        "first reopen: fastest of redb/rocksdb ms / wal ms (wal first)",
        best_other(wf, [rf, df]),
        1.0,
    );
    ratio_line(
        "second reopen: fastest of redb/rocksdb ms / wal ms (wal first)",
        best_other(wa, [ra, da]),
        1.0,
    );
    ratio_line(
        "worst case (active segment full): fastest other second reopen / wal ms",
        best_other(stat(full_wal), [ra, da]),
        1.0,
    );
    ratio_line("get_entries(100 recent) vs rocksdb, entries/s", wr.median / rr.median, 5.0);
    ratio_line("get_entries(100 recent) vs memory, entries/s", wr.median / mr.median, 0.9);
    // Each repetition's device figure is an upper bound (other processes add to the
    // counter): compare the lowest repetitions.
    let wal_wear = wear.iter().find(|(e, _)| *e == Engine::Wal).map_or(f64::NAN, |(_, s)| s.min);
    let lowest = wear.iter().all(|(_, s)| s.min >= wal_wear);
    println!(
        "  device bytes per payload byte, 100/batch (lowest repetition): wal {wal_wear:.2}, lowest of the durable engines -> {}",
        verdict(wal_wear, lowest)
    );
}
