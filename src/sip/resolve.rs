//! Finding a next hop's address.

use super::uri::{Scheme, Uri};
use std::net::{SocketAddr, ToSocketAddrs};

/// The next hop's address: an IP literal directly, a name through the
/// system resolver (A/AAAA). Default port 5060, 5061 for `sips:`.
pub fn resolve(uri: &Uri) -> Result<SocketAddr, i32> {
    let port = uri.port.unwrap_or(match uri.scheme {
        Scheme::Sips => 5061,
        _ => 5060,
    });
    let host = uri.host_unbracketed();
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    (host, port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or(crate::error::SIP_RESOLVING_FAILURE)
}
