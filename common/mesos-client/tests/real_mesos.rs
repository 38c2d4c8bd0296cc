//! The scheduler client against real Apache Mesos 1.11 (the rig beside the
//! clone): subscribe in both content types, receive offers, DECLINE with a
//! filter, REVIVE, RECONCILE and TEARDOWN, with every event decoded by our types.
//! Skipped with a notice when the rig is absent; a failure under `CI=true`.

use std::time::Duration;

use anyhow::{Context, bail};
use mesos_client::{Config, SchedulerEvent, calls};
use mesos_proto::{
    ContentType,
    v1::{
        FrameworkInfo, Offer, TaskId, TaskState,
        framework_info::{Capability, capability},
        scheduler::Event,
        task_status::Reason,
    },
};
use test_support::rig::{MesosRig, RigOptions};
use tokio::sync::{mpsc, watch};

const DEADLINE: Duration = Duration::from_secs(30);

fn framework(name: &str) -> FrameworkInfo {
    let capability = |t: capability::Type| Capability {
        r#type: Some(t as i32),
    };
    FrameworkInfo {
        user: "root".into(),
        name: name.into(),
        failover_timeout: Some(60.0),
        checkpoint: Some(true),
        principal: Some(name.into()),
        roles: vec!["test".into()],
        capabilities: vec![
            capability(capability::Type::MultiRole),
            capability(capability::Type::ReservationRefinement),
            capability(capability::Type::PartitionAware),
        ],
        ..Default::default()
    }
}

async fn next_event(
    events: &mut mpsc::Receiver<SchedulerEvent>,
    what: &str,
    want: impl Fn(&Event) -> bool,
) -> anyhow::Result<Event> {
    tokio::time::timeout(DEADLINE, async {
        loop {
            match events.recv().await.context("event channel closed")? {
                SchedulerEvent::Event(event) if want(&event) => return Ok(*event),
                SchedulerEvent::Terminated { error } => bail!("terminated: {error:?}"),
                _ => {}
            }
        }
    })
    .await
    .with_context(|| format!("timed out waiting for {what}"))?
}

async fn offers(events: &mut mpsc::Receiver<SchedulerEvent>) -> anyhow::Result<Vec<Offer>> {
    let event = next_event(events, "OFFERS", |e| e.offers.is_some()).await?;
    Ok(event.offers.map(|o| o.offers).unwrap_or_default())
}

async fn active_framework_ids(endpoint: &str) -> anyhow::Result<Vec<String>> {
    let state: serde_json::Value = reqwest::get(format!("{endpoint}/master/state"))
        .await?
        .json()
        .await?;
    Ok(state["frameworks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["id"].as_str().map(str::to_owned))
        .collect())
}

async fn session_against_real_mesos(
    rig: &MesosRig,
    content_type: ContentType,
) -> anyhow::Result<()> {
    let name = format!(
        "client-{}",
        content_type.as_str().rsplit('/').next().unwrap_or("x")
    );
    let config = Config {
        content_type,
        ..Config::new(framework(&name))
    };
    let master = url::Url::parse(&format!("{}/", rig.endpoint()))?;
    let (_leader, leader_rx) = watch::channel(Some(master));
    let (handle, mut events) = mesos_client::start(config, leader_rx)?;

    let framework_id = tokio::time::timeout(DEADLINE, async {
        loop {
            match events.recv().await {
                Some(SchedulerEvent::Subscribed { framework_id, .. }) => return Ok(framework_id),
                Some(SchedulerEvent::Terminated { error }) => bail!("terminated: {error:?}"),
                Some(_) => {}
                None => bail!("event channel closed"),
            }
        }
    })
    .await
    .context("timed out waiting for SUBSCRIBED")??;
    assert!(
        active_framework_ids(rig.endpoint())
            .await?
            .contains(&framework_id.value)
    );

    // Offers arrive, decoded, with the MULTI_ROLE allocation info.
    let first = offers(&mut events).await?;
    let offer = first.first().context("at least one offer")?;
    assert_eq!(offer.framework_id, framework_id);
    assert_eq!(
        offer
            .allocation_info
            .as_ref()
            .and_then(|a| a.role.as_deref()),
        Some("test")
    );
    assert!(offer.resources.iter().any(|r| r.name == "cpus"));

    // Decline everything for an hour; REVIVE clears the filter and the agent
    // is offered again.
    let ids = first.iter().map(|o| o.id.clone()).collect();
    handle.call(calls::decline(ids, Some(3600.0))).await?;
    handle.call(calls::revive(vec!["test".into()])).await?;
    let again = offers(&mut events).await?;
    assert_eq!(again.first().map(|o| &o.agent_id), Some(&offer.agent_id));
    let ids = again.iter().map(|o| o.id.clone()).collect();
    handle.call(calls::decline(ids, Some(3600.0))).await?;

    // Explicit reconciliation of a task the master never saw.
    let ghost = TaskId {
        value: "ghost-task".into(),
    };
    handle
        .call(calls::reconcile(vec![(
            ghost.clone(),
            Some(offer.agent_id.clone()),
        )]))
        .await?;
    let update = next_event(&mut events, "UPDATE for ghost-task", |e| {
        e.update.as_ref().is_some_and(|u| u.status.task_id == ghost)
    })
    .await?;
    let status = update.update.context("update payload")?.status;
    // On a registered agent, a partition-aware framework learns the task is gone.
    assert_eq!(status.state(), TaskState::TaskGone);
    assert_eq!(status.reason(), Reason::Reconciliation);
    assert!(
        status.uuid.is_none(),
        "reconciliation updates are not acknowledged"
    );
    // On an agent the master never saw, it is unknown.
    let stray = TaskId {
        value: "stray-task".into(),
    };
    let nowhere = mesos_proto::v1::AgentId {
        value: "no-such-agent".into(),
    };
    handle
        .call(calls::reconcile(vec![(stray.clone(), Some(nowhere))]))
        .await?;
    let update = next_event(&mut events, "UPDATE for stray-task", |e| {
        e.update.as_ref().is_some_and(|u| u.status.task_id == stray)
    })
    .await?;
    let status = update.update.context("update payload")?.status;
    assert_eq!(status.state(), TaskState::TaskUnknown);
    assert_eq!(status.reason(), Reason::Reconciliation);
    // Implicit reconciliation is accepted (no tasks, so nothing comes back).
    handle.call(calls::reconcile(vec![])).await?;

    handle.teardown().await?;
    tokio::time::timeout(DEADLINE, async {
        while active_framework_ids(rig.endpoint())
            .await?
            .contains(&framework_id.value)
        {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        anyhow::Ok(())
    })
    .await
    .context("framework still active after TEARDOWN")??;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduler_client_against_real_mesos() -> anyhow::Result<()> {
    test_support::require_rig!(Ok(()));
    let rig = tokio::task::spawn_blocking(|| {
        MesosRig::start(
            RigOptions::default()
                .agents(1)
                .resources("cpus:4;mem:4096;disk:10000;ports:[31000-31099]"),
        )
    })
    .await??;
    for content_type in [ContentType::Json, ContentType::Protobuf] {
        session_against_real_mesos(&rig, content_type)
            .await
            .with_context(|| format!("with {content_type}: rig log tail:\n{}", rig.log_tail(30)))?;
    }
    Ok(())
}
