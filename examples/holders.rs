//! Several processes holding every profile of one store (one shared server):
//! how long each takes to get its handles, and what they cost the server.
//!
//!   holders STORE N PROCS
//!
//! Saves N profiles in one transaction (`save_all`) if the store is empty,
//! then starts PROCS processes of itself; each opens an observing registry,
//! takes a handle of every profile and says how long that took. With all
//! of them holding, one profile is renamed: the time until every process
//! heard UPDATED is printed too. One `key=value` line.

use sipprofile::client::{Event, Observer, Registry};
use sipprofile::profile::{TypeInfo, keys};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::mpsc::{Sender, channel};
use std::time::{Duration, Instant};

struct Updated(Mutex<Sender<()>>);

impl Observer for Updated {
    fn event(&self, _: u32, event: Event) {
        if event == Event::Updated {
            let _ = self.0.lock().unwrap().send(());
        }
    }
    fn error(&self, _: u32, _: i32) {}
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// A holder: opens, takes every handle, reports, then waits for UPDATED
/// and for its stdin to close.
fn child(store: &std::path::Path) {
    let (tx, rx) = channel();
    let t = Instant::now();
    let u = Registry::open(Some(store), false, Some(Box::new(Updated(Mutex::new(tx))))).unwrap();
    let held = u.profiles().unwrap();
    println!("held {} {:.3}", held.len(), t.elapsed().as_secs_f64());
    std::io::stdout().flush().unwrap();
    rx.recv_timeout(Duration::from_secs(60)).expect("UPDATED");
    println!("updated");
    std::io::stdout().flush().unwrap();
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
    drop(held);
    u.close();
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let store = std::path::PathBuf::from(&args[1]);
    if args.get(2).map(String::as_str) == Some("--child") {
        return child(&store);
    }
    let n: usize = args[2].parse().unwrap();
    let procs: usize = args[3].parse().unwrap();
    let m = Registry::open(Some(&store), true, None).unwrap();
    let t = Instant::now();
    if m.profiles().unwrap().is_empty() {
        let hs: Vec<_> = (0..n)
            .map(|i| {
                let h = m.create(&TypeInfo::ietf()).unwrap();
                h.set_str(keys::USER_AOR, &format!("sip:user{i}@sipprofile.test"))
                    .unwrap();
                h
            })
            .collect();
        m.save_all(&hs.iter().collect::<Vec<_>>()).unwrap();
    }
    let save_all_s = t.elapsed().as_secs_f64();
    let server = sipprofile::client::server_status(&store)
        .unwrap()
        .expect("server")
        .pid;
    let server_before = rss_kib(server);
    let exe = std::env::current_exe().unwrap();
    let t = Instant::now();
    let mut children: Vec<_> = (0..procs)
        .map(|_| {
            Command::new(&exe)
                .arg(&store)
                .arg("--child")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut outs: Vec<_> = children
        .iter_mut()
        .map(|c| BufReader::new(c.stdout.take().unwrap()))
        .collect();
    let mut slowest = 0f64;
    let mut rss_children = 0;
    for (c, out) in children.iter().zip(outs.iter_mut()) {
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        let mut parts = line.split_whitespace().skip(1);
        assert_eq!(parts.next().unwrap().parse::<usize>().unwrap(), n);
        slowest = slowest.max(parts.next().unwrap().parse().unwrap());
        rss_children += rss_kib(c.id());
    }
    let all_held_s = t.elapsed().as_secs_f64();
    let server_after = rss_kib(server);
    // One change reaches every holder.
    let h = m.profile(1).unwrap();
    h.set_str(keys::PROVIDER_NAME, "renamed").unwrap();
    let t = Instant::now();
    m.save(&h).unwrap();
    for out in &mut outs {
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "updated");
    }
    let update_ms = t.elapsed().as_secs_f64() * 1000.0;
    for c in &mut children {
        drop(c.stdin.take());
        c.wait().unwrap();
    }
    println!(
        "n={n} procs={procs} save_all_s={save_all_s:.3} slowest_lookup_s={slowest:.3} \
         all_held_s={all_held_s:.3} server_rss_per_handle_bytes={:.0} \
         client_rss_mb={:.1} update_to_all_ms={update_ms:.1}",
        (server_after.saturating_sub(server_before) * 1024) as f64 / (n * procs) as f64,
        rss_children as f64 / 1024.0 / procs as f64,
    );
    drop(h);
    m.close();
}
