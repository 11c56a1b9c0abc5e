//! Running jobs over time: crontab schedules ([`cron`]), the scheduler daemon
//! ([`daemon`]) and its run history ([`history`]), and backfills of date ranges
//! ([`backfill`]).

pub mod backfill;
pub mod cron;
pub mod crontab;
pub mod daemon;
pub mod run_history;
