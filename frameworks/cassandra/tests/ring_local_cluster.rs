//! Real Cassandra on the embedded local cluster, driven the way an operator
//! does it: the `cassandra-mesos` scheduler process against a local master
//! whose agents carry `dc`/`rack` attributes, the real executor, the
//! Cassandra tarball built by `packaging/`, the `cassandra-mesos` CLI, and a
//! CQL client (the `scylla` driver).
//!
//! One scenario on one cluster, since every step needs the previous one:
//! 1. two nodes deploy and form one ring; a keyspace with replication
//!    factor 2 is written at consistency ONE; each node's data center and
//!    rack, from its agent's attributes, are in the other's `system.peers`;
//! 2. a rolling restart (`node restart 0..1`) runs while a client writes
//!    continuously; every acknowledged write is read back afterwards;
//! 3. node 1 is replaced onto the third agent and joins with the tokens of
//!    its old address.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, bail, ensure};
use mesos_local::{ClusterConfig, LocalCluster};
use scylla::{
    client::{session::Session, session_builder::SessionBuilder},
    statement::{Consistency, unprepared::Statement},
};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_cassandra-mesos");
/// How long any one wait may take (starts are slow on a busy machine).
const DEADLINE: Duration = Duration::from_secs(300);

/// The scheduler process; killed (by its PID) when dropped.
struct Scheduler {
    child: Child,
    api: String,
    log: PathBuf,
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Scheduler {
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// Runs a CLI command against this scheduler; its stdout, or an error
    /// with both streams.
    fn cli(&self, args: &[&str]) -> anyhow::Result<String> {
        let output = Command::new(BIN)
            .args(["--api", &self.api])
            .args(args)
            .output()
            .with_context(|| format!("running {BIN} {args:?}"))?;
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        if !output.status.success() {
            bail!(
                "{BIN} {} exited with {}:\n{stdout}\n{}\nscheduler log:\n{}",
                args.join(" "),
                output.status,
                String::from_utf8_lossy(&output.stderr),
                self.log_tail()
            );
        }
        Ok(stdout)
    }

    fn endpoints(&self) -> anyhow::Result<Value> {
        Ok(serde_json::from_str(&self.cli(&["endpoints"])?)?)
    }
}

/// Kills the processes (Cassandra JVMs) whose command line mentions `dir`,
/// our own cluster's directory, should an executor have left one behind.
fn kill_leftovers(dir: &Path) {
    let needle = dir.to_string_lossy().into_owned();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|p| p.parse::<i32>().ok())
        else {
            continue;
        };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains(&needle)
            && let Some(pid) = rustix::process::Pid::from_raw(pid)
        {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
        }
    }
}

fn tarball() -> anyhow::Result<PathBuf> {
    Ok(test_support::packaging::service_tarball("cassandra")?)
}

async fn connect(contact_points: &[String]) -> anyhow::Result<Session> {
    Ok(SessionBuilder::new()
        .known_nodes(contact_points)
        .connection_timeout(Duration::from_secs(10))
        .build()
        .await?)
}

fn contact_points(endpoints: &Value) -> anyhow::Result<Vec<String>> {
    cassandra_mesos::cli::contact_points(endpoints).map_err(anyhow::Error::msg)
}

fn node_address(endpoints: &Value, id: &str) -> anyhow::Result<String> {
    endpoints["nodes"][id]["address"]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("node {id} in {endpoints}"))
}

/// `system.peers` as node `cql` sees it: address → (dc, rack, tokens).
async fn peers(cql: &str) -> anyhow::Result<BTreeMap<String, (String, String, BTreeSet<String>)>> {
    let addr: SocketAddr = cql.parse()?;
    let filter = scylla::policies::host_filter::AllowListHostFilter::new([addr])?;
    let session = SessionBuilder::new()
        .known_node_addr(addr)
        .host_filter(Arc::new(filter))
        .build()
        .await?;
    let rows = session
        .query_unpaged(
            "SELECT peer, data_center, rack, tokens FROM system.peers",
            (),
        )
        .await?
        .into_rows_result()?;
    let mut out = BTreeMap::new();
    for row in rows.rows::<(
        std::net::IpAddr,
        Option<String>,
        Option<String>,
        Option<Vec<String>>,
    )>()? {
        let (peer, dc, rack, tokens) = row?;
        out.insert(
            peer.to_string(),
            (
                dc.unwrap_or_default(),
                rack.unwrap_or_default(),
                tokens.unwrap_or_default().into_iter().collect(),
            ),
        );
    }
    Ok(out)
}

/// Polls `check` until it returns `Some`, or fails after [`DEADLINE`].
async fn until<T, F, Fut>(what: &str, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = Instant::now() + DEADLINE;
    let mut last = String::from("no answer yet");
    loop {
        match check().await {
            Ok(Some(value)) => return Ok(value),
            Ok(None) => {}
            Err(e) => last = format!("{e:#}"),
        }
        if Instant::now() >= deadline {
            bail!("{what}: not reached within {DEADLINE:?}; last: {last}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn write(session: &Session, key: i32, consistency: Consistency) -> anyhow::Result<()> {
    let mut insert = Statement::new("INSERT INTO demo.events (id, body) VALUES (?, ?)");
    insert.set_consistency(consistency);
    // An upsert of a fixed value: the driver may retry it on another
    // coordinator when the one it chose is being drained.
    insert.set_is_idempotent(true);
    session
        .query_unpaged(insert, (key, format!("event {key}")))
        .await?;
    Ok(())
}

/// Every key of `keys` read back at consistency ALL; the missing ones.
async fn missing(session: &Session, keys: &[i32]) -> anyhow::Result<Vec<i32>> {
    let mut select = Statement::new("SELECT body FROM demo.events WHERE id = ?");
    select.set_consistency(Consistency::All);
    let prepared = session.prepare(select).await?;
    let mut missing = Vec::new();
    for key in keys {
        let rows = session
            .execute_unpaged(&prepared, (*key,))
            .await?
            .into_rows_result()?;
        if rows.rows_num() == 0 {
            missing.push(*key);
        }
    }
    Ok(missing)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_ring_restart_and_replace() -> anyhow::Result<()> {
    let started = Instant::now();
    let tarball = tarball()?;
    let executor = test_support::binaries::binary("service-executor", "service-executor")?;
    let dir = tempfile::tempdir()?;
    let mut config = ClusterConfig::with_agents(3);
    config.first_agent_ip = test_support::ports::agent_block();
    config.state_dir = Some(dir.path().join("cluster"));
    config.allocation_interval = Duration::from_millis(200);
    for (agent, rack) in config.agents.iter_mut().zip(["r1", "r2", "r2"]) {
        agent.resources = "cpus:2;mem:4096;disk:8000;ports:[31000-31099]".into();
        agent.attributes = format!("zone:dc-test;shelf:{rack}");
    }
    let cluster = LocalCluster::start(config).await?;
    let result = scenario(&cluster, &tarball, &executor, dir.path(), started).await;
    cluster.shutdown().await;
    kill_leftovers(dir.path());
    result
}

async fn scenario(
    cluster: &LocalCluster,
    tarball: &Path,
    executor: &Path,
    dir: &Path,
    started: Instant,
) -> anyhow::Result<()> {
    let port = test_support::ports::free_port()?;
    let api = format!("http://127.0.0.1:{port}");
    let log = dir.join("scheduler.log");
    let child = Command::new(BIN)
        .args(["scheduler", "--master", &cluster.master_url()])
        .arg("--storage")
        .arg(dir.join("state.json"))
        .args(["--api-bind", &format!("127.0.0.1:{port}")])
        .arg("--executor")
        .arg(executor)
        .arg("--cassandra-tarball")
        .arg(tarball)
        .args([
            "--step-timeout",
            "400",
            "--drain-timeout",
            "60s",
            "--stop-grace",
            "60s",
        ])
        .env("RUST_LOG", "info,scylla=warn")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log)?)
        .spawn()?;
    let scheduler = Scheduler { child, api, log };
    test_support::ports::wait_for_port(port, Duration::from_secs(60))?;

    // (1) Two nodes, one per rack, the rack and data center read from
    // attributes with non-default names.
    let common = [
        "--cpus",
        "0.5",
        "--mem",
        "1024",
        "--heap",
        "512",
        "--disk",
        "2000",
        "--cluster-name",
        "ring test",
        "--num-tokens",
        "8",
        "--dc-attribute",
        "zone",
        "--rack-attribute",
        "shelf",
        "--jvm-options",
        "-Dcassandra.ring_delay_ms=5000 -Dcassandra.skip_wait_for_gossip_to_settle=0",
    ];
    for (id, rack) in [("0", "r1"), ("1", "r2")] {
        let constraints = format!("hostname=unique,shelf=like:{rack}");
        let mut args = vec!["node", "add", id, "--constraints", &constraints];
        args.extend_from_slice(&common);
        scheduler.cli(&args)?;
        eprintln!("node {id} deployed after {:?}", started.elapsed());
    }
    let endpoints = scheduler.endpoints()?;
    let points = contact_points(&endpoints)?;
    assert_eq!(points.len(), 2, "{endpoints}");
    let (a0, a1) = (
        node_address(&endpoints, "0")?,
        node_address(&endpoints, "1")?,
    );
    assert_ne!(a0, a1);
    assert_eq!(endpoints["cluster_name"], "ring test");

    // One ring: each node lists the other, with its agent's place.
    let cql0 = points[0].clone();
    let cql1 = points[1].clone();
    let seen_by_0 = until("node 0 to see node 1 in system.peers", || async {
        let p = peers(&cql0).await?;
        Ok(p.get(&a1).filter(|(_, _, t)| t.len() == 8).cloned())
    })
    .await?;
    assert_eq!(
        (seen_by_0.0.as_str(), seen_by_0.1.as_str()),
        ("dc-test", "r2")
    );
    let seen_by_1 = peers(&cql1).await?;
    let (dc, rack, tokens_of_0) = seen_by_1.get(&a0).context("node 1 sees node 0")?;
    assert_eq!((dc.as_str(), rack.as_str()), ("dc-test", "r1"));
    assert_eq!(tokens_of_0.len(), 8);

    let session = connect(&points).await?;
    session
        .query_unpaged(
            "CREATE KEYSPACE demo WITH replication = {'class': 'NetworkTopologyStrategy', 'dc-test': 2}",
            (),
        )
        .await?;
    session.await_schema_agreement().await?;
    session
        .query_unpaged(
            "CREATE TABLE demo.events (id int PRIMARY KEY, body text)",
            (),
        )
        .await?;
    session.await_schema_agreement().await?;
    let first: Vec<i32> = (0..100).collect();
    for key in &first {
        write(&session, *key, Consistency::One).await?;
    }
    assert_eq!(missing(&session, &first).await?, Vec::<i32>::new());
    eprintln!("keyspace written after {:?}", started.elapsed());

    // (2) A rolling restart through the CLI while a client writes at ONE.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        let session = connect(&points).await?;
        tokio::spawn(async move {
            let (mut acked, mut failed) = (Vec::new(), 0u32);
            let mut key = 1_000;
            while !stop.load(Ordering::Relaxed) {
                match write(&session, key, Consistency::One).await {
                    Ok(()) => acked.push(key),
                    Err(_) => failed += 1,
                }
                key += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            (acked, failed)
        })
    };
    let restart_started = Instant::now();
    scheduler.cli(&["node", "restart", "0..1"])?;
    let restart_took = restart_started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let (acked, failed) = writer.await?;
    eprintln!(
        "rolling restart took {restart_took:?}: {} writes acknowledged, {failed} failed",
        acked.len()
    );
    ensure!(
        acked.len() > 100,
        "the writer kept writing: {} acked",
        acked.len()
    );
    let lost = until("every acknowledged write to be readable", || async {
        Ok(Some(missing(&session, &acked).await?))
    })
    .await?;
    assert_eq!(lost, Vec::<i32>::new(), "acknowledged writes lost");

    // (3) Replace node 1 onto the third agent: same tokens, new address.
    let tokens_of_1 = peers(&cql0).await?.get(&a1).context("node 1")?.2.clone();
    let replace_started = Instant::now();
    scheduler.cli(&["node", "replace", "1"])?;
    eprintln!("replace took {:?}", replace_started.elapsed());
    let endpoints = scheduler.endpoints()?;
    let moved = node_address(&endpoints, "1")?;
    assert_ne!(moved, a1, "node 1 moved to another agent");
    assert!(moved != a0);
    let joined = until(
        "node 0 to see the replacement with the old tokens",
        || async {
            let p = peers(&cql0).await?;
            Ok(p.get(&moved).filter(|(_, _, t)| !t.is_empty()).cloned())
        },
    )
    .await?;
    assert_eq!(
        joined.2, tokens_of_1,
        "the replacement owns the old node's tokens"
    );
    assert_eq!((joined.0.as_str(), joined.1.as_str()), ("dc-test", "r2"));
    let session = connect(&contact_points(&endpoints)?).await?;
    assert_eq!(missing(&session, &first).await?, Vec::<i32>::new());
    eprintln!("scenario done after {:?}", started.elapsed());
    Ok(())
}
