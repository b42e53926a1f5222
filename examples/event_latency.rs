//! Event delivery latency: from the moment a change is made (a save that
//! sends UPDATED) to the observer callback of another registry, at 1,000
//! events/s. The store is on tmpfs so that the save's fsync does not
//! dominate; the figure is an upper bound (it includes the save itself).
//!
//!   cargo run --release --example event_latency [EVENTS]

use sipprofile::profile::{TypeInfo, access, keys};
use sipprofile::server::Registry;
use sipprofile::server::events::{Event, Observer};
use std::sync::Mutex;
use std::sync::mpsc::{Sender, channel};
use std::time::{Duration, Instant};

struct Stamp(Mutex<Sender<Instant>>);

impl Observer for Stamp {
    fn event(&self, _id: u32, event: Event) {
        if event == Event::Updated {
            let _ = self.0.lock().unwrap().send(Instant::now());
        }
    }
    fn error(&self, _id: u32, _error: i32) {}
}

fn main() {
    let events: usize = std::env::args()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(5000);
    let dir =
        std::path::Path::new("/dev/shm").join(format!("sipprofile-latency-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let store = dir.join("p.db");
    let m = Registry::open(Some(&store), true, None).unwrap();
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
    let mut saves = Vec::with_capacity(events);
    // The event is sent inside save(); the callback usually runs after save()
    // returns: `after` is the part of the latency that is not the save.
    let mut after = Vec::with_capacity(events);
    let start = Instant::now();
    for i in 0..events {
        // 1,000 events/s.
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
        let t0 = Instant::now();
        m.save(&h).unwrap();
        let returned = Instant::now();
        let t1 = rx.recv_timeout(Duration::from_secs(5)).expect("UPDATED");
        lat.push(t1.saturating_duration_since(t0));
        saves.push(returned - t0);
        after.push(t1.saturating_duration_since(returned));
    }
    for v in [&mut lat, &mut saves, &mut after] {
        v.sort();
    }
    let pct = |v: &Vec<Duration>, p: f64| {
        v[((v.len() as f64 * p) as usize).min(v.len() - 1)].as_secs_f64() * 1e6
    };
    println!(
        "events={events} rate=1000/s change_to_callback_p50_us={:.1} p99_us={:.1} | save_p99_us={:.1} | after_save_returned_p50_us={:.1} p99_us={:.1}",
        pct(&lat, 0.50),
        pct(&lat, 0.99),
        pct(&saves, 0.99),
        pct(&after, 0.50),
        pct(&after, 0.99),
    );
    drop((held, h));
    u.close();
    m.close();
    let _ = std::fs::remove_dir_all(dir);
}
