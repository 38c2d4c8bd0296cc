//! The real executor binary against a fake agent on loopback, with real
//! service processes, real tarballs served over HTTP and real checksums.

mod common;

use std::time::{Duration, Instant};

use anyhow::Context;
use common::*;
use executor_protocol::{
    AdminCommand, Artifact, Check, Command, ExecutorBody, LogStream, Outcome, PreStop, Readiness,
    RefusalKind, Reply, Request, SchedulerMessage, ServiceState, TaskDocument,
};
use mesos_proto::v1::TaskState;
use mesos_proto::v1::task_status::Source;

fn serve_document(url: &str, sha: &str, port: u16) -> TaskDocument {
    let mut doc = TaskDocument::new(Command::Exec {
        program: "svc/bin/serve.sh".into(),
        args: vec![port.to_string()],
    });
    doc.artifacts.push(Artifact {
        url: url.into(),
        sha256: sha.into(),
        extract: true,
        destination: ".".into(),
    });
    doc.readiness = Some(Readiness {
        check: Check::Tcp {
            host: "127.0.0.1".into(),
            port,
        },
        interval_ms: 100,
        timeout_ms: 1000,
        initial_delay_ms: 0,
    });
    doc.health_interval_ms = 60_000;
    doc
}

struct Setup {
    agent: FakeAgent,
    server: ArtifactServer,
    dir: tempfile::TempDir,
}

async fn setup() -> anyhow::Result<Setup> {
    Ok(Setup {
        agent: FakeAgent::start().await?,
        server: ArtifactServer::start().await?,
        dir: tempfile::tempdir()?,
    })
}

impl Setup {
    fn executor(&self, name: &str) -> anyhow::Result<ExecutorProcess> {
        ExecutorProcess::start(
            &self.agent,
            &self.dir.path().join(name),
            &self.dir.path().join("cache"),
            &[],
        )
    }
}

#[tokio::test]
async fn happy_path_readiness_messages_and_kill() -> anyhow::Result<()> {
    let mut s = setup().await?;
    let tarball = service_tarball()?;
    let url = s.server.serve("/svc-1.0.tgz", tarball.clone());
    let port = free_port()?;
    let mut doc = serve_document(&url, &sha256(&tarball), port);
    doc.admin_commands.insert(
        "greet".into(),
        AdminCommand {
            argv: vec!["/bin/echo".into(), "hello".into()],
            accepts_args: true,
            timeout_ms: 5000,
        },
    );
    let mut executor = s.executor("sandbox")?;

    let subscribe = s
        .agent
        .expect("SUBSCRIBE", |c| c.subscribe.is_some())
        .await?;
    assert_eq!(subscribe.executor_id.value, "E0");
    s.agent.send(launch("task-1", &doc)?)?;

    let starting = s.agent.expect_update(TaskState::TaskStarting).await?;
    assert_eq!(starting.source(), Source::Executor);
    let running = s.agent.expect_update(TaskState::TaskRunning).await?;
    assert_eq!(running.healthy, Some(true));
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(),
        "RUNNING only once the service listens"
    );
    assert_ne!(starting.uuid, running.uuid);

    // Status, log tail and admin commands, answered over framework messages.
    s.agent
        .request(&SchedulerMessage::new("r1", Request::Status {}))?;
    let reply = s.agent.expect_response("r1").await?;
    let ExecutorBody::Response(response) = reply.message else {
        anyhow::bail!("not a response");
    };
    let Outcome::Ok(Reply::Status { tasks }) = response.result else {
        anyhow::bail!("not a status reply: {:?}", response.result);
    };
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0].task_id, "task-1");
    assert_eq!(tasks[0].state, ServiceState::Running);
    assert!(tasks[0].ready);
    assert!(tasks[0].pid.is_some());
    assert!(tasks[0].rss_bytes.unwrap_or(0) > 0);

    s.agent.request(&SchedulerMessage::new(
        "r2",
        Request::LogTail {
            stream: LogStream::Stderr,
            lines: 10,
            task_id: None,
        },
    ))?;
    let reply = s.agent.expect_response("r2").await?;
    let ExecutorBody::Response(response) = reply.message else {
        anyhow::bail!("not a response");
    };
    assert_eq!(
        response.result,
        Outcome::Ok(Reply::LogTail {
            stream: LogStream::Stderr,
            lines: vec!["warming up".into()]
        })
    );

    s.agent.request(&SchedulerMessage::new(
        "r3",
        Request::Admin {
            name: "greet".into(),
            args: vec!["world".into()],
            task_id: Some("task-1".into()),
        },
    ))?;
    let reply = s.agent.expect_response("r3").await?;
    let ExecutorBody::Response(response) = reply.message else {
        anyhow::bail!("not a response");
    };
    let Outcome::Ok(Reply::Admin {
        exit_code, stdout, ..
    }) = response.result
    else {
        anyhow::bail!("not an admin reply: {:?}", response.result);
    };
    assert_eq!((exit_code, stdout.as_str()), (Some(0), "hello world\n"));

    s.agent.request(&SchedulerMessage::new(
        "r4",
        Request::Admin {
            name: "rm-rf".into(),
            args: vec![],
            task_id: None,
        },
    ))?;
    let reply = s.agent.expect_response("r4").await?;
    let ExecutorBody::Response(response) = reply.message else {
        anyhow::bail!("not a response");
    };
    assert!(
        matches!(&response.result, Outcome::Error(r) if r.kind == RefusalKind::NotAllowed),
        "{:?}",
        response.result
    );

    // KILL: the service goes, TASK_KILLED, and the executor exits once acked.
    s.agent.send(kill("task-1", None))?;
    let killed = s.agent.expect_update(TaskState::TaskKilled).await?;
    assert!(killed.message().contains("SIGTERM"), "{}", killed.message());
    assert_eq!(executor.exited().await?, Some(0), "{}", executor.log());
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
    Ok(())
}

#[tokio::test]
async fn tampered_artifact_fails_the_task_and_runs_nothing() -> anyhow::Result<()> {
    let mut s = setup().await?;
    let good = tarball(&[("run.sh", 0o755, "#!/bin/sh\ntouch ran\n")])?;
    let mut bad = good.clone();
    let last = bad.len() - 9;
    bad[last] ^= 0xff;
    let url = s.server.serve("/app.tgz", bad);
    let mut doc = TaskDocument::new(Command::Shell("touch ran".into()));
    doc.artifacts.push(Artifact {
        url,
        sha256: sha256(&good),
        extract: true,
        destination: ".".into(),
    });
    let mut executor = s.executor("sandbox")?;
    s.agent
        .expect("SUBSCRIBE", |c| c.subscribe.is_some())
        .await?;
    s.agent.send(launch("t", &doc)?)?;
    let failed = s.agent.expect_update(TaskState::TaskFailed).await?;
    assert!(
        failed.message().contains("checksum mismatch") && failed.message().contains(&sha256(&good)),
        "{}",
        failed.message()
    );
    assert_eq!(executor.exited().await?, Some(0));
    assert!(
        !s.dir.path().join("sandbox/ran").exists(),
        "nothing may run"
    );
    assert!(
        !s.dir.path().join("sandbox/run.sh").exists(),
        "nothing unpacked"
    );
    Ok(())
}

#[tokio::test]
async fn archive_escaping_its_directory_is_refused() -> anyhow::Result<()> {
    let mut s = setup().await?;
    let evil = evil_tarball("../escaped")?;
    let url = s.server.serve("/evil.tgz", evil.clone());
    let mut doc = TaskDocument::new(Command::Shell("touch ran".into()));
    doc.artifacts.push(Artifact {
        url,
        sha256: sha256(&evil),
        extract: true,
        destination: "dist".into(),
    });
    let mut executor = s.executor("sandbox")?;
    s.agent
        .expect("SUBSCRIBE", |c| c.subscribe.is_some())
        .await?;
    s.agent.send(launch("t", &doc)?)?;
    let failed = s.agent.expect_update(TaskState::TaskFailed).await?;
    assert!(
        failed.message().contains("refusing to unpack") && failed.message().contains(".."),
        "{}",
        failed.message()
    );
    assert_eq!(executor.exited().await?, Some(0));
    assert!(!s.dir.path().join("sandbox/escaped").exists());
    assert!(!s.dir.path().join("sandbox/ran").exists());
    Ok(())
}

#[tokio::test]
async fn service_crashing_at_start_fails_with_exit_code_and_stderr() -> anyhow::Result<()> {
    let mut s = setup().await?;
    let mut doc = TaskDocument::new(Command::Shell(
        "echo 'loading config' >&2; echo 'FATAL: bad port' >&2; exit 3".into(),
    ));
    doc.readiness = Some(Readiness {
        check: Check::Tcp {
            host: "127.0.0.1".into(),
            port: free_port()?,
        },
        interval_ms: 100,
        timeout_ms: 500,
        initial_delay_ms: 0,
    });
    let mut executor = s.executor("sandbox")?;
    s.agent
        .expect("SUBSCRIBE", |c| c.subscribe.is_some())
        .await?;
    s.agent.send(launch("t", &doc)?)?;
    let failed = s.agent.expect_update(TaskState::TaskFailed).await?;
    let message = failed.message();
    assert!(message.contains("exited with status 3"), "{message}");
    assert!(
        message.contains("loading config\nFATAL: bad port"),
        "{message}"
    );
    assert_eq!(executor.exited().await?, Some(0));
    Ok(())
}

#[tokio::test]
async fn service_ignoring_sigterm_is_killed_after_the_grace_period() -> anyhow::Result<()> {
    let mut s = setup().await?;
    let mut doc = TaskDocument::new(Command::Shell(
        "trap '' TERM; echo up > up; exec sleep 600".into(),
    ));
    doc.stop.grace_period_ms = 60_000;
    let mut executor = s.executor("sandbox")?;
    s.agent
        .expect("SUBSCRIBE", |c| c.subscribe.is_some())
        .await?;
    s.agent.send(launch("t", &doc)?)?;
    s.agent.expect_update(TaskState::TaskRunning).await?;
    wait_for_file(&s.dir.path().join("sandbox/up")).await?;

    // The KILL's kill policy overrides the document's grace period.
    let grace = Duration::from_millis(700);
    let began = Instant::now();
    s.agent.send(kill("t", Some(grace)))?;
    let killed = s.agent.expect_update(TaskState::TaskKilled).await?;
    let took = began.elapsed();
    assert!(
        took >= grace,
        "SIGKILL came before the grace period: {took:?}"
    );
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert!(killed.message().contains("SIGKILL"), "{}", killed.message());
    assert_eq!(executor.exited().await?, Some(0));
    Ok(())
}

#[tokio::test]
async fn pre_stop_command_runs_before_the_signal() -> anyhow::Result<()> {
    let mut s = setup().await?;
    let mut doc = TaskDocument::new(Command::Shell(
        "trap 'echo term >> order; exit 0' TERM; echo up > up; while :; do sleep 0.05; done".into(),
    ));
    doc.stop.pre_stop = Some(PreStop {
        command: Command::Shell("sleep 0.2; echo drain >> order".into()),
        timeout_ms: 5000,
    });
    let mut executor = s.executor("sandbox")?;
    s.agent
        .expect("SUBSCRIBE", |c| c.subscribe.is_some())
        .await?;
    s.agent.send(launch("t", &doc)?)?;
    s.agent.expect_update(TaskState::TaskRunning).await?;
    wait_for_file(&s.dir.path().join("sandbox/up")).await?;
    s.agent.send(kill("t", None))?;
    let killed = s.agent.expect_update(TaskState::TaskKilled).await?;
    assert!(
        killed.message().contains("pre-stop exited with 0"),
        "{}",
        killed.message()
    );
    assert_eq!(
        std::fs::read_to_string(s.dir.path().join("sandbox/order"))?,
        "drain\nterm\n"
    );
    assert_eq!(executor.exited().await?, Some(0));
    Ok(())
}

#[tokio::test]
async fn relaunch_on_the_same_agent_downloads_nothing() -> anyhow::Result<()> {
    let mut s = setup().await?;
    let tarball = service_tarball()?;
    let url = s.server.serve("/svc-2.0.tgz", tarball.clone());
    for (run, sandbox) in ["first", "second"].iter().enumerate() {
        let port = free_port()?;
        let doc = serve_document(&url, &sha256(&tarball), port);
        let mut executor = s.executor(sandbox)?;
        s.agent
            .expect("SUBSCRIBE", |c| c.subscribe.is_some())
            .await?;
        s.agent.send(launch(&format!("t{run}"), &doc)?)?;
        s.agent.expect_update(TaskState::TaskRunning).await?;
        assert!(
            s.dir
                .path()
                .join(sandbox)
                .join("svc/bin/serve.sh")
                .is_file()
        );
        s.agent.send(kill(&format!("t{run}"), None))?;
        s.agent.expect_update(TaskState::TaskKilled).await?;
        assert_eq!(executor.exited().await?, Some(0));
    }
    assert_eq!(
        s.server.hits("/svc-2.0.tgz"),
        1,
        "the relaunch must use the cache"
    );
    Ok(())
}

#[tokio::test]
async fn agent_restart_while_an_update_is_unacknowledged() -> anyhow::Result<()> {
    let mut s = setup().await?;
    let doc = TaskDocument::new(Command::Shell("exec sleep 600".into()));
    let mut executor = s.executor("sandbox")?;
    s.agent
        .expect("SUBSCRIBE", |c| c.subscribe.is_some())
        .await?;
    s.agent.auto_ack(false);
    s.agent.send(launch("t", &doc)?)?;
    let starting = s.agent.expect_update(TaskState::TaskStarting).await?;
    s.agent.ack(&starting)?;
    let running = s.agent.expect_update(TaskState::TaskRunning).await?;

    // The agent "restarts": the stream breaks and, for a while, it answers 503.
    s.agent.refuse_subscribe(true);
    s.agent.drop_stream();
    tokio::time::sleep(Duration::from_millis(500)).await;
    s.agent.refuse_subscribe(false);

    let subscribe = s
        .agent
        .expect("re-SUBSCRIBE", |c| c.subscribe.is_some())
        .await?
        .subscribe
        .context("payload")?;
    let carried: Vec<_> = subscribe
        .unacknowledged_updates
        .iter()
        .map(|u| u.status.uuid.clone())
        .collect();
    assert_eq!(
        carried,
        vec![running.uuid.clone()],
        "re-SUBSCRIBE carries exactly the unacked update"
    );
    assert!(
        subscribe.unacknowledged_tasks.is_empty(),
        "the task was acknowledged via STARTING"
    );

    // Still not acknowledged: it is sent again (same uuid), more than once.
    for _ in 0..2 {
        let again = s.agent.expect_update(TaskState::TaskRunning).await?;
        assert_eq!(again.uuid, running.uuid);
    }
    s.agent.ack(&running)?;
    s.agent.auto_ack(true);

    s.agent.send(kill("t", None))?;
    s.agent.expect_update(TaskState::TaskKilled).await?;
    assert_eq!(executor.exited().await?, Some(0), "{}", executor.log());
    Ok(())
}

#[tokio::test]
async fn shutdown_stops_every_task_and_exits() -> anyhow::Result<()> {
    let mut s = setup().await?;
    let doc = TaskDocument::new(Command::Shell("echo $$ > pid; exec sleep 600".into()));
    let mut executor = s.executor("sandbox")?;
    s.agent
        .expect("SUBSCRIBE", |c| c.subscribe.is_some())
        .await?;
    s.agent.send(launch("a", &doc)?)?;
    s.agent.expect_update(TaskState::TaskRunning).await?;
    wait_for_file(&s.dir.path().join("sandbox/pid")).await?;
    s.agent.send(shutdown())?;
    let killed = s.agent.expect_update(TaskState::TaskKilled).await?;
    assert_eq!(killed.task_id.value, "a");
    assert_eq!(executor.exited().await?, Some(0));
    let pid = std::fs::read_to_string(s.dir.path().join("sandbox/pid"))?;
    assert!(
        !std::path::Path::new(&format!("/proc/{}", pid.trim())).exists(),
        "service still alive after SHUTDOWN"
    );
    Ok(())
}

#[tokio::test]
async fn invalid_task_document_fails_with_a_clear_message() -> anyhow::Result<()> {
    let mut s = setup().await?;
    let mut executor = s.executor("sandbox")?;
    s.agent
        .expect("SUBSCRIBE", |c| c.subscribe.is_some())
        .await?;
    let mut task = task_info("t", &TaskDocument::new(Command::Shell("true".into())))?;
    task.data = Some(br#"{"version":7,"command":{"shell":"true"}}"#.to_vec());
    s.agent.send(mesos_proto::v1::executor::Event {
        r#type: Some(mesos_proto::v1::executor::event::Type::Launch as i32),
        launch: Some(mesos_proto::v1::executor::event::Launch { task }),
        ..Default::default()
    })?;
    let failed = s.agent.expect_update(TaskState::TaskFailed).await?;
    assert!(
        failed.message().contains("version 7"),
        "{}",
        failed.message()
    );
    assert_eq!(executor.exited().await?, Some(0));
    Ok(())
}
