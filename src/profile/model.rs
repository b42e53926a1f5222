//! What a profile is: the stored data (`ProfileData`) and what registration
//! adds at run time (`RegistrationInfo`).

use super::keys;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Defaults of keys 1000, 1005 and 1006 (contract §5.1).
pub const DEFAULT_EXPIRES_IETF: u32 = 3600;
pub const DEFAULT_EXPIRES_IMS: u32 = 600_000;
pub const DEFAULT_RETRY_BASE_SECONDS: u32 = 30;
pub const DEFAULT_RETRY_MAX_SECONDS: u32 = 1800;

/// Profile class of `sip_profile_type_info` (ref §3.3).
pub const CLASS_INTERNET: u32 = 0;
pub const CLASS_IMS: u32 = 1;
pub const CLASS_OTHER: u32 = 2;

/// A profile type: class plus a name of at most 25 bytes (ref §2.1).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TypeInfo {
    pub class: u32,
    pub name: String,
}

impl TypeInfo {
    pub fn ietf() -> Self {
        TypeInfo {
            class: CLASS_INTERNET,
            name: "IETF".into(),
        }
    }
    pub fn ims() -> Self {
        TypeInfo {
            class: CLASS_IMS,
            name: "ims".into(),
        }
    }
    /// The types this library ships agents for (ref §5.10).
    pub fn supported() -> Vec<TypeInfo> {
        vec![TypeInfo::ietf(), TypeInfo::ims()]
    }
    pub fn is_supported(&self) -> bool {
        Self::supported().contains(self)
    }
    pub fn is_ims(&self) -> bool {
        *self == TypeInfo::ims()
    }
}

/// Per-server values (ref §4.4): the registrar (130) or outbound proxy (131).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerParams {
    pub address: String,
    pub user: String,
    pub realm: String,
    /// Write-only: never handed to a client (see `ProfileData::without_passwords`);
    /// wiped from memory when dropped.
    pub password: crate::secret::Secret,
    pub ext: BTreeMap<String, String>,
}

/// Registration status of a profile (ref §3.2; values of `sip_profile_status`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Status {
    #[default]
    Unregistered = 1,
    UnregistrationInProgress = 2,
    RegistrationInProgress = 3,
    Registered = 4,
}

/// The stored part of a profile.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileData {
    pub id: u32,
    pub type_info: TypeInfo,
    pub provider_name: String,
    pub access_point_id: u32,
    pub sig_comp: bool,
    pub security_negotiation: bool,
    pub auto_registration: bool,
    pub aor: String,
    pub private_identity: String,
    pub contact_params: Vec<String>,
    pub headers: Vec<String>,
    /// Generated once (ref §4.1 key 15), never settable.
    pub contact_user: String,
    pub registrar: ServerParams,
    pub proxy: ServerParams,
    /// Typed extension tables: one key number may live in all four at once (ref §4.3).
    pub ext_u32: BTreeMap<u32, u32>,
    pub ext_bool: BTreeMap<u32, bool>,
    pub ext_str: BTreeMap<u32, String>,
    pub ext_array: BTreeMap<u32, Vec<String>>,
    /// "Make this the default on save" (ref §5.9); not stored.
    #[serde(skip)]
    pub make_default: bool,
}

impl ProfileData {
    /// An empty profile of `type_info` with that type's defaults (ref §5.10).
    pub fn new(type_info: TypeInfo) -> Self {
        let ims = type_info.is_ims();
        let mut p = ProfileData {
            id: 0,
            type_info,
            provider_name: String::new(),
            access_point_id: 0,
            sig_comp: ims,
            security_negotiation: ims,
            auto_registration: false,
            aor: String::new(),
            private_identity: String::new(),
            contact_params: Vec::new(),
            headers: Vec::new(),
            contact_user: generate_contact_user(),
            registrar: ServerParams::default(),
            proxy: ServerParams::default(),
            ext_u32: BTreeMap::new(),
            ext_bool: BTreeMap::new(),
            ext_str: BTreeMap::new(),
            ext_array: BTreeMap::new(),
            make_default: false,
        };
        if ims {
            p.proxy.address = "sip:0.0.0.0".into();
        }
        p
    }

    /// A copy safe to hand to a client: passwords blanked (ref §4.4).
    pub fn without_passwords(&self) -> Self {
        let mut p = self.clone();
        p.registrar.password.clear();
        p.proxy.password.clear();
        p
    }

    pub fn server(&self, server: u32) -> Option<&ServerParams> {
        match server {
            keys::SERVER_REGISTRAR => Some(&self.registrar),
            keys::SERVER_OUTBOUND_PROXY => Some(&self.proxy),
            _ => None,
        }
    }

    pub fn server_mut(&mut self, server: u32) -> Option<&mut ServerParams> {
        match server {
            keys::SERVER_REGISTRAR => Some(&mut self.registrar),
            keys::SERVER_OUTBOUND_PROXY => Some(&mut self.proxy),
            _ => None,
        }
    }

    /// Expires to ask for (key 1000), with the type's default.
    pub fn registration_expires(&self) -> u32 {
        self.ext_u32
            .get(&keys::REGISTRATION_EXPIRES)
            .copied()
            .unwrap_or(if self.type_info.is_ims() {
                DEFAULT_EXPIRES_IMS
            } else {
                DEFAULT_EXPIRES_IETF
            })
    }

    pub fn retry_base_seconds(&self) -> u32 {
        self.ext_u32
            .get(&keys::RETRY_BASE_SECONDS)
            .copied()
            .unwrap_or(DEFAULT_RETRY_BASE_SECONDS)
    }

    pub fn retry_max_seconds(&self) -> u32 {
        self.ext_u32
            .get(&keys::RETRY_MAX_SECONDS)
            .copied()
            .unwrap_or(DEFAULT_RETRY_MAX_SECONDS)
    }

    /// Merges an update from a client: an empty password keeps the stored one (ref §4.4).
    pub fn keep_passwords_from(&mut self, stored: &ProfileData) {
        if self.registrar.password.is_empty() {
            self.registrar.password = stored.registrar.password.clone();
        }
        if self.proxy.password.is_empty() {
            self.proxy.password = stored.proxy.password.clone();
        }
    }

    /// Checks what the profile's type needs before it can register (ref §5.10);
    /// the error's message names what is missing.
    pub fn check_registrable(&self) -> crate::Result<()> {
        let mut missing = Vec::new();
        if self.aor.is_empty() {
            missing.push("an AOR (SIP_KEY_USER_AOR)");
        }
        if self.registrar.address.is_empty() {
            missing.push("a registrar (SIP_KEY_SERVER_ADDRESS of SIP_SERVER_REGISTRAR)");
        }
        if self.type_info.is_ims() {
            if self.proxy.address.is_empty() {
                missing.push(
                    "an outbound proxy (SIP_KEY_SERVER_ADDRESS of SIP_SERVER_OUTBOUND_PROXY)",
                );
            }
            if self.private_identity.is_empty() && self.registrar.user.is_empty() {
                missing.push(
                    "a private identity (SIP_KEY_PRIVATE_IDENTITY) or registrar digest user name",
                );
            }
            if self.registrar.password.is_empty() {
                missing.push("a registrar digest password");
            }
        }
        if missing.is_empty() {
            return Ok(());
        }
        let which = if self.id == 0 {
            "the profile".to_owned()
        } else {
            format!("profile {}", self.id)
        };
        Err(crate::error::with_context(
            crate::Error::Argument,
            format!(
                "{which} cannot register: it has no {}",
                missing
                    .iter()
                    .map(|m| m.trim_start_matches("a ").trim_start_matches("an "))
                    .collect::<Vec<_>>()
                    .join(", no ")
            ),
        ))
    }
}

/// What a registration adds to a profile while it runs (keys 8, 9, 13, 1001–1004).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistrationInfo {
    pub status: Status,
    pub registered_aors: Vec<String>,
    pub registered_contact: String,
    pub granted_expires: u32,
    pub service_route: Vec<String>,
    pub pub_gruu: String,
    pub temp_gruu: String,
    pub context_id: u32,
    /// The server's last registration error (ref §5.7), 0 if none.
    pub last_error: i32,
    /// The last registration attempt's error, 0 if it succeeded or none was
    /// made (`sip_profile_last_attempt`).
    pub attempt_error: i32,
    /// When the next attempt is due, on the monotonic clock in ns
    /// (`protocol::monotonic_ns`); 0 if none is scheduled.
    pub retry_at_ns: u64,
}

/// 20 random characters from `[0-9a-zA-Z-_]` (ref §4.1 key 15).
pub fn generate_contact_user() -> String {
    const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_";
    let mut raw = [0u8; 20];
    crate::random::fill(&mut raw);
    raw.iter()
        .map(|b| ALPHABET[(*b as usize) % ALPHABET.len()] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contact_user_is_20_chars_of_the_alphabet() {
        let u = generate_contact_user();
        assert_eq!(u.len(), 20);
        assert!(
            u.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        assert_ne!(u, generate_contact_user());
    }

    #[test]
    fn ims_defaults() {
        let p = ProfileData::new(TypeInfo::ims());
        assert!(p.sig_comp && p.security_negotiation);
        assert_eq!(p.proxy.address, "sip:0.0.0.0");
        assert_eq!(p.registration_expires(), 600_000);
        let q = ProfileData::new(TypeInfo::ietf());
        assert!(!q.sig_comp && !q.security_negotiation && !q.auto_registration);
        assert_eq!(q.registration_expires(), 3600);
    }

    #[test]
    fn passwords_are_blanked_and_kept_on_empty_update() {
        let mut stored = ProfileData::new(TypeInfo::ietf());
        stored.registrar.password = "secret".into();
        let client = stored.without_passwords();
        assert!(client.registrar.password.is_empty());
        let mut update = client.clone();
        update.keep_passwords_from(&stored);
        assert_eq!(update.registrar.password, "secret");
    }

    #[test]
    fn registrable_needs_aor_and_registrar() {
        let mut p = ProfileData::new(TypeInfo::ietf());
        p.id = 4;
        let e = p.check_registrable().unwrap_err();
        assert_eq!(
            crate::error::message_for(e.code()),
            "profile 4 cannot register: it has no AOR (SIP_KEY_USER_AOR), \
             no registrar (SIP_KEY_SERVER_ADDRESS of SIP_SERVER_REGISTRAR)"
        );
        p.aor = "sip:a@example.com".into();
        let e = p.check_registrable().unwrap_err();
        let m = crate::error::message_for(e.code());
        assert!(m.contains("no registrar") && !m.contains("AOR"), "{m}");
        p.registrar.address = "sip:example.com".into();
        assert!(p.check_registrable().is_ok());
    }
}
