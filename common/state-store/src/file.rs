//! The file backend: one local file, replaced atomically.
//!
//! Expected flow of a save: write the document to `.NAME.tmp-PID-RANDOM` in the same
//! directory, fsync it, keep the current file as `NAME.bak` (a hard link, so the current file
//! is never missing), rename the temp file over `NAME`, fsync the directory.
//!
//! Guarantees: after a crash at any point the file holds the previous or the new document,
//! never a mix; a leftover temp file is ignored by loads and removed by the next save. A
//! missing file is a fresh start; an empty or unreadable one is an error and is never
//! replaced (the store refuses saves after a failed load). `NAME.bak` holds the document
//! before the last save.
//!
//! Assumptions: the directory is on a local file system with POSIX rename and `flock`
//! semantics. A lock file `NAME.lock` beside the state, held from the first load until the
//! backend is dropped, stops a second scheduler on the same host from using the same file;
//! it does not protect against a second host over a network file system.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use rustix::fs::FlockOperation;
use tokio::sync::Mutex;

use crate::backend::{Backend, BoxFuture};
use crate::{Error, Result};

/// The state file's permissions: it may hold credentials of the services.
const FILE_MODE: u32 = 0o600;

/// Keeps the state in one local file.
#[derive(Debug)]
pub struct FileBackend {
    path: PathBuf,
    // The open lock file while this backend holds the lock; closing it releases the lock.
    lock: Mutex<Option<File>>,
}

/// The file names around one state file.
struct Paths {
    target: PathBuf,
    dir: PathBuf,
    lock: PathBuf,
    backup: PathBuf,
    backup_tmp: PathBuf,
    temp_prefix: String,
}

impl FileBackend {
    /// A backend for the file at `path` (absolute or relative to the working directory).
    pub fn new(path: impl Into<PathBuf>) -> FileBackend {
        FileBackend {
            path: path.into(),
            lock: Mutex::new(None),
        }
    }

    /// The state file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where the previous document is kept after each save.
    pub fn backup_path(&self) -> Result<PathBuf> {
        Ok(self.paths()?.backup)
    }

    fn paths(&self) -> Result<Paths> {
        let name = self
            .path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| Error::InvalidSpec {
                spec: self.path.display().to_string(),
                problem: "the path has no file name (or it is not UTF-8)".into(),
                expected: "a path to a file such as /var/lib/NAME/state.json",
            })?;
        let dir = match self.path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
            _ => PathBuf::from("."),
        };
        Ok(Paths {
            target: self.path.clone(),
            lock: dir.join(format!("{name}.lock")),
            backup: dir.join(format!("{name}.bak")),
            backup_tmp: dir.join(format!(".{name}.bak.tmp")),
            temp_prefix: format!(".{name}.tmp-"),
            dir,
        })
    }

    /// Runs `work` on the blocking pool with the lock held, taking the lock first if needed.
    /// One operation runs at a time, so concurrent saves never race over temp files.
    async fn locked<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Paths) -> Result<T> + Send + 'static,
    {
        let paths = self.paths()?;
        let mut held = self.lock.lock().await;
        let need_lock = held.is_none();
        let target = paths.target.clone();
        let (lock, result) = tokio::task::spawn_blocking(move || {
            let lock = if need_lock {
                Some(acquire_lock(&paths)?)
            } else {
                None
            };
            Ok::<_, Error>((lock, work(&paths)))
        })
        .await
        .map_err(|source| Error::Cancelled {
            path: target,
            source,
        })??;
        if lock.is_some() {
            *held = lock;
        }
        result
    }
}

impl Backend for FileBackend {
    fn location(&self) -> String {
        self.path.display().to_string()
    }

    fn load(&self) -> BoxFuture<'_, Result<Option<Bytes>>> {
        Box::pin(self.locked(load))
    }

    fn save(&self, document: Bytes) -> BoxFuture<'_, Result<()>> {
        Box::pin(self.locked(move |paths| save(paths, &document)))
    }
}

/// Creates the directory and takes the lock file's exclusive `flock`.
fn acquire_lock(paths: &Paths) -> Result<File> {
    create_dir(&paths.dir)?;
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(FILE_MODE)
        .open(&paths.lock)
        .map_err(io_error("open the lock file", &paths.lock))?;
    match rustix::fs::flock(&file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => {
            tracing::debug!(lock = %paths.lock.display(), "state file locked");
            Ok(file)
        }
        Err(errno) if errno == rustix::io::Errno::WOULDBLOCK => Err(Error::Locked {
            path: paths.target.clone(),
            lock: paths.lock.clone(),
        }),
        Err(errno) => Err(Error::Io {
            operation: "lock",
            path: paths.lock.clone(),
            source: errno.into(),
        }),
    }
}

fn load(paths: &Paths) -> Result<Option<Bytes>> {
    let leftovers = temp_files(paths)?;
    if !leftovers.is_empty() {
        // Only a crashed save leaves these; the state file itself is complete.
        tracing::warn!(
            path = %paths.target.display(),
            leftovers = leftovers.len(),
            "ignoring temp files of an interrupted save; the next save removes them"
        );
    }
    match fs::read(&paths.target) {
        Ok(bytes) => {
            tracing::debug!(path = %paths.target.display(), bytes = bytes.len(), "state file read");
            Ok(Some(Bytes::from(bytes)))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            tracing::info!(path = %paths.target.display(), "no state file yet; starting fresh");
            Ok(None)
        }
        Err(e) => Err(Error::Io {
            operation: "read",
            path: paths.target.clone(),
            source: e,
        }),
    }
}

fn save(paths: &Paths, document: &[u8]) -> Result<()> {
    create_dir(&paths.dir)?;
    for leftover in temp_files(paths)? {
        // We hold the lock, so no live save owns these.
        if let Err(e) = fs::remove_file(&leftover) {
            tracing::warn!(file = %leftover.display(), error = %e, "cannot remove a leftover temp file");
        }
    }
    keep_backup(paths);

    let temp = paths.dir.join(format!(
        "{}{}-{:016x}",
        paths.temp_prefix,
        std::process::id(),
        fastrand::u64(..)
    ));
    let written = write_synced(&temp, document).and_then(|()| {
        fs::rename(&temp, &paths.target).map_err(io_error("rename over the state file", &temp))
    });
    if let Err(e) = written {
        // The state file is untouched; do not leave the partial copy behind.
        let _ = fs::remove_file(&temp);
        return Err(e);
    }
    // The rename is durable only once the directory entry is.
    File::open(&paths.dir)
        .and_then(|dir| dir.sync_all())
        .map_err(io_error("sync the directory", &paths.dir))?;
    tracing::debug!(path = %paths.target.display(), bytes = document.len(), "state file replaced");
    Ok(())
}

/// Writes `document` into a new file and flushes it to the disk.
fn write_synced(temp: &Path, document: &[u8]) -> Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(temp)
        .map_err(io_error("create", temp))?;
    file.write_all(document).map_err(io_error("write", temp))?;
    file.sync_all().map_err(io_error("sync", temp))
}

/// Points `NAME.bak` at the current document. A failure costs only the backup, so it is
/// logged rather than failing the save.
fn keep_backup(paths: &Paths) {
    let result = (|| {
        match fs::remove_file(&paths.backup_tmp) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        fs::hard_link(&paths.target, &paths.backup_tmp)?;
        fs::rename(&paths.backup_tmp, &paths.backup)
    })();
    match result {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {} // first save: nothing to keep
        Err(e) => tracing::warn!(
            backup = %paths.backup.display(),
            error = %e,
            "cannot keep a backup of the previous state"
        ),
    }
}

/// Temp files left by interrupted saves.
fn temp_files(paths: &Paths) -> Result<Vec<PathBuf>> {
    let entries = match fs::read_dir(&paths.dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_error("list", &paths.dir)(e)),
    };
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io_error("list", &paths.dir))?;
        if entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.starts_with(&paths.temp_prefix))
        {
            found.push(entry.path());
        }
    }
    Ok(found)
}

fn create_dir(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).map_err(io_error("create directory", dir))
}

/// Wraps an `io::Error` with what was attempted on which path.
fn io_error(operation: &'static str, path: &Path) -> impl FnOnce(io::Error) -> Error + use<> {
    let path = path.to_path_buf();
    move |source| Error::Io {
        operation,
        path,
        source,
    }
}
