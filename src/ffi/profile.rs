//! `sip_profile`: one profile handle (`CSIPProfile` / `CSIPManagedProfile`),
//! its typed getters and setters (ref §4), and the key constants.

use super::boundary::{
    copy_out, guard, reference, reference_mut, status, string, type_info, type_info_out, write,
};
use super::lists::sip_str_list;
use crate::client::ProfileHandle;
use crate::profile::access;
use crate::profile::{Status, keys};
use crate::{Error, Result};
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

/// u32, read-only: profile id (0 until saved).
pub const SIP_KEY_PROFILE_ID: u32 = 1;
/// string: user-visible provider name.
pub const SIP_KEY_PROVIDER_NAME: u32 = 2;
/// u32: network interface index the profile's traffic must use (0: any).
pub const SIP_KEY_ACCESS_POINT_ID: u32 = 3;
/// bool: SigComp (stored only; registration is uncompressed).
pub const SIP_KEY_SIG_COMP: u32 = 4;
/// bool: security negotiation (sec-agree).
pub const SIP_KEY_SECURITY_NEGOTIATION: u32 = 5;
/// bool: registered even when no registry enabled it.
pub const SIP_KEY_AUTO_REGISTRATION: u32 = 6;
/// string: public identity (address-of-record URI).
pub const SIP_KEY_USER_AOR: u32 = 7;
/// bool, read-only: registered.
pub const SIP_KEY_PROFILE_REGISTERED: u32 = 8;
/// string array, read-only: AORs actually registered.
pub const SIP_KEY_REGISTERED_AORS: u32 = 9;
/// string, read-only: negotiated security mechanism.
pub const SIP_KEY_NEGOTIATED_SECURITY_MECHANISM: u32 = 10;
/// bool: is the default profile (set true and save to make it default).
pub const SIP_KEY_DEFAULT_PROFILE: u32 = 11;
/// string array: extra Contact parameters ("name[=value]").
pub const SIP_KEY_CONTACT_HEADER_PARAMS: u32 = 12;
/// string, read-only: the registered Contact value.
pub const SIP_KEY_REGISTERED_CONTACT: u32 = 13;
/// u32: SNAP id (stored only).
pub const SIP_KEY_SNAP_ID: u32 = 14;
/// string, read-only: generated Contact user part.
pub const SIP_KEY_CONTACT_HEADER_USER: u32 = 15;
/// u32: IP TOS for signalling.
pub const SIP_KEY_SO_IP_TOS: u32 = 16;
/// string: network interface name the profile's traffic must use.
pub const SIP_KEY_ACCESS_POINT_NAME: u32 = 17;
/// string: SNAP name (stored only).
pub const SIP_KEY_SNAP_NAME: u32 = 18;
/// bool: resolve the outbound proxy dynamically.
pub const SIP_KEY_RESOLVE_PROXY: u32 = 19;
/// string: primary APN.
pub const SIP_KEY_PRIMARY_APN: u32 = 20;
/// string: secondary APN.
pub const SIP_KEY_SECONDARY_APN: u32 = 21;
/// u32: bearer type (0 any, 1 WLAN, 2 cellular).
pub const SIP_KEY_BEARER_TYPE: u32 = 22;
/// Server selector: the registrar.
pub const SIP_SERVER_REGISTRAR: u32 = 130;
/// Server selector: the outbound proxy.
pub const SIP_SERVER_OUTBOUND_PROXY: u32 = 131;
/// per-server string: digest user name.
pub const SIP_KEY_DIGEST_USER_NAME: u32 = 150;
/// per-server string: digest realm.
pub const SIP_KEY_DIGEST_REALM: u32 = 151;
/// per-server string: server URI.
pub const SIP_KEY_SERVER_ADDRESS: u32 = 152;
/// string: IMS private identity.
pub const SIP_KEY_PRIVATE_IDENTITY: u32 = 500;
/// per-server string, write-only: digest password.
pub const SIP_KEY_DIGEST_PASSWORD: u32 = 501;
/// string array: extra REGISTER headers ("Name: value").
pub const SIP_KEY_HEADERS: u32 = 502;
/// u32: IMS registration modes allowed.
pub const SIP_KEY_ALLOW_IMS_REGISTRATION: u32 = 503;
/// bool: UI hint, do not edit.
pub const SIP_KEY_PROFILE_LOCKED: u32 = 504;
/// bool: auto-register only on the home network (stored only).
pub const SIP_KEY_ALLOW_AUTO_REGISTRATION_ONLY_ON_HOME_NETWORK: u32 = 505;
/// u32: Expires asked for in REGISTER (default 3600 IETF, 600000 ims).
pub const SIP_KEY_REGISTRATION_EXPIRES: u32 = 1000;
/// u32, read-only: expiry granted in the last 2xx; 0 when unregistered.
pub const SIP_KEY_GRANTED_EXPIRES: u32 = 1001;
/// string array, read-only: Service-Route of the last 2xx.
pub const SIP_KEY_SERVICE_ROUTE: u32 = 1002;
/// string, read-only: public GRUU granted.
pub const SIP_KEY_PUB_GRUU: u32 = 1003;
/// string, read-only: temporary GRUU granted.
pub const SIP_KEY_TEMP_GRUU: u32 = 1004;
/// u32: first retry delay base in seconds (default 30).
pub const SIP_KEY_RETRY_BASE_SECONDS: u32 = 1005;
/// u32: retry delay cap in seconds (default 1800).
pub const SIP_KEY_RETRY_MAX_SECONDS: u32 = 1006;
/// string: `+sip.instance` URN (generated `urn:uuid:` if unset).
pub const SIP_KEY_INSTANCE_ID: u32 = 1007;
/// string: PEM file of extra trust anchors for TLS.
pub const SIP_KEY_TLS_CA_FILE: u32 = 1008;
/// string: the Contact to register instead of the library's own (the
/// application's SIP stack), a `sip:`/`sips:` URI; empty = the library's.
pub const SIP_KEY_CONTACT_URI: u32 = 1009;
/// string: weakest digest algorithm answered, `MD5` (default), `SHA-256` or
/// `SHA-512-256`; weaker challenges fail the attempt with
/// `SIP_ERR_PERMISSION_DENIED`. Answers without qop (RFC 2069) only with
/// `MD5`. Unset (or set to ""), MD5 is refused once SHA-256 or better has
/// succeeded at the registrar; set to `MD5`, MD5 is always answered.
pub const SIP_KEY_DIGEST_MIN_ALGORITHM: u32 = 1010;
/// u32: keep-alive period of the profile's flow in seconds (CRLF on TCP/TLS,
/// STUN on UDP), at most 3600; 0 = the library's default (the registrar's
/// Flow-Timer if it sent one).
pub const SIP_KEY_KEEPALIVE_SECONDS: u32 = 1011;
/// bool: RFC 5626 outbound: register with `reg-id`, `+sip.instance` and
/// `;ob`, keep the flow alive, register again on a new flow when it fails.
pub const SIP_KEY_OUTBOUND: u32 = 1012;

/// Major version of this header.
pub const SIPPROFILE_VERSION_MAJOR: u32 = 0;
/// Minor version of this header.
pub const SIPPROFILE_VERSION_MINOR: u32 = 1;
/// Patch version of this header.
pub const SIPPROFILE_VERSION_PATCH: u32 = 0;

/// # Safety
/// `p` is NULL or a live profile of this library.
unsafe fn handle<'a>(p: *const sip_profile) -> Result<&'a ProfileHandle> {
    // SAFETY: forwarded caller guarantee.
    Ok(&unsafe { reference(p) }?.inner)
}

/// # Safety
/// `p` is NULL or a live profile of this library.
unsafe fn managed<'a>(p: *mut sip_profile) -> Result<&'a ProfileHandle> {
    // SAFETY: forwarded caller guarantee.
    let h = &unsafe { reference_mut(p) }?.inner;
    if !h.managed {
        return Err(Error::AccessDenied);
    }
    Ok(h)
}

/// Runs a getter on the handle's data. Only `SIP_KEY_DEFAULT_PROFILE` asks
/// the server (ref §5.9); every other key reads the handle alone, without
/// touching the server's lock.
fn read<T>(h: &ProfileHandle, key: u32, f: impl FnOnce(&access::View) -> Result<T>) -> Result<T> {
    let is_default = (key == keys::DEFAULT_PROFILE).then(|| h.is_default());
    let b = h.block.read();
    let mut v = b.view();
    if let Some(d) = is_default {
        v.is_default = d;
    }
    f(&v)
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
        let t = type_info_out(&h.block.read().data.type_info);
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
            Ok(h) => match h.block.read().info.status {
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
        unsafe { handle(profile) }.is_ok_and(|h| {
            let b = h.block.read();
            b.enabled && b.info.status == Status::Registered
        })
    })
}

/// The registration binding's id; 0 unless registered.
#[unsafe(no_mangle)]
pub extern "C" fn sip_profile_context_id(profile: *const sip_profile) -> u32 {
    guard(0, || {
        // SAFETY: NULL or valid.
        unsafe { handle(profile) }.map_or(0, |h| {
            let b = h.block.read();
            if b.info.status == Status::Registered {
                b.info.context_id
            } else {
                0
            }
        })
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
        if out.is_null() {
            return Err(Error::Argument);
        }
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
        if out.is_null() {
            return Err(Error::Argument);
        }
        // SAFETY: NULL or valid.
        let v = read(unsafe { handle(profile) }?, key, |v| {
            access::get_u32(v, key)
        })?;
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
        if out.is_null() {
            return Err(Error::Argument);
        }
        // SAFETY: NULL or valid.
        let v = read(unsafe { handle(profile) }?, key, |v| {
            access::get_bool(v, key)
        })?;
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
    string_out(profile, key, buf, capacity, len, |v| {
        access::get_str(v, key)
    })
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
        let v = read(unsafe { handle(profile) }?, key, |v| {
            access::get_str_array(v, key)
        })?;
        if out.is_null() {
            return Err(Error::Argument);
        }
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
    string_out(profile, key, buf, capacity, len, |v| {
        access::get_server_str(v, server, key)
    })
}

/// The string getters' shared body: arguments checked before the lookup,
/// then the value copied out by the rules of contract §5.3.
fn string_out(
    profile: *const sip_profile,
    key: u32,
    buf: *mut c_char,
    capacity: usize,
    len: *mut usize,
    get: impl for<'v, 'a> FnOnce(&'v access::View<'a>) -> Result<&'a str>,
) -> i32 {
    status(|| {
        if len.is_null() || (buf.is_null() && capacity != 0) {
            return Err(Error::Argument);
        }
        // SAFETY: NULL or valid.
        let h = unsafe { handle(profile) }?;
        read(h, key, |v| {
            let s = get(v)?;
            // SAFETY: buf valid for capacity bytes, len writable (caller).
            unsafe { copy_out(s, buf, capacity, len) }
        })
    })
}

fn edit(
    profile: *mut sip_profile,
    f: impl FnOnce(&mut crate::profile::ProfileData) -> Result<()>,
) -> i32 {
    status(|| {
        // SAFETY: NULL or valid.
        let h = unsafe { managed(profile) }?;
        let mut b = h.block.write();
        // Apply to a copy so that a failed set changes nothing.
        let mut d = b.data.clone();
        f(&mut d)?;
        b.data = d;
        Ok(())
    })
}

/// Sets a u32 parameter on a managed profile (ref §4.3); saved by
/// `sip_managed_profile_registry_save`. `SIP_ERR_ACCESS_DENIED` on a
/// user-registry profile.
#[unsafe(no_mangle)]
pub extern "C" fn sip_profile_set_u32(profile: *mut sip_profile, key: u32, value: u32) -> i32 {
    edit(profile, |d| access::set_u32(d, key, value))
}

/// Sets a bool parameter on a managed profile (ref §4.3).
#[unsafe(no_mangle)]
pub extern "C" fn sip_profile_set_bool(profile: *mut sip_profile, key: u32, value: bool) -> i32 {
    edit(profile, |d| access::set_bool(d, key, value))
}

/// Sets a string parameter on a managed profile (ref §4.3); "" removes an
/// extension value. The AOR must be a URI (`SIP_ERR_ARGUMENT`).
#[unsafe(no_mangle)]
pub extern "C" fn sip_profile_set_str(
    profile: *mut sip_profile,
    key: u32,
    value: *const c_char,
) -> i32 {
    // SAFETY: value NULL or a C string.
    match unsafe { string(value) } {
        Ok(v) => edit(profile, |d| access::set_str(d, key, v)),
        Err(e) => e.code(),
    }
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
    let collected = guard(Err(Error::General), || {
        if values.is_null() && count != 0 {
            return Err(Error::Argument);
        }
        let mut v = Vec::with_capacity(count.min(4096));
        for i in 0..count {
            // SAFETY: values points to count readable pointers (caller).
            let p = unsafe { *values.add(i) };
            // SAFETY: each is NULL or a C string.
            v.push(unsafe { string(p) }?.to_owned());
        }
        Ok(v)
    });
    match collected {
        Ok(v) => edit(profile, |d| access::set_str_array(d, key, v)),
        Err(e) => e.code(),
    }
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
    // SAFETY: value NULL or a C string.
    match unsafe { string(value) } {
        Ok(v) => edit(profile, |d| access::set_server_str(d, server, key, v)),
        Err(e) => e.code(),
    }
}

/// Sets the profile's type on a managed profile (checked at save).
#[unsafe(no_mangle)]
pub extern "C" fn sip_profile_set_type(
    profile: *mut sip_profile,
    r#type: *const sip_profile_type_info,
) -> i32 {
    // SAFETY: type NULL or readable.
    match unsafe { type_info(r#type) } {
        Ok(t) => edit(profile, |d| {
            d.type_info = t;
            Ok(())
        }),
        Err(e) => e.code(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The header needs literal values; the core's key module is the source.
    #[test]
    fn key_constants_match_the_model() {
        assert_eq!(SIP_KEY_PROFILE_ID, keys::PROFILE_ID);
        assert_eq!(SIP_KEY_BEARER_TYPE, keys::BEARER_TYPE);
        assert_eq!(SIP_SERVER_OUTBOUND_PROXY, keys::SERVER_OUTBOUND_PROXY);
        assert_eq!(SIP_KEY_DIGEST_PASSWORD, keys::DIGEST_PASSWORD);
        assert_eq!(
            SIP_KEY_ALLOW_AUTO_REGISTRATION_ONLY_ON_HOME_NETWORK,
            keys::ALLOW_AUTO_REGISTRATION_ONLY_ON_HOME_NETWORK
        );
        assert_eq!(SIP_KEY_REGISTRATION_EXPIRES, keys::REGISTRATION_EXPIRES);
        assert_eq!(SIP_KEY_TLS_CA_FILE, keys::TLS_CA_FILE);
        assert_eq!(SIP_KEY_CONTACT_URI, keys::CONTACT_URI);
        assert_eq!(SIP_KEY_KEEPALIVE_SECONDS, keys::KEEPALIVE_SECONDS);
        assert_eq!(SIP_KEY_OUTBOUND, keys::OUTBOUND);
        assert_eq!(SIP_KEY_DIGEST_MIN_ALGORITHM, keys::DIGEST_MIN_ALGORITHM);
        assert_eq!(
            (
                SIPPROFILE_VERSION_MAJOR,
                SIPPROFILE_VERSION_MINOR,
                SIPPROFILE_VERSION_PATCH
            )
                .0
                .to_string(),
            env!("CARGO_PKG_VERSION_MAJOR")
        );
    }
}
