//! Downloading, checking and caching artifacts, and installing them into the sandbox.
//!
//! Cache layout: `<cache>/sha256/<hex>` holds a file whose SHA-256 is `<hex>`.
//! A download goes to `<cache>/tmp/`, is hashed while it streams, and is
//! renamed into place only when the hash matches, so the cache never holds
//! an unchecked file and concurrent executors on one agent cannot see a
//! partial one. A relaunch on the same agent therefore downloads nothing.
//!
//! Archives are unpacked once per checksum into `<cache>/unpacked/<hex>/`
//! (checked entry by entry, then renamed into place), and a task's
//! destination gets a copy of that tree whose regular files are hard links
//! (copies when the cache is on another file system): a relaunch neither
//! downloads nor decompresses anything. Files of the tree are thus shared by
//! every sandbox on the agent: services must not rewrite their installed
//! files in place (config files are written to a new file and renamed over).

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use executor_protocol::{Artifact, archive_kind};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use tracing::{info, warn};

use crate::error::Error;
use crate::unpack;

/// How downloads behave.
#[derive(Clone, Debug)]
pub struct FetchPolicy {
    /// Attempts per artifact (transient failures only).
    pub attempts: u32,
    /// Pause before the second attempt; doubles after each.
    pub retry_delay: Duration,
    /// Give up on a download that receives nothing for this long.
    pub stall_timeout: Duration,
    /// Connecting may take this long.
    pub connect_timeout: Duration,
}

impl Default for FetchPolicy {
    fn default() -> Self {
        FetchPolicy {
            attempts: 3,
            retry_delay: Duration::from_secs(1),
            stall_timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
        }
    }
}

/// Fetches artifacts through the cache.
#[derive(Clone, Debug)]
pub struct Fetcher {
    client: LazyClient,
    cache: PathBuf,
    policy: FetchPolicy,
}

/// An HTTP client built on first use: building one sets up TLS (root
/// certificates included), which a relaunch served from the cache never
/// needs, so the idle executor does not carry it.
#[derive(Clone, Debug)]
pub struct LazyClient {
    cell: Arc<OnceLock<reqwest::Client>>,
    build: fn() -> reqwest::ClientBuilder,
}

impl LazyClient {
    /// A client that `build` configures when first needed.
    pub fn new(build: fn() -> reqwest::ClientBuilder) -> Self {
        LazyClient {
            cell: Arc::new(OnceLock::new()),
            build,
        }
    }

    /// The client, built now if needed.
    pub fn get(&self) -> Result<&reqwest::Client, Error> {
        if let Some(client) = self.cell.get() {
            return Ok(client);
        }
        let client = (self.build)().build().map_err(Error::HttpClient)?;
        Ok(self.cell.get_or_init(|| client))
    }
}

/// Whether a failed attempt is worth repeating.
enum Attempt {
    Retry(String),
    Fail(Error),
}

impl Fetcher {
    /// A fetcher that caches in `cache`.
    pub fn new(cache: PathBuf, policy: FetchPolicy) -> Fetcher {
        Fetcher {
            // A task fetches once per launch: keeping the connection would
            // only hold a socket and buffers open on the artifact server (the
            // scheduler) for every running node.
            client: LazyClient::new(|| {
                reqwest::Client::builder()
                    .connect_timeout(FetchPolicy::default().connect_timeout)
                    .pool_max_idle_per_host(0)
            }),
            cache,
            policy,
        }
    }

    /// The cached, verified file for `artifact`, downloading it if needed.
    pub async fn fetch(&self, artifact: &Artifact) -> Result<PathBuf, Error> {
        let sha = artifact.sha256.to_ascii_lowercase();
        let cached = self.cache.join("sha256").join(&sha);
        if tokio::fs::metadata(&cached)
            .await
            .is_ok_and(|m| m.is_file())
        {
            info!(url = %artifact.url, sha256 = %sha, "artifact cache hit");
            return Ok(cached);
        }
        let tmp_dir = self.cache.join("tmp");
        for dir in [&tmp_dir, &self.cache.join("sha256")] {
            tokio::fs::create_dir_all(dir)
                .await
                .map_err(Error::io("create artifact cache", dir.as_path()))?;
        }
        let tmp = tmp_dir.join(format!("{sha}.{}", uuid::Uuid::new_v4().simple()));
        let mut delay = self.policy.retry_delay;
        let mut attempt = 1;
        let result = loop {
            let outcome = self.download(&artifact.url, &tmp).await;
            match outcome {
                Ok(actual) if actual == sha => break Ok(()),
                Ok(actual) => {
                    break Err(Error::ChecksumMismatch {
                        url: artifact.url.clone(),
                        expected: sha.clone(),
                        actual,
                    });
                }
                Err(Attempt::Fail(e)) => break Err(e),
                Err(Attempt::Retry(reason)) if attempt >= self.policy.attempts => {
                    break Err(Error::Download {
                        url: artifact.url.clone(),
                        reason: format!("{reason} (after {attempt} attempts)"),
                    });
                }
                Err(Attempt::Retry(reason)) => {
                    warn!(url = %artifact.url, attempt, %reason, "download failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                    attempt += 1;
                }
            }
        };
        if let Err(e) = result {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(e);
        }
        tokio::fs::rename(&tmp, &cached)
            .await
            .map_err(Error::io("store artifact in cache", cached.as_path()))?;
        info!(url = %artifact.url, sha256 = %sha, "artifact downloaded and verified");
        Ok(cached)
    }

    /// One download attempt into `to`; returns the hex SHA-256 of what arrived.
    async fn download(&self, url: &str, to: &Path) -> Result<String, Attempt> {
        let parsed = url::Url::parse(url).map_err(|e| {
            Attempt::Fail(Error::Download {
                url: url.to_owned(),
                reason: e.to_string(),
            })
        })?;
        if parsed.scheme() == "file" {
            let from = parsed.to_file_path().map_err(|()| {
                Attempt::Fail(Error::Download {
                    url: url.to_owned(),
                    reason: "not a local file path".into(),
                })
            })?;
            return copy_hashing(&from, to).await.map_err(|e| {
                Attempt::Fail(Error::Download {
                    url: url.to_owned(),
                    reason: e.to_string(),
                })
            });
        }
        let client = self.client.get().map_err(Attempt::Fail)?;
        let mut response = client
            .get(parsed)
            .send()
            .await
            .map_err(|e| Attempt::Retry(e.to_string()))?;
        let status = response.status();
        if status.is_client_error() {
            return Err(Attempt::Fail(Error::Download {
                url: url.to_owned(),
                reason: format!("the server answered {status}"),
            }));
        }
        if !status.is_success() {
            return Err(Attempt::Retry(format!("the server answered {status}")));
        }
        let io = |e: std::io::Error| Attempt::Fail(Error::io("write download", to)(e));
        // Chunks arrive in a few KiB; batching them saves a blocking-pool hop per chunk.
        let mut file = tokio::io::BufWriter::with_capacity(
            1024 * 1024,
            tokio::fs::File::create(to).await.map_err(io)?,
        );
        let mut hasher = Sha256::new();
        loop {
            let chunk = tokio::time::timeout(self.policy.stall_timeout, response.chunk())
                .await
                .map_err(|_| {
                    Attempt::Retry(format!(
                        "nothing received for {:?}",
                        self.policy.stall_timeout
                    ))
                })?
                .map_err(|e| Attempt::Retry(e.to_string()))?;
            let Some(chunk) = chunk else { break };
            hasher.update(&chunk);
            file.write_all(&chunk).await.map_err(io)?;
        }
        file.flush().await.map_err(io)?;
        file.get_ref().sync_all().await.map_err(io)?;
        Ok(hex::encode(hasher.finalize()))
    }

    /// Fetches `artifact` and puts it in place under `sandbox`: its unpacked
    /// tree linked into its destination, or the file itself linked there
    /// under the URL's file name.
    pub async fn install(&self, artifact: &Artifact, sandbox: &Path) -> Result<(), Error> {
        let cached = self.fetch(artifact).await?;
        let dest = sandbox.join(&artifact.destination);
        let url = artifact.url.clone();
        let extract = artifact.extract.then(|| archive_kind(&url)).flatten();
        let cache = self.cache.clone();
        let sha = artifact.sha256.to_ascii_lowercase();
        let result = tokio::task::spawn_blocking(move || match extract {
            Some(kind) => {
                let tree = unpacked_tree(&cache, &sha, &cached, kind, &url)?;
                unpack::link_tree(&tree, &dest, &url)
            }
            None => {
                std::fs::create_dir_all(&dest).map_err(Error::io("create destination", &dest))?;
                let name = url::Url::parse(&url)
                    .ok()
                    .and_then(|u| {
                        u.path_segments()
                            .and_then(|mut s| s.next_back().map(str::to_owned))
                    })
                    .filter(|n| !n.is_empty() && n != "." && n != "..")
                    .unwrap_or_else(|| "artifact".into());
                unpack::link_file(&cached, &dest.join(name))
            }
        })
        .await;
        match result {
            Ok(r) => r,
            Err(join) => Err(Error::Io {
                what: "install artifact",
                path: sandbox.to_path_buf(),
                source: std::io::Error::other(join.to_string()),
            }),
        }
    }
}

/// The unpacked tree of the verified archive `archive` (SHA-256 `sha`):
/// `<cache>/unpacked/<sha>`, unpacked now if no executor on this agent did
/// it before. Unpacking happens in `<cache>/tmp/` and the finished tree is
/// renamed into place, so a tree in `unpacked/` is always complete and was
/// checked entry by entry; an unsafe archive leaves nothing behind.
fn unpacked_tree(
    cache: &Path,
    sha: &str,
    archive: &Path,
    kind: executor_protocol::ArchiveKind,
    label: &str,
) -> Result<PathBuf, Error> {
    let tree = cache.join("unpacked").join(sha);
    if tree.is_dir() {
        info!(archive = %label, sha256 = %sha, "unpacked tree cache hit");
        return Ok(tree);
    }
    let parent = cache.join("unpacked");
    std::fs::create_dir_all(&parent).map_err(Error::io("create unpack cache", &parent))?;
    let tmp = cache
        .join("tmp")
        .join(format!("unpack-{sha}.{}", uuid::Uuid::new_v4().simple()));
    let unpacked = unpack::unpack(archive, kind, &tmp, label);
    if let Err(e) = unpacked {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    match std::fs::rename(&tmp, &tree) {
        Ok(()) => info!(archive = %label, sha256 = %sha, "archive unpacked into the cache"),
        // Another executor on this agent finished the same tree first.
        Err(_) if tree.is_dir() => {
            let _ = std::fs::remove_dir_all(&tmp);
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(Error::io("store unpacked tree in cache", &tree)(e));
        }
    }
    Ok(tree)
}

/// Copies a local file while hashing it.
async fn copy_hashing(from: &Path, to: &Path) -> Result<String, Error> {
    let (from, to) = (from.to_path_buf(), to.to_path_buf());
    tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut input = std::fs::File::open(&from).map_err(Error::io("open artifact", &from))?;
        let mut output = std::fs::File::create(&to).map_err(Error::io("write download", &to))?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = input
                .read(&mut buf)
                .map_err(Error::io("read artifact", &from))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            output
                .write_all(&buf[..n])
                .map_err(Error::io("write download", &to))?;
        }
        output
            .sync_all()
            .map_err(Error::io("write download", &to))?;
        Ok(hex::encode(hasher.finalize()))
    })
    .await
    .map_err(|e| Error::Io {
        what: "copy artifact",
        path: PathBuf::new(),
        source: std::io::Error::other(e.to_string()),
    })?
}

/// The hex SHA-256 of a file (for tests and tools).
pub fn sha256_file(path: &Path) -> Result<String, Error> {
    let bytes = std::fs::read(path).map_err(Error::io("read", path))?;
    Ok(hex::encode(Sha256::digest(&bytes)))
}
