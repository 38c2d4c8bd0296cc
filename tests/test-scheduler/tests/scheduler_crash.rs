//! A scheduler process killed with SIGKILL at several points of a deploy and
//! restarted from its state file converges: every node runs exactly once,
//! and the master holds exactly one reservation set and one volume per node
//! (nothing duplicated, nothing leaked). The local cluster runs as its own
//! process so that it survives the scheduler's deaths.

use std::{
    collections::{BTreeMap, BTreeSet},
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use serde_json::{Value, json};
use test_support::{binaries::binary, ports::free_port};

const DEADLINE: Duration = Duration::from_secs(120);

/// A child process stopped when dropped: SIGINT first (the local cluster
/// ends its executors on it), SIGKILL if it is still there after a while.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = signal(&self.0, rustix::process::Signal::INT);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if matches!(self.0.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn signal(child: &Child, signal: rustix::process::Signal) -> anyhow::Result<()> {
    let pid = rustix::process::Pid::from_raw(i32::try_from(child.id())?).context("pid")?;
    rustix::process::kill_process(pid, signal)?;
    Ok(())
}

struct Paths {
    scheduler: PathBuf,
    executor: PathBuf,
    tarball: PathBuf,
    state: PathBuf,
    logs: PathBuf,
}

fn start_scheduler(paths: &Paths, master: &str, port: u16, run: usize) -> anyhow::Result<Proc> {
    let log = std::fs::File::create(paths.logs.join(format!("scheduler-{run}.log")))?;
    let child = Command::new(&paths.scheduler)
        .args(["scheduler", "--master", master, "--failover-timeout", "300"])
        .arg("--storage")
        .arg(&paths.state)
        .args(["--api-bind", &format!("127.0.0.1:{port}")])
        .arg("--executor")
        .arg(&paths.executor)
        .arg("--service-tarball")
        .arg(&paths.tarball)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .context("starting test-scheduler")?;
    Ok(Proc(child))
}

async fn get(url: &str) -> Option<Value> {
    let response = reqwest::get(url).await.ok()?;
    if !response.status().is_success() {
        return None;
    }
    response.json().await.ok()
}

/// Polls `probe` until it yields a value or the deadline passes.
async fn until<T, F: Future<Output = Option<T>>>(
    what: &str,
    mut probe: impl FnMut() -> F,
) -> anyhow::Result<T> {
    let start = Instant::now();
    loop {
        if let Some(value) = probe().await {
            return Ok(value);
        }
        if start.elapsed() > DEADLINE {
            bail!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Our reservations per agent: (node labels seen, volume count).
async fn reservations(master: &str) -> Option<BTreeMap<String, (BTreeSet<String>, usize)>> {
    let slaves = get(&format!("{master}/master/slaves")).await?;
    let mut found = BTreeMap::new();
    for agent in slaves["slaves"].as_array()? {
        let id = agent["id"].as_str()?.to_owned();
        let Some(resources) = agent["reserved_resources_full"]["testsvc"].as_array() else {
            continue;
        };
        let entry: &mut (BTreeSet<String>, usize) = found.entry(id).or_default();
        for resource in resources {
            if resource["disk"]["persistence"].is_object() {
                entry.1 += 1;
            }
            for reservation in resource["reservations"].as_array().into_iter().flatten() {
                for label in reservation["labels"]["labels"]
                    .as_array()
                    .into_iter()
                    .flatten()
                {
                    if label["key"] == "mesos-ds.node" {
                        entry
                            .0
                            .insert(label["value"].as_str().unwrap_or("?").to_owned());
                    }
                }
            }
        }
    }
    Some(found)
}

/// Every task the master lists as live, with its state.
async fn task_states(master: &str) -> Option<BTreeMap<String, String>> {
    let state = get(&format!("{master}/master/state")).await?;
    let mut tasks = BTreeMap::new();
    for framework in state["frameworks"].as_array()? {
        for task in framework["tasks"].as_array().into_iter().flatten() {
            tasks.insert(
                task["id"].as_str()?.to_owned(),
                task["state"].as_str()?.to_owned(),
            );
        }
    }
    Some(tasks)
}

async fn running_tasks(master: &str) -> Option<Vec<String>> {
    let tasks = task_states(master).await?;
    Some(
        tasks
            .into_iter()
            .filter(|(_, state)| state == "TASK_RUNNING")
            .map(|(id, _)| id)
            .collect(),
    )
}

async fn stages(api: &str) -> Option<BTreeMap<String, String>> {
    let list = get(&format!("{api}/api/v1/nodes")).await?;
    Some(
        list["nodes"]
            .as_array()?
            .iter()
            .filter_map(|n| {
                Some((
                    n["id"].as_str()?.to_owned(),
                    n["stage"].as_str()?.to_owned(),
                ))
            })
            .collect(),
    )
}

/// The master's task states, for a failure message (outside the runtime).
fn master_task_states(master: &str) -> Option<BTreeMap<String, String>> {
    let master = master.to_owned();
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .ok()?
            .block_on(task_states(&master))
    })
    .join()
    .ok()
    .flatten()
}

fn start_cluster(dir: &Path) -> anyhow::Result<(Proc, String)> {
    let mut child = Command::new(binary("mesos-local", "mesos-local")?)
        .args(["--agents", "3", "--port", "0"])
        .args([
            "--first-agent-ip",
            &test_support::ports::agent_block().to_string(),
        ])
        .args([
            "--resources",
            "cpus:2;mem:2048;disk:4000;ports:[31000-31009]",
        ])
        .arg("--state-dir")
        .arg(dir)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(dir.with_extension("log"))?)
        .spawn()
        .context("starting mesos-local")?;
    let stdout = child.stdout.take().context("stdout")?;
    let proc = Proc(child);
    // Keep draining its output: a closed pipe would kill it with SIGPIPE.
    let (found, master) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("MASTER=") {
                let _ = found.send(url.trim_end_matches('/').to_owned());
            }
        }
    });
    let master = master
        .recv_timeout(Duration::from_secs(30))
        .context("mesos-local printed no MASTER= line")?;
    Ok((proc, master))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_scheduler_converges_without_duplicates_or_leaks() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let paths = Paths {
        scheduler: PathBuf::from(env!("CARGO_BIN_EXE_test-scheduler")),
        executor: binary("service-executor", "service-executor")?,
        tarball: dir.path().join("test-service.tar.gz"),
        state: dir.path().join("state.json"),
        logs: dir.path().to_path_buf(),
    };
    test_scheduler::tarball(&binary("test-service", "test-service")?, &paths.tarball)?;
    let (cluster, master) = start_cluster(&dir.path().join("cluster"))?;
    let port = free_port()?;
    let api = format!("http://127.0.0.1:{port}");

    // Kill points, in the order a deploy passes them.
    type Point = fn(&BTreeMap<String, (BTreeSet<String>, usize)>, &[String]) -> bool;
    let points: [(&str, Point); 3] = [
        ("right after the nodes were added", |_, _| true),
        ("once the master holds a reservation of ours", |r, _| {
            !r.is_empty()
        }),
        ("once a task runs", |_, running| !running.is_empty()),
    ];
    for (run, (when, reached)) in points.iter().enumerate() {
        let mut scheduler = start_scheduler(&paths, &master, port, run)?;
        until("the scheduler's /health", || async {
            get(&format!("{api}/health")).await.map(|_| ())
        })
        .await
        .with_context(|| format!("run {run}"))?;
        if run == 0 {
            let added = reqwest::Client::new()
                .post(format!("{api}/api/v1/nodes"))
                .json(&json!({"ids": "0..2", "config": {"constraints": "hostname=unique"}}))
                .send()
                .await?;
            assert!(added.status().is_success(), "add: {}", added.text().await?);
        }
        until(when, || async {
            let reserved = reservations(&master).await?;
            let running = running_tasks(&master).await?;
            reached(&reserved, &running).then_some(())
        })
        .await
        .with_context(|| {
            let log = std::fs::read_to_string(dir.path().join(format!("scheduler-{run}.log")))
                .unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            format!(
                "scheduler log (last lines, newest first):\n{}",
                tail.join("\n")
            )
        })?;
        signal(&scheduler.0, rustix::process::Signal::KILL)?;
        let _ = scheduler.0.wait();
        eprintln!("killed the scheduler {when}");
    }

    // A last start converges.
    let scheduler = start_scheduler(&paths, &master, port, points.len())?;
    until("three running nodes", || async {
        let stages = stages(&api).await?;
        (stages.len() == 3 && stages.values().all(|s| s == "running")).then_some(())
    })
    .await
    .with_context(|| {
        std::fs::read_to_string(dir.path().join(format!("scheduler-{}.log", points.len())))
            .unwrap_or_default()
    })?;

    // The master's own view follows the status updates; wait for it too.
    let running = until("the master to show three running tasks", || async {
        let running = running_tasks(&master).await?;
        (running.len() >= 3).then_some(running)
    })
    .await
    .with_context(|| {
        let log = std::fs::read_to_string(dir.path().join("cluster.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(60).collect();
        format!(
            "the master's tasks: {:?}\nmesos-local log (newest first):\n{}",
            master_task_states(&master),
            tail.join("\n")
        )
    })?;
    let nodes: BTreeSet<String> = running
        .iter()
        .filter_map(|t| {
            t.strip_prefix("testsvc-")
                .and_then(|r| r.split('-').next())
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(
        running.len(),
        3,
        "exactly one running task per node: {running:?}"
    );
    assert_eq!(nodes.len(), 3, "one task per node: {running:?}");
    let reserved = reservations(&master).await.context("master slaves")?;
    let mut labels = BTreeSet::new();
    for (agent, (nodes, volumes)) in &reserved {
        assert_eq!(
            nodes.len(),
            1,
            "agent {agent} holds reservations of one node: {nodes:?}"
        );
        assert_eq!(*volumes, 1, "agent {agent} holds one volume");
        labels.extend(nodes.iter().cloned());
    }
    assert_eq!(
        labels.len(),
        3,
        "three nodes reserved, one per agent: {reserved:?}"
    );

    signal(&scheduler.0, rustix::process::Signal::TERM)?;
    signal(&cluster.0, rustix::process::Signal::INT)?;
    drop(scheduler);
    drop(cluster);
    Ok(())
}
