//! HTTP Digest for SIP (RFC 3261 §22, RFC 7616, RFC 8760): challenge parsing
//! and credentials. MD5, SHA-256 and SHA-512-256, their `-sess` variants,
//! qop `auth` and `auth-int`.

use md5::Md5;
use sha2::{Digest as _, Sha256, Sha512_256};
use zeroize::Zeroizing;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Md5,
    Sha256,
    Sha512_256,
}

impl Algorithm {
    fn hash(self, data: &[u8]) -> String {
        match self {
            Algorithm::Md5 => hex(&Md5::digest(data)),
            Algorithm::Sha256 => hex(&Sha256::digest(data)),
            Algorithm::Sha512_256 => hex(&Sha512_256::digest(data)),
        }
    }
    /// The algorithm's name as in a challenge and in
    /// `SIP_KEY_DIGEST_MIN_ALGORITHM`.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Sha512_256 => "SHA-512-256",
        }
    }
    /// From a `SIP_KEY_DIGEST_MIN_ALGORITHM` value (case-insensitive).
    pub fn from_name(name: &str) -> Option<Algorithm> {
        [Algorithm::Md5, Algorithm::Sha256, Algorithm::Sha512_256]
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(name))
    }

    /// Preference when a response offers several challenges (RFC 8760 §2.4),
    /// and the order `SIP_KEY_DIGEST_MIN_ALGORITHM` compares by.
    pub fn strength(self) -> u8 {
        match self {
            Algorithm::Md5 => 1,
            Algorithm::Sha256 => 2,
            Algorithm::Sha512_256 => 3,
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    const H: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(H[(b >> 4) as usize] as char);
        s.push(H[(b & 15) as usize] as char);
    }
    s
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Qop {
    Auth,
    AuthInt,
}

/// One `Digest` challenge from WWW-Authenticate or Proxy-Authenticate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub realm: String,
    pub nonce: String,
    pub opaque: Option<String>,
    pub algorithm: Algorithm,
    pub sess: bool,
    /// The qop we will use (auth preferred), None for RFC 2069 style.
    pub qop: Option<Qop>,
    pub stale: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChallengeError {
    NotDigest,
    Malformed,
    UnsupportedAlgorithm,
    UnsupportedQop,
    /// A value holds a control character (CR, LF, NUL…): copied into our
    /// request it would inject header lines (issue 15).
    ControlCharacter,
}

/// A control character other than HTAB (0x00-0x1f, 0x7f): never allowed in
/// a value that goes from a peer into a request.
pub fn has_control(s: &str) -> bool {
    s.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f)
}

/// Splits `a=b, c="d,e"` into pairs; quoted values unescaped.
fn auth_params(s: &str) -> Result<Vec<(String, String)>, ChallengeError> {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && (b[i] == b' ' || b[i] == b',' || b[i] == b'\t') {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        let ks = i;
        while i < b.len() && b[i] != b'=' && b[i] != b',' {
            i += 1;
        }
        if i >= b.len() || b[i] != b'=' {
            return Err(ChallengeError::Malformed);
        }
        if has_control(&s[ks..i]) {
            return Err(ChallengeError::ControlCharacter);
        }
        let key = s[ks..i].trim().to_ascii_lowercase();
        i += 1;
        while i < b.len() && b[i] == b' ' {
            i += 1;
        }
        let mut val = String::new();
        if i < b.len() && b[i] == b'"' {
            i += 1;
            let mut closed = false;
            while i < b.len() {
                match b[i] {
                    b'\\' if i + 1 < b.len() => {
                        // An escaped character may be any UTF-8 character,
                        // but never a control character (`\` CR would
                        // carry a line break into our Authorization).
                        let ch = s[i + 1..].chars().next().ok_or(ChallengeError::Malformed)?;
                        if ch.is_ascii_control() && ch != '\t' {
                            return Err(ChallengeError::ControlCharacter);
                        }
                        val.push(ch);
                        i += 1 + ch.len_utf8();
                    }
                    b'"' => {
                        closed = true;
                        i += 1;
                        break;
                    }
                    _ => {
                        // Copy a whole UTF-8 character.
                        let ch = s[i..].chars().next().ok_or(ChallengeError::Malformed)?;
                        val.push(ch);
                        i += ch.len_utf8();
                    }
                }
            }
            if !closed {
                return Err(ChallengeError::Malformed);
            }
        } else {
            let vs = i;
            while i < b.len() && b[i] != b',' {
                i += 1;
            }
            // Checked before trimming: trim() would drop a VT or FF silently.
            if has_control(&s[vs..i]) {
                return Err(ChallengeError::ControlCharacter);
            }
            val = s[vs..i].trim().to_owned();
        }
        if key.is_empty() {
            return Err(ChallengeError::Malformed);
        }
        if has_control(&key) || has_control(&val) {
            return Err(ChallengeError::ControlCharacter);
        }
        out.push((key, val));
    }
    Ok(out)
}

impl Challenge {
    pub fn parse(header: &str) -> Result<Challenge, ChallengeError> {
        let header = header.trim();
        let (scheme, rest) = header
            .split_once(char::is_whitespace)
            .ok_or(ChallengeError::NotDigest)?;
        if !scheme.eq_ignore_ascii_case("Digest") {
            return Err(ChallengeError::NotDigest);
        }
        let params = auth_params(rest)?;
        let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        let realm = get("realm").ok_or(ChallengeError::Malformed)?.to_owned();
        let nonce = get("nonce").ok_or(ChallengeError::Malformed)?.to_owned();
        let (algorithm, sess) = match get("algorithm")
            .unwrap_or("MD5")
            .to_ascii_uppercase()
            .as_str()
        {
            "MD5" => (Algorithm::Md5, false),
            "MD5-SESS" => (Algorithm::Md5, true),
            "SHA-256" => (Algorithm::Sha256, false),
            "SHA-256-SESS" => (Algorithm::Sha256, true),
            "SHA-512-256" => (Algorithm::Sha512_256, false),
            "SHA-512-256-SESS" => (Algorithm::Sha512_256, true),
            _ => return Err(ChallengeError::UnsupportedAlgorithm),
        };
        let qop = match get("qop") {
            None => None,
            Some(list) => {
                let opts: Vec<String> = list
                    .split(',')
                    .map(|q| q.trim().to_ascii_lowercase())
                    .collect();
                if opts.iter().any(|q| q == "auth") {
                    Some(Qop::Auth)
                } else if opts.iter().any(|q| q == "auth-int") {
                    Some(Qop::AuthInt)
                } else {
                    return Err(ChallengeError::UnsupportedQop);
                }
            }
        };
        let stale = get("stale").is_some_and(|s| s.eq_ignore_ascii_case("true"));
        Ok(Challenge {
            realm,
            nonce,
            opaque: get("opaque").map(str::to_owned),
            algorithm,
            sess,
            qop,
            stale,
        })
    }
}

/// Inputs to one digest computation.
pub struct Request<'a> {
    pub method: &'a str,
    pub uri: &'a str,
    pub body: &'a [u8],
    pub username: &'a str,
    pub password: &'a str,
    pub cnonce: &'a str,
    pub nc: u32,
}

/// The `response=` value.
pub fn response(c: &Challenge, r: &Request) -> String {
    let h = |s: &str| c.algorithm.hash(s.as_bytes());
    // A1 holds the password and HA1 stands in for it: every string holding
    // either is wiped when dropped.
    let a1 = Zeroizing::new(format!("{}:{}:{}", r.username, c.realm, r.password));
    let mut ha1 = Zeroizing::new(h(&a1));
    if c.sess {
        let sess = Zeroizing::new(format!("{}:{}:{}", ha1.as_str(), c.nonce, r.cnonce));
        ha1 = Zeroizing::new(h(&sess));
    }
    let ha1 = ha1.as_str();
    let ha2 = match c.qop {
        Some(Qop::AuthInt) => h(&format!(
            "{}:{}:{}",
            r.method,
            r.uri,
            c.algorithm.hash(r.body)
        )),
        _ => h(&format!("{}:{}", r.method, r.uri)),
    };
    let kd = Zeroizing::new(match c.qop {
        Some(q) => format!(
            "{ha1}:{}:{:08x}:{}:{}:{ha2}",
            c.nonce,
            r.nc,
            r.cnonce,
            if q == Qop::Auth { "auth" } else { "auth-int" }
        ),
        None => format!("{ha1}:{}:{ha2}", c.nonce),
    });
    h(&kd)
}

/// A quoted-string; None when `s` holds a control character, which no
/// escaping makes safe in a header line.
fn quote(s: &str) -> Result<String, ChallengeError> {
    if has_control(s) {
        return Err(ChallengeError::ControlCharacter);
    }
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for ch in s.chars() {
        if ch == '"' || ch == '\\' {
            o.push('\\');
        }
        o.push(ch);
    }
    o.push('"');
    Ok(o)
}

/// The whole Authorization / Proxy-Authorization header value; an error
/// when any value would carry a control character into the request.
pub fn authorization(c: &Challenge, r: &Request) -> Result<String, ChallengeError> {
    let resp = response(c, r);
    let mut v = format!(
        "Digest username={}, realm={}, nonce={}, uri={}, response=\"{resp}\", algorithm={}{}",
        quote(r.username)?,
        quote(&c.realm)?,
        quote(&c.nonce)?,
        quote(r.uri)?,
        c.algorithm.name(),
        if c.sess { "-sess" } else { "" }
    );
    if let Some(q) = c.qop {
        v.push_str(&format!(
            ", qop={}, nc={:08x}, cnonce={}",
            if q == Qop::Auth { "auth" } else { "auth-int" },
            r.nc,
            quote(r.cnonce)?
        ));
    }
    if let Some(o) = &c.opaque {
        v.push_str(&format!(", opaque={}", quote(o)?));
    }
    Ok(v)
}

/// `nextnonce` from an Authentication-Info header, if any.
pub fn next_nonce(authentication_info: &str) -> Option<String> {
    auth_params(authentication_info)
        .ok()?
        .into_iter()
        .find(|(k, _)| k == "nextnonce")
        .map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rfc7616(alg: &str) -> String {
        let c = Challenge::parse(&format!(
            "Digest realm=\"http-auth@example.org\", qop=\"auth, auth-int\", algorithm={alg}, \
             nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\", \
             opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\""
        ))
        .unwrap();
        response(
            &c,
            &Request {
                method: "GET",
                uri: "/dir/index.html",
                body: b"",
                username: "Mufasa",
                password: "Circle of Life",
                cnonce: "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
                nc: 1,
            },
        )
    }

    #[test]
    fn rfc7616_vectors() {
        assert_eq!(rfc7616("MD5"), "8ca523f5e9506fed4657c9700eebdbec");
        assert_eq!(
            rfc7616("SHA-256"),
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
        );
    }

    #[test]
    fn rfc2617_vector() {
        let c = Challenge::parse(
            "Digest realm=\"testrealm@host.com\", qop=\"auth,auth-int\", \
             nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"",
        )
        .unwrap();
        let r = Request {
            method: "GET",
            uri: "/dir/index.html",
            body: b"",
            username: "Mufasa",
            password: "Circle Of Life",
            cnonce: "0a4f113b",
            nc: 1,
        };
        assert_eq!(response(&c, &r), "6629fae49393a05397450978507c4ef1");
        let h = authorization(&c, &r).unwrap();
        assert!(h.contains("nc=00000001") && h.contains("qop=auth,") && h.contains("opaque="));
    }

    #[test]
    fn parses_variants_and_rejects_garbage() {
        let c = Challenge::parse(
            "Digest realm=\"r\", nonce=\"n\", algorithm=SHA-512-256-sess, stale=TRUE",
        )
        .unwrap();
        assert_eq!(c.algorithm, Algorithm::Sha512_256);
        assert!(c.sess && c.stale && c.qop.is_none());
        assert_eq!(
            Challenge::parse("Basic realm=\"x\""),
            Err(ChallengeError::NotDigest)
        );
        assert_eq!(
            Challenge::parse("Digest realm=\"x"),
            Err(ChallengeError::Malformed)
        );
        assert_eq!(
            Challenge::parse("Digest realm=\"x\", nonce=\"y\", algorithm=SHA-1"),
            Err(ChallengeError::UnsupportedAlgorithm)
        );
        assert_eq!(
            Challenge::parse("Digest nonce=\"y\""),
            Err(ChallengeError::Malformed)
        );
        assert_eq!(
            next_nonce("nextnonce=\"abc\", qop=auth").as_deref(),
            Some("abc")
        );
    }

    /// Every algorithm × sess × qop against values computed independently
    /// (Python's hashlib, RFC 7616 §3.4 formulas; see the commit message).
    #[test]
    fn every_variant_against_independent_values() {
        let cases: &[(&str, Option<&str>, &str)] = &[
            ("MD5", Some("auth"), "10f45a1581da42664e7c08af7b4d7b3e"),
            ("MD5", Some("auth-int"), "3ca2763c57a211c57e27129af24436aa"),
            ("MD5", None, "9f7de02fedf29264f03ba5a503cf06ed"),
            ("MD5-sess", Some("auth"), "068431047a36c8b5afa3c627f4fad08e"),
            (
                "MD5-sess",
                Some("auth-int"),
                "d0818016c92049346a0bea64ae6bc9ac",
            ),
            ("MD5-sess", None, "4b4498293fb6dc64a2272b27442a3310"),
            (
                "SHA-256",
                Some("auth"),
                "a0de72457f93c1460ee8cbf1c1720e9056e35255e75c150a8d12135e93eb2a8b",
            ),
            (
                "SHA-256",
                Some("auth-int"),
                "79d787c26ba4c62c758ef58d624a433967026c9e0880b492e8c0703c799690d8",
            ),
            (
                "SHA-256",
                None,
                "0a12cf216a3efca2560b384774ef3cc47896774f338695424f12753b4fa10d89",
            ),
            (
                "SHA-256-sess",
                Some("auth"),
                "a43958bd58d1d22754d005f1e30d4619290b85a3dd8f9e8287a291c761c4f112",
            ),
            (
                "SHA-256-sess",
                Some("auth-int"),
                "fcd742f9bf4883d9f667d1d7f50c07019dd121218b64962b981a5272a5703291",
            ),
            (
                "SHA-256-sess",
                None,
                "a150f0c27dc394636758c5f7101c126f92467b9ee78bafe777a473ad99370f07",
            ),
            (
                "SHA-512-256",
                Some("auth"),
                "66b0c04d89080d67985764fa55fc14f4feac25d7057f441bb5c576a95f621e7c",
            ),
            (
                "SHA-512-256",
                Some("auth-int"),
                "33140ecd7088908d60a0ce2ca48d8ddbbc0d37445d386de8d2312e3af1d5cf36",
            ),
            (
                "SHA-512-256",
                None,
                "a5e8c9607c40a5a7c41968566b48a88a92dda238ea88d82c0c234ba22be15a50",
            ),
            (
                "SHA-512-256-sess",
                Some("auth"),
                "c74ffa71e35e26128009eefb9f77329f684f8c4790f94d003a5bbf828a8557ce",
            ),
            (
                "SHA-512-256-sess",
                Some("auth-int"),
                "ca3eb17a65340f77b9c9ab53a3bba06bd9ae0c4b22c8c5fc4e7c1298dc571a82",
            ),
            (
                "SHA-512-256-sess",
                None,
                "f0e53e7595f4b47eb26507f00ce65304ff9e0c47c74ef82c1df2584cab23661d",
            ),
        ];
        for (alg, qop, want) in cases {
            let header = match qop {
                Some(q) => format!(
                    "Digest realm=\"sipprofile.test\", nonce=\"abc123\", algorithm={alg}, qop=\"{q}\""
                ),
                None => {
                    format!("Digest realm=\"sipprofile.test\", nonce=\"abc123\", algorithm={alg}")
                }
            };
            let c = Challenge::parse(&header).unwrap();
            let r = Request {
                method: "REGISTER",
                uri: "sip:127.0.0.1:5060",
                body: b"",
                username: "alice",
                password: "alicepw",
                cnonce: "0a4f113b",
                nc: 1,
            };
            assert_eq!(response(&c, &r), *want, "{alg} {qop:?}");
        }
    }

    #[test]
    fn control_characters_are_refused_everywhere() {
        for header in [
            "Digest realm=\"a\nX-Injected: yes\", nonce=\"n\"",
            "Digest realm=\"a\", nonce=\"n\rX-Injected: yes\"",
            "Digest realm=\"a\", nonce=\"n\\\r\"",
            "Digest realm=\"a\", nonce=\"n\\\n\"",
            "Digest realm=\"a\", nonce=\"n\", opaque=\"o\u{0}\"",
            "Digest realm=\"a\", nonce=\"n\", opaque=o\u{7f}",
            "Digest realm=\"a\", nonce=n\u{b}, qop=auth",
            "Digest realm=\"a\", nonce=\"n\", algorithm=MD5\u{1b}",
        ] {
            assert_eq!(
                Challenge::parse(header),
                Err(ChallengeError::ControlCharacter),
                "{header:?}"
            );
        }
        // HTAB is allowed; an escaped ordinary character is unescaped.
        let c = Challenge::parse("Digest realm=\"a\\\"\tb\", nonce=\"n\"").unwrap();
        assert_eq!(c.realm, "a\"\tb");
        assert_eq!(next_nonce("nextnonce=\"a\u{1}b\""), None);
    }

    #[test]
    fn authorization_refuses_what_no_escaping_makes_safe() {
        let c = Challenge::parse("Digest realm=\"r\", nonce=\"n\", qop=auth").unwrap();
        let r = |username| Request {
            method: "REGISTER",
            uri: "sip:h",
            body: b"",
            username,
            password: "p",
            cnonce: "c",
            nc: 1,
        };
        assert_eq!(quote("a\"b\\c"), Ok("\"a\\\"b\\\\c\"".to_owned()));
        assert_eq!(quote("a\r\nb"), Err(ChallengeError::ControlCharacter));
        assert!(authorization(&c, &r("alice")).is_ok());
        assert_eq!(
            authorization(&c, &r("al\r\nX-Injected: yes")),
            Err(ChallengeError::ControlCharacter)
        );
        // Even a challenge built in code (not parsed) cannot inject.
        let mut bad = c.clone();
        bad.opaque = Some("o\nX: y".into());
        assert!(authorization(&bad, &r("alice")).is_err());
    }

    #[test]
    fn algorithm_names_round_trip() {
        for a in [Algorithm::Md5, Algorithm::Sha256, Algorithm::Sha512_256] {
            assert_eq!(Algorithm::from_name(a.name()), Some(a));
            assert_eq!(Algorithm::from_name(&a.name().to_lowercase()), Some(a));
        }
        assert_eq!(Algorithm::from_name("SHA-1"), None);
        assert_eq!(Algorithm::from_name("MD5-sess"), None);
        assert_eq!(Algorithm::from_name(""), None);
    }
}
