//! Where the library's own threads run: the SIP engine, and the delivery
//! threads that call observers with their watchdog. By default they inherit
//! the CPU affinity of the thread that started them. `$SIPPROFILE_CPUS`, a
//! CPU list as `taskset -c` takes it ("1", "0,2", "2-3"), pins them to those
//! CPUs; set but empty is the same as unset.
//!
//! Why: to keep the library's work, and the callbacks it runs, off the CPUs
//! an application keeps for itself, or on one CPU with it: on small VMs,
//! waking a thread on another CPU costs tens of microseconds. (Registration
//! callbacks need no such wake-up: they run on the engine's thread.) The
//! price: the library's work and every callback share those CPUs.

use crate::log;
use nix::sched::{CpuSet, sched_setaffinity};
use nix::unistd::Pid;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

/// The environment variable naming the CPUs.
pub const CPUS_VAR: &str = "SIPPROFILE_CPUS";

/// Starts a library thread named `name` running `f`, placed first on
/// `$SIPPROFILE_CPUS` if set. A value that does not parse, or names no CPU
/// this process may use, leaves the thread where it is, with one warning
/// per process (a bad value is reported here, before the thread starts).
pub(crate) fn spawn<F, T>(name: &str, f: F) -> std::io::Result<JoinHandle<T>>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let cpus = configured();
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            if let Some(cpus) = cpus {
                place_current_thread(cpus);
            }
            f()
        })
}

fn place_current_thread(cpus: &CpuSet) {
    if let Err(e) = sched_setaffinity(Pid::from_raw(0), cpus) {
        static WARNED: AtomicBool = AtomicBool::new(false);
        if !WARNED.swap(true, Ordering::Relaxed) {
            log::warn(&format!(
                "{CPUS_VAR}: cannot run on those CPUs ({e}); threads keep their affinity"
            ));
        }
    }
}

/// `$SIPPROFILE_CPUS` as a CPU set, read once per process.
fn configured() -> Option<&'static CpuSet> {
    static CPUS: OnceLock<Option<CpuSet>> = OnceLock::new();
    CPUS.get_or_init(|| {
        let value = std::env::var(CPUS_VAR)
            .ok()
            .filter(|v| !v.trim().is_empty())?;
        let set = parse_cpu_list(&value).and_then(|cpus| {
            let mut set = CpuSet::new();
            for cpu in cpus {
                set.set(cpu).ok()?;
            }
            Some(set)
        });
        if set.is_none() {
            log::warn(&format!(
                "{CPUS_VAR}={value:?} is not a CPU list such as 1 or 0,2 or 2-3; ignored"
            ));
        }
        set
    })
    .as_ref()
}

/// Parses "1", "0,2", "2-3", "0,4-5" (spaces around items allowed) into CPU
/// numbers below `CpuSet::count()`; `None` for anything else, or an empty list.
fn parse_cpu_list(s: &str) -> Option<Vec<usize>> {
    let mut cpus = Vec::new();
    for item in s.split(',') {
        let item = item.trim();
        let (first, last) = match item.split_once('-') {
            Some((a, b)) => (a.trim().parse().ok()?, b.trim().parse().ok()?),
            None => {
                let n: usize = item.parse().ok()?;
                (n, n)
            }
        };
        if first > last || last >= CpuSet::count() {
            return None;
        }
        cpus.extend(first..=last);
    }
    Some(cpus)
}

#[cfg(test)]
mod tests {
    use super::parse_cpu_list;

    #[test]
    fn cpu_lists_parse_as_taskset_reads_them() {
        assert_eq!(parse_cpu_list("1"), Some(vec![1]));
        assert_eq!(parse_cpu_list("0,2"), Some(vec![0, 2]));
        assert_eq!(parse_cpu_list("2-3"), Some(vec![2, 3]));
        assert_eq!(parse_cpu_list(" 0 , 4-5 "), Some(vec![0, 4, 5]));
        assert_eq!(parse_cpu_list("3-3"), Some(vec![3]));
    }

    #[test]
    fn anything_else_is_refused() {
        for bad in [
            "", " ", "a", "1,", ",1", "-1", "1-", "3-2", "1-2-3", "0x1", "99999", "1;2",
        ] {
            assert_eq!(parse_cpu_list(bad), None, "{bad:?}");
        }
    }
}
