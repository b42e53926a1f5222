//! The engine's connections: its UDP sockets (one per address family and
//! network interface, shared by every registration) and its stream flows
//! (TCP, TLS: one per next hop, shared by the registrations going there).
//! Everything the engine sends or receives passes through [`Connections`],
//! so a new transport touches this file (and transport.rs for its framing).
//!
//! Flows are kept alive here too (RFC 5626 §4.4): a CRLF ping on stream
//! flows, whose pong is any data heard back; a STUN Binding request on UDP
//! flows (a registrar's address from one of our sockets). A flow that has
//! answered before (or whose registrar took it as an outbound flow) and
//! then misses an answer has failed.

use super::registration::RegConfig;
use super::stun;
use super::transport::{StreamConn, StreamState, Transport, tls_config};
use crate::log;
use mio::net::UdpSocket;
use mio::{Interest, Registry, Token};
use std::collections::{HashMap, HashSet};
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Tokens below this are the engine's own (its waker, and the like).
const FIRST_CONNECTION_TOKEN: usize = 16;

/// Socket buffers asked for (the kernel caps them at net.core.*mem_max).
const SOCKET_BUFFER: usize = 4 << 20;

/// A UDP socket per (IPv6?, network interface the profile is bound to).
type UdpKey = (bool, Option<String>);

/// Stream flows are shared by registrations with the same next hop.
type StreamKey = (
    Transport,
    SocketAddr,
    Option<String>,
    Option<std::path::PathBuf>,
    Option<String>,
);

/// Where a message came from, so that an answer goes back the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A datagram on the UDP socket of this token, from this peer.
    Datagram(Token, SocketAddr),
    /// A message on the stream flow of this token, from this peer.
    Stream(Token, SocketAddr),
}

impl Origin {
    pub fn peer(&self) -> SocketAddr {
        match self {
            Origin::Datagram(_, p) | Origin::Stream(_, p) => *p,
        }
    }

    /// The Via transport a request arriving this way was sent over.
    pub fn is_stream(&self) -> bool {
        matches!(self, Origin::Stream(..))
    }
}

/// What one read of a UDP socket gave.
pub enum Datagram {
    /// `n` bytes of the buffer, from this origin.
    Received(usize, Origin),
    /// A read error (ICMP errors surface here on Linux), or a keep-alive
    /// answer taken care of here: read again.
    Failed,
    /// A keep-alive answer says the NAT maps the flow anew: these profiles
    /// must register again.
    Remapped(Vec<u32>),
    /// Nothing more to read until the next readiness.
    Empty,
}

/// A flow to keep alive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Flow {
    Stream(Token),
    /// To this address, from our UDP socket on this interface.
    Datagram(SocketAddr, Option<String>),
}

/// A flow found dead by its keep-alives.
#[derive(Debug, PartialEq, Eq)]
pub enum FlowFailure {
    /// Close it: its users register again on a new one.
    Stream(Token),
    /// These profiles register again.
    Datagram(Vec<u32>),
}

struct KeepAlive {
    period: Duration,
    next: Instant,
    /// When the answer to the last ping is due, and when that ping went.
    waiting: Option<(Instant, Instant)>,
    last_heard: Option<Instant>,
    /// An answer is required: the registrar took it as an outbound flow,
    /// or it has answered a ping before.
    expect: bool,
    stun_id: stun::TransactionId,
    mapped: Option<SocketAddr>,
}

impl KeepAlive {
    fn new(period: Duration, expect: bool) -> KeepAlive {
        KeepAlive {
            period,
            next: Instant::now() + jitter(period),
            waiting: None,
            last_heard: None,
            expect,
            stun_id: [0; 12],
            mapped: None,
        }
    }

    fn update(&mut self, period: Duration, expect: bool) {
        self.expect |= expect;
        if period < self.period {
            self.period = period;
            self.next = self.next.min(Instant::now() + jitter(period));
        }
    }

    fn due(&self) -> Instant {
        self.waiting.map_or(self.next, |(d, _)| d)
    }

    /// Was the last ping answered in time? `false` once it is late.
    fn check(&mut self, now: Instant) -> bool {
        let Some((deadline, sent)) = self.waiting else {
            return true;
        };
        if self.last_heard.is_some_and(|h| h >= sent) {
            self.waiting = None;
            self.expect = true;
            return true;
        }
        if now < deadline {
            return true;
        }
        self.waiting = None;
        !self.expect
    }
}

/// 80–100 % of the period (RFC 5626 §4.4.1), so that flows opened together
/// do not ping together.
fn jitter(period: Duration) -> Duration {
    period.mul_f64(crate::random::uniform(0.8, 1.0))
}

struct DatagramFlow {
    users: HashSet<u32>,
    alive: KeepAlive,
}

/// What became of a stream flow after its readiness was worked through.
pub struct StreamReady {
    pub messages: Vec<Vec<u8>>,
    pub origin: Origin,
    pub state: StreamState,
}

pub struct Connections {
    registry: Registry,
    stream_alive: HashMap<Token, KeepAlive>,
    datagram_flows: HashMap<(SocketAddr, Option<String>), DatagramFlow>,
    flow_of: HashMap<u32, (SocketAddr, Option<String>)>,
    udp: HashMap<UdpKey, (Token, UdpSocket)>,
    udp_tokens: HashMap<Token, UdpKey>,
    streams: HashMap<Token, StreamConn>,
    stream_index: HashMap<StreamKey, Token>,
    next_token: usize,
    local_cache: HashMap<(SocketAddr, Option<String>), SocketAddr>,
}

impl Connections {
    /// `registry` is the engine's poll, which every socket joins.
    pub fn new(registry: Registry) -> Connections {
        Connections {
            registry,
            stream_alive: HashMap::new(),
            datagram_flows: HashMap::new(),
            flow_of: HashMap::new(),
            udp: HashMap::new(),
            udp_tokens: HashMap::new(),
            streams: HashMap::new(),
            stream_index: HashMap::new(),
            next_token: FIRST_CONNECTION_TOKEN,
            local_cache: HashMap::new(),
        }
    }

    /// Stream flows open now.
    pub fn stream_count(&self) -> usize {
        self.streams.len()
    }

    /// Is `token` one of the UDP sockets?
    pub fn is_datagram(&self, token: Token) -> bool {
        self.udp_tokens.contains_key(&token)
    }

    /// Reads one datagram of the socket `token` into `buf` (mio's readiness
    /// is edge-triggered: read until [`Datagram::Empty`]).
    pub fn receive(&mut self, token: Token, buf: &mut [u8]) -> Datagram {
        let Some(key) = self.udp_tokens.get(&token) else {
            return Datagram::Empty;
        };
        let iface = key.1.clone();
        let Some(sock) = self.udp.get(key) else {
            return Datagram::Empty;
        };
        match sock.1.recv_from(buf) {
            Ok((n, from)) if stun::is_stun(&buf[..n]) => self.on_stun(&buf[..n], from, iface),
            Ok((n, from)) => Datagram::Received(n, Origin::Datagram(token, from)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Datagram::Empty,
            Err(e) => {
                // Matched to nothing: the transaction times out and retries.
                log::debug(&format!("receive error: {e}"));
                Datagram::Failed
            }
        }
    }

    /// A STUN answer on a UDP flow: the flow is alive; a new mapped address
    /// means the NAT in between forgot us.
    fn on_stun(&mut self, data: &[u8], from: SocketAddr, iface: Option<String>) -> Datagram {
        let Some((id, mapped)) = stun::binding_response(data) else {
            return Datagram::Failed;
        };
        let Some(flow) = self.datagram_flows.get_mut(&(from, iface)) else {
            return Datagram::Failed;
        };
        if flow.alive.stun_id != id {
            return Datagram::Failed; // not our last request's answer
        }
        let now = Instant::now();
        flow.alive.last_heard = Some(now);
        flow.alive.check(now);
        let before = flow.alive.mapped;
        if mapped.is_some() {
            flow.alive.mapped = mapped;
        }
        match (before, mapped) {
            (Some(a), Some(b)) if a != b => {
                log::info(&format!("flow to {from}: now seen from {b}, not {a}"));
                Datagram::Remapped(flow.users.iter().copied().collect())
            }
            _ => Datagram::Failed,
        }
    }

    /// Keeps `flow` alive for profile `id`: a ping about every `period`;
    /// `expect`: the registrar took it as an outbound flow (RFC 5626), so
    /// a missed answer is a failure from the first ping on.
    pub fn keep_alive(&mut self, id: u32, flow: Flow, period: Duration, expect: bool) {
        log::debug(&format!(
            "profile {id}: keep-alive of {flow:?} every {period:?}{}",
            if expect { ", answers required" } else { "" }
        ));
        match flow {
            Flow::Stream(token) => {
                if !self.streams.contains_key(&token) {
                    return;
                }
                self.stream_alive
                    .entry(token)
                    .and_modify(|k| k.update(period, expect))
                    .or_insert_with(|| KeepAlive::new(period, expect));
            }
            Flow::Datagram(dest, iface) => {
                let key = (dest, iface);
                if self.flow_of.get(&id).is_some_and(|k| *k != key) {
                    self.leave(id);
                }
                let f = self
                    .datagram_flows
                    .entry(key.clone())
                    .or_insert_with(|| DatagramFlow {
                        users: HashSet::new(),
                        alive: KeepAlive::new(period, expect),
                    });
                f.alive.update(period, expect);
                f.users.insert(id);
                self.flow_of.insert(id, key);
            }
        }
    }

    /// Profile `id` no longer uses its UDP flow (stream flows: `release`).
    pub fn leave(&mut self, id: u32) {
        let Some(key) = self.flow_of.remove(&id) else {
            return;
        };
        if let Some(f) = self.datagram_flows.get_mut(&key) {
            f.users.remove(&id);
            if f.users.is_empty() {
                self.datagram_flows.remove(&key);
            }
        }
    }

    /// When the next keep-alive is due.
    pub fn next_keep_alive(&self) -> Option<Instant> {
        self.stream_alive
            .values()
            .chain(self.datagram_flows.values().map(|f| &f.alive))
            .map(KeepAlive::due)
            .min()
    }

    /// Sends the pings due and returns the flows whose answer is late;
    /// an answer is due within `answer_within`.
    pub fn keep_alives(&mut self, answer_within: Duration) -> Vec<FlowFailure> {
        let now = Instant::now();
        let mut failed = Vec::new();
        let tokens: Vec<Token> = self.stream_alive.keys().copied().collect();
        for token in tokens {
            let Some(ka) = self.stream_alive.get_mut(&token) else {
                continue;
            };
            if !ka.check(now) {
                failed.push(FlowFailure::Stream(token));
                continue;
            }
            // One ping at a time: the next after its answer (or failure).
            if now < ka.next || ka.waiting.is_some() {
                continue;
            }
            ka.next = now + jitter(ka.period);
            ka.waiting = Some((now + answer_within, now));
            log::log(log::TRACE, &format!("keep-alive ping on {token:?}"));
            // RFC 5626 §4.4.1: a double CRLF ping; the pong is a CRLF.
            if let Some(conn) = self.streams.get_mut(&token)
                && conn.send(b"\r\n\r\n").is_err()
            {
                failed.push(FlowFailure::Stream(token));
            }
        }
        let keys: Vec<_> = self.datagram_flows.keys().cloned().collect();
        for key in keys {
            let Some(f) = self.datagram_flows.get_mut(&key) else {
                continue;
            };
            if !f.alive.check(now) {
                log::info(&format!("flow to {}: no answer to its keep-alive", key.0));
                failed.push(FlowFailure::Datagram(f.users.iter().copied().collect()));
                f.alive.next = now + jitter(f.alive.period);
                continue;
            }
            if now < f.alive.next || f.alive.waiting.is_some() {
                continue;
            }
            f.alive.next = now + jitter(f.alive.period);
            f.alive.waiting = Some((now + answer_within, now));
            crate::random::fill(&mut f.alive.stun_id);
            let request = stun::binding_request(&f.alive.stun_id);
            let (dest, iface) = key;
            if let Err(e) = self.send_datagram(dest, iface.as_deref(), &request) {
                log::debug(&format!("keep-alive to {dest}: {e}"));
            }
        }
        failed
    }

    /// Sends a datagram to `dest` from the shared socket of its family and
    /// interface.
    pub fn send_datagram(
        &mut self,
        dest: SocketAddr,
        iface: Option<&str>,
        data: &[u8],
    ) -> io::Result<()> {
        self.socket(dest.is_ipv6(), iface)?
            .1
            .send_to(data, dest)
            .map(|_| ())
    }

    /// Sends on the stream flow `token`.
    pub fn send_stream(&mut self, token: Token, data: &[u8]) -> io::Result<()> {
        match self.streams.get_mut(&token) {
            Some(c) => c.send(data),
            None => Err(io::ErrorKind::NotConnected.into()),
        }
    }

    /// Answers a message the way it came.
    pub fn reply(&mut self, origin: Origin, data: &[u8]) -> io::Result<()> {
        match origin {
            Origin::Datagram(token, peer) => {
                let Some(sock) = self.udp_tokens.get(&token).and_then(|k| self.udp.get(k)) else {
                    return Err(io::ErrorKind::NotConnected.into());
                };
                sock.1.send_to(data, peer).map(|_| ())
            }
            Origin::Stream(token, _) => self.send_stream(token, data),
        }
    }

    /// The address our UDP socket is seen from when sending to `dest`.
    pub fn local_addr_for(
        &mut self,
        dest: SocketAddr,
        iface: Option<&str>,
    ) -> io::Result<SocketAddr> {
        let sock_port = self.socket(dest.is_ipv6(), iface)?.1.local_addr()?.port();
        if let Some(ip) = self.local_cache.get(&(dest, iface.map(str::to_owned))) {
            return Ok(SocketAddr::new(ip.ip(), sock_port));
        }
        let probe = udp_socket(dest.is_ipv6(), iface)?;
        probe.connect(dest)?;
        let ip = probe.local_addr()?;
        self.local_cache
            .insert((dest, iface.map(str::to_owned)), ip);
        Ok(SocketAddr::new(ip.ip(), sock_port))
    }

    /// The network changed: which address goes where is asked anew.
    pub fn forget_routes(&mut self) {
        self.local_cache.clear();
    }

    fn socket(&mut self, v6: bool, iface: Option<&str>) -> io::Result<&(Token, UdpSocket)> {
        let key: UdpKey = (v6, iface.map(str::to_owned));
        if !self.udp.contains_key(&key) {
            let mut s = UdpSocket::from_std(udp_socket(v6, iface)?);
            let token = self.new_token();
            self.registry.register(&mut s, token, Interest::READABLE)?;
            self.udp_tokens.insert(token, key.clone());
            self.udp.insert(key.clone(), (token, s));
        }
        Ok(&self.udp[&key])
    }

    fn new_token(&mut self) -> Token {
        let t = Token(self.next_token);
        self.next_token += 1;
        t
    }

    /// The stream flow to `dest` for `cfg`'s next hop, used by profile `id`:
    /// an open one if any (shared across profiles), else a new one
    /// (connecting).
    pub fn stream(&mut self, id: u32, cfg: &RegConfig, dest: SocketAddr) -> io::Result<Token> {
        let tls_name =
            (cfg.transport == Transport::Tls).then(|| cfg.next_hop().host_unbracketed().to_owned());
        let key: StreamKey = (
            cfg.transport,
            dest,
            tls_name.clone(),
            cfg.tls_ca_file.clone(),
            cfg.interface.clone(),
        );
        if let Some(tok) = self.stream_index.get(&key)
            && let Some(c) = self.streams.get_mut(tok)
        {
            c.users.insert(id);
            return Ok(*tok);
        }
        let tls = match tls_name {
            Some(name) => {
                let config = tls_config(cfg.tls_ca_file.as_deref()).map_err(|e| {
                    log::error(&format!("TLS configuration: {e}"));
                    io::Error::other(e)
                })?;
                Some((config, name))
            }
            None => None,
        };
        let mut conn = StreamConn::connect(dest, tls, cfg.interface.as_deref())?;
        let tok = self.new_token();
        self.registry.register(
            &mut conn.stream,
            tok,
            Interest::READABLE | Interest::WRITABLE,
        )?;
        conn.users.insert(id);
        log::debug(&format!(
            "{} connection to {dest} from {}",
            cfg.transport.via_name(),
            conn.local
        ));
        self.streams.insert(tok, conn);
        self.stream_index.insert(key, tok);
        Ok(tok)
    }

    /// Our address on the stream flow `token`.
    pub fn stream_local(&self, token: Token) -> Option<SocketAddr> {
        self.streams.get(&token).map(|c| c.local)
    }

    /// Closes the stream flow `token`; returns the profiles that used it.
    pub fn close(&mut self, token: Token, state: &StreamState) -> Vec<u32> {
        let Some(mut conn) = self.streams.remove(&token) else {
            return Vec::new();
        };
        let _ = self.registry.deregister(&mut conn.stream);
        self.stream_index.retain(|_, t| *t != token);
        self.stream_alive.remove(&token);
        log::info(&format!("connection to {} closed ({state:?})", conn.peer));
        conn.users.into_iter().collect()
    }

    /// Profile `id` no longer uses the stream flow `token`: closed once
    /// nobody does.
    pub fn release(&mut self, id: u32, token: Option<Token>) {
        let Some(token) = token else { return };
        let empty = match self.streams.get_mut(&token) {
            Some(c) => {
                c.users.remove(&id);
                c.users.is_empty()
            }
            None => false,
        };
        if empty {
            if let Some(mut c) = self.streams.remove(&token) {
                let _ = self.registry.deregister(&mut c.stream);
            }
            self.stream_index.retain(|_, t| *t != token);
            self.stream_alive.remove(&token);
        }
    }

    /// Works through a stream flow's readiness: writes what waits, reads
    /// what arrived. `None` for a flow already gone.
    pub fn stream_ready(
        &mut self,
        token: Token,
        writable: bool,
        readable: bool,
    ) -> Option<StreamReady> {
        let conn = self.streams.get_mut(&token)?;
        let mut messages = Vec::new();
        let mut state = StreamState::Open;
        if writable && let Err(e) = conn.on_writable() {
            log::warn(&format!("connection to {}: {e}", conn.peer));
            state = StreamState::Closed;
        }
        if readable && state == StreamState::Open {
            state = conn.on_readable(&mut messages);
            // Data came back: a pong, or a message; either way it lives.
            if let Some(ka) = self.stream_alive.get_mut(&token) {
                let now = Instant::now();
                ka.last_heard = Some(now);
                ka.check(now);
            }
        }
        Some(StreamReady {
            messages,
            origin: Origin::Stream(token, conn.peer),
            state,
        })
    }
}

/// A non-blocking UDP socket, bound to a network interface when asked
/// (`SIP_KEY_ACCESS_POINT_*`, contract §7.6), with large buffers.
fn udp_socket(v6: bool, iface: Option<&str>) -> io::Result<std::net::UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let s = Socket::new(
        if v6 { Domain::IPV6 } else { Domain::IPV4 },
        Type::DGRAM,
        Some(Protocol::UDP),
    )?;
    if let Some(name) = iface {
        s.bind_device(Some(name.as_bytes()))?;
    }
    s.set_nonblocking(true)?;
    let _ = s.set_recv_buffer_size(SOCKET_BUFFER);
    let _ = s.set_send_buffer_size(SOCKET_BUFFER);
    let any: SocketAddr = if v6 { "[::]:0" } else { "0.0.0.0:0" }
        .parse()
        .expect("literal");
    s.bind(&any.into())?;
    Ok(s.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ping_is_answered_by_anything_heard_after_it() {
        let t0 = Instant::now();
        let mut ka = KeepAlive::new(Duration::from_secs(1), false);
        // Not expected yet: silence is no failure, and nothing is learned.
        ka.waiting = Some((t0 + Duration::from_secs(10), t0));
        assert!(ka.check(t0 + Duration::from_secs(11)));
        assert!(!ka.expect);
        // Heard after the ping: answered; from now on answers are expected.
        let t1 = t0 + Duration::from_secs(20);
        ka.waiting = Some((t1 + Duration::from_secs(10), t1));
        ka.last_heard = Some(t1 + Duration::from_millis(5));
        assert!(ka.check(t1 + Duration::from_millis(6)));
        assert!(ka.expect && ka.waiting.is_none());
        // Heard only before the next ping, and now late: failed.
        let t2 = t1 + Duration::from_secs(20);
        ka.waiting = Some((t2 + Duration::from_secs(10), t2));
        assert!(ka.check(t2 + Duration::from_secs(9)));
        assert!(!ka.check(t2 + Duration::from_secs(10)));
        // An outbound flow fails at its first missed answer.
        let mut ob = KeepAlive::new(Duration::from_secs(1), true);
        ob.waiting = Some((t0, t0));
        assert!(!ob.check(t0));
        // A shorter period is taken at once; a longer one is not.
        let mut ka = KeepAlive::new(Duration::from_secs(100), false);
        ka.update(Duration::from_secs(10), false);
        assert!(ka.next <= Instant::now() + Duration::from_secs(10));
        ka.update(Duration::from_secs(50), false);
        assert_eq!(ka.period, Duration::from_secs(10));
    }
}
