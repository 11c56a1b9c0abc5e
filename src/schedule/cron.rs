//! Fire times of a job's `schedule:` (its fields and checks are
//! [`crate::spec::schedule::ScheduleSpec`]): when it runs and for which logical date.
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

use crate::spec::schedule::ScheduleSpec;

/// A schedule ready to compute fire times.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub spec: ScheduleSpec,
    cron: croner::Cron,
    tz: Tz,
}

impl Schedule {
    /// Parses the expression and zone of `spec`.
    pub fn compile(spec: &ScheduleSpec) -> std::result::Result<Schedule, String> {
        let (cron, tz) = spec.parse()?;
        Ok(Schedule {
            spec: spec.clone(),
            cron,
            tz,
        })
    }

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
        let s = Schedule::compile(&spec("0 2 * * *", "Europe/Berlin")).unwrap();
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
        let s = Schedule::compile(&spec("0 0 1 * MON", "UTC")).unwrap();
        // 2026-12-01 is a Tuesday (the 1st); Monday 2026-11-30 comes first.
        assert_eq!(
            s.next_after(at("2026-11-29T00:00:00Z")).unwrap(),
            at("2026-11-30T00:00:00Z")
        );
        assert_eq!(
            s.next_after(at("2026-11-30T00:00:00Z")).unwrap(),
            at("2026-12-01T00:00:00Z")
        );
        let d = Schedule::compile(&spec("@daily", "UTC")).unwrap();
        assert_eq!(
            d.next_after(at("2026-11-29T10:00:00Z")).unwrap(),
            at("2026-11-30T00:00:00Z")
        );
        // 0 and 7 are Sunday.
        for dow in ["0", "7", "SUN"] {
            let w = Schedule::compile(&spec(&format!("0 3 * * {dow}"), "UTC")).unwrap();
            assert_eq!(
                w.next_after(at("2026-11-28T00:00:00Z")).unwrap(),
                at("2026-11-29T03:00:00Z")
            );
        }
    }

    #[test]
    fn catchup_window_keeps_the_latest_fires() {
        let s = Schedule::compile(&spec("0 * * * *", "UTC")).unwrap();
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
        let s = Schedule::compile(&spec("15 2 * * *", "Europe/Berlin")).unwrap();
        let l = s
            .crontab_line("flock -n /tmp/j.lock scorch run j.yaml --date \"$DS\"")
            .unwrap();
        assert_eq!(
            l,
            "CRON_TZ=Europe/Berlin\n15 2 * * * DS=$(TZ=Europe/Berlin date -d '-1 day' +\\%Y-\\%m-\\%d) \
             && flock -n /tmp/j.lock scorch run j.yaml --date \"$DS\""
        );
        assert!(
            Schedule::compile(&spec("*/5 * * * * *", "UTC"))
                .unwrap()
                .crontab_line("c")
                .is_err()
        );
    }
}
