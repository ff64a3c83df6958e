//! The machine a report ran on: CPU, cores, memory, kernel, the filesystem under test,
//! and the date, read from `/proc` and the clock (best effort: an unreadable field is
//! reported as `"unknown"`, never an error).
//!
//! Read by hand rather than through `sysinfo`: of the fields here, `sysinfo` gives the CPU
//! brand, the memory and the kernel, but not the hypervisor flag (`/proc/cpuinfo`) nor the
//! mount options of the filesystem under test (`/proc/self/mounts`), so the two files
//! would still be parsed here, and the crate would add a dependency tree to save about
//! twenty lines.

use std::fs;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// What the report ran on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    /// CPU model name.
    pub cpu: String,
    /// Logical CPUs available to this process.
    pub cores: usize,
    /// Total memory, in GiB.
    pub memory_gib: f64,
    /// Kernel name and release, e.g. `Linux 6.1.0`.
    pub kernel: String,
    /// `true` when the CPU reports running under a hypervisor.
    pub virtualized: bool,
    /// The filesystem of the directory the backends wrote to, e.g. `ext4 on /dev/vda`.
    pub filesystem: String,
    /// The mount options of that filesystem.
    pub mount_options: String,
    /// When the run started, UTC, ISO 8601.
    pub date: String,
}

impl Machine {
    /// Describes this machine, with the filesystem holding `data_dir`.
    pub fn describe(data_dir: &Path) -> Self {
        let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name").and_then(|r| r.split_once(':')))
            .map_or_else(|| "unknown".to_owned(), |(_, v)| v.trim().to_owned());
        let virtualized = cpuinfo
            .lines()
            .any(|l| l.starts_with("flags") && l.split_whitespace().any(|f| f == "hypervisor"));
        let cores = std::thread::available_parallelism().map_or(0, usize::from);
        let memory_gib = fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| {
                m.lines()
                    .find_map(|l| l.strip_prefix("MemTotal:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            })
            .map_or(0.0, |kib| (kib / (1024.0 * 1024.0) * 10.0).round() / 10.0);
        let read = |p: &str| fs::read_to_string(p).map(|s| s.trim().to_owned());
        let kernel = match (read("/proc/sys/kernel/ostype"), read("/proc/sys/kernel/osrelease")) {
            (Ok(t), Ok(r)) => format!("{t} {r}"),
            _ => "unknown".to_owned(),
        };
        let (filesystem, mount_options) = filesystem_of(data_dir);
        Machine {
            cpu,
            cores,
            memory_gib,
            kernel,
            virtualized,
            filesystem,
            mount_options,
            date: utc_now(),
        }
    }

    /// One line for the report's header.
    pub fn summary(&self) -> String {
        format!(
            "{} ({} cores{}), {} GiB RAM, {}, {} ({})",
            self.cpu,
            self.cores,
            if self.virtualized { ", virtual machine" } else { "" },
            self.memory_gib,
            self.kernel,
            self.filesystem,
            self.mount_options
        )
    }
}

/// The filesystem type and device of the mount holding `dir` (the longest mount point
/// that is a prefix of its canonical path), and its mount options.
fn filesystem_of(dir: &Path) -> (String, String) {
    let unknown = || ("unknown".to_owned(), String::new());
    let Ok(dir) = dir.canonicalize() else { return unknown() };
    let Ok(mounts) = fs::read_to_string("/proc/self/mounts") else { return unknown() };
    mounts
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 4).then(|| (f[0], f[1].replace("\\040", " "), f[2], f[3]))
        })
        .filter(|(_, mount_point, _, _)| dir.starts_with(mount_point))
        .max_by_key(|(_, mount_point, _, _)| mount_point.len())
        .map_or_else(unknown, |(dev, mp, fstype, opts)| {
            (format!("{fstype} on {dev} (mounted at {mp})"), opts.to_owned())
        })
}

/// The current time, UTC, as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn utc_now() -> String {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_414), (2025, 11, 22));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }
}
