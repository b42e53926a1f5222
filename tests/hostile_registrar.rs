//! Hostile registrars (issue 15): a Retry-After that overflows a time, a
//! challenge that tries to inject header lines, digest downgrades. A small
//! UDP responder plays the registrar no real one would be; Kamailio is the
//! well-behaved one next to it and the SHA-256 peer.

mod support;

use sipprofile::client::Event;
use sipprofile::client::{ProfileHandle, Registry};
use sipprofile::profile::{Status, keys};
use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};
use support::{Kamailio, Seen, TempDir, provision, registry, wait_for};

const WAIT: Duration = Duration::from_secs(15);

fn fast_timers() {
    static ONCE: Once = Once::new();
    // SAFETY: set once, before any engine thread of this test binary starts
    // reading the environment (each test calls this first).
    ONCE.call_once(|| unsafe { std::env::set_var("SIPPROFILE_SIP_T1_MS", "50") });
}

/// What the fake registrar answers to the `n`th request it got (from 0).
type Script = dyn Fn(&str, usize) -> Option<String> + Send + Sync;

/// A UDP registrar on 127.0.0.1 answering by a script, recording every
/// request; stopped on drop (its loop is bounded to 60 s anyway).
struct FakeRegistrar {
    port: u16,
    requests: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeRegistrar {
    fn start(script: Box<Script>) -> FakeRegistrar {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let port = sock.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (reqs, halt) = (requests.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let end = Instant::now() + Duration::from_secs(60);
            let mut buf = vec![0u8; 65_536];
            while !halt.load(Ordering::Relaxed) && Instant::now() < end {
                let Ok((n, from)) = sock.recv_from(&mut buf) else {
                    continue;
                };
                let req = String::from_utf8_lossy(&buf[..n]).into_owned();
                let i = {
                    let mut r = reqs.lock().unwrap();
                    r.push(req.clone());
                    r.len() - 1
                };
                if let Some(resp) = script(&req, i) {
                    let _ = sock.send_to(resp.as_bytes(), from);
                }
            }
        });
        FakeRegistrar {
            port,
            requests,
            stop,
            thread: Some(thread),
        }
    }

    fn registrar(&self) -> String {
        format!("sip:127.0.0.1:{}", self.port)
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }

    /// Waits (bounded) until at least `n` requests arrived.
    fn wait_requests(&self, n: usize, within: Duration) -> bool {
        let end = Instant::now() + within;
        while Instant::now() < end {
            if self.requests.lock().unwrap().len() >= n {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }
}

impl Drop for FakeRegistrar {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A response to `req` with `status` and extra header lines (raw: a test
/// may put anything in them).
fn respond(req: &str, status: &str, extra: &str) -> String {
    let pick = |name: &str| {
        req.split("\r\n")
            .find(|l| l.starts_with(name))
            .unwrap_or("")
            .to_owned()
    };
    format!(
        "SIP/2.0 {status}\r\n{}\r\n{}\r\n{};tag=fake\r\n{}\r\n{}\r\n{extra}Content-Length: 0\r\n\r\n",
        pick("Via:"),
        pick("From:"),
        pick("To:"),
        pick("Call-ID:"),
        pick("CSeq:")
    )
}

/// 200 OK granting the Contact of `req` for 300 s (or ending an un-REGISTER).
fn ok(req: &str) -> String {
    let contact = req
        .split("\r\n")
        .find_map(|l| l.strip_prefix("Contact: "))
        .unwrap_or("");
    let expires = if req.contains("Expires: 0\r\n") {
        0
    } else {
        300
    };
    let contact_uri = contact.split(';').next().unwrap_or(contact);
    respond(
        req,
        "200 OK",
        &format!("Contact: {contact_uri};expires={expires}\r\n"),
    )
}

/// A store, a managed registry to provision with, a user registry.
struct Setup {
    tmp: TempDir,
    m: Arc<Registry>,
    u: Arc<Registry>,
    rx: std::sync::mpsc::Receiver<Seen>,
}

impl Setup {
    fn new() -> Setup {
        fast_timers();
        let tmp = TempDir::new("hostile");
        let store = tmp.path().join("p.db");
        let (m, _mrx) = registry(&store, true);
        let (u, rx) = registry(&store, false);
        Setup { tmp, m, u, rx }
    }

    /// A profile registering `user` at `registrar`, with
    /// SIP_KEY_DIGEST_MIN_ALGORITHM set to `min` if given.
    fn profile(&self, registrar: &str, user: &str, min: Option<&str>) -> (u32, ProfileHandle) {
        let id = provision(&self.m, registrar, user, &format!("{user}pw"), 300);
        if let Some(min) = min {
            let mh = self.m.profile(id).unwrap();
            mh.set_str(keys::DIGEST_MIN_ALGORITHM, min).unwrap();
            self.m.save(&mh).unwrap();
        }
        (id, self.u.profile(id).unwrap())
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        self.u.close();
        self.m.close();
    }
}

/// Issue 15 item 1: `Retry-After: 18446744073709551615` overflowed the
/// engine's deadline, the engine thread died, and every profile of the
/// process stopped. Now the wait is cut to a day: the profile waits to
/// retry, and another profile of the same engine registers with Kamailio.
#[test]
fn a_retry_after_that_overflows_harms_no_other_profile() {
    let k = Kamailio::start("MD5");
    let fake = FakeRegistrar::start(Box::new(|req, _| {
        Some(respond(
            req,
            "503 Service Unavailable",
            "Retry-After: 18446744073709551615\r\n",
        ))
    }));
    let s = Setup::new();
    let (hostile, h1) = s.profile(&fake.registrar(), "mallory", None);
    let (good, h2) = s.profile(&k.registrar(), "alice", None);
    s.u.enable(&h1).unwrap();
    assert!(
        fake.wait_requests(1, WAIT),
        "no REGISTER at the fake registrar"
    );
    std::thread::sleep(Duration::from_millis(300)); // the 503 is handled
    s.u.enable(&h2).unwrap();
    assert!(
        wait_for(&s.rx, Seen::Event(good, Event::Registered), WAIT),
        "the other profile did not register: the engine stopped"
    );
    // The hostile one waits to retry: neither failed nor registered, and
    // asked to retry now, it does at once (the engine still serves it).
    assert_eq!(h1.status(), Status::RegistrationInProgress);
    assert_eq!(s.u.last_registration_error(&h1).unwrap(), 0);
    let before = fake.requests().len();
    s.u.refresh_enable(&h1).unwrap();
    assert!(fake.wait_requests(before + 1, WAIT), "no retry when asked");
    assert!(fake.requests().iter().all(|r| r.starts_with("REGISTER ")));
    s.u.disable(&h2).unwrap();
    assert!(wait_for(
        &s.rx,
        Seen::Event(good, Event::Deregistered),
        WAIT
    ));
    let _ = hostile;
}

/// Issue 15 item 2: a challenge carrying line breaks or other control
/// characters in realm, nonce or opaque. A lone CR or LF makes the
/// response malformed (dropped); any other control character fails the
/// attempt with SIP_ERR_SIP_MALFORMED_MESSAGE. No REGISTER ever carries
/// the injected line, nor an Authorization built from such a challenge.
#[test]
fn a_challenge_cannot_inject_header_lines() {
    let challenges = [
        // A lone LF inside the realm: the whole response is malformed.
        "WWW-Authenticate: Digest realm=\"x\nX-Injected: yes\", nonce=\"n\", qop=\"auth\"\r\n",
        // An escaped lone CR in the nonce.
        "WWW-Authenticate: Digest realm=\"x\", nonce=\"n\\\rX-Injected: yes\", qop=\"auth\"\r\n",
        // A vertical tab (escaped) and a NUL: parse, then refused.
        "WWW-Authenticate: Digest realm=\"x\", nonce=\"n\\\u{b}X-Injected: yes\", qop=\"auth\"\r\n",
        "WWW-Authenticate: Digest realm=\"x\", nonce=\"n\", opaque=\"o\u{0}X-Injected: yes\", qop=\"auth\"\r\n",
    ];
    let s = Setup::new();
    let mut fakes = Vec::new();
    for (i, ch) in challenges.iter().enumerate() {
        let ch = ch.to_string();
        let fake = FakeRegistrar::start(Box::new(move |req, _| {
            Some(if req.contains("Authorization:") {
                ok(req)
            } else {
                respond(req, "401 Unauthorized", &ch)
            })
        }));
        let (id, h) = s.profile(&fake.registrar(), &format!("u{i}"), None);
        s.u.enable(&h).unwrap();
        fakes.push((id, h, fake));
    }
    // T1 = 50 ms: retransmissions of the dropped ones arrive, and the
    // refused ones end with an error.
    let errors: Vec<Vec<i32>> = {
        let end = Instant::now() + Duration::from_secs(5);
        let mut per: Vec<Vec<i32>> = vec![Vec::new(); fakes.len()];
        while let Ok(seen) =
            s.rx.recv_timeout(end.saturating_duration_since(Instant::now()))
        {
            match seen {
                Seen::Error(id, e) => {
                    if let Some(i) = fakes.iter().position(|f| f.0 == id) {
                        per[i].push(e);
                    }
                }
                Seen::Event(id, Event::Registered) => panic!("profile {id} registered"),
                _ => {}
            }
        }
        per
    };
    for (i, (_, h, fake)) in fakes.iter().enumerate() {
        let reqs = fake.requests();
        assert!(!reqs.is_empty(), "challenge {i}: no REGISTER");
        for r in &reqs {
            assert!(!r.contains("X-Injected"), "challenge {i}: injected: {r}");
            assert!(
                !r.contains("Authorization:"),
                "challenge {i}: answered: {r}"
            );
            assert_eq!(r.matches("Content-Length:").count(), 1);
        }
        if i < 2 {
            // Dropped as malformed: retransmitted, then left to time out.
            assert!(reqs.len() >= 2, "challenge {i}: {} requests", reqs.len());
            assert!(errors[i].is_empty(), "challenge {i}: {:?}", errors[i]);
        } else {
            assert_eq!(errors[i], vec![-17700], "challenge {i}");
            assert_eq!(reqs.len(), 1, "challenge {i}: sent again");
            assert_eq!(h.status(), Status::Unregistered);
        }
    }
}

/// Issue 15 item 3 with Kamailio: SIP_KEY_DIGEST_MIN_ALGORITHM = SHA-256
/// registers with a SHA-256 registrar, and fails with
/// SIP_ERR_PERMISSION_DENIED, unanswered, against an MD5 one.
#[test]
fn a_minimum_of_sha256_against_kamailio() {
    let sha = Kamailio::start("SHA-256");
    let md5 = Kamailio::start("MD5");
    let s = Setup::new();
    let (ok_id, ok_h) = s.profile(&sha.registrar(), "alice", Some("SHA-256"));
    let (refused_id, refused_h) = s.profile(&md5.registrar(), "bob", Some("SHA-256"));
    s.u.enable(&ok_h).unwrap();
    assert!(wait_for(&s.rx, Seen::Event(ok_id, Event::Registered), WAIT));
    assert!(sha.bindings().contains("alice"));
    s.u.enable(&refused_h).unwrap();
    assert!(wait_for(&s.rx, Seen::Error(refused_id, -46), WAIT));
    assert_eq!(refused_h.status(), Status::Unregistered);
    assert!(!md5.bindings().contains("bob"));
    // Set back to MD5 explicitly, the same profile registers there.
    let mh = s.m.profile(refused_id).unwrap();
    mh.set_str(keys::DIGEST_MIN_ALGORITHM, "MD5").unwrap();
    s.m.save(&mh).unwrap();
    s.u.disable(&refused_h).unwrap();
    s.u.enable(&refused_h).unwrap();
    assert!(wait_for(
        &s.rx,
        Seen::Event(refused_id, Event::Registered),
        WAIT
    ));
    s.u.disable(&ok_h).unwrap();
    s.u.disable(&refused_h).unwrap();
}

/// Issue 15 item 3: after SHA-256 succeeded at a registrar, the same
/// registrar offering only MD5 (a downgrade) is refused, with the key
/// unset; the store keeps the key's value across registries.
#[test]
fn no_downgrade_to_md5_after_sha256_succeeded() {
    let fake = FakeRegistrar::start(Box::new(|req, _| {
        let answered_sha = req.contains("algorithm=SHA-256");
        let first_binding = req.contains("CSeq: 1 ") || req.contains("CSeq: 2 ");
        Some(if req.contains("Expires: 0\r\n") || answered_sha {
            ok(req)
        } else if first_binding {
            respond(
                req,
                "401 Unauthorized",
                "WWW-Authenticate: Digest realm=\"r\", nonce=\"s1\", qop=\"auth\", algorithm=SHA-256\r\n",
            )
        } else {
            respond(
                req,
                "401 Unauthorized",
                "WWW-Authenticate: Digest realm=\"r\", nonce=\"m1\", qop=\"auth\"\r\n",
            )
        })
    }));
    let s = Setup::new();
    let (id, h) = s.profile(&fake.registrar(), "carol", None);
    s.u.enable(&h).unwrap();
    assert!(wait_for(&s.rx, Seen::Event(id, Event::Registered), WAIT));
    s.u.disable(&h).unwrap();
    assert!(wait_for(&s.rx, Seen::Event(id, Event::Deregistered), WAIT));
    s.u.enable(&h).unwrap();
    assert!(wait_for(&s.rx, Seen::Error(id, -46), WAIT));
    let reqs = fake.requests();
    let last = reqs.last().unwrap();
    assert!(!last.contains("Authorization:"), "answered MD5: {last}");
    assert_eq!(
        reqs.iter().filter(|r| r.contains("algorithm=MD5")).count(),
        0
    );
    // The key round-trips through the store.
    let mh = s.m.profile(id).unwrap();
    mh.set_str(keys::DIGEST_MIN_ALGORITHM, "sha-512-256")
        .unwrap();
    s.m.save(&mh).unwrap();
    let (fresh, _frx) = registry(&s.tmp.path().join("p.db"), false);
    let again = fresh.profile(id).unwrap();
    assert_eq!(
        again.get_str(keys::DIGEST_MIN_ALGORITHM).as_deref(),
        Ok("SHA-512-256")
    );
    drop(again);
    fresh.close();
    assert_eq!(
        mh.set_str(keys::DIGEST_MIN_ALGORITHM, "SHA-1"),
        Err(sipprofile::Error::Argument)
    );
}

/// Issue 15 item 7: a TCP registrar answering the REGISTER with 999
/// unrelated but valid 450-byte responses and then the 200, all in one
/// write (450 KB, far over the 64 KiB of one message): the stream is framed
/// message by message, the connection stays open, the profile registers,
/// and its un-REGISTER goes over the same connection.
#[test]
fn a_burst_of_responses_on_tcp_keeps_the_connection() {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let requests = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen = requests.clone();
    let server = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let mut pending = Vec::new();
        let mut buf = [0u8; 4096];
        let mut answered = 0;
        while answered < 2 {
            let Ok(n) = conn.read(&mut buf) else { return };
            if n == 0 {
                return;
            }
            pending.extend_from_slice(&buf[..n]);
            while let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
                let req = String::from_utf8_lossy(&pending[..end + 4]).into_owned();
                pending.drain(..end + 4);
                seen.lock().unwrap().push(req.clone());
                let mut burst = Vec::new();
                if answered == 0 {
                    for i in 0..999 {
                        let mut m = format!(
                            "SIP/2.0 200 OK\r\nVia: SIP/2.0/TCP 127.0.0.1:9;branch=z9hG4bKother{i:06}\r\n\
                             From: <sip:x@y>;tag=1\r\nTo: <sip:x@y>;tag=2\r\nCall-ID: other-{i:06}\r\n\
                             CSeq: 1 REGISTER\r\nContent-Length: 0\r\n"
                        );
                        let pad = 450 - m.len() - "X-Pad: \r\n\r\n".len();
                        m += &format!("X-Pad: {}\r\n\r\n", "p".repeat(pad));
                        assert_eq!(m.len(), 450);
                        burst.extend_from_slice(m.as_bytes());
                    }
                }
                burst.extend_from_slice(ok(&req).as_bytes());
                conn.write_all(&burst).unwrap();
                answered += 1;
            }
        }
        // Hold the connection until the client is done with it.
        let _ = conn.read(&mut buf);
    });
    let s = Setup::new();
    let (id, h) = s.profile(&format!("sip:127.0.0.1:{port};transport=tcp"), "dave", None);
    s.u.enable(&h).unwrap();
    assert!(
        wait_for(&s.rx, Seen::Event(id, Event::Registered), WAIT),
        "not registered after the burst"
    );
    s.u.disable(&h).unwrap();
    assert!(wait_for(&s.rx, Seen::Event(id, Event::Deregistered), WAIT));
    let reqs = requests.lock().unwrap().clone();
    assert_eq!(reqs.len(), 2, "one connection, two requests: {reqs:?}");
    assert!(reqs[1].contains("Expires: 0\r\n"));
    drop(s);
    let _ = server.join();
}
