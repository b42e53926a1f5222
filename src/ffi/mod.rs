//! The C boundary: converts and checks arguments, catches panics, and calls
//! the safe core. Every `unsafe` block of the crate lives here, each with its
//! invariant. One file per C type (see `../../include/sipprofile.h`).

// C names are the contract (`sip_profile`, `SIP_PROFILE_CREATED`), not Rust style.
#![allow(non_camel_case_types)]
// Exported functions take C pointers by design; each is checked (NULL) and
// documented in the header. Marking them `unsafe fn` would not change C callers.
#![allow(clippy::not_unsafe_ptr_arg_deref)]

pub mod boundary;
pub mod codes;
pub mod lists;
pub mod log;
pub mod network;
pub mod observer;
pub mod profile;
pub mod registry;
