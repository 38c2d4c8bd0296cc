//! `/metrics` in the Prometheus text exposition format (version 0.0.4).
//!
//! Every series carries `framework="<name>"`, so one Prometheus can scrape
//! several frameworks with the same dashboards. Stages and plan states are
//! always listed, at zero when empty, so that series do not appear and vanish.

use std::{collections::BTreeMap, fmt::Write};

use scheduler_core::{
    node::{RelaunchPolicy, Stage},
    plan::PlanState,
};
use scheduler_runtime::Snapshot;

const STAGES: [(Stage, &str); 10] = [
    (Stage::Added, "added"),
    (Stage::Reserving, "reserving"),
    (Stage::Reserved, "reserved"),
    (Stage::Launching, "launching"),
    (Stage::Running, "running"),
    (Stage::Restarting, "restarting"),
    (Stage::Stopped, "stopped"),
    (Stage::Removing, "removing"),
    (Stage::Removed, "removed"),
    (Stage::Failed, "failed"),
];

const PLAN_STATES: [&str; 4] = ["active", "paused", "aborted", "complete"];

/// Escapes a label value: backslash, double quote and newline.
fn label(value: &str) -> String {
    value
        .replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', r"\n")
}

/// A counter name from a runtime counter key: letters, digits and `_` only.
fn metric_name(key: &str) -> String {
    key.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Renders the snapshot as Prometheus text.
pub(crate) fn render(snapshot: &Snapshot, framework: &str, policy: &RelaunchPolicy) -> String {
    let fw = label(framework);
    let mut out = String::new();

    header(
        &mut out,
        "scheduler_healthy",
        "gauge",
        "1 unless a fatal error stopped the framework.",
    );
    let _ = writeln!(
        out,
        "scheduler_healthy{{framework=\"{fw}\"}} {}",
        u8::from(snapshot.fatal.is_none())
    );
    header(
        &mut out,
        "scheduler_subscribed",
        "gauge",
        "1 while subscribed to a Mesos master.",
    );
    let _ = writeln!(
        out,
        "scheduler_subscribed{{framework=\"{fw}\"}} {}",
        u8::from(snapshot.subscribed)
    );

    header(
        &mut out,
        "scheduler_reconciling_tasks",
        "gauge",
        "Tasks the master has not yet answered for since the last subscription.",
    );
    let _ = writeln!(
        out,
        "scheduler_reconciling_tasks{{framework=\"{fw}\"}} {}",
        snapshot.reconciling
    );
    if let Some(ms) = snapshot.last_reconciliation_ms {
        header(
            &mut out,
            "scheduler_last_reconciliation_seconds",
            "gauge",
            "How long the last reconciliation took, from subscription to the last answer.",
        );
        let _ = writeln!(
            out,
            "scheduler_last_reconciliation_seconds{{framework=\"{fw}\"}} {:.3}",
            ms as f64 / 1000.0
        );
    }

    let mut stages: BTreeMap<&str, u64> = STAGES.iter().map(|(_, name)| (*name, 0)).collect();
    for node in snapshot.state.nodes.values() {
        let stage = node.stage(policy);
        if let Some((_, name)) = STAGES.iter().find(|(s, _)| *s == stage) {
            *stages.entry(name).or_default() += 1;
        }
    }
    header(
        &mut out,
        "scheduler_nodes",
        "gauge",
        "Nodes by lifecycle stage.",
    );
    for (stage, count) in &stages {
        let _ = writeln!(
            out,
            "scheduler_nodes{{framework=\"{fw}\",stage=\"{stage}\"}} {count}"
        );
    }

    let mut plans: BTreeMap<&str, u64> = PLAN_STATES.iter().map(|s| (*s, 0)).collect();
    for plan in &snapshot.state.plans {
        let state = match plan.state {
            PlanState::Active => "active",
            PlanState::Paused { .. } => "paused",
            PlanState::Aborted => "aborted",
            PlanState::Complete => "complete",
        };
        *plans.entry(state).or_default() += 1;
    }
    header(&mut out, "scheduler_plans", "gauge", "Plans by state.");
    for (state, count) in &plans {
        let _ = writeln!(
            out,
            "scheduler_plans{{framework=\"{fw}\",state=\"{state}\"}} {count}"
        );
    }

    header(
        &mut out,
        "scheduler_node_failures",
        "gauge",
        "Task failures in a row, per node.",
    );
    for node in snapshot.state.nodes.values() {
        let _ = writeln!(
            out,
            "scheduler_node_failures{{framework=\"{fw}\",node=\"{}\"}} {}",
            label(&node.id),
            node.failures
        );
    }
    header(
        &mut out,
        "scheduler_node_ready",
        "gauge",
        "1 when the node's executor last reported its service ready.",
    );
    for (node, health) in snapshot.health.iter() {
        let _ = writeln!(
            out,
            "scheduler_node_ready{{framework=\"{fw}\",node=\"{}\"}} {}",
            label(node),
            u8::from(health.ready)
        );
    }
    header(
        &mut out,
        "scheduler_node_rss_bytes",
        "gauge",
        "Resident memory of the node's service process, as its executor last reported.",
    );
    for (node, health) in snapshot.health.iter() {
        if let Some(rss) = health.rss_bytes {
            let _ = writeln!(
                out,
                "scheduler_node_rss_bytes{{framework=\"{fw}\",node=\"{}\"}} {rss}",
                label(node)
            );
        }
    }

    for (key, value) in &snapshot.counters {
        let name = format!("scheduler_{}_total", metric_name(key));
        header(
            &mut out,
            &name,
            "counter",
            &format!("Runtime counter `{key}`."),
        );
        let _ = writeln!(out, "{name}{{framework=\"{fw}\"}} {value}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_escaped_and_names_sanitized() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        assert_eq!(metric_name("offers.received-x"), "offers_received_x");
    }

    #[test]
    fn an_empty_snapshot_lists_every_stage_and_plan_state_at_zero() {
        let mut snapshot = Snapshot::default();
        snapshot.counters.insert("offers_received", 7);
        let text = render(&snapshot, "kafka", &RelaunchPolicy::default());
        for (_, stage) in STAGES {
            assert!(
                text.contains(&format!(
                    "scheduler_nodes{{framework=\"kafka\",stage=\"{stage}\"}} 0"
                )),
                "{text}"
            );
        }
        assert!(text.contains("scheduler_plans{framework=\"kafka\",state=\"paused\"} 0"));
        assert!(text.contains("scheduler_subscribed{framework=\"kafka\"} 0"));
        assert!(text.contains("# TYPE scheduler_offers_received_total counter"));
        assert!(text.contains("scheduler_offers_received_total{framework=\"kafka\"} 7"));
        assert!(text.contains("scheduler_reconciling_tasks{framework=\"kafka\"} 0"));
        assert!(!text.contains("scheduler_last_reconciliation_seconds"));
        snapshot.last_reconciliation_ms = Some(1250);
        let text = render(&snapshot, "kafka", &RelaunchPolicy::default());
        assert!(text.contains("scheduler_last_reconciliation_seconds{framework=\"kafka\"} 1.250"));
    }
}
