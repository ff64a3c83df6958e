//! A crash filesystem over a temporary backing directory, for the tests.
//!
//! The tests need FUSE (Linux, root, `/dev/fuse`): where it cannot be mounted they fail
//! with the reason, never pass quietly. `cargo test --workspace --exclude
//! paxstore-crashfs` leaves them out on such a machine.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use paxstore_crashfs::{Broken, CrashFs, CutReport, MountOptions, PowerCut};

/// A mounted crash filesystem; unmounted before its directories go.
pub(crate) struct Fixture {
    pub(crate) fs: CrashFs,
    pub(crate) mnt: PathBuf,
    pub(crate) backing: PathBuf,
    pub(crate) _dir: tempfile::TempDir,
}

impl Fixture {
    pub(crate) fn new() -> Fixture {
        Fixture::broken(Broken::None)
    }

    /// Mounts a deliberately broken variant (or the real thing, for `Broken::None`).
    pub(crate) fn broken(broken: Broken) -> Fixture {
        Fixture::with_files(broken, &[])
    }

    /// Mounts over a backing directory holding `files` (durable, since they are there at
    /// mount: no fsync of the variant under test is involved).
    pub(crate) fn with_files(broken: Broken, files: &[(&str, &[u8])]) -> Fixture {
        if let Err(e) = paxstore_crashfs::available() {
            panic!("{e} (these tests need FUSE; leave them out with --exclude paxstore-crashfs)");
        }
        let dir = tempfile::Builder::new().prefix("crashfs-test-").tempdir().unwrap();
        let backing = dir.path().join("backing");
        let mnt = dir.path().join("mnt");
        std::fs::create_dir(&backing).unwrap();
        std::fs::create_dir(&mnt).unwrap();
        for (name, bytes) in files {
            std::fs::write(backing.join(name), bytes).unwrap();
        }
        let fs =
            CrashFs::mount_with(&backing, &mnt, MountOptions::default().broken(broken)).unwrap();
        Fixture { fs, mnt, backing, _dir: dir }
    }

    pub(crate) fn path(&self, rel: &str) -> PathBuf {
        self.mnt.join(rel)
    }

    /// A power cut that loses every unsynced write.
    pub(crate) fn cut(&mut self) -> CutReport {
        self.cut_with(PowerCut::seeded(0))
    }

    pub(crate) fn cut_with(&mut self, cut: PowerCut) -> CutReport {
        self.fs.power_cut(cut).unwrap()
    }

    /// Writes `bytes` to `rel` (created or truncated), without any sync.
    pub(crate) fn write(&self, rel: &str, bytes: &[u8]) -> File {
        let mut f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(self.path(rel))
            .unwrap();
        f.write_all(bytes).unwrap();
        f
    }

    /// Writes `bytes` to `rel` and fsyncs the file (not its directory).
    pub(crate) fn write_synced(&self, rel: &str, bytes: &[u8]) {
        self.write(rel, bytes).sync_all().unwrap();
    }

    /// Fsyncs the directory `rel` ("" for the root).
    pub(crate) fn sync_dir(&self, rel: &str) {
        File::open(self.path(rel)).unwrap().sync_all().unwrap();
    }

    /// The content of `rel`, or `None` if it does not exist.
    pub(crate) fn read(&self, rel: &str) -> Option<Vec<u8>> {
        read(&self.path(rel))
    }
}

pub(crate) fn read(path: &Path) -> Option<Vec<u8>> {
    match std::fs::read(path) {
        Ok(bytes) => Some(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => panic!("reading {}: {e}", path.display()),
    }
}

/// Runs the ignored test `test` of this test binary in a child process with `var` set to
/// `path`, and waits for it to finish; `Err` with its stderr if it failed.
pub(crate) fn run_child(test: &str, var: &str, path: &Path) -> Result<(), String> {
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new(exe)
        .args([test, "--exact", "--ignored", "--nocapture", "--test-threads=1"])
        .env(var, path)
        .output()
        .unwrap();
    ensure(
        out.status.success(),
        format!("the child {test} failed: {}", String::from_utf8_lossy(&out.stderr)),
    )
}

/// File content for messages: text where it is text.
pub(crate) fn show(bytes: Option<Vec<u8>>) -> Option<String> {
    bytes.map(|b| String::from_utf8_lossy(&b).chars().take(80).collect())
}

/// `Err(what)` unless `cond`: the checks return this so their broken variants can show
/// that they fail.
pub(crate) fn ensure(cond: bool, what: impl Into<String>) -> Result<(), String> {
    if cond {
        Ok(())
    } else {
        Err(what.into())
    }
}

/// Asserts that `check` passes on the real filesystem and fails on `broken`.
pub(crate) fn check_the_check(check: fn(Broken) -> Result<(), String>, broken: Broken) {
    if let Err(e) = check(Broken::None) {
        panic!("the real filesystem fails the check: {e}");
    }
    match check(broken) {
        Ok(()) => panic!("the check passes on the broken variant {broken:?}: it catches nothing"),
        Err(e) => eprintln!("{broken:?} caught: {e}"),
    }
}
