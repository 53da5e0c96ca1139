//! The local credential: what lets `junction ctl` on the broker's own machine act without a
//! password, as rabbitmqctl does with the Erlang cookie. The broker keeps a random secret in
//! `ctl.credential` in its data directory, readable by the directory's owner only; `junction
//! ctl` reads it and presents it to the management API, which accepts it from loopback peers
//! only. A file anyone else can read is refused by both sides: a secret others can read is no
//! secret.

use std::fs::{self, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use thiserror::Error;

/// The file's name inside the data directory.
pub const FILE_NAME: &str = "ctl.credential";

/// The scheme of the `Authorization` header that carries the credential.
pub const SCHEME: &str = "Junction-Local";

/// Why the credential cannot be used.
#[derive(Debug, Error)]
pub enum CredentialError {
    /// The file could not be read or written.
    #[error("cannot use the local credential {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// Others than the owner may read or write it.
    #[error(
        "the local credential {path} is open to others (mode {mode:04o}); \
         run `chmod 600 {path}` as its owner"
    )]
    TooOpen {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// It holds no secret.
    #[error("the local credential {path} is empty or damaged; delete it and restart the broker")]
    Damaged {
        /// The file.
        path: PathBuf,
    },
}

/// Where the credential of the broker whose data directory is `data_dir` is kept.
pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(FILE_NAME)
}

/// The broker's side: the secret in `data_dir`, created (owner-only) on first start.
pub fn ensure(data_dir: &Path) -> Result<String, CredentialError> {
    let file = path(data_dir);
    let io = |source| CredentialError::Io {
        path: file.clone(),
        source,
    };
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&file)
    {
        Ok(mut f) => {
            let secret = fresh_secret().map_err(io)?;
            f.write_all(secret.as_bytes()).map_err(io)?;
            f.sync_all().map_err(io)?;
            Ok(secret)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read(data_dir),
        Err(e) => Err(io(e)),
    }
}

/// `junction ctl`'s side: the secret in `data_dir`, refused when others may read it.
pub fn read(data_dir: &Path) -> Result<String, CredentialError> {
    let file = path(data_dir);
    let io = |source| CredentialError::Io {
        path: file.clone(),
        source,
    };
    let mode = fs::metadata(&file).map_err(io)?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(CredentialError::TooOpen { path: file, mode });
    }
    let mut text = String::new();
    fs::File::open(&file)
        .and_then(|mut f| f.read_to_string(&mut text))
        .map_err(io)?;
    let secret = text.trim().to_string();
    if secret.len() < 32 || !secret.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(CredentialError::Damaged { path: file });
    }
    Ok(secret)
}

/// Whether `offered` is `secret`, in time that does not depend on where they differ.
pub fn matches(secret: &str, offered: &str) -> bool {
    let (a, b) = (secret.as_bytes(), offered.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// 32 random bytes from the kernel, as hex.
fn fresh_secret() -> std::io::Result<String> {
    let mut bytes = [0u8; 32];
    fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_owner_only_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let secret = ensure(dir.path()).unwrap();
        assert_eq!(secret.len(), 64);
        let mode = fs::metadata(path(dir.path())).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(read(dir.path()).unwrap(), secret);
        assert_eq!(ensure(dir.path()).unwrap(), secret, "kept across restarts");
    }

    #[test]
    fn refused_when_others_may_read_it() {
        let dir = tempfile::tempdir().unwrap();
        ensure(dir.path()).unwrap();
        fs::set_permissions(path(dir.path()), fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            read(dir.path()),
            Err(CredentialError::TooOpen { mode: 0o644, .. })
        ));
        assert!(ensure(dir.path()).is_err(), "the broker refuses it too");
    }

    #[test]
    fn a_damaged_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path(dir.path()))
            .unwrap()
            .write_all(b"short")
            .unwrap();
        assert!(matches!(
            read(dir.path()),
            Err(CredentialError::Damaged { .. })
        ));
    }

    #[test]
    fn comparison() {
        assert!(matches("abcd", "abcd"));
        assert!(!matches("abcd", "abce"));
        assert!(!matches("abcd", "abc"));
    }
}
