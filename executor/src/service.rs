//! The service process: start it in its own process group with its output in
//! rotating files, probe it, signal it, and run helper commands (readiness
//! commands, pre-stop, admin) with a timeout.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use executor_protocol::{Check, Command, LogRotation, StopSignal};
use rustix::process::{Pid, Signal};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::task::JoinHandle;
use tracing::warn;

use crate::artifact::LazyClient;
use crate::error::Error;
use crate::logs::RotatingFile;

/// Most output kept from a helper command, per stream.
pub const MAX_HELPER_OUTPUT: usize = 64 * 1024;
/// How long to wait for the log pumps after the service exited.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

/// Where and how a command runs.
#[derive(Clone, Debug)]
pub struct Environment {
    /// The working directory.
    pub cwd: PathBuf,
    /// Variables added to the executor's own environment.
    pub vars: BTreeMap<String, String>,
}

impl Environment {
    /// A tokio command for `command`, in its own process group.
    pub fn command(&self, command: &Command) -> tokio::process::Command {
        let mut cmd = match command {
            Command::Exec { program, args } => {
                let program = if program.contains('/') && !Path::new(program).is_absolute() {
                    self.cwd.join(program)
                } else {
                    PathBuf::from(program)
                };
                let mut cmd = tokio::process::Command::new(program);
                cmd.args(args);
                cmd
            }
            Command::Shell(line) => {
                let mut cmd = tokio::process::Command::new("/bin/sh");
                cmd.arg("-c").arg(line);
                cmd
            }
        };
        cmd.current_dir(&self.cwd)
            .envs(&self.vars)
            .stdin(Stdio::null())
            // Own group: signals reach the service's children too, and a
            // signal to the executor's group does not reach the service.
            .process_group(0)
            .kill_on_drop(false);
        cmd
    }
}

/// Describes `command` for messages.
pub fn describe(command: &Command) -> String {
    match command {
        Command::Exec { program, .. } => program.clone(),
        Command::Shell(line) => format!("sh -c '{line}'"),
    }
}

/// A running service.
#[derive(Debug)]
pub struct Service {
    child: tokio::process::Child,
    pid: u32,
    pumps: Vec<JoinHandle<()>>,
}

impl Service {
    /// Starts `command` with stdout and stderr going to `log_dir/{stdout,stderr}`.
    pub fn start(
        env: &Environment,
        command: &Command,
        log_dir: &Path,
        rotation: LogRotation,
    ) -> Result<Service, Error> {
        std::fs::create_dir_all(log_dir).map_err(Error::io("create log directory", log_dir))?;
        let stdout = RotatingFile::open(
            log_dir.join("stdout"),
            rotation.max_file_bytes,
            rotation.max_files,
        )?;
        let stderr = RotatingFile::open(
            log_dir.join("stderr"),
            rotation.max_file_bytes,
            rotation.max_files,
        )?;
        let mut cmd = env.command(command);
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|source| Error::Spawn {
            program: describe(command),
            source,
        })?;
        let pid = child.id().unwrap_or_default();
        let mut pumps = Vec::new();
        if let Some(out) = child.stdout.take() {
            pumps.push(tokio::spawn(pump(out, stdout)));
        }
        if let Some(err) = child.stderr.take() {
            pumps.push(tokio::spawn(pump(err, stderr)));
        }
        Ok(Service { child, pid, pumps })
    }

    /// The service's process id (and process group id).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Waits for the service to exit.
    pub async fn wait(&mut self) -> std::io::Result<ExitStatus> {
        self.child.wait().await
    }

    /// Sends `signal` to the service's process group.
    pub fn signal(&self, signal: StopSignal) -> Result<(), Error> {
        signal_group(self.pid, to_signal(signal))
    }

    /// Kills whatever is left of the group, then waits (briefly) for the log
    /// pumps to write everything the service printed.
    pub async fn finish(&mut self) {
        let _ = signal_group(self.pid, Signal::KILL);
        for pump in self.pumps.drain(..) {
            if tokio::time::timeout(DRAIN_TIMEOUT, pump).await.is_err() {
                warn!(pid = self.pid, "log pump did not finish");
            }
        }
    }
}

async fn pump(mut from: impl AsyncRead + Unpin, mut to: RotatingFile) {
    let mut buf = vec![0u8; 8192];
    loop {
        match from.read(&mut buf).await {
            Ok(0) => return,
            Ok(n) => {
                if let Err(e) = to.write(&buf[..n]) {
                    warn!(error = %e, "cannot write service output; dropping it");
                }
            }
            Err(e) => {
                warn!(error = %e, "cannot read service output");
                return;
            }
        }
    }
}

fn to_signal(signal: StopSignal) -> Signal {
    match signal {
        StopSignal::Term => Signal::TERM,
        StopSignal::Int => Signal::INT,
        StopSignal::Quit => Signal::QUIT,
        StopSignal::Hup => Signal::HUP,
        StopSignal::Usr1 => Signal::USR1,
        StopSignal::Usr2 => Signal::USR2,
        StopSignal::Kill => Signal::KILL,
    }
}

/// Sends `signal` to process group `pgid`; a group that is gone is not an error.
pub fn signal_group(pgid: u32, signal: Signal) -> Result<(), Error> {
    let raw = i32::try_from(pgid).unwrap_or(0);
    let Some(pid) = Pid::from_raw(raw) else {
        return Ok(());
    };
    match rustix::process::kill_process_group(pid, signal) {
        Ok(()) | Err(rustix::io::Errno::SRCH) => Ok(()),
        Err(e) => Err(Error::Signal {
            pgid: raw,
            source: e.into(),
        }),
    }
}

/// Kills process group `pgid` with SIGKILL (best effort).
pub fn kill_group(pgid: u32) {
    let _ = signal_group(pgid, Signal::KILL);
}

/// Describes an exit status: "exited with status 3" or "killed by signal 9".
pub fn describe_exit(status: &ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        (None, None) => "exited".into(),
    }
}

/// What became of a helper command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HelperOutcome {
    /// Its exit code, if it exited normally.
    pub exit_code: Option<i32>,
    /// Whether it was killed for taking too long.
    pub timed_out: bool,
    /// The end of its standard output.
    pub stdout: String,
    /// The end of its standard error.
    pub stderr: String,
}

/// Runs a helper command to completion or until `timeout`, keeping the end
/// of its output. The whole process group is killed on timeout.
pub async fn run_helper(
    env: &Environment,
    command: &Command,
    timeout: Duration,
    capture: bool,
) -> Result<HelperOutcome, Error> {
    let mut cmd = env.command(command);
    let output = if capture { Stdio::piped } else { Stdio::null };
    cmd.stdout(output()).stderr(output());
    let mut child = cmd.spawn().map_err(|source| Error::Spawn {
        program: describe(command),
        source,
    })?;
    let pid = child.id().unwrap_or_default();
    let out = child.stdout.take().map(|s| tokio::spawn(read_tail(s)));
    let err = child.stderr.take().map(|s| tokio::spawn(read_tail(s)));
    let (exit_code, timed_out) = match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) => (status.code(), false),
        Ok(Err(_)) => (None, false),
        Err(_) => {
            kill_group(pid);
            let _ = child.wait().await;
            (None, true)
        }
    };
    // Children of the helper may keep its pipes open; they go too.
    kill_group(pid);
    let collect = |h: Option<JoinHandle<String>>| async move {
        match h {
            Some(h) => tokio::time::timeout(DRAIN_TIMEOUT, h)
                .await
                .ok()
                .and_then(Result::ok)
                .unwrap_or_default(),
            None => String::new(),
        }
    };
    Ok(HelperOutcome {
        exit_code,
        timed_out,
        stdout: collect(out).await,
        stderr: collect(err).await,
    })
}

async fn read_tail(mut from: impl AsyncRead + Unpin) -> String {
    let mut kept: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 8192];
    while let Ok(n) = from.read(&mut buf).await {
        if n == 0 {
            break;
        }
        kept.extend_from_slice(&buf[..n]);
        if kept.len() > 2 * MAX_HELPER_OUTPUT {
            kept.drain(..kept.len() - MAX_HELPER_OUTPUT);
        }
    }
    if kept.len() > MAX_HELPER_OUTPUT {
        kept.drain(..kept.len() - MAX_HELPER_OUTPUT);
    }
    String::from_utf8_lossy(&kept).into_owned()
}

/// Probes readiness once; `Ok` and `Err` both carry what was seen.
pub async fn probe(
    check: &Check,
    env: &Environment,
    http: &LazyClient,
    timeout: Duration,
) -> Result<String, String> {
    match check {
        Check::Tcp { host, port } => {
            match tokio::time::timeout(
                timeout,
                tokio::net::TcpStream::connect((host.as_str(), *port)),
            )
            .await
            {
                Ok(Ok(_)) => Ok(format!("connected to {host}:{port}")),
                Ok(Err(e)) => Err(format!("{host}:{port}: {e}")),
                Err(_) => Err(format!("{host}:{port}: no connection within {timeout:?}")),
            }
        }
        Check::Http { url } => match http
            .get()
            .map_err(|e| e.to_string())?
            .get(url)
            .timeout(timeout)
            .send()
            .await
        {
            Ok(r) if r.status().is_success() || r.status().is_redirection() => {
                Ok(format!("GET {url}: {}", r.status()))
            }
            Ok(r) => Err(format!("GET {url}: {}", r.status())),
            Err(e) => Err(format!("GET {url}: {e}")),
        },
        Check::Command(command) => match run_helper(env, command, timeout, false).await {
            Ok(HelperOutcome {
                exit_code: Some(0), ..
            }) => Ok(format!("{} exited with 0", describe(command))),
            Ok(HelperOutcome {
                timed_out: true, ..
            }) => Err(format!("{} timed out", describe(command))),
            Ok(o) => Err(format!(
                "{} exited with {}",
                describe(command),
                o.exit_code.map_or("a signal".into(), |c| c.to_string())
            )),
            Err(e) => Err(e.to_string()),
        },
    }
}
