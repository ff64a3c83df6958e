//! The WAL under injected faults, torn writes, simulated power loss and corrupted
//! files, through its I/O seam (`FaultIo`).
#![cfg(feature = "fault-injection")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::ErrorKind;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use paxstore::StorageOp::{self, *};
use paxstore::{Durability, Storage, StorageError};
use paxstore_backends::wal::{Fault, FaultIo, WalOptions, WalStorage};
use paxstore_conformance::{compare, crash, Model, TestEntry};

type Wal = WalStorage<TestEntry>;

const SEG: u64 = 1 << 20;

/// These tests take a dropped WAL's files as a crash leaves them and edit them, so a drop
/// must not write: no seal at close (`seal_on_close`, tested on its own at the end).
fn opts(d: Durability) -> WalOptions {
    WalOptions::new(d).segment_bytes(SEG).max_segment_bytes(SEG).seal_on_close(false)
}

fn open_fault(dir: &Path, d: Durability) -> (Wal, Arc<FaultIo>) {
    let io = Arc::new(FaultIo::new());
    (Wal::open_with(dir, opts(d), io.clone()).unwrap(), io)
}

fn open(dir: &Path, d: Durability) -> Wal {
    Wal::open_with_options(dir, opts(d)).unwrap()
}

/// Writes batches `from..to` of the crash harness's deterministic stream, keeping the
/// model in step (refused batches change neither).
fn run_batches(wal: &mut Wal, model: &mut Model, seed: u64, range: std::ops::Range<u64>) {
    run_batches_trimming(wal, model, seed, range, 1);
}

/// [`run_batches`], but only every `trim_every`-th batch keeps its trims and
/// compactions, so the log (and the number of live segments) grows.
fn run_batches_trimming(
    wal: &mut Wal,
    model: &mut Model,
    seed: u64,
    range: std::ops::Range<u64>,
    trim_every: u64,
) {
    for i in range {
        let mut ops = crash::batch(seed, i, model);
        if i % trim_every != 0 {
            ops.retain(|op| !matches!(op, Trim(_) | SetCompactedIdx(_)));
            if ops.is_empty() {
                continue;
            }
        }
        let expect = model.clone().apply_batch(&ops);
        let got = wal.write_atomically(ops.clone());
        assert_eq!(got.is_ok(), expect.is_ok(), "batch {i}: {got:?}");
        if got.is_ok() {
            model.apply_batch(&ops).unwrap();
        }
    }
}

fn same(wal: &Wal, model: &Model) -> bool {
    compare(wal, model).is_ok()
}

fn small_batch(model: &Model, id: u64) -> Vec<StorageOp<TestEntry>> {
    vec![
        AppendEntries((0..3).map(|k| TestEntry::new(id + k, 100)).collect()),
        SetDecidedIndex(model.log_end() + 1),
    ]
}

#[test]
fn torn_last_record_at_every_byte_reopens_without_it() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, io) = open_fault(dir.path(), Durability::Immediate);
    let mut model = Model::default();
    run_batches(&mut wal, &mut model, 7, 0..40);
    let before = model.clone();
    let ops = small_batch(&model, 1_000_000);
    model.apply_batch(&ops).unwrap();
    wal.write_atomically(ops).unwrap();
    let last = io.writes().pop().unwrap();
    drop(wal);
    let file = std::fs::OpenOptions::new().read(true).write(true).open(&last.path).unwrap();
    let mut record = vec![0u8; last.len];
    file.read_exact_at(&mut record, last.offset).unwrap();
    // Payload end: the record length field (offset 4) plus the 24-byte header.
    let framed = 24 + u32::from_le_bytes(record[4..8].try_into().unwrap()) as usize;
    assert!(framed <= record.len() && record.len() - framed < 8);
    for keep in 0..=record.len() {
        let mut torn = record.clone();
        torn[keep..].fill(0);
        file.write_all_at(&torn, last.offset).unwrap();
        let wal = open(dir.path(), Durability::Immediate);
        // Trailing zero bytes of the record were "written" already by the zero fill.
        let expect = if torn[..framed] != record[..framed] { &before } else { &model };
        if let Err(e) = compare(&wal, expect) {
            panic!("torn at byte {keep} of {}: {e}", record.len());
        }
    }
    // Out-of-order sectors: the tail of the record reached the disk, its head did not.
    for lost in [1, 8, 24, 200] {
        let mut torn = record.clone();
        torn[..lost.min(record.len())].fill(0);
        file.write_all_at(&torn, last.offset).unwrap();
        let wal = open(dir.path(), Durability::Immediate);
        compare(&wal, &before).unwrap();
    }
    // After a cut tail the WAL keeps working.
    let mut wal = open(dir.path(), Durability::Immediate);
    let mut model = before;
    run_batches(&mut wal, &mut model, 8, 0..20);
    drop(wal);
    compare(&open(dir.path(), Durability::Immediate), &model).unwrap();
}

/// Random batches, power loss (everything unsynced is undone, the newest write
/// possibly torn), reopen: Immediate keeps every acknowledged batch; Buffered a prefix.
fn power_loss_rounds(options: WalOptions) {
    let d = options.durability;
    let dir = tempfile::tempdir().unwrap();
    let mut model = Model::default();
    let mut states = vec![model.clone()];
    let mut next = 0u64;
    for round in 0..25u64 {
        let io = Arc::new(FaultIo::new());
        let mut wal = Wal::open_with(dir.path(), options, io.clone()).unwrap();
        if d == Durability::Buffered {
            // What reopened is the new baseline: forget the states that were lost.
            states = vec![model.clone()];
        }
        let n = 1 + (round * 7919) % 30;
        for _ in 0..n {
            run_batches(&mut wal, &mut model, 11, next..next + 1);
            next += 1;
            states.push(model.clone());
        }
        compare(&wal, &model).unwrap_or_else(|e| panic!("round {round}: live state: {e}"));
        drop(wal);
        let unsynced = io.unsynced_writes();
        io.power_loss_partial((round as usize * 13) % (unsynced + 1), (round as usize * 37) % 300)
            .unwrap();
        let wal = Wal::open_with_options(dir.path(), options).unwrap();
        match d {
            Durability::Immediate => compare(&wal, &model)
                .unwrap_or_else(|e| panic!("round {round}: acknowledged batch lost: {e}")),
            _ => {
                let k = states
                    .iter()
                    .rposition(|s| same(&wal, s))
                    .unwrap_or_else(|| panic!("round {round}: not a prefix of the batches"));
                model = states[k].clone();
            }
        }
    }
}

#[test]
fn power_loss_keeps_every_acknowledged_batch_when_immediate() {
    power_loss_rounds(opts(Durability::Immediate));
}

/// Recovery does not depend on the zeros written ahead of the tail (FORMAT.md): without
/// them, the bytes past the tail of a new segment are holes, and a torn write lands in one.
#[test]
fn power_loss_keeps_every_acknowledged_batch_without_zeros_ahead() {
    power_loss_rounds(opts(Durability::Immediate).zero_ahead(false));
}

#[test]
fn power_loss_keeps_a_prefix_of_batches_when_buffered() {
    power_loss_rounds(opts(Durability::Buffered));
}

/// With `zero_ahead` (the default) the WAL writes zeros ahead of the tail of new segments;
/// without it, it writes its records and segment headers and nothing else (the counter
/// the report's "own B / payload B" column reads).
#[test]
fn zeros_ahead_are_the_only_bytes_besides_records_and_headers() {
    for zero_ahead in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let options = opts(Durability::Immediate).zero_ahead(zero_ahead);
        let mut wal = Wal::open_with_options(dir.path(), options).unwrap();
        let mut model = Model::default();
        // Trims dropped: the log grows over several new segments, none recycled.
        run_batches_trimming(&mut wal, &mut model, 5, 1..400, u64::MAX);
        let s = wal.stats();
        assert!(s.segments_created >= 3 && s.segments_recycled == 0, "{s:?}");
        let besides = s.bytes_written - s.record_bytes - 32 * s.segments_created;
        if zero_ahead {
            assert!(besides >= SEG, "zero_ahead: {besides} bytes of zeros, {s:?}");
        } else {
            assert_eq!(besides, 0, "no zeros ahead, yet {besides} other bytes: {s:?}");
        }
        drop(wal);
        compare(&open(dir.path(), Durability::Immediate), &model).unwrap();
    }
}

/// Fails the n-th I/O call of one batch (that rolls over into a new segment and trims
/// the old ones) for every n: the batch either fails and leaves no trace, in memory or
/// after a reopen (also after a power loss), or succeeds whole.
fn fail_each_call(fault: impl Fn(u64) -> Fault) {
    for n in 1u64.. {
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, io) = open_fault(dir.path(), Durability::Immediate);
        let mut model = Model::default();
        // Fill most of the first segment.
        let big: Vec<_> = (0..5).map(|k| TestEntry::new(k, 150_000)).collect();
        wal.write_atomically(vec![AppendEntries(big.clone())]).unwrap();
        model.apply_batch(&[AppendEntries(big)]).unwrap();
        let ops = vec![
            Trim(5),
            AppendEntries((0..4).map(|k| TestEntry::new(100 + k, 100_000)).collect()),
            SetDecidedIndex(7),
        ];
        let before = model.clone();
        let mut after = model.clone();
        after.apply_batch(&ops).unwrap();
        let calls = io.calls();
        io.fail_call(calls + n, fault(n));
        let result = wal.write_atomically(ops);
        let used = io.calls() - calls;
        match &result {
            Ok(()) => compare(&wal, &after).unwrap(),
            Err(e) => compare(&wal, &before).unwrap_or_else(|m| panic!("call {n}: {e}: {m}")),
        }
        let mut expect = if result.is_ok() { after.clone() } else { before.clone() };
        if result.is_err() && wal.poisoned().is_none() {
            // The log stays usable, also for a batch small enough for the old segment
            // (after a failed rollover it rolls over again: FORMAT.md, commit protocol).
            let small = small_batch(&expect, 1_000);
            wal.write_atomically(small.clone())
                .unwrap_or_else(|e| panic!("call {n}: the write after the failure: {e}"));
            expect.apply_batch(&small).unwrap();
            compare(&wal, &expect).unwrap_or_else(|m| panic!("call {n}, after: {m}"));
        }
        drop(wal);
        io.power_loss().unwrap_or_else(|e| panic!("call {n}: power loss: {e}"));
        let reopened = open(dir.path(), Durability::Immediate);
        compare(&reopened, &expect).unwrap_or_else(|m| panic!("call {n} ({result:?}): {m}"));
        reopened.verify().unwrap_or_else(|e| panic!("call {n}: {e}"));
        if used < n {
            // The batch no longer reached call n: every call was covered.
            assert!(result.is_ok());
            assert!(n > 5, "the batch should take several calls, took {used}");
            break;
        }
    }
}

#[test]
fn failing_any_call_of_a_batch_changes_nothing() {
    fail_each_call(|_| Fault::Fail(ErrorKind::Other));
}

#[test]
fn tearing_any_write_of_a_batch_changes_nothing() {
    fail_each_call(|n| Fault::Tear((n as usize * 131) % 4000));
}

#[test]
fn failed_sync_poisons_until_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, io) = open_fault(dir.path(), Durability::Immediate);
    wal.append_entry(TestEntry::new(1, 10)).unwrap();
    // A one-entry batch is: a write, then a sync.
    io.fail_call(io.calls() + 2, Fault::Fail(ErrorKind::Other));
    assert!(matches!(wal.append_entry(TestEntry::new(2, 10)), Err(StorageError::Io { .. })));
    assert!(wal.poisoned().is_some());
    assert!(matches!(wal.append_entry(TestEntry::new(3, 10)), Err(StorageError::Poisoned { .. })));
    assert_eq!(wal.get_log_len().unwrap(), 1);
    drop(wal);
    let mut wal = open(dir.path(), Durability::Immediate);
    assert_eq!(wal.get_entries(0, 1).unwrap(), vec![TestEntry::new(1, 10)]);
    wal.append_entry(TestEntry::new(4, 10)).unwrap();
    assert_eq!(wal.get_log_len().unwrap(), 2);
}

#[test]
fn disk_full_is_a_typed_error_and_the_log_stays_usable() {
    for d in [Durability::Immediate, Durability::Buffered] {
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, io) = open_fault(dir.path(), d);
        let mut model = Model::default();
        run_batches(&mut wal, &mut model, 3, 0..30);
        io.fail_from(io.calls() + 1, Fault::Fail(ErrorKind::StorageFull));
        for k in 0..20 {
            // Large batches, so some also need a new segment.
            let ops = vec![AppendEntries(vec![TestEntry::new(9_000 + k, 200_000)])];
            match wal.write_atomically(ops) {
                Err(StorageError::Io { source, .. }) => {
                    assert_eq!(source.kind(), ErrorKind::StorageFull)
                }
                other => panic!("expected a full disk, got {other:?}"),
            }
            compare(&wal, &model).unwrap();
        }
        assert!(wal.poisoned().is_none());
        io.heal();
        run_batches(&mut wal, &mut model, 4, 0..30);
        drop(wal);
        compare(&open(dir.path(), d), &model).unwrap();
    }
}

#[test]
fn too_large_input_is_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, io) = open_fault(dir.path(), Durability::Immediate);
    wal.append_entry(TestEntry::new(1, 10)).unwrap();
    let calls = io.calls();
    let huge = vec![AppendEntries(vec![TestEntry::new(2, SEG as usize)])];
    assert!(matches!(wal.write_atomically(huge), Err(StorageError::TooLarge { .. })));
    let snapshot = paxstore_conformance::TestSnapshot::default();
    let ok = vec![SetSnapshot(Some(snapshot))];
    wal.write_atomically(ok).unwrap();
    let stopsign = paxstore::StopSign {
        next_config: paxstore::ClusterConfig::default(),
        metadata: Some(vec![7; SEG as usize / 3]),
    };
    let calls2 = io.calls();
    let r = wal.write_atomically(vec![SetStopsign(Some(stopsign))]);
    assert!(matches!(r, Err(StorageError::TooLarge { .. })), "{r:?}");
    assert_eq!(io.calls(), calls2);
    assert!(calls < calls2);
    assert_eq!(wal.get_log_len().unwrap(), 1);
    assert_eq!(wal.get_stopsign().unwrap(), None);
}

#[test]
fn trimming_as_the_log_grows_bounds_disk_use() {
    let dir = tempfile::tempdir().unwrap();
    let seg = 64 << 10;
    let options = WalOptions::new(Durability::Immediate).segment_bytes(seg);
    let mut wal = Wal::open_with_options(dir.path(), options).unwrap();
    let dir_bytes = || -> u64 {
        std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().metadata().unwrap().len()).sum()
    };
    let mut max = 0;
    for i in 0..3_000u64 {
        wal.append_entry(TestEntry::new(i, 300)).unwrap();
        if i % 10 == 9 {
            let end = wal.get_log_end().unwrap();
            wal.trim(end.saturating_sub(40)).unwrap();
        }
        max = max.max(dir_bytes());
    }
    // ~1 MiB was written; at most the live segments (40 entries ~ 14 KiB), the active
    // one and a spare stay.
    assert!(max <= 4 * seg, "disk use reached {max} bytes");
    assert!(wal.segment_count() <= 4, "{} segments", wal.segment_count());
    let (len, start) = (wal.get_log_len().unwrap(), wal.get_compacted_idx().unwrap());
    let tail = wal.get_entries(start, start + len).unwrap();
    drop(wal);
    let wal = Wal::open_with_options(dir.path(), options).unwrap();
    assert_eq!(wal.get_entries(start, start + len).unwrap(), tail);
}

fn segment_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "wal"))
        .collect();
    v.sort();
    v
}

fn corrupt_at(path: &Path, offset: u64) {
    let f = std::fs::OpenOptions::new().read(true).write(true).open(path).unwrap();
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, offset).unwrap();
    f.write_all_at(&[b[0] ^ 0x40], offset).unwrap();
}

fn expect_corruption(dir: &Path, name: &str) {
    match Wal::open_with_options(dir, opts(Durability::Immediate)) {
        Err(StorageError::Corruption { location, detail }) => {
            assert!(location.contains(name), "{location}: {detail}")
        }
        other => panic!("expected Corruption naming {name}, got {:?}", other.map(|_| ())),
    }
}

/// Opens `dir` with `verify_on_open` (and a seal at close): refused with a `Corruption`
/// naming segment `name`, and the segments left byte for byte as they were (the refused
/// instance's drop does not seal the active segment).
fn expect_verifying_open_refused(dir: &Path, name: &str) {
    let files = || -> Vec<(std::path::PathBuf, Vec<u8>)> {
        segment_files(dir).into_iter().map(|p| (p.clone(), std::fs::read(&p).unwrap())).collect()
    };
    let before = files();
    let verifying = opts(Durability::Immediate).verify_on_open(true).seal_on_close(true);
    match Wal::open_with_options(dir, verifying) {
        Err(StorageError::Corruption { location, .. }) => {
            assert!(location.contains(name), "{location} does not name {name}")
        }
        other => panic!("expected Corruption naming {name}, got {:?}", other.map(drop)),
    }
    assert!(files() == before, "a refused verifying open changed the segments");
}

#[test]
fn corruption_before_the_tail_is_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut wal = open(dir.path(), Durability::Immediate);
    for i in 0..100u64 {
        let entries = (0..10).map(|k| TestEntry::new(i * 10 + k, 2_000)).collect();
        wal.append_entries(entries).unwrap();
    }
    let (segs, _spare) = wal.segment_paths();
    drop(wal);
    assert!(segs.len() >= 2, "{segs:?}");
    let name = |p: &Path| p.file_name().unwrap().to_string_lossy().into_owned();
    // A flipped bit in a record of an earlier segment.
    let copy = tempfile::tempdir().unwrap();
    let all = segment_files(dir.path());
    let copy_all = |to: &Path| {
        for p in &all {
            std::fs::copy(p, to.join(p.file_name().unwrap())).unwrap();
        }
    };
    copy_all(copy.path());
    corrupt_at(&copy.path().join(name(&segs[0])), 100_000);
    // The segment is sealed, so `open` does not read its records; the first read from it
    // verifies them, and so does `verify`, and `open` with `verify_on_open`.
    let wal = open(copy.path(), Durability::Immediate);
    assert_eq!(wal.unverified_segments(), segs.len() - 1);
    let is_named = |r: Result<(), StorageError>| match r {
        Err(StorageError::Corruption { location, .. }) => location.contains(&name(&segs[0])),
        _ => false,
    };
    assert!(is_named(wal.get_entries(0, 1).map(drop)));
    assert!(is_named(wal.get_entries(0, 1).map(drop)), "the outcome is kept");
    assert!(is_named(wal.verify()));
    drop(wal);
    expect_verifying_open_refused(copy.path(), &name(&segs[0]));
    // A flipped bit in an early record of the tail segment: records follow it.
    let copy = tempfile::tempdir().unwrap();
    copy_all(copy.path());
    let last = copy.path().join(name(&segs[segs.len() - 1]));
    corrupt_at(&last, 200);
    expect_corruption(copy.path(), &name(&segs[segs.len() - 1]));
    // A zeroed block in the middle of the tail segment.
    let copy = tempfile::tempdir().unwrap();
    copy_all(copy.path());
    let last = copy.path().join(name(&segs[segs.len() - 1]));
    let f = std::fs::OpenOptions::new().write(true).open(&last).unwrap();
    f.write_all_at(&[0u8; 4096], 4096).unwrap();
    expect_corruption(copy.path(), &name(&segs[segs.len() - 1]));
    // A lost segment holding live entries.
    let copy = tempfile::tempdir().unwrap();
    copy_all(copy.path());
    std::fs::remove_file(copy.path().join(name(&segs[0]))).unwrap();
    assert!(matches!(
        Wal::open_with_options(copy.path(), opts(Durability::Immediate)),
        Err(StorageError::Corruption { .. })
    ));
    // A bad segment header.
    let copy = tempfile::tempdir().unwrap();
    copy_all(copy.path());
    corrupt_at(&copy.path().join(name(&segs[0])), 3);
    expect_corruption(copy.path(), &name(&segs[0]));
    // The untouched original still opens.
    assert_eq!(open(dir.path(), Durability::Immediate).get_log_len().unwrap(), 1_000);
}

/// With `Immediate`, every segment is sealed when the log rolls over; a reopen takes
/// the sealed segments from their seals (without reading their records) and must give
/// exactly the state replaying every record gives, for every op kind, including
/// `AppendOnPrefix` cutting into sealed segments and trims.
#[test]
fn sealed_segments_reopen_to_the_same_state() {
    for seed in 0..6 {
        let dir = tempfile::tempdir().unwrap();
        let mut wal = open(dir.path(), Durability::Immediate);
        let mut model = Model::default();
        run_batches_trimming(&mut wal, &mut model, seed, 0..400, 50);
        let live = wal.segment_paths().0.len();
        assert!(live >= 3, "seed {seed}: only {live} live segments");
        drop(wal);
        let mut wal = open(dir.path(), Durability::Immediate);
        assert_eq!(wal.unverified_segments(), live - 1, "seed {seed}");
        compare(&wal, &model).unwrap_or_else(|m| panic!("seed {seed}: {m}"));
        wal.verify().unwrap();
        assert_eq!(wal.unverified_segments(), 0);
        // More writes on the recovered log, then a reopen that verifies everything.
        run_batches_trimming(&mut wal, &mut model, seed, 400..800, 50);
        drop(wal);
        let verifying = opts(Durability::Immediate).verify_on_open(true);
        let wal = Wal::open_with_options(dir.path(), verifying).unwrap();
        assert_eq!(wal.unverified_segments(), 0);
        compare(&wal, &model).unwrap_or_else(|m| panic!("seed {seed}, second reopen: {m}"));
    }
}

/// An `AppendOnPrefix` that cuts back into an older, sealed segment, followed by more
/// rollovers: the later seals say which entries of the older ones are still live.
#[test]
fn a_cut_into_sealed_segments_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut wal = open(dir.path(), Durability::Immediate);
    let mut model = Model::default();
    let mut write = |wal: &mut Wal, ops: Vec<StorageOp<TestEntry>>| {
        wal.write_atomically(ops.clone()).unwrap();
        model.apply_batch(&ops).unwrap();
    };
    let ten = |first: u64| {
        AppendEntries((first..first + 10).map(|k| TestEntry::new(k, 10_000)).collect())
    };
    for b in 0..30 {
        write(&mut wal, vec![ten(b * 10)]);
    }
    assert!(wal.segment_paths().0.len() >= 3);
    write(
        &mut wal,
        vec![AppendOnPrefix(15, (0..3).map(|k| TestEntry::new(900 + k, 50)).collect())],
    );
    for b in 0..25 {
        write(&mut wal, vec![ten(1_000 + b * 10)]);
    }
    write(&mut wal, vec![Trim(10), SetDecidedIndex(40)]);
    let live = wal.segment_paths().0.len();
    drop(wal);
    let wal = open(dir.path(), Durability::Immediate);
    assert_eq!(wal.unverified_segments(), live - 1);
    compare(&wal, &model).unwrap();
    wal.verify().unwrap();
}

/// A batch and a checkpoint (stop sign) larger than a normal segment each get a segment
/// of their own size; the log goes on in normal segments after them, and reopens whole.
/// Failing any I/O call of such a rollover changes nothing, and the log stays usable.
#[test]
fn input_larger_than_a_segment_gets_a_segment_of_its_own_size() {
    const SMALL: u64 = 64 << 10;
    let big_batch =
        || vec![AppendEntries((0..3).map(|k| TestEntry::new(500 + k, 100_000)).collect())];
    let big_stopsign = || {
        vec![SetStopsign(Some(paxstore::StopSign {
            next_config: paxstore::ClusterConfig::default(),
            metadata: Some(vec![7; 150_000]),
        }))]
    };
    for n in 1u64.. {
        let dir = tempfile::tempdir().unwrap();
        let options = WalOptions::new(Durability::Immediate).segment_bytes(SMALL);
        let io = Arc::new(FaultIo::new());
        let mut wal = Wal::open_with(dir.path(), options, io.clone()).unwrap();
        let mut model = Model::default();
        let small = small_batch(&model, 1);
        wal.write_atomically(small.clone()).unwrap();
        model.apply_batch(&small).unwrap();
        let calls = io.calls();
        io.fail_call(calls + n, Fault::Fail(ErrorKind::Other));
        let result = wal.write_atomically(big_batch());
        let used = io.calls() - calls;
        io.fail_call(u64::MAX, Fault::Fail(ErrorKind::Other)); // disarmed if not reached
        if result.is_ok() {
            model.apply_batch(&big_batch()).unwrap();
        }
        compare(&wal, &model).unwrap_or_else(|m| panic!("call {n} ({result:?}): {m}"));
        if wal.poisoned().is_none() {
            // A big checkpoint, small batches around another big batch.
            type Step<'a> = &'a dyn Fn(&Model) -> Vec<StorageOp<TestEntry>>;
            let steps: [Step; 4] =
                [&|_| big_stopsign(), &|m| small_batch(m, 2_000), &|_| big_batch(), &|m| {
                    small_batch(m, 3_000)
                }];
            for step in steps {
                let ops = step(&model);
                wal.write_atomically(ops.clone()).unwrap_or_else(|e| panic!("call {n}: {e}"));
                model.apply_batch(&ops).unwrap();
            }
            let sizes: Vec<u64> = segment_files(dir.path())
                .iter()
                .map(|p| std::fs::metadata(p).unwrap().len())
                .collect();
            assert!(sizes.iter().any(|&l| l > SMALL), "{sizes:?}");
            assert!(sizes.contains(&SMALL), "{sizes:?}");
        }
        drop(wal);
        io.power_loss().unwrap_or_else(|e| panic!("call {n}: power loss: {e}"));
        let reopened = Wal::open_with_options(dir.path(), options).unwrap();
        compare(&reopened, &model).unwrap_or_else(|m| panic!("call {n} ({result:?}): {m}"));
        reopened.verify().unwrap();
        if used < n {
            assert!(result.is_ok());
            assert!(n > 5, "the rollover should take several calls, took {used}");
            break;
        }
    }
}

/// `Buffered` writes no seals (they would need the segment synced): a reopen replays
/// every segment.
#[test]
fn buffered_logs_are_replayed_not_sealed() {
    let dir = tempfile::tempdir().unwrap();
    let mut wal = open(dir.path(), Durability::Buffered);
    let mut model = Model::default();
    run_batches_trimming(&mut wal, &mut model, 7, 0..400, 50);
    assert!(wal.segment_paths().0.len() >= 3);
    drop(wal);
    let wal = open(dir.path(), Durability::Immediate);
    assert_eq!(wal.unverified_segments(), 0);
    compare(&wal, &model).unwrap();
}

#[test]
fn foreign_directories_are_unrecognized() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("CURRENT"), b"MANIFEST-000001\n").unwrap();
    assert!(matches!(
        Wal::open(dir.path(), Durability::Immediate),
        Err(StorageError::Unrecognized { .. })
    ));
    let file = dir.path().join("CURRENT");
    assert!(matches!(
        Wal::open(&file, Durability::Immediate),
        Err(StorageError::Unrecognized { .. })
    ));
}

#[test]
fn a_second_instance_is_locked_out() {
    let dir = tempfile::tempdir().unwrap();
    let _wal = open(dir.path(), Durability::Immediate);
    assert!(matches!(
        Wal::open(dir.path(), Durability::Immediate),
        Err(StorageError::Locked { .. })
    ));
}

#[test]
fn reopen_of_a_large_log() {
    let dir = tempfile::tempdir().unwrap();
    let mut wal = Wal::open(dir.path(), Durability::Buffered).unwrap();
    for b in 0..200u64 {
        wal.append_entries((0..1_000).map(|k| TestEntry::new(b * 1_000 + k, 100)).collect())
            .unwrap();
    }
    wal.trim(1_500).unwrap();
    wal.set_decided_idx(150_000).unwrap();
    drop(wal);
    let wal = Wal::open(dir.path(), Durability::Immediate).unwrap();
    assert_eq!(wal.get_log_len().unwrap(), 198_500);
    assert_eq!(wal.get_compacted_idx().unwrap(), 1_500);
    assert_eq!(wal.get_decided_idx().unwrap(), 150_000);
    for i in [1_500, 77_777, 199_999] {
        assert_eq!(wal.get_entries(i, i + 1).unwrap(), vec![TestEntry::new(i as u64, 100)]);
    }
}

#[test]
fn extra_spare_segments_are_dropped_and_numbering_stays_consecutive() {
    let dir = tempfile::tempdir().unwrap();
    let options = WalOptions::new(Durability::Immediate).segment_bytes(64 << 10);
    let mut wal = Wal::open_with_options(dir.path(), options).unwrap();
    let mut model = Model::default();
    let entries: Vec<_> = (0..10).map(|k| TestEntry::new(k, 1_000)).collect();
    wal.append_entries(entries.clone()).unwrap();
    model.apply_batch(&[AppendEntries(entries)]).unwrap();
    let (live, spare) = wal.segment_paths();
    drop(wal);
    // Two empty segments after the live ones, as a crash between preparing spares could
    // leave them.
    let last = live.len() as u64 + u64::from(spare.is_some());
    for seq in [last + 1, last + 2] {
        let path = dir.path().join(paxstore_backends::wal::format::segment_file_name(seq));
        let f = std::fs::File::create(&path).unwrap();
        f.set_len(64 << 10).unwrap();
        f.write_all_at(&paxstore_backends::wal::format::segment_header(seq, 64 << 10), 0).unwrap();
    }
    let mut wal = Wal::open_with_options(dir.path(), options).unwrap();
    compare(&wal, &model).unwrap();
    for i in 0..200u64 {
        let e = TestEntry::new(100 + i, 1_000);
        wal.append_entry(e.clone()).unwrap();
        model.apply_batch(&[AppendEntry(e)]).unwrap();
    }
    compare(&wal, &model).unwrap();
    drop(wal);
    compare(&Wal::open_with_options(dir.path(), options).unwrap(), &model).unwrap();
}

/// `Buffered` batches written across several segments, then `flush`: a power loss keeps
/// every one. Without the `flush` (the check's broken variant) the same power loss loses
/// some, so the check can fail.
fn buffered_batches_then_power_loss(flush: bool) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let mut model = Model::default();
    let (mut wal, io) = open_fault(dir.path(), Durability::Buffered);
    // Enough growth (trims kept on every 7th batch only) to roll over: a flush must sync
    // the segments left behind too, not only the active one.
    run_batches_trimming(&mut wal, &mut model, 11, 0..300, 7);
    assert!(wal.segment_count() > 1, "the batches rolled over");
    if flush {
        wal.flush().unwrap();
        assert_eq!(io.unsynced_writes(), 0, "flush left writes unsynced");
    }
    drop(wal);
    io.power_loss().unwrap();
    compare(&open(dir.path(), Durability::Buffered), &model)
}

#[test]
fn flush_makes_buffered_batches_survive_power_loss() {
    buffered_batches_then_power_loss(true).unwrap();
    assert!(buffered_batches_then_power_loss(false).is_err(), "no flush, yet nothing lost");
}

#[test]
fn failed_flush_poisons_until_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, io) = open_fault(dir.path(), Durability::Buffered);
    wal.append_entry(TestEntry::new(1, 10)).unwrap();
    io.fail_call(io.calls() + 1, Fault::Fail(ErrorKind::Other));
    assert!(matches!(wal.flush(), Err(StorageError::Io { .. })));
    assert!(matches!(wal.flush(), Err(StorageError::Poisoned { .. })));
    assert!(matches!(wal.append_entry(TestEntry::new(2, 10)), Err(StorageError::Poisoned { .. })));
}

/// A log whose active segment is more than an eighth full, dropped: the drop seals the
/// active segment and starts a new one with a checkpoint, so the reopen takes every
/// segment but that new one from its seal, with the same state; the log goes on.
#[test]
fn a_drop_seals_the_active_segment_and_the_reopen_replays_one_record() {
    let dir = tempfile::tempdir().unwrap();
    let options = opts(Durability::Immediate).seal_on_close(true);
    let mut wal = Wal::open_with_options(dir.path(), options).unwrap();
    let mut model = Model::default();
    run_batches_trimming(&mut wal, &mut model, 3, 0..300, 50);
    let (live, _) = wal.segment_paths();
    let seals = wal.stats().seals;
    drop(wal);
    let mut wal = Wal::open_with_options(dir.path(), options).unwrap();
    let (after, _) = wal.segment_paths();
    assert_eq!(after.len(), live.len() + 1, "the drop started a new segment");
    assert_eq!(wal.unverified_segments(), live.len(), "every older segment taken from its seal");
    compare(&wal, &model).unwrap();
    wal.verify().unwrap();
    run_batches_trimming(&mut wal, &mut model, 4, 0..100, 50);
    wal.close().unwrap();
    let wal = Wal::open_with_options(dir.path(), options.verify_on_open(true)).unwrap();
    compare(&wal, &model).unwrap();
    assert!(seals > 0);
    // Without it, the drop leaves the segments as they are.
    drop(wal);
    let plain = opts(Durability::Immediate);
    let wal = Wal::open_with_options(dir.path(), plain).unwrap();
    let (live, _) = wal.segment_paths();
    drop(wal);
    assert_eq!(Wal::open_with_options(dir.path(), plain).unwrap().segment_paths().0, live);
}

/// A close that fails or is cut by a power loss at each of its I/O calls in turn (making
/// the spare, writing and syncing the seal, the checkpoint): the reopen finds every
/// acknowledged batch, and the log goes on.
#[test]
fn a_close_cut_at_each_io_call_loses_nothing() {
    let options = opts(Durability::Immediate).seal_on_close(true);
    let mut cut_closes = 0;
    for k in 0.. {
        for fault in [Fault::Fail(ErrorKind::Other), Fault::Tear(40)] {
            let dir = tempfile::tempdir().unwrap();
            let io = Arc::new(FaultIo::new());
            let mut wal = Wal::open_with(dir.path(), options, io.clone()).unwrap();
            let mut model = Model::default();
            run_batches_trimming(&mut wal, &mut model, 5, 0..200, 50);
            let before = io.calls();
            io.fail_from(before + 1 + k, fault);
            let closed = wal.close();
            let calls = io.calls() - before;
            io.power_loss().unwrap();
            let mut wal = Wal::open_with_options(dir.path(), options).unwrap();
            compare(&wal, &model).unwrap_or_else(|e| panic!("cut at call {k} of the close: {e}"));
            run_batches(&mut wal, &mut model, 6, 0..20);
            drop(wal);
            let wal = Wal::open_with_options(dir.path(), options.verify_on_open(true)).unwrap();
            compare(&wal, &model).unwrap_or_else(|e| panic!("cut at call {k}, then more: {e}"));
            if calls <= k {
                // The close made fewer calls than the cut: it went through.
                assert!(closed.is_ok(), "{closed:?}");
                assert!(cut_closes >= 3, "the close makes several I/O calls");
                return;
            }
            assert!(closed.is_err(), "cut at call {k}: the close reported it");
            cut_closes += 1;
        }
    }
}

/// The offset of the seal record of a sealed segment file, found by walking its records.
fn seal_offset(path: &Path) -> usize {
    use paxstore_backends::wal::format::{read_record, Found, RECORD_SEAL, SEGMENT_HEADER_BYTES};
    let bytes = std::fs::read(path).unwrap();
    let mut pos = SEGMENT_HEADER_BYTES;
    loop {
        match read_record(&bytes, pos, None) {
            Found::Record { record_type: RECORD_SEAL, .. } => return pos,
            Found::Record { next, .. } => pos = next,
            other => panic!("no seal in {}: {other:?} at {pos}", path.display()),
        }
    }
}

/// `open` reads a seal's header and where its list starts and ends, not its table, and
/// checks its checksum with the segment's records, before the first entry is read from
/// it. A flipped bit in the table: the open succeeds, and the first read from that
/// segment, `verify`, and `verify_on_open` each report a `Corruption` naming it. A flipped
/// bit in the seal's start index: the list no longer ends where the next checkpoint says,
/// so the segment is replayed, which stops at the bad seal, and the next segment's
/// checkpoint does not follow on: `open` refuses.
#[test]
fn a_damaged_seal_is_found_before_an_entry_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let mut wal = open(dir.path(), Durability::Immediate);
    for i in 0..200u64 {
        let entries = (0..10).map(|k| TestEntry::new(i * 10 + k, 2_000)).collect();
        wal.append_entries(entries).unwrap();
    }
    let (segs, _) = wal.segment_paths();
    drop(wal);
    assert!(segs.len() >= 3);
    let name = segs[0].file_name().unwrap().to_string_lossy().into_owned();
    let seal = seal_offset(&segs[0]) as u64;
    let copy_to = |to: &Path| {
        for p in segment_files(dir.path()) {
            std::fs::copy(&p, to.join(p.file_name().unwrap())).unwrap();
        }
        to.join(&name)
    };
    let is_named = |r: Result<(), StorageError>| match r {
        Err(StorageError::Corruption { location, .. }) => location.contains(&name),
        other => panic!("expected Corruption naming {name}, got {other:?}"),
    };
    // Header 24 bytes, start u64, count u32, then the table.
    let copy = tempfile::tempdir().unwrap();
    corrupt_at(&copy_to(copy.path()), seal + 24 + 12 + 40);
    let wal = open(copy.path(), Durability::Immediate);
    assert_eq!(wal.unverified_segments(), segs.len() - 1);
    assert!(is_named(wal.get_entries(0, 1).map(drop)));
    assert!(is_named(wal.verify()));
    drop(wal);
    expect_verifying_open_refused(copy.path(), &name);
    // The start index.
    let copy = tempfile::tempdir().unwrap();
    corrupt_at(&copy_to(copy.path()), seal + 24 + 1);
    let refused = Wal::open_with_options(copy.path(), opts(Durability::Immediate));
    assert!(matches!(refused, Err(StorageError::Corruption { .. })), "{:?}", refused.map(drop));
    // The untouched original still opens and reads.
    let wal = open(dir.path(), Durability::Immediate);
    assert_eq!(wal.get_entries(0, 10).unwrap().len(), 10);
}
