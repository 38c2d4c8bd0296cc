//! The `kafka-mesos` command line: what every command parses into, the
//! errors bad flags get, and how broker options become configuration.

use std::{path::Path, time::Duration};

use clap::FromArgMatches;
use framework_cli::{CliCommand, NodeCommand, NodeOptions, PlanCommand, build_config};
use kafka_mesos::{
    BrokerConfig, LogLevel, Mode, SafetyLevel,
    cli::{self, BrokerOptions, Cli, Command, ModeArg, ServiceArtifact, TopicCommand},
    safety::{ClusterState, PartitionState, TopicState},
};
use scheduler_app::Master;
use serde_json::json;

fn try_parse(args: &[&str]) -> Result<Cli, clap::Error> {
    let matches = cli::command()
        .try_get_matches_from(std::iter::once("kafka-mesos").chain(args.iter().copied()))?;
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
fn scheduler_takes_the_shared_and_the_kafka_flags() {
    let command = scheduler(&[
        "--master",
        "local:3",
        "--storage",
        "/var/lib/kafka-state.json",
        "--api-bind",
        "127.0.0.1:7100",
        "--executor",
        "/opt/service-executor",
        "--mode",
        "kraft",
        "--controllers",
        "1",
        "--safety",
        "min-isr",
        "--stop-grace",
        "2m",
        "--check-timeout",
        "5s",
        "--kafka-tarball",
        "/tmp/kafka-3.9.2.tar.gz",
    ]);
    assert_eq!(command.scheduler.master, Master::Local(3));
    assert_eq!(
        command.scheduler.storage.as_deref(),
        Some("/var/lib/kafka-state.json")
    );
    assert_eq!(command.scheduler.api_bind.to_string(), "127.0.0.1:7100");
    assert_eq!(command.kafka.mode, ModeArg::Kraft);
    assert_eq!(
        command.kafka.kafka_tarball.as_deref(),
        Some(Path::new("/tmp/kafka-3.9.2.tar.gz"))
    );
    let settings = command.kafka.settings().expect("valid settings");
    assert_eq!(settings.mode, Mode::Kraft);
    assert_eq!(settings.controllers, 1);
    assert_eq!(settings.safety, SafetyLevel::MinIsr);
    assert_eq!(settings.stop_grace, Duration::from_secs(120));
    assert_eq!(settings.check_timeout, Duration::from_secs(5));
    assert!(
        cli::first_start_settings(&settings).and_then(|s| s["cluster_id"].as_str().map(str::len))
            == Some(22),
        "KRaft gets a cluster ID on first start"
    );
}

#[test]
fn scheduler_defaults_are_kraft_with_the_isr_check() {
    let command = scheduler(&["--master", "http://127.0.0.1:5050"]);
    let settings = command.kafka.settings().expect("defaults are valid");
    assert_eq!(settings.mode, Mode::Kraft);
    assert_eq!(settings.safety, SafetyLevel::Isr);
    assert_eq!(settings.controllers, 3);
    assert_eq!(settings.stop_grace, Duration::from_secs(60));
    assert_eq!(command.scheduler.api_bind.to_string(), "127.0.0.1:7000");
}

#[test]
fn zookeeper_mode_needs_its_connect_string() {
    let command = scheduler(&[
        "--master",
        "local",
        "--mode",
        "zookeeper",
        "--zookeeper-connect",
        "127.0.0.2:2181,127.0.0.3:2181/kafka",
    ]);
    let settings = command.kafka.settings().expect("valid");
    assert_eq!(
        settings.mode,
        Mode::ZooKeeper {
            connect: "127.0.0.2:2181,127.0.0.3:2181/kafka".into()
        }
    );
    assert_eq!(cli::first_start_settings(&settings), None);

    let missing = parse_error(&["scheduler", "--master", "local", "--mode", "zookeeper"]);
    assert!(missing.contains("--zookeeper-connect"), "{missing}");

    let stray = scheduler(&["--master", "local", "--zookeeper-connect", "127.0.0.2:2181"]);
    let error = stray.kafka.settings().expect_err("KRaft with ZooKeeper");
    assert!(
        error.to_string().contains("only with --mode zookeeper"),
        "{error}"
    );
}

#[test]
fn bad_scheduler_flags_say_what_is_wrong() {
    let cases: &[(&[&str], &str)] = &[
        (&["scheduler"], "--master"),
        (&["scheduler", "--master", "ftp://x"], "local[:N]"),
        (&["scheduler", "--master", "local:0"], "1 to 250"),
        (
            &["scheduler", "--master", "local", "--safety", "strict"],
            "none, ready, min-isr or isr",
        ),
        (
            &["scheduler", "--master", "local", "--mode", "raft"],
            "kraft",
        ),
        (
            &["scheduler", "--master", "local", "--stop-grace", "soon"],
            "90s, 10m or 1h",
        ),
        (
            &[
                "scheduler",
                "--master",
                "local",
                "--kafka-url",
                "https://x/k.tgz",
            ],
            "--kafka-sha256",
        ),
        (
            &[
                "scheduler",
                "--master",
                "local",
                "--kafka-tarball",
                "/k.tgz",
                "--kafka-url",
                "https://x/k.tgz",
                "--kafka-sha256",
                "00",
            ],
            "cannot be used with",
        ),
        (
            &["scheduler", "--master", "local", "--no-such-flag"],
            "--no-such-flag",
        ),
    ];
    for (args, want) in cases {
        let error = parse_error(args);
        assert!(error.contains(want), "{args:?}: {want:?} not in {error}");
    }
}

#[test]
fn a_download_url_needs_a_real_sha256_and_a_known_top_directory() {
    let sha = "ab".repeat(32);
    let good = scheduler(&[
        "--master",
        "local",
        "--kafka-url",
        "https://downloads.apache.org/kafka/3.9.2/kafka_2.13-3.9.2.tgz",
        "--kafka-sha256",
        &sha.to_uppercase(),
    ]);
    good.kafka.settings().expect("valid");
    assert_eq!(
        good.kafka.artifact(Path::new("/nonexistent")),
        Ok(ServiceArtifact::External(scheduler_runtime::ArtifactRef {
            url: "https://downloads.apache.org/kafka/3.9.2/kafka_2.13-3.9.2.tgz".into(),
            sha256: sha.clone(),
        }))
    );

    let bad = scheduler(&[
        "--master",
        "local",
        "--kafka-url",
        "https://mirror.example/download?id=7",
        "--kafka-sha256",
        "1234",
        "--controllers",
        "0",
    ])
    .kafka
    .settings()
    .expect_err("three problems")
    .to_string();
    for want in ["is not a SHA-256 digest", "--kafka-dist-dir", "quorum size"] {
        assert!(bad.contains(want), "{want:?} not in {bad}");
    }
}

fn write_tarball(path: &Path, top: &str) {
    let file = std::fs::File::create(path).expect("create");
    let gz = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
    let mut builder = tar::Builder::new(gz);
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Directory);
    header.set_size(0);
    header.set_mode(0o755);
    builder
        .append_data(&mut header, format!("{top}/"), std::io::empty())
        .expect("dir");
    let mut header = tar::Header::new_gnu();
    header.set_size(2);
    header.set_mode(0o644);
    builder
        .append_data(&mut header, format!("{top}/NOTICE"), &b"hi"[..])
        .expect("file");
    builder.into_inner().expect("tar").finish().expect("gzip");
}

#[test]
fn the_default_tarball_is_the_newest_in_the_cache() {
    let cache = tempfile::tempdir().expect("tempdir");
    let artifacts = cache.path().join("artifacts");
    let default = scheduler(&["--master", "local"]);

    let error = default.kafka.artifact(cache.path()).expect_err("no cache");
    assert!(
        error.contains("packaging/service-tarball.sh kafka") && error.contains("--kafka-tarball"),
        "{error}"
    );

    std::fs::create_dir_all(&artifacts).expect("mkdir");
    write_tarball(&artifacts.join("kafka-3.9.2.tar.gz"), "kafka-3.9.2");
    write_tarball(&artifacts.join("kafka-3.10.0.tar.gz"), "kafka-3.10.0");
    write_tarball(&artifacts.join("zookeeper-3.9.5.tar.gz"), "zookeeper-3.9.5");
    std::fs::write(artifacts.join("kafka-9.9.9.tar.gz.sha256"), "x").expect("write");
    let Ok(ServiceArtifact::Served(path)) = default.kafka.artifact(cache.path()) else {
        panic!("expected a served tarball");
    };
    assert_eq!(path, artifacts.join("kafka-3.10.0.tar.gz"));
    assert_eq!(cli::tarball_top_dir(&path).as_deref(), Ok("kafka-3.10.0"));

    let given = scheduler(&["--master", "local", "--kafka-tarball", "/no/such.tgz"]);
    let error = given
        .kafka
        .artifact(cache.path())
        .expect_err("missing file");
    assert!(error.contains("/no/such.tgz: no such file"), "{error}");

    let garbage = cache.path().join("garbage.tar.gz");
    std::fs::write(&garbage, "not gzip").expect("write");
    assert!(cli::tarball_top_dir(&garbage).is_err_and(|e| e.contains("cannot read the tarball")),);

    let lookup = |vars: &'static [(&'static str, &'static str)]| {
        move |name: &str| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    };
    assert_eq!(
        cli::cache_dir(lookup(&[("MESOS_DS_CACHE", "/c"), ("HOME", "/h")])),
        Some("/c".into())
    );
    assert_eq!(
        cli::cache_dir(lookup(&[("HOME", "/h")])),
        Some("/h/.cache/mesos-data-services".into())
    );
    assert_eq!(cli::cache_dir(lookup(&[])), None);
}

#[test]
fn every_broker_plan_and_endpoint_command_parses() {
    let node = |args: &[&str]| match parse(args).command {
        Command::Broker(command) => command,
        other => panic!("{args:?}: expected broker, got {other:?}"),
    };
    assert!(matches!(
        node(&["broker", "add", "0..2", "--constraints", "hostname=unique"]),
        NodeCommand::Add { ids, .. } if ids == "0..2"
    ));
    assert!(matches!(
        node(&["broker", "list"]),
        NodeCommand::List { ids: None, .. }
    ));
    assert!(matches!(node(&["broker", "show", "1"]), NodeCommand::Show { id } if id == "1"));
    assert!(matches!(
        node(&["broker", "update", "*", "--option", "log.retention.hours=24"]),
        NodeCommand::Update { ids, .. } if ids == "*"
    ));
    assert!(matches!(
        node(&["broker", "clone", "0", "3"]),
        NodeCommand::Clone { source, ids, .. } if source == "0" && ids == "3"
    ));
    assert!(matches!(
        node(&["broker", "start", "0"]),
        NodeCommand::Start { .. }
    ));
    assert!(matches!(
        node(&["broker", "stop", "0"]),
        NodeCommand::Stop { .. }
    ));
    assert!(matches!(
        node(&["broker", "restart", "0..2", "--timeout", "10m"]),
        NodeCommand::Restart { follow, .. } if follow.timeout == Some(Duration::from_secs(600))
    ));
    assert!(matches!(
        node(&["broker", "replace", "2"]),
        NodeCommand::Replace { .. }
    ));
    assert!(matches!(
        node(&["broker", "remove", "2", "--yes"]),
        NodeCommand::Remove { yes: true, .. }
    ));
    assert!(matches!(
        node(&["broker", "log", "1", "-n", "50"]),
        NodeCommand::Log { lines: 50, .. }
    ));
    assert!(matches!(
        node(&["broker", "explain", "1"]),
        NodeCommand::Explain { .. }
    ));

    let plan = |args: &[&str]| match parse(args).command {
        Command::Plan(command) => command,
        other => panic!("{args:?}: expected plan, got {other:?}"),
    };
    assert_eq!(plan(&["plan", "list"]), PlanCommand::List);
    assert_eq!(
        plan(&["plan", "show", "deploy-1"]),
        PlanCommand::Show {
            id: Some("deploy-1".into())
        }
    );
    assert_eq!(plan(&["plan", "pause"]), PlanCommand::Pause { id: None });
    assert!(matches!(
        plan(&["plan", "resume"]),
        PlanCommand::Resume { .. }
    ));
    assert_eq!(plan(&["plan", "abort"]), PlanCommand::Abort { id: None });
    assert!(matches!(
        plan(&["plan", "watch"]),
        PlanCommand::Watch { .. }
    ));

    let endpoints = parse(&["endpoints", "--api", "http://127.0.0.2:7000", "--json"]);
    assert!(matches!(endpoints.command, Command::Endpoints));
    assert_eq!(endpoints.global.api, "http://127.0.0.2:7000");
    assert!(endpoints.global.json);
    // The shared tree runs the same command the framework's tree parsed.
    let _: CliCommand<BrokerOptions> = CliCommand::Endpoints;
}

#[test]
fn topic_commands_parse() {
    let topic = |args: &[&str]| match parse(args).command {
        Command::Topic(command) => command,
        other => panic!("{args:?}: expected topic, got {other:?}"),
    };
    let list = topic(&["topic", "list", "--bootstrap", "127.0.0.2:9092"]);
    assert_eq!(list.target().bootstrap.as_deref(), Some("127.0.0.2:9092"));
    assert_eq!(list.target().kafka_timeout, Duration::from_secs(30));
    let TopicCommand::Add {
        name,
        partitions,
        replication_factor,
        configs,
        ..
    } = topic(&[
        "topic",
        "add",
        "orders",
        "--partitions",
        "6",
        "--replication-factor",
        "3",
        "--config",
        "min.insync.replicas=2",
    ])
    else {
        panic!("expected add");
    };
    let spec = cli::topic_spec(&name, partitions, replication_factor, &configs);
    assert_eq!(
        serde_json::to_value(&spec).expect("json"),
        json!({"name": "orders", "partitions": 6, "replication_factor": 3,
               "configs": {"min.insync.replicas": "2"}})
    );
    let TopicCommand::Add {
        partitions,
        replication_factor,
        ..
    } = topic(&["topic", "add", "t"])
    else {
        panic!("expected add");
    };
    assert_eq!((partitions, replication_factor), (3, 3));
    assert!(matches!(
        topic(&["topic", "describe", "orders", "--kafka-timeout", "5s"]),
        TopicCommand::Describe { name, target } if name == "orders" && target.kafka_timeout == Duration::from_secs(5)
    ));
    let TopicCommand::Update {
        partitions,
        configs,
        resets,
        ..
    } = topic(&[
        "topic",
        "update",
        "orders",
        "--partitions",
        "12",
        "--config",
        "retention.ms=3600000",
        "--reset",
        "cleanup.policy",
    ])
    else {
        panic!("expected update");
    };
    assert_eq!(
        serde_json::to_value(cli::topic_update(partitions, &configs, &resets)).expect("json"),
        json!({"partitions": 12, "configs": {"retention.ms": "3600000", "cleanup.policy": null}})
    );

    for (args, want) in [
        (&["topic", "add"][..], "<NAME>"),
        (&["topic", "add", "t", "--partitions", "many"][..], "many"),
        (
            &["topic", "add", "t", "--config", "novalue"][..],
            "KEY=VALUE",
        ),
        (&["topic", "drop", "t"][..], "drop"),
    ] {
        let error = parse_error(args);
        assert!(error.contains(want), "{args:?}: {want:?} not in {error}");
    }
}

fn options(args: &[&str]) -> BrokerOptions {
    let mut all = vec!["broker", "update", "0"];
    all.extend_from_slice(args);
    match parse(&all).command {
        Command::Broker(NodeCommand::Update { options, .. }) => options,
        other => panic!("expected update, got {other:?}"),
    }
}

#[test]
fn broker_options_map_to_the_broker_configuration() {
    let given = options(&[
        "--cpus",
        "1.5",
        "--mem",
        "4096",
        "--heap",
        "2048",
        "--disk",
        "10000",
        "--port",
        "9092",
        "--controller-port",
        "9093",
        "--constraints",
        "hostname=unique,rack=groupBy:3",
        "--rack-attribute",
        "rack",
        "--option",
        "min.insync.replicas=2",
        "--option",
        "log.retention.hours=24",
        "--jvm-options",
        "-XX:+UseG1GC -Dx=1",
        "--log-level",
        "warn",
        "--log4j-option",
        "log4j.logger.kafka.controller=DEBUG",
    ]);
    let config = given.to_config().expect("config");
    assert_eq!(
        config,
        json!({
            "cpus": 1.5,
            "mem": 4096,
            "heap": 2048,
            "disk": 10000,
            "port": 9092,
            "controller_port": 9093,
            "constraints": "hostname=unique,rack=groupBy:3",
            "rack_attribute": "rack",
            "options": {"min.insync.replicas": "2", "log.retention.hours": "24"},
            "jvm_options": "-XX:+UseG1GC -Dx=1",
            "log_level": "WARN",
            "log4j_options": {"log4j.logger.kafka.controller": "DEBUG"},
        })
    );
    // The keys are the ones the service stores: the configuration parses and is valid.
    let broker = BrokerConfig::from_json(config).expect("a broker configuration");
    assert_eq!(broker.log_level, LogLevel::Warn);
    assert_eq!(broker.options["log.retention.hours"], "24");
    assert_eq!(
        broker.problems("0", kafka_mesos::ModeKind::Kraft),
        Vec::<String>::new()
    );
}

#[test]
fn only_given_broker_options_are_sent() {
    assert_eq!(options(&[]).to_config(), Ok(json!({})));
    assert_eq!(
        options(&["--heap", "512"]).to_config(),
        Ok(json!({"heap": 512}))
    );
    // Options, then --config-json, then --set, as for every framework.
    let Command::Broker(NodeCommand::Add {
        options, config, ..
    }) = parse(&[
        "broker", "add", "0", "--mem", "2048", "--option", "a.b=1", "--set", "mem=3072",
    ])
    .command
    else {
        panic!("expected add");
    };
    assert_eq!(
        build_config(&options, &config).expect("config"),
        json!({"mem": 3072, "options": {"a.b": "1"}})
    );
}

#[test]
fn bad_broker_options_are_refused_with_the_fix() {
    for (args, want) in [
        (&["--option", "no-equals"][..], "KEY=VALUE"),
        (&["--option", "=x"][..], "KEY=VALUE"),
        (
            &["--log-level", "loud"][..],
            "TRACE, DEBUG, INFO, WARN or ERROR",
        ),
        (&["--mem", "lots"][..], "lots"),
        (&["--port", "70000"][..], "70000"),
    ] {
        let mut all = vec!["broker", "add", "0"];
        all.extend_from_slice(args);
        let error = parse_error(&all);
        assert!(error.contains(want), "{args:?}: {want:?} not in {error}");
    }
    let error = options(&["--cpus=0"]).to_config().expect_err("zero cpus");
    assert!(error.contains("positive"), "{error}");
}

#[test]
fn bootstrap_servers_come_from_the_endpoints() {
    let endpoints = json!({
        "bootstrap_servers": "127.0.0.2:31000,127.0.0.3:31000",
        "brokers": {"0": "127.0.0.2:31000", "1": "127.0.0.3:31000"},
        "mode": "kraft",
    });
    assert_eq!(
        cli::bootstrap_from_endpoints(&endpoints).as_deref(),
        Ok("127.0.0.2:31000,127.0.0.3:31000")
    );
    assert_eq!(
        cli::brokers_from_endpoints(&endpoints),
        vec![
            ("0".to_owned(), "127.0.0.2:31000".to_owned()),
            ("1".to_owned(), "127.0.0.3:31000".to_owned())
        ]
    );
    let none =
        cli::bootstrap_from_endpoints(&json!({"bootstrap_servers": ""})).expect_err("no brokers");
    assert!(none.contains("broker add"), "{none}");
    let foreign =
        cli::bootstrap_from_endpoints(&json!({"contact_points": "x"})).expect_err("not kafka");
    assert!(foreign.contains("--api"), "{foreign}");
}

#[test]
fn topic_and_cluster_views_show_health() {
    let state = ClusterState {
        brokers: [(0, "a:1".to_owned()), (1, "b:1".to_owned())].into(),
        topics: vec![TopicState {
            name: "orders".into(),
            min_isr: Some(2),
            partitions: vec![
                PartitionState {
                    id: 0,
                    leader: 0,
                    replicas: vec![0, 1],
                    isr: vec![0],
                },
                PartitionState {
                    id: 1,
                    leader: -1,
                    replicas: vec![1],
                    isr: vec![],
                },
            ],
        }],
    };
    assert_eq!(
        cli::cluster_summary(&state, Some(1)),
        "cluster: 2 brokers registered, 2 under-replicated and 1 offline partitions, active controller 1"
    );
    let description = kafka_mesos::TopicDescription {
        name: "orders".into(),
        partitions: state.topics[0].partitions.clone(),
        configs: [("min.insync.replicas".to_owned(), "2".to_owned())].into(),
    };
    let text = cli::topic_details(&description);
    assert!(text.contains("min.insync.replicas=2"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.split_whitespace().eq(["1", "none", "1"])),
        "{text}"
    );
    let table = cli::topic_table(&[kafka_mesos::TopicSummary {
        name: "orders".into(),
        partitions: 2,
        replication_factor: 2,
        under_replicated: 2,
        offline: 1,
    }]);
    assert!(table.starts_with("TOPIC"), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.split_whitespace().eq(["orders", "2", "2", "2", "1"])),
        "{table}"
    );
    assert!(cli::topic_table(&[]).contains("topic add"));
}

#[test]
fn the_served_tarball_must_be_gzipped() {
    assert_eq!(
        cli::served_name(Path::new("/c/kafka_2.13-3.9.2.tgz")).as_deref(),
        Ok("kafka_2.13-3.9.2.tgz")
    );
    let error = cli::served_name(Path::new("/c/kafka.tar")).expect_err("not gzipped");
    assert!(error.contains(".tar.gz or .tgz"), "{error}");
}
