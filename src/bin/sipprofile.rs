//! `sipprofile`: manage SIP profiles from a shell, through the library's
//! public API. Run `sipprofile --help` for the commands.

#[path = "cli/keytable.rs"]
mod keytable;

use clap::{Parser, Subcommand};
use keytable::{ExtType, Problem};
use serde_json::{Value, json};
use sipprofile::Error;
use sipprofile::client::{Event, Observer};
use sipprofile::client::{ProfileHandle, Registry};
use sipprofile::profile::access::View;
use sipprofile::profile::{Status, TypeInfo};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::mpsc::{Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use zeroize::Zeroizing;

const EXAMPLES: &str = "Examples:
  sipprofile add --aor sip:alice@example.com --registrar sip:example.com --user alice --password
                                      # asks for the password on the terminal, without echo
  printf '%s\\n' \"$PW\" | sipprofile add --aor sip:bob@example.com --registrar sip:example.com --user bob --password-stdin
  sipprofile set 1 registrar.password # asks again; or add --password-stdin and pipe it in
  sipprofile list --json
  sipprofile set 1 registrar.address sip:sip.example.com
  sipprofile set 1 expires 600
  sipprofile enable 1 --wait          # registers, stays registered until Ctrl-C
  sipprofile watch                    # prints events of every profile
  sipprofile export > profiles.json && sipprofile --store other.db import profiles.json
  sipprofile export --with-passwords > backup.json    # keep it private: it holds secrets";

#[derive(Parser)]
#[command(name = "sipprofile", version, about = "Manage SIP profiles (accounts) and their registration", after_help = EXAMPLES)]
struct Cli {
    /// Profile store (default: $SIPPROFILE_STORE or $XDG_DATA_HOME/sipprofile/profiles.db)
    #[arg(long, global = true)]
    store: Option<PathBuf>,
    /// Machine-readable output
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List the profiles
    List,
    /// Show one profile
    Show { id: u32 },
    /// Add a profile from flags or from a JSON file (as `export` writes)
    Add(AddArgs),
    /// Set one parameter: KEY is a name (see `keys`), a key number, or
    /// registrar.N / proxy.N for a per-server key; booleans are
    /// true/false, yes/no, on/off or 1/0; lists are comma-separated. For
    /// registrar.password and proxy.password leave VALUE out: the password is
    /// asked for on the terminal without echo, or read from standard input
    /// with --password-stdin (a VALUE on the command line shows in `ps` and
    /// in shell history)
    Set {
        id: u32,
        key: String,
        value: Option<String>,
        /// The value's type for a key number that has no name (default str)
        #[arg(long = "type", value_enum)]
        ext_type: Option<ExtType>,
        /// Read the value of a password key from the first line of standard input
        #[arg(long, conflicts_with = "value")]
        password_stdin: bool,
    },
    /// Remove a profile
    #[command(visible_alias = "remove")]
    Rm { id: u32 },
    /// Enable (register) a profile; with --wait, show progress until registered
    /// and stay registered until interrupted
    Enable {
        id: u32,
        #[arg(long)]
        wait: bool,
        /// Seconds to wait for registration
        #[arg(long, default_value_t = 30)]
        timeout: u64,
    },
    /// Print events of every profile as they happen, until interrupted
    Watch,
    /// Write every profile as JSON; passwords only with --with-passwords
    Export {
        /// Include the digest passwords (read from the store file itself:
        /// the library API never returns them)
        #[arg(long)]
        with_passwords: bool,
    },
    /// Add the profiles of a JSON file written by `export`
    Import { file: PathBuf },
    /// List the key names `set` accepts, with their numbers and types
    Keys,
    /// Whether the store's profile server runs: its process, its clients
    /// and each profile's registration (starts no server)
    Server,
    /// Write the man pages (sipprofile.1 and one per command) into DIR
    #[command(hide = true)]
    Manpages { dir: PathBuf },
}

#[derive(clap::Args)]
struct AddArgs {
    #[arg(long)]
    aor: Option<String>,
    #[arg(long)]
    registrar: Option<String>,
    #[arg(long)]
    user: Option<String>,
    /// The registrar's digest password. Without a value it is asked for on
    /// the terminal, without echo; a value given here shows in `ps` and in
    /// shell history (prefer no value, or --password-stdin)
    #[arg(long, value_name = "PASSWORD", num_args = 0..=1)]
    password: Option<Option<String>>,
    /// Read the registrar's digest password from the first line of standard input
    #[arg(long, conflicts_with = "password")]
    password_stdin: bool,
    #[arg(long)]
    realm: Option<String>,
    #[arg(long)]
    proxy: Option<String>,
    #[arg(long)]
    provider: Option<String>,
    #[arg(long)]
    expires: Option<u32>,
    /// Register whenever the profile server runs
    #[arg(long)]
    auto: bool,
    /// An IMS profile instead of IETF
    #[arg(long)]
    ims: bool,
    /// A JSON object (or array) of profiles, as `export` writes
    #[arg(long)]
    file: Option<PathBuf>,
}

struct Failure(String);

/// Sets the terminal's echo back as it was, however the prompt ends.
struct EchoRestored {
    fd: i32,
    saved: libc::termios,
}

impl Drop for EchoRestored {
    fn drop(&mut self) {
        // SAFETY: fd is the open terminal; saved came from tcgetattr on it.
        unsafe { libc::tcsetattr(self.fd, libc::TCSANOW, &self.saved) };
    }
}

/// One line read from `fd` byte by byte (no buffer keeps a copy), without
/// its line end, into memory wiped when dropped.
fn read_secret_line(fd: i32) -> std::io::Result<Zeroizing<String>> {
    let mut bytes = Zeroizing::new(Vec::with_capacity(128));
    loop {
        let mut b = 0u8;
        // SAFETY: reads at most one byte into a valid local.
        let n = unsafe { libc::read(fd, (&raw mut b).cast(), 1) };
        match n {
            1 if b == b'\n' => break,
            1 => {
                if bytes.len() >= 4096 {
                    return Err(std::io::Error::other("longer than 4096 bytes"));
                }
                bytes.push(b);
            }
            0 => break,
            _ => {
                let e = std::io::Error::last_os_error();
                if e.kind() != std::io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }
    }
    if bytes.last() == Some(&b'\r') {
        bytes.pop();
    }
    let text = std::str::from_utf8(&bytes).map_err(|_| std::io::Error::other("not UTF-8"))?;
    Ok(Zeroizing::new(text.to_owned()))
}

/// Asks for a password on the controlling terminal with echo off.
fn prompt_password(prompt: &str) -> Result<Zeroizing<String>> {
    use std::io::Write;
    use std::os::fd::AsRawFd;
    let mut tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .map_err(|e| {
            Failure(format!(
                "no terminal to ask for the password on ({e}); use --password-stdin"
            ))
        })?;
    let fd = tty.as_raw_fd();
    // SAFETY: termios is plain data; tcgetattr fills it for an open fd.
    let mut term: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: fd is open; term is a valid termios.
    if unsafe { libc::tcgetattr(fd, &mut term) } != 0 {
        return Err(Failure(
            "/dev/tty is not a terminal; use --password-stdin".into(),
        ));
    }
    let restore = EchoRestored { fd, saved: term };
    term.c_lflag &= !(libc::ECHO | libc::ECHOE | libc::ECHOK);
    term.c_lflag |= libc::ECHONL;
    // SAFETY: fd is open; term is a valid termios.
    unsafe { libc::tcsetattr(fd, libc::TCSANOW, &term) };
    let _ = write!(tty, "{prompt}");
    let _ = tty.flush();
    let line = read_secret_line(fd).map_err(|e| Failure(format!("reading the password: {e}")));
    drop(restore);
    line
}

/// The password from standard input's first line.
fn password_from_stdin() -> Result<Zeroizing<String>> {
    read_secret_line(0)
        .map_err(|e| Failure(format!("reading the password from standard input: {e}")))
}

const PASSWORD_ON_COMMAND_LINE: &str = "sipprofile: warning: a password on the command line shows \
    in `ps` and in shell history; leave the value out to be asked, or use --password-stdin";

impl From<Error> for Failure {
    /// The library's own description of what failed (the key, path or peer
    /// and why), then the code's text and number.
    fn from(e: Error) -> Self {
        Failure(keytable::describe_api(e))
    }
}

impl From<Problem> for Failure {
    fn from(p: Problem) -> Self {
        match p {
            Problem::Input(msg) => Failure(msg),
            Problem::Api(e) => e.into(),
        }
    }
}

fn describe(code: i32) -> String {
    keytable::describe_code(code)
}

type Result<T> = std::result::Result<T, Failure>;

/// One observer callback, as `enable` and `watch` print it.
enum Note {
    Event(u32, Event),
    Error(u32, i32),
}

impl Note {
    fn human(&self) -> String {
        match self {
            Note::Event(id, e) => format!("profile {id} {e:?}"),
            Note::Error(id, code) => format!("profile {id} error {}", describe(*code)),
        }
    }

    /// One JSON object: `id`, `event` (as `show` and `enable` name
    /// statuses: "Registered"), and for an error (`event` "Error") its
    /// `error` code (negative: the C API's, positive: a SIP status) and
    /// `reason`.
    fn json(&self) -> Value {
        match self {
            Note::Event(id, e) => json!({"id": id, "event": format!("{e:?}")}),
            Note::Error(id, code) => json!({
                "id": id, "event": "Error", "error": code, "reason": describe(*code),
            }),
        }
    }
}

struct Printer(Sender<Note>);

impl Observer for Printer {
    fn event(&self, id: u32, event: Event) {
        let _ = self.0.send(Note::Event(id, event));
    }
    fn error(&self, id: u32, error: i32) {
        let _ = self.0.send(Note::Error(id, error));
    }
}

/// Blocks SIGINT and SIGTERM in every thread (call before any registry
/// exists) so that `wait_for_signal` can take them synchronously.
fn block_signals() -> libc::sigset_t {
    // SAFETY: plain libc signal-mask calls on a local set.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

fn wait_for_signal(set: &libc::sigset_t) {
    let mut sig = 0;
    // SAFETY: set is a valid, initialised signal set.
    unsafe { libc::sigwait(set, &mut sig) };
}

/// Every readable key of the profile (see `keytable::export`), with its
/// type and registration status.
fn profile_json(h: &ProfileHandle) -> Value {
    let is_default = h.is_default();
    let c = h.copy();
    let mut p = keytable::export(&View {
        is_default,
        ..c.view()
    });
    p["type"] = json!({"class": c.data.type_info.class, "name": c.data.type_info.name});
    p["status"] = json!(format!("{:?}", c.info.status));
    p
}

fn managed(store: &Option<PathBuf>) -> Result<Arc<Registry>> {
    Ok(Registry::open(store.as_deref(), true, None)?)
}

fn add_from(m: &Arc<Registry>, v: &Value) -> Result<u32> {
    let h = unsaved_from(m, v)?;
    m.save(&h)?;
    Ok(h.id())
}

/// A new profile, not saved yet, from one object as `export` writes it.
fn unsaved_from(m: &Arc<Registry>, v: &Value) -> Result<ProfileHandle> {
    let ims = v
        .pointer("/type/name")
        .and_then(Value::as_str)
        .is_some_and(|n| n.eq_ignore_ascii_case("ims"));
    let h = m.create(&if ims {
        TypeInfo::ims()
    } else {
        TypeInfo::ietf()
    })?;
    h.edit(|e| keytable::import(e, v))?;
    Ok(h)
}

fn run(cli: Cli) -> Result<()> {
    let out = |human: String, machine: Value| {
        if cli.json {
            println!("{machine}");
        } else {
            println!("{human}");
        }
    };
    match &cli.command {
        Command::Manpages { dir } => write_manpages(dir)?,
        Command::Keys => {
            for (name, kind) in keytable::KEYS {
                println!("{name:<32} {}", keytable::describe_kind(*kind));
            }
        }
        Command::List => {
            let m = managed(&cli.store)?;
            let all: Vec<Value> = m.profiles()?.iter().map(profile_json).collect();
            let human = all
                .iter()
                .map(|p| {
                    format!(
                        "{:>4}  {:<5} {:<40} {}{}",
                        p["id"],
                        p["type"]["name"].as_str().unwrap_or(""),
                        p["aor"].as_str().unwrap_or(""),
                        p["registrar"]["address"].as_str().unwrap_or(""),
                        if p["default"] == true {
                            "  (default)"
                        } else {
                            ""
                        }
                    )
                })
                .collect::<Vec<_>>()
                .join("\n");
            out(human, Value::Array(all));
            m.close();
        }
        Command::Show { id } => {
            let m = managed(&cli.store)?;
            let p = profile_json(&m.profile(*id)?);
            out(serde_json::to_string_pretty(&p).unwrap_or_default(), p);
            m.close();
        }
        Command::Add(a) => {
            let m = managed(&cli.store)?;
            let mut ids = Vec::new();
            if let Some(file) = &a.file {
                let text = std::fs::read_to_string(file)
                    .map_err(|e| Failure(format!("{}: {e}", file.display())))?;
                let v: Value = serde_json::from_str(&text)
                    .map_err(|e| Failure(format!("{}: {e}", file.display())))?;
                for item in v.as_array().cloned().unwrap_or_else(|| vec![v]) {
                    ids.push(add_from(&m, &item)?);
                }
            } else {
                let password: Option<Zeroizing<String>> = match (&a.password, a.password_stdin) {
                    (_, true) => Some(password_from_stdin()?),
                    (Some(Some(p)), false) => {
                        eprintln!("{PASSWORD_ON_COMMAND_LINE}");
                        Some(Zeroizing::new(p.clone()))
                    }
                    (Some(None), false) => Some(prompt_password("Password: ")?),
                    (None, false) => None,
                };
                let v = json!({
                    "type": {"name": if a.ims { "ims" } else { "IETF" }},
                    "aor": a.aor, "provider_name": a.provider,
                    "registrar": {"address": a.registrar, "user": a.user, "realm": a.realm},
                    "proxy": {"address": a.proxy},
                    "expires": a.expires, "auto_registration": a.auto,
                });
                let h = m.create(&if a.ims {
                    TypeInfo::ims()
                } else {
                    TypeInfo::ietf()
                })?;
                h.edit(|e| {
                    keytable::import(e, &v)?;
                    if let Some(p) = &password {
                        // Set directly: never through a JSON value, which
                        // would keep a copy.
                        keytable::set_text(
                            e,
                            keytable::Kind::Server(
                                sipprofile::profile::keys::SERVER_REGISTRAR,
                                sipprofile::profile::keys::DIGEST_PASSWORD,
                            ),
                            p,
                        )?;
                    }
                    Ok::<_, Problem>(())
                })?;
                m.save(&h)?;
                ids.push(h.id());
            }
            out(
                ids.iter()
                    .map(|i| format!("added profile {i}"))
                    .collect::<Vec<_>>()
                    .join("\n"),
                json!({"ids": ids}),
            );
            m.close();
        }
        Command::Set {
            id,
            key,
            value,
            ext_type,
            password_stdin,
        } => {
            let kind = keytable::resolve(key, *ext_type)?;
            let is_password = matches!(
                kind,
                keytable::Kind::Server(_, sipprofile::profile::keys::DIGEST_PASSWORD)
            );
            let value: Zeroizing<String> = match (value, is_password, *password_stdin) {
                (_, false, true) => {
                    return Err(Failure(format!(
                        "--password-stdin is for registrar.password and proxy.password, not {key}"
                    )));
                }
                (None, true, true) => password_from_stdin()?,
                (None, true, false) => prompt_password(&format!("{key}: "))?,
                (None, false, _) => return Err(Failure(format!("a value for {key} is needed"))),
                (Some(v), pw, _) => {
                    if pw {
                        eprintln!("{PASSWORD_ON_COMMAND_LINE}");
                    }
                    Zeroizing::new(v.clone())
                }
            };
            let m = managed(&cli.store)?;
            let h = m.profile(*id)?;
            h.edit(|e| keytable::set_text(e, kind, &value))?;
            m.save(&h)?;
            out(
                format!("profile {id}: {key} set"),
                json!({"id": id, "key": key}),
            );
            drop(h);
            m.close();
        }
        Command::Rm { id } => {
            let m = managed(&cli.store)?;
            let h = m.profile(*id)?;
            m.destroy(&h)?;
            out(format!("removed profile {id}"), json!({"removed": id}));
            drop(h);
            m.close();
        }
        Command::Enable { id, wait, timeout } => {
            let signals = block_signals();
            let (tx, rx) = channel();
            // Each failed attempt is shown with the next retry (contract §8.2).
            let flags = sipprofile::client::Flags {
                attempt_events: true,
                ..Default::default()
            };
            let u = Registry::open_with(
                cli.store.as_deref(),
                false,
                Some(Box::new(Printer(tx))),
                flags,
            )?;
            let h = u.profile(*id)?;
            u.enable(&h)?;
            let tell = |note: &Note, h: &ProfileHandle| match note {
                Note::Event(id, Event::AttemptFailed) => {
                    let (error, next) = h.last_attempt();
                    format!(
                        "profile {id}: attempt failed: {}; next attempt in {:.1} s",
                        describe(error),
                        next.as_secs_f64()
                    )
                }
                other => other.human(),
            };
            if !*wait {
                // Without --wait there is nothing to keep the registration alive.
                println!("profile {id} enabled; registering... (use --wait to stay registered)");
            }
            let deadline = std::time::Instant::now() + Duration::from_secs(*timeout);
            let mut registered = h.status() == Status::Registered;
            if !registered {
                eprintln!("profile {id}: registering...");
            }
            while !registered {
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                match rx.recv_timeout(left) {
                    Ok(note) => {
                        eprintln!("{}", tell(&note, &h));
                        if let Note::Error(..) = note {
                            let code = u.last_registration_error(&h).unwrap_or(0);
                            drop(h);
                            u.close();
                            return Err(Failure(format!(
                                "profile {id} not registered: {}",
                                describe(code)
                            )));
                        }
                        registered = h.status() == Status::Registered;
                    }
                    Err(_) => {
                        drop(h);
                        u.close();
                        return Err(Failure(format!(
                            "profile {id} not registered within {timeout} s"
                        )));
                    }
                }
            }
            let contact = h.info().registered_contact;
            out(
                format!("profile {id} registered: {contact}"),
                json!({"id": id, "status": "Registered", "contact": contact}),
            );
            if *wait {
                let seen = u.profile(*id)?;
                let printer = std::thread::spawn(move || {
                    for note in rx {
                        eprintln!("{}", tell(&note, &seen));
                    }
                });
                wait_for_signal(&signals);
                eprintln!("profile {id}: de-registering...");
                drop(h);
                u.close();
                let _ = printer.join();
            } else {
                drop(h);
                u.close();
            }
        }
        Command::Watch => watch(&cli)?,
        Command::Export { with_passwords } => {
            let m = managed(&cli.store)?;
            let mut all: Vec<Value> = m.profiles()?.iter().map(profile_json).collect();
            if *with_passwords {
                // Asked for explicitly: only the store's server has them.
                let stored = m.export_with_passwords()?;
                for p in &mut all {
                    if let Some(d) = stored
                        .iter()
                        .find(|d| Some(u64::from(d.id)) == p["id"].as_u64())
                    {
                        p["registrar"]["password"] = json!(d.registrar.password);
                        p["proxy"]["password"] = json!(d.proxy.password);
                    }
                }
            }
            println!(
                "{}",
                serde_json::to_string_pretty(&Value::Array(all)).unwrap_or_default()
            );
            m.close();
        }
        Command::Server => {
            let path = match &cli.store {
                Some(p) => p.clone(),
                None => sipprofile::store::default_path()?,
            };
            match sipprofile::client::server_status(&path)? {
                None => out(
                    format!("no profile server runs for {}", path.display()),
                    json!({"running": false}),
                ),
                Some(st) => {
                    let mut text = format!(
                        "profile server pid {} ({}) for {}\n{} client(s)",
                        st.pid,
                        st.hosting,
                        st.store,
                        st.clients.len()
                    );
                    for c in &st.clients {
                        text.push_str(&format!(
                            "\n  pid {}: {} registr{}",
                            c.pid,
                            c.registries,
                            if c.registries == 1 { "y" } else { "ies" }
                        ));
                    }
                    for p in &st.profiles {
                        text.push_str(&format!(
                            "\nprofile {}: {}, enabled by {} registr{}{}{}",
                            p.id,
                            status_name(p.status),
                            p.users,
                            if p.users == 1 { "y" } else { "ies" },
                            if p.auto_registration {
                                ", auto-registration"
                            } else {
                                ""
                            },
                            if p.last_error != 0 {
                                format!(", last error {}", p.last_error)
                            } else {
                                String::new()
                            }
                        ));
                    }
                    out(
                        text,
                        json!({
                            "running": true,
                            "pid": st.pid,
                            "hosting": st.hosting,
                            "store": st.store,
                            "clients": st.clients.iter().map(|c| json!({"pid": c.pid, "registries": c.registries})).collect::<Vec<_>>(),
                            "profiles": st.profiles.iter().map(|p| json!({"id": p.id, "status": status_name(p.status), "users": p.users, "auto_registration": p.auto_registration, "last_error": p.last_error})).collect::<Vec<_>>(),
                        }),
                    );
                }
            }
        }
        Command::Import { file } => {
            let text = std::fs::read_to_string(file)
                .map_err(|e| Failure(format!("{}: {e}", file.display())))?;
            let v: Value = serde_json::from_str(&text)
                .map_err(|e| Failure(format!("{}: {e}", file.display())))?;
            let m = managed(&cli.store)?;
            // Every profile in one durable transaction: all or nothing.
            let handles = v
                .as_array()
                .cloned()
                .unwrap_or_else(|| vec![v])
                .iter()
                .map(|item| unsaved_from(&m, item))
                .collect::<Result<Vec<_>>>()?;
            m.save_all(&handles.iter().collect::<Vec<_>>())?;
            let ids: Vec<u32> = handles.iter().map(|h| h.id()).collect();
            out(
                format!("imported {} profile(s): {ids:?}", ids.len()),
                json!({"ids": ids}),
            );
            m.close();
        }
    }
    Ok(())
}

fn status_name(status: u32) -> &'static str {
    match status {
        4 => "registered",
        3 => "registering",
        2 => "unregistering",
        _ => "unregistered",
    }
}

/// `watch`: prints every event of every profile (those created meanwhile
/// too) until SIGINT or SIGTERM; with --json one object per line.
fn watch(cli: &Cli) -> Result<()> {
    let signals = block_signals();
    let (tx, rx) = channel::<Note>();
    let u = Registry::open(cli.store.as_deref(), false, Some(Box::new(Printer(tx))))?;
    // Hold every profile so that its events reach this registry (ref §5.2).
    let held = Arc::new(Mutex::new(u.profiles()?));
    let printer = {
        // Weak: the observer (and with it this loop) ends when `u` goes.
        let (u, held, json_out) = (Arc::downgrade(&u), held.clone(), cli.json);
        std::thread::spawn(move || {
            for note in rx {
                let id = match note {
                    Note::Event(id, _) | Note::Error(id, _) => id,
                };
                let line = if json_out {
                    let mut line = note.json();
                    // The profile's status as this registry sees it now.
                    if let Some(info) = held
                        .lock()
                        .ok()
                        .and_then(|h| h.iter().find(|h| h.id() == id).map(|h| h.info()))
                    {
                        line["status"] = json!(format!("{:?}", info.status));
                        if info.status == Status::Registered {
                            line["contact"] = json!(info.registered_contact);
                        }
                    }
                    line.to_string()
                } else {
                    note.human()
                };
                // A profile created meanwhile is held too, from now on.
                if let Note::Event(_, Event::Created) = note
                    && let Some(Ok(h)) = u.upgrade().map(|u| u.profile(id))
                {
                    held.lock().map(|mut held| held.push(h)).ok();
                }
                println!("{line}");
            }
        })
    };
    eprintln!(
        "watching {} profile(s); Ctrl-C to stop",
        held.lock().map(|h| h.len()).unwrap_or(0)
    );
    wait_for_signal(&signals);
    held.lock().map(|mut h| h.clear()).ok();
    u.close();
    drop(u);
    let _ = printer.join();
    Ok(())
}

fn write_manpages(dir: &std::path::Path) -> Result<()> {
    use clap::CommandFactory;
    let io = |e: std::io::Error| Failure(format!("{}: {e}", dir.display()));
    std::fs::create_dir_all(dir).map_err(io)?;
    let cmd = Cli::command();
    clap_mangen::generate_to(cmd, dir).map_err(io)?;
    Ok(())
}

fn main() -> ExitCode {
    // `sipprofile keys | head` ends quietly, as other commands do.
    // SAFETY: restoring the default disposition before any thread starts.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let cli = Cli::parse();
    let json = cli.json;
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure(msg)) => {
            if json {
                println!("{}", json!({"error": msg}));
            }
            eprintln!("sipprofile: {msg}");
            ExitCode::FAILURE
        }
    }
}
