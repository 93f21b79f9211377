//! The audit log against a killed process and a full disk, with kubegate as its own process:
//! no acknowledged call is missing from the log, the log verifies, and when the log cannot be
//! written, calls are refused before anything reaches Kubernetes.

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::Api;
use serde_json::{Value, json};

use crate::support::cluster::EDIT_ROLE;
use crate::support::process::{Launch, ServedProcess};
use crate::support::tenant_namespace;
use crate::support::{self, GatewayOptions};

fn options() -> GatewayOptions {
    let mut options = GatewayOptions::with_tenant_edit();
    options.http.push("shutdown_delay_seconds = 0".to_owned());
    options
}

/// Runs `kubegate audit verify` on `files`; (exit status, stdout + stderr).
pub(crate) fn verify(key: &Path, files: &[&Path]) -> Result<(bool, String)> {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_kubegate"))
        .args(["audit", "verify", "--key"])
        .arg(key)
        .args(files)
        .output()?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok((output.status.success(), text))
}

fn lines(path: &Path) -> Result<Vec<Value>> {
    let text = std::fs::read_to_string(path)?;
    text.lines()
        .map(|line| serde_json::from_str(line).context("every whole line is JSON"))
        .collect()
}

fn apply(name: &str, round: usize) -> Value {
    json!({"manifest": format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}}}\ndata: {{round: \"{round}\"}}\n"
    ), "namespace": "ad-kill"})
}

#[tokio::test]
async fn a_sigkill_under_load_loses_no_acknowledged_record_and_the_chain_resumes() -> Result<()> {
    let admin = support::cluster().client("admin").await?;
    tenant_namespace(
        &admin,
        "ad-kill",
        Some("tenant-ad-kill"),
        "ad-kill-devs",
        EDIT_ROLE,
    )
    .await?;
    let served = ServedProcess::start(&options(), Launch::default()).await?;
    let token = served.token("alice", &["ad-kill-devs"], "tenant-ad-kill");
    let client = served.client();

    // Sixteen callers, each applying a ConfigMap (a durable write) and reading, until killed.
    let mut callers = Vec::new();
    for caller in 0..16 {
        let client = client.clone();
        let token = token.clone();
        callers.push(tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            for round in 0.. {
                let id = format!("c{caller}-{round}");
                let (name, arguments) = if round % 2 == 0 {
                    ("kubectl_apply", apply(&format!("load-{caller}"), round))
                } else {
                    (
                        "list-resources",
                        json!({"resourceType": "configmaps", "namespace": "ad-kill"}),
                    )
                };
                let message = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
                                     "params": {"name": name, "arguments": arguments}});
                match client.post(Some(&token), &message).await {
                    Ok(answer) if answer.status == 200 => acknowledged.push(id),
                    Ok(_) | Err(_) => break,
                }
            }
            acknowledged
        }));
    }
    tokio::time::sleep(Duration::from_secs(4)).await;
    let files = served.kill().await?;
    let mut acknowledged = HashSet::new();
    for caller in callers {
        acknowledged.extend(caller.await?);
    }
    assert!(
        acknowledged.len() > 50,
        "only {} calls were answered",
        acknowledged.len()
    );

    // Every answered call has its ResponseComplete record; every line is whole JSON but a torn
    // last one at most.
    let audit = files.dir.path().join("audit.log");
    let text = std::fs::read_to_string(&audit)?;
    let whole: Vec<&str> = text
        .split_inclusive('\n')
        .filter(|l| l.ends_with('\n'))
        .collect();
    let records = whole
        .iter()
        .map(|line| serde_json::from_str::<Value>(line))
        .collect::<Result<Vec<_>, _>>()?;
    // Each record names the caller as kubegate impersonated them, and who vouched for them.
    let calls: Vec<&Value> = records.iter().filter(|r| r["kind"] == "Event").collect();
    assert!(
        calls.iter().all(|r| r["user"]["username"] == "alice"
            && r["user"]["issuer"] == kubegate::dev::DEV_ISSUER)
    );
    let recorded: HashSet<String> = records
        .into_iter()
        .filter(|r| r["stage"] == "ResponseComplete")
        .filter_map(|r| r["mcp"]["requestId"].as_str().map(str::to_owned))
        .collect();
    let missing: Vec<_> = acknowledged.difference(&recorded).collect();
    assert!(missing.is_empty(), "answered but not recorded: {missing:?}");

    // It verifies up to its last whole line (a live, unsealed tail is not a break).
    let key = files.audit_public_key();
    let (intact, report) = verify(&key, &[&audit])?;
    assert!(intact, "{report}");

    // On restart the chain resumes, saying the log was not closed; after a clean stop it ends
    // sealed.
    let port = support::cluster::free_port()?;
    let config = std::fs::read_to_string(&files.config_file)?;
    let listen = config
        .lines()
        .find(|l| l.starts_with("listen = "))
        .context("the configuration has a listen line")?
        .to_owned();
    std::fs::write(
        &files.config_file,
        config.replace(&listen, &format!("listen = \"127.0.0.1:{port}\"")),
    )?;
    let again = ServedProcess::start_with(files, port, Launch::default()).await?;
    let token = again.token("alice", &["ad-kill-devs"], "tenant-ad-kill");
    again
        .client()
        .call_ok(
            &token,
            "list-resources",
            json!({"resourceType": "configmaps", "namespace": "ad-kill"}),
        )
        .await?;
    let files = again.stop().await?;
    let (intact, report) = verify(&key, &[&audit])?;
    assert!(intact, "{report}");
    assert!(report.contains("stopped without closing"), "{report}");
    let last = lines(&audit)?.pop().context("the log has lines")?;
    assert_eq!(last["kind"], "Checkpoint");
    assert_eq!(last["reason"], "shutdown");
    drop(files);
    Ok(())
}

#[tokio::test]
async fn a_full_audit_file_refuses_writes_before_kubernetes_and_reads_too() -> Result<()> {
    let admin = support::cluster().client("admin").await?;
    tenant_namespace(
        &admin,
        "ad-full",
        Some("tenant-ad-full"),
        "ad-full-devs",
        EDIT_ROLE,
    )
    .await?;
    // The audit file may not grow past 64 KiB: beyond, writes fail as on a full disk.
    let launch = Launch {
        max_file_bytes: Some(64 * 1024),
        ..Launch::default()
    };
    let served = ServedProcess::start(&options(), launch).await?;
    let token = served.token("bob", &["ad-full-devs"], "tenant-ad-full");
    let client = served.client();
    let list = json!({"resourceType": "configmaps", "namespace": "ad-full"});

    // Fill it with reads until one is refused.
    let mut refused = None;
    for round in 0..2_000 {
        let answer = client
            .post(
                Some(&token),
                &json!({"jsonrpc": "2.0", "id": round, "method": "tools/call",
                                         "params": {"name": "list-resources", "arguments": list}}),
            )
            .await?;
        if answer.text.contains("could not write its audit record") {
            refused = Some(answer);
            break;
        }
    }
    let Some(refused) = refused else {
        bail!("no read was refused although the audit file is full");
    };
    assert_eq!(refused.status, 500, "{}", refused.text);
    assert!(
        refused.body["error"]["message"].is_string(),
        "{}",
        refused.text
    );

    // A write is refused before it reaches Kubernetes.
    let answer = client
        .post(
            Some(&token),
            &json!({"jsonrpc": "2.0", "id": "w", "method": "tools/call",
            "params": {"name": "kubectl_apply", "arguments": {
                "manifest": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: unrecorded}\n",
                "namespace": "ad-full"}}}),
        )
        .await?;
    assert_eq!(answer.status, 500, "{}", answer.text);
    assert!(
        answer.text.contains("could not write its audit record"),
        "{}",
        answer.text
    );
    let configmaps = Api::<ConfigMap>::namespaced(admin.clone(), "ad-full");
    assert!(configmaps.get_opt("unrecorded").await?.is_none());
    assert!(
        support::impersonated_requests("bob", "/namespaces/ad-full/configmaps/unrecorded")
            .is_empty(),
        "nothing reached the API server"
    );

    // The failed writes were cut back: every line is whole, and the chain verifies up to the
    // last one.
    let audit = served.audit_log.clone();
    let key = served.files.audit_public_key();
    let size = std::fs::metadata(&audit)?.len();
    assert!(size <= 64 * 1024, "{size}");
    let text = std::fs::read_to_string(&audit)?;
    assert!(text.ends_with('\n'), "no torn line left behind");
    lines(&audit)?;
    let (intact, report) = verify(&key, &[&audit])?;
    assert!(intact, "{report}");
    drop(served);
    Ok(())
}

#[tokio::test]
async fn logrotate_moves_the_file_and_sighup_continues_the_chain_in_a_new_one() -> Result<()> {
    let admin = support::cluster().client("admin").await?;
    tenant_namespace(
        &admin,
        "ad-hup",
        Some("tenant-ad-hup"),
        "ad-hup-devs",
        EDIT_ROLE,
    )
    .await?;
    let served = ServedProcess::start(&options(), Launch::default()).await?;
    let token = served.token("erin", &["ad-hup-devs"], "tenant-ad-hup");
    let client = served.client();
    let list = json!({"resourceType": "configmaps", "namespace": "ad-hup"});
    client
        .call_ok(&token, "list-resources", list.clone())
        .await?;

    // As logrotate's `create` mode does: rename, then signal.
    let audit = served.audit_log.clone();
    let rotated = audit.with_extension("log.1");
    std::fs::rename(&audit, &rotated)?;
    served.signal("HUP").await?;
    let mut reopened = false;
    for _ in 0..100 {
        if audit.exists() {
            reopened = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(reopened, "kubegate did not open a new file on SIGHUP");
    client.call_ok(&token, "list-resources", list).await?;
    let key = served.files.audit_public_key();
    let files = served.stop().await?;

    let old = lines(&rotated)?;
    assert_eq!(
        old.last().map(|l| l["reason"].clone()),
        Some(json!("reopening"))
    );
    let new = lines(&audit)?;
    assert_eq!(new[0]["reason"], "continued");
    assert!(new.iter().any(|l| l["user"]["username"] == "erin"));
    let (intact, report) = verify(&key, &[&audit, &rotated])?;
    assert!(intact, "{report}");
    assert!(report.contains("chain through"), "{report}");
    assert_eq!(
        report.matches("chain through").count(),
        1,
        "one chain: {report}"
    );
    drop(files);
    Ok(())
}
