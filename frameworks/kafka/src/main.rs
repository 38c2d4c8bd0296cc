//! `kafka-mesos`: the Kafka framework's scheduler and its command line.
//!
//! `kafka-mesos scheduler …` runs the scheduler; every other command is a
//! client of a running scheduler's REST API (`broker`, `plan`, `endpoints`)
//! or of the brokers it runs (`topic`). See `kafka_mesos::cli` for the tree.

use std::{io::Write, process::ExitCode, sync::Arc, time::Duration};

use clap::FromArgMatches as _;
use framework_cli::{CliCommand, CliError, Context, NodeCommand};
use kafka_mesos::{
    KafkaAdmin, KafkaService,
    cli::{self, BrokerOptions, Cli, Command, SchedulerCommand, TopicCommand},
    service::KAFKA_ARTIFACT,
};
use scheduler_app::Launch;

fn main() -> ExitCode {
    let matches = cli::command().get_matches();
    let parsed = match Cli::from_arg_matches(&matches) {
        Ok(parsed) => parsed,
        Err(error) => error.exit(),
    };
    let runtime = match scheduler_app::runtime() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(parsed))
}

async fn run(parsed: Cli) -> ExitCode {
    let mut err = std::io::stderr();
    let command = match parsed.command {
        Command::Scheduler(args) => return scheduler(*args).await,
        Command::Broker(command) => CliCommand::Node(command),
        Command::Plan(command) => CliCommand::Plan(command),
        Command::Endpoints => CliCommand::Endpoints,
        Command::Topic(command) => {
            let result = match Context::new(&cli::spec(), &parsed.global) {
                Ok(ctx) => topic(&ctx, command, &mut std::io::stdout()).await,
                Err(error) => Err(error),
            };
            return framework_cli::exit_code(result, &mut err);
        }
    };
    let result = match Context::new(&cli::spec(), &parsed.global) {
        Ok(ctx) => shared(&ctx, command, &mut std::io::stdout(), &mut err).await,
        Err(error) => Err(error),
    };
    framework_cli::exit_code(result, &mut err)
}

/// A command of the shared tree; `broker list` ends with the cluster's health.
async fn shared(
    ctx: &Context,
    command: CliCommand<BrokerOptions>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), CliError> {
    let list = matches!(command, CliCommand::Node(NodeCommand::List { .. }));
    framework_cli::execute(ctx, command, out, err).await?;
    if list && !ctx.json {
        cluster_line(ctx, out).await;
    }
    Ok(())
}

async fn scheduler(args: SchedulerCommand) -> ExitCode {
    scheduler_app::init_logging();
    match run_scheduler(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run_scheduler(args: SchedulerCommand) -> anyhow::Result<()> {
    let mut settings = args.kafka.settings()?;
    let cache = cli::cache_dir(|name| std::env::var(name).ok());
    let artifact = cli::TARBALL
        .prepare(
            args.kafka.artifact_flags(),
            cache.as_deref(),
            KAFKA_ARTIFACT,
        )
        .map_err(anyhow::Error::msg)?;
    settings.distribution_dir = artifact.dist_dir;
    let first_start = cli::first_start_settings(&settings);
    let service = KafkaService::new(settings)?;
    scheduler_app::run(
        args.scheduler,
        Launch {
            service: Arc::new(service),
            served: artifact.served,
            external: artifact.external,
            settings: first_start,
        },
    )
    .await
}

/// The bootstrap servers: `--bootstrap`, or the scheduler's endpoints.
async fn bootstrap(ctx: &Context, given: Option<&str>) -> Result<String, CliError> {
    if let Some(servers) = given {
        return Ok(servers.to_owned());
    }
    let endpoints = ctx.client.endpoints().await?;
    cli::bootstrap_from_endpoints(&endpoints).map_err(CliError::Failed)
}

fn kafka_error(error: kafka_mesos::Error) -> CliError {
    match error {
        kafka_mesos::Error::InvalidTopic(_) => CliError::Usage(error.to_string()),
        other => CliError::Failed(other.to_string()),
    }
}

async fn topic(ctx: &Context, command: TopicCommand, out: &mut dyn Write) -> Result<(), CliError> {
    let target = command.target().clone();
    let servers = bootstrap(ctx, target.bootstrap.as_deref()).await?;
    let admin = KafkaAdmin::connect(&servers, target.kafka_timeout).map_err(kafka_error)?;
    match command {
        TopicCommand::List { internal, .. } => {
            let mut topics = admin.list_topics().await.map_err(kafka_error)?;
            topics.retain(|t| internal || !t.name.starts_with("__"));
            if ctx.json {
                writeln!(out, "{}", framework_cli::output::json(&topics))?;
            } else {
                writeln!(out, "{}", cli::topic_table(&topics))?;
            }
        }
        TopicCommand::Add {
            name,
            partitions,
            replication_factor,
            configs,
            ..
        } => {
            let spec = cli::topic_spec(&name, partitions, replication_factor, &configs);
            admin.create_topic(&spec).await.map_err(kafka_error)?;
            if ctx.json {
                writeln!(out, "{}", framework_cli::output::json(&spec))?;
            } else {
                writeln!(
                    out,
                    "topic {name} created: {partitions} partitions, replication factor {replication_factor}"
                )?;
            }
        }
        TopicCommand::Describe { name, .. } => {
            let topic = admin.describe_topic(&name).await.map_err(kafka_error)?;
            if ctx.json {
                writeln!(out, "{}", framework_cli::output::json(&topic))?;
            } else {
                writeln!(out, "{}", cli::topic_details(&topic))?;
            }
        }
        TopicCommand::Update {
            name,
            partitions,
            configs,
            resets,
            ..
        } => {
            let update = cli::topic_update(partitions, &configs, &resets);
            admin
                .update_topic(&name, &update)
                .await
                .map_err(kafka_error)?;
            if ctx.json {
                writeln!(out, "{}", framework_cli::output::json(&update))?;
            } else {
                writeln!(out, "topic {name} updated")?;
            }
        }
    }
    Ok(())
}

/// Best effort: a broker list still shows when the brokers cannot be asked.
async fn cluster_line(ctx: &Context, out: &mut dyn Write) {
    let Ok(endpoints) = ctx.client.endpoints().await else {
        return;
    };
    let Ok(servers) = cli::bootstrap_from_endpoints(&endpoints) else {
        return;
    };
    let timeout = Duration::from_secs(3);
    let Ok(admin) = KafkaAdmin::connect(&servers, timeout) else {
        return;
    };
    let Ok(state) = admin.cluster_state().await else {
        let _ = writeln!(out, "cluster: the brokers at {servers} do not answer");
        return;
    };
    let kraft = endpoints.get("mode").and_then(|m| m.as_str()) == Some("kraft");
    let brokers = cli::brokers_from_endpoints(&endpoints);
    let controller = kafka_mesos::controller::active_controller(&brokers, kraft, timeout)
        .await
        .ok();
    let _ = writeln!(out, "{}", cli::cluster_summary(&state, controller));
}
