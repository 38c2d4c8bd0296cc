//! The REST API client: requests are built as values ([`ApiClient::request`])
//! and sent by [`ApiClient::send`], which turns every failure into a
//! [`CliError`] that says what to do.

use std::time::Duration;

use reqwest::Method;
use scheduler_api::model::{
    Accepted, AddNodes, AdminRequest, AdminResult, ErrorBody, Explanation, LogLines, NodeList,
    NodeStatus, PlanList, PlanView, UpdateNodes,
};
use serde::de::DeserializeOwned;
use url::Url;

use crate::error::CliError;

/// A client of one scheduler's API.
#[derive(Clone, Debug)]
pub struct ApiClient {
    base: Url,
    token: Option<String>,
    env: String,
    http: reqwest::Client,
}

/// A request ready to send, kept as data so it can be inspected.
#[derive(Debug)]
pub struct ApiRequest {
    /// HTTP method.
    pub method: Method,
    /// Full URL with percent-encoded path segments.
    pub url: Url,
    /// JSON body, if any.
    pub body: Option<serde_json::Value>,
}

impl ApiClient {
    /// A client of the API at `base` (e.g. `http://127.0.0.1:7000`); `env`
    /// names the variable that sets it, for error messages.
    pub fn new(base: &str, token: Option<String>, env: &str) -> Result<Self, CliError> {
        let base = Url::parse(base)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            .ok_or_else(|| {
                CliError::Usage(format!(
                    "--api {base:?} is not an http(s) URL; write it like http://127.0.0.1:7000"
                ))
            })?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            // Log tails and admin commands wait for an executor's answer.
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| CliError::Usage(format!("cannot set up HTTP: {e}")))?;
        Ok(ApiClient {
            base,
            token: token.filter(|t| !t.is_empty()),
            env: env.to_owned(),
            http,
        })
    }

    /// The API's base URL.
    pub fn base(&self) -> &Url {
        &self.base
    }

    /// Builds a request for `segments` under `/api/v1` (each segment
    /// percent-encoded, so ID expressions such as `*[rack=r1]` pass intact).
    pub fn request(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, String)],
        body: Option<serde_json::Value>,
    ) -> ApiRequest {
        let mut url = self.base.clone();
        let mut path = url.path().trim_end_matches('/').to_owned();
        for segment in ["api", "v1"].iter().chain(segments) {
            path.push('/');
            path.push_str(&encode_segment(segment));
        }
        url.set_path(&path);
        if !query.is_empty() {
            url.query_pairs_mut()
                .extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
        }
        ApiRequest { method, url, body }
    }

    /// Sends a request and reads the JSON answer.
    pub async fn send<T: DeserializeOwned>(&self, request: ApiRequest) -> Result<T, CliError> {
        let ApiRequest { method, url, body } = request;
        let mut builder = self.http.request(method, url.clone());
        if let Some(token) = &self.token {
            builder = builder.bearer_auth(token);
        }
        if let Some(body) = &body {
            builder = builder.json(body);
        }
        let response = builder
            .send()
            .await
            .map_err(|source| self.transport(&url, source))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|source| self.transport(&url, source))?;
        if !status.is_success() {
            return Err(match serde_json::from_str::<ErrorBody>(&text) {
                Ok(ErrorBody { error, mut details }) => {
                    if status == reqwest::StatusCode::UNAUTHORIZED {
                        let var = self.env.trim_end_matches("_API");
                        details.push(format!("pass the API token with --token or ${var}_TOKEN"));
                    }
                    CliError::Api {
                        status: status.as_u16(),
                        error,
                        details,
                    }
                }
                Err(_) => CliError::Response {
                    url: url.to_string(),
                    reason: format!(
                        "status {status} with a body that is not an API error: {}",
                        cut(&text)
                    ),
                },
            });
        }
        serde_json::from_str(&text).map_err(|e| CliError::Response {
            url: url.to_string(),
            reason: format!("{e} in {}", cut(&text)),
        })
    }

    fn transport(&self, url: &Url, source: reqwest::Error) -> CliError {
        let mut reason = source.to_string();
        let mut cause = std::error::Error::source(&source);
        while let Some(inner) = cause {
            reason = format!("{reason}: {inner}");
            cause = inner.source();
        }
        CliError::Unreachable {
            url: url.to_string(),
            env: self.env.clone(),
            reason,
            source,
        }
    }

    /// `GET /nodes`, optionally only `ids`, optionally with removed nodes.
    pub async fn nodes(&self, ids: Option<&str>, removed: bool) -> Result<NodeList, CliError> {
        let mut query = Vec::new();
        if let Some(ids) = ids {
            query.push(("ids", ids.to_owned()));
        }
        if removed {
            query.push(("removed", "true".to_owned()));
        }
        self.send(self.request(Method::GET, &["nodes"], &query, None))
            .await
    }

    /// `GET /nodes/{id}`.
    pub async fn node(&self, id: &str) -> Result<NodeStatus, CliError> {
        self.send(self.request(Method::GET, &["nodes", id], &[], None))
            .await
    }

    /// `POST /nodes`.
    pub async fn add(&self, ids: &str, config: serde_json::Value) -> Result<Accepted, CliError> {
        let body = serde_json::to_value(AddNodes {
            ids: ids.to_owned(),
            config,
        })
        .ok();
        self.send(self.request(Method::POST, &["nodes"], &[], body))
            .await
    }

    /// `PATCH /nodes/{ids}`.
    pub async fn update(&self, ids: &str, patch: serde_json::Value) -> Result<Accepted, CliError> {
        let body = serde_json::to_value(UpdateNodes { config: patch }).ok();
        self.send(self.request(Method::PATCH, &["nodes", ids], &[], body))
            .await
    }

    /// `POST /nodes/{ids}/{verb}` for start, stop, restart and replace.
    pub async fn lifecycle(&self, ids: &str, verb: &str) -> Result<Accepted, CliError> {
        self.send(self.request(Method::POST, &["nodes", ids, verb], &[], None))
            .await
    }

    /// `DELETE /nodes/{ids}`.
    pub async fn remove(&self, ids: &str) -> Result<Accepted, CliError> {
        self.send(self.request(Method::DELETE, &["nodes", ids], &[], None))
            .await
    }

    /// `GET /nodes/{id}/explain`.
    pub async fn explain(&self, id: &str) -> Result<Explanation, CliError> {
        self.send(self.request(Method::GET, &["nodes", id, "explain"], &[], None))
            .await
    }

    /// `GET /nodes/{id}/log`.
    pub async fn log(&self, id: &str, stream: &str, lines: u32) -> Result<LogLines, CliError> {
        let query = [("stream", stream.to_owned()), ("lines", lines.to_string())];
        self.send(self.request(Method::GET, &["nodes", id, "log"], &query, None))
            .await
    }

    /// `POST /nodes/{id}/admin/{name}`.
    pub async fn admin(
        &self,
        id: &str,
        name: &str,
        args: Vec<String>,
    ) -> Result<AdminResult, CliError> {
        let body = serde_json::to_value(AdminRequest { args }).ok();
        self.send(self.request(Method::POST, &["nodes", id, "admin", name], &[], body))
            .await
    }

    /// `GET /plans`.
    pub async fn plans(&self) -> Result<PlanList, CliError> {
        self.send(self.request(Method::GET, &["plans"], &[], None))
            .await
    }

    /// `GET /plans/{id}`.
    pub async fn plan(&self, id: &str) -> Result<PlanView, CliError> {
        self.send(self.request(Method::GET, &["plans", id], &[], None))
            .await
    }

    /// `POST /plans/{id}/{action}` for pause, resume and abort.
    pub async fn plan_action(&self, id: &str, action: &str) -> Result<Accepted, CliError> {
        self.send(self.request(Method::POST, &["plans", id, action], &[], None))
            .await
    }

    /// `GET /endpoints`.
    pub async fn endpoints(&self) -> Result<serde_json::Value, CliError> {
        self.send(self.request(Method::GET, &["endpoints"], &[], None))
            .await
    }
}

/// Percent-encodes everything in a path segment but unreserved characters
/// and the few an ID expression uses that are safe in a path (`*`, `,`, `=`).
fn encode_segment(segment: &str) -> String {
    let mut encoded = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~*,=".contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

fn cut(text: &str) -> String {
    let mut shown: String = text.chars().take(200).collect();
    if shown.len() < text.len() {
        shown.push('…');
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_encode_id_expressions_and_keep_a_base_path() {
        let client = ApiClient::new("http://127.0.0.1:7000", None, "X_API").expect("client");
        let request = client.request(Method::POST, &["nodes", "*[rack=r1]", "restart"], &[], None);
        assert_eq!(
            request.url.as_str(),
            "http://127.0.0.1:7000/api/v1/nodes/*%5Brack=r1%5D/restart"
        );
        let request = client.request(
            Method::GET,
            &["nodes", "a/b"],
            &[("ids", "0..2".into())],
            None,
        );
        assert_eq!(
            request.url.as_str(),
            "http://127.0.0.1:7000/api/v1/nodes/a%2Fb?ids=0..2"
        );
        let proxied =
            ApiClient::new("https://proxy.example/kafka/", None, "X_API").expect("client");
        let request = proxied.request(Method::GET, &["plans"], &[], None);
        assert_eq!(
            request.url.as_str(),
            "https://proxy.example/kafka/api/v1/plans"
        );
    }

    #[test]
    fn a_bad_api_url_is_a_usage_error() {
        for bad in ["127.0.0.1:7000", "ftp://host/", "not a url", ""] {
            let error = ApiClient::new(bad, None, "X_API").expect_err(bad);
            assert_eq!(error.exit_code(), 2, "{bad}");
            assert!(
                error.to_string().contains("http://127.0.0.1:7000"),
                "{error}"
            );
        }
    }
}
