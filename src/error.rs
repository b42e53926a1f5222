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
    }
}
