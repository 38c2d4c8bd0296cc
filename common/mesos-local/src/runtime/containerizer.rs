//! Executors as real processes: sandbox, fetch, volume links, a clean
//! environment, their own process group, stdout/stderr into the sandbox.

use std::os::unix::process::ExitStatusExt as _;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use super::{Command, Slot, fetcher, lock};
use crate::core::LaunchSpec;

/// SIGKILLs a process group; a group that is already gone is fine.
pub fn kill_group(pid: u32) {
    let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return;
    };
    if let Err(e) = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL) {
        if e != rustix::io::Errno::SRCH {
            tracing::warn!(pid = pid.as_raw_nonzero().get(), error = %e, "cannot kill process group");
        }
    }
}

/// Every live process whose `MESOS_DIRECTORY` lies under `root`.
///
/// Everything an executor starts inherits its environment, so this finds a
/// container's processes even after they left the executor's process group
/// or lost their parent: what Mesos' launcher finds through the container's
/// session, and what a cgroup would hold.
pub fn processes_under(root: &Path) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let prefix = format!("MESOS_DIRECTORY={}", root.display());
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else {
            continue;
        };
        let inside = environ.split(|b| *b == 0).any(|var| {
            var.starts_with(prefix.as_bytes()) && matches!(var.get(prefix.len()), None | Some(b'/'))
        });
        if inside && pid != std::process::id() {
            found.push(pid);
        }
    }
    found
}

/// SIGKILLs every process under `root` (see [`processes_under`]) and their groups.
pub fn kill_processes_under(root: &Path) {
    for pid in processes_under(root) {
        kill_group(pid);
        if let Some(pid) = i32::try_from(pid)
            .ok()
            .and_then(rustix::process::Pid::from_raw)
        {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
        }
    }
}

/// Destroys a container: its executor's group and everything it started.
pub fn destroy(slot: &Slot) {
    if let Some(pid) = slot.pid.filter(|_| !slot.exited) {
        kill_group(pid);
    }
    if let Some(sandbox) = &slot.sandbox {
        kill_processes_under(sandbox);
    }
}

/// Links `sandbox/container_path` to the volume directory.
pub fn attach_volume(
    sandbox: &Path,
    container_path: &str,
    host_path: &Path,
) -> std::io::Result<()> {
    std::fs::create_dir_all(host_path)?;
    let link = sandbox.join(container_path.trim_start_matches('/'));
    if let Some(parent) = link.parent() {
        std::fs::create_dir_all(parent)?;
    }
    match std::fs::symlink_metadata(&link) {
        Ok(_) => Ok(()),
        Err(_) => std::os::unix::fs::symlink(host_path, &link),
    }
}

/// Fetches, starts and waits for one executor, reporting to the runtime.
pub async fn launch(
    spec: LaunchSpec,
    slot: Arc<Mutex<Slot>>,
    tx: mpsc::UnboundedSender<Command>,
    http: reqwest::Client,
) {
    let agent = spec.agent;
    let container = spec.container.clone();
    let fail = |message: String| {
        let _ = tx.send(Command::ContainerFailed {
            agent,
            container: container.clone(),
            message,
        });
    };
    if let Err(e) = tokio::fs::create_dir_all(&spec.sandbox).await {
        return fail(format!(
            "cannot create sandbox {}: {e}",
            spec.sandbox.display()
        ));
    }
    let command = spec.executor.command.clone().unwrap_or_default();
    for uri in &command.uris {
        if let Err(e) = fetcher::fetch(uri, &spec.sandbox, &spec.cache_dir, &http).await {
            return fail(format!(
                "Failed to fetch all URIs for container '{container}': {e}"
            ));
        }
    }
    for (container_path, host_path) in &spec.volumes {
        if let Err(e) = attach_volume(&spec.sandbox, container_path, host_path) {
            return fail(format!("cannot mount volume at {container_path}: {e}"));
        }
    }
    let stdout = std::fs::File::create(spec.sandbox.join("stdout"));
    let stderr = std::fs::File::create(spec.sandbox.join("stderr"));
    let (Ok(stdout), Ok(stderr)) = (stdout, stderr) else {
        return fail("cannot create stdout/stderr in the sandbox".into());
    };
    let value = command.value.clone().unwrap_or_default();
    let mut cmd = if command.shell.unwrap_or(true) {
        let mut c = tokio::process::Command::new("/bin/sh");
        c.arg("-c").arg(&value);
        c
    } else {
        let mut c = tokio::process::Command::new(&value);
        if let Some((argv0, rest)) = command.arguments.split_first() {
            c.arg0(argv0);
            c.args(rest);
        }
        c
    };
    cmd.current_dir(&spec.sandbox)
        .env_clear()
        .envs(spec.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .process_group(0);
    let mut child = {
        let mut guard = lock(&slot);
        if guard.destroyed {
            drop(guard);
            let _ = tx.send(Command::ContainerExited {
                agent,
                container,
                status: -1,
            });
            return;
        }
        match cmd.spawn() {
            Ok(child) => {
                guard.pid = child.id();
                guard.sandbox = Some(spec.sandbox.clone());
                child
            }
            Err(e) => {
                drop(guard);
                return fail(format!("cannot start '{value}': {e}"));
            }
        }
    };
    if let Some(pid) = child.id() {
        tracing::info!(agent, %container, pid, "executor started");
        let _ = tx.send(Command::ContainerStarted {
            agent,
            container: container.clone(),
            pid,
        });
    }
    let status = match child.wait().await {
        Ok(status) => status.into_raw(),
        Err(_) => -1,
    };
    {
        let mut guard = lock(&slot);
        // Whatever the executor left behind goes too, as when Mesos
        // destroys a container whose executor exited.
        destroy(&guard);
        guard.exited = true;
    }
    let _ = tx.send(Command::ContainerExited {
        agent,
        container,
        status,
    });
}
