//! A scheduler killed in the middle of a rolling restart, and started again
//! with the same state file, resumes the restart to its end; the operator's
//! `kafka-mesos broker restart` keeps following it and exits 0.
//!
//! Brokers run in ZooKeeper mode on a `mesos-local` process with three
//! agents, against a three-server ZooKeeper ensemble that `zookeeper-mesos`
//! deploys on the same agents first (its connect string from its endpoints,
//! with a `/kafka` chroot). The cluster, like a real Mesos cluster, outlives
//! the scheduler, so the brokers keep serving while the scheduler is gone.
//! A producer sends with `acks=all` throughout; every acknowledged message
//! is read back, and no two brokers are ever down at once.

mod support;

use std::{
    sync::atomic::Ordering,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use support::{
    local::{Cli, Leftovers, MesosLocal, Scheduler, ZooKeeperFramework, finish, watch},
    *,
};

/// Resources of each local agent: room for one broker and one ZooKeeper server.
const AGENT: &str = "cpus:2;mem:2048;disk:4000;ports:[31000-31009]";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_scheduler_killed_during_a_rolling_restart_resumes_it() -> anyhow::Result<()> {
    let _leftovers = Leftovers;
    let started = Instant::now();
    let dir = tempfile::tempdir()?;
    let tarball = kafka_tarball_path()?;
    let cluster = MesosLocal::start(dir.path(), 3, test_support::ports::agent_block(), AGENT)?;
    let cluster_up = started.elapsed();
    let zookeeper = ZooKeeperFramework::start(dir.path(), &cluster.master).await?;
    eprintln!(
        "local cluster up after {cluster_up:?}, zookeeper-mesos after {:?}",
        started.elapsed()
    );
    let zk_connect = zookeeper
        .deploy(
            "0..2",
            &[
                "--constraints",
                "hostname=unique",
                "--heap",
                "96",
                "--mem",
                "256",
                "--disk",
                "256",
                "--option",
                "tickTime=500",
            ],
        )
        .await?;
    assert_eq!(zk_connect.split(',').count(), 3, "{zk_connect}");
    eprintln!("ZooKeeper ensemble deployed after {:?}", started.elapsed());
    let args: Vec<String> = [
        "--master",
        &cluster.master,
        "--mode",
        "zookeeper",
        "--zookeeper-connect",
        &format!("{zk_connect}/kafka"),
        "--kafka-tarball",
        &tarball.display().to_string(),
        "--failover-timeout",
        "300",
        "--step-timeout",
        "60",
        "--stop-grace",
        "30s",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut scheduler = Scheduler::start(dir.path(), &args).await?;
    let cli = Cli::new(&scheduler.api);

    let add = cli.run(&support::add_three_brokers(&[])).await?;
    if add.code != Some(0) {
        bail!(
            "deploy failed: {add}\nscheduler log:\n{}",
            scheduler.log_tail(40)
        );
    }
    eprintln!("deployed after {:?}", started.elapsed());
    let before = cli.brokers().await?;
    assert_eq!(before.len(), 3);
    for broker in before.values() {
        assert_eq!(broker.stage, "running", "{broker:?}");
        assert_eq!(broker.config["mode"], "zookeeper");
    }
    let endpoints = cli.json(&["endpoints"]).await?;
    let bootstrap = endpoints["bootstrap_servers"]
        .as_str()
        .context("bootstrap servers")?
        .to_owned();
    cli.ok(&[
        "topic",
        "add",
        "zk-events",
        "--partitions",
        "3",
        "--replication-factor",
        "3",
        "--config",
        "min.insync.replicas=2",
    ])
    .await?;
    let producer = producer(&bootstrap)?;
    let mut acked = produce(&producer, "zk-events", 0..200).await?;
    assert_all_acknowledged_read(&acked, &consume_all(&bootstrap, "zk-events").await?);

    // The operator starts a rolling restart and follows it.
    let watching = watch(&before)?;
    let background = produce_until_stopped(producer.clone(), "zk-events", 1_000_000);
    let follower = cli.spawn(&["broker", "restart", "0..2"])?;

    // Once the first broker is done and the second under way, the
    // scheduler dies without warning.
    let deadline = Instant::now() + DEADLINE;
    let plan_id = loop {
        let plan = cli.json(&["plan", "show"]).await?;
        if plan["kind"] == "restart" && plan["done"].as_u64() >= Some(1) {
            break plan["id"].as_str().context("plan id")?.to_owned();
        }
        if Instant::now() > deadline {
            bail!("the restart did not get past its first broker: {plan}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    scheduler.kill();
    eprintln!(
        "scheduler killed during {plan_id} after {:?}",
        started.elapsed()
    );
    scheduler.start_again().await?;
    eprintln!("scheduler back after {:?}", started.elapsed());

    let run = finish(follower).await?;
    background.stop.store(true, Ordering::Relaxed);
    let (during, failed) = background.task.await?;
    let outages = watching.finish();
    assert_eq!(
        run.code,
        Some(0),
        "the CLI followed the plan to its end: {run}"
    );
    assert!(
        run.stdout.contains(&format!("plan {plan_id} complete")),
        "{run}"
    );
    let plan = cli.plan(&plan_id).await?;
    assert_eq!(plan["state"], "complete", "{plan}");
    assert_eq!(plan["done"], 3, "{plan}");
    let plans = cli.json(&["plan", "list"]).await?;
    let restarts = plans["plans"]
        .as_array()
        .context("plans")?
        .iter()
        .filter(|p| p["kind"] == "restart")
        .count();
    assert_eq!(restarts, 1, "the same plan resumed: {plans}");
    assert!(
        scheduler.log(2).contains("state loaded"),
        "the second scheduler started from the saved state"
    );

    outages.assert_one_at_a_time("the interrupted rolling restart", &["0", "1", "2"]);
    let after = cli.brokers().await?;
    for (id, broker) in &before {
        assert_eq!(
            after[id].generation,
            broker.generation + 1,
            "broker {id} restarted exactly once"
        );
        assert_eq!(after[id].stage, "running");
    }
    assert!(
        during.len() > 50,
        "the producer kept sending: {} acknowledged, failures {:?}",
        during.len(),
        failed.iter().take(3).collect::<Vec<_>>()
    );
    acked.extend(during.iter().cloned());
    assert_all_acknowledged_read(&acked, &consume_all(&bootstrap, "zk-events").await?);

    // The brokers registered under the chroot in the framework's ensemble,
    // as ZooKeeper's own command-line client lists them.
    let ids = zookeeper_ls(&zk_connect, "/kafka/brokers/ids").await?;
    assert!(ids.lines().any(|l| l.trim() == "[0, 1, 2]"), "{ids}");

    scheduler.stop();
    eprintln!("scheduler-restart scenario took {:?}", started.elapsed());
    Ok(())
}

/// `ls PATH` by ZooKeeper's command-line client (from the same distribution
/// the servers run), against `connect`; returns its output.
async fn zookeeper_ls(connect: &str, path: &str) -> anyhow::Result<String> {
    let home = tokio::task::spawn_blocking(|| {
        test_support::zookeeper::distribution(&test_support::zookeeper::tarball()?)
    })
    .await??;
    let java = std::env::var_os("JAVA_HOME")
        .map(|h| std::path::PathBuf::from(h).join("bin/java"))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| "java".into());
    let output = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new(java)
            .arg("-cp")
            .arg(home.join("lib/*"))
            .args([
                "org.apache.zookeeper.ZooKeeperMain",
                "-server",
                connect,
                "ls",
                path,
            ])
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .context("the ZooKeeper client did not finish within a minute")??;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        bail!(
            "ZooKeeper client ls {path} failed ({}): {stdout}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(stdout)
}
