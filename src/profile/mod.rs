//! The profile model: a profile's stored data, its registration-time state,
//! and the typed getter/setter rules of ref §4.2–4.3.

/// cbindgen:ignore
pub mod access;
pub mod keys;
/// cbindgen:ignore
pub mod model;

pub use model::{ProfileData, RegistrationInfo, ServerParams, Status, TypeInfo};
