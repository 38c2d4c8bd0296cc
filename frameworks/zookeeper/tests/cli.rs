//! The `zookeeper-mesos` command line as parsed: the shared `server`/`plan`
//! tree with ZooKeeper's options, and the scheduler's own flags with their
//! errors.

use clap::FromArgMatches as _;
use framework_cli::{NodeCommand, NodeOptions as _};
use serde_json::json;
use zookeeper_mesos::cli::{self, Cli, Command, ServiceArtifact};

fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
    let mut all = vec!["zookeeper-mesos"];
    all.extend_from_slice(args);
    let matches = cli::command().try_get_matches_from(all)?;
    Cli::from_arg_matches(&matches)
}

#[test]
fn server_add_maps_options_to_a_configuration() {
    let cli = parse(&[
        "server",
        "add",
        "0..2",
        "--heap",
        "128",
        "--mem",
        "384",
        "--client-port",
        "2181",
        "--option",
        "tickTime=500",
        "--option",
        "maxClientCnxns=60",
        "--jvm-options",
        "-Dx=1",
        "--constraints",
        "hostname=unique",
    ])
    .expect("parses");
    let Command::Server(NodeCommand::Add { ids, options, .. }) = cli.command else {
        panic!("server add expected");
    };
    assert_eq!(ids, "0..2");
    assert_eq!(
        options.to_config().expect("config"),
        json!({"heap": 128, "mem": 384, "client_port": 2181, "jvm_options": "-Dx=1",
               "constraints": "hostname=unique",
               "options": {"tickTime": "500", "maxClientCnxns": "60"}})
    );
}

#[test]
fn every_server_verb_exists() {
    for verb in [
        vec!["server", "list"],
        vec!["server", "show", "1"],
        vec!["server", "update", "0..2", "--option", "tickTime=1000"],
        vec!["server", "start", "1"],
        vec!["server", "stop", "1"],
        vec!["server", "restart", "0..2"],
        vec!["server", "replace", "2"],
        vec!["server", "remove", "3..4", "--yes"],
        vec!["plan", "list"],
        vec!["endpoints"],
    ] {
        parse(&verb).unwrap_or_else(|e| panic!("{verb:?}: {e}"));
    }
}

#[test]
fn an_option_without_a_value_is_refused_with_an_example() {
    let err = parse(&["server", "add", "0", "--option", "tickTime"]).expect_err("no =");
    assert!(err.to_string().contains("KEY=VALUE"), "{err}");
}

#[test]
fn scheduler_flags_become_settings_with_every_problem_at_once() {
    let cli = parse(&[
        "scheduler",
        "--master",
        "local:3",
        "--dynamic-reconfig",
        "false",
        "--super-password",
        "a:b",
        "--zookeeper-url",
        "ftp://x/zookeeper-3.9.5.tar.gz",
        "--zookeeper-sha256",
        "abc",
    ])
    .expect("parses");
    let Command::Scheduler(args) = cli.command else {
        panic!("scheduler expected");
    };
    assert!(!args.zookeeper.dynamic_reconfig);
    let err = args
        .zookeeper
        .settings()
        .expect_err("three problems")
        .to_string();
    for needle in ["--super-password", "--zookeeper-sha256", "--zookeeper-url"] {
        assert!(err.contains(needle), "{needle} in {err}");
    }
}

#[test]
fn an_external_url_is_handed_to_agents_as_is() {
    let sha = "ab".repeat(32);
    let cli = parse(&[
        "scheduler",
        "--master",
        "local",
        "--zookeeper-url",
        "https://example.org/apache-zookeeper-3.9.5-bin.tar.gz",
        "--zookeeper-sha256",
        &sha,
    ])
    .expect("parses");
    let Command::Scheduler(args) = cli.command else {
        panic!("scheduler expected");
    };
    let settings = args.zookeeper.settings().expect("valid");
    assert!(settings.dynamic_reconfig, "on by default");
    match args
        .zookeeper
        .artifact(std::path::Path::new("/nonexistent"))
    {
        Ok(ServiceArtifact::External(reference)) => assert_eq!(reference.sha256, sha),
        other => panic!("external artifact expected: {other:?}"),
    }
}

#[test]
fn a_missing_tarball_says_how_to_build_one() {
    let cli = parse(&["scheduler", "--master", "local"]).expect("parses");
    let Command::Scheduler(args) = cli.command else {
        panic!("scheduler expected");
    };
    let dir = tempfile::tempdir().expect("dir");
    let err = args.zookeeper.artifact(dir.path()).expect_err("no tarball");
    assert!(
        err.contains("packaging/service-tarball.sh zookeeper"),
        "{err}"
    );
}
