//! One mount's state and every filesystem operation on it: each call is passed through to
//! the backing directory and recorded in the namespace ([`Tree`]) and the files'
//! journals, so a power cut knows what was durable.
//!
//! Operations return `Err(Errno)` for the caller of the system call; the FUSE glue
//! ([`crate::daemon`]) only translates requests and replies.
//!
//! This file holds the state, its scan of the backing directory, attributes and the
//! helpers every operation uses; `state/namespace.rs` the namespace operations and
//! `state/data.rs` the file data operations.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::{DirBuilder, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fuser::{Errno, FileAttr, FileType, INodeNo, TimeOrNow};
use rustix::fs::{FallocateFlags, SeekFrom};

use crate::fault::{Effect, Faults, Op};
use crate::journal::{Change, Journal};
use crate::tree::{Dir, Kind, NodeId, Tree, ROOT};
use crate::{Broken, Error, Stats};

mod data;
mod namespace;

/// The crash filesystem's own directory inside the backing directory (hidden from the
/// mount): the trash of unlinked files whose old name is still durable, and the staging
/// area of a power cut.
pub(crate) const INTERNAL_DIR: &str = ".paxstore-crashfs";

pub(crate) fn internal_dir(backing: &Path) -> PathBuf {
    backing.join(INTERNAL_DIR)
}

fn trash_dir(backing: &Path) -> PathBuf {
    internal_dir(backing).join("trash")
}

type Res<T> = Result<T, Errno>;

fn errno(e: io::Error) -> Errno {
    Errno::from(e)
}

/// An open file or directory.
#[derive(Debug)]
enum Handle {
    File { node: NodeId, file: File },
    Dir { entries: Vec<(NodeId, FileType, OsString)> },
}

/// Whether the filesystem has power.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Power {
    On,
    /// Every call fails with EIO until the cut is applied; says why.
    Off(String),
}

/// One mount's state.
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) backing: PathBuf,
    pub(crate) tree: Tree,
    handles: HashMap<u64, Handle>,
    next_fh: u64,
    /// Issue order of changes, across files.
    seq: u64,
    pub(crate) power: Power,
    pub(crate) faults: Faults,
    pub(crate) stats: Stats,
    pub(crate) broken: Broken,
}

impl State {
    /// Takes the backing directory as it is as the durable state: every file and
    /// directory in it is durable. Leftovers of an earlier mount's own directory (a run
    /// that was killed) are removed.
    pub(crate) fn scan(
        backing: &Path,
        faults: Faults,
        stats: Stats,
        broken: Broken,
    ) -> Result<State, Error> {
        let internal = internal_dir(backing);
        if internal.exists() {
            std::fs::remove_dir_all(&internal).map_err(|e| Error::io("removing", &internal, e))?;
        }
        let trash = trash_dir(backing);
        std::fs::create_dir_all(&trash).map_err(|e| Error::io("creating", &trash, e))?;
        let mut tree = Tree::new();
        let mut stack = vec![(ROOT, backing.to_path_buf())];
        while let Some((dir, path)) = stack.pop() {
            let listing = std::fs::read_dir(&path).map_err(|e| Error::io("listing", &path, e))?;
            for entry in listing {
                let entry = entry.map_err(|e| Error::io("listing", &path, e))?;
                let name = entry.file_name();
                if dir == ROOT && name == INTERNAL_DIR {
                    continue;
                }
                let child = entry.path();
                let meta = std::fs::symlink_metadata(&child)
                    .map_err(|e| Error::io("reading", &child, e))?;
                if meta.is_dir() {
                    let id = tree.add_existing(dir, name, Kind::Dir(Dir::default()));
                    stack.push((id, child));
                } else if meta.is_file() && meta.nlink() == 1 {
                    tree.add_existing(dir, name, Kind::File(Journal::durable(meta.len())));
                } else {
                    let what = if meta.is_file() {
                        "a file with several hard links"
                    } else {
                        "anything but plain files and directories"
                    };
                    return Err(Error::Unsupported { path: child, what: what.into() });
                }
            }
        }
        Ok(State {
            backing: backing.to_path_buf(),
            tree,
            handles: HashMap::new(),
            next_fh: 1,
            seq: 0,
            power: Power::On,
            faults,
            stats,
            broken,
        })
    }

    /// Where the backing object of `id` is now: its live path, or its place in the trash.
    pub(crate) fn object_path(&self, id: NodeId) -> PathBuf {
        match self.tree.live_path(id) {
            Some(rel) if self.tree.is_live(id) => self.backing.join(rel),
            _ => trash_dir(&self.backing).join(id.to_string()),
        }
    }

    fn powered(&self) -> Res<()> {
        match self.power {
            Power::On => Ok(()),
            Power::Off(_) => Err(Errno::EIO),
        }
    }

    /// Counts a call against the armed faults; `Err` if one fires.
    fn fault(&mut self, op: Op, names: &[&OsStr]) -> Res<()> {
        self.stats.calls += 1;
        if self.broken == Broken::FaultsNeverFire {
            return Ok(());
        }
        let Some((effect, fault)) = self.faults.hit(op, names) else { return Ok(()) };
        self.stats.faults_fired += 1;
        match effect {
            Effect::Eio => Err(Errno::EIO),
            Effect::Enospc => Err(Errno::ENOSPC),
            Effect::PowerOff => {
                self.power = Power::Off(format!("fault fired: {fault}"));
                Err(Errno::EIO)
            }
        }
    }

    fn name_of(&self, id: NodeId) -> OsString {
        self.tree.get(id).map(|n| n.name.clone()).unwrap_or_default()
    }

    fn reserved(&self, parent: NodeId, name: &OsStr) -> Res<()> {
        if parent == ROOT && name == INTERNAL_DIR {
            return Err(Errno::EPERM);
        }
        Ok(())
    }

    pub(crate) fn attr(&self, id: NodeId) -> Res<FileAttr> {
        self.tree.get(id).ok_or(Errno::ENOENT)?;
        match std::fs::symlink_metadata(self.object_path(id)) {
            Ok(meta) => Ok(to_attr(id, &meta)),
            // An unlinked file nothing durable names is gone from the backing directory
            // but may still be open (`fstat` of it arrives without a handle).
            Err(e) => match self.open_file_of(id) {
                Some(file) => Ok(to_attr(id, &file.metadata().map_err(errno)?)),
                None => Err(errno(e)),
            },
        }
    }

    /// Some open handle's backing file of node `id`.
    fn open_file_of(&self, id: NodeId) -> Option<&File> {
        self.handles.values().find_map(|h| match h {
            Handle::File { node, file } if *node == id => Some(file),
            _ => None,
        })
    }

    pub(crate) fn lookup(&mut self, parent: NodeId, name: &OsStr) -> Res<FileAttr> {
        self.powered()?;
        let id = self.tree.child(parent, name).ok_or(Errno::ENOENT)?;
        self.attr(id)
    }

    pub(crate) fn getattr(&mut self, id: NodeId) -> Res<FileAttr> {
        self.powered()?;
        self.attr(id)
    }

    /// `chmod`, `chown`, `utimens` pass through (not part of the model); a size change
    /// is a journaled change like a write.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn setattr(
        &mut self,
        id: NodeId,
        fh: Option<u64>,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
    ) -> Res<FileAttr> {
        self.powered()?;
        if let Some(size) = size {
            self.set_len(id, fh, size)?;
        }
        let path = self.object_path(id);
        if let Some(mode) = mode {
            let perm = std::fs::Permissions::from_mode(mode & 0o7777);
            std::fs::set_permissions(&path, perm).map_err(errno)?;
        }
        if uid.is_some() || gid.is_some() {
            std::os::unix::fs::lchown(&path, uid, gid).map_err(errno)?;
        }
        if atime.is_some() || mtime.is_some() {
            let times = rustix::fs::Timestamps {
                last_access: timespec(atime),
                last_modification: timespec(mtime),
            };
            rustix::fs::utimensat(
                rustix::fs::CWD,
                &path,
                &times,
                rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
            )
            .map_err(|e| Errno::from_i32(e.raw_os_error()))?;
        }
        self.attr(id)
    }

    fn set_len(&mut self, id: NodeId, fh: Option<u64>, size: u64) -> Res<()> {
        let seq = self.next_seq();
        let file = file_for(&self.handles, fh, &self.object_path(id))?;
        let live = file.get().metadata().map_err(errno)?.len();
        let journal = self.tree.journal_mut(id).ok_or(Errno::EISDIR)?;
        journal.before_change(file.get(), size.min(live), size.max(live)).map_err(errno)?;
        file.get().set_len(size).map_err(errno)?;
        journal.record(seq, Change::SetLen(size));
        self.stats.truncates += 1;
        Ok(())
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    fn new_handle(&mut self, handle: Handle) -> u64 {
        let fh = self.next_fh;
        self.next_fh += 1;
        self.handles.insert(fh, handle);
        fh
    }

    pub(crate) fn open(&mut self, id: NodeId, flags: i32) -> Res<u64> {
        self.powered()?;
        if !matches!(self.tree.get(id).map(|n| &n.kind), Some(Kind::File(_))) {
            return Err(Errno::EISDIR);
        }
        let write = flags & libc::O_ACCMODE != libc::O_RDONLY;
        let file =
            OpenOptions::new().read(true).write(write).open(self.object_path(id)).map_err(errno)?;
        Ok(self.new_handle(Handle::File { node: id, file }))
    }

    pub(crate) fn release(&mut self, fh: u64) {
        self.handles.remove(&fh);
    }

    pub(crate) fn statfs(&self) -> Res<rustix::fs::StatVfs> {
        self.powered()?;
        rustix::fs::statvfs(&self.backing).map_err(|e| Errno::from_i32(e.raw_os_error()))
    }

    /// Bytes held in memory for unsynced writes and saved durable blocks.
    pub(crate) fn held_bytes(&self) -> u64 {
        self.tree.files().map(Journal::held_bytes).sum()
    }

    fn after_namespace_change(&mut self, dirs: &[NodeId]) {
        if self.broken == Broken::DirentsDurableAtOnce {
            for &dir in dirs {
                self.sync_dir(dir);
            }
        }
    }

    /// Every file and directory durable as it is (only the broken variants do this).
    fn sync_everything(&mut self) {
        for id in self.tree.ids() {
            if self.tree.dir(id).is_some() {
                self.sync_dir(id);
            } else if let Ok(meta) = std::fs::metadata(self.object_path(id)) {
                if let Some(journal) = self.tree.journal_mut(id) {
                    journal.forget_all(meta.len());
                }
            }
        }
    }
}

/// The backing file of handle `fh`, or the file at `path` opened for one call.
fn file_for<'a>(
    handles: &'a HashMap<u64, Handle>,
    fh: Option<u64>,
    path: &Path,
) -> Res<FileRef<'a>> {
    if let Some(Handle::File { file, .. }) = fh.and_then(|fh| handles.get(&fh)) {
        return Ok(FileRef::Borrowed(file));
    }
    let file = OpenOptions::new().read(true).write(true).open(path).map_err(errno)?;
    Ok(FileRef::Owned(file))
}

/// A backing file borrowed from an open handle or opened for one call.
enum FileRef<'a> {
    Borrowed(&'a File),
    Owned(File),
}

impl FileRef<'_> {
    fn get(&self) -> &File {
        match self {
            FileRef::Borrowed(f) => f,
            FileRef::Owned(f) => f,
        }
    }
}

fn timespec(t: Option<TimeOrNow>) -> rustix::fs::Timespec {
    match t {
        None => rustix::fs::Timespec { tv_sec: 0, tv_nsec: rustix::fs::UTIME_OMIT },
        Some(TimeOrNow::Now) => rustix::fs::Timespec { tv_sec: 0, tv_nsec: rustix::fs::UTIME_NOW },
        Some(TimeOrNow::SpecificTime(t)) => {
            let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
            rustix::fs::Timespec {
                tv_sec: d.as_secs() as i64,
                tv_nsec: i64::from(d.subsec_nanos()),
            }
        }
    }
}

fn time(secs: i64, nsecs: i64) -> SystemTime {
    match u64::try_from(secs) {
        Ok(s) => UNIX_EPOCH + Duration::new(s, nsecs.clamp(0, 999_999_999) as u32),
        Err(_) => UNIX_EPOCH,
    }
}

fn to_attr(id: NodeId, meta: &std::fs::Metadata) -> FileAttr {
    let kind = if meta.is_dir() { FileType::Directory } else { FileType::RegularFile };
    FileAttr {
        ino: INodeNo(id),
        size: meta.len(),
        blocks: meta.blocks(),
        atime: time(meta.atime(), meta.atime_nsec()),
        mtime: time(meta.mtime(), meta.mtime_nsec()),
        ctime: time(meta.ctime(), meta.ctime_nsec()),
        crtime: UNIX_EPOCH,
        kind,
        perm: (meta.mode() & 0o7777) as u16,
        nlink: meta.nlink() as u32,
        uid: meta.uid(),
        gid: meta.gid(),
        rdev: 0,
        blksize: 4096,
        flags: 0,
    }
}
