//! Pairs kubegate's records with the API server's own audit log (JSON lines of
//! `audit.k8s.io/v1` `Event`), for `kubegate audit join`: each API request kubegate made for a
//! caller (`kube[].auditID`, the API server's `Audit-Id` answer header) beside the API server's
//! event of it, with both identities (kubegate's caller; the API server's authenticated and
//! impersonated users), and what is on one side only.
//!
//! # Unmatched
//!
//! - A kubegate call is unmatched when no API server event has its audit ID (or it has none:
//!   the request got no answer).
//! - An API server event of kubegate's own identity (`--gateway-user`) is unmatched when no
//!   record names its audit ID. One that impersonates someone should not exist. One made as
//!   kubegate itself is usually its own discovery or namespace watch, which no record is
//!   written for; both are listed, and counted apart.
//!
//! Only API server events in the [`Window`] are weighed: the times asked for, or else the
//! period the records cover, for they cannot explain what happened outside it.
//!
//! # Stages
//!
//! The API server may write several stages of one request (`RequestReceived`,
//! `ResponseStarted`, `ResponseComplete`, `Panic`); the last is kept.

use std::collections::{HashMap, HashSet};

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Entry, Record, RecordKubeCall, ReviewError, Skipped, Source, Table, scan, show_time};

/// An API server audit event as read back.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KubeEvent {
    #[serde(rename = "auditID")]
    pub audit_id: String,
    /// The cluster whose log it was read from, when the log was named with one.
    #[serde(skip)]
    pub cluster: Option<String>,
    #[serde(default)]
    pub stage: String,
    #[serde(default)]
    pub verb: String,
    #[serde(rename = "requestURI", default)]
    pub request_uri: String,
    pub user: Option<KubeUser>,
    pub impersonated_user: Option<KubeUser>,
    pub response_status: Option<ResponseStatus>,
    pub object_ref: Option<Value>,
    pub request_received_timestamp: Option<Timestamp>,
    pub stage_timestamp: Option<Timestamp>,
}

/// A user as the API server names it.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct KubeUser {
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub groups: Vec<String>,
}

/// The status the API server answered with.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ResponseStatus {
    pub code: Option<u16>,
}

impl KubeEvent {
    /// The user the API server authenticated.
    pub fn username(&self) -> Option<&str> {
        self.user.as_ref().map(|u| u.username.as_str())
    }

    /// The user the request impersonated, if any.
    pub fn impersonated(&self) -> Option<&str> {
        self.impersonated_user.as_ref().map(|u| u.username.as_str())
    }

    /// When the stage kept was reached (or, lacking that, when the request arrived).
    pub fn time(&self) -> Option<Timestamp> {
        self.stage_timestamp.or(self.request_received_timestamp)
    }

    pub fn code(&self) -> Option<u16> {
        self.response_status.as_ref().and_then(|s| s.code)
    }
}

/// How late a stage comes in a request's life: a later one replaces an earlier one.
fn stage_rank(stage: &str) -> u8 {
    match stage {
        "RequestReceived" => 0,
        "ResponseStarted" => 1,
        _ => 2,
    }
}

/// API server events, one per audit ID and cluster (its last stage).
#[derive(Debug, Default)]
pub struct ApiServerEvents {
    by_id: HashMap<String, Vec<KubeEvent>>,
}

impl ApiServerEvents {
    /// Reads the events a join of `entries` needs: those whose audit ID a record names, and
    /// every one made as `gateway_user`. Unreadable lines are added to `skipped`.
    pub fn read(
        logs: &[(Option<String>, Source)],
        entries: &[Entry],
        gateway_user: &str,
        skipped: &mut Vec<Skipped>,
    ) -> Result<ApiServerEvents, ReviewError> {
        let named: HashSet<&str> = entries
            .iter()
            .flat_map(|e| &e.record.kube)
            .filter_map(|c| c.audit_id.as_deref())
            .collect();
        let mut events = ApiServerEvents::default();
        for (cluster, source) in logs {
            scan(
                std::slice::from_ref(source),
                skipped,
                |_, _, mut event: KubeEvent| {
                    if named.contains(event.audit_id.as_str())
                        || event.username() == Some(gateway_user)
                    {
                        event.cluster = cluster.clone();
                        events.add(event);
                    }
                },
            )?;
        }
        Ok(events)
    }

    /// Adds an event, unless one of a later stage of the same request (in the same cluster's
    /// log) is already in.
    pub fn add(&mut self, event: KubeEvent) {
        let same = self.by_id.entry(event.audit_id.clone()).or_default();
        match same.iter_mut().find(|kept| kept.cluster == event.cluster) {
            Some(kept) if stage_rank(&kept.stage) > stage_rank(&event.stage) => {}
            Some(kept) => *kept = event,
            None => same.push(event),
        }
    }

    /// The event of `audit_id` (of any cluster).
    pub fn get(&self, audit_id: &str) -> Option<&KubeEvent> {
        self.by_id.get(audit_id).and_then(|events| events.first())
    }

    /// The event of `audit_id` that a call to `cluster` can pair with: one from that cluster's
    /// log or from a log named with no cluster; a call recorded with no cluster (by a kubegate
    /// before it fronted several) pairs with any.
    pub fn of_call(&self, audit_id: &str, cluster: Option<&str>) -> Option<&KubeEvent> {
        self.by_id
            .get(audit_id)?
            .iter()
            .find(|e| cluster.is_none() || e.cluster.is_none() || e.cluster.as_deref() == cluster)
    }

    /// Every event, in time order (then by audit ID).
    fn in_time_order(&self) -> Vec<&KubeEvent> {
        let mut events: Vec<&KubeEvent> = self.by_id.values().flatten().collect();
        events.sort_by(|a, b| (a.time(), &a.audit_id).cmp(&(b.time(), &b.audit_id)));
        events
    }
}

/// The period API server events are weighed in: `[since, until)`, either end open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Window {
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
}

impl Window {
    /// The period the records cover: from the first one's arrival to the last one's stage
    /// time, both included. No records: no bound.
    pub fn covering(entries: &[Entry]) -> Window {
        let arrivals = entries.iter().map(|e| {
            let r = &e.record;
            r.request_received_timestamp.unwrap_or(r.stage_timestamp)
        });
        let last = entries.iter().map(|e| e.record.stage_timestamp).max();
        Window {
            since: arrivals.min(),
            until: last.and_then(|t| t.checked_add(SignedDuration::from_nanos(1)).ok()),
        }
    }

    /// Whether a time is in the window; an event of no known time always is.
    pub fn contains(&self, time: Option<Timestamp>) -> bool {
        time.is_none_or(|t| {
            self.since.is_none_or(|since| t >= since) && self.until.is_none_or(|until| t < until)
        })
    }
}

/// What a join found.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Join {
    /// Each kubegate call beside the API server's event of it, in the records' time order.
    pub pairs: Vec<Pair>,
    /// kubegate calls of which the API server logs read have no event.
    pub unmatched_kubegate: Vec<KubegateCall>,
    /// Events of kubegate's identity in the window that no record names, in time order.
    pub unmatched_api_server: Vec<ApiServerCall>,
}

/// One API request as both sides saw it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Pair {
    pub kubegate: KubegateCall,
    pub api_server: ApiServerCall,
    /// Where the two sides differ: `caller` (the impersonated user is not the record's
    /// caller), `verb`, `uri`, `code`. Empty when they agree.
    pub disagreements: Vec<&'static str>,
}

/// An API request as kubegate recorded it, with the call it was made for.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KubegateCall {
    /// The API server's audit ID of the request, as kubegate noted it.
    #[serde(rename = "auditID")]
    pub audit_id: Option<String>,
    /// The audit ID of kubegate's own record.
    #[serde(rename = "recordAuditID")]
    pub record_audit_id: String,
    pub time: Timestamp,
    /// The cluster the call went to.
    pub cluster: Option<String>,
    pub caller: Option<String>,
    pub tenant: Option<String>,
    pub tool: Option<String>,
    pub verb: String,
    pub uri: String,
    pub code: u16,
}

/// An API request as the API server's audit log has it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiServerCall {
    #[serde(rename = "auditID")]
    pub audit_id: String,
    /// The cluster whose log it is in, when the log was named with one.
    pub cluster: Option<String>,
    pub stage: String,
    pub time: Option<Timestamp>,
    /// Who the API server authenticated (kubegate's own identity, for kubegate's requests).
    pub user: Option<String>,
    /// Who the request impersonated (kubegate's caller).
    pub impersonated_user: Option<String>,
    pub impersonated_groups: Vec<String>,
    pub verb: String,
    #[serde(rename = "requestURI")]
    pub request_uri: String,
    pub code: Option<u16>,
    pub object_ref: Option<Value>,
}

impl Join {
    /// Joins the records' calls with the API server's events; unmatched events are those of
    /// `gateway_user` in `window`.
    pub fn of(
        entries: &[Entry],
        events: &ApiServerEvents,
        gateway_user: &str,
        window: Window,
    ) -> Join {
        let mut join = Join::default();
        let mut explained = HashSet::new();
        for Entry { record, .. } in entries {
            for call in &record.kube {
                let kubegate = KubegateCall::of(record, call);
                // An event of a log named with a cluster pairs only with that cluster's calls.
                let event = call
                    .audit_id
                    .as_deref()
                    .and_then(|id| events.of_call(id, record.cluster.as_deref()));
                match event {
                    Some(event) => {
                        explained.insert((event.audit_id.as_str(), event.cluster.as_deref()));
                        join.pairs.push(Pair::of(kubegate, record, event));
                    }
                    None => join.unmatched_kubegate.push(kubegate),
                }
            }
        }
        join.unmatched_api_server = events
            .in_time_order()
            .into_iter()
            .filter(|e| e.username() == Some(gateway_user))
            .filter(|e| !explained.contains(&(e.audit_id.as_str(), e.cluster.as_deref())))
            .filter(|e| window.contains(e.time()))
            .map(ApiServerCall::of)
            .collect();
        join
    }

    /// The join as tables for people, each under a title.
    pub fn tables(&self, gateway_user: &str) -> Vec<(String, Table)> {
        let impersonating = self
            .unmatched_api_server
            .iter()
            .filter(|e| e.impersonated_user.is_some())
            .count();
        let as_itself = self.unmatched_api_server.len() - impersonating;
        vec![
            (
                format!("Paired: {}", self.pairs.len()),
                pairs_table(&self.pairs),
            ),
            (
                format!(
                    "kubegate calls with no API server event: {}",
                    self.unmatched_kubegate.len()
                ),
                kubegate_table(&self.unmatched_kubegate),
            ),
            (
                format!(
                    "API server events of {gateway_user} that no kubegate record explains: \
                     {impersonating} impersonating a caller, {as_itself} as {gateway_user} \
                     itself (its discovery and namespace watch are never recorded)"
                ),
                api_server_table(&self.unmatched_api_server),
            ),
        ]
    }
}

impl Pair {
    fn of(kubegate: KubegateCall, record: &Record, event: &KubeEvent) -> Pair {
        let mut disagreements = Vec::new();
        if record.username().is_some() && event.impersonated() != record.username() {
            disagreements.push("caller");
        }
        if event.verb != kubegate.verb {
            disagreements.push("verb");
        }
        if event.request_uri != kubegate.uri {
            disagreements.push("uri");
        }
        if event.code() != Some(kubegate.code) {
            disagreements.push("code");
        }
        Pair {
            kubegate,
            api_server: ApiServerCall::of(event),
            disagreements,
        }
    }
}

impl KubegateCall {
    fn of(record: &Record, call: &RecordKubeCall) -> KubegateCall {
        KubegateCall {
            audit_id: call.audit_id.clone(),
            record_audit_id: record.audit_id.clone(),
            time: record.stage_timestamp,
            cluster: record.cluster.clone(),
            caller: record.username().map(str::to_owned),
            tenant: record.tenant().map(str::to_owned),
            tool: record.action().map(str::to_owned),
            verb: call.verb.clone(),
            uri: call.uri.clone(),
            code: call.code,
        }
    }
}

impl ApiServerCall {
    fn of(event: &KubeEvent) -> ApiServerCall {
        ApiServerCall {
            audit_id: event.audit_id.clone(),
            cluster: event.cluster.clone(),
            stage: event.stage.clone(),
            time: event.time(),
            user: event.username().map(str::to_owned),
            impersonated_user: event.impersonated().map(str::to_owned),
            impersonated_groups: event
                .impersonated_user
                .as_ref()
                .map(|u| u.groups.clone())
                .unwrap_or_default(),
            verb: event.verb.clone(),
            request_uri: event.request_uri.clone(),
            code: event.code(),
            object_ref: event.object_ref.clone(),
        }
    }
}

fn or_dash(text: Option<&str>) -> String {
    text.unwrap_or("-").to_owned()
}

fn show_code(code: Option<u16>) -> String {
    code.map_or("-".into(), |c| c.to_string())
}

fn pairs_table(pairs: &[Pair]) -> Table {
    let mut table = Table::new(&[
        "TIME",
        "CLUSTER",
        "CALLER",
        "TENANT",
        "TOOL",
        "API USER",
        "IMPERSONATED",
        "VERB",
        "URI",
        "CODES",
        "AUDIT ID",
        "DIFFERS",
    ]);
    for Pair {
        kubegate: k,
        api_server: a,
        disagreements,
    } in pairs
    {
        table.row(vec![
            show_time(k.time),
            or_dash(k.cluster.as_deref()),
            or_dash(k.caller.as_deref()),
            or_dash(k.tenant.as_deref()),
            or_dash(k.tool.as_deref()),
            or_dash(a.user.as_deref()),
            or_dash(a.impersonated_user.as_deref()),
            k.verb.clone(),
            k.uri.clone(),
            format!("{}/{}", k.code, show_code(a.code)),
            a.audit_id.clone(),
            if disagreements.is_empty() {
                "-".into()
            } else {
                disagreements.join(",")
            },
        ]);
    }
    table
}

fn kubegate_table(calls: &[KubegateCall]) -> Table {
    let mut table = Table::new(&[
        "TIME", "CLUSTER", "CALLER", "TOOL", "VERB", "URI", "CODE", "AUDIT ID", "RECORD",
    ]);
    for k in calls {
        table.row(vec![
            show_time(k.time),
            or_dash(k.cluster.as_deref()),
            or_dash(k.caller.as_deref()),
            or_dash(k.tool.as_deref()),
            k.verb.clone(),
            k.uri.clone(),
            k.code.to_string(),
            or_dash(k.audit_id.as_deref()),
            k.record_audit_id.clone(),
        ]);
    }
    table
}

fn api_server_table(events: &[ApiServerCall]) -> Table {
    let mut table = Table::new(&[
        "TIME",
        "CLUSTER",
        "USER",
        "IMPERSONATED",
        "VERB",
        "URI",
        "CODE",
        "AUDIT ID",
    ]);
    for a in events {
        table.row(vec![
            a.time.map_or("-".into(), show_time),
            or_dash(a.cluster.as_deref()),
            or_dash(a.user.as_deref()),
            or_dash(a.impersonated_user.as_deref()),
            a.verb.clone(),
            a.request_uri.clone(),
            show_code(a.code),
            a.audit_id.clone(),
        ]);
    }
    table
}

/// A `--kube-audit` argument read as `CLUSTER=PATH`, or a bare `PATH` (of no cluster named).
/// A cluster name has no `/`, so a path holding `=` after a folder stays a path.
pub fn cluster_log(given: &str) -> (Option<&str>, &str) {
    match given.split_once('=') {
        Some((cluster, path)) if !cluster.is_empty() && !cluster.contains('/') => {
            (Some(cluster), path)
        }
        _ => (None, given),
    }
}
