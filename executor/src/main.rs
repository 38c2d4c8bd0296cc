//! `service-executor`: started by the Mesos agent for a task whose
//! ExecutorInfo names it. Reads its configuration from the environment the
//! agent sets, runs until its tasks end or the agent shuts it down.

use std::process::ExitCode;

use service_executor::{Config, Executor, Exit};

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("EXECUTOR_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();

    let config = match Config::from_lookup(|key| std::env::var(key).ok()) {
        Ok(config) => config,
        Err(e) => {
            tracing::error!(error = %e, "cannot start");
            return ExitCode::from(2);
        }
    };
    tracing::info!(
        framework_id = %config.framework_id,
        executor_id = %config.executor_id,
        agent = %config.agent_url,
        checkpoint = config.checkpoint,
        cache = %config.artifact_cache.display(),
        "service executor starting"
    );

    // One thread: the executor mostly waits, and a second thread would only cost memory.
    // Blocking threads (file copies, unpacking) go away soon after use.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(2)
        .thread_keep_alive(std::time::Duration::from_secs(1))
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the async runtime");
            return ExitCode::from(2);
        }
    };
    let exit = runtime.block_on(async {
        match Executor::new(config) {
            Ok(executor) => Ok(executor.run().await),
            Err(e) => Err(e),
        }
    });
    match exit {
        Ok(Exit::Done | Exit::Shutdown) => ExitCode::SUCCESS,
        Ok(Exit::AgentLost(why)) => {
            tracing::error!(reason = %why, "exiting: agent lost");
            ExitCode::from(1)
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot start");
            ExitCode::from(2)
        }
    }
}
