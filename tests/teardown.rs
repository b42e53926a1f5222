//! Teardown in flight: the last registry freed while registrations, retries
//! and refreshes are running returns within the bounded wait, leaves no
//! thread behind and no binding at the registrar. (Its own test binary: it
//! counts the process's threads.)

mod support;

use sipprofile::client::Registry;
use sipprofile::profile::keys;
use sipprofile::server::SHUTDOWN_WAIT;
use std::time::{Duration, Instant};
use support::{Kamailio, TempDir, provision};

fn threads_of_this_process() -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|d| d.count())
        .unwrap_or(0)
}

#[test]
fn last_registry_freed_mid_flight_returns_in_the_bounded_wait_and_leaves_no_thread() {
    let k = Kamailio::start("MD5");
    let tmp = TempDir::new("teardown");
    let store = tmp.path().join("p.db");
    let baseline = threads_of_this_process();
    let m = Registry::open(Some(&store), true, None).unwrap();
    let mut ids = Vec::new();
    for i in 0..30 {
        // Registered ones (short expiry: refreshes in flight), and ones
        // that retry against a port where nobody answers.
        let registrar = if i % 3 == 0 {
            "sip:127.0.0.1:9".to_string()
        } else {
            k.registrar()
        };
        let id = provision(&m, &registrar, "alice", "alicepw", 60);
        let h = m.profile(id).unwrap();
        h.set_u32(keys::RETRY_BASE_SECONDS, 1).unwrap();
        m.save(&h).unwrap();
        ids.push(id);
    }
    let u = Registry::open(Some(&store), false, None).unwrap();
    let handles: Vec<_> = ids.iter().map(|id| u.profile(*id).unwrap()).collect();
    for h in &handles {
        u.enable(h).unwrap();
    }
    std::thread::sleep(Duration::from_millis(300));
    assert!(threads_of_this_process() > baseline);
    m.close();
    let started = Instant::now();
    u.close(); // the last registry: the server stops
    assert!(
        started.elapsed() <= SHUTDOWN_WAIT + Duration::from_secs(1),
        "took {:?}",
        started.elapsed()
    );
    drop(handles);
    // Every library thread has ended (the engine, the delivery threads).
    let deadline = Instant::now() + Duration::from_secs(2);
    while threads_of_this_process() > baseline && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(threads_of_this_process(), baseline, "threads left behind");
    // The store's server (a process of its own) un-REGISTERs what nobody
    // uses any more, within its bounded wait.
    let deadline = Instant::now() + SHUTDOWN_WAIT;
    while k.bindings().contains("Address:") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        !k.bindings().contains("Address:"),
        "bindings left: {}",
        k.bindings()
    );
}
