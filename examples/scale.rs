//! Scale benchmark driver (used by scripts/bench-scale.sh): N profiles
//! registered from one client process with a real registrar, measured. The
//! store's server runs as its own process by default (the figures add up
//! both processes: CPU, RSS), or in this one with
//! SIPPROFILE_SERVER=in-process.
//!
//!   scale STORE REGISTRAR N
//!
//! Prints one `key=value` line: save time, server start time, time to all
//! REGISTERED, registrations/s, peak RSS, RSS added per registered profile,
//! CPU seconds, idle CPU % over the idle window, time to de-register
//! everything. Environment: SCALE_IDLE_SECONDS (idle window, default 10),
//! SCALE_EXPIRES (the profiles' requested expiry; default: the profile
//! default, 3600 s) — scripts/bench-refresh.sh watches a whole refresh
//! period with them.

use sipprofile::client::Registry;
use sipprofile::client::{Event, Observer};
use sipprofile::profile::{TypeInfo, keys};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

struct Counter {
    registered: AtomicUsize,
    errors: AtomicUsize,
    lock: Mutex<()>,
    cv: Condvar,
}

struct CountingObserver(Arc<Counter>);

impl Observer for CountingObserver {
    fn event(&self, _id: u32, event: Event) {
        if event == Event::Registered {
            self.0.registered.fetch_add(1, Ordering::Relaxed);
            self.0.cv.notify_all();
        }
    }
    fn error(&self, _id: u32, _error: i32) {
        self.0.errors.fetch_add(1, Ordering::Relaxed);
        self.0.cv.notify_all();
    }
}

/// The store's server process, when it is not this one.
fn server_pid(store: &std::path::Path) -> Option<u32> {
    let st = sipprofile::client::server_status(store).ok()??;
    (st.pid != std::process::id()).then_some(st.pid)
}

fn status_kib(field: &str) -> u64 {
    proc_status_kib("self", field)
}

fn proc_status_kib(pid: &str, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// CPU seconds of another process (user + system), from /proc.
fn proc_cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<f64> = after
        .split_whitespace()
        .map(|v| v.parse().unwrap_or(0.0))
        .collect();
    // Fields 14 and 15 (utime, stime) are the 12th and 13th after the name.
    let ticks = f.get(11).copied().unwrap_or(0.0) + f.get(12).copied().unwrap_or(0.0);
    // SAFETY: sysconf has no preconditions.
    ticks / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
}

/// This process's CPU seconds plus the server's.
fn total_cpu(server: Option<u32>) -> f64 {
    cpu_seconds() + server.map_or(0.0, proc_cpu_seconds)
}

/// This process's resident KiB plus the server's (`field`: VmRSS or VmHWM).
fn total_kib(server: Option<u32>, field: &str) -> u64 {
    status_kib(field) + server.map_or(0, |p| proc_status_kib(&p.to_string(), field))
}

fn cpu_seconds() -> f64 {
    // SAFETY: getrusage fills a plain struct.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(u.ru_utime) + tv(u.ru_stime)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (store, registrar, n): (&str, &str, usize) = (&args[1], &args[2], args[3].parse().unwrap());
    let store = std::path::Path::new(store);
    let idle_secs: u64 = std::env::var("SCALE_IDLE_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let expires: Option<u32> = std::env::var("SCALE_EXPIRES")
        .ok()
        .and_then(|v| v.parse().ok());

    // 1. Provision N profiles in one durable transaction (save_all).
    let m = Registry::open(Some(store), true, None).unwrap();
    let t = Instant::now();
    let mut unsaved = Vec::with_capacity(n);
    for i in 1..=n {
        let h = m.create(&TypeInfo::ietf()).unwrap();
        h.set_str(keys::USER_AOR, &format!("sip:user{i}@sipprofile.test"))
            .unwrap();
        h.set_server_str(keys::SERVER_REGISTRAR, keys::SERVER_ADDRESS, registrar)
            .unwrap();
        h.set_server_str(
            keys::SERVER_REGISTRAR,
            keys::DIGEST_USER_NAME,
            &format!("user{i}"),
        )
        .unwrap();
        h.set_server_str(
            keys::SERVER_REGISTRAR,
            keys::DIGEST_PASSWORD,
            &format!("pw{i}"),
        )
        .unwrap();
        if let Some(e) = expires {
            h.set_u32(keys::REGISTRATION_EXPIRES, e).unwrap();
        }
        unsaved.push(h);
    }
    m.save_all(&unsaved.iter().collect::<Vec<_>>()).unwrap();
    drop(unsaved);
    let save_s = t.elapsed().as_secs_f64();
    m.close();
    // The server lingers after its last client (ref §5.1); the next step
    // measures a start, so wait for it to go (run with
    // SIPPROFILE_SERVER_LINGER_MS=0 to make that quick).
    let gone = Instant::now();
    while sipprofile::client::server_status(store)
        .ok()
        .flatten()
        .is_some()
        && gone.elapsed() < Duration::from_secs(30)
    {
        std::thread::sleep(Duration::from_millis(20));
    }

    // 2. Server start with N stored profiles.
    let counter = Arc::new(Counter {
        registered: AtomicUsize::new(0),
        errors: AtomicUsize::new(0),
        lock: Mutex::new(()),
        cv: Condvar::new(),
    });
    let t = Instant::now();
    let u = Registry::open(
        Some(store),
        false,
        Some(Box::new(CountingObserver(counter.clone()))),
    )
    .unwrap();
    let start_ms = t.elapsed().as_secs_f64() * 1000.0;
    let server = server_pid(store);
    let handles = u.profiles().unwrap();
    let rss_before = total_kib(server, "VmRSS:");

    // 3. Enable all; wait until every one is REGISTERED.
    let cpu0 = total_cpu(server);
    let t = Instant::now();
    for h in &handles {
        u.enable(h).unwrap();
    }
    {
        let mut g = counter.lock.lock().unwrap();
        while counter.registered.load(Ordering::Relaxed) + counter.errors.load(Ordering::Relaxed)
            < n
            && t.elapsed() < Duration::from_secs(300)
        {
            g = counter
                .cv
                .wait_timeout(g, Duration::from_millis(200))
                .unwrap()
                .0;
        }
    }
    let reg_s = t.elapsed().as_secs_f64();
    let cpu_reg = total_cpu(server) - cpu0;
    let rss_after = total_kib(server, "VmRSS:");
    let registered = counter.registered.load(Ordering::Relaxed);

    // 4. Idle (with the default expiry of 3600 s nothing is due within the
    // benchmark's 10 s; bench-refresh.sh makes the window a refresh period).
    let cpu1 = total_cpu(server);
    std::thread::sleep(Duration::from_secs(idle_secs));
    let idle_pct = (total_cpu(server) - cpu1) / idle_secs as f64 * 100.0;
    let peak_kib = total_kib(server, "VmHWM:");

    // 5. Tear down: the last registry gone, the server de-registers
    // everything; timed until it reports nothing registered (or is gone).
    let t = Instant::now();
    drop(handles);
    u.close();
    while let Some(st) = sipprofile::client::server_status(store).ok().flatten() {
        if st.profiles.iter().all(|p| p.status == 1) || t.elapsed() > Duration::from_secs(60) {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let teardown_s = t.elapsed().as_secs_f64();
    println!(
        "n={n} registered={registered} errors={} save_s={save_s:.2} start_ms={start_ms:.1} \
         register_s={reg_s:.3} regs_per_s={:.0} cpu_s={cpu_reg:.2} peak_rss_mb={:.1} \
         rss_per_profile_bytes={:.0} idle_cpu_pct={idle_pct:.3} teardown_s={teardown_s:.2}",
        counter.errors.load(Ordering::Relaxed),
        registered as f64 / reg_s,
        peak_kib as f64 / 1024.0,
        (rss_after.saturating_sub(rss_before) * 1024) as f64 / n as f64,
    );
}
