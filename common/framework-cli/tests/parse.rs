//! The command tree: what a framework's command line parses into.

use std::time::Duration;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use framework_cli::{
    Cli, CliCommand, CliSpec, ConfigArgs, FollowArgs, NodeCommand, NodeOptions, PlanCommand,
    Stream, build_config,
};
use serde_json::{Value, json};

/// What Kafka's options look like: typed flags plus repeated `--option k=v`.
#[derive(clap::Args, Clone, Debug, Default, PartialEq, Eq)]
struct BrokerOptions {
    /// JVM heap in MB
    #[arg(long)]
    heap: Option<u32>,
    /// A server.properties option
    #[arg(long = "option", value_name = "K=V")]
    options: Vec<String>,
}

impl NodeOptions for BrokerOptions {
    fn to_config(&self) -> Result<Value, String> {
        let mut config = json!({});
        if let Some(heap) = self.heap {
            config["heap_mb"] = json!(heap);
        }
        for option in &self.options {
            let (k, v) = option
                .split_once('=')
                .ok_or_else(|| format!("--option {option:?} needs K=V"))?;
            config["server_properties"][k] = json!(v);
        }
        Ok(config)
    }
}

fn spec() -> CliSpec {
    CliSpec::new("kafka-mesos", "broker")
}

fn parse(args: &[&str]) -> Cli<BrokerOptions> {
    spec()
        .try_parse_from(std::iter::once("kafka-mesos").chain(args.iter().copied()))
        .unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

fn parse_error(args: &[&str]) -> clap::Error {
    spec()
        .try_parse_from::<BrokerOptions, _, _>(
            std::iter::once("kafka-mesos").chain(args.iter().copied()),
        )
        .expect_err("must not parse")
}

#[test]
fn add_takes_framework_options_generic_settings_and_follow_flags() {
    let cli = parse(&[
        "broker",
        "add",
        "0..2",
        "--heap",
        "1024",
        "--option",
        "log.retention.hours=24",
        "--config-json",
        r#"{"mem": 2048}"#,
        "--set",
        "cpus=1.5",
        "--timeout",
        "10m",
        "--api",
        "http://10.1.1.1:7000",
        "--json",
    ]);
    assert_eq!(cli.global.api, "http://10.1.1.1:7000");
    assert!(cli.global.json);
    let CliCommand::Node(NodeCommand::Add {
        ids,
        options,
        config,
        follow,
    }) = cli.command
    else {
        panic!("expected add, got {:?}", cli.command);
    };
    assert_eq!(ids, "0..2");
    assert_eq!(
        follow,
        FollowArgs {
            no_wait: false,
            timeout: Some(Duration::from_secs(600))
        }
    );
    assert_eq!(
        build_config(&options, &config).expect("config"),
        json!({
            "heap_mb": 1024,
            "server_properties": {"log.retention.hours": "24"},
            "mem": 2048,
            "cpus": 1.5,
        })
    );
}

#[test]
fn every_verb_parses() {
    let cases: Vec<(Vec<&str>, CliCommand<BrokerOptions>)> = vec![
        (
            vec!["broker", "list"],
            CliCommand::Node(NodeCommand::List {
                ids: None,
                removed: false,
            }),
        ),
        (
            vec!["broker", "list", "*[rack=r1]", "--removed"],
            CliCommand::Node(NodeCommand::List {
                ids: Some("*[rack=r1]".into()),
                removed: true,
            }),
        ),
        (
            vec!["broker", "show", "1"],
            CliCommand::Node(NodeCommand::Show { id: "1".into() }),
        ),
        (
            vec!["broker", "update", "*", "--option", "a=b", "--no-wait"],
            CliCommand::Node(NodeCommand::Update {
                ids: "*".into(),
                options: BrokerOptions {
                    heap: None,
                    options: vec!["a=b".into()],
                },
                config: ConfigArgs::default(),
                follow: FollowArgs {
                    no_wait: true,
                    timeout: None,
                },
            }),
        ),
        (
            vec!["broker", "clone", "0", "3..4", "--heap", "512"],
            CliCommand::Node(NodeCommand::Clone {
                source: "0".into(),
                ids: "3..4".into(),
                options: BrokerOptions {
                    heap: Some(512),
                    options: vec![],
                },
                config: ConfigArgs::default(),
                follow: FollowArgs::default(),
            }),
        ),
        (
            vec!["broker", "start", "0,2"],
            CliCommand::Node(NodeCommand::Start { ids: "0,2".into() }),
        ),
        (
            vec!["broker", "stop", "0"],
            CliCommand::Node(NodeCommand::Stop { ids: "0".into() }),
        ),
        (
            vec!["broker", "restart", "0..2", "--timeout", "90s"],
            CliCommand::Node(NodeCommand::Restart {
                ids: "0..2".into(),
                follow: FollowArgs {
                    no_wait: false,
                    timeout: Some(Duration::from_secs(90)),
                },
            }),
        ),
        (
            vec!["broker", "replace", "1"],
            CliCommand::Node(NodeCommand::Replace {
                ids: "1".into(),
                follow: FollowArgs::default(),
            }),
        ),
        (
            vec!["broker", "remove", "1", "--yes"],
            CliCommand::Node(NodeCommand::Remove {
                ids: "1".into(),
                yes: true,
            }),
        ),
        (
            vec!["broker", "log", "1", "--stream", "stderr", "-n", "20"],
            CliCommand::Node(NodeCommand::Log {
                id: "1".into(),
                stream: Stream::Stderr,
                lines: 20,
            }),
        ),
        (
            vec!["broker", "explain", "3"],
            CliCommand::Node(NodeCommand::Explain { id: "3".into() }),
        ),
        (
            vec!["broker", "admin", "0", "dump", "--all", "x"],
            CliCommand::Node(NodeCommand::Admin {
                id: "0".into(),
                name: "dump".into(),
                args: vec!["--all".into(), "x".into()],
            }),
        ),
        (vec!["plan", "list"], CliCommand::Plan(PlanCommand::List)),
        (
            vec!["plan", "show"],
            CliCommand::Plan(PlanCommand::Show { id: None }),
        ),
        (
            vec!["plan", "pause", "restart-2"],
            CliCommand::Plan(PlanCommand::Pause {
                id: Some("restart-2".into()),
            }),
        ),
        (
            vec!["plan", "resume", "--no-wait"],
            CliCommand::Plan(PlanCommand::Resume {
                id: None,
                follow: FollowArgs {
                    no_wait: true,
                    timeout: None,
                },
            }),
        ),
        (
            vec!["plan", "abort", "restart-2"],
            CliCommand::Plan(PlanCommand::Abort {
                id: Some("restart-2".into()),
            }),
        ),
        (
            vec!["plan", "watch", "--timeout", "1h"],
            CliCommand::Plan(PlanCommand::Watch {
                id: None,
                timeout: Some(Duration::from_secs(3600)),
            }),
        ),
        (vec!["endpoints"], CliCommand::Endpoints),
    ];
    for (args, expected) in cases {
        assert_eq!(parse(&args).command, expected, "{args:?}");
    }
    let defaults = parse(&["endpoints"]).global;
    assert_eq!(defaults.api, "http://127.0.0.1:7000");
    assert_eq!(defaults.token, None);
}

#[test]
fn usage_errors_name_the_problem() {
    let unknown_verb = parse_error(&["broker", "reboot", "0"]).to_string();
    assert!(unknown_verb.contains("reboot"), "{unknown_verb}");
    let wrong_noun = parse_error(&["node", "list"]).to_string();
    assert!(wrong_noun.contains("node"), "{wrong_noun}");
    let bad_timeout = parse_error(&["broker", "restart", "0", "--timeout", "soon"]).to_string();
    assert!(bad_timeout.contains("90s, 10m or 1h"), "{bad_timeout}");
    let bad_stream = parse_error(&["broker", "log", "0", "--stream", "both"]).to_string();
    assert!(bad_stream.contains("stdout"), "{bad_stream}");
    let missing = parse_error(&["broker", "add"]).to_string();
    assert!(missing.contains("<IDS>"), "{missing}");
}

#[test]
fn help_uses_the_noun_and_the_framework_variables() {
    let command = spec().command::<BrokerOptions>();
    let brokers = command.find_subcommand("broker").expect("broker command");
    let about = |verb: &str| {
        brokers
            .find_subcommand(verb)
            .and_then(|c| c.get_about())
            .map(|a| a.to_string())
            .unwrap_or_default()
    };
    assert_eq!(about("add"), "Add brokers and deploy them (IDS: e.g. 0..2)");
    assert_eq!(about("show"), "Show one broker in full");
    let env = |id: &str| {
        command
            .get_arguments()
            .find(|a| a.get_id() == id)
            .and_then(|a| a.get_env())
            .map(|e| e.to_string_lossy().into_owned())
    };
    assert_eq!(env("api").as_deref(), Some("KAFKA_MESOS_API"));
    assert_eq!(env("token").as_deref(), Some("KAFKA_MESOS_TOKEN"));
    command.debug_assert();
}

/// A framework that embeds the shared commands next to its own.
#[derive(Parser, Debug)]
#[command(name = "zk-mesos")]
struct OwnTree {
    #[command(flatten)]
    global: framework_cli::GlobalArgs,
    #[command(subcommand)]
    command: OwnCommand,
}

#[derive(Subcommand, Debug)]
enum OwnCommand {
    /// Run the scheduler
    Scheduler {
        #[arg(long)]
        master: String,
    },
    /// Manage servers
    #[command(subcommand)]
    Server(NodeCommand<framework_cli::NoOptions>),
    /// Plans
    #[command(subcommand)]
    Plan(PlanCommand),
}

#[test]
fn a_framework_can_embed_the_commands_in_its_own_tree() {
    let spec = CliSpec::new("zk-mesos", "server");
    assert_eq!(spec.api_env, "ZK_MESOS_API");
    let command = spec.configure(OwnTree::command());
    let matches = command
        .clone()
        .try_get_matches_from(["zk-mesos", "server", "restart", "*", "--no-wait"])
        .expect("parse");
    let tree = OwnTree::from_arg_matches(&matches).expect("from matches");
    let OwnCommand::Server(NodeCommand::Restart { ids, follow }) = tree.command else {
        panic!("expected server restart, got {:?}", tree.command);
    };
    assert_eq!(ids, "*");
    assert!(follow.no_wait);
    let matches = command
        .try_get_matches_from(["zk-mesos", "scheduler", "--master", "local"])
        .expect("parse");
    assert!(matches!(
        OwnTree::from_arg_matches(&matches)
            .expect("from matches")
            .command,
        OwnCommand::Scheduler { .. }
    ));
    let help = spec
        .configure(OwnTree::command())
        .find_subcommand("server")
        .and_then(|s| s.find_subcommand("remove"))
        .and_then(|c| c.get_about())
        .map(|a| a.to_string());
    assert_eq!(
        help.as_deref(),
        Some("Remove servers for good: destroys their volumes and data")
    );
}
