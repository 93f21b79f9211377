//! Every overlay applied to the real API server as a platform engineer applies it, with
//! `deploy/local/kube-1.20` on top for this 1.20 server's PodDisruptionBudget and
//! HorizontalPodAutoscaler versions, each in a namespace of its own: server-side dry-run (which
//! leaves nothing behind, and refuses an invalid object), then for real; every object is then
//! stored as rendered. SubjectAccessReviews for kubegate's ServiceAccount show it may do what
//! kubegate does, and nothing else. No kubelet runs, so no pod starts: that is expected.

use std::path::Path;

use anyhow::{Context, Result, bail};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use kube::api::{Api, DynamicObject, PostParams};
use kube::core::GroupVersionKind;
use serde_json::{Value, json};

use super::{Rendering, run_kubectl, wrap};
use crate::support;

/// The component that fits the base to the local 1.20 API server.
const LOCAL: &str = "local/kube-1.20";
/// The cluster admin's kubeconfig, beside the wrapping kustomization.
const ADMIN: &str = "admin.kubeconfig";

/// Where a review asks: cluster-wide, in kubegate's namespace, or in another.
#[derive(Clone, Copy, Debug)]
enum Scope {
    Cluster,
    Own,
    Other,
}

/// One question to the API server about kubegate's ServiceAccount, and the answer it must get.
#[derive(Debug)]
struct Check {
    verb: &'static str,
    group: &'static str,
    resource: &'static str,
    subresource: &'static str,
    name: &'static str,
    scope: Scope,
    allowed: bool,
}

fn may(verb: &'static str, group: &'static str, resource: &'static str, scope: Scope) -> Check {
    Check {
        verb,
        group,
        resource,
        subresource: "",
        name: "",
        scope,
        allowed: true,
    }
}

fn may_not(verb: &'static str, group: &'static str, resource: &'static str, scope: Scope) -> Check {
    Check {
        allowed: false,
        ..may(verb, group, resource, scope)
    }
}

impl Check {
    fn named(self, name: &'static str) -> Check {
        Check { name, ..self }
    }
    fn sub(self, subresource: &'static str) -> Check {
        Check {
            subresource,
            ..self
        }
    }
}

const RBAC: &str = "rbac.authorization.k8s.io";
const AUTHN: &str = "authentication.k8s.io";

/// What the base grants kubegate, and a good many things it must not (uids only if asked).
fn base_checks(uids: bool) -> Vec<Check> {
    use Scope::{Cluster, Other, Own};
    let settings = "kubegate-analysis-team-a";
    let mut checks = vec![
        may("impersonate", "", "users", Cluster).named("sso:alice"),
        may("impersonate", "", "groups", Cluster).named("team-a-devs"),
        may("get", "", "namespaces", Cluster).named("team-a"),
        may("list", "", "namespaces", Cluster),
        may("watch", "", "namespaces", Cluster),
        may("get", "", "configmaps", Own).named(settings),
        may("create", "", "configmaps", Own),
        may("update", "", "configmaps", Own).named(settings),
        // kubegate reads one tenant's ConfigMap by name and never lists, patches or deletes.
        may_not("list", "", "configmaps", Own),
        may_not("watch", "", "configmaps", Own),
        may_not("patch", "", "configmaps", Own).named(settings),
        may_not("delete", "", "configmaps", Own).named(settings),
        may_not("get", "", "configmaps", Other).named(settings),
        may_not("create", "", "configmaps", Other),
        may_not("update", "", "configmaps", Other).named(settings),
        may_not("get", "", "secrets", Own).named("kubegate-tls"),
        may_not("list", "", "secrets", Cluster),
        may_not("create", "", "pods", Own),
        may_not("create", "", "pods", Other),
        may_not("create", "", "pods", Own).named("web").sub("exec"),
        may_not("impersonate", "", "serviceaccounts", Other).named("default"),
        may_not("create", RBAC, "clusterroles", Cluster),
        may_not("escalate", RBAC, "clusterroles", Cluster).named("cluster-admin"),
        may_not("bind", RBAC, "clusterroles", Cluster).named("cluster-admin"),
        may_not("create", RBAC, "clusterrolebindings", Cluster),
        may_not("create", RBAC, "rolebindings", Own),
        may_not("update", RBAC, "roles", Own).named("kubegate-settings"),
        may_not("create", "", "namespaces", Cluster),
        may_not("update", "", "namespaces", Cluster).named("team-a"),
        may_not("delete", "", "namespaces", Cluster).named("team-a"),
        may_not("list", "", "nodes", Cluster),
        may_not("list", "apps", "deployments", Cluster),
    ];
    if !uids {
        checks.push(may_not("impersonate", AUTHN, "uids", Cluster).named("u-1"));
    }
    checks
}

/// `kubectl apply --server-side` of `objects` as the cluster's admin, or its server-side dry run.
fn kubectl_apply(kubeconfig: &Path, objects: &[&Value], dry: bool) -> Result<String> {
    let list = json!({"apiVersion": "v1", "kind": "List", "items": objects}).to_string();
    let kubeconfig = kubeconfig.display().to_string();
    let mut args = vec!["--kubeconfig", &kubeconfig, "apply", "--server-side"];
    args.extend(["--field-manager", "kubegate-deploy-test", "-f", "-"]);
    if dry {
        args.push("--dry-run=server");
    }
    run_kubectl(&args, Some(&list))
}

/// Renders `base` with `components` (and [`LOCAL`]) into the namespace `kgd-<name>`, with the
/// admin's kubeconfig beside it.
fn render(name: &str, base: &str, components: &[&str]) -> Result<(Rendering, tempfile::TempDir)> {
    let mut all = components.to_vec();
    all.push(LOCAL);
    let dir = wrap(base, &all, Some(&format!("kgd-{name}")))?;
    support::cluster().write_kubeconfig("admin", &dir.path().join(ADMIN))?;
    Ok((Rendering::of(dir.path())?, dir))
}

/// The API server's copy of a rendered object.
async fn served(admin: &kube::Client, object: &Value) -> Result<Value> {
    let api_version = object["apiVersion"].as_str().unwrap_or_default();
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let kind = object["kind"].as_str().unwrap_or_default();
    let gvk = GroupVersionKind::gvk(group, version, kind);
    let (resource, _) = kube::discovery::pinned_kind(admin, &gvk).await?;
    let name = object["metadata"]["name"].as_str().unwrap_or_default();
    let api: Api<DynamicObject> = match object["metadata"]["namespace"].as_str() {
        Some(ns) => Api::namespaced_with(admin.clone(), ns, &resource),
        None => Api::all_with(admin.clone(), &resource),
    };
    let found = api
        .get(name)
        .await
        .with_context(|| format!("{kind} {name} was not created"))?;
    Ok(serde_json::to_value(found)?)
}

/// Whether `served` holds everything `rendered` says (the server adds defaults and metadata).
fn holds(served: &Value, rendered: &Value) -> bool {
    match (served, rendered) {
        (Value::Object(s), Value::Object(r)) => r
            .iter()
            .all(|(k, v)| s.get(k).is_some_and(|sv| holds(sv, v))),
        (Value::Array(s), Value::Array(r)) => {
            s.len() == r.len() && s.iter().zip(r).all(|(sv, rv)| holds(sv, rv))
        }
        _ => served == rendered,
    }
}

/// Applies `base` with `components` as a platform engineer would (namespaces first: a dry
/// run of an object in a namespace not yet made fails), each step dry-run on the server first;
/// checks every object is stored as rendered, then asks the API server each of `checks` about
/// the rendered ServiceAccount.
async fn apply_and_review(
    name: &str,
    base: &str,
    components: &[&str],
    checks: &[Check],
) -> Result<()> {
    let (rendering, dir) = render(name, base, components)?;
    let kubeconfig = dir.path().join(ADMIN);
    let namespaces: Vec<&Value> = rendering.all("Namespace").collect();
    kubectl_apply(&kubeconfig, &namespaces, true)?;
    kubectl_apply(&kubeconfig, &namespaces, false)?;
    let objects: Vec<&Value> = rendering.objects.iter().collect();
    let said = kubectl_apply(&kubeconfig, &objects, true)?;
    assert!(said.contains("(server dry run)"), "{said}");
    let admin = support::cluster().client("admin").await?;
    if served(&admin, rendering.one("Deployment")?).await.is_ok() {
        bail!("{name}: the server-side dry run created the Deployment");
    }
    kubectl_apply(&kubeconfig, &objects, false)?;
    for object in &objects {
        let stored = served(&admin, object).await?;
        assert!(
            holds(&stored, object),
            "{name}: the API server stores another object than rendered:\n{object}\n{stored}"
        );
    }

    let account = rendering.one("ServiceAccount")?;
    let namespace = account["metadata"]["namespace"]
        .as_str()
        .context("its namespace")?;
    let user = format!(
        "system:serviceaccount:{namespace}:{}",
        account["metadata"]["name"].as_str().unwrap_or_default()
    );
    let groups = [
        "system:serviceaccounts".to_owned(),
        format!("system:serviceaccounts:{namespace}"),
        "system:authenticated".to_owned(),
    ];
    let reviews: Api<SubjectAccessReview> = Api::all(admin);
    let mut wrong = Vec::new();
    for check in checks {
        let spec = SubjectAccessReviewSpec {
            user: Some(user.clone()),
            groups: Some(groups.to_vec()),
            resource_attributes: Some(ResourceAttributes {
                verb: Some(check.verb.to_owned()),
                group: Some(check.group.to_owned()),
                resource: Some(check.resource.to_owned()),
                subresource: Some(check.subresource.to_owned()).filter(|s| !s.is_empty()),
                name: Some(check.name.to_owned()).filter(|n| !n.is_empty()),
                namespace: match check.scope {
                    Scope::Cluster => None,
                    Scope::Own => Some(namespace.to_owned()),
                    Scope::Other => Some("default".to_owned()),
                },
                ..Default::default()
            }),
            ..Default::default()
        };
        let review = SubjectAccessReview {
            spec,
            ..Default::default()
        };
        let answer = reviews.create(&PostParams::default(), &review).await?;
        let allowed = answer.status.is_some_and(|s| s.allowed);
        if allowed != check.allowed {
            wrong.push(format!("{check:?}: allowed = {allowed}"));
        }
    }
    assert!(wrong.is_empty(), "{name}: {user}:\n{}", wrong.join("\n"));
    Ok(())
}

#[tokio::test]
async fn every_overlay_applies_for_real_and_grants_kubegate_exactly_what_it_uses() -> Result<()> {
    for overlay in super::OVERLAYS {
        let base = format!("overlays/{overlay}");
        apply_and_review(overlay, &base, &[], &base_checks(false)).await?;
    }
    Ok(())
}

#[tokio::test]
async fn named_groups_limit_impersonation_to_the_list_and_uid_extra_adds_only_those() -> Result<()>
{
    use Scope::Cluster;
    let mut checks = base_checks(true);
    checks.extend([
        may("impersonate", "", "groups", Cluster).named("platform-admins"),
        may_not("impersonate", "", "groups", Cluster).named("cluster-admins"),
        may_not("impersonate", "", "groups", Cluster).named("team-c-devs"),
        may("impersonate", "", "users", Cluster).named("sso:anyone"),
        may("impersonate", AUTHN, "uids", Cluster).named("u-1"),
        may("impersonate", AUTHN, "userextras", Cluster).sub("example.com/department"),
        may_not("impersonate", AUTHN, "userextras", Cluster).sub("example.com/clearance"),
    ]);
    let components = [
        "components/named-groups",
        "components/impersonate-uid-extra",
    ];
    apply_and_review("groups", "overlays/production", &components, &checks).await
}

#[tokio::test]
async fn a_server_side_dry_run_refuses_an_invalid_object() -> Result<()> {
    // The dry runs above would prove nothing if the server took anything: it does not.
    let (rendering, dir) = render("invalid", "overlays/dev", &[])?;
    let mut deployment = rendering.one("Deployment")?.clone();
    deployment["metadata"]["namespace"] = json!("default");
    deployment["spec"]["template"]["spec"]["containers"][0]["name"] = json!("Kube_Gate");
    let refused = kubectl_apply(&dir.path().join(ADMIN), &[&deployment], true);
    let error = refused
        .err()
        .context("an invalid container name was accepted")?;
    assert!(format!("{error:#}").contains("Invalid value"), "{error:#}");
    Ok(())
}
