//! `Secret`: a password held in memory only as long as needed, wiped when
//! dropped (zeroize), never shown by `Debug`. Profiles keep their digest
//! passwords in it and registrations their credentials; what is computed
//! from them (digest HA1) is wiped too (`sip/digest.rs`).

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use zeroize::Zeroize;

#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The secret itself, for the few places that must use it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Wipes the value, leaving an empty secret.
    pub fn clear(&mut self) {
        self.0.zeroize();
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl std::ops::Deref for Secret {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Secret(s.to_owned())
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Secret(s)
    }
}

impl PartialEq<str> for Secret {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for Secret {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() {
            "Secret(empty)"
        } else {
            "Secret(***)"
        })
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_and_clear_wipes() {
        let mut s = Secret::from("hunter2");
        assert_eq!(format!("{s:?}"), "Secret(***)");
        assert_eq!(s, "hunter2");
        assert_eq!(s.len(), 7);
        s.clear();
        assert!(s.is_empty());
        assert_eq!(format!("{s:?}"), "Secret(empty)");
        let json = serde_json::to_string(&Secret::from("pw")).unwrap();
        assert_eq!(json, "\"pw\"");
        let back: Secret = serde_json::from_str(&json).unwrap();
        assert_eq!(back, "pw");
    }

    #[test]
    fn zeroize_wipes_the_bytes_in_place() {
        // What Drop does, observed on a buffer that stays allocated.
        let mut s = String::from("correct horse");
        let p = s.as_ptr();
        let n = s.len();
        s.zeroize();
        // SAFETY: zeroize keeps the allocation; p points to its n bytes.
        let bytes = unsafe { std::slice::from_raw_parts(p, n) };
        assert!(bytes.iter().all(|b| *b == 0));
    }
}
