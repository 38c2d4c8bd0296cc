//! Shared pieces of the Kafka end-to-end tests: the real Mesos rig with the
//! real executor and the real Kafka tarball, a runtime around `KafkaService`,
//! waits on snapshots, and rdkafka producers and consumers.

#![allow(dead_code)]

pub mod local;

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    hash::{DefaultHasher, Hash, Hasher},
    path::PathBuf,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use anyhow::{Context, bail};
use futures::future::BoxFuture;
use kafka_mesos::{KafkaService, Settings};
use rdkafka::{
    ClientConfig, Message, Offset, TopicPartitionList,
    consumer::{BaseConsumer, Consumer},
    producer::{FutureProducer, FutureRecord},
};
use scheduler_core::{node::Stage, plan::PlanState};
use scheduler_runtime::{
    ArtifactRef, Command, RuntimeConfig, RuntimeHandle, SchedulerState, Snapshot, StateSink,
};
use test_support::rig::{MesosRig, RigOptions};
use tokio::sync::watch;

/// How long any one condition may take.
pub const DEADLINE: Duration = Duration::from_secs(120);

/// `broker add` flags for a broker small enough for three on one test agent.
pub const SMALL_BROKER: [&str; 8] = [
    "--cpus", "0.5", "--mem", "640", "--heap", "256", "--disk", "1000",
];

/// `broker add 0..2` of three small brokers, one per host, ready for a
/// replication factor of 3 and quick consumer groups, then `extra`.
pub fn add_three_brokers<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["broker", "add", "0..2", "--constraints", "hostname=unique"];
    args.extend(SMALL_BROKER);
    args.extend([
        "--option",
        "offsets.topic.replication.factor=3",
        "--option",
        "group.initial.rebalance.delay.ms=0",
        "--timeout",
        "4m",
    ]);
    args.extend(extra);
    args
}

/// Keeps the last saved state in memory.
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

/// The Kafka tarball built by `packaging/`, with its sha256.
pub fn kafka_tarball() -> anyhow::Result<ArtifactRef> {
    let path = kafka_tarball_path()?;
    let sha_file = format!("{}.sha256", path.display());
    let sha256 = std::fs::read_to_string(&sha_file)
        .with_context(|| format!("reading {sha_file}"))?
        .split_whitespace()
        .next()
        .context("empty sha256 file")?
        .to_owned();
    Ok(ArtifactRef {
        url: format!("file://{}", path.display()),
        sha256,
    })
}

/// The path of the Kafka tarball built (or found in the cache) by `packaging/`.
pub fn kafka_tarball_path() -> anyhow::Result<PathBuf> {
    Ok(test_support::packaging::service_tarball("kafka")?)
}

/// Serves the executor binary over HTTP on 127.0.0.1 (as the scheduler's
/// artifact server does).
pub struct ExecutorServer {
    pub url: String,
    _dir: tempfile::TempDir,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for ExecutorServer {
    fn drop(&mut self) {
        self.server.abort();
    }
}

pub async fn executor_server() -> anyhow::Result<ExecutorServer> {
    let executor = test_support::binaries::binary("service-executor", "service-executor")?;
    let dir = tempfile::tempdir()?;
    let copy = dir.path().join("service-executor");
    std::fs::copy(&executor, &copy)?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/service-executor", listener.local_addr()?);
    let app = axum::Router::new().route(
        "/service-executor",
        axum::routing::get(move || {
            let copy = copy.clone();
            async move {
                tokio::fs::read(copy)
                    .await
                    .map_err(|_| axum::http::StatusCode::NOT_FOUND)
            }
        }),
    );
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(ExecutorServer {
        url,
        _dir: dir,
        server,
    })
}

/// A scheduler runtime around `KafkaService` on the rig, and everything it
/// needs kept alive. Dropping it kills any broker process still running.
pub struct Framework {
    pub handle: RuntimeHandle,
    pub rig: MesosRig,
    pub pids: Arc<Mutex<BTreeSet<u32>>>,
    _executor: ExecutorServer,
    _leader: watch::Sender<Option<url::Url>>,
    _pid_watch: tokio::task::JoinHandle<()>,
}

impl Drop for Framework {
    fn drop(&mut self) {
        // Brokers run in their own process groups; an executor stopped
        // abruptly with the rig would leave them behind.
        if let Ok(pids) = self.pids.lock() {
            for pid in pids.iter() {
                if let Some(pid) = rustix::process::Pid::from_raw(*pid as i32) {
                    let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
                }
            }
        }
    }
}

/// Starts the rig (one agent with room for `brokers` brokers) and the runtime.
pub async fn start(settings: Settings, step_timeout: Duration) -> anyhow::Result<Framework> {
    let rig = tokio::task::spawn_blocking(|| {
        MesosRig::start(
            RigOptions::default()
                .agents(1)
                .resources("cpus:8;mem:8192;disk:20000;ports:[31000-31099]"),
        )
    })
    .await??;
    let executor = executor_server().await?;
    let mut config = RuntimeConfig::new("kafka", executor.url.clone());
    config.artifacts = BTreeMap::from([("kafka".to_owned(), kafka_tarball()?)]);
    config.failover_timeout = Duration::from_secs(60);
    config.step_timeout = step_timeout;
    config.policy.initial_delay_ms = 500;
    config.policy.max_delay_ms = 2_000;
    config.executor_env.insert("RUST_LOG".into(), "info".into());
    let master = url::Url::parse(&format!("{}/", rig.endpoint()))?;
    let (leader, leader_rx) = watch::channel(Some(master));
    let (handle, _task) = scheduler_runtime::start(
        Arc::new(KafkaService::new(settings)?),
        config,
        SchedulerState::new("kafka-e2e"),
        Arc::new(MemorySink::default()),
        leader_rx,
    )?;
    // Remember every broker process the executors report, for the cleanup.
    let pids = Arc::new(Mutex::new(BTreeSet::new()));
    let mut watch = handle.watch();
    let seen = pids.clone();
    let pid_watch = tokio::spawn(async move {
        loop {
            let snapshot = watch.borrow_and_update().clone();
            if let Ok(mut seen) = seen.lock() {
                seen.extend(snapshot.health.values().filter_map(|h| h.pid));
            }
            if watch.changed().await.is_err() {
                return;
            }
        }
    });
    Ok(Framework {
        handle,
        rig,
        pids,
        _executor: executor,
        _leader: leader,
        _pid_watch: pid_watch,
    })
}

/// Waits until `done` holds for a snapshot; fails with the story so far.
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
                        "{}: {:?} {:?} failures={}",
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

pub fn plan_state(snapshot: &Snapshot, id: &str) -> Option<PlanState> {
    snapshot
        .state
        .plans
        .iter()
        .find(|p| p.id == id)
        .map(|p| p.state.clone())
}

pub fn generations(snapshot: &Snapshot) -> BTreeMap<String, u64> {
    snapshot
        .state
        .nodes
        .values()
        .map(|n| (n.id.clone(), n.generation))
        .collect()
}

/// Adds brokers `ids` with `config` and waits for the deploy plan.
pub async fn deploy(
    handle: &RuntimeHandle,
    ids: &[&str],
    config: serde_json::Value,
) -> anyhow::Result<Arc<Snapshot>> {
    let ids: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
    let plan = handle
        .ask(|reply| Command::Add {
            ids: ids.clone(),
            config,
            reply,
        })
        .await?;
    until(handle, "the deploy plan", |s| {
        plan_state(s, &plan) == Some(PlanState::Complete)
    })
    .await
}

/// Removes every broker and waits until they are gone (clean shutdowns).
pub async fn remove_all(handle: &RuntimeHandle) -> anyhow::Result<()> {
    let ids: Vec<String> = handle.snapshot().state.nodes.keys().cloned().collect();
    handle
        .ask(|reply| Command::Remove {
            ids: ids.clone(),
            reply,
        })
        .await?;
    until(handle, "every broker removed", |s| {
        ids.iter().all(|id| stage(s, id) == Some(Stage::Removed))
    })
    .await?;
    Ok(())
}

pub fn producer(bootstrap: &str) -> anyhow::Result<FutureProducer> {
    Ok(ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("message.timeout.ms", "120000")
        .set("linger.ms", "5")
        .create()?)
}

/// The payload of message `i`, and the checksum of a set of payloads.
pub fn payload(i: u64) -> String {
    format!("message-{i:08}")
}

pub fn checksum<'a>(payloads: impl IntoIterator<Item = &'a String>) -> u64 {
    payloads.into_iter().fold(0u64, |sum, p| {
        let mut h = DefaultHasher::new();
        p.hash(&mut h);
        sum.wrapping_add(h.finish())
    })
}

/// Produces messages `range` one after another, each acknowledged by all
/// in-sync replicas; returns the acknowledged payloads.
pub async fn produce(
    producer: &FutureProducer,
    topic: &str,
    range: std::ops::Range<u64>,
) -> anyhow::Result<Vec<String>> {
    let mut acked = Vec::new();
    for i in range {
        let value = payload(i);
        let key = i.to_string();
        producer
            .send(
                FutureRecord::to(topic).key(&key).payload(&value),
                Duration::from_secs(30),
            )
            .await
            .map_err(|(e, _)| anyhow::anyhow!("message {i} not acknowledged: {e}"))?;
        acked.push(value);
    }
    Ok(acked)
}

/// A producer that sends until stopped, counting acknowledgements and failures.
pub struct Background {
    pub stop: Arc<AtomicBool>,
    pub task: tokio::task::JoinHandle<(Vec<String>, Vec<String>)>,
}

pub fn produce_until_stopped(producer: FutureProducer, topic: &str, first: u64) -> Background {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let topic = topic.to_owned();
    let task = tokio::spawn(async move {
        let mut acked = Vec::new();
        let mut failed = Vec::new();
        let mut i = first;
        while !flag.load(Ordering::Relaxed) {
            let value = payload(i);
            let key = i.to_string();
            match producer
                .send(
                    FutureRecord::to(&topic).key(&key).payload(&value),
                    Duration::from_secs(30),
                )
                .await
            {
                Ok(_) => acked.push(value),
                Err((e, _)) => failed.push(format!("{value}: {e}")),
            }
            i += 1;
        }
        (acked, failed)
    });
    Background { stop, task }
}

/// Reads every partition of `topic` from the beginning to its high
/// watermark; returns how many times each payload was read.
pub async fn consume_all(bootstrap: &str, topic: &str) -> anyhow::Result<HashMap<String, usize>> {
    let bootstrap = bootstrap.to_owned();
    let topic = topic.to_owned();
    tokio::task::spawn_blocking(move || -> anyhow::Result<HashMap<String, usize>> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .set("group.id", "kafka-mesos-e2e-reader")
            .set("enable.auto.commit", "false")
            .create()?;
        let metadata = consumer.fetch_metadata(Some(&topic), Duration::from_secs(20))?;
        let partitions: Vec<i32> = metadata
            .topics()
            .first()
            .context("topic in metadata")?
            .partitions()
            .iter()
            .map(|p| p.id())
            .collect();
        let mut ends = BTreeMap::new();
        let mut assignment = TopicPartitionList::new();
        for p in &partitions {
            let (_, high) = consumer.fetch_watermarks(&topic, *p, Duration::from_secs(20))?;
            ends.insert(*p, high);
            assignment.add_partition_offset(&topic, *p, Offset::Beginning)?;
        }
        consumer.assign(&assignment)?;
        let mut positions: BTreeMap<i32, i64> = partitions.iter().map(|p| (*p, 0)).collect();
        let mut seen = HashMap::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while positions.iter().any(|(p, at)| *at < ends[p]) {
            if std::time::Instant::now() > deadline {
                bail!("consumer stuck at {positions:?}, ends {ends:?}");
            }
            match consumer.poll(Duration::from_millis(500)) {
                Some(Ok(message)) => {
                    positions.insert(message.partition(), message.offset() + 1);
                    let value =
                        String::from_utf8_lossy(message.payload().unwrap_or_default()).into_owned();
                    *seen.entry(value).or_default() += 1;
                }
                Some(Err(e)) => bail!("consume error: {e}"),
                None => {}
            }
        }
        Ok(seen)
    })
    .await?
}

/// Asserts every acknowledged payload was read exactly once (count and checksum).
pub fn assert_all_acknowledged_read(acked: &[String], read: &HashMap<String, usize>) {
    let missing: Vec<&String> = acked.iter().filter(|p| !read.contains_key(*p)).collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged messages were never read, e.g. {:?}",
        missing.len(),
        missing.iter().take(5).collect::<Vec<_>>()
    );
    let duplicated: Vec<(&String, &usize)> = read.iter().filter(|(_, n)| **n > 1).collect();
    assert!(duplicated.is_empty(), "duplicates: {duplicated:?}");
    let acked_set: std::collections::HashSet<&String> = acked.iter().collect();
    let read_acked: Vec<&String> = read.keys().filter(|p| acked_set.contains(p)).collect();
    assert_eq!(
        read_acked.len(),
        acked.len(),
        "count of acknowledged messages read"
    );
    assert_eq!(
        checksum(read_acked.into_iter()),
        checksum(acked.iter()),
        "checksum of acknowledged messages read"
    );
}
