//! The scheduler client against a real HTTP server on 127.0.0.1 playing the
//! master: subscription, stream IDs on calls, redirects, heartbeat loss,
//! master restart, and 4xx answers.

mod fake_master;

use std::time::Duration;

use anyhow::{Context, bail};
use fake_master::FakeMaster;
use mesos_client::{Config, Credentials, Error, Handle, SchedulerEvent, calls};
use mesos_proto::{
    ContentType,
    v1::{
        AgentId, ExecutorId, FrameworkId, FrameworkInfo, OfferId, TaskId, TaskStatus,
        scheduler::{Event, call, event},
    },
};
use tokio::sync::{mpsc, watch};

const DEADLINE: Duration = Duration::from_secs(20);

fn framework() -> FrameworkInfo {
    FrameworkInfo {
        user: "root".into(),
        name: "client-test".into(),
        failover_timeout: Some(60.0),
        checkpoint: Some(true),
        principal: Some("client-test".into()),
        roles: vec!["test".into()],
        ..Default::default()
    }
}

fn config(content_type: ContentType) -> Config {
    Config {
        content_type,
        missed_heartbeats: 3,
        backoff_initial: Duration::from_millis(20),
        backoff_max: Duration::from_millis(200),
        call_timeout: Duration::from_secs(5),
        ..Config::new(framework())
    }
}

struct Client {
    handle: Handle,
    events: mpsc::Receiver<SchedulerEvent>,
    _leader: watch::Sender<Option<url::Url>>,
}

fn connect(config: Config, master: url::Url) -> anyhow::Result<Client> {
    let (leader, leader_rx) = watch::channel(Some(master));
    let (handle, events) = mesos_client::start(config, leader_rx)?;
    Ok(Client {
        handle,
        events,
        _leader: leader,
    })
}

impl Client {
    /// Waits for the next client event matching `want`, skipping heartbeats.
    async fn expect(
        &mut self,
        what: &str,
        want: impl Fn(&SchedulerEvent) -> bool,
    ) -> anyhow::Result<SchedulerEvent> {
        tokio::time::timeout(DEADLINE, async {
            loop {
                let event = self.events.recv().await.context("event channel closed")?;
                if want(&event) {
                    return Ok(event);
                }
                if let SchedulerEvent::Terminated { error } = &event {
                    bail!("client terminated while waiting for {what}: {error:?}");
                }
            }
        })
        .await
        .with_context(|| format!("timed out waiting for {what}"))?
    }

    async fn subscribed(&mut self) -> anyhow::Result<(FrameworkId, url::Url)> {
        match self
            .expect("SUBSCRIBED", |e| {
                matches!(e, SchedulerEvent::Subscribed { .. })
            })
            .await?
        {
            SchedulerEvent::Subscribed {
                framework_id,
                master,
                ..
            } => Ok((framework_id, master)),
            _ => unreachable!("filtered above"),
        }
    }
}

fn subscribe_calls(master: &FakeMaster) -> Vec<fake_master::Recorded> {
    master
        .calls()
        .into_iter()
        .filter(|c| c.kind() == call::Type::Subscribe)
        .collect()
}

async fn every_call_carries_the_stream_id(content_type: ContentType) -> anyhow::Result<()> {
    let master = FakeMaster::start(Duration::from_millis(200)).await?;
    let mut client = connect(config(content_type), master.url())?;
    let (framework_id, at) = client.subscribed().await?;
    assert_eq!(framework_id.value, "fake-master-0000");
    assert_eq!(at, master.url());

    // An event pushed by the master arrives decoded.
    let rescind = Event {
        r#type: Some(event::Type::Rescind as i32),
        rescind: Some(event::Rescind {
            offer_id: OfferId {
                value: "o-1".into(),
            },
        }),
        ..Default::default()
    };
    master.send(&rescind).await?;
    let got = client
        .expect(
            "RESCIND",
            |e| matches!(e, SchedulerEvent::Event(ev) if ev.rescind.is_some()),
        )
        .await?;
    if let SchedulerEvent::Event(event) = got {
        assert_eq!(event.rescind.map(|r| r.offer_id.value), Some("o-1".into()));
    }

    let agent = AgentId {
        value: "agent-1".into(),
    };
    let task = TaskId {
        value: "task-1".into(),
    };
    let offer = OfferId {
        value: "o-2".into(),
    };
    let status = TaskStatus {
        task_id: task.clone(),
        agent_id: Some(agent.clone()),
        uuid: Some(uuid::Uuid::new_v4().as_bytes().to_vec()),
        ..Default::default()
    };
    let every_call = vec![
        calls::accept(vec![offer.clone()], vec![], None),
        calls::decline(vec![offer], Some(30.0)),
        calls::revive(vec!["test".into()]),
        calls::suppress(vec!["test".into()]),
        calls::kill(
            task.clone(),
            Some(agent.clone()),
            Some(Duration::from_secs(3)),
        ),
        calls::shutdown(ExecutorId { value: "e".into() }, agent.clone()),
        calls::acknowledge(&status).context("status has a uuid")?,
        calls::reconcile(vec![(task, Some(agent.clone()))]),
        calls::reconcile(vec![]),
        calls::message(agent, ExecutorId { value: "e".into() }, b"hello".to_vec()),
    ];
    let sent = every_call.len();
    for call in every_call {
        client.handle.call(call).await?;
    }
    client.handle.teardown().await?;

    let stream_id = master.stream_id().context("live stream")?;
    let others: Vec<_> = master
        .calls()
        .into_iter()
        .filter(|c| c.kind() != call::Type::Subscribe)
        .collect();
    assert_eq!(others.len(), sent + 1);
    for recorded in &others {
        assert_eq!(
            recorded.stream_id.as_ref(),
            Some(&stream_id),
            "{:?}",
            recorded.kind()
        );
        assert_eq!(
            recorded
                .call
                .framework_id
                .as_ref()
                .map(|f| f.value.as_str()),
            Some("fake-master-0000")
        );
    }
    let kinds: Vec<_> = others.iter().map(|c| c.kind()).collect();
    use call::Type::*;
    assert_eq!(
        kinds,
        vec![
            Accept,
            Decline,
            Revive,
            Suppress,
            Kill,
            Shutdown,
            Acknowledge,
            Reconcile,
            Reconcile,
            Message,
            Teardown
        ]
    );
    // SUBSCRIBE itself never carries a stream ID.
    assert!(
        subscribe_calls(&master)
            .iter()
            .all(|c| c.stream_id.is_none())
    );
    // After TEARDOWN the client stops and refuses further calls.
    client
        .expect("Terminated", |e| {
            matches!(e, SchedulerEvent::Terminated { error: None })
        })
        .await?;
    assert!(matches!(
        client.handle.call(calls::revive(vec![])).await,
        Err(Error::Closed)
    ));
    Ok(())
}

#[tokio::test]
async fn subscribes_and_sends_every_call_with_the_stream_id_in_json() -> anyhow::Result<()> {
    every_call_carries_the_stream_id(ContentType::Json).await
}

#[tokio::test]
async fn subscribes_and_sends_every_call_with_the_stream_id_in_protobuf() -> anyhow::Result<()> {
    every_call_carries_the_stream_id(ContentType::Protobuf).await
}

#[tokio::test]
async fn follows_a_redirect_to_the_leading_master() -> anyhow::Result<()> {
    let follower = FakeMaster::start(Duration::from_millis(200)).await?;
    let leader = FakeMaster::start(Duration::from_millis(200)).await?;
    follower.script(|s| s.redirect_to = Some(leader.authority()));

    let mut client = connect(config(ContentType::Json), follower.url())?;
    let (_, at) = client.subscribed().await?;
    assert_eq!(at, leader.url());
    assert_eq!(client.handle.master(), Some(leader.url()));

    client.handle.call(calls::revive(vec![])).await?;
    // The follower redirects before reading the body, as Mesos does; every
    // call, SUBSCRIBE included, landed on the leader.
    assert!(follower.calls().is_empty());
    let kinds: Vec<_> = leader.calls().iter().map(|c| c.kind()).collect();
    assert_eq!(kinds, vec![call::Type::Subscribe, call::Type::Revive]);
    Ok(())
}

#[tokio::test]
async fn reconnects_when_heartbeats_stop() -> anyhow::Result<()> {
    let master = FakeMaster::start(Duration::from_millis(100)).await?;
    let mut client = connect(config(ContentType::Protobuf), master.url())?;
    let (framework_id, _) = client.subscribed().await?;
    let first_stream = master.stream_id();

    master.script(|s| s.mute_heartbeats = true);
    let disconnected = client
        .expect("Disconnected", |e| {
            matches!(e, SchedulerEvent::Disconnected { .. })
        })
        .await?;
    if let SchedulerEvent::Disconnected { reason } = disconnected {
        assert!(reason.contains("heartbeat"), "reason: {reason}");
    }
    master.script(|s| s.mute_heartbeats = false);

    let (again, _) = client.subscribed().await?;
    assert_eq!(again, framework_id);
    assert_ne!(master.stream_id(), first_stream, "a new stream was opened");
    let resubscribe = subscribe_calls(&master).pop().context("second SUBSCRIBE")?;
    assert_eq!(resubscribe.call.framework_id.as_ref(), Some(&framework_id));
    Ok(())
}

#[tokio::test]
async fn resubscribes_with_the_same_framework_id_after_a_master_restart() -> anyhow::Result<()> {
    let mut master = FakeMaster::start(Duration::from_millis(200)).await?;
    let mut client = connect(config(ContentType::Json), master.url())?;
    let (framework_id, _) = client.subscribed().await?;

    master.restart().await?;
    client
        .expect("Disconnected", |e| {
            matches!(e, SchedulerEvent::Disconnected { .. })
        })
        .await?;
    let (again, _) = client.subscribed().await?;
    assert_eq!(again, framework_id);

    let subscribes = subscribe_calls(&master);
    let last = subscribes.last().context("re-SUBSCRIBE")?;
    let info = &last
        .call
        .subscribe
        .as_ref()
        .context("subscribe payload")?
        .framework_info;
    assert_eq!(info.id.as_ref(), Some(&framework_id), "framework_info.id");
    assert_eq!(
        last.call.framework_id.as_ref(),
        Some(&framework_id),
        "Call.framework_id"
    );
    client.handle.call(calls::reconcile(vec![])).await?;
    Ok(())
}

#[tokio::test]
async fn client_errors_are_surfaced_clearly() -> anyhow::Result<()> {
    let master = FakeMaster::start(Duration::from_millis(200)).await?;
    let mut client = connect(config(ContentType::Json), master.url())?;
    client.subscribed().await?;

    master.script(|s| {
        s.call_answer = Some((
            axum::http::StatusCode::BAD_REQUEST,
            "Expecting 'accept' to be present".into(),
        ))
    });
    let error = client
        .handle
        .call(calls::revive(vec![]))
        .await
        .expect_err("400");
    assert!(matches!(error, Error::BadRequest { ref message } if message.contains("'accept'")));
    assert!(!error.is_retryable());
    assert!(error.to_string().contains("400 Bad Request"), "{error}");

    master.script(|s| {
        s.call_answer = Some((
            axum::http::StatusCode::FORBIDDEN,
            "Framework is not subscribed".into(),
        ))
    });
    let error = client
        .handle
        .call(calls::revive(vec![]))
        .await
        .expect_err("403");
    assert!(matches!(error, Error::Forbidden { .. }));
    assert!(error.is_retryable());
    Ok(())
}

#[tokio::test]
async fn wrong_credentials_end_the_client_with_a_clear_error() -> anyhow::Result<()> {
    let master = FakeMaster::start(Duration::from_millis(200)).await?;
    // "client-test:right" in base64.
    master.script(|s| s.require_authorization = Some("Basic Y2xpZW50LXRlc3Q6cmlnaHQ=".into()));

    let mut right = config(ContentType::Json);
    right.credentials = Some(Credentials {
        principal: "client-test".into(),
        secret: "right".into(),
    });
    let mut client = connect(right, master.url())?;
    client.subscribed().await?;
    client.handle.call(calls::revive(vec![])).await?;
    let revive = master
        .calls()
        .into_iter()
        .find(|c| c.kind() == call::Type::Revive)
        .context("revive recorded")?;
    assert_eq!(
        revive.authorization.as_deref(),
        Some("Basic Y2xpZW50LXRlc3Q6cmlnaHQ=")
    );

    let mut wrong = config(ContentType::Json);
    wrong.credentials = Some(Credentials {
        principal: "client-test".into(),
        secret: "wrong".into(),
    });
    assert!(
        !format!("{:?}", wrong.credentials).contains("wrong"),
        "secret is redacted"
    );
    let mut client = connect(wrong, master.url())?;
    let ended = client
        .expect("Terminated", |e| {
            matches!(e, SchedulerEvent::Terminated { .. })
        })
        .await;
    // `expect` bails on Terminated unless it is the wanted event, so this is it.
    match ended? {
        SchedulerEvent::Terminated { error: Some(error) } => {
            assert!(matches!(*error, Error::Unauthorized), "{error}");
        }
        other => bail!("unexpected {other:?}"),
    }
    Ok(())
}

#[tokio::test]
async fn an_error_event_on_subscribe_is_fatal() -> anyhow::Result<()> {
    let master = FakeMaster::start(Duration::from_millis(200)).await?;
    master.script(|s| s.subscribe_error = Some("Framework has been removed".into()));
    let mut client = connect(config(ContentType::Protobuf), master.url())?;
    match client
        .expect("Terminated", |e| {
            matches!(e, SchedulerEvent::Terminated { .. })
        })
        .await?
    {
        SchedulerEvent::Terminated { error: Some(error) } => {
            assert!(
                error.to_string().contains("Framework has been removed"),
                "{error}"
            );
        }
        other => bail!("unexpected {other:?}"),
    }
    assert_eq!(
        subscribe_calls(&master).len(),
        1,
        "no retry after a fatal ERROR"
    );
    Ok(())
}

#[tokio::test]
async fn moves_to_a_new_leader_when_detection_says_so() -> anyhow::Result<()> {
    let old = FakeMaster::start(Duration::from_millis(200)).await?;
    let new = FakeMaster::start(Duration::from_millis(200)).await?;
    let (leader, leader_rx) = watch::channel(Some(old.url()));
    let (handle, events) = mesos_client::start(config(ContentType::Protobuf), leader_rx)?;
    let mut client = Client {
        handle,
        events,
        _leader: leader.clone(),
    };
    let (framework_id, at) = client.subscribed().await?;
    assert_eq!(at, old.url());

    leader.send_replace(Some(new.url()));
    client
        .expect("Disconnected", |e| {
            matches!(e, SchedulerEvent::Disconnected { .. })
        })
        .await?;
    let (again, at) = client.subscribed().await?;
    assert_eq!((again, at), (framework_id.clone(), new.url()));
    let resubscribe = subscribe_calls(&new)
        .pop()
        .context("SUBSCRIBE on the new leader")?;
    assert_eq!(resubscribe.call.framework_id, Some(framework_id));
    Ok(())
}
