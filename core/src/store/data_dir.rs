//! A data directory: its lock, its message log and its metadata database, opened together.

use super::durable_messages::{DurableMessageStore, LogOptions};
use super::redb_meta::RedbMetadataStore;
use super::segment_log::RecoveryReport;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use thiserror::Error;

/// Why a data directory could not be opened.
#[derive(Debug, Error)]
pub enum DataDirError {
    #[error("data directory {path} is in use by another Junction process{holder}")]
    /// Another process holds the directory's lock.
    Locked {
        /// The directory.
        path: PathBuf,
        /// Who holds it (" (pid N)"), if the lock file says.
        holder: String,
    },
    #[error("data directory {path}: {source}")]
    /// The directory could not be read or written.
    Io {
        /// The file concerned.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    #[error("data directory {path}: {message}")]
    /// The metadata database could not be opened.
    Metadata {
        /// The database file.
        path: PathBuf,
        /// What redb said.
        message: String,
    },
}

/// An open data directory. Dropping it closes the stores and releases the lock.
#[derive(Debug)]
pub struct DataDir {
    /// The metadata store (redb).
    pub meta: Arc<RedbMetadataStore>,
    /// The message store (the segment log).
    pub messages: Arc<DurableMessageStore>,
    /// What recovering the message log found.
    pub recovery: RecoveryReport,
    _lock: File,
}

/// Takes the directory's lock file (held for the life of the process; the OS drops it on exit,
/// kill -9 included), noting our pid in it for the message a second process prints.
fn take_lock(dir: &Path) -> Result<File, DataDirError> {
    let path = dir.join("LOCK");
    let io = |source| DataDirError::Io {
        path: path.clone(),
        source,
    };
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io)?;
    match f.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let mut pid = String::new();
            let _ = f.read_to_string(&mut pid);
            let pid = pid.trim();
            return Err(DataDirError::Locked {
                path: dir.to_path_buf(),
                holder: if pid.is_empty() {
                    String::new()
                } else {
                    format!(" (pid {pid})")
                },
            });
        }
        Err(TryLockError::Error(e)) => return Err(io(e)),
    }
    f.set_len(0).map_err(io)?;
    f.rewind().map_err(io)?;
    writeln!(f, "{}", std::process::id()).map_err(io)?;
    Ok(f)
}

impl DataDir {
    /// Locks `dir` (creating it) and opens both stores, recovering the message log.
    pub fn open(dir: &Path, log: LogOptions) -> Result<DataDir, DataDirError> {
        std::fs::create_dir_all(dir).map_err(|source| DataDirError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let lock = take_lock(dir)?;
        let meta_path = dir.join("metadata.redb");
        let meta = RedbMetadataStore::open(&meta_path).map_err(|e| DataDirError::Metadata {
            path: meta_path,
            message: e.to_string(),
        })?;
        let log_dir = dir.join("messages");
        let (messages, recovery) =
            DurableMessageStore::open(&log_dir, log).map_err(|source| DataDirError::Io {
                path: log_dir,
                source,
            })?;
        Ok(DataDir {
            meta: Arc::new(meta),
            messages: Arc::new(messages),
            recovery,
            _lock: lock,
        })
    }

    /// Writes what is pending and stops both stores' writers.
    pub fn close(&self) {
        self.messages.close();
        self.meta.close();
    }
}
