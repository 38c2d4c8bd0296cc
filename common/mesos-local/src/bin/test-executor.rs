//! A minimal custom executor for tests of the local cluster (and of real
//! Mesos): subscribes at the URL built from `MESOS_SLAVE_PID`, answers LAUNCH
//! with TASK_RUNNING, KILL with TASK_KILLED, echoes MESSAGE back as
//! `echo:<data>`, and exits on SHUTDOWN. The task's `data` selects extra
//! behaviour: `crash` exits at once with status 3, `write:<path>:<text>`
//! writes a file below the sandbox first, `fail` reports TASK_FAILED.
//! At start it writes its `MESOS_*` environment to `env.json` in the sandbox.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, bail};
use futures::StreamExt as _;
use mesos_proto::ContentType;
use mesos_proto::v1::{
    ExecutorId, FrameworkId, TaskId, TaskState, TaskStatus,
    executor::{Call, Event, call, event},
    task_status::Source,
};

struct Executor {
    http: reqwest::Client,
    url: String,
    framework_id: FrameworkId,
    executor_id: ExecutorId,
    running: BTreeMap<String, TaskId>,
}

impl Executor {
    async fn post(&self, call: Call) -> anyhow::Result<()> {
        let response = self
            .http
            .post(&self.url)
            .header("Content-Type", "application/json")
            .body(mesos_proto::encode(&call, ContentType::Json))
            .send()
            .await?;
        if response.status() != reqwest::StatusCode::ACCEPTED {
            bail!(
                "call answered {}: {}",
                response.status(),
                response.text().await.unwrap_or_default()
            );
        }
        Ok(())
    }

    fn call(&self, kind: call::Type) -> Call {
        Call {
            executor_id: self.executor_id.clone(),
            framework_id: self.framework_id.clone(),
            r#type: Some(kind as i32),
            ..Default::default()
        }
    }

    async fn update(
        &self,
        task_id: &TaskId,
        state: TaskState,
        message: &str,
    ) -> anyhow::Result<()> {
        let status = TaskStatus {
            task_id: task_id.clone(),
            state: state as i32,
            message: Some(message.to_owned()),
            executor_id: Some(self.executor_id.clone()),
            source: Some(Source::Executor as i32),
            uuid: Some(uuid::Uuid::new_v4().as_bytes().to_vec()),
            ..Default::default()
        };
        let call = Call {
            update: Some(call::Update { status }),
            ..self.call(call::Type::Update)
        };
        self.post(call).await
    }

    /// Handles one event; `false` means exit.
    async fn handle(&mut self, event: Event) -> anyhow::Result<bool> {
        let kind = event.r#type.and_then(|t| event::Type::try_from(t).ok());
        eprintln!("[test-executor] event {kind:?}");
        match kind {
            Some(event::Type::Launch) => {
                let task = event.launch.context("LAUNCH without payload")?.task;
                let data =
                    String::from_utf8_lossy(task.data.as_deref().unwrap_or_default()).into_owned();
                if data == "crash" {
                    eprintln!("[test-executor] crashing as asked");
                    std::process::exit(3);
                }
                if data == "fail" {
                    self.update(&task.task_id, TaskState::TaskFailed, "failing as asked")
                        .await?;
                    return Ok(true);
                }
                if let Some(rest) = data.strip_prefix("write:") {
                    let (path, text) = rest.split_once(':').unwrap_or((rest, ""));
                    let sandbox = std::env::var("MESOS_SANDBOX").unwrap_or_else(|_| ".".into());
                    let full = std::path::Path::new(&sandbox).join(path);
                    if let Some(parent) = full.parent() {
                        std::fs::create_dir_all(parent)?;
                    }
                    std::fs::write(&full, text)?;
                }
                self.running
                    .insert(task.task_id.value.clone(), task.task_id.clone());
                self.update(&task.task_id, TaskState::TaskRunning, "running")
                    .await?;
            }
            Some(event::Type::Kill) => {
                let task_id = event.kill.context("KILL without payload")?.task_id;
                self.running.remove(&task_id.value);
                self.update(&task_id, TaskState::TaskKilled, "killed")
                    .await?;
            }
            Some(event::Type::Message) => {
                let data = event.message.context("MESSAGE without payload")?.data;
                let mut echo = b"echo:".to_vec();
                echo.extend(data);
                let call = Call {
                    message: Some(call::Message { data: echo }),
                    ..self.call(call::Type::Message)
                };
                self.post(call).await?;
            }
            Some(event::Type::Shutdown) => {
                let tasks: Vec<TaskId> = self.running.values().cloned().collect();
                for task_id in tasks {
                    self.update(&task_id, TaskState::TaskKilled, "shutdown")
                        .await?;
                }
                return Ok(false);
            }
            _ => {}
        }
        Ok(true)
    }
}

fn executor_url() -> anyhow::Result<String> {
    if let Ok(pid) = std::env::var("MESOS_SLAVE_PID") {
        let (id, address) = pid
            .split_once('@')
            .with_context(|| format!("MESOS_SLAVE_PID {pid:?} is not id@host:port"))?;
        return Ok(format!("http://{address}/{id}/api/v1/executor"));
    }
    let endpoint = std::env::var("MESOS_AGENT_ENDPOINT")
        .context("neither MESOS_SLAVE_PID nor MESOS_AGENT_ENDPOINT is set")?;
    Ok(format!("http://{endpoint}/api/v1/executor"))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let env: BTreeMap<String, String> = std::env::vars()
        .filter(|(k, _)| k.starts_with("MESOS_") || k.starts_with("LIBPROCESS_") || k == "PATH")
        .collect();
    if let Ok(dir) = std::env::var("MESOS_SANDBOX") {
        let _ = std::fs::write(
            std::path::Path::new(&dir).join("env.json"),
            serde_json::to_vec_pretty(&env).unwrap_or_default(),
        );
    }
    let mut executor = Executor {
        http: reqwest::Client::builder().http1_only().build()?,
        url: executor_url()?,
        framework_id: FrameworkId {
            value: std::env::var("MESOS_FRAMEWORK_ID").context("MESOS_FRAMEWORK_ID is not set")?,
        },
        executor_id: ExecutorId {
            value: std::env::var("MESOS_EXECUTOR_ID").context("MESOS_EXECUTOR_ID is not set")?,
        },
        running: BTreeMap::new(),
    };
    let checkpoint = std::env::var("MESOS_CHECKPOINT").is_ok_and(|v| v == "1");
    let backoff = std::env::var("MESOS_SUBSCRIPTION_BACKOFF_MAX")
        .ok()
        .and_then(|v| v.strip_suffix("secs").and_then(|n| n.parse::<f64>().ok()))
        .map_or(Duration::from_secs(1), |s| Duration::from_secs_f64(s / 2.0));
    let give_up = tokio::time::Instant::now() + Duration::from_secs(900);
    loop {
        match session(&mut executor).await {
            Ok(true) => return Ok(()),
            Ok(false) => eprintln!("[test-executor] the agent closed the stream"),
            Err(e) => eprintln!("[test-executor] subscription failed: {e}"),
        }
        // With checkpointing, an executor outlives its agent and subscribes again.
        if !checkpoint || tokio::time::Instant::now() > give_up {
            return Ok(());
        }
        tokio::time::sleep(backoff).await;
    }
}

/// One subscription; `Ok(true)` after SHUTDOWN.
async fn session(executor: &mut Executor) -> anyhow::Result<bool> {
    let subscribe = Call {
        subscribe: Some(call::Subscribe::default()),
        ..executor.call(call::Type::Subscribe)
    };
    eprintln!("[test-executor] subscribing at {}", executor.url);
    let response = executor
        .http
        .post(&executor.url)
        .header("Content-Type", "application/json")
        .header("Accept", "application/json")
        .timeout(Duration::from_secs(3600))
        .body(mesos_proto::encode(&subscribe, ContentType::Json))
        .send()
        .await?;
    if response.status() != reqwest::StatusCode::OK {
        bail!(
            "SUBSCRIBE answered {}: {}",
            response.status(),
            response.text().await.unwrap_or_default()
        );
    }
    let mut body = response.bytes_stream();
    let mut decoder = mesos_recordio::Decoder::new(mesos_recordio::DEFAULT_MAX_RECORD);
    while let Some(chunk) = body.next().await {
        decoder.feed(&chunk?);
        while let Some(record) = decoder.next_record()? {
            let event: Event = mesos_proto::decode(&record, ContentType::Json)?;
            if !executor.handle(event).await? {
                eprintln!("[test-executor] shutting down");
                return Ok(true);
            }
        }
    }
    Ok(false)
}
