//! Three KRaft brokers on real Apache Mesos (the rig) with the real executor
//! and the real Kafka jars, checked with rdkafka clients: deploy, a topic with
//! replication factor 3 and `min.insync.replicas=2`, produce and consume, a
//! rolling restart while a producer sends with `acks=all` (every acknowledged
//! message is read back, and the active controller goes last), and a restart
//! the safety check refuses (the plan pauses naming the partitions; no broker
//! goes down).

mod support;

use std::{collections::BTreeMap, sync::atomic::Ordering, time::Duration};

use anyhow::Context;
use kafka_mesos::{
    KafkaAdmin, Mode, Settings, TopicDescription, TopicSpec, TopicUpdate, bootstrap_servers,
    controller::active_controller, service::broker_endpoints,
};
use scheduler_core::{node::Stage, plan::PlanState};
use scheduler_runtime::{ClusterView, Command, NodeView, PlanAction};
use serde_json::json;
use support::*;

fn cluster_of(snapshot: &scheduler_runtime::Snapshot) -> ClusterView {
    ClusterView {
        nodes: snapshot
            .state
            .nodes
            .values()
            .map(|n| (n.id.clone(), NodeView::of(n)))
            .collect(),
        settings: snapshot.state.settings.clone(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kraft_brokers_on_real_mesos() -> anyhow::Result<()> {
    test_support::require_rig!(Ok(()));
    let started = std::time::Instant::now();
    let mut settings = Settings::new(Mode::Kraft);
    settings.stop_grace = Duration::from_secs(30);
    // Three brokers starting at once on one agent beside the rest of the
    // suite may need more than 30 s to listen; a deploy step past its
    // timeout would pause the plan.
    let framework = start(settings, Duration::from_secs(60)).await?;
    let handle = &framework.handle;

    let snapshot = deploy(
        handle,
        &["0", "1", "2"],
        json!({
            "cpus": 0.5, "mem": 640, "heap": 256, "disk": 1000,
            "options": {
                "num.partitions": 3,
                "offsets.topic.replication.factor": 3,
                "group.initial.rebalance.delay.ms": 0
            }
        }),
    )
    .await
    .with_context(|| format!("rig log:\n{}", framework.rig.log_tail(40)))?;
    let deployed = started.elapsed();
    eprintln!("deployed after {deployed:?}");
    let cluster = cluster_of(&snapshot);
    let bootstrap = bootstrap_servers(&cluster);
    let admin = KafkaAdmin::connect(&bootstrap, Duration::from_secs(20))?;
    // Every broker registers and all share one KRaft cluster.
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let state = admin.cluster_state().await?;
        if state.brokers.len() == 3 {
            break;
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "brokers registered: {:?}",
            state.brokers
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    admin
        .create_topic(&TopicSpec {
            name: "events".into(),
            partitions: 3,
            replication_factor: 3,
            configs: BTreeMap::from([("min.insync.replicas".to_owned(), "2".to_owned())]),
        })
        .await?;
    let described = known(&admin, "events").await?;
    assert_eq!(described.partitions.len(), 3);
    assert!(described.partitions.iter().all(|p| p.replicas.len() == 3));
    assert_eq!(
        described
            .configs
            .get("min.insync.replicas")
            .map(String::as_str),
        Some("2")
    );
    // Each broker's metadata catches up on its own: the one answering the
    // list may learn of the topic a moment after the one that created it.
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let listed = admin.list_topics().await?;
        if listed
            .iter()
            .any(|t| t.name == "events" && t.replication_factor == 3)
        {
            break;
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "events is not listed with replication factor 3: {listed:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    eprintln!("topic created after {:?}", started.elapsed());
    let producer = producer(&bootstrap)?;
    let mut acked = produce(&producer, "events", 0..200).await?;
    assert_all_acknowledged_read(&acked, &consume_all(&bootstrap, "events").await?);

    eprintln!("produced and consumed after {:?}", started.elapsed());
    // Rolling restart while a producer keeps sending with acks=all.
    let controller =
        active_controller(&broker_endpoints(&cluster), true, Duration::from_secs(5)).await?;
    let before = generations(&snapshot);
    let background = produce_until_stopped(producer.clone(), "events", 1_000_000);
    let restart_started = std::time::Instant::now();
    let restart = handle
        .ask(|reply| Command::Restart {
            ids: vec!["0".into(), "1".into(), "2".into()],
            reply,
        })
        .await?;
    let snapshot = until(handle, "the rolling restart", |s| {
        plan_state(s, &restart) == Some(PlanState::Complete)
    })
    .await?;
    let restart_took = restart_started.elapsed();
    background.stop.store(true, Ordering::Relaxed);
    let (during, failed) = background.task.await?;
    let plan = snapshot
        .state
        .plans
        .iter()
        .find(|p| p.id == restart)
        .context("plan")?;
    assert_eq!(
        plan.steps.last().map(|s| s.node.clone()),
        Some(controller.to_string()),
        "the active controller is restarted last"
    );
    let after = generations(&snapshot);
    for id in ["0", "1", "2"] {
        assert_eq!(
            after[id],
            before[id] + 1,
            "broker {id} restarted exactly once"
        );
    }
    assert!(
        during.len() > 50,
        "the producer kept sending: {} acknowledged",
        during.len()
    );
    acked.extend(during.iter().cloned());
    assert_all_acknowledged_read(&acked, &consume_all(&bootstrap, "events").await?);
    eprintln!(
        "deploy {deployed:?}, rolling restart {restart_took:?}: {} messages acknowledged during it, {} failed {:?}",
        during.len(),
        failed.len(),
        failed.iter().take(3).collect::<Vec<_>>()
    );

    // A topic where every broker is needed: the safety check refuses, the
    // plan pauses naming the partitions, and no broker is taken down. The
    // restart follows the creation at once, as an operator's might: some
    // brokers have not heard of the topic yet, and must not be the ones the
    // check believes.
    admin
        .create_topic(&TopicSpec {
            name: "strict".into(),
            partitions: 1,
            replication_factor: 3,
            configs: BTreeMap::from([("min.insync.replicas".to_owned(), "3".to_owned())]),
        })
        .await?;
    let before = generations(&snapshot);
    let refused = handle
        .ask(|reply| Command::Restart {
            ids: vec!["0".into(), "1".into(), "2".into()],
            reply,
        })
        .await?;
    let snapshot = until(handle, "the refused restart to pause", |s| {
        matches!(plan_state(s, &refused), Some(PlanState::Paused { .. }))
    })
    .await?;
    let Some(PlanState::Paused { reason }) = plan_state(&snapshot, &refused) else {
        anyhow::bail!("not paused");
    };
    assert!(
        reason.contains("could not be taken down safely"),
        "{reason}"
    );
    assert!(reason.contains("below min.insync.replicas"), "{reason}");
    assert!(reason.contains("strict-0"), "{reason}");
    assert_eq!(generations(&snapshot), before, "no broker was restarted");
    for id in ["0", "1", "2"] {
        assert_eq!(
            stage(&snapshot, id),
            Some(Stage::Running),
            "broker {id} still runs"
        );
    }
    handle
        .ask(|reply| Command::Plan {
            id: refused.clone(),
            action: PlanAction::Abort,
            reply,
        })
        .await?;

    // `topic update` raises partitions and changes one setting, keeping the others.
    admin
        .update_topic(
            "strict",
            &TopicUpdate {
                partitions: Some(2),
                configs: BTreeMap::from([("retention.ms".to_owned(), Some("3600000".to_owned()))]),
            },
        )
        .await?;
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let strict = loop {
        let d = admin.describe_topic("strict").await?;
        if (d.partitions.len() == 2 && d.configs.contains_key("retention.ms"))
            || tokio::time::Instant::now() > deadline
        {
            break d;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(strict.partitions.len(), 2);
    assert_eq!(
        strict.configs.get("retention.ms").map(String::as_str),
        Some("3600000")
    );
    assert_eq!(
        strict
            .configs
            .get("min.insync.replicas")
            .map(String::as_str),
        Some("3")
    );

    remove_all(handle).await?;
    eprintln!("kraft test took {:?}", started.elapsed());
    Ok(())
}

/// The topic as described once the answering broker knows it and its settings:
/// brokers learn about a new topic one after another.
async fn known(admin: &KafkaAdmin, topic: &str) -> anyhow::Result<TopicDescription> {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        match admin.describe_topic(topic).await {
            Ok(d)
                if d.configs.contains_key("min.insync.replicas")
                    || tokio::time::Instant::now() >= deadline =>
            {
                return Ok(d);
            }
            Ok(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            Err(kafka_mesos::Error::TopicNotFound(_)) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(e) => return Err(e.into()),
        }
    }
}
