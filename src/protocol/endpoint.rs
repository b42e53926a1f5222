//! Where the server of a store listens: a Unix-domain socket named after a
//! hash of the store's canonical path (a store path can be longer than the
//! 108 bytes of `sun_path`), beside the lock file its server holds for life,
//! in a directory only the user can enter.

use sha2::{Digest, Sha256};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The files of one store's server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The store's canonical path.
    pub store: PathBuf,
    pub socket: PathBuf,
    /// Held (`flock`) by the running server; the kernel lets go when it dies.
    pub lock: PathBuf,
}

impl Endpoint {
    /// The endpoint of the store at `store` (made canonical here; its
    /// directory is created if missing).
    pub fn for_store(store: &Path) -> io::Result<Endpoint> {
        let store = canonical(store);
        let dir = runtime_dir()?;
        let digest = Sha256::digest(store.as_os_str().as_encoded_bytes());
        let name: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
        Ok(Endpoint {
            socket: dir.join(format!("{name}.sock")),
            lock: dir.join(format!("{name}.lock")),
            store,
        })
    }
}

/// Same file, same server, however the path was spelled: an existing file
/// is resolved whole (symbolic links included), else its directory is
/// (created 0700 if missing) and the file name kept.
pub fn canonical(path: &Path) -> PathBuf {
    if let Ok(p) = path.canonicalize() {
        return p;
    }
    let abs = if path.is_absolute() {
        path.to_owned()
    } else {
        std::env::current_dir()
            .map(|d| d.join(path))
            .unwrap_or_else(|_| path.to_owned())
    };
    match (abs.parent(), abs.file_name()) {
        (Some(dir), Some(name)) => {
            let _ = std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir);
            dir.canonicalize()
                .map(|d| d.join(name))
                .unwrap_or_else(|_| abs.clone())
        }
        _ => abs,
    }
}

/// `$XDG_RUNTIME_DIR/sipprofile`, else `/tmp/sipprofile-$UID`: created 0700,
/// and refused unless it is a real directory owned by this user that nobody
/// else can enter.
pub fn runtime_dir() -> io::Result<PathBuf> {
    let uid = nix::unistd::geteuid().as_raw();
    let base = std::env::var_os("XDG_RUNTIME_DIR")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .filter(|d| d.is_dir());
    let dir = match base {
        Some(b) => b.join("sipprofile"),
        None => std::env::temp_dir().join(format!("sipprofile-{uid}")),
    };
    private_dir(&dir, uid)?;
    Ok(dir)
}

fn private_dir(dir: &Path, uid: u32) -> io::Result<()> {
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    let m = std::fs::symlink_metadata(dir)?;
    let refuse = |why: &str| {
        Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("{}: {why}", dir.display()),
        ))
    };
    if !m.file_type().is_dir() {
        return refuse("not a directory (a symlink or a file): remove it");
    }
    if m.uid() != uid {
        return refuse("owned by another user: remove it or set XDG_RUNTIME_DIR");
    }
    if m.mode() & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_store_one_endpoint_however_spelled() {
        let d = std::env::temp_dir().join(format!("sipprofile-ep-{}", std::process::id()));
        std::fs::create_dir_all(d.join("sub")).unwrap();
        let a = Endpoint::for_store(&d.join("profiles.db")).unwrap();
        let b = Endpoint::for_store(&d.join("sub/../profiles.db")).unwrap();
        assert_eq!(a, b);
        assert!(a.socket.as_os_str().len() < 108);
        let other = Endpoint::for_store(&d.join("other.db")).unwrap();
        assert_ne!(a.socket, other.socket);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn the_runtime_directory_is_private() {
        let dir = runtime_dir().unwrap();
        let m = std::fs::symlink_metadata(&dir).unwrap();
        assert!(m.is_dir());
        assert_eq!(m.mode() & 0o777, 0o700);
    }

    #[test]
    fn a_symlink_or_a_foreign_directory_is_refused() {
        let base = std::env::temp_dir().join(format!("sipprofile-rt-{}", std::process::id()));
        std::fs::create_dir_all(&base).unwrap();
        let target = base.join("target");
        std::fs::create_dir_all(&target).unwrap();
        let link = base.join("link");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let uid = nix::unistd::geteuid().as_raw();
        assert!(private_dir(&link, uid).is_err());
        assert!(private_dir(&target, uid + 1).is_err());
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755)).unwrap();
        private_dir(&target, uid).unwrap();
        let mode = std::fs::metadata(&target).unwrap().mode();
        assert_eq!(mode & 0o777, 0o700);
        let _ = std::fs::remove_dir_all(&base);
    }
}
