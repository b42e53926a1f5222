//! Sets the SONAME so that `libsipprofile.so` links as `libsipprofile.so.0`,
//! and adds a linker version script, made from the checked-in header, that
//! keeps every `#[no_mangle]` function the header does not declare out of
//! the library's exports: so it exports exactly the header's functions
//! (tests/install.rs checks that with `nm -D`).
use std::fmt::Write;
use std::path::{Path, PathBuf};

#[path = "tests/support/header_functions.rs"]
mod header_functions;
use header_functions::header_functions;

/// Names of the functions marked `no_mangle` in the Rust sources under `dir`.
fn unmangled_functions(dir: &Path, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            unmangled_functions(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let mut marked = false;
            for line in text.lines() {
                if line.contains("no_mangle") {
                    marked = true;
                }
                let Some((_, rest)) = line.split_once("fn ").filter(|_| marked) else {
                    continue;
                };
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                out.push(name);
                marked = false;
            }
        }
    }
}

/// The rustc minor version (1.MINOR), from `$RUSTC --version`.
fn rustc_minor() -> Option<u32> {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let out = std::process::Command::new(rustc)
        .arg("--version")
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    text.split_whitespace()
        .nth(1)?
        .split('.')
        .nth(1)?
        .parse()
        .ok()
}

fn main() {
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libsipprofile.so.0");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=include/sipprofile.h");
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-env-changed=SIPPROFILE_NO_VERSION_SCRIPT");
    // rustc passes a version script of its own that lists every no_mangle
    // function. A second one is accepted by rust-lld (the default linker of
    // x86_64 Linux since Rust 1.90), where an explicit `local` wins; GNU ld
    // refuses two anonymous scripts, so older toolchains go without (the
    // nm test still guards the exports).
    let lld_default = std::env::var("TARGET").as_deref() == Ok("x86_64-unknown-linux-gnu")
        && rustc_minor().is_some_and(|m| m >= 90);
    if !lld_default || std::env::var_os("SIPPROFILE_NO_VERSION_SCRIPT").is_some() {
        return;
    }
    let header = std::fs::read_to_string("include/sipprofile.h").expect("include/sipprofile.h");
    let exported = header_functions(&header);
    assert!(
        !exported.is_empty(),
        "no function found in include/sipprofile.h"
    );
    let mut hidden = Vec::new();
    unmangled_functions(Path::new("src"), &mut hidden);
    hidden.retain(|n| !exported.contains(n));
    hidden.sort();
    hidden.dedup();
    let mut script = String::from("{\n  global:\n");
    for n in &exported {
        writeln!(script, "    {n};").unwrap();
    }
    script.push_str("  local:\n");
    for n in &hidden {
        writeln!(script, "    {n};").unwrap();
    }
    script.push_str("    *;\n};\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR")).join("sipprofile.map");
    std::fs::write(&out, script).expect("write the version script");
    println!(
        "cargo:rustc-cdylib-link-arg=-Wl,--version-script={}",
        out.display()
    );
}
