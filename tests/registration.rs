//! Registration against a real Kamailio registrar on loopback, through the
//! library's Rust API: refresh, 423, un-REGISTER on free, server stop.

mod support;

use sipprofile::profile::Status;
use sipprofile::server::events::Event;
use std::time::Duration;
use support::{Kamailio, Seen, TempDir, provision, registry, wait_for};

const WAIT: Duration = Duration::from_secs(10);

#[test]
fn refreshes_before_expiry_and_stays_registered() {
    let k = Kamailio::start_with("MD5", 2, 0);
    let tmp = TempDir::new("refresh");
    let store = tmp.path().join("p.db");
    let (m, _mrx) = registry(&store, true);
    let id = provision(&m, &k.registrar(), "alice", "alicepw", 4);
    let (u, rx) = registry(&store, false);
    let h = u.profile(id).unwrap();
    u.enable(&h).unwrap();
    assert!(wait_for(&rx, Seen::Event(id, Event::Registered), WAIT));
    assert_eq!(h.block.read().info.granted_expires, 4);
    let user = support::contact_user(&h);
    // Three granted lifetimes later the binding is still there: it was refreshed.
    std::thread::sleep(Duration::from_secs(12));
    assert!(
        k.bindings().contains(&user),
        "binding lost: {}",
        k.bindings()
    );
    assert_eq!(h.block.read().info.status, Status::Registered);
    assert!(!wait_for(
        &rx,
        Seen::Event(id, Event::Deregistered),
        Duration::from_millis(10)
    ));
    u.disable(&h).unwrap();
    assert!(wait_for(&rx, Seen::Event(id, Event::Deregistered), WAIT));
    assert!(!k.bindings().contains(&user));
    drop(h);
    u.close();
    m.close();
}

#[test]
fn interval_too_brief_adopts_min_expires() {
    let k = Kamailio::start_with("MD5", 120, 0);
    let tmp = TempDir::new("423");
    let store = tmp.path().join("p.db");
    let (m, _mrx) = registry(&store, true);
    let id = provision(&m, &k.registrar(), "alice", "alicepw", 60);
    let (u, rx) = registry(&store, false);
    let h = u.profile(id).unwrap();
    u.enable(&h).unwrap();
    assert!(wait_for(&rx, Seen::Event(id, Event::Registered), WAIT));
    assert_eq!(h.block.read().info.granted_expires, 120);
    drop(h);
    u.close();
    m.close();
}

#[test]
fn freeing_the_enabling_registry_unregisters() {
    let k = Kamailio::start("SHA-256");
    let tmp = TempDir::new("free");
    let store = tmp.path().join("p.db");
    let (m, _mrx) = registry(&store, true);
    let id = provision(&m, &k.registrar(), "bob", "bobpw", 300);
    let (u, rx) = registry(&store, false);
    let h = u.profile(id).unwrap();
    u.enable(&h).unwrap();
    assert!(wait_for(&rx, Seen::Event(id, Event::Registered), WAIT));
    let user = support::contact_user(&h);
    assert!(k.bindings().contains(&user));
    // The server stays (the managed registry holds it); the un-REGISTER goes out.
    u.close();
    let mut gone = false;
    for _ in 0..50 {
        if !k.bindings().contains(&user) {
            gone = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(gone, "binding still present after registry free");
    // The handle outlived its registry: readable, but registry calls fail.
    assert_eq!(h.block.read().data.id, id);
    assert_eq!(u.enable(&h), Err(sipprofile::Error::BadHandle));
    m.close();
}

#[test]
fn stopping_the_server_unregisters_within_the_bounded_wait() {
    let k = Kamailio::start("MD5");
    let tmp = TempDir::new("stop");
    let store = tmp.path().join("p.db");
    let (m, _mrx) = registry(&store, true);
    let ids: Vec<u32> = (0..5)
        .map(|_| provision(&m, &k.registrar(), "alice", "alicepw", 300))
        .collect();
    m.close();
    let (u, rx) = registry(&store, false);
    let handles: Vec<_> = ids.iter().map(|id| u.profile(*id).unwrap()).collect();
    for h in &handles {
        u.enable(h).unwrap();
    }
    let mut registered = std::collections::HashSet::new();
    while registered.len() < ids.len() {
        match rx.recv_timeout(WAIT) {
            Ok(Seen::Event(id, Event::Registered)) => {
                registered.insert(id);
            }
            Ok(_) => {}
            Err(_) => panic!("only {registered:?} registered"),
        }
    }
    let users: Vec<String> = handles.iter().map(support::contact_user).collect();
    let started = std::time::Instant::now();
    u.close(); // the last registry: the server stops
    assert!(started.elapsed() < sipprofile::server::SHUTDOWN_WAIT + Duration::from_secs(1));
    let b = k.bindings();
    for user in &users {
        assert!(!b.contains(user), "binding {user} left after server stop");
    }
}
