//! Helpers every exported function uses: the panic boundary, NULL and UTF-8
//! checks, and writing outputs only on success.

use crate::profile::TypeInfo;
use crate::{Error, Result};
use std::ffi::{CStr, c_char};
use std::panic::{AssertUnwindSafe, catch_unwind};

use super::profile::sip_profile_type_info;

/// Runs `f`; a panic becomes `fallback` (contract §1: no panic crosses).
pub fn guard<T>(fallback: T, f: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| {
        crate::log::error("internal panic caught at the C boundary");
        fallback
    })
}

/// Runs `f` returning a status: `SIP_OK`, the error's code, or
/// `SIP_ERR_GENERAL` on panic.
pub fn status(f: impl FnOnce() -> Result<()>) -> i32 {
    guard(Error::General.code(), || match f() {
        Ok(()) => 0,
        Err(e) => e.code(),
    })
}

/// A shared reference from a C pointer; NULL is `SIP_ERR_ARGUMENT`.
///
/// # Safety
/// `p` is NULL or points to a live `T` that is not mutated for `'a`.
pub unsafe fn reference<'a, T>(p: *const T) -> Result<&'a T> {
    // SAFETY: the caller guarantees p is NULL or valid for 'a.
    unsafe { p.as_ref() }.ok_or(Error::Argument)
}

/// A `&str` from a NUL-terminated C string; NULL or bad UTF-8 is
/// `SIP_ERR_ARGUMENT`.
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string valid for `'a`.
pub unsafe fn string<'a>(p: *const c_char) -> Result<&'a str> {
    if p.is_null() {
        return Err(Error::Argument);
    }
    // SAFETY: non-NULL and NUL-terminated per the caller's guarantee.
    unsafe { CStr::from_ptr(p) }
        .to_str()
        .map_err(|_| Error::Argument)
}

/// Writes `value` to an out pointer; NULL is `SIP_ERR_ARGUMENT`.
///
/// # Safety
/// `out` is NULL or valid for writing one `T`.
pub unsafe fn write<T>(out: *mut T, value: T) -> Result<()> {
    if out.is_null() {
        return Err(Error::Argument);
    }
    // SAFETY: non-NULL and writable per the caller's guarantee.
    unsafe { out.write(value) };
    Ok(())
}

/// Reads a `sip_profile_type_info` from C, range-checking the class and
/// requiring a NUL-terminated UTF-8 name within the 26 bytes.
///
/// # Safety
/// `p` is NULL or points to a readable `sip_profile_type_info`.
pub unsafe fn type_info(p: *const sip_profile_type_info) -> Result<TypeInfo> {
    // SAFETY: forwarded caller guarantee.
    let t = unsafe { reference(p) }?;
    if t.profile_class > 2 {
        return Err(Error::Argument);
    }
    let bytes: Vec<u8> = t.name.iter().map(|c| *c as u8).collect();
    let end = bytes.iter().position(|b| *b == 0).ok_or(Error::Argument)?;
    let name = std::str::from_utf8(&bytes[..end]).map_err(|_| Error::Argument)?;
    Ok(TypeInfo {
        class: t.profile_class,
        name: name.to_owned(),
    })
}

/// The C form of a type.
pub fn type_info_out(t: &TypeInfo) -> sip_profile_type_info {
    let mut name = [0 as c_char; 26];
    for (i, b) in t.name.bytes().take(25).enumerate() {
        name[i] = b as c_char;
    }
    sip_profile_type_info {
        profile_class: t.class,
        name,
    }
}

/// Copies `value` and a NUL into `buf` (contract §5.3): too small writes
/// nothing, sets `*len` to the length needed and gives `SIP_ERR_OVERFLOW`.
///
/// # Safety
/// `buf` is NULL or valid for `capacity` bytes; `len` is NULL or writable.
pub unsafe fn copy_out(
    value: &str,
    buf: *mut c_char,
    capacity: usize,
    len: *mut usize,
) -> Result<()> {
    if len.is_null() || (buf.is_null() && capacity != 0) {
        return Err(Error::Argument);
    }
    let n = value.len();
    if buf.is_null() || capacity < n + 1 {
        // SAFETY: len checked non-NULL above.
        unsafe { len.write(n) };
        return Err(Error::Overflow);
    }
    // SAFETY: buf has room for n + 1 bytes (checked), value is n bytes.
    unsafe {
        std::ptr::copy_nonoverlapping(value.as_ptr(), buf.cast::<u8>(), n);
        buf.add(n).write(0);
        len.write(n);
    }
    Ok(())
}
