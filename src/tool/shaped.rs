//! Reads the API server's JSON once, opening it only where something needs to look inside.
//!
//! A [`Node`] is a value split into its members or elements along the paths a kind's table
//! reads (and `metadata`, where the filter looks), every other value kept as the API server's
//! bytes, checked but not built. From that one reading come both what a row shows (the same
//! view [`summary::row_view`] reads) and the object the filter lets out (the same answer
//! [`output::filter`] gives, written from the bytes as they came), so a list is scanned once
//! and not once per use. The tests hold both to the functions they stand in for.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserialize, DeserializeSeed, Deserializer, IgnoredAny, MapAccess};
use serde::de::{SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::output::{self, Borrowed, LAST_APPLIED, Members};
use super::summary::{self, Paths, Visit};
use crate::policy::Unmask;

/// A JSON value as read: opened where a path goes on below it, else kept as it came.
#[derive(Debug)]
pub enum Node<'a> {
    /// Kept unparsed: the API server's bytes.
    Raw(&'a RawValue),
    /// A scalar found where a path expected an object or a list.
    Scalar(Value),
    Object(Vec<(Cow<'a, str>, Node<'a>)>),
    Array(Vec<Node<'a>>),
}

/// Reads one value, opening it if `paths` goes on below it.
pub struct Shape<'p>(pub Option<&'p Paths>);

impl<'de> DeserializeSeed<'de> for Shape<'_> {
    type Value = Node<'de>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Node<'de>, D::Error> {
        match self.0 {
            Some(paths) if paths.visit() == Visit::Enter => {
                deserializer.deserialize_any(Open(paths))
            }
            _ => <&RawValue>::deserialize(deserializer).map(Node::Raw),
        }
    }
}

/// Opens an object or a list one level, each member read by the [`Shape`] of its own path.
struct Open<'p>(&'p Paths);

impl<'de> Visitor<'de> for Open<'_> {
    type Value = Node<'de>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node<'de>, A::Error> {
        let mut members = Vec::with_capacity(map.size_hint().unwrap_or(8));
        while let Some(Borrowed(key)) = map.next_key::<Borrowed<'de>>()? {
            let below = self.0.child(&key);
            members.push((key, map.next_value_seed(Shape(below))?));
        }
        Ok(Node::Object(members))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node<'de>, A::Error> {
        let mut elements = Vec::with_capacity(seq.size_hint().unwrap_or(4));
        while let Some(element) = seq.next_element_seed(Shape(self.0.any.as_deref()))? {
            elements.push(element);
        }
        Ok(Node::Array(elements))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Node<'de>, E> {
        Ok(Node::Scalar(Value::Null))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Node<'de>, E> {
        Ok(Node::Scalar(Value::Bool(v)))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Node<'de>, E> {
        Ok(Node::Scalar(Value::from(v)))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Node<'de>, E> {
        Ok(Node::Scalar(Value::from(v)))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Node<'de>, E> {
        Ok(Node::Scalar(Value::from(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Node<'de>, E> {
        Ok(Node::Scalar(Value::from(v)))
    }
}

impl<'a> Node<'a> {
    /// Reads one object (or any JSON value) for `kind`'s table and filter.
    pub fn read(raw: &'a RawValue, kind: &str) -> Result<Node<'a>, serde_json::Error> {
        let mut deserializer = serde_json::Deserializer::from_str(raw.get());
        Shape(Some(summary::paths(kind))).deserialize(&mut deserializer)
    }

    /// What [`summary::row_view`] reads from this value at `paths`.
    pub fn view(&self, paths: &Paths) -> Value {
        match self {
            Node::Raw(raw) => summary::view_raw(raw, paths),
            Node::Scalar(value) => value.clone(),
            Node::Object(members) => {
                let mut kept = Map::new();
                for (key, value) in members {
                    if let Some(below) = paths.child(key) {
                        kept.insert(key.clone().into_owned(), value.view(below));
                    }
                }
                Value::Object(kept)
            }
            Node::Array(elements) => Value::Array(
                elements
                    .iter()
                    .map(|e| paths.any.as_deref().map_or(Value::Null, |p| e.view(p)))
                    .collect(),
            ),
        }
    }

    /// The value of `key` in this object; of its last occurrence if it repeats, as a parser
    /// keeps it.
    fn get(&self, key: &str) -> Option<&Node<'a>> {
        match self {
            Node::Object(members) => members.iter().rev().find(|(k, _)| k == key).map(|m| &m.1),
            _ => None,
        }
    }

    fn has(&self, key: &str) -> bool {
        match self {
            Node::Object(members) => members.iter().any(|(k, _)| k == key),
            Node::Raw(raw) => Members::parse(raw).is_some_and(|m| m.get(key).is_some()),
            _ => false,
        }
    }

    fn as_str(&self) -> Option<Cow<'_, str>> {
        match self {
            Node::Raw(raw) => output::raw_str(raw),
            Node::Scalar(Value::String(s)) => Some(Cow::Borrowed(s)),
            _ => None,
        }
    }
}

/// An object after [`output::filter`]'s filter, still borrowing the API server's JSON where
/// nothing needed masking: encoding it writes the kept bytes as they came.
#[derive(Debug)]
pub enum Filtered<'a> {
    /// Copied as read, `managedFields` left out of `metadata`.
    Copied(Node<'a>),
    /// Filtered as a tree (a Secret, a list, a last-applied annotation).
    Tree(Value),
}

/// Filters one object read as a [`Node`] (see [`output::filter`]): an object that is not a
/// Secret, holds no `items` and carries no last-applied annotation is copied as it came, without
/// `metadata.managedFields`; any other object is built and filtered as a tree.
pub fn filter<'a>(
    node: Node<'a>,
    kind: Option<&str>,
    reveal: &mut dyn FnMut(Option<&str>) -> Option<Unmask>,
) -> Result<Filtered<'a>, serde_json::Error> {
    if !matches!(node, Node::Object(_)) {
        return Ok(Filtered::Copied(node));
    }
    let own_kind = node.get("kind").and_then(Node::as_str);
    let is_secret = own_kind.as_deref().or(kind) == Some("Secret");
    let last_applied = node
        .get("metadata")
        .and_then(|m| m.get("annotations"))
        .is_some_and(|a| a.has(LAST_APPLIED));
    if is_secret || last_applied || node.has("items") {
        // Written as a parser reads it (every `metadata` as the last one), then built.
        let mut value: Value = serde_json::from_str(&serde_json::to_string(&Item(&node))?)?;
        output::filter(&mut value, kind, reveal);
        return Ok(Filtered::Tree(value));
    }
    Ok(Filtered::Copied(node))
}

impl Serialize for Filtered<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Filtered::Copied(node) => Item(node).serialize(serializer),
            Filtered::Tree(value) => value.serialize(serializer),
        }
    }
}

/// An object written as it was read, but that every `metadata` member is written as the one a
/// parser keeps (the last), without its `managedFields`.
struct Item<'n, 'a>(&'n Node<'a>);

impl Serialize for Item<'_, '_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let Node::Object(members) = self.0 else {
            return self.0.serialize(serializer);
        };
        let metadata = match self.0.get("metadata") {
            Some(Node::Object(metadata)) => Some(metadata),
            _ => None,
        };
        let mut map = serializer.serialize_map(Some(members.len()))?;
        for (key, value) in members {
            match (key.as_ref(), metadata) {
                ("metadata", Some(metadata)) => {
                    map.serialize_entry(key, &WithoutManagedFields(metadata))?;
                }
                _ => map.serialize_entry(key, value)?,
            }
        }
        map.end()
    }
}

/// An object's `metadata` as it came, but for `managedFields`.
struct WithoutManagedFields<'m, 'a>(&'m [(Cow<'a, str>, Node<'a>)]);

impl Serialize for WithoutManagedFields<'_, '_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let kept = self.0.iter().filter(|(k, _)| k != "managedFields");
        serializer.collect_map(kept.map(|(k, v)| (k, v)))
    }
}

impl Serialize for Node<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Node::Raw(raw) => raw.serialize(serializer),
            Node::Scalar(value) => value.serialize(serializer),
            Node::Object(members) => serializer.collect_map(members.iter().map(|(k, v)| (k, v))),
            Node::Array(elements) => {
                let mut seq = serializer.serialize_seq(Some(elements.len()))?;
                for element in elements {
                    seq.serialize_element(element)?;
                }
                seq.end()
            }
        }
    }
}

/// A list answer as the API server writes it, each item read as a [`Node`] for `kind`.
#[derive(Debug, Default)]
pub struct List<'a> {
    pub continue_token: Option<String>,
    pub remaining_item_count: Option<i64>,
    pub items: Vec<Node<'a>>,
}

#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ListMeta {
    #[serde(default, rename = "continue")]
    continue_token: Option<String>,
    #[serde(default)]
    remaining_item_count: Option<i64>,
}

impl<'a> List<'a> {
    /// Reads a list answer in one pass; `"items": null` is an empty list, as the API server
    /// sometimes writes it.
    ///
    /// The body is checked to be UTF-8 once, up front, so that the reading does not check
    /// again each string and each value it keeps as bytes (a tenth of the reading's time).
    pub fn read(body: &'a [u8], kind: &str) -> Result<List<'a>, serde_json::Error> {
        let text = std::str::from_utf8(body)
            .map_err(|e| de::Error::custom(format_args!("the list is not UTF-8: {e}")))?;
        let mut deserializer = serde_json::Deserializer::from_str(text);
        let list = deserializer.deserialize_map(ListVisitor(summary::paths(kind)))?;
        deserializer.end()?;
        Ok(list)
    }
}

struct ListVisitor<'p>(&'p Paths);

impl<'de> Visitor<'de> for ListVisitor<'_> {
    type Value = List<'de>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a Kubernetes list")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<List<'de>, A::Error> {
        let mut list = List::default();
        let (mut metadata, mut items) = (false, false);
        while let Some(Borrowed(key)) = map.next_key::<Borrowed<'de>>()? {
            match key.as_ref() {
                "metadata" if metadata => return Err(de::Error::duplicate_field("metadata")),
                "metadata" => {
                    metadata = true;
                    let meta: ListMeta = map.next_value()?;
                    list.continue_token = meta.continue_token;
                    list.remaining_item_count = meta.remaining_item_count;
                }
                "items" if items => return Err(de::Error::duplicate_field("items")),
                "items" => {
                    items = true;
                    list.items = map.next_value_seed(Items(self.0))?;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(list)
    }
}

/// A list's `items`, each read by its kind's [`Shape`]; `null` is none.
struct Items<'p>(&'p Paths);

impl<'de> DeserializeSeed<'de> for Items<'_> {
    type Value = Vec<Node<'de>>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for Items<'_> {
    type Value = Vec<Node<'de>>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of objects, or null")
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }
    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_seq(self)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(16));
        while let Some(item) = seq.next_element_seed(Shape(Some(self.0)))? {
            items.push(item);
        }
        Ok(items)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;
    use crate::policy::Unmask;

    fn unmask(reveal: bool) -> Option<Unmask> {
        reveal.then(Unmask::for_tests)
    }

    const KINDS: &[&str] = &[
        "Pod",
        "Deployment",
        "Service",
        "ConfigMap",
        "Secret",
        "Node",
        "Event",
        "",
    ];

    /// Pods, Secrets and ConfigMaps as the API server writes them, and the odd shapes a
    /// broken or hostile one could: repeated keys, escaped keys, scalars where objects belong.
    fn object() -> impl Strategy<Value = String> {
        let text = "[a-zA-Z0-9 \"\\\\é{}:,]{0,10}";
        let key = prop_oneof![
            Just("metadata"),
            Just("spec"),
            Just("status"),
            Just("kind"),
            Just("data"),
            Just("items"),
            Just("type"),
            Just("met\\u0061data"),
            Just("other")
        ];
        let scalar = prop_oneof![
            Just(json!(null)),
            Just(json!(3)),
            Just(json!(-1.5)),
            Just(json!(true)),
            text.prop_map(Value::from)
        ];
        let leaf = prop_oneof![
            scalar.clone(),
            prop::collection::btree_map("[a-z]{1,6}", scalar.clone(), 0..3).prop_map(|m| json!(m)),
        ];
        let containers = prop::collection::vec(
            (text, any::<bool>(), 0..5u32).prop_map(|(name, ready, restarts)| {
                json!({"name": name, "image": "i", "ready": ready, "restartCount": restarts,
                       "state": {"running": {"startedAt": "2026-11-20T08:00:00Z"}}})
            }),
            0..3,
        );
        let metadata = (text, any::<bool>(), any::<bool>(), leaf.clone()).prop_map(|(name, managed, applied, extra)| {
            let mut annotations = json!({"a": "b"});
            if applied {
                annotations[LAST_APPLIED] = Value::from(json!({"kind": "Secret", "data": {"k": "c2VjcmV0"}}).to_string());
            }
            let mut metadata = json!({"name": name, "namespace": "ns", "annotations": annotations,
                                      "creationTimestamp": "2026-11-20T08:00:00Z", "labels": extra});
            if managed {
                metadata["managedFields"] = json!([{"manager": "kubectl", "fieldsV1": {"f:spec": {}}}]);
            }
            metadata
        });
        let value = prop_oneof![
            leaf.clone(),
            metadata.prop_map(|m| m),
            containers
                .clone()
                .prop_map(|c| json!({"containers": c, "nodeName": "n1", "replicas": 2})),
            containers.prop_map(
                |c| json!({"phase": "Running", "containerStatuses": c, "readyReplicas": 1})
            ),
            prop::collection::btree_map("[a-z]{1,4}", leaf, 0..3).prop_map(|m| json!(m)),
        ];
        prop::collection::vec((key, value), 0..6).prop_map(|members| {
            // Written by hand: repeated keys and escapes are what a Value cannot hold.
            let body: Vec<String> = members
                .iter()
                .map(|(k, v)| format!("\"{k}\":{v}"))
                .collect();
            format!("{{{}}}", body.join(","))
        })
    }

    fn through_tree(raw: &str, kind: Option<&str>, reveal: bool) -> Value {
        let mut value: Value = serde_json::from_str(raw).unwrap_or_default();
        output::filter(&mut value, kind, &mut |_| unmask(reveal));
        value
    }

    fn through_node(raw: &RawValue, kind: &str, reveal: bool) -> Value {
        let node = Node::read(raw, kind).unwrap_or_else(|e| panic!("{e}"));
        let filtered = filter(node, Some(kind).filter(|k| !k.is_empty()), &mut |_| {
            unmask(reveal)
        })
        .unwrap_or_else(|e| panic!("{e}"));
        serde_json::to_value(&filtered).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn a_pod_is_opened_only_where_its_table_and_the_filter_look() {
        let raw = r#"{"metadata":{"name":"web","managedFields":[{"m":1}]},"spec":{"nodeName":"n1","volumes":[{"name":"v"}],"containers":[{"name":"c","env":[]}]},"status":{"phase":"Running"}}"#;
        let list = format!(
            r#"{{"kind":"PodList","metadata":{{"continue":"t","remainingItemCount":3}},"items":[{raw}]}}"#
        );
        let read = List::read(list.as_bytes(), "Pod").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(read.continue_token.as_deref(), Some("t"));
        assert_eq!(read.remaining_item_count, Some(3));
        let Some(Node::Object(members)) = read.items.first() else {
            panic!("not opened: {read:?}");
        };
        let shape: Vec<(&str, &str)> = members
            .iter()
            .map(|(k, v)| {
                (
                    k.as_ref(),
                    match v {
                        Node::Raw(_) => "raw",
                        _ => "open",
                    },
                )
            })
            .collect();
        assert_eq!(
            shape,
            [("metadata", "open"), ("spec", "open"), ("status", "open")]
        );
        let spec = read.items[0].get("spec").unwrap_or_else(|| panic!("spec"));
        assert!(
            matches!(spec.get("volumes"), Some(Node::Raw(_))),
            "{spec:?}"
        );
        assert!(
            matches!(spec.get("containers"), Some(Node::Array(_))),
            "{spec:?}"
        );
        let out = serde_json::to_string(&Filtered::Copied(
            Node::read(
                &serde_json::from_str::<Box<RawValue>>(raw).unwrap_or_else(|e| panic!("{e}")),
                "Pod",
            )
            .unwrap_or_else(|e| panic!("{e}")),
        ))
        .unwrap_or_default();
        assert_eq!(
            out,
            r#"{"metadata":{"name":"web"},"spec":{"nodeName":"n1","volumes":[{"name":"v"}],"containers":[{"name":"c","env":[]}]},"status":{"phase":"Running"}}"#
        );
    }

    #[test]
    fn a_list_that_is_not_utf8_is_refused_even_where_it_is_kept_as_bytes() {
        // `volumes` of a pod is never opened: only the check up front sees the byte.
        let mut body = br#"{"items":[{"spec":{"volumes":[{"name":"v"#.to_vec();
        body.push(0xff);
        body.extend_from_slice(br#""}]}}]}"#);
        let Err(error) = List::read(&body, "Pod") else {
            panic!("a list with a byte 0xff was read");
        };
        assert!(error.to_string().contains("not UTF-8"), "{error}");
        let valid = r#"{"items":[{"spec":{"volumes":[{"name":"vÿ"}]}}]}"#;
        assert_eq!(
            List::read(valid.as_bytes(), "Pod")
                .map(|l| l.items.len())
                .ok(),
            Some(1)
        );
    }

    #[test]
    fn null_or_missing_items_are_an_empty_list_and_broken_lists_are_errors() {
        for body in [r#"{"items":null}"#, r#"{"kind":"PodList"}"#] {
            let list = List::read(body.as_bytes(), "Pod").unwrap_or_else(|e| panic!("{body}: {e}"));
            assert!(list.items.is_empty(), "{body}");
        }
        for body in [
            r#"{"items":[{"a":1}"#,
            r#"{"items":[]} x"#,
            r#"{"items":[],"items":[]}"#,
            "[]",
            r#"{"items":3}"#,
        ] {
            assert!(List::read(body.as_bytes(), "Pod").is_err(), "{body}");
        }
    }

    proptest! {
        #[test]
        fn a_node_filters_and_views_as_the_tree_and_the_row_view_do(
            raw in object(), kind in prop::sample::select(KINDS), reveal in any::<bool>()
        ) {
            let Ok(raw) = serde_json::from_str::<Box<RawValue>>(&raw) else {
                return Ok(());
            };
            let hint = Some(kind).filter(|k| !k.is_empty());
            prop_assert_eq!(through_node(&raw, kind, reveal), through_tree(raw.get(), hint, reveal));
            let node = Node::read(&raw, kind).unwrap_or_else(|e| panic!("{e}"));
            prop_assert_eq!(node.view(summary::paths(kind)), summary::row_view(&raw, kind));
        }

        #[test]
        fn a_list_reads_the_items_a_parser_reads(items in prop::collection::vec(object(), 0..4)) {
            let body = format!(r#"{{"kind":"PodList","items":[{}]}}"#, items.join(","));
            let parsed: Result<Value, _> = serde_json::from_str(&body);
            let read = List::read(body.as_bytes(), "Pod");
            prop_assert_eq!(parsed.is_ok(), read.is_ok());
            if let (Ok(parsed), Ok(read)) = (parsed, read) {
                let raw: Vec<Value> = read.items.iter().map(|n| serde_json::to_value(n).unwrap_or_default()).collect();
                prop_assert_eq!(Some(&Value::Array(raw)), parsed.get("items"));
            }
        }

        #[test]
        fn any_bytes_are_read_without_panic(text in "(?s).{0,200}") {
            if let Ok(list) = List::read(text.as_bytes(), "Pod") {
                for node in list.items {
                    let _ = node.view(summary::paths("Pod"));
                    let _ = filter(node, Some("Pod"), &mut |_| None);
                }
            }
        }
    }
}
