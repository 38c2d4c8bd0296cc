//! The OpenAPI 3.1 document, built from the route table so that it lists
//! exactly the routes the router serves. Path parameters are read from the
//! path templates; schemas are written here as data and checked against the
//! serialized documents of [`crate::model`] by the tests.

use serde_json::{Map, Value, json};

use crate::{
    ApiState,
    routes::{Payload, Route, routes},
};

fn schema_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn nullable(kind: &str) -> Value {
    json!({"type": [kind, "null"]})
}

fn path_parameter(path: &str, name: &str, noun: &str) -> Value {
    let description = match name {
        "ids" => format!(
            "An ID expression naming {noun}s: 0, 0..2 (inclusive), 0,3,5, 0..2,7, * (every {noun}) or *[rack=r1] / *[hostname=h] (agent attributes). Routes that show, explain, log or run a command on one {noun} take a single ID."
        ),
        "id" => "The plan's ID, e.g. restart-3".to_owned(),
        "name" if path.starts_with("/artifacts") => {
            "The artifact's name; append .sha256 for its checksum".to_owned()
        }
        _ => "The admin command's name, from the service's allow-list".to_owned(),
    };
    json!({
        "name": name,
        "in": "path",
        "required": true,
        "description": description,
        "schema": {"type": "string"},
    })
}

/// Names of the `{…}` parameters of a path template, in order.
pub(crate) fn path_parameters(path: &str) -> Vec<&str> {
    path.split('/')
        .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
        .collect()
}

fn error_reason(code: u16) -> &'static str {
    match code {
        400 => {
            "The request is invalid (body, query, ID expression or configuration); `details` says how to fix it"
        }
        401 => "A bearer token is required or wrong",
        403 => "The executor does not allow this command",
        404 => "A named node, plan or artifact does not exist",
        409 => {
            "It conflicts with the current state (e.g. another plan is open, no running executor)"
        }
        502 => "The node's executor failed to answer properly",
        503 => "The scheduler cannot do it now (e.g. shutting down, or failed)",
        _ => "Error",
    }
}

fn operation(route: &Route, noun: &str, secured: bool) -> Value {
    let mut parameters: Vec<Value> = path_parameters(route.path)
        .into_iter()
        .map(|name| path_parameter(route.path, name, noun))
        .collect();
    parameters.extend(route.query.iter().map(|q| {
        json!({
            "name": q.name,
            "in": "query",
            "required": false,
            "description": q.description,
            "schema": q.schema,
        })
    }));
    let content = match route.payload {
        Payload::Json(schema) => json!({"application/json": {"schema": schema_ref(schema)}}),
        Payload::Metrics => json!({"text/plain; version=0.0.4": {"schema": {"type": "string"}}}),
        Payload::File => json!({
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            "text/plain": {"schema": {"type": "string", "description": "`<sha256>  <name>` for `{name}.sha256`"}},
        }),
    };
    let mut responses = Map::new();
    responses.insert(
        route.status.to_string(),
        json!({"description": "Success", "content": content}),
    );
    let mut errors: Vec<u16> = route.errors.to_vec();
    if secured && !route.open {
        errors.push(401);
    }
    for code in errors {
        let body = if route.path == "/health" && code == 503 {
            json!({"description": "The framework failed (e.g. removed by the master)", "content": {"application/json": {"schema": schema_ref("Health")}}})
        } else {
            json!({"description": error_reason(code), "content": {"application/json": {"schema": schema_ref("Error")}}})
        };
        responses.insert(code.to_string(), body);
    }
    let id: String = route
        .path
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let mut op = json!({
        "operationId": format!("{}{}", route.verb.as_str(), id.trim_end_matches('_')),
        "tags": [route.tag],
        "summary": route.summary,
        "parameters": parameters,
        "responses": responses,
    });
    if let Some(schema) = route.body {
        op["requestBody"] = json!({
            "required": route.body_required,
            "content": {"application/json": {"schema": schema_ref(schema)}},
        });
    }
    if secured && !route.open {
        op["security"] = json!([{"bearer": []}]);
    } else if secured {
        op["security"] = json!([]);
    }
    op
}

/// The document for the API of `state`.
pub(crate) fn document(state: &ApiState) -> Value {
    let noun = state.noun();
    let secured = state.token.is_some();
    let mut paths = Map::new();
    for (route, _) in routes(noun) {
        let entry = paths
            .entry(route.path.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(methods) = entry {
            methods.insert(
                route.verb.as_str().to_owned(),
                operation(&route, noun, secured),
            );
        }
    }
    let mut doc = json!({
        "openapi": "3.1.0",
        "info": {
            "title": format!("{} scheduler API", state.name()),
            "version": env!("CARGO_PKG_VERSION"),
            "description": format!(
                "Manages the {noun}s of the {} framework. Routes say `nodes` for every framework; messages say `{noun}`. Every error is JSON: {{\"error\": \"...\", \"details\": [\"...\"]}}.",
                state.name()
            ),
        },
        "tags": [
            {"name": "health", "description": "Health and metrics"},
            {"name": "nodes", "description": format!("The {noun}s")},
            {"name": "plans", "description": "Deploys, rolling restarts and updates, replacements"},
            {"name": "cluster", "description": "Endpoints and state"},
            {"name": "artifacts", "description": "Files agents download"},
            {"name": "meta", "description": "This document"},
        ],
        "paths": paths,
        "components": {"schemas": schemas()},
    });
    if secured {
        doc["components"]["securitySchemes"] =
            json!({"bearer": {"type": "http", "scheme": "bearer"}});
        doc["security"] = json!([{"bearer": []}]);
    }
    doc
}

fn string_enum(values: &[&str]) -> Value {
    json!({"type": "string", "enum": values})
}

/// The component schemas, named as the routes refer to them.
pub(crate) fn schemas() -> Value {
    let string = json!({"type": "string"});
    let strings = json!({"type": "array", "items": {"type": "string"}});
    let integer = json!({"type": "integer", "minimum": 0});
    let stage = string_enum(&[
        "added",
        "reserving",
        "reserved",
        "launching",
        "running",
        "restarting",
        "stopped",
        "removing",
        "removed",
        "failed",
    ]);
    json!({
        "Error": {
            "type": "object",
            "required": ["error", "details"],
            "properties": {
                "error": {"type": "string", "description": "What went wrong, in one line"},
                "details": {"type": "array", "items": {"type": "string"}, "description": "Every reason, and how to fix it"},
            },
        },
        "AddNodes": {
            "type": "object",
            "required": ["ids"],
            "additionalProperties": false,
            "properties": {
                "ids": {"type": "string", "description": "New IDs as an ID expression, e.g. 0..2 (not *)"},
                "config": {"type": "object", "description": "The service's node configuration; omitted settings take its defaults"},
            },
        },
        "UpdateNodes": {
            "type": "object",
            "required": ["config"],
            "additionalProperties": false,
            "properties": {
                "config": {"type": "object", "description": "JSON merge patch: objects merge, null removes a setting"},
            },
        },
        "AdminRequest": {
            "type": "object",
            "additionalProperties": false,
            "properties": {"args": strings},
        },
        "Accepted": {
            "type": "object",
            "required": ["nodes", "plan", "message"],
            "properties": {
                "nodes": strings,
                "plan": {"type": ["string", "null"], "description": "The plan carrying it out; follow it at /api/v1/plans/{id}"},
                "message": string,
            },
        },
        "Health": {
            "type": "object",
            "required": ["status", "subscribed", "master", "framework_id", "reason"],
            "properties": {
                "status": {"type": "string", "enum": ["ok", "connecting", "failed"], "description": "connecting (not subscribed yet or again) is healthy: the scheduler keeps retrying"},
                "subscribed": {"type": "boolean"},
                "master": nullable("string"),
                "framework_id": nullable("string"),
                "reason": nullable("string"),
            },
        },
        "Task": {
            "type": "object",
            "required": ["task_id", "generation", "phase", "state", "message"],
            "properties": {
                "task_id": string,
                "generation": integer,
                "phase": string_enum(&["launching", "starting", "running", "killing", "terminated", "unreachable"]),
                "state": nullable("string"),
                "message": nullable("string"),
            },
        },
        "ExecutorHealth": {
            "type": "object",
            "required": ["task_id", "state", "pid", "rss_bytes", "uptime_ms", "ready", "last_check", "details"],
            "properties": {
                "task_id": string,
                "state": string_enum(&["preparing", "starting", "running", "stopping", "exited"]),
                "pid": nullable("integer"),
                "rss_bytes": nullable("integer"),
                "uptime_ms": nullable("integer"),
                "ready": {"type": "boolean"},
                "last_check": {
                    "type": ["object", "null"],
                    "required": ["ok", "at_uptime_ms", "detail"],
                    "properties": {"ok": {"type": "boolean"}, "at_uptime_ms": integer, "detail": string},
                },
                "details": string,
            },
        },
        "Node": {
            "type": "object",
            "required": ["id", "stage", "goal", "host", "agent_id", "attributes", "ports", "endpoints", "task", "waiting_reason", "failures", "last_failure", "update_pending", "replacing", "health", "config"],
            "properties": {
                "id": string,
                "stage": stage,
                "goal": string_enum(&["running", "stopped", "removed"]),
                "host": nullable("string"),
                "agent_id": nullable("string"),
                "attributes": {"type": "object", "additionalProperties": {"type": "string"}},
                "ports": {"type": "object", "additionalProperties": {"type": "integer"}},
                "endpoints": {"type": "object", "additionalProperties": {"type": "string"}, "description": "host:port by port name"},
                "task": {"oneOf": [schema_ref("Task"), {"type": "null"}]},
                "waiting_reason": nullable("string"),
                "failures": integer,
                "last_failure": nullable("string"),
                "update_pending": {"type": "boolean"},
                "replacing": {"type": "boolean"},
                "health": {"oneOf": [schema_ref("ExecutorHealth"), {"type": "null"}]},
                "config": {"type": "object"},
            },
        },
        "NodeList": {
            "type": "object",
            "required": ["nodes"],
            "properties": {"nodes": {"type": "array", "items": schema_ref("Node")}},
        },
        "Explanation": {
            "type": "object",
            "required": ["node", "stage", "waiting_reason", "agents"],
            "properties": {
                "node": string,
                "stage": stage,
                "waiting_reason": nullable("string"),
                "agents": {"type": "object", "additionalProperties": strings, "description": "Decline reasons by agent hostname"},
            },
        },
        "LogLines": {
            "type": "object",
            "required": ["node", "stream", "lines"],
            "properties": {
                "node": string,
                "stream": string_enum(&["stdout", "stderr"]),
                "lines": strings,
            },
        },
        "AdminResult": {
            "type": "object",
            "required": ["node", "name", "exit_code", "timed_out", "stdout", "stderr"],
            "properties": {
                "node": string,
                "name": string,
                "exit_code": nullable("integer"),
                "timed_out": {"type": "boolean"},
                "stdout": string,
                "stderr": string,
            },
        },
        "Step": {
            "type": "object",
            "required": ["node", "phase", "since", "generation_before", "message"],
            "properties": {
                "node": string,
                "phase": string_enum(&["pending", "checking_safety", "restarting", "checking_health", "complete"]),
                "since": integer,
                "generation_before": nullable("integer"),
                "message": nullable("string"),
                "failures_before": {"type": "integer", "description": "The node's failures in a row when the step began to wait for it"},
            },
        },
        "Plan": {
            "type": "object",
            "required": ["id", "kind", "strategy", "state", "done", "total", "created_at", "step_timeout_ms", "steps"],
            "properties": {
                "id": string,
                "kind": string_enum(&["deploy", "restart", "update", "replace"]),
                "strategy": string_enum(&["serial", "parallel"]),
                "state": string_enum(&["active", "paused", "aborted", "complete"]),
                "reason": {"type": "string", "description": "Why the plan is paused (only when paused)"},
                "done": integer,
                "total": integer,
                "created_at": integer,
                "step_timeout_ms": integer,
                "steps": {"type": "array", "items": schema_ref("Step")},
            },
        },
        "PlanList": {
            "type": "object",
            "required": ["plans"],
            "properties": {"plans": {"type": "array", "items": schema_ref("Plan")}},
        },
        "Endpoints": {"type": "object", "description": "Service-defined connection details (bootstrap servers, contact points, connect string)"},
        "StateDump": {
            "type": "object",
            "required": ["state", "subscribed", "master", "fatal", "explanations", "health", "counters"],
            "properties": {
                "state": {"type": "object", "description": "The persisted scheduler state"},
                "subscribed": {"type": "boolean"},
                "master": nullable("string"),
                "fatal": nullable("string"),
                "explanations": {"type": "object"},
                "health": {"type": "object", "additionalProperties": schema_ref("ExecutorHealth")},
                "counters": {"type": "object", "additionalProperties": {"type": "integer"}},
            },
        },
        "OpenApi": {"type": "object", "description": "An OpenAPI 3.1 document"},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_parameters_come_from_the_template() {
        assert_eq!(
            path_parameters("/api/v1/nodes/{ids}/admin/{name}"),
            ["ids", "name"]
        );
        assert!(path_parameters("/health").is_empty());
    }

    #[test]
    fn every_referenced_schema_exists() {
        let schemas = schemas();
        for (route, _) in routes("broker") {
            let mut names: Vec<&str> = route.body.into_iter().collect();
            if let Payload::Json(name) = route.payload {
                names.push(name);
            }
            for name in names {
                assert!(
                    schemas.get(name).is_some(),
                    "{} uses missing schema {name}",
                    route.path
                );
            }
        }
    }
}
