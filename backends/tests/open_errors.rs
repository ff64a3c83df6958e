//! Opening a path that holds something other than the backend's own store gives a typed
//! error — never a panic, never a silent wipe — for the RocksDB, sled, redb, fjall and
//! raft-engine backends.
//!
//! Each case leaves the foreign bytes as they were and, where another backend's store was
//! there, checks that it still opens with its data.
#![cfg(any(
    feature = "rocksdb",
    feature = "sled",
    feature = "redb",
    feature = "fjall",
    feature = "raft-engine"
))]
// Test setup helpers: a failed setup step is a failed test, so they unwrap.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::{Path, PathBuf};

use paxstore::{Durability, Storage, StorageError, StorageOp, StorageResult};
use paxstore_backends::BackendKind;
use paxstore_conformance::TestEntry;

type Store = Box<dyn Storage<TestEntry>>;

fn open(kind: BackendKind, dir: &Path) -> StorageResult<Store> {
    kind.open::<TestEntry>(dir, Durability::Immediate)
}

/// The error of opening `dir` with `kind`; panics (fails the test) if it opened.
fn open_err(kind: BackendKind, dir: &Path) -> StorageError {
    match open(kind, dir) {
        Ok(_) => panic!("{kind} opened {} although it holds something else", dir.display()),
        Err(err) => err,
    }
}

fn assert_typed(kind: BackendKind, err: &StorageError) {
    assert!(
        matches!(
            err,
            StorageError::Unrecognized { .. }
                | StorageError::Io { .. }
                | StorageError::Backend { .. }
                | StorageError::Engine { .. }
                | StorageError::Corruption { .. }
        ),
        "{kind}: unexpected error kind: {err:?}"
    );
}

fn assert_unrecognized(kind: BackendKind, err: &StorageError) {
    match err {
        StorageError::Unrecognized { backend, .. } => assert_eq!(*backend, kind.name()),
        other => panic!("{kind}: expected Unrecognized, got {other:?}"),
    }
}

/// Every file under `dir` with its bytes, to check that nothing was changed.
fn snapshot_tree(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(path) = stack.pop() {
        if path.is_dir() {
            for entry in fs::read_dir(&path).unwrap() {
                stack.push(entry.unwrap().path());
            }
        } else {
            out.push((path.clone(), fs::read(&path).unwrap()));
        }
    }
    out.sort();
    out
}

/// Creates a store of `kind` in `dir` holding three entries and a decided index.
fn make_store(kind: BackendKind, dir: &Path) {
    let mut store = open(kind, dir).unwrap();
    store
        .write_atomically(vec![
            StorageOp::AppendEntries((0..3).map(|i| TestEntry::new(i, 16)).collect()),
            StorageOp::SetDecidedIndex(2),
        ])
        .unwrap();
}

fn assert_store_intact(kind: BackendKind, dir: &Path) {
    let store = open(kind, dir).unwrap();
    assert_eq!(store.get_log_len().unwrap(), 3, "{kind} store lost entries");
    assert_eq!(store.get_decided_idx().unwrap(), 2);
}

fn mine() -> Vec<BackendKind> {
    BackendKind::compiled_in()
        .into_iter()
        .filter(|k| ["rocksdb", "sled", "redb", "fjall", "raft-engine"].contains(&k.name()))
        .collect()
}

/// Pseudo-random bytes that no engine recognises.
fn garbage(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
fn regular_file_where_the_directory_belongs() {
    for kind in mine() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("store");
        fs::write(&path, b"not a directory").unwrap();
        let err = open_err(kind, &path);
        assert_unrecognized(kind, &err);
        assert_eq!(fs::read(&path).unwrap(), b"not a directory");
    }
}

#[test]
fn garbage_file_where_the_directory_belongs() {
    for kind in mine() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("store");
        fs::write(&path, garbage(4096)).unwrap();
        assert_unrecognized(kind, &open_err(kind, &path));
        assert!(fs::read(&path).unwrap() == garbage(4096), "{kind} changed the file");
    }
}

#[test]
fn directory_of_unrelated_files() {
    for kind in mine() {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join("notes.txt"), b"hello").unwrap();
        fs::create_dir(tmp.path().join("photos")).unwrap();
        let before = snapshot_tree(tmp.path());
        assert_unrecognized(kind, &open_err(kind, tmp.path()));
        assert!(snapshot_tree(tmp.path()) == before, "{kind} changed the files");
    }
}

#[test]
fn another_backends_store() {
    for theirs in mine() {
        for kind in mine().into_iter().filter(|k| *k != theirs) {
            let tmp = tempfile::tempdir().unwrap();
            make_store(theirs, tmp.path());
            let before = snapshot_tree(tmp.path());
            let err = open_err(kind, tmp.path());
            assert_unrecognized(kind, &err);
            assert!(err.to_string().contains(&tmp.path().display().to_string()), "{err}");
            assert!(snapshot_tree(tmp.path()) == before, "{kind} changed {theirs}'s files");
            assert_store_intact(theirs, tmp.path());
        }
    }
}

/// The files an engine would find in its directory, filled with garbage.
fn plant_garbage_engine_files(kind: BackendKind, dir: &Path) {
    match kind.name() {
        "rocksdb" => {
            fs::write(dir.join("CURRENT"), b"MANIFEST-000999\n").unwrap();
            fs::write(dir.join("MANIFEST-000999"), garbage(8192)).unwrap();
        }
        "sled" => {
            fs::write(dir.join("conf"), garbage(64)).unwrap();
            fs::write(dir.join("db"), garbage(1 << 20)).unwrap();
        }
        "redb" => fs::write(dir.join("paxstore.redb"), garbage(1 << 20)).unwrap(),
        "fjall" => fs::write(dir.join("version"), garbage(64)).unwrap(),
        "raft-engine" => fs::write(dir.join("0000000000000001.raftlog"), garbage(8192)).unwrap(),
        other => unreachable!("not one of ours: {other}"),
    }
}

#[test]
fn garbage_bytes_in_the_engine_files() {
    for kind in mine() {
        let tmp = tempfile::tempdir().unwrap();
        plant_garbage_engine_files(kind, tmp.path());
        let before = snapshot_tree(tmp.path());
        let err = open_err(kind, tmp.path());
        assert_typed(kind, &err);
        // The engine may add files of its own (a lock, a log), but must not change or
        // remove what was there.
        let after = snapshot_tree(tmp.path());
        for (path, bytes) in &before {
            let now = after.iter().find(|(p, _)| p == path).map(|(_, b)| b);
            assert!(now == Some(bytes), "{kind} changed or removed {}", path.display());
        }
    }
}

/// A plain sled directory (no paxstore marker file) whose `db` is garbage: refused before
/// sled sees it, since sled 0.34 would rewrite the unreadable data file.
#[cfg(feature = "sled")]
#[test]
fn garbage_sled_data_file_with_a_valid_conf() {
    let tmp = tempfile::tempdir().unwrap();
    {
        let db = sled::open(tmp.path()).unwrap();
        db.insert(b"k", b"v").unwrap();
        db.flush().unwrap();
    }
    fs::write(tmp.path().join("db"), garbage(1 << 20)).unwrap();
    let err = open_err(BackendKind::Sled, tmp.path());
    assert_unrecognized(BackendKind::Sled, &err);
    assert!(fs::read(tmp.path().join("db")).unwrap() == garbage(1 << 20), "sled's db changed");
}

/// Our own sled store whose `db` became garbage is an error, never adopted as a new
/// store (sled itself rewrites the unreadable segments when it opens them).
#[cfg(feature = "sled")]
#[test]
fn corrupted_sled_store_is_not_adopted() {
    let tmp = tempfile::tempdir().unwrap();
    make_store(BackendKind::Sled, tmp.path());
    // sled may still hold its lock a moment after the drop; the backend waits for it.
    fs::write(tmp.path().join("db"), garbage(1 << 20)).unwrap();
    assert_typed(BackendKind::Sled, &open_err(BackendKind::Sled, tmp.path()));
}

#[cfg(feature = "rocksdb")]
#[test]
fn someone_elses_rocksdb_database() {
    let tmp = tempfile::tempdir().unwrap();
    {
        let mut opts = rocksdb::Options::default();
        opts.create_if_missing(true);
        let db = rocksdb::DB::open(&opts, tmp.path()).unwrap();
        db.put(b"user:1", b"alice").unwrap();
    }
    assert_unrecognized(BackendKind::RocksDb, &open_err(BackendKind::RocksDb, tmp.path()));
    let db = rocksdb::DB::open_default(tmp.path()).unwrap();
    assert_eq!(db.get(b"user:1").unwrap().as_deref(), Some(&b"alice"[..]));
}

#[cfg(feature = "sled")]
#[test]
fn someone_elses_sled_database() {
    let tmp = tempfile::tempdir().unwrap();
    {
        let db = sled::open(tmp.path()).unwrap();
        db.insert(b"user:1", b"alice").unwrap();
        db.flush().unwrap();
    }
    assert_unrecognized(BackendKind::Sled, &open_err(BackendKind::Sled, tmp.path()));
}

#[cfg(feature = "redb")]
#[test]
fn someone_elses_redb_database() {
    const USERS: redb::TableDefinition<&str, &str> = redb::TableDefinition::new("users");
    let tmp = tempfile::tempdir().unwrap();
    {
        let db = redb::Database::create(tmp.path().join("paxstore.redb")).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(USERS).unwrap().insert("1", "alice").unwrap();
        txn.commit().unwrap();
    }
    assert_unrecognized(BackendKind::Redb, &open_err(BackendKind::Redb, tmp.path()));
}

/// Makes `dir` and everything in it read-only (0555 directories, 0444 files).
fn make_read_only(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    for (path, _) in snapshot_tree(dir) {
        fs::set_permissions(&path, fs::Permissions::from_mode(0o444)).unwrap();
    }
    let mut dirs = vec![dir.to_owned()];
    while let Some(d) = dirs.pop() {
        for entry in fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            }
        }
        fs::set_permissions(&d, fs::Permissions::from_mode(0o555)).unwrap();
    }
}

/// Undoes [`make_read_only`] so the temporary directory can be removed.
fn make_writable(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let mut dirs = vec![dir.to_owned()];
    while let Some(d) = dirs.pop() {
        let _ = fs::set_permissions(&d, fs::Permissions::from_mode(0o755));
        for entry in fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            }
        }
    }
}

/// `true` if this process can write into a 0555 directory anyway (root, or
/// `CAP_DAC_OVERRIDE`), so permissions cannot make a directory read-only for it.
fn permissions_are_bypassed(dir: &Path) -> bool {
    let probe = dir.join(".write-probe");
    let bypassed = fs::write(&probe, b"").is_ok();
    let _ = fs::remove_file(&probe);
    bypassed
}

const READ_ONLY_CHILD_ENV: &str = "PAXSTORE_READ_ONLY_CHILD";

/// The two read-only cases, run in this process: an empty read-only directory (nothing
/// can be created) and an existing store made read-only.
fn read_only_cases(root: &Path) {
    for kind in mine() {
        let empty = root.join(format!("{kind}-empty"));
        let err = open_err(kind, &empty);
        assert_typed(kind, &err);
        let existing = root.join(format!("{kind}-existing"));
        let before = snapshot_tree(&existing);
        let err = open_err(kind, &existing);
        assert_typed(kind, &err);
        assert!(snapshot_tree(&existing) == before, "{kind} changed a read-only store");
    }
}

#[test]
fn read_only_directory() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    for kind in mine() {
        fs::create_dir(tmp.path().join(format!("{kind}-empty"))).unwrap();
        make_store(kind, &tmp.path().join(format!("{kind}-existing")));
    }
    for kind in mine() {
        make_read_only(&tmp.path().join(format!("{kind}-empty")));
        make_read_only(&tmp.path().join(format!("{kind}-existing")));
    }
    if !permissions_are_bypassed(&tmp.path().join(format!("{}-empty", mine()[0]))) {
        read_only_cases(tmp.path());
        make_writable(tmp.path());
        return;
    }
    // Running as root: permissions do not bind this process, so run the cases in a child
    // process as user `nobody`, from a copy of this test binary that `nobody` can read.
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let exe = tmp.path().join("open_errors-test");
    fs::copy(std::env::current_exe().unwrap(), &exe).unwrap();
    fs::set_permissions(&exe, fs::Permissions::from_mode(0o755)).unwrap();
    use std::os::unix::process::CommandExt;
    let output = std::process::Command::new(&exe)
        .args(["--exact", "read_only_directory_child", "--ignored", "--nocapture"])
        .env(READ_ONLY_CHILD_ENV, tmp.path())
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "read-only cases failed as user nobody:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The child half of [`read_only_directory`] when that test runs as root.
#[test]
#[ignore = "run by read_only_directory in a child process as user nobody"]
fn read_only_directory_child() {
    let root = std::env::var_os(READ_ONLY_CHILD_ENV).expect("run by read_only_directory");
    let root = PathBuf::from(root);
    assert!(!permissions_are_bypassed(&root.join(format!("{}-empty", mine()[0]))));
    read_only_cases(&root);
}

/// A store another handle has open is `Locked`, naming the path, once the wait for the
/// other handle ran out (sled's and the WAL's; redb's, fjall's and raft-engine's at
/// once); after that handle is
/// dropped the store opens again. RocksDB reports it as an engine error (see its docs).
#[test]
fn a_store_open_elsewhere_is_locked() {
    let kinds = BackendKind::compiled_in();
    let locking = ["sled", "redb", "wal", "fjall", "raft-engine"];
    for kind in kinds.into_iter().filter(|k| locking.contains(&k.name())) {
        let tmp = tempfile::tempdir().unwrap();
        let first = open(kind, tmp.path()).unwrap();
        match open_err(kind, tmp.path()) {
            StorageError::Locked { path, backend } => {
                assert_eq!((path.as_path(), backend), (tmp.path(), kind.name()))
            }
            other => panic!("{kind}: expected Locked, got {other:?}"),
        }
        drop(first);
        open(kind, tmp.path()).unwrap_or_else(|e| panic!("{kind}: reopen after drop: {e}"));
    }
}
