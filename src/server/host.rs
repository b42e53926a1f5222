//! Hosting a store's server: at most one per store, ever (the lock), found
//! by every process of the user at the store's endpoint, and stopped by the
//! stop rule of ref §5.1 (no client, no auto-registration profile registered
//! without error, every profile unregistered) after a linger.
//!
//! Two ways to host it, running the same server code: a process of its own
//! (`sipprofile-server`, started on demand by the first client, the
//! default), or inside the first client's process (`SIPPROFILE_SERVER=in-process`),
//! which serves the other processes over the socket and its own registries
//! over a channel.

use super::{Server, listener};
use crate::log;
use crate::protocol::endpoint::Endpoint;
use crate::{Error, Result};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a server with nothing to do waits for a client before it exits
/// (ref §5.1's 5 s); `SIPPROFILE_SERVER_LINGER_MS` sets it (tests).
pub fn linger() -> Duration {
    std::env::var("SIPPROFILE_SERVER_LINGER_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .map_or(Duration::from_secs(5), Duration::from_millis)
}

/// How long a new server waits for its first client, whatever the linger.
pub const START_GRACE: Duration = Duration::from_secs(5);

/// A running server of one store, with the lock that makes it the only one.
pub struct Host {
    pub server: Arc<Server>,
    endpoint: Endpoint,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
    /// The listening socket, to wake the acceptor (shut down for reading,
    /// `accept` returns) even when the socket's file is gone.
    listening: UnixListener,
    /// Held for the server's whole life; the kernel drops it when the
    /// process dies, however it dies.
    _lock: File,
}

/// Opens (creating, 0600) the endpoint's lock file.
fn lock_file(endpoint: &Endpoint) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&endpoint.lock)
        .map_err(|e| {
            log::error(&format!("{}: {e}", endpoint.lock.display()));
            Error::AccessDenied
        })
}

/// Whether a server holds the store's lock now (running or starting).
pub fn is_running(endpoint: &Endpoint) -> bool {
    match lock_file(endpoint) {
        Ok(f) => f.try_lock().is_err(),
        Err(_) => false,
    }
}

impl Host {
    /// Becomes the store's server, unless one already holds the lock
    /// (`Ok(None)`: connect to that one). `patience`: how long to keep
    /// trying for the lock (a client probing it holds it for an instant).
    pub fn try_start(
        endpoint: &Endpoint,
        hosting: &'static str,
        patience: Duration,
    ) -> Result<Option<Host>> {
        let lock = lock_file(endpoint)?;
        let until = Instant::now() + patience;
        loop {
            match lock.try_lock() {
                Ok(()) => break,
                Err(_) if Instant::now() < until => std::thread::sleep(Duration::from_millis(5)),
                Err(_) => return Ok(None),
            }
        }
        // The lock is ours: a socket file left there is a dead server's.
        let _ = std::fs::remove_file(&endpoint.socket);
        let listener = UnixListener::bind(&endpoint.socket).map_err(|e| {
            log::error(&format!("{}: {e}", endpoint.socket.display()));
            Error::AccessDenied
        })?;
        let server = Server::start(&endpoint.store, hosting).inspect_err(|_| {
            let _ = std::fs::remove_file(&endpoint.socket);
        })?;
        let stop = Arc::new(AtomicBool::new(false));
        let listening = listener.try_clone().map_err(|_| Error::NoMemory)?;
        let (s, st) = (server.clone(), stop.clone());
        let acceptor = std::thread::Builder::new()
            .name("sipprofile-accept".into())
            .spawn(move || listener::accept_loop(s, listener, st))
            .map_err(|_| Error::NoMemory)?;
        log::info(&format!(
            "serving {} at {}",
            endpoint.store.display(),
            endpoint.socket.display()
        ));
        Ok(Some(Host {
            server,
            endpoint: endpoint.clone(),
            stop,
            acceptor: Some(acceptor),
            listening,
            _lock: lock,
        }))
    }

    /// Serves until the stop rule has held for `linger` without a break,
    /// then stops (ref §5.1: checked at start, when the last client leaves
    /// and after every registration change).
    pub fn run_until_idle(self, linger: Duration) {
        let mut idle_since: Option<Instant> = None;
        loop {
            if self.server.can_stop() {
                // The client that started it has yet to connect: it gets
                // ref §5.1's 5 s whatever the linger.
                let linger = if self.server.ever_connected() {
                    linger
                } else {
                    linger.max(START_GRACE)
                };
                let since = *idle_since.get_or_insert_with(Instant::now);
                let left = linger.saturating_sub(since.elapsed());
                if left.is_zero() {
                    if self.server.begin_stop(true) {
                        break;
                    }
                    idle_since = None;
                    continue;
                }
                self.server.wait_change(left.min(Duration::from_secs(2)));
            } else {
                idle_since = None;
                self.server.wait_change(Duration::from_secs(2));
            }
            if !self.endpoint.store.exists() {
                // The store was deleted: nothing left to serve.
                log::warn(&format!(
                    "{} is gone: the server stops",
                    self.endpoint.store.display()
                ));
                break;
            }
        }
        self.stop();
    }

    /// Stops now: no new client, un-REGISTERs (bounded wait), every client
    /// dropped, the socket removed.
    pub fn stop(mut self) {
        self.server.begin_stop(false);
        self.close_socket();
        self.server.shutdown();
    }

    /// Stops accepting: the listening socket is shut down, which ends the
    /// acceptor's `accept` (it sees the flag and returns), then the socket
    /// file goes.
    fn close_socket(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(a) = self.acceptor.take() {
            let _ = socket2::SockRef::from(&self.listening).shutdown(std::net::Shutdown::Both);
            let _ = a.join();
        }
        let _ = std::fs::remove_file(&self.endpoint.socket);
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        if self.acceptor.is_some() {
            self.close_socket();
        }
    }
}
