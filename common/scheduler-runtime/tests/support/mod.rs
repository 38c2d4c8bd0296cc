//! Shared pieces of the runtime's end-to-end tests: the test service (from
//! the `test-scheduler` package), an artifact server for the executor and the
//! service tarball, an in-memory state sink, and waiting on snapshots.

#![allow(dead_code)]

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::Duration,
};

use anyhow::bail;
use futures::future::BoxFuture;
use scheduler_core::{node::Stage, plan::PlanState};
use scheduler_runtime::{ArtifactRef, RuntimeHandle, SchedulerState, Snapshot, StateSink};

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

pub use test_scheduler::{TestService, ask_service, service_host};

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
    test_scheduler::tarball(&service, &tarball)?;
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
