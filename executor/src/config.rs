//! The executor's configuration, read from the environment the agent sets.
//!
//! Read through an injected lookup so tests need no process environment, and
//! every problem is reported at once.
//!
//! | variable | meaning |
//! | --- | --- |
//! | `MESOS_FRAMEWORK_ID`, `MESOS_EXECUTOR_ID` | required |
//! | `MESOS_SLAVE_PID` | `slave(1)@ip:port` → `http://ip:port/slave(1)/api/v1/executor` |
//! | `MESOS_AGENT_ENDPOINT` | `ip:port`, used only without `MESOS_SLAVE_PID` |
//! | `MESOS_SANDBOX` (else `MESOS_DIRECTORY`) | the sandbox |
//! | `MESOS_CHECKPOINT` | `1`: survive agent restarts by re-subscribing |
//! | `MESOS_RECOVERY_TIMEOUT` | give up re-subscribing after this (default 15mins) |
//! | `MESOS_SUBSCRIPTION_BACKOFF_MAX` | longest wait between attempts (default 2secs) |
//! | `MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD` | time the agent allows for SHUTDOWN (default 5secs) |
//! | `MESOS_EXECUTOR_AUTHENTICATION_TOKEN` | sent as `Authorization: Bearer` |
//! | `EXECUTOR_ARTIFACT_CACHE` | artifact cache directory (see [`default_cache_dir`]) |
//! | `EXECUTOR_UPDATE_RETRY_INTERVAL` | resend unacknowledged updates this often (default 10secs) |

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::Error;

/// Default `MESOS_RECOVERY_TIMEOUT` (the agent's own default).
pub const DEFAULT_RECOVERY_TIMEOUT: Duration = Duration::from_secs(15 * 60);
/// Default `MESOS_SUBSCRIPTION_BACKOFF_MAX` (the agent's own default).
pub const DEFAULT_BACKOFF_MAX: Duration = Duration::from_secs(2);
/// Default `MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD` (the agent's own default).
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// Default `EXECUTOR_UPDATE_RETRY_INTERVAL` (the agent's first retry interval).
pub const DEFAULT_UPDATE_RETRY: Duration = Duration::from_secs(10);

/// Everything the executor needs to know about where it runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// `MESOS_FRAMEWORK_ID`.
    pub framework_id: String,
    /// `MESOS_EXECUTOR_ID`.
    pub executor_id: String,
    /// The agent's executor API URL.
    pub agent_url: url::Url,
    /// Where the task's files go (`MESOS_SANDBOX`).
    pub sandbox: PathBuf,
    /// Whether the framework checkpoints (re-subscribe after agent restarts).
    pub checkpoint: bool,
    /// Give up re-subscribing after this long without the agent.
    pub recovery_timeout: Duration,
    /// Longest pause between two subscription attempts.
    pub subscription_backoff_max: Duration,
    /// How long the agent waits after SHUTDOWN before killing us.
    pub shutdown_grace_period: Duration,
    /// Bearer token for executor authentication.
    pub auth_token: Option<String>,
    /// Directory of verified downloads, named by checksum.
    pub artifact_cache: PathBuf,
    /// Resend an unacknowledged update after this long.
    pub update_retry_interval: Duration,
}

impl Config {
    /// Reads the configuration through `lookup` (e.g. `|k| std::env::var(k).ok()`).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, Error> {
        let get = |key: &str| lookup(key).filter(|v| !v.is_empty());
        let mut problems = Vec::new();
        let mut required = |key: &str| {
            get(key).unwrap_or_else(|| {
                problems.push(format!("{key} is not set (the Mesos agent sets it)"));
                String::new()
            })
        };
        let framework_id = required("MESOS_FRAMEWORK_ID");
        let executor_id = required("MESOS_EXECUTOR_ID");

        let agent_url = match (get("MESOS_SLAVE_PID"), get("MESOS_AGENT_ENDPOINT")) {
            (Some(pid), _) => agent_url_from_pid(&pid).map_err(|e| problems.push(e)).ok(),
            (None, Some(endpoint)) => agent_url_from_endpoint(&endpoint)
                .map_err(|e| problems.push(e))
                .ok(),
            (None, None) => {
                problems.push(
                    "neither MESOS_SLAVE_PID nor MESOS_AGENT_ENDPOINT is set: \
                     cannot find the agent"
                        .into(),
                );
                None
            }
        };

        let sandbox = get("MESOS_SANDBOX").or_else(|| get("MESOS_DIRECTORY"));
        if sandbox.is_none() {
            problems.push("neither MESOS_SANDBOX nor MESOS_DIRECTORY is set".into());
        }
        let sandbox = PathBuf::from(sandbox.unwrap_or_default());

        let checkpoint = match get("MESOS_CHECKPOINT").as_deref() {
            None | Some("0") => false,
            Some("1") => true,
            Some(other) => {
                problems.push(format!("MESOS_CHECKPOINT is \"{other}\", expected 0 or 1"));
                false
            }
        };

        let mut duration = |key: &str, default: Duration| match get(key) {
            None => default,
            Some(text) => parse_mesos_duration(&text).unwrap_or_else(|e| {
                problems.push(format!("{key}: {e}"));
                default
            }),
        };
        let recovery_timeout = duration("MESOS_RECOVERY_TIMEOUT", DEFAULT_RECOVERY_TIMEOUT);
        let subscription_backoff_max =
            duration("MESOS_SUBSCRIPTION_BACKOFF_MAX", DEFAULT_BACKOFF_MAX);
        let shutdown_grace_period = duration(
            "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD",
            DEFAULT_SHUTDOWN_GRACE,
        );
        let update_retry_interval =
            duration("EXECUTOR_UPDATE_RETRY_INTERVAL", DEFAULT_UPDATE_RETRY);
        if update_retry_interval.is_zero() {
            problems.push("EXECUTOR_UPDATE_RETRY_INTERVAL must be above zero".into());
        }

        let artifact_cache = get("EXECUTOR_ARTIFACT_CACHE")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                default_cache_dir(get("MESOS_DIRECTORY").as_deref().map(Path::new), &sandbox)
            });

        match (problems.is_empty(), agent_url) {
            (true, Some(agent_url)) => Ok(Config {
                framework_id,
                executor_id,
                agent_url,
                sandbox,
                checkpoint,
                recovery_timeout,
                subscription_backoff_max,
                shutdown_grace_period,
                auth_token: get("MESOS_EXECUTOR_AUTHENTICATION_TOKEN"),
                artifact_cache,
                update_retry_interval,
            }),
            _ => Err(Error::Config(problems)),
        }
    }
}

/// The executor API URL from `MESOS_SLAVE_PID` (`slave(1)@ip:port`), the way
/// Mesos' own executor library builds it.
pub fn agent_url_from_pid(pid: &str) -> Result<url::Url, String> {
    let bad = || format!("MESOS_SLAVE_PID \"{pid}\" is not of the form id@ip:port");
    let (id, address) = pid.split_once('@').ok_or_else(bad)?;
    if id.is_empty() || id.contains('/') || address.is_empty() {
        return Err(bad());
    }
    url::Url::parse(&format!("http://{address}/{id}/api/v1/executor")).map_err(|_| bad())
}

/// The executor API URL from `MESOS_AGENT_ENDPOINT` (`ip:port`).
pub fn agent_url_from_endpoint(endpoint: &str) -> Result<url::Url, String> {
    url::Url::parse(&format!("http://{endpoint}/api/v1/executor"))
        .ok()
        .filter(|u| u.host_str().is_some() && !endpoint.contains('/'))
        .ok_or_else(|| format!("MESOS_AGENT_ENDPOINT \"{endpoint}\" is not of the form ip:port"))
}

/// The artifact cache when `EXECUTOR_ARTIFACT_CACHE` is not set:
/// `<agent work_dir>/service-executor-cache` when `MESOS_DIRECTORY` has the
/// agent's layout (`<work_dir>/slaves/<agent>/frameworks/<fw>/executors/<id>/runs/<run>`),
/// so every executor on that agent shares it; otherwise `<sandbox>/.artifact-cache`
/// (no sharing, but correct).
pub fn default_cache_dir(directory: Option<&Path>, sandbox: &Path) -> PathBuf {
    let work_dir = directory.and_then(|dir| {
        let parts: Vec<_> = dir.components().collect();
        let n = parts.len();
        let layout = n >= 9
            && parts[n - 2].as_os_str() == "runs"
            && parts[n - 4].as_os_str() == "executors"
            && parts[n - 6].as_os_str() == "frameworks"
            && parts[n - 8].as_os_str() == "slaves";
        layout.then(|| parts[..n - 8].iter().collect::<PathBuf>())
    });
    match work_dir {
        Some(work_dir) => work_dir.join("service-executor-cache"),
        None => sandbox.join(".artifact-cache"),
    }
}

/// Parses a Mesos duration such as `5secs`, `1.5mins`, `200ms` or `15mins`.
pub fn parse_mesos_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| {
            format!("\"{text}\" has no unit (use ns, us, ms, secs, mins, hrs, days or weeks)")
        })?;
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("\"{text}\" does not start with a number"))?;
    let seconds = match unit {
        "ns" => 1e-9,
        "us" => 1e-6,
        "ms" => 1e-3,
        "secs" => 1.0,
        "mins" => 60.0,
        "hrs" => 3600.0,
        "days" => 86_400.0,
        "weeks" => 604_800.0,
        other => {
            return Err(format!(
                "\"{other}\" in \"{text}\" is not a unit (use ns, us, ms, secs, mins, hrs, days or weeks)"
            ));
        }
    };
    Duration::try_from_secs_f64(value * seconds).map_err(|_| format!("\"{text}\" is out of range"))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn reads_what_the_agent_sets() {
        let dir = "/var/lib/mesos/slaves/S0/frameworks/F0/executors/E0/runs/R0";
        let config = Config::from_lookup(lookup(&[
            ("MESOS_FRAMEWORK_ID", "F0"),
            ("MESOS_EXECUTOR_ID", "E0"),
            ("MESOS_SLAVE_PID", "slave(1)@127.0.0.1:5051"),
            ("MESOS_AGENT_ENDPOINT", "127.0.0.1:9999"),
            ("MESOS_DIRECTORY", dir),
            ("MESOS_SANDBOX", "/mnt/mesos/sandbox"),
            ("MESOS_CHECKPOINT", "1"),
            ("MESOS_RECOVERY_TIMEOUT", "15mins"),
            ("MESOS_SUBSCRIPTION_BACKOFF_MAX", "2secs"),
            ("MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD", "1.5secs"),
        ]))
        .expect("valid");
        assert_eq!(
            config.agent_url.as_str(),
            "http://127.0.0.1:5051/slave(1)/api/v1/executor"
        );
        assert_eq!(config.sandbox, PathBuf::from("/mnt/mesos/sandbox"));
        assert!(config.checkpoint);
        assert_eq!(config.recovery_timeout, Duration::from_secs(900));
        assert_eq!(config.shutdown_grace_period, Duration::from_millis(1500));
        assert_eq!(
            config.artifact_cache,
            PathBuf::from("/var/lib/mesos/service-executor-cache")
        );
        assert_eq!(config.update_retry_interval, DEFAULT_UPDATE_RETRY);
    }

    #[test]
    fn falls_back_to_the_agent_endpoint() {
        let config = Config::from_lookup(lookup(&[
            ("MESOS_FRAMEWORK_ID", "F"),
            ("MESOS_EXECUTOR_ID", "E"),
            ("MESOS_AGENT_ENDPOINT", "10.0.0.1:5051"),
            ("MESOS_DIRECTORY", "/tmp/sb"),
            ("EXECUTOR_ARTIFACT_CACHE", "/cache"),
        ]))
        .expect("valid");
        assert_eq!(
            config.agent_url.as_str(),
            "http://10.0.0.1:5051/api/v1/executor"
        );
        assert_eq!(config.sandbox, PathBuf::from("/tmp/sb"));
        assert!(!config.checkpoint);
        assert_eq!(config.artifact_cache, PathBuf::from("/cache"));
    }

    #[test]
    fn reports_every_problem_at_once() {
        let Err(Error::Config(problems)) = Config::from_lookup(lookup(&[
            ("MESOS_SLAVE_PID", "garbage"),
            ("MESOS_CHECKPOINT", "yes"),
            ("MESOS_RECOVERY_TIMEOUT", "15 minutes"),
        ])) else {
            panic!("expected a config error");
        };
        let all = problems.join("\n");
        for want in [
            "MESOS_FRAMEWORK_ID",
            "MESOS_EXECUTOR_ID",
            "MESOS_SLAVE_PID",
            "MESOS_SANDBOX",
            "MESOS_CHECKPOINT",
            "MESOS_RECOVERY_TIMEOUT",
        ] {
            assert!(all.contains(want), "{want} not reported in:\n{all}");
        }
        assert_eq!(problems.len(), 6, "{all}");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_mesos_duration("5secs"), Ok(Duration::from_secs(5)));
        assert_eq!(
            parse_mesos_duration("200ms"),
            Ok(Duration::from_millis(200))
        );
        assert_eq!(parse_mesos_duration("1.5mins"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_mesos_duration("2hrs"), Ok(Duration::from_secs(7200)));
        assert_eq!(
            parse_mesos_duration("1weeks"),
            Ok(Duration::from_secs(604_800))
        );
        assert!(parse_mesos_duration("5").is_err());
        assert!(parse_mesos_duration("5s").is_err());
        assert!(parse_mesos_duration("secs").is_err());
    }

    #[test]
    fn cache_dir_outside_the_agent_layout_stays_in_the_sandbox() {
        assert_eq!(
            default_cache_dir(Some(Path::new("/tmp/x")), Path::new("/tmp/x")),
            PathBuf::from("/tmp/x/.artifact-cache")
        );
    }
}
