//! The HTTP APIs: master `POST /api/v1/scheduler` and `GET /master/state`,
//! agent `POST /api/v1/executor` (also under `/slave(1)/`). Status codes and
//! messages follow `src/master/http.cpp` and `src/slave/http.cpp`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::{
    Router,
    body::{Body, Bytes},
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use futures::Stream;
use mesos_proto::v1::{TaskState, executor, scheduler, task_status::Source};
use mesos_proto::{ContentType, DecodeError};
use tokio::sync::{mpsc, oneshot, watch};

use super::{Command, NewStream};
use crate::core::StreamId;
use crate::error::{Error, Result};
use crate::master::{CallError, CallOk, validate};

const STREAM_ID: &str = "Mesos-Stream-Id";

fn text(status: StatusCode, message: impl Into<String>) -> Response {
    (status, message.into()).into_response()
}

/// An event stream body that tells the runtime when it is dropped (the
/// client went away or the stream ended).
struct EventBody {
    rx: mpsc::UnboundedReceiver<Bytes>,
    tx: mpsc::UnboundedSender<Command>,
    on_drop: Option<Command>,
}

impl Stream for EventBody {
    type Item = std::result::Result<Bytes, Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx).map(|b| b.map(Ok))
    }
}

impl Drop for EventBody {
    fn drop(&mut self) {
        if let Some(cmd) = self.on_drop.take() {
            let _ = self.tx.send(cmd);
        }
    }
}

fn stream_response(
    stream: NewStream,
    content_type: ContentType,
    tx: mpsc::UnboundedSender<Command>,
    on_drop: Command,
    with_stream_id: bool,
) -> Response {
    let (_, uuid, rx) = stream;
    let body = Body::from_stream(EventBody {
        rx,
        tx,
        on_drop: Some(on_drop),
    });
    let mut response = Response::new(body);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type.as_str()),
    );
    if with_stream_id {
        if let Ok(v) = HeaderValue::from_str(&uuid) {
            response.headers_mut().insert(STREAM_ID, v);
        }
    }
    response
}

/// Picks the event encoding from `Accept` as Mesos does: JSON when acceptable, else protobuf.
pub fn negotiate(headers: &HeaderMap) -> Option<ContentType> {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return Some(ContentType::Json);
    };
    let mut json = false;
    let mut protobuf = false;
    for item in accept.split(',') {
        let mut parts = item.split(';').map(str::trim);
        let media = parts.next().unwrap_or("").to_ascii_lowercase();
        let zero = parts.any(|p| {
            p.strip_prefix("q=")
                .and_then(|q| q.parse::<f64>().ok())
                .is_some_and(|q| q <= 0.0)
        });
        if zero {
            continue;
        }
        match media.as_str() {
            "*/*" | "application/*" => {
                json = true;
                protobuf = true;
            }
            "application/json" => json = true,
            "application/x-protobuf" => protobuf = true,
            _ => {}
        }
    }
    if json {
        Some(ContentType::Json)
    } else if protobuf {
        Some(ContentType::Protobuf)
    } else {
        None
    }
}

/// Decodes a call body as Mesos does, with its error messages.
fn decode_body<M>(
    headers: &HeaderMap,
    body: &[u8],
) -> std::result::Result<(M, ContentType), Box<Response>>
where
    M: prost_reflect_free::Message,
{
    let Some(content_type) = headers.get(header::CONTENT_TYPE) else {
        return Err(Box::new(text(
            StatusCode::BAD_REQUEST,
            "Expecting 'Content-Type' to be present",
        )));
    };
    let Some(content_type) = content_type
        .to_str()
        .ok()
        .and_then(ContentType::from_header)
    else {
        return Err(Box::new(text(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Expecting 'Content-Type' of application/json or application/x-protobuf",
        )));
    };
    match content_type {
        ContentType::Protobuf => match M::decode_protobuf(body) {
            Ok(m) => Ok((m, content_type)),
            Err(_) => Err(Box::new(text(
                StatusCode::BAD_REQUEST,
                "Failed to parse body into Call protobuf",
            ))),
        },
        ContentType::Json => {
            if let Err(e) = serde_json::from_slice::<serde_json::Value>(body) {
                return Err(Box::new(text(
                    StatusCode::BAD_REQUEST,
                    format!("Failed to parse body into JSON: {e}"),
                )));
            }
            match M::decode_json(body) {
                Ok(m) => Ok((m, content_type)),
                Err(e) => Err(Box::new(text(
                    StatusCode::BAD_REQUEST,
                    format!("Failed to convert JSON into Call protobuf: {e}"),
                ))),
            }
        }
    }
}

/// The two call types, decoded through the shared codec.
mod prost_reflect_free {
    use super::DecodeError;

    /// A call message.
    pub trait Message: Sized {
        fn decode_protobuf(bytes: &[u8]) -> Result<Self, DecodeError>;
        fn decode_json(bytes: &[u8]) -> Result<Self, DecodeError>;
    }

    impl Message for mesos_proto::v1::scheduler::Call {
        fn decode_protobuf(bytes: &[u8]) -> Result<Self, DecodeError> {
            mesos_proto::codec::from_protobuf(bytes)
        }
        fn decode_json(bytes: &[u8]) -> Result<Self, DecodeError> {
            mesos_proto::codec::from_json_slice(bytes)
        }
    }

    impl Message for mesos_proto::v1::executor::Call {
        fn decode_protobuf(bytes: &[u8]) -> Result<Self, DecodeError> {
            mesos_proto::codec::from_protobuf(bytes)
        }
        fn decode_json(bytes: &[u8]) -> Result<Self, DecodeError> {
            mesos_proto::codec::from_json_slice(bytes)
        }
    }
}

#[derive(Clone)]
struct MasterState {
    tx: mpsc::UnboundedSender<Command>,
}

async fn scheduler_api(
    State(state): State<MasterState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (call, _) = match decode_body::<scheduler::Call>(&headers, &body) {
        Ok(x) => x,
        Err(response) => return *response,
    };
    if let Err(e) = validate::call(&call) {
        return text(
            StatusCode::BAD_REQUEST,
            format!("Failed to validate scheduler::Call: {e}"),
        );
    }
    let is_subscribe = call.r#type == Some(scheduler::call::Type::Subscribe as i32);
    if is_subscribe {
        let Some(content_type) = negotiate(&headers) else {
            return text(
                StatusCode::NOT_ACCEPTABLE,
                "Expecting 'Accept' to allow 'application/x-protobuf' or 'application/json'",
            );
        };
        if headers.contains_key(STREAM_ID) {
            return text(
                StatusCode::BAD_REQUEST,
                "Subscribe calls should not include the 'Mesos-Stream-Id' header",
            );
        }
        let Some(subscribe) = call.subscribe else {
            return text(
                StatusCode::BAD_REQUEST,
                "Expecting 'subscribe' to be present",
            );
        };
        let (reply, rx) = oneshot::channel();
        if state
            .tx
            .send(Command::Subscribe {
                subscribe,
                content_type,
                reply,
            })
            .is_err()
        {
            return text(StatusCode::SERVICE_UNAVAILABLE, "Master is shutting down");
        }
        let Ok(stream) = rx.await else {
            return text(StatusCode::SERVICE_UNAVAILABLE, "Master is shutting down");
        };
        let id: StreamId = stream.0;
        return stream_response(
            stream,
            content_type,
            state.tx.clone(),
            Command::SchedulerStreamClosed(id),
            true,
        );
    }
    let stream_uuid = headers
        .get(STREAM_ID)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let (reply, rx) = oneshot::channel();
    if state
        .tx
        .send(Command::SchedulerCall {
            call: Box::new(call),
            stream_uuid,
            reply,
        })
        .is_err()
    {
        return text(StatusCode::SERVICE_UNAVAILABLE, "Master is shutting down");
    }
    match rx.await {
        Ok(Ok(CallOk::Accepted)) => StatusCode::ACCEPTED.into_response(),
        Ok(Ok(CallOk::Ok)) => StatusCode::OK.into_response(),
        Ok(Err(CallError::BadRequest(m))) => text(StatusCode::BAD_REQUEST, m),
        Ok(Err(CallError::Forbidden(m))) => text(StatusCode::FORBIDDEN, m),
        Ok(Err(CallError::Conflict(m))) => text(StatusCode::CONFLICT, m),
        Ok(Err(CallError::NotImplemented)) => StatusCode::NOT_IMPLEMENTED.into_response(),
        Err(_) => text(StatusCode::SERVICE_UNAVAILABLE, "Master is shutting down"),
    }
}

async fn master_state(State(state): State<MasterState>) -> Response {
    render_state(state, false).await
}

async fn master_slaves(State(state): State<MasterState>) -> Response {
    render_state(state, true).await
}

async fn render_state(state: MasterState, slaves: bool) -> Response {
    let (reply, rx) = oneshot::channel();
    if state.tx.send(Command::State { slaves, reply }).is_err() {
        return text(StatusCode::SERVICE_UNAVAILABLE, "Master is shutting down");
    }
    match rx.await {
        Ok(value) => axum::Json(value).into_response(),
        Err(_) => text(StatusCode::SERVICE_UNAVAILABLE, "Master is shutting down"),
    }
}

/// The master's router.
fn master_router(tx: mpsc::UnboundedSender<Command>) -> Router {
    Router::new()
        .route("/api/v1/scheduler", post(scheduler_api))
        .route("/master/api/v1/scheduler", post(scheduler_api))
        .route("/master/state", get(master_state))
        .route("/master/state.json", get(master_state))
        .route("/state", get(master_state))
        .route("/master/slaves", get(master_slaves))
        .route("/slaves", get(master_slaves))
        .route("/health", get(|| async { StatusCode::OK }))
        .with_state(MasterState { tx })
}

#[derive(Clone)]
struct AgentState {
    tx: mpsc::UnboundedSender<Command>,
    agent: usize,
}

/// Validates an executor call (`validateExecutorCall`).
pub fn validate_executor_call(call: &executor::Call) -> std::result::Result<(), String> {
    let Some(kind) = call.r#type else {
        return Err("Expecting 'type' to be present".into());
    };
    let missing = |name: &str| Err(format!("Expecting '{name}' to be present"));
    match executor::call::Type::try_from(kind).unwrap_or(executor::call::Type::Unknown) {
        executor::call::Type::Subscribe if call.subscribe.is_none() => missing("subscribe"),
        executor::call::Type::Update => {
            let Some(update) = &call.update else {
                return missing("update");
            };
            let status = &update.status;
            let Some(uuid) = &status.uuid else {
                return missing("uuid");
            };
            if !crate::ids::is_valid_uuid(uuid) {
                return Err(crate::ids::uuid_error(uuid));
            }
            if let Some(e) = &status.executor_id {
                if e.value != call.executor_id.value {
                    return Err(format!(
                        "ExecutorID in Call: {} does not match ExecutorID in TaskStatus: {}",
                        call.executor_id.value, e.value
                    ));
                }
            }
            if status.source != Some(Source::Executor as i32) {
                return Err(format!(
                    "Received Call from executor {} of framework {} with invalid source, expecting 'SOURCE_EXECUTOR'",
                    call.executor_id.value, call.framework_id.value
                ));
            }
            if status.state == TaskState::TaskStaging as i32 {
                return Err(format!(
                    "Received TASK_STAGING from executor {} of framework {} which is not allowed",
                    call.executor_id.value, call.framework_id.value
                ));
            }
            Ok(())
        }
        executor::call::Type::Message if call.message.is_none() => missing("message"),
        _ => Ok(()),
    }
}

async fn executor_api(
    State(state): State<AgentState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (call, _) = match decode_body::<executor::Call>(&headers, &body) {
        Ok(x) => x,
        Err(response) => return *response,
    };
    if let Err(e) = validate_executor_call(&call) {
        return text(
            StatusCode::BAD_REQUEST,
            format!("Failed to validate Executor::Call: {e}"),
        );
    }
    let kind = call
        .r#type
        .and_then(|k| executor::call::Type::try_from(k).ok());
    let content_type = if kind == Some(executor::call::Type::Subscribe) {
        match negotiate(&headers) {
            Some(ct) => ct,
            None => {
                return text(
                    StatusCode::NOT_ACCEPTABLE,
                    "Expecting 'Accept' to allow 'application/x-protobuf' or 'application/json'",
                );
            }
        }
    } else {
        ContentType::Json
    };
    if kind == Some(executor::call::Type::Heartbeat) {
        return StatusCode::ACCEPTED.into_response();
    }
    let (reply, rx) = oneshot::channel();
    let sent = state.tx.send(Command::ExecutorCall {
        agent: state.agent,
        call: Box::new(call),
        content_type,
        reply,
    });
    if sent.is_err() {
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            "Agent has not finished recovery",
        );
    }
    match rx.await {
        Ok(Ok(Some(stream))) => {
            let id = stream.0;
            stream_response(
                stream,
                content_type,
                state.tx.clone(),
                Command::ExecutorStreamClosed {
                    agent: state.agent,
                    stream: id,
                },
                false,
            )
        }
        Ok(Ok(None)) => StatusCode::ACCEPTED.into_response(),
        Ok(Err((code, message))) => text(
            StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST),
            message,
        ),
        Err(_) => text(
            StatusCode::SERVICE_UNAVAILABLE,
            "Agent has not finished recovery",
        ),
    }
}

fn agent_router(tx: mpsc::UnboundedSender<Command>, agent: usize) -> Router {
    Router::new()
        .route("/api/v1/executor", post(executor_api))
        .route("/slave(1)/api/v1/executor", post(executor_api))
        .route("/slave%281%29/api/v1/executor", post(executor_api))
        .route("/health", get(|| async { StatusCode::OK }))
        .with_state(AgentState { tx, agent })
}

async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Bind {
            address: addr.to_string(),
            source,
        })
}

fn serve(listener: tokio::net::TcpListener, router: Router) -> watch::Sender<bool> {
    let (stop, mut stopped) = watch::channel(false);
    tokio::spawn(async move {
        let shutdown = async move {
            let _ = stopped.wait_for(|s| *s).await;
        };
        if let Err(e) = axum::serve(listener, router)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::warn!(error = %e, "HTTP server ended with an error");
        }
    });
    stop
}

/// Binds the master's listener; returns it with its address.
pub async fn bind_master(addr: SocketAddr) -> Result<(tokio::net::TcpListener, SocketAddr)> {
    let listener = bind(addr).await?;
    let local = listener.local_addr().map_err(|source| Error::Bind {
        address: addr.to_string(),
        source,
    })?;
    Ok((listener, local))
}

/// Serves the master API on a bound listener.
pub fn serve_master(
    listener: tokio::net::TcpListener,
    tx: mpsc::UnboundedSender<Command>,
) -> watch::Sender<bool> {
    serve(listener, master_router(tx))
}

/// Binds an agent's listener; returns it with its address.
pub async fn bind_agent(addr: SocketAddr) -> Result<(tokio::net::TcpListener, SocketAddr)> {
    bind_master(addr).await
}

/// Serves agent `agent`'s API on a bound listener.
pub fn serve_agent_on(
    listener: tokio::net::TcpListener,
    tx: mpsc::UnboundedSender<Command>,
    agent: usize,
) -> watch::Sender<bool> {
    serve(listener, agent_router(tx, agent))
}

/// Binds `addr` again and serves agent `agent` (after a restart).
pub async fn serve_agent(
    addr: SocketAddr,
    tx: mpsc::UnboundedSender<Command>,
    agent: usize,
) -> Result<watch::Sender<bool>> {
    // The old listener may take a moment to close after its server stopped.
    let mut last = None;
    for _ in 0..50 {
        match bind(addr).await {
            Ok(listener) => return Ok(serve_agent_on(listener, tx, agent)),
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    Err(last.unwrap_or_else(|| Error::NotFound(format!("cannot bind {addr}"))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_negotiation() {
        let mut h = HeaderMap::new();
        assert_eq!(negotiate(&h), Some(ContentType::Json));
        h.insert(
            header::ACCEPT,
            HeaderValue::from_static("application/x-protobuf"),
        );
        assert_eq!(negotiate(&h), Some(ContentType::Protobuf));
        h.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
        assert_eq!(negotiate(&h), Some(ContentType::Json));
        h.insert(header::ACCEPT, HeaderValue::from_static("text/plain"));
        assert_eq!(negotiate(&h), None);
        h.insert(
            header::ACCEPT,
            HeaderValue::from_static("application/json;q=0, application/x-protobuf"),
        );
        assert_eq!(negotiate(&h), Some(ContentType::Protobuf));
    }
}
