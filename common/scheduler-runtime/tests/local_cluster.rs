//! The runtime end to end on the embedded local cluster, where every agent
//! has its own address and hostname: deploy under `hostname=unique`, a master
//! failover, a scheduler restarted from its saved state, a crashed node
//! relaunched on its agent with its data, replace onto a free agent, and
//! removal with nothing of ours left reserved.

mod support;

use std::{collections::BTreeSet, sync::Arc, time::Duration};

use anyhow::{Context, bail};
use mesos_local::{ClusterConfig, LocalCluster};
use scheduler_core::node::Stage;
use scheduler_runtime::{Command, RuntimeConfig, RuntimeHandle, SchedulerState};
use serde_json::json;
use support::{
    DEADLINE, MemorySink, TestService, artifact_server, ask_service, endpoint,
    ours_in_master_state, plan_done, stage, until,
};
use tokio::sync::watch;

fn runtime_config(executor_url: String, artifacts: support::Artifacts) -> RuntimeConfig {
    let mut config = RuntimeConfig::new("testsvc", executor_url);
    config.artifacts = artifacts;
    config.failover_timeout = Duration::from_secs(120);
    config.step_timeout = Duration::from_secs(20);
    config.policy.initial_delay_ms = 200;
    config.policy.max_delay_ms = 1_000;
    config
}

fn start_runtime(
    cluster: &LocalCluster,
    config: RuntimeConfig,
    state: SchedulerState,
    sink: Arc<MemorySink>,
) -> anyhow::Result<(
    RuntimeHandle,
    tokio::task::JoinHandle<Result<(), scheduler_runtime::RuntimeError>>,
)> {
    let master = url::Url::parse(&format!("{}/", cluster.master_url().trim_end_matches('/')))?;
    // The leader never changes here: the sender is dropped at once.
    let (_, leader_rx) = watch::channel(Some(master));
    Ok(scheduler_runtime::start(
        Arc::new(TestService),
        config,
        state,
        sink,
        leader_rx,
    )?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_on_the_local_cluster() -> anyhow::Result<()> {
    let mut cluster_config = ClusterConfig::with_agents(4);
    cluster_config.first_agent_ip = test_support::ports::agent_block();
    cluster_config.allocation_interval = Duration::from_millis(200);
    cluster_config.heartbeat_interval = Duration::from_secs(2);
    for agent in &mut cluster_config.agents {
        agent.resources = "cpus:2;mem:2048;disk:4000;ports:[31000-31009]".into();
    }
    let cluster = LocalCluster::start(cluster_config).await?;
    let (_server, executor_url, artifacts) = artifact_server().await?;
    let sink = Arc::new(MemorySink::default());
    let (handle, task) = start_runtime(
        &cluster,
        runtime_config(executor_url.clone(), artifacts.clone()),
        SchedulerState::new("local-e2e"),
        sink.clone(),
    )?;

    // Three nodes, one per host.
    let ids: Vec<String> = (0..3).map(|i| i.to_string()).collect();
    let add_ids = ids.clone();
    let deploy = handle
        .ask(|reply| Command::Add {
            ids: add_ids,
            config: json!({"constraints": "hostname=unique"}),
            reply,
        })
        .await?;
    let snapshot = until(&handle, "the deploy plan", |s| plan_done(s, &deploy)).await?;
    let hosts: BTreeSet<String> = ids
        .iter()
        .filter_map(|id| {
            snapshot.state.nodes[id]
                .placement
                .as_ref()
                .map(|p| p.host.hostname.clone())
        })
        .collect();
    assert_eq!(
        hosts.len(),
        3,
        "hostname=unique puts each node on its own agent: {hosts:?}"
    );
    for id in &ids {
        let addr = endpoint(&snapshot, id).context("placed")?;
        assert_eq!(ask_service(&addr), Some((id.clone(), 1)));
    }
    let generations: Vec<u64> = ids
        .iter()
        .map(|id| snapshot.state.nodes[id].generation)
        .collect();

    // A master failover: the scheduler re-subscribes, reconciles, and its
    // nodes keep running without a relaunch.
    cluster.fail_over_master().await?;
    let framework_id = snapshot.state.framework_id.clone();
    until(&handle, "re-subscription after the failover", |s| {
        s.subscribed && s.counters.get("calls_sent").copied().unwrap_or(0) > 0
    })
    .await?;
    tokio::time::timeout(DEADLINE, async {
        loop {
            let s = handle.snapshot();
            let unchanged = ids.iter().zip(&generations).all(|(id, g)| {
                s.state.nodes[id].generation == *g && stage(&s, id) == Some(Stage::Running)
            });
            if s.subscribed && unchanged {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .with_context(|| {
        let s = handle.snapshot();
        let nodes: Vec<String> = s
            .state
            .nodes
            .values()
            .map(|n| {
                format!(
                    "{}: gen {} {:?} {:?}",
                    n.id, n.generation, n.task, n.waiting_reason
                )
            })
            .collect();
        format!(
            "nodes did not stay running across the failover (subscribed {}): {nodes:#?}",
            s.subscribed
        )
    })?;
    assert_eq!(
        handle.snapshot().state.framework_id,
        framework_id,
        "same framework"
    );

    // The scheduler itself restarts from its saved state.
    drop(handle);
    let _ = task.await;
    let saved = sink
        .saved
        .lock()
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .clone()
        .context("state was saved")?;
    let restarted_at = std::time::Instant::now();
    let (handle, _task) = start_runtime(
        &cluster,
        runtime_config(executor_url, artifacts),
        saved,
        sink.clone(),
    )?;
    let snapshot = until(&handle, "the restarted scheduler to re-subscribe", |s| {
        s.subscribed
    })
    .await?;
    eprintln!(
        "restarted scheduler subscribed after {:?}",
        restarted_at.elapsed()
    );
    // The master answers for every node's task: reconciliation completes.
    let reconciled = until(&handle, "the restarted scheduler to reconcile", |s| {
        s.last_reconciliation_ms.is_some()
    })
    .await?;
    assert_eq!(reconciled.reconciling, 0, "no task left unanswered");
    eprintln!(
        "restarted scheduler reconciled after {:?} ({} ms from SUBSCRIBED)",
        restarted_at.elapsed(),
        reconciled.last_reconciliation_ms.unwrap_or_default()
    );
    assert_eq!(
        snapshot.state.framework_id, framework_id,
        "re-subscribed with the saved ID"
    );
    for (id, generation) in ids.iter().zip(&generations) {
        assert_eq!(
            snapshot.state.nodes[id].generation, *generation,
            "node {id} was not relaunched"
        );
    }

    // Crash node 1's service: it comes back on the same agent with its data.
    let snapshot = until(&handle, "a health report for node 1", |s| {
        s.health.get("1").and_then(|h| h.pid).is_some()
    })
    .await?;
    let before = snapshot.state.nodes["1"].clone();
    let pid = snapshot.health["1"].pid.context("pid")?;
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(i32::try_from(pid)?).context("pid")?,
        rustix::process::Signal::KILL,
    )?;
    let snapshot = until(&handle, "node 1 relaunched", |s| {
        s.state.nodes["1"].generation > before.generation && stage(s, "1") == Some(Stage::Running)
    })
    .await?;
    assert_eq!(snapshot.state.nodes["1"].placement, before.placement);
    assert_eq!(
        ask_service(&endpoint(&snapshot, "1").context("placed")?),
        Some(("1".into(), 2))
    );

    // Replace node 0: it moves to the fourth agent and starts afresh there.
    let old = snapshot.state.nodes["0"]
        .placement
        .clone()
        .context("placed")?;
    let replace = handle
        .ask(|reply| Command::Replace {
            ids: vec!["0".into()],
            reply,
        })
        .await?;
    let snapshot = until(&handle, "the replace plan", |s| plan_done(s, &replace)).await?;
    let new = snapshot.state.nodes["0"]
        .placement
        .clone()
        .context("placed again")?;
    assert_ne!(new.agent_id, old.agent_id, "moved");
    assert!(!hosts.contains(&new.host.hostname), "onto the free agent");
    assert_ne!(new.persistence_id, old.persistence_id, "a new volume");
    assert_eq!(
        ask_service(&endpoint(&snapshot, "0").context("placed")?),
        Some(("0".into(), 1))
    );

    // Remove everything: nothing of ours stays reserved anywhere.
    let held = ours_in_master_state(&cluster.master_url(), "testsvc").await?;
    assert!(
        !held.is_empty(),
        "our reservations are visible while nodes exist"
    );
    handle
        .ask(|reply| Command::Remove {
            ids: ids.clone(),
            reply,
        })
        .await?;
    until(&handle, "every node removed", |s| {
        ids.iter().all(|id| stage(s, id) == Some(Stage::Removed))
    })
    .await?;
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let left = ours_in_master_state(&cluster.master_url(), "testsvc").await?;
        if left.is_empty() {
            break;
        }
        if tokio::time::Instant::now() > deadline {
            bail!("reservations left behind: {left:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    cluster.shutdown().await;
    Ok(())
}
