//! Reliable status updates and the executor calls, as plain values.
//!
//! [`Updates`] keeps every update until the agent ACKNOWLEDGES it and every
//! launched task until some update of it is acknowledged; both go into the
//! next SUBSCRIBE, so an agent that restarted learns what it missed. It reads
//! no clock: callers pass `now`.

use std::time::{Duration, Instant};

use mesos_proto::v1::executor::{Call, call};
use mesos_proto::v1::{
    ExecutorId, FrameworkId, TaskId, TaskInfo, TaskState, TaskStatus, task_status,
};

/// What identifies this executor in every call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The framework.
    pub framework_id: FrameworkId,
    /// This executor.
    pub executor_id: ExecutorId,
}

impl Identity {
    fn call(&self, kind: call::Type) -> Call {
        Call {
            executor_id: self.executor_id.clone(),
            framework_id: self.framework_id.clone(),
            r#type: Some(kind as i32),
            ..Default::default()
        }
    }

    /// SUBSCRIBE with what the agent may not have seen yet.
    pub fn subscribe(&self, updates: &Updates) -> Call {
        Call {
            subscribe: Some(call::Subscribe {
                unacknowledged_tasks: updates.unacked_tasks().cloned().collect(),
                unacknowledged_updates: updates
                    .unacked()
                    .map(|status| call::Update {
                        status: status.clone(),
                    })
                    .collect(),
            }),
            ..self.call(call::Type::Subscribe)
        }
    }

    /// UPDATE carrying `status`.
    pub fn update(&self, status: TaskStatus) -> Call {
        Call {
            update: Some(call::Update { status }),
            ..self.call(call::Type::Update)
        }
    }

    /// MESSAGE to the scheduler.
    pub fn message(&self, data: Vec<u8>) -> Call {
        Call {
            message: Some(call::Message { data }),
            ..self.call(call::Type::Message)
        }
    }

    /// A new status with a fresh v4 uuid, `SOURCE_EXECUTOR` and this executor's id.
    pub fn status(&self, change: StatusChange, timestamp: f64) -> TaskStatus {
        TaskStatus {
            task_id: change.task_id,
            state: change.state as i32,
            message: change.message,
            timestamp: Some(timestamp),
            executor_id: Some(self.executor_id.clone()),
            healthy: change.healthy,
            source: Some(task_status::Source::Executor as i32),
            reason: change.reason.map(|r| r as i32),
            uuid: Some(uuid::Uuid::new_v4().as_bytes().to_vec()),
            ..Default::default()
        }
    }
}

/// A task state change to report.
#[derive(Clone, Debug, PartialEq)]
pub struct StatusChange {
    /// The task.
    pub task_id: TaskId,
    /// Its new state.
    pub state: TaskState,
    /// Human-readable detail.
    pub message: Option<String>,
    /// Health, when known.
    pub healthy: Option<bool>,
    /// Why, when it failed.
    pub reason: Option<task_status::Reason>,
}

impl StatusChange {
    /// A change to `state` with a message.
    pub fn new(task_id: TaskId, state: TaskState, message: impl Into<String>) -> Self {
        StatusChange {
            task_id,
            state,
            message: Some(message.into()).filter(|m| !m.is_empty()),
            healthy: None,
            reason: None,
        }
    }
}

#[derive(Debug)]
struct Pending {
    status: TaskStatus,
    last_sent: Option<Instant>,
}

/// The unacknowledged updates and tasks.
#[derive(Debug, Default)]
pub struct Updates {
    // Few entries (a handful per task), and order matters: a Vec is enough.
    pending: Vec<Pending>,
    tasks: Vec<TaskInfo>,
}

impl Updates {
    /// Records a launched task; it stays "unacknowledged" until an update of it is.
    pub fn launched(&mut self, task: TaskInfo) {
        if !self.tasks.iter().any(|t| t.task_id == task.task_id) {
            self.tasks.push(task);
        }
    }

    /// Records an update that is about to be sent.
    pub fn add(&mut self, status: TaskStatus) {
        self.pending.push(Pending {
            status,
            last_sent: None,
        });
    }

    /// Handles ACKNOWLEDGED; returns whether it matched an update we hold.
    pub fn acknowledged(&mut self, task_id: &TaskId, uuid: &[u8]) -> bool {
        let before = self.pending.len();
        self.pending
            .retain(|p| !(&p.status.task_id == task_id && p.status.uuid.as_deref() == Some(uuid)));
        let matched = self.pending.len() != before;
        if matched {
            self.tasks.retain(|t| &t.task_id != task_id);
        }
        matched
    }

    /// The updates not yet acknowledged, oldest first.
    pub fn unacked(&self) -> impl Iterator<Item = &TaskStatus> {
        self.pending.iter().map(|p| &p.status)
    }

    /// The tasks none of whose updates was acknowledged yet.
    pub fn unacked_tasks(&self) -> impl Iterator<Item = &TaskInfo> {
        self.tasks.iter()
    }

    /// Whether nothing awaits acknowledgement.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Whether `task_id` has an unacknowledged update.
    pub fn has_pending(&self, task_id: &TaskId) -> bool {
        self.pending.iter().any(|p| &p.status.task_id == task_id)
    }

    /// The updates to (re)send now: never sent, or sent more than `retry` ago.
    /// Marks them sent at `now`.
    pub fn due(&mut self, now: Instant, retry: Duration) -> Vec<TaskStatus> {
        let mut due = Vec::new();
        for p in &mut self.pending {
            if p.last_sent
                .is_none_or(|at| now.saturating_duration_since(at) >= retry)
            {
                p.last_sent = Some(now);
                due.push(p.status.clone());
            }
        }
        due
    }

    /// Forgets when updates were sent, so that all go out after a reconnect
    /// (the agent de-duplicates by uuid).
    pub fn mark_unsent(&mut self) {
        for p in &mut self.pending {
            p.last_sent = None;
        }
    }

    /// When the oldest sent update becomes due again, if any.
    pub fn next_due(&self, retry: Duration) -> Option<Instant> {
        self.pending
            .iter()
            .filter_map(|p| p.last_sent.map(|at| at + retry))
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity() -> Identity {
        Identity {
            framework_id: FrameworkId { value: "F".into() },
            executor_id: ExecutorId { value: "E".into() },
        }
    }

    fn task(id: &str) -> TaskInfo {
        TaskInfo {
            name: id.into(),
            task_id: TaskId { value: id.into() },
            ..Default::default()
        }
    }

    #[test]
    fn statuses_are_fresh_and_from_the_executor() {
        let id = identity();
        let change = StatusChange::new(TaskId { value: "t".into() }, TaskState::TaskRunning, "");
        let a = id.status(change.clone(), 1.0);
        let b = id.status(change, 1.0);
        assert_ne!(a.uuid, b.uuid);
        let uuid = uuid::Uuid::from_slice(a.uuid.as_deref().unwrap_or_default()).expect("16 bytes");
        assert_eq!(uuid.get_version_num(), 4);
        assert_eq!(a.source(), task_status::Source::Executor);
        assert_eq!(a.executor_id, Some(id.executor_id.clone()));
        assert_eq!(a.message, None);
    }

    #[test]
    fn subscribe_carries_what_was_not_acknowledged() {
        let id = identity();
        let mut updates = Updates::default();
        updates.launched(task("t1"));
        updates.launched(task("t2"));
        let t1 = TaskId { value: "t1".into() };
        let s1 = id.status(
            StatusChange::new(t1.clone(), TaskState::TaskStarting, ""),
            1.0,
        );
        let s2 = id.status(
            StatusChange::new(t1.clone(), TaskState::TaskRunning, ""),
            2.0,
        );
        updates.add(s1.clone());
        updates.add(s2.clone());

        let sub = id.subscribe(&updates).subscribe.expect("payload");
        assert_eq!(sub.unacknowledged_tasks.len(), 2);
        assert_eq!(sub.unacknowledged_updates.len(), 2);

        assert!(updates.acknowledged(&t1, s1.uuid.as_deref().unwrap_or_default()));
        assert!(!updates.acknowledged(&t1, &[0; 16]));
        let sub = id.subscribe(&updates).subscribe.expect("payload");
        assert_eq!(sub.unacknowledged_tasks, vec![task("t2")]);
        assert_eq!(
            sub.unacknowledged_updates,
            vec![call::Update { status: s2 }]
        );
        assert!(updates.has_pending(&t1));
    }

    #[test]
    fn resends_after_the_retry_interval() {
        let id = identity();
        let mut updates = Updates::default();
        let t = TaskId { value: "t".into() };
        updates.add(id.status(StatusChange::new(t, TaskState::TaskRunning, ""), 1.0));
        let retry = Duration::from_secs(10);
        let t0 = Instant::now();
        assert_eq!(updates.due(t0, retry).len(), 1);
        assert!(updates.due(t0 + Duration::from_secs(5), retry).is_empty());
        assert_eq!(updates.next_due(retry), Some(t0 + retry));
        assert_eq!(updates.due(t0 + retry, retry).len(), 1);
        updates.mark_unsent();
        assert_eq!(updates.due(t0 + retry, retry).len(), 1);
    }
}
