//! `make install` into a temporary prefix, then an example built against the
//! installed files with pkg-config only; the installed library's SONAME and
//! exported symbols match the header. The .deb of scripts/deb.sh installed
//! by dpkg into a separate root, an example built against it with pkg-config
//! and run against Kamailio.

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use support::{Kamailio, TempDir, cdylib_dir, root};

/// Every symbol the library exports (`nm -D --defined-only`), whatever its name.
fn exported_symbols(lib: &Path) -> BTreeSet<String> {
    let nm = run(Command::new("nm").args(["-D", "--defined-only"]).arg(lib));
    nm.lines()
        .filter_map(|l| l.split_whitespace().nth(2))
        .map(str::to_owned)
        .collect()
}

#[path = "support/header_functions.rs"]
mod header_text;

/// The functions include/sipprofile.h declares.
fn header_functions() -> BTreeSet<String> {
    let header = std::fs::read_to_string(root().join("include/sipprofile.h")).unwrap();
    header_text::header_functions(&header).into_iter().collect()
}

#[test]
fn exported_symbols_are_exactly_the_headers_functions() {
    let declared = header_functions();
    assert!(declared.len() > 40, "{declared:?}");
    assert_eq!(
        exported_symbols(&cdylib_dir().join("libsipprofile.so")),
        declared
    );
}

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
    assert_eq!(
        exported_symbols(&lib.join("libsipprofile.so")),
        header_functions()
    );
    assert!(
        prefix
            .path()
            .join("share/man/man1/sipprofile-set.1")
            .exists()
    );
}

#[test]
fn deb_installs_and_an_example_registers_through_it() {
    let tmp = TempDir::new("deb");
    let out = tmp.path().join("out");
    let deb = run(Command::new(root().join("scripts/deb.sh"))
        .arg(&out)
        .env("PROFILE", "debug")
        .env("DEB_COMPRESS", "none"));
    let deb = deb.trim();
    let multiarch = "usr/lib/x86_64-linux-gnu";
    let listing = run(Command::new("dpkg-deb").args(["-c", deb]));
    for want in [
        format!("./{multiarch}/libsipprofile.so.0 -> libsipprofile.so.0.1.0"),
        format!("./{multiarch}/libsipprofile.so -> libsipprofile.so.0"),
        format!("./{multiarch}/pkgconfig/sipprofile.pc"),
        "./usr/include/sipprofile.h".into(),
        "./usr/include/sipprofile.hpp".into(),
        "./usr/bin/sipprofile".into(),
        "./usr/libexec/sipprofile/sipprofile-server".into(),
        format!(
            "./{multiarch}/sipprofile/sipprofile-server -> ../../../libexec/sipprofile/sipprofile-server"
        ),
        "./usr/share/man/man1/sipprofile.1.gz".into(),
        "./usr/share/man/man1/sipprofile-set.1.gz".into(),
    ] {
        assert!(
            listing.contains(&want),
            "{want} not in the .deb:\n{listing}"
        );
    }
    // dpkg installs it into a root of its own (with its own package
    // database): the real unpack and configure, without touching /usr of
    // the machine the tests share.
    let sysroot = tmp.path().join("root");
    std::fs::create_dir_all(sysroot.join("var/lib/dpkg/info")).unwrap();
    std::fs::create_dir_all(sysroot.join("var/lib/dpkg/updates")).unwrap();
    std::fs::write(sysroot.join("var/lib/dpkg/status"), "").unwrap();
    let dpkg = |args: &[&str]| {
        run(Command::new("dpkg")
            .arg(format!("--root={}", sysroot.display()))
            .args([
                "--force-depends",
                "--force-script-chrootless",
                "--force-not-root",
            ])
            .args(args))
    };
    dpkg(&["-i", deb]);
    let status = dpkg(&["-s", "sipprofile"]);
    assert!(status.contains("Status: install ok installed"), "{status}");
    let libdir = sysroot.join(multiarch);
    let lib = libdir.join("libsipprofile.so.0");
    let dynamic = run(Command::new("readelf").arg("-d").arg(&lib));
    assert!(dynamic.contains("[libsipprofile.so.0]"), "{dynamic}");
    assert_eq!(exported_symbols(&lib), header_functions());

    let flags = run(Command::new("pkg-config")
        .env("PKG_CONFIG_SYSROOT_DIR", &sysroot)
        .env("PKG_CONFIG_LIBDIR", libdir.join("pkgconfig"))
        .args(["--cflags", "--libs", "sipprofile"]));
    assert!(
        flags.contains(&format!("{}/usr/include", sysroot.display())),
        "{flags}"
    );
    let exe = tmp.path().join("register");
    let mut cc = Command::new("cc");
    cc.args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-o"])
        .arg(&exe)
        .arg(root().join("examples-c/register.c"))
        .args(flags.split_whitespace())
        .arg("-lpthread");
    run(&mut cc);
    let k = Kamailio::start("MD5");
    let store = tmp.path().join("p.db");
    // The library starts the profile server it finds beside itself: the
    // installed one, as nothing points elsewhere.
    let printed = run(Command::new(&exe)
        .env("LD_LIBRARY_PATH", &libdir)
        .env_remove("SIPPROFILE_SERVER")
        .env_remove("SIPPROFILE_SERVER_BIN")
        .arg(&store)
        .args([
            &k.registrar(),
            "sip:alice@sipprofile.test",
            "alice",
            "alicepw",
        ]));
    assert!(printed.contains("event: profile 1 REGISTERED"), "{printed}");
    assert!(printed.contains("done"), "{printed}");
    let status = sipprofile::client::server_status(&store)
        .unwrap()
        .expect("the server lingers after its client");
    let running = std::fs::read_link(format!("/proc/{}/exe", status.pid)).unwrap();
    assert_eq!(
        running,
        sysroot
            .join("usr/libexec/sipprofile/sipprofile-server")
            .canonicalize()
            .unwrap()
    );
    // The library the example ran is the installed one.
    let ldd = run(Command::new("ldd")
        .arg(&exe)
        .env("LD_LIBRARY_PATH", &libdir));
    assert!(ldd.contains(&lib.display().to_string()), "{ldd}");
    // The command and its man page.
    let version = run(Command::new(sysroot.join("usr/bin/sipprofile")).arg("--version"));
    assert!(version.starts_with("sipprofile "), "{version}");
    let page = run(Command::new("gzip")
        .arg("-dc")
        .arg(sysroot.join("usr/share/man/man1/sipprofile.1.gz")));
    assert!(page.contains(".TH sipprofile 1"), "{page}");
    dpkg(&["-r", "sipprofile"]);
    assert!(!lib.exists() && !sysroot.join("usr/bin/sipprofile").exists());
}
