//! Pure rendering of one node's files: `cassandra.yaml`,
//! `cassandra-rackdc.properties`, its JVM flags, and the shell lines that
//! start and drain it. No I/O; everything comes in as [`NodeFacts`].

use std::collections::BTreeMap;

use serde_json::{Value, json};

/// Where, inside the persistent volume, each kind of data lives.
pub const VOLUME_DIRS: [(&str, &str); 5] = [
    ("data_file_directories", "data"),
    ("commitlog_directory", "commitlog"),
    ("hints_directory", "hints"),
    ("saved_caches_directory", "saved_caches"),
    ("cdc_raw_directory", "cdc_raw"),
];

/// Everything one node's files are rendered from.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeFacts<'a> {
    /// `cluster_name`.
    pub cluster_name: &'a str,
    /// `num_tokens`.
    pub num_tokens: u32,
    /// The agent's IP: listen, RPC and JMX address.
    pub address: &'a str,
    /// Inter-node port.
    pub storage_port: u16,
    /// CQL port.
    pub native_port: u16,
    /// JMX port.
    pub jmx_port: u16,
    /// Seeds as `host:port`.
    pub seeds: &'a [String],
    /// The persistent volume, relative to the sandbox.
    pub volume: &'a str,
    /// Data center (from the agent's attributes).
    pub dc: &'a str,
    /// Rack (from the agent's attributes).
    pub rack: &'a str,
    /// The address of the node this one replaces, on its first boot.
    pub replaces: Option<&'a str>,
    /// Operator's `cassandra.yaml` settings.
    pub options: &'a BTreeMap<String, Value>,
    /// Operator's extra JVM flags.
    pub jvm_options: &'a str,
}

/// The `cassandra.yaml` settings of a node, by key: defaults, then the
/// operator's options, then what the scheduler decides (which wins).
pub fn yaml_settings(facts: &NodeFacts<'_>) -> BTreeMap<String, Value> {
    let mut settings: BTreeMap<String, Value> = BTreeMap::from([
        (
            "partitioner".into(),
            json!("org.apache.cassandra.dht.Murmur3Partitioner"),
        ),
        ("commitlog_sync".into(), json!("periodic")),
        ("commitlog_sync_period".into(), json!("10000ms")),
        ("start_native_transport".into(), json!(true)),
    ]);
    settings.extend(facts.options.iter().map(|(k, v)| (k.clone(), v.clone())));
    let volume = facts.volume.trim_end_matches('/');
    for (key, dir) in VOLUME_DIRS {
        let path = format!("{volume}/{dir}");
        let value = if key == "data_file_directories" {
            json!([path])
        } else {
            json!(path)
        };
        settings.insert(key.into(), value);
    }
    settings.insert("cluster_name".into(), json!(facts.cluster_name));
    settings.insert("num_tokens".into(), json!(facts.num_tokens));
    settings.insert("listen_address".into(), json!(facts.address));
    settings.insert("rpc_address".into(), json!(facts.address));
    settings.insert("storage_port".into(), json!(facts.storage_port));
    settings.insert("native_transport_port".into(), json!(facts.native_port));
    settings.insert(
        "endpoint_snitch".into(),
        json!("GossipingPropertyFileSnitch"),
    );
    settings.insert(
        "seed_provider".into(),
        json!([{
            "class_name": "org.apache.cassandra.locator.SimpleSeedProvider",
            "parameters": [{"seeds": facts.seeds.join(",")}]
        }]),
    );
    settings
}

/// `cassandra.yaml`: one `key: value` line per setting, values in JSON
/// notation (which YAML reads as flow style), sorted by key.
pub fn cassandra_yaml(header: &str, settings: &BTreeMap<String, Value>) -> String {
    let mut text = format!("# {header}\n");
    for (key, value) in settings {
        text.push_str(&format!("{key}: {value}\n"));
    }
    text
}

/// `cassandra-rackdc.properties`, read by `GossipingPropertyFileSnitch`.
pub fn rackdc_properties(dc: &str, rack: &str) -> String {
    format!("# the node's place, from its agent's attributes\ndc={dc}\nrack={rack}\n")
}

/// The JVM flags the scheduler adds: JMX on the node's address and port
/// without authentication (the launcher's own JMX set-up is then skipped),
/// the replacement address on a first boot, and the operator's flags last.
pub fn jvm_flags(facts: &NodeFacts<'_>) -> Vec<String> {
    let mut flags = vec![
        format!("-Dcom.sun.management.jmxremote.port={}", facts.jmx_port),
        format!("-Dcom.sun.management.jmxremote.rmi.port={}", facts.jmx_port),
        format!("-Dcom.sun.management.jmxremote.host={}", facts.address),
        format!("-Djava.rmi.server.hostname={}", facts.address),
        "-Dcom.sun.management.jmxremote.authenticate=false".into(),
        "-Dcom.sun.management.jmxremote.ssl=false".into(),
    ];
    if let Some(old) = facts.replaces {
        flags.push(format!("-Dcassandra.replace_address_first_boot={old}"));
    }
    flags.extend(facts.jvm_options.split_whitespace().map(str::to_owned));
    flags
}

/// Quotes `text` for a POSIX shell.
pub fn sh_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// The script that starts the node in the foreground: the distribution's
/// own configuration files fill in what the scheduler does not render
/// (logging, JVM option files), then its launcher runs with our settings.
pub fn start_script(dist: &str, heap_mb: u64, jmx_port: u16, flags: &[String]) -> String {
    let dist = sh_quote(dist);
    format!(
        "set -e\n\
         mkdir -p conf logs\n\
         for f in {dist}/conf/*; do [ -e \"conf/${{f##*/}}\" ] || cp -R \"$f\" conf/; done\n\
         export CASSANDRA_CONF=\"$PWD/conf\" CASSANDRA_LOG_DIR=\"$PWD/logs\"\n\
         export MAX_HEAP_SIZE={heap} HEAP_NEWSIZE={young} JMX_PORT={jmx_port}\n\
         export JVM_EXTRA_OPTS={flags}\n\
         exec {dist}/bin/cassandra -f -R\n",
        heap = sh_quote(&format!("{heap_mb}M")),
        young = sh_quote(&format!("{}M", (heap_mb / 4).max(32))),
        flags = sh_quote(&flags.join(" ")),
    )
}

/// The pre-stop command: `nodetool drain` flushes memtables and stops
/// accepting writes, so the node restarts without commit log replay and
/// clients move to other coordinators first.
pub fn drain_command(dist: &str, address: &str, jmx_port: u16) -> String {
    format!(
        "{} -h {} -p {jmx_port} drain",
        sh_quote(&format!("{dist}/bin/nodetool")),
        sh_quote(address)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts<'a>(
        options: &'a BTreeMap<String, Value>,
        seeds: &'a [String],
        replaces: Option<&'a str>,
    ) -> NodeFacts<'a> {
        NodeFacts {
            cluster_name: "prod ring",
            num_tokens: 8,
            address: "10.0.0.5",
            storage_port: 31000,
            native_port: 31001,
            jmx_port: 31002,
            seeds,
            volume: "volume/",
            dc: "east",
            rack: "r2",
            replaces,
            options,
            jvm_options: " -Dcassandra.ring_delay_ms=5000  -XX:+UseG1GC ",
        }
    }

    #[test]
    fn yaml_has_identity_network_storage_and_options() {
        let options = BTreeMap::from([
            ("concurrent_writes".to_owned(), json!(64)),
            ("commitlog_sync_period".to_owned(), json!("2000ms")),
        ]);
        let seeds = vec!["10.0.0.4:31000".to_owned(), "10.0.0.6:31010".to_owned()];
        let f = facts(&options, &seeds, None);
        let yaml = cassandra_yaml("node 1", &yaml_settings(&f));
        for line in [
            "# node 1",
            "cluster_name: \"prod ring\"",
            "num_tokens: 8",
            "listen_address: \"10.0.0.5\"",
            "rpc_address: \"10.0.0.5\"",
            "storage_port: 31000",
            "native_transport_port: 31001",
            "endpoint_snitch: \"GossipingPropertyFileSnitch\"",
            "seed_provider: [{\"class_name\":\"org.apache.cassandra.locator.SimpleSeedProvider\",\"parameters\":[{\"seeds\":\"10.0.0.4:31000,10.0.0.6:31010\"}]}]",
            "data_file_directories: [\"volume/data\"]",
            "commitlog_directory: \"volume/commitlog\"",
            "hints_directory: \"volume/hints\"",
            "saved_caches_directory: \"volume/saved_caches\"",
            "concurrent_writes: 64",
            "commitlog_sync_period: \"2000ms\"",
            "commitlog_sync: \"periodic\"",
        ] {
            assert!(yaml.lines().any(|l| l == line), "{line} missing:\n{yaml}");
        }
        // One line per key: YAML refuses duplicates.
        let keys: Vec<&str> = yaml
            .lines()
            .skip(1)
            .filter_map(|l| l.split(':').next())
            .collect();
        let mut unique = keys.clone();
        unique.dedup();
        assert_eq!(keys, unique);
    }

    #[test]
    fn rack_and_dc_file() {
        assert_eq!(
            rackdc_properties("east", "r2"),
            "# the node's place, from its agent's attributes\ndc=east\nrack=r2\n"
        );
    }

    #[test]
    fn jvm_flags_bind_jmx_and_carry_the_replacement() {
        let options = BTreeMap::new();
        let f = facts(&options, &[], None);
        let flags = jvm_flags(&f);
        assert!(flags.contains(&"-Dcom.sun.management.jmxremote.port=31002".to_owned()));
        assert!(flags.contains(&"-Dcom.sun.management.jmxremote.host=10.0.0.5".to_owned()));
        assert_eq!(
            flags[flags.len() - 2..],
            ["-Dcassandra.ring_delay_ms=5000", "-XX:+UseG1GC"]
        );
        assert!(!flags.iter().any(|f| f.contains("replace_address")));
        let f = facts(&options, &[], Some("10.0.0.9"));
        assert!(
            jvm_flags(&f).contains(&"-Dcassandra.replace_address_first_boot=10.0.0.9".to_owned())
        );
    }

    #[test]
    fn scripts_quote_what_they_pass() {
        let script = start_script(
            "cassandra-5.0.9",
            512,
            31002,
            &["-Da=1".into(), "-Db=2".into()],
        );
        assert!(
            script.contains("export MAX_HEAP_SIZE='512M' HEAP_NEWSIZE='128M' JMX_PORT=31002\n"),
            "{script}"
        );
        assert!(
            script.contains("export JVM_EXTRA_OPTS='-Da=1 -Db=2'\n"),
            "{script}"
        );
        assert!(
            script.ends_with("exec 'cassandra-5.0.9'/bin/cassandra -f -R\n"),
            "{script}"
        );
        assert_eq!(
            drain_command("cassandra-5.0.9", "10.0.0.5", 31002),
            "'cassandra-5.0.9/bin/nodetool' -h '10.0.0.5' -p 31002 drain"
        );
        assert_eq!(sh_quote("it's"), r"'it'\''s'");
    }
}
