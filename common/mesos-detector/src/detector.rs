//! The detector: a watch channel holding the leading master's URL, kept current by a task.
//!
//! Expected flow for a `zk://` spec: connect (digest auth if given) → list the group's
//! children with a watch → read the leader's data → publish its URL → wait for the children
//! watch, a session event or a timer → list again. Each pass acts on what ZooKeeper holds
//! now, not on which event woke it.
//!
//! Guarantees: the channel holds `None` whenever no leader is known (no members, unreadable
//! leader data, expired session, or disconnected for longer than the session timeout); a
//! value is only republished when it changes; the task never panics on ZooKeeper data and
//! ends when the [`Detector`] is stopped or dropped, which closes its ZooKeeper session.
//!
//! Caveats: while briefly disconnected the last leader is kept (the ZooKeeper client
//! reconnects by itself and the masters' group cannot change unseen for longer than a
//! session); callers still learn of a deposed master from its HTTP answers (307, 503).

use std::time::Duration;

use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::Instrument;
use url::Url;
use zookeeper_client as zk;

use crate::leader::{choose_leader, leader_url};
use crate::{Error, MasterSpec, ZkSpec};

/// Tuning of the ZooKeeper side; the defaults suit production.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetectorOptions {
    /// Session timeout to negotiate with ZooKeeper (Mesos masters default to 10 s).
    pub session_timeout: Duration,
    /// Delay before the first retry after a failure; doubles per failure.
    pub min_backoff: Duration,
    /// Upper bound of the retry delay.
    pub max_backoff: Duration,
}

impl Default for DetectorOptions {
    fn default() -> Self {
        DetectorOptions {
            session_timeout: Duration::from_secs(10),
            min_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(10),
        }
    }
}

/// Reports the leading master's base URL; stops its background task when stopped or dropped.
#[derive(Debug)]
pub struct Detector {
    spec: MasterSpec,
    leader: watch::Receiver<Option<Url>>,
    // Keeps a fixed URL's channel open until the detector is stopped or dropped.
    fixed: Option<watch::Sender<Option<Url>>>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Detector {
    /// Starts detecting with [`DetectorOptions::default`].
    pub async fn start(spec: MasterSpec) -> Result<Detector, Error> {
        Detector::start_with(spec, DetectorOptions::default()).await
    }

    /// Starts detecting: a fixed URL is published at once, a ZooKeeper group by a task
    /// spawned on the current tokio runtime (there must be one).
    ///
    /// ZooKeeper being unreachable is not an error here: the task keeps retrying and the
    /// channel holds `None` meanwhile, because a scheduler may well start before ZooKeeper.
    pub async fn start_with(spec: MasterSpec, options: DetectorOptions) -> Result<Detector, Error> {
        match &spec {
            MasterSpec::Url(url) => {
                let (sender, leader) = watch::channel(Some(url.clone()));
                tracing::info!(leader = %url, "using a fixed master");
                Ok(Detector {
                    spec,
                    leader,
                    fixed: Some(sender),
                    shutdown: None,
                    task: None,
                })
            }
            MasterSpec::ZooKeeper(zk_spec) => {
                let (sender, leader) = watch::channel(None);
                let (shutdown, stopped) = oneshot::channel();
                let span = tracing::info_span!("master_detector", zk = %zk_spec);
                let watcher = ZkWatcher {
                    spec: zk_spec.clone(),
                    options,
                    leader: sender,
                };
                let task = tokio::spawn(
                    async move {
                        tokio::select! {
                            () = watcher.run() => {}
                            _ = stopped => tracing::info!("master detector stopped"),
                        }
                    }
                    .instrument(span),
                );
                Ok(Detector {
                    spec,
                    leader,
                    fixed: None,
                    shutdown: Some(shutdown),
                    task: Some(task),
                })
            }
        }
    }

    /// The spec this detector follows.
    pub fn spec(&self) -> &MasterSpec {
        &self.spec
    }

    /// A receiver of the leader's base URL (`None`: no leader known); closed once stopped.
    pub fn leader(&self) -> watch::Receiver<Option<Url>> {
        self.leader.clone()
    }

    /// The leader's base URL right now.
    pub fn current(&self) -> Option<Url> {
        self.leader.borrow().clone()
    }

    /// Waits until a leader is known and returns its URL; [`Error::Stopped`] if it never will be.
    pub async fn wait_for_leader(&self) -> Result<Url, Error> {
        let mut leader = self.leader();
        let known = leader.wait_for(Option::is_some).await;
        known.ok().and_then(|url| url.clone()).ok_or(Error::Stopped)
    }

    /// Stops the background task, closes the ZooKeeper session and waits for both.
    pub async fn stop(mut self) {
        self.fixed = None;
        if let Some(shutdown) = self.shutdown.take() {
            // An error means the task has already ended, which is what we want.
            let _ = shutdown.send(());
        }
        if let Some(task) = self.task.take() {
            if let Err(e) = task.await {
                tracing::warn!(error = %e, "master detector task failed");
            }
        }
    }
}

impl Drop for Detector {
    fn drop(&mut self) {
        // Dropping the task's future drops its ZooKeeper client, which closes the session.
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// The delay before retry number `failures` (0-based): `min · 2^failures`, at most `max`.
pub(crate) fn backoff(failures: u32, min: Duration, max: Duration) -> Duration {
    let factor = 2u32.saturating_pow(failures.min(31));
    min.saturating_mul(factor).min(max).max(min.min(max))
}

/// Spreads retries of many schedulers: a uniformly random 50–100 % of `delay`.
fn jittered(delay: Duration) -> Duration {
    delay.mul_f64(0.5 + fastrand::f64() / 2.0)
}

/// What the last look at the group found, and what to wait for next.
struct Observation {
    /// The leader's URL, or `None` when there is none or it cannot be read.
    leader: Option<Url>,
    /// Fires on the next change of the group (or of its existence).
    watcher: zk::OneshotWatcher,
}

/// The background task for a `zk://` spec.
struct ZkWatcher {
    spec: ZkSpec,
    options: DetectorOptions,
    leader: watch::Sender<Option<Url>>,
}

impl ZkWatcher {
    /// Connects, follows the group, reconnects on session loss; returns never.
    async fn run(self) {
        let mut failures = 0u32;
        loop {
            let error = match self.connect().await {
                Ok(client) => {
                    let connected = Instant::now();
                    let error = self.follow(&client).await;
                    // Only a session that lasted resets the backoff, so sessions that die
                    // at once (e.g. rejected credentials) do not make us spin.
                    if connected.elapsed() >= self.options.max_backoff {
                        failures = 0;
                    }
                    error
                }
                Err(e) => e,
            };
            // Without a session we cannot know who leads.
            self.publish(None);
            let delay = jittered(backoff(
                failures,
                self.options.min_backoff,
                self.options.max_backoff,
            ));
            failures = failures.saturating_add(1);
            tracing::warn!(%error, retry_in = ?delay, failures, "zookeeper session unavailable");
            tokio::time::sleep(delay).await;
        }
    }

    /// Establishes a session with the ensemble.
    async fn connect(&self) -> Result<zk::Client, Error> {
        let target = self.spec.connect_string();
        let zk_error = |source| Error::ZooKeeper {
            operation: "connect",
            target: target.clone(),
            source,
        };
        let mut connector = zk::Client::connector()
            .with_session_timeout(self.options.session_timeout)
            // Report unreachable ensembles at once; our own loop retries with backoff.
            .with_fail_eagerly();
        if let Some(credentials) = self.spec.credentials() {
            connector = connector.with_auth("digest", &credentials.digest_auth());
        }
        // The client bounds each attempt itself; this is a guard against a hung handshake.
        let guard = self.options.session_timeout.saturating_mul(2);
        let client = tokio::time::timeout(guard, connector.connect(&target))
            .await
            .map_err(|_| zk_error(zk::Error::Timeout))?
            .map_err(zk_error)?;
        tracing::info!(
            session = ?client.session_id(),
            timeout = ?client.session_timeout(),
            "zookeeper session established"
        );
        Ok(client)
    }

    /// Follows the group for the life of one session; returns why the session ended.
    async fn follow(&self, client: &zk::Client) -> Error {
        let mut state = client.state_watcher();
        let mut failures = 0u32;
        // When set, the leader is forgotten at this instant unless reconnected before.
        let mut forget_at: Option<Instant> = None;
        loop {
            let mut retry_at: Option<Instant> = None;
            let watcher = match self.observe(client).await {
                Ok(observation) => {
                    failures = 0;
                    self.publish(observation.leader);
                    Some(observation.watcher)
                }
                Err(e) if session_lost(&e) => return e,
                Err(e) => {
                    let delay = jittered(backoff(
                        failures,
                        self.options.min_backoff,
                        self.options.max_backoff,
                    ));
                    failures = failures.saturating_add(1);
                    if connection_lost(&e) {
                        // The client is reconnecting; the last leader stays until it expires.
                        tracing::warn!(error = %e, retry_in = ?delay, "zookeeper connection lost");
                    } else {
                        tracing::warn!(error = %e, retry_in = ?delay, "cannot read the masters' group");
                        self.publish(None);
                    }
                    retry_at = Some(Instant::now() + delay);
                    None
                }
            };
            let changed = async {
                match watcher {
                    Some(watcher) => watcher.changed().await,
                    None => std::future::pending().await,
                }
            };
            tokio::pin!(changed);
            // Wait for one reason to look again.
            loop {
                tokio::select! {
                    event = &mut changed => {
                        tracing::debug!(event = ?event.event_type, state = ?event.session_state, "group changed");
                        if event.session_state.is_terminated() {
                            return Error::ZooKeeper {
                                operation: "watch",
                                target: self.spec.path().to_owned(),
                                source: terminal_error(event.session_state),
                            };
                        }
                        break;
                    }
                    session = state.changed() => {
                        match session {
                            zk::SessionState::Disconnected => {
                                tracing::warn!("zookeeper disconnected; keeping the last leader for now");
                                forget_at = Some(Instant::now() + client.session_timeout());
                            }
                            s if s.is_terminated() => {
                                return Error::ZooKeeper {
                                    operation: "session",
                                    target: self.spec.connect_string(),
                                    source: terminal_error(s),
                                };
                            }
                            s => {
                                tracing::info!(state = ?s, "zookeeper reconnected");
                                forget_at = None;
                                break;
                            }
                        }
                    }
                    () = sleep_until(retry_at) => break,
                    () = sleep_until(forget_at) => {
                        tracing::warn!("zookeeper disconnected for a whole session timeout; leader unknown");
                        forget_at = None;
                        self.publish(None);
                    }
                }
            }
        }
    }

    /// Lists the group with a watch and reads the leader's data.
    async fn observe(&self, client: &zk::Client) -> Result<Observation, Error> {
        let path = self.spec.path();
        loop {
            let (children, watcher) = match client.list_and_watch_children(path).await {
                Ok(listed) => listed,
                Err(zk::Error::NoNode) => return self.watch_creation(client).await,
                Err(source) => {
                    return Err(Error::ZooKeeper {
                        operation: "list children",
                        target: path.to_owned(),
                        source,
                    });
                }
            };
            let Some(member) = choose_leader(children.iter().map(String::as_str)) else {
                tracing::debug!(children = children.len(), "no master in the group");
                return Ok(Observation {
                    leader: None,
                    watcher,
                });
            };
            let member_path = child_path(path, &member.name);
            let data = match client.get_data(&member_path).await {
                Ok((data, _stat)) => data,
                // The leader left between listing and reading: list again.
                Err(zk::Error::NoNode) => continue,
                Err(source) => {
                    return Err(Error::ZooKeeper {
                        operation: "read data",
                        target: member_path,
                        source,
                    });
                }
            };
            let leader = match leader_url(&member, &member_path, &data) {
                Ok(url) => Some(url),
                Err(e) => {
                    // A master wrote something we cannot use; another may take over later.
                    tracing::error!(error = %e, member = %member.name, "cannot use the leading master's info");
                    None
                }
            };
            if let Some(url) = &leader {
                tracing::debug!(member = %member.name, leader = %url, "leader read");
            }
            return Ok(Observation { leader, watcher });
        }
    }

    /// The group znode does not exist (no master ever ran): wait for its creation.
    async fn watch_creation(&self, client: &zk::Client) -> Result<Observation, Error> {
        let path = self.spec.path();
        match client.check_and_watch_stat(path).await {
            Ok((None, watcher)) => {
                tracing::debug!(path, "group znode absent; waiting for it");
                Ok(Observation {
                    leader: None,
                    watcher,
                })
            }
            // Created meanwhile: the existence watch fires on its next change, which is
            // soon enough, but look now rather than wait.
            Ok((Some(_), _)) => Box::pin(self.observe(client)).await,
            Err(source) => Err(Error::ZooKeeper {
                operation: "check",
                target: path.to_owned(),
                source,
            }),
        }
    }

    /// Publishes `leader` if it differs from what the channel holds.
    fn publish(&self, leader: Option<Url>) {
        self.leader.send_if_modified(|current| {
            if *current == leader {
                return false;
            }
            match &leader {
                Some(url) => tracing::info!(leader = %url, "leading master changed"),
                None => tracing::info!("no leading master known"),
            }
            *current = leader;
            true
        });
    }
}

/// The znode path of `child` under `parent`.
fn child_path(parent: &str, child: &str) -> String {
    if parent == "/" {
        format!("/{child}")
    } else {
        format!("{parent}/{child}")
    }
}

/// Whether `error` means the session is over and a new one is needed.
fn session_lost(error: &Error) -> bool {
    matches!(
        error,
        Error::ZooKeeper {
            source: zk::Error::SessionExpired | zk::Error::ClientClosed | zk::Error::AuthFailed,
            ..
        }
    )
}

/// Whether `error` is a connection loss the client recovers from by itself.
fn connection_lost(error: &Error) -> bool {
    matches!(
        error,
        Error::ZooKeeper {
            source: zk::Error::ConnectionLoss | zk::Error::Timeout,
            ..
        }
    )
}

/// The client error matching a terminal session state.
fn terminal_error(state: zk::SessionState) -> zk::Error {
    match state {
        zk::SessionState::AuthFailed => zk::Error::AuthFailed,
        zk::SessionState::Closed => zk::Error::ClientClosed,
        _ => zk::Error::SessionExpired,
    }
}

/// Sleeps until `at`, or forever when `None`.
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_min_up_to_max() {
        let min = Duration::from_millis(200);
        let max = Duration::from_secs(10);
        let delays: Vec<u128> = (0..8).map(|n| backoff(n, min, max).as_millis()).collect();
        assert_eq!(delays, [200, 400, 800, 1600, 3200, 6400, 10_000, 10_000]);
        assert_eq!(backoff(u32::MAX, min, max), max);
        // A misconfigured min above max never exceeds max.
        assert_eq!(backoff(0, max, min), min);
    }

    #[test]
    fn jitter_stays_within_half_and_whole() {
        let delay = Duration::from_secs(4);
        for _ in 0..100 {
            let jittered = jittered(delay);
            assert!(jittered >= delay / 2 && jittered <= delay, "{jittered:?}");
        }
    }

    #[test]
    fn child_paths_join_with_one_slash() {
        assert_eq!(child_path("/", "json.info_1"), "/json.info_1");
        assert_eq!(child_path("/mesos", "json.info_1"), "/mesos/json.info_1");
    }
}
