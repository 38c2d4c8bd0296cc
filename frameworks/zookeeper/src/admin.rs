//! Talking to the servers: four-letter words over TCP, and the ensemble's
//! configuration through an authorised ZooKeeper session.
//!
//! Reconfiguration needs a privileged session: the framework authenticates as
//! ZooKeeper's `super` user (digest scheme), whose password digest each server
//! is started with. Nothing here decides; [`crate::ensemble`] does.

use std::{collections::BTreeMap, time::Duration};

use futures::future::join_all;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use zookeeper_client as zk;

use crate::{
    ensemble::{self, Mode},
    error::{Error, Result},
};

/// Sends a four-letter word to `server` (`host:port`) and reads the whole answer.
pub async fn four_letter(server: &str, word: &'static str, timeout: Duration) -> Result<String> {
    let failed = |source| Error::FourLetterWord {
        word,
        server: server.to_owned(),
        source,
    };
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(server).await?;
        stream.write_all(word.as_bytes()).await?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await?;
        Ok::<_, std::io::Error>(answer)
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| {
            failed(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "no answer in time",
            ))
        })?
        .map_err(failed)
}

/// The mode of each server that answers `srvr` and serves, by myid; the
/// others are left out.
pub async fn modes(servers: &[(u8, String)], timeout: Duration) -> BTreeMap<u8, Mode> {
    let asks = servers.iter().map(|(id, endpoint)| async move {
        let answer = four_letter(endpoint, "srvr", timeout).await;
        match answer {
            Ok(text) => ensemble::parse_mode(&text).map(|mode| (*id, mode)),
            Err(error) => {
                tracing::debug!(server = id, error = %error, "srvr unanswered");
                None
            }
        }
    });
    join_all(asks).await.into_iter().flatten().collect()
}

/// An authorised session with the ensemble.
pub struct Admin {
    client: zk::Client,
}

impl Admin {
    /// Opens a session with `connect`, authenticated as `super`.
    pub async fn connect(connect: &str, super_password: &str, timeout: Duration) -> Result<Self> {
        let connector = zk::Client::connector()
            .with_session_timeout(Duration::from_secs(10))
            .with_auth("digest", format!("super:{super_password}").as_bytes());
        let client = tokio::time::timeout(timeout, connector.connect(connect))
            .await
            .map_err(|_| zk::Error::Timeout)
            .and_then(|c| c)
            .map_err(|source| Error::Connect {
                connect: connect.to_owned(),
                source,
            })?;
        Ok(Admin { client })
    }

    /// The committed configuration's `server.N` entries.
    pub async fn committed(&self) -> Result<BTreeMap<u8, String>> {
        let (data, _) = self
            .client
            .get_config()
            .await
            .map_err(|source| Error::Request {
                operation: "reading /zookeeper/config".into(),
                source,
            })?;
        Ok(ensemble::parse_config(&String::from_utf8_lossy(&data)))
    }

    /// Adds (or re-addresses) servers and takes others out, in one
    /// incremental reconfiguration; returns the new configuration.
    pub async fn reconfigure(
        &self,
        joining: &[String],
        leaving: &[u8],
    ) -> Result<BTreeMap<u8, String>> {
        let joinings: Vec<&str> = joining.iter().map(String::as_str).collect();
        let leaving_ids: Vec<String> = leaving.iter().map(u8::to_string).collect();
        let leavings: Vec<&str> = leaving_ids.iter().map(String::as_str).collect();
        let operation = format!("reconfig (add {:?}, remove {:?})", joinings, leaving_ids);
        let (data, _) = self
            .client
            .update_ensemble(
                zk::EnsembleUpdate::Incremental {
                    joinings: joinings.iter().copied(),
                    leavings: leavings.iter().copied(),
                },
                None,
            )
            .await
            .map_err(|source| Error::Request { operation, source })?;
        Ok(ensemble::parse_config(&String::from_utf8_lossy(&data)))
    }
}
