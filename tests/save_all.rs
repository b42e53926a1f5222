//! `save_all` (contract §8.3): new profiles and updates of stored ones in
//! one durable transaction, all or nothing. A batch with a bad item
//! anywhere writes nothing, changes nothing in the server and sends no
//! event; a good one is stored whole (seen again after the server
//! restarts) and every observing registry hears CREATED for each new one.
//! The server runs in the test's process (no SIP involved).
//!
//! Run: `nice cargo test --test save_all`

use sipprofile::client::{Event, Flags, Hosting, Observer, ProfileHandle, Registry};
use sipprofile::profile::{TypeInfo, keys};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Every event a registry's observer heard.
#[derive(Default)]
struct Heard(Mutex<Vec<(u32, Event)>>);

struct Recorder(Arc<Heard>);

impl Observer for Recorder {
    fn event(&self, id: u32, event: Event) {
        self.0.0.lock().unwrap().push((id, event));
    }
    fn error(&self, _id: u32, _error: i32) {}
}

impl Heard {
    fn take(&self) -> Vec<(u32, Event)> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }

    /// Waits (bounded) until `n` events were heard.
    fn wait_for(&self, n: usize) -> Vec<(u32, Event)> {
        let t = Instant::now();
        while self.0.lock().unwrap().len() < n && t.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(5));
        }
        self.take()
    }
}

fn store(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "sipprofile-save-all-{}-{tag}-{}",
        std::process::id(),
        Instant::now().elapsed().as_nanos()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::canonicalize(&dir).unwrap().join("p.db")
}

fn open(store: &Path, managed: bool, heard: Option<&Arc<Heard>>) -> Arc<Registry> {
    let flags = Flags {
        hosting: Some(Hosting::InProcess),
        ..Flags::default()
    };
    let observer = heard.map(|h| Box::new(Recorder(h.clone())) as Box<dyn Observer>);
    Registry::open_with(Some(store), managed, observer, flags).unwrap()
}

/// Sets a handle's AOR (unsaved until a save).
fn set_aor(h: &ProfileHandle, aor: &str) {
    h.set_str(keys::USER_AOR, aor).unwrap();
}

fn aor(h: &ProfileHandle) -> String {
    h.get_str(keys::USER_AOR).unwrap()
}

fn new_profile(m: &Arc<Registry>, aor: &str) -> ProfileHandle {
    let h = m.create(&TypeInfo::ietf()).unwrap();
    set_aor(&h, aor);
    h
}

/// The stored AORs by id, as a fresh registry sees them.
fn stored(store: &Path) -> Vec<(u32, String)> {
    let r = open(store, false, None);
    let mut v: Vec<(u32, String)> = r
        .profiles()
        .unwrap()
        .iter()
        .map(|h| (h.id(), aor(h)))
        .collect();
    r.close();
    v.sort();
    v
}

#[test]
fn a_mix_of_new_and_updated_is_saved_whole_and_heard() {
    let store = store("mix");
    let m = open(&store, true, None);
    let a = new_profile(&m, "sip:a@example.test");
    let b = new_profile(&m, "sip:b@example.test");
    m.save_all(&[&a, &b]).unwrap();
    let (ida, idb) = (a.id(), b.id());
    assert!(ida > 0 && idb > ida);

    // Another registry observes (holds handles of a and b: it hears their
    // UPDATED, and CREATED of every new profile).
    let heard = Arc::new(Heard::default());
    let o = open(&store, false, Some(&heard));
    let held = o.profiles().unwrap();
    assert_eq!(held.len(), 2);

    let c = new_profile(&m, "sip:c@example.test");
    set_aor(&a, "sip:a2@example.test");
    let d = new_profile(&m, "sip:d@example.test");
    set_aor(&b, "sip:b2@example.test");
    m.save_all(&[&c, &a, &d, &b]).unwrap();
    let (idc, idd) = (c.id(), d.id());
    assert!(idc > idb && idd == idc + 1, "new ids in order: {idc} {idd}");
    assert_eq!((a.id(), b.id()), (ida, idb), "updates keep their ids");

    let mut events = heard.wait_for(4);
    events.sort_by_key(|(id, _)| *id);
    assert_eq!(
        events,
        vec![
            (ida, Event::Updated),
            (idb, Event::Updated),
            (idc, Event::Created),
            (idd, Event::Created)
        ]
    );
    // The observer's handles hold the updates.
    let by_id = |id| held.iter().find(|h| h.id() == id).map(aor).unwrap();
    assert_eq!(by_id(ida), "sip:a2@example.test");
    assert_eq!(by_id(idb), "sip:b2@example.test");

    drop(held);
    o.close();
    m.close();
    // Durable: what a restarted server reads back.
    let want = vec![
        (ida, "sip:a2@example.test".to_owned()),
        (idb, "sip:b2@example.test".to_owned()),
        (idc, "sip:c@example.test".to_owned()),
        (idd, "sip:d@example.test".to_owned()),
    ];
    assert_eq!(stored(&store), want);
}

#[test]
fn a_bad_item_in_the_middle_writes_nothing_and_says_nothing() {
    let store = store("bad");
    let m = open(&store, true, None);
    let a = new_profile(&m, "sip:a@example.test");
    let b = new_profile(&m, "sip:b@example.test");
    m.save_all(&[&a, &b]).unwrap();
    let (ida, idb) = (a.id(), b.id());
    let before = stored(&store);

    let heard = Arc::new(Heard::default());
    let o = open(&store, false, Some(&heard));
    let held = o.profiles().unwrap();

    // 1. An item the server refuses (a profile type it does not support:
    // the handle takes it, the server's check does not)
    // between a new profile and an update, with more of both after it.
    let c = new_profile(&m, "sip:c@example.test");
    set_aor(&a, "sip:a2@example.test");
    let bad = new_profile(&m, "sip:ok@example.test");
    bad.set_type(TypeInfo {
        class: 0,
        name: "a-type-name-of-thirty-chars".into(),
    })
    .unwrap();
    let d = new_profile(&m, "sip:d@example.test");
    set_aor(&b, "sip:b2@example.test");
    assert!(m.save_all(&[&c, &a, &bad, &d, &b]).is_err());
    assert_eq!((c.id(), d.id(), bad.id()), (0, 0, 0), "nothing added");

    // 2. An update of a profile destroyed meanwhile, in the middle.
    let gone = new_profile(&m, "sip:gone@example.test");
    m.save(&gone).unwrap();
    let idgone = gone.id();
    let heard_gone = heard.wait_for(1);
    assert_eq!(heard_gone, vec![(idgone, Event::Created)]);
    let other = open(&store, true, None);
    let g2 = other.profile(idgone).unwrap();
    other.destroy(&g2).unwrap();
    drop(g2);
    other.close();
    set_aor(&gone, "sip:gone2@example.test");
    assert!(m.save_all(&[&c, &a, &gone, &d, &b]).is_err());
    assert_eq!((c.id(), d.id()), (0, 0), "nothing added");

    // Nothing heard (a bounded look: the events of a batch are queued
    // before its reply, so they would be here by now).
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(heard.take(), vec![], "no event for a batch that failed");
    // The server's copies and the store are as before.
    let by_id = |id| held.iter().find(|h| h.id() == id).map(aor).unwrap();
    assert_eq!(by_id(ida), "sip:a@example.test");
    assert_eq!(by_id(idb), "sip:b@example.test");
    drop(held);
    o.close();
    assert_eq!(stored(&store), before);

    // The same batch without the bad items goes through, with the next ids.
    m.save_all(&[&c, &a, &d, &b]).unwrap();
    assert_eq!((c.id(), d.id()), (idgone + 1, idgone + 2));
    m.close();
    assert_eq!(stored(&store).len(), 4);
}
