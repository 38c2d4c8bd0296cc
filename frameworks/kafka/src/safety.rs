//! Pure verdicts over a snapshot of the cluster: may a broker be taken down,
//! and is a restarted broker back in full health. No I/O; the snapshot is
//! read by [`crate::admin`].

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::config::SafetyLevel;

/// One partition as the cluster metadata shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionState {
    /// Partition number.
    pub id: i32,
    /// Leader broker, or -1 when offline.
    pub leader: i32,
    /// Assigned replicas.
    pub replicas: Vec<i32>,
    /// In-sync replicas.
    pub isr: Vec<i32>,
}

/// One topic as the cluster metadata shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicState {
    /// Topic name.
    pub name: String,
    /// Its effective `min.insync.replicas`, when it could be read.
    pub min_isr: Option<u32>,
    /// Its partitions.
    pub partitions: Vec<PartitionState>,
}

/// A snapshot of the cluster.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterState {
    /// Registered brokers: ID → `host:port`.
    pub brokers: BTreeMap<i32, String>,
    /// Topics, internal ones included.
    pub topics: Vec<TopicState>,
}

/// The answer of a check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// Whether the check passed.
    pub ok: bool,
    /// What it found; on failure, what blocks (partitions by name).
    pub message: String,
}

impl Verdict {
    fn pass(message: impl Into<String>) -> Self {
        Verdict {
            ok: true,
            message: message.into(),
        }
    }

    fn fail(message: impl Into<String>) -> Self {
        Verdict {
            ok: false,
            message: message.into(),
        }
    }
}

/// How many blocking partitions a message names before summarising.
const NAMED: usize = 10;

fn list<T: std::fmt::Display>(items: &[T]) -> String {
    let mut text = items
        .iter()
        .take(NAMED)
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > NAMED {
        text.push_str(&format!(" and {} more", items.len() - NAMED));
    }
    text
}

impl ClusterState {
    /// Partitions that are under-replicated (ISR smaller than replicas).
    pub fn under_replicated(&self) -> usize {
        self.partitions()
            .filter(|(_, p)| p.isr.len() < p.replicas.len())
            .count()
    }

    /// Partitions without a leader.
    pub fn offline(&self) -> usize {
        self.partitions().filter(|(_, p)| p.leader < 0).count()
    }

    fn partitions(&self) -> impl Iterator<Item = (&TopicState, &PartitionState)> {
        self.topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(move |p| (t, p)))
    }

    fn missing(&self, expected: &BTreeSet<i32>) -> Vec<i32> {
        expected
            .iter()
            .filter(|id| !self.brokers.contains_key(id))
            .copied()
            .collect()
    }

    /// One view out of what several brokers each answered, taking the worst
    /// of them: a broker counts as registered only when every view shows it,
    /// a topic or partition any view shows is kept, a partition's replicas
    /// are the union and its ISR only the replicas every view that knows the
    /// partition has in sync. Brokers learn of new topics and ISR changes at
    /// different moments; a check that trusted one of them could pass on a
    /// broker that has not yet heard of a topic that needs every replica.
    /// `min_isr` is kept from the first view that has the topic.
    pub fn merged(views: &[ClusterState]) -> ClusterState {
        let Some((first, rest)) = views.split_first() else {
            return ClusterState::default();
        };
        let mut merged = first.clone();
        merged
            .brokers
            .retain(|id, _| rest.iter().all(|v| v.brokers.contains_key(id)));
        let mut index: BTreeMap<String, usize> = merged
            .topics
            .iter()
            .enumerate()
            .map(|(at, t)| (t.name.clone(), at))
            .collect();
        for topic in rest.iter().flat_map(|v| &v.topics) {
            let Some(&at) = index.get(&topic.name) else {
                index.insert(topic.name.clone(), merged.topics.len());
                merged.topics.push(topic.clone());
                continue;
            };
            let known = &mut merged.topics[at];
            for partition in &topic.partitions {
                match known.partitions.iter_mut().find(|k| k.id == partition.id) {
                    None => known.partitions.push(partition.clone()),
                    Some(k) => {
                        for replica in &partition.replicas {
                            if !k.replicas.contains(replica) {
                                k.replicas.push(*replica);
                            }
                        }
                        k.isr.retain(|b| partition.isr.contains(b));
                    }
                }
            }
        }
        merged
    }

    /// Partitions that would fall below `min.insync.replicas` without `broker`.
    ///
    /// A topic whose setting could not be read (a broker that has not learnt
    /// of a new topic yet answers for it with an error) blocks: guessing a
    /// default could take down a replica the topic needs.
    pub fn would_fall_below_min_isr(&self, broker: i32) -> Vec<String> {
        self.partitions()
            .filter(|(_, p)| p.isr.contains(&broker))
            .filter_map(|(t, p)| match t.min_isr {
                Some(min) => (p.isr.len() - 1 < min as usize).then(|| {
                    format!(
                        "{}-{} (isr {:?}, min.insync.replicas {min})",
                        t.name, p.id, p.isr
                    )
                }),
                None => Some(format!(
                    "{}-{} (isr {:?}, min.insync.replicas could not be read)",
                    t.name, p.id, p.isr
                )),
            })
            .collect()
    }

    /// Partitions hosted by `broker` whose ISR does not (yet) include it.
    pub fn out_of_isr(&self, broker: i32) -> Vec<String> {
        self.partitions()
            .filter(|(_, p)| p.replicas.contains(&broker) && !p.isr.contains(&broker))
            .map(|(t, p)| format!("{}-{} (isr {:?})", t.name, p.id, p.isr))
            .collect()
    }
}

/// May `broker` be taken down now? `expected` are the brokers the scheduler
/// runs (they should all be registered).
pub fn safe_to_stop(
    level: SafetyLevel,
    broker: i32,
    expected: &BTreeSet<i32>,
    state: &ClusterState,
) -> Verdict {
    if level == SafetyLevel::None {
        return Verdict::pass("safety checks are off (level none)");
    }
    let missing = state.missing(expected);
    if !missing.is_empty() {
        return Verdict::fail(format!(
            "brokers {} are not registered in the cluster metadata (registered: {:?})",
            list(&missing),
            state.brokers.keys().collect::<Vec<_>>()
        ));
    }
    if level == SafetyLevel::Ready {
        return Verdict::pass(format!("all {} brokers are registered", expected.len()));
    }
    let blocking = state.would_fall_below_min_isr(broker);
    if !blocking.is_empty() {
        return Verdict::fail(format!(
            "taking broker {broker} down would leave {} partition(s) below min.insync.replicas: {}",
            blocking.len(),
            list(&blocking)
        ));
    }
    Verdict::pass(format!(
        "no partition would fall below min.insync.replicas without broker {broker}"
    ))
}

/// Is `broker`, just restarted, back: registered and (at level `isr`) in the
/// ISR of every partition it hosts?
pub fn healthy_after_restart(level: SafetyLevel, broker: i32, state: &ClusterState) -> Verdict {
    if level == SafetyLevel::None {
        return Verdict::pass("health checks are off (level none)");
    }
    if !state.brokers.contains_key(&broker) {
        return Verdict::fail(format!(
            "broker {broker} is not registered in the cluster metadata yet (registered: {:?})",
            state.brokers.keys().collect::<Vec<_>>()
        ));
    }
    if level < SafetyLevel::Isr {
        return Verdict::pass(format!("broker {broker} is registered"));
    }
    let lagging = state.out_of_isr(broker);
    if !lagging.is_empty() {
        return Verdict::fail(format!(
            "broker {broker} is not yet back in the ISR of {} partition(s): {}",
            lagging.len(),
            list(&lagging)
        ));
    }
    Verdict::pass(format!(
        "broker {broker} is registered and in the ISR of every partition it hosts"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn partition(id: i32, replicas: &[i32], isr: &[i32]) -> PartitionState {
        PartitionState {
            id,
            leader: isr.first().copied().unwrap_or(-1),
            replicas: replicas.to_vec(),
            isr: isr.to_vec(),
        }
    }

    fn state() -> ClusterState {
        ClusterState {
            brokers: (0..3).map(|i| (i, format!("h:{}", 9092 + i))).collect(),
            topics: vec![
                TopicState {
                    name: "events".into(),
                    min_isr: Some(2),
                    partitions: vec![
                        partition(0, &[0, 1, 2], &[0, 1, 2]),
                        partition(1, &[1, 2, 0], &[1, 2]),
                    ],
                },
                TopicState {
                    name: "logs".into(),
                    min_isr: Some(1),
                    partitions: vec![partition(0, &[2], &[2])],
                },
            ],
        }
    }

    fn all() -> BTreeSet<i32> {
        (0..3).collect()
    }

    #[test]
    fn levels_none_and_ready() {
        let mut s = state();
        assert!(safe_to_stop(SafetyLevel::None, 1, &all(), &s).ok);
        assert!(safe_to_stop(SafetyLevel::Ready, 1, &all(), &s).ok);
        s.brokers.remove(&2);
        let v = safe_to_stop(SafetyLevel::Ready, 1, &all(), &s);
        assert!(!v.ok);
        assert!(
            v.message.contains("brokers 2 are not registered"),
            "{}",
            v.message
        );
    }

    #[test]
    fn min_isr_names_the_blocking_partitions() {
        let s = state();
        // Broker 0 is not in events-1's ISR; events-0 keeps 2 of 3.
        assert!(safe_to_stop(SafetyLevel::MinIsr, 0, &all(), &s).ok);
        let v = safe_to_stop(SafetyLevel::MinIsr, 1, &all(), &s);
        assert!(!v.ok);
        assert!(
            v.message
                .contains("events-1 (isr [1, 2], min.insync.replicas 2)"),
            "{}",
            v.message
        );
        assert!(!v.message.contains("events-0"), "{}", v.message);
        // logs-0 only has broker 2; with the broker default of 1 it blocks too.
        let v = safe_to_stop(SafetyLevel::Isr, 2, &all(), &s);
        assert!(v.message.contains("logs-0"), "{}", v.message);
        assert!(v.message.contains("2 partition(s)"), "{}", v.message);
    }

    #[test]
    fn a_topic_whose_min_isr_could_not_be_read_blocks() {
        let mut s = state();
        s.topics[1].partitions = vec![partition(0, &[0, 1, 2], &[0, 1, 2])];
        assert!(safe_to_stop(SafetyLevel::MinIsr, 0, &all(), &s).ok);
        s.topics[1].min_isr = None;
        let v = safe_to_stop(SafetyLevel::MinIsr, 0, &all(), &s);
        assert!(
            !v.ok
                && v.message
                    .contains("logs-0 (isr [0, 1, 2], min.insync.replicas could not be read)"),
            "{}",
            v.message
        );
    }

    #[test]
    fn health_waits_for_the_isr_at_level_isr_only() {
        let mut s = state();
        assert!(!healthy_after_restart(SafetyLevel::Isr, 0, &s).ok);
        let v = healthy_after_restart(SafetyLevel::Isr, 0, &s);
        assert!(v.message.contains("events-1 (isr [1, 2])"), "{}", v.message);
        assert!(healthy_after_restart(SafetyLevel::MinIsr, 0, &s).ok);
        assert!(healthy_after_restart(SafetyLevel::Isr, 1, &s).ok);
        s.brokers.remove(&1);
        assert!(!healthy_after_restart(SafetyLevel::Ready, 1, &s).ok);
        assert!(healthy_after_restart(SafetyLevel::None, 1, &s).ok);
    }

    #[test]
    fn a_broker_that_has_not_seen_a_new_topic_does_not_make_a_stop_safe() {
        let mut fresh = state();
        fresh.topics.push(TopicState {
            name: "strict".into(),
            min_isr: Some(3),
            partitions: vec![partition(0, &[0, 1, 2], &[0, 1, 2])],
        });
        let stale = state();
        assert!(safe_to_stop(SafetyLevel::MinIsr, 0, &all(), &stale).ok);
        for views in [
            [stale.clone(), fresh.clone()],
            [fresh.clone(), stale.clone()],
        ] {
            let merged = ClusterState::merged(&views);
            let v = safe_to_stop(SafetyLevel::MinIsr, 0, &all(), &merged);
            assert!(!v.ok && v.message.contains("strict-0"), "{}", v.message);
        }
    }

    #[test]
    fn merged_views_take_the_smallest_isr_and_only_brokers_all_know() {
        let mut a = state();
        let mut b = state();
        // a has seen broker 0 drop out of events-0's ISR; b still has it in.
        a.topics[0].partitions[0].isr = vec![1, 2];
        // b has seen broker 0 come back into events-1's ISR; a has not.
        b.topics[0].partitions[1].isr = vec![1, 2, 0];
        // b has a partition a has not heard of, and does not know broker 2.
        b.topics[1].partitions.push(partition(1, &[0], &[0]));
        b.brokers.remove(&2);
        let merged = ClusterState::merged(&[a, b]);
        assert_eq!(merged.brokers.keys().copied().collect::<Vec<_>>(), [0, 1]);
        let events = &merged.topics[0].partitions;
        assert_eq!(
            (events[0].isr.as_slice(), events[1].isr.as_slice()),
            (&[1, 2][..], &[1, 2][..])
        );
        assert_eq!(merged.topics[1].partitions.len(), 2);
        assert!(!healthy_after_restart(SafetyLevel::Isr, 0, &merged).ok);
        assert_eq!(ClusterState::merged(&[]), ClusterState::default());
        assert_eq!(ClusterState::merged(&[state()]), state());
    }

    #[test]
    fn counts_and_long_lists() {
        let mut s = state();
        assert_eq!((s.under_replicated(), s.offline()), (1, 0));
        s.topics[0].partitions = (0..15).map(|i| partition(i, &[0, 1], &[0, 1])).collect();
        let v = safe_to_stop(SafetyLevel::MinIsr, 0, &all(), &s);
        assert!(v.message.contains("and 5 more"), "{}", v.message);
        s.topics[1].partitions[0].leader = -1;
        assert_eq!(s.offline(), 1);
    }
}
