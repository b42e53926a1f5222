//! RFC 3263 against real peers on loopback: dnsmasq serving NAPTR, SRV,
//! A and AAAA records for names under `.test`, Kamailio registrars as the
//! targets (one dead, or SIPp answering 503), failover to the next target,
//! and a DNS server that never answers delaying no other profile.
//!
//! The tests take turns: each points the library at its own dnsmasq through
//! `SIPPROFILE_DNS_SERVERS`, read when a server's resolver starts.

mod support;

use sipprofile::client::Event;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};
use support::{Dnsmasq, Kamailio, Seen, Sipp, TempDir, provision, registry, wait_for};

const WAIT: Duration = Duration::from_secs(20);

/// T1 = 50 ms: a silent target times out (Timer F, 64·T1) in 3.2 s.
const T1_MS: &str = "50";

fn dns_turn(dns: &str) -> MutexGuard<'static, ()> {
    static TURN: Mutex<()> = Mutex::new(());
    let guard = TURN.lock().unwrap_or_else(|e| e.into_inner());
    // SAFETY: the tests of this binary take turns (the guard), and each sets
    // these before it starts its registries, whose engines read them.
    unsafe {
        std::env::set_var("SIPPROFILE_SIP_T1_MS", T1_MS);
        std::env::set_var("SIPPROFILE_DNS_SERVERS", dns);
    }
    guard
}

fn srv(name: &str, target: &str, port: u16, priority: u16, weight: u16) -> String {
    format!("--srv-host={name},{target},{port},{priority},{weight}")
}

fn host(name: &str, ip: &str) -> String {
    format!("--host-record={name},{ip}")
}

/// Enables profile `user` registering at `registrar` in a fresh store;
/// returns how long it took to be registered, and the profile's contact user.
fn time_to_register(registrar: &str, user: &str, password: &str) -> (Duration, String) {
    let tmp = TempDir::new("dns");
    let store = tmp.path().join("p.db");
    let (m, _mrx) = registry(&store, true);
    let id = provision(&m, registrar, user, password, 300);
    let (u, rx) = registry(&store, false);
    let h = u.profile(id).unwrap();
    let start = Instant::now();
    u.enable(&h).unwrap();
    let registered = wait_for(&rx, Seen::Event(id, Event::Registered), WAIT);
    let took = start.elapsed();
    assert!(registered, "{user} not registered at {registrar}");
    let contact = support::contact_user(&h);
    u.disable(&h).unwrap();
    assert!(wait_for(&rx, Seen::Event(id, Event::Deregistered), WAIT));
    drop(h);
    u.close();
    m.close();
    (took, contact)
}

#[test]
fn srv_fails_over_from_a_dead_udp_target_and_avoids_it_afterwards() {
    let dead = Kamailio::start("MD5");
    dead.stop();
    let live = Kamailio::start("MD5");
    let dns = Dnsmasq::start(&[
        srv("_sip._udp.fail.test", "a.fail.test", dead.port, 10, 50),
        srv("_sip._udp.fail.test", "b.fail.test", live.port, 20, 50),
        host("a.fail.test", "127.0.0.1"),
        host("b.fail.test", "127.0.0.1"),
    ]);
    let _turn = dns_turn(&dns.server());
    // One server for both profiles: the second finds the dead target avoided.
    let tmp = TempDir::new("dns");
    let store = tmp.path().join("p.db");
    let (m, _mrx) = registry(&store, true);
    let alice = provision(&m, "sip:fail.test", "alice", "alicepw", 300);
    let bob = provision(&m, "sip:fail.test", "bob", "bobpw", 300);
    let (u, rx) = registry(&store, false);
    let ha = u.profile(alice).unwrap();
    let start = Instant::now();
    u.enable(&ha).unwrap();
    assert!(
        wait_for(&rx, Seen::Event(alice, Event::Registered), WAIT),
        "alice not registered; dnsmasq:\n{}",
        dns.log()
    );
    let failover = start.elapsed();
    assert!(live.bindings().contains(&support::contact_user(&ha)));
    println!(
        "failover to the second SRV target (UDP, first silent, T1 = {T1_MS} ms, Timer F = {} ms): {} ms",
        64 * T1_MS.parse::<u64>().unwrap(),
        failover.as_millis()
    );
    // Timer F ran out at the dead target first: not before it, not long after.
    assert!(failover >= Duration::from_millis(3200), "{failover:?}");
    assert!(failover < Duration::from_millis(8000), "{failover:?}");
    let hb = u.profile(bob).unwrap();
    let start = Instant::now();
    u.enable(&hb).unwrap();
    assert!(wait_for(&rx, Seen::Event(bob, Event::Registered), WAIT));
    let avoided = start.elapsed();
    println!(
        "next profile, dead target avoided: registered in {} ms",
        avoided.as_millis()
    );
    assert!(avoided < Duration::from_millis(3000), "{avoided:?}");
    assert!(live.bindings().contains(&support::contact_user(&hb)));
    drop((ha, hb));
    u.close();
    m.close();
}

#[test]
fn srv_fails_over_from_a_refused_tcp_target_at_once() {
    let dead = Kamailio::start("MD5");
    dead.stop();
    let live = Kamailio::start("MD5");
    let dns = Dnsmasq::start(&[
        srv("_sip._tcp.tcp.test", "a.tcp.test", dead.port, 10, 50),
        srv("_sip._tcp.tcp.test", "b.tcp.test", live.port, 20, 50),
        host("a.tcp.test", "127.0.0.1"),
        host("b.tcp.test", "127.0.0.1"),
    ]);
    let _turn = dns_turn(&dns.server());
    let (took, user) = time_to_register("sip:tcp.test;transport=tcp", "alice", "alicepw");
    println!(
        "failover to the second SRV target (TCP, first refusing): {} ms",
        took.as_millis()
    );
    assert!(took < Duration::from_millis(3000), "{took:?}");
    let _ = user;
}

#[test]
fn a_503_moves_the_attempt_to_the_next_target() {
    let mut busy = Sipp::start("unavailable_503.xml");
    let live = Kamailio::start("MD5");
    let dns = Dnsmasq::start(&[
        srv("_sip._udp.busy.test", "a.busy.test", busy.port, 10, 50),
        srv("_sip._udp.busy.test", "b.busy.test", live.port, 20, 50),
        host("a.busy.test", "127.0.0.1"),
        host("b.busy.test", "127.0.0.1"),
    ]);
    let _turn = dns_turn(&dns.server());
    let (took, _) = time_to_register("sip:busy.test", "alice", "alicepw");
    println!("failover after a 503: {} ms", took.as_millis());
    assert!(took < Duration::from_millis(3000), "{took:?}");
    assert!(
        busy.passed(Duration::from_secs(10)),
        "SIPp did not see its REGISTER"
    );
}

#[test]
fn naptr_chooses_the_transport_when_the_uri_does_not() {
    let k = Kamailio::start("MD5");
    let dns = Dnsmasq::start(&[
        // TCP ordered before UDP: the UDP SRV leads to a dead port.
        "--naptr-record=naptr.test,20,10,s,SIP+D2U,,_sip._udp.naptr.test".into(),
        "--naptr-record=naptr.test,10,10,s,SIP+D2T,,_sip._tcp.naptr.test".into(),
        srv("_sip._tcp.naptr.test", "k.naptr.test", k.port, 10, 10),
        srv("_sip._udp.naptr.test", "k.naptr.test", 9, 10, 10),
        host("k.naptr.test", "127.0.0.1"),
    ]);
    let _turn = dns_turn(&dns.server());
    let tmp = TempDir::new("dns");
    let store = tmp.path().join("p.db");
    let (m, _mrx) = registry(&store, true);
    let id = provision(&m, "sip:naptr.test", "alice", "alicepw", 300);
    let (u, rx) = registry(&store, false);
    let h = u.profile(id).unwrap();
    u.enable(&h).unwrap();
    assert!(
        wait_for(&rx, Seen::Event(id, Event::Registered), WAIT),
        "dnsmasq:\n{}",
        dns.log()
    );
    let bindings = k.bindings();
    assert!(bindings.contains("Socket: tcp:"), "{bindings}");
    let contact = h.info().registered_contact;
    assert!(contact.contains("transport=tcp"), "{contact}");
    let log = dns.log();
    assert!(log.contains("query[NAPTR] naptr.test"), "{log}");
    drop(h);
    u.close();
    m.close();
}

#[test]
fn aaaa_and_an_explicit_port_skip_srv() {
    let k = Kamailio::start_env("MD5", 60, 0, &[("KAMAILIO_IPV6", "1")]);
    let dns = Dnsmasq::start(&[
        // Followed, this SRV would lead nowhere.
        srv("_sip._udp.v6.test", "v6.test", 9, 10, 10),
        host("v6.test", "::1"),
    ]);
    let _turn = dns_turn(&dns.server());
    let (took, _) = time_to_register(&format!("sip:v6.test:{}", k.port), "alice", "alicepw");
    assert!(took < Duration::from_millis(3000), "{took:?}");
    let log = dns.log();
    assert!(!log.contains("query[SRV]"), "{log}");
    assert!(log.contains("query[AAAA] v6.test"), "{log}");
}

#[test]
fn a_dns_server_that_never_answers_delays_no_other_profile() {
    let k = Kamailio::start("MD5");
    // A "DNS server" that reads and never answers (nothing on its TCP port).
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let _turn = dns_turn(&silent.local_addr().unwrap().to_string());
    let tmp = TempDir::new("dns");
    let store = tmp.path().join("p.db");
    let (m, _mrx) = registry(&store, true);
    let slow = provision(&m, "sip:slow.test", "alice", "alicepw", 300);
    let quick = provision(&m, &k.registrar(), "bob", "bobpw", 300);
    let (u, rx) = registry(&store, false);
    let hs = u.profile(slow).unwrap();
    let hq = u.profile(quick).unwrap();
    let start = Instant::now();
    u.enable(&hs).unwrap();
    std::thread::sleep(Duration::from_millis(100)); // its lookup is under way
    let quick_start = start.elapsed();
    u.enable(&hq).unwrap();
    let mut seen = Vec::new();
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(s) => {
                seen.push((s, start.elapsed()));
                if s == Seen::Event(quick, Event::Registered) {
                    break;
                }
            }
            Err(_) => continue,
        }
    }
    let (_, quick_at) = seen
        .iter()
        .find(|(s, _)| *s == Seen::Event(quick, Event::Registered))
        .expect("the other profile registered");
    println!(
        "other profile registered {} ms after being enabled, while a lookup got no answer",
        (*quick_at - quick_start).as_millis()
    );
    assert!(*quick_at < Duration::from_millis(2000), "{seen:?}");
    // The slow one is still looking up: neither registered nor failed.
    assert!(
        !seen.iter().any(|(s, _)| matches!(
            s,
            Seen::Event(id, Event::Registered) | Seen::Error(id, _) if *id == slow
        )),
        "{seen:?}"
    );
    // The lookup gives up (the resolver's timeouts) and says so.
    assert!(
        wait_for(
            &rx,
            Seen::Error(slow, sipprofile::error::SIP_RESOLVING_FAILURE),
            Duration::from_secs(40)
        ),
        "no resolving failure"
    );
    println!(
        "unanswered lookup reported failed after {} ms",
        start.elapsed().as_millis()
    );
    drop((hs, hq));
    u.close();
    m.close();
}

#[test]
fn targets_are_looked_up_again_once_their_ttl_has_run_out() {
    let first = Kamailio::start("MD5");
    let second = Kamailio::start("MD5");
    let records = |k: &Kamailio| {
        vec![
            "--local-ttl=2".to_string(),
            srv("_sip._tcp.ttl.test", "k.ttl.test", k.port, 10, 10),
            host("k.ttl.test", "127.0.0.1"),
        ]
    };
    let dns = Dnsmasq::start(&records(&first));
    let _turn = dns_turn(&dns.server());
    let tmp = TempDir::new("dns");
    let store = tmp.path().join("p.db");
    let (m, _mrx) = registry(&store, true);
    let id = provision(&m, "sip:ttl.test;transport=tcp", "alice", "alicepw", 300);
    let (u, rx) = registry(&store, false);
    let h = u.profile(id).unwrap();
    u.enable(&h).unwrap();
    assert!(wait_for(&rx, Seen::Event(id, Event::Registered), WAIT));
    let user = support::contact_user(&h);
    assert!(first.bindings().contains(&user));
    // The provider moves: DNS now names the second registrar, and the first
    // goes away once the answer's 2 s are over. The flow's loss makes the
    // profile register again, at what DNS says now.
    let port = dns.port;
    drop(dns);
    let _dns = Dnsmasq::start_on(port, &records(&second));
    std::thread::sleep(Duration::from_millis(2500));
    first.stop();
    assert!(wait_for(&rx, Seen::Event(id, Event::Deregistered), WAIT));
    assert!(wait_for(&rx, Seen::Event(id, Event::Registered), WAIT));
    assert!(second.bindings().contains(&user));
    drop(h);
    u.close();
    m.close();
}
