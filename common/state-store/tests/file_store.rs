//! The file backend behind a `StateStore`, on a real file system (component tier).

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use state_store::{Error, Schema, StateStore, StorageSpec};
use tempfile::TempDir;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct State {
    framework_id: Option<String>,
    nodes: BTreeMap<String, String>,
}

fn state(nodes: usize) -> State {
    State {
        framework_id: Some("fw-1".into()),
        nodes: (0..nodes)
            .map(|i| (format!("broker-{i}"), format!("agent-{i}")))
            .collect(),
    }
}

fn store(path: &Path) -> Result<StateStore<State>> {
    let spec: StorageSpec = path
        .to_str()
        .context("temp path is UTF-8")?
        .parse()
        .context("parse storage spec")?;
    Ok(StateStore::open(&spec, "kafka", Schema::new(1)))
}

#[tokio::test]
async fn a_missing_file_is_a_fresh_start_and_parents_are_created() -> Result<()> {
    let dir = TempDir::new()?;
    let path = dir.path().join("a/b/state.json");
    let mut store = store(&path)?;
    assert_eq!(store.load().await?, None);
    store.save(&state(2)).await?;
    assert!(path.is_file());
    drop(store);

    let mut reopened = self::store(&path)?;
    assert_eq!(reopened.load().await?, Some(state(2)));
    Ok(())
}

#[tokio::test]
async fn each_save_replaces_the_file_and_keeps_the_previous_one() -> Result<()> {
    let dir = TempDir::new()?;
    let path = dir.path().join("state.json");
    let mut store = store(&path)?;
    store.load().await?;
    store.save(&state(1)).await?;
    let first = fs::read(&path)?;
    store.save(&state(3)).await?;
    drop(store);

    let backup = dir.path().join("state.json.bak");
    assert_eq!(
        fs::read(&backup)?,
        first,
        "the .bak holds the document before the last save"
    );
    let mut reopened = self::store(&path)?;
    assert_eq!(reopened.load().await?, Some(state(3)));
    // Only the state, its backup and the lock file remain: no temp files.
    let mut names: Vec<String> = fs::read_dir(dir.path())?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_, _>>()?;
    names.sort();
    assert_eq!(names, ["state.json", "state.json.bak", "state.json.lock"]);
    Ok(())
}

#[tokio::test]
async fn a_crash_during_a_save_leaves_the_previous_document() -> Result<()> {
    let dir = TempDir::new()?;
    let path = dir.path().join("state.json");
    let mut store = store(&path)?;
    store.load().await?;
    store.save(&state(1)).await?;
    drop(store);
    // What a save killed before its rename leaves behind: a partial temp file.
    let stray = dir.path().join(".state.json.tmp-4242-00000000deadbeef");
    fs::write(&stray, br#"{"format":"mesos-data-services/state","vers"#)?;

    let mut restarted = self::store(&path)?;
    assert_eq!(restarted.load().await?, Some(state(1)));
    assert!(stray.exists(), "a load changes nothing on disk");
    restarted.save(&state(2)).await?;
    assert!(!stray.exists(), "the next save removes the leftover");
    drop(restarted);
    assert_eq!(self::store(&path)?.load().await?, Some(state(2)));
    Ok(())
}

/// Loads `content` and expects an error; checks the file is untouched and saves are refused.
async fn refused(content: &[u8]) -> Result<Error> {
    let dir = TempDir::new()?;
    let path = dir.path().join("state.json");
    fs::write(&path, content)?;
    let mut store = store(&path)?;
    let error = store
        .load()
        .await
        .expect_err("the document must be refused");
    let save = store
        .save(&state(1))
        .await
        .expect_err("saves after a failed load");
    assert!(matches!(save, Error::LoadFailed { .. }), "{save:?}");
    assert!(save.to_string().contains("never overwritten"), "{save}");
    assert_eq!(
        fs::read(&path)?,
        content,
        "the refused file is left byte for byte"
    );
    assert!(!dir.path().join("state.json.bak").exists());
    Ok(error)
}

#[tokio::test]
async fn corrupt_files_are_refused_and_left_untouched() -> Result<()> {
    let error = refused(b"\x00\x17garbage{{").await?;
    assert!(matches!(error, Error::InvalidJson { .. }), "{error:?}");
    assert!(error.to_string().contains("restore a backup"), "{error}");

    let error = refused(b"").await?;
    assert!(matches!(error, Error::Empty { .. }), "{error:?}");

    let error = refused(br#"{"brokers": [1, 2]}"#).await?;
    assert!(matches!(error, Error::UnknownFormat { .. }), "{error:?}");
    Ok(())
}

#[tokio::test]
async fn documents_of_a_newer_scheduler_or_another_framework_are_refused() -> Result<()> {
    let newer = br#"{"format":"mesos-data-services/state","version":3,"framework":"kafka","written_at":1,"state":{}}"#;
    let error = refused(newer).await?;
    let message = error.to_string();
    assert!(message.contains("written by a newer version"), "{message}");
    assert!(message.contains("state.json"), "{message}");

    let other = br#"{"format":"mesos-data-services/state","version":1,"framework":"cassandra","written_at":1,"state":{}}"#;
    let error = refused(other).await?;
    assert!(matches!(error, Error::WrongFramework { .. }), "{error:?}");
    Ok(())
}

#[tokio::test]
async fn saving_before_loading_is_refused() -> Result<()> {
    let dir = TempDir::new()?;
    let path = dir.path().join("state.json");
    let mut store = store(&path)?;
    let error = store.save(&state(1)).await.expect_err("not loaded");
    assert!(matches!(error, Error::NotLoaded { .. }), "{error:?}");
    assert!(!path.exists());
    Ok(())
}

#[tokio::test]
async fn a_second_scheduler_on_the_same_file_is_refused() -> Result<()> {
    let dir = TempDir::new()?;
    let path = dir.path().join("state.json");
    let mut first = store(&path)?;
    first.load().await?;
    first.save(&state(1)).await?;

    let mut second = store(&path)?;
    let error = second.load().await.expect_err("locked");
    assert!(matches!(error, Error::Locked { .. }), "{error:?}");
    assert!(error.to_string().contains("another scheduler"), "{error}");

    drop(first);
    assert_eq!(
        second.load().await?,
        Some(state(1)),
        "the lock dies with its holder"
    );
    Ok(())
}

#[tokio::test]
async fn file_urls_work_like_paths() -> Result<()> {
    let dir = TempDir::new()?;
    let path = dir.path().join("my state.json");
    let url = format!("file://{}", dir.path().join("my%20state.json").display());
    let spec: StorageSpec = url.parse()?;
    let mut store: StateStore<State> = StateStore::open(&spec, "kafka", Schema::new(1));
    store.load().await?;
    store.save(&state(1)).await?;
    assert!(path.is_file());
    Ok(())
}
