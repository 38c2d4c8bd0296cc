//! Component tests: the router on 127.0.0.1:0 over a stand-in runtime,
//! called over real HTTP.

mod support;

use std::{collections::BTreeSet, sync::Arc, time::Duration};

use reqwest::Method;
use scheduler_api::{
    Artifacts,
    testing::{FakeOptions, running_node},
};
use scheduler_core::plan::StepPhase;
use serde_json::{Value, json};
use support::{Server, error_text};

#[tokio::test]
async fn health_is_ok_while_connecting_and_fails_only_on_a_fatal_error() {
    let server = Server::start(FakeOptions::default(), None, Artifacts::new()).await;
    let (status, body) = server.get("/health").await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "ok");
    assert_eq!(body["subscribed"], true);

    server.fake.update(|s| {
        s.subscribed = false;
        s.master = None;
    });
    let (status, body) = server.get("/health").await;
    assert_eq!(status, 200, "waiting for a master is healthy: {body}");
    assert_eq!(body["status"], "connecting");
    assert_eq!(body["subscribed"], false);

    server
        .fake
        .update(|s| s.fatal = Some("the master removed framework fw-1".into()));
    let (status, body) = server.get("/health").await;
    assert_eq!(status, 503);
    assert_eq!(body["status"], "failed");
    assert_eq!(body["reason"], "the master removed framework fw-1");
    server.stop().await;
}

#[tokio::test]
async fn metrics_count_nodes_by_stage_and_plans_by_state() {
    let server = Server::with_brokers().await;
    server.fake.update(|s| {
        if let Some(n) = Arc::make_mut(&mut s.state).nodes.get_mut("2") {
            n.goal = scheduler_core::node::Goal::Stopped;
            n.task = None;
        }
        s.counters.insert("offers_received", 12);
    });
    let (status, _) = server
        .send(Method::POST, "/api/v1/nodes/0/restart", None)
        .await;
    assert_eq!(status, 202);
    let response = server
        .http
        .get(server.url("/metrics"))
        .send()
        .await
        .expect("GET /metrics");
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let text = response.text().await.expect("text");
    for line in [
        "scheduler_nodes{framework=\"kafka\",stage=\"running\"} 2",
        "scheduler_nodes{framework=\"kafka\",stage=\"stopped\"} 1",
        "scheduler_nodes{framework=\"kafka\",stage=\"failed\"} 0",
        "scheduler_plans{framework=\"kafka\",state=\"active\"} 1",
        "scheduler_subscribed{framework=\"kafka\"} 1",
        "scheduler_healthy{framework=\"kafka\"} 1",
        "scheduler_offers_received_total{framework=\"kafka\"} 12",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing `{line}` in:\n{text}"
        );
    }
    // Every sample line is `name{labels} number`.
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let value = line.rsplit(' ').next().unwrap_or_default();
        assert!(value.parse::<f64>().is_ok(), "bad sample line {line}");
    }
    server.stop().await;
}

#[tokio::test]
async fn nodes_list_show_and_filter_by_id_expression() {
    let server = Server::with_brokers().await;
    let (status, body) = server.get("/api/v1/nodes").await;
    assert_eq!(status, 200);
    let ids: Vec<&str> = body["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| n["id"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(ids, ["0", "1", "2"]);
    let first = &body["nodes"][0];
    assert_eq!(first["stage"], "running");
    assert_eq!(first["host"], "a0.local");
    assert_eq!(first["endpoints"]["client"], "a0.local:9000");
    assert_eq!(first["task"]["state"], "TASK_RUNNING");
    assert_eq!(first["attributes"]["rack"], "r1");

    let (_, body) = server.get("/api/v1/nodes?ids=*%5Brack%3Dr1%5D").await;
    let ids: Vec<&str> = body["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| n["id"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(ids, ["0", "2"]);

    let (status, body) = server.get("/api/v1/nodes/1").await;
    assert_eq!(status, 200);
    assert_eq!(body["id"], "1");
    assert_eq!(body["config"]["heap_mb"], 1024);

    let (status, body) = server.get("/api/v1/nodes/7").await;
    assert_eq!(status, 404);
    assert!(
        error_text(&body).contains("broker 7 does not exist"),
        "{body}"
    );

    let (status, body) = server.get("/api/v1/nodes/0..2").await;
    assert_eq!(status, 400);
    assert!(error_text(&body).contains("?ids=0..2"), "{body}");
    server.stop().await;
}

#[tokio::test]
async fn add_then_follow_the_deploy_plan() {
    let server = Server::start(
        FakeOptions {
            tick: Some(Duration::from_millis(10)),
            fail_at: None,
        },
        None,
        Artifacts::new(),
    )
    .await;
    let response = server
        .http
        .post(server.url("/api/v1/nodes"))
        .json(&json!({"ids": "0..2", "config": {"heap_mb": 512}}))
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), 202);
    let location = response.headers()["location"]
        .to_str()
        .expect("ascii")
        .to_owned();
    let (_, body) = support::json_of(response).await;
    assert_eq!(body["nodes"], json!(["0", "1", "2"]));
    let plan = body["plan"].as_str().expect("plan id").to_owned();
    assert_eq!(location, format!("/api/v1/plans/{plan}"));
    assert_eq!(
        server.fake.received(),
        [r#"add 0,1,2 {"heap_mb":512}"#.to_string()]
    );

    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = server.get(&location).await;
        assert_eq!(status, 200);
        if body["state"] == "complete" {
            assert_eq!(body["done"], 3);
            assert_eq!(body["total"], 3);
            assert!(
                body["steps"]
                    .as_array()
                    .expect("steps")
                    .iter()
                    .all(|s| s["phase"] == "complete")
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "plan never completed: {body}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (_, body) = server.get("/api/v1/plans").await;
    assert_eq!(body["plans"][0]["id"], plan);
    server.stop().await;
}

#[tokio::test]
async fn lifecycle_commands_reach_the_runtime_with_resolved_ids() {
    let server = Server::with_brokers().await;
    let cases = [
        (Method::POST, "/api/v1/nodes/0,2/stop", "stop 0,2", false),
        (
            Method::POST,
            "/api/v1/nodes/*%5Brack=r1%5D/start",
            "start 0,2",
            false,
        ),
        (
            Method::POST,
            "/api/v1/nodes/*/restart",
            "restart 0,1,2",
            true,
        ),
    ];
    for (method, path, expected, plan) in cases {
        let (status, body) = server.send(method, path, None).await;
        assert_eq!(status, 202, "{path}: {body}");
        assert_eq!(body["plan"].is_string(), plan, "{path}: {body}");
        assert_eq!(
            server.fake.received().last().map(String::as_str),
            Some(expected)
        );
    }
    // A second plan while one is open: the runtime's conflict is a 409.
    let (status, body) = server
        .send(Method::POST, "/api/v1/nodes/1/replace", None)
        .await;
    assert_eq!(status, 409, "{body}");
    assert!(
        error_text(&body).contains("restart-1 is still open"),
        "{body}"
    );
    let (status, body) = server
        .send(Method::POST, "/api/v1/plans/restart-1/abort", None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["message"], "plan restart-1 aborted");
    let (status, body) = server
        .send(Method::POST, "/api/v1/plans/restart-1/resume", None)
        .await;
    assert_eq!(status, 409, "an aborted plan cannot resume: {body}");
    let (status, body) = server
        .send(Method::POST, "/api/v1/nodes/1/replace", None)
        .await;
    assert_eq!(status, 202, "{body}");
    let (status, body) = server
        .send(
            Method::PATCH,
            "/api/v1/nodes/0",
            Some(r#"{"config": {"heap_mb": 2048}}"#),
        )
        .await;
    assert_eq!(status, 409, "replace-2 is open: {body}");
    server
        .send(Method::POST, "/api/v1/plans/replace-2/abort", None)
        .await;
    let (status, body) = server
        .send(
            Method::PATCH,
            "/api/v1/nodes/0",
            Some(r#"{"config": {"heap_mb": 2048}}"#),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(
        server.fake.received().last().map(String::as_str),
        Some(r#"update 0 {"heap_mb":2048}"#)
    );
    let (status, _) = server.send(Method::DELETE, "/api/v1/nodes/1", None).await;
    assert_eq!(status, 202);
    let (_, body) = server.get("/api/v1/nodes").await;
    assert_eq!(
        body["nodes"].as_array().map(Vec::len),
        Some(2),
        "removed nodes are hidden"
    );
    let (_, body) = server.get("/api/v1/nodes?removed=true").await;
    assert_eq!(body["nodes"].as_array().map(Vec::len), Some(3));
    let (status, body) = server
        .send(Method::POST, "/api/v1/nodes/1/start", None)
        .await;
    assert_eq!(status, 404, "a removed node is gone: {body}");
    server.stop().await;
}

#[tokio::test]
async fn explain_log_and_admin_go_through_the_runtime() {
    let server = Server::with_brokers().await;
    server.fake.update(|s| {
        let mut waiting = scheduler_core::node::Node::new(
            "3",
            scheduler_core::node::NodeSpec {
                resources: Default::default(),
                ports: vec![],
                constraints: vec![],
            },
        );
        waiting.waiting_reason = Some("no offer with 4 cpus on a host without a broker".into());
        Arc::make_mut(&mut s.state)
            .nodes
            .insert("3".into(), waiting);
        Arc::make_mut(&mut s.explanations).insert(
            "3".into(),
            [(
                "a9.local".to_string(),
                vec!["needs 4 cpus, offered 2".to_string()],
            )]
            .into(),
        );
    });
    let (status, body) = server.get("/api/v1/nodes/3/explain").await;
    assert_eq!(status, 200);
    assert_eq!(body["stage"], "added");
    assert_eq!(body["agents"]["a9.local"][0], "needs 4 cpus, offered 2");
    assert!(
        body["waiting_reason"]
            .as_str()
            .unwrap_or_default()
            .contains("4 cpus")
    );

    let (status, body) = server
        .get("/api/v1/nodes/0/log?stream=stderr&lines=3")
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["stream"], "stderr");
    assert_eq!(
        body["lines"],
        json!(["stderr line 1", "stderr line 2", "stderr line 3"])
    );
    let (status, body) = server.get("/api/v1/nodes/0/log").await;
    assert_eq!(status, 200);
    assert_eq!(body["stream"], "stdout");
    assert_eq!(
        body["lines"].as_array().map(Vec::len),
        Some(100),
        "100 lines by default"
    );

    let (status, body) = server.get("/api/v1/nodes/3/log").await;
    assert_eq!(status, 409, "no executor: {body}");
    assert!(error_text(&body).contains("no running executor"), "{body}");

    let (status, body) = server
        .send(
            Method::POST,
            "/api/v1/nodes/0/admin/echo",
            Some(r#"{"args": ["a", "b"]}"#),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["stdout"], "a b");
    assert_eq!(body["exit_code"], 0);
    let (status, body) = server
        .send(Method::POST, "/api/v1/nodes/0/admin/echo", None)
        .await;
    assert_eq!(status, 200, "the body is optional: {body}");
    let (status, body) = server
        .send(Method::POST, "/api/v1/nodes/0/admin/reboot", None)
        .await;
    assert_eq!(status, 403, "{body}");
    assert!(
        error_text(&body).contains("not in the allow-list"),
        "{body}"
    );
    server.stop().await;
}

#[tokio::test]
async fn every_bad_request_gets_a_json_error_that_says_how_to_fix_it() {
    let server = Server::with_brokers().await;
    let cases: Vec<(Method, &str, Option<&str>, u16, &str)> = vec![
        (
            Method::POST,
            "/api/v1/nodes",
            Some("{\"ids\": \"3\","),
            400,
            "EOF while parsing",
        ),
        (
            Method::POST,
            "/api/v1/nodes",
            Some(""),
            400,
            "the body is empty",
        ),
        (
            Method::POST,
            "/api/v1/nodes",
            Some(r#"{"ids": "3", "cfg": {}}"#),
            400,
            "unknown field `cfg`",
        ),
        (
            Method::POST,
            "/api/v1/nodes",
            Some(r#"{"ids": "3", "config": 5}"#),
            400,
            "must be a JSON object",
        ),
        (
            Method::POST,
            "/api/v1/nodes",
            Some(r#"{"ids": "3..1"}"#),
            400,
            "write 1..3",
        ),
        (
            Method::POST,
            "/api/v1/nodes",
            Some(r#"{"ids": "*"}"#),
            400,
            "name the new IDs",
        ),
        (
            Method::POST,
            "/api/v1/nodes",
            Some(r#"{"ids": "0"}"#),
            400,
            "0 already exists",
        ),
        (
            Method::POST,
            "/api/v1/nodes",
            Some(
                r#"{"ids": "5", "config": {"reject": ["heap_mb must be below mem", "disk too small"]}}"#,
            ),
            400,
            "heap_mb must be below mem | disk too small",
        ),
        (
            Method::PATCH,
            "/api/v1/nodes/0",
            Some(r#"{"heap_mb": 1}"#),
            400,
            "unknown field `heap_mb`",
        ),
        (
            Method::PATCH,
            "/api/v1/nodes/0,9,8",
            Some(r#"{"config": {}}"#),
            404,
            "broker 9 does not exist | broker 8 does not exist",
        ),
        (
            Method::POST,
            "/api/v1/nodes/0,,1/restart",
            None,
            400,
            "item 2 is empty",
        ),
        (
            Method::POST,
            "/api/v1/nodes/*%5Brack=r9%5D/stop",
            None,
            404,
            "no broker matches",
        ),
        (
            Method::DELETE,
            "/api/v1/nodes/x:y",
            None,
            400,
            "not a valid ID",
        ),
        (
            Method::GET,
            "/api/v1/nodes?idz=0",
            None,
            400,
            "unknown field `idz`",
        ),
        (
            Method::GET,
            "/api/v1/nodes/0/log?lines=0",
            None,
            400,
            "ask for 1 to 1000 lines",
        ),
        (
            Method::GET,
            "/api/v1/nodes/0/log?stream=both",
            None,
            400,
            "unknown variant `both`",
        ),
        (
            Method::GET,
            "/api/v1/plans/restart-9",
            None,
            404,
            "plan restart-9 does not exist",
        ),
        (
            Method::POST,
            "/api/v1/plans/restart-9/pause",
            None,
            404,
            "plan restart-9 does not exist",
        ),
        (Method::GET, "/api/v1/brokers", None, 404, "openapi.json"),
        (
            Method::PUT,
            "/api/v1/nodes",
            None,
            405,
            "does not accept PUT",
        ),
        (
            Method::POST,
            "/api/v1/nodes/0/admin/echo",
            Some("[1]"),
            400,
            "an admin command",
        ),
    ];
    for (method, path, body, status, needle) in cases {
        let (got, response) = server.send(method.clone(), path, body).await;
        let text = error_text(&response);
        assert_eq!(got, status, "{method} {path}: {text}");
        assert!(
            text.contains(needle),
            "{method} {path}: `{needle}` not in `{text}`"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn a_stopped_runtime_means_503() {
    let fake = scheduler_api::testing::FakeRuntime::start(FakeOptions::default());
    fake.update(|s| {
        Arc::make_mut(&mut s.state)
            .nodes
            .insert("0".into(), running_node("0", "a0.local", "r1"));
    });
    let state = scheduler_api::ApiState::new(fake.handle(), "kafka", "broker");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    let server = tokio::spawn(scheduler_api::serve(
        listener,
        scheduler_api::router(state),
        std::future::pending(),
    ));
    // Without its runtime task nobody answers commands any more.
    drop(fake);
    let response = reqwest::Client::new()
        .post(format!("{base}/api/v1/nodes/0/restart"))
        .send()
        .await
        .expect("POST");
    let (status, body) = support::json_of(response).await;
    assert_eq!(status, 503, "{body}");
    assert!(error_text(&body).contains("shutting down"), "{body}");
    // Reads still answer from the last snapshot.
    let response = reqwest::get(format!("{base}/api/v1/nodes/0"))
        .await
        .expect("GET");
    assert_eq!(response.status(), 200);
    server.abort();
}

#[tokio::test]
async fn bearer_token_protects_everything_but_health_and_artifacts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("service-executor");
    std::fs::write(&path, b"#!/bin/sh\necho hi\n").expect("write");
    let mut artifacts = Artifacts::new();
    artifacts.add("service-executor", &path).expect("register");
    let server = Server::start(FakeOptions::default(), Some("s3cret"), artifacts).await;

    let response = server
        .http
        .get(server.url("/api/v1/nodes"))
        .send()
        .await
        .expect("GET");
    assert_eq!(response.status(), 401);
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
    let (_, body) = support::json_of(response).await;
    assert!(
        error_text(&body).contains("requires a bearer token"),
        "{body}"
    );

    let wrong = server
        .http
        .get(server.url("/metrics"))
        .bearer_auth("guess")
        .send()
        .await
        .expect("GET");
    assert_eq!(wrong.status(), 401);
    let right = server
        .http
        .get(server.url("/api/v1/nodes"))
        .bearer_auth("s3cret")
        .send()
        .await
        .expect("GET");
    assert_eq!(right.status(), 200);
    let (status, _) = server.get("/health").await;
    assert_eq!(status, 200, "Marathon's health check needs no token");
    let artifact = server
        .http
        .get(server.url("/artifacts/service-executor"))
        .send()
        .await
        .expect("GET");
    assert_eq!(artifact.status(), 200, "the Mesos fetcher sends no token");
    // The document marks protected operations.
    let doc = server
        .http
        .get(server.url("/api/v1/openapi.json"))
        .bearer_auth("s3cret")
        .send()
        .await
        .expect("GET")
        .json::<Value>()
        .await
        .expect("json");
    assert_eq!(
        doc["paths"]["/api/v1/nodes"]["get"]["security"],
        json!([{"bearer": []}])
    );
    assert_eq!(doc["paths"]["/health"]["get"]["security"], json!([]));
    assert!(doc["paths"]["/api/v1/nodes"]["get"]["responses"]["401"].is_object());
    server.stop().await;
}

#[tokio::test]
async fn artifact_downloads_beyond_the_limit_wait_for_a_free_slot() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("big.tgz");
    // Sparse, and larger than what loopback sockets buffer: a transfer whose
    // client does not read stays open.
    let size = 64 * 1024 * 1024;
    std::fs::File::create(&path)
        .and_then(|f| f.set_len(size))
        .expect("sparse file");
    let mut artifacts = Artifacts::new();
    artifacts.add("big.tgz", &path).expect("register");
    let server = Server::start(FakeOptions::default(), None, artifacts).await;
    let url = server.url("/artifacts/big.tgz");
    let fresh_client = || reqwest::Client::builder().build().expect("client");

    // Every slot taken by a client that reads nothing.
    let mut held = Vec::new();
    for _ in 0..scheduler_api::CONCURRENT_TRANSFERS {
        let response = fresh_client().get(&url).send().await.expect("GET");
        assert_eq!(response.status(), 200);
        held.push(response);
    }
    // One more waits: no answer while every slot is busy.
    let waiting = tokio::spawn(async move {
        let response = fresh_client().get(&url).send().await?;
        let status = response.status();
        let body = response.bytes().await?;
        Ok::<_, reqwest::Error>((status, body.len() as u64))
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !waiting.is_finished(),
        "a download beyond the limit was served at once"
    );
    // A client that goes away frees its slot, and the waiting one is served in full.
    drop(held.pop());
    let (status, length) = tokio::time::timeout(Duration::from_secs(60), waiting)
        .await
        .expect("served once a slot is free")
        .expect("task")
        .expect("download");
    assert_eq!(status, 200);
    assert_eq!(length, size);
    drop(held);
    server.stop().await;
}

#[tokio::test]
async fn artifacts_are_served_with_length_and_checksum_and_nothing_else() {
    let dir = tempfile::tempdir().expect("tempdir");
    let content: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let path = dir.path().join("kafka.tgz");
    std::fs::write(&path, &content).expect("write");
    std::fs::write(dir.path().join("secret"), b"do not serve").expect("write");
    let mut artifacts = Artifacts::new();
    let sha = artifacts
        .add("kafka-3.9.0.tgz", &path)
        .expect("register")
        .sha256
        .clone();
    let server = Server::start(FakeOptions::default(), None, artifacts).await;

    let response = server
        .http
        .get(server.url("/artifacts/kafka-3.9.0.tgz"))
        .send()
        .await
        .expect("GET");
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-length"],
        content.len().to_string().as_str()
    );
    let bytes = response.bytes().await.expect("bytes");
    assert_eq!(bytes.as_ref(), content.as_slice());

    let checksum = server
        .http
        .get(server.url("/artifacts/kafka-3.9.0.tgz.sha256"))
        .send()
        .await
        .expect("GET")
        .text()
        .await
        .expect("text");
    assert_eq!(checksum, format!("{sha}  kafka-3.9.0.tgz\n"));
    use sha2::Digest;
    assert_eq!(hex::encode(sha2::Sha256::digest(&content)), sha);

    for bad in [
        "/artifacts/unknown",
        "/artifacts/secret",
        "/artifacts/..%2Fsecret",
        "/artifacts/%2E%2E%2F%2E%2E%2Fetc%2Fpasswd",
        "/artifacts/unknown.sha256",
    ] {
        let (status, body) = server.get(bad).await;
        assert_eq!(status, 404, "{bad}: {body}");
        assert!(
            error_text(&body).contains("kafka-3.9.0.tgz"),
            "lists what exists: {body}"
        );
    }

    // A file that changed after registration is refused, not served with a stale checksum.
    std::fs::write(&path, b"short").expect("rewrite");
    let (status, body) = server.get("/artifacts/kafka-3.9.0.tgz").await;
    assert_eq!(status, 500);
    assert!(error_text(&body).contains("size changed"), "{body}");
    server.stop().await;
}

/// The routes the API promises; the document and the router must both have
/// exactly these.
const ROUTES: &[(&str, &str)] = &[
    ("get", "/health"),
    ("get", "/metrics"),
    ("get", "/api/v1/openapi.json"),
    ("get", "/api/v1/nodes"),
    ("post", "/api/v1/nodes"),
    ("get", "/api/v1/nodes/{ids}"),
    ("patch", "/api/v1/nodes/{ids}"),
    ("delete", "/api/v1/nodes/{ids}"),
    ("post", "/api/v1/nodes/{ids}/start"),
    ("post", "/api/v1/nodes/{ids}/stop"),
    ("post", "/api/v1/nodes/{ids}/restart"),
    ("post", "/api/v1/nodes/{ids}/replace"),
    ("get", "/api/v1/nodes/{ids}/explain"),
    ("get", "/api/v1/nodes/{ids}/log"),
    ("post", "/api/v1/nodes/{ids}/admin/{name}"),
    ("get", "/api/v1/plans"),
    ("get", "/api/v1/plans/{id}"),
    ("post", "/api/v1/plans/{id}/pause"),
    ("post", "/api/v1/plans/{id}/resume"),
    ("post", "/api/v1/plans/{id}/abort"),
    ("get", "/api/v1/endpoints"),
    ("get", "/api/v1/state"),
    ("get", "/artifacts/{name}"),
];

fn resolve_ref<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(reference) => {
            let name = reference.trim_start_matches("#/components/schemas/");
            &doc["components"]["schemas"][name]
        }
        None => schema,
    }
}

/// Checks that `value` has exactly the properties `schema` declares (every
/// required one, no undeclared one), recursively through objects and arrays.
fn conforms(doc: &Value, schema: &Value, value: &Value, at: &str) {
    let schema = resolve_ref(doc, schema);
    if let Some(options) = schema["oneOf"].as_array() {
        if value.is_null() {
            return;
        }
        let object = options
            .iter()
            .find(|o| o["type"] != "null")
            .expect("a non-null option");
        return conforms(doc, object, value, at);
    }
    if let (Some(properties), Some(object)) = (schema["properties"].as_object(), value.as_object())
    {
        for key in object.keys() {
            assert!(
                properties.contains_key(key),
                "{at}: `{key}` is not in the schema"
            );
        }
        for required in schema["required"].as_array().into_iter().flatten() {
            let key = required.as_str().unwrap_or_default();
            assert!(
                object.contains_key(key),
                "{at}: required `{key}` missing from {value}"
            );
        }
        for (key, inner) in object {
            if !inner.is_null() {
                conforms(doc, &properties[key], inner, &format!("{at}.{key}"));
            }
        }
    }
    if let (Some(items), Some(array)) = (schema.get("items"), value.as_array()) {
        for (i, item) in array.iter().enumerate() {
            conforms(doc, items, item, &format!("{at}[{i}]"));
        }
    }
    if let Some(values) = schema["enum"].as_array() {
        assert!(
            values.contains(value),
            "{at}: {value} is not one of {values:?}"
        );
    }
}

#[tokio::test]
async fn the_openapi_document_lists_every_route_and_matches_the_responses() {
    let server = Server::with_brokers().await;
    server.fake.update(|s| {
        Arc::make_mut(&mut s.health).insert(
            "0".into(),
            executor_protocol::Health {
                task_id: "fake-0-g1".into(),
                state: executor_protocol::ServiceState::Running,
                pid: Some(4242),
                rss_bytes: Some(1 << 20),
                uptime_ms: Some(5_000),
                ready: true,
                last_check: Some(executor_protocol::CheckResult {
                    ok: true,
                    at_uptime_ms: 4_000,
                    detail: "connected".into(),
                }),
                details: String::new(),
            },
        );
        s.counters.insert("calls_sent", 3);
    });
    let (status, doc) = server.get("/api/v1/openapi.json").await;
    assert_eq!(status, 200);
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["info"]["title"], "kafka scheduler API");
    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .flat_map(|(path, methods)| {
            methods
                .as_object()
                .expect("methods")
                .keys()
                .map(move |m| (m.clone(), path.clone()))
        })
        .collect();
    let promised: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(documented, promised);

    // Call every documented operation; none may fall through to "no route",
    // and each success must match its documented schema.
    let (_, accepted) = server
        .send(Method::POST, "/api/v1/nodes/0/restart", None)
        .await;
    let plan = accepted["plan"].as_str().expect("plan").to_owned();
    let mut artifacts_seen = false;
    for (method, path) in &promised {
        let operation = &doc["paths"][path.as_str()][method.as_str()];
        let concrete = path.replace("{ids}", "0").replace("{id}", &plan).replace(
            "{name}",
            if path.starts_with("/artifacts") {
                "none"
            } else {
                "echo"
            },
        );
        let body = match operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
            .as_str()
        {
            Some(r) if r.ends_with("/AddNodes") => Some(r#"{"ids": "7"}"#),
            Some(r) if r.ends_with("/UpdateNodes") => Some(r#"{"config": {"heap_mb": 1}}"#),
            Some(_) => Some("{}"),
            None => None,
        };
        let mut request = server.http.request(
            Method::from_bytes(method.to_uppercase().as_bytes()).expect("method"),
            server.url(&concrete),
        );
        if let Some(body) = body {
            request = request.body(body);
        }
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let text = response.text().await.expect("body");
        assert_ne!(status, 405, "{method} {concrete}: {text}");
        assert!(
            !text.contains("no route for"),
            "{method} {concrete} is not routed: {text}"
        );
        let documented_codes: Vec<&String> = operation["responses"]
            .as_object()
            .expect("responses")
            .keys()
            .collect();
        assert!(
            documented_codes
                .iter()
                .any(|c| c.as_str() == status.to_string()),
            "{method} {concrete} answered {status}, documented {documented_codes:?}: {text}"
        );
        if path.starts_with("/artifacts") {
            artifacts_seen = status == 404;
            continue;
        }
        if content_type.starts_with("application/json") {
            let value: Value = serde_json::from_str(&text).expect("json");
            let schema = &operation["responses"][status.to_string()]["content"]["application/json"]
                ["schema"];
            conforms(&doc, schema, &value, &format!("{method} {path} {status}"));
        } else {
            assert_eq!(path, "/metrics", "only /metrics answers text");
        }
        // Ended plans cannot be paused again; start a fresh one for the next action.
        if path.starts_with("/api/v1/plans/{id}/") {
            let (_, _) = server
                .send(Method::POST, &format!("/api/v1/plans/{plan}/resume"), None)
                .await;
        }
    }
    assert!(artifacts_seen, "unknown artifacts are a documented 404");
    // The error schema matches real errors too.
    let (_, error) = server.get("/api/v1/nodes/99").await;
    conforms(
        &doc,
        &json!({"$ref": "#/components/schemas/Error"}),
        &error,
        "error",
    );
    // And the plan schema matches a plan with a paused state and steps in progress.
    server.fake.update(|s| {
        if let Some(p) = Arc::make_mut(&mut s.state)
            .plans
            .iter_mut()
            .find(|p| p.id == plan)
        {
            p.state = scheduler_core::plan::PlanState::Paused {
                reason: "why".into(),
            };
            p.steps[0].phase = StepPhase::Restarting;
            p.steps[0].generation_before = Some(1);
        }
    });
    let (_, paused) = server.get(&format!("/api/v1/plans/{plan}")).await;
    assert_eq!(paused["state"], "paused");
    assert_eq!(paused["reason"], "why");
    conforms(
        &doc,
        &json!({"$ref": "#/components/schemas/Plan"}),
        &paused,
        "paused plan",
    );
    let (_, node) = server.get("/api/v1/nodes/0").await;
    assert!(node["health"]["last_check"].is_object());
    conforms(
        &doc,
        &json!({"$ref": "#/components/schemas/Node"}),
        &node,
        "node with health",
    );
    server.stop().await;
}
