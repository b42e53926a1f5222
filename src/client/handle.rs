//! What a profile handle shows and what may change in it, as methods: the
//! typed getters and setters of the C API (`sip_profile_get_*`,
//! `sip_profile_set_*`, ref §4.2–4.3) with `profile::access`'s rules, and the
//! registration state. The handle's data block stays inside this module and
//! `registry.rs`; the C API, the CLI and the tests use these methods.

use super::registry::ProfileHandle;
use crate::error::with_context;
use crate::profile::access::{self, View};
use crate::profile::{ProfileData, RegistrationInfo, Status, TypeInfo, keys};
use crate::{Error, Result};
use std::sync::Arc;

/// A copy of what a handle shows, taken under one lock, without passwords.
#[derive(Debug, Clone)]
pub struct ProfileCopy {
    pub data: ProfileData,
    pub info: RegistrationInfo,
    /// Enabled by the handle's registry (ref §2.5 `IsEnabled`).
    pub enabled: bool,
    /// The registry's copy of the last registration error (ref §5.7).
    pub last_error: i32,
    /// As last heard from the server; `ProfileHandle::is_default` asks it.
    pub is_default: bool,
}

impl ProfileCopy {
    /// What `access`'s getters read.
    pub fn view(&self) -> View<'_> {
        View {
            data: &self.data,
            reg: &self.info,
            is_default: self.is_default,
        }
    }
}

/// The typed setters on a profile's data, with `profile::access`'s checks;
/// what `ProfileHandle::edit` hands its closure (or a standalone
/// `ProfileData`, for what builds one before it has a handle).
pub struct ProfileEdit<'a> {
    data: &'a mut ProfileData,
}

impl<'a> ProfileEdit<'a> {
    pub fn new(data: &'a mut ProfileData) -> ProfileEdit<'a> {
        ProfileEdit { data }
    }

    pub fn set_u32(&mut self, key: u32, value: u32) -> Result<()> {
        access::set_u32(self.data, key, value)
    }

    pub fn set_bool(&mut self, key: u32, value: bool) -> Result<()> {
        access::set_bool(self.data, key, value)
    }

    pub fn set_str(&mut self, key: u32, value: &str) -> Result<()> {
        access::set_str(self.data, key, value)
    }

    pub fn set_str_array(&mut self, key: u32, values: Vec<String>) -> Result<()> {
        access::set_str_array(self.data, key, values)
    }

    pub fn set_server_str(&mut self, server: u32, key: u32, value: &str) -> Result<()> {
        access::set_server_str(self.data, server, key, value)
    }

    /// The profile's type (checked at save).
    pub fn set_type(&mut self, t: TypeInfo) {
        self.data.type_info = t;
    }
}

impl ProfileHandle {
    /// From (or created in) a managed registry: setters allowed.
    pub fn is_managed(&self) -> bool {
        self.managed
    }

    /// True if `other` is a handle of the same profile in the same registry:
    /// both show one shared data block (ref §2.4).
    pub fn shares_data_with(&self, other: &ProfileHandle) -> bool {
        Arc::ptr_eq(&self.block, &other.block)
    }

    // ----- getters (ref §4.2) -----

    /// Runs `f` on what the handle shows, under its block's read lock. Only
    /// `SIP_KEY_DEFAULT_PROFILE` asks the server (ref §5.9), before the
    /// lock is taken; every other key reads the handle alone.
    #[inline]
    fn read<T>(&self, key: u32, f: impl FnOnce(&View) -> Result<T>) -> Result<T> {
        let is_default = (key == keys::DEFAULT_PROFILE).then(|| self.is_default());
        let b = self.block.read();
        let mut v = b.view();
        if let Some(d) = is_default {
            v.is_default = d;
        }
        f(&v)
    }

    /// `sip_profile_get_u32`.
    #[inline]
    pub fn get_u32(&self, key: u32) -> Result<u32> {
        self.read(key, |v| access::get_u32(v, key))
    }

    /// `sip_profile_get_bool`.
    #[inline]
    pub fn get_bool(&self, key: u32) -> Result<bool> {
        self.read(key, |v| access::get_bool(v, key))
    }

    /// `sip_profile_get_str` without a copy: `f` sees the value under the
    /// block's read lock (keep it short; it must not call into this handle's
    /// registry).
    #[inline]
    pub fn with_str<T>(&self, key: u32, f: impl FnOnce(&str) -> T) -> Result<T> {
        self.read(key, |v| access::get_str(v, key).map(f))
    }

    /// `sip_profile_get_str`, copied.
    pub fn get_str(&self, key: u32) -> Result<String> {
        self.with_str(key, str::to_owned)
    }

    /// `sip_profile_get_str_array`.
    pub fn get_str_array(&self, key: u32) -> Result<Vec<String>> {
        self.read(key, |v| access::get_str_array(v, key))
    }

    /// `sip_profile_get_server_str` without a copy, as `with_str`.
    pub fn with_server_str<T>(
        &self,
        server: u32,
        key: u32,
        f: impl FnOnce(&str) -> T,
    ) -> Result<T> {
        self.read(key, |v| access::get_server_str(v, server, key).map(f))
    }

    /// `sip_profile_get_server_str`, copied.
    pub fn get_server_str(&self, server: u32, key: u32) -> Result<String> {
        self.with_server_str(server, key, str::to_owned)
    }

    /// `sip_profile_type` without a copy.
    pub fn with_type<T>(&self, f: impl FnOnce(&TypeInfo) -> T) -> T {
        f(&self.block.read().data.type_info)
    }

    pub fn type_info(&self) -> TypeInfo {
        self.with_type(Clone::clone)
    }

    /// The registration state as this handle's registry last saw it.
    pub fn info(&self) -> RegistrationInfo {
        self.block.read().info.clone()
    }

    /// The registry's copy of the last registration error (ref §5.7); 0 if
    /// none (`Registry::last_registration_error` also checks the handle is
    /// the registry's).
    pub fn last_error(&self) -> i32 {
        self.block.read().last_error
    }

    /// Enabled by this handle's registry and registered (ref §5.8).
    #[inline]
    pub fn is_context_active(&self) -> bool {
        let b = self.block.read();
        b.enabled && b.info.status == Status::Registered
    }

    /// The registration binding's id; 0 unless registered.
    #[inline]
    pub fn context_id(&self) -> u32 {
        let b = self.block.read();
        if b.info.status == Status::Registered {
            b.info.context_id
        } else {
            0
        }
    }

    /// Everything the handle shows, at once, without passwords.
    pub fn copy(&self) -> ProfileCopy {
        let b = self.block.read();
        ProfileCopy {
            data: b.data.without_passwords(),
            info: b.info.clone(),
            enabled: b.enabled,
            last_error: b.last_error,
            is_default: b.is_default,
        }
    }

    /// True if this handle's data holds a password: one set here and not
    /// saved yet. Data from the server never does (ref §4.4).
    pub fn holds_password(&self) -> bool {
        let b = self.block.read();
        !b.data.registrar.password.is_empty() || !b.data.proxy.password.is_empty()
    }

    // ----- setters (ref §4.3); saved by `Registry::save` -----

    fn check_managed(&self) -> Result<()> {
        if self.managed {
            Ok(())
        } else {
            Err(with_context(
                Error::AccessDenied,
                "setters work only on profiles from a managed registry; this one is from a user registry",
            ))
        }
    }

    /// Applies `f`'s changes to the profile's data, all or none: `f` works
    /// on a copy, which replaces the data only if `f` succeeds. Other
    /// handles of the profile in this registry see the change at once.
    /// `Error::AccessDenied` (before `f` runs) on a user-registry handle.
    pub fn edit<T, E: From<Error>>(
        &self,
        f: impl FnOnce(&mut ProfileEdit<'_>) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        self.check_managed()?;
        let mut b = self.block.write();
        let mut d = b.data.clone();
        let r = f(&mut ProfileEdit::new(&mut d))?;
        b.data = d;
        Ok(r)
    }

    /// `sip_profile_set_u32`.
    pub fn set_u32(&self, key: u32, value: u32) -> Result<()> {
        self.edit(|e| e.set_u32(key, value))
    }

    /// `sip_profile_set_bool`.
    pub fn set_bool(&self, key: u32, value: bool) -> Result<()> {
        self.edit(|e| e.set_bool(key, value))
    }

    /// `sip_profile_set_str`.
    pub fn set_str(&self, key: u32, value: &str) -> Result<()> {
        self.edit(|e| e.set_str(key, value))
    }

    /// `sip_profile_set_str_array`.
    pub fn set_str_array(&self, key: u32, values: Vec<String>) -> Result<()> {
        self.edit(|e| e.set_str_array(key, values))
    }

    /// `sip_profile_set_server_str`.
    pub fn set_server_str(&self, server: u32, key: u32, value: &str) -> Result<()> {
        self.edit(|e| e.set_server_str(server, key, value))
    }

    /// `sip_profile_set_type` (checked at save).
    pub fn set_type(&self, t: TypeInfo) -> Result<()> {
        self.edit(|e| {
            e.set_type(t);
            Ok::<_, Error>(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::registry::tests::{open, saved_profile, tmp_store};
    use crate::Error;
    use crate::profile::keys::*;
    use crate::profile::{Status, TypeInfo};

    #[test]
    fn getters_read_only_their_own_type_of_key() {
        let m = open(&tmp_store("handle-get"), true, None);
        let (h, id) = saved_profile(&m);
        assert_eq!(h.get_u32(PROFILE_ID), Ok(id));
        assert_eq!(h.get_str(USER_AOR).as_deref(), Ok("sip:a@example.com"));
        assert_eq!(h.with_str(USER_AOR, str::len), Ok(17));
        assert_eq!(h.get_bool(SIG_COMP), Ok(false));
        // The first profile saved is the default: asked of the server.
        assert_eq!(h.get_bool(DEFAULT_PROFILE), Ok(true));
        assert_eq!(h.get_str_array(HEADERS), Ok(vec![]));
        // Each key through another type's getter.
        assert_eq!(h.get_u32(SIG_COMP), Err(Error::NotFound));
        assert_eq!(h.get_bool(PROFILE_ID), Err(Error::NotFound));
        assert_eq!(h.get_str(PROFILE_ID), Err(Error::NotFound));
        assert_eq!(h.get_str_array(USER_AOR), Err(Error::NotFound));
        assert_eq!(
            h.get_server_str(SERVER_REGISTRAR, USER_AOR),
            Err(Error::NotFound)
        );
        // Passwords are write-only.
        assert_eq!(
            h.get_server_str(SERVER_REGISTRAR, DIGEST_PASSWORD),
            Err(Error::PermissionDenied)
        );
        assert_eq!(h.get_str(DIGEST_PASSWORD), Err(Error::NotFound));
        // Not registered: no context.
        assert_eq!(h.info().status, Status::Unregistered);
        assert!(!h.is_context_active());
        assert_eq!(h.context_id(), 0);
        assert_eq!(h.last_error(), 0);
        assert_eq!(h.type_info(), TypeInfo::ietf());
        drop(h);
        m.close();
    }

    #[test]
    fn a_user_registry_handle_refuses_every_setter_and_keeps_its_data() {
        let store = tmp_store("handle-user");
        let m = open(&store, true, None);
        let (mh, id) = saved_profile(&m);
        let u = open(&store, false, None);
        let h = u.profile(id).unwrap();
        assert!(mh.is_managed() && !h.is_managed());
        assert_eq!(h.set_u32(ACCESS_POINT_ID, 3), Err(Error::AccessDenied));
        assert!(crate::error::message().contains("user registry"));
        assert_eq!(h.set_bool(SIG_COMP, true), Err(Error::AccessDenied));
        assert_eq!(h.set_str(PROVIDER_NAME, "x"), Err(Error::AccessDenied));
        assert_eq!(
            h.set_str_array(HEADERS, vec!["X-A: 1".into()]),
            Err(Error::AccessDenied)
        );
        assert_eq!(
            h.set_server_str(SERVER_REGISTRAR, DIGEST_USER_NAME, "u"),
            Err(Error::AccessDenied)
        );
        assert_eq!(h.set_type(TypeInfo::ims()), Err(Error::AccessDenied));
        let mut ran = false;
        let r: crate::Result<()> = h.edit(|_| {
            ran = true;
            Ok(())
        });
        assert_eq!(r, Err(Error::AccessDenied));
        assert!(!ran, "the closure ran on a user-registry handle");
        let after = h.copy();
        assert_eq!(after.data.access_point_id, 0);
        assert!(!after.data.sig_comp);
        assert_eq!(after.data.provider_name, "");
        assert!(after.data.headers.is_empty());
        assert_eq!(after.data.registrar.user, "");
        assert_eq!(after.data.type_info, TypeInfo::ietf());
        drop((h, mh));
        u.close();
        m.close();
    }

    #[test]
    fn a_refused_value_changes_nothing() {
        let m = open(&tmp_store("handle-bad"), true, None);
        let (h, _) = saved_profile(&m);
        let before = h.copy().data;
        assert_eq!(h.set_str(USER_AOR, "not a uri"), Err(Error::Argument));
        assert_eq!(h.set_u32(REGISTRATION_EXPIRES, 0), Err(Error::Argument));
        assert_eq!(h.set_bool(DEFAULT_PROFILE, false), Err(Error::Argument));
        assert_eq!(
            h.set_str_array(HEADERS, vec!["no colon".into()]),
            Err(Error::Argument)
        );
        assert_eq!(
            h.set_server_str(999, SERVER_ADDRESS, "sip:x"),
            Err(Error::Argument)
        );
        // Read-only keys, and keys of another type.
        assert_eq!(h.set_u32(PROFILE_ID, 9), Err(Error::NotFound));
        assert_eq!(
            h.set_str(CONTACT_HEADER_USER, "me"),
            Err(Error::AccessDenied)
        );
        assert_eq!(h.set_u32(USER_AOR, 1), Err(Error::NotFound));
        assert_eq!(h.set_bool(PROVIDER_NAME, true), Err(Error::NotFound));
        // All or nothing: the first change is undone by the failed second.
        let r = h.edit(|e| {
            e.set_str(PROVIDER_NAME, "half")?;
            e.set_str(USER_AOR, "still not a uri")
        });
        assert_eq!(r, Err(Error::Argument));
        let after = h.copy().data;
        assert_eq!(after.provider_name, before.provider_name);
        assert_eq!(after.aor, "sip:a@example.com");
        assert_eq!(after.ext_u32, before.ext_u32);
        assert_eq!(after.headers, before.headers);
        assert!(!after.make_default);
        assert_eq!(h.get_u32(PROFILE_ID), Ok(before.id));
        drop(h);
        m.close();
    }

    #[test]
    fn a_change_shows_in_every_handle_of_the_block_but_no_password_is_copied() {
        let m = open(&tmp_store("handle-share"), true, None);
        let (h, id) = saved_profile(&m);
        let other = m.profile(id).unwrap();
        assert!(h.shares_data_with(&other));
        let fresh = m.create(&TypeInfo::ietf()).unwrap();
        assert!(!h.shares_data_with(&fresh));
        h.set_str(PROVIDER_NAME, "shared").unwrap();
        h.set_server_str(SERVER_REGISTRAR, DIGEST_PASSWORD, "secret")
            .unwrap();
        assert_eq!(other.get_str(PROVIDER_NAME).as_deref(), Ok("shared"));
        let c = other.copy();
        assert_eq!(c.data.provider_name, "shared");
        assert!(c.data.registrar.password.is_empty());
        // The password is there to be saved all the same, and goes with
        // the save: the server's copy holds none.
        assert!(h.holds_password() && other.holds_password());
        m.save(&h).unwrap();
        assert!(!h.holds_password());
        let stored = m.export_with_passwords().unwrap();
        let p = stored.iter().find(|p| p.id == id).unwrap();
        assert!(!p.registrar.password.is_empty());
        drop((h, other, fresh));
        m.close();
    }
}
