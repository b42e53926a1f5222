//! The C test programs in tests/c, built with ASan and UBSan, run against a
//! real Kamailio registrar on loopback.

mod support;

use std::process::Command;
use support::{Kamailio, TempDir, make, root};

#[test]
fn c_end_to_end_against_kamailio() {
    make("tests/c", &[]);
    let kamailio = Kamailio::start("MD5");
    let tmp = TempDir::new("c-e2e");
    let store = tmp.path().join("profiles.db");
    let out = Command::new(root().join("tests/c/build/e2e"))
        .arg(&store)
        .arg(kamailio.registrar())
        .arg(kamailio.bindings_command())
        .env("SIPPROFILE_SIP_T1_MS", "100")
        .output()
        .expect("run e2e");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    assert!(
        out.status.success(),
        "C e2e failed (exit {:?})",
        out.status.code()
    );
    assert!(stdout.contains("e2e: all checks passed"));
    // Store file created with mode 0600 (and its WAL companions).
    use std::os::unix::fs::PermissionsExt;
    for suffix in ["", "-wal", "-shm"] {
        let p = std::path::PathBuf::from(format!("{}{suffix}", store.display()));
        if let Ok(m) = std::fs::metadata(&p) {
            assert_eq!(m.permissions().mode() & 0o777, 0o600, "{}", p.display());
        }
    }
}

#[test]
fn demo_example_builds_and_registers() {
    make("examples-c", &[]);
    let kamailio = Kamailio::start("SHA-256");
    let tmp = TempDir::new("demo");
    let out = Command::new(root().join("examples-c/build/register"))
        .arg(tmp.path().join("demo.db"))
        .arg(kamailio.registrar())
        .args(["sip:alice@sipprofile.test", "alice", "alicepw"])
        .output()
        .expect("run register");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success());
    let registered = stdout.find("REGISTERED").expect("REGISTERED event");
    let deregistered = stdout.find("DEREGISTERED").expect("DEREGISTERED event");
    assert!(registered < deregistered);
}
