//! Fault injection on each kind of call, on a real mount, each check run against a
//! variant whose faults never fire (or whose failed fsync keeps its writes).
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used)]

mod common;

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::FileExt;

use common::{check_the_check, ensure, show, Fixture};
use paxstore_crashfs::{Broken, Effect, Fault, Op, PowerCut};

fn errno(e: &std::io::Error) -> Option<i32> {
    e.raw_os_error()
}

fn nth_write_fails(broken: Broken) -> Result<(), String> {
    let fx = Fixture::broken(broken);
    let f = fx.write("a.log", b"");
    fx.fs.arm(Fault::new(Op::Write, Effect::Eio).nth(2).matching("*.log")).unwrap();
    // Another name does not count.
    fx.write("other", b"x");
    f.write_all_at(b"one", 0).map_err(|e| format!("write 1 failed: {e}"))?;
    let second = f.write_all_at(b"TWO", 0);
    ensure(
        second.as_ref().err().and_then(errno) == Some(libc::EIO),
        format!("write 2: {second:?}"),
    )?;
    f.write_all_at(b"333", 3).map_err(|e| format!("write 3 failed: {e}"))?;
    ensure(fx.read("a.log").as_deref() == Some(b"one333"), "the failed write changed the file")?;
    ensure(fx.fs.stats().unwrap().faults_fired == 1, "faults_fired is not 1")
}

#[test]
fn the_nth_write_to_a_matching_file_fails_with_eio_and_changes_nothing() {
    check_the_check(nth_write_fails, Broken::FaultsNeverFire);
}

fn sticky_enospc(broken: Broken) -> Result<(), String> {
    let fx = Fixture::broken(broken);
    let f = fx.write("f", b"");
    fx.fs.arm(Fault::new(Op::Write, Effect::Enospc).sticky()).unwrap();
    for i in 0..3 {
        let r = f.write_all_at(b"x", i);
        ensure(
            r.as_ref().err().and_then(errno) == Some(libc::ENOSPC),
            format!("write {i}: {r:?}"),
        )?;
    }
    fx.fs.clear_faults().unwrap();
    f.write_all_at(b"ok", 0).map_err(|e| format!("after clearing: {e}"))?;
    ensure(fx.read("f").as_deref() == Some(b"ok"), "unexpected content")
}

#[test]
fn a_sticky_enospc_fails_every_write_until_cleared() {
    check_the_check(sticky_enospc, Broken::FaultsNeverFire);
}

fn fsync_fails(broken: Broken) -> Result<(), String> {
    let mut fx = Fixture::broken(broken);
    fx.write_synced("f", b"old!");
    fx.sync_dir("");
    let f = OpenOptions::new().write(true).open(fx.path("f")).unwrap();
    f.write_all_at(b"new!", 0).unwrap();
    fx.fs.arm(Fault::new(Op::Fsync, Effect::Eio)).unwrap();
    let r = f.sync_data();
    ensure(r.as_ref().err().and_then(errno) == Some(libc::EIO), format!("fsync: {r:?}"))?;
    // Read back as written, but a later fsync that succeeds does not make it durable:
    // Linux marked the pages clean when their write-back failed.
    ensure(fx.read("f").as_deref() == Some(b"new!"), "the failed fsync changed what is read")?;
    f.sync_data().map_err(|e| format!("the second fsync failed: {e}"))?;
    drop(f);
    fx.cut();
    ensure(
        fx.read("f").as_deref() == Some(b"old!"),
        format!("f is {:?}: the write of a failed fsync became durable", show(fx.read("f"))),
    )
}

#[test]
fn a_failed_fsync_loses_the_writes_before_it_for_good() {
    check_the_check(fsync_fails, Broken::FailedFsyncKeepsWrites);
}

#[test]
fn a_failed_fsync_check_needs_faults_that_fire() {
    check_the_check(fsync_fails, Broken::FaultsNeverFire);
}

fn dir_fsync_fails(broken: Broken) -> Result<(), String> {
    let mut fx = Fixture::broken(broken);
    fx.write_synced("f", b"x");
    fx.fs.arm(Fault::new(Op::Fsync, Effect::Eio).matching("d")).unwrap();
    std::fs::create_dir(fx.path("d")).unwrap();
    fx.sync_dir("");
    let r = File::open(fx.path("d")).unwrap().sync_all();
    ensure(r.as_ref().err().and_then(errno) == Some(libc::EIO), format!("dir fsync: {r:?}"))?;
    fx.cut();
    ensure(fx.read("f").is_some(), "the root's fsync was failed instead of d's")
}

#[test]
fn a_directory_fsync_fails_on_demand() {
    check_the_check(dir_fsync_fails, Broken::FaultsNeverFire);
}

fn rename_fails(broken: Broken) -> Result<(), String> {
    let fx = Fixture::broken(broken);
    fx.write("a", b"a");
    fx.write("b", b"b");
    fx.fs.arm(Fault::new(Op::Rename, Effect::Eio).matching("b")).unwrap();
    let r = std::fs::rename(fx.path("a"), fx.path("b"));
    ensure(r.as_ref().err().and_then(errno) == Some(libc::EIO), format!("rename: {r:?}"))?;
    ensure(
        fx.read("a").as_deref() == Some(b"a") && fx.read("b").as_deref() == Some(b"b"),
        "names changed",
    )?;
    std::fs::rename(fx.path("a"), fx.path("c")).map_err(|e| format!("the next rename: {e}"))
}

#[test]
fn a_rename_fails_on_demand_and_changes_nothing() {
    check_the_check(rename_fails, Broken::FaultsNeverFire);
}

fn create_fails(broken: Broken) -> Result<(), String> {
    let fx = Fixture::broken(broken);
    fx.fs.arm(Fault::new(Op::Create, Effect::Enospc).matching("*.sst").sticky()).unwrap();
    let r = File::create(fx.path("1.sst"));
    ensure(r.as_ref().err().and_then(errno) == Some(libc::ENOSPC), format!("create: {r:?}"))?;
    let r = std::fs::create_dir(fx.path("2.sst"));
    ensure(r.as_ref().err().and_then(errno) == Some(libc::ENOSPC), format!("mkdir: {r:?}"))?;
    ensure(
        !fx.path("1.sst").exists() && !fx.path("2.sst").exists(),
        "a failed create left a name",
    )?;
    File::create(fx.path("1.log")).map_err(|e| format!("a create of another name: {e}"))?;
    Ok(())
}

#[test]
fn a_create_or_mkdir_fails_on_demand_and_leaves_no_name() {
    check_the_check(create_fails, Broken::FaultsNeverFire);
}

fn power_off_at_a_write(broken: Broken) -> Result<(), String> {
    let mut fx = Fixture::broken(broken);
    fx.write_synced("f", b"");
    fx.sync_dir("");
    let mut f = OpenOptions::new().write(true).open(fx.path("f")).unwrap();
    fx.fs.arm(Fault::new(Op::Write, Effect::PowerOff).nth(3)).unwrap();
    f.write_all(b"1").unwrap();
    f.sync_data().unwrap();
    f.write_all(b"2").unwrap();
    let third = f.write_all(b"3");
    ensure(third.is_err(), "the write the power went at succeeded")?;
    ensure(f.sync_data().is_err(), "an fsync after the power went succeeded")?;
    ensure(fx.fs.powered_off().unwrap().is_some(), "powered_off() says the power is on")?;
    drop(f);
    fx.cut_with(PowerCut::seeded(9));
    ensure(fx.read("f").as_deref() == Some(b"1"), format!("f is {:?}", show(fx.read("f"))))?;
    ensure(fx.fs.powered_off().unwrap().is_none(), "the power is still off after the cut")
}

#[test]
fn a_power_off_fault_stops_everything_at_the_nth_call() {
    check_the_check(power_off_at_a_write, Broken::FaultsNeverFire);
}

/// A power-off fault, then `power_on` without a cut: what a process killed at that call
/// leaves, unsynced writes included.
fn kill_at_a_write(broken: Broken) -> Result<(), String> {
    let fx = Fixture::broken(broken);
    fx.write_synced("f", b"");
    fx.sync_dir("");
    let mut f = OpenOptions::new().write(true).open(fx.path("f")).unwrap();
    fx.fs.arm(Fault::new(Op::Write, Effect::PowerOff).nth(3)).unwrap();
    f.write_all(b"1").unwrap();
    f.write_all(b"2").unwrap();
    ensure(f.write_all(b"3").is_err(), "the write the power went at succeeded")?;
    ensure(f.write_all(b"4").is_err(), "a write after the power went succeeded")?;
    drop(f);
    fx.fs.clear_faults().unwrap();
    fx.fs.power_on().unwrap();
    ensure(fx.fs.powered_off().unwrap().is_none(), "the power is still off")?;
    ensure(fx.read("f").as_deref() == Some(b"12"), format!("f is {:?}", show(fx.read("f"))))
}

#[test]
fn power_on_after_a_power_off_fault_keeps_what_a_killed_process_wrote() {
    check_the_check(kill_at_a_write, Broken::FaultsNeverFire);
}

#[test]
fn bad_faults_are_refused() {
    let fx = Fixture::new();
    assert!(fx.fs.arm(Fault::new(Op::Write, Effect::Eio).nth(0)).is_err());
    assert!(fx.fs.arm(Fault::new(Op::Write, Effect::Eio).matching("[")).is_err());
    assert!(fx.fs.faults().unwrap().is_empty());
    let e = std::fs::read_dir(fx.path("missing")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
}

/// A put done the durable way: temporary file, write, fsync, rename, directory fsync.
fn put(fx: &Fixture, key: &str, value: &[u8]) -> std::io::Result<()> {
    let tmp = fx.path(&format!("{key}.tmp"));
    let mut f = File::create(&tmp)?;
    f.write_all(value)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, fx.path(key))?;
    File::open(&fx.mnt)?.sync_all()
}

fn fails_at_every_call_position(broken: Broken) -> Result<(), String> {
    let fx = Fixture::broken(broken);
    let before = fx.fs.stats().unwrap().calls;
    put(&fx, "k", b"v1").unwrap();
    let calls = fx.fs.stats().unwrap().calls - before;
    ensure(
        calls == 5,
        format!("a put made {calls} calls, not create, write, fsync, rename, fsync"),
    )?;
    for position in 1..=calls {
        let fx = Fixture::with_files(broken, &[("k", b"v0")]);
        fx.fs.arm(Fault::new(Op::Any, Effect::Eio).nth(position)).unwrap();
        let outcome = put(&fx, "k", b"v1");
        ensure(outcome.is_err(), format!("the put succeeded with call {position} failing"))?;
        ensure(fx.fs.stats().unwrap().calls == position, "the put went on after the failure")?;
    }
    Ok(())
}

#[test]
fn any_call_position_can_be_failed_in_turn() {
    check_the_check(fails_at_every_call_position, Broken::FaultsNeverFire);
}

#[test]
fn a_power_cut_at_any_call_of_an_unfinished_durable_put_leaves_the_old_value() {
    for position in 1..=5 {
        let mut fx = Fixture::with_files(Broken::None, &[("k", b"v0")]);
        fx.fs.arm(Fault::new(Op::Any, Effect::PowerOff).nth(position)).unwrap();
        assert!(put(&fx, "k", b"v1").is_err(), "position {position}");
        for cut in [PowerCut::seeded(position), PowerCut::seeded(position).reordered()] {
            fx.cut_with(cut);
            let got = fx.read("k");
            assert!(got.as_deref() == Some(b"v0"), "position {position}, {cut}: {:?}", show(got));
            fx.fs.arm(Fault::new(Op::Any, Effect::PowerOff).nth(position)).unwrap();
            assert!(put(&fx, "k", b"v1").is_err());
        }
    }
}
