//! The server's Unix-domain socket: each connection is checked (same user,
//! through `SO_PEERCRED`; same protocol version, through the handshake) and
//! then served by a session: a thread reading requests and one writing what
//! the client's queue holds. A client hosted in the server's own process
//! gets the same session over channels ([`connect_local`]).

use super::{ClientLink, Server};
use crate::log;
use crate::protocol::frame::{self, read_message};
use crate::protocol::{Hello, MAGIC, ToClient, ToServer, VERSION, Welcome};
use crossbeam_channel::{Receiver, Sender, bounded};
use std::io;
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Accepts clients until `stop` is set (and a connection wakes it).
pub fn accept_loop(server: Arc<Server>, listener: UnixListener, stop: Arc<AtomicBool>) {
    for conn in listener.incoming() {
        if stop.load(Ordering::Acquire) {
            return;
        }
        match conn {
            Ok(stream) => {
                let server = server.clone();
                let spawned = std::thread::Builder::new()
                    .name("sipprofile-session".into())
                    .spawn(move || {
                        if let Err(e) = session(server, stream) {
                            log::debug(&format!("client session ended: {e}"));
                        }
                    });
                if let Err(e) = spawned {
                    log::error(&format!("cannot start a client session: {e}"));
                }
            }
            Err(e) => {
                if stop.load(Ordering::Acquire) {
                    return;
                }
                log::warn(&format!("accepting a client: {e}"));
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

/// The uid of the process at the other end of `stream`.
pub fn peer_uid(stream: &UnixStream) -> io::Result<u32> {
    let cred = nix::sys::socket::getsockopt(stream, nix::sys::socket::sockopt::PeerCredentials)
        .map_err(io::Error::from)?;
    Ok(cred.uid())
}

fn refuse(stream: &UnixStream, reason: String) -> io::Error {
    log::warn(&format!("client refused: {reason}"));
    let _ = frame::send_message(
        stream,
        &Welcome::Refused {
            reason: reason.clone(),
        },
    );
    io::Error::new(io::ErrorKind::PermissionDenied, reason)
}

fn session(server: Arc<Server>, stream: UnixStream) -> io::Result<()> {
    let me = nix::unistd::geteuid().as_raw();
    let uid = peer_uid(&stream)?;
    if uid != me {
        return Err(refuse(
            &stream,
            format!("uid {uid} is not the server's user ({me})"),
        ));
    }
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = io::BufReader::with_capacity(64 << 10, stream.try_clone()?);
    let hello: Hello = read_message(&mut reader)
        .map_err(|e| refuse(&stream, format!("no valid greeting: {e}")))?;
    if hello.magic != MAGIC || hello.version != VERSION {
        return Err(refuse(
            &stream,
            format!(
                "protocol version {} (server {} speaks {VERSION}): use a library and a server of the same version",
                hello.version,
                env!("CARGO_PKG_VERSION")
            ),
        ));
    }
    stream.set_read_timeout(None)?;
    let link = ClientLink::socket(hello.pid, stream.try_clone()?)?;
    let Some(client) = server.connect(hello.pid, link.clone()) else {
        link.close();
        return Err(refuse(&stream, "the server is stopping".into()));
    };
    frame::send_message(
        &stream,
        &Welcome::Accepted {
            version: VERSION,
            server_pid: std::process::id(),
        },
    )?;
    let end = loop {
        match read_message::<ToServer>(&mut reader) {
            Ok(m) => {
                let result = server.handle(client, m.request);
                server.link_send(
                    client,
                    ToClient::Reply {
                        call: m.call,
                        result,
                    },
                );
            }
            Err(e) => break e,
        }
    };
    server.disconnect(client);
    let _ = stream.shutdown(std::net::Shutdown::Both);
    if end.kind() == io::ErrorKind::UnexpectedEof {
        Ok(())
    } else {
        Err(end)
    }
}

/// Requests an in-process client may have sent that its session has not
/// taken yet; past this its sender waits (as on a socket, whose buffer
/// holds about as many: the session reads one request at a time, and
/// replies before it reads the next). The session never waits for the
/// client (`link.rs`), so the sender waits only for the server's work.
pub const REQUESTS: usize = 1024;

/// A client in the server's own process: the same session, over channels
/// instead of a socket. Returns the sending end for its requests and the
/// receiving end of its queue; `None` once the server is stopping.
pub fn connect_local(server: &Arc<Server>) -> Option<(Sender<ToServer>, Receiver<ToClient>)> {
    let (requests, incoming) = bounded::<ToServer>(REQUESTS);
    let (link, queue) = ClientLink::channel(std::process::id());
    let client = server.connect(std::process::id(), Arc::new(link))?;
    let s = server.clone();
    let spawned = std::thread::Builder::new()
        .name("sipprofile-session".into())
        .spawn(move || {
            for m in incoming {
                let result = s.handle(client, m.request);
                s.link_send(
                    client,
                    ToClient::Reply {
                        call: m.call,
                        result,
                    },
                );
            }
            s.disconnect(client);
        });
    if spawned.is_err() {
        server.disconnect(client);
        return None;
    }
    Some((requests, queue))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Reply, Request};

    use crate::test_support::until;

    /// An in-process client's requests wait for a busy session (as on a
    /// socket whose buffer is full): at most REQUESTS are queued.
    #[test]
    fn an_in_process_client_sending_to_a_busy_session_waits_past_requests() {
        let store = crate::client::registry::tests::tmp_store("requests");
        let server = Server::start(&store, "in-process").unwrap();
        let (tx, replies) = connect_local(&server).unwrap();
        let extra = 10;
        let total = (REQUESTS + extra) as u64;
        let busy = server.state.lock(); // the session blocks on its first request
        std::thread::scope(|s| {
            let sender = s.spawn(|| {
                for call in 0..total {
                    let m = ToServer {
                        call,
                        request: Request::DefaultId,
                    };
                    tx.send(m).unwrap();
                }
            });
            until("the sender waits", || tx.len() == REQUESTS);
            assert!(!sender.is_finished());
            drop(busy);
            sender.join().unwrap();
        });
        for call in 0..total {
            match replies.recv_timeout(Duration::from_secs(20)).unwrap() {
                ToClient::Reply {
                    call: c,
                    result: Ok(Reply::DefaultId(None)),
                } => assert_eq!(c, call),
                other => panic!("{other:?}"),
            }
        }
        drop(tx);
        server.shutdown();
    }
}
