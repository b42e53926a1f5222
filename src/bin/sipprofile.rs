//! `sipprofile`: manage SIP profiles from a shell, through the library's
//! public API. Run `sipprofile --help` for the commands.

use clap::{Parser, Subcommand};
use serde_json::{Value, json};
use sipprofile::Error;
use sipprofile::client::{Event, Observer};
use sipprofile::client::{ProfileHandle, Registry};
use sipprofile::profile::access::{self, View};
use sipprofile::profile::{ProfileData, Status, TypeInfo, keys};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::mpsc::{Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const EXAMPLES: &str = "Examples:
  sipprofile add --aor sip:alice@example.com --registrar sip:example.com --user alice --password secret
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
    /// Set one parameter: KEY is a name (see `keys`) or a number
    Set { id: u32, key: String, value: String },
    /// Remove a profile
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
    /// List the key names `set` accepts
    Keys,
    /// Whether the store's profile server runs: its process, its clients
    /// and each profile's registration (starts no server)
    Server,
}

#[derive(clap::Args)]
struct AddArgs {
    #[arg(long)]
    aor: Option<String>,
    #[arg(long)]
    registrar: Option<String>,
    #[arg(long)]
    user: Option<String>,
    #[arg(long)]
    password: Option<String>,
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

/// How `set` writes a key.
#[derive(Clone, Copy)]
enum Kind {
    U32(u32),
    Bool(u32),
    Str(u32),
    Array(u32),
    Server(u32, u32),
}

const NAMES: &[(&str, Kind)] = &[
    ("provider_name", Kind::Str(keys::PROVIDER_NAME)),
    ("aor", Kind::Str(keys::USER_AOR)),
    ("private_identity", Kind::Str(keys::PRIVATE_IDENTITY)),
    ("access_point_id", Kind::U32(keys::ACCESS_POINT_ID)),
    ("access_point_name", Kind::Str(keys::ACCESS_POINT_NAME)),
    ("sig_comp", Kind::Bool(keys::SIG_COMP)),
    (
        "security_negotiation",
        Kind::Bool(keys::SECURITY_NEGOTIATION),
    ),
    ("auto_registration", Kind::Bool(keys::AUTO_REGISTRATION)),
    ("default", Kind::Bool(keys::DEFAULT_PROFILE)),
    ("contact_params", Kind::Array(keys::CONTACT_HEADER_PARAMS)),
    ("headers", Kind::Array(keys::HEADERS)),
    ("expires", Kind::U32(keys::REGISTRATION_EXPIRES)),
    ("retry_base_seconds", Kind::U32(keys::RETRY_BASE_SECONDS)),
    ("retry_max_seconds", Kind::U32(keys::RETRY_MAX_SECONDS)),
    ("instance_id", Kind::Str(keys::INSTANCE_ID)),
    ("tls_ca_file", Kind::Str(keys::TLS_CA_FILE)),
    ("contact_uri", Kind::Str(keys::CONTACT_URI)),
    ("keepalive_seconds", Kind::U32(keys::KEEPALIVE_SECONDS)),
    ("outbound", Kind::Bool(keys::OUTBOUND)),
    (
        "registrar.address",
        Kind::Server(keys::SERVER_REGISTRAR, keys::SERVER_ADDRESS),
    ),
    (
        "registrar.user",
        Kind::Server(keys::SERVER_REGISTRAR, keys::DIGEST_USER_NAME),
    ),
    (
        "registrar.realm",
        Kind::Server(keys::SERVER_REGISTRAR, keys::DIGEST_REALM),
    ),
    (
        "registrar.password",
        Kind::Server(keys::SERVER_REGISTRAR, keys::DIGEST_PASSWORD),
    ),
    (
        "proxy.address",
        Kind::Server(keys::SERVER_OUTBOUND_PROXY, keys::SERVER_ADDRESS),
    ),
    (
        "proxy.user",
        Kind::Server(keys::SERVER_OUTBOUND_PROXY, keys::DIGEST_USER_NAME),
    ),
    (
        "proxy.realm",
        Kind::Server(keys::SERVER_OUTBOUND_PROXY, keys::DIGEST_REALM),
    ),
    (
        "proxy.password",
        Kind::Server(keys::SERVER_OUTBOUND_PROXY, keys::DIGEST_PASSWORD),
    ),
];

struct Failure(String);

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure(describe(e.code()))
    }
}

fn describe(code: i32) -> String {
    // SAFETY: sip_strerror returns a static NUL-terminated string.
    let text = unsafe { std::ffi::CStr::from_ptr(sipprofile::ffi::codes::sip_strerror(code)) };
    format!("{} ({code})", text.to_string_lossy())
}

type Result<T> = std::result::Result<T, Failure>;

struct Printer(Sender<String>);

impl Observer for Printer {
    fn event(&self, id: u32, event: Event) {
        let _ = self.0.send(format!("profile {id} {event:?}"));
    }
    fn error(&self, id: u32, error: i32) {
        let _ = self
            .0
            .send(format!("profile {id} error {}", describe(error)));
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

fn profile_json(h: &ProfileHandle) -> Value {
    let b = h.block.read();
    let d = &b.data;
    let v = View {
        data: d,
        reg: &b.info,
        is_default: h.is_default(),
    };
    json!({
        "id": d.id,
        "type": {"class": d.type_info.class, "name": d.type_info.name},
        "provider_name": d.provider_name,
        "aor": d.aor,
        "private_identity": d.private_identity,
        "registrar": {"address": d.registrar.address, "user": d.registrar.user, "realm": d.registrar.realm},
        "proxy": {"address": d.proxy.address, "user": d.proxy.user, "realm": d.proxy.realm},
        "expires": d.registration_expires(),
        "auto_registration": d.auto_registration,
        "default": v.is_default,
        "headers": d.headers,
        "contact_params": d.contact_params,
        "contact_user": d.contact_user,
        "status": format!("{:?}", b.info.status),
        "registered_contact": access::get_str(&v, keys::REGISTERED_CONTACT).ok(),
    })
}

fn apply_json(d: &mut ProfileData, v: &Value) -> Result<()> {
    let s = |p: &str| v.pointer(p).and_then(Value::as_str);
    let bad = |what: &str| Failure(format!("invalid {what} in input"));
    if let Some(x) = s("/provider_name") {
        access::set_str(d, keys::PROVIDER_NAME, x).map_err(|_| bad("provider_name"))?;
    }
    if let Some(x) = s("/aor") {
        access::set_str(d, keys::USER_AOR, x).map_err(|_| bad("aor"))?;
    }
    if let Some(x) = s("/private_identity") {
        access::set_str(d, keys::PRIVATE_IDENTITY, x).map_err(|_| bad("private_identity"))?;
    }
    for (name, server) in [
        ("registrar", keys::SERVER_REGISTRAR),
        ("proxy", keys::SERVER_OUTBOUND_PROXY),
    ] {
        for (field, key) in [
            ("address", keys::SERVER_ADDRESS),
            ("user", keys::DIGEST_USER_NAME),
            ("realm", keys::DIGEST_REALM),
            ("password", keys::DIGEST_PASSWORD),
        ] {
            if let Some(x) = s(&format!("/{name}/{field}")) {
                access::set_server_str(d, server, key, x)
                    .map_err(|_| bad(&format!("{name}.{field}")))?;
            }
        }
    }
    if let Some(x) = v.get("expires").and_then(Value::as_u64) {
        access::set_u32(d, keys::REGISTRATION_EXPIRES, x as u32).map_err(|_| bad("expires"))?;
    }
    if let Some(x) = v.get("auto_registration").and_then(Value::as_bool) {
        d.auto_registration = x;
    }
    for (name, key) in [
        ("headers", keys::HEADERS),
        ("contact_params", keys::CONTACT_HEADER_PARAMS),
    ] {
        if let Some(a) = v.get(name).and_then(Value::as_array) {
            let items = a
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect();
            access::set_str_array(d, key, items).map_err(|_| bad(name))?;
        }
    }
    Ok(())
}

fn managed(store: &Option<PathBuf>) -> Result<Arc<Registry>> {
    Ok(Registry::open(store.as_deref(), true, None)?)
}

fn add_from(m: &Arc<Registry>, v: &Value) -> Result<u32> {
    let ims = v.pointer("/type/name").and_then(Value::as_str) == Some("ims");
    let h = m.create(&if ims {
        TypeInfo::ims()
    } else {
        TypeInfo::ietf()
    })?;
    apply_json(&mut h.block.write().data, v)?;
    m.save(&h)?;
    let id = h.block.read().data.id;
    Ok(id)
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
        Command::Keys => {
            for (name, _) in NAMES {
                println!("{name}");
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
                let v = json!({
                    "type": {"name": if a.ims { "ims" } else { "IETF" }},
                    "aor": a.aor, "provider_name": a.provider,
                    "registrar": {"address": a.registrar, "user": a.user, "realm": a.realm, "password": a.password},
                    "proxy": {"address": a.proxy},
                    "expires": a.expires, "auto_registration": a.auto,
                });
                ids.push(add_from(&m, &v)?);
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
        Command::Set { id, key, value } => {
            let kind = NAMES
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(key))
                .map(|(_, k)| *k)
                .or_else(|| key.parse::<u32>().ok().map(Kind::Str))
                .ok_or_else(|| Failure(format!("unknown key {key:?} (see `sipprofile keys`)")))?;
            let m = managed(&cli.store)?;
            let h = m.profile(*id)?;
            {
                let mut b = h.block.write();
                let d = &mut b.data;
                let num = || {
                    value
                        .parse::<u32>()
                        .map_err(|_| Failure(format!("{value:?} is not a number")))
                };
                match kind {
                    Kind::U32(k) => access::set_u32(d, k, num()?)?,
                    Kind::Bool(k) => access::set_bool(
                        d,
                        k,
                        matches!(value.as_str(), "1" | "true" | "yes" | "on"),
                    )?,
                    Kind::Str(k) => access::set_str(d, k, value)?,
                    Kind::Array(k) => access::set_str_array(
                        d,
                        k,
                        value
                            .split(',')
                            .map(str::trim)
                            .filter(|s| !s.is_empty())
                            .map(str::to_owned)
                            .collect(),
                    )?,
                    Kind::Server(s, k) => access::set_server_str(d, s, k, value)?,
                }
            }
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
            let u = Registry::open(cli.store.as_deref(), false, Some(Box::new(Printer(tx))))?;
            let h = u.profile(*id)?;
            u.enable(&h)?;
            if !*wait {
                // Without --wait there is nothing to keep the registration alive.
                println!("profile {id} enabled; registering... (use --wait to stay registered)");
            }
            let deadline = std::time::Instant::now() + Duration::from_secs(*timeout);
            let mut registered = h.block.read().info.status == Status::Registered;
            if !registered {
                eprintln!("profile {id}: registering...");
            }
            while !registered {
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                match rx.recv_timeout(left) {
                    Ok(line) => {
                        eprintln!("{line}");
                        if line.contains(" error ") {
                            let code = u.last_registration_error(&h).unwrap_or(0);
                            drop(h);
                            u.close();
                            return Err(Failure(format!(
                                "profile {id} not registered: {}",
                                describe(code)
                            )));
                        }
                        registered = h.block.read().info.status == Status::Registered;
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
            let contact = h.block.read().info.registered_contact.clone();
            out(
                format!("profile {id} registered: {contact}"),
                json!({"id": id, "status": "Registered", "contact": contact}),
            );
            if *wait {
                let printer = std::thread::spawn(move || {
                    for line in rx {
                        eprintln!("{line}");
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
        Command::Watch => {
            let signals = block_signals();
            let (tx, rx) = channel::<String>();
            let json_out = cli.json;
            let printer = std::thread::spawn(move || {
                for line in rx {
                    if json_out {
                        println!("{}", json!({"event": line}));
                    } else {
                        println!("{line}");
                    }
                }
            });
            let u = Registry::open(cli.store.as_deref(), false, Some(Box::new(Printer(tx))))?;
            // Hold every profile so that its events reach this registry (ref §5.2).
            let held = Arc::new(Mutex::new(u.profiles()?));
            eprintln!(
                "watching {} profile(s); Ctrl-C to stop",
                held.lock().map(|h| h.len()).unwrap_or(0)
            );
            wait_for_signal(&signals);
            held.lock().map(|mut h| h.clear()).ok();
            u.close();
            let _ = printer.join();
        }
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
            let mut ids = Vec::new();
            for item in v.as_array().cloned().unwrap_or_else(|| vec![v]) {
                ids.push(add_from(&m, &item)?);
            }
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

fn main() -> ExitCode {
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
