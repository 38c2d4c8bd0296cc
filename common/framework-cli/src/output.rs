//! Human output: tables and detail views. `--json` output bypasses this.

use comfy_table::{Table, presets};
use scheduler_api::model::{Explanation, NodeStatus, PlanView};
use scheduler_core::plan::{PlanState, StepPhase};
use serde::Serialize;

use crate::progress::step_text;

/// Pretty JSON of a document that came from JSON (cannot fail in practice).
pub fn json<T: Serialize>(value: &T) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

fn table(header: &[&str]) -> Table {
    let mut table = Table::new();
    table
        .load_preset(presets::NOTHING)
        .set_header(header.to_vec());
    table
}

/// Renders a table kubectl-style: no borders, two spaces between columns.
fn render(mut table: Table) -> String {
    for column in table.column_iter_mut() {
        column.set_padding((0, 2));
    }
    table
        .to_string()
        .lines()
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join("\n")
}

fn snake(value: &impl Serialize) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => "?".into(),
    }
}

fn endpoints(node: &NodeStatus) -> String {
    match node.endpoints.len() {
        0 => "-".into(),
        1 => node.endpoints.values().cloned().collect(),
        _ => node
            .endpoints
            .iter()
            .map(|(name, e)| format!("{name}={e}"))
            .collect::<Vec<_>>()
            .join(","),
    }
}

/// What needs attention on a node, in a few words.
fn details(node: &NodeStatus) -> String {
    let mut parts = Vec::new();
    if let Some(reason) = &node.waiting_reason {
        parts.push(reason.clone());
    }
    if let Some(task) = &node.task
        && task.phase != scheduler_core::node::TaskPhase::Running
        && let Some(message) = &task.message
    {
        parts.push(message.clone());
    }
    if let Some(health) = &node.health
        && !health.ready
    {
        let detail = health
            .last_check
            .as_ref()
            .map(|c| c.detail.clone())
            .unwrap_or_else(|| snake(&health.state));
        parts.push(format!("not ready: {detail}"));
    }
    if node.update_pending {
        parts.push("update pending".into());
    }
    if node.replacing {
        parts.push("being replaced".into());
    }
    if node.failures > 0 {
        parts.push(format!("{} failures in a row", node.failures));
    }
    if let Some(failure) = &node.last_failure {
        parts.push(format!("last failure: {failure}"));
    }
    parts.join("; ")
}

/// The node list as a table.
pub fn node_table(nodes: &[NodeStatus], noun: &str) -> String {
    if nodes.is_empty() {
        return format!("no {noun}s");
    }
    let mut t = table(&["ID", "STAGE", "HOST", "ENDPOINT", "TASK", "DETAILS"]);
    for node in nodes {
        t.add_row(vec![
            node.id.clone(),
            snake(&node.stage),
            node.host.clone().unwrap_or_else(|| "-".into()),
            endpoints(node),
            node.task
                .as_ref()
                .map(|t| t.state.clone().unwrap_or_else(|| snake(&t.phase)))
                .unwrap_or_else(|| "-".into()),
            details(node),
        ]);
    }
    render(t)
}

fn indent(text: &str, by: &str) -> String {
    text.lines()
        .map(|l| format!("{by}{l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// One node in full.
pub fn node_details(node: &NodeStatus, noun: &str) -> String {
    let mut lines = vec![format!("{noun} {}", node.id)];
    let mut field = |name: &str, value: String| lines.push(format!("  {name:<13}{value}"));
    field(
        "stage:",
        format!("{} (goal: {})", snake(&node.stage), snake(&node.goal)),
    );
    if let Some(host) = &node.host {
        field(
            "host:",
            format!("{host} (agent {})", node.agent_id.as_deref().unwrap_or("?")),
        );
    }
    if !node.attributes.is_empty() {
        field(
            "attributes:",
            node.attributes
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(", "),
        );
    }
    if !node.endpoints.is_empty() {
        field(
            "endpoints:",
            node.endpoints
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(", "),
        );
    }
    if let Some(task) = &node.task {
        field(
            "task:",
            format!(
                "{} {} (generation {})",
                task.task_id,
                task.state.clone().unwrap_or_else(|| snake(&task.phase)),
                task.generation
            ),
        );
        if let Some(message) = &task.message {
            field("message:", message.clone());
        }
    }
    if let Some(reason) = &node.waiting_reason {
        field("waiting:", reason.clone());
    }
    if node.failures > 0 {
        field("failures:", node.failures.to_string());
    }
    if let Some(failure) = &node.last_failure {
        field("last failure:", failure.clone());
    }
    if node.update_pending {
        field(
            "update:",
            "a configuration change waits for the next restart".into(),
        );
    }
    if let Some(health) = &node.health {
        let mut parts = vec![snake(&health.state)];
        parts.push(if health.ready {
            "ready".into()
        } else {
            "not ready".into()
        });
        if let Some(pid) = health.pid {
            parts.push(format!("pid {pid}"));
        }
        if let Some(rss) = health.rss_bytes {
            parts.push(format!("rss {}", mib(rss)));
        }
        if let Some(up) = health.uptime_ms {
            parts.push(format!("up {}s", up / 1000));
        }
        let mut text = parts.join(", ");
        if let Some(check) = &health.last_check {
            text.push_str(&format!(
                "; last check {}: {}",
                if check.ok { "ok" } else { "failed" },
                check.detail
            ));
        }
        field("executor:", text);
    }
    lines.push("  config:".into());
    lines.push(indent(&json(&node.config), "    "));
    lines.join("\n")
}

/// Why a node is not placed.
pub fn explanation(explain: &Explanation, noun: &str) -> String {
    let mut text = format!("{noun} {}: {}", explain.node, snake(&explain.stage));
    if let Some(reason) = &explain.waiting_reason {
        text.push_str(&format!(" — {reason}"));
    }
    if explain.agents.is_empty() {
        text.push_str("\nno offer has been declined for it recently");
        return text;
    }
    let mut t = table(&["AGENT", "WHY THE OFFER DID NOT FIT"]);
    for (agent, reasons) in &explain.agents {
        t.add_row(vec![agent.clone(), reasons.join("; ")]);
    }
    format!("{text}\n{}", render(t))
}

fn state_text(plan: &PlanView) -> String {
    match &plan.state {
        PlanState::Active => "active".into(),
        PlanState::Paused { .. } => "paused".into(),
        PlanState::Aborted => "aborted".into(),
        PlanState::Complete => "complete".into(),
    }
}

/// The plan list as a table.
pub fn plan_table(plans: &[PlanView], noun: &str) -> String {
    if plans.is_empty() {
        return "no plans".into();
    }
    let mut t = table(&["ID", "KIND", "STATE", "PROGRESS", "CURRENT"]);
    for plan in plans {
        let current = match &plan.state {
            PlanState::Paused { reason } => reason.clone(),
            PlanState::Active => step_text(plan, noun),
            _ => String::new(),
        };
        t.add_row(vec![
            plan.id.clone(),
            snake(&plan.kind),
            state_text(plan),
            format!("{}/{}", plan.done, plan.total),
            current,
        ]);
    }
    render(t)
}

/// One plan and its steps.
pub fn plan_details(plan: &PlanView, noun: &str) -> String {
    let mut text = format!(
        "plan {} ({}, {}): {} — {}/{} steps complete",
        plan.id,
        snake(&plan.kind),
        snake(&plan.strategy),
        state_text(plan),
        plan.done,
        plan.total
    );
    if let PlanState::Paused { reason } = &plan.state {
        text.push_str(&format!("\npaused: {reason}"));
    }
    let mut t = table(&[&noun.to_uppercase(), "PHASE", "MESSAGE"]);
    for step in &plan.steps {
        t.add_row(vec![
            step.node.clone(),
            match step.phase {
                StepPhase::Pending => "pending".into(),
                other => snake(&other),
            },
            step.message.clone().unwrap_or_default(),
        ]);
    }
    format!("{text}\n{}", render(t))
}
