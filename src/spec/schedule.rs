//! `schedule:` in a job: when it runs and for which logical date (fire times are
//! computed by `crate::schedule::cron`).
//!
//! ```yaml
//! schedule:
//!   cron: "0 2 * * *"          # crontab: minute hour day-of-month month day-of-week (or @daily …)
//!   timezone: Europe/Berlin    # IANA zone the expression is read in (default UTC)
//!   ds_offset_days: -1         # logical date = fire date + this (default -1: yesterday's data)
//!   catchup: false             # run missed fires when the scheduler starts (default false)
//!   max_catchup: 7             # at most this many of them, the latest (default 7)
//! ```
//!
//! Expressions follow Vixie cron (as system cron and Airflow read them): lists,
//! ranges, steps, month and weekday names, 0 or 7 for Sunday, and a day-of-month
//! and day-of-week that are both restricted match when either does. A 6-field form
//! with seconds first is accepted too (for tests and sub-minute schedules).

use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// When a job runs.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ScheduleSpec {
    /// Crontab expression: 5 fields (minute hour day-of-month month day-of-week), an
    /// `@hourly`/`@daily`/`@weekly`/`@monthly`/`@yearly` nickname, or 6 fields with
    /// seconds first.
    pub cron: String,
    /// IANA time zone the expression is read in. Default `UTC`.
    #[serde(default = "default_timezone")]
    pub timezone: String,
    /// The logical date (`ds`) of a fire is its date in `timezone` plus this many days.
    /// Default -1: a run at 02:00 scores yesterday.
    #[serde(default = "default_ds_offset")]
    pub ds_offset_days: i64,
    /// Run fires missed while the scheduler was down when it starts. Default false.
    #[serde(default)]
    pub catchup: bool,
    /// With `catchup`, run at most this many missed fires (the latest). Default 7.
    #[serde(default = "default_max_catchup")]
    pub max_catchup: usize,
}

fn default_timezone() -> String {
    "UTC".into()
}
fn default_ds_offset() -> i64 {
    -1
}
fn default_max_catchup() -> usize {
    7
}

impl ScheduleSpec {
    /// Pure checks: the expression parses and the zone exists.
    pub fn validate(&self) -> std::result::Result<(), String> {
        self.parse().map(|_| ())
    }

    /// Parses the expression and the zone (see `crate::schedule::cron::Schedule`,
    /// which computes fire times from them).
    pub fn parse(&self) -> std::result::Result<(croner::Cron, Tz), String> {
        let fields = self.cron.split_whitespace().count();
        if !self.cron.trim_start().starts_with('@') && !(5..=6).contains(&fields) {
            return Err(format!(
                "cron {:?} has {fields} fields; write 5 (minute hour day-of-month month day-of-week)",
                self.cron
            ));
        }
        let cron: croner::Cron = self
            .cron
            .parse()
            .map_err(|e| format!("cron {:?}: {e}", self.cron))?;
        let tz: Tz = self.timezone.parse().map_err(|_| {
            format!(
                "timezone {:?} is not an IANA time zone (e.g. UTC, Europe/Berlin)",
                self.timezone
            )
        })?;
        if self.max_catchup == 0 && self.catchup {
            return Err("max_catchup must be at least 1 with catchup: true".into());
        }
        Ok((cron, tz))
    }
}

/// The dates of a command's `--date`, or `--from` and `--to` (inclusive).
pub fn dates(
    date: Option<chrono::NaiveDate>,
    from: Option<chrono::NaiveDate>,
    to: Option<chrono::NaiveDate>,
) -> crate::error::Result<Vec<chrono::NaiveDate>> {
    match (date, from, to) {
        (Some(d), _, _) => Ok(vec![d]),
        (None, Some(f), Some(t)) => date_range(f, t),
        _ => Err(crate::error::Error::usage(
            "give --date DATE, or --from DATE --to DATE",
        )),
    }
}

/// The dates `--from`..=`--to` (backfills, shadow runs); at most ten years.
pub fn date_range(
    from: chrono::NaiveDate,
    to: chrono::NaiveDate,
) -> crate::error::Result<Vec<chrono::NaiveDate>> {
    use crate::error::Error;
    if to < from {
        return Err(Error::usage(format!("--to {to} is before --from {from}")));
    }
    let days = (to - from).num_days();
    if days > 3660 {
        return Err(Error::usage(
            "a date range covers at most ten years of dates",
        ));
    }
    Ok((0..=days)
        .map(|d| from + chrono::Duration::days(d))
        .collect())
}
