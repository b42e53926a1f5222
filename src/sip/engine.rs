//! The engine: one thread per profile server running every registration of
//! that server over one shared UDP socket per address family, with all timers
//! in one heap. No thread, socket or timer thread per profile, so 10,000
//! profiles cost one thread and two sockets.
//!
//! The engine works in steps (one datagram, one stream's readiness, the
//! queued commands, or a wait for the next of these). Between steps it holds
//! none of its state, and the [`Reporter`] may run work left by the step on
//! the engine's thread: the server calls observers there, so a registration's
//! callback needs no other thread woken. If that work does not return,
//! [`Engine::hand_off`] lets a new thread carry on the engine while the old
//! one is stuck.

use super::message::{Message, masked_for_log};
use super::registration::{Action, Binding, RegConfig, Registration, Report, TimerKind};
use super::timers::{Timers, deadline};
use super::transport::{StreamConn, StreamState, Transport, is_outgoing_full, tls_config};
use crate::log;
use crossbeam_channel::{Receiver, Sender, unbounded};
use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token, Waker};
use parking_lot::Mutex;
use std::cell::Cell;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Receives status changes of registrations, on the engine thread. It must
/// not block for long (it takes the server lock briefly).
pub trait Reporter: Send + Sync {
    fn report(&self, profile_id: u32, context_id: u32, report: Report);

    /// Runs one engine step (`step` returns true once the engine has
    /// finished), then, with no engine state held, whatever the step's
    /// reports left to do on this thread.
    fn run_step(&self, step: &mut dyn FnMut() -> bool) -> bool {
        step()
    }
}

pub enum Command {
    /// Start registering, or register again with new data once the current
    /// binding is gone.
    Register(u32, Box<RegConfig>),
    /// Apply new data to a live binding without re-registering (ref §5.5).
    Update(u32, Box<RegConfig>),
    /// De-register (un-REGISTER if registered) and forget.
    Unregister(u32),
    /// Forget without sending anything (`force_disable`, ref §5.3).
    Forget(u32),
    /// Retry now if waiting to retry (`refresh_enable`).
    RetryNow(u32),
    /// De-register everything, wait until done or the deadline, then exit.
    Shutdown(Instant),
}

pub struct Engine {
    commands: Sender<Command>,
    waker: Arc<Waker>,
    shared: Arc<Shared>,
}

/// What the threads driving the engine share. One thread drives at a time:
/// it holds `core` for a step and lets go between steps.
struct Shared {
    core: Mutex<Core>,
    reporter: Arc<dyn Reporter>,
    /// The driver in office; a thread that finds another number here (it was
    /// replaced by [`Engine::hand_off`] while stuck) stops driving.
    generation: AtomicU64,
    /// Set once the engine has finished (shut down or failed).
    finished: AtomicBool,
    drivers: Mutex<Vec<JoinHandle<()>>>,
}

thread_local! {
    /// The engine this thread drives, if any (its `Shared` address), so that
    /// a shutdown called from a callback on it finishes the engine here
    /// instead of waiting for itself.
    static DRIVING: Cell<usize> = const { Cell::new(0) };
}

/// (due, insertion order, profile id, timer kind, generation).
type TimerEntry = (Instant, u64, u32, u8, u64);

const WAKER: Token = Token(0);
/// A UDP socket per (IPv6?, network interface the profile is bound to).
type UdpKey = (bool, Option<String>);

impl Engine {
    pub fn start(reporter: Arc<dyn Reporter>) -> io::Result<Engine> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let (tx, rx) = unbounded();
        let shared = Arc::new(Shared {
            core: Mutex::new(Core::new(poll, rx, reporter.clone())),
            reporter,
            generation: AtomicU64::new(0),
            finished: AtomicBool::new(false),
            drivers: Mutex::new(Vec::new()),
        });
        let engine = Engine {
            commands: tx,
            waker,
            shared,
        };
        engine.shared.spawn_driver(0)?;
        Ok(engine)
    }

    pub fn send(&self, cmd: Command) {
        if self.commands.send(cmd).is_ok() {
            let _ = self.waker.wake();
        }
    }

    /// A new thread carries on the engine; the driving thread, stuck in
    /// work its reporter runs between steps, stops driving once it returns.
    /// Returns a function to call from any thread.
    pub fn hand_off(&self) -> impl Fn() + Send + Sync + 'static {
        let shared = Arc::downgrade(&self.shared);
        move || {
            let Some(shared) = shared.upgrade() else {
                return;
            };
            if shared.finished.load(Ordering::Acquire) {
                return;
            }
            let generation = shared.generation.fetch_add(1, Ordering::AcqRel) + 1;
            log::warn(
                "an observer callback has not returned: the SIP engine goes on on a new thread",
            );
            if let Err(e) = shared.spawn_driver(generation) {
                log::error(&format!("cannot start a SIP engine thread: {e}"));
            }
        }
    }

    /// De-registers everything (at most `wait`), then joins the threads.
    pub fn shutdown(self, wait: Duration) {
        self.finish(Instant::now() + wait);
    }

    /// Shuts down by `deadline` and waits for the engine's threads. On a
    /// thread driving this engine (a callback run between steps), the
    /// engine is finished here: nobody else would drive it.
    fn finish(&self, deadline: Instant) {
        self.send(Command::Shutdown(deadline));
        let me = Arc::as_ptr(&self.shared) as usize;
        if DRIVING.with(Cell::get) == me {
            while !self.shared.finished.load(Ordering::Acquire) {
                self.shared.step();
            }
        }
        let drivers = std::mem::take(&mut *self.shared.drivers.lock());
        let current = std::thread::current().id();
        for t in drivers {
            if t.thread().id() != current {
                let _ = t.join();
            }
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        if !self.shared.drivers.lock().is_empty() {
            self.finish(Instant::now());
        }
    }
}

impl Shared {
    fn spawn_driver(self: &Arc<Self>, generation: u64) -> io::Result<()> {
        let shared = self.clone();
        let t =
            crate::thread_placement::spawn("sipprofile-engine", move || shared.drive(generation))?;
        let mut drivers = self.drivers.lock();
        drivers.retain(|t| !t.is_finished());
        drivers.push(t);
        Ok(())
    }

    /// A driving thread: steps until the engine finishes or another thread
    /// takes over.
    fn drive(&self, generation: u64) {
        DRIVING.with(|d| d.set(self as *const Shared as usize));
        while self.generation.load(Ordering::Acquire) == generation
            && !self.finished.load(Ordering::Acquire)
        {
            // A panic must not take the host process down, nor stop the
            // engine: one while handling a profile fails that profile only
            // (`Core::isolated`); one outside any profile's work is logged
            // and the engine goes on serving every profile.
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                self.reporter.run_step(&mut || self.step())
            }));
            if let Err(payload) = r {
                log::error(&format!(
                    "SIP engine: internal error outside any profile ({}); serving on",
                    panic_text(&*payload)
                ));
            }
        }
        DRIVING.with(|d| d.set(0));
    }

    /// One step under the state lock; true once the engine has finished.
    fn step(&self) -> bool {
        let mut core = self.core.lock();
        if self.finished.load(Ordering::Acquire) {
            return true;
        }
        let done = core.step();
        if done {
            self.finished.store(true, Ordering::Release);
        }
        done
    }
}

struct Entry {
    reg: Registration,
    dest: SocketAddr,
    context_id: u32,
    /// The stream connection it uses (TCP/TLS), if any now.
    conn: Option<Token>,
    /// The branch of its current transaction (key in `Core::branches`).
    branch: Option<String>,
}

/// Connections are shared by registrations with the same next hop.
type ConnKey = (
    Transport,
    SocketAddr,
    Option<String>,
    Option<std::path::PathBuf>,
    Option<String>,
);

const FIRST_CONN_TOKEN: usize = 16;

/// New registrations started at once; the rest wait their turn, so that
/// enabling 10,000 profiles does not overflow socket buffers (ours or the
/// registrar's) and turn into a storm of retransmissions. A registrar's UDP
/// socket with Linux's default buffer (208 KiB) holds about 90 requests:
/// with 256 starts and 1,024 un-REGISTERs in flight, Kamailio's socket
/// dropped about 1,900 datagrams per 10,000 profiles enabled then freed,
/// and teardown took 1.8-3.9 s of its 4 s bound waiting for retransmissions;
/// with 128, none dropped and teardown took 1.1-1.2 s.
const MAX_STARTING: usize = 128;

/// Un-REGISTERs in flight at shutdown (see [`MAX_STARTING`]). The price: a
/// registrar far away gets at most this many per round trip (10,000 take
/// 3.9 s at 50 ms).
const MAX_STOPPING: usize = 128;

/// Socket buffers asked for (the kernel caps them at net.core.*mem_max).
const SOCKET_BUFFER: usize = 4 << 20;

struct Core {
    poll: Poll,
    events: Events,
    /// Readiness from the last wait not yet worked through: (token,
    /// writable, readable). A UDP socket stays until it has no datagram.
    ready: VecDeque<(Token, bool, bool)>,
    /// Timers and queues were seen to since the last wait.
    timers_done: bool,
    buf: Vec<u8>,
    commands: Receiver<Command>,
    reporter: Arc<dyn Reporter>,
    timers: Timers,
    udp: HashMap<UdpKey, (Token, UdpSocket)>,
    udp_tokens: HashMap<Token, UdpKey>,
    // Boxed: the map over-allocates slots, and an Entry is large.
    regs: HashMap<u32, Box<Entry>>,
    branches: HashMap<String, u32>,
    /// New data waiting for the current binding to go (update, re-enable).
    pending: HashMap<u32, Box<RegConfig>>,
    heap: BinaryHeap<Reverse<TimerEntry>>,
    seq: u64,
    next_context: u32,
    shutdown: Option<Instant>,
    local_cache: HashMap<(SocketAddr, Option<String>), SocketAddr>,
    conns: HashMap<Token, StreamConn>,
    conn_index: HashMap<ConnKey, Token>,
    next_token: usize,
    /// Call-ID and CSeq of each profile's last binding, to continue them.
    bindings: HashMap<u32, Binding>,
    /// Registrations waiting to start, and those started but not yet settled.
    queued: VecDeque<(u32, Box<RegConfig>)>,
    starting: HashSet<u32>,
    /// Registrations waiting to be de-registered, and those being
    /// de-registered (paced like starts).
    stop_queue: VecDeque<u32>,
    stopping: HashSet<u32>,
}

fn kind_from(k: u8) -> TimerKind {
    match k {
        0 => TimerKind::Retransmit,
        1 => TimerKind::Timeout,
        2 => TimerKind::Refresh,
        _ => TimerKind::Retry,
    }
}

impl Core {
    fn new(poll: Poll, commands: Receiver<Command>, reporter: Arc<dyn Reporter>) -> Core {
        Core {
            poll,
            events: Events::with_capacity(64),
            ready: VecDeque::new(),
            timers_done: false,
            buf: vec![0u8; 65_536],
            commands,
            reporter,
            timers: Timers::from_env(),
            udp: HashMap::new(),
            udp_tokens: HashMap::new(),
            regs: HashMap::new(),
            branches: HashMap::new(),
            pending: HashMap::new(),
            heap: BinaryHeap::new(),
            seq: 0,
            next_context: 0,
            shutdown: None,
            local_cache: HashMap::new(),
            conns: HashMap::new(),
            conn_index: HashMap::new(),
            next_token: FIRST_CONN_TOKEN,
            bindings: HashMap::new(),
            queued: VecDeque::new(),
            starting: HashSet::new(),
            stop_queue: VecDeque::new(),
            stopping: HashSet::new(),
        }
    }

    /// One step: the next datagram, stream readiness or commands from the
    /// last wait; once those are done, timers and queues; then the next wait
    /// (a step of its own, so that what timers and queues reported is
    /// delivered before it). True once the engine has finished.
    fn step(&mut self) -> bool {
        if let Some(&(token, writable, readable)) = self.ready.front() {
            match token {
                WAKER => {
                    self.ready.pop_front();
                    self.drain_commands();
                }
                t if self.udp_tokens.contains_key(&t) => {
                    if !self.receive_one(t) {
                        self.ready.pop_front();
                    }
                }
                t => {
                    self.ready.pop_front();
                    self.stream_event(t, writable, readable);
                }
            }
            return false;
        }
        if !self.timers_done {
            self.timers_done = true;
            self.fire_timers();
            self.start_queued();
            self.stop_queued();
            if let Some(deadline) = self.shutdown
                && (self.regs.is_empty() || Instant::now() >= deadline)
            {
                for (id, e) in self.regs.drain() {
                    self.reporter.report(id, e.context_id, Report::Unregistered);
                }
                return true;
            }
            return false;
        }
        self.timers_done = false;
        let now = Instant::now();
        let mut timeout = self
            .heap
            .peek()
            .map(|Reverse((t, ..))| t.saturating_duration_since(now));
        if let Some(d) = self.shutdown {
            let left = d.saturating_duration_since(now);
            timeout = Some(timeout.map_or(left, |t| t.min(left)));
        }
        if let Err(e) = self.poll.poll(&mut self.events, timeout)
            && e.kind() != io::ErrorKind::Interrupted
        {
            log::error(&format!("engine poll failed: {e}"));
            return true;
        }
        for ev in self.events.iter() {
            let readable = ev.is_readable() || ev.is_read_closed();
            self.ready
                .push_back((ev.token(), ev.is_writable(), readable));
        }
        false
    }

    /// Runs one piece of a profile's work (a message, a timer, a command).
    /// A panic in it fails that profile alone (`SIP_ERR_GENERAL`, logged)
    /// and leaves the engine serving every other (issue 15).
    fn isolated(&mut self, id: u32, work: impl FnOnce(&mut Core)) {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(self)));
        if let Err(payload) = r {
            log::error(&format!(
                "profile {id}: internal error while handling it ({}); its registration \
                 fails, the other profiles go on",
                panic_text(&*payload)
            ));
            self.forget_failed(id);
        }
    }

    /// Drops everything the engine holds for `id` after a panic in its
    /// work, and reports it failed (a panic in that report too is caught).
    fn forget_failed(&mut self, id: u32) {
        self.pending.remove(&id);
        self.unqueue(id);
        self.starting.remove(&id);
        self.stopping.remove(&id);
        self.stop_queue.retain(|q| *q != id);
        let mut context_id = 0;
        if let Some(e) = self.regs.remove(&id) {
            if let Some(b) = &e.branch {
                self.branches.remove(b);
            }
            context_id = e.context_id;
            self.release_connection(id, e.conn);
        }
        let reporter = self.reporter.clone();
        let failed = Report::Failed(crate::Error::General.code());
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            reporter.report(id, context_id, failed)
        }))
        .is_err()
        {
            log::error(&format!("profile {id}: reporting its failure failed too"));
        }
    }

    fn drain_commands(&mut self) {
        while let Ok(cmd) = self.commands.try_recv() {
            match cmd {
                Command::Shutdown(_) => self.command(cmd),
                Command::Register(id, _)
                | Command::Update(id, _)
                | Command::Unregister(id)
                | Command::Forget(id)
                | Command::RetryNow(id) => self.isolated(id, |core| core.command(cmd)),
            }
        }
    }

    fn command(&mut self, cmd: Command) {
        match cmd {
            Command::Register(id, cfg) => self.register(id, cfg),
            Command::Update(id, cfg) => {
                if let Some(p) = self.pending.get_mut(&id) {
                    *p = cfg; // re-registering anyway: with the newest data
                } else if let Some(q) = self.queued.iter_mut().find(|(q, _)| *q == id) {
                    q.1 = cfg; // not started yet: start with the newest data
                } else {
                    self.with_reg(id, |r, out| r.update_in_place(*cfg, out));
                }
            }
            Command::Unregister(id) => {
                self.pending.remove(&id);
                if self.unqueue(id) {
                    self.reporter.report(id, 0, Report::Unregistered);
                }
                // Paced like starts (`stop_queued`): freeing 10,000
                // handles must not burst 10,000 un-REGISTERs.
                if self.regs.contains_key(&id) {
                    self.stop_queue.push_back(id);
                }
            }
            Command::Forget(id) => {
                self.pending.remove(&id);
                self.unqueue(id);
                self.starting.remove(&id);
                if let Some(e) = self.regs.remove(&id) {
                    if let Some(b) = &e.branch {
                        self.branches.remove(b);
                    }
                    self.release_connection(id, e.conn);
                }
            }
            Command::RetryNow(id) => self.with_reg(id, |r, out| r.retry_now(out)),
            Command::Shutdown(deadline) => {
                self.shutdown = Some(deadline);
                self.pending.clear();
                for (id, _) in std::mem::take(&mut self.queued) {
                    self.reporter.report(id, 0, Report::Unregistered);
                }
                self.stop_queue = self.regs.keys().copied().collect();
            }
        }
    }

    fn register(&mut self, id: u32, cfg: Box<RegConfig>) {
        if self.shutdown.is_some() {
            return;
        }
        if !self.regs.contains_key(&id) && self.starting.len() >= MAX_STARTING {
            self.queued.retain(|(q, _)| *q != id);
            self.queued.push_back((id, cfg));
            return;
        }
        if self.regs.contains_key(&id) {
            // Let the current binding go first (ref §5.3, §5.5).
            self.pending.insert(id, cfg);
            self.with_reg(id, |r, out| r.stop(out));
            return;
        }
        let dest = match resolve(cfg.next_hop()) {
            Ok(d) => d,
            Err(code) => {
                self.reporter.report(id, 0, Report::Failed(code));
                return;
            }
        };
        let conn = match cfg.transport {
            Transport::Udp => Ok(None),
            _ => self.connection(id, &cfg, dest).map(Some),
        };
        let local = match &conn {
            Ok(Some(tok)) => Ok(self.conns[tok].local),
            Ok(None) => self.local_addr_for(dest, cfg.interface.as_deref()),
            Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
        };
        let Ok(local) = local else {
            self.reporter
                .report(id, 0, Report::Failed(crate::error::SIP_TRANSPORT_FAILURE));
            return;
        };
        self.next_context = self.next_context.wrapping_add(1).max(1);
        let mut reg = Registration::new(*cfg, self.timers, local);
        if let Some(b) = self.bindings.remove(&id) {
            reg.continue_binding(b);
        }
        let entry = Entry {
            reg,
            dest,
            context_id: self.next_context,
            conn: conn.ok().flatten(),
            branch: None,
        };
        self.regs.insert(id, Box::new(entry));
        self.starting.insert(id);
        self.with_reg(id, |r, out| r.start(out));
    }

    fn start_queued(&mut self) {
        while self.starting.len() < MAX_STARTING {
            let Some((id, cfg)) = self.queued.pop_front() else {
                break;
            };
            self.register(id, cfg);
        }
    }

    fn stop_queued(&mut self) {
        while self.stopping.len() < MAX_STOPPING {
            let Some(id) = self.stop_queue.pop_front() else {
                break;
            };
            if self.regs.contains_key(&id) {
                self.stopping.insert(id);
                self.with_reg(id, |r, out| r.stop(out));
            }
        }
    }

    /// Takes `id` out of the start queue; true if it was waiting there.
    fn unqueue(&mut self, id: u32) -> bool {
        let before = self.queued.len();
        self.queued.retain(|(q, _)| *q != id);
        before != self.queued.len()
    }

    /// The stream connection for `cfg`'s next hop: an open one if any
    /// (reused across profiles), else a new one (connecting).
    fn connection(&mut self, id: u32, cfg: &RegConfig, dest: SocketAddr) -> io::Result<Token> {
        let tls_name =
            (cfg.transport == Transport::Tls).then(|| cfg.next_hop().host_unbracketed().to_owned());
        let key: ConnKey = (
            cfg.transport,
            dest,
            tls_name.clone(),
            cfg.tls_ca_file.clone(),
            cfg.interface.clone(),
        );
        if let Some(tok) = self.conn_index.get(&key)
            && let Some(c) = self.conns.get_mut(tok)
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
        let tok = Token(self.next_token);
        self.next_token += 1;
        self.poll.registry().register(
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
        self.conns.insert(tok, conn);
        self.conn_index.insert(key, tok);
        Ok(tok)
    }

    /// Gives a stream registration without a connection a new one.
    fn reconnect(&mut self, id: u32) {
        let Some(e) = self.regs.get(&id) else { return };
        if e.conn.is_some() || !e.reg.transport().is_reliable() {
            return;
        }
        let (cfg, dest) = (e.reg.config.clone(), e.dest);
        match self.connection(id, &cfg, dest) {
            Ok(tok) => {
                let local = self.conns[&tok].local;
                if let Some(e) = self.regs.get_mut(&id) {
                    e.conn = Some(tok);
                    e.reg.set_local(local);
                }
            }
            Err(err) => log::warn(&format!("connecting to {dest}: {err}")),
        }
    }

    fn drop_connection(&mut self, tok: Token, state: StreamState) {
        let Some(mut conn) = self.conns.remove(&tok) else {
            return;
        };
        let _ = self.poll.registry().deregister(&mut conn.stream);
        self.conn_index.retain(|_, t| *t != tok);
        log::info(&format!("connection to {} closed ({state:?})", conn.peer));
        for id in conn.users {
            if let Some(e) = self.regs.get_mut(&id) {
                e.conn = None;
            }
            if state == StreamState::CertificateRefused {
                self.with_reg(id, |r, out| r.on_certificate_refused(out));
            } else {
                self.with_reg(id, |r, out| r.on_connection_lost(out));
            }
        }
    }

    fn release_connection(&mut self, id: u32, tok: Option<Token>) {
        let Some(tok) = tok else { return };
        let empty = match self.conns.get_mut(&tok) {
            Some(c) => {
                c.users.remove(&id);
                c.users.is_empty()
            }
            None => false,
        };
        if empty {
            if let Some(mut c) = self.conns.remove(&tok) {
                let _ = self.poll.registry().deregister(&mut c.stream);
            }
            self.conn_index.retain(|_, t| *t != tok);
        }
    }

    fn stream_event(&mut self, tok: Token, writable: bool, readable: bool) {
        let mut msgs = Vec::new();
        let state = {
            let Some(conn) = self.conns.get_mut(&tok) else {
                return;
            };
            let mut state = StreamState::Open;
            if writable && let Err(e) = conn.on_writable() {
                log::warn(&format!("connection to {}: {e}", conn.peer));
                state = StreamState::Closed;
            }
            if readable && state == StreamState::Open {
                state = conn.on_readable(&mut msgs);
            }
            state
        };
        let from = self.conns[&tok].peer;
        for m in msgs {
            self.handle_datagram(&m, from);
        }
        if state != StreamState::Open {
            self.drop_connection(tok, state);
        }
    }

    /// The address our socket is seen from when sending to `dest`.
    fn local_addr_for(&mut self, dest: SocketAddr, iface: Option<&str>) -> io::Result<SocketAddr> {
        let sock_port = self.socket(dest.is_ipv6(), iface)?.local_addr()?.port();
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

    fn socket(&mut self, v6: bool, iface: Option<&str>) -> io::Result<&UdpSocket> {
        let key: UdpKey = (v6, iface.map(str::to_owned));
        if !self.udp.contains_key(&key) {
            let mut s = UdpSocket::from_std(udp_socket(v6, iface)?);
            let token = Token(self.next_token);
            self.next_token += 1;
            self.poll
                .registry()
                .register(&mut s, token, Interest::READABLE)?;
            self.udp_tokens.insert(token, key.clone());
            self.udp.insert(key.clone(), (token, s));
        }
        Ok(&self.udp[&key].1)
    }

    fn with_reg(&mut self, id: u32, f: impl FnOnce(&mut Registration, &mut Vec<Action>)) {
        self.isolated(id, |core| {
            let mut out = Vec::new();
            match core.regs.get_mut(&id) {
                Some(e) => f(&mut e.reg, &mut out),
                None => {
                    // Nothing running for this id: a stop is already complete.
                    return;
                }
            }
            core.apply(id, out);
        });
    }

    fn apply(&mut self, id: u32, actions: Vec<Action>) {
        for a in actions {
            let Some(e) = self.regs.get(&id) else { return };
            match a {
                Action::Send(data) => {
                    let dest = e.dest;
                    if log::enabled(log::TRACE) {
                        log::log(
                            log::TRACE,
                            &format!(
                                "send to {dest}:\n{}",
                                masked_for_log(&String::from_utf8_lossy(&data))
                            ),
                        );
                    }
                    let res = if e.reg.transport().is_reliable() {
                        if e.conn.is_none() {
                            self.reconnect(id);
                        }
                        let tok = self.regs.get(&id).and_then(|e| e.conn);
                        match tok.and_then(|t| self.conns.get_mut(&t)) {
                            Some(c) => c.send(&data),
                            None => Err(io::ErrorKind::NotConnected.into()),
                        }
                    } else {
                        let iface = e.reg.config.interface.clone();
                        self.socket(dest.is_ipv6(), iface.as_deref())
                            .and_then(|s| s.send_to(&data, dest))
                            .map(|_| ())
                    };
                    if let Err(err) = res {
                        log::warn(&format!("send to {dest} failed: {err}"));
                        if is_outgoing_full(&err) {
                            // The peer does not read: the flow goes, and each
                            // profile on it gets a transport error (issue 15).
                            if let Some(tok) = self.regs.get(&id).and_then(|e| e.conn) {
                                self.drop_connection(tok, StreamState::Closed);
                            }
                            return;
                        }
                        let mut out = Vec::new();
                        if let Some(e) = self.regs.get_mut(&id) {
                            e.reg.on_transport_error(&mut out);
                        }
                        self.apply(id, out);
                        return;
                    }
                }
                Action::Timer(kind, after, generation) => {
                    self.seq += 1;
                    self.heap.push(Reverse((
                        // Saturating: `after` may come from a peer's number.
                        deadline(Instant::now(), after),
                        self.seq,
                        id,
                        kind as u8,
                        generation,
                    )));
                }
                Action::Branch(b) => {
                    // O(1): only this registration's previous branch goes.
                    if let Some(e) = self.regs.get_mut(&id)
                        && let Some(old) = e.branch.replace(b.clone())
                    {
                        self.branches.remove(&old);
                    }
                    self.branches.insert(b, id);
                }
                Action::Report(r) => {
                    if !matches!(r, Report::Registering | Report::Unregistering) {
                        self.starting.remove(&id);
                    }
                    if matches!(r, Report::Failed(_)) {
                        // Ref §5.7: a failure removes every user; new data
                        // waiting for this binding is stored, not registered.
                        self.pending.remove(&id);
                    }
                    let ctx = e.context_id;
                    self.reporter.report(id, ctx, r);
                }
                Action::Done => {
                    self.starting.remove(&id);
                    self.stopping.remove(&id);
                    if let Some(e) = self.regs.remove(&id) {
                        self.bindings.insert(id, e.reg.binding());
                        if let Some(b) = &e.branch {
                            self.branches.remove(b);
                        }
                        self.release_connection(id, e.conn);
                    }
                    if let Some(cfg) = self.pending.remove(&id) {
                        self.register(id, cfg);
                    }
                    return;
                }
            }
        }
    }

    fn fire_timers(&mut self) {
        let now = Instant::now();
        while let Some(Reverse((t, _, id, kind, generation))) = self.heap.peek().copied() {
            if t > now {
                break;
            }
            self.heap.pop();
            let kind = kind_from(kind);
            self.isolated(id, |core| {
                if matches!(kind, TimerKind::Refresh | TimerKind::Retry) {
                    core.reconnect(id);
                }
                core.with_reg(id, |r, out| r.on_timer(kind, generation, out));
            });
        }
    }

    /// Reads and handles one datagram of the socket `token`; false once it
    /// has none (mio's readiness is edge-triggered: read until then).
    fn receive_one(&mut self, token: Token) -> bool {
        let Some(sock) = self.udp_tokens.get(&token).and_then(|k| self.udp.get(k)) else {
            return false;
        };
        let (n, from) = match sock.1.recv_from(&mut self.buf) {
            Ok(x) => x,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
            Err(e) => {
                // ICMP errors surface here on Linux; they are matched to
                // nothing, so the transaction times out and retries.
                log::debug(&format!("receive error: {e}"));
                return true;
            }
        };
        let data = self.buf[..n].to_vec();
        self.handle_datagram(&data, from);
        true
    }

    /// One message from the network (a datagram or a framed stream message):
    /// a response goes to the registration whose branch it carries.
    fn handle_datagram(&mut self, data: &[u8], from: SocketAddr) {
        if log::enabled(log::TRACE) {
            log::log(
                log::TRACE,
                &format!(
                    "received from {from}:\n{}",
                    masked_for_log(&String::from_utf8_lossy(data))
                ),
            );
        }
        let msg = match Message::parse(data) {
            Ok(m) => m,
            Err(e) => {
                log::debug(&format!("dropped malformed message from {from}: {e:?}"));
                return;
            }
        };
        if msg.status().is_none() {
            return; // Requests (OPTIONS, NOTIFY…) are not served here.
        }
        let Some(branch) = msg
            .top_via()
            .and_then(|v| v.param("branch").flatten())
            .map(str::to_owned)
        else {
            return;
        };
        let Some(&id) = self.branches.get(&branch) else {
            log::debug(&format!("dropped unmatched response from {from}"));
            return;
        };
        self.with_reg(id, |r, out| r.on_response(&msg, out));
    }
}

/// What a panic said, for the log.
fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".into())
}

/// The next hop's address: an IP literal directly, a name through the
/// system resolver (A/AAAA). Default port 5060, 5061 for `sips:`.
fn resolve(uri: &super::uri::Uri) -> Result<SocketAddr, i32> {
    let port = uri.port.unwrap_or(match uri.scheme {
        super::uri::Scheme::Sips => 5061,
        _ => 5060,
    });
    let host = uri.host_unbracketed();
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    (host, port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or(crate::error::SIP_RESOLVING_FAILURE)
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

    struct NoReports;

    impl Reporter for NoReports {
        fn report(&self, _: u32, _: u32, _: Report) {}
    }

    /// Panics while reporting `Registering` for profile 1, records the rest.
    struct PanicsForOne(std::sync::Mutex<Vec<(u32, Report)>>);

    impl Reporter for PanicsForOne {
        fn report(&self, id: u32, _: u32, report: Report) {
            if id == 1 && report == Report::Registering {
                panic!("a bug reached while reporting profile 1");
            }
            self.0.lock().unwrap().push((id, report));
        }
    }

    fn config(registrar: SocketAddr) -> RegConfig {
        RegConfig {
            aor: "sip:alice@example.com".into(),
            registrar: super::super::uri::Uri::parse(&format!("sip:{registrar}")).unwrap(),
            proxy: None,
            contact_user: "abcdefghij0123456789".into(),
            contact_params: vec![],
            headers: vec![],
            expires: 600,
            registrar_creds: Default::default(),
            proxy_creds: Default::default(),
            retry_base: 30,
            retry_max: 1800,
            instance_id: None,
            ims: false,
            transport: Transport::Udp,
            tls_ca_file: None,
            interface: None,
            digest_min: None,
        }
    }

    #[test]
    fn a_panic_in_one_profile_fails_that_profile_only() {
        let registrar = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        registrar
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let reports = Arc::new(PanicsForOne(std::sync::Mutex::new(Vec::new())));
        let (commands, rx) = unbounded();
        let mut core = Core::new(Poll::new().unwrap(), rx, reports.clone());
        let cfg = || Box::new(config(registrar.local_addr().unwrap()));
        commands.send(Command::Register(1, cfg())).unwrap();
        commands.send(Command::Register(2, cfg())).unwrap();
        core.drain_commands();
        let seen = reports.0.lock().unwrap().clone();
        assert_eq!(
            seen,
            vec![
                (1, Report::Failed(crate::Error::General.code())),
                (2, Report::Registering)
            ]
        );
        assert!(!core.regs.contains_key(&1) && core.regs.contains_key(&2));
        assert!(core.branches.values().all(|id| *id == 2));
        // Profile 2's REGISTER went out; profile 1 sent nothing.
        let mut buf = [0u8; 4096];
        let (n, _) = registrar.recv_from(&mut buf).unwrap();
        assert!(buf[..n].starts_with(b"REGISTER "));
        registrar
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        assert!(registrar.recv_from(&mut buf).is_err());
        // And the engine takes new work for profile 1 afterwards.
        commands.send(Command::Unregister(1)).unwrap();
        commands.send(Command::RetryNow(2)).unwrap();
        core.drain_commands();
        assert!(core.regs.contains_key(&2));
    }

    #[test]
    fn a_timer_from_a_huge_wait_does_not_overflow() {
        let registrar = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let (_commands, rx) = unbounded();
        let mut core = Core::new(Poll::new().unwrap(), rx, Arc::new(NoReports));
        core.register(7, Box::new(config(registrar.local_addr().unwrap())));
        core.apply(7, vec![Action::Timer(TimerKind::Retry, Duration::MAX, 1)]);
        let latest = core.heap.iter().map(|Reverse(t)| t.0).max().unwrap();
        assert!(latest <= Instant::now() + super::super::timers::MAX_WAIT);
    }

    #[test]
    fn a_connection_whose_peer_does_not_read_is_closed() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut cfg = config(listener.local_addr().unwrap());
        cfg.registrar = super::super::uri::Uri::parse(&format!(
            "sip:{};transport=tcp",
            listener.local_addr().unwrap()
        ))
        .unwrap();
        cfg.transport = Transport::Tcp;
        let (_commands, rx) = unbounded();
        let mut core = Core::new(Poll::new().unwrap(), rx, Arc::new(NoReports));
        core.register(1, Box::new(cfg));
        let _peer = listener.accept().unwrap(); // and never reads
        assert_eq!(core.conns.len(), 1);
        let big = vec![b'x'; super::super::transport::MAX_OUTGOING / 2 + 1];
        core.apply(1, vec![Action::Send(big.clone())]);
        assert_eq!(core.conns.len(), 1, "under the limit: kept");
        core.apply(1, vec![Action::Send(big)]);
        assert!(core.conns.is_empty(), "over the limit: closed");
        assert!(core.conn_index.is_empty());
        // Its profile lost the connection: it waits to retry, on a new one.
        assert_eq!(core.regs[&1].conn, None);
        assert!(
            core.heap
                .iter()
                .any(|Reverse(t)| t.2 == 1 && t.3 == TimerKind::Retry as u8)
        );
    }

    #[test]
    fn a_step_that_fires_timers_returns_before_the_wait() {
        let poll = Poll::new().unwrap();
        let (_commands, rx) = unbounded();
        let mut core = Core::new(poll, rx, Arc::new(NoReports));
        // A retransmission due now, of a registration that is gone: the
        // last timer. What a timer reports must be delivered before the
        // wait, which here has no end.
        core.heap.push(Reverse((Instant::now(), 0, 1, 0, 0)));
        let (done, stepped) = std::sync::mpsc::channel();
        std::thread::spawn(move || done.send(core.step()));
        assert_eq!(stepped.recv_timeout(Duration::from_secs(10)), Ok(false));
    }
}
