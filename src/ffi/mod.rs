//! The C boundary: converts and checks arguments, catches panics, and calls
//! the safe core. Every `unsafe` block of the crate lives here, each with its
//! invariant. One file per C type (see `../../include/sipprofile.h`).

// C names are the contract (`sip_profile`, `SIP_PROFILE_CREATED`), not Rust style.
#![allow(non_camel_case_types)]

pub mod boundary;
pub mod codes;
pub mod lists;
pub mod log;
pub mod observer;
pub mod profile;
pub mod registry;
