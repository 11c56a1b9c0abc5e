//! `scorch history JOB [--from D --to D] --out F.html`: one page over time for a
//! job's table. It reads the table's metrics history (`_metrics/`: every run's
//! metrics, and `scorch evaluate`'s realized ones) and each date's latest run
//! report (`_runs/<run id>.report.json`: check verdicts and overall status), and
//! renders them with `crate::reports::history_html`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use chrono::NaiveDate;
use polars::prelude::*;

use crate::error::{Error, Result};
use crate::reports::history_html::DatePoint;
use crate::stats::calibration::Estimate;

/// What `scorch history` shows.
#[derive(Debug, Clone)]
pub struct HistoryOptions {
    pub job_file: PathBuf,
    pub root: PathBuf,
    /// Only dates from / to these (inclusive).
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    pub profiles: Option<PathBuf>,
}

/// The page and what it covers.
pub struct HistoryPage {
    pub html: String,
    pub dates: usize,
    pub table: String,
}

/// Gathers the table's history and renders the page.
pub fn history(opts: &HistoryOptions) -> Result<HistoryPage> {
    if let (Some(a), Some(b)) = (opts.from, opts.to)
        && a > b
    {
        return Err(Error::usage(format!("--from {a} is after --to {b}")));
    }
    let day = opts
        .to
        .or(opts.from)
        .unwrap_or_else(|| chrono::Utc::now().date_naive());
    let ctx =
        crate::run::JobContext::open(&opts.job_file, &opts.root, opts.profiles.as_deref(), day)?;
    let history = ctx.table.history().read()?;
    let points = if history.height() == 0 {
        vec![]
    } else {
        points(&ctx.table, &history, opts.from, opts.to)?
    };
    Ok(HistoryPage {
        html: crate::reports::history_html::render(&ctx.job.name, &ctx.location, &points),
        dates: points.len(),
        table: ctx.location,
    })
}

/// One row of the history: run id, column, metric, value.
type Row = (String, String, String, f64);

fn points(
    table: &crate::sink::Table,
    history: &DataFrame,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
) -> Result<Vec<DatePoint>> {
    let ds = history.column("ds")?.date()?.clone();
    let run = history.column("run_id")?.str()?.clone();
    let column = history.column("column")?.str()?.clone();
    let metric = history.column("metric")?.str()?.clone();
    let value = history.column("value")?.f64()?.clone();
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid");
    let mut by_date: BTreeMap<NaiveDate, Vec<Row>> = BTreeMap::new();
    for i in 0..history.height() {
        let (Some(d), Some(r), Some(m), Some(v)) =
            (ds.phys.get(i), run.get(i), metric.get(i), value.get(i))
        else {
            continue;
        };
        let d = epoch + chrono::Duration::days(i64::from(d));
        if from.is_some_and(|f| d < f) || to.is_some_and(|t| d > t) {
            continue;
        }
        by_date.entry(d).or_default().push((
            r.to_string(),
            column.get(i).unwrap_or_default().to_string(),
            m.to_string(),
            v,
        ));
    }
    let mut out = Vec::new();
    for (d, rows) in by_date {
        let latest = |evaluation: bool| {
            rows.iter()
                .map(|r| &r.0)
                .filter(|id| id.ends_with("-evaluate") == evaluation)
                .max()
                .cloned()
        };
        let Some(run_id) = latest(false) else {
            continue;
        };
        let mut p = DatePoint {
            ds: d.format("%Y-%m-%d").to_string(),
            run_id: run_id.clone(),
            ..Default::default()
        };
        let mut se: BTreeMap<String, f64> = BTreeMap::new();
        let (mut error, mut lower, mut upper) = (None, None, None);
        for (_, c, m, v) in rows.iter().filter(|r| r.0 == run_id) {
            match m.as_str() {
                "row_count" if c.is_empty() => p.rows = Some(*v),
                "psi" => {
                    p.psi.insert(c.clone(), *v);
                }
                "reconstruction_error" => error = Some(*v),
                "reconstruction_lower" => lower = Some(*v),
                "reconstruction_upper" => upper = Some(*v),
                _ => {
                    if let Some(rest) = m.strip_prefix("estimated_") {
                        match split_se(rest) {
                            Some(name) => {
                                se.insert(name, *v);
                            }
                            None => {
                                p.estimated.insert(
                                    rest.to_string(),
                                    Estimate {
                                        value: *v,
                                        std_error: f64::NAN,
                                    },
                                );
                            }
                        }
                    }
                }
            }
        }
        p.reconstruction = error.map(|e| (e, lower.zip(upper)));
        for (name, e) in p.estimated.iter_mut() {
            e.std_error = se.get(name).copied().unwrap_or(f64::NAN);
        }
        if let Some(eval) = latest(true) {
            for (_, _, m, v) in rows.iter().filter(|r| r.0 == eval) {
                if let Some(rest) = m.strip_prefix("realized_") {
                    p.realized.insert(rest.to_string(), *v);
                }
            }
        }
        if let Some(bytes) = table
            .run_log()
            .read_file(&format!("{run_id}.report.json"))?
            && let Ok(r) = serde_json::from_slice::<serde_json::Value>(&bytes)
        {
            p.status = r["status"].as_str().unwrap_or_default().to_string();
            for c in r["checks"].as_array().into_iter().flatten() {
                if let (Some(n), Some(st)) = (c["name"].as_str(), c["status"].as_str()) {
                    p.checks.insert(n.to_string(), st.to_string());
                }
            }
            // Multivariate drift's verdict, as a row of its own.
            if let Some(st) = r["multivariate"]["status"].as_str() {
                p.checks
                    .insert("multivariate drift".to_string(), st.to_string());
            }
            if p.status.is_empty() {
                // Reports from before the overall status: the worst verdict.
                let all = p.checks.values().map(String::as_str).chain(
                    r["drift"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|d| d["status"].as_str()),
                );
                let mut worst = "pass";
                for st in all {
                    if st == "fail" || (st == "warn" && worst == "pass") {
                        worst = if st == "fail" { "fail" } else { "warn" };
                    }
                }
                p.status = worst.to_string();
            }
        }
        out.push(p);
    }
    Ok(out)
}

/// `auc_se` → `auc`, `f1_se@0.5` → `f1@0.5`; None for an estimate's own name.
fn split_se(name: &str) -> Option<String> {
    let (base, at) = match name.split_once('@') {
        Some((b, t)) => (b, Some(t)),
        None => (name, None),
    };
    let base = base.strip_suffix("_se")?;
    Some(match at {
        Some(t) => format!("{base}@{t}"),
        None => base.to_string(),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn standard_error_names_pair_with_their_estimates() {
        assert_eq!(super::split_se("auc_se").as_deref(), Some("auc"));
        assert_eq!(super::split_se("f1_se@0.5").as_deref(), Some("f1@0.5"));
        assert_eq!(super::split_se("f1@0.5"), None);
        assert_eq!(super::split_se("auc"), None);
    }
}
