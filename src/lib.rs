//! sipprofile: persistent SIP profiles (accounts) and real SIP registration,
//! with the semantics of the Symbian OS SIP Profile API, shipped as a C
//! library (`include/sipprofile.h`).
//!
//! Where things are:
//! - `profile/`: the profile model, its keys and the getter/setter rules;
//! - `store/`: the SQLite profile store;
//! - `protocol/`: what crosses between a client and the server, and where
//!   a store's server listens;
//! - `server/`: the profile server of a store, shared by every process of the
//!   user: store, enable counting, event routing, the SIP engine; hosting;
//! - `client/`: registries, handles and observer callbacks, in the
//!   application's process;
//! - `sip/`: messages, URIs, digest, the registration state machine, engine;
//! - `ffi/`: the C boundary, and only that;
//! - `thread_placement`: which CPUs the library's threads run on.

// cbindgen makes include/sipprofile.h from `ffi`, the status codes in
// `error` and the keys in `profile::keys`; every other module is skipped
// (`cbindgen:ignore`), so no internal constant reaches the header.
/// cbindgen:ignore
pub mod client;
pub mod error;
pub mod ffi;
/// cbindgen:ignore
pub mod log;
pub mod profile;
/// cbindgen:ignore
pub mod protocol;
/// cbindgen:ignore
pub mod random;
/// cbindgen:ignore
pub mod secret;
/// cbindgen:ignore
pub mod server;
/// cbindgen:ignore
pub mod sip;
/// cbindgen:ignore
pub mod store;
/// cbindgen:ignore
pub mod thread_placement;

pub use error::{Error, Result};

/// The library's version, "MAJOR.MINOR.PATCH".
pub fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

#[cfg(test)]
pub(crate) mod test_support {
    use std::time::{Duration, Instant};

    /// Waits (bounded: 20 s, then the test fails) until `f` holds.
    pub(crate) fn until(what: &str, f: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !f() {
            assert!(Instant::now() < deadline, "never: {what}");
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}
