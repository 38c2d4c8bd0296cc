//! An API server on 127.0.0.1:0 over the stand-in runtime, and a few helpers.

use std::{sync::Arc, time::Duration};

use scheduler_api::{
    ApiState, Artifacts, router,
    testing::{FakeOptions, FakeRuntime, running_node},
};
use tokio::{sync::oneshot, task::JoinHandle};

/// A running API and the stand-in runtime behind it.
pub struct Server {
    pub base: String,
    pub fake: FakeRuntime,
    pub http: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), scheduler_api::ApiError>>>,
}

impl Server {
    pub async fn start(options: FakeOptions, token: Option<&str>, artifacts: Artifacts) -> Server {
        let fake = FakeRuntime::start(options);
        let state = ApiState::new(fake.handle(), "kafka", "broker")
            .with_token(token.map(str::to_owned))
            .with_artifacts(artifacts);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let address = listener.local_addr().expect("local address");
        let (shutdown, stop) = oneshot::channel::<()>();
        let task = tokio::spawn(scheduler_api::serve(listener, router(state), async move {
            let _ = stop.await;
        }));
        Server {
            base: format!("http://{address}"),
            fake,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("client"),
            shutdown: Some(shutdown),
            task: Some(task),
        }
    }

    /// A server whose runtime holds brokers 0..2 running on three hosts,
    /// racks r1, r2, r1.
    pub async fn with_brokers() -> Server {
        let server = Server::start(FakeOptions::default(), None, Artifacts::new()).await;
        server.fake.update(|s| {
            for (id, host, rack) in [
                ("0", "a0.local", "r1"),
                ("1", "a1.local", "r2"),
                ("2", "a2.local", "r1"),
            ] {
                let mut node = running_node(id, host, rack);
                node.config = serde_json::json!({"heap_mb": 1024});
                Arc::make_mut(&mut s.state).nodes.insert(id.into(), node);
            }
        });
        server
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str) -> (u16, serde_json::Value) {
        let response = self.http.get(self.url(path)).send().await.expect("GET");
        json_of(response).await
    }

    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&str>,
    ) -> (u16, serde_json::Value) {
        let mut request = self.http.request(method, self.url(path));
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_owned());
        }
        json_of(request.send().await.expect("request")).await
    }

    pub async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(task) = self.task.take() {
            let result = tokio::time::timeout(Duration::from_secs(10), task)
                .await
                .expect("the server stops on shutdown")
                .expect("server task");
            result.expect("server ran without error");
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

pub async fn json_of(response: reqwest::Response) -> (u16, serde_json::Value) {
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    let value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("status {status}: body is not JSON ({e}): {text}"));
    (status, value)
}

/// The error body's message and details as one searchable string.
pub fn error_text(body: &serde_json::Value) -> String {
    let error = body["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error field in {body}"));
    let details = body["details"]
        .as_array()
        .unwrap_or_else(|| panic!("no details array in {body}"));
    let mut text = error.to_owned();
    for d in details {
        text.push_str(" | ");
        text.push_str(d.as_str().unwrap_or_default());
    }
    text
}
