//! The calls storage engines make besides read, write and fsync: memory maps, `lseek`
//! data/hole, locks, `fallocate`, `O_DSYNC`; each check run against a variant that
//! breaks it.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used)]

mod common;

use std::fs::OpenOptions;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, OpenOptionsExt};

use common::{check_the_check, ensure, show, Fixture};
use paxstore_crashfs::Broken;
use rustix::fs::{FallocateFlags, SeekFrom};

fn mmap_reads(broken: Broken) -> Result<(), String> {
    let fx = Fixture::broken(broken);
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let f = fx.write("seg", &data);
    // SAFETY: the file is not changed while the map is alive except through `f` below,
    // and the map is only read after that write returned.
    let map = unsafe { memmap2::Mmap::map(&f) }.map_err(|e| format!("mmap: {e}"))?;
    ensure(map[..] == data[..], "the map does not show the written bytes")?;
    // A later write through the same mount is seen by the live map (one page cache).
    f.write_all_at(b"fresh", 4096).unwrap();
    ensure(&map[4096..4101] == b"fresh", "the map does not see a later write")
}

#[test]
fn read_only_memory_maps_work_and_see_later_writes() {
    check_the_check(mmap_reads, Broken::DirectIo);
}

const MAP_FILE_ENV: &str = "CRASHFS_MAP_FILE";

/// Writes through a shared writable map of the file named by `CRASHFS_MAP_FILE`: 6 bytes
/// msynced, 5 bytes not. Run in a child process: the daemon is a thread of the test
/// process, and unmapping a dirty shared map waits for the daemon while holding the
/// process's memory-map lock (see `CrashFs`).
#[test]
#[ignore = "the child half of shared_writable_maps_are_durable_after_msync_only; it starts it"]
fn map_writer_child_process() {
    let Ok(path) = std::env::var(MAP_FILE_ENV) else { return };
    let f = OpenOptions::new().read(true).write(true).open(path).unwrap();
    // SAFETY: nothing else changes the file while the map is alive.
    let mut map = unsafe { memmap2::MmapMut::map_mut(&f) }.unwrap();
    map[0..6].copy_from_slice(b"synced");
    map.flush().unwrap();
    map[4096..4101].copy_from_slice(b"lost!");
}

fn mmap_writes(broken: Broken) -> Result<(), String> {
    let mut fx = Fixture::with_files(broken, &[("m", &[0u8; 8192])]);
    common::run_child("map_writer_child_process", MAP_FILE_ENV, &fx.path("m"))?;
    fx.cut();
    let got = fx.read("m").unwrap_or_default();
    ensure(got.len() == 8192, format!("the mapped file is {} bytes long", got.len()))?;
    ensure(&got[0..6] == b"synced", "an msynced write through a map was lost")?;
    ensure(got[4096..4101] == [0u8; 5], "an unsynced write through a map survived")
}

#[test]
fn shared_writable_maps_are_durable_after_msync_only() {
    check_the_check(mmap_writes, Broken::FsyncIgnored);
}

fn seek_data_and_hole(broken: Broken) -> Result<(), String> {
    let fx = Fixture::broken(broken);
    let f = fx.write("sparse", b"");
    f.set_len(1 << 20).unwrap();
    f.write_all_at(&[1u8; 4096], 512 * 1024).unwrap();
    let data = rustix::fs::seek(&f, SeekFrom::Data(0)).map_err(|e| format!("SEEK_DATA: {e}"))?;
    ensure(data == 512 * 1024, format!("SEEK_DATA from 0 found {data}, not the written block"))?;
    let hole = rustix::fs::seek(&f, SeekFrom::Hole(data)).map_err(|e| format!("SEEK_HOLE: {e}"))?;
    ensure(hole == 512 * 1024 + 4096, format!("SEEK_HOLE found {hole}"))?;
    let past = rustix::fs::seek(&f, SeekFrom::Data(hole));
    ensure(past == Err(rustix::io::Errno::NXIO), format!("SEEK_DATA past the data: {past:?}"))
}

#[test]
fn seek_data_and_seek_hole_find_the_written_ranges() {
    check_the_check(seek_data_and_hole, Broken::NoSeekData);
}

fn flock_excludes(broken: Broken) -> Result<(), String> {
    let fx = Fixture::broken(broken);
    fx.write("lock", b"");
    let a = OpenOptions::new().read(true).write(true).open(fx.path("lock")).unwrap();
    let b = OpenOptions::new().read(true).write(true).open(fx.path("lock")).unwrap();
    a.try_lock().map_err(|e| format!("the first lock: {e}"))?;
    ensure(b.try_lock().is_err(), "a second exclusive lock was granted")?;
    a.unlock().unwrap();
    b.try_lock().map_err(|e| format!("the lock after unlock: {e}"))?;
    Ok(())
}

#[test]
fn flock_locks_exclude_each_other() {
    check_the_check(flock_excludes, Broken::LocksAlwaysGranted);
}

fn fallocate_modes(broken: Broken) -> Result<(), String> {
    let mut fx = Fixture::broken(broken);
    fx.write_synced("f", &[9u8; 16384]);
    fx.sync_dir("");
    let f = OpenOptions::new().read(true).write(true).open(fx.path("f")).unwrap();
    rustix::fs::fallocate(&f, FallocateFlags::KEEP_SIZE, 0, 1 << 20)
        .map_err(|e| format!("KEEP_SIZE: {e}"))?;
    ensure(f.metadata().unwrap().len() == 16384, "KEEP_SIZE changed the size")?;
    rustix::fs::fallocate(&f, FallocateFlags::PUNCH_HOLE | FallocateFlags::KEEP_SIZE, 4096, 4096)
        .map_err(|e| format!("PUNCH_HOLE: {e}"))?;
    rustix::fs::fallocate(&f, FallocateFlags::empty(), 0, 32768)
        .map_err(|e| format!("plain: {e}"))?;
    let mut live = vec![0u8; 32768];
    f.read_exact_at(&mut live, 0).unwrap();
    ensure(live[4096..8192].iter().all(|&b| b == 0) && live[0] == 9, "the punch is not read back")?;
    ensure(live[16384..].iter().all(|&b| b == 0), "the extension is not zeros")?;
    drop(f);
    fx.cut();
    ensure(fx.read("f") == Some(vec![9u8; 16384]), "an unsynced punch or extension survived")
}

#[test]
fn fallocate_punches_and_extensions_are_unsynced_changes() {
    check_the_check(fallocate_modes, Broken::CutKeepsEverything);
}

fn dsync_writes_are_durable(broken: Broken) -> Result<(), String> {
    let mut fx = Fixture::with_files(broken, &[("f", b"....")]);
    let f = OpenOptions::new().write(true).custom_flags(libc::O_DSYNC).open(fx.path("f")).unwrap();
    f.write_all_at(b"sync", 0).unwrap();
    drop(f);
    fx.cut();
    ensure(fx.read("f").as_deref() == Some(b"sync"), format!("f is {:?}", show(fx.read("f"))))
}

#[test]
fn o_dsync_writes_are_durable_when_they_return() {
    check_the_check(dsync_writes_are_durable, Broken::FsyncIgnored);
}

fn range_syncs_and_syncfs_make_nothing_durable(broken: Broken) -> Result<(), String> {
    let mut fx = Fixture::with_files(broken, &[("f", b"old.")]);
    let f = OpenOptions::new().read(true).write(true).open(fx.path("f")).unwrap();
    f.write_all_at(b"new.", 0).unwrap();
    let flags = libc::SYNC_FILE_RANGE_WAIT_BEFORE
        | libc::SYNC_FILE_RANGE_WRITE
        | libc::SYNC_FILE_RANGE_WAIT_AFTER;
    // SAFETY: plain system calls on a descriptor this function owns.
    let (range, fs) =
        unsafe { (libc::sync_file_range(f.as_raw_fd(), 0, 0, flags), libc::syncfs(f.as_raw_fd())) };
    ensure(range == 0 && fs == 0, format!("sync_file_range {range}, syncfs {fs}"))?;
    drop(f);
    fx.cut();
    ensure(fx.read("f").as_deref() == Some(b"old."), format!("f is {:?}", show(fx.read("f"))))
}

#[test]
fn sync_file_range_and_syncfs_make_nothing_durable() {
    check_the_check(range_syncs_and_syncfs_make_nothing_durable, Broken::CutKeepsEverything);
}

#[test]
fn an_open_file_outlives_its_name() {
    let mut fx = Fixture::with_files(Broken::None, &[("kept", b"durable")]);
    let gone = fx.write("gone", b"abc");
    let kept = OpenOptions::new().read(true).write(true).open(fx.path("kept")).unwrap();
    std::fs::remove_file(fx.path("gone")).unwrap();
    std::fs::remove_file(fx.path("kept")).unwrap();
    for f in [&gone, &kept] {
        f.write_all_at(b"more", 3).unwrap();
        assert_eq!(f.metadata().unwrap().len(), 7, "fstat of an unlinked file");
        let mut back = [0u8; 7];
        f.read_exact_at(&mut back, 0).unwrap();
        assert_eq!(&back[3..], b"more");
    }
    drop((gone, kept));
    // The unlink was never made durable: the durable file comes back as it was.
    fx.cut();
    assert_eq!(fx.read("kept").as_deref(), Some(&b"durable"[..]));
    assert_eq!(fx.read("gone"), None);
}

#[test]
fn unsupported_calls_fail_cleanly() {
    let fx = Fixture::new();
    fx.write("f", b"x");
    let e = std::fs::hard_link(fx.path("f"), fx.path("g")).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EPERM), "{e}");
    let e = std::os::unix::fs::symlink("f", fx.path("s")).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EPERM), "{e}");
    let e = std::fs::write(fx.path(".paxstore-crashfs"), b"x").unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EPERM), "the internal name is reserved: {e}");
    let names: Vec<_> =
        std::fs::read_dir(&fx.mnt).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, vec![std::ffi::OsString::from("f")]);
}
