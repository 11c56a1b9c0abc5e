//! `schedule:` in a job: when it runs and for which logical date.
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

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// When a job runs.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
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

/// A schedule ready to compute fire times.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub spec: ScheduleSpec,
    cron: croner::Cron,
    tz: Tz,
}

impl ScheduleSpec {
    /// Pure checks: the expression parses and the zone exists.
    pub fn validate(&self) -> std::result::Result<(), String> {
        self.compile().map(|_| ())
    }

    /// Parses the expression and zone.
    pub fn compile(&self) -> std::result::Result<Schedule, String> {
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
        Ok(Schedule {
            spec: self.clone(),
            cron,
            tz,
        })
    }
}

impl Schedule {
    /// The first fire strictly after `t`.
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron
            .find_next_occurrence(&t.with_timezone(&self.tz), false)
            .ok()
            .map(|d| d.with_timezone(&Utc))
    }

    /// Fires in `(after, until]`, oldest first, at most `limit` (the latest ones).
    pub fn fires_between(
        &self,
        after: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Vec<DateTime<Utc>> {
        let mut out = Vec::new();
        let mut t = after;
        while let Some(n) = self.next_after(t) {
            if n > until {
                break;
            }
            out.push(n);
            if out.len() > limit {
                out.remove(0);
            }
            t = n;
        }
        out
    }

    /// The logical date of a fire.
    pub fn ds(&self, fire: DateTime<Utc>) -> NaiveDate {
        fire.with_timezone(&self.tz).date_naive() + chrono::Duration::days(self.spec.ds_offset_days)
    }

    /// Crontab lines that run `command` (which reads the logical date from `$DS`) at
    /// this schedule: a `CRON_TZ=` line (cronie and Debian's cron read it; others use
    /// the system zone) and the entry. `%` is escaped, as crontab requires.
    pub fn crontab_line(&self, command: &str) -> Result<String, String> {
        let fields: Vec<&str> = self.spec.cron.split_whitespace().collect();
        if fields.len() == 6 {
            return Err(format!(
                "cron {:?} has seconds, which system cron cannot run",
                self.spec.cron
            ));
        }
        let days = self.spec.ds_offset_days;
        Ok(format!(
            "CRON_TZ={tz}\n{cron} DS=$(TZ={tz} date -d '{days} day' +\\%Y-\\%m-\\%d) && {command}",
            tz = self.spec.timezone,
            cron = self.spec.cron.trim()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(cron: &str, tz: &str) -> ScheduleSpec {
        ScheduleSpec {
            cron: cron.into(),
            timezone: tz.into(),
            ds_offset_days: -1,
            catchup: false,
            max_catchup: 7,
        }
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn daily_in_a_zone_fires_at_local_time_with_yesterdays_ds() {
        let s = spec("0 2 * * *", "Europe/Berlin").compile().unwrap();
        // 02:00 in Berlin is 01:00 UTC in winter.
        let n = s.next_after(at("2026-11-29T12:00:00Z")).unwrap();
        assert_eq!(n, at("2026-11-30T01:00:00Z"));
        assert_eq!(s.ds(n).to_string(), "2026-11-29");
        // Across the spring DST change: 2026-03-29 02:00 does not exist in Berlin.
        let n = s.next_after(at("2026-03-28T12:00:00Z")).unwrap();
        assert!(
            n >= at("2026-03-29T00:00:00Z") && n <= at("2026-03-30T01:00:00Z"),
            "{n}"
        );
    }

    #[test]
    fn vixie_rules_names_and_nicknames() {
        // Day-of-month and day-of-week both restricted: either matches (Vixie cron).
        let s = spec("0 0 1 * MON", "UTC").compile().unwrap();
        // 2026-12-01 is a Tuesday (the 1st); Monday 2026-11-30 comes first.
        assert_eq!(
            s.next_after(at("2026-11-29T00:00:00Z")).unwrap(),
            at("2026-11-30T00:00:00Z")
        );
        assert_eq!(
            s.next_after(at("2026-11-30T00:00:00Z")).unwrap(),
            at("2026-12-01T00:00:00Z")
        );
        let d = spec("@daily", "UTC").compile().unwrap();
        assert_eq!(
            d.next_after(at("2026-11-29T10:00:00Z")).unwrap(),
            at("2026-11-30T00:00:00Z")
        );
        // 0 and 7 are Sunday.
        for dow in ["0", "7", "SUN"] {
            let w = spec(&format!("0 3 * * {dow}"), "UTC").compile().unwrap();
            assert_eq!(
                w.next_after(at("2026-11-28T00:00:00Z")).unwrap(),
                at("2026-11-29T03:00:00Z")
            );
        }
    }

    #[test]
    fn catchup_window_keeps_the_latest_fires() {
        let s = spec("0 * * * *", "UTC").compile().unwrap();
        let f = s.fires_between(at("2026-11-29T00:30:00Z"), at("2026-11-29T10:00:00Z"), 3);
        assert_eq!(
            f,
            vec![
                at("2026-11-29T08:00:00Z"),
                at("2026-11-29T09:00:00Z"),
                at("2026-11-29T10:00:00Z")
            ]
        );
    }

    #[test]
    fn bad_expressions_and_zones_are_refused() {
        for (c, tz, needle) in [
            ("0 2 * *", "UTC", "4 fields"),
            ("61 2 * * *", "UTC", "cron"),
            ("0 2 * * *", "Mars/Olympus", "IANA"),
        ] {
            let e = spec(c, tz).validate().unwrap_err();
            assert!(e.contains(needle), "{c} {tz}: {e}");
        }
    }

    #[test]
    fn crontab_line_escapes_percent() {
        let s = spec("15 2 * * *", "Europe/Berlin").compile().unwrap();
        let l = s
            .crontab_line("flock -n /tmp/j.lock scorch run j.yaml --date \"$DS\"")
            .unwrap();
        assert_eq!(
            l,
            "CRON_TZ=Europe/Berlin\n15 2 * * * DS=$(TZ=Europe/Berlin date -d '-1 day' +\\%Y-\\%m-\\%d) \
             && flock -n /tmp/j.lock scorch run j.yaml --date \"$DS\""
        );
        assert!(
            spec("*/5 * * * * *", "UTC")
                .compile()
                .unwrap()
                .crontab_line("c")
                .is_err()
        );
    }
}
