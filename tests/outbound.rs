//! Keep-alives and RFC 5626 outbound against Kamailio (registrar with its
//! outbound and stun modules): the REGISTER's reg-id and +sip.instance in
//! Kamailio's bindings, CRLF keep-alives answered on TCP, STUN keep-alives
//! answered on UDP, and a flow that stops answering replaced at once. The
//! silent flow is made by a small TCP relay that stops forwarding on its
//! open connections while taking new ones, as a NAT that forgot a mapping
//! does, or by stopping Kamailio (SIGSTOP): its kernel keeps the TCP
//! connection open and acknowledges the pings, but nothing answers them,
//! a dead peer as a keep-alive sees it.

mod support;

use sipprofile::client::Event;
use sipprofile::profile::keys;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};
use support::{Kamailio, Seen, TempDir, provision, registry, wait_for};

const WAIT: Duration = Duration::from_secs(15);

/// T1 = 50 ms (unless `SIPPROFILE_SIP_T1_MS` is set, to measure with the
/// default 500 ms): transactions time out after 64·T1 = 3.2 s. A
/// keep-alive's answer is due within four intervals of the flow's RTO, at
/// least 200 ms each (800 ms on loopback), whatever T1.
fn fast_timers() {
    static ONCE: Once = Once::new();
    // SAFETY: set once, before any engine thread of this test binary reads
    // the environment (each test calls this first).
    ONCE.call_once(|| {
        if std::env::var_os("SIPPROFILE_SIP_T1_MS").is_none() {
            unsafe { std::env::set_var("SIPPROFILE_SIP_T1_MS", "50") }
        }
    });
}

struct Setup {
    _tmp: TempDir,
    m: Arc<sipprofile::client::Registry>,
    u: Arc<sipprofile::client::Registry>,
    h: sipprofile::client::ProfileHandle,
    rx: std::sync::mpsc::Receiver<Seen>,
    id: u32,
}

/// A profile with outbound on and a keep-alive every `keepalive` seconds,
/// enabled.
fn enable_outbound(registrar: &str, keepalive: u32) -> Setup {
    fast_timers();
    let tmp = TempDir::new("outbound");
    let store = tmp.path().join("p.db");
    let (m, _mrx) = registry(&store, true);
    let id = provision(&m, registrar, "alice", "alicepw", 300);
    {
        let h = m.profile(id).unwrap();
        h.set_bool(keys::OUTBOUND, true).unwrap();
        h.set_u32(keys::KEEPALIVE_SECONDS, keepalive).unwrap();
        m.save(&h).unwrap();
    }
    let (u, rx) = registry(&store, false);
    let h = u.profile(id).unwrap();
    u.enable(&h).unwrap();
    assert!(
        wait_for(&rx, Seen::Event(id, Event::Registered), WAIT),
        "not registered at {registrar}"
    );
    Setup {
        _tmp: tmp,
        m,
        u,
        h,
        rx,
        id,
    }
}

impl Setup {
    fn close(self) {
        drop(self.h);
        self.u.close();
        self.m.close();
    }

    /// Nothing but keep-alives for `d`: no loss reported.
    fn stays_registered(&self, d: Duration) {
        let deadline = Instant::now() + d;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.rx.recv_timeout(left) {
                Ok(Seen::Event(id, Event::Deregistered)) if id == self.id => {
                    panic!("the flow was found dead while its peer answered")
                }
                Ok(Seen::Error(id, e)) if id == self.id => panic!("error {e}"),
                _ => {}
            }
        }
    }
}

fn kamailio_outbound() -> Kamailio {
    Kamailio::start_env("MD5", 60, 0, &[("KAMAILIO_OUTBOUND", "20")])
}

#[test]
fn outbound_over_tcp_registers_a_flow_kept_alive_by_crlf() {
    let k = kamailio_outbound();
    let s = enable_outbound(&format!("{};transport=tcp", k.registrar()), 1);
    let bindings = k.bindings();
    let user = support::contact_user(&s.h);
    assert!(bindings.contains(&format!("{user}@")), "{bindings}");
    assert!(bindings.contains("Reg-Id: 1"), "{bindings}");
    assert!(bindings.contains("Instance: <urn:uuid:"), "{bindings}");
    let contact = s.h.info().registered_contact;
    assert!(contact.contains(";ob"), "{contact}");
    // Pings each second, pongs within 1 s: four rounds, no failure.
    s.stays_registered(Duration::from_secs(4));
    s.close();
}

#[test]
fn outbound_over_udp_is_kept_alive_by_stun_and_a_dead_registrar_is_noticed() {
    let k = kamailio_outbound();
    let s = enable_outbound(&k.registrar(), 1);
    assert!(k.bindings().contains("Reg-Id: 1"));
    // Kamailio's stun module answers each Binding request.
    s.stays_registered(Duration::from_secs(4));
    // Gone without a word: the next keep-alive gets no answer.
    let stopped = Instant::now();
    k.stop();
    assert!(
        wait_for(&s.rx, Seen::Event(s.id, Event::Deregistered), WAIT),
        "the dead flow went unnoticed"
    );
    println!(
        "UDP flow found dead by STUN keep-alive (1 s period, sent 3 times in 800 ms): {} ms",
        stopped.elapsed().as_millis()
    );
    s.close();
}

/// Forwards TCP connections from a loopback port to `to`; `forget()` makes
/// the connections open so far silent both ways (still open), as a NAT that
/// lost their mappings; later ones are forwarded.
struct Relay {
    port: u16,
    cut: Arc<AtomicUsize>,
    accepted: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl Relay {
    fn start(to: u16) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = Arc::new(AtomicUsize::new(0));
        let accepted = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (c, a, st) = (cut.clone(), accepted.clone(), stop.clone());
        std::thread::spawn(move || {
            while !st.load(Ordering::Relaxed) {
                let Ok((inbound, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                let n = a.fetch_add(1, Ordering::SeqCst) + 1;
                let Ok(outbound) = TcpStream::connect(("127.0.0.1", to)) else {
                    continue;
                };
                for (from, into) in [
                    (inbound.try_clone().unwrap(), outbound.try_clone().unwrap()),
                    (outbound, inbound),
                ] {
                    let (c, st) = (c.clone(), st.clone());
                    std::thread::spawn(move || pump(from, into, n, &c, &st));
                }
            }
        });
        Relay {
            port,
            cut,
            accepted,
            stop,
        }
    }

    fn forget(&self) {
        self.cut
            .store(self.accepted.load(Ordering::SeqCst), Ordering::SeqCst);
    }
}

/// Copies `from` to `into` while connection `n` is not cut (bounded: ends
/// with the relay).
fn pump(mut from: TcpStream, mut into: TcpStream, n: usize, cut: &AtomicUsize, stop: &AtomicBool) {
    from.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let mut buf = [0u8; 16384];
    while !stop.load(Ordering::Relaxed) {
        match from.read(&mut buf) {
            Ok(0) => return,
            Ok(len) => {
                if n > cut.load(Ordering::SeqCst) && into.write_all(&buf[..len]).is_err() {
                    return;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return,
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[test]
fn a_flow_that_stops_answering_is_replaced_at_once() {
    let k = kamailio_outbound();
    let relay = Relay::start(k.port);
    let s = enable_outbound(&format!("sip:127.0.0.1:{};transport=tcp", relay.port), 2);
    let user = support::contact_user(&s.h);
    s.stays_registered(Duration::from_secs(2));
    let lost = Instant::now();
    relay.forget();
    assert!(
        wait_for(&s.rx, Seen::Event(s.id, Event::Deregistered), WAIT),
        "the silent flow went unnoticed"
    );
    let noticed = lost.elapsed();
    assert!(
        wait_for(&s.rx, Seen::Event(s.id, Event::Registered), WAIT),
        "not registered again"
    );
    let again = lost.elapsed();
    println!(
        "dead flow, silent both ways (2 s keep-alive, pong due within 800 ms): noticed after {} ms, registered again on a new flow after {} ms",
        noticed.as_millis(),
        again.as_millis()
    );
    assert_eq!(relay.accepted.load(Ordering::SeqCst), 2);
    let bindings = k.bindings();
    assert!(bindings.contains(&user), "{bindings}");
    s.close();
}

/// Kamailio's processes (its main one and every descendant) stopped with
/// SIGSTOP until `resume` or drop: the kernel still holds its sockets
/// (TCP connections stay open and acknowledge data, UDP datagrams queue),
/// but nothing answers.
struct Stopped {
    pids: Vec<i32>,
    resumed: bool,
}

impl Stopped {
    fn stop(k: &Kamailio) -> Stopped {
        let main = std::fs::read_to_string(k.dir.path().join("kamailio.pid")).unwrap();
        let mut pids = vec![main.trim().to_owned()];
        let mut i = 0;
        // Bounded: Kamailio runs a few dozen processes.
        while i < pids.len() && pids.len() < 500 {
            let out = std::process::Command::new("pgrep")
                .args(["-P", &pids[i]])
                .output()
                .unwrap();
            pids.extend(
                String::from_utf8_lossy(&out.stdout)
                    .split_whitespace()
                    .map(str::to_owned),
            );
            i += 1;
        }
        let pids: Vec<i32> = pids.iter().map(|p| p.parse().unwrap()).collect();
        signal(libc::SIGSTOP, &pids);
        Stopped {
            pids,
            resumed: false,
        }
    }

    fn resume(&mut self) {
        if !self.resumed {
            self.resumed = true;
            signal(libc::SIGCONT, &self.pids);
        }
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        self.resume();
    }
}

/// Sends `sig` to each of `pids` (processes this test started).
fn signal(sig: libc::c_int, pids: &[i32]) {
    for &pid in pids {
        // SAFETY: kill(2) takes plain integers and touches no memory of ours.
        let r = unsafe { libc::kill(pid, sig) };
        assert_eq!(
            r,
            0,
            "kill({pid}, {sig}): {}",
            std::io::Error::last_os_error()
        );
    }
}

/// Observations of profile `id` until `last` (bounded by `within`).
fn observed_until(
    rx: &std::sync::mpsc::Receiver<Seen>,
    id: u32,
    last: Seen,
    within: Duration,
) -> Vec<Seen> {
    let deadline = Instant::now() + within;
    let mut seen = Vec::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(o @ (Seen::Event(i, _) | Seen::Error(i, _))) if i == id => {
                seen.push(o);
                if o == last {
                    break;
                }
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    seen
}

/// A registrar that stops answering on the flow (SIGSTOP) with a 2 s
/// keep-alive: the flow is found dead by its keep-alive while the peer is
/// still stopped (no close can come from it), the registration is lost
/// (DEREGISTERED), a new flow is opened at once but registers nothing
/// while the peer is silent, and as soon as the peer answers again
/// (SIGCONT, a second later) the registration is back (REGISTERED), with
/// no error on the way. Times are printed, not asserted.
fn a_stopped_registrar_is_found_dead_and_registered_again(transport: &str) {
    let k = kamailio_outbound();
    let registrar = match transport {
        "tcp" => format!("{};transport=tcp", k.registrar()),
        _ => k.registrar(),
    };
    let s = enable_outbound(&registrar, 2);
    // Pings answered first: the flow's round trip is measured.
    s.stays_registered(Duration::from_secs(3));
    let mut stopped = Stopped::stop(&k);
    let silent = Instant::now();
    let before = observed_until(&s.rx, s.id, Seen::Event(s.id, Event::Deregistered), WAIT);
    let found = silent.elapsed();
    assert_eq!(
        before,
        [Seen::Event(s.id, Event::Deregistered)],
        "the silent {transport} flow went unnoticed, or something else came first"
    );
    // A new flow is being tried; nothing registers while nothing answers.
    let during = observed_until(
        &s.rx,
        s.id,
        Seen::Event(s.id, Event::Registered),
        Duration::from_secs(1),
    );
    assert_eq!(during, [], "registered while the registrar was stopped?");
    stopped.resume();
    let resumed = Instant::now();
    let after = observed_until(&s.rx, s.id, Seen::Event(s.id, Event::Registered), WAIT);
    assert_eq!(
        after,
        [Seen::Event(s.id, Event::Registered)],
        "not registered again over {transport} once the registrar answered"
    );
    println!(
        "{transport}: registrar silent (SIGSTOP, 2 s keep-alive): flow found dead after {} ms; resumed 1 s later, registered again {:.1} ms after that",
        found.as_millis(),
        resumed.elapsed().as_secs_f64() * 1e3,
    );
    let bindings = k.bindings();
    assert!(
        bindings.contains(&support::contact_user(&s.h)),
        "{bindings}"
    );
    drop(stopped);
    s.close();
}

#[test]
fn a_stopped_registrar_on_a_tcp_flow_is_found_dead_by_its_pong_and_registered_again() {
    a_stopped_registrar_is_found_dead_and_registered_again("tcp");
}

#[test]
fn a_stopped_registrar_on_a_udp_flow_is_found_dead_by_stun_and_registered_again() {
    a_stopped_registrar_is_found_dead_and_registered_again("udp");
}
