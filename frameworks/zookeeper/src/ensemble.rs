//! Pure decisions about the ensemble: what a server's `srvr` answer says,
//! what the committed configuration holds, whether a quorum survives taking
//! servers down, which reconfiguration brings a server in (or moves a
//! replaced one), and the restart order with the leader last.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::render::Member;

/// A server's role, from `srvr`'s `Mode:` line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// It leads the ensemble.
    Leader,
    /// It follows the leader.
    Follower,
    /// A non-voting member.
    Observer,
    /// Running alone (standalone mode; never rendered by the framework).
    Standalone,
}

impl Mode {
    /// Whether the server takes part in the quorum and serves.
    pub fn serves(self) -> bool {
        matches!(self, Mode::Leader | Mode::Follower)
    }
}

/// The mode in a `srvr` (or `stat`) answer; `None` when the server does not
/// serve (e.g. "This ZooKeeper instance is not currently serving requests").
pub fn parse_mode(answer: &str) -> Option<Mode> {
    let mode = answer
        .lines()
        .find_map(|l| l.trim().strip_prefix("Mode:"))?
        .trim();
    match mode {
        "leader" => Some(Mode::Leader),
        "follower" => Some(Mode::Follower),
        "observer" => Some(Mode::Observer),
        "standalone" => Some(Mode::Standalone),
        _ => None,
    }
}

/// The `server.N` entries of a configuration as ZooKeeper prints it
/// (`/zookeeper/config`, or a reconfiguration's answer), by myid.
pub fn parse_config(text: &str) -> BTreeMap<u8, String> {
    text.lines()
        .filter_map(|l| {
            let (key, value) = l.trim().split_once('=')?;
            let id = key.strip_prefix("server.")?.parse().ok()?;
            Some((id, value.trim().to_owned()))
        })
        .collect()
}

/// How many voters make a quorum of `members`.
pub fn majority(members: usize) -> usize {
    members / 2 + 1
}

/// A check's answer: whether it passed, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// Passed.
    pub ok: bool,
    /// What was found.
    pub message: String,
}

impl Verdict {
    fn new(ok: bool, message: String) -> Self {
        Verdict { ok, message }
    }
}

/// May `leaving` go down, given the members and which of them serve now?
///
/// The servers left serving must be a majority of the ensemble, or the
/// ensemble stops answering writes (and reads, for most clients).
pub fn may_take_down(members: &[u8], serving: &BTreeMap<u8, Mode>, leaving: &[u8]) -> Verdict {
    let needed = majority(members.len());
    let left: Vec<u8> = members
        .iter()
        .copied()
        .filter(|m| !leaving.contains(m) && serving.get(m).is_some_and(|mode| mode.serves()))
        .collect();
    let names = |ids: &[u8]| ids.iter().map(u8::to_string).collect::<Vec<_>>().join(",");
    if left.len() >= needed {
        Verdict::new(
            true,
            format!(
                "servers {} keep a quorum ({} of {} needed) without {}",
                names(&left),
                needed,
                members.len(),
                names(leaving)
            ),
        )
    } else {
        Verdict::new(
            false,
            format!(
                "without {} only {} of the {} servers would serve ({}), fewer than the quorum of {needed}",
                names(leaving),
                left.len(),
                members.len(),
                if left.is_empty() {
                    "none".to_owned()
                } else {
                    names(&left)
                }
            ),
        )
    }
}

/// May `leaving` be taken out of the ensemble by a reconfiguration? The
/// leader commits it only with a quorum of the old *and* the new
/// configuration, and the new one must not be empty.
pub fn may_reconfigure_out(
    members: &[u8],
    serving: &BTreeMap<u8, Mode>,
    leaving: &[u8],
) -> Verdict {
    let remaining: Vec<u8> = members
        .iter()
        .copied()
        .filter(|m| !leaving.contains(m))
        .collect();
    if remaining.is_empty() {
        return Verdict::new(
            false,
            "the ensemble cannot lose all its servers; remove all but one at most".into(),
        );
    }
    let old = may_take_down(members, serving, leaving);
    if !old.ok {
        return old;
    }
    may_take_down(&remaining, serving, &[])
}

/// What to do so that `member` is a voting member of the committed
/// configuration `committed`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Join {
    /// It is in, with this address.
    Member,
    /// Add it (or change its address) with this `server.N=…` line.
    Add(String),
}

/// Whether the committed configuration already has `member` as it is placed.
pub fn join(committed: &BTreeMap<u8, String>, member: &Member) -> Join {
    match committed.get(&member.id) {
        Some(spec) if same_spec(spec, &member.spec()) => Join::Member,
        _ => Join::Add(member.line()),
    }
}

/// Before `member` starts where it is placed: the `server.N=…` line that
/// moves it to its placed address in the committed configuration, when that
/// configuration holds it at another one (a server replaced onto another
/// agent). A server the configuration does not hold joins once it serves
/// (see [`join`]); one it holds as placed needs nothing.
pub fn readdress(committed: &BTreeMap<u8, String>, member: &Member) -> Option<String> {
    match committed.get(&member.id) {
        Some(spec) if !same_spec(spec, &member.spec()) => Some(member.line()),
        _ => None,
    }
}

/// May the committed configuration move `moving` (which is down) to a new
/// address? The leader commits that only with a quorum of the configuration
/// acknowledging, so the other voters must form one.
pub fn may_readdress(committed: &[u8], serving: &BTreeMap<u8, Mode>, moving: u8) -> Verdict {
    let verdict = may_take_down(committed, serving, &[moving]);
    if verdict.ok {
        verdict
    } else {
        Verdict::new(
            false,
            format!(
                "server {moving} cannot move to its new address: {}; start the stopped servers first",
                verdict.message
            ),
        )
    }
}

/// ZooKeeper prints `host:peer:election:participant;host:client`, sometimes
/// with `0.0.0.0` as the client host; compare the parts that matter.
fn same_spec(committed: &str, wanted: &str) -> bool {
    let parts = |s: &str| -> (String, String) {
        let (quorum, client) = s.split_once(';').unwrap_or((s, ""));
        let client_port = client.rsplit(':').next().unwrap_or("").to_owned();
        (quorum.to_owned(), client_port)
    };
    parts(committed) == parts(wanted)
}

/// `nodes` in order, the leader moved to the end: restarting it forces an
/// election, so it happens once, last.
pub fn leader_last(mut nodes: Vec<String>, leader: Option<&str>) -> Vec<String> {
    if let Some(leader) = leader
        && let Some(i) = nodes.iter().position(|n| n == leader)
    {
        let node = nodes.remove(i);
        nodes.push(node);
    }
    nodes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serving(entries: &[(u8, Mode)]) -> BTreeMap<u8, Mode> {
        entries.iter().copied().collect()
    }

    #[test]
    fn modes_are_read_from_srvr() {
        let answer = "Zookeeper version: 3.9.5\nLatency min/avg/max: 0/0.0/0\nReceived: 3\nSent: 2\nConnections: 1\nOutstanding: 0\nZxid: 0x100000000\nMode: follower\nNode count: 5\n";
        assert_eq!(parse_mode(answer), Some(Mode::Follower));
        assert_eq!(parse_mode("Mode: leader\n"), Some(Mode::Leader));
        assert_eq!(
            parse_mode("This ZooKeeper instance is not currently serving requests\n"),
            None
        );
        assert!(!Mode::Observer.serves());
    }

    #[test]
    fn the_committed_configuration_is_parsed() {
        let text = "server.0=127.0.1.2:31001:31002:participant;0.0.0.0:31000\nserver.2=127.0.1.4:1:2:participant;127.0.1.4:3\nversion=100000003\n";
        let config = parse_config(text);
        assert_eq!(config.keys().copied().collect::<Vec<_>>(), vec![0, 2]);
        let me = Member {
            id: 0,
            host: "127.0.1.2".into(),
            client: 31000,
            peer: 31001,
            election: 31002,
        };
        assert_eq!(join(&config, &me), Join::Member);
        let moved = Member {
            host: "127.0.1.9".into(),
            ..me.clone()
        };
        assert_eq!(
            join(&config, &moved),
            Join::Add("server.0=127.0.1.9:31001:31002:participant;127.0.1.9:31000".into())
        );
        let new = Member { id: 1, ..me };
        assert!(matches!(join(&config, &new), Join::Add(_)));
    }

    #[test]
    fn a_replaced_server_is_moved_before_it_starts() {
        let committed = parse_config(
            "server.0=127.0.1.2:31001:31002:participant;0.0.0.0:31000\n\
             server.1=127.0.1.3:31001:31002:participant;127.0.1.3:31000\n\
             server.2=127.0.1.4:31001:31002:participant;127.0.1.4:31000\n",
        );
        let moved = Member {
            id: 1,
            host: "127.0.1.5".into(),
            client: 31003,
            peer: 31004,
            election: 31005,
        };
        assert_eq!(
            readdress(&committed, &moved).as_deref(),
            Some("server.1=127.0.1.5:31004:31005:participant;127.0.1.5:31003")
        );
        let in_place = Member {
            id: 0,
            host: "127.0.1.2".into(),
            client: 31000,
            peer: 31001,
            election: 31002,
        };
        assert_eq!(readdress(&committed, &in_place), None);
        // A new server is not in the configuration: it joins once it serves.
        assert_eq!(readdress(&committed, &Member { id: 3, ..moved }), None);

        let ids = [0, 1, 2];
        let two = serving(&[(0, Mode::Leader), (2, Mode::Follower)]);
        assert!(may_readdress(&ids, &two, 1).ok);
        let one = serving(&[(0, Mode::Leader)]);
        let v = may_readdress(&ids, &one, 1);
        assert!(!v.ok);
        assert!(
            v.message
                .starts_with("server 1 cannot move to its new address")
                && v.message.contains("quorum"),
            "{}",
            v.message
        );
    }

    #[test]
    fn quorum_arithmetic() {
        assert_eq!([1, 2, 3, 4, 5, 6].map(majority), [1, 2, 2, 3, 3, 4]);
        let all = serving(&[(0, Mode::Leader), (1, Mode::Follower), (2, Mode::Follower)]);
        assert!(may_take_down(&[0, 1, 2], &all, &[1]).ok);
        // One already down: taking a second would lose the quorum.
        let two = serving(&[(0, Mode::Leader), (2, Mode::Follower)]);
        let v = may_take_down(&[0, 1, 2], &two, &[2]);
        assert!(!v.ok);
        assert!(
            v.message.contains("fewer than the quorum of 2"),
            "{}",
            v.message
        );
        // Observers do not count.
        let obs = serving(&[(0, Mode::Leader), (1, Mode::Observer), (2, Mode::Follower)]);
        assert!(!may_take_down(&[0, 1, 2], &obs, &[2]).ok);
    }

    #[test]
    fn shrinking_needs_a_quorum_of_the_old_and_the_new_ensemble() {
        let five = serving(&[
            (0, Mode::Follower),
            (1, Mode::Follower),
            (2, Mode::Leader),
            (3, Mode::Follower),
            (4, Mode::Follower),
        ]);
        assert!(may_reconfigure_out(&[0, 1, 2, 3, 4], &five, &[3, 4]).ok);
        // Server 1 down: 0 and 2 are no quorum of {0,1,2}.
        let mut gap = five.clone();
        gap.remove(&1);
        let v = may_reconfigure_out(&[0, 1, 2, 3, 4], &gap, &[3, 4]);
        assert!(!v.ok, "{}", v.message);
        assert!(!may_reconfigure_out(&[0], &five, &[0]).ok);
    }

    #[test]
    fn the_leader_restarts_last() {
        let nodes = vec!["0".to_owned(), "1".into(), "2".into()];
        assert_eq!(leader_last(nodes.clone(), Some("1")), ["0", "2", "1"]);
        assert_eq!(leader_last(nodes.clone(), Some("7")), ["0", "1", "2"]);
        assert_eq!(leader_last(nodes, None), ["0", "1", "2"]);
    }
}
