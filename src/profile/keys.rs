//! Parameter key numbers (ref §4.1) and this library's own keys 1000–1012.

pub const PROFILE_ID: u32 = 1;
pub const PROVIDER_NAME: u32 = 2;
pub const ACCESS_POINT_ID: u32 = 3;
pub const SIG_COMP: u32 = 4;
pub const SECURITY_NEGOTIATION: u32 = 5;
pub const AUTO_REGISTRATION: u32 = 6;
pub const USER_AOR: u32 = 7;
pub const PROFILE_REGISTERED: u32 = 8;
pub const REGISTERED_AORS: u32 = 9;
pub const NEGOTIATED_SECURITY_MECHANISM: u32 = 10;
pub const DEFAULT_PROFILE: u32 = 11;
pub const CONTACT_HEADER_PARAMS: u32 = 12;
pub const REGISTERED_CONTACT: u32 = 13;
pub const SNAP_ID: u32 = 14;
pub const CONTACT_HEADER_USER: u32 = 15;
pub const SO_IP_TOS: u32 = 16;
pub const ACCESS_POINT_NAME: u32 = 17;
pub const SNAP_NAME: u32 = 18;
pub const RESOLVE_PROXY: u32 = 19;
pub const PRIMARY_APN: u32 = 20;
pub const SECONDARY_APN: u32 = 21;
pub const BEARER_TYPE: u32 = 22;
pub const SERVER_REGISTRAR: u32 = 130;
pub const SERVER_OUTBOUND_PROXY: u32 = 131;
pub const DIGEST_USER_NAME: u32 = 150;
pub const DIGEST_REALM: u32 = 151;
pub const SERVER_ADDRESS: u32 = 152;
pub const PRIVATE_IDENTITY: u32 = 500;
pub const DIGEST_PASSWORD: u32 = 501;
pub const HEADERS: u32 = 502;
pub const ALLOW_IMS_REGISTRATION: u32 = 503;
pub const PROFILE_LOCKED: u32 = 504;
pub const ALLOW_AUTO_REGISTRATION_ONLY_ON_HOME_NETWORK: u32 = 505;

pub const REGISTRATION_EXPIRES: u32 = 1000;
pub const GRANTED_EXPIRES: u32 = 1001;
pub const SERVICE_ROUTE: u32 = 1002;
pub const PUB_GRUU: u32 = 1003;
pub const TEMP_GRUU: u32 = 1004;
pub const RETRY_BASE_SECONDS: u32 = 1005;
pub const RETRY_MAX_SECONDS: u32 = 1006;
pub const INSTANCE_ID: u32 = 1007;
pub const TLS_CA_FILE: u32 = 1008;
pub const CONTACT_URI: u32 = 1009;
/// `MD5` (default), `SHA-256` or `SHA-512-256`: weaker digest challenges are
/// not answered (contract §8.4).
pub const DIGEST_MIN_ALGORITHM: u32 = 1010;
pub const KEEPALIVE_SECONDS: u32 = 1011;
pub const OUTBOUND: u32 = 1012;

/// The longest keep-alive period `KEEPALIVE_SECONDS` takes.
pub const MAX_KEEPALIVE_SECONDS: u32 = 3600;

pub const DEFAULT_EXPIRES_IETF: u32 = 3600;
pub const DEFAULT_EXPIRES_IMS: u32 = 600_000;
pub const DEFAULT_RETRY_BASE_SECONDS: u32 = 30;
pub const DEFAULT_RETRY_MAX_SECONDS: u32 = 1800;

/// Keys 1000–1999 belong to this library and are typed strictly.
pub fn is_library_key(key: u32) -> bool {
    (1000..2000).contains(&key)
}
