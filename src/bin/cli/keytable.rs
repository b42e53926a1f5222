//! The keys the `sipprofile` command knows by name, how `set` parses a
//! value for each, and the JSON that `show`, `export` and `import` use. One
//! table drives all three, so that every settable key survives an export and
//! an import (keys given only by number travel in `extensions`).

use serde_json::{Map, Value, json};
use sipprofile::Error;
use sipprofile::client::ProfileEdit;
use sipprofile::profile::access::{self, View};
use sipprofile::profile::keys;

/// How a key is read and written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    U32(u32),
    Bool(u32),
    Str(u32),
    Array(u32),
    /// A per-server key: (server selector, key).
    Server(u32, u32),
    /// Shown by the library, never set (ref §4.1 "RO").
    ReadOnly(u32),
}

impl Kind {
    /// The single key number, for every kind but a per-server key.
    fn number(self) -> Option<u32> {
        match self {
            Kind::U32(k) | Kind::Bool(k) | Kind::Str(k) | Kind::Array(k) | Kind::ReadOnly(k) => {
                Some(k)
            }
            Kind::Server(..) => None,
        }
    }
}

/// Every key of ref §4.1 and contract §5.1 by the name `set` accepts; a
/// name with a dot is a per-server key and nests in JSON (`registrar.user`
/// is `{"registrar": {"user": ...}}`).
pub const KEYS: &[(&str, Kind)] = &[
    ("id", Kind::ReadOnly(keys::PROFILE_ID)),
    ("provider_name", Kind::Str(keys::PROVIDER_NAME)),
    ("access_point_id", Kind::U32(keys::ACCESS_POINT_ID)),
    ("sig_comp", Kind::Bool(keys::SIG_COMP)),
    (
        "security_negotiation",
        Kind::Bool(keys::SECURITY_NEGOTIATION),
    ),
    ("auto_registration", Kind::Bool(keys::AUTO_REGISTRATION)),
    ("aor", Kind::Str(keys::USER_AOR)),
    ("registered", Kind::ReadOnly(keys::PROFILE_REGISTERED)),
    ("registered_aors", Kind::ReadOnly(keys::REGISTERED_AORS)),
    (
        "negotiated_security_mechanism",
        Kind::ReadOnly(keys::NEGOTIATED_SECURITY_MECHANISM),
    ),
    ("default", Kind::Bool(keys::DEFAULT_PROFILE)),
    ("contact_params", Kind::Array(keys::CONTACT_HEADER_PARAMS)),
    (
        "registered_contact",
        Kind::ReadOnly(keys::REGISTERED_CONTACT),
    ),
    ("snap_id", Kind::U32(keys::SNAP_ID)),
    ("contact_user", Kind::ReadOnly(keys::CONTACT_HEADER_USER)),
    ("ip_tos", Kind::U32(keys::SO_IP_TOS)),
    ("access_point_name", Kind::Str(keys::ACCESS_POINT_NAME)),
    ("snap_name", Kind::Str(keys::SNAP_NAME)),
    ("resolve_proxy", Kind::Bool(keys::RESOLVE_PROXY)),
    ("primary_apn", Kind::Str(keys::PRIMARY_APN)),
    ("secondary_apn", Kind::Str(keys::SECONDARY_APN)),
    ("bearer_type", Kind::U32(keys::BEARER_TYPE)),
    (
        "registrar.address",
        Kind::Server(keys::SERVER_REGISTRAR, keys::SERVER_ADDRESS),
    ),
    (
        "registrar.user",
        Kind::Server(keys::SERVER_REGISTRAR, keys::DIGEST_USER_NAME),
    ),
    (
        "registrar.realm",
        Kind::Server(keys::SERVER_REGISTRAR, keys::DIGEST_REALM),
    ),
    (
        "registrar.password",
        Kind::Server(keys::SERVER_REGISTRAR, keys::DIGEST_PASSWORD),
    ),
    (
        "proxy.address",
        Kind::Server(keys::SERVER_OUTBOUND_PROXY, keys::SERVER_ADDRESS),
    ),
    (
        "proxy.user",
        Kind::Server(keys::SERVER_OUTBOUND_PROXY, keys::DIGEST_USER_NAME),
    ),
    (
        "proxy.realm",
        Kind::Server(keys::SERVER_OUTBOUND_PROXY, keys::DIGEST_REALM),
    ),
    (
        "proxy.password",
        Kind::Server(keys::SERVER_OUTBOUND_PROXY, keys::DIGEST_PASSWORD),
    ),
    ("private_identity", Kind::Str(keys::PRIVATE_IDENTITY)),
    ("headers", Kind::Array(keys::HEADERS)),
    (
        "allow_ims_registration",
        Kind::U32(keys::ALLOW_IMS_REGISTRATION),
    ),
    ("profile_locked", Kind::Bool(keys::PROFILE_LOCKED)),
    (
        "auto_registration_only_at_home",
        Kind::Bool(keys::ALLOW_AUTO_REGISTRATION_ONLY_ON_HOME_NETWORK),
    ),
    ("expires", Kind::U32(keys::REGISTRATION_EXPIRES)),
    ("granted_expires", Kind::ReadOnly(keys::GRANTED_EXPIRES)),
    ("service_route", Kind::ReadOnly(keys::SERVICE_ROUTE)),
    ("pub_gruu", Kind::ReadOnly(keys::PUB_GRUU)),
    ("temp_gruu", Kind::ReadOnly(keys::TEMP_GRUU)),
    ("retry_base_seconds", Kind::U32(keys::RETRY_BASE_SECONDS)),
    ("retry_max_seconds", Kind::U32(keys::RETRY_MAX_SECONDS)),
    ("instance_id", Kind::Str(keys::INSTANCE_ID)),
    ("tls_ca_file", Kind::Str(keys::TLS_CA_FILE)),
    ("contact_uri", Kind::Str(keys::CONTACT_URI)),
    (
        "digest_min_algorithm",
        Kind::Str(keys::DIGEST_MIN_ALGORITHM),
    ),
    ("keepalive_seconds", Kind::U32(keys::KEEPALIVE_SECONDS)),
    ("outbound", Kind::Bool(keys::OUTBOUND)),
];

/// `number  type` as `sipprofile keys` prints it.
pub fn describe_kind(kind: Kind) -> String {
    match kind {
        Kind::U32(k) => format!("{k:>5}  number"),
        Kind::Bool(k) => format!("{k:>5}  boolean"),
        Kind::Str(k) => format!("{k:>5}  string"),
        Kind::Array(k) => format!("{k:>5}  list (comma-separated)"),
        Kind::Server(s, k) => format!("{s}.{k}  string"),
        Kind::ReadOnly(k) => format!("{k:>5}  read-only"),
    }
}

/// The value type `set` uses for a key number that has no name (an
/// extension key, ref §4.3: one number may hold a value of each type).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ExtType {
    U32,
    Bool,
    Str,
    Array,
}

/// What went wrong: the input, or the library's answer.
#[derive(Debug)]
pub enum Problem {
    Input(String),
    Api(Error),
}

impl From<Error> for Problem {
    fn from(e: Error) -> Self {
        Problem::Api(e)
    }
}

type Result<T> = std::result::Result<T, Problem>;

fn input<T>(msg: String) -> Result<T> {
    Err(Problem::Input(msg))
}

fn server_by_name(name: &str) -> Option<u32> {
    match name.to_ascii_lowercase().as_str() {
        "registrar" | "130" => Some(keys::SERVER_REGISTRAR),
        "proxy" | "outbound_proxy" | "131" => Some(keys::SERVER_OUTBOUND_PROXY),
        _ => None,
    }
}

fn is_server_key(k: u32) -> bool {
    matches!(
        k,
        keys::DIGEST_USER_NAME | keys::DIGEST_REALM | keys::SERVER_ADDRESS | keys::DIGEST_PASSWORD
    )
}

/// Resolves `key` as `set` takes it: a name of [`KEYS`] (any case), a key
/// number (of any type: a named number takes its own type, another number
/// `ext_type`, string by default), or `registrar.N` / `proxy.N`.
pub fn resolve(key: &str, ext_type: Option<ExtType>) -> Result<Kind> {
    if let Some((_, kind)) = KEYS.iter().find(|(n, _)| n.eq_ignore_ascii_case(key)) {
        return Ok(*kind);
    }
    let per_server = key
        .split_once('.')
        .and_then(|(server, k)| Some((server_by_name(server)?, k.parse::<u32>().ok()?)));
    if let Some((s, k)) = per_server {
        return Ok(Kind::Server(s, k));
    }
    let Ok(n) = key.parse::<u32>() else {
        return input(format!("unknown key {key:?} (see `sipprofile keys`)"));
    };
    if is_server_key(n) {
        return input(format!(
            "key {n} is a per-server key: give it as registrar.{n} or proxy.{n}"
        ));
    }
    if n == keys::SERVER_REGISTRAR || n == keys::SERVER_OUTBOUND_PROXY {
        return input(format!(
            "{n} selects a server: give a key as {n}.N (for example {n}.152)"
        ));
    }
    if let Some((_, kind)) = KEYS.iter().find(|(_, k)| k.number() == Some(n)) {
        return Ok(*kind);
    }
    Ok(match ext_type.unwrap_or(ExtType::Str) {
        ExtType::U32 => Kind::U32(n),
        ExtType::Bool => Kind::Bool(n),
        ExtType::Str => Kind::Str(n),
        ExtType::Array => Kind::Array(n),
    })
}

/// true/false, yes/no, on/off, 1/0, in any case; anything else is an error.
pub fn parse_bool(s: &str) -> Result<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Ok(true),
        "false" | "no" | "off" | "0" => Ok(false),
        _ => input(format!(
            "{s:?} is not a boolean (true/false, yes/no, on/off, 1/0)"
        )),
    }
}

fn parse_u32(s: &str) -> Result<u32> {
    s.trim()
        .parse::<u32>()
        .or_else(|_| input(format!("{s:?} is not a number from 0 to 4294967295")))
}

/// Writes `value`, given as text on the command line, to key `kind` through `d`.
pub fn set_text(d: &mut ProfileEdit, kind: Kind, value: &str) -> Result<()> {
    match kind {
        Kind::U32(k) => d.set_u32(k, parse_u32(value)?)?,
        Kind::Bool(k) => d.set_bool(k, parse_bool(value)?)?,
        Kind::Str(k) => d.set_str(k, value)?,
        Kind::Array(k) => d.set_str_array(
            k,
            value
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
        )?,
        Kind::Server(s, k) => d.set_server_str(s, k, value)?,
        Kind::ReadOnly(k) => return input(format!("key {k} is read-only")),
    }
    Ok(())
}

/// Writes the JSON `value` of key `kind` (as [`export`] writes it) to `d`.
fn set_json(d: &mut ProfileEdit, kind: Kind, value: &Value) -> Result<()> {
    match (kind, value) {
        (Kind::ReadOnly(_), _) | (_, Value::Null) => Ok(()),
        // `default: false` only says this one was not the default.
        (Kind::Bool(keys::DEFAULT_PROFILE), Value::Bool(false)) => Ok(()),
        (Kind::U32(k), Value::Number(n)) => {
            let n = n
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| {
                    Problem::Input(format!("{n} is not a number from 0 to 4294967295"))
                })?;
            Ok(d.set_u32(k, n)?)
        }
        (Kind::Bool(k), Value::Bool(b)) => Ok(d.set_bool(k, *b)?),
        (Kind::Array(k), Value::Array(items)) => {
            let items = items
                .iter()
                .map(|i| {
                    i.as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| Problem::Input(format!("{i} is not a string")))
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(d.set_str_array(k, items)?)
        }
        (_, Value::String(s)) => set_text(d, kind, s),
        (_, other) => input(format!("{other} is not a value of this key")),
    }
}

/// The JSON path of a key name: `registrar.user` → `/registrar/user`.
fn pointer(name: &str) -> String {
    format!("/{}", name.replace('.', "/"))
}

fn put(out: &mut Value, name: &str, v: Value) {
    let mut at = out;
    let mut parts = name.split('.').peekable();
    while let Some(part) = parts.next() {
        if !at.is_object() {
            *at = Value::Object(Map::new());
        }
        let obj = at.as_object_mut().expect("an object");
        if parts.peek().is_none() {
            obj.insert(part.to_owned(), v);
            return;
        }
        at = obj.entry(part).or_insert_with(|| Value::Object(Map::new()));
    }
}

/// The entries of an extension table whose key has no name of that type.
fn ext_table<T: Clone + Into<Value>>(
    table: &std::collections::BTreeMap<u32, T>,
    same_type: fn(Kind) -> bool,
) -> Map<String, Value> {
    table
        .iter()
        .filter(|(k, _)| {
            !KEYS
                .iter()
                .any(|(_, kind)| same_type(*kind) && kind.number() == Some(**k))
        })
        .map(|(k, x)| (k.to_string(), x.clone().into()))
        .collect()
}

/// Every key of the profile that can be read, by name, plus `extensions`
/// (values of key numbers without a name, by type) and per server
/// `extensions`. Passwords are never here: the API does not return them.
pub fn export(v: &View) -> Value {
    let mut out = json!({});
    for (name, kind) in KEYS {
        let value = match *kind {
            Kind::U32(k) => access::get_u32(v, k).map(Value::from),
            Kind::Bool(k) => access::get_bool(v, k).map(Value::from),
            Kind::Str(k) => access::get_str(v, k).map(Value::from),
            Kind::Array(k) => access::get_str_array(v, k).map(Value::from),
            Kind::Server(s, k) => access::get_server_str(v, s, k).map(Value::from),
            Kind::ReadOnly(k) => access::get_u32(v, k)
                .map(Value::from)
                .or_else(|_| access::get_bool(v, k).map(Value::from))
                .or_else(|_| access::get_str(v, k).map(Value::from))
                .or_else(|_| access::get_str_array(v, k).map(Value::from)),
        };
        if let Ok(value) = value {
            put(&mut out, name, value);
        }
    }
    let d = v.data;
    let mut ext = Map::new();
    let u32s = ext_table(&d.ext_u32, |k| matches!(k, Kind::U32(_)));
    let bools = ext_table(&d.ext_bool, |k| matches!(k, Kind::Bool(_)));
    let strs = ext_table(&d.ext_str, |k| matches!(k, Kind::Str(_)));
    let arrays = ext_table(&d.ext_array, |k| matches!(k, Kind::Array(_)));
    for (ty, m) in [
        ("u32", u32s),
        ("bool", bools),
        ("str", strs),
        ("array", arrays),
    ] {
        if !m.is_empty() {
            ext.insert(ty.to_owned(), Value::Object(m));
        }
    }
    if !ext.is_empty() {
        out["extensions"] = Value::Object(ext);
    }
    for (name, server) in [("registrar", &d.registrar), ("proxy", &d.proxy)] {
        if !server.ext.is_empty() {
            put(&mut out, &format!("{name}.extensions"), json!(server.ext));
        }
    }
    out
}

/// Applies every key found in `v` (as [`export`] writes it; unknown fields
/// are ignored, read-only ones skipped) to `d`, through the same checks as
/// the C API's setters.
pub fn import(d: &mut ProfileEdit, v: &Value) -> Result<()> {
    let named_err = |name: &str, p: Problem| match p {
        Problem::Input(msg) => Problem::Input(format!("{name}: {msg}")),
        Problem::Api(e) => Problem::Input(format!("{name}: {}", describe_api(e))),
    };
    // The keys' JSON pointers, made once: an import of 100,000 profiles
    // made them again for every profile.
    static POINTERS: std::sync::LazyLock<Vec<String>> =
        std::sync::LazyLock::new(|| KEYS.iter().map(|(name, _)| pointer(name)).collect());
    for ((name, kind), at) in KEYS.iter().zip(POINTERS.iter()) {
        if let Some(value) = v.pointer(at) {
            set_json(d, *kind, value).map_err(|p| named_err(name, p))?;
        }
    }
    if let Some(ext) = v.get("extensions").and_then(Value::as_object) {
        for (ty, table) in ext {
            let make: fn(u32) -> Kind = match ty.as_str() {
                "u32" => Kind::U32,
                "bool" => Kind::Bool,
                "str" => Kind::Str,
                "array" => Kind::Array,
                _ => {
                    return input(format!(
                        "extensions.{ty}: not a type (u32, bool, str, array)"
                    ));
                }
            };
            for (key, value) in table.as_object().into_iter().flatten() {
                let name = format!("extensions.{ty}.{key}");
                let k = parse_u32(key).map_err(|p| named_err(&name, p))?;
                set_json(d, make(k), value).map_err(|p| named_err(&name, p))?;
            }
        }
    }
    for (name, server) in [
        ("registrar", keys::SERVER_REGISTRAR),
        ("proxy", keys::SERVER_OUTBOUND_PROXY),
    ] {
        let Some(ext) = v
            .pointer(&format!("/{name}/extensions"))
            .and_then(Value::as_object)
        else {
            continue;
        };
        for (key, value) in ext {
            let what = format!("{name}.extensions.{key}");
            let k = parse_u32(key).map_err(|p| named_err(&what, p))?;
            set_json(d, Kind::Server(server, k), value).map_err(|p| named_err(&what, p))?;
        }
    }
    Ok(())
}

/// The library's description of a failure (what `sip_last_error_message`
/// would say: the key, path or peer and why), with the C API's words for the
/// code, as `sip_strerror` gives them.
pub fn describe_api(e: Error) -> String {
    let message = sipprofile::error::message_for(e.code());
    if message.is_empty() {
        describe_code(e.code())
    } else {
        format!("{message} ({})", describe_code(e.code()))
    }
}

pub fn describe_code(code: i32) -> String {
    // SAFETY: sip_strerror returns a static NUL-terminated string.
    let text = unsafe { std::ffi::CStr::from_ptr(sipprofile::ffi::codes::sip_strerror(code)) };
    format!("{} ({code})", text.to_string_lossy())
}

#[cfg(test)]
mod tests {
    use super::*;
    use sipprofile::profile::model::RegistrationInfo;
    use sipprofile::profile::{ProfileData, TypeInfo};

    fn exported(d: &ProfileData) -> Value {
        let reg = RegistrationInfo::default();
        export(&View {
            data: d,
            reg: &reg,
            // As the server would answer after a save.
            is_default: d.make_default,
        })
    }

    #[test]
    fn booleans_parse_strictly() {
        for s in ["true", "TRUE", "True", "yes", "On", "1", " y".trim_start()] {
            if s == "y" {
                assert!(parse_bool(s).is_err());
                continue;
            }
            assert!(parse_bool(s).unwrap(), "{s}");
        }
        for s in ["false", "False", "NO", "off", "0"] {
            assert!(!parse_bool(s).unwrap(), "{s}");
        }
        for s in ["", "2", "truee", "nope", "-1"] {
            assert!(parse_bool(s).is_err(), "{s:?}");
        }
    }

    #[test]
    fn numbers_resolve_to_their_own_type() {
        assert_eq!(resolve("1000", None).unwrap(), Kind::U32(1000));
        assert_eq!(resolve("6", None).unwrap(), Kind::Bool(6));
        assert_eq!(resolve("502", None).unwrap(), Kind::Array(502));
        assert_eq!(resolve("AOR", None).unwrap(), Kind::Str(7));
        assert_eq!(
            resolve("registrar.152", None).unwrap(),
            Kind::Server(130, 152)
        );
        assert_eq!(resolve("131.150", None).unwrap(), Kind::Server(131, 150));
        assert_eq!(resolve("700", None).unwrap(), Kind::Str(700));
        assert_eq!(
            resolve("700", Some(ExtType::Bool)).unwrap(),
            Kind::Bool(700)
        );
        assert!(resolve("152", None).is_err());
        assert!(resolve("nonsense", None).is_err());
    }

    #[test]
    fn every_settable_key_survives_export_and_import() {
        let mut d = ProfileData::new(TypeInfo::ietf());
        for (name, kind) in KEYS {
            let text = match kind {
                Kind::U32(_) => "7",
                Kind::Bool(_) => "true",
                Kind::Array(keys::HEADERS) => "X-A: 1, X-B: 2",
                Kind::Array(_) => "a, b=1",
                Kind::Str(keys::USER_AOR) => "sip:a@example.com",
                Kind::Str(keys::INSTANCE_ID) => "urn:uuid:00000000-0000-0000-0000-000000000001",
                Kind::Str(keys::DIGEST_MIN_ALGORITHM) => "SHA-256",
                Kind::Str(keys::CONTACT_URI) => "sip:app@127.0.0.1:5070",
                Kind::Str(_) => "text",
                Kind::Server(_, keys::SERVER_ADDRESS) => "sip:example.com",
                Kind::Server(..) => "name",
                Kind::ReadOnly(_) => continue,
            };
            set_text(&mut ProfileEdit::new(&mut d), *kind, text)
                .unwrap_or_else(|e| panic!("{name}: {e:?}"));
        }
        set_text(&mut ProfileEdit::new(&mut d), Kind::U32(700), "70").unwrap();
        set_text(&mut ProfileEdit::new(&mut d), Kind::Str(700), "seventy").unwrap();
        set_text(&mut ProfileEdit::new(&mut d), Kind::Bool(17), "yes").unwrap();
        set_text(&mut ProfileEdit::new(&mut d), Kind::Array(701), "x,y").unwrap();
        set_text(&mut ProfileEdit::new(&mut d), Kind::Server(131, 160), "ext").unwrap();
        let before = exported(&d);
        let mut copy = ProfileData::new(TypeInfo::ietf());
        import(&mut ProfileEdit::new(&mut copy), &before).unwrap();
        // The default flag is applied on save; everything else at once.
        assert!(copy.make_default);
        copy.contact_user.clone_from(&d.contact_user);
        assert_eq!(exported(&copy), before);
        assert_eq!(copy.ext_u32, d.ext_u32);
        assert_eq!(copy.ext_bool, d.ext_bool);
        assert_eq!(copy.ext_str, d.ext_str);
        assert_eq!(copy.ext_array, d.ext_array);
        assert_eq!(copy.proxy.ext, d.proxy.ext);
    }

    #[test]
    fn bad_import_names_the_key() {
        let mut d = ProfileData::new(TypeInfo::ietf());
        let Err(Problem::Input(msg)) = import(
            &mut ProfileEdit::new(&mut d),
            &json!({"registrar": {"address": "not a uri"}}),
        ) else {
            panic!("accepted")
        };
        assert!(msg.contains("registrar.address"), "{msg}");
        let Err(Problem::Input(msg)) =
            import(&mut ProfileEdit::new(&mut d), &json!({"expires": "soon"}))
        else {
            panic!("accepted")
        };
        assert!(msg.contains("expires"), "{msg}");
    }
}
