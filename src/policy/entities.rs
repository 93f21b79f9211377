//! Builds the Cedar entities of one request: the calling `User` with its `Group`s and `Tenant`,
//! the `Cluster`, a target `Namespace` whose labels are its tags, and a target `Object` in it.

use std::net::IpAddr;
use std::num::NonZeroUsize;
use std::str::FromStr;
use std::sync::{LazyLock, Mutex};

use cedar_policy::{Context, Entity, EntityId, EntityTypeName, EntityUid, RestrictedExpression};
use lru::LruCache;
use serde_json::Value;

use super::{NamespaceDirectory, NamespaceFacts, ObjectRef, RequestFacts, Target};
use crate::auth::Caller;

/// A Cedar type name kubegate's schema declares.
pub fn type_name(name: &str) -> EntityTypeName {
    // Only called with the constant names below, each a valid Cedar identifier.
    EntityTypeName::from_str(name).unwrap_or_else(|_| unreachable!("{name} is a Cedar type name"))
}

static USER: LazyLock<EntityTypeName> = LazyLock::new(|| type_name("User"));
static GROUP: LazyLock<EntityTypeName> = LazyLock::new(|| type_name("Group"));
static TENANT: LazyLock<EntityTypeName> = LazyLock::new(|| type_name("Tenant"));
static CLUSTER: LazyLock<EntityTypeName> = LazyLock::new(|| type_name("Cluster"));
static NAMESPACE: LazyLock<EntityTypeName> = LazyLock::new(|| type_name("Namespace"));
static OBJECT: LazyLock<EntityTypeName> = LazyLock::new(|| type_name("Object"));
static ACTION: LazyLock<EntityTypeName> = LazyLock::new(|| type_name("Action"));

/// The uid `<ty>::"<id>"` for one of kubegate's entity types.
pub fn uid(ty: &str, id: &str) -> EntityUid {
    let ty = match ty {
        "User" => USER.clone(),
        "Group" => GROUP.clone(),
        "Tenant" => TENANT.clone(),
        "Cluster" => CLUSTER.clone(),
        "Namespace" => NAMESPACE.clone(),
        "Object" => OBJECT.clone(),
        "Action" => ACTION.clone(),
        other => type_name(other),
    };
    EntityUid::from_type_name_and_id(ty, EntityId::new(id))
}

/// Adds the caller's `User` entity, its groups and its tenant.
pub fn caller(caller: &Caller, principal: &EntityUid, out: &mut Vec<Entity>) -> Result<(), String> {
    let tenant = uid("Tenant", &caller.tenant);
    let groups: Vec<EntityUid> = caller.groups.iter().map(|g| uid("Group", g)).collect();
    let mut attrs = vec![(
        "tenant".to_owned(),
        RestrictedExpression::new_string(caller.tenant.clone()),
    )];
    if let Some(email) = &caller.email {
        attrs.push((
            "email".to_owned(),
            RestrictedExpression::new_string(email.clone()),
        ));
    }
    let tags = caller
        .claims
        .iter()
        .map(|(k, v)| (k.clone(), RestrictedExpression::new_string(v.clone())));
    out.push(
        Entity::new_with_tags(
            principal.clone(),
            attrs,
            groups.iter().cloned().chain([tenant.clone()]),
            tags,
        )
        .map_err(|e| format!("principal: {e}"))?,
    );
    out.extend(
        groups
            .into_iter()
            .map(|g| Entity::new_no_attrs(g, Default::default())),
    );
    out.push(Entity::new_no_attrs(tenant, Default::default()));
    Ok(())
}

/// The cluster a policy engine decides for: its name and the uids made from it, and the
/// `Namespace` entities made so far (remade when a namespace's facts change).
pub struct ClusterId {
    name: String,
    uid: EntityUid,
    entity: Entity,
    namespaces: Mutex<LruCache<String, (NamespaceFacts, Vec<Entity>)>>,
}

/// Namespace entities kept at most; beyond, the namespace used least recently is forgotten.
const MAX_REMEMBERED_NAMESPACES: NonZeroUsize = NonZeroUsize::new(50_000).expect("non-zero");

impl ClusterId {
    pub fn new(name: &str) -> ClusterId {
        let uid = uid("Cluster", name);
        // A string attribute cannot fail to evaluate; the fallback only keeps this total.
        let entity = Entity::new(
            uid.clone(),
            [("name".to_owned(), string(name))].into(),
            Default::default(),
        )
        .unwrap_or_else(|_| Entity::new_no_attrs(uid.clone(), Default::default()));
        ClusterId {
            name: name.to_owned(),
            uid,
            entity,
            namespaces: Mutex::new(LruCache::new(MAX_REMEMBERED_NAMESPACES)),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `Cluster::"<name>"`.
    pub fn uid_cluster(&self) -> &EntityUid {
        &self.uid
    }

    /// The Cedar uid of a target, qualified by this cluster's name.
    pub fn uid(&self, target: &Target) -> EntityUid {
        match target {
            Target::Cluster => self.uid.clone(),
            Target::Namespace(ns) => self.namespace_uid(ns),
            Target::Object(object) => uid("Object", &self.object_id(object)),
        }
    }

    fn namespace_uid(&self, namespace: &str) -> EntityUid {
        uid("Namespace", &format!("{}/{namespace}", self.name))
    }

    /// `<cluster>/<namespace>/<Kind>/<name>`, or `<cluster>/<Kind>/<name>` for cluster-scoped kinds.
    fn object_id(&self, object: &ObjectRef) -> String {
        match &object.namespace {
            Some(ns) => format!("{}/{ns}/{}/{}", self.name, object.kind, object.name),
            None => format!("{}/{}/{}", self.name, object.kind, object.name),
        }
    }

    /// The `Cluster` entity (attribute `name`).
    pub fn entity(&self) -> Entity {
        self.entity.clone()
    }
}

/// Adds the entities of a target below the cluster: a `Namespace` (labels as tags; parents: the
/// cluster and, if labelled, its tenant) and, for an object, the `Object` in it.
pub fn target(
    cluster: &ClusterId,
    target: &Target,
    namespaces: &dyn NamespaceDirectory,
    out: &mut Vec<Entity>,
) -> Result<(), String> {
    match target {
        Target::Cluster => Ok(()),
        Target::Namespace(name) => {
            namespace(cluster, name, namespaces, out)?;
            Ok(())
        }
        Target::Object(object) => {
            let mut attrs = vec![
                ("kind".to_owned(), string(&object.kind)),
                ("apiGroup".to_owned(), string(&object.api_group)),
                ("name".to_owned(), string(&object.name)),
                ("cluster".to_owned(), string(&cluster.name)),
            ];
            let parent = match &object.namespace {
                Some(ns) => {
                    attrs.push(("namespace".to_owned(), string(ns)));
                    if let Some(tenant) = namespace(cluster, ns, namespaces, out)? {
                        attrs.push(("tenant".to_owned(), string(&tenant)));
                    }
                    cluster.namespace_uid(ns)
                }
                None => cluster.uid.clone(),
            };
            out.push(
                Entity::new(
                    uid("Object", &cluster.object_id(object)),
                    attrs.into_iter().collect(),
                    [parent].into(),
                )
                .map_err(|e| format!("object: {e}"))?,
            );
            Ok(())
        }
    }
}

/// Adds a `Namespace` entity and its tenant's; returns the tenant. Entities made for the same
/// facts before are reused: making one costs more than the decision that reads it.
fn namespace(
    cluster: &ClusterId,
    name: &str,
    namespaces: &dyn NamespaceDirectory,
    out: &mut Vec<Entity>,
) -> Result<Option<String>, String> {
    if let Some(stale) = namespaces.stale() {
        return Err(stale);
    }
    let facts = namespaces.namespace(name).unwrap_or_default();
    let mut made = cluster.namespaces.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((known, entities)) = made.get(name)
        && *known == facts
    {
        out.extend(entities.iter().cloned());
        return Ok(facts.tenant);
    }
    let mut entities = Vec::with_capacity(2);
    make_namespace(cluster, name, &facts, &mut entities)?;
    out.extend(entities.iter().cloned());
    let tenant = facts.tenant.clone();
    made.put(name.to_owned(), (facts, entities));
    Ok(tenant)
}

fn make_namespace(
    cluster: &ClusterId,
    name: &str,
    facts: &NamespaceFacts,
    out: &mut Vec<Entity>,
) -> Result<(), String> {
    let mut parents = vec![cluster.uid.clone()];
    let mut attrs = vec![
        ("name".to_owned(), string(name)),
        ("cluster".to_owned(), string(&cluster.name)),
    ];
    if let Some(tenant) = &facts.tenant {
        let tenant_uid = uid("Tenant", tenant);
        parents.push(tenant_uid.clone());
        out.push(Entity::new_no_attrs(tenant_uid, Default::default()));
        attrs.push(("tenant".to_owned(), string(tenant)));
    }
    let tags = facts
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), RestrictedExpression::new_string(v.clone())));
    out.push(
        Entity::new_with_tags(cluster.namespace_uid(name), attrs, parents, tags)
            .map_err(|e| format!("namespace: {e}"))?,
    );
    Ok(())
}

fn string(value: &str) -> RestrictedExpression {
    RestrictedExpression::new_string(value.to_owned())
}

/// Cedar's extension values (`ip(..)`, `datetime(..)`) for the context, kept once made: making
/// one re-parses the extension's name with Cedar's full grammar, which costs more than a decision.
pub struct ExtensionValues {
    ips: Mutex<LruCache<IpAddr, RestrictedExpression>>,
    /// The `datetime` of the current second. `context.request.time` has second precision.
    second: Mutex<Option<(i64, RestrictedExpression)>>,
}

/// Source addresses remembered at most; beyond, the one seen least recently is forgotten.
const MAX_REMEMBERED_IPS: NonZeroUsize = NonZeroUsize::new(1024).expect("non-zero");

impl Default for ExtensionValues {
    fn default() -> ExtensionValues {
        ExtensionValues {
            ips: Mutex::new(LruCache::new(MAX_REMEMBERED_IPS)),
            second: Mutex::new(None),
        }
    }
}

impl ExtensionValues {
    fn ip(&self, ip: IpAddr) -> RestrictedExpression {
        let mut ips = self.ips.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(value) = ips.get(&ip) {
            return value.clone();
        }
        let value = RestrictedExpression::new_ip(ip.to_string());
        ips.put(ip, value.clone());
        value
    }

    fn time(&self, time: jiff::Timestamp) -> RestrictedExpression {
        let second = time.as_second();
        let mut current = self.second.lock().unwrap_or_else(|e| e.into_inner());
        match current.as_ref() {
            Some((at, value)) if *at == second => value.clone(),
            _ => {
                let value = RestrictedExpression::new_datetime(
                    time.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
                );
                *current = Some((second, value.clone()));
                value
            }
        }
    }
}

/// The request's context: `arguments` (already typed by the tool) and `request`.
pub fn context(
    arguments: Option<&Value>,
    facts: &RequestFacts,
    values: &ExtensionValues,
) -> Result<Context, String> {
    let mut request = vec![
        (
            "transport".to_owned(),
            RestrictedExpression::new_string(facts.transport.to_owned()),
        ),
        ("sourceIp".to_owned(), values.ip(facts.source_ip)),
        (
            "protocolVersion".to_owned(),
            RestrictedExpression::new_string(facts.protocol_version.clone()),
        ),
        ("time".to_owned(), values.time(facts.time)),
    ];
    if let Some(session) = &facts.session_id {
        request.push((
            "sessionId".to_owned(),
            RestrictedExpression::new_string(session.clone()),
        ));
    }
    let mut pairs = vec![(
        "request".to_owned(),
        RestrictedExpression::new_record(request).map_err(|e| format!("context: {e}"))?,
    )];
    if let Some(arguments) = arguments {
        pairs.push(("arguments".to_owned(), restricted(arguments)?));
    }
    Context::from_pairs(pairs).map_err(|e| format!("context: {e}"))
}

/// A JSON value as a Cedar value (strings, booleans, integers, lists as sets, objects as records).
fn restricted(value: &Value) -> Result<RestrictedExpression, String> {
    Ok(match value {
        Value::String(s) => RestrictedExpression::new_string(s.clone()),
        Value::Bool(b) => RestrictedExpression::new_bool(*b),
        Value::Number(n) => RestrictedExpression::new_long(
            n.as_i64()
                .ok_or_else(|| format!("argument {n} is not a whole number"))?,
        ),
        Value::Array(items) => RestrictedExpression::new_set(
            items
                .iter()
                .map(restricted)
                .collect::<Result<Vec<_>, _>>()?,
        ),
        Value::Object(fields) => RestrictedExpression::new_record(
            fields
                .iter()
                .map(|(k, v)| Ok((k.clone(), restricted(v)?)))
                .collect::<Result<Vec<_>, String>>()?,
        )
        .map_err(|e| format!("arguments: {e}"))?,
        Value::Null => return Err("arguments hold a null".to_owned()),
    })
}
