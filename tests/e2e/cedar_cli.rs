//! kubegate's schema and shipped policies work unchanged with the official `cedar` CLI
//! (cedar-policy-cli, installed from crates.io by the test command, which names it in
//! `KUBEGATE_CEDAR_CLI`): every file validates, a typo does not, and a request decides as
//! kubegate decides it.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};
use serde_json::json;

fn cedar() -> Option<PathBuf> {
    std::env::var_os("KUBEGATE_CEDAR_CLI").map(PathBuf::from)
}

fn policies() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("policies")
}

fn cedar_files(folder: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(folder)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "cedar"))
        .collect();
    files.sort();
    Ok(files)
}

#[test]
fn the_official_cedar_cli_validates_and_decides_with_kubegates_schema() -> Result<()> {
    let Some(cedar) = cedar() else {
        eprintln!(
            "skipped: KUBEGATE_CEDAR_CLI is not set (deploy/local/test installs cedar-policy-cli \
             and sets it)"
        );
        return Ok(());
    };
    let schema = policies().join("kubegate.cedarschema");
    let validate = |file: &Path| {
        Command::new(&cedar)
            .args(["validate", "--error-format", "plain", "--schema"])
            .arg(&schema)
            .arg("--policies")
            .arg(file)
            .output()
            .with_context(|| format!("running {}", cedar.display()))
    };
    let mut files = cedar_files(&policies())?;
    files.extend(cedar_files(&policies().join("examples"))?);
    assert!(files.len() >= 12, "{files:?}");
    for file in &files {
        let out = validate(file)?;
        assert!(
            out.status.success(),
            "{} does not validate with the cedar CLI: {}{}",
            file.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let dir = tempfile::tempdir()?;
    let typo = dir.path().join("typo.cedar");
    std::fs::write(
        &typo,
        r#"permit (principal, action == Action::"get-logs", resource) when { principal.tennant == "a" };"#,
    )?;
    let out = validate(&typo)?;
    assert!(!out.status.success(), "a typo must not validate");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains("tennant"), "{said}");

    // A request as kubegate would make it, decided by the CLI against tenant-isolation.cedar.
    let entities = json!([
        {"uid": {"type": "User", "id": "alice"}, "attrs": {"tenant": "team-a"},
         "parents": [{"type": "Group", "id": "team-a-devs"}, {"type": "Tenant", "id": "team-a"}], "tags": {}},
        {"uid": {"type": "Group", "id": "team-a-devs"}, "attrs": {}, "parents": []},
        {"uid": {"type": "Tenant", "id": "team-a"}, "attrs": {}, "parents": []},
        {"uid": {"type": "Tenant", "id": "team-b"}, "attrs": {}, "parents": []},
        {"uid": {"type": "Cluster", "id": "local"}, "attrs": {"name": "local"}, "parents": []},
        {"uid": {"type": "Namespace", "id": "local/team-a"},
         "attrs": {"name": "team-a", "cluster": "local", "tenant": "team-a"},
         "parents": [{"type": "Cluster", "id": "local"}, {"type": "Tenant", "id": "team-a"}],
         "tags": {"kubegate.io/tenant": "team-a"}},
        {"uid": {"type": "Namespace", "id": "local/team-b"},
         "attrs": {"name": "team-b", "cluster": "local", "tenant": "team-b"},
         "parents": [{"type": "Cluster", "id": "local"}, {"type": "Tenant", "id": "team-b"}],
         "tags": {"kubegate.io/tenant": "team-b"}},
    ]);
    let entities_file = dir.path().join("entities.json");
    std::fs::write(&entities_file, entities.to_string())?;
    let decide = |namespace: &str| -> Result<String> {
        let context = json!({
            "arguments": {"resourceType": "pods", "namespace": namespace},
            "request": {"transport": "streamable-http",
                        "sourceIp": {"__extn": {"fn": "ip", "arg": "127.0.0.1"}},
                        "protocolVersion": "2025-11-25",
                        "time": {"__extn": {"fn": "datetime", "arg": "2026-12-01T10:00:00Z"}}},
        });
        let context_file = dir.path().join(format!("context-{namespace}.json"));
        std::fs::write(&context_file, context.to_string())?;
        let out = Command::new(&cedar)
            .args(["authorize", "--error-format", "plain", "--schema"])
            .arg(&schema)
            .arg("--policies")
            .arg(policies().join("tenant-isolation.cedar"))
            .arg("--entities")
            .arg(&entities_file)
            .args(["--principal", r#"User::"alice""#])
            .args(["--action", r#"Action::"list-resources""#])
            .args(["--resource", &format!(r#"Namespace::"local/{namespace}""#)])
            .arg("--context")
            .arg(&context_file)
            .output()?;
        Ok(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    };
    let allowed = decide("team-a")?;
    assert!(allowed.contains("ALLOW"), "{allowed}");
    let denied = decide("team-b")?;
    assert!(denied.contains("DENY"), "{denied}");
    Ok(())
}
