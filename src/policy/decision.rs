//! What a decision gives back: a [`Permit`] bound to the call it permits ([`Permitted`]), a
//! [`RevealSecrets`] grant and the [`Unmask`] it lends the output filter, or a [`Denied`] that
//! says what decided it; and, when a shadow set is loaded, what it would have decided.

use std::collections::HashSet;
use std::fmt;
use std::sync::{Arc, Mutex};

use cedar_policy::{Context, EntityUid};

use super::load::Corpus;
use super::slice::Slices;
use super::{NamespaceDirectory, PolicyEngine, Target};
use crate::auth::Caller;

/// One question put to the policy: this caller, this action, these arguments, over this
/// transport, against one loaded policy set. Asked once, then decided for each resource the
/// call touches, so every decision of one call reads the same policies.
pub struct Question {
    pub(super) caller: Arc<Caller>,
    pub(super) principal: EntityUid,
    pub(super) action: &'static str,
    pub(super) action_uid: EntityUid,
    pub(super) context: Context,
    pub(super) loaded: Arc<Loaded>,
    pub(super) slices: Arc<Slices>,
}

impl fmt::Debug for Question {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Question")
            .field("principal", &self.principal.to_string())
            .field("action", &self.action)
            .field("policies", &self.loaded.version)
            .finish_non_exhaustive()
    }
}

/// One loaded policy set (enforced, and shadow if any), replaced whole by a reload.
pub struct Loaded {
    pub(super) enforced: Corpus,
    pub(super) shadow: Option<Arc<Corpus>>,
    pub(super) slices: super::slice::SliceCache,
    /// A short hash of the sources, named in every audit record's decision.
    pub(super) version: String,
}

/// One resource a decision permitted, and the policies that permitted it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allowed {
    pub target: Target,
    /// The Cedar uid, e.g. `Namespace::"local/team-a"`.
    pub resource: String,
    pub policies: Vec<String>,
    pub reasons: Vec<String>,
}

/// A further decision made while a permitted call ran (an item's namespace, an object of a
/// Helm release), kept for the audit record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubDecision {
    pub resource: String,
    pub allowed: bool,
    pub policies: Vec<String>,
    /// Whether the shadow set would have allowed it, if one is loaded.
    pub shadow_allowed: Option<bool>,
}

/// What the shadow set would have decided for a call (never enforced).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShadowDecision {
    pub allowed: bool,
    /// The deciding policies: the permits if allowed, the forbids if forbidden.
    pub policies: Vec<String>,
    pub reasons: Vec<String>,
    pub errors: Vec<String>,
    /// For calls that see what they may of several resources: those the shadow set permits.
    pub resources: Vec<String>,
}

/// Proof that the policy permitted one action for one caller on the resources of its scope.
#[derive(Debug)]
pub struct Permit {
    pub(super) question: Question,
    /// The permitted resources: the one target, every target of an `All` scope, or the
    /// visible ones of a `Visible` scope.
    pub(super) allowed: Vec<Allowed>,
    pub(super) shadow: Option<ShadowDecision>,
    /// Decisions made while the call ran, in order.
    pub(super) later: Mutex<Vec<SubDecision>>,
}

impl Permit {
    /// The caller the permit was granted to: the identity kubegate impersonates.
    pub fn caller(&self) -> &Caller {
        &self.question.caller
    }
    pub fn caller_arc(&self) -> &Arc<Caller> {
        &self.question.caller
    }
    pub fn action(&self) -> &'static str {
        self.question.action
    }
    /// The first permitted resource's Cedar uid, e.g. `Namespace::"local/team-a"`.
    pub fn resource(&self) -> &str {
        self.allowed.first().map_or("", |a| a.resource.as_str())
    }
    /// Every permitted resource.
    pub fn allowed(&self) -> &[Allowed] {
        &self.allowed
    }
    /// The ids of the policies that permitted the call (each once).
    pub fn policies(&self) -> Vec<String> {
        unique(self.allowed.iter().flat_map(|a| a.policies.iter()))
    }
    /// Their `@reason` annotations (each once).
    pub fn reasons(&self) -> Vec<String> {
        unique(self.allowed.iter().flat_map(|a| a.reasons.iter()))
    }
    /// What the shadow set would have decided, if one is loaded.
    pub fn shadow(&self) -> Option<&ShadowDecision> {
        self.shadow.as_ref()
    }
    /// The version of the policy set that decided.
    pub fn policy_version(&self) -> &str {
        &self.question.loaded.version
    }
    /// The namespaces among the permitted resources, in order.
    pub fn namespaces(&self) -> impl Iterator<Item = &str> {
        self.allowed.iter().filter_map(|a| match &a.target {
            Target::Namespace(ns) => Some(ns.as_str()),
            _ => None,
        })
    }

    /// Whether `target` is one of the resources this permit was decided for.
    pub fn covers(&self, target: &Target) -> bool {
        self.allowed.iter().any(|a| &a.target == target)
    }

    /// Decides a further resource for the same caller, action and arguments, against the same
    /// policy set (the namespace of an item of a cluster-wide list, an object found while
    /// running). Recorded for the audit.
    pub fn also(
        &self,
        engine: &PolicyEngine,
        target: &Target,
        namespaces: &dyn NamespaceDirectory,
    ) -> Result<Allowed, Denied> {
        let (decision, shadow) = engine.decide(&self.question, target, namespaces);
        let shadow_allowed = shadow.map(|v| v.allowed());
        self.note(&decision, shadow_allowed);
        decision
    }

    fn note(&self, decision: &Result<Allowed, Denied>, shadow_allowed: Option<bool>) {
        let mut later = self.later.lock().unwrap_or_else(|e| e.into_inner());
        later.push(match decision {
            Ok(allowed) => SubDecision {
                resource: allowed.resource.clone(),
                allowed: true,
                policies: allowed.policies.clone(),
                shadow_allowed,
            },
            Err(denied) => SubDecision {
                resource: denied.resource.clone(),
                allowed: false,
                policies: denied.policies().to_vec(),
                shadow_allowed,
            },
        });
    }

    /// Decides whether the call may look at a further resource (a namespace a cluster-wide
    /// `analyze` would cover), as [`Permit::also`] does, but records only what it may see (and
    /// a refusal the shadow set would have allowed): the record of a call that covers "every
    /// namespace you may read" does not list every other namespace of the cluster.
    pub fn may_see(
        &self,
        engine: &PolicyEngine,
        target: &Target,
        namespaces: &dyn NamespaceDirectory,
    ) -> bool {
        let (decision, shadow) = engine.decide(&self.question, target, namespaces);
        let shadow_allowed = shadow.map(|v| v.allowed());
        let allowed = decision.is_ok();
        if allowed || shadow_allowed == Some(true) {
            self.note(&decision, shadow_allowed);
        }
        allowed
    }

    /// The decisions made while the call ran.
    pub fn later(&self) -> Vec<SubDecision> {
        self.later.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// A call the policy permitted, bound to its permit: only this call can run under it.
#[derive(Debug)]
pub struct Permitted<T> {
    pub(super) call: T,
    pub(super) permit: Permit,
}

impl<T> Permitted<T> {
    pub fn call(&self) -> &T {
        &self.call
    }
    pub fn permit(&self) -> &Permit {
        &self.permit
    }
}

/// The grant to see Secret values in one namespace (or cluster-wide), from its own decision of
/// `Action::"reveal-secrets"`. Only the policy engine makes one.
#[derive(Debug, Clone)]
pub struct RevealSecrets {
    pub(super) allowed: Allowed,
}

impl RevealSecrets {
    pub fn allowed(&self) -> &Allowed {
        &self.allowed
    }

    /// What lets the output filter show Secret values: only a grant makes one.
    pub fn unmask(&self) -> Unmask {
        Unmask { _granted: () }
    }
}

/// Lets the output filter show the values of Secrets in one namespace instead of masking them.
/// Only a [`RevealSecrets`] grant makes one, so no code path can unmask without a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unmask {
    _granted: (),
}

impl Unmask {
    /// An unmask without a decision, for the output filter's own unit tests.
    #[cfg(test)]
    pub(crate) fn for_tests() -> Unmask {
        Unmask { _granted: () }
    }
}

/// A refusal, with what decided it.
#[derive(Debug, Clone)]
pub struct Denied {
    pub principal: String,
    pub action: &'static str,
    pub resource: String,
    pub cause: Refusal,
    /// What the shadow set would have decided, if one is loaded.
    pub shadow: Option<ShadowDecision>,
    /// The version of the policy set that refused.
    pub policy_version: String,
}

/// Why a call was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No policy permits it (Cedar's default deny).
    NotPermitted,
    /// `forbid` policies matched; they win over any `permit`.
    Forbidden {
        policies: Vec<String>,
        reasons: Vec<String>,
    },
    /// A policy could not be evaluated (or the request not built): kubegate refuses what it
    /// cannot decide.
    Undecidable { errors: Vec<String> },
}

impl Denied {
    /// The `forbid` policies that decided, if any.
    pub fn policies(&self) -> &[String] {
        match &self.cause {
            Refusal::Forbidden { policies, .. } => policies,
            _ => &[],
        }
    }

    /// Their `@reason` annotations.
    pub fn reasons(&self) -> &[String] {
        match &self.cause {
            Refusal::Forbidden { reasons, .. } => reasons,
            _ => &[],
        }
    }

    /// Evaluation errors, if that is why.
    pub fn errors(&self) -> &[String] {
        match &self.cause {
            Refusal::Undecidable { errors } => errors,
            _ => &[],
        }
    }
}

impl fmt::Display for Denied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "kubegate refused `{}` on {} for {}: ",
            self.action, self.resource, self.principal
        )?;
        match &self.cause {
            Refusal::NotPermitted => write!(f, "no policy permits it"),
            Refusal::Forbidden { policies, reasons } => {
                write!(f, "forbidden by policy {}", policies.join(", "))?;
                if !reasons.is_empty() {
                    write!(f, " ({})", reasons.join("; "))?;
                }
                Ok(())
            }
            Refusal::Undecidable { errors } => write!(
                f,
                "a policy could not be evaluated ({}), and kubegate refuses what it cannot decide",
                errors.join("; ")
            ),
        }
    }
}

/// One evaluation of one request against one policy set.
#[derive(Debug, Clone)]
pub(super) struct Verdict {
    pub outcome: Outcome,
    pub policies: Vec<String>,
    pub reasons: Vec<String>,
    pub errors: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Outcome {
    Allow,
    NotPermitted,
    Forbidden,
    Undecidable,
}

impl Verdict {
    pub fn undecidable(error: String) -> Verdict {
        Verdict {
            outcome: Outcome::Undecidable,
            policies: Vec::new(),
            reasons: Vec::new(),
            errors: vec![error],
        }
    }

    /// This verdict on an object, given the verdict on its namespace: a forbid on the
    /// namespace (or a failure to decide it) holds for everything in it.
    pub fn within(self, namespace: Verdict) -> Verdict {
        match namespace.outcome {
            Outcome::Forbidden | Outcome::Undecidable => namespace,
            Outcome::Allow | Outcome::NotPermitted => self,
        }
    }

    pub fn allowed(&self) -> bool {
        self.outcome == Outcome::Allow
    }

    pub fn refusal(&self) -> Option<Refusal> {
        match self.outcome {
            Outcome::Allow => None,
            Outcome::NotPermitted => Some(Refusal::NotPermitted),
            Outcome::Forbidden => Some(Refusal::Forbidden {
                policies: self.policies.clone(),
                reasons: self.reasons.clone(),
            }),
            Outcome::Undecidable => Some(Refusal::Undecidable {
                errors: self.errors.clone(),
            }),
        }
    }
}

/// Combines the shadow verdicts of a call's resources into what the shadow set would have
/// decided for the call: all must be permitted (`any` false), or at least one (`any` true).
pub(super) fn shadow_of(verdicts: &[(String, Verdict)], any: bool) -> ShadowDecision {
    let allowed = if any {
        verdicts.iter().any(|(_, v)| v.allowed())
    } else {
        !verdicts.is_empty() && verdicts.iter().all(|(_, v)| v.allowed())
    };
    // The verdicts that made the decision what it is.
    let deciding: Vec<&Verdict> = verdicts
        .iter()
        .map(|(_, v)| v)
        .filter(|v| v.allowed() == allowed)
        .collect();
    ShadowDecision {
        allowed,
        policies: unique(deciding.iter().flat_map(|v| v.policies.iter())),
        reasons: unique(deciding.iter().flat_map(|v| v.reasons.iter())),
        errors: unique(verdicts.iter().flat_map(|(_, v)| v.errors.iter())),
        resources: if any {
            verdicts
                .iter()
                .filter(|(_, v)| v.allowed())
                .map(|(r, _)| r.clone())
                .collect()
        } else {
            Vec::new()
        },
    }
}

/// Each string once, in first-seen order.
pub(super) fn unique<'a>(items: impl Iterator<Item = &'a String>) -> Vec<String> {
    let mut seen = HashSet::new();
    items.filter(|s| seen.insert(s.as_str())).cloned().collect()
}
