//! Builds the Cedar entities of one request: the calling `User` with its `Group`s and `Tenant`,
//! the `Cluster`, and a target `Namespace` whose labels are its tags.

use std::str::FromStr;
use std::sync::LazyLock;

use cedar_policy::{Entity, EntityId, EntityTypeName, EntityUid, RestrictedExpression};
use serde_json::{Value, json};

use super::{NamespaceFacts, RequestFacts};
use crate::auth::Caller;

fn type_name(name: &str) -> EntityTypeName {
    // Only called with the constant names below, each a valid Cedar identifier.
    EntityTypeName::from_str(name).unwrap_or_else(|_| unreachable!("{name} is a Cedar type name"))
}

static USER: LazyLock<EntityTypeName> = LazyLock::new(|| type_name("User"));
static GROUP: LazyLock<EntityTypeName> = LazyLock::new(|| type_name("Group"));
static TENANT: LazyLock<EntityTypeName> = LazyLock::new(|| type_name("Tenant"));
static CLUSTER: LazyLock<EntityTypeName> = LazyLock::new(|| type_name("Cluster"));
static NAMESPACE: LazyLock<EntityTypeName> = LazyLock::new(|| type_name("Namespace"));
static ACTION: LazyLock<EntityTypeName> = LazyLock::new(|| type_name("Action"));

/// The uid `<ty>::"<id>"` for one of kubegate's entity types.
pub fn uid(ty: &str, id: &str) -> EntityUid {
    let ty = match ty {
        "User" => USER.clone(),
        "Group" => GROUP.clone(),
        "Tenant" => TENANT.clone(),
        "Cluster" => CLUSTER.clone(),
        "Namespace" => NAMESPACE.clone(),
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

/// The `Cluster` entity.
pub fn cluster(cluster: &EntityUid) -> Entity {
    Entity::new_no_attrs(cluster.clone(), Default::default())
}

/// Adds a `Namespace` entity (labels as tags; parents: the cluster and, if labelled, its tenant).
pub fn namespace(
    name: &str,
    facts: &NamespaceFacts,
    cluster: &EntityUid,
    out: &mut Vec<Entity>,
) -> Result<(), String> {
    let mut parents = vec![cluster.clone()];
    let mut attrs = Vec::new();
    if let Some(tenant) = &facts.tenant {
        let tenant_uid = uid("Tenant", tenant);
        parents.push(tenant_uid.clone());
        out.push(Entity::new_no_attrs(tenant_uid, Default::default()));
        attrs.push((
            "tenant".to_owned(),
            RestrictedExpression::new_string(tenant.clone()),
        ));
    }
    let tags = facts
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), RestrictedExpression::new_string(v.clone())));
    out.push(
        Entity::new_with_tags(uid("Namespace", name), attrs, parents, tags)
            .map_err(|e| format!("namespace: {e}"))?,
    );
    Ok(())
}

/// The context's `request` record, as JSON that the schema turns into typed Cedar values.
pub fn request_record(facts: &RequestFacts) -> Value {
    let mut record = json!({
        "transport": facts.transport,
        "sourceIp": facts.source_ip.to_string(),
        "protocolVersion": facts.protocol_version,
        // Cedar's datetime() takes milliseconds at most.
        "time": facts.time.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
    });
    if let Some(session) = &facts.session_id {
        record["sessionId"] = Value::from(session.as_str());
    }
    record
}
