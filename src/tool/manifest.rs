//! Reads Kubernetes manifests as callers write them: YAML or JSON, one or many documents, `List`s
//! flattened, each object checked for the fields an apply needs. Parsing is bounded (document
//! count, YAML alias expansion), so a hostile manifest costs little and never panics.

use serde_json::Value;

use super::args::{check_name, check_namespace};

/// The most objects one manifest may hold.
pub const MAX_OBJECTS: usize = 200;

/// One object of a manifest, as written (its `apiVersion`, `kind` and `metadata.name` checked).
#[derive(Debug, Clone, PartialEq)]
pub struct ManifestObject {
    pub api_version: String,
    pub kind: String,
    pub name: String,
    /// `metadata.namespace`, if the manifest names one.
    pub namespace: Option<String>,
    pub object: Value,
}

/// Parses a manifest: JSON if it starts with `{` or `[`, else (multi-document) YAML. A manifest
/// with no object is refused.
pub fn parse(text: &str) -> Result<Vec<ManifestObject>, String> {
    let objects = parse_all(text)?;
    if objects.is_empty() {
        return Err("the manifest holds no object".to_owned());
    }
    Ok(objects)
}

/// Parses a manifest that may hold no object (a Helm release of only hooks, say).
pub fn parse_all(text: &str) -> Result<Vec<ManifestObject>, String> {
    let documents = documents(text)?;
    let mut objects = Vec::new();
    for (n, document) in documents.into_iter().enumerate() {
        flatten(document, n + 1, &mut objects)?;
        if objects.len() > MAX_OBJECTS {
            return Err(format!(
                "the manifest holds more than {MAX_OBJECTS} objects"
            ));
        }
    }
    Ok(objects)
}

fn documents(text: &str) -> Result<Vec<Value>, String> {
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        return match serde_json::from_str::<Value>(trimmed) {
            Ok(Value::Array(items)) => Ok(items),
            Ok(value) => Ok(vec![value]),
            Err(e) => Err(format!("the manifest is not valid JSON: {e}")),
        };
    }
    let options = serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_aliases: 100,
            max_anchors: 100,
            max_documents: MAX_OBJECTS,
            max_depth: 64,
            max_nodes: 250_000,
        },
    };
    serde_saphyr::from_multiple_with_options::<Value>(text, options)
        .map(|docs| docs.into_iter().filter(|d| !d.is_null()).collect())
        .map_err(|e| {
            let message = e.to_string();
            let first = message.lines().next().unwrap_or(&message).to_owned();
            format!("the manifest is not valid YAML: {first}")
        })
}

fn flatten(document: Value, number: usize, out: &mut Vec<ManifestObject>) -> Result<(), String> {
    let Value::Object(mut object) = document else {
        return Err(format!("document {number} is not an object"));
    };
    let kind = object
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    if kind == "List" || (kind.ends_with("List") && object.contains_key("items")) {
        let items = match object.remove("items") {
            Some(Value::Array(items)) => items,
            _ => return Err(format!("document {number} is a {kind} without items")),
        };
        for item in items {
            flatten(item, number, out)?;
        }
        return Ok(());
    }
    let text = |field: &str| {
        object
            .get(field)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| format!("document {number} has no `{field}`"))
    };
    let api_version = text("apiVersion")?;
    let kind = text("kind")?;
    if !kind.chars().all(|c| c.is_ascii_alphanumeric()) || api_version.contains(['?', '#', ' ']) {
        return Err(format!(
            "document {number}: {api_version:?} {kind:?} is not a Kubernetes type"
        ));
    }
    let metadata = object
        .get("metadata")
        .and_then(Value::as_object)
        .ok_or_else(|| format!("document {number} ({kind}) has no `metadata`"))?;
    let name = metadata
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            format!(
                "document {number} ({kind}) has no `metadata.name` (kubegate applies named \
                 objects; `generateName` is not supported)"
            )
        })?
        .to_owned();
    check_name(&format!("metadata.name of document {number}"), &name)?;
    let namespace = match metadata.get("namespace") {
        None | Some(Value::Null) => None,
        Some(Value::String(ns)) if ns.is_empty() => None,
        Some(Value::String(ns)) => {
            check_namespace(ns)?;
            Some(ns.clone())
        }
        Some(_) => {
            return Err(format!(
                "document {number}: `metadata.namespace` is not a string"
            ));
        }
    };
    out.push(ManifestObject {
        api_version,
        kind,
        name,
        namespace,
        object: Value::Object(object),
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn yaml_json_and_lists_give_the_same_objects() {
        let yaml = "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  namespace: team-a\ndata:\n  k: v\n---\n# only a comment\n---\napiVersion: v1\nkind: List\nitems:\n- apiVersion: apps/v1\n  kind: Deployment\n  metadata: {name: web}\n";
        let objects = parse(yaml).unwrap_or_default();
        let names: Vec<(&str, &str, Option<&str>)> = objects
            .iter()
            .map(|o| (o.kind.as_str(), o.name.as_str(), o.namespace.as_deref()))
            .collect();
        assert_eq!(
            names,
            [
                ("ConfigMap", "a", Some("team-a")),
                ("Deployment", "web", None)
            ]
        );
        assert_eq!(objects[0].object["data"]["k"], "v");
        let json = r#"[{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","namespace":"team-a"},"data":{"k":"v"}}]"#;
        assert_eq!(parse(json).unwrap_or_default()[0], objects[0]);
    }

    #[test]
    fn broken_manifests_say_what_is_wrong() {
        let cases = [
            ("", "holds no object"),
            (
                "kind: ConfigMap\nmetadata: {name: a}",
                "has no `apiVersion`",
            ),
            ("apiVersion: v1\nkind: ConfigMap", "has no `metadata`"),
            (
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {generateName: a-}",
                "generateName",
            ),
            (
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ../etc}",
                "not a Kubernetes object name",
            ),
            (
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: Bad}",
                "not a namespace name",
            ),
            (
                "apiVersion: v1\nkind: Config/Map\nmetadata: {name: a}",
                "not a Kubernetes type",
            ),
            ("- 1\n- 2", "is not an object"),
            ("{not json", "not valid JSON"),
            ("a: [unclosed", "not valid YAML"),
        ];
        for (text, expected) in cases {
            let error = parse(text).err().unwrap_or_default();
            assert!(error.contains(expected), "{text:?}: {error}");
        }
    }

    #[test]
    fn alias_bombs_are_refused() {
        let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for n in 0..12 {
            let prev = if n == 0 {
                "a".to_owned()
            } else {
                format!("l{}", n - 1)
            };
            bomb.push_str(&format!(
                "l{n}: &l{n} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"
            ));
        }
        assert!(parse(&bomb).is_err());
        let many =
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n".repeat(MAX_OBJECTS + 5);
        assert!(parse(&many).is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]
        #[test]
        fn any_text_is_answered_without_panic(text in "(?s).{0,300}") {
            let _ = parse(&text);
        }

        #[test]
        fn yaml_shaped_text_is_answered_without_panic(
            lines in prop::collection::vec("( {0,4})(-|[a-z]{1,6}:)( [a-z0-9&*!{}\\[\\],:|>-]{0,12})?", 0..20)
        ) {
            let _ = parse(&lines.join("\n"));
        }
    }
}
