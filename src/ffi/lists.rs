//! `sip_profile_list` and `sip_str_list`: what the list-returning calls give.

use super::profile::sip_profile;
use std::ffi::{CString, c_char};
use std::sync::atomic::{AtomicPtr, Ordering};

/// A list of profile handles, owned by the caller; free with
/// `sip_profile_list_free`.
pub struct sip_profile_list {
    pub(crate) items: Slots,
}

/// The list's entries: each slot holds a profile until one
/// `sip_profile_list_take` swaps it out, so two threads taking the same index
/// can never both get it (contract §1: every function is thread-safe).
pub(crate) struct Slots(Vec<AtomicPtr<sip_profile>>);

impl FromIterator<Option<Box<sip_profile>>> for Slots {
    fn from_iter<I: IntoIterator<Item = Option<Box<sip_profile>>>>(iter: I) -> Self {
        Slots(
            iter.into_iter()
                .map(|p| AtomicPtr::new(p.map_or(std::ptr::null_mut(), Box::into_raw)))
                .collect(),
        )
    }
}

impl Slots {
    fn len(&self) -> usize {
        self.0.len()
    }

    /// Moves the entry at `index` out; `None` if out of range or taken.
    fn take(&self, index: usize) -> Option<*mut sip_profile> {
        let p = self
            .0
            .get(index)?
            .swap(std::ptr::null_mut(), Ordering::AcqRel);
        (!p.is_null()).then_some(p)
    }
}

impl Drop for Slots {
    fn drop(&mut self) {
        for slot in &mut self.0 {
            let p = *slot.get_mut();
            if !p.is_null() {
                // SAFETY: a non-NULL slot holds a pointer from Box::into_raw
                // that no take handed out (take swaps in NULL first).
                drop(unsafe { Box::from_raw(p) });
            }
        }
    }
}

/// A list of strings, owned by the caller; free with `sip_str_list_free`.
pub struct sip_str_list {
    pub(crate) items: Vec<CString>,
}

impl sip_str_list {
    pub(crate) fn from_strings(v: Vec<String>) -> sip_str_list {
        sip_str_list {
            items: v
                .into_iter()
                .map(|s| CString::new(s.replace('\0', "")).unwrap_or_default())
                .collect(),
        }
    }
}

/// Number of entries (taken ones included); 0 for NULL.
#[unsafe(no_mangle)]
pub extern "C" fn sip_profile_list_len(list: *const sip_profile_list) -> usize {
    super::boundary::guard(0, || {
        // SAFETY: NULL or a list from this library, not being freed.
        unsafe { list.as_ref() }.map_or(0, |l| l.items.len())
    })
}

/// Moves the profile at `index` out of the list: the caller owns it and
/// frees it with `sip_profile_free`. NULL if out of range, already taken, or
/// `list` is NULL. Threads may take from one list at once: each entry is
/// handed out exactly once.
#[unsafe(no_mangle)]
pub extern "C" fn sip_profile_list_take(
    list: *mut sip_profile_list,
    index: usize,
) -> *mut sip_profile {
    super::boundary::guard(std::ptr::null_mut(), || {
        // SAFETY: NULL or a list from this library, not being freed; shared
        // access only (other threads may take from it at the same time).
        let Some(l) = (unsafe { list.as_ref() }) else {
            return std::ptr::null_mut();
        };
        l.items.take(index).unwrap_or(std::ptr::null_mut())
    })
}

/// Frees the list and every profile not taken from it. NULL is a no-op.
#[unsafe(no_mangle)]
pub extern "C" fn sip_profile_list_free(list: *mut sip_profile_list) {
    super::boundary::guard((), || {
        if !list.is_null() {
            // SAFETY: list came from Box::into_raw in this library and is
            // freed once, per the ownership rule.
            drop(unsafe { Box::from_raw(list) });
        }
    })
}

/// Number of strings; 0 for NULL.
#[unsafe(no_mangle)]
pub extern "C" fn sip_str_list_len(list: *const sip_str_list) -> usize {
    super::boundary::guard(0, || {
        // SAFETY: NULL or a list from this library, not being freed.
        unsafe { list.as_ref() }.map_or(0, |l| l.items.len())
    })
}

/// The string at `index`, NUL-terminated UTF-8, owned by the list and valid
/// until it is freed. NULL if out of range or `list` is NULL.
#[unsafe(no_mangle)]
pub extern "C" fn sip_str_list_get(list: *const sip_str_list, index: usize) -> *const c_char {
    super::boundary::guard(std::ptr::null(), || {
        // SAFETY: NULL or a list from this library, not being freed.
        unsafe { list.as_ref() }
            .and_then(|l| l.items.get(index))
            .map_or(std::ptr::null(), |s| s.as_ptr())
    })
}

/// Frees the list and its strings. NULL is a no-op.
#[unsafe(no_mangle)]
pub extern "C" fn sip_str_list_free(list: *mut sip_str_list) {
    super::boundary::guard((), || {
        if !list.is_null() {
            // SAFETY: from Box::into_raw in this library, freed once.
            drop(unsafe { Box::from_raw(list) });
        }
    })
}
