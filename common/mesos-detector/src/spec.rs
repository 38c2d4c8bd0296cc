//! Where to find the masters: the `--master` value of a scheduler.
//!
//! Accepted forms (the scheme is case-insensitive, surrounding whitespace is ignored):
//!
//! * `http://host:port` and `https://host:port` (an optional trailing `/`);
//! * bare `host:port`, meaning `http://host:port`;
//! * `zk://[user:password@]host1:port1[,host2:port2…][/path]`, the masters' ZooKeeper
//!   group (path default `/`); credentials become ZooKeeper `digest` authentication.
//!
//! Hosts may be names, IPv4 addresses or bracketed IPv6 addresses (`[::1]:5050`); ports are
//! required and must be 1–65535.

use std::fmt;
use std::str::FromStr;

use url::Url;

use crate::Error;

/// The forms a master spec may take, for error messages.
const EXPECTED: &str = "expected http://host:port, https://host:port, host:port \
                        or zk://[user:password@]host1:port1[,host2:port2...]/path";

/// Where the leading master is found.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MasterSpec {
    /// One fixed master (or a proxy in front of them), base URL `scheme://host:port/`.
    Url(Url),
    /// The masters' leader-election group in ZooKeeper.
    ZooKeeper(ZkSpec),
}

/// A ZooKeeper ensemble, the group's znode and optional `digest` credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct ZkSpec {
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

impl MasterSpec {
    /// The fixed master URL, if this spec is one.
    pub fn url(&self) -> Option<&Url> {
        match self {
            MasterSpec::Url(url) => Some(url),
            MasterSpec::ZooKeeper(_) => None,
        }
    }

    /// The ZooKeeper group, if this spec is one.
    pub fn zookeeper(&self) -> Option<&ZkSpec> {
        match self {
            MasterSpec::ZooKeeper(zk) => Some(zk),
            MasterSpec::Url(_) => None,
        }
    }
}

impl ZkSpec {
    /// The ensemble's servers, in the order given.
    pub fn servers(&self) -> &[HostPort] {
        &self.servers
    }

    /// The group's znode, absolute and without a trailing `/` (except the root itself).
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

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password", &"****")
            .finish()
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

impl fmt::Display for ZkSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("zk://")?;
        if let Some(credentials) = &self.credentials {
            write!(f, "{}:****@", credentials.user)?;
        }
        write!(f, "{}{}", self.connect_string(), self.path)
    }
}

impl fmt::Debug for ZkSpec {
    // Display already hides the password and is easier to read than the fields.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ZkSpec({self})")
    }
}

impl fmt::Display for MasterSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MasterSpec::Url(url) => f.write_str(url.as_str()),
            MasterSpec::ZooKeeper(zk) => zk.fmt(f),
        }
    }
}

impl fmt::Debug for MasterSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MasterSpec::Url(url) => write!(f, "MasterSpec::Url({})", url.as_str()),
            MasterSpec::ZooKeeper(zk) => write!(f, "MasterSpec::ZooKeeper({zk})"),
        }
    }
}

impl FromStr for MasterSpec {
    type Err = Error;

    fn from_str(input: &str) -> Result<Self, Error> {
        let input = input.trim();
        let invalid = |problem: String| Error::InvalidSpec {
            spec: redact(input),
            problem,
            expected: EXPECTED,
        };
        if input.is_empty() {
            return Err(invalid("the spec is empty".into()));
        }
        let (scheme, rest) = match input.split_once("://") {
            Some((scheme, rest)) => (scheme.to_ascii_lowercase(), rest),
            None => ("http".to_owned(), input),
        };
        match scheme.as_str() {
            "http" | "https" => parse_http(&scheme, rest).map_err(invalid),
            "zk" => parse_zk(rest).map(MasterSpec::ZooKeeper).map_err(invalid),
            "" => Err(invalid("the scheme before `://` is empty".into())),
            other => Err(invalid(format!("unsupported scheme `{other}`"))),
        }
    }
}

/// Parses the part after `http://` or `https://`.
fn parse_http(scheme: &str, rest: &str) -> Result<MasterSpec, String> {
    // Checked first so that no later message can echo a password.
    if rest.contains('@') {
        return Err("user info (`user@`) is not supported in a master URL".into());
    }
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.contains(['/', '?', '#']) {
        return Err(format!(
            "`{rest}` has a path, query or fragment; give only host:port"
        ));
    }
    let server = parse_host_port(authority)?;
    let text = format!("{scheme}://{server}/");
    Url::parse(&text)
        .map(MasterSpec::Url)
        .map_err(|e| format!("`{text}` is not a valid URL: {e}"))
}

/// Parses the part after `zk://`.
fn parse_zk(rest: &str) -> Result<ZkSpec, String> {
    let (authority, path) = match rest.find('/') {
        Some(slash) => (&rest[..slash], &rest[slash..]),
        None => (rest, "/"),
    };
    // Host lists never contain `@`, so the last one ends the credentials
    // (which lets a password contain `@`).
    let (credentials, hosts) = match authority.rfind('@') {
        Some(at) => (
            Some(parse_credentials(&authority[..at])?),
            &authority[at + 1..],
        ),
        None => (None, authority),
    };
    if hosts.is_empty() {
        return Err("no ZooKeeper servers are given".into());
    }
    let servers = hosts
        .split(',')
        .map(parse_host_port)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ZkSpec {
        servers,
        path: parse_znode_path(path)?,
        credentials,
    })
}

/// Parses `user:password`.
fn parse_credentials(text: &str) -> Result<Credentials, String> {
    match text.split_once(':') {
        Some((user, password)) if !user.is_empty() => Ok(Credentials {
            user: user.to_owned(),
            password: password.to_owned(),
        }),
        Some(_) => Err("the ZooKeeper user name before `:` is empty".into()),
        None => Err("ZooKeeper credentials must be `user:password@`".into()),
    }
}

/// Checks a znode path and drops one trailing `/` (ZooKeeper rejects it).
fn parse_znode_path(path: &str) -> Result<String, String> {
    let path = match path.strip_suffix('/') {
        Some(trimmed) if !trimmed.is_empty() => trimmed,
        _ => path,
    };
    if path == "/" {
        return Ok(path.to_owned());
    }
    if path.contains(['?', '#']) {
        return Err(format!("znode path `{path}` has a query or fragment"));
    }
    for segment in path.split('/').skip(1) {
        match segment {
            "" => return Err(format!("znode path `{path}` has an empty segment (`//`)")),
            "." | ".." => {
                return Err(format!(
                    "znode path `{path}` has a relative segment `{segment}`"
                ));
            }
            _ => {}
        }
    }
    Ok(path.to_owned())
}

/// Parses `host:port` or `[ipv6]:port`.
fn parse_host_port(text: &str) -> Result<HostPort, String> {
    if text.is_empty() {
        return Err("a host:port entry is empty (stray `,`?)".into());
    }
    let (host, port) = if let Some(bracketed) = text.strip_prefix('[') {
        let (host, after) = bracketed
            .split_once(']')
            .ok_or_else(|| format!("`{text}` opens `[` without closing `]`"))?;
        let port = after
            .strip_prefix(':')
            .ok_or_else(|| format!("`{text}` has no port; write [host]:port"))?;
        if host.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!("`{host}` in `{text}` is not an IPv6 address"));
        }
        (host, port)
    } else {
        let (host, port) = text
            .rsplit_once(':')
            .ok_or_else(|| format!("`{text}` has no port; write host:port"))?;
        if host.contains(':') {
            return Err(format!(
                "`{text}` looks like an IPv6 address; write it as [address]:port"
            ));
        }
        (host, port)
    };
    if host.is_empty() {
        return Err(format!("the host in `{text}` is empty"));
    }
    if let Some(bad) = host
        .chars()
        .find(|c| c.is_whitespace() || c.is_control() || matches!(c, '/' | '@' | ',' | '[' | ']'))
    {
        return Err(format!("the host `{host}` contains {bad:?}"));
    }
    // `u16::from_str` alone would also take `+50`.
    let number = if port.bytes().all(|b| b.is_ascii_digit()) {
        port.parse::<u16>().ok()
    } else {
        None
    };
    let port = match number {
        Some(0) => return Err(format!("port 0 in `{text}` is not a usable port")),
        Some(port) => port,
        None => {
            return Err(format!(
                "the port `{port}` in `{text}` is not a number from 1 to 65535"
            ));
        }
    };
    Ok(HostPort {
        host: host.to_owned(),
        port,
    })
}

/// The spec as it may be shown: the password of a `zk://` spec replaced by `****`.
fn redact(input: &str) -> String {
    let Some((scheme, rest)) = input.split_once("://") else {
        return input.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    match authority.rfind('@') {
        Some(at) => {
            let user = authority[..at]
                .split_once(':')
                .map_or(&authority[..at], |(user, _)| user);
            format!("{scheme}://{user}:****@{}", &rest[at + 1..])
        }
        None => input.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> MasterSpec {
        match text.parse::<MasterSpec>() {
            Ok(spec) => spec,
            Err(e) => panic!("{text:?} should parse: {e}"),
        }
    }

    fn problem(text: &str) -> String {
        match text.parse::<MasterSpec>() {
            Ok(spec) => panic!("{text:?} should not parse, got {spec:?}"),
            Err(e) => e.to_string(),
        }
    }

    fn zk(text: &str) -> ZkSpec {
        match parse(text) {
            MasterSpec::ZooKeeper(zk) => zk,
            other => panic!("{text:?} should be a zk spec, got {other:?}"),
        }
    }

    #[test]
    fn http_forms_become_base_urls() {
        for (text, url) in [
            ("http://10.0.0.1:5050", "http://10.0.0.1:5050/"),
            ("http://master.example:5050/", "http://master.example:5050/"),
            ("HTTPS://master.example:443", "https://master.example/"),
            (
                "https://master.example:8443",
                "https://master.example:8443/",
            ),
            ("127.0.0.1:5050", "http://127.0.0.1:5050/"),
            ("  localhost:5050\n", "http://localhost:5050/"),
            ("[::1]:5050", "http://[::1]:5050/"),
        ] {
            assert_eq!(parse(text).url().map(Url::as_str), Some(url), "{text}");
        }
    }

    #[test]
    fn zk_spec_with_servers_path_and_credentials() {
        let spec = zk("zk://mesos:s3cr@t@zk1:2181,zk2:2182,[::1]:2183/mesos");
        assert_eq!(
            spec.servers(),
            &[
                HostPort {
                    host: "zk1".into(),
                    port: 2181
                },
                HostPort {
                    host: "zk2".into(),
                    port: 2182
                },
                HostPort {
                    host: "::1".into(),
                    port: 2183
                },
            ]
        );
        assert_eq!(spec.connect_string(), "zk1:2181,zk2:2182,[::1]:2183");
        assert_eq!(spec.path(), "/mesos");
        let credentials = spec.credentials().expect("credentials");
        assert_eq!(credentials.user(), "mesos");
        assert_eq!(credentials.digest_auth(), b"mesos:s3cr@t");
    }

    #[test]
    fn zk_path_defaults_to_root_and_loses_a_trailing_slash() {
        assert_eq!(zk("zk://127.0.0.1:2181").path(), "/");
        assert_eq!(zk("zk://127.0.0.1:2181/").path(), "/");
        assert_eq!(zk("zk://127.0.0.1:2181/mesos/").path(), "/mesos");
        assert_eq!(zk("ZK://127.0.0.1:2181/a/b").path(), "/a/b");
        assert_eq!(zk("zk://h:1/a").credentials(), None);
    }

    #[test]
    fn display_hides_the_password() {
        let text = "zk://mesos:hunter2@zk1:2181,zk2:2181/mesos";
        let spec = parse(text);
        assert_eq!(spec.to_string(), "zk://mesos:****@zk1:2181,zk2:2181/mesos");
        assert!(!format!("{spec:?}").contains("hunter2"));
        let credentials = spec.zookeeper().and_then(ZkSpec::credentials);
        assert!(!format!("{credentials:?}").contains("hunter2"));
        // Display of a spec without secrets parses back to the same spec.
        let plain = parse("zk://zk1:2181/mesos");
        assert_eq!(parse(&plain.to_string()), plain);
        assert_eq!(parse("h:5050").to_string(), "http://h:5050/");
    }

    #[test]
    fn errors_say_what_is_wrong_and_what_is_expected() {
        for (text, expected) in [
            ("", "empty"),
            ("   ", "empty"),
            ("master.example", "has no port"),
            ("http://master.example", "has no port"),
            ("http://:5050", "host in `:5050` is empty"),
            ("http://h:0", "port 0"),
            ("http://h:65536", "not a number from 1 to 65535"),
            ("http://h:50x0", "not a number from 1 to 65535"),
            ("http://h:+50", "not a number from 1 to 65535"),
            ("http://h:5050/api", "has a path"),
            ("http://u@h:5050", "user info"),
            ("ftp://h:21", "unsupported scheme `ftp`"),
            ("file:///etc/mesos/zk", "unsupported scheme `file`"),
            ("://h:1", "scheme before `://` is empty"),
            ("zk://", "no ZooKeeper servers"),
            ("zk:///mesos", "no ZooKeeper servers"),
            ("zk://h1:2181,/mesos", "entry is empty"),
            ("zk://h1:2181,h2/mesos", "`h2` has no port"),
            ("zk://h1:99999/mesos", "not a number from 1 to 65535"),
            ("zk://user@h1:2181/mesos", "must be `user:password@`"),
            ("zk://:pw@h1:2181/mesos", "user name before `:` is empty"),
            ("zk://h1:2181//mesos", "empty segment"),
            ("zk://h1:2181/a/../b", "relative segment"),
            ("zk://::1:2181/mesos", "IPv6"),
            ("[::1:5050", "without closing"),
            ("[nope]:5050", "not an IPv6 address"),
            ("h st:5050", "contains ' '"),
        ] {
            let message = problem(text);
            assert!(
                message.contains(expected),
                "{text:?}: {message:?} should mention {expected:?}"
            );
            assert!(message.contains("expected http://host:port"), "{message}");
        }
    }

    #[test]
    fn errors_never_show_the_password() {
        let message = problem("zk://mesos:hunter2@h1:notaport/mesos");
        assert!(!message.contains("hunter2"), "{message}");
        assert!(
            message.contains("zk://mesos:****@h1:notaport/mesos"),
            "{message}"
        );
    }
}
