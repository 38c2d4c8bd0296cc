//! The versioned envelope around the state, and schema migrations.
//!
//! A stored document is one JSON object:
//!
//! ```json
//! {"format": "mesos-data-services/state", "version": 2, "framework": "kafka",
//!  "written_at": 1767225600000, "state": { ... }}
//! ```
//!
//! `version` is the schema version of `state` (chosen by the owner of the state type, see
//! [`Schema`]), `written_at` milliseconds since the Unix epoch. Encoding and decoding are
//! pure: no clock, no I/O.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::MigrationError;
use crate::{Error, Result};

/// The `format` value of every state document.
pub const FORMAT: &str = "mesos-data-services/state";

/// Upgrades a `state` payload from one schema version to the next.
pub type Migration = fn(Value) -> Result<Value, MigrationError>;

/// The schema version of the state type and the migrations from older versions.
#[derive(Clone, PartialEq, Eq)]
pub struct Schema {
    version: u32,
    // Keyed by the version a migration upgrades *from* (to `from + 1`).
    migrations: BTreeMap<u32, Migration>,
}

/// A decoded document and what the envelope said about it.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded<T> {
    /// The state, migrated to the current schema.
    pub state: T,
    /// The schema version the document was stored with (before migrations).
    pub stored_version: u32,
    /// When it was written, in milliseconds since the Unix epoch.
    pub written_at_ms: u64,
}

impl Schema {
    /// The current schema `version`, with no migrations: older documents are refused.
    pub fn new(version: u32) -> Schema {
        Schema {
            version,
            migrations: BTreeMap::new(),
        }
    }

    /// Adds the migration that upgrades a payload of version `from` to `from + 1`.
    pub fn with_migration(mut self, from: u32, upgrade: Migration) -> Schema {
        self.migrations.insert(from, upgrade);
        self
    }

    /// The current schema version, written into every saved document.
    pub fn version(&self) -> u32 {
        self.version
    }
}

impl fmt::Debug for Schema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Schema")
            .field("version", &self.version)
            .field(
                "migrations_from",
                &self.migrations.keys().collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// The envelope as written; borrowing keeps saves from cloning the state.
#[derive(Serialize)]
struct EnvelopeRef<'a, T> {
    format: &'static str,
    version: u32,
    framework: &'a str,
    written_at: u64,
    state: &'a T,
}

/// Serializes `state` into an envelope (compact JSON and a final newline).
pub fn encode<T: Serialize>(
    state: &T,
    framework: &str,
    schema: &Schema,
    written_at_ms: u64,
) -> Result<Vec<u8>> {
    let envelope = EnvelopeRef {
        format: FORMAT,
        version: schema.version,
        framework,
        written_at: written_at_ms,
        state,
    };
    let mut bytes = serde_json::to_vec(&envelope).map_err(|source| Error::Encode { source })?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// Checks the envelope in `bytes`, migrates the payload and deserializes it.
///
/// `location` names the file or znode in errors. Checks run in this order, so that each
/// error names the most useful problem: empty, JSON, `format`, `framework`, `version`,
/// migrations, the payload itself.
pub fn decode<T: DeserializeOwned>(
    bytes: &[u8],
    framework: &str,
    schema: &Schema,
    location: &str,
) -> Result<Decoded<T>> {
    let location = || location.to_owned();
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(Error::Empty {
            location: location(),
        });
    }
    let value: Value = serde_json::from_slice(bytes).map_err(|source| Error::InvalidJson {
        location: location(),
        source,
    })?;
    let Value::Object(mut envelope) = value else {
        return Err(Error::UnknownFormat {
            location: location(),
            found: format!("missing (the document is a JSON {})", kind(&value)),
            expected: FORMAT,
        });
    };
    match envelope.get("format") {
        Some(Value::String(format)) if format == FORMAT => {}
        Some(other) => {
            return Err(Error::UnknownFormat {
                location: location(),
                found: other.to_string(),
                expected: FORMAT,
            });
        }
        None => {
            return Err(Error::UnknownFormat {
                location: location(),
                found: "missing".into(),
                expected: FORMAT,
            });
        }
    }
    let malformed = |problem: String| Error::Malformed {
        location: location(),
        problem,
    };
    let found_framework = match envelope.get("framework") {
        Some(Value::String(name)) => name.clone(),
        other => return Err(malformed(field_problem("framework", "a string", other))),
    };
    if found_framework != framework {
        return Err(Error::WrongFramework {
            location: location(),
            found: found_framework,
            expected: framework.to_owned(),
        });
    }
    let stored_version = match envelope.get("version") {
        Some(Value::Number(n)) => n
            .as_u64()
            .and_then(|v| u32::try_from(v).ok())
            .ok_or_else(|| malformed(format!("`version` is {n}, not a schema version")))?,
        other => return Err(malformed(field_problem("version", "a number", other))),
    };
    if stored_version > schema.version {
        return Err(Error::NewerVersion {
            location: location(),
            found: stored_version,
            supported: schema.version,
        });
    }
    let written_at_ms = match envelope.get("written_at") {
        Some(Value::Number(n)) => n
            .as_u64()
            .ok_or_else(|| malformed(format!("`written_at` is {n}, not a time in ms")))?,
        other => return Err(malformed(field_problem("written_at", "a number", other))),
    };
    let mut payload = envelope
        .remove("state")
        .ok_or_else(|| malformed("the `state` field is missing".into()))?;
    for from in stored_version..schema.version {
        let Some(upgrade) = schema.migrations.get(&from) else {
            return Err(Error::NoMigration {
                location: location(),
                found: stored_version,
                missing: from,
                next: from + 1,
            });
        };
        payload = upgrade(payload).map_err(|source| Error::MigrationFailed {
            location: location(),
            from,
            to: from + 1,
            source,
        })?;
        tracing::info!(from, to = from + 1, "state schema migrated");
    }
    let state = serde_json::from_value(payload).map_err(|source| Error::InvalidState {
        location: location(),
        version: schema.version,
        source,
    })?;
    Ok(Decoded {
        state,
        stored_version,
        written_at_ms,
    })
}

/// "`field` is missing" or "`field` is a string, expected a number".
fn field_problem(field: &str, expected: &str, found: Option<&Value>) -> String {
    match found {
        None => format!("the `{field}` field is missing"),
        Some(value) => format!("`{field}` is a {}, expected {expected}", kind(value)),
    }
}

/// The JSON type of `value`, for messages.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use serde_json::json;

    use super::*;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct State {
        framework_id: Option<String>,
        nodes: Vec<String>,
    }

    fn state() -> State {
        State {
            framework_id: Some("fw-1".into()),
            nodes: vec!["broker-0".into(), "broker-1".into()],
        }
    }

    const AT: &str = "/var/lib/kafka/state.json";

    fn decode_state(bytes: &[u8], schema: &Schema) -> Result<Decoded<State>> {
        decode(bytes, "kafka", schema, AT)
    }

    fn document(value: Value) -> Vec<u8> {
        serde_json::to_vec(&value).expect("a JSON value serializes")
    }

    #[test]
    fn round_trip_keeps_state_and_metadata() {
        let schema = Schema::new(3);
        let bytes = encode(&state(), "kafka", &schema, 1_700_000_000_123).expect("encode");
        let value: Value = serde_json::from_slice(&bytes).expect("JSON");
        assert_eq!(value["format"], FORMAT);
        assert_eq!(value["version"], 3);
        assert_eq!(value["framework"], "kafka");
        assert_eq!(value["written_at"], 1_700_000_000_123u64);
        let decoded = decode_state(&bytes, &schema).expect("decode");
        assert_eq!(
            decoded,
            Decoded {
                state: state(),
                stored_version: 3,
                written_at_ms: 1_700_000_000_123,
            }
        );
    }

    #[test]
    fn empty_documents_are_refused() {
        for bytes in [&b""[..], b"  \n"] {
            let err = decode_state(bytes, &Schema::new(1)).expect_err("empty");
            assert!(matches!(err, Error::Empty { .. }), "{err:?}");
            assert!(err.to_string().contains("is empty"), "{err}");
        }
    }

    #[test]
    fn garbage_is_invalid_json() {
        let err = decode_state(b"{\"format\": \"mesos-da", &Schema::new(1)).expect_err("torn");
        assert!(matches!(err, Error::InvalidJson { .. }), "{err:?}");
        let message = err.to_string();
        assert!(
            message.contains(AT) && message.contains("restore a backup"),
            "{message}"
        );
    }

    #[test]
    fn foreign_documents_are_unknown_formats() {
        let other = document(json!({"format": "something-else", "version": 1}));
        let err = decode_state(&other, &Schema::new(1)).expect_err("other format");
        assert!(
            err.to_string().contains("`format` is \"something-else\""),
            "{err}"
        );
        let none = document(json!({"nodes": []}));
        let err = decode_state(&none, &Schema::new(1)).expect_err("no format");
        assert!(err.to_string().contains("`format` is missing"), "{err}");
        let err = decode_state(b"[1, 2]", &Schema::new(1)).expect_err("an array");
        assert!(matches!(err, Error::UnknownFormat { .. }), "{err:?}");
    }

    #[test]
    fn another_frameworks_state_is_refused() {
        let bytes = encode(&state(), "cassandra", &Schema::new(1), 0).expect("encode");
        let err = decode_state(&bytes, &Schema::new(1)).expect_err("wrong framework");
        assert!(
            err.to_string()
                .contains("belongs to framework \"cassandra\", not \"kafka\""),
            "{err}"
        );
    }

    #[test]
    fn newer_versions_are_refused_with_advice() {
        let bytes = encode(&state(), "kafka", &Schema::new(3), 0).expect("encode");
        let err = decode_state(&bytes, &Schema::new(2)).expect_err("newer");
        assert!(
            matches!(
                err,
                Error::NewerVersion {
                    found: 3,
                    supported: 2,
                    ..
                }
            ),
            "{err:?}"
        );
        let message = err.to_string();
        assert!(message.contains("newer version"), "{message}");
        assert!(message.contains("upgrade the scheduler"), "{message}");
    }

    #[test]
    fn damaged_envelopes_name_the_field() {
        let no_version =
            document(json!({"format": FORMAT, "framework": "kafka", "written_at": 0, "state": {}}));
        let err = decode_state(&no_version, &Schema::new(1)).expect_err("no version");
        assert!(
            err.to_string().contains("`version` field is missing"),
            "{err}"
        );
        let text_version = document(
            json!({"format": FORMAT, "framework": "kafka", "version": "2", "written_at": 0, "state": {}}),
        );
        let err = decode_state(&text_version, &Schema::new(1)).expect_err("string version");
        assert!(err.to_string().contains("`version` is a string"), "{err}");
        let no_state = document(
            json!({"format": FORMAT, "framework": "kafka", "version": 1, "written_at": 0}),
        );
        let err = decode_state(&no_state, &Schema::new(1)).expect_err("no state");
        assert!(
            err.to_string().contains("`state` field is missing"),
            "{err}"
        );
    }

    #[test]
    fn a_payload_of_the_wrong_shape_is_invalid_state() {
        let bytes = document(
            json!({"format": FORMAT, "framework": "kafka", "version": 1, "written_at": 0, "state": {"nodes": 7}}),
        );
        let err = decode_state(&bytes, &Schema::new(1)).expect_err("bad payload");
        assert!(
            matches!(err, Error::InvalidState { version: 1, .. }),
            "{err:?}"
        );
    }

    /// Version 1 kept a single `node` string; version 2 keeps a list of `nodes`.
    fn node_to_nodes(mut payload: Value) -> Result<Value, MigrationError> {
        let object = payload
            .as_object_mut()
            .ok_or("the version 1 state is not an object")?;
        let node = object
            .remove("node")
            .ok_or("the version 1 state has no `node`")?;
        object.insert("nodes".into(), Value::Array(vec![node]));
        Ok(payload)
    }

    fn version_1(state: Value) -> Vec<u8> {
        document(
            json!({"format": FORMAT, "framework": "kafka", "version": 1, "written_at": 5, "state": state}),
        )
    }

    #[test]
    fn older_versions_are_migrated() {
        let schema = Schema::new(2).with_migration(1, node_to_nodes);
        let bytes = version_1(json!({"framework_id": null, "node": "broker-0"}));
        let decoded = decode_state(&bytes, &schema).expect("migrated");
        assert_eq!(decoded.stored_version, 1);
        assert_eq!(
            decoded.state,
            State {
                framework_id: None,
                nodes: vec!["broker-0".into()],
            }
        );
    }

    #[test]
    fn a_failing_migration_is_reported() {
        let schema = Schema::new(2).with_migration(1, node_to_nodes);
        let err =
            decode_state(&version_1(json!({"framework_id": null})), &schema).expect_err("no node");
        assert!(
            matches!(err, Error::MigrationFailed { from: 1, to: 2, .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("has no `node`"), "{err}");
    }

    #[test]
    fn a_missing_migration_is_reported() {
        let schema = Schema::new(3).with_migration(1, node_to_nodes);
        let err = decode_state(&version_1(json!({"node": "broker-0"})), &schema)
            .expect_err("no migration from 2");
        assert!(
            matches!(
                err,
                Error::NoMigration {
                    found: 1,
                    missing: 2,
                    next: 3,
                    ..
                }
            ),
            "{err:?}"
        );
    }
}
