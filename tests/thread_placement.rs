//! `$SIPPROFILE_CPUS` pins the library's own threads (the SIP engine and the
//! threads that call observers) and nothing else; a bad value is
//! refused with a warning and changes nothing. Run through the `sipprofile
//! watch` command, whose threads are read back from /proc.

mod support;

use nix::sched::{CpuSet, sched_getaffinity};
use nix::unistd::Pid;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};
use support::TempDir;

/// `sipprofile watch` running with `cpus` as `$SIPPROFILE_CPUS` (unset for
/// `None`), and its stderr, line by line.
struct Watch {
    child: Child,
    stderr: Receiver<String>,
    said: String,
}

impl Watch {
    /// Returns once the registry is open (the command says "watching").
    fn start(store: &std::path::Path, cpus: Option<&str>) -> Watch {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_sipprofile"));
        cmd.arg("--store").arg(store).arg("watch");
        // The command hosts the store's server (and so the SIP engine)
        // itself: its threads are all in one process to read back.
        cmd.env_remove("SIPPROFILE_CPUS")
            .env("SIPPROFILE_SERVER", "in-process")
            .env("SIPPROFILE_LOG", "warn");
        if let Some(c) = cpus {
            cmd.env("SIPPROFILE_CPUS", c);
        }
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, stderr) = channel();
        let err = BufReader::new(child.stderr.take().unwrap());
        std::thread::spawn(move || {
            for line in err.lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut w = Watch {
            child,
            stderr,
            said: String::new(),
        };
        assert!(
            w.hears("watching", Duration::from_secs(5)),
            "watch did not start: {}",
            w.said
        );
        w
    }

    /// Whether stderr says `what` within `wait`.
    fn hears(&mut self, what: &str, wait: Duration) -> bool {
        let deadline = Instant::now() + wait;
        while !self.said.contains(what) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stderr.recv_timeout(left) {
                Ok(line) => {
                    self.said.push_str(&line);
                    self.said.push('\n');
                }
                Err(_) => return false,
            }
        }
        true
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Thread name → `Cpus_allowed_list` of every thread of `pid`.
fn thread_cpus(pid: u32) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for t in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let dir = t.unwrap().path();
        let name = std::fs::read_to_string(dir.join("comm")).unwrap();
        out.push((name.trim().to_string(), cpus_allowed_list(&dir)));
    }
    out
}

/// The `Cpus_allowed_list` of the status file in the /proc directory `dir`.
fn cpus_allowed_list(dir: &std::path::Path) -> String {
    let status = std::fs::read_to_string(dir.join("status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .unwrap()
        .trim()
        .to_string()
}

/// The threads of `pid` once its engine, delivery and watchdog threads are
/// named and, if `pinned_to` is given, placed there: a new thread names and
/// places itself as it starts, so this polls /proc for at most 5 s.
fn settled_threads(pid: u32, pinned_to: Option<&str>) -> Vec<(String, String)> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let threads = thread_cpus(pid);
        let engine = cpus_of(&threads, "sipprofile-engi");
        let observer = cpus_of(&threads, "sipprofile-obse");
        let watchdog = cpus_of(&threads, "sipprofile-watc");
        let placed = |v: &[&str]| pinned_to.is_none_or(|p| v.iter().all(|c| *c == p));
        let library = [&engine, &observer, &watchdog];
        if library.iter().all(|v| v.len() == 1 && placed(v)) {
            return threads;
        }
        assert!(
            Instant::now() < deadline,
            "threads not settled (pinned to {pinned_to:?}): {threads:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn cpus_of<'a>(threads: &'a [(String, String)], prefix: &str) -> Vec<&'a str> {
    threads
        .iter()
        .filter(|(n, _)| n.starts_with(prefix))
        .map(|(_, c)| c.as_str())
        .collect()
}

/// The CPUs this test may use, as the kernel lists them, and the highest.
fn allowed() -> (String, usize) {
    let set = sched_getaffinity(Pid::from_raw(0)).unwrap();
    let cpus: Vec<usize> = (0..CpuSet::count())
        .filter(|c| set.is_set(*c).unwrap())
        .collect();
    let list = cpus_allowed_list(std::path::Path::new("/proc/thread-self"));
    (list, *cpus.last().unwrap())
}

#[test]
fn sipprofile_cpus_pins_the_engine_and_delivery_threads_only() {
    let tmp = TempDir::new("placement-pin");
    let (inherited, last) = allowed();
    let mut w = Watch::start(&tmp.path().join("p.db"), Some(&last.to_string()));
    let threads = settled_threads(w.child.id(), Some(&last.to_string()));
    // The application's threads (main, and the command's printer) stay.
    let others: Vec<_> = threads
        .iter()
        .filter(|(n, _)| !n.starts_with("sipprofile-"))
        .collect();
    assert!(!others.is_empty());
    for (name, cpus) in others {
        assert_eq!(cpus, &inherited, "thread {name} moved");
    }
    // A bad value is reported before the threads start, so by now.
    assert!(
        !w.hears("SIPPROFILE_CPUS", Duration::from_millis(200)),
        "a warning: {}",
        w.said
    );
}

#[test]
fn a_bad_sipprofile_cpus_is_refused_with_a_warning_and_changes_nothing() {
    let tmp = TempDir::new("placement-bad");
    let (inherited, _) = allowed();
    // Not a list; a reversed range; past CpuSet's 1024; a CPU this machine
    // does not have (refused by the kernel, reported by the thread).
    for (bad, warning) in [
        ("banana", "is not a CPU list"),
        ("1-0", "is not a CPU list"),
        ("99999", "is not a CPU list"),
        ("1000", "cannot run on those CPUs"),
    ] {
        let mut w = Watch::start(&tmp.path().join("p.db"), Some(bad));
        let threads = settled_threads(w.child.id(), None);
        assert!(
            w.hears(warning, Duration::from_secs(5)),
            "{bad}: no warning in {}",
            w.said
        );
        for (name, cpus) in &threads {
            assert_eq!(cpus, &inherited, "{bad}: thread {name} moved");
        }
    }
}

#[test]
fn unset_sipprofile_cpus_leaves_every_thread_where_it_started() {
    let tmp = TempDir::new("placement-unset");
    let (inherited, _) = allowed();
    // Set but empty counts as unset: no warning either.
    for cpus in [None, Some("")] {
        let mut w = Watch::start(&tmp.path().join("p.db"), cpus);
        for (name, list) in &settled_threads(w.child.id(), None) {
            assert_eq!(list, &inherited, "{cpus:?}: thread {name} moved");
        }
        assert!(
            !w.hears("SIPPROFILE_CPUS", Duration::from_millis(200)),
            "{cpus:?}: a warning: {}",
            w.said
        );
    }
}
