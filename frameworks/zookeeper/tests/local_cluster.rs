//! A real ZooKeeper ensemble on the embedded local cluster, driven through the
//! `zookeeper-mesos` binary as an operator drives it, checked with a Rust
//! ZooKeeper client.
//!
//! One scenario on one cluster (real JVMs are heavy, so one at a time):
//! three servers deploy and take writes; a rolling restart (`server restart
//! 0..2`, followed to its end) runs while a client writes continuously, and
//! every acknowledged write is there afterwards; the ensemble grows to five
//! by dynamic reconfiguration and shrinks back to three, the data intact; a
//! server replaced onto the spare agent rejoins at its new address with an
//! empty volume and serves all the data.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
    process::{Child, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use rustix::process::{Pid, Signal};
use serde_json::Value;
use zookeeper_client as zk;

/// Resources of each local agent: room for two servers.
const AGENT: &str = "cpus:2;mem:2048;disk:4000;ports:[31000-31019]";
/// Agents: one per server of the three-server ensemble, and a spare to
/// replace a server onto.
const AGENTS: usize = 4;
/// Small servers with a short tick, so that elections and syncs are quick.
const SERVER: &[&str] = &["--heap", "96", "--mem", "256", "--option", "tickTime=500"];

fn zookeeper_tarball() -> anyhow::Result<PathBuf> {
    Ok(test_support::packaging::service_tarball("zookeeper")?)
}

/// A `zookeeper-mesos scheduler` process in its own group; stopped with
/// SIGTERM when dropped, which stops the local cluster and its servers.
struct Scheduler {
    child: Child,
    log: PathBuf,
    api: String,
}

impl Scheduler {
    async fn start(dir: &Path, extra: &[String]) -> anyhow::Result<Self> {
        use std::os::unix::process::CommandExt as _;
        let executor = test_support::binaries::binary("service-executor", "service-executor")?;
        let port = test_support::ports::free_port()?;
        let api = format!("http://127.0.0.1:{port}");
        let log = dir.join("scheduler.log");
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_zookeeper-mesos"))
            .arg("scheduler")
            .args(["--api-bind", &format!("127.0.0.1:{port}")])
            .arg("--storage")
            .arg(dir.join("state.json"))
            .arg("--executor")
            .arg(&executor)
            .args(extra)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .process_group(0)
            .spawn()
            .context("starting zookeeper-mesos scheduler")?;
        let mut scheduler = Scheduler { child, log, api };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if run(&scheduler.api, &["server", "list"]).await?.0 == Some(0) {
                return Ok(scheduler);
            }
            if !matches!(scheduler.child.try_wait(), Ok(None)) || Instant::now() > deadline {
                bail!("the scheduler did not come up:\n{}", scheduler.log_tail());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        let pid = i32::try_from(self.child.id()).ok().and_then(Pid::from_raw);
        if let Some(pid) = pid {
            let _ = rustix::process::kill_process(pid, Signal::TERM);
            let deadline = Instant::now() + Duration::from_secs(60);
            while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = rustix::process::kill_process_group(pid, Signal::KILL);
        }
        let _ = self.child.wait();
    }
}

/// Runs `zookeeper-mesos --api API ARGS…`: exit code, stdout, stderr.
async fn run(api: &str, args: &[&str]) -> anyhow::Result<(Option<i32>, String, String)> {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_zookeeper-mesos"))
        .args(["--api", api])
        .args(args)
        .env_remove("ZOOKEEPER_MESOS_API")
        .env_remove("SCHEDULER_API")
        .stdin(Stdio::null())
        .output()
        .await?;
    Ok((
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    ))
}

/// Runs a command that must exit 0; returns its stdout and stderr together.
async fn ok(scheduler: &Scheduler, args: &[&str]) -> anyhow::Result<String> {
    let (code, out, err) = run(&scheduler.api, args).await?;
    if code != Some(0) {
        bail!(
            "zookeeper-mesos {} exited {code:?}\n--- stdout\n{out}\n--- stderr\n{err}\n--- scheduler\n{}",
            args.join(" "),
            scheduler.log_tail()
        );
    }
    Ok(format!("{out}\n{err}"))
}

async fn connect_string(scheduler: &Scheduler) -> anyhow::Result<String> {
    let text = ok(scheduler, &["--json", "endpoints"]).await?;
    let json: Value = serde_json::from_str(text.trim()).context("endpoints JSON")?;
    json["connect"]
        .as_str()
        .map(str::to_owned)
        .context("connect string in endpoints")
}

async fn client(connect: &str) -> anyhow::Result<zk::Client> {
    let connect = tokio::time::timeout(
        Duration::from_secs(30),
        zk::Client::connector()
            .with_session_timeout(Duration::from_secs(20))
            .connect(connect),
    )
    .await
    .context("connecting to the ensemble timed out")??;
    Ok(connect)
}

/// The myids in the ensemble's committed configuration.
async fn voters(client: &zk::Client) -> anyhow::Result<BTreeSet<u8>> {
    let (data, _) = client.get_config().await?;
    Ok(
        zookeeper_mesos::ensemble::parse_config(&String::from_utf8_lossy(&data))
            .into_keys()
            .collect(),
    )
}

/// The agent each server (of `ids`) runs on, from `server list`.
async fn hosts(scheduler: &Scheduler, ids: &[&str]) -> anyhow::Result<BTreeMap<String, String>> {
    let list = ok(scheduler, &["--json", "server", "list"]).await?;
    let list: Value = serde_json::from_str(list.trim())?;
    let mut hosts = BTreeMap::new();
    for node in list["nodes"].as_array().context("nodes")? {
        let id = node["id"].as_str().context("node id")?;
        if ids.contains(&id) {
            let host = node["host"].as_str().context("placed node's host")?;
            hosts.insert(id.to_owned(), host.to_owned());
        }
    }
    Ok(hosts)
}

/// Every child of `/writes`.
async fn written(client: &zk::Client) -> anyhow::Result<BTreeSet<String>> {
    Ok(client.list_children("/writes").await?.into_iter().collect())
}

/// Creates `/writes/w-N` for N = first, first+1, … until stopped; returns the
/// names whose creation was acknowledged and how many attempts failed.
fn write_until_stopped(
    client: zk::Client,
    first: u64,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<(Vec<String>, usize)> {
    tokio::spawn(async move {
        let mut acked = Vec::new();
        let mut failed = 0;
        let mut i = first;
        while !stop.load(Ordering::Relaxed) {
            let name = format!("w-{i:08}");
            let created = tokio::time::timeout(
                Duration::from_secs(5),
                client.create(
                    &format!("/writes/{name}"),
                    name.as_bytes(),
                    &zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all()),
                ),
            )
            .await;
            match created {
                Ok(Ok(_)) => acked.push(name),
                _ => {
                    failed += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
            i += 1;
        }
        (acked, failed)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_ensemble_deploys_restarts_grows_and_shrinks_on_the_local_cluster() -> anyhow::Result<()>
{
    let started = Instant::now();
    let dir = tempfile::tempdir()?;
    let tarball = zookeeper_tarball()?;
    let block = test_support::ports::agent_block();
    let args: Vec<String> = [
        "--master",
        &format!("local:{AGENTS}"),
        "--local-first-agent-ip",
        &block.to_string(),
        "--local-resources",
        AGENT,
        "--local-state-dir",
        &dir.path().join("cluster").display().to_string(),
        "--zookeeper-tarball",
        &tarball.display().to_string(),
        "--step-timeout",
        "90",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let scheduler = Scheduler::start(dir.path(), &args).await?;

    // (1) Three servers deploy, one per agent; a client writes.
    let mut add = vec!["server", "add", "0..2", "--constraints", "hostname=unique"];
    add.extend_from_slice(SERVER);
    let out = ok(&scheduler, &add).await?;
    assert!(out.contains("complete"), "{out}");
    let connect = connect_string(&scheduler).await?;
    assert_eq!(connect.split(',').count(), 3, "{connect}");
    let zk = client(&connect).await?;
    zk.create(
        "/writes",
        b"",
        &zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all()),
    )
    .await?;
    assert_eq!(voters(&zk).await?, BTreeSet::from([0, 1, 2]));
    eprintln!("deployed in {:?}", started.elapsed());

    // (2) A rolling restart while a client writes continuously.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = write_until_stopped(client(&connect).await?, 0, stop.clone());
    tokio::time::sleep(Duration::from_secs(1)).await;
    let restart_began = Instant::now();
    let out = ok(&scheduler, &["server", "restart", "0..2"]).await?;
    assert!(out.contains("complete"), "the CLI follows the plan: {out}");
    for server in ["0", "1", "2"] {
        assert!(
            out.contains(&format!("server {server}")),
            "progress names server {server}: {out}"
        );
    }
    eprintln!("rolling restart took {:?}", restart_began.elapsed());
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    let (acked, failed) = writer.await?;
    eprintln!(
        "{} writes acknowledged, {failed} failed during the restart",
        acked.len()
    );
    assert!(acked.len() > 20, "the writer got through: {}", acked.len());
    let present = written(&client(&connect).await?).await?;
    let lost: Vec<&String> = acked.iter().filter(|a| !present.contains(*a)).collect();
    assert!(lost.is_empty(), "acknowledged writes lost: {lost:?}");
    let list = ok(&scheduler, &["--json", "server", "list"]).await?;
    let list: Value = serde_json::from_str(list.trim())?;
    let generations: Vec<u64> = list["nodes"]
        .as_array()
        .context("nodes")?
        .iter()
        .map(|n| n["task"]["generation"].as_u64().unwrap_or(0))
        .collect();
    assert!(
        generations.iter().all(|g| *g >= 2),
        "every server was relaunched: {generations:?}"
    );

    // (3) Grow to five by reconfiguration, then shrink back to three. The
    // two extra servers have no constraint: they share agents.
    let mut add = vec!["server", "add", "3..4"];
    add.extend_from_slice(SERVER);
    ok(&scheduler, &add).await?;
    let connect5 = connect_string(&scheduler).await?;
    assert_eq!(connect5.split(',').count(), 5, "{connect5}");
    let zk5 = client(&connect5).await?;
    assert_eq!(voters(&zk5).await?, BTreeSet::from([0, 1, 2, 3, 4]));
    let before = written(&zk5).await?;
    assert!(before.is_superset(&acked.iter().cloned().collect()));
    ok(&scheduler, &["server", "remove", "3..4", "--yes"]).await?;
    let connect3 = connect_string(&scheduler).await?;
    assert_eq!(connect3.split(',').count(), 3, "{connect3}");
    let zk3 = client(&connect3).await?;
    assert_eq!(voters(&zk3).await?, BTreeSet::from([0, 1, 2]));
    assert_eq!(
        written(&zk3).await?,
        before,
        "the data is intact after shrinking"
    );
    zk3.create(
        "/writes/after-shrink",
        b"",
        &zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all()),
    )
    .await?;

    // Removing two of the three would lose the quorum: refused, nothing changes.
    let (code, _, err) = run(&scheduler.api, &["server", "remove", "1..2", "--yes"]).await?;
    assert_ne!(code, Some(0), "removing 2 of 3 is refused");
    assert!(err.contains("quorum"), "{err}");
    assert_eq!(voters(&zk3).await?, BTreeSet::from([0, 1, 2]));

    // (4) Replace server 1 onto the spare agent: the ensemble's configuration
    // is moved to its new address before it starts with an empty volume.
    let all = written(&zk3).await?;
    let before = hosts(&scheduler, &["0", "1", "2"]).await?;
    let replace_began = Instant::now();
    let out = ok(&scheduler, &["server", "replace", "1"]).await?;
    assert!(out.contains("complete"), "the CLI follows the plan: {out}");
    eprintln!("replace took {:?}", replace_began.elapsed());
    let after = hosts(&scheduler, &["0", "1", "2"]).await?;
    assert!(
        !before.values().any(|h| *h == after["1"]),
        "server 1 moved to the spare agent: {before:?} → {after:?}"
    );
    let endpoints: Value =
        serde_json::from_str(ok(&scheduler, &["--json", "endpoints"]).await?.trim())?;
    let moved = endpoints["servers"]["1"]
        .as_str()
        .context("server 1's endpoint")?
        .to_owned();
    assert!(moved.starts_with(&format!("{}:", after["1"])), "{moved}");
    let srvr = zookeeper_mesos::admin::four_letter(&moved, "srvr", Duration::from_secs(5)).await?;
    assert!(
        zookeeper_mesos::ensemble::parse_mode(&srvr).is_some_and(|m| m.serves()),
        "server 1 leads or follows: {srvr}"
    );
    let (config, _) = zk3.get_config().await?;
    let committed = zookeeper_mesos::ensemble::parse_config(&String::from_utf8_lossy(&config));
    assert_eq!(
        committed.keys().copied().collect::<BTreeSet<u8>>(),
        BTreeSet::from([0, 1, 2])
    );
    let (host, client_port) = moved.rsplit_once(':').context("host:port")?;
    assert!(
        committed[&1].starts_with(&format!("{host}:"))
            && committed[&1].ends_with(&format!(":{client_port}")),
        "the committed configuration names server 1's new address: {committed:?}"
    );
    let through_moved = client(&moved).await?;
    assert_eq!(
        written(&through_moved).await?,
        all,
        "every write is readable through the replaced server"
    );
    eprintln!("scenario took {:?}", started.elapsed());
    drop(zk);
    drop(zk5);
    drop(zk3);
    drop(through_moved);
    drop(scheduler);
    Ok(())
}
