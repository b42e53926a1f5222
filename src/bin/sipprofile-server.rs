//! `sipprofile-server`: the profile server of one store, in a process of its
//! own. The library starts it on demand (`--detach --store PATH`); it exits
//! by the stop rule of ref §5.1, or at once if another server already holds
//! the store.
//!
//! With `--detach` it starts the real server and waits for one line on its
//! standard output (`ready`, `busy`: another server holds the store, or
//! `error CODE MESSAGE`), prints that line and exits: the library reads it,
//! so a store that cannot be opened is a clear error at once, not a timeout.

use sipprofile::protocol::endpoint::Endpoint;
use sipprofile::server::host::{Host, linger};
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

fn usage() -> ExitCode {
    eprintln!("usage: sipprofile-server [--detach] --store PATH");
    ExitCode::from(2)
}

/// Closes every fd but standard input, output and error: whatever the
/// application that started us had open without close-on-exec (a pipe, a
/// jobserver) must not stay open for the server's whole life.
fn close_inherited_fds() {
    let fds: Vec<i32> = match std::fs::read_dir("/proc/self/fd") {
        Ok(dir) => dir
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .filter(|fd| *fd > 2)
            .collect(),
        Err(_) => return,
    };
    // The directory's own fd is closed by now: closing it again is EBADF.
    for fd in fds {
        let _ = nix::unistd::close(fd);
    }
}

fn main() -> ExitCode {
    let mut store: Option<PathBuf> = None;
    let mut detach = false;
    let mut args = std::env::args_os().skip(1);
    while let Some(a) = args.next() {
        match a.to_str() {
            Some("--detach") => detach = true,
            Some("--store") => match args.next() {
                Some(p) => store = Some(PathBuf::from(p)),
                None => return usage(),
            },
            Some("--version") => {
                println!("sipprofile-server {}", sipprofile::version());
                return ExitCode::SUCCESS;
            }
            _ => return usage(),
        }
    }
    let Some(store) = store else {
        return usage();
    };
    close_inherited_fds();
    if detach {
        // Start the real server and return at once: the library waits for
        // this process, so the server is nobody's zombie.
        let Ok(exe) = std::env::current_exe() else {
            return ExitCode::FAILURE;
        };
        let child = Command::new(exe)
            .arg("--store")
            .arg(&store)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn();
        let mut child = match child {
            Ok(c) => c,
            Err(e) => {
                println!("error -2 cannot start the server: {e}");
                return ExitCode::FAILURE;
            }
        };
        let mut line = String::new();
        if let Some(out) = child.stdout.take() {
            let _ = std::io::BufRead::read_line(&mut std::io::BufReader::new(out), &mut line);
        }
        if line.is_empty() {
            line = "error -15 the server exited during start-up\n".into();
        }
        print!("{line}");
        return ExitCode::SUCCESS;
    }
    // A session of its own: the application's terminal signals (Ctrl-C to
    // its process group) do not reach it, and it outlives the application.
    let _ = nix::unistd::setsid();
    let endpoint = match Endpoint::for_store(&store) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("sipprofile-server: {e}");
            return ExitCode::FAILURE;
        }
    };
    sipprofile::error::clear_message();
    let started = Host::try_start(&endpoint, "process", Duration::from_millis(200));
    // The report line, then stdout is never written again (the reader may
    // be gone: a write would fail, harmlessly).
    let report = |line: String| {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    };
    match started {
        Ok(Some(host)) => {
            report("ready".into());
            host.run_until_idle(linger());
            ExitCode::SUCCESS
        }
        // Another server holds the store: the client connects to that one.
        Ok(None) => {
            report("busy".into());
            ExitCode::SUCCESS
        }
        Err(e) => {
            let why = sipprofile::error::message();
            let why = if why.is_empty() { e.to_string() } else { why };
            report(format!("error {} {}: {why}", e.code(), store.display()));
            ExitCode::FAILURE
        }
    }
}
