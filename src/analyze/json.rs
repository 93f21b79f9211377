//! Reads the JSON objects some analyzers get ([`Value`]s: Gateway API, KEDA and Kyverno objects,
//! whose CRDs' versions vary), and words what the analyzers find in them.
//!
//! Every reader takes any shape: a field absent or of another type reads as empty.

use serde_json::Value;

use super::{Failure, Snapshot};

/// How many names a failure lists before it says "and N more".
const LISTED: usize = 10;

/// The Warning events about an object, quoted, one failure each.
pub(super) fn warnings(snapshot: &Snapshot, ns: &str, kind: &str, name: &str) -> Vec<Failure> {
    snapshot
        .events_about(ns, kind, name)
        .map(|event| {
            let reason = event.reason.as_deref().unwrap_or("Warning");
            let message = event.message.as_deref().unwrap_or_default().trim();
            Failure::new(format!(
                "{kind} {name} has a warning event {reason}: \"{message}\""
            ))
        })
        .collect()
}

/// The namespace and name of a JSON object (empty when absent).
pub(super) fn json_ns_name(object: &Value) -> (&str, &str) {
    (
        text(object, "/metadata/namespace"),
        text(object, "/metadata/name"),
    )
}

/// The string at `pointer` in a JSON object, or "" when absent or not a string.
pub(super) fn text<'v>(value: &'v Value, pointer: &str) -> &'v str {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// The elements of the array at `pointer`: none when absent or not an array.
pub(super) fn items<'v>(value: &'v Value, pointer: &str) -> impl Iterator<Item = &'v Value> {
    value
        .pointer(pointer)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

/// The status condition of this type.
pub(super) fn condition<'v>(value: &'v Value, kind: &str) -> Option<&'v Value> {
    items(value, "/status/conditions").find(|c| text(c, "/type") == kind)
}

/// A condition's message (or else its reason) as the end of a sentence: ": …", or "".
pub(super) fn detail(condition: &Value) -> String {
    match or(text(condition, "/message"), text(condition, "/reason")).trim() {
        "" => String::new(),
        said => format!(": {said}"),
    }
}

/// `value`, or `default` when it is empty.
pub(super) fn or<'a>(value: &'a str, default: &'a str) -> &'a str {
    if value.is_empty() { default } else { value }
}

/// `a, b, c`, or the first few and "and N more".
pub(super) fn list(names: &[String]) -> String {
    let shown: Vec<&str> = names.iter().take(LISTED).map(String::as_str).collect();
    match names.len().saturating_sub(LISTED) {
        0 => shown.join(", "),
        more => format!("{} and {more} more", shown.join(", ")),
    }
}
