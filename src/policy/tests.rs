use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde_json::json;

use super::*;

/// Namespaces as the namespace cache would report them.
struct Namespaces(HashMap<String, NamespaceFacts>);

impl NamespaceDirectory for Namespaces {
    fn namespace(&self, name: &str) -> Option<NamespaceFacts> {
        self.0.get(name).cloned()
    }
    fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.0.keys().cloned().collect();
        names.sort();
        names
    }
}

fn namespaces() -> Namespaces {
    let labelled = |tenant: &str, env: &str| NamespaceFacts {
        labels: BTreeMap::from([
            ("kubegate.io/tenant".to_owned(), tenant.to_owned()),
            ("env".to_owned(), env.to_owned()),
        ]),
        tenant: Some(tenant.to_owned()),
    };
    Namespaces(HashMap::from([
        ("team-a".to_owned(), labelled("team-a", "dev")),
        ("team-a-2".to_owned(), labelled("team-a", "prod")),
        ("team-b".to_owned(), labelled("team-b", "prod")),
        ("shared".to_owned(), NamespaceFacts::default()),
    ]))
}

fn caller(name: &str, tenant: &str, groups: &[&str]) -> Arc<Caller> {
    Arc::new(Caller {
        username: name.to_owned(),
        groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        tenant: tenant.to_owned(),
        email: None,
        claims: BTreeMap::from([("department".to_owned(), "payments".to_owned())]),
        ..Default::default()
    })
}

fn facts() -> RequestFacts {
    RequestFacts {
        transport: "streamable-http",
        source_ip: "192.0.2.7".parse().unwrap_or(IpAddr::from([127, 0, 0, 1])),
        protocol_version: "2025-06-18".to_owned(),
        session_id: None,
        time: jiff::Timestamp::now(),
    }
}

fn engine(sources: &[(&str, &str)]) -> Result<PolicyEngine, PolicyError> {
    let sources: Vec<(String, String)> = sources
        .iter()
        .map(|(n, t)| ((*n).to_owned(), (*t).to_owned()))
        .collect();
    PolicyEngine::from_sources(&sources, "local")
}

fn shipped() -> PolicyEngine {
    engine(&[
        (
            "tenant-isolation.cedar",
            include_str!("../../policies/tenant-isolation.cedar"),
        ),
        (
            "tenant-edit.cedar",
            include_str!("../../policies/tenant-edit.cedar"),
        ),
        (
            "platform-admins.cedar",
            include_str!("../../policies/platform-admins.cedar"),
        ),
        ("non-destructive.cedar", NON_DESTRUCTIVE_POLICIES),
    ])
    .unwrap_or_else(|e| panic!("shipped policies must load: {e}"))
}

/// A call as a tool would present it to the policy.
#[derive(Debug, Clone)]
struct Call {
    action: &'static str,
    scope: Scope,
    arguments: serde_json::Value,
}

impl Decidable for Call {
    fn action(&self) -> &'static str {
        self.action
    }
    fn scope(&self, _: &dyn NamespaceDirectory) -> Scope {
        self.scope.clone()
    }
    fn cedar_arguments(&self) -> serde_json::Value {
        self.arguments.clone()
    }
}

fn list_pods(ns: Option<&str>) -> Call {
    match ns {
        Some(ns) => Call {
            action: "list-resources",
            scope: Scope::One(Target::Namespace(ns.to_owned())),
            arguments: json!({"resourceType": "pods", "namespace": ns}),
        },
        None => Call {
            action: "list-resources",
            scope: Scope::One(Target::Cluster),
            arguments: json!({"resourceType": "pods"}),
        },
    }
}

fn pod(ns: &str, name: &str) -> Target {
    Target::Object(ObjectRef {
        api_group: String::new(),
        kind: "Pod".to_owned(),
        namespace: Some(ns.to_owned()),
        name: name.to_owned(),
    })
}

fn delete_pod(ns: &str) -> Call {
    Call {
        action: "delete_pod",
        scope: Scope::One(pod(ns, "web")),
        arguments: json!({"name": "web", "namespace": ns}),
    }
}

fn ask(engine: &PolicyEngine, who: &Arc<Caller>, call: Call) -> Result<Permitted<Call>, Denied> {
    engine.authorize(who, call, &facts(), &namespaces())
}

fn decide(
    engine: &PolicyEngine,
    who: &Arc<Caller>,
    ns: Option<&str>,
) -> Result<Permitted<Call>, Denied> {
    ask(engine, who, list_pods(ns))
}

#[test]
fn the_committed_schema_is_the_generated_one() {
    let committed = include_str!("../../policies/kubegate.cedarschema");
    assert_eq!(
        committed,
        schema::render(),
        "policies/kubegate.cedarschema is stale: run `kubegate policy schema --write policies/kubegate.cedarschema`"
    );
}

#[test]
fn tenant_members_read_their_own_namespaces_only() {
    let engine = shipped();
    let alice = caller("alice", "team-a", &["team-a-devs"]);
    let permitted = decide(&engine, &alice, Some("team-a"))
        .unwrap_or_else(|d| panic!("alice in team-a must be permitted: {d}"));
    let permit = permitted.permit();
    assert_eq!(permit.policies(), ["tenant-read-own-namespaces"]);
    assert_eq!(
        permit.reasons(),
        ["a tenant's members may read in their tenant's namespaces"]
    );
    assert_eq!(permit.caller().username, "alice");
    assert_eq!(permit.resource(), r#"Namespace::"local/team-a""#);
    assert_eq!(
        permitted.call().arguments["namespace"],
        "team-a",
        "the call is bound to its permit"
    );

    let denied = decide(&engine, &alice, Some("team-b")).err();
    let denied = denied.unwrap_or_else(|| panic!("alice must not read team-b"));
    assert_eq!(denied.cause, Refusal::NotPermitted);
    assert_eq!(
        denied.to_string(),
        r#"kubegate refused `list-resources` on Namespace::"local/team-b" for User::"alice": no policy permits it"#
    );
    assert!(
        decide(&engine, &alice, None).is_err(),
        "all namespaces = cluster"
    );
    assert!(
        decide(&engine, &alice, Some("shared")).is_err(),
        "unlabelled namespace"
    );
    assert!(
        decide(&engine, &alice, Some("unknown")).is_err(),
        "unknown namespace"
    );
}

#[test]
fn platform_admins_read_the_whole_cluster() {
    let engine = shipped();
    let carol = caller("carol", "platform", &["platform-admins"]);
    let permit = decide(&engine, &carol, None).ok();
    assert_eq!(
        permit.as_ref().map(|p| p.permit().policies()),
        Some(vec!["platform-admins-read-all".to_owned()])
    );
    assert!(decide(&engine, &carol, Some("team-b")).is_ok());
    // Reading is not revealing: no shipped policy grants reveal-secrets.
    let reveal = engine.reveal_secrets(&carol, &Target::Cluster, &facts(), &namespaces());
    assert!(reveal.is_err());
    // Reading is not changing either.
    assert!(ask(&engine, &carol, delete_pod("team-b")).is_err());
}

#[test]
fn no_policies_permit_nothing() {
    let empty = engine(&[]).unwrap_or_else(|e| panic!("{e}"));
    assert!(empty.is_empty());
    let carol = caller("carol", "platform", &["platform-admins"]);
    assert!(decide(&empty, &carol, None).is_err());
}

#[test]
fn forbid_wins_and_names_itself() {
    let engine = engine(&[(
        "p.cedar",
        r#"
        @id("everyone-reads")
        permit (principal, action in Action::"read", resource);
        @id("no-prod")
        @reason("production is off limits")
        forbid (principal, action, resource is Namespace)
        when { resource.hasTag("env") && resource.getTag("env") == "prod" };
        "#,
    )])
    .unwrap_or_else(|e| panic!("{e}"));
    let bob = caller("bob", "team-b", &[]);
    assert!(decide(&engine, &bob, Some("team-a")).is_ok());
    let denied = decide(&engine, &bob, Some("team-b")).err();
    let denied = denied.unwrap_or_else(|| panic!("forbid must win"));
    assert_eq!(denied.policies(), ["no-prod"]);
    assert_eq!(
        denied.to_string(),
        r#"kubegate refused `list-resources` on Namespace::"local/team-b" for User::"bob": forbidden by policy no-prod (production is off limits)"#
    );
}

#[test]
fn the_non_destructive_set_forbids_the_destructive_group() {
    let alice = caller("alice", "team-a", &["team-a-devs"]);
    let without = engine(&[
        (
            "tenant-isolation.cedar",
            include_str!("../../policies/tenant-isolation.cedar"),
        ),
        (
            "tenant-edit.cedar",
            include_str!("../../policies/tenant-edit.cedar"),
        ),
    ])
    .unwrap_or_else(|e| panic!("{e}"));
    let allowed = ask(&without, &alice, delete_pod("team-a"));
    assert!(
        allowed.is_ok(),
        "tenant-edit lets alice delete: {:?}",
        allowed.err()
    );
    let with = shipped();
    let denied = ask(&with, &alice, delete_pod("team-a")).err();
    let denied = denied.unwrap_or_else(|| panic!("non-destructive must forbid"));
    assert_eq!(denied.policies(), ["non-destructive"]);
    assert_eq!(
        denied.to_string(),
        r#"kubegate refused `delete_pod` on Object::"local/team-a/Pod/web" for User::"alice": forbidden by policy non-destructive (only non-destructive tools are allowed (ALLOW_ONLY_NON_DESTRUCTIVE_TOOLS))"#
    );
    // Writes and reads still pass.
    let apply = Call {
        action: "kubectl_apply",
        scope: Scope::One(pod("team-a", "web")),
        arguments: json!({"manifest": "..."}),
    };
    assert!(ask(&with, &alice, apply).is_ok());
    assert!(decide(&with, &alice, Some("team-a")).is_ok());
}

#[test]
fn objects_are_in_their_namespace_and_cluster() {
    let engine = engine(&[(
        "p.cedar",
        r#"
        @id("in-cluster")
        permit (principal, action == Action::"get-resource", resource in Cluster::"local")
        when { resource is Object && resource.kind == "Pod" && resource has namespace && resource.namespace == "team-a" };
        @id("not-in-b")
        forbid (principal, action, resource in Namespace::"local/team-b");
        @id("tenant-b-tagged")
        forbid (principal, action, resource in Tenant::"team-b");
        "#,
    )])
    .unwrap_or_else(|e| panic!("{e}"));
    let alice = caller("alice", "team-a", &[]);
    let get = |target: Target| Call {
        action: "get-resource",
        scope: Scope::One(target),
        arguments: json!({"resourceType": "pods", "name": "web"}),
    };
    let permitted = ask(&engine, &alice, get(pod("team-a", "web")));
    assert_eq!(
        permitted
            .map(|p| p.permit().resource().to_owned())
            .map_err(|d| d.to_string()),
        Ok(r#"Object::"local/team-a/Pod/web""#.to_owned())
    );
    let in_b = ask(&engine, &alice, get(pod("team-b", "web"))).err();
    assert_eq!(
        in_b.map(|d| d.policies().to_vec()),
        Some(vec!["not-in-b".to_owned(), "tenant-b-tagged".to_owned()])
    );
}

#[test]
fn one_policy_set_decides_each_cluster_on_its_own_ids() {
    let dev = engine(&[
        (
            "tenant-isolation.cedar",
            include_str!("../../policies/tenant-isolation.cedar"),
        ),
        (
            "tenant-edit.cedar",
            include_str!("../../policies/tenant-edit.cedar"),
        ),
        (
            "dev-destructive-prod-read.cedar",
            include_str!("../../policies/examples/dev-destructive-prod-read.cedar"),
        ),
    ])
    .map(|local| local.for_cluster("dev"))
    .unwrap_or_else(|e| panic!("{e}"));
    let prod = dev.for_cluster("prod");
    let dana = caller("dana", "team-a", &["developers"]);
    let delete = || Call {
        action: "delete_pod",
        scope: Scope::One(pod("team-a", "web-1")),
        arguments: json!({"name": "web-1", "namespace": "team-a"}),
    };
    let in_dev = ask(&dev, &dana, delete()).map(|p| p.permit().resource().to_owned());
    assert_eq!(
        in_dev.map_err(|d| d.to_string()),
        Ok(r#"Object::"dev/team-a/Pod/web-1""#.to_owned())
    );
    let in_prod = ask(&prod, &dana, delete()).err();
    assert_eq!(
        in_prod
            .as_ref()
            .map(|d| (d.resource.as_str(), d.policies())),
        Some((
            r#"Object::"prod/team-a/Pod/web-1""#,
            &["developers-only-read-in-prod".to_owned()][..]
        ))
    );
    assert!(
        decide(&prod, &dana, Some("team-a")).is_ok(),
        "reading stays"
    );
    // Both engines decide with one policy set (the one a reload replaces for both).
    assert_eq!(dev.version(), prod.version());
}

#[test]
fn with_several_clusters_listings_do_not_assume_one() {
    let text = r#"
        @id("dev-only")
        permit (principal, action == Action::"cluster-info", resource)
        when { resource == Cluster::"dev" };"#;
    let anyone = caller("anyone", "team-a", &[]);
    let one = engine(&[("p.cedar", text)]).unwrap_or_else(|e| panic!("{e}"));
    // Fronting one cluster, `local`: a permit for dev alone can never apply.
    assert!(!one.listed(&anyone).possible("cluster-info"));
    assert!(one.refuse_unlisted(&anyone, "cluster-info").is_err());
    let several = engine(&[("p.cedar", text)]).unwrap_or_else(|e| panic!("{e}"));
    let dev = several.for_cluster("dev");
    assert!(dev.listed(&anyone).possible("cluster-info"));
    assert!(several.listed(&anyone).possible("cluster-info"));
    assert!(
        ask(
            &dev,
            &anyone,
            Call {
                action: "cluster-info",
                scope: Scope::One(Target::Cluster),
                arguments: json!({}),
            }
        )
        .is_ok()
    );
}

#[test]
fn all_or_nothing_and_visible_scopes() {
    let engine = shipped();
    let alice = caller("alice", "team-a", &["team-a-devs"]);
    let apply = |targets: Vec<Target>| Call {
        action: "kubectl_apply",
        scope: Scope::All(targets),
        arguments: json!({"manifest": "..."}),
    };
    let both = ask(
        &engine,
        &alice,
        apply(vec![pod("team-a", "a"), pod("team-a-2", "b")]),
    );
    assert_eq!(both.map(|p| p.permit().allowed().len()).ok(), Some(2));
    let one_foreign = ask(
        &engine,
        &alice,
        apply(vec![pod("team-a", "a"), pod("team-b", "b")]),
    );
    assert_eq!(
        one_foreign.err().map(|d| d.resource),
        Some(r#"Object::"local/team-b/Pod/b""#.to_owned()),
        "one refused object refuses the whole call"
    );
    let list = Call {
        action: "list-namespaces",
        scope: Scope::Visible(
            namespaces()
                .names()
                .into_iter()
                .map(Target::Namespace)
                .collect(),
        ),
        arguments: json!({}),
    };
    let visible = ask(&engine, &alice, list.clone()).map(|p| {
        p.permit()
            .allowed()
            .iter()
            .map(|a| a.resource.clone())
            .collect::<Vec<_>>()
    });
    assert_eq!(
        visible.ok(),
        Some(vec![
            r#"Namespace::"local/team-a""#.to_owned(),
            r#"Namespace::"local/team-a-2""#.to_owned()
        ])
    );
    let nobody = caller("nobody", "none", &[]);
    assert!(
        ask(&engine, &nobody, list).is_err(),
        "nothing visible: refused"
    );
}

#[test]
fn later_decisions_use_the_same_question_and_are_recorded() {
    let engine = engine(&[(
        "p.cedar",
        r#"
        @id("admins")
        permit (principal in Group::"admins", action in Action::"read", resource);
        @id("hide-kube-system")
        forbid (principal, action, resource is Namespace) when { resource.name == "kube-system" };
        "#,
    )])
    .unwrap_or_else(|e| panic!("{e}"));
    let carol = caller("carol", "platform", &["admins"]);
    let permitted = decide(&engine, &carol, None).unwrap_or_else(|d| panic!("{d}"));
    let permit = permitted.permit();
    assert!(
        permit
            .also(&engine, &Target::Namespace("team-a".into()), &namespaces())
            .is_ok()
    );
    let hidden = permit.also(
        &engine,
        &Target::Namespace("kube-system".into()),
        &namespaces(),
    );
    assert_eq!(
        hidden.err().map(|d| d.policies().to_vec()),
        Some(vec!["hide-kube-system".to_owned()])
    );
    let later = permit.later();
    assert_eq!(later.len(), 2);
    assert!(later[0].allowed && !later[1].allowed);
    assert_eq!(later[1].resource, r#"Namespace::"local/kube-system""#);
}

#[test]
fn reveal_secrets_is_never_granted_by_a_bare_action() {
    let engine = engine(&[(
        "p.cedar",
        r#"
        @id("admins-everything")
        permit (principal in Group::"admins", action in Action::"read", resource);
        @id("break-glass")
        permit (principal in Group::"break-glass", action == Action::"reveal-secrets", resource);
        "#,
    )])
    .unwrap_or_else(|e| panic!("{e}"));
    let carol = caller("carol", "platform", &["admins"]);
    assert!(
        engine
            .reveal_secrets(
                &carol,
                &Target::Namespace("team-a".into()),
                &facts(),
                &namespaces()
            )
            .is_err()
    );
    let dave = caller("dave", "platform", &["break-glass"]);
    let grant = engine.reveal_secrets(
        &dave,
        &Target::Namespace("team-a".into()),
        &facts(),
        &namespaces(),
    );
    assert_eq!(
        grant.map(|g| g.allowed().policies.clone()).ok(),
        Some(vec!["break-glass".to_owned()])
    );
}

#[test]
fn an_evaluation_error_refuses_even_where_cedar_would_allow() {
    // Cedar skips a policy that errors; here that would skip the forbid and allow the call.
    let engine = engine(&[(
        "p.cedar",
        r#"
        @id("allow-all")
        permit (principal, action, resource);
        @id("overflowing-forbid")
        forbid (principal, action, resource)
        when { 9223372036854775807 + (if principal.tenant == "team-a" then 1 else 0) < 0 };
        "#,
    )])
    .unwrap_or_else(|e| panic!("{e}"));
    let alice = caller("alice", "team-a", &[]);
    let denied = decide(&engine, &alice, Some("team-a")).err();
    let denied = denied.unwrap_or_else(|| panic!("an erroring forbid must refuse"));
    assert_eq!(denied.errors().len(), 1, "{denied}");
    assert!(
        denied.to_string().contains("could not be evaluated"),
        "{denied}"
    );
    let bob = caller("bob", "team-b", &[]);
    assert!(
        decide(&engine, &bob, Some("team-b")).is_ok(),
        "no error, no refusal"
    );
}

#[test]
fn context_arguments_request_facts_and_claims_are_typed() {
    let engine = engine(&[(
        "p.cedar",
        r#"
        @id("pods-from-documentation-net")
        permit (principal, action == Action::"list-resources", resource)
        when {
            context.arguments.resourceType == "pods" &&
            context.request.sourceIp.isInRange(ip("192.0.2.0/24")) &&
            context.request.time > datetime("2020-01-01") &&
            principal.hasTag("department") && principal.getTag("department") == "payments"
        };
        "#,
    )])
    .unwrap_or_else(|e| panic!("{e}"));
    let alice = caller("alice", "team-a", &[]);
    assert!(decide(&engine, &alice, Some("team-a")).is_ok());
    let secrets = ask(
        &engine,
        &alice,
        Call {
            action: "list-resources",
            scope: Scope::One(Target::Namespace("team-a".into())),
            arguments: json!({"resourceType": "secrets", "namespace": "team-a"}),
        },
    );
    assert!(secrets.is_err());
}

#[test]
fn policies_that_do_not_validate_stop_the_load() {
    let typo = engine(&[(
        "typo.cedar",
        r#"permit (principal, action, resource) when { principal.tennant == "x" };"#,
    )]);
    assert!(
        matches!(typo, Err(PolicyError::Validation(ref problems))
            if problems.iter().any(|p| p.message.contains("tennant")
                && p.source == "typo.cedar" && p.line == 1 && p.column > 1)),
        "{:?}",
        typo.err()
    );
    let unknown_action = engine(&[(
        "a.cedar",
        r#"permit (principal, action == Action::"drop-database", resource);"#,
    )]);
    assert!(matches!(unknown_action, Err(PolicyError::Validation(_))));
    let syntax = engine(&[("s.cedar", "permit (principal, action resource);")]);
    assert!(matches!(syntax, Err(PolicyError::Parse { .. })));
}

#[test]
fn policy_ids_come_from_annotations_or_file_positions_and_must_be_unique() {
    let engine = engine(&[(
        "team.cedar",
        r#"
        permit (principal, action == Action::"list-resources", resource == Namespace::"local/x");
        permit (principal, action == Action::"list-resources", resource == Namespace::"local/team-a");
        "#,
    )])
    .unwrap_or_else(|e| panic!("{e}"));
    let alice = caller("alice", "team-a", &[]);
    let permit = decide(&engine, &alice, Some("team-a")).ok();
    assert_eq!(
        permit.map(|p| p.permit().policies()),
        Some(vec!["team.cedar#1".to_owned()])
    );
    let twice = r#"@id("same") permit (principal, action, resource);"#;
    let duplicate = self::engine(&[("a.cedar", twice), ("b.cedar", twice)]);
    assert!(matches!(duplicate, Err(PolicyError::DuplicateId(ref id)) if id == "same"));
}

mod gate;
