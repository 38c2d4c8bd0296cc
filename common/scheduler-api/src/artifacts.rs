//! The artifact server's registry: files agents download by name (the
//! executor binary, service tarballs), each with its SHA-256.
//!
//! Only registered names are served, each mapped to one file, so no request
//! path ever reaches the filesystem and there is nothing to traverse. The
//! hash is computed once at registration; a file that changes size afterwards
//! is refused rather than served with a stale checksum.

use std::{
    collections::BTreeMap,
    fs::File,
    io::Read,
    path::{Path, PathBuf},
};

use scheduler_runtime::ArtifactRef;
use sha2::{Digest, Sha256};

use crate::error::ApiError;

/// One registered file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArtifactFile {
    /// Where it is on this host.
    pub path: PathBuf,
    /// Its SHA-256 in lower-case hex.
    pub sha256: String,
    /// Its size in bytes when registered.
    pub size: u64,
}

/// Files served under `/artifacts/{name}`, by name.
#[derive(Clone, Debug, Default)]
pub struct Artifacts {
    files: BTreeMap<String, ArtifactFile>,
}

impl Artifacts {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `path` under `name`, reading it once to hash it. Blocking:
    /// call it at startup (or from `spawn_blocking`).
    pub fn add(
        &mut self,
        name: impl Into<String>,
        path: impl AsRef<Path>,
    ) -> Result<&ArtifactFile, ApiError> {
        let name = name.into();
        let path = path.as_ref().to_path_buf();
        if let Some(reason) = name_problem(&name) {
            return Err(ApiError::ArtifactName { name, reason });
        }
        let io = |source| ApiError::Artifact {
            name: name.clone(),
            path: path.display().to_string(),
            source,
        };
        let mut file = File::open(&path).map_err(io)?;
        let mut hasher = Sha256::new();
        let mut buffer = vec![0u8; 256 * 1024];
        let mut size = 0u64;
        loop {
            let n = file.read(&mut buffer).map_err(io)?;
            if n == 0 {
                break;
            }
            hasher.update(&buffer[..n]);
            size += n as u64;
        }
        let entry = ArtifactFile {
            path,
            sha256: hex::encode(hasher.finalize()),
            size,
        };
        tracing::info!(artifact = %name, size, sha256 = %entry.sha256, "artifact registered");
        self.files.insert(name.clone(), entry);
        Ok(&self.files[&name])
    }

    /// The registered file called `name`.
    pub fn get(&self, name: &str) -> Option<&ArtifactFile> {
        self.files.get(name)
    }

    /// Registered names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.files.keys().map(String::as_str)
    }

    /// Where agents download `name` from a scheduler reachable at `base_url`,
    /// with its checksum, for a task document.
    pub fn reference(&self, base_url: &str, name: &str) -> Option<ArtifactRef> {
        self.files.get(name).map(|file| ArtifactRef {
            url: format!("{}/artifacts/{name}", base_url.trim_end_matches('/')),
            sha256: file.sha256.clone(),
        })
    }
}

fn name_problem(name: &str) -> Option<String> {
    if name.is_empty() || name.len() > 128 {
        Some("must have 1 to 128 characters".into())
    } else if name.starts_with('.') {
        Some("must not start with '.'".into())
    } else if name.ends_with(".sha256") {
        Some("`.sha256` names are reserved for the checksums the server adds itself".into())
    } else if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
    {
        Some("may contain only letters, digits, '.', '-' and '_'".into())
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registration_hashes_and_refuses_bad_names() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("x.tar.gz");
        std::fs::write(&path, b"abc").expect("write");
        let mut artifacts = Artifacts::new();
        let file = artifacts.add("x.tar.gz", &path).expect("add");
        assert_eq!(
            file.sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(file.size, 3);
        let reference = artifacts
            .reference("http://10.0.0.1:7000/", "x.tar.gz")
            .expect("registered");
        assert_eq!(reference.url, "http://10.0.0.1:7000/artifacts/x.tar.gz");
        for bad in ["", "../x", ".hidden", "a/b", "x.sha256"] {
            assert!(
                matches!(
                    artifacts.add(bad, &path),
                    Err(ApiError::ArtifactName { .. })
                ),
                "{bad:?} must be refused"
            );
        }
        let missing = artifacts.add("gone", dir.path().join("gone"));
        assert!(matches!(missing, Err(ApiError::Artifact { .. })));
    }
}
