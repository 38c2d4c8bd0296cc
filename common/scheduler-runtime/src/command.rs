//! What the REST API asks of the runtime, and what it gets back.

use std::{collections::BTreeMap, sync::Arc};

use scheduler_core::planner::Explanations;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use crate::state::SchedulerState;

/// Why a command was refused; maps onto an HTTP status.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{}", .messages.join("; "))]
pub struct CommandError {
    /// The kind of refusal.
    pub kind: ErrorKind,
    /// Every reason, each a complete sentence for the operator.
    pub messages: Vec<String>,
}

/// The kinds of refusal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// A named node or plan does not exist (404).
    NotFound,
    /// The request is invalid (400/422).
    Invalid,
    /// It conflicts with the current state, e.g. another plan is running (409).
    Conflict,
    /// The scheduler cannot do it right now, e.g. not subscribed (503).
    Unavailable,
}

impl CommandError {
    /// A refusal with one reason.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        CommandError {
            kind,
            messages: vec![message.into()],
        }
    }
}

/// Result of a command.
pub type Reply<T> = oneshot::Sender<Result<T, CommandError>>;

/// Operations on plans.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlanAction {
    /// Stop starting new steps.
    Pause,
    /// Continue a paused plan.
    Resume,
    /// Give up the plan.
    Abort,
}

/// A request to the runtime (one writer: only the runtime changes state).
#[derive(Debug)]
pub enum Command {
    /// Add nodes with the given configuration; replies with the new plan ID.
    Add {
        /// New node IDs.
        ids: Vec<String>,
        /// Service configuration (defaults filled in by the service).
        config: serde_json::Value,
        /// Where the plan ID goes.
        reply: Reply<String>,
    },
    /// Merge `patch` into the nodes' configuration and roll it out.
    Update {
        /// Node IDs.
        ids: Vec<String>,
        /// JSON object merged into each node's configuration.
        patch: serde_json::Value,
        /// Where the plan ID goes.
        reply: Reply<String>,
    },
    /// Start stopped (or failed) nodes.
    Start {
        /// Node IDs.
        ids: Vec<String>,
        /// Acknowledgement.
        reply: Reply<()>,
    },
    /// Stop nodes, keeping their reservations and data.
    Stop {
        /// Node IDs.
        ids: Vec<String>,
        /// Acknowledgement.
        reply: Reply<()>,
    },
    /// Rolling restart; replies with the plan ID.
    Restart {
        /// Node IDs.
        ids: Vec<String>,
        /// Where the plan ID goes.
        reply: Reply<String>,
    },
    /// Move nodes to new agents; replies with the plan ID.
    Replace {
        /// Node IDs.
        ids: Vec<String>,
        /// Where the plan ID goes.
        reply: Reply<String>,
    },
    /// Remove nodes: kill, destroy volumes, unreserve.
    Remove {
        /// Node IDs.
        ids: Vec<String>,
        /// Acknowledgement.
        reply: Reply<()>,
    },
    /// Pause, resume or abort a plan.
    Plan {
        /// Plan ID.
        id: String,
        /// What to do.
        action: PlanAction,
        /// Acknowledgement.
        reply: Reply<()>,
    },
    /// Ask a node's executor something (status, log tail, admin command).
    Ask {
        /// Node ID.
        id: String,
        /// The request.
        request: executor_protocol::Request,
        /// The executor's answer.
        reply: Reply<executor_protocol::Outcome>,
    },
}

/// A read-only copy of everything the API shows, published after each change.
/// The large parts are shared with the previous snapshot while unchanged, so
/// publishing after every event does not copy every node.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// The durable state.
    pub state: Arc<SchedulerState>,
    /// Whether a subscription is live.
    pub subscribed: bool,
    /// The master we are subscribed to.
    pub master: Option<String>,
    /// Set when the master removed the framework (or another fatal error): `/health` fails.
    pub fatal: Option<String>,
    /// Why nodes did not fit recent offers, per agent.
    pub explanations: Arc<Explanations>,
    /// The latest health report of each node's executor.
    pub health: Arc<BTreeMap<String, executor_protocol::Health>>,
    /// The service's endpoints.
    pub endpoints: Arc<serde_json::Value>,
    /// Counters for `/metrics`.
    pub counters: BTreeMap<&'static str, u64>,
    /// Tasks the master has not yet answered for since the last subscription.
    pub reconciling: usize,
    /// How long the last completed reconciliation took, from SUBSCRIBED to the last answer.
    pub last_reconciliation_ms: Option<u64>,
}
