//! Three brokers in ZooKeeper mode on real Apache Mesos (the rig), against a
//! real ZooKeeper server: deploy, a replicated topic, produce and consume
//! with rdkafka, and the controller found through the Kafka protocol.

mod support;

use std::{collections::BTreeMap, time::Duration};

use anyhow::Context;
use kafka_mesos::{
    KafkaAdmin, Mode, Settings, TopicSpec, bootstrap_servers, controller::active_controller,
    service::broker_endpoints,
};
use scheduler_runtime::{ClusterView, NodeView};
use serde_json::json;
use support::*;
use test_support::ZkServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn zookeeper_mode_brokers_on_real_mesos() -> anyhow::Result<()> {
    test_support::require_rig!(Ok(()));
    let started = std::time::Instant::now();
    let zk = tokio::task::spawn_blocking(ZkServer::start).await??;
    let mut settings = Settings::new(Mode::ZooKeeper {
        connect: format!("{}/kafka", zk.connect_string()),
    });
    settings.stop_grace = Duration::from_secs(30);
    let framework = start(settings, Duration::from_secs(30)).await?;
    let handle = &framework.handle;

    let snapshot = deploy(
        handle,
        &["0", "1", "2"],
        json!({"cpus": 0.5, "mem": 640, "heap": 256, "disk": 1000}),
    )
    .await
    .with_context(|| format!("rig log:\n{}", framework.rig.log_tail(40)))?;
    for node in snapshot.state.nodes.values() {
        assert_eq!(node.config["mode"], json!("zookeeper"));
        assert!(node.config.get("cluster_id").is_none());
    }
    let cluster = ClusterView {
        nodes: snapshot
            .state
            .nodes
            .values()
            .map(|n| (n.id.clone(), NodeView::of(n)))
            .collect(),
        settings: json!(null),
    };
    let bootstrap = bootstrap_servers(&cluster);
    let admin = KafkaAdmin::connect(&bootstrap, Duration::from_secs(20))?;
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
    let controller =
        active_controller(&broker_endpoints(&cluster), false, Duration::from_secs(5)).await?;
    assert!((0..3).contains(&controller), "controller {controller}");

    admin
        .create_topic(&TopicSpec {
            name: "zk-events".into(),
            partitions: 2,
            replication_factor: 3,
            configs: BTreeMap::from([("min.insync.replicas".to_owned(), "2".to_owned())]),
        })
        .await?;
    let producer = producer(&bootstrap)?;
    let acked = produce(&producer, "zk-events", 0..300).await?;
    assert_all_acknowledged_read(&acked, &consume_all(&bootstrap, "zk-events").await?);

    // The brokers registered under the chroot of the framework's ZooKeeper.
    let dump = zk.four_letter_word("dump")?;
    assert!(dump.contains("/kafka/brokers/ids/0"), "{dump}");

    remove_all(handle).await?;
    eprintln!("zookeeper-mode test took {:?}", started.elapsed());
    Ok(())
}
