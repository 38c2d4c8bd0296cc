//! A small stateful service for end-to-end tests of the shared scheduler
//! library, behind the `Service` trait: each node runs `test-service` (from
//! the `test-service` package) on its volume and port, with a TCP readiness
//! check; safety means every other node runs, health means the node answers.
//! The `test-scheduler` binary runs it as a real scheduler process, so tests
//! can kill and restart the scheduler itself.

use std::{
    io::{BufRead, BufReader},
    net::{SocketAddr, TcpStream},
    path::Path,
    time::Duration,
};

use executor_protocol::{Artifact, Check, Command as Run, Readiness, TaskDocument};
use futures::future::BoxFuture;
use scheduler_core::{
    constraints::parse_list,
    node::{NodeSpec, PortSpec},
    plan::CheckResult,
    resources::{Milli, Scalars},
};
use scheduler_runtime::{ClusterView, Service, TaskContext};
use serde_json::{Value, json};

/// The artifact name the service's tarball is registered under.
pub const ARTIFACT: &str = "test-service";

/// Asks the test service on `addr` for its node ID and start count.
pub fn ask_service(addr: &str) -> Option<(String, usize)> {
    let addr: SocketAddr = addr.parse().ok()?;
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).ok()?;
    let (node, starts) = line.trim().split_once(' ')?;
    Some((node.to_owned(), starts.parse().ok()?))
}

/// The test service: `test-service <volume> <port>` with a TCP readiness check.
pub struct TestService;

impl Service for TestService {
    fn name(&self) -> &str {
        "testsvc"
    }

    fn noun(&self) -> &str {
        "node"
    }

    fn configure(
        &self,
        _id: &str,
        mut config: Value,
        _cluster: &ClusterView,
    ) -> Result<Value, Vec<String>> {
        let defaults =
            json!({"cpus": 0.1, "mem": 32, "disk": 16, "fail": false, "constraints": ""});
        let Some(object) = config.as_object_mut() else {
            return Err(vec!["configuration must be a JSON object".into()]);
        };
        for (key, value) in defaults.as_object().into_iter().flatten() {
            object.entry(key.clone()).or_insert(value.clone());
        }
        let mut problems = Vec::new();
        for key in ["cpus", "mem", "disk"] {
            if !object[key].as_f64().is_some_and(|v| v > 0.0) {
                problems.push(format!("{key} must be a positive number"));
            }
        }
        if let Err(errors) = parse_list(object["constraints"].as_str().unwrap_or_default()) {
            problems.extend(errors.into_iter().map(|e| e.to_string()));
        }
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(problems)
        }
    }

    fn spec(&self, config: &Value) -> Result<NodeSpec, String> {
        let number = |key: &str| Milli::from_f64(config[key].as_f64().unwrap_or(0.0));
        Ok(NodeSpec {
            resources: Scalars {
                cpus: number("cpus"),
                mem: number("mem"),
                disk: number("disk"),
            },
            ports: vec![PortSpec {
                name: "client".into(),
                fixed: None,
            }],
            constraints: parse_list(config["constraints"].as_str().unwrap_or_default())
                .map_err(|e| format!("{e:?}"))?,
        })
    }

    fn task(&self, context: &TaskContext<'_>) -> Result<TaskDocument, String> {
        let port = context
            .placement
            .ports
            .get("client")
            .copied()
            .ok_or("no client port")?;
        let artifact = context
            .artifacts
            .get(ARTIFACT)
            .ok_or("no test-service artifact")?;
        let host = service_host(&context.placement.host.hostname).to_owned();
        let mut args = vec![context.volume_path.to_owned(), format!("{host}:{port}")];
        if context.node.config["fail"].as_bool() == Some(true) {
            args.push("--fail".into());
        }
        let mut document = TaskDocument::new(Run::Exec {
            program: "bin/test-service".into(),
            args,
        });
        document.artifacts.push(Artifact {
            url: artifact.url.clone(),
            sha256: artifact.sha256.clone(),
            extract: true,
            destination: "bin".into(),
        });
        document
            .environment
            .insert("NODE_ID".into(), context.node.id.clone());
        document.readiness = Some(Readiness {
            check: Check::Tcp {
                host,
                port: u16::try_from(port).map_err(|e| e.to_string())?,
            },
            interval_ms: 100,
            timeout_ms: 1_000,
            initial_delay_ms: 0,
        });
        document.stop.grace_period_ms = 2_000;
        document.health_interval_ms = 500;
        Ok(document)
    }

    fn check_safety(&self, node: &str, cluster: &ClusterView) -> BoxFuture<'static, CheckResult> {
        let down: Vec<String> = cluster
            .nodes
            .values()
            .filter(|n| n.id != node && !n.running)
            .map(|n| n.id.clone())
            .collect();
        Box::pin(async move {
            CheckResult {
                ok: down.is_empty(),
                message: if down.is_empty() {
                    "every other node runs".into()
                } else {
                    format!("nodes {down:?} are down")
                },
                at: now_ms(),
            }
        })
    }

    fn check_health(&self, node: &str, cluster: &ClusterView) -> BoxFuture<'static, CheckResult> {
        let endpoint = cluster.nodes.get(node).and_then(|n| n.endpoint("client"));
        let node = node.to_owned();
        Box::pin(async move {
            let answer = match &endpoint {
                Some(addr) => {
                    let addr = addr.replace("localhost:", "127.0.0.1:");
                    tokio::task::spawn_blocking(move || ask_service(&addr))
                        .await
                        .ok()
                        .flatten()
                }
                None => None,
            };
            CheckResult {
                ok: answer.as_ref().is_some_and(|(n, _)| *n == node),
                message: format!("{endpoint:?} answered {answer:?}"),
                at: now_ms(),
            }
        })
    }

    fn endpoints(&self, cluster: &ClusterView) -> Value {
        json!(
            cluster
                .nodes
                .values()
                .filter_map(|n| n.endpoint("client"))
                .collect::<Vec<_>>()
        )
    }
}

/// The address a node binds: its agent's address (the rig's agents are all `localhost`).
pub fn service_host(hostname: &str) -> &str {
    if hostname == "localhost" {
        "127.0.0.1"
    } else {
        hostname
    }
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Writes a `.tar.gz` holding the `test-service` binary at its top level.
pub fn tarball(service_binary: &Path, destination: &Path) -> std::io::Result<()> {
    let file = std::fs::File::create(destination)?;
    let gz = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    tar.append_path_with_name(service_binary, "test-service")?;
    tar.into_inner()?.finish()?;
    Ok(())
}
