//! The command-line pieces every framework binary shares.
//!
//! A framework binary (e.g. `kafka-mesos`) gets, over its scheduler's REST
//! API: `<bin> <noun> add|list|show|update|clone|start|stop|restart|replace|remove|log|explain|admin`,
//! `<bin> plan list|show|pause|resume|abort|watch` and `<bin> endpoints`, with
//! `--api URL` (default `http://127.0.0.1:7000`, or the framework's variable
//! such as `KAFKA_MESOS_API`), `--token`, and `--json` for scripts. Commands
//! that start a plan (add, update, clone, restart, replace, plan resume)
//! follow it to its end with a progress bar, unless `--no-wait`.
//!
//! Exit status: 0 success; 1 refused by the scheduler or failed; 2 bad
//! command line; 3 scheduler unreachable; 4 plan paused or aborted; 5
//! `--timeout` passed (the plan goes on in the scheduler).
//!
//! A framework plugs in its own node options through [`NodeOptions`] and
//! either uses the whole tree ([`CliSpec::command`] and [`run`]) or embeds
//! [`NodeCommand`]/[`PlanCommand`] in its own clap tree and calls
//! [`node_command`]/[`plan_command`]. This crate does no validation of
//! configurations: the scheduler does, and its errors are shown as they come.
//!
//! Modules: [`cli`] (the clap tree), [`client`] (the HTTP client),
//! [`progress`] (following plans), [`output`] (tables), [`error`].

pub mod cli;
pub mod client;
pub mod error;
pub mod output;
pub mod progress;

use std::{io::IsTerminal, io::Write, process::ExitCode, time::Duration};

pub use cli::{
    Cli, CliCommand, CliSpec, ConfigArgs, FollowArgs, GlobalArgs, NoOptions, NodeCommand,
    NodeOptions, PlanCommand, Stream, build_config,
};
pub use client::ApiClient;
pub use error::CliError;
use scheduler_api::{
    ids::{IdExpr, valid_id},
    model::{Accepted, PlanView},
};

/// Everything a command needs besides its arguments.
#[derive(Clone, Debug)]
pub struct Context {
    /// The API client.
    pub client: ApiClient,
    /// The binary's name, for hints such as `kafka-mesos plan watch …`.
    pub bin: String,
    /// What one node is called.
    pub noun: String,
    /// Print JSON instead of tables.
    pub json: bool,
    /// How often a followed plan is polled.
    pub poll: Duration,
    /// Draw a progress bar (a terminal) rather than one line per change.
    pub progress_bar: bool,
}

impl Context {
    /// The context for `global` options of the framework described by `spec`.
    pub fn new(spec: &CliSpec, global: &GlobalArgs) -> Result<Self, CliError> {
        Ok(Context {
            client: ApiClient::new(&global.api, global.token.clone(), &spec.api_env)?,
            bin: spec.bin.clone(),
            noun: spec.noun.clone(),
            json: global.json,
            poll: Duration::from_millis(500),
            progress_bar: std::io::stderr().is_terminal(),
        })
    }
}

/// Runs a parsed command line, printing to stdout and stderr; the exit
/// status says how it went (see the crate documentation).
pub async fn run<O: NodeOptions>(cli: Cli<O>, spec: &CliSpec) -> ExitCode {
    let mut out = std::io::stdout();
    let mut err = std::io::stderr();
    let result = match Context::new(spec, &cli.global) {
        Ok(ctx) => execute(&ctx, cli.command, &mut out, &mut err).await,
        Err(e) => Err(e),
    };
    exit_code(result, &mut err)
}

/// Prints a failure to `err` and turns the result into an exit status.
pub fn exit_code(result: Result<(), CliError>, err: &mut dyn Write) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let _ = writeln!(err, "error: {error}");
            ExitCode::from(error.exit_code())
        }
    }
}

/// Carries out one command of the shared tree.
pub async fn execute<O: NodeOptions>(
    ctx: &Context,
    command: CliCommand<O>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), CliError> {
    match command {
        CliCommand::Node(command) => node_command(ctx, command, out, err).await,
        CliCommand::Plan(command) => plan_command(ctx, command, out, err).await,
        CliCommand::Endpoints => {
            let endpoints = ctx.client.endpoints().await?;
            writeln!(out, "{}", output::json(&endpoints))?;
            Ok(())
        }
    }
}

/// Checks an ID expression before sending it, for a usage error without a round trip.
fn check_ids(expression: &str) -> Result<IdExpr, CliError> {
    IdExpr::parse(expression).map_err(|e| CliError::Usage(e.to_string()))
}

fn check_one(id: &str, noun: &str) -> Result<(), CliError> {
    if valid_id(id) {
        Ok(())
    } else {
        Err(CliError::Usage(format!(
            "`{id}` is not one {noun} ID; this command takes a single ID such as 0"
        )))
    }
}

fn check_new(expression: &str, noun: &str) -> Result<(), CliError> {
    check_ids(expression)?
        .new_ids(expression, noun)
        .map(|_| ())
        .map_err(|e| CliError::Usage(e.to_string()))
}

/// After a command that started a plan: follow it, or say how to.
async fn after_plan(
    ctx: &Context,
    accepted: Accepted,
    follow: &FollowArgs,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), CliError> {
    let Some(plan) = accepted.plan.clone() else {
        return print_accepted(ctx, &accepted, out);
    };
    if follow.no_wait {
        if ctx.json {
            writeln!(out, "{}", output::json(&accepted))?;
        } else {
            writeln!(
                out,
                "{} (plan {plan}); follow it with `{} plan watch {plan}`",
                accepted.message, ctx.bin
            )?;
        }
        return Ok(());
    }
    writeln!(err, "{} (plan {plan})", accepted.message)?;
    let done = progress::follow(ctx, &plan, follow.timeout, err).await?;
    print_done(ctx, &done, out)
}

fn print_done(ctx: &Context, plan: &PlanView, out: &mut dyn Write) -> Result<(), CliError> {
    if ctx.json {
        writeln!(out, "{}", output::json(plan))?;
    } else {
        let nodes: Vec<&str> = plan.steps.iter().map(|s| s.node.as_str()).collect();
        writeln!(
            out,
            "plan {} complete: {} {} ({}/{} steps)",
            plan.id,
            ctx.noun,
            nodes.join(", "),
            plan.done,
            plan.total
        )?;
    }
    Ok(())
}

fn print_accepted(ctx: &Context, accepted: &Accepted, out: &mut dyn Write) -> Result<(), CliError> {
    if ctx.json {
        writeln!(out, "{}", output::json(accepted))?;
    } else {
        writeln!(out, "{}", accepted.message)?;
    }
    Ok(())
}

/// Carries out one `<noun> <verb>` command.
pub async fn node_command<O: NodeOptions>(
    ctx: &Context,
    command: NodeCommand<O>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), CliError> {
    let noun = ctx.noun.as_str();
    let client = &ctx.client;
    match command {
        NodeCommand::Add {
            ids,
            options,
            config,
            follow,
        } => {
            check_new(&ids, noun)?;
            let config = build_config(&options, &config)?;
            let accepted = client.add(&ids, config).await?;
            after_plan(ctx, accepted, &follow, out, err).await
        }
        NodeCommand::List { ids, removed } => {
            if let Some(ids) = &ids {
                check_ids(ids)?;
            }
            let list = client.nodes(ids.as_deref(), removed).await?;
            if ctx.json {
                writeln!(out, "{}", output::json(&list))?;
            } else {
                writeln!(out, "{}", output::node_table(&list.nodes, noun))?;
            }
            Ok(())
        }
        NodeCommand::Show { id } => {
            check_one(&id, noun)?;
            let node = client.node(&id).await?;
            if ctx.json {
                writeln!(out, "{}", output::json(&node))?;
            } else {
                writeln!(out, "{}", output::node_details(&node, noun))?;
            }
            Ok(())
        }
        NodeCommand::Update {
            ids,
            options,
            config,
            follow,
        } => {
            check_ids(&ids)?;
            let patch = build_config(&options, &config)?;
            if patch.as_object().is_some_and(|o| o.is_empty()) {
                return Err(CliError::Usage(format!(
                    "nothing to update: give {noun} options, --config-json or --set KEY=VALUE"
                )));
            }
            let accepted = client.update(&ids, patch).await?;
            after_plan(ctx, accepted, &follow, out, err).await
        }
        NodeCommand::Clone {
            source,
            ids,
            options,
            config,
            follow,
        } => {
            check_one(&source, noun)?;
            check_new(&ids, noun)?;
            let overrides = build_config(&options, &config)?;
            let mut copied = client.node(&source).await?.config;
            if !copied.is_object() {
                copied = serde_json::Value::Object(Default::default());
            }
            cli_merge(&mut copied, overrides);
            let accepted = client.add(&ids, copied).await?;
            after_plan(ctx, accepted, &follow, out, err).await
        }
        NodeCommand::Start { ids } => {
            check_ids(&ids)?;
            let accepted = client.lifecycle(&ids, "start").await?;
            print_accepted(ctx, &accepted, out)
        }
        NodeCommand::Stop { ids } => {
            check_ids(&ids)?;
            let accepted = client.lifecycle(&ids, "stop").await?;
            print_accepted(ctx, &accepted, out)
        }
        NodeCommand::Restart { ids, follow } => {
            check_ids(&ids)?;
            let accepted = client.lifecycle(&ids, "restart").await?;
            after_plan(ctx, accepted, &follow, out, err).await
        }
        NodeCommand::Replace { ids, follow } => {
            check_ids(&ids)?;
            let accepted = client.lifecycle(&ids, "replace").await?;
            after_plan(ctx, accepted, &follow, out, err).await
        }
        NodeCommand::Remove { ids, yes } => {
            check_ids(&ids)?;
            if !yes {
                return Err(CliError::Usage(format!(
                    "removing {noun} {ids} destroys their persistent volumes and data; run again with --yes to confirm"
                )));
            }
            let accepted = client.remove(&ids).await?;
            print_accepted(ctx, &accepted, out)
        }
        NodeCommand::Log { id, stream, lines } => {
            check_one(&id, noun)?;
            if !(1..=1000).contains(&lines) {
                return Err(CliError::Usage(format!(
                    "--lines {lines} is out of range; ask for 1 to 1000 lines"
                )));
            }
            let log = client.log(&id, stream.as_str(), lines).await?;
            if ctx.json {
                writeln!(out, "{}", output::json(&log))?;
            } else {
                for line in &log.lines {
                    writeln!(out, "{line}")?;
                }
            }
            Ok(())
        }
        NodeCommand::Explain { id } => {
            check_one(&id, noun)?;
            let explain = client.explain(&id).await?;
            if ctx.json {
                writeln!(out, "{}", output::json(&explain))?;
            } else {
                writeln!(out, "{}", output::explanation(&explain, noun))?;
            }
            Ok(())
        }
        NodeCommand::Admin { id, name, args } => {
            check_one(&id, noun)?;
            let result = client.admin(&id, &name, args).await?;
            if ctx.json {
                writeln!(out, "{}", output::json(&result))?;
            } else {
                write!(out, "{}", result.stdout)?;
                write!(err, "{}", result.stderr)?;
            }
            match (result.exit_code, result.timed_out) {
                (Some(0), false) => Ok(()),
                (_, true) => Err(CliError::Failed(format!(
                    "admin command {name} on {noun} {id} timed out"
                ))),
                (code, false) => Err(CliError::Failed(format!(
                    "admin command {name} on {noun} {id} failed ({})",
                    code.map_or("killed by a signal".into(), |c| format!("exit status {c}"))
                ))),
            }
        }
    }
}

fn cli_merge(target: &mut serde_json::Value, patch: serde_json::Value) {
    match (target, patch) {
        (serde_json::Value::Object(target), serde_json::Value::Object(patch)) => {
            for (key, value) in patch {
                if value.is_null() {
                    target.remove(&key);
                } else {
                    cli_merge(target.entry(key).or_insert(serde_json::Value::Null), value);
                }
            }
        }
        (target, patch) => *target = patch,
    }
}

/// The plan a command without an ID acts on: the open one, or (when
/// `latest_ok`) the most recent one.
async fn pick_plan(ctx: &Context, id: Option<String>, latest_ok: bool) -> Result<String, CliError> {
    if let Some(id) = id {
        return Ok(id);
    }
    let plans = ctx.client.plans().await?.plans;
    if let Some(open) = plans.iter().find(|p| p.is_open()) {
        return Ok(open.id.clone());
    }
    match plans.last() {
        Some(latest) if latest_ok => Ok(latest.id.clone()),
        Some(_) => Err(CliError::Usage(format!(
            "no plan is open; name one (see `{} plan list`)",
            ctx.bin
        ))),
        None => Err(CliError::Usage("there are no plans yet".into())),
    }
}

/// Carries out one `plan <verb>` command.
pub async fn plan_command(
    ctx: &Context,
    command: PlanCommand,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), CliError> {
    let client = &ctx.client;
    match command {
        PlanCommand::List => {
            let plans = client.plans().await?;
            if ctx.json {
                writeln!(out, "{}", output::json(&plans))?;
            } else {
                writeln!(out, "{}", output::plan_table(&plans.plans, &ctx.noun))?;
            }
            Ok(())
        }
        PlanCommand::Show { id } => {
            let id = pick_plan(ctx, id, true).await?;
            let plan = client.plan(&id).await?;
            if ctx.json {
                writeln!(out, "{}", output::json(&plan))?;
            } else {
                writeln!(out, "{}", output::plan_details(&plan, &ctx.noun))?;
            }
            Ok(())
        }
        PlanCommand::Pause { id } => {
            let id = pick_plan(ctx, id, false).await?;
            let accepted = client.plan_action(&id, "pause").await?;
            print_accepted(ctx, &accepted, out)
        }
        PlanCommand::Abort { id } => {
            let id = pick_plan(ctx, id, false).await?;
            let accepted = client.plan_action(&id, "abort").await?;
            print_accepted(ctx, &accepted, out)
        }
        PlanCommand::Resume { id, follow } => {
            let id = pick_plan(ctx, id, false).await?;
            let accepted = client.plan_action(&id, "resume").await?;
            after_plan(ctx, accepted, &follow, out, err).await
        }
        PlanCommand::Watch { id, timeout } => {
            let id = pick_plan(ctx, id, true).await?;
            let done = progress::follow(ctx, &id, timeout, err).await?;
            print_done(ctx, &done, out)
        }
    }
}
