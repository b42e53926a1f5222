//! The profile server: one per store, shared by every registry of that store
//! in every process of the user (ref §5.1, contract §8.1). It is the only
//! code that opens the store and the only one that speaks SIP. It holds every
//! profile, who observes and who uses (has enabled) each one, applies the
//! enable/disable counting of ref §5.3, drives the SIP engine and routes
//! events to its clients (ref §5.2). It never runs application code: its
//! clients (`crate::client`, in the applications' processes) call the
//! observers.
//!
//! - this file: profiles, counting and routing, behind [`Server::handle`];
//! - `link.rs`: one connected client, the queue of what goes to it;
//! - `listener.rs`: the Unix socket: peer check, handshake, a session per client;
//! - `host.rs`: one server per store (the lock), the stop rule, and the two
//!   ways of hosting it (a process of its own, or inside a client's process).
//!
//! Locking: one mutex (`state`) guards everything; it is never held while
//! waiting for a client or for the engine (a client's queue is bounded and
//! never blocks, see `link.rs`; a request waits for room in the engine's
//! queue before it takes the lock, see `engine::MAX_COMMANDS`).

pub mod host;
mod link;
pub mod listener;

use crate::profile::keys;
use crate::profile::{ProfileData, RegistrationInfo, Status};
use crate::protocol::{
    ClientStatus, Delivery, Event, Failure, Filter, ProfileStatus, RegistryId, Reply, Request,
    SaveItem, ServerStatus, Snapshot, ToClient, Token, monotonic_ns,
};
use crate::sip::engine::{Command, Engine, Reporter};
use crate::sip::registration::{Credentials, RegConfig, Report};
use crate::sip::transport::Transport;
use crate::sip::uri::Uri;
use crate::store::Store;
use crate::{Error, Result, log};
use parking_lot::{Condvar, Mutex};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

pub use link::ClientLink;

/// How long stopping the server waits for un-REGISTERs to be answered,
/// at least; plus [`SHUTDOWN_WAIT_EACH`] per registration to end.
pub const SHUTDOWN_WAIT: Duration = Duration::from_secs(4);
/// What each registration adds to the wait: 100,000 take about 37 s to
/// de-register against Kamailio on two shared cores (a flat 4 s left 72,000
/// bindings behind); the wait ends as soon as every one is answered.
pub const SHUTDOWN_WAIT_EACH: Duration = Duration::from_millis(1);

/// A registry, server-wide: its client's number and the client's number for it.
type RegKey = (u64, RegistryId);

struct Entry {
    data: ProfileData,
    info: RegistrationInfo,
    /// Registries that enabled it (ref §5.3 "users").
    users: HashSet<RegKey>,
    /// Registries holding at least one handle (ref §5.2 "observers"), with
    /// the token of the block their handles share.
    observers: HashMap<RegKey, Token>,
    /// The engine is running a registration for it.
    in_engine: bool,
    /// The engine was asked to register again once the current binding is
    /// gone: it stays the engine's through the Unregistered in between.
    restart_pending: bool,
    /// Bumped by every save: a registry applies event data only when newer
    /// than what its handles hold.
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

/// A registry of some client.
struct Attached {
    link: Arc<ClientLink>,
    /// It has an observer: it hears CREATED of every profile.
    observer: bool,
    /// It asked for SIP_PROFILE_ATTEMPT_FAILED.
    attempt_events: bool,
}

struct State {
    store: Store,
    profiles: BTreeMap<u32, Entry>,
    registries: HashMap<RegKey, Attached>,
    clients: HashMap<u64, Arc<ClientLink>>,
    default_id: Option<u32>,
    /// Numbers every snapshot and every registration state handed to a
    /// registry, in lock order: an event queued for a client and the state
    /// an `enable` returned are applied newest-wins, whichever arrives first.
    seq: u64,
    /// Set once the server stops: nothing more is accepted.
    stopping: bool,
}

impl State {
    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }
}

pub struct Server {
    path: PathBuf,
    hosting: &'static str,
    state: Mutex<State>,
    engine: Mutex<Option<Engine>>,
    /// Signalled when what the stop rule looks at may have changed.
    changed: Condvar,
    next_client: AtomicU64,
}

struct EngineReporter(Weak<Server>);

impl Reporter for EngineReporter {
    fn report(&self, profile_id: u32, context_id: u32, report: Report) {
        if let Some(server) = self.0.upgrade() {
            server.on_report(profile_id, context_id, report);
        }
    }
}

impl Server {
    /// Opens the store at `path` (canonical), starts the SIP engine and
    /// auto-registers what asks for it (ref §5.4).
    pub fn start(path: &Path, hosting: &'static str) -> Result<Arc<Server>> {
        let store = Store::open(path)?;
        let loaded = store.load_all()?;
        let default_id = store.default_id()?;
        let mut profiles = BTreeMap::new();
        for data in loaded {
            profiles.insert(data.id, Entry::new(data));
        }
        let server = Arc::new(Server {
            path: path.to_owned(),
            hosting,
            state: Mutex::new(State {
                store,
                profiles,
                registries: HashMap::new(),
                clients: HashMap::new(),
                default_id,
                seq: 0,
                stopping: false,
            }),
            engine: Mutex::new(None),
            changed: Condvar::new(),
            next_client: AtomicU64::new(1),
        });
        let engine = Engine::start(Arc::new(EngineReporter(Arc::downgrade(&server))))
            .map_err(|_| Error::General)?;
        *server.engine.lock() = Some(engine);
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

    pub fn store_path(&self) -> &Path {
        &self.path
    }

    // ----- clients -----

    /// A client connected; what goes to it is queued on `link`. `None` once
    /// the server is stopping (the client then starts or finds another).
    pub fn connect(&self, pid: u32, link: Arc<ClientLink>) -> Option<u64> {
        let mut st = self.state.lock();
        if st.stopping {
            return None;
        }
        let id = self.next_client.fetch_add(1, Ordering::Relaxed);
        log::debug(&format!("client {id} (pid {pid}) connected"));
        st.clients.insert(id, link);
        self.changed.notify_all();
        Some(id)
    }

    /// A client is gone (closed, or died): every registry of it closes, so
    /// what it enabled is released (ref §5.3 "implicit disable").
    pub fn disconnect(&self, client: u64) {
        let mut st = self.state.lock();
        if let Some(l) = st.clients.remove(&client) {
            l.close();
            log::debug(&format!("client {client} (pid {}) gone", l.pid()));
        }
        let regs: Vec<RegKey> = st
            .registries
            .keys()
            .filter(|(c, _)| *c == client)
            .copied()
            .collect();
        for key in regs {
            self.close_registry(&mut st, key);
        }
        self.changed.notify_all();
    }

    fn close_registry(&self, st: &mut State, key: RegKey) {
        st.registries.remove(&key);
        let ids: Vec<u32> = st
            .profiles
            .iter()
            .filter(|(_, e)| e.users.contains(&key) || e.observers.contains_key(&key))
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            let e = st.profiles.get_mut(&id).expect("listed");
            e.observers.remove(&key);
            if e.users.remove(&key) {
                self.stop_if_unreferred(st, id);
            }
        }
    }

    /// Queues a message for `client`, if still connected.
    pub fn link_send(&self, client: u64, m: ToClient) {
        let link = self.state.lock().clients.get(&client).cloned();
        if let Some(l) = link {
            l.send(m);
        }
    }

    /// Carries out one request of `client`; a failure says in words what
    /// went wrong when the code alone does not.
    pub fn handle(&self, client: u64, request: Request) -> std::result::Result<Reply, Failure> {
        crate::error::clear_message();
        if !request.is_question() {
            // A change may give the engine commands: wait here, holding no
            // lock, while it has `MAX_COMMANDS` to take (engine.rs).
            let gate = self.engine.lock().as_ref().map(Engine::gate);
            if let Some(g) = gate {
                g.wait();
            }
        }
        self.carry_out(client, request)
            .map_err(|e| Failure::new(e, crate::error::message_for(e.code())))
    }

    fn carry_out(&self, client: u64, request: Request) -> Result<Reply> {
        let key = |registry: RegistryId| (client, registry);
        match request {
            Request::OpenRegistry {
                registry,
                observer,
                attempt_events,
            } => {
                let mut st = self.state.lock();
                let link = st
                    .clients
                    .get(&client)
                    .cloned()
                    .ok_or(Error::ServerTerminated)?;
                st.registries.insert(
                    key(registry),
                    Attached {
                        link,
                        observer,
                        attempt_events,
                    },
                );
                Ok(Reply::Done)
            }
            Request::CloseRegistry { registry } => {
                let mut st = self.state.lock();
                self.close_registry(&mut st, key(registry));
                self.changed.notify_all();
                Ok(Reply::Done)
            }
            Request::ListIds { filter } => Ok(Reply::Ids(self.list_ids(&filter)?)),
            Request::DefaultId => Ok(Reply::DefaultId(self.state.lock().default_id)),
            Request::Lookup {
                registry,
                id,
                token,
            } => self.lookup(key(registry), id, token).map(Reply::Snapshot),
            Request::LookupMany { registry, items } => Ok(Reply::Found(
                items
                    .into_iter()
                    .map(|(id, token)| self.lookup(key(registry), id, token).ok())
                    .collect(),
            )),
            Request::Unobserve {
                registry,
                id,
                token,
            } => {
                let mut st = self.state.lock();
                if let Some(e) = st.profiles.get_mut(&id)
                    && e.observers.get(&key(registry)) == Some(&token)
                {
                    e.observers.remove(&key(registry));
                }
                Ok(Reply::Done)
            }
            Request::Enable { registry, id } => {
                let (info, seq) = self.enable(key(registry), id)?;
                Ok(Reply::State { info, seq })
            }
            Request::Disable { registry, id } => {
                let (info, seq) = self.disable(key(registry), id)?;
                Ok(Reply::State { info, seq })
            }
            Request::RefreshEnable { registry, id } => {
                self.refresh_enable(key(registry), id)?;
                Ok(Reply::Done)
            }
            Request::ForceDisable { id } => {
                let (info, seq) = self.force_disable(id)?;
                Ok(Reply::State { info, seq })
            }
            Request::IsInUse { id } => Ok(Reply::InUse(self.is_in_use(id)?)),
            Request::Save { registry, item } => {
                let SaveItem {
                    token,
                    mut data,
                    make_default,
                } = *item;
                data.make_default = make_default;
                self.save(key(registry), token, data).map(Reply::Snapshot)
            }
            Request::SaveAll { registry, items } => {
                let items = items
                    .into_iter()
                    .map(|i| {
                        let mut data = i.data;
                        data.make_default = i.make_default;
                        (i.token, data)
                    })
                    .collect();
                self.save_all(key(registry), items).map(Reply::Snapshots)
            }
            Request::Destroy { id } => {
                self.destroy(id)?;
                Ok(Reply::Done)
            }
            Request::Status => Ok(Reply::Status(self.status(client))),
            Request::NetworkChanged => {
                crate::sip::engine::network_changed();
                Ok(Reply::Done)
            }
            Request::ExportWithPasswords => {
                let st = self.state.lock();
                Ok(Reply::Profiles(
                    st.profiles.values().map(|e| e.data.clone()).collect(),
                ))
            }
        }
    }

    // ----- the stop rule (ref §5.1) -----

    /// No client, no auto-registration profile registered without error,
    /// every profile unregistered and out of the engine.
    pub fn can_stop(&self) -> bool {
        let st = self.state.lock();
        Self::idle(&st)
    }

    fn idle(st: &State) -> bool {
        st.clients.is_empty()
            && st.profiles.values().all(|e| {
                e.info.status == Status::Unregistered
                    && !e.in_engine
                    && !(e.data.auto_registration && e.info.last_error == 0)
            })
    }

    /// Waits until the stop rule may have changed, or `timeout`.
    pub fn wait_change(&self, timeout: Duration) {
        let mut st = self.state.lock();
        let _ = self.changed.wait_for(&mut st, timeout);
    }

    /// Whether any client has connected yet.
    pub fn ever_connected(&self) -> bool {
        self.next_client.load(Ordering::Relaxed) > 1
    }

    /// Clients connected now.
    pub fn client_count(&self) -> usize {
        self.state.lock().clients.len()
    }

    /// Stops taking clients if the stop rule holds (`idle_only`) or in any
    /// case; true if it stopped. A client that connects afterwards is turned
    /// away and finds or starts another server.
    pub fn begin_stop(&self, idle_only: bool) -> bool {
        let mut st = self.state.lock();
        if st.stopping {
            return true;
        }
        if idle_only && !Self::idle(&st) {
            return false;
        }
        st.stopping = true;
        true
    }

    /// De-registers everything (bounded wait), stops the engine and drops
    /// every client.
    pub fn shutdown(&self) {
        let (links, in_engine) = {
            let mut st = self.state.lock();
            st.stopping = true;
            let in_engine = st.profiles.values().filter(|e| e.in_engine).count();
            let links: Vec<Arc<ClientLink>> = st.clients.drain().map(|(_, l)| l).collect();
            (links, in_engine)
        };
        for l in links {
            l.close();
        }
        let engine = self.engine.lock().take();
        if let Some(engine) = engine {
            let each =
                SHUTDOWN_WAIT_EACH.saturating_mul(u32::try_from(in_engine).unwrap_or(u32::MAX));
            engine.shutdown(SHUTDOWN_WAIT.saturating_add(each));
        }
        log::info(&format!(
            "profile server stopped for {}",
            self.path.display()
        ));
    }

    /// The server's state, as told to `asking` (not listed among the clients).
    fn status(&self, asking: u64) -> ServerStatus {
        let st = self.state.lock();
        let mut per_client: BTreeMap<u64, u32> = BTreeMap::new();
        for (c, _) in st.registries.keys() {
            *per_client.entry(*c).or_default() += 1;
        }
        ServerStatus {
            pid: std::process::id(),
            store: self.path.display().to_string(),
            hosting: self.hosting.to_owned(),
            clients: st
                .clients
                .iter()
                .filter(|(id, _)| **id != asking)
                .map(|(id, l)| ClientStatus {
                    pid: l.pid(),
                    registries: per_client.get(id).copied().unwrap_or(0),
                })
                .collect(),
            profiles: st
                .profiles
                .values()
                .map(|e| ProfileStatus {
                    id: e.data.id,
                    status: e.info.status as u32,
                    users: e.users.len() as u32,
                    auto_registration: e.data.auto_registration,
                    last_error: e.info.last_error,
                })
                .collect(),
        }
    }

    // ----- routing -----

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

    fn snapshot_with(st: &mut State, id: u32, with_data: bool) -> Option<Arc<Snapshot>> {
        let seq = st.next_seq();
        let default = st.default_id == Some(id);
        st.profiles.get(&id).map(|e| {
            Arc::new(Snapshot {
                seq,
                data: with_data.then(|| e.data.without_passwords()),
                revision: e.revision,
                info: e.info.clone(),
                is_default: default,
                enable_refusal: if with_data {
                    Self::enable_refusal(&e.data)
                } else {
                    None
                },
            })
        })
    }

    /// Sends to the profile's observers (or to every observing registry for
    /// CREATED). `with_data`: the event changed the stored data (UPDATED,
    /// CREATED), so the receiving handles need it; other events carry the
    /// registration only.
    fn route(
        st: &mut State,
        id: u32,
        with_data: bool,
        what: impl Fn(Option<Arc<Snapshot>>) -> Delivery,
    ) {
        // Nobody to tell: no snapshot made (a bulk save of 100,000 new
        // profiles with no observer would copy each one for nothing).
        let Some(e) = st.profiles.get(&id) else {
            return;
        };
        let anyone = e.observers.keys().any(|k| st.registries.contains_key(k))
            || st.registries.values().any(|a| a.observer);
        if !anyone {
            return;
        }
        let snap = Self::snapshot_with(st, id, with_data);
        let d = what(snap);
        let Some(e) = st.profiles.get(&id) else {
            return;
        };
        let attempt = matches!(
            d,
            Delivery::Event {
                event: Event::AttemptFailed,
                ..
            }
        );
        if matches!(
            d,
            Delivery::Event {
                event: Event::Created,
                ..
            }
        ) {
            for ((_, registry), a) in &st.registries {
                if a.observer {
                    a.link.send(ToClient::Event {
                        registry: *registry,
                        delivery: d.clone(),
                    });
                }
            }
        } else {
            for key in e.observers.keys() {
                if let Some(a) = st.registries.get(key) {
                    if attempt && !a.attempt_events {
                        continue;
                    }
                    a.link.send(ToClient::Event {
                        registry: key.1,
                        delivery: d.clone(),
                    });
                }
            }
        }
    }

    fn event(st: &mut State, id: u32, ev: Event) {
        let now = monotonic_ns();
        let with_data = matches!(ev, Event::Updated | Event::Created);
        Self::route(st, id, with_data, |s| Delivery::Event {
            id,
            event: ev,
            snapshot: s,
            published_ns: now,
        });
    }

    /// Why `enable` of `data` would be refused (`None`: it can register),
    /// as every snapshot with data carries it to the registries.
    fn enable_refusal(data: &ProfileData) -> Option<Failure> {
        crate::error::clear_message();
        let e = Self::registration_target(data).err()?;
        Some(Failure::new(e, crate::error::message_for(e.code())))
    }

    /// The checked parts of a registration: registrar, proxy, transport and
    /// interface; an error if `data` cannot register.
    fn registration_target(
        data: &ProfileData,
    ) -> Result<(Uri, Option<Uri>, Transport, Option<String>)> {
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
        Ok((registrar, proxy, transport, interface))
    }

    fn registration_config(data: &ProfileData) -> Result<RegConfig> {
        let (registrar, proxy, transport, interface) = Self::registration_target(data)?;
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
            digest_min: data
                .ext_str
                .get(&keys::DIGEST_MIN_ALGORITHM)
                .and_then(|a| crate::sip::digest::Algorithm::from_name(a)),
            network: crate::sip::registration::NetworkOptions::of(data),
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
                e.info.attempt_error = 0;
                e.info.retry_at_ns = 0;
                if before != Status::Registered {
                    log::info(&format!("profile {id} registered"));
                    Self::event(&mut st, id, Event::Registered);
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
                    Self::event(&mut st, id, Event::Deregistered);
                }
            }
            Report::Disconnected => {
                e.info = RegistrationInfo {
                    status: Status::RegistrationInProgress,
                    last_error: Error::Disconnected.code(),
                    ..RegistrationInfo::default()
                };
                log::info(&format!("profile {id} lost its registration; retrying"));
                Self::event(&mut st, id, Event::Deregistered);
            }
            Report::Failed(code) => {
                // Registration-phase error (ref §5.7): unregistered, every
                // user removed, last error set, error to every observer.
                e.info = RegistrationInfo {
                    last_error: code,
                    attempt_error: code,
                    ..RegistrationInfo::default()
                };
                e.users.clear();
                e.in_engine = false;
                e.restart_pending = false;
                log::info(&format!("profile {id} registration failed: {code}"));
                Self::route(&mut st, id, false, |s| Delivery::Error {
                    id,
                    code,
                    snapshot: s,
                });
            }
            Report::AttemptFailed { error, retry_in } => {
                // Contract §8.2/8.3: visible, without being an error
                // callback (the profile stays enabled, the engine retries).
                e.info.attempt_error = error;
                e.info.retry_at_ns = monotonic_ns()
                    .saturating_add(u64::try_from(retry_in.as_nanos()).unwrap_or(u64::MAX));
                log::info(&format!(
                    "profile {id}: attempt failed with {error}; next in {:.1} s",
                    retry_in.as_secs_f64()
                ));
                Self::event(&mut st, id, Event::AttemptFailed);
            }
        }
        self.changed.notify_all();
    }

    // ----- requests -----

    fn list_ids(&self, filter: &Filter) -> Result<Vec<u32>> {
        let want = match filter {
            Filter::Aor(a) => Some(Uri::parse(a).map_err(|_| Error::Argument)?),
            _ => None,
        };
        let st = self.state.lock();
        Ok(st
            .profiles
            .values()
            .filter(|e| match filter {
                Filter::All => true,
                Filter::Type(t) => e.data.type_info == *t,
                Filter::Aor(_) => Uri::parse(&e.data.aor)
                    .is_ok_and(|u| want.as_ref().is_some_and(|w| u.equivalent(w))),
            })
            .map(|e| e.data.id)
            .collect())
    }

    /// The profile's snapshot; with `token`, `registry` observes it through
    /// that block from now on.
    fn lookup(&self, registry: RegKey, id: u32, token: Option<Token>) -> Result<Arc<Snapshot>> {
        let mut st = self.state.lock();
        let e = st.profiles.get_mut(&id).ok_or(Error::NotFound)?;
        if let Some(t) = token {
            e.observers.insert(registry, t);
        }
        Self::snapshot_with(&mut st, id, true).ok_or(Error::NotFound)
    }

    fn enable(&self, registry: RegKey, id: u32) -> Result<(RegistrationInfo, u64)> {
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

    fn disable(&self, registry: RegKey, id: u32) -> Result<(RegistrationInfo, u64)> {
        let mut st = self.state.lock();
        let e = st.profiles.get_mut(&id).ok_or(Error::NotFound)?;
        e.users.remove(&registry);
        self.stop_if_unreferred(&mut st, id);
        let info = st.profiles[&id].info.clone();
        Ok((info, st.next_seq()))
    }

    fn is_in_use(&self, id: u32) -> Result<bool> {
        let st = self.state.lock();
        let e = st.profiles.get(&id).ok_or(Error::NotFound)?;
        Ok(!e.users.is_empty())
    }

    fn refresh_enable(&self, registry: RegKey, id: u32) -> Result<()> {
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
    fn force_disable(&self, id: u32) -> Result<(RegistrationInfo, u64)> {
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
        Self::event(&mut st, id, Event::ForciblyDisabled);
        self.changed.notify_all();
        Ok((RegistrationInfo::default(), st.next_seq()))
    }

    /// What every save checks and fills in before anything is written.
    fn prepare(mut data: ProfileData) -> Result<ProfileData> {
        if !data.type_info.is_supported() {
            return Err(Error::NotFound);
        }
        Self::validate(&data)?;
        // Ref §4.5: an absent bearer type is stored as 0.
        data.ext_u32.entry(keys::BEARER_TYPE).or_insert(0);
        if data.id == 0 {
            data.ext_str
                .entry(keys::INSTANCE_ID)
                .or_insert_with(crate::random::uuid_urn);
        }
        Ok(data)
    }

    /// A profile just written as new: the server knows it, its registry's
    /// block observes it, everyone hears CREATED, and it auto-registers.
    fn added(&self, st: &mut State, registry: RegKey, token: Token, mut data: ProfileData) -> u32 {
        let id = data.id;
        if st.default_id.is_none() || data.make_default {
            st.default_id = Some(id);
        }
        data.make_default = false;
        let auto = data.auto_registration;
        let mut e = Entry::new(data);
        e.observers.insert(registry, token);
        st.profiles.insert(id, e);
        Self::event(st, id, Event::Created);
        if auto && let Err(e) = self.start_registration(st, id) {
            log::warn(&format!("profile {id}: auto-registration not started: {e}"));
        }
        id
    }

    /// Adds (id 0) or updates a profile; returns the stored copy (ref §5.5).
    fn save(&self, registry: RegKey, token: Token, data: ProfileData) -> Result<Arc<Snapshot>> {
        self.save_all(registry, vec![(token, data)])?
            .pop()
            .ok_or(Error::General)
    }

    /// Adds (id 0) and updates many profiles in one durable transaction,
    /// all or nothing (contract §8.3): every item is checked first, then
    /// all are written at once, and only once that is durable does the
    /// server take them in, send events and start registrations. On any
    /// failure nothing is written and nobody hears anything. Returns the
    /// stored copies, in order.
    fn save_all(
        &self,
        registry: RegKey,
        items: Vec<(Token, ProfileData)>,
    ) -> Result<Vec<Arc<Snapshot>>> {
        let mut prepared = Vec::with_capacity(items.len());
        for (token, data) in items {
            prepared.push((token, Self::prepare(data)?));
        }
        let mut st = self.state.lock();
        // Updates merged with what is stored; an unchanged one writes
        // nothing and redoes nothing (contract §7.4).
        let mut planned = Vec::with_capacity(prepared.len());
        for (token, data) in prepared {
            if data.id == 0 {
                planned.push((token, data, true));
            } else {
                let (data, changed) = Self::merge_update(&st, data)?;
                planned.push((token, data, changed));
            }
        }
        let writes: Vec<&ProfileData> = planned
            .iter()
            .filter(|(_, _, write)| *write)
            .map(|(_, d, _)| d)
            .collect();
        let mut ids = st.store.save_all(&writes)?.into_iter();
        // Durable: now the server's own state, the events and the engine.
        let mut out = Vec::with_capacity(planned.len());
        for (token, mut data, write) in planned {
            let id = if data.id == 0 {
                data.id = ids.next().ok_or(Error::General)?;
                self.added(&mut st, registry, token, data)
            } else {
                let id = data.id;
                if write {
                    ids.next();
                    self.updated(&mut st, data);
                }
                id
            };
            out.push(id);
        }
        self.changed.notify_all();
        out.into_iter()
            .map(|id| Self::snapshot_with(&mut st, id, true).ok_or(Error::General))
            .collect()
    }

    /// An update checked against the stored profile it replaces: passwords
    /// and instance id kept where the client sends none, the default flag
    /// only if it changes something. Also says whether anything changed.
    fn merge_update(st: &State, mut data: ProfileData) -> Result<(ProfileData, bool)> {
        let id = data.id;
        let stored = &st.profiles.get(&id).ok_or(Error::NotFound)?.data;
        data.keep_passwords_from(stored);
        if let Some(i) = stored.ext_str.get(&keys::INSTANCE_ID) {
            data.ext_str
                .entry(keys::INSTANCE_ID)
                .or_insert_with(|| i.clone());
        }
        let make_default = data.make_default && st.default_id != Some(id);
        data.make_default = make_default;
        let changed = data != *stored || make_default;
        Ok((data, changed))
    }

    /// An update just written: the server takes it in, observers hear
    /// UPDATED, and a live registration follows it (ref §5.5).
    fn updated(&self, st: &mut State, mut data: ProfileData) {
        let id = data.id;
        if data.make_default {
            st.default_id = Some(id);
        }
        data.make_default = false;
        let Some(e) = st.profiles.get_mut(&id) else {
            return;
        };
        let registration_changed =
            Self::registration_relevant(&e.data) != Self::registration_relevant(&data);
        e.data = data;
        e.revision += 1;
        let referred = e.referred();
        let in_engine = e.in_engine;
        Self::event(st, id, Event::Updated);
        // Changes of credentials, Contact parameters, provider name,
        // auto-registration or the default flag apply in place; anything
        // else re-registers.
        if in_engine && !referred {
            self.send(Command::Unregister(id));
        } else if referred && (!in_engine || registration_changed) {
            if let Err(err) = self.start_registration(st, id) {
                log::warn(&format!(
                    "profile {id}: not re-registered after update: {err}"
                ));
            }
        } else if in_engine && let Ok(cfg) = Self::registration_config(&st.profiles[&id].data) {
            self.send(Command::Update(id, Box::new(cfg)));
        }
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

    /// Ref §5.6: refused while any registry, of any client, has it enabled.
    fn destroy(&self, id: u32) -> Result<()> {
        let mut st = self.state.lock();
        let e = st.profiles.get(&id).ok_or(Error::NotFound)?;
        if !e.users.is_empty() {
            return Err(Error::InUse);
        }
        st.store.delete(id)?;
        if st.default_id == Some(id) {
            st.default_id = st.store.default_id()?;
        }
        Self::event(&mut st, id, Event::Destroyed);
        let e = st.profiles.remove(&id).expect("checked");
        if e.in_engine {
            self.send(Command::Unregister(id));
        }
        self.changed.notify_all();
        Ok(())
    }
}
