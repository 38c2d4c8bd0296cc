//! The Mesos fetcher, for `CommandInfo.uris`: `http(s)://`, `file://` and
//! absolute paths; `output_file`; `executable` (chmod 0755, no extraction);
//! `extract` of `.tar .tgz .tar.gz .tbz2 .tar.bz2 .txz .tar.xz .zip` into the
//! sandbox root and of bare `.gz`; `cache` (downloaded once per URI into the
//! agent's cache, then copied or extracted from there).

use std::io::Read as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use mesos_proto::v1::command_info::Uri;

/// Fetches one URI into `sandbox`.
pub async fn fetch(
    uri: &Uri,
    sandbox: &Path,
    cache_dir: &Path,
    http: &reqwest::Client,
) -> Result<(), String> {
    let value = uri.value.as_str();
    let basename = value.rsplit('/').next().unwrap_or(value).to_owned();
    let name = uri
        .output_file
        .clone()
        .filter(|o| !o.is_empty())
        .unwrap_or_else(|| basename.clone());
    if name.is_empty() || name.starts_with('/') || name.split('/').any(|c| c == "..") {
        return Err(format!("invalid output file name '{name}' for URI {value}"));
    }
    let target = sandbox.join(&name);
    if let Some(parent) = target.parent() {
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    let executable = uri.executable.unwrap_or(false);
    let extract = uri.extract.unwrap_or(true) && !executable && is_archive(&name);
    let source = if uri.cache.unwrap_or(false) {
        let key = format!("{:016x}", fnv(value.as_bytes()));
        let cached = cache_dir.join(key).join(if basename.is_empty() {
            "file"
        } else {
            &basename
        });
        if !tokio::fs::try_exists(&cached).await.unwrap_or(false) {
            if let Some(parent) = cached.parent() {
                tokio::fs::create_dir_all(parent)
                    .await
                    .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
            }
            let partial = cached.with_extension("partial");
            download(value, &partial, http).await?;
            tokio::fs::rename(&partial, &cached)
                .await
                .map_err(|e| format!("cannot move {} into the cache: {e}", partial.display()))?;
        }
        Some(cached)
    } else {
        download(value, &target, http).await?;
        None
    };
    if extract {
        // With the cache, only the extracted contents land in the sandbox.
        let archive = source.clone().unwrap_or_else(|| target.clone());
        let sandbox = sandbox.to_path_buf();
        let out_name = name.clone();
        tokio::task::spawn_blocking(move || extract_archive(&archive, &out_name, &sandbox))
            .await
            .map_err(|e| format!("extraction task failed: {e}"))??;
    } else if let Some(cached) = source {
        tokio::fs::copy(&cached, &target)
            .await
            .map_err(|e| format!("cannot copy {} from the cache: {e}", cached.display()))?;
    }
    if executable {
        tokio::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755))
            .await
            .map_err(|e| format!("cannot make {} executable: {e}", target.display()))?;
    }
    Ok(())
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

async fn download(value: &str, target: &Path, http: &reqwest::Client) -> Result<(), String> {
    if value.starts_with("http://") || value.starts_with("https://") {
        let response = http
            .get(value)
            .send()
            .await
            .map_err(|e| format!("failed to fetch {value}: {}", with_causes(&e)))?;
        if !response.status().is_success() {
            return Err(format!(
                "failed to fetch {value}: HTTP {}",
                response.status()
            ));
        }
        let bytes = response
            .bytes()
            .await
            .map_err(|e| format!("failed to fetch {value}: {}", with_causes(&e)))?;
        tokio::fs::write(target, &bytes)
            .await
            .map_err(|e| format!("cannot write {}: {e}", target.display()))
    } else {
        let path: PathBuf = match value.strip_prefix("file://") {
            Some(p) => PathBuf::from(p),
            None if value.starts_with('/') => PathBuf::from(value),
            None => {
                return Err(format!(
                    "unsupported URI {value}: use http://, https://, file:// or an absolute path"
                ));
            }
        };
        tokio::fs::copy(&path, target)
            .await
            .map(|_| ())
            .map_err(|e| format!("failed to fetch {value}: {e}"))
    }
}

/// An error with its causes: reqwest's own message ("error sending request")
/// hides what went wrong, such as an untrusted certificate.
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

/// Whether the fetcher would extract a file with this name.
pub fn is_archive(name: &str) -> bool {
    [
        ".tar", ".tgz", ".tar.gz", ".tbz2", ".tar.bz2", ".txz", ".tar.xz", ".zip", ".gz",
    ]
    .iter()
    .any(|ext| name.ends_with(ext))
}

fn extract_archive(archive: &Path, name: &str, sandbox: &Path) -> Result<(), String> {
    let open = || {
        std::fs::File::open(archive).map_err(|e| format!("cannot open {}: {e}", archive.display()))
    };
    let fail = |e: std::io::Error| format!("cannot extract {}: {e}", archive.display());
    if name.ends_with(".tar.gz") || name.ends_with(".tgz") {
        tar::Archive::new(flate2::read::GzDecoder::new(open()?))
            .unpack(sandbox)
            .map_err(fail)
    } else if name.ends_with(".tar") {
        tar::Archive::new(open()?).unpack(sandbox).map_err(fail)
    } else if name.ends_with(".zip") {
        let mut zip = zip::ZipArchive::new(open()?)
            .map_err(|e| format!("cannot read zip {}: {e}", archive.display()))?;
        zip.extract(sandbox)
            .map_err(|e| format!("cannot extract {}: {e}", archive.display()))
    } else if name.ends_with(".tbz2")
        || name.ends_with(".tar.bz2")
        || name.ends_with(".txz")
        || name.ends_with(".tar.xz")
    {
        // bzip2 and xz are left to the system tar, as no pure decoder is vendored.
        let status = std::process::Command::new("tar")
            .arg("-xf")
            .arg(archive)
            .arg("-C")
            .arg(sandbox)
            .status()
            .map_err(|e| format!("cannot run tar to extract {}: {e}", archive.display()))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!(
                "tar failed to extract {} ({status})",
                archive.display()
            ))
        }
    } else if let Some(stem) = name.strip_suffix(".gz") {
        let mut data = Vec::new();
        flate2::read::GzDecoder::new(open()?)
            .read_to_end(&mut data)
            .map_err(fail)?;
        std::fs::write(sandbox.join(stem), data).map_err(fail)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(value: String) -> Uri {
        Uri {
            value,
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn file_uris_copy_extract_and_chmod() {
        let dir = tempfile::tempdir().expect("tempdir");
        let src = dir.path().join("src");
        std::fs::create_dir_all(src.join("pkg")).expect("mkdir");
        std::fs::write(src.join("pkg/hello.txt"), "hi").expect("write");
        let tgz = dir.path().join("pkg.tar.gz");
        {
            let file = std::fs::File::create(&tgz).expect("create");
            let gz = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
            let mut builder = tar::Builder::new(gz);
            builder
                .append_dir_all("pkg", src.join("pkg"))
                .expect("append");
            builder
                .into_inner()
                .expect("finish")
                .finish()
                .expect("gzip");
        }
        std::fs::write(dir.path().join("run.sh"), "#!/bin/sh\n").expect("write");
        let sandbox = dir.path().join("sandbox");
        let cache = dir.path().join("cache");
        std::fs::create_dir_all(&sandbox).expect("mkdir");
        let http = reqwest::Client::new();

        fetch(
            &uri(format!("file://{}", tgz.display())),
            &sandbox,
            &cache,
            &http,
        )
        .await
        .expect("fetch archive");
        assert_eq!(
            std::fs::read_to_string(sandbox.join("pkg/hello.txt")).expect("read"),
            "hi"
        );
        assert!(
            sandbox.join("pkg.tar.gz").is_file(),
            "archive stays beside its contents"
        );

        let mut exe = uri(dir.path().join("run.sh").display().to_string());
        exe.executable = Some(true);
        exe.output_file = Some("bin/start".into());
        fetch(&exe, &sandbox, &cache, &http)
            .await
            .expect("fetch script");
        let mode = std::fs::metadata(sandbox.join("bin/start"))
            .expect("stat")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755);

        let mut cached = uri(format!("file://{}", tgz.display()));
        cached.cache = Some(true);
        let sandbox2 = dir.path().join("sandbox2");
        std::fs::create_dir_all(&sandbox2).expect("mkdir");
        fetch(&cached, &sandbox2, &cache, &http)
            .await
            .expect("cached fetch");
        assert!(sandbox2.join("pkg/hello.txt").is_file());
        assert!(
            !sandbox2.join("pkg.tar.gz").exists(),
            "with the cache only the contents land"
        );

        let err = fetch(&uri("relative/thing".into()), &sandbox, &cache, &http).await;
        assert!(err.expect_err("relative URI").contains("unsupported URI"));
    }
}
