//! Works out which actions a caller could ever be permitted, so that `tools/list`,
//! `resources/templates/list` and `prompts/list` show each caller only what some call of theirs
//! could be allowed.
//!
//! # How
//! Cedar's type-aware partial evaluation (TPE) decides each action with the caller known and
//! the rest unknown: the resource (for namespaces and objects; for the cluster too when
//! kubegate fronts several, else the one cluster is known) and the whole context (arguments
//! and request facts). If TPE denies outright, no choice of
//! resource, arguments, source address or time can be permitted: the action is never listed,
//! and a call of it is refused before its arguments are read. Anything TPE cannot settle is
//! listed; the real decision of each call still decides it. So a listing never hides what a
//! call could do, and what it hides no call can do.

use std::collections::HashMap;

use cedar_policy::{
    Context, Decision, Entities, EntityUid, PartialEntities, PartialEntityUid, PartialRequest,
    PolicySet, Schema,
};

use super::ResourceType;
use super::entities::{self, ClusterId};

/// What partial evaluation found for one action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reachable {
    /// Some call could be permitted.
    Possibly,
    /// No call can be: denied whatever the resource and context. The forbids that always
    /// hold, if that is why (else no permit can ever apply).
    Never { forbids: Vec<String> },
}

/// Per action (by name) and resource type, what a caller could be permitted.
#[derive(Debug, Clone, Default)]
pub struct Listed {
    found: HashMap<(String, ResourceType), Reachable>,
}

impl Listed {
    /// Whether some call of `action`, on any resource type, could be permitted (actions not
    /// looked at: no).
    pub fn possible(&self, action: &str) -> bool {
        self.found
            .iter()
            .any(|((a, _), r)| a == action && *r == Reachable::Possibly)
    }

    /// Whether some call of `action` on a resource of type `ty` could be permitted.
    pub fn possible_on(&self, action: &str, ty: ResourceType) -> bool {
        self.found.get(&(action.to_owned(), ty)) == Some(&Reachable::Possibly)
    }

    /// The forbids that keep every call of `action` from being permitted (empty when no permit
    /// could apply, or when some call could be permitted).
    pub fn forbids(&self, action: &str) -> Vec<String> {
        let mut forbids: Vec<String> = self
            .found
            .iter()
            .filter(|((a, _), _)| a == action)
            .flat_map(|(_, r)| match r {
                Reachable::Never { forbids } => forbids.clone(),
                Reachable::Possibly => Vec::new(),
            })
            .collect();
        forbids.sort();
        forbids.dedup();
        forbids
    }
}

/// Everything one listing needs: the schema, the caller's entities and the cluster.
pub struct Subject<'a> {
    pub schema: &'a Schema,
    pub principal: &'a EntityUid,
    /// The caller's `User`, `Group`s and `Tenant`, and the `Cluster`.
    pub entities: Entities,
    /// The one cluster kubegate fronts; `None` when it fronts several (then a cluster-scoped
    /// call's resource is unknown too, and a policy naming one cluster leaves its action listed).
    pub cluster: Option<&'a ClusterId>,
}

/// Decides every `(action, resource types)` for the subject against `set`.
pub fn list(set: &PolicySet, subject: Subject<'_>, actions: &[(&str, &[ResourceType])]) -> Listed {
    let partial = match PartialEntities::from_concrete(subject.entities.clone(), subject.schema) {
        Ok(partial) => partial,
        Err(error) => {
            // Cannot happen for entities built from the schema's own types; list everything
            // (the real decisions still decide every call).
            tracing::warn!(%error, "cannot evaluate listings partially; listing every action");
            return Listed {
                found: actions
                    .iter()
                    .flat_map(|(a, types)| types.iter().map(move |t| ((*a).to_owned(), *t)))
                    .map(|key| (key, Reachable::Possibly))
                    .collect(),
            };
        }
    };
    let found = actions
        .iter()
        .flat_map(|(action, types)| types.iter().map(move |ty| (*action, *ty)))
        .map(|(action, ty)| {
            let found = reach(set, &subject, &partial, action, ty, None);
            ((action.to_owned(), ty), found)
        })
        .collect();
    Listed { found }
}

/// Whether some call of `action` on a resource of type `ty` could be permitted with this exact
/// context (the resource still unknown): for lists whose entries fix the arguments, such as
/// `resources/list`.
pub fn possible_with(
    set: &PolicySet,
    subject: Subject<'_>,
    action: &str,
    ty: ResourceType,
    context: Context,
) -> bool {
    match PartialEntities::from_concrete(subject.entities.clone(), subject.schema) {
        Ok(partial) => {
            reach(set, &subject, &partial, action, ty, Some(context)) == Reachable::Possibly
        }
        Err(_) => true,
    }
}

fn reach(
    set: &PolicySet,
    subject: &Subject<'_>,
    partial: &PartialEntities,
    action: &str,
    ty: ResourceType,
    context: Option<Context>,
) -> Reachable {
    let resource = match (ty, subject.cluster) {
        (ResourceType::Cluster, Some(cluster)) => {
            PartialEntityUid::from_concrete(cluster.uid_cluster().clone())
        }
        (other, _) => PartialEntityUid::new(entities::type_name(other.cedar_name()), None),
    };
    let request = PartialRequest::new(
        PartialEntityUid::from_concrete(subject.principal.clone()),
        entities::uid("Action", action),
        resource,
        context,
        subject.schema,
    );
    let request = match request {
        Ok(request) => request,
        Err(error) => {
            tracing::debug!(%error, action, "no partial request; listing the action");
            return Reachable::Possibly;
        }
    };
    match set.tpe(&request, partial, subject.schema) {
        Ok(response) if response.decision() == Some(Decision::Deny) => {
            let mut forbids: Vec<String> =
                response.true_forbids().map(|id| id.to_string()).collect();
            forbids.sort();
            Reachable::Never { forbids }
        }
        Ok(_) => Reachable::Possibly,
        Err(error) => {
            tracing::debug!(%error, action, "partial evaluation failed; listing the action");
            Reachable::Possibly
        }
    }
}
