//! The engine: one thread per profile server running every registration of
//! that server over one shared UDP socket per address family, with all timers
//! in one heap. No thread, socket or timer thread per profile, so 10,000
//! profiles cost one thread and two sockets.
//!
//! The engine works in steps (one datagram, one stream's readiness, the
//! queued commands, or a wait for the next of these) on its one thread. It
//! runs no application code: its reports go to the profile server, which
//! queues them for its clients without waiting for them.
//!
//! What the engine does itself: the commands, the timers, which of a next
//! hop's targets each registration uses (RFC 3263 failover), answering
//! requests to our Contact, and following network changes. What it leaves
//! to others: sockets, flows and their keep-alives ([`Connections`]), name
//! lookups on a resolver thread (`resolve`), the REGISTER state machine
//! (`registration`).

use super::connections::{Connections, Datagram, Flow, FlowFailure, Origin};
use super::message::{Message, masked_for_log};
use super::netwatch::{Change, NetWatch};
use super::registration::{
    Action, Binding, Granted, RegConfig, Registration, Report, Retarget, TimerKind,
};
use super::resolve::{Names, Query, Resolution, Target};
use super::timers::{Timers, deadline};
use super::transport::{StreamState, Transport, is_outgoing_full};
use super::uas;
use crate::log;
use crossbeam_channel::{Receiver, Sender, unbounded};
use mio::{Events, Poll, Token, Waker};
use parking_lot::Mutex;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Receives status changes of registrations, on the engine thread. It must
/// not block for long (it takes the server lock briefly).
pub trait Reporter: Send + Sync {
    fn report(&self, profile_id: u32, context_id: u32, report: Report);
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
    backlog: Arc<Backlog>,
}

/// Commands waiting for the engine past which a client's request waits
/// (at [`Gate::wait`]) before it is carried out. A command is a few hundred
/// bytes (a registration's configuration, when it has one): the engine's
/// queue holds at most this many, plus what the requests already past the
/// gate make (at most one per profile each request names), plus what the
/// server makes by itself (at most one per profile: auto-registration,
/// a client gone). The sender never waits while it holds a lock: the engine
/// takes the server's lock to report, so a sender waiting for room under it
/// would wait for ever.
pub const MAX_COMMANDS: usize = 1024;

/// How many commands wait for the engine, for [`Gate`].
#[derive(Default)]
struct Backlog {
    /// (waiting commands, senders waiting for room, the engine finished).
    state: Mutex<(usize, usize, bool)>,
    room: parking_lot::Condvar,
}

impl Backlog {
    fn add(&self) {
        self.state.lock().0 += 1;
    }

    /// The engine took `n` commands.
    fn taken(&self, n: usize) {
        if n == 0 {
            return;
        }
        let mut s = self.state.lock();
        s.0 = s.0.saturating_sub(n);
        if s.1 > 0 && s.0 < MAX_COMMANDS {
            self.room.notify_all();
        }
    }

    /// The engine takes no more: nobody waits for it.
    fn close(&self) {
        self.state.lock().2 = true;
        self.room.notify_all();
    }
}

/// Where a request that will give the engine commands waits for room.
pub struct Gate(Arc<Backlog>);

impl Gate {
    /// Returns once fewer than [`MAX_COMMANDS`] commands wait for the engine
    /// (or it has finished). Called with no lock held.
    pub fn wait(&self) {
        let mut s = self.0.state.lock();
        if s.0 >= MAX_COMMANDS && !s.2 {
            s.1 += 1;
            while s.0 >= MAX_COMMANDS && !s.2 {
                self.0.room.wait(&mut s);
            }
            s.1 -= 1;
        }
    }
}

/// What the engine's thread and its owner share.
struct Shared {
    core: Mutex<Core>,
    /// Set once the engine has finished (shut down or failed).
    finished: AtomicBool,
    driver: Mutex<Option<JoinHandle<()>>>,
}

/// (due, insertion order, profile id, timer kind, generation).
type TimerEntry = (Instant, u64, u32, u8, u64);

const WAKER: Token = Token(0);
const NETWATCH: Token = Token(1);

/// Every engine of the process, for `network_changed`: its "look again"
/// flag and its waker.
type EngineLink = (std::sync::Weak<AtomicBool>, std::sync::Weak<Waker>);
static ENGINES: Mutex<Vec<EngineLink>> = Mutex::new(Vec::new());

/// The application says the network changed (`sip_network_changed`): every
/// engine of this process looks again at where its registrations go.
pub fn network_changed() {
    let mut engines = ENGINES.lock();
    engines.retain(|(flag, waker)| {
        let (Some(flag), Some(waker)) = (flag.upgrade(), waker.upgrade()) else {
            return false;
        };
        flag.store(true, Ordering::Release);
        waker.wake().is_ok()
    });
}

impl Engine {
    pub fn start(reporter: Arc<dyn Reporter>) -> io::Result<Engine> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        // Unbounded as a channel: what bounds it is the gate before the
        // requests that make commands (`MAX_COMMANDS`).
        let (tx, rx) = unbounded();
        let core = Core::new(poll, rx, reporter, waker.clone())?;
        let backlog = core.backlog.clone();
        let shared = Arc::new(Shared {
            core: Mutex::new(core),
            finished: AtomicBool::new(false),
            driver: Mutex::new(None),
        });
        let s = shared.clone();
        let t = crate::thread_placement::spawn("sipprofile-engine", move || s.drive())?;
        *shared.driver.lock() = Some(t);
        Ok(Engine {
            commands: tx,
            waker,
            shared,
            backlog,
        })
    }

    /// Queues a command; never waits (see [`MAX_COMMANDS`] for the bound).
    pub fn send(&self, cmd: Command) {
        self.backlog.add();
        if self.commands.send(cmd).is_ok() {
            let _ = self.waker.wake();
        } else {
            self.backlog.taken(1);
        }
    }

    /// Where a request waits for room before it makes commands.
    pub fn gate(&self) -> Gate {
        Gate(self.backlog.clone())
    }

    /// Commands waiting, and senders waiting for room (test hook).
    #[cfg(test)]
    fn backlog(&self) -> (usize, usize) {
        let s = self.backlog.state.lock();
        (s.0, s.1)
    }

    /// De-registers everything (at most `wait`), then joins the thread.
    pub fn shutdown(self, wait: Duration) {
        self.finish(Instant::now() + wait);
    }

    /// Shuts down by `deadline` and waits for the engine's thread.
    fn finish(&self, deadline: Instant) {
        self.send(Command::Shutdown(deadline));
        let driver = self.shared.driver.lock().take();
        if let Some(t) = driver
            && t.thread().id() != std::thread::current().id()
        {
            let _ = t.join();
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        if self.shared.driver.lock().is_some() {
            self.finish(Instant::now());
        }
    }
}

impl Shared {
    /// The engine's thread: steps until the engine finishes.
    fn drive(&self) {
        let backlog = self.core.lock().backlog.clone();
        self.drive_steps();
        backlog.close();
    }

    fn drive_steps(&self) {
        while !self.finished.load(Ordering::Acquire) {
            // A panic must not take the host process down, nor stop the
            // engine: one while handling a profile fails that profile only
            // (`Core::isolated`); one outside any profile's work is logged
            // and the engine goes on serving every profile.
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.step()));
            if let Err(payload) = r {
                log::error(&format!(
                    "SIP engine: internal error outside any profile ({}); serving on",
                    panic_text(&*payload)
                ));
            }
        }
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
    /// What its next hop was located from, the targets found (best first)
    /// until when, and the one in use.
    query: Query,
    targets: Vec<Target>,
    valid_until: Instant,
    target: usize,
    dest: SocketAddr,
    context_id: u32,
    /// The stream connection it uses (TCP/TLS), if any now.
    conn: Option<Token>,
    /// The branch of its current transaction (key in `Core::branches`).
    branch: Option<String>,
    /// When that transaction's request went, while it has gone once and
    /// is unanswered: its answer gives a round trip (Karn: not from a
    /// request sent again). `Some(None)`: new, not sent yet.
    sent: Option<Option<Instant>>,
    /// The last such round trip, for the flow's keep-alive.
    rtt: Option<Duration>,
}

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
    /// How many commands wait: the gate's count.
    backlog: Arc<Backlog>,
    reporter: Arc<dyn Reporter>,
    timers: Timers,
    /// UDP sockets and stream flows.
    conns: Connections,
    /// Next hops' targets, and the lookups under way.
    names: Names<Waiting>,
    /// Registrations waiting for their next hop's lookup to start.
    resolving: HashMap<u32, Box<RegConfig>>,
    /// Address and link changes, when they can be watched.
    netwatch: Option<NetWatch>,
    /// Set by `network_changed` (the application's word).
    look_again: Arc<AtomicBool>,
    /// Contact users of registrations (entries of those gone linger, and
    /// are checked against `regs`).
    contacts: HashMap<String, u32>,
    // Boxed: the map over-allocates slots, and an Entry is large.
    regs: HashMap<u32, Box<Entry>>,
    branches: HashMap<String, u32>,
    /// New data waiting for the current binding to go (update, re-enable).
    pending: HashMap<u32, Box<RegConfig>>,
    heap: BinaryHeap<Reverse<TimerEntry>>,
    seq: u64,
    next_context: u32,
    shutdown: Option<Instant>,
    /// Call-ID and CSeq of each profile's last binding, to continue them.
    bindings: HashMap<u32, Binding>,
    /// Registrations waiting to start, and those started but not yet settled.
    /// (In start order; an id whose configuration is gone from
    /// `queued_cfg` was taken out and is skipped. A map beside the queue:
    /// taking one out of 100,000 waiting must not scan them all.)
    queued: VecDeque<u32>,
    queued_cfg: HashMap<u32, Box<RegConfig>>,
    starting: HashSet<u32>,
    /// Registrations waiting to be de-registered, and those being
    /// de-registered (paced like starts).
    stop_queue: VecDeque<u32>,
    stopping: HashSet<u32>,
}

/// Who waits for a lookup: a registration to start, or one to retry (with
/// its Retry timer's generation) once its targets have expired.
enum Waiting {
    Start(u32),
    Retry(u32, u64),
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
    fn new(
        poll: Poll,
        commands: Receiver<Command>,
        reporter: Arc<dyn Reporter>,
        waker: Arc<Waker>,
    ) -> io::Result<Core> {
        let registry = poll.registry().try_clone()?;
        let engine_waker = Arc::downgrade(&waker);
        let wake = Arc::new(move || {
            let _ = waker.wake();
        });
        let look_again = Arc::new(AtomicBool::new(false));
        {
            let mut engines = ENGINES.lock();
            engines.retain(|(flag, _)| flag.strong_count() > 0);
            engines.push((Arc::downgrade(&look_again), engine_waker));
        }
        let netwatch = if std::env::var("SIPPROFILE_WATCH_NETWORK").as_deref() == Ok("0") {
            None
        } else {
            match NetWatch::open() {
                Ok(w) => {
                    poll.registry().register(
                        &mut mio::unix::SourceFd(&w.fd()),
                        NETWATCH,
                        mio::Interest::READABLE,
                    )?;
                    Some(w)
                }
                Err(e) => {
                    log::warn(&format!("network changes not watched: {e}"));
                    None
                }
            }
        };
        Ok(Core {
            poll,
            events: Events::with_capacity(64),
            ready: VecDeque::new(),
            timers_done: false,
            buf: vec![0u8; 65_536],
            commands,
            backlog: Arc::new(Backlog::default()),
            reporter,
            timers: Timers::from_env(),
            conns: Connections::new(registry),
            names: Names::new(wake),
            resolving: HashMap::new(),
            netwatch,
            look_again,
            contacts: HashMap::new(),
            regs: HashMap::new(),
            branches: HashMap::new(),
            pending: HashMap::new(),
            heap: BinaryHeap::new(),
            seq: 0,
            next_context: 0,
            shutdown: None,
            bindings: HashMap::new(),
            queued: VecDeque::new(),
            queued_cfg: HashMap::new(),
            starting: HashSet::new(),
            stop_queue: VecDeque::new(),
            stopping: HashSet::new(),
        })
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
                    self.take_answers();
                    if self.look_again.swap(false, Ordering::AcqRel) {
                        self.network_changed(true);
                    }
                }
                NETWATCH => {
                    self.ready.pop_front();
                    let changes = self
                        .netwatch
                        .as_mut()
                        .map(NetWatch::changes)
                        .unwrap_or_default();
                    if !changes.is_empty() {
                        log::debug(&format!("network: {changes:?}"));
                        let link_up = changes
                            .iter()
                            .any(|c| matches!(c, Change::Link { up: true, .. }));
                        self.network_changed(link_up);
                    }
                }
                t if self.conns.is_datagram(t) => {
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
            self.keep_alives();
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
        self.drop_stale_timers();
        let now = Instant::now();
        let mut timeout = self
            .heap
            .peek()
            .map(|Reverse((t, ..))| t.saturating_duration_since(now));
        if let Some(d) = self.shutdown {
            let left = d.saturating_duration_since(now);
            timeout = Some(timeout.map_or(left, |t| t.min(left)));
        }
        if let Some(k) = self.conns.next_keep_alive() {
            let left = k.saturating_duration_since(now);
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
        self.unpark(id);
        self.starting.remove(&id);
        self.stopping.remove(&id);
        self.stop_queue.retain(|q| *q != id);
        let mut context_id = 0;
        if let Some(e) = self.regs.remove(&id) {
            if let Some(b) = &e.branch {
                self.branches.remove(b);
            }
            context_id = e.context_id;
            self.conns.release(id, e.conn);
            self.conns.leave(id);
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
            self.backlog.taken(1);
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
        {
            match cmd {
                Command::Register(id, cfg) => self.register(id, cfg),
                Command::Update(id, cfg) => {
                    if self.resolving.contains_key(&id) {
                        self.register(id, cfg); // not started: with the newest data
                    } else if let Some(p) = self.pending.get_mut(&id) {
                        *p = cfg; // re-registering anyway: with the newest data
                    } else if let Some(q) = self.queued_cfg.get_mut(&id) {
                        *q = cfg; // not started yet: start with the newest data
                    } else {
                        self.with_reg(id, |r, out| r.update_in_place(*cfg, out));
                    }
                }
                Command::Unregister(id) => {
                    self.pending.remove(&id);
                    if self.unqueue(id) || self.unpark(id) {
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
                    self.unpark(id);
                    self.starting.remove(&id);
                    if let Some(e) = self.regs.remove(&id) {
                        if let Some(b) = &e.branch {
                            self.branches.remove(b);
                        }
                        self.conns.release(id, e.conn);
                        self.conns.leave(id);
                    }
                }
                Command::RetryNow(id) => self.with_reg(id, |r, out| r.retry_now(out)),
                Command::Shutdown(deadline) => {
                    self.shutdown = Some(deadline);
                    self.pending.clear();
                    self.queued.clear();
                    for (id, _) in std::mem::take(&mut self.queued_cfg) {
                        self.reporter.report(id, 0, Report::Unregistered);
                    }
                    for (id, _) in std::mem::take(&mut self.resolving) {
                        self.starting.remove(&id);
                        self.reporter.report(id, 0, Report::Unregistered);
                    }
                    self.stop_queue = self.regs.keys().copied().collect();
                }
            }
        }
    }

    fn register(&mut self, id: u32, cfg: Box<RegConfig>) {
        if self.shutdown.is_some() {
            return;
        }
        let parked = self.resolving.remove(&id).is_some();
        if !parked && !self.regs.contains_key(&id) && self.starting.len() >= MAX_STARTING {
            if self.queued_cfg.insert(id, cfg).is_none() {
                self.queued.push_back(id);
            }
            return;
        }
        if self.regs.contains_key(&id) {
            // Let the current binding go first (ref §5.3, §5.5).
            self.pending.insert(id, cfg);
            self.with_reg(id, |r, out| r.stop(out));
            return;
        }
        let Some(query) = Query::of(cfg.next_hop()) else {
            self.starting.remove(&id);
            self.reporter
                .report(id, 0, Report::Failed(crate::error::SIP_TRANSPORT_FAILURE));
            return;
        };
        match self.names.locate(&query, Waiting::Start(id)) {
            Some(Ok(found)) => self.begin(id, cfg, query, found),
            Some(Err(code)) => {
                self.starting.remove(&id);
                self.reporter.report(id, 0, Report::Failed(code));
            }
            None => {
                // Counted as starting while the lookup runs.
                self.starting.insert(id);
                self.resolving.insert(id, cfg);
            }
        }
    }

    /// Takes `id` out of those waiting for a lookup; true if it was there.
    fn unpark(&mut self, id: u32) -> bool {
        let parked = self.resolving.remove(&id).is_some();
        if parked {
            self.starting.remove(&id);
        }
        parked
    }

    /// Lookups that finished: registrations waiting for them go on.
    fn take_answers(&mut self) {
        for (query, result, waiting) in self.names.answered() {
            for w in waiting {
                match w {
                    Waiting::Start(id) => {
                        // Still waiting, and for this next hop (new data may
                        // have asked for another since).
                        let same = self
                            .resolving
                            .get(&id)
                            .is_some_and(|c| Query::of(c.next_hop()).as_ref() == Some(&query));
                        if !same {
                            continue;
                        }
                        let Some(cfg) = self.resolving.remove(&id) else {
                            continue;
                        };
                        match &result {
                            Ok(found) => self.begin(id, cfg, query.clone(), found.clone()),
                            Err(code) => {
                                self.starting.remove(&id);
                                self.reporter.report(id, 0, Report::Failed(*code));
                            }
                        }
                    }
                    Waiting::Retry(id, generation) => {
                        if let Ok(found) = &result {
                            self.set_targets(id, found.clone());
                        }
                        self.retry(id, generation, true);
                    }
                }
            }
        }
    }

    /// Starts a registration at the first of its next hop's targets.
    fn begin(&mut self, id: u32, mut cfg: Box<RegConfig>, query: Query, found: Resolution) {
        let mut targets = found.targets;
        self.names.order(&mut targets);
        let Some(&first) = targets.first() else {
            self.starting.remove(&id);
            self.reporter
                .report(id, 0, Report::Failed(crate::error::SIP_RESOLVING_FAILURE));
            return;
        };
        cfg.transport = first.transport;
        let dest = first.addr;
        let conn = match cfg.transport {
            Transport::Udp => Ok(None),
            _ => self.conns.stream(id, &cfg, dest).map(Some),
        };
        let local = match &conn {
            Ok(Some(tok)) => self
                .conns
                .stream_local(*tok)
                .ok_or_else(|| io::ErrorKind::NotConnected.into()),
            Ok(None) => self.conns.local_addr_for(dest, cfg.interface.as_deref()),
            Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
        };
        let local = match local {
            Ok(l) => l,
            Err(e) if targets.len() > 1 => {
                // Unreachable from here (no route, refused at once): the
                // registration starts and fails over at its first send.
                log::warn(&format!("{dest}: {e}"));
                SocketAddr::new(
                    if dest.is_ipv6() {
                        std::net::Ipv6Addr::UNSPECIFIED.into()
                    } else {
                        std::net::Ipv4Addr::UNSPECIFIED.into()
                    },
                    0,
                )
            }
            Err(_) => {
                self.starting.remove(&id);
                self.reporter
                    .report(id, 0, Report::Failed(crate::error::SIP_TRANSPORT_FAILURE));
                return;
            }
        };
        self.next_context = self.next_context.wrapping_add(1).max(1);
        let mut reg = Registration::new(*cfg, self.timers, local);
        if let Some(b) = self.bindings.remove(&id) {
            reg.continue_binding(b);
        }
        reg.set_failover(targets.len() > 1);
        if reg.config.network.contact_uri.is_none() {
            self.contacts.insert(reg.config.contact_user.clone(), id);
        }
        let entry = Entry {
            reg,
            query,
            targets,
            valid_until: found.valid_until,
            target: 0,
            dest,
            context_id: self.next_context,
            conn: conn.ok().flatten(),
            branch: None,
            sent: None,
            rtt: None,
        };
        self.regs.insert(id, Box::new(entry));
        self.starting.insert(id);
        self.with_reg(id, |r, out| r.start(out));
    }

    /// New targets for a registration (its old ones expired): the next
    /// attempt goes to the best of them.
    fn set_targets(&mut self, id: u32, found: Resolution) {
        let Some(e) = self.regs.get_mut(&id) else {
            return;
        };
        let mut targets = found.targets;
        self.names.order(&mut targets);
        if targets.is_empty() {
            return;
        }
        let current = e.targets.get(e.target).copied();
        e.targets = targets;
        e.valid_until = found.valid_until;
        e.target = 0;
        if current != e.targets.first().copied() {
            self.use_target(id, 0);
        } else if let Some(e) = self.regs.get_mut(&id) {
            e.reg.set_failover(e.targets.len() > 1);
        }
    }

    /// Moves a registration to its target `index`: a new flow, its
    /// transport, our address towards it.
    fn use_target(&mut self, id: u32, index: usize) {
        let Some(e) = self.regs.get_mut(&id) else {
            return;
        };
        let Some(&t) = e.targets.get(index) else {
            return;
        };
        e.target = index;
        e.dest = t.addr;
        let old = e.conn.take();
        let iface = e.reg.config.interface.clone();
        let more = index + 1 < e.targets.len();
        self.conns.release(id, old);
        self.conns.leave(id);
        let local = if t.transport.is_reliable() {
            None // known once connected (`reconnect`)
        } else {
            self.conns.local_addr_for(t.addr, iface.as_deref()).ok()
        };
        if let Some(e) = self.regs.get_mut(&id) {
            let local = local.unwrap_or(SocketAddr::new(t.addr.ip(), 0));
            e.reg.retarget(t.transport, local);
            e.reg.set_failover(more);
            log::debug(&format!(
                "profile {id}: next attempt to {} {}",
                t.transport.via_name(),
                t.addr
            ));
        }
    }

    /// Addresses or links changed: each registration whose way to its
    /// next hop now leaves from another address moves (a stream flow from
    /// the old one is closed; its users register again on a new one). No
    /// other registration is touched, but for `link_up` (a link came up, or
    /// the application said so): then those waiting to retry that have a
    /// way to their next hop retry now.
    fn network_changed(&mut self, link_up: bool) {
        self.conns.forget_routes();
        let mut moved = Vec::new();
        let mut retry = Vec::new();
        let mut lost_flows = HashSet::new();
        let ids: Vec<u32> = self.regs.keys().copied().collect();
        for id in ids {
            let Some(e) = self.regs.get(&id) else {
                continue;
            };
            let (dest, iface) = (e.dest, e.reg.config.interface.clone());
            let was = match e.conn {
                Some(tok) => self.conns.stream_local(tok),
                None if e.reg.transport().is_reliable() => None,
                None => Some(e.reg.local()),
            };
            let Some(was) = was else { continue };
            let waiting = e.reg.is_waiting_to_retry();
            let Ok(now) = self.conns.local_addr_for(dest, iface.as_deref()) else {
                continue; // no way there now: its own timers notice
            };
            if now.ip() == was.ip() {
                if link_up && waiting {
                    retry.push(id);
                }
                continue;
            }
            log::info(&format!(
                "profile {id}: the way to {dest} now leaves from {}, not {}",
                now.ip(),
                was.ip()
            ));
            match self.regs.get(&id).and_then(|e| e.conn) {
                Some(tok) => {
                    lost_flows.insert(tok);
                }
                None => moved.push((id, now)),
            }
        }
        for tok in lost_flows {
            self.drop_connection(tok, StreamState::Closed);
        }
        for (id, now) in moved {
            self.conns.leave(id);
            self.with_reg(id, |r, out| r.on_network_changed(now, out));
        }
        for id in retry {
            self.reconnect(id);
            self.with_reg(id, |r, out| r.retry_now(out));
        }
    }

    /// A registration is bound: its flow is kept alive (RFC 5626 §4.4):
    /// every `SIP_KEY_KEEPALIVE_SECONDS`, else the registrar's Flow-Timer,
    /// else 120 s on streams and 29 s on UDP. UDP flows only when asked
    /// for (the key, outbound, or a Flow-Timer): a registrar without STUN
    /// would take the requests for garbage.
    fn keep_flow_alive(&mut self, id: u32, g: &Granted) {
        let Some(e) = self.regs.get_mut(&id) else {
            return;
        };
        let rtt = e.rtt.take();
        let n = &e.reg.config.network;
        let stream = e.reg.transport().is_reliable();
        let seconds = match (n.keepalive_seconds, g.flow_timer) {
            (0, Some(ft)) => ft,
            (0, None) if stream => 120,
            (0, None) => 29,
            (s, _) => s,
        };
        let period = Duration::from_secs(u64::from(seconds));
        let flow = match e.conn {
            Some(tok) if stream => Flow::Stream(tok),
            _ if stream => return,
            _ if n.keepalive_seconds > 0 || n.outbound || g.flow_timer.is_some() => {
                Flow::Datagram(e.dest, e.reg.config.interface.clone())
            }
            _ => return,
        };
        self.conns.keep_alive(id, flow, period, g.outbound, rtt);
    }

    /// Pings due go out; flows that missed their answer have failed, and
    /// their registrations register again at once on a new one.
    fn keep_alives(&mut self) {
        for failure in self.conns.keep_alives(self.timers.t1) {
            match failure {
                FlowFailure::Stream(tok) => {
                    log::info(
                        "a flow missed its keep-alive answer: registering again on a new one",
                    );
                    self.drop_connection(tok, StreamState::Closed);
                }
                FlowFailure::Datagram(ids) => {
                    for id in ids {
                        self.with_reg(id, |r, out| r.on_flow_failed(out));
                    }
                }
            }
        }
    }

    /// A registration's attempt failed (RFC 3263 §4.3): where the next goes.
    fn retarget(&mut self, id: u32, how: Retarget) {
        let Some(e) = self.regs.get(&id) else { return };
        let current = e.targets.get(e.target).copied();
        match how {
            Retarget::Next => {
                if let Some(t) = current {
                    self.names.avoid(t);
                }
                let next = e.target + 1;
                self.use_target(id, next);
            }
            Retarget::First { failed } => {
                if failed && let Some(t) = current {
                    self.names.avoid(t);
                }
                let Some(e) = self.regs.get_mut(&id) else {
                    return;
                };
                let mut targets = std::mem::take(&mut e.targets);
                self.names.order(&mut targets);
                let first = targets.first().copied();
                if let Some(e) = self.regs.get_mut(&id) {
                    e.targets = targets;
                    if first == current {
                        e.target = 0;
                        e.reg.set_failover(e.targets.len() > 1);
                    } else {
                        self.use_target(id, 0);
                    }
                }
            }
        }
    }

    /// A registration's Retry timer fired: when its targets have expired,
    /// looks them up again first (the answer resumes it).
    fn retry(&mut self, id: u32, generation: u64, looked_up: bool) {
        let Some(e) = self.regs.get(&id) else { return };
        if e.reg.generation(TimerKind::Retry) != generation {
            return;
        }
        if !looked_up && Instant::now() >= e.valid_until && e.query.numeric().is_none() {
            let query = e.query.clone();
            match self.names.locate(&query, Waiting::Retry(id, generation)) {
                Some(Ok(found)) => self.set_targets(id, found),
                Some(Err(_)) => {
                    // Keep the old targets: better than none.
                    if let Some(e) = self.regs.get_mut(&id) {
                        e.valid_until = Instant::now() + Duration::from_secs(30);
                    }
                }
                None => return,
            }
        }
        self.reconnect(id);
        self.with_reg(id, |r, out| r.on_timer(TimerKind::Retry, generation, out));
    }

    fn start_queued(&mut self) {
        while self.starting.len() < MAX_STARTING {
            let Some(id) = self.queued.pop_front() else {
                break;
            };
            if let Some(cfg) = self.queued_cfg.remove(&id) {
                self.register(id, cfg);
            }
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
        self.queued_cfg.remove(&id).is_some()
    }

    /// Gives a stream registration without a connection a new one.
    fn reconnect(&mut self, id: u32) {
        let Some(e) = self.regs.get(&id) else { return };
        if e.conn.is_some() || !e.reg.transport().is_reliable() {
            return;
        }
        let (cfg, dest) = (e.reg.config.clone(), e.dest);
        match self.conns.stream(id, &cfg, dest) {
            Ok(tok) => {
                let local = self.conns.stream_local(tok);
                if let Some(e) = self.regs.get_mut(&id) {
                    e.conn = Some(tok);
                    if let Some(local) = local {
                        e.reg.set_local(local);
                    }
                }
            }
            Err(err) => log::warn(&format!("connecting to {dest}: {err}")),
        }
    }

    fn drop_connection(&mut self, tok: Token, state: StreamState) {
        for id in self.conns.close(tok, &state) {
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

    fn stream_event(&mut self, tok: Token, writable: bool, readable: bool) {
        let Some(ready) = self.conns.stream_ready(tok, writable, readable) else {
            return;
        };
        for m in ready.messages {
            self.handle_message(&m, ready.origin);
        }
        if ready.state != StreamState::Open {
            self.drop_connection(tok, ready.state);
        }
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
                    if let Some(e) = self.regs.get_mut(&id) {
                        e.sent = match e.sent {
                            Some(None) => Some(Some(Instant::now())),
                            _ => None,
                        };
                    }
                    let Some(e) = self.regs.get(&id) else { return };
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
                        match self.regs.get(&id).and_then(|e| e.conn) {
                            Some(tok) => self.conns.send_stream(tok, &data),
                            None => Err(io::ErrorKind::NotConnected.into()),
                        }
                    } else {
                        let iface = e.reg.config.interface.clone();
                        self.conns.send_datagram(dest, iface.as_deref(), &data)
                    };
                    if let Err(err) = res {
                        if is_outgoing_full(&err) {
                            // The peer does not read: the flow goes, and each
                            // profile on it gets a transport error (issue 15).
                            if let Some(tok) = self.regs.get(&id).and_then(|e| e.conn) {
                                self.drop_connection(tok, StreamState::Closed);
                            }
                            return;
                        }
                        log::warn(&format!("send to {dest} failed: {err}"));
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
                Action::Retarget(how) => self.retarget(id, how),
                Action::Branch(b) => {
                    // O(1): only this registration's previous branch goes.
                    if let Some(e) = self.regs.get_mut(&id) {
                        e.sent = Some(None);
                        if let Some(old) = e.branch.replace(b.clone()) {
                            self.branches.remove(&old);
                        }
                    }
                    self.branches.insert(b, id);
                }
                Action::Report(r) => {
                    if let Report::Registered(g) | Report::Refreshed(g) = &r {
                        self.keep_flow_alive(id, g);
                    }
                    let Some(e) = self.regs.get(&id) else { return };
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
                        self.conns.release(id, e.conn);
                        self.conns.leave(id);
                    }
                    if let Some(cfg) = self.pending.remove(&id) {
                        self.register(id, cfg);
                    }
                    return;
                }
            }
        }
    }

    /// Drops the timers at the top of the heap that would do nothing when
    /// due (re-armed or disarmed since, or of a registration gone), so that
    /// the engine only wakes for a live one: once 100,000 registrations are
    /// done, their retransmission and timeout timers would otherwise wake
    /// it about once each over the next 32 s.
    fn drop_stale_timers(&mut self) {
        while let Some(Reverse((_, _, id, kind, generation))) = self.heap.peek().copied() {
            let live = self
                .regs
                .get(&id)
                .is_some_and(|e| e.reg.generation(kind_from(kind)) == generation);
            if live {
                break;
            }
            self.heap.pop();
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
            self.isolated(id, |core| match kind {
                TimerKind::Retry => core.retry(id, generation, false),
                TimerKind::Refresh => {
                    core.reconnect(id);
                    core.with_reg(id, |r, out| r.on_timer(kind, generation, out));
                }
                _ => core.with_reg(id, |r, out| r.on_timer(kind, generation, out)),
            });
        }
    }

    /// Reads and handles one datagram of the socket `token`; false once it
    /// has none (mio's readiness is edge-triggered: read until then).
    fn receive_one(&mut self, token: Token) -> bool {
        match self.conns.receive(token, &mut self.buf) {
            Datagram::Received(n, origin) => {
                let data = self.buf[..n].to_vec();
                self.handle_message(&data, origin);
                true
            }
            Datagram::Failed => true,
            Datagram::Remapped(ids) => {
                for id in ids {
                    self.with_reg(id, |r, out| r.on_flow_failed(out));
                }
                true
            }
            Datagram::Empty => false,
        }
    }

    /// A request to our Contact: answered the way it came (OPTIONS 200,
    /// anything else a final refusal), never left unanswered.
    fn answer_request(&mut self, msg: &Message, origin: Origin) {
        let regs = &self.regs;
        let contacts = &self.contacts;
        let is_ours = |user: &str| {
            contacts.get(user).is_some_and(|id| {
                regs.get(id)
                    .is_some_and(|e| e.reg.config.contact_user == user)
            })
        };
        let Some(response) = uas::answer(msg, origin.peer(), is_ours) else {
            return;
        };
        if log::enabled(log::TRACE) {
            log::log(
                log::TRACE,
                &format!(
                    "answer to {}:\n{}",
                    origin.peer(),
                    String::from_utf8_lossy(&response)
                ),
            );
        }
        if let Err(e) = self.conns.reply(origin, &response) {
            log::debug(&format!("answering {}: {e}", origin.peer()));
        }
    }

    /// One message from the network (a datagram or a framed stream message):
    /// a response goes to the registration whose branch it carries.
    fn handle_message(&mut self, data: &[u8], origin: Origin) {
        let from = origin.peer();
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
            self.answer_request(&msg, origin);
            return;
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
        if let Some(e) = self.regs.get_mut(&id)
            && let Some(Some(at)) = e.sent.take()
        {
            e.rtt = Some(at.elapsed());
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// What one registration costs the engine in fixed-size parts (their
    /// strings and tables come on top): a bound that catches a field that
    /// makes every one of 100,000 registrations bigger. Sizes on x86_64
    /// (2026-12-02): engine Entry 1,144 B (of which the Registration 984,
    /// its RegConfig 616), ProfileData 528, RegistrationInfo 152; printed
    /// with `--nocapture`. The engine's fixed part alone is about half of
    /// the 2 KiB per registered profile that issue #18 allows.
    #[test]
    fn per_registration_structures_stay_small() {
        use std::mem::size_of;
        let sizes = [
            // +24 for `sent` (the REGISTER round trip that seeds a flow's
            // keep-alive answer window, issue #16).
            ("engine Entry", size_of::<Entry>(), 1176),
            ("Registration", size_of::<Registration>(), 992),
            ("RegConfig", size_of::<RegConfig>(), 640),
            ("TimerEntry", size_of::<TimerEntry>(), 40),
            ("ProfileData", size_of::<crate::profile::ProfileData>(), 544),
            (
                "RegistrationInfo",
                size_of::<crate::profile::RegistrationInfo>(),
                160,
            ),
        ];
        for (name, size, bound) in sizes {
            println!("{name}: {size} bytes (bound {bound})");
        }
        for (name, size, bound) in sizes {
            assert!(size <= bound, "{name}: {size} bytes, over {bound}");
        }
    }

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
            network: Default::default(),
        }
    }

    fn test_core(rx: Receiver<Command>, reporter: Arc<dyn Reporter>) -> Core {
        let poll = Poll::new().unwrap();
        let waker = Arc::new(Waker::new(poll.registry(), WAKER).unwrap());
        Core::new(poll, rx, reporter, waker).unwrap()
    }

    #[test]
    fn a_panic_in_one_profile_fails_that_profile_only() {
        let registrar = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        registrar
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let reports = Arc::new(PanicsForOne(std::sync::Mutex::new(Vec::new())));
        let (commands, rx) = unbounded();
        let mut core = test_core(rx, reports.clone());
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
        let mut core = test_core(rx, Arc::new(NoReports));
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
        let mut core = test_core(rx, Arc::new(NoReports));
        core.register(1, Box::new(cfg));
        let _peer = listener.accept().unwrap(); // and never reads
        assert_eq!(core.conns.stream_count(), 1);
        let big = vec![b'x'; super::super::transport::MAX_OUTGOING / 2 + 1];
        core.apply(1, vec![Action::Send(big.clone())]);
        assert_eq!(core.conns.stream_count(), 1, "under the limit: kept");
        core.apply(1, vec![Action::Send(big)]);
        assert_eq!(core.conns.stream_count(), 0, "over the limit: closed");
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
        let (_commands, rx) = unbounded();
        let mut core = test_core(rx, Arc::new(NoReports));
        // A retransmission due now, of a registration that is gone: the
        // last timer. What a timer reports must be delivered before the
        // wait, which here has no end.
        core.heap.push(Reverse((Instant::now(), 0, 1, 0, 0)));
        let (done, stepped) = std::sync::mpsc::channel();
        std::thread::spawn(move || done.send(core.step()));
        assert_eq!(stepped.recv_timeout(Duration::from_secs(10)), Ok(false));
    }
    /// Blocks the engine's thread in its first report until released.
    struct Stalls {
        entered: crossbeam_channel::Sender<()>,
        release: crossbeam_channel::Receiver<()>,
        once: AtomicBool,
    }

    impl Reporter for Stalls {
        fn report(&self, _: u32, _: u32, _: Report) {
            if !self.once.swap(true, Ordering::SeqCst) {
                let _ = self.entered.send(());
                let _ = self.release.recv();
            }
        }
    }

    use crate::test_support::until;

    #[test]
    fn a_busy_engine_holds_at_most_max_commands_and_its_senders_wait_at_the_gate() {
        let registrar = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let (entered_tx, entered) = crossbeam_channel::unbounded();
        let (release_tx, release) = crossbeam_channel::unbounded();
        let engine = Engine::start(Arc::new(Stalls {
            entered: entered_tx,
            release,
            once: AtomicBool::new(false),
        }))
        .unwrap();
        engine.send(Command::Register(
            1,
            Box::new(config(registrar.local_addr().unwrap())),
        ));
        entered.recv_timeout(Duration::from_secs(10)).unwrap();
        // The engine's thread is stuck in a report: nothing is taken.
        let extra = 100;
        std::thread::scope(|s| {
            let producer = s.spawn(|| {
                let gate = engine.gate();
                for i in 0..(MAX_COMMANDS + extra) as u32 {
                    gate.wait();
                    engine.send(Command::RetryNow(1000 + i));
                }
            });
            until("the sender waits at the gate", || {
                engine.backlog() == (MAX_COMMANDS, 1)
            });
            assert!(!producer.is_finished());
            release_tx.send(()).unwrap();
            producer.join().unwrap();
        });
        until("the engine took every command", || {
            engine.backlog() == (0, 0)
        });
        engine.shutdown(Duration::ZERO);
    }

    #[test]
    fn the_gate_does_not_wait_for_a_finished_engine() {
        let b = Arc::new(Backlog::default());
        for _ in 0..MAX_COMMANDS {
            b.add();
        }
        b.close();
        Gate(b.clone()).wait();
        assert_eq!(b.state.lock().1, 0);
    }
}
