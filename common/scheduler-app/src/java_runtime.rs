//! The optional Java runtime handed to every task, for agents without a
//! suitable Java: a tarball this scheduler serves (`--jre-tarball`) or one
//! agents download themselves (`--jre-url` with `--jre-sha256`).

use std::path::{Path, PathBuf};

use executor_protocol::{
    archive_kind,
    validate::{artifact_url_problem, sha256_problem},
};
use scheduler_runtime::ArtifactRef;

/// The Java runtime flags of `<framework> scheduler`.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct JavaRuntimeArgs {
    /// A Java runtime tarball (.tar.gz) this scheduler serves to agents; every task runs with it as JAVA_HOME. Build one with `packaging/jre-tarball.sh`. Default: the agents' own java
    #[arg(
        long,
        value_name = "PATH",
        env = "JRE_TARBALL",
        conflicts_with = "jre_url"
    )]
    pub jre_tarball: Option<PathBuf>,

    /// Agents download the Java runtime from this URL instead (a .tar.gz, .tgz or .zip holding bin/java); needs --jre-sha256
    #[arg(long, value_name = "URL", requires = "jre_sha256")]
    pub jre_url: Option<String>,

    /// The sha256 of the file at --jre-url (64 hex digits)
    #[arg(long, value_name = "HEX", requires = "jre_url")]
    pub jre_sha256: Option<String>,
}

/// Where agents get the Java runtime from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JavaRuntime {
    /// A local tarball this scheduler serves.
    Served(PathBuf),
    /// A URL and sha256 handed to agents as they are.
    External(ArtifactRef),
}

impl JavaRuntimeArgs {
    /// The runtime the flags name, if any, checked before anything starts:
    /// a tarball must exist, be a gzipped tar and hold `bin/java`.
    pub fn runtime(&self) -> Result<Option<JavaRuntime>, String> {
        if let (Some(url), Some(sha256)) = (&self.jre_url, &self.jre_sha256) {
            let mut problems: Vec<String> = [
                artifact_url_problem(url).map(|p| format!("--jre-url: {p}")),
                sha256_problem(sha256).map(|p| format!("--jre-sha256: {p}")),
            ]
            .into_iter()
            .flatten()
            .collect();
            if problems.is_empty() && archive_kind(url).is_none() {
                problems.push(format!(
                    "--jre-url {url}: agents unpack the runtime by the URL's suffix, which must be .tar.gz, .tgz or .zip"
                ));
            }
            return if problems.is_empty() {
                Ok(Some(JavaRuntime::External(ArtifactRef {
                    url: url.clone(),
                    sha256: sha256.to_ascii_lowercase(),
                })))
            } else {
                Err(problems.join("; "))
            };
        }
        let Some(path) = &self.jre_tarball else {
            return Ok(None);
        };
        if !path.is_file() {
            return Err(format!(
                "--jre-tarball {}: no such file; build one from a local JDK with `packaging/jre-tarball.sh`",
                path.display()
            ));
        }
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if !(name.ends_with(".tar.gz") || name.ends_with(".tgz")) {
            return Err(format!(
                "--jre-tarball {}: the file name must end in .tar.gz or .tgz (agents unpack it by its name)",
                path.display()
            ));
        }
        check_holds_java(path)?;
        Ok(Some(JavaRuntime::Served(path.clone())))
    }
}

/// Fails unless the tarball has `bin/java` at its top or under its top
/// directory, where the executor looks for it.
fn check_holds_java(path: &Path) -> Result<(), String> {
    let unreadable = |e: std::io::Error| format!("--jre-tarball {}: {e}", path.display());
    let file = std::fs::File::open(path).map_err(unreadable)?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    for entry in archive.entries().map_err(unreadable)? {
        let entry = entry.map_err(unreadable)?;
        let entry_path = entry.path().map_err(unreadable)?;
        let parts: Vec<_> = entry_path
            .components()
            .filter(|c| matches!(c, std::path::Component::Normal(_)))
            .collect();
        let is_java = |tail: &[std::path::Component]| {
            tail.len() == 2 && tail[0].as_os_str() == "bin" && tail[1].as_os_str() == "java"
        };
        if is_java(&parts) || (parts.len() == 3 && is_java(&parts[1..])) {
            return Ok(());
        }
    }
    Err(format!(
        "--jre-tarball {}: no bin/java at its top or under its top directory; it must hold a Java runtime (`packaging/jre-tarball.sh` builds one)",
        path.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tarball(dir: &Path, name: &str, members: &[&str]) -> PathBuf {
        let path = dir.join(name);
        let file = std::fs::File::create(&path).expect("create");
        let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
            file,
            flate2::Compression::fast(),
        ));
        for member in members {
            let mut header = tar::Header::new_gnu();
            header.set_size(0);
            header.set_mode(0o755);
            header.set_cksum();
            builder
                .append_data(&mut header, member, std::io::empty())
                .expect("append");
        }
        builder
            .into_inner()
            .and_then(|gz| gz.finish())
            .expect("finish");
        path
    }

    fn served(path: &Path) -> JavaRuntimeArgs {
        JavaRuntimeArgs {
            jre_tarball: Some(path.to_path_buf()),
            ..JavaRuntimeArgs::default()
        }
    }

    #[test]
    fn a_served_runtime_must_hold_java() {
        let dir = tempfile::tempdir().expect("tempdir");
        let good = tarball(dir.path(), "jre-17.tar.gz", &["jre-17/bin/java"]);
        assert_eq!(
            served(&good).runtime(),
            Ok(Some(JavaRuntime::Served(good.clone())))
        );
        let flat = tarball(dir.path(), "flat.tgz", &["lib/x.so", "bin/java"]);
        assert!(served(&flat).runtime().is_ok());

        let empty = tarball(dir.path(), "empty.tar.gz", &["jre-17/lib/x.so"]);
        let error = served(&empty).runtime().expect_err("no java");
        assert!(error.contains("no bin/java"), "{error}");
        let deep = tarball(dir.path(), "deep.tar.gz", &["a/b/bin/java"]);
        assert!(served(&deep).runtime().is_err());

        let zip = dir.path().join("jre.zip");
        std::fs::write(&zip, b"PK").expect("write");
        let error = served(&zip).runtime().expect_err("not a tar");
        assert!(error.contains(".tar.gz or .tgz"), "{error}");
        let error = served(&dir.path().join("missing.tar.gz"))
            .runtime()
            .expect_err("missing");
        assert!(error.contains("packaging/jre-tarball.sh"), "{error}");
        assert_eq!(JavaRuntimeArgs::default().runtime(), Ok(None));
    }

    #[test]
    fn a_downloaded_runtime_needs_an_archive_url_and_a_sha256() {
        let sha = "AB".repeat(32);
        let args = |url: &str, sha256: &str| JavaRuntimeArgs {
            jre_url: Some(url.into()),
            jre_sha256: Some(sha256.into()),
            ..JavaRuntimeArgs::default()
        };
        assert_eq!(
            args("https://example.org/jre-17.tar.gz", &sha).runtime(),
            Ok(Some(JavaRuntime::External(ArtifactRef {
                url: "https://example.org/jre-17.tar.gz".into(),
                sha256: "ab".repeat(32),
            })))
        );
        let error = args("ftp://x/jre.tgz", "nope").runtime().expect_err("bad");
        assert!(
            error.contains("--jre-url") && error.contains("--jre-sha256"),
            "{error}"
        );
        let error = args("https://example.org/jre.bin", &sha)
            .runtime()
            .expect_err("not an archive");
        assert!(error.contains("suffix"), "{error}");
    }
}
