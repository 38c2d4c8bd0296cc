//! The typed store: a backend, the envelope, and the rule that unread state is never
//! overwritten.

use std::fmt;
use std::marker::PhantomData;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::backend::Backend;
use crate::envelope::{self, Schema};
use crate::spec::StorageSpec;
use crate::{Error, Result};

/// Loads and saves the scheduler's state `T` as one versioned document.
///
/// Saves are refused until a load succeeded, and after a load failed: whatever could not be
/// read stays as it is for an operator to inspect.
pub struct StateStore<T> {
    backend: Box<dyn Backend>,
    framework: String,
    schema: Schema,
    status: Status,
    _state: PhantomData<fn() -> T>,
}

/// Whether saves are allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    NotLoaded,
    Loaded,
    LoadFailed,
}

impl<T: Serialize + DeserializeOwned> StateStore<T> {
    /// A store of `framework`'s state with the given schema, kept by `backend`.
    pub fn new(backend: Box<dyn Backend>, framework: impl Into<String>, schema: Schema) -> Self {
        StateStore {
            backend,
            framework: framework.into(),
            schema,
            status: Status::NotLoaded,
            _state: PhantomData,
        }
    }

    /// A store at the place `spec` names (no I/O until [`StateStore::load`]).
    pub fn open(spec: &StorageSpec, framework: impl Into<String>, schema: Schema) -> Self {
        StateStore::new(spec.backend(), framework, schema)
    }

    /// Where the state lives, for messages.
    pub fn location(&self) -> String {
        self.backend.location()
    }

    /// Reads the state: `None` on a fresh start, the (migrated) state otherwise.
    ///
    /// Any error means the scheduler must not act: the document is left untouched and saves
    /// are refused until a later load succeeds. Use [`Error::is_retryable`] to tell an
    /// unreachable ZooKeeper from a document an operator must fix.
    pub async fn load(&mut self) -> Result<Option<T>> {
        // Set first, so that a load abandoned half-way also blocks saves.
        self.status = Status::LoadFailed;
        let location = self.backend.location();
        let Some(bytes) = self.backend.load().await? else {
            self.status = Status::Loaded;
            return Ok(None);
        };
        let decoded = envelope::decode(&bytes, &self.framework, &self.schema, &location)?;
        tracing::info!(
            location,
            bytes = bytes.len(),
            stored_version = decoded.stored_version,
            version = self.schema.version(),
            written_at_ms = decoded.written_at_ms,
            "state loaded"
        );
        self.status = Status::Loaded;
        Ok(Some(decoded.state))
    }

    /// Replaces the stored state with `state`; call it before acting on `state`.
    pub async fn save(&mut self, state: &T) -> Result<()> {
        match self.status {
            Status::Loaded => {}
            Status::NotLoaded => {
                return Err(Error::NotLoaded {
                    location: self.location(),
                });
            }
            Status::LoadFailed => {
                return Err(Error::LoadFailed {
                    location: self.location(),
                });
            }
        }
        let document = envelope::encode(state, &self.framework, &self.schema, now_ms())?;
        self.backend.save(Bytes::from(document)).await
    }
}

/// Milliseconds since the Unix epoch; only informative (`written_at`), never compared.
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl<T> fmt::Debug for StateStore<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StateStore")
            .field("backend", &self.backend)
            .field("framework", &self.framework)
            .field("schema", &self.schema)
            .field("status", &self.status)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use serde::Deserialize;

    use super::*;
    use crate::backend::BoxFuture;

    /// Holds the document in memory.
    #[derive(Debug, Default)]
    struct Memory {
        document: Mutex<Option<Bytes>>,
    }

    impl Backend for Memory {
        fn location(&self) -> String {
            "memory".into()
        }

        fn load(&self) -> BoxFuture<'_, Result<Option<Bytes>>> {
            let document = self.document.lock().ok().and_then(|d| d.clone());
            Box::pin(async move { Ok(document) })
        }

        fn save(&self, document: Bytes) -> BoxFuture<'_, Result<()>> {
            if let Ok(mut stored) = self.document.lock() {
                *stored = Some(document);
            }
            Box::pin(async { Ok(()) })
        }
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct State {
        nodes: u32,
    }

    fn store(document: Option<&[u8]>) -> StateStore<State> {
        let memory = Memory {
            document: Mutex::new(document.map(Bytes::copy_from_slice)),
        };
        StateStore::new(Box::new(memory), "kafka", Schema::new(1))
    }

    #[tokio::test]
    async fn saves_need_a_successful_load() {
        let mut fresh = store(None);
        let err = fresh
            .save(&State { nodes: 1 })
            .await
            .expect_err("not loaded");
        assert!(matches!(err, Error::NotLoaded { .. }), "{err:?}");
        assert_eq!(fresh.load().await.expect("fresh"), None);
        fresh.save(&State { nodes: 1 }).await.expect("loaded");
        assert_eq!(fresh.load().await.expect("saved"), Some(State { nodes: 1 }));
    }

    #[tokio::test]
    async fn a_failed_load_blocks_saves() {
        let mut corrupt = store(Some(b"not json"));
        corrupt.load().await.expect_err("corrupt");
        let err = corrupt
            .save(&State { nodes: 2 })
            .await
            .expect_err("refused");
        assert!(matches!(err, Error::LoadFailed { .. }), "{err:?}");
        let kept = corrupt.backend.load().await.expect("memory").expect("kept");
        assert_eq!(&kept[..], b"not json");
    }
}
