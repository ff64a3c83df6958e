//! One mount's state and every filesystem operation on it: each call is passed through to
//! the backing directory and recorded in the namespace ([`Tree`]) and the files'
//! journals, so a power cut knows what was durable.
//!
//! Operations return `Err(Errno)` for the caller of the system call; the FUSE glue
//! ([`crate::daemon`]) only translates requests and replies.

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

    pub(crate) fn create(
        &mut self,
        parent: NodeId,
        name: &OsStr,
        mode: u32,
        umask: u32,
        open: bool,
    ) -> Res<(FileAttr, Option<u64>)> {
        self.powered()?;
        self.reserved(parent, name)?;
        self.fault(Op::Create, &[name])?;
        if self.tree.child(parent, name).is_some() {
            return Err(Errno::EEXIST);
        }
        let path = self.object_path(parent).join(name);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(mode & !umask & 0o7777)
            .open(&path)
            .map_err(errno)?;
        let id = self.tree.add(parent, name.to_owned(), Kind::File(Journal::created()));
        self.stats.creates += 1;
        self.after_namespace_change(&[parent]);
        let fh = open.then(|| self.new_handle(Handle::File { node: id, file }));
        Ok((self.attr(id)?, fh))
    }

    pub(crate) fn mkdir(
        &mut self,
        parent: NodeId,
        name: &OsStr,
        mode: u32,
        umask: u32,
    ) -> Res<FileAttr> {
        self.powered()?;
        self.reserved(parent, name)?;
        self.fault(Op::Create, &[name])?;
        if self.tree.child(parent, name).is_some() {
            return Err(Errno::EEXIST);
        }
        let path = self.object_path(parent).join(name);
        DirBuilder::new().mode(mode & !umask & 0o7777).create(&path).map_err(errno)?;
        let id = self.tree.add(parent, name.to_owned(), Kind::Dir(Dir::default()));
        self.stats.creates += 1;
        self.after_namespace_change(&[parent]);
        self.attr(id)
    }

    pub(crate) fn unlink(&mut self, parent: NodeId, name: &OsStr) -> Res<()> {
        self.powered()?;
        let id = self.tree.child(parent, name).ok_or(Errno::ENOENT)?;
        let node = self.tree.get(id).ok_or(Errno::ENOENT)?;
        if matches!(node.kind, Kind::Dir(_)) {
            return Err(Errno::EISDIR);
        }
        let keep = node.durable_refs > 0;
        self.discard_object(id, keep)?;
        self.tree.unlink(parent, name);
        self.stats.unlinks += 1;
        self.after_namespace_change(&[parent]);
        Ok(())
    }

    /// Takes the backing object of live node `id` out of the live tree: into the trash if
    /// `keep` (a durable name still holds it), else deleted.
    fn discard_object(&self, id: NodeId, keep: bool) -> Res<()> {
        let path = self.object_path(id);
        if keep {
            std::fs::rename(&path, trash_dir(&self.backing).join(id.to_string()))
        } else {
            std::fs::remove_file(&path)
        }
        .map_err(errno)
    }

    pub(crate) fn rmdir(&mut self, parent: NodeId, name: &OsStr) -> Res<()> {
        self.powered()?;
        let id = self.tree.child(parent, name).ok_or(Errno::ENOENT)?;
        let dir = self.tree.dir(id).ok_or(Errno::ENOTDIR)?;
        if !dir.live.is_empty() {
            return Err(Errno::ENOTEMPTY);
        }
        std::fs::remove_dir(self.object_path(id)).map_err(errno)?;
        self.tree.unlink(parent, name);
        self.stats.unlinks += 1;
        self.after_namespace_change(&[parent]);
        Ok(())
    }

    pub(crate) fn rename(
        &mut self,
        parent: NodeId,
        name: &OsStr,
        new_parent: NodeId,
        new_name: &OsStr,
        flags: u32,
    ) -> Res<()> {
        self.powered()?;
        self.reserved(new_parent, new_name)?;
        self.fault(Op::Rename, &[name, new_name])?;
        let noreplace = rustix::fs::RenameFlags::NOREPLACE.bits();
        if flags & !noreplace != 0 {
            // RENAME_EXCHANGE and RENAME_WHITEOUT are not modelled.
            return Err(Errno::EINVAL);
        }
        let id = self.tree.child(parent, name).ok_or(Errno::ENOENT)?;
        let target = self.tree.child(new_parent, new_name);
        if target == Some(id) {
            return Ok(());
        }
        let is_dir = self.tree.dir(id).is_some();
        self.check_rename(id, is_dir, new_parent, target, flags & noreplace != 0)?;
        // A replaced file keeps its data (in the trash) while its durable name holds it;
        // otherwise the rename replaces it in one step.
        let trashed = match target {
            Some(t) if !is_dir && self.tree.get(t).is_some_and(|n| n.durable_refs > 0) => {
                self.discard_object(t, true)?;
                Some(t)
            }
            _ => None,
        };
        let from = self.object_path(id);
        let to = self.object_path(new_parent).join(new_name);
        if let Err(e) = std::fs::rename(&from, &to) {
            if let Some(t) = trashed {
                // Put the replaced file back where it was (best effort: the call fails).
                let _ = std::fs::rename(trash_dir(&self.backing).join(t.to_string()), &to);
            }
            return Err(errno(e));
        }
        if let Some(replaced) = self.tree.rename(parent, name, new_parent, new_name) {
            self.drop_if_unreferenced(replaced);
        }
        self.stats.renames += 1;
        self.after_namespace_change(&[parent, new_parent]);
        Ok(())
    }

    /// The errors `rename(2)` gives for moving `id` into `new_parent` over `target`.
    fn check_rename(
        &self,
        id: NodeId,
        is_dir: bool,
        new_parent: NodeId,
        target: Option<NodeId>,
        noreplace: bool,
    ) -> Res<()> {
        if is_dir && self.tree.is_within(new_parent, id) {
            return Err(Errno::EINVAL);
        }
        let Some(target) = target else { return Ok(()) };
        if noreplace {
            return Err(Errno::EEXIST);
        }
        match (is_dir, self.tree.dir(target)) {
            (false, Some(_)) => Err(Errno::EISDIR),
            (true, None) => Err(Errno::ENOTDIR),
            (true, Some(d)) if !d.live.is_empty() => Err(Errno::ENOTEMPTY),
            _ => Ok(()),
        }
    }

    /// Deletes the trash copy of `id` once nothing names it (a file only: a removed
    /// directory has no backing object).
    fn drop_if_unreferenced(&mut self, id: NodeId) {
        if self.tree.unreferenced(id) {
            // Already gone if it was deleted at once: nothing to do then.
            let _ = std::fs::remove_file(trash_dir(&self.backing).join(id.to_string()));
        }
    }

    pub(crate) fn read(&mut self, fh: u64, offset: u64, size: u32) -> Res<Vec<u8>> {
        self.powered()?;
        let Some(Handle::File { file, .. }) = self.handles.get(&fh) else {
            return Err(Errno::EBADF);
        };
        let mut buf = vec![0u8; size as usize];
        let mut filled = 0;
        while filled < buf.len() {
            match file.read_at(&mut buf[filled..], offset + filled as u64) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(errno(e)),
            }
        }
        buf.truncate(filled);
        Ok(buf)
    }

    pub(crate) fn write(&mut self, id: NodeId, fh: u64, offset: u64, data: &[u8]) -> Res<u32> {
        self.powered()?;
        let name = self.name_of(id);
        self.fault(Op::Write, &[&name])?;
        let seq = self.next_seq();
        let Some(Handle::File { file, node }) = self.handles.get(&fh) else {
            return Err(Errno::EBADF);
        };
        let journal = self.tree.journal_mut(*node).ok_or(Errno::EISDIR)?;
        let end = offset + data.len() as u64;
        journal.before_change(file, offset, end).map_err(errno)?;
        file.write_all_at(data, offset).map_err(errno)?;
        journal.record(seq, Change::Write { offset, data: data.to_vec() });
        self.stats.writes += 1;
        self.stats.bytes_written += data.len() as u64;
        u32::try_from(data.len()).map_err(|_| Errno::EINVAL)
    }

    /// `fsync` or `fdatasync` of a file: its data and size become durable (both make the
    /// size durable, as Linux's fdatasync does when the size changed).
    pub(crate) fn fsync(&mut self, id: NodeId, fh: u64) -> Res<()> {
        self.powered()?;
        let name = self.name_of(id);
        if let Err(e) = self.fault(Op::Fsync, &[&name]) {
            if self.power == Power::On && self.broken != Broken::FailedFsyncKeepsWrites {
                if let Some(journal) = self.tree.journal_mut(id) {
                    journal.sync_failed();
                }
            }
            return Err(e);
        }
        if self.broken == Broken::FsyncIgnored {
            return Ok(());
        }
        let file = file_for(&self.handles, Some(fh), &self.object_path(id))?;
        let live = file.get().metadata().map_err(errno)?.len();
        drop(file);
        self.tree.journal_mut(id).ok_or(Errno::EISDIR)?.synced(live);
        self.stats.fsyncs += 1;
        if self.broken == Broken::FsyncSyncsEverything {
            self.sync_everything();
        }
        Ok(())
    }

    pub(crate) fn opendir(&mut self, id: NodeId) -> Res<u64> {
        self.powered()?;
        let dir = self.tree.dir(id).ok_or(Errno::ENOTDIR)?;
        let parent = self.tree.get(id).and_then(|n| n.live.as_ref()).map_or(ROOT, |(p, _)| *p);
        let mut entries = vec![
            (id, FileType::Directory, OsString::from(".")),
            (parent, FileType::Directory, OsString::from("..")),
        ];
        for (name, &child) in &dir.live {
            let kind = match self.tree.get(child).map(|n| &n.kind) {
                Some(Kind::Dir(_)) => FileType::Directory,
                _ => FileType::RegularFile,
            };
            entries.push((child, kind, name.clone()));
        }
        Ok(self.new_handle(Handle::Dir { entries }))
    }

    /// The entries of directory handle `fh` from index `offset` on.
    pub(crate) fn readdir(&self, fh: u64, offset: u64) -> Res<&[(NodeId, FileType, OsString)]> {
        match self.handles.get(&fh) {
            Some(Handle::Dir { entries }) => Ok(entries.get(offset as usize..).unwrap_or_default()),
            _ => Err(Errno::EBADF),
        }
    }

    /// `fsync` of a directory: its entries as they are now become durable.
    pub(crate) fn fsyncdir(&mut self, id: NodeId) -> Res<()> {
        self.powered()?;
        let name = self.name_of(id);
        self.fault(Op::Fsync, &[&name])?;
        self.sync_dir(id);
        self.stats.dir_fsyncs += 1;
        if self.broken == Broken::FsyncSyncsEverything {
            self.sync_everything();
        }
        Ok(())
    }

    fn sync_dir(&mut self, id: NodeId) {
        for gone in self.tree.sync_dir(id) {
            self.drop_if_unreferenced(gone);
        }
    }

    pub(crate) fn statfs(&self) -> Res<rustix::fs::StatVfs> {
        self.powered()?;
        rustix::fs::statvfs(&self.backing).map_err(|e| Errno::from_i32(e.raw_os_error()))
    }

    /// `fallocate`: counted as a write for faults. Allocation alone changes no content;
    /// a size change and punched or zeroed ranges are journaled like writes.
    pub(crate) fn fallocate(
        &mut self,
        id: NodeId,
        fh: u64,
        offset: u64,
        len: u64,
        mode: i32,
    ) -> Res<()> {
        self.powered()?;
        let flags = FallocateFlags::from_bits(mode as u32).ok_or(Errno::EOPNOTSUPP)?;
        let known =
            FallocateFlags::KEEP_SIZE | FallocateFlags::PUNCH_HOLE | FallocateFlags::ZERO_RANGE;
        if !known.contains(flags) {
            return Err(Errno::EOPNOTSUPP);
        }
        let name = self.name_of(id);
        self.fault(Op::Write, &[&name])?;
        let end = offset.checked_add(len).ok_or(Errno::EFBIG)?;
        let zeroes = flags.intersects(FallocateFlags::PUNCH_HOLE | FallocateFlags::ZERO_RANGE);
        let seq = self.next_seq();
        let seq2 = self.next_seq();
        let Some(Handle::File { file, node }) = self.handles.get(&fh) else {
            return Err(Errno::EBADF);
        };
        let live = file.metadata().map_err(errno)?.len();
        let grows = !flags.contains(FallocateFlags::KEEP_SIZE) && end > live;
        let journal = self.tree.journal_mut(*node).ok_or(Errno::EISDIR)?;
        if zeroes {
            journal.before_change(file, offset, end.min(live)).map_err(errno)?;
        }
        if grows {
            journal.before_change(file, live, end).map_err(errno)?;
        }
        rustix::fs::fallocate(file, flags, offset, len)
            .map_err(|e| Errno::from_i32(e.raw_os_error()))?;
        if grows {
            journal.record(seq, Change::SetLen(end));
        }
        if zeroes && offset < live {
            journal.record(seq2, Change::Zero { offset, len: end.min(live) - offset });
        }
        self.stats.writes += 1;
        Ok(())
    }

    /// `lseek` with `SEEK_DATA` or `SEEK_HOLE` (the kernel answers the others itself),
    /// answered by the backing file, which holds the live content.
    pub(crate) fn lseek(&mut self, fh: u64, offset: i64, whence: i32) -> Res<i64> {
        self.powered()?;
        if self.broken == Broken::NoSeekData {
            return Err(Errno::ENOSYS);
        }
        let Some(Handle::File { file, .. }) = self.handles.get(&fh) else {
            return Err(Errno::EBADF);
        };
        let at = u64::try_from(offset).map_err(|_| Errno::ENXIO)?;
        let pos = match whence {
            libc::SEEK_DATA => SeekFrom::Data(at),
            libc::SEEK_HOLE => SeekFrom::Hole(at),
            _ => return Err(Errno::EINVAL),
        };
        let found = rustix::fs::seek(file, pos).map_err(|e| Errno::from_i32(e.raw_os_error()))?;
        i64::try_from(found).map_err(|_| Errno::EOVERFLOW)
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
