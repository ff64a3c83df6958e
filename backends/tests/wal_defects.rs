//! The WAL's defects found from outside (issue 14), each pinned by a test that failed
//! before its fix: a torn rollover write, index arithmetic at `usize::MAX`, holes and
//! shrunk segments under the map, a foreign directory left unchanged, a full disk
//! that recovers once space is freed, a recycled segment's old bytes after the last
//! record of a `Buffered` (unsealed) segment, and a refused directory that recovery had
//! already changed.
#![cfg(feature = "fault-injection")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use paxstore::StorageOp::{self, *};
use paxstore::{ClusterConfig, Durability, StopSign, Storage, StorageError};
use paxstore_backends::wal::format::{self, read_record, Found};
use paxstore_backends::wal::{FaultIo, WalOptions, WalStorage};
use paxstore_conformance::{compare, Model, TestEntry};

type Wal = WalStorage<TestEntry>;

const SECTOR: u64 = 512;

fn write(wal: &mut Wal, model: &mut Model, ops: Vec<StorageOp<TestEntry>>) {
    model.apply_batch(&ops).unwrap();
    wal.write_atomically(ops).unwrap();
}

/// A rollover writes the new segment's checkpoint and the first batch in one `pwrite`.
/// A power cut may land any subset of its sectors: for every sector boundary inside it,
/// the sectors before it lost and those after it landed, the other way round, and one
/// sector lost alone, with the lost bytes zero or garbage. Every such state opens, without
/// the batch (it was never acknowledged).
#[test]
fn torn_rollover_at_every_sector_boundary_opens_without_the_batch() {
    let dir = tempfile::tempdir().unwrap();
    // No seal at close: each torn state is opened and dropped in turn, unchanged.
    let options =
        WalOptions::new(Durability::Immediate).segment_bytes(64 << 10).seal_on_close(false);
    let io = Arc::new(FaultIo::new());
    let mut wal = Wal::open_with(dir.path(), options, io.clone()).unwrap();
    let mut model = Model::default();
    // A stop sign with 2 KiB of metadata: the checkpoint spans several sectors.
    let stopsign = StopSign {
        next_config: ClusterConfig {
            configuration_id: 2,
            nodes: vec![1, 2, 3],
            flexible_quorum: None,
        },
        metadata: Some(vec![0xAB; 2048]),
    };
    write(&mut wal, &mut model, vec![SetStopsign(Some(stopsign))]);
    let mut id = 0;
    let (before, rollover) = loop {
        let live = wal.segment_paths().0.len();
        let before = model.clone();
        id += 1;
        write(&mut wal, &mut model, vec![AppendEntry(TestEntry::new(id, 700))]);
        if wal.segment_paths().0.len() > live {
            // The rollover write is the last at the first record's offset (zeros ahead of
            // the tail may follow it).
            break (before, io.writes().into_iter().rev().find(|w| w.offset == 32).unwrap());
        }
    };
    drop(wal);
    assert_eq!(rollover.offset, 32, "the rollover write starts at the first record");
    let file = std::fs::OpenOptions::new().read(true).write(true).open(&rollover.path).unwrap();
    let mut written = vec![0u8; rollover.len];
    file.read_exact_at(&mut written, rollover.offset).unwrap();
    let (start, end) = (rollover.offset, rollover.offset + rollover.len as u64);
    let boundaries: Vec<u64> = (1..).map(|k| k * SECTOR).take_while(|&b| b < end).collect();
    assert!(boundaries.len() >= 5, "the checkpoint and the batch span sectors");
    let mut states = 0;
    for &b in &boundaries {
        let at = (b - start) as usize;
        let next = (at + SECTOR as usize).min(written.len());
        for lost_byte in [0x00, 0x5A] {
            let prefix_landed: Vec<bool> = (0..written.len()).map(|i| i < at).collect();
            let suffix_landed: Vec<bool> = (0..written.len()).map(|i| i >= at).collect();
            let one_lost: Vec<bool> = (0..written.len()).map(|i| i < at || i >= next).collect();
            for landed in [prefix_landed, suffix_landed, one_lost] {
                let torn: Vec<u8> = (written.iter().zip(&landed))
                    .map(|(&w, &l)| if l { w } else { lost_byte })
                    .collect();
                file.write_all_at(&torn, start).unwrap();
                let wal = Wal::open_with_options(dir.path(), options).unwrap_or_else(|e| {
                    panic!("boundary {b}, lost bytes {lost_byte:#x}: {e}");
                });
                compare(&wal, &before).unwrap();
                states += 1;
            }
        }
    }
    assert_eq!(states, boundaries.len() * 6);
    // The log goes on from there.
    let mut wal = Wal::open_with_options(dir.path(), options).unwrap();
    let mut model = before;
    for k in 0..100 {
        write(&mut wal, &mut model, vec![AppendEntry(TestEntry::new(10_000 + k, 700))]);
    }
    drop(wal);
    compare(&Wal::open_with_options(dir.path(), options).unwrap(), &model).unwrap();
}

/// The log end a batch would leave, computed without overflow; `None` if it cannot be
/// represented.
fn end_after(mut compacted: usize, mut end: usize, ops: &[StorageOp<TestEntry>]) -> Option<usize> {
    for op in ops {
        match op {
            AppendEntry(_) => end = end.checked_add(1)?,
            AppendEntries(es) => end = end.checked_add(es.len())?,
            AppendOnPrefix(from, es) => end = from.checked_add(es.len())?,
            SetCompactedIdx(i) => {
                compacted = *i;
                end = end.max(*i);
            }
            Trim(i) => compacted = *i,
            _ => {}
        }
    }
    let _ = compacted;
    Some(end)
}

/// At the `usize::MAX` edges, every op either succeeds with a representable log (the
/// entries it appended read back, reopen agrees) or is refused with a typed error before
/// anything is written.
#[test]
fn every_op_at_the_usize_max_edges_succeeds_or_is_refused_before_writing() {
    let e = |id| TestEntry::new(id, 10);
    let ops: Vec<(&str, Vec<StorageOp<TestEntry>>)> = vec![
        ("AppendEntry", vec![AppendEntry(e(1))]),
        ("AppendEntries", vec![AppendEntries(vec![e(1), e(2)])]),
        ("AppendEntries empty", vec![AppendEntries(vec![])]),
        ("AppendOnPrefix at the end", vec![AppendOnPrefix(usize::MAX, vec![e(1)])]),
        ("AppendOnPrefix empty", vec![AppendOnPrefix(usize::MAX, vec![])]),
        ("SetDecidedIndex", vec![SetDecidedIndex(usize::MAX)]),
        ("Trim", vec![Trim(usize::MAX)]),
        ("SetCompactedIdx", vec![SetCompactedIdx(usize::MAX)]),
        ("two appends", vec![AppendEntry(e(1)), AppendEntry(e(2))]),
    ];
    for start in [usize::MAX, usize::MAX - 2] {
        for (name, batch) in &ops {
            let dir = tempfile::tempdir().unwrap();
            let mut wal = Wal::open(dir.path(), Durability::Immediate).unwrap();
            wal.set_compacted_idx(start).unwrap();
            assert_eq!(wal.get_log_end().unwrap(), start);
            let bytes = wal.stats().bytes_written;
            let expected = end_after(start, start, batch);
            let got = wal.write_atomically(batch.clone());
            let what = format!("{name} at compacted {start}: {got:?}");
            let end = match (got, expected) {
                (Ok(()), Some(end)) => end,
                (Err(StorageError::InvalidOp { .. } | StorageError::TooLarge { .. }), _) => {
                    assert_eq!(wal.stats().bytes_written, bytes, "{what}: refused after writing");
                    assert_eq!(wal.get_log_end().unwrap(), start, "{what}");
                    start
                }
                _ => panic!("{what}, expected a log end of {expected:?}"),
            };
            assert_eq!(wal.get_log_end().unwrap(), end, "{what}");
            let from = wal.get_compacted_idx().unwrap();
            let len = wal.get_log_len().unwrap();
            assert_eq!(wal.get_suffix(from).unwrap().len(), len, "{what}");
            drop(wal);
            let wal = Wal::open(dir.path(), Durability::Immediate).unwrap();
            assert_eq!(wal.get_log_end().unwrap(), end, "{what}, reopened");
            assert_eq!(wal.get_suffix(from).unwrap().len(), len, "{what}, reopened");
        }
    }
    // From `MAX - 2`, appends fill the log up to `MAX` and the next one is refused.
    let dir = tempfile::tempdir().unwrap();
    let mut wal = Wal::open(dir.path(), Durability::Immediate).unwrap();
    wal.set_compacted_idx(usize::MAX - 2).unwrap();
    wal.append_entry(e(1)).unwrap();
    wal.append_entry(e(2)).unwrap();
    assert_eq!(wal.get_log_end().unwrap(), usize::MAX);
    assert!(wal.append_entry(e(3)).is_err());
    assert_eq!(wal.get_entries(usize::MAX - 2, usize::MAX).unwrap(), vec![e(1), e(2)]);
}

/// Whether byte `at` of `path` lies in a hole (never written, no block behind it).
fn in_hole(path: &Path, at: u64) -> bool {
    use rustix::fs::{seek, SeekFrom};
    let f = std::fs::File::open(path).unwrap();
    match seek(&f, SeekFrom::Data(at)) {
        Ok(data) => data > at,
        Err(e) => e == rustix::io::Errno::NXIO,
    }
}

/// On tmpfs a read through the map of a never-written page allocates it (and on a full
/// tmpfs the read faults with SIGBUS). A torn record whose length runs into the holes of
/// a sparse (`Buffered`) segment is cut at open without reading or writing those holes.
#[test]
fn open_never_reads_a_hole_under_the_map() {
    let shm = Path::new("/dev/shm");
    assert!(shm.is_dir(), "this test needs a tmpfs at /dev/shm");
    let dir = tempfile::tempdir_in(shm).unwrap();
    let options = WalOptions::new(Durability::Buffered).segment_bytes(1 << 20);
    let io = Arc::new(FaultIo::new());
    let mut wal = Wal::open_with(dir.path(), options, io.clone()).unwrap();
    let mut model = Model::default();
    for k in 0..3 {
        write(&mut wal, &mut model, vec![AppendEntry(TestEntry::new(k, 100))]);
    }
    let last = io.writes().pop().unwrap();
    drop(wal);
    let tail = (last.offset + last.len as u64).next_multiple_of(8);
    assert!(tail + 24 < 4096, "the tail is in the segment's first page");
    assert!(in_hole(&last.path, 4096) && in_hole(&last.path, 64 << 10), "the segment is sparse");
    // A record header at the tail whose payload would run 64 KiB into the holes.
    let mut header = [0u8; 24];
    header[0..4].copy_from_slice(&0xDEAD_BEEFu32.to_le_bytes());
    header[4..8].copy_from_slice(&(64u32 << 10).to_le_bytes());
    header[8..16].copy_from_slice(&5u64.to_le_bytes());
    header[16] = 1;
    std::fs::OpenOptions::new()
        .write(true)
        .open(&last.path)
        .unwrap()
        .write_all_at(&header, tail)
        .unwrap();
    let wal = Wal::open_with_options(dir.path(), options).unwrap();
    compare(&wal, &model).unwrap();
    for page in [4096, 32 << 10, 64 << 10] {
        assert!(in_hole(&last.path, page), "open read or wrote the hole at {page}");
    }
}

/// A segment shortened by another program while the WAL was closed: `open` refuses it
/// (`Corruption` naming the length) instead of reading the cut as a torn tail and
/// dropping acknowledged batches.
#[test]
fn a_shrunk_segment_is_refused_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let options = WalOptions::new(Durability::Immediate).segment_bytes(64 << 10);
    let mut wal = Wal::open_with_options(dir.path(), options).unwrap();
    for k in 0..40 {
        wal.append_entry(TestEntry::new(k, 400)).unwrap();
    }
    let (live, _) = wal.segment_paths();
    drop(wal);
    let active = live.last().unwrap();
    let file = std::fs::OpenOptions::new().write(true).open(active).unwrap();
    file.set_len(8192).unwrap();
    match Wal::open_with_options(dir.path(), options) {
        Err(StorageError::Corruption { detail, .. }) => {
            assert!(detail.contains("8192"), "{detail}");
        }
        other => panic!("a segment cut to 8192 bytes opened: {:?}", other.map(|w| w.get_log_len())),
    }
}

/// Every file of `dir` (recursively) with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            for (k, v) in snapshot(&path) {
                out.insert(format!("{name}/{k}"), v);
            }
        } else {
            out.insert(name, std::fs::read(&path).unwrap());
        }
    }
    out
}

/// `open` of a directory that is not a WAL changes nothing in it: no leftover `.wal.tmp`
/// deleted, no lock file created.
#[test]
fn an_unrecognized_directory_is_left_byte_for_byte_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("0000000000000001.wal.tmp"), b"half-made segment").unwrap();
    std::fs::write(dir.path().join("0000000000000002.wal.tmp"), b"").unwrap();
    std::fs::write(dir.path().join("CURRENT"), b"MANIFEST-000001\n").unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    std::fs::write(dir.path().join("sub/x"), b"x").unwrap();
    let before = snapshot(dir.path());
    for durability in [Durability::Immediate, Durability::Buffered] {
        match Wal::open(dir.path(), durability) {
            Err(StorageError::Unrecognized { .. }) => {}
            other => panic!("expected Unrecognized, got {:?}", other.map(|_| ())),
        }
        assert_eq!(snapshot(dir.path()), before);
    }
}

/// A disk that fills up, then gets space back: writes fail with `StorageFull` while it is
/// full, and succeed again once there is room for the records, whatever the zeros written
/// ahead of the tail would want. The model disk has 300 KiB free before each write; each
/// batch is ~100 KiB, so the zeros written ahead (up to 4 MiB) never fit.
#[test]
fn a_full_disk_recovers_once_space_is_freed() {
    let dir = tempfile::tempdir().unwrap();
    let io = Arc::new(FaultIo::new());
    let mut wal =
        Wal::open_with(dir.path(), WalOptions::new(Durability::Immediate), io.clone()).unwrap();
    let mut model = Model::default();
    // The disk fills up: writes go on into the zeros written ahead of the tail (blocks
    // the log already holds), then fail with `StorageFull`, changing nothing.
    io.limit_space(Some(0));
    let mut k = 0;
    let full = loop {
        k += 1;
        assert!(k < 200, "a full disk took 200 batches of 100 KiB");
        let e = TestEntry::new(k, 100 << 10);
        match wal.append_entry(e.clone()) {
            Ok(()) => model.apply_batch(&[AppendEntry(e)]).unwrap(),
            Err(err) => break err,
        }
    };
    match &full {
        StorageError::Io { source, .. } => assert_eq!(source.kind(), ErrorKind::StorageFull),
        other => panic!("expected StorageFull, got {other:?}"),
    }
    compare(&wal, &model).unwrap();
    let rolled = wal.segment_paths().0.len();
    for k in k + 1..=k + 120 {
        io.limit_space(Some(300 << 10));
        let e = TestEntry::new(k, 100 << 10);
        if let Err(err) = wal.append_entry(e.clone()) {
            panic!("batch {k} with 300 KiB free: {err}");
        }
        model.apply_batch(&[AppendEntry(e)]).unwrap();
    }
    assert!(wal.segment_paths().0.len() > rolled, "the batches rolled over");
    compare(&wal, &model).unwrap();
    drop(wal);
    io.limit_space(None);
    compare(&Wal::open(dir.path(), Durability::Immediate).unwrap(), &model).unwrap();
}

/// The records of segment file `path` as `(offset, lsn)`, and where they stop with what
/// lies there (read as [`read_record`] reads the slot after the last record).
fn records(path: &Path) -> (Vec<(usize, u64)>, usize, Found) {
    let bytes = std::fs::read(path).unwrap();
    let (mut pos, mut expected, mut found) = (format::SEGMENT_HEADER_BYTES, None, Vec::new());
    loop {
        match read_record(&bytes, pos, expected) {
            Found::Record { lsn, next, .. } => {
                found.push((pos, lsn));
                expected = Some(lsn + 1);
                pos = next;
            }
            stop => return (found, pos, stop),
        }
    }
}

/// A `Buffered` log rolls over without a seal. When the segment it leaves is a recycled
/// one, the bytes after its last record are its earlier life's: here the middle of an old
/// entry's payload, which reads as an invalid record. That is not corruption: the next
/// segment's checkpoint has the LSN right after the last record read, so every record
/// of the segment's current life was read. The log opens with every batch (it was
/// refused as "not a torn tail: later segments hold records" after a SIGKILL of a
/// `Buffered` writer that had flushed everything). The broken variants, the last record
/// of a segment before the tail segment damaged, are refused when opened `Immediate`:
/// the next segment's checkpoint does not continue the LSNs. Opened `Buffered`, they
/// open at a prefix (the damage is indistinguishable from an unsynced tail lost there).
#[test]
fn old_bytes_after_the_last_record_of_a_recycled_unsealed_segment_open() {
    let dir = tempfile::tempdir().unwrap();
    let options = WalOptions::new(Durability::Buffered).segment_bytes(64 << 10);
    let mut wal = Wal::open_with_options(dir.path(), options).unwrap();
    let mut model = Model::default();
    // Segment 1: one entry of random bytes nearly filling it; the next rolls over.
    write(&mut wal, &mut model, vec![AppendEntry(TestEntry::new(1, 63_000))]);
    write(&mut wal, &mut model, vec![AppendEntry(TestEntry::new(2, 4_000))]);
    // Trimming entry 0 frees segment 1: it becomes the spare, segment 3.
    write(&mut wal, &mut model, vec![Trim(1)]);
    assert_eq!(wal.stats().segments_recycled, 1);
    // Segment 3 gets one batch ending inside the old entry's bytes; the next batch rolls
    // over to segment 4.
    write(&mut wal, &mut model, vec![AppendEntry(TestEntry::new(3, 62_000))]);
    write(&mut wal, &mut model, vec![AppendEntry(TestEntry::new(4, 4_000))]);
    wal.flush().unwrap();
    let (live, _) = wal.segment_paths();
    drop(wal);
    let names: Vec<_> = live.iter().map(|p| p.file_name().unwrap().to_owned()).collect();
    assert_eq!(names, ["0000000000000002.wal", "0000000000000003.wal", "0000000000000004.wal"]);
    let (recycled, stop, what) = records(&live[1]);
    assert_eq!(recycled.len(), 2, "segment 3: a checkpoint and one batch");
    assert!(matches!(what, Found::Invalid { .. }), "segment 3 at {stop}: {what:?}");
    let (next, _, _) = records(&live[2]);
    assert_eq!(next[0].1, recycled[1].1 + 1, "segment 4's checkpoint follows segment 3");

    // The broken variants, each in a copy: the last record of segment 3 damaged (the
    // next segment, 4, is then refused), and the last record of segment 2 (segment 3
    // then holds no accepted record, but segment 4 does).
    let (earlier, _, _) = records(&live[0]);
    // Opened `Buffered`, the first opens at a prefix; the second is still refused: cut
    // there, the log would have lost entries its later segments' state says are live.
    let damaged = [
        (1, recycled[1].0, "0000000000000004.wal", true),
        (0, earlier[2].0, "0000000000000003.wal", false),
    ];
    for (seg, record, refused, buffered_opens) in damaged {
        let broken = tempfile::tempdir().unwrap();
        for path in &live {
            std::fs::copy(path, broken.path().join(path.file_name().unwrap())).unwrap();
        }
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(broken.path().join(live[seg].file_name().unwrap()))
            .unwrap();
        file.write_all_at(&[0xFF], record as u64 + 30).unwrap();
        // Opened `Buffered`, the damage reads as the end of the log with an unsynced tail
        // past it (FORMAT.md, "Recovery", step 6): it opens at a prefix. Opened
        // `Immediate`, nothing may be lost, so it is refused. (Each open in its own copy.)
        let lossy = tempfile::tempdir().unwrap();
        for path in &live {
            let name = path.file_name().unwrap();
            std::fs::copy(broken.path().join(name), lossy.path().join(name)).unwrap();
        }
        match Wal::open_with_options(lossy.path(), options) {
            Ok(prefix) if buffered_opens => {
                assert!(prefix.get_log_end().unwrap() < model.log_end(), "{record} of {seg}");
            }
            Err(StorageError::Corruption { .. }) if !buffered_opens => {}
            other => panic!(
                "record at {record} of {seg} damaged, opened Buffered: {:?}",
                other.map(|w| w.get_log_end())
            ),
        }
        let immediate = WalOptions::new(Durability::Immediate).segment_bytes(64 << 10);
        match Wal::open_with_options(broken.path(), immediate) {
            Err(StorageError::Corruption { location, .. }) => {
                assert!(location.contains(refused), "record at {record} of {seg}: {location}");
            }
            other => panic!(
                "a damaged record at {record} of {:?}, before a later segment, opened: {:?}",
                live[seg],
                other.map(|w| w.get_log_len())
            ),
        }
    }

    let wal = Wal::open_with_options(dir.path(), options).unwrap();
    compare(&wal, &model).unwrap();
}

/// A directory `open` refuses must be left as it was, even where recovery found something
/// it would have repaired had the rest been sound: here a torn last record (which an open
/// zeroes) and a leftover `.tmp` file (which an open deletes), in a log whose oldest
/// segment is gone (refused: its live entries are lost). Before the fix the torn record
/// was zeroed and the `.tmp` file deleted before the refusal.
#[test]
fn a_refused_directory_is_left_byte_for_byte_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let options =
        WalOptions::new(Durability::Immediate).segment_bytes(64 << 10).seal_on_close(false);
    let io = Arc::new(FaultIo::new());
    let mut wal = Wal::open_with(dir.path(), options, io.clone()).unwrap();
    let mut model = Model::default();
    for id in 0..300 {
        write(&mut wal, &mut model, vec![AppendEntry(TestEntry::new(id, 700))]);
    }
    let last = io.writes().into_iter().rev().find(|w| w.len < 4096).unwrap();
    let (live, _) = wal.segment_paths();
    drop(wal);
    assert!(live.len() >= 3);
    // Tear the last record: its last payload byte flipped.
    let file = std::fs::OpenOptions::new().read(true).write(true).open(&last.path).unwrap();
    let at = last.offset + 24 + 700;
    let mut b = [0u8; 1];
    file.read_exact_at(&mut b, at).unwrap();
    file.write_all_at(&[b[0] ^ 0xFF], at).unwrap();
    std::fs::write(dir.path().join("00000000000000ff.wal.tmp"), b"half made").unwrap();
    std::fs::remove_file(&live[0]).unwrap();
    let before = snapshot(dir.path());
    match Wal::open_with_options(dir.path(), options) {
        Err(StorageError::Corruption { detail, .. }) => {
            assert!(detail.contains("no remaining segment holds them"), "{detail}")
        }
        other => panic!("expected Corruption, got {:?}", other.map(drop)),
    }
    let after = snapshot(dir.path());
    let changed: Vec<&String> =
        before.keys().chain(after.keys()).filter(|k| before.get(*k) != after.get(*k)).collect();
    assert!(changed.is_empty(), "the refused directory changed: {changed:?}");
}
