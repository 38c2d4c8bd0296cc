//! Where a framework's service tarball comes from on the scheduler's host:
//! the packaging cache, the newest built tarball in it, the distribution's
//! top directory and the name it is served under.

use std::path::{Path, PathBuf};

/// The packaging cache: `$MESOS_DS_CACHE`, else `~/.cache/mesos-data-services`.
pub fn cache_dir(lookup: impl Fn(&str) -> Option<String>) -> Option<PathBuf> {
    lookup("MESOS_DS_CACHE")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            lookup("HOME")
                .filter(|h| !h.is_empty())
                .map(|h| Path::new(&h).join(".cache/mesos-data-services"))
        })
}

/// One service's tarball naming: `kafka-3.9.2.tar.gz` from
/// `packaging/service-tarball.sh kafka`, chosen with `--kafka-…` flags.
#[derive(Clone, Copy, Debug)]
pub struct ServiceTarball {
    /// The file-name prefix and flag prefix (`kafka`).
    pub name: &'static str,
    /// How operators call it (`Kafka`).
    pub title: &'static str,
}

/// The version numbers in a tarball's name, for picking the newest.
fn version_key(name: &str) -> Vec<u64> {
    name.split(|c: char| !c.is_ascii_digit())
        .filter_map(|part| part.parse().ok())
        .collect()
}

impl ServiceTarball {
    /// The newest `<name>-*.tar.gz` in `dir`.
    pub fn newest(&self, dir: &Path) -> Result<PathBuf, String> {
        let name = self.name;
        let missing = || {
            format!(
                "no {} tarball found in {}: build one with `packaging/service-tarball.sh {name}`, or pass --{name}-tarball PATH, or --{name}-url URL with --{name}-sha256 HEX",
                self.title,
                dir.display()
            )
        };
        let prefix = format!("{name}-");
        let entries = std::fs::read_dir(dir).map_err(|_| missing())?;
        entries
            .filter_map(|entry| entry.ok())
            .filter_map(|entry| {
                let file = entry.file_name().to_str()?.to_owned();
                (file.starts_with(&prefix) && file.ends_with(".tar.gz") && entry.path().is_file())
                    .then_some(file)
            })
            .max_by_key(|file| version_key(file))
            .map(|file| dir.join(file))
            .ok_or_else(missing)
    }

    /// The top directory of a `.tar.gz` distribution (`kafka-3.9.2/bin/…` → `kafka-3.9.2`).
    pub fn top_dir(&self, path: &Path) -> Result<String, String> {
        let unreadable =
            |e: std::io::Error| format!("cannot read the tarball {}: {e}", path.display());
        let file = std::fs::File::open(path).map_err(unreadable)?;
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
        let mut entries = archive.entries().map_err(unreadable)?;
        let first = entries
            .next()
            .ok_or_else(|| format!("the tarball {} is empty", path.display()))?
            .map_err(unreadable)?;
        let entry_path = first.path().map_err(unreadable)?;
        entry_path
            .components()
            .find_map(|c| match c {
                std::path::Component::Normal(name) => name.to_str().map(str::to_owned),
                _ => None,
            })
            .ok_or_else(|| {
                format!(
                    "the tarball {} has no top directory; pass --{}-dist-dir",
                    path.display(),
                    self.name
                )
            })
    }

    /// The name the served tarball gets: its file name, which must end in
    /// `.tar.gz` or `.tgz`, because the executor unpacks by the URL's extension.
    pub fn served_name(&self, path: &Path) -> Result<String, String> {
        let file = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if file.ends_with(".tar.gz") || file.ends_with(".tgz") {
            Ok(file.to_owned())
        } else {
            Err(format!(
                "--{}-tarball {}: the file name must end in .tar.gz or .tgz (it is a gzipped tar of the {} distribution)",
                self.name,
                path.display(),
                self.title
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_version_wins_and_a_missing_one_says_how_to_build_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let zk = ServiceTarball {
            name: "zookeeper",
            title: "ZooKeeper",
        };
        let missing = zk.newest(dir.path()).expect_err("empty");
        assert!(
            missing.contains("packaging/service-tarball.sh zookeeper"),
            "{missing}"
        );
        for file in [
            "zookeeper-3.9.5.tar.gz",
            "zookeeper-3.10.0.tar.gz",
            "kafka-9.tar.gz",
        ] {
            std::fs::write(dir.path().join(file), b"x").expect("write");
        }
        assert_eq!(
            zk.newest(dir.path()).expect("found"),
            dir.path().join("zookeeper-3.10.0.tar.gz")
        );
        assert!(zk.served_name(Path::new("/x/zk.zip")).is_err());
    }
}
