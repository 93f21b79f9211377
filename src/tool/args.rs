//! The argument types tools share, and the two descriptions made from each tool's argument
//! struct: its MCP `inputSchema` (JSON Schema, by schemars) and its Cedar context type (from
//! that JSON Schema), so the schema a model sees and the one policies are checked against
//! cannot drift apart.
//!
//! Callers write numbers and booleans as strings (k8sgpt's documented curl sends
//! `"tail": "100"`), and lists as comma-separated strings (`"filters": "Pod,Service"`); the
//! types here accept both and always serialise (for Cedar and the audit record) in one form.

use std::borrow::Cow;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, generate::SchemaSettings, json_schema};
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::kube::BuiltinKind;

/// A whole number, sent as a JSON number or a string of digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Int(pub i64);

impl<'de> Deserialize<'de> for Int {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Int, D::Error> {
        struct IntVisitor;
        impl Visitor<'_> for IntVisitor {
            type Value = Int;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a whole number (or a string of digits)")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Int, E> {
                Ok(Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Int, E> {
                i64::try_from(v)
                    .map(Int)
                    .map_err(|_| E::custom("the number is too large"))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Int, E> {
                // JSON has one number type; 100.0 is a whole number, 1.5 is not.
                if v.fract() == 0.0 && v.abs() < 9.0e15 {
                    Ok(Int(v as i64))
                } else {
                    Err(E::custom(format!("{v} is not a whole number")))
                }
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Int, E> {
                v.trim()
                    .parse::<i64>()
                    .map(Int)
                    .map_err(|_| E::custom(format!("{v:?} is not a whole number")))
            }
        }
        deserializer.deserialize_any(IntVisitor)
    }
}

impl Serialize for Int {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_i64(self.0)
    }
}

impl JsonSchema for Int {
    fn schema_name() -> Cow<'static, str> {
        "Int".into()
    }
    fn inline_schema() -> bool {
        true
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "integer" })
    }
}

/// A boolean, sent as JSON `true`/`false` or the strings `"true"`/`"false"`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flag(pub bool);

impl<'de> Deserialize<'de> for Flag {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Flag, D::Error> {
        struct FlagVisitor;
        impl Visitor<'_> for FlagVisitor {
            type Value = Flag;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("true or false")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Flag, E> {
                Ok(Flag(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Flag, E> {
                match v.trim().to_ascii_lowercase().as_str() {
                    "true" => Ok(Flag(true)),
                    "false" => Ok(Flag(false)),
                    _ => Err(E::custom(format!("{v:?} is not true or false"))),
                }
            }
        }
        deserializer.deserialize_any(FlagVisitor)
    }
}

impl Serialize for Flag {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bool(self.0)
    }
}

impl JsonSchema for Flag {
    fn schema_name() -> Cow<'static, str> {
        "Flag".into()
    }
    fn inline_schema() -> bool {
        true
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "boolean" })
    }
}

/// A list of names, sent as a JSON list of strings or one comma-separated string.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NameList(pub Vec<String>);

impl<'de> Deserialize<'de> for NameList {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<NameList, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            One(String),
            Many(Vec<String>),
        }
        let names = match Either::deserialize(deserializer).map_err(|_| {
            de::Error::custom("expected a list of names or a comma-separated string")
        })? {
            Either::One(s) => s.split(',').map(str::to_owned).collect(),
            Either::Many(v) => v,
        };
        Ok(NameList(
            names
                .into_iter()
                .map(|n| n.trim().to_owned())
                .filter(|n| !n.is_empty())
                .collect(),
        ))
    }
}

impl Serialize for NameList {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl JsonSchema for NameList {
    fn schema_name() -> Cow<'static, str> {
        "NameList".into()
    }
    fn inline_schema() -> bool {
        true
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "array", "items": { "type": "string" } })
    }
}

/// A resource type as callers name it (`pods`, `pod`, `po`, `PVCs`), always written as the
/// plural name, so that policies compare one spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kind(pub BuiltinKind);

impl<'de> Deserialize<'de> for Kind {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Kind, D::Error> {
        let name = String::deserialize(deserializer)?;
        BuiltinKind::from_name(&name)
            .map(Kind)
            .ok_or_else(|| de::Error::custom(format!("unknown resourceType {name:?}")))
    }
}

impl Serialize for Kind {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.0.plural())
    }
}

impl JsonSchema for Kind {
    fn schema_name() -> Cow<'static, str> {
        "ResourceType".into()
    }
    fn inline_schema() -> bool {
        true
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "string" })
    }
}

/// Parses a tool's arguments object into its argument struct, with a message that names the
/// argument at fault.
pub fn parse<T: for<'de> Deserialize<'de>>(arguments: &Map<String, Value>) -> Result<T, String> {
    // Empty strings mean "not given", as k8sgpt treats them (`"namespace": ""`); nulls too.
    let cleaned: Map<String, Value> = arguments
        .iter()
        .filter(|(_, v)| !matches!(v, Value::Null) && v.as_str() != Some(""))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    serde_path_to_error::deserialize(Value::Object(cleaned)).map_err(|e| {
        let path = e.path().to_string();
        let message = e.into_inner().to_string();
        // Missing and unknown fields are named by serde itself; a value of the wrong type is
        // named by its path.
        if path == "." || message.contains("field `") {
            message
        } else {
            format!("`{path}`: {message}")
        }
    })
}

/// The MCP `inputSchema` of an argument struct: JSON Schema 2020-12, inlined, with optional
/// arguments plainly typed (not `["string", "null"]`).
pub fn input_schema<T: JsonSchema>() -> Value {
    let generator = SchemaSettings::draft2020_12()
        .with(|s| s.inline_subschemas = true)
        .into_generator();
    let mut schema = generator.into_root_schema_for::<T>().to_value();
    if let Value::Object(root) = &mut schema {
        root.remove("$schema");
        root.remove("title");
        root.entry("properties")
            .or_insert_with(|| Value::Object(Map::new()));
    }
    drop_nulls(&mut schema);
    schema
}

/// Removes `null` from `type` lists and `{"type": "null"}` from `anyOf`s, recursively.
fn drop_nulls(schema: &mut Value) {
    match schema {
        Value::Object(object) => {
            if let Some(Value::Array(types)) = object.get_mut("type") {
                types.retain(|t| t != "null");
                if types.len() == 1 {
                    let only = types.remove(0);
                    object.insert("type".to_owned(), only);
                }
            }
            if let Some(Value::Array(any)) = object.get_mut("anyOf") {
                any.retain(|s| s.get("type").and_then(Value::as_str) != Some("null"));
                if any.len() == 1 {
                    let only = any.remove(0);
                    object.remove("anyOf");
                    if let Value::Object(inner) = only {
                        for (k, v) in inner {
                            object.entry(k).or_insert(v);
                        }
                    }
                }
            }
            if object.get("default") == Some(&Value::Null) {
                object.remove("default");
            }
            object.values_mut().for_each(drop_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(drop_nulls),
        _ => {}
    }
}

/// The Cedar record type (in Cedar's schema syntax) that an `inputSchema` describes: strings as
/// `String`, integers as `Long`, booleans as `Bool`, lists of strings as `Set<String>`, objects
/// as records; arguments not in `required` are optional attributes.
pub fn cedar_record(schema: &Value, indent: usize) -> Result<String, String> {
    let properties = schema
        .get("properties")
        .and_then(Value::as_object)
        .ok_or("the schema has no properties")?;
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let pad = "  ".repeat(indent + 1);
    let mut out = String::from("{\n");
    for (name, property) in properties {
        let optional = if required.contains(&name.as_str()) {
            ""
        } else {
            "?"
        };
        let ty = cedar_type(property, indent + 1).map_err(|e| format!("`{name}`: {e}"))?;
        out.push_str(&format!("{pad}\"{name}\"{optional}: {ty},\n"));
    }
    out.push_str(&"  ".repeat(indent));
    out.push('}');
    Ok(out)
}

fn cedar_type(property: &Value, indent: usize) -> Result<String, String> {
    match property.get("type").and_then(Value::as_str) {
        Some("string") => Ok("String".to_owned()),
        Some("integer") => Ok("Long".to_owned()),
        Some("boolean") => Ok("Bool".to_owned()),
        Some("array") => {
            let items = property.get("items").ok_or("a list without item type")?;
            Ok(format!("Set<{}>", cedar_type(items, indent)?))
        }
        Some("object") => cedar_record(property, indent),
        other => Err(format!("no Cedar type for JSON Schema type {other:?}")),
    }
}

/// Checks a namespace name (an RFC 1123 label), so that garbage never reaches Kubernetes.
pub fn check_namespace(namespace: &str) -> Result<(), String> {
    if is_dns_label(namespace) {
        Ok(())
    } else {
        Err(format!(
            "`namespace` {namespace:?} is not a namespace name (lowercase letters, digits and '-', \
             starting and ending with a letter or digit, at most 63 characters)"
        ))
    }
}

/// The namespace of a call on one object: checked if given, `default` if not (as kubectl does).
pub fn namespace_or_default(namespace: &mut Option<String>) -> Result<(), String> {
    match namespace {
        Some(ns) => check_namespace(ns),
        None => {
            *namespace = Some(DEFAULT_NAMESPACE.to_owned());
            Ok(())
        }
    }
}

/// The namespace of namespaced objects when the caller names none (as kubectl does).
pub const DEFAULT_NAMESPACE: &str = "default";

/// Checks a `limit` argument: 1 to `max`.
pub fn check_limit(limit: Option<Int>, max: i64) -> Result<(), String> {
    match limit {
        Some(Int(n)) if !(1..=max).contains(&n) => {
            Err(format!("`limit` must be between 1 and {max}, not {n}"))
        }
        _ => Ok(()),
    }
}

/// Checks an object name: an RFC 1123 subdomain (what most kinds accept, and a superset of the
/// label rule the rest use), so that no path segment or query can be smuggled into a URL.
pub fn check_name(what: &str, name: &str) -> Result<(), String> {
    if is_dns_subdomain(name) {
        Ok(())
    } else {
        Err(format!(
            "`{what}` {name:?} is not a Kubernetes object name (lowercase letters, digits, '-' \
             and '.', starting and ending with a letter or digit, at most 253 characters)"
        ))
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

/// An RFC 1123 subdomain: dot-separated labels, at most 253 characters.
pub fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(is_dns_label)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[derive(Debug, Deserialize, Serialize, JsonSchema, PartialEq)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    struct Sample {
        /// The pod.
        pod_name: String,
        #[serde(default, alias = "tail", skip_serializing_if = "Option::is_none")]
        tail_lines: Option<Int>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        previous: Option<Flag>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        filters: Option<NameList>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resource_type: Option<Kind>,
    }

    fn object(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn strings_numbers_and_lists_are_read_in_every_spelling() {
        let a: Result<Sample, _> = parse(&object(json!({
            "podName": "web", "tail": "100", "previous": "true", "filters": "Pod, Service",
            "resourceType": "PO"
        })));
        let b: Result<Sample, _> = parse(&object(json!({
            "podName": "web", "tailLines": 100, "previous": true, "filters": ["Pod", "Service"],
            "resourceType": "pods"
        })));
        assert_eq!(a, b);
        let value = a.map(|s| serde_json::to_value(s).unwrap_or_default());
        assert_eq!(
            value,
            Ok(json!({"podName": "web", "tailLines": 100, "previous": true,
                      "filters": ["Pod", "Service"], "resourceType": "pods"}))
        );
    }

    #[test]
    fn bad_arguments_are_named() {
        let unknown: Result<Sample, _> = parse(&object(json!({"podName": "a", "pod": "b"})));
        assert!(unknown.is_err_and(|e| e.contains("unknown field `pod`")));
        let missing: Result<Sample, _> = parse(&object(json!({"tail": 5})));
        assert!(missing.is_err_and(|e| e.contains("missing field `podName`")));
        let fraction: Result<Sample, _> = parse(&object(json!({"podName": "a", "tail": 1.5})));
        assert_eq!(
            fraction.err().as_deref(),
            Some("`tail`: 1.5 is not a whole number")
        );
        let wrong: Result<Sample, _> = parse(&object(json!({"podName": 42})));
        assert_eq!(
            wrong.err().as_deref(),
            Some("`podName`: invalid type: integer `42`, expected a string")
        );
        let word: Result<Sample, _> = parse(&object(json!({"podName": "a", "previous": "yes"})));
        assert!(word.is_err_and(|e| e.contains("\"yes\" is not true or false")));
        let kind: Result<Sample, _> =
            parse(&object(json!({"podName": "a", "resourceType": "widgets"})));
        assert!(kind.is_err_and(|e| e.contains("unknown resourceType \"widgets\"")));
        // Empty strings and nulls are "not given".
        let empty: Result<Sample, _> = parse(&object(
            json!({"podName": "a", "tail": "", "previous": null}),
        ));
        assert!(empty.is_ok_and(|s| s.tail_lines.is_none() && s.previous.is_none()));
    }

    #[test]
    fn one_struct_gives_the_input_schema_and_the_cedar_type() {
        let schema = input_schema::<Sample>();
        assert_eq!(schema["type"], "object");
        assert_eq!(schema["additionalProperties"], false);
        assert_eq!(schema["required"], json!(["podName"]));
        assert_eq!(schema["properties"]["podName"]["description"], "The pod.");
        assert_eq!(schema["properties"]["tailLines"]["type"], "integer");
        assert_eq!(schema["properties"]["previous"]["type"], "boolean");
        assert_eq!(schema["properties"]["filters"]["items"]["type"], "string");
        assert!(schema.get("$schema").is_none());
        let cedar = cedar_record(&schema, 0).unwrap_or_default();
        assert_eq!(
            cedar,
            "{\n  \"podName\": String,\n  \"tailLines\"?: Long,\n  \"previous\"?: Bool,\n  \
             \"filters\"?: Set<String>,\n  \"resourceType\"?: String,\n}"
        );
    }

    #[test]
    fn names_cannot_smuggle_paths() {
        assert!(is_dns_label("team-a"));
        assert!(!is_dns_label("-a") && !is_dns_label("a-") && !is_dns_label("Team"));
        assert!(!is_dns_label(&"a".repeat(64)) && is_dns_label(&"a".repeat(63)));
        assert!(check_namespace("../kube-system").is_err());
        assert!(check_name("name", "web-1.v2").is_ok());
        for bad in ["a/b", "a?x=1", "..", "a..b", "", "A", "a b", "a%2f"] {
            assert!(check_name("name", bad).is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn parsing_any_arguments_never_panics(json in any_json(3)) {
            let _: Result<Sample, _> = parse(&object(json!({"podName": "a", "tail": json.clone()})));
            let _: Result<Sample, _> = parse(&object(json));
        }

        #[test]
        fn accepted_names_are_plain_path_segments(name in "[a-z0-9.%/?#-]{0,70}") {
            if is_dns_subdomain(&name) {
                prop_assert!(!name.contains(['/', '?', '#', '%']));
                prop_assert!(name != "." && name != "..");
            }
        }
    }

    /// Any JSON value, nested up to `depth`.
    pub fn any_json(depth: u32) -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>()
                .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
            ".{0,12}".prop_map(Value::from),
        ];
        leaf.prop_recursive(depth, 32, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map("[a-zA-Z]{1,10}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }
}
