//! The policy gate as a security team relies on it, against the real API server: a forbid on a
//! namespace holds however a call is phrased (cluster-wide lists, events, pages, single
//! objects); lists show each caller only what could be permitted, and what they hide never
//! reaches Kubernetes; the non-destructive and read-only sets; shadow decisions recorded and
//! never enforced; reloads under concurrent calls; and stale namespace facts refusing.

use std::time::Duration;

use anyhow::{Result, bail};
use k8s_openapi::api::core::v1::{ConfigMap, Event};
use kube::api::{Api, PostParams};
use serde_json::{Value, json};

use crate::support::cluster::{EDIT_ROLE, VIEW_ROLE};
use crate::support::proxy::Proxy;
use crate::support::{
    self, GatewayOptions, McpClient, TestGateway, cluster_view_for_group, impersonated_requests,
    shipped_policy, tenant_namespace, tool_text,
};

const HIDE_KUBE_SYSTEM: &str = r#"
@id("hide-kube-system")
@reason("kube-system is not for assistants")
forbid (principal, action, resource is Namespace) when { resource.name == "kube-system" };
"#;

async fn config_map(admin: &kube::Client, ns: &str, name: &str) -> Result<()> {
    let cm: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": name}, "data": {"k": "v"}}))?;
    match Api::<ConfigMap>::namespaced(admin.clone(), ns)
        .create(&PostParams::default(), &cm)
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
        Err(error) => Err(error.into()),
    }
}

async fn event(admin: &kube::Client, ns: &str, name: &str) -> Result<()> {
    let now = jiff::Timestamp::now().to_string();
    let event: Event = serde_json::from_value(json!({
        "metadata": {"name": name},
        "involvedObject": {"kind": "Pod", "name": "x", "namespace": ns},
        "reason": "Probe", "message": format!("{name} happened"), "type": "Warning",
        "firstTimestamp": now, "lastTimestamp": now, "count": 1,
        "source": {"component": "kubelet"},
    }))?;
    Api::<Event>::namespaced(admin.clone(), ns)
        .create(&PostParams::default(), &event)
        .await?;
    Ok(())
}

fn namespaces_of(result: &Value) -> Vec<String> {
    result["structuredContent"]["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i.pointer("/metadata/namespace").and_then(Value::as_str))
        .map(str::to_owned)
        .collect()
}

fn names(list: &Value, key: &str) -> Vec<String> {
    list["result"][key]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["name"].as_str().or(t["uriTemplate"].as_str()))
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn a_forbid_on_kube_system_hides_it_from_a_platform_admins_cluster_wide_calls() -> Result<()>
{
    let admin = support::cluster().client("admin").await?;
    tenant_namespace(
        &admin,
        "pg-hide",
        Some("tenant-pg-hide"),
        "pg-hide-devs",
        VIEW_ROLE,
    )
    .await?;
    cluster_view_for_group(&admin, "platform-admins").await?;
    config_map(&admin, "kube-system", "pg-hidden-settings").await?;
    config_map(&admin, "pg-hide", "pg-seen-settings").await?;
    event(&admin, "kube-system", "pg-hidden-event").await?;
    event(&admin, "pg-hide", "pg-seen-event").await?;
    let gateway = TestGateway::start(
        GatewayOptions::default().policy("hide-kube-system.cedar", HIDE_KUBE_SYSTEM),
    )
    .await?;
    let client = gateway.client();
    let carol = gateway.token("carol", &["platform-admins"], "platform");

    // One list across the cluster: kube-system's items never come back.
    let all = client
        .call_ok(
            &carol,
            "list-resources",
            json!({"resourceType": "configmaps", "limit": 1000}),
        )
        .await?;
    let seen = namespaces_of(&all);
    assert!(seen.iter().any(|ns| ns == "pg-hide"), "{seen:?}");
    assert!(!seen.iter().any(|ns| ns == "kube-system"), "{seen:?}");
    assert!(!tool_text(&all).0.contains("kube-system"));
    let record = gateway.audit_records().pop().unwrap_or_default();
    assert_eq!(
        record["kube"].as_array().map(Vec::len),
        Some(1),
        "one API request"
    );
    let hidden_decisions: Vec<&Value> = record["decision"]["later"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|d| d["resource"] == r#"Namespace::"local/kube-system""#)
        .collect();
    assert_eq!(
        hidden_decisions.len(),
        1,
        "decided once per namespace: {record}"
    );
    assert_eq!(hidden_decisions[0]["allowed"], false);
    assert_eq!(hidden_decisions[0]["policies"], json!(["hide-kube-system"]));

    // Events across the cluster, and the namespace list, the same.
    let events = client.call_ok(&carol, "list-events", json!({})).await?;
    let seen = namespaces_of(&events);
    assert!(seen.iter().any(|ns| ns == "pg-hide") && !seen.iter().any(|ns| ns == "kube-system"));
    let listed = client.call_ok(&carol, "list-namespaces", json!({})).await?;
    let text = tool_text(&listed).0;
    assert!(
        text.contains("pg-hide") && !text.contains("kube-system"),
        "{text}"
    );

    // Page by page: no page shows kube-system, and no token names it.
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut arguments = json!({"resourceType": "configmaps", "limit": 1});
        if let Some(token) = &token {
            arguments["continue"] = json!(token);
        }
        let page = client.call_ok(&carol, "list-resources", arguments).await?;
        assert!(!namespaces_of(&page).iter().any(|ns| ns == "kube-system"));
        assert!(
            page["structuredContent"]
                .get("remainingItemCount")
                .is_none()
        );
        pages += 1;
        match page["structuredContent"]["continue"].as_str() {
            Some(next) => {
                assert!(next.starts_with("kg1."), "a sealed token: {next}");
                assert!(!next.contains("kube-system"));
                token = Some(next.to_owned());
            }
            None => break,
        }
        if pages > 500 {
            bail!("paging did not end");
        }
    }
    assert!(pages > 1, "the pages were cut");
    // A sealed token is the caller's own.
    if let Some(token) = token {
        let dave = gateway.token("dave", &["platform-admins"], "platform");
        let refused = client
            .call_err(
                &dave,
                "list-resources",
                json!({"resourceType": "configmaps", "limit": 1, "continue": token}),
            )
            .await?;
        assert!(
            refused.contains("not a token kubegate gave you"),
            "{refused}"
        );
    }

    // The cluster-level resource and prompt, for the administrator.
    let filters = client
        .request(&carol, "resources/read", json!({"uri": "active-filters"}))
        .await?;
    let contents = filters["result"]["contents"][0]["text"]
        .as_str()
        .unwrap_or_default();
    // The platform tenant never chose any: kubegate's core analyzers.
    let active = serde_json::from_str::<Value>(contents)?;
    assert_eq!(active["defaults"], true, "{active}");
    let names: Vec<&str> = active["activeFilters"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        names.contains(&"Pod") && names.contains(&"Node") && !names.contains(&"Log"),
        "{active}"
    );
    let prompt = client
        .request(
            &carol,
            "prompts/get",
            json!({"name": "troubleshoot-cluster"}),
        )
        .await?;
    let steps = prompt["result"]["messages"][0]["content"]["text"]
        .as_str()
        .unwrap_or_default();
    assert!(
        steps.contains("list-namespaces") && steps.contains("list-events"),
        "{prompt}"
    );
    // A tenant member is refused both, naming no namespace.
    let alice = gateway.token("alice", &["pg-hide-devs"], "tenant-pg-hide");
    let refused = client
        .request(
            &alice,
            "prompts/get",
            json!({"name": "troubleshoot-cluster"}),
        )
        .await?;
    assert!(
        refused["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("no policy permits it")),
        "{refused}"
    );

    // One object in kube-system: refused on its namespace's forbid, and never asked of
    // Kubernetes.
    let refused = client
        .call_err(
            &carol,
            "get-resource",
            json!({"resourceType": "configmaps", "name": "pg-hidden-settings", "namespace": "kube-system"}),
        )
        .await?;
    assert!(
        refused.contains("forbidden by policy hide-kube-system"),
        "{refused}"
    );
    assert!(impersonated_requests("carol", "/configmaps/pg-hidden-settings").is_empty());
    client
        .call_ok(
            &carol,
            "get-resource",
            json!({"resourceType": "configmaps", "name": "pg-seen-settings", "namespace": "pg-hide"}),
        )
        .await?;
    Ok(())
}

#[tokio::test]
async fn lists_are_per_caller_and_what_they_hide_never_reaches_kubernetes() -> Result<()> {
    let admin = support::cluster().client("admin").await?;
    tenant_namespace(
        &admin,
        "pg-nd",
        Some("tenant-pg-nd"),
        "pg-nd-devs",
        EDIT_ROLE,
    )
    .await?;
    config_map(&admin, "pg-nd", "victim").await?;
    let mut options = GatewayOptions::with_tenant_edit();
    options.non_destructive = true;
    let gateway = TestGateway::start(options).await?;
    let client = gateway.client();
    let alice = gateway.token("alice", &["pg-nd-devs"], "tenant-pg-nd");

    let tools = names(
        &client.request(&alice, "tools/list", json!({})).await?,
        "tools",
    );
    for listed in [
        "list-resources",
        "get-logs",
        "kubectl_apply",
        "kubectl_scale",
    ] {
        assert!(
            tools.iter().any(|t| t == listed),
            "{listed} not in {tools:?}"
        );
    }
    let destructive = [
        (
            "delete_pod",
            json!({"name": "victim", "namespace": "pg-nd"}),
        ),
        (
            "delete_deployment",
            json!({"name": "victim", "namespace": "pg-nd"}),
        ),
        (
            "delete_cronjob",
            json!({"name": "victim", "namespace": "pg-nd"}),
        ),
        ("delete_namespace", json!({"name": "pg-nd"})),
        (
            "uninstall_helm_chart",
            json!({"name": "victim", "namespace": "pg-nd"}),
        ),
        ("cleanup", json!({"namespace": "pg-nd"})),
    ];
    for (tool, arguments) in &destructive {
        assert!(!tools.iter().any(|t| t == tool), "{tool} listed: {tools:?}");
        let refused = client.call_err(&alice, tool, arguments.clone()).await?;
        assert!(
            refused.contains("forbidden by policy non-destructive"),
            "{tool}: {refused}"
        );
    }
    let deletes = support::kube_audit_events(|e| {
        e["impersonatedUser"]["username"] == "alice"
            && e["verb"] == "delete"
            && e["requestURI"]
                .as_str()
                .is_some_and(|u| u.contains("pg-nd"))
    });
    assert!(
        deletes.is_empty(),
        "nothing reached the API server: {deletes:?}"
    );
    // Writes still work.
    client
        .call_ok(
            &alice,
            "kubectl_apply",
            json!({"manifest": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: written\n  namespace: pg-nd\n"}),
        )
        .await?;
    let prompts = names(
        &client.request(&alice, "prompts/list", json!({})).await?,
        "prompts",
    );
    assert!(
        prompts.iter().any(|p| p == "troubleshoot-pod"),
        "{prompts:?}"
    );
    let resources = names(
        &client.request(&alice, "resources/list", json!({})).await?,
        "resources",
    );
    assert!(
        resources.iter().any(|r| r == "cluster-info"),
        "{resources:?}"
    );

    // With only the administrators' permit, someone outside their group is shown nothing.
    let admins_only = TestGateway::start(GatewayOptions {
        policies: vec![shipped_policy("platform-admins.cedar")],
        ..GatewayOptions::default()
    })
    .await?;
    let stranger = admins_only.token("zed", &[], "nowhere");
    let client = admins_only.client();
    for (method, key) in [
        ("tools/list", "tools"),
        ("resources/list", "resources"),
        ("resources/templates/list", "resourceTemplates"),
        ("prompts/list", "prompts"),
    ] {
        let listed = names(&client.request(&stranger, method, json!({})).await?, key);
        assert!(listed.is_empty(), "{method}: {listed:?}");
    }
    // Calling an unlisted tool is refused as any denial, and audited as one.
    let refused = client
        .call_err(
            &stranger,
            "list-resources",
            json!({"resourceType": "pods", "namespace": "pg-nd"}),
        )
        .await?;
    assert!(refused.contains("no policy permits it"), "{refused}");
    let record = admins_only.audit_records().pop().unwrap_or_default();
    assert_eq!(record["outcome"], "denied");
    assert_eq!(record["decision"]["allowed"], false);
    assert!(impersonated_requests("zed", "/pods").is_empty());
    Ok(())
}

#[tokio::test]
async fn the_read_only_set_refuses_every_change() -> Result<()> {
    let admin = support::cluster().client("admin").await?;
    tenant_namespace(
        &admin,
        "pg-ro",
        Some("tenant-pg-ro"),
        "pg-ro-devs",
        EDIT_ROLE,
    )
    .await?;
    let mut options = GatewayOptions::with_tenant_edit();
    options.read_only = true;
    let gateway = TestGateway::start(options).await?;
    let client = gateway.client();
    let alice = gateway.token("alice", &["pg-ro-devs"], "tenant-pg-ro");
    let tools = names(
        &client.request(&alice, "tools/list", json!({})).await?,
        "tools",
    );
    assert!(tools.iter().any(|t| t == "list-resources"), "{tools:?}");
    for tool in ["kubectl_apply", "kubectl_scale", "delete_pod", "cleanup"] {
        assert!(!tools.iter().any(|t| t == tool), "{tool} listed: {tools:?}");
    }
    let refused = client
        .call_err(
            &alice,
            "kubectl_apply",
            json!({"manifest": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: nope\n  namespace: pg-ro\n"}),
        )
        .await?;
    assert!(
        refused.contains("forbidden by policy read-only"),
        "{refused}"
    );
    assert!(impersonated_requests("alice", "/namespaces/pg-ro/configmaps/nope").is_empty());
    client
        .call_ok(
            &alice,
            "list-resources",
            json!({"resourceType": "configmaps", "namespace": "pg-ro"}),
        )
        .await?;
    Ok(())
}

#[tokio::test]
async fn a_shadow_set_is_recorded_on_every_call_and_never_enforced() -> Result<()> {
    let admin = support::cluster().client("admin").await?;
    tenant_namespace(
        &admin,
        "pg-sh",
        Some("tenant-pg-sh"),
        "pg-sh-devs",
        VIEW_ROLE,
    )
    .await?;
    config_map(&admin, "pg-sh", "settings").await?;
    let options = GatewayOptions {
        shadow: vec![(
            "trial.cedar".to_owned(),
            r#"@id("trial-no-configmaps") @reason("trial: no ConfigMaps")
               forbid (principal, action == Action::"get-resource", resource is Object)
               when { resource.kind == "ConfigMap" };"#
                .to_owned(),
        )],
        ..GatewayOptions::default()
    };
    let gateway = TestGateway::start(options).await?;
    let client = gateway.client();
    let alice = gateway.token("alice", &["pg-sh-devs"], "tenant-pg-sh");

    // Enforced: allowed. Shadow: would refuse; the record says they differ.
    client
        .call_ok(
            &alice,
            "get-resource",
            json!({"resourceType": "configmaps", "name": "settings", "namespace": "pg-sh"}),
        )
        .await?;
    let record = gateway.audit_records().pop().unwrap_or_default();
    assert_eq!(record["decision"]["allowed"], true);
    let shadow = &record["decision"]["shadow"];
    assert_eq!(shadow["allowed"], false, "{record}");
    assert_eq!(shadow["agrees"], false);
    assert_eq!(shadow["policies"], json!(["trial-no-configmaps"]));
    assert_eq!(shadow["reasons"], json!(["trial: no ConfigMaps"]));
    assert!(
        record["decision"]["policyVersion"]
            .as_str()
            .is_some_and(|v| v.len() == 12)
    );

    // Where they agree, the record says so.
    client
        .call_ok(
            &alice,
            "list-resources",
            json!({"resourceType": "configmaps", "namespace": "pg-sh"}),
        )
        .await?;
    let record = gateway.audit_records().pop().unwrap_or_default();
    assert_eq!(record["decision"]["shadow"]["agrees"], true, "{record}");
    // A refusal carries the shadow's view too.
    client
        .call_err(
            &alice,
            "list-resources",
            json!({"resourceType": "configmaps", "namespace": "kube-system"}),
        )
        .await?;
    let record = gateway.audit_records().pop().unwrap_or_default();
    assert_eq!(record["decision"]["allowed"], false);
    assert_eq!(record["decision"]["shadow"]["agrees"], true, "{record}");
    Ok(())
}

/// Calls `list-resources` in `ns` until `stop`, returning each answer's text and error flag.
async fn call_until(
    client: McpClient,
    token: String,
    ns: &'static str,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Result<Vec<(bool, String)>> {
    let mut answers = Vec::new();
    while !*stop.borrow() {
        let result = client
            .call_tool(
                &token,
                "list-resources",
                json!({"resourceType": "configmaps", "namespace": ns}),
            )
            .await?;
        let (text, is_error) = tool_text(&result);
        answers.push((is_error, text));
    }
    Ok(answers)
}

#[tokio::test]
async fn policies_reload_atomically_under_concurrent_calls_and_a_bad_edit_keeps_the_last_good_set()
-> Result<()> {
    let admin = support::cluster().client("admin").await?;
    tenant_namespace(
        &admin,
        "pg-rl",
        Some("tenant-pg-rl"),
        "pg-rl-devs",
        VIEW_ROLE,
    )
    .await?;
    let options = GatewayOptions {
        policy_dir: true,
        ..GatewayOptions::default()
    };
    let gateway = TestGateway::start(options).await?;
    let alice = gateway.token("alice", &["pg-rl-devs"], "tenant-pg-rl");
    let client = gateway.client();
    client
        .call_ok(
            &alice,
            "list-resources",
            json!({"resourceType": "configmaps", "namespace": "pg-rl"}),
        )
        .await?;
    let first_version =
        gateway.audit_records().pop().unwrap_or_default()["decision"]["policyVersion"].clone();

    let (stop, stopped) = tokio::sync::watch::channel(false);
    let callers: Vec<_> = (0..4)
        .map(|_| {
            tokio::spawn(call_until(
                client.clone(),
                alice.clone(),
                "pg-rl",
                stopped.clone(),
            ))
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;

    // A good edit: a forbid on the namespace, in force within moments, for every caller.
    let forbid = r#"@id("freeze-pg-rl") @reason("frozen") forbid (principal, action, resource is Namespace) when { resource.name == "pg-rl" };"#;
    std::fs::write(gateway.policy_folder().join("freeze.cedar"), forbid)?;
    let frozen = async {
        loop {
            let result = client
                .call_tool(
                    &alice,
                    "list-resources",
                    json!({"resourceType": "configmaps", "namespace": "pg-rl"}),
                )
                .await?;
            if tool_text(&result).0.contains("freeze-pg-rl") {
                return anyhow::Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), frozen).await??;

    // A bad edit: refused; the forbid stays in force.
    std::fs::write(
        gateway.policy_folder().join("broken.cedar"),
        r#"permit (principal, action, resource) when { resource.tennant == "x" };"#,
    )?;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let still = client
        .call_err(
            &alice,
            "list-resources",
            json!({"resourceType": "configmaps", "namespace": "pg-rl"}),
        )
        .await?;
    assert!(
        still.contains("freeze-pg-rl"),
        "the last good set stays: {still}"
    );

    stop.send(true)?;
    let mut answers = Vec::new();
    for caller in callers {
        answers.extend(caller.await??);
    }
    assert!(answers.len() > 10, "{} calls", answers.len());
    // Every answer is either the old set's (a list) or the new set's (the freeze): never an
    // error of a half-loaded set.
    for (is_error, text) in &answers {
        if *is_error {
            assert!(text.contains("forbidden by policy freeze-pg-rl"), "{text}");
        } else {
            assert!(text.contains("configmaps in namespace \"pg-rl\""), "{text}");
        }
    }
    let versions: std::collections::BTreeSet<String> = gateway
        .audit_records()
        .iter()
        .filter_map(|r| r["decision"]["policyVersion"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(
        versions.len(),
        2,
        "two sets decided, the broken one never: {versions:?}"
    );
    assert!(versions.contains(first_version.as_str().unwrap_or_default()));
    Ok(())
}

/// Waits up to `seconds` for `check`.
async fn within<F, Fut>(seconds: u64, what: &str, mut check: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<bool>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(seconds);
    while tokio::time::Instant::now() < deadline {
        if check().await? {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    bail!("{what} did not happen within {seconds} s")
}

#[tokio::test]
async fn stale_namespace_facts_refuse_and_readyz_says_so_until_the_watch_recovers() -> Result<()> {
    let plane = support::cluster();
    let admin = plane.client("admin").await?;
    tenant_namespace(
        &admin,
        "pg-st",
        Some("tenant-pg-st"),
        "pg-st-devs",
        VIEW_ROLE,
    )
    .await?;
    let upstream = plane.url.trim_start_matches("https://").parse()?;
    let proxy = Proxy::start(upstream).await?;
    let options = GatewayOptions {
        kube_server: Some(proxy.url()),
        namespaces_stale_after: Some(1),
        ..GatewayOptions::default()
    };
    let gateway = TestGateway::start(options).await?;
    let client = gateway.client();
    let alice = gateway.token("alice", &["pg-st-devs"], "tenant-pg-st");
    let readyz = gateway.url_of("/readyz");
    client
        .call_ok(
            &alice,
            "list-resources",
            json!({"resourceType": "configmaps", "namespace": "pg-st"}),
        )
        .await?;
    assert_eq!(client.http.get(&readyz).send().await?.status(), 200);

    // The API server goes away: after the bound, decisions on namespaces refuse, saying why,
    // and kubegate is not ready; what needs no namespace facts still answers.
    proxy.cut();
    within(30, "readyz to say not ready", || async {
        Ok(client.http.get(&readyz).send().await?.status() == 503)
    })
    .await?;
    let body = client.http.get(&readyz).send().await?.text().await?;
    assert!(body.contains("out of date"), "{body}");
    let refused = client
        .call_err(
            &alice,
            "list-resources",
            json!({"resourceType": "configmaps", "namespace": "pg-st"}),
        )
        .await?;
    assert!(refused.contains("out of date"), "{refused}");
    client.call_ok(&alice, "cluster-info", json!({})).await?;

    // It comes back: so do kubegate's readiness and the calls.
    proxy.restore().await?;
    within(60, "readyz to recover", || async {
        Ok(client.http.get(&readyz).send().await?.status() == 200)
    })
    .await?;
    client
        .call_ok(
            &alice,
            "list-resources",
            json!({"resourceType": "configmaps", "namespace": "pg-st"}),
        )
        .await?;
    Ok(())
}

fn example(name: &str) -> (String, String) {
    let (_, text) = shipped_policy(&format!("examples/{name}"));
    (name.to_owned(), text)
}

#[tokio::test]
async fn the_shipped_examples_hold_against_the_real_api_server() -> Result<()> {
    let admin = support::cluster().client("admin").await?;
    tenant_namespace(&admin, "pg-ex", Some("platform"), "pg-ex-sre", EDIT_ROLE).await?;
    tenant_namespace(
        &admin,
        "pg-ex-b",
        Some("tenant-pg-ex-b"),
        "pg-ex-b-devs",
        EDIT_ROLE,
    )
    .await?;
    support::cluster_role_for_group(&admin, "admins", "cluster-admin").await?;
    for (ns, name) in [("pg-ex", "agent-1"), ("pg-ex-b", "web-1")] {
        let pod: k8s_openapi::api::core::v1::Pod = serde_json::from_value(json!({
            "metadata": {"name": name},
            "spec": {"nodeName": support::cluster::NODE_NAME,
                     "containers": [{"name": "c", "image": "registry.example/c:1"}]},
        }))?;
        Api::<k8s_openapi::api::core::v1::Pod>::namespaced(admin.clone(), ns)
            .create(&PostParams::default(), &pod)
            .await?;
    }
    let secret: k8s_openapi::api::core::v1::Secret = serde_json::from_value(json!({
        "metadata": {"name": "creds"}, "stringData": {"password": "ex-s3cr3t"},
    }))?;
    Api::<k8s_openapi::api::core::v1::Secret>::namespaced(admin.clone(), "pg-ex")
        .create(&PostParams::default(), &secret)
        .await?;
    let gateway = TestGateway::start(GatewayOptions {
        policies: vec![
            shipped_policy("tenant-isolation.cedar"),
            example("admins-everything.cedar"),
            example("no-delete-namespace.cedar"),
            example("sre-delete-pods.cedar"),
            example("break-glass-reveal.cedar"),
        ],
        ..GatewayOptions::default()
    })
    .await?;
    let client = gateway.client();
    let root = gateway.token("root", &["admins"], "platform");
    let sam = gateway.token("sam", &["sre", "pg-ex-sre"], "platform");
    let bree = gateway.token("bree", &["break-glass", "admins"], "platform");

    // no-delete-namespace: not even administrators, and not listed.
    let tools = names(
        &client.request(&root, "tools/list", json!({})).await?,
        "tools",
    );
    assert!(!tools.iter().any(|t| t == "delete_namespace"), "{tools:?}");
    assert!(tools.iter().any(|t| t == "delete_pod"), "{tools:?}");
    let refused = client
        .call_err(&root, "delete_namespace", json!({"name": "pg-ex-b"}))
        .await?;
    assert!(refused.contains("no-delete-namespace"), "{refused}");
    // sre-delete-pods: an SRE deletes a pod in their tenant's namespace (a dry run), never in
    // another tenant's.
    client
        .call_ok(
            &sam,
            "delete_pod",
            json!({"name": "agent-1", "namespace": "pg-ex", "dryRun": true}),
        )
        .await?;
    let refused = client
        .call_err(
            &sam,
            "delete_pod",
            json!({"name": "web-1", "namespace": "pg-ex-b"}),
        )
        .await?;
    assert!(refused.contains("no policy permits it"), "{refused}");
    // admins-everything: reads everywhere, Secret values masked; break-glass reveals them.
    let masked = client
        .call_ok(
            &root,
            "get-resource",
            json!({"resourceType": "secrets", "name": "creds", "namespace": "pg-ex"}),
        )
        .await?;
    assert_eq!(
        masked["structuredContent"]["data"]["password"],
        kubegate::tool::MASK
    );
    let shown = client
        .call_ok(
            &bree,
            "get-resource",
            json!({"resourceType": "secrets", "name": "creds", "namespace": "pg-ex"}),
        )
        .await?;
    let encoded = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, "ex-s3cr3t");
    assert_eq!(
        shown["structuredContent"]["data"]["password"],
        encoded.as_str()
    );
    let record = gateway.audit_records().pop().unwrap_or_default();
    assert_eq!(
        record["decision"]["grants"][0]["policies"],
        json!(["break-glass-reveal-secrets"]),
        "{record}"
    );
    // office-network: changes from 127.0.0.1 are not from the office, whoever asks; reads are.
    let office = TestGateway::start(GatewayOptions {
        policies: vec![
            example("admins-everything.cedar"),
            example("office-network.cedar"),
        ],
        ..GatewayOptions::default()
    })
    .await?;
    let root_at_office = office.token("root", &["admins"], "platform");
    let refused = office
        .client()
        .call_err(
            &root_at_office,
            "kubectl_scale",
            json!({"name": "web", "namespace": "pg-ex-b", "replicas": 2}),
        )
        .await?;
    assert!(
        refused.contains("changes-from-the-office-only"),
        "{refused}"
    );
    office
        .client()
        .call_ok(
            &root_at_office,
            "list-resources",
            json!({"resourceType": "pods", "namespace": "pg-ex-b"}),
        )
        .await?;
    // Nothing refused reached the API server.
    assert!(
        impersonated_requests("root", "/namespaces/pg-ex-b")
            .iter()
            .all(|e| e["verb"] != "delete")
    );
    assert!(impersonated_requests("sam", "/pods/web-1").is_empty());
    assert!(impersonated_requests("root", "/deployments/web/scale").is_empty());
    Ok(())
}
