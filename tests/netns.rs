//! Network changes for real, in network namespaces the test makes: the
//! test runs itself again under `unshare -n` (namespace X, where the library
//! runs) and starts a second namespace Y holding Kamailio, linked to X by
//! two veth pairs (10.77.0.0/24 and 10.77.1.0/24). Moving X's address on
//! the first link moves the registrations that go over it (UDP and a TCP
//! flow), and no other: by the library's own rtnetlink watch, and, with the
//! watch off, by `sip_network_changed()`.

mod support;

use sipprofile::client::Event;
use std::process::{Child, Command};
use std::time::{Duration, Instant};
use support::{Kamailio, Seen, TempDir, provision, registry, registry_in_process, wait_for};

const WAIT: Duration = Duration::from_secs(15);

/// Runs `test` of this binary in a network namespace of its own; true in
/// that child (go on), false in the parent (done: the child passed).
fn in_own_namespace(test: &str, env: &[(&str, &str)]) -> bool {
    if std::env::var_os("SIPPROFILE_IN_NETNS").is_some() {
        return true;
    }
    if !support::is_root() {
        // Namespaces, veth pairs and addresses need root (CI runs as root).
        println!("skipped: not root");
        return false;
    }
    let exe = std::env::current_exe().unwrap();
    let out = Command::new("unshare")
        .args(["-n", "--"])
        .arg(exe)
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env("SIPPROFILE_IN_NETNS", "1")
        .envs(env.iter().copied())
        .output()
        .expect("unshare (util-linux)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for line in text.lines().filter(|l| l.contains(" ms")) {
        println!("{line}");
    }
    assert!(out.status.success(), "in its namespace:\n{text}");
    assert!(text.contains("1 passed"), "{text}");
    false
}

fn run(args: &[&str]) {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Namespace Y (a `sleep` under `unshare -n`), linked to ours; killed on drop.
struct Peer {
    sleeper: Child,
}

impl Peer {
    fn start() -> Peer {
        run(&["ip", "link", "set", "lo", "up"]);
        // Deleting the first address of a link must keep the second.
        run(&["sysctl", "-qw", "net.ipv4.conf.all.promote_secondaries=1"]);
        run(&[
            "sysctl",
            "-qw",
            "net.ipv4.conf.default.promote_secondaries=1",
        ]);
        let sleeper = Command::new("unshare")
            .args(["-n", "--", "sleep", "120"])
            .spawn()
            .unwrap();
        let pid = sleeper.id().to_string();
        let ours = std::fs::read_link("/proc/self/ns/net").unwrap();
        for _ in 0..100 {
            if std::fs::read_link(format!("/proc/{pid}/ns/net")).is_ok_and(|n| n != ours) {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let y = |args: &[&str]| {
            let mut all = vec!["nsenter", "-t", &pid, "-n"];
            all.extend_from_slice(args);
            run(&all);
        };
        y(&["ip", "link", "set", "lo", "up"]);
        for (here, there, net) in [("v0", "v1", "10.77.0"), ("v2", "v3", "10.77.1")] {
            run(&[
                "ip", "link", "add", here, "type", "veth", "peer", "name", there, "netns", &pid,
            ]);
            run(&["ip", "addr", "add", &format!("{net}.1/24"), "dev", here]);
            run(&["ip", "link", "set", here, "up"]);
            y(&["ip", "addr", "add", &format!("{net}.2/24"), "dev", there]);
            y(&["ip", "link", "set", there, "up"]);
        }
        Peer { sleeper }
    }

    fn pid(&self) -> String {
        self.sleeper.id().to_string()
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.sleeper.kill();
        let _ = self.sleeper.wait();
    }
}

/// Three profiles registered at Kamailio in Y: alice over UDP and user1
/// over TCP by the first link, bob over UDP by the second; then X's address
/// on the first link moves from .1 to .5. `nudge` runs after the move.
/// `in_process`: the store's server (its SIP engine) in this process, where
/// `sip_network_changed()` reaches it.
fn move_and_check(in_process: bool, nudge: impl FnOnce(&std::sync::mpsc::Receiver<Seen>)) {
    unsafe { std::env::set_var("SIPPROFILE_SIP_T1_MS", "100") };
    let peer = Peer::start();
    let k = Kamailio::start_env(
        "MD5",
        60,
        1,
        &[
            ("KAMAILIO_ADDRESSES", "10.77.0.2 10.77.1.2"),
            ("KAMAILIO_NETNS_PID", &peer.pid()),
        ],
    );
    let tmp = TempDir::new("netns");
    let store = tmp.path().join("p.db");
    let (m, _mrx) = if in_process {
        registry_in_process(&store, true)
    } else {
        registry(&store, true)
    };
    let port = k.port;
    let alice = provision(
        &m,
        &format!("sip:10.77.0.2:{port}"),
        "alice",
        "alicepw",
        300,
    );
    let user1 = provision(
        &m,
        &format!("sip:10.77.0.2:{port};transport=tcp"),
        "user1",
        "pw1",
        300,
    );
    let bob = provision(&m, &format!("sip:10.77.1.2:{port}"), "bob", "bobpw", 300);
    let (u, rx) = if in_process {
        registry_in_process(&store, false)
    } else {
        registry(&store, false)
    };
    let handles: Vec<_> = [alice, user1, bob]
        .iter()
        .map(|id| {
            let h = u.profile(*id).unwrap();
            u.enable(&h).unwrap();
            assert!(wait_for(&rx, Seen::Event(*id, Event::Registered), WAIT));
            h
        })
        .collect();
    let contact = |i: usize| handles[i].info().registered_contact;
    assert!(contact(0).contains("@10.77.0.1:"), "{}", contact(0));
    assert!(contact(1).contains("@10.77.0.1:"), "{}", contact(1));
    assert!(contact(2).contains("@10.77.1.1:"), "{}", contact(2));
    run(&["ip", "addr", "add", "10.77.0.5/24", "dev", "v0"]);
    run(&["ip", "addr", "del", "10.77.0.1/24", "dev", "v0"]);
    let moved = Instant::now();
    nudge(&rx);
    let mut seen = Vec::new();
    let mut registered = Vec::new();
    while registered.len() < 2 && moved.elapsed() < WAIT {
        if let Ok(s) = rx.recv_timeout(Duration::from_millis(100)) {
            seen.push(s);
            if let Seen::Event(id, Event::Registered) = s {
                registered.push((id, moved.elapsed()));
            }
        }
    }
    for (id, after) in &registered {
        println!(
            "profile {id} registered again from the new address {} ms after the old one was removed",
            after.as_millis()
        );
    }
    let ids: Vec<u32> = registered.iter().map(|r| r.0).collect();
    assert!(ids.contains(&alice) && ids.contains(&user1), "{seen:?}");
    assert!(contact(0).contains("@10.77.0.5:"), "{}", contact(0));
    assert!(contact(1).contains("@10.77.0.5:"), "{}", contact(1));
    let bindings = k.bindings();
    assert!(bindings.contains("@10.77.0.5:"), "{bindings}");
    // The profile on the other link was not touched.
    std::thread::sleep(Duration::from_millis(500));
    while let Ok(s) = rx.try_recv() {
        seen.push(s);
    }
    assert!(
        !seen
            .iter()
            .any(|s| matches!(s, Seen::Event(id, _) | Seen::Error(id, _) if *id == bob)),
        "{seen:?}"
    );
    assert!(contact(2).contains("@10.77.1.1:"));
    drop(handles);
    u.close();
    m.close();
    drop(k);
}

#[test]
fn registrations_move_when_their_address_goes_away() {
    if !in_own_namespace("registrations_move_when_their_address_goes_away", &[]) {
        return;
    }
    move_and_check(false, |_| {});
}

#[test]
fn sip_network_changed_moves_them_when_the_library_does_not_watch() {
    if !in_own_namespace(
        "sip_network_changed_moves_them_when_the_library_does_not_watch",
        &[("SIPPROFILE_WATCH_NETWORK", "0")],
    ) {
        return;
    }
    // The store's server in a process of its own: the call reaches it
    // through the protocol.
    move_and_check(false, |rx| {
        // Not watching: nothing happens by itself...
        std::thread::sleep(Duration::from_secs(1));
        assert_eq!(rx.try_recv().ok(), None);
        // ...until the application says so.
        sipprofile::ffi::network::sip_network_changed();
    });
}
