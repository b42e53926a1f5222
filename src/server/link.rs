//! One connected client as the server sees it: the queue of what goes to it
//! (replies and events, in order). The queue is bounded and a send never
//! blocks, so a client that stops reading (a callback that never returns)
//! cannot stall the engine or the other clients, nor grow the server's
//! memory without end: once [`QUEUE`] messages wait, the client is dropped.
//! Its library reconnects and restores what it had enabled (`client/`).

use crate::log;
use crate::protocol::ToClient;
use crossbeam_channel::{Receiver, Sender, TrySendError, bounded};
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

/// Messages that may wait for one client. An event holds at most one
/// snapshot of a profile's registration (a few hundred bytes), shared by
/// every client it goes to, so a stuck client pins tens of MB at most.
pub const QUEUE: usize = 1 << 17;

pub struct ClientLink {
    id: u64,
    pid: u32,
    out: Mutex<Option<Sender<ToClient>>>,
    closed: AtomicBool,
    /// Ends the client's transport (shuts its socket down), so that its
    /// session ends too.
    on_close: Mutex<Option<Box<dyn FnOnce() + Send>>>,
}

impl ClientLink {
    /// A link and the receiving end of its queue.
    pub fn new(
        id: u64,
        pid: u32,
        on_close: Option<Box<dyn FnOnce() + Send>>,
    ) -> (ClientLink, Receiver<ToClient>) {
        let (tx, rx) = bounded(QUEUE);
        (
            ClientLink {
                id,
                pid,
                out: Mutex::new(Some(tx)),
                closed: AtomicBool::new(false),
                on_close: Mutex::new(on_close),
            },
            rx,
        )
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Queues one message; never blocks.
    pub fn send(&self, m: ToClient) {
        let full = {
            let out = self.out.lock();
            let Some(tx) = out.as_ref() else {
                return;
            };
            match tx.try_send(m) {
                Ok(()) => return,
                Err(TrySendError::Full(_)) => true,
                Err(TrySendError::Disconnected(_)) => false,
            }
        };
        if full {
            log::warn(&format!(
                "client {} (pid {}) has {QUEUE} messages waiting: dropped; it reconnects",
                self.id, self.pid
            ));
        }
        self.close();
    }

    /// Nothing more goes to the client, and its transport is ended.
    pub fn close(&self) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        self.out.lock().take();
        if let Some(f) = self.on_close.lock().take() {
            f();
        }
    }
}
