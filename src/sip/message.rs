//! SIP messages: a bounded parser for what arrives from the network, helpers
//! for the headers registration needs, and log masking.
//!
//! Parsing is ours rather than a crate's because only responses to our own
//! REGISTERs are accepted, the parser must never panic on hostile input, and
//! its limits (size, header count) are part of the product's guarantees.

/// Larger messages are dropped (contract: messages over 64 KiB are refused).
pub const MAX_MESSAGE: usize = 65_535;
const MAX_HEADERS: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartLine {
    Request { method: String, uri: String },
    Response { code: u16, reason: String },
}

#[derive(Debug, Clone)]
pub struct Message {
    pub start: StartLine,
    /// Header names in canonical long form, values trimmed, folded lines joined.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError {
    TooBig,
    Incomplete,
    Malformed,
}

fn long_name(name: &str) -> String {
    let n = match name.to_ascii_lowercase().as_str() {
        "v" | "via" => "Via",
        "i" | "call-id" => "Call-ID",
        "f" | "from" => "From",
        "t" | "to" => "To",
        "m" | "contact" => "Contact",
        "l" | "content-length" => "Content-Length",
        "c" | "content-type" => "Content-Type",
        "k" | "supported" => "Supported",
        "cseq" => "CSeq",
        "expires" => "Expires",
        "min-expires" => "Min-Expires",
        "www-authenticate" => "WWW-Authenticate",
        "proxy-authenticate" => "Proxy-Authenticate",
        "authentication-info" => "Authentication-Info",
        "retry-after" => "Retry-After",
        "service-route" => "Service-Route",
        "p-associated-uri" => "P-Associated-URI",
        "path" => "Path",
        _ => return name.to_owned(),
    };
    n.to_owned()
}

impl Message {
    /// Parses one whole message from a datagram (or a framed stream chunk).
    pub fn parse(buf: &[u8]) -> Result<Message, ParseError> {
        if buf.len() > MAX_MESSAGE {
            return Err(ParseError::TooBig);
        }
        let head_end = find(buf, b"\r\n\r\n").ok_or(ParseError::Incomplete)?;
        let head = std::str::from_utf8(&buf[..head_end]).map_err(|_| ParseError::Malformed)?;
        let mut lines = head.split("\r\n");
        let first = lines.next().ok_or(ParseError::Malformed)?;
        let start = parse_start_line(first)?;
        let mut headers: Vec<(String, String)> = Vec::new();
        for line in lines {
            // A CR or LF not in a CRLF pair would stay inside a value and
            // could reach a request of ours as a line break (issue 15).
            if line.contains(['\r', '\n']) {
                return Err(ParseError::Malformed);
            }
            if line.starts_with([' ', '\t']) {
                let last = headers.last_mut().ok_or(ParseError::Malformed)?;
                last.1.push(' ');
                last.1.push_str(line.trim());
                continue;
            }
            let (name, value) = line.split_once(':').ok_or(ParseError::Malformed)?;
            let name = name.trim();
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(ParseError::Malformed);
            }
            if headers.len() >= MAX_HEADERS {
                return Err(ParseError::TooBig);
            }
            headers.push((long_name(name), value.trim().to_owned()));
        }
        let rest = &buf[head_end + 4..];
        let mut msg = Message {
            start,
            headers,
            body: Vec::new(),
        };
        let len = match msg.header("Content-Length") {
            Some(v) => v.parse::<usize>().map_err(|_| ParseError::Malformed)?,
            None => rest.len(),
        };
        if len > rest.len() {
            return Err(ParseError::Incomplete);
        }
        msg.body = rest[..len].to_vec();
        for required in ["Via", "CSeq", "Call-ID", "From", "To"] {
            if msg.header(required).is_none() {
                return Err(ParseError::Malformed);
            }
        }
        Ok(msg)
    }

    pub fn status(&self) -> Option<u16> {
        match self.start {
            StartLine::Response { code, .. } => Some(code),
            _ => None,
        }
    }

    /// First value of a header (canonical long name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a header, comma-separated lists split into elements.
    pub fn header_list(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .flat_map(|(_, v)| split_list(v))
            .collect()
    }

    /// All raw values of a header (not split on commas: for auth challenges).
    pub fn header_values(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// (sequence number, method) of CSeq.
    pub fn cseq(&self) -> Option<(u32, &str)> {
        let v = self.header("CSeq")?;
        let (n, m) = v.split_once(char::is_whitespace)?;
        Some((n.trim().parse().ok()?, m.trim()))
    }

    /// The top Via's parameters.
    pub fn top_via(&self) -> Option<Via<'_>> {
        let v = self.header_list("Via").into_iter().next()?;
        Via::parse(v)
    }

    pub fn tag(&self, header: &str) -> Option<&str> {
        let v = self.header(header)?;
        NameAddr::parse(v)?.param("tag")
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn parse_start_line(line: &str) -> Result<StartLine, ParseError> {
    if let Some(rest) = line.strip_prefix("SIP/2.0 ") {
        let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
        let code: u16 = code.parse().map_err(|_| ParseError::Malformed)?;
        if !(100..=699).contains(&code) {
            return Err(ParseError::Malformed);
        }
        return Ok(StartLine::Response {
            code,
            reason: reason.to_owned(),
        });
    }
    let mut parts = line.split(' ');
    let (Some(method), Some(uri), Some("SIP/2.0"), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ParseError::Malformed);
    };
    Ok(StartLine::Request {
        method: method.to_owned(),
        uri: uri.to_owned(),
    })
}

/// Splits a header value on commas that are outside quotes and `<…>`.
pub fn split_list(v: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut quoted, mut angle, mut escaped) = (false, false, false);
    let mut start = 0;
    for (i, c) in v.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '<' if !quoted => angle = true,
            '>' if !quoted => angle = false,
            ',' if !quoted && !angle => {
                let part = v[start..i].trim();
                if !part.is_empty() {
                    out.push(part);
                }
                start = i + 1;
            }
            _ => {}
        }
    }
    let part = v[start..].trim();
    if !part.is_empty() {
        out.push(part);
    }
    out
}

/// `;name=value` parameters after a Via, name-addr or URI. Quoted values
/// may contain `;` (e.g. `pub-gruu="sip:a@b;gr=urn:…"`); quotes are removed.
pub fn parse_params(s: &str) -> Vec<(&str, Option<&str>)> {
    let mut parts = Vec::new();
    let (mut start, mut quoted) = (0, false);
    for (i, c) in s.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ';' if !quoted => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
        .into_iter()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (k.trim(), Some(v.trim().trim_matches('"'))),
            None => (p, None),
        })
        .collect()
}

/// One Via value.
#[derive(Debug)]
pub struct Via<'a> {
    pub transport: &'a str,
    pub sent_by: &'a str,
    pub params: Vec<(&'a str, Option<&'a str>)>,
}

impl<'a> Via<'a> {
    pub fn parse(v: &'a str) -> Option<Via<'a>> {
        let (proto, rest) = v.split_once(char::is_whitespace)?;
        let transport = proto.rsplit('/').next()?;
        let (sent_by, params) = match rest.find(';') {
            Some(i) => (rest[..i].trim(), &rest[i + 1..]),
            None => (rest.trim(), ""),
        };
        Some(Via {
            transport,
            sent_by,
            params: parse_params(params),
        })
    }
    pub fn param(&self, name: &str) -> Option<Option<&'a str>> {
        self.params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }
}

/// A name-addr or addr-spec with header parameters (To, From, Contact, routes).
#[derive(Debug)]
pub struct NameAddr<'a> {
    pub uri: &'a str,
    pub params: Vec<(&'a str, Option<&'a str>)>,
}

impl<'a> NameAddr<'a> {
    pub fn parse(v: &'a str) -> Option<NameAddr<'a>> {
        let v = v.trim();
        if let Some(lt) = v.find('<') {
            let gt = lt + v[lt..].find('>')?;
            let params = v[gt + 1..].trim_start();
            let params = params.strip_prefix(';').unwrap_or(params);
            Some(NameAddr {
                uri: &v[lt + 1..gt],
                params: parse_params(params),
            })
        } else {
            // addr-spec: parameters after the URI belong to the header.
            let (uri, params) = match v.find(';') {
                Some(i) => (&v[..i], &v[i + 1..]),
                None => (v, ""),
            };
            Some(NameAddr {
                uri: uri.trim(),
                params: parse_params(params),
            })
        }
    }
    pub fn param(&self, name: &str) -> Option<&'a str> {
        self.params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| *v)
    }
}

/// Parameters whose values are secret or could be attacked offline: the
/// digest `response` and `rspauth`, and any `password`.
const SECRET_PARAMS: [&str; 3] = ["response", "rspauth", "password"];

/// The message text for trace logs, with the values of [`SECRET_PARAMS`]
/// masked wherever they are, whatever line they are on (passwords never
/// enter a message; a digest response could be attacked offline).
pub fn masked_for_log(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut i = 0;
    while i < b.len() {
        let at_boundary = i == 0 || matches!(b[i - 1], b' ' | b'\t' | b',' | b';' | b'\n' | b':');
        let name = SECRET_PARAMS.iter().find(|n| {
            let end = i + n.len();
            at_boundary
                && end < b.len()
                && b[i..end].eq_ignore_ascii_case(n.as_bytes())
                && b[end..].iter().find(|c| **c != b' ' && **c != b'\t') == Some(&b'=')
        });
        let Some(name) = name else {
            i += 1;
            continue;
        };
        let mut v = i + name.len();
        while b[v] != b'=' {
            v += 1;
        }
        v += 1;
        while v < b.len() && matches!(b[v], b' ' | b'\t') {
            v += 1;
        }
        let end = if b.get(v) == Some(&b'"') {
            let mut e = v + 1;
            while e < b.len() && b[e] != b'"' {
                e += if b[e] == b'\\' { 2 } else { 1 };
            }
            (e + 1).min(b.len())
        } else {
            let mut e = v;
            while e < b.len() && !matches!(b[e], b',' | b';' | b' ' | b'\t' | b'\r' | b'\n') {
                e += 1;
            }
            e
        };
        out.push_str(&text[copied..v]);
        out.push_str("\"***\"");
        copied = end;
        i = end.max(i + 1);
    }
    out.push_str(&text[copied..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &[u8] = b"SIP/2.0 200 OK\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bKabc;rport=5062;received=127.0.0.1\r\n\
From: <sip:alice@example.com>;tag=f1\r\n\
To: <sip:alice@example.com>;tag=t1\r\n\
Call-ID: c1\r\n\
CSeq: 2 REGISTER\r\n\
Contact: <sip:u1@127.0.0.1:5062>;expires=3600, <sip:other@10.0.0.1>;expires=60\r\n\
l: 0\r\n\r\n";

    #[test]
    fn parses_a_registrar_response() {
        let m = Message::parse(OK).unwrap();
        assert_eq!(m.status(), Some(200));
        assert_eq!(m.cseq(), Some((2, "REGISTER")));
        let via = m.top_via().unwrap();
        assert_eq!(via.param("branch"), Some(Some("z9hG4bKabc")));
        assert_eq!(via.param("rport"), Some(Some("5062")));
        let contacts = m.header_list("Contact");
        assert_eq!(contacts.len(), 2);
        let c = NameAddr::parse(contacts[0]).unwrap();
        assert_eq!(c.uri, "sip:u1@127.0.0.1:5062");
        assert_eq!(c.param("expires"), Some("3600"));
        assert_eq!(m.tag("To"), Some("t1"));
    }

    #[test]
    fn rejects_garbage_without_panicking() {
        assert_eq!(
            Message::parse(b"hello").unwrap_err(),
            ParseError::Incomplete
        );
        assert!(Message::parse(b"SIP/2.0 999 X\r\n\r\n").is_err());
        assert!(Message::parse(b"SIP/2.0 200 OK\r\nVia x\r\n\r\n").is_err());
        assert!(Message::parse(&vec![b'a'; MAX_MESSAGE + 1]).is_err());
        let truncated = &OK[..OK.len() - 10];
        assert!(Message::parse(truncated).is_err());
        // Content-Length larger than what arrived.
        let long = String::from_utf8_lossy(OK).replace("l: 0", "l: 99");
        assert_eq!(
            Message::parse(long.as_bytes()).unwrap_err(),
            ParseError::Incomplete
        );
        // Every prefix of a valid message parses or fails cleanly.
        for i in 0..OK.len() {
            let _ = Message::parse(&OK[..i]);
        }
    }

    #[test]
    fn quoted_parameters_keep_semicolons() {
        let c = NameAddr::parse(
            r#"<sip:u@h>;expires=60;pub-gruu="sip:a@b;gr=urn:uuid:1";temp-gruu="sip:t@b;gr""#,
        )
        .unwrap();
        assert_eq!(c.param("pub-gruu"), Some("sip:a@b;gr=urn:uuid:1"));
        assert_eq!(c.param("temp-gruu"), Some("sip:t@b;gr"));
        assert_eq!(c.param("expires"), Some("60"));
    }

    #[test]
    fn splits_lists_outside_quotes() {
        let v = r#"Digest realm="a,b", nonce="x""#;
        assert_eq!(split_list(v).len(), 2);
        assert_eq!(split_list("<sip:a;x=1,2>;q=1, <sip:b>").len(), 2);
    }

    #[test]
    fn a_lone_cr_or_lf_is_malformed() {
        let ok = String::from_utf8_lossy(OK).into_owned();
        for bad in [
            ok.replace("Call-ID: c1", "Call-ID: c1\nX-Injected: yes"),
            ok.replace("Call-ID: c1", "Call-ID: c1\rX-Injected: yes"),
            ok.replace("Call-ID: c1", "Call-ID: c\r\r\n1"),
        ] {
            assert_eq!(
                Message::parse(bad.as_bytes()).unwrap_err(),
                ParseError::Malformed,
                "{bad:?}"
            );
        }
        // A folded line (CRLF then whitespace) is still one value.
        let folded = ok.replace("Call-ID: c1", "Call-ID: c1\r\n\tc2");
        let m = Message::parse(folded.as_bytes()).unwrap();
        assert_eq!(m.header("Call-ID"), Some("c1 c2"));
    }

    #[test]
    fn masks_secrets_by_parameter_on_any_line() {
        let text = "REGISTER sip:x SIP/2.0\r\n\
            Authorization: Digest username=\"a\",\r\n response=\"0123abcd\", nc=00000001\r\n\
            X-Other: RESPONSE = 99aa;password=hunter2\r\n\
            Authentication-Info: rspauth=\"5555\\\"66\", nextnonce=\"n\"\r\n\
            X-Harmless: noresponse=1\r\n\r\n";
        let m = masked_for_log(text);
        for secret in ["0123abcd", "99aa", "hunter2", "5555", "66"] {
            assert!(!m.contains(secret), "{secret} in {m}");
        }
        assert!(m.contains("nc=00000001") && m.contains("nextnonce=\"n\""));
        assert!(m.contains("noresponse=1"));
        // Truncated text ends inside a value: still masked, no panic.
        assert!(!masked_for_log("response=\"abc").contains("abc"));
        assert_eq!(masked_for_log("x response"), "x response");
    }

    #[test]
    fn masks_response_values() {
        let text = "REGISTER sip:x SIP/2.0\r\nAuthorization: Digest username=\"a\", response=\"0123abcd\", nc=00000001\r\n\r\n";
        let m = masked_for_log(text);
        assert!(!m.contains("0123abcd"));
        assert!(m.contains("nc=00000001"));
    }
}
