//! The scheduler process every framework shares.
//!
//! `<framework> scheduler [flags]` parses [`SchedulerArgs`], then [`run`]:
//! finds the leading master (`http://…`, `zk://…`) or starts the embedded
//! local cluster (`local[:N]`), loads the state from its store (refusing to
//! start on a state it cannot read), starts the runtime and serves the REST
//! API and the artifacts (executor binary, service tarballs) until SIGINT or
//! SIGTERM, or until the runtime stops for good.
//!
//! It holds no scheduling logic of its own; the service comes in as a
//! [`Service`] and its own flags are turned into artifacts and settings by the
//! framework's binary before calling [`run`].

pub mod java_runtime;
pub mod tarball;

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    str::FromStr,
    sync::Arc,
    time::Duration,
};

use anyhow::{Context as _, bail};
use futures::future::BoxFuture;
use java_runtime::JavaRuntime;
use mesos_proto::ContentType;
use scheduler_api::{ApiState, Artifacts};
use scheduler_runtime::{ArtifactRef, RuntimeConfig, SchedulerState, Service, StateSink};
use state_store::{Schema, StateStore, StorageSpec};
use tokio::sync::{Mutex, watch};
use tracing::{error, info, warn};

/// The served Java runtime's artifact name (kept apart from the service's artifacts).
const JAVA_RUNTIME_ARTIFACT: &str = "java-runtime";
/// How often freed heap pages are handed back to the system.
const HEAP_RELEASE_INTERVAL: Duration = Duration::from_secs(10);

/// The version of the persisted state's schema.
pub const STATE_SCHEMA_VERSION: u32 = 1;

/// Where the Mesos master is.
#[derive(Clone, Debug, PartialEq)]
pub enum Master {
    /// The embedded local cluster with this many agents.
    Local(usize),
    /// A real master: `http://host:port` or `zk://…/mesos`.
    Remote(mesos_detector::MasterSpec),
}

impl FromStr for Master {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text == "local" {
            return Ok(Master::Local(3));
        }
        if let Some(count) = text.strip_prefix("local:") {
            return match count.parse::<usize>() {
                Ok(n) if (1..=250).contains(&n) => Ok(Master::Local(n)),
                _ => Err(format!(
                    "--master {text}: the number of local agents must be 1 to 250 (for example local:3)"
                )),
            };
        }
        text.parse()
            .map(Master::Remote)
            .map_err(|e: mesos_detector::Error| {
                format!("{e} (or local[:N] for the embedded local cluster)")
            })
    }
}

/// One `NAME=VALUE` flag value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pair(pub String, pub String);

impl FromStr for Pair {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.split_once('=') {
            Some((name, value)) if !name.is_empty() && !value.is_empty() => {
                Ok(Pair(name.into(), value.into()))
            }
            _ => Err(format!("{text:?} is not NAME=VALUE")),
        }
    }
}

/// The flags of `<framework> scheduler`.
#[derive(Clone, Debug, clap::Args)]
pub struct SchedulerArgs {
    /// The Mesos master: http://HOST:PORT, zk://HOST:PORT[,HOST:PORT]/PATH, or local[:N] for the embedded local cluster with N agents.
    #[arg(long, env = "MESOS_MASTER")]
    pub master: Master,

    /// Where the scheduler keeps its state: a file path (file:///… also works) or zk://HOST:PORT[,…]/PATH. Default: ./<name>-state.json
    #[arg(long, env = "SCHEDULER_STORAGE")]
    pub storage: Option<String>,

    /// The framework's name (also the prefix of task IDs). Default: the service's name.
    #[arg(long)]
    pub name: Option<String>,

    /// The role reservations are made for. Default: the framework's name.
    #[arg(long)]
    pub role: Option<String>,

    /// The principal of the framework, its reservations and volumes. Default: the framework's name.
    #[arg(long)]
    pub principal: Option<String>,

    /// A file holding the principal's secret, for masters that authenticate frameworks.
    #[arg(long, env = "SCHEDULER_SECRET_FILE")]
    pub secret_file: Option<PathBuf>,

    /// The Unix user executors run as. Default: the user running the scheduler.
    #[arg(long)]
    pub user: Option<String>,

    /// How long the master keeps the framework's tasks while the scheduler is away, in seconds.
    #[arg(long, default_value_t = 7 * 24 * 3600)]
    pub failover_timeout: u64,

    /// Address the REST API and artifact server listen on.
    #[arg(long, default_value = "127.0.0.1:7000", env = "SCHEDULER_API_BIND")]
    pub api_bind: SocketAddr,

    /// Port of the REST API, overriding the port of --api-bind (for Marathon's $PORT0).
    #[arg(long, env = "PORT0")]
    pub api_port: Option<u16>,

    /// Host name agents use to download artifacts from this scheduler. Default: the --api-bind address, or this host's name when it binds every address.
    #[arg(long, env = "SCHEDULER_ADVERTISE_HOST")]
    pub advertise_host: Option<String>,

    /// Bearer token the REST API requires (all routes but /health and /artifacts).
    #[arg(long, env = "SCHEDULER_API_TOKEN", hide_env_values = true)]
    pub api_token: Option<String>,

    /// The executor binary served to agents. Default: service-executor next to this binary.
    #[arg(long, env = "SCHEDULER_EXECUTOR")]
    pub executor: Option<PathBuf>,

    /// Wire format towards the master.
    #[arg(long, default_value = "protobuf", value_parser = ["protobuf", "json"])]
    pub content_type: String,

    /// How long one step of a plan (one node's restart) may take, in seconds, before the plan pauses.
    #[arg(long, default_value_t = 600)]
    pub step_timeout: u64,

    /// Resources of each local agent (with --master local), in Mesos' --resources syntax.
    #[arg(long, default_value = "cpus:4;mem:8192;disk:20000;ports:[31000-32000]")]
    pub local_resources: String,

    /// Directory of the local cluster's reservations, volumes and sandboxes (with --master local). Default: a temporary directory.
    #[arg(long)]
    pub local_state_dir: Option<PathBuf>,

    /// Loopback address of the first local agent (with --master local); the others follow it. Give two local clusters on one machine different blocks, such as 127.0.1.2.
    #[arg(long, default_value_t = mesos_local::DEFAULT_FIRST_AGENT_IP)]
    pub local_first_agent_ip: std::net::Ipv4Addr,

    /// The Java runtime handed to every task (by default tasks use the agents' own java).
    #[command(flatten)]
    pub java_runtime: java_runtime::JavaRuntimeArgs,
}

/// What the framework's binary adds to the shared flags.
pub struct Launch {
    /// The service.
    pub service: Arc<dyn Service>,
    /// Files to serve to agents, by artifact name (e.g. the Kafka tarball).
    pub served: Vec<(String, PathBuf)>,
    /// Artifacts downloaded from elsewhere (name → URL and sha256).
    pub external: Vec<(String, ArtifactRef)>,
    /// Framework-wide service settings to set on first start (e.g. a cluster ID), if unset.
    pub settings: Option<serde_json::Value>,
}

struct StoreSink(Mutex<StateStore<SchedulerState>>);

impl StateSink for StoreSink {
    fn save<'a>(&'a self, state: &'a SchedulerState) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            self.0
                .lock()
                .await
                .save(state)
                .await
                .map_err(|e| e.to_string())
        })
    }
}

/// The async runtime a framework's binary runs on. The allocator is set to
/// one arena first: a scheduler's threads mostly wait, and per-thread arenas
/// each kept their own freed peak (16 arenas, 27 MB resident for 5 MB live).
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    heap_release::single_arena();
    tokio::runtime::Runtime::new()
}

/// Logs to stderr, filtered by `RUST_LOG` (default `info`).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

fn default_executor() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot locate this binary")?;
    let candidate = exe
        .parent()
        .map(|dir| dir.join("service-executor"))
        .context("this binary has no directory")?;
    if candidate.is_file() {
        Ok(candidate)
    } else {
        bail!(
            "no executor binary at {}: build it (cargo build -p service-executor) or pass --executor PATH",
            candidate.display()
        )
    }
}

fn advertise_host(args: &SchedulerArgs) -> String {
    if let Some(host) = &args.advertise_host {
        return host.clone();
    }
    let ip = args.api_bind.ip();
    if !ip.is_unspecified() {
        return ip.to_string();
    }
    std::env::var("HOST")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "127.0.0.1".into())
}

async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}

/// Runs the scheduler until a signal arrives or the runtime stops.
pub async fn run(args: SchedulerArgs, launch: Launch) -> anyhow::Result<()> {
    let service = launch.service;
    let name = args
        .name
        .clone()
        .unwrap_or_else(|| service.name().to_owned());

    // The state first: a state we cannot read stops us before anything else.
    let storage = args
        .storage
        .clone()
        .unwrap_or_else(|| format!("./{name}-state.json"));
    let spec: StorageSpec = storage
        .parse()
        .map_err(|e| anyhow::anyhow!("--storage {storage}: {e}"))?;
    let mut store: StateStore<SchedulerState> =
        StateStore::open(&spec, name.clone(), Schema::new(STATE_SCHEMA_VERSION));
    let mut state = match store.load().await {
        Ok(Some(state)) => {
            info!(location = %store.location(), nodes = state.nodes.len(),
                  framework_id = ?state.framework_id, "state loaded");
            state
        }
        Ok(None) => {
            info!(location = %store.location(), "no state yet: starting a new framework");
            SchedulerState::new(uuid::Uuid::new_v4().simple().to_string())
        }
        Err(error) => bail!("cannot start: {error}"),
    };
    if state.settings.is_null()
        && let Some(settings) = launch.settings
    {
        state.settings = settings;
    }

    // The API listener, bound early so artifact URLs carry the real port.
    let mut bind = args.api_bind;
    if let Some(port) = args.api_port {
        bind.set_port(port);
    }
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .with_context(|| format!("cannot listen on {bind} (--api-bind / --api-port)"))?;
    let port = listener.local_addr()?.port();
    let base_url = format!("http://{}:{port}", advertise_host(&args));

    // Artifacts served by this scheduler.
    let executor = match &args.executor {
        Some(path) => path.clone(),
        None => default_executor()?,
    };
    let mut served = vec![("service-executor".to_owned(), executor)];
    served.extend(launch.served.iter().cloned());
    let mut java_runtime = None;
    match args.java_runtime.runtime().map_err(anyhow::Error::msg)? {
        Some(JavaRuntime::Served(path)) => {
            info!(tarball = %path.display(), "serving a Java runtime to every task");
            served.push((JAVA_RUNTIME_ARTIFACT.to_owned(), path));
        }
        Some(JavaRuntime::External(reference)) => {
            info!(url = %reference.url, "agents download a Java runtime for every task");
            java_runtime = Some(reference);
        }
        None => {}
    }
    // Files are served under their own file name: the executor recognises
    // archives by the URL's suffix (.tar.gz, .tgz, .zip). Services look them
    // up by their logical name.
    let mut artifacts = Artifacts::new();
    let mut references = std::collections::BTreeMap::new();
    for (artifact, path) in served {
        let file_name = path
            .file_name()
            .and_then(|n| n.to_str())
            .map(str::to_owned)
            .with_context(|| format!("artifact {artifact}: {} has no file name", path.display()))?;
        artifacts
            .add(file_name.clone(), &path)
            .map_err(|e| anyhow::anyhow!("artifact {artifact} ({}): {e}", path.display()))?;
        if let Some(reference) = artifacts.reference(&base_url, &file_name) {
            references.insert(artifact, reference);
        }
    }
    for (artifact, reference) in launch.external {
        references.insert(artifact, reference);
    }

    // The master: detected, or the local cluster started here.
    let mut local = None;
    // Detection runs as long as this is alive.
    let mut detector = None;
    let leader = match &args.master {
        Master::Local(agents) => {
            let mut config = mesos_local::ClusterConfig::with_agents(*agents);
            for agent in &mut config.agents {
                agent.resources = args.local_resources.clone();
            }
            config.state_dir = args.local_state_dir.clone();
            config.first_agent_ip = args.local_first_agent_ip;
            let cluster = mesos_local::LocalCluster::start(config)
                .await
                .context("cannot start the local cluster")?;
            let url = url::Url::parse(&format!("{}/", cluster.master_url().trim_end_matches('/')))?;
            info!(master = %url, agents, "local cluster started");
            local = Some(cluster);
            watch::channel(Some(url)).1
        }
        Master::Remote(spec) => {
            let started = mesos_detector::Detector::start(spec.clone())
                .await
                .context("cannot start master detection")?;
            let leader = started.leader();
            detector = Some(started);
            leader
        }
    };

    let secret = match &args.secret_file {
        Some(path) => Some(read_secret(path)?),
        None => None,
    };
    let mut config = RuntimeConfig::new(&name, references["service-executor"].url.clone());
    config.role = args.role.clone().unwrap_or_else(|| name.clone());
    config.principal = args.principal.clone().unwrap_or_else(|| name.clone());
    config.secret = secret;
    config.user = args
        .user
        .clone()
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "root".into());
    config.failover_timeout = Duration::from_secs(args.failover_timeout);
    config.webui_url = Some(format!("{base_url}/api/v1/nodes"));
    config.content_type = if args.content_type == "json" {
        ContentType::Json
    } else {
        ContentType::Protobuf
    };
    config.step_timeout = Duration::from_secs(args.step_timeout);
    if let Some(reference) = references.remove(JAVA_RUNTIME_ARTIFACT) {
        java_runtime = Some(reference);
    }
    config.java_runtime = java_runtime;
    config.artifacts = references;
    let policy = config.policy;

    let sink = Arc::new(StoreSink(Mutex::new(store)));
    let (handle, runtime) = scheduler_runtime::start(service.clone(), config, state, sink, leader)?;
    let api = ApiState::new(handle, &name, service.noun())
        .with_token(args.api_token.clone())
        .with_policy(policy)
        .with_artifacts(artifacts);
    let router = scheduler_api::router(api);
    let (stop_api, api_stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(scheduler_api::serve(listener, router, async move {
        let _ = api_stopped.await;
    }));
    info!(api = %base_url, "scheduler running");
    // Bursts (every agent fetching its artifacts at once, a reconciliation)
    // leave freed pages behind that glibc would otherwise keep resident.
    let heap = tokio::spawn(async {
        let mut every = tokio::time::interval(HEAP_RELEASE_INTERVAL);
        loop {
            every.tick().await;
            heap_release::release_free_pages();
        }
    });

    let outcome = tokio::select! {
        () = shutdown_signal() => {
            info!("signal received: stopping (the framework stays registered until its failover timeout)");
            Ok(())
        }
        ended = runtime => match ended {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => {
                error!(error = %error, "the scheduler stopped");
                Err(anyhow::anyhow!(error))
            }
            Err(join) => Err(anyhow::anyhow!("the scheduler crashed: {join}")),
        },
    };
    heap.abort();
    let _ = stop_api.send(());
    if let Err(error) = server.await {
        warn!(error = %error, "API server ended badly");
    }
    if let Some(cluster) = local {
        cluster.shutdown().await;
    }
    if let Some(detector) = detector {
        detector.stop().await;
    }
    outcome
}

fn read_secret(path: &Path) -> anyhow::Result<String> {
    let secret = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read --secret-file {}", path.display()))?;
    let secret = secret.trim().to_owned();
    if secret.is_empty() {
        bail!("--secret-file {} is empty", path.display());
    }
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn master_flag_forms() {
        assert_eq!("local".parse::<Master>(), Ok(Master::Local(3)));
        assert_eq!("local:5".parse::<Master>(), Ok(Master::Local(5)));
        assert!("local:0".parse::<Master>().is_err());
        assert!(matches!(
            "http://127.0.0.1:5050".parse::<Master>(),
            Ok(Master::Remote(_))
        ));
        assert!(matches!(
            "zk://127.0.0.1:2181/mesos".parse::<Master>(),
            Ok(Master::Remote(_))
        ));
        let error = "ftp://x".parse::<Master>().expect_err("bad scheme");
        assert!(error.contains("local[:N]"), "{error}");
    }

    #[test]
    fn pairs_need_both_halves() {
        assert_eq!("a=b=c".parse::<Pair>(), Ok(Pair("a".into(), "b=c".into())));
        assert!("a=".parse::<Pair>().is_err());
        assert!("=b".parse::<Pair>().is_err());
    }
}
