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
            "platform-admins.cedar",
            include_str!("../../policies/platform-admins.cedar"),
        ),
        ("non-destructive.cedar", NON_DESTRUCTIVE_POLICIES),
    ])
    .unwrap_or_else(|e| panic!("shipped policies must load: {e}"))
}

fn list_pods(ns: Option<&str>) -> (Target, serde_json::Value) {
    match ns {
        Some(ns) => (
            Target::Namespace(ns.to_owned()),
            json!({"resourceType": "pods", "namespace": ns}),
        ),
        None => (Target::Cluster, json!({"resourceType": "pods"})),
    }
}

fn decide(engine: &PolicyEngine, who: &Arc<Caller>, ns: Option<&str>) -> Result<Permit, Denied> {
    let (target, args) = list_pods(ns);
    engine.authorize(
        who,
        "list-resources",
        &target,
        Some(&args),
        &facts(),
        &namespaces(),
    )
}

#[test]
fn the_committed_schema_is_the_generated_one() {
    let committed = include_str!("../../policies/kubegate.cedarschema");
    assert_eq!(
        committed,
        schema::render(),
        "policies/kubegate.cedarschema is stale: run `kubegate schema --write policies/kubegate.cedarschema`"
    );
}

#[test]
fn tenant_members_read_their_own_namespaces_only() {
    let engine = shipped();
    let alice = caller("alice", "team-a", &["team-a-devs"]);
    let permit = decide(&engine, &alice, Some("team-a"))
        .unwrap_or_else(|d| panic!("alice in team-a must be permitted: {d}"));
    assert_eq!(permit.policies(), ["tenant-read-own-namespaces"]);
    assert_eq!(
        permit.reasons(),
        ["a tenant's members may read in their tenant's namespaces"]
    );
    assert_eq!(permit.caller().username, "alice");
    assert_eq!(permit.resource(), r#"Namespace::"team-a""#);

    let denied = decide(&engine, &alice, Some("team-b")).err();
    let denied = denied.unwrap_or_else(|| panic!("alice must not read team-b"));
    assert_eq!(denied.cause, Refusal::NotPermitted);
    assert_eq!(
        denied.to_string(),
        r#"kubegate refused `list-resources` on Namespace::"team-b" for User::"alice": no policy permits it"#
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
        permit.as_ref().map(|p| p.policies().to_vec()),
        Some(vec!["platform-admins-read-all".to_owned()])
    );
    assert!(decide(&engine, &carol, Some("team-b")).is_ok());
    // Reading is not revealing: no shipped policy grants reveal-secrets.
    let reveal = engine.authorize(
        &carol,
        "reveal-secrets",
        &Target::Cluster,
        None,
        &facts(),
        &namespaces(),
    );
    assert!(reveal.is_err());
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
        r#"kubegate refused `list-resources` on Namespace::"team-b" for User::"bob": forbidden by policy no-prod (production is off limits)"#
    );
}

#[test]
fn the_non_destructive_set_forbids_the_destructive_group() {
    // Until destructive tools exist, check the policy text is what the seed promises.
    assert!(
        NON_DESTRUCTIVE_POLICIES
            .contains(r#"forbid (principal, action in Action::"destructive", resource);"#)
    );
    assert!(NON_DESTRUCTIVE_POLICIES.contains(r#"@id("non-destructive")"#));
    let engine = shipped();
    assert_eq!(engine.len(), 3);
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
    let secrets = engine.authorize(
        &alice,
        "list-resources",
        &Target::Namespace("team-a".into()),
        Some(&json!({"resourceType": "secrets", "namespace": "team-a"})),
        &facts(),
        &namespaces(),
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
        matches!(typo, Err(PolicyError::Validation(ref m)) if m.contains("tennant")),
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
        permit (principal, action == Action::"list-resources", resource == Namespace::"x");
        permit (principal, action == Action::"list-resources", resource == Namespace::"team-a");
        "#,
    )])
    .unwrap_or_else(|e| panic!("{e}"));
    let alice = caller("alice", "team-a", &[]);
    let permit = decide(&engine, &alice, Some("team-a")).ok();
    assert_eq!(
        permit.map(|p| p.policies().to_vec()),
        Some(vec!["team.cedar#1".to_owned()])
    );
    let twice = r#"@id("same") permit (principal, action, resource);"#;
    let duplicate = self::engine(&[("a.cedar", twice), ("b.cedar", twice)]);
    assert!(matches!(duplicate, Err(PolicyError::DuplicateId(ref id)) if id == "same"));
}
