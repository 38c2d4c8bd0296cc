//! The ZooKeeper backend against a real Apache ZooKeeper server (real-services tier).
//!
//! One server serves every scenario (a JVM start costs seconds); each scenario uses its own
//! base znode. Scenarios inspect the znodes with a separate raw client, as an operator would
//! with `zkCli.sh`.

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};
use serde::{Deserialize, Serialize};
use state_store::zk::CHUNK_SIZE;
use state_store::{Error, Schema, StateStore, StorageSpec};
use test_support::ZkServer;
use zookeeper_client as zk;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct State {
    framework_id: Option<String>,
    nodes: BTreeMap<String, String>,
}

/// A state of `nodes` nodes of about `bytes_per_node` bytes each.
fn state(nodes: usize, bytes_per_node: usize, tag: &str) -> State {
    State {
        framework_id: Some(format!("fw-{tag}")),
        nodes: (0..nodes)
            .map(|i| {
                let filler: String = format!("{tag}-{i}-")
                    .chars()
                    .cycle()
                    .take(bytes_per_node)
                    .collect();
                (format!("node-{i}"), filler)
            })
            .collect(),
    }
}

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "state_store=debug".into()),
        )
        .with_test_writer()
        .try_init();
}

fn store(spec: &str) -> Result<StateStore<State>> {
    let spec: StorageSpec = spec.parse().context("parse storage spec")?;
    Ok(StateStore::open(&spec, "kafka", Schema::new(1)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zookeeper_backend() -> Result<()> {
    init_tracing();
    let started = Instant::now();
    let server = tokio::task::spawn_blocking(ZkServer::start)
        .await
        .context("join zookeeper start")?
        .context("start zookeeper")?;
    eprintln!(
        "zookeeper up at {} in {:?}",
        server.connect_string(),
        started.elapsed()
    );
    let base = format!("zk://{}", server.connect_string());
    let raw = zk::Client::connect(&server.connect_string())
        .await
        .context("raw client")?;

    round_trip_survives_a_new_connection(&base, &raw)
        .await
        .context("scenario: round trip")?;
    a_300_node_state_fits_in_one_znode(&base, &raw)
        .await
        .context("scenario: 300 nodes")?;
    large_documents_are_chunked(&base, &raw)
        .await
        .context("scenario: chunking")?;
    concurrent_writers_are_detected(&base, &raw)
        .await
        .context("scenario: concurrent writers")?;
    corrupt_state_is_refused_and_kept(&base, &raw)
        .await
        .context("scenario: corrupt state")?;
    a_missing_chunk_is_reported(&base, &raw)
        .await
        .context("scenario: missing chunk")?;
    credentials_protect_the_znodes(&server.connect_string(), &raw)
        .await
        .context("scenario: digest credentials")?;
    Ok(())
}

async fn round_trip_survives_a_new_connection(base: &str, raw: &zk::Client) -> Result<()> {
    let spec = format!("{base}/round-trip/kafka");
    let mut first = store(&spec)?;
    ensure!(
        first.load().await?.is_none(),
        "a missing znode is a fresh start"
    );
    first.save(&state(3, 100, "a")).await?;
    first.save(&state(4, 100, "b")).await?;
    drop(first); // closes the session

    let mut second = store(&spec)?;
    ensure!(
        second.load().await? == Some(state(4, 100, "b")),
        "the last save is read back"
    );
    let (data, _) = raw.get_data("/round-trip/kafka/state").await?;
    let value: serde_json::Value = serde_json::from_slice(&data)?;
    ensure!(
        value["format"] == "mesos-data-services/state",
        "an envelope: {value}"
    );
    Ok(())
}

async fn a_300_node_state_fits_in_one_znode(base: &str, raw: &zk::Client) -> Result<()> {
    let spec = format!("{base}/three-hundred");
    let big = state(300, 2000, "n");
    let mut store = self::store(&spec)?;
    store.load().await?;
    store.save(&big).await?;
    let (data, _) = raw.get_data("/three-hundred/state").await?;
    ensure!(
        data.len() <= CHUNK_SIZE && data.starts_with(b"{"),
        "inline ({} bytes)",
        data.len()
    );
    ensure!(self::store(&spec)?.load().await? == Some(big), "read back");
    Ok(())
}

async fn large_documents_are_chunked(base: &str, raw: &zk::Client) -> Result<()> {
    let spec = format!("{base}/chunked");
    let mut writer = store(&spec)?;
    writer.load().await?;
    // About 2 MB: three chunks.
    let first = state(1000, 2000, "one");
    writer.save(&first).await?;
    let (manifest, _) = raw.get_data("/chunked/state").await?;
    ensure!(
        manifest.starts_with(b"mesos-data-services/state-chunks\n"),
        "a manifest in /chunked/state"
    );
    let chunks = raw.list_children("/chunked/state-chunks").await?;
    ensure!(chunks.len() == 3, "three chunks, got {chunks:?}");
    ensure!(
        store(&spec)?.load().await? == Some(first),
        "read back from chunks"
    );

    let second = state(1100, 2000, "two");
    writer.save(&second).await?;
    let now = raw.list_children("/chunked/state-chunks").await?;
    ensure!(now.len() == 3, "the old chunks were replaced, got {now:?}");
    ensure!(
        now.iter().all(|c| !chunks.contains(c)),
        "no old chunk is left"
    );
    ensure!(
        store(&spec)?.load().await? == Some(second),
        "the new document"
    );

    let small = state(2, 10, "small");
    writer.save(&small).await?;
    let (inline, _) = raw.get_data("/chunked/state").await?;
    ensure!(inline.starts_with(b"{"), "small documents go inline again");
    ensure!(
        raw.list_children("/chunked/state-chunks").await?.is_empty(),
        "unused chunks are removed"
    );
    ensure!(
        store(&spec)?.load().await? == Some(small),
        "the small document"
    );
    Ok(())
}

async fn concurrent_writers_are_detected(base: &str, raw: &zk::Client) -> Result<()> {
    let spec = format!("{base}/concurrent");
    let mut a = store(&spec)?;
    let mut b = store(&spec)?;
    a.load().await?;
    b.load().await?;
    // Both saw no state; only the first create may win.
    a.save(&state(1, 10, "a")).await?;
    expect_concurrent(b.save(&state(1, 10, "b")).await)?;

    // After reloading, b may write; then a's view is stale.
    ensure!(
        b.load().await? == Some(state(1, 10, "a")),
        "b sees a's state"
    );
    b.save(&state(2, 10, "b")).await?;
    expect_concurrent(a.save(&state(2, 10, "a")).await)?;
    // A stale writer of a chunked document is refused too, and leaves no chunks behind.
    expect_concurrent(a.save(&state(1000, 2000, "a")).await)?;
    ensure!(
        raw.list_children("/concurrent/state-chunks")
            .await?
            .is_empty(),
        "the refused save removed its chunks"
    );
    ensure!(
        store(&spec)?.load().await? == Some(state(2, 10, "b")),
        "b's state stands"
    );

    // Two schedulers saving at the same moment: exactly one wins.
    let race = format!("{base}/race");
    let mut c = store(&race)?;
    let mut d = store(&race)?;
    c.load().await?;
    d.load().await?;
    let (c_state, d_state) = (state(1000, 2000, "c"), state(1000, 2000, "d"));
    let (c_saved, d_saved) = tokio::join!(c.save(&c_state), d.save(&d_state));
    let winner = match (c_saved, d_saved) {
        (Ok(()), lost) => {
            expect_concurrent(lost)?;
            c_state
        }
        (lost, Ok(())) => {
            expect_concurrent(lost)?;
            d_state
        }
        (Err(c), Err(d)) => bail!("both racing saves failed: {c}; {d}"),
    };
    ensure!(
        store(&race)?.load().await? == Some(winner),
        "the winner's state is stored"
    );
    ensure!(
        raw.list_children("/race/state-chunks").await?.len() == 3,
        "only the winner's chunks remain"
    );
    Ok(())
}

fn expect_concurrent(result: state_store::Result<()>) -> Result<()> {
    match result {
        Err(error @ Error::ConcurrentWriter { .. }) => {
            ensure!(
                error
                    .to_string()
                    .contains("another scheduler instance is writing"),
                "{error}"
            );
            Ok(())
        }
        Err(other) => bail!("expected a concurrent-writer error, got {other}"),
        Ok(()) => bail!("a stale writer's save succeeded"),
    }
}

async fn corrupt_state_is_refused_and_kept(base: &str, raw: &zk::Client) -> Result<()> {
    let spec = format!("{base}/corrupt");
    let garbage = b"{\"format\": \"mesos-data-serv".to_vec();
    raw.mkdir(
        "/corrupt",
        &zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all()),
    )
    .await?;
    raw.create(
        "/corrupt/state",
        &garbage,
        &zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all()),
    )
    .await?;
    let mut store = store(&spec)?;
    match store.load().await {
        Err(Error::InvalidJson { location, .. }) => {
            ensure!(location.ends_with("/corrupt/state"), "{location}");
        }
        other => bail!("expected invalid JSON, got {other:?}"),
    }
    match store.save(&state(1, 10, "x")).await {
        Err(Error::LoadFailed { .. }) => {}
        other => bail!("expected the save to be refused, got {other:?}"),
    }
    let (data, stat) = raw.get_data("/corrupt/state").await?;
    ensure!(
        data == garbage && stat.version == 0,
        "the znode is untouched"
    );
    Ok(())
}

async fn a_missing_chunk_is_reported(base: &str, raw: &zk::Client) -> Result<()> {
    let spec = format!("{base}/lost-chunk");
    let mut writer = store(&spec)?;
    writer.load().await?;
    writer.save(&state(600, 2000, "c")).await?;
    let chunks = raw.list_children("/lost-chunk/state-chunks").await?;
    let victim = chunks.first().context("chunks were written")?;
    raw.delete(&format!("/lost-chunk/state-chunks/{victim}"), None)
        .await?;
    match store(&spec)?.load().await {
        Err(error @ Error::Chunks { .. }) => {
            ensure!(error.to_string().contains("is missing"), "{error}");
            Ok(())
        }
        other => bail!("expected a damaged-chunks error, got {other:?}"),
    }
}

async fn credentials_protect_the_znodes(servers: &str, raw: &zk::Client) -> Result<()> {
    let spec = format!("zk://ops:secret@{servers}/secured/kafka");
    let mut store = store(&spec)?;
    ensure!(!store.location().contains("secret"), "{}", store.location());
    store.load().await?;
    store.save(&state(1, 10, "s")).await?;
    match raw.get_data("/secured/kafka/state").await {
        Err(zk::Error::NoAuth) => {}
        other => bail!("an unauthenticated client must not read the state, got {other:?}"),
    }
    ensure!(
        self::store(&spec)?.load().await? == Some(state(1, 10, "s")),
        "the user reads it"
    );
    Ok(())
}
