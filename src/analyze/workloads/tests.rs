//! Tests of the workload analyzers: each failure k8sgpt reports, built as the API server would
//! show it, and a healthy object that yields nothing; the cron schedule check, by example and by
//! property.

mod controllers;
mod pods;

use proptest::prelude::*;
use serde_json::{Value, json};

use super::schedule::{self, ScheduleError, is_duration};
use crate::analyze::{Finding, Snapshot, Source};

type Analyzer = fn(&Snapshot, &mut Vec<Finding>);

const NS: &str = "shop";

/// A snapshot holding `objects`, each source read everywhere.
fn snapshot(objects: &[(Source, Vec<Value>)]) -> Snapshot {
    let mut snapshot = Snapshot::default();
    for (source, items) in objects {
        snapshot.add_values(*source, items);
    }
    assert_eq!(snapshot.unreadable, 0, "every test object parses");
    snapshot
}

fn findings(analyzer: Analyzer, snapshot: &Snapshot) -> Vec<Finding> {
    let mut out = Vec::new();
    analyzer(snapshot, &mut out);
    out
}

/// The one finding `analyzer` reports, checked to be about `kind` `shop/name`.
fn only(analyzer: Analyzer, snapshot: &Snapshot, kind: &str, name: &str) -> Finding {
    let mut found = findings(analyzer, snapshot);
    assert_eq!(found.len(), 1, "one finding expected: {found:#?}");
    let finding = found.remove(0);
    assert_eq!(finding.kind, kind);
    assert_eq!(finding.name, format!("{NS}/{name}"));
    finding
}

/// Asserts that some failure of `finding` says every one of `fragments`.
fn assert_says(finding: &Finding, fragments: &[&str]) {
    let says = |text: &str| fragments.iter().all(|f| text.contains(f));
    assert!(
        finding.failures.iter().any(|f| says(&f.text)),
        "no failure says all of {fragments:?}: {:#?}",
        finding.failures
    );
}

fn assert_silent(analyzer: Analyzer, snapshot: &Snapshot) {
    let found = findings(analyzer, snapshot);
    assert!(found.is_empty(), "nothing expected: {found:#?}");
}

fn meta(name: &str) -> Value {
    json!({"name": name, "namespace": NS, "uid": format!("uid-{name}")})
}

/// Metadata of an object controlled by `kind/owner`.
fn owned(name: &str, kind: &str, owner: &str) -> Value {
    let mut meta = meta(name);
    meta["ownerReferences"] = json!([{
        "apiVersion": "apps/v1", "kind": kind, "name": owner,
        "uid": format!("uid-{owner}"), "controller": true,
    }]);
    meta
}

/// A Warning event about `kind/name`, last seen `seconds` after the epoch of the tests.
fn warning(kind: &str, name: &str, reason: &str, message: &str, seconds: u32) -> Value {
    json!({
        "metadata": meta(&format!("{name}.{reason}.{seconds}")),
        "involvedObject": {"kind": kind, "name": name, "namespace": NS},
        "reason": reason,
        "message": message,
        "type": "Warning",
        "lastTimestamp": format!("2026-01-01T00:{:02}:{:02}Z", seconds / 60, seconds % 60),
    })
}

#[test]
fn schedules_kubernetes_accepts_pass() {
    for schedule in [
        "* * * * *",
        "*/5 * * * *",
        "0 0 1 1 *",
        "0-30/10 9-17 * JAN-jun MON-FRI",
        "0 12 * * sun,sat",
        "5/15 * * * *",
        "? * * * ?",
        "0 0 31 12 6",
        "*-5 * * * *",
        "\t0  3\t* * *  ",
        "@yearly",
        "@annually",
        "@monthly",
        "@weekly",
        "@daily",
        "@midnight",
        "@hourly",
        "@every 1h30m",
        "@every 1.5s",
        "@every 0",
        "@every 250ms",
        "TZ=Europe/Paris 0 3 * * *",
        "CRON_TZ=Etc/GMT+5 @daily",
        "TZ=UTC   30 2 * * 1-5",
    ] {
        assert_eq!(schedule::check(schedule), Ok(()), "{schedule:?}");
    }
}

#[test]
fn schedules_kubernetes_refuses_fail_with_the_reason() {
    let field = |field, part: &str, why| ScheduleError::Field {
        field,
        part: part.to_owned(),
        why,
    };
    for (schedule, error) in [
        ("", ScheduleError::Empty),
        ("   ", ScheduleError::Fields(0)),
        ("* * * *", ScheduleError::Fields(4)),
        ("0 0 * * * *", ScheduleError::Fields(6)),
        ("60 * * * *", field("minute", "60", "which is out of range")),
        ("* 24 * * *", field("hour", "24", "which is out of range")),
        (
            "* * 0 * *",
            field("day of month", "0", "which is out of range"),
        ),
        ("* * * 13 *", field("month", "13", "which is out of range")),
        (
            "* * * * 7",
            field("day of week", "7", "which is out of range"),
        ),
        (
            "* * * * MON-SUN",
            field("day of week", "MON-SUN", "whose range runs backwards"),
        ),
        (
            "5-1 * * * *",
            field("minute", "5-1", "whose range runs backwards"),
        ),
        (
            "*/0 * * * *",
            field("minute", "*/0", "whose step is not positive"),
        ),
        (
            "*/x * * * *",
            field("minute", "*/x", "whose step is not a number"),
        ),
        (
            "1/2/3 * * * *",
            field("minute", "1/2/3", "whose step is not a number"),
        ),
        (
            "1,,2 * * * *",
            field("minute", "", "which is not a number or name"),
        ),
        (
            "1-2-3 * * * *",
            field("minute", "1-2-3", "which is not a number or name"),
        ),
        (
            "* * * JANUARY *",
            field("month", "JANUARY", "which is not a number or name"),
        ),
        (
            "-1 * * * *",
            field("minute", "-1", "which is not a number or name"),
        ),
        ("@every", ScheduleError::Macro("@every".to_owned())),
        ("@every 1x", ScheduleError::Duration("1x".to_owned())),
        ("@every 1h ", ScheduleError::Duration("1h".to_owned())),
        (
            "@fortnightly",
            ScheduleError::Macro("@fortnightly".to_owned()),
        ),
        ("@daily ", ScheduleError::Macro("@daily".to_owned())),
        ("@DAILY", ScheduleError::Macro("@DAILY".to_owned())),
        (" @daily", ScheduleError::Fields(1)),
        ("TZ=UTC", ScheduleError::NoScheduleAfterZone),
        (
            "TZ=Bad;Zone 0 3 * * *",
            ScheduleError::Zone("Bad;Zone".to_owned()),
        ),
    ] {
        assert_eq!(schedule::check(schedule), Err(error), "{schedule:?}");
    }
}

#[test]
fn go_durations_are_read_as_go_reads_them() {
    for good in [
        "0",
        "1h",
        "-1.5h",
        "+90s",
        "1h2m3s4ms5us6ns",
        "3µs",
        "3μs",
        ".5m",
        "1.m",
    ] {
        assert!(is_duration(good), "{good:?}");
    }
    for bad in [
        "",
        "-",
        "1",
        "h",
        ".",
        "1d",
        "1 h",
        "1h-2m",
        "9999999999h",
        "1.2.3s",
    ] {
        assert!(!is_duration(bad), "{bad:?}");
    }
}

/// One comma-separated item of a field in `min..=max`, as cron writers write them.
fn cron_item(min: i64, max: i64) -> impl Strategy<Value = String> {
    prop_oneof![
        Just("*".to_owned()),
        (min..=max).prop_map(|v| v.to_string()),
        (min..=max, min..=max).prop_map(|(a, b)| format!("{}-{}", a.min(b), a.max(b))),
        (1i64..=100).prop_map(|step| format!("*/{step}")),
        (min..=max, min..=max, 1i64..=10).prop_map(|(a, b, step)| format!(
            "{}-{}/{step}",
            a.min(b),
            a.max(b)
        )),
    ]
}

fn cron_field(min: i64, max: i64) -> impl Strategy<Value = String> {
    prop::collection::vec(cron_item(min, max), 1..4).prop_map(|items| items.join(","))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn the_schedule_check_never_panics(junk in "(?s).{0,64}") {
        let _ = schedule::check(&junk);
        let _ = schedule::check(&format!("TZ={junk}"));
        let _ = schedule::check(&format!("@every {junk}"));
    }

    #[test]
    fn schedule_like_junk_never_panics(junk in "[0-9*?/,a-zA-Z@= -]{0,40}") {
        let _ = schedule::check(&junk);
    }

    #[test]
    fn well_formed_schedules_pass(
        fields in (cron_field(0, 59), cron_field(0, 23), cron_field(1, 31), cron_field(1, 12), cron_field(0, 6)),
        zone in prop_oneof![Just(""), Just("TZ=UTC "), Just("CRON_TZ=America/New_York ")],
    ) {
        let (minute, hour, day, month, weekday) = fields;
        let schedule = format!("{zone}{minute} {hour} {day} {month} {weekday}");
        prop_assert_eq!(schedule::check(&schedule), Ok(()), "{}", schedule);
    }

    #[test]
    fn minutes_out_of_range_fail(minute in 60i64..100_000, rest in "(\\* ){3}\\*") {
        let schedule = format!("{minute} {rest}");
        prop_assert!(schedule::check(&schedule).is_err(), "{}", schedule);
    }

    #[test]
    fn go_style_durations_pass(parts in prop::collection::vec((0u32..1000, prop_oneof![Just("h"), Just("m"), Just("s"), Just("ms")]), 1..4)) {
        let every: String = parts.iter().map(|(n, unit)| format!("{n}{unit}")).collect();
        prop_assert_eq!(schedule::check(&format!("@every {every}")), Ok(()));
    }
}

#[test]
fn objects_with_every_field_missing_do_not_panic() {
    let bare = [
        json!({}),
        json!({"metadata": {}, "spec": {}, "status": {}}),
        json!({"metadata": meta("x"), "spec": {"template": {}}, "status": {"conditions": [{}]}}),
    ];
    let mut snapshot = Snapshot::default();
    for source in [
        Source::Pods,
        Source::Deployments,
        Source::ReplicaSets,
        Source::StatefulSets,
        Source::DaemonSets,
        Source::Jobs,
        Source::CronJobs,
        Source::HorizontalPodAutoscalers,
        Source::PodDisruptionBudgets,
        Source::Services,
        Source::StorageClasses,
        Source::Secrets,
    ] {
        snapshot.add_values(source, &bare);
    }
    snapshot.logs.insert(
        (String::new(), String::new(), String::new()),
        "error\n".to_owned(),
    );
    let analyzers: [Analyzer; 10] = [
        super::pod,
        super::deployment,
        super::replica_set,
        super::stateful_set,
        super::daemon_set,
        super::job,
        super::cron_job,
        super::hpa,
        super::pdb,
        super::log,
    ];
    for analyzer in analyzers {
        let _ = findings(analyzer, &snapshot);
    }
}
