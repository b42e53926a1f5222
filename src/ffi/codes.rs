//! `sip_strerror` and `sip_version`. The status codes themselves (contract
//! §3) are defined once, in `crate::error`.

use crate::error::*;
use std::ffi::{CStr, c_char};

fn describe(code: i32) -> &'static CStr {
    match code {
        SIP_OK => c"success",
        SIP_ERR_NOT_FOUND => c"not found",
        SIP_ERR_GENERAL => c"general failure",
        SIP_ERR_CANCEL => c"cancelled",
        SIP_ERR_NO_MEMORY => c"out of memory",
        SIP_ERR_NOT_SUPPORTED => c"not supported",
        SIP_ERR_ARGUMENT => c"invalid argument",
        SIP_ERR_BAD_HANDLE => c"handle no longer valid",
        SIP_ERR_OVERFLOW => c"buffer too small",
        SIP_ERR_ALREADY_EXISTS => c"already exists",
        SIP_ERR_IN_USE => c"profile in use",
        SIP_ERR_SERVER_TERMINATED => c"profile server terminated",
        SIP_ERR_ACCESS_DENIED => c"access denied",
        SIP_ERR_LOCKED => c"store locked",
        SIP_ERR_TIMED_OUT => c"timed out",
        SIP_ERR_COULD_NOT_CONNECT => c"could not connect",
        SIP_ERR_DISCONNECTED => c"disconnected",
        SIP_ERR_TOO_BIG => c"too big",
        SIP_ERR_PERMISSION_DENIED => c"permission denied",
        SIP_ERR_SIP_MALFORMED_MESSAGE => c"malformed SIP message",
        SIP_ERR_SIP_INVALID_REGISTRAR_RESPONSE => c"invalid registrar response",
        SIP_ERR_SIP_REQUEST_PENDING => c"SIP request pending",
        SIP_ERR_SIP_INVALID_TRANSACTION_STATE => c"invalid SIP transaction state",
        SIP_ERR_SIP_INVALID_DIALOG_STATE => c"invalid SIP dialog state",
        SIP_ERR_SIP_INVALID_DIALOG_REQUEST => c"invalid SIP dialog request",
        SIP_ERR_SIP_INVALID_DIALOG_RESPONSE => c"invalid SIP dialog response",
        SIP_ERR_SIP_TRANSPORT_FAILURE => c"SIP transport failure",
        SIP_ERR_SIP_NO_ACK_RECEIVED => c"no ACK received",
        SIP_ERR_SIP_INVALID_REGISTRATION_STATE => c"invalid registration state",
        SIP_ERR_SIP_INVALID_CONTACT => c"invalid Contact",
        SIP_ERR_SIP_RESOURCE_NOT_AVAILABLE => c"SIP resource not available",
        SIP_ERR_SIP_RESOLVING_FAILURE => c"could not resolve SIP server",
        SIP_ERR_SIP_FORBIDDEN => c"forbidden",
        SIP_ERR_SIP_MAX_COMPARTMENTS_IN_USE => c"no SigComp compartment left",
        SIP_ERR_SIP_TERMINATED_WITH_RESPONSE => c"terminated with a SIP response",
        SIP_ERR_SIP_OUTBOUND_PROXY_NOT_RESPONDING => c"outbound proxy not responding",
        SIP_ERR_SIP_INVALID_URI_TYPE => c"invalid URI type",
        SIP_ERR_SIP_ICMP_FAILURE => c"ICMP failure",
        SIP_ERR_SIP_APN_SWITCH_NON_FATAL_FAILURE => c"APN switch: non-fatal failure",
        400 => c"SIP 400 Bad Request",
        401 => c"SIP 401 Unauthorized: credentials refused",
        403 => c"SIP 403 Forbidden",
        404 => c"SIP 404 Not Found",
        407 => c"SIP 407 Proxy Authentication Required: credentials refused",
        408 => c"SIP 408 Request Timeout",
        423 => c"SIP 423 Interval Too Brief",
        480 => c"SIP 480 Temporarily Unavailable",
        500 => c"SIP 500 Server Internal Error",
        503 => c"SIP 503 Service Unavailable",
        504 => c"SIP 504 Server Time-out",
        _ => describe_class(code),
    }
}

fn describe_class(code: i32) -> &'static CStr {
    match code {
        300..=399 => c"SIP redirection (3xx) response",
        400..=499 => c"SIP client error (4xx) response",
        500..=599 => c"SIP server error (5xx) response",
        600..=699 => c"SIP global failure (6xx) response",
        _ => c"unknown error",
    }
}

/// A static English description of `code`: any status code of this header
/// or a SIP status (e.g. 403). Never NULL; the caller must not free it.
#[unsafe(no_mangle)]
pub extern "C" fn sip_strerror(code: i32) -> *const c_char {
    describe(code).as_ptr()
}

/// A description of the last failed call of this API on the calling thread,
/// naming the key, argument, path or peer and the reason, e.g. `key
/// SIP_KEY_USER_AOR (7): "alice" is not a SIP URI`; "" if no call failed on
/// this thread. Never NULL. Owned by the library: valid until the next call of
/// this API on this thread.
#[unsafe(no_mangle)]
pub extern "C" fn sip_last_error_message() -> *const c_char {
    super::boundary::guard(c"".as_ptr(), super::boundary::last_message)
}

/// Major version of this header (`sip_version` gives the library's).
pub const SIP_VERSION_MAJOR: u32 = 0;
/// Minor version of this header.
pub const SIP_VERSION_MINOR: u32 = 1;
/// Patch version of this header.
pub const SIP_VERSION_PATCH: u32 = 0;

/// The library version as "MAJOR.MINOR.PATCH". Static; never NULL.
#[unsafe(no_mangle)]
pub extern "C" fn sip_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn every_code_is_described() {
        for c in [-17719, -17700, -46, 0, 403, 12345, i32::MIN] {
            assert!(!sip_strerror(c).is_null());
        }
        for c in -17719..=-17700 {
            assert_ne!(describe(c), c"unknown error", "{c}");
        }
    }

    #[test]
    fn version_constants_match_cargo() {
        assert_eq!(
            [SIP_VERSION_MAJOR, SIP_VERSION_MINOR, SIP_VERSION_PATCH].map(|v| v.to_string()),
            [
                env!("CARGO_PKG_VERSION_MAJOR"),
                env!("CARGO_PKG_VERSION_MINOR"),
                env!("CARGO_PKG_VERSION_PATCH")
            ]
        );
    }
}
