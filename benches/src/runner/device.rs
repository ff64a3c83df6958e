//! What reached the storage device during a cell: the block device's "sectors written"
//! counter (`/sys/block/<dev>/stat`, field 7, 512-byte sectors), read around the cell
//! after a `syncfs`, with an idle baseline sampled just before it.
//!
//! The counter is the device's, not the process': other processes writing to the same
//! device are counted too. The baseline (the same counter over an idle window of our
//! own, right before the cell) estimates their rate; [`DeviceWrites`] keeps both so the
//! report can show the figure and the noise it cannot separate.
//!
//! `/proc/self/io` `write_bytes` is read too, labelled as what it is: bytes of page
//! cache the process dirtied (charged per folio when a page is dirtied, so a large-folio
//! write is charged in full even if a later sync sends less). It is not the column.

use std::fs;
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::report::DeviceWrites;
use crate::BenchError;

/// Bytes in the unit of the stat file's sector fields (always 512, whatever the device's
/// sector size; `Documentation/block/stat.rst`).
pub(super) const STAT_SECTOR_BYTES: u64 = 512;

/// How long the idle baseline before each measured cell lasts.
pub const IDLE_WINDOW: Duration = Duration::from_millis(200);

/// The "sectors written" field (the 7th) of a `/sys/block/<dev>/stat` or
/// `/sys/block/<dev>/<part>/stat` line.
pub(super) fn sectors_written(stat: &str) -> Option<u64> {
    stat.split_whitespace().nth(6)?.parse().ok()
}

/// The mount of `/proc/self/mountinfo` holding `path` (the longest mount point that is a
/// prefix of it): its `major:minor` and its mount source (e.g. `/dev/vda`).
pub(super) fn mount_of(mountinfo: &str, path: &Path) -> Option<(String, String)> {
    mountinfo
        .lines()
        .filter_map(|line| {
            // `id parent major:minor root mount-point options [optional...] - fstype source super`
            let (left, right) = line.split_once(" - ")?;
            let f: Vec<&str> = left.split_whitespace().collect();
            let source = right.split_whitespace().nth(1)?;
            let mount_point = unescape(f.get(4)?);
            Some((f.get(2)?.to_string(), mount_point, source.to_owned()))
        })
        .filter(|(_, mount_point, _)| path.starts_with(mount_point))
        .max_by_key(|(_, mount_point, _)| mount_point.len())
        .map(|(dev, _, source)| (dev, source))
}

/// Undoes the octal escapes of mountinfo paths (`\040` for a space, and so on).
fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('\\') {
        out.push_str(&rest[..i]);
        let code = rest.get(i + 1..i + 4).and_then(|o| u8::from_str_radix(o, 8).ok());
        match code {
            Some(c) => {
                out.push(char::from(c));
                rest = &rest[i + 4..];
            }
            None => {
                out.push('\\');
                rest = &rest[i + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The `major:minor` of a `st_dev` (glibc's `gnu_dev_major`/`gnu_dev_minor` encoding).
pub(super) fn major_minor(dev: u64) -> (u64, u64) {
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
    (major, minor)
}

/// The stat file of the block device holding `dir`, under the sysfs root `sys` (`/sys`):
/// by the directory's `st_dev` (`/sys/dev/block/M:m/stat`; a partition has its own), else
/// by the mount's `major:minor` in `mountinfo`, else by the mount source's name
/// (`/dev/vda` → `/sys/class/block/vda/stat`; a filesystem on an anonymous device, as
/// overlayfs or btrfs give, has no stat under its `st_dev`).
pub(super) fn stat_file(sys: &Path, dev: u64, mountinfo: &str, dir: &Path) -> Option<PathBuf> {
    let (major, minor) = major_minor(dev);
    let mut candidates = vec![sys.join(format!("dev/block/{major}:{minor}/stat"))];
    if let Some((mm, source)) = mount_of(mountinfo, dir) {
        candidates.push(sys.join(format!("dev/block/{mm}/stat")));
        if let Some(name) = source.strip_prefix("/dev/") {
            candidates.push(sys.join("class/block").join(name).join("stat"));
        }
    }
    candidates
        .into_iter()
        .find(|p| fs::read_to_string(p).ok().and_then(|s| sectors_written(&s)).is_some())
}

/// `write_bytes` of a `/proc/<pid>/io` file: page-cache bytes dirtied.
pub(super) fn dirtied_bytes(io: &str) -> Option<u64> {
    io.lines().find_map(|l| l.strip_prefix("write_bytes:")).and_then(|v| v.trim().parse().ok())
}

fn read_dirtied() -> Option<u64> {
    dirtied_bytes(&fs::read_to_string("/proc/self/io").ok()?)
}

/// The device counter of the disk under a work directory.
#[derive(Debug)]
pub struct Device {
    stat: PathBuf,
    /// An open handle on the work directory, for `syncfs`.
    dir: fs::File,
}

impl Device {
    /// The device holding `dir`, if its stat file can be found and read.
    pub fn of(dir: &Path) -> Option<Self> {
        let dir = dir.canonicalize().ok()?;
        let dev = fs::metadata(&dir).ok()?.dev();
        let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let stat = stat_file(Path::new("/sys"), dev, &mountinfo, &dir)?;
        Some(Device { stat, dir: fs::File::open(&dir).ok()? })
    }

    /// The stat file read.
    pub fn stat_path(&self) -> &Path {
        &self.stat
    }

    /// Flushes the whole filesystem (`syncfs`), then reads the bytes written so far.
    fn synced_bytes(&self) -> Result<u64, BenchError> {
        rustix::fs::syncfs(self.dir.as_fd())
            .map_err(|e| BenchError::io("syncfs on the work directory", &self.stat)(e.into()))?;
        let text = fs::read_to_string(&self.stat).map_err(BenchError::io("reading", &self.stat))?;
        sectors_written(&text).map(|s| s * STAT_SECTOR_BYTES).ok_or_else(|| {
            BenchError::WrongAnswer {
                backend: "device".to_owned(),
                detail: format!("{} has no sectors-written field: {text:?}", self.stat.display()),
            }
        })
    }

    /// Runs `cell` between two synced reads of the counter, after an idle window of
    /// [`IDLE_WINDOW`] that samples what the rest of the machine writes meanwhile. `cell`
    /// returns its result and the payload bytes it wrote; `own` reads the backend's own
    /// count of bytes written, if it keeps one, after the cell.
    pub fn measure<T>(
        &self,
        cell: impl FnOnce() -> Result<(T, u64), BenchError>,
        own: impl FnOnce(&T) -> Option<u64>,
    ) -> Result<(T, DeviceWrites), BenchError> {
        let idle_start = self.synced_bytes()?;
        let idle_at = Instant::now();
        std::thread::sleep(IDLE_WINDOW);
        let before = self.synced_bytes()?;
        let idle = (before.saturating_sub(idle_start), idle_at.elapsed());
        let dirtied_before = read_dirtied();
        let started = Instant::now();
        let (out, payload) = cell()?;
        let after = self.synced_bytes()?;
        let took = started.elapsed();
        let dirtied = dirtied_before.zip(read_dirtied()).map(|(a, b)| b.saturating_sub(a));
        let own_bytes = own(&out);
        Ok((
            out,
            DeviceWrites::new(
                after.saturating_sub(before),
                idle,
                took,
                payload,
                own_bytes,
                dirtied,
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;

    /// A `/sys/block/vda/stat` line of this machine's kind (virtio disk, kernel 6.x: 17
    /// fields, discards and flushes after the first eleven).
    const VDA_STAT: &str = " 2775389    56138 82925490 17116568 34116055  1087297 \
        1133050752 13755711        0  5118464 35156769  1950537     1929 7654036848  1095585  \
        9188046  3188903\n";
    /// A partition's stat of an older kernel (11 fields).
    const SDA1_STAT: &str = "   1234  5 67890 100 4321 6 98765 200 0 300 300\n";

    const MOUNTINFO: &str = "\
22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard
30 27 8:1 / /mnt/data rw,relatime shared:5 - ext4 /dev/sda1 rw
31 27 0:45 / /mnt/over\\040lay rw - overlay overlay rw,lowerdir=/a
32 27 0:46 / /mnt/btr rw - btrfs /dev/nvme0n1p2 rw
";

    #[test]
    fn sectors_written_is_the_seventh_field() {
        assert_eq!(sectors_written(VDA_STAT), Some(1_133_050_752));
        assert_eq!(sectors_written(SDA1_STAT), Some(98_765));
        assert_eq!(sectors_written("1 2 3 4 5 6"), None, "a short line has no field 7");
        assert_eq!(sectors_written("1 2 3 4 5 6 x"), None);
    }

    #[test]
    fn the_mount_is_the_longest_prefix_and_paths_are_unescaped() {
        let m = |p: &str| mount_of(MOUNTINFO, Path::new(p));
        assert_eq!(m("/var/tmp/x"), Some(("254:0".into(), "/dev/vda".into())));
        assert_eq!(m("/mnt/data/w"), Some(("8:1".into(), "/dev/sda1".into())));
        assert_eq!(m("/mnt/over lay/w"), Some(("0:45".into(), "overlay".into())));
        assert_eq!(m("/mnt/btr"), Some(("0:46".into(), "/dev/nvme0n1p2".into())));
        // `/mnt/database` is not under `/mnt/data`: path components, not string prefixes.
        assert_eq!(m("/mnt/database"), Some(("254:0".into(), "/dev/vda".into())));
    }

    #[test]
    fn major_minor_decodes_st_dev() {
        assert_eq!(major_minor(0xfe00), (254, 0)); // vda, as `stat -c %D` shows it
        assert_eq!(major_minor(0x801), (8, 1)); // sda1
        assert_eq!(major_minor(259 << 8 | 3), (259, 3)); // an NVMe partition
                                                         // Minor numbers above 255 are split around the major (glibc's encoding).
        assert_eq!(
            major_minor((0x12345 & 0xff) | ((0x12345 & !0xff) << 12) | (8 << 8)),
            (8, 0x12345)
        );
    }

    /// A fake sysfs: vda by `dev/block`, a partition's own stat, and a device only found
    /// by the mount source's name (the filesystem's `st_dev` is anonymous).
    #[test]
    fn the_stat_file_is_found_by_st_dev_then_mount_then_source() {
        let sys = tempfile::tempdir().unwrap();
        let put = |rel: &str, text: &str| {
            let p = sys.path().join(rel);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, text).unwrap();
        };
        put("dev/block/254:0/stat", VDA_STAT);
        put("dev/block/8:1/stat", SDA1_STAT);
        put("class/block/nvme0n1p2/stat", SDA1_STAT);
        let s = sys.path();
        let found = |dev: u64, dir: &str| stat_file(s, dev, MOUNTINFO, Path::new(dir));
        assert_eq!(found(0xfe00, "/var/tmp"), Some(s.join("dev/block/254:0/stat")));
        assert_eq!(found(0x801, "/mnt/data/w"), Some(s.join("dev/block/8:1/stat")));
        // Anonymous st_dev 0:46, mount 0:46 has no stat either: by the source's name.
        assert_eq!(found(46, "/mnt/btr/w"), Some(s.join("class/block/nvme0n1p2/stat")));
        // overlay: no device at all, so no column rather than a wrong one.
        assert_eq!(found(45, "/mnt/over lay/w"), None);
        // A stat file without a sectors-written field is not taken.
        put("dev/block/254:0/stat", "1 2 3\n");
        assert_eq!(found(0xfe00, "/var/tmp"), None);
    }

    #[test]
    fn dirtied_bytes_reads_write_bytes() {
        let io = "rchar: 10\nwchar: 20\nsyscr: 1\nsyscw: 2\nread_bytes: 4096\nwrite_bytes: 8192\n\
                  cancelled_write_bytes: 0\n";
        assert_eq!(dirtied_bytes(io), Some(8192));
        assert_eq!(dirtied_bytes("rchar: 1\n"), None);
    }

    /// On this machine: the device under `/var/tmp` is found, and a synced 4 MiB write
    /// is counted in full by it (other processes can only add to the difference).
    #[test]
    fn a_synced_write_reaches_the_device_counter() {
        let dir = tempfile::tempdir_in("/var/tmp").unwrap();
        let Some(device) = Device::of(dir.path()) else {
            panic!("no block device found under /var/tmp (mountinfo and /sys/dev/block)")
        };
        let path = dir.path().join("x");
        let (_, w) = device
            .measure(
                || {
                    let mut f = fs::File::create(&path).unwrap();
                    f.write_all(&vec![7u8; 4 << 20]).unwrap();
                    f.sync_all().unwrap();
                    Ok(((), 4 << 20))
                },
                |()| None,
            )
            .unwrap();
        assert!(w.device_bytes >= 4 << 20, "{} device bytes for 4 MiB", w.device_bytes);
        assert_eq!(w.payload_bytes, 4 << 20);
        assert!(w.dirtied_bytes.is_some_and(|d| d >= 4 << 20), "{:?}", w.dirtied_bytes);
    }
}
