//! `kafka-mesos`: the Kafka framework's scheduler and its command line.
//!
//! `kafka-mesos scheduler …` runs the scheduler; every other command is a
//! client of a running scheduler's REST API (`broker`, `plan`, `endpoints`)
//! or of the brokers it runs (`topic`). See `kafka_mesos::cli` for the tree.

use std::{io::Write, process::ExitCode, sync::Arc, time::Duration};

use anyhow::Context as _;
use clap::FromArgMatches as _;
use framework_cli::{CliCommand, CliError, Context, FollowArgs, NodeCommand, PlanCommand};
use kafka_mesos::{
    KafkaAdmin, KafkaService,
    cli::{self, BrokerOptions, Cli, Command, KafkaArtifact, SchedulerCommand, TopicCommand},
    service::KAFKA_ARTIFACT,
};
use scheduler_app::Launch;
use scheduler_runtime::ArtifactRef;

fn main() -> ExitCode {
    let matches = cli::command().get_matches();
    let parsed = match Cli::from_arg_matches(&matches) {
        Ok(parsed) => parsed,
        Err(error) => error.exit(),
    };
    let runtime = match tokio::runtime::Runtime::new() {
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

/// A command of the shared tree, with two Kafka additions: `broker list`
/// ends with the cluster's health, and plans are followed only once the
/// scheduler shows them.
async fn shared(
    ctx: &Context,
    command: CliCommand<BrokerOptions>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), CliError> {
    let list = matches!(command, CliCommand::Node(NodeCommand::List { .. }));
    let command = match started_plan(command) {
        Split::Follow(command, follow) => {
            return start_then_follow(ctx, command, follow, out, err).await;
        }
        Split::Plain(command) => command,
    };
    framework_cli::execute(ctx, command, out, err).await?;
    if list && !ctx.json {
        cluster_line(ctx, out).await;
    }
    Ok(())
}

/// A command that starts a plan and follows it, split in two; or any other.
enum Split {
    /// The command without following, and how to follow.
    Follow(CliCommand<BrokerOptions>, FollowArgs),
    /// Run as it is.
    Plain(CliCommand<BrokerOptions>),
}

fn started_plan(command: CliCommand<BrokerOptions>) -> Split {
    let quiet = FollowArgs {
        no_wait: true,
        timeout: None,
    };
    let follow = match &command {
        CliCommand::Node(
            NodeCommand::Add { follow, .. }
            | NodeCommand::Update { follow, .. }
            | NodeCommand::Clone { follow, .. }
            | NodeCommand::Restart { follow, .. }
            | NodeCommand::Replace { follow, .. },
        ) if !follow.no_wait => follow.clone(),
        _ => return Split::Plain(command),
    };
    let CliCommand::Node(node) = command else {
        return Split::Plain(command);
    };
    let node = match node {
        NodeCommand::Add {
            ids,
            options,
            config,
            ..
        } => NodeCommand::Add {
            ids,
            options,
            config,
            follow: quiet,
        },
        NodeCommand::Update {
            ids,
            options,
            config,
            ..
        } => NodeCommand::Update {
            ids,
            options,
            config,
            follow: quiet,
        },
        NodeCommand::Clone {
            source,
            ids,
            options,
            config,
            ..
        } => NodeCommand::Clone {
            source,
            ids,
            options,
            config,
            follow: quiet,
        },
        NodeCommand::Restart { ids, .. } => NodeCommand::Restart { ids, follow: quiet },
        NodeCommand::Replace { ids, .. } => NodeCommand::Replace { ids, follow: quiet },
        other => return Split::Plain(CliCommand::Node(other)),
    };
    Split::Follow(CliCommand::Node(node), follow)
}

/// Starts a plan, waits until the scheduler lists it, then follows it.
///
/// The scheduler answers a command before it publishes the plan the command
/// created, so asking for the plan at once can get a 404; following starts
/// only once the plan is visible.
async fn start_then_follow(
    ctx: &Context,
    command: CliCommand<BrokerOptions>,
    follow: FollowArgs,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), CliError> {
    let quiet = Context {
        json: true,
        ..ctx.clone()
    };
    let mut answer = Vec::new();
    framework_cli::execute(&quiet, command, &mut answer, err).await?;
    let accepted: serde_json::Value =
        serde_json::from_slice(&answer).map_err(|e| CliError::Response {
            url: ctx.client.base().to_string(),
            reason: format!("the answer is not the expected JSON: {e}"),
        })?;
    let message = accepted["message"].as_str().unwrap_or_default();
    let Some(plan) = accepted["plan"].as_str() else {
        if ctx.json {
            writeln!(out, "{}", framework_cli::output::json(&accepted))?;
        } else {
            writeln!(out, "{message}")?;
        }
        return Ok(());
    };
    writeln!(err, "{message} (plan {plan})")?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while ctx.client.plan(plan).await.is_err() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let watch = PlanCommand::Watch {
        id: Some(plan.to_owned()),
        timeout: follow.timeout,
    };
    framework_cli::plan_command(ctx, watch, out, err).await
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
    let cache = cli::cache_dir(|name| std::env::var(name).ok()).ok_or_else(|| {
        anyhow::anyhow!("neither MESOS_DS_CACHE nor HOME is set: pass --kafka-tarball PATH")
    })?;
    let (served, external) = match args.kafka.artifact(&cache).map_err(anyhow::Error::msg)? {
        KafkaArtifact::Served(path) => {
            let dist = match &settings.distribution_dir {
                Some(dist) => dist.clone(),
                None => cli::tarball_top_dir(&path).map_err(anyhow::Error::msg)?,
            };
            settings.distribution_dir = Some(dist.clone());
            // Served under its file name and handed to agents by that URL:
            // the executor unpacks by the URL's extension, which
            // `/artifacts/kafka` lacks.
            let name = cli::served_name(&path).map_err(anyhow::Error::msg)?;
            let base = cli::artifact_base_url(
                &args.scheduler,
                |v| std::env::var(v).ok(),
                || {
                    std::fs::read_to_string("/etc/hostname")
                        .ok()
                        .map(|h| h.trim().to_owned())
                },
            )
            .map_err(anyhow::Error::msg)?;
            let reference = ArtifactRef {
                url: format!("{base}/artifacts/{name}"),
                sha256: sha256_of(&path)?,
            };
            tracing::info!(tarball = %path.display(), url = %reference.url, "serving Kafka");
            (
                vec![(name, path)],
                vec![(KAFKA_ARTIFACT.to_owned(), reference)],
            )
        }
        KafkaArtifact::External(reference) => {
            tracing::info!(url = %reference.url, "agents download Kafka from a URL");
            (Vec::new(), vec![(KAFKA_ARTIFACT.to_owned(), reference)])
        }
    };
    let first_start = cli::first_start_settings(&settings);
    let service = KafkaService::new(settings)?;
    scheduler_app::run(
        args.scheduler,
        Launch {
            service: Arc::new(service),
            served,
            external,
            settings: first_start,
        },
    )
    .await
}

fn sha256_of(path: &std::path::Path) -> anyhow::Result<String> {
    use sha2::Digest as _;
    let mut file = std::fs::File::open(path)
        .with_context(|| format!("cannot read the Kafka tarball {}", path.display()))?;
    let mut hasher = sha2::Sha256::new();
    std::io::copy(&mut file, &mut hasher)
        .with_context(|| format!("cannot read the Kafka tarball {}", path.display()))?;
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
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
