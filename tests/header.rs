//! `include/sipprofile.h` must be exactly what cbindgen makes of the sources.
//! `SIPPROFILE_BLESS=1 cargo test --test header` rewrites it.

use std::path::Path;

#[test]
fn header_is_in_sync_with_sources() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(root.join("cbindgen.toml")).expect("cbindgen.toml");
    let mut generated = Vec::new();
    cbindgen::Builder::new()
        .with_crate(root)
        .with_config(config)
        .generate()
        .expect("cbindgen failed")
        .write(&mut generated);
    let path = root.join("include/sipprofile.h");
    if std::env::var_os("SIPPROFILE_BLESS").is_some() {
        std::fs::write(&path, &generated).unwrap();
        return;
    }
    let checked_in = std::fs::read(&path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "include/sipprofile.h differs from cbindgen's output; \
         run `SIPPROFILE_BLESS=1 cargo test --test header` and commit it"
    );
}

#[test]
fn version_macros_match_cargo() {
    let h =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("include/sipprofile.h"))
            .unwrap();
    for (name, v) in [
        ("SIP_VERSION_MAJOR", env!("CARGO_PKG_VERSION_MAJOR")),
        ("SIP_VERSION_MINOR", env!("CARGO_PKG_VERSION_MINOR")),
        ("SIP_VERSION_PATCH", env!("CARGO_PKG_VERSION_PATCH")),
    ] {
        assert!(h.contains(&format!("#define {name} {v}")), "{name} != {v}");
    }
}

/// Every constant name the contract (shared/reference/c-api-contract.md)
/// fixes: §2 events, §3 codes with the rest of ref §3.8's `KErrSIP*`, §5
/// classes, statuses, ref §4.1 keys and the library keys, §8 additions.
const CONTRACT: &[&str] = &[
    "SIP_OK",
    "SIP_ERR_NOT_FOUND",
    "SIP_ERR_GENERAL",
    "SIP_ERR_CANCEL",
    "SIP_ERR_NO_MEMORY",
    "SIP_ERR_NOT_SUPPORTED",
    "SIP_ERR_ARGUMENT",
    "SIP_ERR_BAD_HANDLE",
    "SIP_ERR_OVERFLOW",
    "SIP_ERR_ALREADY_EXISTS",
    "SIP_ERR_IN_USE",
    "SIP_ERR_SERVER_TERMINATED",
    "SIP_ERR_ACCESS_DENIED",
    "SIP_ERR_LOCKED",
    "SIP_ERR_TIMED_OUT",
    "SIP_ERR_COULD_NOT_CONNECT",
    "SIP_ERR_DISCONNECTED",
    "SIP_ERR_TOO_BIG",
    "SIP_ERR_PERMISSION_DENIED",
    "SIP_ERR_SIP_MALFORMED_MESSAGE",
    "SIP_ERR_SIP_INVALID_REGISTRAR_RESPONSE",
    "SIP_ERR_SIP_REQUEST_PENDING",
    "SIP_ERR_SIP_INVALID_TRANSACTION_STATE",
    "SIP_ERR_SIP_INVALID_DIALOG_STATE",
    "SIP_ERR_SIP_INVALID_DIALOG_REQUEST",
    "SIP_ERR_SIP_INVALID_DIALOG_RESPONSE",
    "SIP_ERR_SIP_TRANSPORT_FAILURE",
    "SIP_ERR_SIP_NO_ACK_RECEIVED",
    "SIP_ERR_SIP_INVALID_REGISTRATION_STATE",
    "SIP_ERR_SIP_INVALID_CONTACT",
    "SIP_ERR_SIP_RESOURCE_NOT_AVAILABLE",
    "SIP_ERR_SIP_RESOLVING_FAILURE",
    "SIP_ERR_SIP_FORBIDDEN",
    "SIP_ERR_SIP_MAX_COMPARTMENTS_IN_USE",
    "SIP_ERR_SIP_TERMINATED_WITH_RESPONSE",
    "SIP_ERR_SIP_OUTBOUND_PROXY_NOT_RESPONDING",
    "SIP_ERR_SIP_INVALID_URI_TYPE",
    "SIP_ERR_SIP_ICMP_FAILURE",
    "SIP_ERR_SIP_APN_SWITCH_NON_FATAL_FAILURE",
    "SIP_PROFILE_CREATED",
    "SIP_PROFILE_UPDATED",
    "SIP_PROFILE_REGISTERED",
    "SIP_PROFILE_DEREGISTERED",
    "SIP_PROFILE_DESTROYED",
    "SIP_PROFILE_FORCIBLY_DISABLED",
    "SIP_PROFILE_CLASS_INTERNET",
    "SIP_PROFILE_CLASS_IMS",
    "SIP_PROFILE_CLASS_OTHER",
    "SIP_PROFILE_STATUS_UNREGISTERED",
    "SIP_PROFILE_STATUS_UNREGISTRATION_IN_PROGRESS",
    "SIP_PROFILE_STATUS_REGISTRATION_IN_PROGRESS",
    "SIP_PROFILE_STATUS_REGISTERED",
    "SIP_KEY_PROFILE_ID",
    "SIP_KEY_PROVIDER_NAME",
    "SIP_KEY_ACCESS_POINT_ID",
    "SIP_KEY_SIG_COMP",
    "SIP_KEY_SECURITY_NEGOTIATION",
    "SIP_KEY_AUTO_REGISTRATION",
    "SIP_KEY_USER_AOR",
    "SIP_KEY_PROFILE_REGISTERED",
    "SIP_KEY_REGISTERED_AORS",
    "SIP_KEY_NEGOTIATED_SECURITY_MECHANISM",
    "SIP_KEY_DEFAULT_PROFILE",
    "SIP_KEY_CONTACT_HEADER_PARAMS",
    "SIP_KEY_REGISTERED_CONTACT",
    "SIP_KEY_SNAP_ID",
    "SIP_KEY_CONTACT_HEADER_USER",
    "SIP_KEY_SO_IP_TOS",
    "SIP_KEY_ACCESS_POINT_NAME",
    "SIP_KEY_SNAP_NAME",
    "SIP_KEY_RESOLVE_PROXY",
    "SIP_KEY_PRIMARY_APN",
    "SIP_KEY_SECONDARY_APN",
    "SIP_KEY_BEARER_TYPE",
    "SIP_SERVER_REGISTRAR",
    "SIP_SERVER_OUTBOUND_PROXY",
    "SIP_KEY_DIGEST_USER_NAME",
    "SIP_KEY_DIGEST_REALM",
    "SIP_KEY_SERVER_ADDRESS",
    "SIP_KEY_PRIVATE_IDENTITY",
    "SIP_KEY_DIGEST_PASSWORD",
    "SIP_KEY_HEADERS",
    "SIP_KEY_ALLOW_IMS_REGISTRATION",
    "SIP_KEY_PROFILE_LOCKED",
    "SIP_KEY_ALLOW_AUTO_REGISTRATION_ONLY_ON_HOME_NETWORK",
    "SIP_KEY_REGISTRATION_EXPIRES",
    "SIP_KEY_GRANTED_EXPIRES",
    "SIP_KEY_SERVICE_ROUTE",
    "SIP_KEY_PUB_GRUU",
    "SIP_KEY_TEMP_GRUU",
    "SIP_KEY_RETRY_BASE_SECONDS",
    "SIP_KEY_RETRY_MAX_SECONDS",
    "SIP_KEY_INSTANCE_ID",
    "SIP_KEY_TLS_CA_FILE",
];

/// Fixed by §8 (version 0.2); the header gains them as they are built.
const CONTRACT_0_2: &[&str] = &[
    "SIP_REGISTRY_APP_DISPATCH",
    "SIP_REGISTRY_ATTEMPT_EVENTS",
    "SIP_PROFILE_ATTEMPT_FAILED",
    "SIP_KEY_CONTACT_URI",
    "SIP_KEY_DIGEST_MIN_ALGORITHM",
    "SIP_KEY_KEEPALIVE_SECONDS",
    "SIP_KEY_OUTBOUND",
];

/// This project's additions (the contract allows them), each documented in
/// the header by its doc comment.
const ADDITIONS: &[&str] = &[
    // The header's version, for `#if` checks at compile time.
    "SIP_VERSION_MAJOR",
    "SIP_VERSION_MINOR",
    "SIP_VERSION_PATCH",
];

/// The macro names and enum constants the header defines, except its
/// include guard.
fn header_constants(h: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut in_enum = false;
    for line in h.lines() {
        let t = line.trim();
        if let Some(rest) = t.strip_prefix("#define ") {
            let name = rest.split_whitespace().next().unwrap_or("");
            if name != "SIPPROFILE_H" {
                names.push(name.to_owned());
            }
        } else if t.starts_with("typedef enum") || (t.starts_with("enum ") && t.ends_with('{')) {
            in_enum = true;
        } else if in_enum && t.starts_with('}') {
            in_enum = false;
        } else if in_enum && !t.starts_with("/*") && !t.starts_with('*') && !t.is_empty() {
            let name = t.split(['=', ',', ' ']).next().unwrap_or("");
            names.push(name.to_owned());
        }
    }
    names
}

#[test]
fn header_defines_only_contract_names() {
    let h =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("include/sipprofile.h"))
            .unwrap();
    let names = header_constants(&h);
    assert!(names.len() > 90, "parsed only {names:?}");
    let mut seen = std::collections::HashSet::new();
    for n in &names {
        assert!(n.starts_with("SIP_"), "{n}: not SIP_-prefixed");
        assert!(
            CONTRACT.contains(&n.as_str())
                || CONTRACT_0_2.contains(&n.as_str())
                || ADDITIONS.contains(&n.as_str()),
            "{n}: neither a contract name nor a documented addition"
        );
        assert!(seen.insert(n.clone()), "{n} defined twice");
    }
    for c in CONTRACT {
        assert!(
            seen.contains(*c),
            "{c}: in the contract, missing from the header"
        );
    }
}

/// The header's key names are the names the core gives its keys (messages,
/// the CLI), so neither can drift from the other.
#[test]
fn header_keys_are_the_cores_keys() {
    use sipprofile::profile::keys;
    let h =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("include/sipprofile.h"))
            .unwrap();
    let mut n = 0;
    for line in h.lines() {
        let mut w = line.split_whitespace();
        let (Some("#define"), Some(name), Some(value)) = (w.next(), w.next(), w.next()) else {
            continue;
        };
        if name.starts_with("SIP_KEY_") || name.starts_with("SIP_SERVER_") {
            let key: u32 = value.parse().unwrap();
            assert_eq!(keys::info(key).map(|i| i.name), Some(name), "{name}");
            n += 1;
        }
        if name.starts_with("SIP_ERR_") {
            let code: i32 = value.parse().unwrap();
            // SAFETY: sip_strerror returns a static C string.
            let text =
                unsafe { std::ffi::CStr::from_ptr(sipprofile::ffi::codes::sip_strerror(code)) };
            assert_ne!(text.to_str().unwrap(), "unknown error", "{name}");
        }
    }
    assert!(n >= 42);
}
