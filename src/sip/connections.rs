//! The engine's connections: its UDP sockets (one per address family and
//! network interface, shared by every registration) and its stream flows
//! (TCP, TLS: one per next hop, shared by the registrations going there).
//! Everything the engine sends or receives passes through [`Connections`],
//! so a new transport touches this file (and transport.rs for its framing).

use super::registration::RegConfig;
use super::transport::{StreamConn, StreamState, Transport, tls_config};
use crate::log;
use mio::net::UdpSocket;
use mio::{Interest, Registry, Token};
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;

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
    /// A read error (ICMP errors surface here on Linux): read again.
    Failed,
    /// Nothing more to read until the next readiness.
    Empty,
}

/// What became of a stream flow after its readiness was worked through.
pub struct StreamReady {
    pub messages: Vec<Vec<u8>>,
    pub origin: Origin,
    pub state: StreamState,
}

pub struct Connections {
    registry: Registry,
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
            udp: HashMap::new(),
            udp_tokens: HashMap::new(),
            streams: HashMap::new(),
            stream_index: HashMap::new(),
            next_token: FIRST_CONNECTION_TOKEN,
            local_cache: HashMap::new(),
        }
    }

    /// Is `token` one of the UDP sockets?
    pub fn is_datagram(&self, token: Token) -> bool {
        self.udp_tokens.contains_key(&token)
    }

    /// Reads one datagram of the socket `token` into `buf` (mio's readiness
    /// is edge-triggered: read until [`Datagram::Empty`]).
    pub fn receive(&mut self, token: Token, buf: &mut [u8]) -> Datagram {
        let Some(sock) = self.udp_tokens.get(&token).and_then(|k| self.udp.get(k)) else {
            return Datagram::Empty;
        };
        match sock.1.recv_from(buf) {
            Ok((n, from)) => Datagram::Received(n, Origin::Datagram(token, from)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Datagram::Empty,
            Err(e) => {
                // Matched to nothing: the transaction times out and retries.
                log::debug(&format!("receive error: {e}"));
                Datagram::Failed
            }
        }
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
        if let Some(tok) = self.stream_index.get(&key) {
            if let Some(c) = self.streams.get_mut(tok) {
                c.users.insert(id);
                return Ok(*tok);
            }
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
        if writable {
            if let Err(e) = conn.on_writable() {
                log::warn(&format!("connection to {}: {e}", conn.peer));
                state = StreamState::Closed;
            }
        }
        if readable && state == StreamState::Open {
            state = conn.on_readable(&mut messages);
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
