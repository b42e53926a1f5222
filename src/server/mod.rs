//! The profile server: one per store, shared by every registry of that store
//! in the process. It holds every profile, who observes and who uses (has
//! enabled) each one, applies the enable/disable reference counting of
//! ref §5.3, drives the SIP engine and routes events (ref §5.2).
//!
//! Locking: one mutex (`state`) guards everything; it is never held while
//! user code runs (observers run from mailboxes, on the engine's thread
//! between its steps or on the delivery threads) nor while waiting for the
//! engine. Lock order: a registry's block map,
//! then `state`, then one handle block (written here for registries without
//! observer, see `Sink::Handles`).

mod delivery;
pub mod events;
pub mod registry;

use crate::profile::keys;
use crate::profile::{ProfileData, RegistrationInfo, Status};
use crate::sip::engine::{Command, Engine, Reporter};
use crate::sip::registration::{Credentials, RegConfig, Report};
use crate::sip::transport::Transport;
use crate::sip::uri::Uri;
use crate::store::Store;
use crate::{Error, Result, log};
use events::{Delivery, Event, Snapshot};
use parking_lot::Mutex;
use registry::{BlockRef, Sink};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

pub use registry::{ClientProfile, ProfileHandle, Registry};

/// How long stopping the server waits for un-REGISTERs to be answered.
pub const SHUTDOWN_WAIT: Duration = Duration::from_secs(4);

struct Entry {
    data: ProfileData,
    info: RegistrationInfo,
    /// Registries that enabled it (ref §5.3 "users").
    users: HashSet<u64>,
    /// Registries holding at least one handle (ref §5.2 "observers"), with
    /// the data block their handles share.
    observers: HashMap<u64, BlockRef>,
    /// The engine is running a registration for it.
    in_engine: bool,
    /// The engine was asked to register again once the current binding is
    /// gone: it stays the engine's through the Unregistered in between.
    restart_pending: bool,
    /// Bumped by every save: a registry applies event data only when newer
    /// than what its handles hold, so a late event never overwrites newer
    /// data (e.g. edits made after one's own save).
    revision: u64,
}

impl Entry {
    /// A profile just loaded or added: unregistered, unused, unobserved.
    fn new(data: ProfileData) -> Entry {
        Entry {
            data,
            info: RegistrationInfo::default(),
            users: HashSet::new(),
            observers: HashMap::new(),
            in_engine: false,
            restart_pending: false,
            revision: 1,
        }
    }

    /// Referred: used by someone or auto-registered (ref §5.3).
    fn referred(&self) -> bool {
        !self.users.is_empty() || self.data.auto_registration
    }
}

struct State {
    store: Store,
    profiles: BTreeMap<u32, Entry>,
    registries: HashMap<u64, Sink>,
    default_id: Option<u32>,
    next_registry: u64,
    /// Numbers every snapshot and every registration state handed to a
    /// registry, in lock order: an event queued in a mailbox and the
    /// state an `enable` returned are applied newest-wins, whichever
    /// arrives first.
    seq: AtomicU64,
}

impl State {
    fn next_seq(&self) -> u64 {
        // Always under the state lock: the order is the lock's order.
        self.seq.fetch_add(1, Ordering::Relaxed) + 1
    }
}

pub struct Server {
    path: PathBuf,
    state: Mutex<State>,
    engine: Mutex<Option<Engine>>,
    /// The threads that call observers; started with the first observing
    /// registry.
    delivery: Mutex<Option<Arc<delivery::Pool>>>,
}

fn servers() -> &'static Mutex<HashMap<PathBuf, Arc<Server>>> {
    static S: OnceLock<Mutex<HashMap<PathBuf, Arc<Server>>>> = OnceLock::new();
    S.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Same file, same server, however the path was spelled.
fn canonical(path: &Path) -> PathBuf {
    match (path.parent(), path.file_name()) {
        (Some(dir), Some(name)) if !dir.as_os_str().is_empty() => {
            let _ = std::fs::create_dir_all(dir);
            dir.canonicalize()
                .map(|d| d.join(name))
                .unwrap_or_else(|_| path.to_owned())
        }
        _ => std::env::current_dir()
            .map(|d| d.join(path))
            .unwrap_or_else(|_| path.to_owned()),
    }
}

struct EngineReporter(Weak<Server>);

impl Reporter for EngineReporter {
    fn report(&self, profile_id: u32, context_id: u32, report: Report) {
        if let Some(server) = self.0.upgrade() {
            server.on_report(profile_id, context_id, report);
        }
    }

    /// The step's events are delivered on the engine's thread once the step
    /// is over: no delivery thread is woken for them.
    fn run_step(&self, step: &mut dyn FnMut() -> bool) -> bool {
        delivery::run_deferring(step)
    }
}

impl Server {
    /// Joins the server of `path`, starting it if this is the first registry.
    /// Returns the server and the new registry's id.
    pub(crate) fn attach(path: &Path, sink: Sink) -> Result<(Arc<Server>, u64)> {
        let key = canonical(path);
        let mut all = servers().lock();
        let server = match all.get(&key) {
            Some(s) => s.clone(),
            None => {
                let s = Server::start(&key)?;
                all.insert(key, s.clone());
                s
            }
        };
        let id = {
            let mut st = server.state.lock();
            st.next_registry += 1;
            let id = st.next_registry;
            st.registries.insert(id, sink);
            id
        };
        Ok((server, id))
    }

    fn start(path: &Path) -> Result<Arc<Server>> {
        let store = Store::open(path)?;
        let loaded = store.load_all()?;
        let default_id = store.default_id()?;
        let mut profiles = BTreeMap::new();
        for data in loaded {
            profiles.insert(data.id, Entry::new(data));
        }
        let server = Arc::new(Server {
            path: path.to_owned(),
            state: Mutex::new(State {
                store,
                profiles,
                registries: HashMap::new(),
                default_id,
                next_registry: 0,
                seq: AtomicU64::new(0),
            }),
            engine: Mutex::new(None),
            delivery: Mutex::new(None),
        });
        let engine = Engine::start(Arc::new(EngineReporter(Arc::downgrade(&server))))
            .map_err(|_| Error::General)?;
        *server.engine.lock() = Some(engine);
        // Auto-registration at start (ref §5.4).
        let mut st = server.state.lock();
        let ids: Vec<u32> = st
            .profiles
            .values()
            .filter(|e| e.data.auto_registration)
            .map(|e| e.data.id)
            .collect();
        for id in ids {
            if let Err(e) = server.start_registration(&mut st, id) {
                log::warn(&format!("profile {id}: auto-registration not started: {e}"));
            }
        }
        drop(st);
        log::info(&format!("profile server started for {}", path.display()));
        Ok(server)
    }

    /// A registry is gone: it stops using and observing everything; the
    /// last one stops the server (de-register, bounded wait, join).
    pub(crate) fn detach(self: &Arc<Server>, registry: u64) {
        let mut all = servers().lock();
        let last = {
            let mut st = self.state.lock();
            st.registries.remove(&registry);
            let ids: Vec<u32> = st.profiles.keys().copied().collect();
            for id in ids {
                let e = st.profiles.get_mut(&id).expect("listed");
                e.observers.remove(&registry);
                if e.users.remove(&registry) {
                    self.stop_if_unreferred(&mut st, id);
                }
            }
            st.registries.is_empty()
        };
        if last {
            all.remove(&canonical(&self.path));
            drop(all);
            let engine = self.engine.lock().take();
            if let Some(engine) = engine {
                engine.shutdown(SHUTDOWN_WAIT);
            }
            let pool = self.delivery.lock().take();
            if let Some(pool) = pool {
                pool.stop();
            }
            log::info(&format!(
                "profile server stopped for {}",
                self.path.display()
            ));
        }
    }

    /// The delivery threads, started on first use.
    pub(crate) fn delivery_pool(&self) -> Result<Arc<delivery::Pool>> {
        let mut pool = self.delivery.lock();
        if let Some(p) = pool.as_ref() {
            return Ok(p.clone());
        }
        let p = delivery::Pool::start().map_err(|_| Error::NoMemory)?;
        if let Some(engine) = self.engine.lock().as_ref() {
            p.set_hand_off(Box::new(engine.hand_off()));
        }
        *pool = Some(p.clone());
        Ok(p)
    }

    /// How many delivery threads run (only observing registries start them).
    #[cfg(test)]
    pub(crate) fn delivery_threads(&self) -> usize {
        self.delivery
            .lock()
            .as_ref()
            .map_or(0, |p| p.live_threads())
    }

    fn send(&self, cmd: Command) {
        if log::enabled(log::DEBUG) {
            // The kind and id only: a configuration carries passwords.
            let (kind, id) = match &cmd {
                Command::Register(id, _) => ("register", *id),
                Command::Update(id, _) => ("update", *id),
                Command::Unregister(id) => ("unregister", *id),
                Command::Forget(id) => ("forget", *id),
                Command::RetryNow(id) => ("retry now", *id),
                Command::Shutdown(_) => ("shut down", 0),
            };
            log::debug(&format!("profile {id}: to the engine: {kind}"));
        }
        if let Some(e) = self.engine.lock().as_ref() {
            e.send(cmd);
        }
    }

    fn snapshot(st: &State, id: u32) -> Option<Arc<Snapshot>> {
        Self::snapshot_with(st, id, true)
    }

    fn snapshot_with(st: &State, id: u32, with_data: bool) -> Option<Arc<Snapshot>> {
        st.profiles.get(&id).map(|e| {
            Arc::new(Snapshot {
                seq: st.next_seq(),
                data: with_data.then(|| e.data.without_passwords()),
                revision: e.revision,
                info: e.info.clone(),
                is_default: st.default_id == Some(id),
            })
        })
    }

    /// Sends to the profile's observers (or to every registry for CREATED).
    /// `with_data`: the event changed the stored data (UPDATED), so the
    /// receiving handles need it; other events carry the registration only.
    fn route(
        st: &State,
        id: u32,
        with_data: bool,
        what: impl Fn(Option<Arc<Snapshot>>) -> Delivery,
    ) {
        let snap = Self::snapshot_with(st, id, with_data);
        let d = what(snap);
        let Some(e) = st.profiles.get(&id) else {
            return;
        };
        if matches!(d, Delivery::Event(_, Event::Created, ..)) {
            // Nobody holds a block of a new profile: only observers hear it.
            for sink in st.registries.values() {
                if let Sink::Mailbox(m) = sink {
                    m.push(d.clone());
                }
            }
        } else {
            for (r, block) in &e.observers {
                if let Some(sink) = st.registries.get(r) {
                    sink.deliver(block, &d);
                }
            }
        }
    }

    fn event(st: &State, id: u32, ev: Event) {
        let now = Instant::now();
        Self::route(st, id, ev == Event::Updated, |s| {
            Delivery::Event(id, ev, s, now)
        });
    }

    fn registration_config(data: &ProfileData) -> Result<RegConfig> {
        data.check_registrable()?;
        let registrar = Uri::parse(&data.registrar.address).map_err(|_| Error::Argument)?;
        let proxy = match data.proxy.address.as_str() {
            "" => None,
            // ims: a dynamic proxy (ref §5.10) has no meaning here; no proxy.
            a if a.eq_ignore_ascii_case("sip:0.0.0.0") => None,
            a => Some(Uri::parse(a).map_err(|_| Error::Argument)?),
        };
        let hop = proxy.as_ref().unwrap_or(&registrar);
        let transport = Transport::for_next_hop(hop).map_err(|_| Error::NotSupported)?;
        let interface = crate::sip::transport::interface_name(
            data.ext_str
                .get(&keys::ACCESS_POINT_NAME)
                .map(String::as_str),
            data.access_point_id,
        )
        .map_err(|_| Error::Argument)?;
        if data.sig_comp {
            log::warn(&format!(
                "profile {}: SigComp is not implemented; registering uncompressed",
                data.id
            ));
        }
        let mut registrar_creds = Credentials {
            user: data.registrar.user.clone(),
            realm: data.registrar.realm.clone(),
            password: data.registrar.password.clone(),
        };
        if data.type_info.is_ims() && registrar_creds.user.is_empty() {
            registrar_creds.user.clone_from(&data.private_identity);
        }
        Ok(RegConfig {
            aor: data.aor.clone(),
            registrar,
            proxy,
            contact_user: data.contact_user.clone(),
            contact_params: data.contact_params.clone(),
            headers: data.headers.clone(),
            expires: data.registration_expires(),
            registrar_creds,
            proxy_creds: Credentials {
                user: data.proxy.user.clone(),
                realm: data.proxy.realm.clone(),
                password: data.proxy.password.clone(),
            },
            retry_base: data.retry_base_seconds(),
            retry_max: data.retry_max_seconds(),
            instance_id: data.ext_str.get(&keys::INSTANCE_ID).cloned(),
            ims: data.type_info.is_ims(),
            transport,
            tls_ca_file: data.ext_str.get(&keys::TLS_CA_FILE).map(PathBuf::from),
            interface,
        })
    }

    /// Hands a registration to the engine (or a fresh one with new data).
    fn start_registration(&self, st: &mut State, id: u32) -> Result<()> {
        let e = st.profiles.get_mut(&id).ok_or(Error::NotFound)?;
        let cfg = Self::registration_config(&e.data)?;
        e.restart_pending = e.in_engine;
        e.in_engine = true;
        if e.info.status == Status::Unregistered {
            e.info.status = Status::RegistrationInProgress;
        }
        self.send(Command::Register(id, Box::new(cfg)));
        Ok(())
    }

    fn stop_if_unreferred(&self, st: &mut State, id: u32) {
        let Some(e) = st.profiles.get_mut(&id) else {
            return;
        };
        if !e.referred() && e.in_engine {
            self.send(Command::Unregister(id));
        }
    }

    // ----- called by the engine thread -----

    fn on_report(&self, id: u32, context_id: u32, report: Report) {
        if log::enabled(log::DEBUG) {
            log::debug(&format!("profile {id}: from the engine: {report:?}"));
        }
        let mut st = self.state.lock();
        let Some(e) = st.profiles.get_mut(&id) else {
            return;
        };
        let before = e.info.status;
        match report {
            Report::Registering => {
                // Also after the engine re-registers by itself (pending data).
                e.in_engine = true;
                e.restart_pending = false;
                e.info.status = Status::RegistrationInProgress;
            }
            Report::Registered(g) | Report::Refreshed(g) => {
                e.info.status = Status::Registered;
                e.info.granted_expires = g.expires;
                e.info.registered_contact = g.contact;
                e.info.registered_aors = g.aors;
                e.info.service_route = g.service_route;
                e.info.pub_gruu = g.pub_gruu;
                e.info.temp_gruu = g.temp_gruu;
                e.info.context_id = context_id;
                e.info.last_error = 0;
                if before != Status::Registered {
                    log::info(&format!("profile {id} registered"));
                    Self::event(&st, id, Event::Registered);
                }
            }
            Report::Unregistering => {
                e.info.status = Status::UnregistrationInProgress;
            }
            Report::Unregistered => {
                e.info = RegistrationInfo {
                    last_error: e.info.last_error,
                    ..RegistrationInfo::default()
                };
                // A disable arriving before the restart's Registering report
                // must still reach the engine.
                e.in_engine = e.restart_pending;
                e.restart_pending = false;
                if before != Status::Unregistered {
                    log::info(&format!("profile {id} deregistered"));
                    Self::event(&st, id, Event::Deregistered);
                }
            }
            Report::Disconnected => {
                e.info = RegistrationInfo {
                    status: Status::RegistrationInProgress,
                    last_error: Error::Disconnected.code(),
                    ..RegistrationInfo::default()
                };
                log::info(&format!("profile {id} lost its registration; retrying"));
                Self::event(&st, id, Event::Deregistered);
            }
            Report::Failed(code) => {
                // Registration-phase error (ref §5.7): unregistered, every
                // user removed, last error set, error to every observer.
                e.info = RegistrationInfo {
                    last_error: code,
                    ..RegistrationInfo::default()
                };
                e.users.clear();
                e.in_engine = false;
                e.restart_pending = false;
                log::info(&format!("profile {id} registration failed: {code}"));
                Self::route(&st, id, false, |s| Delivery::Error(id, code, s));
            }
        }
    }

    // ----- called by registries -----

    pub(crate) fn profile(&self, id: u32) -> Result<Arc<Snapshot>> {
        let st = self.state.lock();
        Self::snapshot(&st, id).ok_or(Error::NotFound)
    }

    pub(crate) fn all_ids(&self) -> Vec<u32> {
        self.state.lock().profiles.keys().copied().collect()
    }

    pub(crate) fn default_id(&self) -> Option<u32> {
        self.state.lock().default_id
    }

    /// `registry`'s handles of `id` now share `block`, made from a snapshot
    /// of data `revision`. Returns the profile as of now (its data only if
    /// newer than `revision`): whatever happened between that snapshot and
    /// this call reached no block, so the block catches up from this one,
    /// and every later change reaches it as an event. `None` if `id` is gone.
    pub(crate) fn observe(
        &self,
        registry: u64,
        id: u32,
        block: &BlockRef,
        revision: u64,
    ) -> Option<Arc<Snapshot>> {
        let mut st = self.state.lock();
        let e = st.profiles.get_mut(&id)?;
        e.observers.insert(registry, block.clone());
        let with_data = e.revision != revision;
        Self::snapshot_with(&st, id, with_data)
    }

    /// `block` is gone from `registry`. A block that replaced it in between
    /// keeps its events.
    pub(crate) fn unobserve(&self, registry: u64, id: u32, block: &BlockRef) {
        let mut st = self.state.lock();
        if let Some(e) = st.profiles.get_mut(&id) {
            if e.observers.get(&registry).is_some_and(|b| b.ptr_eq(block)) {
                e.observers.remove(&registry);
            }
        }
    }

    /// Returns the registration state and its `seq` (as `disable` and
    /// `force_disable` do).
    pub(crate) fn enable(&self, registry: u64, id: u32) -> Result<(RegistrationInfo, u64)> {
        let mut st = self.state.lock();
        let e = st.profiles.get_mut(&id).ok_or(Error::NotFound)?;
        if e.users.contains(&registry) {
            return Err(Error::AlreadyExists);
        }
        let cfg = Self::registration_config(&e.data)?;
        e.users.insert(registry);
        match e.info.status {
            Status::Unregistered | Status::UnregistrationInProgress => {
                e.restart_pending = e.in_engine;
                e.in_engine = true;
                if e.info.status == Status::Unregistered {
                    e.info.status = Status::RegistrationInProgress;
                }
                e.info.last_error = 0;
                self.send(Command::Register(id, Box::new(cfg)));
            }
            Status::RegistrationInProgress => self.send(Command::RetryNow(id)),
            Status::Registered => {}
        }
        let info = e.info.clone();
        Ok((info, st.next_seq()))
    }

    pub(crate) fn disable(&self, registry: u64, id: u32) -> Result<(RegistrationInfo, u64)> {
        let mut st = self.state.lock();
        let e = st.profiles.get_mut(&id).ok_or(Error::NotFound)?;
        e.users.remove(&registry);
        self.stop_if_unreferred(&mut st, id);
        Ok((st.profiles[&id].info.clone(), st.next_seq()))
    }

    pub(crate) fn is_in_use(&self, id: u32) -> Result<bool> {
        let st = self.state.lock();
        let e = st.profiles.get(&id).ok_or(Error::NotFound)?;
        Ok(!e.users.is_empty())
    }

    pub(crate) fn refresh_enable(&self, registry: u64, id: u32) -> Result<()> {
        let st = self.state.lock();
        let e = st.profiles.get(&id).ok_or(Error::NotFound)?;
        if !e.users.contains(&registry) {
            return Err(Error::Argument);
        }
        self.send(Command::RetryNow(id));
        Ok(())
    }

    /// Contract §7.3: straight to Unregistered, every user removed, no
    /// un-REGISTER sent, FORCIBLY_DISABLED to observers.
    pub(crate) fn force_disable(&self, id: u32) -> Result<(RegistrationInfo, u64)> {
        let mut st = self.state.lock();
        let e = st.profiles.get_mut(&id).ok_or(Error::NotFound)?;
        if e.info.status == Status::Unregistered && !e.in_engine {
            let info = e.info.clone();
            return Ok((info, st.next_seq()));
        }
        e.users.clear();
        e.in_engine = false;
        e.restart_pending = false;
        e.info = RegistrationInfo::default();
        self.send(Command::Forget(id));
        Self::event(&st, id, Event::ForciblyDisabled);
        Ok((RegistrationInfo::default(), st.next_seq()))
    }

    /// Adds (id 0) or updates a profile; returns the stored copy (ref §5.5).
    pub(crate) fn save(&self, mut data: ProfileData) -> Result<Arc<Snapshot>> {
        if !data.type_info.is_supported() {
            return Err(Error::NotFound);
        }
        Self::validate(&data)?;
        // Ref §4.5: an absent bearer type is stored as 0.
        data.ext_u32.entry(keys::BEARER_TYPE).or_insert(0);
        let mut st = self.state.lock();
        if data.id == 0 {
            data.ext_str
                .entry(keys::INSTANCE_ID)
                .or_insert_with(crate::random::uuid_urn);
            let id = st.store.add(&data)?;
            data.id = id;
            if st.default_id.is_none() || data.make_default {
                st.default_id = Some(id);
            }
            data.make_default = false;
            let auto = data.auto_registration;
            st.profiles.insert(id, Entry::new(data));
            Self::event(&st, id, Event::Created);
            if auto {
                if let Err(e) = self.start_registration(&mut st, id) {
                    log::warn(&format!("profile {id}: auto-registration not started: {e}"));
                }
            }
            return Self::snapshot(&st, id).ok_or(Error::General);
        }
        let id = data.id;
        let stored = st.profiles.get(&id).ok_or(Error::NotFound)?.data.clone();
        data.keep_passwords_from(&stored);
        if let Some(i) = stored.ext_str.get(&keys::INSTANCE_ID) {
            data.ext_str
                .entry(keys::INSTANCE_ID)
                .or_insert_with(|| i.clone());
        }
        let make_default = data.make_default && st.default_id != Some(id);
        data.make_default = make_default;
        let changed = data != stored || make_default;
        if !changed {
            // Contract §7.4: nothing to write, nothing to redo.
            return Self::snapshot(&st, id).ok_or(Error::General);
        }
        st.store.update(&data)?;
        if make_default {
            st.default_id = Some(id);
        }
        data.make_default = false;
        let registration_changed =
            Self::registration_relevant(&stored) != Self::registration_relevant(&data);
        let e = st.profiles.get_mut(&id).expect("checked");
        e.data = data;
        e.revision += 1;
        let referred = e.referred();
        let in_engine = e.in_engine;
        Self::event(&st, id, Event::Updated);
        // Apply to a live registration (ref §5.5): changes of credentials,
        // Contact parameters, provider name, auto-registration or the
        // default flag apply in place; anything else re-registers.
        if in_engine && !referred {
            self.send(Command::Unregister(id));
        } else if referred && (!in_engine || registration_changed) {
            if let Err(err) = self.start_registration(&mut st, id) {
                log::warn(&format!(
                    "profile {id}: not re-registered after update: {err}"
                ));
            }
        } else if in_engine {
            if let Ok(cfg) = Self::registration_config(&st.profiles[&id].data) {
                self.send(Command::Update(id, Box::new(cfg)));
            }
        }
        Self::snapshot(&st, id).ok_or(Error::General)
    }

    /// What cannot change under a live binding (ref §5.5): a change here
    /// de-registers and registers again. Everything else applies in place.
    fn registration_relevant(d: &ProfileData) -> impl PartialEq + use<> {
        (
            (d.aor.clone(), d.private_identity.clone(), d.headers.clone()),
            (d.registrar.address.clone(), d.proxy.address.clone()),
            (
                d.registration_expires(),
                d.type_info.clone(),
                d.access_point_id,
            ),
            (d.sig_comp, d.security_negotiation),
            (
                d.ext_str.get(&keys::INSTANCE_ID).cloned(),
                d.ext_str.get(&keys::TLS_CA_FILE).cloned(),
                d.ext_str.get(&keys::ACCESS_POINT_NAME).cloned(),
            ),
            (d.retry_base_seconds(), d.retry_max_seconds()),
        )
    }

    fn validate(d: &ProfileData) -> Result<()> {
        for a in [&d.aor, &d.registrar.address, &d.proxy.address] {
            if !a.is_empty() {
                Uri::parse(a).map_err(|_| Error::Argument)?;
            }
        }
        if d.type_info.name.len() > 25 {
            return Err(Error::Argument);
        }
        Ok(())
    }

    /// Ref §5.6: refused while any registry has it enabled.
    pub(crate) fn destroy(&self, id: u32) -> Result<()> {
        let mut st = self.state.lock();
        let e = st.profiles.get(&id).ok_or(Error::NotFound)?;
        if !e.users.is_empty() {
            return Err(Error::InUse);
        }
        st.store.delete(id)?;
        if st.default_id == Some(id) {
            st.default_id = st.store.default_id()?;
        }
        Self::event(&st, id, Event::Destroyed);
        let e = st.profiles.remove(&id).expect("checked");
        if e.in_engine {
            self.send(Command::Unregister(id));
        }
        Ok(())
    }
}
