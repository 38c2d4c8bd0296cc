//! The differential tier: one scripted scheduler session, run against real
//! Apache Mesos 1.11 (the rig beside the clone) and against the local
//! cluster, must produce the same transcript — event types and order, task
//! states, reasons and sources, status codes, the shape of reserved
//! resources and volumes in offers. IDs, hostnames and ports are left out.
//!
//! Without the rig the real-Mesos half is skipped with a notice (a failure
//! under `CI=true`); the local half always runs.

mod common;

use std::time::Duration;

use anyhow::{Context, bail};
use common::*;
use mesos_local::{ClusterConfig, LocalCluster};
use mesos_proto::ContentType;
use mesos_proto::v1::{
    self, AgentId, ExecutorId, Offer, TaskId,
    scheduler::{Call, call},
};
use test_support::rig::{MesosRig, RigOptions};

const RESOURCES: &str = "cpus:4;mem:4096;disk:10000;ports:[31000-31099]";
const ROLE: &str = "test";
const NAME: &str = "diff";

/// Events other than HEARTBEAT and OFFERS within `window`; offers are declined.
async fn quiet(s: &mut Sched, window: Duration) -> anyhow::Result<Vec<String>> {
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + window;
    while let Some(e) = s
        .next_within(deadline.saturating_duration_since(tokio::time::Instant::now()))
        .await
    {
        if let Some(offers) = &e.offers {
            seen.push("OFFERS".to_owned());
            s.decline(&offers.offers, 0.0).await?;
        } else if kind(&e) != "HEARTBEAT" {
            seen.push(kind(&e));
        }
    }
    Ok(seen)
}

/// The next offer whose reserved part satisfies `want`, with others declined.
async fn offer_where(
    s: &mut Sched,
    what: &str,
    want: impl Fn(&[String]) -> bool,
) -> anyhow::Result<Offer> {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        if tokio::time::Instant::now() > deadline {
            bail!("no offer with {what}");
        }
        let offers = s.offers().await?;
        let mut rest = Vec::new();
        let mut found = None;
        for offer in offers {
            if found.is_none() && want(&reserved_shape(&offer)) {
                found = Some(offer);
            } else {
                rest.push(offer);
            }
        }
        if !rest.is_empty() {
            s.decline(&rest, 0.0).await?;
        }
        if let Some(offer) = found {
            return Ok(offer);
        }
    }
}

fn reserved_shape(offer: &Offer) -> Vec<String> {
    shape(std::slice::from_ref(offer))
        .into_iter()
        .filter(|l| !l.contains("res=[]"))
        .collect()
}

fn mine(offer: &Offer) -> Vec<v1::Resource> {
    offer
        .resources
        .iter()
        .filter(|r| !r.reservations.is_empty())
        .cloned()
        .collect()
}

async fn scenario(base: &str, content_type: ContentType) -> anyhow::Result<Vec<String>> {
    let mut t: Vec<String> = Vec::new();
    match steps(base, content_type, &mut t).await {
        Ok(()) => Ok(t),
        Err(e) => {
            print("transcript so far", &t);
            Err(e)
        }
    }
}

async fn steps(base: &str, content_type: ContentType, t: &mut Vec<String>) -> anyhow::Result<()> {
    let mut s = Sched::subscribe(base, framework(NAME, ROLE, true), content_type).await?;
    t.push("SUBSCRIBED".into());
    // Real Mesos sends the first HEARTBEAT and the first OFFERS from different
    // actors, so either may come first: the transcript records that both
    // come, not in which order.
    let mut heartbeat = false;
    let mut offers = Vec::new();
    while !heartbeat || offers.is_empty() {
        let event = s
            .next_within(DEADLINE)
            .await
            .context("a HEARTBEAT and OFFERS after SUBSCRIBED")?;
        match kind(&event).as_str() {
            "HEARTBEAT" => heartbeat = true,
            "OFFERS" if offers.is_empty() => {
                offers = event.offers.map(|o| o.offers).unwrap_or_default();
            }
            other => t.push(format!("unexpected {other} after SUBSCRIBED")),
        }
    }
    t.push("then a HEARTBEAT and OFFERS".into());
    t.push(format!("first offers: {}", offers.len()));
    t.extend(shape(&offers));
    let agent: AgentId = offers[0].agent_id.clone();
    let fid = s.fid();
    t.push(format!(
        "offer has url path {:?}",
        offers[0].url.as_ref().and_then(|u| u.path.clone())
    ));

    // ---- invalid calls and their status codes
    let decline = Call {
        framework_id: Some(fid.clone()),
        decline: Some(call::Decline {
            offer_ids: vec![],
            filters: None,
        }),
        ..call_of(call::Type::Decline)
    };
    let ct = content_type.as_str();
    let body = mesos_proto::encode(&decline, content_type);
    let (code, _) = s.raw(&[("Content-Type", ct)], body.clone()).await?;
    t.push(format!("no stream id: {code}"));
    let (code, _) = s
        .raw(
            &[("Content-Type", ct), ("Mesos-Stream-Id", "not-the-stream")],
            body.clone(),
        )
        .await?;
    t.push(format!("wrong stream id: {code}"));
    let (code, _) = s
        .raw(
            &[
                ("Content-Type", "text/plain"),
                ("Mesos-Stream-Id", &s.stream_id),
            ],
            body.clone(),
        )
        .await?;
    t.push(format!("text/plain: {code}"));
    let (code, _) = s
        .raw(&[("Mesos-Stream-Id", &s.stream_id)], body.clone())
        .await?;
    t.push(format!("no content type: {code}"));
    let (code, msg) = s
        .raw(
            &[
                ("Content-Type", "application/json"),
                ("Mesos-Stream-Id", &s.stream_id),
            ],
            b"{\"framework_id\":{\"value\":\"x\"}}".to_vec(),
        )
        .await?;
    t.push(format!("missing type: {code} {msg}"));
    let (code, msg) = s
        .raw(
            &[("Content-Type", "application/json")],
            b"not json".to_vec(),
        )
        .await?;
    t.push(format!(
        "bad json: {code} {}",
        msg.starts_with("Failed to parse body into JSON")
    ));
    let mut other = decline.clone();
    other.framework_id = Some(v1::FrameworkId {
        value: "no-such-framework".into(),
    });
    let (code, msg) = s.call(other).await?;
    t.push(format!("unknown framework: {code} {msg}"));
    let (code, _) = s
        .call(Call {
            acknowledge: Some(call::Acknowledge {
                agent_id: agent.clone(),
                task_id: TaskId { value: "t".into() },
                uuid: b"not a uuid".to_vec(),
            }),
            ..call_of(call::Type::Acknowledge)
        })
        .await?;
    t.push(format!("bad ack uuid: {code}"));
    // A call of type UNKNOWN is left out: it aborts a real Mesos 1.11 master
    // (a CHECK failure in its call metrics); the local master answers 501.
    let (code, _) = s.call(call_of(call::Type::Accept)).await?;
    t.push(format!("ACCEPT without payload: {code}"));
    let subscribe = Call {
        subscribe: Some(call::Subscribe {
            framework_info: framework("other", ROLE, true),
            suppressed_roles: vec![],
        }),
        ..call_of(call::Type::Subscribe)
    };
    let (code, _) = s
        .raw(
            &[("Content-Type", ct), ("Mesos-Stream-Id", &s.stream_id)],
            mesos_proto::encode(&subscribe, content_type),
        )
        .await?;
    t.push(format!("SUBSCRIBE with stream id: {code}"));

    // ---- DECLINE with a long filter, then REVIVE
    t.push(format!("decline 1h: {}", s.decline(&offers, 3600.0).await?));
    t.push(format!(
        "while filtered: {:?}",
        quiet(&mut s, Duration::from_millis(2500)).await?
    ));
    s.call_ok(Call {
        revive: Some(call::Revive { roles: vec![] }),
        ..call_of(call::Type::Revive)
    })
    .await?;
    let offers = s.offers().await?;
    t.push(format!("revived: {} offers", offers.len()));
    // ---- SUPPRESS, then REVIVE
    s.call_ok(Call {
        suppress: Some(call::Suppress {
            roles: vec![ROLE.into()],
        }),
        ..call_of(call::Type::Suppress)
    })
    .await?;
    s.decline(&offers, 0.0).await?;
    t.push(format!(
        "while suppressed: {:?}",
        quiet(&mut s, Duration::from_millis(2500)).await?
    ));
    s.call_ok(Call {
        revive: Some(call::Revive {
            roles: vec![ROLE.into()],
        }),
        ..call_of(call::Type::Revive)
    })
    .await?;
    let offers = s.offers().await?;
    t.push(format!("revived: {} offers", offers.len()));
    // A short filter expires by itself.
    s.decline(&offers, 1.0).await?;
    let again = s.offers().await?;
    t.push(format!("after a 1s filter: {} offers", again.len()));

    // ---- RESERVE + CREATE + LAUNCH in one ACCEPT
    let label = Some(("owner", NAME));
    let r = |res: v1::Resource| allocated(reserved(res, ROLE, NAME, label), ROLE);
    let reserve = vec![
        r(scalar("cpus", 1.0)),
        r(scalar("mem", 256.0)),
        r(scalar("disk", 128.0)),
    ];
    let vol = volume(r(scalar("disk", 64.0)), "vol-1", NAME, "data");
    let executor = test_executor(
        "exec-1",
        &fid,
        vec![
            allocated(scalar("cpus", 0.1), ROLE),
            allocated(scalar("mem", 32.0), ROLE),
        ],
    );
    let task1 = task(
        "task-1",
        &agent,
        vec![r(scalar("cpus", 0.5)), r(scalar("mem", 128.0)), vol.clone()],
        executor.clone(),
        "write:data/hello.txt:hi",
    );
    s.accept(
        &again,
        vec![
            op_reserve(reserve),
            op_create(vec![vol.clone()]),
            op_launch(vec![task1]),
        ],
    )
    .await?;
    let running = s.update("task-1").await?;
    t.push(format!("task-1: {}", status_line(&running)));
    t.push(format!(
        "task-1 executor_id set: {}",
        running.executor_id.is_some()
    ));
    s.ack(&running).await?;
    let offer = offer_where(&mut s, "the rest of the reservation", |l| {
        l.iter().any(|x| x.starts_with("cpus"))
    })
    .await?;
    t.push("offer while task-1 runs:".into());
    t.extend(reserved_shape(&offer));
    t.push(format!("executor_ids: {}", offer.executor_ids.len()));
    s.decline(&[offer], 0.0).await?;
    t.extend(state_summary(base, &s.framework_id).await?);

    // ---- framework messages both ways
    s.call_ok(Call {
        message: Some(call::Message {
            agent_id: agent.clone(),
            executor_id: ExecutorId {
                value: "exec-1".into(),
            },
            data: b"ping".to_vec(),
        }),
        ..call_of(call::Type::Message)
    })
    .await?;
    let e = s.expect("MESSAGE", |e| e.message.is_some()).await?;
    let m = e.message.context("message")?;
    t.push(format!(
        "message back: {} from exec-1: {}",
        String::from_utf8_lossy(&m.data),
        m.executor_id.value == "exec-1"
    ));

    // ---- reconciliation
    s.call_ok(Call {
        reconcile: Some(call::Reconcile { tasks: vec![] }),
        ..call_of(call::Type::Reconcile)
    })
    .await?;
    t.push(format!(
        "implicit: {}",
        status_line(&s.update("task-1").await?)
    ));
    let rec = |id: &str, agent: Option<AgentId>| call::reconcile::Task {
        task_id: TaskId { value: id.into() },
        agent_id: agent,
    };
    s.call_ok(Call {
        reconcile: Some(call::Reconcile {
            tasks: vec![
                rec("task-1", Some(agent.clone())),
                rec("ghost", Some(agent.clone())),
                rec(
                    "stray",
                    Some(AgentId {
                        value: "no-such-agent".into(),
                    }),
                ),
            ],
        }),
        ..call_of(call::Type::Reconcile)
    })
    .await?;
    for id in ["task-1", "ghost", "stray"] {
        t.push(format!(
            "explicit {id}: {}",
            status_line(&s.update(id).await?)
        ));
    }

    // ---- KILL
    s.call_ok(Call {
        kill: Some(call::Kill {
            task_id: TaskId {
                value: "task-1".into(),
            },
            agent_id: Some(agent.clone()),
            kill_policy: None,
        }),
        ..call_of(call::Type::Kill)
    })
    .await?;
    let killed = s.update("task-1").await?;
    t.push(format!("killed: {}", status_line(&killed)));
    s.ack(&killed).await?;
    // KILL of an unknown task reconciles it.
    s.call_ok(Call {
        kill: Some(call::Kill {
            task_id: TaskId {
                value: "nobody".into(),
            },
            agent_id: Some(agent.clone()),
            kill_policy: None,
        }),
        ..call_of(call::Type::Kill)
    })
    .await?;
    t.push(format!(
        "kill unknown: {}",
        status_line(&s.update("nobody").await?)
    ));

    let offer = offer_where(&mut s, "the volume back", |l| {
        l.iter().any(|x| x.contains("volume=vol-1"))
    })
    .await?;
    t.push("offer after the kill:".into());
    t.extend(reserved_shape(&offer));

    // ---- invalid operations
    let too_big = task(
        "task-big",
        &agent,
        vec![allocated(scalar("cpus", 100.0), ROLE)],
        executor.clone(),
        "",
    );
    let mut bad_reserve = r(scalar("cpus", 0.5));
    bad_reserve.reservations[0].principal = Some("someone-else".into());
    let mut read_only = volume(r(scalar("disk", 10.0)), "vol-ro", NAME, "ro");
    if let Some(v) = read_only.disk.as_mut().and_then(|d| d.volume.as_mut()) {
        v.mode = v1::volume::Mode::Ro as i32;
    }
    let no_resources = task("task-empty", &agent, vec![], executor.clone(), "");
    s.accept(
        std::slice::from_ref(&offer),
        vec![
            op_reserve(vec![bad_reserve]),
            op_unreserve(vec![vol.clone()]),
            op_create(vec![read_only]),
            op_launch(vec![too_big, no_resources]),
        ],
    )
    .await?;
    t.push(format!(
        "too big: {}",
        status_line(&s.update("task-big").await?)
    ));
    t.push(format!(
        "no resources: {}",
        status_line(&s.update("task-empty").await?)
    ));
    // The same offer again is stale now.
    let stale = task(
        "task-stale",
        &agent,
        vec![allocated(scalar("cpus", 0.1), ROLE)],
        executor.clone(),
        "",
    );
    s.accept(std::slice::from_ref(&offer), vec![op_launch(vec![stale])])
        .await?;
    t.push(format!(
        "stale offer: {}",
        status_line(&s.update("task-stale").await?)
    ));
    let offer = offer_where(&mut s, "the volume after invalid operations", |l| {
        l.iter().any(|x| x.contains("volume=vol-1"))
    })
    .await?;
    t.push("offer after invalid operations:".into());
    t.extend(reserved_shape(&offer));
    s.decline(&[offer], 0.0).await?;

    // ---- SHUTDOWN the idle executor: FAILURE
    s.call_ok(Call {
        shutdown: Some(call::Shutdown {
            executor_id: ExecutorId {
                value: "exec-1".into(),
            },
            agent_id: agent.clone(),
        }),
        ..call_of(call::Type::Shutdown)
    })
    .await?;
    let failure = s
        .expect("FAILURE", |e| e.failure.is_some())
        .await?
        .failure
        .context("failure")?;
    t.push(format!(
        "FAILURE executor={} agent={} status={:?}",
        failure.executor_id.map(|e| e.value).unwrap_or_default(),
        failure.agent_id.is_some(),
        failure.status
    ));

    // ---- DESTROY + UNRESERVE
    let offer = offer_where(&mut s, "the volume before destroy", |l| {
        l.iter().any(|x| x.contains("volume=vol-1"))
    })
    .await?;
    let mut reserved_now = mine(&offer);
    let volumes: Vec<v1::Resource> = reserved_now
        .iter()
        .filter(|r| r.disk.is_some())
        .cloned()
        .collect();
    reserved_now.retain(|r| r.disk.is_none());
    let mut plain = volumes
        .iter()
        .map(|v| {
            let mut d = v.clone();
            d.disk = None;
            d
        })
        .collect::<Vec<_>>();
    plain.extend(reserved_now);
    s.accept(
        std::slice::from_ref(&offer),
        vec![op_destroy(volumes), op_unreserve(plain)],
    )
    .await?;
    let offers = s.offers().await?;
    t.push(format!(
        "after destroy+unreserve, reserved left: {:?}",
        offers.iter().flat_map(reserved_shape).collect::<Vec<_>>()
    ));
    s.decline(&offers, 0.0).await?;

    // ---- TEARDOWN
    let (code, _) = s.call(call_of(call::Type::Teardown)).await?;
    t.push(format!("teardown: {code}"));
    let (code, msg) = s.call(decline).await?;
    t.push(format!("after teardown: {code} {msg}"));
    Ok(())
}

/// The parts of `/master/state` our tools read, normalised.
async fn state_summary(base: &str, framework_id: &str) -> anyhow::Result<Vec<String>> {
    let state = master_state(base).await?;
    let mut t = Vec::new();
    let slave = &state["slaves"][0];
    for key in [
        "id",
        "pid",
        "hostname",
        "port",
        "resources",
        "used_resources",
        "offered_resources",
        "reserved_resources",
        "unreserved_resources",
        "reserved_resources_full",
        "attributes",
        "active",
    ] {
        t.push(format!("state slave {key}: {}", !slave[key].is_null()));
    }
    let slaves: serde_json::Value =
        reqwest::get(format!("{}/master/slaves", base.trim_end_matches('/')))
            .await?
            .json()
            .await?;
    let full_slave = &slaves["slaves"][0];
    for key in [
        "reserved_resources_full",
        "unreserved_resources_full",
        "used_resources_full",
        "offered_resources_full",
    ] {
        t.push(format!("slaves {key}: {}", !full_slave[key].is_null()));
    }
    let full: Vec<v1::Resource> = full_slave["reserved_resources_full"][ROLE]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| mesos_proto::codec::from_json_value(r.clone()).ok())
        .collect();
    let fake = Offer {
        resources: full,
        ..Default::default()
    };
    t.extend(
        shape(std::slice::from_ref(&fake))
            .into_iter()
            .map(|l| format!("state reserved: {l}")),
    );
    t.push(format!(
        "state reserved summary: {}",
        slave["reserved_resources"][ROLE]
    ));
    let framework = state["frameworks"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|f| f["id"] == framework_id)
        .context("framework in state")?;
    t.push(format!("state framework role: {}", framework["role"]));
    for key in [
        "id",
        "name",
        "active",
        "roles",
        "principal",
        "checkpoint",
        "failover_timeout",
        "tasks",
        "executors",
        "offers",
        "used_resources",
    ] {
        t.push(format!(
            "state framework {key}: {}",
            !framework[key].is_null()
        ));
    }
    let task = &framework["tasks"][0];
    for key in [
        "id",
        "name",
        "framework_id",
        "executor_id",
        "slave_id",
        "state",
        "resources",
        "role",
        "statuses",
    ] {
        t.push(format!("state task {key}: {}", !task[key].is_null()));
    }
    t.push(format!(
        "state task: {} {} {}",
        task["state"], task["role"], task["resources"]
    ));
    let statuses: Vec<String> = task["statuses"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| s["state"].to_string())
        .collect();
    t.push(format!("state task statuses: {statuses:?}"));
    Ok(t)
}

/// A framework without MULTI_ROLE, RESERVATION_REFINEMENT or PARTITION_AWARE:
/// the pre-refinement resource format and TASK_LOST in place of the
/// partition-aware states.
async fn legacy_steps(base: &str, t: &mut Vec<String>) -> anyhow::Result<()> {
    // An invalid FrameworkInfo is refused with an ERROR event, not a 4xx.
    let mut bad = framework("bad", ROLE, false);
    bad.capabilities.clear();
    let refused = Sched::subscribe(base, bad, ContentType::Json).await;
    t.push(format!(
        "invalid subscribe: {:?}",
        refused.err().map(|e| e.to_string())
    ));

    let mut info = framework("legacy", ROLE, false);
    info.capabilities.clear();
    info.roles.clear();
    #[allow(deprecated)]
    {
        info.role = Some(ROLE.into());
    }
    let mut s = Sched::subscribe(base, info, ContentType::Json).await?;
    let offers = s.offers().await?;
    t.push("legacy offers:".into());
    t.extend(shape(&offers));
    let agent = offers[0].agent_id.clone();
    #[allow(deprecated)]
    let pre = |mut r: v1::Resource| {
        r.role = Some(ROLE.into());
        r.reservation = Some(v1::resource::ReservationInfo {
            principal: Some("legacy".into()),
            ..Default::default()
        });
        r
    };
    s.accept(
        &offers,
        vec![op_reserve(vec![
            pre(scalar("cpus", 1.0)),
            pre(scalar("mem", 64.0)),
        ])],
    )
    .await?;
    let offer = offer_where(&mut s, "legacy reservation", |_| true).await?;
    t.push("legacy reserved offer:".into());
    t.extend(
        shape(std::slice::from_ref(&offer))
            .into_iter()
            .filter(|l| l.contains("reservation=")),
    );
    let rec = |id: &str, agent: AgentId| call::reconcile::Task {
        task_id: TaskId { value: id.into() },
        agent_id: Some(agent),
    };
    s.call_ok(Call {
        reconcile: Some(call::Reconcile {
            tasks: vec![
                rec("ghost", agent.clone()),
                rec(
                    "stray",
                    AgentId {
                        value: "no-such-agent".into(),
                    },
                ),
            ],
        }),
        ..call_of(call::Type::Reconcile)
    })
    .await?;
    for id in ["ghost", "stray"] {
        t.push(format!(
            "legacy explicit {id}: {}",
            status_line(&s.update(id).await?)
        ));
    }
    s.accept(
        std::slice::from_ref(&offer),
        vec![op_unreserve(vec![
            pre(scalar("cpus", 1.0)),
            pre(scalar("mem", 64.0)),
        ])],
    )
    .await?;
    let executor = test_executor("exec-legacy", &s.fid(), vec![]);
    let stale = task(
        "legacy-stale",
        &agent,
        vec![scalar("cpus", 0.1)],
        executor,
        "",
    );
    s.accept(std::slice::from_ref(&offer), vec![op_launch(vec![stale])])
        .await?;
    t.push(format!(
        "legacy stale offer: {}",
        status_line(&s.update("legacy-stale").await?)
    ));
    let offers = s.offers().await?;
    t.push(format!(
        "legacy unreserved again: {:?}",
        offers
            .iter()
            .flat_map(|o| shape(std::slice::from_ref(o)))
            .filter(|l| l.contains("reservation="))
            .collect::<Vec<_>>()
    ));
    s.call_ok(call_of(call::Type::Teardown)).await?;
    Ok(())
}

async fn legacy(base: &str) -> anyhow::Result<Vec<String>> {
    let mut t = Vec::new();
    match legacy_steps(base, &mut t).await {
        Ok(()) => Ok(t),
        Err(e) => {
            print("legacy transcript so far", &t);
            Err(e)
        }
    }
}

fn compare(local: &[String], real: &[String]) {
    let diff: Vec<String> = local
        .iter()
        .zip(real.iter())
        .filter(|(a, b)| a != b)
        .map(|(a, b)| format!("local: {a}\n real: {b}"))
        .collect();
    assert!(
        diff.is_empty() && local.len() == real.len(),
        "transcripts differ:\n{}",
        diff.join("\n")
    );
}

fn local_config() -> ClusterConfig {
    let mut config = ClusterConfig::with_agents(1);
    config.first_agent_ip = test_support::ports::agent_block();
    config.agents[0].resources = RESOURCES.into();
    config.executor_shutdown_grace_period = Duration::from_secs(2);
    config
}

fn print(label: &str, t: &[String]) {
    eprintln!("---- {label}");
    for line in t {
        eprintln!("{line}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripted_session_matches_real_mesos() -> anyhow::Result<()> {
    logs();
    let cluster = LocalCluster::start(local_config()).await?;
    let local_json = scenario(&cluster.master_url(), ContentType::Json).await?;
    print("local (json)", &local_json);
    let local_legacy = legacy(&cluster.master_url()).await?;
    print("local (legacy)", &local_legacy);
    cluster.shutdown().await;

    test_support::require_rig!(Ok(()));
    let rig = tokio::task::spawn_blocking(|| {
        MesosRig::start(RigOptions::default().agents(1).resources(RESOURCES))
    })
    .await??;
    let real = scenario(rig.endpoint(), ContentType::Json)
        .await
        .with_context(|| format!("rig log tail:\n{}", rig.log_tail(40)))?;
    print("real Mesos (json)", &real);
    let real_legacy = legacy(rig.endpoint())
        .await
        .with_context(|| format!("rig log tail:\n{}", rig.log_tail(40)))?;
    print("real Mesos (legacy)", &real_legacy);
    compare(&local_json, &real);
    compare(&local_legacy, &real_legacy);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protobuf_session_matches_json_session() -> anyhow::Result<()> {
    logs();
    let cluster = LocalCluster::start(local_config()).await?;
    let proto = scenario(&cluster.master_url(), ContentType::Protobuf).await?;
    cluster.shutdown().await;
    let cluster = LocalCluster::start(local_config()).await?;
    let json = scenario(&cluster.master_url(), ContentType::Json).await?;
    cluster.shutdown().await;
    // Only the content-type-specific parse errors may differ.
    let strip = |t: &[String]| {
        t.iter()
            .filter(|l| !l.starts_with("missing type") && !l.starts_with("bad json"))
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(strip(&proto), strip(&json));
    Ok(())
}
