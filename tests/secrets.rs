//! Secrets stay secret: with trace logging on for a whole register, refresh
//! and de-register cycle against Kamailio, neither the password nor any
//! digest response value reaches the log; getters never give a password.
//! (Its own test binary: the log sink is process-wide.)

mod support;

use sipprofile::client::Event;
use sipprofile::profile::keys;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::{Kamailio, Seen, TempDir, provision, registry_in_process as registry, wait_for};

#[test]
fn trace_log_never_shows_password_or_digest_response() {
    let log = Arc::new(Mutex::new(String::new()));
    let sink = log.clone();
    sipprofile::log::set_sink(
        Some(Box::new(move |_level, msg| {
            let mut l = sink.lock().unwrap();
            l.push_str(msg);
            l.push('\n');
        })),
        sipprofile::log::TRACE,
    );
    let k = Kamailio::start_with("SHA-256", 2, 0);
    let tmp = TempDir::new("secrets");
    let store = tmp.path().join("p.db");
    let (m, _mrx) = registry(&store, true);
    let password = "s3cr3t-Pa55word";
    // bob's real password is bobpw; use it, then check a distinctive one too.
    let id = provision(&m, &k.registrar(), "bob", "bobpw", 4);
    let (u, rx) = registry(&store, false);
    let h = u.profile(id).unwrap();
    u.enable(&h).unwrap();
    assert!(wait_for(
        &rx,
        Seen::Event(id, Event::Registered),
        Duration::from_secs(10)
    ));
    std::thread::sleep(Duration::from_secs(3)); // one refresh (at about 2 s)
    u.disable(&h).unwrap();
    assert!(wait_for(
        &rx,
        Seen::Event(id, Event::Deregistered),
        Duration::from_secs(10)
    ));

    // A distinctive password that fails: its attempt is logged too.
    let bad = provision(&m, &k.registrar(), "alice", password, 60);
    let hb = u.profile(bad).unwrap();
    u.enable(&hb).unwrap();
    assert!(wait_for(
        &rx,
        Seen::Error(bad, 401),
        Duration::from_secs(10)
    ));

    // Getters: write-only.
    assert_eq!(
        h.get_server_str(keys::SERVER_REGISTRAR, keys::DIGEST_PASSWORD),
        Err(sipprofile::Error::PermissionDenied)
    );
    assert_eq!(
        h.get_str(keys::DIGEST_PASSWORD),
        Err(sipprofile::Error::NotFound)
    );
    assert!(!h.holds_password(), "a client copy holds a password");
    drop((h, hb));
    u.close();
    m.close();
    sipprofile::log::set_sink(None, 0);

    let text = log.lock().unwrap().clone();
    let authorizations = text
        .lines()
        .filter(|l| l.starts_with("Authorization: Digest"))
        .count();
    assert!(
        authorizations >= 3,
        "expected REGISTERs with credentials in the trace:\n{text}"
    );
    assert!(
        !text.contains(password) && !text.contains("bobpw"),
        "password in the log"
    );
    for line in text.lines().filter(|l| l.contains("response=")) {
        assert!(line.contains("response=\"***\""), "unmasked: {line}");
    }
}
