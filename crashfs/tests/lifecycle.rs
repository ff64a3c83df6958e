//! Mounts come and go cleanly: a panicking test leaves no mount behind, and a mount left
//! by a killed process does not stop the next one.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use paxstore_crashfs::{CrashFs, Error};

fn mounted_at(path: &Path) -> bool {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let path = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    info.lines().any(|l| l.split(' ').nth(4) == Some(path.to_str().unwrap()))
}

fn dirs() -> (tempfile::TempDir, PathBuf, PathBuf) {
    if let Err(e) = paxstore_crashfs::available() {
        panic!("{e} (these tests need FUSE; leave them out with --exclude paxstore-crashfs)");
    }
    let dir = tempfile::tempdir().unwrap();
    let (backing, mnt) = (dir.path().join("backing"), dir.path().join("mnt"));
    std::fs::create_dir(&backing).unwrap();
    std::fs::create_dir(&mnt).unwrap();
    (dir, backing, mnt)
}

#[test]
fn a_panicking_test_leaves_no_mount_behind() {
    let (_dir, backing, mnt) = dirs();
    let outcome = std::panic::catch_unwind(|| {
        let _fs = CrashFs::mount(&backing, &mnt).unwrap();
        std::fs::write(mnt.join("f"), b"x").unwrap();
        assert!(mounted_at(&mnt));
        panic!("a failing check");
    });
    assert!(outcome.is_err());
    assert!(!mounted_at(&mnt), "the mount outlived the panic");
    assert_eq!(std::fs::read(backing.join("f")).unwrap(), b"x");
}

#[test]
fn a_mount_left_by_a_killed_process_is_replaced() {
    let (_dir, backing, mnt) = dirs();
    std::fs::write(backing.join("f"), b"kept").unwrap();
    let mut daemon = Command::new(env!("CARGO_BIN_EXE_paxstore-crashfs"))
        .args(["mount", backing.to_str().unwrap(), mnt.to_str().unwrap()])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut banner = String::new();
    BufReader::new(daemon.stdout.take().unwrap()).read_line(&mut banner).unwrap();
    std::fs::write(mnt.join("g"), b"unsynced").unwrap();
    std::fs::remove_file(mnt.join("f")).unwrap();
    daemon.kill().unwrap();
    daemon.wait().unwrap();
    // The killed daemon's mount is dead, and its own directory is left in the backing.
    assert!(mounted_at(&mnt));
    let dead = std::fs::metadata(&mnt).unwrap_err();
    assert_eq!(dead.raw_os_error(), Some(libc::ENOTCONN), "{dead}");
    assert!(backing.join(".paxstore-crashfs/trash").exists());

    let fs = CrashFs::mount(&backing, &mnt).unwrap();
    // What the killed run left in the backing directory is the new durable state; the
    // unlinked file it kept in its trash is gone.
    assert_eq!(std::fs::read(mnt.join("g")).unwrap(), b"unsynced");
    assert!(!mnt.join("f").exists());
    fs.unmount().unwrap();
    assert!(!mounted_at(&mnt));
    // The killed daemon's control socket is left too; the next `mount` would replace it.
    let _ = std::fs::remove_file(paxstore_crashfs::control::default_socket(&mnt).unwrap());
}

#[test]
fn a_live_mount_is_not_replaced() {
    let (_dir, backing, mnt) = dirs();
    let other = backing.parent().unwrap().join("other");
    std::fs::create_dir(&other).unwrap();
    let _fs = CrashFs::mount(&backing, &mnt).unwrap();
    match CrashFs::mount(&other, &mnt) {
        Err(Error::AlreadyMounted(path)) => assert_eq!(path, mnt.canonicalize().unwrap()),
        other => panic!("mounting over a live crash filesystem: {other:?}"),
    }
}

#[test]
fn bad_paths_are_refused_with_the_reason() {
    let (_dir, backing, mnt) = dirs();
    let inside = backing.join("mnt");
    std::fs::create_dir(&inside).unwrap();
    let e = CrashFs::mount(&backing, &inside).unwrap_err();
    assert!(e.to_string().contains("must not contain each other"), "{e}");
    let e = CrashFs::mount(backing.join("missing"), &mnt).unwrap_err();
    assert!(e.to_string().contains("missing"), "{e}");
    std::os::unix::fs::symlink("x", backing.join("link")).unwrap();
    match CrashFs::mount(&backing, &mnt) {
        Err(Error::Unsupported { path, .. }) => assert_eq!(path, backing.join("link")),
        other => panic!("a backing directory with a symlink: {other:?}"),
    }
    assert!(!mounted_at(&mnt));
}
