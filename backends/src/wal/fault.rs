//! [`FaultIo`]: a [`WalIo`] over the real file system that fails the n-th call on
//! demand, tears writes, and can simulate a power loss by undoing everything not yet
//! synced. Tests (this crate's and anyone's) use it through
//! [`WalStorage::open_with`](super::WalStorage::open_with).

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, ErrorKind};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use super::io::{StdIo, WalIo};

/// What an injected failure does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The call does nothing and fails with this kind (`StorageFull` for ENOSPC, `Other`
    /// for EIO-like failures).
    Fail(ErrorKind),
    /// For a write: the first `n` bytes reach the file (unsynced), then the call fails
    /// with an I/O error. Other calls fail as [`Fault::Fail`].
    Tear(usize),
}

/// One mutating call the seam saw, for tests that need to know where a record went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WriteEvent {
    /// The file written, by the name it had at the time.
    pub path: PathBuf,
    /// The byte offset.
    pub offset: u64,
    /// The number of bytes.
    pub len: usize,
}

#[derive(Debug)]
enum Pending {
    Write { id: (u64, u64), path: PathBuf, offset: u64, old: Vec<u8>, old_len: u64 },
    SetLen { id: (u64, u64), path: PathBuf, old_len: u64 },
    Create { path: PathBuf },
    Rename { from: PathBuf, to: PathBuf },
    Remove { id: (u64, u64), path: PathBuf, content: Vec<u8> },
}

#[derive(Debug, Default)]
struct State {
    calls: u64,
    fail_at: Option<(u64, Fault)>,
    fail_from: Option<(u64, Fault)>,
    pending: Vec<Pending>,
    paths: HashMap<(u64, u64), PathBuf>,
    writes: Vec<WriteEvent>,
    syncs: u64,
    /// Bytes the disk has left, if limited ([`FaultIo::limit_space`]).
    space_left: Option<u64>,
    /// Per file, the end of the bytes written so far: writes below it need no new space.
    allocated: HashMap<(u64, u64), u64>,
}

/// A fault-injecting, power-loss-simulating [`WalIo`]. Thread-safe; share it in an
/// `Arc` between the test and the storage.
#[derive(Debug, Default)]
pub struct FaultIo {
    state: Mutex<State>,
}

fn file_id(file: &File) -> io::Result<(u64, u64)> {
    let m = file.metadata()?;
    Ok((m.dev(), m.ino()))
}

fn parent(path: &Path) -> PathBuf {
    path.parent().map(Path::to_path_buf).unwrap_or_default()
}

impl FaultIo {
    /// A seam that injects nothing until told to.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock (in a test) must not hide later assertions.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The number of mutating calls made so far (every [`WalIo`] method counts once).
    pub fn calls(&self) -> u64 {
        self.lock().calls
    }

    /// The number of successful `sync_data` calls so far.
    pub fn syncs(&self) -> u64 {
        self.lock().syncs
    }

    /// Every successful or torn write so far, in order.
    pub fn writes(&self) -> Vec<WriteEvent> {
        self.lock().writes.clone()
    }

    /// Fails the call numbered `n` (counting from 1 with [`FaultIo::calls`]` + 1` being
    /// the next one) with `fault`; one shot.
    pub fn fail_call(&self, n: u64, fault: Fault) {
        self.lock().fail_at = Some((n, fault));
    }

    /// Fails every call from number `n` on with `fault` (e.g. a disk that stays full).
    pub fn fail_from(&self, n: u64, fault: Fault) {
        self.lock().fail_from = Some((n, fault));
    }

    /// Models a disk with `bytes` free (`None`: unlimited). A write uses up the bytes it
    /// writes past the end of what was written to that file before (sequential writers
    /// like the WAL's; a file's holes below that end are counted as allocated). A write
    /// that needs more than is left writes what fits, as a full disk does, and fails with
    /// `StorageFull`. Calling it again frees (or takes) space.
    pub fn limit_space(&self, bytes: Option<u64>) {
        self.lock().space_left = bytes;
    }

    /// Stops injecting failures.
    pub fn heal(&self) {
        let mut s = self.lock();
        s.fail_at = None;
        s.fail_from = None;
    }

    /// Simulates a power loss: every write, length change, create, rename and remove
    /// not yet made durable by a sync is undone on the real files, newest first. The
    /// storage using this seam must be dropped first; reopen afterwards.
    pub fn power_loss(&self) -> io::Result<()> {
        self.power_loss_partial(0, 0)
    }

    /// The number of writes not yet made durable by a sync.
    pub fn unsynced_writes(&self) -> usize {
        self.lock().pending.iter().filter(|p| matches!(p, Pending::Write { .. })).count()
    }

    /// A power loss while the disk was writing back the unsynced writes in order: the
    /// first `survive` of them reached the disk, the next one only its first `keep`
    /// bytes, the rest not at all. Everything else unsynced is undone.
    pub fn power_loss_partial(&self, survive: usize, keep: usize) -> io::Result<()> {
        let mut s = self.lock();
        let pending = std::mem::take(&mut s.pending);
        let mut write_no = pending.iter().filter(|p| matches!(p, Pending::Write { .. })).count();
        for p in pending.into_iter().rev() {
            let what = match &p {
                Pending::Write { path, offset, .. } => {
                    format!("undoing a write at {offset} of {}", path.display())
                }
                Pending::SetLen { path, .. } => {
                    format!("undoing a length change of {}", path.display())
                }
                Pending::Create { path } => format!("undoing the creation of {}", path.display()),
                Pending::Rename { from, to } => {
                    format!("undoing the rename of {} to {}", from.display(), to.display())
                }
                Pending::Remove { path, .. } => {
                    format!("undoing the removal of {}", path.display())
                }
            };
            let context = |e: io::Error| io::Error::new(e.kind(), format!("{what}: {e}"));
            Self::undo(p, survive, &mut write_no, keep).map_err(context)?;
        }
        s.paths.clear();
        Ok(())
    }

    fn undo(p: Pending, survive: usize, write_no: &mut usize, keep: usize) -> io::Result<()> {
        match p {
            Pending::Write { path, offset, old, old_len, .. } => {
                *write_no -= 1;
                let skip = match (*write_no).cmp(&survive) {
                    std::cmp::Ordering::Less => return Ok(()),
                    std::cmp::Ordering::Equal => keep.min(old.len()),
                    std::cmp::Ordering::Greater => 0,
                };
                let f = StdIo.open(&path)?;
                f.write_all_at(&old[skip..], offset + skip as u64)?;
                let end = offset + old.len() as u64;
                if end > old_len {
                    // The write grew the file: shrink it back (keeping a torn prefix).
                    f.set_len(old_len.max(offset + skip as u64))?;
                }
            }
            Pending::SetLen { path, old_len, .. } => StdIo.open(&path)?.set_len(old_len)?,
            Pending::Create { path } => std::fs::remove_file(&path)?,
            Pending::Rename { from, to } => std::fs::rename(&to, &from)?,
            Pending::Remove { path, content, .. } => std::fs::write(&path, content)?,
        }
        Ok(())
    }

    /// Counts a call and returns the fault to inject into it, if any.
    fn next_call(&self) -> Option<Fault> {
        let mut s = self.lock();
        s.calls += 1;
        let n = s.calls;
        match (s.fail_at, s.fail_from) {
            (Some((at, f)), _) if at == n => {
                s.fail_at = None;
                Some(f)
            }
            (_, Some((from, f))) if n >= from => Some(f),
            _ => None,
        }
    }

    fn injected(fault: Fault) -> io::Error {
        match fault {
            Fault::Fail(kind) => io::Error::new(kind, "injected failure"),
            Fault::Tear(_) => io::Error::other("injected torn write"),
        }
    }

    fn path_of(&self, id: (u64, u64)) -> io::Result<PathBuf> {
        self.lock()
            .paths
            .get(&id)
            .cloned()
            .ok_or_else(|| io::Error::other("FaultIo: file was not opened through the seam"))
    }
}

impl WalIo for FaultIo {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        if let Some(f) = self.next_call() {
            return Err(Self::injected(f));
        }
        StdIo.create_dir_all(path)
    }

    fn create_new(&self, path: &Path) -> io::Result<File> {
        if let Some(f) = self.next_call() {
            return Err(Self::injected(f));
        }
        let file = StdIo.create_new(path)?;
        let id = file_id(&file)?;
        let mut s = self.lock();
        s.paths.insert(id, path.to_path_buf());
        s.pending.push(Pending::Create { path: path.to_path_buf() });
        Ok(file)
    }

    fn open(&self, path: &Path) -> io::Result<File> {
        if let Some(f) = self.next_call() {
            return Err(Self::injected(f));
        }
        let file = StdIo.open(path)?;
        self.lock().paths.insert(file_id(&file)?, path.to_path_buf());
        Ok(file)
    }

    fn write_at(&self, file: &File, offset: u64, data: &[u8]) -> io::Result<()> {
        let fault = self.next_call();
        let id = file_id(file)?;
        let mut full = false;
        let mut fits = data.len();
        {
            let mut s = self.lock();
            let end = offset + data.len() as u64;
            let allocated = s.allocated.get(&id).copied().unwrap_or(0);
            let need = end.saturating_sub(allocated.max(offset));
            if let Some(left) = s.space_left {
                if need > left {
                    full = true;
                    fits = (allocated.max(offset) + left - offset) as usize;
                }
                s.space_left = Some(left.saturating_sub(need));
            }
            let reached = offset + fits as u64;
            s.allocated.insert(id, allocated.max(reached));
        }
        let written = match fault {
            None if full => fits,
            None => data.len(),
            Some(Fault::Tear(n)) => n.min(data.len()),
            Some(f @ Fault::Fail(_)) => return Err(Self::injected(f)),
        };
        let path = self.path_of(id)?;
        let old_len = file.metadata()?.len();
        let mut old = vec![0u8; data.len()];
        let readable = old_len.saturating_sub(offset).min(data.len() as u64) as usize;
        file.read_exact_at(&mut old[..readable], offset)?;
        file.write_all_at(&data[..written], offset)?;
        let mut s = self.lock();
        s.pending.push(Pending::Write { id, path: path.clone(), offset, old, old_len });
        s.writes.push(WriteEvent { path, offset, len: written });
        match fault {
            Some(f) => Err(Self::injected(f)),
            None if full => Err(io::Error::new(io::ErrorKind::StorageFull, "injected: disk full")),
            None => Ok(()),
        }
    }

    fn set_len(&self, file: &File, len: u64) -> io::Result<()> {
        if let Some(f) = self.next_call() {
            return Err(Self::injected(f));
        }
        let id = file_id(file)?;
        let path = self.path_of(id)?;
        let old_len = file.metadata()?.len();
        file.set_len(len)?;
        self.lock().pending.push(Pending::SetLen { id, path, old_len });
        Ok(())
    }

    fn sync_data(&self, file: &File) -> io::Result<()> {
        if let Some(f) = self.next_call() {
            return Err(Self::injected(f));
        }
        let id = file_id(file)?;
        file.sync_data()?;
        let mut s = self.lock();
        s.syncs += 1;
        s.pending.retain(|p| match p {
            Pending::Write { id: w, .. } | Pending::SetLen { id: w, .. } => *w != id,
            _ => true,
        });
        Ok(())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        if let Some(f) = self.next_call() {
            return Err(Self::injected(f));
        }
        StdIo.rename(from, to)?;
        let mut s = self.lock();
        for p in s.paths.values_mut() {
            if p == from {
                *p = to.to_path_buf();
            }
        }
        s.pending.push(Pending::Rename { from: from.to_path_buf(), to: to.to_path_buf() });
        Ok(())
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        if let Some(f) = self.next_call() {
            return Err(Self::injected(f));
        }
        let content = std::fs::read(path)?;
        let meta = std::fs::metadata(path)?;
        StdIo.remove_file(path)?;
        let id = (meta.dev(), meta.ino());
        self.lock().pending.push(Pending::Remove { id, path: path.to_path_buf(), content });
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        if let Some(f) = self.next_call() {
            return Err(Self::injected(f));
        }
        StdIo.sync_dir(dir)?;
        let mut s = self.lock();
        // A file whose removal is now durable is gone for good, and with it whatever was
        // not synced to it before the removal.
        let gone: Vec<(usize, (u64, u64))> = (s.pending.iter().enumerate())
            .filter_map(|(at, p)| match p {
                Pending::Remove { id, path, .. } if parent(path) == dir => Some((at, *id)),
                _ => None,
            })
            .collect();
        let mut at = 0;
        s.pending.retain(|p| {
            let here = at;
            at += 1;
            match p {
                Pending::Create { path } | Pending::Remove { path, .. } => parent(path) != dir,
                Pending::Rename { to, .. } => parent(to) != dir,
                Pending::Write { id, .. } | Pending::SetLen { id, .. } => {
                    !gone.iter().any(|&(removed_at, removed)| removed == *id && here < removed_at)
                }
            }
        });
        Ok(())
    }
}
