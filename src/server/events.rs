//! What travels from the profile server to a registry's observer.

use crate::profile::{ProfileData, RegistrationInfo};
use std::sync::Arc;
use std::time::Instant;

/// Observer events, with the values of `sip_profile_event` (ref §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    Created = 0,
    Updated = 1,
    Registered = 2,
    Deregistered = 3,
    Destroyed = 4,
    ForciblyDisabled = 5,
}

/// The profile as the server saw it when the event happened; the receiving
/// registry copies it into its handles before calling the observer (ref §5.2),
/// so no event loses data on the way (contract §7.5).
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// The stored data; `None` in events that change only the registration
    /// (REGISTERED, DEREGISTERED, FORCIBLY_DISABLED, errors): the receiving
    /// handles' data is already current, and 10,000 registrations need not
    /// carry 10,000 copies of it.
    pub data: Option<ProfileData>,
    /// When it was taken, in the server's order of registration-state
    /// changes: a registry applies `info` only when newer than what its
    /// handles hold (see `server::State::seq`).
    pub seq: u64,
    /// The server's revision of `data` (see `server::Entry`).
    pub revision: u64,
    pub info: RegistrationInfo,
    pub is_default: bool,
}

#[derive(Debug, Clone)]
pub enum Delivery {
    /// The instant is when the server published the event.
    Event(u32, Event, Option<Arc<Snapshot>>, Instant),
    Error(u32, i32, Option<Arc<Snapshot>>),
}

/// What a registry's owner wants to hear. Called on a library thread (the
/// engine's, for the events of its steps, or a delivery thread of the
/// server), one call at a time per registry, never with a library lock held.
pub trait Observer: Send + Sync {
    fn event(&self, profile_id: u32, event: Event);
    /// `event`, also told when the server published it (the change's own
    /// instant): what a delivery-latency measurement needs.
    fn event_at(&self, profile_id: u32, event: Event, published: Instant) {
        let _ = published;
        self.event(profile_id, event)
    }
    fn error(&self, profile_id: u32, error: i32);
}

impl Snapshot {
    /// The data of a full snapshot (lookups always carry it).
    pub fn data(&self) -> &ProfileData {
        self.data.as_ref().expect("full snapshot")
    }
}
