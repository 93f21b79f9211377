//! Reads a kubegate audit record back: the fields reviews filter, count and show, tolerant of
//! fields it does not know and of those a record may lack, and the namespaces a record is in
//! (the rule is in [`super`]'s documentation).

use std::collections::BTreeSet;

use jiff::Timestamp;
use serde::Deserialize;
use serde_json::Value;

/// A kubegate audit record as read back: the fields reviews filter, count and show.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    #[serde(rename = "auditID", default)]
    pub audit_id: String,
    #[serde(default)]
    pub stage: String,
    pub request_received_timestamp: Option<Timestamp>,
    pub stage_timestamp: Timestamp,
    pub user: Option<RecordUser>,
    #[serde(rename = "sourceIPs", default)]
    pub source_ips: Vec<String>,
    #[serde(default)]
    pub mcp: RecordMcp,
    /// The cluster the call went to (records of kubegate before it fronted several have none).
    pub cluster: Option<String>,
    pub arguments: Option<Value>,
    pub decision: Option<RecordDecision>,
    #[serde(default)]
    pub kube: Vec<RecordKubeCall>,
    #[serde(default)]
    pub outcome: String,
    pub error: Option<String>,
    /// Unauthenticated requests from the same address left unrecorded before this one.
    pub unrecorded_before: Option<u64>,
}

/// The caller a record names.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RecordUser {
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub tenant: String,
}

/// What was asked over MCP.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordMcp {
    pub method: Option<String>,
    pub tool: Option<String>,
}

/// The policy decision a record carries.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RecordDecision {
    #[serde(default)]
    pub allowed: bool,
    #[serde(default)]
    pub action: String,
    #[serde(default)]
    pub resource: String,
    #[serde(default)]
    pub resources: Vec<String>,
    #[serde(default)]
    pub policies: Vec<String>,
    #[serde(default)]
    pub later: Vec<RecordSubDecision>,
}

/// A decision made while a permitted call ran.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RecordSubDecision {
    #[serde(default)]
    pub resource: String,
    #[serde(default)]
    pub allowed: bool,
}

/// One request kubegate made to the API server for a record's call.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordKubeCall {
    #[serde(default)]
    pub verb: String,
    #[serde(default)]
    pub uri: String,
    #[serde(default)]
    pub code: u16,
    #[serde(rename = "auditID")]
    pub audit_id: Option<String>,
}

impl Record {
    /// The Cedar action the call was decided as, or (refused before a decision) its tool.
    pub fn action(&self) -> Option<&str> {
        self.decision
            .as_ref()
            .map(|d| d.action.as_str())
            .filter(|a| !a.is_empty())
            .or(self.mcp.tool.as_deref())
    }

    /// Whether the policy refused the call.
    pub fn denied(&self) -> bool {
        self.outcome == "denied" || self.decision.as_ref().is_some_and(|d| !d.allowed)
    }

    /// The caller's username, if the request was authenticated.
    pub fn username(&self) -> Option<&str> {
        self.user.as_ref().map(|u| u.username.as_str())
    }

    /// The caller's tenant, if the request was authenticated.
    pub fn tenant(&self) -> Option<&str> {
        self.user.as_ref().map(|u| u.tenant.as_str())
    }

    /// The namespaces the record is in (see the module's documentation for the rule).
    pub fn namespaces(&self) -> BTreeSet<&str> {
        let mut found = BTreeSet::new();
        if let Some(decision) = &self.decision {
            let later = decision.later.iter().filter(|d| d.allowed);
            let uids = std::iter::once(&decision.resource)
                .chain(&decision.resources)
                .chain(later.map(|d| &d.resource));
            found.extend(uids.filter_map(|uid| namespace_of_uid(uid)));
        }
        if let Some(Value::String(ns)) = self.arguments.as_ref().and_then(|a| a.get("namespace")) {
            found.insert(ns.as_str());
        }
        found.extend(self.kube.iter().filter_map(|c| namespace_of_uri(&c.uri)));
        found
    }
}

/// The namespace of a Cedar resource uid: `Namespace::"<cluster>/<ns>"`, or
/// `Object::"<cluster>/<ns>/<Kind>/<name>"` (a cluster-scoped object has none).
pub fn namespace_of_uid(uid: &str) -> Option<&str> {
    let id = |kind: &str| {
        uid.strip_prefix(kind)
            .and_then(|rest| rest.strip_prefix("::\""))
            .and_then(|rest| rest.strip_suffix('"'))
    };
    if let Some(id) = id("Namespace") {
        return id.rsplit_once('/').map(|(_, ns)| ns);
    }
    let parts: Vec<&str> = id("Object")?.rsplitn(4, '/').collect();
    match parts[..] {
        [_name, _kind, ns, _cluster] => Some(ns),
        _ => None,
    }
}

/// The namespace of an API path: `/api/<v>/namespaces/<ns>...` or
/// `/apis/<group>/<v>/namespaces/<ns>...`.
pub fn namespace_of_uri(uri: &str) -> Option<&str> {
    let path = uri.split(['?', '#']).next().unwrap_or_default();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let ns = match segments[..] {
        ["api", _, "namespaces", ns, ..] => ns,
        ["apis", _, _, "namespaces", ns, ..] => ns,
        _ => return None,
    };
    (!ns.is_empty()).then_some(ns)
}
