//! A subscribed client that only receives heartbeats is idle, also when
//! nothing can report a new leader any more (the sender of the leader watch
//! is gone, as with a fixed master address or the embedded local cluster).
//! Its own binary: the process's CPU time must not include other tests.

// Only the fake master's basics are used here.
#[allow(dead_code)]
mod fake_master;

use std::time::{Duration, Instant};

use anyhow::Context;
use fake_master::FakeMaster;
use mesos_client::{Config, SchedulerEvent};
use mesos_proto::{ContentType, v1::FrameworkInfo};
use tokio::sync::watch;

/// CPU time used by this process so far (user + system), from /proc.
fn cpu_time() -> anyhow::Result<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')').context("/proc/self/stat")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>()? + fields[12].parse::<u64>()?;
    let per_second = rustix::param::clock_ticks_per_second();
    Ok(Duration::from_millis(ticks * 1000 / per_second))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_subscription_costs_no_cpu() -> anyhow::Result<()> {
    let master = FakeMaster::start(Duration::from_millis(200)).await?;
    let config = Config {
        content_type: ContentType::Protobuf,
        ..Config::new(FrameworkInfo {
            user: "test".into(),
            name: "idle".into(),
            ..Default::default()
        })
    };
    let (leader, leader_rx) = watch::channel(Some(master.url()));
    let (_handle, mut events) = mesos_client::start(config, leader_rx)?;
    drop(leader);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let event = tokio::time::timeout_at(deadline.into(), events.recv())
            .await
            .context("timed out waiting for SUBSCRIBED")?
            .context("event channel closed")?;
        if matches!(event, SchedulerEvent::Subscribed { .. }) {
            break;
        }
    }

    // Two seconds of heartbeats every 200 ms; a client polling in a loop
    // would use most of a core meanwhile.
    let before = cpu_time()?;
    let watched = Instant::now() + Duration::from_secs(2);
    let mut heartbeats = 0;
    while let Ok(event) = tokio::time::timeout_at(watched.into(), events.recv()).await {
        match event.context("event channel closed")? {
            SchedulerEvent::Terminated { error } => anyhow::bail!("client ended: {error:?}"),
            SchedulerEvent::Disconnected { reason } => anyhow::bail!("disconnected: {reason}"),
            _ => heartbeats += 1,
        }
    }
    let used = cpu_time()? - before;
    assert!(
        heartbeats >= 5,
        "the subscription stayed live: {heartbeats} events"
    );
    assert!(
        used < Duration::from_millis(400),
        "{used:?} of CPU time in 2 s of an idle subscription"
    );
    Ok(())
}
