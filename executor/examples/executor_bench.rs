//! Measures the executor against its cost targets, using the fake agent on
//! loopback and a real service process:
//!
//! * idle RSS of the executor while the service runs quietly (target ≤ 8 MB),
//!   and the CPU time it uses meanwhile (target: none);
//! * launch overhead with the artifact cached: LAUNCH → TASK_RUNNING, less
//!   the service's own start time (from its first instruction to listening)
//!   (target ≤ 100 ms).
//!
//! Run through `executor/bench/executor-bench.sh`, which builds the release
//! binary and passes it in `EXECUTOR_BIN`.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use common::*;
use executor_protocol::{Artifact, Check, Command, Readiness, TaskDocument};
use mesos_proto::v1::TaskState;

const RSS_TARGET: u64 = 8 * 1024 * 1024;
const OVERHEAD_TARGET: Duration = Duration::from_millis(100);
const ROUNDS: usize = 5;
const IDLE: Duration = Duration::from_secs(5);

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

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

fn read_ns(path: &std::path::Path) -> anyhow::Result<u128> {
    Ok(std::fs::read_to_string(path)
        .with_context(|| format!("read {}", path.display()))?
        .trim()
        .parse()?)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let binary =
        std::env::var("EXECUTOR_BIN").context("set EXECUTOR_BIN to the executor binary")?;
    let mut agent = FakeAgent::start().await?;
    let server = ArtifactServer::start().await?;
    let dir = tempfile::Builder::new()
        .prefix("executor-bench-")
        .tempdir()?;
    let keep = std::env::var_os("BENCH_KEEP").is_some();
    let tarball = tarball(&[(
        "svc/bin/serve.sh",
        0o755,
        // The service notes when it starts (before its interpreter loads) and
        // when it listens, so that its own start time can be taken out.
        "#!/bin/sh\ndate +%s%N > started\nexec python3 -c 'import socket,sys,time\ns=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\ns.bind((\"127.0.0.1\", int(sys.argv[1]))); s.listen(16)\nopen(\"listening\",\"w\").write(str(time.time_ns()))\nwhile True:\n    c,_=s.accept(); c.close()' \"$1\"\n",
    )])?;
    let url = server.serve("/bench.tgz", tarball.clone());

    // BENCH_EXECUTOR_LOG=debug keeps a timeline in each run's executor.log.
    let log_level = std::env::var("BENCH_EXECUTOR_LOG").unwrap_or_else(|_| "warn".into());
    let mut overheads = Vec::new();
    let mut idle_rss = 0;
    let mut idle_cpu = 0;
    // Round 0 fills the cache and is not counted.
    for round in 0..=ROUNDS {
        let port = free_port()?;
        let mut doc = TaskDocument::new(Command::Exec {
            program: "svc/bin/serve.sh".into(),
            args: vec![port.to_string()],
        });
        doc.artifacts.push(Artifact {
            url: url.clone(),
            sha256: sha256(&tarball),
            extract: true,
            destination: ".".into(),
        });
        doc.readiness = Some(Readiness {
            check: Check::Tcp {
                host: "127.0.0.1".into(),
                port,
            },
            interval_ms: 50,
            timeout_ms: 1000,
            initial_delay_ms: 0,
        });
        let sandbox = dir.path().join(format!("run-{round}"));
        let mut executor = ExecutorProcess::start_binary(
            &binary,
            &agent,
            &sandbox,
            &dir.path().join("cache"),
            &[("EXECUTOR_LOG", log_level.as_str())],
        )?;
        let pid = executor.child.id().context("executor pid")?;
        agent.expect("SUBSCRIBE", |c| c.subscribe.is_some()).await?;
        let task = format!("bench-{round}");
        let launched = now_ns();
        agent.send(launch(&task, &doc)?)?;
        agent.expect_update(TaskState::TaskRunning).await?;
        let running = now_ns();
        let started = read_ns(&sandbox.join("started"))?;
        let listening = read_ns(&sandbox.join("listening"))?;
        let service_own = listening.saturating_sub(started);
        let overhead = (running - launched).saturating_sub(service_own);
        if round > 0 {
            overheads.push(Duration::from_nanos(u64::try_from(overhead)?));
        }
        println!(
            "round {round}: LAUNCH→RUNNING {:.1} ms, service's own start {:.1} ms, overhead {:.1} ms{}",
            (running - launched) as f64 / 1e6,
            service_own as f64 / 1e6,
            overhead as f64 / 1e6,
            if round == 0 {
                " (cache fill, not counted)"
            } else {
                ""
            }
        );

        if round == ROUNDS {
            // Idle: the service runs quietly; the executor should sleep.
            tokio::time::sleep(Duration::from_millis(500)).await;
            let before = cpu_ticks(pid).unwrap_or(0);
            tokio::time::sleep(IDLE).await;
            idle_cpu = cpu_ticks(pid).unwrap_or(0).saturating_sub(before);
            idle_rss = proc_field(pid, "VmRSS:").unwrap_or(0) * 1024;
            println!(
                "idle executor: RssAnon {} kB, RssFile {} kB, threads {}",
                proc_field(pid, "RssAnon:").unwrap_or(0),
                proc_field(pid, "RssFile:").unwrap_or(0),
                proc_field(pid, "Threads:").unwrap_or(0)
            );
        }
        agent.send(kill(&task, None))?;
        agent.expect_update(TaskState::TaskKilled).await?;
        executor.exited().await?;
    }

    if keep {
        println!("kept {}", dir.keep().display());
    }
    overheads.sort();
    let median = overheads[overheads.len() / 2];
    let max = overheads.last().copied().unwrap_or_default();
    println!();
    println!(
        "idle RSS      {:>6.2} MB   target ≤ {:.0} MB   {}",
        idle_rss as f64 / 1048576.0,
        RSS_TARGET as f64 / 1048576.0,
        if idle_rss <= RSS_TARGET { "OK" } else { "OVER" }
    );
    println!(
        "idle CPU      {:>6} ticks in {}s   target 0   {}",
        idle_cpu,
        IDLE.as_secs(),
        if idle_cpu == 0 { "OK" } else { "OVER" }
    );
    println!(
        "launch overhead median {:.1} ms, max {:.1} ms (cached artifact; includes up to one 50 ms readiness interval)   target ≤ {} ms   {}",
        median.as_secs_f64() * 1e3,
        max.as_secs_f64() * 1e3,
        OVERHEAD_TARGET.as_millis(),
        if median <= OVERHEAD_TARGET {
            "OK"
        } else {
            "OVER"
        }
    );
    Ok(())
}
