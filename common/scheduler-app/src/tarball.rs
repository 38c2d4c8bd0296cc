//! Where agents get a framework's service from: a tarball the scheduler
//! serves (given, or the newest built into the packaging cache) or a URL with
//! its sha256 handed to agents as it is; the distribution's top directory and
//! the name a served tarball goes by. The `--<service>-tarball`, `-url`,
//! `-sha256` and `-dist-dir` flags of every framework mean the same here.

use std::path::{Path, PathBuf};

use executor_protocol::validate::{artifact_url_problem, sha256_problem};
use scheduler_runtime::ArtifactRef;

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
    /// A top directory to show in messages (`kafka_2.13-3.9.2`).
    pub example_dir: &'static str,
}

/// One service's artifact flags as the operator gave them.
#[derive(Clone, Copy, Debug, Default)]
pub struct ArtifactFlags<'a> {
    /// `--<service>-tarball`: a local tarball to serve.
    pub tarball: Option<&'a Path>,
    /// `--<service>-url`: agents download from here instead.
    pub url: Option<&'a str>,
    /// `--<service>-sha256`: the digest of the file at the URL.
    pub sha256: Option<&'a str>,
    /// `--<service>-dist-dir`: the distribution's top directory.
    pub dist_dir: Option<&'a str>,
}

/// Where agents get the service from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServiceArtifact {
    /// A local tarball the scheduler serves.
    Served(PathBuf),
    /// A URL and sha256 handed to agents as they are.
    External(ArtifactRef),
}

/// The service artifact as the scheduler starts with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreparedArtifact {
    /// The distribution's top directory, when known before any task runs.
    pub dist_dir: Option<String>,
    /// Files the scheduler serves, by artifact name.
    pub served: Vec<(String, PathBuf)>,
    /// URLs agents fetch themselves, by artifact name.
    pub external: Vec<(String, ArtifactRef)>,
}

/// The top directory of a distribution from its URL's file name
/// (`…/kafka_2.13-3.9.2.tgz` → `kafka_2.13-3.9.2`).
pub fn distribution_dir(url: &str) -> Option<String> {
    let file = url.split(['?', '#']).next()?.rsplit('/').next()?;
    let dir = file
        .strip_suffix(".tar.gz")
        .or_else(|| file.strip_suffix(".tgz"))?;
    (!dir.is_empty()).then(|| dir.to_owned())
}

/// The version numbers in a tarball's name, for picking the newest.
fn version_key(name: &str) -> Vec<u64> {
    name.split(|c: char| !c.is_ascii_digit())
        .filter_map(|part| part.parse().ok())
        .collect()
}

impl ServiceTarball {
    /// Every problem with the flags, so that all are reported before anything starts.
    pub fn flag_problems(&self, flags: ArtifactFlags<'_>) -> Vec<String> {
        let name = self.name;
        let mut problems: Vec<String> = flags
            .sha256
            .and_then(sha256_problem)
            .map(|p| format!("--{name}-sha256: {p}"))
            .into_iter()
            .collect();
        if let Some(url) = flags.url {
            if let Some(problem) = artifact_url_problem(url) {
                problems.push(format!("--{name}-url: {problem}"));
            } else if flags.dist_dir.is_none() && distribution_dir(url).is_none() {
                problems.push(format!(
                    "cannot tell the tarball's top directory from --{name}-url {url}: pass --{name}-dist-dir (e.g. {})",
                    self.example_dir
                ));
            }
        }
        problems
    }

    /// Where agents get the service from: `--<name>-url`, `--<name>-tarball`,
    /// or the newest tarball under `cache` (the packaging cache directory).
    pub fn artifact(
        &self,
        flags: ArtifactFlags<'_>,
        cache: Option<&Path>,
    ) -> Result<ServiceArtifact, String> {
        let name = self.name;
        if let (Some(url), Some(sha256)) = (flags.url, flags.sha256) {
            return Ok(ServiceArtifact::External(ArtifactRef {
                url: url.to_owned(),
                sha256: sha256.to_ascii_lowercase(),
            }));
        }
        let path = match (flags.tarball, cache) {
            (Some(path), _) => path.to_owned(),
            (None, Some(cache)) => self.newest(&cache.join("artifacts"))?,
            (None, None) => {
                return Err(format!(
                    "neither MESOS_DS_CACHE nor HOME is set, so there is no packaging cache to take the {} tarball from: pass --{name}-tarball PATH",
                    self.title
                ));
            }
        };
        if !path.is_file() {
            return Err(format!(
                "--{name}-tarball {}: no such file; build one with `packaging/service-tarball.sh {name}`",
                path.display()
            ));
        }
        Ok(ServiceArtifact::Served(path))
    }

    /// The artifact the scheduler starts with, under `artifact_name`: a
    /// served tarball is read for its top directory (unless given) and its
    /// name checked, so that a bad file stops the scheduler before it starts.
    pub fn prepare(
        &self,
        flags: ArtifactFlags<'_>,
        cache: Option<&Path>,
        artifact_name: &str,
    ) -> Result<PreparedArtifact, String> {
        let given = flags.dist_dir.map(str::to_owned);
        Ok(match self.artifact(flags, cache)? {
            ServiceArtifact::Served(path) => {
                let dist_dir = match given {
                    Some(dir) => dir,
                    None => self.top_dir(&path)?,
                };
                self.served_name(&path)?;
                tracing::info!(tarball = %path.display(), "serving {}", self.title);
                PreparedArtifact {
                    dist_dir: Some(dist_dir),
                    served: vec![(artifact_name.to_owned(), path)],
                    external: Vec::new(),
                }
            }
            ServiceArtifact::External(reference) => {
                tracing::info!(url = %reference.url, "agents download {} from a URL", self.title);
                PreparedArtifact {
                    dist_dir: given.or_else(|| distribution_dir(&reference.url)),
                    served: Vec::new(),
                    external: vec![(artifact_name.to_owned(), reference)],
                }
            }
        })
    }

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
            example_dir: "apache-zookeeper-3.9.5-bin",
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

    const KAFKA: ServiceTarball = ServiceTarball {
        name: "kafka",
        title: "Kafka",
        example_dir: "kafka_2.13-3.9.2",
    };

    #[test]
    fn distribution_directories_come_from_the_file_name() {
        for (url, dir) in [
            ("http://h/a/kafka-3.9.2.tar.gz", Some("kafka-3.9.2")),
            (
                "https://h/kafka_2.13-3.9.2.tgz?x=1",
                Some("kafka_2.13-3.9.2"),
            ),
            ("https://h/a/b.tgz#frag", Some("b")),
            ("http://h/kafka.zip", None),
            ("http://h/.tgz", None),
        ] {
            assert_eq!(distribution_dir(url).as_deref(), dir, "{url}");
        }
    }

    #[test]
    fn every_flag_problem_is_named_with_its_flag() {
        let problems = KAFKA.flag_problems(ArtifactFlags {
            url: Some("ftp://h/kafka.tgz"),
            sha256: Some("12"),
            ..ArtifactFlags::default()
        });
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].starts_with("--kafka-sha256: \"12\" is not a SHA-256"));
        assert!(problems[1].starts_with("--kafka-url: scheme \"ftp\""));
        let unnamed = KAFKA.flag_problems(ArtifactFlags {
            url: Some("https://h/download?id=7"),
            ..ArtifactFlags::default()
        });
        assert!(
            unnamed[0].contains("pass --kafka-dist-dir (e.g. kafka_2.13-3.9.2)"),
            "{unnamed:?}"
        );
        let named = ArtifactFlags {
            url: Some("https://h/download?id=7"),
            dist_dir: Some("kafka"),
            sha256: Some(&"Ab".repeat(32)),
            ..ArtifactFlags::default()
        };
        assert!(KAFKA.flag_problems(named).is_empty());
    }

    #[test]
    fn a_url_is_handed_on_and_a_tarball_is_served_with_its_top_directory() {
        let sha = "Ab".repeat(32);
        let external = KAFKA
            .prepare(
                ArtifactFlags {
                    url: Some("https://h/kafka_2.13-3.9.2.tgz"),
                    sha256: Some(&sha),
                    ..ArtifactFlags::default()
                },
                None,
                "kafka",
            )
            .expect("external");
        assert_eq!(external.dist_dir.as_deref(), Some("kafka_2.13-3.9.2"));
        assert!(external.served.is_empty());
        assert_eq!(external.external[0].1.sha256, sha.to_ascii_lowercase());

        let dir = tempfile::tempdir().expect("tempdir");
        let missing = KAFKA
            .prepare(ArtifactFlags::default(), None, "kafka")
            .expect_err("no cache");
        assert!(missing.contains("pass --kafka-tarball PATH"), "{missing}");
        let missing = KAFKA
            .prepare(ArtifactFlags::default(), Some(dir.path()), "kafka")
            .expect_err("empty cache");
        assert!(
            missing.contains("packaging/service-tarball.sh kafka"),
            "{missing}"
        );

        let artifacts = dir.path().join("artifacts");
        std::fs::create_dir(&artifacts).expect("mkdir");
        let path = artifacts.join("kafka-3.9.2.tar.gz");
        let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
            std::fs::File::create(&path).expect("create"),
            flate2::Compression::fast(),
        ));
        let mut header = tar::Header::new_gnu();
        header.set_size(0);
        header.set_mode(0o755);
        builder
            .append_data(
                &mut header,
                "kafka_2.13-3.9.2/bin/kafka-server-start.sh",
                &[][..],
            )
            .expect("append");
        builder
            .into_inner()
            .and_then(|gz| gz.finish())
            .expect("finish");
        let served = KAFKA
            .prepare(ArtifactFlags::default(), Some(dir.path()), "kafka")
            .expect("served");
        assert_eq!(served.dist_dir.as_deref(), Some("kafka_2.13-3.9.2"));
        assert_eq!(served.served, vec![("kafka".to_owned(), path.clone())]);
        let given = KAFKA
            .prepare(
                ArtifactFlags {
                    tarball: Some(&path),
                    dist_dir: Some("mine"),
                    ..ArtifactFlags::default()
                },
                None,
                "kafka",
            )
            .expect("given");
        assert_eq!(given.dist_dir.as_deref(), Some("mine"));
    }
}
