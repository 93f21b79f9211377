//! Reads typed tool arguments out of a `tools/call` arguments object, with messages a person can act on.

use serde_json::{Map, Value};

use super::ToolError;

/// Reads an optional string argument; an empty string counts as absent (as k8sgpt treats it).
pub fn optional_string(
    tool: &'static str,
    args: &Map<String, Value>,
    name: &str,
) -> Result<Option<String>, ToolError> {
    match args.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(ToolError::InvalidArguments {
            tool,
            message: format!("`{name}` must be a string, not {}", json_type(other)),
        }),
    }
}

/// Reads a string argument that must be present and non-empty.
pub fn required_string(
    tool: &'static str,
    args: &Map<String, Value>,
    name: &str,
) -> Result<String, ToolError> {
    optional_string(tool, args, name)?.ok_or_else(|| ToolError::InvalidArguments {
        tool,
        message: format!("`{name}` is required"),
    })
}

/// Checks a namespace name (an RFC 1123 label), so that garbage never reaches Kubernetes.
pub fn namespace(tool: &'static str, value: Option<String>) -> Result<Option<String>, ToolError> {
    match value {
        Some(ns) if !is_dns_label(&ns) => Err(ToolError::InvalidArguments {
            tool,
            message: format!(
                "`namespace` {ns:?} is not a namespace name (lowercase letters, digits and '-', \
                 starting and ending with a letter or digit, at most 63 characters)"
            ),
        }),
        other => Ok(other),
    }
}

/// An RFC 1123 label: what Kubernetes accepts as a namespace name.
pub fn is_dns_label(s: &str) -> bool {
    let bytes = s.as_bytes();
    let edge_ok = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    !bytes.is_empty()
        && bytes.len() <= 63
        && edge_ok(bytes[0])
        && edge_ok(bytes[bytes.len() - 1])
        && bytes.iter().all(|&b| edge_ok(b) || b == b'-')
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn args(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn namespace_names_follow_rfc_1123() {
        assert!(is_dns_label("team-a"));
        assert!(is_dns_label("a"));
        assert!(!is_dns_label(""));
        assert!(!is_dns_label("-a"));
        assert!(!is_dns_label("a-"));
        assert!(!is_dns_label("Team"));
        assert!(!is_dns_label("a/b"));
        assert!(!is_dns_label("../kube-system"));
        assert!(!is_dns_label(&"a".repeat(64)));
        assert!(is_dns_label(&"a".repeat(63)));
    }

    #[test]
    fn empty_strings_count_as_absent_and_wrong_types_are_named() {
        let a = args(json!({"namespace": "", "n": 5, "s": "x"}));
        assert_eq!(optional_string("t", &a, "namespace").ok(), Some(None));
        assert_eq!(optional_string("t", &a, "s").ok(), Some(Some("x".into())));
        let err = optional_string("t", &a, "n").err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("invalid arguments for `t`: `n` must be a string, not a number")
        );
        let err = required_string("t", &a, "missing")
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("invalid arguments for `t`: `missing` is required")
        );
    }
}
