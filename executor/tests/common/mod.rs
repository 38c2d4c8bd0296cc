//! Test fixtures: a fake agent speaking the v1 executor API on 127.0.0.1:0,
//! a loopback artifact server that counts requests, tarball builders, and
//! the real executor binary started as a process.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use executor_protocol::{ExecutorMessage, SchedulerMessage, TaskDocument};
use futures::StreamExt;
use mesos_proto::ContentType;
use mesos_proto::v1::executor::{Call, Event, call, event};
use mesos_proto::v1::{
    AgentId, AgentInfo, CommandInfo, ExecutorInfo, FrameworkInfo, KillPolicy, TaskId, TaskInfo,
    TaskState, TaskStatus,
};
use sha2::Digest;
use tokio::sync::mpsc;

pub const DEADLINE: Duration = Duration::from_secs(20);

/// The fake agent's shared state.
struct Agent {
    calls: mpsc::UnboundedSender<Call>,
    stream: Mutex<Option<mpsc::UnboundedSender<Event>>>,
    refuse_subscribe: AtomicBool,
    auto_ack: AtomicBool,
}

/// A fake Mesos agent: records every call, lets the test push events, drop
/// the stream, refuse subscriptions (503, as a recovering agent does) and
/// hold back acknowledgements.
pub struct FakeAgent {
    pub port: u16,
    state: Arc<Agent>,
    calls: mpsc::UnboundedReceiver<Call>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakeAgent {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl FakeAgent {
    pub async fn start() -> anyhow::Result<FakeAgent> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let (tx, calls) = mpsc::unbounded_channel();
        let state = Arc::new(Agent {
            calls: tx,
            stream: Mutex::new(None),
            refuse_subscribe: AtomicBool::new(false),
            auto_ack: AtomicBool::new(true),
        });
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(state.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(FakeAgent {
            port,
            state,
            calls,
            server,
        })
    }

    /// `MESOS_SLAVE_PID` for this agent.
    pub fn pid(&self) -> String {
        format!("slave(1)@127.0.0.1:{}", self.port)
    }

    pub fn send(&self, event: Event) -> anyhow::Result<()> {
        let guard = self
            .state
            .stream
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?;
        guard
            .as_ref()
            .context("no subscriber")?
            .send(event)
            .map_err(|_| anyhow::anyhow!("subscriber gone"))
    }

    /// Ends the current stream, as an agent that restarts does.
    pub fn drop_stream(&self) {
        if let Ok(mut guard) = self.state.stream.lock() {
            guard.take();
        }
    }

    pub fn refuse_subscribe(&self, refuse: bool) {
        self.state.refuse_subscribe.store(refuse, Ordering::SeqCst);
    }

    pub fn auto_ack(&self, ack: bool) {
        self.state.auto_ack.store(ack, Ordering::SeqCst);
    }

    pub fn ack(&self, status: &TaskStatus) -> anyhow::Result<()> {
        self.send(acknowledged(status))
    }

    /// The next call that `want` accepts (others are skipped).
    pub async fn expect(
        &mut self,
        what: &str,
        want: impl Fn(&Call) -> bool,
    ) -> anyhow::Result<Call> {
        tokio::time::timeout(DEADLINE, async {
            loop {
                let call = self.calls.recv().await.context("agent gone")?;
                if want(&call) {
                    return Ok(call);
                }
            }
        })
        .await
        .with_context(|| format!("timed out waiting for {what}"))?
    }

    /// The next UPDATE for a task in `state`.
    pub async fn expect_update(&mut self, state: TaskState) -> anyhow::Result<TaskStatus> {
        let call = self
            .expect(&format!("UPDATE {}", state.as_str_name()), |c| {
                c.update.as_ref().is_some_and(|u| u.status.state() == state)
            })
            .await?;
        Ok(call.update.context("payload")?.status)
    }

    /// The next MESSAGE answering `request_id`.
    pub async fn expect_response(&mut self, request_id: &str) -> anyhow::Result<ExecutorMessage> {
        let id = request_id.to_owned();
        let call = self
            .expect(&format!("response to {request_id}"), move |c| {
                c.message.as_ref().is_some_and(|m| {
                    matches!(
                        ExecutorMessage::from_json(&m.data).map(|e| e.message),
                        Ok(executor_protocol::ExecutorBody::Response(r)) if r.request_id == id
                    )
                })
            })
            .await?;
        Ok(ExecutorMessage::from_json(
            &call.message.context("payload")?.data,
        )?)
    }

    pub fn request(&self, message: &SchedulerMessage) -> anyhow::Result<()> {
        self.send(Event {
            r#type: Some(event::Type::Message as i32),
            message: Some(event::Message {
                data: message.to_json()?,
            }),
            ..Default::default()
        })
    }
}

async fn handle(State(agent): State<Arc<Agent>>, headers: HeaderMap, body: Bytes) -> Response {
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .and_then(ContentType::from_header);
    let Some(content_type) = content_type else {
        return (StatusCode::UNSUPPORTED_MEDIA_TYPE, "bad content type").into_response();
    };
    let call: Call = match mesos_proto::decode(&body, content_type) {
        Ok(c) => c,
        Err(e) => return (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    };
    let kind = call.r#type();
    if kind == call::Type::Subscribe && agent.refuse_subscribe.load(Ordering::SeqCst) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "Agent has not finished recovery",
        )
            .into_response();
    }
    let _ = agent.calls.send(call.clone());
    match kind {
        call::Type::Subscribe => {
            let (tx, rx) = mpsc::unbounded_channel();
            let _ = tx.send(subscribed(&call));
            if let Ok(mut guard) = agent.stream.lock() {
                *guard = Some(tx);
            }
            let accept = headers
                .get("accept")
                .and_then(|v| v.to_str().ok())
                .and_then(ContentType::from_header)
                .unwrap_or(ContentType::Json);
            let body = tokio_stream::wrappers::UnboundedReceiverStream::new(rx).map(move |event| {
                Ok::<_, std::io::Error>(mesos_recordio::encode(&mesos_proto::encode(
                    &event, accept,
                )))
            });
            Response::builder()
                .status(StatusCode::OK)
                .header("content-type", accept.as_str())
                .body(Body::from_stream(body))
                .unwrap_or_default()
        }
        call::Type::Update => {
            if agent.auto_ack.load(Ordering::SeqCst)
                && let Some(update) = &call.update
                && let Ok(guard) = agent.stream.lock()
                && let Some(tx) = guard.as_ref()
            {
                let _ = tx.send(acknowledged(&update.status));
            }
            StatusCode::ACCEPTED.into_response()
        }
        _ => StatusCode::ACCEPTED.into_response(),
    }
}

fn subscribed(call: &Call) -> Event {
    Event {
        r#type: Some(event::Type::Subscribed as i32),
        subscribed: Some(event::Subscribed {
            executor_info: ExecutorInfo {
                executor_id: call.executor_id.clone(),
                command: Some(CommandInfo::default()),
                ..Default::default()
            },
            framework_info: FrameworkInfo {
                user: "root".into(),
                name: "test".into(),
                id: Some(call.framework_id.clone()),
                ..Default::default()
            },
            agent_info: AgentInfo {
                hostname: "localhost".into(),
                ..Default::default()
            },
            container_id: None,
        }),
        ..Default::default()
    }
}

pub fn acknowledged(status: &TaskStatus) -> Event {
    Event {
        r#type: Some(event::Type::Acknowledged as i32),
        acknowledged: Some(event::Acknowledged {
            task_id: status.task_id.clone(),
            uuid: status.uuid.clone().unwrap_or_default(),
        }),
        ..Default::default()
    }
}

pub fn launch(task_id: &str, document: &TaskDocument) -> anyhow::Result<Event> {
    Ok(Event {
        r#type: Some(event::Type::Launch as i32),
        launch: Some(event::Launch {
            task: task_info(task_id, document)?,
        }),
        ..Default::default()
    })
}

pub fn task_info(task_id: &str, document: &TaskDocument) -> anyhow::Result<TaskInfo> {
    Ok(TaskInfo {
        name: task_id.into(),
        task_id: TaskId {
            value: task_id.into(),
        },
        agent_id: AgentId { value: "S0".into() },
        data: Some(document.to_json()?),
        ..Default::default()
    })
}

pub fn kill(task_id: &str, grace: Option<Duration>) -> Event {
    Event {
        r#type: Some(event::Type::Kill as i32),
        kill: Some(event::Kill {
            task_id: TaskId {
                value: task_id.into(),
            },
            kill_policy: grace.map(|g| KillPolicy {
                grace_period: Some(mesos_proto::v1::DurationInfo {
                    nanoseconds: g.as_nanos() as i64,
                }),
            }),
        }),
        ..Default::default()
    }
}

pub fn shutdown() -> Event {
    Event {
        r#type: Some(event::Type::Shutdown as i32),
        ..Default::default()
    }
}

/// The executor binary running against a fake agent, killed (with its group) on drop.
pub struct ExecutorProcess {
    pub child: tokio::process::Child,
    pub sandbox: PathBuf,
}

impl Drop for ExecutorProcess {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

impl ExecutorProcess {
    /// Starts the binary cargo built for this test.
    pub fn start(
        agent: &FakeAgent,
        sandbox: &Path,
        cache: &Path,
        extra: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        // Set by cargo for integration tests, not for examples (which use start_binary).
        let binary = option_env!("CARGO_BIN_EXE_service-executor")
            .context("no executor binary: run through cargo test")?;
        Self::start_binary(binary, agent, sandbox, cache, extra)
    }

    /// Starts the executor `binary` against `agent`.
    pub fn start_binary(
        binary: &str,
        agent: &FakeAgent,
        sandbox: &Path,
        cache: &Path,
        extra: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        std::fs::create_dir_all(sandbox)?;
        let mut cmd = tokio::process::Command::new(binary);
        for (key, _) in std::env::vars() {
            if key.starts_with("MESOS_") || key.starts_with("EXECUTOR_") {
                cmd.env_remove(key);
            }
        }
        cmd.env("MESOS_FRAMEWORK_ID", "F0")
            .env("MESOS_EXECUTOR_ID", "E0")
            .env("MESOS_SLAVE_PID", agent.pid())
            .env("MESOS_SANDBOX", sandbox)
            .env("MESOS_DIRECTORY", sandbox)
            .env("MESOS_CHECKPOINT", "1")
            .env("MESOS_SUBSCRIPTION_BACKOFF_MAX", "200ms")
            .env("MESOS_RECOVERY_TIMEOUT", "15secs")
            .env("MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD", "5secs")
            .env("EXECUTOR_ARTIFACT_CACHE", cache)
            .env("EXECUTOR_UPDATE_RETRY_INTERVAL", "300ms")
            .env("EXECUTOR_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(sandbox.join("executor.log"))?)
            .kill_on_drop(true);
        for (k, v) in extra {
            cmd.env(k, v);
        }
        Ok(ExecutorProcess {
            child: cmd.spawn().context("start the executor binary")?,
            sandbox: sandbox.to_path_buf(),
        })
    }

    /// Waits for the executor to exit; returns its exit code.
    pub async fn exited(&mut self) -> anyhow::Result<Option<i32>> {
        let status = tokio::time::timeout(DEADLINE, self.child.wait())
            .await
            .context("executor did not exit")??;
        Ok(status.code())
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.sandbox.join("executor.log")).unwrap_or_default()
    }
}

/// A loopback HTTP server of fixed files that counts requests per path.
pub struct ArtifactServer {
    pub port: u16,
    files: Arc<Mutex<HashMap<String, Vec<u8>>>>,
    hits: Arc<Mutex<HashMap<String, usize>>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for ArtifactServer {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl ArtifactServer {
    pub async fn start() -> anyhow::Result<ArtifactServer> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let files: Arc<Mutex<HashMap<String, Vec<u8>>>> = Arc::default();
        let hits: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
        let (f, h) = (files.clone(), hits.clone());
        let app = axum::Router::new().fallback(move |uri: axum::http::Uri| {
            let (f, h) = (f.clone(), h.clone());
            async move {
                let path = uri.path().to_owned();
                if let Ok(mut hits) = h.lock() {
                    *hits.entry(path.clone()).or_default() += 1;
                }
                match f.lock().ok().and_then(|f| f.get(&path).cloned()) {
                    Some(bytes) => (StatusCode::OK, bytes).into_response(),
                    None => StatusCode::NOT_FOUND.into_response(),
                }
            }
        });
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(ArtifactServer {
            port,
            files,
            hits,
            server,
        })
    }

    /// Serves `bytes` at `path`; returns the URL.
    pub fn serve(&self, path: &str, bytes: Vec<u8>) -> String {
        if let Ok(mut files) = self.files.lock() {
            files.insert(path.to_owned(), bytes);
        }
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn hits(&self, path: &str) -> usize {
        self.hits
            .lock()
            .ok()
            .and_then(|h| h.get(path).copied())
            .unwrap_or(0)
    }
}

pub fn sha256(bytes: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(bytes))
}

/// A .tar.gz of `(path, mode, content)` files.
pub fn tarball(files: &[(&str, u32, &str)]) -> anyhow::Result<Vec<u8>> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut builder = tar::Builder::new(gz);
    for (path, mode, content) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(content.len() as u64);
        header.set_mode(*mode);
        header.set_entry_type(tar::EntryType::Regular);
        builder.append_data(&mut header, path, content.as_bytes())?;
    }
    Ok(builder.into_inner()?.finish()?)
}

/// A .tar.gz whose single entry is named `name` verbatim (e.g. "../x"),
/// as a malicious archive would be.
pub fn evil_tarball(name: &str) -> anyhow::Result<Vec<u8>> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut builder = tar::Builder::new(gz);
    let mut header = tar::Header::new_gnu();
    let raw = &mut header.as_old_mut().name;
    if name.len() > raw.len() {
        bail!("name too long");
    }
    raw[..name.len()].copy_from_slice(name.as_bytes());
    header.set_entry_type(tar::EntryType::Regular);
    header.set_mode(0o644);
    header.set_size(5);
    header.set_cksum();
    builder.append(&header, &b"pwned"[..])?;
    Ok(builder.into_inner()?.finish()?)
}

/// A free loopback port.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A small TCP service in the official layout: `bin/serve.sh PORT` prints to
/// both streams and listens on PORT (after `delay` seconds).
pub fn service_tarball() -> anyhow::Result<Vec<u8>> {
    tarball(&[
        (
            "svc/bin/serve.sh",
            0o755,
            "#!/bin/sh\necho \"serving on $1\"\necho \"warming up\" >&2\nsleep \"${2:-0}\"\nexec python3 -c 'import socket,sys,time\ns=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\ns.bind((\"127.0.0.1\", int(sys.argv[1]))); s.listen(16)\nwhile True:\n    c,_=s.accept(); c.close()' \"$1\"\n",
        ),
        ("svc/README", 0o644, "test service\n"),
    ])
}

/// Waits until `path` exists.
pub async fn wait_for_file(path: &Path) -> anyhow::Result<()> {
    tokio::time::timeout(DEADLINE, async {
        while !path.exists() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .with_context(|| format!("{} never appeared", path.display()))
}

/// A .tar.gz with a symbolic link `link` → `target` (verbatim), then a file
/// `link/<file>` that would be written through it, as a malicious archive
/// would be made.
pub fn evil_link_tarball(link: &str, target: &str, file: &str) -> anyhow::Result<Vec<u8>> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut builder = tar::Builder::new(gz);
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Symlink);
    header.set_mode(0o777);
    header.set_size(0);
    let raw = &mut header.as_old_mut().name;
    raw[..link.len()].copy_from_slice(link.as_bytes());
    let raw = &mut header.as_old_mut().linkname;
    if target.len() > raw.len() {
        bail!("link target too long");
    }
    raw[..target.len()].copy_from_slice(target.as_bytes());
    header.set_cksum();
    builder.append(&header, std::io::empty())?;
    let name = format!("{link}/{file}");
    let mut header = tar::Header::new_gnu();
    let raw = &mut header.as_old_mut().name;
    if name.len() > raw.len() {
        bail!("name too long");
    }
    raw[..name.len()].copy_from_slice(name.as_bytes());
    header.set_entry_type(tar::EntryType::Regular);
    header.set_mode(0o644);
    header.set_size(5);
    header.set_cksum();
    builder.append(&header, &b"pwned"[..])?;
    Ok(builder.into_inner()?.finish()?)
}

/// Every path under `dir` whose file name starts with `prefix`.
pub fn find_named(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with(prefix) {
            found.push(path.clone());
        }
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            found.extend(find_named(&path, prefix));
        }
    }
    found
}
