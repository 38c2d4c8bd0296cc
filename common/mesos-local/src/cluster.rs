//! [`LocalCluster`]: start the cluster in-process, talk to it, inject faults, stop it.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use tokio::sync::{mpsc, oneshot};

use crate::agent::AgentSetup;
use crate::config::ClusterConfig;
use crate::core::{Core, Settings};
use crate::error::{Error, Result};
use crate::master::MasterSettings;
use crate::runtime::{self, Command, Control, ControlReply, Runtime, http, store};

/// One agent's fixed identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentHandle {
    /// Index (0-based) used by the fault-injection methods.
    pub index: usize,
    /// Name, e.g. `agent-1`.
    pub name: String,
    /// Hostname in offers.
    pub hostname: String,
    /// Listening address.
    pub address: SocketAddr,
    /// Work directory (sandboxes under `slaves/`, volumes under `volumes/`).
    pub work_dir: PathBuf,
}

/// A running local cluster; [`LocalCluster::shutdown`] stops it and its executors.
#[derive(Debug)]
pub struct LocalCluster {
    tx: mpsc::UnboundedSender<Command>,
    master: SocketAddr,
    agents: Vec<AgentHandle>,
    state_dir: PathBuf,
    task: Option<tokio::task::JoinHandle<()>>,
    _temp: Option<tempfile::TempDir>,
}

impl LocalCluster {
    /// Starts the master and agents; returns once every agent has registered.
    pub async fn start(config: ClusterConfig) -> Result<LocalCluster> {
        config.validate()?;
        let http = fetcher_client(&config.fetcher_ca_certs)?;
        let (temp, state_dir) = match &config.state_dir {
            Some(dir) => (None, dir.clone()),
            None => {
                let temp = tempfile::Builder::new()
                    .prefix("mesos-local-")
                    .tempdir()
                    .map_err(|source| Error::Io {
                        what: "create a temporary state directory in",
                        path: std::env::temp_dir(),
                        source,
                    })?;
                let path = temp.path().to_path_buf();
                (Some(temp), path)
            }
        };
        std::fs::create_dir_all(&state_dir).map_err(|source| Error::Io {
            what: "create",
            path: state_dir.clone(),
            source,
        })?;
        let (master_listener, master_addr) =
            http::bind_master(SocketAddr::from((config.master_ip, config.master_port))).await?;
        let mut agent_listeners = Vec::new();
        let mut setups = Vec::new();
        let mut persisted = Vec::new();
        let mut handles = Vec::new();
        let seed: u64 = rand_seed();
        for (i, agent) in config.agents.iter().enumerate() {
            let ip: Ipv4Addr = config.agent_ip(i);
            let (listener, addr) = http::bind_agent(SocketAddr::from((ip, 0))).await?;
            let name = format!("agent-{}", i + 1);
            let work_dir = store::agent_dir(&state_dir, &name);
            let hostname = agent.hostname.clone().unwrap_or_else(|| ip.to_string());
            persisted.push(store::load(&state_dir, &name)?);
            setups.push(AgentSetup {
                name: name.clone(),
                hostname: hostname.clone(),
                ip: ip.to_string(),
                port: addr.port(),
                resources: crate::resources::parse(&agent.resources)
                    .map_err(|e| Error::Config(vec![e]))?,
                attributes: crate::resources::parse_attributes(&agent.attributes)
                    .map_err(|e| Error::Config(vec![e]))?,
                work_dir: work_dir.clone(),
                registration_timeout: config.executor_registration_timeout,
                shutdown_grace_period: config.executor_shutdown_grace_period,
                reregistration_timeout: config.executor_reregistration_timeout,
                recovery_timeout: config.recovery_timeout,
                retry_min: config.status_update_retry_interval,
                retry_max: config
                    .status_update_retry_interval
                    .max(std::time::Duration::from_secs(600)),
                seed,
            });
            handles.push(AgentHandle {
                index: i,
                name,
                hostname,
                address: addr,
                work_dir,
            });
            agent_listeners.push((listener, addr));
        }
        let settings = Settings {
            master: MasterSettings {
                heartbeat_interval: config.heartbeat_interval,
                allocation_interval: config.allocation_interval,
                offer_timeout: config.offer_timeout,
                agent_removal_timeout: config.agent_removal_timeout,
                roles: config.roles.clone(),
                ip: master_addr.ip().to_string(),
                port: master_addr.port(),
                hostname: master_addr.ip().to_string(),
            },
            agents: setups,
        };
        let (tx, rx) = mpsc::unbounded_channel();
        let master_stop = http::serve_master(master_listener, tx.clone());
        let mut agent_addrs = Vec::new();
        let mut agent_stops = Vec::new();
        for (i, (listener, addr)) in agent_listeners.into_iter().enumerate() {
            agent_stops.push(http::serve_agent_on(listener, tx.clone(), i));
            agent_addrs.push(addr);
        }
        let master_id = uuid::Uuid::new_v4().to_string();
        let (core, initial) = Core::new(settings, master_id, persisted, runtime::now());
        let runtime = Runtime::new(
            core,
            http,
            tx.clone(),
            state_dir.clone(),
            agent_addrs,
            agent_stops,
            master_stop,
        );
        let task = tokio::spawn(runtime.run(rx, initial));
        tracing::info!(master = %master_addr, agents = handles.len(), state_dir = %state_dir.display(), "local cluster started");
        Ok(LocalCluster {
            tx,
            master: master_addr,
            agents: handles,
            state_dir,
            task: Some(task),
            _temp: temp,
        })
    }

    /// The master's base URL, `http://127.0.0.1:PORT/`.
    pub fn master_url(&self) -> String {
        format!("http://{}/", self.master)
    }

    /// The master's address.
    pub fn master_address(&self) -> SocketAddr {
        self.master
    }

    /// The agents.
    pub fn agents(&self) -> &[AgentHandle] {
        &self.agents
    }

    /// The state directory.
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    async fn control(&self, control: Control) -> Result<ControlReply> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::Control(control, reply))
            .map_err(|_| Error::ShutDown)?;
        rx.await
            .map_err(|_| Error::ShutDown)?
            .map_err(Error::NotFound)
    }

    async fn text(&self, control: Control) -> Result<Option<String>> {
        match self.control(control).await? {
            ControlReply::Text(t) => Ok(t),
            ControlReply::Done => Ok(None),
        }
    }

    /// The ID of agent `index` once it has registered.
    pub async fn agent_id(&self, index: usize) -> Result<Option<String>> {
        self.text(Control::AgentId(index)).await
    }

    /// The current master's ID.
    pub async fn master_id(&self) -> Result<String> {
        Ok(self.text(Control::MasterId).await?.unwrap_or_default())
    }

    /// `/master/state` as JSON.
    pub async fn state(&self) -> Result<serde_json::Value> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::State {
                slaves: false,
                reply,
            })
            .map_err(|_| Error::ShutDown)?;
        rx.await.map_err(|_| Error::ShutDown)
    }

    /// Breaks a framework's subscription stream, as a network failure would.
    pub async fn drop_framework_stream(&self, framework_id: &str) -> Result<()> {
        self.control(Control::DropFrameworkStream(framework_id.to_owned()))
            .await
            .map(drop)
    }

    /// Fails the master over: a new master (new ID) with the same agents and
    /// tasks; every subscription is closed and outstanding offers are gone.
    pub async fn fail_over_master(&self) -> Result<()> {
        self.control(Control::FailOverMaster).await.map(drop)
    }

    /// Stops agent `index`: its endpoint goes away, executors of
    /// non-checkpointing frameworks die, the master rescinds its offers and
    /// marks it unreachable after the agent removal timeout.
    pub async fn stop_agent(&self, index: usize) -> Result<()> {
        self.control(Control::StopAgent(index)).await.map(drop)
    }

    /// Restarts a stopped agent; it recovers its executors and re-registers.
    pub async fn restart_agent(&self, index: usize) -> Result<()> {
        self.control(Control::RestartAgent(index)).await.map(drop)
    }

    /// SIGKILLs an executor's process group.
    pub async fn kill_executor(&self, framework_id: &str, executor_id: &str) -> Result<()> {
        self.control(Control::KillExecutor {
            framework_id: framework_id.to_owned(),
            executor_id: executor_id.to_owned(),
        })
        .await
        .map(drop)
    }

    /// Rescinds an outstanding offer.
    pub async fn rescind_offer(&self, offer_id: &str) -> Result<()> {
        self.control(Control::RescindOffer(offer_id.to_owned()))
            .await
            .map(drop)
    }

    /// Stops the cluster: kills every executor and closes every endpoint.
    pub async fn shutdown(mut self) {
        self.stop().await;
    }

    async fn stop(&mut self) {
        let _ = self.control(Control::Shutdown).await;
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        // Without an explicit shutdown the runtime stops when its channel closes;
        // ask it explicitly so executors are killed even if the handle leaks a sender.
        let (reply, _rx) = oneshot::channel();
        let _ = self.tx.send(Command::Control(Control::Shutdown, reply));
        // The runtime may never run again (a test panicking tears tokio down),
        // so also end, here and now, every process started under our state.
        crate::runtime::containerizer::kill_processes_under(&self.state_dir);
    }
}

fn rand_seed() -> u64 {
    let u = uuid::Uuid::new_v4();
    let b = u.as_bytes();
    u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
}

/// The fetcher's HTTP client: the system's certificate authorities (as the
/// Mesos fetcher's libcurl uses), the bundled ones, and `ca_files`.
/// No connection outlives its fetch, as with the Mesos fetcher (one process
/// per fetch).
fn fetcher_client(ca_files: &[PathBuf]) -> Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder().pool_max_idle_per_host(0);
    for path in ca_files {
        let pem = std::fs::read(path).map_err(|source| Error::Io {
            what: "read the fetcher CA file",
            path: path.clone(),
            source,
        })?;
        let problem = |what: String| {
            Error::Config(vec![format!(
                "fetcher CA file {}: {what}; give a PEM file of certificates",
                path.display()
            )])
        };
        let certificates =
            reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| problem(e.to_string()))?;
        if certificates.is_empty() {
            return Err(problem("it holds no certificate".into()));
        }
        for certificate in certificates {
            builder = builder.add_root_certificate(certificate);
        }
    }
    builder
        .build()
        .map_err(|e| Error::Config(vec![format!("cannot build the fetcher's HTTP client: {e}")]))
}
