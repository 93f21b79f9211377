//! The `kubegate policy` commands as a security engineer runs them: `explain` against a live
//! cluster's namespaces (and without one), `validate` naming the line at fault, and `test`
//! failing when a case does not hold.

use std::process::{Command, Output};

use anyhow::Result;
use serde_json::Value;

use crate::support::cluster::VIEW_ROLE;
use crate::support::{self, GatewayOptions, TestGateway, tenant_namespace};

fn kubegate(args: &[&str]) -> Result<Output> {
    Ok(Command::new(env!("CARGO_BIN_EXE_kubegate"))
        .args(args)
        .env("KUBEGATE_LOG", "error")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()?)
}

fn said(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test]
async fn explain_decides_with_the_clusters_live_namespaces_and_says_why() -> Result<()> {
    let admin = support::cluster().client("admin").await?;
    // A namespace that exists only in the cluster: no case file or flag names it.
    tenant_namespace(
        &admin,
        "cli-live",
        Some("tenant-cli"),
        "cli-devs",
        VIEW_ROLE,
    )
    .await?;
    let gateway = TestGateway::start(GatewayOptions::default()).await?;
    let config = gateway.config_file().display().to_string();
    let args = [
        "policy",
        "explain",
        "--config",
        &config,
        "--as",
        "alice",
        "--group",
        "cli-devs",
        "--tenant",
        "tenant-cli",
        "--tool",
        "get-logs",
        "--args",
        r#"{"podName": "web-1", "namespace": "cli-live"}"#,
        "--json",
    ];
    let out = kubegate(&args)?;
    assert!(out.status.success(), "{}", said(&out));
    let decided: Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(decided["allowed"], true, "{decided}");
    assert_eq!(
        decided["policies"],
        serde_json::json!(["tenant-read-own-namespaces"])
    );
    assert_eq!(
        decided["reasons"][0],
        "a tenant's members may read in their tenant's namespaces"
    );

    // Without the cluster (and without --namespace), the namespace's tenant is unknown: no
    // policy permits the call, and the answer says so in words.
    let policies = format!(
        "{}/policies/tenant-isolation.cedar",
        env!("CARGO_MANIFEST_DIR")
    );
    let out = kubegate(&[
        "policy",
        "explain",
        "--policies",
        &policies,
        "--as",
        "alice",
        "--group",
        "cli-devs",
        "--tenant",
        "tenant-cli",
        "--tool",
        "get-logs",
        "--args",
        r#"{"podName": "web-1", "namespace": "cli-live"}"#,
    ])?;
    let text = said(&out);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("decision for alice: DENY") && text.contains("no policy permits it"),
        "{text}"
    );
    // Told the namespace's labels, it decides as the cluster would.
    let out = kubegate(&[
        "policy",
        "explain",
        "--policies",
        &policies,
        "--as",
        "alice",
        "--tenant",
        "tenant-cli",
        "--tool",
        "list-resources",
        "--args",
        r#"{"resourceType": "pods", "namespace": "cli-live"}"#,
        "--namespace",
        "cli-live:kubegate.io/tenant=tenant-cli",
    ])?;
    let text = said(&out);
    assert!(text.contains("decision for alice: ALLOW"), "{text}");
    assert!(
        text.contains(r#"on Namespace::"local/cli-live": permitted by tenant-read-own-namespaces"#),
        "{text}"
    );
    Ok(())
}

#[test]
fn validate_names_the_line_at_fault_and_test_fails_when_a_case_does_not_hold() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let bad = dir.path().join("bad.cedar");
    std::fs::write(
        &bad,
        "// a comment\n@id(\"typo\")\npermit (principal, action, resource) when { principal.tennant == \"x\" };\n",
    )?;
    let out = kubegate(&["policy", "validate", &bad.display().to_string()])?;
    let text = said(&out);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains(&format!("{}:3:", bad.display())),
        "file:line:column: {text}"
    );
    assert!(text.contains("tennant"), "{text}");
    let out = kubegate(&[
        "policy",
        "validate",
        "policies/tenant-isolation.cedar",
        "policies/examples",
    ])?;
    assert!(out.status.success(), "{}", said(&out));
    assert!(said(&out).starts_with("ok: "), "{}", said(&out));

    let cases = dir.path().join("cases.yaml");
    std::fs::write(
        &cases,
        format!(
            "policies: [{}/policies/tenant-isolation.cedar]\ncases:\n  - name: alice reads team-b\n    as: {{user: alice, tenant: team-a}}\n    tool: list-resources\n    arguments: {{resourceType: pods, namespace: team-b}}\n    expect: allow\n",
            env!("CARGO_MANIFEST_DIR")
        ),
    )?;
    let out = kubegate(&["policy", "test", &cases.display().to_string()])?;
    let text = said(&out);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("FAIL") && text.contains("expected allow, got deny"),
        "{text}"
    );
    let out = kubegate(&["policy", "test"])?;
    assert!(
        out.status.success(),
        "the shipped cases hold: {}",
        said(&out)
    );
    Ok(())
}

#[tokio::test]
async fn a_kubeconfig_that_makes_kubegate_impersonate_is_refused_at_start() -> Result<()> {
    let plane = support::cluster();
    let files = support::GatewayFiles::write(plane, &GatewayOptions::default(), "127.0.0.1:0")?;
    let kubeconfig = files.dir.path().join("kubegate.kubeconfig");
    let text = std::fs::read_to_string(&kubeconfig)?;
    // kubegate's own user, but told to act as the admin.
    std::fs::write(
        &kubeconfig,
        text.replace("    token:", "    as: admin\n    token:"),
    )?;
    let config = files.config_file.display().to_string();
    let out = kubegate(&["serve", "--config", &config])?;
    assert!(!out.status.success(), "{}", said(&out));
    assert!(
        said(&out).contains("kubegate's kubeconfig impersonates"),
        "{}",
        said(&out)
    );
    Ok(())
}
