//! Kafka protocol requests sent to one chosen broker.
//!
//! rdkafka decides itself which broker answers a request. Two questions need
//! a particular broker: what each broker's own metadata cache says (a broker
//! that has not caught up yet must not be the one the safety check trusts),
//! and which broker is the active controller. The messages are encoded and
//! decoded by `kafka-protocol`; this module frames them over one connection.

use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::{
    messages::{
        MetadataRequest, MetadataResponse, RequestHeader, ResponseHeader,
        describe_quorum_request::{self, DescribeQuorumRequest},
        describe_quorum_response::DescribeQuorumResponse,
    },
    protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes},
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::{
    error::{Error, Result},
    safety::{ClusterState, PartitionState, TopicState},
};

const CLIENT_ID: &str = "kafka-mesos";
const CORRELATION: i32 = 1;
/// Larger answers are refused rather than allocated: a metadata answer of a
/// cluster with tens of thousands of partitions stays well below this.
const MAX_RESPONSE: usize = 64 * 1024 * 1024;
/// Supported from Kafka 2.4 on, including 4.x (which dropped versions 0-3).
pub const METADATA_VERSION: i16 = 9;
/// The only version Kafka 3.x brokers answer.
pub const DESCRIBE_QUORUM_VERSION: i16 = 0;

/// A request as framed on the wire: size, header, body.
pub fn encode<R: Request>(request: &R, version: i16) -> Result<Bytes> {
    let header = RequestHeader::default()
        .with_request_api_key(R::KEY)
        .with_request_api_version(version)
        .with_correlation_id(CORRELATION)
        .with_client_id(Some(StrBytes::from_static_str(CLIENT_ID)));
    let mut body = BytesMut::new();
    header
        .encode(&mut body, R::header_version(version))
        .and_then(|()| request.encode(&mut body, version))
        .map_err(|e| Error::Encode(e.to_string()))?;
    let mut framed = BytesMut::with_capacity(body.len() + 4);
    framed.put_i32(i32::try_from(body.len()).map_err(|e| Error::Encode(e.to_string()))?);
    framed.extend_from_slice(&body);
    Ok(framed.freeze())
}

/// The response in `body` (the bytes after the size), checked against the
/// correlation ID of [`encode`].
pub fn decode<R: Request>(
    mut body: Bytes,
    version: i16,
) -> std::result::Result<R::Response, String> {
    let header = ResponseHeader::decode(&mut body, R::Response::header_version(version))
        .map_err(|e| format!("unreadable response header: {e}"))?;
    if header.correlation_id != CORRELATION {
        return Err(format!(
            "answer to another request (correlation ID {})",
            header.correlation_id
        ));
    }
    let response =
        R::Response::decode(&mut body, version).map_err(|e| format!("unreadable answer: {e}"))?;
    Ok(response)
}

/// Sends `request` to the broker at `endpoint` and reads its answer.
pub async fn exchange<R: Request>(
    endpoint: &str,
    name: &'static str,
    request: &R,
    version: i16,
    timeout: Duration,
) -> Result<R::Response> {
    let fail = |reason: String| Error::Protocol {
        request: name,
        broker: endpoint.to_owned(),
        reason,
    };
    let framed = encode(request, version)?;
    let talk = async {
        let mut stream = TcpStream::connect(endpoint).await?;
        stream.write_all(&framed).await?;
        let size = stream.read_i32().await?;
        let size = usize::try_from(size)
            .ok()
            .filter(|s| (4..=MAX_RESPONSE).contains(s))
            .ok_or_else(|| std::io::Error::other(format!("implausible response size {size}")))?;
        let mut body = vec![0; size];
        stream.read_exact(&mut body).await?;
        Ok::<_, std::io::Error>(Bytes::from(body))
    };
    let body = tokio::time::timeout(timeout, talk)
        .await
        .map_err(|_| fail(format!("no answer within {timeout:?}")))?
        .map_err(|e| fail(e.to_string()))?;
    decode::<R>(body, version).map_err(fail)
}

/// `Metadata` as one broker's cache holds it: brokers and controller, and
/// with `topics` every topic too.
pub async fn metadata(endpoint: &str, topics: bool, timeout: Duration) -> Result<MetadataResponse> {
    // No list asks for every topic; an empty list for none.
    let request = MetadataRequest::default()
        .with_topics((!topics).then(Vec::new))
        .with_allow_auto_topic_creation(false);
    exchange(endpoint, "Metadata", &request, METADATA_VERSION, timeout).await
}

/// `DescribeQuorum` for the KRaft metadata partition (brokers forward it to
/// the controller quorum).
pub async fn describe_quorum(endpoint: &str, timeout: Duration) -> Result<DescribeQuorumResponse> {
    let request = DescribeQuorumRequest::default().with_topics(vec![
        describe_quorum_request::TopicData::default()
            .with_topic_name(StrBytes::from_static_str("__cluster_metadata").into())
            .with_partitions(vec![
                describe_quorum_request::PartitionData::default().with_partition_index(0),
            ]),
    ]);
    exchange(
        endpoint,
        "DescribeQuorum",
        &request,
        DESCRIBE_QUORUM_VERSION,
        timeout,
    )
    .await
}

/// The cluster as one broker's metadata answer shows it (topics that answer
/// with an error are left out; `min.insync.replicas` is not part of it).
pub fn cluster_state(metadata: &MetadataResponse) -> ClusterState {
    ClusterState {
        brokers: metadata
            .brokers
            .iter()
            .map(|b| (b.node_id.0, format!("{}:{}", &*b.host, b.port)))
            .collect(),
        topics: metadata
            .topics
            .iter()
            .filter(|t| t.error_code == 0)
            .filter_map(|t| {
                Some(TopicState {
                    name: t.name.as_ref()?.0.to_string(),
                    min_isr: None,
                    partitions: t
                        .partitions
                        .iter()
                        .map(|p| PartitionState {
                            id: p.partition_index,
                            leader: p.leader_id.0,
                            replicas: p.replica_nodes.iter().map(|b| b.0).collect(),
                            isr: p.isr_nodes.iter().map(|b| b.0).collect(),
                        })
                        .collect(),
                })
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::{
        BrokerId, TopicName,
        metadata_response::{
            MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
        },
    };

    use super::*;

    fn answer(response: &MetadataResponse, correlation: i32) -> Bytes {
        let mut body = BytesMut::new();
        ResponseHeader::default()
            .with_correlation_id(correlation)
            .encode(
                &mut body,
                MetadataResponse::header_version(METADATA_VERSION),
            )
            .expect("header");
        response.encode(&mut body, METADATA_VERSION).expect("body");
        body.freeze()
    }

    fn sample() -> MetadataResponse {
        MetadataResponse::default()
            .with_controller_id(BrokerId(1))
            .with_brokers(vec![
                MetadataResponseBroker::default()
                    .with_node_id(BrokerId(1))
                    .with_host(StrBytes::from_static_str("10.0.0.1"))
                    .with_port(9092),
            ])
            .with_topics(vec![
                MetadataResponseTopic::default()
                    .with_name(Some(TopicName(StrBytes::from_static_str("events"))))
                    .with_partitions(vec![
                        MetadataResponsePartition::default()
                            .with_partition_index(0)
                            .with_leader_id(BrokerId(1))
                            .with_replica_nodes(vec![BrokerId(1), BrokerId(2)])
                            .with_isr_nodes(vec![BrokerId(1)]),
                    ]),
                MetadataResponseTopic::default()
                    .with_error_code(3)
                    .with_name(Some(TopicName(StrBytes::from_static_str("gone")))),
            ])
    }

    #[test]
    fn requests_carry_size_key_version_and_client() {
        let framed = encode(&MetadataRequest::default(), METADATA_VERSION).expect("encodes");
        let size = i32::from_be_bytes(framed[..4].try_into().expect("4 bytes"));
        assert_eq!(size as usize, framed.len() - 4);
        assert_eq!(&framed[4..8], &[0, 3, 0, 9], "Metadata v9");
        assert_eq!(&framed[8..12], &CORRELATION.to_be_bytes());
        assert_eq!(&framed[12..14], &(CLIENT_ID.len() as i16).to_be_bytes());
        assert_eq!(&framed[14..14 + CLIENT_ID.len()], CLIENT_ID.as_bytes());
    }

    #[test]
    fn a_metadata_answer_becomes_a_cluster_state() {
        let response = decode::<MetadataRequest>(answer(&sample(), CORRELATION), METADATA_VERSION)
            .expect("decodes");
        assert_eq!(response.controller_id.0, 1);
        let state = cluster_state(&response);
        assert_eq!(
            state.brokers.get(&1).map(String::as_str),
            Some("10.0.0.1:9092")
        );
        assert_eq!(state.topics.len(), 1, "the topic with an error is left out");
        assert_eq!(
            state.topics[0].partitions,
            vec![PartitionState {
                id: 0,
                leader: 1,
                replicas: vec![1, 2],
                isr: vec![1],
            }]
        );
    }

    #[test]
    fn foreign_and_truncated_answers_are_refused() {
        let err = decode::<MetadataRequest>(answer(&sample(), 7), METADATA_VERSION)
            .expect_err("another correlation ID");
        assert!(err.contains("correlation ID 7"), "{err}");
        let whole = answer(&sample(), CORRELATION);
        let err = decode::<MetadataRequest>(whole.slice(..whole.len() - 6), METADATA_VERSION)
            .expect_err("truncated");
        assert!(err.contains("unreadable answer"), "{err}");
        assert!(decode::<MetadataRequest>(Bytes::new(), METADATA_VERSION).is_err());
    }
}
