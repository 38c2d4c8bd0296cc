//! Pure leader election rules of the Mesos masters' ZooKeeper group.
//!
//! Each master creates an ephemeral sequential child `<label>_<sequence>` of the group znode
//! (`json.info_0000000007`); the leader is the member with the smallest sequence, i.e. the
//! oldest live session. These functions take names and bytes and touch no ZooKeeper.

use std::net::{Ipv4Addr, Ipv6Addr};

use mesos_proto::codec::{from_json_slice, from_protobuf};
use mesos_proto::v1::MasterInfo;
use url::Url;

use crate::Error;

/// Label of children holding JSON MasterInfo (Mesos 0.24 and later).
pub const JSON_LABEL: &str = "json.info";

/// Label of children holding binary protobuf MasterInfo (Mesos before 0.24).
pub const PROTOBUF_LABEL: &str = "info";

/// How a member's znode data encodes its MasterInfo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadFormat {
    /// Mesos' JSON form (`json.info_` children).
    Json,
    /// Binary protobuf (`info_` children).
    Protobuf,
}

/// One member of the group: a child znode named `<label>_<sequence>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The child's full name, e.g. `json.info_0000000007`.
    pub name: String,
    /// The part before the last `_`, e.g. `json.info`.
    pub label: String,
    /// The ZooKeeper sequence number after the last `_`.
    pub sequence: u64,
}

impl Member {
    /// Parses a child name; `None` for children that are not members (`log_replicas`).
    pub fn parse(name: &str) -> Option<Member> {
        let (label, digits) = name.rsplit_once('_')?;
        // Digits only: `u64::from_str` would also take a leading `+`.
        if label.is_empty() || digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some(Member {
            name: name.to_owned(),
            label: label.to_owned(),
            sequence: digits.parse().ok()?,
        })
    }

    /// The format of this member's data, known from its label.
    pub fn format(&self) -> Option<PayloadFormat> {
        match self.label.as_str() {
            JSON_LABEL => Some(PayloadFormat::Json),
            PROTOBUF_LABEL => Some(PayloadFormat::Protobuf),
            _ => None,
        }
    }
}

/// Picks the leader among a group's children: the member with the smallest sequence.
///
/// Non-members are ignored; `None` means no master is registered. Ties (impossible within one
/// parent znode) are broken by name so the answer never depends on listing order.
pub fn choose_leader<'a>(children: impl IntoIterator<Item = &'a str>) -> Option<Member> {
    children
        .into_iter()
        .filter_map(Member::parse)
        .min_by(|a, b| (a.sequence, &a.name).cmp(&(b.sequence, &b.name)))
}

/// Decodes the leader's znode data at `path` into the master's base URL.
pub fn leader_url(member: &Member, path: &str, data: &[u8]) -> Result<Url, Error> {
    let format = member.format().ok_or_else(|| Error::UnknownLabel {
        member: member.name.clone(),
        label: member.label.clone(),
    })?;
    let decoded = match format {
        PayloadFormat::Json => from_json_slice::<MasterInfo>(data),
        PayloadFormat::Protobuf => from_protobuf::<MasterInfo>(data),
    };
    let info = decoded.map_err(|source| Error::MasterInfo {
        path: path.to_owned(),
        source,
    })?;
    master_url(&info)
}

/// The base URL `http://host:port/` of a master.
///
/// Prefers `address.ip`, then `address.hostname` (with `address.port`); falls back to the
/// deprecated packed `ip` and `port` fields, then the deprecated `hostname`, because masters
/// before 1.0 did not fill `address`. The scheme is always `http`: MasterInfo does not say
/// whether a master serves TLS.
pub fn master_url(info: &MasterInfo) -> Result<Url, Error> {
    let no_address = |problem: String| Error::NoAddress {
        id: info.id.clone(),
        problem,
    };
    let address_host = info.address.as_ref().and_then(|address| {
        [&address.ip, &address.hostname]
            .into_iter()
            .flatten()
            .find(|host| !host.is_empty())
            .map(|host| (host.as_str(), i64::from(address.port)))
    });
    let (host, port) = match address_host {
        Some(found) => (found.0.to_owned(), found.1),
        None if info.ip != 0 => (packed_ipv4(info.ip).to_string(), i64::from(info.port)),
        None => match info.hostname.as_deref().filter(|h| !h.is_empty()) {
            Some(hostname) => (hostname.to_owned(), i64::from(info.port)),
            None => {
                return Err(no_address(
                    "address.ip, address.hostname, ip and hostname are all unset".into(),
                ));
            }
        },
    };
    let port = u16::try_from(port)
        .ok()
        .filter(|port| *port != 0)
        .ok_or_else(|| no_address(format!("port {port} is not in 1-65535")))?;
    let authority = if host.parse::<Ipv6Addr>().is_ok() {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let text = format!("http://{authority}/");
    let url = Url::parse(&text).map_err(|e| no_address(format!("`{text}` is not a URL: {e}")))?;
    // A host such as `a/b` or `a@b` parses into a different authority; reject it.
    if url.port_or_known_default() != Some(port) || url.path() != "/" || !url.username().is_empty()
    {
        return Err(no_address(format!("host `{host}` is not a valid host")));
    }
    Ok(url)
}

/// Decodes the deprecated packed `ip`: the in-memory bytes of a network-order IPv4 address
/// read as a little-endian integer, so `127.0.0.1` is `16777343`.
pub fn packed_ipv4(ip: u32) -> Ipv4Addr {
    Ipv4Addr::from(ip.to_le_bytes())
}

#[cfg(test)]
mod tests {
    use mesos_proto::codec::to_json_vec;
    use mesos_proto::v1::Address;
    use prost::Message;

    use super::*;

    fn info(ip: u32, port: u32, address: Option<Address>) -> MasterInfo {
        MasterInfo {
            id: "master-1".into(),
            ip,
            port,
            address,
            ..MasterInfo::default()
        }
    }

    fn address(hostname: Option<&str>, ip: Option<&str>, port: i32) -> Option<Address> {
        Some(Address {
            hostname: hostname.map(str::to_owned),
            ip: ip.map(str::to_owned),
            port,
        })
    }

    fn url(info: &MasterInfo) -> String {
        match master_url(info) {
            Ok(url) => url.to_string(),
            Err(e) => panic!("{info:?}: {e}"),
        }
    }

    #[test]
    fn members_are_label_underscore_digits() {
        let member = Member::parse("json.info_0000000007").expect("member");
        assert_eq!(member.label, "json.info");
        assert_eq!(member.sequence, 7);
        assert_eq!(member.format(), Some(PayloadFormat::Json));
        let old = Member::parse("info_0000000012").expect("member");
        assert_eq!(old.format(), Some(PayloadFormat::Protobuf));
        let other = Member::parse("foo_bar_0000000001").expect("member");
        assert_eq!((other.label.as_str(), other.format()), ("foo_bar", None));
        for name in [
            "log_replicas",
            "0000000001",
            "_0000000001",
            "json.info_",
            "json.info_+1",
            "json.info_-1",
            "json.info_12a",
            "json.info_99999999999999999999999",
        ] {
            assert_eq!(Member::parse(name), None, "{name}");
        }
    }

    #[test]
    fn leader_is_the_smallest_sequence_across_labels() {
        let children = [
            "log_replicas",
            "json.info_0000000010",
            "info_0000000009",
            "json.info_0000000002",
            "json.info_0000000011",
        ];
        let leader = choose_leader(children).expect("leader");
        assert_eq!(leader.name, "json.info_0000000002");
        let mut reversed = children;
        reversed.reverse();
        assert_eq!(choose_leader(reversed), Some(leader));
        assert_eq!(
            choose_leader(["info_0000000009", "json.info_0000000010"]).map(|m| m.name),
            Some("info_0000000009".to_owned())
        );
    }

    #[test]
    fn no_members_means_no_leader() {
        assert_eq!(choose_leader([]), None);
        assert_eq!(choose_leader(["log_replicas", "something"]), None);
    }

    #[test]
    fn packed_ip_is_little_endian_network_order() {
        assert_eq!(packed_ipv4(16_777_343), Ipv4Addr::new(127, 0, 0, 1));
        assert_eq!(packed_ipv4(201_326_602), Ipv4Addr::new(10, 0, 0, 12));
    }

    #[test]
    fn url_prefers_address_ip_then_hostname_then_packed_ip() {
        let both = info(
            16_777_343,
            5050,
            address(Some("m1.example"), Some("10.0.0.12"), 5051),
        );
        assert_eq!(url(&both), "http://10.0.0.12:5051/");
        let hostname_only = info(0, 5050, address(Some("m1.example"), None, 5052));
        assert_eq!(url(&hostname_only), "http://m1.example:5052/");
        let empty_ip = info(0, 5050, address(Some("m1.example"), Some(""), 5052));
        assert_eq!(url(&empty_ip), "http://m1.example:5052/");
        let packed = info(16_777_343, 5053, None);
        assert_eq!(url(&packed), "http://127.0.0.1:5053/");
        let hostless_address = info(16_777_343, 5053, address(None, None, 9));
        assert_eq!(url(&hostless_address), "http://127.0.0.1:5053/");
        let ipv6 = info(0, 5050, address(None, Some("::1"), 5050));
        assert_eq!(url(&ipv6), "http://[::1]:5050/");
        let legacy_hostname = MasterInfo {
            hostname: Some("old.example".into()),
            ..info(0, 5050, None)
        };
        assert_eq!(url(&legacy_hostname), "http://old.example:5050/");
    }

    #[test]
    fn unusable_addresses_are_errors_not_panics() {
        for bad in [
            info(0, 5050, None),
            info(0, 5050, address(Some(""), Some(""), 5050)),
            info(0, 5050, address(None, Some("10.0.0.1"), 0)),
            info(0, 5050, address(None, Some("10.0.0.1"), -1)),
            info(0, 5050, address(None, Some("10.0.0.1"), 70_000)),
            info(16_777_343, 0, None),
            info(0, 5050, address(Some("a/b"), None, 5050)),
            info(0, 5050, address(Some("u@h"), None, 5050)),
            info(0, 5050, address(Some("h:1"), None, 5050)),
        ] {
            match master_url(&bad) {
                Err(Error::NoAddress { id, .. }) => assert_eq!(id, "master-1"),
                other => panic!("{bad:?} gave {other:?}"),
            }
        }
    }

    #[test]
    fn leader_url_decodes_json_and_protobuf_by_label() {
        let master = MasterInfo {
            pid: Some("master@127.0.0.1:5050".into()),
            version: Some("1.11.0".into()),
            ..info(
                16_777_343,
                5050,
                address(Some("localhost"), Some("127.0.0.1"), 5050),
            )
        };
        let json = Member::parse("json.info_0000000001").expect("member");
        let got = leader_url(&json, "/mesos/json.info_0000000001", &to_json_vec(&master));
        assert_eq!(
            got.map(|u| u.to_string()).ok().as_deref(),
            Some("http://127.0.0.1:5050/")
        );
        let binary = Member::parse("info_0000000001").expect("member");
        let got = leader_url(&binary, "/mesos/info_0000000001", &master.encode_to_vec());
        assert_eq!(
            got.map(|u| u.to_string()).ok().as_deref(),
            Some("http://127.0.0.1:5050/")
        );
    }

    #[test]
    fn leader_url_accepts_the_documented_mesos_json() {
        let data = br#"{"address":{"hostname":"m2.example","ip":"10.0.0.12","port":5050},"hostname":"m2.example","id":"0e3f","ip":201326602,"pid":"master@10.0.0.12:5050","port":5050,"version":"1.11.0","capabilities":[{"type":"AGENT_UPDATE"}]}"#;
        let member = Member::parse("json.info_0000000007").expect("member");
        let got = leader_url(&member, "/mesos/json.info_0000000007", data);
        assert_eq!(
            got.map(|u| u.to_string()).ok().as_deref(),
            Some("http://10.0.0.12:5050/")
        );
    }

    #[test]
    fn bad_payloads_are_errors() {
        let json = Member::parse("json.info_0000000001").expect("member");
        assert!(matches!(
            leader_url(&json, "/m/json.info_0000000001", b"not json"),
            Err(Error::MasterInfo { .. })
        ));
        // Valid JSON without the required `id`, `ip` and `port`.
        assert!(matches!(
            leader_url(&json, "/m/json.info_0000000001", b"{}"),
            Err(Error::MasterInfo { .. })
        ));
        let binary = Member::parse("info_0000000001").expect("member");
        assert!(matches!(
            leader_url(&binary, "/m/info_0000000001", b"\xff\xff\xff"),
            Err(Error::MasterInfo { .. })
        ));
        let unknown = Member::parse("other_0000000001").expect("member");
        assert!(matches!(
            leader_url(&unknown, "/m/other_0000000001", b"{}"),
            Err(Error::UnknownLabel { .. })
        ));
    }
}
