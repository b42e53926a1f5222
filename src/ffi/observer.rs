//! `sip_profile_registry_observer`: the C observer, adapted to the core's
//! `Observer` trait.

use crate::client::{Event, Observer};
use std::ffi::c_void;

/// Registry events (ref §3.1).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum sip_profile_event {
    /// A profile was added to the store (sent to every registry).
    SIP_PROFILE_CREATED = 0,
    /// A profile was saved with changes.
    SIP_PROFILE_UPDATED = 1,
    /// A profile became registered.
    SIP_PROFILE_REGISTERED = 2,
    /// A profile is no longer registered.
    SIP_PROFILE_DEREGISTERED = 3,
    /// A profile was removed from the store.
    SIP_PROFILE_DESTROYED = 4,
    /// `sip_profile_registry_force_disable` tore the registration down.
    SIP_PROFILE_FORCIBLY_DISABLED = 5,
    /// A registration attempt failed and another is scheduled; the profile
    /// stays enabled. Only to registries made with
    /// `SIP_REGISTRY_ATTEMPT_EVENTS` (see `sip_profile_last_attempt`).
    SIP_PROFILE_ATTEMPT_FAILED = 6,
}

/// Callbacks of a registry. They run in the application's process (never in
/// the profile server), one at a time and in order per registry, never
/// inside the caller's API call and never with a library lock held; the
/// registry's handles already show the new data when they run. They may
/// call any function of this API. Either function pointer may be NULL.
/// `context` is passed back untouched and may be freed once
/// `*_registry_free` has returned. By default they run on a delivery thread
/// the process's registries of one store share: while one blocks, the other
/// registries' callbacks wait about 50 ms at most, then go on on another
/// thread; SIP never waits for them. With `SIP_REGISTRY_APP_DISPATCH` they
/// run only inside `*_registry_dispatch`, on its caller's thread.
///
/// While callbacks wait, events of one profile merge where nothing is lost
/// to the observer: an `UPDATED` while one of that profile still waits (it
/// runs with the newest data), a `REGISTERED`, `DEREGISTERED` or
/// `ATTEMPT_FAILED` equal to that profile's newest waiting state. A callback
/// that does not return pins at most 211 KiB of waiting callbacks up to 256
/// profiles, about 0.8 KiB per profile beyond: past 4,096 waiting, each
/// profile keeps its newest callback of each kind, in order (README,
/// "Threads and callbacks").
#[repr(C)]
#[derive(Clone, Copy)]
pub struct sip_profile_registry_observer {
    /// Passed back untouched.
    pub context: *mut c_void,
    /// A profile event (see `sip_profile_event`).
    pub event_occurred: Option<
        unsafe extern "C" fn(context: *mut c_void, profile_id: u32, event: sip_profile_event),
    >,
    /// The profile's registration failed and it is no longer enabled by any
    /// registry; `error` is a negative status code or a SIP status (e.g. 403).
    pub error_occurred:
        Option<unsafe extern "C" fn(context: *mut c_void, profile_id: u32, error: i32)>,
}

pub(crate) struct CObserver(pub sip_profile_registry_observer);

// SAFETY: the contract tells callers that callbacks run on library threads;
// the context is only handed back to their own callbacks.
unsafe impl Send for CObserver {}
// SAFETY: calls are serialised per registry by its mailbox (one callback of
// a registry at a time, whichever library thread runs it).
unsafe impl Sync for CObserver {}

impl Observer for CObserver {
    fn event(&self, profile_id: u32, event: Event) {
        let ev = match event {
            Event::Created => sip_profile_event::SIP_PROFILE_CREATED,
            Event::Updated => sip_profile_event::SIP_PROFILE_UPDATED,
            Event::Registered => sip_profile_event::SIP_PROFILE_REGISTERED,
            Event::Deregistered => sip_profile_event::SIP_PROFILE_DEREGISTERED,
            Event::Destroyed => sip_profile_event::SIP_PROFILE_DESTROYED,
            Event::ForciblyDisabled => sip_profile_event::SIP_PROFILE_FORCIBLY_DISABLED,
            Event::AttemptFailed => sip_profile_event::SIP_PROFILE_ATTEMPT_FAILED,
        };
        if let Some(f) = self.0.event_occurred {
            // SAFETY: function pointer and context supplied by the caller.
            unsafe { f(self.0.context, profile_id, ev) }
        }
    }

    fn error(&self, profile_id: u32, error: i32) {
        if let Some(f) = self.0.error_occurred {
            // SAFETY: function pointer and context supplied by the caller.
            unsafe { f(self.0.context, profile_id, error) }
        }
    }
}
