//! Sets the SONAME so that `libsipprofile.so` links as `libsipprofile.so.0`.
fn main() {
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libsipprofile.so.0");
    println!("cargo:rerun-if-changed=build.rs");
}
