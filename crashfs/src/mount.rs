//! Mounting and unmounting: `/dev/fuse`, the `mount(2)` and `umount2(2)` calls, the FUSE
//! session thread, and stale mounts left by a process that was killed.

use std::ffi::CString;
use std::fs::OpenOptions;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use fuser::{BackgroundSession, Config, SessionACL};
use rustix::mount::{MountFlags, UnmountFlags};

use crate::daemon::Daemon;
use crate::state::State;
use crate::Error;

/// The filesystem type in `/proc/self/mountinfo` (`fuse.` + subtype).
pub(crate) const FS_TYPE: &str = "fuse.paxstore-crashfs";

/// A live mount: the state its session serves, and the session thread.
#[derive(Debug)]
pub(crate) struct Session {
    pub(crate) state: Arc<Mutex<State>>,
    thread: Option<BackgroundSession>,
    /// The FUSE connection number (the mount's device minor), for `fusectl` abort.
    conn: Option<u32>,
}

/// Mounts `state` (its backing directory) at `mountpoint` and starts serving it.
pub(crate) fn mount(state: State, mountpoint: &Path) -> Result<Session, Error> {
    clear_stale(mountpoint)?;
    let dev = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/fuse")
        .map_err(|e| Error::io("opening", Path::new("/dev/fuse"), e))?;
    let uid = rustix::process::getuid().as_raw();
    let gid = rustix::process::getgid().as_raw();
    // `allow_other`: processes of any user may use the mount (the daemon runs as root);
    // `default_permissions`: the kernel checks permissions from the attributes.
    let data = format!(
        "fd={},rootmode=40000,user_id={uid},group_id={gid},allow_other,default_permissions",
        dev.as_raw_fd()
    );
    let data = CString::new(data).map_err(|e| Error::Invalid(e.to_string()))?;
    let source = state.backing.clone();
    rustix::mount::mount(
        source.as_os_str(),
        mountpoint,
        FS_TYPE,
        MountFlags::NOSUID | MountFlags::NODEV,
        data.as_c_str(),
    )
    .map_err(|e| Error::io("mounting at", mountpoint, e.into()))?;
    let broken = state.broken;
    let state = Arc::new(Mutex::new(state));
    let daemon = Daemon { state: Arc::clone(&state), broken };
    let started =
        fuser::Session::from_fd(daemon, OwnedFd::from(dev), SessionACL::All, Config::default())
            .and_then(fuser::Session::spawn);
    let thread = match started {
        Ok(thread) => thread,
        Err(e) => {
            let _ = rustix::mount::unmount(mountpoint, UnmountFlags::DETACH);
            return Err(Error::io("starting the FUSE session at", mountpoint, e));
        }
    };
    let conn = std::fs::metadata(mountpoint).ok().map(|m| rustix::fs::minor(m.dev()));
    Ok(Session { state, thread: Some(thread), conn })
}

impl Session {
    /// Unmounts and ends the session. If files are still open on the mount it is
    /// detached instead; its connection is then aborted where `fusectl` is mounted, or
    /// ends when the last file closes. Returns the state.
    pub(crate) fn unmount(mut self, mountpoint: &Path) -> Result<Arc<Mutex<State>>, Error> {
        let ended = match rustix::mount::unmount(mountpoint, UnmountFlags::empty()) {
            Ok(()) => true,
            Err(rustix::io::Errno::BUSY) => {
                rustix::mount::unmount(mountpoint, UnmountFlags::DETACH)
                    .map_err(|e| Error::io("detaching", mountpoint, e.into()))?;
                self.abort_connection()
            }
            // Already unmounted from outside (`umount`): the session has ended.
            Err(rustix::io::Errno::INVAL) if !is_our_mount(mountpoint)? => true,
            Err(e) => return Err(Error::io("unmounting", mountpoint, e.into())),
        };
        if let Some(thread) = self.thread.take() {
            if ended {
                match thread.join() {
                    // The session loop reads the end of the connection as an abort or as
                    // no device, depending on timing: both are the normal end.
                    Err(e)
                        if matches!(e.raw_os_error(), Some(libc::ECONNABORTED | libc::ENODEV)) => {}
                    other => {
                        other.map_err(|e| Error::io("ending the FUSE session of", mountpoint, e))?
                    }
                }
            }
            // Else the thread ends by itself when the last open file is closed.
        }
        Ok(Arc::clone(&self.state))
    }

    /// Aborts the FUSE connection through `fusectl`, if it is mounted; whether it was.
    fn abort_connection(&self) -> bool {
        let Some(conn) = self.conn else { return false };
        let abort = PathBuf::from(format!("/sys/fs/fuse/connections/{conn}/abort"));
        abort.exists() && std::fs::write(&abort, b"1").is_ok()
    }

    /// Locks the state.
    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The mount points of `/proc/self/mountinfo` with our filesystem type.
fn our_mounts() -> Result<Vec<PathBuf>, Error> {
    let path = Path::new("/proc/self/mountinfo");
    let text = std::fs::read_to_string(path).map_err(|e| Error::io("reading", path, e))?;
    Ok(text
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let dash = fields.iter().position(|f| *f == "-")?;
            let mountpoint = fields.get(4)?;
            (fields.get(dash + 1) == Some(&FS_TYPE)).then(|| unescape(mountpoint))
        })
        .collect())
}

pub(crate) fn is_our_mount(mountpoint: &Path) -> Result<bool, Error> {
    Ok(our_mounts()?.iter().any(|m| m == mountpoint))
}

/// Mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape(field: &str) -> PathBuf {
    use std::os::unix::ffi::OsStringExt;
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .and_then(|d| std::str::from_utf8(d).ok().and_then(|d| u8::from_str_radix(d, 8).ok()));
        match (bytes[i], octal) {
            (b'\\', Some(b)) => {
                out.push(b);
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    PathBuf::from(std::ffi::OsString::from_vec(out))
}

/// A crash filesystem at `mountpoint` whose daemon is gone (a killed test) answers every
/// call with `ENOTCONN`: detach it so the mount point can be used again. A live one is an
/// error.
pub(crate) fn clear_stale(mountpoint: &Path) -> Result<(), Error> {
    while is_our_mount(mountpoint)? {
        match std::fs::metadata(mountpoint) {
            Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => {
                rustix::mount::unmount(mountpoint, UnmountFlags::DETACH)
                    .map_err(|e| Error::io("detaching the stale mount at", mountpoint, e.into()))?;
            }
            _ => return Err(Error::AlreadyMounted(mountpoint.to_path_buf())),
        }
    }
    Ok(())
}

/// The unmount of a session that could not be ended normally (used on drop).
pub(crate) fn force_unmount(mountpoint: &Path) -> io::Result<()> {
    rustix::mount::unmount(mountpoint, UnmountFlags::DETACH).map_err(io::Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes_are_undone() {
        assert_eq!(unescape(r"/tmp/a\040b\134c"), PathBuf::from(r"/tmp/a b\c"));
        assert_eq!(unescape("/plain"), PathBuf::from("/plain"));
    }
}
