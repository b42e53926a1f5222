//! STUN Binding keep-alives on UDP flows (RFC 5626 §4.4.2, RFC 5389): a
//! 20-byte Binding request, and a careful reading of the answer's mapped
//! address (a NAT that maps the flow anew means registering again).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

const MAGIC: u32 = 0x2112_A442;
const BINDING_REQUEST: u16 = 0x0001;
const BINDING_SUCCESS: u16 = 0x0101;
const MAPPED_ADDRESS: u16 = 0x0001;
const XOR_MAPPED_ADDRESS: u16 = 0x0020;

pub type TransactionId = [u8; 12];

/// A Binding request with no attributes.
pub fn binding_request(id: &TransactionId) -> [u8; 20] {
    let mut m = [0u8; 20];
    m[0..2].copy_from_slice(&BINDING_REQUEST.to_be_bytes());
    // Length 0: no attributes.
    m[4..8].copy_from_slice(&MAGIC.to_be_bytes());
    m[8..20].copy_from_slice(id);
    m
}

/// Could this datagram be STUN rather than SIP? (RFC 5389 §6: the two top
/// bits zero, the magic cookie; SIP starts with a letter.)
pub fn is_stun(data: &[u8]) -> bool {
    data.len() >= 20 && data[0] & 0xC0 == 0 && data[4..8] == MAGIC.to_be_bytes()
}

/// The transaction id and mapped address of a Binding success response;
/// `None` for anything else or anything malformed.
pub fn binding_response(data: &[u8]) -> Option<(TransactionId, Option<SocketAddr>)> {
    if !is_stun(data) {
        return None;
    }
    let kind = u16::from_be_bytes([data[0], data[1]]);
    let len = usize::from(u16::from_be_bytes([data[2], data[3]]));
    if kind != BINDING_SUCCESS || len % 4 != 0 || data.len() != 20 + len {
        return None;
    }
    let mut id = [0u8; 12];
    id.copy_from_slice(&data[8..20]);
    let mut mapped = None;
    let mut at = 20;
    while at + 4 <= data.len() {
        let attr = u16::from_be_bytes([data[at], data[at + 1]]);
        let alen = usize::from(u16::from_be_bytes([data[at + 2], data[at + 3]]));
        let value = data.get(at + 4..at + 4 + alen)?;
        match attr {
            XOR_MAPPED_ADDRESS => mapped = Some(address(value, Some(&data[4..20]))?),
            MAPPED_ADDRESS if mapped.is_none() => mapped = Some(address(value, None)?),
            _ => {}
        }
        // Attributes are padded to 4 bytes.
        at += 4 + alen.div_ceil(4) * 4;
    }
    Some((id, mapped))
}

/// A (XOR-)MAPPED-ADDRESS value; `xor` is the cookie and transaction id.
fn address(v: &[u8], xor: Option<&[u8]>) -> Option<SocketAddr> {
    if v.len() < 4 {
        return None;
    }
    let mask = |i: usize| xor.map_or(0, |x| x[i]);
    let port = u16::from_be_bytes([v[2] ^ mask(0), v[3] ^ mask(1)]);
    let ip = match (v[1], v.len()) {
        (1, 8) => {
            let b: [u8; 4] = std::array::from_fn(|i| v[4 + i] ^ mask(i));
            IpAddr::V4(Ipv4Addr::from(b))
        }
        (2, 20) => {
            let b: [u8; 16] = std::array::from_fn(|i| v[4 + i] ^ mask(i));
            IpAddr::V6(Ipv6Addr::from(b))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(id: &TransactionId, attrs: &[u8]) -> Vec<u8> {
        let mut m = vec![0x01, 0x01];
        m.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
        m.extend_from_slice(&MAGIC.to_be_bytes());
        m.extend_from_slice(id);
        m.extend_from_slice(attrs);
        m
    }

    #[test]
    fn request_is_twenty_bytes_and_looks_like_stun() {
        let id = [7u8; 12];
        let r = binding_request(&id);
        assert_eq!(r.len(), 20);
        assert!(is_stun(&r));
        assert!(!is_stun(b"SIP/2.0 200 OK\r\nVia: x\r\n\r\n"));
        assert!(!is_stun(b"\r\n\r\n"));
    }

    #[test]
    fn reads_the_xor_mapped_address() {
        let id = [1u8; 12];
        // 192.0.2.1:32853 XORed with the cookie (RFC 5769 style).
        let port = 32853u16 ^ 0x2112;
        let cookie = MAGIC.to_be_bytes();
        let ip: Vec<u8> = [192u8, 0, 2, 1]
            .iter()
            .zip(cookie)
            .map(|(b, c)| b ^ c)
            .collect();
        let mut attr = vec![0x00, 0x20, 0x00, 0x08, 0x00, 0x01];
        attr.extend_from_slice(&port.to_be_bytes());
        attr.extend_from_slice(&ip);
        // An unknown attribute with padding first.
        let mut attrs = vec![0x80, 0x22, 0x00, 0x03, b'a', b'b', b'c', 0];
        attrs.extend_from_slice(&attr);
        let (got_id, mapped) = binding_response(&response(&id, &attrs)).unwrap();
        assert_eq!(got_id, id);
        assert_eq!(mapped, Some("192.0.2.1:32853".parse().unwrap()));
        // Plain MAPPED-ADDRESS (old servers), IPv6 XOR form.
        let plain = [0x00, 0x01, 0x00, 0x08, 0x00, 0x01, 0x13, 0xc4, 10, 0, 0, 1];
        let (_, m) = binding_response(&response(&id, &plain)).unwrap();
        assert_eq!(m, Some("10.0.0.1:5060".parse().unwrap()));
        let mut v6 = vec![0x00, 0x20, 0x00, 0x14, 0x00, 0x02];
        v6.extend_from_slice(&(5060u16 ^ 0x2112).to_be_bytes());
        let mut key = MAGIC.to_be_bytes().to_vec();
        key.extend_from_slice(&id);
        let want: [u8; 16] = "2001:db8::1".parse::<Ipv6Addr>().unwrap().octets();
        v6.extend((0..16).map(|i| want[i] ^ key[i]));
        let (_, m) = binding_response(&response(&id, &v6)).unwrap();
        assert_eq!(m, Some("[2001:db8::1]:5060".parse().unwrap()));
    }

    #[test]
    fn refuses_what_is_malformed() {
        let id = [2u8; 12];
        // Length field beyond the datagram, attribute running past the end,
        // a bad family, an error response, a request.
        let mut long = response(&id, &[]);
        long[3] = 8;
        assert_eq!(binding_response(&long), None);
        let past = response(&id, &[0x00, 0x20, 0x00, 0x40, 0, 1, 0, 0]);
        assert_eq!(binding_response(&past), None);
        let family = response(&id, &[0x00, 0x20, 0x00, 0x08, 0, 9, 0, 0, 0, 0, 0, 0]);
        assert_eq!(binding_response(&family), None);
        let mut error = response(&id, &[]);
        error[1] = 0x11;
        assert_eq!(binding_response(&error), None);
        assert_eq!(binding_response(&binding_request(&id)), None);
        for n in 0..20 {
            assert_eq!(binding_response(&response(&id, &[])[..n]), None);
        }
        // No address at all is still a response (the flow answered).
        assert_eq!(binding_response(&response(&id, &[])), Some((id, None)));
    }
}
