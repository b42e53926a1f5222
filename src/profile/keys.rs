//! Parameter key numbers: ref §4.1's keys and this library's own,
//! 1000–1999 (contract §5.1). The one place each number is written: the
//! header's `SIP_KEY_*`/`SIP_SERVER_*` are these constants (cbindgen), the
//! core uses them under the short names below, and the Python and C++
//! bindings are checked against the header.

/// u32, read-only: profile id (0 until saved).
pub const SIP_KEY_PROFILE_ID: u32 = 1;
/// string: user-visible provider name.
pub const SIP_KEY_PROVIDER_NAME: u32 = 2;
/// u32: network interface index the profile's traffic must use (0: any).
pub const SIP_KEY_ACCESS_POINT_ID: u32 = 3;
/// bool: SigComp (stored only; registration is uncompressed).
pub const SIP_KEY_SIG_COMP: u32 = 4;
/// bool: security negotiation (sec-agree).
pub const SIP_KEY_SECURITY_NEGOTIATION: u32 = 5;
/// bool: registered even when no registry enabled it.
pub const SIP_KEY_AUTO_REGISTRATION: u32 = 6;
/// string: public identity (address-of-record URI).
pub const SIP_KEY_USER_AOR: u32 = 7;
/// bool, read-only: registered.
pub const SIP_KEY_PROFILE_REGISTERED: u32 = 8;
/// string array, read-only: AORs actually registered.
pub const SIP_KEY_REGISTERED_AORS: u32 = 9;
/// string, read-only: negotiated security mechanism.
pub const SIP_KEY_NEGOTIATED_SECURITY_MECHANISM: u32 = 10;
/// bool: is the default profile (set true and save to make it default).
pub const SIP_KEY_DEFAULT_PROFILE: u32 = 11;
/// string array: extra Contact parameters ("name[=value]").
pub const SIP_KEY_CONTACT_HEADER_PARAMS: u32 = 12;
/// string, read-only: the registered Contact value.
pub const SIP_KEY_REGISTERED_CONTACT: u32 = 13;
/// u32: SNAP id (stored only).
pub const SIP_KEY_SNAP_ID: u32 = 14;
/// string, read-only: generated Contact user part.
pub const SIP_KEY_CONTACT_HEADER_USER: u32 = 15;
/// u32: IP TOS for signalling.
pub const SIP_KEY_SO_IP_TOS: u32 = 16;
/// string: network interface name the profile's traffic must use.
pub const SIP_KEY_ACCESS_POINT_NAME: u32 = 17;
/// string: SNAP name (stored only).
pub const SIP_KEY_SNAP_NAME: u32 = 18;
/// bool: resolve the outbound proxy dynamically.
pub const SIP_KEY_RESOLVE_PROXY: u32 = 19;
/// string: primary APN.
pub const SIP_KEY_PRIMARY_APN: u32 = 20;
/// string: secondary APN.
pub const SIP_KEY_SECONDARY_APN: u32 = 21;
/// u32: bearer type (0 any, 1 WLAN, 2 cellular).
pub const SIP_KEY_BEARER_TYPE: u32 = 22;
/// Server selector: the registrar.
pub const SIP_SERVER_REGISTRAR: u32 = 130;
/// Server selector: the outbound proxy.
pub const SIP_SERVER_OUTBOUND_PROXY: u32 = 131;
/// per-server string: digest user name.
pub const SIP_KEY_DIGEST_USER_NAME: u32 = 150;
/// per-server string: digest realm.
pub const SIP_KEY_DIGEST_REALM: u32 = 151;
/// per-server string: server URI.
pub const SIP_KEY_SERVER_ADDRESS: u32 = 152;
/// string: IMS private identity.
pub const SIP_KEY_PRIVATE_IDENTITY: u32 = 500;
/// per-server string, write-only: digest password.
pub const SIP_KEY_DIGEST_PASSWORD: u32 = 501;
/// string array: extra REGISTER headers ("Name: value").
pub const SIP_KEY_HEADERS: u32 = 502;
/// u32: IMS registration modes allowed.
pub const SIP_KEY_ALLOW_IMS_REGISTRATION: u32 = 503;
/// bool: UI hint, do not edit.
pub const SIP_KEY_PROFILE_LOCKED: u32 = 504;
/// bool: auto-register only on the home network (stored only).
pub const SIP_KEY_ALLOW_AUTO_REGISTRATION_ONLY_ON_HOME_NETWORK: u32 = 505;
/// u32: Expires asked for in REGISTER (default 3600 IETF, 600000 ims).
pub const SIP_KEY_REGISTRATION_EXPIRES: u32 = 1000;
/// u32, read-only: expiry granted in the last 2xx; 0 when unregistered.
pub const SIP_KEY_GRANTED_EXPIRES: u32 = 1001;
/// string array, read-only: Service-Route of the last 2xx.
pub const SIP_KEY_SERVICE_ROUTE: u32 = 1002;
/// string, read-only: public GRUU granted.
pub const SIP_KEY_PUB_GRUU: u32 = 1003;
/// string, read-only: temporary GRUU granted.
pub const SIP_KEY_TEMP_GRUU: u32 = 1004;
/// u32: first retry delay base in seconds (default 30).
pub const SIP_KEY_RETRY_BASE_SECONDS: u32 = 1005;
/// u32: retry delay cap in seconds (default 1800).
pub const SIP_KEY_RETRY_MAX_SECONDS: u32 = 1006;
/// string: `+sip.instance` URN (generated `urn:uuid:` if unset).
pub const SIP_KEY_INSTANCE_ID: u32 = 1007;
/// string: PEM file of extra trust anchors for TLS.
pub const SIP_KEY_TLS_CA_FILE: u32 = 1008;
/// string: the Contact to register instead of the library's own (the
/// application's SIP stack), a `sip:`/`sips:` URI; empty = the library's.
pub const SIP_KEY_CONTACT_URI: u32 = 1009;
/// string: weakest digest algorithm answered, `MD5` (default), `SHA-256` or
/// `SHA-512-256`; weaker challenges fail the attempt with
/// `SIP_ERR_PERMISSION_DENIED`. Answers without qop (RFC 2069) only with
/// `MD5`. Unset (or set to ""), MD5 is refused once SHA-256 or better has
/// succeeded at the registrar; set to `MD5`, MD5 is always answered.
pub const SIP_KEY_DIGEST_MIN_ALGORITHM: u32 = 1010;
/// u32: keep-alive period of the profile's flow in seconds (CRLF on TCP/TLS,
/// STUN on UDP), at most 3600; 0 = the library's default (the registrar's
/// Flow-Timer if it sent one).
pub const SIP_KEY_KEEPALIVE_SECONDS: u32 = 1011;
/// bool: RFC 5626 outbound: register with `reg-id`, `+sip.instance` and
/// `;ob`, keep the flow alive, register again on a new flow when it fails.
pub const SIP_KEY_OUTBOUND: u32 = 1012;

// Short names for the core (a `use`, so not a second constant in the header).
pub use SIP_KEY_ACCESS_POINT_ID as ACCESS_POINT_ID;
pub use SIP_KEY_ACCESS_POINT_NAME as ACCESS_POINT_NAME;
pub use SIP_KEY_ALLOW_AUTO_REGISTRATION_ONLY_ON_HOME_NETWORK as ALLOW_AUTO_REGISTRATION_ONLY_ON_HOME_NETWORK;
pub use SIP_KEY_ALLOW_IMS_REGISTRATION as ALLOW_IMS_REGISTRATION;
pub use SIP_KEY_AUTO_REGISTRATION as AUTO_REGISTRATION;
pub use SIP_KEY_BEARER_TYPE as BEARER_TYPE;
pub use SIP_KEY_CONTACT_HEADER_PARAMS as CONTACT_HEADER_PARAMS;
pub use SIP_KEY_CONTACT_HEADER_USER as CONTACT_HEADER_USER;
pub use SIP_KEY_CONTACT_URI as CONTACT_URI;
pub use SIP_KEY_DEFAULT_PROFILE as DEFAULT_PROFILE;
pub use SIP_KEY_DIGEST_MIN_ALGORITHM as DIGEST_MIN_ALGORITHM;
pub use SIP_KEY_DIGEST_PASSWORD as DIGEST_PASSWORD;
pub use SIP_KEY_DIGEST_REALM as DIGEST_REALM;
pub use SIP_KEY_DIGEST_USER_NAME as DIGEST_USER_NAME;
pub use SIP_KEY_GRANTED_EXPIRES as GRANTED_EXPIRES;
pub use SIP_KEY_HEADERS as HEADERS;
pub use SIP_KEY_INSTANCE_ID as INSTANCE_ID;
pub use SIP_KEY_KEEPALIVE_SECONDS as KEEPALIVE_SECONDS;
pub use SIP_KEY_NEGOTIATED_SECURITY_MECHANISM as NEGOTIATED_SECURITY_MECHANISM;
pub use SIP_KEY_OUTBOUND as OUTBOUND;
pub use SIP_KEY_PRIMARY_APN as PRIMARY_APN;
pub use SIP_KEY_PRIVATE_IDENTITY as PRIVATE_IDENTITY;
pub use SIP_KEY_PROFILE_ID as PROFILE_ID;
pub use SIP_KEY_PROFILE_LOCKED as PROFILE_LOCKED;
pub use SIP_KEY_PROFILE_REGISTERED as PROFILE_REGISTERED;
pub use SIP_KEY_PROVIDER_NAME as PROVIDER_NAME;
pub use SIP_KEY_PUB_GRUU as PUB_GRUU;
pub use SIP_KEY_REGISTERED_AORS as REGISTERED_AORS;
pub use SIP_KEY_REGISTERED_CONTACT as REGISTERED_CONTACT;
pub use SIP_KEY_REGISTRATION_EXPIRES as REGISTRATION_EXPIRES;
pub use SIP_KEY_RESOLVE_PROXY as RESOLVE_PROXY;
pub use SIP_KEY_RETRY_BASE_SECONDS as RETRY_BASE_SECONDS;
pub use SIP_KEY_RETRY_MAX_SECONDS as RETRY_MAX_SECONDS;
pub use SIP_KEY_SECONDARY_APN as SECONDARY_APN;
pub use SIP_KEY_SECURITY_NEGOTIATION as SECURITY_NEGOTIATION;
pub use SIP_KEY_SERVER_ADDRESS as SERVER_ADDRESS;
pub use SIP_KEY_SERVICE_ROUTE as SERVICE_ROUTE;
pub use SIP_KEY_SIG_COMP as SIG_COMP;
pub use SIP_KEY_SNAP_ID as SNAP_ID;
pub use SIP_KEY_SNAP_NAME as SNAP_NAME;
pub use SIP_KEY_SO_IP_TOS as SO_IP_TOS;
pub use SIP_KEY_TEMP_GRUU as TEMP_GRUU;
pub use SIP_KEY_TLS_CA_FILE as TLS_CA_FILE;
pub use SIP_KEY_USER_AOR as USER_AOR;
pub use SIP_SERVER_OUTBOUND_PROXY as SERVER_OUTBOUND_PROXY;
pub use SIP_SERVER_REGISTRAR as SERVER_REGISTRAR;

/// Which typed functions read and write a key (ref §4.1's type column).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyType {
    U32,
    Bool,
    Str,
    StrArray,
    /// A per-server string (`sip_profile_get_server_str`/`set_server_str`).
    ServerStr,
    /// A server selector, not a key of its own.
    Server,
}

impl KeyType {
    /// The C setter for values of this type.
    pub fn setter(self) -> &'static str {
        match self {
            KeyType::U32 => "sip_profile_set_u32",
            KeyType::Bool => "sip_profile_set_bool",
            KeyType::Str => "sip_profile_set_str",
            KeyType::StrArray => "sip_profile_set_str_array",
            KeyType::ServerStr | KeyType::Server => "sip_profile_set_server_str",
        }
    }

    /// What a value of this type is, in words.
    pub fn noun(self) -> &'static str {
        match self {
            KeyType::U32 => "a u32",
            KeyType::Bool => "a bool",
            KeyType::Str => "a string",
            KeyType::StrArray => "a string array",
            KeyType::ServerStr => "a per-server string",
            KeyType::Server => "a server selector",
        }
    }
}

/// A key this library knows: its C name, type, and whether it is read-only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyInfo {
    pub name: &'static str,
    pub key_type: KeyType,
    pub read_only: bool,
}

/// The C name, type and access of `key`; `None` for a key this library does
/// not define (an extension key, stored as given).
pub fn info(key: u32) -> Option<KeyInfo> {
    let (name, key_type, read_only) = match key {
        SIP_KEY_PROFILE_ID => ("SIP_KEY_PROFILE_ID", KeyType::U32, true),
        SIP_KEY_PROVIDER_NAME => ("SIP_KEY_PROVIDER_NAME", KeyType::Str, false),
        SIP_KEY_ACCESS_POINT_ID => ("SIP_KEY_ACCESS_POINT_ID", KeyType::U32, false),
        SIP_KEY_SIG_COMP => ("SIP_KEY_SIG_COMP", KeyType::Bool, false),
        SIP_KEY_SECURITY_NEGOTIATION => ("SIP_KEY_SECURITY_NEGOTIATION", KeyType::Bool, false),
        SIP_KEY_AUTO_REGISTRATION => ("SIP_KEY_AUTO_REGISTRATION", KeyType::Bool, false),
        SIP_KEY_USER_AOR => ("SIP_KEY_USER_AOR", KeyType::Str, false),
        SIP_KEY_PROFILE_REGISTERED => ("SIP_KEY_PROFILE_REGISTERED", KeyType::Bool, true),
        SIP_KEY_REGISTERED_AORS => ("SIP_KEY_REGISTERED_AORS", KeyType::StrArray, true),
        SIP_KEY_NEGOTIATED_SECURITY_MECHANISM => {
            ("SIP_KEY_NEGOTIATED_SECURITY_MECHANISM", KeyType::Str, true)
        }
        SIP_KEY_DEFAULT_PROFILE => ("SIP_KEY_DEFAULT_PROFILE", KeyType::Bool, false),
        SIP_KEY_CONTACT_HEADER_PARAMS => {
            ("SIP_KEY_CONTACT_HEADER_PARAMS", KeyType::StrArray, false)
        }
        SIP_KEY_REGISTERED_CONTACT => ("SIP_KEY_REGISTERED_CONTACT", KeyType::Str, true),
        SIP_KEY_SNAP_ID => ("SIP_KEY_SNAP_ID", KeyType::U32, false),
        SIP_KEY_CONTACT_HEADER_USER => ("SIP_KEY_CONTACT_HEADER_USER", KeyType::Str, true),
        SIP_KEY_SO_IP_TOS => ("SIP_KEY_SO_IP_TOS", KeyType::U32, false),
        SIP_KEY_ACCESS_POINT_NAME => ("SIP_KEY_ACCESS_POINT_NAME", KeyType::Str, false),
        SIP_KEY_SNAP_NAME => ("SIP_KEY_SNAP_NAME", KeyType::Str, false),
        SIP_KEY_RESOLVE_PROXY => ("SIP_KEY_RESOLVE_PROXY", KeyType::Bool, false),
        SIP_KEY_PRIMARY_APN => ("SIP_KEY_PRIMARY_APN", KeyType::Str, false),
        SIP_KEY_SECONDARY_APN => ("SIP_KEY_SECONDARY_APN", KeyType::Str, false),
        SIP_KEY_BEARER_TYPE => ("SIP_KEY_BEARER_TYPE", KeyType::U32, false),
        SIP_SERVER_REGISTRAR => ("SIP_SERVER_REGISTRAR", KeyType::Server, false),
        SIP_SERVER_OUTBOUND_PROXY => ("SIP_SERVER_OUTBOUND_PROXY", KeyType::Server, false),
        SIP_KEY_DIGEST_USER_NAME => ("SIP_KEY_DIGEST_USER_NAME", KeyType::ServerStr, false),
        SIP_KEY_DIGEST_REALM => ("SIP_KEY_DIGEST_REALM", KeyType::ServerStr, false),
        SIP_KEY_SERVER_ADDRESS => ("SIP_KEY_SERVER_ADDRESS", KeyType::ServerStr, false),
        SIP_KEY_PRIVATE_IDENTITY => ("SIP_KEY_PRIVATE_IDENTITY", KeyType::Str, false),
        SIP_KEY_DIGEST_PASSWORD => ("SIP_KEY_DIGEST_PASSWORD", KeyType::ServerStr, false),
        SIP_KEY_HEADERS => ("SIP_KEY_HEADERS", KeyType::StrArray, false),
        SIP_KEY_ALLOW_IMS_REGISTRATION => ("SIP_KEY_ALLOW_IMS_REGISTRATION", KeyType::U32, false),
        SIP_KEY_PROFILE_LOCKED => ("SIP_KEY_PROFILE_LOCKED", KeyType::Bool, false),
        SIP_KEY_ALLOW_AUTO_REGISTRATION_ONLY_ON_HOME_NETWORK => (
            "SIP_KEY_ALLOW_AUTO_REGISTRATION_ONLY_ON_HOME_NETWORK",
            KeyType::Bool,
            false,
        ),
        SIP_KEY_REGISTRATION_EXPIRES => ("SIP_KEY_REGISTRATION_EXPIRES", KeyType::U32, false),
        SIP_KEY_GRANTED_EXPIRES => ("SIP_KEY_GRANTED_EXPIRES", KeyType::U32, true),
        SIP_KEY_SERVICE_ROUTE => ("SIP_KEY_SERVICE_ROUTE", KeyType::StrArray, true),
        SIP_KEY_PUB_GRUU => ("SIP_KEY_PUB_GRUU", KeyType::Str, true),
        SIP_KEY_TEMP_GRUU => ("SIP_KEY_TEMP_GRUU", KeyType::Str, true),
        SIP_KEY_RETRY_BASE_SECONDS => ("SIP_KEY_RETRY_BASE_SECONDS", KeyType::U32, false),
        SIP_KEY_RETRY_MAX_SECONDS => ("SIP_KEY_RETRY_MAX_SECONDS", KeyType::U32, false),
        SIP_KEY_INSTANCE_ID => ("SIP_KEY_INSTANCE_ID", KeyType::Str, false),
        SIP_KEY_TLS_CA_FILE => ("SIP_KEY_TLS_CA_FILE", KeyType::Str, false),
        SIP_KEY_CONTACT_URI => ("SIP_KEY_CONTACT_URI", KeyType::Str, false),
        SIP_KEY_DIGEST_MIN_ALGORITHM => ("SIP_KEY_DIGEST_MIN_ALGORITHM", KeyType::Str, false),
        SIP_KEY_KEEPALIVE_SECONDS => ("SIP_KEY_KEEPALIVE_SECONDS", KeyType::U32, false),
        SIP_KEY_OUTBOUND => ("SIP_KEY_OUTBOUND", KeyType::Bool, false),
        _ => return None,
    };
    Some(KeyInfo {
        name,
        key_type,
        read_only,
    })
}

/// `key` as messages show it: `SIP_KEY_USER_AOR (7)`, or the bare number.
pub fn display(key: u32) -> String {
    match info(key) {
        Some(i) => format!("{} ({key})", i.name),
        None => format!("{key}"),
    }
}

/// Keys 1000–1999 belong to this library and are typed strictly.
pub fn is_library_key(key: u32) -> bool {
    (1000..2000).contains(&key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_named_key_is_described() {
        assert_eq!(info(USER_AOR).map(|i| i.name), Some("SIP_KEY_USER_AOR"));
        assert_eq!(
            info(SERVER_REGISTRAR).map(|i| i.key_type),
            Some(KeyType::Server)
        );
        assert!(info(PROFILE_ID).is_some_and(|i| i.read_only));
        assert_eq!(info(700), None);
        assert_eq!(display(DIGEST_PASSWORD), "SIP_KEY_DIGEST_PASSWORD (501)");
        assert_eq!(display(1999), "1999");
    }
}
