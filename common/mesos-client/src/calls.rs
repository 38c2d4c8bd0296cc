//! Pure builders for every scheduler call. They only assemble messages; the
//! framework ID is filled in by [`crate::Handle::call`] from the subscription.

use mesos_proto::v1::{
    self, AgentId, ExecutorId, Filters, FrameworkInfo, OfferId, TaskId, TaskStatus,
    scheduler::{Call, call},
};

fn call(r#type: call::Type) -> Call {
    Call {
        r#type: Some(r#type as i32),
        ..Default::default()
    }
}

/// SUBSCRIBE: `framework_info.id` is set for a re-subscription, and copied to
/// `Call.framework_id` because Mesos requires both to be equal.
pub fn subscribe(framework_info: FrameworkInfo, suppressed_roles: Vec<String>) -> Call {
    Call {
        framework_id: framework_info.id.clone(),
        subscribe: Some(call::Subscribe {
            framework_info,
            suppressed_roles,
        }),
        ..call(call::Type::Subscribe)
    }
}

/// TEARDOWN: removes the framework and kills all its tasks; its ID is dead afterwards.
pub fn teardown() -> Call {
    call(call::Type::Teardown)
}

/// ACCEPT: applies `operations` in order to the resources of `offer_ids`.
pub fn accept(
    offer_ids: Vec<OfferId>,
    operations: Vec<v1::offer::Operation>,
    filters: Option<Filters>,
) -> Call {
    Call {
        accept: Some(call::Accept {
            offer_ids,
            operations,
            filters,
        }),
        ..call(call::Type::Accept)
    }
}

/// DECLINE, with an optional `refuse_seconds` filter.
pub fn decline(offer_ids: Vec<OfferId>, refuse_seconds: Option<f64>) -> Call {
    Call {
        decline: Some(call::Decline {
            offer_ids,
            filters: refuse_seconds.map(|s| Filters {
                refuse_seconds: Some(s),
            }),
        }),
        ..call(call::Type::Decline)
    }
}

/// REVIVE: un-suppresses `roles` (all when empty) and clears their filters.
pub fn revive(roles: Vec<String>) -> Call {
    Call {
        revive: Some(call::Revive { roles }),
        ..call(call::Type::Revive)
    }
}

/// SUPPRESS: stops offers for `roles` (all when empty).
pub fn suppress(roles: Vec<String>) -> Call {
    Call {
        suppress: Some(call::Suppress { roles }),
        ..call(call::Type::Suppress)
    }
}

/// KILL a task, with an optional grace period overriding the task's kill policy.
pub fn kill(
    task_id: TaskId,
    agent_id: Option<AgentId>,
    grace_period: Option<std::time::Duration>,
) -> Call {
    Call {
        kill: Some(call::Kill {
            task_id,
            agent_id,
            kill_policy: grace_period.map(|g| v1::KillPolicy {
                grace_period: Some(v1::DurationInfo {
                    nanoseconds: i64::try_from(g.as_nanos()).unwrap_or(i64::MAX),
                }),
            }),
        }),
        ..call(call::Type::Kill)
    }
}

/// SHUTDOWN an executor.
pub fn shutdown(executor_id: ExecutorId, agent_id: AgentId) -> Call {
    Call {
        shutdown: Some(call::Shutdown {
            executor_id,
            agent_id,
        }),
        ..call(call::Type::Shutdown)
    }
}

/// ACKNOWLEDGE a status update; `None` when the update carries no uuid (or no
/// agent), since such updates must not be acknowledged.
pub fn acknowledge(status: &TaskStatus) -> Option<Call> {
    let uuid = status.uuid.clone()?;
    let agent_id = status.agent_id.clone()?;
    Some(Call {
        acknowledge: Some(call::Acknowledge {
            agent_id,
            task_id: status.task_id.clone(),
            uuid,
        }),
        ..call(call::Type::Acknowledge)
    })
}

/// RECONCILE: explicit for the given tasks, implicit (every task) when empty.
pub fn reconcile(tasks: Vec<(TaskId, Option<AgentId>)>) -> Call {
    Call {
        reconcile: Some(call::Reconcile {
            tasks: tasks
                .into_iter()
                .map(|(task_id, agent_id)| call::reconcile::Task { task_id, agent_id })
                .collect(),
        }),
        ..call(call::Type::Reconcile)
    }
}

/// MESSAGE: best-effort data to an executor.
pub fn message(agent_id: AgentId, executor_id: ExecutorId, data: Vec<u8>) -> Call {
    Call {
        message: Some(call::Message {
            agent_id,
            executor_id,
            data,
        }),
        ..call(call::Type::Message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscribe_copies_the_framework_id_to_the_call() {
        let info = FrameworkInfo {
            user: "u".into(),
            name: "n".into(),
            id: Some(v1::FrameworkId { value: "f".into() }),
            ..Default::default()
        };
        let call = subscribe(info, vec![]);
        assert_eq!(call.framework_id.map(|f| f.value), Some("f".into()));
        assert_eq!(call.r#type, Some(call::Type::Subscribe as i32));
    }

    #[test]
    fn updates_without_uuid_are_not_acknowledged() {
        let mut status = TaskStatus {
            task_id: TaskId { value: "t".into() },
            agent_id: Some(AgentId { value: "a".into() }),
            ..Default::default()
        };
        assert!(acknowledge(&status).is_none());
        status.uuid = Some(vec![1; 16]);
        let ack = acknowledge(&status).and_then(|c| c.acknowledge);
        assert_eq!(ack.map(|a| a.uuid), Some(vec![1; 16]));
    }

    #[test]
    fn decline_carries_the_filter() {
        let call = decline(vec![OfferId { value: "o".into() }], Some(3600.0));
        let filters = call.decline.and_then(|d| d.filters);
        assert_eq!(filters.and_then(|f| f.refuse_seconds), Some(3600.0));
    }
}
