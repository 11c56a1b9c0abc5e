//! The scheduler's run history: one SQLite table (`runs`), one row per fire —
//! job, logical date, scheduled time, start, end, status, exit code, manifest.

use std::path::Path;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use crate::error::{Error, Result};

/// One row of the history.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RunRow {
    pub id: i64,
    pub job: String,
    pub ds: String,
    /// The fire time (RFC 3339, UTC).
    pub scheduled_for: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    /// `running`, `succeeded`, `checks_failed`, `failed`, `stopped` or `skipped`.
    pub status: String,
    pub exit_code: Option<i32>,
    /// The run's manifest, or why a fire was skipped.
    pub detail: Option<String>,
}

impl std::fmt::Display for RunRow {
    /// The row as `scorch runs` prints it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:>5}  {:<20} ds={}  fire {}  {:<13} exit {:<4} {}",
            self.id,
            self.job,
            self.ds,
            self.scheduled_for,
            self.status,
            self.exit_code.map_or("-".into(), |c| c.to_string()),
            self.detail.as_deref().unwrap_or("")
        )
    }
}

/// The history database.
pub struct History {
    conn: rusqlite::Connection,
}

/// The errors of the scheduler's history database (exit 1), with SQLite's error
/// as the source.
#[derive(Debug, thiserror::Error)]
#[error("run history{}: {source}", .path.as_ref().map(|p| format!(" {}", p.display())).unwrap_or_default())]
pub struct HistoryError {
    /// The database file, where the failure is about opening it.
    path: Option<std::path::PathBuf>,
    #[source]
    source: rusqlite::Error,
}

impl crate::error::LayerError for HistoryError {
    fn kind(&self) -> crate::error::Kind {
        crate::error::Kind::Internal
    }
}

fn db_err(path: &Path) -> impl Fn(rusqlite::Error) -> Error + '_ {
    move |source| {
        HistoryError {
            path: Some(path.to_path_buf()),
            source,
        }
        .into()
    }
}

pub fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

impl History {
    /// Opens (creating) the history at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        if let Some(d) = path.parent() {
            std::fs::create_dir_all(d).map_err(|e| Error::io("create", d, e))?;
        }
        let err = db_err(path);
        let conn = rusqlite::Connection::open(path).map_err(&err)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(&err)?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             CREATE TABLE IF NOT EXISTS runs (
               id INTEGER PRIMARY KEY AUTOINCREMENT,
               job TEXT NOT NULL,
               ds TEXT NOT NULL,
               scheduled_for TEXT NOT NULL,
               started_at TEXT,
               finished_at TEXT,
               status TEXT NOT NULL,
               exit_code INTEGER,
               detail TEXT
             );
             CREATE INDEX IF NOT EXISTS runs_job ON runs (job, scheduled_for);",
        )
        .map_err(&err)?;
        Ok(History { conn })
    }

    fn err(&self) -> impl Fn(rusqlite::Error) -> Error {
        |source| HistoryError { path: None, source }.into()
    }

    /// Records a run that starts now; returns its row id.
    pub fn start(&self, job: &str, ds: &str, fire: DateTime<Utc>) -> Result<i64> {
        self.conn
            .execute(
                "INSERT INTO runs (job, ds, scheduled_for, started_at, status) VALUES (?1, ?2, ?3, ?4, 'running')",
                (job, ds, ts(fire), ts(Utc::now())),
            )
            .map_err(self.err())?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Records how a run ended.
    pub fn finish(
        &self,
        id: i64,
        status: &str,
        exit_code: Option<i32>,
        detail: Option<&str>,
    ) -> Result<()> {
        self.conn
            .execute(
                "UPDATE runs SET finished_at = ?1, status = ?2, exit_code = ?3, detail = ?4 WHERE id = ?5",
                (ts(Utc::now()), status, exit_code, detail, id),
            )
            .map_err(self.err())?;
        Ok(())
    }

    /// Records a fire that did not run, and why.
    pub fn skip(&self, job: &str, ds: &str, fire: DateTime<Utc>, why: &str) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO runs (job, ds, scheduled_for, status, detail) VALUES (?1, ?2, ?3, 'skipped', ?4)",
                (job, ds, ts(fire), why),
            )
            .map_err(self.err())?;
        Ok(())
    }

    /// The latest fire time recorded for `job`.
    pub fn last_fire(&self, job: &str) -> Result<Option<DateTime<Utc>>> {
        let v: Option<String> = self
            .conn
            .query_row(
                "SELECT MAX(scheduled_for) FROM runs WHERE job = ?1",
                [job],
                |r| r.get(0),
            )
            .map_err(self.err())?;
        Ok(v.and_then(|s| DateTime::parse_from_rfc3339(&s).ok())
            .map(|d| d.with_timezone(&Utc)))
    }

    /// Rows, newest first; only `job`'s when given.
    pub fn list(&self, job: Option<&str>, limit: usize) -> Result<Vec<RunRow>> {
        let mut st = self
            .conn
            .prepare(
                "SELECT id, job, ds, scheduled_for, started_at, finished_at, status, exit_code, detail
                 FROM runs WHERE (?1 IS NULL OR job = ?1) ORDER BY id DESC LIMIT ?2",
            )
            .map_err(self.err())?;
        let rows = st
            .query_map((job, limit as i64), |r| {
                Ok(RunRow {
                    id: r.get(0)?,
                    job: r.get(1)?,
                    ds: r.get(2)?,
                    scheduled_for: r.get(3)?,
                    started_at: r.get(4)?,
                    finished_at: r.get(5)?,
                    status: r.get(6)?,
                    exit_code: r.get(7)?,
                    detail: r.get(8)?,
                })
            })
            .map_err(self.err())?;
        rows.collect::<std::result::Result<Vec<_>, _>>()
            .map_err(self.err())
    }
}
