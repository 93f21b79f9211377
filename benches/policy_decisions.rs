//! Measures one policy decision as the number of tenants grows: kubegate's `authorize` (which
//! evaluates only the policies that can apply to the caller) at 10, 1,000 and 10,000 tenants
//! linked from the shipped `tenants.cedar` templates, and with 100 hand-written policies;
//! against, in the same run, Cedar evaluating the whole set for the same request (the baseline
//! a decision would cost without slicing).
//!
//! `cargo bench --bench policy_decisions`. Callers rotate over 100 tenants (so slices come from
//! kubegate's per-caller cache, as they do for returning callers); the first decision of a
//! caller, which cuts their slice, is measured on its own.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use cedar_policy::{
    Authorizer, Context, Entities, Entity, EntityUid, PolicySet, Request, RestrictedExpression,
};
use kubegate::auth::Caller;
use kubegate::policy::{
    Decidable, NamespaceDirectory, NamespaceFacts, ObjectRef, PolicyEngine, PolicySources,
    RequestFacts, Scope, Source, Target, TenantLinks,
};
use serde_json::{Value, json};

const TENANT_LABEL: &str = "kubegate.io/tenant";

/// One namespace per tenant, `ns-<i>` labelled `team-<i>`.
struct Namespaces;

impl NamespaceDirectory for Namespaces {
    fn namespace(&self, name: &str) -> Option<NamespaceFacts> {
        let tenant = name.strip_prefix("ns-").map(|i| format!("team-{i}"))?;
        Some(NamespaceFacts {
            labels: BTreeMap::from([(TENANT_LABEL.to_owned(), tenant.clone())]),
            tenant: Some(tenant),
        })
    }
    fn names(&self) -> Vec<String> {
        Vec::new()
    }
}

/// `get-resource` on one pod of a tenant's namespace.
struct GetPod {
    namespace: String,
}

impl Decidable for GetPod {
    fn action(&self) -> &'static str {
        "get-resource"
    }
    fn scope(&self, _: &dyn NamespaceDirectory) -> Scope {
        Scope::One(Target::Object(ObjectRef {
            api_group: String::new(),
            kind: "Pod".into(),
            namespace: Some(self.namespace.clone()),
            name: "web".into(),
        }))
    }
    fn cedar_arguments(&self) -> Value {
        json!({"resourceType": "pods", "name": "web", "namespace": self.namespace})
    }
}

fn caller(i: usize) -> Arc<Caller> {
    Arc::new(Caller {
        username: format!("user-{i}"),
        groups: vec![format!("team-{i}-devs")],
        tenant: format!("team-{i}"),
        email: None,
        claims: BTreeMap::new(),
        ..Default::default()
    })
}

fn facts() -> RequestFacts {
    RequestFacts {
        transport: "streamable-http",
        source_ip: IpAddr::from([10, 20, 0, 7]),
        protocol_version: "2025-11-25".into(),
        session_id: None,
        time: jiff::Timestamp::now(),
    }
}

fn shipped(name: &str) -> Result<Source> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("policies")
        .join(name);
    Ok(Source {
        name: name.to_owned(),
        text: std::fs::read_to_string(path)?,
    })
}

/// The tenant templates linked for `tenants` tenants, with platform administrators and the
/// non-destructive set.
fn linked(tenants: usize) -> Result<PolicySources> {
    let names: Vec<String> = (0..tenants).map(|i| format!("team-{i}")).collect();
    Ok(PolicySources {
        inline: vec![shipped("tenants.cedar")?, shipped("platform-admins.cedar")?],
        non_destructive: true,
        links: ["tenant-read", "tenant-write"]
            .into_iter()
            .map(|template| TenantLinks {
                template: template.into(),
                tenants: names.clone(),
            })
            .collect(),
        ..PolicySources::default()
    })
}

/// 100 hand-written policies: a read permit and a write permit per tenant group for 40
/// tenants, and 20 forbids with conditions on every call.
fn hand_written() -> PolicySources {
    let mut text = String::new();
    for i in 0..40 {
        text.push_str(&format!(
            "@id(\"read-{i}\") permit (principal in Group::\"team-{i}-devs\", action in Action::\"read\", resource) \
             when {{ resource has tenant && resource.tenant == \"team-{i}\" }};\n\
             @id(\"write-{i}\") permit (principal in Group::\"team-{i}-devs\", action in Action::\"write\", resource is Object) \
             when {{ resource has tenant && resource.tenant == \"team-{i}\" }};\n"
        ));
    }
    for i in 0..20 {
        text.push_str(&format!(
            "@id(\"guard-{i}\") forbid (principal, action, resource) \
             when {{ resource has namespace && resource.namespace == \"frozen-{i}\" }};\n"
        ));
    }
    PolicySources {
        inline: vec![Source {
            name: "hand-written.cedar".into(),
            text,
        }],
        ..PolicySources::default()
    }
}

fn main() -> Result<()> {
    // `cargo bench --bench policy_decisions -- profile`: only kubegate's decisions at 1,000
    // tenants, for a profiler to watch.
    if std::env::args().any(|a| a == "profile") {
        let engine = PolicyEngine::load(linked(1_000)?, "local")?;
        for _ in 0..5 {
            measure("kubegate, 1000 tenants", &engine, 100);
        }
        return Ok(());
    }
    println!(
        "{:<40} {:>10} {:>10}",
        "decision (get-resource)", "p50", "p99"
    );
    for tenants in [10, 1_000, 10_000] {
        let engine = PolicyEngine::load(linked(tenants)?, "local")?;
        let label = format!("{tenants} tenants ({} policies)", engine.len());
        measure(&format!("kubegate, {label}"), &engine, tenants.min(100));
        first_decisions(
            &format!("  first call of a caller, {tenants} tenants"),
            tenants,
        );
        baseline(
            &format!("  baseline: Cedar on the whole set, {tenants}"),
            tenants,
        )?;
    }
    let engine = PolicyEngine::load(hand_written(), "local")?;
    measure(
        &format!("kubegate, 100 hand-written ({} policies)", engine.len()),
        &engine,
        40,
    );
    Ok(())
}

/// Decisions for callers rotating over `callers` tenants, each on their own namespace.
fn measure(name: &str, engine: &PolicyEngine, callers: usize) {
    let who: Vec<Arc<Caller>> = (0..callers).map(caller).collect();
    let calls: Vec<String> = (0..callers).map(|i| format!("ns-{i}")).collect();
    let facts = facts();
    let mut n = 0;
    let times = run(|| {
        let i = n % callers;
        n += 1;
        let call = GetPod {
            namespace: calls[i].clone(),
        };
        let decided = engine.authorize(&who[i], call, &facts, &Namespaces);
        assert!(
            decided.is_ok(),
            "{name}: every caller may read in their tenant"
        );
        black_box(decided.is_ok());
    });
    report(name, &times);
}

/// The first decision of each of 2,000 new callers (their slice is cut then).
fn first_decisions(name: &str, tenants: usize) {
    let Ok(sources) = linked(tenants) else {
        return;
    };
    let Ok(engine) = PolicyEngine::load(sources, "local") else {
        return;
    };
    let facts = facts();
    let mut times = Vec::new();
    for i in 0..2_000.min(tenants * 4) {
        let who = Arc::new(Caller {
            username: format!("new-{i}"),
            ..(*caller(i % tenants)).clone()
        });
        let call = GetPod {
            namespace: format!("ns-{}", i % tenants),
        };
        let t = Instant::now();
        black_box(engine.authorize(&who, call, &facts, &Namespaces).is_ok());
        times.push(t.elapsed());
    }
    report(name, &times);
}

/// Cedar evaluating every policy of the same set for the same kind of request.
fn baseline(name: &str, tenants: usize) -> Result<()> {
    let template = shipped("tenants.cedar")?.text;
    let mut set = PolicySet::from_str(&format!(
        "{template}\n{}\n{}",
        shipped("platform-admins.cedar")?.text,
        kubegate::policy::NON_DESTRUCTIVE_POLICIES
    ))?;
    // The parser names templates by position; find each by its @id.
    let templates: Vec<(String, cedar_policy::PolicyId)> = set
        .templates()
        .filter_map(|t| Some((t.annotation("id")?.to_owned(), t.id().clone())))
        .collect();
    for i in 0..tenants {
        let tenant = EntityUid::from_str(&format!("Tenant::\"team-{i}\""))?;
        for (name, id) in &templates {
            let values = [
                (cedar_policy::SlotId::principal(), tenant.clone()),
                (cedar_policy::SlotId::resource(), tenant.clone()),
            ]
            .into();
            set.link(
                id.clone(),
                cedar_policy::PolicyId::new(format!("{name}/team-{i}")),
                values,
            )?;
        }
    }
    let callers = tenants.min(100);
    let requests: Vec<(Request, Entities)> = (0..callers).map(request).collect::<Result<_>>()?;
    let authorizer = Authorizer::new();
    let mut n = 0;
    let times = run(|| {
        let (request, entities) = &requests[n % callers];
        n += 1;
        black_box(authorizer.is_authorized(request, &set, entities).decision());
    });
    report(name, &times);
    Ok(())
}

/// The request and entities kubegate would build for `user-<i>` reading a pod in `ns-<i>`.
fn request(i: usize) -> Result<(Request, Entities)> {
    let uid = |text: String| EntityUid::from_str(&text);
    let user = uid(format!("User::\"user-{i}\""))?;
    let group = uid(format!("Group::\"team-{i}-devs\""))?;
    let tenant = uid(format!("Tenant::\"team-{i}\""))?;
    let cluster = uid("Cluster::\"local\"".into())?;
    let namespace = uid(format!("Namespace::\"local/ns-{i}\""))?;
    let object = uid(format!("Object::\"local/ns-{i}/Pod/web\""))?;
    let string = |s: &str| RestrictedExpression::new_string(s.to_owned());
    let entities = vec![
        Entity::new(
            user.clone(),
            [("tenant".to_owned(), string(&format!("team-{i}")))].into(),
            [group.clone(), tenant.clone()].into(),
        )?,
        Entity::new_no_attrs(group, Default::default()),
        Entity::new_no_attrs(tenant.clone(), Default::default()),
        Entity::new(
            cluster.clone(),
            [("name".to_owned(), string("local"))].into(),
            Default::default(),
        )?,
        Entity::new(
            namespace.clone(),
            [
                ("name".to_owned(), string(&format!("ns-{i}"))),
                ("cluster".to_owned(), string("local")),
                ("tenant".to_owned(), string(&format!("team-{i}"))),
            ]
            .into(),
            [cluster, tenant].into(),
        )?,
        Entity::new(
            object.clone(),
            [
                ("kind".to_owned(), string("Pod")),
                ("apiGroup".to_owned(), string("")),
                ("name".to_owned(), string("web")),
                ("namespace".to_owned(), string(&format!("ns-{i}"))),
                ("cluster".to_owned(), string("local")),
                ("tenant".to_owned(), string(&format!("team-{i}"))),
            ]
            .into(),
            [namespace].into(),
        )?,
    ];
    let read = uid("Action::\"read\"".into())?;
    let action = Entity::new_no_attrs(
        uid("Action::\"get-resource\"".into())?,
        [read.clone()].into(),
    );
    let mut all = entities;
    all.push(action);
    all.push(Entity::new_no_attrs(read, Default::default()));
    let context = Context::from_pairs([
        (
            "arguments".to_owned(),
            RestrictedExpression::new_record([
                ("resourceType".to_owned(), string("pods")),
                ("name".to_owned(), string("web")),
                ("namespace".to_owned(), string(&format!("ns-{i}"))),
            ])?,
        ),
        (
            "request".to_owned(),
            RestrictedExpression::new_record([
                ("transport".to_owned(), string("streamable-http")),
                (
                    "sourceIp".to_owned(),
                    RestrictedExpression::new_ip("10.20.0.7"),
                ),
                ("protocolVersion".to_owned(), string("2025-11-25")),
                (
                    "time".to_owned(),
                    RestrictedExpression::new_datetime("2026-12-01T10:00:00Z"),
                ),
            ])?,
        ),
    ])?;
    let request = Request::new(
        user,
        uid("Action::\"get-resource\"".into())?,
        object,
        context,
        None,
    )?;
    Ok((request, Entities::from_entities(all, None)?))
}

/// Runs `f` after a warm-up for about a second (at least 200 times), and returns each time.
fn run(mut f: impl FnMut()) -> Vec<Duration> {
    for _ in 0..200 {
        f();
    }
    let mut times = Vec::new();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(1) || times.len() < 200 {
        let t = Instant::now();
        f();
        times.push(t.elapsed());
    }
    times
}

fn report(name: &str, times: &[Duration]) {
    let mut times = times.to_vec();
    times.sort_unstable();
    let at = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
    println!(
        "{name:<40} {:>8.1}µs {:>8.1}µs",
        at(0.5).as_secs_f64() * 1e6,
        at(0.99).as_secs_f64() * 1e6
    );
}
