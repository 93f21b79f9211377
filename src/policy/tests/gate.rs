//! The gate's guarantees for security teams: slices decide as the whole set, lists show only
//! what could be permitted, namespace forbids hold for their objects, shadow sets are recorded
//! and never enforced, stale namespace facts refuse, reloads keep the last good set, and every
//! shipped policy case holds.

use std::collections::HashSet;
use std::path::Path;

use cedar_policy::Authorizer;

use super::*;

fn tenants_template() -> &'static str {
    include_str!("../../../policies/tenants.cedar")
}

/// The shipped tenant templates linked for `n` tenants (`team-0` … and `team-a`, `team-b`), with
/// platform administrators, the cluster-info permits and the non-destructive set.
fn at_scale(n: usize) -> PolicyEngine {
    let mut tenants: Vec<String> = (0..n).map(|i| format!("team-{i}")).collect();
    tenants.extend(["team-a".to_owned(), "team-b".to_owned()]);
    let sources = PolicySources {
        inline: vec![
            Source {
                name: "tenants.cedar".into(),
                text: tenants_template().into(),
            },
            Source {
                name: "platform-admins.cedar".into(),
                text: include_str!("../../../policies/platform-admins.cedar").into(),
            },
        ],
        non_destructive: true,
        links: vec![
            TenantLinks {
                template: "tenant-read".into(),
                tenants: tenants.clone(),
            },
            TenantLinks {
                template: "tenant-write".into(),
                tenants,
            },
        ],
        ..PolicySources::default()
    };
    PolicyEngine::load(sources, "local").unwrap_or_else(|e| panic!("{e}"))
}

fn get_pod(ns: &str) -> Call {
    Call {
        action: "get-resource",
        scope: Scope::One(pod(ns, "web")),
        arguments: json!({"resourceType": "pods", "name": "web", "namespace": ns}),
    }
}

#[test]
fn a_slice_decides_as_the_whole_set_would() {
    let engine = at_scale(1_000);
    let loaded = engine.current();
    assert_eq!(loaded.enforced.len(), 2 * 1_002 + 2);
    let whole = &loaded.enforced.set;
    let callers = [
        caller("alice", "team-a", &["team-a-devs"]),
        caller("zed", "team-7", &[]),
        caller("carol", "platform", &["platform-admins"]),
        caller("nobody", "none", &[]),
    ];
    let calls = [
        list_pods(Some("team-a")),
        list_pods(Some("team-b")),
        list_pods(None),
        get_pod("team-a"),
        get_pod("team-b"),
        delete_pod("team-a"),
        Call {
            action: "kubectl_scale",
            scope: Scope::One(pod("team-a", "web")),
            arguments: json!({"name": "web", "namespace": "team-a", "replicas": 2}),
        },
    ];
    let namespaces = namespaces();
    for who in &callers {
        for call in &calls {
            let sliced = engine
                .authorize(who, call.clone(), &facts(), &namespaces)
                .is_ok();
            let question = engine
                .ask(who, call.action, Some(&call.arguments), &facts())
                .unwrap_or_else(|e| panic!("{e}"));
            let target = match &call.scope {
                Scope::One(target) => target.clone(),
                _ => unreachable!("these calls have one target"),
            };
            let entities = engine
                .entities(&question, &target, &namespaces)
                .unwrap_or_else(|e| panic!("{e}"));
            let request = engine
                .request(&question, &engine.cluster.uid(&target))
                .unwrap_or_else(|e| panic!("{e}"));
            let full = Authorizer::new().is_authorized(&request, whole, &entities);
            assert_eq!(
                sliced,
                full.decision() == Decision::Allow,
                "{} {} on {target:?}",
                who.username,
                call.action
            );
            // The slice holds the caller's own links and the shared policies, not 2,000 links.
            assert!(
                question.slices.enforced.policies().count() <= 6,
                "{}'s slice holds {} policies",
                who.username,
                question.slices.enforced.policies().count()
            );
        }
    }
}

fn listed_tools(engine: &PolicyEngine, who: &Arc<Caller>) -> HashSet<String> {
    let listed = engine.listed(who);
    crate::tool::CATALOG
        .iter()
        .filter(|spec| listed.possible(spec.name))
        .map(|spec| spec.name.to_owned())
        .collect()
}

const DESTRUCTIVE: [&str; 6] = [
    "delete_pod",
    "delete_deployment",
    "delete_namespace",
    "delete_cronjob",
    "uninstall_helm_chart",
    "cleanup",
];

#[test]
fn lists_show_what_some_call_could_be_permitted_and_nothing_else() {
    let without = engine(&[
        (
            "tenant-isolation.cedar",
            include_str!("../../../policies/tenant-isolation.cedar"),
        ),
        (
            "tenant-edit.cedar",
            include_str!("../../../policies/tenant-edit.cedar"),
        ),
    ])
    .unwrap_or_else(|e| panic!("{e}"));
    let alice = caller("alice", "team-a", &["team-a-devs"]);
    let tools = listed_tools(&without, &alice);
    for expected in [
        "list-resources",
        "get-logs",
        "kubectl_apply",
        "delete_pod",
        "cleanup",
    ] {
        assert!(
            tools.contains(expected),
            "{expected} missing from {tools:?}"
        );
    }
    assert!(
        !tools.contains("delete_namespace"),
        "tenant-edit never permits deleting namespaces: {tools:?}"
    );

    // The non-destructive set takes the six destructive tools off every list, and a call of
    // one is refused naming the forbid.
    let with = shipped();
    let tools = listed_tools(&with, &alice);
    for destructive in DESTRUCTIVE {
        assert!(!tools.contains(destructive), "{destructive} listed");
        let refused = with
            .refuse_unlisted(&alice, destructive)
            .err()
            .unwrap_or_else(|| panic!("{destructive} must be refused"));
        assert_eq!(refused.policies(), ["non-destructive"]);
    }
    assert!(tools.contains("kubectl_apply") && tools.contains("list-resources"));
    assert!(with.refuse_unlisted(&alice, "get-logs").is_ok());

    // Tenant isolation could permit any caller reads (a namespace labelled with their tenant
    // may exist); with only the administrators' permit, someone outside their group sees
    // nothing at all.
    let admins_only = engine(&[(
        "platform-admins.cedar",
        include_str!("../../../policies/platform-admins.cedar"),
    )])
    .unwrap_or_else(|e| panic!("{e}"));
    let stranger = caller("stranger", "nowhere", &[]);
    assert_eq!(listed_tools(&admins_only, &stranger), HashSet::new());
    let listed = admins_only.listed(&stranger);
    assert!(!listed.possible_on("get-prompt", ResourceType::Namespace));
    assert!(!listed.possible_on("read-resource", ResourceType::Object));
    let carol = caller("carol", "platform", &["platform-admins"]);
    let tools = listed_tools(&admins_only, &carol);
    assert!(
        tools.contains("list-resources") && !tools.contains("kubectl_apply"),
        "{tools:?}"
    );
    assert!(
        admins_only
            .listed(&carol)
            .possible_on("get-prompt", ResourceType::Cluster)
    );
}

#[test]
fn what_depends_on_the_context_stays_listed() {
    // Whether delete_pod is permitted depends on the time of the call: it must stay listed.
    let engine = engine(&[(
        "p.cedar",
        r#"
        @id("admins") permit (principal in Group::"admins", action, resource);
        @id("hours") forbid (principal, action in Action::"destructive", resource)
        unless { context.request.time.toTime() < duration("18h") };
        "#,
    )])
    .unwrap_or_else(|e| panic!("{e}"));
    let admin = caller("root", "platform", &["admins"]);
    let tools = listed_tools(&engine, &admin);
    assert!(tools.contains("delete_pod"), "{tools:?}");
    assert!(engine.refuse_unlisted(&admin, "delete_pod").is_ok());
    // A resource whose read depends on its URI is listed by its URI: both of these are read
    // on the cluster, and only one is permitted.
    let everyone = super::engine(&[(
        "everyone.cedar",
        r#"@id("cluster-info-resource")
           permit (principal, action == Action::"read-resource", resource is Cluster)
           when { context.arguments.uri == "cluster-info" };"#,
    )])
    .unwrap_or_else(|e| panic!("{e}"));
    let bob = caller("bob", "nowhere", &[]);
    let could = |uri: &str| {
        everyone.could_permit(
            &bob,
            "read-resource",
            ResourceType::Cluster,
            &json!({ "uri": uri }),
            &facts(),
        )
    };
    assert!(could("cluster-info"));
    assert!(!could("active-filters"));
}

#[test]
fn a_permit_for_every_action_is_noted_and_never_reveals() {
    let engine = engine(&[(
        "admins.cedar",
        r#"@id("admins") permit (principal in Group::"admins", action, resource);"#,
    )])
    .unwrap_or_else(|e| panic!("{e}"));
    let notes = engine.notes();
    assert!(
        notes
            .iter()
            .any(|n| n.contains("`admins`") && n.contains("reveal-secrets")),
        "{notes:?}"
    );
    let admin = caller("root", "platform", &["admins"]);
    assert!(
        engine
            .reveal_secrets(
                &admin,
                &Target::Namespace("team-a".into()),
                &facts(),
                &namespaces()
            )
            .is_err()
    );
    assert!(ask(&engine, &admin, delete_pod("team-a")).is_ok());
}

#[test]
fn a_forbid_on_a_namespace_holds_for_its_objects_and_for_cluster_wide_calls() {
    let engine = engine(&[
        (
            "platform-admins.cedar",
            include_str!("../../../policies/platform-admins.cedar"),
        ),
        (
            "hide.cedar",
            r#"@id("hide-kube-system")
               forbid (principal, action, resource is Namespace)
               when { resource.name == "kube-system" };"#,
        ),
    ])
    .unwrap_or_else(|e| panic!("{e}"));
    let carol = caller("carol", "platform", &["platform-admins"]);
    // One object in kube-system: decided on its namespace too.
    let denied = ask(&engine, &carol, get_pod("kube-system"))
        .err()
        .unwrap_or_else(|| panic!("an object in kube-system must be refused"));
    assert_eq!(denied.policies(), ["hide-kube-system"]);
    assert!(ask(&engine, &carol, get_pod("team-a")).is_ok());
    // A forbid naming the action's group on the namespace holds too; one naming another action
    // does not.
    let by_group = super::engine(&[
        (
            "platform-admins.cedar",
            include_str!("../../../policies/platform-admins.cedar"),
        ),
        (
            "freeze.cedar",
            r#"@id("no-reads-in-team-b") forbid (principal, action in Action::"read", resource is Namespace)
               when { resource.name == "team-b" };
               @id("no-deletes-in-team-a") forbid (principal, action == Action::"delete_pod", resource is Namespace)
               when { resource.name == "team-a" };"#,
        ),
    ])
    .unwrap_or_else(|e| panic!("{e}"));
    let refused = ask(&by_group, &carol, get_pod("team-b")).err();
    assert_eq!(
        refused.map(|d| d.policies().to_vec()),
        Some(vec!["no-reads-in-team-b".to_owned()])
    );
    assert!(ask(&by_group, &carol, get_pod("team-a")).is_ok());
    // A cluster-wide list is permitted, and each item's namespace is decided as it is read.
    let permitted = decide(&engine, &carol, None).unwrap_or_else(|e| panic!("{e}"));
    let permit = permitted.permit();
    let ns = namespaces();
    assert!(
        permit
            .also(&engine, &Target::Namespace("kube-system".into()), &ns)
            .is_err()
    );
    assert!(
        permit
            .also(&engine, &Target::Namespace("team-b".into()), &ns)
            .is_ok()
    );
}

#[test]
fn a_shadow_set_is_decided_and_recorded_never_enforced() {
    let trial = Source {
        name: "trial.cedar".into(),
        text: r#"@id("trial-no-logs") @reason("trial: no logs")
                 forbid (principal, action == Action::"get-logs", resource);"#
            .into(),
    };
    let load = |with_enforced: bool| {
        let mut sources = PolicySources::inline(&[(
            "tenant-isolation.cedar".to_owned(),
            include_str!("../../../policies/tenant-isolation.cedar").to_owned(),
        )]);
        sources.shadow = Some(ShadowSources {
            paths: Vec::new(),
            inline: vec![trial.clone()],
            with_enforced,
        });
        PolicyEngine::load(sources, "local").unwrap_or_else(|e| panic!("{e}"))
    };
    let alice = caller("alice", "team-a", &["team-a-devs"]);
    let logs = Call {
        action: "get-logs",
        scope: Scope::One(pod("team-a", "web")),
        arguments: json!({"podName": "web", "namespace": "team-a"}),
    };
    // The enforced set alone decides: the call is permitted; the shadow would have refused.
    let added = load(true);
    let permitted = ask(&added, &alice, logs.clone()).unwrap_or_else(|e| panic!("{e}"));
    let shadow = permitted.permit().shadow().cloned().unwrap_or_default();
    assert!(!shadow.allowed);
    assert_eq!(shadow.policies, ["trial-no-logs"]);
    assert_eq!(shadow.reasons, ["trial: no logs"]);
    // Where they agree, the shadow says so with its own deciding policies.
    let pods = ask(&added, &alice, list_pods(Some("team-a"))).unwrap_or_else(|e| panic!("{e}"));
    let shadow = pods.permit().shadow().cloned().unwrap_or_default();
    assert!(shadow.allowed);
    assert_eq!(shadow.policies, ["tenant-read-own-namespaces"]);
    // A shadow set alone (a replacement) with no permit would refuse everything.
    let replaced = load(false);
    let permitted =
        ask(&replaced, &alice, list_pods(Some("team-a"))).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(permitted.permit().shadow().map(|s| s.allowed), Some(false));
    // A refusal carries the shadow's view too.
    let denied = ask(&added, &alice, list_pods(Some("team-b"))).err();
    assert_eq!(
        denied.and_then(|d| d.shadow).map(|s| s.allowed),
        Some(false)
    );
}

/// Namespaces whose watch has failed for too long.
struct Stale;

impl NamespaceDirectory for Stale {
    fn namespace(&self, name: &str) -> Option<NamespaceFacts> {
        namespaces().namespace(name)
    }
    fn names(&self) -> Vec<String> {
        namespaces().names()
    }
    fn stale(&self) -> Option<String> {
        Some("the namespace watch has failed for 90 s".into())
    }
}

#[test]
fn stale_namespace_facts_refuse_what_depends_on_them() {
    let engine = shipped();
    let alice = caller("alice", "team-a", &["team-a-devs"]);
    let denied = engine
        .authorize(&alice, list_pods(Some("team-a")), &facts(), &Stale)
        .err()
        .unwrap_or_else(|| panic!("stale facts must refuse"));
    assert!(
        denied.errors().iter().any(|e| e.contains("90 s")),
        "{denied}"
    );
    // A call on the cluster reads no namespace facts.
    let info = Call {
        action: "cluster-info",
        scope: Scope::One(Target::Cluster),
        arguments: json!({}),
    };
    assert!(engine.authorize(&alice, info, &facts(), &Stale).is_ok());
}

#[test]
fn a_reload_replaces_the_set_only_if_it_validates() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let file = dir.path().join("team.cedar");
    let write = |text: &str| std::fs::write(&file, text).unwrap_or_else(|e| panic!("{e}"));
    write(
        r#"@id("read-a") permit (principal, action == Action::"list-resources", resource == Namespace::"local/team-a");"#,
    );
    let engine = PolicyEngine::load(
        PolicySources {
            paths: vec![dir.path().to_owned()],
            ..PolicySources::default()
        },
        "local",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let alice = caller("alice", "team-a", &[]);
    let first = engine.version();
    assert!(decide(&engine, &alice, Some("team-a")).is_ok());
    assert_eq!(engine.reload().ok(), Some(Reloaded::Unchanged));

    // A bad edit is refused with the validator's message; the last good set stays.
    write(
        r#"@id("read-a") permit (principal, action == Action::"list-resources", resource) when { resource.tennant == "x" };"#,
    );
    let refused = engine.reload();
    assert!(
        matches!(&refused, Err(PolicyError::Validation(problems))
            if problems.iter().any(|p| p.message.contains("tennant") && p.line == 1)),
        "{refused:?}"
    );
    assert_eq!(engine.version(), first);
    assert!(decide(&engine, &alice, Some("team-a")).is_ok());

    // A good edit is in force for the next call.
    write(
        r#"@id("read-b") permit (principal, action == Action::"list-resources", resource == Namespace::"local/team-b");"#,
    );
    assert!(matches!(
        engine.reload(),
        Ok(Reloaded::Replaced { policies: 1, .. })
    ));
    assert_ne!(engine.version(), first);
    assert!(decide(&engine, &alice, Some("team-a")).is_err());
    assert!(decide(&engine, &alice, Some("team-b")).is_ok());
}

#[test]
fn every_shipped_policy_case_holds() {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies/tests");
    let files = cases::files_in(&folder).unwrap_or_else(|e| panic!("{e}"));
    assert!(files.len() >= 6, "{files:?}");
    let mut total = 0;
    for file in files {
        let outcomes = cases::run(&file).unwrap_or_else(|e| panic!("{}: {e:?}", file.display()));
        for outcome in outcomes {
            total += 1;
            assert!(
                outcome.failure.is_none(),
                "{}: {}: {}",
                file.display(),
                outcome.name,
                outcome.failure.unwrap_or_default()
            );
        }
    }
    assert!(total >= 50, "only {total} cases");
}

#[test]
fn a_case_that_does_not_hold_fails_and_says_why() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let policies = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
    let file = dir.path().join("wrong.yaml");
    let text = format!(
        r#"
policies: [{policies}/tenant-isolation.cedar]
namespaces:
  team-b: {{kubegate.io/tenant: team-b}}
cases:
  - name: alice reads team-b (she may not)
    as: {{user: alice, tenant: team-a}}
    tool: list-resources
    arguments: {{resourceType: pods, namespace: team-b}}
    expect: allow
  - name: two calls in one case
    as: {{user: alice, tenant: team-a}}
    tool: cluster-info
    resource: cluster-info
    expect: allow
  - name: arguments the tool refuses
    as: {{user: alice, tenant: team-a}}
    tool: get-logs
    arguments: {{podName: "Not A Name!"}}
    expect: deny
  - name: arguments the tool refuses, expected so
    as: {{user: alice, tenant: team-a}}
    tool: get-logs
    arguments: {{podName: "Not A Name!"}}
    expect: invalid
  - name: a refused call expected invalid
    as: {{user: alice, tenant: team-a}}
    tool: list-resources
    arguments: {{resourceType: pods, namespace: team-b}}
    expect: invalid
"#,
        policies = policies.display()
    );
    std::fs::write(&file, text).unwrap_or_else(|e| panic!("{e}"));
    let outcomes = cases::run(&file).unwrap_or_else(|e| panic!("{e:?}"));
    let failures: Vec<String> = outcomes.into_iter().filter_map(|o| o.failure).collect();
    assert_eq!(failures.len(), 4, "{failures:?}");
    assert!(
        failures[0].contains("expected allow, got deny"),
        "{}",
        failures[0]
    );
    assert!(failures[1].contains("exactly one of"), "{}", failures[1]);
    assert!(
        failures[2].contains("not valid") && failures[2].contains("podName"),
        "an invalid call does not pass as a refusal: {}",
        failures[2]
    );
    assert!(
        failures[3].contains("expected an invalid call"),
        "{}",
        failures[3]
    );
}

#[test]
fn a_forbid_linked_from_a_template_holds_on_an_objects_namespace() {
    let freeze = Source {
        name: "freeze.cedar".into(),
        text: r#"@id("freeze") @reason("this tenant's dev namespaces are frozen")
                 forbid (principal in ?principal, action, resource is Namespace)
                 when { resource.hasTag("env") && resource.getTag("env") == "dev" };"#
            .into(),
    };
    let mut sources = PolicySources::inline(&[(
        "tenant-isolation.cedar".to_owned(),
        include_str!("../../../policies/tenant-isolation.cedar").to_owned(),
    )]);
    sources.inline.push(freeze);
    sources.links = vec![TenantLinks {
        template: "freeze".into(),
        tenants: vec!["team-a".into()],
    }];
    let engine = PolicyEngine::load(sources, "local").unwrap_or_else(|e| panic!("{e}"));
    let alice = caller("alice", "team-a", &["team-a-devs"]);
    // team-a is labelled env=dev: an object in it is refused by the link, on its namespace.
    let refused = ask(&engine, &alice, get_pod("team-a")).err();
    assert_eq!(
        refused.map(|d| d.policies().to_vec()),
        Some(vec!["freeze/team-a".to_owned()])
    );
    // team-a-2 (env=prod) is not frozen.
    assert!(ask(&engine, &alice, get_pod("team-a-2")).is_ok());
}

#[test]
fn a_shadow_set_that_replaces_the_enforced_one_loads_without_its_templates() {
    let mut sources =
        PolicySources::inline(&[("tenants.cedar".to_owned(), tenants_template().to_owned())]);
    sources.links = vec![TenantLinks {
        template: "tenant-read".into(),
        tenants: vec!["team-a".into()],
    }];
    sources.shadow = Some(ShadowSources {
        paths: Vec::new(),
        inline: vec![Source {
            name: "trial.cedar".into(),
            text:
                r#"@id("trial-read-all") permit (principal, action in Action::"read", resource);"#
                    .into(),
        }],
        with_enforced: false,
    });
    let engine = PolicyEngine::load(sources, "local").unwrap_or_else(|e| panic!("{e}"));
    let bob = caller("bob", "team-b", &[]);
    // Enforced: team-b has no link; the shadow set would read everywhere.
    let denied = ask(&engine, &bob, list_pods(Some("team-b"))).err();
    assert_eq!(denied.and_then(|d| d.shadow).map(|s| s.allowed), Some(true));
    // A shadow file that does not validate leaves the enforced set loading, without a shadow.
    let mut broken =
        PolicySources::inline(&[("tenants.cedar".to_owned(), tenants_template().to_owned())]);
    broken.shadow = Some(ShadowSources {
        paths: Vec::new(),
        inline: vec![Source {
            name: "typo.cedar".into(),
            text: r#"permit (principal, action, resource) when { principal.tennant == "x" };"#
                .into(),
        }],
        with_enforced: true,
    });
    let engine = PolicyEngine::load(broken, "local").unwrap_or_else(|e| panic!("{e}"));
    assert!(!engine.has_shadow());
}
