//! A registry: one client session of the profile server (ref §2.4–2.6). It
//! keeps one shared data block per profile id for all its handles (ref §5.2).
//! A registry with an observer has a mailbox: the engine's thread (for the
//! events of its steps) or the server's delivery threads (`delivery.rs`) take
//! its events in order, refresh its blocks and call the observer outside
//! every lock (contract §2). One without has no mailbox, and the server
//! refreshes its blocks itself.

use super::Server;
use super::delivery::Mailbox;
use super::events::{Delivery, Event, Observer, Snapshot};
use crate::profile::access::View;
use crate::profile::{ProfileData, RegistrationInfo, Status, TypeInfo};
use crate::sip::uri::Uri;
use crate::{Error, Result, log};
use parking_lot::{Mutex, RwLock};
use std::cell::Cell;
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Weak};

/// A registry's copy of one profile, shared by all its handles of that id.
#[derive(Debug, Clone)]
pub struct ClientProfile {
    pub data: ProfileData,
    pub info: RegistrationInfo,
    /// Enabled by this registry (ref §2.5 `IsEnabled`).
    pub enabled: bool,
    /// Client copy of the last registration error (ref §5.7).
    pub last_error: i32,
    pub is_default: bool,
    /// Server revision of `data`; older event data is not applied.
    pub revision: u64,
    /// Server `seq` of `info`, `last_error` and `is_default`, and of the
    /// last change of `enabled`: an older state is not applied, whether it
    /// comes from an event or from the return of `enable`.
    pub seq: u64,
    pub enabled_seq: u64,
}

impl ClientProfile {
    /// A profile not saved yet: nothing from the server applied.
    fn unsaved(data: ProfileData) -> ClientProfile {
        ClientProfile {
            data,
            info: RegistrationInfo::default(),
            enabled: false,
            last_error: 0,
            is_default: false,
            revision: 0,
            seq: 0,
            enabled_seq: 0,
        }
    }

    fn from_snapshot(s: &Snapshot) -> ClientProfile {
        ClientProfile {
            data: s.data().clone(),
            info: s.info.clone(),
            enabled: false,
            last_error: s.info.last_error,
            is_default: s.is_default,
            revision: s.revision,
            seq: s.seq,
            enabled_seq: 0,
        }
    }

    /// Applies what is newer in `s`; true if its registration state was.
    fn refresh(&mut self, s: &Snapshot) -> bool {
        if let Some(d) = &s.data {
            if s.revision > self.revision {
                self.data = d.clone();
                self.revision = s.revision;
            }
        }
        if s.seq <= self.seq {
            return false;
        }
        self.seq = s.seq;
        self.info = s.info.clone();
        self.last_error = s.info.last_error;
        self.is_default = s.is_default;
        true
    }

    /// The server stopped (or started) this registry's use at `seq`.
    fn set_enabled(&mut self, enabled: bool, seq: u64) {
        if seq > self.enabled_seq {
            self.enabled = enabled;
            self.enabled_seq = seq;
        }
    }

    /// The registration state the server returned at `seq` (the client's
    /// `last_error` is the caller's to set, ref §5.7).
    fn set_info(&mut self, info: RegistrationInfo, seq: u64) {
        if seq > self.seq {
            self.info = info;
            self.seq = seq;
        }
    }

    pub fn view(&self) -> View<'_> {
        View {
            data: &self.data,
            reg: &self.info,
            is_default: self.is_default,
        }
    }
}

type Block = Arc<RwLock<ClientProfile>>;
/// How the server refers to a registry's block (it does not keep it alive).
pub(crate) type BlockRef = Weak<RwLock<ClientProfile>>;
/// Per profile id: the shared block and how many handles use it.
type BlockSlot = (BlockRef, usize);

/// Where the server sends one registry's events.
pub(crate) enum Sink {
    /// To its mailbox, from which the observer is called (`delivery.rs`).
    Mailbox(Arc<Mailbox>),
    /// No observer: the server applies the event to the registry's block
    /// itself, under its lock, in order. Waking a thread for no callback
    /// would take a core from the registries that do have observers (on
    /// two cores it tripled their p99 delivery latency).
    Handles,
}

impl Sink {
    pub(crate) fn deliver(&self, block: &BlockRef, d: &Delivery) {
        match self {
            Sink::Mailbox(m) => m.push(d.clone()),
            Sink::Handles => {
                if let Some(b) = block.upgrade() {
                    apply(&mut b.write(), d);
                }
            }
        }
    }
}

/// What an event changes in a registry's copy of the profile, before (or
/// instead of) its observer hears it.
fn apply(c: &mut ClientProfile, d: &Delivery) {
    match d {
        Delivery::Event(_, ev, Some(s), _) => {
            c.refresh(s);
            if *ev == Event::ForciblyDisabled {
                c.set_enabled(false, s.seq); // contract §7.3
            }
        }
        Delivery::Error(_, code, Some(s)) => {
            if c.refresh(s) {
                c.info.status = Status::Unregistered;
                c.last_error = *code;
            }
            c.set_enabled(false, s.seq);
        }
        // The profile is gone (DESTROYED): nothing left to update.
        Delivery::Event(..) | Delivery::Error(..) => {}
    }
}
thread_local! {
    /// The registry whose callback this thread is running, by address (ids
    /// are per server, and a callback may free another store's registry);
    /// 0 if none.
    static IN_CALLBACK: Cell<usize> = const { Cell::new(0) };
}

pub struct Registry {
    id: u64,
    pub managed: bool,
    server: Arc<Server>,
    blocks: Mutex<HashMap<u32, BlockSlot>>,
    /// Its observer's events; `None` without observer.
    mailbox: Option<Arc<Mailbox>>,
    closed: AtomicBool,
    /// Freed from inside its own callback: finished when the callback returns.
    close_deferred: AtomicBool,
}

/// One profile handle (`sip_profile`).
pub struct ProfileHandle {
    pub block: Block,
    registry: Weak<Registry>,
    /// Retrieved from (or created in) a managed registry: setters allowed.
    pub managed: bool,
    /// The id this handle is counted under in its registry; 0 while unsaved.
    attached: AtomicU32,
}

impl Drop for ProfileHandle {
    fn drop(&mut self) {
        let id = self.attached.load(Ordering::Acquire);
        if id == 0 {
            return;
        }
        if let Some(r) = self.registry.upgrade() {
            r.release(id);
        }
    }
}

impl ProfileHandle {
    fn registry(&self) -> Result<Arc<Registry>> {
        let r = self.registry.upgrade().ok_or(Error::BadHandle)?;
        if r.closed.load(Ordering::Acquire) {
            return Err(Error::BadHandle);
        }
        Ok(r)
    }

    /// `SIP_KEY_DEFAULT_PROFILE` asks the server each time (ref §5.9).
    pub fn is_default(&self) -> bool {
        // Not holding the block while asking: the server writes blocks.
        let (id, cached) = {
            let b = self.block.read();
            (b.data.id, b.is_default)
        };
        match self.registry() {
            Ok(r) if id != 0 => r.server.default_id() == Some(id),
            _ => cached,
        }
    }

    /// `clone` (ref §2.8): a new unsaved profile with the same configuration.
    pub fn clone_profile(&self) -> Result<ProfileHandle> {
        if !self.managed {
            return Err(Error::AccessDenied);
        }
        let registry = self.registry()?;
        let src = self.block.read();
        if src.data.id == 0 {
            return Err(Error::BadHandle);
        }
        let mut data = src.data.without_passwords();
        data.id = 0;
        data.make_default = false;
        data.contact_user = crate::profile::model::generate_contact_user();
        data.ext_str.remove(&crate::profile::keys::INSTANCE_ID);
        Ok(registry.unattached(data))
    }
}

impl Registry {
    pub fn open(
        store: Option<&Path>,
        managed: bool,
        observer: Option<Box<dyn Observer>>,
    ) -> Result<Arc<Registry>> {
        let path = match store {
            Some(p) => p.to_owned(),
            None => crate::store::default_path()?,
        };
        let Some(observer) = observer else {
            let (server, id) = Server::attach(&path, Sink::Handles)?;
            return Ok(Arc::new(Registry::new(id, managed, server, None)));
        };
        // Events from the moment of attaching wait in the mailbox until it
        // is bound to the registry.
        let mailbox = Mailbox::new(observer);
        let (server, id) = Server::attach(&path, Sink::Mailbox(mailbox.clone()))?;
        let pool = match server.delivery_pool() {
            Ok(p) => p,
            Err(e) => {
                server.detach(id);
                return Err(e);
            }
        };
        let reg = Arc::new(Registry::new(id, managed, server, Some(mailbox.clone())));
        mailbox.bind(&reg, &pool);
        Ok(reg)
    }

    fn new(id: u64, managed: bool, server: Arc<Server>, mailbox: Option<Arc<Mailbox>>) -> Self {
        Registry {
            id,
            managed,
            server,
            blocks: Mutex::new(HashMap::new()),
            mailbox,
            closed: AtomicBool::new(false),
            close_deferred: AtomicBool::new(false),
        }
    }

    /// `*_registry_free`: disables everything this registry enabled, stops
    /// its callbacks (waiting for a running one), and stops the server if
    /// this was its last registry.
    pub fn close(self: &Arc<Self>) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        if IN_CALLBACK.with(Cell::get) == Arc::as_ptr(self) as usize {
            self.close_deferred.store(true, Ordering::Release);
            return;
        }
        if let Some(m) = &self.mailbox {
            m.close_and_wait();
        }
        self.server.detach(self.id);
    }

    fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            Err(Error::BadHandle)
        } else {
            Ok(())
        }
    }

    fn own(self: &Arc<Self>, h: &ProfileHandle) -> Result<()> {
        self.check_open()?;
        if Weak::as_ptr(&h.registry) != Arc::as_ptr(self) {
            return Err(Error::BadHandle);
        }
        Ok(())
    }

    fn block_of(&self, id: u32) -> Option<Block> {
        self.blocks.lock().get(&id).and_then(|(w, _)| w.upgrade())
    }

    fn unattached(self: &Arc<Self>, data: ProfileData) -> ProfileHandle {
        ProfileHandle {
            block: Arc::new(RwLock::new(ClientProfile::unsaved(data))),
            registry: Arc::downgrade(self),
            managed: self.managed,
            attached: AtomicU32::new(0),
        }
    }

    /// Has the server send `id`'s events to `block` from now on, and brings
    /// the block up to date with what happened since the snapshot of
    /// `revision` it was made from (no block of ours could hear that).
    fn observe(&self, id: u32, block: &Block, revision: u64) -> BlockRef {
        let weak = Arc::downgrade(block);
        if let Some(now) = self.server.observe(self.id, id, &weak, revision) {
            block.write().refresh(&now);
        }
        weak
    }

    /// A new handle for `snap`'s profile, sharing this registry's block.
    fn attach(self: &Arc<Self>, snap: &Snapshot) -> ProfileHandle {
        let id = snap.data().id;
        let mut blocks = self.blocks.lock();
        let block = match blocks.get_mut(&id) {
            Some((w, n)) if w.strong_count() > 0 => {
                *n += 1;
                w.upgrade().expect("counted")
            }
            _ => {
                let b = Arc::new(RwLock::new(ClientProfile::from_snapshot(snap)));
                blocks.insert(id, (self.observe(id, &b, snap.revision), 1));
                b
            }
        };
        ProfileHandle {
            block,
            registry: Arc::downgrade(self),
            managed: self.managed,
            attached: AtomicU32::new(id),
        }
    }

    /// The last handle of `id` going away disables it for this registry and
    /// stops events for it (ref §2.7).
    fn release(&self, id: u32) {
        let mut blocks = self.blocks.lock();
        let Some((w, n)) = blocks.get_mut(&id) else {
            return;
        };
        *n -= 1;
        if *n > 0 {
            return;
        }
        let enabled = w.upgrade().is_some_and(|b| b.read().enabled);
        let (block, _) = blocks.remove(&id).expect("present");
        drop(blocks);
        if self.closed.load(Ordering::Acquire) {
            return;
        }
        self.server.unobserve(self.id, id, &block);
        if enabled {
            let _ = self.server.disable(self.id, id);
        }
    }

    pub fn profile(self: &Arc<Self>, id: u32) -> Result<ProfileHandle> {
        self.check_open()?;
        if id == 0 {
            return Err(Error::Argument);
        }
        let snap = self.server.profile(id)?;
        Ok(self.attach(&snap))
    }

    pub fn default_profile(self: &Arc<Self>) -> Result<ProfileHandle> {
        self.check_open()?;
        let id = self.server.default_id().ok_or(Error::NotFound)?;
        self.profile(id)
    }

    fn profiles_where(
        self: &Arc<Self>,
        keep: impl Fn(&ProfileData) -> bool,
    ) -> Result<Vec<ProfileHandle>> {
        self.check_open()?;
        let mut out = Vec::new();
        for id in self.server.all_ids() {
            if let Ok(snap) = self.server.profile(id) {
                if keep(snap.data()) {
                    out.push(self.attach(&snap));
                }
            }
        }
        Ok(out)
    }

    pub fn profiles(self: &Arc<Self>) -> Result<Vec<ProfileHandle>> {
        self.profiles_where(|_| true)
    }

    pub fn profiles_by_type(self: &Arc<Self>, t: &TypeInfo) -> Result<Vec<ProfileHandle>> {
        self.profiles_where(|d| d.type_info == *t)
    }

    /// Profiles whose AOR is URI-equal to `aor` (RFC 3261 §19.1.4).
    pub fn profiles_by_aor(self: &Arc<Self>, aor: &str) -> Result<Vec<ProfileHandle>> {
        let want = Uri::parse(aor).map_err(|_| Error::Argument)?;
        self.profiles_where(|d| Uri::parse(&d.aor).is_ok_and(|u| u.equivalent(&want)))
    }

    pub fn last_registration_error(self: &Arc<Self>, h: &ProfileHandle) -> Result<i32> {
        self.own(h)?;
        Ok(h.block.read().last_error)
    }

    // ----- user registry (ref §2.5) -----

    pub fn enable(self: &Arc<Self>, h: &ProfileHandle) -> Result<()> {
        self.own(h)?;
        let id = {
            let mut b = h.block.write();
            if b.enabled {
                return Err(Error::Argument);
            }
            b.last_error = 0;
            b.data.id
        };
        if id == 0 || h.attached.load(Ordering::Acquire) == 0 {
            return Err(Error::NotFound);
        }
        match self.server.enable(self.id, id) {
            Ok((info, seq)) => {
                let mut b = h.block.write();
                b.set_enabled(true, seq);
                b.set_info(info, seq);
                Ok(())
            }
            Err(e) => {
                h.block.write().last_error = e.code();
                Err(e)
            }
        }
    }

    pub fn disable(self: &Arc<Self>, h: &ProfileHandle) -> Result<()> {
        self.own(h)?;
        let (id, was) = {
            let mut b = h.block.write();
            b.last_error = 0;
            let was = b.enabled;
            b.enabled = false;
            (b.data.id, was)
        };
        if !was {
            return Ok(());
        }
        let (info, seq) = self.server.disable(self.id, id)?;
        let mut b = h.block.write();
        b.set_enabled(false, seq);
        b.set_info(info, seq);
        Ok(())
    }

    pub fn is_enabled(self: &Arc<Self>, h: &ProfileHandle) -> bool {
        self.own(h).is_ok() && h.block.read().enabled
    }

    pub fn refresh_enable(self: &Arc<Self>, h: &ProfileHandle) -> Result<()> {
        self.own(h)?;
        let (id, enabled) = {
            let b = h.block.read();
            (b.data.id, b.enabled)
        };
        if !enabled {
            return Err(Error::Argument);
        }
        self.server.refresh_enable(self.id, id)
    }

    pub fn force_disable(self: &Arc<Self>, h: &ProfileHandle) -> Result<()> {
        self.own(h)?;
        let id = h.block.read().data.id;
        let (info, seq) = self.server.force_disable(id)?;
        let mut b = h.block.write();
        b.set_enabled(false, seq);
        b.last_error = 0;
        b.set_info(info, seq);
        Ok(())
    }

    // ----- managed registry (ref §2.6) -----

    pub fn create(self: &Arc<Self>, t: &TypeInfo) -> Result<ProfileHandle> {
        self.check_open()?;
        if !t.is_supported() {
            return Err(Error::NotFound);
        }
        Ok(self.unattached(ProfileData::new(t.clone())))
    }

    pub fn save(self: &Arc<Self>, h: &ProfileHandle) -> Result<()> {
        self.own(h)?;
        let data = {
            let mut b = h.block.write();
            b.last_error = 0;
            b.data.clone()
        };
        let was_new = data.id == 0;
        let snap = self.server.save(data)?;
        {
            let mut b = h.block.write();
            b.refresh(&snap);
        }
        if was_new {
            // The handle now belongs to the registry's block map (ref §2.6).
            let mut blocks = self.blocks.lock();
            let weak = self.observe(snap.data().id, &h.block, snap.revision);
            blocks.insert(snap.data().id, (weak, 1));
            h.attached.store(snap.data().id, Ordering::Release);
        }
        Ok(())
    }

    pub fn destroy(self: &Arc<Self>, h: &ProfileHandle) -> Result<()> {
        self.own(h)?;
        let id = {
            let mut b = h.block.write();
            b.last_error = 0;
            b.data.id
        };
        if id == 0 {
            return Err(Error::NotFound);
        }
        self.server.destroy(id)
    }

    pub fn is_in_use(self: &Arc<Self>, h: &ProfileHandle) -> Result<bool> {
        self.own(h)?;
        let id = h.block.read().data.id;
        if id == 0 {
            return Err(Error::NotFound);
        }
        self.server.is_in_use(id)
    }

    /// One event for the observer, on a library thread: refresh the
    /// blocks, then call it with no lock held. False once the registry is
    /// gone (freed, or freed by this very callback): nothing more for it.
    pub(crate) fn deliver(&self, d: Delivery, observer: &dyn Observer) -> bool {
        if self.closed.load(Ordering::Acquire) {
            return false;
        }
        let id = match d {
            Delivery::Event(id, ..) | Delivery::Error(id, ..) => id,
        };
        match self.block_of(id) {
            Some(b) => apply(&mut b.write(), &d),
            // Ref §5.2: only ids this registry holds, and CREATED.
            None if matches!(d, Delivery::Event(_, Event::Created, ..)) => {}
            None => return true,
        }
        IN_CALLBACK.with(|c| c.set(self as *const Registry as usize));
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match d {
            Delivery::Event(id, ev, _, at) => observer.event_at(id, ev, at),
            Delivery::Error(id, code, _) => observer.error(id, code),
        }));
        IN_CALLBACK.with(|c| c.set(0));
        if r.is_err() {
            log::error(&format!("observer for profile {id} panicked"));
        }
        if self.close_deferred.load(Ordering::Acquire) {
            // Freed inside its own callback: finish here, after it returned.
            self.server.detach(self.id);
            return false;
        }
        true
    }
}

#[cfg(test)]
impl Registry {
    /// How many delivery threads its server runs.
    pub(crate) fn delivery_threads(&self) -> usize {
        self.server.delivery_threads()
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::profile::{access, keys};

    pub(crate) fn tmp_store(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!(
            "sipprofile-registry-{}-{}-{name}",
            std::process::id(),
            crate::random::hex_token(4)
        ));
        std::fs::create_dir_all(&d).unwrap();
        d.join("profiles.db")
    }

    pub(crate) fn saved_profile(m: &Arc<Registry>) -> (ProfileHandle, u32) {
        let h = m.create(&TypeInfo::ietf()).unwrap();
        access::set_str(
            &mut h.block.write().data,
            keys::USER_AOR,
            "sip:a@example.com",
        )
        .unwrap();
        m.save(&h).unwrap();
        let id = h.block.read().data.id;
        (h, id)
    }

    /// A managed and a user registry, both without observer, on one new
    /// store holding one saved profile: its handle in the managed one, and its id.
    fn two_registries_one_profile(
        name: &str,
    ) -> (Arc<Registry>, Arc<Registry>, ProfileHandle, u32) {
        let store = tmp_store(name);
        let m = Registry::open(Some(&store), true, None).unwrap();
        let u = Registry::open(Some(&store), false, None).unwrap();
        let (h, id) = saved_profile(&m);
        (m, u, h, id)
    }

    fn provider(h: &ProfileHandle) -> String {
        let b = h.block.read();
        access::get_str(&b.view(), keys::PROVIDER_NAME)
            .unwrap()
            .to_owned()
    }

    pub(crate) fn rename(m: &Arc<Registry>, h: &ProfileHandle, name: &str) {
        access::set_str(&mut h.block.write().data, keys::PROVIDER_NAME, name).unwrap();
        m.save(h).unwrap();
    }

    #[test]
    fn a_registry_without_observer_has_no_thread_and_sees_changes_when_the_save_returns() {
        let (m, u, h, id) = two_registries_one_profile("inline");
        assert!(m.mailbox.is_none() && u.mailbox.is_none());
        assert_eq!(m.delivery_threads(), 0);
        let held = u.profile(id).unwrap();
        for name in ["first", "second", "third"] {
            rename(&m, &h, name);
            // No waiting: the server wrote u's block before save returned.
            assert_eq!(provider(&held), name);
        }
        drop((held, h));
        u.close();
        m.close();
    }

    fn client() -> ClientProfile {
        ClientProfile::unsaved(ProfileData::new(TypeInfo::ietf()))
    }

    fn state(status: Status, seq: u64) -> Arc<Snapshot> {
        let info = RegistrationInfo {
            status,
            ..RegistrationInfo::default()
        };
        Arc::new(Snapshot {
            data: None,
            seq,
            revision: 0,
            info,
            is_default: false,
        })
    }

    #[test]
    fn the_newest_registration_state_wins_whichever_arrives_first() {
        let now = std::time::Instant::now();
        // REGISTERED (seq 7) applied before the state `enable` returned
        // (seq 6): still registered, and enabled.
        let mut c = client();
        apply(
            &mut c,
            &Delivery::Event(
                1,
                Event::Registered,
                Some(state(Status::Registered, 7)),
                now,
            ),
        );
        let in_progress = state(Status::RegistrationInProgress, 6).info.clone();
        c.set_enabled(true, 6);
        c.set_info(in_progress, 6);
        assert_eq!(c.info.status, Status::Registered);
        assert!(c.enabled);
        // An error older than the enable (queued before it) changes nothing.
        apply(
            &mut c,
            &Delivery::Error(1, 403, Some(state(Status::Unregistered, 5))),
        );
        assert!(c.enabled);
        assert_eq!((c.info.status, c.last_error), (Status::Registered, 0));
        // A newer one does.
        apply(
            &mut c,
            &Delivery::Error(1, 403, Some(state(Status::Unregistered, 8))),
        );
        assert!(!c.enabled);
        assert_eq!((c.info.status, c.last_error), (Status::Unregistered, 403));
        // FORCIBLY_DISABLED older than a new enable leaves it enabled.
        c.set_enabled(true, 10);
        apply(
            &mut c,
            &Delivery::Event(
                1,
                Event::ForciblyDisabled,
                Some(state(Status::Unregistered, 9)),
                now,
            ),
        );
        assert!(c.enabled);
    }

    #[test]
    fn a_stale_release_does_not_stop_the_events_of_the_block_that_replaced_it() {
        let (m, u, h, id) = two_registries_one_profile("release");
        // The interleaving of a release with a new lookup of the same id:
        // the old block is gone from the map, a new one is observed, and
        // only then does the release tell the server.
        let old = Arc::downgrade(&u.profile(id).unwrap().block);
        let held = u.profile(id).unwrap();
        assert!(!old.ptr_eq(&Arc::downgrade(&held.block)));
        u.server.unobserve(u.id, id, &old);
        rename(&m, &h, "after");
        assert_eq!(provider(&held), "after");
        // The release of the current block does stop them.
        u.server.unobserve(u.id, id, &Arc::downgrade(&held.block));
        rename(&m, &h, "unseen");
        assert_eq!(provider(&held), "after");
        drop((held, h));
        u.close();
        m.close();
    }

    #[test]
    fn a_lookup_racing_a_change_catches_up_with_it() {
        let (m, u, h, id) = two_registries_one_profile("lookup-race");
        // The interleaving of a lookup with a change: the lookup's snapshot
        // is taken, the change happens while no block of `u` exists for it
        // to reach, and only then is the block made from the snapshot.
        let snap = u.server.profile(id).unwrap();
        rename(&m, &h, "meanwhile");
        let held = u.attach(&snap);
        assert_eq!(provider(&held), "meanwhile");
        assert!(held.block.read().seq > snap.seq);
        // Later changes reach it as events.
        rename(&m, &h, "after");
        assert_eq!(provider(&held), "after");
        drop((held, h));
        u.close();
        m.close();
    }
}
