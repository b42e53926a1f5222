//! One connected client as the server sees it: where its replies and events
//! go, in order. Sending never blocks, so a client that stops reading (a
//! callback that never returns) cannot stall the engine or the other
//! clients; what it has not read waits here, bounded: past [`MAX_WAITING`]
//! bytes (or [`QUEUE`] messages in-process) the client is dropped, and its
//! library reconnects and restores what it had enabled (`client/`).
//!
//! On a socket a message is written at once by the thread that sends it
//! (the engine's, for a registration's event: no thread is woken on this
//! side); only what the socket cannot take now waits for the link's writer
//! thread.

use crate::log;
use crate::protocol::ToClient;
use crate::protocol::frame::{encode, send_all};
use crossbeam_channel::{Receiver, Sender, TrySendError, bounded};
use parking_lot::{Condvar, Mutex};
use std::io;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Messages that may wait for one in-process client.
pub const QUEUE: usize = 1 << 17;
/// Bytes that may wait for one client on a socket (a REGISTERED event is
/// about 200 bytes, an UPDATED one a whole profile).
pub const MAX_WAITING: usize = 64 << 20;

enum Outlet {
    /// A client in the server's own process: the messages themselves.
    Channel(Mutex<Option<Sender<ToClient>>>),
    Socket {
        sock: UnixStream,
        waiting: Mutex<Waiting>,
        more: Condvar,
    },
}

/// What a socket could not take yet.
struct Waiting {
    bytes: Vec<u8>,
    /// The writer is writing bytes taken from here: senders append.
    writing: bool,
}

pub struct ClientLink {
    pid: u32,
    outlet: Outlet,
    closed: AtomicBool,
}

impl ClientLink {
    /// A client in the server's process, and the receiving end of its queue.
    pub fn channel(pid: u32) -> (ClientLink, Receiver<ToClient>) {
        let (tx, rx) = bounded(QUEUE);
        (
            ClientLink {
                pid,
                outlet: Outlet::Channel(Mutex::new(Some(tx))),
                closed: AtomicBool::new(false),
            },
            rx,
        )
    }

    /// A client on `sock`, with the writer thread for what cannot be sent
    /// at once (it ends when the link closes).
    pub fn socket(pid: u32, sock: UnixStream) -> io::Result<Arc<ClientLink>> {
        let link = Arc::new(ClientLink {
            pid,
            outlet: Outlet::Socket {
                sock,
                waiting: Mutex::new(Waiting {
                    bytes: Vec::new(),
                    writing: false,
                }),
                more: Condvar::new(),
            },
            closed: AtomicBool::new(false),
        });
        let l = link.clone();
        std::thread::Builder::new()
            .name("sipprofile-writer".into())
            .spawn(move || l.write_waiting())?;
        Ok(link)
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Sends one message, or queues it; never blocks.
    pub fn send(&self, m: ToClient) {
        if self.closed.load(Ordering::Acquire) {
            return;
        }
        match &self.outlet {
            Outlet::Channel(tx) => {
                let full = {
                    let tx = tx.lock();
                    let Some(tx) = tx.as_ref() else {
                        return;
                    };
                    match tx.try_send(m) {
                        Ok(()) => return,
                        Err(TrySendError::Full(_)) => true,
                        Err(TrySendError::Disconnected(_)) => false,
                    }
                };
                if full {
                    self.overflow();
                }
                self.close();
            }
            Outlet::Socket {
                sock,
                waiting,
                more,
            } => {
                let frame = match encode(&m) {
                    Ok(f) => f,
                    Err(e) => {
                        log::error(&format!("a message for a client did not encode: {e}"));
                        return;
                    }
                };
                let mut w = waiting.lock();
                if w.bytes.is_empty() && !w.writing {
                    let s = socket2::SockRef::from(sock);
                    match s.send_with_flags(&frame, libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT) {
                        Ok(n) if n == frame.len() => return,
                        Ok(n) => w.bytes.extend_from_slice(&frame[n..]),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            w.bytes.extend_from_slice(&frame)
                        }
                        Err(_) => {
                            drop(w);
                            self.close();
                            return;
                        }
                    }
                    more.notify_one();
                    return;
                }
                w.bytes.extend_from_slice(&frame);
                if w.bytes.len() > MAX_WAITING {
                    drop(w);
                    self.overflow();
                    self.close();
                }
            }
        }
    }

    fn overflow(&self) {
        log::warn(&format!(
            "client pid {} is not reading: dropped; it reconnects",
            self.pid
        ));
    }

    /// The writer thread: writes what waits, blocking as the socket needs.
    fn write_waiting(&self) {
        let Outlet::Socket {
            sock,
            waiting,
            more,
        } = &self.outlet
        else {
            return;
        };
        let mut w = waiting.lock();
        loop {
            if self.closed.load(Ordering::Acquire) {
                return;
            }
            if w.bytes.is_empty() {
                w.writing = false;
                more.wait(&mut w);
                continue;
            }
            let bytes = std::mem::take(&mut w.bytes);
            w.writing = true;
            drop(w);
            let ok = send_all(sock, &bytes).is_ok();
            w = waiting.lock();
            if !ok {
                drop(w);
                self.close();
                return;
            }
        }
    }

    /// Nothing more goes to the client, and its transport is ended (its
    /// session then ends too).
    pub fn close(&self) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        match &self.outlet {
            Outlet::Channel(tx) => {
                tx.lock().take();
            }
            Outlet::Socket {
                sock,
                waiting,
                more,
            } => {
                let _ = sock.shutdown(std::net::Shutdown::Both);
                let _w = waiting.lock();
                more.notify_all();
            }
        }
    }
}
