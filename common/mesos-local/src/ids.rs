//! Identifier and role rules, and Mesos' duration notation.

use std::time::Duration;

/// Validates a task, executor, framework or persistence ID as Mesos does.
pub fn validate_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("ID must not be empty".into());
    }
    if id.len() > 255 {
        return Err("ID must not be greater than 255 characters".into());
    }
    if id == "." || id == ".." {
        return Err(format!("'{id}' is disallowed"));
    }
    if id.chars().any(|c| c.is_control() || c == '/' || c == '\\') {
        return Err(format!("'{id}' contains invalid characters"));
    }
    Ok(())
}

/// Validates a role name (`src/common/roles.cpp` rules).
pub fn validate_role(role: &str) -> Result<(), String> {
    if role == "*" {
        return Ok(());
    }
    if role.is_empty() {
        return Err("Empty role name is invalid".into());
    }
    if role.starts_with('/') {
        return Err(format!("Role '{role}' cannot start with a slash"));
    }
    if role.ends_with('/') {
        return Err(format!("Role '{role}' cannot end with a slash"));
    }
    for component in role.split('/') {
        if component.is_empty() {
            return Err(format!("Role '{role}' cannot contain two adjacent slashes"));
        }
        if component == "." || component == ".." || component == "*" {
            return Err(format!(
                "Role '{role}' cannot contain '{component}' as a component"
            ));
        }
        if component.starts_with('-') {
            return Err(format!(
                "Role component '{component}' is invalid because it starts with a dash"
            ));
        }
        if component
            .chars()
            .any(|c| c.is_whitespace() || c == '\u{8}' || c.is_control())
        {
            return Err(format!(
                "Role component '{component}' is invalid because it contains \
                 backspace or whitespace"
            ));
        }
    }
    Ok(())
}

/// Renders a duration as Mesos' stout does: the largest unit in which the
/// value is at least one, e.g. `5secs`, `15mins`, `1.5mins`, `100ms`.
pub fn format_duration(d: Duration) -> String {
    let ns = d.as_nanos() as f64;
    const UNITS: [(&str, f64); 8] = [
        ("weeks", 7.0 * 24.0 * 3600e9),
        ("days", 24.0 * 3600e9),
        ("hrs", 3600e9),
        ("mins", 60e9),
        ("secs", 1e9),
        ("ms", 1e6),
        ("us", 1e3),
        ("ns", 1.0),
    ];
    for (unit, size) in UNITS {
        if ns >= size {
            return format!("{}{unit}", trim_number(ns / size));
        }
    }
    "0ns".to_owned()
}

fn trim_number(v: f64) -> String {
    let text = format!("{v:.6}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    text.to_owned()
}

/// True when `bytes` is an RFC 4122 UUID as Mesos' `UUID::fromBytes` accepts it.
pub fn is_valid_uuid(bytes: &[u8]) -> bool {
    match uuid::Uuid::from_slice(bytes) {
        Ok(u) => !matches!(u.get_version(), None | Some(uuid::Version::Nil)),
        Err(_) => false,
    }
}

/// Mesos' error text for bytes that are not a UUID.
pub fn uuid_error(bytes: &[u8]) -> String {
    if bytes.len() != 16 {
        format!("Invalid UUID: expected 16 bytes, got {}", bytes.len())
    } else {
        "Not a valid UUID".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert!(validate_id("task-1").is_ok());
        assert!(validate_id("").is_err());
        assert!(validate_id("a/b").is_err());
        assert!(validate_id("..").is_err());
        assert!(validate_id(&"x".repeat(256)).is_err());
    }

    #[test]
    fn roles() {
        for ok in ["*", "kafka", "eng/backend", "a.b"] {
            assert!(validate_role(ok).is_ok(), "{ok}");
        }
        for bad in ["", "/a", "a/", "a//b", "a/./b", "-a", "a b", "a/*"] {
            assert!(validate_role(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(format_duration(Duration::from_secs(5)), "5secs");
        assert_eq!(format_duration(Duration::from_secs(900)), "15mins");
        assert_eq!(format_duration(Duration::from_secs(90)), "1.5mins");
        assert_eq!(format_duration(Duration::from_millis(100)), "100ms");
    }

    #[test]
    fn uuids() {
        assert!(is_valid_uuid(uuid::Uuid::new_v4().as_bytes()));
        assert!(!is_valid_uuid(&[0; 16]));
        assert!(!is_valid_uuid(b"short"));
    }
}
