//! Watching the machine's addresses and links (rtnetlink), so that a
//! registration whose address went away, or whose interface came back,
//! moves by itself. The socket is polled by the engine; what changed only
//! wakes the engine, which then asks the routing table again for each
//! registration's next hop (see `Core::network_changed`).

use crate::log;
use netlink_packet_core::{NetlinkMessage, NetlinkPayload};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::address::AddressAttribute;
use netlink_packet_route::link::LinkFlags;
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};
use std::io;
use std::os::fd::{AsRawFd, RawFd};

/// Multicast groups: links, IPv4 and IPv6 addresses (linux/rtnetlink.h).
const RTMGRP_LINK: u32 = 0x1;
const RTMGRP_IPV4_IFADDR: u32 = 0x10;
const RTMGRP_IPV6_IFADDR: u32 = 0x100;

/// One change seen, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Address {
        added: bool,
        ip: std::net::IpAddr,
        index: u32,
    },
    Link {
        index: u32,
        up: bool,
    },
}

pub struct NetWatch {
    socket: Socket,
    buf: Vec<u8>,
}

impl NetWatch {
    pub fn open() -> io::Result<NetWatch> {
        let mut socket = Socket::new(NETLINK_ROUTE)?;
        socket.bind(&SocketAddr::new(
            0,
            RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR,
        ))?;
        socket.set_non_blocking(true)?;
        Ok(NetWatch {
            socket,
            buf: vec![0u8; 65_536],
        })
    }

    pub fn fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }

    /// Reads everything that has arrived (the socket is edge-triggered in
    /// the poll); the changes it says. An overrun (changes lost) is told as
    /// a change of link 0.
    pub fn changes(&mut self) -> Vec<Change> {
        let mut out = Vec::new();
        loop {
            self.buf.clear();
            match self.socket.recv(&mut self.buf, 0) {
                Ok(0) => break,
                Ok(_) => parse_all(&self.buf, &mut out),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // ENOBUFS: the kernel dropped changes; look at everything.
                    log::debug(&format!("netlink: {e}"));
                    out.push(Change::Link { index: 0, up: true });
                    break;
                }
            }
        }
        out
    }
}

/// The messages of one netlink datagram (several may share one).
pub fn parse_all(mut data: &[u8], out: &mut Vec<Change>) {
    while data.len() >= 16 {
        let len = u32::from_ne_bytes([data[0], data[1], data[2], data[3]]) as usize;
        if len < 16 || len > data.len() {
            return;
        }
        if let Ok(msg) = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&data[..len])
            && let NetlinkPayload::InnerMessage(m) = msg.payload
        {
            out.extend(change_of(m));
        }
        // Messages are 4-byte aligned.
        let step = len.div_ceil(4) * 4;
        if step >= data.len() {
            return;
        }
        data = &data[step..];
    }
}

fn change_of(m: RouteNetlinkMessage) -> Option<Change> {
    let (added, a) = match m {
        RouteNetlinkMessage::NewAddress(a) => (true, a),
        RouteNetlinkMessage::DelAddress(a) => (false, a),
        RouteNetlinkMessage::NewLink(l) | RouteNetlinkMessage::DelLink(l) => {
            let f = l.header.flags;
            return Some(Change::Link {
                index: l.header.index,
                up: f.contains(LinkFlags::Up) && f.contains(LinkFlags::LowerUp),
            });
        }
        _ => return None,
    };
    let ip = a.attributes.iter().find_map(|at| match at {
        AddressAttribute::Local(ip) | AddressAttribute::Address(ip) => Some(*ip),
        _ => None,
    })?;
    Some(Change::Address {
        added,
        ip,
        index: a.header.index,
    })
}
