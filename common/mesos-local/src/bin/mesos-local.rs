//! `mesos-local --agents 3 [--state-dir D] [--port P]`: runs a local Mesos
//! cluster, prints the master URL and runs until Ctrl-C.

use std::path::PathBuf;

use anyhow::{Context, bail};
use mesos_local::{AgentConfig, ClusterConfig, LocalCluster};

const USAGE: &str = "usage: mesos-local [--agents N] [--state-dir DIR] [--port PORT] \
[--resources 'cpus:4;mem:8192;disk:20000;ports:[31000-32000]'] [--attributes 'rack:r1'] \
[--roles a,b] [--first-agent-ip 127.0.0.2]";

fn parse(args: Vec<String>) -> anyhow::Result<ClusterConfig> {
    let mut agents = 1usize;
    let mut state_dir: Option<PathBuf> = None;
    let mut port = 5050u16;
    let mut resources: Option<String> = None;
    let mut attributes = String::new();
    let mut roles: Option<Vec<String>> = None;
    let mut first_agent_ip = mesos_local::DEFAULT_FIRST_AGENT_IP;
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .with_context(|| format!("{name} needs a value\n{USAGE}"))
        };
        match arg.as_str() {
            "--agents" => {
                agents = value("--agents")?
                    .parse()
                    .context("--agents must be a number")?
            }
            "--state-dir" => state_dir = Some(PathBuf::from(value("--state-dir")?)),
            "--port" => {
                port = value("--port")?
                    .parse()
                    .context("--port must be a port number")?
            }
            "--resources" => resources = Some(value("--resources")?),
            "--attributes" => attributes = value("--attributes")?,
            "--first-agent-ip" => {
                first_agent_ip = value("--first-agent-ip")?
                    .parse()
                    .context("--first-agent-ip must be an IPv4 address such as 127.0.1.2")?
            }
            "--roles" => roles = Some(value("--roles")?.split(',').map(str::to_owned).collect()),
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    let mut config = ClusterConfig::with_agents(agents);
    config.master_port = port;
    config.state_dir = Some(state_dir.unwrap_or_else(|| PathBuf::from("mesos-local-state")));
    config.roles = roles;
    config.first_agent_ip = first_agent_ip;
    for (i, agent) in config.agents.iter_mut().enumerate() {
        *agent = AgentConfig {
            resources: resources.clone().unwrap_or_else(|| agent.resources.clone()),
            attributes: if attributes.is_empty() {
                format!("agent:{}", i + 1)
            } else {
                attributes.clone()
            },
            ..AgentConfig::default()
        };
    }
    Ok(config)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let config = parse(std::env::args().skip(1).collect())?;
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
