//! A misbehaving registrar scripted with SIPp (tests/peers/sipp/*.xml):
//! Retry-After, credential loops, stale nonces, 403, silence, garbage.

mod support;

use sipprofile::client::Event;
use sipprofile::profile::{Status, keys};
use std::sync::Once;
use std::time::{Duration, Instant};
use support::{Seen, Sipp, TempDir, provision, registry, wait_for};

fn fast_timers() {
    static ONCE: Once = Once::new();
    // SAFETY: set once, before any engine thread of this test binary starts
    // reading the environment (each test calls this first).
    ONCE.call_once(|| unsafe { std::env::set_var("SIPPROFILE_SIP_T1_MS", "50") });
}

/// A store with one profile registering at `registrar`, a user registry
/// holding it enabled, and its observer channel.
struct Setup {
    _tmp: TempDir,
    m: std::sync::Arc<sipprofile::client::Registry>,
    u: std::sync::Arc<sipprofile::client::Registry>,
    h: sipprofile::client::ProfileHandle,
    rx: std::sync::mpsc::Receiver<Seen>,
    id: u32,
}

fn setup(registrar: &str, password: &str) -> Setup {
    setup_retrying_after(registrar, password, 1)
}

/// `setup`, with retries `retry_base` seconds apart at first.
fn setup_retrying_after(registrar: &str, password: &str, retry_base: u32) -> Setup {
    fast_timers();
    let tmp = TempDir::new("sipp");
    let store = tmp.path().join("p.db");
    let (m, _mrx) = registry(&store, true);
    let id = provision(&m, registrar, "alice", password, 300);
    let mh = m.profile(id).unwrap();
    mh.set_u32(keys::RETRY_BASE_SECONDS, retry_base).unwrap();
    m.save(&mh).unwrap();
    drop(mh);
    let (u, rx) = registry(&store, false);
    let h = u.profile(id).unwrap();
    u.enable(&h).unwrap();
    Setup {
        _tmp: tmp,
        m,
        u,
        h,
        rx,
        id,
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        self.u.close();
        self.m.close();
    }
}

const WAIT: Duration = Duration::from_secs(15);

#[test]
fn retry_after_503_is_honoured() {
    let mut sipp = Sipp::start("retry_after_503.xml");
    let started = Instant::now();
    let s = setup(&sipp.registrar(), "pw");
    assert!(wait_for(&s.rx, Seen::Event(s.id, Event::Registered), WAIT));
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "retried before Retry-After"
    );
    assert_eq!(s.h.info().granted_expires, 77);
    drop(s);
    assert!(sipp.passed(WAIT));
}

#[test]
fn refused_credentials_end_in_one_error_and_no_loop() {
    let mut sipp = Sipp::start("auth_loop.xml");
    let s = setup(&sipp.registrar(), "wrong");
    assert!(wait_for(&s.rx, Seen::Error(s.id, 401), WAIT));
    assert!(!s.u.is_enabled(&s.h));
    assert_eq!(s.u.last_registration_error(&s.h), Ok(401));
    // SIPp waits 3 s for a third REGISTER that must not come.
    sipp.wait_exit(WAIT);
    assert_eq!(sipp.registers_received(), 2);
    drop(s);
}

#[test]
fn stale_nonce_is_retried_once_with_the_new_nonce() {
    let mut sipp = Sipp::start("stale_nonce.xml");
    let s = setup(&sipp.registrar(), "pw");
    assert!(wait_for(&s.rx, Seen::Event(s.id, Event::Registered), WAIT));
    assert_eq!(s.h.info().granted_expires, 66);
    drop(s);
    assert!(sipp.passed(WAIT));
}

#[test]
fn forbidden_is_final() {
    let mut sipp = Sipp::start("forbidden_403.xml");
    let s = setup(&sipp.registrar(), "pw");
    assert!(wait_for(&s.rx, Seen::Error(s.id, 403), WAIT));
    assert_eq!(s.h.status(), Status::Unregistered);
    sipp.wait_exit(WAIT);
    assert_eq!(sipp.registers_received(), 1);
    drop(s);
}

#[test]
fn silence_times_out_then_retries() {
    let mut sipp = Sipp::start("silence.xml");
    let started = Instant::now();
    let s = setup(&sipp.registrar(), "pw");
    // Timer F = 64·T1 = 3.2 s, then a retry after 1–2 s (base 1 s).
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(s.h.status(), Status::RegistrationInProgress);
    assert!(wait_for(&s.rx, Seen::Event(s.id, Event::Registered), WAIT));
    assert!(started.elapsed() >= Duration::from_millis(3200));
    assert_eq!(s.h.info().granted_expires, 55);
    drop(s);
    assert!(sipp.passed(WAIT));
    // Timer E: sends at 0, T1, 3·T1, 7·T1, then every T2 = 8·T1 until F =
    // 64·T1: 11 copies of the first REGISTER; then the retry (answered at
    // once) with the next CSeq.
    let first = sipp.received_with("CSeq: 1 REGISTER");
    // (Timer E re-arms from when it fired, so a loaded machine may fit one fewer.)
    assert!(
        (10..=11).contains(&first),
        "{first} copies of the first REGISTER"
    );
    assert!(sipp.received_with("CSeq: 2 REGISTER") >= 1);
}

#[test]
fn garbage_and_unmatched_responses_are_ignored() {
    let mut sipp = Sipp::start("garbage.xml");
    let s = setup(&sipp.registrar(), "pw");
    assert!(wait_for(&s.rx, Seen::Event(s.id, Event::Registered), WAIT));
    // Only the well-formed, matching 200 counted.
    assert_eq!(s.h.info().granted_expires, 44);
    drop(s);
    assert!(sipp.passed(WAIT));
}

#[test]
fn nat_is_corrected_once() {
    let mut sipp = Sipp::start("nat_rport.xml");
    let s = setup(&sipp.registrar(), "pw");
    assert!(wait_for(&s.rx, Seen::Event(s.id, Event::Registered), WAIT));
    assert!(s.h.info().registered_contact.contains("@192.0.2.7:"));
    sipp.wait_exit(WAIT);
    // The first REGISTER and one corrected re-REGISTER; no loop.
    assert_eq!(sipp.registers_received(), 2);
    drop(s);
}

#[test]
fn proxy_challenge_is_answered() {
    let mut sipp = Sipp::start("proxy_auth_407.xml");
    let s = setup(&sipp.registrar(), "pw");
    assert!(wait_for(&s.rx, Seen::Event(s.id, Event::Registered), WAIT));
    assert_eq!(s.h.info().granted_expires, 33);
    drop(s);
    assert!(sipp.passed(WAIT));
}

#[test]
fn failed_refresh_reports_disconnected_and_recovers() {
    let mut sipp = Sipp::start("refresh_fails.xml");
    let s = setup(&sipp.registrar(), "pw");
    assert!(wait_for(&s.rx, Seen::Event(s.id, Event::Registered), WAIT));
    assert!(wait_for(
        &s.rx,
        Seen::Event(s.id, Event::Deregistered),
        WAIT
    ));
    {
        let c = s.h.copy();
        assert_eq!(c.info.status, Status::RegistrationInProgress);
        assert_eq!(c.last_error, sipprofile::Error::Disconnected.code());
        assert!(c.enabled);
    }
    assert!(wait_for(&s.rx, Seen::Event(s.id, Event::Registered), WAIT));
    assert_eq!(s.h.info().granted_expires, 300);
    assert_eq!(s.h.last_error(), 0);
    drop(s);
    assert!(sipp.passed(WAIT));
}

/// A refresh that times out (Timer F, 3.2 s here) is reported when it does,
/// not when the engine next has something to do (the retry, 15-30 s later).
#[test]
fn a_refresh_timing_out_is_reported_at_once() {
    let _sipp_alive = Sipp::start("refresh_silent.xml");
    let s = setup_retrying_after(&_sipp_alive.registrar(), "pw", 30);
    assert!(wait_for(&s.rx, Seen::Event(s.id, Event::Registered), WAIT));
    // The refresh goes after 0.9-1 s; Timer F fires 3.2 s later.
    assert!(wait_for(
        &s.rx,
        Seen::Event(s.id, Event::Deregistered),
        Duration::from_secs(12)
    ));
    assert_eq!(s.h.last_error(), sipprofile::Error::Disconnected.code());
}

#[test]
fn interval_too_brief_then_ok() {
    let mut sipp = Sipp::start("interval_423.xml");
    let s = setup(&sipp.registrar(), "pw");
    assert!(wait_for(&s.rx, Seen::Event(s.id, Event::Registered), WAIT));
    assert_eq!(s.h.info().granted_expires, 1800);
    drop(s);
    assert!(sipp.passed(WAIT));
}

/// The retry delays, read from SIPp's packet timestamps, follow
/// min(base·2ⁿ, max) × 50–99 % with base 1 s (ref §5.11).
#[test]
fn retry_schedule_matches_the_rule() {
    let mut sipp = Sipp::start("retry_schedule.xml");
    let s = setup(&sipp.registrar(), "pw");
    assert!(wait_for(
        &s.rx,
        Seen::Event(s.id, Event::Registered),
        Duration::from_secs(30)
    ));
    drop(s);
    assert!(sipp.passed(WAIT));
    // First arrival of each CSeq.
    let mut firsts: Vec<(u32, f64)> = Vec::new();
    for entry in std::fs::read_dir(sipp.dir.path()).unwrap().flatten() {
        if !entry
            .file_name()
            .to_string_lossy()
            .ends_with("_messages.log")
        {
            continue;
        }
        let text = std::fs::read_to_string(entry.path()).unwrap();
        for block in text
            .split("----------------------------------------------- ")
            .skip(1)
        {
            if !block.contains("message received") {
                continue;
            }
            let stamp = block.lines().next().unwrap_or("");
            let time = stamp.split_whitespace().nth(1).unwrap_or("0:0:0");
            let secs: f64 = time
                .split(':')
                .map(|p| p.parse::<f64>().unwrap_or(0.0))
                .fold(0.0, |acc, p| acc * 60.0 + p);
            let cseq = block
                .lines()
                .find_map(|l| l.strip_prefix("CSeq: "))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|n| n.parse::<u32>().ok());
            if let Some(c) = cseq
                && !firsts.iter().any(|(k, _)| *k == c)
            {
                firsts.push((c, secs));
            }
        }
    }
    firsts.sort_by_key(|(c, _)| *c);
    assert!(firsts.len() >= 4, "{firsts:?}");
    for n in 1..=3usize {
        let gap = firsts[n].1 - firsts[n - 1].1;
        let cap = f64::from(1u32 << n); // base 1 s · 2ⁿ, below max
        assert!(
            gap >= cap * 0.5 - 0.05 && gap <= cap * 0.99 + 0.3,
            "retry {n}: {gap:.3} s, rule [{:.2}, {:.2}]",
            cap * 0.5,
            cap * 0.99
        );
    }
}

/// Near-datagram-size junk (60 KB headers), duplicated and truncated
/// responses before the real one: none is taken, nothing breaks.
#[test]
fn oversized_duplicated_and_truncated_responses_are_ignored() {
    let tmp = TempDir::new("big");
    let big = "a".repeat(60_000);
    let response = |extra: &str, call_id: &str, cseq: &str, expires: u32| {
        format!(
            "  <send>\n    <![CDATA[\n      SIP/2.0 200 OK\n      [last_Via:]\n      [last_From:]\n      \
             [last_To:];tag=[pid]SIPpTag[call_number]\n      {call_id}\n      {cseq}\n      \
             [last_Contact:];expires={expires}\n{extra}      Content-Length: 0\n\n    ]]>\n  </send>\n"
        )
    };
    let scenario = format!(
        "<?xml version=\"1.0\" encoding=\"ISO-8859-1\" ?>\n<scenario name=\"oversized\">\n  <recv request=\"REGISTER\"/>\n{}{}{}{}</scenario>\n",
        // 60 KB, wrong Call-ID: unmatched
        response(
            &format!("      X-Big: {big}\n"),
            "Call-ID: other",
            "[last_CSeq:]",
            91
        ),
        // truncated: Content-Length larger than what follows
        response("      X-Cut: 1\n", "[last_Call-ID:]", "[last_CSeq:]", 92)
            .replace("Content-Length: 0", "Content-Length: 500"),
        // the real one, then a duplicate of it (absorbed)
        response("", "[last_Call-ID:]", "[last_CSeq:]", 93),
        response("", "[last_Call-ID:]", "[last_CSeq:]", 94),
    );
    let file = tmp.path().join("oversized.xml");
    std::fs::write(&file, scenario).unwrap();
    let mut sipp = Sipp::start_file(&file);
    let s = setup(&sipp.registrar(), "pw");
    assert!(wait_for(&s.rx, Seen::Event(s.id, Event::Registered), WAIT));
    assert_eq!(s.h.info().granted_expires, 93);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(s.h.info().granted_expires, 93, "the duplicate was taken");
    drop(s);
    assert!(sipp.passed(WAIT));
}

/// Contract §8.2/8.3: a failed attempt that will be retried is an
/// ATTEMPT_FAILED event for the registries that asked (and only them), not
/// an error callback: the profile stays enabled; `last_attempt` says what
/// failed and when the next attempt is due.
#[test]
fn a_failed_attempt_is_an_event_for_registries_that_ask_and_last_attempt_tells_the_next() {
    fast_timers();
    let mut sipp = Sipp::start("retry_after_503.xml");
    let tmp = TempDir::new("attempt");
    let store = tmp.path().join("p.db");
    let (m, _mrx) = registry(&store, true);
    let id = provision(&m, &sipp.registrar(), "alice", "pw", 300);
    let (tx, asked) = std::sync::mpsc::channel();
    let flags = sipprofile::client::Flags {
        attempt_events: true,
        ..Default::default()
    };
    let observer = support::ChannelObserver(std::sync::Mutex::new(tx));
    let w = sipprofile::client::Registry::open_with(
        Some(&store),
        false,
        Some(Box::new(observer)),
        flags,
    )
    .unwrap();
    let (u, plain) = registry(&store, false);
    let hw = w.profile(id).unwrap();
    let h = u.profile(id).unwrap();
    assert_eq!(h.last_attempt(), (0, Duration::ZERO));
    u.enable(&h).unwrap();
    assert!(wait_for(
        &asked,
        Seen::Event(id, Event::AttemptFailed),
        WAIT
    ));
    let (error, retry_in) = hw.last_attempt();
    assert_eq!(error, 503);
    assert!(
        retry_in > Duration::ZERO && retry_in <= Duration::from_secs(2),
        "{retry_in:?}"
    );
    assert!(
        u.is_enabled(&h),
        "a failed attempt is not an error callback"
    );
    // The registry that did not ask hears REGISTERED, and nothing of the
    // failed attempt.
    let deadline = Instant::now() + WAIT;
    loop {
        match plain.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(Seen::Event(i, Event::Registered)) if i == id => break,
            Ok(Seen::Event(_, Event::AttemptFailed)) | Ok(Seen::Error(..)) => {
                panic!("the plain registry heard of the failed attempt")
            }
            Ok(_) => {}
            Err(_) => panic!("not registered"),
        }
    }
    assert_eq!(h.last_attempt(), (0, Duration::ZERO));
    drop((h, hw));
    u.close();
    w.close();
    m.close();
    assert!(sipp.passed(WAIT));
}
