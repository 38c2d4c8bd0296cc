//! ACCEPT: operations applied in order against the running remainder of the
//! offers, validated as Mesos validates them. Invalid reservation and volume
//! operations are dropped (OPERATION_ERROR when they carry an `id`); invalid
//! tasks get TASK_ERROR; stale offers give TASK_LOST / TASK_DROPPED.

use std::collections::BTreeSet;

use mesos_proto::v1::{
    self, FrameworkId, OperationId, Resource, TaskInfo, TaskState,
    framework_info::capability::Type as Cap,
    offer::{Operation, operation},
    scheduler::{call, event},
    task_status::Reason,
};

use super::validate::{self, AgentView, render};
use super::{Master, Task, ev, master_status, stored_task, update_event};
use crate::core::{Now, Out, ToAgent};
use crate::resources::{self, Format, Resources};

/// Upgrades a list of resources to the internal format, checking that any
/// explicit allocation role is the offer's.
fn upgrade_all(list: &[Resource], role: &str) -> Result<Vec<Resource>, String> {
    list.iter()
        .map(|r| {
            let (up, allocation) = resources::upgrade(r)?;
            if let Some(allocation) = allocation {
                if allocation != role {
                    return Err(format!(
                        "Resource {} is allocated to role '{allocation}' but the offers are \
                         allocated to role '{role}'",
                        render(std::slice::from_ref(r))
                    ));
                }
            }
            resources::validate(&up).map_err(|e| format!("Invalid resources: {e}"))?;
            Ok(up)
        })
        .collect()
}

fn tasks_of(op: &Operation) -> Vec<TaskInfo> {
    match op.r#type.and_then(|t| operation::Type::try_from(t).ok()) {
        Some(operation::Type::Launch) => op
            .launch
            .as_ref()
            .map(|l| l.task_infos.clone())
            .unwrap_or_default(),
        Some(operation::Type::LaunchGroup) => op
            .launch_group
            .as_ref()
            .map(|l| l.task_group.tasks.clone())
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

fn is_launch(op: &Operation) -> bool {
    matches!(
        op.r#type.and_then(|t| operation::Type::try_from(t).ok()),
        Some(operation::Type::Launch | operation::Type::LaunchGroup)
    )
}

impl Master {
    fn drop_operation(
        &self,
        framework_id: &str,
        op: &Operation,
        agent_id: Option<&str>,
        message: &str,
        out: &mut Out,
    ) {
        tracing::info!(%framework_id, op = ?op.r#type, %message, "dropping operation");
        let Some(id) = op.id.clone() else {
            return;
        };
        let status = v1::OperationStatus {
            operation_id: Some(OperationId { value: id.value }),
            state: v1::OperationState::OperationError as i32,
            message: Some(message.to_owned()),
            agent_id: agent_id.map(|a| v1::AgentId {
                value: a.to_owned(),
            }),
            ..Default::default()
        };
        let event = v1::scheduler::Event {
            update_operation_status: Some(event::UpdateOperationStatus { status }),
            ..ev(event::Type::UpdateOperationStatus)
        };
        self.send(framework_id, event, out);
    }

    fn task_error(
        &self,
        framework_id: &str,
        task: &TaskInfo,
        reason: Reason,
        message: &str,
        now: Now,
        out: &mut Out,
    ) {
        tracing::info!(%framework_id, task_id = %task.task_id.value, %message, "TASK_ERROR");
        let status = master_status(
            &task.task_id.value,
            Some(&task.agent_id.value),
            TaskState::TaskError,
            message,
            reason,
            None,
            now,
        );
        self.send(framework_id, update_event(status), out);
    }

    fn validate_offers(&self, framework_id: &str, ids: &[v1::OfferId]) -> Option<String> {
        let mut seen = BTreeSet::new();
        for id in ids {
            if !seen.insert(&id.value) {
                return Some(format!("Duplicate offer {} in offer list", id.value));
            }
        }
        let mut agent: Option<&str> = None;
        let mut role: Option<&str> = None;
        for id in ids {
            let Some(offer) = self.offers.get(&id.value) else {
                return Some(format!("Offer {} is no longer valid", id.value));
            };
            if offer.framework_id != framework_id {
                return Some(format!(
                    "Offer {} has invalid framework {} while framework {framework_id} is expected",
                    id.value, offer.framework_id
                ));
            }
            match agent {
                Some(a) if a != offer.agent_id => {
                    return Some(format!(
                        "Aggregated offers must belong to one single agent. Offer {} uses agent {} and agent {a}",
                        id.value, offer.agent_id
                    ));
                }
                _ => agent = Some(&offer.agent_id),
            }
            match role {
                Some(r) if r != offer.role => {
                    return Some(format!(
                        "Aggregated offers must be allocated to the same role. Offer {} uses role {} and another offer uses role {r}",
                        id.value, offer.role
                    ));
                }
                _ => role = Some(&offer.role),
            }
            if !self
                .agents
                .get(&offer.agent_id)
                .is_some_and(|a| a.connected)
            {
                return Some(format!("Offer {} is no longer valid", id.value));
            }
        }
        None
    }

    /// ACCEPT.
    pub(super) fn accept(
        &mut self,
        framework_id: &str,
        accept: call::Accept,
        now: Now,
        out: &mut Out,
    ) {
        let Some(framework) = self.frameworks.get(framework_id) else {
            return;
        };
        let partition_aware = framework.has(Cap::PartitionAware);
        let error = if accept.offer_ids.is_empty() {
            Some("No offers specified".to_owned())
        } else {
            self.validate_offers(framework_id, &accept.offer_ids)
        };
        if let Some(error) = error {
            for id in &accept.offer_ids {
                if self
                    .offers
                    .get(&id.value)
                    .is_some_and(|o| o.framework_id == framework_id)
                {
                    self.offers.remove(&id.value);
                }
            }
            let state = if partition_aware {
                TaskState::TaskDropped
            } else {
                TaskState::TaskLost
            };
            for op in &accept.operations {
                if !is_launch(op) {
                    self.drop_operation(
                        framework_id,
                        op,
                        None,
                        &format!("Operation attempted with invalid offers: {error}"),
                        out,
                    );
                    continue;
                }
                for task in tasks_of(op) {
                    let status = master_status(
                        &task.task_id.value,
                        Some(&task.agent_id.value),
                        state,
                        &format!("Task launched with invalid offers: {error}"),
                        Reason::InvalidOffers,
                        None,
                        now,
                    );
                    self.send(framework_id, update_event(status), out);
                }
            }
            return;
        }

        let offers: Vec<super::Offer> = accept
            .offer_ids
            .iter()
            .filter_map(|id| self.offers.remove(&id.value))
            .collect();
        let Some(first) = offers.first() else {
            return;
        };
        let agent_id = first.agent_id.clone();
        let role = first.role.clone();
        let mut offered = Resources::new();
        for offer in &offers {
            offered.add_all(&offer.resources);
        }
        let mut remaining = offered.clone();

        for op in accept.operations {
            let kind = op.r#type.and_then(|t| operation::Type::try_from(t).ok());
            if op.id.is_some() {
                if is_launch(&op) {
                    let reason = if kind == Some(operation::Type::LaunchGroup) {
                        Reason::TaskGroupInvalid
                    } else {
                        Reason::TaskInvalid
                    };
                    let message = if kind == Some(operation::Type::LaunchGroup) {
                        "The `id` field cannot be set on LAUNCH_GROUP operations"
                    } else {
                        "The `id` field cannot be set on LAUNCH operations"
                    };
                    for task in tasks_of(&op) {
                        self.task_error(framework_id, &task, reason, message, now, out);
                    }
                } else {
                    self.drop_operation(
                        framework_id,
                        &op,
                        Some(&agent_id),
                        &format!(
                            "Operation requested feedback, but agent {agent_id} does not have the \
                             required RESOURCE_PROVIDER capability"
                        ),
                        out,
                    );
                }
                continue;
            }
            let result = match kind {
                Some(operation::Type::Reserve) => {
                    self.reserve(framework_id, &op, &agent_id, &role, &mut remaining)
                }
                Some(operation::Type::Unreserve) => {
                    self.unreserve(&op, &agent_id, &role, &mut remaining)
                }
                Some(operation::Type::Create) => {
                    self.create(framework_id, &op, &agent_id, &role, &mut remaining)
                }
                Some(operation::Type::Destroy) => {
                    self.destroy(framework_id, &op, &agent_id, &role, &mut remaining, out)
                }
                Some(operation::Type::Launch) => {
                    self.launch(
                        framework_id,
                        &op,
                        &agent_id,
                        &role,
                        &mut remaining,
                        now,
                        out,
                    );
                    Ok(())
                }
                Some(operation::Type::LaunchGroup) => {
                    for task in tasks_of(&op) {
                        self.task_error(
                            framework_id,
                            &task,
                            Reason::TaskGroupInvalid,
                            "LAUNCH_GROUP is not supported by the local cluster (no default executor)",
                            now,
                            out,
                        );
                    }
                    Ok(())
                }
                _ => Err("Unsupported operation".to_owned()),
            };
            match result {
                Err(message) => {
                    self.drop_operation(framework_id, &op, Some(&agent_id), &message, out);
                }
                Ok(()) if !is_launch(&op) => self.checkpoint(&agent_id, out),
                Ok(()) => {}
            }
        }

        // Converted resources return at once; the untouched rest is declined with the filters.
        let speculative = remaining.minus(&offered);
        let declined = remaining.minus(&speculative);
        self.add_filter(
            framework_id,
            &agent_id,
            &role,
            declined,
            accept.filters.as_ref(),
            now,
        );
    }

    fn checkpoint(&self, agent_id: &str, out: &mut Out) {
        if let Some(agent) = self.agents.get(agent_id) {
            out.to_agent(
                agent.index,
                ToAgent::CheckpointResources {
                    checkpointed: agent.checkpointed().to_vec(),
                },
            );
        }
    }

    /// Applies `from → to` conversions to `remaining` and to the agent's total, or fails without change.
    fn convert(
        &mut self,
        agent_id: &str,
        conversions: &[(Resource, Resource)],
        remaining: &mut Resources,
        what: &str,
    ) -> Result<(), String> {
        let mut next = remaining.clone();
        for (from, to) in conversions {
            if !next.contains_one(from) {
                return Err(format!(
                    "Invalid {what} Operation: {} does not contain {}",
                    render(next.as_slice()),
                    render(std::slice::from_ref(from))
                ));
            }
            next.subtract_one(from);
            next.add(to);
        }
        let Some(agent) = self.agents.get_mut(agent_id) else {
            return Err(format!("Agent {agent_id} is not registered"));
        };
        let mut total = agent.total.clone();
        for (from, to) in conversions {
            if !total.contains_one(from) {
                return Err(format!(
                    "Invalid {what} Operation: agent does not have the resources"
                ));
            }
            total.subtract_one(from);
            total.add(to);
        }
        agent.total = total;
        *remaining = next;
        Ok(())
    }

    fn reserve(
        &mut self,
        framework_id: &str,
        op: &Operation,
        agent_id: &str,
        role: &str,
        remaining: &mut Resources,
    ) -> Result<(), String> {
        let Some(reserve) = &op.reserve else {
            return Err("Expecting 'reserve' to be present".into());
        };
        let on_agent = |e: String| format!("{e}; on agent {agent_id}");
        if !reserve.source.is_empty() {
            return Err(
                "Reservation updates are not yet implemented for the scheduler API.".into(),
            );
        }
        let list = upgrade_all(&reserve.resources, role).map_err(on_agent)?;
        let Some(framework) = self.frameworks.get(framework_id) else {
            return Err("Framework cannot be found".into());
        };
        let roles = framework.roles();
        let principal = framework.info.principal.clone();
        for r in &list {
            if !resources::is_dynamically_reserved(r) {
                return Err(on_agent(format!(
                    "Resource {} is not dynamically reserved",
                    render(std::slice::from_ref(r))
                )));
            }
            if let Some(principal) = &principal {
                match r.reservations.last().and_then(|x| x.principal.as_ref()) {
                    None => {
                        return Err(on_agent(format!(
                            "A reserve operation was attempted by principal '{principal}', but \
                             there is a reserved resource in the request with no principal set"
                        )));
                    }
                    Some(p) if p != principal => {
                        return Err(on_agent(format!(
                            "A reserve operation was attempted by authenticated principal \
                             '{principal}', which does not match a reserved resource in the \
                             request with principal '{p}'"
                        )));
                    }
                    Some(_) => {}
                }
            }
            let reserved = resources::reservation_role(r).unwrap_or("*");
            if reserved != role {
                return Err(on_agent(format!(
                    "A reserve operation was attempted for a resource with role '{reserved}', but \
                     the resource was allocated to role '{role}'"
                )));
            }
            if !roles.iter().any(|x| x == reserved) {
                return Err(on_agent(format!(
                    "A reserve operation was attempted for a resource with role '{reserved}', but \
                     the framework can only reserve resources with roles '{{ {} }}'",
                    roles.join(", ")
                )));
            }
        }
        let conversions: Vec<(Resource, Resource)> = list
            .iter()
            .map(|r| (resources::pop_reservation(r), r.clone()))
            .collect();
        self.convert(agent_id, &conversions, remaining, "RESERVE")?;
        tracing::info!(%framework_id, %agent_id, "applied RESERVE");
        Ok(())
    }

    fn unreserve(
        &mut self,
        op: &Operation,
        agent_id: &str,
        role: &str,
        remaining: &mut Resources,
    ) -> Result<(), String> {
        let Some(unreserve) = &op.unreserve else {
            return Err("Expecting 'unreserve' to be present".into());
        };
        let on_agent = |e: String| format!("{e}; on agent {agent_id}");
        let list = upgrade_all(&unreserve.resources, role).map_err(on_agent)?;
        for r in &list {
            if !resources::is_dynamically_reserved(r) {
                return Err(on_agent(format!(
                    "Resource {} is not dynamically reserved",
                    render(std::slice::from_ref(r))
                )));
            }
            if resources::is_persistent_volume(r) {
                return Err(on_agent(format!(
                    "A dynamically reserved persistent volume {} cannot be unreserved directly. \
                     Please destroy the persistent volume first then unreserve the resource",
                    render(std::slice::from_ref(r))
                )));
            }
        }
        let conversions: Vec<(Resource, Resource)> = list
            .iter()
            .map(|r| (r.clone(), resources::pop_reservation(r)))
            .collect();
        self.convert(agent_id, &conversions, remaining, "UNRESERVE")?;
        tracing::info!(%agent_id, "applied UNRESERVE");
        Ok(())
    }

    fn create(
        &mut self,
        framework_id: &str,
        op: &Operation,
        agent_id: &str,
        role: &str,
        remaining: &mut Resources,
    ) -> Result<(), String> {
        let Some(create) = &op.create else {
            return Err("Expecting 'create' to be present".into());
        };
        let on_agent = |e: String| format!("{e}; on agent {agent_id}");
        let list = upgrade_all(&create.volumes, role).map_err(on_agent)?;
        let Some(framework) = self.frameworks.get(framework_id) else {
            return Err("Framework cannot be found".into());
        };
        for v in &list {
            validate_volume(v).map_err(|e| on_agent(format!("Not a persistent volume: {e}")))?;
            if v.shared.is_some() && !framework.has(Cap::SharedResources) {
                return Err(on_agent(format!(
                    "Create volume operation has been attempted by framework '{framework_id}' \
                     with no SHARED_RESOURCES capability"
                )));
            }
            if v.reservations.is_empty() {
                return Err(on_agent(
                    "Persistent volumes cannot be created from unreserved resources".into(),
                ));
            }
            if let Some(principal) = &framework.info.principal {
                let persistence = v.disk.as_ref().and_then(|d| d.persistence.as_ref());
                match persistence.and_then(|p| p.principal.as_ref()) {
                    None => {
                        return Err(on_agent(format!(
                            "Create volume operation attempted by principal '{principal}', but \
                             there is a volume in the operation with no principal set in \
                             'disk.persistence'"
                        )));
                    }
                    Some(p) if p != principal => {
                        return Err(on_agent(format!(
                            "Create volume operation attempted by authenticated principal \
                             '{principal}', which does not match a volume in the operation with \
                             principal '{p}' set in 'disk.persistence'"
                        )));
                    }
                    Some(_) => {}
                }
            }
        }
        let mut existing: Vec<Resource> = self
            .agents
            .get(agent_id)
            .map(|a| a.checkpointed().to_vec())
            .unwrap_or_default();
        existing.extend(list.iter().cloned());
        let mut seen = BTreeSet::new();
        for v in existing
            .iter()
            .filter(|r| resources::is_persistent_volume(r))
        {
            if let Some(p) = v.disk.as_ref().and_then(|d| d.persistence.as_ref()) {
                let key = (
                    resources::reservation_role(v).unwrap_or("*").to_owned(),
                    p.id.clone(),
                );
                if !seen.insert(key) {
                    return Err(on_agent(format!("Persistence ID '{}' is not unique", p.id)));
                }
            }
        }
        let conversions: Vec<(Resource, Resource)> = list
            .iter()
            .map(|v| (resources::strip_volume(v), v.clone()))
            .collect();
        self.convert(agent_id, &conversions, remaining, "CREATE")?;
        tracing::info!(%framework_id, %agent_id, "applied CREATE");
        Ok(())
    }

    fn destroy(
        &mut self,
        framework_id: &str,
        op: &Operation,
        agent_id: &str,
        role: &str,
        remaining: &mut Resources,
        out: &mut Out,
    ) -> Result<(), String> {
        let Some(destroy) = &op.destroy else {
            return Err("Expecting 'destroy' to be present".into());
        };
        let on_agent = |e: String| format!("{e}; on agent {agent_id}");
        let list = upgrade_all(&destroy.volumes, role).map_err(on_agent)?;
        let checkpointed = self
            .agents
            .get(agent_id)
            .map(|a| a.checkpointed())
            .unwrap_or_default();
        let used = self.used_on(agent_id);
        for v in &list {
            validate_volume(v).map_err(|e| on_agent(format!("Not a persistent volume: {e}")))?;
            if !checkpointed.contains_one(v) {
                return Err(on_agent("Persistent volumes not found".into()));
            }
            if used.contains_one(v) {
                return Err(on_agent("Persistent volumes in use".into()));
            }
        }
        let offers: Vec<String> = self
            .offers
            .values()
            .filter(|o| o.agent_id == agent_id && list.iter().any(|v| o.resources.contains_one(v)))
            .map(|o| o.id.clone())
            .collect();
        for offer_id in offers {
            self.rescind_offer(&offer_id, out);
        }
        let conversions: Vec<(Resource, Resource)> = list
            .iter()
            .map(|v| (v.clone(), resources::strip_volume(v)))
            .collect();
        self.convert(agent_id, &conversions, remaining, "DESTROY")?;
        tracing::info!(%framework_id, %agent_id, "applied DESTROY");
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn launch(
        &mut self,
        framework_id: &str,
        op: &Operation,
        agent_id: &str,
        role: &str,
        remaining: &mut Resources,
        now: Now,
        out: &mut Out,
    ) {
        let Some(index) = self.agents.get(agent_id).map(|a| a.index) else {
            return;
        };
        for mut task in tasks_of(op) {
            let upgraded = upgrade_all(&task.resources, role).and_then(|res| {
                let exec = match &task.executor {
                    Some(e) => Some(upgrade_all(&e.resources, role)?),
                    None => None,
                };
                Ok((res, exec))
            });
            let (task_resources, executor_resources) = match upgraded {
                Ok(x) => x,
                Err(message) => {
                    self.task_error(framework_id, &task, Reason::TaskInvalid, &message, now, out);
                    continue;
                }
            };
            task.resources = task_resources;
            if let (Some(executor), Some(res)) = (task.executor.as_mut(), executor_resources) {
                executor.resources = res;
                if executor.framework_id.is_none() {
                    executor.framework_id = Some(FrameworkId {
                        value: framework_id.to_owned(),
                    });
                }
            }
            let Some(framework) = self.frameworks.get(framework_id) else {
                return;
            };
            let executor_key = task
                .executor
                .as_ref()
                .map(|e| (agent_id.to_owned(), e.executor_id.value.clone()));
            let existing = executor_key
                .as_ref()
                .and_then(|k| framework.executors.get(k))
                .map(|(info, _)| info);
            let view = AgentView {
                id: agent_id,
                existing_executor: existing,
            };
            if let Err(message) = validate::task(&task, framework, &view, remaining) {
                self.task_error(framework_id, &task, Reason::TaskInvalid, &message, now, out);
                continue;
            }
            let new_executor = existing.is_none();
            let mut consumed = Resources::from_list(&task.resources);
            let Some(framework) = self.frameworks.get_mut(framework_id) else {
                return;
            };
            if let (Some(key), Some(executor), true) = (executor_key, &task.executor, new_executor)
            {
                let res = Resources::from_list(&executor.resources);
                consumed.add_all(&res);
                framework.executors.insert(key, (executor.clone(), res));
            }
            *remaining = remaining.minus(&consumed);
            let task_id = task.task_id.value.clone();
            let stored = stored_task(&task, &Resources::from_list(&task.resources));
            framework.tasks.insert(
                task_id.clone(),
                Task {
                    executor_id: task.executor.as_ref().map(|e| e.executor_id.value.clone()),
                    info: stored,
                    framework_id: framework_id.to_owned(),
                    agent_id: agent_id.to_owned(),
                    role: role.to_owned(),
                    state: TaskState::TaskStaging,
                    status_update_state: None,
                    status_update_uuid: None,
                    statuses: Vec::new(),
                    unreachable_time: None,
                },
            );
            tracing::info!(%framework_id, %task_id, %agent_id, "launching task");
            // The agent (and executor) see the resources with their allocation role.
            let agent_format = Format {
                multi_role: true,
                refinement: true,
            };
            let render_all = |list: &[Resource]| -> Vec<Resource> {
                list.iter()
                    .filter_map(|r| resources::for_framework(r, role, agent_format))
                    .collect()
            };
            task.resources = render_all(&task.resources);
            if let Some(executor) = task.executor.as_mut() {
                executor.resources = render_all(&executor.resources);
            }
            out.to_agent(
                index,
                ToAgent::RunTask {
                    framework: framework.info.clone(),
                    task,
                },
            );
        }
    }
}

fn validate_volume(v: &Resource) -> Result<(), String> {
    let Some(disk) = &v.disk else {
        return Err(format!(
            "Resource {} does not have DiskInfo",
            render(std::slice::from_ref(v))
        ));
    };
    let Some(persistence) = &disk.persistence else {
        return Err("'persistence' is not set in DiskInfo".into());
    };
    let Some(volume) = &disk.volume else {
        return Err("Expecting 'volume' to be set for persistent volume".into());
    };
    if volume.mode == v1::volume::Mode::Ro as i32 {
        return Err("Read-only persistent volume not supported".into());
    }
    if volume.host_path.is_some() {
        return Err("Expecting 'host_path' to be unset for persistent volume".into());
    }
    crate::ids::validate_id(&persistence.id)
        .map_err(|e| format!("Invalid persistence ID for persistent volume: {e}"))?;
    Ok(())
}
