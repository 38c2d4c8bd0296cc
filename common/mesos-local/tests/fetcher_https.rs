//! The fetcher over https: URIs served by a server whose certificate
//! authority the cluster trusts are fetched, others fail the launch with the
//! certificate problem named, and an unusable CA file stops the cluster from
//! starting.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use common::*;
use mesos_local::{AgentConfig, ClusterConfig, LocalCluster};
use mesos_proto::ContentType;
use mesos_proto::v1::{TaskState, task_status::Reason};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::{self, pki_types::PrivateKeyDer};

const ROLE: &str = "svc";

/// Accepts TLS connections, skipping the ones whose handshake fails (a
/// client that does not trust the certificate hangs up during it).
struct TlsListener {
    tcp: TcpListener,
    acceptor: TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((tcp, addr)) = self.tcp.accept().await else {
                continue;
            };
            if let Ok(tls) = self.acceptor.accept(tcp).await {
                return (tls, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.tcp.local_addr()
    }
}

/// Serves the test executor at `https://ADDR/mesos-local-test-executor` with
/// a certificate for 127.0.0.1 issued by `issuer`.
async fn serve_executor(issuer: &Issuer<'_, KeyPair>) -> anyhow::Result<SocketAddr> {
    let key = KeyPair::generate()?;
    let certificate =
        CertificateParams::new(vec!["127.0.0.1".to_owned()])?.signed_by(&key, issuer)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(
            vec![certificate.der().clone()],
            PrivateKeyDer::try_from(key.serialize_der()).map_err(anyhow::Error::msg)?,
        )?;
    let binary = std::fs::read(env!("CARGO_BIN_EXE_mesos-local-test-executor"))?;
    let app = axum::Router::new().route(
        "/mesos-local-test-executor",
        axum::routing::get(move || {
            let binary = binary.clone();
            async move { binary }
        }),
    );
    let listener = TlsListener {
        tcp: TcpListener::bind("127.0.0.1:0").await?,
        acceptor: TlsAcceptor::from(Arc::new(config)),
    };
    let address = axum::serve::Listener::local_addr(&listener)?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(address)
}

/// A certificate authority: its issuer and its certificate in PEM.
fn authority(name: &str) -> anyhow::Result<(Issuer<'static, KeyPair>, String)> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    let certificate = params.self_signed(&key)?;
    Ok((Issuer::new(params, key), certificate.pem()))
}

fn config(ca_file: std::path::PathBuf) -> ClusterConfig {
    let mut config = ClusterConfig::with_agents(1);
    config.first_agent_ip = test_support::ports::agent_block();
    config.allocation_interval = Duration::from_millis(100);
    config.executor_registration_timeout = Duration::from_secs(5);
    config.status_update_retry_interval = Duration::from_millis(300);
    config.agents[0] = AgentConfig {
        resources: "cpus:2;mem:1024;disk:1000;ports:[31000-31009]".into(),
        ..AgentConfig::default()
    };
    config.fetcher_ca_certs = vec![ca_file];
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_uris_are_fetched_from_servers_the_agents_trust() -> anyhow::Result<()> {
    logs();
    let dir = tempfile::tempdir()?;
    let (trusted, trusted_pem) = authority("trusted test CA")?;
    let (unknown, _) = authority("unknown test CA")?;
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, trusted_pem)?;
    let good = serve_executor(&trusted).await?;
    let bad = serve_executor(&unknown).await?;

    let cluster = LocalCluster::start(config(ca_file)).await?;
    let mut s = Sched::subscribe(
        &cluster.master_url(),
        framework("https", ROLE, true),
        ContentType::Json,
    )
    .await?;
    for (task_id, server) in [("t-trusted", good), ("t-unknown", bad)] {
        let offers = s.offers().await?;
        let mut executor = test_executor(
            &format!("exec-{task_id}"),
            &s.fid(),
            vec![allocated(scalar("cpus", 0.1), ROLE)],
        );
        let command = executor.command.as_mut().context("a command")?;
        command.uris[0].value = format!("https://{server}/mesos-local-test-executor");
        let t = task(
            task_id,
            &offers[0].agent_id,
            vec![allocated(scalar("cpus", 0.1), ROLE)],
            executor,
            "",
        );
        s.accept(&offers[..1], vec![op_launch(vec![t])]).await?;
    }
    let running = s.update("t-trusted").await?;
    assert_eq!(running.state(), TaskState::TaskRunning, "{running:?}");
    let failed = s.update("t-unknown").await?;
    assert_eq!(
        (failed.state(), failed.reason()),
        (TaskState::TaskFailed, Reason::ContainerLaunchFailed)
    );
    assert!(
        failed.message().contains("certificate"),
        "the message names the certificate problem: {:?}",
        failed.message
    );
    cluster.shutdown().await;

    // A CA file that is missing or holds no certificate: the cluster does not start.
    let missing = LocalCluster::start(config(dir.path().join("none.pem"))).await;
    let error = missing.err().context("a missing CA file is refused")?;
    assert!(error.to_string().contains("none.pem"), "{error}");
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "not a certificate\n")?;
    let error = LocalCluster::start(config(empty))
        .await
        .err()
        .context("a CA file without certificates is refused")?;
    assert!(
        error.to_string().contains("holds no certificate"),
        "{error}"
    );
    Ok(())
}
