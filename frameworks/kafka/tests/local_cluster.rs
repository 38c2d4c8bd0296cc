//! Three KRaft brokers on the embedded local cluster (three agents on their
//! own loopback addresses), driven through the `kafka-mesos` binary as an
//! operator drives it: `scheduler --master local:3`, then `broker add`,
//! `topic add`, `broker restart`, `broker update` and `plan abort`, checked
//! with real Kafka clients. The brokers run on a Java runtime the scheduler
//! serves (`--jre-tarball`), as on agents without Java.
//!
//! One scenario on one cluster: deploy with `hostname=unique`; a topic with
//! replication factor 3 and `min.insync.replicas=2`; produce and consume; a
//! rolling restart while a producer sends with `acks=all` (every
//! acknowledged message is read back, count and checksum; never two brokers
//! down); a `server.properties` option rolled out one broker at a time and
//! seen by every broker; an option that keeps the broker from starting,
//! which pauses the rollout with Kafka's own reason and takes no second
//! broker down; and the way out (abort, update again).

mod support;

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::atomic::Ordering,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use rdkafka::{
    ClientConfig,
    admin::{AdminClient, AdminOptions, ResourceSpecifier},
    client::DefaultClientContext,
};
use serde_json::Value;
use support::{
    local::{Broker, Cli, Leftovers, Scheduler, lines_with, watch},
    *,
};

/// Resources of each local agent: room for one broker.
const AGENT: &str = "cpus:2;mem:2048;disk:4000;ports:[31000-31009]";

/// A broker option as the broker itself reports it (DescribeConfigs on the
/// broker resource, answered by that broker).
async fn broker_setting(bootstrap: &str, broker: i32, key: &str) -> anyhow::Result<Option<String>> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()?;
    let options = AdminOptions::new().request_timeout(Some(Duration::from_secs(20)));
    let results = admin
        .describe_configs([&ResourceSpecifier::Broker(broker)], &options)
        .await?;
    for result in results {
        let resource = result.map_err(|code| anyhow::anyhow!("broker {broker}: {code}"))?;
        if let Some(entry) = resource.get(key) {
            return Ok(entry.value.clone());
        }
    }
    Ok(None)
}

async fn assert_setting_everywhere(
    bootstrap: &str,
    brokers: &BTreeMap<String, Broker>,
    key: &str,
    value: &str,
) -> anyhow::Result<()> {
    // A broker that has just come back may drop the first admin request
    // (its connection is being re-established); ask again for a while.
    for id in brokers.keys() {
        let deadline = Instant::now() + Duration::from_secs(60);
        let seen = loop {
            match broker_setting(bootstrap, id.parse()?, key).await {
                Ok(seen) => break seen,
                Err(e) if Instant::now() < deadline => {
                    eprintln!("asking broker {id} for {key}: {e:#}; asking again");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(e) => return Err(e.context(format!("{key} on broker {id}"))),
            }
        };
        assert_eq!(seen.as_deref(), Some(value), "{key} on broker {id}");
    }
    Ok(())
}

fn generations(brokers: &BTreeMap<String, Broker>) -> BTreeMap<String, u64> {
    brokers
        .iter()
        .map(|(id, b)| (id.clone(), b.generation))
        .collect()
}

/// Asserts a followed plan exited 0 and printed its progress (a line for
/// each broker of `serial`, whose steps take seconds each) and its end.
fn assert_followed(run: &support::local::Run, serial: &[&str]) -> anyhow::Result<String> {
    assert_eq!(run.code, Some(0), "{run}");
    let plan = run.plan().context("the command names its plan")?;
    let progress = lines_with(&run.stderr, &format!("{plan} ["));
    assert!(!progress.is_empty(), "progress of {plan}: {run}");
    for broker in serial {
        let step = format!("broker {broker}: ");
        assert!(
            progress.iter().any(|l| l.contains(&step)),
            "progress of {plan} shows broker {broker}: {run}"
        );
    }
    assert!(
        run.stdout.contains(&format!("plan {plan} complete")),
        "{run}"
    );
    Ok(plan)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kraft_brokers_on_the_local_cluster_through_the_cli() -> anyhow::Result<()> {
    let _leftovers = Leftovers;
    let started = Instant::now();
    let dir = tempfile::tempdir()?;
    let tarball = kafka_tarball_path()?;
    let jre = test_support::packaging::jre_tarball()?;
    let block = test_support::ports::agent_block();
    let args: Vec<String> = [
        "--master",
        "local:3",
        "--local-first-agent-ip",
        &block.to_string(),
        "--local-resources",
        AGENT,
        "--local-state-dir",
        &dir.path().join("cluster").display().to_string(),
        "--kafka-tarball",
        &tarball.display().to_string(),
        "--jre-tarball",
        &jre.display().to_string(),
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

    // Deploy: one broker per agent.
    let add = cli
        .run(&support::add_three_brokers(&[
            "--option",
            "num.partitions=3",
        ]))
        .await?;
    if add.code != Some(0) {
        bail!(
            "deploy failed: {add}\nscheduler log:\n{}",
            scheduler.log_tail(40)
        );
    }
    assert_followed(&add, &[])?;
    eprintln!("deployed after {:?}", started.elapsed());
    // A broker's process id comes with its executor's first health report,
    // which may follow the RUNNING update by a moment.
    let brokers = cli
        .wait_for_brokers("every broker's process", Duration::from_secs(30), |b| {
            b.values().all(|b| b.pid.is_some())
        })
        .await?;
    assert_eq!(brokers.len(), 3);
    let hosts: BTreeSet<String> = brokers.values().filter_map(|b| b.host.clone()).collect();
    let agents: BTreeSet<String> = (0..3u32)
        .map(|i| std::net::Ipv4Addr::from(u32::from(block) + i).to_string())
        .collect();
    assert_eq!(hosts, agents, "one broker on each agent");
    let sandboxes = dir.path().join("cluster");
    for broker in brokers.values() {
        assert_eq!(broker.stage, "running", "{broker:?}");
        assert_eq!(broker.config["mode"], "kraft");
        // The broker's JVM is the Java runtime the scheduler handed out,
        // unpacked in the broker's sandbox, not the host's java.
        let pid = broker.pid.context("the broker's pid")?;
        let java = std::fs::read_link(format!("/proc/{pid}/exe"))?;
        assert!(
            java.starts_with(&sandboxes) && java.ends_with("bin/java"),
            "broker {} runs {}",
            broker.id,
            java.display()
        );
    }
    let endpoints = cli.json(&["endpoints"]).await?;
    let bootstrap = endpoints["bootstrap_servers"]
        .as_str()
        .context("bootstrap servers")?
        .to_owned();
    let list = cli.ok(&["broker", "list"]).await?;
    assert!(
        list.stdout.contains("cluster: 3 brokers registered"),
        "{list}"
    );
    // A broker's own output, relayed by its executor.
    let log = cli.ok(&["broker", "log", "0", "-n", "1000"]).await?;
    assert!(log.stdout.contains("Kafka Server started"), "{log}");

    // A topic that survives one broker down.
    cli.ok(&[
        "topic",
        "add",
        "events",
        "--partitions",
        "3",
        "--replication-factor",
        "3",
        "--config",
        "min.insync.replicas=2",
    ])
    .await?;
    let deadline = Instant::now() + DEADLINE;
    let described: Value = loop {
        // Brokers learn a new topic (and its settings) one after another:
        // the broker a new client asks may not know it yet.
        let d = match cli.json(&["topic", "describe", "events"]).await {
            Ok(d) => d,
            Err(e) if Instant::now() < deadline => {
                eprintln!("{e:#}; asking again");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
            Err(e) => return Err(e),
        };
        if d["configs"]["min.insync.replicas"] == "2" || Instant::now() > deadline {
            break d;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(described["configs"]["min.insync.replicas"], "2");
    let partitions = described["partitions"].as_array().context("partitions")?;
    assert_eq!(partitions.len(), 3);
    for p in partitions {
        assert_eq!(p["replicas"].as_array().map(Vec::len), Some(3), "{p}");
    }

    let producer = producer(&bootstrap)?;
    let mut acked = produce(&producer, "events", 0..200).await?;
    assert_all_acknowledged_read(&acked, &consume_all(&bootstrap, "events").await?);
    eprintln!("produced and consumed after {:?}", started.elapsed());

    // Rolling restart while a producer keeps sending with acks=all.
    let before = cli.brokers().await?;
    let watching = watch(&before)?;
    let background = produce_until_stopped(producer.clone(), "events", 1_000_000);
    let restart = cli.run(&["broker", "restart", "0..2"]).await?;
    background.stop.store(true, Ordering::Relaxed);
    let (during, failed) = background.task.await?;
    let outages = watching.finish();
    assert_followed(&restart, &["0", "1", "2"])?;
    outages.assert_one_at_a_time("the rolling restart", &["0", "1", "2"]);
    let after = cli.brokers().await?;
    for (id, generation) in generations(&before) {
        assert_eq!(
            after[&id].generation,
            generation + 1,
            "broker {id} restarted once"
        );
    }
    assert!(
        during.len() > 50,
        "the producer kept sending: {} acknowledged, failures {:?}",
        during.len(),
        failed.iter().take(3).collect::<Vec<_>>()
    );
    acked.extend(during.iter().cloned());
    assert_all_acknowledged_read(&acked, &consume_all(&bootstrap, "events").await?);
    eprintln!(
        "rolling restart done after {:?}: {} messages acknowledged during it, {} failed",
        started.elapsed(),
        during.len(),
        failed.len()
    );

    // A server.properties option, rolled out one broker at a time.
    let before = after;
    let watching = watch(&before)?;
    let update = cli
        .run(&[
            "broker",
            "update",
            "0..2",
            "--option",
            "log.retention.hours=48",
        ])
        .await?;
    let outages = watching.finish();
    assert_followed(&update, &["0", "1", "2"])?;
    outages.assert_one_at_a_time("the update", &["0", "1", "2"]);
    let after = cli.brokers().await?;
    for (id, broker) in &after {
        assert_eq!(broker.config["options"]["log.retention.hours"], "48");
        assert!(!broker.update_pending, "broker {id} has nothing pending");
        assert_eq!(broker.generation, before[id].generation + 1);
    }
    assert_setting_everywhere(&bootstrap, &after, "log.retention.hours", "48").await?;
    eprintln!("update rolled out after {:?}", started.elapsed());

    // An option the broker refuses to start with: the rollout stops at the
    // first broker, says why, and takes no other broker down.
    let before = after;
    let watching = watch(&before)?;
    let broken = cli
        .run(&[
            "broker",
            "update",
            "0..2",
            "--option",
            "log.retention.hours=abc",
        ])
        .await?;
    let outages = watching.finish();
    assert_eq!(broken.code, Some(4), "a stopped plan exits 4: {broken}");
    let plan_id = broken.plan().context("the update names its plan")?;
    let plan = cli.plan(&plan_id).await?;
    let steps = plan["steps"].as_array().context("steps")?;
    let first = steps[0]["node"].as_str().context("first step")?.to_owned();
    assert_eq!(plan["state"], "paused", "{plan}");
    let reason = plan["reason"].as_str().unwrap_or_default();
    for expected in [
        format!("node {first} did not become ready"),
        "Invalid value abc for configuration log.retention.hours".to_owned(),
    ] {
        assert!(reason.contains(&expected), "{expected:?} in {reason:?}");
        assert!(broken.stderr.contains(&expected), "{broken}");
    }
    for step in &steps[1..] {
        assert_eq!(step["phase"], "pending", "{plan}");
    }
    let others: Vec<&str> = ["0", "1", "2"]
        .into_iter()
        .filter(|id| *id != first)
        .collect();
    let now = cli.brokers().await?;
    for id in &others {
        assert_eq!(
            now[*id].generation, before[*id].generation,
            "{id} untouched"
        );
        assert_eq!(now[*id].stage, "running");
    }
    outages.assert_one_at_a_time("the refused update", &[first.as_str()]);
    eprintln!("refused update paused after {:?}", started.elapsed());

    // The way out: abort, and go back to the value that runs. The broken
    // broker starts with it; the others withdraw the refused change they
    // still hold, so no later restart can bring it back.
    cli.ok(&["plan", "abort", &plan_id]).await?;
    let watching = watch(&now)?;
    let fixed = cli
        .run(&[
            "broker",
            "update",
            "0..2",
            "--option",
            "log.retention.hours=48",
        ])
        .await?;
    let outages = watching.finish();
    assert_followed(&fixed, &[])?;
    if let Some(sample) = outages.two_down_at_once() {
        // The broken broker is down at the start; no other may join it.
        panic!("brokers {:?} down at once during the fix", sample.down);
    }
    // The broken broker may still be on its way back when the plan ends (a
    // node that was not running takes the change at its next start).
    let after = cli
        .wait_for_brokers("every broker running", Duration::from_secs(180), |b| {
            b.values().all(|broker| broker.stage == "running")
        })
        .await?;
    assert_setting_everywhere(&bootstrap, &after, "log.retention.hours", "48").await?;
    for (id, broker) in &after {
        assert!(!broker.update_pending, "broker {id} has nothing pending");
    }
    for id in &others {
        assert_eq!(
            after[*id].generation, now[*id].generation,
            "{id} was not restarted: its refused change was only withdrawn"
        );
    }
    // Nothing acknowledged was lost along the way.
    assert_all_acknowledged_read(&acked, &consume_all(&bootstrap, "events").await?);

    // A fourth broker has no agent left under hostname=unique: `explain`
    // names each agent and why it was declined, rather than waiting silently.
    let fourth = cli
        .run(
            &[
                &["broker", "add", "3", "--constraints", "hostname=unique"][..],
                &support::SMALL_BROKER,
                &["--no-wait"],
            ]
            .concat(),
        )
        .await?;
    let deploy = fourth.plan().context("the add names its plan")?;
    let deadline = Instant::now() + DEADLINE;
    loop {
        let explained = cli.json(&["broker", "explain", "3"]).await?;
        let agents = explained["agents"].as_object().map_or(0, |a| a.len());
        if agents == 3 {
            break;
        }
        if Instant::now() > deadline {
            bail!("broker 3 is not explained for every agent: {explained}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let explain = cli.ok(&["broker", "explain", "3"]).await?;
    for agent in &agents {
        assert!(
            explain.stdout.contains(agent.as_str()),
            "{agent}: {explain}"
        );
    }
    assert!(explain.stdout.contains("hostname=unique"), "{explain}");
    cli.ok(&["plan", "abort", &deploy]).await?;
    cli.ok(&["broker", "remove", "3", "--yes"]).await?;

    scheduler.stop();
    eprintln!("local-cluster scenario took {:?}", started.elapsed());
    Ok(())
}
