//! How much time `kafka-mesos` adds to deploying three KRaft brokers and to a
//! rolling restart of them, against the same brokers run by hand.
//!
//! In one run, on the same machine:
//!
//! 1. through the framework: `kafka-mesos scheduler --master local:3`, then
//!    `kafka-mesos broker add 0..2` and `kafka-mesos broker restart 0..2`,
//!    each timed from the command's start to its exit (the plan complete);
//! 2. by hand: the same three brokers as plain processes, from the task
//!    documents the scheduler itself builds (same tarball, same rendered
//!    `server.properties` and `log4j.properties`, same command, same
//!    environment, same addresses and ports), started together and then
//!    restarted one at a time, active controller last. The checks are the
//!    framework's own: a broker is up when it is registered in the cluster
//!    metadata and in the ISR of every partition it hosts; one is taken
//!    down only when no partition would fall below `min.insync.replicas`.
//!    They are polled every 100 ms.
//!
//! Both restarts run against a topic with replication factor 3,
//! `min.insync.replicas=2` and the same messages in it. The ratios
//! framework/by-hand are printed for each round, and their medians over
//! `KAFKA_BENCH_ROUNDS` rounds (default 3) against the targets (deploy at
//! most 1.15, rolling restart at most 1.10). Run it with
//! `scripts/bench-kafka.sh`, which builds what it needs and sets
//! `KAFKA_BENCH_EXECUTOR` and `KAFKA_BENCH_TARBALL`.

#[path = "../tests/support/mod.rs"]
mod support;

use std::{
    collections::{BTreeMap, BTreeSet},
    net::{SocketAddr, TcpStream},
    path::{Path, PathBuf},
    process::{Child, ExitCode, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use executor_protocol::{Command as TaskCommand, TaskDocument};
use kafka_mesos::{
    KafkaAdmin, KafkaService, Mode, SafetyLevel, Settings, TopicSpec, cli as kafka_cli, controller,
    safety,
};
use scheduler_core::{constraints::Host, node::Placement};
use scheduler_runtime::{ArtifactRef, ClusterView, NodeView, Service, TaskContext};
use support::local::{Cli, Scheduler};

/// Deploy target: framework time over by-hand time.
const DEPLOY_TARGET: f64 = 1.15;
/// Rolling-restart target.
const RESTART_TARGET: f64 = 1.10;
/// How often the by-hand checks look.
const POLL: Duration = Duration::from_millis(100);
/// How long any one wait may take.
const DEADLINE: Duration = Duration::from_secs(300);
/// Messages in the topic before the restarts.
const MESSAGES: u64 = 2_000;
/// Resources of each local agent: room for one broker.
const AGENT: &str = "cpus:2;mem:2048;disk:4000;ports:[31000-31009]";
/// The brokers' settings, as `broker add` options.
const BROKER_OPTIONS: &[&str] = &[
    "--constraints",
    "hostname=unique",
    "--cpus",
    "0.5",
    "--mem",
    "640",
    "--heap",
    "256",
    "--disk",
    "1000",
    "--option",
    "num.partitions=3",
    "--option",
    "offsets.topic.replication.factor=3",
    "--option",
    "group.initial.rebalance.delay.ms=0",
];

fn main() -> ExitCode {
    // `cargo bench` passes `--bench`; there is nothing to filter.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn required_path(name: &str) -> anyhow::Result<PathBuf> {
    let path = std::env::var_os(name)
        .map(PathBuf::from)
        .with_context(|| format!("{name} is not set: run scripts/bench-kafka.sh"))?;
    anyhow::ensure!(path.is_file(), "{name}={} is not a file", path.display());
    Ok(path)
}

/// What one way of running the brokers took.
struct Times {
    deploy: Duration,
    restart: Duration,
}

async fn run() -> anyhow::Result<()> {
    let executor = required_path("KAFKA_BENCH_EXECUTOR")?;
    let tarball = required_path("KAFKA_BENCH_TARBALL")?;
    // One run on a small machine varies by a fifth either way: the figures
    // are the medians of several rounds.
    let rounds: usize =
        match std::env::var("KAFKA_BENCH_ROUNDS") {
            Ok(value) => value.parse().ok().filter(|n| *n > 0).with_context(|| {
                format!("KAFKA_BENCH_ROUNDS={value:?} is not a positive number")
            })?,
            Err(_) => 3,
        };
    let dir = tempfile::Builder::new().prefix("bench-kafka-").tempdir()?;
    // KAFKA_BENCH_KEEP=1 keeps the scheduler's log and the brokers' files.
    let keep = std::env::var_os("KAFKA_BENCH_KEEP").is_some_and(|v| v == "1");
    let _leftovers = support::local::Leftovers;

    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
    let mut deploys = Vec::new();
    let mut restarts = Vec::new();
    let mut rows = Vec::new();
    for round in 1..=rounds {
        let block = test_support::ports::agent_block();
        let round_dir = dir.path().join(format!("round-{round}"));
        eprintln!("== round {round}/{rounds}: through kafka-mesos (agents {block}..)");
        let (framework, brokers) =
            through_the_framework(&round_dir.join("framework"), &executor, &tarball, block).await?;
        eprintln!("== round {round}/{rounds}: by hand (the same brokers, addresses and ports)");
        let hand = by_hand(&round_dir.join("hand"), &tarball, &brokers).await?;
        let (deploy, restart) = (
            ratio(framework.deploy, hand.deploy),
            ratio(framework.restart, hand.restart),
        );
        eprintln!("round {round}: deploy ratio {deploy:.2}, rolling-restart ratio {restart:.2}");
        deploys.push(deploy);
        restarts.push(restart);
        rows.push((framework, hand));
    }
    if keep {
        eprintln!("files kept in {}", dir.keep().display());
    }

    let verdict = |r: f64, target: f64| if r <= target { "met" } else { "MISSED" };
    println!();
    println!("round   deploy: kafka-mesos  by hand  ratio   restart: kafka-mesos  by hand  ratio");
    for (i, (framework, hand)) in rows.iter().enumerate() {
        println!(
            "{:>5}   {:>17.1} s {:>6.1} s  {:>5.2}   {:>18.1} s {:>6.1} s  {:>5.2}",
            i + 1,
            framework.deploy.as_secs_f64(),
            hand.deploy.as_secs_f64(),
            deploys[i],
            framework.restart.as_secs_f64(),
            hand.restart.as_secs_f64(),
            restarts[i],
        );
    }
    let (deploy, restart) = (median(&deploys), median(&restarts));
    println!();
    println!("median of {rounds} rounds        ratio   target");
    println!(
        "deploy (3 brokers)           {deploy:>5.2}   <= {DEPLOY_TARGET:.2} {}",
        verdict(deploy, DEPLOY_TARGET)
    );
    println!(
        "rolling restart              {restart:>5.2}   <= {RESTART_TARGET:.2} {}",
        verdict(restart, RESTART_TARGET)
    );
    Ok(())
}

/// The middle value (the mean of the two middle ones for an even count).
fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len() % 2 == 0 {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    } else {
        sorted[mid]
    }
}

/// One broker as the scheduler ran it: its task document and where it listens.
struct BrokerTask {
    id: i32,
    document: TaskDocument,
    endpoint: SocketAddr,
}

async fn through_the_framework(
    dir: &Path,
    executor: &Path,
    tarball: &Path,
    block: std::net::Ipv4Addr,
) -> anyhow::Result<(Times, Vec<BrokerTask>)> {
    std::fs::create_dir_all(dir)?;
    let args: Vec<String> = [
        "--master",
        "local:3",
        "--local-first-agent-ip",
        &block.to_string(),
        "--local-resources",
        AGENT,
        "--local-state-dir",
        &dir.join("cluster").display().to_string(),
        "--kafka-tarball",
        &tarball.display().to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut scheduler = Scheduler::start_with_executor(dir, executor, &args).await?;
    let cli = Cli::new(&scheduler.api);

    let mut add = vec!["broker", "add", "0..2"];
    add.extend_from_slice(BROKER_OPTIONS);
    let started = Instant::now();
    cli.ok(&add).await?;
    let deploy = started.elapsed();
    eprintln!("deployed in {deploy:.1?}");

    let endpoints = cli.json(&["endpoints"]).await?;
    let bootstrap = endpoints["bootstrap_servers"]
        .as_str()
        .context("bootstrap servers")?
        .to_owned();
    fill_topic(&bootstrap).await?;

    let started = Instant::now();
    cli.ok(&["broker", "restart", "0..2"]).await?;
    let restart = started.elapsed();
    eprintln!("restarted in {restart:.1?}");

    let brokers = task_documents(&cli, tarball).await?;
    scheduler.stop();
    // The brokers by hand take the same ports: wait until they are free.
    for broker in &brokers {
        wait(&format!("broker {} to stop", broker.id), || async {
            TcpStream::connect_timeout(&broker.endpoint, POLL).is_err()
        })
        .await?;
    }
    Ok((Times { deploy, restart }, brokers))
}

/// The task documents the scheduler builds for its brokers, from what its
/// API shows (configuration, placement).
async fn task_documents(cli: &Cli, tarball: &Path) -> anyhow::Result<Vec<BrokerTask>> {
    let list = cli.json(&["broker", "list"]).await?;
    let mut cluster = ClusterView::default();
    for node in list["nodes"].as_array().context("nodes")? {
        let id = node["id"].as_str().context("id")?.to_owned();
        let ports: BTreeMap<String, u64> = serde_json::from_value(node["ports"].clone())?;
        let placement = Placement {
            agent_id: node["agent_id"].as_str().context("agent")?.to_owned(),
            host: Host {
                hostname: node["host"].as_str().context("host")?.to_owned(),
                attributes: serde_json::from_value(node["attributes"].clone())?,
            },
            persistence_id: String::new(),
            ports,
        };
        cluster.nodes.insert(
            id.clone(),
            NodeView {
                id,
                config: node["config"].clone(),
                placement: Some(placement),
                running: true,
                moved_from: None,
            },
        );
    }
    let mut settings = Settings::new(Mode::Kraft);
    settings.distribution_dir =
        Some(kafka_cli::tarball_top_dir(tarball).map_err(anyhow::Error::msg)?);
    let service = KafkaService::new(settings)?;
    let artifacts = BTreeMap::from([(
        "kafka".to_owned(),
        ArtifactRef {
            url: format!("file://{}", tarball.display()),
            sha256: String::new(),
        },
    )]);
    let mut brokers = Vec::new();
    for node in cluster.nodes.values() {
        let placement = node.placement.as_ref().context("placement")?;
        let document = service
            .task(&TaskContext {
                node,
                placement,
                cluster: &cluster,
                artifacts: &artifacts,
                volume_path: "data",
            })
            .map_err(anyhow::Error::msg)?;
        let endpoint =
            format!("{}:{}", placement.host.hostname, placement.ports["broker"]).parse()?;
        brokers.push(BrokerTask {
            id: node.id.parse()?,
            document,
            endpoint,
        });
    }
    Ok(brokers)
}

async fn fill_topic(bootstrap: &str) -> anyhow::Result<()> {
    let admin = KafkaAdmin::connect(bootstrap, Duration::from_secs(20))?;
    admin
        .create_topic(&TopicSpec {
            name: "bench".into(),
            partitions: 3,
            replication_factor: 3,
            configs: BTreeMap::from([("min.insync.replicas".to_owned(), "2".to_owned())]),
        })
        .await?;
    let producer = support::producer(bootstrap)?;
    support::produce(&producer, "bench", 0..MESSAGES).await?;
    Ok(())
}

/// Polls `probe` every [`POLL`] until it holds.
async fn wait<F: Future<Output = bool>>(
    what: &str,
    mut probe: impl FnMut() -> F,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + DEADLINE;
    while !probe().await {
        if Instant::now() > deadline {
            bail!("timed out waiting for {what}");
        }
        tokio::time::sleep(POLL).await;
    }
    Ok(())
}

/// A broker run by hand from its task document.
struct HandBroker {
    task: BrokerTask,
    dir: PathBuf,
    process: Option<Child>,
}

impl HandBroker {
    /// What the executor does before starting the service: unpack the
    /// tarball, write the configuration files, create the volume.
    fn prepare(&self, tarball: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(self.dir.join("data"))?;
        let file = std::fs::File::open(tarball)?;
        tar::Archive::new(flate2::read::GzDecoder::new(file)).unpack(&self.dir)?;
        for config in &self.task.document.config_files {
            std::fs::write(self.dir.join(&config.path), &config.content)?;
        }
        Ok(())
    }

    fn start(&mut self) -> anyhow::Result<()> {
        use std::os::unix::process::CommandExt as _;
        let TaskCommand::Shell(script) = &self.task.document.command else {
            bail!("broker {}: not a shell command", self.task.id);
        };
        let log = |name: &str| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.dir.join(name))
        };
        let child = std::process::Command::new("sh")
            .arg("-c")
            .arg(script)
            .current_dir(&self.dir)
            .envs(&self.task.document.environment)
            .stdin(Stdio::null())
            .stdout(log("stdout")?)
            .stderr(log("stderr")?)
            .process_group(0)
            .spawn()?;
        self.process = Some(child);
        Ok(())
    }

    /// SIGTERM (the executor's stop), then waits for the process to end.
    async fn stop(&mut self) -> anyhow::Result<()> {
        let Some(mut child) = self.process.take() else {
            return Ok(());
        };
        let pid = rustix::process::Pid::from_raw(i32::try_from(child.id())?).context("pid")?;
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        wait(&format!("broker {} to exit", self.task.id), || {
            let exited = matches!(child.try_wait(), Ok(Some(_)));
            async move { exited }
        })
        .await?;
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
        Ok(())
    }
}

impl Drop for HandBroker {
    fn drop(&mut self) {
        if let Some(mut child) = self.process.take() {
            if let Some(pid) = i32::try_from(child.id())
                .ok()
                .and_then(rustix::process::Pid::from_raw)
            {
                let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
            }
            let _ = child.wait();
        }
    }
}

/// Is `broker` registered and in the ISR of every partition it hosts?
async fn healthy(admin: &KafkaAdmin, broker: i32) -> bool {
    match admin.cluster_state().await {
        Ok(state) => safety::healthy_after_restart(SafetyLevel::Isr, broker, &state).ok,
        Err(_) => false,
    }
}

async fn by_hand(dir: &Path, tarball: &Path, tasks: &[BrokerTask]) -> anyhow::Result<Times> {
    let mut brokers: Vec<HandBroker> = tasks
        .iter()
        .map(|task| HandBroker {
            task: BrokerTask {
                id: task.id,
                document: task.document.clone(),
                endpoint: task.endpoint,
            },
            dir: dir.join(task.id.to_string()),
            process: None,
        })
        .collect();
    let bootstrap = tasks
        .iter()
        .map(|t| t.endpoint.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let ids: BTreeSet<i32> = tasks.iter().map(|t| t.id).collect();

    // Deploy: every broker prepared and started at once, as agents do.
    let started = Instant::now();
    let tarball = Arc::new(tarball.to_owned());
    let mut prepared = Vec::new();
    for broker in brokers.drain(..) {
        let tarball = tarball.clone();
        prepared.push(tokio::task::spawn_blocking(move || {
            broker.prepare(&tarball)?;
            let mut broker = broker;
            broker.start()?;
            anyhow::Ok(broker)
        }));
    }
    for handle in prepared {
        brokers.push(handle.await??);
    }
    // Listening first (the executor's readiness check), then the metadata.
    for task in tasks {
        let endpoint = task.endpoint;
        wait(&format!("broker {} to listen", task.id), || async move {
            TcpStream::connect_timeout(&endpoint, POLL).is_ok()
        })
        .await?;
    }
    let admin = KafkaAdmin::connect(&bootstrap, Duration::from_secs(5))?;
    for id in &ids {
        wait(&format!("broker {id} to register"), || healthy(&admin, *id)).await?;
    }
    let deploy = started.elapsed();
    eprintln!("deployed in {deploy:.1?}");

    fill_topic(&bootstrap).await?;

    // Rolling restart: the active controller last, each broker taken down
    // only when safe and back in every ISR before the next.
    let endpoints: Vec<(String, String)> = tasks
        .iter()
        .map(|t| (t.id.to_string(), t.endpoint.to_string()))
        .collect();
    let started = Instant::now();
    let active = controller::active_controller(&endpoints, true, Duration::from_secs(5)).await?;
    let order = controller::controller_last(
        ids.iter().map(i32::to_string).collect(),
        &active.to_string(),
    );
    for id in order {
        let id: i32 = id.parse()?;
        wait(&format!("broker {id} to be safe to stop"), || async {
            match admin.cluster_state().await {
                Ok(state) => safety::safe_to_stop(SafetyLevel::Isr, id, &ids, &state).ok,
                Err(_) => false,
            }
        })
        .await?;
        let broker = brokers
            .iter_mut()
            .find(|b| b.task.id == id)
            .context("broker")?;
        broker.stop().await?;
        broker.start()?;
        let endpoint = broker.task.endpoint;
        wait(&format!("broker {id} to listen"), || async move {
            TcpStream::connect_timeout(&endpoint, POLL).is_ok()
        })
        .await?;
        wait(&format!("broker {id} to be back"), || healthy(&admin, id)).await?;
    }
    let restart = started.elapsed();
    eprintln!("restarted in {restart:.1?}");
    // Torn down with SIGKILL (on drop): the last broker of a KRaft quorum
    // cannot shut down in a controlled way once the others are gone.
    drop(brokers);
    Ok(Times { deploy, restart })
}
