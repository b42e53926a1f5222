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

pub mod client;
pub mod error;
pub mod ffi;
pub mod log;
pub mod profile;
pub mod protocol;
pub mod random;
pub mod server;
pub mod sip;
pub mod store;
pub mod thread_placement;

pub use error::{Error, Result};

/// The library's version, "MAJOR.MINOR.PATCH".
pub fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}
