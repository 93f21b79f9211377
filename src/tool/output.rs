//! What tools answer ([`ToolOutput`]: text for the model, and the full objects as
//! `structuredContent`), and the one filter every Kubernetes object passes before it leaves
//! kubegate, by kind:
//!
//! - a `Secret`'s `data` and `stringData` values are masked unless `reveal-secrets` is granted
//!   in its namespace (keys stay, so callers see what exists);
//! - `kubectl.kubernetes.io/last-applied-configuration`, which repeats an object as it was
//!   applied, is filtered as the object it holds (a Secret's is masked);
//! - lists are filtered item by item, whether typed (`SecretList`: the items carry no `kind`)
//!   or mixed (`List`, each item naming its own kind); events and JSON log lines as objects too;
//! - `metadata.managedFields` is dropped (field ownership bookkeeping, large and of no use to a
//!   model).
//!
//! [`filter_raw`] applies the same filter to an object still in the API server's JSON (read as
//! a [`shaped::Node`], as list items are): an object that holds nothing to mask (most of them)
//! is copied through with `managedFields` cut out, without being parsed into a tree; the rest
//! take [`filter`]'s path. Property tests hold the two paths to the same answer.

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::shaped;
use crate::policy::Unmask;

/// The mask that replaces each Secret value.
pub const MASK: &str = "<masked: grant reveal-secrets to see values>";

pub(crate) const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// A tool's answer.
#[derive(Debug, Clone)]
pub struct ToolOutput {
    /// What the model reads: a summary, a table, a log.
    pub text: String,
    /// The full answer as JSON (already encoded), for tools that declare an `outputSchema`.
    pub structured: Option<Box<RawValue>>,
}

/// Encodes a tool's structured answer.
pub fn raw(value: &impl serde::Serialize) -> Option<Box<RawValue>> {
    serde_json::value::to_raw_value(value).ok()
}

impl ToolOutput {
    pub fn text(text: impl Into<String>) -> ToolOutput {
        ToolOutput {
            text: text.into(),
            structured: None,
        }
    }
}

/// Filters one object, or a list of them, in place. `kind` names the object's kind when the
/// object itself does not (the items of a typed list); `reveal(namespace)` says whether Secret
/// values may be shown in that namespace.
pub fn filter(
    value: &mut Value,
    kind: Option<&str>,
    reveal: &mut dyn FnMut(Option<&str>) -> Option<Unmask>,
) {
    let Value::Object(object) = value else {
        return;
    };
    let own_kind = object
        .get("kind")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let kind = own_kind.as_deref().or(kind);
    if let Some(Value::Array(items)) = object.get_mut("items") {
        // `SecretList` → `Secret`; a mixed `List` leaves each item to name its own kind.
        let item_kind = kind
            .and_then(|k| k.strip_suffix("List"))
            .filter(|k| !k.is_empty());
        for item in items.iter_mut() {
            filter(item, item_kind, reveal);
        }
    }
    if let Some(Value::Object(metadata)) = object.get_mut("metadata") {
        metadata.remove("managedFields");
    }
    let namespace = object
        .get("metadata")
        .and_then(|m| m.get("namespace"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    if kind == Some("Secret") {
        if reveal(namespace.as_deref()).is_none() {
            mask_values(object);
            if let Some(applied) = last_applied(object) {
                *applied = MASK.to_owned();
            }
        }
    } else {
        filter_last_applied(object, kind, reveal);
    }
}

fn last_applied(object: &mut Map<String, Value>) -> Option<&mut String> {
    match object
        .get_mut("metadata")?
        .get_mut("annotations")?
        .get_mut(LAST_APPLIED)?
    {
        Value::String(applied) => Some(applied),
        _ => None,
    }
}

/// Filters the object kept in the last-applied annotation as the object it is.
fn filter_last_applied(
    object: &mut Map<String, Value>,
    kind: Option<&str>,
    reveal: &mut dyn FnMut(Option<&str>) -> Option<Unmask>,
) {
    let Some(applied) = last_applied(object) else {
        return;
    };
    match serde_json::from_str::<Value>(applied) {
        Ok(mut inner) => {
            filter(&mut inner, kind, reveal);
            *applied = inner.to_string();
        }
        // Not JSON: kubegate cannot tell what it holds, so it shows none of it.
        Err(_) => *applied = MASK.to_owned(),
    }
}

fn mask_values(secret: &mut Map<String, Value>) {
    for field in ["data", "stringData"] {
        if let Some(Value::Object(values)) = secret.get_mut(field) {
            values.values_mut().for_each(|v| *v = Value::from(MASK));
        }
    }
}

/// The members of a JSON object, in order, their values left unparsed.
pub struct Members<'a>(pub(crate) Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de: 'a, 'a> Deserialize<'de> for Members<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Members<'a>, D::Error> {
        struct MembersVisitor;
        impl<'de> Visitor<'de> for MembersVisitor {
            type Value = Members<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members<'de>, A::Error> {
                let mut members = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some((key, value)) = map.next_entry::<Borrowed<'de>, &'de RawValue>()? {
                    members.push((key.0, value));
                }
                Ok(Members(members))
            }
        }
        deserializer.deserialize_map(MembersVisitor)
    }
}

impl<'a> Members<'a> {
    pub(crate) fn parse(raw: &'a RawValue) -> Option<Members<'a>> {
        serde_json::from_str(raw.get()).ok()
    }

    /// The value of `key`; of its last occurrence if it repeats, as a parser keeps it.
    pub(crate) fn get(&self, key: &str) -> Option<&'a RawValue> {
        self.0.iter().rev().find(|(k, _)| k == key).map(|(_, v)| *v)
    }
}

/// A JSON string's value, if `raw` is one.
pub(crate) fn raw_str(raw: &RawValue) -> Option<Cow<'_, str>> {
    serde_json::from_str::<Borrowed<'_>>(raw.get())
        .ok()
        .map(|s| s.0)
}

/// A JSON string borrowed from the input unless it holds escapes. serde's own `Cow<str>` always
/// copies, which made every object key read on the hot path an allocation.
pub struct Borrowed<'a>(pub Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Borrowed<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Borrowed<'a>, D::Error> {
        struct StrVisitor;
        impl<'de> Visitor<'de> for StrVisitor {
            type Value = Borrowed<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: serde::de::Error>(
                self,
                v: &'de str,
            ) -> Result<Self::Value, E> {
                Ok(Borrowed(Cow::Borrowed(v)))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Borrowed(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Borrowed(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(StrVisitor)
    }
}

/// Filters one object given as the API server's JSON (see [`filter`]). An object that is not a
/// Secret, holds no `items` and carries no last-applied annotation is copied as it came,
/// `metadata.managedFields` left out; any other object is parsed and filtered as a tree.
pub fn filter_raw(
    raw: &RawValue,
    kind: Option<&str>,
    reveal: &mut dyn FnMut(Option<&str>) -> Option<Unmask>,
) -> Result<Box<RawValue>, serde_json::Error> {
    let node = shaped::Node::read(raw, "")?;
    serde_json::value::to_raw_value(&shaped::filter(node, kind, reveal)?)
}

/// Filters a container log: each line that is a JSON object is filtered as an object (a program
/// that logs the Secrets it reads logs them as JSON); other lines pass as they are.
pub fn filter_log(log: &str, reveal: &mut dyn FnMut(Option<&str>) -> Option<Unmask>) -> String {
    let mut out = String::with_capacity(log.len());
    for line in log.split_inclusive('\n') {
        let body = line.trim_end_matches(['\n', '\r']);
        let trimmed = body.trim_start();
        if trimmed.starts_with('{')
            && let Ok(mut value) = serde_json::from_str::<Value>(trimmed)
            && contains_secret(&value)
        {
            filter(&mut value, None, reveal);
            out.push_str(&value.to_string());
            out.push_str(&line[body.len()..]);
        } else {
            out.push_str(line);
        }
    }
    out
}

/// Whether a JSON value holds an object of kind `Secret` anywhere.
fn contains_secret(value: &Value) -> bool {
    match value {
        Value::Object(object) => {
            object.get("kind").and_then(Value::as_str) == Some("Secret")
                || object.get("kind").and_then(Value::as_str) == Some("SecretList")
                || object.values().any(contains_secret)
        }
        Value::Array(items) => items.iter().any(contains_secret),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    /// What a grant of `reveal-secrets` would give, or not.
    fn unmask(granted: bool) -> Option<Unmask> {
        granted.then(Unmask::for_tests)
    }

    fn masked(mut value: Value, kind: Option<&str>) -> Value {
        filter(&mut value, kind, &mut |_| None);
        value
    }

    const PASSWORD: &str = "aHVudGVyMg==";

    #[test]
    fn strings_are_borrowed_unless_escaped_and_read_alike_either_way() {
        let plain: Borrowed<'_> = serde_json::from_str(r#""metadata""#).expect("a string");
        assert!(matches!(plain.0, Cow::Borrowed("metadata")));
        let escaped: Borrowed<'_> = serde_json::from_str(r#""met\u0061d\"ata""#).expect("a string");
        assert!(matches!(&escaped.0, Cow::Owned(s) if s == "metad\"ata"));
        assert!(serde_json::from_str::<Borrowed<'_>>("3").is_err());
        // An escaped key is still the key it spells: its Secret values are masked.
        let raw = RawValue::from_string(
            r#"{"kind":"Secret","met\u0061data":{"namespace":"a"},"d\u0061ta":{"k":"djE="}}"#
                .to_owned(),
        )
        .expect("raw JSON");
        let filtered = filter_raw(&raw, None, &mut |_| None).expect("filtered");
        assert_eq!(
            serde_json::from_str::<Value>(filtered.get()).expect("JSON")["data"]["k"],
            MASK
        );
    }

    #[test]
    fn secrets_are_masked_in_every_shape() {
        let secret = json!({
            "metadata": {"name": "db", "namespace": "a", "managedFields": [{"manager": "kubectl"}],
                         "annotations": {LAST_APPLIED: format!("{{\"kind\":\"Secret\",\"data\":{{\"password\":\"{PASSWORD}\"}}}}"), "team": "a"}},
            "data": {"password": PASSWORD},
            "stringData": {"user": "admin"},
        });
        // A typed list: items name no kind.
        let list = masked(
            json!({"kind": "SecretList", "items": [secret.clone()]}),
            None,
        );
        let text = list.to_string();
        assert!(
            !text.contains(PASSWORD) && !text.contains("admin"),
            "{text}"
        );
        assert_eq!(list["items"][0]["data"]["password"], MASK);
        assert_eq!(list["items"][0]["metadata"]["annotations"]["team"], "a");
        assert!(list["items"][0]["metadata"].get("managedFields").is_none());
        // A mixed list, and a single object named by the caller.
        let mut own = secret.clone();
        own["kind"] = json!("Secret");
        let mixed = masked(
            json!({"kind": "List", "items": [own, {"kind": "ConfigMap", "data": {"k": PASSWORD}}]}),
            None,
        );
        assert_eq!(mixed["items"][0]["data"]["password"], MASK);
        assert_eq!(
            mixed["items"][1]["data"]["k"], PASSWORD,
            "ConfigMaps are not Secrets"
        );
        assert!(
            !masked(secret, Some("Secret"))
                .to_string()
                .contains(PASSWORD)
        );
    }

    #[test]
    fn last_applied_is_filtered_as_the_object_it_holds() {
        // A ConfigMap's last-applied holding a List with a Secret in it.
        let applied =
            json!({"kind": "List", "items": [{"kind": "Secret", "data": {"p": PASSWORD}}]});
        let config_map = json!({"kind": "ConfigMap", "metadata": {"annotations": {LAST_APPLIED: applied.to_string()}}});
        let out = masked(config_map, None);
        assert!(!out.to_string().contains(PASSWORD), "{out}");
        let garbage =
            json!({"kind": "ConfigMap", "metadata": {"annotations": {LAST_APPLIED: "not json"}}});
        assert_eq!(
            masked(garbage, None)["metadata"]["annotations"][LAST_APPLIED],
            MASK
        );
    }

    #[test]
    fn reveal_is_asked_per_namespace_and_shows_values() {
        let list = json!({"kind": "SecretList", "items": [
            {"metadata": {"name": "x", "namespace": "open"}, "data": {"k": PASSWORD}},
            {"metadata": {"name": "y", "namespace": "closed"}, "data": {"k": PASSWORD}},
        ]});
        let mut asked = Vec::new();
        let mut out = list;
        filter(&mut out, None, &mut |ns| {
            asked.push(ns.map(str::to_owned));
            unmask(ns == Some("open"))
        });
        assert_eq!(out["items"][0]["data"]["k"], PASSWORD);
        assert_eq!(out["items"][1]["data"]["k"], MASK);
        assert_eq!(asked, [Some("open".to_owned()), Some("closed".to_owned())]);
    }

    fn through_raw(value: &Value, kind: Option<&str>, reveal: bool) -> Value {
        let raw = serde_json::value::to_raw_value(value).unwrap_or_default();
        let filtered = filter_raw(&raw, kind, &mut |_| unmask(reveal)).unwrap_or_default();
        serde_json::from_str(filtered.get()).unwrap_or_default()
    }

    fn through_tree(value: &Value, kind: Option<&str>, reveal: bool) -> Value {
        let mut value = value.clone();
        filter(&mut value, kind, &mut |_| unmask(reveal));
        value
    }

    #[test]
    fn the_raw_path_cuts_managed_fields_and_leaves_the_rest() {
        let pod = json!({"kind": "Pod", "metadata": {"name": "a", "managedFields": [{"m": 1}], "labels": {"x": "y"}},
                         "spec": {"containers": [{"name": "c", "env": [{"name": "E", "value": "\"quoted\" é"}]}]}});
        let out = through_raw(&pod, None, false);
        assert!(out["metadata"].get("managedFields").is_none());
        assert_eq!(out["metadata"]["labels"]["x"], "y");
        assert_eq!(out["spec"], pod["spec"]);
        let secret = json!({"metadata": {"name": "s", "namespace": "a"}, "data": {"k": PASSWORD}});
        assert_eq!(
            through_raw(&secret, Some("Secret"), false)["data"]["k"],
            MASK
        );
        assert_eq!(
            through_raw(&secret, Some("Secret"), true)["data"]["k"],
            PASSWORD
        );
    }

    #[test]
    fn the_copied_path_writes_the_bytes_it_kept_as_they_came() {
        let cases = [
            // A `metadata` that is not an object is kept as it is.
            (
                r#"{"metadata":1,"kind":"Pod"}"#,
                r#"{"metadata":1,"kind":"Pod"}"#,
            ),
            // A repeated `metadata`: each written as the last one, which a parser keeps.
            (
                r#"{"metadata":{"name":"a","managedFields":[{"x":1}]},"metadata":{"name":"b","managedFields":[]},"spec":{"a":"\u00e9 \"q\""}}"#,
                r#"{"metadata":{"name":"b"},"metadata":{"name":"b"},"spec":{"a":"\u00e9 \"q\""}}"#,
            ),
            // A key spelled with an escape is still the key it decodes to.
            (
                r#"{"metadata":{"managedFi\u0065lds":[1],"name":"c"}}"#,
                r#"{"metadata":{"name":"c"}}"#,
            ),
            (r#"["not","an","object"]"#, r#"["not","an","object"]"#),
        ];
        for (input, expected) in cases {
            let raw: Box<RawValue> = serde_json::from_str(input).unwrap_or_else(|e| panic!("{e}"));
            let out =
                filter_raw(&raw, Some("Pod"), &mut |_| None).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(out.get(), expected, "{input}");
        }
    }

    /// Kubernetes-shaped objects: optional kind, metadata with managed fields, labels and
    /// annotations (sometimes last-applied), data, and nested lists.
    fn object() -> impl Strategy<Value = Value> {
        let text = "[a-zA-Z0-9 \"\\\\é{}:,]{0,12}";
        let kind = prop_oneof![
            Just(None),
            Just(Some("Secret")),
            Just(Some("Pod")),
            Just(Some("ConfigMap")),
            Just(Some("List"))
        ];
        let map = prop::collection::btree_map("[a-z./-]{1,8}", text, 0..3);
        (kind, map.clone(), map.clone(), any::<bool>(), any::<bool>(), map).prop_map(
            |(kind, labels, data, managed, applied, annotations)| {
                let mut annotations: Map<String, Value> = annotations.into_iter().map(|(k, v)| (k, Value::from(v))).collect();
                if applied {
                    let inner = json!({"kind": kind.unwrap_or("Secret"), "data": data.clone()});
                    annotations.insert(LAST_APPLIED.to_owned(), Value::from(inner.to_string()));
                }
                let mut object = json!({"metadata": {"name": "x", "namespace": "ns", "labels": labels, "annotations": annotations},
                                        "data": data});
                if managed {
                    object["metadata"]["managedFields"] = json!([{"manager": "kubectl"}]);
                }
                if let Some(kind) = kind {
                    object["kind"] = Value::from(kind);
                }
                if kind == Some("List") {
                    object["items"] = json!([object.clone()]);
                }
                object
            },
        )
    }

    proptest! {
        #[test]
        fn the_raw_and_tree_paths_agree(object in object(), hint in prop_oneof![Just(None), Just(Some("Secret")), Just(Some("Pod"))], reveal in any::<bool>()) {
            prop_assert_eq!(through_raw(&object, hint, reveal), through_tree(&object, hint, reveal));
        }

        #[test]
        fn any_bytes_are_answered_without_panic(text in "(?s).{0,200}") {
            if let Ok(raw) = serde_json::from_str::<Box<RawValue>>(&text) {
                let _ = filter_raw(&raw, None, &mut |_| None);
            }
        }
    }

    #[test]
    fn json_log_lines_holding_secrets_are_masked() {
        let log = format!(
            "starting\n{{\"kind\":\"Secret\",\"data\":{{\"p\":\"{PASSWORD}\"}}}}\r\n{{\"level\":\"info\"}}\nend"
        );
        let out = filter_log(&log, &mut |_| None);
        assert!(!out.contains(PASSWORD), "{out}");
        assert!(out.starts_with("starting\n") && out.ends_with("{\"level\":\"info\"}\nend"));
        assert!(out.contains("\r\n"));
    }
}
