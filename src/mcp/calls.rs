//! Handles the methods that reach Kubernetes: `tools/call` and `resources/read`. Each goes
//! parse → policy → (for changes: the write-ahead audit record) → run, and fills the audit
//! record on the way.

use serde_json::{Map, Value, json};

use super::{Exchange, jsonrpc};
use crate::audit::{
    AuditDecision, AuditRecord, AuditShadow, AuditSubDecision, Outcome, WriteAhead,
};
use crate::clusters::{Cluster, ClusterError, Reached};
use crate::kube::{ApiCatalog, KubeError};
use crate::mcp::jsonrpc::code;
use crate::policy::cases::StaticNamespaces;
use crate::policy::{Decidable, Denied, Permit, Permitted, ShadowDecision};
use crate::tool::resources::{self, ResourceRead};
use crate::tool::{self, Runnable, ToolCall, ToolError, ToolOutput};

pub(super) async fn call_tool(
    ex: &Exchange<'_>,
    params: &Map<String, Value>,
    record: &mut AuditRecord,
) -> jsonrpc::Response {
    let id = &ex.id;
    let Some(name) = params.get("name").and_then(Value::as_str) else {
        let message = "tools/call needs a `name` (string)";
        record.fail(Outcome::Invalid, message);
        return jsonrpc::error(Some(id), code::INVALID_PARAMS, message);
    };
    record.mcp.tool = Some(name.to_owned());
    let empty = Map::new();
    let arguments = match params.get("arguments") {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(arguments)) => arguments,
        Some(_) => {
            let message = "tools/call `arguments` must be an object";
            record.fail(Outcome::Invalid, message);
            return jsonrpc::error(Some(id), code::INVALID_PARAMS, message);
        }
    };
    let clusters = &ex.gateway.clusters;
    // list-clusters is a tool only where there are several clusters to list.
    let Some(spec) =
        tool::spec(name).filter(|s| clusters.several() || s.name != tool::LIST_CLUSTERS)
    else {
        let error = ToolError::UnknownTool(name.to_owned());
        record.set_arguments(&names_only(arguments, "the tool does not exist"));
        record.fail(Outcome::Invalid, error.to_string());
        return jsonrpc::error(Some(id), code::INVALID_PARAMS, error.to_string());
    };
    record.level = ex.gateway.audit.level_for(spec.name, spec.group.action());
    // With several clusters, `context` names the cluster the call goes to (the default one
    // without it); with one, it is no argument of any tool.
    let without_context;
    let (context, arguments) = match arguments.get("context").filter(|_| clusters.several()) {
        None => (None, arguments),
        Some(Value::String(context)) => {
            let mut rest = arguments.clone();
            rest.remove("context");
            without_context = rest;
            (Some(context.as_str()), &without_context)
        }
        Some(_) => {
            let message = format!(
                "invalid arguments for `{name}`: `context` must be a string, the name of a \
                 cluster (list-clusters shows them)"
            );
            record.fail(Outcome::Invalid, message.clone());
            return ex.tool_result(&message, None, true);
        }
    };
    let chosen = match (context, spec.name) {
        // list-clusters answers while the default cluster is down: it is then decided on the
        // first cluster kubegate is connected to.
        (None, tool::LIST_CLUSTERS) => Ok(clusters.first_reachable()),
        _ => clusters.get(context),
    };
    if let Ok(cluster) = &chosen {
        record.cluster = Some(cluster.name.clone());
    }
    // A tool no call of this caller can be permitted is not in their tools/list; a call of it
    // is refused as a denial, before its arguments are read.
    let engine = chosen.as_ref().map_or(&ex.gateway.policy, |c| &c.policy);
    if let Err(denied) = engine.refuse_unlisted(ex.caller, spec.name) {
        record.set_arguments(&names_only(
            arguments,
            "the call was refused before it was read",
        ));
        record.decision = Some(refused(&denied));
        record.fail(Outcome::Denied, denied.to_string());
        return ex.tool_result(&denied.to_string(), None, true);
    }
    let reached = match chosen.and_then(|c| ex.reach(c)) {
        Ok(reached) => reached,
        Err(error) => {
            record.set_arguments(&names_only(arguments, "the call went to no cluster"));
            let outcome = match error {
                ClusterError::Unknown(_) => Outcome::Invalid,
                ClusterError::Unreachable { .. } => Outcome::Error,
            };
            // The reply says what the caller may know; the record, why.
            record.fail(outcome, error.detail());
            return ex.tool_result(&error.to_string(), None, true);
        }
    };
    let mut parsed = ToolCall::parse(name, arguments, &reached.kube.catalog());
    // A kind installed since the last discovery (a new CRD): discover again, once, and retry.
    if matches!(parsed, Err(ToolError::NotServed { .. })) && reached.kube.rediscover().await {
        parsed = ToolCall::parse(name, arguments, &reached.kube.catalog());
    }
    let call = match parsed {
        Ok(call) => call,
        Err(error) => {
            // Arguments that did not parse may hold anything (a manifest with a Secret): the
            // record keeps their names only.
            record.set_arguments(&names_only(arguments, "the arguments did not parse"));
            record.fail(Outcome::Invalid, error.to_string());
            return match error {
                ToolError::UnknownTool(_) => {
                    jsonrpc::error(Some(id), code::INVALID_PARAMS, error.to_string())
                }
                // Invalid arguments are a tool error the model can read and correct (MCP 2025-11-25).
                _ => ex.tool_result(&error.to_string(), None, true),
            };
        }
    };
    record.set_arguments(&call.audit_arguments());
    let changes_cluster = call.spec().group.changes_cluster();
    let permitted = match ex.authorize(call, reached, record) {
        Ok(permitted) => permitted,
        Err(denied) => return ex.tool_result(&denied.to_string(), None, true),
    };
    // A call that changes the cluster leaves its record on disk before anything is sent.
    let write_ahead = if changes_cluster {
        match ex.gateway.audit.write_ahead(record).await {
            Ok(proof) => Some(proof),
            Err(error) => {
                tracing::error!(%error, audit.id = %record.audit_id, "write-ahead audit record failed; refusing the call");
                let message = format!(
                    "kubegate refused the call: it could not write its audit record ({error}), \
                     and it changes nothing it has not recorded. Nothing was sent to Kubernetes."
                );
                record.fail(Outcome::Error, message.clone());
                return ex.tool_result(&message, None, true);
            }
        }
    } else {
        None
    };
    let ran = if changes_cluster {
        // A change runs to its end and is recorded, whatever its client does.
        ex.run(&permitted, reached, write_ahead, record).await
    } else {
        // A read whose client went away is abandoned, before or during its Kubernetes call:
        // a client resetting streams cannot make kubegate do the work anyway.
        let gone = ex.gone.clone();
        tokio::select! {
            biased;
            () = gone.cancelled() => Err(ToolError::Cancelled),
            ran = ex.run(&permitted, reached, write_ahead, record) => ran,
        }
    };
    match ran {
        Ok(output) => ex.tool_result(&output.text, output.structured.as_deref(), false),
        Err(ToolError::Cancelled) => {
            let message = ToolError::Cancelled.to_string();
            record.fail(Outcome::Cancelled, message.clone());
            ex.tool_result(&message, None, true)
        }
        Err(error) => {
            let message = ex.naming_cluster(reached, &error);
            // Past the answer memory bound is a refusal for load, like a full exchange limit.
            let outcome = match error {
                ToolError::Kube(KubeError::AnswerMemory { .. }) => Outcome::Throttled,
                _ => Outcome::Error,
            };
            record.fail(outcome, message.clone());
            ex.tool_result(&message, None, true)
        }
    }
}

pub(super) async fn read_resource(
    ex: &Exchange<'_>,
    params: &Map<String, Value>,
    record: &mut AuditRecord,
) -> jsonrpc::Response {
    let id = &ex.id;
    let Some(uri) = params.get("uri").and_then(Value::as_str) else {
        let message = "resources/read needs a `uri` (string)";
        record.fail(Outcome::Invalid, message);
        return jsonrpc::error(Some(id), code::INVALID_PARAMS, message);
    };
    record.set_arguments(&json!({ "uri": uri }));
    let cluster = ex.gateway.clusters.default_cluster();
    record.cluster = Some(cluster.name.clone());
    let reached = match ex.reach(cluster) {
        Ok(reached) => reached,
        Err(error) => {
            record.fail(Outcome::Error, error.detail());
            return jsonrpc::error(Some(id), code::INTERNAL_ERROR, error.to_string());
        }
    };
    let read = match ResourceRead::parse(uri, &reached.kube.catalog()) {
        Ok(read) => read,
        Err(message) => {
            record.fail(Outcome::Invalid, message.clone());
            // The stateless revision answers an unknown resource as invalid params naming the
            // URI; the initialize revisions with MCP's resource-not-found code.
            let code = if ex.wire.is_stateless() {
                code::INVALID_PARAMS
            } else {
                code::RESOURCE_NOT_FOUND
            };
            return jsonrpc::error_with_data(Some(id), code, message, Some(json!({ "uri": uri })));
        }
    };
    let permitted = match ex.authorize(read, reached, record) {
        Ok(permitted) => permitted,
        Err(denied) => return jsonrpc::error(Some(id), code::REFUSED, denied.to_string()),
    };
    match ex.run(&permitted, reached, None, record).await {
        Ok(output) => ex.read_result(resources::contents(uri, &output)),
        Err(error) => {
            let message = ex.naming_cluster(reached, &error);
            record.fail(Outcome::Error, message.clone());
            let code = match error {
                ToolError::NotFound(_) => code::RESOURCE_NOT_FOUND,
                _ => code::INTERNAL_ERROR,
            };
            jsonrpc::error(Some(id), code, message)
        }
    }
}

impl Exchange<'_> {
    /// Decides a call and records the decision (a refusal as the record's outcome too).
    pub(super) fn authorize<T: Decidable>(
        &self,
        call: T,
        to: Reached<'_>,
        record: &mut AuditRecord,
    ) -> Result<Permitted<T>, Denied> {
        let started = std::time::Instant::now();
        let at = std::time::SystemTime::now();
        let decided = to
            .cluster
            .policy
            .authorize(self.caller, call, &self.facts, to.kube);
        crate::metrics::policy_decision(started.elapsed());
        record.decided = Some((at, started.elapsed()));
        match decided {
            Ok(permitted) => {
                record.decision = Some(allowed(permitted.permit()));
                Ok(permitted)
            }
            Err(denied) => {
                record.decision = Some(refused(&denied));
                record.fail(Outcome::Denied, denied.to_string());
                Err(denied)
            }
        }
    }

    /// Runs a permitted call as its caller and records what it did: each API request, the
    /// decisions it made on the way, and the grants it asked for.
    pub(super) async fn run<T: Runnable>(
        &self,
        permitted: &Permitted<T>,
        to: Reached<'_>,
        write_ahead: Option<WriteAhead>,
        record: &mut AuditRecord,
    ) -> Result<ToolOutput, ToolError> {
        let ran = tool::run(
            permitted,
            &self.gateway.clusters,
            to,
            &self.facts,
            self.peer_out.clone().map(|out| crate::mcp::peer::Peer {
                peers: &self.gateway.peers,
                owner: self.caller.username.clone(),
                out,
                sampling: self.sampling,
                progress_token: self.progress_token.clone(),
            }),
            write_ahead,
        )
        .await;
        record.kube = ran.calls;
        if let Some(decision) = record.decision.as_mut() {
            decision.later = later(permitted.permit());
            decision.grants = ran.grants;
            // The shadow agrees only if it would also have decided every later decision (the
            // namespaces of a cluster-wide list's items, the objects of a release) and every
            // grant the same way.
            if let Some(shadow) = decision.shadow.as_mut() {
                let later_agree = decision
                    .later
                    .iter()
                    .all(|d| d.shadow_allowed.is_none_or(|s| s == d.allowed));
                let grants_agree = decision
                    .grants
                    .iter()
                    .all(|g| g.shadow_allowed.is_none_or(|s| s == g.allowed));
                shadow.agrees = shadow.agrees && later_agree && grants_agree;
            }
        }
        ran.output
    }

    /// The cluster with its connection. One that cannot be reached is said to be so only to a
    /// caller who may use it (who may list it); to others it is as unknown as a made-up name.
    pub(super) fn reach<'c>(&self, cluster: &'c Cluster) -> Result<Reached<'c>, ClusterError> {
        cluster.reach().map_err(|error| {
            let listed = ToolCall::parse(tool::LIST_CLUSTERS, &Map::new(), &ApiCatalog::offline())
                .ok()
                .and_then(|call| {
                    let none = StaticNamespaces::default();
                    cluster
                        .policy
                        .authorize(self.caller, call, &self.facts, &none)
                        .ok()
                });
            match listed {
                Some(_) => error,
                None => ClusterError::Unknown(cluster.name.clone()),
            }
        })
    }

    /// A failed call's message; with several clusters, saying which one it went to.
    fn naming_cluster(&self, to: Reached<'_>, error: &ToolError) -> String {
        match error {
            ToolError::Denied(_) => error.to_string(),
            _ if self.gateway.clusters.several() => {
                format!("cluster `{}`: {error}", to.cluster.name)
            }
            _ => error.to_string(),
        }
    }
}

/// The argument names of a call whose arguments were not read or did not parse.
fn names_only(arguments: &Map<String, Value>, why: &str) -> Value {
    let note = Value::from(format!("<not recorded: {why}>"));
    Value::Object(
        arguments
            .keys()
            .map(|k| (k.clone(), note.clone()))
            .collect(),
    )
}

/// The audit record's view of a permit.
pub(super) fn allowed(permit: &Permit) -> AuditDecision {
    let allowed = permit.allowed();
    AuditDecision {
        allowed: true,
        action: permit.action().to_owned(),
        resource: permit.resource().to_owned(),
        policies: permit.policies(),
        reasons: permit.reasons(),
        errors: Vec::new(),
        resources: if allowed.len() > 1 {
            allowed.iter().map(|a| a.resource.clone()).collect()
        } else {
            Vec::new()
        },
        later: Vec::new(),
        grants: Vec::new(),
        policy_version: permit.policy_version().to_owned(),
        shadow: permit.shadow().map(|shadow| {
            let enforced: Vec<&str> = allowed.iter().map(|a| a.resource.as_str()).collect();
            // A call that sees several namespaces agrees only if it would see the same ones.
            let same_view = shadow.resources.is_empty()
                || shadow.resources.iter().map(String::as_str).eq(enforced);
            audit_shadow(shadow, shadow.allowed && same_view)
        }),
    }
}

/// The audit record's view of a refusal.
pub(super) fn refused(denied: &Denied) -> AuditDecision {
    AuditDecision {
        allowed: false,
        action: denied.action.to_owned(),
        resource: denied.resource.clone(),
        policies: denied.policies().to_vec(),
        reasons: denied.reasons().to_vec(),
        errors: denied.errors().to_vec(),
        resources: Vec::new(),
        later: Vec::new(),
        grants: Vec::new(),
        policy_version: denied.policy_version.clone(),
        shadow: denied
            .shadow
            .as_ref()
            .map(|shadow| audit_shadow(shadow, !shadow.allowed)),
    }
}

fn audit_shadow(shadow: &ShadowDecision, agrees: bool) -> AuditShadow {
    AuditShadow {
        allowed: shadow.allowed,
        agrees,
        policies: shadow.policies.clone(),
        reasons: shadow.reasons.clone(),
        errors: shadow.errors.clone(),
        resources: shadow.resources.clone(),
    }
}

fn later(permit: &Permit) -> Vec<AuditSubDecision> {
    permit
        .later()
        .into_iter()
        .map(|d| AuditSubDecision {
            resource: d.resource,
            allowed: d.allowed,
            policies: d.policies,
            shadow_allowed: d.shadow_allowed,
        })
        .collect()
}
