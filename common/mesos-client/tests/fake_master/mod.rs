//! A scriptable stand-in for a Mesos master's scheduler endpoint, on a real
//! HTTP server bound to 127.0.0.1. It answers as Mesos does (status codes,
//! headers, RecordIO stream) and records every call for the test to inspect.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    Router,
    body::{Body, Bytes},
    extract::State,
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::post,
};
use mesos_proto::{
    ContentType,
    v1::{
        FrameworkId, MasterInfo,
        scheduler::{Call, Event, call, event},
    },
};
use tokio::{net::TcpListener, sync::mpsc, task::JoinHandle};
use tokio_stream::{StreamExt as _, wrappers::ReceiverStream};

/// One call as the master received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub call: Call,
    pub stream_id: Option<String>,
    pub authorization: Option<String>,
}

impl Recorded {
    pub fn kind(&self) -> call::Type {
        self.call
            .r#type
            .and_then(|t| call::Type::try_from(t).ok())
            .unwrap_or(call::Type::Unknown)
    }
}

/// What the master will do; tests change it while it runs.
#[derive(Debug, Default)]
pub struct Script {
    /// Answer every request with 307 to this authority (`host:port`).
    pub redirect_to: Option<String>,
    /// Require this exact `Authorization` header, else 401.
    pub require_authorization: Option<String>,
    /// Answer SUBSCRIBE with 200 and this ERROR event.
    pub subscribe_error: Option<String>,
    /// Answer non-SUBSCRIBE calls with this status and message.
    pub call_answer: Option<(StatusCode, String)>,
    /// Stop sending heartbeats (the connection stays open).
    pub mute_heartbeats: bool,
}

#[derive(Default)]
struct Inner {
    script: Script,
    calls: Vec<Recorded>,
    stream: Option<(String, mpsc::Sender<Bytes>, ContentType)>,
    /// Bumped by a restart, which ends every stream of the old generation.
    generation: u64,
}

/// The fake master.
pub struct FakeMaster {
    addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
    heartbeat_interval: Duration,
    server: Option<JoinHandle<()>>,
}

impl FakeMaster {
    /// Starts a master on a free port that heartbeats every `heartbeat_interval`.
    pub async fn start(heartbeat_interval: Duration) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let mut master = Self {
            addr: listener.local_addr()?,
            inner: Arc::default(),
            heartbeat_interval,
            server: None,
        };
        master.serve(listener);
        Ok(master)
    }

    fn serve(&mut self, listener: TcpListener) {
        let app = Router::new()
            .route("/api/v1/scheduler", post(scheduler))
            .with_state(AppState {
                inner: self.inner.clone(),
                heartbeat_interval: self.heartbeat_interval,
                master_port: self.addr.port(),
            });
        self.server = Some(tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        }));
    }

    /// The master's base URL.
    pub fn url(&self) -> url::Url {
        url::Url::parse(&format!("http://{}/", self.addr)).expect("valid URL")
    }

    /// `host:port`, as used in a 307 `Location`.
    pub fn authority(&self) -> String {
        self.addr.to_string()
    }

    /// Changes the script.
    pub fn script(&self, change: impl FnOnce(&mut Script)) {
        change(&mut self.inner.lock().expect("lock").script);
    }

    /// Every call received so far.
    pub fn calls(&self) -> Vec<Recorded> {
        self.inner.lock().expect("lock").calls.clone()
    }

    /// The stream ID of the live subscription.
    pub fn stream_id(&self) -> Option<String> {
        let inner = self.inner.lock().expect("lock");
        inner.stream.as_ref().map(|(id, _, _)| id.clone())
    }

    /// Sends an event on the live subscription stream.
    pub async fn send(&self, event: &Event) -> anyhow::Result<()> {
        let (sender, content_type) = {
            let inner = self.inner.lock().expect("lock");
            let (_, sender, content_type) = inner
                .stream
                .as_ref()
                .ok_or(anyhow::anyhow!("no subscriber"))?;
            (sender.clone(), *content_type)
        };
        sender.send(frame(event, content_type)).await?;
        Ok(())
    }

    /// Simulates a master restart: the process goes away (connections are cut,
    /// new ones refused) and comes back on the same port with no subscription.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        if let Some(server) = self.server.take() {
            server.abort();
            let _ = server.await;
        }
        {
            let mut inner = self.inner.lock().expect("lock");
            inner.stream = None;
            inner.generation += 1;
        }
        let listener = TcpListener::bind(self.addr).await?;
        self.serve(listener);
        Ok(())
    }
}

impl Drop for FakeMaster {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}

#[derive(Clone)]
struct AppState {
    inner: Arc<Mutex<Inner>>,
    heartbeat_interval: Duration,
    master_port: u16,
}

fn frame(event: &Event, content_type: ContentType) -> Bytes {
    mesos_recordio::encode(&mesos_proto::encode(event, content_type))
}

fn text(status: StatusCode, message: &str) -> Response {
    (status, message.to_owned()).into_response()
}

async fn scheduler(State(app): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let header_str = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let Some(content_type) = header_str("content-type") else {
        return text(
            StatusCode::BAD_REQUEST,
            "Expecting 'Content-Type' to be present",
        );
    };
    let Some(content_type) = ContentType::from_header(&content_type) else {
        return text(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Unsupported content type",
        );
    };
    let authorization = header_str("authorization");
    let stream_id = header_str("mesos-stream-id");
    {
        let inner = app.inner.lock().expect("lock");
        if let Some(to) = &inner.script.redirect_to {
            return Response::builder()
                .status(StatusCode::TEMPORARY_REDIRECT)
                .header(header::LOCATION, format!("//{to}/api/v1/scheduler"))
                .body(Body::empty())
                .expect("valid response");
        }
        if let Some(required) = &inner.script.require_authorization
            && authorization.as_ref() != Some(required)
        {
            return text(StatusCode::UNAUTHORIZED, "");
        }
    }
    let call: Call = match mesos_proto::decode(&body, content_type) {
        Ok(call) => call,
        Err(error) => {
            return text(
                StatusCode::BAD_REQUEST,
                &format!("Failed to parse body: {error}"),
            );
        }
    };
    let recorded = Recorded {
        call: call.clone(),
        stream_id: stream_id.clone(),
        authorization,
    };
    let mut inner = app.inner.lock().expect("lock");
    inner.calls.push(recorded.clone());
    if recorded.kind() != call::Type::Subscribe {
        let Some((live, _, _)) = &inner.stream else {
            return text(StatusCode::FORBIDDEN, "Framework is not subscribed");
        };
        if stream_id.as_ref() != Some(live) {
            return text(
                StatusCode::BAD_REQUEST,
                "The stream ID included in this request didn't match",
            );
        }
        if let Some((status, message)) = &inner.script.call_answer {
            return text(*status, message);
        }
        return StatusCode::ACCEPTED.into_response();
    }

    if stream_id.is_some() {
        return text(
            StatusCode::BAD_REQUEST,
            "Subscribe calls should not include the 'Mesos-Stream-Id' header",
        );
    }
    let (sender, receiver) = mpsc::channel::<Bytes>(64);
    if let Some(message) = inner.script.subscribe_error.clone() {
        let error = Event {
            r#type: Some(event::Type::Error as i32),
            error: Some(event::Error { message }),
            ..Default::default()
        };
        let _ = sender.try_send(frame(&error, content_type));
        drop(sender);
        return stream_response(receiver, content_type, "error-stream");
    }
    let framework_id = call.framework_id.clone().unwrap_or(FrameworkId {
        value: "fake-master-0000".into(),
    });
    let new_stream_id = uuid::Uuid::new_v4().to_string();
    let subscribed = Event {
        r#type: Some(event::Type::Subscribed as i32),
        subscribed: Some(event::Subscribed {
            framework_id,
            heartbeat_interval_seconds: Some(app.heartbeat_interval.as_secs_f64()),
            master_info: Some(MasterInfo {
                id: "fake-master".into(),
                ip: u32::from_le_bytes([127, 0, 0, 1]),
                port: u32::from(app.master_port),
                ..Default::default()
            }),
        }),
        ..Default::default()
    };
    let _ = sender.try_send(frame(&subscribed, content_type));
    inner.stream = Some((new_stream_id.clone(), sender.clone(), content_type));
    let generation = inner.generation;
    drop(inner);

    let heartbeats = app.inner.clone();
    let interval = app.heartbeat_interval;
    tokio::spawn(async move {
        let heartbeat = Event {
            r#type: Some(event::Type::Heartbeat as i32),
            ..Default::default()
        };
        loop {
            let (muted, current) = {
                let inner = heartbeats.lock().expect("lock");
                (inner.script.mute_heartbeats, inner.generation)
            };
            if current != generation || sender.is_closed() {
                break;
            }
            if !muted && sender.send(frame(&heartbeat, content_type)).await.is_err() {
                break;
            }
            tokio::time::sleep(interval).await;
        }
    });
    stream_response(receiver, content_type, &new_stream_id)
}

fn stream_response(
    receiver: mpsc::Receiver<Bytes>,
    content_type: ContentType,
    stream_id: &str,
) -> Response {
    let body = Body::from_stream(ReceiverStream::new(receiver).map(Ok::<_, std::io::Error>));
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, content_type.as_str())
        .header("Mesos-Stream-Id", stream_id)
        .body(body)
        .expect("valid response")
}
