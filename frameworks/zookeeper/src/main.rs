//! `zookeeper-mesos`: the ZooKeeper framework's scheduler and its command line.
//!
//! `zookeeper-mesos scheduler …` runs the scheduler; every other command is a
//! client of a running scheduler's REST API (`server`, `plan`, `endpoints`).

use std::{process::ExitCode, sync::Arc};

use clap::FromArgMatches as _;
use framework_cli::{CliCommand, Context};
use scheduler_app::Launch;
use zookeeper_mesos::{
    ZooKeeperService,
    cli::{self, Cli, Command, SchedulerCommand},
    service::ZOOKEEPER_ARTIFACT,
};

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
    let command = match parsed.command {
        Command::Scheduler(args) => return scheduler(*args).await,
        Command::Server(command) => CliCommand::Node(command),
        Command::Plan(command) => CliCommand::Plan(command),
        Command::Endpoints => CliCommand::Endpoints,
    };
    let mut err = std::io::stderr();
    let result = match Context::new(&cli::spec(), &parsed.global) {
        Ok(ctx) => framework_cli::execute(&ctx, command, &mut std::io::stdout(), &mut err).await,
        Err(error) => Err(error),
    };
    framework_cli::exit_code(result, &mut err)
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
    let mut settings = args.zookeeper.settings()?;
    let cache = cli::cache_dir(|name| std::env::var(name).ok());
    let artifact = cli::TARBALL
        .prepare(
            args.zookeeper.artifact_flags(),
            cache.as_deref(),
            ZOOKEEPER_ARTIFACT,
        )
        .map_err(anyhow::Error::msg)?;
    settings.distribution_dir = artifact.dist_dir;
    let service = ZooKeeperService::new(settings)?;
    scheduler_app::run(
        args.scheduler,
        Launch {
            service: Arc::new(service),
            served: artifact.served,
            external: artifact.external,
            settings: Some(cli::first_start_settings()),
        },
    )
    .await
}
