//! Encoding and decoding in both content types Mesos accepts.
//!
//! JSON follows Mesos' own mapping (stout's protobuf ↔ JSON), not proto3's
//! canonical JSON: snake_case proto field names, enum values by name, `bytes`
//! as standard base64, and 64-bit integers as JSON numbers. On input, unknown
//! keys and unknown enum names are dropped (as Mesos drops them) and numeric
//! strings are accepted for numbers. In both forms a message that lacks a
//! required field is rejected, as Mesos rejects it ("Not initialized").

use prost_reflect::{DeserializeOptions, DynamicMessage, ReflectMessage, SerializeOptions, Value};

/// `Content-Type` of the protobuf form.
pub const PROTOBUF: &str = "application/x-protobuf";
/// `Content-Type` of the JSON form.
pub const JSON: &str = "application/json";

/// The two media types of the Mesos v1 HTTP APIs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ContentType {
    /// `application/x-protobuf`: binary protobuf.
    Protobuf,
    /// `application/json`: Mesos' JSON mapping.
    Json,
}

impl ContentType {
    /// The exact header value; Mesos compares it as a plain string.
    pub fn as_str(self) -> &'static str {
        match self {
            ContentType::Protobuf => PROTOBUF,
            ContentType::Json => JSON,
        }
    }

    /// Parses a `Content-Type` header value the way Mesos does: an exact match only.
    pub fn from_header(value: &str) -> Option<Self> {
        match value {
            PROTOBUF => Some(ContentType::Protobuf),
            JSON => Some(ContentType::Json),
            _ => None,
        }
    }
}

impl std::fmt::Display for ContentType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why bytes could not be decoded into a message.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The bytes are not a valid protobuf encoding of the message; retrying will not help.
    #[error("invalid protobuf for {message}: {source}")]
    Protobuf {
        /// Full name of the expected message.
        message: String,
        /// What the protobuf decoder reported.
        #[source]
        source: prost::DecodeError,
    },
    /// The bytes are not JSON, or the JSON does not fit the message's schema.
    #[error("invalid JSON for {message}: {source}")]
    Json {
        /// Full name of the expected message.
        message: String,
        /// What the JSON parser reported.
        #[source]
        source: serde_json::Error,
    },
    /// The message parsed but lacks required fields (Mesos: "Not initialized").
    #[error("{message} is missing required field(s): {}", .fields.join(", "))]
    MissingRequired {
        /// Full name of the message.
        message: String,
        /// Dotted paths of the missing fields, e.g. `subscribe.framework_info.user`.
        fields: Vec<String>,
    },
}

fn serialize_options() -> SerializeOptions {
    SerializeOptions::new()
        .use_proto_field_name(true)
        .stringify_64_bit_integers(false)
        .use_enum_numbers(false)
        // proto2 fields have presence, so this only skips unset fields;
        // a field set to its default value is still written, as Mesos does.
        .skip_default_fields(true)
}

fn deserialize_options() -> DeserializeOptions {
    DeserializeOptions::new().deny_unknown_fields(false)
}

/// Encodes a message in the given content type.
pub fn encode<M: ReflectMessage>(message: &M, content_type: ContentType) -> Vec<u8> {
    match content_type {
        ContentType::Protobuf => message.encode_to_vec(),
        ContentType::Json => to_json_vec(message),
    }
}

/// Decodes a message from the given content type, rejecting missing required fields.
pub fn decode<M: ReflectMessage + Default>(
    bytes: &[u8],
    content_type: ContentType,
) -> Result<M, DecodeError> {
    match content_type {
        ContentType::Protobuf => from_protobuf(bytes),
        ContentType::Json => from_json_slice(bytes),
    }
}

/// Decodes binary protobuf, rejecting missing required fields.
pub fn from_protobuf<M: ReflectMessage + Default>(bytes: &[u8]) -> Result<M, DecodeError> {
    let descriptor = M::default().descriptor();
    let protobuf_error = |source| DecodeError::Protobuf {
        message: descriptor.full_name().to_owned(),
        source,
    };
    // Presence of required fields is only visible in the dynamic form: the
    // generated struct stores them without an Option.
    let dynamic = DynamicMessage::decode(descriptor.clone(), bytes).map_err(protobuf_error)?;
    check_required(&dynamic)?;
    M::decode(bytes).map_err(protobuf_error)
}

/// Renders a message as a JSON value in Mesos' form.
pub fn to_json_value<M: ReflectMessage>(message: &M) -> serde_json::Value {
    let dynamic = message.transcode_to_dynamic();
    // Serializing a DynamicMessage into a serde_json::Value cannot fail: every
    // map key is a string and every float is written as a number or a string.
    dynamic
        .serialize_with_options(serde_json::value::Serializer, &serialize_options())
        .unwrap_or(serde_json::Value::Null)
}

/// Renders a message as JSON bytes in Mesos' form.
pub fn to_json_vec<M: ReflectMessage>(message: &M) -> Vec<u8> {
    let mut out = Vec::new();
    let mut serializer = serde_json::Serializer::new(&mut out);
    let dynamic = message.transcode_to_dynamic();
    // Writing into a Vec cannot fail, and the message always serializes (see above).
    let _ = dynamic.serialize_with_options(&mut serializer, &serialize_options());
    out
}

/// Parses JSON in Mesos' form, rejecting missing required fields.
pub fn from_json_slice<M: ReflectMessage + Default>(bytes: &[u8]) -> Result<M, DecodeError> {
    let descriptor = M::default().descriptor();
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let dynamic = DynamicMessage::deserialize_with_options(
        descriptor.clone(),
        &mut deserializer,
        &deserialize_options(),
    )
    .and_then(|dynamic| deserializer.end().map(|()| dynamic))
    .map_err(|source| DecodeError::Json {
        message: descriptor.full_name().to_owned(),
        source,
    })?;
    finish_dynamic(dynamic)
}

/// Parses a JSON value in Mesos' form, rejecting missing required fields.
pub fn from_json_value<M: ReflectMessage + Default>(
    value: serde_json::Value,
) -> Result<M, DecodeError> {
    let descriptor = M::default().descriptor();
    let dynamic =
        DynamicMessage::deserialize_with_options(descriptor.clone(), value, &deserialize_options())
            .map_err(|source| DecodeError::Json {
                message: descriptor.full_name().to_owned(),
                source,
            })?;
    finish_dynamic(dynamic)
}

fn finish_dynamic<M: ReflectMessage + Default>(dynamic: DynamicMessage) -> Result<M, DecodeError> {
    check_required(&dynamic)?;
    dynamic
        .transcode_to::<M>()
        .map_err(|source| DecodeError::Protobuf {
            message: dynamic.descriptor().full_name().to_owned(),
            source,
        })
}

fn check_required(message: &DynamicMessage) -> Result<(), DecodeError> {
    let mut missing = Vec::new();
    collect_missing(message, "", &mut missing);
    if missing.is_empty() {
        Ok(())
    } else {
        Err(DecodeError::MissingRequired {
            message: message.descriptor().full_name().to_owned(),
            fields: missing,
        })
    }
}

fn collect_missing(message: &DynamicMessage, prefix: &str, missing: &mut Vec<String>) {
    for field in message.descriptor().fields() {
        let path = format!("{prefix}{}", field.name());
        if field.cardinality() == prost_reflect::Cardinality::Required && !message.has_field(&field)
        {
            missing.push(path);
            continue;
        }
        if !message.has_field(&field) {
            continue;
        }
        match &*message.get_field(&field) {
            Value::Message(inner) => collect_missing(inner, &format!("{path}."), missing),
            Value::List(items) => {
                for (index, item) in items.iter().enumerate() {
                    if let Value::Message(inner) = item {
                        collect_missing(inner, &format!("{path}[{index}]."), missing);
                    }
                }
            }
            Value::Map(entries) => {
                for (key, item) in entries {
                    if let Value::Message(inner) = item {
                        collect_missing(inner, &format!("{path}[{key:?}]."), missing);
                    }
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v1::{self, scheduler};

    #[test]
    fn missing_required_fields_are_named() {
        let json = br#"{"type":"SUBSCRIBE","subscribe":{"framework_info":{"name":"x"}}}"#;
        let error = from_json_slice::<scheduler::Call>(json).expect_err("user is required");
        match error {
            DecodeError::MissingRequired { fields, .. } => {
                assert_eq!(fields, vec!["subscribe.framework_info.user".to_owned()]);
            }
            other => panic!("unexpected error {other}"),
        }
        // The same message in protobuf form is rejected the same way.
        let bytes = [0x10, 0x01, 0x1a, 0x05, 0x0a, 0x03, 0x12, 0x01, b'x'];
        assert!(matches!(
            from_protobuf::<scheduler::Call>(&bytes),
            Err(DecodeError::MissingRequired { .. })
        ));
    }

    #[test]
    fn input_is_lenient_as_mesos_is() {
        // Unknown keys and unknown enum names in optional fields are dropped;
        // 64-bit numbers may come as strings.
        let json = br#"{"type":"NOT_A_TYPE","camelCase":1,
            "kill":{"task_id":{"value":"t"},"kill_policy":{"grace_period":{"nanoseconds":"5000"}}}}"#;
        let call: scheduler::Call = from_json_slice(json).expect("lenient parse");
        assert_eq!(call.r#type, None);
        let kill = call.kill.expect("kill payload");
        assert_eq!(
            kill.kill_policy
                .and_then(|p| p.grace_period)
                .map(|d| d.nanoseconds),
            Some(5000)
        );
    }

    #[test]
    fn output_uses_mesos_json_mapping() {
        let status = v1::TaskStatus {
            task_id: v1::TaskId { value: "t".into() },
            state: v1::TaskState::TaskStarting as i32,
            uuid: Some(vec![0xff, 0x00]),
            ..Default::default()
        };
        let json = to_json_value(&status);
        // Required zero values are written; bytes are base64; enums by name.
        assert_eq!(json["state"], "TASK_STARTING");
        assert_eq!(json["uuid"], "/wA=");
        let duration = v1::DurationInfo {
            nanoseconds: i64::MAX,
        };
        assert_eq!(to_json_value(&duration)["nanoseconds"], i64::MAX);
    }

    #[test]
    fn content_type_is_matched_exactly() {
        assert_eq!(
            ContentType::from_header("application/json"),
            Some(ContentType::Json)
        );
        assert_eq!(
            ContentType::from_header("application/json; charset=utf-8"),
            None
        );
        assert_eq!(
            ContentType::from_header(ContentType::Protobuf.as_str()),
            Some(ContentType::Protobuf)
        );
    }
}
