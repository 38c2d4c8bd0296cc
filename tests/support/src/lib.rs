//! Fixtures for the integration tests of this workspace.
//!
//! * [`rig`]: a real Apache Mesos 1.11 master and agents (one process) from
//!   `../shared/mesos-rig`, with the project's skip/fail policy for clones that lack it.
//! * [`zookeeper`]: a real Apache ZooKeeper standalone server on a free loopback port.
//! * [`ports`]: free loopback ports and waiting for a TCP listener.
//! * [`wait`]: polling with a deadline instead of fixed sleeps.
//! * [`binaries`]: the workspace's own binaries, built on demand.
//! * [`packaging`]: service and Java runtime tarballs from `packaging/`.
//!
//! Everything here is blocking: tests call it during setup. Everything binds to
//! `127.0.0.1` only. Logs go through `tracing`; install a subscriber in a test
//! to see them.
//!
//! ```no_run
//! use test_support::{MesosRig, RigOptions, ZkServer, require_rig};
//!
//! #[test]
//! fn framework_registers() {
//!     require_rig!(); // SKIPPED notice without the rig; failure under CI=true
//!     let rig = MesosRig::start(RigOptions::default().env("MESOS_ROLES", "kafka"))
//!         .expect("mesos rig");
//!     let zk = ZkServer::start().expect("zookeeper");
//!     // ... point the scheduler at rig.endpoint() and zk.connect_string() ...
//! }
//! ```

pub mod binaries;
mod error;
pub mod packaging;
pub mod ports;
mod proc;
pub mod rig;
pub mod wait;
pub mod zookeeper;

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

pub use error::{Error, Result};
pub use rig::{MesosRig, RigAvailability, RigOptions};
pub use zookeeper::{ZkOptions, ZkServer};

/// Environment variable naming the cache directory shared by all test runs.
pub const CACHE_ENV: &str = "MESOS_DS_CACHE";

/// The cache directory: `$MESOS_DS_CACHE`, else `$HOME/.cache/mesos-data-services`.
///
/// Built artifacts (the Mesos rig, extracted ZooKeeper) live here so that they
/// survive `cargo clean` and are shared by every test process.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os(CACHE_ENV).filter(|v| !v.is_empty()) {
        return PathBuf::from(dir);
    }
    match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        Some(home) => PathBuf::from(home).join(".cache/mesos-data-services"),
        // No HOME (e.g. a stripped CI environment): still share between processes.
        None => std::env::temp_dir().join("mesos-data-services-cache"),
    }
}

/// The root of the Cargo workspace (the directory whose `Cargo.toml` has `[workspace]`).
///
/// Searches upward from the running test's `CARGO_MANIFEST_DIR` (set by
/// `cargo test`), then from this crate's own manifest directory.
pub fn workspace_root() -> Result<PathBuf> {
    let compiled = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let runtime = std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from);
    for start in runtime.iter().chain(std::iter::once(&compiled)) {
        if let Some(root) = find_workspace_root(start) {
            return Ok(root);
        }
    }
    Err(Error::WorkspaceRootNotFound { start: compiled })
}

/// Walks up from `start` to the first directory with a workspace `Cargo.toml`.
fn find_workspace_root(start: &Path) -> Option<PathBuf> {
    start.ancestors().find_map(|dir| {
        let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).ok()?;
        manifest
            .lines()
            .any(|l| l.trim() == "[workspace]")
            .then(|| dir.to_path_buf())
    })
}

/// An exclusive advisory lock on a file, released when dropped.
///
/// Used to serialise one-time installs between concurrently running test
/// processes (cargo runs each test binary as its own process).
#[derive(Debug)]
pub(crate) struct FileLock {
    // Closing the descriptor releases the flock.
    _file: File,
}

impl FileLock {
    /// Blocks until the exclusive lock on `path` (created if needed) is held.
    pub(crate) fn acquire(path: &Path) -> Result<FileLock> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(Error::io(format!("create {}", parent.display())))?;
        }
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(Error::io(format!("open lock file {}", path.display())))?;
        loop {
            match rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive) {
                Ok(()) => return Ok(FileLock { _file: file }),
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => {
                    return Err(Error::Io {
                        what: format!("lock {}", path.display()),
                        source: e.into(),
                    });
                }
            }
        }
    }
}

/// The last `lines` lines of a text file, or a note that it could not be read.
pub(crate) fn tail(path: &Path, lines: usize) -> String {
    match std::fs::read(path) {
        Ok(bytes) => tail_str(&String::from_utf8_lossy(&bytes), lines),
        Err(e) => format!("<cannot read {}: {e}>", path.display()),
    }
}

/// The last `lines` lines of `text`.
pub(crate) fn tail_str(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_this_workspace() {
        let root = workspace_root().expect("workspace root");
        assert!(root.join("tests/support/Cargo.toml").is_file(), "{root:?}");
    }

    #[test]
    fn tail_keeps_last_lines() {
        assert_eq!(tail_str("a\nb\nc\n", 2), "b\nc");
        assert_eq!(tail_str("a", 5), "a");
    }
}
