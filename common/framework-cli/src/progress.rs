//! Following a plan to its end: poll `GET /plans/{id}`, show the current
//! step, and finish with success only when the plan completes.

use std::{io::Write, time::Duration};

use indicatif::{ProgressBar, ProgressStyle};
use scheduler_api::model::PlanView;
use scheduler_core::plan::{PlanState, Step, StepPhase};
use tokio::time::Instant;

use crate::{Context, error::CliError};

/// How long the scheduler may stay unreachable while a plan is followed
/// (e.g. Marathon restarting it) before the CLI gives up.
const UNREACHABLE_GRACE: Duration = Duration::from_secs(120);

/// The step a plan is working on: the first one started and not complete,
/// else the first pending one.
pub fn current_step(plan: &PlanView) -> Option<&Step> {
    plan.steps
        .iter()
        .find(|s| !matches!(s.phase, StepPhase::Pending | StepPhase::Complete))
        .or_else(|| plan.steps.iter().find(|s| s.phase == StepPhase::Pending))
}

fn phase_text(phase: StepPhase) -> &'static str {
    match phase {
        StepPhase::Pending => "pending",
        StepPhase::CheckingSafety => "checking safety",
        StepPhase::Restarting => "restarting",
        StepPhase::CheckingHealth => "checking health",
        StepPhase::Complete => "complete",
    }
}

/// One line about the plan's current step, e.g. `broker 1: restarting — launching`.
pub fn step_text(plan: &PlanView, noun: &str) -> String {
    match current_step(plan) {
        Some(step) => {
            let mut text = format!("{noun} {}: {}", step.node, phase_text(step.phase));
            if let Some(message) = &step.message {
                text.push_str(" — ");
                text.push_str(message);
            }
            text
        }
        None if plan.total > 0 && plan.done == plan.total => "all steps complete".into(),
        None => "no step in progress".into(),
    }
}

/// Where progress goes: a bar on a terminal, lines otherwise.
enum Display<'a> {
    Bar(ProgressBar),
    Lines {
        out: &'a mut dyn Write,
        last: Option<String>,
    },
}

impl Display<'_> {
    fn show(&mut self, plan: &PlanView, noun: &str) -> Result<(), CliError> {
        let text = step_text(plan, noun);
        match self {
            Display::Bar(bar) => {
                bar.set_length(plan.total as u64);
                bar.set_position(plan.done as u64);
                bar.set_message(text);
            }
            Display::Lines { out, last } => {
                let line = format!("{} [{}/{}] {text}", plan.id, plan.done, plan.total);
                if last.as_deref() != Some(line.as_str()) {
                    writeln!(out, "{line}")?;
                    *last = Some(line);
                }
            }
        }
        Ok(())
    }

    fn note(&mut self, text: &str) -> Result<(), CliError> {
        match self {
            Display::Bar(bar) => bar.set_message(text.to_owned()),
            Display::Lines { out, .. } => writeln!(out, "{text}")?,
        }
        Ok(())
    }

    fn finish(&mut self) {
        if let Display::Bar(bar) = self {
            bar.finish_and_clear();
        }
    }
}

/// Follows plan `id` until it completes (`Ok`), stops (`PlanStopped`) or
/// `timeout` passes (`Timeout`). Progress goes to `err`, or to a bar when
/// the context says stderr is a terminal.
pub async fn follow(
    ctx: &Context,
    id: &str,
    timeout: Option<Duration>,
    err: &mut dyn Write,
) -> Result<PlanView, CliError> {
    let deadline = timeout.map(|t| Instant::now() + t);
    let mut display = if ctx.progress_bar {
        let bar = ProgressBar::new(0);
        let style =
            ProgressStyle::with_template("{spinner} {prefix} [{bar:30}] {pos}/{len} {wide_msg}")
                .map(|s| s.progress_chars("=> "))
                .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        bar.set_prefix(id.to_owned());
        bar.enable_steady_tick(Duration::from_millis(120));
        Display::Bar(bar)
    } else {
        Display::Lines {
            out: err,
            last: None,
        }
    };
    let mut unreachable_since: Option<Instant> = None;
    let mut last_seen: Option<PlanView> = None;
    let result = loop {
        match ctx.client.plan(id).await {
            Ok(plan) => {
                unreachable_since = None;
                display.show(&plan, &ctx.noun)?;
                match &plan.state {
                    PlanState::Complete => break Ok(plan),
                    PlanState::Paused { reason } => {
                        break Err(CliError::PlanStopped {
                            plan: plan.id.clone(),
                            state: "paused".into(),
                            reason: reason.clone(),
                        });
                    }
                    PlanState::Aborted => {
                        break Err(CliError::PlanStopped {
                            plan: plan.id.clone(),
                            state: "aborted".into(),
                            reason: format!(
                                "{} of {} steps completed; {}",
                                plan.done,
                                plan.total,
                                step_text(&plan, &ctx.noun)
                            ),
                        });
                    }
                    PlanState::Active => {}
                }
                last_seen = Some(plan);
            }
            // A scheduler restarted by Marathon resumes its plans: keep
            // following for a while instead of failing at the first refusal.
            Err(error @ CliError::Unreachable { .. }) => {
                let since = *unreachable_since.get_or_insert_with(Instant::now);
                if since.elapsed() > UNREACHABLE_GRACE {
                    break Err(error);
                }
                display.note(&format!("{error}; retrying"))?;
            }
            Err(error) => break Err(error),
        }
        if let Some(deadline) = deadline
            && Instant::now() >= deadline
        {
            break Err(CliError::Timeout {
                plan: id.to_owned(),
                after: timeout.unwrap_or_default(),
                step: last_seen
                    .as_ref()
                    .map(|p| step_text(p, &ctx.noun))
                    .unwrap_or_else(|| "no answer from the scheduler".into()),
            });
        }
        tokio::time::sleep(ctx.poll).await;
    };
    display.finish();
    result
}
