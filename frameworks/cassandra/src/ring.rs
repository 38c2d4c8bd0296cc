//! The ring as the nodes see it, read over CQL, and the pure verdicts the
//! scheduler takes from it.
//!
//! A node is *Up/Normal* when it answers CQL itself, its own gossip state is
//! `NORMAL` with the native transport ready, and every other node that
//! answers also sees it as `NORMAL`. A drained or stopped node announces
//! `shutdown` in gossip, so the others stop calling it normal; a crashed one
//! no longer answers CQL. Gossip states come from the
//! `system_views.gossip_info` virtual table, so no JMX is needed from the
//! scheduler.

use std::{collections::BTreeMap, net::SocketAddr, sync::Arc, time::Duration};

use scylla::{client::session_builder::SessionBuilder, policies::host_filter::AllowListHostFilter};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// One endpoint as a node's gossip describes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GossipEntry {
    /// The endpoint's address (without port).
    pub address: String,
    /// Its status (`NORMAL`, `BOOT`, `LEAVING`, `shutdown`, …), without tokens.
    pub status: String,
    /// Whether its native transport (CQL) is up.
    pub rpc_ready: bool,
}

impl GossipEntry {
    /// Whether this is a member in normal state serving CQL.
    pub fn normal(&self) -> bool {
        self.status.eq_ignore_ascii_case("NORMAL") && self.rpc_ready
    }
}

/// What each node answered: its gossip view, or why it did not answer.
pub type Reports = BTreeMap<String, std::result::Result<Vec<GossipEntry>, String>>;

#[derive(Deserialize)]
struct GossipRow {
    address: Option<String>,
    status_with_port: Option<String>,
    status: Option<String>,
    rpc_ready: Option<String>,
}

/// Parses one row of `SELECT JSON … FROM system_views.gossip_info`.
pub fn parse_gossip_row(json: &str) -> Option<GossipEntry> {
    let row: GossipRow = serde_json::from_str(json).ok()?;
    let status = row.status_with_port.or(row.status).unwrap_or_default();
    Some(GossipEntry {
        address: row.address?,
        status: status.split(',').next().unwrap_or_default().to_owned(),
        rpc_ready: row.rpc_ready.as_deref() == Some("true"),
    })
}

/// Asks the node at `cql` (its native transport) for its gossip view.
pub async fn gossip_view(cql: SocketAddr, timeout: Duration) -> Result<Vec<GossipEntry>> {
    let address = cql.to_string();
    let work = async {
        let filter = AllowListHostFilter::new([cql]).map_err(|e| Error::Connect {
            address: address.clone(),
            source: Box::new(e),
        })?;
        let session = SessionBuilder::new()
            .known_node_addr(cql)
            .host_filter(Arc::new(filter))
            .fetch_schema_metadata(false)
            .connection_timeout(timeout)
            .build()
            .await
            .map_err(|e| Error::Connect {
                address: address.clone(),
                source: Box::new(e),
            })?;
        let query = |e: Box<dyn std::error::Error + Send + Sync>| Error::Query {
            address: address.clone(),
            source: e,
        };
        let rows = session
            .query_unpaged(
                "SELECT JSON address, status_with_port, status, rpc_ready FROM system_views.gossip_info",
                (),
            )
            .await
            .map_err(|e| query(Box::new(e)))?
            .into_rows_result()
            .map_err(|e| query(Box::new(e)))?;
        let mut entries = Vec::new();
        for row in rows.rows::<(String,)>().map_err(|e| query(Box::new(e)))? {
            let (json,) = row.map_err(|e| query(Box::new(e)))?;
            entries.extend(parse_gossip_row(&json));
        }
        Ok(entries)
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| Error::Timeout {
            address: address.clone(),
            seconds: timeout.as_secs(),
        })?
}

/// Asks every node (`address` → CQL endpoint) at once.
pub async fn reports(nodes: &BTreeMap<String, SocketAddr>, timeout: Duration) -> Reports {
    let asks = nodes.iter().map(|(address, cql)| async move {
        let view = gossip_view(*cql, timeout).await.map_err(|e| e.to_string());
        (address.clone(), view)
    });
    futures::future::join_all(asks).await.into_iter().collect()
}

/// Whether the node at `target` is Up/Normal, judged from `reports`;
/// `Err` says why not.
pub fn up_normal(target: &str, reports: &Reports) -> std::result::Result<(), String> {
    let own = match reports.get(target) {
        Some(Ok(view)) => view,
        Some(Err(reason)) => return Err(format!("{target} does not answer CQL: {reason}")),
        None => return Err(format!("{target} was not asked")),
    };
    match own.iter().find(|e| e.address == target) {
        Some(entry) if entry.normal() => {}
        Some(entry) => {
            return Err(format!(
                "{target} is {} (native transport {})",
                entry.status,
                if entry.rpc_ready { "up" } else { "not ready" }
            ));
        }
        None => return Err(format!("{target} does not list itself in its gossip")),
    }
    for (peer, view) in reports {
        let Ok(view) = view else { continue };
        if peer == target {
            continue;
        }
        match view.iter().find(|e| e.address == target) {
            Some(entry) if entry.status.eq_ignore_ascii_case("NORMAL") => {}
            Some(entry) => {
                return Err(format!("{peer} sees {target} as {}", entry.status));
            }
            None => return Err(format!("{peer} does not know {target} yet")),
        }
    }
    Ok(())
}

/// Whether `node` may be stopped: every other node is Up/Normal.
pub fn safe_to_stop(
    node: &str,
    others: &[String],
    reports: &Reports,
) -> std::result::Result<String, String> {
    let mut problems = Vec::new();
    for other in others.iter().filter(|o| o.as_str() != node) {
        if let Err(problem) = up_normal(other, reports) {
            problems.push(problem);
        }
    }
    if problems.is_empty() {
        Ok(format!(
            "every other node ({}) is Up/Normal",
            if others.is_empty() {
                "none".into()
            } else {
                others.join(", ")
            }
        ))
    } else {
        Err(problems.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(address: &str, status: &str, ready: bool) -> GossipEntry {
        GossipEntry {
            address: address.into(),
            status: status.into(),
            rpc_ready: ready,
        }
    }

    fn reports(views: &[(&str, Option<Vec<GossipEntry>>)]) -> Reports {
        views
            .iter()
            .map(|(a, v)| {
                (
                    a.to_string(),
                    v.clone().ok_or_else(|| "connection refused".to_owned()),
                )
            })
            .collect()
    }

    #[test]
    fn gossip_rows_are_parsed() {
        let row = r#"{"address": "127.0.0.2", "status_with_port": "NORMAL,-4611686018427387904", "status": "NORMAL,-46", "rpc_ready": "true"}"#;
        assert_eq!(
            parse_gossip_row(row),
            Some(entry("127.0.0.2", "NORMAL", true))
        );
        let row = r#"{"address": "127.0.0.3", "status_with_port": null, "status": "shutdown,true", "rpc_ready": "false"}"#;
        assert_eq!(
            parse_gossip_row(row),
            Some(entry("127.0.0.3", "shutdown", false))
        );
        assert_eq!(parse_gossip_row("{}"), None);
        assert_eq!(parse_gossip_row("not json"), None);
    }

    #[test]
    fn up_normal_needs_the_node_and_its_peers_to_agree() {
        let both = vec![entry("a", "NORMAL", true), entry("b", "NORMAL", true)];
        let r = reports(&[("a", Some(both.clone())), ("b", Some(both.clone()))]);
        assert_eq!(up_normal("a", &r), Ok(()));
        // Down: does not answer.
        let r = reports(&[("a", None), ("b", Some(both.clone()))]);
        assert!(
            up_normal("a", &r)
                .expect_err("refused")
                .contains("does not answer CQL")
        );
        // Joining, as it sees itself.
        let r = reports(&[("a", Some(vec![entry("a", "BOOT", false)]))]);
        assert!(
            up_normal("a", &r)
                .expect_err("refused")
                .contains("a is BOOT")
        );
        // Back, but a peer still has it as shut down.
        let stale = vec![entry("a", "shutdown", false), entry("b", "NORMAL", true)];
        let r = reports(&[("a", Some(both.clone())), ("b", Some(stale))]);
        assert_eq!(up_normal("a", &r), Err("b sees a as shutdown".into()));
        // A peer that does not answer has no say.
        let r = reports(&[("a", Some(both)), ("b", None)]);
        assert_eq!(up_normal("a", &r), Ok(()));
    }

    #[test]
    fn stopping_needs_every_other_node_up() {
        let all = vec![
            entry("a", "NORMAL", true),
            entry("b", "NORMAL", true),
            entry("c", "NORMAL", true),
        ];
        let others = vec!["a".to_owned(), "b".to_owned(), "c".to_owned()];
        let r = reports(&[
            ("a", Some(all.clone())),
            ("b", Some(all.clone())),
            ("c", None),
        ]);
        // c itself is down: stopping c is fine, stopping a is not.
        assert!(safe_to_stop("c", &others, &r).is_ok());
        let refused = safe_to_stop("a", &others, &r).expect_err("refused");
        assert!(refused.contains("c does not answer CQL"), "{refused}");
        assert!(safe_to_stop("a", &["a".to_owned()], &r).is_ok());
    }
}
