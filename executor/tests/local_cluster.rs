//! The real executor binary under the embedded local cluster: launched by an
//! agent for a scheduler that speaks the v1 scheduler API, real service
//! processes, real tarballs served over loopback HTTP. Each test walks one
//! scenario on its own cluster (its own block of agent addresses).

mod cluster;
mod common;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use cluster::{Binary, Scheduler, executor_info, framework, port, task_info};
use common::{ArtifactServer, evil_link_tarball, evil_tarball, find_named, sha256, tarball};
use executor_protocol::{
    AdminCommand, Artifact, Check, Command, ConfigFile, LogStream, Outcome, Readiness, RefusalKind,
    Reply, Request, SchedulerMessage, ServiceState, TaskDocument,
};
use mesos_local::{AgentConfig, ClusterConfig, LocalCluster};
use mesos_proto::v1::{Offer, TaskState};

const BINARY: &str = env!("CARGO_BIN_EXE_service-executor");

async fn start_cluster() -> anyhow::Result<LocalCluster> {
    let mut config = ClusterConfig::with_agents(1);
    config.first_agent_ip = test_support::ports::agent_block();
    config.allocation_interval = Duration::from_millis(100);
    config.executor_shutdown_grace_period = Duration::from_secs(3);
    config.executor_reregistration_timeout = Duration::from_secs(5);
    config.status_update_retry_interval = Duration::from_millis(500);
    config.agents[0] = AgentConfig {
        resources: "cpus:8;mem:4096;disk:1000;ports:[31000-31099]".into(),
        ..AgentConfig::default()
    };
    Ok(LocalCluster::start(config).await?)
}

/// The executor run in place (the debug binary is large to copy) with a
/// short update retry interval.
fn executor(offer: &Offer, id: &str) -> anyhow::Result<mesos_proto::v1::ExecutorInfo> {
    executor_info(
        offer,
        id,
        Binary::InPlace(BINARY),
        &[("EXECUTOR_UPDATE_RETRY_INTERVAL", "1secs")],
    )
}

fn artifact(url: &str, bytes: &[u8], destination: &str) -> Artifact {
    Artifact {
        url: url.into(),
        sha256: sha256(bytes),
        extract: true,
        destination: destination.into(),
    }
}

fn readiness(check: Check) -> Readiness {
    Readiness {
        check,
        interval_ms: 100,
        timeout_ms: 1000,
        initial_delay_ms: 0,
    }
}

/// The sandbox of an executor: `<work_dir>/slaves/*/frameworks/*/executors/<id>/runs/<run>`.
fn sandbox(cluster: &LocalCluster, executor_id: &str) -> anyhow::Result<PathBuf> {
    let slaves = cluster.agents()[0].work_dir.join("slaves");
    for agent in std::fs::read_dir(&slaves)?.flatten() {
        for framework in std::fs::read_dir(agent.path().join("frameworks"))?.flatten() {
            let runs = framework
                .path()
                .join("executors")
                .join(executor_id)
                .join("runs");
            if let Ok(mut runs) = std::fs::read_dir(&runs)
                && let Some(run) = runs.next()
            {
                return Ok(run?.path());
            }
        }
    }
    bail!("no sandbox for executor {executor_id}")
}

/// Polls until `done` holds.
async fn wait_until(what: &str, done: impl Fn() -> bool) -> anyhow::Result<()> {
    let deadline = Instant::now() + cluster::DEADLINE;
    while !done() {
        if Instant::now() > deadline {
            bail!("timed out waiting until {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// A service in the official layout: `svc/bin/serve.sh HOST PORT` says
/// where it serves, warms up, then serves HTTP.
fn http_service() -> anyhow::Result<Vec<u8>> {
    tarball(&[
        (
            "svc/bin/serve.sh",
            0o755,
            "#!/bin/sh\necho \"serving on $1:$2\"\necho 'warming up' >&2\nsleep 0.3\n\
             exec python3 -m http.server \"$2\" --bind \"$1\"\n",
        ),
        ("svc/conf/app.conf", 0o644, "shipped default\n"),
    ])
}

fn http_get(host: &str, port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect((host, port)) else {
        return false;
    };
    let _ = write!(s, "GET / HTTP/1.0\r\n\r\n");
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    answer.starts_with("HTTP/1.0 200")
}

fn outcome_reply(outcome: Outcome) -> anyhow::Result<Reply> {
    match outcome {
        Outcome::Ok(reply) => Ok(reply),
        other => bail!("refused: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_readiness_messages_kill_and_relaunch_from_cache() -> anyhow::Result<()> {
    let cluster = start_cluster().await?;
    let server = ArtifactServer::start().await?;
    let tgz = http_service()?;
    let url = server.serve("/svc-1.0.tgz", tgz.clone());
    let mut s = Scheduler::start(&cluster.master_url(), framework("executor-local"))?;

    for (round, task) in ["svc-1.g1", "svc-1.g2"].into_iter().enumerate() {
        let offer = s.offer().await?;
        let host = offer.hostname.clone();
        let (ports, p) = port(&offer, 0)?;
        let mut doc = TaskDocument::new(Command::Exec {
            program: "svc/bin/serve.sh".into(),
            args: vec![host.clone(), p.to_string()],
        });
        doc.artifacts.push(artifact(&url, &tgz, "."));
        doc.config_files.push(ConfigFile {
            path: "svc/conf/app.conf".into(),
            content: format!("port={p}\n"),
            mode: "0600".into(),
        });
        doc.readiness = Some(readiness(Check::Http {
            url: format!("http://{host}:{p}/"),
        }));
        doc.admin_commands.insert(
            "greet".into(),
            AdminCommand {
                argv: vec!["/bin/echo".into(), "hello".into()],
                accepts_args: true,
                timeout_ms: 5000,
            },
        );
        let executor_id = format!("exec-{round}");
        let info = task_info(
            &offer,
            task,
            executor(&offer, &executor_id)?,
            &doc,
            vec![ports],
        )?;
        s.launch(&offer, vec![info]).await?;

        s.update(task, TaskState::TaskStarting).await?;
        let running = s.update(task, TaskState::TaskRunning).await?;
        assert_eq!(running.healthy, Some(true));
        assert!(http_get(&host, p), "RUNNING only once the service serves");
        let sandbox = sandbox(&cluster, &executor_id)?;
        assert_eq!(
            std::fs::read_to_string(sandbox.join("svc/conf/app.conf"))?,
            format!("port={p}\n"),
            "the rendered config replaces the shipped one"
        );

        let agent = offer.agent_id.clone();
        let status = s
            .request(
                &agent,
                &executor_id,
                SchedulerMessage::new("status", Request::Status {}),
            )
            .await?;
        let Reply::Status { tasks } = outcome_reply(status)? else {
            bail!("not a status reply");
        };
        assert_eq!(tasks.len(), 1);
        assert_eq!(
            (tasks[0].task_id.as_str(), tasks[0].state, tasks[0].ready),
            (task, ServiceState::Running, true)
        );
        let tail = s
            .request(
                &agent,
                &executor_id,
                SchedulerMessage::new(
                    "tail",
                    Request::LogTail {
                        stream: LogStream::Stdout,
                        lines: 5,
                        task_id: None,
                    },
                ),
            )
            .await?;
        assert_eq!(
            outcome_reply(tail)?,
            Reply::LogTail {
                stream: LogStream::Stdout,
                lines: vec![format!("serving on {host}:{p}")]
            }
        );
        let admin = s
            .request(
                &agent,
                &executor_id,
                SchedulerMessage::new(
                    "greet",
                    Request::Admin {
                        name: "greet".into(),
                        args: vec!["world".into()],
                        task_id: Some(task.into()),
                    },
                ),
            )
            .await?;
        let Reply::Admin {
            exit_code, stdout, ..
        } = outcome_reply(admin)?
        else {
            bail!("not an admin reply");
        };
        assert_eq!((exit_code, stdout.as_str()), (Some(0), "hello world\n"));
        let refused = s
            .request(
                &agent,
                &executor_id,
                SchedulerMessage::new(
                    "rm",
                    Request::Admin {
                        name: "rm-rf".into(),
                        args: vec![],
                        task_id: None,
                    },
                ),
            )
            .await?;
        match refused {
            Outcome::Error(r) => {
                assert_eq!(r.kind, RefusalKind::NotAllowed);
                assert!(r.message.contains("greet"), "{}", r.message);
            }
            other => bail!("a command off the allow-list ran: {other:?}"),
        }

        // The framework has TASK_KILLING_STATE: KILLING, then KILLED.
        s.kill(task, &agent, None).await?;
        s.update(task, TaskState::TaskKilling).await?;
        let killed = s.update(task, TaskState::TaskKilled).await?;
        assert!(killed.message().contains("SIGTERM"), "{}", killed.message());
        assert!(!http_get(&host, p), "the service is gone");
    }

    assert_eq!(
        server.hits("/svc-1.0.tgz"),
        1,
        "the relaunch downloads nothing"
    );
    // The archive was unpacked once: both sandboxes link the cached tree.
    let tree = cluster.agents()[0]
        .work_dir
        .join("service-executor-cache/unpacked")
        .join(sha256(&tgz));
    let cached = tree.join("svc/bin/serve.sh");
    assert_eq!(
        std::fs::metadata(&cached)?.nlink(),
        3,
        "{}",
        cached.display()
    );
    let shipped = tree.join("svc/conf/app.conf");
    assert_eq!(
        std::fs::read_to_string(shipped)?,
        "shipped default\n",
        "rendering config files leaves the cache alone"
    );
    s.handle.teardown().await?;
    cluster.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_readiness_and_a_service_ignoring_sigterm() -> anyhow::Result<()> {
    let cluster = start_cluster().await?;
    let dir = tempfile::tempdir()?;
    let ready = dir.path().join("ready");
    let mut s = Scheduler::start(&cluster.master_url(), framework("executor-local"))?;
    let offer = s.offer().await?;
    let mut doc = TaskDocument::new(Command::Shell(format!(
        "trap '' TERM; (sleep 0.5; touch '{}') & exec sleep 600",
        ready.display()
    )));
    doc.readiness = Some(readiness(Check::Command(Command::Shell(format!(
        "test -f '{}'",
        ready.display()
    )))));
    doc.stop.grace_period_ms = 60_000;
    let info = task_info(
        &offer,
        "stubborn",
        executor(&offer, "exec-s")?,
        &doc,
        vec![],
    )?;
    s.launch(&offer, vec![info]).await?;
    s.update("stubborn", TaskState::TaskStarting).await?;
    let running = s.update("stubborn", TaskState::TaskRunning).await?;
    assert_eq!(running.healthy, Some(true));
    assert!(
        ready.exists(),
        "RUNNING only once the readiness command passed"
    );

    let status = s
        .request(
            &offer.agent_id,
            "exec-s",
            SchedulerMessage::new("status", Request::Status {}),
        )
        .await?;
    let Reply::Status { tasks } = outcome_reply(status)? else {
        bail!("not a status reply");
    };
    let pid = tasks
        .first()
        .and_then(|t| t.pid)
        .context("the service's pid")?;

    // The KILL's grace period overrides the document's minute.
    let grace = Duration::from_millis(700);
    let began = Instant::now();
    s.kill("stubborn", &offer.agent_id, Some(grace)).await?;
    s.update("stubborn", TaskState::TaskKilling).await?;
    let killed = s.update("stubborn", TaskState::TaskKilled).await?;
    let took = began.elapsed();
    assert!(took >= grace, "SIGKILL before the grace period: {took:?}");
    assert!(killed.message().contains("SIGKILL"), "{}", killed.message());
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "the service survived"
    );
    s.handle.teardown().await?;
    cluster.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_artifact_fails_the_task_and_runs_nothing() -> anyhow::Result<()> {
    let cluster = start_cluster().await?;
    let server = ArtifactServer::start().await?;
    let dir = tempfile::tempdir()?;
    let ran = dir.path().join("ran");
    let good = tarball(&[("run.sh", 0o755, "#!/bin/sh\n")])?;
    let mut bad = good.clone();
    let at = bad.len() - 9;
    bad[at] ^= 0xff;
    let url = server.serve("/app-1.0.tgz", bad);
    let mut s = Scheduler::start(&cluster.master_url(), framework("executor-local"))?;
    let offer = s.offer().await?;
    let mut doc = TaskDocument::new(Command::Shell(format!("touch '{}'", ran.display())));
    doc.artifacts.push(artifact(&url, &good, "."));
    let info = task_info(
        &offer,
        "tampered",
        executor(&offer, "exec-t")?,
        &doc,
        vec![],
    )?;
    s.launch(&offer, vec![info]).await?;
    s.update("tampered", TaskState::TaskStarting).await?;
    let failed = s.update("tampered", TaskState::TaskFailed).await?;
    let message = failed.message();
    assert!(
        message.contains("checksum mismatch") && message.contains(&sha256(&good)),
        "{message}"
    );
    assert!(!ran.exists(), "nothing may run");
    assert!(
        !sandbox(&cluster, "exec-t")?.join("run.sh").exists(),
        "nothing unpacked"
    );
    s.handle.teardown().await?;
    cluster.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archives_escaping_their_directory_are_refused() -> anyhow::Result<()> {
    let cluster = start_cluster().await?;
    let server = ArtifactServer::start().await?;
    let dir = tempfile::tempdir()?;
    let outside = dir.path().display().to_string();
    // More levels than the unpack directory is deep: resolved, the link leaves it.
    let climb = "../".repeat(20);
    let evil = [
        ("dotdot", evil_tarball("../escaped-dotdot")?),
        (
            "absolute",
            evil_tarball(&format!("{outside}/escaped-absolute"))?,
        ),
        (
            "symlink",
            evil_link_tarball("out", &format!("{climb}{}", &outside[1..]), "escaped-link")?,
        ),
    ];
    let mut s = Scheduler::start(&cluster.master_url(), framework("executor-local"))?;
    let offer = s.offer().await?;
    let mut tasks = Vec::new();
    for (name, bytes) in &evil {
        let url = server.serve(&format!("/{name}.tgz"), bytes.clone());
        let mut doc = TaskDocument::new(Command::Shell(format!("touch '{outside}/ran-{name}'")));
        doc.artifacts.push(artifact(&url, bytes, "dist"));
        tasks.push(task_info(
            &offer,
            name,
            executor(&offer, &format!("exec-{name}"))?,
            &doc,
            vec![],
        )?);
    }
    s.launch(&offer, tasks).await?;
    // The three fail in any order.
    let mut failed = std::collections::BTreeMap::new();
    while failed.len() < evil.len() {
        let event = s
            .next("the failures", |e| {
                e.update
                    .as_ref()
                    .is_some_and(|u| u.status.state() != TaskState::TaskStarting)
            })
            .await?;
        let status = event.update.context("update")?.status;
        failed.insert(status.task_id.value.clone(), status);
    }
    for (name, status) in &failed {
        assert_eq!(status.state(), TaskState::TaskFailed, "{name}");
        let why = match name.as_str() {
            "dotdot" => "contains \"..\"",
            "absolute" => "has an absolute path",
            _ => "points outside the destination",
        };
        assert!(
            status.message().contains("refusing to unpack") && status.message().contains(why),
            "{name}: {}",
            status.message()
        );
    }
    let work_dir = &cluster.agents()[0].work_dir;
    for root in [work_dir.as_path(), dir.path()] {
        assert_eq!(find_named(root, "escaped-"), Vec::<PathBuf>::new());
        assert_eq!(find_named(root, "ran-"), Vec::<PathBuf>::new());
    }
    s.handle.teardown().await?;
    cluster.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_crashing_at_start_fails_with_its_exit_status_and_stderr() -> anyhow::Result<()> {
    let cluster = start_cluster().await?;
    let mut s = Scheduler::start(&cluster.master_url(), framework("executor-local"))?;
    let offer = s.offer().await?;
    let (ports, p) = port(&offer, 0)?;
    let mut doc = TaskDocument::new(Command::Shell(
        "echo 'loading config' >&2; echo 'FATAL: cannot bind' >&2; exit 3".into(),
    ));
    doc.readiness = Some(readiness(Check::Tcp {
        host: offer.hostname.clone(),
        port: p,
    }));
    let info = task_info(
        &offer,
        "crash",
        executor(&offer, "exec-c")?,
        &doc,
        vec![ports],
    )?;
    s.launch(&offer, vec![info]).await?;
    let failed = s.update("crash", TaskState::TaskFailed).await?;
    let message = failed.message();
    assert!(message.contains("exited with status 3"), "{message}");
    assert!(
        message.contains("loading config\nFATAL: cannot bind"),
        "{message}"
    );
    s.handle.teardown().await?;
    cluster.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_restart_while_an_update_is_unacknowledged() -> anyhow::Result<()> {
    let cluster = start_cluster().await?;
    let dir = tempfile::tempdir()?;
    let ready = dir.path().join("ready");
    let mut s = Scheduler::start(&cluster.master_url(), framework("executor-local"))?;
    let offer = s.offer().await?;
    let mut doc = TaskDocument::new(Command::Shell("echo $$ > pid; exec sleep 600".into()));
    doc.readiness = Some(readiness(Check::Command(Command::Shell(format!(
        "test -f '{}'",
        ready.display()
    )))));
    let info = task_info(&offer, "steady", executor(&offer, "exec-r")?, &doc, vec![])?;
    s.launch(&offer, vec![info]).await?;
    // Preparing, then started and waiting for readiness.
    s.update("steady", TaskState::TaskStarting).await?;
    s.update("steady", TaskState::TaskStarting).await?;
    let sandbox = sandbox(&cluster, "exec-r")?;
    let log = sandbox.join("stderr");
    let pid = std::fs::read_to_string(sandbox.join("pid"))?;

    // The agent goes away; meanwhile the service becomes ready, so the
    // executor holds a TASK_RUNNING nobody acknowledged.
    cluster.stop_agent(0).await?;
    std::fs::write(&ready, "")?;
    wait_until("the executor reported TASK_RUNNING", || {
        std::fs::read_to_string(&log).is_ok_and(|l| l.contains("TASK_RUNNING"))
    })
    .await?;
    cluster.restart_agent(0).await?;

    let running = s.update("steady", TaskState::TaskRunning).await?;
    assert_eq!(running.healthy, Some(true));
    // The agent takes the update from the SUBSCRIBE before it answers, so
    // the executor logs the re-subscription just after.
    wait_until("the re-subscription carried the update", || {
        std::fs::read_to_string(&log).is_ok_and(|l| l.contains("unacknowledged_updates=1"))
    })
    .await?;
    assert_eq!(
        std::fs::read_to_string(sandbox.join("pid"))?,
        pid,
        "the service kept running"
    );
    assert!(Path::new(&format!("/proc/{}", pid.trim())).exists());

    s.kill("steady", &offer.agent_id, None).await?;
    s.update("steady", TaskState::TaskKilling).await?;
    s.update("steady", TaskState::TaskKilled).await?;
    s.handle.teardown().await?;
    cluster.shutdown().await;
    Ok(())
}
