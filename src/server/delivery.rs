//! Calling observers: one pool of delivery threads per profile server, shared
//! by all its observing registries.
//!
//! Each observing registry has a [`Mailbox`]: its events, in order. A mailbox
//! with events sits once on the pool's ready queue; a delivery thread takes
//! it and calls the registry for each event in turn (a batch), then puts it
//! back at the end of the queue if more came. So the callbacks of one
//! registry run one at a time and in order (contract §2), and an event that
//! two registries observe wakes one thread, not two: on the 2-core machines
//! of BENCHMARKS.md a second wake was most of the p99 delivery latency.
//!
//! Events the SIP engine publishes (a registration's state) wake no thread
//! at all: the engine's thread queues their mailboxes without a wake-up
//! ([`run_deferring`]) and delivers them itself right after its step, with
//! none of its own state held. Waking a delivery thread on the other CPU was
//! most of the p99 of a REGISTERED callback on the VMs of BENCHMARKS.md.
//!
//! One thread must not let a slow callback hold up the other registries, nor
//! the engine. A watchdog timer runs while mailboxes wait behind a running
//! callback, or while the engine's thread runs one; each finished callback
//! pushes it back. It fires only when no callback has finished for between
//! half of [`STALL`] and all of it, and then wakes or starts one more delivery
//! thread for the waiting mailboxes (at most [`MAX_THREADS`]), and hands the
//! engine to a new thread if its thread is the one stuck. A registry whose
//! callbacks took the engine's thread [`SLOW_INLINE`] or more [`SLOW_RUN`]
//! times in a row has its events delivered by the delivery threads from
//! then on. A thread that finds nothing to do ends while another thread is
//! free. With callbacks that return, the pool stays at one thread: no
//! polling, and nothing woken but the one thread an event needs, or none for
//! the engine's.

use super::events::Delivery;
use super::events::Observer;
use super::registry::Registry;
use crate::log;
use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};
use parking_lot::{Condvar, Mutex};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering, fence};
use std::sync::{Arc, OnceLock, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a callback may run, while other registries' events wait, before
/// another delivery thread takes those over.
pub(crate) const STALL: Duration = Duration::from_millis(50);
/// Delivery threads one server starts at most. Each is a callback that did not
/// return; past this, waiting events wait for one to return.
pub(crate) const MAX_THREADS: usize = 32;
/// Events one mailbox gets in a row before the others' turn.
const BATCH: usize = 32;
/// A registry whose callbacks took the engine's thread this long, [`SLOW_RUN`]
/// times in a row, is delivered by the delivery threads from then on.
pub(crate) const SLOW_INLINE: Duration = Duration::from_millis(1);
/// In a row: once could be the host taking the CPU away (steal), not the
/// callback.
const SLOW_RUN: u8 = 3;

/// One observing registry's events on their way to its observer.
pub(crate) struct Mailbox {
    inbox: Mutex<Inbox>,
    /// Signalled when a callback of this mailbox returns.
    returned: Condvar,
    /// Set once the registry exists (events may come before: they wait).
    target: OnceLock<(Weak<Registry>, Weak<Pool>)>,
    /// Its callbacks took the engine's thread [`SLOW_INLINE`] or more
    /// [`SLOW_RUN`] times in a row: they run on the delivery threads only.
    slow: AtomicBool,
    /// Such batches in a row so far (on the engine's thread only).
    slow_run: AtomicU8,
}

struct Inbox {
    events: VecDeque<Delivery>,
    /// On the ready queue or being delivered (or not yet bound): a new event
    /// only joins `events`.
    queued: bool,
    /// A callback of this mailbox is running.
    running: bool,
    /// The registry is freed: nothing more is delivered.
    closed: bool,
    /// Dropped when the registry is freed (what it owns, such as a channel's
    /// sender, goes with it), and not before its last callback returned.
    observer: Option<Arc<dyn Observer>>,
}

impl Inbox {
    /// Nothing more is delivered; returns the observer, for the caller to
    /// drop outside the lock (its drop is the owner's code).
    fn close(&mut self) -> Option<Arc<dyn Observer>> {
        self.closed = true;
        self.events.clear();
        self.observer.take()
    }
}

impl Mailbox {
    pub(crate) fn new(observer: Box<dyn Observer>) -> Arc<Mailbox> {
        Arc::new(Mailbox {
            inbox: Mutex::new(Inbox {
                events: VecDeque::new(),
                queued: true, // until bound
                running: false,
                closed: false,
                observer: Some(Arc::from(observer)),
            }),
            returned: Condvar::new(),
            target: OnceLock::new(),
            slow: AtomicBool::new(false),
            slow_run: AtomicU8::new(0),
        })
    }

    /// Names the registry the events are for and the pool that delivers
    /// them; events that came before go out now.
    pub(crate) fn bind(self: &Arc<Self>, registry: &Arc<Registry>, pool: &Arc<Pool>) {
        let _ = self
            .target
            .set((Arc::downgrade(registry), Arc::downgrade(pool)));
        let mut inbox = self.inbox.lock();
        if inbox.events.is_empty() {
            inbox.queued = false;
        } else {
            drop(inbox);
            pool.schedule(self.clone());
        }
    }

    /// Queues one event (called by the server, in its order).
    pub(crate) fn push(self: &Arc<Self>, d: Delivery) {
        let mut inbox = self.inbox.lock();
        if inbox.closed {
            return;
        }
        inbox.events.push_back(d);
        if inbox.queued {
            return;
        }
        inbox.queued = true;
        drop(inbox);
        if let Some(pool) = self.pool() {
            pool.schedule(self.clone());
        }
    }

    /// Stops deliveries; returns once no callback of this mailbox runs. Not
    /// to be called from this mailbox's own callback (it would wait for
    /// itself): the registry defers that case.
    pub(crate) fn close_and_wait(&self) {
        let mut inbox = self.inbox.lock();
        inbox.closed = true;
        inbox.events.clear();
        while inbox.running {
            self.returned.wait(&mut inbox);
        }
        let observer = inbox.close();
        drop(inbox);
        drop(observer);
    }

    fn pool(&self) -> Option<Arc<Pool>> {
        self.target.get().and_then(|(_, p)| p.upgrade())
    }

    /// Takes the next event and the observer, marking a callback as
    /// running; `None` when there is none (the mailbox leaves the ready
    /// queue).
    fn next(&self) -> Option<(Delivery, Arc<dyn Observer>)> {
        let mut inbox = self.inbox.lock();
        let d = inbox.events.pop_front();
        match (d, inbox.observer.clone()) {
            (Some(d), Some(o)) if !inbox.closed => {
                inbox.running = true;
                Some((d, o))
            }
            _ => {
                inbox.queued = false;
                None
            }
        }
    }

    /// Called once the delivery thread let go of its observer reference.
    fn callback_returned(&self, close: bool) {
        let mut inbox = self.inbox.lock();
        inbox.running = false;
        let observer = if close { inbox.close() } else { None };
        self.returned.notify_all();
        drop(inbox);
        drop(observer);
    }

    /// Counts a batch the engine's thread delivered that took `took`.
    fn timed_inline(&self, took: Duration) {
        if took < SLOW_INLINE {
            self.slow_run.store(0, Ordering::Relaxed);
        } else if self.slow_run.fetch_add(1, Ordering::Relaxed) + 1 >= SLOW_RUN {
            self.slow.store(true, Ordering::Relaxed);
        }
    }

    /// Delivers up to [`BATCH`] events; true if it stopped at that limit
    /// (more may wait), false once the mailbox is empty or closed. `inline`:
    /// on the engine's thread.
    fn deliver_batch(&self, pool: &Pool, inline: bool) -> bool {
        let registry = self.target.get().and_then(|(r, _)| r.upgrade());
        for _ in 0..BATCH {
            let Some((d, observer)) = self.next() else {
                return false;
            };
            let keep = match &registry {
                Some(r) => pool.timed(inline, || r.deliver(d, observer.as_ref())),
                None => false,
            };
            drop(observer);
            self.callback_returned(!keep);
        }
        true
    }
}

/// The delivery threads of one server and what they share.
pub(crate) struct Pool {
    ready: Mutex<Ready>,
    /// Signalled for an idle delivery thread.
    wakeup: Condvar,
    /// Mailboxes on the ready queue: its length, read without its lock on
    /// every callback and ordered by the watchdog's fences.
    waiting: AtomicUsize,
    /// Callbacks running now.
    running: AtomicUsize,
    /// When the callback the engine's thread runs now started, on the
    /// watchdog's clock (0: none); it also tells one such callback from the
    /// next.
    inline: AtomicU64,
    /// The inline callback the engine was last handed off for.
    handed_off: AtomicU64,
    /// Lets a new thread carry on the engine (set by the server).
    hand_off: OnceLock<Box<dyn Fn() + Send + Sync>>,
    threads: Mutex<Threads>,
    watchdog: Watchdog,
}

/// The ready queue: mailboxes with events, in turn.
struct Ready {
    queue: VecDeque<Arc<Mailbox>>,
    /// Delivery threads waiting for a mailbox.
    idle: usize,
    /// The pool stops: threads end.
    stop: bool,
}

thread_local! {
    /// On the engine's thread during a step: the pool whose mailboxes it
    /// queued without a wake-up, and how many.
    static DEFERRED: RefCell<Option<(Option<Arc<Pool>>, usize)>> = const { RefCell::new(None) };
}

/// Runs `step` (an engine step, on the engine's thread) with the mailboxes
/// it readies queued without waking a delivery thread, then delivers them
/// here. If `step` panics, they go to the delivery threads instead.
pub(crate) fn run_deferring<T>(step: impl FnOnce() -> T) -> T {
    struct Guard;
    impl Drop for Guard {
        fn drop(&mut self) {
            // Still set only when unwinding: wake the threads instead.
            if let Some((Some(pool), _)) = DEFERRED.with(|d| d.borrow_mut().take()) {
                let _ = pool.wake_one();
            }
        }
    }
    DEFERRED.with(|d| *d.borrow_mut() = Some((None, 0)));
    let guard = Guard;
    let r = step();
    let deferred = DEFERRED.with(|d| d.borrow_mut().take());
    drop(guard);
    if let Some((Some(pool), n)) = deferred {
        pool.deliver_here(n);
    }
    r
}

struct Threads {
    live: usize,
    handles: Vec<JoinHandle<()>>,
    warned_at_max: bool,
}

/// A timer that fires when callbacks stop finishing while mailboxes wait or
/// while the engine's thread runs one.
struct Watchdog {
    timer: TimerFd,
    epoch: Instant,
    /// When it fires, in ns since `epoch`; 0 when not armed.
    due: AtomicU64,
    /// The pool stops: no thread is added or ends by itself, and the timer
    /// is left to wake the watchdog at once.
    stopped: AtomicBool,
}

impl Watchdog {
    fn now(&self) -> u64 {
        // At least 1: 0 means "not armed".
        (self.epoch.elapsed().as_nanos() as u64).max(1)
    }

    fn set(&self, after: Duration) {
        if self.is_stopped() {
            return;
        }
        let due = self.now() + after.as_nanos() as u64;
        self.due.store(due, Ordering::SeqCst);
        if let Err(e) = self.timer.set(
            Expiration::OneShot(TimeSpec::from_duration(after)),
            TimerSetTimeFlags::empty(),
        ) {
            log::warn(&format!("delivery watchdog: cannot set its timer: {e}"));
        }
    }

    /// Arms the timer unless it is already running: a flood of events must
    /// not push back the check of a callback that does not return.
    fn arm(&self) {
        if self.due.load(Ordering::SeqCst) == 0 {
            self.set(STALL);
        }
    }

    fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }

    /// Wakes the watchdog thread for good.
    fn stop(&self) {
        self.stopped.store(true, Ordering::Release);
        let _ = self.timer.set(
            Expiration::OneShot(TimeSpec::from_duration(Duration::from_nanos(1))),
            TimerSetTimeFlags::empty(),
        );
    }

    /// A callback finished: the stall, if any, starts again from now.
    /// Rewrites the timer only once it is half run down (one system call
    /// per `STALL / 2` at most, however many events flow).
    fn progress(&self) {
        let due = self.due.load(Ordering::Relaxed);
        if due != 0 && due.saturating_sub(self.now()) < STALL.as_nanos() as u64 / 2 {
            self.set(STALL);
        }
    }
}

impl Pool {
    /// Starts the pool: one delivery thread and the watchdog.
    pub(crate) fn start() -> std::io::Result<Arc<Pool>> {
        let timer = TimerFd::new(ClockId::CLOCK_MONOTONIC, TimerFlags::TFD_CLOEXEC)
            .map_err(std::io::Error::from)?;
        let pool = Arc::new(Pool {
            ready: Mutex::new(Ready {
                queue: VecDeque::new(),
                idle: 0,
                stop: false,
            }),
            wakeup: Condvar::new(),
            waiting: AtomicUsize::new(0),
            running: AtomicUsize::new(0),
            inline: AtomicU64::new(0),
            handed_off: AtomicU64::new(0),
            hand_off: OnceLock::new(),
            threads: Mutex::new(Threads {
                live: 0,
                handles: Vec::new(),
                warned_at_max: false,
            }),
            watchdog: Watchdog {
                timer,
                epoch: Instant::now(),
                due: AtomicU64::new(0),
                stopped: AtomicBool::new(false),
            },
        });
        let p = pool.clone();
        let watchdog = crate::thread_placement::spawn("sipprofile-watchdog", move || watch(p))?;
        pool.threads.lock().handles.push(watchdog);
        if let Err(e) = pool.add_thread() {
            pool.stop();
            return Err(e);
        }
        Ok(pool)
    }

    fn add_thread(self: &Arc<Self>) -> std::io::Result<()> {
        let mut t = self.threads.lock();
        if self.watchdog.is_stopped() {
            return Ok(());
        }
        if t.live >= MAX_THREADS {
            if !t.warned_at_max {
                t.warned_at_max = true;
                log::warn(&format!(
                    "{MAX_THREADS} observer callbacks have not returned: other events wait for one"
                ));
            }
            return Ok(());
        }
        let p = self.clone();
        let h = crate::thread_placement::spawn("sipprofile-observer", move || work(p))?;
        t.handles.retain(|h| !h.is_finished());
        t.handles.push(h);
        t.live += 1;
        Ok(())
    }

    /// Gives the pool the way to hand the engine to a new thread.
    pub(crate) fn set_hand_off(&self, f: Box<dyn Fn() + Send + Sync>) {
        let _ = self.hand_off.set(f);
    }

    fn schedule(self: &Arc<Self>, m: Arc<Mailbox>) {
        self.waiting.fetch_add(1, Ordering::SeqCst);
        // On the engine's thread mid-step, the mailbox waits for the step's
        // end, when this thread delivers it (`run_deferring`).
        let deferred = !m.slow.load(Ordering::Relaxed)
            && DEFERRED.with(|d| match d.borrow_mut().as_mut() {
                Some((pool, n)) => {
                    pool.get_or_insert_with(|| self.clone());
                    *n += 1;
                    true
                }
                None => false,
            });
        {
            let mut ready = self.ready.lock();
            ready.queue.push_back(m);
            if !deferred && ready.idle > 0 {
                self.wakeup.notify_one();
            }
        }
        // Pairs with the fences in `timed` and `watch`: whichever of us
        // comes second sees the other, so a mailbox never waits behind a
        // callback with the watchdog unarmed.
        fence(Ordering::SeqCst);
        if self.running.load(Ordering::SeqCst) > 0 {
            self.watchdog.arm();
        }
    }

    /// Runs one callback, telling the watchdog. `inline`: on the engine's
    /// thread, which the watchdog watches whether or not anything waits.
    fn timed<T>(&self, inline: bool, f: impl FnOnce() -> T) -> T {
        self.running.fetch_add(1, Ordering::SeqCst);
        let started = if inline {
            let t = self.watchdog.now();
            self.inline.store(t, Ordering::SeqCst);
            t
        } else {
            0
        };
        fence(Ordering::SeqCst);
        if inline || self.waiting.load(Ordering::SeqCst) > 0 {
            self.watchdog.arm();
        }
        let r = f();
        if inline {
            let _ = self
                .inline
                .compare_exchange(started, 0, Ordering::SeqCst, Ordering::SeqCst);
        }
        self.running.fetch_sub(1, Ordering::SeqCst);
        self.watchdog.progress();
        r
    }

    /// On the engine's thread after a step: delivers up to `n` mailboxes
    /// (as many as the step readied); what is left goes to a delivery
    /// thread.
    fn deliver_here(self: &Arc<Self>, n: usize) {
        for _ in 0..n {
            let Some(m) = self.ready.lock().queue.pop_front() else {
                break;
            };
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            let started = Instant::now();
            let more = m.deliver_batch(self, true);
            m.timed_inline(started.elapsed());
            if more {
                self.schedule(m);
            }
        }
        let _ = self.wake_one();
    }

    /// Wakes an idle delivery thread if a mailbox waits; false if none was
    /// idle.
    fn wake_one(&self) -> bool {
        let ready = self.ready.lock();
        if ready.idle == 0 {
            return false;
        }
        if !ready.queue.is_empty() {
            self.wakeup.notify_one();
        }
        true
    }

    /// The next mailbox for a delivery thread; `None` when the pool stops.
    fn take(&self) -> Option<Arc<Mailbox>> {
        let mut ready = self.ready.lock();
        loop {
            if ready.stop {
                return None;
            }
            if let Some(m) = ready.queue.pop_front() {
                return Some(m);
            }
            ready.idle += 1;
            self.wakeup.wait(&mut ready);
            ready.idle -= 1;
        }
    }

    /// A thread with nothing to do ends if another free one is left (not
    /// stuck in a callback: the events of other registries would wait for
    /// the watchdog again).
    fn retire(&self) -> bool {
        let mut t = self.threads.lock();
        let stuck = self.running.load(Ordering::SeqCst);
        if t.live > 1 + stuck && !self.watchdog.is_stopped() {
            t.live -= 1;
            return true;
        }
        false
    }

    /// Ends every thread of the pool (the caller's own, if it is one, ends
    /// when it returns here). Called when the server stops: every registry
    /// is closed by then, so no callback is left to wait for.
    pub(crate) fn stop(&self) {
        let handles = {
            let mut t = self.threads.lock();
            self.watchdog.stop();
            self.ready.lock().stop = true;
            self.wakeup.notify_all();
            std::mem::take(&mut t.handles)
        };
        let me = std::thread::current().id();
        for h in handles {
            if h.thread().id() != me {
                let _ = h.join();
            }
        }
    }
}

/// A delivery thread.
fn work(pool: Arc<Pool>) {
    while let Some(m) = pool.take() {
        pool.waiting.fetch_sub(1, Ordering::SeqCst);
        if m.deliver_batch(&pool, false) {
            pool.schedule(m); // its turn again after the others'
        } else if pool.waiting.load(Ordering::SeqCst) == 0 && pool.retire() {
            return;
        }
    }
}

/// The watchdog thread: sleeps on the timer; when it fires and no callback
/// finished since it was set, hands the engine off if its thread is the one
/// stuck, and wakes or adds a delivery thread if mailboxes wait.
fn watch(pool: Arc<Pool>) {
    let w = &pool.watchdog;
    loop {
        if w.timer.wait().is_err() || w.is_stopped() {
            return;
        }
        let due = w.due.load(Ordering::SeqCst);
        let now = w.now();
        if due == 0 {
            continue;
        }
        if due > now {
            // Pushed back while it fired.
            w.set(Duration::from_nanos(due - now));
            continue;
        }
        w.due.store(0, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        let inline = pool.inline.load(Ordering::SeqCst);
        if inline != 0 {
            if w.now().saturating_sub(inline) < STALL.as_nanos() as u64 / 2 {
                w.arm(); // it only just started: look again
            } else if pool.handed_off.swap(inline, Ordering::SeqCst) != inline {
                // The engine's thread is stuck in a callback: the engine goes
                // on on another thread (this one, once it returns, stops
                // driving).
                if let Some(hand_off) = pool.hand_off.get() {
                    hand_off();
                }
            }
        }
        if pool.waiting.load(Ordering::SeqCst) == 0 {
            continue; // nothing waits: unarmed until something does
        }
        if pool.running.load(Ordering::SeqCst) > 0 {
            // Stalled: mailboxes wait and no callback finished lately. A
            // thread idle because the engine's thread meant to deliver them
            // takes them; else one more thread.
            if !pool.wake_one() {
                log::debug("an observer callback is slow: one more delivery thread");
                if let Err(e) = pool.add_thread() {
                    log::warn(&format!("cannot start a delivery thread: {e}"));
                }
            }
        }
        w.arm(); // look again
    }
}

#[cfg(test)]
impl Pool {
    pub(crate) fn live_threads(&self) -> usize {
        self.threads.lock().live
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::ProfileHandle;
    use crate::server::events::Event;
    use crate::server::registry::tests::{rename, saved_profile, tmp_store};
    use crossbeam_channel::{Receiver, Sender, unbounded};
    use std::path::PathBuf;
    use std::thread::ThreadId;

    /// Passes each event on with the thread that delivered it. With a gate,
    /// each UPDATED first says so on `entered`, then waits for a token.
    struct Relay {
        tx: Sender<(Event, ThreadId)>,
        gate: Option<(Sender<()>, Receiver<()>)>,
    }

    impl Observer for Relay {
        fn event(&self, _: u32, ev: Event) {
            if let (Some((entered, gate)), Event::Updated) = (&self.gate, ev) {
                let _ = entered.send(());
                let _ = gate.recv_timeout(Duration::from_secs(30));
            }
            let _ = self.tx.send((ev, std::thread::current().id()));
        }
        fn error(&self, _: u32, _: i32) {}
    }

    type Events = Receiver<(Event, ThreadId)>;

    fn relay(
        store: &std::path::Path,
        gate: Option<(Sender<()>, Receiver<()>)>,
    ) -> (Arc<Registry>, Events) {
        let (tx, rx) = unbounded();
        let observer = Box::new(Relay { tx, gate });
        (
            Registry::open(Some(store), false, Some(observer)).unwrap(),
            rx,
        )
    }

    fn next_updated(rx: &Events) -> ThreadId {
        loop {
            let (ev, t) = rx.recv_timeout(Duration::from_secs(10)).expect("an event");
            if ev == Event::Updated {
                return t;
            }
        }
    }

    /// A new store, its managed registry (no observer) and one saved
    /// profile: its handle and id.
    fn store_with_profile(name: &str) -> (PathBuf, Arc<Registry>, ProfileHandle, u32) {
        let store = tmp_store(name);
        let m = Registry::open(Some(&store), true, None).unwrap();
        let (h, id) = saved_profile(&m);
        (store, m, h, id)
    }

    #[test]
    fn one_thread_calls_every_observer_in_turn() {
        let (store, m, h, id) = store_with_profile("one-thread");
        let observers: Vec<_> = (0..3).map(|_| relay(&store, None)).collect();
        let held: Vec<_> = observers
            .iter()
            .map(|(r, _)| r.profile(id).unwrap())
            .collect();
        for n in 0..50 {
            rename(&m, &h, &format!("name {n}"));
        }
        let mut threads = std::collections::HashSet::new();
        for (_, rx) in &observers {
            for _ in 0..50 {
                threads.insert(next_updated(rx));
            }
        }
        assert_eq!(threads.len(), 1, "every callback on one thread");
        assert_eq!(m.delivery_threads(), 1);
        drop((held, h));
        for (r, _) in observers {
            r.close();
        }
        m.close();
    }

    #[test]
    fn freeing_a_registry_drops_its_observer() {
        let (store, m, h, id) = store_with_profile("dropped");
        let (r, rx) = relay(&store, None);
        let held = r.profile(id).unwrap();
        rename(&m, &h, "seen");
        next_updated(&rx);
        drop(held);
        r.close();
        // The observer (and the sender it owns) is gone: the channel ends.
        assert!(matches!(
            rx.recv_timeout(Duration::from_secs(10)),
            Err(crossbeam_channel::RecvTimeoutError::Disconnected)
        ));
        drop(h);
        m.close();
    }

    /// Frees a registry from inside its UPDATED callback, once.
    struct Freer(Mutex<Option<Arc<Registry>>>);

    impl Observer for Freer {
        fn event(&self, _: u32, ev: Event) {
            if ev == Event::Updated {
                if let Some(r) = self.0.lock().take() {
                    r.close();
                }
            }
        }
        fn error(&self, _: u32, _: i32) {}
    }

    #[test]
    fn a_callback_frees_a_registry_of_another_store_at_once() {
        // Each store's second registry: the same number in both servers.
        let (store, m, h, id) = store_with_profile("freer");
        let other_store = tmp_store("freed");
        let first = Registry::open(Some(&other_store), false, None).unwrap();
        let (other, other_events) = relay(&other_store, None);
        let freer = Freer(Mutex::new(Some(other)));
        let r = Registry::open(Some(&store), false, Some(Box::new(freer))).unwrap();
        let held = r.profile(id).unwrap();
        rename(&m, &h, "free it");
        // Freed for good (not put off as if freed inside its own
        // callback): its observer is dropped.
        assert!(matches!(
            other_events.recv_timeout(Duration::from_secs(10)),
            Err(crossbeam_channel::RecvTimeoutError::Disconnected)
        ));
        drop((held, h));
        r.close();
        m.close();
        first.close();
    }

    /// Sleeps `nap` in each UPDATED callback, then passes it on.
    struct Sleeper(Duration, Sender<(Event, ThreadId)>);

    impl Observer for Sleeper {
        fn event(&self, _: u32, ev: Event) {
            if ev == Event::Updated {
                std::thread::sleep(self.0);
            }
            let _ = self.1.send((ev, std::thread::current().id()));
        }
        fn error(&self, _: u32, _: i32) {}
    }

    #[test]
    fn a_step_delivers_the_events_it_published_on_its_own_thread() {
        let (store, m, h, id) = store_with_profile("step");
        let (r, rx) = relay(&store, None);
        let held = r.profile(id).unwrap();
        // As the engine's thread runs a step that publishes an event.
        run_deferring(|| rename(&m, &h, "in a step"));
        let (ev, t) = rx.try_recv().expect("delivered before the step returned");
        assert_eq!((ev, t), (Event::Updated, std::thread::current().id()));
        // Outside a step, the delivery thread calls it.
        rename(&m, &h, "outside");
        assert_ne!(next_updated(&rx), std::thread::current().id());
        drop((held, h));
        r.close();
        m.close();
    }

    #[test]
    fn a_registry_with_slow_callbacks_leaves_the_engines_thread() {
        let (store, m, h, id) = store_with_profile("slow-inline");
        let (tx, rx) = unbounded();
        let sleeper = Sleeper(SLOW_INLINE * 2, tx);
        let r = Registry::open(Some(&store), false, Some(Box::new(sleeper))).unwrap();
        let held = r.profile(id).unwrap();
        let me = std::thread::current().id();
        for n in 0..SLOW_RUN {
            run_deferring(|| rename(&m, &h, &format!("slow {n}")));
            assert_eq!(next_updated(&rx), me);
        }
        // Slow that many times in a row: its next events go to a delivery
        // thread.
        run_deferring(|| rename(&m, &h, "slow again"));
        assert_ne!(next_updated(&rx), me);
        drop((held, h));
        r.close();
        m.close();
    }

    #[test]
    fn a_callback_that_does_not_return_holds_up_no_other_registry() {
        let (store, m, h, id) = store_with_profile("stalled");
        let (entered_tx, entered) = unbounded();
        let (gate, gate_rx) = unbounded();
        let (slow, slow_rx) = relay(&store, Some((entered_tx, gate_rx)));
        let (fast, fast_rx) = relay(&store, None);
        let held = [slow.profile(id).unwrap(), fast.profile(id).unwrap()];
        rename(&m, &h, "first");
        entered
            .recv_timeout(Duration::from_secs(10))
            .expect("stalled");
        next_updated(&fast_rx);
        // An event after the stall reaches the other registry while the
        // stalled callback still waits, on another thread.
        rename(&m, &h, "second");
        let fast_thread = next_updated(&fast_rx);
        assert!(slow_rx.is_empty(), "the stalled callback has not returned");
        assert_eq!(m.delivery_threads(), 2);
        // Released, it gets both its events, in order, on the thread it
        // stalled on.
        gate.send(()).unwrap();
        gate.send(()).unwrap();
        let slow_thread = next_updated(&slow_rx);
        assert_eq!(next_updated(&slow_rx), slow_thread);
        assert_ne!(slow_thread, fast_thread);
        // With nothing left to wait for, the extra thread ends.
        let deadline = Instant::now() + Duration::from_secs(10);
        while m.delivery_threads() > 1 {
            assert!(Instant::now() < deadline, "the extra thread did not end");
            std::thread::sleep(Duration::from_millis(10));
        }
        drop((held, h));
        slow.close();
        fast.close();
        m.close();
    }
}
