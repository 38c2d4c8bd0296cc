//! The `mesos-local` binary: prints the master URL, serves the cluster, and
//! stops (with its executors) on Ctrl-C.

mod common;

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::Context;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_prints_the_master_and_stops_on_ctrl_c() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut child = Command::new(env!("CARGO_BIN_EXE_mesos-local"))
        .args(["--agents", "2", "--port", "0", "--state-dir"])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let stdout = child.stdout.take().context("stdout")?;
    let master = tokio::task::spawn_blocking(move || {
        // Read up to the last line it prints: a closed pipe would kill it on its next println.
        let mut master = None;
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("MASTER=") {
                master = Some(url.to_owned());
            }
            if line.starts_with("STATE_DIR=") {
                break;
            }
        }
        master
    })
    .await?
    .context("no MASTER= line")?;
    let state = common::master_state(&master).await?;
    assert_eq!(state["slaves"].as_array().map(Vec::len), Some(2));
    assert!(dir.path().join("agents/agent-1/agent.json").is_file());
    let pid = rustix::process::Pid::from_raw(i32::try_from(child.id())?).context("pid")?;
    rustix::process::kill_process(pid, rustix::process::Signal::INT)?;
    let status = tokio::time::timeout(
        Duration::from_secs(20),
        tokio::task::spawn_blocking(move || child.wait()),
    )
    .await
    .context("mesos-local did not stop on SIGINT")???;
    assert!(status.success(), "{status}");
    Ok(())
}
