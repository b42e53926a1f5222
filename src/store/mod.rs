//! The profile store: one SQLite file per store path (rusqlite, bundled
//! SQLite), created with mode 0600, WAL journal, synchronous writes, a
//! versioned schema and an id counter that never hands out an id twice
//! (contract §7.1). Passwords are stored here and nowhere else, so the file
//! is this user's alone: never reached through a symbolic link, never another
//! user's, never readable by others (a wider mode is tightened to 0600, with
//! a warning), in directories created 0700.

use crate::error::with_context;
use crate::profile::ProfileData;
use crate::{Error, Result};
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use std::fs::{DirBuilder, Metadata, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

pub const SCHEMA_VERSION: i64 = 1;
const APPLICATION_ID: i64 = 0x5349_5050; // "SIPP"

pub struct Store {
    conn: Connection,
}

/// The store path when the caller gives none: `$SIPPROFILE_STORE`, else
/// `$XDG_DATA_HOME/sipprofile/profiles.db` (`~/.local/share/...` when unset).
pub fn default_path() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("SIPPROFILE_STORE").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    let base = match std::env::var_os("XDG_DATA_HOME").filter(|p| !p.is_empty()) {
        Some(d) => PathBuf::from(d),
        None => {
            let home = std::env::var_os("HOME").ok_or(Error::NotFound)?;
            PathBuf::from(home).join(".local/share")
        }
    };
    Ok(base.join("sipprofile").join("profiles.db"))
}

impl Store {
    /// Opens the store at `path`, creating it (mode 0600, and its missing
    /// directories 0700) if missing. A file that is not a sipprofile store, a
    /// symbolic link, or another user's file is refused and left untouched;
    /// one readable or writable by others is tightened to 0600.
    pub fn open(path: &Path) -> Result<Store> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| {
                    refuse(
                        io_error(&e),
                        path,
                        &format!("cannot create its directory {}: {e}", dir.display()),
                    )
                })?;
        }
        // An existing file is only looked at (lstat), never opened here:
        // closing a descriptor of a file SQLite has open elsewhere in this
        // process would drop that connection's locks.
        let checked = match std::fs::symlink_metadata(path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => create(path)?,
            Err(e) => return Err(refuse(io_error(&e), path, &format!("cannot stat it: {e}"))),
        };
        refuse_unsafe(path, &checked, current_uid())?;
        // Companions SQLite opens by name next to the file: the same rules.
        let mut files = vec![(path.to_owned(), checked.clone())];
        for suffix in ["-wal", "-shm", "-journal"] {
            let companion = PathBuf::from(format!("{}{suffix}", path.display()));
            match std::fs::symlink_metadata(&companion) {
                Ok(meta) => {
                    refuse_unsafe(&companion, &meta, current_uid())?;
                    files.push((companion, meta));
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(refuse(
                        io_error(&e),
                        &companion,
                        &format!("cannot stat it: {e}"),
                    ));
                }
            }
        }
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::default() | OpenFlags::SQLITE_OPEN_NOFOLLOW,
        )
        .map_err(|e| {
            let error = Error::from(e);
            let why = crate::error::message_for(error.code());
            refuse(error, path, &format!("cannot open it: {why}"))
        })?;
        // The file SQLite opened is the one checked (not swapped meanwhile).
        let now = std::fs::symlink_metadata(path)
            .map_err(|e| refuse(io_error(&e), path, &format!("cannot stat it: {e}")))?;
        if (now.dev(), now.ino()) != (checked.dev(), checked.ino()) {
            return Err(refuse(
                Error::AccessDenied,
                path,
                "was replaced while being opened; refusing it",
            ));
        }
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        let app_id: i64 = conn
            .query_row("PRAGMA application_id", [], |r| r.get(0))
            .map_err(|e| {
                crate::log::error(&format!("{}: not a sipprofile store ({e})", path.display()));
                refuse(
                    Error::NotSupported,
                    path,
                    &format!("is not a sipprofile store ({e}); left untouched"),
                )
            })?;
        let tables: i64 = conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))?;
        if app_id != APPLICATION_ID && !(app_id == 0 && tables == 0) {
            crate::log::error(&format!(
                "{}: not a sipprofile store; left untouched",
                path.display()
            ));
            return Err(refuse(
                Error::NotSupported,
                path,
                "is another application's SQLite database, not a sipprofile store; left untouched",
            ));
        }
        // A sipprofile store (or a new one): only now tightened, so that a
        // foreign file is left untouched.
        for (file, meta) in &files {
            tighten(file, meta)?;
        }
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // Deleted or replaced rows (old passwords) are overwritten with
        // zeros within their page, not left in the file; FAST skips zeroing
        // whole freed pages, which cost saves a measurable share of speed.
        conn.pragma_update(None, "secure_delete", "FAST")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        // Reads through a mapping of the file, not a system call per page
        // (a start reads every profile: 100,000 take about 70 MB).
        conn.pragma_update(None, "mmap_size", 1i64 << 30)?;
        let mut store = Store { conn };
        store.migrate().map_err(|e| {
            let mut why = crate::error::message_for(e.code());
            if why.is_empty() {
                why = e.to_string();
            }
            refuse(e, path, &why)
        })?;
        Ok(store)
    }

    fn migrate(&mut self) -> Result<()> {
        let version: i64 = self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version > SCHEMA_VERSION {
            crate::log::error("store written by a newer sipprofile; refusing to open");
            return Err(with_context(
                Error::NotSupported,
                format!(
                    "was written by a newer sipprofile (schema {version}, this one reads up to {SCHEMA_VERSION})"
                ),
            ));
        }
        if version == 0 {
            let tx = self.conn.transaction()?;
            tx.execute_batch(&format!(
                "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
                 INSERT INTO meta VALUES ('next_id', 1);
                 CREATE TABLE profiles (id INTEGER PRIMARY KEY, data TEXT NOT NULL);
                 PRAGMA application_id = {APPLICATION_ID};
                 PRAGMA user_version = {SCHEMA_VERSION};"
            ))?;
            tx.commit()?;
        }
        Ok(())
    }

    /// Every stored profile, by id. The texts are read in one pass, then
    /// parsed on as many threads as there are cores (100,000 profiles: the
    /// parsing is most of a server's start).
    pub fn load_all(&self) -> Result<Vec<ProfileData>> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, data FROM profiles ORDER BY id")?;
        // Every text into one buffer (one allocation, not one per profile),
        // wiped once parsed: the texts hold the passwords.
        let mut buf = Zeroizing::new(Vec::<u8>::new());
        let mut spans: Vec<(u32, usize, usize)> = Vec::new();
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let id: u32 = r.get(0)?;
            let text = r.get_ref(1)?.as_bytes().map_err(|_| Error::General)?;
            if buf.len() + text.len() > buf.capacity() {
                // Grown by hand so that no unwiped copy is left behind.
                let mut bigger = Zeroizing::new(Vec::with_capacity(
                    (buf.capacity() * 2)
                        .max(buf.len() + text.len())
                        .max(1 << 16),
                ));
                bigger.extend_from_slice(&buf);
                buf = bigger;
            }
            spans.push((id, buf.len(), text.len()));
            buf.extend_from_slice(text);
        }
        let texts: Vec<(u32, &[u8])> = spans
            .iter()
            .map(|&(id, at, len)| (id, &buf[at..at + len]))
            .collect();
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .clamp(1, 8);
        let chunk = texts.len().div_ceil(threads).max(4096);
        let parse = |part: &[(u32, &[u8])]| -> Vec<ProfileData> {
            let mut out = Vec::with_capacity(part.len());
            for (id, json) in part {
                match serde_json::from_slice::<ProfileData>(json) {
                    Ok(mut p) => {
                        p.id = *id;
                        out.push(p);
                    }
                    Err(e) => crate::log::error(&format!("profile {id} unreadable, skipped: {e}")),
                }
            }
            out
        };
        if texts.len() <= chunk {
            return Ok(parse(&texts));
        }
        let parts: Vec<Vec<ProfileData>> = std::thread::scope(|s| {
            let workers: Vec<_> = texts
                .chunks(chunk)
                .map(|part| s.spawn(move || parse(part)))
                .collect();
            workers
                .into_iter()
                .map(|w| w.join().unwrap_or_default())
                .collect()
        });
        Ok(parts.into_iter().flatten().collect())
    }

    /// Adds a new profile: takes the next id from the counter, writes it
    /// durably, makes it the default if it is the first. Returns the id.
    pub fn add(&mut self, data: &ProfileData) -> Result<u32> {
        let mut data = data.clone();
        data.id = 0;
        Ok(self.save_all(&[&data])?[0])
    }

    /// Writes many profiles in one durable transaction, all or nothing:
    /// each with id 0 is added (ids from the counter, in order), each other
    /// one replaces the stored profile of its id (`NotFound` if there is
    /// none). The first added becomes the default if the store has none,
    /// and any that asks to be the default does (the last one wins). On any
    /// failure the transaction rolls back: nothing is written. Returns the
    /// ids, in order.
    pub fn save_all(&mut self, profiles: &[&ProfileData]) -> Result<Vec<u32>> {
        let tx = self.conn.transaction()?;
        let mut next: i64 =
            tx.query_row("SELECT value FROM meta WHERE key='next_id'", [], |r| {
                r.get(0)
            })?;
        let mut default = tx
            .query_row("SELECT value FROM meta WHERE key='default_id'", [], |r| {
                r.get::<_, i64>(0)
            })
            .optional()?;
        let before = (next, default);
        let mut ids = Vec::with_capacity(profiles.len());
        {
            let mut insert =
                tx.prepare_cached("INSERT INTO profiles (id, data) VALUES (?1, ?2)")?;
            let mut update = tx.prepare_cached("UPDATE profiles SET data = ?2 WHERE id = ?1")?;
            // One buffer for every item's text, its whole capacity wiped
            // when dropped (it holds the passwords).
            let mut json = Zeroizing::new(Vec::<u8>::with_capacity(1024));
            for data in profiles {
                let id = if data.id == 0 {
                    let id = u32::try_from(next).map_err(|_| Error::Overflow)?;
                    if id == u32::MAX {
                        return Err(Error::Overflow);
                    }
                    next += 1;
                    id
                } else {
                    data.id
                };
                json.clear();
                if data.id == 0 {
                    // The text carries its id too.
                    let mut stored = (*data).clone();
                    stored.id = id;
                    serde_json::to_writer(&mut *json, &stored)
                } else {
                    serde_json::to_writer(&mut *json, data)
                }
                .map_err(|_| Error::General)?;
                let text = std::str::from_utf8(&json).map_err(|_| Error::General)?;
                if data.id == 0 {
                    insert.execute(params![id, text])?;
                    if default.is_none() {
                        default = Some(i64::from(id));
                    }
                } else if update.execute(params![id, text])? == 0 {
                    return Err(Error::NotFound);
                }
                if data.make_default {
                    default = Some(i64::from(id));
                }
                ids.push(id);
            }
        }
        if next != before.0 {
            tx.execute(
                "UPDATE meta SET value = ?1 WHERE key='next_id'",
                params![next],
            )?;
        }
        if default != before.1
            && let Some(d) = default
        {
            tx.execute(
                "INSERT OR REPLACE INTO meta VALUES ('default_id', ?1)",
                params![d],
            )?;
        }
        tx.commit()?;
        Ok(ids)
    }

    /// Replaces a stored profile, durably (`NotFound` if there is none).
    pub fn update(&mut self, data: &ProfileData) -> Result<()> {
        if data.id == 0 {
            return Err(Error::NotFound);
        }
        self.save_all(&[data]).map(|_| ())
    }

    /// Deletes a profile; if it was the default, the lowest remaining id
    /// becomes the default (ref §5.9).
    pub fn delete(&mut self, id: u32) -> Result<()> {
        let tx = self.conn.transaction()?;
        let n = tx.execute("DELETE FROM profiles WHERE id = ?1", params![id])?;
        if n == 0 {
            return Err(Error::NotFound);
        }
        let default: Option<i64> = tx
            .query_row("SELECT value FROM meta WHERE key='default_id'", [], |r| {
                r.get(0)
            })
            .optional()?;
        if default == Some(i64::from(id)) {
            let next: Option<i64> = tx
                .query_row("SELECT min(id) FROM profiles", [], |r| r.get(0))
                .optional()?
                .flatten();
            match next {
                Some(n) => tx.execute(
                    "UPDATE meta SET value = ?1 WHERE key='default_id'",
                    params![n],
                )?,
                None => tx.execute("DELETE FROM meta WHERE key='default_id'", [])?,
            };
        }
        tx.commit()?;
        Ok(())
    }

    pub fn default_id(&self) -> Result<Option<u32>> {
        Ok(self
            .conn
            .query_row("SELECT value FROM meta WHERE key='default_id'", [], |r| {
                r.get::<_, u32>(0)
            })
            .optional()?)
    }
}

/// `error`, described as "store PATH: WHY" for `sip_last_error_message`.
fn refuse(error: Error, path: &Path, why: &str) -> Error {
    with_context(error, format!("store {}: {why}", path.display()))
}

fn io_error(e: &std::io::Error) -> Error {
    match e.kind() {
        std::io::ErrorKind::PermissionDenied => Error::AccessDenied,
        _ => Error::General,
    }
}

fn symlink_refused(path: &Path) -> Error {
    refuse(
        Error::AccessDenied,
        path,
        "is a symbolic link; a store is never opened through one: \
         give the real file's path instead (store path or $SIPPROFILE_STORE)",
    )
}

fn current_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Creates the store file, mode 0600 from the start (SQLite gives its -wal
/// and -shm files the same mode), never through a symbolic link.
fn create(path: &Path) -> Result<Metadata> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| match e.kind() {
            // A link (dangling or not) or a file that appeared meanwhile.
            std::io::ErrorKind::AlreadyExists => match std::fs::symlink_metadata(path) {
                Ok(m) if m.file_type().is_symlink() => symlink_refused(path),
                _ => refuse(Error::AccessDenied, path, "appeared while being created"),
            },
            _ => refuse(io_error(&e), path, &format!("cannot create it: {e}")),
        })?;
    file.metadata()
        .map_err(|e| refuse(Error::General, path, &format!("cannot stat it: {e}")))
}

/// Refuses a store file (or companion) that is a symbolic link, not a
/// regular file, or not `uid`'s. `meta` is from lstat.
fn refuse_unsafe(path: &Path, meta: &Metadata, uid: u32) -> Result<()> {
    if meta.file_type().is_symlink() {
        return Err(symlink_refused(path));
    }
    if !meta.file_type().is_file() {
        return Err(refuse(
            Error::NotSupported,
            path,
            "is not a regular file; give the path of a store file",
        ));
    }
    if meta.uid() != uid {
        return Err(refuse(
            Error::AccessDenied,
            path,
            &format!(
                "belongs to uid {}, not to this user (uid {uid}): a store holds passwords, \
                 so only its owner may use it; use a store of your own (or chown it)",
                meta.uid()
            ),
        ));
    }
    Ok(())
}

/// Tightens a store file (or companion) that others may read or write to
/// 0600, with a warning. `meta` is from lstat.
fn tighten(path: &Path, meta: &Metadata) -> Result<()> {
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        // By path: lstat just said it is our regular file, not a link.
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(|e| {
            refuse(
                io_error(&e),
                path,
                &format!(
                    "has mode {mode:04o}, open to other users, and cannot be changed to 0600: {e}"
                ),
            )
        })?;
        crate::log::warn(&format!(
            "store {}: had mode {mode:04o}, open to other users; changed it to 0600",
            path.display()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::TypeInfo;
    use std::os::unix::fs::PermissionsExt;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "sipprofile-store-{}-{}-{name}",
            std::process::id(),
            crate::random::hex_token(4)
        ));
        std::fs::create_dir_all(&d).unwrap();
        d.join("profiles.db")
    }

    #[test]
    fn created_0600_wal_and_versioned() {
        let p = tmp("mode");
        let s = Store::open(&p).unwrap();
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let jm: String = s
            .conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(jm, "wal");
        let v: i64 = s
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, SCHEMA_VERSION);
    }

    #[test]
    fn ids_never_reused_and_default_moves() {
        let p = tmp("ids");
        let mut s = Store::open(&p).unwrap();
        let d = ProfileData::new(TypeInfo::ietf());
        let a = s.add(&d).unwrap();
        let b = s.add(&d).unwrap();
        assert_eq!((a, b), (1, 2));
        assert_eq!(s.default_id().unwrap(), Some(1));
        s.delete(b).unwrap();
        s.delete(a).unwrap();
        assert_eq!(s.default_id().unwrap(), None);
        drop(s);
        let mut s = Store::open(&p).unwrap();
        assert_eq!(s.add(&d).unwrap(), 3);
        assert_eq!(s.default_id().unwrap(), Some(3));
    }

    #[test]
    fn data_survives_reopen_with_password() {
        let p = tmp("persist");
        let mut s = Store::open(&p).unwrap();
        let mut d = ProfileData::new(TypeInfo::ietf());
        d.aor = "sip:a@b".into();
        d.registrar.password = "pw".into();
        d.ext_u32.insert(700, 7);
        let id = s.add(&d).unwrap();
        drop(s);
        let s = Store::open(&p).unwrap();
        let all = s.load_all().unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].id, id);
        assert_eq!(all[0].registrar.password, "pw");
        assert_eq!(all[0].ext_u32.get(&700), Some(&7));
    }

    fn count(s: &Store) -> (i64, i64, Option<i64>) {
        let rows = s
            .conn
            .query_row("SELECT count(*) FROM profiles", [], |r| r.get(0))
            .unwrap();
        let next = s
            .conn
            .query_row("SELECT value FROM meta WHERE key='next_id'", [], |r| {
                r.get(0)
            })
            .unwrap();
        (rows, next, s.default_id().unwrap().map(i64::from))
    }

    #[test]
    fn save_all_mixes_new_and_updates_all_or_nothing() {
        let p = tmp("save-all");
        let mut s = Store::open(&p).unwrap();
        let mut a = ProfileData::new(TypeInfo::ietf());
        a.aor = "sip:a@x".into();
        a.id = s.add(&a).unwrap();
        let mut b = a.clone();
        b.id = 0;
        b.aor = "sip:b@x".into();
        a.aor = "sip:a2@x".into();
        a.make_default = false;
        let mut c = b.clone();
        c.aor = "sip:c@x".into();
        c.make_default = true;
        // New, update, new (made the default): one transaction.
        let ids = s.save_all(&[&b, &a, &c]).unwrap();
        assert_eq!(ids, vec![2, 1, 3]);
        assert_eq!(count(&s), (3, 4, Some(3)));
        // A failing item in the middle (an update of an id not stored)
        // leaves rows, counter and default as they were.
        let mut missing = a.clone();
        missing.id = 99;
        let mut d = b.clone();
        d.make_default = true;
        a.aor = "sip:a3@x".into();
        assert_eq!(
            s.save_all(&[&d, &a, &missing, &d]).unwrap_err(),
            Error::NotFound
        );
        assert_eq!(count(&s), (3, 4, Some(3)));
        drop(s);
        let s = Store::open(&p).unwrap();
        let aors: Vec<(u32, String)> = s
            .load_all()
            .unwrap()
            .into_iter()
            .map(|p| (p.id, p.aor))
            .collect();
        assert_eq!(
            aors,
            vec![
                (1, "sip:a2@x".into()),
                (2, "sip:b@x".into()),
                (3, "sip:c@x".into())
            ]
        );
    }

    #[test]
    fn many_profiles_load_back_in_order() {
        // More than one parsing thread's share (4,096).
        let p = tmp("many");
        let mut s = Store::open(&p).unwrap();
        let all: Vec<ProfileData> = (1..=9000)
            .map(|i| {
                let mut d = ProfileData::new(TypeInfo::ietf());
                d.aor = format!("sip:user{i}@x");
                d.registrar.password = format!("pw{i}").into();
                d
            })
            .collect();
        s.save_all(&all.iter().collect::<Vec<_>>()).unwrap();
        drop(s);
        let loaded = Store::open(&p).unwrap().load_all().unwrap();
        assert_eq!(loaded.len(), 9000);
        for (i, d) in loaded.iter().enumerate() {
            assert_eq!(d.id as usize, i + 1);
            assert_eq!(d.aor, format!("sip:user{}@x", i + 1));
            assert_eq!(d.registrar.password, format!("pw{}", i + 1).as_str());
        }
    }

    #[test]
    fn foreign_file_refused_and_untouched() {
        let p = tmp("foreign");
        std::fs::write(&p, b"this is not a database at all, just text").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(Store::open(&p).is_err());
        assert_eq!(
            std::fs::read(&p).unwrap(),
            b"this is not a database at all, just text"
        );
        assert_eq!(mode_of(&p), 0o644, "mode untouched too");
    }

    fn refusal(r: Result<Store>) -> (Error, String) {
        let e = r.err().expect("refused");
        let m = crate::error::message_for(e.code());
        assert!(!m.is_empty(), "a message");
        (e, m)
    }

    fn mode_of(p: &Path) -> u32 {
        std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn symlink_never_followed() {
        let real = tmp("link-target");
        drop(Store::open(&real).unwrap());
        let before = std::fs::read(&real).unwrap();
        let link = real.with_file_name("link.db");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let (e, m) = refusal(Store::open(&link));
        assert_eq!(e, Error::AccessDenied);
        assert!(
            m.contains(&link.display().to_string()) && m.contains("symbolic link"),
            "{m}"
        );
        assert!(m.contains("real file's path"), "says what to change: {m}");
        assert_eq!(std::fs::read(&real).unwrap(), before);
        // A dangling link: nothing is created at its target.
        let target = real.with_file_name("nowhere.db");
        let dangling = real.with_file_name("dangling.db");
        std::os::unix::fs::symlink(&target, &dangling).unwrap();
        let (e, m) = refusal(Store::open(&dangling));
        assert_eq!(e, Error::AccessDenied);
        assert!(m.contains("symbolic link"), "{m}");
        assert!(!target.exists());
        // A companion SQLite would open by name: refused the same way.
        let p = tmp("wal-link");
        drop(Store::open(&p).unwrap());
        let wal = PathBuf::from(format!("{}-wal", p.display()));
        let _ = std::fs::remove_file(&wal);
        std::os::unix::fs::symlink(&target, &wal).unwrap();
        let (_, m) = refusal(Store::open(&p));
        assert!(m.contains("-wal") && m.contains("symbolic link"), "{m}");
    }

    #[test]
    fn another_users_file_refused() {
        let p = tmp("owner");
        drop(Store::open(&p).unwrap());
        let meta = std::fs::symlink_metadata(&p).unwrap();
        let other = current_uid().wrapping_add(1);
        let e = refuse_unsafe(&p, &meta, other).unwrap_err();
        assert_eq!(e, Error::AccessDenied);
        let m = crate::error::message_for(e.code());
        assert!(
            m.contains(&p.display().to_string())
                && m.contains(&format!("uid {}", current_uid()))
                && m.contains("use a store of your own"),
            "{m}"
        );
        // As root (CI), a real file of another user, through the public API.
        if current_uid() == 0 {
            let q = tmp("owner-real");
            drop(Store::open(&q).unwrap());
            std::os::unix::fs::chown(&q, Some(65534), Some(65534)).unwrap();
            let (e, m) = refusal(Store::open(&q));
            assert_eq!(e, Error::AccessDenied);
            assert!(m.contains("belongs to uid 65534"), "{m}");
        }
    }

    #[test]
    fn wider_mode_tightened_with_a_warning() {
        let p = tmp("wide");
        drop(Store::open(&p).unwrap());
        let wal = PathBuf::from(format!("{}-wal", p.display()));
        std::fs::write(&wal, b"").unwrap();
        for f in [&p, &wal] {
            std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let sink = log.clone();
        crate::log::set_sink(
            Some(Box::new(move |_, m| {
                sink.lock().unwrap().push(m.to_owned())
            })),
            crate::log::WARN,
        );
        let s = Store::open(&p);
        crate::log::set_sink(None, 0);
        drop(s.unwrap());
        assert_eq!(mode_of(&p), 0o600);
        if wal.exists() {
            assert_eq!(mode_of(&wal), 0o600);
        }
        let lines = log.lock().unwrap().clone();
        let name = p.display().to_string();
        assert!(
            lines
                .iter()
                .any(|l| l.contains(&name) && l.contains("0644") && l.contains("0600")),
            "{lines:?}"
        );
    }

    #[test]
    fn new_directories_are_0700() {
        let base = tmp("dirs").with_file_name("new");
        let p = base.join("deeper").join("profiles.db");
        drop(Store::open(&p).unwrap());
        assert_eq!(mode_of(&base), 0o700);
        assert_eq!(mode_of(p.parent().unwrap()), 0o700);
        assert_eq!(mode_of(&p), 0o600);
    }

    #[test]
    fn open_failures_name_the_path_and_reason() {
        let p = tmp("foreign-message");
        std::fs::write(&p, b"this is not a database at all, just text").unwrap();
        let (e, m) = refusal(Store::open(&p));
        assert_eq!(e, Error::NotSupported);
        assert!(
            m.starts_with(&format!("store {}:", p.display()))
                && m.contains("not a sipprofile store"),
            "{m}"
        );
        let dir = tmp("a-directory").with_file_name("is-a-dir.db");
        std::fs::create_dir_all(&dir).unwrap();
        let (_, m) = refusal(Store::open(&dir));
        assert!(m.contains("not a regular file"), "{m}");
    }

    #[test]
    fn a_replaced_password_leaves_no_trace_in_the_file() {
        let p = tmp("secure-delete");
        let mut s = Store::open(&p).unwrap();
        let mut d = ProfileData::new(TypeInfo::ietf());
        d.registrar.password = "old-Secret-4711".into();
        d.id = s.add(&d).unwrap();
        d.registrar.password = "new".into();
        s.update(&d).unwrap();
        let mut gone = ProfileData::new(TypeInfo::ietf());
        gone.provider_name = "x".repeat(300);
        gone.registrar.password = "deleted-Secret-0815".into();
        let gone_id = s.add(&gone).unwrap();
        s.delete(gone_id).unwrap();
        drop(s); // last connection: the WAL is checkpointed into the file
        let mut bytes = std::fs::read(&p).unwrap();
        if let Ok(wal) = std::fs::read(format!("{}-wal", p.display())) {
            bytes.extend(wal);
        }
        for needle in [&b"old-Secret-4711"[..], b"deleted-Secret-0815"] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "{} left in the file",
                String::from_utf8_lossy(needle)
            );
        }
        assert!(bytes.windows(3).any(|w| w == b"new"));
    }
}
