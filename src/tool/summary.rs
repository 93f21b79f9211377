//! Summarises Kubernetes objects as a compact table, one row per object with the columns a
//! person looks at first (as `kubectl get` shows them), so a model reads a list at a glance and
//! asks `get-resource` for the whole object when it needs it.

use serde_json::Value;

/// Makes one row's cells from an object.
type Row = fn(&Value, jiff::Timestamp) -> Vec<String>;

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
    match item.pointer(pointer) {
        Some(Value::String(s)) => one_line(s),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::Bool(b)) => b.to_string(),
        _ => String::new(),
    }
}

fn number(item: &Value, pointer: &str) -> i64 {
    item.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
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
        .pointer(pointer)
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
    if pod.pointer("/metadata/deletionTimestamp").is_some() {
        return "Terminating".to_owned();
    }
    let statuses = |field: &str| {
        pod.pointer(&format!("/status/{field}"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    for status in statuses("initContainerStatuses") {
        if let Some(reason) = status
            .pointer("/state/waiting/reason")
            .and_then(Value::as_str)
        {
            return format!("Init:{reason}");
        }
    }
    for status in statuses("containerStatuses") {
        for state in ["/state/waiting/reason", "/state/terminated/reason"] {
            if let Some(reason) = status.pointer(state).and_then(Value::as_str) {
                return reason.to_owned();
            }
        }
    }
    if let Some(reason) = pod.pointer("/status/reason").and_then(Value::as_str) {
        return reason.to_owned();
    }
    or_none(text(pod, "/status/phase"))
}

fn pod_row(pod: &Value, now: jiff::Timestamp) -> Vec<String> {
    let statuses = pod
        .pointer("/status/containerStatuses")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let total = pod
        .pointer("/spec/containers")
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
        .pointer("/spec/ports")
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
        .pointer("/status/conditions")
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
        .pointer("/spec/completions")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let condition = j
        .pointer("/status/conditions")
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
        .pointer("/status/active")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    let last = if c.pointer("/status/lastScheduleTime").is_some() {
        age(c, "/status/lastScheduleTime", now)
    } else {
        "<none>".to_owned()
    };
    vec![
        name(c),
        text(c, "/spec/schedule"),
        c.pointer("/spec/suspend")
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
        .pointer("/spec/rules")
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
    .find_map(|p| e.pointer(p).and_then(Value::as_str))
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
