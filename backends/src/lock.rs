//! Taking an exclusive file lock, waiting a bounded time for another holder to let go,
//! without polling.

use std::fs::{File, TryLockError};
use std::io;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

/// Takes the exclusive lock (`flock`) on `file`; if another handle holds it, waits up to
/// `wait` for it to let go. `Ok(None)`: still held after `wait`.
///
/// The wait is a helper thread blocked in [`File::lock`], which hands the locked file
/// back; the caller waits on a channel with a timeout. When the wait runs out, the helper
/// stays blocked until the other holder lets go, then drops the file (releasing the lock
/// at once) and ends.
pub(crate) fn lock_within(file: File, wait: Duration) -> io::Result<Option<File>> {
    match file.try_lock() {
        Ok(()) => return Ok(Some(file)),
        Err(TryLockError::WouldBlock) => {}
        Err(TryLockError::Error(err)) => return Err(err),
    }
    let (tx, rx) = mpsc::sync_channel(1);
    thread::Builder::new().name("paxstore-lock-wait".to_owned()).spawn(move || {
        // A send to a caller that gave up fails and drops the file: the lock goes with it.
        let _ = tx.send(file.lock().map(|()| file));
    })?;
    match rx.recv_timeout(wait) {
        Ok(locked) => locked.map(Some),
        Err(_) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::time::Instant;

    use super::*;

    fn open(path: &std::path::Path) -> File {
        File::options().read(true).write(true).create(true).truncate(false).open(path).unwrap()
    }

    #[test]
    fn a_held_lock_times_out_and_a_released_one_is_taken() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lock");
        let holder = lock_within(open(&path), Duration::ZERO).unwrap().unwrap();
        assert!(lock_within(open(&path), Duration::from_millis(50)).unwrap().is_none());
        let started = Instant::now();
        let release = thread::spawn(move || {
            thread::sleep(Duration::from_millis(100));
            drop(holder);
        });
        let taken = lock_within(open(&path), Duration::from_secs(10)).unwrap();
        assert!(taken.is_some(), "the lock was released, yet not taken");
        assert!(started.elapsed() < Duration::from_secs(10));
        release.join().unwrap();
    }
}
