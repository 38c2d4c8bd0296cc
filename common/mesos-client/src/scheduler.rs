//! The subscription loop and the call path.
//!
//! Expected flow: wait for a leader → SUBSCRIBE (following 307s) → SUBSCRIBED
//! → events until the stream ends, heartbeats stop, or the leader changes →
//! back off → SUBSCRIBE again with the framework ID learned from SUBSCRIBED.
//!
//! Guarantees: every non-SUBSCRIBE call carries the current `Mesos-Stream-Id`
//! and framework ID; calls are refused with [`Error::NotSubscribed`] between
//! subscriptions rather than sent with a stale stream ID; every re-subscription
//! reuses the framework ID so tasks, reservations and volumes are kept.
//!
//! Errors: an ERROR event, a 400 or a 401 on SUBSCRIBE end the client with
//! [`SchedulerEvent::Terminated`], since retrying cannot fix them; anything
//! else is retried with exponential backoff and jitter.

use std::{
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use base64::Engine as _;
use futures::StreamExt as _;
use mesos_proto::{
    ContentType,
    v1::{
        FrameworkId, FrameworkInfo,
        scheduler::{Call, Event, event},
    },
};
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue, LOCATION};
use tokio::sync::{mpsc, watch};
use tracing::{debug, info, warn};
use url::Url;

use crate::{
    backoff::Backoff,
    calls,
    error::{Error, classify},
};

/// The header Mesos uses to bind calls to a subscription.
pub const STREAM_ID_HEADER: &str = "Mesos-Stream-Id";

/// The interval Mesos 1.11 uses; the real one comes in SUBSCRIBED.
const DEFAULT_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(15);

/// How many redirects in a row are followed before backing off.
const MAX_REDIRECTS: u32 = 5;

/// HTTP basic-authentication credentials of the framework's principal.
#[derive(Clone)]
pub struct Credentials {
    /// The principal, also set as `FrameworkInfo.principal`.
    pub principal: String,
    /// The secret.
    pub secret: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("principal", &self.principal)
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl Credentials {
    fn header(&self) -> Option<HeaderValue> {
        let token = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", self.principal, self.secret));
        let mut value = HeaderValue::from_str(&format!("Basic {token}")).ok()?;
        value.set_sensitive(true);
        Some(value)
    }
}

/// How the client subscribes and how patient it is.
#[derive(Debug, Clone)]
pub struct Config {
    /// The framework to subscribe; set `id` to re-subscribe an existing framework.
    pub framework_info: FrameworkInfo,
    /// Roles to keep suppressed across (re)subscription.
    pub suppressed_roles: Vec<String>,
    /// Wire format of calls and events.
    pub content_type: ContentType,
    /// Basic-auth credentials, when the master authenticates frameworks.
    pub credentials: Option<Credentials>,
    /// Heartbeat intervals without any byte before the stream is declared dead.
    pub missed_heartbeats: u32,
    /// First reconnection delay.
    pub backoff_initial: Duration,
    /// Largest reconnection delay.
    pub backoff_max: Duration,
    /// Timeout of one non-SUBSCRIBE call, and of SUBSCRIBE's response headers.
    pub call_timeout: Duration,
    /// Largest accepted event, in bytes.
    pub max_event_bytes: usize,
}

impl Config {
    /// Defaults suited to production masters for `framework_info`.
    pub fn new(framework_info: FrameworkInfo) -> Self {
        Self {
            framework_info,
            suppressed_roles: Vec::new(),
            content_type: ContentType::Protobuf,
            credentials: None,
            missed_heartbeats: 5,
            backoff_initial: Duration::from_millis(200),
            backoff_max: Duration::from_secs(15),
            call_timeout: Duration::from_secs(75),
            max_event_bytes: mesos_recordio::DEFAULT_MAX_RECORD,
        }
    }
}

/// What the client reports to the scheduler that owns it.
#[derive(Debug, Clone)]
pub enum SchedulerEvent {
    /// A (re)subscription took effect; persist `framework_id` before relying on it.
    Subscribed {
        /// The framework's ID (assigned by the master on first subscription).
        framework_id: FrameworkId,
        /// Base URL of the master we are subscribed to.
        master: Url,
        /// The master's heartbeat interval.
        heartbeat_interval: Duration,
    },
    /// Any event after SUBSCRIBED (HEARTBEAT included, ERROR excluded).
    Event(Box<Event>),
    /// The subscription ended and the client is reconnecting; outstanding offers are void.
    Disconnected {
        /// Why the subscription ended.
        reason: String,
    },
    /// The client stopped for good: a fatal error or a shutdown.
    Terminated {
        /// Why, or `None` after [`Handle::shutdown`].
        error: Option<Arc<Error>>,
    },
}

#[derive(Debug, Default)]
struct Session {
    master: Option<Url>,
    stream_id: Option<String>,
    framework_id: Option<FrameworkId>,
    suppressed_roles: Vec<String>,
}

struct Shared {
    http: reqwest::Client,
    config: Config,
    session: Mutex<Session>,
    shutdown: watch::Sender<bool>,
}

impl Shared {
    fn session(&self) -> MutexGuard<'_, Session> {
        // A panic while holding this lock cannot leave the session half-written
        // (every update is a plain assignment), so a poisoned lock is still usable.
        self.session
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn headers(&self) -> HeaderMap {
        let content_type = HeaderValue::from_static(self.config.content_type.as_str());
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, content_type.clone());
        headers.insert(ACCEPT, content_type);
        if let Some(auth) = self
            .config
            .credentials
            .as_ref()
            .and_then(Credentials::header)
        {
            headers.insert(AUTHORIZATION, auth);
        }
        headers
    }
}

/// A cheap, cloneable handle for sending calls on the current subscription.
#[derive(Clone)]
pub struct Handle {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle")
            .field("session", &*self.shared.session())
            .finish()
    }
}

/// Starts the subscription loop; `leader` carries the leading master's base URL.
///
/// Events arrive on the returned receiver, which must be drained: the loop
/// waits when it is full, and stops when it is dropped.
pub fn start(
    config: Config,
    leader: watch::Receiver<Option<Url>>,
) -> Result<(Handle, mpsc::Receiver<SchedulerEvent>), Error> {
    let http = reqwest::Client::builder()
        .http1_only()
        // We follow 307s ourselves: the new leader must be remembered for later calls.
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(10))
        .build()
        .map_err(Error::HttpClient)?;
    let (shutdown, shutdown_rx) = watch::channel(false);
    let session = Session {
        framework_id: config.framework_info.id.clone(),
        suppressed_roles: config.suppressed_roles.clone(),
        ..Session::default()
    };
    let shared = Arc::new(Shared {
        http,
        config,
        session: Mutex::new(session),
        shutdown,
    });
    let (events, receiver) = mpsc::channel(1024);
    tokio::spawn(run(shared.clone(), leader, events, shutdown_rx));
    Ok((Handle { shared }, receiver))
}

impl Handle {
    /// Sends a call on the current subscription, filling in the framework ID.
    ///
    /// Returns once the master accepted it (202); results arrive as events.
    pub async fn call(&self, mut call: Call) -> Result<(), Error> {
        if *self.shared.shutdown.borrow() {
            return Err(Error::Closed);
        }
        let (master, stream_id, framework_id) = {
            let session = self.shared.session();
            match (&session.master, &session.stream_id, &session.framework_id) {
                (Some(m), Some(s), Some(f)) => (m.clone(), s.clone(), f.clone()),
                _ => return Err(Error::NotSubscribed),
            }
        };
        call.framework_id.get_or_insert(framework_id);
        let url = api_url(&master);
        let mut headers = self.shared.headers();
        if let Ok(value) = HeaderValue::from_str(&stream_id) {
            headers.insert(STREAM_ID_HEADER, value);
        }
        let body = mesos_proto::encode(&call, self.shared.config.content_type);
        debug!(call = call_type_name(&call), %url, "sending call");
        let response = self
            .shared
            .http
            .post(url.clone())
            .headers(headers)
            .timeout(self.shared.config.call_timeout)
            .body(body)
            .send()
            .await
            .map_err(|source| Error::Transport {
                url: url.clone(),
                source,
            })?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let location = header_string(response.headers(), LOCATION.as_str());
        let body = response.text().await.unwrap_or_default();
        Err(classify(status, location.as_deref(), &body, &master))
    }

    /// TEARDOWN: removes the framework (all its tasks die) and stops the client.
    pub async fn teardown(&self) -> Result<(), Error> {
        let result = self.call(calls::teardown()).await;
        self.shutdown();
        result
    }

    /// Stops the subscription loop; the framework stays registered until its failover timeout.
    pub fn shutdown(&self) {
        self.shared.shutdown.send_replace(true);
    }

    /// The framework ID, once known.
    pub fn framework_id(&self) -> Option<FrameworkId> {
        self.shared.session().framework_id.clone()
    }

    /// The master currently subscribed to, if any.
    pub fn master(&self) -> Option<Url> {
        let session = self.shared.session();
        session.stream_id.as_ref().and(session.master.clone())
    }

    /// Whether a subscription is active.
    pub fn is_subscribed(&self) -> bool {
        self.shared.session().stream_id.is_some()
    }

    /// Replaces the roles re-subscription keeps suppressed (SUBSCRIBE resets suppression).
    pub fn set_suppressed_roles(&self, roles: Vec<String>) {
        self.shared.session().suppressed_roles = roles;
    }
}

fn api_url(master: &Url) -> Url {
    master
        .join("api/v1/scheduler")
        .unwrap_or_else(|_| master.clone())
}

fn header_string(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn call_type_name(call: &Call) -> &'static str {
    call.r#type
        .and_then(|t| mesos_proto::v1::scheduler::call::Type::try_from(t).ok())
        .map_or("UNKNOWN", |t| t.as_str_name())
}

/// How one subscription attempt ended.
enum Ended {
    /// Subscribed, then lost the stream: reconnect soon.
    AfterSubscribed(String),
    /// Never subscribed; back off before trying again.
    Failed(Error),
    /// A 307 named another leader: try it at once.
    Redirected(Url),
    /// Stop for good.
    Fatal(Error),
    /// Shutdown requested or the event receiver is gone.
    Stopped,
}

async fn run(
    shared: Arc<Shared>,
    mut leader: watch::Receiver<Option<Url>>,
    events: mpsc::Sender<SchedulerEvent>,
    mut shutdown: watch::Receiver<bool>,
) {
    let config = &shared.config;
    let mut backoff = Backoff::new(config.backoff_initial, config.backoff_max);
    let mut redirect: Option<Url> = None;
    let mut redirects = 0;
    let error = loop {
        if *shutdown.borrow() {
            break None;
        }
        let detected = leader.borrow_and_update().clone();
        let Some(detected) = detected else {
            debug!("no leading master known; waiting");
            tokio::select! {
                changed = leader.changed() => if changed.is_err() { break Some(Error::NoLeader) },
                _ = shutdown.changed() => {}
            }
            continue;
        };
        let master = redirect.clone().unwrap_or(detected);
        let ended = subscribe_once(&shared, &master, &mut leader, &events, &mut shutdown).await;
        {
            let mut session = shared.session();
            session.stream_id = None;
        }
        let delay = match ended {
            Ended::Stopped => break None,
            Ended::Fatal(error) => break Some(error),
            Ended::Redirected(to) if redirects < MAX_REDIRECTS => {
                info!(from = %master, to = %to, "following redirect to the leading master");
                redirects += 1;
                redirect = Some(to);
                continue;
            }
            Ended::Redirected(to) => {
                warn!(to = %to, "too many redirects in a row; backing off");
                redirect = None;
                redirects = 0;
                backoff.next_delay(rand::random())
            }
            Ended::AfterSubscribed(reason) => {
                warn!(master = %master, reason = %reason, "subscription lost; re-subscribing");
                redirect = None;
                redirects = 0;
                if events
                    .send(SchedulerEvent::Disconnected { reason })
                    .await
                    .is_err()
                {
                    break None;
                }
                backoff.reset();
                backoff.next_delay(rand::random())
            }
            Ended::Failed(error) => {
                warn!(master = %master, error = %error, "subscription attempt failed");
                redirect = None;
                redirects = 0;
                backoff.next_delay(rand::random())
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = shutdown.changed() => {}
        }
    };
    shared.session().stream_id = None;
    if let Some(error) = &error {
        warn!(error = %error, "scheduler client stopped");
    }
    let _ = events
        .send(SchedulerEvent::Terminated {
            error: error.map(Arc::new),
        })
        .await;
}

async fn subscribe_once(
    shared: &Shared,
    master: &Url,
    leader: &mut watch::Receiver<Option<Url>>,
    events: &mpsc::Sender<SchedulerEvent>,
    shutdown: &mut watch::Receiver<bool>,
) -> Ended {
    let config = &shared.config;
    let call = {
        let session = shared.session();
        let mut info = config.framework_info.clone();
        info.id = session.framework_id.clone();
        calls::subscribe(info, session.suppressed_roles.clone())
    };
    let url = api_url(master);
    info!(%url, framework_id = ?call.framework_id.as_ref().map(|f| &f.value), "subscribing");
    let request = shared
        .http
        .post(url.clone())
        .headers(shared.headers())
        .body(mesos_proto::encode(&call, config.content_type))
        .send();
    let response = tokio::select! {
        response = tokio::time::timeout(config.call_timeout, request) => response,
        _ = shutdown.changed() => return Ended::Stopped,
    };
    let response = match response {
        Err(_elapsed) => {
            return Ended::Failed(Error::Unavailable {
                status: http::StatusCode::GATEWAY_TIMEOUT,
                message: format!("no answer to SUBSCRIBE within {:?}", config.call_timeout),
            });
        }
        Ok(Err(source)) => return Ended::Failed(Error::Transport { url, source }),
        Ok(Ok(response)) => response,
    };
    let status = response.status();
    if status != http::StatusCode::OK {
        let location = header_string(response.headers(), LOCATION.as_str());
        let body = response.text().await.unwrap_or_default();
        return match classify(status, location.as_deref(), &body, master) {
            Error::NotLeader {
                leader: Some(to), ..
            } if &to != master => Ended::Redirected(to),
            error if error.is_retryable() => Ended::Failed(error),
            error => Ended::Fatal(error),
        };
    }
    let Some(stream_id) = header_string(response.headers(), STREAM_ID_HEADER) else {
        return Ended::Failed(Error::InvalidSubscribeResponse(format!(
            "no {STREAM_ID_HEADER} header"
        )));
    };
    let content_type = header_string(response.headers(), CONTENT_TYPE.as_str());
    if content_type.as_deref() != Some(config.content_type.as_str()) {
        return Ended::Failed(Error::InvalidSubscribeResponse(format!(
            "content type {content_type:?}, expected {}",
            config.content_type
        )));
    }

    let mut body = response.bytes_stream();
    let mut decoder = mesos_recordio::Decoder::new(config.max_event_bytes);
    let mut watchdog = DEFAULT_HEARTBEAT_INTERVAL * config.missed_heartbeats.max(1);
    let mut subscribed = false;
    // A closed leader watch (a fixed master address) can report no change:
    // polling it would return at once, forever.
    let mut leader_open = true;
    loop {
        let chunk = tokio::select! {
            chunk = tokio::time::timeout(watchdog, body.next()) => chunk,
            changed = leader.changed(), if leader_open => {
                if changed.is_err() {
                    leader_open = false;
                    continue;
                }
                let now = leader.borrow().clone();
                if now.as_ref() != Some(master) {
                    let reason = format!("leading master changed to {now:?}");
                    return lost(subscribed, reason, Error::NoLeader);
                }
                continue;
            }
            _ = shutdown.changed() => return Ended::Stopped,
        };
        let chunk = match chunk {
            Err(_elapsed) => {
                let error = Error::HeartbeatTimeout(watchdog);
                return lost(subscribed, error.to_string(), error);
            }
            Ok(None) => {
                let reason = "the master closed the event stream".to_owned();
                return lost(
                    subscribed,
                    reason.clone(),
                    Error::InvalidSubscribeResponse(reason),
                );
            }
            Ok(Some(Err(source))) => {
                let error = Error::Transport {
                    url: url.clone(),
                    source,
                };
                return lost(subscribed, error.to_string(), error);
            }
            Ok(Some(Ok(chunk))) => chunk,
        };
        decoder.feed(&chunk);
        loop {
            let record = match decoder.next_record() {
                Ok(Some(record)) => record,
                Ok(None) => break,
                Err(error) => {
                    let error = Error::from(error);
                    return lost(subscribed, error.to_string(), error);
                }
            };
            let event: Event = match mesos_proto::decode(&record, config.content_type) {
                Ok(event) => event,
                Err(error) => {
                    let error = Error::from(error);
                    return lost(subscribed, error.to_string(), error);
                }
            };
            let kind = event.r#type.and_then(|t| event::Type::try_from(t).ok());
            match (kind, event.subscribed.as_ref(), event.error.as_ref()) {
                (Some(event::Type::Error), _, error) => {
                    let message = error.map_or_else(String::new, |e| e.message.clone());
                    return Ended::Fatal(Error::SubscriptionError { message });
                }
                (Some(event::Type::Subscribed), Some(sub), _) => {
                    let interval = sub
                        .heartbeat_interval_seconds
                        .filter(|s| s.is_finite() && *s > 0.0)
                        .map_or(DEFAULT_HEARTBEAT_INTERVAL, Duration::from_secs_f64);
                    watchdog = interval * config.missed_heartbeats.max(1);
                    {
                        let mut session = shared.session();
                        session.master = Some(master.clone());
                        session.stream_id = Some(stream_id.clone());
                        session.framework_id = Some(sub.framework_id.clone());
                    }
                    subscribed = true;
                    info!(framework_id = %sub.framework_id.value, master = %master, "subscribed");
                    let event = SchedulerEvent::Subscribed {
                        framework_id: sub.framework_id.clone(),
                        master: master.clone(),
                        heartbeat_interval: interval,
                    };
                    if events.send(event).await.is_err() {
                        return Ended::Stopped;
                    }
                }
                _ if !subscribed => {
                    let error = Error::InvalidSubscribeResponse(format!(
                        "first event was {kind:?}, not SUBSCRIBED"
                    ));
                    return Ended::Failed(error);
                }
                _ => {
                    if events
                        .send(SchedulerEvent::Event(Box::new(event)))
                        .await
                        .is_err()
                    {
                        return Ended::Stopped;
                    }
                }
            }
        }
    }
}

/// A lost stream is a reconnect after a subscription, a failed attempt before one.
fn lost(subscribed: bool, reason: String, error: Error) -> Ended {
    if subscribed {
        Ended::AfterSubscribed(reason)
    } else {
        Ended::Failed(error)
    }
}
