//! The client side of the profile server, in the application's process:
//! registries, profile handles and the calling of observers. It talks to the
//! store's server only through `crate::protocol`'s messages.
//!
//! - `registry.rs`: registries and handles (ref §2.4–2.8), their data blocks;
//! - `handle.rs`: a handle's typed getters and setters, the only way to its
//!   data from outside this module;
//! - `connection.rs`: this process's connection to a store's server, its
//!   reader thread, and the recovery when the server dies;
//! - `connect.rs`: finding, starting and greeting the server;
//! - `delivery.rs`: observers called on library threads or in `dispatch`;
//! - `pending.rs`: the callbacks a registry has not run yet, bounded.

pub(crate) mod connect;
mod connection;
mod delivery;
mod handle;
mod pending;
pub mod registry;

pub use connect::{Hosting, server_executable, server_status};
pub use connection::network_changed;
pub use handle::{ProfileCopy, ProfileEdit};
pub use registry::{ProfileHandle, Registry};

pub use crate::protocol::Event;

/// How a registry is made (`sip_*_registry_new_with_flags`, contract §8.2).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flags {
    /// Callbacks run only in `dispatch`, on its caller's thread.
    pub app_dispatch: bool,
    /// SIP_PROFILE_ATTEMPT_FAILED is delivered too.
    pub attempt_events: bool,
    /// Where the server runs, instead of what `SIPPROFILE_SERVER` says.
    pub hosting: Option<Hosting>,
}

/// What a registry's owner wants to hear. Called on a library thread of the
/// application's process (or in `dispatch`), one call at a time per
/// registry, never with a library lock held.
pub trait Observer: Send + Sync {
    fn event(&self, profile_id: u32, event: Event);
    /// `event`, also told when the server published it, on the monotonic
    /// clock in ns (`protocol::monotonic_ns`): what a delivery-latency
    /// measurement needs.
    fn event_at(&self, profile_id: u32, event: Event, published_ns: u64) {
        let _ = published_ns;
        self.event(profile_id, event)
    }
    fn error(&self, profile_id: u32, error: i32);
}
