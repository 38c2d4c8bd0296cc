//! Every Marathon app definition under `packaging/marathon/` is valid for
//! Marathon and starts a scheduler the way the scheduler accepts.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::ArgMatches;
use operator_docs::{FRAMEWORKS, Framework, marathon, repo_root};
use serde_json::Value;

/// The release tarball the apps fetch, for this version of the workspace.
fn release_name() -> String {
    format!(
        "mesos-data-services-{}-linux-x86_64.tar.gz",
        env!("CARGO_PKG_VERSION")
    )
}

fn app_files(root: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let dir = root.join("packaging/marathon");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    Ok(files)
}

fn read_json(path: &Path) -> anyhow::Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))
}

/// `$MARATHON_APP_SCHEMA`, or the shared schema beside the clone.
fn schema_path(root: &Path) -> PathBuf {
    std::env::var_os("MARATHON_APP_SCHEMA")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("../shared/schemas/marathon-app-definition.schema.json"))
}

#[test]
fn every_app_definition_validates_against_marathons_schema() -> anyhow::Result<()> {
    let root = repo_root();
    let schema_file = schema_path(&root);
    if !schema_file.is_file() {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            bail!(
                "the Marathon schema {} is missing (CI=true: not skipping); set MARATHON_APP_SCHEMA",
                schema_file.display()
            );
        }
        eprintln!(
            "SKIPPED: Marathon schema not found at {} (set MARATHON_APP_SCHEMA); app definitions not validated",
            schema_file.display()
        );
        return Ok(());
    }
    let schema = read_json(&schema_file)?;
    let validator = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft4)
        .build(&schema)
        .map_err(|e| {
            anyhow::anyhow!("the schema {} does not compile: {e}", schema_file.display())
        })?;
    let files = app_files(&root)?;
    assert!(
        !files.is_empty(),
        "no app definitions under packaging/marathon/"
    );
    let mut problems = Vec::new();
    for file in &files {
        let app = read_json(file)?;
        for error in validator.iter_errors(&app) {
            problems.push(format!(
                "{}: at {}: {error}",
                file.display(),
                error.instance_path()
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    eprintln!("{} app definitions valid", files.len());
    Ok(())
}

#[test]
fn every_framework_has_exactly_one_app_definition() -> anyhow::Result<()> {
    let root = repo_root();
    let mut expected: Vec<PathBuf> = FRAMEWORKS.iter().map(|f| f.marathon_app(&root)).collect();
    expected.sort();
    assert_eq!(
        app_files(&root)?,
        expected,
        "one packaging/marathon/<framework>.json per framework in operator_docs::FRAMEWORKS"
    );
    Ok(())
}

/// What every app must hold besides a valid command: one scheduler at a time, health on /health.
fn check_app_shape(app: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    if app["instances"] != 1 {
        problems.push("\"instances\" must be 1: one scheduler per framework".to_owned());
    }
    if app["upgradeStrategy"]["minimumHealthCapacity"] != 0
        || app["upgradeStrategy"]["maximumOverCapacity"] != 0
    {
        problems.push("\"upgradeStrategy\" must be {minimumHealthCapacity: 0, maximumOverCapacity: 0}: an upgrade must never run two schedulers".to_owned());
    }
    let healthy = app["healthChecks"].as_array().is_some_and(|checks| {
        checks.iter().any(|c| {
            c["path"] == "/health"
                && matches!(c["protocol"].as_str(), Some("HTTP" | "MESOS_HTTP"))
                && c.get("portIndex").is_none_or(|p| p == 0)
        })
    });
    if !healthy {
        problems.push("needs an HTTP health check on /health, port index 0".to_owned());
    }
    if app["portDefinitions"]
        .as_array()
        .is_none_or(|p| p.is_empty())
    {
        problems.push("needs one port definition (the API, $PORT0)".to_owned());
    }
    problems
}

/// The checks on the parsed `scheduler` flags; ids are the shared flags' field names.
fn check_scheduler_flags(flags: &ArgMatches) -> Vec<String> {
    let mut problems = Vec::new();
    match flags.get_one::<scheduler_app_master::Master>("master") {
        Some(scheduler_app_master::Master::Remote(_)) => {}
        other => problems.push(format!(
            "--master must be a real master (zk:// or http://), not {other:?}"
        )),
    }
    let storage = flags.get_one::<String>("storage");
    if !storage.is_some_and(|s| s.starts_with("zk://")) {
        problems.push(format!("--storage must be zk://…: a relaunched scheduler may land on another agent (got {storage:?})"));
    }
    for flag in ["role", "principal"] {
        if flags.get_one::<String>(flag).is_none() {
            problems.push(format!("--{flag} must be given"));
        }
    }
    if flags.get_one::<u16>("api_port") != Some(&marathon::SAMPLE_PORT0) {
        problems.push(
            "--api-port must be $PORT0, the port Marathon assigns and health-checks".to_owned(),
        );
    }
    if flags
        .get_one::<std::net::SocketAddr>("api_bind")
        .is_none_or(|a| !a.ip().is_unspecified())
    {
        problems.push("--api-bind must be 0.0.0.0:…, or Marathon's health check and the agents cannot reach the API".to_owned());
    }
    problems
}

/// Paths under the sandbox that the command names must be fetched.
fn check_sandbox_files(words: &[String], app: &Value) -> Vec<String> {
    let fetched = marathon::fetched(app);
    let prefix = format!("{}/", marathon::SAMPLE_SANDBOX);
    words
        .iter()
        .filter_map(|w| w.strip_prefix(&prefix))
        .filter(|name| !fetched.iter().any(|(uri, extract)| !extract && marathon::file_name(uri) == *name))
        .map(|name| format!("$MESOS_SANDBOX/{name} is used but not fetched (add it to \"fetch\" with \"extract\": false)"))
        .collect()
}

fn check_framework(framework: &Framework, root: &Path) -> anyhow::Result<Option<String>> {
    let file = framework.marathon_app(root);
    let app = read_json(&file)?;
    let shown = file.display().to_string();
    let mut problems = check_app_shape(&app);
    let words = marathon::command_words(&shown, &app)?;
    let release = release_name();
    let top = release.trim_end_matches(".tar.gz");
    if !marathon::fetched(&app)
        .iter()
        .any(|(uri, extract)| *extract && marathon::file_name(uri) == release)
    {
        problems.push(format!(
            "must fetch (and extract) the release tarball {release}"
        ));
    }
    let expected_program = format!("{top}/bin/{}", framework.bin);
    if words[0] != expected_program {
        problems.push(format!(
            "runs {:?}; expected {expected_program:?} from the release tarball",
            words[0]
        ));
    }
    problems.extend(check_sandbox_files(&words, &app));
    let Some(cli) = framework.cli else {
        problems
            .is_empty()
            .then_some(())
            .ok_or_else(|| anyhow::anyhow!("{shown}:\n  {}", problems.join("\n  ")))?;
        return Ok(Some(format!(
            "NOT CHECKED: {} is not wired into operator-docs yet, so its command line was not parsed with its clap tree",
            framework.bin
        )));
    };
    let args = std::iter::once(framework.bin.to_owned()).chain(words[1..].iter().cloned());
    match cli().try_get_matches_from(args) {
        Ok(matches) => match matches.subcommand() {
            Some(("scheduler", flags)) => problems.extend(check_scheduler_flags(flags)),
            other => problems.push(format!(
                "must run `{} scheduler`, runs {:?}",
                framework.bin,
                other.map(|o| o.0)
            )),
        },
        Err(error) => problems.push(format!(
            "{} rejects the command line:\n{}",
            framework.bin,
            error.render()
        )),
    }
    if problems.is_empty() {
        Ok(None)
    } else {
        bail!("{shown}:\n  {}", problems.join("\n  "))
    }
}

#[test]
fn every_app_runs_a_scheduler_command_its_framework_accepts() -> anyhow::Result<()> {
    let root = repo_root();
    let mut failures = Vec::new();
    for framework in FRAMEWORKS {
        match check_framework(framework, &root) {
            Ok(None) => eprintln!("{}: command accepted by {}", framework.name, framework.bin),
            Ok(Some(report)) => {
                if framework.in_workspace(&root) {
                    failures.push(format!(
                        "{}: its crate is in the workspace but not in operator_docs::FRAMEWORKS; set `cli: Some(<crate>::cli::command)` and add the crate to tests/docs/Cargo.toml",
                        framework.name
                    ));
                }
                eprintln!("{}: {report}", framework.name);
            }
            Err(error) => failures.push(format!("{error:#}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    Ok(())
}

/// The shared scheduler's `Master` type, named for the typed flag lookup.
mod scheduler_app_master {
    pub use scheduler_app::Master;
}

#[test]
fn a_wrong_command_is_caught() {
    let framework = &FRAMEWORKS[0];
    let Some(cli) = framework.cli else { return };
    let words = ["scheduler", "--master", "local", "--api-port", "notaport"];
    let args = std::iter::once(framework.bin).chain(words);
    assert!(cli().try_get_matches_from(args).is_err());
    let app: Value = serde_json::json!({"cmd": "exec x scheduler --api-port $PORT9"});
    let error = marathon::command_words("app.json", &app).expect_err("unknown variable");
    assert!(error.to_string().contains("$PORT9"), "{error}");
}
