//! Which broker is the active controller, so that rolling restarts move it last.
//!
//! rdkafka does not expose the controller, so this asks the brokers with
//! [`crate::protocol`]: in KRaft mode `DescribeQuorum` for the metadata
//! partition (brokers forward it to the quorum; the answer's leader is the
//! active controller), in ZooKeeper mode `Metadata` (its `controller_id`). In
//! KRaft mode, `Metadata`'s controller is a random broker, which is why it is
//! not used there.

use std::time::Duration;

use kafka_protocol::messages::DescribeQuorumResponse;

use crate::{
    error::{Error, Result},
    protocol,
};

/// Puts `controller` last, keeping the order of the others.
pub fn controller_last(mut nodes: Vec<String>, controller: &str) -> Vec<String> {
    if let Some(at) = nodes.iter().position(|n| n == controller) {
        let id = nodes.remove(at);
        nodes.push(id);
    }
    nodes
}

/// The active controller's ID, asking each endpoint (`(id, host:port)`) in turn.
pub async fn active_controller(
    endpoints: &[(String, String)],
    kraft: bool,
    timeout: Duration,
) -> Result<i32> {
    let mut last = Error::NoBrokers;
    for (_, endpoint) in endpoints {
        let (request, answer) = if kraft {
            let answer = protocol::describe_quorum(endpoint, timeout).await;
            ("DescribeQuorum", answer.map(|r| quorum_leader(&r)))
        } else {
            let answer = protocol::metadata(endpoint, false, timeout).await;
            ("Metadata", answer.map(|r| Ok(r.controller_id.0)))
        };
        let reason = match answer {
            Ok(Ok(id)) if id >= 0 => return Ok(id),
            Ok(Ok(_)) => "no controller is known yet".to_owned(),
            Ok(Err(reason)) => reason,
            Err(e) => {
                last = e;
                continue;
            }
        };
        last = Error::Protocol {
            request,
            broker: endpoint.clone(),
            reason,
        };
    }
    Err(last)
}

/// The leader of the metadata partition in a `DescribeQuorum` answer.
fn quorum_leader(response: &DescribeQuorumResponse) -> std::result::Result<i32, String> {
    let partition = response
        .topics
        .first()
        .and_then(|t| t.partitions.first())
        .ok_or("the answer names no metadata partition")?;
    match (response.error_code, partition.error_code) {
        (0, 0) => Ok(partition.leader_id.0),
        (0, code) | (code, _) => Err(format!("Kafka error code {code}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_controller_goes_last() {
        let nodes = vec!["0".to_string(), "1".into(), "2".into()];
        assert_eq!(controller_last(nodes.clone(), "0"), ["1", "2", "0"]);
        assert_eq!(controller_last(nodes.clone(), "2"), ["0", "1", "2"]);
        assert_eq!(controller_last(nodes, "7"), ["0", "1", "2"]);
    }

    #[test]
    fn the_quorum_leader_or_the_error() {
        use kafka_protocol::messages::{
            BrokerId,
            describe_quorum_response::{PartitionData, TopicData},
        };
        let answer = |error: i16, partition_error: i16| {
            DescribeQuorumResponse::default()
                .with_error_code(error)
                .with_topics(vec![TopicData::default().with_partitions(vec![
                    PartitionData::default()
                        .with_error_code(partition_error)
                        .with_leader_id(BrokerId(2)),
                ])])
        };
        assert_eq!(quorum_leader(&answer(0, 0)), Ok(2));
        assert_eq!(
            quorum_leader(&answer(35, 0)),
            Err("Kafka error code 35".into())
        );
        assert_eq!(
            quorum_leader(&answer(0, 6)),
            Err("Kafka error code 6".into())
        );
        assert!(quorum_leader(&DescribeQuorumResponse::default()).is_err());
    }
}
