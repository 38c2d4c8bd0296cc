//! One task's life: prepare (artifacts, config files), start, wait for
//! readiness, report health, and stop on request or notice the exit.
//!
//! A runner reports state changes and health messages to the executor loop
//! through a channel and publishes its [`Health`] in a `watch` for status
//! requests; it never talks to the agent itself.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use executor_protocol::{
    CheckResult, ExecutorBody, ExecutorMessage, Health, LogStream, ServiceState, TaskDocument,
};
use mesos_proto::v1::{TaskId, TaskState, task_status::Reason};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tracing::{info, warn};

use crate::artifact::{Fetcher, LazyClient};
use crate::error::Error;
use crate::logs;
use crate::service::{self, Environment, Service};
use crate::updates::StatusChange;

/// Lines of stderr put into a TASK_FAILED message.
pub const STDERR_LINES_IN_FAILURE: usize = 20;
/// Longest TASK_FAILED message built from stderr.
const MAX_FAILURE_MESSAGE: usize = 4096;

/// What a runner tells the executor loop.
#[derive(Debug)]
pub enum Output {
    /// Report this state change to the agent.
    Status(StatusChange),
    /// Send this framework message to the scheduler.
    Message(ExecutorMessage),
    /// The runner has finished (after its terminal status).
    Done(TaskId),
}

/// What the executor loop tells a runner.
#[derive(Debug)]
pub enum TaskCommand {
    /// Stop the service. `grace` overrides the document's grace period;
    /// `budget` caps the whole stop (pre-stop included), as during SHUTDOWN.
    Kill {
        /// Grace period between the stop signal and SIGKILL.
        grace: Option<Duration>,
        /// Upper bound for the whole stop.
        budget: Option<Duration>,
    },
}

/// Everything a runner needs.
#[derive(Debug)]
pub struct TaskContext {
    /// The task id.
    pub task_id: TaskId,
    /// The parsed task document.
    pub document: Arc<TaskDocument>,
    /// `TaskInfo.kill_policy.grace_period`, if set.
    pub kill_policy_grace: Option<Duration>,
    /// The sandbox.
    pub sandbox: PathBuf,
    /// Artifact fetcher (shared cache).
    pub fetcher: Fetcher,
    /// HTTP client for readiness checks.
    pub http: LazyClient,
    /// To the executor loop.
    pub out: mpsc::UnboundedSender<Output>,
    /// Published state for status requests.
    pub health: watch::Sender<Health>,
}

/// The directory of a task's log files: `<sandbox>/logs/<task id>` with
/// characters other than `[A-Za-z0-9._-]` replaced by `_`.
pub fn log_dir(sandbox: &Path, task_id: &str) -> PathBuf {
    let safe: String = task_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let safe = if safe.trim_matches('.').is_empty() {
        "task".to_owned()
    } else {
        safe
    };
    sandbox.join("logs").join(safe)
}

/// The log file of `stream` for a task.
pub fn log_file(sandbox: &Path, task_id: &str, stream: LogStream) -> PathBuf {
    log_dir(sandbox, task_id).join(stream.file_name())
}

/// The Java runtime a task document's `java_home` stands for: the directory
/// itself when it has `bin/java`, else its one subdirectory that has (JRE
/// tarballs put everything under a versioned top directory).
pub fn java_home(dir: &Path) -> Result<PathBuf, Error> {
    let has_java = |d: &Path| d.join("bin/java").is_file();
    if has_java(dir) {
        return Ok(dir.to_path_buf());
    }
    let entries = std::fs::read_dir(dir).map_err(|e| Error::NoJavaRuntime {
        dir: dir.to_path_buf(),
        reason: format!("cannot read it ({e})"),
    })?;
    let runtimes: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| has_java(path))
        .collect();
    match runtimes.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(Error::NoJavaRuntime {
            dir: dir.to_path_buf(),
            reason: "neither it nor a directory in it has bin/java; the JRE tarball must hold a Java runtime (bin/java), at its top or under one top directory".into(),
        }),
        _ => Err(Error::NoJavaRuntime {
            dir: dir.to_path_buf(),
            reason: format!(
                "{} directories in it have bin/java; the JRE tarball must hold one runtime",
                runtimes.len()
            ),
        }),
    }
}

/// The environment the service and its helpers run in.
pub fn environment(document: &TaskDocument, sandbox: &Path) -> Environment {
    let mut vars = document.environment.clone();
    vars.entry("MESOS_SANDBOX".into())
        .or_insert_with(|| sandbox.display().to_string());
    // Checked while preparing the task; before that there is nothing to find.
    if let Some(home) = document
        .java_home
        .as_ref()
        .and_then(|dir| java_home(&sandbox.join(dir)).ok())
    {
        let path = vars
            .get("PATH")
            .cloned()
            .or_else(|| std::env::var("PATH").ok())
            .unwrap_or_else(|| "/usr/bin:/bin".into());
        vars.insert("PATH".into(), format!("{}/bin:{path}", home.display()));
        vars.insert("JAVA_HOME".into(), home.display().to_string());
    }
    Environment {
        cwd: document
            .working_dir
            .as_ref()
            .map_or_else(|| sandbox.to_path_buf(), |d| sandbox.join(d)),
        vars,
    }
}

/// The initial published health of a task.
pub fn initial_health(task_id: &TaskId) -> Health {
    Health {
        task_id: task_id.value.clone(),
        state: ServiceState::Preparing,
        pid: None,
        rss_bytes: None,
        uptime_ms: None,
        ready: false,
        last_check: None,
        details: String::new(),
    }
}

/// Resident memory of `pid` in bytes, from `/proc`.
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

struct Runner {
    ctx: TaskContext,
    env: Environment,
}

/// Runs a task to its end.
pub async fn run(ctx: TaskContext, mut commands: mpsc::UnboundedReceiver<TaskCommand>) {
    let env = environment(&ctx.document, &ctx.sandbox);
    let task_id = ctx.task_id.clone();
    let mut runner = Runner { ctx, env };
    runner.status(TaskState::TaskStarting, "preparing the service", None);

    let prepared = tokio::select! {
        r = runner.prepare() => Some(r),
        cmd = commands.recv() => {
            if cmd.is_some() {
                info!(task_id = %task_id.value, "killed while preparing");
            }
            None
        }
    };
    match prepared {
        None => {
            runner.publish(|h| {
                h.state = ServiceState::Exited;
                h.details = "killed before the service started".into();
            });
            runner.status(
                TaskState::TaskKilled,
                "killed before the service started",
                None,
            );
        }
        Some(Err(e)) => {
            warn!(task_id = %task_id.value, error = %e, "preparing the task failed");
            runner.publish(|h| {
                h.state = ServiceState::Exited;
                h.details = e.to_string();
            });
            runner.failed(e.to_string(), Reason::ContainerLaunchFailed);
        }
        Some(Ok(())) => {
            // The artifacts are in place now, so a Java runtime among them can be found.
            runner.env = environment(&runner.ctx.document, &runner.ctx.sandbox);
            runner.supervise(&mut commands).await
        }
    }
    let _ = runner.ctx.out.send(Output::Done(task_id));
}

impl Runner {
    fn status(&self, state: TaskState, message: impl Into<String>, healthy: Option<bool>) {
        let mut change = StatusChange::new(self.ctx.task_id.clone(), state, message);
        change.healthy = healthy;
        let _ = self.ctx.out.send(Output::Status(change));
    }

    fn failed(&self, message: String, reason: Reason) {
        let mut change =
            StatusChange::new(self.ctx.task_id.clone(), TaskState::TaskFailed, message);
        change.reason = Some(reason);
        let _ = self.ctx.out.send(Output::Status(change));
    }

    fn publish(&self, f: impl FnOnce(&mut Health)) {
        self.ctx.health.send_modify(f);
    }

    /// Downloads and installs artifacts, then writes config files.
    async fn prepare(&self) -> Result<(), Error> {
        let doc = &self.ctx.document;
        for artifact in &doc.artifacts {
            self.ctx
                .fetcher
                .install(artifact, &self.ctx.sandbox)
                .await?;
        }
        for file in &doc.config_files {
            let path = self.ctx.sandbox.join(&file.path);
            if let Some(parent) = path.parent() {
                tokio::fs::create_dir_all(parent)
                    .await
                    .map_err(Error::io("create config directory", parent))?;
            }
            // A new file renamed over the old one: the old one may be a hard
            // link into the artifact cache, which must stay as it was.
            let tmp = path.with_file_name(format!(
                ".{}.tmp",
                path.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
            ));
            let _ = tokio::fs::remove_file(&tmp).await;
            tokio::fs::write(&tmp, &file.content)
                .await
                .map_err(Error::io("write config file", &tmp))?;
            let mode = file.mode_bits().unwrap_or(0o644);
            use std::os::unix::fs::PermissionsExt;
            tokio::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode))
                .await
                .map_err(Error::io("set config file mode", &tmp))?;
            tokio::fs::rename(&tmp, &path)
                .await
                .map_err(Error::io("write config file", &path))?;
        }
        if let Some(dir) = &doc.java_home {
            java_home(&self.ctx.sandbox.join(dir))?;
        }
        Ok(())
    }

    async fn supervise(&self, commands: &mut mpsc::UnboundedReceiver<TaskCommand>) {
        let doc = self.ctx.document.clone();
        let task = self.ctx.task_id.value.clone();
        let dir = log_dir(&self.ctx.sandbox, &task);
        let mut service = match Service::start(&self.env, &doc.command, &dir, doc.logs) {
            Ok(s) => s,
            Err(e) => {
                self.publish(|h| {
                    h.state = ServiceState::Exited;
                    h.details = e.to_string();
                });
                self.failed(e.to_string(), Reason::ContainerLaunchFailed);
                return;
            }
        };
        let started = Instant::now();
        let pid = service.pid();
        info!(task_id = %task, pid, "service started");
        self.publish(|h| {
            h.state = ServiceState::Starting;
            h.pid = Some(pid);
        });

        let readiness = doc.readiness.clone();
        let mut ready = false;
        match &readiness {
            None => {
                ready = true;
                self.publish(|h| {
                    h.state = ServiceState::Running;
                    h.ready = true;
                });
                self.status(TaskState::TaskRunning, "service started", None);
            }
            Some(_) => self.status(
                TaskState::TaskStarting,
                format!("service started (pid {pid}); waiting for readiness"),
                None,
            ),
        }
        let mut next_probe = readiness
            .as_ref()
            .map(|r| started + Duration::from_millis(r.initial_delay_ms));
        let health_every = Duration::from_millis(doc.health_interval_ms);
        let mut next_health = started + health_every;

        loop {
            let probe_at = next_probe.filter(|_| !ready);
            tokio::select! {
                exit = service.wait() => {
                    service.finish().await;
                    self.exited(exit, started, &dir, ready).await;
                    return;
                }
                cmd = commands.recv() => {
                    let (grace, budget) = match cmd {
                        Some(TaskCommand::Kill { grace, budget }) => (grace, budget),
                        None => (None, None),
                    };
                    self.stop(&mut service, grace, budget).await;
                    return;
                }
                () = tokio::time::sleep_until(probe_at.unwrap_or(started)), if probe_at.is_some() => {
                    let Some(r) = &readiness else { continue };
                    let result = service::probe(
                        &r.check,
                        &self.env,
                        &self.ctx.http,
                        Duration::from_millis(r.timeout_ms),
                    )
                    .await;
                    let passed = self.record_check(result, started);
                    next_probe = Some(Instant::now() + Duration::from_millis(r.interval_ms));
                    if passed {
                        ready = true;
                        self.publish(|h| h.state = ServiceState::Running);
                        info!(task_id = %task, pid, "service ready");
                        self.status(TaskState::TaskRunning, "service is ready", Some(true));
                    }
                }
                () = tokio::time::sleep_until(next_health) => {
                    if ready && let Some(r) = &readiness {
                        let result = service::probe(
                            &r.check,
                            &self.env,
                            &self.ctx.http,
                            Duration::from_millis(r.timeout_ms),
                        )
                        .await;
                        self.record_check(result, started);
                    }
                    self.publish(|h| {
                        h.rss_bytes = rss_bytes(pid);
                        h.uptime_ms = Some(millis(started.elapsed()));
                    });
                    let health = self.ctx.health.borrow().clone();
                    let _ = self
                        .ctx
                        .out
                        .send(Output::Message(ExecutorMessage::new(ExecutorBody::Health(health))));
                    next_health = Instant::now() + health_every;
                }
            }
        }
    }

    fn record_check(&self, result: Result<String, String>, started: Instant) -> bool {
        let ok = result.is_ok();
        let detail = match result {
            Ok(d) | Err(d) => d,
        };
        self.publish(|h| {
            h.ready = ok;
            h.last_check = Some(CheckResult {
                ok,
                at_uptime_ms: millis(started.elapsed()),
                detail,
            });
        });
        ok
    }

    async fn exited(
        &self,
        exit: std::io::Result<std::process::ExitStatus>,
        started: Instant,
        dir: &Path,
        was_ready: bool,
    ) {
        let task = &self.ctx.task_id.value;
        let (success, what) = match &exit {
            Ok(status) => (status.success(), service::describe_exit(status)),
            Err(e) => (false, format!("could not be waited for: {e}")),
        };
        let uptime = started.elapsed();
        info!(task_id = %task, status = %what, uptime_ms = millis(uptime), "service exited");
        self.publish(|h| {
            h.state = ServiceState::Exited;
            h.pid = None;
            h.ready = false;
            h.details = format!("service {what}");
        });
        if success {
            self.status(TaskState::TaskFinished, format!("service {what}"), None);
            return;
        }
        let stderr = logs::tail(&dir.join("stderr"), STDERR_LINES_IN_FAILURE).unwrap_or_default();
        let phase = if was_ready {
            ""
        } else {
            " before it was ready"
        };
        let mut message = format!(
            "service {what}{phase} after {:.1}s; last lines of stderr:\n{}",
            uptime.as_secs_f64(),
            stderr.join("\n")
        );
        if message.len() > MAX_FAILURE_MESSAGE {
            // Keep the end: the last lines say most about the failure.
            let cut = message.len() - MAX_FAILURE_MESSAGE;
            let cut = (cut..message.len())
                .find(|i| message.is_char_boundary(*i))
                .unwrap_or(message.len());
            message = format!("…{}", &message[cut..]);
        }
        self.failed(message, Reason::CommandExecutorFailed);
    }

    /// Pre-stop command, then the stop signal, then SIGKILL after the grace period.
    async fn stop(&self, service: &mut Service, grace: Option<Duration>, budget: Option<Duration>) {
        let doc = &self.ctx.document;
        let task = &self.ctx.task_id.value;
        let began = Instant::now();
        let deadline = budget.map(|b| began + b);
        let left = |d: Duration| match deadline {
            Some(deadline) => d.min(deadline.saturating_duration_since(Instant::now())),
            None => d,
        };
        self.publish(|h| h.state = ServiceState::Stopping);
        let mut notes = Vec::new();

        if let Some(pre) = &doc.stop.pre_stop {
            let timeout = left(Duration::from_millis(pre.timeout_ms));
            info!(task_id = %task, command = %service::describe(&pre.command), "running pre-stop command");
            match service::run_helper(&self.env, &pre.command, timeout, true).await {
                Ok(o) if o.timed_out => notes.push(format!("pre-stop timed out after {timeout:?}")),
                Ok(o) => notes.push(format!(
                    "pre-stop exited with {}",
                    o.exit_code.map_or("a signal".into(), |c| c.to_string())
                )),
                Err(e) => notes.push(format!("pre-stop failed: {e}")),
            }
        }

        let grace = left(
            grace
                .or(self.ctx.kill_policy_grace)
                .unwrap_or(Duration::from_millis(doc.stop.grace_period_ms)),
        );
        let pid = service.pid();
        if let Err(e) = service.signal(doc.stop.signal) {
            warn!(task_id = %task, error = %e, "cannot signal the service");
        }
        info!(task_id = %task, pid, signal = ?doc.stop.signal, grace_ms = millis(grace), "stop signal sent");
        let exit = match tokio::time::timeout(grace, service.wait()).await {
            Ok(exit) => {
                notes.push(format!(
                    "service stopped on SIG{}",
                    format!("{:?}", doc.stop.signal).to_uppercase()
                ));
                exit
            }
            Err(_) => {
                warn!(task_id = %task, pid, "grace period over; sending SIGKILL");
                service::kill_group(pid);
                notes.push(format!(
                    "service ignored the stop signal for {:.1}s and was killed with SIGKILL",
                    grace.as_secs_f64()
                ));
                service.wait().await
            }
        };
        service.finish().await;
        let what = exit
            .as_ref()
            .map_or_else(|e| e.to_string(), service::describe_exit);
        self.publish(|h| {
            h.state = ServiceState::Exited;
            h.pid = None;
            h.ready = false;
            h.details = format!("killed: service {what}");
        });
        self.status(
            TaskState::TaskKilled,
            format!("{} ({what})", notes.join("; ")),
            None,
        );
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use executor_protocol::Command;

    fn runtime_at(dir: &Path) {
        std::fs::create_dir_all(dir.join("bin")).expect("mkdir");
        std::fs::write(dir.join("bin/java"), "").expect("write");
    }

    #[test]
    fn the_java_runtime_is_the_directory_or_its_one_top_directory() {
        let sandbox = tempfile::tempdir().expect("tempdir");
        let jre = sandbox.path().join("jre");
        runtime_at(&jre.join("jdk-17.0.15-jre"));
        std::fs::create_dir_all(jre.join("legal")).expect("mkdir");
        assert_eq!(java_home(&jre).expect("found"), jre.join("jdk-17.0.15-jre"));
        assert_eq!(
            java_home(&jre.join("jdk-17.0.15-jre")).expect("found"),
            jre.join("jdk-17.0.15-jre")
        );

        runtime_at(&jre.join("jdk-21"));
        let two = java_home(&jre).expect_err("two runtimes").to_string();
        assert!(two.contains("2 directories"), "{two}");
        let none = java_home(&sandbox.path().join("missing"))
            .expect_err("nothing there")
            .to_string();
        assert!(none.contains("cannot read"), "{none}");
        let empty = java_home(&jre.join("legal"))
            .expect_err("no java")
            .to_string();
        assert!(empty.contains("bin/java"), "{empty}");
    }

    #[test]
    fn the_java_runtime_comes_first_for_the_service() {
        let sandbox = tempfile::tempdir().expect("tempdir");
        runtime_at(&sandbox.path().join("jre/jre-17"));
        let mut document = TaskDocument::new(Command::Shell("java -version".into()));
        document
            .environment
            .insert("PATH".into(), "/opt/bin".into());
        document.java_home = Some("jre".into());
        let env = environment(&document, sandbox.path());
        let home = sandbox.path().join("jre/jre-17");
        assert_eq!(env.vars["JAVA_HOME"], home.display().to_string());
        assert_eq!(env.vars["PATH"], format!("{}/bin:/opt/bin", home.display()));

        document.java_home = None;
        let env = environment(&document, sandbox.path());
        assert!(!env.vars.contains_key("JAVA_HOME"));
        assert_eq!(env.vars["PATH"], "/opt/bin");
    }
}
