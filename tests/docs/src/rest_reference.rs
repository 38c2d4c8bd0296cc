//! The routes of an OpenAPI document and the `rest.md` reference built from it.

use std::fmt::Write as _;

use serde_json::Value;

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// Every route as `METHOD /path` (`GET /api/v1/nodes/{ids}`), in the document's order.
pub fn routes(doc: &Value) -> Vec<String> {
    let Some(paths) = doc.get("paths").and_then(Value::as_object) else {
        return Vec::new();
    };
    let mut routes = Vec::new();
    for (path, item) in paths {
        for method in METHODS {
            if item.get(method).is_some() {
                routes.push(format!("{} {path}", method.to_uppercase()));
            }
        }
    }
    routes
}

fn cell(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace('|', "\\|")
}

/// A short name for a schema: `Node`, `array of Node`, `string or null`, …
pub fn type_label(schema: &Value) -> String {
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        return reference.rsplit('/').next().unwrap_or(reference).to_owned();
    }
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        let names: Vec<String> = values.iter().map(|v| format!("`{}`", text_of(v))).collect();
        return format!("one of {}", names.join(", "));
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(options) = schema.get(key).and_then(Value::as_array) {
            let names: Vec<String> = options.iter().map(type_label).collect();
            return names.join(" or ");
        }
    }
    match schema.get("type") {
        Some(Value::Array(kinds)) => kinds.iter().map(text_of).collect::<Vec<_>>().join(" or "),
        Some(Value::String(kind)) if kind == "array" => match schema.get("items") {
            Some(items) => format!("array of {}", type_label(items)),
            None => "array".to_owned(),
        },
        Some(Value::String(kind)) if kind == "object" => match schema.get("additionalProperties") {
            Some(values @ Value::Object(_)) => format!("map of {}", type_label(values)),
            _ => "object".to_owned(),
        },
        Some(Value::String(kind)) => kind.clone(),
        _ => "any".to_owned(),
    }
}

fn text_of(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

fn operation(out: &mut String, route: &str, op: &Value) {
    let _ = writeln!(out, "### `{route}`\n");
    if let Some(summary) = op.get("summary").and_then(Value::as_str) {
        let _ = writeln!(out, "{summary}.\n");
    }
    match op.get("security").and_then(Value::as_array) {
        Some(list) if list.is_empty() => out.push_str("Open: no token needed.\n\n"),
        Some(_) => out.push_str("Needs the bearer token when the scheduler has one.\n\n"),
        None => {}
    }
    let parameters = op
        .get("parameters")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if !parameters.is_empty() {
        out.push_str("| parameter | in | type | meaning |\n| --- | --- | --- | --- |\n");
        for p in &parameters {
            let name = p.get("name").map(text_of).unwrap_or_default();
            let place = p.get("in").map(text_of).unwrap_or_default();
            let kind = p.get("schema").map(type_label).unwrap_or_default();
            let meaning = p.get("description").map(text_of).unwrap_or_default();
            let _ = writeln!(
                out,
                "| `{name}` | {place} | {} | {} |",
                cell(&kind),
                cell(&meaning)
            );
        }
        out.push('\n');
    }
    if let Some(body) = op.get("requestBody") {
        let required = body
            .get("required")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let schema = body
            .pointer("/content/application~1json/schema")
            .map(type_label)
            .unwrap_or_else(|| "any".to_owned());
        let _ = writeln!(
            out,
            "Body ({}): `{schema}` as JSON.\n",
            if required { "required" } else { "optional" }
        );
    }
    if let Some(responses) = op.get("responses").and_then(Value::as_object) {
        out.push_str("| status | meaning | body |\n| --- | --- | --- |\n");
        for (status, response) in responses {
            let meaning = response.get("description").map(text_of).unwrap_or_default();
            let bodies: Vec<String> = response
                .get("content")
                .and_then(Value::as_object)
                .map(|content| {
                    content
                        .iter()
                        .map(|(media, c)| {
                            let kind = c.get("schema").map(type_label).unwrap_or_default();
                            format!("`{media}`: {kind}")
                        })
                        .collect()
                })
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "| {status} | {} | {} |",
                cell(&meaning),
                cell(&bodies.join("; "))
            );
        }
        out.push('\n');
    }
}

fn schema_section(out: &mut String, name: &str, schema: &Value) {
    let _ = writeln!(out, "### {name}\n");
    if let Some(description) = schema.get("description").and_then(Value::as_str) {
        let _ = writeln!(out, "{description}\n");
    }
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
        let _ = writeln!(out, "{}.\n", type_label(schema));
        return;
    };
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    out.push_str("| field | type | required | meaning |\n| --- | --- | --- | --- |\n");
    for (field, property) in properties {
        let meaning = property.get("description").map(text_of).unwrap_or_default();
        let _ = writeln!(
            out,
            "| `{field}` | {} | {} | {} |",
            cell(&type_label(property)),
            if required.contains(&field.as_str()) {
                "yes"
            } else {
                ""
            },
            cell(&meaning)
        );
    }
    out.push('\n');
}

/// `rest.md` from the OpenAPI document `doc` of the framework `name`.
pub fn render(name: &str, doc: &Value, regenerate: &str) -> String {
    let mut out = format!(
        "# `{name}` scheduler REST API reference\n\n\
         <!-- Generated from the OpenAPI document by `{regenerate}`; do not edit. -->\n\n"
    );
    if let Some(description) = doc.pointer("/info/description").and_then(Value::as_str) {
        let _ = writeln!(out, "{description}\n");
    }
    out.push_str(
        "The scheduler serves this document itself at `GET /api/v1/openapi.json`. With \
         `--api-token`, every route but `/health` and `/artifacts/…` needs \
         `Authorization: Bearer <token>` and answers 401 without it.\n\n",
    );
    out.push_str("## Routes\n\n| route | what |\n| --- | --- |\n");
    let paths = doc
        .get("paths")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    for (path, item) in &paths {
        for method in METHODS {
            if let Some(op) = item.get(method) {
                let summary = op.get("summary").map(text_of).unwrap_or_default();
                let _ = writeln!(
                    out,
                    "| `{} {path}` | {} |",
                    method.to_uppercase(),
                    cell(&summary)
                );
            }
        }
    }
    out.push('\n');
    let tags: Vec<(String, String)> = doc
        .get("tags")
        .and_then(Value::as_array)
        .map(|tags| {
            tags.iter()
                .map(|t| {
                    (
                        t.get("name").map(text_of).unwrap_or_default(),
                        t.get("description").map(text_of).unwrap_or_default(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    for (tag, description) in &tags {
        let mut section = String::new();
        for (path, item) in &paths {
            for method in METHODS {
                let Some(op) = item.get(method) else { continue };
                let tagged = op
                    .get("tags")
                    .and_then(Value::as_array)
                    .is_some_and(|t| t.iter().any(|x| x.as_str() == Some(tag)));
                if tagged {
                    operation(
                        &mut section,
                        &format!("{} {path}", method.to_uppercase()),
                        op,
                    );
                }
            }
        }
        if !section.is_empty() {
            let _ = writeln!(out, "## {description}\n");
            out.push_str(&section);
        }
    }
    if let Some(schemas) = doc
        .pointer("/components/schemas")
        .and_then(Value::as_object)
    {
        out.push_str("## Documents\n\n");
        for (name, schema) in schemas {
            schema_section(&mut out, name, schema);
        }
    }
    while out.ends_with("\n\n") {
        out.pop();
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn doc() -> Value {
        json!({
            "info": {"description": "Manages nodes."},
            "tags": [{"name": "nodes", "description": "The nodes"}],
            "paths": {
                "/api/v1/nodes": {
                    "get": {"tags": ["nodes"], "summary": "List", "responses": {"200": {"description": "Success", "content": {"application/json": {"schema": {"type": "array", "items": {"$ref": "#/components/schemas/Node"}}}}}}},
                    "post": {"tags": ["nodes"], "summary": "Add", "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Add"}}}}, "responses": {}}
                }
            },
            "components": {"schemas": {"Node": {"type": "object", "required": ["id"], "properties": {"id": {"type": "string"}, "port": {"type": ["integer", "null"]}}}}}
        })
    }

    #[test]
    fn routes_are_method_and_path() {
        assert_eq!(routes(&doc()), ["GET /api/v1/nodes", "POST /api/v1/nodes"]);
    }

    #[test]
    fn reference_shows_routes_bodies_and_documents() {
        let text = render("demo", &doc(), "regen");
        assert!(text.contains("### `POST /api/v1/nodes`"), "{text}");
        assert!(text.contains("Body (required): `Add` as JSON."), "{text}");
        assert!(text.contains("`application/json`: array of Node"), "{text}");
        assert!(text.contains("| `port` | integer or null |  |"), "{text}");
    }
}
