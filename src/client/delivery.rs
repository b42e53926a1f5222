//! Calling observers, in the application's process: one pool of delivery
//! threads per connection to a server, shared by its observing registries,
//! or the application's own thread for registries made with
//! `SIP_REGISTRY_APP_DISPATCH`.
//!
//! Each observing registry has a [`Mailbox`]: its events, in order, already
//! applied to its handles by the connection's reader, as callbacks to run
//! (no snapshot: the handles hold the data), bounded and coalesced per
//! profile (`pending.rs`: a callback that does not return pins a bounded
//! amount of memory, and the reader never waits for it). A mailbox with events
//! sits once on the pool's ready queue; a delivery thread takes it and calls
//! the registry for each event in turn (a batch), then puts it back at the
//! end of the queue if more came. So the callbacks of one registry run one at
//! a time and in order (contract §2), and an event that two registries
//! observe wakes one thread, not two.
//!
//! A slow callback must not hold up the other registries: a watchdog timer
//! runs while mailboxes wait behind a running callback; each finished
//! callback pushes it back. When no callback has finished for [`STALL`], it
//! wakes or starts one more delivery thread (at most [`MAX_THREADS`]). A
//! thread that finds nothing to do ends while another is free. No callback
//! runs in the server, nor on the thread that reads from it.
//!
//! An app-dispatch mailbox is on no queue: its fd polls readable while it
//! holds events, and [`Mailbox::dispatch`] runs them on the caller's thread.

use super::Observer;
use super::pending::{Pending, Pushed, Queue};
use super::registry::Registry;
use crate::log;
use crate::protocol::Delivery;
use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};
use parking_lot::{Condvar, Mutex};
use std::collections::VecDeque;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering, fence};
use std::sync::{Arc, OnceLock, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a callback may run, while other registries' events wait, before
/// another delivery thread takes those over.
pub(crate) const STALL: Duration = Duration::from_millis(50);
/// Delivery threads one connection starts at most. Each is a callback that
/// did not return; past this, waiting events wait for one to return.
pub(crate) const MAX_THREADS: usize = 32;
/// Events one mailbox gets in a row before the others' turn.
const BATCH: usize = 32;

/// One observing registry's events on their way to its observer.
pub(crate) struct Mailbox {
    inbox: Mutex<Inbox>,
    /// Signalled when a callback of this mailbox returns.
    returned: Condvar,
    /// Set once the registry exists (events may come before: they wait).
    target: OnceLock<(Weak<Registry>, Weak<Pool>)>,
    /// For app dispatch: the end the application polls, and the one this
    /// side writes a byte to while events wait.
    app: Option<(UnixStream, UnixStream)>,
}

struct Inbox {
    events: Queue,
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
    /// A mailbox delivered by a pool, or with `app_dispatch` by the
    /// application's calls to [`Mailbox::dispatch`].
    pub(crate) fn new(
        observer: Box<dyn Observer>,
        app_dispatch: bool,
    ) -> std::io::Result<Arc<Mailbox>> {
        let app = if app_dispatch {
            let (poll, signal) = UnixStream::pair()?;
            poll.set_nonblocking(true)?;
            signal.set_nonblocking(true)?;
            Some((poll, signal))
        } else {
            None
        };
        Ok(Arc::new(Mailbox {
            inbox: Mutex::new(Inbox {
                events: Queue::default(),
                queued: true, // until bound
                running: false,
                closed: false,
                observer: Some(Arc::from(observer)),
            }),
            returned: Condvar::new(),
            target: OnceLock::new(),
            app,
        }))
    }

    /// The fd the application polls (app dispatch only).
    pub(crate) fn event_fd(&self) -> Option<RawFd> {
        self.app.as_ref().map(|(poll, _)| poll.as_raw_fd())
    }

    /// Names the registry the events are for and the pool that delivers
    /// them (none for app dispatch); events that came before go out now.
    pub(crate) fn bind(self: &Arc<Self>, registry: &Arc<Registry>, pool: Option<&Arc<Pool>>) {
        let _ = self.target.set((
            Arc::downgrade(registry),
            pool.map_or_else(Weak::new, Arc::downgrade),
        ));
        let mut inbox = self.inbox.lock();
        inbox.queued = false;
        if inbox.events.is_empty() {
            return;
        }
        if self.app.is_some() {
            self.signal(true);
            return;
        }
        inbox.queued = true;
        drop(inbox);
        if let Some(pool) = pool {
            pool.schedule(self.clone());
        }
    }

    /// Queues one event's callback (called by the connection's reader, in
    /// the server's order, after it updated the registry's handles): its
    /// snapshot is dropped here, and it may be covered by one that waits
    /// already (`pending.rs`). Never blocks.
    pub(crate) fn push(self: &Arc<Self>, d: Delivery) {
        let p = Pending::of(&d);
        drop(d);
        let mut inbox = self.inbox.lock();
        if inbox.closed {
            return;
        }
        let was_empty = inbox.events.is_empty();
        match inbox.events.push(p) {
            Pushed::Covered => return, // by a waiting callback: scheduled
            Pushed::Queued => {}
            Pushed::Compacted(c) => {
                // Not a new first callback: scheduled already.
                drop(inbox);
                c.log();
                return;
            }
        }
        if self.app.is_some() {
            if was_empty && self.target.get().is_some() {
                self.signal(true);
            }
            return;
        }
        if inbox.queued {
            return;
        }
        inbox.queued = true;
        drop(inbox);
        if let Some(pool) = self.pool() {
            pool.schedule(self.clone());
        }
    }

    /// App dispatch: the fd is readable exactly while events wait (one byte
    /// in the pair). Called with the inbox locked.
    fn signal(&self, pending: bool) {
        let Some((poll, signal)) = &self.app else {
            return;
        };
        if pending {
            let _ = (&*signal).write(&[1]);
        } else {
            let mut b = [0u8; 16];
            while matches!((&*poll).read(&mut b), Ok(n) if n > 0) {}
        }
    }

    /// Stops deliveries; returns once no callback of this mailbox runs. Not
    /// to be called from this mailbox's own callback (it would wait for
    /// itself): the registry defers that case.
    pub(crate) fn close_and_wait(&self) {
        let mut inbox = self.inbox.lock();
        inbox.closed = true;
        inbox.events.clear();
        self.signal(false);
        while inbox.running {
            self.returned.wait(&mut inbox);
        }
        let observer = inbox.close();
        drop(inbox);
        drop(observer);
    }

    /// Callbacks waiting (test hook for the bound).
    #[cfg(test)]
    pub(crate) fn waiting(&self) -> usize {
        self.inbox.lock().events.len()
    }

    fn pool(&self) -> Option<Arc<Pool>> {
        self.target.get().and_then(|(_, p)| p.upgrade())
    }

    /// Takes the next event and the observer, marking a callback as
    /// running; `None` when there is none (the mailbox leaves the ready
    /// queue).
    fn next(&self) -> Option<(Delivery, Arc<dyn Observer>)> {
        let mut inbox = self.inbox.lock();
        if inbox.running && self.app.is_some() {
            return None; // a dispatch is already running one
        }
        let d = inbox.events.pop().map(Pending::delivery);
        if inbox.events.is_empty() {
            self.signal(false);
        }
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

    /// Called once the delivering thread let go of its observer reference.
    fn callback_returned(&self, close: bool) {
        let mut inbox = self.inbox.lock();
        inbox.running = false;
        let observer = if close { inbox.close() } else { None };
        self.returned.notify_all();
        drop(inbox);
        drop(observer);
    }

    /// Delivers up to `max` events; true if it stopped at that limit (more
    /// may wait), false once the mailbox is empty or closed. Returns how
    /// many callbacks ran too.
    fn deliver(&self, max: usize, timed: &dyn Fn(&mut dyn FnMut() -> bool) -> bool) -> (bool, u32) {
        let registry = self.target.get().and_then(|(r, _)| r.upgrade());
        let mut ran = 0;
        for _ in 0..max {
            let Some((d, observer)) = self.next() else {
                return (false, ran);
            };
            let keep = match &registry {
                Some(r) => {
                    // The event moves into the one call made (no copy).
                    let mut d = Some(d);
                    timed(&mut || d.take().is_some_and(|d| r.deliver(d, observer.as_ref())))
                }
                None => false,
            };
            ran += 1;
            drop(observer);
            self.callback_returned(!keep);
        }
        (true, ran)
    }

    /// App dispatch: runs up to `max` waiting callbacks (0: all) on the
    /// calling thread; returns how many ran. Runs none while another
    /// dispatch of this registry runs one (on another thread, or this
    /// very callback calling dispatch).
    pub(crate) fn dispatch(&self, max: u32) -> u32 {
        let max = if max == 0 { usize::MAX } else { max as usize };
        self.deliver(max, &|f| f()).1
    }
}

/// The delivery threads of one connection and what they share.
pub(crate) struct Pool {
    ready: Mutex<Ready>,
    /// Signalled for an idle delivery thread.
    wakeup: Condvar,
    /// Mailboxes on the ready queue: its length, read without its lock on
    /// every callback and ordered by the watchdog's fences.
    waiting: AtomicUsize,
    /// Callbacks running now.
    running: AtomicUsize,
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

struct Threads {
    live: usize,
    handles: Vec<JoinHandle<()>>,
    warned_at_max: bool,
}

/// A timer that fires when callbacks stop finishing while mailboxes wait.
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

    fn schedule(self: &Arc<Self>, m: Arc<Mailbox>) {
        self.waiting.fetch_add(1, Ordering::SeqCst);
        {
            let mut ready = self.ready.lock();
            ready.queue.push_back(m);
            if ready.idle > 0 {
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

    /// Runs one callback, telling the watchdog.
    fn timed(&self, f: &mut dyn FnMut() -> bool) -> bool {
        self.running.fetch_add(1, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        if self.waiting.load(Ordering::SeqCst) > 0 {
            self.watchdog.arm();
        }
        let r = f();
        self.running.fetch_sub(1, Ordering::SeqCst);
        self.watchdog.progress();
        r
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
    /// when it returns here). Called when the connection closes: every
    /// registry is closed by then, so no callback is left to wait for.
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

    #[cfg(test)]
    pub(crate) fn live_threads(&self) -> usize {
        self.threads.lock().live
    }
}

/// A delivery thread.
fn work(pool: Arc<Pool>) {
    while let Some(m) = pool.take() {
        pool.waiting.fetch_sub(1, Ordering::SeqCst);
        let (more, _) = m.deliver(BATCH, &|f| pool.timed(f));
        if more {
            pool.schedule(m); // its turn again after the others'
        } else if pool.waiting.load(Ordering::SeqCst) == 0 && pool.retire() {
            return;
        }
    }
}

/// The watchdog thread: sleeps on the timer; when it fires and no callback
/// finished since it was set, wakes or adds a delivery thread if mailboxes
/// wait.
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
        if pool.waiting.load(Ordering::SeqCst) == 0 {
            continue; // nothing waits: unarmed until something does
        }
        if pool.running.load(Ordering::SeqCst) > 0 && !pool.wake_one() {
            log::debug("an observer callback is slow: one more delivery thread");
            if let Err(e) = pool.add_thread() {
                log::warn(&format!("cannot start a delivery thread: {e}"));
            }
        }
        w.arm(); // look again
    }
}

#[cfg(test)]
mod tests {
    use super::super::pending::{KINDS, MAX_PENDING};
    use super::super::registry::tests::{open, rename, saved_profile, tmp_store};
    use super::*;
    use crate::protocol::Event;
    use crossbeam_channel::{Receiver, Sender, unbounded};

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Heard {
        Event(u32, Event),
        Error(u32, i32),
    }

    /// An observer whose first callback does not return until the test
    /// says so; it tells each callback as it starts.
    struct Stuck {
        heard: Sender<Heard>,
        release: Receiver<()>,
        first: AtomicBool,
    }

    impl Stuck {
        /// A user registry of `store` with a `Stuck` observer: what it
        /// hears, and the sender that releases its first callback.
        fn registry(store: &std::path::Path) -> (Arc<Registry>, Receiver<Heard>, Sender<()>) {
            let (heard_tx, heard) = unbounded();
            let (release_tx, release) = unbounded();
            let u = open(
                store,
                false,
                Some(Box::new(Stuck {
                    heard: heard_tx,
                    release,
                    first: AtomicBool::new(false),
                })),
            );
            (u, heard, release_tx)
        }

        fn hold(&self, h: Heard) {
            let _ = self.heard.send(h);
            if !self.first.swap(true, Ordering::SeqCst) {
                let _ = self.release.recv();
            }
        }
    }

    impl Observer for Stuck {
        fn event(&self, id: u32, event: Event) {
            self.hold(Heard::Event(id, event));
        }
        fn error(&self, id: u32, error: i32) {
            self.hold(Heard::Error(id, error));
        }
    }

    fn event(id: u32, event: Event) -> Delivery {
        Delivery::Event {
            id,
            event,
            snapshot: None,
            published_ns: 0,
        }
    }

    /// A callback that does not return while M profiles get N events each:
    /// UPDATED from real saves, and (injected where the connection's reader
    /// hands events over, as a registrar that flaps and an application that
    /// enables again after each failure would make them) registration
    /// changes and errors. The mailbox stays within its bound at every
    /// step; once the callback returns, every CREATED, DESTROYED and the
    /// newest error of each profile are heard, and each profile's last
    /// callback is its newest event.
    #[test]
    fn a_stuck_callback_pins_a_bounded_queue_and_loses_no_kind_of_event() {
        const M: u32 = 40;
        const N: u32 = 3_000;
        let store = tmp_store("stuck");
        let m = open(&store, true, None);
        let (u, heard, release_tx) = Stuck::registry(&store);
        let mut handles = Vec::new();
        let mut ids = Vec::new();
        for _ in 0..M {
            let (h, id) = saved_profile(&m);
            handles.push(h);
            ids.push(id);
        }
        // The first CREATED is running and stuck.
        let first = heard.recv_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!(first, Heard::Event(ids[0], Event::Created));
        let held: Vec<_> = ids.iter().map(|&id| u.profile(id).unwrap()).collect();
        let bound = MAX_PENDING.max(2 * KINDS * M as usize) + 1;
        let mut most = 0;
        for round in 0..N {
            for (k, &id) in ids.iter().enumerate() {
                if round % 500 == 0 {
                    rename(&m, &handles[k], &format!("p{id}-{round}"));
                }
                let state = if round % 2 == 0 {
                    Event::Registered
                } else {
                    Event::Deregistered
                };
                u.on_event(event(id, state));
                if round % 10 == 9 {
                    u.on_event(Delivery::Error {
                        id,
                        code: 400 + (round / 10 % 100) as i32,
                        snapshot: None,
                    });
                }
            }
            most = most.max(u.waiting_callbacks());
            assert!(most <= bound, "{most} callbacks wait (bound {bound})");
        }
        // Half the profiles are destroyed while it is still stuck.
        for h in &handles[..M as usize / 2] {
            m.destroy(h).unwrap();
        }
        let waiting = u.waiting_callbacks();
        assert!(waiting <= bound, "{waiting}");
        assert!(
            waiting >= M as usize,
            "every profile has a callback waiting"
        );
        // The handles already show the newest data.
        let last_name = format!("p{}-{}", ids[M as usize - 1], (N - 1) / 500 * 500);
        {
            let b = held[M as usize - 1].block.read();
            let v = b.view();
            let name =
                crate::profile::access::get_str(&v, crate::profile::keys::PROVIDER_NAME).unwrap();
            assert_eq!(name, last_name);
        }
        release_tx.send(()).unwrap();
        let mut all = vec![first];
        let destroyed = M as usize / 2;
        // Until the last callback of the last profile: its final state.
        let last_of = |id: u32| {
            if (N - 1) % 10 == 9 {
                Heard::Error(id, 400 + ((N - 1) / 10 % 100) as i32)
            } else {
                Heard::Event(id, Event::Deregistered)
            }
        };
        let end = last_of(ids[M as usize - 1]);
        let mut ended = 0;
        while ended < destroyed + 1 {
            let h = heard
                .recv_timeout(Duration::from_secs(30))
                .expect("the callbacks run again");
            if matches!(h, Heard::Event(_, Event::Destroyed)) || h == end {
                ended += 1;
            }
            all.push(h);
        }
        for (k, &id) in ids.iter().enumerate() {
            let mine: Vec<Heard> = all
                .iter()
                .copied()
                .filter(|h| matches!(h, Heard::Event(i, _) | Heard::Error(i, _) if *i == id))
                .collect();
            assert_eq!(
                mine.first(),
                Some(&Heard::Event(id, Event::Created)),
                "{id}"
            );
            let newest_error = Heard::Error(id, 400 + ((N - 1) / 10 % 100) as i32);
            assert!(mine.contains(&newest_error), "{id}: {mine:?}");
            assert!(mine.contains(&Heard::Event(id, Event::Updated)), "{id}");
            assert!(mine.contains(&Heard::Event(id, Event::Registered)), "{id}");
            assert!(
                mine.contains(&Heard::Event(id, Event::Deregistered)),
                "{id}"
            );
            if k < destroyed {
                assert_eq!(mine.last(), Some(&Heard::Event(id, Event::Destroyed)));
            } else {
                assert_eq!(mine.last(), Some(&last_of(id)), "{id}: {mine:?}");
            }
        }
        assert_eq!(u.waiting_callbacks(), 0);
        drop((held, handles));
        u.close();
        m.close();
    }

    /// Below the limit, nothing but repeats of one profile's UPDATED and
    /// unchanged registration states is merged.
    #[test]
    fn below_the_limit_a_stuck_callback_loses_only_repeats() {
        let store = tmp_store("repeats");
        let m = open(&store, true, None);
        let (u, heard, release_tx) = Stuck::registry(&store);
        let (h, id) = saved_profile(&m);
        assert_eq!(
            heard.recv_timeout(Duration::from_secs(10)).unwrap(),
            Heard::Event(id, Event::Created)
        );
        let held = u.profile(id).unwrap();
        for i in 0..50 {
            rename(&m, &h, &format!("n{i}"));
        }
        u.on_event(event(id, Event::Registered));
        u.on_event(event(id, Event::Registered));
        for code in [403, 403, 408] {
            u.on_event(Delivery::Error {
                id,
                code,
                snapshot: None,
            });
        }
        u.on_event(event(id, Event::ForciblyDisabled));
        m.destroy(&h).unwrap();
        assert_eq!(u.waiting_callbacks(), 7);
        release_tx.send(()).unwrap();
        let rest: Vec<Heard> = (0..7)
            .map(|_| heard.recv_timeout(Duration::from_secs(10)).unwrap())
            .collect();
        assert_eq!(
            rest,
            vec![
                Heard::Event(id, Event::Updated),
                Heard::Event(id, Event::Registered),
                Heard::Error(id, 403),
                Heard::Error(id, 403),
                Heard::Error(id, 408),
                Heard::Event(id, Event::ForciblyDisabled),
                Heard::Event(id, Event::Destroyed),
            ]
        );
        drop((held, h));
        u.close();
        m.close();
    }
}
