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
    /// (`sip_last_error_message`).
    static MESSAGE: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

/// Says, for this thread, what the error about to be returned means: which
/// key, argument or peer, and why.
pub fn set_message(message: impl Into<String>) {
    let m = message.into();
    MESSAGE.with(|c| *c.borrow_mut() = m);
}

/// The message set since the last `clear_message`, leaving it in place.
pub fn message() -> String {
    MESSAGE.with(|c| c.borrow().clone())
}

/// Forgets the message (at the start of each API call).
pub fn clear_message() {
    MESSAGE.with(|c| c.borrow_mut().clear());
}

pub const SIP_MALFORMED_MESSAGE: i32 = -17700;
pub const SIP_INVALID_REGISTRAR_RESPONSE: i32 = -17701;
pub const SIP_TRANSPORT_FAILURE: i32 = -17707;
pub const SIP_INVALID_REGISTRATION_STATE: i32 = -17709;
pub const SIP_RESOLVING_FAILURE: i32 = -17712;
pub const SIP_FORBIDDEN: i32 = -17713;
pub const SIP_OUTBOUND_PROXY_NOT_RESPONDING: i32 = -17716;
pub const SIP_ICMP_FAILURE: i32 = -17718;

impl Error {
    /// The C status code for this error (negative, or a positive SIP status).
    pub fn code(self) -> i32 {
        match self {
            Error::NotFound => -1,
            Error::General => -2,
            Error::Cancel => -3,
            Error::NoMemory => -4,
            Error::NotSupported => -5,
            Error::Argument => -6,
            Error::BadHandle => -8,
            Error::Overflow => -9,
            Error::AlreadyExists => -11,
            Error::InUse => -14,
            Error::ServerTerminated => -15,
            Error::AccessDenied => -21,
            Error::Locked => -22,
            Error::TimedOut => -33,
            Error::CouldNotConnect => -34,
            Error::Disconnected => -36,
            Error::TooBig => -40,
            Error::PermissionDenied => -46,
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
            -1 => Error::NotFound,
            -2 => Error::General,
            -3 => Error::Cancel,
            -4 => Error::NoMemory,
            -5 => Error::NotSupported,
            -6 => Error::Argument,
            -8 => Error::BadHandle,
            -9 => Error::Overflow,
            -11 => Error::AlreadyExists,
            -14 => Error::InUse,
            -15 => Error::ServerTerminated,
            -21 => Error::AccessDenied,
            -22 => Error::Locked,
            -33 => Error::TimedOut,
            -34 => Error::CouldNotConnect,
            -36 => Error::Disconnected,
            -40 => Error::TooBig,
            -46 => Error::PermissionDenied,
            -17719..=-17700 => Error::Sip(code),
            s if (100..700).contains(&s) => Error::Status(s as u16),
            _ => Error::General,
        }
    }
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        crate::log::error(&format!("store: {e}"));
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
