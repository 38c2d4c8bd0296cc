//! Framework messages between a scheduler and its executors (both ways).
//!
//! Mesos delivers framework messages at most once, in no particular order, so
//! every request carries a `request_id` that its response echoes; a scheduler
//! that needs an answer retries with the same id. Health reports are periodic
//! and self-contained, so losing one costs nothing.
//!
//! Scheduler → executor ([`SchedulerMessage`]):
//! ```json
//! {"version": 1, "request_id": "r-17", "request": {"type": "log_tail", "stream": "stderr", "lines": 50}}
//! ```
//! Executor → scheduler ([`ExecutorMessage`]):
//! ```json
//! {"version": 1, "message": {"type": "response", "request_id": "r-17",
//!   "result": {"ok": {"type": "log_tail", "stream": "stderr", "lines": ["…"]}}}}
//! {"version": 1, "message": {"type": "health", "task_id": "kafka-1.g3", "state": "running", …}}
//! ```

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::validate::{Problems, check_version};

/// The framework message version this crate reads and writes.
pub const MESSAGE_VERSION: u32 = 1;
/// Largest accepted framework message.
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;
/// Most log lines one [`Request::LogTail`] may ask for.
pub const MAX_TAIL_LINES: u32 = 1000;
/// Longest request id.
pub const MAX_REQUEST_ID_LEN: usize = 128;

const REQUEST: &str = "framework message from the scheduler";
const REPLY: &str = "framework message from the executor";

/// A request from the scheduler.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchedulerMessage {
    /// Always [`MESSAGE_VERSION`].
    pub version: u32,
    /// Chosen by the scheduler; echoed in the response.
    pub request_id: String,
    /// What is asked.
    pub request: Request,
}

/// What the scheduler can ask an executor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// The state of every task of this executor (`{"type": "status"}`).
    Status {},
    /// The last `lines` lines of one of the service's output streams.
    LogTail {
        /// Which stream.
        stream: LogStream,
        /// How many lines (1 to [`MAX_TAIL_LINES`]).
        lines: u32,
        /// Which task (default: the executor's latest).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        task_id: Option<String>,
    },
    /// Run an admin command from the task document's allow-list.
    Admin {
        /// Its name in `admin_commands`.
        name: String,
        /// Extra arguments, accepted only when the command allows them.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        args: Vec<String>,
        /// Which task (default: the executor's latest).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        task_id: Option<String>,
    },
}

/// One of the service's output streams.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogStream {
    /// The service's standard output.
    Stdout,
    /// The service's standard error.
    Stderr,
}

impl LogStream {
    /// The file name of the stream in the sandbox.
    pub fn file_name(self) -> &'static str {
        match self {
            LogStream::Stdout => "stdout",
            LogStream::Stderr => "stderr",
        }
    }
}

impl SchedulerMessage {
    /// A request with the current version.
    pub fn new(request_id: impl Into<String>, request: Request) -> Self {
        SchedulerMessage {
            version: MESSAGE_VERSION,
            request_id: request_id.into(),
            request,
        }
    }

    /// Parses and validates the `data` of an executor MESSAGE event.
    pub fn from_json(bytes: &[u8]) -> Result<Self, Error> {
        check_version(bytes, REQUEST, MAX_MESSAGE_BYTES, MESSAGE_VERSION)?;
        let message: SchedulerMessage =
            serde_json::from_slice(bytes).map_err(|source| Error::Json {
                what: REQUEST,
                source,
            })?;
        message.validate()?;
        Ok(message)
    }

    /// Best effort: the request id of a message that failed to parse, so that
    /// the error can still be answered.
    pub fn request_id_of(bytes: &[u8]) -> Option<String> {
        #[derive(Deserialize)]
        struct Id {
            request_id: Option<String>,
        }
        serde_json::from_slice::<Id>(bytes)
            .ok()?
            .request_id
            .filter(|id| id.len() <= MAX_REQUEST_ID_LEN)
    }

    /// Serializes the message for a scheduler MESSAGE call.
    pub fn to_json(&self) -> Result<Vec<u8>, Error> {
        self.validate()?;
        serde_json::to_vec(self).map_err(|source| Error::Json {
            what: REQUEST,
            source,
        })
    }

    fn validate(&self) -> Result<(), Error> {
        let mut p = Problems::default();
        p.check(
            self.version == MESSAGE_VERSION,
            "version",
            format!("must be {MESSAGE_VERSION}"),
        );
        p.check(
            !self.request_id.is_empty() && self.request_id.len() <= MAX_REQUEST_ID_LEN,
            "request_id",
            format!("must have 1 to {MAX_REQUEST_ID_LEN} bytes"),
        );
        match &self.request {
            Request::Status {} => {}
            Request::LogTail { lines, .. } => p.check(
                (1..=MAX_TAIL_LINES).contains(lines),
                "request.lines",
                format!("must be between 1 and {MAX_TAIL_LINES}"),
            ),
            Request::Admin { name, args, .. } => {
                p.check(!name.is_empty(), "request.name", "must not be empty");
                p.check(
                    !args.iter().any(|a| a.contains('\0')),
                    "request.args",
                    "an argument contains a NUL byte",
                );
            }
        }
        p.finish(REQUEST)
    }
}

/// A message from an executor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecutorMessage {
    /// Always [`MESSAGE_VERSION`].
    pub version: u32,
    /// The content.
    pub message: ExecutorBody,
}

/// What an executor sends.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ExecutorBody {
    /// The answer to one [`SchedulerMessage`].
    Response(Response),
    /// A periodic report on one task.
    Health(Health),
}

/// The answer to one request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Response {
    /// The request's id (`""` when the request was unreadable and had none).
    pub request_id: String,
    /// What came of it.
    pub result: Outcome,
}

/// Success with a reply, or a refusal with a reason.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The request was carried out.
    Ok(Reply),
    /// The request was refused or failed.
    Error(Refusal),
}

/// Why a request got no reply.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Refusal {
    /// The class of failure.
    pub kind: RefusalKind,
    /// What is wrong and what to do about it.
    pub message: String,
}

/// Classes of refused requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefusalKind {
    /// The request was unreadable or invalid; fix the sender.
    BadRequest,
    /// The admin command is not in the allow-list, or takes no arguments.
    NotAllowed,
    /// The executor has no task (yet) to answer about.
    NoTask,
    /// The request was valid but carrying it out failed.
    Failed,
}

/// The successful answer to each kind of request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Reply {
    /// Answer to [`Request::Status`].
    Status {
        /// One entry per task the executor knows.
        tasks: Vec<Health>,
    },
    /// Answer to [`Request::LogTail`].
    LogTail {
        /// The stream read.
        stream: LogStream,
        /// The lines, oldest first (each cut to 4 KiB).
        lines: Vec<String>,
    },
    /// Answer to [`Request::Admin`]: the command ran (it may still have failed).
    Admin {
        /// The command's name.
        name: String,
        /// Exit code, absent when it was killed by a signal or timed out.
        exit_code: Option<i32>,
        /// Whether it was killed for exceeding its timeout.
        timed_out: bool,
        /// Its standard output (the last 64 KiB).
        stdout: String,
        /// Its standard error (the last 64 KiB).
        stderr: String,
    },
}

/// The state of one task, as its executor sees it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Health {
    /// The Mesos task id.
    pub task_id: String,
    /// Where the task is in its life.
    pub state: ServiceState,
    /// The service's process id while it runs.
    pub pid: Option<u32>,
    /// The service's resident memory in bytes (its main process).
    pub rss_bytes: Option<u64>,
    /// Milliseconds since the service started.
    pub uptime_ms: Option<u64>,
    /// Whether the last readiness check passed.
    pub ready: bool,
    /// The last readiness check, if any ran.
    pub last_check: Option<CheckResult>,
    /// Human-readable detail (e.g. why it failed).
    pub details: String,
}

/// The life of a task inside the executor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServiceState {
    /// Downloading and unpacking artifacts, writing config files.
    Preparing,
    /// The process runs; readiness has not passed yet.
    Starting,
    /// The process runs and readiness passed.
    Running,
    /// A stop is under way (pre-stop command, signal, grace).
    Stopping,
    /// The process has exited or never started.
    Exited,
}

/// One readiness check result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckResult {
    /// Whether it passed.
    pub ok: bool,
    /// Milliseconds since the service started, when it ran.
    pub at_uptime_ms: u64,
    /// What was seen (e.g. "connection refused").
    pub detail: String,
}

impl ExecutorMessage {
    /// A message with the current version.
    pub fn new(message: ExecutorBody) -> Self {
        ExecutorMessage {
            version: MESSAGE_VERSION,
            message,
        }
    }

    /// A response to `request_id`.
    pub fn response(request_id: impl Into<String>, result: Outcome) -> Self {
        Self::new(ExecutorBody::Response(Response {
            request_id: request_id.into(),
            result,
        }))
    }

    /// A refusal of `request_id`.
    pub fn refusal(
        request_id: impl Into<String>,
        kind: RefusalKind,
        message: impl Into<String>,
    ) -> Self {
        Self::response(
            request_id,
            Outcome::Error(Refusal {
                kind,
                message: message.into(),
            }),
        )
    }

    /// Parses the `data` of a scheduler MESSAGE event.
    pub fn from_json(bytes: &[u8]) -> Result<Self, Error> {
        check_version(bytes, REPLY, MAX_MESSAGE_BYTES, MESSAGE_VERSION)?;
        serde_json::from_slice(bytes).map_err(|source| Error::Json {
            what: REPLY,
            source,
        })
    }

    /// Serializes the message for an executor MESSAGE call.
    pub fn to_json(&self) -> Vec<u8> {
        // Plain data with string keys: serialization cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip() {
        for request in [
            Request::Status {},
            Request::LogTail {
                stream: LogStream::Stderr,
                lines: 20,
                task_id: Some("t".into()),
            },
            Request::Admin {
                name: "flush".into(),
                args: vec!["ks".into()],
                task_id: None,
            },
        ] {
            let message = SchedulerMessage::new("r-1", request);
            let bytes = message.to_json().expect("valid");
            assert_eq!(SchedulerMessage::from_json(&bytes).expect("parse"), message);
        }
    }

    #[test]
    fn request_wire_form() {
        let m = SchedulerMessage::from_json(
            br#"{"version":1,"request_id":"a","request":{"type":"log_tail","stream":"stdout","lines":5}}"#,
        )
        .expect("parse");
        assert_eq!(
            m.request,
            Request::LogTail {
                stream: LogStream::Stdout,
                lines: 5,
                task_id: None
            }
        );
    }

    #[test]
    fn bad_requests_are_refused_with_reason() {
        let unknown = br#"{"version":1,"request_id":"a","request":{"type":"status","x":1}}"#;
        assert!(SchedulerMessage::from_json(unknown).is_err());
        let too_many = br#"{"version":1,"request_id":"a","request":{"type":"log_tail","stream":"stdout","lines":100000}}"#;
        let err = SchedulerMessage::from_json(too_many).expect_err("too many lines");
        assert!(err.to_string().contains("request.lines"), "{err}");
        let v2 = br#"{"version":2,"request_id":"b","request":{"type":"reboot"}}"#;
        assert!(matches!(
            SchedulerMessage::from_json(v2),
            Err(Error::UnsupportedVersion { found: 2, .. })
        ));
        assert_eq!(SchedulerMessage::request_id_of(v2).as_deref(), Some("b"));
        assert_eq!(SchedulerMessage::request_id_of(b"garbage"), None);
        let no_id = br#"{"version":1,"request_id":"","request":{"type":"status"}}"#;
        assert!(SchedulerMessage::from_json(no_id).is_err());
    }

    #[test]
    fn executor_messages_round_trip() {
        let health = Health {
            task_id: "t".into(),
            state: ServiceState::Running,
            pid: Some(42),
            rss_bytes: Some(1 << 20),
            uptime_ms: Some(1500),
            ready: true,
            last_check: Some(CheckResult {
                ok: true,
                at_uptime_ms: 1400,
                detail: "connected".into(),
            }),
            details: String::new(),
        };
        let messages = [
            ExecutorMessage::new(ExecutorBody::Health(health.clone())),
            ExecutorMessage::response(
                "r",
                Outcome::Ok(Reply::Status {
                    tasks: vec![health],
                }),
            ),
            ExecutorMessage::response(
                "r",
                Outcome::Ok(Reply::Admin {
                    name: "flush".into(),
                    exit_code: Some(0),
                    timed_out: false,
                    stdout: "ok".into(),
                    stderr: String::new(),
                }),
            ),
            ExecutorMessage::refusal("r", RefusalKind::NotAllowed, "no"),
        ];
        for message in messages {
            let bytes = message.to_json();
            assert_eq!(ExecutorMessage::from_json(&bytes).expect("parse"), message);
        }
        let wire = serde_json::to_value(ExecutorMessage::refusal("r", RefusalKind::NoTask, "x"))
            .expect("json");
        assert_eq!(
            wire,
            serde_json::json!({"version":1,"message":{"type":"response","request_id":"r",
                "result":{"error":{"kind":"no_task","message":"x"}}}})
        );
    }
}
