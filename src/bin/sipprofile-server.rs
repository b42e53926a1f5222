//! `sipprofile-server`: the profile server of one store, in a process of its
//! own. The library starts it on demand (`--detach --store PATH`); it exits
//! by the stop rule of ref §5.1, or at once if another server already holds
//! the store.

use sipprofile::protocol::endpoint::Endpoint;
use sipprofile::server::host::{Host, linger};
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

fn usage() -> ExitCode {
    eprintln!("usage: sipprofile-server [--detach] --store PATH");
    ExitCode::from(2)
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
    if detach {
        // Start the real server and return at once: the library waits for
        // this process, so the server is nobody's zombie.
        let Ok(exe) = std::env::current_exe() else {
            return ExitCode::FAILURE;
        };
        return match Command::new(exe)
            .arg("--store")
            .arg(&store)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
        {
            Ok(_) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("sipprofile-server: {e}");
                ExitCode::FAILURE
            }
        };
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
    match Host::try_start(&endpoint, "process", Duration::from_millis(200)) {
        Ok(Some(host)) => {
            host.run_until_idle(linger());
            ExitCode::SUCCESS
        }
        // Another server holds the store: the client connects to that one.
        Ok(None) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sipprofile-server: {}: {e}", store.display());
            ExitCode::FAILURE
        }
    }
}
