//! `test-scheduler scheduler [flags] --service-tarball PATH`: the shared
//! scheduler process running the test service, for tests that kill and
//! restart a real scheduler process.

use std::{path::PathBuf, process::ExitCode, sync::Arc};

use clap::{Parser, Subcommand};
use scheduler_app::{Launch, SchedulerArgs};

#[derive(Parser)]
#[command(
    name = "test-scheduler",
    about = "Scheduler of the end-to-end test service"
)]
struct Cli {
    #[command(subcommand)]
    command: Commands,
}

#[derive(Subcommand)]
enum Commands {
    /// Run the scheduler
    Scheduler {
        #[command(flatten)]
        args: SchedulerArgs,
        /// The tarball holding the test-service binary, served to agents.
        #[arg(long)]
        service_tarball: PathBuf,
    },
}

fn main() -> ExitCode {
    scheduler_app::init_logging();
    let Commands::Scheduler {
        args,
        service_tarball,
    } = Cli::parse().command;
    match scheduler_app::runtime() {
        Ok(runtime) => runtime.block_on(scheduler(args, service_tarball)),
        Err(error) => {
            eprintln!("test-scheduler: cannot start the async runtime: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn scheduler(args: SchedulerArgs, service_tarball: PathBuf) -> ExitCode {
    let launch = Launch {
        service: Arc::new(test_scheduler::TestService),
        served: vec![(test_scheduler::ARTIFACT.to_owned(), service_tarball)],
        external: vec![],
        settings: None,
    };
    match scheduler_app::run(args, launch).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("test-scheduler: {error:#}");
            ExitCode::FAILURE
        }
    }
}
