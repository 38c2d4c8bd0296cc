//! The scheduler's persisted state: one versioned JSON document in a local file or in
//! ZooKeeper.
//!
//! The runtime owns a serde-serializable state type (framework ID, nodes, plans). It loads it
//! once at start-up and saves the whole of it before acting on a change:
//!
//! ```no_run
//! # use serde::{Deserialize, Serialize};
//! use state_store::{Schema, StateStore, StorageSpec};
//!
//! #[derive(Default, Serialize, Deserialize)]
//! struct State { framework_id: Option<String> }
//!
//! # async fn run() -> Result<(), state_store::Error> {
//! let spec: StorageSpec = "/var/lib/kafka/state.json".parse()?;
//! let mut store = StateStore::<State>::open(&spec, "kafka", Schema::new(1));
//! let mut state = store.load().await?.unwrap_or_default(); // an error: do not start
//! state.framework_id = Some("fw-1".into());
//! store.save(&state).await?; // then act on it
//! # Ok(()) }
//! ```
//!
//! Guarantees:
//!
//! * A save replaces the whole document atomically: after a crash the previous or the new
//!   document is there, never a mix.
//! * Only a document that does not exist is a fresh start. An empty, corrupt, foreign
//!   (`format`), other framework's or newer (`version`) document is a distinct [`Error`] that
//!   says what to do; the store then refuses every save, so it never overwrites what it could
//!   not read.
//! * Older schema versions are upgraded by the [`Schema`]'s migrations while loading; the
//!   stored document keeps its old version until the next save.
//! * In ZooKeeper, a second scheduler writing the same state is detected
//!   ([`Error::ConcurrentWriter`]); for files, a second scheduler on the same host is
//!   ([`Error::Locked`]).
//!
//! What it does not do: decide what the state contains, merge concurrent writes, retry
//! failed operations (see [`Error::is_retryable`]), or keep history beyond the file
//! backend's one `.bak` copy.
//!
//! Modules:
//!
//! * [`spec`]: the `--storage` value ([`StorageSpec`]);
//! * [`envelope`]: the document format, [`Schema`] versions and migrations (pure);
//! * [`backend`]: the [`Backend`] trait, bytes in and out;
//! * [`file`]: the default backend, a local file replaced atomically;
//! * [`zk`]: the ZooKeeper backend, with chunking beyond [`zk::CHUNK_SIZE`] and
//!   compare-and-set saves;
//! * [`store`]: [`StateStore`], tying them together.
//!
//! Operators: `docs/operations/state-storage.md` explains where the state lives, backups and
//! every error.

pub mod backend;
pub mod envelope;
mod error;
pub mod file;
pub mod spec;
pub mod store;
pub mod zk;

pub use backend::Backend;
pub use envelope::{FORMAT, Migration, Schema};
pub use error::{Error, MigrationError, Result};
pub use file::FileBackend;
pub use spec::StorageSpec;
pub use store::StateStore;
pub use zk::{ZkBackend, ZkOptions};
