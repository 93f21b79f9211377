//! Summarises Kubernetes objects as a compact table, one row per object with the columns a
//! person looks at first (as `kubectl get` shows them), so a model reads a list at a glance and
//! asks `get-resource` for the whole object when it needs it.
//!
//! A row's view holds only what its kind's columns show ([`columns`]): [`view_raw`] reads it from
//! the API server's bytes, skipping the rest without building it, and a list's items read as
//! [`shaped`](super::shaped) nodes give the same view without reading any byte twice.

use std::collections::HashMap;
use std::fmt;
use std::sync::LazyLock;

use serde::de::{
    self, Deserialize, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor,
};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::output::Borrowed;

/// Makes one row's cells from an object.
type Row = fn(&Value, jiff::Timestamp) -> Vec<String>;

/// [`Value::pointer`] for the literal paths written in this code (`/status/phase`: no `~`
/// escapes), without the two strings `pointer` allocates for every segment it unescapes.
pub(crate) trait At {
    fn at(&self, path: &str) -> Option<&Value>;
}

impl At for Value {
    fn at(&self, path: &str) -> Option<&Value> {
        debug_assert!(!path.contains('~'), "an escaped pointer: {path}");
        let Some(path) = path.strip_prefix('/') else {
            return path.is_empty().then_some(self);
        };
        path.split('/')
            .try_fold(self, |value, segment| match value {
                Value::Object(map) => map.get(segment),
                Value::Array(items) => segment.parse::<usize>().ok().and_then(|i| items.get(i)),
                _ => None,
            })
    }
}

/// A table of `items` of one kind (`kind` as the API writes it: `Pod`, `Deployment`, ...).
/// `with_namespace` adds a NAMESPACE column (for lists across namespaces).
pub fn table(kind: &str, items: &[Value], with_namespace: bool, now: jiff::Timestamp) -> String {
    let (headers, row): (&[&str], Row) = match kind {
        "Pod" => (
            &["NAME", "READY", "STATUS", "RESTARTS", "AGE", "NODE"],
            pod_row,
        ),
        "Deployment" => (
            &["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"],
            deployment_row,
        ),
        "ReplicaSet" | "StatefulSet" => (&["NAME", "DESIRED", "READY", "AGE"], replicas_row),
        "DaemonSet" => (
            &["NAME", "DESIRED", "CURRENT", "READY", "AVAILABLE", "AGE"],
            daemonset_row,
        ),
        "Service" => (&["NAME", "TYPE", "CLUSTER-IP", "PORTS", "AGE"], service_row),
        "Node" => (&["NAME", "STATUS", "AGE", "VERSION"], node_row),
        "Job" => (&["NAME", "COMPLETIONS", "STATUS", "AGE"], job_row),
        "CronJob" => (
            &[
                "NAME",
                "SCHEDULE",
                "SUSPEND",
                "ACTIVE",
                "LAST SCHEDULE",
                "AGE",
            ],
            cronjob_row,
        ),
        "ConfigMap" => (&["NAME", "DATA", "AGE"], configmap_row),
        "Secret" => (&["NAME", "TYPE", "DATA", "AGE"], secret_row),
        "Ingress" => (&["NAME", "CLASS", "HOSTS", "AGE"], ingress_row),
        "PersistentVolumeClaim" => (
            &[
                "NAME",
                "STATUS",
                "VOLUME",
                "CAPACITY",
                "STORAGECLASS",
                "AGE",
            ],
            pvc_row,
        ),
        "PersistentVolume" => (
            &["NAME", "CAPACITY", "STATUS", "CLAIM", "STORAGECLASS", "AGE"],
            pv_row,
        ),
        "Event" => (
            &["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"],
            event_row,
        ),
        _ => (&["NAME", "AGE"], plain_row),
    };
    let mut rows: Vec<Vec<String>> = Vec::with_capacity(items.len() + 1);
    let mut header: Vec<String> = headers.iter().map(|h| (*h).to_owned()).collect();
    if with_namespace {
        header.insert(0, "NAMESPACE".to_owned());
    }
    rows.push(header);
    for item in items {
        let mut cells = row(item, now);
        if with_namespace {
            cells.insert(0, text(item, "/metadata/namespace"));
        }
        rows.push(cells);
    }
    align(&rows)
}

/// Lays rows out in columns separated by three spaces; the last column is not padded.
pub fn align(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let last = row.len().saturating_sub(1);
        for (c, cell) in row.iter().enumerate() {
            out.push_str(cell);
            if c < last {
                let pad = widths[c] - cell.chars().count() + 3;
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push('\n');
    }
    out
}

fn text(item: &Value, pointer: &str) -> String {
    match item.at(pointer) {
        Some(Value::String(s)) => one_line(s),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::Bool(b)) => b.to_string(),
        _ => String::new(),
    }
}

fn number(item: &Value, pointer: &str) -> i64 {
    item.at(pointer).and_then(Value::as_i64).unwrap_or(0)
}

fn or_none(s: String) -> String {
    if s.is_empty() { "<none>".to_owned() } else { s }
}

/// Newlines and tabs would break the table.
fn one_line(s: &str) -> String {
    s.replace(['\n', '\r', '\t'], " ")
}

/// An age as kubectl writes it: `45s`, `12m`, `3h`, `5d`.
pub fn age(item: &Value, pointer: &str, now: jiff::Timestamp) -> String {
    let Some(since) = item
        .at(pointer)
        .and_then(Value::as_str)
        .and_then(|t| t.parse::<jiff::Timestamp>().ok())
    else {
        return "<unknown>".to_owned();
    };
    let seconds = now.duration_since(since).as_secs().max(0);
    match seconds {
        s if s < 120 => format!("{s}s"),
        s if s < 2 * 3600 => format!("{}m", s / 60),
        s if s < 2 * 86400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
}

fn created(item: &Value, now: jiff::Timestamp) -> String {
    age(item, "/metadata/creationTimestamp", now)
}

fn name(item: &Value) -> String {
    text(item, "/metadata/name")
}

fn plain_row(item: &Value, now: jiff::Timestamp) -> Vec<String> {
    vec![name(item), created(item, now)]
}

/// A pod's status as kubectl shows it: the reason a container waits or ended, else the phase.
pub fn pod_status(pod: &Value) -> String {
    if pod.at("/metadata/deletionTimestamp").is_some() {
        return "Terminating".to_owned();
    }
    let statuses = |field: &str| {
        pod.get("status")
            .and_then(|s| s.get(field))
            .and_then(Value::as_array)
            .map_or(&[][..], Vec::as_slice)
    };
    for status in statuses("initContainerStatuses") {
        if let Some(reason) = status.at("/state/waiting/reason").and_then(Value::as_str) {
            return format!("Init:{reason}");
        }
    }
    for status in statuses("containerStatuses") {
        for state in ["/state/waiting/reason", "/state/terminated/reason"] {
            if let Some(reason) = status.at(state).and_then(Value::as_str) {
                return reason.to_owned();
            }
        }
    }
    if let Some(reason) = pod.at("/status/reason").and_then(Value::as_str) {
        return reason.to_owned();
    }
    or_none(text(pod, "/status/phase"))
}

fn pod_row(pod: &Value, now: jiff::Timestamp) -> Vec<String> {
    let statuses = pod
        .at("/status/containerStatuses")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    let total = pod
        .at("/spec/containers")
        .and_then(Value::as_array)
        .map_or(statuses.len(), Vec::len);
    let ready = statuses
        .iter()
        .filter(|s| s.get("ready").and_then(Value::as_bool) == Some(true))
        .count();
    let restarts: i64 = statuses.iter().map(|s| number(s, "/restartCount")).sum();
    vec![
        name(pod),
        format!("{ready}/{total}"),
        pod_status(pod),
        restarts.to_string(),
        created(pod, now),
        or_none(text(pod, "/spec/nodeName")),
    ]
}

fn deployment_row(d: &Value, now: jiff::Timestamp) -> Vec<String> {
    vec![
        name(d),
        format!(
            "{}/{}",
            number(d, "/status/readyReplicas"),
            number(d, "/spec/replicas")
        ),
        number(d, "/status/updatedReplicas").to_string(),
        number(d, "/status/availableReplicas").to_string(),
        created(d, now),
    ]
}

fn replicas_row(r: &Value, now: jiff::Timestamp) -> Vec<String> {
    vec![
        name(r),
        number(r, "/spec/replicas").to_string(),
        number(r, "/status/readyReplicas").to_string(),
        created(r, now),
    ]
}

fn daemonset_row(d: &Value, now: jiff::Timestamp) -> Vec<String> {
    vec![
        name(d),
        number(d, "/status/desiredNumberScheduled").to_string(),
        number(d, "/status/currentNumberScheduled").to_string(),
        number(d, "/status/numberReady").to_string(),
        number(d, "/status/numberAvailable").to_string(),
        created(d, now),
    ]
}

fn service_row(s: &Value, now: jiff::Timestamp) -> Vec<String> {
    let ports: Vec<String> = s
        .at("/spec/ports")
        .and_then(Value::as_array)
        .map(|ports| {
            ports
                .iter()
                .map(|p| {
                    let port = number(p, "/port");
                    let protocol = p.get("protocol").and_then(Value::as_str).unwrap_or("TCP");
                    match p.get("nodePort").and_then(Value::as_i64) {
                        Some(node) => format!("{port}:{node}/{protocol}"),
                        None => format!("{port}/{protocol}"),
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    vec![
        name(s),
        text(s, "/spec/type"),
        or_none(text(s, "/spec/clusterIP")),
        or_none(ports.join(",")),
        created(s, now),
    ]
}

fn node_row(n: &Value, now: jiff::Timestamp) -> Vec<String> {
    let ready = n
        .at("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|c| {
            c.iter()
                .find(|c| c.get("type").and_then(Value::as_str) == Some("Ready"))
        })
        .and_then(|c| c.get("status").and_then(Value::as_str))
        .map(|s| if s == "True" { "Ready" } else { "NotReady" })
        .unwrap_or("Unknown");
    vec![
        name(n),
        ready.to_owned(),
        created(n, now),
        text(n, "/status/nodeInfo/kubeletVersion"),
    ]
}

fn job_row(j: &Value, now: jiff::Timestamp) -> Vec<String> {
    let completions = j
        .at("/spec/completions")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let condition = j
        .at("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|c| {
            c.iter()
                .find(|c| c.get("status").and_then(Value::as_str) == Some("True"))
        })
        .and_then(|c| c.get("type").and_then(Value::as_str))
        .unwrap_or("Running");
    vec![
        name(j),
        format!("{}/{completions}", number(j, "/status/succeeded")),
        condition.to_owned(),
        created(j, now),
    ]
}

fn cronjob_row(c: &Value, now: jiff::Timestamp) -> Vec<String> {
    let active = c
        .at("/status/active")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    let last = if c.at("/status/lastScheduleTime").is_some() {
        age(c, "/status/lastScheduleTime", now)
    } else {
        "<none>".to_owned()
    };
    vec![
        name(c),
        text(c, "/spec/schedule"),
        c.at("/spec/suspend")
            .and_then(Value::as_bool)
            .unwrap_or(false)
            .to_string(),
        active.to_string(),
        last,
        created(c, now),
    ]
}

fn count(item: &Value, field: &str) -> usize {
    item.get(field)
        .and_then(Value::as_object)
        .map_or(0, serde_json::Map::len)
}

fn configmap_row(c: &Value, now: jiff::Timestamp) -> Vec<String> {
    vec![
        name(c),
        (count(c, "data") + count(c, "binaryData")).to_string(),
        created(c, now),
    ]
}

fn secret_row(s: &Value, now: jiff::Timestamp) -> Vec<String> {
    vec![
        name(s),
        text(s, "/type"),
        count(s, "data").to_string(),
        created(s, now),
    ]
}

fn ingress_row(i: &Value, now: jiff::Timestamp) -> Vec<String> {
    let hosts: Vec<String> = i
        .at("/spec/rules")
        .and_then(Value::as_array)
        .map(|rules| {
            rules
                .iter()
                .map(|r| text(r, "/host"))
                .filter(|h| !h.is_empty())
                .collect()
        })
        .unwrap_or_default();
    vec![
        name(i),
        or_none(text(i, "/spec/ingressClassName")),
        if hosts.is_empty() {
            "*".to_owned()
        } else {
            hosts.join(",")
        },
        created(i, now),
    ]
}

fn pvc_row(p: &Value, now: jiff::Timestamp) -> Vec<String> {
    vec![
        name(p),
        text(p, "/status/phase"),
        or_none(text(p, "/spec/volumeName")),
        or_none(text(p, "/status/capacity/storage")),
        or_none(text(p, "/spec/storageClassName")),
        created(p, now),
    ]
}

fn pv_row(p: &Value, now: jiff::Timestamp) -> Vec<String> {
    let claim = match (
        text(p, "/spec/claimRef/namespace"),
        text(p, "/spec/claimRef/name"),
    ) {
        (ns, name) if !name.is_empty() => format!("{ns}/{name}"),
        _ => String::new(),
    };
    vec![
        name(p),
        or_none(text(p, "/spec/capacity/storage")),
        text(p, "/status/phase"),
        or_none(claim),
        or_none(text(p, "/spec/storageClassName")),
        created(p, now),
    ]
}

/// The time an event last happened: `lastTimestamp`, else `eventTime`, else its creation.
pub fn event_time(e: &Value) -> Option<jiff::Timestamp> {
    [
        "/lastTimestamp",
        "/eventTime",
        "/metadata/creationTimestamp",
    ]
    .iter()
    .find_map(|p| e.at(p).and_then(Value::as_str))
    .and_then(|t| t.parse().ok())
}

fn event_row(e: &Value, now: jiff::Timestamp) -> Vec<String> {
    let seen = match event_time(e) {
        Some(t) => age(&Value::from(t.to_string()), "", now),
        None => "<unknown>".to_owned(),
    };
    let count = number(e, "/count");
    let reason = text(e, "/reason");
    vec![
        seen,
        text(e, "/type"),
        if count > 1 {
            format!("{reason} (x{count})")
        } else {
            reason
        },
        format!(
            "{}/{}",
            text(e, "/involvedObject/kind").to_ascii_lowercase(),
            text(e, "/involvedObject/name")
        ),
        text(e, "/message"),
    ]
}

/// The paths each kind's columns read (segments separated by `/`; `*` is any key or list
/// element; a trailing `/` keeps an object's keys without their values).
pub fn columns(kind: &str) -> &'static [&'static str] {
    match kind {
        "Pod" => &[
            "metadata/name",
            "metadata/namespace",
            "metadata/creationTimestamp",
            "metadata/deletionTimestamp",
            "spec/nodeName",
            "spec/containers/*/name",
            "status/phase",
            "status/reason",
            "status/containerStatuses/*/ready",
            "status/containerStatuses/*/restartCount",
            "status/containerStatuses/*/state",
            "status/initContainerStatuses/*/state",
        ],
        "Deployment" => &[
            "metadata/name",
            "metadata/namespace",
            "metadata/creationTimestamp",
            "spec/replicas",
            "status/readyReplicas",
            "status/updatedReplicas",
            "status/availableReplicas",
        ],
        "ReplicaSet" | "StatefulSet" => &[
            "metadata/name",
            "metadata/namespace",
            "metadata/creationTimestamp",
            "spec/replicas",
            "status/readyReplicas",
        ],
        "DaemonSet" => &[
            "metadata/name",
            "metadata/namespace",
            "metadata/creationTimestamp",
            "status/desiredNumberScheduled",
            "status/currentNumberScheduled",
            "status/numberReady",
            "status/numberAvailable",
        ],
        "Service" => &[
            "metadata/name",
            "metadata/namespace",
            "metadata/creationTimestamp",
            "spec/type",
            "spec/clusterIP",
            "spec/ports",
        ],
        "Node" => &[
            "metadata/name",
            "metadata/creationTimestamp",
            "status/conditions",
            "status/nodeInfo/kubeletVersion",
        ],
        "Job" => &[
            "metadata/name",
            "metadata/namespace",
            "metadata/creationTimestamp",
            "spec/completions",
            "status/succeeded",
            "status/conditions",
        ],
        "CronJob" => &[
            "metadata/name",
            "metadata/namespace",
            "metadata/creationTimestamp",
            "spec/schedule",
            "spec/suspend",
            "status/active",
            "status/lastScheduleTime",
        ],
        "ConfigMap" => &[
            "metadata/name",
            "metadata/namespace",
            "metadata/creationTimestamp",
            "data/",
            "binaryData/",
        ],
        "Secret" => &[
            "metadata/name",
            "metadata/namespace",
            "metadata/creationTimestamp",
            "type",
            "data/",
        ],
        "Ingress" => &[
            "metadata/name",
            "metadata/namespace",
            "metadata/creationTimestamp",
            "spec/ingressClassName",
            "spec/rules/*/host",
        ],
        "PersistentVolumeClaim" => &[
            "metadata/name",
            "metadata/namespace",
            "metadata/creationTimestamp",
            "status/phase",
            "spec/volumeName",
            "status/capacity/storage",
            "spec/storageClassName",
        ],
        "PersistentVolume" => &[
            "metadata/name",
            "metadata/creationTimestamp",
            "spec/capacity/storage",
            "status/phase",
            "spec/claimRef/namespace",
            "spec/claimRef/name",
            "spec/storageClassName",
        ],
        "Event" => &[
            "metadata/namespace",
            "metadata/creationTimestamp",
            "lastTimestamp",
            "eventTime",
            "type",
            "reason",
            "count",
            "involvedObject/kind",
            "involvedObject/name",
            "message",
        ],
        _ => &[
            "metadata/name",
            "metadata/namespace",
            "metadata/creationTimestamp",
        ],
    }
}

/// The parts of an object its kind's table shows (see [`columns`]); `Null` if it is not JSON.
/// The reference a list's shaped reading is held to.
#[cfg(test)]
pub fn row_view(raw: &RawValue, kind: &str) -> Value {
    view_raw(raw, paths(kind))
}

/// What a view keeps of `raw` at `paths`; `Null` if it is not JSON.
pub(crate) fn view_raw(raw: &RawValue, paths: &Paths) -> Value {
    let mut deserializer = serde_json::Deserializer::from_str(raw.get());
    match paths.visit() {
        Visit::Whole => Value::deserialize(&mut deserializer),
        Visit::Keys => KeysOnly.deserialize(&mut deserializer),
        Visit::Enter => Pruned(paths).deserialize(&mut deserializer),
    }
    .unwrap_or(Value::Null)
}

/// The tree of paths `kind`'s columns read.
pub(crate) fn paths(kind: &str) -> &'static Paths {
    PATHS.get(kind).unwrap_or(&PATHS[""])
}

/// The kinds with columns of their own, and `""` for the rest.
const KINDS: &[&str] = &[
    "Pod",
    "Deployment",
    "ReplicaSet",
    "StatefulSet",
    "DaemonSet",
    "Service",
    "Node",
    "Job",
    "CronJob",
    "ConfigMap",
    "Secret",
    "Ingress",
    "PersistentVolumeClaim",
    "PersistentVolume",
    "Event",
    "",
];

/// Each kind's [`columns`] as a tree of paths, made once.
static PATHS: LazyLock<HashMap<&'static str, Paths>> = LazyLock::new(|| {
    KINDS
        .iter()
        .map(|kind| {
            let mut paths = Paths::default();
            for pattern in columns(kind) {
                paths.insert(pattern);
            }
            (*kind, paths)
        })
        .collect()
});

/// A tree of the paths a view keeps: each node is one key (or `*`, any key or element).
#[derive(Debug, Default)]
pub(crate) struct Paths {
    children: Vec<(&'static str, Paths)>,
    pub(crate) any: Option<Box<Paths>>,
    /// Keep this value whole.
    whole: bool,
    /// Keep this object's keys, without their values.
    keys: bool,
}

impl Paths {
    fn insert(&mut self, pattern: &'static str) {
        let (body, keys_only) = match pattern.strip_suffix('/') {
            Some(body) => (body, true),
            None => (pattern, false),
        };
        let mut node = self;
        for segment in body.split('/') {
            node = if segment == "*" {
                node.any.get_or_insert_with(Box::default)
            } else {
                match node.children.iter().position(|(s, _)| *s == segment) {
                    Some(at) => &mut node.children[at].1,
                    None => {
                        node.children.push((segment, Paths::default()));
                        let last = node.children.len() - 1;
                        &mut node.children[last].1
                    }
                }
            };
        }
        if keys_only {
            node.keys = true;
        } else {
            node.whole = true;
        }
    }

    pub(crate) fn child(&self, segment: &str) -> Option<&Paths> {
        self.children
            .iter()
            .find(|(s, _)| *s == segment)
            .map(|(_, p)| p)
            .or(self.any.as_deref())
    }

    pub(crate) fn visit(&self) -> Visit {
        if self.whole {
            Visit::Whole
        } else if self.keys {
            Visit::Keys
        } else {
            Visit::Enter
        }
    }
}

/// What to do with one value while reading a view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Visit {
    Enter,
    Keys,
    Whole,
}

/// Reads a value keeping only the paths below this node; the rest is skipped unbuilt.
pub(crate) struct Pruned<'p>(pub(crate) &'p Paths);

impl<'de> DeserializeSeed<'de> for Pruned<'_> {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

/// An object's keys, each with `null` for its value.
pub(crate) struct KeysOnly;

impl<'de> DeserializeSeed<'de> for KeysOnly {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for KeysOnly {
    type Value = Value;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut keys = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            map.next_value::<IgnoredAny>()?;
            keys.insert(key, Value::Null);
        }
        Ok(Value::Object(keys))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Value::Null)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Value, E> {
        Ok(Value::Null)
    }
}

impl<'de> Visitor<'de> for Pruned<'_> {
    type Value = Value;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut kept = Map::new();
        while let Some(Borrowed(key)) = map.next_key::<Borrowed<'de>>()? {
            let value = match self.0.child(&key) {
                None => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
                Some(node) => match node.visit() {
                    Visit::Whole => map.next_value::<Value>()?,
                    Visit::Keys => map.next_value_seed(KeysOnly)?,
                    Visit::Enter => map.next_value_seed(Pruned(node))?,
                },
            };
            kept.insert(key.into_owned(), value);
        }
        Ok(Value::Object(kept))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut kept = Vec::new();
        let next = |seq: &mut A| match self.0.any.as_deref() {
            None => seq
                .next_element::<IgnoredAny>()
                .map(|e| e.map(|_| Value::Null)),
            Some(node) => match node.visit() {
                Visit::Whole => seq.next_element::<Value>(),
                Visit::Keys => seq.next_element_seed(KeysOnly),
                Visit::Enter => seq.next_element_seed(Pruned(node)),
            },
        };
        while let Some(value) = next(&mut seq)? {
            kept.push(value);
        }
        Ok(Value::Array(kept))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::from(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_view_reads_escaped_keys_as_the_keys_they_spell() {
        let raw = RawValue::from_string(
            r#"{"met\u0061data":{"name":"web","n\u0061mespace":"shop"},"status":{"phase":"Running"}}"#
                .to_owned(),
        )
        .expect("raw JSON");
        let view = row_view(&raw, "Pod");
        assert_eq!(view.at("/metadata/name"), Some(&json!("web")));
        assert_eq!(view.at("/metadata/namespace"), Some(&json!("shop")));
        assert_eq!(view.at("/status/phase"), Some(&json!("Running")));
    }

    #[test]
    fn at_reads_what_pointer_reads_for_every_path_used() {
        let text = include_str!("summary.rs");
        let paths: std::collections::BTreeSet<&str> = text
            .split('"')
            .filter(|s| {
                s.starts_with('/')
                    && s.len() > 1
                    && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'/')
            })
            .collect();
        assert!(paths.len() > 40, "{paths:?}");
        let object = serde_json::json!({
            "metadata": {"name": "web", "namespace": "shop", "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"containers": [{"name": "a"}], "ports": [{"port": 80}], "replicas": 3, "capacity": {"storage": "1Gi"}},
            "status": {"phase": "Running", "containerStatuses": [], "conditions": [{"type": "Ready"}], "nodeInfo": {"kubeletVersion": "v1.20"}},
            "state": {"waiting": {"reason": "CrashLoopBackOff"}}, "count": 2, "type": "Warning",
        });
        for path in paths {
            assert_eq!(object.at(path), object.pointer(path), "{path}");
        }
        assert_eq!(object.at(""), Some(&object));
        assert_eq!(
            object.at("/spec/containers/0/name"),
            object.pointer("/spec/containers/0/name")
        );
        assert_eq!(object.at("/nothing/here"), None);
    }

    #[test]
    fn pods_show_what_kubectl_shows() {
        let now: jiff::Timestamp = "2026-01-01T01:00:00Z".parse().unwrap_or_default();
        let pods = [
            json!({"metadata": {"name": "web-1", "namespace": "a", "creationTimestamp": "2026-01-01T00:00:00Z"},
                   "spec": {"nodeName": "n1", "containers": [{}, {}]},
                   "status": {"phase": "Running", "containerStatuses": [
                       {"ready": true, "restartCount": 1, "state": {"running": {}}},
                       {"ready": false, "restartCount": 4, "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}}),
            json!({"metadata": {"name": "pending", "namespace": "b", "creationTimestamp": "2026-01-01T00:59:30Z"},
                   "spec": {"containers": [{}]}, "status": {"phase": "Pending"}}),
        ];
        let table = table("Pod", &pods, true, now);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 3);
        let cells = |l: &str| l.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
        assert_eq!(
            cells(lines[0]),
            [
                "NAMESPACE",
                "NAME",
                "READY",
                "STATUS",
                "RESTARTS",
                "AGE",
                "NODE"
            ]
        );
        assert_eq!(
            cells(lines[1]),
            ["a", "web-1", "1/2", "CrashLoopBackOff", "5", "60m", "n1"]
        );
        assert_eq!(
            cells(lines[2]),
            ["b", "pending", "0/1", "Pending", "0", "30s", "<none>"]
        );
    }

    #[test]
    fn a_view_holds_what_the_columns_read_and_the_table_is_the_same() {
        let now = jiff::Timestamp::now();
        let pod = json!({"metadata": {"name": "web-1", "namespace": "a", "creationTimestamp": "2026-01-01T00:00:00Z",
                                      "managedFields": [{"big": "x"}], "labels": {"app": "web"}},
                         "spec": {"nodeName": "n1", "containers": [{"name": "a", "env": [{"name": "X"}]}, {"name": "b"}]},
                         "status": {"phase": "Running", "podIP": "10.0.0.1", "containerStatuses": [
                             {"ready": true, "restartCount": 2, "image": "i", "state": {"running": {}}}]}});
        let raw = serde_json::value::to_raw_value(&pod).unwrap_or_default();
        let view = row_view(&raw, "Pod");
        assert_eq!(
            view,
            json!({"metadata": {"name": "web-1", "namespace": "a", "creationTimestamp": "2026-01-01T00:00:00Z"},
                   "spec": {"nodeName": "n1", "containers": [{"name": "a"}, {"name": "b"}]},
                   "status": {"phase": "Running", "containerStatuses": [{"ready": true, "restartCount": 2, "state": {"running": {}}}]}})
        );
        assert_eq!(
            table("Pod", std::slice::from_ref(&view), true, now),
            table("Pod", &[pod], true, now)
        );
        let cm =
            json!({"metadata": {"name": "c"}, "data": {"big": "x".repeat(1000), "small": "y"}});
        let raw = serde_json::value::to_raw_value(&cm).unwrap_or_default();
        assert_eq!(
            row_view(&raw, "ConfigMap")["data"],
            json!({"big": null, "small": null})
        );
    }

    #[test]
    fn unknown_kinds_and_missing_fields_still_make_a_table() {
        let now = jiff::Timestamp::now();
        let table = table(
            "Widget",
            &[json!({"metadata": {"name": "w\nx"}})],
            false,
            now,
        );
        assert_eq!(table, "NAME   AGE\nw x    <unknown>\n");
    }
}
