//! Offer evaluation: whether an offer can take a node, and the operations that
//! do it, in the order Mesos needs them (RESERVE → CREATE → LAUNCH to build
//! up, DESTROY → UNRESERVE to tear down). A refusal is a value with reasons,
//! not an error: it ends up on the node's status and in `explain`.

use mesos_proto::v1::{
    self, CommandInfo, ExecutorId, ExecutorInfo, Label, Labels, Resource, TaskId, TaskInfo,
    offer::{Operation, operation},
    resource::{self, ReservationInfo, disk_info},
};

use crate::{
    constraints::{Host, Peers, check_all},
    node::{NodeSpec, Placement},
    resources::{Milli, OfferView, Ranges, Reserver, Scalars, ports_resource, scalar_resource},
};

/// Framework-wide facts offer evaluation needs.
#[derive(Clone, Debug)]
pub struct Context {
    /// Role, principal and instance label of our reservations.
    pub reserver: Reserver,
    /// What each node's executor takes on top of the node's own resources.
    pub executor_overhead: Scalars,
    /// Where the persistent volume appears in the sandbox.
    pub volume_path: String,
}

/// The resources a launch uses, split between executor and task.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LaunchResources {
    /// The executor's cpus and mem.
    pub executor: Vec<Resource>,
    /// The task's cpus, mem, ports and volume.
    pub task: Vec<Resource>,
}

/// A node that fits an offer: the operations to send before the LAUNCH.
#[derive(Clone, Debug, PartialEq)]
pub struct Fit {
    /// Where the node will live (for a new node, to be stored before the ACCEPT).
    pub placement: Placement,
    /// RESERVE and CREATE operations still needed, in order.
    pub prepare: Vec<Operation>,
    /// What the LAUNCH uses once `prepare` is applied.
    pub launch: LaunchResources,
}

fn operation(kind: operation::Type) -> Operation {
    Operation {
        r#type: Some(kind as i32),
        ..Default::default()
    }
}

/// RESERVE `resources`.
pub fn reserve(resources: Vec<Resource>) -> Operation {
    Operation {
        reserve: Some(operation::Reserve {
            resources,
            source: vec![],
        }),
        ..operation(operation::Type::Reserve)
    }
}

/// UNRESERVE `resources`.
pub fn unreserve(resources: Vec<Resource>) -> Operation {
    Operation {
        unreserve: Some(operation::Unreserve { resources }),
        ..operation(operation::Type::Unreserve)
    }
}

/// CREATE persistent `volumes`.
pub fn create(volumes: Vec<Resource>) -> Operation {
    Operation {
        create: Some(operation::Create { volumes }),
        ..operation(operation::Type::Create)
    }
}

/// DESTROY persistent `volumes`.
pub fn destroy(volumes: Vec<Resource>) -> Operation {
    Operation {
        destroy: Some(operation::Destroy { volumes }),
        ..operation(operation::Type::Destroy)
    }
}

/// LAUNCH `tasks`.
pub fn launch(tasks: Vec<TaskInfo>) -> Operation {
    Operation {
        launch: Some(operation::Launch { task_infos: tasks }),
        ..operation(operation::Type::Launch)
    }
}

fn volume(
    ctx: &Context,
    size: Milli,
    reservation: &ReservationInfo,
    role: Option<&str>,
    id: &str,
) -> Resource {
    let mut disk = scalar_resource("disk", size, Some(reservation), role);
    disk.disk = Some(resource::DiskInfo {
        persistence: Some(disk_info::Persistence {
            id: id.into(),
            principal: Some(ctx.reserver.principal.clone()),
        }),
        volume: Some(v1::Volume {
            container_path: ctx.volume_path.clone(),
            host_path: None,
            mode: v1::volume::Mode::Rw as i32,
        }),
        source: None,
    });
    disk
}

fn launch_resources(
    ctx: &Context,
    spec: &NodeSpec,
    reservation: &ReservationInfo,
    role: Option<&str>,
    ports: &Ranges,
    volume: Resource,
) -> LaunchResources {
    let overhead = ctx.executor_overhead;
    let mut task = vec![
        scalar_resource("cpus", spec.resources.cpus, Some(reservation), role),
        scalar_resource("mem", spec.resources.mem, Some(reservation), role),
    ];
    if !ports.is_empty() {
        task.push(ports_resource(ports, Some(reservation), role));
    }
    task.push(volume);
    let executor = [("cpus", overhead.cpus), ("mem", overhead.mem)]
        .into_iter()
        .filter(|(_, amount)| amount.is_positive())
        .map(|(name, amount)| scalar_resource(name, amount, Some(reservation), role))
        .collect();
    LaunchResources { executor, task }
}

fn describe_shortfall(lack: &Scalars, what: &str) -> Vec<String> {
    [("cpus", lack.cpus), ("mem", lack.mem), ("disk", lack.disk)]
        .into_iter()
        .filter(|(_, amount)| amount.is_positive())
        .map(|(name, amount)| format!("{amount} more {name} than {what}"))
        .collect()
}

/// Chooses ports: fixed ones must be free, the others are the lowest free ones.
fn choose_ports(
    spec: &NodeSpec,
    free: &Ranges,
) -> Result<std::collections::BTreeMap<String, u64>, String> {
    let mut chosen = std::collections::BTreeMap::new();
    for port in &spec.ports {
        if let Some(fixed) = port.fixed {
            if !free.contains(fixed) {
                return Err(format!("port {fixed} ({}) is not offered", port.name));
            }
            chosen.insert(port.name.clone(), fixed);
        }
    }
    let taken = Ranges::of_ports(chosen.values().copied());
    let dynamic: Vec<_> = spec.ports.iter().filter(|p| p.fixed.is_none()).collect();
    let available = free.difference(&taken);
    let picked = available.lowest(dynamic.len()).ok_or_else(|| {
        format!(
            "needs {} ports, offer has {} free",
            dynamic.len(),
            available.len()
        )
    })?;
    for (port, number) in dynamic.into_iter().zip(picked) {
        chosen.insert(port.name.clone(), number);
    }
    Ok(chosen)
}

/// An offer as evaluation sees it, with the facts worked out once per offer.
#[derive(Clone, Copy, Debug)]
pub struct Candidate<'a> {
    /// The offer itself.
    pub offer: &'a v1::Offer,
    /// What is free and reserved in it (less what earlier nodes took).
    pub view: &'a OfferView,
    /// The agent's hostname and attributes.
    pub host: &'a Host,
    /// Where the other nodes are.
    pub peers: &'a Peers,
}

/// Evaluates an offer for a node that has no placement yet.
///
/// `host` is the offer's hostname and attributes, `peers` where the other
/// nodes are (for constraints);
/// `persistence_id` is the volume ID to create, chosen by the caller so that
/// evaluation stays deterministic.
pub fn fit_new(
    ctx: &Context,
    node: &str,
    spec: &NodeSpec,
    candidate: &Candidate<'_>,
    persistence_id: &str,
) -> Result<Fit, Vec<String>> {
    let Candidate {
        offer,
        view,
        host,
        peers,
    } = *candidate;
    let mut reasons = Vec::new();
    if view.role.as_deref().is_some_and(|r| r != ctx.reserver.role) {
        reasons.push(format!(
            "offered to role {}, not {}",
            view.role.as_deref().unwrap_or("*"),
            ctx.reserver.role
        ));
    }
    if let Err(failed) = check_all(&spec.constraints, host, peers) {
        reasons.extend(failed);
    }
    let needed = spec.resources + ctx.executor_overhead;
    reasons.extend(describe_shortfall(
        &view.free.shortfall(&needed),
        "the offer has unreserved",
    ));
    let ports = match choose_ports(spec, &view.free_ports) {
        Ok(ports) => Some(ports),
        Err(reason) => {
            reasons.push(reason);
            None
        }
    };
    let Some(ports) = ports.filter(|_| reasons.is_empty()) else {
        return Err(reasons);
    };

    let role = view.role.as_deref();
    let reservation = ctx.reserver.reservation(node);
    let port_set = Ranges::of_ports(ports.values().copied());
    let mut reserved = vec![
        scalar_resource("cpus", needed.cpus, Some(&reservation), role),
        scalar_resource("mem", needed.mem, Some(&reservation), role),
        scalar_resource("disk", spec.resources.disk, Some(&reservation), role),
    ];
    if !port_set.is_empty() {
        reserved.push(ports_resource(&port_set, Some(&reservation), role));
    }
    let vol = volume(ctx, spec.resources.disk, &reservation, role, persistence_id);
    Ok(Fit {
        placement: Placement {
            agent_id: offer.agent_id.value.clone(),
            host: host.clone(),
            persistence_id: persistence_id.into(),
            ports,
        },
        prepare: vec![reserve(reserved), create(vec![vol.clone()])],
        launch: launch_resources(ctx, spec, &reservation, role, &port_set, vol),
    })
}

/// A cheap yes/no version of [`fit_new`] (no reasons, no operations), used to
/// skip hopeless offers quickly when placing many nodes.
pub fn could_fit_new(
    ctx: &Context,
    spec: &NodeSpec,
    view: &OfferView,
    host: &Host,
    peers: &Peers,
) -> bool {
    let needed = spec.resources + ctx.executor_overhead;
    view.role.as_deref().is_none_or(|r| r == ctx.reserver.role)
        && view.free.shortfall(&needed).is_zero()
        && view.free_ports.len() >= spec.ports.len() as u64
        && spec.constraints.iter().all(|c| c.passes(host, peers))
}

/// Evaluates an offer for a node already placed: it must come from the node's
/// agent and hold its reservation; whatever is missing (after a crash between
/// RESERVE and CREATE, or a grown spec) is reserved or created again.
pub fn fit_existing(
    ctx: &Context,
    node: &str,
    spec: &NodeSpec,
    placement: &Placement,
    offer: &v1::Offer,
    view: &OfferView,
) -> Result<Fit, Vec<String>> {
    if offer.agent_id.value != placement.agent_id {
        return Err(vec![format!(
            "node lives on agent {}, offer is from {}",
            placement.agent_id, offer.agent_id.value
        )]);
    }
    let role = view.role.as_deref();
    let reservation = ctx.reserver.reservation(node);
    let empty = Default::default();
    let held = view.reserved.get(node).unwrap_or(&empty);
    let volume_size = spec.resources.disk;
    let existing_volume = held.volumes.iter().find(|v| {
        v.disk
            .as_ref()
            .and_then(|d| d.persistence.as_ref())
            .is_some_and(|p| p.id == placement.persistence_id)
    });

    // What must be reserved on top of what is held.
    let mut wanted = spec.resources + ctx.executor_overhead;
    wanted.disk = if existing_volume.is_some() {
        Milli::ZERO
    } else {
        volume_size
    };
    let lack = held.scalars.shortfall(&wanted);
    let placed_ports = Ranges::of_ports(placement.ports.values().copied());
    let missing_ports = placed_ports.difference(&held.ports);

    let mut reasons = describe_shortfall(
        &view.free.shortfall(&lack),
        "reserved or unreserved in the offer",
    );
    if !view.free_ports.contains_all(&missing_ports) {
        reasons.push(format!(
            "ports {:?} are neither reserved nor offered",
            missing_ports.ports().collect::<Vec<_>>()
        ));
    }
    if !reasons.is_empty() {
        return Err(reasons);
    }

    let mut prepare = Vec::new();
    let mut top_up: Vec<Resource> = [("cpus", lack.cpus), ("mem", lack.mem), ("disk", lack.disk)]
        .into_iter()
        .filter(|(_, amount)| amount.is_positive())
        .map(|(name, amount)| scalar_resource(name, amount, Some(&reservation), role))
        .collect();
    if !missing_ports.is_empty() {
        top_up.push(ports_resource(&missing_ports, Some(&reservation), role));
    }
    if !top_up.is_empty() {
        prepare.push(reserve(top_up));
    }
    let vol = match existing_volume {
        Some(offered) => offered.clone(),
        None => {
            let vol = volume(
                ctx,
                volume_size,
                &reservation,
                role,
                &placement.persistence_id,
            );
            prepare.push(create(vec![vol.clone()]));
            vol
        }
    };
    Ok(Fit {
        placement: placement.clone(),
        prepare,
        launch: launch_resources(ctx, spec, &reservation, role, &placed_ports, vol),
    })
}

/// The operations that give back everything `node` holds in this offer:
/// DESTROY its volumes, then UNRESERVE all of it. Empty when it holds nothing.
pub fn release(view: &OfferView, node: &str) -> Vec<Operation> {
    let Some(held) = view.reserved.get(node) else {
        return vec![];
    };
    let mut ops = Vec::new();
    if !held.volumes.is_empty() {
        ops.push(destroy(held.volumes.clone()));
    }
    // After DESTROY a volume is plain reserved disk again.
    let plain: Vec<Resource> = held
        .resources
        .iter()
        .map(|r| {
            let mut r = r.clone();
            r.disk = None;
            r
        })
        .collect();
    if !plain.is_empty() {
        ops.push(unreserve(plain));
    }
    ops
}

/// What a LAUNCH needs beyond the resources.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskTemplate {
    /// Task ID, also used as the executor ID (one executor per task).
    pub task_id: String,
    /// Human-readable task name.
    pub name: String,
    /// The executor's command (its URIs are fetched by the agent).
    pub executor_command: CommandInfo,
    /// Payload for the executor (the task document).
    pub data: Vec<u8>,
    /// Labels on the task, e.g. the node ID.
    pub labels: Vec<(String, String)>,
    /// How long the executor gets between the stop signal and SIGKILL.
    pub kill_grace_ns: Option<i64>,
}

/// The TaskInfo for a launch on `agent_id`.
pub fn task_info(template: &TaskTemplate, agent_id: &str, resources: LaunchResources) -> TaskInfo {
    let grace = template
        .kill_grace_ns
        .map(|ns| v1::DurationInfo { nanoseconds: ns });
    TaskInfo {
        name: template.name.clone(),
        task_id: TaskId {
            value: template.task_id.clone(),
        },
        agent_id: v1::AgentId {
            value: agent_id.into(),
        },
        resources: resources.task,
        executor: Some(ExecutorInfo {
            r#type: Some(v1::executor_info::Type::Custom as i32),
            executor_id: ExecutorId {
                value: template.task_id.clone(),
            },
            resources: resources.executor,
            command: Some(template.executor_command.clone()),
            name: Some(format!("{} executor", template.name)),
            shutdown_grace_period: grace,
            ..Default::default()
        }),
        data: Some(template.data.clone()),
        labels: Some(Labels {
            labels: template
                .labels
                .iter()
                .map(|(k, v)| Label {
                    key: k.clone(),
                    value: Some(v.clone()),
                })
                .collect(),
        }),
        kill_policy: grace.map(|g| v1::KillPolicy {
            grace_period: Some(g),
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        constraints::parse_list,
        node::PortSpec,
        resources::{LABEL_NODE, OfferView},
    };

    fn ctx() -> Context {
        Context {
            reserver: Reserver {
                role: "kafka".into(),
                principal: "kafka-principal".into(),
                instance: "inst-1".into(),
            },
            executor_overhead: Scalars {
                cpus: Milli(100),
                mem: Milli(32_000),
                disk: Milli::ZERO,
            },
            volume_path: "data".into(),
        }
    }

    fn spec(constraints: &str, ports: Vec<PortSpec>) -> NodeSpec {
        NodeSpec {
            resources: Scalars {
                cpus: Milli(1000),
                mem: Milli(2_048_000),
                disk: Milli(10_240_000),
            },
            ports,
            constraints: parse_list(constraints).expect("valid"),
        }
    }

    fn offer(agent: &str, host: &str, cpus: f64, resources: Vec<Resource>) -> v1::Offer {
        let role = Some("kafka");
        let mut all = vec![
            scalar_resource("cpus", Milli::from_f64(cpus), None, role),
            scalar_resource("mem", Milli(16_384_000), None, role),
            scalar_resource("disk", Milli(100_000_000), None, role),
            ports_resource(&Ranges::new([(31000, 31099)]), None, role),
        ];
        all.extend(resources);
        v1::Offer {
            id: v1::OfferId {
                value: format!("offer-{agent}"),
            },
            framework_id: v1::FrameworkId { value: "fw".into() },
            agent_id: v1::AgentId {
                value: agent.into(),
            },
            hostname: host.into(),
            resources: all,
            allocation_info: Some(resource::AllocationInfo {
                role: Some("kafka".into()),
            }),
            ..Default::default()
        }
    }

    fn kinds(ops: &[Operation]) -> Vec<operation::Type> {
        ops.iter()
            .map(|o| {
                o.r#type
                    .and_then(|t| operation::Type::try_from(t).ok())
                    .unwrap_or_default()
            })
            .collect()
    }

    fn named(port: &str, fixed: Option<u64>) -> PortSpec {
        PortSpec {
            name: port.into(),
            fixed,
        }
    }

    #[test]
    fn a_new_node_reserves_creates_and_launches_in_one_go() {
        let ctx = ctx();
        let spec = spec(
            "hostname=unique",
            vec![named("client", None), named("jmx", Some(9999))],
        );
        let offer = offer("a1", "host-1", 8.0, vec![]);
        let mut offer = offer;
        offer.resources.push(ports_resource(
            &Ranges::of_ports([9999]),
            None,
            Some("kafka"),
        ));
        let view = OfferView::read(&offer, &ctx.reserver);
        let fit = fit_new(
            &ctx,
            "0",
            &spec,
            &Candidate {
                offer: &offer,
                view: &view,
                host: &Host::of_offer(&offer),
                peers: &Peers::default(),
            },
            "vol-0",
        )
        .expect("fits");

        assert_eq!(
            kinds(&fit.prepare),
            vec![operation::Type::Reserve, operation::Type::Create]
        );
        assert_eq!(fit.placement.agent_id, "a1");
        assert_eq!(fit.placement.ports["client"], 31000);
        assert_eq!(fit.placement.ports["jmx"], 9999);
        let reserved = &fit.prepare[0].reserve.as_ref().expect("reserve").resources;
        let cpus = reserved.iter().find(|r| r.name == "cpus").expect("cpus");
        assert_eq!(
            cpus.scalar.as_ref().map(|s| s.value),
            Some(1.1),
            "task plus executor"
        );
        // Every reserved resource carries our labels, so a restarted scheduler
        // (and nobody else) recognises it.
        for r in reserved {
            assert_eq!(ctx.reserver.owner_of(r).as_deref(), Some("0"), "{}", r.name);
        }
        let vol = &fit.launch.task.last().expect("volume");
        let persistence = vol.disk.as_ref().and_then(|d| d.persistence.as_ref());
        assert_eq!(persistence.map(|p| p.id.as_str()), Some("vol-0"));
        assert_eq!(
            persistence.and_then(|p| p.principal.as_deref()),
            Some("kafka-principal")
        );
        let exec_mem = fit.launch.executor.iter().find(|r| r.name == "mem");
        assert_eq!(
            exec_mem.and_then(|r| r.scalar.as_ref()).map(|s| s.value),
            Some(32.0)
        );
    }

    #[test]
    fn a_refusal_lists_every_reason() {
        let ctx = ctx();
        let spec = spec(
            "hostname=unique,rack=like:r1",
            vec![named("client", Some(9092))],
        );
        let offer = offer("a1", "host-1", 0.5, vec![]);
        let view = OfferView::read(&offer, &ctx.reserver);
        let peer = Host {
            hostname: "host-1".into(),
            ..Default::default()
        };
        let reasons = fit_new(
            &ctx,
            "1",
            &spec,
            &Candidate {
                offer: &offer,
                view: &view,
                host: &Host::of_offer(&offer),
                peers: &Peers::of(&spec.constraints, &[("0", &peer)]),
            },
            "v",
        )
        .expect_err("cannot fit");
        let text = reasons.join("; ");
        assert!(text.contains("already has node 0"), "{text}");
        assert!(text.contains("no attribute rack"), "{text}");
        assert!(text.contains("0.6 more cpus"), "{text}");
        assert!(text.contains("port 9092"), "{text}");
        assert_eq!(reasons.len(), 4);
    }

    #[test]
    fn a_foreign_role_offer_is_refused() {
        let ctx = ctx();
        let mut offer = offer("a1", "h", 8.0, vec![]);
        offer.allocation_info = Some(resource::AllocationInfo {
            role: Some("other".into()),
        });
        let view = OfferView::read(&offer, &ctx.reserver);
        let candidate = Candidate {
            offer: &offer,
            view: &view,
            host: &Host::of_offer(&offer),
            peers: &Peers::default(),
        };
        let reasons =
            fit_new(&ctx, "0", &spec("", vec![]), &candidate, "v").expect_err("wrong role");
        assert!(reasons[0].contains("role other"));
    }

    /// What a later offer from the agent holds after a full reservation.
    fn reserved_offer(ctx: &Context, spec: &NodeSpec, with_volume: bool) -> (v1::Offer, Placement) {
        let first = offer("a1", "host-1", 8.0, vec![]);
        let view = OfferView::read(&first, &ctx.reserver);
        let fit = fit_new(
            ctx,
            "0",
            spec,
            &Candidate {
                offer: &first,
                view: &view,
                host: &Host::of_offer(&first),
                peers: &Peers::default(),
            },
            "vol-0",
        )
        .expect("fits");
        let mut held = fit.launch.task.clone();
        held.extend(fit.launch.executor.clone());
        if !with_volume {
            held.retain(|r| r.disk.is_none());
            held.push(scalar_resource(
                "disk",
                spec.resources.disk,
                Some(&ctx.reserver.reservation("0")),
                Some("kafka"),
            ));
        }
        (offer("a1", "host-1", 6.9, held), fit.placement)
    }

    #[test]
    fn a_placed_node_relaunches_on_its_reservation_alone() {
        let ctx = ctx();
        let spec = spec("", vec![named("client", None)]);
        let (later, placement) = reserved_offer(&ctx, &spec, true);
        let view = OfferView::read(&later, &ctx.reserver);
        let fit = fit_existing(&ctx, "0", &spec, &placement, &later, &view).expect("fits");
        assert!(
            fit.prepare.is_empty(),
            "nothing to reserve again: {:?}",
            kinds(&fit.prepare)
        );
        let vol = fit
            .launch
            .task
            .iter()
            .find(|r| r.disk.is_some())
            .expect("volume");
        assert_eq!(
            vol.reservations
                .last()
                .and_then(|r| r.labels.as_ref())
                .map(|l| l.labels.iter().any(|l| l.key == LABEL_NODE)),
            Some(true),
            "the volume is used exactly as offered"
        );
    }

    #[test]
    fn a_crash_between_reserve_and_create_is_repaired() {
        let ctx = ctx();
        let spec = spec("", vec![]);
        let (later, placement) = reserved_offer(&ctx, &spec, false);
        let view = OfferView::read(&later, &ctx.reserver);
        let fit = fit_existing(&ctx, "0", &spec, &placement, &later, &view).expect("fits");
        assert_eq!(kinds(&fit.prepare), vec![operation::Type::Create]);
    }

    #[test]
    fn a_placed_node_ignores_other_agents() {
        let ctx = ctx();
        let spec = spec("", vec![]);
        let (_, placement) = reserved_offer(&ctx, &spec, true);
        let other = offer("a2", "host-2", 8.0, vec![]);
        let view = OfferView::read(&other, &ctx.reserver);
        let reasons =
            fit_existing(&ctx, "0", &spec, &placement, &other, &view).expect_err("wrong agent");
        assert!(reasons[0].contains("lives on agent a1"));
    }

    #[test]
    fn release_destroys_then_unreserves_everything() {
        let ctx = ctx();
        let spec = spec("", vec![named("client", None)]);
        let (later, _) = reserved_offer(&ctx, &spec, true);
        let view = OfferView::read(&later, &ctx.reserver);
        let ops = release(&view, "0");
        assert_eq!(
            kinds(&ops),
            vec![operation::Type::Destroy, operation::Type::Unreserve]
        );
        let unreserved = &ops[1].unreserve.as_ref().expect("unreserve").resources;
        assert!(
            unreserved.iter().all(|r| r.disk.is_none()),
            "volumes are plain disk after DESTROY"
        );
        assert_eq!(unreserved.len(), view.reserved["0"].resources.len());
        assert!(release(&view, "unknown").is_empty());
    }

    #[test]
    fn task_info_uses_a_custom_executor_per_task() {
        let template = TaskTemplate {
            task_id: "kafka-0-g1".into(),
            name: "broker-0".into(),
            executor_command: CommandInfo {
                value: Some("./service-executor".into()),
                ..Default::default()
            },
            data: b"{}".to_vec(),
            labels: vec![("node".into(), "0".into())],
            kill_grace_ns: Some(30_000_000_000),
        };
        let info = task_info(&template, "a1", LaunchResources::default());
        let executor = info.executor.expect("executor");
        assert_eq!(executor.executor_id.value, "kafka-0-g1");
        assert_eq!(
            executor.r#type,
            Some(v1::executor_info::Type::Custom as i32)
        );
        assert_eq!(
            info.kill_policy
                .and_then(|k| k.grace_period)
                .map(|g| g.nanoseconds),
            Some(30_000_000_000)
        );
    }
}
