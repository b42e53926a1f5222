//! Digest challenge parsing (WWW-/Proxy-Authenticate, Authentication-Info),
//! and computing credentials for whatever parses.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sipprofile::sip::digest::{Challenge, Request, authorization, has_control, next_nonce};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = next_nonce(text);
    if let Ok(c) = Challenge::parse(text) {
        // Whatever a challenge holds, no control character reaches a request.
        for v in [&c.realm, &c.nonce] {
            assert!(!has_control(v));
        }
        let answer = authorization(
            &c,
            &Request {
                method: "REGISTER",
                uri: "sip:example.com",
                body: b"",
                username: "alice",
                password: "pw",
                cnonce: "0a4f113b",
                nc: 1,
            },
        );
        if let Ok(v) = answer {
            assert!(!has_control(&v));
        }
    }
});
