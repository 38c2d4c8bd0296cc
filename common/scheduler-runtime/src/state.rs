//! What the scheduler persists: one document, written before acting on it.

use std::collections::BTreeMap;

use scheduler_core::{node::Node, plan::Plan};
use serde::{Deserialize, Serialize};

/// The scheduler's whole durable state.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SchedulerState {
    /// Assigned by the master on first subscription; reused on every re-subscription.
    pub framework_id: Option<String>,
    /// Unique per framework instance: labels our reservations so that another
    /// framework sharing the role never has its reservations touched.
    pub instance: String,
    /// Nodes by ID.
    pub nodes: BTreeMap<String, Node>,
    /// Plans, oldest first (finished ones kept for the record).
    pub plans: Vec<Plan>,
    /// Counter for plan IDs.
    pub plan_counter: u64,
    /// Framework-wide service settings (e.g. the Kafka cluster ID), created once.
    #[serde(default)]
    pub settings: serde_json::Value,
}

impl SchedulerState {
    /// A fresh state with a new instance ID.
    pub fn new(instance: impl Into<String>) -> Self {
        SchedulerState {
            instance: instance.into(),
            ..Default::default()
        }
    }

    /// The open plan (active or paused), if any; at most one is open at a time.
    pub fn open_plan(&self) -> Option<&Plan> {
        self.plans.iter().find(|p| p.is_open())
    }

    /// The open plan, mutably.
    pub fn open_plan_mut(&mut self) -> Option<&mut Plan> {
        self.plans.iter_mut().find(|p| p.is_open())
    }
}

/// Where the runtime saves its state; called before any call that relies on it.
pub trait StateSink: Send + Sync + 'static {
    /// Persists `state` durably; an error stops the scheduler from acting.
    fn save<'a>(
        &'a self,
        state: &'a SchedulerState,
    ) -> futures::future::BoxFuture<'a, Result<(), String>>;
}
