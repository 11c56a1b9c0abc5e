//! Reports: what the input of a run looked like, computed while it is scored.
//!
//! This first part computes Deequ's basic column metrics in one streaming pass,
//! chunk by chunk, with statistics that merge exactly (so shards of one date can be
//! combined later):
//!
//! | metric | definition |
//! |---|---|
//! | `count` | rows |
//! | `completeness` | non-null rows / rows (Deequ `Completeness`) |
//! | `approx_distinct` | HyperLogLog estimate of distinct non-null values (2^12 registers: standard error 1.6%) |
//! | `distinctness` | `approx_distinct` / non-null rows (Deequ `Distinctness`, approximate) |
//! | `distinct` | exact number of distinct non-null values (the values themselves compared, never only their hashes) |
//! | `uniqueness` | non-null values that occur exactly once / non-null rows (Deequ `Uniqueness`) |
//! | `unique_value_ratio` | values that occur exactly once / distinct values (Deequ `UniqueValueRatio`) |
//! | `non_finite` | NaN, +inf and −inf values (numeric columns; 0 for others) |
//! | `min`, `max` | of non-null, finite values (numeric columns) |
//! | `mean`, `stddev` | of non-null, finite values; population standard deviation (Deequ `StandardDeviation`), merged with Chan et al.'s pairwise formula |
//! | `p01` … `p99` | quantiles 0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99 of non-null, finite values from a DDSketch (Masson et al. 2019): within 1% (relative) of the value at rank `⌊q·(n−1)⌋` of the sorted values |
//!
//! `distinct`, `uniqueness` and `unique_value_ratio` count every value's frequency
//! exactly at any row count ([`distinct`]): in memory up to `report.memory_budget_mb`
//! for all columns together, then spilled to sorted run files under the run's
//! staging folder and merged; each column's metrics say which (`frequencies:
//! memory | spilled`). A null for them means no data, never "too many".
//! All statistics merge exactly across chunks and shards.
//!
//! **Any value is data.** Every statistic takes any f64 — ±inf, NaN, ±0,
//! subnormals, ±`f64::MAX` — and any string or binary value, in bounded memory:
//! non-finite values are counted in `non_finite` and kept out of the moments, the
//! quantile sketch and the drift distances (where they count as null); a metric
//! whose value does not fit an f64 (the variance of values near `f64::MAX`) is
//! reported as null rather than as infinity. Magnitudes below 1e-300 count as zero
//! in the quantile sketch, whose buckets therefore span at most about 70 000
//! indices per sign (a few hundred KiB) whatever the data.

pub mod distinct;
pub mod drift;
pub mod exact;
pub mod history_html;
pub mod html;
pub mod keys;
pub mod metrics_history;
pub mod multivariate;
pub mod performance;
pub mod profile_html;
#[cfg(test)]
mod props;

use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::spec::report::{CheckSpec, DEFAULT_MEMORY_BUDGET_MB, METRICS, Severity};
use crate::stats::moments;
use crate::stats::sketch::{Hll, QuantileSketch};

/// The quantiles every numeric column reports, with their metric names.
pub const QUANTILES: [(&str, f64); 7] = [
    ("p01", 0.01),
    ("p05", 0.05),
    ("p25", 0.25),
    ("p50", 0.5),
    ("p75", 0.75),
    ("p95", 0.95),
    ("p99", 0.99),
];

/// Mergeable statistics of one column.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ColumnStats {
    pub name: String,
    pub dtype: String,
    pub numeric: bool,
    pub count: u64,
    pub nulls: u64,
    /// Non-null, finite numeric values (the base of min/max/mean/stddev).
    pub n: u64,
    /// Non-null NaN, +inf and −inf values.
    #[serde(default)]
    pub non_finite: u64,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub mean: f64,
    /// Sum of squared deviations from the mean.
    pub m2: f64,
    pub hll: Hll,
    /// Every non-null value's occurrences, exactly (in memory or spilled).
    pub distinct: distinct::Counter,
    /// Its summary, once computed ([`ColumnStats::resolve`]).
    #[serde(skip)]
    pub summary: Option<distinct::Summary>,
    pub quantiles: QuantileSketch,
}

impl ColumnStats {
    pub fn new(name: &str, dtype: &DataType) -> Self {
        ColumnStats {
            name: name.to_string(),
            dtype: dtype.to_string(),
            numeric: dtype.is_primitive_numeric(),
            count: 0,
            nulls: 0,
            n: 0,
            non_finite: 0,
            min: None,
            max: None,
            mean: 0.0,
            m2: 0.0,
            hll: Hll::default(),
            distinct: distinct::Counter::new(keys::width_of(dtype)),
            summary: None,
            quantiles: QuantileSketch::default(),
        }
    }

    /// Adds a chunk of the column.
    pub fn update(&mut self, c: &Column) -> PolarsResult<()> {
        let s = c.as_materialized_series();
        self.count += s.len() as u64;
        self.nulls += s.null_count() as u64;
        let non_null = s.drop_nulls();
        let mut hashes = Vec::with_capacity(non_null.len());
        non_null.vec_hash(
            PlSeedableRandomStateQuality::seed_from_u64(0x5C0C),
            &mut hashes,
        )?;
        for &h in &hashes {
            self.hll.add(h);
        }
        keys::count_column(&mut self.distinct, &non_null)?;
        self.summary = None;
        if self.numeric {
            let x = non_null.cast(&DataType::Float64)?;
            let x = x.f64()?;
            let vals: Vec<f64> = x.into_no_null_iter().filter(|v| v.is_finite()).collect();
            self.non_finite += (x.len() - vals.len()) as u64;
            for &v in &vals {
                self.quantiles.add(v);
            }
            if !vals.is_empty() {
                let (mean, m2) = moments(&vals);
                let (lo, hi) = vals
                    .iter()
                    .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
                        (a.min(v), b.max(v))
                    });
                self.merge_moments(vals.len() as u64, mean, m2, lo, hi);
            }
        }
        Ok(())
    }

    fn merge_moments(&mut self, n_b: u64, mean_b: f64, m2_b: f64, lo: f64, hi: f64) {
        let n_a = self.n as f64;
        let nb = n_b as f64;
        let n = n_a + nb;
        // Weighted means, each weight <= 1: finite for finite means (a plain
        // `mean_a + (mean_b - mean_a)·w` overflows for means of opposite sign near MAX).
        let (wa, wb) = (n_a / n, nb / n);
        let mean = self.mean * wa + mean_b * wb;
        let delta = mean_b - self.mean;
        self.mean = if mean.is_finite() {
            mean
        } else {
            self.mean + delta * wb
        };
        // Overflows to inf for values near f64::MAX: stddev is then reported as null.
        self.m2 += m2_b + delta * delta * n_a * wb;
        self.n += n_b;
        self.min = Some(self.min.map_or(lo, |m| m.min(lo)));
        self.max = Some(self.max.map_or(hi, |m| m.max(hi)));
    }

    /// Combines the statistics of another part of the same column (another shard).
    pub fn merge(&mut self, other: &ColumnStats) {
        self.count += other.count;
        self.nulls += other.nulls;
        self.non_finite += other.non_finite;
        self.hll.merge(&other.hll);
        self.quantiles.merge(&other.quantiles);
        self.distinct.merge(&other.distinct);
        self.summary = None;
        if other.n > 0 {
            self.merge_moments(
                other.n,
                other.mean,
                other.m2,
                other.min.unwrap_or(f64::NAN),
                other.max.unwrap_or(f64::NAN),
            );
        }
    }

    /// Computes the exact frequency summary (reading spilled runs).
    pub fn resolve(&mut self) -> std::io::Result<()> {
        if self.summary.is_none() {
            self.summary = Some(self.distinct.summary()?);
        }
        Ok(())
    }

    /// The metrics, as they go into `report.json` (after [`ColumnStats::resolve`];
    /// unresolved, the frequency summary is computed here).
    pub fn metrics(&self) -> ColumnMetrics {
        let non_null = self.count - self.nulls;
        let distinct = if non_null == 0 {
            0.0
        } else {
            self.hll.estimate().min(non_null as f64).round()
        };
        let numeric = self.numeric && self.n > 0;
        let summary = match &self.summary {
            Some(s) => Some(s.clone()),
            None => self.distinct.clone().summary().ok(),
        };
        let exact = summary.as_ref().map(|s| (s.distinct, s.once as f64));
        ColumnMetrics {
            name: self.name.clone(),
            dtype: self.dtype.clone(),
            count: self.count,
            nulls: self.nulls,
            completeness: if self.count == 0 {
                None
            } else {
                Some(non_null as f64 / self.count as f64)
            },
            approx_distinct: distinct as u64,
            distinctness: (non_null > 0).then(|| distinct / non_null as f64),
            distinct: exact.map(|e| e.0),
            uniqueness: exact
                .filter(|_| non_null > 0)
                .map(|(_, once)| once / non_null as f64),
            unique_value_ratio: exact.filter(|e| e.0 > 0).map(|(d, once)| once / d as f64),
            frequencies: match &summary {
                Some(s) if s.spilled => "spilled",
                Some(_) => "memory",
                None => "unavailable",
            },
            spill_bytes: summary.as_ref().map_or(0, |s| s.spill_bytes),
            quantiles: if numeric {
                QUANTILES
                    .iter()
                    .filter_map(|(name, q)| Some((name.to_string(), self.quantiles.quantile(*q)?)))
                    .collect()
            } else {
                Default::default()
            },
            non_finite: self.non_finite,
            min: numeric.then_some(self.min).flatten(),
            max: numeric.then_some(self.max).flatten(),
            mean: numeric.then_some(self.mean).filter(|v| v.is_finite()),
            stddev: numeric
                .then(|| (self.m2 / self.n as f64).sqrt())
                .filter(|v| v.is_finite()),
        }
    }
}

/// The metrics of one column in a report.
#[derive(Debug, Clone, Serialize)]
pub struct ColumnMetrics {
    pub name: String,
    pub dtype: String,
    pub count: u64,
    pub nulls: u64,
    pub completeness: Option<f64>,
    pub approx_distinct: u64,
    pub distinctness: Option<f64>,
    /// Exact distinct non-null values.
    pub distinct: Option<u64>,
    pub uniqueness: Option<f64>,
    pub unique_value_ratio: Option<f64>,
    /// Where the exact frequencies were counted: `memory`, or `spilled` (in part
    /// to run files, past `report.memory_budget_mb`).
    pub frequencies: &'static str,
    /// Bytes of run files written for this column's frequencies.
    #[serde(skip_serializing_if = "is_zero")]
    pub spill_bytes: u64,
    /// NaN, +inf and −inf values (kept out of the metrics below).
    pub non_finite: u64,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub mean: Option<f64>,
    pub stddev: Option<f64>,
    /// `p01` … `p99` (numeric columns), from the quantile sketch.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub quantiles: std::collections::BTreeMap<String, f64>,
}

impl ColumnMetrics {
    /// A metric by its name in [`METRICS`].
    pub fn get(&self, metric: &str) -> Option<f64> {
        match metric {
            "count" => Some(self.count as f64),
            "completeness" => self.completeness,
            "approx_distinct" => Some(self.approx_distinct as f64),
            "distinctness" => self.distinctness,
            "distinct" => self.distinct.map(|d| d as f64),
            "uniqueness" => self.uniqueness,
            "unique_value_ratio" => self.unique_value_ratio,
            "non_finite" => Some(self.non_finite as f64),
            "min" => self.min,
            "max" => self.max,
            "mean" => self.mean,
            "stddev" => self.stddev,
            q => self.quantiles.get(q).copied(),
        }
    }
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// The outcome of one check.
#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    pub name: String,
    pub severity: Severity,
    /// The measured value (None when the metric does not exist, e.g. the mean of a
    /// column of nulls: the check then fails; in a run of 0 rows it is `no_data`).
    pub value: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// `pass`, `warn`, `fail`, or `no_data` (a run of 0 rows, `output.allow_empty`,
    /// has no value for the metric; not judged).
    pub status: &'static str,
}

impl CheckResult {
    /// `name: value 0.99 (min 1)`: the check, its measured value and its bounds.
    pub fn describe(&self) -> String {
        let value = match self.value {
            Some(v) => format!("value {v}"),
            None => "no value".to_string(),
        };
        let bounds: Vec<String> = [("min", self.min), ("max", self.max)]
            .iter()
            .filter_map(|(n, b)| b.map(|b| format!("{n} {b}")))
            .collect();
        if bounds.is_empty() {
            format!("{}: {value}", self.name)
        } else {
            format!("{}: {value} ({})", self.name, bounds.join(", "))
        }
    }
}

/// Statistics of every profiled column of a run's input, and the compliance counts
/// of `sql` checks. Serializable, so the shards of a date can write theirs and
/// `scorch commit` can merge them ([`Profile::merge`]).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Profile {
    pub columns: Vec<ColumnStats>,
    checks: Vec<CheckSpec>,
    /// Per check: rows where its predicate held (sql checks only).
    passed: Vec<u64>,
    rows: u64,
    /// Counts in the reference profile's bins, when drift is asked for.
    pub drift: Option<drift::DriftCounter>,
    /// Calibrated score counts, when estimated performance is asked for.
    #[serde(default)]
    pub performance: Option<performance::PerformanceCounter>,
    /// Reconstruction errors of the model's feature matrix, when multivariate drift
    /// is asked for.
    #[serde(default)]
    pub reconstruction: Option<multivariate::ReconstructionCounter>,
    /// The memory budget of the columns' exact frequencies, and where they spill.
    #[serde(skip)]
    spill: distinct::Spill,
}

impl Default for distinct::Spill {
    fn default() -> Self {
        distinct::Spill::new(DEFAULT_MEMORY_BUDGET_MB << 20)
    }
}

impl Profile {
    /// A profile of the columns of `schema`, with `checks` to evaluate, holding at
    /// most `budget` bytes of exact frequencies in memory (then spilling).
    pub fn new(schema: &Schema, checks: &[CheckSpec], budget: usize) -> Self {
        Profile {
            columns: schema
                .iter()
                .map(|(n, dt)| ColumnStats::new(n.as_str(), dt))
                .collect(),
            spill: distinct::Spill::new(budget),
            checks: checks.to_vec(),
            passed: vec![0; checks.len()],
            rows: 0,
            drift: None,
            performance: None,
            reconstruction: None,
        }
    }

    /// Spilled frequencies go to `dir` (made on the first spill, removed with the
    /// profile): the run's staging folder.
    pub fn spill_to(&self, dir: std::path::PathBuf) {
        self.spill.place_in(dir);
    }

    /// Sets the columns' in-memory thresholds (before any row is counted): the tests
    /// cross them with small data.
    pub fn set_counter_limits(&mut self, limits: distinct::Limits) {
        for c in &mut self.columns {
            c.distinct = c.distinct.with_new_limits(limits);
        }
    }

    /// The memory budget of the exact frequencies, in bytes.
    pub fn memory_budget(&self) -> usize {
        self.spill.budget
    }

    /// Computes every column's exact frequency summary (reading spilled runs);
    /// before [`Report::assemble`].
    pub fn resolve(&mut self) -> std::io::Result<()> {
        self.columns.iter_mut().try_for_each(|c| c.resolve())
    }

    /// Writes every column's frequencies into one run file each in `dir` (a shard's
    /// folder, `_distinct-NNN.bin`), named in the profile that is serialized next.
    pub fn freeze(&mut self, dir: &std::path::Path) -> std::io::Result<()> {
        for (i, c) in self.columns.iter_mut().enumerate() {
            c.distinct.freeze(dir, &format!("_distinct-{i:03}.bin"))?;
        }
        Ok(())
    }

    /// Drops the spilled runs (after the summaries are computed or frozen): the
    /// spill folder goes with them.
    pub fn discard_spill(&mut self) {
        for c in &mut self.columns {
            c.distinct = distinct::Counter::new(c.distinct.width());
        }
        self.spill = distinct::Spill::new(self.spill.budget);
    }

    /// Points the run files of a frozen profile (read back) at `resolve(name)`.
    pub fn locate(
        &mut self,
        mut resolve: impl FnMut(
            &str,
        ) -> std::io::Result<(
            std::path::PathBuf,
            Option<std::sync::Arc<distinct::SpillFolder>>,
        )>,
    ) -> std::io::Result<()> {
        for c in &mut self.columns {
            c.distinct.locate(&mut resolve)?;
        }
        Ok(())
    }

    pub fn update(&mut self, df: &DataFrame) -> PolarsResult<()> {
        for c in &mut self.columns {
            c.update(df.column(c.name.as_str())?)?;
        }
        self.spill
            .enforce(self.columns.iter_mut().map(|c| &mut c.distinct))
            .map_err(|e| PolarsError::IO {
                error: std::sync::Arc::new(e),
                msg: Some("spilling exact value counts".into()),
            })?;
        self.rows += df.height() as u64;
        if let Some(d) = &mut self.drift {
            d.update(df, false)?;
        }
        let exprs: Vec<Expr> = self
            .checks
            .iter()
            .enumerate()
            .filter_map(|(i, c)| {
                let sql = c.sql.as_ref()?;
                let e = polars::sql::sql_expr(sql).ok()?;
                Some(
                    e.fill_null(lit(false))
                        .cast(DataType::UInt64)
                        .sum()
                        .alias(format!("c{i}")),
                )
            })
            .collect();
        if !exprs.is_empty() {
            let out = df.clone().lazy().select(exprs).collect()?;
            for (i, c) in self.checks.iter().enumerate() {
                if c.sql.is_some() {
                    let n = out
                        .column(&format!("c{i}"))?
                        .get(0)?
                        .extract::<u64>()
                        .unwrap_or(0);
                    self.passed[i] += n;
                }
            }
        }
        Ok(())
    }

    /// Adds the statistics of another part of the same input (another shard of the
    /// same run): exact for every count, sketch and frequency; means and variances
    /// merge with Chan et al.'s formula (equal up to floating-point rounding).
    /// Refuses profiles of other columns, checks or reference profiles.
    pub fn merge(&mut self, other: &Profile) -> std::result::Result<(), String> {
        let names = |p: &Profile| p.columns.iter().map(|c| c.name.clone()).collect::<Vec<_>>();
        if names(self) != names(other) {
            return Err(format!(
                "profiled columns differ: [{}] vs [{}]",
                names(self).join(", "),
                names(other).join(", ")
            ));
        }
        let labels = |p: &Profile| p.checks.iter().map(|c| c.label()).collect::<Vec<_>>();
        if labels(self) != labels(other) {
            return Err("the checks differ".into());
        }
        match (&mut self.drift, &other.drift) {
            (None, None) => {}
            (Some(a), Some(b)) => a.merge_checked(b)?,
            _ => return Err("one has drift statistics, the other not".into()),
        }
        match (&mut self.performance, &other.performance) {
            (None, None) => {}
            (Some(a), Some(b)) => a.merge_checked(b)?,
            _ => return Err("one has performance counts, the other not".into()),
        }
        match (&mut self.reconstruction, &other.reconstruction) {
            (None, None) => {}
            (Some(a), Some(b)) => a.merge_checked(b)?,
            _ => return Err("one has multivariate drift sums, the other not".into()),
        }
        for (a, b) in self.columns.iter_mut().zip(&other.columns) {
            a.merge(b);
        }
        for (a, b) in self.passed.iter_mut().zip(&other.passed) {
            *a += b;
        }
        self.rows += other.rows;
        Ok(())
    }

    /// Counts a chunk of scores for score drift (when the reference has score columns).
    pub fn update_scores(&mut self, scores: &DataFrame) -> PolarsResult<()> {
        if let Some(d) = &mut self.drift {
            d.update(scores, true)?;
        }
        if let Some(p) = &mut self.performance {
            p.update(scores)?;
        }
        Ok(())
    }

    /// Adds the reconstruction errors of a chunk's feature matrix (computed outside
    /// the profile's lock by [`multivariate::ReconstructionCounter::errors_of`]).
    pub fn add_reconstruction(&mut self, sums: &crate::stats::pca::ErrorSums) {
        if let Some(r) = &mut self.reconstruction {
            r.sums.merge(sums);
        }
    }

    /// Evaluates every check.
    pub fn check_results(&self) -> Vec<CheckResult> {
        let metrics: Vec<ColumnMetrics> = self.columns.iter().map(|c| c.metrics()).collect();
        let perf = self.performance.as_ref().map(|p| p.report());
        self.checks
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let (value, min, max) = if c.is_performance() {
                    performance_bounds(c, perf.as_ref())
                } else if c.sql.is_some() {
                    let v = if self.rows == 0 {
                        Some(1.0)
                    } else {
                        Some(self.passed[i] as f64 / self.rows as f64)
                    };
                    (
                        v,
                        Some(c.mostly.unwrap_or(1.0).max(c.min.unwrap_or(0.0))),
                        c.max,
                    )
                } else {
                    let m = metrics.iter().find(|m| Some(&m.name) == c.column.as_ref());
                    let v = m.and_then(|m| m.get(c.metric.as_deref()?));
                    (v, c.min, c.max)
                };
                let ok = value
                    .is_some_and(|v| min.is_none_or(|lo| v >= lo) && max.is_none_or(|hi| v <= hi));
                CheckResult {
                    name: c.label(),
                    severity: c.severity,
                    value,
                    min,
                    max,
                    status: match (ok, c.severity) {
                        (true, _) => "pass",
                        // An empty run (`output.allow_empty`) has no mean, no
                        // completeness, no estimate: not judged, like drift. A metric
                        // an empty run does have (`count`, `non_finite`) is judged.
                        (false, _) if self.rows == 0 && value.is_none() => "no_data",
                        (false, Severity::Warn) => "warn",
                        (false, Severity::Fail) => "fail",
                    },
                }
            })
            .collect()
    }
}

/// A performance check's value and bounds: `min`/`max` as given, `min_change`/
/// `max_change` added to the reference's value (the tighter bound wins). No value
/// (the check fails) without performance counts or an estimate.
fn performance_bounds(
    c: &CheckSpec,
    perf: Option<&performance::PerformanceReport>,
) -> (Option<f64>, Option<f64>, Option<f64>) {
    let got = perf.and_then(|p| p.get(c.metric.as_deref()?, c.threshold));
    let value = got.map(|g| g.0.value).filter(|v| v.is_finite());
    let reference = got.and_then(|g| g.1);
    let tighter = |a: Option<f64>, b: Option<f64>, pick: fn(f64, f64) -> f64| match (a, b) {
        (Some(x), Some(y)) => Some(pick(x, y)),
        (x, y) => x.or(y),
    };
    let min = tighter(
        c.min,
        c.min_change.zip(reference).map(|(d, r)| r + d),
        f64::max,
    );
    let max = tighter(
        c.max,
        c.max_change.zip(reference).map(|(d, r)| r + d),
        f64::min,
    );
    // A change bound without a reference value cannot be judged: no value, so it fails.
    let unjudged = (c.min_change.is_some() || c.max_change.is_some()) && reference.is_none();
    (value.filter(|_| !unjudged), min, max)
}

/// `report.json`: the version of its layout.
pub const REPORT_VERSION: u32 = 1;

/// The run report written beside the run manifest.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub report_version: u32,
    pub run_id: String,
    pub job: String,
    pub ds: String,
    /// The worst verdict of the checks and the drifted columns: `pass`, `warn` or `fail`.
    pub status: &'static str,
    /// Rows read (before any quarantine).
    pub rows: u64,
    pub columns: Vec<ColumnMetrics>,
    pub checks: Vec<CheckResult>,
    /// PSI per input column against the bundle's reference profile (when asked for).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub drift: Vec<drift::ColumnDrift>,
    /// Share of columns whose drift is `warn` or `fail`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drift_share: Option<f64>,
    /// The model's performance estimated from its scores (`report.performance`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub performance: Option<performance::PerformanceReport>,
    /// PCA reconstruction error of the model's features against the reference's
    /// band (`report.drift.multivariate`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub multivariate: Option<multivariate::MultivariateDrift>,
}

impl Report {
    /// Assembles the report of a finished run: column metrics, checks (the job's and
    /// its anomaly checks against `history`, the table's earlier metrics), drift.
    pub fn assemble(
        profile: &Profile,
        spec: &crate::spec::job::ReportSpec,
        (run_id, job, ds): (&str, &str, &str),
        rows: u64,
        history: Option<&DataFrame>,
    ) -> PolarsResult<Report> {
        let drift = match (&profile.drift, &spec.drift) {
            (Some(counter), Some(d)) => counter.results(d),
            _ => vec![],
        };
        let judged = drift.iter().filter(|d| d.status != "no_data").count();
        let drift_share = (judged > 0).then(|| {
            drift
                .iter()
                .filter(|d| matches!(d.status, "warn" | "fail"))
                .count() as f64
                / judged as f64
        });
        let mut report = Report {
            report_version: REPORT_VERSION,
            run_id: run_id.to_string(),
            job: job.to_string(),
            ds: ds.to_string(),
            status: "pass",
            rows,
            columns: profile.columns.iter().map(|c| c.metrics()).collect(),
            checks: profile.check_results(),
            drift,
            drift_share,
            performance: profile.performance.as_ref().map(|p| p.report()),
            multivariate: match (
                &profile.reconstruction,
                spec.drift.as_ref().and_then(|d| d.multivariate.as_ref()),
            ) {
                (Some(r), Some(m)) => Some(r.result(m)),
                _ => None,
            },
        };
        if !spec.anomalies.is_empty() {
            let now = metrics_history::rows(&report);
            let empty = DataFrame::empty();
            for a in &spec.anomalies {
                let column = a.column.clone().unwrap_or_default();
                let value = now
                    .iter()
                    .find(|r| r.column == column && r.metric == a.metric)
                    .map(|r| r.value);
                let past =
                    metrics_history::series(history.unwrap_or(&empty), &column, &a.metric, ds)?;
                report.checks.push(a.judge(value, &past));
            }
        }
        report.status = html::overall_status(&report);
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hll_is_within_its_error_and_merges() {
        let mut a = Hll::default();
        let mut b = Hll::default();
        let s = PlSeedableRandomStateQuality::seed_from_u64(1);
        let mut hashes = Vec::new();
        Series::new("x".into(), (0..200_000i64).collect::<Vec<_>>())
            .vec_hash(s, &mut hashes)
            .unwrap();
        for (i, h) in hashes.iter().enumerate() {
            if i % 2 == 0 { a.add(*h) } else { b.add(*h) }
        }
        let half = a.estimate();
        assert!((half / 100_000.0 - 1.0).abs() < 0.05, "{half}");
        a.merge(&b);
        let all = a.estimate();
        assert!((all / 200_000.0 - 1.0).abs() < 0.05, "{all}");
        // Small sets are counted (nearly) exactly by the linear-counting correction.
        let mut c = Hll::default();
        for h in &hashes[..100] {
            c.add(*h);
        }
        assert!((c.estimate() - 100.0).abs() <= 2.0, "{}", c.estimate());
    }

    #[test]
    fn chunked_moments_equal_whole_column_moments() {
        let v: Vec<Option<f64>> = (0..10_000)
            .map(|i| match i % 7 {
                0 => None,
                3 => Some(f64::NAN),
                _ => Some((i as f64).sin() * 100.0 + i as f64 / 50.0),
            })
            .collect();
        let col = Column::new("x".into(), v.clone());
        let mut whole = ColumnStats::new("x", &DataType::Float64);
        whole.update(&col).unwrap();
        let mut parts = ColumnStats::new("x", &DataType::Float64);
        let mut other = ColumnStats::new("x", &DataType::Float64);
        parts.update(&col.slice(0, 3_333)).unwrap();
        other.update(&col.slice(3_333, 10_000)).unwrap();
        parts.merge(&other);
        let (a, b) = (whole.metrics(), parts.metrics());
        let clean: Vec<f64> = v
            .iter()
            .flatten()
            .copied()
            .filter(|x| !x.is_nan())
            .collect();
        let mean = clean.iter().sum::<f64>() / clean.len() as f64;
        let sd =
            (clean.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / clean.len() as f64).sqrt();
        for m in [&a, &b] {
            assert_eq!(m.count, 10_000);
            assert_eq!(m.nulls, v.iter().filter(|x| x.is_none()).count() as u64);
            assert!((m.mean.unwrap() - mean).abs() <= 1e-9 * mean.abs().max(1.0));
            assert!((m.stddev.unwrap() - sd).abs() <= 1e-9 * sd);
            assert_eq!(m.min, clean.iter().copied().reduce(f64::min));
            assert_eq!(m.max, clean.iter().copied().reduce(f64::max));
        }
        // Shards merge exactly: frequency metrics and quantiles too.
        assert_eq!(a.distinct, b.distinct);
        assert_eq!(a.uniqueness, b.uniqueness);
        assert_eq!(a.unique_value_ratio, b.unique_value_ratio);
        assert_eq!(a.quantiles, b.quantiles);
        assert_eq!(a.quantiles.len(), QUANTILES.len());
    }

    #[test]
    fn quantile_sketch_is_within_one_percent() {
        let mut s = QuantileSketch::default();
        let mut v: Vec<f64> = (0..20_001)
            .map(|i| {
                let x = (i as f64 * 0.37).sin() * 10f64.powi((i % 9) - 4);
                if i % 13 == 0 { 0.0 } else { x }
            })
            .collect();
        for &x in &v {
            s.add(x);
        }
        v.sort_by(f64::total_cmp);
        for q in [0.0, 0.01, 0.1, 0.33, 0.5, 0.77, 0.99, 1.0] {
            let want = v[(q * (v.len() - 1) as f64).floor() as usize];
            let got = s.quantile(q).unwrap();
            assert!(
                (got - want).abs() <= 0.010_000_01 * want.abs(),
                "q={q}: {got} vs {want}"
            );
        }
        assert_eq!(QuantileSketch::default().quantile(0.5), None);
    }

    #[test]
    fn frequency_metrics_are_exact_past_any_budget() {
        let col = Column::new("x".into(), (0..100).map(|i| i % 40).collect::<Vec<i64>>());
        let df = DataFrame::new(100, vec![col.clone()]).unwrap();
        for budget in [0usize, 64, 1 << 20] {
            let mut p = Profile::new(df.schema(), &[], budget);
            p.update(&df.slice(0, 55)).unwrap();
            p.update(&df.slice(55, 45)).unwrap();
            p.resolve().unwrap();
            let m = p.columns[0].metrics();
            assert_eq!(m.distinct, Some(40));
            // 20 values occur twice, 20 three times: none once.
            assert_eq!(m.uniqueness, Some(0.0));
            assert_eq!(m.unique_value_ratio, Some(0.0));
            let spilled = if budget < 1 << 20 {
                "spilled"
            } else {
                "memory"
            };
            assert_eq!(m.frequencies, spilled, "budget {budget}");
        }
    }

    #[test]
    fn profiles_round_trip_and_merge_only_like_with_like() {
        let df = df!(
            "x" => (0..1000).map(|i| (i % 37) as f64 * 1.5).collect::<Vec<_>>(),
            "s" => (0..1000).map(|i| format!("k{}", i % 11)).collect::<Vec<_>>()
        )
        .unwrap();
        let checks: Vec<CheckSpec> =
            serde_json::from_str(r#"[{"sql": "x < 30", "mostly": 0.5}]"#).unwrap();
        let mut whole = Profile::new(df.schema(), &checks, 100);
        whole.resolve().unwrap();
        whole.update(&df).unwrap();
        let mut a = Profile::new(df.schema(), &checks, 100);
        let mut b = a.clone();
        a.update(&df.slice(0, 400)).unwrap();
        b.update(&df.slice(400, 600)).unwrap();
        let b: Profile = rmp_serde::from_slice(&rmp_serde::to_vec_named(&b).unwrap()).unwrap();
        a.merge(&b).unwrap();
        let m = |p: &Profile| {
            serde_json::to_value((
                p.columns.iter().map(|c| c.metrics()).collect::<Vec<_>>(),
                p.check_results(),
            ))
            .unwrap()
        };
        let (x, y) = (m(&whole), m(&a));
        assert_eq!(x[0][0]["distinct"], 37);
        assert_eq!(x[0][1]["quantiles"], y[0][1]["quantiles"]);
        assert_eq!(x[1], y[1]);
        let other = df!("y" => [1.0f64]).unwrap();
        let err = a
            .merge(&Profile::new(other.schema(), &checks, 100))
            .unwrap_err();
        assert!(err.contains("profiled columns differ"), "{err}");
    }
}
