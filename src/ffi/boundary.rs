//! Helpers every exported function uses: the panic boundary, NULL and UTF-8
//! checks, writing outputs only on success, and the message of the last
//! failed call (`sip_last_error_message`).

use crate::error::{clear_message, message_for, with_context};
use crate::profile::TypeInfo;
use crate::{Error, Result};
use std::cell::RefCell;
use std::ffi::{CStr, CString, c_char};
use std::panic::{AssertUnwindSafe, catch_unwind};

use super::profile::sip_profile_type_info;

thread_local! {
    /// What `sip_last_error_message` returns on this thread.
    static LAST_MESSAGE: RefCell<CString> = RefCell::new(CString::default());
}

/// Runs `f`; a panic becomes `fallback` (contract §1: no panic crosses).
pub fn guard<T>(fallback: T, f: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| {
        crate::log::error("internal panic caught at the C boundary");
        let _ = with_context(
            Error::General,
            "internal error: a panic was caught at the C boundary (see the log)",
        );
        fallback
    })
}

/// Runs `f` returning a status: `SIP_OK`, the error's code, or
/// `SIP_ERR_GENERAL` on panic. A failure also sets this thread's
/// `sip_last_error_message`: what the core said about the error
/// (`crate::error::with_context`), else the code's description.
pub fn status(f: impl FnOnce() -> Result<()>) -> i32 {
    clear_message();
    let code = guard(Error::General.code(), || match f() {
        Ok(()) => 0,
        Err(e) => e.code(),
    });
    if code != 0 {
        record_failure(code);
    }
    code
}

/// Sets this thread's last error message for a call that returns `code`.
pub fn record_failure(code: i32) {
    let mut message = message_for(code);
    if message.is_empty() {
        // SAFETY: sip_strerror returns a static NUL-terminated string.
        let text = unsafe { CStr::from_ptr(super::codes::sip_strerror(code)) };
        message = text.to_string_lossy().into_owned();
    }
    let message = CString::new(message.replace('\0', "")).unwrap_or_default();
    LAST_MESSAGE.with(|m| *m.borrow_mut() = message);
}

/// This thread's last error message; valid until this thread's next failed
/// call replaces it (or the thread ends).
pub fn last_message() -> *const c_char {
    LAST_MESSAGE.with(|m| m.borrow().as_ptr())
}

/// `SIP_ERR_ARGUMENT` for the argument `name`, saying why.
pub fn bad_argument(name: &str, why: &str) -> Error {
    with_context(Error::Argument, format!("argument `{name}` {why}"))
}

/// A shared reference from the C argument `name`; NULL is `SIP_ERR_ARGUMENT`.
///
/// # Safety
/// `p` is NULL or points to a live `T` that is not mutated for `'a`.
pub unsafe fn argument<'a, T>(p: *const T, name: &str) -> Result<&'a T> {
    // SAFETY: the caller guarantees p is NULL or valid for 'a.
    unsafe { p.as_ref() }.ok_or_else(|| bad_argument(name, "is NULL"))
}

/// A `&str` from the C string argument `name`; NULL or bad UTF-8 is
/// `SIP_ERR_ARGUMENT`, saying which.
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string valid for `'a`.
pub unsafe fn string_argument<'a>(p: *const c_char, name: &str) -> Result<&'a str> {
    if p.is_null() {
        return Err(bad_argument(name, "is NULL"));
    }
    // SAFETY: non-NULL and NUL-terminated per the caller's guarantee.
    unsafe { CStr::from_ptr(p) }.to_str().map_err(|e| {
        bad_argument(
            name,
            &format!("is not valid UTF-8 (byte {})", e.valid_up_to()),
        )
    })
}

/// Checks that the out pointer `name` is not NULL.
pub fn out_argument<T>(out: *mut T, name: &str) -> Result<()> {
    if out.is_null() {
        return Err(bad_argument(name, "is NULL"));
    }
    Ok(())
}

/// A shared reference from a C pointer; NULL is `SIP_ERR_ARGUMENT`.
///
/// # Safety
/// `p` is NULL or points to a live `T` that is not mutated for `'a`.
pub unsafe fn reference<'a, T>(p: *const T) -> Result<&'a T> {
    // SAFETY: forwarded caller guarantee.
    unsafe { argument(p, "handle") }
}

/// A `&str` from a NUL-terminated C string; NULL or bad UTF-8 is
/// `SIP_ERR_ARGUMENT` (`string_argument` also names the argument).
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string valid for `'a`.
pub unsafe fn string<'a>(p: *const c_char) -> Result<&'a str> {
    // SAFETY: forwarded caller guarantee.
    unsafe { string_argument(p, "string") }
}

/// Writes `value` to an out pointer; NULL is `SIP_ERR_ARGUMENT`.
///
/// # Safety
/// `out` is NULL or valid for writing one `T`.
pub unsafe fn write<T>(out: *mut T, value: T) -> Result<()> {
    out_argument(out, "out")?;
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
    let t = unsafe { argument(p, "type") }?;
    if t.profile_class > 2 {
        return Err(bad_argument(
            "type",
            &format!(
                "has profile_class {}, not a sip_profile_class (0-2)",
                t.profile_class
            ),
        ));
    }
    let bytes: Vec<u8> = t.name.iter().map(|c| *c as u8).collect();
    let end = bytes
        .iter()
        .position(|b| *b == 0)
        .ok_or_else(|| bad_argument("type", "has a name without a NUL in its 26 bytes"))?;
    let name = std::str::from_utf8(&bytes[..end])
        .map_err(|_| bad_argument("type", "has a name that is not valid UTF-8"))?;
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
    out_argument(len, "len")?;
    if buf.is_null() && capacity != 0 {
        return Err(bad_argument(
            "buf",
            &format!("is NULL but capacity is {capacity}"),
        ));
    }
    let n = value.len();
    if buf.is_null() || capacity < n + 1 {
        // SAFETY: len checked non-NULL above.
        unsafe { len.write(n) };
        return Err(with_context(
            Error::Overflow,
            format!(
                "the value needs {} bytes with its NUL; capacity is {capacity} (*len now holds {n})",
                n + 1
            ),
        ));
    }
    // SAFETY: buf has room for n + 1 bytes (checked), value is n bytes.
    unsafe {
        std::ptr::copy_nonoverlapping(value.as_ptr(), buf.cast::<u8>(), n);
        buf.add(n).write(0);
        len.write(n);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ffi::codes::sip_last_error_message;
    use crate::ffi::profile::{sip_profile_free, sip_profile_set_str, sip_profile_set_u32};
    use crate::ffi::registry::{
        sip_managed_profile_registry_create, sip_managed_profile_registry_free,
        sip_managed_profile_registry_new,
    };
    use crate::profile::keys;

    fn last() -> String {
        // SAFETY: never NULL; valid until the next call on this thread.
        unsafe { CStr::from_ptr(sip_last_error_message()) }
            .to_str()
            .unwrap()
            .to_owned()
    }

    #[test]
    fn status_records_the_core_message_or_the_code_text() {
        assert_eq!(
            status(|| Err(with_context(Error::Argument, "key 7: why"))),
            -6
        );
        assert_eq!(last(), "key 7: why");
        // A message left for another code is stale: the code's text instead.
        assert_eq!(
            status(|| {
                let _ = with_context(Error::NotFound, "swallowed on the way");
                Err(Error::InUse)
            }),
            -14
        );
        assert_eq!(last(), "profile in use");
        // Success leaves the last failure's message alone.
        assert_eq!(status(|| Ok(())), 0);
        assert_eq!(last(), "profile in use");
        assert_eq!(status(|| panic!("boom")), -2);
        assert!(last().contains("panic"), "{}", last());
    }

    #[test]
    fn a_bad_setter_through_the_c_api_names_the_key() {
        let dir = std::env::temp_dir().join(format!(
            "sipprofile-boundary-{}-{}",
            std::process::id(),
            crate::random::hex_token(4)
        ));
        let store = CString::new(dir.join("p.db").to_str().unwrap()).unwrap();
        let mut m = std::ptr::null_mut();
        assert_eq!(
            sip_managed_profile_registry_new(store.as_ptr(), std::ptr::null(), &mut m),
            0
        );
        let ietf = type_info_out(&TypeInfo::ietf());
        let mut p = std::ptr::null_mut();
        assert_eq!(sip_managed_profile_registry_create(m, &ietf, &mut p), 0);
        assert_eq!(
            sip_profile_set_str(p, keys::SIP_KEY_USER_AOR, c"bob".as_ptr()),
            -6
        );
        assert_eq!(
            last(),
            "key SIP_KEY_USER_AOR (7): \"bob\" is not a SIP URI \
             (sip:user@host[:port][;params], sips:... or tel:...)"
        );
        assert_eq!(sip_profile_set_u32(p, keys::SIP_KEY_USER_AOR, 1), -1);
        assert_eq!(
            last(),
            "key SIP_KEY_USER_AOR (7) is a string key: use sip_profile_set_str"
        );
        sip_profile_free(p);
        sip_managed_profile_registry_free(m);
        let _ = std::fs::remove_dir_all(dir);
    }
}
