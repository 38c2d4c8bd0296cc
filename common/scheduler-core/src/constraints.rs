//! Placement constraints on an agent's hostname and attributes.
//!
//! Syntax (comma-separated): `FIELD=OPERATOR[:VALUE]`, where FIELD is
//! `hostname` or an attribute name and OPERATOR is one of
//! `unique`, `like:REGEX`, `unlike:REGEX`, `cluster[:VALUE]`, `groupBy[:N]`.
//! Regexes match the whole value. For example
//! `hostname=unique,rack=groupBy:3,zone=like:us-east-1[ab]`.

use std::{collections::BTreeMap, fmt, str::FromStr};

use mesos_proto::v1::{self, value};
use regex::Regex;
use serde::{Deserialize, Serialize};

/// Why a constraint string is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConstraintError {
    /// Not of the form `FIELD=OPERATOR[:VALUE]`.
    #[error("constraint {0:?} is not FIELD=OPERATOR[:VALUE] (for example hostname=unique)")]
    Syntax(String),
    /// An operator we do not know.
    #[error(
        "constraint {constraint:?}: unknown operator {operator:?}; use unique, like:REGEX, unlike:REGEX, cluster[:VALUE] or groupBy[:N]"
    )]
    UnknownOperator {
        /// The whole constraint.
        constraint: String,
        /// The operator as written.
        operator: String,
    },
    /// `like`/`unlike` without a valid regex.
    #[error("constraint {constraint:?}: invalid regex: {reason}")]
    Regex {
        /// The whole constraint.
        constraint: String,
        /// What the regex parser reported.
        reason: String,
    },
    /// `groupBy:N` with N not a positive integer.
    #[error("constraint {0:?}: groupBy takes a positive number of groups (groupBy:3)")]
    GroupCount(String),
}

/// One operator with its argument.
#[derive(Debug, Clone)]
pub enum Operator {
    /// No two nodes on the same value.
    Unique,
    /// The value must match the regex.
    Like(Regex),
    /// The value must not match the regex (a missing attribute passes).
    Unlike(Regex),
    /// Every node on this value, or on the value of the first placed node.
    Cluster(Option<String>),
    /// Nodes spread evenly over the values (over `N` values when given).
    GroupBy(Option<u32>),
}

/// A parsed constraint.
#[derive(Debug, Clone)]
pub struct Constraint {
    /// `hostname` or an attribute name.
    pub field: String,
    /// What must hold.
    pub operator: Operator,
    text: String,
}

impl PartialEq for Constraint {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl fmt::Display for Constraint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

fn anchored(constraint: &str, pattern: &str) -> Result<Regex, ConstraintError> {
    Regex::new(&format!("^(?:{pattern})$")).map_err(|e| ConstraintError::Regex {
        constraint: constraint.into(),
        reason: e.to_string(),
    })
}

impl FromStr for Constraint {
    type Err = ConstraintError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        let (field, rest) = text
            .split_once('=')
            .filter(|(f, r)| !f.trim().is_empty() && !r.trim().is_empty())
            .ok_or_else(|| ConstraintError::Syntax(text.into()))?;
        let (operator, argument) = match rest.split_once(':') {
            Some((op, arg)) => (op, Some(arg)),
            None => (rest, None),
        };
        let operator = match (operator.to_ascii_lowercase().as_str(), argument) {
            ("unique", None) => Operator::Unique,
            ("like", Some(re)) => Operator::Like(anchored(text, re)?),
            ("unlike", Some(re)) => Operator::Unlike(anchored(text, re)?),
            ("cluster", value) => Operator::Cluster(value.map(str::to_owned)),
            ("groupby", None) => Operator::GroupBy(None),
            ("groupby", Some(n)) => Operator::GroupBy(Some(
                n.parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| ConstraintError::GroupCount(text.into()))?,
            )),
            (op, _) => {
                return Err(ConstraintError::UnknownOperator {
                    constraint: text.into(),
                    operator: op.into(),
                });
            }
        };
        Ok(Constraint {
            field: field.trim().into(),
            operator,
            text: text.into(),
        })
    }
}

impl Serialize for Constraint {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Constraint {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Parses a comma-separated list, reporting every invalid entry at once.
pub fn parse_list(text: &str) -> Result<Vec<Constraint>, Vec<ConstraintError>> {
    let (ok, errors): (Vec<_>, Vec<_>) = text
        .split(',')
        .filter(|c| !c.trim().is_empty())
        .map(str::parse::<Constraint>)
        .partition(Result::is_ok);
    if errors.is_empty() {
        Ok(ok.into_iter().filter_map(Result::ok).collect())
    } else {
        Err(errors.into_iter().filter_map(Result::err).collect())
    }
}

/// The facts about an agent that constraints look at.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Host {
    /// The agent's hostname.
    pub hostname: String,
    /// Attribute values rendered as text.
    pub attributes: BTreeMap<String, String>,
}

impl Host {
    /// Reads the hostname and attributes of an offer.
    pub fn of_offer(offer: &v1::Offer) -> Self {
        Host {
            hostname: offer.hostname.clone(),
            attributes: offer
                .attributes
                .iter()
                .map(|a| (a.name.clone(), attribute_text(a)))
                .collect(),
        }
    }

    /// The value of `field` on this host.
    pub fn field(&self, field: &str) -> Option<&str> {
        if field == "hostname" {
            Some(&self.hostname)
        } else {
            self.attributes.get(field).map(String::as_str)
        }
    }
}

fn attribute_text(attribute: &v1::Attribute) -> String {
    if let Some(text) = &attribute.text {
        return text.value.clone();
    }
    if let Some(scalar) = &attribute.scalar {
        return crate::resources::Milli::from_f64(scalar.value).to_string();
    }
    if let Some(ranges) = &attribute.ranges {
        let parts: Vec<String> = ranges
            .range
            .iter()
            .map(|r: &value::Range| format!("{}-{}", r.begin, r.end))
            .collect();
        return format!("[{}]", parts.join(","));
    }
    if let Some(set) = &attribute.set {
        return format!("{{{}}}", set.item.join(","));
    }
    String::new()
}

/// Where the other nodes are, indexed by the value of every field any
/// constraint looks at, so a check costs a lookup rather than a scan.
#[derive(Clone, Debug, Default)]
pub struct Peers {
    /// field → value → nodes on a host with that value (in insertion order).
    by_field: BTreeMap<String, BTreeMap<String, Vec<String>>>,
}

impl Peers {
    /// An empty index of the fields `constraints` use.
    pub fn for_constraints<'a>(constraints: impl IntoIterator<Item = &'a Constraint>) -> Self {
        let mut peers = Peers::default();
        for constraint in constraints {
            peers.by_field.entry(constraint.field.clone()).or_default();
        }
        peers
    }

    /// Records that `node` lives on `host`.
    pub fn add(&mut self, node: &str, host: &Host) {
        for (field, values) in &mut self.by_field {
            if let Some(value) = host.field(field) {
                values
                    .entry(value.to_owned())
                    .or_default()
                    .push(node.to_owned());
            }
        }
    }

    /// The index of `peers` for the fields of `constraints`.
    pub fn of(constraints: &[Constraint], peers: &[(&str, &Host)]) -> Self {
        let mut index = Peers::for_constraints(constraints);
        for (node, host) in peers {
            index.add(node, host);
        }
        index
    }

    fn values(&self, field: &str) -> Option<&BTreeMap<String, Vec<String>>> {
        self.by_field.get(field)
    }
}

/// How a candidate host breaks a constraint; formatted only when shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Violation<'a> {
    Taken {
        value: &'a str,
        node: &'a str,
    },
    NoMatch {
        value: &'a str,
    },
    Missing,
    Matches {
        value: &'a str,
    },
    OtherCluster {
        value: Option<&'a str>,
        wanted: &'a str,
    },
    Crowded {
        value: &'a str,
        mine: usize,
        least: usize,
    },
}

impl Constraint {
    fn violation<'a>(&'a self, candidate: &'a Host, peers: &'a Peers) -> Option<Violation<'a>> {
        let value = candidate.field(&self.field);
        let values = peers.values(&self.field);
        match &self.operator {
            Operator::Unique => {
                let value = value.unwrap_or_default();
                let node = values.and_then(|v| v.get(value)).and_then(|n| n.first())?;
                Some(Violation::Taken { value, node })
            }
            Operator::Like(re) => match value {
                Some(v) if re.is_match(v) => None,
                Some(v) => Some(Violation::NoMatch { value: v }),
                None => Some(Violation::Missing),
            },
            Operator::Unlike(re) => value
                .filter(|v| re.is_match(v))
                .map(|v| Violation::Matches { value: v }),
            Operator::Cluster(wanted) => {
                let wanted = wanted
                    .as_deref()
                    .or_else(|| values.and_then(|v| v.keys().next()).map(String::as_str))?;
                (value != Some(wanted)).then_some(Violation::OtherCluster { value, wanted })
            }
            Operator::GroupBy(groups) => {
                let Some(value) = value else {
                    return Some(Violation::Missing);
                };
                let empty = BTreeMap::new();
                let counts = values.unwrap_or(&empty);
                let unseen_groups = groups.is_some_and(|n| counts.len() < n as usize);
                let least = if unseen_groups {
                    0
                } else {
                    counts.values().map(Vec::len).min().unwrap_or(0)
                };
                let mine = counts.get(value).map_or(0, Vec::len);
                (mine > least).then_some(Violation::Crowded { value, mine, least })
            }
        }
    }

    fn describe(&self, violation: Violation<'_>) -> String {
        let field = &self.field;
        match violation {
            Violation::Taken { value, node } => {
                format!("{self}: {field} {value} already has node {node}")
            }
            Violation::NoMatch { value } => format!("{self}: {field} {value} does not match"),
            Violation::Missing => format!("{self}: agent has no attribute {field}"),
            Violation::Matches { value } => format!("{self}: {field} {value} matches"),
            Violation::OtherCluster { value, wanted } => format!(
                "{self}: {field} is {}, not {wanted}",
                value.unwrap_or("unset")
            ),
            Violation::Crowded { value, mine, least } => format!(
                "{self}: {field} {value} already has {mine} node(s), another value has {least}"
            ),
        }
    }

    /// Whether `candidate` satisfies the constraint given the indexed peers.
    pub fn passes(&self, candidate: &Host, peers: &Peers) -> bool {
        self.violation(candidate, peers).is_none()
    }

    /// Checks the constraint for `candidate` given where the other nodes are
    /// (`peers`: node ID and host); `Err` says why not.
    pub fn check(&self, candidate: &Host, peers: &[(&str, &Host)]) -> Result<(), String> {
        let index = Peers::of(std::slice::from_ref(self), peers);
        self.check_indexed(candidate, &index)
    }

    /// [`Constraint::check`] against an index of the peers.
    pub fn check_indexed(&self, candidate: &Host, peers: &Peers) -> Result<(), String> {
        match self.violation(candidate, peers) {
            None => Ok(()),
            Some(violation) => Err(self.describe(violation)),
        }
    }
}

/// Checks every constraint; `Err` holds one reason per failed constraint.
pub fn check_all(
    constraints: &[Constraint],
    candidate: &Host,
    peers: &Peers,
) -> Result<(), Vec<String>> {
    let reasons: Vec<String> = constraints
        .iter()
        .filter_map(|c| c.check_indexed(candidate, peers).err())
        .collect();
    if reasons.is_empty() {
        Ok(())
    } else {
        Err(reasons)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(name: &str, attrs: &[(&str, &str)]) -> Host {
        Host {
            hostname: name.into(),
            attributes: attrs
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect(),
        }
    }

    fn c(text: &str) -> Constraint {
        text.parse().expect("valid constraint")
    }

    #[test]
    fn parses_every_operator_and_reports_all_errors() {
        let list = parse_list("hostname=unique, rack=like:r[12],zone=unlike:z9,dc=cluster:east,rack=groupBy:3,rack=groupBy,dc=cluster")
            .expect("valid list");
        assert_eq!(list.len(), 7);
        assert_eq!(list[1].to_string(), "rack=like:r[12]");
        let errors =
            parse_list("hostname,rack=near:x,rack=like:(,rack=groupBy:0").expect_err("invalid");
        assert_eq!(errors.len(), 4);
        assert!(matches!(errors[0], ConstraintError::Syntax(_)));
        assert!(matches!(errors[1], ConstraintError::UnknownOperator { .. }));
        assert!(matches!(errors[2], ConstraintError::Regex { .. }));
        assert!(matches!(errors[3], ConstraintError::GroupCount(_)));
        assert!(
            errors[1].to_string().contains("groupBy"),
            "the error says what is allowed"
        );
    }

    #[test]
    fn unique_rejects_a_host_with_a_peer() {
        let a = host("a", &[]);
        let b = host("b", &[]);
        let rule = c("hostname=unique");
        assert!(rule.check(&a, &[("1", &b)]).is_ok());
        let why = rule
            .check(&a, &[("1", &b), ("2", &a)])
            .expect_err("a is taken");
        assert!(why.contains("already has node 2"), "{why}");
    }

    #[test]
    fn like_and_unlike_match_the_whole_value() {
        let r1 = host("a", &[("rack", "r1")]);
        let r10 = host("b", &[("rack", "r10")]);
        let none = host("c", &[]);
        let like = c("rack=like:r1");
        assert!(like.check(&r1, &[]).is_ok());
        assert!(like.check(&r10, &[]).is_err(), "anchored");
        assert!(
            like.check(&none, &[]).is_err(),
            "missing attribute fails like"
        );
        let unlike = c("rack=unlike:r1");
        assert!(unlike.check(&r1, &[]).is_err());
        assert!(unlike.check(&r10, &[]).is_ok());
        assert!(
            unlike.check(&none, &[]).is_ok(),
            "missing attribute passes unlike"
        );
        assert!(c("hostname=like:[ab]").check(&r10, &[]).is_ok());
    }

    #[test]
    fn cluster_with_and_without_a_value() {
        let east = host("a", &[("dc", "east")]);
        let west = host("b", &[("dc", "west")]);
        assert!(c("dc=cluster:east").check(&east, &[]).is_ok());
        assert!(c("dc=cluster:east").check(&west, &[]).is_err());
        let follow = c("dc=cluster");
        assert!(
            follow.check(&west, &[]).is_ok(),
            "the first node picks the value"
        );
        assert!(follow.check(&west, &[("0", &east)]).is_err());
        assert!(follow.check(&east, &[("0", &east)]).is_ok());
    }

    #[test]
    fn group_by_spreads_evenly() {
        let r = |v: &str| host(v, &[("rack", v)]);
        let (r1, r2, r3) = (r("r1"), r("r2"), r("r3"));
        let open = c("rack=groupBy");
        // Without a count only values already in use compete: a new value is
        // always fine, a used one only while it has the fewest nodes.
        assert!(open.check(&r2, &[("0", &r1)]).is_ok());
        assert!(open.check(&r1, &[("0", &r1), ("1", &r2)]).is_ok());
        assert!(
            open.check(&r1, &[("0", &r1), ("1", &r1), ("2", &r2)])
                .is_err()
        );
        let three = c("rack=groupBy:3");
        assert!(
            three.check(&r1, &[("0", &r1), ("1", &r2)]).is_err(),
            "r3 is still empty"
        );
        assert!(three.check(&r3, &[("0", &r1), ("1", &r2)]).is_ok());
        assert!(
            three
                .check(&r1, &[("0", &r1), ("1", &r2), ("2", &r3)])
                .is_ok()
        );
        assert!(
            three.check(&host("x", &[]), &[]).is_err(),
            "needs the attribute"
        );
    }

    #[test]
    fn check_all_returns_every_reason() {
        let a = host("a", &[("rack", "r1")]);
        let rules = parse_list("hostname=unique,rack=like:r2").expect("valid");
        let reasons =
            check_all(&rules, &a, &Peers::of(&rules, &[("0", &a)])).expect_err("both fail");
        assert_eq!(reasons.len(), 2);
    }

    #[test]
    fn attributes_of_every_type_render_as_text() {
        let offer = v1::Offer {
            hostname: "h".into(),
            attributes: vec![
                v1::Attribute {
                    name: "weight".into(),
                    r#type: value::Type::Scalar as i32,
                    scalar: Some(value::Scalar { value: 2.5 }),
                    ..Default::default()
                },
                v1::Attribute {
                    name: "rack".into(),
                    r#type: value::Type::Text as i32,
                    text: Some(value::Text { value: "r1".into() }),
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        let host = Host::of_offer(&offer);
        assert_eq!(host.field("weight"), Some("2.5"));
        assert_eq!(host.field("rack"), Some("r1"));
        assert_eq!(host.field("hostname"), Some("h"));
    }
}
