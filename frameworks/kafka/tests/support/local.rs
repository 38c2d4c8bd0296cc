//! The `kafka-mesos` binary driven as an operator drives it: a scheduler
//! process (on its embedded local cluster, or on a `mesos-local` process that
//! outlives it), CLI commands with their output and exit status, and a
//! watch on which brokers accept connections.

use std::{
    collections::{BTreeMap, BTreeSet},
    io::{BufRead, BufReader},
    net::{SocketAddr, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Stdio},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use rustix::process::{Pid, Signal};
use serde_json::Value;

/// How long a scheduler may take to answer its API after it starts.
const STARTUP: Duration = Duration::from_secs(60);

/// Broker processes seen in `broker list`, killed by [`Leftovers`] if a
/// failed test leaves them behind.
static BROKER_PIDS: Mutex<BTreeSet<u32>> = Mutex::new(BTreeSet::new());

fn signal_pid(pid: u32, signal: Signal) {
    if let Some(pid) = i32::try_from(pid).ok().and_then(Pid::from_raw) {
        let _ = rustix::process::kill_process(pid, signal);
    }
}

fn signal_group(pid: u32, signal: Signal) {
    if let Some(pid) = i32::try_from(pid).ok().and_then(Pid::from_raw) {
        let _ = rustix::process::kill_process_group(pid, signal);
    }
}

/// Kills, when dropped, broker processes that are still alive. A passing
/// test stops its brokers through the scheduler; this covers failures.
pub struct Leftovers;

impl Drop for Leftovers {
    fn drop(&mut self) {
        let pids = BROKER_PIDS.lock().map(|p| p.clone()).unwrap_or_default();
        for pid in pids {
            // Only a JVM running Kafka: the PID may have been reused.
            let is_broker = std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains("kafka.Kafka"));
            if is_broker {
                signal_group(pid, Signal::KILL);
            }
        }
    }
}

/// What a finished CLI command left.
#[derive(Debug)]
pub struct Run {
    /// Exit status (none when killed by a signal).
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error (progress lines and errors).
    pub stderr: String,
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

impl Run {
    fn of(output: std::process::Output) -> Self {
        Run {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// The plan a command started, from its `… (plan restart-2)` line.
    pub fn plan(&self) -> Option<String> {
        let text = format!("{}\n{}", self.stderr, self.stdout);
        let start = text.find("(plan ")? + "(plan ".len();
        let end = start + text[start..].find(')')?;
        Some(text[start..end].to_owned())
    }
}

/// The `kafka-mesos` command line, pointed at one scheduler.
#[derive(Clone, Debug)]
pub struct Cli {
    bin: PathBuf,
    api: String,
}

impl Cli {
    /// The binary under test, talking to the scheduler at `api`.
    pub fn new(api: &str) -> Self {
        Cli {
            bin: PathBuf::from(env!("CARGO_BIN_EXE_kafka-mesos")),
            api: api.to_owned(),
        }
    }

    fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(&self.bin);
        command
            .arg("--api")
            .arg(&self.api)
            .args(args)
            .env_remove("KAFKA_MESOS_API")
            .env_remove("SCHEDULER_API")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        command
    }

    /// Runs a command to its end.
    pub async fn run(&self, args: &[&str]) -> anyhow::Result<Run> {
        let output = self
            .command(args)
            .output()
            .await
            .with_context(|| format!("running kafka-mesos {}", args.join(" ")))?;
        Ok(Run::of(output))
    }

    /// Runs a command that must succeed.
    pub async fn ok(&self, args: &[&str]) -> anyhow::Result<Run> {
        let run = self.run(args).await?;
        if run.code != Some(0) {
            bail!("kafka-mesos {} failed: {run}", args.join(" "));
        }
        Ok(run)
    }

    /// Runs a command with `--json` that must succeed, and parses its output.
    pub async fn json(&self, args: &[&str]) -> anyhow::Result<Value> {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let run = self.ok(&all).await?;
        serde_json::from_str(&run.stdout)
            .with_context(|| format!("kafka-mesos {}: not JSON: {run}", all.join(" ")))
    }

    /// Starts a command and returns at once; [`finish`] collects it.
    pub fn spawn(&self, args: &[&str]) -> anyhow::Result<tokio::process::Child> {
        self.command(args)
            .spawn()
            .with_context(|| format!("starting kafka-mesos {}", args.join(" ")))
    }

    /// The brokers as `broker list --json` shows them.
    pub async fn brokers(&self) -> anyhow::Result<BTreeMap<String, Broker>> {
        let list = self.json(&["broker", "list"]).await?;
        let nodes = list["nodes"].as_array().context("nodes in broker list")?;
        let mut brokers = BTreeMap::new();
        for node in nodes {
            let broker = Broker::of(node).with_context(|| format!("reading {node}"))?;
            if let (Some(pid), Ok(mut pids)) = (broker.pid, BROKER_PIDS.lock()) {
                pids.insert(pid);
            }
            brokers.insert(broker.id.clone(), broker);
        }
        Ok(brokers)
    }

    /// A plan as `plan show ID --json` shows it.
    pub async fn plan(&self, id: &str) -> anyhow::Result<Value> {
        self.json(&["plan", "show", id]).await
    }

    /// Polls `broker list` until `done` holds for it.
    pub async fn wait_for_brokers(
        &self,
        what: &str,
        timeout: Duration,
        done: impl Fn(&BTreeMap<String, Broker>) -> bool,
    ) -> anyhow::Result<BTreeMap<String, Broker>> {
        let deadline = Instant::now() + timeout;
        loop {
            let brokers = self.brokers().await?;
            if done(&brokers) {
                return Ok(brokers);
            }
            if Instant::now() > deadline {
                bail!("timed out waiting for {what}; brokers: {brokers:#?}");
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

/// Collects a command started with [`Cli::spawn`].
pub async fn finish(child: tokio::process::Child) -> anyhow::Result<Run> {
    Ok(Run::of(child.wait_with_output().await?))
}

/// One broker in `broker list --json`.
#[derive(Clone, Debug)]
pub struct Broker {
    /// Broker ID.
    pub id: String,
    /// `running`, `launching`, `failed`, …
    pub stage: String,
    /// The agent's hostname.
    pub host: Option<String>,
    /// `host:port` clients use.
    pub endpoint: Option<String>,
    /// Launch generation of its task (one more per restart).
    pub generation: u64,
    /// The broker process, as its executor reports it.
    pub pid: Option<u32>,
    /// Whether a configuration change waits to be rolled out.
    pub update_pending: bool,
    /// The stored configuration.
    pub config: Value,
}

impl Broker {
    fn of(node: &Value) -> Option<Self> {
        Some(Broker {
            id: node["id"].as_str()?.to_owned(),
            stage: node["stage"].as_str()?.to_owned(),
            host: node["host"].as_str().map(str::to_owned),
            endpoint: node["endpoints"]["broker"].as_str().map(str::to_owned),
            generation: node["task"]["generation"].as_u64().unwrap_or(0),
            pid: node["health"]["pid"]
                .as_u64()
                .and_then(|p| u32::try_from(p).ok()),
            update_pending: node["update_pending"].as_bool().unwrap_or(false),
            config: node["config"].clone(),
        })
    }
}

/// A child process in its own process group with its output in a log file.
struct Process {
    child: Child,
    log: PathBuf,
}

impl Process {
    fn spawn(program: &Path, args: &[String], log: PathBuf, stdout: Stdio) -> anyhow::Result<Self> {
        use std::os::unix::process::CommandExt as _;
        let file = std::fs::File::create(&log)?;
        let child = std::process::Command::new(program)
            .args(args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(file)
            .process_group(0)
            .spawn()
            .with_context(|| format!("starting {}", program.display()))?;
        Ok(Process { child, log })
    }

    fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// `signal`, then SIGKILL to the group if it has not ended after `grace`.
    fn stop(&mut self, signal: Signal, grace: Duration) {
        if self.alive() {
            signal_pid(self.child.id(), signal);
            let deadline = Instant::now() + grace;
            while self.alive() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        signal_group(self.child.id(), Signal::KILL);
        let _ = self.child.wait();
    }

    fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

/// A `kafka-mesos scheduler` process; stopped with SIGTERM when dropped
/// (which, on the embedded local cluster, stops the brokers too).
pub struct Scheduler {
    args: Vec<String>,
    dir: PathBuf,
    process: Option<Process>,
    runs: usize,
    /// The scheduler's REST API.
    pub api: String,
}

impl Scheduler {
    /// Starts `kafka-mesos scheduler` with `args` (plus `--api-bind`,
    /// `--storage` and `--executor`, chosen here) and waits for its API.
    /// Logs and the state file live in `dir`.
    pub async fn start(dir: &Path, args: &[String]) -> anyhow::Result<Self> {
        let executor = test_support::binaries::binary("service-executor", "service-executor")?;
        Self::start_with_executor(dir, &executor, args).await
    }

    /// [`Scheduler::start`] with a given executor binary.
    pub async fn start_with_executor(
        dir: &Path,
        executor: &Path,
        args: &[String],
    ) -> anyhow::Result<Self> {
        let port = test_support::ports::free_port()?;
        let mut all = vec![
            "scheduler".to_owned(),
            "--api-bind".to_owned(),
            format!("127.0.0.1:{port}"),
            "--storage".to_owned(),
            dir.join("state.json").display().to_string(),
            "--executor".to_owned(),
            executor.display().to_string(),
        ];
        all.extend_from_slice(args);
        let mut scheduler = Scheduler {
            args: all,
            dir: dir.to_owned(),
            process: None,
            runs: 0,
            api: format!("http://127.0.0.1:{port}"),
        };
        scheduler.start_again().await?;
        Ok(scheduler)
    }

    /// Starts the process again with the same flags and state file.
    pub async fn start_again(&mut self) -> anyhow::Result<()> {
        self.runs += 1;
        let log = self.dir.join(format!("scheduler-{}.log", self.runs));
        self.process = Some(Process::spawn(
            Path::new(env!("CARGO_BIN_EXE_kafka-mesos")),
            &self.args,
            log,
            Stdio::null(),
        )?);
        let cli = Cli::new(&self.api);
        let deadline = Instant::now() + STARTUP;
        loop {
            if cli.run(&["--json", "broker", "list"]).await?.code == Some(0) {
                return Ok(());
            }
            let alive = self.process.as_mut().is_some_and(Process::alive);
            if !alive {
                bail!("the scheduler exited:\n{}", self.log_tail(30));
            }
            if Instant::now() > deadline {
                bail!(
                    "the scheduler did not answer within {STARTUP:?}:\n{}",
                    self.log_tail(30)
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Kills the scheduler with SIGKILL: no chance to save or clean up.
    pub fn kill(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.stop(Signal::KILL, Duration::ZERO);
        }
    }

    /// Stops the scheduler with SIGTERM (SIGKILL after a minute).
    pub fn stop(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.stop(Signal::TERM, Duration::from_secs(60));
        }
    }

    /// The end of the current (or last) run's log.
    pub fn log_tail(&self, lines: usize) -> String {
        match &self.process {
            Some(process) => process.log_tail(lines),
            None => String::new(),
        }
    }

    /// The whole log of run `run` (1 = the first start).
    pub fn log(&self, run: usize) -> String {
        std::fs::read_to_string(self.dir.join(format!("scheduler-{run}.log"))).unwrap_or_default()
    }
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A `mesos-local` process: a local Mesos cluster that outlives schedulers.
/// Stopped with SIGINT when dropped (it ends its executors and brokers).
pub struct MesosLocal {
    process: Process,
    /// The master's URL.
    pub master: String,
}

impl MesosLocal {
    /// Starts `agents` agents from `first_agent_ip` with `resources` each.
    pub fn start(
        dir: &Path,
        agents: usize,
        first_agent_ip: std::net::Ipv4Addr,
        resources: &str,
    ) -> anyhow::Result<Self> {
        let bin = test_support::binaries::binary("mesos-local", "mesos-local")?;
        let args: Vec<String> = [
            "--agents",
            &agents.to_string(),
            "--port",
            "0",
            "--first-agent-ip",
            &first_agent_ip.to_string(),
            "--resources",
            resources,
            "--state-dir",
            &dir.join("cluster").display().to_string(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let mut process = Process::spawn(&bin, &args, dir.join("mesos-local.log"), Stdio::piped())?;
        let stdout = process.child.stdout.take().context("mesos-local stdout")?;
        let (found, master) = std::sync::mpsc::channel();
        // Keep reading: a closed pipe would end it with SIGPIPE.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("MASTER=") {
                    let _ = found.send(url.trim_end_matches('/').to_owned());
                }
            }
        });
        let master = master.recv_timeout(STARTUP).with_context(|| {
            format!(
                "mesos-local printed no MASTER= line:\n{}",
                process.log_tail(20)
            )
        })?;
        Ok(MesosLocal { process, master })
    }
}

impl Drop for MesosLocal {
    fn drop(&mut self) {
        self.process.stop(Signal::INT, Duration::from_secs(30));
    }
}

/// A `zookeeper-mesos scheduler` process on a [`MesosLocal`] cluster: the
/// ZooKeeper ensemble Kafka's ZooKeeper mode runs against, deployed as an
/// operator deploys it. Stopped with SIGTERM when dropped; its servers run
/// on until the cluster stops.
pub struct ZooKeeperFramework {
    process: Process,
    bin: PathBuf,
    /// The scheduler's REST API.
    pub api: String,
}

impl ZooKeeperFramework {
    /// Starts the scheduler against `master`; its log and state live in `dir`.
    pub async fn start(dir: &Path, master: &str) -> anyhow::Result<Self> {
        let bin = test_support::binaries::binary("zookeeper-mesos", "zookeeper-mesos")?;
        let executor = test_support::binaries::binary("service-executor", "service-executor")?;
        let tarball = tokio::task::spawn_blocking(test_support::zookeeper::tarball).await??;
        let port = test_support::ports::free_port()?;
        let args: Vec<String> = vec![
            "scheduler".into(),
            "--master".into(),
            master.into(),
            "--api-bind".into(),
            format!("127.0.0.1:{port}"),
            "--storage".into(),
            dir.join("zookeeper-state.json").display().to_string(),
            "--executor".into(),
            executor.display().to_string(),
            "--zookeeper-tarball".into(),
            tarball.display().to_string(),
        ];
        let mut framework = ZooKeeperFramework {
            process: Process::spawn(
                &bin,
                &args,
                dir.join("zookeeper-scheduler.log"),
                Stdio::null(),
            )?,
            bin,
            api: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + STARTUP;
        loop {
            if framework.run(&["server", "list"]).await?.code == Some(0) {
                return Ok(framework);
            }
            if !framework.process.alive() || Instant::now() > deadline {
                bail!(
                    "the zookeeper-mesos scheduler did not come up:\n{}",
                    framework.process.log_tail(30)
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Runs `zookeeper-mesos ARGS…` against this scheduler.
    pub async fn run(&self, args: &[&str]) -> anyhow::Result<Run> {
        let output = tokio::process::Command::new(&self.bin)
            .arg("--api")
            .arg(&self.api)
            .args(args)
            .env_remove("ZOOKEEPER_MESOS_API")
            .env_remove("SCHEDULER_API")
            .stdin(Stdio::null())
            .output()
            .await
            .with_context(|| format!("running zookeeper-mesos {}", args.join(" ")))?;
        Ok(Run::of(output))
    }

    /// `server add IDS ARGS…`, followed to its end, then the connect
    /// string from the endpoints.
    pub async fn deploy(&self, ids: &str, args: &[&str]) -> anyhow::Result<String> {
        let mut add = vec!["server", "add", ids];
        add.extend_from_slice(args);
        let run = self.run(&add).await?;
        if run.code != Some(0) {
            bail!(
                "the ZooKeeper ensemble did not deploy: {run}\nscheduler log:\n{}",
                self.process.log_tail(30)
            );
        }
        let run = self.run(&["--json", "endpoints"]).await?;
        let endpoints: Value = serde_json::from_str(&run.stdout)
            .with_context(|| format!("zookeeper-mesos endpoints: not JSON: {run}"))?;
        endpoints["connect"]
            .as_str()
            .map(str::to_owned)
            .with_context(|| format!("no connect string in {endpoints}"))
    }
}

impl Drop for ZooKeeperFramework {
    fn drop(&mut self) {
        self.process.stop(Signal::TERM, Duration::from_secs(30));
    }
}

/// One look at the brokers: which did not accept a connection.
#[derive(Clone, Debug)]
pub struct Sample {
    /// When, since the watch started.
    pub at: Duration,
    /// Brokers that refused or did not answer.
    pub down: BTreeSet<String>,
}

/// Probes every broker's client port about ten times a second, as a
/// client would see the cluster, until [`Watch::finish`].
pub struct Watch {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Vec<Sample>>,
}

/// Starts watching `brokers` (ID → `host:port`).
pub fn watch(brokers: &BTreeMap<String, Broker>) -> anyhow::Result<Watch> {
    let targets: Vec<(String, SocketAddr)> = brokers
        .values()
        .map(|b| {
            let endpoint = b.endpoint.as_deref().context("broker endpoint")?;
            Ok((b.id.clone(), endpoint.parse::<SocketAddr>()?))
        })
        .collect::<anyhow::Result<_>>()?;
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let thread = std::thread::spawn(move || {
        let started = Instant::now();
        let mut samples = Vec::new();
        while !flag.load(Ordering::Relaxed) {
            let down = targets
                .iter()
                .filter(|(_, addr)| {
                    TcpStream::connect_timeout(addr, Duration::from_secs(1)).is_err()
                })
                .map(|(id, _)| id.clone())
                .collect();
            samples.push(Sample {
                at: started.elapsed(),
                down,
            });
            std::thread::sleep(Duration::from_millis(100));
        }
        samples
    });
    Ok(Watch { stop, thread })
}

impl Watch {
    /// Stops watching and returns what was seen.
    pub fn finish(self) -> Outages {
        self.stop.store(true, Ordering::Relaxed);
        Outages {
            samples: self.thread.join().unwrap_or_default(),
        }
    }
}

/// What a [`Watch`] saw.
#[derive(Debug)]
pub struct Outages {
    /// Every look, in order.
    pub samples: Vec<Sample>,
}

impl Outages {
    /// Brokers seen down at least once.
    pub fn went_down(&self) -> BTreeSet<String> {
        self.samples
            .iter()
            .flat_map(|s| s.down.iter().cloned())
            .collect()
    }

    /// The first look at which more than one broker was down, if any.
    pub fn two_down_at_once(&self) -> Option<&Sample> {
        self.samples.iter().find(|s| s.down.len() > 1)
    }

    /// How many separate times `broker` went down.
    pub fn times_down(&self, broker: &str) -> usize {
        let mut times = 0;
        let mut was_down = false;
        for sample in &self.samples {
            let down = sample.down.contains(broker);
            if down && !was_down {
                times += 1;
            }
            was_down = down;
        }
        times
    }

    /// Asserts the brokers went down one at a time and that exactly
    /// `expected` did; `what` names the operation in failures.
    pub fn assert_one_at_a_time(&self, what: &str, expected: &[&str]) {
        assert!(
            self.samples.len() > 20,
            "{what}: too few looks at the brokers ({})",
            self.samples.len()
        );
        if let Some(sample) = self.two_down_at_once() {
            panic!(
                "{what}: brokers {:?} were down at the same time ({:?} into it)",
                sample.down, sample.at
            );
        }
        let expected: BTreeSet<String> = expected.iter().map(|s| s.to_string()).collect();
        assert_eq!(
            self.went_down(),
            expected,
            "{what}: the brokers that went down"
        );
    }
}

/// Every line of `text` that contains `needle`.
pub fn lines_with<'a>(text: &'a str, needle: &str) -> Vec<&'a str> {
    text.lines().filter(|l| l.contains(needle)).collect()
}
