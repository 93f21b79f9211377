//! Counts the calls and denials of a period per user, per tenant and per tool, and ranks the
//! callers kubegate refused most (denied, unauthenticated or throttled), for `kubegate audit
//! stats`.
//!
//! A refused caller is named by username, or, when the request carried no valid token, by its
//! source address. An unauthenticated record also counts the requests from its address that
//! were left unrecorded before it (`unrecordedBefore`: a flood is counted, not written line by
//! line).

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::Serialize;

use super::{Entry, Record, Table, show_time};

/// What a period's records add up to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    /// How many records were counted.
    pub records: u64,
    /// The time of the first and of the last record counted.
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
    /// Authenticated calls, per username.
    pub by_user: Vec<Tally>,
    /// Authenticated calls, per tenant.
    pub by_tenant: Vec<Tally>,
    /// Calls of a tool, per tool.
    pub by_tool: Vec<Tally>,
    /// The callers refused most, most refused first.
    pub top_refused: Vec<Refused>,
}

/// The calls of one user, tenant or tool, and how many of them the policy denied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tally {
    pub name: String,
    pub calls: u64,
    pub denied: u64,
}

/// A caller kubegate refused, and how often, by reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refused {
    pub caller: RefusedCaller,
    /// All refusals: denied + unauthenticated + throttled.
    pub refused: u64,
    pub denied: u64,
    pub unauthenticated: u64,
    pub throttled: u64,
}

/// Who was refused: a user, or (without a valid token) a source address.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum RefusedCaller {
    User(String),
    SourceIp(String),
}

impl Stats {
    /// Counts the records, keeping the `top` most refused callers.
    pub fn of(entries: &[Entry], top: usize) -> Stats {
        let mut by_user = Tallies::default();
        let mut by_tenant = Tallies::default();
        let mut by_tool = Tallies::default();
        let mut refused: BTreeMap<RefusedCaller, Refused> = BTreeMap::new();
        for Entry { record, .. } in entries {
            let denied = record.denied();
            if let Some(user) = &record.user {
                by_user.add(&user.username, denied);
                by_tenant.add(&user.tenant, denied);
            }
            if let Some(tool) = &record.mcp.tool {
                by_tool.add(tool, denied);
            }
            if let Some(caller) = refused_caller(record) {
                refused
                    .entry(caller.clone())
                    .or_insert_with(|| Refused::new(caller))
                    .add(record);
            }
        }
        let mut top_refused: Vec<Refused> = refused.into_values().collect();
        top_refused.sort_by(|a, b| b.refused.cmp(&a.refused).then(a.caller.cmp(&b.caller)));
        top_refused.truncate(top);
        Stats {
            records: entries.len() as u64,
            from: entries.iter().map(|e| e.record.stage_timestamp).min(),
            to: entries.iter().map(|e| e.record.stage_timestamp).max(),
            by_user: by_user.ranked(),
            by_tenant: by_tenant.ranked(),
            by_tool: by_tool.ranked(),
            top_refused,
        }
    }

    /// One line for people: how many records, over which period.
    pub fn summary(&self) -> String {
        match (self.from, self.to) {
            (Some(from), Some(to)) => format!(
                "{} records from {} to {}",
                self.records,
                show_time(from),
                show_time(to)
            ),
            _ => format!("{} records", self.records),
        }
    }

    /// The counts as tables for people, each under a title.
    pub fn tables(&self) -> Vec<(&'static str, Table)> {
        let mut refused = Table::new(&[
            "CALLER",
            "REFUSED",
            "DENIED",
            "UNAUTHENTICATED",
            "THROTTLED",
        ]);
        for r in &self.top_refused {
            let caller = match &r.caller {
                RefusedCaller::User(user) => user.clone(),
                RefusedCaller::SourceIp(ip) => format!("{ip} (no valid token)"),
            };
            let counts = [r.refused, r.denied, r.unauthenticated, r.throttled];
            refused.row(
                std::iter::once(caller)
                    .chain(counts.iter().map(u64::to_string))
                    .collect(),
            );
        }
        vec![
            ("Per user", tally_table("USER", &self.by_user)),
            ("Per tenant", tally_table("TENANT", &self.by_tenant)),
            ("Per tool", tally_table("TOOL", &self.by_tool)),
            ("Most refused callers", refused),
        ]
    }
}

fn tally_table(what: &str, tallies: &[Tally]) -> Table {
    let mut table = Table::new(&[what, "CALLS", "DENIED"]);
    for t in tallies {
        table.row(vec![
            t.name.clone(),
            t.calls.to_string(),
            t.denied.to_string(),
        ]);
    }
    table
}

/// Who a refused record's refusal counts against; `None` if it was not refused.
fn refused_caller(record: &Record) -> Option<RefusedCaller> {
    let refused =
        record.denied() || matches!(record.outcome.as_str(), "unauthenticated" | "throttled");
    if !refused {
        return None;
    }
    Some(match (&record.user, record.source_ips.first()) {
        (Some(user), _) => RefusedCaller::User(user.username.clone()),
        (None, Some(ip)) => RefusedCaller::SourceIp(ip.clone()),
        (None, None) => RefusedCaller::SourceIp("unknown".into()),
    })
}

impl Refused {
    fn new(caller: RefusedCaller) -> Refused {
        Refused {
            caller,
            refused: 0,
            denied: 0,
            unauthenticated: 0,
            throttled: 0,
        }
    }

    fn add(&mut self, record: &Record) {
        // An unauthenticated record stands for itself and those left out before it.
        let times = 1 + record.unrecorded_before.unwrap_or(0);
        let count = if record.denied() {
            &mut self.denied
        } else if record.outcome == "unauthenticated" {
            &mut self.unauthenticated
        } else {
            &mut self.throttled
        };
        *count += times;
        self.refused += times;
    }
}

/// Calls and denials per name.
#[derive(Default)]
struct Tallies(BTreeMap<String, (u64, u64)>);

impl Tallies {
    fn add(&mut self, name: &str, denied: bool) {
        let (calls, denials) = self.0.entry(name.to_owned()).or_default();
        *calls += 1;
        *denials += u64::from(denied);
    }

    /// Most calls first; names in order among equals.
    fn ranked(self) -> Vec<Tally> {
        let mut tallies: Vec<Tally> = self
            .0
            .into_iter()
            .map(|(name, (calls, denied))| Tally {
                name,
                calls,
                denied,
            })
            .collect();
        tallies.sort_by(|a, b| b.calls.cmp(&a.calls).then_with(|| a.name.cmp(&b.name)));
        tallies
    }
}
