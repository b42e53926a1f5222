//! One process's connection to the server of one store, shared by every
//! registry of that store in the process: requests and their replies, and a
//! reader thread that applies each event to the registry's handles and then
//! queues its callback (contract §2: handles show the new data first).
//!
//! When the server dies, the reader notices at once (end of stream): the
//! handles of registered profiles go unregistered (observers hear
//! DEREGISTERED), a new server is started, and each registry is opened
//! again, its handles looked up again and what it had enabled enabled again
//! (REGISTERED follows). Only if no server can be started does each enabled
//! profile's registry get SIP_ERR_SERVER_TERMINATED (contract §8.1).

use super::connect::{self, Hosting, Link};
use super::delivery::Pool;
use super::registry::Registry;
use crate::protocol::endpoint::Endpoint;
use crate::protocol::frame::{read_message, send_message};
use crate::protocol::{Failure, Reply, Request, ToClient, ToServer};
use crate::server::host::Host;
use crate::{Error, Result, log};
use crossbeam_channel::{Receiver, Sender, bounded};
use parking_lot::{Condvar, Mutex};
use std::collections::HashMap;
use std::io::BufReader;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

type Outcome = std::result::Result<Reply, Failure>;
/// Runs on the reader thread with an answer, before its caller gets it.
type First = Box<dyn FnOnce(&Outcome) + Send>;

/// Who hears a request's answer: a caller waiting for it, or (a pipelined
/// request) a function the reader runs when it arrives. Dropped unheard if
/// the server goes away first.
enum Answer {
    /// The caller waits; the function (if any) runs on the reader thread
    /// first, before the reader takes the next message.
    Wait(Sender<Outcome>, Option<First>),
    Then(Box<dyn FnOnce(Outcome) + Send>),
}

/// How requests reach the server now.
enum Out {
    Socket(UnixStream),
    Channel(Sender<ToServer>),
}

enum Phase {
    /// Requests go out.
    Up(Out),
    /// Only the recovery's own requests go out; others wait.
    Replaying(Out),
    /// Between servers: requests wait.
    Lost,
    /// No server could be started: requests fail.
    Down,
    /// The last registry closed.
    Closed,
}

pub(crate) struct Connection {
    endpoint: Endpoint,
    hosting: Hosting,
    phase: Mutex<Phase>,
    phase_changed: Condvar,
    calls: Mutex<HashMap<u64, Answer>>,
    next_call: AtomicU64,
    registries: Mutex<HashMap<u64, Weak<Registry>>>,
    next_registry: AtomicU64,
    /// Delivery threads, started with the first observing registry.
    pool: Mutex<Option<Arc<Pool>>>,
    /// The server this process hosts (in-process hosting), if it does.
    host: Mutex<Option<Box<Host>>>,
    reader: Mutex<Option<JoinHandle<()>>>,
}

fn connections() -> &'static Mutex<HashMap<PathBuf, Arc<Connection>>> {
    static C: OnceLock<Mutex<HashMap<PathBuf, Arc<Connection>>>> = OnceLock::new();
    C.get_or_init(|| Mutex::new(HashMap::new()))
}

/// `sip_network_changed`: tells the server of every store this process
/// uses (in this process or not) that the network changed.
pub fn network_changed() {
    let all: Vec<Arc<Connection>> = connections().lock().values().cloned().collect();
    for c in all {
        c.cast(Request::NetworkChanged);
    }
}

/// One lock per store, held while its connection is made (which may start a
/// server and take seconds), so that other stores need not wait.
fn start_gate(store: &Path) -> Arc<Mutex<()>> {
    static G: OnceLock<Mutex<HashMap<PathBuf, Arc<Mutex<()>>>>> = OnceLock::new();
    G.get_or_init(|| Mutex::new(HashMap::new()))
        .lock()
        .entry(store.to_owned())
        .or_default()
        .clone()
}

impl Connection {
    /// This process's connection to the server of `store`, made (and the
    /// server started) if this is the store's first registry here, with a
    /// registry id reserved on it: the connection cannot close under a
    /// registry being opened (`add_registry` fills the place, or
    /// `remove_registry` gives it back).
    pub(crate) fn for_store(store: &Path, hosting: Hosting) -> Result<(Arc<Connection>, u64)> {
        let endpoint = Endpoint::for_store(store).map_err(|e| {
            crate::error::set_message(format!("no private runtime directory: {e}"));
            Error::AccessDenied
        })?;
        let reserve = |c: &Arc<Connection>| {
            let id = c.new_registry_id();
            c.registries.lock().insert(id, Weak::new());
            (c.clone(), id)
        };
        if let Some(c) = connections().lock().get(&endpoint.store) {
            return Ok(reserve(c));
        }
        let gate = start_gate(&endpoint.store);
        let _starting = gate.lock();
        if let Some(c) = connections().lock().get(&endpoint.store) {
            return Ok(reserve(c));
        }
        let conn = Arc::new(Connection {
            endpoint: endpoint.clone(),
            hosting,
            phase: Mutex::new(Phase::Lost),
            phase_changed: Condvar::new(),
            calls: Mutex::new(HashMap::new()),
            next_call: AtomicU64::new(1),
            registries: Mutex::new(HashMap::new()),
            next_registry: AtomicU64::new(1),
            pool: Mutex::new(None),
            host: Mutex::new(None),
            reader: Mutex::new(None),
        });
        let link = connect::connect(&endpoint, hosting)?;
        conn.attach(link, false)?;
        let mut all = connections().lock();
        all.insert(endpoint.store.clone(), conn.clone());
        Ok(reserve(&conn))
    }

    /// Starts reading from a new link; requests go out on it.
    fn attach(self: &Arc<Self>, link: Link, replaying: bool) -> Result<()> {
        let (out, incoming) = match link {
            Link::Socket(s) => {
                let r = s.try_clone().map_err(|_| Error::NoMemory)?;
                (
                    Out::Socket(s),
                    Incoming::Socket(BufReader::with_capacity(64 << 10, r)),
                )
            }
            Link::Local(tx, rx, host) => {
                *self.host.lock() = Some(host);
                (Out::Channel(tx), Incoming::Channel(rx))
            }
        };
        let me = Arc::downgrade(self);
        let reader = std::thread::Builder::new()
            .name("sipprofile-client".into())
            .spawn(move || read_loop(me, incoming))
            .map_err(|_| Error::NoMemory)?;
        let old = self.reader.lock().replace(reader);
        drop(old); // the previous reader is the caller (recovery) or gone
        *self.phase.lock() = if replaying {
            Phase::Replaying(out)
        } else {
            Phase::Up(out)
        };
        self.phase_changed.notify_all();
        Ok(())
    }

    fn new_registry_id(&self) -> u64 {
        self.next_registry.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn add_registry(&self, id: u64, r: &Arc<Registry>) {
        self.registries.lock().insert(id, Arc::downgrade(r));
    }

    /// The delivery threads, started on first use.
    pub(crate) fn pool(&self) -> Result<Arc<Pool>> {
        let mut pool = self.pool.lock();
        if let Some(p) = pool.as_ref() {
            return Ok(p.clone());
        }
        let p = Pool::start().map_err(|_| Error::NoMemory)?;
        *pool = Some(p.clone());
        Ok(p)
    }

    /// Sends a request and waits for its answer.
    pub(crate) fn call(&self, request: Request) -> Result<Reply> {
        self.call_as(request, false)
    }

    fn call_as(&self, request: Request, recovery: bool) -> Result<Reply> {
        // A question the server dies before answering is asked again of the
        // next one: the application sees nothing of the change. A change
        // (enable, save, ...) is not repeated: it may have happened.
        let again = (!recovery && request.is_question()).then(|| request.clone());
        match self.call_once(request, recovery) {
            Err(Error::ServerTerminated) if again.is_some() => {
                self.call_once(again.expect("checked"), false)
            }
            r => r,
        }
    }

    /// Sends a request without waiting: the reader thread runs `then` with
    /// its answer, in the order of everything else the server sends. If the
    /// server dies first, `then` is dropped unrun (the recovery restores
    /// from the handles' state).
    pub(crate) fn call_then(
        &self,
        request: Request,
        then: impl FnOnce(Outcome) + Send + 'static,
    ) -> Result<()> {
        let call = self.next_call.fetch_add(1, Ordering::Relaxed);
        self.send(call, request, Some(Answer::Then(Box::new(then))), false)
    }

    /// Sends a request and waits for its answer, which `first` sees on the
    /// reader thread before any later message is read: what the answer
    /// sets up (a saved profile's block) is there for the events after it.
    pub(crate) fn call_applying(
        &self,
        request: Request,
        first: impl FnOnce(&Outcome) + Send + 'static,
    ) -> Result<Reply> {
        self.call_once_with(request, false, Some(Box::new(first)))
    }

    fn call_once(&self, request: Request, recovery: bool) -> Result<Reply> {
        self.call_once_with(request, recovery, None)
    }

    fn call_once_with(
        &self,
        request: Request,
        recovery: bool,
        first: Option<First>,
    ) -> Result<Reply> {
        let (tx, rx) = bounded(1);
        let call = self.next_call.fetch_add(1, Ordering::Relaxed);
        self.send(call, request, Some(Answer::Wait(tx, first)), recovery)?;
        match rx.recv() {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(f)) => {
                if !f.message.is_empty() {
                    crate::error::set_message(f.message.clone());
                }
                Err(f.error())
            }
            // The server went away before answering.
            Err(_) => {
                crate::error::set_message(format!(
                    "the profile server of {} stopped before answering",
                    self.endpoint.store.display()
                ));
                Err(Error::ServerTerminated)
            }
        }
    }

    /// Sends a request whose answer nobody waits for (releases).
    pub(crate) fn cast(&self, request: Request) {
        let call = self.next_call.fetch_add(1, Ordering::Relaxed);
        let _ = self.send(call, request, None, false);
    }

    fn send(
        &self,
        call: u64,
        request: Request,
        answer: Option<Answer>,
        recovery: bool,
    ) -> Result<()> {
        let mut phase = self.phase.lock();
        loop {
            let out = match &*phase {
                Phase::Up(out) => out,
                Phase::Replaying(out) if recovery => out,
                Phase::Replaying(_) | Phase::Lost => {
                    if self
                        .phase_changed
                        .wait_for(&mut phase, connect::START_WAIT * 2)
                        .timed_out()
                    {
                        return Err(Error::ServerTerminated);
                    }
                    continue;
                }
                Phase::Down => {
                    crate::error::set_message(format!(
                        "no profile server could be started for {}",
                        self.endpoint.store.display()
                    ));
                    return Err(Error::ServerTerminated);
                }
                Phase::Closed => return Err(Error::BadHandle),
            };
            if let Some(a) = answer {
                self.calls.lock().insert(call, a);
            }
            let m = ToServer { call, request };
            let sent = match out {
                Out::Socket(s) => send_message(s, &m).is_ok(),
                Out::Channel(tx) => tx.send(m).is_ok(),
            };
            if !sent {
                // The reader sees the end too and starts the recovery;
                // the answer's sender is dropped there.
                log::debug("a request could not be sent: the server is gone");
            }
            return Ok(());
        }
    }

    /// A registry closed: the connection closes with the last one (and the
    /// server this process hosts stops when nobody else uses it).
    pub(crate) fn remove_registry(self: &Arc<Self>, id: u64) {
        let mut all = connections().lock();
        let empty = {
            let mut regs = self.registries.lock();
            regs.remove(&id);
            regs.is_empty()
        };
        if !empty {
            return;
        }
        if all
            .get(&self.endpoint.store)
            .is_some_and(|c| Arc::ptr_eq(c, self))
        {
            all.remove(&self.endpoint.store);
        }
        drop(all);
        self.close();
    }

    fn close(&self) {
        let old = std::mem::replace(&mut *self.phase.lock(), Phase::Closed);
        self.phase_changed.notify_all();
        if let Phase::Up(Out::Socket(s)) | Phase::Replaying(Out::Socket(s)) = &old {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
        // A channel's sender goes here: the session ends, and with it the
        // reader.
        drop(old);
        let reader = self.reader.lock().take();
        if let Some(r) = reader
            && r.thread().id() != std::thread::current().id()
        {
            let _ = r.join();
        }
        if let Some(p) = self.pool.lock().take() {
            p.stop();
        }
        if let Some(host) = self.host.lock().take() {
            if host.server.client_count() == 0 {
                // Nobody else uses it: stop now, de-registering what is
                // registered, so nothing is left running (as in-process
                // hosting promises).
                host.stop();
            } else {
                // Other processes use it: serve them until the stop rule
                // holds (or this process exits).
                let _ = std::thread::Builder::new()
                    .name("sipprofile-host".into())
                    .spawn(move || host.run_until_idle(Duration::ZERO));
            }
        }
    }

    #[cfg(test)]
    pub(crate) fn delivery_threads(&self) -> usize {
        self.pool.lock().as_ref().map_or(0, |p| p.live_threads())
    }

    fn live_registries(&self) -> Vec<Arc<Registry>> {
        self.registries
            .lock()
            .values()
            .filter_map(Weak::upgrade)
            .collect()
    }

    fn on_message(&self, m: ToClient) {
        match m {
            ToClient::Reply { call, result } => {
                let answer = self.calls.lock().remove(&call);
                match answer {
                    Some(Answer::Wait(a, first)) => {
                        if let Some(f) = first {
                            f(&result);
                        }
                        let _ = a.send(result);
                    }
                    Some(Answer::Then(f)) => f(result),
                    None => {}
                }
            }
            ToClient::Event { registry, delivery } => {
                let r = self
                    .registries
                    .lock()
                    .get(&registry)
                    .and_then(Weak::upgrade);
                if let Some(r) = r {
                    r.on_event(delivery);
                }
            }
        }
    }

    /// The server is gone (its end of the link closed).
    fn lost(self: &Arc<Self>) {
        {
            let mut phase = self.phase.lock();
            if matches!(*phase, Phase::Closed) {
                return;
            }
            *phase = Phase::Lost;
        }
        // Requests in flight get no answer: their callers see
        // SIP_ERR_SERVER_TERMINATED.
        self.calls.lock().clear();
        self.host.lock().take();
        log::warn(&format!(
            "the profile server of {} is gone: starting another",
            self.endpoint.store.display()
        ));
        let registries = self.live_registries();
        for r in &registries {
            r.server_lost();
        }
        match connect::connect(&self.endpoint, self.hosting) {
            Ok(link) => {
                if self.attach(link, true).is_ok() {
                    for r in &registries {
                        r.restore(&|req| self.call_as(req, true));
                    }
                    let mut phase = self.phase.lock();
                    if let Phase::Replaying(_) = &*phase {
                        let Phase::Replaying(out) = std::mem::replace(&mut *phase, Phase::Lost)
                        else {
                            unreachable!()
                        };
                        *phase = Phase::Up(out);
                    }
                    self.phase_changed.notify_all();
                    log::info("profile server replaced; enabled profiles restored");
                    return;
                }
            }
            Err(e) => log::error(&format!(
                "no profile server could be started for {}: {e}",
                self.endpoint.store.display()
            )),
        }
        *self.phase.lock() = Phase::Down;
        self.phase_changed.notify_all();
        for r in &registries {
            r.server_terminated();
        }
        // A later registry of this store starts afresh.
        let mut all = connections().lock();
        if all
            .get(&self.endpoint.store)
            .is_some_and(|c| Arc::ptr_eq(c, self))
        {
            all.remove(&self.endpoint.store);
        }
    }
}

enum Incoming {
    Socket(BufReader<UnixStream>),
    Channel(Receiver<ToClient>),
}

impl Incoming {
    fn next(&mut self) -> Option<ToClient> {
        match self {
            Incoming::Socket(r) => match read_message(r) {
                Ok(m) => Some(m),
                Err(e) => {
                    if e.kind() != std::io::ErrorKind::UnexpectedEof {
                        log::warn(&format!("reading from the profile server: {e}"));
                    }
                    None
                }
            },
            Incoming::Channel(rx) => rx.recv().ok(),
        }
    }
}

/// The reader thread: answers to their callers, events to their registries;
/// at the end of the stream, the recovery.
fn read_loop(conn: Weak<Connection>, mut incoming: Incoming) {
    while let Some(m) = incoming.next() {
        let Some(c) = conn.upgrade() else {
            return;
        };
        c.on_message(m);
    }
    if let Some(c) = conn.upgrade() {
        c.lost();
    }
}
