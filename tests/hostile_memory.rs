//! Hostile network input does not grow memory: 20,000 datagrams of garbage,
//! near-maximum-size junk and wrongly matched responses sent at the engine's
//! socket leave resident memory bounded and the registration working.
//! (Its own test binary: it reads the process's RSS.)

mod support;

use sipprofile::client::Event;
use std::net::UdpSocket;
use std::time::Duration;
use support::{Kamailio, Seen, TempDir, provision, registry, wait_for};

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap()
}

#[test]
fn garbage_floods_leave_memory_bounded() {
    let k = Kamailio::start("MD5");
    let tmp = TempDir::new("flood");
    let store = tmp.path().join("p.db");
    let (m, _mrx) = registry(&store, true);
    let id = provision(&m, &k.registrar(), "alice", "alicepw", 300);
    let (u, rx) = registry(&store, false);
    let h = u.profile(id).unwrap();
    u.enable(&h).unwrap();
    assert!(wait_for(
        &rx,
        Seen::Event(id, Event::Registered),
        Duration::from_secs(10)
    ));
    // The engine's port, from the Contact it registered.
    let contact = h.info().registered_contact;
    let port: u16 = contact
        .split('@')
        .nth(1)
        .and_then(|s| s.split([':', '>', ';']).nth(1))
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {contact}"));
    let target = ("127.0.0.1", port);
    let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let unmatched = |i: usize| {
        format!(
            "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK{i}\r\nFrom: <sip:a@b>;tag=1\r\n\
             To: <sip:a@b>;tag=2\r\nCall-ID: flood-{i}\r\nCSeq: {i} REGISTER\r\nContent-Length: 0\r\n\r\n"
        )
    };
    let junk = vec![b'x'; 60_000];
    let flood = |n: usize| {
        for i in 0..n {
            let _ = match i % 4 {
                0 => tx.send_to(unmatched(i).as_bytes(), target),
                1 => tx.send_to(&junk, target),
                2 => tx.send_to(&[0xff, 0x00, 0x13, (i % 251) as u8], target),
                _ => tx.send_to(b"SIP/2.0 200 OK\r\nVia: x\r\n\r\n", target),
            };
            if i % 500 == 0 {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    };
    flood(2_000); // warm up allocator pools
    std::thread::sleep(Duration::from_millis(300));
    let before = rss_kib();
    flood(20_000);
    std::thread::sleep(Duration::from_millis(500));
    let after = rss_kib();
    assert!(
        after < before + 8 * 1024,
        "RSS grew from {before} KiB to {after} KiB"
    );
    // Still registered, and de-registers normally.
    assert_eq!(h.status(), sipprofile::profile::Status::Registered);
    u.disable(&h).unwrap();
    assert!(wait_for(
        &rx,
        Seen::Event(id, Event::Deregistered),
        Duration::from_secs(10)
    ));
    drop(h);
    u.close();
    m.close();
}
