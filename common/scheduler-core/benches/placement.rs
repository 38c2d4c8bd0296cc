//! Placement speed: nodes with `hostname=unique` and rack spreading over
//! offers from many agents, as one `decide` round.
//! Targets: 300 nodes over 1,000 agents ≤ 5 ms; 1,000 nodes over 10,000 agents ≤ 100 ms.

use std::collections::BTreeMap;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use mesos_proto::v1::{self, resource};
use scheduler_core::{
    constraints::parse_list,
    node::{Node, NodeSpec, PortSpec, RelaunchPolicy},
    offer::Context,
    planner::{Config, Explanations, decide},
    resources::{Milli, Ranges, Reserver, Scalars, ports_resource, scalar_resource},
};

fn config() -> Config {
    Config {
        context: Context {
            reserver: Reserver {
                role: "kafka".into(),
                principal: "kafka".into(),
                instance: "bench".into(),
            },
            executor_overhead: Scalars {
                cpus: Milli(100),
                mem: Milli(64_000),
                disk: Milli::ZERO,
            },
            volume_path: "data".into(),
        },
        framework: "kafka".into(),
        policy: RelaunchPolicy::default(),
        decline_busy_seconds: 5.0,
        decline_idle_seconds: 3600.0,
    }
}

fn nodes(count: usize) -> BTreeMap<String, Node> {
    let constraints = parse_list("hostname=unique,rack=groupBy:10").expect("valid constraints");
    (0..count)
        .map(|i| {
            let spec = NodeSpec {
                resources: Scalars {
                    cpus: Milli(2000),
                    mem: Milli(4_096_000),
                    disk: Milli(50_000_000),
                },
                ports: vec![PortSpec {
                    name: "client".into(),
                    fixed: None,
                }],
                constraints: constraints.clone(),
            };
            (format!("{i:05}"), Node::new(format!("{i:05}"), spec))
        })
        .collect()
}

fn offers(count: usize) -> Vec<v1::Offer> {
    let role = Some("kafka");
    (0..count)
        .map(|i| v1::Offer {
            id: v1::OfferId {
                value: format!("offer-{i}"),
            },
            framework_id: v1::FrameworkId { value: "fw".into() },
            agent_id: v1::AgentId {
                value: format!("agent-{i}"),
            },
            hostname: format!("agent-{i}.example"),
            resources: vec![
                scalar_resource("cpus", Milli(16_000), None, role),
                scalar_resource("mem", Milli(65_536_000), None, role),
                scalar_resource("disk", Milli(1_000_000_000), None, role),
                ports_resource(&Ranges::new([(31000, 32000)]), None, role),
            ],
            attributes: vec![v1::Attribute {
                name: "rack".into(),
                r#type: v1::value::Type::Text as i32,
                text: Some(v1::value::Text {
                    value: format!("r{}", i % 10),
                }),
                ..Default::default()
            }],
            allocation_info: Some(resource::AllocationInfo {
                role: Some("kafka".into()),
            }),
            ..Default::default()
        })
        .collect()
}

fn placement(c: &mut Criterion) {
    let config = config();
    for (node_count, agent_count) in [(300, 1_000), (1_000, 10_000)] {
        let offers = offers(agent_count);
        c.bench_function(
            &format!("place {node_count} nodes over {agent_count} agents"),
            |b| {
                b.iter_batched(
                    || nodes(node_count),
                    |mut nodes| {
                        let decision =
                            decide(&mut nodes, &offers, 0, &config, &mut Explanations::new());
                        assert_eq!(
                            decision
                                .accepts
                                .iter()
                                .map(|a| a.launches.len())
                                .sum::<usize>(),
                            node_count,
                            "every node placed"
                        );
                        decision
                    },
                    BatchSize::LargeInput,
                );
            },
        );
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = placement
}
criterion_main!(benches);
