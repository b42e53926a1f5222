//! Event delivery latency at 1,000 events/s: from the instant the profile
//! server publishes a state change to the start of the observer callback of
//! a user registry holding the profile.
//!
//!   cargo run --release --example event_latency [EVENTS] [--both-observe]
//!   cargo run --release --example event_latency EVENTS --registrar sip:127.0.0.1:PORT
//!
//! Default mode: the change is a save (UPDATED) by a managed registry, paced
//! at 1,000/s; the store is on tmpfs so the durable save's fsync does not set
//! the pace. `--both-observe` gives the saving registry an observer too, so
//! every event has two callbacks (one delivery thread runs both in turn);
//! both are timed.
//!
//! `--registrar`: the change is a registration: EVENTS profiles (user1..N,
//! password pwN, as `tests/peers/kamailio.sh` provisions) are enabled one per
//! millisecond and each REGISTERED is timed, the registrar sharing the cores,
//! from the server's publishing it (right after the 200 OK arrives, on the
//! engine's thread) to the callback in this process: the server writes it
//! to the socket, this process's reader applies it and wakes a delivery
//! thread.
//!
//! Each line ends with `steal_ms`: the time the host took the VM's CPUs
//! away during the run (`steal` of /proc/stat), which sets most of the tail
//! on a busy host.
//!
//! `--floor`: no library at all. A thread paced at 1,000/s sends its
//! `Instant::now()` over a crossbeam channel (as the delivery thread parks
//! on one) to one thread, which stamps it on waking (twice, for two
//! callbacks, with `--both-observe`). This is the machine's own wake-up
//! cost, the floor under the library's figures. `--floor --thread-each`
//! wakes one thread per callback instead: what a thread per observing
//! registry costs.

use sipprofile::client::Registry;
use sipprofile::client::{Event, Observer};
use sipprofile::profile::{TypeInfo, keys};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Sender, channel};
use std::time::{Duration, Instant};

/// Sends (published, callback start) of each event of one kind.
struct Stamp(Event, Mutex<Sender<(u64, u64)>>);

impl Observer for Stamp {
    fn event(&self, _id: u32, _event: Event) {}
    fn event_at(&self, _id: u32, event: Event, published: u64) {
        // The monotonic clock is the server's too (another process).
        let now = sipprofile::protocol::monotonic_ns();
        if event == self.0 {
            let _ = self.1.lock().unwrap().send((published, now));
        }
    }
    fn error(&self, _id: u32, _error: i32) {}
}

/// Sleeps until event `i` is due at 1,000/s.
fn pace(start: Instant, i: usize) {
    let due = start + Duration::from_millis(i as u64);
    if let Some(wait) = due.checked_duration_since(Instant::now()) {
        std::thread::sleep(wait);
    }
}

/// Prints one line; with two observers both callbacks of an event count.
fn report(events: usize, kind: &str, elapsed: f64, observers: usize, lat: &mut [Duration]) {
    lat.sort();
    println!(
        "events={events} kind={kind} rate={:.0}/s observing_registries={observers} published_to_callback_us p50={:.1} p99={:.1} p99.9={:.1} max={:.1} steal_ms={}",
        events as f64 / elapsed,
        pct(lat, 0.50),
        pct(lat, 0.99),
        pct(lat, 0.999),
        pct(lat, 1.0),
        steal_ms().saturating_sub(STEAL_AT_START.load(Ordering::Relaxed)),
    );
}

static STEAL_AT_START: AtomicU64 = AtomicU64::new(0);

/// CPU time the host has stolen from this VM since boot, all CPUs, in ms
/// (0 where /proc/stat has no such column).
fn steal_ms() -> u64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: u64 = stat
        .lines()
        .next()
        .and_then(|cpu| cpu.split_whitespace().nth(8))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    ticks * 1000 / 100 // USER_HZ is 100 on Linux
}

fn pct(v: &[Duration], p: f64) -> f64 {
    v[((v.len() as f64 * p) as usize).min(v.len() - 1)].as_secs_f64() * 1e6
}

/// The `--floor` mode: a paced thread wakes `threads` threads per event,
/// each stamping it `callbacks` times.
fn floor(events: usize, threads: usize, callbacks: usize) -> (Vec<Duration>, f64) {
    let (stamps_tx, stamps) = channel();
    let mut senders = Vec::new();
    let mut joins = Vec::new();
    for _ in 0..threads {
        let (tx, rx) = crossbeam_channel::unbounded::<Instant>();
        let stamps_tx = stamps_tx.clone();
        senders.push(tx);
        joins.push(std::thread::spawn(move || {
            for sent in rx.iter() {
                for _ in 0..callbacks {
                    let _ = stamps_tx.send(Instant::now() - sent);
                }
            }
        }));
    }
    drop(stamps_tx);
    let start = Instant::now();
    for i in 0..events {
        pace(start, i);
        let now = Instant::now();
        for tx in &senders {
            tx.send(now).unwrap();
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    drop(senders);
    for t in joins {
        t.join().unwrap();
    }
    (stamps.iter().collect(), elapsed)
}

fn main() {
    STEAL_AT_START.store(steal_ms(), Ordering::Relaxed);
    let args: Vec<String> = std::env::args().skip(1).collect();
    let both = args.iter().any(|a| a == "--both-observe");
    let events: usize = args.iter().find_map(|v| v.parse().ok()).unwrap_or(5000);
    if args.iter().any(|a| a == "--floor") {
        let observers = if both { 2 } else { 1 };
        let (mut lat, elapsed, kind) = if args.iter().any(|a| a == "--thread-each") {
            let (lat, elapsed) = floor(events, observers, 1);
            (lat, elapsed, "floor-thread-each")
        } else {
            let (lat, elapsed) = floor(events, 1, observers);
            (lat, elapsed, "floor")
        };
        report(events, kind, elapsed, observers, &mut lat);
        return;
    }
    let registrar = args
        .iter()
        .position(|a| a == "--registrar")
        .and_then(|i| args.get(i + 1).cloned());
    let dir =
        std::path::Path::new("/dev/shm").join(format!("sipprofile-latency-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let store = dir.join("p.db");
    let (tx, rx) = channel();
    let kind = if registrar.is_some() {
        Event::Registered
    } else {
        Event::Updated
    };
    let managed_observer: Option<Box<dyn Observer>> =
        both.then(|| Box::new(Stamp(kind, Mutex::new(tx.clone()))) as _);
    let m = Registry::open(Some(&store), true, managed_observer).unwrap();
    let mut lat = Vec::with_capacity(events);
    let start;
    if let Some(registrar) = &registrar {
        let mut ids = Vec::with_capacity(events);
        for i in 1..=events {
            let h = m.create(&TypeInfo::ietf()).unwrap();
            h.set_str(keys::USER_AOR, &format!("sip:user{i}@sipprofile.test"))
                .unwrap();
            for (key, value) in [
                (keys::SERVER_ADDRESS, registrar.clone()),
                (keys::DIGEST_USER_NAME, format!("user{i}")),
                (keys::DIGEST_PASSWORD, format!("pw{i}")),
            ] {
                h.set_server_str(keys::SERVER_REGISTRAR, key, &value)
                    .unwrap();
            }
            m.save(&h).unwrap();
            ids.push(h.id());
        }
        let stamp = Stamp(kind, Mutex::new(tx));
        let u = Registry::open(Some(&store), false, Some(Box::new(stamp))).unwrap();
        let held: Vec<_> = ids.iter().map(|id| u.profile(*id).unwrap()).collect();
        start = Instant::now();
        for (i, h) in held.iter().enumerate() {
            pace(start, i);
            u.enable(h).unwrap();
        }
        for _ in 0..events {
            let (published, called) = rx
                .recv_timeout(Duration::from_secs(30))
                .expect("REGISTERED");
            lat.push(Duration::from_nanos(called.saturating_sub(published)));
        }
        drop(held);
        u.close();
    } else {
        let h = m.create(&TypeInfo::ietf()).unwrap();
        h.set_str(keys::USER_AOR, "sip:a@example.com").unwrap();
        m.save(&h).unwrap();
        let id = h.id();
        let stamp = Stamp(kind, Mutex::new(tx));
        let u = Registry::open(Some(&store), false, Some(Box::new(stamp))).unwrap();
        let held = u.profile(id).unwrap(); // events reach holders only
        start = Instant::now();
        for i in 0..events {
            pace(start, i);
            h.set_str(keys::PROVIDER_NAME, &format!("n{i}")).unwrap();
            m.save(&h).unwrap();
            for _ in 0..if both { 2 } else { 1 } {
                let (published, called) = rx.recv_timeout(Duration::from_secs(5)).expect("UPDATED");
                lat.push(Duration::from_nanos(called.saturating_sub(published)));
            }
        }
        drop((held, h));
        u.close();
    }
    let elapsed = start.elapsed().as_secs_f64();
    report(
        events,
        &format!("{kind:?}"),
        elapsed,
        if both { 2 } else { 1 },
        &mut lat,
    );
    m.close();
    let _ = std::fs::remove_dir_all(dir);
}
