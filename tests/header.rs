//! `include/sipprofile.h` must be exactly what cbindgen makes of the sources.
//! `SIPPROFILE_BLESS=1 cargo test --test header` rewrites it.

use std::path::Path;

#[test]
fn header_is_in_sync_with_sources() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(root.join("cbindgen.toml")).expect("cbindgen.toml");
    let mut generated = Vec::new();
    cbindgen::Builder::new()
        .with_crate(root)
        .with_config(config)
        .generate()
        .expect("cbindgen failed")
        .write(&mut generated);
    let path = root.join("include/sipprofile.h");
    if std::env::var_os("SIPPROFILE_BLESS").is_some() {
        std::fs::write(&path, &generated).unwrap();
        return;
    }
    let checked_in = std::fs::read(&path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "include/sipprofile.h differs from cbindgen's output; \
         run `SIPPROFILE_BLESS=1 cargo test --test header` and commit it"
    );
}

#[test]
fn version_macros_match_cargo() {
    let h =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("include/sipprofile.h"))
            .unwrap();
    for (name, v) in [
        ("SIPPROFILE_VERSION_MAJOR", env!("CARGO_PKG_VERSION_MAJOR")),
        ("SIPPROFILE_VERSION_MINOR", env!("CARGO_PKG_VERSION_MINOR")),
        ("SIPPROFILE_VERSION_PATCH", env!("CARGO_PKG_VERSION_PATCH")),
    ] {
        assert!(h.contains(&format!("#define {name} {v}")), "{name} != {v}");
    }
}
