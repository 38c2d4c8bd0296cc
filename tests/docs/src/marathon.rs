//! The command a Marathon app definition runs, as the scheduler will see it.
//!
//! Marathon runs `cmd` with `sh -c` after putting `PORT0`, `HOST`,
//! `MESOS_SANDBOX`, … and the app's `env` in the environment. Here the
//! variables are replaced by sample values and the line is split into words
//! the way the shell would split this simple form (one command, quotes, no
//! pipes or lists), so the words can be handed to the framework's clap tree.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::Error;

/// The sample port Marathon would assign as `$PORT0`.
pub const SAMPLE_PORT0: u16 = 31_005;
/// The sample sandbox directory (`$MESOS_SANDBOX`).
pub const SAMPLE_SANDBOX: &str = "/var/lib/mesos/sandbox";

/// The variables Marathon and Mesos set for a task of `app`, with sample values, then the app's `env`.
pub fn sample_env(app: &Value) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    let id = app.get("id").and_then(Value::as_str).unwrap_or("/app");
    for (name, value) in [
        ("PORT0", SAMPLE_PORT0.to_string()),
        ("PORT", SAMPLE_PORT0.to_string()),
        ("PORTS", SAMPLE_PORT0.to_string()),
        ("HOST", "agent-1.example.net".to_owned()),
        ("MESOS_SANDBOX", SAMPLE_SANDBOX.to_owned()),
        ("MESOS_TASK_ID", "app.0f6a".to_owned()),
        ("MARATHON_APP_ID", id.to_owned()),
    ] {
        env.insert(name.to_owned(), value);
    }
    if let Some(vars) = app.get("env").and_then(Value::as_object) {
        for (name, value) in vars {
            if let Some(text) = value.as_str() {
                env.insert(name.clone(), text.to_owned());
            }
        }
    }
    env
}

/// `cmd` with every `$NAME` and `${NAME}` replaced; an unknown name is an error.
pub fn substitute(cmd: &str, env: &BTreeMap<String, String>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = cmd;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let (name, tail) = if let Some(braced) = after.strip_prefix('{') {
            let end = braced
                .find('}')
                .ok_or_else(|| format!("unclosed ${{ in {cmd:?}"))?;
            (&braced[..end], &braced[end + 1..])
        } else {
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            (&after[..end], &after[end..])
        };
        let value = env.get(name).ok_or_else(|| {
            format!("${name} is neither set by Marathon nor in the app's \"env\"")
        })?;
        out.push_str(value);
        rest = tail;
    }
    out.push_str(rest);
    Ok(out)
}

/// The words of a simple command line, without a leading `exec`.
pub fn split(line: &str) -> Result<Vec<String>, String> {
    let mut words = shlex::split(line).ok_or_else(|| format!("unbalanced quotes in {line:?}"))?;
    if let Some(operator) = words
        .iter()
        .find(|w| matches!(w.as_str(), ";" | "&&" | "||" | "|" | "&" | ">" | "<"))
    {
        return Err(format!(
            "{operator:?} in the command: keep `cmd` one command (`exec <binary> scheduler …`) so the checks see what runs"
        ));
    }
    if words.first().is_some_and(|w| w == "exec") {
        words.remove(0);
    }
    if words.is_empty() {
        return Err("the command is empty".to_owned());
    }
    Ok(words)
}

/// The words an app runs, variables replaced by sample values.
pub fn command_words(file: &str, app: &Value) -> Result<Vec<String>, Error> {
    let app_error = |reason: String| Error::App {
        app: file.to_owned(),
        reason,
    };
    let cmd = app
        .get("cmd")
        .and_then(Value::as_str)
        .ok_or_else(|| app_error("no \"cmd\": the scheduler is started by a command".into()))?;
    let line = substitute(cmd, &sample_env(app)).map_err(app_error)?;
    split(&line).map_err(app_error)
}

/// The `fetch` URIs of an app with whether Mesos extracts them.
pub fn fetched(app: &Value) -> Vec<(String, bool)> {
    app.get("fetch")
        .and_then(Value::as_array)
        .map(|uris| {
            uris.iter()
                .filter_map(|f| {
                    let uri = f.get("uri")?.as_str()?.to_owned();
                    let extract = f.get("extract").and_then(Value::as_bool).unwrap_or(true);
                    Some((uri, extract))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The file name at the end of a URI.
pub fn file_name(uri: &str) -> &str {
    uri.rsplit('/').next().unwrap_or(uri)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn variables_come_from_marathon_and_the_app() {
        let app = json!({"id": "/kafka", "env": {"ZK": "zk://h:2181"}});
        let env = sample_env(&app);
        assert_eq!(
            substitute("a --p $PORT0 --s ${ZK}/x", &env).as_deref(),
            Ok("a --p 31005 --s zk://h:2181/x")
        );
        let error = substitute("a $NOPE", &env).expect_err("unknown variable");
        assert!(error.contains("$NOPE"), "{error}");
    }

    #[test]
    fn a_simple_command_splits_and_loses_exec() {
        assert_eq!(
            split("exec bin/x scheduler --role 'a b'").as_deref(),
            Ok(&[
                "bin/x".to_owned(),
                "scheduler".into(),
                "--role".into(),
                "a b".into()
            ][..])
        );
        assert!(split("x && y").is_err());
        assert!(split("x 'open").is_err());
    }
}
