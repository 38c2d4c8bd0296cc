//! Shared checks: relative paths, names, URLs, checksums, and version sniffing.

use std::path::{Component, Path};

use crate::error::{Error, Problem};

/// Longest path accepted anywhere in a document.
pub const MAX_PATH_LEN: usize = 1024;

/// Collects problems so that a document reports all of them at once.
#[derive(Debug, Default)]
pub(crate) struct Problems(pub(crate) Vec<Problem>);

impl Problems {
    pub(crate) fn push(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem::new(field, message));
    }

    pub(crate) fn check(&mut self, ok: bool, field: impl Into<String>, message: impl Into<String>) {
        if !ok {
            self.push(field, message);
        }
    }

    pub(crate) fn finish(self, what: &'static str) -> Result<(), Error> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(Error::Invalid {
                what,
                problems: self.0,
            })
        }
    }
}

/// Why `path` is not a safe path relative to the sandbox, or `None` when it is.
///
/// Safe means: not empty, not absolute, no `..` component, no NUL byte, not
/// longer than [`MAX_PATH_LEN`]. `.` components are allowed (`.` alone names
/// the sandbox itself).
pub fn relative_path_problem(path: &str) -> Option<String> {
    if path.is_empty() {
        return Some("must not be empty (use \".\" for the sandbox itself)".into());
    }
    if path.len() > MAX_PATH_LEN {
        return Some(format!("is longer than {MAX_PATH_LEN} bytes"));
    }
    if path.contains('\0') {
        return Some("must not contain a NUL byte".into());
    }
    for component in Path::new(path).components() {
        match component {
            Component::RootDir | Component::Prefix(_) => {
                return Some(format!(
                    "\"{path}\" is absolute: give a path relative to the sandbox"
                ));
            }
            Component::ParentDir => {
                return Some(format!(
                    "\"{path}\" contains \"..\": paths must stay inside the sandbox"
                ));
            }
            Component::CurDir | Component::Normal(_) => {}
        }
    }
    None
}

/// Why `value` is not a lowercase or uppercase hex SHA-256 digest, or `None`.
pub fn sha256_problem(value: &str) -> Option<String> {
    if value.len() != 64 || !value.bytes().all(|b| b.is_ascii_hexdigit()) {
        Some(format!(
            "\"{value}\" is not a SHA-256 digest: expected 64 hex digits (e.g. the output of sha256sum)"
        ))
    } else {
        None
    }
}

/// Why `value` is not an artifact URL we can fetch, or `None`.
///
/// Accepted: `http://`, `https://` with a host, and `file://` with an absolute path.
pub fn artifact_url_problem(value: &str) -> Option<String> {
    match url::Url::parse(value) {
        Err(e) => Some(format!("\"{value}\" is not a URL: {e}")),
        Ok(url) => match url.scheme() {
            "http" | "https" if url.host_str().is_some_and(|h| !h.is_empty()) => None,
            "http" | "https" => Some(format!("\"{value}\" has no host")),
            "file" if url.path().starts_with('/') => None,
            "file" => Some(format!("\"{value}\" is not an absolute file:// URL")),
            other => Some(format!(
                "scheme \"{other}\" is not supported: use http, https or file"
            )),
        },
    }
}

/// Why `name` is not a valid environment variable name, or `None`.
pub fn env_name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("an environment variable name must not be empty".into());
    }
    if name.contains('=') || name.contains('\0') {
        return Some(format!(
            "\"{name}\" is not a valid environment variable name (no '=' or NUL)"
        ));
    }
    None
}

/// Why `name` is not a valid identifier (`[a-z0-9_-]`, 1 to 64 characters), or `None`.
pub fn identifier_problem(name: &str) -> Option<String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    (!ok).then(|| format!("\"{name}\" is not a valid name: use 1 to 64 of a-z, 0-9, '_' and '-'"))
}

/// Reads the `version` field of a JSON object before the full, strict parse,
/// so that a newer document gets "unsupported version" rather than a
/// confusing "unknown field".
pub(crate) fn check_version(
    bytes: &[u8],
    what: &'static str,
    limit: usize,
    supported: u32,
) -> Result<(), Error> {
    if bytes.len() > limit {
        return Err(Error::TooLarge {
            what,
            size: bytes.len(),
            limit,
        });
    }
    // A map, not a struct: serde would also read a struct from a JSON array.
    let object: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(bytes).map_err(|source| Error::Json { what, source })?;
    match object.get("version").and_then(serde_json::Value::as_u64) {
        None => Err(Error::MissingVersion { what, supported }),
        Some(v) if v == u64::from(supported) => Ok(()),
        Some(found) => Err(Error::UnsupportedVersion {
            what,
            found,
            supported,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths() {
        for ok in [".", "conf/server.properties", "./a", "a/./b", "dist"] {
            assert_eq!(relative_path_problem(ok), None, "{ok}");
        }
        for bad in ["", "/etc/passwd", "../x", "a/../../b", "a/..", "a\0b"] {
            assert!(relative_path_problem(bad).is_some(), "{bad:?}");
        }
        assert!(relative_path_problem(&"a".repeat(MAX_PATH_LEN + 1)).is_some());
    }

    #[test]
    fn urls() {
        assert_eq!(artifact_url_problem("http://127.0.0.1:8080/a.tgz"), None);
        assert_eq!(artifact_url_problem("https://example.org/a.tgz"), None);
        assert_eq!(artifact_url_problem("file:///tmp/a.tgz"), None);
        assert!(artifact_url_problem("ftp://example.org/a").is_some());
        assert!(artifact_url_problem("not a url").is_some());
        assert!(artifact_url_problem("http://").is_some());
    }

    #[test]
    fn checksums_and_names() {
        assert_eq!(sha256_problem(&"ab".repeat(32)), None);
        assert!(sha256_problem("abc").is_some());
        assert!(sha256_problem(&"zz".repeat(32)).is_some());
        assert_eq!(env_name_problem("JAVA_HOME"), None);
        assert!(env_name_problem("A=B").is_some());
        assert!(env_name_problem("").is_some());
        assert_eq!(identifier_problem("flush-all_2"), None);
        assert!(identifier_problem("Flush").is_some());
        assert!(identifier_problem("").is_some());
    }

    #[test]
    fn versions() {
        assert!(check_version(br#"{"version":1}"#, "x", 100, 1).is_ok());
        assert!(matches!(
            check_version(br#"{"version":2}"#, "x", 100, 1),
            Err(Error::UnsupportedVersion { found: 2, .. })
        ));
        assert!(matches!(
            check_version(br#"{"a":1}"#, "x", 100, 1),
            Err(Error::MissingVersion { .. })
        ));
        assert!(matches!(
            check_version(br#"{"version":"1"}"#, "x", 100, 1),
            Err(Error::MissingVersion { .. })
        ));
        assert!(matches!(
            check_version(b"[1]", "x", 100, 1),
            Err(Error::Json { .. })
        ));
        assert!(matches!(
            check_version(&[b' '; 101], "x", 100, 1),
            Err(Error::TooLarge { .. })
        ));
    }
}
