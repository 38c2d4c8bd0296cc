//! The OpenAPI document exactly as a scheduler serves it.
//!
//! The API builds its document from its route table and serves it; rather
//! than reach into the API crate, this serves the real router (over a runtime
//! handle that is never asked anything) on a loopback port and reads it.

use std::sync::Arc;

use scheduler_api::ApiState;
use scheduler_runtime::{RuntimeHandle, Snapshot};
use serde_json::Value;

use crate::Error;

/// A token, so that the document shows which routes need one.
const TOKEN: &str = "reference";

/// The document of framework `name` whose nodes are `noun`s, with a token configured.
pub fn document(name: &str, noun: &str) -> Result<Value, Error> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::OpenApi(format!("cannot start a runtime: {e}")))?;
    runtime.block_on(fetch(name, noun))
}

async fn fetch(name: &str, noun: &str) -> Result<Value, Error> {
    let (commands, _unanswered) = tokio::sync::mpsc::channel(1);
    let (_publish, snapshot) = tokio::sync::watch::channel(Arc::new(Snapshot::default()));
    let state = ApiState::new(RuntimeHandle::from_parts(commands, snapshot), name, noun)
        .with_token(Some(TOKEN.to_owned()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| Error::OpenApi(format!("cannot bind a loopback port: {e}")))?;
    let address = listener
        .local_addr()
        .map_err(|e| Error::OpenApi(e.to_string()))?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(scheduler_api::serve(
        listener,
        scheduler_api::router(state),
        async move {
            let _ = stopped.await;
        },
    ));
    let answer = reqwest::Client::new()
        .get(format!("http://{address}/api/v1/openapi.json"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .and_then(|r| r.error_for_status());
    let document = match answer {
        Ok(response) => response
            .json::<Value>()
            .await
            .map_err(|e| Error::OpenApi(e.to_string())),
        Err(e) => Err(Error::OpenApi(e.to_string())),
    };
    let _ = stop.send(());
    let _ = server.await;
    document
}
