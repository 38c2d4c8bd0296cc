//! Master detection against a real Apache ZooKeeper server (real-services tier).
//!
//! Fake masters register the way Mesos masters do: an EPHEMERAL_SEQUENTIAL child
//! `json.info_<seq>` of the group znode holding MasterInfo JSON, one ZooKeeper session each.
//! Every wait is on the detector's watch channel with a deadline; there are no fixed sleeps.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use mesos_detector::{Detector, DetectorOptions, MasterSpec};
use mesos_proto::codec::to_json_vec;
use mesos_proto::v1::{Address, MasterInfo};
use test_support::ZkServer;
use tokio::sync::watch;
use url::Url;
use zookeeper_client as zk;

/// How long a change may take to reach the detector (sessions close in milliseconds).
const DEADLINE: Duration = Duration::from_secs(20);

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "mesos_detector=debug".into()),
        )
        .with_test_writer()
        .try_init();
}

/// Starts ZooKeeper off the async threads (start-up blocks until `imok`).
async fn start_zookeeper() -> Result<ZkServer> {
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
    Ok(server)
}

/// Options that make failures in these tests retry quickly.
fn fast_options() -> DetectorOptions {
    DetectorOptions {
        session_timeout: Duration::from_secs(6),
        min_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(500),
    }
}

/// What a Mesos 1.11 master at 127.0.0.1:`port` writes into ZooKeeper.
fn master_info(port: u16) -> MasterInfo {
    MasterInfo {
        id: format!("master-{port}"),
        // 127.0.0.1 packed in network byte order, read as a little-endian u32.
        ip: 16_777_343,
        port: u32::from(port),
        pid: Some(format!("master@127.0.0.1:{port}")),
        version: Some("1.11.0".into()),
        address: Some(Address {
            hostname: Some("localhost".into()),
            ip: Some("127.0.0.1".into()),
            port: i32::from(port),
        }),
        ..MasterInfo::default()
    }
}

/// Registers a fake master in `group` on `client`'s session; returns its znode path.
async fn register_master(client: &zk::Client, group: &str, port: u16) -> Result<String> {
    let options = zk::CreateMode::EphemeralSequential.with_acls(zk::Acls::anyone_all());
    let prefix = format!("{group}/json.info_");
    let (_stat, sequence) = client
        .create(&prefix, &to_json_vec(&master_info(port)), &options)
        .await
        .with_context(|| format!("register master {port}"))?;
    Ok(format!("{prefix}{sequence}"))
}

/// Waits until the channel holds `want`, or fails after [`DEADLINE`] saying what it held.
async fn expect_leader(
    leader: &mut watch::Receiver<Option<Url>>,
    want: Option<&str>,
) -> Result<()> {
    let started = Instant::now();
    let waited = tokio::time::timeout(
        DEADLINE,
        leader.wait_for(|url| url.as_ref().map(Url::as_str) == want),
    )
    .await
    // Release the borrow of the value at once.
    .map(|found| found.map(drop));
    match waited {
        Ok(Ok(())) => {
            eprintln!("leader {want:?} after {:?}", started.elapsed());
            Ok(())
        }
        Ok(Err(_)) => bail!("detector stopped while waiting for {want:?}"),
        Err(_) => bail!(
            "leader is {:?}, not {want:?}, after {DEADLINE:?}",
            leader.borrow().as_ref().map(Url::as_str)
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follows_the_oldest_master_through_failover_to_none() -> Result<()> {
    init_tracing();
    let server = start_zookeeper().await?;
    let ensemble = server.connect_string();

    let admin = zk::Client::connect(&ensemble)
        .await
        .context("admin session")?;
    let persistent = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
    admin.create("/mesos", &[], &persistent).await?;
    // Replicated-log masters keep this beside their members; it is no member.
    admin
        .create("/mesos/log_replicas", &[], &persistent)
        .await?;

    // Two masters, each with its own session, the first one registered first.
    let first_session = zk::Client::connect(&ensemble).await?;
    let first = register_master(&first_session, "/mesos", 5050).await?;
    let second_session = zk::Client::connect(&ensemble).await?;
    let second = register_master(&second_session, "/mesos", 5051).await?;
    assert!(first < second, "{first} should sort before {second}");

    let spec: MasterSpec = format!("zk://{ensemble}/mesos").parse()?;
    assert_eq!(spec.to_string(), format!("zk://{ensemble}/mesos"));
    let detector = Detector::start_with(spec, fast_options()).await?;
    let mut leader = detector.leader();

    expect_leader(&mut leader, Some("http://127.0.0.1:5050/")).await?;
    assert_eq!(
        detector.wait_for_leader().await?.as_str(),
        "http://127.0.0.1:5050/"
    );

    // The first master dies: closing its session removes its ephemeral member.
    drop(first_session);
    expect_leader(&mut leader, Some("http://127.0.0.1:5051/")).await?;
    assert_eq!(admin.check_stat(&first).await?, None);

    // The last master goes away too; only `log_replicas` is left.
    admin.delete(&second, None).await?;
    expect_leader(&mut leader, None).await?;
    assert_eq!(admin.list_children("/mesos").await?, ["log_replicas"]);

    // Stopping ends the task: the channel closes instead of going stale.
    detector.stop().await;
    let closed = tokio::time::timeout(DEADLINE, leader.changed()).await;
    assert!(
        matches!(closed, Ok(Err(_))),
        "channel still open after stop"
    );
    drop(second_session);
    Ok(())
}

/// Blocks until ZooKeeper reports a watch on `path` (four-letter word `wchp`).
fn wait_for_watch(server: &ZkServer, path: &str) -> Result<()> {
    test_support::wait::until(&format!("a watch on {path}"), DEADLINE, || {
        let watches = server.four_letter_word("wchp").ok()?;
        watches
            .lines()
            .any(|line| line.trim() == path)
            .then_some(())
    })?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digest_credentials_group_created_later_and_zookeeper_gone() -> Result<()> {
    init_tracing();
    let mut server = start_zookeeper().await?;
    let ensemble = server.connect_string();

    // The detector starts before any master ever ran: the group znode does not exist yet.
    let spec: MasterSpec = format!("zk://mesos:s3cret@{ensemble}/secure/mesos").parse()?;
    assert!(!spec.to_string().contains("s3cret"), "{spec}");
    let detector = Detector::start_with(spec, fast_options()).await?;
    let mut leader = detector.leader();
    assert_eq!(detector.current(), None);
    // It waits for the group to appear rather than polling for it.
    tokio::task::block_in_place(|| wait_for_watch(&server, "/secure/mesos"))?;

    // Masters with the same credentials create the group readable only by themselves.
    let master = zk::Client::connector()
        .with_auth("digest", b"mesos:s3cret")
        .connect(&ensemble)
        .await
        .context("master session")?;
    let private = zk::CreateMode::Persistent.with_acls(zk::Acls::creator_all());
    master.create("/secure", &[], &private).await?;
    master.create("/secure/mesos", &[], &private).await?;
    register_master(&master, "/secure/mesos", 5050).await?;

    // Without credentials the group cannot even be listed.
    let anonymous = zk::Client::connect(&ensemble).await?;
    assert_eq!(
        anonymous.list_children("/secure/mesos").await,
        Err(zk::Error::NoAuth)
    );

    expect_leader(&mut leader, Some("http://127.0.0.1:5050/")).await?;

    // ZooKeeper goes away: the last leader is kept for one session timeout, then forgotten,
    // while the detector keeps trying to reconnect.
    let stopped = Instant::now();
    tokio::task::block_in_place(|| server.stop())?;
    expect_leader(&mut leader, None).await?;
    eprintln!(
        "leader forgotten {:?} after zookeeper stopped",
        stopped.elapsed()
    );
    tokio::time::timeout(DEADLINE, detector.stop())
        .await
        .context("stop while reconnecting")?;
    Ok(())
}

#[tokio::test]
async fn unreachable_ensemble_means_no_leader_and_stop_still_works() -> Result<()> {
    init_tracing();
    // A port nothing listens on: the detector must keep retrying without panicking.
    let port = test_support::ports::free_port()?;
    let spec: MasterSpec = format!("zk://127.0.0.1:{port}/mesos").parse()?;
    let detector = Detector::start_with(spec, fast_options()).await?;
    let mut leader = detector.leader();
    assert_eq!(detector.current(), None);
    tokio::time::timeout(DEADLINE, detector.stop())
        .await
        .context("stop should not hang")?;
    assert!(leader.changed().await.is_err(), "channel closes on stop");
    assert_eq!(*leader.borrow(), None);
    Ok(())
}

#[tokio::test]
async fn fixed_urls_are_published_at_once() -> Result<()> {
    for (text, url) in [
        ("127.0.0.1:5050", "http://127.0.0.1:5050/"),
        ("https://127.0.0.1:5443", "https://127.0.0.1:5443/"),
    ] {
        let detector = Detector::start(text.parse()?).await?;
        assert_eq!(detector.current().as_ref().map(Url::as_str), Some(url));
        assert_eq!(detector.wait_for_leader().await?.as_str(), url);
    }
    Ok(())
}
