//! Which typed getter or setter reads or writes which key, and the error for
//! every other combination: ref §4.2 (getters) and §4.3 (setters), plus the
//! library keys 1000–1010 (contract §5.1, §8.4), which are typed strictly.

use super::keys::*;
use super::model::{ProfileData, RegistrationInfo, Status};
use crate::error::with_context;
use crate::sip::digest::has_control;
use crate::{Error, Result};

/// `error` for `key`, which the `tried` getter or setter does not take: the
/// message says whether the key is read-only, of another type, or unknown.
fn refused(error: Error, key: u32, tried: KeyType, setting: bool) -> Error {
    let key_name = display(key);
    let message = match info(key) {
        Some(i) if setting && i.read_only => format!("key {key_name} is read-only"),
        Some(i) if i.key_type == KeyType::Server => format!(
            "{key_name} is a server selector: pass it as `server` to {}",
            if setting {
                "sip_profile_set_server_str"
            } else {
                "sip_profile_get_server_str"
            }
        ),
        Some(i) if i.key_type != tried => {
            let how = if setting {
                i.key_type.setter().to_owned()
            } else {
                i.key_type.setter().replace("_set_", "_get_")
            };
            format!("key {key_name} is {} key: use {how}", i.key_type.noun())
        }
        Some(_) if setting => format!("key {key_name} cannot be set"),
        Some(_) => format!("key {key_name} has no value"),
        None if is_library_key(key) => format!(
            "key {key} is not defined: 1000-1999 are this library's own keys \
             (the others are application keys)"
        ),
        None if setting => format!("key {key} cannot be set with {}", tried.setter()),
        None => format!(
            "key {key} has no {} value",
            tried.noun().trim_start_matches("a ")
        ),
    };
    with_context(error, message)
}

fn not_found(key: u32, tried: KeyType) -> Error {
    refused(Error::NotFound, key, tried, false)
}

fn not_settable(key: u32, tried: KeyType) -> Error {
    refused(Error::NotFound, key, tried, true)
}

/// `SIP_ERR_ARGUMENT` for a value `key` does not accept, saying why.
fn invalid(key: u32, why: impl std::fmt::Display) -> Error {
    with_context(Error::Argument, format!("key {}: {why}", display(key)))
}

/// A value as messages quote it: escaped, and cut after 60 characters.
fn quoted(value: &str) -> String {
    let mut cut: String = value.chars().take(60).collect();
    if cut.len() < value.len() {
        cut.push_str("...");
    }
    format!("{cut:?}")
}

fn check_uri(key: u32, value: &str) -> Result<()> {
    if !value.is_empty() && crate::sip::uri::Uri::parse(value).is_err() {
        return Err(invalid(
            key,
            format!(
                "{} is not a SIP URI (sip:user@host[:port][;params], sips:... or tel:...)",
                quoted(value)
            ),
        ));
    }
    Ok(())
}

/// What a getter sees: the client copy of the data and of the registration.
pub struct View<'a> {
    pub data: &'a ProfileData,
    pub reg: &'a RegistrationInfo,
    pub is_default: bool,
}

pub fn get_u32(v: &View, key: u32) -> Result<u32> {
    let d = v.data;
    match key {
        PROFILE_ID => Ok(d.id),
        ACCESS_POINT_ID => Ok(d.access_point_id),
        REGISTRATION_EXPIRES => Ok(d.registration_expires()),
        GRANTED_EXPIRES => Ok(v.reg.granted_expires),
        RETRY_BASE_SECONDS => Ok(d.retry_base_seconds()),
        RETRY_MAX_SECONDS => Ok(d.retry_max_seconds()),
        KEEPALIVE_SECONDS => Ok(d.ext_u32.get(&key).copied().unwrap_or(0)),
        k if is_library_key(k) => Err(not_found(k, KeyType::U32)),
        k => d
            .ext_u32
            .get(&k)
            .copied()
            .ok_or_else(|| not_found(k, KeyType::U32)),
    }
}

pub fn get_bool(v: &View, key: u32) -> Result<bool> {
    let d = v.data;
    match key {
        SIG_COMP => Ok(d.sig_comp),
        SECURITY_NEGOTIATION => Ok(d.security_negotiation),
        AUTO_REGISTRATION => Ok(d.auto_registration),
        PROFILE_REGISTERED => Ok(v.reg.status == Status::Registered),
        DEFAULT_PROFILE => Ok(v.is_default),
        OUTBOUND => Ok(d.ext_bool.get(&key).copied().unwrap_or(false)),
        k if is_library_key(k) => Err(not_found(k, KeyType::Bool)),
        k => d
            .ext_bool
            .get(&k)
            .copied()
            .ok_or_else(|| not_found(k, KeyType::Bool)),
    }
}

pub fn get_str<'a>(v: &View<'a>, key: u32) -> Result<&'a str> {
    let d = v.data;
    let reg = v.reg;
    match key {
        PROVIDER_NAME => Ok(&d.provider_name),
        USER_AOR => Ok(&d.aor),
        PRIVATE_IDENTITY => Ok(&d.private_identity),
        // No sec-agree is negotiated by this library: always empty (ref §4.1 key 10).
        NEGOTIATED_SECURITY_MECHANISM => Ok(""),
        CONTACT_HEADER_USER => Ok(&d.contact_user),
        REGISTERED_CONTACT if !reg.registered_contact.is_empty() => Ok(&reg.registered_contact),
        REGISTERED_CONTACT => Err(with_context(
            Error::NotFound,
            format!(
                "key {} has no value: the profile is not registered",
                display(REGISTERED_CONTACT)
            ),
        )),
        k @ (1 | 3 | 4 | 5 | 6 | 8 | 9 | 11 | 12 | 130 | 131 | 150 | 151 | 152 | 501) => {
            Err(not_found(k, KeyType::Str))
        }
        PUB_GRUU if !reg.pub_gruu.is_empty() => Ok(&reg.pub_gruu),
        TEMP_GRUU if !reg.temp_gruu.is_empty() => Ok(&reg.temp_gruu),
        DIGEST_MIN_ALGORITHM => Ok(d
            .ext_str
            .get(&key)
            .map_or(crate::sip::digest::Algorithm::Md5.name(), String::as_str)),
        k @ (PUB_GRUU | TEMP_GRUU) => Err(with_context(
            Error::NotFound,
            format!("key {} has no value: no GRUU was granted", display(k)),
        )),
        INSTANCE_ID | TLS_CA_FILE | CONTACT_URI => d
            .ext_str
            .get(&key)
            .map(String::as_str)
            .ok_or_else(|| not_found(key, KeyType::Str)),
        k if is_library_key(k) => Err(not_found(k, KeyType::Str)),
        k => d
            .ext_str
            .get(&k)
            .map(String::as_str)
            .ok_or_else(|| not_found(k, KeyType::Str)),
    }
}

pub fn get_str_array(v: &View, key: u32) -> Result<Vec<String>> {
    let d = v.data;
    match key {
        REGISTERED_AORS => Ok(if v.reg.status == Status::Registered {
            v.reg.registered_aors.clone()
        } else {
            Vec::new()
        }),
        CONTACT_HEADER_PARAMS => Ok(d.contact_params.clone()),
        HEADERS => Ok(d.headers.clone()),
        SERVICE_ROUTE => Ok(v.reg.service_route.clone()),
        k if is_library_key(k) => Err(not_found(k, KeyType::StrArray)),
        k => d
            .ext_array
            .get(&k)
            .cloned()
            .ok_or_else(|| not_found(k, KeyType::StrArray)),
    }
}

pub fn get_server_str<'a>(v: &View<'a>, server: u32, key: u32) -> Result<&'a str> {
    let s = v.data.server(server);
    match key {
        DIGEST_PASSWORD => Err(with_context(
            Error::PermissionDenied,
            format!(
                "key {} is write-only: passwords are never read back",
                display(DIGEST_PASSWORD)
            ),
        )),
        DIGEST_USER_NAME => Ok(s.map(|s| s.user.as_str()).unwrap_or("")),
        DIGEST_REALM => Ok(s.map(|s| s.realm.as_str()).unwrap_or("")),
        SERVER_ADDRESS => Ok(s.map(|s| s.address.as_str()).unwrap_or("")),
        k @ (1..=12 | 16 | 20 | 21 | 130 | 131 | 500) => Err(not_found(k, KeyType::ServerStr)),
        k => Ok(s
            .and_then(|s| s.ext.get(&k.to_string()))
            .map(String::as_str)
            .unwrap_or("")),
    }
}

pub fn set_u32(d: &mut ProfileData, key: u32, value: u32) -> Result<()> {
    match key {
        ACCESS_POINT_ID => {
            d.access_point_id = value;
            Ok(())
        }
        k @ (1 | 2 | 4..=12 | 130 | 131 | 150..=152 | 500..=502 | 15 | 20 | 21) => {
            Err(not_settable(k, KeyType::U32))
        }
        SNAP_ID if value == 0 => Err(invalid(SNAP_ID, "0 is not a SNAP id")),
        REGISTRATION_EXPIRES | RETRY_BASE_SECONDS | RETRY_MAX_SECONDS => {
            if value == 0 {
                return Err(invalid(key, "must be at least 1 (seconds)"));
            }
            d.ext_u32.insert(key, value);
            Ok(())
        }
        KEEPALIVE_SECONDS if value > MAX_KEEPALIVE_SECONDS => Err(invalid(
            key,
            format!("at most {MAX_KEEPALIVE_SECONDS} seconds (0: the default)"),
        )),
        KEEPALIVE_SECONDS => {
            if value == 0 {
                d.ext_u32.remove(&key);
            } else {
                d.ext_u32.insert(key, value);
            }
            Ok(())
        }
        k if is_library_key(k) => Err(not_settable(k, KeyType::U32)),
        k => {
            d.ext_u32.insert(k, value);
            Ok(())
        }
    }
}

pub fn set_bool(d: &mut ProfileData, key: u32, value: bool) -> Result<()> {
    match key {
        DEFAULT_PROFILE if !value => Err(invalid(
            DEFAULT_PROFILE,
            "can only be set to true (make another profile the default instead)",
        )),
        DEFAULT_PROFILE => {
            d.make_default = true;
            Ok(())
        }
        SIG_COMP => {
            d.sig_comp = value;
            Ok(())
        }
        SECURITY_NEGOTIATION => {
            d.security_negotiation = value;
            Ok(())
        }
        AUTO_REGISTRATION => {
            d.auto_registration = value;
            Ok(())
        }
        k @ (1
        | 2
        | 3
        | 7..=10
        | 12
        | 130
        | 131
        | 150..=152
        | 500..=502
        | 15
        | 16
        | 14
        | 20
        | 21
        | 22) => Err(not_settable(k, KeyType::Bool)),
        OUTBOUND => {
            if value {
                d.ext_bool.insert(key, true);
            } else {
                d.ext_bool.remove(&key);
            }
            Ok(())
        }
        k if is_library_key(k) => Err(not_settable(k, KeyType::Bool)),
        k => {
            d.ext_bool.insert(k, value);
            Ok(())
        }
    }
}

pub fn set_str(d: &mut ProfileData, key: u32, value: &str) -> Result<()> {
    match key {
        PROVIDER_NAME => {
            d.provider_name = value.to_owned();
            Ok(())
        }
        USER_AOR => {
            check_uri(key, value)?;
            d.aor = value.to_owned();
            Ok(())
        }
        // Goes into Authorization (IMS): no line break may come with it.
        PRIVATE_IDENTITY if has_control(value) => Err(invalid(
            key,
            format!("{} holds a control character", quoted(value)),
        )),
        PRIVATE_IDENTITY => {
            d.private_identity = value.to_owned();
            Ok(())
        }
        CONTACT_HEADER_USER => Err(with_context(
            Error::AccessDenied,
            format!(
                "key {} is generated by the library and read-only",
                display(CONTACT_HEADER_USER)
            ),
        )),
        k @ (1 | 3..=6 | 8..=12 | 130 | 131 | 150..=152 | 501 | 502 | 16 | 22) => {
            Err(not_settable(k, KeyType::Str))
        }
        // Filled in by registration only (ref §4.1: "treat as RO").
        REGISTERED_CONTACT => Err(not_settable(REGISTERED_CONTACT, KeyType::Str)),
        INSTANCE_ID => {
            if !value.is_empty() && !value.to_ascii_lowercase().starts_with("urn:") {
                return Err(invalid(
                    key,
                    format!("{} is not a URN (urn:uuid:...)", quoted(value)),
                ));
            }
            if has_control(value) || value.contains(['"', '>']) {
                return Err(invalid(
                    key,
                    format!("{} holds a control character, '\"' or '>'", quoted(value)),
                ));
            }
            set_ext_str(d, key, value);
            Ok(())
        }
        TLS_CA_FILE => {
            set_ext_str(d, key, value);
            Ok(())
        }
        CONTACT_URI => {
            if !value.is_empty() && !is_contact_uri(value) {
                return Err(invalid(key, "not a sip: or sips: URI for a Contact"));
            }
            set_ext_str(d, key, value);
            Ok(())
        }
        // One of the three names (stored as spelled by the contract); ""
        // goes back to the default (MD5 until the registrar has shown
        // SHA-256 or better), which differs from an explicit "MD5".
        DIGEST_MIN_ALGORITHM => {
            if value.is_empty() {
                set_ext_str(d, key, value);
                return Ok(());
            }
            let a = crate::sip::digest::Algorithm::from_name(value).ok_or_else(|| {
                invalid(
                    key,
                    format!("{} is not MD5, SHA-256 or SHA-512-256", quoted(value)),
                )
            })?;
            set_ext_str(d, key, a.name());
            Ok(())
        }
        k if is_library_key(k) => Err(not_settable(k, KeyType::Str)),
        k => {
            set_ext_str(d, k, value);
            Ok(())
        }
    }
}

/// The longest keep-alive period `SIP_KEY_KEEPALIVE_SECONDS` takes.
const MAX_KEEPALIVE_SECONDS: u32 = 3600;

/// A `sip:` or `sips:` URI with a host that can stand in a Contact header
/// between `<` and `>` (`SIP_KEY_CONTACT_URI`).
fn is_contact_uri(value: &str) -> bool {
    use crate::sip::uri::{Scheme, Uri};
    !value.contains(['<', '>', '"', ','])
        && Uri::parse(value).is_ok_and(|u| {
            matches!(u.scheme, Scheme::Sip | Scheme::Sips)
                && !u.host.is_empty()
                && u.headers.is_empty()
        })
}

fn set_ext_str(d: &mut ProfileData, key: u32, value: &str) {
    if value.is_empty() {
        d.ext_str.remove(&key);
    } else {
        d.ext_str.insert(key, value.to_owned());
    }
}

pub fn set_str_array(d: &mut ProfileData, key: u32, values: Vec<String>) -> Result<()> {
    match key {
        CONTACT_HEADER_PARAMS => {
            if let Some((i, v)) = values
                .iter()
                .enumerate()
                .find(|(_, v)| v.is_empty() || has_control(v) || v.contains([',', '>']))
            {
                return Err(invalid(
                    key,
                    format!(
                        "entry {i} {} is empty or holds a control character, ',' or '>'",
                        quoted(v)
                    ),
                ));
            }
            d.contact_params = values;
            Ok(())
        }
        HEADERS => {
            if let Some((i, h)) = values.iter().enumerate().find(|(_, h)| !is_header_line(h)) {
                return Err(invalid(
                    key,
                    format!(
                        "entry {i} {} is not one `Name: value` header line",
                        quoted(h)
                    ),
                ));
            }
            d.headers = values;
            Ok(())
        }
        k @ (1..=11 | 130 | 131 | 150..=152 | 500 | 501 | 15 | 16 | 14 | 20 | 21) => {
            Err(not_settable(k, KeyType::StrArray))
        }
        k if is_library_key(k) => Err(not_settable(k, KeyType::StrArray)),
        k => {
            if values.is_empty() {
                d.ext_array.remove(&k);
            } else {
                d.ext_array.insert(k, values);
            }
            Ok(())
        }
    }
}

/// `Name: value` on one line, with a token name.
fn is_header_line(h: &str) -> bool {
    let Some((name, _)) = h.split_once(':') else {
        return false;
    };
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b))
        && !has_control(h)
}

pub fn set_server_str(d: &mut ProfileData, server: u32, key: u32, value: &str) -> Result<()> {
    let Some(s) = d.server_mut(server) else {
        return Err(with_context(
            Error::Argument,
            format!(
                "server {server} is neither {} nor {}",
                display(SERVER_REGISTRAR),
                display(SERVER_OUTBOUND_PROXY)
            ),
        ));
    };
    match key {
        // The user name and realm go into Authorization: no control
        // character (a line break would inject header lines).
        DIGEST_USER_NAME | DIGEST_REALM if has_control(value) => {
            return Err(invalid(
                key,
                format!("{} holds a control character", quoted(value)),
            ));
        }
        DIGEST_USER_NAME => s.user = value.to_owned(),
        DIGEST_REALM => s.realm = value.to_owned(),
        DIGEST_PASSWORD => s.password = value.into(),
        SERVER_ADDRESS => {
            check_uri(key, value)?;
            s.address = value.to_owned();
        }
        k @ (1..=12 | 130 | 131 | 500 | 15 | 16 | 14 | 20 | 21) => {
            return Err(not_settable(k, KeyType::ServerStr));
        }
        k => {
            if value.is_empty() {
                s.ext.remove(&k.to_string());
            } else {
                s.ext.insert(k.to_string(), value.to_owned());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::model::TypeInfo;

    fn view(d: &ProfileData) -> (ProfileData, RegistrationInfo) {
        (d.clone(), RegistrationInfo::default())
    }

    #[test]
    fn typed_extension_tables_are_independent() {
        let mut d = ProfileData::new(TypeInfo::ietf());
        set_u32(&mut d, 700, 7).unwrap();
        set_bool(&mut d, 700, true).unwrap();
        set_str(&mut d, 700, "seven").unwrap();
        set_str_array(&mut d, 700, vec!["a".into()]).unwrap();
        let (d, r) = view(&d);
        let v = View {
            data: &d,
            reg: &r,
            is_default: false,
        };
        assert_eq!(get_u32(&v, 700), Ok(7));
        assert_eq!(get_bool(&v, 700), Ok(true));
        assert_eq!(get_str(&v, 700), Ok("seven"));
        assert_eq!(get_str_array(&v, 700), Ok(vec!["a".to_string()]));
    }

    #[test]
    fn builtin_keys_not_readable_through_wrong_getter() {
        let d = ProfileData::new(TypeInfo::ietf());
        let r = RegistrationInfo::default();
        let v = View {
            data: &d,
            reg: &r,
            is_default: false,
        };
        assert_eq!(get_u32(&v, SIG_COMP), Err(Error::NotFound));
        assert_eq!(get_str(&v, PROFILE_ID), Err(Error::NotFound));
        assert_eq!(get_str(&v, DIGEST_PASSWORD), Err(Error::NotFound));
        assert_eq!(
            get_server_str(&v, SERVER_REGISTRAR, DIGEST_PASSWORD),
            Err(Error::PermissionDenied)
        );
        assert_eq!(get_server_str(&v, 999, SERVER_ADDRESS), Ok(""));
        assert_eq!(get_server_str(&v, SERVER_REGISTRAR, 600), Ok(""));
    }

    #[test]
    fn keepalive_and_outbound_keys() {
        let mut d = ProfileData::new(TypeInfo::ietf());
        let r = RegistrationInfo::default();
        let get = |d: &ProfileData| {
            let v = View {
                data: d,
                reg: &r,
                is_default: false,
            };
            (get_u32(&v, KEEPALIVE_SECONDS), get_bool(&v, OUTBOUND))
        };
        assert_eq!(get(&d), (Ok(0), Ok(false)));
        set_u32(&mut d, KEEPALIVE_SECONDS, 30).unwrap();
        set_bool(&mut d, OUTBOUND, true).unwrap();
        assert_eq!(get(&d), (Ok(30), Ok(true)));
        assert_eq!(
            set_u32(&mut d, KEEPALIVE_SECONDS, MAX_KEEPALIVE_SECONDS + 1),
            Err(Error::Argument)
        );
        assert_eq!(get(&d), (Ok(30), Ok(true)));
        assert_eq!(
            set_str(&mut d, KEEPALIVE_SECONDS, "x"),
            Err(Error::NotFound)
        );
        set_u32(&mut d, KEEPALIVE_SECONDS, 0).unwrap();
        set_bool(&mut d, OUTBOUND, false).unwrap();
        assert_eq!(get(&d), (Ok(0), Ok(false)));
        assert!(d.ext_u32.is_empty() && d.ext_bool.is_empty());
    }

    #[test]
    fn contact_uri_must_be_a_sip_uri() {
        let mut d = ProfileData::new(TypeInfo::ietf());
        for bad in [
            "alice@example.com",
            "tel:+15550100",
            "sip:a@b>;x=1",
            "sip:a@b, <sip:c@d>",
            "sip:a@b?Subject=x",
            "sip:a@b c",
        ] {
            assert_eq!(
                set_str(&mut d, CONTACT_URI, bad),
                Err(Error::Argument),
                "{bad}"
            );
        }
        set_str(&mut d, CONTACT_URI, "sip:app@192.0.2.1:5080;transport=tcp").unwrap();
        assert_eq!(set_str(&mut d, CONTACT_URI, "bad"), Err(Error::Argument));
        let r = RegistrationInfo::default();
        let v = View {
            data: &d,
            reg: &r,
            is_default: false,
        };
        assert_eq!(
            get_str(&v, CONTACT_URI),
            Ok("sip:app@192.0.2.1:5080;transport=tcp")
        );
        set_str(&mut d, CONTACT_URI, "").unwrap();
        assert!(!d.ext_str.contains_key(&CONTACT_URI));
    }

    #[test]
    fn setter_rules() {
        let mut d = ProfileData::new(TypeInfo::ietf());
        assert_eq!(
            set_str(&mut d, CONTACT_HEADER_USER, "x"),
            Err(Error::AccessDenied)
        );
        assert_eq!(
            set_u32(&mut d, CONTACT_HEADER_USER, 1),
            Err(Error::NotFound)
        );
        assert_eq!(set_u32(&mut d, PROFILE_ID, 5), Err(Error::NotFound));
        assert_eq!(
            set_bool(&mut d, DEFAULT_PROFILE, false),
            Err(Error::Argument)
        );
        assert_eq!(set_u32(&mut d, SNAP_ID, 0), Err(Error::Argument));
        assert_eq!(set_str(&mut d, USER_AOR, "not a uri"), Err(Error::Argument));
        assert_eq!(
            set_server_str(&mut d, 7, SERVER_ADDRESS, "sip:x"),
            Err(Error::Argument)
        );
        assert_eq!(set_u32(&mut d, GRANTED_EXPIRES, 5), Err(Error::NotFound));
        assert_eq!(
            set_u32(&mut d, REGISTRATION_EXPIRES, 0),
            Err(Error::Argument)
        );
        assert_eq!(
            set_str_array(&mut d, HEADERS, vec!["bad".into()]),
            Err(Error::Argument)
        );
        set_str(&mut d, USER_AOR, "sip:alice@example.com").unwrap();
        set_server_str(&mut d, SERVER_REGISTRAR, DIGEST_PASSWORD, "pw").unwrap();
        assert_eq!(d.registrar.password, "pw");
        set_str(&mut d, 700, "x").unwrap();
        set_str(&mut d, 700, "").unwrap();
        assert!(!d.ext_str.contains_key(&700));
    }

    #[test]
    fn values_that_go_into_a_request_refuse_control_characters() {
        let mut d = ProfileData::new(TypeInfo::ietf());
        let bad = "x\r\nX-Injected: yes";
        assert_eq!(set_str(&mut d, PRIVATE_IDENTITY, bad), Err(Error::Argument));
        assert_eq!(
            set_str(&mut d, INSTANCE_ID, &format!("urn:{bad}")),
            Err(Error::Argument)
        );
        assert_eq!(
            set_str(&mut d, INSTANCE_ID, "urn:a\">"),
            Err(Error::Argument)
        );
        for key in [DIGEST_USER_NAME, DIGEST_REALM] {
            assert_eq!(
                set_server_str(&mut d, SERVER_REGISTRAR, key, bad),
                Err(Error::Argument)
            );
            assert_eq!(
                set_server_str(&mut d, SERVER_REGISTRAR, key, "a\u{0}"),
                Err(Error::Argument)
            );
        }
        assert_eq!(
            set_str_array(&mut d, HEADERS, vec!["X-A: 1\u{b}".into()]),
            Err(Error::Argument)
        );
        assert_eq!(
            set_str_array(&mut d, CONTACT_HEADER_PARAMS, vec!["a=\u{7f}".into()]),
            Err(Error::Argument)
        );
        // Nothing changed; a password may hold anything (it is only hashed).
        assert_eq!(d.private_identity, "");
        assert!(!d.ext_str.contains_key(&INSTANCE_ID));
        set_server_str(&mut d, SERVER_REGISTRAR, DIGEST_PASSWORD, "p\u{1}w").unwrap();
        set_server_str(&mut d, SERVER_REGISTRAR, DIGEST_USER_NAME, "alice\tsmith").unwrap();
    }

    #[test]
    fn digest_min_algorithm_key() {
        let mut d = ProfileData::new(TypeInfo::ietf());
        let get = |d: &ProfileData| {
            let r = RegistrationInfo::default();
            get_str(
                &View {
                    data: d,
                    reg: &r,
                    is_default: false,
                },
                DIGEST_MIN_ALGORITHM,
            )
            .map(str::to_owned)
        };
        assert_eq!(get(&d).as_deref(), Ok("MD5"));
        for (value, stored) in [
            ("sha-256", "SHA-256"),
            ("SHA-512-256", "SHA-512-256"),
            ("MD5", "MD5"),
        ] {
            set_str(&mut d, DIGEST_MIN_ALGORITHM, value).unwrap();
            assert_eq!(get(&d).as_deref(), Ok(stored));
            assert_eq!(
                d.ext_str.get(&DIGEST_MIN_ALGORITHM).map(String::as_str),
                Some(stored)
            );
        }
        for bad in ["SHA-1", "MD5-sess", "sha256", " MD5"] {
            assert_eq!(
                set_str(&mut d, DIGEST_MIN_ALGORITHM, bad),
                Err(Error::Argument)
            );
        }
        assert_eq!(get(&d).as_deref(), Ok("MD5"));
        // "" goes back to the default (unset, MD5 until SHA-256 was seen).
        set_str(&mut d, DIGEST_MIN_ALGORITHM, "").unwrap();
        assert!(!d.ext_str.contains_key(&DIGEST_MIN_ALGORITHM));
        assert_eq!(
            set_u32(&mut d, DIGEST_MIN_ALGORITHM, 1),
            Err(Error::NotFound)
        );
        assert_eq!(
            set_bool(&mut d, DIGEST_MIN_ALGORITHM, true),
            Err(Error::NotFound)
        );
    }

    /// The message a failed call leaves for `sip_last_error_message`.
    fn message(r: Result<()>) -> String {
        let e = r.expect_err("should fail");
        let m = crate::error::message_for(e.code());
        assert!(!m.is_empty(), "a message");
        m
    }

    #[test]
    fn refusals_name_the_key_and_why() {
        let mut d = ProfileData::new(TypeInfo::ietf());
        // Value invalid.
        let m = message(set_str(&mut d, USER_AOR, "not a uri"));
        assert!(
            m.contains("SIP_KEY_USER_AOR (7)") && m.contains("\"not a uri\" is not a SIP URI"),
            "{m}"
        );
        let m = message(set_server_str(
            &mut d,
            SERVER_REGISTRAR,
            SERVER_ADDRESS,
            "x y",
        ));
        assert!(
            m.contains("SIP_KEY_SERVER_ADDRESS (152)") && m.contains("not a SIP URI"),
            "{m}"
        );
        let m = message(set_u32(&mut d, REGISTRATION_EXPIRES, 0));
        assert!(
            m.contains("SIP_KEY_REGISTRATION_EXPIRES (1000)") && m.contains("at least 1"),
            "{m}"
        );
        let m = message(set_str_array(
            &mut d,
            HEADERS,
            vec!["X-Ok: 1".into(), "bad".into()],
        ));
        assert!(
            m.contains("SIP_KEY_HEADERS (502)") && m.contains("entry 1 \"bad\""),
            "{m}"
        );
        // Wrong type.
        let m = message(set_u32(&mut d, USER_AOR, 1));
        assert_eq!(
            m,
            "key SIP_KEY_USER_AOR (7) is a string key: use sip_profile_set_str"
        );
        let m = message(set_str(&mut d, DIGEST_USER_NAME, "alice"));
        assert!(
            m.contains("per-server string key: use sip_profile_set_server_str"),
            "{m}"
        );
        // Read-only.
        let m = message(set_u32(&mut d, PROFILE_ID, 5));
        assert_eq!(m, "key SIP_KEY_PROFILE_ID (1) is read-only");
        let m = message(set_str(&mut d, CONTACT_HEADER_USER, "x"));
        assert!(
            m.contains("SIP_KEY_CONTACT_HEADER_USER (15)") && m.contains("read-only"),
            "{m}"
        );
        // Unknown.
        let m = message(set_u32(&mut d, 1999, 1));
        assert!(m.starts_with("key 1999 is not defined"), "{m}");
        let m = message(set_server_str(&mut d, 7, SERVER_ADDRESS, "sip:x"));
        assert!(
            m.contains("server 7 is neither SIP_SERVER_REGISTRAR (130)"),
            "{m}"
        );
        // A password never appears in a message.
        let m = message(set_str(&mut d, DIGEST_PASSWORD, "hunter2"));
        assert!(
            !m.contains("hunter2") && m.contains("SIP_KEY_DIGEST_PASSWORD (501)"),
            "{m}"
        );
        let r = RegistrationInfo::default();
        let v = View {
            data: &d,
            reg: &r,
            is_default: false,
        };
        let m = message(get_server_str(&v, SERVER_REGISTRAR, DIGEST_PASSWORD).map(|_| ()));
        assert!(m.contains("write-only"), "{m}");
        let m = message(get_u32(&v, 700).map(|_| ()));
        assert_eq!(m, "key 700 has no u32 value");
    }
}
