//! [`KafkaService`]: the Kafka side of the shared scheduler.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use executor_protocol::{Artifact, Check, Command, ConfigFile, Readiness, TaskDocument};
use futures::future::BoxFuture;
use scheduler_app::tarball::distribution_dir;
use scheduler_core::{
    constraints::parse_list,
    node::{NodeSpec, PortSpec},
    plan::CheckResult,
    resources::{Milli, Scalars},
};
use scheduler_runtime::{ClusterView, NodeView, Service, TaskContext};
use serde_json::{Value, json};
use tracing::debug;

use crate::{
    admin::KafkaAdmin,
    config::{
        BrokerConfig, Mode, ModeKind, SafetyLevel, Settings, broker_id, change_problems,
        new_cluster_id,
    },
    controller,
    error::Error,
    render::{self, BrokerFacts, MetadataQuorum, Voter},
    safety::{self, ClusterState},
};

/// Name of the client port in a broker's placement.
pub const BROKER_PORT: &str = "broker";
/// Name of the KRaft controller port in a controller's placement.
pub const CONTROLLER_PORT: &str = "controller";
/// Name of the Kafka tarball among the scheduler's artifacts.
pub const KAFKA_ARTIFACT: &str = "kafka";

/// Kafka brokers as a service of the shared scheduler.
#[derive(Clone, Debug)]
pub struct KafkaService {
    settings: Settings,
    admin: AdminCache,
}

impl KafkaService {
    /// A service with validated framework settings.
    pub fn new(settings: Settings) -> Result<Self, Error> {
        settings.validate()?;
        Ok(KafkaService {
            settings,
            admin: AdminCache::default(),
        })
    }

    /// The framework settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }
}

/// The admin client of the checks, kept while the brokers' addresses stay the
/// same: checks are retried several times a second during a rolling restart,
/// and a new client would connect and fetch metadata from scratch each time.
#[derive(Clone, Default)]
struct AdminCache(Arc<Mutex<Option<Arc<KafkaAdmin>>>>);

impl AdminCache {
    fn get(&self, bootstrap: &str, timeout: Duration) -> Result<Arc<KafkaAdmin>, Error> {
        let mut cached = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(admin) = cached.as_ref().filter(|a| a.bootstrap() == bootstrap) {
            return Ok(admin.clone());
        }
        let admin = Arc::new(KafkaAdmin::connect(bootstrap, timeout)?);
        *cached = Some(admin.clone());
        Ok(admin)
    }
}

impl std::fmt::Debug for AdminCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminCache")
    }
}

/// The address a broker binds and advertises on its agent. Agents called
/// `localhost` (all agents of a single-process Mesos) get IPv4 loopback, so
/// that clients and brokers agree on one address.
pub fn listen_host(hostname: &str) -> &str {
    if hostname == "localhost" {
        "127.0.0.1"
    } else {
        hostname
    }
}

/// `host:port` of every placed broker, by broker ID.
pub fn broker_endpoints(cluster: &ClusterView) -> Vec<(String, String)> {
    cluster
        .nodes
        .values()
        .filter_map(|n| {
            let placement = n.placement.as_ref()?;
            let port = placement.ports.get(BROKER_PORT)?;
            Some((
                n.id.clone(),
                format!("{}:{port}", listen_host(&placement.host.hostname)),
            ))
        })
        .collect()
}

/// The bootstrap servers of the cluster (every placed broker).
pub fn bootstrap_servers(cluster: &ClusterView) -> String {
    broker_endpoints(cluster)
        .into_iter()
        .map(|(_, e)| e)
        .collect::<Vec<_>>()
        .join(",")
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

fn sh_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

fn peers(cluster: &ClusterView, except: &str) -> Vec<(String, BrokerConfig)> {
    cluster
        .nodes
        .values()
        .filter(|n| n.id != except)
        .filter_map(|n| {
            Some((
                n.id.clone(),
                BrokerConfig::from_json(n.config.clone()).ok()?,
            ))
        })
        .collect()
}

impl KafkaService {
    fn fill_kraft(
        &self,
        id: &str,
        config: &mut BrokerConfig,
        cluster: &ClusterView,
        problems: &mut Vec<String>,
    ) {
        let peers = peers(cluster, id);
        let known = cluster
            .settings
            .get("cluster_id")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .or_else(|| peers.iter().find_map(|(_, c)| c.cluster_id.clone()));
        match (&config.cluster_id, &known) {
            (None, Some(known)) => config.cluster_id = Some(known.clone()),
            (None, None) => config.cluster_id = Some(new_cluster_id()),
            (Some(mine), Some(known)) if mine != known => problems.push(format!(
                "cluster_id {mine} differs from the cluster's {known}: a broker joins the cluster it is added to"
            )),
            _ => {}
        }
        let controllers = peers.iter().filter(|(_, c)| c.is_controller()).count();
        match config.controller {
            None => config.controller = Some(controllers < self.settings.controllers),
            Some(true) if controllers >= self.settings.controllers => problems.push(format!(
                "the KRaft quorum already has its {} controllers; add this broker without \"controller\": true",
                self.settings.controllers
            )),
            Some(_) => {}
        }
    }

    fn voters(&self, cluster: &ClusterView) -> Result<Vec<Voter>, String> {
        let mut voters = Vec::new();
        for node in cluster.nodes.values() {
            let Ok(config) = BrokerConfig::from_json(node.config.clone()) else {
                continue;
            };
            if !config.is_controller() {
                continue;
            }
            let id = broker_id(&node.id)?;
            let placement = node.placement.as_ref().ok_or_else(|| {
                format!(
                    "waiting for controller {} to be placed: the KRaft quorum lists every controller's address",
                    node.id
                )
            })?;
            let port = placement
                .ports
                .get(CONTROLLER_PORT)
                .ok_or_else(|| format!("controller {} has no controller port", node.id))?;
            voters.push(Voter {
                id,
                host: listen_host(&placement.host.hostname).to_owned(),
                port: u16::try_from(*port).map_err(|e| e.to_string())?,
            });
        }
        if voters.is_empty() {
            return Err("the KRaft quorum has no controller yet".into());
        }
        voters.sort_by_key(|v| v.id);
        Ok(voters)
    }

    fn check_inputs(&self, node: &str, cluster: &ClusterView) -> Result<CheckInputs, String> {
        let broker = broker_id(node)?;
        let running = |id: &str| cluster.nodes.get(id).is_some_and(|n| n.running);
        let expected = cluster
            .nodes
            .values()
            .filter(|n| n.running)
            .filter_map(|n| broker_id(&n.id).ok())
            .collect();
        let endpoints = broker_endpoints(cluster)
            .into_iter()
            .filter(|(id, _)| running(id))
            .map(|(_, e)| e)
            .collect();
        Ok(CheckInputs {
            broker,
            expected,
            bootstrap: bootstrap_servers(cluster),
            endpoints,
        })
    }
}

/// What the safety and health checks of one broker need from the cluster view.
struct CheckInputs {
    broker: i32,
    /// The brokers that run, which should all be registered.
    expected: BTreeSet<i32>,
    /// Every placed broker, for rdkafka.
    bootstrap: String,
    /// The running brokers, each asked for its own metadata.
    endpoints: Vec<String>,
}

impl CheckInputs {
    async fn state(&self, admin: &AdminCache, timeout: Duration) -> Result<ClusterState, Error> {
        admin
            .get(&self.bootstrap, timeout)?
            .checked_state(&self.endpoints)
            .await
    }
}

impl Service for KafkaService {
    fn name(&self) -> &str {
        "kafka"
    }

    fn noun(&self) -> &str {
        "broker"
    }

    fn configure(
        &self,
        id: &str,
        config: Value,
        cluster: &ClusterView,
    ) -> Result<Value, Vec<String>> {
        let mut config = BrokerConfig::from_json(config).map_err(|e| vec![e])?;
        let kind = self.settings.mode.kind();
        let mut problems = config.problems(id, kind);
        match config.mode {
            Some(created) if created != kind => problems.push(format!(
                "the broker was created in {created} mode but the framework runs in {kind} mode; moving between modes is not supported"
            )),
            _ => config.mode = Some(kind),
        }
        match kind {
            ModeKind::Kraft => self.fill_kraft(id, &mut config, cluster, &mut problems),
            ModeKind::Zookeeper => {
                if config.cluster_id.is_some() || config.controller.is_some() {
                    problems.push("cluster_id and controller apply only in KRaft mode".into());
                }
            }
        }
        if problems.is_empty() {
            Ok(config.to_json())
        } else {
            Err(problems)
        }
    }

    fn spec(&self, config: &Value) -> Result<NodeSpec, String> {
        let config = BrokerConfig::from_json(config.clone())?;
        let mut ports = vec![PortSpec {
            name: BROKER_PORT.into(),
            fixed: config.port.map(u64::from),
        }];
        if config.is_controller() {
            ports.push(PortSpec {
                name: CONTROLLER_PORT.into(),
                fixed: config.controller_port.map(u64::from),
            });
        }
        Ok(NodeSpec {
            resources: Scalars {
                cpus: Milli::from_f64(config.cpus),
                mem: Milli::from_f64(config.mem as f64),
                disk: Milli::from_f64(config.disk as f64),
            },
            ports,
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
            BrokerConfig::from_json(old.clone()),
            BrokerConfig::from_json(new.clone()),
        ) {
            (Ok(old), Ok(new)) => change_problems(&old, &new),
            (_, Err(e)) | (Err(e), _) => vec![e],
        }
    }

    fn ready_to_launch(&self, node: &NodeView, cluster: &ClusterView) -> Result<(), String> {
        // A KRaft node's configuration lists every controller's address, so
        // it starts only once all controllers have their placement.
        if matches!(self.settings.mode, Mode::Kraft) {
            self.voters(cluster)?;
        }
        let _ = node;
        Ok(())
    }

    fn task(&self, context: &TaskContext<'_>) -> Result<TaskDocument, String> {
        let config = BrokerConfig::from_json(context.node.config.clone())?;
        let id = broker_id(&context.node.id)?;
        let placement = context.placement;
        let host = listen_host(&placement.host.hostname).to_owned();
        let port_of = |name: &str| -> Result<u16, String> {
            let port = placement
                .ports
                .get(name)
                .ok_or_else(|| format!("broker {id} has no {name} port in its placement"))?;
            u16::try_from(*port).map_err(|_| format!("port {port} is out of range"))
        };
        let port = port_of(BROKER_PORT)?;
        let voters;
        let quorum = match (&self.settings.mode, config.mode) {
            (Mode::ZooKeeper { connect }, Some(ModeKind::Zookeeper)) => {
                MetadataQuorum::ZooKeeper { connect }
            }
            (Mode::Kraft, Some(ModeKind::Kraft)) => {
                voters = self.voters(context.cluster)?;
                MetadataQuorum::Kraft {
                    controller_port: if config.is_controller() {
                        Some(port_of(CONTROLLER_PORT)?)
                    } else {
                        None
                    },
                    voters: &voters,
                }
            }
            (_, created) => {
                return Err(format!(
                    "broker {id} was created in {created:?} mode, which the framework no longer runs"
                ));
            }
        };
        let rack = config
            .rack_attribute
            .as_ref()
            .and_then(|a| placement.host.attributes.get(a))
            .map(String::as_str);
        let facts = BrokerFacts {
            id,
            host: &host,
            port,
            rack,
            log_dirs: context.volume_path,
            quorum,
            options: &config.options,
        };
        let server = render::properties_text(
            &format!("broker {id}, rendered by the scheduler"),
            &render::server_properties(&facts),
        );
        let log4j = render::properties_text(
            "broker logging, rendered by the scheduler",
            &render::log4j_properties(config.log_level, &config.log4j_options),
        );
        let artifact = context
            .artifacts
            .get(KAFKA_ARTIFACT)
            .ok_or("the scheduler has no kafka artifact to hand out")?;
        let dist = match &self.settings.distribution_dir {
            Some(dir) => dir.clone(),
            None => distribution_dir(&artifact.url).ok_or_else(|| {
                format!(
                    "cannot tell the distribution's top directory from {}; set it explicitly",
                    artifact.url
                )
            })?,
        };
        let bin = |tool: &str| sh_quote(&format!("{dist}/bin/{tool}"));
        let mut script = String::from(
            "set -e\nexport KAFKA_LOG4J_OPTS=\"-Dlog4j.configuration=file:$PWD/log4j.properties\"\n",
        );
        if let Some(cluster_id) = &config.cluster_id {
            // Formatting is once per volume: meta.properties marks it done,
            // which skips a JVM start on every later launch.
            script.push_str(&format!(
                "[ -f {vol}/meta.properties ] || {tool} format --ignore-formatted -t {cid} -c server.properties\n",
                vol = sh_quote(context.volume_path),
                tool = bin("kafka-storage.sh"),
                cid = sh_quote(cluster_id),
            ));
        }
        script.push_str(&format!(
            "exec {} server.properties\n",
            bin("kafka-server-start.sh")
        ));
        let mut document = TaskDocument::new(Command::Shell(script));
        document.artifacts.push(Artifact {
            url: artifact.url.clone(),
            sha256: artifact.sha256.clone(),
            extract: true,
            destination: ".".into(),
        });
        document.config_files = vec![
            ConfigFile {
                path: "server.properties".into(),
                content: server,
                mode: "0644".into(),
            },
            ConfigFile {
                path: "log4j.properties".into(),
                content: log4j,
                mode: "0644".into(),
            },
        ];
        document.environment.insert(
            "KAFKA_HEAP_OPTS".into(),
            format!("-Xms{h}M -Xmx{h}M", h = config.heap),
        );
        document.environment.insert("LOG_DIR".into(), "logs".into());
        if !config.jvm_options.trim().is_empty() {
            document
                .environment
                .insert("KAFKA_OPTS".into(), config.jvm_options.clone());
        }
        document.readiness = Some(Readiness {
            check: Check::Tcp { host, port },
            interval_ms: 250,
            timeout_ms: 1_000,
            initial_delay_ms: 0,
        });
        // SIGTERM makes the broker shut down in a controlled way (leadership
        // moved away first); the grace period bounds how long that may take.
        document.stop.grace_period_ms =
            u64::try_from(self.settings.stop_grace.as_millis()).unwrap_or(u64::MAX);
        document.health_interval_ms = 10_000;
        Ok(document)
    }

    fn check_safety(&self, node: &str, cluster: &ClusterView) -> BoxFuture<'static, CheckResult> {
        let level = self.settings.safety;
        let timeout = self.settings.check_timeout;
        let inputs = self.check_inputs(node, cluster);
        let admin = self.admin.clone();
        Box::pin(async move {
            if level == SafetyLevel::None {
                return result(true, "safety checks are off (level none)".into());
            }
            let inputs = match inputs {
                Ok(inputs) => inputs,
                Err(e) => return result(false, e),
            };
            let broker = inputs.broker;
            match inputs.state(&admin, timeout).await {
                Ok(state) => {
                    let verdict = safety::safe_to_stop(level, broker, &inputs.expected, &state);
                    debug!(broker, ok = verdict.ok, message = %verdict.message, "safety check");
                    result(verdict.ok, verdict.message)
                }
                Err(e) => result(false, e.to_string()),
            }
        })
    }

    fn check_health(&self, node: &str, cluster: &ClusterView) -> BoxFuture<'static, CheckResult> {
        let level = self.settings.safety;
        let timeout = self.settings.check_timeout;
        let inputs = self.check_inputs(node, cluster);
        let admin = self.admin.clone();
        Box::pin(async move {
            if level == SafetyLevel::None {
                return result(true, "health checks are off (level none)".into());
            }
            let inputs = match inputs {
                Ok(inputs) => inputs,
                Err(e) => return result(false, e),
            };
            let broker = inputs.broker;
            match inputs.state(&admin, timeout).await {
                Ok(state) => {
                    let verdict = safety::healthy_after_restart(level, broker, &state);
                    debug!(broker, ok = verdict.ok, message = %verdict.message, "health check");
                    result(verdict.ok, verdict.message)
                }
                Err(e) => result(false, e.to_string()),
            }
        })
    }

    fn restart_order(
        &self,
        nodes: Vec<String>,
        cluster: &ClusterView,
    ) -> BoxFuture<'static, Vec<String>> {
        let endpoints = broker_endpoints(cluster);
        let kraft = self.settings.mode.kind() == ModeKind::Kraft;
        let timeout = self.settings.check_timeout;
        Box::pin(async move {
            let active = controller::active_controller(&endpoints, kraft, timeout).await;
            match active {
                Ok(id) => controller::controller_last(nodes, &id.to_string()),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot tell the active controller; restarting in the given order");
                    nodes
                }
            }
        })
    }

    fn endpoints(&self, cluster: &ClusterView) -> Value {
        let brokers: serde_json::Map<String, Value> = broker_endpoints(cluster)
            .into_iter()
            .map(|(id, e)| (id, Value::String(e)))
            .collect();
        let cluster_id = cluster
            .nodes
            .values()
            .find_map(|n| BrokerConfig::from_json(n.config.clone()).ok()?.cluster_id);
        let mut out = json!({
            "bootstrap_servers": bootstrap_servers(cluster),
            "brokers": brokers,
            "mode": self.settings.mode.kind(),
        });
        match &self.settings.mode {
            Mode::ZooKeeper { connect } => out["zookeeper_connect"] = json!(connect),
            Mode::Kraft => out["cluster_id"] = json!(cluster_id),
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use scheduler_core::{constraints::Host, node::Placement};
    use scheduler_runtime::{ArtifactRef, NodeView};

    use super::*;

    fn kraft() -> KafkaService {
        KafkaService::new(Settings::new(Mode::Kraft)).expect("settings")
    }

    fn add(service: &KafkaService, cluster: &mut ClusterView, id: &str, config: Value) -> Value {
        let configured = service
            .configure(id, config, cluster)
            .unwrap_or_else(|e| panic!("broker {id}: {e:?}"));
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

    fn place(cluster: &mut ClusterView, id: &str, host: &str, ports: &[(&str, u64)]) {
        let node = cluster.nodes.get_mut(id).expect("node");
        node.placement = Some(Placement {
            agent_id: format!("agent-{host}"),
            host: Host {
                hostname: host.into(),
                attributes: BTreeMap::from([("rack".to_owned(), format!("rack-{id}"))]),
            },
            persistence_id: format!("vol-{id}"),
            ports: ports.iter().map(|(n, p)| (n.to_string(), *p)).collect(),
        });
        node.running = true;
    }

    fn artifacts() -> BTreeMap<String, ArtifactRef> {
        BTreeMap::from([(
            KAFKA_ARTIFACT.to_owned(),
            ArtifactRef {
                url: "http://127.0.0.1:1/artifacts/kafka-3.9.2.tar.gz".into(),
                sha256: "ab".repeat(32),
            },
        )])
    }

    #[test]
    fn kraft_brokers_share_one_cluster_id_and_the_first_three_are_controllers() {
        let service = kraft();
        let mut cluster = ClusterView::default();
        let configs: Vec<Value> = (0..4)
            .map(|i| {
                add(
                    &service,
                    &mut cluster,
                    &i.to_string(),
                    json!({"heap": 256, "mem": 512}),
                )
            })
            .collect();
        let id = configs[0]["cluster_id"]
            .as_str()
            .expect("cluster id")
            .to_owned();
        assert!(configs.iter().all(|c| c["cluster_id"] == json!(id)));
        let roles: Vec<bool> = configs
            .iter()
            .map(|c| c["controller"] == json!(true))
            .collect();
        assert_eq!(roles, [true, true, true, false]);
        assert!(configs.iter().all(|c| c["mode"] == json!("kraft")));
        // Configuring again (an update) keeps everything.
        let again = service
            .configure("0", configs[0].clone(), &cluster)
            .expect("reconfigure");
        assert_eq!(again, configs[0]);
        // A fourth controller is refused.
        let err = service
            .configure("9", json!({"controller": true}), &cluster)
            .expect_err("quorum full");
        assert!(err[0].contains("already has its 3 controllers"), "{err:?}");
    }

    #[test]
    fn the_scheduler_settings_cluster_id_wins() {
        let service = kraft();
        let mut cluster = ClusterView {
            settings: json!({"cluster_id": "MkU3OEVBNTcwNTJENDM2Qg"}),
            ..Default::default()
        };
        let c = add(&service, &mut cluster, "0", json!({}));
        assert_eq!(c["cluster_id"], json!("MkU3OEVBNTcwNTJENDM2Qg"));
    }

    #[test]
    fn mode_mismatches_and_bad_ids_are_refused() {
        let zk = KafkaService::new(Settings::new(Mode::ZooKeeper {
            connect: "127.0.0.1:2181".into(),
        }))
        .expect("settings");
        let err = zk
            .configure("0", json!({"mode": "kraft"}), &ClusterView::default())
            .expect_err("mode");
        assert!(
            err.iter().any(|e| e.contains("created in KRaft mode")),
            "{err:?}"
        );
        let err = zk
            .configure("b1", json!({}), &ClusterView::default())
            .expect_err("id");
        assert!(
            err.iter().any(|e| e.contains("non-negative integer")),
            "{err:?}"
        );
        let c = zk
            .configure("4", json!({}), &ClusterView::default())
            .expect("zk");
        assert_eq!(c["mode"], json!("zookeeper"));
        assert!(c.get("cluster_id").is_none());
        let spec = zk.spec(&c).expect("spec");
        assert_eq!(spec.ports.len(), 1, "no controller port in ZooKeeper mode");
    }

    #[test]
    fn spec_reflects_resources_ports_and_constraints() {
        let service = kraft();
        let mut cluster = ClusterView::default();
        let c = add(
            &service,
            &mut cluster,
            "0",
            json!({"cpus": 0.5, "mem": 768, "heap": 384, "disk": 2000, "port": 9092, "constraints": "hostname=unique"}),
        );
        let spec = service.spec(&c).expect("spec");
        assert_eq!(spec.resources.cpus, Milli::from_f64(0.5));
        assert_eq!(spec.resources.mem, Milli::from_f64(768.0));
        assert_eq!(spec.resources.disk, Milli::from_f64(2000.0));
        assert_eq!(
            spec.ports,
            vec![
                PortSpec {
                    name: "broker".into(),
                    fixed: Some(9092)
                },
                PortSpec {
                    name: "controller".into(),
                    fixed: None
                },
            ]
        );
        assert_eq!(spec.constraints.len(), 1);
    }

    #[test]
    fn the_task_waits_for_every_controller_then_renders_the_quorum() {
        let service = kraft();
        let mut cluster = ClusterView::default();
        for i in 0..3 {
            add(
                &service,
                &mut cluster,
                &i.to_string(),
                json!({"heap": 256, "mem": 512, "rack_attribute": "rack", "jvm_options": "-Dx=1",
                       "options": {"min.insync.replicas": 2}}),
            );
        }
        place(
            &mut cluster,
            "0",
            "localhost",
            &[("broker", 31000), ("controller", 31001)],
        );
        place(
            &mut cluster,
            "1",
            "localhost",
            &[("broker", 31002), ("controller", 31003)],
        );
        let artifacts = artifacts();
        let node = cluster.nodes["0"].clone();
        let placement = node.placement.clone().expect("placed");
        let partial = cluster.clone();
        let context = TaskContext {
            node: &node,
            placement: &placement,
            cluster: &partial,
            artifacts: &artifacts,
            volume_path: "data",
        };
        let err = service.task(&context).expect_err("controller 2 unplaced");
        assert!(err.contains("waiting for controller 2"), "{err}");

        place(
            &mut cluster,
            "2",
            "127.0.0.3",
            &[("broker", 31004), ("controller", 31005)],
        );
        let context = TaskContext {
            cluster: &cluster,
            ..context
        };
        let doc = service.task(&context).expect("task");
        doc.validate().expect("valid document");
        let server = &doc.config_files[0];
        assert_eq!(server.path, "server.properties");
        for line in [
            "node.id=0",
            "process.roles=broker,controller",
            "controller.quorum.voters=0@127.0.0.1:31001,1@127.0.0.1:31003,2@127.0.0.3:31005",
            "listeners=PLAINTEXT://127.0.0.1:31000,CONTROLLER://127.0.0.1:31001",
            "advertised.listeners=PLAINTEXT://127.0.0.1:31000",
            "log.dirs=data",
            "broker.rack=rack-0",
            "min.insync.replicas=2",
        ] {
            assert!(
                server.content.lines().any(|l| l == line),
                "{line} missing:\n{}",
                server.content
            );
        }
        let Command::Shell(script) = &doc.command else {
            panic!("shell command expected");
        };
        let cluster_id = node.config["cluster_id"].as_str().expect("id");
        assert!(script.contains(&format!(
            "[ -f 'data'/meta.properties ] || 'kafka-3.9.2/bin/kafka-storage.sh' format --ignore-formatted -t '{cluster_id}' -c server.properties"
        )), "{script}");
        assert!(
            script.ends_with("exec 'kafka-3.9.2/bin/kafka-server-start.sh' server.properties\n"),
            "{script}"
        );
        assert_eq!(doc.environment["KAFKA_HEAP_OPTS"], "-Xms256M -Xmx256M");
        assert_eq!(doc.environment["KAFKA_OPTS"], "-Dx=1");
        assert_eq!(doc.stop.grace_period_ms, 60_000);
        assert!(matches!(
            doc.readiness.as_ref().map(|r| &r.check),
            Some(Check::Tcp { host, port: 31000 }) if host == "127.0.0.1"
        ));
        let endpoints = service.endpoints(&cluster);
        assert_eq!(
            endpoints["bootstrap_servers"],
            json!("127.0.0.1:31000,127.0.0.1:31002,127.0.0.3:31004")
        );
        assert_eq!(endpoints["cluster_id"], json!(cluster_id));
    }

    #[test]
    fn level_none_needs_no_cluster() {
        let mut settings = Settings::new(Mode::Kraft);
        settings.safety = SafetyLevel::None;
        let service = KafkaService::new(settings).expect("settings");
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let r = rt.block_on(service.check_safety("0", &ClusterView::default()));
        assert!(r.ok, "{}", r.message);
    }
}
