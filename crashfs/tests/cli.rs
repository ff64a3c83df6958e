//! The command line: `mount` in one process, `cut`, `fail`, `stats` and `unmount` from
//! others, as a user would from two shells.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};

const EXE: &str = env!("CARGO_BIN_EXE_paxstore-crashfs");

fn run(args: &[&str]) -> Output {
    Command::new(EXE).args(args).output().unwrap()
}

fn ok(args: &[&str]) -> String {
    let out = run(args);
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn mount_cut_fail_and_unmount_from_other_processes() {
    if let Err(e) = paxstore_crashfs::available() {
        panic!("{e} (these tests need FUSE; leave them out with --exclude paxstore-crashfs)");
    }
    let dir = tempfile::tempdir().unwrap();
    let (backing, mnt) = (dir.path().join("backing"), dir.path().join("mnt"));
    std::fs::create_dir(&backing).unwrap();
    std::fs::create_dir(&mnt).unwrap();
    std::fs::write(backing.join("durable"), b"found at mount").unwrap();
    let m = mnt.to_str().unwrap();

    let mut daemon = Command::new(EXE)
        .args(["mount", backing.to_str().unwrap(), m])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut banner = String::new();
    BufReader::new(daemon.stdout.take().unwrap()).read_line(&mut banner).unwrap();
    assert!(banner.starts_with("mounted"), "{banner}");

    std::fs::write(mnt.join("unsynced"), b"x").unwrap();
    let report = ok(&["cut", m, "--seed", "77"]);
    assert!(report.contains("seed 77") && report.contains("1 paths lost"), "{report}");
    assert!(!mnt.join("unsynced").exists());
    assert_eq!(std::fs::read(mnt.join("durable")).unwrap(), b"found at mount");

    ok(&["fail", m, "--op", "create", "--effect", "enospc", "--pattern", "*.log"]);
    assert!(ok(&["faults", m]).contains("enospc on create #1 of *.log"));
    let e = std::fs::write(mnt.join("a.log"), b"x").unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ENOSPC));
    ok(&["clear", m]);
    std::fs::write(mnt.join("a.log"), b"x").unwrap();
    assert!(ok(&["stats", m]).contains("power_cuts=1"));

    let bad = run(&["fail", m, "--op", "read", "--effect", "eio"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown operation"));

    ok(&["unmount", m]);
    assert!(daemon.wait().unwrap().success());
    assert_eq!(std::fs::read(backing.join("a.log")).unwrap(), b"x", "a clean unmount keeps all");
    assert!(!Path::new(&backing.join(".paxstore-crashfs")).exists());
}

#[test]
fn check_says_whether_fuse_can_be_mounted() {
    let out = run(&["check"]);
    match paxstore_crashfs::available() {
        Ok(()) => assert!(out.status.success()),
        Err(e) => {
            assert!(!out.status.success());
            eprintln!("{e}");
        }
    }
}
