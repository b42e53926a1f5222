//! Shared by the integration tests: build the cdylib, run real peers
//! (Kamailio, SIPp) on loopback, temporary directories.
#![allow(dead_code)]

use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Builds `libsipprofile.so` (cargo test builds only the rlib) once per
/// test binary; returns the directory holding it.
pub fn cdylib_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = Command::new(cargo);
        // Cargo gives the test these package variables; build scripts (ring's)
        // rerun when they change, so a nested build that sees them rebuilds
        // ring, rustls and the library on every alternation with `cargo test`.
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy();
            if k.starts_with("CARGO_PKG_")
                || k.starts_with("CARGO_BIN_EXE_")
                || k.starts_with("CARGO_MANIFEST_")
                || ["OUT_DIR", "CARGO_CRATE_NAME", "CARGO_PRIMARY_PACKAGE"].contains(&&*k)
            {
                build.env_remove(&*k);
            }
        }
        let st = build
            .args(["build", "--lib", "--quiet"])
            .current_dir(root())
            .status()
            .expect("cargo build --lib");
        assert!(st.success(), "building the cdylib failed");
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| root().join("target"));
        target.join("debug")
    })
}

/// `make -C dir` with LIBDIR pointing at the cdylib, once per test binary
/// and arguments: tests run in parallel, and a second make relinking a
/// program while another test runs it would fail that test.
pub fn make(dir: &str, extra: &[&str]) {
    static DONE: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let key = format!("{dir} {}", extra.join(" "));
    let mut done = DONE.lock().unwrap_or_else(|e| e.into_inner());
    if done.contains(&key) {
        return;
    }
    let lib = cdylib_dir();
    let out = Command::new("make")
        .arg("-s")
        .arg("-C")
        .arg(root().join(dir))
        .arg(format!("LIBDIR={}", lib.display()))
        .args(extra)
        .output()
        .expect("make");
    assert!(
        out.status.success(),
        "make -C {dir} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    done.push(key);
}

/// A fresh directory under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let mut b = [0u8; 6];
        getrandom::fill(&mut b).unwrap();
        let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
        let p = std::env::temp_dir().join(format!("sipprofile-{tag}-{hex}"));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var_os("SIPPROFILE_KEEP_TMP").is_none() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// A loopback port free for both UDP and TCP right now.
pub fn free_port() -> u16 {
    for _ in 0..100 {
        let u = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = u.local_addr().unwrap().port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port");
}

/// A Kamailio registrar with digest auth on 127.0.0.1, stopped on drop.
pub struct Kamailio {
    pub dir: TempDir,
    pub port: u16,
    args: Vec<String>,
    env: Vec<(String, String)>,
}

impl Kamailio {
    pub fn start(algorithm: &str) -> Kamailio {
        Self::start_with(algorithm, 60, 0)
    }

    pub fn start_with(algorithm: &str, min_expires: u32, users: u32) -> Kamailio {
        Self::start_env(algorithm, min_expires, users, &[])
    }

    /// With extra environment for kamailio.sh (KAMAILIO_IPV6, KAMAILIO_TLS_*).
    pub fn start_env(
        algorithm: &str,
        min_expires: u32,
        users: u32,
        env: &[(&str, &str)],
    ) -> Kamailio {
        let dir = TempDir::new("kamailio");
        let port = free_port();
        let args = vec![
            "start".to_string(),
            dir.path().to_str().unwrap().to_string(),
            port.to_string(),
            algorithm.to_string(),
            min_expires.to_string(),
            users.to_string(),
        ];
        let k = Kamailio {
            dir,
            port,
            args,
            env: env
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
        };
        k.run_start();
        k
    }

    fn run_start(&self) {
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        let out = Command::new(root().join("tests/peers/kamailio.sh"))
            .args(&args)
            .envs(self.env.iter().map(|(a, b)| (a.as_str(), b.as_str())))
            .output()
            .expect("tests/peers/kamailio.sh");
        assert!(
            out.status.success(),
            "kamailio failed to start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn stop(&self) {
        let _ = run_script(&["stop", self.dir.path().to_str().unwrap()]);
    }

    /// Starts it again on the same port (after `stop`), with no bindings.
    pub fn start_again(&self) {
        self.run_start();
    }

    pub fn registrar(&self) -> String {
        format!("sip:127.0.0.1:{}", self.port)
    }

    /// The shell command that prints the bindings (`kamcmd ul.dump`).
    pub fn bindings_command(&self) -> String {
        format!(
            "{} bindings {}",
            root().join("tests/peers/kamailio.sh").display(),
            self.dir.path().display()
        )
    }

    pub fn bindings(&self) -> String {
        let out = run_script(&["bindings", self.dir.path().to_str().unwrap()]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        let _ = run_script(&["stop", self.dir.path().to_str().unwrap()]);
    }
}

fn run_script(args: &[&str]) -> Output {
    Command::new(root().join("tests/peers/kamailio.sh"))
        .args(args)
        .output()
        .expect("tests/peers/kamailio.sh")
}

use sipprofile::client::{Event, Observer};
use sipprofile::client::{ProfileHandle, Registry};
use sipprofile::profile::{TypeInfo, keys};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::Duration;

/// What an observer saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    Event(u32, Event),
    Error(u32, i32),
}

pub struct ChannelObserver(pub std::sync::Mutex<Sender<Seen>>);

impl Observer for ChannelObserver {
    fn event(&self, id: u32, event: Event) {
        let _ = self.0.lock().unwrap().send(Seen::Event(id, event));
    }
    fn error(&self, id: u32, error: i32) {
        let _ = self.0.lock().unwrap().send(Seen::Error(id, error));
    }
}

/// A registry whose observer feeds a channel.
pub fn registry(store: &Path, managed: bool) -> (Arc<Registry>, Receiver<Seen>) {
    let (tx, rx) = channel();
    let obs = Box::new(ChannelObserver(std::sync::Mutex::new(tx)));
    (
        Registry::open(Some(store), managed, Some(obs)).expect("registry"),
        rx,
    )
}

/// A registry whose observer feeds a channel, with the store's server
/// hosted in this test process (its SIP engine, and its log, are here).
pub fn registry_in_process(store: &Path, managed: bool) -> (Arc<Registry>, Receiver<Seen>) {
    let (tx, rx) = channel();
    let obs = Box::new(ChannelObserver(std::sync::Mutex::new(tx)));
    let flags = sipprofile::client::Flags {
        hosting: Some(sipprofile::client::Hosting::InProcess),
        ..Default::default()
    };
    (
        Registry::open_with(Some(store), managed, Some(obs), flags).expect("registry"),
        rx,
    )
}

/// Waits (bounded) for `want`, skipping other observations.
pub fn wait_for(rx: &Receiver<Seen>, want: Seen, within: Duration) -> bool {
    let deadline = std::time::Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(s) if s == want => return true,
            Ok(_) => continue,
            Err(_) => return false,
        }
    }
}

/// Saves an IETF profile registering `user` at `registrar`; returns its id.
pub fn provision(
    m: &Arc<Registry>,
    registrar: &str,
    user: &str,
    password: &str,
    expires: u32,
) -> u32 {
    let h = m.create(&TypeInfo::ietf()).unwrap();
    h.set_str(keys::USER_AOR, &format!("sip:{user}@sipprofile.test"))
        .unwrap();
    h.set_server_str(keys::SERVER_REGISTRAR, keys::SERVER_ADDRESS, registrar)
        .unwrap();
    h.set_server_str(keys::SERVER_REGISTRAR, keys::DIGEST_USER_NAME, user)
        .unwrap();
    h.set_server_str(keys::SERVER_REGISTRAR, keys::DIGEST_PASSWORD, password)
        .unwrap();
    h.set_u32(keys::REGISTRATION_EXPIRES, expires).unwrap();
    m.save(&h).unwrap();
    h.id()
}

pub fn contact_user(h: &ProfileHandle) -> String {
    h.get_str(keys::CONTACT_HEADER_USER).unwrap()
}

/// SIPp running a scripted registrar (UAS) scenario from tests/peers/sipp on
/// 127.0.0.1; one call, bounded by a global timeout.
pub struct Sipp {
    pub port: u16,
    child: Option<std::process::Child>,
    pub dir: TempDir,
}

impl Sipp {
    pub fn start(scenario: &str) -> Sipp {
        Self::start_file(&root().join("tests/peers/sipp").join(scenario))
    }

    pub fn start_file(scenario: &Path) -> Sipp {
        Self::start_args(scenario, &[])
    }

    /// A UAC scenario sending to `target` (ip:port), `[service]` = `service`.
    pub fn start_uac(scenario: &str, target: &str, service: &str) -> Sipp {
        Self::start_args(
            &root().join("tests/peers/sipp").join(scenario),
            &[target, "-s", service],
        )
    }

    fn start_args(scenario: &Path, extra: &[&str]) -> Sipp {
        let dir = TempDir::new("sipp");
        let port = free_port();
        let child = Command::new("sipp")
            .arg("-sf")
            .arg(scenario)
            .args(extra)
            .args(["-i", "127.0.0.1", "-p", &port.to_string()])
            .args(["-m", "1", "-nostdin", "-timeout", "40s", "-timeout_error"])
            .args(["-trace_err", "-trace_msg"])
            .current_dir(dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("sipp (Debian package sip-tester)");
        // Ready when its UDP port is taken (bounded: 5 s).
        for _ in 0..50 {
            if UdpSocket::bind(("127.0.0.1", port)).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Sipp {
            port,
            child: Some(child),
            dir,
        }
    }

    pub fn registrar(&self) -> String {
        format!("sip:127.0.0.1:{}", self.port)
    }

    /// Waits (bounded) for SIPp to finish its call; true if the scenario
    /// passed. Prints its message trace on failure.
    pub fn passed(&mut self, within: Duration) -> bool {
        let mut child = self.child.take().expect("running");
        let deadline = std::time::Instant::now() + within;
        loop {
            if let Some(st) = child.try_wait().unwrap() {
                if !st.success() {
                    self.dump();
                }
                return st.success();
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                self.dump();
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// How many REGISTER requests SIPp received (from its message trace).
    pub fn registers_received(&self) -> usize {
        self.received_with("REGISTER sip:")
    }

    /// How many received messages have a line starting with `line`.
    pub fn received_with(&self, line: &str) -> usize {
        let mut n = 0;
        if let Ok(rd) = std::fs::read_dir(self.dir.path()) {
            for e in rd.flatten() {
                if e.file_name().to_string_lossy().ends_with("_messages.log") {
                    let text = std::fs::read_to_string(e.path()).unwrap_or_default();
                    n += text
                        .split("-----------------------------------------------")
                        .filter(|b| b.contains("message received"))
                        .filter(|b| b.lines().any(|l| l.starts_with(line)))
                        .count();
                }
            }
        }
        n
    }

    /// Waits (bounded) for SIPp to end, whatever its exit status (SIPp
    /// reports a receive timeout as an error even when the scenario expects it).
    pub fn wait_exit(&mut self, within: Duration) {
        if let Some(mut child) = self.child.take() {
            let deadline = std::time::Instant::now() + within;
            while child.try_wait().unwrap().is_none() && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn dump(&self) {
        if let Ok(rd) = std::fs::read_dir(self.dir.path()) {
            for e in rd.flatten() {
                eprintln!("--- {}", e.path().display());
                eprintln!("{}", std::fs::read_to_string(e.path()).unwrap_or_default());
            }
        }
    }
}

impl Drop for Sipp {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// dnsmasq (Debian package dnsmasq-base) serving only the records given, as
/// dnsmasq options (`--srv-host=…`, `--host-record=…`, `--naptr-record=…`),
/// on a free loopback port; names under `.test` it does not know are
/// answered NXDOMAIN. Stopped on drop.
pub struct Dnsmasq {
    pub port: u16,
    child: std::process::Child,
    pub dir: TempDir,
}

impl Dnsmasq {
    pub fn start(records: &[String]) -> Dnsmasq {
        Self::start_on(free_port(), records)
    }

    /// On `port` (e.g. again, with other records, after the first is dropped).
    pub fn start_on(port: u16, records: &[String]) -> Dnsmasq {
        let dir = TempDir::new("dnsmasq");
        let child = Command::new("/usr/sbin/dnsmasq")
            .args(["--keep-in-foreground", "--conf-file=/dev/null"])
            .args(["--no-resolv", "--no-hosts", "--local=/test/", "--pid-file="])
            .args(["--listen-address=127.0.0.1", "--bind-interfaces"])
            .arg(format!("--port={port}"))
            // As root it would switch to a user that may not exist here.
            .args(is_root().then_some("--user=root"))
            .arg("--log-queries")
            .arg(format!(
                "--log-facility={}",
                dir.path().join("dnsmasq.log").display()
            ))
            .args(records)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("/usr/sbin/dnsmasq (Debian package dnsmasq-base)");
        // Ready when its UDP port is taken (bounded: 5 s).
        for _ in 0..50 {
            if UdpSocket::bind(("127.0.0.1", port)).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Dnsmasq { port, child, dir }
    }

    /// For `SIPPROFILE_DNS_SERVERS`.
    pub fn server(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// What it was asked (its query log).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dnsmasq.log")).unwrap_or_default()
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}
