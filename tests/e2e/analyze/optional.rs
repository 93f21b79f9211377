//! The optional HorizontalPodAutoScaler, PodDisruptionBudget and Log analyzers, each run only
//! when a call (or the tenant's filters) names it; `Log` reads the containers' logs from the
//! kubelet stand-in through `pods/log`, as the caller.

use anyhow::Result;
use serde_json::{Value, json};

use super::{
    DEPLOYMENT, HPA, PDB, POD, analyze, container_status, create, create_with_status, deployment,
    in_ns, kube_uris, last_record,
};
use crate::support::cluster::{NODE_NAME, VIEW_ROLE};
use crate::support::{self, GatewayOptions, TestGateway, tenant_namespace};

#[tokio::test]
async fn autoscalers_with_a_missing_target_or_one_without_resources_are_reported() -> Result<()> {
    let admin = support::cluster().client("admin").await?;
    let ns = "az-hpa";
    tenant_namespace(&admin, ns, Some("az-hpa"), "az-hpa-devs", VIEW_ROLE).await?;
    let at = Some(ns);
    create(&admin, DEPLOYMENT, at, deployment("bare", 1)).await?;
    let mut sized = deployment("sized", 1);
    sized["spec"]["template"]["spec"]["containers"][0]["resources"] =
        json!({"requests": {"cpu": "100m"}, "limits": {"cpu": "500m"}});
    create(&admin, DEPLOYMENT, at, sized).await?;
    let autoscaler = |name: &str, target: &str| {
        json!({"metadata": {"name": name}, "spec": {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
        "minReplicas": 1, "maxReplicas": 5,
        "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]}})
    };
    let conditions = |active: &str, reason: &str, message: &str| {
        json!({
        "currentReplicas": 1, "desiredReplicas": 1,
        "conditions": [
            {"type": "AbleToScale", "status": "True", "reason": "ReadyForNewScale", "lastTransitionTime": "2024-05-01T10:00:00Z"},
            {"type": "ScalingActive", "status": active, "reason": reason, "message": message, "lastTransitionTime": "2024-05-01T10:00:00Z"},
        ]})
    };
    create(&admin, HPA, at, autoscaler("missing-target", "gone")).await?;
    create(&admin, HPA, at, autoscaler("no-resources", "bare")).await?;
    create_with_status(&admin, HPA, at, autoscaler("inactive", "sized"), conditions("False", "FailedGetResourceMetric",
        "the HPA was unable to compute the replica count: unable to get metrics for resource cpu")).await?;
    create_with_status(&admin, HPA, at, autoscaler("fine", "sized"), conditions("True", "ValidMetricFound",
        "the HPA was able to successfully calculate a replica count from cpu resource utilization")).await?;

    let gateway = TestGateway::start(GatewayOptions::default()).await?;
    let token = gateway.token("dev", &["az-hpa-devs"], "az-hpa");
    let found = analyze(
        &gateway,
        &token,
        json!({"namespace": ns, "filters": "HorizontalPodAutoScaler"}),
    )
    .await?;
    let kind = "HorizontalPodAutoscaler";
    assert_eq!(
        found.names(kind),
        in_ns(ns, &["inactive", "missing-target", "no-resources"]),
        "{}",
        found.text()
    );
    found.expect(kind, "az-hpa/missing-target", "",
        &["HorizontalPodAutoscaler missing-target scales Deployment \"gone\", which does not exist"]);
    found.expect(kind, "az-hpa/no-resources", "",
        &["HorizontalPodAutoscaler no-resources scales Deployment \"bare\", which has no container with resource requests and limits configured"]);
    found.expect(kind, "az-hpa/inactive", "", &[
        "HorizontalPodAutoscaler inactive is not scaling: FailedGetResourceMetric: the HPA was unable to compute the replica count",
    ]);
    Ok(())
}

#[tokio::test]
async fn disruption_budgets_that_allow_no_disruption_are_reported() -> Result<()> {
    let admin = support::cluster().client("admin").await?;
    let ns = "az-pdb";
    tenant_namespace(&admin, ns, Some("az-pdb"), "az-pdb-devs", VIEW_ROLE).await?;
    let at = Some(ns);
    let budget = |name: &str, app: &str| {
        json!({"metadata": {"name": name},
        "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": app}}}})
    };
    // What the 1.20 disruption controller writes. Its API has no status.conditions (1.21 added
    // the DisruptionAllowed condition; this API server drops the field), so the counts are all
    // that says a budget is blocking.
    let blocked = create_with_status(&admin, PDB, at, budget("blocked", "db"), json!({
        "observedGeneration": 1, "disruptionsAllowed": 0, "currentHealthy": 1, "desiredHealthy": 2, "expectedPods": 2,
        "conditions": [{"type": "DisruptionAllowed", "status": "False", "reason": "InsufficientPods",
                        "message": "", "lastTransitionTime": "2024-05-01T10:00:00Z"}],
    })).await?;
    assert!(
        blocked["status"].get("conditions").is_none(),
        "1.20 keeps no PDB conditions: {}",
        blocked["status"]
    );
    create_with_status(&admin, PDB, at, budget("fine", "web"), json!({
        "observedGeneration": 1, "disruptionsAllowed": 1, "currentHealthy": 3, "desiredHealthy": 2, "expectedPods": 3,
    })).await?;

    let gateway = TestGateway::start(GatewayOptions::default()).await?;
    let token = gateway.token("dev", &["az-pdb-devs"], "az-pdb");
    let found = analyze(
        &gateway,
        &token,
        json!({"namespace": ns, "filters": "PodDisruptionBudget"}),
    )
    .await?;
    assert_eq!(
        found.names("PodDisruptionBudget"),
        in_ns(ns, &["blocked"]),
        "{}",
        found.text()
    );
    found.expect(
        "PodDisruptionBudget",
        "az-pdb/blocked",
        "",
        &["PodDisruptionBudget blocked allows no disruption", "app=db"],
    );
    Ok(())
}

#[tokio::test]
async fn error_lines_in_running_containers_logs_are_reported_as_their_container() -> Result<()> {
    let plane = support::cluster();
    let admin = plane.client("admin").await?;
    let ns = "az-log";
    tenant_namespace(&admin, ns, Some("az-log"), "az-log-devs", VIEW_ROLE).await?;
    let at = Some(ns);
    let now = jiff::Timestamp::now();
    let log = |pod: &str, container: &str, lines: &[String]| -> Result<()> {
        let dir = plane.container_logs.join(ns).join(pod);
        std::fs::create_dir_all(&dir)?;
        let text: String = lines.iter().map(|l| format!("{now} {l}\n")).collect();
        std::fs::write(dir.join(format!("{container}.log")), text)?;
        Ok(())
    };
    let pod = |name: &str, containers: &[&str]| {
        let containers: Vec<Value> = containers
            .iter()
            .map(|c| json!({"name": c, "image": "registry.example/app:1"}))
            .collect();
        json!({"metadata": {"name": name}, "spec": {"nodeName": NODE_NAME, "containers": containers}})
    };
    let running = json!({"running": {"startedAt": "2024-05-01T10:00:00Z"}});
    let mut lines: Vec<String> = vec!["listening on :8080".into()];
    for n in 1..=6 {
        lines.push(format!(
            "ERROR request {n}: upstream connect error or disconnect/reset"
        ));
    }
    lines.push("GET /healthz 200".into());
    lines.push("java.lang.IllegalStateException: pool exhausted".into());
    log("api", "app", &lines)?;
    log("api", "proxy", &["proxy ready".into(), "GET / 200".into()])?;
    log(
        "quiet",
        "app",
        &["started".into(), "GET /healthz 200".into()],
    )?;
    // Its container is not running: its log is not read.
    log("stopped", "app", &["FATAL: failed to bind :8080".into()])?;
    create_with_status(&admin, POD, at, pod("api", &["app", "proxy"]), json!({"phase": "Running",
        "containerStatuses": [container_status("app", true, running.clone()), container_status("proxy", true, running.clone())]})).await?;
    create_with_status(
        &admin,
        POD,
        at,
        pod("quiet", &["app"]),
        json!({"phase": "Running",
        "containerStatuses": [container_status("app", true, running.clone())]}),
    )
    .await?;
    create_with_status(&admin, POD, at, pod("stopped", &["app"]), json!({"phase": "Running",
        "containerStatuses": [container_status("app", false, json!({"waiting": {"reason": "CrashLoopBackOff"}}))]})).await?;

    let gateway = TestGateway::start(GatewayOptions::default()).await?;
    let token = gateway.token("dev", &["az-log-devs"], "az-log");
    let found = analyze(&gateway, &token, json!({"namespace": ns, "filters": "Log"})).await?;
    assert_eq!(
        found.names("Pod"),
        in_ns(ns, &["api/app"]),
        "{}",
        found.text()
    );
    let failures = found.failures("Pod", "az-log/api/app");
    assert_eq!(
        failures.lines().collect::<Vec<_>>(),
        [
            "container \"app\" logged 2 earlier error line(s), not shown",
            "container \"app\" logged: ERROR request 3: upstream connect error or disconnect/reset",
            "container \"app\" logged: ERROR request 4: upstream connect error or disconnect/reset",
            "container \"app\" logged: ERROR request 5: upstream connect error or disconnect/reset",
            "container \"app\" logged: ERROR request 6: upstream connect error or disconnect/reset",
            "container \"app\" logged: java.lang.IllegalStateException: pool exhausted",
        ],
        "the most recent five error lines"
    );
    assert!(
        found.text().contains("Pod az-log/api/app\n"),
        "{}",
        found.text()
    );
    // The logs were read as the caller, one request per running container.
    let mut logs: Vec<String> = kube_uris(&last_record(&gateway))
        .into_iter()
        .filter(|u| u.contains("/log?"))
        .map(|u| u.split('?').next().unwrap_or_default().to_owned())
        .collect();
    logs.sort();
    assert_eq!(
        logs,
        [
            "/api/v1/namespaces/az-log/pods/api/log",
            "/api/v1/namespaces/az-log/pods/api/log",
            "/api/v1/namespaces/az-log/pods/quiet/log",
        ]
    );
    let impersonated = support::impersonated_requests("dev", "/namespaces/az-log/pods/stopped/log");
    assert!(impersonated.is_empty(), "{impersonated:?}");
    Ok(())
}
