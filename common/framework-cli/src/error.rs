//! What can go wrong in a CLI command, and the exit status each failure gives.

use std::time::Duration;

/// Every failure of a CLI command; [`CliError::exit_code`] maps it to a status.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The command line is wrong (a bad ID expression, `--set` without `=`,
    /// invalid `--config-json`); exit 2, like clap's own usage errors.
    #[error("{0}")]
    Usage(String),
    /// The scheduler's API could not be reached; exit 3. Retrying helps once
    /// the scheduler runs (or `--api` points at it).
    #[error("cannot reach the scheduler at {url}: {reason} (is it running? set --api or ${env})")]
    Unreachable {
        /// The URL tried.
        url: String,
        /// The environment variable that sets the API URL.
        env: String,
        /// The transport error, in words.
        reason: String,
        /// The transport error.
        #[source]
        source: reqwest::Error,
    },
    /// The scheduler refused the request (4xx/5xx with a JSON error); exit 1.
    #[error("{error}{}", details_text(.details))]
    Api {
        /// HTTP status.
        status: u16,
        /// The one-line error.
        error: String,
        /// Reasons and hints.
        details: Vec<String>,
    },
    /// The scheduler answered something this CLI cannot read (a version
    /// mismatch, or not our API at that URL); exit 1.
    #[error("unexpected answer from {url}: {reason}")]
    Response {
        /// The URL asked.
        url: String,
        /// What was wrong with the answer.
        reason: String,
    },
    /// A followed plan stopped without completing (paused or aborted); exit 4.
    /// The plan stays in the scheduler: resume or abort it with `plan`.
    #[error("plan {plan} {state}: {reason}")]
    PlanStopped {
        /// Plan ID.
        plan: String,
        /// `paused` or `aborted`.
        state: String,
        /// Why, from the scheduler.
        reason: String,
    },
    /// `--timeout` passed while following a plan; exit 5. The plan goes on
    /// in the scheduler.
    #[error(
        "plan {plan} still running after {}: {step}; it goes on in the scheduler — follow it with `plan watch {plan}`",
        seconds(*.after)
    )]
    Timeout {
        /// Plan ID.
        plan: String,
        /// The timeout.
        after: Duration,
        /// What its current step was doing.
        step: String,
    },
    /// A command the scheduler ran for us failed (e.g. an admin command
    /// exited non-zero); exit 1. Its output has been printed.
    #[error("{0}")]
    Failed(String),
    /// Writing to stdout or stderr failed; exit 1.
    #[error("cannot write output: {0}")]
    Output(#[from] std::io::Error),
}

fn details_text(details: &[String]) -> String {
    details.iter().map(|d| format!("\n  - {d}")).collect()
}

fn seconds(d: Duration) -> String {
    format!("{}s", d.as_secs_f64())
}

impl CliError {
    /// The process exit status for this failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) => 2,
            CliError::Unreachable { .. } => 3,
            CliError::PlanStopped { .. } => 4,
            CliError::Timeout { .. } => 5,
            CliError::Api { .. }
            | CliError::Response { .. }
            | CliError::Failed(_)
            | CliError::Output(_) => 1,
        }
    }
}
