//! Talking to the brokers with rdkafka: the cluster snapshot the checks read,
//! and the topic operations behind `topic list|add|describe|update`.
//!
//! Every call has a deadline; blocking rdkafka calls run on tokio's blocking
//! pool. A [`KafkaAdmin`] is cheap enough to create per operation.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use rdkafka::{
    ClientConfig,
    admin::{
        AdminClient, AdminOptions, AlterConfig, ConfigSource, NewPartitions, NewTopic,
        ResourceSpecifier, TopicReplication,
    },
    client::DefaultClientContext,
    config::RDKafkaLogLevel,
    error::{KafkaError, RDKafkaErrorCode},
    metadata::Metadata,
};
use serde::{Deserialize, Serialize};

use crate::{
    error::{Error, Result},
    protocol,
    safety::{ClusterState, PartitionState, TopicState},
};

/// An rdkafka admin client bound to one cluster.
pub struct KafkaAdmin {
    client: Arc<AdminClient<DefaultClientContext>>,
    bootstrap: String,
    timeout: Duration,
}

/// A topic in `topic list`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicSummary {
    /// Name.
    pub name: String,
    /// Number of partitions.
    pub partitions: usize,
    /// Replicas of its first partition.
    pub replication_factor: usize,
    /// Partitions whose ISR is smaller than their replica set.
    pub under_replicated: usize,
    /// Partitions without a leader.
    pub offline: usize,
}

/// What `topic add` creates.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicSpec {
    /// Name.
    pub name: String,
    /// Number of partitions.
    pub partitions: i32,
    /// Replicas per partition.
    pub replication_factor: i32,
    /// Topic settings, e.g. `min.insync.replicas`.
    #[serde(default)]
    pub configs: BTreeMap<String, String>,
}

/// What `topic describe` shows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicDescription {
    /// Name.
    pub name: String,
    /// Partitions with leader, replicas and ISR.
    pub partitions: Vec<PartitionState>,
    /// Settings set on the topic itself (not inherited defaults).
    pub configs: BTreeMap<String, String>,
}

/// What `topic update` changes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicUpdate {
    /// Raise the partition count to this (Kafka cannot lower it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partitions: Option<i32>,
    /// Settings to set (`Some`) or reset to the default (`None`).
    #[serde(default)]
    pub configs: BTreeMap<String, Option<String>>,
}

/// Kafka's rules for topic names.
pub fn topic_name_problem(name: &str) -> Option<String> {
    if name.is_empty() || name.len() > 249 || name == "." || name == ".." {
        Some(format!(
            "topic name {name:?} must be 1 to 249 characters and not '.' or '..'"
        ))
    } else if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        Some(format!(
            "topic name {name:?} may contain only letters, digits, '.', '_' and '-'"
        ))
    } else {
        None
    }
}

impl TopicSpec {
    fn problems(&self) -> Vec<String> {
        let mut p: Vec<String> = topic_name_problem(&self.name).into_iter().collect();
        if self.partitions < 1 {
            p.push(format!(
                "partitions must be at least 1, not {}",
                self.partitions
            ));
        }
        if self.replication_factor < 1 {
            p.push(format!(
                "replication factor must be at least 1, not {}",
                self.replication_factor
            ));
        }
        p
    }
}

/// Whether rdkafka failed a request because it dropped the connection under
/// it: the bootstrap connection, replaced once the brokers are known (right
/// after a deploy), or a broker that restarted. The request can be sent again.
fn is_transient(error: &KafkaError) -> bool {
    matches!(
        error.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::DestroyBroker
                | RDKafkaErrorCode::BrokerTransportFailure
                | RDKafkaErrorCode::AllBrokersDown
        )
    )
}

fn refused(operation: &str, code: impl std::fmt::Display) -> Error {
    Error::Refused {
        operation: operation.to_owned(),
        reason: code.to_string(),
    }
}

impl KafkaAdmin {
    /// A client for the cluster reachable at `bootstrap` (`host:port,…`).
    pub fn connect(bootstrap: &str, timeout: Duration) -> Result<Self> {
        if bootstrap.trim().is_empty() {
            return Err(Error::NoBrokers);
        }
        let millis = timeout.as_millis().clamp(100, 300_000).to_string();
        let client: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("client.id", "kafka-mesos")
            .set("socket.timeout.ms", &millis)
            // A broker being restarted is expected; its refused connections are not news.
            .set("log.connection.close", "false")
            .set_log_level(RDKafkaLogLevel::Critical)
            .create()
            .map_err(|source| Error::Client {
                bootstrap: bootstrap.to_owned(),
                source,
            })?;
        Ok(KafkaAdmin {
            client: Arc::new(client),
            bootstrap: bootstrap.to_owned(),
            timeout,
        })
    }

    /// The bootstrap servers it was created with.
    pub fn bootstrap(&self) -> &str {
        &self.bootstrap
    }

    fn options(&self) -> AdminOptions {
        AdminOptions::new()
            .request_timeout(Some(self.timeout))
            .operation_timeout(Some(self.timeout))
    }

    async fn metadata(&self, topic: Option<String>) -> Result<Metadata> {
        let client = self.client.clone();
        let timeout = self.timeout;
        let result = tokio::task::spawn_blocking(move || {
            client.inner().fetch_metadata(topic.as_deref(), timeout)
        })
        .await
        .map_err(Error::Cancelled)?;
        result.map_err(|source| Error::Metadata {
            bootstrap: self.bootstrap.clone(),
            source,
        })
    }

    /// Effective `min.insync.replicas` of each topic (missing when unreadable).
    async fn min_isr(&self, topics: &[String]) -> BTreeMap<String, u32> {
        if topics.is_empty() {
            return BTreeMap::new();
        }
        let specifiers: Vec<ResourceSpecifier<'_>> = topics
            .iter()
            .map(|t| ResourceSpecifier::Topic(t.as_str()))
            .collect();
        let Ok(results) = self
            .client
            .describe_configs(&specifiers, &self.options())
            .await
        else {
            return BTreeMap::new();
        };
        results
            .into_iter()
            .flatten()
            .filter_map(|resource| {
                let name = match &resource.specifier {
                    rdkafka::admin::OwnedResourceSpecifier::Topic(name) => name.clone(),
                    _ => return None,
                };
                let value = resource
                    .get("min.insync.replicas")?
                    .value
                    .as_deref()?
                    .parse()
                    .ok()?;
                Some((name, value))
            })
            .collect()
    }

    /// A snapshot of brokers, topics, partitions and each topic's
    /// `min.insync.replicas`, as the broker rdkafka asks sees them.
    pub async fn cluster_state(&self) -> Result<ClusterState> {
        let metadata = self.metadata(None).await?;
        let mut state = ClusterState {
            brokers: metadata
                .brokers()
                .iter()
                .map(|b| (b.id(), format!("{}:{}", b.host(), b.port())))
                .collect(),
            topics: metadata
                .topics()
                .iter()
                .filter(|t| t.error().is_none())
                .map(|t| TopicState {
                    name: t.name().to_owned(),
                    min_isr: None,
                    partitions: t
                        .partitions()
                        .iter()
                        .map(|p| PartitionState {
                            id: p.id(),
                            leader: p.leader(),
                            replicas: p.replicas().to_vec(),
                            isr: p.isr().to_vec(),
                        })
                        .collect(),
                })
                .collect(),
        };
        self.read_min_isr(&mut state).await;
        Ok(state)
    }

    /// The snapshot the safety and health checks decide on: every broker at
    /// `endpoints` (`host:port`) is asked for its own metadata and the views
    /// are merged taking the worst of them ([`ClusterState::merged`]). A
    /// broker that does not answer fails it: its view could be the one that
    /// knows a topic the others have not heard of yet.
    pub async fn checked_state(&self, endpoints: &[String]) -> Result<ClusterState> {
        if endpoints.is_empty() {
            return Err(Error::NoBrokers);
        }
        let answers = futures::future::join_all(
            endpoints
                .iter()
                .map(|e| protocol::metadata(e, true, self.timeout)),
        )
        .await;
        let views = answers
            .into_iter()
            .map(|answer| answer.map(|m| protocol::cluster_state(&m)))
            .collect::<Result<Vec<_>>>()?;
        let mut state = ClusterState::merged(&views);
        self.read_min_isr(&mut state).await;
        Ok(state)
    }

    async fn read_min_isr(&self, state: &mut ClusterState) {
        let names: Vec<String> = state.topics.iter().map(|t| t.name.clone()).collect();
        let min_isr = self.min_isr(&names).await;
        for topic in &mut state.topics {
            topic.min_isr = min_isr.get(&topic.name).copied();
        }
    }

    /// Every topic with its partition count, replication and health.
    pub async fn list_topics(&self) -> Result<Vec<TopicSummary>> {
        let metadata = self.metadata(None).await?;
        let mut topics: Vec<TopicSummary> = metadata
            .topics()
            .iter()
            .filter(|t| t.error().is_none())
            .map(|t| TopicSummary {
                name: t.name().to_owned(),
                partitions: t.partitions().len(),
                replication_factor: t.partitions().first().map_or(0, |p| p.replicas().len()),
                under_replicated: t
                    .partitions()
                    .iter()
                    .filter(|p| p.isr().len() < p.replicas().len())
                    .count(),
                offline: t.partitions().iter().filter(|p| p.leader() < 0).count(),
            })
            .collect();
        topics.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(topics)
    }

    /// Creates a topic.
    pub async fn create_topic(&self, spec: &TopicSpec) -> Result<()> {
        let problems = spec.problems();
        if !problems.is_empty() {
            return Err(Error::InvalidTopic(problems));
        }
        let operation = format!("create topic {}", spec.name);
        let mut topic = NewTopic::new(
            &spec.name,
            spec.partitions,
            TopicReplication::Fixed(spec.replication_factor),
        );
        for (key, value) in &spec.configs {
            topic = topic.set(key, value);
        }
        let deadline = tokio::time::Instant::now() + self.timeout;
        let mut resent = false;
        let results = loop {
            match self.client.create_topics([&topic], &self.options()).await {
                Ok(results) => break results,
                Err(source) if is_transient(&source) && tokio::time::Instant::now() < deadline => {
                    resent = true;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(source) => {
                    return Err(Error::Admin {
                        operation: operation.clone(),
                        source,
                    });
                }
            }
        };
        for result in results {
            match result {
                // The attempt that was cut short may have created it.
                Err((_, RDKafkaErrorCode::TopicAlreadyExists)) if resent => {}
                Err((_, code)) => return Err(refused(&operation, code)),
                Ok(_) => {}
            }
        }
        self.wait_for_leaders(&spec.name).await
    }

    /// Waits until every partition of a new topic has a leader in the
    /// metadata, so that the topic is usable (and describable) once created.
    async fn wait_for_leaders(&self, name: &str) -> Result<()> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        loop {
            let metadata = self.metadata(Some(name.to_owned())).await?;
            let ready = metadata.topics().iter().any(|t| {
                t.name() == name
                    && t.error().is_none()
                    && !t.partitions().is_empty()
                    && t.partitions().iter().all(|p| p.leader() >= 0)
            });
            if ready {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(Error::Refused {
                    operation: format!("create topic {name}"),
                    reason: format!(
                        "the topic was created but its partitions have no leader after {:?}",
                        self.timeout
                    ),
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Partitions (leader, replicas, ISR) and the topic's own settings.
    pub async fn describe_topic(&self, name: &str) -> Result<TopicDescription> {
        if let Some(problem) = topic_name_problem(name) {
            return Err(Error::InvalidTopic(vec![problem]));
        }
        let metadata = self.metadata(Some(name.to_owned())).await?;
        let topic = metadata
            .topics()
            .iter()
            .find(|t| t.name() == name && t.error().is_none())
            .ok_or_else(|| Error::TopicNotFound(name.to_owned()))?;
        let partitions = topic
            .partitions()
            .iter()
            .map(|p| PartitionState {
                id: p.id(),
                leader: p.leader(),
                replicas: p.replicas().to_vec(),
                isr: p.isr().to_vec(),
            })
            .collect();
        Ok(TopicDescription {
            name: name.to_owned(),
            partitions,
            configs: self.topic_overrides(name).await?,
        })
    }

    async fn topic_overrides(&self, name: &str) -> Result<BTreeMap<String, String>> {
        let operation = format!("describe the settings of topic {name}");
        let results = self
            .client
            .describe_configs([&ResourceSpecifier::Topic(name)], &self.options())
            .await
            .map_err(|source| Error::Admin {
                operation: operation.clone(),
                source,
            })?;
        let mut configs = BTreeMap::new();
        for result in results {
            let resource = result.map_err(|code| refused(&operation, code))?;
            for entry in resource.entries {
                if entry.source == ConfigSource::DynamicTopic
                    && let Some(value) = entry.value
                {
                    configs.insert(entry.name, value);
                }
            }
        }
        Ok(configs)
    }

    /// Raises the partition count and/or changes settings. Settings not named
    /// keep their values: Kafka's (non-incremental) AlterConfigs replaces the
    /// whole set, so the current overrides are read and merged first. Two
    /// concurrent updates of the same topic may therefore lose one another.
    pub async fn update_topic(&self, name: &str, update: &TopicUpdate) -> Result<()> {
        let mut problems: Vec<String> = topic_name_problem(name).into_iter().collect();
        if update.partitions.is_some_and(|p| p < 1) {
            problems.push("partitions must be at least 1".into());
        }
        if update.partitions.is_none() && update.configs.is_empty() {
            problems.push("nothing to change: give partitions or settings".into());
        }
        if !problems.is_empty() {
            return Err(Error::InvalidTopic(problems));
        }
        let current = self.describe_topic(name).await?;
        if let Some(partitions) = update.partitions {
            let have = current.partitions.len();
            let wanted = usize::try_from(partitions).unwrap_or(0);
            if wanted < have {
                return Err(Error::InvalidTopic(vec![format!(
                    "topic {name} has {have} partitions; Kafka cannot lower the count to {wanted}"
                )]));
            }
            if wanted > have {
                let operation = format!("raise the partitions of topic {name} to {wanted}");
                let results = self
                    .client
                    .create_partitions([&NewPartitions::new(name, wanted)], &self.options())
                    .await
                    .map_err(|source| Error::Admin {
                        operation: operation.clone(),
                        source,
                    })?;
                for result in results {
                    result.map_err(|(_, code)| refused(&operation, code))?;
                }
            }
        }
        if !update.configs.is_empty() {
            let mut merged = current.configs;
            for (key, value) in &update.configs {
                match value {
                    Some(value) => merged.insert(key.clone(), value.clone()),
                    None => merged.remove(key),
                };
            }
            let operation = format!("change the settings of topic {name}");
            let mut alter = AlterConfig::new(ResourceSpecifier::Topic(name));
            for (key, value) in &merged {
                alter = alter.set(key, value);
            }
            let results = self
                .client
                .alter_configs([&alter], &self.options())
                .await
                .map_err(|source| Error::Admin {
                    operation: operation.clone(),
                    source,
                })?;
            for result in results {
                result.map_err(|(_, code)| refused(&operation, code))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names_follow_kafka_rules() {
        assert_eq!(topic_name_problem("events.v1_x-y"), None);
        for bad in ["", ".", "..", "a b", "a/b", &"x".repeat(250)] {
            assert!(topic_name_problem(bad).is_some(), "{bad}");
        }
    }

    #[test]
    fn topic_specs_report_every_problem() {
        let spec = TopicSpec {
            name: "bad name".into(),
            partitions: 0,
            replication_factor: 0,
            configs: BTreeMap::new(),
        };
        assert_eq!(spec.problems().len(), 3);
    }

    #[test]
    fn connecting_needs_a_bootstrap_list() {
        assert!(matches!(
            KafkaAdmin::connect(" ", Duration::from_secs(1)),
            Err(Error::NoBrokers)
        ));
    }
}
