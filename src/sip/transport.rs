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
    framer: Framer,
    pub users: HashSet<u32>,
}

/// The most bytes waiting to be written on one connection. A peer that
/// does not read gets its connection closed, each profile on it a
/// transport error, rather than memory without end. 2 MiB: about 3,000
/// REGISTERs, more than the engine ever has in flight at once
/// (`MAX_STARTING` + refreshes), after the kernel's own buffers filled.
pub(crate) const MAX_OUTGOING: usize = 2 << 20;

/// The error of [`StreamConn::send`] when [`MAX_OUTGOING`] would be passed.
#[derive(Debug)]
pub struct OutgoingFull;

impl std::fmt::Display for OutgoingFull {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the peer is not reading: {MAX_OUTGOING} bytes wait to be sent"
        )
    }
}

impl std::error::Error for OutgoingFull {}

/// Is this error [`OutgoingFull`]? (The connection must then be closed.)
pub fn is_outgoing_full(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|i| i.is::<OutgoingFull>())
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
            framer: Framer::default(),
            users: HashSet::new(),
        })
    }

    /// Queues a message and writes what the socket takes now; an
    /// [`OutgoingFull`] error, nothing queued, when [`MAX_OUTGOING`] bytes
    /// would wait.
    pub fn send(&mut self, data: &[u8]) -> io::Result<()> {
        if self.out.len() + data.len() > MAX_OUTGOING {
            return Err(io::Error::other(OutgoingFull));
        }
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
            // rustls takes plaintext only up to its own buffer limit: what
            // it does not take waits in `out` (and counts against the limit).
            loop {
                let mut progress = false;
                if !tls.is_handshaking() && !self.out.is_empty() {
                    let n = tls.writer().write(&self.out)?;
                    self.out.drain(..n);
                    progress |= n > 0;
                }
                while tls.wants_write() {
                    match tls.write_tls(&mut self.stream) {
                        Ok(0) => break,
                        Ok(_) => progress = true,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                        Err(e) => return Err(e),
                    }
                }
                if !progress || self.out.is_empty() {
                    return Ok(());
                }
            }
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

    /// Reads what arrived; complete SIP messages are appended to `msgs` as
    /// each chunk arrives, so the size limit applies to one message, not to
    /// a burst of many (issue 15).
    pub fn on_readable(&mut self, msgs: &mut Vec<Vec<u8>>) -> StreamState {
        let mut buf = [0u8; 16_384];
        loop {
            match &mut self.tls {
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
                        loop {
                            match tls.reader().read(&mut buf) {
                                Ok(0) => break,
                                Ok(n) => {
                                    if !take_frames(&mut self.framer, &buf[..n], self.peer, msgs) {
                                        return StreamState::Closed;
                                    }
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
                        if !take_frames(&mut self.framer, &buf[..n], self.peer, msgs) {
                            return StreamState::Closed;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(_) => return StreamState::Closed,
                },
            }
        }
        StreamState::Open
    }
}

/// Adds `data` to the framer and takes every complete message out; false
/// (logged) when the stream cannot be framed (a message over the limit).
fn take_frames(
    framer: &mut Framer,
    data: &[u8],
    peer: SocketAddr,
    msgs: &mut Vec<Vec<u8>>,
) -> bool {
    framer.push(data);
    loop {
        match framer.next_frame() {
            Frame::Message(m) => msgs.push(m),
            Frame::NeedMore => return true,
            Frame::Invalid => {
                crate::log::warn(&format!(
                    "{peer}: unframeable or oversized stream data; closing"
                ));
                return false;
            }
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    Message(Vec<u8>),
    NeedMore,
    Invalid,
}

/// Splits SIP messages out of a stream (RFC 3261 §18.3: Content-Length is
/// mandatory on streams); CRLF keep-alives between messages are skipped.
/// Linear in the bytes received however they are split: the search for the
/// end of a head resumes where it stopped, a head is parsed once, and
/// framed messages leave the buffer once per `push`, not once each.
#[derive(Debug, Default)]
pub struct Framer {
    buf: Vec<u8>,
    /// Where the message being framed starts in `buf`.
    start: usize,
    /// How far past `start` the search for the blank line has got.
    scanned: usize,
    /// The length of the message at `start`, once its head is known.
    total: Option<usize>,
    /// Bytes examined so far (searching, parsing heads): for tests that
    /// the work stays linear.
    pub examined: u64,
}

impl Framer {
    pub fn push(&mut self, data: &[u8]) {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(data);
    }

    /// Bytes held that are not yet a whole message.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// The next whole message, if one has arrived.
    pub fn next_frame(&mut self) -> Frame {
        if self.total.is_none() && self.scanned == 0 {
            let lead = self.buf[self.start..]
                .iter()
                .take_while(|b| **b == b'\r' || **b == b'\n')
                .count();
            self.examined += lead as u64;
            self.start += lead;
        }
        let avail = &self.buf[self.start..];
        let total = match self.total {
            Some(t) => t,
            None => {
                // Resume 3 bytes back: the blank line may straddle chunks.
                let from = self.scanned.saturating_sub(3);
                let Some(at) = find_blank_line(&avail[from..]) else {
                    self.examined += (avail.len() - from) as u64;
                    self.scanned = avail.len();
                    return if avail.len() > MAX_MESSAGE {
                        Frame::Invalid
                    } else {
                        Frame::NeedMore
                    };
                };
                let head_end = from + at;
                self.examined += (at + 4 + head_end) as u64;
                let Some(total) = message_length(&avail[..head_end]) else {
                    return Frame::Invalid;
                };
                self.total = Some(total);
                total
            }
        };
        if avail.len() < total {
            return Frame::NeedMore;
        }
        let msg = avail[..total].to_vec();
        self.start += total;
        self.scanned = 0;
        self.total = None;
        Frame::Message(msg)
    }
}

fn find_blank_line(b: &[u8]) -> Option<usize> {
    b.windows(4).position(|w| w == b"\r\n\r\n")
}

/// Head plus body length from a message head (without the blank line);
/// None when Content-Length is missing or bad, or the whole is over the
/// limit.
fn message_length(head: &[u8]) -> Option<usize> {
    let head_end = head.len();
    let head = String::from_utf8_lossy(head);
    let mut len = None;
    for line in head.split("\r\n").skip(1) {
        if let Some((name, value)) = line.split_once(':') {
            let name = name.trim();
            if name.eq_ignore_ascii_case("content-length") || name == "l" {
                len = Some(value.trim().parse::<usize>().ok()?);
            }
        }
    }
    // Checked: a hostile Content-Length must not wrap the sum (found by fuzzing).
    (head_end + 4)
        .checked_add(len?)
        .filter(|t| *t <= MAX_MESSAGE)
}

/// Takes one message off the front of `buf` (for callers holding a plain
/// buffer: the fuzz target); see [`Framer`].
pub fn frame(buf: &mut Vec<u8>) -> Frame {
    let mut f = Framer {
        buf: std::mem::take(buf),
        ..Framer::default()
    };
    let r = f.next_frame();
    *buf = f.buf.split_off(f.start);
    r
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

    /// A valid response of exactly 450 bytes, numbered.
    fn response_450(i: usize) -> Vec<u8> {
        let head = format!(
            "SIP/2.0 200 OK\r\nVia: SIP/2.0/TCP 127.0.0.1:5062;branch=z9hG4bK{i:08}\r\n\
             From: <sip:alice@example.com>;tag=f1\r\nTo: <sip:alice@example.com>;tag=t1\r\n\
             Call-ID: burst-{i:08}\r\nCSeq: 1 REGISTER\r\nContent-Length: 0\r\n"
        );
        let pad = 450 - head.len() - "X-Pad: \r\n\r\n".len();
        let m = format!("{head}X-Pad: {}\r\n\r\n", "p".repeat(pad));
        assert_eq!(m.len(), 450);
        m.into_bytes()
    }

    #[test]
    fn a_burst_of_many_messages_is_not_one_oversized_message() {
        let burst: Vec<u8> = (0..1000).flat_map(response_450).collect();
        assert!(burst.len() > 2 * MAX_MESSAGE);
        let mut f = Framer::default();
        f.push(&burst);
        let mut n = 0;
        while let Frame::Message(m) = f.next_frame() {
            assert_eq!(m, response_450(n));
            n += 1;
        }
        assert_eq!(n, 1000);
        assert_eq!(f.buffered(), 0);
        // Each byte examined about twice (searched, then its head parsed).
        assert!(f.examined <= 2 * burst.len() as u64, "{}", f.examined);
    }

    #[test]
    fn byte_at_a_time_is_linear() {
        let data: Vec<u8> = (0..200)
            .flat_map(|i| {
                let mut m = b"\r\n".to_vec(); // a keep-alive between messages
                m.extend(response_450(i));
                m
            })
            .collect();
        let mut f = Framer::default();
        let mut n = 0;
        for b in &data {
            f.push(std::slice::from_ref(b));
            while let Frame::Message(m) = f.next_frame() {
                assert_eq!(m, response_450(n));
                n += 1;
            }
        }
        assert_eq!(n, 200);
        // Linear: a few looks per byte (resuming 3 back, then the head once),
        // where rescanning the buffer on each byte took ~450/2 per byte.
        let per_byte = f.examined as f64 / data.len() as f64;
        eprintln!("examined {per_byte:.2} bytes per byte received");
        assert!(
            per_byte < 6.0,
            "{per_byte} bytes examined per byte received"
        );
    }

    #[test]
    fn one_message_over_the_limit_is_still_refused() {
        let mut f = Framer::default();
        f.push(&vec![b'x'; MAX_MESSAGE + 1]);
        assert_eq!(f.next_frame(), Frame::Invalid);
        let mut f = Framer::default();
        f.push(b"SIP/2.0 200 OK\r\nContent-Length: 65535\r\n\r\n");
        assert_eq!(f.next_frame(), Frame::Invalid);
    }

    /// A connected plain-TCP `StreamConn` and the listener's side of it.
    fn connected_pair() -> (StreamConn, std::net::TcpStream) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut conn = StreamConn::connect(listener.local_addr().unwrap(), None, None).unwrap();
        let (peer, _) = listener.accept().unwrap();
        for _ in 0..100 {
            conn.on_writable().unwrap();
            if conn.connected {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(conn.connected);
        (conn, peer)
    }

    #[test]
    fn a_burst_on_a_connection_keeps_it_open() {
        let (mut conn, mut peer) = connected_pair();
        let burst: Vec<u8> = (0..1000).flat_map(response_450).collect();
        let writer = std::thread::spawn(move || {
            peer.write_all(&burst).unwrap();
            peer
        });
        let mut msgs = Vec::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while msgs.len() < 1000 && std::time::Instant::now() < deadline {
            assert_eq!(conn.on_readable(&mut msgs), StreamState::Open);
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert_eq!(msgs.len(), 1000);
        drop(writer.join());
    }

    #[test]
    fn a_peer_that_does_not_read_hits_the_outgoing_limit() {
        let (mut conn, _peer) = connected_pair();
        let register = vec![b'R'; 700];
        let mut sent = 0usize;
        let err = loop {
            match conn.send(&register) {
                Ok(()) => sent += register.len(),
                Err(e) => break e,
            }
            assert!(conn.out.len() <= MAX_OUTGOING);
            // Kernel buffers on loopback hold a few MiB at most.
            assert!(sent < 256 << 20, "no limit after {sent} bytes");
        };
        assert!(is_outgoing_full(&err), "{err}");
        assert!(conn.out.len() + register.len() > MAX_OUTGOING);
        assert!(!is_outgoing_full(&io::Error::other("x")));
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
