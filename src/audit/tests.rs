use std::net::IpAddr;
use std::path::Path;

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

/// The records of a log (its checkpoints left out).
fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or(Value::Null))
        .filter(|v| v["kind"] == "Event")
        .collect()
}

fn config(path: &Path) -> AuditConfig {
    AuditConfig {
        levels: [
            ("destructive".to_owned(), AuditLevel::Request),
            ("read".to_owned(), AuditLevel::Metadata),
            ("get-logs".to_owned(), AuditLevel::None),
        ]
        .into(),
        max_file_mib: 0,
        ..AuditConfig::at(path)
    }
}

#[tokio::test]
async fn records_are_appended_one_json_line_each_in_the_kubernetes_shape() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("audit.log");
    let log = AuditLog::open(&config(&path)).unwrap_or_else(|e| panic!("{e}"));
    let mut first = record(log.level());
    first.user = Some(AuditUser {
        issuer: None,
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
        started: None,
    });
    log.write(&mut first)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut second = record(log.level());
    second.fail(Outcome::Unauthenticated, "no bearer token");
    log.write(&mut second)
        .await
        .unwrap_or_else(|e| panic!("{e}"));

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
fn levels_are_chosen_by_tool_then_group_then_default() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let log =
        AuditLog::open(&config(&dir.path().join("audit.log"))).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(log.level_for("get-logs", "read"), AuditLevel::None);
    assert_eq!(
        log.level_for("list-resources", "read"),
        AuditLevel::Metadata
    );
    assert_eq!(
        log.level_for("delete_pod", "destructive"),
        AuditLevel::Request
    );
    assert_eq!(log.level_for("kubectl_apply", "write"), AuditLevel::Request);
}

#[test]
fn caller_controlled_fields_are_capped() {
    let mut big = record(AuditLevel::Request);
    big.user_agent = Some("é".repeat(5000));
    big.mcp.tool = Some("t".repeat(5000));
    big.mcp.request_id = Some(json!({"nested": "object"}));
    big.set_arguments(&json!({"manifest": "m".repeat(100_000), "n": 1}));
    big.cap();
    assert!(
        big.user_agent
            .as_ref()
            .is_some_and(|u| u.len() < MAX_FIELD_BYTES + 16)
    );
    assert!(big.mcp.tool.as_ref().is_some_and(|t| t.ends_with("…<cut>")));
    assert_eq!(big.mcp.request_id, Some(json!("<not a string or number>")));
    let kept = big
        .arguments
        .as_ref()
        .map(|a| a["manifest"].as_str().unwrap_or("").len());
    assert!(
        kept.is_some_and(|n| n <= MAX_ARGUMENT_BYTES + 16),
        "{kept:?}"
    );
    assert_eq!(
        big.arguments.as_ref().map(|a| a["n"].clone()),
        Some(json!(1))
    );
}

#[test]
fn an_unwritable_log_is_an_error_not_a_silent_loss() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let error = AuditLog::open(&config(&dir.path().join("missing/dir/audit.log")));
    assert!(matches!(error, Err(AuditError::Open(_))));
    // /dev/full accepts the open and fails every write, as a full disk does: the first
    // checkpoint cannot be written, so kubegate does not start.
    let full = AuditLog::open(&config(Path::new("/dev/full")));
    let message = full.err().map(|e| format!("{:#}", anyhow::Error::from(e)));
    assert!(
        message.as_ref().is_some_and(|m| m.contains("/dev/full")),
        "{message:?}"
    );
}

#[tokio::test]
async fn a_read_may_continue_without_its_record_when_so_configured_but_a_change_never() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut refusing = config(&dir.path().join("refuse.log"));
    refusing.on_read_failure = crate::config::ReadFailure::Refuse;
    let mut continuing = config(&dir.path().join("continue.log"));
    continuing.on_read_failure = crate::config::ReadFailure::Continue;
    for (config, read_answers) in [(refusing, false), (continuing, true)] {
        let log = AuditLog::open(&config).unwrap_or_else(|e| panic!("{e}"));
        // A closed writer stands for one that can no longer write.
        log.close().await;
        let read = log.write(&mut record(AuditLevel::Request)).await;
        assert_eq!(read.is_ok(), read_answers, "{read:?}");
        let mut change = record(AuditLevel::Request);
        assert!(matches!(
            log.write_ahead(&mut change).await,
            Err(AuditError::Stopped)
        ));
        change.durable = true;
        assert!(log.write(&mut change).await.is_err());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_appended_in_place_and_changes_through_the_thread_make_one_chain() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("audit.log");
    let mut settings = config(&path);
    // Small enough that checkpoints fall among records written both ways.
    settings.checkpoint_every = 7;
    let log = Arc::new(AuditLog::open(&settings).unwrap_or_else(|e| panic!("{e}")));
    let mut tasks = Vec::new();
    for task in 0..8 {
        let log = Arc::clone(&log);
        tasks.push(tokio::spawn(async move {
            for n in 0..50 {
                let mut record = record(AuditLevel::Metadata);
                record.mcp.tool = Some(format!("task-{task}-call-{n}"));
                if n % 5 == 0 {
                    log.write_ahead(&mut record).await?;
                }
                log.write(&mut record).await?;
            }
            Ok::<(), AuditError>(())
        }));
    }
    for task in tasks {
        task.await
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|e| panic!("{e}"));
    }
    log.close().await;
    let written = lines(&path);
    // 400 answers, and a RequestReceived for each of the 80 changes.
    assert_eq!(written.len(), 480);
    let tools: std::collections::BTreeSet<_> = written
        .iter()
        .filter(|r| r["stage"] == "ResponseComplete")
        .map(|r| r["mcp"]["tool"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(tools.len(), 400);
    let report = verify::verify(&[path], None, jiff::Timestamp::now());
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.chains.len(), 1);
    assert_eq!(report.chains[0].records, 480);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_waits_its_turn_while_the_writer_holds_the_file() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("audit.log");
    let log = Arc::new(AuditLog::open(&config(&path)).unwrap_or_else(|e| panic!("{e}")));
    // The file held, as the writer thread holds it through a group's fdatasync.
    let (locked, is_locked) = std::sync::mpsc::channel();
    let holder = {
        let log = Arc::clone(&log);
        std::thread::spawn(move || {
            let _held = log.shared.lock().unwrap_or_else(|e| e.into_inner());
            let _ = locked.send(());
            std::thread::sleep(std::time::Duration::from_secs(1));
        })
    };
    is_locked.recv().unwrap_or_else(|e| panic!("{e}"));
    let writing = {
        let log = Arc::clone(&log);
        tokio::spawn(async move {
            let mut read = record(AuditLevel::Metadata);
            read.mcp.tool = Some("queued".into());
            log.write(&mut read).await
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(
        !writing.is_finished(),
        "a read answered before its record was written"
    );
    assert!(lines(&path).is_empty());
    holder
        .join()
        .unwrap_or_else(|_| panic!("the holder panicked"));
    writing
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|e| panic!("{e}"));
    let written = lines(&path);
    assert_eq!(written.len(), 1);
    assert_eq!(written[0]["mcp"]["tool"], "queued");
}
