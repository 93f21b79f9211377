//! `analyze` per tenant, through policy and impersonation: each tenant sees only its own
//! namespaces' problems, and the answer and its audit record name nothing of another's; each
//! tenant's filters are its own, kept in the cluster (so every replica sees them) and changed
//! safely when two replicas change them at once; answers are reused for the TTL.

use anyhow::Result;
use serde_json::{Value, json};

use super::{
    POD, analyze, container_status, create_with_status, in_ns, kube_uris, last_record, set_status,
};
use crate::support::cluster::{KUBEGATE_NAMESPACE, VIEW_ROLE};
use crate::support::{self, GatewayOptions, TestGateway, tenant_namespace};

/// A pod in CrashLoopBackOff after `reason`.
async fn crashing(admin: &kube::Client, ns: &str, name: &str, reason: &str) -> Result<()> {
    create_with_status(admin, POD, Some(ns),
        json!({"metadata": {"name": name}, "spec": {"containers": [{"name": "app", "image": "registry.example/app:1"}]}}),
        json!({"phase": "Running", "containerStatuses": [{
            "name": "app", "ready": false, "restartCount": 3, "image": "registry.example/app:1", "imageID": "",
            "state": {"waiting": {"reason": "CrashLoopBackOff"}},
            "lastState": {"terminated": {"exitCode": 1, "reason": reason,
                                         "startedAt": "2024-05-01T10:00:00Z", "finishedAt": "2024-05-01T10:00:01Z"}},
        }]}),
    )
    .await?;
    Ok(())
}

/// Asserts that nothing in `what` names any of `hidden`.
#[track_caller]
fn names_none(what: &str, value: &str, hidden: &[&str]) {
    for name in hidden {
        assert!(!value.contains(name), "{what} names {name:?}: {value}");
    }
}

#[tokio::test]
async fn each_tenant_sees_only_its_own_namespaces_problems_and_nothing_of_another() -> Result<()> {
    let admin = support::cluster().client("admin").await?;
    tenant_namespace(
        &admin,
        "team-a-web",
        Some("team-a"),
        "team-a-devs",
        VIEW_ROLE,
    )
    .await?;
    tenant_namespace(
        &admin,
        "team-a-jobs",
        Some("team-a"),
        "team-a-devs",
        VIEW_ROLE,
    )
    .await?;
    // team-a's by its label, so policy lets alice read it, but no RoleBinding lets her group.
    tenant_namespace(
        &admin,
        "team-a-vault",
        Some("team-a"),
        "vault-operators",
        VIEW_ROLE,
    )
    .await?;
    tenant_namespace(
        &admin,
        "team-b-shop",
        Some("team-b"),
        "team-b-devs",
        VIEW_ROLE,
    )
    .await?;
    crashing(&admin, "team-a-web", "frontend", "Error").await?;
    crashing(&admin, "team-a-jobs", "etl", "OOMKilled").await?;
    crashing(&admin, "team-a-vault", "vault-unsealer", "Error").await?;
    crashing(&admin, "team-b-shop", "checkout", "Error").await?;
    let gateway = TestGateway::start(GatewayOptions::default()).await?;
    let client = gateway.client();
    let alice = gateway.token("alice", &["team-a-devs"], "team-a");
    let bob = gateway.token("bob", &["team-b-devs"], "team-b");
    let bobs = ["team-b", "checkout"];

    let mine = analyze(&gateway, &alice, json!({})).await?;
    assert_eq!(
        mine.names("Pod"),
        ["team-a-jobs/etl", "team-a-web/frontend"],
        "{}",
        mine.text()
    );
    assert_eq!(mine.structured()["problems"], 2, "{}", mine.text());
    let record = last_record(&gateway);
    assert_eq!(record["mcp"]["tool"], "analyze");
    assert_eq!(record["decision"]["resource"], r#"Cluster::"local""#);
    assert_eq!(
        record["decision"]["policies"],
        json!(["everyone-analyze-what-they-may-read"])
    );
    names_none("alice's text", &mine.text(), &bobs);
    names_none("alice's answer", &mine.structured().to_string(), &bobs);
    names_none("alice's audit record", &record.to_string(), &bobs);
    // The namespace her RBAC does not open contributes nothing, and is not named.
    names_none(
        "alice's text",
        &mine.text(),
        &["team-a-vault", "vault-unsealer"],
    );
    names_none(
        "alice's answer",
        &mine.structured().to_string(),
        &["team-a-vault", "vault-unsealer"],
    );
    // She was never impersonated reading bob's namespace.
    assert!(support::impersonated_requests("alice", "/namespaces/team-b-shop/").is_empty());
    for uri in kube_uris(&record) {
        assert!(!uri.contains("team-b"), "{uri}");
    }

    let his = analyze(&gateway, &bob, json!({"filters": "Pod"})).await?;
    assert_eq!(his.names("Pod"), ["team-b-shop/checkout"], "{}", his.text());
    names_none(
        "bob's answer",
        &format!("{}{}", his.text(), his.structured()),
        &["team-a", "frontend", "etl"],
    );

    // Naming bob's namespace is refused by policy before Kubernetes is asked.
    let refused = client
        .call_err(&alice, "analyze", json!({"namespace": "team-b-shop"}))
        .await?;
    assert_eq!(
        refused,
        r#"kubegate refused `analyze` on Namespace::"local/team-b-shop" for User::"alice": no policy permits it"#
    );
    assert!(last_record(&gateway).get("kube").is_none());
    assert!(support::impersonated_requests("alice", "/namespaces/team-b-shop/").is_empty());
    // Naming her own namespace looks at it alone.
    let one = analyze(
        &gateway,
        &alice,
        json!({"namespace": "team-a-jobs", "filters": "Pod"}),
    )
    .await?;
    assert_eq!(one.names("Pod"), ["team-a-jobs/etl"], "{}", one.text());
    Ok(())
}

/// The active filters `list-filters` shows.
async fn active_filters(gateway: &TestGateway, token: &str) -> Result<Vec<String>> {
    let listed = gateway
        .client()
        .call_ok(token, "list-filters", json!({}))
        .await?;
    let active = listed["structuredContent"]["activeFilters"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a.as_str().map(str::to_owned))
        .collect();
    Ok(active)
}

#[tokio::test]
async fn each_tenant_keeps_its_own_filters_in_the_cluster_for_every_replica() -> Result<()> {
    let admin = support::cluster().client("admin").await?;
    tenant_namespace(
        &admin,
        "az-filters-a",
        Some("az-filters-a"),
        "az-filters-a-devs",
        VIEW_ROLE,
    )
    .await?;
    tenant_namespace(
        &admin,
        "az-filters-b",
        Some("az-filters-b"),
        "az-filters-b-devs",
        VIEW_ROLE,
    )
    .await?;
    let first = TestGateway::start(GatewayOptions::default()).await?;
    let second = TestGateway::start(GatewayOptions::default()).await?;
    let alice = first.token("alice", &["az-filters-a-devs"], "az-filters-a");
    let bob = first.token("bob", &["az-filters-b-devs"], "az-filters-b");
    let alice_there = second.token("alice", &["az-filters-a-devs"], "az-filters-a");

    let defaults = active_filters(&first, &alice).await?;
    assert!(
        defaults.contains(&"Pod".to_owned()) && !defaults.contains(&"Security".to_owned()),
        "{defaults:?}"
    );
    let added = first
        .client()
        .call_ok(&alice, "add-filters", json!({"filters": "security"}))
        .await?;
    assert!(
        support::tool_text(&added)
            .0
            .starts_with("Activated Security for tenant \"az-filters-a\"."),
        "{}",
        support::tool_text(&added).0
    );
    assert!(
        active_filters(&first, &alice)
            .await?
            .contains(&"Security".to_owned())
    );
    let bobs = active_filters(&first, &bob).await?;
    assert_eq!(bobs, defaults, "bob's tenant keeps the defaults");
    // Kept in the cluster, in kubegate's namespace, where every replica reads it.
    let stored = super::CONFIG_MAP
        .api(&admin, Some(KUBEGATE_NAMESPACE))
        .get("kubegate-analysis-az-filters-a")
        .await?;
    let stored = serde_json::to_value(stored)?;
    let filters = stored["data"]["filters"].as_str().unwrap_or_default();
    assert!(filters.split(',').any(|f| f == "Security"), "{stored}");
    assert!(
        active_filters(&second, &alice_there)
            .await?
            .contains(&"Security".to_owned())
    );
    let resource = first
        .client()
        .request(&alice, "resources/read", json!({"uri": "active-filters"}))
        .await?;
    assert!(resource.to_string().contains("Security"), "{resource}");
    // The filters are what analyze runs when a call names none.
    let ran = analyze(&second, &alice_there, json!({"namespace": "az-filters-a"})).await?;
    assert!(
        ran.structured()["analyzers"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|a| a == "Security")
    );

    second
        .client()
        .call_ok(
            &alice_there,
            "remove-filters",
            json!({"filters": ["Security"]}),
        )
        .await?;
    assert!(
        !active_filters(&first, &alice)
            .await?
            .contains(&"Security".to_owned())
    );
    assert!(
        !active_filters(&second, &alice_there)
            .await?
            .contains(&"Security".to_owned())
    );

    // Two replicas adding at once: both changes are kept, on an existing ConfigMap (alice's
    // tenant) and on one neither has created yet (bob's).
    let bob_there = second.token("bob", &["az-filters-b-devs"], "az-filters-b");
    let (to_first, to_second) = (first.client(), second.client());
    for (here, there, pairs) in [
        (
            &alice,
            &alice_there,
            [
                ("HorizontalPodAutoScaler", "PodDisruptionBudget"),
                ("NetworkPolicy", "Log"),
                ("Storage", "GatewayClass"),
            ],
        ),
        (
            &bob,
            &bob_there,
            [
                ("Gateway", "HTTPRoute"),
                ("NetworkPolicy", "Log"),
                ("Storage", "GatewayClass"),
            ],
        ),
    ] {
        for (one, other) in pairs {
            let (a, b) = tokio::join!(
                to_first.call_ok(here, "add-filters", json!({"filters": one})),
                to_second.call_ok(there, "add-filters", json!({"filters": other})),
            );
            a?;
            b?;
            let active = active_filters(&first, here).await?;
            assert!(
                active.contains(&one.to_owned()) && active.contains(&other.to_owned()),
                "{one}, {other}: {active:?}"
            );
        }
    }
    Ok(())
}

#[tokio::test]
async fn a_second_identical_analysis_within_the_ttl_reuses_the_answer_and_no_cache_does_not()
-> Result<()> {
    let admin = support::cluster().client("admin").await?;
    let ns = "az-cache";
    tenant_namespace(&admin, ns, Some("az-cache"), "az-cache-devs", VIEW_ROLE).await?;
    crashing(&admin, ns, "flaky", "Error").await?;
    let gateway = TestGateway::start(GatewayOptions::default()).await?;
    let token = gateway.token("dev", &["az-cache-devs"], "az-cache");
    let args = json!({"namespace": ns, "filters": "Pod"});
    let no_calls = |record: &Value| {
        record
            .get("kube")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty)
    };

    let first = analyze(&gateway, &token, args.clone()).await?;
    assert_eq!(first.names("Pod"), in_ns(ns, &["flaky"]));
    let record = last_record(&gateway);
    assert!(
        !no_calls(&record),
        "the first answer is read from the API server: {record}"
    );
    assert!(!first.notes().contains("reused"), "{}", first.notes());

    // Fixed meanwhile: the answer kept for the TTL still says what it found.
    set_status(
        &admin,
        POD,
        Some(ns),
        "flaky",
        json!({"containerStatuses": [
        container_status("app", true, json!({"running": {"startedAt": "2024-05-01T10:05:00Z"}}))]}),
    )
    .await?;
    let reused = analyze(&gateway, &token, args.clone()).await?;
    assert_eq!(
        reused.names("Pod"),
        in_ns(ns, &["flaky"]),
        "{}",
        reused.text()
    );
    assert!(
        no_calls(&last_record(&gateway)),
        "no API request: {}",
        last_record(&gateway)
    );
    assert!(
        reused
            .notes()
            .contains("a recent answer was reused (pass noCache to analyze afresh)"),
        "{}",
        reused.notes()
    );
    // Kept per caller: another member of the tenant is answered afresh.
    let other = gateway.token("dev2", &["az-cache-devs"], "az-cache");
    let theirs = analyze(&gateway, &other, args.clone()).await?;
    assert!(theirs.results().is_empty(), "{}", theirs.text());
    assert!(!no_calls(&last_record(&gateway)));

    let mut fresh_args = args.clone();
    fresh_args["noCache"] = true.into();
    let fresh = analyze(&gateway, &token, fresh_args).await?;
    assert!(fresh.results().is_empty(), "{}", fresh.text());
    assert_eq!(fresh.structured()["status"], "OK");
    let record = last_record(&gateway);
    assert!(
        kube_uris(&record)
            .iter()
            .any(|u| u.starts_with("/api/v1/namespaces/az-cache/pods?")),
        "{record}"
    );
    // The fresh answer is the one kept now.
    let after = analyze(&gateway, &token, args).await?;
    assert!(after.results().is_empty(), "{}", after.text());
    assert!(no_calls(&last_record(&gateway)));
    Ok(())
}

#[tokio::test]
async fn a_tenants_stored_filters_are_decided_as_if_the_call_had_named_them() -> Result<()> {
    let admin = support::cluster().client("admin").await?;
    tenant_namespace(
        &admin,
        "az-stored",
        Some("tenant-stored"),
        "stored-devs",
        VIEW_ROLE,
    )
    .await?;
    // Log analysis reads pod logs: this policy keeps it out of analyze, however it is asked.
    let options = GatewayOptions::default().policy(
        "no-log-analysis.cedar",
        r#"@id("no-log-analysis")
           @reason("log contents stay out of analyze")
           forbid (principal, action == Action::"analyze", resource)
           when { context.arguments has filters && context.arguments.filters.contains("Log") };"#,
    );
    let gateway = TestGateway::start(options).await?;
    let client = gateway.client();
    let alice = gateway.token("alice", &["stored-devs"], "tenant-stored");
    let named = client
        .call_tool(
            &alice,
            "analyze",
            json!({"namespace": "az-stored", "filters": "Pod,Log"}),
        )
        .await?;
    assert!(super::super::support::tool_text(&named).1, "{named}");
    // Stored for the tenant, then asked for with no filters: the same refusal.
    client
        .call_ok(&alice, "add-filters", json!({"filters": "Log"}))
        .await?;
    let stored = client
        .call_tool(&alice, "analyze", json!({"namespace": "az-stored"}))
        .await?;
    let (text, refused) = super::super::support::tool_text(&stored);
    assert!(refused && text.contains("no-log-analysis"), "{text}");
    client
        .call_ok(&alice, "remove-filters", json!({"filters": "Log"}))
        .await?;
    let after = client
        .call_ok(&alice, "analyze", json!({"namespace": "az-stored"}))
        .await?;
    assert_eq!(after["structuredContent"]["status"], "OK", "{after}");
    Ok(())
}
