//! [`ZooKeeperService`]: the ZooKeeper side of the shared scheduler.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

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
use tracing::{debug, info};

use crate::{
    admin::{self, Admin},
    config::{ServerConfig, Settings, change_problems, server_id},
    ensemble::{self, Join},
    error::Error,
    render::{self, DYNAMIC_FILE, Member, ServerFacts},
};

/// Name of the client port in a server's placement.
pub const CLIENT_PORT: &str = "client";
/// Name of the quorum (follower-to-leader) port.
pub const PEER_PORT: &str = "peer";
/// Name of the leader-election port.
pub const ELECTION_PORT: &str = "election";
/// Name of the ZooKeeper tarball among the scheduler's artifacts.
pub const ZOOKEEPER_ARTIFACT: &str = "zookeeper";
/// The key of the generated super-user password in the framework settings.
pub const SUPER_PASSWORD_KEY: &str = "super_password";

/// Where on the volume the snapshots live.
const DATA_SUBDIR: &str = "zookeeper";
/// Where on the volume the transaction log lives.
const LOG_SUBDIR: &str = "txlog";

/// ZooKeeper servers as a service of the shared scheduler.
#[derive(Clone, Debug)]
pub struct ZooKeeperService {
    settings: Settings,
    addresses: Arc<Mutex<Addresses>>,
}

/// What the scheduler knows of servers' addresses in the committed
/// configuration, by myid, as `server.N` specs: a server launches into a
/// running ensemble only once the configuration holds it where it is placed
/// (or does not hold it at all).
#[derive(Debug, Default)]
struct Addresses {
    /// Placements found safe to launch at.
    cleared: BTreeMap<u8, String>,
    /// Placements being checked (and the configuration moved) now.
    checking: BTreeMap<u8, String>,
    /// Why the last check of a server failed.
    failed: BTreeMap<u8, String>,
}

impl Addresses {
    fn clear(&mut self, member: &Member) {
        self.cleared.insert(member.id, member.spec());
        self.failed.remove(&member.id);
    }
}

/// The address a server binds and is reached at on its agent. Agents called
/// `localhost` get IPv4 loopback, so that peers and clients agree.
pub fn listen_host(hostname: &str) -> &str {
    if hostname == "localhost" {
        "127.0.0.1"
    } else {
        hostname
    }
}

/// A placed node as an ensemble member, if it has its ports.
pub fn member_of(node: &NodeView) -> Option<Member> {
    let placement = node.placement.as_ref()?;
    let port = |name: &str| u16::try_from(*placement.ports.get(name)?).ok();
    Some(Member {
        id: server_id(&node.id).ok()?,
        host: listen_host(&placement.host.hostname).to_owned(),
        client: port(CLIENT_PORT)?,
        peer: port(PEER_PORT)?,
        election: port(ELECTION_PORT)?,
    })
}

/// Every placed server, by myid.
pub fn members(cluster: &ClusterView) -> Vec<Member> {
    let mut members: Vec<Member> = cluster.nodes.values().filter_map(member_of).collect();
    members.sort_by_key(|m| m.id);
    members
}

/// The connect string: every placed server's client address.
pub fn connect_string(members: &[Member]) -> String {
    members
        .iter()
        .map(Member::client_endpoint)
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

fn endpoints_of(members: &[Member]) -> Vec<(u8, String)> {
    members
        .iter()
        .map(|m| (m.id, m.client_endpoint()))
        .collect()
}

impl ZooKeeperService {
    /// A service with validated framework settings.
    pub fn new(settings: Settings) -> Result<Self, Error> {
        settings.validate()?;
        Ok(ZooKeeperService {
            settings,
            addresses: Arc::default(),
        })
    }

    /// The framework settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The super user's password: the flag, or the one generated on first start.
    fn super_password(&self, cluster: &ClusterView) -> Option<String> {
        self.settings.super_password.clone().or_else(|| {
            cluster
                .settings
                .get(SUPER_PASSWORD_KEY)
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
    }

    /// The servers that serve, asked in parallel.
    fn serving(
        &self,
        members: &[Member],
    ) -> impl std::future::Future<Output = BTreeMap<u8, ensemble::Mode>> + use<> {
        let endpoints = endpoints_of(members);
        let timeout = self.settings.check_timeout.min(Duration::from_secs(3));
        async move { admin::modes(&endpoints, timeout).await }
    }

    /// Whether `me` may launch into the running ensemble now. The answer
    /// needs the committed configuration, so the first call starts a check
    /// in the background and holds the launch; a later offer finds its result.
    fn address_cleared(&self, me: &Member, cluster: &ClusterView) -> Result<(), String> {
        let spec = me.spec();
        let mut addresses = self
            .addresses
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if addresses.cleared.get(&me.id) == Some(&spec) {
            return Ok(());
        }
        let waiting = format!(
            "checking that the ensemble's configuration has server {} at {} before it starts",
            me.id,
            me.client_endpoint()
        );
        if addresses.checking.get(&me.id) == Some(&spec) {
            return Err(addresses.failed.get(&me.id).cloned().unwrap_or(waiting));
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return Err("no async runtime to reach the ensemble from".into());
        };
        let password = self
            .super_password(cluster)
            .ok_or("no super-user password to reconfigure with")?;
        let others: Vec<Member> = members(cluster)
            .into_iter()
            .filter(|m| m.id != me.id)
            .collect();
        addresses.checking.insert(me.id, spec.clone());
        let previous = addresses.failed.get(&me.id).cloned();
        drop(addresses);
        let shared = Arc::clone(&self.addresses);
        let serving = self.serving(&others);
        let timeout = self.settings.check_timeout;
        let me = me.clone();
        runtime.spawn(async move {
            let outcome = move_before_start(&me, &others, serving.await, &password, timeout).await;
            let mut addresses = shared.lock().unwrap_or_else(PoisonError::into_inner);
            if addresses.checking.get(&me.id) == Some(&spec) {
                addresses.checking.remove(&me.id);
            }
            match outcome {
                Ok(message) => {
                    info!(server = me.id, message = %message, "cleared to start");
                    addresses.clear(&me);
                }
                Err(message) => {
                    tracing::warn!(server = me.id, message = %message, "not cleared to start");
                    addresses.failed.insert(me.id, message);
                }
            }
        });
        Err(previous.map_or(waiting, |p| format!("{p} (checking again)")))
    }
}

/// Before a server starts in a running ensemble: when the committed
/// configuration holds it at another address (it was replaced onto another
/// agent), moves it there by reconfiguration, which needs the other servers
/// to form a quorum. A server that starts with its old address in the
/// configuration would adopt it from the leader and try to bind it.
async fn move_before_start(
    me: &Member,
    others: &[Member],
    serving: BTreeMap<u8, ensemble::Mode>,
    password: &str,
    timeout: Duration,
) -> Result<String, String> {
    let up: Vec<Member> = others
        .iter()
        .filter(|m| serving.contains_key(&m.id))
        .cloned()
        .collect();
    if up.is_empty() {
        return Err(format!(
            "no other server leads or follows now (an election may be under way), so server {} cannot be checked against the ensemble's configuration; if this lasts, start the stopped servers",
            me.id
        ));
    }
    let admin = Admin::connect(&connect_string(&up), password, timeout)
        .await
        .map_err(|e| e.to_string())?;
    let committed = admin.committed().await.map_err(|e| e.to_string())?;
    let Some(line) = ensemble::readdress(&committed, me) else {
        return Ok(format!(
            "the ensemble's configuration has server {} as placed, or not yet",
            me.id
        ));
    };
    let voters: Vec<u8> = committed.keys().copied().collect();
    let verdict = ensemble::may_readdress(&voters, &serving, me.id);
    if !verdict.ok {
        return Err(verdict.message);
    }
    info!(server = me.id, line = %line, "moving the server to its new address");
    let now = admin
        .reconfigure(std::slice::from_ref(&line), &[])
        .await
        .map_err(|e| format!("moving server {} to its new address failed: {e}", me.id))?;
    match ensemble::readdress(&now, me) {
        None => Ok(format!(
            "the ensemble's configuration now has server {} at {}",
            me.id,
            me.client_endpoint()
        )),
        Some(_) => Err(format!(
            "the reconfiguration did not move server {} to its new address",
            me.id
        )),
    }
}

/// Brings `member` into the committed configuration, if it is not there as
/// placed; returns what was done.
async fn join_ensemble(
    member: &Member,
    serving: &[Member],
    password: &str,
    timeout: Duration,
) -> Result<String, String> {
    let connect = connect_string(serving);
    let admin = Admin::connect(&connect, password, timeout)
        .await
        .map_err(|e| e.to_string())?;
    let committed = admin.committed().await.map_err(|e| e.to_string())?;
    match ensemble::join(&committed, member) {
        Join::Member => Ok(format!("server {} is a voting member", member.id)),
        Join::Add(line) => {
            info!(server = member.id, line = %line, "adding the server to the ensemble");
            let now = admin
                .reconfigure(std::slice::from_ref(&line), &[])
                .await
                .map_err(|e| e.to_string())?;
            match ensemble::join(&now, member) {
                Join::Member => Ok(format!(
                    "server {} joined the ensemble by reconfiguration",
                    member.id
                )),
                Join::Add(_) => Err(format!(
                    "the reconfiguration did not take server {} in",
                    member.id
                )),
            }
        }
    }
}

impl Service for ZooKeeperService {
    fn name(&self) -> &str {
        "zookeeper"
    }

    fn noun(&self) -> &str {
        "server"
    }

    fn configure(
        &self,
        id: &str,
        config: Value,
        _cluster: &ClusterView,
    ) -> Result<Value, Vec<String>> {
        let config = ServerConfig::from_json(config).map_err(|e| vec![e])?;
        let problems = config.problems(id);
        if problems.is_empty() {
            Ok(config.to_json())
        } else {
            Err(problems)
        }
    }

    fn spec(&self, config: &Value) -> Result<NodeSpec, String> {
        let config = ServerConfig::from_json(config.clone())?;
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
                port(CLIENT_PORT, config.client_port),
                port(PEER_PORT, config.peer_port),
                port(ELECTION_PORT, config.election_port),
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
            ServerConfig::from_json(old.clone()),
            ServerConfig::from_json(new.clone()),
        ) {
            (Ok(old), Ok(new)) => change_problems(&old, &new),
            (_, Err(e)) | (Err(e), _) => vec![e],
        }
    }

    fn ready_to_launch(&self, node: &NodeView, cluster: &ClusterView) -> Result<(), String> {
        bootstrap_wait(node, cluster)?;
        let ensemble_runs = cluster.nodes.values().any(|n| n.running && n.id != node.id);
        match member_of(node) {
            Some(me) if self.settings.dynamic_reconfig && ensemble_runs => {
                self.address_cleared(&me, cluster)
            }
            // A new ensemble starts from the rendered list; without dynamic
            // reconfiguration the list is in every zoo.cfg.
            _ => Ok(()),
        }
    }

    fn task(&self, context: &TaskContext<'_>) -> Result<TaskDocument, String> {
        let config = ServerConfig::from_json(context.node.config.clone())?;
        let me = member_of(context.node).ok_or_else(|| {
            format!(
                "server {} lacks a placement with client, peer and election ports",
                context.node.id
            )
        })?;
        let members = members(context.cluster);
        let password = self
            .super_password(context.cluster)
            .ok_or("no super-user password is set (the scheduler sets one on first start)")?;
        let volume = context.volume_path.trim_end_matches('/');
        let data_dir = format!("{volume}/{DATA_SUBDIR}");
        let data_log_dir = format!("{volume}/{LOG_SUBDIR}");
        let zoo_cfg = render::zoo_cfg(&ServerFacts {
            data_dir: &data_dir,
            data_log_dir: &data_log_dir,
            members: &members,
            dynamic: self.settings.dynamic_reconfig,
            options: &config.options,
        });
        let artifact = context
            .artifacts
            .get(ZOOKEEPER_ARTIFACT)
            .ok_or("the scheduler has no zookeeper artifact to hand out")?;
        let dist = match &self.settings.distribution_dir {
            Some(dir) => dir.clone(),
            None => distribution_dir(&artifact.url).ok_or_else(|| {
                format!(
                    "cannot tell the distribution's top directory from {}; set it explicitly",
                    artifact.url
                )
            })?,
        };
        // myid lives with the data, as ZooKeeper expects; it is rewritten on
        // each start so that a fresh (replaced) volume gets it too.
        let script = format!(
            "set -e\n\
             mkdir -p {data} {log}\n\
             printf '%s\\n' {id} > {data}/myid\n\
             exec \"${{JAVA_HOME:+$JAVA_HOME/bin/}}java\" $ZK_HEAP $ZK_JVM_FLAGS \
             \"-Dzookeeper.DigestAuthenticationProvider.superDigest=$ZK_SUPER_DIGEST\" \
             \"-Dlogback.configurationFile=$PWD/logback.xml\" -Dzookeeper.log.dir=logs \
             -cp {lib} org.apache.zookeeper.server.quorum.QuorumPeerMain zoo.cfg\n",
            data = render::sh_quote(&data_dir),
            log = render::sh_quote(&data_log_dir),
            id = me.id,
            lib = render::sh_quote(&format!("{dist}/lib/*")),
        );
        let mut document = TaskDocument::new(Command::Shell(script));
        document.artifacts.push(Artifact {
            url: artifact.url.clone(),
            sha256: artifact.sha256.clone(),
            extract: true,
            destination: ".".into(),
        });
        let file = |path: &str, content: String| ConfigFile {
            path: path.into(),
            content,
            mode: "0644".into(),
        };
        document.config_files = vec![
            file("zoo.cfg", zoo_cfg),
            file("logback.xml", render::logback_xml().to_owned()),
        ];
        if self.settings.dynamic_reconfig {
            document
                .config_files
                .push(file(DYNAMIC_FILE, render::dynamic_config(&members)));
        }
        document.environment.insert(
            "ZK_HEAP".into(),
            format!("-Xms{h}m -Xmx{h}m", h = config.heap),
        );
        document
            .environment
            .insert("ZK_JVM_FLAGS".into(), config.jvm_options.clone());
        document
            .environment
            .insert("ZK_SUPER_DIGEST".into(), render::super_digest(&password));
        document.readiness = Some(Readiness {
            check: Check::Command(Command::Exec {
                program: "bash".into(),
                args: vec!["-c".into(), render::readiness_script(&me.host, me.client)],
            }),
            interval_ms: 500,
            timeout_ms: 3_000,
            initial_delay_ms: 0,
        });
        document.stop.grace_period_ms =
            u64::try_from(self.settings.stop_grace.as_millis()).unwrap_or(u64::MAX);
        document.health_interval_ms = 10_000;
        Ok(document)
    }

    fn check_safety(&self, node: &str, cluster: &ClusterView) -> BoxFuture<'static, CheckResult> {
        let members = members(cluster);
        let serving = self.serving(&members);
        let id = server_id(node);
        Box::pin(async move {
            let id = match id {
                Ok(id) => id,
                Err(e) => return result(false, e),
            };
            let ids: Vec<u8> = members.iter().map(|m| m.id).collect();
            if !ids.contains(&id) {
                return result(
                    true,
                    format!("server {id} is not placed: nothing to take down"),
                );
            }
            let serving = serving.await;
            let verdict = ensemble::may_take_down(&ids, &serving, &[id]);
            debug!(server = id, ok = verdict.ok, message = %verdict.message, "safety check");
            result(verdict.ok, verdict.message)
        })
    }

    fn check_health(&self, node: &str, cluster: &ClusterView) -> BoxFuture<'static, CheckResult> {
        let members = members(cluster);
        let serving = self.serving(&members);
        let id = server_id(node);
        let dynamic = self.settings.dynamic_reconfig;
        let password = self.super_password(cluster);
        let timeout = self.settings.check_timeout;
        let addresses = Arc::clone(&self.addresses);
        Box::pin(async move {
            let id = match id {
                Ok(id) => id,
                Err(e) => return result(false, e),
            };
            let Some(me) = members.iter().find(|m| m.id == id).cloned() else {
                return result(false, format!("server {id} is not placed"));
            };
            let serving = serving.await;
            let mode = serving.get(&id).copied();
            if !mode.is_some_and(ensemble::Mode::serves) {
                return result(
                    false,
                    format!("server {id} does not lead or follow yet ({mode:?})"),
                );
            }
            if !dynamic {
                return result(true, format!("server {id} serves as {mode:?}"));
            }
            let Some(password) = password else {
                return result(false, "no super-user password to reconfigure with".into());
            };
            let up: Vec<Member> = members
                .iter()
                .filter(|m| serving.contains_key(&m.id))
                .cloned()
                .collect();
            match join_ensemble(&me, &up, &password, timeout).await {
                Ok(message) => {
                    addresses
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .clear(&me);
                    result(true, message)
                }
                Err(message) => result(false, message),
            }
        })
    }

    fn restart_order(
        &self,
        nodes: Vec<String>,
        cluster: &ClusterView,
    ) -> BoxFuture<'static, Vec<String>> {
        let serving = self.serving(&members(cluster));
        Box::pin(async move {
            let modes = serving.await;
            let leader = modes
                .iter()
                .find(|(_, mode)| **mode == ensemble::Mode::Leader)
                .map(|(id, _)| id.to_string());
            if leader.is_none() {
                tracing::warn!("no server says it leads; restarting in the given order");
            }
            ensemble::leader_last(nodes, leader.as_deref())
        })
    }

    fn prepare_remove(
        &self,
        nodes: Vec<String>,
        cluster: &ClusterView,
    ) -> BoxFuture<'static, Result<(), Vec<String>>> {
        let members = members(cluster);
        let serving = self.serving(&members);
        let dynamic = self.settings.dynamic_reconfig;
        let password = self.super_password(cluster);
        let timeout = self.settings.check_timeout;
        Box::pin(async move {
            let leaving: Vec<u8> = nodes.iter().filter_map(|n| server_id(n).ok()).collect();
            let ids: Vec<u8> = members.iter().map(|m| m.id).collect();
            let leaving: Vec<u8> = leaving.into_iter().filter(|l| ids.contains(l)).collect();
            if leaving.is_empty() {
                return Ok(());
            }
            let serving = serving.await;
            let verdict = if dynamic {
                ensemble::may_reconfigure_out(&ids, &serving, &leaving)
            } else {
                ensemble::may_take_down(&ids, &serving, &leaving)
            };
            if !verdict.ok {
                return Err(vec![format!(
                    "not removed: {}; start or replace the stopped servers first",
                    verdict.message
                )]);
            }
            if !dynamic {
                return Ok(());
            }
            let password = password
                .ok_or_else(|| vec!["no super-user password to reconfigure with".to_owned()])?;
            let up: Vec<Member> = members
                .iter()
                .filter(|m| serving.contains_key(&m.id))
                .cloned()
                .collect();
            let fail = |e: Error| {
                vec![format!(
                    "the servers could not be taken out of the ensemble: {e}"
                )]
            };
            let admin = Admin::connect(&connect_string(&up), &password, timeout)
                .await
                .map_err(fail)?;
            let committed = admin.committed().await.map_err(fail)?;
            let out: Vec<u8> = leaving
                .into_iter()
                .filter(|l| committed.contains_key(l))
                .collect();
            if !out.is_empty() {
                info!(servers = ?out, "taking servers out of the ensemble");
                let now = admin.reconfigure(&[], &out).await.map_err(fail)?;
                if out.iter().any(|l| now.contains_key(l)) {
                    return Err(vec![
                        "the reconfiguration kept the servers in the ensemble; try again".into(),
                    ]);
                }
            }
            Ok(())
        })
    }

    fn endpoints(&self, cluster: &ClusterView) -> Value {
        let members = members(cluster);
        let servers: serde_json::Map<String, Value> = members
            .iter()
            .map(|m| (m.id.to_string(), Value::String(m.client_endpoint())))
            .collect();
        json!({
            "connect": connect_string(&members),
            "servers": servers,
            "dynamic_reconfig": self.settings.dynamic_reconfig,
        })
    }
}

/// A server of a new ensemble waits until every server is placed, so that
/// all start with the same list; once any server runs, the ensemble exists
/// and a server starts with the servers placed so far.
pub fn bootstrap_wait(node: &NodeView, cluster: &ClusterView) -> Result<(), String> {
    let ensemble_runs = cluster.nodes.values().any(|n| n.running && n.id != node.id);
    if ensemble_runs {
        return Ok(());
    }
    let unplaced: Vec<&str> = cluster
        .nodes
        .values()
        .filter(|n| n.id != node.id && member_of(n).is_none())
        .map(|n| n.id.as_str())
        .collect();
    if unplaced.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "waiting for servers {} to be placed: a new ensemble starts with every server listed",
            unplaced.join(",")
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use scheduler_core::{constraints::Host, node::Placement};
    use scheduler_runtime::ArtifactRef;

    use super::*;

    fn service() -> ZooKeeperService {
        ZooKeeperService::new(Settings::default()).expect("settings")
    }

    fn add(cluster: &mut ClusterView, id: &str, config: Value) {
        let configured = service()
            .configure(id, config, cluster)
            .unwrap_or_else(|e| panic!("server {id}: {e:?}"));
        cluster.nodes.insert(
            id.into(),
            NodeView {
                id: id.into(),
                config: configured,
                placement: None,
                running: false,
                moved_from: None,
            },
        );
    }

    fn place(cluster: &mut ClusterView, id: &str, host: &str, base: u64) {
        let node = cluster.nodes.get_mut(id).expect("node");
        node.placement = Some(Placement {
            agent_id: format!("agent-{host}"),
            host: Host {
                hostname: host.into(),
                attributes: BTreeMap::new(),
            },
            persistence_id: format!("vol-{id}"),
            ports: BTreeMap::from([
                (CLIENT_PORT.to_owned(), base),
                (PEER_PORT.to_owned(), base + 1),
                (ELECTION_PORT.to_owned(), base + 2),
            ]),
        });
    }

    #[test]
    fn spec_has_three_ports_from_offers_or_fixed() {
        let config = service()
            .configure(
                "0",
                json!({"client_port": 2181, "disk": 2000}),
                &ClusterView::default(),
            )
            .expect("config");
        let spec = service().spec(&config).expect("spec");
        assert_eq!(
            spec.ports,
            vec![
                PortSpec {
                    name: "client".into(),
                    fixed: Some(2181)
                },
                PortSpec {
                    name: "peer".into(),
                    fixed: None
                },
                PortSpec {
                    name: "election".into(),
                    fixed: None
                },
            ]
        );
        assert_eq!(spec.resources.disk, Milli::from_f64(2000.0));
    }

    #[test]
    fn a_new_ensemble_waits_for_every_server_then_lists_them_all() {
        let mut cluster = ClusterView {
            settings: json!({"super_password": "secretsecret"}),
            ..Default::default()
        };
        for id in ["0", "1", "2"] {
            add(
                &mut cluster,
                id,
                json!({"heap": 128, "options": {"tickTime": 500}}),
            );
        }
        place(&mut cluster, "0", "127.0.1.2", 31000);
        place(&mut cluster, "1", "127.0.1.3", 31000);
        let err = service()
            .ready_to_launch(&cluster.nodes["0"], &cluster)
            .expect_err("2 unplaced");
        assert!(err.contains("waiting for servers 2"), "{err}");
        place(&mut cluster, "2", "127.0.1.4", 31010);
        assert!(
            service()
                .ready_to_launch(&cluster.nodes["0"], &cluster)
                .is_ok()
        );

        let artifacts = BTreeMap::from([(
            ZOOKEEPER_ARTIFACT.to_owned(),
            ArtifactRef {
                url: "http://127.0.0.1:1/artifacts/zookeeper-3.9.5.tar.gz".into(),
                sha256: "ab".repeat(32),
            },
        )]);
        let node = cluster.nodes["2"].clone();
        let placement = node.placement.clone().expect("placed");
        let doc = service()
            .task(&TaskContext {
                node: &node,
                placement: &placement,
                cluster: &cluster,
                artifacts: &artifacts,
                volume_path: "data",
            })
            .expect("task");
        doc.validate().expect("valid document");
        let files: BTreeMap<&str, &str> = doc
            .config_files
            .iter()
            .map(|f| (f.path.as_str(), f.content.as_str()))
            .collect();
        assert_eq!(
            files[DYNAMIC_FILE],
            "server.0=127.0.1.2:31001:31002:participant;127.0.1.2:31000\n\
             server.1=127.0.1.3:31001:31002:participant;127.0.1.3:31000\n\
             server.2=127.0.1.4:31011:31012:participant;127.0.1.4:31010\n"
        );
        assert!(files["zoo.cfg"].contains("dataDir=data/zookeeper\n"));
        assert!(files["zoo.cfg"].contains("tickTime=500\n"));
        let Command::Shell(script) = &doc.command else {
            panic!("shell command expected");
        };
        assert!(
            script.contains("printf '%s\\n' 2 > 'data/zookeeper'/myid"),
            "{script}"
        );
        assert!(script.contains("-cp 'zookeeper-3.9.5/lib/*'"), "{script}");
        assert_eq!(doc.environment["ZK_HEAP"], "-Xms128m -Xmx128m");
        assert_eq!(
            doc.environment["ZK_SUPER_DIGEST"],
            render::super_digest("secretsecret")
        );
        let endpoints = service().endpoints(&cluster);
        assert_eq!(
            endpoints["connect"],
            json!("127.0.1.2:31000,127.0.1.3:31000,127.0.1.4:31010")
        );
    }

    #[test]
    fn a_running_ensemble_does_not_wait_for_unplaced_servers() {
        let mut cluster = ClusterView::default();
        for id in ["0", "1", "2", "3"] {
            add(&mut cluster, id, json!({}));
        }
        for id in ["0", "1", "2"] {
            place(
                &mut cluster,
                id,
                "127.0.1.2",
                31000 + 10 * id.parse::<u64>().expect("id"),
            );
        }
        cluster.nodes.get_mut("1").expect("1").running = true;
        assert!(bootstrap_wait(&cluster.nodes["0"], &cluster).is_ok());
    }

    #[test]
    fn a_server_joining_a_running_ensemble_launches_once_its_address_is_cleared() {
        let service = service();
        let mut cluster = ClusterView {
            settings: json!({"super_password": "secretsecret"}),
            ..Default::default()
        };
        for id in ["0", "1", "2"] {
            add(&mut cluster, id, json!({}));
        }
        place(&mut cluster, "0", "127.0.1.2", 31000);
        place(&mut cluster, "1", "127.0.1.3", 31000);
        place(&mut cluster, "2", "127.0.1.4", 31000);
        cluster.nodes.get_mut("1").expect("1").running = true;
        let me = member_of(&cluster.nodes["0"]).expect("placed");
        service.addresses.lock().expect("addresses").clear(&me);
        assert!(
            service
                .ready_to_launch(&cluster.nodes["0"], &cluster)
                .is_ok()
        );
        // Replaced onto another agent: the old clearance does not hold.
        place(&mut cluster, "0", "127.0.1.5", 31003);
        let err = service
            .ready_to_launch(&cluster.nodes["0"], &cluster)
            .expect_err("the new address is not cleared");
        assert!(err.contains("runtime"), "{err}");
        // Without dynamic reconfiguration the server list is in zoo.cfg.
        let static_service = ZooKeeperService::new(Settings {
            dynamic_reconfig: false,
            ..Settings::default()
        })
        .expect("settings");
        assert!(
            static_service
                .ready_to_launch(&cluster.nodes["0"], &cluster)
                .is_ok()
        );
    }

    #[test]
    fn bad_ids_and_managed_options_are_refused() {
        let err = service()
            .configure(
                "zk-1",
                json!({"options": {"dataDir": "/tmp"}}),
                &ClusterView::default(),
            )
            .expect_err("bad");
        assert_eq!(err.len(), 2, "{err:?}");
    }
}
