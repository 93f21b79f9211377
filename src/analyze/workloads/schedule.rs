//! Checks CronJob schedules as the cron library Kubernetes uses (robfig/cron) parses them.

use super::clip;

/// Why a CronJob's schedule cannot run, in the terms of the cron parser Kubernetes uses.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub(super) enum ScheduleError {
    #[error("it is empty")]
    Empty,
    #[error("it names a time zone and no schedule after it")]
    NoScheduleAfterZone,
    #[error("{0:?} is not a time zone name")]
    Zone(String),
    #[error(
        "{0:?} is not one of @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly or @every <duration>"
    )]
    Macro(String),
    #[error("{0:?} is not a duration such as 90s, 15m or 1h30m")]
    Duration(String),
    #[error("it has {0} fields, not 5 (minute, hour, day of month, month, day of week)")]
    Fields(usize),
    #[error("its {field} field has {part:?}, {why}")]
    Field {
        field: &'static str,
        part: String,
        why: &'static str,
    },
}

/// One field of a five-field schedule: its bounds and, for months and weekdays, the names that
/// stand for `min`, `min + 1`, ….
struct CronField {
    name: &'static str,
    min: i64,
    max: i64,
    names: &'static [&'static str],
}

const CRON_FIELDS: [CronField; 5] = [
    CronField {
        name: "minute",
        min: 0,
        max: 59,
        names: &[],
    },
    CronField {
        name: "hour",
        min: 0,
        max: 23,
        names: &[],
    },
    CronField {
        name: "day of month",
        min: 1,
        max: 31,
        names: &[],
    },
    CronField {
        name: "month",
        min: 1,
        max: 12,
        names: &[
            "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
        ],
    },
    CronField {
        name: "day of week",
        min: 0,
        max: 6,
        names: &["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
    },
];

/// Checks a CronJob schedule as Kubernetes' cron library (robfig/cron, standard parser) reads
/// it: an optional `TZ=zone ` or `CRON_TZ=zone ` prefix, then a macro (`@daily`, `@every 1h`, …)
/// or five fields of `*`/`?`, values, names, ranges, steps and lists.
///
/// # Caveat
/// A zone is checked for the characters zone names use, not against the zone database.
pub(super) fn check(schedule: &str) -> Result<(), ScheduleError> {
    if schedule.is_empty() {
        return Err(ScheduleError::Empty);
    }
    let mut spec = schedule;
    if let Some(zoned) = spec
        .strip_prefix("CRON_TZ=")
        .or_else(|| spec.strip_prefix("TZ="))
    {
        let (zone, rest) = zoned
            .split_once(' ')
            .ok_or(ScheduleError::NoScheduleAfterZone)?;
        let zone_char = |c: char| c.is_ascii_alphanumeric() || "/_+-".contains(c);
        if !zone.chars().all(zone_char) {
            return Err(ScheduleError::Zone(clip(zone, 40)));
        }
        spec = rest.trim();
    }
    if spec.starts_with('@') {
        return match spec {
            "@yearly" | "@annually" | "@monthly" | "@weekly" | "@daily" | "@midnight"
            | "@hourly" => Ok(()),
            _ => match spec.strip_prefix("@every ") {
                Some(every) if is_duration(every) => Ok(()),
                Some(every) => Err(ScheduleError::Duration(clip(every, 40))),
                None => Err(ScheduleError::Macro(clip(spec, 40))),
            },
        };
    }
    let fields: Vec<&str> = spec.split_whitespace().collect();
    if fields.len() != CRON_FIELDS.len() {
        return Err(ScheduleError::Fields(fields.len()));
    }
    CRON_FIELDS
        .iter()
        .zip(fields)
        .try_for_each(|(field, text)| check_field(field, text))
}

fn check_field(field: &CronField, text: &str) -> Result<(), ScheduleError> {
    for part in text.split(',') {
        let bad = |why| ScheduleError::Field {
            field: field.name,
            part: clip(part, 40),
            why,
        };
        let (range, step) = match part.split_once('/') {
            Some((range, step)) => (range, Some(step)),
            None => (part, None),
        };
        if let Some(step) = step {
            match step.parse::<i64>() {
                Ok(step) if step <= 0 => return Err(bad("whose step is not positive")),
                Ok(_) => {}
                Err(_) => return Err(bad("whose step is not a number")),
            }
        }
        let value = |text: &str| -> Result<i64, ScheduleError> {
            let by_name = field
                .names
                .iter()
                .position(|n| n.eq_ignore_ascii_case(text));
            let value = match by_name {
                Some(i) => field.min + i as i64,
                None => text
                    .parse::<i64>()
                    .map_err(|_| bad("which is not a number or name"))?,
            };
            if (field.min..=field.max).contains(&value) {
                Ok(value)
            } else {
                Err(bad("which is out of range"))
            }
        };
        let (start, end) = match range.split_once('-') {
            Some((start, end)) => (start, Some(end)),
            None => (range, None),
        };
        // As in robfig/cron, `*` (or `?`) takes the whole range, whatever follows a `-`.
        if start == "*" || start == "?" {
            continue;
        }
        let start = value(start)?;
        if let Some(end) = end
            && start > value(end)?
        {
            return Err(bad("whose range runs backwards"));
        }
    }
    Ok(())
}

/// Whether `text` is a Go duration (`time.ParseDuration`): `0`, or signed decimal numbers each
/// with a unit (`ns`, `us`, `µs`, `ms`, `s`, `m`, `h`), within ±2⁶³ nanoseconds.
pub(super) fn is_duration(text: &str) -> bool {
    let mut rest = text.strip_prefix(['-', '+']).unwrap_or(text);
    if rest == "0" {
        return true;
    }
    if rest.is_empty() {
        return false;
    }
    let mut total = 0f64;
    let number = |s: &str| s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    while !rest.is_empty() {
        let whole = number(rest);
        let (int, after) = rest.split_at(whole);
        let (frac, after) = match after.strip_prefix('.') {
            Some(after) => after.split_at(number(after)),
            None => ("", after),
        };
        if int.is_empty() && frac.is_empty() {
            return false;
        }
        let unit_len = after
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let nanos = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return false,
        };
        let int = if int.is_empty() { "0" } else { int };
        let value: f64 = format!("{int}.{frac}0").parse().unwrap_or(f64::INFINITY);
        total += value * nanos;
        rest = after;
    }
    total <= i64::MAX as f64
}
