//! Cuts a policy set down to the policies that can apply to one caller, so a decision reads a
//! few policies however many tenants are linked: Cedar evaluates every policy of the set it is
//! given, and a policy whose principal scope names an entity the caller is not in (another
//! tenant's link, another group's permit) can never apply to them. Slices are cached per caller,
//! the oldest dropped first when the cache is full.
//!
//! # Why a slice decides as the whole set does
//! Cedar's `principal in E` holds only if the principal is `E` or one of its ancestors is. A
//! caller's `User` has exactly its `Group`s and its `Tenant` as parents (the schema gives groups
//! and tenants no parents), so a policy whose principal scope names any other entity is false
//! for this caller before its conditions are read. Dropping it changes no decision.

use std::collections::{HashMap, HashSet};
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, OnceLock};

use cedar_policy::{
    ActionConstraint, Effect, Entity, EntityUid, Policy, PolicySet, ResourceConstraint,
};

use lru::LruCache;

use super::entities;
use super::listing::Listed;
use super::load::{Corpus, Entry};
use crate::auth::Caller;

/// How many callers' slices are kept; beyond, the caller seen least recently is forgotten.
const CACHED_CALLERS: NonZeroUsize = NonZeroUsize::new(4096).expect("non-zero");

/// The policy sets one caller's decisions read.
#[derive(Debug)]
pub struct Slices {
    /// For every action but `reveal-secrets`.
    pub enforced: PolicySet,
    /// For `reveal-secrets`: the forbids, and only the permits that name it.
    pub reveal: PolicySet,
    /// The enforced slice's forbids alone: what a call on an object is also decided by on
    /// its namespace.
    pub forbids: PolicySet,
    /// The shadow set's slices (calls, and `reveal-secrets`), if a shadow set is loaded.
    pub shadow: Option<(PolicySet, PolicySet)>,
    /// What this caller's lists show, worked out on first use.
    pub listed: OnceLock<Listed>,
    /// The caller's `User`, `Group`s and `Tenant`, made on first use.
    pub caller: OnceLock<Result<Vec<Entity>, String>>,
    /// Per action: whether any of `forbids` can apply to it on a `Namespace`.
    namespace_forbids: Mutex<HashMap<&'static str, bool>>,
}

/// The cache of slices, by caller.
pub struct SliceCache {
    by_caller: Mutex<LruCache<String, Arc<Slices>>>,
}

impl Default for SliceCache {
    fn default() -> SliceCache {
        SliceCache {
            by_caller: Mutex::new(LruCache::new(CACHED_CALLERS)),
        }
    }
}

impl Slices {
    /// Whether some forbid of this slice could apply to `action` on a `Namespace` (`ancestors`:
    /// the action's groups), judged from the forbids' scopes; if none could, a call on an
    /// object need not be decided on its namespace as well.
    pub fn namespace_forbids(&self, action: &'static str, ancestors: &[EntityUid]) -> bool {
        let mut known = self
            .namespace_forbids
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(&may) = known.get(action) {
            return may;
        }
        let action_uid = entities::uid("Action", action);
        let may = self
            .forbids
            .policies()
            .any(|forbid| may_apply_on_namespace(forbid, &action_uid, ancestors));
        known.insert(action, may);
        may
    }
}

/// Whether a policy's scope admits `action` (or one of its groups) on some `Namespace`.
fn may_apply_on_namespace(policy: &Policy, action: &EntityUid, ancestors: &[EntityUid]) -> bool {
    let names_action = |uid: &EntityUid| uid == action || ancestors.contains(uid);
    let action_fits = match policy.action_constraint() {
        ActionConstraint::Any => true,
        ActionConstraint::Eq(uid) => names_action(&uid),
        ActionConstraint::In(uids) => uids.iter().any(names_action),
    };
    let namespace = entities::type_name("Namespace");
    let resource_fits = match policy.resource_constraint() {
        ResourceConstraint::Any | ResourceConstraint::In(_) => true,
        ResourceConstraint::Eq(uid) => uid.type_name() == &namespace,
        ResourceConstraint::Is(ty) | ResourceConstraint::IsIn(ty, _) => ty == namespace,
    };
    action_fits && resource_fits
}

impl SliceCache {
    /// The slices for `caller`, cut now or taken from the cache; an error if a policy could not
    /// be put in a slice (then every decision of the caller refuses).
    pub fn get(
        &self,
        caller: &Caller,
        enforced: &Corpus,
        shadow: Option<&Corpus>,
    ) -> Result<Arc<Slices>, String> {
        let key = key_of(caller);
        {
            let mut cache = self.by_caller.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(slices) = cache.get(&key) {
                return Ok(Arc::clone(slices));
            }
        }
        // Cut outside the lock: other callers' decisions do not wait for this one's first.
        let reach = reach_of(caller);
        let slices = Arc::new(Slices {
            enforced: cut(enforced, &reach, Cut::Calls)?,
            reveal: cut(enforced, &reach, Cut::Reveal)?,
            forbids: cut(enforced, &reach, Cut::Forbids)?,
            shadow: match shadow {
                Some(corpus) => Some((
                    cut(corpus, &reach, Cut::Calls)?,
                    cut(corpus, &reach, Cut::Reveal)?,
                )),
                None => None,
            },
            listed: OnceLock::new(),
            caller: OnceLock::new(),
            namespace_forbids: Mutex::new(HashMap::new()),
        });
        let mut cache = self.by_caller.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(cut_meanwhile) = cache.get(&key) {
            return Ok(Arc::clone(cut_meanwhile));
        }
        cache.put(key, Arc::clone(&slices));
        Ok(slices)
    }
}

/// Everything about a caller that a decision or a listing reads: two callers with the same key
/// are the same principal to Cedar. Each part is length-prefixed, so no two callers share one.
fn key_of(caller: &Caller) -> String {
    let mut key = String::with_capacity(64);
    let mut push = |part: &str| {
        key.push_str(&part.len().to_string());
        key.push(':');
        key.push_str(part);
    };
    push(&caller.username);
    push(&caller.tenant);
    match &caller.email {
        Some(email) => {
            push("email");
            push(email);
        }
        None => push("no-email"),
    }
    push(&caller.groups.len().to_string());
    for group in &caller.groups {
        push(group);
    }
    for (name, value) in &caller.claims {
        push(name);
        push(value);
    }
    key
}

/// The entities a caller is (or is in): their `User`, `Group`s and `Tenant`.
fn reach_of(caller: &Caller) -> HashSet<EntityUid> {
    std::iter::once(entities::uid("User", &caller.username))
        .chain(caller.groups.iter().map(|g| entities::uid("Group", g)))
        .chain(std::iter::once(entities::uid("Tenant", &caller.tenant)))
        .collect()
}

/// Which policies of a corpus a slice keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cut {
    /// Every policy that can apply to the caller: for calls.
    Calls,
    /// For `reveal-secrets`: the forbids, and only the permits that name the action.
    Reveal,
    /// The forbids alone.
    Forbids,
}

/// The policies of `corpus` that can apply to a caller who is (in) `reach`, as `mode` keeps
/// them. Template links are linked again in the slice.
fn cut(corpus: &Corpus, reach: &HashSet<EntityUid>, mode: Cut) -> Result<PolicySet, String> {
    let keeps = |effect: Effect, id: &cedar_policy::PolicyId| match mode {
        Cut::Calls => true,
        Cut::Reveal => effect == Effect::Forbid || corpus.reveal_permits.contains(id),
        Cut::Forbids => effect == Effect::Forbid,
    };
    let entries = corpus.anyone.iter().chain(
        reach
            .iter()
            .filter_map(|uid| corpus.reached.get(uid))
            .flatten(),
    );
    let mut set = PolicySet::new();
    let mut templates_added = HashSet::new();
    for entry in entries {
        match *entry {
            Entry::Static(n) => {
                let (policy, _) = &corpus.statics[n];
                if keeps(policy.effect(), policy.id()) {
                    set.add(policy.clone())
                        .map_err(|e| format!("slicing policy {}: {e}", policy.id()))?;
                }
            }
            Entry::Link(n) => {
                let link = &corpus.links[n];
                let template = corpus
                    .templates
                    .get(&link.template)
                    .ok_or_else(|| format!("slicing {}: its template is not loaded", link.id))?;
                if !keeps(template.effect(), &link.template) {
                    continue;
                }
                if templates_added.insert(link.template.clone()) {
                    set.add_template(template.clone())
                        .map_err(|e| format!("slicing template {}: {e}", link.template))?;
                }
                set.link(link.template.clone(), link.id.clone(), link.values.clone())
                    .map_err(|e| format!("slicing link {}: {e}", link.id))?;
            }
        }
    }
    Ok(set)
}
