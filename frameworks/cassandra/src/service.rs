//! [`CassandraService`]: the Cassandra side of the shared scheduler.

use std::{
    collections::BTreeMap,
    net::{SocketAddr, ToSocketAddrs},
};

use executor_protocol::{
    Artifact, Check, Command, ConfigFile, PreStop, Readiness, StopSignal, TaskDocument,
};
use futures::future::BoxFuture;
use scheduler_app::tarball::distribution_dir;
use scheduler_core::{
    constraints::parse_list,
    node::{NodeSpec, Placement, PortSpec},
    plan::CheckResult,
    resources::{Milli, Scalars},
};
use scheduler_runtime::{ClusterView, NodeView, Service, TaskContext};
use serde_json::{Value, json};
use tracing::debug;

use crate::{
    config::{DEFAULT_DC, DEFAULT_RACK, NodeConfig, Settings, change_problems},
    error::Error,
    render::{self, NodeFacts},
    ring,
};

/// Name of the CQL (native transport) port in a node's placement.
pub const NATIVE_PORT: &str = "native";
/// Name of the inter-node (storage) port in a node's placement.
pub const STORAGE_PORT: &str = "storage";
/// Name of the JMX port in a node's placement.
pub const JMX_PORT: &str = "jmx";
/// Name of the Cassandra tarball among the scheduler's artifacts.
pub const CASSANDRA_ARTIFACT: &str = "cassandra";

/// The address a node listens on: its agent's hostname, which on the local
/// cluster is the agent's own loopback IP. `localhost` (all agents of a
/// single-process Mesos) becomes IPv4 loopback so clients and nodes agree.
pub fn node_address(hostname: &str) -> &str {
    if hostname == "localhost" {
        "127.0.0.1"
    } else {
        hostname
    }
}

/// Where a placed node is, and how to reach it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Located {
    /// The node ID.
    pub id: String,
    /// Its listen, RPC and JMX address.
    pub address: String,
    /// CQL port.
    pub native_port: u16,
    /// Inter-node port.
    pub storage_port: u16,
    /// JMX port.
    pub jmx_port: u16,
    /// Data center.
    pub dc: String,
    /// Rack.
    pub rack: String,
}

impl Located {
    /// `address:native_port`, what CQL clients connect to.
    pub fn cql(&self) -> String {
        format!("{}:{}", self.address, self.native_port)
    }

    /// `address:storage_port`, how the node appears in seed lists.
    pub fn seed(&self) -> String {
        format!("{}:{}", self.address, self.storage_port)
    }

    /// Its CQL endpoint as a socket address, when the address resolves.
    pub fn cql_socket(&self) -> Option<SocketAddr> {
        (self.address.as_str(), self.native_port)
            .to_socket_addrs()
            .ok()?
            .next()
    }
}

fn port_of(placement: &Placement, name: &str) -> Result<u16, String> {
    let port = placement
        .ports
        .get(name)
        .ok_or_else(|| format!("no {name} port in the placement"))?;
    u16::try_from(*port).map_err(|_| format!("{name} port {port} is out of range"))
}

/// Where `node` is, when it is placed and its configuration parses.
pub fn locate(node: &NodeView) -> Option<Located> {
    let placement = node.placement.as_ref()?;
    let config = NodeConfig::from_json(node.config.clone()).ok()?;
    locate_with(&node.id, &config, placement).ok()
}

fn locate_with(id: &str, config: &NodeConfig, placement: &Placement) -> Result<Located, String> {
    let attribute = |name: &str, default: &str| {
        placement
            .host
            .attributes
            .get(name)
            .cloned()
            .unwrap_or_else(|| default.to_owned())
    };
    Ok(Located {
        id: id.to_owned(),
        address: node_address(&placement.host.hostname).to_owned(),
        native_port: port_of(placement, NATIVE_PORT)?,
        storage_port: port_of(placement, STORAGE_PORT)?,
        jmx_port: port_of(placement, JMX_PORT)?,
        dc: attribute(&config.dc_attribute, DEFAULT_DC),
        rack: attribute(&config.rack_attribute, DEFAULT_RACK),
    })
}

/// Orders node IDs numerically when they are numbers (`2` before `10`).
fn id_key(id: &str) -> (u64, String) {
    (id.parse().unwrap_or(u64::MAX), id.to_owned())
}

/// Every placed node, in ID order.
pub fn located(cluster: &ClusterView) -> Vec<Located> {
    let mut nodes: Vec<Located> = cluster.nodes.values().filter_map(locate).collect();
    nodes.sort_by_key(|n| id_key(&n.id));
    nodes
}

/// The seeds of the cluster: the first placed node (by ID) of each rack.
pub fn rack_seeds(nodes: &[Located]) -> Vec<&Located> {
    let mut first: BTreeMap<(&str, &str), &Located> = BTreeMap::new();
    for node in nodes {
        first
            .entry((node.dc.as_str(), node.rack.as_str()))
            .or_insert(node);
    }
    let mut seeds: Vec<&Located> = first.into_values().collect();
    seeds.sort_by_key(|n| id_key(&n.id));
    seeds
}

/// The seed list `me` starts with: the first node of each rack among the
/// others. A node lists itself only when it is the first node of the
/// cluster (`first`, the lowest ID) and not a replacement: any other node
/// that counted itself a seed would skip bootstrap and join without its data.
pub fn seeds_for(
    me: &Located,
    nodes: &[Located],
    first: Option<&str>,
    replacing: bool,
) -> Vec<String> {
    let may_seed_itself = first == Some(me.id.as_str()) && !replacing;
    let candidates: Vec<Located> = nodes
        .iter()
        .filter(|n| n.id != me.id || may_seed_itself)
        .cloned()
        .collect();
    rack_seeds(&candidates)
        .into_iter()
        .map(Located::seed)
        .collect()
}

/// The lowest node ID of the cluster, placed or not.
pub fn first_node(cluster: &ClusterView) -> Option<&str> {
    cluster
        .nodes
        .keys()
        .min_by_key(|id| id_key(id))
        .map(String::as_str)
}

/// The address `node` takes over on its first boot: where it lived before it
/// was replaced (the scheduler keeps that with the node, across restarts).
/// Cassandra ignores the flag once the node has bootstrapped, so relaunches
/// may keep it.
pub fn replaces(node: &NodeView) -> Option<String> {
    node.moved_from
        .as_ref()
        .map(|host| node_address(&host.hostname).to_owned())
}

/// Cassandra nodes as a service of the shared scheduler.
#[derive(Debug)]
pub struct CassandraService {
    settings: Settings,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn result(ok: bool, message: String) -> CheckResult {
    CheckResult {
        ok,
        message,
        at: now_ms(),
    }
}

impl CassandraService {
    /// A service with validated framework settings.
    pub fn new(settings: Settings) -> Result<Self, Error> {
        settings.validate()?;
        Ok(CassandraService { settings })
    }

    /// The framework settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The CQL endpoints of every placed node, by node address.
    fn cql_endpoints(nodes: &[Located]) -> BTreeMap<String, SocketAddr> {
        nodes
            .iter()
            .filter_map(|n| Some((n.address.clone(), n.cql_socket()?)))
            .collect()
    }
}

impl Service for CassandraService {
    fn name(&self) -> &str {
        "cassandra"
    }

    fn noun(&self) -> &str {
        "node"
    }

    fn configure(
        &self,
        id: &str,
        config: Value,
        cluster: &ClusterView,
    ) -> Result<Value, Vec<String>> {
        let given_name = config.get("cluster_name").is_some();
        let mut config = NodeConfig::from_json(config).map_err(|e| vec![e])?;
        let mut problems = config.problems();
        // One ring, one name: a node added without one joins the cluster's.
        let peers: Vec<String> = cluster
            .nodes
            .values()
            .filter(|n| n.id != id)
            .filter_map(|n| Some(NodeConfig::from_json(n.config.clone()).ok()?.cluster_name))
            .collect();
        if let Some(existing) = peers.first() {
            if !given_name {
                config.cluster_name = existing.clone();
            } else if config.cluster_name != *existing {
                problems.push(format!(
                    "cluster_name {:?} differs from the cluster's {existing:?}: every node of the framework is in one ring",
                    config.cluster_name
                ));
            }
        }
        if problems.is_empty() {
            Ok(config.to_json())
        } else {
            Err(problems)
        }
    }

    fn spec(&self, config: &Value) -> Result<NodeSpec, String> {
        let config = NodeConfig::from_json(config.clone())?;
        let port = |name: &str, fixed: Option<u16>| PortSpec {
            name: name.into(),
            fixed: fixed.map(u64::from),
        };
        Ok(NodeSpec {
            resources: Scalars {
                cpus: Milli::from_f64(config.cpus),
                mem: Milli::from_f64(config.mem as f64),
                disk: Milli::from_f64(config.disk as f64),
            },
            ports: vec![
                port(NATIVE_PORT, config.native_port),
                port(STORAGE_PORT, config.storage_port),
                port(JMX_PORT, config.jmx_port),
            ],
            constraints: parse_list(&config.constraints).map_err(|errors| {
                errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            })?,
        })
    }

    fn check_change(&self, old: &Value, new: &Value) -> Vec<String> {
        match (
            NodeConfig::from_json(old.clone()),
            NodeConfig::from_json(new.clone()),
        ) {
            (Ok(old), Ok(new)) => change_problems(&old, &new),
            (_, Err(e)) | (Err(e), _) => vec![e],
        }
    }

    fn ready_to_launch(&self, node: &NodeView, cluster: &ClusterView) -> Result<(), String> {
        let config = NodeConfig::from_json(node.config.clone())?;
        if !config.seeds.is_empty() {
            return Ok(());
        }
        let nodes = located(cluster);
        let me = nodes
            .iter()
            .find(|n| n.id == node.id)
            .ok_or_else(|| format!("node {} is not placed yet", node.id))?;
        if seeds_for(me, &nodes, first_node(cluster), replaces(node).is_some()).is_empty() {
            return Err(format!(
                "node {} waits for a seed: another node must be placed first (it is not the first node of the cluster)",
                node.id
            ));
        }
        Ok(())
    }

    fn task(&self, context: &TaskContext<'_>) -> Result<TaskDocument, String> {
        let id = &context.node.id;
        let config = NodeConfig::from_json(context.node.config.clone())?;
        let me =
            locate_with(id, &config, context.placement).map_err(|e| format!("node {id}: {e}"))?;
        let replaces = replaces(context.node);
        let nodes = located(context.cluster);
        let seeds = if config.seeds.is_empty() {
            seeds_for(&me, &nodes, first_node(context.cluster), replaces.is_some())
        } else {
            config.seeds.clone()
        };
        if seeds.is_empty() {
            return Err(format!("node {id} has no seed to join"));
        }
        let facts = NodeFacts {
            cluster_name: &config.cluster_name,
            num_tokens: config.num_tokens,
            address: &me.address,
            storage_port: me.storage_port,
            native_port: me.native_port,
            jmx_port: me.jmx_port,
            seeds: &seeds,
            volume: context.volume_path,
            dc: &me.dc,
            rack: &me.rack,
            replaces: replaces.as_deref(),
            options: &config.options,
            jvm_options: &config.jvm_options,
        };
        let yaml = render::cassandra_yaml(
            &format!("node {id}, rendered by the scheduler"),
            &render::yaml_settings(&facts),
        );
        let artifact = context
            .artifacts
            .get(CASSANDRA_ARTIFACT)
            .ok_or("the scheduler has no cassandra artifact to hand out")?;
        let dist = match &self.settings.distribution_dir {
            Some(dir) => dir.clone(),
            None => distribution_dir(&artifact.url).ok_or_else(|| {
                format!(
                    "cannot tell the distribution's top directory from {}; set it explicitly",
                    artifact.url
                )
            })?,
        };
        let script =
            render::start_script(&dist, config.heap, me.jmx_port, &render::jvm_flags(&facts));
        let mut document = TaskDocument::new(Command::Shell(script));
        document.artifacts.push(Artifact {
            url: artifact.url.clone(),
            sha256: artifact.sha256.clone(),
            extract: true,
            destination: ".".into(),
        });
        document.config_files = vec![
            ConfigFile {
                path: "conf/cassandra.yaml".into(),
                content: yaml,
                mode: "0644".into(),
            },
            ConfigFile {
                path: "conf/cassandra-rackdc.properties".into(),
                content: render::rackdc_properties(&me.dc, &me.rack),
                mode: "0644".into(),
            },
        ];
        // The native transport opens last in start-up, once the node has
        // joined the ring; the health check then confirms Up/Normal over CQL.
        document.readiness = Some(Readiness {
            check: Check::Tcp {
                host: me.address.clone(),
                port: me.native_port,
            },
            interval_ms: 1_000,
            timeout_ms: 1_000,
            initial_delay_ms: 0,
        });
        document.stop.pre_stop = Some(PreStop {
            command: Command::Shell(render::drain_command(&dist, &me.address, me.jmx_port)),
            timeout_ms: u64::try_from(self.settings.drain_timeout.as_millis()).unwrap_or(u64::MAX),
        });
        document.stop.signal = StopSignal::Term;
        document.stop.grace_period_ms =
            u64::try_from(self.settings.stop_grace.as_millis()).unwrap_or(u64::MAX);
        document.health_interval_ms = 10_000;
        Ok(document)
    }

    fn check_safety(&self, node: &str, cluster: &ClusterView) -> BoxFuture<'static, CheckResult> {
        let timeout = self.settings.check_timeout;
        let nodes = located(cluster);
        let node = node.to_owned();
        Box::pin(async move {
            let Some(target) = nodes.iter().find(|n| n.id == node) else {
                return result(
                    true,
                    format!("node {node} is not placed: nothing to take down"),
                );
            };
            let others: Vec<String> = nodes
                .iter()
                .filter(|n| n.id != node)
                .map(|n| n.address.clone())
                .collect();
            let reports = ring::reports(&Self::cql_endpoints(&nodes), timeout).await;
            let verdict = ring::safe_to_stop(&target.address, &others, &reports);
            debug!(node = %node, ok = verdict.is_ok(), "safety check");
            match verdict {
                Ok(message) => result(true, message),
                Err(message) => result(false, message),
            }
        })
    }

    fn check_health(&self, node: &str, cluster: &ClusterView) -> BoxFuture<'static, CheckResult> {
        let timeout = self.settings.check_timeout;
        let nodes = located(cluster);
        let node = node.to_owned();
        Box::pin(async move {
            let Some(target) = nodes.iter().find(|n| n.id == node) else {
                return result(false, format!("node {node} is not placed"));
            };
            let reports = ring::reports(&Self::cql_endpoints(&nodes), timeout).await;
            let verdict = ring::up_normal(&target.address, &reports);
            debug!(node = %node, ok = verdict.is_ok(), "health check");
            match verdict {
                Ok(()) => result(true, format!("{} is Up/Normal", target.address)),
                Err(message) => result(false, message),
            }
        })
    }

    fn endpoints(&self, cluster: &ClusterView) -> Value {
        let nodes = located(cluster);
        let by_id: serde_json::Map<String, Value> = nodes
            .iter()
            .map(|n| {
                (
                    n.id.clone(),
                    json!({
                        "address": n.address,
                        "native_port": n.native_port,
                        "storage_port": n.storage_port,
                        "jmx_port": n.jmx_port,
                        "dc": n.dc,
                        "rack": n.rack,
                    }),
                )
            })
            .collect();
        let cluster_name = cluster
            .nodes
            .values()
            .find_map(|n| Some(NodeConfig::from_json(n.config.clone()).ok()?.cluster_name));
        json!({
            "contact_points": nodes.iter().map(Located::cql).collect::<Vec<_>>().join(","),
            "cluster_name": cluster_name,
            "seeds": rack_seeds(&nodes).into_iter().map(Located::seed).collect::<Vec<_>>(),
            "nodes": by_id,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use scheduler_core::constraints::Host;
    use scheduler_runtime::ArtifactRef;

    use super::*;

    fn service() -> CassandraService {
        CassandraService::new(Settings::default()).expect("settings")
    }

    fn add(
        service: &CassandraService,
        cluster: &mut ClusterView,
        id: &str,
        config: Value,
    ) -> Value {
        let configured = service
            .configure(id, config, cluster)
            .unwrap_or_else(|e| panic!("node {id}: {e:?}"));
        cluster.nodes.insert(
            id.into(),
            NodeView {
                id: id.into(),
                config: configured.clone(),
                placement: None,
                running: false,
                moved_from: None,
            },
        );
        configured
    }

    fn place(cluster: &mut ClusterView, id: &str, host: &str, rack: &str, base: u64) {
        let node = cluster.nodes.get_mut(id).expect("node");
        node.placement = Some(Placement {
            agent_id: format!("agent-{host}"),
            host: Host {
                hostname: host.into(),
                attributes: BTreeMap::from([
                    ("dc".to_owned(), "east".to_owned()),
                    ("rack".to_owned(), rack.to_owned()),
                ]),
            },
            persistence_id: format!("vol-{id}"),
            ports: BTreeMap::from([
                (NATIVE_PORT.to_owned(), base),
                (STORAGE_PORT.to_owned(), base + 1),
                (JMX_PORT.to_owned(), base + 2),
            ]),
        });
        node.running = true;
    }

    fn artifacts() -> BTreeMap<String, ArtifactRef> {
        BTreeMap::from([(
            CASSANDRA_ARTIFACT.to_owned(),
            ArtifactRef {
                url: "http://127.0.0.1:1/artifacts/cassandra-5.0.9.tar.gz".into(),
                sha256: "ab".repeat(32),
            },
        )])
    }

    fn document(service: &CassandraService, cluster: &ClusterView, id: &str) -> TaskDocument {
        let node = cluster.nodes[id].clone();
        let placement = node.placement.clone().expect("placed");
        let artifacts = artifacts();
        service
            .task(&TaskContext {
                node: &node,
                placement: &placement,
                cluster,
                artifacts: &artifacts,
                volume_path: "data",
            })
            .expect("task")
    }

    fn yaml_line<'a>(doc: &'a TaskDocument, key: &str) -> &'a str {
        doc.config_files[0]
            .content
            .lines()
            .find(|l| l.starts_with(&format!("{key}: ")))
            .unwrap_or_else(|| panic!("{key} missing"))
    }

    #[test]
    fn nodes_join_the_cluster_name_and_refuse_another() {
        let s = service();
        let mut cluster = ClusterView::default();
        add(&s, &mut cluster, "0", json!({"cluster_name": "prod"}));
        let c = add(&s, &mut cluster, "1", json!({}));
        assert_eq!(c["cluster_name"], json!("prod"));
        let err = s
            .configure("2", json!({"cluster_name": "test"}), &cluster)
            .expect_err("another ring");
        assert!(
            err[0].contains("differs from the cluster's \"prod\""),
            "{err:?}"
        );
        // An update of node 0 keeps its name.
        assert!(
            s.configure("0", cluster.nodes["0"].config.clone(), &cluster)
                .is_ok()
        );
    }

    #[test]
    fn spec_asks_for_three_ports() {
        let s = service();
        let spec = s
            .spec(
                &json!({"cpus": 0.5, "mem": 1024, "heap": 512, "disk": 1000, "native_port": 9042}),
            )
            .expect("spec");
        assert_eq!(spec.resources.mem, Milli::from_f64(1024.0));
        let names: Vec<(&str, Option<u64>)> = spec
            .ports
            .iter()
            .map(|p| (p.name.as_str(), p.fixed))
            .collect();
        assert_eq!(
            names,
            [("native", Some(9042)), ("storage", None), ("jmx", None)]
        );
    }

    #[test]
    fn seeds_are_the_first_node_of_each_rack_and_only_the_first_lists_itself() {
        let s = service();
        let mut cluster = ClusterView::default();
        for id in ["0", "1", "2", "10"] {
            add(&s, &mut cluster, id, json!({}));
        }
        place(&mut cluster, "0", "10.0.0.1", "r1", 31000);
        place(&mut cluster, "1", "10.0.0.2", "r2", 31000);
        place(&mut cluster, "2", "10.0.0.3", "r1", 31000);
        place(&mut cluster, "10", "10.0.0.4", "r2", 31000);
        let seeds = |id: &str| {
            let doc = document(&s, &cluster, id);
            yaml_line(&doc, "seed_provider").to_owned()
        };
        assert!(
            seeds("0").contains("\"seeds\":\"10.0.0.1:31001,10.0.0.2:31001\""),
            "{}",
            seeds("0")
        );
        assert!(
            seeds("1").contains("\"seeds\":\"10.0.0.1:31001,10.0.0.4:31001\""),
            "{}",
            seeds("1")
        );
        assert!(seeds("10").contains("\"seeds\":\"10.0.0.1:31001,10.0.0.2:31001\""));
        let endpoints = s.endpoints(&cluster);
        assert_eq!(
            endpoints["contact_points"],
            json!("10.0.0.1:31000,10.0.0.2:31000,10.0.0.3:31000,10.0.0.4:31000")
        );
        assert_eq!(endpoints["nodes"]["1"]["rack"], json!("r2"));
        assert_eq!(endpoints["nodes"]["1"]["dc"], json!("east"));
    }

    #[test]
    fn a_later_node_waits_for_a_seed() {
        let s = service();
        let mut cluster = ClusterView::default();
        add(&s, &mut cluster, "0", json!({}));
        add(&s, &mut cluster, "1", json!({}));
        place(&mut cluster, "1", "10.0.0.2", "r1", 31000);
        let err = s
            .ready_to_launch(&cluster.nodes["1"].clone(), &cluster)
            .expect_err("no seed");
        assert!(err.contains("waits for a seed"), "{err}");
        place(&mut cluster, "0", "10.0.0.1", "r1", 31000);
        assert!(
            s.ready_to_launch(&cluster.nodes["1"].clone(), &cluster)
                .is_ok()
        );
        assert!(
            s.ready_to_launch(&cluster.nodes["0"].clone(), &cluster)
                .is_ok()
        );
    }

    #[test]
    fn the_task_renders_files_ports_stop_policy_and_readiness() {
        let s = service();
        let mut cluster = ClusterView::default();
        add(
            &s,
            &mut cluster,
            "0",
            json!({"heap": 512, "mem": 1024, "num_tokens": 4,
                   "options": {"concurrent_writes": 16}, "jvm_options": "-Dcassandra.ring_delay_ms=3000"}),
        );
        place(&mut cluster, "0", "127.9.0.2", "r1", 31010);
        let doc = document(&s, &cluster, "0");
        doc.validate().expect("valid document");
        assert_eq!(doc.config_files[0].path, "conf/cassandra.yaml");
        assert_eq!(
            yaml_line(&doc, "listen_address"),
            "listen_address: \"127.9.0.2\""
        );
        assert_eq!(
            yaml_line(&doc, "native_transport_port"),
            "native_transport_port: 31010"
        );
        assert_eq!(yaml_line(&doc, "storage_port"), "storage_port: 31011");
        assert_eq!(yaml_line(&doc, "num_tokens"), "num_tokens: 4");
        assert_eq!(
            yaml_line(&doc, "concurrent_writes"),
            "concurrent_writes: 16"
        );
        assert_eq!(
            yaml_line(&doc, "commitlog_directory"),
            "commitlog_directory: \"data/commitlog\""
        );
        assert_eq!(
            doc.config_files[1]
                .content
                .lines()
                .skip(1)
                .collect::<Vec<_>>(),
            ["dc=east", "rack=r1"]
        );
        let Command::Shell(script) = &doc.command else {
            panic!("shell command expected");
        };
        assert!(script.contains("JMX_PORT=31012"), "{script}");
        assert!(
            script.contains("-Dcom.sun.management.jmxremote.host=127.9.0.2"),
            "{script}"
        );
        assert!(
            script.contains("-Dcassandra.ring_delay_ms=3000'"),
            "{script}"
        );
        assert!(
            script.contains("exec 'cassandra-5.0.9'/bin/cassandra -f -R"),
            "{script}"
        );
        assert!(!script.contains("replace_address"));
        let pre_stop = doc.stop.pre_stop.as_ref().expect("drain");
        assert_eq!(
            pre_stop.command,
            Command::Shell("'cassandra-5.0.9/bin/nodetool' -h '127.9.0.2' -p 31012 drain".into())
        );
        assert_eq!(doc.stop.signal, StopSignal::Term);
        assert!(matches!(
            doc.readiness.as_ref().map(|r| &r.check),
            Some(Check::Tcp { host, port: 31010 }) if host == "127.9.0.2"
        ));
    }

    #[test]
    fn a_moved_node_replaces_its_old_address_and_does_not_seed_itself() {
        let s = service();
        let mut cluster = ClusterView::default();
        add(&s, &mut cluster, "0", json!({}));
        add(&s, &mut cluster, "1", json!({}));
        place(&mut cluster, "0", "10.0.0.1", "r1", 31000);
        place(&mut cluster, "1", "10.0.0.2", "r1", 31000);
        assert_eq!(replaces(&cluster.nodes["0"]), None);
        // Node 0 is replaced: the scheduler notes where it lived, and it
        // lands elsewhere.
        let node = cluster.nodes.get_mut("0").expect("node");
        node.moved_from = node.placement.take().map(|p| p.host);
        place(&mut cluster, "0", "10.0.0.3", "r1", 31000);
        let doc = document(&s, &cluster, "0");
        let Command::Shell(script) = &doc.command else {
            panic!("shell command expected");
        };
        assert!(
            script.contains("-Dcassandra.replace_address_first_boot=10.0.0.1"),
            "{script}"
        );
        assert!(yaml_line(&doc, "seed_provider").contains("\"seeds\":\"10.0.0.2:31001\""));
        // Relaunches on the new agent keep the flag (ignored once bootstrapped).
        let again = document(&s, &cluster, "0");
        assert_eq!(again.command, doc.command);
    }
}
