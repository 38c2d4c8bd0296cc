//! `GET /master/state`, shaped like Mesos 1.11's for the fields frameworks
//! and operators use: frameworks (with tasks, executors and offers), agents
//! (`slaves`, with reserved resources and volumes), completed frameworks.

use std::collections::BTreeMap;

use mesos_proto::codec::to_json_value;
use mesos_proto::v1::Resource;
use serde_json::{Value, json};

use super::{Framework, Master, MasterAgent, Task, VERSION, framework_roles};
use crate::resources::{self, Resources, summary_json};

fn full(list: &Resources) -> Value {
    Value::Array(
        list.iter()
            .map(|r| to_json_value(&resources::to_endpoint(r)))
            .collect(),
    )
}

fn state_name(state: mesos_proto::v1::TaskState) -> &'static str {
    state.as_str_name()
}

fn task_json(task: &Task) -> Value {
    let statuses: Vec<Value> = task
        .statuses
        .iter()
        .map(|s| {
            let mut v = json!({
                "state": state_name(s.state()),
                "timestamp": s.timestamp.unwrap_or_default(),
            });
            if let Some(c) = &s.container_status {
                v["container_status"] = to_json_value(c);
            }
            v
        })
        .collect();
    let mut v = json!({
        "id": task.info.task_id.value,
        "name": task.info.name,
        "framework_id": task.framework_id,
        "executor_id": task.executor_id.clone().unwrap_or_default(),
        "slave_id": task.agent_id,
        "state": state_name(task.state),
        "resources": summary_json(&Resources::from_list(&task.info.resources)),
        "role": task.role,
        "statuses": statuses,
    });
    if let Some(labels) = &task.info.labels {
        v["labels"] = to_json_value(labels)["labels"].clone();
    }
    if let Some(t) = task.unreachable_time {
        v["unreachable_time"] = json!({"nanoseconds": (t * 1e9) as i64});
    }
    v
}

fn framework_json(master: &Master, f: &Framework) -> Value {
    let mut used = Resources::new();
    for agent in master.agents.values() {
        used.add_all(&master.used_by(f, &agent.id));
    }
    let mut offered = Resources::new();
    let offers: Vec<Value> = master
        .offers
        .values()
        .filter(|o| o.framework_id == f.id)
        .map(|o| {
            offered.add_all(&o.resources);
            json!({
                "id": o.id,
                "framework_id": o.framework_id,
                "slave_id": o.agent_id,
                "resources": summary_json(&o.resources),
                "allocation_info": {"role": o.role},
            })
        })
        .collect();
    let executors: Vec<Value> = f
        .executors
        .iter()
        .map(|((agent, _), (info, res))| {
            let mut v = to_json_value(info);
            v["slave_id"] = json!(agent);
            v["resources"] = summary_json(res);
            v
        })
        .collect();
    let capabilities: Vec<Value> = f
        .info
        .capabilities
        .iter()
        .filter_map(|c| c.r#type)
        .filter_map(|t| {
            mesos_proto::v1::framework_info::capability::Type::try_from(t)
                .ok()
                .map(|t| json!(t.as_str_name()))
        })
        .collect();
    let mut v = json!({
        "id": f.id,
        "name": f.info.name,
        "user": f.info.user,
        "hostname": f.info.hostname.clone().unwrap_or_default(),
        "webui_url": f.info.webui_url.clone().unwrap_or_default(),
        "principal": f.info.principal,
        "failover_timeout": f.info.failover_timeout.unwrap_or(0.0),
        "checkpoint": f.info.checkpoint.unwrap_or(false),
        "capabilities": capabilities,
        "suppressed_roles": f.suppressed.iter().collect::<Vec<_>>(),
        "active": f.subscription.is_some(),
        "connected": f.subscription.is_some(),
        "recovered": f.recovered,
        "registered_time": f.registered_time,
        "unregistered_time": f.unregistered_time.unwrap_or(0.0),
        "used_resources": summary_json(&used),
        "allocated_resources": summary_json(&used),
        "offered_resources": summary_json(&offered),
        "resources": summary_json(&used.plus(&offered)),
        "tasks": f.tasks.values().map(task_json).collect::<Vec<_>>(),
        "unreachable_tasks": f.unreachable_tasks.values().map(task_json).collect::<Vec<_>>(),
        "completed_tasks": f.completed_tasks.iter().map(task_json).collect::<Vec<_>>(),
        "offers": offers,
        "executors": executors,
    });
    if let Some(t) = f.reregistered_time {
        v["reregistered_time"] = json!(t);
    }
    if let Some(labels) = &f.info.labels {
        v["labels"] = to_json_value(labels)["labels"].clone();
    }
    // Mesos mirrors the protobuf: `roles` for MULTI_ROLE frameworks, else `role`.
    if f.has(mesos_proto::v1::framework_info::capability::Type::MultiRole) {
        v["roles"] = json!(f.info.roles);
    } else {
        v["role"] = json!(
            framework_roles(&f.info)
                .first()
                .cloned()
                .unwrap_or_default()
        );
    }
    v
}

fn agent_json(master: &Master, a: &MasterAgent, with_full: bool) -> Value {
    let used = master.used_on(&a.id);
    let offered = master.offered_on(&a.id);
    let mut reserved: BTreeMap<String, Vec<Resource>> = BTreeMap::new();
    let mut unreserved = Resources::new();
    for r in a.total.iter() {
        match resources::reservation_role(r) {
            Some(role) => reserved.entry(role.to_owned()).or_default().push(r.clone()),
            None => unreserved.add(r),
        }
    }
    let reserved_summary: serde_json::Map<String, Value> = reserved
        .iter()
        .map(|(role, list)| (role.clone(), summary_json(&Resources::from_list(list))))
        .collect();
    let reserved_full: serde_json::Map<String, Value> = reserved
        .iter()
        .map(|(role, list)| (role.clone(), full(&Resources::from_list(list))))
        .collect();
    let attributes: serde_json::Map<String, Value> = a
        .attributes
        .iter()
        .map(|x| (x.name.clone(), resources::attribute_json(x)))
        .collect();
    let mut v = json!({
        "id": a.id,
        "pid": a.pid(),
        "hostname": a.hostname,
        "port": a.address.1,
        "registered_time": a.registered_time,
        "resources": summary_json(&a.total),
        "used_resources": summary_json(&used),
        "offered_resources": summary_json(&offered),
        "reserved_resources": reserved_summary,
        "unreserved_resources": summary_json(&unreserved),
        "attributes": attributes,
        "active": a.connected,
        "deactivated": false,
        "version": VERSION,
        "capabilities": ["MULTI_ROLE", "HIERARCHICAL_ROLE", "RESERVATION_REFINEMENT"],
    });
    if let Some(t) = a.reregistered_time {
        v["reregistered_time"] = json!(t);
    }
    if with_full {
        // `/master/slaves` adds the complete resources, reservations and volumes included.
        v["reserved_resources_full"] = Value::Object(reserved_full);
        v["unreserved_resources_full"] = full(&unreserved);
        v["used_resources_full"] = full(&used);
        v["offered_resources_full"] = full(&offered);
    }
    v
}

/// `GET /master/slaves`: the agents with their complete resources.
pub fn render_slaves(master: &Master) -> Value {
    json!({
        "slaves": master.agents.values().map(|a| agent_json(master, a, true)).collect::<Vec<_>>(),
        "recovered_slaves": [],
    })
}

/// Renders the whole state.
pub fn render(master: &Master, now_wall: f64) -> Value {
    let pid = format!("master@{}:{}", master.settings.ip, master.settings.port);
    json!({
        "version": VERSION,
        "id": master.id,
        "pid": pid,
        "hostname": master.settings.hostname,
        "start_time": master.start_time,
        "elected_time": master.start_time,
        "now": now_wall,
        "leader": pid,
        "leader_info": to_json_value(&master.info),
        "activated_slaves": master.agents.values().filter(|a| a.connected).count(),
        "deactivated_slaves": 0,
        "unreachable_slaves": master.unreachable.len(),
        "flags": {
            "allocation_interval": crate::ids::format_duration(master.settings.allocation_interval),
            "agent_reregister_timeout": crate::ids::format_duration(master.settings.agent_removal_timeout),
            "roles": master.settings.roles.as_ref().map(|r| r.join(",")),
        },
        "slaves": master.agents.values().map(|a| agent_json(master, a, false)).collect::<Vec<_>>(),
        "recovered_slaves": [],
        "frameworks": master.frameworks.values().map(|f| framework_json(master, f)).collect::<Vec<_>>(),
        "completed_frameworks": master.completed_frameworks.iter().map(|f| framework_json(master, f)).collect::<Vec<_>>(),
        "unregistered_frameworks": [],
    })
}
