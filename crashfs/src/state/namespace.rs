//! Namespace operations: create, mkdir, unlink, rmdir, rename, and directory handles and
//! `fsyncdir`. Each changes the backing directory and the [`Tree`]'s live entries; a
//! directory's entries become durable only at its `fsyncdir`.

use super::*;

impl State {
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
    pub(super) fn discard_object(&self, id: NodeId, keep: bool) -> Res<()> {
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
    pub(super) fn check_rename(
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
    pub(super) fn drop_if_unreferenced(&mut self, id: NodeId) {
        if self.tree.unreferenced(id) {
            // Already gone if it was deleted at once: nothing to do then.
            let _ = std::fs::remove_file(trash_dir(&self.backing).join(id.to_string()));
        }
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

    pub(super) fn sync_dir(&mut self, id: NodeId) {
        for gone in self.tree.sync_dir(id) {
            self.drop_if_unreferenced(gone);
        }
    }
}
