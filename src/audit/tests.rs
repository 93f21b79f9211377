use std::net::IpAddr;

use serde_json::{Value, json};

use super::*;

fn record(level: AuditLevel) -> AuditRecord {
    AuditRecord::begin(
        level,
        "streamable-http",
        IpAddr::from([10, 0, 0, 9]),
        Some("curl/8".into()),
    )
}

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or(Value::Null))
        .collect()
}

#[test]
fn records_are_appended_one_json_line_each_in_the_kubernetes_shape() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("audit.log");
    let log = AuditLog::open(&path, AuditLevel::Request).unwrap_or_else(|e| panic!("{e}"));
    let mut first = record(log.level());
    first.user = Some(AuditUser {
        source: None,
        username: "alice".into(),
        groups: vec!["devs".into()],
        tenant: "team-a".into(),
    });
    first.mcp.method = Some("tools/call".into());
    first.mcp.tool = Some("list-resources".into());
    first.set_arguments(&json!({"resourceType": "pods", "namespace": "team-a"}));
    first.kube.push(KubeCall {
        verb: "list",
        uri: "/api/v1/namespaces/team-a/pods".into(),
        code: 200,
        audit_id: Some("abc".into()),
        latency_micros: 1200,
    });
    log.write(&mut first).unwrap_or_else(|e| panic!("{e}"));
    let mut second = record(log.level());
    second.fail(Outcome::Unauthenticated, "no bearer token");
    log.write(&mut second).unwrap_or_else(|e| panic!("{e}"));

    let written = lines(&path);
    assert_eq!(written.len(), 2);
    let one = &written[0];
    assert_eq!(one["kind"], "Event");
    assert_eq!(one["level"], "Request");
    assert_eq!(one["stage"], "ResponseComplete");
    assert_eq!(one["user"]["username"], "alice");
    assert_eq!(one["sourceIPs"], json!(["10.0.0.9"]));
    assert_eq!(one["userAgent"], "curl/8");
    assert_eq!(one["mcp"]["tool"], "list-resources");
    assert_eq!(one["arguments"]["namespace"], "team-a");
    assert_eq!(one["kube"][0]["auditID"], "abc");
    assert_eq!(one["kube"][0]["latencyMicros"], 1200);
    assert_eq!(one["outcome"], "success");
    assert!(
        one["requestReceivedTimestamp"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );
    assert_ne!(one["auditID"], written[1]["auditID"]);
    assert_eq!(written[1]["outcome"], "unauthenticated");
    assert_eq!(written[1]["error"], "no bearer token");
    assert!(written[1].get("user").is_none());
}

#[test]
fn the_level_decides_how_much_of_the_arguments_is_kept() {
    let args = json!({"resourceType": "secrets", "labelSelector": "app=db"});
    let mut metadata = record(AuditLevel::Metadata);
    metadata.set_arguments(&args);
    let mut names: Vec<String> = match metadata.arguments {
        Some(Value::Array(names)) => names
            .iter()
            .filter_map(|n| n.as_str().map(str::to_owned))
            .collect(),
        other => panic!("metadata level keeps the names: {other:?}"),
    };
    names.sort();
    assert_eq!(names, ["labelSelector", "resourceType"]);
    let mut none = record(AuditLevel::None);
    none.set_arguments(&args);
    assert_eq!(none.arguments, None);
}

#[test]
fn an_unwritable_log_is_an_error_not_a_silent_loss() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(
        AuditLog::open(
            &dir.path().join("missing/dir/audit.log"),
            AuditLevel::Request
        ),
        Err(AuditError::Open { .. })
    ));
    // /dev/full accepts the open and fails every write, as a full disk does.
    let full = AuditLog::open(Path::new("/dev/full"), AuditLevel::Request);
    let full = full.unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(
        full.write(&mut record(AuditLevel::Request)),
        Err(AuditError::Write(_))
    ));
}
