//! Where the state lives: the scheduler's `--storage` value.
//!
//! Accepted forms (surrounding whitespace is ignored, schemes are case-insensitive):
//!
//! * a plain path, absolute or relative to the working directory: `/var/lib/kafka/state.json`;
//! * `file:///absolute/path/state.json` (percent-escapes are decoded; no host part);
//! * `zk://[user:password@]host1:port1[,host2:port2…]/path`: the document lives under the
//!   znode `/path` (which must not be `/` or under `/zookeeper`); credentials become
//!   ZooKeeper `digest` authentication and the znodes are then created readable and writable
//!   by that user only.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use crate::backend::Backend;
use crate::file::FileBackend;
use crate::zk::{ZkBackend, ZkOptions};
use crate::{Error, Result};

/// The forms a storage spec may take, for error messages.
const EXPECTED: &str = "expected a file path, file:///path/state.json \
                        or zk://[user:password@]host1:port1[,host2:port2...]/path";

/// Where the scheduler's state document is kept.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StorageSpec {
    /// A local file, replaced atomically on every save.
    File(PathBuf),
    /// A znode tree in a ZooKeeper ensemble.
    ZooKeeper(ZkStorageSpec),
}

/// A ZooKeeper ensemble, the znode under which the state lives, and optional credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct ZkStorageSpec {
    servers: Vec<HostPort>,
    path: String,
    credentials: Option<Credentials>,
}

/// One `host:port` pair; `host` is kept without IPv6 brackets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort {
    /// Host name or IP address.
    pub host: String,
    /// TCP port, never 0.
    pub port: u16,
}

/// ZooKeeper `digest` credentials; `Debug` and `Display` never show the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    user: String,
    password: String,
}

impl StorageSpec {
    /// A backend for this spec; it does no I/O until the first load.
    pub fn backend(&self) -> Box<dyn Backend> {
        match self {
            StorageSpec::File(path) => Box::new(FileBackend::new(path.clone())),
            StorageSpec::ZooKeeper(spec) => {
                Box::new(ZkBackend::new(spec.clone(), ZkOptions::default()))
            }
        }
    }
}

impl ZkStorageSpec {
    /// The ensemble's servers, in the order given.
    pub fn servers(&self) -> &[HostPort] {
        &self.servers
    }

    /// The znode under which the state lives: absolute, never `/`, no trailing `/`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The `digest` credentials, if any were given.
    pub fn credentials(&self) -> Option<&Credentials> {
        self.credentials.as_ref()
    }

    /// The ZooKeeper client connect string, `host1:port1,host2:port2` (no chroot).
    pub fn connect_string(&self) -> String {
        let servers: Vec<String> = self.servers.iter().map(HostPort::to_string).collect();
        servers.join(",")
    }
}

impl Credentials {
    /// The user name.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The `digest` scheme's auth payload, `user:password`; a secret, never log it.
    pub fn digest_auth(&self) -> Vec<u8> {
        format!("{}:{}", self.user, self.password).into_bytes()
    }
}

impl FromStr for StorageSpec {
    type Err = Error;

    fn from_str(spec: &str) -> Result<StorageSpec> {
        let trimmed = spec.trim();
        let invalid = |problem: String| Error::InvalidSpec {
            spec: redact(trimmed),
            problem,
            expected: EXPECTED,
        };
        if trimmed.is_empty() {
            return Err(invalid("it is empty".into()));
        }
        let Some((scheme, rest)) = trimmed.split_once("://") else {
            return parse_plain_path(trimmed).map_err(invalid);
        };
        match scheme.to_ascii_lowercase().as_str() {
            "file" => parse_file_url(trimmed, rest).map_err(invalid),
            "zk" => parse_zk(rest).map(StorageSpec::ZooKeeper).map_err(invalid),
            other => Err(invalid(format!("unknown scheme `{other}://`"))),
        }
    }
}

/// A path without a scheme.
fn parse_plain_path(path: &str) -> Result<StorageSpec, String> {
    if path.ends_with('/') {
        return Err(
            "it names a directory; name the state file, e.g. /var/lib/NAME/state.json".into(),
        );
    }
    if path.contains('\0') {
        return Err("the path contains a NUL byte".into());
    }
    Ok(StorageSpec::File(PathBuf::from(path)))
}

/// `file:///absolute/path`.
fn parse_file_url(spec: &str, rest: &str) -> Result<StorageSpec, String> {
    if !rest.starts_with('/') {
        return Err(
            "a file URL needs an absolute path and no host: file:///path/state.json".into(),
        );
    }
    if rest.ends_with('/') {
        return Err(
            "it names a directory; name the state file, e.g. file:///var/lib/NAME/state.json"
                .into(),
        );
    }
    let url = url::Url::parse(spec).map_err(|e| format!("not a valid file URL: {e}"))?;
    if url.query().is_some() || url.fragment().is_some() {
        return Err("a file URL may not have a query or fragment (`?`, `#`)".into());
    }
    url.to_file_path().map(StorageSpec::File).map_err(|()| {
        "a file URL needs an absolute path and no host: file:///path/state.json".into()
    })
}

/// The part of a `zk://` spec after the scheme.
fn parse_zk(rest: &str) -> Result<ZkStorageSpec, String> {
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    // Host lists never contain '@', passwords might: split at the last one.
    let (credentials, hosts) = match authority.rsplit_once('@') {
        Some((userinfo, hosts)) => (Some(parse_credentials(userinfo)?), hosts),
        None => (None, authority),
    };
    if hosts.is_empty() {
        return Err("no ZooKeeper servers given".into());
    }
    let servers = hosts
        .split(',')
        .map(parse_host_port)
        .collect::<Result<Vec<_>, _>>()?;
    validate_znode_path(path)?;
    Ok(ZkStorageSpec {
        servers,
        path: path.to_owned(),
        credentials,
    })
}

/// `user:password`.
fn parse_credentials(userinfo: &str) -> Result<Credentials, String> {
    match userinfo.split_once(':') {
        Some((user, password)) if !user.is_empty() && !password.is_empty() => Ok(Credentials {
            user: user.to_owned(),
            password: password.to_owned(),
        }),
        _ => Err("credentials must be `user:password@` with both parts non-empty".into()),
    }
}

/// `host:port` or `[v6]:port`.
fn parse_host_port(item: &str) -> Result<HostPort, String> {
    let missing_port = || format!("server `{item}` has no port; write host:port, e.g. {item}:2181");
    let (host, port) = if let Some(bracketed) = item.strip_prefix('[') {
        let (host, after) = bracketed
            .split_once(']')
            .ok_or_else(|| format!("server `{item}` has an unclosed `[`"))?;
        let port = after.strip_prefix(':').ok_or_else(missing_port)?;
        (host, port)
    } else {
        let (host, port) = item.rsplit_once(':').ok_or_else(missing_port)?;
        if host.contains(':') {
            return Err(format!(
                "server `{item}`: write IPv6 addresses in brackets, [::1]:2181"
            ));
        }
        (host, port)
    };
    if host.is_empty() {
        return Err(format!("server `{item}` has an empty host"));
    }
    if host
        .chars()
        .any(|c| c.is_whitespace() || c == '/' || c == '?' || c == '#')
    {
        return Err(format!("server `{item}` has an invalid host"));
    }
    let port = port
        .parse::<u16>()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| format!("server `{item}` has an invalid port (expected 1-65535)"))?;
    Ok(HostPort {
        host: host.to_owned(),
        port,
    })
}

/// The base znode: absolute, not the root, not reserved, clean segments.
fn validate_znode_path(path: &str) -> Result<(), String> {
    if path.is_empty() || path == "/" {
        return Err("a znode path is required, e.g. zk://host:2181/kafka-scheduler".into());
    }
    if path.ends_with('/') {
        return Err(format!("the znode path `{path}` must not end with `/`"));
    }
    for segment in path[1..].split('/') {
        if segment.is_empty() {
            return Err(format!(
                "the znode path `{path}` has an empty segment (`//`)"
            ));
        }
        if segment == "." || segment == ".." {
            return Err(format!(
                "the znode path `{path}` may not contain `.` or `..` segments"
            ));
        }
        if segment.chars().any(char::is_control) {
            return Err(format!(
                "the znode path `{path}` contains a control character"
            ));
        }
    }
    if path == "/zookeeper" || path.starts_with("/zookeeper/") {
        return Err("the znode path may not be under /zookeeper, which ZooKeeper reserves".into());
    }
    Ok(())
}

/// The spec with the password of `zk://user:password@` replaced by `****`.
fn redact(spec: &str) -> String {
    let Some((scheme, rest)) = spec.split_once("://") else {
        return spec.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, hosts)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
            format!("{scheme}://{user}:****@{hosts}{tail}")
        }
        None => spec.to_owned(),
    }
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password", &"****")
            .finish()
    }
}

impl fmt::Display for ZkStorageSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("zk://")?;
        if let Some(credentials) = &self.credentials {
            write!(f, "{}:****@", credentials.user)?;
        }
        write!(f, "{}{}", self.connect_string(), self.path)
    }
}

impl fmt::Debug for ZkStorageSpec {
    // Display already hides the password and reads better than the fields.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ZkStorageSpec({self})")
    }
}

impl fmt::Display for StorageSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StorageSpec::File(path) => write!(f, "{}", path.display()),
            StorageSpec::ZooKeeper(spec) => write!(f, "{spec}"),
        }
    }
}

impl fmt::Debug for StorageSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StorageSpec::File(path) => f.debug_tuple("File").field(path).finish(),
            StorageSpec::ZooKeeper(spec) => f.debug_tuple("ZooKeeper").field(spec).finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(spec: &str) -> StorageSpec {
        match spec.parse::<StorageSpec>() {
            Ok(parsed) => parsed,
            Err(e) => panic!("`{spec}` should parse: {e}"),
        }
    }

    fn problem(spec: &str) -> String {
        match spec.parse::<StorageSpec>() {
            Ok(parsed) => panic!("`{spec}` should be rejected, got {parsed:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn plain_paths_are_files() {
        assert_eq!(
            parse("/var/lib/kafka/state.json"),
            StorageSpec::File("/var/lib/kafka/state.json".into())
        );
        assert_eq!(
            parse(" state.json "),
            StorageSpec::File("state.json".into())
        );
    }

    #[test]
    fn file_urls_are_decoded() {
        assert_eq!(
            parse("FILE:///var/lib/my%20kafka/state.json"),
            StorageSpec::File("/var/lib/my kafka/state.json".into())
        );
    }

    #[test]
    fn bad_file_specs_say_why() {
        assert!(problem("file://host/state.json").contains("no host"));
        assert!(problem("file:///var/lib/").contains("directory"));
        assert!(problem("/var/lib/").contains("directory"));
        assert!(problem("   ").contains("empty"));
        assert!(problem("s3://bucket/state").contains("unknown scheme `s3://`"));
    }

    #[test]
    fn zookeeper_specs_parse() {
        let StorageSpec::ZooKeeper(spec) = parse("zk://u:p@w@zk1:2181,[::1]:2182/mesos/kafka")
        else {
            panic!("expected a ZooKeeper spec");
        };
        assert_eq!(spec.connect_string(), "zk1:2181,[::1]:2182");
        assert_eq!(spec.path(), "/mesos/kafka");
        let credentials = spec.credentials().expect("credentials");
        assert_eq!(credentials.user(), "u");
        assert_eq!(credentials.digest_auth(), b"u:p@w".to_vec());
        assert_eq!(
            spec.to_string(),
            "zk://u:****@zk1:2181,[::1]:2182/mesos/kafka"
        );
        assert!(!format!("{spec:?}").contains("p@w"));
    }

    #[test]
    fn bad_zookeeper_specs_say_why() {
        assert!(problem("zk://zk1:2181").contains("znode path is required"));
        assert!(problem("zk://zk1:2181/").contains("znode path is required"));
        assert!(problem("zk://zk1/kafka").contains("has no port"));
        assert!(problem("zk://zk1:0/kafka").contains("invalid port"));
        assert!(problem("zk:///kafka").contains("no ZooKeeper servers"));
        assert!(problem("zk://zk1:2181/a//b").contains("empty segment"));
        assert!(problem("zk://zk1:2181/a/../b").contains("`..`"));
        assert!(problem("zk://zk1:2181/zookeeper/x").contains("reserves"));
        assert!(problem("zk://zk1:2181/kafka/").contains("must not end"));
        assert!(problem("zk://::1:2181/kafka").contains("brackets"));
    }

    #[test]
    fn errors_never_show_the_password() {
        let message = problem("zk://admin:s3cret@zk1/kafka");
        assert!(message.contains("zk://admin:****@zk1/kafka"), "{message}");
        assert!(!message.contains("s3cret"), "{message}");
        assert!(problem("zk://admin@zk1:2181/kafka").contains("user:password@"));
    }
}
