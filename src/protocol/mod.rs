//! What crosses between a client (registries, handles and callbacks, in the
//! application's process) and the profile server of a store (the store,
//! enable counting, event routing and SIP): one message enum per direction.
//!
//! Both transports carry these same values: a Unix-domain socket between
//! processes (`frame.rs` encodes them, length-prefixed, after a versioned
//! handshake), and a channel when the server is hosted in the client's own
//! process. `endpoint.rs` says where a store's server listens.

pub mod endpoint;
pub mod frame;

use crate::Error;
use crate::profile::{ProfileData, RegistrationInfo, TypeInfo};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Raised whenever a message changes shape: a client and a server of
/// different versions refuse each other with a clear error.
pub const VERSION: u32 = 2;
/// First bytes of every connection, so that a stray peer is told apart from
/// a server of another version.
pub const MAGIC: [u8; 8] = *b"SIPPROF\0";

/// A registry, numbered by its client (unique within one connection).
pub type RegistryId = u64;
/// One registry's shared data block of one profile: the server sends that
/// profile's events to the registry while this block is its current one.
pub type Token = u64;

/// The client's first message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    pub magic: [u8; 8],
    pub version: u32,
    pub pid: u32,
}

impl Hello {
    pub fn new() -> Hello {
        Hello {
            magic: MAGIC,
            version: VERSION,
            pid: std::process::id(),
        }
    }
}

impl Default for Hello {
    fn default() -> Self {
        Self::new()
    }
}

/// The server's answer to [`Hello`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Welcome {
    Accepted { version: u32, server_pid: u32 },
    Refused { reason: String },
}

/// Which profiles a listing asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Filter {
    All,
    Type(TypeInfo),
    /// URI-equal AOR (RFC 3261 §19.1.4).
    Aor(String),
}

/// What a client asks of the server. Every request gets exactly one
/// [`ToClient::Reply`], in order.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Request {
    /// A registry opens. `observer`: it has callbacks (CREATED is sent only
    /// to such registries; the others hear only of profiles they hold).
    OpenRegistry {
        registry: RegistryId,
        observer: bool,
        attempt_events: bool,
    },
    /// A registry closes: it stops using (disables) and observing everything.
    CloseRegistry {
        registry: RegistryId,
    },
    ListIds {
        filter: Filter,
    },
    DefaultId,
    /// The profile's current snapshot. With a token, the registry observes
    /// the profile through that block from now on.
    Lookup {
        registry: RegistryId,
        id: u32,
        token: Option<Token>,
    },
    /// `Lookup` of many profiles in one round trip: each answer in order,
    /// `None` for an id that is gone.
    LookupMany {
        registry: RegistryId,
        items: Vec<(u32, Option<Token>)>,
    },
    /// The registry's block `token` of `id` is gone; a newer block keeps
    /// its events.
    Unobserve {
        registry: RegistryId,
        id: u32,
        token: Token,
    },
    Enable {
        registry: RegistryId,
        id: u32,
    },
    Disable {
        registry: RegistryId,
        id: u32,
    },
    RefreshEnable {
        registry: RegistryId,
        id: u32,
    },
    ForceDisable {
        id: u32,
    },
    IsInUse {
        id: u32,
    },
    /// Adds (id 0) or updates a profile. A new profile's block is `token`.
    Save {
        registry: RegistryId,
        item: Box<SaveItem>,
    },
    /// Saves every profile in one durable transaction, all or nothing.
    SaveAll {
        registry: RegistryId,
        items: Vec<SaveItem>,
    },
    Destroy {
        id: u32,
    },
    /// What the server is doing: clients and registrations.
    Status,
    /// The application says the network changed (`sip_network_changed`):
    /// the engine looks again at where its registrations go.
    NetworkChanged,
    /// Every stored profile, passwords included (`sipprofile export
    /// --with-passwords`; not in the C API). The connection is the store
    /// owner's own (SO_PEERCRED), who can read the store file anyway.
    ExportWithPasswords,
}

/// One profile to save.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SaveItem {
    /// The block a new profile's handles share in the saving registry.
    pub token: Token,
    pub data: ProfileData,
    /// `ProfileData::make_default`, which the store does not keep.
    pub make_default: bool,
}

impl Request {
    /// Asks without changing anything: safe to ask again of a new server.
    pub fn is_question(&self) -> bool {
        matches!(
            self,
            Request::ListIds { .. }
                | Request::DefaultId
                | Request::Lookup { .. }
                | Request::LookupMany { .. }
                | Request::IsInUse { .. }
                | Request::Status
                | Request::ExportWithPasswords
        )
    }
}

/// A successful answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Reply {
    Done,
    Snapshot(Arc<Snapshot>),
    Snapshots(Vec<Arc<Snapshot>>),
    /// The answers of `LookupMany`, in order.
    Found(Vec<Option<Arc<Snapshot>>>),
    Ids(Vec<u32>),
    DefaultId(Option<u32>),
    /// The registration state after an enable or disable, and its order.
    State {
        info: RegistrationInfo,
        seq: u64,
    },
    InUse(bool),
    Status(ServerStatus),
    Profiles(Vec<ProfileData>),
}

/// A failed request: the C status code and what went wrong, for
/// `sip_last_error_message`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    pub code: i32,
    pub message: String,
}

impl Failure {
    pub fn new(e: Error, message: impl Into<String>) -> Failure {
        Failure {
            code: e.code(),
            message: message.into(),
        }
    }

    pub fn error(&self) -> Error {
        Error::from_code(self.code)
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        Failure {
            code: e.code(),
            message: String::new(),
        }
    }
}

/// Client → server.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ToServer {
    /// Echoed in the reply.
    pub call: u64,
    pub request: Request,
}

/// Server → client: replies in request order, and events as they happen.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ToClient {
    Reply {
        call: u64,
        result: Result<Reply, Failure>,
    },
    Event {
        registry: RegistryId,
        delivery: Delivery,
    },
}

/// Observer events, with the values of `sip_profile_event` (ref §3.1,
/// contract §8.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    Created = 0,
    Updated = 1,
    Registered = 2,
    Deregistered = 3,
    Destroyed = 4,
    ForciblyDisabled = 5,
    /// A registration attempt failed and another is scheduled (only to
    /// registries that asked for it).
    AttemptFailed = 6,
}

/// The profile as the server saw it when the event happened; the receiving
/// registry copies it into its handles before calling the observer (ref §5.2),
/// so no event loses data on the way (contract §7.5).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Snapshot {
    /// The stored data, without passwords; `None` in events that change only
    /// the registration (REGISTERED, DEREGISTERED, FORCIBLY_DISABLED,
    /// errors): the receiving handles' data is already current, and 10,000
    /// registrations need not carry 10,000 copies of it.
    pub data: Option<ProfileData>,
    /// When it was taken, in the server's order of registration-state
    /// changes: a registry applies `info` only when newer than what its
    /// handles hold.
    pub seq: u64,
    /// The server's revision of `data`.
    pub revision: u64,
    pub info: RegistrationInfo,
    pub is_default: bool,
    /// With `data`: why enabling this data would be refused (`None`: it
    /// can register), the server's own check, so that a registry answers
    /// `enable` without waiting for the server.
    pub enable_refusal: Option<Failure>,
}

impl Snapshot {
    /// The data of a full snapshot (lookups always carry it).
    pub fn data(&self) -> Option<&ProfileData> {
        self.data.as_ref()
    }
}

/// One event or error on its way to a registry.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Delivery {
    Event {
        id: u32,
        event: Event,
        snapshot: Option<Arc<Snapshot>>,
        /// When the server published it, on the system's monotonic clock
        /// (the same in every process): what delivery latency is timed from.
        published_ns: u64,
    },
    Error {
        id: u32,
        code: i32,
        snapshot: Option<Arc<Snapshot>>,
    },
}

impl Delivery {
    pub fn profile_id(&self) -> u32 {
        match self {
            Delivery::Event { id, .. } | Delivery::Error { id, .. } => *id,
        }
    }
}

/// What `Request::Status` answers: the server and who it serves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerStatus {
    pub pid: u32,
    pub store: String,
    /// `process` or `in-process`.
    pub hosting: String,
    pub clients: Vec<ClientStatus>,
    pub profiles: Vec<ProfileStatus>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientStatus {
    pub pid: u32,
    pub registries: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileStatus {
    pub id: u32,
    /// Values of `sip_profile_status`.
    pub status: u32,
    /// Registries (in every client) that enabled it.
    pub users: u32,
    pub auto_registration: bool,
    pub last_error: i32,
}

/// The system's monotonic clock in nanoseconds: comparable across
/// processes, unlike `Instant`.
pub fn monotonic_ns() -> u64 {
    match nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC) {
        Ok(t) => (t.tv_sec() as u64)
            .saturating_mul(1_000_000_000)
            .saturating_add(t.tv_nsec() as u64),
        Err(_) => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_keeps_its_code_and_message() {
        let f = Failure::new(Error::InUse, "profile 3 is enabled by another client");
        assert_eq!(f.error(), Error::InUse);
        assert_eq!(
            Failure::from(Error::Status(403)).error(),
            Error::Status(403)
        );
    }

    #[test]
    fn the_monotonic_clock_moves_forward() {
        let a = monotonic_ns();
        let b = monotonic_ns();
        assert!(a > 0 && b >= a);
    }
}
