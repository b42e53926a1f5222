//! The registration state machine driven by arbitrary sequences of
//! responses (statuses, numbers and challenge values from the input),
//! timer expiries (current and stale), commands and transport events.
//! Invariants: no panic; every wait armed is at most a day and turns into a
//! deadline without overflow; everything sent is one well-formed REGISTER
//! with no control character and no header we did not write; retries
//! between successes are bounded; responses alone cannot make it send
//! without end; once done, it does nothing more.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sipprofile::sip::message::Message;
use sipprofile::sip::registration::{
    Action, Credentials, RegConfig, Registration, Report, TimerKind,
};
use sipprofile::sip::timers::{MAX_WAIT, Timers, deadline};
use sipprofile::sip::transport::Transport;
use sipprofile::sip::uri::Uri;
use std::time::{Duration, Instant};

/// Reads the input a byte or a short string at a time; zeros once empty.
struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn byte(&mut self) -> u8 {
        let (b, rest) = self.0.split_first().map_or((0, &[][..]), |(b, r)| (*b, r));
        self.0 = rest;
        b
    }
    fn text(&mut self) -> String {
        let n = usize::from(self.byte() % 48).min(self.0.len());
        let (t, rest) = self.0.split_at(n);
        self.0 = rest;
        String::from_utf8_lossy(t).into_owned()
    }
    fn number(&mut self) -> String {
        match self.byte() % 6 {
            0 => "18446744073709551615".into(),
            1 => "99999999999999999999999999999".into(),
            2 => "4294967295".into(),
            3 => "0".into(),
            4 => u32::from_le_bytes([self.byte(), self.byte(), 0, 0]).to_string(),
            _ => self.text(),
        }
    }
}

const STATUSES: [&str; 18] = [
    "100 Trying",
    "200 OK",
    "202 Accepted",
    "301 Moved",
    "401 Unauthorized",
    "407 Proxy Authentication Required",
    "423 Interval Too Brief",
    "403 Forbidden",
    "404 Not Found",
    "408 Request Timeout",
    "480 Unavailable",
    "500 Error",
    "503 Service Unavailable",
    "504 Timeout",
    "603 Decline",
    "401 Unauthorized",
    "200 OK",
    "503 Service Unavailable",
];

const ALLOWED: [&str; 15] = [
    "Via",
    "Max-Forwards",
    "From",
    "To",
    "Call-ID",
    "CSeq",
    "Contact",
    "Expires",
    "Supported",
    "Route",
    "Authorization",
    "Proxy-Authorization",
    "X-Test",
    "User-Agent",
    "Content-Length",
];

fn config(input: &mut Input) -> RegConfig {
    let flags = input.byte();
    let creds = Credentials {
        user: "alice".into(),
        realm: if flags & 1 == 0 {
            String::new()
        } else {
            "example.com".into()
        },
        password: "secret".into(),
    };
    RegConfig {
        aor: "sip:alice@example.com".into(),
        registrar: Uri::parse("sip:127.0.0.1:5060").expect("literal"),
        proxy: (flags & 2 != 0).then(|| Uri::parse("sip:127.0.0.1:5070").expect("literal")),
        contact_user: "abcdefghij0123456789".into(),
        contact_params: vec![],
        headers: vec!["X-Test: 1".into()],
        expires: 600,
        registrar_creds: creds.clone(),
        proxy_creds: if flags & 4 != 0 {
            creds
        } else {
            Credentials::default()
        },
        retry_base: 30,
        retry_max: 1800,
        instance_id: (flags & 8 != 0)
            .then(|| "urn:uuid:00000000-0000-4000-8000-000000000000".into()),
        ims: flags & 16 != 0,
        transport: if flags & 32 != 0 {
            Transport::Tcp
        } else {
            Transport::Udp
        },
        tls_ca_file: None,
        interface: None,
        network: Default::default(),
        digest_min: [None, Some("MD5"), Some("SHA-256"), Some("SHA-512-256")]
            [usize::from(flags >> 6)]
        .and_then(sipprofile::sip::digest::Algorithm::from_name),
    }
}

/// A response to `req` (matching it unless told not to), with headers made
/// from the input.
fn response(req: &str, input: &mut Input) -> Option<Message> {
    let pick = |name: &str| {
        req.lines()
            .find(|l| l.starts_with(name))
            .unwrap_or("")
            .to_owned()
    };
    let status = STATUSES[usize::from(input.byte()) % STATUSES.len()];
    let which = input.byte();
    let mut cseq = pick("CSeq:");
    if which & 0x80 != 0 {
        cseq = "CSeq: 77 REGISTER".into(); // unmatched
    }
    let mut extra = String::new();
    if which & 1 != 0 {
        extra += &format!("Retry-After: {}\r\n", input.number());
    }
    if which & 2 != 0 {
        extra += &format!("Min-Expires: {}\r\n", input.number());
    }
    if which & 4 != 0 {
        extra += &format!(
            "Contact: <sip:abcdefghij0123456789@127.0.0.1:5062>;expires={};pub-gruu=\"{}\"\r\n",
            input.number(),
            input.text()
        );
    }
    if which & 8 != 0 {
        extra += &format!("Expires: {}\r\n", input.number());
    }
    if which & 16 != 0 {
        let name = if input.byte() & 1 == 0 {
            "WWW-Authenticate"
        } else {
            "Proxy-Authenticate"
        };
        let alg =
            ["MD5", "SHA-256", "SHA-512-256", "MD5-sess", "SHA-1"][usize::from(input.byte() % 5)];
        let qop = ["", ", qop=\"auth\"", ", qop=\"auth-int\"", ", qop=\"x\""]
            [usize::from(input.byte() % 4)];
        let stale = if input.byte() & 1 == 0 {
            ""
        } else {
            ", stale=true"
        };
        extra += &format!(
            "{name}: Digest realm=\"{}\", nonce=\"{}\", opaque=\"{}\", algorithm={alg}{qop}{stale}\r\n",
            input.text(),
            input.text(),
            input.text()
        );
    }
    if which & 32 != 0 {
        extra += &format!("Service-Route: <sip:{}@h;lr>\r\n", input.text());
    }
    if which & 64 != 0 {
        extra += &format!("Authentication-Info: nextnonce=\"{}\"\r\n", input.text());
    }
    let text = format!(
        "SIP/2.0 {status}\r\n{}\r\n{}\r\n{};tag=x\r\n{}\r\n{cseq}\r\n{extra}Content-Length: 0\r\n\r\n",
        pick("Via:"),
        pick("From:"),
        pick("To:"),
        pick("Call-ID:"),
    );
    Message::parse(text.as_bytes()).ok()
}

/// What one step sent must be one REGISTER we wrote, nothing injected.
fn check_sent(data: &[u8]) -> String {
    let text = std::str::from_utf8(data).expect("UTF-8");
    let bare = text.replace("\r\n", "");
    assert!(
        !bare.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f),
        "control character sent: {text:?}"
    );
    let m = Message::parse(data).expect("what we send parses");
    for (name, _) in &m.headers {
        assert!(
            ALLOWED.contains(&name.as_str()),
            "header {name} sent: {text:?}"
        );
    }
    assert_eq!(m.header_values("Content-Length").len(), 1);
    text.to_owned()
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let mut reg = Registration::new(
        config(&mut input),
        Timers::with_t1(Duration::from_millis(500)),
        "127.0.0.1:5062".parse().expect("literal"),
    );
    let mut out = Vec::new();
    reg.start(&mut out);
    let mut last = String::new();
    let mut armed = [0u64; 4];
    let mut retries_since_success = 0u32;
    let mut sends_from_responses = 0u32;
    let mut done = false;
    let now = Instant::now();
    for step in 0..64 {
        let mut from_response = false;
        if step > 0 {
            out.clear();
            if input.0.is_empty() {
                break;
            }
            match input.byte() % 10 {
                0..=3 => {
                    if let Some(m) = response(&last, &mut input) {
                        from_response = true;
                        reg.on_response(&m, &mut out);
                    }
                }
                4 | 5 => {
                    // The next timer of a kind, now or one already replaced.
                    let b = input.byte();
                    let kind = [
                        TimerKind::Retransmit,
                        TimerKind::Timeout,
                        TimerKind::Refresh,
                        TimerKind::Retry,
                    ][usize::from(b % 4)];
                    let generation = armed[kind as usize].saturating_sub(u64::from(b >> 7));
                    reg.on_timer(kind, generation, &mut out);
                }
                6 => reg.stop(&mut out),
                7 => reg.retry_now(&mut out),
                8 => reg.on_connection_lost(&mut out),
                _ => {
                    if input.byte() & 1 == 0 {
                        reg.on_transport_error(&mut out);
                    } else if let Ok(m) = Message::parse(input.text().as_bytes()) {
                        reg.on_response(&m, &mut out);
                    }
                }
            }
        }
        if done {
            assert!(out.is_empty(), "acted after Done: {out:?}");
            continue;
        }
        let sends = out.iter().filter(|a| matches!(a, Action::Send(_))).count();
        assert!(sends <= 1, "{sends} requests in one step");
        if from_response && sends > 0 {
            sends_from_responses += 1;
            assert!(
                sends_from_responses <= 12,
                "responses alone keep it sending"
            );
        } else if !from_response {
            sends_from_responses = 0;
        }
        for a in &out {
            match a {
                Action::Send(d) => last = check_sent(d),
                Action::Timer(kind, after, generation) => {
                    assert!(*after <= MAX_WAIT, "{kind:?} in {after:?}");
                    let _ = deadline(now, *after);
                    armed[*kind as usize] = *generation;
                    if *kind == TimerKind::Retry {
                        retries_since_success += 1;
                        assert!(retries_since_success <= 10, "retries without end");
                    }
                }
                Action::Report(Report::Registered(_) | Report::Refreshed(_)) => {
                    retries_since_success = 0;
                }
                Action::Done => done = true,
                _ => {}
            }
        }
        assert_eq!(done, reg.is_done());
    }
});
