//! A registry: one client session of the profile server (ref §2.4–2.6), in
//! the application's process. It keeps one shared data block per profile id
//! for all its handles (ref §5.2); the connection's reader applies each
//! event to the block, then queues the observer's callback in the
//! registry's mailbox (`delivery.rs`). Every change goes to the server as a
//! request (`protocol`); getters read the block and never leave the process.

use super::connect::Hosting;
use super::connection::Connection;
use super::delivery::Mailbox;
use super::{Flags, Observer};
use crate::profile::access::View;
use crate::profile::{ProfileData, RegistrationInfo, Status, TypeInfo};
use crate::protocol::{
    Delivery, Event, Failure, Filter, Reply, Request, SaveItem, Snapshot, Token,
};
use crate::{Error, Result, log};
use parking_lot::{Mutex, RwLock};
use std::cell::Cell;
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Weak};

/// A registry's copy of one profile, shared by all its handles of that id.
#[derive(Debug, Clone)]
pub(super) struct ClientProfile {
    pub(super) data: ProfileData,
    pub(super) info: RegistrationInfo,
    /// Enabled by this registry (ref §2.5 `IsEnabled`).
    pub(super) enabled: bool,
    /// Client copy of the last registration error (ref §5.7).
    pub(super) last_error: i32,
    pub(super) is_default: bool,
    /// Server revision of `data`; older event data is not applied.
    revision: u64,
    /// Server `seq` of `info`, `last_error` and `is_default`, and of the
    /// last change of `enabled`: an older state is not applied, whether it
    /// comes from an event or from the return of `enable`.
    seq: u64,
    enabled_seq: u64,
    /// DESTROYED was heard: lookups of this id fail from now on.
    gone: bool,
    /// The server's verdict on enabling `data` (`None`: it can register).
    enable_refusal: Option<Failure>,
    /// Which `enable` of this registry was sent last without waiting: only
    /// its own refusal may undo it.
    enable_mark: u64,
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
            gone: false,
            enable_refusal: None,
            enable_mark: 0,
        }
    }

    /// Applies what is newer in `s`; true if its registration state was.
    fn refresh(&mut self, s: &Snapshot) -> bool {
        if let Some(d) = &s.data
            && s.revision >= self.revision
        {
            if s.revision > self.revision {
                self.data = d.clone();
                self.revision = s.revision;
            }
            self.enable_refusal.clone_from(&s.enable_refusal);
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

    /// Takes back the pipelined `enable` marked `mark`, refused with
    /// `code`, unless a later enable or a disable came since; true if it did.
    fn undo_enable(&mut self, mark: u64, code: i32) -> bool {
        if self.enable_mark != mark || !self.enabled {
            return false;
        }
        self.enabled = false;
        self.last_error = code;
        if self.info.status == Status::RegistrationInProgress {
            self.info.status = Status::Unregistered;
        }
        true
    }

    /// The registration state the server returned at `seq` (the client's
    /// `last_error` is the caller's to set, ref §5.7).
    fn set_info(&mut self, info: RegistrationInfo, seq: u64) {
        if seq > self.seq {
            self.info = info;
            self.seq = seq;
        }
    }

    pub(super) fn view(&self) -> View<'_> {
        View {
            data: &self.data,
            reg: &self.info,
            is_default: self.is_default,
        }
    }
}

type Block = Arc<RwLock<ClientProfile>>;
/// Per profile id: the shared block, how many handles use it, and the token
/// the server knows it by.
type BlockSlot = (Weak<RwLock<ClientProfile>>, usize, Token);

/// What an event changes in a registry's copy of the profile, before (or
/// instead of) its observer hears it.
fn apply(c: &mut ClientProfile, d: &Delivery) {
    match d {
        Delivery::Event {
            event,
            snapshot: Some(s),
            ..
        } => {
            c.refresh(s);
            match event {
                Event::ForciblyDisabled => c.set_enabled(false, s.seq), // contract §7.3
                Event::Destroyed => c.gone = true,
                _ => {}
            }
        }
        Delivery::Error {
            code,
            snapshot: Some(s),
            ..
        } => {
            if c.refresh(s) {
                c.info.status = Status::Unregistered;
                c.last_error = *code;
            }
            c.set_enabled(false, s.seq);
        }
        Delivery::Event {
            event: Event::Destroyed,
            ..
        } => c.gone = true,
        Delivery::Event { .. } | Delivery::Error { .. } => {}
    }
}

thread_local! {
    /// The registry whose callback this thread is running, by address (a
    /// callback may free another store's registry); 0 if none.
    static IN_CALLBACK: Cell<usize> = const { Cell::new(0) };
}

pub struct Registry {
    id: u64,
    pub managed: bool,
    flags: Flags,
    conn: Arc<Connection>,
    blocks: Mutex<HashMap<u32, BlockSlot>>,
    next_token: AtomicU64,
    /// Its observer's events; `None` without observer.
    mailbox: Option<Arc<Mailbox>>,
    closed: AtomicBool,
    /// Freed from inside its own callback: finished when the callback returns.
    close_deferred: AtomicBool,
}

/// One profile handle (`sip_profile`).
pub struct ProfileHandle {
    pub(super) block: Block,
    registry: Weak<Registry>,
    /// Retrieved from (or created in) a managed registry: setters allowed.
    pub(super) managed: bool,
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
        let (id, cached) = {
            let b = self.block.read();
            (b.data.id, b.is_default)
        };
        match self.registry() {
            Ok(r) if id != 0 => r.default_id().ok().flatten() == Some(id),
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

    /// The profile's id; 0 while not saved.
    pub fn id(&self) -> u32 {
        self.block.read().data.id
    }

    /// Enabled by its registry (ref §2.5 `IsEnabled`).
    pub fn is_enabled(&self) -> bool {
        self.block.read().enabled
    }

    /// The registration state as this handle shows it.
    pub fn status(&self) -> Status {
        self.block.read().info.status
    }

    /// `sip_profile_last_attempt`: the last attempt's error (0 if it
    /// succeeded or none was made) and the time to the next one.
    pub fn last_attempt(&self) -> (i32, std::time::Duration) {
        let b = self.block.read();
        let now = crate::protocol::monotonic_ns();
        let left = b.info.retry_at_ns.saturating_sub(now);
        (b.info.attempt_error, std::time::Duration::from_nanos(left))
    }
}

fn expect<T>(r: Result<Reply>, f: impl FnOnce(Reply) -> Option<T>) -> Result<T> {
    f(r?).ok_or_else(|| {
        log::error("the profile server answered with the wrong kind of reply");
        Error::General
    })
}

impl Registry {
    /// A registry of `store` (the default store if `None`). Its first in
    /// this process connects to the store's server, starting it if none
    /// runs (`SIPPROFILE_SERVER` says how).
    pub fn open(
        store: Option<&Path>,
        managed: bool,
        observer: Option<Box<dyn Observer>>,
    ) -> Result<Arc<Registry>> {
        Self::open_with(store, managed, observer, Flags::default())
    }

    pub fn open_with(
        store: Option<&Path>,
        managed: bool,
        observer: Option<Box<dyn Observer>>,
        flags: Flags,
    ) -> Result<Arc<Registry>> {
        let path = match store {
            Some(p) => p.to_owned(),
            None => crate::store::default_path()?,
        };
        let hosting = match flags.hosting {
            Some(h) => h,
            None => Hosting::from_env()?,
        };
        let (conn, id) = Connection::for_store(&path, hosting)?;
        let mailbox = match observer {
            Some(o) => match Mailbox::new(o, flags.app_dispatch) {
                Ok(m) => Some(m),
                Err(_) => {
                    conn.remove_registry(id);
                    return Err(Error::NoMemory);
                }
            },
            None => None,
        };
        let reg = Arc::new(Registry {
            id,
            managed,
            flags,
            conn: conn.clone(),
            blocks: Mutex::new(HashMap::new()),
            next_token: AtomicU64::new(1),
            mailbox: mailbox.clone(),
            closed: AtomicBool::new(false),
            close_deferred: AtomicBool::new(false),
        });
        conn.add_registry(id, &reg);
        let opened = (|| {
            conn.call(reg.open_request())?;
            if let Some(m) = &mailbox {
                let pool = if flags.app_dispatch {
                    None
                } else {
                    Some(conn.pool()?)
                };
                m.bind(&reg, pool.as_ref());
            }
            Ok(())
        })();
        if let Err(e) = opened {
            reg.closed.store(true, Ordering::Release);
            conn.remove_registry(id);
            return Err(e);
        }
        Ok(reg)
    }

    fn open_request(&self) -> Request {
        Request::OpenRegistry {
            registry: self.id,
            observer: self.mailbox.is_some(),
            attempt_events: self.flags.attempt_events,
        }
    }

    /// `*_registry_free`: disables everything this registry enabled, stops
    /// its callbacks (waiting for a running one), and closes the connection
    /// if this was its last registry.
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
        self.finish_close();
    }

    fn finish_close(self: &Arc<Self>) {
        let _ = self.conn.call(Request::CloseRegistry { registry: self.id });
        self.conn.remove_registry(self.id);
    }

    /// The fd that polls readable while callbacks wait (app dispatch).
    pub fn event_fd(&self) -> Option<std::os::fd::RawFd> {
        self.mailbox.as_ref().and_then(|m| m.event_fd())
    }

    /// Runs up to `max` waiting callbacks on this thread (app dispatch).
    pub fn dispatch(self: &Arc<Self>, max: u32) -> Result<u32> {
        self.check_open()?;
        match &self.mailbox {
            Some(m) if self.flags.app_dispatch => Ok(m.dispatch(max)),
            _ => Err(Error::NotSupported),
        }
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
        self.blocks.lock().get(&id).and_then(|(w, ..)| w.upgrade())
    }

    fn unattached(self: &Arc<Self>, data: ProfileData) -> ProfileHandle {
        ProfileHandle {
            block: Arc::new(RwLock::new(ClientProfile::unsaved(data))),
            registry: Arc::downgrade(self),
            managed: self.managed,
            attached: AtomicU32::new(0),
        }
    }

    fn handle(self: &Arc<Self>, block: Block, id: u32) -> ProfileHandle {
        ProfileHandle {
            block,
            registry: Arc::downgrade(self),
            managed: self.managed,
            attached: AtomicU32::new(id),
        }
    }

    fn new_token(&self) -> Token {
        self.next_token.fetch_add(1, Ordering::Relaxed)
    }

    /// A new handle of `id`, sharing this registry's block.
    fn attach_id(self: &Arc<Self>, id: u32) -> Result<ProfileHandle> {
        self.attach_ids(&[id])?
            .pop()
            .flatten()
            .ok_or(Error::NotFound)
    }

    /// New handles of `ids` (`None` for an id that is gone), in one round
    /// trip for those this registry holds no loaded block of: a new block
    /// observes its profile from now on (its events reach it even before
    /// the server's answer does).
    fn attach_ids(self: &Arc<Self>, ids: &[u32]) -> Result<Vec<Option<ProfileHandle>>> {
        // Per id: its block, whether this call made it (with its token),
        // and whether the server must be asked.
        let mut plan: Vec<Option<(Block, Option<Token>, bool)>> = Vec::with_capacity(ids.len());
        {
            let mut blocks = self.blocks.lock();
            for &id in ids {
                match blocks.get_mut(&id) {
                    Some((w, n, _)) if w.strong_count() > 0 => {
                        let b = w.upgrade().expect("counted");
                        if b.read().gone {
                            plan.push(None);
                            continue;
                        }
                        *n += 1;
                        // Another thread's lookup made it and has not had
                        // its answer yet: this handle must not show it empty.
                        let ask = b.read().revision == 0;
                        plan.push(Some((b, None, ask)));
                    }
                    _ => {
                        let b = Arc::new(RwLock::new(ClientProfile::unsaved(ProfileData::new(
                            TypeInfo::ietf(),
                        ))));
                        let t = self.new_token();
                        blocks.insert(id, (Arc::downgrade(&b), 1, t));
                        plan.push(Some((b, Some(t), true)));
                    }
                }
            }
        }
        // Handles first: if anything fails below, dropping them releases
        // their counts.
        let handles: Vec<Option<ProfileHandle>> = plan
            .iter()
            .zip(ids)
            .map(|(p, &id)| p.as_ref().map(|(b, ..)| self.handle(b.clone(), id)))
            .collect();
        let items: Vec<(u32, Option<Token>)> = plan
            .iter()
            .zip(ids)
            .filter_map(|(p, &id)| match p {
                Some((_, token, true)) => Some((id, *token)),
                _ => None,
            })
            .collect();
        if items.is_empty() {
            return Ok(handles);
        }
        let found = expect(
            self.conn.call(Request::LookupMany {
                registry: self.id,
                items,
            }),
            |r| match r {
                Reply::Found(f) => Some(f),
                _ => None,
            },
        )?;
        let mut found = found.into_iter();
        let mut out = Vec::with_capacity(handles.len());
        for (h, p) in handles.into_iter().zip(&plan) {
            match (h, p) {
                (Some(h), Some((b, _, true))) => match found.next().flatten() {
                    Some(snap) => {
                        b.write().refresh(&snap);
                        out.push(Some(h));
                    }
                    None => {
                        // Gone: mark it so, and let the handle's release
                        // undo what this call counted.
                        b.write().gone = true;
                        out.push(None);
                        drop(h);
                    }
                },
                (h, _) => out.push(h),
            }
        }
        Ok(out)
    }

    /// The last handle of `id` going away disables it for this registry and
    /// stops events for it (ref §2.7).
    fn release(&self, id: u32) {
        let mut blocks = self.blocks.lock();
        let Some((w, n, _)) = blocks.get_mut(&id) else {
            return;
        };
        *n -= 1;
        if *n > 0 {
            return;
        }
        let enabled = w.upgrade().is_some_and(|b| b.read().enabled);
        let (_, _, token) = blocks.remove(&id).expect("present");
        drop(blocks);
        if self.closed.load(Ordering::Acquire) {
            return;
        }
        self.conn.cast(Request::Unobserve {
            registry: self.id,
            id,
            token,
        });
        if enabled {
            self.conn.cast(Request::Disable {
                registry: self.id,
                id,
            });
        }
    }

    fn default_id(&self) -> Result<Option<u32>> {
        expect(self.conn.call(Request::DefaultId), |r| match r {
            Reply::DefaultId(d) => Some(d),
            _ => None,
        })
    }

    pub fn profile(self: &Arc<Self>, id: u32) -> Result<ProfileHandle> {
        self.check_open()?;
        if id == 0 {
            return Err(Error::Argument);
        }
        self.attach_id(id)
    }

    pub fn default_profile(self: &Arc<Self>) -> Result<ProfileHandle> {
        self.check_open()?;
        let id = self.default_id()?.ok_or(Error::NotFound)?;
        self.profile(id)
    }

    fn profiles_where(self: &Arc<Self>, filter: Filter) -> Result<Vec<ProfileHandle>> {
        self.check_open()?;
        let ids = expect(self.conn.call(Request::ListIds { filter }), |r| match r {
            Reply::Ids(ids) => Some(ids),
            _ => None,
        })?;
        // Those destroyed meanwhile are left out.
        Ok(self.attach_ids(&ids)?.into_iter().flatten().collect())
    }

    pub fn profiles(self: &Arc<Self>) -> Result<Vec<ProfileHandle>> {
        self.profiles_where(Filter::All)
    }

    pub fn profiles_by_type(self: &Arc<Self>, t: &TypeInfo) -> Result<Vec<ProfileHandle>> {
        self.profiles_where(Filter::Type(t.clone()))
    }

    /// Profiles whose AOR is URI-equal to `aor` (RFC 3261 §19.1.4).
    pub fn profiles_by_aor(self: &Arc<Self>, aor: &str) -> Result<Vec<ProfileHandle>> {
        crate::sip::uri::Uri::parse(aor).map_err(|_| Error::Argument)?;
        self.profiles_where(Filter::Aor(aor.to_owned()))
    }

    pub fn last_registration_error(self: &Arc<Self>, h: &ProfileHandle) -> Result<i32> {
        self.own(h)?;
        Ok(h.block.read().last_error)
    }

    fn state(r: Result<Reply>) -> Result<(RegistrationInfo, u64)> {
        expect(r, |r| match r {
            Reply::State { info, seq } => Some((info, seq)),
            _ => None,
        })
    }

    // ----- user registry (ref §2.5) -----

    /// Answered here, from what the server said of the profile's data
    /// (`Snapshot::enable_refusal`), and sent without waiting: 10,000
    /// enables cost 10,000 messages, not 10,000 round trips. The server's
    /// answer updates the handles when it arrives; the rare refusal the
    /// registry could not foresee (the profile destroyed by another process
    /// meanwhile) comes as an error callback, as a failed registration does.
    pub fn enable(self: &Arc<Self>, h: &ProfileHandle) -> Result<()> {
        self.own(h)?;
        let (id, mark) = {
            let mut b = h.block.write();
            if b.enabled {
                return Err(Error::Argument);
            }
            if b.data.id == 0 || b.gone || h.attached.load(Ordering::Acquire) == 0 {
                return Err(Error::NotFound);
            }
            if let Some(f) = &b.enable_refusal {
                let e = f.error();
                if !f.message.is_empty() {
                    crate::error::set_message(f.message.clone());
                }
                b.last_error = e.code();
                return Err(e);
            }
            b.last_error = 0;
            b.enabled = true;
            if b.info.status == Status::Unregistered {
                b.info.status = Status::RegistrationInProgress;
            }
            b.enable_mark = self.next_token.fetch_add(1, Ordering::Relaxed);
            (b.data.id, b.enable_mark)
        };
        let block = Arc::downgrade(&h.block);
        let me = Arc::downgrade(self);
        let sent = self.conn.call_then(
            Request::Enable {
                registry: self.id,
                id,
            },
            move |outcome| {
                let (Some(b), Some(me)) = (block.upgrade(), me.upgrade()) else {
                    return;
                };
                match outcome {
                    Ok(Reply::State { info, seq }) => {
                        let mut b = b.write();
                        b.set_enabled(true, seq);
                        b.set_info(info, seq);
                    }
                    Ok(_) => log::error("the profile server answered enable with the wrong reply"),
                    // Enabled already: a new server's restore got there first.
                    Err(f) if f.error() == Error::AlreadyExists => {}
                    Err(f) => {
                        if !b.write().undo_enable(mark, f.code) {
                            return;
                        }
                        log::warn(&format!("profile {id}: enable refused: {}", f.message));
                        if let Some(m) = &me.mailbox {
                            m.push(Delivery::Error {
                                id,
                                code: f.code,
                                snapshot: None,
                            });
                        }
                    }
                }
            },
        );
        if let Err(e) = sent {
            h.block.write().undo_enable(mark, e.code());
            return Err(e);
        }
        Ok(())
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
        let (info, seq) = Self::state(self.conn.call(Request::Disable {
            registry: self.id,
            id,
        }))?;
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
        self.conn
            .call(Request::RefreshEnable {
                registry: self.id,
                id,
            })
            .map(|_| ())
    }

    pub fn force_disable(self: &Arc<Self>, h: &ProfileHandle) -> Result<()> {
        self.own(h)?;
        let id = h.block.read().data.id;
        let (info, seq) = Self::state(self.conn.call(Request::ForceDisable { id }))?;
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
        self.save_all(std::slice::from_ref(&h))
    }

    /// Saves every handle's profile in one durable transaction, all or
    /// nothing (`sip_managed_profile_registry_save_all`).
    pub fn save_all(self: &Arc<Self>, handles: &[&ProfileHandle]) -> Result<()> {
        let mut items = Vec::with_capacity(handles.len());
        for h in handles {
            self.own(h)?;
            let mut b = h.block.write();
            b.last_error = 0;
            items.push(SaveItem {
                token: self.new_token(),
                make_default: b.data.make_default,
                data: b.data.clone(),
            });
        }
        let tokens: Vec<Token> = items.iter().map(|i| i.token).collect();
        let request = if items.len() == 1 {
            Request::Save {
                registry: self.id,
                item: Box::new(items.pop().expect("one")),
            }
        } else {
            Request::SaveAll {
                registry: self.id,
                items,
            }
        };
        // Each handle's block, and its token if the profile is new. The
        // reader applies the answer to them before it reads on: the events
        // of a new profile (a REGISTERED of an auto-registration profile
        // can follow the save at once) find its block in the map.
        let targets: Vec<(Block, Option<Token>)> = handles
            .iter()
            .zip(&tokens)
            .map(|(h, t)| {
                let new = h.attached.load(Ordering::Acquire) == 0;
                (h.block.clone(), new.then_some(*t))
            })
            .collect();
        let me = Arc::downgrade(self);
        let reply = self.conn.call_applying(request, move |outcome| {
            let snaps: &[Arc<Snapshot>] = match outcome {
                Ok(Reply::Snapshot(s)) => std::slice::from_ref(s),
                Ok(Reply::Snapshots(v)) => v,
                _ => return,
            };
            let Some(me) = me.upgrade() else {
                return;
            };
            for ((block, token), snap) in targets.iter().zip(snaps) {
                block.write().refresh(snap);
                if let Some(token) = token {
                    // The handle now belongs to the registry's block map
                    // (ref §2.6); the server made it observe with `token`.
                    let id = snap.data().map_or(0, |d| d.id);
                    me.blocks
                        .lock()
                        .insert(id, (Arc::downgrade(block), 1, *token));
                }
            }
        });
        let snaps = expect(reply, |r| match r {
            Reply::Snapshot(s) => Some(vec![s]),
            Reply::Snapshots(v) => Some(v),
            _ => None,
        })?;
        for (h, snap) in handles.iter().zip(&snaps) {
            if h.attached.load(Ordering::Acquire) == 0 {
                let id = snap.data().map_or(0, |d| d.id);
                h.attached.store(id, Ordering::Release);
            }
        }
        Ok(())
    }

    /// Every stored profile with its passwords, for `sipprofile export
    /// --with-passwords` (managed registries only; never in the C API).
    pub fn export_with_passwords(self: &Arc<Self>) -> Result<Vec<ProfileData>> {
        self.check_open()?;
        if !self.managed {
            return Err(Error::AccessDenied);
        }
        expect(self.conn.call(Request::ExportWithPasswords), |r| match r {
            Reply::Profiles(p) => Some(p),
            _ => None,
        })
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
        self.conn.call(Request::Destroy { id }).map(|_| ())
    }

    pub fn is_in_use(self: &Arc<Self>, h: &ProfileHandle) -> Result<bool> {
        self.own(h)?;
        let id = h.block.read().data.id;
        if id == 0 {
            return Err(Error::NotFound);
        }
        expect(self.conn.call(Request::IsInUse { id }), |r| match r {
            Reply::InUse(b) => Some(b),
            _ => None,
        })
    }

    /// The server sent an event: the handles of this registry show it at
    /// once, and the observer (if any) is called later on a library thread
    /// or in `dispatch`. Ref §5.2: only ids this registry holds, and CREATED.
    pub(crate) fn on_event(&self, d: Delivery) {
        if self.closed.load(Ordering::Acquire) {
            return;
        }
        match self.block_of(d.profile_id()) {
            Some(b) => apply(&mut b.write(), &d),
            None if matches!(
                d,
                Delivery::Event {
                    event: Event::Created,
                    ..
                }
            ) => {}
            None => return,
        }
        if let Some(m) = &self.mailbox {
            m.push(d);
        }
    }

    /// One event for the observer, on the thread delivering it: called with
    /// no lock held. False once the registry is gone (freed, or freed by
    /// this very callback): nothing more for it.
    pub(crate) fn deliver(self: &Arc<Self>, d: Delivery, observer: &dyn Observer) -> bool {
        if self.closed.load(Ordering::Acquire) {
            return false;
        }
        let id = d.profile_id();
        let outer = IN_CALLBACK.with(|c| c.replace(Arc::as_ptr(self) as usize));
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match d {
            Delivery::Event {
                id,
                event,
                published_ns,
                ..
            } => observer.event_at(id, event, published_ns),
            Delivery::Error { id, code, .. } => observer.error(id, code),
        }));
        IN_CALLBACK.with(|c| c.set(outer));
        if r.is_err() {
            log::error(&format!("observer for profile {id} panicked"));
        }
        if self.close_deferred.load(Ordering::Acquire) {
            // Freed inside its own callback: finish here, after it returned.
            self.finish_close();
            return false;
        }
        true
    }

    // ----- when the server dies (`connection.rs`) -----

    /// The blocks some handle still uses, with their ids.
    fn live_blocks(&self) -> Vec<(u32, Block)> {
        self.blocks
            .lock()
            .iter()
            .filter_map(|(id, (w, ..))| w.upgrade().map(|b| (*id, b)))
            .collect()
    }

    /// Every handle of a registered profile goes unregistered; the observer
    /// hears DEREGISTERED.
    pub(crate) fn server_lost(&self) {
        let blocks = self.live_blocks();
        for (id, b) in blocks {
            let was = {
                let mut c = b.write();
                let was = c.info.status;
                c.info = RegistrationInfo::default();
                // The new server numbers from scratch.
                c.seq = 0;
                c.enabled_seq = 0;
                c.revision = 0;
                was
            };
            if was == Status::Registered
                && let Some(m) = &self.mailbox
            {
                m.push(Delivery::Event {
                    id,
                    event: Event::Deregistered,
                    snapshot: None,
                    published_ns: crate::protocol::monotonic_ns(),
                });
            }
        }
    }

    /// With a new server: opens this registry there again, observes its
    /// profiles again and enables again what it had enabled.
    pub(crate) fn restore(&self, call: &dyn Fn(Request) -> Result<Reply>) {
        if self.closed.load(Ordering::Acquire) {
            return;
        }
        if call(self.open_request()).is_err() {
            return;
        }
        let blocks: Vec<(u32, Block, Token)> = self
            .blocks
            .lock()
            .iter()
            .filter_map(|(id, (w, _, t))| w.upgrade().map(|b| (*id, b, *t)))
            .collect();
        for (id, b, token) in blocks {
            if let Ok(Reply::Snapshot(s)) = call(Request::Lookup {
                registry: self.id,
                id,
                token: Some(token),
            }) {
                b.write().refresh(&s);
            }
            if b.read().enabled {
                match call(Request::Enable {
                    registry: self.id,
                    id,
                }) {
                    Ok(Reply::State { info, seq }) => b.write().set_info(info, seq),
                    _ => log::warn(&format!("profile {id}: not enabled again")),
                }
            }
        }
    }

    /// No server could be started: every enabled profile's registration is
    /// over (ref §5.7), with SIP_ERR_SERVER_TERMINATED.
    pub(crate) fn server_terminated(&self) {
        let blocks = self.live_blocks();
        for (id, b) in blocks {
            let enabled = {
                let mut c = b.write();
                let e = c.enabled;
                c.enabled = false;
                if e {
                    c.last_error = Error::ServerTerminated.code();
                }
                e
            };
            if enabled && let Some(m) = &self.mailbox {
                m.push(Delivery::Error {
                    id,
                    code: Error::ServerTerminated.code(),
                    snapshot: None,
                });
            }
        }
    }
}

#[cfg(test)]
impl Registry {
    /// How many delivery threads its connection runs.
    pub(crate) fn delivery_threads(&self) -> usize {
        self.conn.delivery_threads()
    }

    /// Callbacks waiting in its mailbox.
    pub(crate) fn waiting_callbacks(&self) -> usize {
        self.mailbox.as_ref().map_or(0, |m| m.waiting())
    }
}

#[cfg(test)]
pub(crate) mod tests {
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

    /// A registry whose server this test process hosts (unit tests run
    /// without the server executable).
    pub(crate) fn open(
        store: &Path,
        managed: bool,
        observer: Option<Box<dyn Observer>>,
    ) -> Arc<Registry> {
        let flags = Flags {
            hosting: Some(Hosting::InProcess),
            ..Flags::default()
        };
        Registry::open_with(Some(store), managed, observer, flags).unwrap()
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
        let m = open(&store, true, None);
        let u = open(&store, false, None);
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
            // No waiting: the server queued u's UPDATED before the save's
            // answer on the one connection of this process, and the reader
            // applied it before handing the answer over.
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
            enable_refusal: None,
        })
    }

    #[test]
    fn the_newest_registration_state_wins_whichever_arrives_first() {
        let now = 0;
        // REGISTERED (seq 7) applied before the state `enable` returned
        // (seq 6): still registered, and enabled.
        let mut c = client();
        apply(
            &mut c,
            &Delivery::Event {
                id: 1,
                event: Event::Registered,
                snapshot: Some(state(Status::Registered, 7)),
                published_ns: now,
            },
        );
        let in_progress = state(Status::RegistrationInProgress, 6).info.clone();
        c.set_enabled(true, 6);
        c.set_info(in_progress, 6);
        assert_eq!(c.info.status, Status::Registered);
        assert!(c.enabled);
        // An error older than the enable (queued before it) changes nothing.
        apply(
            &mut c,
            &Delivery::Error {
                id: 1,
                code: 403,
                snapshot: Some(state(Status::Unregistered, 5)),
            },
        );
        assert!(c.enabled);
        assert_eq!((c.info.status, c.last_error), (Status::Registered, 0));
        // A newer one does.
        apply(
            &mut c,
            &Delivery::Error {
                id: 1,
                code: 403,
                snapshot: Some(state(Status::Unregistered, 8)),
            },
        );
        assert!(!c.enabled);
        assert_eq!((c.info.status, c.last_error), (Status::Unregistered, 403));
        // FORCIBLY_DISABLED older than a new enable leaves it enabled.
        c.set_enabled(true, 10);
        apply(
            &mut c,
            &Delivery::Event {
                id: 1,
                event: Event::ForciblyDisabled,
                snapshot: Some(state(Status::Unregistered, 9)),
                published_ns: now,
            },
        );
        assert!(c.enabled);
    }

    #[test]
    fn a_stale_release_does_not_stop_the_events_of_the_block_that_replaced_it() {
        let (m, u, h, id) = two_registries_one_profile("release");
        // The interleaving of a release with a new lookup of the same id:
        // the new block's lookup reaches the server before the old block's
        // release does.
        let held = u.profile(id).unwrap();
        let token = u.blocks.lock()[&id].2;
        let stale = Request::Unobserve {
            registry: u.id,
            id,
            token: token - 1,
        };
        u.conn.call(stale).unwrap();
        rename(&m, &h, "after");
        assert_eq!(provider(&held), "after");
        // The release of the current block does stop them.
        u.conn
            .call(Request::Unobserve {
                registry: u.id,
                id,
                token,
            })
            .unwrap();
        rename(&m, &h, "unseen");
        assert_eq!(provider(&held), "after");
        drop((held, h));
        u.close();
        m.close();
    }

    #[test]
    fn a_lookup_of_a_destroyed_profile_leaves_no_block() {
        let (m, u, h, id) = two_registries_one_profile("gone");
        m.destroy(&h).unwrap();
        assert_eq!(u.profile(id).err(), Some(Error::NotFound));
        assert!(u.blocks.lock().is_empty());
        drop(h);
        u.close();
        m.close();
    }

    #[test]
    fn enable_is_answered_in_the_registry_when_the_server_said_the_data_cannot_register() {
        // saved_profile has an AOR and no registrar.
        let (m, u, h, id) = two_registries_one_profile("refused-here");
        let held = u.profile(id).unwrap();
        assert!(held.block.read().enable_refusal.is_some());
        crate::error::clear_message();
        assert_eq!(u.enable(&held), Err(Error::Argument));
        assert!(crate::error::message().contains("registrar"));
        assert!(!u.is_enabled(&held));
        assert_eq!(u.last_registration_error(&held), Ok(Error::Argument.code()));
        assert_eq!(held.status(), Status::Unregistered);
        drop((held, h));
        u.close();
        m.close();
    }

    struct Errors(Mutex<std::sync::mpsc::Sender<(u32, i32)>>);
    impl Observer for Errors {
        fn event(&self, _: u32, _: Event) {}
        fn error(&self, id: u32, code: i32) {
            let _ = self.0.lock().send((id, code));
        }
    }

    #[test]
    fn a_refusal_the_registry_could_not_foresee_comes_as_an_error_callback() {
        let store = tmp_store("refused-there");
        let m = open(&store, true, None);
        let (h, id) = saved_profile(&m);
        let (tx, rx) = std::sync::mpsc::channel();
        let u = open(&store, false, Some(Box::new(Errors(Mutex::new(tx)))));
        let held = u.profile(id).unwrap();
        // As if the registry's copy predated what the server now refuses.
        held.block.write().enable_refusal = None;
        assert_eq!(u.enable(&held), Ok(()));
        assert_eq!(
            rx.recv_timeout(std::time::Duration::from_secs(10)),
            Ok((id, Error::Argument.code()))
        );
        assert!(!u.is_enabled(&held));
        assert_eq!(u.last_registration_error(&held), Ok(Error::Argument.code()));
        assert_eq!(held.status(), Status::Unregistered);
        // The server counts no use of it.
        assert_eq!(m.is_in_use(&h), Ok(false));
        drop((held, h));
        u.close();
        m.close();
    }
}
