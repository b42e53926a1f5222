//! Conformance with the Symbian SIP Profile API (ref = symbian-sip-profile-api.md,
//! contract = c-api-contract.md), one test per rule, each named after the
//! section it checks. Registrations go to a real Kamailio, or to SIPp where
//! the registrar must be slow at a precise moment. Key-table rules (ref §4)
//! and bad input at the C boundary are in tests/c/conformance.c.

mod support;

use sipprofile::Error;
use sipprofile::client::{Event, Observer};
use sipprofile::client::{ProfileEdit, ProfileHandle, Registry};
use sipprofile::profile::{Status, TypeInfo, keys};
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex, Once};
use std::time::Duration;
use support::{Kamailio, Seen, Sipp, TempDir, provision, registry, wait_for};

const WAIT: Duration = Duration::from_secs(15);
const QUIET: Duration = Duration::from_millis(700);

fn fast_timers() {
    static ONCE: Once = Once::new();
    // SAFETY: set once, before any engine thread of this binary reads it.
    ONCE.call_once(|| unsafe { std::env::set_var("SIPPROFILE_SIP_T1_MS", "50") });
}

/// A store in a temp dir with a managed registry open on it.
struct Store {
    _tmp: TempDir,
    path: PathBuf,
    m: Arc<Registry>,
    mrx: Receiver<Seen>,
}

impl Store {
    fn new() -> Store {
        fast_timers();
        let tmp = TempDir::new("conf");
        let path = tmp.path().join("p.db");
        let (m, mrx) = registry(&path, true);
        Store {
            _tmp: tmp,
            path,
            m,
            mrx,
        }
    }
    fn user(&self) -> (Arc<Registry>, Receiver<Seen>) {
        registry(&self.path, false)
    }
    fn add(&self, registrar: &str, user: &str, password: &str) -> u32 {
        provision(&self.m, registrar, user, password, 300)
    }
    /// Edits a profile through the managed registry and saves it.
    fn edit(
        &self,
        id: u32,
        f: impl FnOnce(&mut ProfileEdit) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let h = self.m.profile(id)?;
        h.edit(f)?;
        self.m.save(&h)
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        self.m.close();
    }
}

fn no_event(rx: &Receiver<Seen>, want: Seen) -> bool {
    !wait_for(rx, want, QUIET)
}

fn status(h: &ProfileHandle) -> Status {
    h.status()
}

fn has_binding(k: &Kamailio, h: &ProfileHandle) -> bool {
    k.bindings().contains(&support::contact_user(h))
}

fn wait_binding(k: &Kamailio, h: &ProfileHandle, present: bool) -> bool {
    for _ in 0..50 {
        if has_binding(k, h) == present {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

// ----- ref §5.3: enable / disable in each state ----------------------------

#[test]
fn ref_5_3_unregistered_enable_starts_registration() {
    let k = Kamailio::start("MD5");
    let s = Store::new();
    let id = s.add(&k.registrar(), "alice", "alicepw");
    let (u, rx) = s.user();
    let h = u.profile(id).unwrap();
    u.enable(&h).unwrap();
    assert_eq!(status(&h), Status::RegistrationInProgress);
    assert!(!h.get_str(keys::USER_AOR).unwrap().is_empty());
    assert!(wait_for(&rx, Seen::Event(id, Event::Registered), WAIT));
    assert!(has_binding(&k, &h));
    drop(h);
    u.close();
}

#[test]
fn ref_5_3_unregistered_disable_only_removes_the_user() {
    let k = Kamailio::start("MD5");
    let s = Store::new();
    let id = s.add(&k.registrar(), "alice", "alicepw");
    let (u, rx) = s.user();
    let h = u.profile(id).unwrap();
    assert_eq!(u.disable(&h), Ok(())); // not enabled here: harmless
    assert_eq!(status(&h), Status::Unregistered);
    assert!(no_event(&rx, Seen::Event(id, Event::Deregistered)));
    let hm = s.m.profile(id).unwrap();
    assert_eq!(s.m.is_in_use(&hm), Ok(false));
    drop((h, hm));
    u.close();
}

#[test]
fn ref_5_3_registration_in_progress_enable_adds_a_user_without_a_second_register() {
    let mut sipp = Sipp::start("slow_register.xml");
    let s = Store::new();
    let id = s.add(&sipp.registrar(), "alice", "pw");
    let (a, arx) = s.user();
    let (b, brx) = s.user();
    let (ha, hb) = (a.profile(id).unwrap(), b.profile(id).unwrap());
    a.enable(&ha).unwrap();
    b.enable(&hb).unwrap(); // while the REGISTER waits for its answer
    assert_eq!(status(&hb), Status::RegistrationInProgress);
    assert!(wait_for(&arx, Seen::Event(id, Event::Registered), WAIT));
    assert!(wait_for(&brx, Seen::Event(id, Event::Registered), WAIT));
    let hm = s.m.profile(id).unwrap();
    assert_eq!(s.m.is_in_use(&hm), Ok(true));
    a.disable(&ha).unwrap();
    b.disable(&hb).unwrap();
    assert!(wait_for(&arx, Seen::Event(id, Event::Deregistered), WAIT));
    assert!(sipp.passed(WAIT));
    // One REGISTER (with its retransmissions) and one un-REGISTER.
    assert_eq!(sipp.received_with("CSeq: 3 "), 0);
    drop((ha, hb, hm));
    a.close();
    b.close();
}

#[test]
fn ref_5_3_registration_in_progress_disable_deregisters_when_the_2xx_comes() {
    let mut sipp = Sipp::start("slow_register.xml");
    let s = Store::new();
    let id = s.add(&sipp.registrar(), "alice", "pw");
    let (u, rx) = s.user();
    let h = u.profile(id).unwrap();
    u.enable(&h).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    u.disable(&h).unwrap(); // the REGISTER is still pending
    // SIPp checks that the 2xx is followed by an un-REGISTER (Expires: 0).
    assert!(sipp.passed(WAIT));
    assert!(wait_for(&rx, Seen::Event(id, Event::Deregistered), WAIT));
    assert_eq!(status(&h), Status::Unregistered);
    drop(h);
    u.close();
}

#[test]
fn ref_5_3_registered_enable_sends_no_event() {
    let k = Kamailio::start("MD5");
    let s = Store::new();
    let id = s.add(&k.registrar(), "alice", "alicepw");
    let (a, arx) = s.user();
    let (b, brx) = s.user();
    let ha = a.profile(id).unwrap();
    a.enable(&ha).unwrap();
    assert!(wait_for(&arx, Seen::Event(id, Event::Registered), WAIT));
    let hb = b.profile(id).unwrap();
    b.enable(&hb).unwrap();
    assert_eq!(status(&hb), Status::Registered); // synchronously (ref §5.3)
    assert!(hb.is_enabled());
    assert!(no_event(&brx, Seen::Event(id, Event::Registered)));
    drop((ha, hb));
    a.close();
    b.close();
}

#[test]
fn ref_5_3_registered_disable_deregisters_only_when_unreferred() {
    let k = Kamailio::start("MD5");
    let s = Store::new();
    let id = s.add(&k.registrar(), "alice", "alicepw");
    let (a, arx) = s.user();
    let (b, _brx) = s.user();
    let (ha, hb) = (a.profile(id).unwrap(), b.profile(id).unwrap());
    a.enable(&ha).unwrap();
    assert!(wait_for(&arx, Seen::Event(id, Event::Registered), WAIT));
    b.enable(&hb).unwrap();
    a.disable(&ha).unwrap();
    assert!(no_event(&arx, Seen::Event(id, Event::Deregistered)));
    assert!(has_binding(&k, &ha));
    b.disable(&hb).unwrap();
    assert!(wait_for(&arx, Seen::Event(id, Event::Deregistered), WAIT));
    assert!(wait_binding(&k, &ha, false));
    drop((ha, hb));
    a.close();
    b.close();
}

#[test]
fn ref_5_3_deregistering_enable_registers_again_once_deregistered() {
    let mut sipp = Sipp::start("slow_unregister_then_register.xml");
    let s = Store::new();
    let id = s.add(&sipp.registrar(), "alice", "pw");
    let (u, rx) = s.user();
    let h = u.profile(id).unwrap();
    u.enable(&h).unwrap();
    assert!(wait_for(&rx, Seen::Event(id, Event::Registered), WAIT));
    u.disable(&h).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        s.m.profile(id).unwrap().status(),
        Status::UnregistrationInProgress
    );
    u.enable(&h).unwrap(); // while the un-REGISTER waits for its answer
    assert!(wait_for(&rx, Seen::Event(id, Event::Deregistered), WAIT));
    assert!(wait_for(&rx, Seen::Event(id, Event::Registered), WAIT));
    u.disable(&h).unwrap();
    assert!(wait_for(&rx, Seen::Event(id, Event::Deregistered), WAIT));
    assert!(sipp.passed(WAIT));
    drop(h);
    u.close();
}

#[test]
fn ref_5_3_deregistering_disable_removes_the_user_and_nothing_more() {
    let mut sipp = Sipp::start("slow_unregister.xml");
    let s = Store::new();
    let id = s.add(&sipp.registrar(), "alice", "pw");
    let (u, rx) = s.user();
    let h = u.profile(id).unwrap();
    u.enable(&h).unwrap();
    assert!(wait_for(&rx, Seen::Event(id, Event::Registered), WAIT));
    u.disable(&h).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    u.enable(&h).unwrap();
    u.disable(&h).unwrap(); // still de-registering
    assert!(wait_for(&rx, Seen::Event(id, Event::Deregistered), WAIT));
    assert!(no_event(&rx, Seen::Event(id, Event::Registered)));
    sipp.wait_exit(WAIT);
    assert_eq!(sipp.received_with("CSeq: 3 "), 0, "registered again");
    drop(h);
    u.close();
}

#[test]
fn ref_5_3_enable_twice_in_one_registry_is_argument() {
    let k = Kamailio::start("MD5");
    let s = Store::new();
    let id = s.add(&k.registrar(), "alice", "alicepw");
    let (u, _rx) = s.user();
    let h = u.profile(id).unwrap();
    u.enable(&h).unwrap();
    assert_eq!(u.enable(&h), Err(Error::Argument));
    let h2 = u.profile(id).unwrap(); // shares the enabled flag (ref §5.2)
    assert!(u.is_enabled(&h2));
    assert_eq!(u.enable(&h2), Err(Error::Argument));
    drop((h, h2));
    u.close();
}

#[test]
fn contract_7_3_force_disable_clears_every_registry_and_sends_no_unregister() {
    let k = Kamailio::start("MD5");
    let s = Store::new();
    let id = s.add(&k.registrar(), "alice", "alicepw");
    let (a, arx) = s.user();
    let (b, brx) = s.user();
    let (ha, hb) = (a.profile(id).unwrap(), b.profile(id).unwrap());
    a.enable(&ha).unwrap();
    assert!(wait_for(&arx, Seen::Event(id, Event::Registered), WAIT));
    b.enable(&hb).unwrap();
    a.force_disable(&ha).unwrap();
    assert!(wait_for(
        &arx,
        Seen::Event(id, Event::ForciblyDisabled),
        WAIT
    ));
    assert!(wait_for(
        &brx,
        Seen::Event(id, Event::ForciblyDisabled),
        WAIT
    ));
    assert!(!a.is_enabled(&ha) && !b.is_enabled(&hb));
    assert_eq!(status(&hb), Status::Unregistered);
    assert!(has_binding(&k, &ha), "force_disable sent an un-REGISTER");
    // Enabling works again at once (no stale flag to clear first).
    b.enable(&hb).unwrap();
    b.disable(&hb).unwrap();
    drop((ha, hb));
    a.close();
    b.close();
}

#[test]
fn ref_2_7_freeing_the_last_handle_disables() {
    let k = Kamailio::start("MD5");
    let s = Store::new();
    let id = s.add(&k.registrar(), "alice", "alicepw");
    let (u, rx) = s.user();
    let h = u.profile(id).unwrap();
    let h2 = u.profile(id).unwrap();
    u.enable(&h).unwrap();
    assert!(wait_for(&rx, Seen::Event(id, Event::Registered), WAIT));
    let user = support::contact_user(&h);
    drop(h); // another handle remains: still enabled
    assert!(u.is_enabled(&h2));
    drop(h2);
    for _ in 0..50 {
        if !k.bindings().contains(&user) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!k.bindings().contains(&user));
    let hm = s.m.profile(id).unwrap();
    assert_eq!(s.m.is_in_use(&hm), Ok(false));
    drop(hm);
    u.close();
}

#[test]
fn ref_2_5_refresh_enable_needs_the_profile_enabled_here() {
    let k = Kamailio::start("MD5");
    let s = Store::new();
    let id = s.add(&k.registrar(), "alice", "alicepw");
    let (u, rx) = s.user();
    let h = u.profile(id).unwrap();
    assert_eq!(u.refresh_enable(&h), Err(Error::Argument));
    u.enable(&h).unwrap();
    assert!(wait_for(&rx, Seen::Event(id, Event::Registered), WAIT));
    assert_eq!(u.refresh_enable(&h), Ok(()));
    drop(h);
    u.close();
}

// ----- ref §5.2: routing and handle data ------------------------------------

#[test]
fn ref_5_2_created_goes_everywhere_other_events_only_to_holders() {
    let k = Kamailio::start("MD5");
    let s = Store::new();
    let (holder, hrx) = s.user();
    let (bystander, brx) = s.user();
    let id = s.add(&k.registrar(), "alice", "alicepw");
    assert!(wait_for(&hrx, Seen::Event(id, Event::Created), WAIT));
    assert!(wait_for(&brx, Seen::Event(id, Event::Created), WAIT));
    assert!(wait_for(&s.mrx, Seen::Event(id, Event::Created), WAIT));
    let h = holder.profile(id).unwrap();
    holder.enable(&h).unwrap();
    assert!(wait_for(&hrx, Seen::Event(id, Event::Registered), WAIT));
    assert!(no_event(&brx, Seen::Event(id, Event::Registered)));
    s.edit(id, |d| d.set_str(keys::PROVIDER_NAME, "changed"))
        .unwrap();
    assert!(wait_for(&hrx, Seen::Event(id, Event::Updated), WAIT));
    assert!(no_event(&brx, Seen::Event(id, Event::Updated)));
    drop(h);
    holder.close();
    bystander.close();
}

#[test]
fn ref_5_2_no_event_after_the_last_handle_is_freed() {
    let k = Kamailio::start("MD5");
    let s = Store::new();
    let id = s.add(&k.registrar(), "alice", "alicepw");
    let (u, rx) = s.user();
    let h = u.profile(id).unwrap();
    drop(h);
    s.edit(id, |d| d.set_str(keys::PROVIDER_NAME, "x")).unwrap();
    assert!(no_event(&rx, Seen::Event(id, Event::Updated)));
    u.close();
}

/// An observer that reads the registry's handle inside the callback.
struct Peek {
    handle: Mutex<Option<ProfileHandle>>,
    seen: Mutex<Vec<(Event, Status, String)>>,
}

struct PeekRef(Arc<Peek>);

impl Observer for PeekRef {
    fn event(&self, _id: u32, event: Event) {
        if let Some(h) = self.0.handle.lock().unwrap().as_ref() {
            let c = h.copy();
            self.0
                .seen
                .lock()
                .unwrap()
                .push((event, c.info.status, c.data.provider_name));
        }
    }
    fn error(&self, _id: u32, _error: i32) {}
}

#[test]
fn ref_5_2_handles_show_the_new_data_before_the_callback() {
    let k = Kamailio::start("MD5");
    let s = Store::new();
    let id = s.add(&k.registrar(), "alice", "alicepw");
    let peek = Arc::new(Peek {
        handle: Mutex::new(None),
        seen: Mutex::new(Vec::new()),
    });
    let u = Registry::open(Some(&s.path), false, Some(Box::new(PeekRef(peek.clone())))).unwrap();
    *peek.handle.lock().unwrap() = Some(u.profile(id).unwrap());
    let h = u.profile(id).unwrap();
    u.enable(&h).unwrap();
    s.edit(id, |d| d.set_str(keys::PROVIDER_NAME, "renamed"))
        .unwrap();
    for _ in 0..100 {
        if peek.seen.lock().unwrap().len() >= 2 {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let seen = peek.seen.lock().unwrap().clone();
    assert!(
        seen.iter()
            .any(|(e, st, _)| *e == Event::Registered && *st == Status::Registered),
        "{seen:?}"
    );
    assert!(
        seen.iter()
            .any(|(e, _, name)| *e == Event::Updated && name == "renamed"),
        "{seen:?}"
    );
    *peek.handle.lock().unwrap() = None;
    drop(h);
    u.close();
}

// ----- ref §5.4: auto-registration ------------------------------------------

fn auto_profile(s: &Store, k: &Kamailio) -> u32 {
    let id = s.add(&k.registrar(), "alice", "alicepw");
    s.edit(id, |d| d.set_bool(keys::AUTO_REGISTRATION, true))
        .unwrap();
    id
}

#[test]
fn ref_5_4_auto_registration_registers_without_users() {
    let k = Kamailio::start("MD5");
    let s = Store::new();
    let h0 = s.m.create(&TypeInfo::ietf()).unwrap();
    h0.set_str(keys::USER_AOR, "sip:alice@sipprofile.test")
        .unwrap();
    h0.set_server_str(keys::SERVER_REGISTRAR, keys::SERVER_ADDRESS, &k.registrar())
        .unwrap();
    h0.set_server_str(keys::SERVER_REGISTRAR, keys::DIGEST_USER_NAME, "alice")
        .unwrap();
    h0.set_server_str(keys::SERVER_REGISTRAR, keys::DIGEST_PASSWORD, "alicepw")
        .unwrap();
    h0.set_bool(keys::AUTO_REGISTRATION, true).unwrap();
    s.m.save(&h0).unwrap(); // a new auto-registration profile registers on save
    let id = h0.id();
    assert!(wait_for(&s.mrx, Seen::Event(id, Event::Registered), WAIT));
    assert!(wait_binding(&k, &h0, true));
    assert_eq!(s.m.is_in_use(&h0), Ok(false)); // referred, but no user
    drop(h0);
}

#[test]
fn ref_5_4_auto_registered_profile_survives_the_last_users_disable() {
    let k = Kamailio::start("MD5");
    let s = Store::new();
    let id = auto_profile(&s, &k);
    let (u, rx) = s.user();
    let h = u.profile(id).unwrap();
    assert!(
        wait_for(&s.mrx, Seen::Event(id, Event::Registered), WAIT)
            || status(&h) == Status::Registered
    );
    u.enable(&h).unwrap();
    u.disable(&h).unwrap();
    assert!(no_event(&rx, Seen::Event(id, Event::Deregistered)));
    assert!(has_binding(&k, &h));
    drop(h);
    u.close();
}

#[test]
fn ref_5_4_turning_auto_registration_off_deregisters_an_unused_profile() {
    let k = Kamailio::start("MD5");
    let s = Store::new();
    let id = auto_profile(&s, &k);
    let hm = s.m.profile(id).unwrap();
    assert!(wait_for(&s.mrx, Seen::Event(id, Event::Registered), WAIT));
    s.edit(id, |d| d.set_bool(keys::AUTO_REGISTRATION, false))
        .unwrap();
    assert!(wait_for(&s.mrx, Seen::Event(id, Event::Deregistered), WAIT));
    assert!(wait_binding(&k, &hm, false));
    drop(hm);
}

#[test]
fn ref_5_4_auto_registration_outlives_its_clients_and_restarts_with_the_server() {
    let k = Kamailio::start("MD5");
    let s = Store::new();
    let id = auto_profile(&s, &k);
    let path = s.path.clone();
    let user = {
        let h = s.m.profile(id).unwrap();
        assert!(wait_binding(&k, &h, true));
        support::contact_user(&h)
    };
    // Ref §5.1: the last client gone, the server stays, and so does the
    // auto-registered binding.
    s.m.close();
    std::thread::sleep(Duration::from_millis(500));
    assert!(k.bindings().contains(&user));
    let st = sipprofile::client::server_status(&path)
        .unwrap()
        .expect("the server still runs");
    assert!(st.clients.is_empty(), "{st:?}");
    assert_eq!(st.profiles[0].status, Status::Registered as u32);
    // A new server registers it at its start (ref §5.4).
    // SAFETY: killing the store's server process, found by its status.
    unsafe { libc::kill(st.pid as i32, libc::SIGKILL) };
    let (u, rx) = registry(&path, false);
    let h = u.profile(id).unwrap();
    let new_pid = sipprofile::client::server_status(&path)
        .unwrap()
        .unwrap()
        .pid;
    assert_ne!(new_pid, st.pid);
    assert!(
        wait_for(&rx, Seen::Event(id, Event::Registered), WAIT) || status(&h) == Status::Registered
    );
    assert!(wait_binding(&k, &h, true));
    drop(h);
    u.close();
}

// ----- ref §5.6, §5.7, §5.9 -------------------------------------------------

#[test]
fn ref_5_6_destroying_an_auto_registered_profile_deregisters_it() {
    let k = Kamailio::start("MD5");
    let s = Store::new();
    let id = auto_profile(&s, &k);
    let (u, rx) = s.user();
    let h = u.profile(id).unwrap();
    assert!(wait_binding(&k, &h, true));
    let hm = s.m.profile(id).unwrap();
    s.m.destroy(&hm).unwrap();
    assert!(wait_for(&rx, Seen::Event(id, Event::Destroyed), WAIT));
    assert!(wait_binding(&k, &h, false));
    assert_eq!(u.profile(id).err(), Some(Error::NotFound));
    assert_eq!(h.id(), id); // stale handles stay readable
    drop((h, hm));
    u.close();
}

#[test]
fn ref_5_7_a_registration_error_removes_every_user() {
    let k = Kamailio::start("MD5");
    let s = Store::new();
    let id = s.add(&k.registrar(), "alice", "wrong");
    let (a, arx) = s.user();
    let (b, brx) = s.user();
    let (ha, hb) = (a.profile(id).unwrap(), b.profile(id).unwrap());
    a.enable(&ha).unwrap();
    b.enable(&hb).unwrap();
    assert!(wait_for(&arx, Seen::Error(id, 401), WAIT));
    assert!(wait_for(&brx, Seen::Error(id, 401), WAIT));
    assert!(!a.is_enabled(&ha) && !b.is_enabled(&hb));
    assert_eq!(a.last_registration_error(&ha), Ok(401));
    assert_eq!(status(&ha), Status::Unregistered);
    let hm = s.m.profile(id).unwrap();
    assert_eq!(s.m.is_in_use(&hm), Ok(false));
    // Reset by disable (even of a profile no longer enabled).
    assert_eq!(b.last_registration_error(&hb), Ok(401));
    b.disable(&hb).unwrap();
    assert_eq!(b.last_registration_error(&hb), Ok(0));
    // Reset by enable (ref §5.7): with the right password saved, the handle
    // shows 0 on return and still after REGISTERED.
    hm.set_server_str(keys::SERVER_REGISTRAR, keys::DIGEST_PASSWORD, "alicepw")
        .unwrap();
    s.m.save(&hm).unwrap();
    a.enable(&ha).unwrap();
    assert_eq!(a.last_registration_error(&ha), Ok(0));
    assert!(wait_for(&arx, Seen::Event(id, Event::Registered), WAIT));
    assert_eq!(a.last_registration_error(&ha), Ok(0));
    a.disable(&ha).unwrap();
    drop((ha, hb, hm));
    a.close();
    b.close();
}

#[test]
fn ref_5_7_enable_failing_at_once_is_the_last_error() {
    let s = Store::new();
    let h = s.m.create(&TypeInfo::ietf()).unwrap();
    s.m.save(&h).unwrap(); // no AOR, no registrar
    let id = h.id();
    let (u, _rx) = s.user();
    let p = u.profile(id).unwrap();
    assert_eq!(u.enable(&p), Err(Error::Argument)); // ref §5.10 IETF checks
    assert_eq!(u.last_registration_error(&p), Ok(Error::Argument.code()));
    assert!(!u.is_enabled(&p));
    drop((h, p));
    u.close();
}

#[test]
fn ref_5_9_default_profile_rules() {
    let s = Store::new();
    assert_eq!(s.m.default_profile().err(), Some(Error::NotFound));
    let a = s.add("sip:127.0.0.1:9", "alice", "x");
    let b = s.add("sip:127.0.0.1:9", "bob", "x");
    let c = s.add("sip:127.0.0.1:9", "carol", "x");
    let d = s.m.default_profile().unwrap();
    assert_eq!(d.id(), a); // the first one saved
    let hc = s.m.profile(c).unwrap();
    assert_eq!(
        hc.set_bool(keys::DEFAULT_PROFILE, false),
        Err(Error::Argument)
    );
    hc.set_bool(keys::DEFAULT_PROFILE, true).unwrap();
    s.m.save(&hc).unwrap();
    assert!(hc.is_default());
    assert!(!d.is_default());
    s.m.destroy(&hc).unwrap();
    let d2 = s.m.default_profile().unwrap();
    assert_eq!(d2.id(), a); // the lowest remaining id
    let hb = s.m.profile(b).unwrap();
    s.m.destroy(&d2).unwrap();
    assert_eq!(s.m.default_profile().unwrap().id(), b);
    s.m.destroy(&hb).unwrap();
    assert_eq!(s.m.default_profile().err(), Some(Error::NotFound));
    drop((d, hb));
}

// ----- ref §2.4, §2.8, §5.10; contract §7.1 ---------------------------------

#[test]
fn ref_2_4_lookups_by_id_type_and_aor() {
    let s = Store::new();
    assert_eq!(s.m.profile(0).err(), Some(Error::Argument));
    assert_eq!(s.m.profile(999).err(), Some(Error::NotFound));
    let a = s.add("sip:127.0.0.1:9", "alice", "x");
    let ims = s.m.create(&TypeInfo::ims()).unwrap();
    ims.set_str(keys::USER_AOR, "sip:%61lice@SIPPROFILE.test")
        .unwrap();
    s.m.save(&ims).unwrap();
    let i = ims.id();
    let ids = |v: Vec<ProfileHandle>| v.iter().map(|h| h.id()).collect::<HashSet<_>>();
    assert_eq!(ids(s.m.profiles().unwrap()), HashSet::from([a, i]));
    assert_eq!(
        ids(s.m.profiles_by_type(&TypeInfo::ims()).unwrap()),
        HashSet::from([i])
    );
    assert_eq!(
        ids(s.m.profiles_by_type(&TypeInfo::ietf()).unwrap()),
        HashSet::from([a])
    );
    // RFC 3261 §19.1.4: escaped user equal, host case-insensitive.
    assert_eq!(
        ids(s.m.profiles_by_aor("sip:alice@sipprofile.test").unwrap()),
        HashSet::from([a, i])
    );
    assert!(
        s.m.profiles_by_aor("sip:alice@sipprofile.test:5060")
            .unwrap()
            .is_empty()
    );
    assert!(
        s.m.profiles_by_aor("sip:Alice@sipprofile.test")
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        s.m.profiles_by_aor("not a uri").err(),
        Some(Error::Argument)
    );
    // Each retrieval is a new handle sharing one data block (ref §2.4).
    let (h1, h2) = (s.m.profile(a).unwrap(), s.m.profile(a).unwrap());
    assert!(h1.shares_data_with(&h2));
    drop(ims);
}

#[test]
fn ref_2_8_clone_is_a_new_unsaved_profile() {
    let s = Store::new();
    let fresh = s.m.create(&TypeInfo::ietf()).unwrap();
    assert_eq!(fresh.clone_profile().err(), Some(Error::BadHandle)); // not attached
    let id = s.add("sip:127.0.0.1:9", "alice", "x");
    let h = s.m.profile(id).unwrap();
    let c = h.clone_profile().unwrap();
    {
        let (src, copy) = (h.copy(), c.copy());
        assert_eq!(copy.data.id, 0);
        assert_ne!(copy.data.contact_user, src.data.contact_user);
        assert_eq!(copy.data.aor, src.data.aor);
        assert!(!c.holds_password());
        assert_eq!(copy.last_error, 0);
    }
    s.m.save(&c).unwrap();
    assert!(c.id() > id);
    let (u, _rx) = s.user();
    let uh = u.profile(id).unwrap();
    assert_eq!(uh.clone_profile().err(), Some(Error::AccessDenied)); // managed only
    drop(uh);
    u.close();
    drop(fresh);
}

#[test]
fn ref_5_10_types_and_their_defaults() {
    let s = Store::new();
    assert_eq!(
        TypeInfo::supported(),
        vec![TypeInfo::ietf(), TypeInfo::ims()]
    );
    let other = TypeInfo {
        class: 2,
        name: "other".into(),
    };
    assert_eq!(s.m.create(&other).err(), Some(Error::NotFound));
    let ims = s.m.create(&TypeInfo::ims()).unwrap();
    {
        assert_eq!(ims.get_bool(keys::SIG_COMP), Ok(true));
        assert_eq!(ims.get_bool(keys::SECURITY_NEGOTIATION), Ok(true));
        assert_eq!(
            ims.get_server_str(keys::SERVER_OUTBOUND_PROXY, keys::SERVER_ADDRESS)
                .as_deref(),
            Ok("sip:0.0.0.0")
        );
        assert_eq!(ims.get_u32(keys::REGISTRATION_EXPIRES), Ok(600_000));
    }
    // ims needs a password (or a registrar user) before it can register.
    ims.set_str(keys::USER_AOR, "sip:bob@sipprofile.test")
        .unwrap();
    ims.set_server_str(
        keys::SERVER_REGISTRAR,
        keys::SERVER_ADDRESS,
        "sip:127.0.0.1:9",
    )
    .unwrap();
    s.m.save(&ims).unwrap();
    let id = ims.id();
    let (u, _rx) = s.user();
    let h = u.profile(id).unwrap();
    assert_eq!(u.enable(&h), Err(Error::Argument));
    drop((h, ims));
    u.close();
}

#[test]
fn contract_7_1_ids_are_never_reused() {
    let s = Store::new();
    let a = s.add("sip:127.0.0.1:9", "a", "x");
    let b = s.add("sip:127.0.0.1:9", "b", "x");
    for id in [a, b] {
        let h = s.m.profile(id).unwrap();
        s.m.destroy(&h).unwrap();
    }
    let c = s.add("sip:127.0.0.1:9", "c", "x");
    assert_eq!(c, b + 1);
}

#[test]
fn contract_7_2_handles_outlive_their_registry() {
    let s = Store::new();
    let id = s.add("sip:127.0.0.1:9", "alice", "x");
    let (u, _rx) = s.user();
    let h = u.profile(id).unwrap();
    u.close();
    assert_eq!(h.id(), id);
    assert_eq!(u.enable(&h), Err(Error::BadHandle));
    assert_eq!(u.profile(id).err(), Some(Error::BadHandle));
    // A handle of another store's registry is refused.
    let other = Store::new();
    let oid = other.add("sip:127.0.0.1:9", "o", "x");
    let oh = other.m.profile(oid).unwrap();
    assert_eq!(s.m.save(&oh), Err(Error::BadHandle));
    assert_eq!(s.m.destroy(&oh), Err(Error::BadHandle));
}

/// Found by the latency benchmark: a late UPDATED of one's own earlier save
/// must not overwrite edits made since (which turned the next save into an
/// "unchanged" one, and its event was never sent).
#[test]
fn contract_7_5_late_events_never_overwrite_newer_data() {
    let s = Store::new();
    let id = s.add("sip:127.0.0.1:9", "alice", "x");
    let (u, rx) = s.user();
    let held = u.profile(id).unwrap();
    let h = s.m.profile(id).unwrap();
    for i in 0..300 {
        let name = format!("name {i}");
        h.set_str(keys::PROVIDER_NAME, &name).unwrap();
        s.m.save(&h).unwrap();
        assert_eq!(h.get_str(keys::PROVIDER_NAME), Ok(name));
    }
    // Every save's event reached the holder: its handle shows the last one
    // (events are its only way to learn of it), and UPDATED callbacks ran:
    // at most one per save, fewer where one still waited when the next
    // came (they merge: src/client/pending.rs).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while held.get_str(keys::PROVIDER_NAME).as_deref() != Ok("name 299") {
        assert!(
            std::time::Instant::now() < deadline,
            "the last save's UPDATED never came"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut updated = 0;
    while let Ok(seen) = rx.recv_timeout(Duration::from_secs(2)) {
        if seen == Seen::Event(id, Event::Updated) {
            updated += 1;
        }
    }
    assert!((1..=300).contains(&updated), "{updated} UPDATED callbacks");
    drop((held, h));
    u.close();
}
