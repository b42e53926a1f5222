//! Reaching a store's server: connect to its socket and greet it; if none
//! runs, start one (the `sipprofile-server` executable, or, with
//! `SIPPROFILE_SERVER=in-process`, in this process) and try again. Ref §5.1
//! tries 10 times; so do we, within [`START_WAIT`].

use crate::protocol::endpoint::Endpoint;
use crate::protocol::frame::{read_message, send_message};
use crate::protocol::{Hello, Reply, Request, ServerStatus, ToClient, ToServer, Welcome};
use crate::server::host::{self, Host};
use crate::server::listener;
use crate::{Error, Result, log};
use crossbeam_channel::{Receiver, Sender};
use std::io;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long the first registry of a store waits for a server to start.
pub const START_WAIT: Duration = Duration::from_secs(10);
/// Servers one client starts at most before giving up (ref §5.1).
pub const START_TRIES: u32 = 10;

/// Where the server runs (`SIPPROFILE_SERVER`, contract §8.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hosting {
    /// A process of its own, started on demand (the default).
    Process,
    /// In the first process that opens the store.
    InProcess,
}

impl Hosting {
    pub fn from_env() -> Result<Hosting> {
        match std::env::var("SIPPROFILE_SERVER").as_deref() {
            Err(_) | Ok("") | Ok("process") => Ok(Hosting::Process),
            Ok("in-process") => Ok(Hosting::InProcess),
            Ok(other) => {
                crate::error::set_message(format!(
                    "SIPPROFILE_SERVER={other}: expected `process` or `in-process`"
                ));
                Err(Error::Argument)
            }
        }
    }
}

/// A connected server.
pub(crate) enum Link {
    Socket(UnixStream),
    /// The server this process hosts: channels, and the host itself.
    Local(Sender<ToServer>, Receiver<ToClient>, Box<Host>),
}

enum Attempt {
    Connected(UnixStream),
    NoServer,
    Refused(String),
}

/// Connects to the server of `endpoint`, starting one if none runs.
pub(crate) fn connect(endpoint: &Endpoint, hosting: Hosting) -> Result<Link> {
    let deadline = Instant::now() + START_WAIT;
    let mut started = 0;
    let mut last_failure = None;
    let mut pause = Duration::from_millis(1);
    loop {
        match attempt(endpoint) {
            Attempt::Connected(s) => return Ok(Link::Socket(s)),
            Attempt::Refused(reason) if !reason.contains("stopping") => {
                crate::error::set_message(format!(
                    "the profile server of {} refused this client: {reason}",
                    endpoint.store.display()
                ));
                return Err(Error::NotSupported);
            }
            Attempt::Refused(_) | Attempt::NoServer => {}
        }
        match hosting {
            Hosting::InProcess => {
                if let Some(h) = Host::try_start(endpoint, "in-process", Duration::ZERO)? {
                    let Some((tx, rx)) = listener::connect_local(&h.server) else {
                        return Err(Error::ServerTerminated);
                    };
                    return Ok(Link::Local(tx, rx, Box::new(h)));
                }
            }
            Hosting::Process => {
                if !host::is_running(endpoint) {
                    if started >= START_TRIES {
                        return Err(last_failure.unwrap_or(Error::ServerTerminated));
                    }
                    started += 1;
                    // Ref §5.1: a failed start is tried again, 10 times.
                    if let Err(e) = start_server(endpoint) {
                        last_failure = Some(e);
                    }
                }
            }
        }
        if Instant::now() >= deadline {
            if let Some(e) = last_failure {
                return Err(e);
            }
            crate::error::set_message(format!(
                "no profile server for {} answered within {} s",
                endpoint.store.display(),
                START_WAIT.as_secs()
            ));
            return Err(Error::ServerTerminated);
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

fn attempt(endpoint: &Endpoint) -> Attempt {
    let Ok(s) = UnixStream::connect(&endpoint.socket) else {
        return Attempt::NoServer;
    };
    match greet(&s) {
        Ok(Welcome::Accepted { .. }) => Attempt::Connected(s),
        Ok(Welcome::Refused { reason }) => Attempt::Refused(reason),
        // Closed on us: a server that is stopping, or not yet serving.
        Err(_) => Attempt::NoServer,
    }
}

fn greet(s: &UnixStream) -> io::Result<Welcome> {
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    // A server that refuses us may have answered and closed before our
    // greeting went out: its answer is still there to read.
    let sent = send_message(s, &Hello::new());
    let w = match read_message(&mut &*s) {
        Ok(w) => w,
        Err(e) => return Err(sent.err().unwrap_or(e)),
    };
    s.set_read_timeout(None)?;
    Ok(w)
}

/// What the running server of `store` is doing, without starting one:
/// `Ok(None)` when none runs.
pub fn server_status(store: &std::path::Path) -> Result<Option<ServerStatus>> {
    let endpoint = Endpoint::for_store(store).map_err(|_| Error::AccessDenied)?;
    if !host::is_running(&endpoint) {
        return Ok(None);
    }
    let Attempt::Connected(s) = attempt(&endpoint) else {
        return Ok(None);
    };
    let ask = ToServer {
        call: 1,
        request: Request::Status,
    };
    send_message(&s, &ask).map_err(|_| Error::ServerTerminated)?;
    loop {
        match read_message::<ToClient>(&mut &s) {
            Ok(ToClient::Reply {
                call: 1,
                result: Ok(Reply::Status(st)),
            }) => return Ok(Some(st)),
            Ok(ToClient::Reply { .. }) => return Err(Error::General),
            Ok(ToClient::Event { .. }) => {}
            Err(_) => return Err(Error::ServerTerminated),
        }
    }
}

/// Starts `sipprofile-server` for the store, detached (it outlives this
/// process, in a session of its own, with no fd of ours).
fn start_server(endpoint: &Endpoint) -> Result<()> {
    let exe = server_executable().ok_or_else(|| {
        crate::error::set_message(
            "the sipprofile-server executable was not found beside the library: install it, \
             set SIPPROFILE_SERVER_BIN to its path, or set SIPPROFILE_SERVER=in-process"
                .to_string(),
        );
        Error::NotFound
    })?;
    log::debug(&format!(
        "starting {} for {}",
        exe.display(),
        endpoint.store.display()
    ));
    // `--detach` makes it start the real server and exit at once: waiting
    // for it leaves no zombie behind in the application.
    // Its standard error goes to `$SIPPROFILE_SERVER_LOG` (appended) if set.
    let stderr = match std::env::var_os("SIPPROFILE_SERVER_LOG").filter(|p| !p.is_empty()) {
        Some(p) => std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .map_or(Stdio::null(), Stdio::from),
        None => Stdio::null(),
    };
    let out = Command::new(&exe)
        .arg("--detach")
        .arg("--store")
        .arg(&endpoint.store)
        .stdin(Stdio::null())
        .stderr(stderr)
        .output()
        .map_err(|e| {
            crate::error::set_message(format!("cannot start {}: {e}", exe.display()));
            Error::ServerTerminated
        })?;
    let line = String::from_utf8_lossy(&out.stdout);
    let line = line.trim();
    match line.split_once(' ').unwrap_or((line, "")) {
        ("ready" | "busy", _) => Ok(()),
        ("error", rest) => {
            let (code, why) = rest.split_once(' ').unwrap_or((rest, ""));
            let e = Error::from_code(code.parse().unwrap_or(-2));
            crate::error::set_message(format!("the profile server did not start: {why}"));
            Err(e)
        }
        _ => {
            crate::error::set_message(format!(
                "{} did not start ({}): {line:?}",
                exe.display(),
                out.status
            ));
            Err(Error::ServerTerminated)
        }
    }
}

/// `$SIPPROFILE_SERVER_BIN`, else the executable installed beside the
/// library (`lib/../libexec/sipprofile/`, or the same directory in a cargo
/// build), else beside the running program (tests).
pub fn server_executable() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("SIPPROFILE_SERVER_BIN").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let mut dirs = Vec::new();
    if let Some(lib) = library_path()
        && let Some(d) = lib.parent()
    {
        dirs.push(d.join("../libexec/sipprofile"));
        dirs.push(d.join("sipprofile"));
        dirs.push(d.to_owned());
    }
    if let Ok(exe) = std::env::current_exe()
        && let Some(d) = exe.parent()
    {
        dirs.push(d.to_owned());
        if let Some(up) = d.parent() {
            dirs.push(up.to_owned()); // target/debug/deps/.. in cargo tests
        }
    }
    dirs.into_iter()
        .map(|d| d.join("sipprofile-server"))
        .find(|p| p.is_file())
}

/// The file this code was loaded from (the shared library, or the program
/// it is linked into), read from `/proc/self/maps`.
fn library_path() -> Option<PathBuf> {
    let here = server_executable as *const () as usize;
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    for line in maps.lines() {
        let mut parts = line.split_whitespace();
        let range = parts.next()?;
        let (lo, hi) = range.split_once('-')?;
        let (lo, hi) = (
            usize::from_str_radix(lo, 16).ok()?,
            usize::from_str_radix(hi, 16).ok()?,
        );
        if (lo..hi).contains(&here) {
            let path = parts.nth(4)?;
            return path.starts_with('/').then(|| PathBuf::from(path));
        }
    }
    None
}
