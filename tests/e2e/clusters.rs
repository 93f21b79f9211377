//! One kubegate in front of two real control planes: the shared one as `dev` and a private
//! one as `prod` (or `flaky`), the same namespace name in both with different tenants. Calls
//! go to the cluster their `context` names (each API server's audit log shows only its own),
//! one policy set tells the clusters apart, every record and refusal names its cluster, and a
//! stopped API server fails only the calls to it, which succeed again once it is back.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};
use serde_json::{Value, json};

use crate::support::cluster::EDIT_ROLE;
use crate::support::{
    self, ControlPlane, GatewayCluster, GatewayOptions, McpClient, TestGateway, item_names,
    shipped_policy, tenant_namespace, tool_text,
};

/// A second control plane of this test alone, in a folder removed with it.
struct Private {
    plane: ControlPlane,
    _dir: tempfile::TempDir,
}

async fn private_plane() -> Result<Private> {
    let dir = tempfile::tempdir()?;
    let plane = ControlPlane::start(dir.path())
        .await
        .context("starting the second control plane")?;
    Ok(Private { plane, _dir: dir })
}

/// A namespace of `tenant` where Kubernetes RBAC lets the group `developers` edit.
async fn developers_may_edit(admin: &kube::Client, namespace: &str, tenant: &str) -> Result<()> {
    tenant_namespace(admin, namespace, Some(tenant), "developers", EDIT_ROLE).await
}

async fn pod(admin: &kube::Client, namespace: &str, name: &str) -> Result<()> {
    let pod: Pod = serde_json::from_value(json!({"metadata": {"name": name},
        "spec": {"containers": [{"name": "c", "image": "registry.example/c:1"}]}}))?;
    Api::<Pod>::namespaced(admin.clone(), namespace)
        .create(&PostParams::default(), &pod)
        .await
        .with_context(|| format!("creating pod {namespace}/{name}"))?;
    Ok(())
}

/// The shipped tenant policies plus the example that tells dev and prod apart.
fn options(clusters: Vec<GatewayCluster>) -> GatewayOptions {
    let mut options = GatewayOptions::with_tenant_edit();
    let (_, example) = shipped_policy("examples/dev-destructive-prod-read.cedar");
    options
        .policies
        .push(("dev-destructive-prod-read.cedar".to_owned(), example));
    // Contractors are kept out of every cluster but dev.
    options.policies.push((
        "contractors.cedar".to_owned(),
        r#"@id("contractors-only-in-dev")
           forbid (principal in Group::"contractors", action, resource)
           unless { resource in Cluster::"dev" };"#
            .to_owned(),
    ));
    options.clusters = clusters;
    options
}

/// The API server's own version, as its admin sees it (what `list-clusters` should say).
async fn version_of(admin: &kube::Client) -> Result<String> {
    Ok(admin.apiserver_version().await?.git_version)
}

/// Calls `list-resources` for the pods of `namespace` until it succeeds (or `within` passes);
/// the last error text otherwise.
async fn listed_within(
    client: &McpClient,
    token: &str,
    arguments: Value,
    within: Duration,
) -> Result<Vec<String>> {
    let deadline = Instant::now() + within;
    loop {
        let result = client
            .call_tool(token, "list-resources", arguments.clone())
            .await?;
        let (text, is_error) = tool_text(&result);
        if !is_error {
            return Ok(item_names(&result));
        }
        if Instant::now() > deadline {
            bail!("list-resources {arguments} still failing after {within:?}: {text}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test]
async fn one_kubegate_reads_both_clusters_and_changes_each_only_where_policy_permits() -> Result<()>
{
    let prod = private_plane().await?;
    let dev_admin = support::cluster().client("admin").await?;
    let prod_admin = prod.plane.client("admin").await?;
    // `mc-shop` in both clusters: team-a's in dev, team-b's in prod; `mc-web` is team-a's in
    // prod. Kubernetes RBAC lets developers edit in all three: only the policy tells them apart.
    developers_may_edit(&dev_admin, "mc-shop", "team-a").await?;
    developers_may_edit(&prod_admin, "mc-shop", "team-b").await?;
    developers_may_edit(&prod_admin, "mc-web", "team-a").await?;
    pod(&dev_admin, "mc-shop", "dev-shop-1").await?;
    pod(&prod_admin, "mc-shop", "prod-shop-1").await?;
    pod(&prod_admin, "mc-web", "prod-web-1").await?;

    let gateway = TestGateway::start(options(vec![
        GatewayCluster::of("dev", support::cluster(), true),
        GatewayCluster::of("prod", &prod.plane, false),
    ]))
    .await?;
    let client = gateway.client();
    let dana = gateway.token("dana", &["developers"], "team-a");
    // bea is a developer of team-b, the tenant of prod's mc-shop.
    let bea = gateway.token("bea", &["developers"], "team-b");

    // tools/list offers list-clusters and a `context` on the tools.
    let tools = client.request(&dana, "tools/list", json!({})).await?;
    let tools = tools["result"]["tools"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let tool = |name: &str| tools.iter().find(|t| t["name"] == name).cloned();
    ensure!(
        tool("list-clusters").is_some(),
        "no list-clusters in {tools:?}"
    );
    let list = tool("list-resources").context("no list-resources")?;
    assert_eq!(
        list["inputSchema"]["properties"]["context"]["type"],
        "string"
    );
    assert!(
        tool("list-clusters")
            .is_some_and(|t| t["inputSchema"]["properties"].get("context").is_none())
    );
    // Every other tool takes `context`.
    let without: Vec<&Value> = tools
        .iter()
        .filter(|t| t["name"] != "list-clusters")
        .filter(|t| t["inputSchema"]["properties"]["context"]["type"] != "string")
        .map(|t| &t["name"])
        .collect();
    ensure!(without.is_empty(), "tools without a `context`: {without:?}");

    let clusters = client.call_ok(&dana, "list-clusters", json!({})).await?;
    let listed: Vec<(String, bool, bool)> = clusters["structuredContent"]["clusters"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            (
                c["name"].as_str().unwrap_or_default().to_owned(),
                c["default"] == true,
                c["reachable"] == true,
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            ("dev".to_owned(), true, true),
            ("prod".to_owned(), false, true)
        ]
    );
    // Each with its own API server's version.
    let listed = &clusters["structuredContent"]["clusters"];
    assert_eq!(listed[0]["version"], version_of(&dev_admin).await?.as_str());
    assert_eq!(
        listed[1]["version"],
        version_of(&prod_admin).await?.as_str()
    );
    // A caller kept out of prod does not see it listed.
    let erin = gateway.token("erin", &["contractors"], "team-a");
    let theirs = client.call_ok(&erin, "list-clusters", json!({})).await?;
    let names: Vec<&str> = theirs["structuredContent"]["clusters"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(names, ["dev"], "{theirs}");

    // Reads go to the cluster `context` names, or the default.
    let in_dev = client
        .call_ok(
            &dana,
            "list-resources",
            json!({"resourceType": "pods", "namespace": "mc-shop"}),
        )
        .await?;
    assert_eq!(item_names(&in_dev), ["dev-shop-1"]);
    let in_prod = client
        .call_ok(
            &dana,
            "list-resources",
            json!({"resourceType": "pods", "namespace": "mc-web", "context": "prod"}),
        )
        .await?;
    assert_eq!(item_names(&in_prod), ["prod-web-1"]);
    // prod's mc-shop is another tenant's: refused, naming prod's namespace.
    let refused = client
        .call_err(
            &dana,
            "list-resources",
            json!({"resourceType": "pods", "namespace": "mc-shop", "context": "prod"}),
        )
        .await?;
    assert!(
        refused.contains(r#"Namespace::"prod/mc-shop""#),
        "{refused}"
    );
    // The same namespace name is team-b's in prod and team-a's in dev: bea reads prod's, and
    // is refused dev's, naming dev's.
    let bea_in_prod = client
        .call_ok(
            &bea,
            "list-resources",
            json!({"resourceType": "pods", "namespace": "mc-shop", "context": "prod"}),
        )
        .await?;
    assert_eq!(item_names(&bea_in_prod), ["prod-shop-1"]);
    let bea_in_dev = client
        .call_err(
            &bea,
            "list-resources",
            json!({"resourceType": "pods", "namespace": "mc-shop"}),
        )
        .await?;
    assert!(
        bea_in_dev.contains(r#"Namespace::"dev/mc-shop""#),
        "{bea_in_dev}"
    );
    // Each API server saw only its own calls.
    let dev_log = support::cluster();
    assert!(
        !dev_log
            .impersonated_requests("dana", "/namespaces/mc-shop/pods")
            .is_empty()
    );
    assert!(
        dev_log
            .impersonated_requests("dana", "/namespaces/mc-web/")
            .is_empty()
    );
    assert!(
        !prod
            .plane
            .impersonated_requests("dana", "/namespaces/mc-web/pods")
            .is_empty()
    );
    assert!(
        prod.plane
            .impersonated_requests("dana", "/namespaces/mc-shop/")
            .is_empty()
    );

    // Destructive in dev (the pod is gone), only reading in prod (it stays).
    client
        .call_ok(
            &dana,
            "delete_pod",
            json!({"name": "dev-shop-1", "namespace": "mc-shop"}),
        )
        .await?;
    let gone = Api::<Pod>::namespaced(dev_admin.clone(), "mc-shop")
        .get_opt("dev-shop-1")
        .await?;
    ensure!(gone.is_none(), "dev-shop-1 is still in dev");
    let kept = client
        .call_err(
            &dana,
            "delete_pod",
            json!({"name": "prod-web-1", "namespace": "mc-web", "context": "prod"}),
        )
        .await?;
    assert!(
        kept.contains(r#"Object::"prod/mc-web/Pod/prod-web-1""#),
        "{kept}"
    );
    assert!(kept.contains("developers-only-read-in-prod"), "{kept}");
    ensure!(
        Api::<Pod>::namespaced(prod_admin.clone(), "mc-web")
            .get_opt("prod-web-1")
            .await?
            .is_some(),
        "prod-web-1 was deleted in prod"
    );
    assert!(
        prod.plane
            .impersonated_requests("dana", "/pods/prod-web-1")
            .is_empty()
    );

    // Tenants' analyzer settings are each cluster's own: an analyzer turned on in dev stays
    // off in prod.
    client
        .call_ok(&dana, "add-filters", json!({"filters": "Log"}))
        .await?;
    let active = |result: &Value| {
        result["structuredContent"]["activeFilters"]
            .as_array()
            .is_some_and(|a| a.iter().any(|f| f == "Log"))
    };
    let dev_filters = client.call_ok(&dana, "list-filters", json!({})).await?;
    assert!(active(&dev_filters), "{dev_filters}");
    let prod_filters = client
        .call_ok(&dana, "list-filters", json!({"context": "prod"}))
        .await?;
    assert!(!active(&prod_filters), "{prod_filters}");

    // A cluster kubegate does not front is refused before any API server hears of it: asked
    // in a namespace dana may read in dev (mc-shop) and in one she may read in prod (mc-web),
    // so a call sent to either cluster instead would reach its API server. The label selector
    // marks the requests; calls marked `probe=after`, made next in each cluster, show that
    // both audit logs have been written past them.
    let dana_reads = [("dev", "mc-shop"), ("prod", "mc-web")];
    for (_, namespace) in dana_reads {
        let unknown = client
            .call_err(
                &dana,
                "list-resources",
                json!({"resourceType": "pods", "namespace": namespace, "context": "staging",
                       "labelSelector": "probe=unknown-context"}),
            )
            .await?;
        assert!(unknown.contains("unknown context `staging`"), "{unknown}");
    }
    for (context, namespace) in dana_reads {
        client
            .call_ok(
                &dana,
                "list-resources",
                json!({"resourceType": "pods", "namespace": namespace, "context": context,
                       "labelSelector": "probe=after"}),
            )
            .await?;
    }
    for (name, plane) in [("dev", support::cluster()), ("prod", &prod.plane)] {
        support::eventually(&format!("{name}'s audit log shows the probe"), || async {
            !plane
                .impersonated_requests("dana", "probe%3Dafter")
                .is_empty()
        })
        .await?;
        let heard = plane.impersonated_requests("dana", "unknown-context");
        assert!(
            heard.is_empty(),
            "{name}'s API server heard of it: {heard:?}"
        );
    }
    // An unknown tool is that, whatever cluster it names.
    let no_tool = client
        .post(
            Some(&dana),
            &json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                    "params": {"name": "rm-rf", "arguments": {"context": "staging"}}}),
        )
        .await?;
    assert_eq!(no_tool.body["error"]["code"], -32602, "{}", no_tool.text);

    // The namespaces resource shows, per cluster, the namespaces dana may use there.
    let read = client
        .request(&dana, "resources/read", json!({"uri": "k8s://namespaces"}))
        .await?;
    let text = read["result"]["contents"][0]["text"]
        .as_str()
        .unwrap_or_default();
    let contents: Value = serde_json::from_str(text)?;
    let prod_namespaces: Vec<&str> = contents["clusters"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["name"] == "prod")
        .flat_map(|c| c["namespaces"].as_array().into_iter().flatten())
        .filter_map(|n| n["name"].as_str())
        .collect();
    assert_eq!(prod_namespaces, ["mc-web"], "{contents}");

    // /readyz counts the clusters that can serve (it is unauthenticated: no names).
    let ready = client.http.get(gateway.url_of("/readyz")).send().await?;
    assert_eq!(ready.status(), 200);
    assert_eq!(ready.text().await?, "ok\nclusters: 2 of 2 can serve\n");

    // Every tool call's record names the cluster it went to (none for the unknown one).
    let records = gateway.audit_records();
    let calls: Vec<(&str, &str, Option<&str>, &str)> = records
        .iter()
        .filter(|r| r["mcp"]["method"] == "tools/call" && r["stage"] == "ResponseComplete")
        .map(|r| {
            (
                r["user"]["username"].as_str().unwrap_or_default(),
                r["mcp"]["tool"].as_str().unwrap_or_default(),
                r["cluster"].as_str(),
                r["outcome"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        calls,
        [
            ("dana", "list-clusters", Some("dev"), "success"),
            ("erin", "list-clusters", Some("dev"), "success"),
            ("dana", "list-resources", Some("dev"), "success"),
            ("dana", "list-resources", Some("prod"), "success"),
            ("dana", "list-resources", Some("prod"), "denied"),
            ("bea", "list-resources", Some("prod"), "success"),
            ("bea", "list-resources", Some("dev"), "denied"),
            ("dana", "delete_pod", Some("dev"), "success"),
            ("dana", "delete_pod", Some("prod"), "denied"),
            ("dana", "add-filters", Some("dev"), "success"),
            ("dana", "list-filters", Some("dev"), "success"),
            ("dana", "list-filters", Some("prod"), "success"),
            ("dana", "list-resources", None, "invalid"),
            ("dana", "list-resources", None, "invalid"),
            ("dana", "list-resources", Some("dev"), "success"),
            ("dana", "list-resources", Some("prod"), "success"),
            ("dana", "rm-rf", None, "invalid"),
        ]
    );
    let unknown_record = records
        .iter()
        .rfind(|r| r["outcome"] == "invalid" && r["mcp"]["tool"] == "list-resources")
        .context("no record of the unknown context")?;
    assert!(unknown_record.get("kube").is_none(), "{unknown_record}");
    Ok(())
}

#[tokio::test]
async fn a_single_cluster_shows_neither_context_nor_list_clusters() -> Result<()> {
    let gateway = TestGateway::start(GatewayOptions::default()).await?;
    let alice = gateway.token("alice", &["team-a-devs"], "team-a");
    let tools = gateway
        .client()
        .request(&alice, "tools/list", json!({}))
        .await?;
    let tools = tools["result"]["tools"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    ensure!(!tools.is_empty(), "alice sees no tools");
    assert!(tools.iter().all(|t| t["name"] != "list-clusters"));
    assert!(
        tools
            .iter()
            .all(|t| t["inputSchema"]["properties"].get("context").is_none())
    );
    // Nor do calls: `context` is an unknown argument, list-clusters an unknown tool.
    let client = gateway.client();
    let context = client
        .call_err(
            &alice,
            "list-resources",
            json!({"resourceType": "pods", "namespace": "team-a", "context": "local"}),
        )
        .await?;
    assert!(context.contains("context"), "{context}");
    assert!(!context.contains("unknown context"), "{context}");
    let listing = client
        .post(
            Some(&alice),
            &json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                    "params": {"name": "list-clusters"}}),
        )
        .await?;
    assert_eq!(listing.body["error"]["code"], -32602, "{}", listing.text);
    Ok(())
}

#[tokio::test]
async fn one_cluster_down_never_takes_the_other_with_it() -> Result<()> {
    let mut flaky = private_plane().await?;
    let dev_admin = support::cluster().client("admin").await?;
    let flaky_admin = flaky.plane.client("admin").await?;
    developers_may_edit(&dev_admin, "mc-up", "team-a").await?;
    developers_may_edit(&flaky_admin, "mc-up", "team-a").await?;
    pod(&dev_admin, "mc-up", "dev-up-1").await?;
    pod(&flaky_admin, "mc-up", "flaky-up-1").await?;
    // kubegate starts while flaky's API server is down.
    flaky.plane.stop_apiserver().await?;
    let mut options = options(vec![
        GatewayCluster::of("dev", support::cluster(), true),
        GatewayCluster::of("flaky", &flaky.plane, false),
    ]);
    // So that /readyz tells soon that a connected cluster has gone.
    options.namespaces_stale_after = Some(1);
    let gateway = TestGateway::start(options).await?;
    let client = gateway.client();
    let dana = gateway.token("dana", &["developers"], "team-a");
    let in_dev = json!({"resourceType": "pods", "namespace": "mc-up"});
    let in_flaky = json!({"resourceType": "pods", "namespace": "mc-up", "context": "flaky"});

    let down = client
        .call_err(&dana, "list-resources", in_flaky.clone())
        .await?;
    assert!(down.contains("cluster `flaky` is not reachable"), "{down}");
    let dev = client
        .call_ok(&dana, "list-resources", in_dev.clone())
        .await?;
    assert_eq!(item_names(&dev), ["dev-up-1"]);
    let ready = client.http.get(gateway.url_of("/readyz")).send().await?;
    assert_eq!(ready.status(), 200, "dev can serve");
    assert_eq!(ready.text().await?, "ok\nclusters: 1 of 2 can serve\n");
    // Told only to those who may use it: to a caller kept out of it, it is unknown.
    let erin = gateway.token("erin", &["contractors"], "team-a");
    let hidden = client
        .call_err(&erin, "list-resources", in_flaky.clone())
        .await?;
    assert!(hidden.contains("unknown context `flaky`"), "{hidden}");
    // list-clusters still answers, and says so.
    let clusters = client.call_ok(&dana, "list-clusters", json!({})).await?;
    assert_eq!(
        clusters["structuredContent"]["clusters"][1]["name"],
        "flaky"
    );
    assert_eq!(
        clusters["structuredContent"]["clusters"][1]["reachable"],
        false
    );

    // Once it is up, kubegate connects by itself.
    flaky.plane.start_apiserver().await?;
    let back = listed_within(&client, &dana, in_flaky.clone(), Duration::from_secs(60)).await?;
    assert_eq!(back, ["flaky-up-1"]);

    // Down again while connected: its calls fail naming it; dev's do not.
    flaky.plane.stop_apiserver().await?;
    let cut = client
        .call_err(&dana, "list-resources", in_flaky.clone())
        .await?;
    assert!(cut.starts_with("cluster `flaky`: "), "{cut}");
    let dev = client
        .call_ok(&dana, "list-resources", in_dev.clone())
        .await?;
    assert_eq!(item_names(&dev), ["dev-up-1"]);
    // /readyz stays 200 (dev can serve) and soon counts one cluster of two.
    let readyz = gateway.url_of("/readyz");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ready = client.http.get(&readyz).send().await?;
        let status = ready.status();
        let body = ready.text().await?;
        assert_eq!(status, 200, "dev can serve: {body}");
        if body == "ok\nclusters: 1 of 2 can serve\n" {
            break;
        }
        assert_eq!(body, "ok\nclusters: 2 of 2 can serve\n");
        ensure!(
            Instant::now() < deadline,
            "/readyz still counts flaky 30 s after its API server stopped: {body}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    flaky.plane.start_apiserver().await?;
    let again = listed_within(&client, &dana, in_flaky, Duration::from_secs(60)).await?;
    assert_eq!(again, ["flaky-up-1"]);
    support::eventually("/readyz counts flaky again", || async {
        let body = match client.http.get(&readyz).send().await {
            Ok(ready) => ready.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        body == "ok\nclusters: 2 of 2 can serve\n"
    })
    .await?;

    // Both kinds of failure are recorded against flaky.
    let records = gateway.audit_records();
    let errors: Vec<&str> = records
        .iter()
        .filter(|r| r["cluster"] == "flaky" && r["outcome"] == "error")
        .filter_map(|r| r["error"].as_str())
        .collect();
    assert!(
        errors.iter().any(|e| e.contains("is not reachable")),
        "{errors:?}"
    );
    assert!(
        errors.iter().any(|e| e.starts_with("cluster `flaky`: ")),
        "{errors:?}"
    );
    Ok(())
}

#[tokio::test]
async fn with_no_cluster_able_to_serve_kubegate_is_not_ready_until_one_is_back() -> Result<()> {
    // The default cluster is a private plane whose tenants are named by its own label; the
    // other never answers.
    let mut main = private_plane().await?;
    let admin = main.plane.client("admin").await?;
    tenant_namespace(&admin, "mc-own-label", None, "developers", EDIT_ROLE).await?;
    let namespaces = Api::<k8s_openapi::api::core::v1::Namespace>::all(admin.clone());
    namespaces
        .patch(
            "mc-own-label",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(
                json!({"metadata": {"labels": {"example.com/team": "team-a"}}}),
            ),
        )
        .await?;
    pod(&admin, "mc-own-label", "own-label-1").await?;
    let mut own = GatewayCluster::of("main", &main.plane, true);
    own.tenant_label = Some("example.com/team".to_owned());
    let mut options = options(vec![own, GatewayCluster::unreachable("gone", &main.plane)?]);
    options.namespaces_stale_after = Some(1);
    let gateway = TestGateway::start(options).await?;
    let client = gateway.client();
    let dana = gateway.token("dana", &["developers"], "team-a");
    let readyz = gateway.url_of("/readyz");
    let ready = || async {
        let ready = client.http.get(&readyz).send().await?;
        let status = ready.status().as_u16();
        Ok::<_, anyhow::Error>((status, ready.text().await?))
    };

    // main serves (its namespace is team-a's by main's own label); gone fails alone.
    let (status, body) = ready().await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, "ok\nclusters: 1 of 2 can serve\n");
    let in_main = json!({"resourceType": "pods", "namespace": "mc-own-label"});
    let listed = client
        .call_ok(&dana, "list-resources", in_main.clone())
        .await?;
    assert_eq!(item_names(&listed), ["own-label-1"]);
    let gone = client
        .call_err(
            &dana,
            "list-resources",
            json!({"resourceType": "pods", "namespace": "mc-own-label", "context": "gone"}),
        )
        .await?;
    assert!(gone.contains("cluster `gone`"), "{gone}");
    assert!(
        gone.contains("not reachable") || gone.contains("cannot reach"),
        "{gone}"
    );

    // The default's API server stops: calls without a context fail naming it, and nothing can
    // serve.
    main.plane.stop_apiserver().await?;
    let down = client
        .call_err(&dana, "list-resources", in_main.clone())
        .await?;
    assert!(down.contains("cluster `main`"), "{down}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = ready().await?;
        if status == 503 {
            assert_eq!(
                body,
                "not ready: no cluster can serve\nclusters: 0 of 2 can serve\n"
            );
            break;
        }
        ensure!(
            Instant::now() < deadline,
            "/readyz still {status} 30 s after the only reachable cluster stopped: {body}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // Back: ready again and serving, kubegate never restarted.
    main.plane.start_apiserver().await?;
    let back = listed_within(&client, &dana, in_main, Duration::from_secs(60)).await?;
    assert_eq!(back, ["own-label-1"]);
    let (status, body) = ready().await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, "ok\nclusters: 1 of 2 can serve\n");
    Ok(())
}
