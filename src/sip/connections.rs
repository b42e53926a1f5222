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
//!
//! How long an answer is waited for follows the flow's round-trip time
//! ([`Rtt`], from earlier answers and the REGISTER that bound the flow):
//! four intervals of max(200 ms, RTO), T1 standing for the RTO until one
//! is measured, never more than RFC 5626's 10 s ([`answer_window`]); a
//! STUN request goes again after one and three intervals. On loopback or
//! a LAN that is 800 ms (2 s at the default T1 before anything is
//! measured), on a 100 ms path with 25 ms of jitter 800 ms, on a 300 ms
//! one with 100 ms of jitter 2.8 s. So a registration whose flow dies
//! without a word is bound again on a new flow at most P + W + R after:
//! P the keep-alive period (the last answered ping may have gone just
//! before), W that window, R the new flow's set-up and REGISTER round
//! trips (the engine registers again at once, [`FlowFailure`]).

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

/// An answer is never waited for longer than this (RFC 5626 §4.4.1: a
/// flow with no pong within 10 s has failed).
pub const MAX_ANSWER_WAIT: Duration = Duration::from_secs(10);

/// The shortest wait for a keep-alive's answer before it is sent again
/// (UDP) or counted as lost once (TCP). Linux resends a lost TCP segment
/// after at least 200 ms (TCP_RTO_MIN), so a shorter wait on a stream
/// would call a flow dead while the kernel is still repairing one loss;
/// on UDP it leaves room for a peer's turn-around on a busy host.
pub const MIN_INTERVAL: Duration = Duration::from_millis(200);

/// How many times a STUN keep-alive goes before its flow has failed
/// (RFC 5389 §7.2.1 resends up to 7 times over 39.5 s; a keep-alive must
/// conclude within 10 s, and two losses in a row are tolerated).
const MAX_SENDS: u32 = 3;

/// A flow's round-trip time, estimated as RFC 6298 does for TCP: from the
/// answers to keep-alives sent once (Karn: a resent one's answer is
/// ambiguous) and from the REGISTER transactions over the flow.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rtt {
    srtt: Option<Duration>,
    rttvar: Duration,
}

impl Rtt {
    pub fn sample(&mut self, r: Duration) {
        let r = r.min(MAX_ANSWER_WAIT);
        match self.srtt {
            None => {
                self.srtt = Some(r);
                self.rttvar = r / 2;
            }
            Some(srtt) => {
                let err = srtt.abs_diff(r);
                self.rttvar = self.rttvar * 3 / 4 + err / 4;
                self.srtt = Some(srtt * 7 / 8 + r / 8);
            }
        }
    }

    /// RFC 6298 §2: SRTT + max(G, 4·RTTVAR), G = 1 ms; `None` before any
    /// sample.
    pub fn rto(&self) -> Option<Duration> {
        self.srtt
            .map(|s| s + (self.rttvar * 4).max(Duration::from_millis(1)))
    }
}

/// The wait between a keep-alive's transmissions (UDP) and the unit of its
/// answer window: the flow's RTO, else T1 (RFC 3261's round-trip estimate,
/// also RFC 5389's initial RTO), never under [`MIN_INTERVAL`].
pub fn retransmit_interval(rto: Option<Duration>, t1: Duration) -> Duration {
    rto.unwrap_or(t1).clamp(MIN_INTERVAL, MAX_ANSWER_WAIT)
}

/// How long a keep-alive waits for its answer: four intervals, at most
/// 10 s (RFC 5626's bound). Either way two losses in a row of the ping or
/// its answer are survived: on UDP the STUN request goes again at one and
/// at three intervals (RFC 5389's doubling), on TCP the kernel resends the
/// segment at its own RTO (≥ 200 ms, ≈ the interval) and twice that, and
/// the third transmission still has an interval to be answered.
pub fn answer_window(interval: Duration) -> Duration {
    (interval * 4).min(MAX_ANSWER_WAIT)
}

/// When, after the first, the keep-alive that has gone `sends` times goes
/// again: at 1, 3, 7… intervals (RFC 5389 §7.2.1).
fn resend_after(sends: u32, interval: Duration) -> Duration {
    interval * ((1u32 << sends.min(16)) - 1)
}

/// A keep-alive waiting for its answer.
#[derive(Debug, Clone, Copy)]
struct Ping {
    first: Instant,
    sends: u32,
    interval: Duration,
    window: Duration,
}

/// What a flow's keep-alive wants done now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Nothing,
    /// A new ping.
    Send,
    /// The ping in flight again (UDP).
    Resend,
    /// Its answer is late and was required: the flow has failed (the
    /// ping went `sends` times, and was waited for `window`).
    Failed {
        sends: u32,
        window: Duration,
    },
}

struct KeepAlive {
    period: Duration,
    next: Instant,
    waiting: Option<Ping>,
    /// An answer is required: the registrar took it as an outbound flow,
    /// or it has answered a ping before.
    expect: bool,
    /// A missed answer is sent again (UDP); streams rely on TCP for that.
    resend: bool,
    rtt: Rtt,
    stun_id: stun::TransactionId,
    mapped: Option<SocketAddr>,
}

impl KeepAlive {
    fn new(period: Duration, expect: bool, resend: bool) -> KeepAlive {
        KeepAlive {
            period,
            next: Instant::now() + jitter(period),
            waiting: None,
            expect,
            resend,
            rtt: Rtt::default(),
            stun_id: [0; 12],
            mapped: None,
        }
    }

    fn update(&mut self, period: Duration, expect: bool, rtt: Option<Duration>) {
        self.expect |= expect;
        if let Some(r) = rtt {
            self.rtt.sample(r);
        }
        if period < self.period {
            self.period = period;
            self.next = self.next.min(Instant::now() + jitter(period));
        }
    }

    fn due(&self) -> Instant {
        match self.waiting {
            None => self.next,
            Some(p) => {
                let verdict = p.first + p.window;
                if self.resend && self.expect && p.sends < MAX_SENDS {
                    verdict.min(p.first + resend_after(p.sends, p.interval))
                } else {
                    verdict
                }
            }
        }
    }

    /// Something came back on the flow at `now`: the ping in flight is
    /// answered. `clean`: it was the answer alone (a STUN answer to this
    /// ping, a read that brought no SIP message), so its delay is a round
    /// trip, if the ping went once.
    fn heard(&mut self, now: Instant, clean: bool) {
        if let Some(p) = self.waiting.take() {
            self.expect = true;
            if clean && p.sends == 1 {
                self.rtt.sample(now.saturating_duration_since(p.first));
            }
        }
    }

    /// What is due at `now`; a new ping's window comes from the flow's
    /// round-trip time (T1 before any is known).
    fn step(&mut self, now: Instant, t1: Duration) -> Step {
        if let Some(p) = &mut self.waiting {
            if now >= p.first + p.window {
                let (sends, window) = (p.sends, p.window);
                self.waiting = None;
                return if self.expect {
                    Step::Failed { sends, window }
                } else {
                    Step::Nothing
                };
            }
            if self.resend
                && self.expect
                && p.sends < MAX_SENDS
                && now >= p.first + resend_after(p.sends, p.interval)
            {
                p.sends += 1;
                return Step::Resend;
            }
            return Step::Nothing;
        }
        if now < self.next {
            return Step::Nothing;
        }
        // One ping at a time: the next a period after this one.
        self.next = now + jitter(self.period);
        let interval = retransmit_interval(self.rtt.rto(), t1);
        self.waiting = Some(Ping {
            first: now,
            sends: 1,
            interval,
            window: answer_window(interval),
        });
        Step::Send
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
        flow.alive.heard(Instant::now(), true);
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
    /// a missed answer is a failure from the first ping on; `rtt`: the
    /// round trip of the REGISTER that bound it, if it went once.
    pub fn keep_alive(
        &mut self,
        id: u32,
        flow: Flow,
        period: Duration,
        expect: bool,
        rtt: Option<Duration>,
    ) {
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
                    .or_insert_with(|| KeepAlive::new(period, expect, false))
                    .update(period, expect, rtt);
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
                        alive: KeepAlive::new(period, expect, true),
                    });
                f.alive.update(period, expect, rtt);
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

    /// Sends the pings due (and resends the STUN requests unanswered) and
    /// returns the flows whose answer is late. How long an answer is
    /// waited for comes from each flow's round-trip time, `t1` before one
    /// is measured: see [`answer_window`].
    pub fn keep_alives(&mut self, t1: Duration) -> Vec<FlowFailure> {
        let now = Instant::now();
        let mut failed = Vec::new();
        let tokens: Vec<Token> = self.stream_alive.keys().copied().collect();
        for token in tokens {
            let Some(ka) = self.stream_alive.get_mut(&token) else {
                continue;
            };
            match ka.step(now, t1) {
                Step::Failed { window, .. } => {
                    log::info(&format!("flow {token:?}: no pong within {window:?}"));
                    failed.push(FlowFailure::Stream(token));
                }
                Step::Send | Step::Resend => {
                    log::log(
                        log::TRACE,
                        &format!(
                            "keep-alive ping on {token:?}, pong due within {:?}",
                            ka.waiting.map_or(Duration::ZERO, |p| p.window)
                        ),
                    );
                    // RFC 5626 §4.4.1: a double CRLF ping; the pong is a CRLF.
                    if let Some(conn) = self.streams.get_mut(&token)
                        && conn.send(b"\r\n\r\n").is_err()
                    {
                        failed.push(FlowFailure::Stream(token));
                    }
                }
                Step::Nothing => {}
            }
        }
        let keys: Vec<_> = self.datagram_flows.keys().cloned().collect();
        for key in keys {
            let Some(f) = self.datagram_flows.get_mut(&key) else {
                continue;
            };
            match f.alive.step(now, t1) {
                Step::Failed { sends, window } => {
                    log::info(&format!(
                        "flow to {}: no answer to its keep-alive within {window:?} (sent {sends} times)",
                        key.0
                    ));
                    failed.push(FlowFailure::Datagram(f.users.iter().copied().collect()));
                    continue;
                }
                Step::Nothing => continue,
                Step::Send => crate::random::fill(&mut f.alive.stun_id),
                // RFC 5389 §7.2.1: the same request (same transaction id).
                Step::Resend => log::debug(&format!("flow to {}: keep-alive resent", key.0)),
            }
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
            // A round trip only from a pong alone (a message may have been
            // on its way before the ping went).
            if let Some(ka) = self.stream_alive.get_mut(&token) {
                ka.heard(Instant::now(), messages.is_empty());
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

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// A keep-alive whose first ping is due at `t0`.
    fn keep_alive(expect: bool, resend: bool, t0: Instant) -> KeepAlive {
        let mut ka = KeepAlive::new(Duration::from_secs(30), expect, resend);
        ka.next = t0;
        ka
    }

    #[test]
    fn the_answer_window_follows_the_round_trip_within_its_bounds() {
        // (RTO measured, T1) → (interval, window).
        let table: &[(Option<u64>, u64, u64, u64)] = &[
            // Nothing measured: T1 (500 ms by default; 50 ms in tests).
            (None, 500, 500, 2_000),
            (None, 50, 200, 800),
            (None, 5_000, 5_000, 10_000),
            // Loopback: the floor (one TCP retransmission fits).
            (Some(1), 500, 200, 800),
            (Some(200), 500, 200, 800),
            // A slow or jittery path: four RTOs.
            (Some(700), 500, 700, 2_800),
            (Some(2_500), 500, 2_500, 10_000),
            // Never over RFC 5626's 10 s.
            (Some(3_000), 500, 3_000, 10_000),
            (Some(60_000), 500, 10_000, 10_000),
        ];
        for &(rto, t1, interval, window) in table {
            let i = retransmit_interval(rto.map(ms), ms(t1));
            assert_eq!(i, ms(interval), "interval for {rto:?}, T1 {t1}");
            assert_eq!(answer_window(i), ms(window), "window for {rto:?}, T1 {t1}");
        }
    }

    #[test]
    fn stun_requests_go_again_at_one_three_and_seven_intervals() {
        let table: &[(u32, u64)] = &[(1, 200), (2, 600), (3, 1_400)];
        for &(sends, after) in table {
            assert_eq!(resend_after(sends, ms(200)), ms(after), "after {sends}");
        }
    }

    #[test]
    fn round_trips_are_estimated_as_rfc_6298_does() {
        let mut r = Rtt::default();
        assert_eq!(r.rto(), None);
        // First sample R: SRTT = R, RTTVAR = R/2, RTO = R + 4·R/2.
        r.sample(ms(100));
        assert_eq!(r.rto(), Some(ms(300)));
        // Then RTTVAR = 3/4·RTTVAR + 1/4·|SRTT − R|, SRTT = 7/8·SRTT + 1/8·R.
        r.sample(ms(200));
        assert_eq!(r.srtt, Some(Duration::from_micros(112_500)));
        assert_eq!(r.rttvar, Duration::from_micros(62_500));
        assert_eq!(r.rto(), Some(Duration::from_micros(362_500)));
        // A steady path: RTTVAR fades, the clock granularity (1 ms) stays.
        let mut steady = Rtt::default();
        for _ in 0..200 {
            steady.sample(Duration::from_micros(100));
        }
        let rto = steady.rto().unwrap();
        assert!(rto >= Duration::from_micros(1_100), "{rto:?}");
        assert!(rto < Duration::from_micros(1_200), "{rto:?}");
        // A sample from a peer that took minutes counts as 10 s.
        let mut slow = Rtt::default();
        slow.sample(Duration::from_secs(300));
        assert_eq!(slow.srtt, Some(MAX_ANSWER_WAIT));
    }

    #[test]
    fn a_stun_keep_alive_is_resent_twice_then_its_flow_has_failed() {
        let t0 = Instant::now();
        let t1 = ms(500);
        let mut ka = keep_alive(true, true, t0);
        // A measured round trip of 1 ms: interval 200 ms, window 800 ms.
        ka.update(Duration::from_secs(30), true, Some(ms(1)));
        let at = |n: u64| t0 + ms(n);
        assert_eq!(ka.step(at(0), t1), Step::Send);
        let steps: &[(u64, Step, u64)] = &[
            // (time, what is done, when next due)
            (199, Step::Nothing, 200),
            (200, Step::Resend, 600),
            (599, Step::Nothing, 600),
            (600, Step::Resend, 800),
            (799, Step::Nothing, 800),
            (
                800,
                Step::Failed {
                    sends: 3,
                    window: ms(800),
                },
                0,
            ),
        ];
        for &(t, step, due) in steps {
            assert_eq!(ka.step(at(t), t1), step, "at {t} ms");
            if due > 0 {
                assert_eq!(ka.due(), at(due), "due after {t} ms");
            }
        }
        // The next ping a period after the first.
        assert!(ka.waiting.is_none() && ka.due() > at(20_000));
    }

    #[test]
    fn an_answer_to_a_resent_request_keeps_the_flow_but_measures_nothing() {
        let t0 = Instant::now();
        let mut ka = keep_alive(true, true, t0);
        assert_eq!(ka.step(t0, ms(500)), Step::Send);
        // Nothing measured: T1 is the interval.
        assert_eq!(ka.due(), t0 + ms(500));
        assert_eq!(ka.step(t0 + ms(500), ms(500)), Step::Resend);
        ka.heard(t0 + ms(510), true);
        assert!(ka.waiting.is_none());
        assert_eq!(ka.rtt.rto(), None, "Karn: which request was answered?");
        // Sent once and answered after 40 ms: a sample (RTO 120 ms, so
        // the floor), and the next window from it.
        ka.next = t0 + ms(1_000);
        assert_eq!(ka.step(t0 + ms(1_000), ms(500)), Step::Send);
        ka.heard(t0 + ms(1_040), true);
        assert_eq!(ka.rtt.rto(), Some(ms(120)));
        ka.next = t0 + ms(2_000);
        assert_eq!(ka.step(t0 + ms(2_000), ms(500)), Step::Send);
        assert_eq!(ka.waiting.unwrap().window, ms(800));
    }

    #[test]
    fn a_stream_ping_is_not_resent_and_fails_at_its_window() {
        let t0 = Instant::now();
        let mut ka = keep_alive(true, false, t0);
        assert_eq!(ka.step(t0, ms(500)), Step::Send);
        assert_eq!(ka.due(), t0 + ms(2_000));
        for t in [500, 1_500, 1_999] {
            assert_eq!(ka.step(t0 + ms(t), ms(500)), Step::Nothing, "at {t}");
        }
        assert_eq!(
            ka.step(t0 + ms(2_000), ms(500)),
            Step::Failed {
                sends: 1,
                window: ms(2_000)
            }
        );
        // A read that brought SIP messages answers the ping but is no
        // round trip: they may have left before the ping arrived.
        let mut ka = keep_alive(true, false, t0);
        assert_eq!(ka.step(t0, ms(500)), Step::Send);
        ka.heard(t0 + ms(3), false);
        assert!(ka.waiting.is_none());
        assert_eq!(ka.rtt.rto(), None);
        // The REGISTER's round trip seeds the estimate.
        ka.update(Duration::from_secs(30), true, Some(ms(300)));
        assert_eq!(ka.rtt.rto(), Some(ms(900)));
        ka.next = t0 + ms(10);
        assert_eq!(ka.step(t0 + ms(10), ms(500)), Step::Send);
        assert_eq!(ka.due(), t0 + ms(10) + ms(3_600));
    }

    #[test]
    fn silence_fails_only_a_flow_that_must_answer() {
        let t0 = Instant::now();
        // Not expected yet: late is no failure, nothing is resent, and
        // nothing is learned.
        let mut ka = keep_alive(false, true, t0);
        assert_eq!(ka.step(t0, ms(500)), Step::Send);
        assert_eq!(ka.due(), t0 + ms(2_000), "no resend");
        assert_eq!(ka.step(t0 + ms(2_000), ms(500)), Step::Nothing);
        assert!(!ka.expect && ka.waiting.is_none());
        // Answered once: from then on answers are expected.
        ka.next = t0 + ms(5_000);
        assert_eq!(ka.step(t0 + ms(5_000), ms(500)), Step::Send);
        ka.heard(t0 + ms(5_002), true);
        assert!(ka.expect);
        // A shorter period is taken at once; a longer one is not.
        let mut ka = KeepAlive::new(Duration::from_secs(100), false, false);
        ka.update(Duration::from_secs(10), false, None);
        assert!(ka.next <= Instant::now() + Duration::from_secs(10));
        ka.update(Duration::from_secs(50), false, None);
        assert_eq!(ka.period, Duration::from_secs(10));
    }
}
