//! Event delivery latency at 1,000 events/s: from the instant the profile
//! server publishes a change (here UPDATED, sent by a save of a managed
//! registry) to the start of the observer callback of a user registry
//! holding the profile. The store is on tmpfs so the durable save's fsync
//! does not set the pace.
//!
//!   cargo run --release --example event_latency [EVENTS] [--both-observe]
//!
//! `--both-observe` gives the saving registry an observer too, so that every
//! event wakes two dispatcher threads (the case of an application watching
//! from both its registries).

use sipprofile::profile::{TypeInfo, access, keys};
use sipprofile::server::Registry;
use sipprofile::server::events::{Event, Observer};
use std::sync::Mutex;
use std::sync::mpsc::{Sender, channel};
use std::time::{Duration, Instant};

/// Sends (published, callback start) of each UPDATED.
struct Stamp(Mutex<Sender<(Instant, Instant)>>);

impl Observer for Stamp {
    fn event(&self, _id: u32, _event: Event) {}
    fn event_at(&self, _id: u32, event: Event, published: Instant) {
        let now = Instant::now();
        if event == Event::Updated {
            let _ = self.0.lock().unwrap().send((published, now));
        }
    }
    fn error(&self, _id: u32, _error: i32) {}
}

struct Ignore;

impl Observer for Ignore {
    fn event(&self, _id: u32, _event: Event) {}
    fn error(&self, _id: u32, _error: i32) {}
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let both = args.iter().any(|a| a == "--both-observe");
    let events: usize = args.iter().find_map(|v| v.parse().ok()).unwrap_or(5000);
    let dir =
        std::path::Path::new("/dev/shm").join(format!("sipprofile-latency-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let store = dir.join("p.db");
    let managed_observer: Option<Box<dyn Observer>> = both.then(|| Box::new(Ignore) as _);
    let m = Registry::open(Some(&store), true, managed_observer).unwrap();
    let h = m.create(&TypeInfo::ietf()).unwrap();
    access::set_str(
        &mut h.block.write().data,
        keys::USER_AOR,
        "sip:a@example.com",
    )
    .unwrap();
    m.save(&h).unwrap();
    let id = h.block.read().data.id;
    let (tx, rx) = channel();
    let u = Registry::open(Some(&store), false, Some(Box::new(Stamp(Mutex::new(tx))))).unwrap();
    let held = u.profile(id).unwrap(); // events reach holders only
    let mut lat = Vec::with_capacity(events);
    // Cross-check without the library's clock: from save() returning to the
    // callback (a lower bound, as the event is published inside save()).
    let mut after = Vec::with_capacity(events);
    let start = Instant::now();
    for i in 0..events {
        let due = start + Duration::from_millis(i as u64);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        access::set_str(
            &mut h.block.write().data,
            keys::PROVIDER_NAME,
            &format!("n{i}"),
        )
        .unwrap();
        m.save(&h).unwrap();
        let returned = Instant::now();
        let (published, called) = rx.recv_timeout(Duration::from_secs(5)).expect("UPDATED");
        lat.push(called - published);
        after.push(called.saturating_duration_since(returned));
    }
    let elapsed = start.elapsed().as_secs_f64();
    for v in [&mut lat, &mut after] {
        v.sort();
    }
    let pct = |v: &Vec<Duration>, p: f64| {
        v[((v.len() as f64 * p) as usize).min(v.len() - 1)].as_secs_f64() * 1e6
    };
    println!(
        "events={events} rate={:.0}/s observers={} published_to_callback_us p50={:.1} p99={:.1} p99.9={:.1} max={:.1} | after_save_returned_us p50={:.1} p99={:.1}",
        events as f64 / elapsed,
        if both { 2 } else { 1 },
        pct(&lat, 0.50),
        pct(&lat, 0.99),
        pct(&lat, 0.999),
        pct(&lat, 1.0),
        pct(&after, 0.50),
        pct(&after, 0.99),
    );
    drop((held, h));
    u.close();
    m.close();
    let _ = std::fs::remove_dir_all(dir);
}
