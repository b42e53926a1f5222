//! The `sipprofile` command, run as a built binary: provisioning, JSON
//! output parsed back, enable --wait against Kamailio, a bad password's exit
//! status and message, export/import.

mod support;

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::{Kamailio, TempDir};

fn cli(store: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_sipprofile"))
        .arg("--store")
        .arg(store)
        .args(args)
        .output()
        .expect("run sipprofile")
}

fn json(out: &std::process::Output) -> Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON output")
}

#[test]
fn provision_list_set_show_export_import_rm() {
    let tmp = TempDir::new("cli");
    let store = tmp.path().join("p.db");
    let added = json(&cli(
        &store,
        &[
            "--json",
            "add",
            "--aor",
            "sip:alice@example.com",
            "--registrar",
            "sip:example.com",
            "--user",
            "alice",
            "--password",
            "pw",
        ],
    ));
    let id = added["ids"][0].as_u64().unwrap();
    cli(&store, &["set", &id.to_string(), "expires", "600"]);
    cli(
        &store,
        &["set", &id.to_string(), "headers", "X-A: 1, X-B: 2"],
    );
    let shown = json(&cli(&store, &["--json", "show", &id.to_string()]));
    assert_eq!(shown["expires"], 600);
    assert_eq!(shown["headers"], serde_json::json!(["X-A: 1", "X-B: 2"]));
    assert_eq!(shown["default"], true);
    assert!(shown.get("password").is_none() && !shown.to_string().contains("\"pw\""));
    let list = json(&cli(&store, &["--json", "list"]));
    assert_eq!(list.as_array().unwrap().len(), 1);
    let bad = cli(&store, &["set", &id.to_string(), "aor", "not a uri"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("invalid argument (-6)"));
    // export → import into another store
    let exported = cli(&store, &["export"]);
    let file = tmp.path().join("export.json");
    std::fs::write(&file, &exported.stdout).unwrap();
    assert!(!String::from_utf8_lossy(&exported.stdout).contains("\"pw\""));
    let other = tmp.path().join("other.db");
    let imported = json(&cli(&other, &["--json", "import", file.to_str().unwrap()]));
    assert_eq!(imported["ids"].as_array().unwrap().len(), 1);
    let copy = json(&cli(&other, &["--json", "show", "1"]));
    assert_eq!(copy["aor"], "sip:alice@example.com");
    assert_eq!(copy["expires"], 600);
    // Passwords only when asked for; then an import registers with them.
    let with = cli(&store, &["export", "--with-passwords"]);
    let v: Value = serde_json::from_slice(&with.stdout).unwrap();
    assert_eq!(v[0]["registrar"]["password"], "pw");
    assert!(cli(&store, &["rm", &id.to_string()]).status.success());
    assert_eq!(
        json(&cli(&store, &["--json", "list"]))
            .as_array()
            .unwrap()
            .len(),
        0
    );
    let help = Command::new(env!("CARGO_BIN_EXE_sipprofile"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&help.stdout).contains("Examples:"));
}

#[test]
fn enable_wait_registers_until_interrupted() {
    let k = Kamailio::start("MD5");
    let tmp = TempDir::new("cli-enable");
    let store = tmp.path().join("p.db");
    let reg = k.registrar();
    json(&cli(
        &store,
        &[
            "--json",
            "add",
            "--aor",
            "sip:alice@sipprofile.test",
            "--registrar",
            &reg,
            "--user",
            "alice",
            "--password",
            "alicepw",
        ],
    ));
    let mut child = Command::new(env!("CARGO_BIN_EXE_sipprofile"))
        .arg("--store")
        .arg(&store)
        .args(["--json", "enable", "1", "--wait"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let v: Value = serde_json::from_str(&line).expect("one JSON line when registered");
    assert_eq!(v["status"], "Registered");
    let contact = v["contact"].as_str().unwrap().to_string();
    let user = contact
        .split('@')
        .next()
        .unwrap()
        .trim_start_matches("<sip:")
        .to_string();
    assert!(k.bindings().contains(&user));
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        assert!(Instant::now() < deadline, "enable --wait did not exit");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success());
    assert!(!k.bindings().contains(&user), "not de-registered on exit");
}

#[test]
fn enable_with_a_bad_password_fails_with_the_reason() {
    let k = Kamailio::start("MD5");
    let tmp = TempDir::new("cli-bad");
    let store = tmp.path().join("p.db");
    let reg = k.registrar();
    json(&cli(
        &store,
        &[
            "--json",
            "add",
            "--aor",
            "sip:alice@sipprofile.test",
            "--registrar",
            &reg,
            "--user",
            "alice",
            "--password",
            "nope",
        ],
    ));
    let out = cli(&store, &["enable", "1", "--wait", "--timeout", "10"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not registered") && err.contains("401"),
        "{err}"
    );
}

fn cli_ok(store: &std::path::Path, args: &[&str]) -> String {
    let out = cli(store, args);
    assert!(
        out.status.success(),
        "sipprofile {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A value `set` accepts for the key `name` of type `ty` (as `keys` prints them).
fn sample(name: &str, ty: &str) -> Option<&'static str> {
    Some(match (name, ty) {
        (_, "read-only") => return None,
        ("aor", _) => "sip:carol@example.com",
        ("registrar.address", _) => "sip:registrar.example.com;transport=tcp",
        ("proxy.address", _) => "sips:proxy.example.com",
        ("instance_id", _) => "urn:uuid:3f1e3a4c-3c5e-4b8e-9e2a-2d6f0c1a9b7e",
        ("contact_uri", _) => "sip:app@192.0.2.10:5080;transport=tcp",
        ("digest_min_algorithm", _) => "SHA-256",
        ("headers", _) => "X-One: 1, X-Two: 2",
        ("contact_params", _) => "+sip.instance-free, expires-hint=5",
        (_, "number") => "7",
        (_, "boolean") => "yes",
        (_, "string") => "some text",
        _ => return None,
    })
}

#[test]
fn every_key_survives_export_then_import() {
    let tmp = TempDir::new("cli-roundtrip");
    let store = tmp.path().join("p.db");
    cli_ok(&store, &["add", "--aor", "sip:x@example.com"]);
    let keys = cli_ok(&store, &["keys"]);
    let mut set = 0;
    for (i, line) in keys.lines().enumerate() {
        let cols: Vec<&str> = line.split_whitespace().collect();
        let (name, number, ty) = (cols[0], cols[1], cols[2]);
        let Some(value) = sample(name, ty) else {
            continue;
        };
        // Every other key by number, to prove numbers work for every type.
        let key = if i % 2 == 0 && !number.contains('.') {
            number
        } else if i % 2 == 0 {
            &format!("{}.{}", name.split('.').next().unwrap(), &number[4..])
        } else {
            name
        };
        cli_ok(&store, &["set", "1", key, value]);
        set += 1;
    }
    let settable = keys.lines().filter(|l| !l.ends_with("read-only")).count();
    assert!(set == settable && set >= 34, "{set} keys set:\n{keys}");
    // Keys without a name: one per extension type, and a per-server one.
    cli_ok(&store, &["set", "1", "700", "70", "--type", "u32"]);
    cli_ok(&store, &["set", "1", "700", "on", "--type", "bool"]);
    cli_ok(&store, &["set", "1", "700", "seventy"]);
    cli_ok(&store, &["set", "1", "701", "a,b", "--type", "array"]);
    cli_ok(&store, &["set", "1", "proxy.160", "extra"]);

    let export = |store: &std::path::Path| -> Value {
        let mut v: Value =
            serde_json::from_str(&cli_ok(store, &["export", "--with-passwords"])).unwrap();
        for p in v.as_array_mut().unwrap() {
            let p = p.as_object_mut().unwrap();
            // Given by the store, not by the profile's owner.
            p.remove("id");
            p.remove("contact_user");
            p.remove("status");
        }
        v
    };
    let before = export(&store);
    let p = &before[0];
    assert_eq!(p["expires"], 7);
    assert_eq!(p["retry_max_seconds"], 7);
    assert_eq!(p["tls_ca_file"], "some text");
    assert_eq!(p["registrar"]["password"], "some text");
    assert_eq!(p["access_point_name"], "some text");
    assert_eq!(p["sig_comp"], true);
    assert_eq!(p["extensions"]["bool"]["700"], true);
    assert_eq!(p["proxy"]["extensions"]["160"], "extra");
    let file = tmp.path().join("all.json");
    std::fs::write(&file, serde_json::to_vec(&before).unwrap()).unwrap();
    let other = tmp.path().join("other.db");
    cli_ok(&other, &["add", "--aor", "sip:first@example.com"]);
    cli_ok(&other, &["import", file.to_str().unwrap()]);
    let after = export(&other);
    assert_eq!(after[1], before[0]);
    // The default flag travelled with it: the imported profile took it.
    assert_eq!(after[0]["default"], false);
}

#[test]
fn set_parses_booleans_and_numbers_strictly() {
    let tmp = TempDir::new("cli-bool");
    let store = tmp.path().join("p.db");
    cli_ok(&store, &["add", "--aor", "sip:x@example.com"]);
    let show = |store| json(&cli(store, &["--json", "show", "1"]));
    for (text, want) in [
        ("True", true),
        ("no", false),
        ("ON", true),
        ("0", false),
        ("yes", true),
        ("FALSE", false),
        ("1", true),
        ("Off", false),
    ] {
        cli_ok(&store, &["set", "1", "auto_registration", text]);
        assert_eq!(show(&store)["auto_registration"], want, "{text}");
    }
    cli_ok(&store, &["set", "1", "6", "true"]);
    for bad in ["maybe", "2", "", "truth"] {
        let out = cli(&store, &["set", "1", "auto_registration", bad]);
        assert!(!out.status.success(), "{bad:?} accepted");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("not a boolean"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            show(&store)["auto_registration"],
            true,
            "changed by {bad:?}"
        );
    }
    cli_ok(&store, &["set", "1", "1000", "777"]);
    assert_eq!(show(&store)["expires"], 777);
    let out = cli(&store, &["set", "1", "expires", "soon"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a number"));
    let out = cli(&store, &["set", "1", "152", "sip:example.com"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("registrar.152"));
    cli_ok(&store, &["set", "1", "registrar.152", "sip:example.com"]);
    assert_eq!(show(&store)["registrar"]["address"], "sip:example.com");
    let out = cli(&store, &["set", "1", "15", "x"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("read-only"));
}

#[test]
fn remove_alias_suggestions_and_man_pages() {
    let tmp = TempDir::new("cli-misc");
    let store = tmp.path().join("p.db");
    cli_ok(&store, &["add", "--aor", "sip:x@example.com"]);
    cli_ok(&store, &["remove", "1"]);
    assert_eq!(
        json(&cli(&store, &["--json", "list"])),
        serde_json::json!([])
    );
    let typo = cli(&store, &["lst"]);
    assert!(!typo.status.success());
    assert!(
        String::from_utf8_lossy(&typo.stderr).contains("similar subcommand exists: 'list'"),
        "{}",
        String::from_utf8_lossy(&typo.stderr)
    );
    let man = tmp.path().join("man");
    cli_ok(&store, &["manpages", man.to_str().unwrap()]);
    let page = std::fs::read_to_string(man.join("sipprofile.1")).unwrap();
    assert!(page.starts_with(".ie \\n(.g .ds Aq") || page.contains(".TH sipprofile 1"));
    assert!(page.contains("registration"));
    let set = std::fs::read_to_string(man.join("sipprofile-set.1")).unwrap();
    assert!(set.contains("registrar.N"), "{set}");
}

#[test]
fn watch_json_prints_one_object_per_event() {
    let k = Kamailio::start("MD5");
    let tmp = TempDir::new("cli-watch");
    let store = tmp.path().join("p.db");
    let reg = k.registrar();
    for (user, password) in [("alice", "alicepw"), ("bob", "wrong")] {
        cli_ok(
            &store,
            &[
                "add",
                "--aor",
                &format!("sip:{user}@sipprofile.test"),
                "--registrar",
                &reg,
                "--user",
                user,
                "--password",
                password,
            ],
        );
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_sipprofile"))
        .arg("--store")
        .arg(&store)
        .args(["--json", "watch"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut said = String::new();
    BufReader::new(child.stderr.take().unwrap())
        .read_line(&mut said)
        .unwrap();
    assert!(said.starts_with("watching 2 profile(s)"), "{said}");
    // Another process turns auto-registration on: the profile server (shared
    // by every process of the store) registers both, and the watcher hears it.
    cli_ok(&store, &["set", "1", "auto_registration", "yes"]);
    cli_ok(&store, &["set", "2", "auto_registration", "yes"]);
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(15);
    let (mut registered, mut failed) = (None, None);
    while registered.is_none() || failed.is_none() {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx
            .recv_timeout(left)
            .expect("a REGISTERED line for profile 1 and an error line for profile 2");
        let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
        match (v["id"].as_u64(), v["event"].as_str()) {
            (Some(1), Some("Registered")) => registered = Some(v),
            (Some(2), Some("Error")) => failed = Some(v),
            _ => {}
        }
    }
    let v = registered.unwrap();
    assert_eq!(v["status"], "Registered", "{v}");
    assert!(v["contact"].as_str().unwrap().contains("sip:"), "{v}");
    let v = failed.unwrap();
    assert_eq!(v["error"], 401, "{v}");
    assert!(v["reason"].as_str().unwrap().contains("401"), "{v}");
    assert!(v["status"].is_string(), "{v}");
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "watch did not exit");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Errors say what is wrong: the key and the reason, the missing parts of a
/// profile, the store path (issue 17 item 3).
#[test]
fn errors_name_the_key_and_the_reason() {
    let tmp = TempDir::new("cli-errors");
    let store = tmp.path().join("p.db");
    let added = json(&cli(&store, &["--json", "add", "--provider", "x"]));
    let id = added["ids"][0].as_u64().unwrap().to_string();
    let out = cli(&store, &["set", &id, "aor", "alice"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("SIP_KEY_USER_AOR (7)")
            && err.contains("\"alice\" is not a SIP URI")
            && err.contains("(-6)"),
        "{err}"
    );
    let out = cli(&store, &["enable", &id, "--timeout", "1"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("profile {id} cannot register: it has no AOR")),
        "{err}"
    );
    // A link to the store reaches the store itself (one server per file);
    // a dangling one, which would create a file elsewhere, is refused.
    let link = tmp.path().join("link.db");
    std::os::unix::fs::symlink(&store, &link).unwrap();
    assert!(cli(&link, &["list"]).status.success());
    let link = tmp.path().join("dangling.db");
    std::os::unix::fs::symlink(tmp.path().join("nowhere.db"), &link).unwrap();
    let out = cli(&link, &["list"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&link.display().to_string()) && err.contains("symbolic link"),
        "{err}"
    );
    assert!(!tmp.path().join("nowhere.db").exists());
}

fn stored_password(store: &std::path::Path, id: &str) -> Value {
    let with = cli(store, &["export", "--with-passwords"]);
    let v: Value = serde_json::from_slice(&with.stdout).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"].as_u64().map(|n| n.to_string()).as_deref() == Some(id))
        .map(|p| p["registrar"]["password"].clone())
        .unwrap()
}

/// `--password-stdin` reads the password from standard input's first line
/// (add and set); nothing is echoed and no warning is printed.
#[test]
fn password_from_standard_input() {
    use std::io::Write;
    let tmp = TempDir::new("cli-stdin");
    let store = tmp.path().join("p.db");
    let run = |args: &[&str], input: &str| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_sipprofile"))
            .arg("--store")
            .arg(&store)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let out = run(
        &[
            "--json",
            "add",
            "--aor",
            "sip:bob@example.com",
            "--registrar",
            "sip:example.com",
            "--user",
            "bob",
            "--password-stdin",
        ],
        "from-Stdin-1\nignored second line\n",
    );
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{all}");
    assert!(
        !all.contains("from-Stdin-1") && !all.contains("warning"),
        "{all}"
    );
    let id = json(&out)["ids"][0].to_string();
    assert_eq!(stored_password(&store, &id), "from-Stdin-1");
    let out = run(
        &["set", &id, "registrar.password", "--password-stdin"],
        "changed-2\r\n",
    );
    assert!(out.status.success());
    assert_eq!(stored_password(&store, &id), "changed-2");
    // A password on the command line still works, with a warning.
    let out = cli(&store, &["set", &id, "registrar.password", "visible-3"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("shows in `ps`"));
    // No terminal to ask on (a new session has none): a clear error, nothing stored.
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sipprofile"));
    cmd.arg("--store")
        .arg(&store)
        .args(["set", &id, "registrar.password"])
        .stdin(Stdio::null());
    // SAFETY: setsid is async-signal-safe.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
            libc::setsid();
            Ok(())
        });
    }
    let out = cmd.output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no terminal") && err.contains("--password-stdin"),
        "{err}"
    );
    assert_eq!(stored_password(&store, &id), "visible-3");
}

/// Without a value, `--password` asks on the terminal with echo off: typed
/// into a pseudo-terminal, the password never comes back on it, and is stored.
#[test]
fn password_prompt_on_a_terminal_does_not_echo() {
    use std::io::{Read, Write};
    use std::os::fd::{FromRawFd, OwnedFd};
    use std::os::unix::process::CommandExt;
    let tmp = TempDir::new("cli-tty");
    let store = tmp.path().join("p.db");
    let (mut master, slave) = {
        let (mut m, mut s) = (0, 0);
        // SAFETY: openpty writes two fds into the locals; no name, default modes.
        let rc = unsafe {
            libc::openpty(
                &mut m,
                &mut s,
                std::ptr::null_mut(),
                std::ptr::null(),
                std::ptr::null(),
            )
        };
        assert_eq!(rc, 0, "openpty");
        // SAFETY: both fds were just opened and are owned here alone.
        unsafe { (std::fs::File::from_raw_fd(m), OwnedFd::from_raw_fd(s)) }
    };
    let slave_fd = std::os::fd::AsRawFd::as_raw_fd(&slave);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sipprofile"));
    cmd.arg("--store")
        .arg(&store)
        .args([
            "--json",
            "add",
            "--aor",
            "sip:carol@example.com",
            "--registrar",
            "sip:example.com",
            "--user",
            "carol",
            "--password",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: only async-signal-safe calls between fork and exec: a new
    // session whose controlling terminal is the pty's slave.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setsid() < 0 || libc::ioctl(slave_fd, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn().expect("spawn sipprofile on a pty");
    drop(slave);
    // Read what the terminal shows until the prompt, then type.
    let mut shown = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !String::from_utf8_lossy(&shown).contains("Password: ") {
        assert!(Instant::now() < deadline, "no prompt: {shown:?}");
        let mut buf = [0u8; 256];
        match master.read(&mut buf) {
            Ok(0) | Err(_) => panic!("terminal closed before the prompt: {shown:?}"),
            Ok(n) => shown.extend_from_slice(&buf[..n]),
        }
    }
    master.write_all(b"Typed-Secret-9\n").unwrap();
    let out = child.wait_with_output().unwrap();
    // The rest of what the terminal showed (the pty closes when the child exits).
    let mut rest = [0u8; 4096];
    while let Ok(n) = master.read(&mut rest) {
        if n == 0 {
            break;
        }
        shown.extend_from_slice(&rest[..n]);
    }
    let shown = String::from_utf8_lossy(&shown);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!shown.contains("Typed-Secret-9"), "echoed: {shown:?}");
    let id = json(&out)["ids"][0].to_string();
    assert_eq!(stored_password(&store, &id), "Typed-Secret-9");
}

/// `enable --wait` says each failed attempt and when the next one is due
/// (issue 16 item 5), then registers.
#[test]
fn enable_shows_each_failed_attempt_and_the_next_retry() {
    let mut sipp = support::Sipp::start("retry_after_503.xml");
    let tmp = TempDir::new("cli-attempt");
    let store = tmp.path().join("p.db");
    let reg = sipp.registrar();
    cli_ok(
        &store,
        &[
            "add",
            "--aor",
            "sip:alice@sipprofile.test",
            "--registrar",
            &reg,
            "--user",
            "alice",
            "--password",
            "pw",
        ],
    );
    let out = cli(&store, &["enable", "1", "--timeout", "10"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("attempt failed: SIP 503") && err.contains("next attempt in"),
        "{err}"
    );
    assert!(sipp.passed(Duration::from_secs(10)));
}
