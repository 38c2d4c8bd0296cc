//! Process helpers: liveness checks and process-group termination.

use std::process::Child;
use std::time::Duration;

use rustix::process::{Pid, Signal};

use crate::wait;
use crate::{Error, Result};

/// True when `pid` names a live process (a zombie counts as dead).
///
/// A daemon started by a script is reparented once the script exits, so its
/// exit may not be reaped immediately; `kill(pid, 0)` alone would still see it.
pub(crate) fn is_alive(pid: u32) -> bool {
    let Some(raw) = i32::try_from(pid).ok().and_then(Pid::from_raw) else {
        return false;
    };
    if rustix::process::test_kill_process(raw).is_err() {
        return false;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state letter follows the parenthesised command name, which may itself contain ')'.
        Ok(stat) => !matches!(
            stat.rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().chars().next()),
            Some(Some('Z' | 'X'))
        ),
        Err(_) => false,
    }
}

/// Sends `sig` to the process group led by `pid`; a vanished group is not an error.
pub(crate) fn signal_group(pid: u32, sig: Signal) -> Result<()> {
    let raw = i32::try_from(pid)
        .ok()
        .and_then(Pid::from_raw)
        .ok_or_else(|| Error::InvalidOption(format!("bad pid {pid}")))?;
    match rustix::process::kill_process_group(raw, sig) {
        Ok(()) | Err(rustix::io::Errno::SRCH) => Ok(()),
        Err(source) => Err(Error::Signal {
            pid: raw.as_raw_nonzero().get(),
            source,
        }),
    }
}

/// Sends `sig` to the single process `pid`; a vanished process is not an error.
pub(crate) fn signal(pid: u32, sig: Signal) -> Result<()> {
    let raw = i32::try_from(pid)
        .ok()
        .and_then(Pid::from_raw)
        .ok_or_else(|| Error::InvalidOption(format!("bad pid {pid}")))?;
    match rustix::process::kill_process(raw, sig) {
        Ok(()) | Err(rustix::io::Errno::SRCH) => Ok(()),
        Err(source) => Err(Error::Signal {
            pid: raw.as_raw_nonzero().get(),
            source,
        }),
    }
}

/// Stops a child that leads its own process group: SIGTERM to the group,
/// SIGKILL after `grace`, then reaps it.
pub(crate) fn terminate_group(child: &mut Child, grace: Duration) -> Result<()> {
    let pid = child.id();
    if child
        .try_wait()
        .map_err(Error::io(format!("wait for {pid}")))?
        .is_none()
    {
        signal_group(pid, Signal::TERM)?;
        let exited = wait::until(&format!("process {pid} to exit"), grace, || {
            child.try_wait().ok().flatten()
        });
        if exited.is_err() {
            tracing::warn!(pid, "did not exit after SIGTERM; sending SIGKILL");
        }
    }
    // Also catches stragglers in the group after the leader exited on SIGTERM.
    signal_group(pid, Signal::KILL)?;
    child.wait().map_err(Error::io(format!("reap {pid}")))?;
    Ok(())
}
