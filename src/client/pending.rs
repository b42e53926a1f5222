//! The callbacks one observing registry has not run yet: bounded, and
//! coalesced per profile, so that a callback that does not return pins a
//! bounded amount of memory however many events the server sends.
//!
//! An entry is a callback and nothing more (24 bytes): the profile's data
//! and registration state went into the registry's handles when the event
//! arrived (`Registry::on_event`), before its callback was queued, so no
//! queued event holds a copy of a profile.
//!
//! Always, when an event is queued (nothing the observer could tell apart is
//! lost, and what runs is always a subsequence of what happened, in order):
//! - an UPDATED of a profile with an UPDATED already waiting is that one:
//!   when the waiting callback runs, the handles already show the newest
//!   data (contract §2: the data is shown before the callback runs);
//! - a REGISTERED, DEREGISTERED or ATTEMPT_FAILED equal to the profile's
//!   newest waiting callback other than UPDATED is that one: the state did
//!   not change in between, as far as the observer is told;
//! - CREATED, DESTROYED, FORCIBLY_DISABLED and errors are always queued.
//!
//! When, after that, more callbacks wait than the queue's limit (at first
//! [`MAX_PENDING`]: an observer that far behind is stuck, or the events are
//! a flood), the queue is compacted: each profile keeps the newest callback
//! of each kind (CREATED, UPDATED, REGISTERED, DEREGISTERED, DESTROYED,
//! FORCIBLY_DISABLED, ATTEMPT_FAILED, error), still in the order they
//! happened, and a warning says how many were merged. The observer still
//! hears every kind of thing that happened to each profile, and last the
//! newest (so the last callback of a profile matches what its handles
//! show); it loses only how many times the same kind repeated (a profile
//! that lost and regained its registration five times is told once, an
//! error that recurred is told once, with its newest code). CREATED and
//! DESTROYED happen once per profile id (ids are never reused), so they are
//! never merged.
//!
//! Bound: after a compaction at most 8 callbacks per profile wait, and the
//! next one comes when the count doubles (or reaches [`MAX_PENDING`]), so
//! at most `max(MAX_PENDING, 16 × P) + 1` entries wait, P being the profiles
//! with a callback waiting (those the registry holds, and those created
//! since the callback stuck). In bytes: `pinned_bytes`.

use crate::log;
use crate::protocol::{Delivery, Event};
use std::collections::hash_map::Entry as MapEntry;
use std::collections::{HashMap, HashSet, VecDeque};

/// Callbacks that may wait before the first compaction.
pub(crate) const MAX_PENDING: usize = 4096;
/// Kinds of callback a profile can have (each kept once in a compaction).
pub(crate) const KINDS: usize = 8;

/// The most memory, in bytes, one registry's waiting callbacks can take
/// with `profiles` profiles having a callback waiting: the entries (a
/// ring buffer that may be twice as large as what it holds), and one tally
/// per profile (a hash map slot and its control byte, at most three slots
/// per entry). A compaction briefly needs about as much again.
/// (Only the tests and the README use it: nothing is allocated up front.)
#[cfg(test)]
pub(crate) const fn pinned_bytes(profiles: usize) -> usize {
    let entries = if MAX_PENDING > 2 * KINDS * profiles {
        MAX_PENDING
    } else {
        2 * KINDS * profiles
    } + 1;
    let entry = std::mem::size_of::<Pending>();
    let tally = std::mem::size_of::<(u32, Tally)>() + 1;
    2 * entries * entry + 3 * profiles * tally
}

/// What a waiting callback reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Event(Event),
    Error(i32),
}

impl Kind {
    /// Its class for compaction: one callback of each is kept per profile.
    fn class(self) -> u8 {
        match self {
            Kind::Event(e) => e as u8,
            Kind::Error(_) => KINDS as u8 - 1,
        }
    }
}

/// One waiting callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pending {
    pub id: u32,
    pub kind: Kind,
    /// When the server published the event (0 for errors).
    pub published_ns: u64,
}

impl Pending {
    /// The callback of a delivery, without its snapshot (already applied
    /// to the handles).
    pub(crate) fn of(d: &Delivery) -> Pending {
        match *d {
            Delivery::Event {
                id,
                event,
                published_ns,
                ..
            } => Pending {
                id,
                kind: Kind::Event(event),
                published_ns,
            },
            Delivery::Error { id, code, .. } => Pending {
                id,
                kind: Kind::Error(code),
                published_ns: 0,
            },
        }
    }

    /// As a delivery for `Registry::deliver` (no snapshot: the handles
    /// hold the data).
    pub(crate) fn delivery(self) -> Delivery {
        match self.kind {
            Kind::Event(event) => Delivery::Event {
                id: self.id,
                event,
                snapshot: None,
                published_ns: self.published_ns,
            },
            Kind::Error(code) => Delivery::Error {
                id: self.id,
                code,
                snapshot: None,
            },
        }
    }
}

/// What waits for one profile.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    /// Its waiting callbacks.
    waiting: u32,
    /// An UPDATED is among them.
    updated: bool,
    /// Its waiting callbacks other than UPDATED, and the newest of those.
    others: u32,
    newest_other: Option<Kind>,
}

/// What [`Queue::push`] did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Pushed {
    /// A waiting callback covers it.
    Covered,
    Queued,
    /// Queued, then the queue was compacted: a note for the log, to be
    /// written once no lock is held (a log callback is the application's).
    Compacted(Compaction),
}

/// A compaction, for the log.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Compaction {
    before: usize,
    after: usize,
    profiles: usize,
    /// The first since the queue was last empty.
    first: bool,
}

impl Compaction {
    /// Once per stall as a warning, then as debug lines.
    pub(crate) fn log(&self) {
        let text = format!(
            "an observer is {} callbacks behind (a callback that does not return?): \
             repeated callbacks of a profile merged into its newest of each kind, {} left \
             for {} profiles",
            self.before, self.after, self.profiles
        );
        if self.first {
            log::warn(&text);
        } else {
            log::debug(&text);
        }
    }
}

/// The waiting callbacks of one registry, in order.
pub(crate) struct Queue {
    entries: VecDeque<Pending>,
    profiles: HashMap<u32, Tally>,
    /// More than this many waiting: compact.
    limit: usize,
    /// A compaction was logged as a warning since the queue was last empty.
    warned: bool,
}

impl Default for Queue {
    fn default() -> Self {
        Queue {
            entries: VecDeque::new(),
            profiles: HashMap::new(),
            limit: MAX_PENDING,
            warned: false,
        }
    }
}

impl Queue {
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Queues a callback, or finds it already covered by a waiting one.
    pub(crate) fn push(&mut self, p: Pending) -> Pushed {
        let t = self.profiles.entry(p.id).or_default();
        let covered = match p.kind {
            Kind::Event(Event::Updated) => t.updated,
            Kind::Event(Event::Registered | Event::Deregistered | Event::AttemptFailed) => {
                t.newest_other == Some(p.kind)
            }
            _ => false,
        };
        if covered {
            return Pushed::Covered;
        }
        Self::count(t, p.kind);
        self.entries.push_back(p);
        if self.entries.len() > self.limit {
            return Pushed::Compacted(self.compact());
        }
        Pushed::Queued
    }

    fn count(t: &mut Tally, kind: Kind) {
        t.waiting += 1;
        if kind == Kind::Event(Event::Updated) {
            t.updated = true;
        } else {
            t.others += 1;
            t.newest_other = Some(kind);
        }
    }

    /// The oldest waiting callback.
    pub(crate) fn pop(&mut self) -> Option<Pending> {
        let p = self.entries.pop_front()?;
        if let MapEntry::Occupied(mut o) = self.profiles.entry(p.id) {
            let t = o.get_mut();
            t.waiting -= 1;
            if p.kind == Kind::Event(Event::Updated) {
                t.updated = false;
            } else {
                // Callbacks leave oldest first: the newest goes last.
                t.others -= 1;
                if t.others == 0 {
                    t.newest_other = None;
                }
            }
            if t.waiting == 0 {
                o.remove();
            }
        }
        if self.entries.is_empty() {
            self.release();
        }
        Some(p)
    }

    pub(crate) fn clear(&mut self) {
        self.entries.clear();
        self.profiles.clear();
        self.release();
    }

    /// Empty: back to the first limit, and the memory of a flood returned.
    fn release(&mut self) {
        self.limit = MAX_PENDING;
        self.warned = false;
        if self.entries.capacity() > MAX_PENDING {
            self.entries = VecDeque::new();
        }
        if self.profiles.capacity() > MAX_PENDING / KINDS {
            self.profiles = HashMap::new();
        }
    }

    /// Keeps, per profile, the newest waiting callback of each kind, in
    /// their order; the next compaction comes once the count has doubled.
    fn compact(&mut self) -> Compaction {
        let before = self.entries.len();
        let mut seen = HashSet::with_capacity(self.profiles.len() * 2);
        let mut kept: Vec<Pending> = Vec::with_capacity(self.profiles.len() * 2);
        for p in self.entries.iter().rev() {
            if seen.insert((p.id, p.kind.class())) {
                kept.push(*p);
            }
        }
        kept.reverse();
        self.profiles.clear();
        for p in &kept {
            Self::count(self.profiles.entry(p.id).or_default(), p.kind);
        }
        self.entries = kept.into_iter().collect();
        self.limit = MAX_PENDING.max(2 * self.entries.len());
        Compaction {
            before,
            after: self.entries.len(),
            profiles: self.profiles.len(),
            first: !std::mem::replace(&mut self.warned, true),
        }
    }

    #[cfg(test)]
    fn kinds_of(&self, id: u32) -> Vec<Kind> {
        self.entries
            .iter()
            .filter(|p| p.id == id)
            .map(|p| p.kind)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(id: u32, e: Event) -> Pending {
        Pending {
            id,
            kind: Kind::Event(e),
            published_ns: 0,
        }
    }

    fn err(id: u32, code: i32) -> Pending {
        Pending {
            id,
            kind: Kind::Error(code),
            published_ns: 0,
        }
    }

    fn queued(p: Pushed) -> bool {
        p != Pushed::Covered
    }

    fn drain(q: &mut Queue) -> Vec<Pending> {
        std::iter::from_fn(|| q.pop()).collect()
    }

    use Event::*;

    #[test]
    fn an_entry_is_small() {
        assert!(std::mem::size_of::<Pending>() <= 24);
    }

    #[test]
    fn updates_of_one_profile_waiting_are_one_callback_at_the_first_place() {
        let mut q = Queue::default();
        assert!(queued(q.push(ev(1, Updated))));
        assert!(queued(q.push(ev(2, Updated))));
        assert!(queued(q.push(ev(1, Registered))));
        assert!(!queued(q.push(ev(1, Updated))));
        assert!(!queued(q.push(ev(2, Updated))));
        assert_eq!(
            drain(&mut q),
            vec![ev(1, Updated), ev(2, Updated), ev(1, Registered)]
        );
        // Once delivered (its callback started), a new UPDATED is queued.
        assert!(queued(q.push(ev(1, Updated))));
        assert_eq!(q.pop(), Some(ev(1, Updated)));
        assert!(queued(q.push(ev(1, Updated))));
        assert_eq!(q.len(), 1);
    }

    #[test]
    fn a_repeated_registration_state_is_one_callback_a_transition_is_kept() {
        let mut q = Queue::default();
        assert!(queued(q.push(ev(1, Registered))));
        assert!(queued(q.push(ev(1, Updated))));
        // The same state again, an UPDATED between: no transition.
        assert!(!queued(q.push(ev(1, Registered))));
        assert!(queued(q.push(ev(1, Deregistered))));
        assert!(!queued(q.push(ev(1, Deregistered))));
        assert!(queued(q.push(ev(1, Registered))));
        assert!(queued(q.push(ev(1, AttemptFailed))));
        assert!(!queued(q.push(ev(1, AttemptFailed))));
        // Another profile's state does not cover this one's.
        assert!(queued(q.push(ev(2, AttemptFailed))));
        assert_eq!(
            q.kinds_of(1),
            [Registered, Updated, Deregistered, Registered, AttemptFailed].map(Kind::Event)
        );
        // Once the newest state left (its callback ran), it is queued again.
        drain(&mut q);
        assert!(queued(q.push(ev(1, AttemptFailed))));
    }

    #[test]
    fn created_destroyed_forcibly_disabled_and_errors_are_never_merged_below_the_limit() {
        let mut q = Queue::default();
        let all = [
            ev(1, Created),
            err(1, 403),
            err(1, 403),
            ev(1, ForciblyDisabled),
            ev(1, ForciblyDisabled),
            err(1, 408),
            ev(1, Destroyed),
        ];
        for p in all {
            assert!(queued(q.push(p)));
        }
        assert_eq!(drain(&mut q), all);
    }

    #[test]
    fn an_error_separates_equal_states() {
        let mut q = Queue::default();
        q.push(ev(1, Deregistered));
        q.push(err(1, 503));
        assert!(queued(q.push(ev(1, Deregistered))));
    }

    /// A flapping registration (the one event stream that needs no
    /// application call) with an observer that never returns.
    #[test]
    fn a_flapping_profile_behind_a_stuck_callback_stays_bounded_and_ends_in_its_state() {
        let mut q = Queue::default();
        let mut most = 0;
        for i in 0..100_000u32 {
            q.push(ev(7, if i % 2 == 0 { Registered } else { Deregistered }));
            q.push(ev(7, Updated));
            q.push(ev(7, AttemptFailed));
            most = most.max(q.len());
        }
        assert!(most <= MAX_PENDING + 1, "{most}");
        let last = drain(&mut q);
        // The newest event is last; both states are still told.
        assert_eq!(last.last(), Some(&ev(7, AttemptFailed)));
        let kinds: Vec<Kind> = last.iter().map(|p| p.kind).collect();
        assert!(kinds.contains(&Kind::Event(Registered)));
        assert!(kinds.contains(&Kind::Event(Deregistered)));
        assert!(kinds.contains(&Kind::Event(Updated)));
    }

    #[test]
    fn compaction_keeps_the_newest_of_each_kind_per_profile_in_order() {
        let mut q = Queue::default();
        // Profile 1: created, errors and force-disables repeated (each after
        // an enable by some application), then destroyed. Profile 2 flaps.
        q.push(ev(1, Created));
        let mut n = 0;
        while q.len() < MAX_PENDING - 3 {
            q.push(err(1, 400 + (n % 50)));
            q.push(ev(2, if n % 2 == 0 { Registered } else { Deregistered }));
            q.push(ev(1, ForciblyDisabled));
            n += 1;
        }
        q.push(err(1, 999));
        q.push(ev(2, Updated));
        q.push(ev(1, Destroyed));
        q.push(ev(2, Registered)); // over the limit: compacts
        assert!(q.len() <= 2 * KINDS, "{}", q.len());
        assert_eq!(
            q.kinds_of(1),
            vec![
                Kind::Event(Created),
                Kind::Event(ForciblyDisabled),
                Kind::Error(999),
                Kind::Event(Destroyed)
            ]
        );
        assert_eq!(
            q.kinds_of(2),
            [Deregistered, Updated, Registered].map(Kind::Event)
        );
        // The coalescing still works on what is left.
        assert!(!queued(q.push(ev(2, Updated))));
        assert!(!queued(q.push(ev(2, Registered))));
        assert!(queued(q.push(ev(2, Deregistered))));
    }

    /// Many distinct profiles: CREATED is never merged, so the queue grows
    /// with the profiles, within 2 × KINDS entries each.
    #[test]
    fn many_profiles_stay_within_the_bound_and_keep_every_created_and_destroyed() {
        let mut q = Queue::default();
        let profiles = 3 * MAX_PENDING as u32;
        let mut most = 0;
        for round in 0..4u32 {
            for id in 1..=profiles {
                match round {
                    0 => q.push(ev(id, Created)),
                    3 => q.push(ev(id, Destroyed)),
                    _ => {
                        q.push(ev(id, Updated));
                        q.push(ev(id, Registered));
                        q.push(err(id, 403 + round as i32))
                    }
                };
                most = most.max(q.len());
            }
        }
        let bound = MAX_PENDING.max(2 * KINDS * profiles as usize) + 1;
        assert!(most <= bound, "{most} > {bound}");
        let mut by_profile: HashMap<u32, Vec<Kind>> = HashMap::new();
        for p in drain(&mut q) {
            by_profile.entry(p.id).or_default().push(p.kind);
        }
        for id in 1..=profiles {
            let k = &by_profile[&id];
            assert_eq!(k.first(), Some(&Kind::Event(Created)), "{id}");
            assert_eq!(k.last(), Some(&Kind::Event(Destroyed)), "{id}");
            assert!(k.contains(&Kind::Error(405)), "{id}: {k:?}");
        }
        // Empty again: the flood's memory is returned.
        assert!(q.entries.capacity() <= MAX_PENDING);
        assert_eq!(q.limit, MAX_PENDING);
    }

    #[test]
    fn a_delivery_loses_its_snapshot_and_keeps_its_callback() {
        let d = Delivery::Error {
            id: 3,
            code: 403,
            snapshot: None,
        };
        assert_eq!(Pending::of(&d), err(3, 403));
        let e = Pending {
            id: 4,
            kind: Kind::Event(Updated),
            published_ns: 77,
        };
        assert_eq!(Pending::of(&e.delivery()), e);
    }

    #[test]
    fn the_documented_bound_is_what_the_constants_give() {
        // 24-byte entries: 4,097 × 24 × 2 = 192 KiB whatever the profiles
        // up to 256, plus 75 bytes of tally each (211 KiB at 256);
        // 2 × 16 × 24 + 3 × 25 = 843 bytes per profile beyond (README).
        assert_eq!(std::mem::size_of::<Pending>(), 24);
        assert_eq!(std::mem::size_of::<(u32, Tally)>(), 24);
        assert_eq!(pinned_bytes(0), 196_656);
        assert_eq!(pinned_bytes(256), 196_656 + 256 * 75);
        assert!(pinned_bytes(256) <= 211 << 10);
        assert_eq!(pinned_bytes(10_000), 160_001 * 48 + 750_000);
    }
}
