//! `mesos-local --agents 3 [--state-dir D] [--port P]`: runs a local Mesos
//! cluster, prints the master URL and runs until Ctrl-C.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use mesos_local::{AgentConfig, ClusterConfig, LocalCluster};

/// Runs a Mesos 1.11-compatible master and agents on loopback until Ctrl-C.
#[derive(Debug, Parser)]
#[command(name = "mesos-local")]
struct Args {
    /// Number of agents.
    #[arg(long, default_value_t = 1)]
    agents: usize,
    /// Where reservations, volumes and sandboxes live; kept across restarts.
    #[arg(long, default_value = "mesos-local-state")]
    state_dir: PathBuf,
    /// The master's port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 5050)]
    port: u16,
    /// Resources of every agent, in the syntax of the Mesos agent's --resources.
    #[arg(long, default_value = mesos_local::DEFAULT_RESOURCES)]
    resources: String,
    /// Attributes of every agent, e.g. 'rack:r1;zone:z1' (default: agent:N).
    #[arg(long)]
    attributes: Option<String>,
    /// Roles frameworks may use, comma-separated (default: any role).
    #[arg(long, value_delimiter = ',')]
    roles: Option<Vec<String>>,
    /// Address of the first agent; the others take the following addresses.
    #[arg(long, default_value_t = mesos_local::DEFAULT_FIRST_AGENT_IP)]
    first_agent_ip: Ipv4Addr,
    /// A PEM file of certificate authorities the fetcher trusts for https URIs,
    /// besides the system's (may be repeated).
    #[arg(long = "fetcher-ca-file", value_name = "PEM")]
    fetcher_ca_files: Vec<PathBuf>,
}

impl Args {
    fn config(self) -> ClusterConfig {
        let mut config = ClusterConfig::with_agents(self.agents);
        config.master_port = self.port;
        config.state_dir = Some(self.state_dir);
        config.roles = self.roles;
        config.first_agent_ip = self.first_agent_ip;
        config.fetcher_ca_certs = self.fetcher_ca_files;
        for (i, agent) in config.agents.iter_mut().enumerate() {
            *agent = AgentConfig {
                resources: self.resources.clone(),
                attributes: self
                    .attributes
                    .clone()
                    .unwrap_or_else(|| format!("agent:{}", i + 1)),
                ..AgentConfig::default()
            };
        }
        config
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let config = Args::parse().config();
    let cluster = LocalCluster::start(config).await?;
    println!("MASTER={}", cluster.master_url());
    for agent in cluster.agents() {
        println!("AGENT={} {} {}", agent.name, agent.hostname, agent.address);
    }
    println!("STATE_DIR={}", cluster.state_dir().display());
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    cluster.shutdown().await;
    Ok(())
}
