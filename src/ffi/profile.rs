//! `sip_profile`: one profile handle (`CSIPProfile` / `CSIPManagedProfile`),
//! its typed getters and setters (ref §4), and the key constants.

use super::boundary::{
    argument, bad_argument, copy_out, guard, out_argument, status, string_argument, type_info,
    type_info_out, write,
};
use super::lists::sip_str_list;
use crate::Result;
use crate::client::ProfileHandle;
use crate::profile::Status;
use std::ffi::c_char;

/// A profile handle, owned by the caller; free with `sip_profile_free`.
/// Handles from a managed registry accept setters; all handles of one
/// profile in one registry share their data.
pub struct sip_profile {
    pub(crate) inner: ProfileHandle,
}

/// Profile classes (ref §3.3).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum sip_profile_class {
    /// IETF SIP (`"IETF"`).
    SIP_PROFILE_CLASS_INTERNET = 0,
    /// 3GPP IMS (`"ims"`).
    SIP_PROFILE_CLASS_IMS = 1,
    /// Anything else.
    SIP_PROFILE_CLASS_OTHER = 2,
}

/// A profile type. `profile_class` holds a `sip_profile_class` value (an
/// integer, so that an out-of-range value from C is an error, not undefined
/// behaviour). `name` is NUL-terminated, at most 25 bytes: "IETF" or "ims".
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct sip_profile_type_info {
    /// A `sip_profile_class` value.
    pub profile_class: u32,
    /// NUL-terminated type name.
    pub name: [c_char; 26],
}

/// Registration status (ref §3.2).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum sip_profile_status {
    /// Not registered.
    SIP_PROFILE_STATUS_UNREGISTERED = 1,
    /// An un-REGISTER is in progress.
    SIP_PROFILE_STATUS_UNREGISTRATION_IN_PROGRESS = 2,
    /// Registering, or waiting to retry.
    SIP_PROFILE_STATUS_REGISTRATION_IN_PROGRESS = 3,
    /// Registered.
    SIP_PROFILE_STATUS_REGISTERED = 4,
}

/// # Safety
/// `p` is NULL or a live profile of this library.
unsafe fn handle<'a>(p: *const sip_profile) -> Result<&'a ProfileHandle> {
    // SAFETY: forwarded caller guarantee.
    Ok(&unsafe { argument(p, "profile") }?.inner)
}

/// The handle of a profile to change. Shared access only: other threads may
/// be reading the same handle; its setters take its data's lock (and refuse
/// a user-registry handle with `SIP_ERR_ACCESS_DENIED`).
///
/// # Safety
/// `p` is NULL or a live profile of this library.
unsafe fn handle_to_set<'a>(p: *mut sip_profile) -> Result<&'a ProfileHandle> {
    // SAFETY: forwarded caller guarantee.
    unsafe { handle(p.cast_const()) }
}

/// Frees a profile handle. The last handle of a profile in a registry
/// disables it for that registry and stops its events there. NULL is a no-op.
#[unsafe(no_mangle)]
pub extern "C" fn sip_profile_free(profile: *mut sip_profile) {
    guard((), || {
        if !profile.is_null() {
            // SAFETY: from Box::into_raw in this library; freed once.
            drop(unsafe { Box::from_raw(profile) });
        }
    })
}

/// Writes the profile's type into `*out`.
#[unsafe(no_mangle)]
pub extern "C" fn sip_profile_type(
    profile: *const sip_profile,
    out: *mut sip_profile_type_info,
) -> i32 {
    status(|| {
        // SAFETY: pointers NULL or valid.
        let h = unsafe { handle(profile) }?;
        let t = h.with_type(type_info_out);
        // SAFETY: out NULL or writable.
        unsafe { write(out, t) }
    })
}

/// The registration status as this handle's registry last saw it.
/// `SIP_PROFILE_STATUS_UNREGISTERED` for NULL.
#[unsafe(no_mangle)]
pub extern "C" fn sip_profile_registration_status(
    profile: *const sip_profile,
) -> sip_profile_status {
    guard(sip_profile_status::SIP_PROFILE_STATUS_UNREGISTERED, || {
        // SAFETY: NULL or valid.
        match unsafe { handle(profile) } {
            Ok(h) => match h.status() {
                Status::Unregistered => sip_profile_status::SIP_PROFILE_STATUS_UNREGISTERED,
                Status::UnregistrationInProgress => {
                    sip_profile_status::SIP_PROFILE_STATUS_UNREGISTRATION_IN_PROGRESS
                }
                Status::RegistrationInProgress => {
                    sip_profile_status::SIP_PROFILE_STATUS_REGISTRATION_IN_PROGRESS
                }
                Status::Registered => sip_profile_status::SIP_PROFILE_STATUS_REGISTERED,
            },
            Err(_) => sip_profile_status::SIP_PROFILE_STATUS_UNREGISTERED,
        }
    })
}

/// True when this handle's registry enabled the profile and it is
/// registered (ref §5.8). False for NULL.
#[unsafe(no_mangle)]
pub extern "C" fn sip_profile_is_context_active(profile: *const sip_profile) -> bool {
    guard(false, || {
        // SAFETY: NULL or valid.
        unsafe { handle(profile) }.is_ok_and(|h| h.is_context_active())
    })
}

/// The registration binding's id; 0 unless registered.
#[unsafe(no_mangle)]
pub extern "C" fn sip_profile_context_id(profile: *const sip_profile) -> u32 {
    guard(0, || {
        // SAFETY: NULL or valid.
        unsafe { handle(profile) }.map_or(0, |h| h.context_id())
    })
}

/// The profile's last registration attempt (contract §8.3): `*error` gets 0
/// if it succeeded or none was made, else a negative code or a SIP status;
/// `*retry_in_ms` the time until the next attempt, 0 if none is scheduled.
/// Either pointer may be NULL. Failed attempts that will be retried are not
/// error callbacks (the profile stays enabled): this is where they show.
#[unsafe(no_mangle)]
pub extern "C" fn sip_profile_last_attempt(
    profile: *const sip_profile,
    error: *mut i32,
    retry_in_ms: *mut u32,
) -> i32 {
    super::boundary::status(|| {
        // SAFETY: NULL or valid.
        let h = unsafe { handle(profile) }?;
        let (e, retry) = h.last_attempt();
        if !error.is_null() {
            // SAFETY: non-NULL, writable per the contract.
            unsafe { error.write(e) };
        }
        if !retry_in_ms.is_null() {
            let ms = u32::try_from(retry.as_millis()).unwrap_or(u32::MAX);
            // SAFETY: non-NULL, writable per the contract.
            unsafe { retry_in_ms.write(ms) };
        }
        Ok(())
    })
}

/// A new, unsaved copy of a managed profile's configuration (ref §2.8): id 0,
/// a new Contact user, no passwords, not default. Owned by the caller.
/// `SIP_ERR_ACCESS_DENIED` for a user-registry profile, `SIP_ERR_BAD_HANDLE`
/// for one never saved or whose registry is gone.
#[unsafe(no_mangle)]
pub extern "C" fn sip_profile_clone(
    profile: *const sip_profile,
    out: *mut *mut sip_profile,
) -> i32 {
    status(|| {
        // SAFETY: NULL or valid.
        let h = unsafe { handle(profile) }?;
        out_argument(out, "out")?;
        let c = h.clone_profile()?;
        // SAFETY: out checked non-NULL.
        unsafe { write(out, Box::into_raw(Box::new(sip_profile { inner: c }))) }
    })
}

/// Reads a u32 parameter (ref §4.2). `SIP_ERR_NOT_FOUND` if the key is not
/// a u32 key or has no value.
#[unsafe(no_mangle)]
pub extern "C" fn sip_profile_get_u32(profile: *const sip_profile, key: u32, out: *mut u32) -> i32 {
    status(|| {
        out_argument(out, "out")?;
        // SAFETY: NULL or valid.
        let v = unsafe { handle(profile) }?.get_u32(key)?;
        // SAFETY: out NULL or writable.
        unsafe { write(out, v) }
    })
}

/// Reads a bool parameter (ref §4.2).
#[unsafe(no_mangle)]
pub extern "C" fn sip_profile_get_bool(
    profile: *const sip_profile,
    key: u32,
    out: *mut bool,
) -> i32 {
    status(|| {
        out_argument(out, "out")?;
        // SAFETY: NULL or valid.
        let v = unsafe { handle(profile) }?.get_bool(key)?;
        // SAFETY: out NULL or writable.
        unsafe { write(out, v) }
    })
}

/// Reads a string parameter into `buf` (contract §5.3): on `SIP_OK` the value
/// and a NUL are written and `*len` is its length; too small a `capacity`
/// writes nothing, sets `*len` to the length needed and returns
/// `SIP_ERR_OVERFLOW` (`buf` may be NULL with `capacity` 0).
#[unsafe(no_mangle)]
pub extern "C" fn sip_profile_get_str(
    profile: *const sip_profile,
    key: u32,
    buf: *mut c_char,
    capacity: usize,
    len: *mut usize,
) -> i32 {
    string_out(profile, None, key, buf, capacity, len)
}

/// Reads a string-array parameter as a new list owned by the caller.
#[unsafe(no_mangle)]
pub extern "C" fn sip_profile_get_str_array(
    profile: *const sip_profile,
    key: u32,
    out: *mut *mut sip_str_list,
) -> i32 {
    status(|| {
        // SAFETY: NULL or valid.
        let v = unsafe { handle(profile) }?.get_str_array(key)?;
        out_argument(out, "out")?;
        let l = Box::into_raw(Box::new(sip_str_list::from_strings(v)));
        // SAFETY: out checked non-NULL.
        unsafe { write(out, l) }
    })
}

/// Reads a per-server parameter of `server` (`SIP_SERVER_REGISTRAR` or
/// `SIP_SERVER_OUTBOUND_PROXY`) into `buf`, as `sip_profile_get_str`. The
/// password gives `SIP_ERR_PERMISSION_DENIED`.
#[unsafe(no_mangle)]
pub extern "C" fn sip_profile_get_server_str(
    profile: *const sip_profile,
    server: u32,
    key: u32,
    buf: *mut c_char,
    capacity: usize,
    len: *mut usize,
) -> i32 {
    string_out(profile, Some(server), key, buf, capacity, len)
}

/// The string getters' shared body: arguments checked before the lookup,
/// then the value of `key` (of `server` if given) copied out by the rules of
/// contract §5.3, under the handle's read lock (no copy in between).
fn string_out(
    profile: *const sip_profile,
    server: Option<u32>,
    key: u32,
    buf: *mut c_char,
    capacity: usize,
    len: *mut usize,
) -> i32 {
    status(|| {
        out_argument(len, "len")?;
        if buf.is_null() && capacity != 0 {
            return Err(bad_argument(
                "buf",
                &format!("is NULL but capacity is {capacity}"),
            ));
        }
        // SAFETY: NULL or valid.
        let h = unsafe { handle(profile) }?;
        // SAFETY: buf valid for capacity bytes, len writable (caller).
        let put = |s: &str| unsafe { copy_out(s, buf, capacity, len) };
        match server {
            None => h.with_str(key, put),
            Some(server) => h.with_server_str(server, key, put),
        }?
    })
}

/// Sets a u32 parameter on a managed profile (ref §4.3); saved by
/// `sip_managed_profile_registry_save`. `SIP_ERR_ACCESS_DENIED` on a
/// user-registry profile.
#[unsafe(no_mangle)]
pub extern "C" fn sip_profile_set_u32(profile: *mut sip_profile, key: u32, value: u32) -> i32 {
    status(|| {
        // SAFETY: NULL or valid.
        unsafe { handle_to_set(profile) }?.set_u32(key, value)
    })
}

/// Sets a bool parameter on a managed profile (ref §4.3).
#[unsafe(no_mangle)]
pub extern "C" fn sip_profile_set_bool(profile: *mut sip_profile, key: u32, value: bool) -> i32 {
    status(|| {
        // SAFETY: NULL or valid.
        unsafe { handle_to_set(profile) }?.set_bool(key, value)
    })
}

/// Sets a string parameter on a managed profile (ref §4.3); "" removes an
/// extension value. The AOR must be a URI (`SIP_ERR_ARGUMENT`).
#[unsafe(no_mangle)]
pub extern "C" fn sip_profile_set_str(
    profile: *mut sip_profile,
    key: u32,
    value: *const c_char,
) -> i32 {
    status(|| {
        // SAFETY: value NULL or a C string.
        let v = unsafe { string_argument(value, "value") }?;
        // SAFETY: NULL or valid.
        unsafe { handle_to_set(profile) }?.set_str(key, v)
    })
}

/// Sets a string-array parameter on a managed profile (ref §4.3) from
/// `count` strings at `values` (NULL allowed when `count` is 0); an empty
/// array removes an extension value.
#[unsafe(no_mangle)]
pub extern "C" fn sip_profile_set_str_array(
    profile: *mut sip_profile,
    key: u32,
    values: *const *const c_char,
    count: usize,
) -> i32 {
    status(|| {
        if values.is_null() && count != 0 {
            return Err(bad_argument(
                "values",
                &format!("is NULL but count is {count}"),
            ));
        }
        let mut v = Vec::with_capacity(count.min(4096));
        for i in 0..count {
            // SAFETY: values points to count readable pointers (caller).
            let p = unsafe { *values.add(i) };
            // SAFETY: each is NULL or a C string.
            v.push(unsafe { string_argument(p, &format!("values[{i}]")) }?.to_owned());
        }
        // SAFETY: NULL or valid.
        unsafe { handle_to_set(profile) }?.set_str_array(key, v)
    })
}

/// Sets a per-server parameter of `server` on a managed profile (ref §4.3,
/// §4.4); "" deletes. An unknown server gives `SIP_ERR_ARGUMENT`.
#[unsafe(no_mangle)]
pub extern "C" fn sip_profile_set_server_str(
    profile: *mut sip_profile,
    server: u32,
    key: u32,
    value: *const c_char,
) -> i32 {
    status(|| {
        // SAFETY: value NULL or a C string.
        let v = unsafe { string_argument(value, "value") }?;
        // SAFETY: NULL or valid.
        unsafe { handle_to_set(profile) }?.set_server_str(server, key, v)
    })
}

/// Sets the profile's type on a managed profile (checked at save).
#[unsafe(no_mangle)]
pub extern "C" fn sip_profile_set_type(
    profile: *mut sip_profile,
    r#type: *const sip_profile_type_info,
) -> i32 {
    status(|| {
        // SAFETY: type NULL or readable.
        let t = unsafe { type_info(r#type) }?;
        // SAFETY: NULL or valid.
        unsafe { handle_to_set(profile) }?.set_type(t)
    })
}
