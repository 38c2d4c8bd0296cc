//! The task document: what the executor must run, carried in `TaskInfo.data`.
//!
//! ```json
//! {"version": 1,
//!  "artifacts": [{"url": "http://10.0.0.5:8080/kafka_2.13-3.7.0.tgz",
//!                 "sha256": "…64 hex…", "extract": true, "destination": "."}],
//!  "config_files": [{"path": "config/server.properties", "content": "broker.id=1\n", "mode": "0644"}],
//!  "command": {"exec": {"program": "kafka_2.13-3.7.0/bin/kafka-server-start.sh",
//!                       "args": ["config/server.properties"]}},
//!  "environment": {"KAFKA_HEAP_OPTS": "-Xmx1g"},
//!  "readiness": {"check": {"tcp": {"port": 9092}}, "interval_ms": 1000, "timeout_ms": 2000},
//!  "stop": {"signal": "TERM", "grace_period_ms": 30000},
//!  "admin_commands": {"leaders": {"argv": ["bin/kafka-leader-election.sh", "--all-topic-partitions"]}}}
//! ```
//!
//! Every path is relative to the sandbox and may not leave it. Unknown fields
//! are refused, so a typo is an error rather than a silently ignored setting.
//!
//! Restart policy: the executor never restarts the service. When the service
//! exits, the task ends (TASK_FAILED or TASK_FINISHED) and the scheduler
//! decides whether to relaunch it, which keeps one decision-maker and makes
//! every restart visible in Mesos. [`RestartPolicy`] has the single value
//! `never` so that a later version can add more without a format change.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::validate::{
    Problems, artifact_url_problem, check_version, env_name_problem, identifier_problem,
    relative_path_problem, sha256_problem,
};

/// The task document version this crate reads and writes.
pub const TASK_DOCUMENT_VERSION: u32 = 1;
/// Largest accepted task document.
pub const MAX_TASK_DOCUMENT_BYTES: usize = 1024 * 1024;
/// Largest accepted content of one config file.
pub const MAX_CONFIG_FILE_BYTES: usize = 512 * 1024;
/// Most artifacts in one document.
pub const MAX_ARTIFACTS: usize = 32;
/// Most config files in one document.
pub const MAX_CONFIG_FILES: usize = 128;
/// Most environment variables in one document.
pub const MAX_ENV_VARS: usize = 512;
/// Most arguments of one command.
pub const MAX_ARGS: usize = 1024;
/// Shortest interval between readiness checks or health reports.
pub const MIN_INTERVAL_MS: u64 = 50;
/// Longest duration accepted in any `_ms` field (one day).
pub const MAX_DURATION_MS: u64 = 24 * 3600 * 1000;

const WHAT: &str = "task document";

/// What the executor runs for one task (version 1).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskDocument {
    /// Always [`TASK_DOCUMENT_VERSION`].
    pub version: u32,
    /// Files to download, check and (optionally) extract before anything runs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub artifacts: Vec<Artifact>,
    /// Files written into the sandbox after the artifacts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub config_files: Vec<ConfigFile>,
    /// The service process.
    pub command: Command,
    /// Environment of the service, added to the executor's own.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub environment: BTreeMap<String, String>,
    /// A directory holding a Java runtime, relative to the sandbox: the
    /// runtime itself or the one directory inside it that has `bin/java`
    /// (a JRE tarball extracted there). `JAVA_HOME` is set to it and its
    /// `bin` goes first on `PATH`, for the service and every helper command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub java_home: Option<String>,
    /// Working directory of the service, relative to the sandbox (default: the sandbox).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    /// When the service counts as ready; without it, as soon as it has started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readiness: Option<Readiness>,
    /// How to stop the service.
    #[serde(default)]
    pub stop: StopPolicy,
    /// What happens when the service exits (see the module docs).
    #[serde(default)]
    pub restart: RestartPolicy,
    /// Size limits of the service's stdout and stderr files.
    #[serde(default)]
    pub logs: LogRotation,
    /// How often the executor sends a health report to the scheduler.
    #[serde(default = "default_health_interval_ms")]
    pub health_interval_ms: u64,
    /// Admin commands the scheduler may ask for by name; nothing else runs.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub admin_commands: BTreeMap<String, AdminCommand>,
}

/// One file to download.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Artifact {
    /// `http://`, `https://` or `file://` URL.
    pub url: String,
    /// Expected SHA-256 of the downloaded bytes, in hex.
    pub sha256: String,
    /// Unpack the archive (`.tar.gz`, `.tgz`, `.zip`) instead of keeping the file.
    #[serde(default = "yes")]
    pub extract: bool,
    /// Directory relative to the sandbox that receives the file or its contents.
    #[serde(default = "dot")]
    pub destination: String,
}

/// One file rendered by the scheduler and written by the executor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Path relative to the sandbox; missing parent directories are created.
    pub path: String,
    /// The whole content, as text.
    pub content: String,
    /// Permission bits as an octal string, e.g. `"0644"` (the default) or `"0755"`.
    #[serde(default = "default_mode")]
    pub mode: String,
}

impl ConfigFile {
    /// The permission bits, when [`ConfigFile::mode`] is a valid octal string.
    pub fn mode_bits(&self) -> Option<u32> {
        parse_mode(&self.mode)
    }
}

/// A program to run: an argv or a shell command line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Command {
    /// Run `program` with `args` (not through a shell). A `program` with a `/`
    /// is relative to the working directory (or absolute); without one it is
    /// looked up in `PATH`.
    Exec {
        /// The executable.
        program: String,
        /// Its arguments (without argv\[0\]).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        args: Vec<String>,
    },
    /// Run this line with `/bin/sh -c`.
    Shell(String),
}

/// When the service is ready, and how often to look.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Readiness {
    /// What to probe.
    pub check: Check,
    /// Pause between probes.
    #[serde(default = "default_check_interval_ms")]
    pub interval_ms: u64,
    /// How long one probe may take.
    #[serde(default = "default_check_timeout_ms")]
    pub timeout_ms: u64,
    /// Wait this long after the start before the first probe.
    #[serde(default)]
    pub initial_delay_ms: u64,
}

/// A probe of the service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Check {
    /// A TCP connection to `host:port` succeeds.
    Tcp {
        /// Host to connect to (default `127.0.0.1`).
        #[serde(default = "loopback")]
        host: String,
        /// Port to connect to.
        port: u16,
    },
    /// `GET url` answers with a 2xx or 3xx status.
    Http {
        /// `http://` or `https://` URL.
        url: String,
    },
    /// The command exits with status 0.
    Command(Command),
}

/// How to stop the service on KILL or SHUTDOWN.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StopPolicy {
    /// Run first, e.g. `nodetool drain`; its failure does not prevent the stop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_stop: Option<PreStop>,
    /// The signal sent to the service's process group after the pre-stop command.
    #[serde(default)]
    pub signal: StopSignal,
    /// How long to wait after the signal before SIGKILL. A KILL's kill policy
    /// or the TaskInfo's kill policy overrides it.
    #[serde(default = "default_grace_ms")]
    pub grace_period_ms: u64,
}

impl Default for StopPolicy {
    fn default() -> Self {
        StopPolicy {
            pre_stop: None,
            signal: StopSignal::default(),
            grace_period_ms: default_grace_ms(),
        }
    }
}

/// A command run before the stop signal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreStop {
    /// What to run (in the service's working directory and environment).
    pub command: Command,
    /// Kill it (and go on stopping) after this long.
    #[serde(default = "default_pre_stop_timeout_ms")]
    pub timeout_ms: u64,
}

/// Signals a service may be stopped with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum StopSignal {
    /// SIGTERM.
    #[default]
    Term,
    /// SIGINT.
    Int,
    /// SIGQUIT.
    Quit,
    /// SIGHUP.
    Hup,
    /// SIGUSR1.
    Usr1,
    /// SIGUSR2.
    Usr2,
    /// SIGKILL (no grace).
    Kill,
}

/// What the executor does when the service exits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RestartPolicy {
    /// End the task; the scheduler relaunches it if it wants to.
    #[default]
    Never,
}

/// Size limits of the service's log files in the sandbox.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogRotation {
    /// Rotate `stdout`/`stderr` when they reach this size.
    #[serde(default = "default_max_file_bytes")]
    pub max_file_bytes: u64,
    /// Keep this many rotated files per stream (`stdout.1` … `stdout.N`).
    #[serde(default = "default_max_files")]
    pub max_files: u32,
}

impl Default for LogRotation {
    fn default() -> Self {
        LogRotation {
            max_file_bytes: default_max_file_bytes(),
            max_files: default_max_files(),
        }
    }
}

/// An admin command the scheduler may run by name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminCommand {
    /// The program and its fixed arguments.
    pub argv: Vec<String>,
    /// Whether the request's `args` are appended to `argv` (default: refused).
    #[serde(default)]
    pub accepts_args: bool,
    /// Kill the command after this long.
    #[serde(default = "default_admin_timeout_ms")]
    pub timeout_ms: u64,
}

fn yes() -> bool {
    true
}
fn dot() -> String {
    ".".into()
}
fn loopback() -> String {
    "127.0.0.1".into()
}
fn default_mode() -> String {
    "0644".into()
}
fn default_health_interval_ms() -> u64 {
    30_000
}
fn default_check_interval_ms() -> u64 {
    1_000
}
fn default_check_timeout_ms() -> u64 {
    2_000
}
fn default_grace_ms() -> u64 {
    10_000
}
fn default_pre_stop_timeout_ms() -> u64 {
    60_000
}
fn default_admin_timeout_ms() -> u64 {
    60_000
}
fn default_max_file_bytes() -> u64 {
    10 * 1024 * 1024
}
fn default_max_files() -> u32 {
    5
}

fn parse_mode(mode: &str) -> Option<u32> {
    let digits = mode.strip_prefix("0o").unwrap_or(mode);
    if digits.is_empty() || digits.len() > 4 {
        return None;
    }
    u32::from_str_radix(digits, 8).ok().filter(|m| *m <= 0o7777)
}

impl TaskDocument {
    /// A minimal valid document that runs `command`.
    pub fn new(command: Command) -> Self {
        TaskDocument {
            version: TASK_DOCUMENT_VERSION,
            artifacts: Vec::new(),
            config_files: Vec::new(),
            command,
            environment: BTreeMap::new(),
            java_home: None,
            working_dir: None,
            readiness: None,
            stop: StopPolicy::default(),
            restart: RestartPolicy::default(),
            logs: LogRotation::default(),
            health_interval_ms: default_health_interval_ms(),
            admin_commands: BTreeMap::new(),
        }
    }

    /// Parses and validates `TaskInfo.data`.
    pub fn from_json(bytes: &[u8]) -> Result<Self, Error> {
        check_version(bytes, WHAT, MAX_TASK_DOCUMENT_BYTES, TASK_DOCUMENT_VERSION)?;
        let document: TaskDocument =
            serde_json::from_slice(bytes).map_err(|source| Error::Json { what: WHAT, source })?;
        document.validate()?;
        Ok(document)
    }

    /// Serializes the document for `TaskInfo.data` after validating it.
    pub fn to_json(&self) -> Result<Vec<u8>, Error> {
        self.validate()?;
        serde_json::to_vec(self).map_err(|source| Error::Json { what: WHAT, source })
    }

    /// Checks every rule and reports every broken one.
    pub fn validate(&self) -> Result<(), Error> {
        let mut p = Problems::default();
        p.check(
            self.version == TASK_DOCUMENT_VERSION,
            "version",
            format!("must be {TASK_DOCUMENT_VERSION}"),
        );

        p.check(
            self.artifacts.len() <= MAX_ARTIFACTS,
            "artifacts",
            format!("more than {MAX_ARTIFACTS} artifacts"),
        );
        for (i, a) in self.artifacts.iter().enumerate() {
            let at = |f: &str| format!("artifacts[{i}].{f}");
            if let Some(m) = artifact_url_problem(&a.url) {
                p.push(at("url"), m);
            }
            if let Some(m) = sha256_problem(&a.sha256) {
                p.push(at("sha256"), m);
            }
            if let Some(m) = relative_path_problem(&a.destination) {
                p.push(at("destination"), m);
            }
            if a.extract && archive_kind(&a.url).is_none() {
                p.push(
                    at("extract"),
                    "the URL does not end in .tar.gz, .tgz or .zip: set \"extract\": false to keep the file as it is",
                );
            }
        }

        p.check(
            self.config_files.len() <= MAX_CONFIG_FILES,
            "config_files",
            format!("more than {MAX_CONFIG_FILES} config files"),
        );
        for (i, f) in self.config_files.iter().enumerate() {
            let at = |n: &str| format!("config_files[{i}].{n}");
            if let Some(m) = relative_path_problem(&f.path) {
                p.push(at("path"), m);
            }
            if f.content.len() > MAX_CONFIG_FILE_BYTES {
                p.push(
                    at("content"),
                    format!("is larger than {MAX_CONFIG_FILE_BYTES} bytes: ship it as an artifact"),
                );
            }
            if f.mode_bits().is_none() {
                p.push(
                    at("mode"),
                    format!("\"{}\" is not an octal mode such as \"0644\"", f.mode),
                );
            }
        }

        validate_command(&mut p, "command", &self.command);

        p.check(
            self.environment.len() <= MAX_ENV_VARS,
            "environment",
            format!("more than {MAX_ENV_VARS} variables"),
        );
        for (name, value) in &self.environment {
            if let Some(m) = env_name_problem(name) {
                p.push(format!("environment.{name}"), m);
            }
            if value.contains('\0') {
                p.push(format!("environment.{name}"), "value contains a NUL byte");
            }
        }

        if let Some(dir) = &self.working_dir
            && let Some(m) = relative_path_problem(dir)
        {
            p.push("working_dir", m);
        }
        if let Some(dir) = &self.java_home
            && let Some(m) = relative_path_problem(dir)
        {
            p.push("java_home", m);
        }

        if let Some(r) = &self.readiness {
            match &r.check {
                Check::Tcp { host, port } => {
                    p.check(
                        !host.is_empty(),
                        "readiness.check.tcp.host",
                        "must not be empty",
                    );
                    p.check(*port != 0, "readiness.check.tcp.port", "must not be 0");
                }
                Check::Http { url } => match url::Url::parse(url) {
                    Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {}
                    _ => p.push(
                        "readiness.check.http.url",
                        format!("\"{url}\" is not an http(s) URL with a host"),
                    ),
                },
                Check::Command(c) => validate_command(&mut p, "readiness.check.command", c),
            }
            interval(&mut p, "readiness.interval_ms", r.interval_ms);
            interval(&mut p, "readiness.timeout_ms", r.timeout_ms);
            duration(&mut p, "readiness.initial_delay_ms", r.initial_delay_ms);
        }

        if let Some(pre) = &self.stop.pre_stop {
            validate_command(&mut p, "stop.pre_stop.command", &pre.command);
            duration(&mut p, "stop.pre_stop.timeout_ms", pre.timeout_ms);
        }
        duration(&mut p, "stop.grace_period_ms", self.stop.grace_period_ms);

        p.check(
            self.logs.max_file_bytes >= 4096,
            "logs.max_file_bytes",
            "must be at least 4096",
        );
        p.check(
            (1..=100).contains(&self.logs.max_files),
            "logs.max_files",
            "must be between 1 and 100",
        );

        interval(&mut p, "health_interval_ms", self.health_interval_ms);

        for (name, cmd) in &self.admin_commands {
            let at = |f: &str| format!("admin_commands.{name}.{f}");
            if let Some(m) = identifier_problem(name) {
                p.push(format!("admin_commands.{name}"), m);
            }
            match cmd.argv.first() {
                None => p.push(at("argv"), "must name a program"),
                Some(program) if program.is_empty() => {
                    p.push(at("argv"), "the program must not be empty")
                }
                Some(_) => {}
            }
            if cmd.argv.iter().any(|a| a.contains('\0')) {
                p.push(at("argv"), "an argument contains a NUL byte");
            }
            interval(&mut p, &at("timeout_ms"), cmd.timeout_ms);
        }

        p.finish(WHAT)
    }
}

/// The kinds of archives the executor can unpack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArchiveKind {
    /// gzip-compressed tar (`.tar.gz`, `.tgz`).
    TarGz,
    /// `.zip`.
    Zip,
}

/// The archive kind named by the end of `url`'s path, if any.
pub fn archive_kind(url: &str) -> Option<ArchiveKind> {
    let path = url::Url::parse(url)
        .map(|u| u.path().to_ascii_lowercase())
        .unwrap_or_else(|_| url.to_ascii_lowercase());
    if path.ends_with(".tar.gz") || path.ends_with(".tgz") {
        Some(ArchiveKind::TarGz)
    } else if path.ends_with(".zip") {
        Some(ArchiveKind::Zip)
    } else {
        None
    }
}

fn validate_command(p: &mut Problems, field: &str, command: &Command) {
    match command {
        Command::Exec { program, args } => {
            p.check(
                !program.is_empty() && !program.contains('\0'),
                format!("{field}.exec.program"),
                "must be a non-empty program name or path",
            );
            p.check(
                args.len() <= MAX_ARGS,
                format!("{field}.exec.args"),
                format!("more than {MAX_ARGS} arguments"),
            );
            p.check(
                !args.iter().any(|a| a.contains('\0')),
                format!("{field}.exec.args"),
                "an argument contains a NUL byte",
            );
        }
        Command::Shell(line) => p.check(
            !line.trim().is_empty() && !line.contains('\0'),
            format!("{field}.shell"),
            "must be a non-empty command line",
        ),
    }
}

fn interval(p: &mut Problems, field: &str, ms: u64) {
    p.check(
        (MIN_INTERVAL_MS..=MAX_DURATION_MS).contains(&ms),
        field,
        format!("must be between {MIN_INTERVAL_MS} and {MAX_DURATION_MS} ms"),
    );
}

fn duration(p: &mut Problems, field: &str, ms: u64) {
    p.check(
        ms <= MAX_DURATION_MS,
        field,
        format!("must be at most {MAX_DURATION_MS} ms"),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha() -> String {
        "0123456789abcdef".repeat(4)
    }

    fn full() -> serde_json::Value {
        serde_json::json!({
            "version": 1,
            "artifacts": [{"url": "http://127.0.0.1:1/kafka.tgz", "sha256": sha(), "destination": "dist"}],
            "config_files": [{"path": "conf/a.properties", "content": "a=1\n", "mode": "0600"}],
            "command": {"exec": {"program": "dist/bin/run", "args": ["conf/a.properties"]}},
            "environment": {"HEAP": "1g"},
            "java_home": "jre",
            "working_dir": ".",
            "readiness": {"check": {"tcp": {"port": 9092}}, "interval_ms": 100},
            "stop": {"pre_stop": {"command": {"shell": "nodetool drain"}, "timeout_ms": 5000},
                     "signal": "INT", "grace_period_ms": 2000},
            "restart": "never",
            "logs": {"max_file_bytes": 65536, "max_files": 2},
            "health_interval_ms": 1000,
            "admin_commands": {"flush": {"argv": ["nodetool", "flush"], "accepts_args": true}}
        })
    }

    #[test]
    fn full_document_round_trips() {
        let bytes = serde_json::to_vec(&full()).expect("json");
        let doc = TaskDocument::from_json(&bytes).expect("valid");
        assert_eq!(doc.artifacts[0].destination, "dist");
        assert!(doc.artifacts[0].extract);
        assert_eq!(doc.java_home.as_deref(), Some("jre"));
        assert_eq!(doc.config_files[0].mode_bits(), Some(0o600));
        assert_eq!(doc.stop.signal, StopSignal::Int);
        assert_eq!(
            doc.readiness
                .as_ref()
                .map(|r| (r.interval_ms, r.timeout_ms)),
            Some((100, 2000))
        );
        assert!(
            matches!(&doc.readiness.as_ref().map(|r| &r.check), Some(Check::Tcp { host, port: 9092 }) if host == "127.0.0.1")
        );
        let again = TaskDocument::from_json(&doc.to_json().expect("serialize")).expect("valid");
        assert_eq!(again, doc);
    }

    #[test]
    fn minimal_document_gets_defaults() {
        let doc = TaskDocument::from_json(br#"{"version":1,"command":{"shell":"sleep 1"}}"#)
            .expect("valid");
        assert_eq!(doc.stop, StopPolicy::default());
        assert_eq!(doc.stop.signal, StopSignal::Term);
        assert_eq!(doc.restart, RestartPolicy::Never);
        assert_eq!(doc.health_interval_ms, 30_000);
        assert_eq!(doc, TaskDocument::new(Command::Shell("sleep 1".into())));
    }

    #[test]
    fn unknown_fields_are_refused() {
        let mut v = full();
        v["comand"] = serde_json::json!("typo");
        let err = TaskDocument::from_json(&serde_json::to_vec(&v).expect("json"))
            .expect_err("unknown field");
        assert!(err.to_string().contains("comand"), "{err}");
        let mut v = full();
        v["stop"]["grace"] = serde_json::json!(1);
        assert!(TaskDocument::from_json(&serde_json::to_vec(&v).expect("json")).is_err());
    }

    #[test]
    fn other_versions_are_refused_clearly() {
        let err = TaskDocument::from_json(br#"{"version":2,"command":{"shell":"x"},"new":1}"#)
            .expect_err("v2");
        assert!(matches!(err, Error::UnsupportedVersion { found: 2, .. }));
        assert!(
            err.to_string().contains("understands only version 1"),
            "{err}"
        );
        assert!(matches!(
            TaskDocument::from_json(br#"{"command":{"shell":"x"}}"#),
            Err(Error::MissingVersion { .. })
        ));
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let v = serde_json::json!({
            "version": 1,
            "artifacts": [{"url": "ftp://x/a.tgz", "sha256": "nope", "destination": "../out"},
                          {"url": "file:///a/b.bin", "sha256": sha()}],
            "config_files": [{"path": "/etc/passwd", "content": "", "mode": "999"}],
            "command": {"exec": {"program": ""}},
            "environment": {"A=B": "x"},
            "working_dir": "a/../..",
            "java_home": "/usr/lib/jvm/default",
            "readiness": {"check": {"http": {"url": "ftp://x"}}, "interval_ms": 1},
            "logs": {"max_files": 0},
            "admin_commands": {"Bad Name": {"argv": []}}
        });
        let err =
            TaskDocument::from_json(&serde_json::to_vec(&v).expect("json")).expect_err("invalid");
        let Error::Invalid { problems, .. } = &err else {
            panic!("expected Invalid, got {err}");
        };
        let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
        for want in [
            "artifacts[0].url",
            "artifacts[0].sha256",
            "artifacts[0].destination",
            "artifacts[1].extract",
            "config_files[0].path",
            "config_files[0].mode",
            "command.exec.program",
            "environment.A=B",
            "working_dir",
            "java_home",
            "readiness.check.http.url",
            "readiness.interval_ms",
            "logs.max_files",
            "admin_commands.Bad Name",
            "admin_commands.Bad Name.argv",
        ] {
            assert!(fields.contains(&want), "{want} missing from {fields:?}");
        }
    }

    #[test]
    fn oversized_documents_are_refused() {
        let big = vec![b' '; MAX_TASK_DOCUMENT_BYTES + 1];
        assert!(matches!(
            TaskDocument::from_json(&big),
            Err(Error::TooLarge { .. })
        ));
        let mut doc = TaskDocument::new(Command::Shell("x".into()));
        doc.config_files.push(ConfigFile {
            path: "big".into(),
            content: "x".repeat(MAX_CONFIG_FILE_BYTES + 1),
            mode: "0644".into(),
        });
        assert!(doc.validate().is_err());
    }

    #[test]
    fn archive_kinds() {
        assert_eq!(archive_kind("http://h/a.tar.gz"), Some(ArchiveKind::TarGz));
        assert_eq!(archive_kind("http://h/a.TGZ?x=1"), Some(ArchiveKind::TarGz));
        assert_eq!(archive_kind("file:///a.zip"), Some(ArchiveKind::Zip));
        assert_eq!(archive_kind("file:///a.jar"), None);
    }

    #[test]
    fn modes() {
        assert_eq!(parse_mode("0755"), Some(0o755));
        assert_eq!(parse_mode("644"), Some(0o644));
        assert_eq!(parse_mode("0o600"), Some(0o600));
        assert_eq!(parse_mode("8"), None);
        assert_eq!(parse_mode("77777"), None);
        assert_eq!(parse_mode(""), None);
    }
}
