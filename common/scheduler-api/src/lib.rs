//! The scheduler's REST API and artifact server, shared by every framework.
//!
//! [`router`] builds an axum `Router` over an [`ApiState`]: the runtime's
//! handle (reads come from its published snapshots, changes go to it as
//! commands — the runtime stays the one writer), the framework's name and the
//! noun of its nodes (`broker`, `server`, `node`), an optional bearer token
//! and the registered [`Artifacts`].
//!
//! Routes (JSON everywhere; the route word is `nodes` for every framework,
//! messages use the service's noun):
//!
//! | route | what |
//! | --- | --- |
//! | `GET /health` | 200 while healthy (also while waiting for a master), 503 after a fatal error |
//! | `GET /metrics` | Prometheus text format |
//! | `GET /api/v1/openapi.json` | OpenAPI 3.1 document of every route |
//! | `GET/POST /api/v1/nodes`, `GET/PATCH/DELETE /api/v1/nodes/{ids}` | list, add, show, update, remove |
//! | `POST /api/v1/nodes/{ids}/start\|stop\|restart\|replace` | lifecycle and plans |
//! | `GET /api/v1/nodes/{id}/explain\|log`, `POST /api/v1/nodes/{id}/admin/{name}` | diagnosis |
//! | `GET /api/v1/plans[/{id}]`, `POST /api/v1/plans/{id}/pause\|resume\|abort` | plans |
//! | `GET /api/v1/endpoints`, `GET /api/v1/state` | client endpoints, raw snapshot |
//! | `GET /artifacts/{name}[.sha256]` | executor binary and service tarballs |
//!
//! `{ids}` takes ID expressions ([`ids`]). With a token configured, every
//! route but `/health` and `/artifacts/…` needs `Authorization: Bearer`;
//! artifacts stay open because the Mesos fetcher cannot send headers.
//!
//! It does not decide anything: validation of configurations, plans and
//! placement belong to the runtime and the service; the API only parses,
//! resolves ID expressions against the latest snapshot and maps refusals to
//! status codes ([`ApiError`]).
//!
//! Modules: [`ids`] (ID expressions), [`model`] (request and response
//! documents, shared with the CLI), [`error`], [`artifacts`], and, with the
//! `testing` feature, `testing` (a stand-in runtime for component tests).

pub mod artifacts;
pub mod error;
pub mod ids;
mod metrics;
pub mod model;
mod openapi;
mod routes;
#[cfg(feature = "testing")]
pub mod testing;

use std::{future::Future, sync::Arc};

use scheduler_core::node::RelaunchPolicy;
use scheduler_runtime::RuntimeHandle;
use tokio::{net::TcpListener, sync::Semaphore};

pub use artifacts::{ArtifactFile, Artifacts};
pub use error::ApiError;
pub use ids::IdExpr;
pub use routes::router;

/// What the API serves from: the runtime and the framework's settings.
#[derive(Clone, Debug)]
pub struct ApiState {
    runtime: RuntimeHandle,
    name: Arc<str>,
    noun: Arc<str>,
    token: Option<Arc<str>>,
    policy: RelaunchPolicy,
    artifacts: Arc<Artifacts>,
    transfers: Arc<Semaphore>,
}

/// Artifact downloads served at once; further ones wait for a free slot.
/// Every agent of a deploy fetches at the same moment, and each transfer
/// holds buffers and a blocking-pool thread: 100 at once made the
/// scheduler's heap peak at 11 MB, and the allocator kept that resident.
pub const CONCURRENT_TRANSFERS: usize = 8;

impl ApiState {
    /// The API of framework `name` whose nodes are called `noun`.
    pub fn new(runtime: RuntimeHandle, name: &str, noun: &str) -> Self {
        ApiState {
            runtime,
            name: name.into(),
            noun: noun.into(),
            token: None,
            policy: RelaunchPolicy::default(),
            artifacts: Arc::new(Artifacts::new()),
            transfers: Arc::new(Semaphore::new(CONCURRENT_TRANSFERS)),
        }
    }

    /// Requires `Authorization: Bearer <token>` on every route but `/health`
    /// and the artifacts (an empty or absent token turns auth off).
    pub fn with_token(mut self, token: Option<String>) -> Self {
        self.token = token.filter(|t| !t.is_empty()).map(Into::into);
        self
    }

    /// The relaunch policy the runtime uses, so that node stages (e.g.
    /// `failed`) are derived the same way.
    pub fn with_policy(mut self, policy: RelaunchPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The files served under `/artifacts/`.
    pub fn with_artifacts(mut self, artifacts: Artifacts) -> Self {
        self.artifacts = Arc::new(artifacts);
        self
    }

    /// What one node is called.
    pub fn noun(&self) -> &str {
        &self.noun
    }

    /// The framework's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// Serves `router` on an already bound listener until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    router: axum::Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ApiError> {
    if let Ok(address) = listener.local_addr() {
        tracing::info!(%address, "API listening");
    }
    // Handlers are turned into routes once here: served as a plain `Router`,
    // axum rebuilds its route tables for every connection (about 10 KB each,
    // times every agent fetching artifacts at once during a deploy).
    axum::serve(listener, router.with_state(()).into_make_service())
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(ApiError::Serve)
}
