//! A raw v1 scheduler for tests: it sees every status code and every event,
//! so tests can compare what a scheduler observes on the local cluster and
//! on real Mesos.

#![allow(dead_code)]

use std::time::Duration;

use anyhow::{Context, bail};
use futures::StreamExt as _;
use mesos_proto::ContentType;
use mesos_proto::v1::{
    self, AgentId, CommandInfo, ExecutorId, ExecutorInfo, FrameworkId, FrameworkInfo, Offer,
    Resource, TaskId, TaskInfo, TaskStatus,
    command_info::Uri,
    framework_info::{Capability, capability},
    scheduler::{Call, Event, call, event},
};
use tokio::sync::mpsc;

/// How long any expected event may take.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// A subscribed scheduler.
pub struct Sched {
    pub http: reqwest::Client,
    pub base: String,
    pub content_type: ContentType,
    pub framework_id: String,
    pub stream_id: String,
    pub events: mpsc::UnboundedReceiver<Event>,
    reader: tokio::task::JoinHandle<()>,
}

impl Drop for Sched {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// FrameworkInfo with MULTI_ROLE, RESERVATION_REFINEMENT and PARTITION_AWARE (unless `plain`).
pub fn framework(name: &str, role: &str, partition_aware: bool) -> FrameworkInfo {
    let cap = |t: capability::Type| Capability {
        r#type: Some(t as i32),
    };
    let mut capabilities = vec![
        cap(capability::Type::MultiRole),
        cap(capability::Type::ReservationRefinement),
    ];
    if partition_aware {
        capabilities.push(cap(capability::Type::PartitionAware));
    }
    FrameworkInfo {
        user: "root".into(),
        name: name.into(),
        failover_timeout: Some(600.0),
        checkpoint: Some(true),
        principal: Some(name.into()),
        roles: vec![role.into()],
        capabilities,
        ..Default::default()
    }
}

pub fn call_of(kind: call::Type) -> Call {
    Call {
        r#type: Some(kind as i32),
        ..Default::default()
    }
}

impl Sched {
    /// Subscribes and waits for SUBSCRIBED.
    pub async fn subscribe(
        base: &str,
        info: FrameworkInfo,
        content_type: ContentType,
    ) -> anyhow::Result<Sched> {
        let base = base.trim_end_matches('/').to_owned();
        let http = reqwest::Client::builder().http1_only().build()?;
        let call = Call {
            framework_id: info.id.clone(),
            subscribe: Some(call::Subscribe {
                framework_info: info,
                suppressed_roles: vec![],
            }),
            ..call_of(call::Type::Subscribe)
        };
        let response = http
            .post(format!("{base}/api/v1/scheduler"))
            .header("Content-Type", content_type.as_str())
            .header("Accept", content_type.as_str())
            .body(mesos_proto::encode(&call, content_type))
            .send()
            .await?;
        if response.status() != reqwest::StatusCode::OK {
            bail!(
                "SUBSCRIBE answered {}: {}",
                response.status(),
                response.text().await?
            );
        }
        let stream_id = response
            .headers()
            .get("Mesos-Stream-Id")
            .and_then(|v| v.to_str().ok())
            .context("no Mesos-Stream-Id")?
            .to_owned();
        let (tx, mut events) = mpsc::unbounded_channel();
        let reader = tokio::spawn(async move {
            let mut body = response.bytes_stream();
            let mut decoder = mesos_recordio::Decoder::new(mesos_recordio::DEFAULT_MAX_RECORD);
            while let Some(Ok(chunk)) = body.next().await {
                decoder.feed(&chunk);
                while let Ok(Some(record)) = decoder.next_record() {
                    match mesos_proto::decode::<Event>(&record, content_type) {
                        Ok(event) => {
                            if tx.send(event).is_err() {
                                return;
                            }
                        }
                        Err(e) => eprintln!("undecodable event: {e}"),
                    }
                }
            }
        });
        let first = tokio::time::timeout(DEADLINE, events.recv())
            .await
            .context("no SUBSCRIBED in time")?
            .context("stream ended before SUBSCRIBED")?;
        let Some(subscribed) = first.subscribed else {
            bail!("first event was not SUBSCRIBED: {first:?}");
        };
        Ok(Sched {
            http,
            base,
            content_type,
            framework_id: subscribed.framework_id.value,
            stream_id,
            events,
            reader,
        })
    }

    pub fn fid(&self) -> FrameworkId {
        FrameworkId {
            value: self.framework_id.clone(),
        }
    }

    /// Sends a call with the framework ID and stream ID; returns status and body.
    pub async fn call(&self, mut call: Call) -> anyhow::Result<(u16, String)> {
        if call.framework_id.is_none() {
            call.framework_id = Some(self.fid());
        }
        self.raw(
            &[
                ("Content-Type", self.content_type.as_str()),
                ("Mesos-Stream-Id", &self.stream_id),
            ],
            mesos_proto::encode(&call, self.content_type),
        )
        .await
    }

    /// Posts raw bytes with the given headers.
    pub async fn raw(
        &self,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> anyhow::Result<(u16, String)> {
        let mut request = self
            .http
            .post(format!("{}/api/v1/scheduler", self.base))
            .body(body);
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        Ok((status, response.text().await.unwrap_or_default()))
    }

    /// The next event (heartbeats included) within `timeout`, or `None`.
    pub async fn next_within(&mut self, timeout: Duration) -> Option<Event> {
        tokio::time::timeout(timeout, self.events.recv())
            .await
            .ok()
            .flatten()
    }

    /// Waits for an event matching `want`, skipping others.
    pub async fn expect(
        &mut self,
        what: &str,
        want: impl Fn(&Event) -> bool,
    ) -> anyhow::Result<Event> {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match tokio::time::timeout(left, self.events.recv()).await {
                Err(_) => bail!("timed out waiting for {what}"),
                Ok(None) => bail!("stream ended while waiting for {what}"),
                Ok(Some(e)) if want(&e) => return Ok(e),
                Ok(Some(e)) => {
                    // Offers nobody waits for are handed back at once, so that
                    // later offers hold everything the agent has.
                    if let Some(offers) = e.offers {
                        self.decline(&offers.offers, 0.0).await?;
                    }
                }
            }
        }
    }

    /// Waits for the next OFFERS event, declining nothing.
    pub async fn offers(&mut self) -> anyhow::Result<Vec<Offer>> {
        let e = self.expect("OFFERS", |e| e.offers.is_some()).await?;
        Ok(e.offers.map(|o| o.offers).unwrap_or_default())
    }

    /// Waits for an UPDATE of `task`.
    pub async fn update(&mut self, task: &str) -> anyhow::Result<TaskStatus> {
        let e = self
            .expect(&format!("UPDATE for {task}"), |e| {
                e.update
                    .as_ref()
                    .is_some_and(|u| u.status.task_id.value == task)
            })
            .await?;
        e.update.map(|u| u.status).context("update")
    }

    /// Acknowledges a status that carries a uuid.
    pub async fn ack(&self, status: &TaskStatus) -> anyhow::Result<()> {
        let (Some(uuid), Some(agent)) = (status.uuid.clone(), status.agent_id.clone()) else {
            return Ok(());
        };
        let (code, body) = self
            .call(Call {
                acknowledge: Some(call::Acknowledge {
                    agent_id: agent,
                    task_id: status.task_id.clone(),
                    uuid,
                }),
                ..call_of(call::Type::Acknowledge)
            })
            .await?;
        if code != 202 {
            bail!("ACKNOWLEDGE answered {code}: {body}");
        }
        Ok(())
    }

    /// DECLINE with a filter.
    pub async fn decline(&self, offers: &[Offer], refuse_seconds: f64) -> anyhow::Result<u16> {
        let (code, _) = self
            .call(Call {
                decline: Some(call::Decline {
                    offer_ids: offers.iter().map(|o| o.id.clone()).collect(),
                    filters: Some(v1::Filters {
                        refuse_seconds: Some(refuse_seconds),
                    }),
                }),
                ..call_of(call::Type::Decline)
            })
            .await?;
        Ok(code)
    }

    /// ACCEPT with operations and `refuse_seconds: 0` (so the rest is re-offered at once).
    pub async fn accept(
        &self,
        offers: &[Offer],
        operations: Vec<v1::offer::Operation>,
    ) -> anyhow::Result<u16> {
        let (code, body) = self
            .call(Call {
                accept: Some(call::Accept {
                    offer_ids: offers.iter().map(|o| o.id.clone()).collect(),
                    operations,
                    filters: Some(v1::Filters {
                        refuse_seconds: Some(0.0),
                    }),
                }),
                ..call_of(call::Type::Accept)
            })
            .await?;
        if code != 202 {
            bail!("ACCEPT answered {code}: {body}");
        }
        Ok(code)
    }

    /// Sends a call and insists on 202.
    pub async fn call_ok(&self, call: Call) -> anyhow::Result<()> {
        let (code, body) = self.call(call).await?;
        if code != 202 {
            bail!("call answered {code}: {body}");
        }
        Ok(())
    }
}

/// The test executor binary, fetched by agents from a file:// URI.
pub fn test_executor(
    executor_id: &str,
    framework_id: &FrameworkId,
    resources: Vec<Resource>,
) -> ExecutorInfo {
    let path = env!("CARGO_BIN_EXE_mesos-local-test-executor");
    ExecutorInfo {
        executor_id: ExecutorId {
            value: executor_id.into(),
        },
        framework_id: Some(framework_id.clone()),
        name: Some("test executor".into()),
        resources,
        command: Some(CommandInfo {
            uris: vec![Uri {
                value: format!("file://{path}"),
                executable: Some(true),
                ..Default::default()
            }],
            value: Some("exec ./mesos-local-test-executor".into()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub fn scalar(name: &str, v: f64) -> Resource {
    Resource {
        name: name.into(),
        r#type: v1::value::Type::Scalar as i32,
        scalar: Some(v1::value::Scalar { value: v }),
        ..Default::default()
    }
}

/// `r` allocated to `role` (as offered to MULTI_ROLE frameworks).
pub fn allocated(mut r: Resource, role: &str) -> Resource {
    r.allocation_info = Some(v1::resource::AllocationInfo {
        role: Some(role.into()),
    });
    r
}

/// `r` dynamically reserved for `role` by `principal`, with labels.
pub fn reserved(
    mut r: Resource,
    role: &str,
    principal: &str,
    label: Option<(&str, &str)>,
) -> Resource {
    r.reservations.push(v1::resource::ReservationInfo {
        r#type: Some(v1::resource::reservation_info::Type::Dynamic as i32),
        role: Some(role.into()),
        principal: Some(principal.into()),
        labels: label.map(|(k, v)| v1::Labels {
            labels: vec![v1::Label {
                key: k.into(),
                value: Some(v.into()),
            }],
        }),
    });
    r
}

/// `disk` turned into a persistent volume.
pub fn volume(mut disk: Resource, id: &str, principal: &str, path: &str) -> Resource {
    disk.disk = Some(v1::resource::DiskInfo {
        persistence: Some(v1::resource::disk_info::Persistence {
            id: id.into(),
            principal: Some(principal.into()),
        }),
        volume: Some(v1::Volume {
            container_path: path.into(),
            host_path: None,
            mode: v1::volume::Mode::Rw as i32,
        }),
        source: None,
    });
    disk
}

pub fn op_reserve(resources: Vec<Resource>) -> v1::offer::Operation {
    v1::offer::Operation {
        r#type: Some(v1::offer::operation::Type::Reserve as i32),
        reserve: Some(v1::offer::operation::Reserve {
            resources,
            source: vec![],
        }),
        ..Default::default()
    }
}

pub fn op_unreserve(resources: Vec<Resource>) -> v1::offer::Operation {
    v1::offer::Operation {
        r#type: Some(v1::offer::operation::Type::Unreserve as i32),
        unreserve: Some(v1::offer::operation::Unreserve { resources }),
        ..Default::default()
    }
}

pub fn op_create(volumes: Vec<Resource>) -> v1::offer::Operation {
    v1::offer::Operation {
        r#type: Some(v1::offer::operation::Type::Create as i32),
        create: Some(v1::offer::operation::Create { volumes }),
        ..Default::default()
    }
}

pub fn op_destroy(volumes: Vec<Resource>) -> v1::offer::Operation {
    v1::offer::Operation {
        r#type: Some(v1::offer::operation::Type::Destroy as i32),
        destroy: Some(v1::offer::operation::Destroy { volumes }),
        ..Default::default()
    }
}

pub fn op_launch(tasks: Vec<TaskInfo>) -> v1::offer::Operation {
    v1::offer::Operation {
        r#type: Some(v1::offer::operation::Type::Launch as i32),
        launch: Some(v1::offer::operation::Launch { task_infos: tasks }),
        ..Default::default()
    }
}

pub fn task(
    id: &str,
    agent: &AgentId,
    resources: Vec<Resource>,
    executor: ExecutorInfo,
    data: &str,
) -> TaskInfo {
    TaskInfo {
        name: id.into(),
        task_id: TaskId { value: id.into() },
        agent_id: agent.clone(),
        resources,
        executor: Some(executor),
        data: (!data.is_empty()).then(|| data.as_bytes().to_vec()),
        ..Default::default()
    }
}

/// A normalised, comparable description of offered resources: names, values,
/// reservation stacks, volumes, allocation role.
pub fn shape(offers: &[Offer]) -> Vec<String> {
    let mut out: Vec<String> = offers
        .iter()
        .flat_map(|o| o.resources.iter())
        .map(|r| {
            let value = match (&r.scalar, &r.ranges) {
                (Some(s), _) => format!("{}", s.value),
                (_, Some(rs)) => rs
                    .range
                    .iter()
                    .map(|x| format!("{}-{}", x.begin, x.end))
                    .collect::<Vec<_>>()
                    .join(","),
                _ => String::new(),
            };
            let reservations: Vec<String> = r
                .reservations
                .iter()
                .map(|x| {
                    let labels = x
                        .labels
                        .as_ref()
                        .map(|l| {
                            l.labels
                                .iter()
                                .map(|l| {
                                    format!("{}={}", l.key, l.value.clone().unwrap_or_default())
                                })
                                .collect::<Vec<_>>()
                                .join(",")
                        })
                        .unwrap_or_default();
                    format!(
                        "{:?}/{}/{}/[{labels}]",
                        x.r#type,
                        x.role.clone().unwrap_or_default(),
                        x.principal.clone().unwrap_or_default()
                    )
                })
                .collect();
            let volume = r
                .disk
                .as_ref()
                .map(|d| {
                    format!(
                        " volume={}:{}",
                        d.persistence
                            .as_ref()
                            .map(|p| p.id.clone())
                            .unwrap_or_default(),
                        d.volume
                            .as_ref()
                            .map(|v| v.container_path.clone())
                            .unwrap_or_default()
                    )
                })
                .unwrap_or_default();
            #[allow(deprecated)]
            let role = r
                .role
                .clone()
                .map(|r| format!(" role={r}"))
                .unwrap_or_default()
                + &r.reservation
                    .as_ref()
                    .map(|x| format!(" reservation={}", x.principal.clone().unwrap_or_default()))
                    .unwrap_or_default();
            format!(
                "{}={} alloc={} res={:?}{volume}{role}",
                r.name,
                value,
                r.allocation_info
                    .as_ref()
                    .and_then(|a| a.role.clone())
                    .unwrap_or_default(),
                reservations
            )
        })
        .collect();
    out.sort();
    out
}

/// The name of an event type.
pub fn kind(e: &Event) -> String {
    e.r#type
        .and_then(|t| event::Type::try_from(t).ok())
        .map_or("UNKNOWN".into(), |t| t.as_str_name().to_owned())
}

/// State, reason and source of a status, plus whether it has a uuid.
pub fn status_line(s: &TaskStatus) -> String {
    format!(
        "{} {} {} uuid={}",
        s.state().as_str_name(),
        s.reason
            .and_then(|r| v1::task_status::Reason::try_from(r).ok())
            .map_or("-".into(), |r| r.as_str_name().to_owned()),
        s.source
            .and_then(|r| v1::task_status::Source::try_from(r).ok())
            .map_or("-".into(), |r| r.as_str_name().to_owned()),
        s.uuid.is_some()
    )
}

/// GET `{base}/master/state`.
pub async fn master_state(base: &str) -> anyhow::Result<serde_json::Value> {
    Ok(
        reqwest::get(format!("{}/master/state", base.trim_end_matches('/')))
            .await?
            .json()
            .await?,
    )
}

/// Installs a log subscriber once (RUST_LOG controls it).
pub fn logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_test_writer()
        .try_init();
}
