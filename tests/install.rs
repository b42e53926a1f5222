//! `make install` into a temporary prefix, then an example built against the
//! installed files with pkg-config only; the installed library's SONAME and
//! exported symbols match the header.

mod support;

use std::collections::BTreeSet;
use std::process::Command;
use support::{TempDir, root};

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("spawn");
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn install_then_build_with_pkg_config_only() {
    let prefix = TempDir::new("prefix");
    let p = prefix.path().to_str().unwrap();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    run(Command::new("make").arg("-s").arg("-C").arg(root()).args([
        "install",
        "PROFILE=debug",
        &format!("PREFIX={p}"),
        &format!("CARGO={cargo}"),
    ]));
    let lib = prefix.path().join("lib");
    assert!(lib.join("libsipprofile.so.0").exists() && lib.join("libsipprofile.so").exists());
    assert!(prefix.path().join("include/sipprofile.h").exists());
    assert!(prefix.path().join("include/sipprofile.hpp").exists());
    assert!(prefix.path().join("bin/sipprofile").exists());
    let server = prefix.path().join("libexec/sipprofile/sipprofile-server");
    assert!(server.exists());

    let pc_path = lib.join("pkgconfig");
    let flags = run(Command::new("pkg-config")
        .env("PKG_CONFIG_PATH", &pc_path)
        .args(["--cflags", "--libs", "sipprofile"]));
    let exe = prefix.path().join("provision");
    let mut cc = Command::new("cc");
    cc.args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-o"])
        .arg(&exe)
        .arg(root().join("examples-c/provision.c"))
        .args(flags.split_whitespace());
    run(&mut cc);
    let store = prefix.path().join("p.db");
    // The installed library starts the installed server, found beside it.
    let id = run(Command::new(&exe)
        .env("LD_LIBRARY_PATH", &lib)
        .env_remove("SIPPROFILE_SERVER_BIN")
        .env_remove("SIPPROFILE_SERVER")
        .arg(&store)
        .args(["add", "sip:a@example.com", "sip:example.com", "a", "pw"]));
    assert_eq!(id.trim(), "1");
    let status = sipprofile::client::server_status(&store)
        .unwrap()
        .expect("the server lingers after its client");
    let running = std::fs::read_link(format!("/proc/{}/exe", status.pid)).unwrap();
    assert_eq!(running, server.canonicalize().unwrap());

    // SONAME, and the exported sip_* symbols are exactly the header's functions.
    let dynamic = run(Command::new("readelf")
        .arg("-d")
        .arg(lib.join("libsipprofile.so")));
    assert!(dynamic.contains("[libsipprofile.so.0]"), "{dynamic}");
    let nm = run(Command::new("nm")
        .args(["-D", "--defined-only"])
        .arg(lib.join("libsipprofile.so")));
    let exported: BTreeSet<String> = nm
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2))
        .filter(|s| s.starts_with("sip_"))
        .map(str::to_owned)
        .collect();
    let header = std::fs::read_to_string(root().join("include/sipprofile.h")).unwrap();
    let declared: BTreeSet<String> = header
        .lines()
        .filter(|l| {
            l.contains('(')
                && !l.starts_with(' ')
                && !l.starts_with("typedef")
                && !l.starts_with('#')
        })
        .filter_map(|l| l.split('(').next())
        .filter_map(|l| l.split_whitespace().last())
        .map(|s| s.trim_start_matches('*').to_owned())
        .filter(|s| s.starts_with("sip_"))
        .collect();
    assert_eq!(exported, declared);
}
