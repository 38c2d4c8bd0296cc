//! Pure rendering of a server's files: `zoo.cfg`, the dynamic configuration
//! with the `server.N` lines, the logging setup and the super-user digest.

use std::collections::BTreeMap;

use base64::Engine as _;
use sha1::{Digest, Sha1};

/// The file holding the `server.N` lines when dynamic reconfiguration is on.
pub const DYNAMIC_FILE: &str = "zoo.cfg.dynamic";

/// Four-letter words a server answers; the framework needs `ruok` and `srvr`.
pub const FOUR_LETTER_WORDS: &str = "ruok,srvr,stat,conf,mntr,isro,envi";

/// One server of the ensemble, as its peers and clients reach it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// Its myid.
    pub id: u8,
    /// The address it binds and is reached at.
    pub host: String,
    /// Client port.
    pub client: u16,
    /// Quorum (follower-to-leader) port.
    pub peer: u16,
    /// Leader-election port.
    pub election: u16,
}

impl Member {
    /// The `server.N` key.
    pub fn key(&self) -> String {
        format!("server.{}", self.id)
    }

    /// The `server.N` value in ZooKeeper 3.5+ form, with its client address.
    pub fn spec(&self) -> String {
        format!(
            "{host}:{peer}:{election}:participant;{host}:{client}",
            host = self.host,
            peer = self.peer,
            election = self.election,
            client = self.client
        )
    }

    /// `server.N=…`, as in a configuration file or a reconfiguration.
    pub fn line(&self) -> String {
        format!("{}={}", self.key(), self.spec())
    }

    /// `host:port` for clients.
    pub fn client_endpoint(&self) -> String {
        format!("{}:{}", self.host, self.client)
    }
}

/// Everything one server's `zoo.cfg` depends on.
#[derive(Clone, Debug)]
pub struct ServerFacts<'a> {
    /// The snapshot directory (on the persistent volume).
    pub data_dir: &'a str,
    /// The transaction log directory (on the persistent volume).
    pub data_log_dir: &'a str,
    /// The servers it starts with (itself included), by myid.
    pub members: &'a [Member],
    /// Whether dynamic reconfiguration is on.
    pub dynamic: bool,
    /// The operator's zoo.cfg options (managed keys already refused).
    pub options: &'a BTreeMap<String, String>,
}

/// Defaults an operator may override with an option.
const DEFAULTS: &[(&str, &str)] = &[
    ("tickTime", "2000"),
    ("initLimit", "10"),
    ("syncLimit", "5"),
    ("autopurge.snapRetainCount", "5"),
    ("autopurge.purgeInterval", "1"),
];

/// The text of `zoo.cfg`.
pub fn zoo_cfg(facts: &ServerFacts<'_>) -> String {
    let mut out = String::from("# Rendered by the scheduler; changes here are overwritten.\n");
    let mut line = |key: &str, value: &str| {
        out.push_str(key);
        out.push('=');
        out.push_str(value);
        out.push('\n');
    };
    line("dataDir", facts.data_dir);
    line("dataLogDir", facts.data_log_dir);
    line("4lw.commands.whitelist", FOUR_LETTER_WORDS);
    line("admin.enableServer", "false");
    line("standaloneEnabled", "false");
    for (key, value) in DEFAULTS {
        if !facts.options.contains_key(*key) {
            line(key, value);
        }
    }
    for (key, value) in facts.options {
        line(key, value);
    }
    if facts.dynamic {
        line("reconfigEnabled", "true");
        line("dynamicConfigFile", DYNAMIC_FILE);
    } else {
        line("reconfigEnabled", "false");
        for member in facts.members {
            line(&member.key(), &member.spec());
        }
    }
    out
}

/// The text of the dynamic configuration file: one `server.N` line each.
pub fn dynamic_config(members: &[Member]) -> String {
    let mut out = String::new();
    for member in members {
        out.push_str(&member.line());
        out.push('\n');
    }
    out
}

/// Console logging at INFO (the executor keeps the service's output).
pub fn logback_xml() -> &'static str {
    r#"<configuration>
  <appender name="CONSOLE" class="ch.qos.logback.core.ConsoleAppender">
    <encoder><pattern>%d{ISO8601} [myid:%X{myid}] %-5p [%t:%C{1}@%L] - %m%n</pattern></encoder>
  </appender>
  <root level="INFO"><appender-ref ref="CONSOLE"/></root>
</configuration>
"#
}

/// ZooKeeper's digest of `super:password`, for
/// `zookeeper.DigestAuthenticationProvider.superDigest`.
pub fn super_digest(password: &str) -> String {
    let hash = Sha1::digest(format!("super:{password}").as_bytes());
    format!(
        "super:{}",
        base64::engine::general_purpose::STANDARD.encode(hash)
    )
}

/// Quotes `text` for a POSIX shell.
pub fn sh_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// The readiness probe: the server answers `ruok` with `imok`, and `srvr`
/// says it leads or follows. Plain bash, so that no JVM starts per probe.
pub fn readiness_script(host: &str, port: u16) -> String {
    format!(
        r#"ask() {{ exec 3<>/dev/tcp/{host}/{port} || return 1; printf '%s' "$1" >&3; cat <&3; exec 3<&-; }}
[ "$(ask ruok)" = imok ] || exit 1
case "$(ask srvr)" in *"Mode: leader"*|*"Mode: follower"*) exit 0 ;; esac
exit 1
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members() -> Vec<Member> {
        (0..3)
            .map(|i| Member {
                id: i,
                host: format!("127.0.1.{}", i + 2),
                client: 31000 + u16::from(i) * 3,
                peer: 31001 + u16::from(i) * 3,
                election: 31002 + u16::from(i) * 3,
            })
            .collect()
    }

    #[test]
    fn dynamic_mode_keeps_the_server_lines_in_their_own_file() {
        let members = members();
        let options = BTreeMap::from([("tickTime".to_owned(), "500".to_owned())]);
        let cfg = zoo_cfg(&ServerFacts {
            data_dir: "data/zookeeper",
            data_log_dir: "data/txlog",
            members: &members,
            dynamic: true,
            options: &options,
        });
        let lines: Vec<&str> = cfg.lines().collect();
        for expected in [
            "dataDir=data/zookeeper",
            "dataLogDir=data/txlog",
            "reconfigEnabled=true",
            "standaloneEnabled=false",
            "dynamicConfigFile=zoo.cfg.dynamic",
            "4lw.commands.whitelist=ruok,srvr,stat,conf,mntr,isro,envi",
            "tickTime=500",
            "initLimit=10",
        ] {
            assert!(lines.contains(&expected), "{expected} missing:\n{cfg}");
        }
        assert!(
            !cfg.contains("tickTime=2000"),
            "an option replaces a default"
        );
        assert!(!cfg.contains("server."), "{cfg}");
        assert_eq!(
            dynamic_config(&members),
            "server.0=127.0.1.2:31001:31002:participant;127.0.1.2:31000\n\
             server.1=127.0.1.3:31004:31005:participant;127.0.1.3:31003\n\
             server.2=127.0.1.4:31007:31008:participant;127.0.1.4:31006\n"
        );
    }

    #[test]
    fn static_mode_lists_the_servers_in_zoo_cfg() {
        let members = members();
        let cfg = zoo_cfg(&ServerFacts {
            data_dir: "d",
            data_log_dir: "l",
            members: &members,
            dynamic: false,
            options: &BTreeMap::new(),
        });
        assert!(cfg.contains("reconfigEnabled=false\n"), "{cfg}");
        assert!(!cfg.contains("dynamicConfigFile"), "{cfg}");
        assert!(
            cfg.contains("server.1=127.0.1.3:31004:31005:participant;127.0.1.3:31003\n"),
            "{cfg}"
        );
    }

    #[test]
    fn the_super_digest_is_zookeepers() {
        // base64(sha1("super:secret")), the form DigestAuthenticationProvider expects.
        assert_eq!(super_digest("secret"), "super:lK75jTNcA+U9vtVEw5vB51mj/w4=");
    }

    #[test]
    fn the_readiness_script_asks_both_words() {
        let script = readiness_script("127.0.1.2", 31000);
        assert!(script.contains("/dev/tcp/127.0.1.2/31000"));
        assert!(script.contains("ask ruok") && script.contains("ask srvr"));
    }
}
