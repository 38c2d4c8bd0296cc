//! Pure rendering of a broker's `server.properties` and `log4j.properties`
//! from its facts (ID, address, ports, peers, mode, options). No I/O.

use std::collections::BTreeMap;

use crate::config::LogLevel;

/// The name of the client listener.
pub const CLIENT_LISTENER: &str = "PLAINTEXT";
/// The name of the KRaft controller listener.
pub const CONTROLLER_LISTENER: &str = "CONTROLLER";

/// One member of the KRaft controller quorum.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Voter {
    /// Its node ID.
    pub id: i32,
    /// The host its controller listener is on.
    pub host: String,
    /// Its controller port.
    pub port: u16,
}

/// How the broker finds its cluster metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MetadataQuorum<'a> {
    /// ZooKeeper mode.
    ZooKeeper {
        /// `zookeeper.connect`.
        connect: &'a str,
    },
    /// KRaft mode.
    Kraft {
        /// Set when this broker is also a controller: its controller port.
        controller_port: Option<u16>,
        /// The whole quorum.
        voters: &'a [Voter],
    },
}

/// Everything `server.properties` is made of.
#[derive(Clone, Debug)]
pub struct BrokerFacts<'a> {
    /// `broker.id` / `node.id`.
    pub id: i32,
    /// The address listeners bind to and advertise.
    pub host: &'a str,
    /// The client port.
    pub port: u16,
    /// `broker.rack`, when the rack attribute is set on the agent.
    pub rack: Option<&'a str>,
    /// `log.dirs` (the persistent volume).
    pub log_dirs: &'a str,
    /// ZooKeeper or KRaft.
    pub quorum: MetadataQuorum<'a>,
    /// The operator's other settings (reserved keys already refused).
    pub options: &'a BTreeMap<String, String>,
}

/// The rendered key/value pairs, in file order: ours first, then the options.
pub fn server_properties(facts: &BrokerFacts<'_>) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut set = |k: &str, v: String| out.push((k.to_owned(), v));
    let client = format!("{CLIENT_LISTENER}://{}:{}", facts.host, facts.port);
    match &facts.quorum {
        MetadataQuorum::ZooKeeper { connect } => {
            set("broker.id", facts.id.to_string());
            set("zookeeper.connect", (*connect).to_owned());
            set("listeners", client.clone());
            set(
                "listener.security.protocol.map",
                format!("{CLIENT_LISTENER}:PLAINTEXT"),
            );
        }
        MetadataQuorum::Kraft {
            controller_port,
            voters,
        } => {
            set("node.id", facts.id.to_string());
            set(
                "process.roles",
                if controller_port.is_some() {
                    "broker,controller"
                } else {
                    "broker"
                }
                .into(),
            );
            set(
                "controller.quorum.voters",
                voters
                    .iter()
                    .map(|v| format!("{}@{}:{}", v.id, v.host, v.port))
                    .collect::<Vec<_>>()
                    .join(","),
            );
            set("controller.listener.names", CONTROLLER_LISTENER.into());
            set(
                "listeners",
                match controller_port {
                    Some(port) => format!("{client},{CONTROLLER_LISTENER}://{}:{port}", facts.host),
                    None => client.clone(),
                },
            );
            set(
                "listener.security.protocol.map",
                format!("{CLIENT_LISTENER}:PLAINTEXT,{CONTROLLER_LISTENER}:PLAINTEXT"),
            );
        }
    }
    set("advertised.listeners", client);
    set("inter.broker.listener.name", CLIENT_LISTENER.into());
    set("log.dirs", facts.log_dirs.to_owned());
    if let Some(rack) = facts.rack {
        set("broker.rack", rack.to_owned());
    }
    for (key, value) in facts.options {
        set(key, value.clone());
    }
    out
}

/// The properties as a file (ISO-8859-1 safe, as `java.util.Properties` reads it).
pub fn properties_text(header: &str, pairs: &[(String, String)]) -> String {
    let mut text = format!("# {header}\n");
    for (key, value) in pairs {
        text.push_str(key);
        text.push('=');
        text.push_str(&escape_value(value));
        text.push('\n');
    }
    text
}

/// Escapes a value for `java.util.Properties`: backslashes, a leading space,
/// and every non-ASCII character as `\uXXXX`.
pub fn escape_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for (i, c) in value.chars().enumerate() {
        match c {
            '\\' => out.push_str("\\\\"),
            ' ' if i == 0 => out.push_str("\\ "),
            '\t' => out.push_str("\\t"),
            c if c.is_ascii() && !c.is_ascii_control() => out.push(c),
            c => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
        }
    }
    out
}

/// `log4j.properties`: the root level to stdout (the executor keeps it), errors
/// also to stderr, and a size-capped `server.log` under `LOG_DIR`, then the
/// operator's lines.
///
/// The executor quotes the end of stderr when a broker exits before it is
/// ready, so a broker that cannot start (an invalid option, a full disk)
/// explains itself in the task status and in a stopped plan. Only the first
/// line of an exception goes there: the stack trace would push the reason
/// out of the quoted lines.
pub fn log4j_properties(
    level: LogLevel,
    extra: &BTreeMap<String, String>,
) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = [
        (
            "log4j.rootLogger",
            format!("{level}, stdout, stderr, server"),
        ),
        (
            "log4j.appender.stdout",
            "org.apache.log4j.ConsoleAppender".into(),
        ),
        (
            "log4j.appender.stdout.layout",
            "org.apache.log4j.PatternLayout".into(),
        ),
        (
            "log4j.appender.stdout.layout.ConversionPattern",
            "[%d] %p %m (%c)%n".into(),
        ),
        (
            "log4j.appender.stderr",
            "org.apache.log4j.ConsoleAppender".into(),
        ),
        ("log4j.appender.stderr.Target", "System.err".into()),
        ("log4j.appender.stderr.Threshold", "ERROR".into()),
        (
            "log4j.appender.stderr.layout",
            "org.apache.log4j.EnhancedPatternLayout".into(),
        ),
        (
            "log4j.appender.stderr.layout.ConversionPattern",
            "[%d] %p %m (%c)%n%throwable{short}".into(),
        ),
        (
            "log4j.appender.server",
            "org.apache.log4j.RollingFileAppender".into(),
        ),
        (
            "log4j.appender.server.File",
            "${kafka.logs.dir}/server.log".into(),
        ),
        ("log4j.appender.server.MaxFileSize", "50MB".into()),
        ("log4j.appender.server.MaxBackupIndex", "5".into()),
        (
            "log4j.appender.server.layout",
            "org.apache.log4j.PatternLayout".into(),
        ),
        (
            "log4j.appender.server.layout.ConversionPattern",
            "[%d] %p %m (%c)%n".into(),
        ),
        // Per-request and ZooKeeper-client logging drown everything else at INFO.
        ("log4j.logger.kafka.request.logger", "WARN".into()),
        ("log4j.logger.org.apache.zookeeper", "WARN".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    for (key, value) in extra {
        match out.iter_mut().find(|(k, _)| k == key) {
            Some(entry) => entry.1 = value.clone(),
            None => out.push((key.clone(), value.clone())),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
        pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn voters() -> Vec<Voter> {
        (0..3)
            .map(|id| Voter {
                id,
                host: format!("127.0.0.{}", id + 1),
                port: 9093 + id as u16,
            })
            .collect()
    }

    #[test]
    fn kraft_combined_node() {
        let voters = voters();
        let options = BTreeMap::from([("num.partitions".to_owned(), "6".to_owned())]);
        let facts = BrokerFacts {
            id: 1,
            host: "127.0.0.2",
            port: 31001,
            rack: Some("r1"),
            log_dirs: "data",
            quorum: MetadataQuorum::Kraft {
                controller_port: Some(9094),
                voters: &voters,
            },
            options: &options,
        };
        let p = server_properties(&facts);
        assert_eq!(lookup(&p, "node.id"), Some("1"));
        assert_eq!(lookup(&p, "broker.id"), None);
        assert_eq!(lookup(&p, "process.roles"), Some("broker,controller"));
        assert_eq!(
            lookup(&p, "controller.quorum.voters"),
            Some("0@127.0.0.1:9093,1@127.0.0.2:9094,2@127.0.0.3:9095")
        );
        assert_eq!(
            lookup(&p, "listeners"),
            Some("PLAINTEXT://127.0.0.2:31001,CONTROLLER://127.0.0.2:9094")
        );
        assert_eq!(
            lookup(&p, "advertised.listeners"),
            Some("PLAINTEXT://127.0.0.2:31001")
        );
        assert_eq!(lookup(&p, "controller.listener.names"), Some("CONTROLLER"));
        assert_eq!(
            lookup(&p, "listener.security.protocol.map"),
            Some("PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT")
        );
        assert_eq!(lookup(&p, "log.dirs"), Some("data"));
        assert_eq!(lookup(&p, "broker.rack"), Some("r1"));
        assert_eq!(lookup(&p, "num.partitions"), Some("6"));
        assert_eq!(lookup(&p, "zookeeper.connect"), None);
    }

    #[test]
    fn kraft_broker_only_node_has_no_controller_listener() {
        let voters = voters();
        let options = BTreeMap::new();
        let p = server_properties(&BrokerFacts {
            id: 7,
            host: "h",
            port: 9092,
            rack: None,
            log_dirs: "data",
            quorum: MetadataQuorum::Kraft {
                controller_port: None,
                voters: &voters,
            },
            options: &options,
        });
        assert_eq!(lookup(&p, "process.roles"), Some("broker"));
        assert_eq!(lookup(&p, "listeners"), Some("PLAINTEXT://h:9092"));
        assert!(lookup(&p, "controller.quorum.voters").is_some_and(|v| v.contains("2@")));
        assert_eq!(lookup(&p, "broker.rack"), None);
    }

    #[test]
    fn zookeeper_node() {
        let options = BTreeMap::new();
        let p = server_properties(&BrokerFacts {
            id: 2,
            host: "127.0.0.1",
            port: 31002,
            rack: None,
            log_dirs: "data",
            quorum: MetadataQuorum::ZooKeeper {
                connect: "127.0.0.1:2181/kafka",
            },
            options: &options,
        });
        assert_eq!(lookup(&p, "broker.id"), Some("2"));
        assert_eq!(
            lookup(&p, "zookeeper.connect"),
            Some("127.0.0.1:2181/kafka")
        );
        assert_eq!(lookup(&p, "listeners"), Some("PLAINTEXT://127.0.0.1:31002"));
        for absent in ["node.id", "process.roles", "controller.quorum.voters"] {
            assert_eq!(lookup(&p, absent), None, "{absent}");
        }
    }

    #[test]
    fn values_are_escaped_for_java_properties() {
        assert_eq!(escape_value(r"C:\x"), r"C:\\x");
        assert_eq!(escape_value(" lead"), r"\ lead");
        assert_eq!(escape_value("a b=c:d"), "a b=c:d");
        assert_eq!(escape_value("é"), r"\u00e9");
        let text = properties_text("test", &[("k".into(), "v".into())]);
        assert_eq!(text, "# test\nk=v\n");
    }

    #[test]
    fn log4j_level_and_overrides() {
        let extra = BTreeMap::from([
            (
                "log4j.logger.kafka.controller".to_owned(),
                "DEBUG".to_owned(),
            ),
            (
                "log4j.logger.org.apache.zookeeper".to_owned(),
                "INFO".to_owned(),
            ),
        ]);
        let p = log4j_properties(LogLevel::Warn, &extra);
        assert_eq!(
            lookup(&p, "log4j.rootLogger"),
            Some("WARN, stdout, stderr, server")
        );
        assert_eq!(lookup(&p, "log4j.appender.stderr.Threshold"), Some("ERROR"));
        assert_eq!(
            lookup(&p, "log4j.appender.stderr.layout.ConversionPattern"),
            Some("[%d] %p %m (%c)%n%throwable{short}")
        );
        assert_eq!(lookup(&p, "log4j.logger.kafka.controller"), Some("DEBUG"));
        assert_eq!(
            lookup(&p, "log4j.logger.org.apache.zookeeper"),
            Some("INFO")
        );
        assert_eq!(
            p.iter()
                .filter(|(k, _)| k == "log4j.logger.org.apache.zookeeper")
                .count(),
            1
        );
    }
}
