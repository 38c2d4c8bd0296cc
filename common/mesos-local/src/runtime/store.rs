//! The state directory: per agent, its ID and checkpointed resources
//! (`<state>/agents/<name>/agent.json`), written atomically.

use std::path::{Path, PathBuf};

use mesos_proto::codec::{from_json_value, to_json_value};
use mesos_proto::v1::Resource;
use serde_json::json;

use crate::core::PersistedAgent;
use crate::error::{Error, Result};

/// The agent's work directory.
pub fn agent_dir(state_dir: &Path, name: &str) -> PathBuf {
    state_dir.join("agents").join(name)
}

fn file(state_dir: &Path, name: &str) -> PathBuf {
    agent_dir(state_dir, name).join("agent.json")
}

/// Writes an agent's persisted state.
pub fn save(state_dir: &Path, name: &str, state: &PersistedAgent) -> Result<()> {
    let path = file(state_dir, name);
    let dir = agent_dir(state_dir, name);
    std::fs::create_dir_all(&dir).map_err(|source| Error::Io {
        what: "create",
        path: dir.clone(),
        source,
    })?;
    let body = json!({
        "agent_id": state.agent_id,
        "checkpointed": state.checkpointed.iter().map(to_json_value).collect::<Vec<_>>(),
    });
    let tmp = path.with_extension("json.tmp");
    let text = serde_json::to_vec_pretty(&body).unwrap_or_default();
    std::fs::write(&tmp, text).map_err(|source| Error::Io {
        what: "write",
        path: tmp.clone(),
        source,
    })?;
    std::fs::rename(&tmp, &path).map_err(|source| Error::Io {
        what: "rename into place",
        path: path.clone(),
        source,
    })
}

/// Reads an agent's persisted state; nothing for a fresh agent.
pub fn load(state_dir: &Path, name: &str) -> Result<PersistedAgent> {
    let path = file(state_dir, name);
    let text = match std::fs::read(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(PersistedAgent::default()),
        Err(source) => {
            return Err(Error::Io {
                what: "read",
                path,
                source,
            });
        }
    };
    let bad = |message: String| Error::State {
        path: path.clone(),
        message,
    };
    let value: serde_json::Value =
        serde_json::from_slice(&text).map_err(|e| bad(format!("not JSON: {e}")))?;
    let agent_id = value["agent_id"].as_str().map(str::to_owned);
    let mut checkpointed = Vec::new();
    for item in value["checkpointed"]
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        let r: Resource = from_json_value(item).map_err(|e| bad(format!("bad resource: {e}")))?;
        checkpointed.push(r);
    }
    Ok(PersistedAgent {
        agent_id,
        checkpointed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(
            load(dir.path(), "a").expect("empty"),
            PersistedAgent::default()
        );
        let state = PersistedAgent {
            agent_id: Some("m-S0".into()),
            checkpointed: vec![crate::resources::scalar("cpus", 1.5)],
        };
        save(dir.path(), "a", &state).expect("save");
        assert_eq!(load(dir.path(), "a").expect("load"), state);
        std::fs::write(file(dir.path(), "a"), "{").expect("write");
        assert!(matches!(load(dir.path(), "a"), Err(Error::State { .. })));
    }
}
