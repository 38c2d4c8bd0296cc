//! The ZooKeeper backend: the document in znodes under the `--storage` path.
//!
//! Layout under the base path `P`:
//!
//! * `P/state` holds the document itself when it is at most [`CHUNK_SIZE`] bytes;
//! * a larger document is split into `P/state-chunks/<write id>-<n>` znodes of at most
//!   [`CHUNK_SIZE`] bytes, and `P/state` holds a manifest instead: the line
//!   `mesos-data-services/state-chunks` followed by JSON naming the chunks in order, the
//!   document's size and its SHA-256.
//!
//! Expected flow of a save: write the new chunks (if any) under a fresh write id, then commit
//! in one ZooKeeper transaction: check that each new chunk still exists, and set `P/state`
//! with the znode version seen at the last load or save (create it if there was none). Then
//! delete the chunks no manifest refers to any more.
//!
//! Guarantees: `P/state` always names complete chunks, so a crash or a lost connection at any
//! point leaves the previous or the new document. A save whose expected version no longer
//! matches — another scheduler wrote in between — fails with [`Error::ConcurrentWriter`] and
//! changes nothing. After a save whose outcome is unknown (connection lost during the commit)
//! the next save first looks whether it was applied. Chunks of failed or crashed saves are
//! removed by the next successful save.
//!
//! Assumptions: one scheduler writes at a time (the version check only detects violations);
//! the ensemble keeps ZooKeeper's default 1 MiB request limit (`jute.maxbuffer`) or a higher
//! one. With `user:password@` in the spec, the session authenticates with `digest` and new
//! znodes are created with the creator-only ACL; without it they are open to everyone.

use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;
use zookeeper_client as zk;

use crate::backend::{Backend, BoxFuture};
use crate::spec::ZkStorageSpec;
use crate::{Error, Result};

/// The largest document kept in `P/state` itself, and the size of each chunk of a larger one;
/// well below ZooKeeper's 1 MiB request limit. A 300-node state (1–2 KB per node) fits in
/// one znode.
pub const CHUNK_SIZE: usize = 768 * 1024;

/// The first line of a manifest; a JSON document can never start with it.
const MANIFEST_MAGIC: &[u8] = b"mesos-data-services/state-chunks\n";

/// Tuning of the ZooKeeper session; the defaults suit production.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZkOptions {
    /// Session timeout to negotiate with ZooKeeper.
    pub session_timeout: Duration,
    /// How long establishing a session may take before a load or save fails.
    pub connect_timeout: Duration,
}

impl Default for ZkOptions {
    fn default() -> Self {
        ZkOptions {
            session_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(30),
        }
    }
}

/// Keeps the state in znodes of a ZooKeeper ensemble.
#[derive(Debug)]
pub struct ZkBackend {
    spec: ZkStorageSpec,
    options: ZkOptions,
    state_path: String,
    chunks_path: String,
    inner: Mutex<Inner>,
}

/// What the backend knows between calls; one load or save runs at a time.
#[derive(Debug)]
struct Inner {
    client: Option<zk::Client>,
    expected: Expected,
    // The bytes of `P/state` of a commit whose outcome is unknown.
    in_doubt: Option<Vec<u8>>,
}

/// What `P/state` should look like for the next save to succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expected {
    /// Nothing was loaded yet: saves are refused.
    Unread,
    /// The znode did not exist: the next save creates it.
    Absent,
    /// The znode had this data version.
    Version(i32),
}

/// The content of `P/state` for a chunked document.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    /// Chunk znode names under `P/state-chunks`, in document order.
    chunks: Vec<String>,
    /// Total size of the document in bytes.
    size: u64,
    /// Hex SHA-256 of the whole document.
    sha256: String,
}

impl ZkBackend {
    /// A backend for `spec`; it connects at the first load.
    pub fn new(spec: ZkStorageSpec, options: ZkOptions) -> ZkBackend {
        let state_path = format!("{}/state", spec.path());
        let chunks_path = format!("{}/state-chunks", spec.path());
        ZkBackend {
            spec,
            options,
            state_path,
            chunks_path,
            inner: Mutex::new(Inner {
                client: None,
                expected: Expected::Unread,
                in_doubt: None,
            }),
        }
    }

    /// The znode holding the document or its manifest.
    pub fn state_path(&self) -> &str {
        &self.state_path
    }

    /// The znode under which chunks of large documents live.
    pub fn chunks_path(&self) -> &str {
        &self.chunks_path
    }

    fn chunk_path(&self, name: &str) -> String {
        format!("{}/{name}", self.chunks_path)
    }

    fn concurrent_writer(&self) -> Error {
        Error::ConcurrentWriter {
            location: self.location(),
        }
    }

    fn damaged(&self, problem: String) -> Error {
        Error::Chunks {
            location: self.location(),
            problem,
        }
    }

    /// The ACL of new znodes: the spec's user only when credentials were given.
    fn create_options(&self) -> zk::CreateOptions<'static> {
        let acls = if self.spec.credentials().is_some() {
            zk::Acls::creator_all()
        } else {
            zk::Acls::anyone_all()
        };
        zk::CreateMode::Persistent.with_acls(acls)
    }

    /// The live session, establishing a new one if there is none or it ended.
    async fn client(&self, inner: &mut Inner) -> Result<zk::Client> {
        if let Some(client) = &inner.client {
            if !client.state().is_terminated() {
                return Ok(client.clone());
            }
            tracing::warn!(state = ?client.state(), "zookeeper session ended; reconnecting");
        }
        inner.client = None;
        let target = self.spec.connect_string();
        let mut connector =
            zk::Client::connector().with_session_timeout(self.options.session_timeout);
        if let Some(credentials) = self.spec.credentials() {
            connector = connector.with_auth("digest", &credentials.digest_auth());
        }
        let client = tokio::time::timeout(self.options.connect_timeout, connector.connect(&target))
            .await
            .map_err(|_| zk::Error::Timeout)
            .and_then(|connected| connected)
            .map_err(zk_error("connect", &target))?;
        tracing::info!(
            session = ?client.session_id(),
            timeout = ?client.session_timeout(),
            path = %self.spec.path(),
            "zookeeper session for the state established"
        );
        inner.client = Some(client.clone());
        Ok(client)
    }

    async fn load_locked(&self) -> Result<Option<Bytes>> {
        let mut inner = self.inner.lock().await;
        let client = self.client(&mut inner).await?;
        let (document, expected) = self.read(&client).await?;
        inner.expected = expected;
        inner.in_doubt = None;
        Ok(document)
    }

    /// Reads `P/state` and, for a manifest, its chunks.
    async fn read(&self, client: &zk::Client) -> Result<(Option<Bytes>, Expected)> {
        let (data, stat) = match client.get_data(&self.state_path).await {
            Ok(read) => read,
            Err(zk::Error::NoNode) => {
                tracing::info!(path = %self.state_path, "no state znode yet; starting fresh");
                return Ok((None, Expected::Absent));
            }
            Err(e) => return Err(zk_error("read", &self.state_path)(e)),
        };
        let expected = Expected::Version(stat.version);
        let Some(manifest) = data.strip_prefix(MANIFEST_MAGIC) else {
            tracing::debug!(path = %self.state_path, bytes = data.len(), version = stat.version, "state znode read");
            return Ok((Some(Bytes::from(data)), expected));
        };
        let manifest: Manifest = serde_json::from_slice(manifest)
            .map_err(|e| self.damaged(format!("its chunk manifest is not valid: {e}")))?;
        let mut document = Vec::new();
        for name in &manifest.chunks {
            if name.is_empty() || name.contains('/') {
                return Err(self.damaged(format!("the manifest names an invalid chunk `{name}`")));
            }
            let path = self.chunk_path(name);
            match client.get_data(&path).await {
                Ok((chunk, _)) => document.extend_from_slice(&chunk),
                Err(zk::Error::NoNode) => {
                    // A writer that replaced the manifest meanwhile deletes the old chunks.
                    let now = client
                        .check_stat(&self.state_path)
                        .await
                        .map_err(zk_error("read", &self.state_path))?;
                    return Err(match now {
                        Some(now) if now.version == stat.version => {
                            self.damaged(format!("chunk {path} named in the manifest is missing"))
                        }
                        _ => self.concurrent_writer(),
                    });
                }
                Err(e) => return Err(zk_error("read", &path)(e)),
            }
        }
        if document.len() as u64 != manifest.size {
            return Err(self.damaged(format!(
                "its chunks hold {} bytes, the manifest says {}",
                document.len(),
                manifest.size
            )));
        }
        let digest = hex::encode(Sha256::digest(&document));
        if digest != manifest.sha256 {
            return Err(self.damaged(format!(
                "its chunks have SHA-256 {digest}, the manifest says {}",
                manifest.sha256
            )));
        }
        tracing::debug!(
            path = %self.state_path,
            bytes = document.len(),
            chunks = manifest.chunks.len(),
            version = stat.version,
            "chunked state read"
        );
        Ok((Some(Bytes::from(document)), expected))
    }

    async fn save_locked(&self, document: Bytes) -> Result<()> {
        let mut inner = self.inner.lock().await;
        if inner.expected == Expected::Unread {
            return Err(Error::NotLoaded {
                location: self.location(),
            });
        }
        let client = self.client(&mut inner).await?;
        self.write(&client, &mut inner, &document).await
    }

    async fn write(&self, client: &zk::Client, inner: &mut Inner, document: &[u8]) -> Result<()> {
        if let Some(attempt) = inner.in_doubt.take() {
            match client.get_data(&self.state_path).await {
                Ok((data, stat)) if data == attempt => {
                    tracing::info!(
                        version = stat.version,
                        "the save whose outcome was unknown was applied"
                    );
                    inner.expected = Expected::Version(stat.version);
                }
                // Not applied; if someone else wrote instead, the commit below says so.
                Ok(_) | Err(zk::Error::NoNode) => {}
                Err(e) => {
                    inner.in_doubt = Some(attempt);
                    return Err(zk_error("read", &self.state_path)(e));
                }
            }
        }
        let options = self.create_options();
        if inner.expected == Expected::Absent {
            client
                .mkdir(self.spec.path(), &options)
                .await
                .map_err(zk_error("create", self.spec.path()))?;
        }
        let (payload, chunks) = if document.len() <= CHUNK_SIZE {
            (document.to_vec(), Vec::new())
        } else {
            self.write_chunks(client, document).await?
        };

        let mut transaction = client.new_multi_writer();
        let mut staged = Ok(());
        for name in &chunks {
            // Version 0: created by this save and never changed by anyone.
            staged = staged.and_then(|()| transaction.add_check_version(&self.chunk_path(name), 0));
        }
        staged = staged.and_then(|()| match inner.expected {
            Expected::Version(version) => {
                transaction.add_set_data(&self.state_path, &payload, Some(version))
            }
            _ => transaction.add_create(&self.state_path, &payload, &options),
        });
        if let Err(e) = staged {
            self.delete_chunks(client, &chunks).await;
            return Err(zk_error("commit", &self.state_path)(e));
        }
        match transaction.commit().await {
            Ok(results) => {
                let version = match results.last() {
                    Some(zk::MultiWriteResult::SetData { stat }) => stat.version,
                    // Servers with ZOOKEEPER-4026 return no stat for a create; it is version 0.
                    Some(zk::MultiWriteResult::Create { stat, .. }) if !stat.is_invalid() => {
                        stat.version
                    }
                    _ => 0,
                };
                inner.expected = Expected::Version(version);
                tracing::debug!(
                    path = %self.state_path,
                    bytes = document.len(),
                    chunks = chunks.len(),
                    version,
                    "state saved"
                );
            }
            Err(zk::MultiWriteError::OperationFailed {
                source: zk::Error::BadVersion | zk::Error::NodeExists | zk::Error::NoNode,
                index,
            }) => {
                tracing::error!(index, path = %self.state_path, "the state changed under this scheduler");
                self.delete_chunks(client, &chunks).await;
                return Err(self.concurrent_writer());
            }
            Err(e) => {
                let source = zk::Error::from(e);
                if outcome_unknown(&source) {
                    // Keep the chunks: the manifest may refer to them.
                    inner.in_doubt = Some(payload);
                } else {
                    self.delete_chunks(client, &chunks).await;
                }
                return Err(zk_error("commit", &self.state_path)(source));
            }
        }
        self.remove_stale_chunks(client, &chunks).await;
        Ok(())
    }

    /// Creates the chunks of `document` under a fresh write id; returns the manifest's bytes
    /// and the chunk names.
    async fn write_chunks(
        &self,
        client: &zk::Client,
        document: &[u8],
    ) -> Result<(Vec<u8>, Vec<String>)> {
        let options = self.create_options();
        client
            .mkdir(&self.chunks_path, &options)
            .await
            .map_err(zk_error("create", &self.chunks_path))?;
        // A fresh id per save, so that concurrent or crashed saves never share a chunk.
        let write_id = format!("{:016x}", fastrand::u64(..));
        let mut names = Vec::new();
        for (index, part) in document.chunks(CHUNK_SIZE).enumerate() {
            let name = format!("{write_id}-{index:04}");
            let path = self.chunk_path(&name);
            if let Err(e) = client.create(&path, part, &options).await {
                self.delete_chunks(client, &names).await;
                return Err(zk_error("create", &path)(e));
            }
            names.push(name);
        }
        let manifest = Manifest {
            chunks: names.clone(),
            size: document.len() as u64,
            sha256: hex::encode(Sha256::digest(document)),
        };
        let mut payload = MANIFEST_MAGIC.to_vec();
        serde_json::to_writer(&mut payload, &manifest)
            .map_err(|source| Error::Encode { source })?;
        Ok((payload, names))
    }

    /// Best-effort removal of chunks this save created but did not commit.
    async fn delete_chunks(&self, client: &zk::Client, names: &[String]) {
        for name in names {
            let path = self.chunk_path(name);
            if let Err(e) = client.delete(&path, None).await {
                tracing::warn!(chunk = %path, error = %e, "cannot delete an uncommitted chunk");
            }
        }
    }

    /// Deletes every chunk the current manifest does not name (earlier saves, failed saves).
    async fn remove_stale_chunks(&self, client: &zk::Client, keep: &[String]) {
        let children = match client.list_children(&self.chunks_path).await {
            Ok(children) => children,
            Err(zk::Error::NoNode) => return,
            Err(e) => {
                tracing::warn!(path = %self.chunks_path, error = %e, "cannot list old chunks");
                return;
            }
        };
        for name in children.iter().filter(|name| !keep.contains(name)) {
            let path = self.chunk_path(name);
            match client.delete(&path, None).await {
                Ok(()) | Err(zk::Error::NoNode) => {}
                Err(e) => tracing::warn!(chunk = %path, error = %e, "cannot delete an old chunk"),
            }
        }
    }
}

/// Wraps a client error with what was attempted on which znode (or ensemble).
fn zk_error(operation: &'static str, target: &str) -> impl FnOnce(zk::Error) -> Error + use<> {
    let target = target.to_owned();
    move |source| Error::ZooKeeper {
        operation,
        target,
        source,
    }
}

/// Errors after which a commit may or may not have been applied.
fn outcome_unknown(error: &zk::Error) -> bool {
    matches!(
        error,
        zk::Error::ConnectionLoss
            | zk::Error::Timeout
            | zk::Error::SessionExpired
            | zk::Error::ClientClosed
    )
}

impl Backend for ZkBackend {
    fn location(&self) -> String {
        let mut location = format!("zk://{}{}", self.spec.connect_string(), self.state_path);
        if let Some(credentials) = self.spec.credentials() {
            location = location.replacen("zk://", &format!("zk://{}@", credentials.user()), 1);
        }
        location
    }

    fn load(&self) -> BoxFuture<'_, Result<Option<Bytes>>> {
        Box::pin(self.load_locked())
    }

    fn save(&self, document: Bytes) -> BoxFuture<'_, Result<()>> {
        Box::pin(self.save_locked(document))
    }
}
