//! Unit tests of the pure core: no sockets, no processes, time passed in.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use mesos_proto::v1::{
    self, AgentId, ExecutorId, FrameworkInfo, TaskId, TaskState, TaskStatus, executor,
    framework_info::Capability,
    framework_info::capability::Type as Cap,
    scheduler::{Call, Event, call, event},
    task_status::{Reason, Source},
};

use crate::agent::AgentSetup;
use crate::core::{Core, Effect, Now, PersistedAgent, Settings};
use crate::master::{CallOk, MasterSettings};
use crate::resources;

struct World {
    core: Core,
    now: Now,
    effects: Vec<Effect>,
}

fn setup() -> AgentSetup {
    AgentSetup {
        name: "agent-1".into(),
        hostname: "127.0.0.2".into(),
        ip: "127.0.0.2".into(),
        port: 5051,
        resources: resources::parse("cpus:2;mem:1024;disk:100;ports:[31000-31009]")
            .unwrap_or_default(),
        attributes: vec![],
        work_dir: PathBuf::from("/state/agents/agent-1"),
        registration_timeout: Duration::from_secs(60),
        shutdown_grace_period: Duration::from_secs(5),
        reregistration_timeout: Duration::from_secs(2),
        recovery_timeout: Duration::from_secs(900),
        retry_min: Duration::from_secs(10),
        retry_max: Duration::from_secs(600),
        seed: 7,
    }
}

impl World {
    fn new() -> World {
        let now = Now {
            mono: Instant::now(),
            wall: 1_700_000_000.0,
        };
        let settings = Settings {
            master: MasterSettings {
                heartbeat_interval: Duration::from_secs(15),
                allocation_interval: Duration::from_secs(1),
                offer_timeout: None,
                agent_removal_timeout: Duration::from_secs(600),
                roles: None,
                ip: "127.0.0.1".into(),
                port: 5050,
                hostname: "127.0.0.1".into(),
            },
            agents: vec![setup()],
        };
        let (core, effects) = Core::new(settings, "m".into(), vec![PersistedAgent::default()], now);
        World { core, now, effects }
    }

    fn advance(&mut self, d: Duration) {
        self.now = self.now.plus(d);
        let effects = self.core.tick(self.now);
        self.effects.extend(effects);
    }

    fn scheduler_events(&mut self, stream: u64) -> Vec<Event> {
        let mut out = Vec::new();
        self.effects.retain(|e| match e {
            Effect::SchedulerEvent { stream: s, event } if *s == stream => {
                out.push((**event).clone());
                false
            }
            _ => true,
        });
        out
    }

    fn executor_events(&mut self, stream: u64) -> Vec<executor::Event> {
        let mut out = Vec::new();
        self.effects.retain(|e| match e {
            Effect::ExecutorEvent { stream: s, event } if *s == stream => {
                out.push((**event).clone());
                false
            }
            _ => true,
        });
        out
    }

    fn subscribe(&mut self, stream: u64, info: FrameworkInfo) -> String {
        let now = self.now;
        let effects = self.core.run(now, |core, out| {
            core.master.subscribe(
                call::Subscribe {
                    framework_info: info,
                    suppressed_roles: vec![],
                },
                stream,
                format!("uuid-{stream}"),
                now,
                out,
            );
        });
        self.effects.extend(effects);
        let events = self.scheduler_events(stream);
        events[0]
            .subscribed
            .as_ref()
            .map(|s| s.framework_id.value.clone())
            .unwrap_or_default()
    }

    fn call(
        &mut self,
        stream: u64,
        framework_id: &str,
        mut call: Call,
    ) -> Result<CallOk, crate::master::CallError> {
        call.framework_id = Some(v1::FrameworkId {
            value: framework_id.into(),
        });
        let now = self.now;
        let mut result = Ok(CallOk::Accepted);
        let uuid = format!("uuid-{stream}");
        let effects = self.core.run(now, |core, out| {
            result = core.master.call(call, Some(&uuid), now, out);
        });
        self.effects.extend(effects);
        result
    }

    fn offers(&mut self, stream: u64) -> Vec<v1::Offer> {
        self.advance(Duration::from_secs(1));
        self.scheduler_events(stream)
            .into_iter()
            .filter_map(|e| e.offers)
            .flat_map(|o| o.offers)
            .collect()
    }
}

fn info(partition_aware: bool) -> FrameworkInfo {
    let mut capabilities = vec![
        Capability {
            r#type: Some(Cap::MultiRole as i32),
        },
        Capability {
            r#type: Some(Cap::ReservationRefinement as i32),
        },
    ];
    if partition_aware {
        capabilities.push(Capability {
            r#type: Some(Cap::PartitionAware as i32),
        });
    }
    FrameworkInfo {
        user: "u".into(),
        name: "f".into(),
        principal: Some("p".into()),
        roles: vec!["r".into()],
        capabilities,
        checkpoint: Some(true),
        failover_timeout: Some(60.0),
        ..Default::default()
    }
}

/// DECLINE of one offer, filtered for `refuse_seconds`.
fn decline_call(offer_id: v1::OfferId, refuse_seconds: f64) -> Call {
    Call {
        decline: Some(call::Decline {
            offer_ids: vec![offer_id],
            filters: Some(v1::Filters {
                refuse_seconds: Some(refuse_seconds),
            }),
        }),
        ..kind(call::Type::Decline)
    }
}

fn kind(c: call::Type) -> Call {
    Call {
        r#type: Some(c as i32),
        ..Default::default()
    }
}

#[test]
fn subscribe_offers_and_decline_filters() {
    let mut w = World::new();
    let fid = w.subscribe(1, info(true));
    assert_eq!(fid, "m-0000");
    let offers = w.offers(1);
    assert_eq!(offers.len(), 1);
    assert_eq!(offers[0].agent_id.value, "m-S0");
    assert_eq!(offers[0].id.value, "m-O0");
    // Declined for 10 s: nothing for 9 s, then offered again.
    let decline = decline_call(offers[0].id.clone(), 10.0);
    assert_eq!(w.call(1, &fid, decline), Ok(CallOk::Accepted));
    for _ in 0..8 {
        assert!(w.offers(1).is_empty());
    }
    let mut again = Vec::new();
    for _ in 0..3 {
        again.extend(w.offers(1));
    }
    assert_eq!(again.len(), 1);
    // Suppressed: no offers even after the declined ones come back.
    let decline = decline_call(again[0].id.clone(), 0.0);
    w.call(1, &fid, kind(call::Type::Suppress)).ok();
    w.call(1, &fid, decline).ok();
    assert!(w.offers(1).is_empty());
    w.call(1, &fid, kind(call::Type::Revive)).ok();
    assert_eq!(w.offers(1).len(), 1);
}

#[test]
fn allocation_continues_after_a_master_failover() {
    let mut w = World::new();
    let fid = w.subscribe(1, info(true));
    assert_eq!(w.offers(1).len(), 1);
    let now = w.now;
    let effects = w.core.fail_over_master("m2".into(), now);
    w.effects.extend(effects);
    let mut again = info(true);
    again.id = Some(v1::FrameworkId { value: fid.clone() });
    assert_eq!(w.subscribe(2, again), fid);
    let offers = w.offers(2);
    assert_eq!(offers.len(), 1, "the agent re-registered and was offered");
    // Declined for 2 s: only the periodic allocation offers it again.
    let decline = decline_call(offers[0].id.clone(), 2.0);
    assert_eq!(w.call(2, &fid, decline), Ok(CallOk::Accepted));
    let mut later = Vec::new();
    for _ in 0..4 {
        later.extend(w.offers(2));
    }
    assert_eq!(
        later.len(),
        1,
        "offered again by the new master's batch allocation"
    );
}

#[test]
fn stream_checks_and_failover() {
    let mut w = World::new();
    let fid = w.subscribe(1, info(true));
    let mut bad = kind(call::Type::Revive);
    bad.framework_id = Some(v1::FrameworkId { value: fid.clone() });
    let now = w.now;
    let mut result = Ok(CallOk::Accepted);
    w.core.run(now, |core, out| {
        result = core.master.call(bad, Some("other"), now, out);
    });
    assert!(matches!(
        result,
        Err(crate::master::CallError::BadRequest(_))
    ));
    // Re-subscribing on a new stream fails the old one over.
    let mut again = info(true);
    again.id = Some(v1::FrameworkId { value: fid.clone() });
    assert_eq!(w.subscribe(2, again), fid);
    let old = w.scheduler_events(1);
    assert_eq!(
        old[0].error.as_ref().map(|e| e.message.as_str()),
        Some("Framework failed over")
    );
    assert!(w.effects.contains(&Effect::CloseScheduler { stream: 1 }));
    // A broken stream: 403 until re-subscribed; removed after the failover timeout.
    let now = w.now;
    w.core
        .run(now, |core, out| core.master.stream_closed(2, now, out));
    assert_eq!(
        w.call(2, &fid, kind(call::Type::Revive)),
        Err(crate::master::CallError::Forbidden(
            "Framework is not subscribed".into()
        ))
    );
    w.advance(Duration::from_secs(61));
    assert_eq!(w.core.master.completed_frameworks.len(), 1);
}

#[test]
fn launch_runs_through_the_agent_and_updates_wait_for_acks() {
    let mut w = World::new();
    let fid = w.subscribe(1, info(true));
    let offers = w.offers(1);
    let alloc = |r: v1::Resource| v1::Resource {
        allocation_info: Some(v1::resource::AllocationInfo {
            role: Some("r".into()),
        }),
        ..r
    };
    let executor = v1::ExecutorInfo {
        executor_id: ExecutorId { value: "e".into() },
        command: Some(v1::CommandInfo {
            value: Some("run".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let task = v1::TaskInfo {
        name: "t".into(),
        task_id: TaskId { value: "t".into() },
        agent_id: offers[0].agent_id.clone(),
        resources: vec![alloc(resources::scalar("cpus", 1.0))],
        executor: Some(executor),
        ..Default::default()
    };
    let accept = Call {
        accept: Some(call::Accept {
            offer_ids: vec![offers[0].id.clone()],
            operations: vec![v1::offer::Operation {
                r#type: Some(v1::offer::operation::Type::Launch as i32),
                launch: Some(v1::offer::operation::Launch {
                    task_infos: vec![task],
                }),
                ..Default::default()
            }],
            filters: None,
        }),
        ..kind(call::Type::Accept)
    };
    w.call(1, &fid, accept).ok();
    let launch = w.effects.iter().find_map(|e| match e {
        Effect::Launch(spec) => Some(spec.clone()),
        _ => None,
    });
    let spec = launch.expect("the agent launches the executor");
    let env: std::collections::BTreeMap<_, _> = spec.env.iter().cloned().collect();
    assert_eq!(
        env.get("MESOS_SLAVE_PID").map(String::as_str),
        Some("slave(1)@127.0.0.2:5051")
    );
    assert_eq!(env.get("MESOS_CHECKPOINT").map(String::as_str), Some("1"));
    assert!(spec.sandbox.ends_with(format!(
        "slaves/m-S0/frameworks/{fid}/executors/e/runs/{}",
        spec.container
    )));

    // The executor subscribes and gets the task.
    let now = w.now;
    let effects = w.core.run(now, |core, out| {
        core.agents[0]
            .executor_subscribe(
                &fid,
                "e",
                executor::call::Subscribe::default(),
                100,
                now,
                out,
            )
            .ok();
    });
    w.effects.extend(effects);
    let events = w.executor_events(100);
    let kinds: Vec<_> = events.iter().map(|e| e.r#type).collect();
    assert_eq!(
        kinds,
        vec![
            Some(executor::event::Type::Subscribed as i32),
            Some(executor::event::Type::Launch as i32)
        ]
    );
    // Two updates: the second waits until the first is acknowledged.
    let status = |state: TaskState| TaskStatus {
        task_id: TaskId { value: "t".into() },
        state: state as i32,
        source: Some(Source::Executor as i32),
        uuid: Some(uuid::Uuid::new_v4().as_bytes().to_vec()),
        ..Default::default()
    };
    let running = status(TaskState::TaskRunning);
    let finished = status(TaskState::TaskFinished);
    let now = w.now;
    let effects = w.core.run(now, |core, out| {
        core.agents[0]
            .executor_update(&fid, "e", running.clone(), now, out)
            .ok();
        core.agents[0]
            .executor_update(&fid, "e", finished.clone(), now, out)
            .ok();
    });
    w.effects.extend(effects);
    let acked = w.executor_events(100);
    assert_eq!(acked.len(), 2, "both updates acknowledged to the executor");
    let updates: Vec<TaskStatus> = w
        .scheduler_events(1)
        .into_iter()
        .filter_map(|e| e.update.map(|u| u.status))
        .collect();
    assert_eq!(updates.len(), 1);
    assert_eq!(updates[0].state(), TaskState::TaskRunning);
    assert_eq!(
        updates[0].agent_id.as_ref().map(|a| a.value.as_str()),
        Some("m-S0")
    );
    // Not acknowledged: retried after 10 s with the same uuid.
    w.advance(Duration::from_secs(10));
    let retried: Vec<TaskStatus> = w
        .scheduler_events(1)
        .into_iter()
        .filter_map(|e| e.update.map(|u| u.status))
        .collect();
    assert_eq!(
        retried.first().map(|s| s.uuid.clone()),
        Some(running.uuid.clone())
    );
    // The retry carries the agent's latest state, so the master knows the task finished.
    assert_eq!(
        w.core.master.frameworks[&fid].tasks["t"].state,
        TaskState::TaskFinished
    );
    // A framework that fails over is sent the pending update at once, not
    // at the next retry (20 s on), as Mesos' agent resumes its streams.
    w.advance(Duration::from_secs(2));
    let now = w.now;
    let again = FrameworkInfo {
        id: Some(v1::FrameworkId { value: fid.clone() }),
        ..info(true)
    };
    let effects = w.core.run(now, |core, out| {
        core.master.subscribe(
            call::Subscribe {
                framework_info: again,
                suppressed_roles: vec![],
            },
            2,
            "uuid-2".into(),
            now,
            out,
        );
    });
    w.effects.extend(effects);
    let resent: Vec<TaskStatus> = w
        .scheduler_events(2)
        .into_iter()
        .filter_map(|e| e.update.map(|u| u.status))
        .collect();
    assert_eq!(
        resent.iter().map(|s| s.uuid.clone()).collect::<Vec<_>>(),
        vec![running.uuid.clone()],
        "the unacknowledged update, once"
    );
    // The retry timer set before the failover does not send it twice.
    w.advance(Duration::from_secs(9));
    assert!(
        w.scheduler_events(2).iter().all(|e| e.update.is_none()),
        "no resend before the resumed stream's interval"
    );
    let ack = Call {
        acknowledge: Some(call::Acknowledge {
            agent_id: AgentId {
                value: "m-S0".into(),
            },
            task_id: TaskId { value: "t".into() },
            uuid: running.uuid.clone().unwrap_or_default(),
        }),
        ..kind(call::Type::Acknowledge)
    };
    w.call(2, &fid, ack).ok();
    let next: Vec<TaskStatus> = w
        .scheduler_events(2)
        .into_iter()
        .filter_map(|e| e.update.map(|u| u.status))
        .collect();
    assert_eq!(
        next.first().map(TaskStatus::state),
        Some(TaskState::TaskFinished)
    );
}

#[test]
fn agent_removal_marks_tasks_unreachable_or_lost() {
    let mut w = World::new();
    let aware = w.subscribe(1, info(true));
    let now = w.now;
    // A task the master knows on the agent.
    w.core.master.frameworks.get_mut(&aware).map(|f| {
        f.tasks.insert(
            "t".into(),
            crate::master::Task {
                info: v1::TaskInfo {
                    name: "t".into(),
                    task_id: TaskId { value: "t".into() },
                    agent_id: AgentId {
                        value: "m-S0".into(),
                    },
                    ..Default::default()
                },
                framework_id: aware.clone(),
                agent_id: "m-S0".into(),
                executor_id: None,
                role: "r".into(),
                state: TaskState::TaskRunning,
                status_update_state: None,
                status_update_uuid: None,
                statuses: vec![],
                unreachable_time: None,
            },
        )
    });
    let effects = w.core.stop_agent(0, now).unwrap_or_default();
    w.effects.extend(effects);
    w.advance(Duration::from_secs(601));
    let events = w.scheduler_events(1);
    let update = events
        .iter()
        .find_map(|e| e.update.as_ref())
        .map(|u| u.status.clone())
        .expect("an update");
    assert_eq!(update.state(), TaskState::TaskUnreachable);
    assert_eq!(update.reason(), Reason::AgentRemoved);
    assert!(
        events
            .iter()
            .any(|e| e.r#type == Some(event::Type::Failure as i32))
    );
    assert!(w.core.master.unreachable.contains_key("m-S0"));
}
