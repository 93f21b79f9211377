use std::net::IpAddr;
use std::path::{Path, PathBuf};

use super::*;
use crate::audit::{AuditLog, AuditRecord, AuditUser};
use crate::config::{AuditConfig, AuditLevel};

/// A log directory with a signing key and its public half.
struct Fixture {
    dir: tempfile::TempDir,
    verifier: Verifier,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let (private, public) = chain::generate().unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(dir.path().join("audit.key"), private).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(dir.path().join("audit.pub"), public).unwrap_or_else(|e| panic!("{e}"));
        let verifier =
            Verifier::from_file(&dir.path().join("audit.pub")).unwrap_or_else(|e| panic!("{e}"));
        Fixture { dir, verifier }
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("audit.log")
    }

    fn config(&self) -> AuditConfig {
        AuditConfig {
            signing_key: Some(self.dir.path().join("audit.key")),
            checkpoint_every: 4,
            max_file_mib: 0,
            ..AuditConfig::at(self.path())
        }
    }

    /// Writes `n` records (one in three durable) through a real writer, then closes it.
    async fn write(&self, config: AuditConfig, n: usize) {
        let log = AuditLog::open(&config).unwrap_or_else(|e| panic!("{e}"));
        for i in 0..n {
            let mut record = record(&format!("user-{i}"));
            if i % 3 == 0 {
                log.write_ahead(&mut record)
                    .await
                    .unwrap_or_else(|e| panic!("{e}"));
            }
            log.write(&mut record)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
        }
        log.close().await;
    }

    fn verify(&self, files: &[PathBuf]) -> Report {
        verify(files, Some(&self.verifier), jiff::Timestamp::now())
    }

    /// The files rotated away from `audit.log`, oldest first.
    fn rotated(&self) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .unwrap_or_else(|e| panic!("{e}"))
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.to_string_lossy().contains("audit.log."))
            .collect();
        files.sort();
        files
    }

    fn lines(&self) -> Vec<String> {
        read_lines(&self.path())
    }
}

/// Writes `n` records of about 1.5 KiB each (a capped 4 KiB user agent), then closes the log.
async fn write_large(config: &AuditConfig, n: usize) {
    let log = AuditLog::open(config).unwrap_or_else(|e| panic!("{e}"));
    for i in 0..n {
        let mut record = record(&format!("user-{i}"));
        record.user_agent = Some("x".repeat(4096));
        log.write(&mut record)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
    log.close().await;
}

fn record(user: &str) -> AuditRecord {
    let mut record = AuditRecord::begin(
        AuditLevel::Request,
        "streamable-http",
        IpAddr::from([10, 0, 0, 1]),
        None,
    );
    record.user = Some(AuditUser {
        issuer: None,
        username: user.to_owned(),
        groups: vec!["devs".into()],
        tenant: "team-a".into(),
        source: None,
    });
    record.mcp.method = Some("tools/call".into());
    record
}

fn read_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{e}"))
        .lines()
        .map(str::to_owned)
        .collect()
}

fn write_lines(path: &Path, lines: &[String]) {
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(path, text).unwrap_or_else(|e| panic!("{e}"));
}

fn problem(report: &Report) -> &Problem {
    report
        .chains
        .iter()
        .find_map(|c| c.problem.as_ref())
        .unwrap_or_else(|| panic!("no problem found in {report:#?}"))
}

#[tokio::test]
async fn a_written_log_verifies_with_every_record_and_checkpoint() {
    let f = Fixture::new();
    f.write(f.config(), 10).await;
    let report = f.verify(&[f.path()]);
    assert!(report.is_intact(), "{report:#?}");
    let chain = &report.chains[0];
    // 10 ResponseComplete + 4 RequestReceived records.
    assert_eq!(chain.records, 14);
    // Started, every 4 records (3), Shutdown.
    assert_eq!(chain.checkpoints, 5);
    assert_eq!(chain.first_seq, Some(0));
    assert_eq!(chain.last_seq, Some(18));
    let lines = f.lines();
    assert!(lines[0].contains(r#""reason":"started""#), "{}", lines[0]);
    assert!(
        lines[18].contains(r#""reason":"shutdown""#),
        "{}",
        lines[18]
    );
    assert!(lines[1].contains(chain::GENESIS) || lines[0].contains(chain::GENESIS));
}

#[tokio::test]
async fn an_edited_line_is_found_at_the_line_after_it() {
    let f = Fixture::new();
    f.write(f.config(), 10).await;
    let mut lines = f.lines();
    lines[3] = lines[3].replace("user-", "mallory-");
    write_lines(&f.path(), &lines);
    let found = problem(&f.verify(&[f.path()])).clone();
    assert_eq!(found.line, 5, "{found}");
    assert!(found.why.contains("prevHash does not match"), "{found}");
}

#[tokio::test]
async fn a_dropped_line_is_a_jump_in_seq() {
    let f = Fixture::new();
    f.write(f.config(), 10).await;
    let mut lines = f.lines();
    lines.remove(6);
    write_lines(&f.path(), &lines);
    let found = problem(&f.verify(&[f.path()])).clone();
    assert_eq!(found.line, 7);
    assert!(found.why.contains("1 lines were removed"), "{found}");
}

#[tokio::test]
async fn an_inserted_or_reordered_line_breaks_the_chain() {
    let f = Fixture::new();
    f.write(f.config(), 10).await;
    let original = f.lines();

    let mut inserted = original.clone();
    inserted.insert(5, original[2].clone());
    write_lines(&f.path(), &inserted);
    let found = problem(&f.verify(&[f.path()])).clone();
    assert_eq!(found.line, 6);
    assert!(found.why.contains("inserted or reordered"), "{found}");

    let mut swapped = original.clone();
    swapped.swap(7, 8);
    write_lines(&f.path(), &swapped);
    let found = problem(&f.verify(&[f.path()])).clone();
    assert_eq!(found.line, 8);
}

#[tokio::test]
async fn a_cut_tail_is_found_once_its_checkpoint_is_overdue() {
    let f = Fixture::new();
    f.write(f.config(), 10).await;
    let mut lines = f.lines();
    // Drop the closing checkpoint and the records before it, back to the last periodic one
    // plus two records.
    let last_periodic = lines
        .iter()
        .rposition(|l| l.contains(r#""reason":"periodic""#))
        .unwrap_or_else(|| panic!("no periodic checkpoint"));
    lines.truncate(last_periodic + 3);
    write_lines(&f.path(), &lines);
    // Right away it reads as a live log...
    let live = f.verify(&[f.path()]);
    assert!(live.is_intact(), "{live:#?}");
    assert!(live.chains[0].notes.iter().any(|n| n.contains("live log")));
    // ... and once the next checkpoint is overdue, as cut.
    let later = jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::from_secs(61))
        .unwrap_or_else(|e| panic!("{e}"));
    let report = verify(&[f.path()], Some(&f.verifier), later);
    let found = problem(&report);
    assert!(found.why.contains("the tail was cut"), "{found}");
}

#[tokio::test]
async fn a_forged_checkpoint_fails_its_signature() {
    let f = Fixture::new();
    f.write(f.config(), 10).await;
    let mut lines = f.lines();
    let at = lines
        .iter()
        .position(|l| l.contains(r#""reason":"periodic""#))
        .unwrap_or_else(|| panic!("no periodic checkpoint"));
    // Moving a checkpoint's time changes what it signed.
    let value: serde_json::Value =
        serde_json::from_str(&lines[at]).unwrap_or_else(|e| panic!("{e}"));
    let stamp = value["stageTimestamp"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    lines[at] = lines[at].replace(&stamp, "2020-01-01T00:00:00Z");
    write_lines(&f.path(), &lines);
    let found = problem(&f.verify(&[f.path()])).clone();
    assert_eq!(found.line, at + 1);
    assert!(found.why.contains("signature does not verify"), "{found}");
}

#[tokio::test]
async fn a_rewritten_chain_needs_the_key() {
    // Someone edits a record and recomputes every hash after it: the chain holds, but the
    // checkpoints they re-chain keep signatures over the old hashes.
    let f = Fixture::new();
    f.write(f.config(), 10).await;
    let lines = f.lines();
    let mut forged = Vec::new();
    let mut head = chain::GENESIS.to_owned();
    for (i, line) in lines.iter().enumerate() {
        let mut value: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}"));
        if i == 2 {
            value["user"]["username"] = "someone-else".into();
        }
        let object = value
            .as_object_mut()
            .unwrap_or_else(|| panic!("not an object"));
        object.remove("seq");
        object.remove("prevHash");
        let bytes = serde_json::to_vec(&value).unwrap_or_else(|e| panic!("{e}"));
        let mut out = Vec::new();
        head = chain::seal_into(&mut out, &bytes, i as u64, &head);
        out.pop();
        forged.push(String::from_utf8(out).unwrap_or_else(|e| panic!("{e}")));
    }
    write_lines(&f.path(), &forged);
    let found = problem(&f.verify(&[f.path()])).clone();
    assert!(found.why.contains("signature does not verify"), "{found}");
    // Without the key, only the chain is checked, and that is said.
    let unkeyed = verify(&[f.path()], None, jiff::Timestamp::now());
    assert!(unkeyed.is_intact());
    assert!(
        unkeyed.chains[0]
            .notes
            .iter()
            .any(|n| n.contains("not checked"))
    );
}

#[tokio::test]
async fn rotated_files_form_one_chain_in_any_order() {
    let f = Fixture::new();
    let mut config = f.config();
    config.max_file_mib = 1;
    // Each record carries a large user agent (capped at 1 KiB): some 600 records a MiB.
    write_large(&config, 2_000).await;
    let mut files = f.rotated();
    files.push(f.path());
    assert!(files.len() >= 3, "{files:?}");
    files.sort();
    files.reverse();
    let report = f.verify(&files);
    assert!(report.is_intact(), "{report:#?}");
    assert_eq!(report.chains.len(), 1);
    assert_eq!(report.chains[0].records, 2_000);
    // The current file alone: its chain starts mid-way, which is said.
    let current = f.verify(&[f.path()]);
    assert!(current.is_intact(), "{current:#?}");
    assert!(
        current.chains[0]
            .notes
            .iter()
            .any(|n| n.contains("starts at seq"))
    );
}

#[tokio::test]
async fn a_reopen_continues_the_chain_in_the_new_file() {
    let f = Fixture::new();
    let log = AuditLog::open(&f.config()).unwrap_or_else(|e| panic!("{e}"));
    log.write(&mut record("before"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // As logrotate does: move the file away, then signal.
    let moved = f.dir.path().join("audit.log.1");
    std::fs::rename(f.path(), &moved).unwrap_or_else(|e| panic!("{e}"));
    log.reopen().await.unwrap_or_else(|e| panic!("{e}"));
    log.write(&mut record("after"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    log.close().await;
    assert!(
        read_lines(&moved)
            .last()
            .is_some_and(|l| l.contains("reopening"))
    );
    assert!(f.lines()[0].contains("continued"));
    let report = f.verify(&[f.path(), moved]);
    assert!(report.is_intact(), "{report:#?}");
    assert_eq!(report.chains.len(), 1);
    assert_eq!(report.chains[0].records, 2);
}

#[tokio::test]
async fn a_torn_tail_is_cut_and_the_chain_resumes() {
    let f = Fixture::new();
    let log = AuditLog::open(&f.config()).unwrap_or_else(|e| panic!("{e}"));
    log.write(&mut record("one"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // The process dies mid-write: no closing checkpoint, half a line.
    drop(log);
    std::thread::sleep(std::time::Duration::from_millis(100));
    let mut lines = f.lines();
    lines.retain(|l| !l.contains("shutdown"));
    let mut text = lines.join("\n");
    text.push_str("\n{\"kind\":\"Event\",\"half");
    std::fs::write(f.path(), text).unwrap_or_else(|e| panic!("{e}"));

    let log = AuditLog::open(&f.config()).unwrap_or_else(|e| panic!("{e}"));
    log.write(&mut record("two"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    log.close().await;
    let report = f.verify(&[f.path()]);
    assert!(report.is_intact(), "{report:#?}");
    assert_eq!(report.chains[0].records, 2);
    assert!(
        report.chains[0]
            .notes
            .iter()
            .any(|n| n.contains("stopped without closing")),
        "{report:#?}"
    );
    assert!(!f.lines().iter().any(|l| l.contains("half")));
}

#[tokio::test]
async fn concurrent_writers_share_commits_and_every_record_lands() {
    let f = Fixture::new();
    let log = std::sync::Arc::new(AuditLog::open(&f.config()).unwrap_or_else(|e| panic!("{e}")));
    let mut tasks = Vec::new();
    for i in 0..64 {
        let log = std::sync::Arc::clone(&log);
        tasks.push(tokio::spawn(async move {
            for j in 0..20 {
                let mut record = record(&format!("user-{i}-{j}"));
                log.write_ahead(&mut record).await?;
                log.write(&mut record).await?;
            }
            Ok::<_, crate::audit::AuditError>(())
        }));
    }
    for task in tasks {
        task.await
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|e| panic!("{e}"));
    }
    log.close().await;
    let report = f.verify(&[f.path()]);
    assert!(report.is_intact(), "{report:#?}");
    assert_eq!(report.chains[0].records, 64 * 20 * 2);
}

#[test]
fn a_file_with_no_chain_says_so() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("old.log");
    std::fs::write(&path, "{\"kind\":\"Event\",\"auditID\":\"x\"}\n")
        .unwrap_or_else(|e| panic!("{e}"));
    let report = verify(std::slice::from_ref(&path), None, jiff::Timestamp::now());
    let found = problem(&report);
    assert_eq!(found.line, 1);
    assert!(found.why.contains("not a chained audit line"));
    let missing = verify(&[dir.path().join("nope.log")], None, jiff::Timestamp::now());
    assert!(!missing.is_intact());
    assert_eq!(missing.unreadable.len(), 1);
}

#[tokio::test]
async fn each_replicas_file_is_a_chain_of_its_own() {
    let f = Fixture::new();
    let mut one = f.config();
    one.path = f.dir.path().join("audit-replica-0.log");
    let mut two = f.config();
    two.path = f.dir.path().join("audit-replica-1.log");
    f.write(one.clone(), 5).await;
    f.write(two.clone(), 7).await;
    let report = f.verify(&[one.path.clone(), two.path.clone()]);
    assert!(report.is_intact(), "{report:#?}");
    let mut records: Vec<u64> = report.chains.iter().map(|c| c.records).collect();
    records.sort();
    // 5 + 2 write-aheads, 7 + 3.
    assert_eq!(records, [7, 10]);
    // A line of one replica's file pasted into the other's breaks that chain.
    let mut lines = read_lines(&two.path);
    lines.insert(3, read_lines(&one.path)[3].clone());
    write_lines(&two.path, &lines);
    let report = f.verify(&[one.path.clone(), two.path.clone()]);
    assert_eq!(
        report.chains.iter().filter(|c| c.problem.is_some()).count(),
        1
    );
}

#[tokio::test]
async fn a_file_closed_and_opened_again_in_place_verifies_but_a_line_appended_after_the_close_does_not()
 {
    let f = Fixture::new();
    // Two clean runs of kubegate on the same file, and a SIGHUP with nothing moved in between.
    f.write(f.config(), 3).await;
    let log = AuditLog::open(&f.config()).unwrap_or_else(|e| panic!("{e}"));
    log.write(&mut record("second-run"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    log.reopen().await.unwrap_or_else(|e| panic!("{e}"));
    log.write(&mut record("after-hup"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    log.close().await;
    let report = f.verify(&[f.path()]);
    assert!(report.is_intact(), "{report:#?}");
    assert_eq!(report.chains[0].records, 3 + 1 + 2);
    let lines = f.lines();
    assert!(lines.iter().any(|l| l.contains(r#""reason":"resumed""#)));
    assert!(lines.iter().any(|l| l.contains(r#""previousClosed":true"#)));

    // A record chained properly but added after kubegate closed the log is refused.
    let last: serde_json::Value =
        serde_json::from_str(lines.last().unwrap_or(&String::new())).unwrap_or_default();
    let seq = last["seq"].as_u64().unwrap_or_default();
    let head = chain::hash_of(lines.last().unwrap_or(&String::new()).as_bytes());
    let mut out = Vec::new();
    chain::seal_into(
        &mut out,
        br#"{"kind":"Event","user":{"username":"late"}}"#,
        seq + 1,
        &head,
    );
    let mut appended = lines.clone();
    appended.push(String::from_utf8_lossy(&out).trim_end().to_owned());
    write_lines(&f.path(), &appended);
    let found = problem(&f.verify(&[f.path()])).clone();
    assert_eq!(found.line, appended.len());
    assert!(found.why.contains("added afterwards"), "{found}");
}

#[tokio::test]
async fn cut_heads_missing_middle_files_and_a_stretched_deadline_are_found() {
    let f = Fixture::new();
    let mut config = f.config();
    config.max_file_mib = 1;
    write_large(&config, 2_000).await;
    let files = f.rotated();
    assert!(files.len() >= 2, "{files:?}");
    // Without the middle rotated file, the set has a hole.
    let mut holed = files.clone();
    holed.remove(1);
    holed.push(f.path());
    let found = problem(&f.verify(&holed)).clone();
    assert!(
        found.why.contains("a file between them is missing"),
        "{found}"
    );

    // The current file with its first lines cut away.
    let lines = f.lines();
    write_lines(&f.path(), &lines[3..]);
    let found = problem(&f.verify(&[f.path()])).clone();
    assert!(
        found.why.contains("lines before it were removed"),
        "{found}"
    );

    // A cut tail whose last checkpoint promises a later deadline: the promise is signed.
    let stretched: Vec<String> = lines
        .iter()
        .take_while(|l| !l.contains(r#""reason":"shutdown""#))
        .map(|l| {
            l.replace(
                r#""sealsWithinSeconds":30"#,
                r#""sealsWithinSeconds":999999999"#,
            )
        })
        .collect();
    write_lines(&f.path(), &stretched);
    let found = problem(&f.verify(&[f.path()])).clone();
    assert!(found.why.contains("signature does not verify"), "{found}");
}
