//! Transports: which one a next hop asks for, and stream connections (TCP,
//! TLS over rustls) with SIP message framing. UDP needs no state beyond the
//! engine's shared sockets.

use super::message::MAX_MESSAGE;
use super::uri::{Scheme, Uri};
use mio::net::TcpStream;
use rustls::pki_types::ServerName;
use rustls::pki_types::pem::PemObject;
use rustls::{ClientConfig, ClientConnection, RootCertStore};
use std::collections::{HashMap, HashSet};
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

/// A `;transport=` this library does not speak (e.g. sctp, or udp with sips).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnsupportedTransport;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    Udp,
    Tcp,
    Tls,
}

impl Transport {
    /// From `;transport=` of the next hop, or `sips:` (RFC 3261 §18.1.1).
    pub fn for_next_hop(uri: &Uri) -> Result<Transport, UnsupportedTransport> {
        let t = uri
            .param("transport")
            .flatten()
            .map(str::to_ascii_lowercase);
        match (uri.scheme.clone(), t.as_deref()) {
            (Scheme::Sips, None | Some("tcp") | Some("tls")) => Ok(Transport::Tls),
            (Scheme::Sips, Some(_)) => Err(UnsupportedTransport),
            (_, None | Some("udp")) => Ok(Transport::Udp),
            (_, Some("tcp")) => Ok(Transport::Tcp),
            (_, Some("tls")) => Ok(Transport::Tls),
            _ => Err(UnsupportedTransport),
        }
    }

    pub fn via_name(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
        }
    }

    pub fn is_reliable(self) -> bool {
        self != Transport::Udp
    }
}

/// A TLS client configuration: the system's roots plus an optional PEM file
/// of extra anchors (`SIP_KEY_TLS_CA_FILE`). Certificates are always verified.
pub fn tls_config(ca_file: Option<&Path>) -> Result<Arc<ClientConfig>, String> {
    static CACHE: OnceLock<Mutex<HashMap<Option<PathBuf>, Arc<ClientConfig>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    let key = ca_file.map(Path::to_owned);
    if let Some(c) = cache.lock().expect("tls cache").get(&key) {
        return Ok(c.clone());
    }
    let mut roots = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for cert in native.certs {
        let _ = roots.add(cert);
    }
    if let Some(path) = ca_file {
        let iter = rustls::pki_types::CertificateDer::pem_file_iter(path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        for cert in iter {
            let cert = cert.map_err(|e| format!("{}: {e}", path.display()))?;
            roots
                .add(cert)
                .map_err(|e| format!("{}: {e}", path.display()))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let config = Arc::new(config);
    cache.lock().expect("tls cache").insert(key, config.clone());
    Ok(config)
}

/// What became of a stream after I/O.
#[derive(Debug, PartialEq, Eq)]
pub enum StreamState {
    Open,
    Closed,
    /// The peer's certificate was refused: not worth retrying as is.
    CertificateRefused,
}

/// One TCP or TLS connection to a next hop, shared by every registration
/// that goes there.
pub struct StreamConn {
    pub stream: TcpStream,
    tls: Option<ClientConnection>,
    pub peer: SocketAddr,
    pub local: SocketAddr,
    connected: bool,
    out: Vec<u8>,
    inbuf: Vec<u8>,
    pub users: HashSet<u32>,
}

impl StreamConn {
    pub fn connect(
        peer: SocketAddr,
        tls: Option<(Arc<ClientConfig>, String)>,
        iface: Option<&str>,
    ) -> io::Result<StreamConn> {
        let stream = match iface {
            None => TcpStream::connect(peer)?,
            Some(name) => {
                // Bound to the profile's network interface before connecting.
                use socket2::{Domain, Socket, Type};
                let s = Socket::new(Domain::for_address(peer), Type::STREAM, None)?;
                s.bind_device(Some(name.as_bytes()))?;
                s.set_nonblocking(true)?;
                match s.connect(&peer.into()) {
                    Ok(()) => {}
                    Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
                    Err(e) => return Err(e),
                }
                TcpStream::from_std(s.into())
            }
        };
        let local = stream.local_addr()?;
        let tls = match tls {
            Some((config, name)) => {
                let name = ServerName::try_from(name)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
                Some(
                    ClientConnection::new(config, name)
                        .map_err(|e| io::Error::other(e.to_string()))?,
                )
            }
            None => None,
        };
        Ok(StreamConn {
            stream,
            tls,
            peer,
            local,
            connected: false,
            out: Vec::new(),
            inbuf: Vec::new(),
            users: HashSet::new(),
        })
    }

    /// Queues a message and writes what the socket takes now.
    pub fn send(&mut self, data: &[u8]) -> io::Result<()> {
        self.out.extend_from_slice(data);
        if self.connected {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes what the socket takes now. Over TLS, plaintext waits in `out`
    /// until the handshake is done (rustls would buffer it, but only sends
    /// it on a later write).
    fn flush(&mut self) -> io::Result<()> {
        if let Some(tls) = &mut self.tls {
            if !tls.is_handshaking() && !self.out.is_empty() {
                tls.writer().write_all(&self.out)?;
                self.out.clear();
            }
            while tls.wants_write() {
                match tls.write_tls(&mut self.stream) {
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                    Err(e) => return Err(e),
                }
            }
            return Ok(());
        }
        while !self.out.is_empty() {
            match self.stream.write(&self.out) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.out.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// The socket became writable: the connection is up; write what waits.
    pub fn on_writable(&mut self) -> io::Result<()> {
        if !self.connected {
            if let Some(e) = self.stream.take_error()? {
                return Err(e);
            }
            if self.stream.peer_addr().is_err() {
                return Ok(()); // still connecting
            }
            self.connected = true;
        }
        self.flush()
    }

    /// Reads what arrived; complete SIP messages are appended to `msgs`.
    pub fn on_readable(&mut self, msgs: &mut Vec<Vec<u8>>) -> StreamState {
        let mut buf = [0u8; 16_384];
        loop {
            let n = match &mut self.tls {
                Some(tls) => match tls.read_tls(&mut self.stream) {
                    Ok(0) => {
                        crate::log::debug(&format!("TLS {}: closed by peer", self.peer));
                        return StreamState::Closed;
                    }
                    Ok(_) => {
                        if let Err(e) = tls.process_new_packets() {
                            crate::log::error(&format!("TLS with {}: {e}", self.peer));
                            let _ = tls.write_tls(&mut self.stream);
                            return match e {
                                rustls::Error::InvalidCertificate(_) => {
                                    StreamState::CertificateRefused
                                }
                                _ => StreamState::Closed,
                            };
                        }
                        let mut total = 0;
                        loop {
                            match tls.reader().read(&mut buf) {
                                Ok(0) => break,
                                Ok(n) => {
                                    self.inbuf.extend_from_slice(&buf[..n]);
                                    total += n;
                                }
                                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                                Err(e) => {
                                    crate::log::debug(&format!("TLS {}: {e}", self.peer));
                                    return StreamState::Closed;
                                }
                            }
                        }
                        // The handshake may want to answer.
                        if self.flush().is_err() {
                            return StreamState::Closed;
                        }
                        total.max(1)
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => {
                        crate::log::debug(&format!("TLS {}: read: {e}", self.peer));
                        return StreamState::Closed;
                    }
                },
                None => match self.stream.read(&mut buf) {
                    Ok(0) => return StreamState::Closed,
                    Ok(n) => {
                        self.inbuf.extend_from_slice(&buf[..n]);
                        n
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(_) => return StreamState::Closed,
                },
            };
            let _ = n;
            if self.inbuf.len() > 2 * MAX_MESSAGE {
                crate::log::warn(&format!("{}: oversized stream data; closing", self.peer));
                return StreamState::Closed;
            }
        }
        loop {
            match frame(&mut self.inbuf) {
                Frame::Message(m) => msgs.push(m),
                Frame::NeedMore => break,
                Frame::Invalid => {
                    crate::log::warn(&format!("{}: unframeable stream data; closing", self.peer));
                    return StreamState::Closed;
                }
            }
        }
        StreamState::Open
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    Message(Vec<u8>),
    NeedMore,
    Invalid,
}

/// Takes one message off the front of a stream buffer (RFC 3261 §18.3:
/// Content-Length is mandatory on streams). CRLF keep-alives are skipped.
pub fn frame(buf: &mut Vec<u8>) -> Frame {
    let lead = buf
        .iter()
        .take_while(|b| **b == b'\r' || **b == b'\n')
        .count();
    buf.drain(..lead);
    let Some(head_end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return if buf.len() > MAX_MESSAGE {
            Frame::Invalid
        } else {
            Frame::NeedMore
        };
    };
    let head = String::from_utf8_lossy(&buf[..head_end]);
    let mut len = None;
    for line in head.split("\r\n").skip(1) {
        if let Some((name, value)) = line.split_once(':') {
            let name = name.trim();
            if name.eq_ignore_ascii_case("content-length") || name == "l" {
                len = value.trim().parse::<usize>().ok();
                if len.is_none() {
                    return Frame::Invalid;
                }
            }
        }
    }
    let Some(len) = len else {
        return Frame::Invalid;
    };
    // Checked: a hostile Content-Length must not wrap the sum (found by fuzzing).
    let Some(total) = (head_end + 4)
        .checked_add(len)
        .filter(|t| *t <= MAX_MESSAGE)
    else {
        return Frame::Invalid;
    };
    if buf.len() < total {
        return Frame::NeedMore;
    }
    let rest = buf.split_off(total);
    let msg = std::mem::replace(buf, rest);
    Frame::Message(msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transport_from_next_hop() {
        let t = |s: &str| Transport::for_next_hop(&Uri::parse(s).unwrap());
        assert_eq!(t("sip:a.example"), Ok(Transport::Udp));
        assert_eq!(t("sip:a.example;transport=TCP"), Ok(Transport::Tcp));
        assert_eq!(t("sip:a.example;transport=tls"), Ok(Transport::Tls));
        assert_eq!(t("sips:a.example"), Ok(Transport::Tls));
        assert_eq!(t("sips:a.example;transport=udp"), Err(UnsupportedTransport));
        assert_eq!(t("sip:a.example;transport=sctp"), Err(UnsupportedTransport));
    }

    #[test]
    fn interfaces_by_name_and_index() {
        assert_eq!(interface_name(None, 0), Ok(None));
        assert_eq!(interface_name(Some("lo"), 0), Ok(Some("lo".into())));
        assert_eq!(interface_name(Some(""), 1), Ok(Some("lo".into())));
        assert_eq!(
            interface_name(Some("no-such-if0"), 0),
            Err(UnknownInterface)
        );
        assert_eq!(interface_name(Some("../etc"), 0), Err(UnknownInterface));
        assert_eq!(interface_name(None, 999_999), Err(UnknownInterface));
    }

    #[test]
    fn frames_stream_messages() {
        let mut b = b"\r\n\r\nSIP/2.0 200 OK\r\nContent-Length: 2\r\n\r\nhiSIP/2.0 100 Trying\r\nl: 0\r\n\r\nSIP/2.0"
            .to_vec();
        assert!(matches!(frame(&mut b), Frame::Message(m) if m.ends_with(b"hi")));
        assert!(matches!(frame(&mut b), Frame::Message(m) if m.starts_with(b"SIP/2.0 100")));
        assert_eq!(frame(&mut b), Frame::NeedMore);
        let mut bad = b"SIP/2.0 200 OK\r\nVia: x\r\n\r\n".to_vec();
        assert_eq!(frame(&mut bad), Frame::Invalid);
        let mut huge = b"SIP/2.0 200 OK\r\nContent-Length: 999999\r\n\r\n".to_vec();
        assert_eq!(frame(&mut huge), Frame::Invalid);
        // Found by fuzzing: a Content-Length that overflows the sum.
        let mut wrap =
            b"SIP/2.0 503  2\r\nContent-Length: 0000018446744073709551615\r\n\r\n".to_vec();
        assert_eq!(frame(&mut wrap), Frame::Invalid);
    }
}

/// The network interface a profile's traffic must use (contract §7.6): the
/// name (`SIP_KEY_ACCESS_POINT_NAME`) or the index (`SIP_KEY_ACCESS_POINT_ID`);
/// `Ok(None)` when neither is set, `Err` when no such interface exists.
pub fn interface_name(name: Option<&str>, index: u32) -> Result<Option<String>, UnknownInterface> {
    let sys = Path::new("/sys/class/net");
    if let Some(n) = name.filter(|n| !n.is_empty()) {
        let valid = !n.contains(['/', '\0']) && n != "." && n != "..";
        return if valid && sys.join(n).exists() {
            Ok(Some(n.to_owned()))
        } else {
            Err(UnknownInterface)
        };
    }
    if index == 0 {
        return Ok(None);
    }
    for entry in std::fs::read_dir(sys)
        .map_err(|_| UnknownInterface)?
        .flatten()
    {
        let idx = std::fs::read_to_string(entry.path().join("ifindex")).unwrap_or_default();
        if idx.trim().parse::<u32>() == Ok(index) {
            return Ok(Some(entry.file_name().to_string_lossy().into_owned()));
        }
    }
    Err(UnknownInterface)
}

/// `SIP_KEY_ACCESS_POINT_*` names no network interface of this machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownInterface;
