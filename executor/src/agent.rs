//! HTTP transport to the agent's v1 executor API.
//!
//! SUBSCRIBE opens a long-lived response whose body is a RecordIO stream of
//! events; every other call is a separate POST answered with 202. Calls are
//! sent as protobuf, the cheaper form to encode and decode.

use std::time::Duration;

use mesos_proto::ContentType;
use mesos_proto::v1::executor::{Call, Event, call};
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};

use crate::error::Error;

/// How long a non-streaming call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(20);
/// How long connecting to the agent may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest event accepted (a LAUNCH carries the whole task document).
const MAX_EVENT: usize = 16 * 1024 * 1024;

/// A client of one agent's executor API.
#[derive(Clone, Debug)]
pub struct Agent {
    client: reqwest::Client,
    url: url::Url,
    token: Option<String>,
}

impl Agent {
    /// A client of the executor API at `url`.
    pub fn new(url: url::Url, token: Option<String>) -> Result<Agent, Error> {
        let client = reqwest::Client::builder()
            .http1_only()
            .connect_timeout(CONNECT_TIMEOUT)
            // The agent speaks plain HTTP on loopback or its LAN address; a
            // proxy from the environment would only get in the way.
            .no_proxy()
            // Plain HTTP: loading root certificates would only cost memory.
            .tls_built_in_root_certs(false)
            .build()
            .map_err(Error::HttpClient)?;
        Ok(Agent { client, url, token })
    }

    /// The executor API URL.
    pub fn url(&self) -> &url::Url {
        &self.url
    }

    fn request(&self, call: &Call) -> reqwest::RequestBuilder {
        let mut request = self
            .client
            .post(self.url.clone())
            .header(CONTENT_TYPE, ContentType::Protobuf.as_str())
            .header(ACCEPT, ContentType::Protobuf.as_str())
            .body(mesos_proto::encode(call, ContentType::Protobuf));
        if let Some(token) = &self.token {
            request = request.header(AUTHORIZATION, format!("Bearer {token}"));
        }
        request
    }

    /// Sends SUBSCRIBE and returns the event stream once the agent answered 200.
    pub async fn subscribe(&self, call: &Call) -> Result<EventStream, Error> {
        let response = tokio::time::timeout(CALL_TIMEOUT, self.request(call).send())
            .await
            .map_err(|_| Error::AgentStatus {
                call: "SUBSCRIBE",
                status: 0,
                message: format!("no answer within {CALL_TIMEOUT:?}"),
            })?
            .map_err(|source| self.transport(source))?;
        if response.status() != reqwest::StatusCode::OK {
            return Err(status_error("SUBSCRIBE", response).await);
        }
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(ContentType::from_header)
            .unwrap_or(ContentType::Protobuf);
        Ok(EventStream {
            response,
            decoder: mesos_recordio::Decoder::new(MAX_EVENT),
            content_type,
        })
    }

    /// Sends a non-SUBSCRIBE call; success is 202.
    pub async fn post(&self, call: &Call) -> Result<(), Error> {
        let name = call_name(call);
        let response = self
            .request(call)
            .timeout(CALL_TIMEOUT)
            .send()
            .await
            .map_err(|source| self.transport(source))?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(status_error(name, response).await)
        }
    }

    fn transport(&self, source: reqwest::Error) -> Error {
        Error::AgentTransport {
            url: self.url.to_string(),
            source,
        }
    }
}

async fn status_error(call: &'static str, response: reqwest::Response) -> Error {
    let status = response.status().as_u16();
    let message = response.text().await.unwrap_or_default();
    Error::AgentStatus {
        call,
        status,
        message: message.trim().chars().take(500).collect(),
    }
}

fn call_name(call: &Call) -> &'static str {
    call.r#type
        .and_then(|t| call::Type::try_from(t).ok())
        .map_or("UNKNOWN", |t| t.as_str_name())
}

/// The events of one subscription.
#[derive(Debug)]
pub struct EventStream {
    response: reqwest::Response,
    decoder: mesos_recordio::Decoder,
    content_type: ContentType,
}

impl EventStream {
    /// The next event; `None` when the agent closed the stream.
    pub async fn next(&mut self) -> Option<Result<Event, Error>> {
        loop {
            match self.decoder.next_record() {
                Ok(Some(record)) => {
                    return Some(
                        mesos_proto::decode::<Event>(&record, self.content_type)
                            .map_err(Error::from),
                    );
                }
                Ok(None) => {}
                Err(e) => return Some(Err(e.into())),
            }
            match self.response.chunk().await {
                Ok(Some(chunk)) => self.decoder.feed(&chunk),
                Ok(None) => return None,
                Err(source) => {
                    return Some(Err(Error::AgentTransport {
                        url: self.response.url().to_string(),
                        source,
                    }));
                }
            }
        }
    }
}
