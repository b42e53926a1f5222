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
