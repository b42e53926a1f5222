//! Store crash safety: a child process saving profiles in a loop is killed
//! with SIGKILL at random moments, again and again. Each time the store
//! opens, passes `PRAGMA integrity_check`, and holds every profile whose
//! save returned SIP_OK, whole. Plus: file modes, and a foreign file at the
//! store path is refused and left as it was.

mod support;

use sipprofile::client::Registry;
use sipprofile::profile::{TypeInfo, keys};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::TempDir;

const CHILD_ENV: &str = "SIPPROFILE_CRASH_CHILD_STORE";
const ROUNDS: usize = 200;

/// The child: saves profiles until killed, printing each one saved.
#[test]
fn crash_child_entry() {
    let Some(store) = std::env::var_os(CHILD_ENV) else {
        return; // only runs as the child of the test below
    };
    let m = Registry::open(Some(std::path::Path::new(&store)), true, None).expect("open");
    let mut out = std::io::stdout().lock();
    for n in 0u64.. {
        let h = m.create(&TypeInfo::ietf()).unwrap();
        h.set_str(keys::USER_AOR, &format!("sip:u{n}@example.com"))
            .unwrap();
        h.set_str(keys::PROVIDER_NAME, &"p".repeat(200 + (n % 300) as usize))
            .unwrap();
        m.save(&h).unwrap();
        let id = h.id();
        writeln!(out, "saved {id} {n}").unwrap();
        out.flush().unwrap();
    }
}

#[test]
fn killed_writers_never_corrupt_or_lose_a_saved_profile() {
    let tmp = TempDir::new("crash");
    let store = tmp.path().join("p.db");
    let exe = std::env::current_exe().unwrap();
    let mut saved: BTreeMap<u32, u64> = BTreeMap::new();
    let mut seed = 0x9e3779b97f4a7c15u64 ^ std::process::id() as u64;
    for round in 0..ROUNDS {
        let mut child = Command::new(&exe)
            .args([
                "crash_child_entry",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, &store)
            // The child hosts the server: it is the process writing the store.
            .env("SIPPROFILE_SERVER", "in-process")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Kill after a pseudo-random 5–60 ms of saving.
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let after = Duration::from_millis(5 + seed % 56);
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut lines = Vec::new();
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                lines.push(line);
            }
            lines
        });
        let started = Instant::now();
        while started.elapsed() < after {
            std::thread::sleep(Duration::from_millis(1));
        }
        // SAFETY: killing our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
        child.wait().unwrap();
        for line in reader.join().unwrap() {
            let mut parts = line.split_whitespace();
            if parts.next() == Some("saved") {
                let id: u32 = parts.next().unwrap().parse().unwrap();
                let n: u64 = parts.next().unwrap().parse().unwrap();
                saved.insert(id, n);
            }
        }
        // The store opens, is intact, and holds every acknowledged save whole.
        let conn = rusqlite::Connection::open(&store).unwrap();
        let check: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(check, "ok", "round {round}");
        drop(conn);
        let s = sipprofile::store::Store::open(&store).unwrap();
        let all: BTreeMap<u32, sipprofile::profile::ProfileData> = s
            .load_all()
            .unwrap()
            .into_iter()
            .map(|p| (p.id, p))
            .collect();
        for (id, n) in &saved {
            let p = all
                .get(id)
                .unwrap_or_else(|| panic!("round {round}: saved profile {id} lost"));
            assert_eq!(p.aor, format!("sip:u{n}@example.com"));
            assert_eq!(p.provider_name.len(), 200 + (*n % 300) as usize);
        }
    }
    assert!(
        saved.len() > ROUNDS / 2,
        "too few saves to mean anything: {}",
        saved.len()
    );
    for suffix in ["", "-wal", "-shm"] {
        let p = std::path::PathBuf::from(format!("{}{suffix}", store.display()));
        if let Ok(m) = std::fs::metadata(&p) {
            assert_eq!(m.permissions().mode() & 0o777, 0o600, "{}", p.display());
        }
    }
}

#[test]
fn a_foreign_file_is_refused_and_left_alone() {
    let tmp = TempDir::new("foreign");
    let path = tmp.path().join("p.db");
    let junk = b"SQLite format 3\0 but not really; a text file someone put here".to_vec();
    std::fs::write(&path, &junk).unwrap();
    let r = Registry::open(Some(&path), true, None);
    assert!(
        matches!(
            r,
            Err(sipprofile::Error::NotSupported) | Err(sipprofile::Error::General)
        ),
        "{:?}",
        r.err()
    );
    assert_eq!(std::fs::read(&path).unwrap(), junk);
    // Another application's SQLite database is refused too.
    let other = tmp.path().join("other.db");
    rusqlite::Connection::open(&other)
        .unwrap()
        .execute_batch("CREATE TABLE mine (x); INSERT INTO mine VALUES (1);")
        .unwrap();
    let before = std::fs::read(&other).unwrap();
    assert_eq!(
        Registry::open(Some(&other), true, None).err(),
        Some(sipprofile::Error::NotSupported)
    );
    assert_eq!(std::fs::read(&other).unwrap(), before);
}
