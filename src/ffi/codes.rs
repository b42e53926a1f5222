//! Status codes (contract §3): Symbian's numbers, so ported code keeps them.
//! Every fallible function returns `SIP_OK` or one of these; error callbacks
//! may also carry a positive SIP status such as 403.

use std::ffi::{CStr, c_char};

/// Success.
pub const SIP_OK: i32 = 0;
/// No such profile, key or value.
pub const SIP_ERR_NOT_FOUND: i32 = -1;
/// Unexpected internal failure.
pub const SIP_ERR_GENERAL: i32 = -2;
/// Cancelled.
pub const SIP_ERR_CANCEL: i32 = -3;
/// Out of memory.
pub const SIP_ERR_NO_MEMORY: i32 = -4;
/// Not supported by this version (or not a sipprofile store).
pub const SIP_ERR_NOT_SUPPORTED: i32 = -5;
/// Invalid argument: NULL, bad UTF-8, bad URI, out-of-range value, wrong state.
pub const SIP_ERR_ARGUMENT: i32 = -6;
/// The handle's registry is gone, or the handle belongs to another registry.
pub const SIP_ERR_BAD_HANDLE: i32 = -8;
/// The output buffer is too small; the needed size was written.
pub const SIP_ERR_OVERFLOW: i32 = -9;
/// Already exists.
pub const SIP_ERR_ALREADY_EXISTS: i32 = -11;
/// The profile is enabled by some registry.
pub const SIP_ERR_IN_USE: i32 = -14;
/// The profile server stopped.
pub const SIP_ERR_SERVER_TERMINATED: i32 = -15;
/// Not allowed on this handle (e.g. a setter on a user-registry profile).
pub const SIP_ERR_ACCESS_DENIED: i32 = -21;
/// The store is locked by another writer.
pub const SIP_ERR_LOCKED: i32 = -22;
/// No answer in time.
pub const SIP_ERR_TIMED_OUT: i32 = -33;
/// Could not connect.
pub const SIP_ERR_COULD_NOT_CONNECT: i32 = -34;
/// A registered profile lost its registration; it re-registers by itself.
pub const SIP_ERR_DISCONNECTED: i32 = -36;
/// Too big.
pub const SIP_ERR_TOO_BIG: i32 = -40;
/// Secret value: write-only (digest passwords).
pub const SIP_ERR_PERMISSION_DENIED: i32 = -46;
/// Malformed SIP message.
pub const SIP_ERR_SIP_MALFORMED_MESSAGE: i32 = -17700;
/// The registrar's response could not be used.
pub const SIP_ERR_SIP_INVALID_REGISTRAR_RESPONSE: i32 = -17701;
/// A request is already pending.
pub const SIP_ERR_SIP_REQUEST_PENDING: i32 = -17702;
/// Invalid transaction state.
pub const SIP_ERR_SIP_INVALID_TRANSACTION_STATE: i32 = -17703;
/// Invalid dialog state.
pub const SIP_ERR_SIP_INVALID_DIALOG_STATE: i32 = -17704;
/// Invalid dialog request.
pub const SIP_ERR_SIP_INVALID_DIALOG_REQUEST: i32 = -17705;
/// Invalid dialog response.
pub const SIP_ERR_SIP_INVALID_DIALOG_RESPONSE: i32 = -17706;
/// Sending failed at the transport.
pub const SIP_ERR_SIP_TRANSPORT_FAILURE: i32 = -17707;
/// No ACK received.
pub const SIP_ERR_SIP_NO_ACK_RECEIVED: i32 = -17708;
/// Not registered: the registration context is not active.
pub const SIP_ERR_SIP_INVALID_REGISTRATION_STATE: i32 = -17709;
/// Invalid Contact.
pub const SIP_ERR_SIP_INVALID_CONTACT: i32 = -17710;
/// Resource not available.
pub const SIP_ERR_SIP_RESOURCE_NOT_AVAILABLE: i32 = -17711;
/// The server's name could not be resolved.
pub const SIP_ERR_SIP_RESOLVING_FAILURE: i32 = -17712;
/// Forbidden.
pub const SIP_ERR_SIP_FORBIDDEN: i32 = -17713;
/// No SigComp compartment left.
pub const SIP_ERR_SIP_MAX_COMPARTMENTS_IN_USE: i32 = -17714;
/// Terminated with a response.
pub const SIP_ERR_SIP_TERMINATED_WITH_RESPONSE: i32 = -17715;
/// The outbound proxy does not answer.
pub const SIP_ERR_SIP_OUTBOUND_PROXY_NOT_RESPONDING: i32 = -17716;
/// Invalid URI type.
pub const SIP_ERR_SIP_INVALID_URI_TYPE: i32 = -17717;
/// ICMP error from the network.
pub const SIP_ERR_SIP_ICMP_FAILURE: i32 = -17718;
/// APN switch: non-fatal failure.
pub const SIP_ERR_SIP_APN_SWITCH_NON_FATAL_FAILURE: i32 = -17719;

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

/// The library version as "MAJOR.MINOR.PATCH". Static; never NULL.
#[unsafe(no_mangle)]
pub extern "C" fn sip_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn codes_match_core_errors() {
        use crate::Error;
        assert_eq!(Error::NotFound.code(), SIP_ERR_NOT_FOUND);
        assert_eq!(Error::PermissionDenied.code(), SIP_ERR_PERMISSION_DENIED);
        assert_eq!(
            crate::error::SIP_TRANSPORT_FAILURE,
            SIP_ERR_SIP_TRANSPORT_FAILURE
        );
        for c in [-17719, -17700, -46, 0, 403, 12345, i32::MIN] {
            assert!(!sip_strerror(c).is_null());
        }
    }
}
