//! Matches labels against label selectors as the API server does, and writes selectors as
//! `kubectl` does.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use super::Labels;

/// Whether `selector` selects an object with `labels`, as the API server decides: every
/// `matchLabels` pair and every `matchExpressions` requirement holds, so the empty selector
/// selects everything.
pub(super) fn selects(selector: &LabelSelector, labels: Option<&Labels>) -> bool {
    let value = |key: &str| labels.and_then(|l| l.get(key));
    let pairs = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| value(k) == Some(v));
    pairs
        && selector.match_expressions.iter().flatten().all(|r| {
            let values = r.values.as_deref().unwrap_or_default();
            match r.operator.as_str() {
                "In" => value(&r.key).is_some_and(|v| values.contains(v)),
                "NotIn" => value(&r.key).is_none_or(|v| !values.contains(v)),
                "Exists" => value(&r.key).is_some(),
                "DoesNotExist" => value(&r.key).is_none(),
                // The API server accepts no other operator; a selector it would refuse selects
                // nothing rather than everything.
                _ => false,
            }
        })
}

/// Whether `selector` is the empty one, which selects everything.
pub(super) fn selects_all(selector: &LabelSelector) -> bool {
    selector.match_labels.as_ref().is_none_or(|m| m.is_empty())
        && selector
            .match_expressions
            .as_ref()
            .is_none_or(|e| e.is_empty())
}

/// A selector as `kubectl` writes it: `app=web, tier in (a,b), !debug`.
pub(super) fn describe(selector: &LabelSelector) -> String {
    let pairs = selector
        .match_labels
        .iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"));
    let expressions = selector.match_expressions.iter().flatten().map(|r| {
        let values = r.values.as_deref().unwrap_or_default().join(",");
        match r.operator.as_str() {
            "Exists" => r.key.clone(),
            "DoesNotExist" => format!("!{}", r.key),
            "In" => format!("{} in ({values})", r.key),
            "NotIn" => format!("{} notin ({values})", r.key),
            other => format!("{} {other} ({values})", r.key),
        }
    });
    pairs.chain(expressions).collect::<Vec<_>>().join(", ")
}

/// Whether `labels` hold every pair of a Service's `selector`.
pub(super) fn has_labels(labels: Option<&Labels>, selector: &Labels) -> bool {
    selector
        .iter()
        .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
}
