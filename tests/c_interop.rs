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

#[test]
fn c_callbacks_may_call_the_api_and_free_registries() {
    make("tests/c", &[]);
    let kamailio = Kamailio::start("MD5");
    let tmp = TempDir::new("c-callbacks");
    let out = Command::new(root().join("tests/c/build/callbacks"))
        .arg(tmp.path().join("profiles.db"))
        .arg(kamailio.registrar())
        .output()
        .expect("run callbacks");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "C callbacks test failed");
    assert!(stdout.contains("callbacks: all checks passed"));
}

/// The same end-to-end program without sanitizers, under valgrind: no
/// invalid access and no definite leak.
#[test]
fn c_end_to_end_under_valgrind() {
    if Command::new("valgrind").arg("--version").output().is_err() {
        panic!("valgrind is required (Debian package valgrind)");
    }
    make("tests/c", &["SANITIZE=", "BUILD=build-valgrind"]);
    let kamailio = Kamailio::start("MD5");
    let tmp = TempDir::new("c-valgrind");
    let out = Command::new("valgrind")
        .args([
            "--error-exitcode=3",
            "--leak-check=full",
            "--errors-for-leak-kinds=definite",
            "--quiet",
        ])
        .arg(root().join("tests/c/build-valgrind/e2e"))
        .arg(tmp.path().join("profiles.db"))
        .arg(kamailio.registrar())
        .arg(kamailio.bindings_command())
        .env("SIPPROFILE_SIP_T1_MS", "100")
        .output()
        .expect("run valgrind");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success(),
        "valgrind run failed (exit {:?})",
        out.status.code()
    );
    assert!(stdout.contains("e2e: all checks passed"));
}

#[test]
fn c_conformance_key_table_and_bad_input() {
    make("tests/c", &[]);
    let tmp = TempDir::new("c-conformance");
    let out = Command::new(root().join("tests/c/build/conformance"))
        .arg(tmp.path().join("a.db"))
        .arg(tmp.path().join("b.db"))
        .output()
        .expect("run conformance");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "C conformance failed");
    assert!(stdout.contains("conformance: all checks passed"));
    // One line per row of the ref §4.1 key table (with the library's keys).
    assert_eq!(
        stdout
            .lines()
            .filter(|l| l.contains("ref §4.1 SIP_"))
            .count(),
        46
    );
}

#[test]
fn cpp_wrapper_against_kamailio() {
    make("tests/cpp", &[]);
    let kamailio = Kamailio::start("MD5");
    let tmp = TempDir::new("cpp");
    let out = Command::new(root().join("tests/cpp/build/test_sipprofile"))
        .arg(tmp.path().join("profiles.db"))
        .arg(kamailio.registrar())
        .output()
        .expect("run the C++ test");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "C++ test failed");
    assert!(stdout.contains("cpp: all checks passed"));
}

/// 8 threads over 5 registries through the C API for a bounded time,
/// under ASan/UBSan, then under valgrind (no ASan): consistent afterwards,
/// no sanitizer report, no definite leak, no deadlock (watchdog).
#[test]
fn c_stress_under_asan_then_valgrind() {
    make("tests/c", &[]);
    make("tests/c", &["SANITIZE=", "BUILD=build-valgrind"]);
    let kamailio = Kamailio::start("MD5");
    for (label, program, seconds) in [
        ("asan", root().join("tests/c/build/stress"), "5"),
        (
            "valgrind",
            root().join("tests/c/build-valgrind/stress"),
            "3",
        ),
    ] {
        let tmp = TempDir::new("c-stress");
        let mut cmd = if label == "valgrind" {
            let mut c = Command::new("valgrind");
            c.args([
                "--error-exitcode=3",
                "--leak-check=full",
                "--errors-for-leak-kinds=definite",
                "--quiet",
            ]);
            c.arg(&program);
            c
        } else {
            Command::new(&program)
        };
        let out = cmd
            .arg(tmp.path().join("profiles.db"))
            .arg(kamailio.registrar())
            .arg(seconds)
            .env("SIPPROFILE_SIP_T1_MS", "100")
            .output()
            .expect("run stress");
        let stdout = String::from_utf8_lossy(&out.stdout);
        println!("{label}: {stdout}");
        eprintln!("{}", String::from_utf8_lossy(&out.stderr));
        assert!(
            out.status.success(),
            "C stress ({label}) failed: {:?}",
            out.status.code()
        );
        assert!(stdout.contains("stress: all checks passed"));
    }
}

/// One list taken from by several threads at once hands each entry out
/// exactly once; one handle set and read by several threads at once never
/// shows a torn value (contract §1: every function is thread-safe).
#[test]
fn c_threads_share_one_list_and_one_handle() {
    make("tests/c", &[]);
    let tmp = TempDir::new("c-threads");
    let out = Command::new(root().join("tests/c/build/threads"))
        .arg(tmp.path().join("profiles.db"))
        .output()
        .expect("run threads");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "C threads test failed");
    assert!(stdout.contains("threads: all checks passed"));
}

/// An application's own DEBUG, ERROR, PROFILE_ID... survive including the
/// header: tests/c/macros.c builds with -Werror (a redefinition fails it).
#[test]
fn c_header_leaves_application_names_alone() {
    make("tests/c", &[]);
    let out = Command::new(root().join("tests/c/build/macros"))
        .output()
        .expect("run macros");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(out.status.success(), "C macros test failed");
    assert!(stdout.contains("macros: all checks passed"));
}

/// sip_last_error_message names the key, argument or path and the reason
/// after a failed call, per thread (tests/c/errors.c).
#[test]
fn c_last_error_message_names_what_failed() {
    make("tests/c", &[]);
    let tmp = TempDir::new("c-errors");
    let out = Command::new(root().join("tests/c/build/errors"))
        .arg(tmp.path())
        .output()
        .expect("run errors");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "C errors test failed");
    assert!(stdout.contains("errors: all checks passed"));
}
