//! The `cassandra-mesos` command line: what every command parses into, the
//! errors bad flags get, and how node options become configuration.

use std::{path::Path, time::Duration};

use cassandra_mesos::cli::{self, Cli, Command, NodeArgs, ServiceArtifact};
use clap::FromArgMatches;
use framework_cli::{NodeCommand, NodeOptions, PlanCommand};
use scheduler_app::Master;
use serde_json::json;

fn try_parse(args: &[&str]) -> Result<Cli, clap::Error> {
    let matches = cli::command()
        .try_get_matches_from(std::iter::once("cassandra-mesos").chain(args.iter().copied()))?;
    Cli::from_arg_matches(&matches)
}

fn parse(args: &[&str]) -> Cli {
    try_parse(args).unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

fn parse_error(args: &[&str]) -> String {
    match try_parse(args) {
        Ok(cli) => panic!("{args:?} must not parse, got {:?}", cli.command),
        Err(e) => e.to_string(),
    }
}

fn scheduler(args: &[&str]) -> cli::SchedulerCommand {
    let mut all = vec!["scheduler"];
    all.extend_from_slice(args);
    match parse(&all).command {
        Command::Scheduler(command) => *command,
        other => panic!("expected scheduler, got {other:?}"),
    }
}

#[test]
fn the_tree_is_consistent() {
    cli::command().debug_assert();
}

#[test]
fn scheduler_takes_the_shared_and_the_cassandra_flags() {
    let command = scheduler(&[
        "--master",
        "local:3",
        "--local-first-agent-ip",
        "127.0.9.2",
        "--drain-timeout",
        "90s",
        "--stop-grace",
        "30s",
        "--check-timeout",
        "5s",
        "--cassandra-tarball",
        "/opt/cassandra-5.0.9.tar.gz",
    ]);
    assert_eq!(command.scheduler.master, Master::Local(3));
    let settings = command.cassandra.settings().expect("settings");
    assert_eq!(settings.drain_timeout, Duration::from_secs(90));
    assert_eq!(settings.stop_grace, Duration::from_secs(30));
    assert_eq!(settings.check_timeout, Duration::from_secs(5));
    let defaults = scheduler(&["--master", "local"])
        .cassandra
        .settings()
        .expect("defaults");
    assert_eq!(defaults.drain_timeout, Duration::from_secs(120));
}

#[test]
fn a_download_url_needs_a_sha256_and_a_known_top_directory() {
    let err = parse_error(&[
        "scheduler",
        "--master",
        "local",
        "--cassandra-url",
        "https://h/c.tar.gz",
    ]);
    assert!(err.contains("--cassandra-sha256"), "{err}");
    let sha = "a".repeat(64);
    let ok = scheduler(&[
        "--master",
        "local",
        "--cassandra-url",
        "https://h/cassandra-5.0.9.tar.gz",
        "--cassandra-sha256",
        &sha,
    ]);
    assert!(ok.cassandra.settings().is_ok());
    assert_eq!(
        ok.cassandra.artifact(Path::new("/nonexistent")),
        Ok(ServiceArtifact::External(scheduler_runtime::ArtifactRef {
            url: "https://h/cassandra-5.0.9.tar.gz".into(),
            sha256: sha.clone(),
        }))
    );
    let bad = scheduler(&[
        "--master",
        "local",
        "--cassandra-url",
        "ftp://h/download",
        "--cassandra-sha256",
        "xyz",
    ]);
    let err = bad.cassandra.settings().expect_err("bad").to_string();
    assert!(err.contains("is not a SHA-256 digest"), "{err}");
    assert!(
        err.contains("--cassandra-url: scheme \"ftp\" is not supported"),
        "{err}"
    );
    let unnamed = scheduler(&[
        "--master",
        "local",
        "--cassandra-url",
        "https://h/download",
        "--cassandra-sha256",
        &sha,
    ]);
    let err = unnamed
        .cassandra
        .settings()
        .expect_err("no dir")
        .to_string();
    assert!(err.contains("--cassandra-dist-dir"), "{err}");
}

#[test]
fn the_default_tarball_is_the_newest_in_the_cache() {
    let dir = tempfile::tempdir().expect("dir");
    let artifacts = dir.path().join("artifacts");
    let missing = cli::newest_tarball(&artifacts).expect_err("empty");
    assert!(
        missing.contains("packaging/service-tarball.sh cassandra"),
        "{missing}"
    );
    std::fs::create_dir_all(&artifacts).expect("dir");
    for name in [
        "cassandra-4.1.9.tar.gz",
        "cassandra-5.0.9.tar.gz",
        "kafka-9.9.9.tar.gz",
    ] {
        std::fs::write(artifacts.join(name), b"x").expect("write");
    }
    assert_eq!(
        cli::newest_tarball(&artifacts).expect("found"),
        artifacts.join("cassandra-5.0.9.tar.gz")
    );
    assert!(cli::served_name(Path::new("/x/cassandra.zip")).is_err());
    assert_eq!(
        cli::cache_dir(|k| (k == "HOME").then(|| "/home/op".to_owned())),
        Some("/home/op/.cache/mesos-data-services".into())
    );
}

#[test]
fn every_node_plan_and_endpoint_command_parses() {
    for verb in ["start", "stop", "restart", "replace", "remove"] {
        let cli = parse(&["node", verb, "0..2"]);
        assert!(matches!(cli.command, Command::Node(_)), "{verb}");
    }
    assert!(matches!(
        parse(&["node", "list"]).command,
        Command::Node(NodeCommand::List { .. })
    ));
    assert!(matches!(
        parse(&["node", "show", "1"]).command,
        Command::Node(NodeCommand::Show { .. })
    ));
    assert!(matches!(
        parse(&["plan", "list"]).command,
        Command::Plan(PlanCommand::List)
    ));
    assert!(matches!(parse(&["endpoints"]).command, Command::Endpoints));
    let cli = parse(&["--api", "http://10.0.0.1:7000", "--json", "node", "list"]);
    assert!(cli.global.json);
}

fn options(args: &[&str]) -> NodeArgs {
    let mut all = vec!["node", "add", "0"];
    all.extend_from_slice(args);
    match parse(&all).command {
        Command::Node(NodeCommand::Add { options, .. }) => options,
        other => panic!("expected node add, got {other:?}"),
    }
}

#[test]
fn node_options_map_to_the_node_configuration() {
    let o = options(&[
        "--cpus",
        "0.5",
        "--mem",
        "1024",
        "--heap",
        "512",
        "--disk",
        "2000",
        "--cluster-name",
        "prod",
        "--num-tokens",
        "8",
        "--native-port",
        "9042",
        "--storage-port",
        "7000",
        "--jmx-port",
        "7199",
        "--constraints",
        "hostname=unique",
        "--dc-attribute",
        "zone",
        "--rack-attribute",
        "shelf",
        "--seeds",
        "10.0.0.1:7000,10.0.0.2",
        "--option",
        "concurrent_writes=64",
        "--option",
        "compaction_throughput=64MiB/s",
        "--option",
        "auto_snapshot=false",
        "--jvm-options",
        "-Dcassandra.ring_delay_ms=5000",
    ]);
    assert_eq!(
        o.to_config().expect("config"),
        json!({
            "cpus": 0.5, "mem": 1024, "heap": 512, "disk": 2000,
            "cluster_name": "prod", "num_tokens": 8,
            "native_port": 9042, "storage_port": 7000, "jmx_port": 7199,
            "constraints": "hostname=unique",
            "dc_attribute": "zone", "rack_attribute": "shelf",
            "seeds": ["10.0.0.1:7000", "10.0.0.2"],
            "options": {
                "concurrent_writes": 64,
                "compaction_throughput": "64MiB/s",
                "auto_snapshot": false
            },
            "jvm_options": "-Dcassandra.ring_delay_ms=5000"
        })
    );
    // The parsed configuration is one the scheduler accepts.
    let config =
        cassandra_mesos::NodeConfig::from_json(o.to_config().expect("config")).expect("valid");
    assert!(config.problems().is_empty(), "{:?}", config.problems());
}

#[test]
fn only_given_node_options_are_sent_and_bad_ones_say_why() {
    assert_eq!(options(&[]).to_config().expect("config"), json!({}));
    let err = options(&["--cpus=0"]).to_config().expect_err("cpus");
    assert!(err.contains("positive"), "{err}");
    let err = parse_error(&["node", "add", "0", "--option", "no-equals"]);
    assert!(err.contains("is not KEY=VALUE"), "{err}");
}

#[test]
fn contact_points_come_from_the_endpoints() {
    assert_eq!(
        cli::contact_points(&json!({"contact_points": "10.0.0.1:9042,10.0.0.2:9042"})),
        Ok(vec!["10.0.0.1:9042".to_owned(), "10.0.0.2:9042".to_owned()])
    );
    let none = cli::contact_points(&json!({"contact_points": ""})).expect_err("none");
    assert!(none.contains("node add"), "{none}");
    assert!(cli::contact_points(&json!({"bootstrap_servers": "x"})).is_err());
}
