//! A real Apache Mesos 1.11 local cluster (master + N agents in one process).
//!
//! The rig lives outside the repository, in `../shared/mesos-rig` beside the
//! clone (override with `MESOS_RIG_DIR`). It is built once per machine into
//! [`install_dir`] by its `setup.sh` and started per test by its `start.sh`.
//!
//! Policy: a clone without the rig skips real-Mesos tests with a clear
//! `SKIPPED:` notice on stderr, but under `CI=true` a missing rig is a failure.
//! Use [`crate::require_rig!`] at the top of such tests.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rustix::process::Signal;
use tempfile::TempDir;

use crate::{Error, FileLock, Result, proc, tail, tail_str, wait};

/// Environment variable that points at the rig's scripts (the folder with `start.sh`).
pub const RIG_DIR_ENV: &str = "MESOS_RIG_DIR";

/// Agent resources used when none are given (the same default as `start.sh`).
pub const DEFAULT_RESOURCES: &str = "cpus:4;mem:4096;disk:4096;ports:[31000-32000]";

/// Stamp file in the install dir recording which rig sources it was built from.
const STAMP_FILE: &str = ".test-support-stamp";

/// Attempts at starting the rig when the chosen port turns out to be taken.
const START_ATTEMPTS: u32 = 3;

/// How long `setup.sh` may keep failing because another apt/dpkg holds its lock.
const APT_LOCK_PATIENCE: Duration = Duration::from_secs(300);

/// How long to wait for the cluster process to vanish after `stop.sh`.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether the rig is present on this machine, and whether its absence is fatal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RigAvailability {
    /// The rig's scripts are in this directory.
    Available(PathBuf),
    /// The rig is absent.
    Missing {
        /// Where it was expected.
        looked_at: PathBuf,
        /// True under `CI=true`, where a missing rig must fail the test run.
        required: bool,
    },
}

impl RigAvailability {
    /// The rig directory, when available.
    pub fn dir(&self) -> Option<&Path> {
        match self {
            RigAvailability::Available(dir) => Some(dir),
            RigAvailability::Missing { .. } => None,
        }
    }
}

/// True when running under CI (`CI=true` or `CI=1`), where a missing rig is a failure.
pub fn is_ci() -> bool {
    std::env::var("CI")
        .map(|v| v.eq_ignore_ascii_case("true") || v == "1")
        .unwrap_or(false)
}

/// Where the rig's scripts are expected: `$MESOS_RIG_DIR`, else `<workspace>/../shared/mesos-rig`.
pub fn rig_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os(RIG_DIR_ENV).filter(|v| !v.is_empty()) {
        return PathBuf::from(dir);
    }
    let root = crate::workspace_root().unwrap_or_else(|_| {
        // This crate sits at <root>/tests/support, so fall back to that layout.
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
    });
    root.join("../shared/mesos-rig")
}

/// Where `setup.sh` builds the rig: `<cache_dir>/mesos-rig`.
pub fn install_dir() -> PathBuf {
    crate::cache_dir().join("mesos-rig")
}

/// Applies the skip/fail policy: the rig directory, or `None` after printing a
/// `SKIPPED:` notice on stderr. Panics when the rig is missing under `CI=true`.
///
/// Prefer the [`crate::require_rig!`] macro, which also returns from the test.
pub fn rig_or_skip() -> Option<PathBuf> {
    let test = std::thread::current()
        .name()
        .map(str::to_owned)
        .unwrap_or_else(|| "this test".to_owned());
    match MesosRig::available() {
        RigAvailability::Available(dir) => Some(dir),
        RigAvailability::Missing {
            looked_at,
            required: true,
        } => panic!(
            "real Mesos rig not found at {} and CI=true: real-Mesos tests must run in CI \
             (put shared/ beside the clone or set {RIG_DIR_ENV})",
            looked_at.display()
        ),
        RigAvailability::Missing { looked_at, .. } => {
            // The test harness has no "skipped" state, so say it loudly on stderr.
            eprintln!(
                "SKIPPED: real Mesos rig not found at {} — {test} did not run \
                 (set {RIG_DIR_ENV} or put shared/ beside the clone; with CI=true this fails)",
                looked_at.display()
            );
            None
        }
    }
}

/// Returns early from a test when the real Mesos rig is absent (printing
/// `SKIPPED: …` on stderr), and panics when it is absent under `CI=true`.
///
/// Evaluates to the rig's directory. `require_rig!()` returns `()`;
/// `require_rig!(value)` returns `value`, e.g. `require_rig!(Ok(()))` in a test
/// that returns `Result`.
#[macro_export]
macro_rules! require_rig {
    () => {
        $crate::require_rig!(())
    };
    ($ret:expr) => {
        match $crate::rig::rig_or_skip() {
            ::std::option::Option::Some(dir) => dir,
            ::std::option::Option::None => return $ret,
        }
    };
}

/// How to start the cluster. Build with [`RigOptions::default`] and the setters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RigOptions {
    /// Number of agents (all share one process, address and hostname `localhost`).
    pub agents: u32,
    /// Agent `--resources`, the same for every agent.
    pub resources: String,
    /// Agent `--attributes` (e.g. `rack:r1;zone:z1`), the same for every agent.
    pub attributes: Option<String>,
    /// Extra `MESOS_<FLAG>=value` settings for master and agents (e.g. `MESOS_ROLES=kafka`).
    pub env: Vec<(String, String)>,
    /// How long `start.sh` may wait for all agents to register.
    pub startup_timeout: Duration,
}

impl Default for RigOptions {
    fn default() -> Self {
        RigOptions {
            agents: 1,
            resources: DEFAULT_RESOURCES.to_owned(),
            attributes: None,
            env: Vec::new(),
            startup_timeout: Duration::from_secs(60),
        }
    }
}

impl RigOptions {
    /// Sets the number of agents.
    pub fn agents(mut self, agents: u32) -> Self {
        self.agents = agents;
        self
    }

    /// Sets the agents' resources string.
    pub fn resources(mut self, resources: impl Into<String>) -> Self {
        self.resources = resources.into();
        self
    }

    /// Sets the agents' attributes string.
    pub fn attributes(mut self, attributes: impl Into<String>) -> Self {
        self.attributes = Some(attributes.into());
        self
    }

    /// Adds one `MESOS_<FLAG>=value` setting for master and agents.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Sets how long start-up may take.
    pub fn startup_timeout(mut self, timeout: Duration) -> Self {
        self.startup_timeout = timeout;
        self
    }

    /// Rejects options that `start.sh` would misread.
    fn validate(&self) -> Result<()> {
        if self.agents == 0 {
            return Err(Error::InvalidOption("agents must be at least 1".into()));
        }
        if self.resources.trim().is_empty() {
            return Err(Error::InvalidOption("resources must not be empty".into()));
        }
        for (key, _) in &self.env {
            let valid = !key.is_empty()
                && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !key.starts_with(|c: char| c.is_ascii_digit());
            if !valid {
                return Err(Error::InvalidOption(format!(
                    "environment key {key:?} is not a valid variable name"
                )));
            }
        }
        Ok(())
    }
}

/// A running Mesos cluster; stopped (with its executors) when dropped.
#[derive(Debug)]
pub struct MesosRig {
    pid: u32,
    port: u16,
    endpoint: String,
    log: PathBuf,
    work: PathBuf,
    install: PathBuf,
    startup: Duration,
    running: bool,
    // Holds the work dir and log; removed on drop unless a test is panicking.
    dir: Option<TempDir>,
}

impl MesosRig {
    /// Whether the rig is present (see [`rig_dir`]) and whether its absence is fatal.
    pub fn available() -> RigAvailability {
        let dir = rig_dir();
        if dir.join("start.sh").is_file() && dir.join("setup.sh").is_file() {
            RigAvailability::Available(dir)
        } else {
            RigAvailability::Missing {
                looked_at: dir,
                required: is_ci(),
            }
        }
    }

    /// Builds the rig if needed, then starts a fresh cluster on a free port and
    /// returns once all agents are registered and activated.
    pub fn start(opts: RigOptions) -> Result<MesosRig> {
        opts.validate()?;
        let rig = match MesosRig::available() {
            RigAvailability::Available(dir) => dir,
            RigAvailability::Missing { looked_at, .. } => {
                return Err(Error::RigNotFound { looked_at });
            }
        };
        let install = ensure_installed(&rig)?;
        let mut attempt = 1;
        loop {
            let port = crate::ports::free_port()?;
            match start_once(&install, port, &opts) {
                Err(Error::CommandFailed { output, .. })
                    if attempt < START_ATTEMPTS && looks_like_port_clash(&output) =>
                {
                    // free_port() released the port; another process may have taken it.
                    tracing::warn!(port, attempt, "mesos rig could not use port; retrying");
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// The master's base URL, `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The v1 scheduler API URL, `http://127.0.0.1:PORT/api/v1/scheduler`.
    pub fn scheduler_url(&self) -> String {
        format!("{}/api/v1/scheduler", self.endpoint)
    }

    /// The master's `host:port` (`127.0.0.1:PORT`), as frameworks take it.
    pub fn master_address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The libprocess port shared by master and agents.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The cluster log (master, agents and executors' stdout/stderr).
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The cluster's work dir (agent sandboxes are under `agents/<i>/work`).
    pub fn work_dir(&self) -> &Path {
        &self.work
    }

    /// The PID of the cluster process (it leads its own process group).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// How long `start.sh` took until all agents were active.
    pub fn startup_time(&self) -> Duration {
        self.startup
    }

    /// The last `lines` lines of the cluster log, for failure messages.
    pub fn log_tail(&self, lines: usize) -> String {
        tail(&self.log, lines)
    }

    /// Stops the cluster and its executors via `stop.sh`, and waits until the
    /// process is gone. Idempotent.
    pub fn stop(&mut self) -> Result<()> {
        if !self.running {
            return Ok(());
        }
        self.running = false;
        let stop_sh = self.install.join("bin/stop.sh");
        let out = Command::new("bash")
            .arg(&stop_sh)
            .arg(self.pid.to_string())
            .stdin(Stdio::null())
            .output()
            .map_err(Error::spawn(format!("bash {}", stop_sh.display())))?;
        if !out.status.success() {
            tracing::warn!(status = %out.status, "stop.sh failed; killing the rig directly");
        }
        let pid = self.pid;
        if wait::until("mesos rig to exit", STOP_TIMEOUT, || {
            (!proc::is_alive(pid)).then_some(())
        })
        .is_err()
        {
            proc::signal(pid, Signal::KILL)?;
            wait::until("mesos rig to exit after SIGKILL", STOP_TIMEOUT, || {
                (!proc::is_alive(pid)).then_some(())
            })?;
        }
        tracing::info!(pid, "mesos rig stopped");
        Ok(())
    }
}

impl Drop for MesosRig {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            tracing::error!(pid = self.pid, error = %e, "could not stop the mesos rig");
        }
        if std::thread::panicking() {
            if let Some(dir) = self.dir.take() {
                // Keep the log and sandboxes of a failed test for inspection.
                let kept = dir.keep();
                tracing::warn!(dir = %kept.display(), log = %self.log.display(), "kept mesos rig files");
            }
        }
    }
}

/// True when `start.sh` failed in a way a different port would fix.
fn looks_like_port_clash(output: &str) -> bool {
    output.contains("already listens")
        || output.contains("Address already in use")
        || output.contains("exited early")
}

/// One start attempt on `port`.
fn start_once(install: &Path, port: u16, opts: &RigOptions) -> Result<MesosRig> {
    let dir = tempfile::Builder::new()
        .prefix("mesos-rig-")
        .tempdir()
        .map_err(Error::io("create a temp dir for the mesos rig"))?;
    let work = dir.path().join("work");
    let start_sh = install.join("bin/start.sh");
    let program = format!("bash {}", start_sh.display());

    let mut cmd = Command::new("bash");
    cmd.arg(&start_sh)
        .arg("-R")
        .arg(install)
        .args(["-p", &port.to_string()])
        .arg("-w")
        .arg(&work)
        .args(["-n", &opts.agents.to_string()])
        .args(["-r", &opts.resources])
        .args(["-t", &opts.startup_timeout.as_secs().max(1).to_string()]);
    if let Some(attrs) = &opts.attributes {
        cmd.args(["-a", attrs]);
    }
    cmd.arg("--");
    cmd.args(opts.env.iter().map(|(k, v)| format!("{k}={v}")));
    // Mesos reads every MESOS_*/LIBPROCESS_* variable as a flag: don't let the
    // test's own environment leak in. start.sh also reads MESOS_RIG_DIR with a
    // different meaning (the install dir), which -R already covers.
    for (key, _) in std::env::vars_os() {
        if key
            .to_str()
            .is_some_and(|k| k.starts_with("MESOS_") || k.starts_with("LIBPROCESS_"))
        {
            cmd.env_remove(&key);
        }
    }
    cmd.stdin(Stdio::null());

    let started = Instant::now();
    let out = cmd.output().map_err(Error::spawn(program.clone()))?;
    let startup = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();

    let field = |name: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(name).map(str::trim).map(str::to_owned))
    };
    let pid = field("PID=").and_then(|p| p.parse::<u32>().ok());

    if !out.status.success() {
        // start.sh kills what it started on timeout; make sure in every case.
        if let Some(pid) = pid.filter(|p| proc::is_alive(*p)) {
            proc::signal(pid, Signal::KILL)?;
        }
        return Err(Error::CommandFailed {
            program,
            status: out.status,
            output: format!("{}\n{}", tail_str(&stdout, 20), tail_str(&stderr, 30)),
        });
    }

    let bad = |detail: &str| Error::BadOutput {
        program: program.clone(),
        detail: detail.to_owned(),
        output: format!("{stdout}\n{stderr}"),
    };
    let pid = pid.ok_or_else(|| bad("no PID= line"))?;
    let rig = MesosRig {
        pid,
        port,
        endpoint: field("ENDPOINT=").ok_or_else(|| bad("no ENDPOINT= line"))?,
        log: field("LOG=")
            .map(PathBuf::from)
            .ok_or_else(|| bad("no LOG= line"))?,
        work,
        install: install.to_path_buf(),
        startup,
        running: true,
        dir: Some(dir),
    };
    // From here on the rig is owned, so an error below still stops it via Drop.
    if !stdout.lines().any(|l| l.starts_with("READY")) {
        return Err(bad("no READY line"));
    }
    tracing::info!(
        pid,
        endpoint = %rig.endpoint,
        agents = opts.agents,
        startup_ms = startup.as_millis() as u64,
        "mesos rig started"
    );
    Ok(rig)
}

/// Runs the rig's `setup.sh` into [`install_dir`] unless it already built these
/// exact rig sources there; returns the install dir.
///
/// A file lock serialises concurrent test processes; the stamp avoids the
/// ~8 s rebuild that `setup.sh` would do on every call.
pub fn ensure_installed(rig: &Path) -> Result<PathBuf> {
    let install = install_dir();
    let _lock = FileLock::acquire(&install.with_extension("lock"))?;
    let stamp_path = install.join(STAMP_FILE);
    let fingerprint = fingerprint(rig)?;
    let complete = ["bin/mesos-rig", "bin/start.sh", "bin/stop.sh"]
        .iter()
        .all(|f| install.join(f).is_file());
    if complete && std::fs::read_to_string(&stamp_path).ok().as_deref() == Some(&fingerprint) {
        return Ok(install);
    }

    let setup_sh = rig.join("setup.sh");
    let program = format!("bash {} {}", setup_sh.display(), install.display());
    tracing::info!(%program, "building the mesos rig (once per machine)");
    let started = Instant::now();
    loop {
        let out = Command::new("bash")
            .arg(&setup_sh)
            .arg(&install)
            .stdin(Stdio::null())
            .output()
            .map_err(Error::spawn(program.clone()))?;
        let output = format!(
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if out.status.success() {
            tracing::debug!(%output, "setup.sh output");
            break;
        }
        // setup.sh apt-installs missing packages; another apt run may hold the lock.
        let apt_busy =
            output.contains("Could not get lock") || output.contains("dpkg frontend lock");
        if !apt_busy || started.elapsed() > APT_LOCK_PATIENCE {
            return Err(Error::CommandFailed {
                program,
                status: out.status,
                output: tail_str(&output, 30),
            });
        }
        tracing::warn!("setup.sh: apt/dpkg is busy; retrying");
        std::thread::sleep(Duration::from_secs(3));
    }
    std::fs::write(&stamp_path, &fingerprint)
        .map_err(Error::io(format!("write {}", stamp_path.display())))?;
    tracing::info!(secs = started.elapsed().as_secs_f64(), "mesos rig built");
    Ok(install)
}

/// A digest (FNV-1a, 64 bit) of the names and contents of the rig's files, so
/// that a changed rig is rebuilt.
fn fingerprint(rig: &Path) -> Result<String> {
    let read_dir = std::fs::read_dir(rig).map_err(Error::io(format!("list {}", rig.display())))?;
    let mut files = Vec::new();
    for entry in read_dir {
        let entry = entry.map_err(Error::io(format!("list {}", rig.display())))?;
        if entry.path().is_file() {
            files.push(entry.path());
        }
    }
    files.sort();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |bytes: &[u8]| {
        for b in bytes {
            hash ^= u64::from(*b);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    for path in &files {
        let name = path.file_name().unwrap_or(OsStr::new(""));
        feed(name.as_encoded_bytes());
        feed(&[0]);
        let bytes = std::fs::read(path).map_err(Error::io(format!("read {}", path.display())))?;
        feed(&bytes);
        feed(&[0]);
    }
    Ok(format!("fnv1a64:{hash:016x} files:{}\n", files.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_validate() {
        assert!(RigOptions::default().validate().is_ok());
        assert!(RigOptions::default().agents(0).validate().is_err());
        assert!(
            RigOptions::default()
                .env("MESOS_ROLES", "kafka")
                .validate()
                .is_ok()
        );
        assert!(RigOptions::default().env("A=B", "x").validate().is_err());
        assert!(RigOptions::default().env("", "x").validate().is_err());
    }

    #[test]
    fn port_clash_detection() {
        assert!(looks_like_port_clash(
            "start.sh: something already listens on 127.0.0.1:5050"
        ));
        assert!(!looks_like_port_clash(
            "start.sh: timeout: 0/1 agents registered"
        ));
    }
}
