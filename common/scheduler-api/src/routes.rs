//! The route table and its handlers.
//!
//! Every route is declared once, in [`routes`], with the facts the OpenAPI
//! document is built from; the router is built from the same table, so the
//! document cannot miss a route.

use std::collections::BTreeMap;

use axum::{
    Json, Router,
    body::{Body, Bytes},
    extract::{FromRequestParts, Path, Query, Request, State, rejection::BytesRejection},
    handler::Handler,
    http::{HeaderValue, StatusCode, header, request::Parts},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{MethodFilter, MethodRouter, on},
};
use executor_protocol::{Outcome, Reply, Request as ExecutorRequest, message::MAX_TAIL_LINES};
use futures::StreamExt;
use scheduler_core::node::{Node, Stage};
use scheduler_runtime::{Command, CommandError, PlanAction, Snapshot};
use serde::de::DeserializeOwned;

use crate::{
    ApiState,
    error::ApiError,
    ids::{IdExpr, natural_cmp, valid_id},
    metrics,
    model::{
        Accepted, AddNodes, AdminRequest, AdminResult, Explanation, HealthBody, HealthStatus,
        ListQuery, LogLines, LogQuery, NodeList, NodeStatus, PlanList, PlanView, StateDump,
        UpdateNodes,
    },
    openapi,
};

/// An HTTP method of the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verb {
    Get,
    Post,
    Patch,
    Delete,
}

impl Verb {
    fn filter(self) -> MethodFilter {
        match self {
            Verb::Get => MethodFilter::GET,
            Verb::Post => MethodFilter::POST,
            Verb::Patch => MethodFilter::PATCH,
            Verb::Delete => MethodFilter::DELETE,
        }
    }

    /// Lower-case name, as OpenAPI writes it.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "get",
            Verb::Post => "post",
            Verb::Patch => "patch",
            Verb::Delete => "delete",
        }
    }
}

/// What a successful response carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Payload {
    /// JSON described by a component schema.
    Json(&'static str),
    /// Prometheus text.
    Metrics,
    /// A file's bytes (or its `.sha256` line).
    File,
}

/// One query parameter of a route.
#[derive(Clone, Debug)]
pub(crate) struct QueryParam {
    pub name: &'static str,
    pub description: &'static str,
    pub schema: serde_json::Value,
}

/// One route with its documentation.
#[derive(Clone, Debug)]
pub(crate) struct Route {
    pub verb: Verb,
    pub path: &'static str,
    pub tag: &'static str,
    pub summary: String,
    pub query: Vec<QueryParam>,
    pub body: Option<&'static str>,
    pub body_required: bool,
    pub status: u16,
    pub payload: Payload,
    pub errors: &'static [u16],
    /// Served without a token.
    pub open: bool,
}

impl Route {
    fn new(verb: Verb, path: &'static str, tag: &'static str, summary: String) -> Self {
        Route {
            verb,
            path,
            tag,
            summary,
            query: vec![],
            body: None,
            body_required: false,
            status: 200,
            payload: Payload::Json("Error"),
            errors: &[],
            open: false,
        }
    }

    fn ok(mut self, status: u16, payload: Payload) -> Self {
        self.status = status;
        self.payload = payload;
        self
    }

    fn body(mut self, schema: &'static str) -> Self {
        self.body = Some(schema);
        self.body_required = true;
        self
    }

    fn optional_body(mut self, schema: &'static str) -> Self {
        self.body = Some(schema);
        self.body_required = false;
        self
    }

    fn errors(mut self, errors: &'static [u16]) -> Self {
        self.errors = errors;
        self
    }

    fn query(
        mut self,
        name: &'static str,
        description: &'static str,
        schema: serde_json::Value,
    ) -> Self {
        self.query.push(QueryParam {
            name,
            description,
            schema,
        });
        self
    }

    fn open(mut self) -> Self {
        self.open = true;
        self
    }
}

type Entry = (Route, MethodRouter<ApiState>);

fn entry<H, T>(route: Route, handler: H) -> Entry
where
    H: Handler<T, ApiState>,
    T: 'static,
{
    let method_router = on(route.verb.filter(), handler);
    (route, method_router)
}

/// Every route, with its documentation and handler.
pub(crate) fn routes(noun: &str) -> Vec<Entry> {
    use Payload::Json as J;
    use Verb::*;
    let n = noun;
    let ids_changed: &[u16] = &[400, 404, 409, 503];
    vec![
        entry(
            Route::new(Get, "/health", "health", "Whether the framework is healthy (Marathon health check)".into())
                .ok(200, J("Health"))
                .errors(&[503])
                .open(),
            health,
        ),
        entry(
            Route::new(Get, "/metrics", "health", "Prometheus metrics".into()).ok(200, Payload::Metrics),
            metrics_text,
        ),
        entry(
            Route::new(Get, "/api/v1/openapi.json", "meta", "This document".into()).ok(200, J("OpenApi")),
            openapi_json,
        ),
        entry(
            Route::new(Get, "/api/v1/nodes", "nodes", format!("List {n}s"))
                .ok(200, J("NodeList"))
                .errors(&[400, 404])
                .query("ids", "Only these nodes (an ID expression)", serde_json::json!({"type": "string"}))
                .query("removed", "Include removed nodes", serde_json::json!({"type": "boolean", "default": false})),
            list_nodes,
        ),
        entry(
            Route::new(Post, "/api/v1/nodes", "nodes", format!("Add {n}s with one configuration; starts a deploy plan"))
                .body("AddNodes")
                .ok(202, J("Accepted"))
                .errors(&[400, 409, 503]),
            add_nodes,
        ),
        entry(
            Route::new(Get, "/api/v1/nodes/{ids}", "nodes", format!("Show one {n}"))
                .ok(200, J("Node"))
                .errors(&[400, 404]),
            get_node,
        ),
        entry(
            Route::new(Patch, "/api/v1/nodes/{ids}", "nodes", format!("Change the configuration of {n}s; starts a rolling update plan"))
                .body("UpdateNodes")
                .ok(202, J("Accepted"))
                .errors(ids_changed),
            update_nodes,
        ),
        entry(
            Route::new(Delete, "/api/v1/nodes/{ids}", "nodes", format!("Remove {n}s: kill, destroy their volumes, unreserve"))
                .ok(202, J("Accepted"))
                .errors(ids_changed),
            remove_nodes,
        ),
        entry(
            Route::new(Post, "/api/v1/nodes/{ids}/start", "nodes", format!("Start stopped or failed {n}s"))
                .ok(202, J("Accepted"))
                .errors(ids_changed),
            start_nodes,
        ),
        entry(
            Route::new(Post, "/api/v1/nodes/{ids}/stop", "nodes", format!("Stop {n}s, keeping their reservations and data"))
                .ok(202, J("Accepted"))
                .errors(ids_changed),
            stop_nodes,
        ),
        entry(
            Route::new(Post, "/api/v1/nodes/{ids}/restart", "nodes", format!("Rolling restart of {n}s; starts a plan"))
                .ok(202, J("Accepted"))
                .errors(ids_changed),
            restart_nodes,
        ),
        entry(
            Route::new(Post, "/api/v1/nodes/{ids}/replace", "nodes", format!("Move {n}s to new agents; starts a plan"))
                .ok(202, J("Accepted"))
                .errors(ids_changed),
            replace_nodes,
        ),
        entry(
            Route::new(Get, "/api/v1/nodes/{ids}/explain", "nodes", format!("Why a {n} is not placed: the last decline reasons per agent"))
                .ok(200, J("Explanation"))
                .errors(&[400, 404]),
            explain_node,
        ),
        entry(
            Route::new(Get, "/api/v1/nodes/{ids}/log", "nodes", format!("The last lines of a {n}'s service output, read by its executor"))
                .ok(200, J("LogLines"))
                .errors(&[400, 403, 404, 409, 502, 503])
                .query("stream", "stdout (default) or stderr", serde_json::json!({"type": "string", "enum": ["stdout", "stderr"], "default": "stdout"}))
                .query("lines", "How many lines", serde_json::json!({"type": "integer", "minimum": 1, "maximum": MAX_TAIL_LINES, "default": 100})),
            node_log,
        ),
        entry(
            Route::new(Post, "/api/v1/nodes/{ids}/admin/{name}", "nodes", format!("Run an allow-listed admin command on a {n}"))
                .optional_body("AdminRequest")
                .ok(200, J("AdminResult"))
                .errors(&[400, 403, 404, 409, 502, 503]),
            node_admin,
        ),
        entry(
            Route::new(Get, "/api/v1/plans", "plans", "List plans, oldest first".into()).ok(200, J("PlanList")),
            list_plans,
        ),
        entry(
            Route::new(Get, "/api/v1/plans/{id}", "plans", "Show a plan and its steps".into())
                .ok(200, J("Plan"))
                .errors(&[404]),
            get_plan,
        ),
        entry(
            Route::new(Post, "/api/v1/plans/{id}/pause", "plans", "Pause a plan: no new step starts".into())
                .ok(200, J("Accepted"))
                .errors(&[404, 409, 503]),
            pause_plan,
        ),
        entry(
            Route::new(Post, "/api/v1/plans/{id}/resume", "plans", "Resume a paused plan".into())
                .ok(200, J("Accepted"))
                .errors(&[404, 409, 503]),
            resume_plan,
        ),
        entry(
            Route::new(Post, "/api/v1/plans/{id}/abort", "plans", "Abort a plan for good".into())
                .ok(200, J("Accepted"))
                .errors(&[404, 409, 503]),
            abort_plan,
        ),
        entry(
            Route::new(Get, "/api/v1/endpoints", "cluster", "How clients reach the service".into()).ok(200, J("Endpoints")),
            endpoints,
        ),
        entry(
            Route::new(Get, "/api/v1/state", "cluster", "The scheduler's raw state, for debugging".into()).ok(200, J("StateDump")),
            state_dump,
        ),
        entry(
            Route::new(Get, "/artifacts/{name}", "artifacts", "Download an artifact; `{name}.sha256` gives its checksum".into())
                .ok(200, Payload::File)
                .errors(&[404])
                .open(),
            artifact,
        ),
    ]
}

/// The API of `state`: every route, JSON errors for unknown routes and
/// methods, and the bearer-token check when a token is set.
pub fn router(state: ApiState) -> Router {
    let mut router = Router::new();
    for (route, method_router) in routes(&state.noun) {
        router = router.route(route.path, method_router);
    }
    router
        .fallback(no_route)
        .method_not_allowed_fallback(wrong_method)
        .layer(middleware::from_fn_with_state(state.clone(), authorize))
        .with_state(state)
}

async fn no_route(request: Request) -> ApiError {
    ApiError::NoRoute {
        method: request.method().to_string(),
        path: request.uri().path().to_owned(),
        wrong_method: false,
    }
}

async fn wrong_method(request: Request) -> ApiError {
    ApiError::NoRoute {
        method: request.method().to_string(),
        path: request.uri().path().to_owned(),
        wrong_method: true,
    }
}

fn same_secret(a: &[u8], b: &[u8]) -> bool {
    // Compare every byte so the time taken says nothing about the token.
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn authorize(State(state): State<ApiState>, request: Request, next: Next) -> Response {
    let Some(token) = state.token.as_deref() else {
        return next.run(request).await;
    };
    let path = request.uri().path();
    if path == "/health" || path.starts_with("/artifacts/") {
        return next.run(request).await;
    }
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match given {
        Some(given) if same_secret(given.trim().as_bytes(), token.as_bytes()) => {
            next.run(request).await
        }
        Some(_) => ApiError::Unauthorized {
            reason: "the bearer token is wrong".into(),
        }
        .into_response(),
        None => ApiError::Unauthorized {
            reason: "this API requires a bearer token".into(),
        }
        .into_response(),
    }
}

/// A path extractor whose failures are JSON errors.
struct Params<T>(T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(t)| Params(t))
            .map_err(|rejection| ApiError::Invalid {
                message: rejection.body_text(),
            })
    }
}

/// A query extractor whose failures are JSON errors.
struct QueryArgs<T>(T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for QueryArgs<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(t)| QueryArgs(t))
            .map_err(|rejection| ApiError::BadQuery {
                reason: rejection.body_text(),
            })
    }
}

fn parse_body<T: DeserializeOwned>(
    body: Result<Bytes, BytesRejection>,
    what: &str,
    example: &str,
    empty_allowed: bool,
) -> Result<T, ApiError> {
    let bad = |reason: String| ApiError::BadBody {
        what: what.to_owned(),
        reason,
        example: example.to_owned(),
    };
    let bytes = body.map_err(|rejection| bad(rejection.body_text()))?;
    let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        if empty_allowed {
            b"{}"
        } else {
            return Err(bad("the body is empty; send a JSON object".into()));
        }
    } else {
        &bytes
    };
    serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))
}

fn not_removed<'a>(
    snapshot: &'a Snapshot,
    state: &'a ApiState,
) -> impl Iterator<Item = &'a Node> + 'a {
    snapshot
        .state
        .nodes
        .values()
        .filter(|n| n.stage(&state.policy) != Stage::Removed)
}

/// Existing, non-removed nodes named by `expression`; 404 listing every
/// missing one, or when `*` matches nothing.
fn resolve(
    state: &ApiState,
    snapshot: &Snapshot,
    expression: &str,
) -> Result<Vec<String>, ApiError> {
    let expr = IdExpr::parse(expression)?;
    let live: BTreeMap<&str, &Node> = not_removed(snapshot, state)
        .map(|n| (n.id.as_str(), n))
        .collect();
    let chosen = expr.select(
        live.values()
            .map(|n| (n.id.as_str(), n.placement.as_ref().map(|p| &p.host))),
    );
    let noun = state.noun();
    match expr {
        IdExpr::Ids(_) => {
            let missing: Vec<String> = chosen
                .iter()
                .filter(|id| !live.contains_key(id.as_str()))
                .cloned()
                .collect();
            if missing.is_empty() {
                Ok(chosen)
            } else {
                Err(ApiError::nodes_not_found(noun, &missing))
            }
        }
        IdExpr::All { .. } if chosen.is_empty() => Err(ApiError::NotFound {
            missing: vec![format!("no {noun} matches `{expression}`")],
            hint: format!(
                "list the {noun}s and their hosts with GET /api/v1/nodes; filters match the agent's hostname and attributes"
            ),
        }),
        IdExpr::All { .. } => Ok(chosen),
    }
}

/// The one node named by `id`, removed ones included.
fn one_node<'a>(state: &ApiState, snapshot: &'a Snapshot, id: &str) -> Result<&'a Node, ApiError> {
    if !valid_id(id) {
        return Err(match IdExpr::parse(id) {
            Ok(_) => ApiError::Invalid {
                message: format!(
                    "`{id}` names several {noun}s but this route takes one ID; list several with GET /api/v1/nodes?ids={id}",
                    noun = state.noun()
                ),
            },
            Err(e) => e,
        });
    }
    snapshot
        .state
        .nodes
        .get(id)
        .ok_or_else(|| ApiError::nodes_not_found(state.noun(), &[id.to_owned()]))
}

async fn command<T>(
    state: &ApiState,
    build: impl FnOnce(tokio::sync::oneshot::Sender<Result<T, CommandError>>) -> Command,
) -> Result<T, ApiError> {
    state
        .runtime
        .ask(build)
        .await
        .map_err(|source| ApiError::Refused {
            noun: state.noun().to_owned(),
            source,
        })
}

fn list_text(ids: &[String]) -> String {
    ids.join(", ")
}

fn accepted(status: StatusCode, body: Accepted) -> Response {
    let location = body
        .plan
        .as_ref()
        .and_then(|p| HeaderValue::from_str(&format!("/api/v1/plans/{p}")).ok());
    let mut response = (status, Json(body)).into_response();
    if let Some(location) = location {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

async fn health(State(state): State<ApiState>) -> Response {
    let snapshot = state.runtime.snapshot();
    let status = match (&snapshot.fatal, snapshot.subscribed) {
        (Some(_), _) => HealthStatus::Failed,
        (None, true) => HealthStatus::Ok,
        (None, false) => HealthStatus::Connecting,
    };
    let body = HealthBody {
        status,
        subscribed: snapshot.subscribed,
        master: snapshot.master.clone(),
        framework_id: snapshot.state.framework_id.clone(),
        reason: snapshot.fatal.clone(),
    };
    let code = if status == HealthStatus::Failed {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (code, Json(body)).into_response()
}

async fn metrics_text(State(state): State<ApiState>) -> Response {
    let snapshot = state.runtime.snapshot();
    let text = metrics::render(&snapshot, state.name(), &state.policy);
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        text,
    )
        .into_response()
}

async fn openapi_json(State(state): State<ApiState>) -> Json<serde_json::Value> {
    Json(openapi::document(&state))
}

async fn list_nodes(
    State(state): State<ApiState>,
    QueryArgs(query): QueryArgs<ListQuery>,
) -> Result<Json<NodeList>, ApiError> {
    let snapshot = state.runtime.snapshot();
    let wanted: Option<Vec<String>> = match &query.ids {
        Some(expression) => Some(resolve(&state, &snapshot, expression)?),
        None => None,
    };
    let mut nodes: Vec<NodeStatus> = snapshot
        .state
        .nodes
        .values()
        .filter(|n| match &wanted {
            Some(ids) => ids.contains(&n.id),
            None => query.removed || n.stage(&state.policy) != Stage::Removed,
        })
        .map(|n| NodeStatus::of(n, &state.policy, snapshot.health.get(&n.id)))
        .collect();
    nodes.sort_by(|a, b| natural_cmp(&a.id, &b.id));
    Ok(Json(NodeList { nodes }))
}

async fn get_node(
    State(state): State<ApiState>,
    Params(id): Params<String>,
) -> Result<Json<NodeStatus>, ApiError> {
    let snapshot = state.runtime.snapshot();
    let node = one_node(&state, &snapshot, &id)?;
    Ok(Json(NodeStatus::of(
        node,
        &state.policy,
        snapshot.health.get(&node.id),
    )))
}

const ADD_EXAMPLE: &str = r#"{"ids": "0..2", "config": {"cpus": 1.0}}"#;
const UPDATE_EXAMPLE: &str = r#"{"config": {"mem": 4096}}"#;
const ADMIN_EXAMPLE: &str = r#"{"args": ["--verbose"]}"#;

fn object_config(config: &serde_json::Value, what: &str, example: &str) -> Result<(), ApiError> {
    if config.is_object() {
        Ok(())
    } else {
        Err(ApiError::BadBody {
            what: what.to_owned(),
            reason: format!("`config` must be a JSON object, not {config}"),
            example: example.to_owned(),
        })
    }
}

async fn add_nodes(
    State(state): State<ApiState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let what = format!("adding {}s", state.noun());
    let request: AddNodes = parse_body(body, &what, ADD_EXAMPLE, false)?;
    object_config(&request.config, &what, ADD_EXAMPLE)?;
    let ids = IdExpr::parse(&request.ids)?.new_ids(&request.ids, state.noun())?;
    let plan = command(&state, |reply| Command::Add {
        ids: ids.clone(),
        config: request.config,
        reply,
    })
    .await?;
    tracing::info!(nodes = %list_text(&ids), plan = %plan, "nodes added");
    Ok(accepted(
        StatusCode::ACCEPTED,
        Accepted {
            message: format!("deploying {} {}", state.noun(), list_text(&ids)),
            nodes: ids,
            plan: Some(plan),
        },
    ))
}

async fn update_nodes(
    State(state): State<ApiState>,
    Params(expression): Params<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let what = format!("updating {}s", state.noun());
    let request: UpdateNodes = parse_body(body, &what, UPDATE_EXAMPLE, false)?;
    object_config(&request.config, &what, UPDATE_EXAMPLE)?;
    let ids = resolve(&state, &state.runtime.snapshot(), &expression)?;
    let plan = command(&state, |reply| Command::Update {
        ids: ids.clone(),
        patch: request.config,
        reply,
    })
    .await?;
    Ok(accepted(
        StatusCode::ACCEPTED,
        Accepted {
            message: format!(
                "rolling out the new configuration of {} {}",
                state.noun(),
                list_text(&ids)
            ),
            nodes: ids,
            plan: Some(plan),
        },
    ))
}

/// Which lifecycle command a route sends.
#[derive(Clone, Copy)]
enum Lifecycle {
    Start,
    Stop,
    Remove,
    Restart,
    Replace,
}

async fn lifecycle(
    state: ApiState,
    expression: String,
    which: Lifecycle,
) -> Result<Response, ApiError> {
    let ids = resolve(&state, &state.runtime.snapshot(), &expression)?;
    let noun = state.noun().to_owned();
    let list = list_text(&ids);
    let (plan, message) = match which {
        Lifecycle::Start => {
            command(&state, |reply| Command::Start {
                ids: ids.clone(),
                reply,
            })
            .await?;
            (None, format!("starting {noun} {list}"))
        }
        Lifecycle::Stop => {
            command(&state, |reply| Command::Stop {
                ids: ids.clone(),
                reply,
            })
            .await?;
            (
                None,
                format!("stopping {noun} {list}; reservations and data are kept"),
            )
        }
        Lifecycle::Remove => {
            command(&state, |reply| Command::Remove {
                ids: ids.clone(),
                reply,
            })
            .await?;
            (
                None,
                format!(
                    "removing {noun} {list}: their volumes are destroyed and resources unreserved"
                ),
            )
        }
        Lifecycle::Restart => {
            let plan = command(&state, |reply| Command::Restart {
                ids: ids.clone(),
                reply,
            })
            .await?;
            (
                Some(plan),
                format!("restarting {noun} {list} one at a time"),
            )
        }
        Lifecycle::Replace => {
            let plan = command(&state, |reply| Command::Replace {
                ids: ids.clone(),
                reply,
            })
            .await?;
            (Some(plan), format!("moving {noun} {list} to new agents"))
        }
    };
    Ok(accepted(
        StatusCode::ACCEPTED,
        Accepted {
            nodes: ids,
            plan,
            message,
        },
    ))
}

async fn start_nodes(
    State(state): State<ApiState>,
    Params(expression): Params<String>,
) -> Result<Response, ApiError> {
    lifecycle(state, expression, Lifecycle::Start).await
}

async fn stop_nodes(
    State(state): State<ApiState>,
    Params(expression): Params<String>,
) -> Result<Response, ApiError> {
    lifecycle(state, expression, Lifecycle::Stop).await
}

async fn remove_nodes(
    State(state): State<ApiState>,
    Params(expression): Params<String>,
) -> Result<Response, ApiError> {
    lifecycle(state, expression, Lifecycle::Remove).await
}

async fn restart_nodes(
    State(state): State<ApiState>,
    Params(expression): Params<String>,
) -> Result<Response, ApiError> {
    lifecycle(state, expression, Lifecycle::Restart).await
}

async fn replace_nodes(
    State(state): State<ApiState>,
    Params(expression): Params<String>,
) -> Result<Response, ApiError> {
    lifecycle(state, expression, Lifecycle::Replace).await
}

async fn explain_node(
    State(state): State<ApiState>,
    Params(id): Params<String>,
) -> Result<Json<Explanation>, ApiError> {
    let snapshot = state.runtime.snapshot();
    let node = one_node(&state, &snapshot, &id)?;
    Ok(Json(Explanation {
        node: node.id.clone(),
        stage: node.stage(&state.policy),
        waiting_reason: node.waiting_reason.clone(),
        agents: snapshot
            .explanations
            .get(&node.id)
            .cloned()
            .unwrap_or_default(),
    }))
}

fn executor_error(state: &ApiState, node: &str, outcome: Outcome) -> ApiError {
    match outcome {
        Outcome::Error(refusal) => ApiError::Executor {
            noun: state.noun().to_owned(),
            node: node.to_owned(),
            refusal,
        },
        Outcome::Ok(reply) => ApiError::UnexpectedReply {
            noun: state.noun().to_owned(),
            node: node.to_owned(),
            got: serde_json::to_string(&reply).unwrap_or_else(|_| format!("{reply:?}")),
        },
    }
}

async fn node_log(
    State(state): State<ApiState>,
    Params(id): Params<String>,
    QueryArgs(query): QueryArgs<LogQuery>,
) -> Result<Json<LogLines>, ApiError> {
    if !(1..=MAX_TAIL_LINES).contains(&query.lines) {
        return Err(ApiError::BadQuery {
            reason: format!(
                "lines={} is out of range: ask for 1 to {MAX_TAIL_LINES} lines",
                query.lines
            ),
        });
    }
    let node = one_node(&state, &state.runtime.snapshot(), &id)?.id.clone();
    let outcome = command(&state, |reply| Command::Ask {
        id: node.clone(),
        request: ExecutorRequest::LogTail {
            stream: query.stream,
            lines: query.lines,
            task_id: None,
        },
        reply,
    })
    .await?;
    match outcome {
        Outcome::Ok(Reply::LogTail { stream, lines }) => Ok(Json(LogLines {
            node,
            stream,
            lines,
        })),
        other => Err(executor_error(&state, &node, other)),
    }
}

async fn node_admin(
    State(state): State<ApiState>,
    Params((id, name)): Params<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<AdminResult>, ApiError> {
    let request: AdminRequest = parse_body(body, "an admin command", ADMIN_EXAMPLE, true)?;
    let node = one_node(&state, &state.runtime.snapshot(), &id)?.id.clone();
    let outcome = command(&state, |reply| Command::Ask {
        id: node.clone(),
        request: ExecutorRequest::Admin {
            name: name.clone(),
            args: request.args,
            task_id: None,
        },
        reply,
    })
    .await?;
    match outcome {
        Outcome::Ok(Reply::Admin {
            name,
            exit_code,
            timed_out,
            stdout,
            stderr,
        }) => Ok(Json(AdminResult {
            node,
            name,
            exit_code,
            timed_out,
            stdout,
            stderr,
        })),
        other => Err(executor_error(&state, &node, other)),
    }
}

async fn list_plans(State(state): State<ApiState>) -> Json<PlanList> {
    let snapshot = state.runtime.snapshot();
    Json(PlanList {
        plans: snapshot.state.plans.iter().map(PlanView::of).collect(),
    })
}

fn plan_not_found(id: &str) -> ApiError {
    ApiError::NotFound {
        missing: vec![format!("plan {id} does not exist")],
        hint: "list the plans with GET /api/v1/plans".into(),
    }
}

async fn get_plan(
    State(state): State<ApiState>,
    Params(id): Params<String>,
) -> Result<Json<PlanView>, ApiError> {
    let snapshot = state.runtime.snapshot();
    snapshot
        .state
        .plans
        .iter()
        .find(|p| p.id == id)
        .map(|p| Json(PlanView::of(p)))
        .ok_or_else(|| plan_not_found(&id))
}

async fn plan_action(
    state: ApiState,
    id: String,
    action: PlanAction,
) -> Result<Response, ApiError> {
    let nodes = {
        let snapshot = state.runtime.snapshot();
        let plan = snapshot
            .state
            .plans
            .iter()
            .find(|p| p.id == id)
            .ok_or_else(|| plan_not_found(&id))?;
        plan.steps.iter().map(|s| s.node.clone()).collect()
    };
    command(&state, |reply| Command::Plan {
        id: id.clone(),
        action,
        reply,
    })
    .await?;
    let done = match action {
        PlanAction::Pause => "paused",
        PlanAction::Resume => "resumed",
        PlanAction::Abort => "aborted",
    };
    tracing::info!(plan = %id, action = done, "plan changed by the operator");
    Ok(accepted(
        StatusCode::OK,
        Accepted {
            nodes,
            message: format!("plan {id} {done}"),
            plan: Some(id),
        },
    ))
}

async fn pause_plan(
    State(state): State<ApiState>,
    Params(id): Params<String>,
) -> Result<Response, ApiError> {
    plan_action(state, id, PlanAction::Pause).await
}

async fn resume_plan(
    State(state): State<ApiState>,
    Params(id): Params<String>,
) -> Result<Response, ApiError> {
    plan_action(state, id, PlanAction::Resume).await
}

async fn abort_plan(
    State(state): State<ApiState>,
    Params(id): Params<String>,
) -> Result<Response, ApiError> {
    plan_action(state, id, PlanAction::Abort).await
}

async fn endpoints(State(state): State<ApiState>) -> Json<serde_json::Value> {
    Json(state.runtime.snapshot().endpoints.as_ref().clone())
}

async fn state_dump(State(state): State<ApiState>) -> Json<StateDump> {
    let snapshot = state.runtime.snapshot();
    Json(StateDump {
        state: snapshot.state.as_ref().clone(),
        subscribed: snapshot.subscribed,
        master: snapshot.master.clone(),
        fatal: snapshot.fatal.clone(),
        explanations: snapshot.explanations.as_ref().clone(),
        health: snapshot.health.as_ref().clone(),
        counters: snapshot
            .counters
            .iter()
            .map(|(k, v)| ((*k).to_owned(), *v))
            .collect(),
    })
}

async fn artifact(
    State(state): State<ApiState>,
    Params(name): Params<String>,
) -> Result<Response, ApiError> {
    let unknown = || ApiError::NotFound {
        missing: vec![format!("artifact {name} does not exist")],
        hint: format!(
            "the artifacts served are: {}",
            state.artifacts.names().collect::<Vec<_>>().join(", ")
        ),
    };
    if let Some(base) = name.strip_suffix(".sha256") {
        let file = state.artifacts.get(base).ok_or_else(unknown)?;
        return Ok((
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            )],
            format!("{}  {base}\n", file.sha256),
        )
            .into_response());
    }
    let file = state.artifacts.get(&name).ok_or_else(unknown)?;
    let io = |source| ApiError::Artifact {
        name: name.clone(),
        path: file.path.display().to_string(),
        source,
    };
    // The slot is held until the body is sent or the client goes away.
    let slot = state.transfers.clone().acquire_owned().await.ok();
    let handle = tokio::fs::File::open(&file.path).await.map_err(io)?;
    let size = handle.metadata().await.map_err(io)?.len();
    if size != file.size {
        return Err(io(std::io::Error::other(format!(
            "its size changed from {} to {size} bytes since it was registered; restart the scheduler to serve the new file",
            file.size
        ))));
    }
    tracing::debug!(artifact = %name, size, "serving artifact");
    // Tarballs run to tens of MB and every read is a blocking-pool hop: a
    // 3-broker Kafka deploy took 1.27 times as long as by hand with 16 KiB
    // reads, 1.13 with 64 KiB (bench-kafka medians). At most
    // CONCURRENT_TRANSFERS transfers hold a chunk each, so the peak stays small.
    let chunks = tokio_util::io::ReaderStream::with_capacity(handle, 64 * 1024).map(move |chunk| {
        let _slot = &slot;
        chunk
    });
    let body = Body::from_stream(chunks);
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            ),
            (header::CONTENT_LENGTH, HeaderValue::from(size)),
        ],
        body,
    )
        .into_response())
}
