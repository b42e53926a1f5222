//! `sip_profile_registry` (user registry, `CSIPProfileRegistry`) and
//! `sip_managed_profile_registry` (`CSIPManagedProfileRegistry`). The base
//! functions exist once per prefix and share one implementation here.

use super::boundary::{
    argument, bad_argument, reference, status, string_argument, type_info, type_info_out, write,
};
use super::lists::sip_profile_list;
use super::observer::{CObserver, sip_profile_registry_observer};
use super::profile::{sip_profile, sip_profile_type_info};
use crate::client::{Flags, ProfileHandle, Registry};
use crate::profile::TypeInfo;
use crate::{Error, Result};
use std::ffi::{c_char, c_int};
use std::path::PathBuf;
use std::sync::Arc;

/// A user registry: retrieves, enables and disables profiles. Create with
/// `sip_profile_registry_new`, free with `sip_profile_registry_free`.
pub struct sip_profile_registry {
    pub(crate) inner: Arc<Registry>,
}

/// A managed (provisioning) registry: also creates, saves and destroys
/// profiles. Create with `sip_managed_profile_registry_new`, free with
/// `sip_managed_profile_registry_free`.
pub struct sip_managed_profile_registry {
    pub(crate) inner: Arc<Registry>,
}

/// # Safety
/// Pointers are NULL or valid as documented on the exported functions.
unsafe fn open(
    store_path: *const c_char,
    observer: *const sip_profile_registry_observer,
    managed: bool,
    flags: u32,
) -> Result<Arc<Registry>> {
    if flags & !(SIP_REGISTRY_APP_DISPATCH | SIP_REGISTRY_ATTEMPT_EVENTS) != 0 {
        crate::error::set_message(format!("flags: unknown bits {flags:#x}"));
        return Err(Error::Argument);
    }
    let flags = Flags {
        app_dispatch: flags & SIP_REGISTRY_APP_DISPATCH != 0,
        attempt_events: flags & SIP_REGISTRY_ATTEMPT_EVENTS != 0,
        hosting: None,
    };
    let path = if store_path.is_null() {
        None
    } else {
        // SAFETY: non-NULL C string per the function's contract.
        let s = unsafe { string_argument(store_path, "store_path") }?;
        if s.is_empty() {
            return Err(bad_argument(
                "store_path",
                "is empty (NULL means the default store)",
            ));
        }
        Some(PathBuf::from(s))
    };
    // SAFETY: NULL or a readable observer struct; copied here. One with no
    // callback is no observer (the registry then needs no thread).
    let obs = unsafe { observer.as_ref() }
        .filter(|o| o.event_occurred.is_some() || o.error_occurred.is_some())
        .map(|o| Box::new(CObserver(*o)) as Box<dyn crate::client::Observer>);
    Registry::open_with(path.as_deref(), managed, obs, flags)
}

/// Registry flag: callbacks run only inside `*_registry_dispatch`, on its
/// caller's thread; `*_registry_event_fd` polls readable while some wait.
pub const SIP_REGISTRY_APP_DISPATCH: u32 = 0x1;
/// Registry flag: also deliver `SIP_PROFILE_ATTEMPT_FAILED`.
pub const SIP_REGISTRY_ATTEMPT_EVENTS: u32 = 0x2;

fn base_event_fd(r: Result<&Arc<Registry>>) -> c_int {
    r.ok().and_then(|r| r.event_fd()).unwrap_or(-1)
}

fn base_dispatch(r: &Arc<Registry>, max: u32, ran: *mut u32) -> Result<()> {
    let n = r.dispatch(max)?;
    if !ran.is_null() {
        // SAFETY: ran is NULL (checked) or writable per the contract.
        unsafe { ran.write(n) };
    }
    Ok(())
}

fn handle_out(h: ProfileHandle, out: *mut *mut sip_profile) -> Result<()> {
    if out.is_null() {
        return Err(Error::Argument);
    }
    let b = Box::into_raw(Box::new(sip_profile { inner: h }));
    // SAFETY: out checked non-NULL; caller provides a writable pointer.
    unsafe { out.write(b) };
    Ok(())
}

fn list_out(v: Vec<ProfileHandle>, out: *mut *mut sip_profile_list) -> Result<()> {
    if out.is_null() {
        return Err(Error::Argument);
    }
    let list = sip_profile_list {
        items: v
            .into_iter()
            .map(|h| Some(Box::new(sip_profile { inner: h })))
            .collect(),
    };
    // SAFETY: out checked non-NULL.
    unsafe { out.write(Box::into_raw(Box::new(list))) };
    Ok(())
}

// ----- shared bodies of the base functions -----

fn base_profile(r: &Arc<Registry>, id: u32, out: *mut *mut sip_profile) -> Result<()> {
    if out.is_null() {
        return Err(Error::Argument);
    }
    handle_out(r.profile(id)?, out)
}

fn base_default(r: &Arc<Registry>, out: *mut *mut sip_profile) -> Result<()> {
    if out.is_null() {
        return Err(Error::Argument);
    }
    handle_out(r.default_profile()?, out)
}

fn base_profiles(r: &Arc<Registry>, out: *mut *mut sip_profile_list) -> Result<()> {
    if out.is_null() {
        return Err(Error::Argument);
    }
    list_out(r.profiles()?, out)
}

unsafe fn base_by_type(
    r: &Arc<Registry>,
    t: *const sip_profile_type_info,
    out: *mut *mut sip_profile_list,
) -> Result<()> {
    // SAFETY: forwarded caller guarantee.
    let t = unsafe { type_info(t) }?;
    if out.is_null() {
        return Err(Error::Argument);
    }
    list_out(r.profiles_by_type(&t)?, out)
}

unsafe fn base_by_aor(
    r: &Arc<Registry>,
    aor: *const c_char,
    out: *mut *mut sip_profile_list,
) -> Result<()> {
    // SAFETY: forwarded caller guarantee.
    let aor = unsafe { string_argument(aor, "aor") }?;
    if out.is_null() {
        return Err(Error::Argument);
    }
    list_out(r.profiles_by_aor(aor)?, out)
}

unsafe fn base_supported(
    r: &Arc<Registry>,
    types: *mut sip_profile_type_info,
    capacity: usize,
    count: *mut usize,
) -> Result<()> {
    let _ = r;
    if count.is_null() || (types.is_null() && capacity != 0) {
        return Err(Error::Argument);
    }
    let all = TypeInfo::supported();
    // SAFETY: count checked non-NULL.
    unsafe { count.write(all.len()) };
    if capacity < all.len() {
        return Err(Error::Overflow);
    }
    for (i, t) in all.iter().enumerate() {
        // SAFETY: types has room for capacity >= all.len() entries.
        unsafe { types.add(i).write(type_info_out(t)) };
    }
    Ok(())
}

unsafe fn base_last_error(r: &Arc<Registry>, p: *const sip_profile) -> i32 {
    // SAFETY: forwarded caller guarantee.
    match unsafe { reference(p) } {
        Ok(p) => r
            .last_registration_error(&p.inner)
            .unwrap_or_else(|e| e.code()),
        Err(e) => e.code(),
    }
}

/// # Safety
/// `r` is NULL or a live registry of this library.
unsafe fn user<'a>(r: *const sip_profile_registry) -> Result<&'a Arc<Registry>> {
    // SAFETY: forwarded caller guarantee.
    Ok(&unsafe { argument(r, "registry") }?.inner)
}

/// # Safety
/// `r` is NULL or a live registry of this library.
unsafe fn managed<'a>(r: *const sip_managed_profile_registry) -> Result<&'a Arc<Registry>> {
    // SAFETY: forwarded caller guarantee.
    Ok(&unsafe { argument(r, "registry") }?.inner)
}

/// # Safety
/// `p` is NULL or a live profile of this library.
unsafe fn profile<'a>(p: *const sip_profile) -> Result<&'a ProfileHandle> {
    // SAFETY: forwarded caller guarantee.
    Ok(&unsafe { argument(p, "profile") }?.inner)
}

// ----- user registry -----

/// Opens a user registry on the store at `store_path` (NULL: the default
/// store, `$SIPPROFILE_STORE` or `$XDG_DATA_HOME/sipprofile/profiles.db`),
/// connecting to the store's profile server, which is shared by every
/// process of the user and started (a process of its own, or in this one
/// with `SIPPROFILE_SERVER=in-process`) if none runs.
/// `observer` (may be NULL) is copied; a registry with no callback starts no
/// delivery thread, and its handles are updated as each change arrives.
/// On `SIP_OK`, `*out` is a new registry owned by the caller, to free with
/// `sip_profile_registry_free`.
#[unsafe(no_mangle)]
pub extern "C" fn sip_profile_registry_new(
    store_path: *const c_char,
    observer: *const sip_profile_registry_observer,
    out: *mut *mut sip_profile_registry,
) -> i32 {
    status(|| {
        if out.is_null() {
            return Err(Error::Argument);
        }
        // SAFETY: pointers are NULL or valid per this function's contract.
        let inner = unsafe { open(store_path, observer, false, 0) }?;
        // SAFETY: out checked non-NULL.
        unsafe { write(out, Box::into_raw(Box::new(sip_profile_registry { inner }))) }
    })
}

/// Frees a user registry: disables every profile it enabled, waits for a
/// running callback of it to return (unless called from inside one, then the
/// registry is released when the callback returns), and closes this
/// process's connection to the store's server if this was its last registry
/// there. The server de-registers what no registry uses any more and stops
/// by itself when nobody needs it (ref §5.1; an in-process server with no
/// other client stops here, de-registering within a bounded wait).
/// Profile handles of it stay readable (`SIP_ERR_BAD_HANDLE` for calls that
/// need the registry). NULL is a no-op.
#[unsafe(no_mangle)]
pub extern "C" fn sip_profile_registry_free(registry: *mut sip_profile_registry) {
    super::boundary::guard((), || {
        if registry.is_null() {
            return;
        }
        // SAFETY: from Box::into_raw in sip_profile_registry_new; freed once.
        let r = unsafe { Box::from_raw(registry) };
        r.inner.close();
    })
}

/// A new handle for profile `profile_id` (ref §2.4), owned by the caller.
/// `SIP_ERR_ARGUMENT` for id 0, `SIP_ERR_NOT_FOUND` for an unknown id.
#[unsafe(no_mangle)]
pub extern "C" fn sip_profile_registry_profile(
    registry: *mut sip_profile_registry,
    profile_id: u32,
    out: *mut *mut sip_profile,
) -> i32 {
    // SAFETY: registry is NULL or live, per the contract.
    status(|| base_profile(unsafe { user(registry) }?, profile_id, out))
}

/// A new handle for the default profile, owned by the caller;
/// `SIP_ERR_NOT_FOUND` if there is none (ref §5.9).
#[unsafe(no_mangle)]
pub extern "C" fn sip_profile_registry_default_profile(
    registry: *mut sip_profile_registry,
    out: *mut *mut sip_profile,
) -> i32 {
    // SAFETY: registry is NULL or live.
    status(|| base_default(unsafe { user(registry) }?, out))
}

/// Every profile of the store, as a new list owned by the caller.
#[unsafe(no_mangle)]
pub extern "C" fn sip_profile_registry_profiles(
    registry: *mut sip_profile_registry,
    out: *mut *mut sip_profile_list,
) -> i32 {
    // SAFETY: registry is NULL or live.
    status(|| base_profiles(unsafe { user(registry) }?, out))
}

/// The profiles of type `type` (class and name equal), as a new list.
#[unsafe(no_mangle)]
pub extern "C" fn sip_profile_registry_profiles_by_type(
    registry: *mut sip_profile_registry,
    r#type: *const sip_profile_type_info,
    out: *mut *mut sip_profile_list,
) -> i32 {
    // SAFETY: pointers NULL or valid.
    status(|| unsafe { base_by_type(user(registry)?, r#type, out) })
}

/// The profiles whose AOR equals `aor` by RFC 3261 §19.1.4 URI equality, as
/// a new list. `SIP_ERR_ARGUMENT` if `aor` is not a URI.
#[unsafe(no_mangle)]
pub extern "C" fn sip_profile_registry_profiles_by_aor(
    registry: *mut sip_profile_registry,
    aor: *const c_char,
    out: *mut *mut sip_profile_list,
) -> i32 {
    // SAFETY: pointers NULL or valid.
    status(|| unsafe { base_by_aor(user(registry)?, aor, out) })
}

/// Writes the supported profile types into `types` (room for `capacity`)
/// and their number into `*count`. Too small: writes only `*count` and
/// returns `SIP_ERR_OVERFLOW` (`types` may be NULL with `capacity` 0).
#[unsafe(no_mangle)]
pub extern "C" fn sip_profile_registry_supported_types(
    registry: *mut sip_profile_registry,
    types: *mut sip_profile_type_info,
    capacity: usize,
    count: *mut usize,
) -> i32 {
    // SAFETY: pointers NULL or valid for the sizes given.
    status(|| unsafe { base_supported(user(registry)?, types, capacity, count) })
}

/// This registry's copy of the profile's last registration error (ref §5.7):
/// `SIP_OK` if none, a negative code or a SIP status otherwise.
#[unsafe(no_mangle)]
pub extern "C" fn sip_profile_registry_last_registration_error(
    registry: *const sip_profile_registry,
    profile: *const sip_profile,
) -> i32 {
    super::boundary::guard(Error::General.code(), || {
        // SAFETY: pointers NULL or valid.
        match unsafe { user(registry) } {
            Ok(r) => unsafe { base_last_error(r, profile) },
            Err(e) => e.code(),
        }
    })
}

/// Enables the profile for this registry (ref §5.3): starts registration if
/// needed; a `SIP_PROFILE_REGISTERED` event follows, unless it was already
/// registered (then the handle shows it on return). `SIP_ERR_ARGUMENT` if
/// already enabled here or the profile cannot register as configured.
/// Returns without waiting for the profile server: the registry answers
/// from the server's own verdict on the profile's data, which it already
/// holds; a refusal it could not foresee (the profile destroyed by another
/// process meanwhile) comes as an error callback.
#[unsafe(no_mangle)]
pub extern "C" fn sip_profile_registry_enable(
    registry: *mut sip_profile_registry,
    profile: *mut sip_profile,
) -> i32 {
    // SAFETY: pointers NULL or valid.
    status(|| unsafe { user(registry)?.enable(self::profile(profile)?) })
}

/// Disables the profile for this registry; it is de-registered when no
/// registry has it enabled and auto-registration is off. Disabling a profile
/// not enabled here does nothing.
#[unsafe(no_mangle)]
pub extern "C" fn sip_profile_registry_disable(
    registry: *mut sip_profile_registry,
    profile: *mut sip_profile,
) -> i32 {
    // SAFETY: pointers NULL or valid.
    status(|| unsafe { user(registry)?.disable(self::profile(profile)?) })
}

/// Whether this registry has the profile enabled. False for NULL arguments.
#[unsafe(no_mangle)]
pub extern "C" fn sip_profile_registry_is_enabled(
    registry: *const sip_profile_registry,
    profile: *const sip_profile,
) -> bool {
    super::boundary::guard(false, || {
        // SAFETY: pointers NULL or valid.
        match unsafe { (user(registry), self::profile(profile)) } {
            (Ok(r), Ok(p)) => r.is_enabled(p),
            _ => false,
        }
    })
}

/// Retries the registration now if it is waiting to retry.
/// `SIP_ERR_ARGUMENT` if this registry has not enabled the profile.
#[unsafe(no_mangle)]
pub extern "C" fn sip_profile_registry_refresh_enable(
    registry: *mut sip_profile_registry,
    profile: *mut sip_profile,
) -> i32 {
    // SAFETY: pointers NULL or valid.
    status(|| unsafe { user(registry)?.refresh_enable(self::profile(profile)?) })
}

/// Tears the registration down at once for every registry (no un-REGISTER
/// is sent), clears every registry's enabled flag (contract §7.3) and sends
/// `SIP_PROFILE_FORCIBLY_DISABLED` to observers.
#[unsafe(no_mangle)]
pub extern "C" fn sip_profile_registry_force_disable(
    registry: *mut sip_profile_registry,
    profile: *mut sip_profile,
) -> i32 {
    // SAFETY: pointers NULL or valid.
    status(|| unsafe { user(registry)?.force_disable(self::profile(profile)?) })
}

// ----- managed registry -----

/// Opens a managed registry; as `sip_profile_registry_new`. On `SIP_OK`,
/// `*out` is owned by the caller, to free with
/// `sip_managed_profile_registry_free`.
#[unsafe(no_mangle)]
pub extern "C" fn sip_managed_profile_registry_new(
    store_path: *const c_char,
    observer: *const sip_profile_registry_observer,
    out: *mut *mut sip_managed_profile_registry,
) -> i32 {
    status(|| {
        if out.is_null() {
            return Err(Error::Argument);
        }
        // SAFETY: pointers NULL or valid per this function's contract.
        let inner = unsafe { open(store_path, observer, true, 0) }?;
        // SAFETY: out checked non-NULL.
        unsafe {
            write(
                out,
                Box::into_raw(Box::new(sip_managed_profile_registry { inner })),
            )
        }
    })
}

/// Frees a managed registry; as `sip_profile_registry_free`. NULL is a no-op.
#[unsafe(no_mangle)]
pub extern "C" fn sip_managed_profile_registry_free(registry: *mut sip_managed_profile_registry) {
    super::boundary::guard((), || {
        if registry.is_null() {
            return;
        }
        // SAFETY: from Box::into_raw in sip_managed_profile_registry_new; freed once.
        let r = unsafe { Box::from_raw(registry) };
        r.inner.close();
    })
}

/// As `sip_profile_registry_profile`; the handle accepts setters.
#[unsafe(no_mangle)]
pub extern "C" fn sip_managed_profile_registry_profile(
    registry: *mut sip_managed_profile_registry,
    profile_id: u32,
    out: *mut *mut sip_profile,
) -> i32 {
    // SAFETY: registry is NULL or live.
    status(|| base_profile(unsafe { managed(registry) }?, profile_id, out))
}

/// As `sip_profile_registry_default_profile`.
#[unsafe(no_mangle)]
pub extern "C" fn sip_managed_profile_registry_default_profile(
    registry: *mut sip_managed_profile_registry,
    out: *mut *mut sip_profile,
) -> i32 {
    // SAFETY: registry is NULL or live.
    status(|| base_default(unsafe { managed(registry) }?, out))
}

/// As `sip_profile_registry_profiles`.
#[unsafe(no_mangle)]
pub extern "C" fn sip_managed_profile_registry_profiles(
    registry: *mut sip_managed_profile_registry,
    out: *mut *mut sip_profile_list,
) -> i32 {
    // SAFETY: registry is NULL or live.
    status(|| base_profiles(unsafe { managed(registry) }?, out))
}

/// As `sip_profile_registry_profiles_by_type`.
#[unsafe(no_mangle)]
pub extern "C" fn sip_managed_profile_registry_profiles_by_type(
    registry: *mut sip_managed_profile_registry,
    r#type: *const sip_profile_type_info,
    out: *mut *mut sip_profile_list,
) -> i32 {
    // SAFETY: pointers NULL or valid.
    status(|| unsafe { base_by_type(managed(registry)?, r#type, out) })
}

/// As `sip_profile_registry_profiles_by_aor`.
#[unsafe(no_mangle)]
pub extern "C" fn sip_managed_profile_registry_profiles_by_aor(
    registry: *mut sip_managed_profile_registry,
    aor: *const c_char,
    out: *mut *mut sip_profile_list,
) -> i32 {
    // SAFETY: pointers NULL or valid.
    status(|| unsafe { base_by_aor(managed(registry)?, aor, out) })
}

/// As `sip_profile_registry_supported_types`.
#[unsafe(no_mangle)]
pub extern "C" fn sip_managed_profile_registry_supported_types(
    registry: *mut sip_managed_profile_registry,
    types: *mut sip_profile_type_info,
    capacity: usize,
    count: *mut usize,
) -> i32 {
    // SAFETY: pointers NULL or valid for the sizes given.
    status(|| unsafe { base_supported(managed(registry)?, types, capacity, count) })
}

/// As `sip_profile_registry_last_registration_error`.
#[unsafe(no_mangle)]
pub extern "C" fn sip_managed_profile_registry_last_registration_error(
    registry: *const sip_managed_profile_registry,
    profile: *const sip_profile,
) -> i32 {
    super::boundary::guard(Error::General.code(), || {
        // SAFETY: pointers NULL or valid.
        match unsafe { managed(registry) } {
            Ok(r) => unsafe { base_last_error(r, profile) },
            Err(e) => e.code(),
        }
    })
}

/// A new, unsaved profile of `type` with that type's defaults (id 0),
/// owned by the caller. `SIP_ERR_NOT_FOUND` for an unsupported type.
#[unsafe(no_mangle)]
pub extern "C" fn sip_managed_profile_registry_create(
    registry: *mut sip_managed_profile_registry,
    r#type: *const sip_profile_type_info,
    out: *mut *mut sip_profile,
) -> i32 {
    status(|| {
        // SAFETY: pointers NULL or valid.
        let (r, t) = unsafe { (managed(registry)?, type_info(r#type)?) };
        if out.is_null() {
            return Err(Error::Argument);
        }
        handle_out(r.create(&t)?, out)
    })
}

/// Saves the profile durably. Id 0 adds it (assigns the id, sends
/// `SIP_PROFILE_CREATED` to every registry, auto-registers if asked; the
/// first profile of a store becomes the default). A non-zero id updates it
/// (`SIP_PROFILE_UPDATED`, and a live registration is redone if what goes
/// into REGISTER changed). Unchanged data: nothing happens. Validation
/// failure: `SIP_ERR_ARGUMENT`, nothing written.
#[unsafe(no_mangle)]
pub extern "C" fn sip_managed_profile_registry_save(
    registry: *mut sip_managed_profile_registry,
    profile: *mut sip_profile,
) -> i32 {
    // SAFETY: pointers NULL or valid.
    status(|| unsafe { managed(registry)?.save(self::profile(profile)?) })
}

/// Removes the profile from the store (ref §5.6); `SIP_PROFILE_DESTROYED`
/// goes to its observers. `SIP_ERR_IN_USE` while any registry has it enabled.
/// The handle stays valid (stale) until freed.
#[unsafe(no_mangle)]
pub extern "C" fn sip_managed_profile_registry_destroy(
    registry: *mut sip_managed_profile_registry,
    profile: *mut sip_profile,
) -> i32 {
    // SAFETY: pointers NULL or valid.
    status(|| unsafe { managed(registry)?.destroy(self::profile(profile)?) })
}

/// Sets `*in_use` to whether any registry has the profile enabled.
#[unsafe(no_mangle)]
pub extern "C" fn sip_managed_profile_registry_is_in_use(
    registry: *mut sip_managed_profile_registry,
    profile: *const sip_profile,
    in_use: *mut bool,
) -> i32 {
    status(|| {
        // SAFETY: pointers NULL or valid.
        let v = unsafe { managed(registry)?.is_in_use(self::profile(profile)?) }?;
        // SAFETY: in_use NULL or writable.
        unsafe { write(in_use, v) }
    })
}

// ----- 0.2: flags, the application's own thread (contract §8.2) -----

/// `sip_profile_registry_new` with `flags`: `SIP_REGISTRY_APP_DISPATCH`
/// (callbacks only in `sip_profile_registry_dispatch`, on its caller's
/// thread) and/or `SIP_REGISTRY_ATTEMPT_EVENTS` (also
/// `SIP_PROFILE_ATTEMPT_FAILED`). Unknown bits: `SIP_ERR_ARGUMENT`. On
/// `SIP_OK`, `*out` is a new registry owned by the caller, to free with
/// `sip_profile_registry_free`.
#[unsafe(no_mangle)]
pub extern "C" fn sip_profile_registry_new_with_flags(
    store_path: *const c_char,
    observer: *const sip_profile_registry_observer,
    flags: u32,
    out: *mut *mut sip_profile_registry,
) -> i32 {
    status(|| {
        if out.is_null() {
            return Err(Error::Argument);
        }
        // SAFETY: pointers are NULL or valid per this function's contract.
        let inner = unsafe { open(store_path, observer, false, flags) }?;
        // SAFETY: out checked non-NULL.
        unsafe { write(out, Box::into_raw(Box::new(sip_profile_registry { inner }))) }
    })
}

/// `sip_managed_profile_registry_new` with `flags` (see
/// `sip_profile_registry_new_with_flags`). On `SIP_OK`, `*out` is owned by
/// the caller, to free with `sip_managed_profile_registry_free`.
#[unsafe(no_mangle)]
pub extern "C" fn sip_managed_profile_registry_new_with_flags(
    store_path: *const c_char,
    observer: *const sip_profile_registry_observer,
    flags: u32,
    out: *mut *mut sip_managed_profile_registry,
) -> i32 {
    status(|| {
        if out.is_null() {
            return Err(Error::Argument);
        }
        // SAFETY: pointers are NULL or valid per this function's contract.
        let inner = unsafe { open(store_path, observer, true, flags) }?;
        // SAFETY: out checked non-NULL.
        unsafe {
            write(
                out,
                Box::into_raw(Box::new(sip_managed_profile_registry { inner })),
            )
        }
    })
}

/// With `SIP_REGISTRY_APP_DISPATCH` and an observer: an fd that polls
/// readable (`POLLIN`, level-triggered) while at least one callback waits;
/// else -1. The registry owns it: it is closed by `sip_profile_registry_free`
/// and must not be closed, read or written by the caller.
#[unsafe(no_mangle)]
pub extern "C" fn sip_profile_registry_event_fd(registry: *const sip_profile_registry) -> c_int {
    // SAFETY: registry is NULL or live.
    super::boundary::guard(-1, || base_event_fd(unsafe { user(registry) }))
}

/// Runs up to `max` waiting callbacks (0: all) on the calling thread, one at
/// a time and in order, with the rules of callbacks (any call of this API
/// allowed inside, freeing this registry included); `*ran` (may be NULL)
/// gets how many ran. A dispatch while another of this registry runs (on
/// another thread, or inside one of its callbacks) runs none.
/// `SIP_ERR_NOT_SUPPORTED` without `SIP_REGISTRY_APP_DISPATCH`.
#[unsafe(no_mangle)]
pub extern "C" fn sip_profile_registry_dispatch(
    registry: *mut sip_profile_registry,
    max: u32,
    ran: *mut u32,
) -> i32 {
    // SAFETY: registry is NULL or live; ran NULL or writable.
    status(|| base_dispatch(unsafe { user(registry) }?, max, ran))
}

/// The managed registry's event fd (see `sip_profile_registry_event_fd`).
#[unsafe(no_mangle)]
pub extern "C" fn sip_managed_profile_registry_event_fd(
    registry: *const sip_managed_profile_registry,
) -> c_int {
    // SAFETY: registry is NULL or live.
    super::boundary::guard(-1, || base_event_fd(unsafe { managed(registry) }))
}

/// Runs the managed registry's waiting callbacks (see
/// `sip_profile_registry_dispatch`).
#[unsafe(no_mangle)]
pub extern "C" fn sip_managed_profile_registry_dispatch(
    registry: *mut sip_managed_profile_registry,
    max: u32,
    ran: *mut u32,
) -> i32 {
    // SAFETY: registry is NULL or live; ran NULL or writable.
    status(|| base_dispatch(unsafe { managed(registry) }?, max, ran))
}

/// Saves `count` profiles of this registry in one durable transaction, all
/// or nothing (contract §8.3): new ones (id 0) get their ids as by
/// `sip_managed_profile_registry_save`, in order, and `SIP_PROFILE_CREATED`
/// reaches every registry. `profiles` may be NULL only with `count` 0. On an
/// error nothing is written. The handles stay owned by the caller.
#[unsafe(no_mangle)]
pub extern "C" fn sip_managed_profile_registry_save_all(
    registry: *mut sip_managed_profile_registry,
    profiles: *const *mut sip_profile,
    count: usize,
) -> i32 {
    status(|| {
        // SAFETY: registry is NULL or live.
        let r = unsafe { managed(registry) }?;
        if count == 0 {
            return Ok(());
        }
        if profiles.is_null() {
            return Err(Error::Argument);
        }
        // SAFETY: profiles points to count readable pointers per the contract.
        let ptrs = unsafe { std::slice::from_raw_parts(profiles, count) };
        let mut handles = Vec::with_capacity(count);
        for (i, p) in ptrs.iter().enumerate() {
            // SAFETY: each is NULL or a live profile.
            match unsafe { self::profile(*p) } {
                Ok(h) => handles.push(h),
                Err(e) => {
                    crate::error::set_message(format!("profiles[{i}] is NULL"));
                    return Err(e);
                }
            }
        }
        r.save_all(&handles)
    })
}
