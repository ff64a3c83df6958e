//! Each durability rule of the crash filesystem, on a real mount, and each check run
//! against a deliberately broken variant that it must catch.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used)]

mod common;

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;

use common::{check_the_check, ensure, show, Fixture};
use paxstore_crashfs::{Broken, PowerCut, SECTOR};

/// A durable file `f` holding `old`: created, fsynced, its directory fsynced.
fn durable_file(fx: &Fixture, name: &str, old: &[u8]) {
    fx.write_synced(name, old);
    fx.sync_dir("");
}

fn write_without_fsync_is_lost(broken: Broken) -> Result<(), String> {
    let mut fx = Fixture::broken(broken);
    durable_file(&fx, "f", b"old");
    fx.write("f", b"new, never synced");
    let report = fx.cut();
    ensure(
        fx.read("f").as_deref() == Some(b"old"),
        format!("f is {:?} after {report}", show(fx.read("f"))),
    )
}

#[test]
fn a_write_without_fsync_is_lost() {
    check_the_check(write_without_fsync_is_lost, Broken::CutKeepsEverything);
}

fn fsync_keeps_data(broken: Broken) -> Result<(), String> {
    let mut fx = Fixture::with_files(broken, &[("f", b"old"), ("g", b"x")]);
    fx.write_synced("f", b"new and synced");
    // fdatasync too: the file's size change must be durable with it.
    let g = fx.write("g", &[7u8; 10_000]);
    g.sync_data().unwrap();
    drop(g);
    fx.cut();
    ensure(
        fx.read("f").as_deref() == Some(b"new and synced"),
        format!("f: {:?}", show(fx.read("f"))),
    )?;
    ensure(fx.read("g") == Some(vec![7u8; 10_000]), format!("g: {:?}", show(fx.read("g"))))
}

#[test]
fn fsync_and_fdatasync_keep_data_and_size() {
    check_the_check(fsync_keeps_data, Broken::FsyncIgnored);
}

fn fsync_of_one_file_keeps_only_that_file(broken: Broken) -> Result<(), String> {
    let mut fx = Fixture::broken(broken);
    durable_file(&fx, "a", b"a0");
    durable_file(&fx, "b", b"b0");
    fx.write("b", b"b1");
    fx.write_synced("a", b"a1");
    fx.cut();
    ensure(fx.read("a").as_deref() == Some(b"a1"), "a lost its synced write")?;
    ensure(
        fx.read("b").as_deref() == Some(b"b0"),
        format!("b is {:?}: a's fsync synced it", show(fx.read("b"))),
    )
}

#[test]
fn fsync_of_one_file_makes_no_other_file_durable() {
    check_the_check(fsync_of_one_file_keeps_only_that_file, Broken::FsyncSyncsEverything);
}

fn new_file_needs_its_directory_synced(broken: Broken) -> Result<(), String> {
    let mut fx = Fixture::broken(broken);
    std::fs::create_dir(fx.path("d")).unwrap();
    fx.sync_dir("");
    fx.write_synced("d/f", b"synced data, unsynced name");
    fx.cut();
    ensure(fx.read("d/f").is_none(), "a file whose directory was never fsynced survived")?;
    fx.write_synced("d/f", b"synced data and name");
    fx.sync_dir("d");
    fx.cut();
    ensure(fx.read("d/f").as_deref() == Some(b"synced data and name"), "lost after both fsyncs")
}

#[test]
fn a_new_file_is_durable_only_after_its_directory_is_fsynced() {
    check_the_check(new_file_needs_its_directory_synced, Broken::DirentsDurableAtOnce);
}

#[test]
fn a_file_fsync_does_not_make_its_name_durable() {
    check_the_check(new_file_needs_its_directory_synced, Broken::FsyncSyncsEverything);
}

fn new_directory_needs_its_parent_synced(broken: Broken) -> Result<(), String> {
    let mut fx = Fixture::broken(broken);
    std::fs::create_dir(fx.path("d")).unwrap();
    fx.write_synced("d/f", b"x");
    fx.sync_dir("d");
    fx.cut();
    ensure(!fx.path("d").exists(), "a directory whose parent was never fsynced survived")
}

#[test]
fn a_new_directory_is_durable_only_after_its_parent_is_fsynced() {
    check_the_check(new_directory_needs_its_parent_synced, Broken::DirentsDurableAtOnce);
}

fn rename_needs_directory_fsync(broken: Broken) -> Result<(), String> {
    let mut fx = Fixture::broken(broken);
    durable_file(&fx, "f", b"old");
    fx.write_synced("f.tmp", b"new");
    std::fs::rename(fx.path("f.tmp"), fx.path("f")).unwrap();
    let report = fx.cut();
    ensure(
        fx.read("f").as_deref() == Some(b"old"),
        format!("f is {:?} after {report}", show(fx.read("f"))),
    )?;
    ensure(fx.read("f.tmp").is_none(), "f.tmp was never durably named")?;
    fx.write_synced("f.tmp", b"new");
    std::fs::rename(fx.path("f.tmp"), fx.path("f")).unwrap();
    fx.sync_dir("");
    fx.cut();
    ensure(fx.read("f").as_deref() == Some(b"new"), "the synced rename was lost")
}

#[test]
fn rename_over_a_file_is_durable_only_after_the_directory_fsync() {
    check_the_check(rename_needs_directory_fsync, Broken::DirentsDurableAtOnce);
}

fn unlink_needs_directory_fsync(broken: Broken) -> Result<(), String> {
    let mut fx = Fixture::broken(broken);
    durable_file(&fx, "f", b"kept");
    std::fs::remove_file(fx.path("f")).unwrap();
    fx.cut();
    ensure(fx.read("f").as_deref() == Some(b"kept"), "an unsynced unlink survived the cut")?;
    std::fs::remove_file(fx.path("f")).unwrap();
    fx.sync_dir("");
    fx.cut();
    ensure(fx.read("f").is_none(), "a synced unlink was undone")
}

#[test]
fn an_unlink_is_undone_by_a_cut_until_the_directory_fsync() {
    check_the_check(unlink_needs_directory_fsync, Broken::DirentsDurableAtOnce);
}

fn set_len_is_a_change_like_a_write(broken: Broken) -> Result<(), String> {
    let mut fx = Fixture::broken(broken);
    let old: Vec<u8> = (0..20_000u32).map(|i| i as u8).collect();
    durable_file(&fx, "f", &old);
    let f = OpenOptions::new().write(true).open(fx.path("f")).unwrap();
    f.set_len(100).unwrap();
    f.set_len(30_000).unwrap();
    drop(f);
    fx.cut();
    ensure(fx.read("f") == Some(old.clone()), "an unsynced shrink and regrow survived")?;
    let f = OpenOptions::new().write(true).open(fx.path("f")).unwrap();
    f.set_len(100).unwrap();
    f.sync_all().unwrap();
    drop(f);
    fx.cut();
    ensure(fx.read("f").as_deref() == Some(&old[..100]), "a synced shrink was lost")
}

#[test]
fn truncate_and_set_len_are_durable_only_after_fsync() {
    check_the_check(set_len_is_a_change_like_a_write, Broken::CutKeepsEverything);
}

/// Over many seeds, a torn write keeps or loses each 512-byte sector whole, and some
/// seeds keep part of it.
fn torn_writes_tear_at_sectors(broken: Broken) -> Result<(), String> {
    let mut fx = Fixture::broken(broken);
    let sectors = 8usize;
    let len = sectors * SECTOR as usize;
    let mut mixed = 0;
    for seed in 0..24 {
        durable_file(&fx, "f", &vec![0xAA; len]);
        let f = OpenOptions::new().write(true).open(fx.path("f")).unwrap();
        f.write_all_at(&vec![0x55; len], 0).unwrap();
        drop(f);
        fx.cut_with(PowerCut::seeded(seed).torn_prefix(1));
        let got = fx.read("f").unwrap();
        ensure(got.len() == len, format!("seed {seed}: length {}", got.len()))?;
        let mut kinds = Vec::new();
        for sector in got.chunks(SECTOR as usize) {
            let all = |b| sector.iter().all(|&x| x == b);
            ensure(all(0xAA) || all(0x55), format!("seed {seed}: a sector was torn inside"))?;
            kinds.push(sector[0]);
        }
        if kinds.contains(&0xAA) && kinds.contains(&0x55) {
            mixed += 1;
        }
    }
    ensure(mixed > 0, "no seed tore the write: torn writes are never torn")
}

#[test]
fn torn_writes_keep_or_lose_whole_sectors() {
    check_the_check(torn_writes_tear_at_sectors, Broken::TearsWholeWrites);
}

/// Two unsynced writes A then B: an in-order cut never keeps B without A; a reordered
/// cut sometimes does.
fn reordered_cuts_reorder(broken: Broken) -> Result<(), String> {
    let mut fx = Fixture::broken(broken);
    let (mut b_without_a_prefix, mut b_without_a_reordered) = (0, 0);
    for seed in 0..40 {
        for reordered in [false, true] {
            durable_file(&fx, "f", &[0u8; 8192]);
            let f = OpenOptions::new().write(true).open(fx.path("f")).unwrap();
            f.write_all_at(&[1u8; 512], 0).unwrap();
            f.write_all_at(&[2u8; 512], 4096).unwrap();
            drop(f);
            let cut = PowerCut::seeded(seed);
            fx.cut_with(if reordered { cut.reordered() } else { cut.torn_prefix(0) });
            let got = fx.read("f").unwrap();
            let (a, b) = (got[0] == 1, got[4096] == 2);
            if b && !a {
                if reordered {
                    b_without_a_reordered += 1;
                } else {
                    b_without_a_prefix += 1;
                }
            }
        }
    }
    ensure(b_without_a_prefix == 0, "an in-order cut kept a later write and lost an earlier one")?;
    ensure(b_without_a_reordered > 0, "no reordered cut kept the later write without the earlier")
}

#[test]
fn reordered_cuts_keep_later_writes_without_earlier_ones() {
    check_the_check(reordered_cuts_reorder, Broken::ReorderKeepsOrder);
}

/// A write, a write to the next page, then a write over the first: page write-back
/// never shows the superseded write, and sometimes keeps the second page alone.
fn pages_write_back_latest_content(broken: Broken) -> Result<(), String> {
    let mut fx = Fixture::broken(broken);
    let (mut superseded, mut second_alone) = (0, 0);
    for seed in 0..40 {
        durable_file(&fx, "f", &[0u8; 8192]);
        let f = OpenOptions::new().write(true).open(fx.path("f")).unwrap();
        f.write_all_at(&[1u8; 512], 0).unwrap();
        f.write_all_at(&[2u8; 4096], 4096).unwrap();
        f.write_all_at(&[3u8; 512], 0).unwrap();
        drop(f);
        fx.cut_with(PowerCut::seeded(seed).pages());
        let got = fx.read("f").unwrap();
        ensure(got.len() == 8192, format!("seed {seed}: length {}", got.len()))?;
        if got[0] == 1 {
            superseded += 1;
        }
        if got[4096] == 2 && got[0] == 0 {
            second_alone += 1;
        }
    }
    ensure(superseded == 0, format!("{superseded} cuts kept a superseded write"))?;
    ensure(second_alone > 0, "no cut wrote back the second page alone")
}

#[test]
fn page_write_back_keeps_latest_contents_in_any_page_order() {
    check_the_check(pages_write_back_latest_content, Broken::PagesAsWrites);
}

#[test]
fn a_cut_reports_its_seed_and_what_it_dropped() {
    let mut fx = Fixture::new();
    durable_file(&fx, "kept", b"k");
    fx.write("lost", b"never durable");
    fx.write("kept", b"unsynced");
    let report = fx.cut_with(PowerCut::seeded(1234));
    assert_eq!(report.cut.seed, 1234);
    assert_eq!(report.lost_paths, vec![std::path::PathBuf::from("lost")]);
    assert_eq!(report.reverted_files, vec![std::path::PathBuf::from("kept")]);
    assert!(report.to_string().contains("seed 1234"), "{report}");
}

#[test]
fn a_cut_with_a_file_still_open_detaches_and_old_handles_fail() {
    let mut fx = Fixture::new();
    durable_file(&fx, "f", b"old");
    let f = OpenOptions::new().read(true).write(true).open(fx.path("f")).unwrap();
    f.write_all_at(b"new", 0).unwrap();
    fx.cut();
    assert!(f.write_all_at(b"after", 0).is_err(), "a handle of the old mount still writes");
    drop(f);
    assert_eq!(fx.read("f").as_deref(), Some(&b"old"[..]));
    // The new mount works.
    fx.write_synced("f", b"again");
    assert_eq!(fx.read("f").as_deref(), Some(&b"again"[..]));
}

#[test]
fn power_off_leaves_the_surviving_state_in_the_backing_directory() {
    let fx = Fixture::new();
    durable_file(&fx, "f", b"durable");
    fx.write("f", b"unsynced");
    fx.write("g", b"unsynced name");
    let Fixture { fs, backing, _dir: dir, .. } = fx;
    fs.power_off(PowerCut::seeded(0)).unwrap();
    assert_eq!(common::read(&backing.join("f")).as_deref(), Some(&b"durable"[..]));
    assert!(common::read(&backing.join("g")).is_none());
    let names: Vec<_> =
        std::fs::read_dir(&backing).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(
        names,
        vec![std::ffi::OsString::from("f")],
        "nothing of the crash filesystem's own is left"
    );
    drop(dir);
}

#[test]
fn a_clean_unmount_keeps_everything_and_the_next_mount_starts_from_it() {
    let fx = Fixture::new();
    fx.write("f", b"never synced");
    let Fixture { fs, backing, mnt, _dir: dir } = fx;
    fs.unmount().unwrap();
    assert_eq!(common::read(&backing.join("f")).as_deref(), Some(&b"never synced"[..]));
    let mut fs = paxstore_crashfs::CrashFs::mount(&backing, &mnt).unwrap();
    fs.power_cut(PowerCut::seeded(0)).unwrap();
    assert_eq!(
        common::read(&mnt.join("f")).as_deref(),
        Some(&b"never synced"[..]),
        "what a mount finds is durable"
    );
    drop(fs);
    drop(dir);
}

fn directory_rename_needs_parent_fsync(broken: Broken) -> Result<(), String> {
    let mut fx = Fixture::broken(broken);
    std::fs::create_dir(fx.path("d")).unwrap();
    fx.write_synced("d/f", b"in d");
    fx.sync_dir("d");
    fx.sync_dir("");
    std::fs::rename(fx.path("d"), fx.path("e")).unwrap();
    fx.cut();
    ensure(fx.read("d/f").as_deref() == Some(b"in d"), "the unsynced directory rename survived")?;
    ensure(!fx.path("e").exists(), "e exists though its name was never durable")?;
    std::fs::rename(fx.path("d"), fx.path("e")).unwrap();
    fx.sync_dir("");
    fx.cut();
    ensure(
        fx.read("e/f").as_deref() == Some(b"in d"),
        "the synced rename lost the directory's files",
    )?;
    let e = std::fs::rename(fx.path("e"), fx.path("e/sub")).unwrap_err();
    ensure(e.raw_os_error() == Some(libc::EINVAL), format!("a move into itself: {e}"))?;
    std::fs::create_dir(fx.path("full")).unwrap();
    fx.write("full/x", b"x");
    let e = std::fs::rename(fx.path("e"), fx.path("full")).unwrap_err();
    ensure(e.raw_os_error() == Some(libc::ENOTEMPTY), format!("over a non-empty directory: {e}"))
}

#[test]
fn a_directory_rename_is_durable_after_its_parent_fsync_and_keeps_its_entries() {
    check_the_check(directory_rename_needs_parent_fsync, Broken::DirentsDurableAtOnce);
}
