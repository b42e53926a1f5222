//! Concurrency under load, against Kamailio: 8 threads over several
//! registries enabling, disabling, saving, destroying and retrieving a shared
//! set of profiles for a bounded time, with a watchdog; then reference
//! counts, store contents and Kamailio's bindings must agree. Half the
//! registries have an observer (a mailbox the delivery threads serve), half do not (the
//! server updates their handles in place), so both paths run concurrently.

mod support;

use sipprofile::client::Registry;
use sipprofile::client::{Event, Observer};
use sipprofile::profile::{Status, keys};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::{Kamailio, TempDir, provision};

const RUN_FOR: Duration = Duration::from_secs(8);
const THREADS: usize = 8;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Counts what it hears: the test fails if nothing was heard.
struct Count(Arc<AtomicU64>);

impl Observer for Count {
    fn event(&self, _id: u32, _event: Event) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    fn error(&self, _id: u32, _error: i32) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

#[test]
fn eight_threads_hammering_shared_profiles_stay_consistent() {
    // SAFETY: set before any engine thread of this binary starts.
    unsafe { std::env::set_var("SIPPROFILE_SIP_T1_MS", "100") };
    let k = Kamailio::start("MD5");
    let tmp = TempDir::new("stress");
    let store = tmp.path().join("p.db");
    let heard = Arc::new(AtomicU64::new(0));
    let observer = |i: usize| -> Option<Box<dyn Observer>> {
        (i % 2 == 1).then(|| Box::new(Count(heard.clone())) as _)
    };
    let managed: Vec<Arc<Registry>> = (0..2)
        .map(|i| Registry::open(Some(&store), true, observer(i)).unwrap())
        .collect();
    let users: Vec<Arc<Registry>> = (0..4)
        .map(|i| Registry::open(Some(&store), false, observer(i)).unwrap())
        .collect();
    let ids: Arc<Mutex<BTreeSet<u32>>> = Arc::new(Mutex::new(
        (0..12)
            .map(|_| provision(&managed[0], &k.registrar(), "alice", "alicepw", 300))
            .collect(),
    ));
    let progress = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    // Watchdog: no progress for 20 s is a deadlock.
    let watchdog = {
        let (progress, stop) = (progress.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut last = 0;
            let mut since = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(200));
                let now = progress.load(Ordering::Relaxed);
                if now != last {
                    last = now;
                    since = Instant::now();
                } else if since.elapsed() > Duration::from_secs(20) {
                    eprintln!("watchdog: no progress for 20 s: deadlock");
                    std::process::abort();
                }
            }
        })
    };
    let started = Instant::now();
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let (managed, users, ids, progress, registrar) = (
                managed.clone(),
                users.clone(),
                ids.clone(),
                progress.clone(),
                k.registrar(),
            );
            std::thread::spawn(move || {
                let mut rng = Rng(0x1234_5678 + t as u64 * 7919);
                let mut held = Vec::new();
                while started.elapsed() < RUN_FOR {
                    let pick = {
                        let ids = ids.lock().unwrap();
                        let v: Vec<u32> = ids.iter().copied().collect();
                        if v.is_empty() {
                            None
                        } else {
                            Some(v[rng.next() as usize % v.len()])
                        }
                    };
                    let u = &users[rng.next() as usize % users.len()];
                    let m = &managed[rng.next() as usize % managed.len()];
                    match (rng.next() % 10, pick) {
                        (0..=2, Some(id)) => {
                            if let Ok(h) = u.profile(id) {
                                let _ = u.enable(&h);
                                held.push((u.clone(), h));
                            }
                        }
                        (3..=4, _) => {
                            if !held.is_empty() {
                                let (r, h) = held.swap_remove(rng.next() as usize % held.len());
                                let _ = r.disable(&h);
                            }
                        }
                        (5, Some(id)) => {
                            if let Ok(h) = m.profile(id) {
                                h.set_str(keys::PROVIDER_NAME, &format!("n{}", rng.next() % 3))
                                    .unwrap();
                                let _ = m.save(&h);
                            }
                        }
                        (6, Some(id)) => {
                            if let Ok(h) = m.profile(id)
                                && m.destroy(&h).is_ok()
                            {
                                ids.lock().unwrap().remove(&id);
                            }
                        }
                        (7, _) if ids.lock().unwrap().len() < 40 => {
                            let id = provision(m, &registrar, "bob", "bobpw", 300);
                            ids.lock().unwrap().insert(id);
                        }
                        _ => {
                            let _ = u.profiles();
                        }
                    }
                    progress.fetch_add(1, Ordering::Relaxed);
                }
                drop(held); // last handles: implicit disable
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    watchdog.join().unwrap();
    assert!(
        progress.load(Ordering::Relaxed) > 100,
        "too little work done"
    );
    assert!(
        heard.load(Ordering::Relaxed) > 0,
        "no observer heard an event"
    );

    // Nobody holds a handle any more: nothing is in use, and (after the
    // un-REGISTERs) Kamailio holds no binding.
    let expected = ids.lock().unwrap().clone();
    let all = managed[0].profiles().unwrap();
    let stored: BTreeSet<u32> = all.iter().map(|h| h.id()).collect();
    assert_eq!(stored, expected, "store and bookkeeping disagree");
    for h in &all {
        assert_eq!(
            managed[0].is_in_use(h),
            Ok(false),
            "profile {} still in use",
            h.id()
        );
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let settled = all.iter().all(|h| {
            let id = h.id();
            managed[0]
                .profile(id)
                .map(|p| p.status() == Status::Unregistered)
                .unwrap_or(true)
        });
        if settled && !k.bindings().contains("Address:") {
            break;
        }
        if Instant::now() >= deadline {
            let states: Vec<_> = all
                .iter()
                .map(|h| {
                    let id = h.id();
                    (id, managed[0].profile(id).map(|p| p.status()))
                })
                .collect();
            panic!("not settled: {states:?}\nbindings: {}", k.bindings());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(all);
    for r in users.iter().chain(managed.iter()) {
        r.close();
    }
    // A fresh server reads the same set back from disk.
    let m = Registry::open(Some(&store), true, None).unwrap();
    let reread: BTreeSet<u32> = m.profiles().unwrap().iter().map(|h| h.id()).collect();
    assert_eq!(reread, expected);
    m.close();
}
