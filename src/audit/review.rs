//! Reads kubegate's audit logs back for people: filters records, merges several files in time
//! order, counts calls and refusals ([`stats`]), and pairs each API request with the API
//! server's own audit event ([`join`]). `kubegate audit query|stats|join` is the command layer.
//!
//! # Reading
//!
//! A log is JSON lines. Only lines of `"kind":"Event"` are records; lines of any other kind
//! (checkpoints of the hash chain, and kinds yet to come) are passed over without a word, and
//! fields this reader does not know (`seq`, `prevHash`, ...) are ignored. A line that is not
//! JSON (a last line cut short by a crash), or an `Event` without the shape of a record, is
//! skipped and reported as a [`Skipped`] naming its file and line: one bad line never stops a
//! review. A record may lack `user` (unauthenticated) and `decision` (refused before one).
//!
//! # Time
//!
//! A record's time is its `stageTimestamp`. `--since` is inclusive and `--until` exclusive.
//! Several files (rotated, or one per replica) are merged by time, a stable sort: records of
//! the same instant keep the order of their files as given, and of their lines. The records
//! that pass the filters are held in memory until printed.
//!
//! # Stages
//!
//! A call that changes the cluster is recorded twice: `RequestReceived` before it is sent, then
//! `ResponseComplete`. Reviews read `ResponseComplete` records unless asked otherwise, so that
//! each call counts once.
//!
//! # The namespace of a record
//!
//! A record is in namespace N when N is the namespace of a resource it was decided on
//! (`decision.resource`, each of `decision.resources`, and each `decision.later` decision
//! that allowed: a `Namespace::"<cluster>/N"`, or a namespaced
//! `Object::"<cluster>/N/<Kind>/<name>"`), the namespace its arguments name
//! (`arguments.namespace`), or the namespace of an API request it made (`kube[].uri` under
//! `/api/<v>/namespaces/N` or `/apis/<group>/<v>/namespaces/N`, the namespace object itself
//! included). A record can be in several; a cluster-wide call that named none is in none. The
//! rule assumes cluster names without `/`, as Kubernetes names have none.
//!
//! # Action groups
//!
//! `--group read` matches the records whose action (`decision.action`, or for a call refused
//! before a decision, `mcp.tool`) is in `Action::"read"` in kubegate's own Cedar schema
//! ([`crate::policy::schema`]), so a group means here exactly what it means in a policy.

pub mod join;
mod record;
pub mod stats;
mod table;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::{self, BufRead};
use std::path::PathBuf;
use std::sync::Arc;

use jiff::Timestamp;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::audit::Outcome;

pub use join::{ApiServerEvents, Join, KubeEvent, Window};
pub use record::{
    Record, RecordDecision, RecordKubeCall, RecordMcp, RecordSubDecision, RecordUser,
    namespace_of_uid, namespace_of_uri,
};
pub use stats::Stats;
pub use table::Table;

/// The stage each call has once, and that reviews read by default.
pub const RESPONSE_COMPLETE: &str = "ResponseComplete";
/// The stage written before a call that changes the cluster is sent.
pub const REQUEST_RECEIVED: &str = "RequestReceived";

/// Why a review could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error("cannot read the audit log {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot read standard input")]
    Stdin(#[source] io::Error),
    #[error("cannot read the action groups of kubegate's Cedar schema: {0}")]
    Schema(String),
    #[error("no action group `{given}` in kubegate's Cedar schema; it has: {known}")]
    UnknownGroup { given: String, known: String },
    #[error("no outcome `{given}`; a record's outcome is one of: {known}")]
    UnknownOutcome { given: String, known: String },
    #[error(
        "`{given}` is neither an RFC 3339 time (2026-01-31T09:00:00Z) nor a duration back from \
         now (`1h`, `30m`, `2d`)"
    )]
    Time { given: String },
}

/// Where log lines come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    File(PathBuf),
    Stdin,
}

impl Source {
    /// The files named, `-` meaning standard input; none at all, standard input.
    pub fn all(paths: &[PathBuf]) -> Vec<Source> {
        if paths.is_empty() {
            return vec![Source::Stdin];
        }
        paths
            .iter()
            .map(|p| match p.to_str() {
                Some("-") => Source::Stdin,
                _ => Source::File(p.clone()),
            })
            .collect()
    }

    /// Reads every line, handing each (numbered from 1) to `line`.
    fn each_line(&self, line: impl FnMut(usize, &[u8])) -> Result<(), ReviewError> {
        match self {
            Source::File(path) => {
                let read = |source| ReviewError::Read {
                    path: path.clone(),
                    source,
                };
                let file = std::fs::File::open(path).map_err(read)?;
                each_line(io::BufReader::new(file), line).map_err(read)
            }
            Source::Stdin => each_line(io::stdin().lock(), line).map_err(ReviewError::Stdin),
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::File(path) => write!(f, "{}", path.display()),
            Source::Stdin => f.write_str("<stdin>"),
        }
    }
}

/// Hands each line (without its line end) of `reader` to `line`, numbered from 1. Lines need
/// not be UTF-8: judging them is the parser's job.
pub fn each_line<R: BufRead>(mut reader: R, mut line: impl FnMut(usize, &[u8])) -> io::Result<()> {
    let mut buffer = Vec::new();
    let mut number = 0;
    loop {
        buffer.clear();
        if reader.read_until(b'\n', &mut buffer)? == 0 {
            return Ok(());
        }
        number += 1;
        let text = buffer.strip_suffix(b"\n").unwrap_or(&buffer);
        line(number, text.strip_suffix(b"\r").unwrap_or(text));
    }
}

/// Where a line was read: its file and line number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub source: Arc<str>,
    pub line: usize,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.source, self.line)
    }
}

/// A line that was not read as a record, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub origin: Origin,
    pub reason: String,
}

impl fmt::Display for Skipped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.origin, self.reason)
    }
}

/// Parses one log line as an `Event` of shape `T`: `Ok(None)` for a blank line or a line of
/// another kind, `Err` (why) for a line that is not a JSON object or an `Event` not shaped as
/// `T`. Never panics, whatever the bytes.
pub fn parse_line<T: DeserializeOwned>(bytes: &[u8]) -> Result<Option<T>, String> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let value: Value = serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
    let Value::Object(fields) = &value else {
        return Err("not a JSON object".into());
    };
    if fields.get("kind").and_then(Value::as_str) != Some("Event") {
        return Ok(None);
    }
    T::deserialize(value)
        .map(Some)
        .map_err(|e| format!("an Event without the expected shape: {e}"))
}

/// Reads the `Event`s of shape `T` from every source in turn, handing each to `event` with
/// its origin and line; the lines that could not be read are added to `skipped`.
pub fn scan<T: DeserializeOwned>(
    sources: &[Source],
    skipped: &mut Vec<Skipped>,
    mut event: impl FnMut(Origin, &str, T),
) -> Result<(), ReviewError> {
    for source in sources {
        let name: Arc<str> = source.to_string().into();
        source.each_line(|number, bytes| {
            let origin = Origin {
                source: name.clone(),
                line: number,
            };
            let parsed = std::str::from_utf8(bytes)
                .map_err(|e| format!("not UTF-8: {e}"))
                .and_then(|text| Ok((text, parse_line::<T>(bytes)?)));
            match parsed {
                Ok((text, Some(parsed))) => event(origin, text, parsed),
                Ok((_, None)) => {}
                Err(reason) => skipped.push(Skipped { origin, reason }),
            }
        })?;
    }
    Ok(())
}

/// A record read from a log, with where it was read and its line exactly as written.
#[derive(Debug, Clone)]
pub struct Entry {
    pub origin: Origin,
    pub line: String,
    pub record: Record,
}

/// The records wanted from logs, and the lines that could not be read.
#[derive(Debug, Default)]
pub struct Reading {
    /// In time order.
    pub entries: Vec<Entry>,
    pub skipped: Vec<Skipped>,
}

/// Reads the records of every source that pass `filter`, merged in time order.
pub fn read(sources: &[Source], filter: &Filter) -> Result<Reading, ReviewError> {
    let mut reading = Reading::default();
    scan(
        sources,
        &mut reading.skipped,
        |origin, line, record: Record| {
            if filter.matches(&record) {
                reading.entries.push(Entry {
                    origin,
                    line: line.to_owned(),
                    record,
                });
            }
        },
    )?;
    merge(&mut reading.entries);
    Ok(reading)
}

/// Puts records of several files in time order; records of the same instant keep their order.
pub fn merge(entries: &mut [Entry]) {
    entries.sort_by_key(|e| e.record.stage_timestamp);
}

/// Which records a review keeps: each condition given must hold.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub user: Option<String>,
    pub tenant: Option<String>,
    pub tool: Option<String>,
    pub group: Option<ActionGroup>,
    /// `Some(true)`: allowed by the policy; `Some(false)`: refused by it.
    pub allowed: Option<bool>,
    pub namespace: Option<String>,
    /// The cluster the call went to.
    pub cluster: Option<String>,
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
    pub outcome: Option<String>,
    /// `None`: every stage.
    pub stage: Option<String>,
}

impl Filter {
    /// Whether a record passes.
    pub fn matches(&self, record: &Record) -> bool {
        let is = |wanted: &Option<String>, actual: Option<&str>| {
            wanted.as_deref().is_none_or(|w| actual == Some(w))
        };
        is(&self.user, record.username())
            && is(&self.tenant, record.tenant())
            && is(&self.tool, record.mcp.tool.as_deref())
            && is(&self.cluster, record.cluster.as_deref())
            && is(&self.outcome, Some(&record.outcome))
            && is(&self.stage, Some(&record.stage))
            && self.in_time(record.stage_timestamp)
            && self.allowed.is_none_or(|allowed| {
                record
                    .decision
                    .as_ref()
                    .is_some_and(|d| d.allowed == allowed)
            })
            && self
                .group
                .as_ref()
                .is_none_or(|group| record.action().is_some_and(|a| group.actions.contains(a)))
            && self
                .namespace
                .as_deref()
                .is_none_or(|ns| record.namespaces().contains(ns))
    }

    /// Whether a time is in `[since, until)`.
    pub fn in_time(&self, time: Timestamp) -> bool {
        self.since.is_none_or(|since| time >= since) && self.until.is_none_or(|until| time < until)
    }
}

/// A Cedar action group of kubegate's schema and the actions in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionGroup {
    pub name: String,
    pub actions: BTreeSet<String>,
}

impl ActionGroup {
    /// The group named so in kubegate's Cedar schema (`read`, `write`, `destructive`), with
    /// every action in it, as Cedar's `action in Action::"<name>"` sees them.
    pub fn of_schema(name: &str) -> Result<ActionGroup, ReviewError> {
        let mut groups = action_groups()?;
        groups
            .remove(name)
            .map(|actions| ActionGroup {
                name: name.to_owned(),
                actions,
            })
            .ok_or_else(|| ReviewError::UnknownGroup {
                given: name.to_owned(),
                known: groups.into_keys().collect::<Vec<_>>().join(", "),
            })
    }
}

/// Every action group of kubegate's Cedar schema, with the actions in each.
fn action_groups() -> Result<BTreeMap<String, BTreeSet<String>>, ReviewError> {
    let schema = crate::policy::schema::schema().map_err(ReviewError::Schema)?;
    let actions = schema
        .action_entities()
        .map_err(|e| ReviewError::Schema(e.to_string()))?;
    let mut groups: BTreeMap<String, BTreeSet<String>> = schema
        .action_groups()
        .map(|group| (group.id().unescaped().to_owned(), BTreeSet::new()))
        .collect();
    for action in actions.iter() {
        let uid = action.uid();
        for group in actions.ancestors(&uid).into_iter().flatten() {
            if let Some(members) = groups.get_mut(group.id().unescaped()) {
                members.insert(uid.id().unescaped().to_owned());
            }
        }
    }
    Ok(groups)
}

/// Checks an outcome's name against those kubegate writes.
pub fn outcome(name: &str) -> Result<String, ReviewError> {
    let known: Vec<String> = [
        Outcome::Success,
        Outcome::Denied,
        Outcome::Unauthenticated,
        Outcome::Throttled,
        Outcome::Cancelled,
        Outcome::Invalid,
        Outcome::Error,
    ]
    .iter()
    .filter_map(|o| serde_json::to_value(o).ok()?.as_str().map(str::to_owned))
    .collect();
    if known.iter().any(|k| k == name) {
        Ok(name.to_owned())
    } else {
        Err(ReviewError::UnknownOutcome {
            given: name.to_owned(),
            known: known.join(", "),
        })
    }
}

/// Reads a time bound: an RFC 3339 time, or a duration back from `now` (`1h`, `30m`, `2d`,
/// `1h30m`, `2 days ago`; calendar units counted in UTC).
pub fn time_bound(text: &str, now: Timestamp) -> Result<Timestamp, ReviewError> {
    if let Ok(time) = text.parse::<Timestamp>() {
        return Ok(time);
    }
    let unreadable = || ReviewError::Time {
        given: text.to_owned(),
    };
    let span: jiff::Span = text.trim().parse().map_err(|_| unreadable())?;
    now.to_zoned(jiff::tz::TimeZone::UTC)
        .checked_sub(span.abs())
        .map(|then| then.timestamp())
        .map_err(|_| unreadable())
}

/// A time as tables show it: UTC, to the millisecond.
pub fn show_time(time: Timestamp) -> String {
    time.round(jiff::Unit::Millisecond)
        .unwrap_or(time)
        .to_string()
}

/// The records as a table for people: time, caller, call, decision, outcome, API status
/// codes and audit ID.
pub fn query_table(entries: &[Entry]) -> Table {
    let mut table = Table::new(&[
        "TIME", "USER", "TENANT", "CALL", "DECISION", "OUTCOME", "KUBE", "AUDIT ID",
    ]);
    for Entry { record, .. } in entries {
        let call = match (&record.mcp.method, &record.mcp.tool) {
            (Some(method), Some(tool)) => format!("{method} {tool}"),
            (Some(method), None) => method.clone(),
            (None, _) => "-".into(),
        };
        let decision = match &record.decision {
            None => "-".to_owned(),
            Some(d) if d.policies.is_empty() => verdict(d.allowed).to_owned(),
            Some(d) => format!("{} by {}", verdict(d.allowed), d.policies.join(", ")),
        };
        let codes: Vec<String> = record.kube.iter().map(|c| c.code.to_string()).collect();
        table.row(vec![
            show_time(record.stage_timestamp),
            record.username().unwrap_or("-").to_owned(),
            record.tenant().unwrap_or("-").to_owned(),
            call,
            decision,
            record.outcome.clone(),
            if codes.is_empty() {
                "-".into()
            } else {
                codes.join(",")
            },
            record.audit_id.clone(),
        ]);
    }
    table
}

fn verdict(allowed: bool) -> &'static str {
    if allowed { "allowed" } else { "denied" }
}

#[cfg(test)]
mod tests;
