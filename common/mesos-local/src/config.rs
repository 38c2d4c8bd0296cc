//! Configuration of the local cluster, validated with every problem reported at once.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Error, Result};

/// Resources of an agent when none are given.
pub const DEFAULT_RESOURCES: &str = "cpus:4;mem:8192;disk:20000;ports:[31000-32000]";

/// Address of the first agent when none is given.
pub const DEFAULT_FIRST_AGENT_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

/// One agent.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentConfig {
    /// Hostname in offers; default: the agent's IP address (resolvable everywhere).
    pub hostname: Option<String>,
    /// Listening address; default `first_agent_ip` + index.
    pub ip: Option<Ipv4Addr>,
    /// Resources, Mesos' agent `--resources` syntax.
    pub resources: String,
    /// Attributes, Mesos' agent `--attributes` syntax (`rack:r1;zone:z1`).
    pub attributes: String,
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            hostname: None,
            ip: None,
            resources: DEFAULT_RESOURCES.to_owned(),
            attributes: String::new(),
        }
    }
}

/// The whole cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterConfig {
    /// The agents.
    pub agents: Vec<AgentConfig>,
    /// Master's listening address (127.0.0.1).
    pub master_ip: Ipv4Addr,
    /// Address of the first agent without an explicit `ip`; the others follow
    /// it (127.0.0.2, 127.0.0.3, …). Two clusters on one machine need
    /// different blocks, since services bind the ports offered on them.
    pub first_agent_ip: Ipv4Addr,
    /// Master's port; 0 picks a free one.
    pub master_port: u16,
    /// Where reservations, volumes and sandboxes live; `None` uses a temporary
    /// directory removed at shutdown.
    pub state_dir: Option<PathBuf>,
    /// Batch allocation interval (Mesos: 1 s).
    pub allocation_interval: Duration,
    /// Offers held longer are rescinded (Mesos: unset).
    pub offer_timeout: Option<Duration>,
    /// HEARTBEAT interval (Mesos: 15 s).
    pub heartbeat_interval: Duration,
    /// A stopped agent is marked unreachable after this (Mesos `--agent_reregister_timeout`: 10 min).
    pub agent_removal_timeout: Duration,
    /// Executors must subscribe within this (Mesos: 1 min).
    pub executor_registration_timeout: Duration,
    /// Grace period between SHUTDOWN and kill (Mesos: 5 s).
    pub executor_shutdown_grace_period: Duration,
    /// After an agent restart, executors must re-subscribe within this (Mesos: 2 s).
    pub executor_reregistration_timeout: Duration,
    /// `MESOS_RECOVERY_TIMEOUT` given to executors (Mesos: 15 min).
    pub recovery_timeout: Duration,
    /// First retry of an unacknowledged status update (Mesos: 10 s; doubles up to 10 min).
    pub status_update_retry_interval: Duration,
    /// Role whitelist (Mesos `--roles`); `None` allows every role.
    pub roles: Option<Vec<String>>,
    /// PEM files of certificate authorities the fetcher trusts for `https://`
    /// URIs besides the system's, as an agent host's trust store would.
    pub fetcher_ca_certs: Vec<PathBuf>,
}

impl ClusterConfig {
    /// `n` agents with default resources and Mesos' default timings.
    pub fn with_agents(n: usize) -> Self {
        ClusterConfig {
            agents: vec![AgentConfig::default(); n],
            master_ip: Ipv4Addr::LOCALHOST,
            first_agent_ip: DEFAULT_FIRST_AGENT_IP,
            master_port: 0,
            state_dir: None,
            allocation_interval: Duration::from_secs(1),
            offer_timeout: None,
            heartbeat_interval: Duration::from_secs(15),
            agent_removal_timeout: Duration::from_secs(600),
            executor_registration_timeout: Duration::from_secs(60),
            executor_shutdown_grace_period: Duration::from_secs(5),
            executor_reregistration_timeout: Duration::from_secs(2),
            recovery_timeout: Duration::from_secs(900),
            status_update_retry_interval: Duration::from_secs(10),
            roles: None,
            fetcher_ca_certs: Vec::new(),
        }
    }

    /// The IP of agent `index`.
    pub fn agent_ip(&self, index: usize) -> Ipv4Addr {
        self.agents
            .get(index)
            .and_then(|a| a.ip)
            .unwrap_or_else(|| {
                let offset = u32::try_from(index).unwrap_or(u32::MAX);
                Ipv4Addr::from(u32::from(self.first_agent_ip).saturating_add(offset))
            })
    }

    /// Checks everything and reports every problem at once.
    pub fn validate(&self) -> Result<()> {
        let mut problems = Vec::new();
        if self.agents.is_empty() {
            problems.push("at least one agent is needed".to_owned());
        }
        if self.agents.len() > 250 {
            problems.push("at most 250 agents are supported".to_owned());
        }
        if !self.master_ip.is_loopback() {
            problems.push(format!(
                "master_ip {} is not a loopback address",
                self.master_ip
            ));
        }
        for (i, agent) in self.agents.iter().enumerate() {
            if let Err(e) = crate::resources::parse(&agent.resources) {
                problems.push(format!("agent {}: resources: {e}", i + 1));
            }
            if let Err(e) = crate::resources::parse_attributes(&agent.attributes) {
                problems.push(format!("agent {}: attributes: {e}", i + 1));
            }
            let ip = self.agent_ip(i);
            if !ip.is_loopback() {
                problems.push(format!(
                    "agent {}: ip {ip} is not a loopback address",
                    i + 1
                ));
            }
            if agent.hostname.as_deref().is_some_and(str::is_empty) {
                problems.push(format!("agent {}: hostname must not be empty", i + 1));
            }
        }
        let mut ips: Vec<Ipv4Addr> = (0..self.agents.len()).map(|i| self.agent_ip(i)).collect();
        ips.sort();
        if ips.windows(2).any(|w| w[0] == w[1]) {
            problems.push("two agents share an IP address".to_owned());
        }
        for (name, d) in [
            ("allocation_interval", self.allocation_interval),
            ("heartbeat_interval", self.heartbeat_interval),
            (
                "status_update_retry_interval",
                self.status_update_retry_interval,
            ),
        ] {
            if d.is_zero() {
                problems.push(format!("{name} must be positive"));
            }
        }
        if let Some(roles) = &self.roles {
            for role in roles {
                if let Err(e) = crate::ids::validate_role(role) {
                    problems.push(format!("roles: {e}"));
                }
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::Config(problems))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_every_problem() {
        let mut config = ClusterConfig::with_agents(2);
        config.agents[0].resources = "cpus".into();
        config.agents[1].attributes = "rack".into();
        config.heartbeat_interval = Duration::ZERO;
        let Err(Error::Config(problems)) = config.validate() else {
            panic!("expected a config error");
        };
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(ClusterConfig::with_agents(3).validate().is_ok());
        assert_eq!(
            ClusterConfig::with_agents(3).agent_ip(2),
            Ipv4Addr::new(127, 0, 0, 4)
        );
        let mut moved = ClusterConfig::with_agents(3);
        moved.first_agent_ip = Ipv4Addr::new(127, 3, 0, 254);
        assert_eq!(moved.agent_ip(2), Ipv4Addr::new(127, 3, 1, 0));
        moved.first_agent_ip = Ipv4Addr::new(127, 255, 255, 254);
        assert!(moved.validate().is_err(), "agents past 127.255.255.255");
    }
}
