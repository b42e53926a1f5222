//! The profile store: one SQLite file per store path (rusqlite, bundled
//! SQLite), created with mode 0600, WAL journal, synchronous writes, a
//! versioned schema and an id counter that never hands out an id twice
//! (contract §7.1). Passwords are stored here and nowhere else.

use crate::profile::ProfileData;
use crate::{Error, Result};
use rusqlite::{Connection, OptionalExtension, params};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

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
    /// Opens the store at `path`, creating it (mode 0600) if missing. A file
    /// that is not a sipprofile store is refused and left untouched.
    pub fn open(path: &Path) -> Result<Store> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|_| Error::AccessDenied)?;
        }
        // Create the file ourselves so it never exists with a wider mode;
        // SQLite gives its -wal and -shm files the same mode as this one.
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::PermissionDenied => Error::AccessDenied,
                _ => Error::General,
            })?;
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        let app_id: i64 = conn
            .query_row("PRAGMA application_id", [], |r| r.get(0))
            .map_err(|e| {
                crate::log::error(&format!("{}: not a sipprofile store ({e})", path.display()));
                Error::NotSupported
            })?;
        let tables: i64 = conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))?;
        if app_id != APPLICATION_ID && !(app_id == 0 && tables == 0) {
            crate::log::error(&format!(
                "{}: not a sipprofile store; left untouched",
                path.display()
            ));
            return Err(Error::NotSupported);
        }
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        let mut store = Store { conn };
        store.migrate()?;
        Ok(store)
    }

    fn migrate(&mut self) -> Result<()> {
        let version: i64 = self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version > SCHEMA_VERSION {
            crate::log::error("store written by a newer sipprofile; refusing to open");
            return Err(Error::NotSupported);
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

    pub fn load_all(&self) -> Result<Vec<ProfileData>> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, data FROM profiles ORDER BY id")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, u32>(0)?, r.get::<_, String>(1)?)))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, json) = row?;
            match serde_json::from_str::<ProfileData>(&json) {
                Ok(mut p) => {
                    p.id = id;
                    out.push(p);
                }
                Err(e) => crate::log::error(&format!("profile {id} unreadable, skipped: {e}")),
            }
        }
        Ok(out)
    }

    /// Adds a new profile: takes the next id from the counter, writes it
    /// durably, makes it the default if it is the first. Returns the id.
    pub fn add(&mut self, data: &ProfileData) -> Result<u32> {
        Ok(self.add_all(&[data])?[0])
    }

    /// Adds new profiles in one durable transaction, all or nothing: ids
    /// from the counter in order; the first becomes the default if the
    /// store has none, and any that asks to be the default does.
    pub fn add_all(&mut self, profiles: &[&ProfileData]) -> Result<Vec<u32>> {
        let tx = self.conn.transaction()?;
        let mut next: i64 =
            tx.query_row("SELECT value FROM meta WHERE key='next_id'", [], |r| {
                r.get(0)
            })?;
        let mut has_default = tx
            .query_row("SELECT value FROM meta WHERE key='default_id'", [], |r| {
                r.get::<_, i64>(0)
            })
            .optional()?
            .is_some();
        let mut ids = Vec::with_capacity(profiles.len());
        {
            let mut insert =
                tx.prepare_cached("INSERT INTO profiles (id, data) VALUES (?1, ?2)")?;
            for data in profiles {
                let id = u32::try_from(next).map_err(|_| Error::Overflow)?;
                if id == u32::MAX {
                    return Err(Error::Overflow);
                }
                let mut stored = (*data).clone();
                stored.id = id;
                let json = serde_json::to_string(&stored).map_err(|_| Error::General)?;
                insert.execute(params![id, json])?;
                if !has_default || data.make_default {
                    tx.execute(
                        "INSERT OR REPLACE INTO meta VALUES ('default_id', ?1)",
                        params![id],
                    )?;
                    has_default = true;
                }
                ids.push(id);
                next += 1;
            }
        }
        tx.execute(
            "UPDATE meta SET value = ?1 WHERE key='next_id'",
            params![next],
        )?;
        tx.commit()?;
        Ok(ids)
    }

    pub fn update(&mut self, data: &ProfileData) -> Result<()> {
        let json = serde_json::to_string(data).map_err(|_| Error::General)?;
        let tx = self.conn.transaction()?;
        let n = tx.execute(
            "UPDATE profiles SET data = ?2 WHERE id = ?1",
            params![data.id, json],
        )?;
        if n == 0 {
            return Err(Error::NotFound);
        }
        if data.make_default {
            tx.execute(
                "INSERT OR REPLACE INTO meta VALUES ('default_id', ?1)",
                params![data.id],
            )?;
        }
        tx.commit()?;
        Ok(())
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

    #[test]
    fn foreign_file_refused_and_untouched() {
        let p = tmp("foreign");
        std::fs::write(&p, b"this is not a database at all, just text").unwrap();
        assert!(Store::open(&p).is_err());
        assert_eq!(
            std::fs::read(&p).unwrap(),
            b"this is not a database at all, just text"
        );
    }
}
