use std::net::IpAddr;
use std::path::{Path, PathBuf};

use proptest::prelude::*;
use serde_json::{Value, json};

use super::stats::{Refused, RefusedCaller, Tally};
use super::*;
use crate::audit::{AuditDecision, AuditRecord, AuditUser};
use crate::config::AuditLevel;

const T0: &str = "2026-03-01T10:00:00Z";

/// `T0` plus `minutes`, as RFC 3339.
fn at(minutes: i64) -> String {
    let t0: Timestamp = T0.parse().unwrap_or_else(|e| panic!("{e}"));
    (t0 + jiff::SignedDuration::from_mins(minutes)).to_string()
}

/// A record's line: an authenticated, allowed, successful `ResponseComplete` record of
/// `get-resource` at `T0 + minutes`, with `fields` merged over it (`null` removes a field).
fn line(id: &str, minutes: i64, fields: Value) -> String {
    let mut record = json!({
        "kind": "Event",
        "apiVersion": "audit.kubegate.io/v1",
        "level": "Request",
        "auditID": id,
        "stage": "ResponseComplete",
        "requestReceivedTimestamp": at(minutes),
        "stageTimestamp": at(minutes),
        "user": {"username": "alice", "groups": ["devs"], "tenant": "team-a"},
        "sourceIPs": ["10.0.0.1"],
        "mcp": {"transport": "streamable-http", "method": "tools/call", "tool": "get-resource"},
        "decision": {
            "allowed": true, "action": "get-resource",
            "resource": "Object::\"local/team-a/Pod/web-1\"",
            "policies": ["tenant-read"], "reasons": [], "policyVersion": "abc",
        },
        "outcome": "success",
        "latencyMicros": 10,
    });
    if let (Value::Object(record), Value::Object(fields)) = (&mut record, fields) {
        for (key, value) in fields {
            if value.is_null() {
                record.remove(&key);
            } else {
                record.insert(key, value);
            }
        }
    }
    record.to_string()
}

fn record(line: &str) -> Record {
    match parse_line::<Record>(line.as_bytes()) {
        Ok(Some(record)) => record,
        other => panic!("{line} did not parse as a record: {other:?}"),
    }
}

fn write_log(dir: &Path, name: &str, lines: &[String]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, lines.join("\n") + "\n").unwrap_or_else(|e| panic!("{e}"));
    path
}

fn read_files(paths: &[PathBuf], filter: &Filter) -> Reading {
    let sources: Vec<Source> = paths.iter().cloned().map(Source::File).collect();
    read(&sources, filter).unwrap_or_else(|e| panic!("{e}"))
}

fn ids(entries: &[Entry]) -> Vec<&str> {
    entries.iter().map(|e| e.record.audit_id.as_str()).collect()
}

/// The ids of `lines` that `filter` keeps.
fn kept(filter: &Filter, lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .map(|l| record(l))
        .filter(|r| filter.matches(r))
        .map(|r| r.audit_id)
        .collect()
}

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn the_reader_reads_what_kubegates_writer_writes() {
    let mut written = AuditRecord::begin(
        AuditLevel::Request,
        "streamable-http",
        IpAddr::from([10, 0, 0, 9]),
        None,
    );
    written.user = Some(AuditUser {
        issuer: None,
        username: "alice".into(),
        groups: vec!["devs".into()],
        tenant: "team-a".into(),
        source: None,
    });
    written.mcp.method = Some("tools/call".into());
    written.mcp.tool = Some("delete_pod".into());
    written.set_arguments(&json!({"namespace": "team-a", "name": "web-1"}));
    written.decision = Some(AuditDecision {
        allowed: false,
        action: "delete_pod".into(),
        resource: "Object::\"local/team-a/Pod/web-1\"".into(),
        policies: vec!["no-deletes".into()],
        reasons: vec![],
        errors: vec![],
        resources: vec![],
        later: vec![],
        grants: vec![],
        policy_version: "v1".into(),
        shadow: None,
    });
    written.fail(crate::audit::Outcome::Denied, "refused");
    // An API request in `KubeCall`'s serialized shape, written as JSON so that this test need
    // not follow `KubeCall`'s other fields; the end-to-end test reads the real writer's.
    let mut value = serde_json::to_value(&written).unwrap_or_else(|e| panic!("{e}"));
    value["kube"] = json!([{"verb": "get", "uri": "/api/v1/namespaces/team-a/pods/web-1",
                            "code": 200, "auditID": "kube-1", "latencyMicros": 5}]);
    let text = value.to_string();

    let read = record(&text);
    assert_eq!(read.audit_id, written.audit_id);
    assert_eq!(read.stage, "ResponseComplete");
    assert_eq!(read.stage_timestamp, written.stage_timestamp);
    assert_eq!(read.username(), Some("alice"));
    assert_eq!(read.tenant(), Some("team-a"));
    assert_eq!(read.source_ips, ["10.0.0.9"]);
    assert_eq!(read.mcp.tool.as_deref(), Some("delete_pod"));
    assert_eq!(read.action(), Some("delete_pod"));
    assert_eq!(read.outcome, "denied");
    assert!(read.denied());
    assert_eq!(read.kube[0].audit_id.as_deref(), Some("kube-1"));
    assert_eq!(read.kube[0].code, 200);
    assert_eq!(read.namespaces(), BTreeSet::from(["team-a"]));
}

#[test]
fn other_kinds_unknown_fields_and_blank_lines_are_passed_over_without_a_word() {
    let dir = tempdir();
    let mut chained = line(
        "a",
        0,
        json!({"seq": 7, "prevHash": "sha256:00", "future": {"x": [1]}}),
    );
    chained.push_str("  ");
    let log = write_log(
        dir.path(),
        "audit.log",
        &[
            json!({"kind": "Checkpoint", "seq": 8, "hash": "sha256:11", "signature": "..."})
                .to_string(),
            chained,
            String::new(),
            json!({"kind": 5}).to_string(),
            line("b", 1, json!({})),
        ],
    );
    let reading = read_files(&[log], &Filter::default());
    assert_eq!(ids(&reading.entries), ["a", "b"]);
    assert_eq!(reading.skipped, []);
}

#[test]
fn malformed_lines_are_skipped_and_reported_with_their_file_and_line() {
    let dir = tempdir();
    let good = line("good", 0, json!({}));
    let cut = line("cut", 1, json!({}));
    let log = dir.path().join("audit.log");
    let mut bytes = Vec::new();
    for text in [
        good.as_str(),
        "not json at all",
        "[1, 2]",
        &line("untimed", 2, json!({"stageTimestamp": null})),
        &line("late", 3, json!({"stageTimestamp": "yesterday"})),
    ] {
        bytes.extend_from_slice(text.as_bytes());
        bytes.push(b'\n');
    }
    bytes.extend_from_slice(b"{\"kind\":\"Event\",\"auditID\":\"\xff\xfe\"}\n");
    // A last line cut short by a crash: no line end, no closing brace.
    bytes.extend_from_slice(&cut.as_bytes()[..cut.len() / 2]);
    std::fs::write(&log, bytes).unwrap_or_else(|e| panic!("{e}"));

    let reading = read_files(std::slice::from_ref(&log), &Filter::default());
    assert_eq!(ids(&reading.entries), ["good"]);
    let at: Vec<String> = reading
        .skipped
        .iter()
        .map(|s| s.origin.to_string())
        .collect();
    let name = log.display();
    assert_eq!(
        at,
        [2, 3, 4, 5, 6, 7].map(|n| format!("{name}:{n}")),
        "{:?}",
        reading.skipped
    );
    let reasons: Vec<&str> = reading.skipped.iter().map(|s| s.reason.as_str()).collect();
    assert!(reasons[0].starts_with("not JSON"), "{reasons:?}");
    assert_eq!(reasons[1], "not a JSON object");
    assert!(reasons[2].contains("stageTimestamp"), "{reasons:?}");
    assert!(
        reasons[3].starts_with("an Event without the expected shape"),
        "{reasons:?}"
    );
    assert!(reasons[4].starts_with("not UTF-8"), "{reasons:?}");
    assert!(reasons[5].starts_with("not JSON"), "{reasons:?}");
    assert_eq!(
        reading.skipped[0].to_string(),
        format!("{name}:2: {}", reasons[0])
    );
}

#[test]
fn a_missing_file_is_an_error_naming_it() {
    let missing = PathBuf::from("/nonexistent/kubegate/audit.log");
    let error = read(&[Source::File(missing)], &Filter::default())
        .err()
        .map(|e| e.to_string());
    assert_eq!(
        error.as_deref(),
        Some("cannot read the audit log /nonexistent/kubegate/audit.log")
    );
}

#[test]
fn records_without_user_or_decision_are_read_and_filtered_as_such() {
    let unauthenticated = record(&line(
        "u",
        0,
        json!({"user": null, "decision": null, "mcp": {"transport": "streamable-http"},
               "outcome": "unauthenticated", "unrecordedBefore": 3}),
    ));
    assert_eq!(unauthenticated.username(), None);
    assert_eq!(unauthenticated.action(), None);
    assert!(!unauthenticated.denied());
    assert!(unauthenticated.namespaces().is_empty());
    assert_eq!(unauthenticated.unrecorded_before, Some(3));
    let alice = Filter {
        user: Some("alice".into()),
        ..Filter::default()
    };
    assert!(!alice.matches(&unauthenticated));
    let allowed = Filter {
        allowed: Some(true),
        ..Filter::default()
    };
    let denied = Filter {
        allowed: Some(false),
        ..Filter::default()
    };
    assert!(!allowed.matches(&unauthenticated) && !denied.matches(&unauthenticated));
    assert!(Filter::default().matches(&unauthenticated));
}

#[test]
fn user_tenant_tool_decision_and_outcome_filters_each_keep_only_their_records() {
    let lines = [
        line("alice-get", 0, json!({})),
        line(
            "bob-get",
            1,
            json!({"user": {"username": "bob", "groups": [], "tenant": "team-b"}}),
        ),
        line(
            "alice-logs-denied",
            2,
            json!({"mcp": {"transport": "stdio", "method": "tools/call", "tool": "get-logs"},
                   "decision": {"allowed": false, "action": "get-logs", "resource": "", "policies": []},
                   "outcome": "denied"}),
        ),
        line("alice-error", 3, json!({"outcome": "error"})),
    ];
    let with = |change: fn(&mut Filter)| {
        let mut filter = Filter::default();
        change(&mut filter);
        kept(&filter, &lines)
    };
    assert_eq!(with(|f| f.user = Some("bob".into())), ["bob-get"]);
    assert_eq!(
        with(|f| f.tenant = Some("team-a".into())),
        ["alice-get", "alice-logs-denied", "alice-error"]
    );
    assert_eq!(
        with(|f| f.tool = Some("get-logs".into())),
        ["alice-logs-denied"]
    );
    assert_eq!(with(|f| f.allowed = Some(false)), ["alice-logs-denied"]);
    assert_eq!(
        with(|f| f.allowed = Some(true)),
        ["alice-get", "bob-get", "alice-error"]
    );
    assert_eq!(with(|f| f.outcome = Some("error".into())), ["alice-error"]);
    assert_eq!(
        with(|f| {
            f.user = Some("alice".into());
            f.outcome = Some("success".into());
        }),
        ["alice-get"]
    );
}

#[test]
fn the_stage_filter_keeps_one_record_per_call_by_default_in_the_cli() {
    let lines = [
        line("write", 0, json!({"stage": "RequestReceived"})),
        line("write", 1, json!({})),
    ];
    let response_complete = Filter {
        stage: Some(RESPONSE_COMPLETE.into()),
        ..Filter::default()
    };
    let dir = tempdir();
    let log = write_log(dir.path(), "audit.log", &lines);
    let reading = read_files(std::slice::from_ref(&log), &response_complete);
    assert_eq!(reading.entries.len(), 1);
    assert_eq!(reading.entries[0].record.stage, RESPONSE_COMPLETE);
    let request_received = Filter {
        stage: Some(REQUEST_RECEIVED.into()),
        ..Filter::default()
    };
    let reading = read_files(std::slice::from_ref(&log), &request_received);
    assert_eq!(reading.entries.len(), 1);
    assert_eq!(reading.entries[0].record.stage, REQUEST_RECEIVED);
    assert_eq!(read_files(&[log], &Filter::default()).entries.len(), 2);
}

#[test]
fn the_group_filter_follows_kubegates_cedar_schema() {
    let call = |id: &str, action: &str| {
        line(
            id,
            0,
            json!({"mcp": {"transport": "stdio", "method": "tools/call", "tool": action},
                   "decision": {"allowed": true, "action": action, "resource": "", "policies": []}}),
        )
    };
    let lines = [
        call("get", "get-resource"),
        call("apply", "kubectl_apply"),
        call("delete", "delete_pod"),
        call("cleanup", "cleanup"),
        // A resources/read: no tool, decided as `read-resource`, which is in `read`.
        line(
            "resource",
            0,
            json!({"mcp": {"transport": "stdio", "method": "resources/read"},
                   "decision": {"allowed": true, "action": "read-resource", "resource": "", "policies": []}}),
        ),
        // Refused before a decision: the tool names the action.
        line(
            "undecided",
            0,
            json!({"decision": null, "outcome": "invalid",
                   "mcp": {"transport": "stdio", "method": "tools/call", "tool": "kubectl_scale"}}),
        ),
        line(
            "unknown",
            0,
            json!({"decision": null, "outcome": "invalid",
                   "mcp": {"transport": "stdio", "method": "tools/call", "tool": "no-such-tool"}}),
        ),
    ];
    let group = |name: &str| Filter {
        group: Some(ActionGroup::of_schema(name).unwrap_or_else(|e| panic!("{e}"))),
        ..Filter::default()
    };
    assert_eq!(kept(&group("read"), &lines), ["get", "resource"]);
    assert_eq!(kept(&group("write"), &lines), ["apply", "undecided"]);
    assert_eq!(kept(&group("destructive"), &lines), ["delete", "cleanup"]);
    let read = ActionGroup::of_schema("read").unwrap_or_else(|e| panic!("{e}"));
    assert!(read.actions.contains("get-prompt") && !read.actions.contains("reveal-secrets"));
    for spec in crate::tool::CATALOG {
        let group = ActionGroup::of_schema(spec.group.action()).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            group.actions.contains(spec.name),
            "{} in {}",
            spec.name,
            group.name
        );
    }
}

#[test]
fn unknown_groups_and_outcomes_are_errors_naming_the_known_ones() {
    let error = ActionGroup::of_schema("reads").err().map(|e| e.to_string());
    assert_eq!(
        error.as_deref(),
        Some(
            "no action group `reads` in kubegate's Cedar schema; it has: destructive, read, write"
        )
    );
    assert_eq!(outcome("denied").ok().as_deref(), Some("denied"));
    let error = outcome("deny").err().map(|e| e.to_string());
    assert_eq!(
        error.as_deref(),
        Some(
            "no outcome `deny`; a record's outcome is one of: success, denied, unauthenticated, \
             throttled, cancelled, invalid, error"
        )
    );
}

#[test]
fn the_namespace_filter_looks_at_decisions_arguments_and_api_requests() {
    let decided = |id: &str, resource: &str| {
        line(
            id,
            0,
            json!({"decision": {"allowed": true, "action": "get-resource", "resource": resource, "policies": []}}),
        )
    };
    let lines = [
        decided("object", "Object::\"local/team-a/Pod/web-1\""),
        decided("namespace", "Namespace::\"local/team-a\""),
        decided("cluster-object", "Object::\"local/Node/team-a\""),
        decided("cluster", "Cluster::\"local\""),
        line(
            "several",
            0,
            json!({"decision": {"allowed": true, "action": "list-namespaces", "resource": "Namespace::\"local/team-b\"",
                                "resources": ["Namespace::\"local/team-b\"", "Namespace::\"local/team-a\""], "policies": []}}),
        ),
        line(
            "later",
            0,
            json!({"decision": {"allowed": true, "action": "list-resources", "resource": "Cluster::\"local\"", "policies": [],
                                "later": [{"resource": "Namespace::\"local/team-a\"", "allowed": true},
                                          {"resource": "Namespace::\"local/team-c\"", "allowed": false}]}}),
        ),
        line(
            "arguments",
            0,
            json!({"decision": null, "arguments": {"namespace": "team-a"}, "outcome": "invalid"}),
        ),
        line(
            "api",
            0,
            json!({"decision": null, "kube": [
                {"verb": "get", "uri": "/apis/apps/v1/namespaces/team-a/deployments/web?x=1", "code": 200}]}),
        ),
        line(
            "namespace-object",
            0,
            json!({"decision": null, "kube": [{"verb": "delete", "uri": "/api/v1/namespaces/team-a", "code": 200}]}),
        ),
        line(
            "other",
            0,
            json!({"decision": null, "arguments": {"namespace": "team-ab"},
                   "kube": [{"verb": "list", "uri": "/api/v1/namespaces", "code": 200}]}),
        ),
    ];
    let in_team_a = Filter {
        namespace: Some("team-a".into()),
        ..Filter::default()
    };
    assert_eq!(
        kept(&in_team_a, &lines),
        [
            "object",
            "namespace",
            "several",
            "later",
            "arguments",
            "api",
            "namespace-object"
        ]
    );
    let in_team_c = Filter {
        namespace: Some("team-c".into()),
        ..Filter::default()
    };
    assert!(
        kept(&in_team_c, &lines).is_empty(),
        "a later refusal is not in the namespace"
    );
}

#[test]
fn namespaces_are_read_from_cedar_uids_and_api_paths() {
    assert_eq!(
        namespace_of_uid("Namespace::\"local/team-a\""),
        Some("team-a")
    );
    assert_eq!(
        namespace_of_uid("Object::\"local/team-a/Pod/web\""),
        Some("team-a")
    );
    assert_eq!(namespace_of_uid("Object::\"local/Node/n1\""), None);
    assert_eq!(namespace_of_uid("Cluster::\"local\""), None);
    assert_eq!(namespace_of_uid("Namespace::\"local/team-a"), None);
    assert_eq!(namespace_of_uid(""), None);
    assert_eq!(namespace_of_uri("/api/v1/namespaces/a/pods"), Some("a"));
    assert_eq!(namespace_of_uri("/api/v1/namespaces/a?watch=1"), Some("a"));
    assert_eq!(
        namespace_of_uri("/apis/batch/v1/namespaces/b/cronjobs/x"),
        Some("b")
    );
    assert_eq!(namespace_of_uri("/api/v1/namespaces"), None);
    assert_eq!(namespace_of_uri("/api/v1/namespaces/"), None);
    assert_eq!(namespace_of_uri("/api/v1/pods"), None);
    assert_eq!(
        namespace_of_uri("/apis/apps/v1/deployments/namespaces/x"),
        None
    );
}

#[test]
fn time_filters_keep_since_inclusive_until_exclusive() {
    let lines: Vec<String> = (0..5)
        .map(|m| line(&format!("m{m}"), m, json!({})))
        .collect();
    let time = |t: String| Some(t.parse::<Timestamp>().unwrap_or_else(|e| panic!("{e}")));
    let between = Filter {
        since: time(at(1)),
        until: time(at(3)),
        ..Filter::default()
    };
    assert_eq!(kept(&between, &lines), ["m1", "m2"]);
    let since = Filter {
        since: time(at(3)),
        ..Filter::default()
    };
    assert_eq!(kept(&since, &lines), ["m3", "m4"]);
    let until = Filter {
        until: time(at(1)),
        ..Filter::default()
    };
    assert_eq!(kept(&until, &lines), ["m0"]);

    // Relative bounds count back from now: at T0+4m, from 90 seconds ago until 30 seconds ago.
    let now: Timestamp = at(4).parse().unwrap_or_else(|e| panic!("{e}"));
    let relative = Filter {
        since: Some(time_bound("90s", now).unwrap_or_else(|e| panic!("{e}"))),
        until: Some(time_bound("30s", now).unwrap_or_else(|e| panic!("{e}"))),
        ..Filter::default()
    };
    assert_eq!(kept(&relative, &lines), ["m3"]);
}

#[test]
fn time_bounds_are_rfc3339_or_durations_back_from_now() {
    let now: Timestamp = "2026-03-10T12:00:00Z"
        .parse()
        .unwrap_or_else(|e| panic!("{e}"));
    let bound = |text: &str| time_bound(text, now).map(|t| t.to_string()).ok();
    assert_eq!(
        bound("2026-01-31T09:00:00Z").as_deref(),
        Some("2026-01-31T09:00:00Z")
    );
    assert_eq!(
        bound("2026-01-31T10:00:00+01:00").as_deref(),
        Some("2026-01-31T09:00:00Z")
    );
    assert_eq!(bound("1h").as_deref(), Some("2026-03-10T11:00:00Z"));
    assert_eq!(bound("30m").as_deref(), Some("2026-03-10T11:30:00Z"));
    assert_eq!(bound("1h30m").as_deref(), Some("2026-03-10T10:30:00Z"));
    assert_eq!(bound("2d").as_deref(), Some("2026-03-08T12:00:00Z"));
    assert_eq!(bound("2 days ago").as_deref(), Some("2026-03-08T12:00:00Z"));
    assert_eq!(bound("yesterday"), None);
    assert_eq!(bound(""), None);
    assert_eq!(
        bound("2026-01-31"),
        None,
        "a date without a time and offset is ambiguous"
    );
}

#[test]
fn several_files_merge_in_time_order_and_ties_keep_file_order() {
    let dir = tempdir();
    let replica_a = write_log(
        dir.path(),
        "a.log",
        &[
            line("a0", 0, json!({})),
            line("a2", 2, json!({})),
            line("a4", 4, json!({})),
        ],
    );
    let replica_b = write_log(
        dir.path(),
        "b.log",
        &[
            line("b1", 1, json!({})),
            line("b2", 2, json!({})),
            line("b5", 5, json!({})),
        ],
    );
    let reading = read_files(&[replica_b.clone(), replica_a.clone()], &Filter::default());
    assert_eq!(ids(&reading.entries), ["a0", "b1", "b2", "a2", "a4", "b5"]);
    let reading = read_files(&[replica_a, replica_b.clone()], &Filter::default());
    assert_eq!(ids(&reading.entries), ["a0", "b1", "a2", "b2", "a4", "b5"]);
    assert_eq!(
        reading.entries[1].origin.to_string(),
        format!("{}:1", replica_b.display())
    );
    assert_eq!(
        reading.entries[1].line,
        line("b1", 1, json!({})),
        "the line as written"
    );
}

fn stats_of(lines: &[String], top: usize) -> Stats {
    let entries: Vec<Entry> = lines
        .iter()
        .enumerate()
        .map(|(n, l)| Entry {
            origin: Origin {
                source: "test".into(),
                line: n + 1,
            },
            line: l.clone(),
            record: record(l),
        })
        .collect();
    Stats::of(&entries, top)
}

fn denied_call(id: &str, minutes: i64, user: &str, tenant: &str, tool: &str) -> String {
    line(
        id,
        minutes,
        json!({"user": {"username": user, "groups": [], "tenant": tenant},
               "mcp": {"transport": "stdio", "method": "tools/call", "tool": tool},
               "decision": {"allowed": false, "action": tool, "resource": "", "policies": []},
               "outcome": "denied"}),
    )
}

fn unauthenticated(id: &str, minutes: i64, ip: &str, left_out: u64) -> String {
    line(
        id,
        minutes,
        json!({"user": null, "decision": null, "sourceIPs": [ip], "outcome": "unauthenticated",
               "mcp": {"transport": "streamable-http"}, "unrecordedBefore": left_out}),
    )
}

#[test]
fn stats_count_calls_and_denials_per_user_tenant_and_tool() {
    let lines = [
        line("1", 0, json!({})),
        line(
            "2",
            1,
            json!({"mcp": {"transport": "stdio", "method": "tools/list"}}),
        ),
        denied_call("3", 2, "alice", "team-a", "delete_pod"),
        denied_call("4", 3, "bob", "team-b", "delete_pod"),
        line(
            "5",
            4,
            json!({"user": {"username": "bob", "groups": [], "tenant": "team-b"}}),
        ),
        unauthenticated("6", 5, "192.0.2.7", 0),
    ];
    let stats = stats_of(&lines, 10);
    assert_eq!(stats.records, 6);
    assert_eq!(stats.from.map(|t| t.to_string()), Some(at(0)));
    assert_eq!(stats.to.map(|t| t.to_string()), Some(at(5)));
    let tally = |name: &str, calls, denied| Tally {
        name: name.into(),
        calls,
        denied,
    };
    assert_eq!(stats.by_user, [tally("alice", 3, 1), tally("bob", 2, 1)]);
    assert_eq!(
        stats.by_tenant,
        [tally("team-a", 3, 1), tally("team-b", 2, 1)]
    );
    assert_eq!(
        stats.by_tool,
        [tally("delete_pod", 2, 2), tally("get-resource", 2, 0)]
    );
    let json = serde_json::to_value(&stats).unwrap_or_default();
    assert_eq!(
        json["byUser"][0],
        json!({"name": "alice", "calls": 3, "denied": 1})
    );
    assert_eq!(json["topRefused"][0]["caller"], json!({"user": "alice"}));
}

#[test]
fn stats_rank_the_most_refused_callers_by_user_or_source_address() {
    let throttled = line(
        "t",
        0,
        json!({"user": {"username": "bob", "groups": [], "tenant": "team-b"}, "outcome": "throttled"}),
    );
    let lines = [
        denied_call("1", 0, "alice", "team-a", "delete_pod"),
        denied_call("2", 1, "bob", "team-b", "delete_pod"),
        throttled,
        unauthenticated("3", 2, "192.0.2.7", 4),
        unauthenticated("4", 3, "192.0.2.8", 0),
        line("5", 4, json!({})),
    ];
    let stats = stats_of(&lines, 3);
    let refused = |caller: RefusedCaller, denied, unauthenticated, throttled| Refused {
        caller,
        refused: denied + unauthenticated + throttled,
        denied,
        unauthenticated,
        throttled,
    };
    assert_eq!(
        stats.top_refused,
        [
            // One record, and four left unrecorded before it.
            refused(RefusedCaller::SourceIp("192.0.2.7".into()), 0, 5, 0),
            refused(RefusedCaller::User("bob".into()), 1, 0, 1),
            refused(RefusedCaller::User("alice".into()), 1, 0, 0),
        ]
    );
    let json = serde_json::to_value(&stats).unwrap_or_default();
    assert_eq!(
        json["topRefused"][0]["caller"],
        json!({"sourceIp": "192.0.2.7"})
    );
    let tables = stats.tables();
    let refused_table = tables[3].1.to_string();
    assert!(
        refused_table.contains("192.0.2.7 (no valid token)"),
        "{refused_table}"
    );
}

fn kube_event(
    id: &str,
    stage: &str,
    minutes: i64,
    impersonated: Option<&str>,
    code: u16,
) -> String {
    let mut event = json!({
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata",
        "auditID": id, "stage": stage, "verb": "get",
        "requestURI": "/api/v1/namespaces/team-a/pods/web-1",
        "user": {"username": "kubegate", "groups": ["system:authenticated"]},
        "sourceIPs": ["127.0.0.1"],
        "objectRef": {"resource": "pods", "namespace": "team-a", "name": "web-1", "apiVersion": "v1"},
        "responseStatus": {"metadata": {}, "code": code},
        "requestReceivedTimestamp": at(minutes), "stageTimestamp": at(minutes),
    });
    if let Some(user) = impersonated {
        event["impersonatedUser"] =
            json!({"username": user, "groups": ["devs", "system:authenticated"]});
    }
    event.to_string()
}

#[test]
fn join_pairs_a_call_only_with_an_event_of_its_own_clusters_log() {
    let dir = tempdir();
    let records = write_log(
        dir.path(),
        "audit.log",
        &[
            line(
                "r-dev",
                1,
                json!({"cluster": "dev", "kube": [kube_call(Some("k1"), 200)]}),
            ),
            line(
                "r-prod",
                2,
                json!({"cluster": "prod", "kube": [kube_call(Some("k2"), 200)]}),
            ),
            // Says prod, but its event is in dev's log: not a pair.
            line(
                "r-wrong",
                3,
                json!({"cluster": "prod", "kube": [kube_call(Some("k3"), 200)]}),
            ),
        ],
    );
    let dev = write_log(
        dir.path(),
        "dev-audit.log",
        &[
            kube_event("k1", "ResponseComplete", 1, Some("alice"), 200),
            kube_event("k3", "ResponseComplete", 3, Some("alice"), 200),
        ],
    );
    let prod = write_log(
        dir.path(),
        "prod-audit.log",
        &[
            kube_event("k2", "ResponseComplete", 2, Some("alice"), 200),
            kube_event("k4", "ResponseComplete", 4, Some("alice"), 200),
        ],
    );
    let reading = read_files(&[records], &Filter::default());
    let logs = [
        (Some("dev".to_owned()), Source::File(dev)),
        (Some("prod".to_owned()), Source::File(prod)),
    ];
    let mut skipped = Vec::new();
    let events = ApiServerEvents::read(&logs, &reading.entries, "kubegate", &mut skipped)
        .unwrap_or_else(|e| panic!("{e}"));
    let join = Join::of(&reading.entries, &events, "kubegate", Window::default());
    let paired: Vec<(&str, Option<&str>, Option<&str>)> = join
        .pairs
        .iter()
        .map(|p| {
            (
                p.kubegate.record_audit_id.as_str(),
                p.kubegate.cluster.as_deref(),
                p.api_server.cluster.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        paired,
        [
            ("r-dev", Some("dev"), Some("dev")),
            ("r-prod", Some("prod"), Some("prod"))
        ]
    );
    let alone: Vec<&str> = join
        .unmatched_kubegate
        .iter()
        .map(|k| k.record_audit_id.as_str())
        .collect();
    assert_eq!(alone, ["r-wrong"]);
    let cluster = Filter {
        cluster: Some("prod".to_owned()),
        ..Filter::default()
    };
    let ids: Vec<&str> = reading
        .entries
        .iter()
        .filter(|e| cluster.matches(&e.record))
        .map(|e| e.record.audit_id.as_str())
        .collect();
    assert_eq!(ids, ["r-prod", "r-wrong"]);
}

#[test]
fn a_kube_audit_argument_names_its_cluster_before_an_equals_sign() {
    use super::join::cluster_log;
    assert_eq!(
        cluster_log("prod=/var/log/a.log"),
        (Some("prod"), "/var/log/a.log")
    );
    assert_eq!(cluster_log("/var/log/a.log"), (None, "/var/log/a.log"));
    assert_eq!(cluster_log("logs/x=y.log"), (None, "logs/x=y.log"));
    assert_eq!(cluster_log("=a.log"), (None, "=a.log"));
}

fn kube_call(id: Option<&str>, code: u16) -> Value {
    json!({"verb": "get", "uri": "/api/v1/namespaces/team-a/pods/web-1", "code": code,
           "auditID": id, "latencyMicros": 3})
}

#[test]
fn join_pairs_calls_with_the_api_servers_last_stage_and_reports_either_side_alone() {
    let dir = tempdir();
    let records = write_log(
        dir.path(),
        "audit.log",
        &[
            line("r1", 1, json!({"kube": [kube_call(Some("k1"), 200)]})),
            line(
                "r2",
                2,
                json!({"kube": [kube_call(Some("k2"), 200), kube_call(None, 0)]}),
            ),
            line(
                "r3",
                3,
                json!({"kube": [kube_call(Some("k-missing"), 200)]}),
            ),
            // Another user's call, paired though it disagrees on the caller.
            line(
                "r4",
                4,
                json!({"user": {"username": "bob", "groups": [], "tenant": "team-b"},
                       "kube": [kube_call(Some("k4"), 403)]}),
            ),
        ],
    );
    let mut other_user = json!({"kind": "Event", "auditID": "k-admin", "stage": "ResponseComplete",
                                "user": {"username": "admin"}, "stageTimestamp": at(2)});
    other_user["verb"] = json!("list");
    let kube_log = write_log(
        dir.path(),
        "kube-audit.log",
        &[
            kube_event("k1", "RequestReceived", 1, Some("alice"), 0),
            kube_event("k1", "ResponseComplete", 1, Some("alice"), 200),
            kube_event("k2", "ResponseComplete", 2, Some("alice"), 200),
            // A stray earlier stage written after the last one does not replace it.
            kube_event("k2", "RequestReceived", 2, Some("alice"), 0),
            kube_event("k4", "ResponseComplete", 4, Some("alice"), 403),
            kube_event("k-unexplained", "ResponseComplete", 3, Some("mallory"), 200),
            kube_event("k-own", "ResponseComplete", 2, None, 200),
            kube_event("k-before", "ResponseComplete", 0, Some("alice"), 200),
            kube_event("k-after", "ResponseComplete", 5, Some("alice"), 200),
            other_user.to_string(),
            "{\"kind\":\"Event\",\"auditID\":".to_owned(),
        ],
    );
    let reading = read_files(&[records], &Filter::default());
    let mut skipped = Vec::new();
    let events = ApiServerEvents::read(
        &[(None, Source::File(kube_log.clone()))],
        &reading.entries,
        "kubegate",
        &mut skipped,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(skipped.len(), 1);
    assert_eq!(
        skipped[0].origin.to_string(),
        format!("{}:11", kube_log.display())
    );
    assert!(
        events.get("k-admin").is_none(),
        "another user's events are not kept"
    );

    let join = Join::of(
        &reading.entries,
        &events,
        "kubegate",
        Window::covering(&reading.entries),
    );
    let paired: Vec<(&str, &str, Option<&str>, Option<u16>)> = join
        .pairs
        .iter()
        .map(|p| {
            (
                p.kubegate.record_audit_id.as_str(),
                p.api_server.stage.as_str(),
                p.api_server.impersonated_user.as_deref(),
                p.api_server.code,
            )
        })
        .collect();
    assert_eq!(
        paired,
        [
            ("r1", "ResponseComplete", Some("alice"), Some(200)),
            ("r2", "ResponseComplete", Some("alice"), Some(200)),
            ("r4", "ResponseComplete", Some("alice"), Some(403)),
        ]
    );
    assert_eq!(join.pairs[0].kubegate.caller.as_deref(), Some("alice"));
    assert_eq!(join.pairs[0].api_server.user.as_deref(), Some("kubegate"));
    assert_eq!(
        join.pairs[0].api_server.impersonated_groups,
        ["devs", "system:authenticated"]
    );
    assert!(join.pairs[0].disagreements.is_empty());
    assert_eq!(join.pairs[2].disagreements, ["caller"]);

    let unmatched: Vec<(&str, Option<&str>)> = join
        .unmatched_kubegate
        .iter()
        .map(|k| (k.record_audit_id.as_str(), k.audit_id.as_deref()))
        .collect();
    assert_eq!(unmatched, [("r2", None), ("r3", Some("k-missing"))]);
    let unexplained: Vec<&str> = join
        .unmatched_api_server
        .iter()
        .map(|a| a.audit_id.as_str())
        .collect();
    assert_eq!(
        unexplained,
        ["k-own", "k-unexplained"],
        "in time order; outside the records' period: not weighed"
    );

    let wide = Join::of(&reading.entries, &events, "kubegate", Window::default());
    assert_eq!(wide.unmatched_api_server.len(), 4);
    let json = serde_json::to_value(&join).unwrap_or_default();
    assert_eq!(json["pairs"][0]["apiServer"]["impersonatedUser"], "alice");
    assert_eq!(json["pairs"][0]["kubegate"]["auditID"], "k1");
    assert_eq!(
        json["unmatchedApiServer"][1]["requestURI"],
        "/api/v1/namespaces/team-a/pods/web-1"
    );
    let titles: Vec<String> = join
        .tables("kubegate")
        .into_iter()
        .map(|(t, _)| t)
        .collect();
    assert_eq!(titles[0], "Paired: 3");
    assert!(
        titles[2].contains("1 impersonating a caller, 1 as kubegate itself"),
        "{titles:?}"
    );
}

#[test]
fn the_query_table_shows_who_what_the_decision_and_the_api_codes() {
    let lines = [
        line(
            "r1",
            0,
            json!({"kube": [kube_call(Some("k1"), 200), kube_call(Some("k2"), 404)]}),
        ),
        unauthenticated("r2", 1, "192.0.2.7", 0),
    ];
    let entries: Vec<Entry> = lines
        .iter()
        .map(|l| Entry {
            origin: Origin {
                source: "test".into(),
                line: 1,
            },
            line: l.clone(),
            record: record(l),
        })
        .collect();
    let text = query_table(&entries).to_string();
    let rows: Vec<&str> = text.lines().collect();
    assert_eq!(rows.len(), 3, "{text}");
    assert!(rows[0].starts_with("TIME "), "{text}");
    let cells: Vec<&str> = rows[1].split("  ").filter(|c| !c.is_empty()).collect();
    assert_eq!(
        cells.iter().map(|c| c.trim()).collect::<Vec<_>>(),
        [
            "2026-03-01T10:00:00Z",
            "alice",
            "team-a",
            "tools/call get-resource",
            "allowed by tenant-read",
            "success",
            "200,404",
            "r1"
        ]
    );
    assert!(rows[2].contains("unauthenticated"), "{text}");
}

#[test]
fn table_cells_escape_control_characters_and_are_cut() {
    let mut table = Table::new(&["A", "B"]);
    table.row(vec!["x\u{1b}[2J\ny\u{202e}z".into(), "b".repeat(200)]);
    let text = table.to_string();
    assert_eq!(text.lines().count(), 2, "{text}");
    assert!(text.contains("x\\u{1b}[2J\\ny\\u{202e}z"), "{text}");
    assert!(!text.contains('\u{1b}') && !text.contains('\u{202e}'));
    assert!(text.contains(&format!("{}…", "b".repeat(79))), "{text}");
    assert!(!text.contains(&"b".repeat(80)));
}

fn json_value(depth: u32) -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        "[ -~]{0,12}".prop_map(Value::from),
        Just(Value::from(T0)),
    ];
    leaf.prop_recursive(depth, 32, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map(
                prop_oneof![
                    "[a-z]{1,6}",
                    Just("user".to_owned()),
                    Just("decision".to_owned()),
                    Just("kube".to_owned()),
                    Just("username".to_owned()),
                ],
                inner,
                0..4
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn any_bytes_as_a_log_line_never_panic_the_parser(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = parse_line::<Record>(&bytes);
        let _ = parse_line::<KubeEvent>(&bytes);
    }

    #[test]
    fn any_bytes_as_a_log_never_panic_a_reading(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let mut lines = 0;
        each_line(std::io::Cursor::new(&bytes), |_, line| {
            lines += 1;
            if let Ok(Some(record)) = parse_line::<Record>(line) {
                let _ = (record.namespaces(), record.action(), record.denied());
            }
        }).unwrap_or_else(|e| panic!("{e}"));
        prop_assert!(lines <= bytes.len());
    }

    #[test]
    fn events_of_any_shape_never_panic_the_parser_or_the_review(
        fields in prop::collection::btree_map(
            prop_oneof![
                Just("auditID".to_owned()), Just("stage".to_owned()), Just("user".to_owned()),
                Just("decision".to_owned()), Just("kube".to_owned()), Just("arguments".to_owned()),
                Just("mcp".to_owned()), Just("outcome".to_owned()), Just("sourceIPs".to_owned()),
                Just("seq".to_owned()),
            ],
            json_value(3),
            0..8,
        )
    ) {
        let mut event: serde_json::Map<String, Value> = fields.into_iter().collect();
        event.insert("kind".into(), "Event".into());
        event.insert("stageTimestamp".into(), T0.into());
        let text = Value::Object(event).to_string();
        if let Ok(Some(record)) = parse_line::<Record>(text.as_bytes()) {
            let entry = Entry {
                origin: Origin { source: "prop".into(), line: 1 },
                line: text.clone(),
                record,
            };
            let entries = [entry];
            let _ = query_table(&entries).to_string();
            let _ = Stats::of(&entries, 3).tables();
            let _ = Join::of(&entries, &ApiServerEvents::default(), "kubegate", Window::default());
        }
    }
}
