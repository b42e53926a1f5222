//! Registration against a real Kamailio registrar on loopback, through the
//! library's Rust API: refresh, 423, un-REGISTER on free, server stop, and
//! where registration callbacks run.

mod support;

use sipprofile::client::Event;
use sipprofile::client::Observer;
use sipprofile::client::Registry;
use sipprofile::profile::Status;
use std::sync::Mutex;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::ThreadId;
use std::time::Duration;
use support::{Kamailio, Seen, TempDir, provision, registry, wait_for};

const WAIT: Duration = Duration::from_secs(10);

/// Polls Kamailio (bounded) until `user`'s binding is gone.
fn binding_gone(k: &Kamailio, user: &str, within: Duration) -> bool {
    let deadline = std::time::Instant::now() + within;
    while k.bindings().contains(user) {
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    true
}

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
    assert_eq!(h.info().granted_expires, 4);
    let user = support::contact_user(&h);
    // Three granted lifetimes later the binding is still there: it was refreshed.
    std::thread::sleep(Duration::from_secs(12));
    assert!(
        k.bindings().contains(&user),
        "binding lost: {}",
        k.bindings()
    );
    assert_eq!(h.status(), Status::Registered);
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
    assert_eq!(h.info().granted_expires, 120);
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
    assert!(
        binding_gone(&k, &user, Duration::from_secs(5)),
        "binding still present after registry free"
    );
    // The handle outlived its registry: readable, but registry calls fail.
    assert_eq!(h.id(), id);
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

/// A profile id; where its REGISTERED callback says it entered; what it
/// waits for before it returns.
type Hold = (u32, Mutex<Sender<()>>, Mutex<Receiver<()>>);

/// Reports each event with the name and id of the thread that ran its
/// callback; holds the REGISTERED of profile `hold` until `gate` says go.
struct Where {
    tx: Mutex<Sender<(u32, Event, String, ThreadId)>>,
    hold: Option<Hold>,
}

impl Observer for Where {
    fn event(&self, id: u32, event: Event) {
        let t = std::thread::current();
        let name = t.name().unwrap_or_default().to_owned();
        let _ = self.tx.lock().unwrap().send((id, event, name, t.id()));
        if let Some((held, entered, gate)) = &self.hold
            && *held == id
            && event == Event::Registered
        {
            let _ = entered.lock().unwrap().send(());
            let _ = gate.lock().unwrap().recv_timeout(Duration::from_secs(30));
        }
    }
    fn error(&self, _: u32, _: i32) {}
}

fn registered_on(rx: &Receiver<(u32, Event, String, ThreadId)>, id: u32) -> (String, ThreadId) {
    loop {
        match rx.recv_timeout(WAIT) {
            Ok((i, Event::Registered, name, t)) if i == id => return (name, t),
            Ok(_) => {}
            Err(_) => panic!("profile {id} not registered"),
        }
    }
}

#[test]
fn a_registration_callback_runs_in_the_application_and_one_stuck_there_stops_no_registration() {
    let k = Kamailio::start("MD5");
    let tmp = TempDir::new("inline");
    let store = tmp.path().join("p.db");
    let (m, _mrx) = registry(&store, true);
    let alice = provision(&m, &k.registrar(), "alice", "alicepw", 300);
    let bob = provision(&m, &k.registrar(), "bob", "bobpw", 300);
    let (entered_tx, entered) = channel();
    let (gate, gate_rx) = channel();
    let (tx, rx) = channel();
    let held = Where {
        tx: Mutex::new(tx),
        hold: Some((alice, Mutex::new(entered_tx), Mutex::new(gate_rx))),
    };
    let u = Registry::open(Some(&store), false, Some(Box::new(held))).unwrap();
    let (tx, other_rx) = channel();
    let other = Where {
        tx: Mutex::new(tx),
        hold: None,
    };
    let v = Registry::open(Some(&store), false, Some(Box::new(other))).unwrap();
    let ha = u.profile(alice).unwrap();
    u.enable(&ha).unwrap();
    // Called in this process, on a delivery thread of the library: the
    // server (another process) runs no application code.
    let (name, stuck) = registered_on(&rx, alice);
    assert_eq!(name, "sipprofile-observer");
    entered.recv_timeout(WAIT).expect("held in the callback");
    // While that callback does not return, SIP goes on in the server, and
    // another registry's callbacks on another thread: bob registers, and
    // the other registry hears it.
    let hb = v.profile(bob).unwrap();
    v.enable(&hb).unwrap();
    let (_, bob_thread) = registered_on(&other_rx, bob);
    assert_ne!(bob_thread, stuck);
    assert!(k.bindings().contains(&support::contact_user(&hb)));
    gate.send(()).unwrap();
    drop((ha, hb));
    u.close();
    v.close();
    m.close();
}

/// Frees its own registry, the last of its store, in its first REGISTERED
/// callback; then says so.
struct LastFree {
    registry: Mutex<Option<std::sync::Arc<Registry>>>,
    done: Mutex<Sender<String>>,
}

impl Observer for LastFree {
    fn event(&self, _: u32, event: Event) {
        if event == Event::Registered
            && let Some(r) = self.registry.lock().unwrap().take()
        {
            r.close();
            let name = std::thread::current().name().unwrap_or_default().to_owned();
            let _ = self.done.lock().unwrap().send(name);
        }
    }
    fn error(&self, _: u32, _: i32) {}
}

#[test]
fn the_last_registry_freed_in_a_registration_callback_releases_what_it_enabled() {
    let k = Kamailio::start("MD5");
    let tmp = TempDir::new("last-free");
    let store = tmp.path().join("p.db");
    let (m, _mrx) = registry(&store, true);
    let alice = provision(&m, &k.registrar(), "alice", "alicepw", 300);
    let (done, freed) = channel();
    let observer = std::sync::Arc::new(LastFree {
        registry: Mutex::new(None),
        done: Mutex::new(done),
    });
    struct Shared(std::sync::Arc<LastFree>);
    impl Observer for Shared {
        fn event(&self, id: u32, event: Event) {
            self.0.event(id, event)
        }
        fn error(&self, _: u32, _: i32) {}
    }
    let u = Registry::open(
        Some(&store),
        false,
        Some(Box::new(Shared(observer.clone()))),
    )
    .unwrap();
    *observer.registry.lock().unwrap() = Some(u.clone());
    m.close(); // u is now the store's only registry
    let h = u.profile(alice).unwrap();
    let user = support::contact_user(&h);
    drop(u);
    let owner = observer.registry.lock().unwrap().clone().unwrap();
    owner.enable(&h).unwrap();
    drop(owner);
    // Freed on the delivery thread inside its own callback: the registry is
    // released when the callback returns, its enable with it, and the
    // server un-REGISTERs alice.
    assert_eq!(freed.recv_timeout(WAIT).unwrap(), "sipprofile-observer");
    assert!(
        binding_gone(&k, &user, WAIT),
        "binding left after the last registry was freed"
    );
    drop(h);
    // The store opens again, with a new server that registers.
    let (u, rx) = registry(&store, false);
    let h = u.profile(alice).unwrap();
    u.enable(&h).unwrap();
    assert!(wait_for(&rx, Seen::Event(alice, Event::Registered), WAIT));
    drop(h);
    u.close();
}
