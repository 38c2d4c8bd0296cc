//! Measures the executor against its cost targets, launched by a real agent
//! (the embedded local cluster, and real Mesos 1.11 when its rig is present)
//! with a real service process:
//!
//! * launch overhead with the artifact cached: LAUNCH → TASK_RUNNING less
//!   the service's own start time (from its first instruction to listening)
//!   (target ≤ 100 ms). LAUNCH and TASK_RUNNING are the timestamps of the
//!   executor's first TASK_STARTING (sent on LAUNCH) and of its TASK_RUNNING;
//! * idle RSS of the executor while the service runs quietly (target ≤ 8 MB),
//!   and the CPU time it uses meanwhile (target: none).
//!
//! Run through `scripts/bench-executor.sh`, which builds the shipped binary
//! and passes it in `EXECUTOR_BIN`.

#[path = "../tests/cluster/mod.rs"]
mod cluster;
#[path = "../tests/common/mod.rs"]
mod common;

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use cluster::{Binary, Scheduler, executor_info, framework, port, task_info};
use common::{ArtifactServer, sha256, tarball};
use executor_protocol::{Artifact, Check, Command, Readiness, TaskDocument};
use mesos_proto::v1::TaskState;
use test_support::rig::{MesosRig, RigOptions};

const RSS_TARGET: u64 = 8 * 1024 * 1024;
const OVERHEAD_TARGET: Duration = Duration::from_millis(100);
const ROUNDS: usize = 5;
const IDLE: Duration = Duration::from_secs(5);
/// Readiness probe interval: the overhead includes up to one of these.
const PROBE_INTERVAL_MS: u64 = 50;

fn proc_field(pid: u32, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// utime + stime in clock ticks.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

fn read_number(path: &Path) -> anyhow::Result<u128> {
    Ok(std::fs::read_to_string(path)
        .with_context(|| format!("read {}", path.display()))?
        .trim()
        .parse()?)
}

struct Figures {
    overheads: Vec<Duration>,
    idle_rss: u64,
    idle_cpu: u64,
}

/// Launches ROUNDS + 1 tasks (the first fills the cache) through the master
/// at `master` and measures each.
async fn measure(master: &str, binary: &str, work: &Path) -> anyhow::Result<Figures> {
    let server = ArtifactServer::start().await?;
    let tgz = tarball(&[(
        "svc/bin/serve.sh",
        0o755,
        // The service notes when it starts (before its interpreter loads),
        // when it listens, and its parent: the executor.
        "#!/bin/sh\ndate +%s%N > \"$3/started\"\necho $PPID > \"$3/executor\"\n\
         exec python3 -c 'import socket,sys,time\ns=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
         s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(16)\n\
         open(sys.argv[3]+\"/listening\",\"w\").write(str(time.time_ns()))\n\
         while True:\n    c,_=s.accept(); c.close()' \"$1\" \"$2\" \"$3\"\n",
    )])?;
    let url = server.serve("/bench-1.0.tgz", tgz.clone());
    let cache = work.join("cache");
    let cache_text = cache.display().to_string();
    let mut s = Scheduler::start(master, framework("executor-bench"))?;
    let mut figures = Figures {
        overheads: Vec::new(),
        idle_rss: 0,
        idle_cpu: 0,
    };
    for round in 0..=ROUNDS {
        let offer = s.offer().await?;
        let (ports, p) = port(&offer, 0)?;
        let marks = work.join(format!("round-{round}"));
        std::fs::create_dir_all(&marks)?;
        let mut doc = TaskDocument::new(Command::Exec {
            program: "svc/bin/serve.sh".into(),
            args: vec![
                offer.hostname.clone(),
                p.to_string(),
                marks.display().to_string(),
            ],
        });
        doc.artifacts.push(Artifact {
            url: url.clone(),
            sha256: sha256(&tgz),
            extract: true,
            destination: ".".into(),
        });
        doc.readiness = Some(Readiness {
            check: Check::Tcp {
                host: offer.hostname.clone(),
                port: p,
            },
            interval_ms: PROBE_INTERVAL_MS,
            timeout_ms: 1000,
            initial_delay_ms: 0,
        });
        let task = format!("bench-{round}");
        let executor = executor_info(
            &offer,
            &format!("bench-exec-{round}"),
            Binary::Fetched(binary),
            &[
                ("EXECUTOR_ARTIFACT_CACHE", &cache_text),
                ("EXECUTOR_LOG", "warn"),
            ],
        )?;
        let info = task_info(&offer, &task, executor, &doc, vec![ports])?;
        s.launch(&offer, vec![info]).await?;
        let starting = s.update(&task, TaskState::TaskStarting).await?;
        let running = s.update(&task, TaskState::TaskRunning).await?;
        let launched = starting.timestamp.context("STARTING timestamp")?;
        let ready = running.timestamp.context("RUNNING timestamp")?;
        let total = Duration::from_secs_f64((ready - launched).max(0.0));
        let own = Duration::from_nanos(u64::try_from(
            read_number(&marks.join("listening"))?
                .saturating_sub(read_number(&marks.join("started"))?),
        )?);
        let overhead = total.saturating_sub(own);
        println!(
            "  round {round}: LAUNCH→RUNNING {:.1} ms, service's own start {:.1} ms, overhead {:.1} ms{}",
            total.as_secs_f64() * 1e3,
            own.as_secs_f64() * 1e3,
            overhead.as_secs_f64() * 1e3,
            if round == 0 {
                " (cache fill, not counted)"
            } else {
                ""
            }
        );
        if round > 0 {
            figures.overheads.push(overhead);
        }
        if round == ROUNDS {
            let pid = u32::try_from(read_number(&marks.join("executor"))?)?;
            tokio::time::sleep(Duration::from_millis(500)).await;
            let before = cpu_ticks(pid).unwrap_or(0);
            tokio::time::sleep(IDLE).await;
            figures.idle_cpu = cpu_ticks(pid).unwrap_or(0).saturating_sub(before);
            figures.idle_rss = proc_field(pid, "VmRSS:").unwrap_or(0) * 1024;
            println!(
                "  idle executor (pid {pid}): RssAnon {} kB, RssFile {} kB, threads {}",
                proc_field(pid, "RssAnon:").unwrap_or(0),
                proc_field(pid, "RssFile:").unwrap_or(0),
                proc_field(pid, "Threads:").unwrap_or(0)
            );
        }
        s.kill(&task, &offer.agent_id, None).await?;
        s.update(&task, TaskState::TaskKilled).await?;
    }
    s.handle.teardown().await?;
    Ok(figures)
}

fn report(target: &str, f: &Figures) {
    let mut overheads = f.overheads.clone();
    overheads.sort();
    let median = overheads
        .get(overheads.len() / 2)
        .copied()
        .unwrap_or_default();
    let max = overheads.last().copied().unwrap_or_default();
    let verdict = |ok: bool| if ok { "OK" } else { "OVER" };
    println!("{target}:");
    println!(
        "  idle RSS         {:>7.2} MB        target ≤ {:.0} MB   {}",
        f.idle_rss as f64 / 1048576.0,
        RSS_TARGET as f64 / 1048576.0,
        verdict(f.idle_rss <= RSS_TARGET)
    );
    println!(
        "  idle CPU         {:>7} ticks in {}s   target 0      {}",
        f.idle_cpu,
        IDLE.as_secs(),
        verdict(f.idle_cpu == 0)
    );
    println!(
        "  launch overhead  {:>7.1} ms median, {:.1} ms max (artifact cached; includes up to one {PROBE_INTERVAL_MS} ms probe interval)   target ≤ {} ms   {}",
        median.as_secs_f64() * 1e3,
        max.as_secs_f64() * 1e3,
        OVERHEAD_TARGET.as_millis(),
        verdict(median <= OVERHEAD_TARGET)
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let binary =
        std::env::var("EXECUTOR_BIN").context("set EXECUTOR_BIN to the executor binary")?;
    let work = tempfile::Builder::new()
        .prefix("executor-bench-")
        .tempdir()?;
    let mut results = Vec::new();

    println!("local cluster (embedded, one agent):");
    let mut config = mesos_local::ClusterConfig::with_agents(1);
    config.first_agent_ip = test_support::ports::agent_block();
    config.allocation_interval = Duration::from_millis(100);
    config.agents[0].resources = "cpus:4;mem:4096;disk:1000;ports:[31000-31099]".into();
    let local = mesos_local::LocalCluster::start(config).await?;
    let figures = measure(&local.master_url(), &binary, &work.path().join("local")).await;
    local.shutdown().await;
    results.push(("local cluster", figures?));

    if MesosRig::available().dir().is_some() {
        println!("real Mesos 1.11 (rig, one agent):");
        let rig = tokio::task::spawn_blocking(|| {
            MesosRig::start(
                RigOptions::default()
                    .agents(1)
                    .resources("cpus:4;mem:4096;disk:10000;ports:[31000-31099]"),
            )
        })
        .await??;
        let master = format!("{}/", rig.endpoint());
        let figures = measure(&master, &binary, &work.path().join("rig")).await;
        drop(rig);
        results.push(("real Mesos", figures?));
    } else {
        println!("real Mesos: rig not found, skipped");
    }

    println!();
    for (target, figures) in &results {
        report(target, figures);
    }
    Ok(())
}
