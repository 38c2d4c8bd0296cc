//! Validation of scheduler calls, FrameworkInfo and launched tasks, with
//! the messages Mesos 1.11 uses (`src/master/validation.cpp`).

use mesos_proto::v1::{
    ExecutorInfo, FrameworkInfo, Resource, TaskInfo, executor_info,
    framework_info::capability::Type as Cap,
    scheduler::{Call, call},
};

use super::{Framework, framework_roles, has_capability};
use crate::ids;
use crate::resources::{self, Resources};

/// Validates a scheduler call the way the master does before looking at its state.
pub fn call(call: &Call) -> Result<(), String> {
    let Some(kind) = call.r#type else {
        return Err("Expecting 'type' to be present".into());
    };
    let kind = call::Type::try_from(kind).unwrap_or(call::Type::Unknown);
    if kind == call::Type::Subscribe {
        let Some(subscribe) = &call.subscribe else {
            return Err("Expecting 'subscribe' to be present".into());
        };
        let info_id = subscribe
            .framework_info
            .id
            .as_ref()
            .map(|i| i.value.as_str())
            .unwrap_or("");
        let call_id = call
            .framework_id
            .as_ref()
            .map(|i| i.value.as_str())
            .unwrap_or("");
        if info_id != call_id {
            return Err("'framework_id' differs from 'subscribe.framework_info.id'".into());
        }
        return Ok(());
    }
    if call.framework_id.is_none() {
        return Err("Expecting 'framework_id' to be present".into());
    }
    let missing = |name: &str| Err(format!("Expecting '{name}' to be present"));
    match kind {
        call::Type::Accept if call.accept.is_none() => missing("accept"),
        call::Type::Decline if call.decline.is_none() => missing("decline"),
        call::Type::AcceptInverseOffers if call.accept_inverse_offers.is_none() => {
            missing("accept_inverse_offers")
        }
        call::Type::DeclineInverseOffers if call.decline_inverse_offers.is_none() => {
            missing("decline_inverse_offers")
        }
        call::Type::Kill if call.kill.is_none() => missing("kill"),
        call::Type::Shutdown if call.shutdown.is_none() => missing("shutdown"),
        call::Type::Acknowledge => match &call.acknowledge {
            None => missing("acknowledge"),
            Some(ack) if !ids::is_valid_uuid(&ack.uuid) => Err(ids::uuid_error(&ack.uuid)),
            Some(_) => Ok(()),
        },
        call::Type::AcknowledgeOperationStatus => match &call.acknowledge_operation_status {
            None => missing("acknowledge_operation_status"),
            Some(ack) if !ids::is_valid_uuid(&ack.uuid) => Err(ids::uuid_error(&ack.uuid)),
            Some(ack) if ack.agent_id.is_none() => missing("agent_id"),
            Some(_) => Ok(()),
        },
        call::Type::Reconcile if call.reconcile.is_none() => missing("reconcile"),
        call::Type::ReconcileOperations if call.reconcile_operations.is_none() => {
            missing("reconcile_operations")
        }
        call::Type::Message if call.message.is_none() => missing("message"),
        call::Type::Request if call.request.is_none() => missing("request"),
        call::Type::UpdateFramework => match &call.update_framework {
            None => missing("update_framework"),
            Some(update) => {
                let info_id = update.framework_info.id.as_ref().map(|i| &i.value);
                if info_id != call.framework_id.as_ref().map(|i| &i.value) {
                    Err("'framework_id' differs from 'update_framework.framework_info.id'".into())
                } else {
                    Ok(())
                }
            }
        },
        _ => Ok(()),
    }
}

/// Validates FrameworkInfo (roles, ID, failover timeout).
pub fn framework_info(info: &FrameworkInfo) -> Result<(), String> {
    let multi_role = has_capability(info, Cap::MultiRole);
    if multi_role && info.role.is_some() {
        return Err(
            "'FrameworkInfo.role' must not be set when the framework is MULTI_ROLE capable".into(),
        );
    }
    if !multi_role && !info.roles.is_empty() {
        return Err(
            "'FrameworkInfo.roles' must not be set when the framework is not MULTI_ROLE capable"
                .into(),
        );
    }
    if multi_role {
        let mut seen = std::collections::BTreeSet::new();
        let mut duplicates = std::collections::BTreeSet::new();
        for role in &info.roles {
            if !seen.insert(role) {
                duplicates.insert(role.as_str());
            }
        }
        if !duplicates.is_empty() {
            return Err(format!(
                "'FrameworkInfo.roles' contains duplicate items: {{ {} }}",
                duplicates.into_iter().collect::<Vec<_>>().join(", ")
            ));
        }
        for role in &info.roles {
            ids::validate_role(role)
                .map_err(|e| format!("'FrameworkInfo.roles' contains invalid role: {e}"))?;
        }
    } else {
        for role in framework_roles(info) {
            ids::validate_role(&role)
                .map_err(|e| format!("'FrameworkInfo.role' is not a valid role: {e}"))?;
        }
    }
    if let Some(id) = info.id.as_ref().filter(|i| !i.value.is_empty()) {
        ids::validate_id(&id.value)?;
    }
    let timeout = info.failover_timeout.unwrap_or(0.0);
    if !timeout.is_finite() || (timeout * 1e9).abs() >= i64::MAX as f64 {
        return Err(format!(
            "The framework failover_timeout ({timeout}) is invalid"
        ));
    }
    Ok(())
}

/// Renders resources roughly as Mesos' `operator<<` does, for error messages.
pub fn render(list: &[Resource]) -> String {
    list.iter()
        .map(|r| {
            let mut name = r.name.clone();
            if let Some(a) = r.allocation_info.as_ref().and_then(|a| a.role.as_ref()) {
                name.push_str(&format!("(allocated: {a})"));
            }
            if !r.reservations.is_empty() {
                let roles: Vec<String> = r
                    .reservations
                    .iter()
                    .map(|x| {
                        format!(
                            "({},{})",
                            if x.r#type == Some(1) {
                                "STATIC"
                            } else {
                                "DYNAMIC"
                            },
                            x.role.clone().unwrap_or_default()
                        )
                    })
                    .collect();
                name.push_str(&format!("(reservations: [{}])", roles.join(",")));
            }
            if let Some(p) = r.disk.as_ref().and_then(|d| d.persistence.as_ref()) {
                name.push_str(&format!("[{}]", p.id));
            }
            let value = match (&r.scalar, &r.ranges, &r.set) {
                (Some(s), _, _) => format!("{}", s.value),
                (_, Some(rs), _) => format!(
                    "[{}]",
                    rs.range
                        .iter()
                        .map(|x| format!("{}-{}", x.begin, x.end))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                (_, _, Some(s)) => format!("{{{}}}", s.item.join(", ")),
                _ => String::new(),
            };
            format!("{name}:{value}")
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn unique_persistence_ids(list: &[Resource]) -> Result<(), String> {
    let mut seen = std::collections::BTreeSet::new();
    for r in list {
        if let Some(p) = r.disk.as_ref().and_then(|d| d.persistence.as_ref()) {
            let role = resources::reservation_role(r).unwrap_or("*");
            if !seen.insert((role.to_owned(), p.id.clone())) {
                return Err(format!("Persistence ID '{}' is not unique", p.id));
            }
        }
    }
    Ok(())
}

/// What the validator needs to know about the agent.
pub struct AgentView<'a> {
    /// Agent ID.
    pub id: &'a str,
    /// The framework's executor with the task's executor ID on this agent, if running.
    pub existing_executor: Option<&'a ExecutorInfo>,
}

/// Validates a task of a LAUNCH (resources already in the internal format)
/// against what is left of the offer.
pub fn task(
    task: &TaskInfo,
    framework: &Framework,
    agent: &AgentView<'_>,
    available: &Resources,
) -> Result<(), String> {
    let task_id = &task.task_id.value;
    ids::validate_id(task_id)?;
    if framework.tasks.contains_key(task_id) {
        return Err(format!("Task has duplicate ID: {task_id}"));
    }
    if framework.unreachable_tasks.contains_key(task_id) {
        return Err(format!(
            "Task reuses the ID of an unreachable task: {task_id}"
        ));
    }
    if task.agent_id.value != agent.id {
        return Err(format!(
            "Task uses invalid agent {} while agent {} is expected",
            task.agent_id.value, agent.id
        ));
    }
    if task
        .kill_policy
        .as_ref()
        .and_then(|k| k.grace_period.as_ref())
        .is_some_and(|g| g.nanoseconds < 0)
    {
        return Err("Task's 'kill_policy.grace_period' must be non-negative".into());
    }
    if task
        .max_completion_time
        .as_ref()
        .is_some_and(|d| d.nanoseconds < 0)
    {
        return Err("Task's `max_completion_time` must be non-negative".into());
    }
    if task.resources.is_empty() {
        return Err("Task uses no resources".into());
    }
    for r in &task.resources {
        resources::validate(r).map_err(|e| format!("Task uses invalid resources: {e}"))?;
    }
    unique_persistence_ids(&task.resources)
        .map_err(|e| format!("Task uses duplicate persistence ID: {e}"))?;
    if task.executor.is_some() == task.command.is_some() {
        return Err(
            "Task should have at least one (but not both) of CommandInfo or ExecutorInfo present"
                .into(),
        );
    }
    let mut total = Resources::from_list(&task.resources);
    if let Some(executor) = &task.executor {
        executor_info(executor, framework, agent)?;
        if let Some(kind) = executor.r#type {
            if kind != executor_info::Type::Custom as i32 {
                return Err("'ExecutorInfo.type' must be 'CUSTOM'".into());
            }
        }
        if executor.command.is_none() {
            return Err("'ExecutorInfo.command' must be set".into());
        }
        if agent.existing_executor.is_none() {
            total.add_all(&Resources::from_list(&executor.resources));
        }
        let mut all = task.resources.clone();
        all.extend(executor.resources.iter().cloned());
        unique_persistence_ids(&all)
            .map_err(|e| format!("Task and its executor use duplicate persistence ID: {e}"))?;
    }
    if !available.contains(&total) {
        return Err(format!(
            "Total resources {} required by task and its executor is more than available {}",
            render(total.as_slice()),
            render(available.as_slice())
        ));
    }
    Ok(())
}

fn executor_info(
    executor: &ExecutorInfo,
    framework: &Framework,
    agent: &AgentView<'_>,
) -> Result<(), String> {
    match executor
        .r#type
        .and_then(|t| executor_info::Type::try_from(t).ok())
    {
        Some(executor_info::Type::Default) if executor.command.is_some() => {
            return Err("'ExecutorInfo.command' must not be set for 'DEFAULT' executor".into());
        }
        Some(executor_info::Type::Custom) if executor.command.is_none() => {
            return Err("'ExecutorInfo.command' must be set for 'CUSTOM' executor".into());
        }
        _ => {}
    }
    ids::validate_id(&executor.executor_id.value)?;
    if executor
        .shutdown_grace_period
        .as_ref()
        .is_some_and(|d| d.nanoseconds < 0)
    {
        return Err("ExecutorInfo's 'shutdown_grace_period' must be non-negative".into());
    }
    match &executor.framework_id {
        None => return Err("'ExecutorInfo.framework_id' must be set".into()),
        Some(id) if id.value != framework.id => {
            return Err(format!(
                "ExecutorInfo has an invalid FrameworkID (Actual: {} vs Expected: {})",
                id.value, framework.id
            ));
        }
        Some(_) => {}
    }
    for r in &executor.resources {
        resources::validate(r).map_err(|e| format!("Executor uses invalid resources: {e}"))?;
    }
    if let Some(existing) = agent.existing_executor {
        if existing != executor {
            return Err(format!(
                "ExecutorInfo is not compatible with existing ExecutorInfo with same \
                 ExecutorID.\n------------------------------------------------------------\n\
                 Existing ExecutorInfo:\n{existing:?}\n\
                 ------------------------------------------------------------\n\
                 ExecutorInfo:\n{executor:?}\n\
                 ------------------------------------------------------------\n"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use mesos_proto::v1::{FrameworkId, framework_info::Capability};

    #[test]
    fn calls_need_type_framework_and_payload() {
        let mut c = Call::default();
        assert_eq!(
            call(&c).expect_err("invalid"),
            "Expecting 'type' to be present"
        );
        c.r#type = Some(call::Type::Accept as i32);
        assert_eq!(
            call(&c).expect_err("invalid"),
            "Expecting 'framework_id' to be present"
        );
        c.framework_id = Some(FrameworkId { value: "f".into() });
        assert_eq!(
            call(&c).expect_err("invalid"),
            "Expecting 'accept' to be present"
        );
        c.r#type = Some(call::Type::Acknowledge as i32);
        c.acknowledge = Some(call::Acknowledge {
            agent_id: Default::default(),
            task_id: Default::default(),
            uuid: b"not-a-uuid".to_vec(),
        });
        assert!(call(&c).expect_err("invalid").contains("UUID"));
    }

    #[test]
    fn subscribe_ids_must_agree() {
        let mut info = FrameworkInfo {
            user: "u".into(),
            name: "n".into(),
            ..Default::default()
        };
        info.id = Some(FrameworkId { value: "a".into() });
        let c = Call {
            r#type: Some(call::Type::Subscribe as i32),
            subscribe: Some(call::Subscribe {
                framework_info: info,
                suppressed_roles: vec![],
            }),
            ..Default::default()
        };
        assert_eq!(
            call(&c).expect_err("invalid"),
            "'framework_id' differs from 'subscribe.framework_info.id'"
        );
    }

    #[test]
    fn roles_follow_the_multi_role_capability() {
        let mut info = FrameworkInfo {
            user: "u".into(),
            name: "n".into(),
            roles: vec!["a".into()],
            ..Default::default()
        };
        assert!(
            framework_info(&info)
                .expect_err("invalid")
                .contains("not MULTI_ROLE")
        );
        info.capabilities.push(Capability {
            r#type: Some(Cap::MultiRole as i32),
        });
        assert!(framework_info(&info).is_ok());
        info.roles.push("a".into());
        assert!(
            framework_info(&info)
                .expect_err("invalid")
                .contains("duplicate")
        );
    }
}
