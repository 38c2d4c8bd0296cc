//! ID expressions: how the API and the CLI name one or many nodes.
//!
//! | expression | means |
//! | --- | --- |
//! | `0` | node 0 |
//! | `0..2` | nodes 0, 1 and 2 (both ends included) |
//! | `0,3,5` | nodes 0, 3 and 5 |
//! | `0..2,7` | nodes 0, 1, 2 and 7 |
//! | `*` | every existing node that is not removed |
//! | `*[rack=r1]` | every such node whose agent has attribute `rack` = `r1` |
//! | `*[hostname=a1.local,rack=r1]` | every filter must match |
//!
//! Parsing is pure and knows nothing of the current nodes; [`IdExpr::select`]
//! applies an expression to them. IDs keep the order they were written in;
//! `*` yields nodes in natural order (numbers by value, then names).

use std::cmp::Ordering;

use scheduler_core::constraints::Host;

use crate::error::ApiError;

/// Most IDs one expression may name, so that a typo such as `0..99999` is
/// refused instead of creating a hundred thousand nodes.
pub const MAX_IDS: usize = 1000;

/// A parsed ID expression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IdExpr {
    /// Every existing, non-removed node whose host matches every filter.
    All {
        /// Host facts that must match (`hostname` or an agent attribute).
        filters: Vec<Filter>,
    },
    /// Named IDs in the order given, duplicates dropped.
    Ids(Vec<String>),
}

/// One `field=value` test against a node's host facts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filter {
    /// `hostname` or an agent attribute name.
    pub field: String,
    /// The exact value it must have.
    pub value: String,
}

const EXAMPLES: &str = "write e.g. 0, 0..2, 0,3,5, 0..2,7, * or *[rack=r1]";

fn bad(expression: &str, reason: impl Into<String>) -> ApiError {
    ApiError::BadIds {
        expression: expression.to_owned(),
        reason: reason.into(),
    }
}

/// Whether `id` is a well-formed node ID (letters, digits, `-`, `_`).
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Natural order of node IDs: numbers by value first, then other IDs by text.
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    match (a.parse::<u64>(), b.parse::<u64>()) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        (Ok(_), Err(_)) => Ordering::Less,
        (Err(_), Ok(_)) => Ordering::Greater,
        (Err(_), Err(_)) => a.cmp(b),
    }
}

impl IdExpr {
    /// Parses an expression, saying what is wrong and how to write it otherwise.
    pub fn parse(expression: &str) -> Result<IdExpr, ApiError> {
        let text = expression.trim();
        if text.is_empty() {
            return Err(bad(
                expression,
                format!("the expression is empty; {EXAMPLES}"),
            ));
        }
        if let Some(rest) = text.strip_prefix('*') {
            return parse_filters(expression, rest.trim()).map(|filters| IdExpr::All { filters });
        }
        let mut ids: Vec<String> = Vec::new();
        for (position, item) in text.split(',').enumerate() {
            let item = item.trim();
            if item.is_empty() {
                return Err(bad(
                    expression,
                    format!(
                        "item {} is empty (two commas in a row, or a comma at an end); {EXAMPLES}",
                        position + 1
                    ),
                ));
            }
            if item.contains(['*', '[', ']']) {
                return Err(bad(
                    expression,
                    format!(
                        "`{item}`: `*` and filters must stand alone, as in `*` or `*[rack=r1]`"
                    ),
                ));
            }
            if let Some((from, to)) = item.split_once("..") {
                let (Ok(first), Ok(last)) = (from.trim().parse::<u64>(), to.trim().parse::<u64>())
                else {
                    return Err(bad(
                        expression,
                        format!("`{item}`: a range needs a number on both sides, as in 0..2"),
                    ));
                };
                if first > last {
                    return Err(bad(
                        expression,
                        format!("`{item}` goes backwards; write {last}..{first}"),
                    ));
                }
                if last - first >= MAX_IDS as u64 {
                    return Err(bad(
                        expression,
                        format!(
                            "`{item}` names {} IDs; at most {MAX_IDS} may be named at once",
                            u128::from(last - first) + 1
                        ),
                    ));
                }
                for n in first..=last {
                    push_unique(&mut ids, n.to_string());
                }
            } else if valid_id(item) {
                push_unique(&mut ids, item.to_owned());
            } else {
                return Err(bad(
                    expression,
                    format!(
                        "`{item}` is not a valid ID: IDs are 1 to 64 letters, digits, '-' or '_'"
                    ),
                ));
            }
            if ids.len() > MAX_IDS {
                return Err(bad(
                    expression,
                    format!("it names more than {MAX_IDS} IDs; split the request"),
                ));
            }
        }
        Ok(IdExpr::Ids(ids))
    }

    /// The IDs of nodes to create: `*` selects existing nodes, so it is refused.
    pub fn new_ids(&self, expression: &str, noun: &str) -> Result<Vec<String>, ApiError> {
        match self {
            IdExpr::Ids(ids) => Ok(ids.clone()),
            IdExpr::All { .. } => Err(bad(
                expression,
                format!("`*` selects existing {noun}s; name the new IDs instead, e.g. 0..2 or 3,4"),
            )),
        }
    }

    /// The IDs this expression names among `nodes` (ID and host facts, when
    /// placed; removed nodes left out by the caller). Named IDs are returned
    /// as written, whether or not they exist, so the caller can report every
    /// missing one.
    pub fn select<'a>(
        &self,
        nodes: impl IntoIterator<Item = (&'a str, Option<&'a Host>)>,
    ) -> Vec<String> {
        match self {
            IdExpr::Ids(ids) => ids.clone(),
            IdExpr::All { filters } => {
                let mut chosen: Vec<String> = nodes
                    .into_iter()
                    .filter(|(_, host)| {
                        filters
                            .iter()
                            .all(|f| host.and_then(|h| h.field(&f.field)) == Some(f.value.as_str()))
                    })
                    .map(|(id, _)| id.to_owned())
                    .collect();
                chosen.sort_by(|a, b| natural_cmp(a, b));
                chosen
            }
        }
    }
}

fn push_unique(ids: &mut Vec<String>, id: String) {
    if !ids.contains(&id) {
        ids.push(id);
    }
}

fn parse_filters(expression: &str, mut rest: &str) -> Result<Vec<Filter>, ApiError> {
    let mut filters = Vec::new();
    while !rest.is_empty() {
        let Some(inner) = rest.strip_prefix('[') else {
            return Err(bad(
                expression,
                format!(
                    "after `*` only filters in brackets may follow, as in *[rack=r1]; found `{rest}`"
                ),
            ));
        };
        let Some((body, after)) = inner.split_once(']') else {
            return Err(bad(expression, "a `[` is not closed by `]`"));
        };
        for test in body.split(',') {
            let Some((field, value)) = test.split_once('=') else {
                return Err(bad(
                    expression,
                    format!(
                        "filter `{}` is not field=value, as in rack=r1 or hostname=a1.local",
                        test.trim()
                    ),
                ));
            };
            let (field, value) = (field.trim(), value.trim());
            if field.is_empty()
                || !field
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
            {
                return Err(bad(
                    expression,
                    format!(
                        "filter field `{field}` must be `hostname` or an agent attribute name (letters, digits, '_', '-', '.')"
                    ),
                ));
            }
            if value.is_empty() || value.contains('[') {
                return Err(bad(
                    expression,
                    format!("filter `{field}=` needs a value, as in {field}=r1"),
                ));
            }
            filters.push(Filter {
                field: field.to_owned(),
                value: value.to_owned(),
            });
        }
        rest = after.trim_start();
    }
    Ok(filters)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn ids(e: &str) -> Vec<String> {
        match IdExpr::parse(e) {
            Ok(IdExpr::Ids(ids)) => ids,
            other => panic!("{e}: expected IDs, got {other:?}"),
        }
    }

    fn reason(e: &str) -> String {
        match IdExpr::parse(e) {
            Err(ApiError::BadIds { reason, .. }) => reason,
            other => panic!("{e}: expected an error, got {other:?}"),
        }
    }

    fn host(name: &str, rack: &str) -> Host {
        Host {
            hostname: name.into(),
            attributes: BTreeMap::from([("rack".to_string(), rack.to_string())]),
        }
    }

    #[test]
    fn lists_and_ranges() {
        assert_eq!(ids("0"), ["0"]);
        assert_eq!(ids("0..2"), ["0", "1", "2"]);
        assert_eq!(ids("0,3,5"), ["0", "3", "5"]);
        assert_eq!(ids(" 0..2 , 7 "), ["0", "1", "2", "7"]);
        assert_eq!(ids("5..5"), ["5"]);
        assert_eq!(ids("a-1,b_2"), ["a-1", "b_2"]);
        assert_eq!(ids("1,0..2,1"), ["1", "0", "2"], "duplicates dropped");
        assert_eq!(ids("0..999").len(), MAX_IDS);
    }

    #[test]
    fn star_and_filters() {
        assert_eq!(
            IdExpr::parse("*").ok(),
            Some(IdExpr::All { filters: vec![] })
        );
        let Ok(IdExpr::All { filters }) = IdExpr::parse("*[rack=r1, hostname=a1.local][zone=z]")
        else {
            panic!("filters expected");
        };
        let pairs: Vec<_> = filters
            .iter()
            .map(|f| (f.field.as_str(), f.value.as_str()))
            .collect();
        assert_eq!(
            pairs,
            [("rack", "r1"), ("hostname", "a1.local"), ("zone", "z")]
        );
    }

    #[test]
    fn bad_syntax_says_what_and_how() {
        assert!(reason("").contains("empty"));
        assert!(reason("0,,1").contains("item 2 is empty"));
        assert!(reason("0,").contains("item 2 is empty"));
        assert!(reason("2..0").contains("write 0..2"));
        assert!(reason("a..b").contains("number on both sides"));
        assert!(reason("0...2").contains("number on both sides"));
        assert!(reason("0..100000").contains("at most 1000"));
        assert!(reason("0..18446744073709551615").contains("at most 1000"));
        assert!(reason("0..600,1000..1600").contains("more than 1000"));
        assert!(reason("0,*").contains("stand alone"));
        assert!(reason("*x").contains("only filters in brackets"));
        assert!(reason("*[rack=r1").contains("not closed"));
        assert!(reason("*[rack]").contains("field=value"));
        assert!(reason("*[=r1]").contains("hostname"));
        assert!(reason("*[rack=]").contains("needs a value"));
        assert!(reason("a:b").contains("not a valid ID"));
        assert!(reason("0 1").contains("not a valid ID"));
    }

    #[test]
    fn star_selects_matching_nodes_in_natural_order() {
        let h0 = host("a1.local", "r1");
        let h10 = host("a2.local", "r1");
        let h2 = host("a3.local", "r2");
        let nodes = [
            ("0", Some(&h0)),
            ("10", Some(&h10)),
            ("2", Some(&h2)),
            ("x", None),
        ];
        let all = IdExpr::parse("*").expect("parse");
        assert_eq!(all.select(nodes), ["0", "2", "10", "x"]);
        let r1 = IdExpr::parse("*[rack=r1]").expect("parse");
        assert_eq!(r1.select(nodes), ["0", "10"], "unplaced nodes never match");
        let one = IdExpr::parse("*[hostname=a3.local]").expect("parse");
        assert_eq!(one.select(nodes), ["2"]);
        let both = IdExpr::parse("*[rack=r1,hostname=a2.local]").expect("parse");
        assert_eq!(both.select(nodes), ["10"]);
        let named = IdExpr::parse("7,0").expect("parse");
        assert_eq!(named.select(nodes), ["7", "0"], "named IDs pass through");
    }

    #[test]
    fn new_ids_refuse_star() {
        let all = IdExpr::parse("*").expect("parse");
        let Err(ApiError::BadIds { reason, .. }) = all.new_ids("*", "broker") else {
            panic!("expected refusal");
        };
        assert!(reason.contains("selects existing brokers"), "{reason}");
        let some = IdExpr::parse("0..1").expect("parse");
        assert_eq!(
            some.new_ids("0..1", "broker").ok(),
            Some(vec!["0".into(), "1".into()])
        );
    }
}
