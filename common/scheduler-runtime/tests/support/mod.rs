//! Shared pieces of the runtime's end-to-end tests: a small stateful test
//! service behind the `Service` trait, an artifact server for the executor and
//! the service tarball, and an in-memory state sink.

#![allow(dead_code)]

use std::{
    collections::BTreeMap,
    io::{BufRead, BufReader},
    net::{SocketAddr, TcpStream},
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::Duration,
};

use anyhow::bail;
use executor_protocol::{Artifact, Check, Command as Run, Readiness, TaskDocument};
use futures::future::BoxFuture;
use scheduler_core::{
    constraints::parse_list,
    node::{NodeSpec, PortSpec},
    plan::CheckResult,
    resources::{Milli, Scalars},
};
use scheduler_core::{node::Stage, plan::PlanState};
use scheduler_runtime::{
    ArtifactRef, ClusterView, RuntimeHandle, SchedulerState, Service, Snapshot, StateSink,
    TaskContext,
};
use serde_json::{Value, json};

/// Keeps the last saved state in memory, and counts saves.
#[derive(Default)]
pub struct MemorySink {
    pub saved: Mutex<Option<SchedulerState>>,
}

impl StateSink for MemorySink {
    fn save<'a>(&'a self, state: &'a SchedulerState) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            *self.saved.lock().map_err(|e| e.to_string())? = Some(state.clone());
            Ok(())
        })
    }
}

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
            .get("test-service")
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

/// Files served to agents over HTTP on 127.0.0.1.
pub struct ArtifactServer {
    pub base: String,
    _dir: tempfile::TempDir,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for ArtifactServer {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn sha256_hex(path: &Path) -> anyhow::Result<String> {
    use sha2::Digest as _;
    let bytes = std::fs::read(path)?;
    Ok(hex::encode(sha2::Sha256::digest(&bytes)))
}

/// Artifact references by name.
pub type Artifacts = BTreeMap<String, ArtifactRef>;

/// Serves the executor binary and a tarball of the test service.
pub async fn artifact_server() -> anyhow::Result<(ArtifactServer, String, Artifacts)> {
    let executor = test_support::binaries::binary("service-executor", "service-executor")?;
    let service = test_support::binaries::binary("test-service", "test-service")?;
    let dir = tempfile::tempdir()?;
    std::fs::copy(&executor, dir.path().join("service-executor"))?;
    let tarball = dir.path().join("test-service.tar.gz");
    {
        let file = std::fs::File::create(&tarball)?;
        let gz = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
        let mut tar = tar::Builder::new(gz);
        tar.append_path_with_name(&service, "test-service")?;
        tar.into_inner()?.finish()?;
    }
    let sha = sha256_hex(&tarball)?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let root: PathBuf = dir.path().to_path_buf();
    let app = axum::Router::new().route(
        "/artifacts/{name}",
        axum::routing::get(
            move |axum::extract::Path(name): axum::extract::Path<String>| {
                let root = root.clone();
                async move {
                    if name.contains('/') || name.contains("..") {
                        return Err(axum::http::StatusCode::NOT_FOUND);
                    }
                    tokio::fs::read(root.join(name))
                        .await
                        .map_err(|_| axum::http::StatusCode::NOT_FOUND)
                }
            },
        ),
    );
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let artifacts = BTreeMap::from([(
        "test-service".to_owned(),
        ArtifactRef {
            url: format!("{base}/artifacts/test-service.tar.gz"),
            sha256: sha,
        },
    )]);
    let executor_url = format!("{base}/artifacts/service-executor");
    Ok((
        ArtifactServer {
            base,
            _dir: dir,
            server,
        },
        executor_url,
        artifacts,
    ))
}

pub const DEADLINE: Duration = Duration::from_secs(90);

/// Waits until `done` holds for a snapshot; fails with the last snapshot's story.
pub async fn until(
    handle: &RuntimeHandle,
    what: &str,
    done: impl Fn(&Snapshot) -> bool,
) -> anyhow::Result<Arc<Snapshot>> {
    let mut watch = handle.watch();
    let result = tokio::time::timeout(DEADLINE, async {
        loop {
            let snapshot = watch.borrow_and_update().clone();
            if done(&snapshot) {
                return Ok(snapshot);
            }
            if let Some(fatal) = &snapshot.fatal {
                bail!("runtime stopped: {fatal}");
            }
            if watch.changed().await.is_err() {
                bail!("runtime ended");
            }
        }
    })
    .await;
    match result {
        Ok(result) => result,
        Err(_) => {
            let snapshot = handle.snapshot();
            let nodes: Vec<String> = snapshot
                .state
                .nodes
                .values()
                .map(|n| {
                    format!(
                        "{}: {:?} {:?} {:?}",
                        n.id, n.task, n.waiting_reason, n.failures
                    )
                })
                .collect();
            bail!(
                "timed out waiting for {what}; nodes: {nodes:#?}; plans: {:#?}",
                snapshot.state.plans
            )
        }
    }
}

pub fn stage(snapshot: &Snapshot, id: &str) -> Option<Stage> {
    let policy = scheduler_core::node::RelaunchPolicy::default();
    snapshot.state.nodes.get(id).map(|n| n.stage(&policy))
}

pub fn endpoint(snapshot: &Snapshot, id: &str) -> Option<String> {
    let node = snapshot.state.nodes.get(id)?;
    let placement = node.placement.as_ref()?;
    Some(format!(
        "{}:{}",
        service_host(&placement.host.hostname),
        placement.ports.get("client")?
    ))
}

pub fn plan_done(snapshot: &Snapshot, id: &str) -> bool {
    snapshot
        .state
        .plans
        .iter()
        .any(|p| p.id == id && p.state == PlanState::Complete)
}

pub async fn ours_in_master_state(endpoint: &str, role: &str) -> anyhow::Result<Vec<String>> {
    // `/master/slaves` carries the full reservations (labels, volumes).
    let endpoint = endpoint.trim_end_matches('/');
    let state: serde_json::Value = reqwest::get(format!("{endpoint}/master/slaves"))
        .await?
        .json()
        .await?;
    let mut found = Vec::new();
    for agent in state["slaves"].as_array().into_iter().flatten() {
        if let Some(reserved) = agent["reserved_resources_full"][role].as_array()
            && !reserved.is_empty()
        {
            found.push(format!(
                "agent {} holds {}",
                agent["id"],
                serde_json::Value::from(reserved.clone())
            ));
        }
    }
    Ok(found)
}
