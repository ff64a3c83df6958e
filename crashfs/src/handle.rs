//! [`CrashFs`]: a mounted crash filesystem, as a test or the command line holds it.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use crate::cut::{CutReport, PowerCut};
use crate::fault::{Fault, Faults};
use crate::mount::{self, Session};
use crate::rebuild::rebuild;
use crate::state::{internal_dir, Power, State};
use crate::{Broken, Error, Stats};

/// How to mount.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct MountOptions {
    broken: Broken,
}

impl MountOptions {
    /// Mounts a deliberately broken variant (the crate's own tests only).
    #[cfg(feature = "self-check")]
    #[doc(hidden)]
    pub fn broken(mut self, broken: Broken) -> MountOptions {
        self.broken = broken;
        self
    }
}

/// A crash filesystem mounted at a mount point over a backing directory.
///
/// Dropping it unmounts cleanly (the backing directory keeps the live state); so does a
/// panic that unwinds through it. A mount left by a process that was killed is detached
/// by the next mount at the same mount point.
///
/// The daemon serving the mount is a thread of the process that mounted it. Any process
/// may do I/O on the mount, this one included, with one exception: a thread of **this**
/// process must not unmap (or exit holding) a *shared writable* memory map of a file on
/// the mount that has changes not yet written back. The kernel writes those pages back
/// while it holds the process's memory-map lock, and the daemon thread needs that lock
/// to allocate memory: the process deadlocks. Read-only maps (the WAL's) are safe; do
/// writes through shared maps in a child process, as the crate's own test does, or
/// mount with the command line, whose daemon is a process of its own.
#[derive(Debug)]
pub struct CrashFs {
    backing: PathBuf,
    mountpoint: PathBuf,
    options: MountOptions,
    session: Option<Session>,
}

impl CrashFs {
    /// Mounts `backing` (an existing directory) at `mountpoint` (an existing directory,
    /// neither inside the other). What the backing directory holds now is durable.
    pub fn mount(
        backing: impl AsRef<Path>,
        mountpoint: impl AsRef<Path>,
    ) -> Result<CrashFs, Error> {
        CrashFs::mount_with(backing, mountpoint, MountOptions::default())
    }

    /// [`CrashFs::mount`] with options.
    pub fn mount_with(
        backing: impl AsRef<Path>,
        mountpoint: impl AsRef<Path>,
        options: MountOptions,
    ) -> Result<CrashFs, Error> {
        let backing = canonical_dir(backing.as_ref(), "backing directory")?;
        // A stale mount there (a killed run) fails every call: clear it before looking.
        let mountpoint = absolute_unresolved(mountpoint.as_ref())?;
        mount::clear_stale(&mountpoint)?;
        let mountpoint = canonical_dir(&mountpoint, "mount point")?;
        if backing.starts_with(&mountpoint) || mountpoint.starts_with(&backing) {
            return Err(Error::Invalid(format!(
                "the backing directory {} and the mount point {} must not contain each other",
                backing.display(),
                mountpoint.display()
            )));
        }
        let mut fs = CrashFs { backing, mountpoint, options, session: None };
        fs.start(Faults::default(), Stats::default())?;
        Ok(fs)
    }

    fn start(&mut self, faults: Faults, stats: Stats) -> Result<(), Error> {
        let state = State::scan(&self.backing, faults, stats, self.options.broken)?;
        self.session = Some(mount::mount(state, &self.mountpoint)?);
        Ok(())
    }

    /// The backing directory (canonical).
    pub fn backing(&self) -> &Path {
        &self.backing
    }

    /// The mount point (canonical).
    pub fn mountpoint(&self) -> &Path {
        &self.mountpoint
    }

    /// Cuts the power: unmounts, rewrites the backing directory to what survives `cut`,
    /// and mounts it again. Stop every process writing on the mount first; a file still
    /// open on the old mount fails with `EIO` from now on. Armed faults stay armed.
    pub fn power_cut(&mut self, cut: PowerCut) -> Result<CutReport, Error> {
        let (report, faults, stats) = self.cut(cut)?;
        self.start(faults, stats)?;
        Ok(report)
    }

    /// Cuts the power and leaves it off: the backing directory holds what survived, for
    /// whatever mounts it next.
    pub fn power_off(mut self, cut: PowerCut) -> Result<CutReport, Error> {
        self.cut(cut).map(|(report, _, _)| report)
    }

    fn cut(&mut self, cut: PowerCut) -> Result<(CutReport, Faults, Stats), Error> {
        let session = self.session.take().ok_or_else(|| not_mounted(&self.mountpoint))?;
        {
            let mut state = session.lock();
            if state.power == Power::On {
                state.power = Power::Off(format!("{cut}"));
            }
        }
        let shared = session.unmount(&self.mountpoint)?;
        let mut state = shared.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let report = rebuild(&state, cut)?;
        let faults = std::mem::take(&mut state.faults);
        let mut stats = state.stats;
        stats.power_cuts += 1;
        stats.held_bytes = 0;
        Ok((report, faults, stats))
    }

    /// Unmounts cleanly: the backing directory keeps the live state.
    pub fn unmount(mut self) -> Result<(), Error> {
        self.stop()
    }

    fn stop(&mut self) -> Result<(), Error> {
        let Some(session) = self.session.take() else { return Ok(()) };
        session.unmount(&self.mountpoint)?;
        let internal = internal_dir(&self.backing);
        std::fs::remove_dir_all(&internal).map_err(|e| Error::io("removing", &internal, e))
    }

    /// Arms a fault; it stays armed (across power cuts) until [`CrashFs::clear_faults`].
    pub fn arm(&self, fault: Fault) -> Result<(), Error> {
        self.session()?.lock().faults.arm(fault)
    }

    /// Disarms every fault.
    pub fn clear_faults(&self) -> Result<(), Error> {
        self.session()?.lock().faults.clear();
        Ok(())
    }

    /// The armed faults.
    pub fn faults(&self) -> Result<Vec<Fault>, Error> {
        Ok(self.session()?.lock().faults.list())
    }

    /// Counters since the mount.
    pub fn stats(&self) -> Result<Stats, Error> {
        let state = self.session()?.lock();
        Ok(Stats { held_bytes: state.held_bytes(), ..state.stats })
    }

    /// Why the power is off (a power-off fault fired), if it is.
    pub fn powered_off(&self) -> Result<Option<String>, Error> {
        Ok(match &self.session()?.lock().power {
            Power::On => None,
            Power::Off(why) => Some(why.clone()),
        })
    }

    /// Turns the power back on after a power-off fault fired, without a cut: every change
    /// made before the fault fired stays, synced or not, and the call it fired on and
    /// every later one are not done. This is what a process killed at that call leaves
    /// (the page cache survives it), so a test can crash a writer at its n-th I/O call,
    /// deterministically, and reopen what it left. Faults stay armed.
    pub fn power_on(&self) -> Result<(), Error> {
        self.session()?.lock().power = Power::On;
        Ok(())
    }

    /// Whether the mount is still there (an outside `umount` takes it away).
    pub fn is_mounted(&self) -> Result<bool, Error> {
        Ok(self.session.is_some() && mount::is_our_mount(&self.mountpoint)?)
    }

    fn session(&self) -> Result<&Session, Error> {
        self.session.as_ref().ok_or_else(|| not_mounted(&self.mountpoint))
    }
}

impl Drop for CrashFs {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            eprintln!("paxstore-crashfs: unmounting {}: {e}", self.mountpoint.display());
            let _ = mount::force_unmount(&self.mountpoint);
        }
    }
}

fn not_mounted(mountpoint: &Path) -> Error {
    Error::Invalid(format!(
        "nothing is mounted at {} (an earlier cut failed)",
        mountpoint.display()
    ))
}

/// `path` with its parent resolved but not its last component (a mount point that may
/// not answer).
pub(crate) fn absolute_unresolved(path: &Path) -> Result<PathBuf, Error> {
    let name = path
        .file_name()
        .ok_or_else(|| Error::Invalid(format!("{} names no directory", path.display())))?;
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let parent = parent.canonicalize().map_err(|e| Error::io("finding", &parent, e))?;
    Ok(parent.join(name))
}

fn canonical_dir(path: &Path, what: &str) -> Result<PathBuf, Error> {
    let canonical =
        path.canonicalize().map_err(|e| Error::io(&format!("finding the {what}"), path, e))?;
    if !canonical.is_dir() {
        return Err(Error::Invalid(format!("the {what} {} is not a directory", path.display())));
    }
    Ok(canonical)
}

/// Whether a crash filesystem can be mounted here: `Ok`, or [`Error::Unavailable`]
/// saying why (not root, no `/dev/fuse`, mounting refused, ...). Checked once per
/// process, with a trial mount.
pub fn available() -> Result<(), Error> {
    static VERDICT: OnceLock<Result<(), String>> = OnceLock::new();
    VERDICT.get_or_init(check).clone().map_err(Error::Unavailable)
}

fn check() -> Result<(), String> {
    let euid = rustix::process::geteuid();
    if !euid.is_root() {
        return Err(format!(
            "not root (euid {}): mounting FUSE without fusermount needs root",
            euid.as_raw()
        ));
    }
    let dev = Path::new("/dev/fuse");
    if !dev.exists() {
        return Err("no /dev/fuse (is the fuse module loaded?)".into());
    }
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(dev)
        .map_err(|e| format!("cannot open /dev/fuse: {e}"))?;
    trial_mount().map_err(|e| format!("a trial mount failed: {e}"))
}

fn trial_mount() -> Result<(), Error> {
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let root =
        std::env::temp_dir().join(format!("paxstore-crashfs-check-{}-{n}", std::process::id()));
    let (backing, mnt) = (root.join("backing"), root.join("mnt"));
    for dir in [&backing, &mnt] {
        std::fs::create_dir_all(dir).map_err(|e| Error::io("creating", dir, e))?;
    }
    let outcome = CrashFs::mount(&backing, &mnt).and_then(|fs| {
        std::fs::write(mnt.join("probe"), b"x").map_err(|e| Error::io("writing in", &mnt, e))?;
        fs.unmount()
    });
    let _ = std::fs::remove_dir_all(&root);
    outcome
}
