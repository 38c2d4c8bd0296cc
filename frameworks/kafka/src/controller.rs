//! Which broker is the active controller, so that rolling restarts move it last.
//!
//! rdkafka does not expose the controller, so this speaks two small Kafka
//! protocol requests itself: in KRaft mode `DescribeQuorum` v0 for the
//! metadata partition (brokers forward it to the quorum; the answer's leader
//! is the active controller), in ZooKeeper mode `Metadata` v1 with no topics
//! (its `controller_id`). In KRaft mode, `Metadata`'s controller is a random
//! broker, which is why it is not used there.

use std::time::Duration;

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::error::{Error, Result};

const DESCRIBE_QUORUM: i16 = 55;
const METADATA: i16 = 3;
const MAX_RESPONSE: usize = 4 * 1024 * 1024;
const CLIENT_ID: &str = "kafka-mesos";

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
        let answer = if kraft {
            exchange(
                endpoint,
                "DescribeQuorum",
                describe_quorum_request(1),
                timeout,
            )
            .await
            .and_then(|body| parse_describe_quorum(&body, endpoint))
        } else {
            exchange(endpoint, "Metadata", metadata_request(1), timeout)
                .await
                .and_then(|body| parse_metadata_controller(&body, endpoint))
        };
        match answer {
            Ok(id) if id >= 0 => return Ok(id),
            Ok(_) => {
                last = Error::Protocol {
                    request: if kraft { "DescribeQuorum" } else { "Metadata" },
                    broker: endpoint.clone(),
                    reason: "no controller is known yet".into(),
                }
            }
            Err(e) => last = e,
        }
    }
    Err(last)
}

fn put_string(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(&(text.len() as i16).to_be_bytes());
    out.extend_from_slice(text.as_bytes());
}

fn put_uvarint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn header(out: &mut Vec<u8>, api_key: i16, version: i16, correlation: i32, flexible: bool) {
    out.extend_from_slice(&api_key.to_be_bytes());
    out.extend_from_slice(&version.to_be_bytes());
    out.extend_from_slice(&correlation.to_be_bytes());
    put_string(out, CLIENT_ID);
    if flexible {
        put_uvarint(out, 0);
    }
}

/// `DescribeQuorum` v0 for `__cluster_metadata-0` (a flexible version).
pub fn describe_quorum_request(correlation: i32) -> Vec<u8> {
    let mut out = Vec::new();
    header(&mut out, DESCRIBE_QUORUM, 0, correlation, true);
    put_uvarint(&mut out, 2); // one topic
    let topic = "__cluster_metadata";
    put_uvarint(&mut out, topic.len() as u64 + 1);
    out.extend_from_slice(topic.as_bytes());
    put_uvarint(&mut out, 2); // one partition
    out.extend_from_slice(&0i32.to_be_bytes());
    put_uvarint(&mut out, 0); // partition tags
    put_uvarint(&mut out, 0); // topic tags
    put_uvarint(&mut out, 0); // request tags
    out
}

/// `Metadata` v1 asking for no topics.
pub fn metadata_request(correlation: i32) -> Vec<u8> {
    let mut out = Vec::new();
    header(&mut out, METADATA, 1, correlation, false);
    out.extend_from_slice(&0i32.to_be_bytes());
    out
}

async fn exchange(
    endpoint: &str,
    request: &'static str,
    payload: Vec<u8>,
    timeout: Duration,
) -> Result<Vec<u8>> {
    let fail = |reason: String| Error::Protocol {
        request,
        broker: endpoint.to_owned(),
        reason,
    };
    let talk = async {
        let mut stream = TcpStream::connect(endpoint).await?;
        let mut framed = (payload.len() as i32).to_be_bytes().to_vec();
        framed.extend_from_slice(&payload);
        stream.write_all(&framed).await?;
        let size = stream.read_i32().await?;
        let size = usize::try_from(size)
            .ok()
            .filter(|s| (4..=MAX_RESPONSE).contains(s))
            .ok_or_else(|| std::io::Error::other(format!("implausible response size {size}")))?;
        let mut body = vec![0; size];
        stream.read_exact(&mut body).await?;
        Ok::<_, std::io::Error>(body)
    };
    tokio::time::timeout(timeout, talk)
        .await
        .map_err(|_| fail(format!("no answer within {timeout:?}")))?
        .map_err(|e| fail(e.to_string()))
}

/// A cursor over a response; every read checks the length.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.bytes.len() < n {
            return None;
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Some(head)
    }

    fn i16(&mut self) -> Option<i16> {
        Some(i16::from_be_bytes(self.take(2)?.try_into().ok()?))
    }

    fn i32(&mut self) -> Option<i32> {
        Some(i32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }

    fn uvarint(&mut self) -> Option<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self.take(1)?.first()?;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    }

    fn skip_tags(&mut self) -> Option<()> {
        for _ in 0..self.uvarint()? {
            self.uvarint()?;
            let size = usize::try_from(self.uvarint()?).ok()?;
            self.take(size)?;
        }
        Some(())
    }

    fn compact_string(&mut self) -> Option<&'a [u8]> {
        let len = usize::try_from(self.uvarint()?.checked_sub(1)?).ok()?;
        self.take(len)
    }

    fn string(&mut self) -> Option<&'a [u8]> {
        let len = self.i16()?;
        if len < 0 {
            return Some(&[]);
        }
        self.take(len as usize)
    }
}

/// The quorum leader from a `DescribeQuorum` v0 response (after the size).
pub fn parse_describe_quorum(body: &[u8], broker: &str) -> Result<i32> {
    let bad = |reason: &str| Error::Protocol {
        request: "DescribeQuorum",
        broker: broker.to_owned(),
        reason: reason.to_owned(),
    };
    let mut r = Reader { bytes: body };
    let parse = |r: &mut Reader<'_>| -> Option<(i16, i16, i32)> {
        r.i32()?; // correlation ID
        r.skip_tags()?;
        let error = r.i16()?;
        if error != 0 {
            return Some((error, 0, -1));
        }
        let topics = r.uvarint()?.checked_sub(1)?;
        if topics == 0 {
            return None;
        }
        r.compact_string()?;
        let partitions = r.uvarint()?.checked_sub(1)?;
        if partitions == 0 {
            return None;
        }
        r.i32()?; // partition index
        let partition_error = r.i16()?;
        let leader = r.i32()?;
        Some((0, partition_error, leader))
    };
    match parse(&mut r) {
        None => Err(bad("the answer is truncated or malformed")),
        Some((0, 0, leader)) => Ok(leader),
        Some((error, partition_error, _)) => Err(bad(&format!(
            "Kafka error code {}",
            if error != 0 { error } else { partition_error }
        ))),
    }
}

/// The `controller_id` of a `Metadata` v1 response (after the size).
pub fn parse_metadata_controller(body: &[u8], broker: &str) -> Result<i32> {
    let mut r = Reader { bytes: body };
    let parse = |r: &mut Reader<'_>| -> Option<i32> {
        r.i32()?; // correlation ID
        let brokers = r.i32()?;
        for _ in 0..brokers.max(0) {
            r.i32()?;
            r.string()?;
            r.i32()?;
            r.string()?; // rack (nullable)
        }
        r.i32()
    };
    parse(&mut r).ok_or_else(|| Error::Protocol {
        request: "Metadata",
        broker: broker.to_owned(),
        reason: "the answer is truncated or malformed".into(),
    })
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
    fn describe_quorum_request_bytes() {
        let bytes = describe_quorum_request(7);
        assert_eq!(&bytes[..8], &[0, 55, 0, 0, 0, 0, 0, 7]);
        assert_eq!(&bytes[8..10], &(CLIENT_ID.len() as i16).to_be_bytes());
        let tail = &bytes[10 + CLIENT_ID.len()..];
        assert_eq!(tail[0], 0, "header tags");
        assert_eq!(tail[1], 2, "one topic");
        assert_eq!(tail[2] as usize, "__cluster_metadata".len() + 1);
        assert_eq!(&tail[tail.len() - 8..], &[2, 0, 0, 0, 0, 0, 0, 0]);
    }

    fn quorum_response(error: i16, leader: i32) -> Vec<u8> {
        let mut b = 9i32.to_be_bytes().to_vec();
        b.push(0); // header tags
        b.extend_from_slice(&error.to_be_bytes());
        b.push(2);
        b.push(3);
        b.extend_from_slice(b"ab");
        b.push(2);
        b.extend_from_slice(&0i32.to_be_bytes());
        b.extend_from_slice(&0i16.to_be_bytes());
        b.extend_from_slice(&leader.to_be_bytes());
        b.extend_from_slice(&[0; 20]); // epoch, high watermark, voters…
        b
    }

    #[test]
    fn describe_quorum_responses() {
        assert_eq!(
            parse_describe_quorum(&quorum_response(0, 2), "b").ok(),
            Some(2)
        );
        let err = parse_describe_quorum(&quorum_response(35, 2), "b").expect_err("error code");
        assert!(err.to_string().contains("error code 35"), "{err}");
        let truncated = quorum_response(0, 2);
        assert!(parse_describe_quorum(&truncated[..12], "b").is_err());
        assert!(parse_describe_quorum(&[], "b").is_err());
    }

    #[test]
    fn metadata_responses() {
        let mut b = 1i32.to_be_bytes().to_vec();
        b.extend_from_slice(&1i32.to_be_bytes());
        b.extend_from_slice(&5i32.to_be_bytes());
        b.extend_from_slice(&4i16.to_be_bytes());
        b.extend_from_slice(b"host");
        b.extend_from_slice(&9092i32.to_be_bytes());
        b.extend_from_slice(&(-1i16).to_be_bytes());
        b.extend_from_slice(&5i32.to_be_bytes());
        assert_eq!(parse_metadata_controller(&b, "b").ok(), Some(5));
        assert!(parse_metadata_controller(&b[..b.len() - 2], "b").is_err());
    }
}
