//! CLI commands run against the real API router over a stand-in runtime.

use std::{sync::Arc, time::Duration};

use framework_cli::{
    ApiClient, CliCommand, CliError, ConfigArgs, Context, FollowArgs, NoOptions, NodeCommand,
    PlanCommand, Stream, execute,
};
use scheduler_api::{
    ApiState, Artifacts, router,
    testing::{FakeOptions, FakeRuntime, running_node},
};

struct Api {
    base: String,
    fake: FakeRuntime,
    server: tokio::task::JoinHandle<Result<(), scheduler_api::ApiError>>,
}

impl Drop for Api {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn api(options: FakeOptions, token: Option<&str>) -> Api {
    let fake = FakeRuntime::start(options);
    let state = ApiState::new(fake.handle(), "kafka", "broker")
        .with_token(token.map(str::to_owned))
        .with_artifacts(Artifacts::new());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    let server = tokio::spawn(scheduler_api::serve(
        listener,
        router(state),
        std::future::pending(),
    ));
    Api { base, fake, server }
}

async fn with_brokers(options: FakeOptions) -> Api {
    let api = api(options, None).await;
    api.fake.update(|s| {
        for (id, rack) in [("0", "r1"), ("1", "r2"), ("2", "r1")] {
            let mut node = running_node(id, &format!("a{id}.local"), rack);
            node.config = serde_json::json!({"heap_mb": 1024});
            Arc::make_mut(&mut s.state).nodes.insert(id.into(), node);
        }
    });
    api
}

fn context(base: &str, token: Option<&str>, json: bool) -> Context {
    Context {
        client: ApiClient::new(base, token.map(str::to_owned), "KAFKA_MESOS_API").expect("client"),
        bin: "kafka-mesos".into(),
        noun: "broker".into(),
        json,
        poll: Duration::from_millis(20),
        progress_bar: false,
    }
}

/// Runs one command; returns its result, stdout and stderr.
async fn run(
    ctx: &Context,
    command: CliCommand<NoOptions>,
) -> (Result<(), CliError>, String, String) {
    let mut out = Vec::new();
    let mut err = Vec::new();
    let result = execute(ctx, command, &mut out, &mut err).await;
    (
        result,
        String::from_utf8_lossy(&out).into_owned(),
        String::from_utf8_lossy(&err).into_owned(),
    )
}

fn node(command: NodeCommand<NoOptions>) -> CliCommand<NoOptions> {
    CliCommand::Node(command)
}

fn fast() -> FakeOptions {
    FakeOptions {
        tick: Some(Duration::from_millis(10)),
        fail_at: None,
    }
}

#[tokio::test]
async fn list_shows_a_table_and_json() {
    let api = with_brokers(FakeOptions::default()).await;
    let ctx = context(&api.base, None, false);
    let (result, out, _) = run(
        &ctx,
        node(NodeCommand::List {
            ids: None,
            removed: false,
        }),
    )
    .await;
    result.expect("list");
    let lines: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        lines[0],
        ["ID", "STAGE", "HOST", "ENDPOINT", "TASK", "DETAILS"],
        "{out}"
    );
    assert_eq!(
        lines[1],
        ["0", "running", "a0.local", "a0.local:9000", "TASK_RUNNING"],
        "{out}"
    );
    assert_eq!(lines.len(), 4, "{out}");

    let (result, out, _) = run(
        &context(&api.base, None, true),
        node(NodeCommand::List {
            ids: Some("*[rack=r1]".into()),
            removed: false,
        }),
    )
    .await;
    result.expect("list --json");
    let list: scheduler_api::model::NodeList = serde_json::from_str(&out).expect("JSON output");
    let ids: Vec<&str> = list.nodes.iter().map(|n| n.id.as_str()).collect();
    assert_eq!(ids, ["0", "2"]);
}

#[tokio::test]
async fn show_explain_and_log() {
    let api = with_brokers(FakeOptions::default()).await;
    api.fake.update(|s| {
        Arc::make_mut(&mut s.explanations).insert(
            "1".into(),
            [(
                "a9.local".to_string(),
                vec!["needs 4 cpus, offered 2".to_string()],
            )]
            .into(),
        );
    });
    let ctx = context(&api.base, None, false);
    let (result, out, _) = run(&ctx, node(NodeCommand::Show { id: "1".into() })).await;
    result.expect("show");
    assert!(out.starts_with("broker 1\n"), "{out}");
    assert!(
        out.contains("host:        a1.local (agent agent-a1.local)"),
        "{out}"
    );
    assert!(out.contains("\"heap_mb\": 1024"), "{out}");

    let (result, out, _) = run(&ctx, node(NodeCommand::Explain { id: "1".into() })).await;
    result.expect("explain");
    assert!(out.contains("a9.local"), "{out}");
    assert!(out.contains("needs 4 cpus, offered 2"), "{out}");

    let (result, out, _) = run(
        &ctx,
        node(NodeCommand::Log {
            id: "2".into(),
            stream: Stream::Stderr,
            lines: 2,
        }),
    )
    .await;
    result.expect("log");
    assert_eq!(out, "stderr line 1\nstderr line 2\n");

    let (result, _, _) = run(&ctx, node(NodeCommand::Show { id: "0..2".into() })).await;
    let error = result.expect_err("one ID only");
    assert_eq!(error.exit_code(), 2);
}

#[tokio::test]
async fn add_follows_the_plan_with_progress_and_succeeds() {
    let api = api(fast(), None).await;
    let ctx = context(&api.base, None, false);
    let (result, out, err) = run(
        &ctx,
        node(NodeCommand::Add {
            ids: "0..2".into(),
            options: NoOptions {},
            config: ConfigArgs {
                config_json: None,
                set: vec!["heap_mb=512".into()],
            },
            follow: FollowArgs::default(),
        }),
    )
    .await;
    result.unwrap_or_else(|e| panic!("add failed: {e}\n{err}"));
    assert_eq!(out, "plan deploy-1 complete: broker 0, 1, 2 (3/3 steps)\n");
    assert!(
        err.starts_with("deploying broker 0, 1, 2 (plan deploy-1)\n"),
        "{err}"
    );
    // One line per change seen; how many changes a poll sees depends on timing,
    // so check the form, that progress never goes back, and the last line.
    let mut done_before = 0;
    let progress: Vec<&str> = err.lines().skip(1).collect();
    for line in &progress {
        let rest = line
            .strip_prefix("deploy-1 [")
            .unwrap_or_else(|| panic!("{line}"));
        let (done, rest) = rest.split_once("/3] ").unwrap_or_else(|| panic!("{line}"));
        let done: usize = done.parse().unwrap_or_else(|_| panic!("{line}"));
        assert!(done >= done_before, "progress went back: {err}");
        done_before = done;
        assert!(
            rest.starts_with("broker ") || rest == "all steps complete",
            "{line}"
        );
    }
    assert_eq!(
        progress.last(),
        Some(&"deploy-1 [3/3] all steps complete"),
        "{err}"
    );
    assert_eq!(
        api.fake.received(),
        [r#"add 0,1,2 {"heap_mb":512}"#.to_string()]
    );
}

#[tokio::test]
async fn a_plan_that_stops_fails_the_command_with_its_reason() {
    let api = with_brokers(FakeOptions {
        tick: Some(Duration::from_millis(10)),
        fail_at: Some("1".into()),
    })
    .await;
    let ctx = context(&api.base, None, false);
    let (result, out, err) = run(
        &ctx,
        node(NodeCommand::Restart {
            ids: "*".into(),
            follow: FollowArgs::default(),
        }),
    )
    .await;
    let error = result.expect_err("the plan pauses at broker 1");
    assert_eq!(error.exit_code(), 4);
    let message = error.to_string();
    assert!(
        message.starts_with("plan restart-1 paused: node 1 did not become ready"),
        "{message}"
    );
    assert!(message.contains("service failed to start"), "{message}");
    assert!(out.is_empty(), "{out}");
    assert!(err.contains("restart-1 [1/3] broker 1"), "{err}");
    // The paused plan is visible and can be aborted without naming it.
    let (result, out, _) = run(&ctx, CliCommand::Plan(PlanCommand::Abort { id: None })).await;
    result.expect("abort");
    assert_eq!(out, "plan restart-1 aborted\n");
    let (result, out, _) = run(&ctx, CliCommand::Plan(PlanCommand::List)).await;
    result.expect("plan list");
    assert!(out.contains("restart-1  restart  aborted  1/3"), "{out}");
}

#[tokio::test]
async fn timeout_and_no_wait_leave_the_plan_running() {
    let api = with_brokers(FakeOptions::default()).await;
    let ctx = context(&api.base, None, false);
    let (result, _, _) = run(
        &ctx,
        node(NodeCommand::Restart {
            ids: "0".into(),
            follow: FollowArgs {
                no_wait: false,
                timeout: Some(Duration::from_millis(200)),
            },
        }),
    )
    .await;
    let error = result.expect_err("nothing moves the plan");
    assert_eq!(error.exit_code(), 5);
    let message = error.to_string();
    assert!(
        message.contains("plan restart-1 still running after 0.2s"),
        "{message}"
    );
    assert!(message.contains("broker 0: pending"), "{message}");
    assert!(message.contains("plan watch restart-1"), "{message}");

    let (result, out, _) = run(&ctx, CliCommand::Plan(PlanCommand::Abort { id: None })).await;
    result.expect("abort");
    assert_eq!(out, "plan restart-1 aborted\n");
    let (result, out, _) = run(
        &ctx,
        node(NodeCommand::Replace {
            ids: "2".into(),
            follow: FollowArgs {
                no_wait: true,
                timeout: None,
            },
        }),
    )
    .await;
    result.expect("replace --no-wait");
    assert_eq!(
        out,
        "moving broker 2 to new agents (plan replace-2); follow it with `kafka-mesos plan watch replace-2`\n"
    );
    let (result, out, _) = run(&ctx, CliCommand::Plan(PlanCommand::Show { id: None })).await;
    result.expect("plan show");
    assert!(
        out.starts_with("plan replace-2 (replace, serial): active — 0/1 steps complete"),
        "{out}"
    );
}

#[tokio::test]
async fn clone_copies_the_configuration_with_overrides() {
    let api = with_brokers(fast()).await;
    let ctx = context(&api.base, None, true);
    let (result, out, err) = run(
        &ctx,
        node(NodeCommand::Clone {
            source: "0".into(),
            ids: "3".into(),
            options: NoOptions {},
            config: ConfigArgs {
                config_json: Some(r#"{"rack": "r3"}"#.into()),
                set: vec![],
            },
            follow: FollowArgs::default(),
        }),
    )
    .await;
    result.unwrap_or_else(|e| panic!("clone failed: {e}\n{err}"));
    let plan: scheduler_api::model::PlanView =
        serde_json::from_str(&out).expect("--json prints the plan");
    assert_eq!(plan.done, 1);
    assert_eq!(
        api.fake.received(),
        [r#"add 3 {"heap_mb":1024,"rack":"r3"}"#.to_string()]
    );
}

#[tokio::test]
async fn remove_needs_confirmation_and_errors_carry_the_scheduler_reason() {
    let api = with_brokers(FakeOptions::default()).await;
    let ctx = context(&api.base, None, false);
    let (result, _, _) = run(
        &ctx,
        node(NodeCommand::Remove {
            ids: "1".into(),
            yes: false,
        }),
    )
    .await;
    let error = result.expect_err("needs --yes");
    assert_eq!(error.exit_code(), 2);
    assert!(
        error.to_string().contains("run again with --yes"),
        "{error}"
    );
    assert!(api.fake.received().is_empty(), "nothing was sent");

    let (result, out, _) = run(
        &ctx,
        node(NodeCommand::Remove {
            ids: "1".into(),
            yes: true,
        }),
    )
    .await;
    result.expect("remove");
    assert!(out.starts_with("removing broker 1"), "{out}");

    let (result, _, _) = run(&ctx, node(NodeCommand::Stop { ids: "1,7".into() })).await;
    let error = result.expect_err("unknown brokers");
    assert_eq!(error.exit_code(), 1);
    assert_eq!(
        error.to_string(),
        "broker 1 does not exist\n  - broker 1 does not exist\n  - broker 7 does not exist\n  - list the brokers with GET /api/v1/nodes"
    );

    let (result, _, _) = run(&ctx, node(NodeCommand::Start { ids: "0,,1".into() })).await;
    let error = result.expect_err("bad expression");
    assert_eq!(error.exit_code(), 2);
    assert!(error.to_string().contains("item 2 is empty"), "{error}");
}

#[tokio::test]
async fn an_unreachable_scheduler_says_how_to_point_at_it() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("address");
    drop(listener);
    let ctx = context(&format!("http://{address}"), None, false);
    let (result, _, _) = run(&ctx, CliCommand::Endpoints).await;
    let error = result.expect_err("nothing listens");
    assert_eq!(error.exit_code(), 3);
    let message = error.to_string();
    assert!(
        message.starts_with(&format!(
            "cannot reach the scheduler at http://{address}/api/v1/endpoints"
        )),
        "{message}"
    );
    assert!(
        message.contains("(is it running? set --api or $KAFKA_MESOS_API)"),
        "{message}"
    );
}

#[tokio::test]
async fn a_missing_token_is_explained() {
    let api = api(FakeOptions::default(), Some("s3cret")).await;
    let (result, _, _) = run(&context(&api.base, None, false), CliCommand::Endpoints).await;
    let error = result.expect_err("401");
    assert_eq!(error.exit_code(), 1);
    assert!(
        error.to_string().contains("--token or $KAFKA_MESOS_TOKEN"),
        "{error}"
    );
    let (result, out, _) = run(
        &context(&api.base, Some("s3cret"), false),
        CliCommand::Endpoints,
    )
    .await;
    result.expect("with the token");
    assert_eq!(out.trim(), "null", "the stand-in has no endpoints");
}

#[tokio::test]
async fn admin_prints_output_and_fails_on_refusal() {
    let api = with_brokers(FakeOptions::default()).await;
    let ctx = context(&api.base, None, false);
    let (result, out, _) = run(
        &ctx,
        node(NodeCommand::Admin {
            id: "0".into(),
            name: "echo".into(),
            args: vec!["hello".into(), "there".into()],
        }),
    )
    .await;
    result.expect("admin echo");
    assert_eq!(out, "hello there");
    let (result, _, _) = run(
        &ctx,
        node(NodeCommand::Admin {
            id: "0".into(),
            name: "reboot".into(),
            args: vec![],
        }),
    )
    .await;
    let error = result.expect_err("not allowed");
    assert!(
        error.to_string().contains("not in the allow-list"),
        "{error}"
    );
}
