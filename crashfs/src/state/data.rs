//! File data operations: read, write, `fsync`, `fallocate`, `lseek`. Each passes through
//! to the backing file and journals what changed, so a power cut knows what was durable.

use super::*;

impl State {
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
}
