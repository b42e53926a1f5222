//! sipprofile: persistent SIP profiles (accounts) and real SIP registration,
//! with the semantics of the Symbian OS SIP Profile API, shipped as a C
//! library (`include/sipprofile.h`).
//!
//! Where things are:
//! - `profile/`: the profile model, its keys and the getter/setter rules;
//! - `store/`: the SQLite profile store;
//! - `server/`: the profile server shared by registries, events, registries;
//! - `sip/`: messages, URIs, digest, the registration state machine, engine;
//! - `ffi/`: the C boundary, and only that;
//! - `thread_placement`: which CPUs the library's threads run on.

pub mod error;
pub mod ffi;
pub mod log;
pub mod profile;
pub mod random;
pub mod server;
pub mod sip;
pub mod store;
pub mod thread_placement;

pub use error::{Error, Result};
