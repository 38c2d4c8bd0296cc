//! The runtime end to end against real Apache Mesos 1.11 (the rig) with the
//! real executor and a real stateful test service: deploy, a crashed node
//! relaunched on its agent with its data kept, a rolling restart, an update
//! whose node never becomes ready (the plan stops there), and removal with
//! nothing of ours left in the master's view of its agents.

mod support;

use std::{sync::Arc, time::Duration};

use anyhow::{Context, bail};
use scheduler_core::{
    node::Stage,
    plan::{PlanState, StepPhase},
};
use scheduler_runtime::{Command, RuntimeConfig, SchedulerState};
use serde_json::json;
use support::{
    DEADLINE, MemorySink, TestService, artifact_server, ask_service, endpoint,
    ours_in_master_state, plan_done, stage, until,
};
use test_support::rig::{MesosRig, RigOptions};
use tokio::sync::watch;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_against_real_mesos() -> anyhow::Result<()> {
    test_support::require_rig!(Ok(()));
    let rig = tokio::task::spawn_blocking(|| {
        MesosRig::start(
            RigOptions::default()
                .agents(1)
                .resources("cpus:4;mem:4096;disk:10000;ports:[31000-31099]"),
        )
    })
    .await??;
    let (_server, executor_url, artifacts) = artifact_server().await?;

    let mut config = RuntimeConfig::new("testsvc", executor_url);
    config.artifacts = artifacts;
    config.failover_timeout = Duration::from_secs(60);
    config.step_timeout = Duration::from_secs(10);
    config.policy.initial_delay_ms = 200;
    config.policy.max_delay_ms = 1_000;
    config.executor_env.insert("RUST_LOG".into(), "info".into());
    let sink = Arc::new(MemorySink::default());
    let master = url::Url::parse(&format!("{}/", rig.endpoint()))?;
    let (_leader, leader_rx) = watch::channel(Some(master));
    let (handle, _task) = scheduler_runtime::start(
        Arc::new(TestService),
        config,
        SchedulerState::new("e2e-instance"),
        sink.clone(),
        leader_rx,
    )?;

    // Deploy three nodes on the one agent.
    let ids: Vec<String> = (0..3).map(|i| i.to_string()).collect();
    let ids_for_add = ids.clone();
    let deploy = handle
        .ask(|reply| Command::Add {
            ids: ids_for_add,
            config: json!({}),
            reply,
        })
        .await?;
    let snapshot = until(&handle, "the deploy plan", |s| plan_done(s, &deploy))
        .await
        .with_context(|| format!("rig log:\n{}", rig.log_tail(40)))?;
    for id in &ids {
        let addr = endpoint(&snapshot, id).context("placed")?;
        assert_eq!(
            ask_service(&addr),
            Some((id.clone(), 1)),
            "node {id} answers, first start"
        );
    }
    let saved = sink
        .saved
        .lock()
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .clone();
    assert_eq!(
        saved.and_then(|s| s.framework_id),
        snapshot.state.framework_id,
        "framework ID persisted"
    );

    // Crash node 1's service: relaunched on the same agent, its data kept.
    let snapshot = until(&handle, "a health report with a pid", |s| {
        s.health.get("1").and_then(|h| h.pid).is_some()
    })
    .await?;
    let pid = snapshot.health["1"].pid.context("pid")?;
    let before = snapshot.state.nodes["1"].clone();
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(pid as i32).context("pid")?,
        rustix::process::Signal::KILL,
    )?;
    let snapshot = until(&handle, "node 1 relaunched", |s| {
        s.state.nodes["1"].generation > before.generation && stage(s, "1") == Some(Stage::Running)
    })
    .await?;
    let after = &snapshot.state.nodes["1"];
    assert_eq!(
        after.placement, before.placement,
        "same agent, same volume, same ports"
    );
    let addr = endpoint(&snapshot, "1").context("placed")?;
    assert_eq!(
        ask_service(&addr),
        Some(("1".into(), 2)),
        "the volume kept the first start"
    );

    // A rolling restart of every node.
    let restart = handle
        .ask(|reply| Command::Restart {
            ids: ids.clone(),
            reply,
        })
        .await?;
    let snapshot = until(&handle, "the restart plan", |s| plan_done(s, &restart)).await?;
    for id in &ids {
        let starts = ask_service(&endpoint(&snapshot, id).context("placed")?).map(|(_, n)| n);
        assert_eq!(
            starts,
            Some(if id == "1" { 3 } else { 2 }),
            "node {id} restarted once"
        );
    }

    // An update that makes node 1 fail at start stops the plan at node 1.
    let update = handle
        .ask(|reply| Command::Update {
            ids: vec!["1".into(), "2".into()],
            patch: json!({"fail": true}),
            reply,
        })
        .await?;
    let snapshot = until(&handle, "the update plan to pause", |s| {
        s.state
            .plans
            .iter()
            .any(|p| p.id == update && matches!(p.state, PlanState::Paused { .. }))
    })
    .await?;
    let plan = snapshot
        .state
        .plans
        .iter()
        .find(|p| p.id == update)
        .context("plan")?;
    let PlanState::Paused { reason } = &plan.state else {
        bail!("not paused")
    };
    assert!(reason.contains("node 1 did not become ready"), "{reason}");
    assert_eq!(
        plan.steps[1].phase,
        StepPhase::Pending,
        "node 2 was never touched"
    );
    assert_eq!(stage(&snapshot, "2"), Some(Stage::Running));
    handle
        .ask(|reply| Command::Plan {
            id: update.clone(),
            action: scheduler_runtime::PlanAction::Abort,
            reply,
        })
        .await?;

    // Remove everything: nothing of ours stays reserved. (First make sure the
    // check sees our reservations at all.)
    let held = ours_in_master_state(rig.endpoint(), "testsvc").await?;
    assert!(
        !held.is_empty(),
        "the master shows our reservations while nodes exist"
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
        let left = ours_in_master_state(rig.endpoint(), "testsvc").await?;
        if left.is_empty() {
            break;
        }
        if tokio::time::Instant::now() > deadline {
            bail!("reservations left behind: {left:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}
