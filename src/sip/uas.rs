//! Requests sent to our Contact (a registrar's or a proxy's OPTIONS probe,
//! a call we do not take): each gets a final response, statelessly, so a
//! binding is never marked dead for want of an answer (RFC 3261 §8.2, §11).
//! This library makes no calls: OPTIONS is the only method it serves.

use super::message::{Message, StartLine, Via};
use super::uri::Uri;
use std::net::SocketAddr;

/// Methods this library serves.
pub const ALLOW: &str = "OPTIONS";

/// Methods RFC 3261 and its extensions define: refused with 405 (and
/// Allow); any other is not implemented (501).
const KNOWN: [&str; 14] = [
    "INVITE",
    "ACK",
    "BYE",
    "CANCEL",
    "REGISTER",
    "OPTIONS",
    "INFO",
    "PRACK",
    "SUBSCRIBE",
    "NOTIFY",
    "UPDATE",
    "MESSAGE",
    "REFER",
    "PUBLISH",
];

/// The response to a request that came from `peer`, or `None` when none is
/// due (ACK, a request too broken to answer). `is_ours(user)` says whether a
/// Request-URI user is one of our registrations' Contact users.
pub fn answer(msg: &Message, peer: SocketAddr, is_ours: impl Fn(&str) -> bool) -> Option<Vec<u8>> {
    let StartLine::Request { method, uri } = &msg.start else {
        return None;
    };
    if method == "ACK" {
        return None; // never answered (RFC 3261 §17.2.1)
    }
    msg.top_via()?;
    let cseq_ok = msg.cseq().is_some_and(|(_, m)| m == method);
    let (code, reason, extra) = match Uri::parse(uri) {
        _ if !cseq_ok => (400, "Bad Request", ""),
        Err(_) => (416, "Unsupported URI Scheme", ""),
        Ok(u) if u.user.as_deref().is_some_and(|user| !is_ours(user)) => (404, "Not Found", ""),
        Ok(_) => match method.as_str() {
            // An empty Accept: no message bodies are taken (§20.1).
            "OPTIONS" => (200, "OK", "Allow: OPTIONS\r\nAccept: \r\n"),
            // No dialog or transaction of ours to match (CANCEL, BYE, or
            // anything with a To tag).
            "CANCEL" | "BYE" => (481, "Call/Transaction Does Not Exist", ""),
            _ if msg.tag("To").is_some() => (481, "Call/Transaction Does Not Exist", ""),
            m if KNOWN.contains(&m) => (405, "Method Not Allowed", "Allow: OPTIONS\r\n"),
            _ => (501, "Not Implemented", "Allow: OPTIONS\r\n"),
        },
    };
    Some(response(msg, peer, code, reason, extra).into_bytes())
}

fn response(msg: &Message, peer: SocketAddr, code: u16, reason: &str, extra: &str) -> String {
    let mut r = format!("SIP/2.0 {code} {reason}\r\n");
    for (i, via) in msg.header_list("Via").into_iter().enumerate() {
        if i == 0 {
            r.push_str(&format!("Via: {}\r\n", top_via(via, peer)));
        } else {
            r.push_str(&format!("Via: {via}\r\n"));
        }
    }
    let from = msg.header("From").unwrap_or_default();
    let to = msg.header("To").unwrap_or_default();
    r.push_str(&format!("From: {from}\r\n"));
    if msg.tag("To").is_some() {
        r.push_str(&format!("To: {to}\r\n"));
    } else {
        r.push_str(&format!("To: {to};tag={}\r\n", crate::random::hex_token(6)));
    }
    for name in ["Call-ID", "CSeq"] {
        r.push_str(&format!(
            "{name}: {}\r\n",
            msg.header(name).unwrap_or_default()
        ));
    }
    r.push_str(extra);
    r.push_str(&format!(
        "Server: sipprofile/{}\r\nContent-Length: 0\r\n\r\n",
        env!("CARGO_PKG_VERSION")
    ));
    r
}

/// The top Via with where the request really came from (RFC 3261
/// §18.2.1 `received`, RFC 3581 `rport`).
fn top_via(via: &str, peer: SocketAddr) -> String {
    let Some(parsed) = Via::parse(via) else {
        return via.to_owned();
    };
    let mut out = String::with_capacity(via.len() + 32);
    let has_rport = parsed.param("rport").is_some();
    // Rebuild the parameters: an empty rport gets the port, received the IP.
    let (head, _) = via.split_once(';').unwrap_or((via, ""));
    out.push_str(head.trim_end());
    for part in via.split(';').skip(1) {
        let name = part.split('=').next().unwrap_or("").trim();
        if name.eq_ignore_ascii_case("rport") || name.eq_ignore_ascii_case("received") {
            continue;
        }
        out.push(';');
        out.push_str(part.trim());
    }
    out.push_str(&format!(";received={}", peer.ip()));
    if has_rport {
        out.push_str(&format!(";rport={}", peer.port()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: &str, ruri: &str, to_tag: bool) -> Message {
        let to = if to_tag {
            "<sip:a@b>;tag=t1"
        } else {
            "<sip:a@b>"
        };
        let text = format!(
            "{method} {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKx;rport\r\nVia: SIP/2.0/UDP 10.0.0.2;branch=z9hG4bKy\r\nFrom: <sip:p@b>;tag=f1\r\nTo: {to}\r\nCall-ID: c1\r\nCSeq: 7 {method}\r\nContent-Length: 0\r\n\r\n"
        );
        Message::parse(text.as_bytes()).unwrap()
    }

    fn status(method: &str, ruri: &str, to_tag: bool) -> Option<(u16, Message)> {
        let peer: SocketAddr = "192.0.2.9:5999".parse().unwrap();
        let r = answer(&request(method, ruri, to_tag), peer, |u| u == "me")?;
        let m = Message::parse(&r).unwrap();
        Some((m.status().unwrap(), m))
    }

    #[test]
    fn options_is_answered_with_allow_and_accept() {
        let (code, m) = status("OPTIONS", "sip:me@127.0.0.1:5062", false).unwrap();
        assert_eq!(code, 200);
        assert_eq!(m.header("Allow"), Some("OPTIONS"));
        assert!(m.header("Accept").is_some());
        assert_eq!(m.header("Call-ID"), Some("c1"));
        assert_eq!(m.cseq(), Some((7, "OPTIONS")));
        assert!(m.tag("To").is_some());
        let vias = m.header_list("Via");
        assert_eq!(
            vias[0],
            "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKx;received=192.0.2.9;rport=5999"
        );
        assert_eq!(vias[1], "SIP/2.0/UDP 10.0.0.2;branch=z9hG4bKy");
        // Without a user (a keep-alive probe to host:port): ours too.
        assert_eq!(
            status("OPTIONS", "sip:127.0.0.1:5062", false).unwrap().0,
            200
        );
    }

    #[test]
    fn every_other_request_gets_a_final_response() {
        let code = |m, tag| status(m, "sip:me@127.0.0.1", tag).map(|x| x.0);
        assert_eq!(code("INVITE", false), Some(405));
        assert_eq!(code("MESSAGE", false), Some(405));
        assert_eq!(code("NOTIFY", true), Some(481));
        assert_eq!(code("BYE", false), Some(481));
        assert_eq!(code("CANCEL", false), Some(481));
        assert_eq!(code("FROBNICATE", false), Some(501));
        assert_eq!(code("ACK", false), None);
        let (_, m) = status("INVITE", "sip:me@127.0.0.1", false).unwrap();
        assert_eq!(m.header("Allow"), Some("OPTIONS"));
        // Found by fuzzing: an empty Via leaves nothing to answer along.
        let text = "OPTIONS sip:me@127.0.0.1 SIP/2.0\r\nVia: \r\nFrom: <sip:p@b>;tag=1\r\nTo: <sip:me@b>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
        let peer: SocketAddr = "192.0.2.9:5999".parse().unwrap();
        assert_eq!(
            answer(&Message::parse(text.as_bytes()).unwrap(), peer, |_| true),
            None
        );
        // Not one of our Contacts.
        assert_eq!(
            status("OPTIONS", "sip:other@127.0.0.1", false).unwrap().0,
            404
        );
    }
}
