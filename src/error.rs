//! Errors of the core, each with the Symbian-numbered code the C API returns.

/// A failure inside the library. `code()` gives the number the C API returns
/// (Symbian's values, see `ffi/codes.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("not found")]
    NotFound,
    #[error("general failure")]
    General,
    #[error("cancelled")]
    Cancel,
    #[error("out of memory")]
    NoMemory,
    #[error("not supported")]
    NotSupported,
    #[error("invalid argument")]
    Argument,
    #[error("handle no longer valid")]
    BadHandle,
    #[error("buffer too small")]
    Overflow,
    #[error("already exists")]
    AlreadyExists,
    #[error("in use")]
    InUse,
    #[error("profile server terminated")]
    ServerTerminated,
    #[error("access denied")]
    AccessDenied,
    #[error("locked")]
    Locked,
    #[error("timed out")]
    TimedOut,
    #[error("could not connect")]
    CouldNotConnect,
    #[error("disconnected")]
    Disconnected,
    #[error("too big")]
    TooBig,
    #[error("permission denied")]
    PermissionDenied,
    /// One of the `KErrSIP*` codes, -17700..=-17719.
    #[error("SIP error {0}")]
    Sip(i32),
    /// A final SIP status (e.g. 403) that ended a registration.
    #[error("SIP status {0}")]
    Status(u16),
}

pub type Result<T> = std::result::Result<T, Error>;

thread_local! {
    /// What went wrong in the last failed call on this thread, in words
    /// (`sip_last_error_message`), and the code it was said for (`None`:
    /// whatever error the call returns).
    static MESSAGE: std::cell::RefCell<(Option<i32>, String)> =
        const { std::cell::RefCell::new((None, String::new())) };
}

/// Says, for this thread, what the error about to be returned means: which
/// key, argument, path or peer, and why. Never put a secret in it.
pub fn set_message(message: impl Into<String>) {
    let m = message.into();
    MESSAGE.with(|c| *c.borrow_mut() = (None, m));
}

/// Returns `error` after saying what it means (as `set_message`), for that
/// error only: `message_for` of another code ignores it, so a message whose
/// error was handled on the way never describes a later one. E.g.
/// `Err(with_context(Error::Argument, format!("key {}: ...", keys::display(k))))`.
pub fn with_context(error: Error, message: impl Into<String>) -> Error {
    let m = message.into();
    MESSAGE.with(|c| *c.borrow_mut() = (Some(error.code()), m));
    error
}

/// The message set since the last `clear_message`, leaving it in place.
pub fn message() -> String {
    MESSAGE.with(|c| c.borrow().1.clone())
}

/// The message for a failure with `code`: the one set by `set_message`, or by
/// `with_context` for that code; "" if none.
pub fn message_for(code: i32) -> String {
    MESSAGE.with(|c| {
        let c = c.borrow();
        match c.0 {
            Some(said_for) if said_for != code => String::new(),
            _ => c.1.clone(),
        }
    })
}

/// Forgets the message (at the start of each API call).
pub fn clear_message() {
    MESSAGE.with(|c| *c.borrow_mut() = (None, String::new()));
}

// The status codes (contract §3), defined here once: the header's `SIP_OK`
// and `SIP_ERR_*` are these constants (cbindgen), `Error::code` maps to them,
// and the bindings are checked against the header.

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

// Short names the SIP code uses (a `use`, so not a second constant in the header).
pub use SIP_ERR_SIP_FORBIDDEN as SIP_FORBIDDEN;
pub use SIP_ERR_SIP_ICMP_FAILURE as SIP_ICMP_FAILURE;
pub use SIP_ERR_SIP_INVALID_REGISTRAR_RESPONSE as SIP_INVALID_REGISTRAR_RESPONSE;
pub use SIP_ERR_SIP_INVALID_REGISTRATION_STATE as SIP_INVALID_REGISTRATION_STATE;
pub use SIP_ERR_SIP_MALFORMED_MESSAGE as SIP_MALFORMED_MESSAGE;
pub use SIP_ERR_SIP_OUTBOUND_PROXY_NOT_RESPONDING as SIP_OUTBOUND_PROXY_NOT_RESPONDING;
pub use SIP_ERR_SIP_RESOLVING_FAILURE as SIP_RESOLVING_FAILURE;
pub use SIP_ERR_SIP_TRANSPORT_FAILURE as SIP_TRANSPORT_FAILURE;

impl Error {
    /// The C status code for this error (negative, or a positive SIP status).
    pub fn code(self) -> i32 {
        match self {
            Error::NotFound => SIP_ERR_NOT_FOUND,
            Error::General => SIP_ERR_GENERAL,
            Error::Cancel => SIP_ERR_CANCEL,
            Error::NoMemory => SIP_ERR_NO_MEMORY,
            Error::NotSupported => SIP_ERR_NOT_SUPPORTED,
            Error::Argument => SIP_ERR_ARGUMENT,
            Error::BadHandle => SIP_ERR_BAD_HANDLE,
            Error::Overflow => SIP_ERR_OVERFLOW,
            Error::AlreadyExists => SIP_ERR_ALREADY_EXISTS,
            Error::InUse => SIP_ERR_IN_USE,
            Error::ServerTerminated => SIP_ERR_SERVER_TERMINATED,
            Error::AccessDenied => SIP_ERR_ACCESS_DENIED,
            Error::Locked => SIP_ERR_LOCKED,
            Error::TimedOut => SIP_ERR_TIMED_OUT,
            Error::CouldNotConnect => SIP_ERR_COULD_NOT_CONNECT,
            Error::Disconnected => SIP_ERR_DISCONNECTED,
            Error::TooBig => SIP_ERR_TOO_BIG,
            Error::PermissionDenied => SIP_ERR_PERMISSION_DENIED,
            Error::Sip(c) => c,
            Error::Status(s) => i32::from(s),
        }
    }
}

impl Error {
    /// The error a C status code stands for (the inverse of `code`); an
    /// unknown negative code is `General`.
    pub fn from_code(code: i32) -> Error {
        match code {
            SIP_ERR_NOT_FOUND => Error::NotFound,
            SIP_ERR_GENERAL => Error::General,
            SIP_ERR_CANCEL => Error::Cancel,
            SIP_ERR_NO_MEMORY => Error::NoMemory,
            SIP_ERR_NOT_SUPPORTED => Error::NotSupported,
            SIP_ERR_ARGUMENT => Error::Argument,
            SIP_ERR_BAD_HANDLE => Error::BadHandle,
            SIP_ERR_OVERFLOW => Error::Overflow,
            SIP_ERR_ALREADY_EXISTS => Error::AlreadyExists,
            SIP_ERR_IN_USE => Error::InUse,
            SIP_ERR_SERVER_TERMINATED => Error::ServerTerminated,
            SIP_ERR_ACCESS_DENIED => Error::AccessDenied,
            SIP_ERR_LOCKED => Error::Locked,
            SIP_ERR_TIMED_OUT => Error::TimedOut,
            SIP_ERR_COULD_NOT_CONNECT => Error::CouldNotConnect,
            SIP_ERR_DISCONNECTED => Error::Disconnected,
            SIP_ERR_TOO_BIG => Error::TooBig,
            SIP_ERR_PERMISSION_DENIED => Error::PermissionDenied,
            SIP_ERR_SIP_APN_SWITCH_NON_FATAL_FAILURE..=SIP_ERR_SIP_MALFORMED_MESSAGE => {
                Error::Sip(code)
            }
            s if (100..700).contains(&s) => Error::Status(s as u16),
            _ => Error::General,
        }
    }
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        crate::log::error(&format!("store: {e}"));
        let error = Self::from_sqlite(&e);
        with_context(error, format!("profile store: {e}"))
    }
}

impl Error {
    fn from_sqlite(e: &rusqlite::Error) -> Self {
        match e {
            rusqlite::Error::SqliteFailure(f, _)
                if f.code == rusqlite::ErrorCode::DatabaseBusy
                    || f.code == rusqlite::ErrorCode::DatabaseLocked =>
            {
                Error::Locked
            }
            rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::OutOfMemory => {
                Error::NoMemory
            }
            _ => Error::General,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn a_message_goes_with_its_code_only() {
        let e = with_context(Error::Argument, "key 7: not a URI");
        assert_eq!(message_for(e.code()), "key 7: not a URI");
        assert_eq!(message(), "key 7: not a URI");
        let _ = with_context(Error::NotFound, "stale");
        assert_eq!(message_for(Error::Argument.code()), "");
        set_message("said without a code");
        assert_eq!(message_for(Error::InUse.code()), "said without a code");
        clear_message();
        assert_eq!(message_for(Error::InUse.code()), "");
        // Per thread.
        let _ = with_context(Error::Locked, "here");
        std::thread::spawn(|| assert_eq!(message_for(Error::Locked.code()), ""))
            .join()
            .unwrap();
        assert_eq!(message_for(Error::Locked.code()), "here");
    }

    #[test]
    fn every_variant_has_its_own_code() {
        let all = [
            Error::NotFound,
            Error::General,
            Error::Cancel,
            Error::NoMemory,
            Error::NotSupported,
            Error::Argument,
            Error::BadHandle,
            Error::Overflow,
            Error::AlreadyExists,
            Error::InUse,
            Error::ServerTerminated,
            Error::AccessDenied,
            Error::Locked,
            Error::TimedOut,
            Error::CouldNotConnect,
            Error::Disconnected,
            Error::TooBig,
            Error::PermissionDenied,
        ];
        let codes: std::collections::HashSet<i32> = all.iter().map(|e| e.code()).collect();
        assert_eq!(codes.len(), all.len());
        assert!(codes.iter().all(|c| *c < 0));
    }

    #[test]
    fn codes_are_symbian_values() {
        assert_eq!(Error::InUse.code(), -14);
        assert_eq!(Error::PermissionDenied.code(), -46);
        assert_eq!(Error::Status(403).code(), 403);
        assert_eq!(Error::Sip(SIP_TRANSPORT_FAILURE).code(), -17707);
        for e in [
            Error::InUse,
            Error::ServerTerminated,
            Error::Status(403),
            Error::Sip(-17713),
        ] {
            assert_eq!(Error::from_code(e.code()), e);
        }
    }
}
