//! Keep-alives and RFC 5626 outbound against Kamailio (registrar with its
//! outbound and stun modules): the REGISTER's reg-id and +sip.instance in
//! Kamailio's bindings, CRLF keep-alives answered on TCP, STUN keep-alives
//! answered on UDP, and a flow that stops answering replaced at once. The
//! silent flow is made by a small TCP relay that stops forwarding on its
//! open connections while taking new ones, as a NAT that forgot a mapping
//! does: no real peer can be told to do that.

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

/// T1 = 50 ms: a keep-alive's answer is due within 20·T1 = 1 s.
fn fast_timers() {
    static ONCE: Once = Once::new();
    // SAFETY: set once, before any engine thread of this test binary reads
    // the environment (each test calls this first).
    ONCE.call_once(|| unsafe { std::env::set_var("SIPPROFILE_SIP_T1_MS", "50") });
}

struct Setup {
    _tmp: TempDir,
    m: Arc<sipprofile::client::Registry>,
    u: Arc<sipprofile::client::Registry>,
    h: sipprofile::client::ProfileHandle,
    rx: std::sync::mpsc::Receiver<Seen>,
    id: u32,
}

/// A profile with outbound on and a 1 s keep-alive, enabled.
fn enable_outbound(registrar: &str) -> Setup {
    fast_timers();
    let tmp = TempDir::new("outbound");
    let store = tmp.path().join("p.db");
    let (m, _mrx) = registry(&store, true);
    let id = provision(&m, registrar, "alice", "alicepw", 300);
    {
        let h = m.profile(id).unwrap();
        h.set_bool(keys::OUTBOUND, true).unwrap();
        h.set_u32(keys::KEEPALIVE_SECONDS, 1).unwrap();
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
    let s = enable_outbound(&format!("{};transport=tcp", k.registrar()));
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
    let s = enable_outbound(&k.registrar());
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
        "UDP flow found dead by STUN keep-alive (1 s period, 1 s answer): {} ms",
        stopped.elapsed().as_millis()
    );
    assert!(stopped.elapsed() < Duration::from_secs(4));
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
    let s = enable_outbound(&format!("sip:127.0.0.1:{};transport=tcp", relay.port));
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
        "dead flow (1 s keep-alive, pong due in 1 s): noticed after {} ms, registered again on a new flow after {} ms",
        noticed.as_millis(),
        again.as_millis()
    );
    assert!(again < Duration::from_secs(5), "{again:?}");
    assert_eq!(relay.accepted.load(Ordering::SeqCst), 2);
    let bindings = k.bindings();
    assert!(bindings.contains(&user), "{bindings}");
    s.close();
}
