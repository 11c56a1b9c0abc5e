//! Drift between two full datasets (`scorch drift`), every statistic computed
//! exactly from all values rather than from a reference profile:
//!
//! - numeric columns: two-sample KS statistic and p-value (`scipy.stats.ks_2samp`),
//!   Wasserstein-1 (`scipy.stats.wasserstein_distance`, and divided by
//!   `max(reference std, 0.001)`), PSI and Jensen–Shannon distance over bins —
//!   `quantile` binning: the reference's quantiles `1/B … (B−1)/B` (numpy's default
//!   linear interpolation), the same bins `scorch profile` writes; `evidently`
//!   binning: `numpy.histogram_bin_edges(reference ∪ current, "sturges")` with
//!   Evidently's replacement of empty shares, so PSI equals Evidently's `psi` test;
//! - other columns: PSI, Jensen–Shannon and chi-square over the reference's
//!   categories, an "other" bin for new ones, and nulls (as in run reports).
//!
//! Nulls, NaN and ±inf are left out of the numeric statistics (scipy would return
//! NaN); a statistic that does not fit an f64 is null.
//!
//! Exact at any size, in bounded memory: both sides are read chunk by chunk, and
//! each column's values are counted exactly ([`Counter`]: the values themselves
//! with their counts, in memory up to a budget shared by every column, then
//! spilled as sorted run files and merged). Every statistic is a walk over the
//! sorted `(value, count)` pairs — the KS statistic and Wasserstein distance one
//! walk of both sides together, quantiles a walk to their ranks, bins a walk
//! counting — so the figures equal those over the sorted values in memory, to
//! the bit (the standard deviation up to the order of summation). Columns are
//! counted and walked in parallel.

use polars::prelude::*;
use rayon::prelude::*;
use serde::Serialize;
use std::collections::BTreeMap;

use super::distinct::{Counter, Limits, Spill, Width, float_of_order_key, float_order_key};
use super::{ColumnMetrics, ColumnStats};
use crate::spec::report::DEFAULT_MEMORY_BUDGET_MB;
use crate::stats::divergence::{
    Chi2, Chi2Sum, JsSum, PsiSum, js_distance, js_distance_weights, psi,
};
use crate::stats::divergence::{lerp, quantile_ranks};
use crate::stats::ks;

/// How numeric columns are binned for PSI and Jensen–Shannon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Binning {
    /// The reference's quantiles (as `scorch profile`; PSI shares floored at 1e-4).
    Quantile,
    /// numpy's Sturges bins over both samples, empty shares replaced as Evidently does.
    Evidently,
}

/// The drift of one column between two datasets.
#[derive(Debug, Clone, Serialize)]
pub struct ExactDrift {
    pub column: String,
    /// Non-null (and, for numeric columns, non-NaN) values on each side.
    pub reference_values: u64,
    pub current_values: u64,
    pub psi: Option<f64>,
    pub js_distance: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ks_statistic: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ks_p_value: Option<f64>,
    /// Wasserstein-1 distance in the column's units.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wasserstein_distance: Option<f64>,
    /// `wasserstein_distance / max(reference std, 0.001)`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wasserstein: Option<f64>,
    /// The bin edges used for PSI (numeric columns).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub edges: Option<Vec<f64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chi2: Option<Chi2>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_categories: Option<u64>,
    /// Bytes of this column's value counts (both sides) written to spill files.
    pub spill_bytes: u64,
}

/// numpy's Sturges edges over samples of `n` values in all, from `lo` to `hi`
/// (`numpy.histogram_bin_edges(reference ∪ current, "sturges")`).
fn sturges_edges(n: u64, lo: f64, hi: f64) -> Vec<f64> {
    // numpy: width = ptp / (log2(size) + 1); bins = ceil((last - first) / width).
    let width = (hi - lo) / ((n as f64).log2() + 1.0);
    let (lo, hi) = if lo == hi {
        (lo - 0.5, hi + 0.5)
    } else {
        (lo, hi)
    };
    // Samples spanning more than f64 (−MAX … MAX) make `width` infinite: Sturges'
    // count of bins is then taken directly (numpy would return NaN edges).
    let sturges = ((n as f64).log2() + 1.0).ceil();
    let ratio = ((hi - lo) / width).ceil();
    let nbins = if width == 0.0 {
        1
    } else if ratio.is_finite() && ratio >= 1.0 {
        ratio as usize
    } else {
        sturges as usize
    }
    .max(1);
    // numpy.linspace(lo, hi, nbins + 1); where `hi − lo` overflows, the step as a
    // difference of quotients.
    let step = match (hi - lo) / nbins as f64 {
        s if s.is_finite() => s,
        _ => hi / nbins as f64 - lo / nbins as f64,
    };
    let mut edges: Vec<f64> = (0..=nbins).map(|i| lo + i as f64 * step).collect();
    edges[nbins] = hi;
    edges
}

/// Evidently's PSI and Jensen–Shannon distance from the histograms of both samples
/// over Sturges edges: shares of each sample, zero shares replaced by
/// `min(nonzero share)/1e6` (if that minimum is at most 1e-4) or 1e-4.
fn evidently_distances(r: &[u64], c: &[u64]) -> (f64, f64) {
    let shares = |h: &[u64]| -> Vec<f64> {
        let len = h.iter().sum::<u64>() as f64;
        let mut p: Vec<f64> = h.iter().map(|&v| v as f64 / len).collect();
        let m = p
            .iter()
            .cloned()
            .filter(|&v| v != 0.0)
            .fold(f64::INFINITY, f64::min);
        let z = if m <= 1e-4 { m / 1e6 } else { 1e-4 };
        p.iter_mut().filter(|v| **v == 0.0).for_each(|v| *v = z);
        p
    };
    let (rp, cp) = (shares(r), shares(c));
    let psi: f64 = rp
        .iter()
        .zip(&cp)
        .map(|(&a, &b)| (a - b) * (a / b).ln())
        .sum();
    (psi, js_distance_weights(&rp, &cp))
}

/// One side's finite values of a numeric column, counted exactly ([`Counter`]:
/// in memory, then spilled), walked in ascending order as often as needed.
#[derive(Debug)]
struct Sample {
    values: Counter,
    n: u64,
    min: f64,
    max: f64,
}

type Walk<'a> = Box<dyn Iterator<Item = std::io::Result<(f64, u64)>> + 'a>;

impl Sample {
    fn new(limits: Limits) -> Self {
        Sample {
            values: Counter::with_limits(Width::Fixed, limits),
            n: 0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        }
    }

    fn add(&mut self, s: &Series) -> PolarsResult<()> {
        let x = s.cast(&DataType::Float64)?;
        let mut keys = Vec::with_capacity(x.len());
        for arr in x.f64()?.downcast_iter() {
            let mut push = |v: f64| {
                if v.is_finite() {
                    let v = if v == 0.0 { 0.0 } else { v };
                    self.min = self.min.min(v);
                    self.max = self.max.max(v);
                    keys.push(float_order_key(v));
                }
            };
            match arr.validity() {
                None => arr.values().iter().for_each(|&v| push(v)),
                Some(_) => arr.iter().flatten().for_each(|&v| push(v)),
            }
        }
        self.n += keys.len() as u64;
        self.values.add_fixed(&keys);
        Ok(())
    }

    /// Counts the finite values of `x` (as [`Sample::add`]).
    fn add_values(&mut self, x: &[f64]) {
        let mut keys = Vec::with_capacity(x.len());
        for &v in x {
            if v.is_finite() {
                let v = if v == 0.0 { 0.0 } else { v };
                self.min = self.min.min(v);
                self.max = self.max.max(v);
                keys.push(float_order_key(v));
            }
        }
        self.n += keys.len() as u64;
        self.values.add_fixed(&keys);
    }

    /// Distinct values and their counts, ascending.
    fn walk(&mut self) -> std::io::Result<Walk<'_>> {
        Ok(Box::new(
            self.values
                .sorted_fixed()?
                .map(|r| r.map(|(k, c)| (float_of_order_key(k), c))),
        ))
    }

    /// Mean and population standard deviation ([`crate::stats::mean_std`] of the
    /// values, summed in ascending order).
    fn mean_std(&mut self) -> std::io::Result<(f64, f64)> {
        let n = self.n as f64;
        let mut sum = 0.0;
        for r in self.walk()? {
            let (v, c) = r?;
            sum += v * c as f64;
        }
        let mut mean = sum / n;
        if !mean.is_finite() {
            mean = 0.0;
            for r in self.walk()? {
                let (v, c) = r?;
                mean += v / n * c as f64;
            }
        }
        let mut m2 = 0.0;
        for r in self.walk()? {
            let (v, c) = r?;
            m2 += (v - mean) * (v - mean) * c as f64;
        }
        let sd = (m2 / n).sqrt();
        if sd.is_finite() {
            return Ok((mean, sd));
        }
        let scale = self.min.abs().max(self.max.abs());
        let m = mean / scale;
        let mut var = 0.0;
        for r in self.walk()? {
            let (v, c) = r?;
            var += (v / scale - m) * (v / scale - m) * c as f64;
        }
        Ok((mean, ((var / n).sqrt() * scale).min(f64::MAX)))
    }

    /// Inner edges at the quantiles `1/B … (B−1)/B`, duplicates dropped
    /// ([`crate::stats::divergence::quantile_edges`]).
    fn quantile_edges(&mut self, bins: usize) -> std::io::Result<Vec<f64>> {
        let qs: Vec<(u64, u64, f64)> = (1..bins)
            .map(|i| quantile_ranks(self.n, i as f64 / bins as f64))
            .collect();
        let mut ranks: Vec<u64> = qs.iter().flat_map(|&(lo, hi, _)| [lo, hi]).collect();
        ranks.sort_unstable();
        ranks.dedup();
        let mut at = BTreeMap::new();
        let (mut seen, mut next) = (0u64, 0usize);
        for r in self.walk()? {
            let (v, c) = r?;
            seen += c;
            while next < ranks.len() && ranks[next] < seen {
                at.insert(ranks[next], v);
                next += 1;
            }
            if next == ranks.len() {
                break;
            }
        }
        let mut edges: Vec<f64> = Vec::with_capacity(qs.len());
        for (lo, hi, t) in qs {
            let q = lerp(at[&lo], at[&hi], t);
            if edges.last().is_none_or(|&l| q > l) {
                edges.push(q);
            }
        }
        Ok(edges)
    }
}

/// Two numeric samples counted exactly (a shadow comparison's champion and
/// challenger scores), compared as `scorch drift` compares a numeric column with
/// quantile bins: the first sample is the reference.
#[derive(Debug)]
pub struct Paired {
    a: Sample,
    b: Sample,
}

impl Paired {
    pub fn new(limits: Limits) -> Self {
        Paired {
            a: Sample::new(limits),
            b: Sample::new(limits),
        }
    }

    /// Counts the finite values of each sample.
    pub fn add(&mut self, a: &[f64], b: &[f64]) {
        self.a.add_values(a);
        self.b.add_values(b);
    }

    /// Both samples' counters, for a shared [`Spill`] budget.
    pub fn counters(&mut self) -> [&mut Counter; 2] {
        [&mut self.a.values, &mut self.b.values]
    }

    /// KS statistic and p-value, PSI over the first sample's `bins` quantile bins.
    pub fn compare(&mut self, bins: usize) -> std::io::Result<ExactDrift> {
        numeric("score", &mut self.a, &mut self.b, bins, Binning::Quantile)
    }
}

/// What one walk of both samples together gives.
struct Joint {
    /// The KS statistic.
    ks: f64,
    /// The Wasserstein-1 distance.
    wasserstein: f64,
    /// Each sample's counts in the bins of the inner edges given.
    bins: [Vec<u64>; 2],
    /// The first sample's sum of squared deviations from its mean (weighted Welford).
    m2: f64,
}

/// One side's place in a joint walk: its bin, its running moments.
struct Cursor<'a> {
    walk: std::iter::Peekable<Walk<'a>>,
    seen: u64,
    bin: usize,
    bins: Vec<u64>,
    mean: f64,
    m2: f64,
}

impl<'a> Cursor<'a> {
    fn new(walk: Walk<'a>, edges: usize) -> Self {
        Cursor {
            walk: walk.peekable(),
            seen: 0,
            bin: 0,
            bins: vec![0; edges + 1],
            mean: 0.0,
            m2: 0.0,
        }
    }

    fn head(&mut self) -> std::io::Result<Option<f64>> {
        match self.walk.peek() {
            None => Ok(None),
            Some(Ok((v, _))) => Ok(Some(*v)),
            Some(Err(_)) => Err(self.walk.next().expect("peeked").expect_err("an error")),
        }
    }

    /// Takes the next value when it is at most `x`, counting it.
    fn take_upto(&mut self, x: f64, edges: &[f64]) -> std::io::Result<()> {
        if !self.head()?.is_some_and(|v| v <= x) {
            return Ok(());
        }
        let (v, c) = self.walk.next().expect("peeked")?;
        while self.bin < edges.len() && v >= edges[self.bin] {
            self.bin += 1;
        }
        self.bins[self.bin] += c;
        let n = self.seen + c;
        let delta = v - self.mean;
        self.mean += delta * (c as f64 / n as f64);
        self.m2 += delta * (v - self.mean) * c as f64;
        self.seen = n;
        Ok(())
    }
}

/// The KS statistic, the Wasserstein-1 distance, both samples' bins over inner
/// `edges` ([`crate::stats::divergence::bin_sorted`]: value `x` in bin = number of
/// edges `<= x`) and the first one's moments, in one walk of both. KS and
/// Wasserstein take the steps of [`ks::ks_statistic`] and [`ks::wasserstein`] on
/// the sorted values, so they are the same figures to the bit.
fn joint_walk(a: &mut Sample, b: &mut Sample, edges: &[f64]) -> std::io::Result<Joint> {
    let (n1, n2) = (a.n as f64, b.n as f64);
    let mut a = Cursor::new(a.walk()?, edges.len());
    let mut b = Cursor::new(b.walk()?, edges.len());
    let (mut d, mut total) = (0.0f64, 0.0f64);
    if let (Some(u), Some(v)) = (a.head()?, b.head()?) {
        let mut x = u.min(v);
        loop {
            a.take_upto(x, edges)?;
            b.take_upto(x, edges)?;
            let gap = (a.seen as f64 / n1 - b.seen as f64 / n2).abs();
            d = d.max(gap);
            let next = match (a.head()?, b.head()?) {
                (Some(u), Some(v)) => u.min(v),
                (Some(u), None) => u,
                (None, Some(v)) => v,
                (None, None) => break,
            };
            total += gap * (next - x);
            x = next;
        }
    }
    Ok(Joint {
        ks: d,
        wasserstein: total,
        bins: [a.bins, b.bins],
        m2: a.m2,
    })
}

fn numeric(
    name: &str,
    r: &mut Sample,
    c: &mut Sample,
    bins: usize,
    binning: Binning,
) -> std::io::Result<ExactDrift> {
    let mut d = ExactDrift::new(name, r.n, c.n);
    d.spill_bytes = r.values.spill_bytes() + c.values.spill_bytes();
    if r.n == 0 || c.n == 0 {
        return Ok(d);
    }
    // The edges first (quantiles: one walk of the reference), then one walk of both.
    let edges = match binning {
        Binning::Quantile => r.quantile_edges(bins)?,
        Binning::Evidently => sturges_edges(r.n + c.n, r.min.min(c.min), r.max.max(c.max)),
    };
    // np.histogram: [e_i, e_{i+1}), the last bin closed (values equal to the last
    // edge are in the last bin already): its inner edges.
    let inner = match binning {
        Binning::Quantile => &edges[..],
        Binning::Evidently => &edges[1..edges.len() - 1],
    };
    let j = joint_walk(r, c, inner)?;
    let k = ks::ks_from_statistic(j.ks, r.n, c.n);
    d.ks_statistic = Some(k.statistic);
    d.ks_p_value = Some(k.p_value);
    // Infinite only where the values span more than f64 (−MAX … MAX): null.
    d.wasserstein_distance = Some(j.wasserstein).filter(|w| w.is_finite());
    if let Some(w) = d.wasserstein_distance {
        let sd = (j.m2 / r.n as f64).sqrt();
        // Values near f64::MAX overflow the running moments: walk again, scaled.
        let sd = if sd.is_finite() { sd } else { r.mean_std()?.1 };
        d.wasserstein = Some(w / sd.max(0.001));
    }
    let [rc, cc] = &j.bins;
    match binning {
        Binning::Quantile => {
            d.psi = Some(psi(rc, cc));
            d.js_distance = Some(js_distance(rc, cc));
        }
        Binning::Evidently => {
            let (p, js) = evidently_distances(rc, cc);
            d.psi = Some(p);
            d.js_distance = Some(js);
        }
    }
    d.edges = Some(edges);
    Ok(d)
}

/// One side's values of a categorical column (as text), counted exactly.
#[derive(Debug)]
struct Categories {
    values: Counter,
    nulls: u64,
    n: u64,
}

impl Categories {
    fn add(&mut self, s: &Series) -> PolarsResult<()> {
        let s = s.cast(&DataType::String)?;
        let ca = s.str()?;
        self.nulls += ca.null_count() as u64;
        for v in ca.iter().flatten() {
            self.n += 1;
            self.values.add_bytes(v.as_bytes());
        }
        Ok(())
    }
}

/// PSI, Jensen–Shannon and chi-square over the reference's categories, an "other"
/// bin for the current side's new ones, and nulls ([`super::drift::category_table`],
/// walked: both sides' categories in ascending order, one pass).
fn categorical(name: &str, r: &mut Categories, c: &mut Categories) -> std::io::Result<ExactDrift> {
    let (rt, ct) = (r.n + r.nulls, c.n + c.nulls);
    let mut d = ExactDrift::new(name, r.n, c.n);
    d.spill_bytes = r.values.spill_bytes() + c.values.spill_bytes();
    let mut p = PsiSum::new(rt, ct);
    let mut js = JsSum::new(rt as f64, ct as f64);
    let mut chi = Chi2Sum::new(rt, ct);
    let mut add = |x: u64, y: u64| {
        p.add(x, y);
        js.add(x as f64, y as f64);
        chi.add(x, y);
    };
    let (mut new, mut other) = (0u64, 0u64);
    let a = r.values.sorted_bytes()?;
    let mut b = c.values.sorted_bytes()?;
    let mut cur = b.next().transpose()?;
    for next in a {
        let (k, x) = next?;
        // Current categories before this one are new.
        while let Some((ck, cy)) = &cur
            && *ck < k
        {
            new += 1;
            other += cy;
            cur = b.next().transpose()?;
        }
        let y = match &cur {
            Some((ck, cy)) if *ck == k => {
                let y = *cy;
                cur = b.next().transpose()?;
                y
            }
            _ => 0,
        };
        add(x, y);
    }
    while let Some((_, cy)) = cur {
        new += 1;
        other += cy;
        cur = b.next().transpose()?;
    }
    add(0, other);
    add(r.nulls, c.nulls);
    let both = rt > 0 && ct > 0;
    d.psi = both.then(|| p.value());
    d.js_distance = both.then(|| js.value());
    d.chi2 = both.then(|| chi.value());
    d.new_categories = Some(new);
    Ok(d)
}

impl ExactDrift {
    fn new(column: &str, reference_values: u64, current_values: u64) -> Self {
        ExactDrift {
            column: column.to_string(),
            reference_values,
            current_values,
            psi: None,
            js_distance: None,
            ks_statistic: None,
            ks_p_value: None,
            wasserstein_distance: None,
            wasserstein: None,
            edges: None,
            chi2: None,
            new_categories: None,
            spill_bytes: 0,
        }
    }
}

/// What one side of a compared column keeps.
#[derive(Debug)]
enum Values {
    Numeric(Sample),
    Categorical(Categories),
}

impl Values {
    fn counter(&mut self) -> &mut Counter {
        match self {
            Values::Numeric(s) => &mut s.values,
            Values::Categorical(c) => &mut c.values,
        }
    }
}

/// One side of one compared column: its quality statistics and its values.
#[derive(Debug)]
struct SideColumn {
    stats: ColumnStats,
    values: Values,
}

/// How `scorch drift` counts.
#[derive(Debug, Clone)]
pub struct DriftOptions {
    /// Bins per numeric column (`quantile` binning).
    pub bins: usize,
    pub binning: Binning,
    /// Bytes of exact counts held in memory, both sides and all columns together;
    /// past it the largest counters spill sorted runs to `spill_dir`.
    pub memory_budget: usize,
    /// Where spilled runs go (a folder made and removed by the comparison; default
    /// a temporary folder).
    pub spill_dir: Option<std::path::PathBuf>,
    /// The counters' in-memory thresholds (tests cross them with small data).
    pub limits: Limits,
}

impl DriftOptions {
    pub fn new(bins: usize, binning: Binning) -> Self {
        DriftOptions {
            bins,
            binning,
            memory_budget: DEFAULT_MEMORY_BUDGET_MB << 20,
            spill_dir: None,
            limits: Limits::default(),
        }
    }
}

/// An exact comparison of two datasets, fed chunk by chunk: the reference's rows,
/// then the current's (or interleaved), in bounded memory.
pub struct Comparison {
    columns: Vec<String>,
    sides: [Vec<SideColumn>; 2],
    rows: [u64; 2],
    options: DriftOptions,
    spill: Spill,
}

/// The side a chunk belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Reference,
    Current,
}

impl Comparison {
    /// Compares `columns`, typed as in the two schemas: numeric on both sides are
    /// compared as numbers, any other as categories.
    pub fn new(
        columns: &[String],
        reference: &Schema,
        current: &Schema,
        options: DriftOptions,
    ) -> PolarsResult<Self> {
        let side = |schema: &Schema| -> PolarsResult<Vec<SideColumn>> {
            columns
                .iter()
                .map(|name| {
                    let (rt, ct) = (
                        reference.try_get(name.as_str())?,
                        current.try_get(name.as_str())?,
                    );
                    let dtype = schema.try_get(name.as_str())?;
                    let mut stats = ColumnStats::new(name, dtype);
                    stats.distinct = stats.distinct.with_new_limits(options.limits);
                    let values = if rt.is_primitive_numeric() && ct.is_primitive_numeric() {
                        Values::Numeric(Sample::new(options.limits))
                    } else {
                        Values::Categorical(Categories {
                            values: Counter::with_limits(Width::Bytes, options.limits),
                            nulls: 0,
                            n: 0,
                        })
                    };
                    Ok(SideColumn { stats, values })
                })
                .collect()
        };
        let spill = Spill::new(options.memory_budget);
        if let Some(dir) = &options.spill_dir {
            spill.place_in(dir.clone());
        }
        Ok(Comparison {
            columns: columns.to_vec(),
            sides: [side(reference)?, side(current)?],
            rows: [0, 0],
            options,
            spill,
        })
    }

    /// Counts a chunk of one side (it has every compared column), columns in
    /// parallel; then spills the largest counters while the budget is passed.
    pub fn add(&mut self, side: Side, df: &DataFrame) -> PolarsResult<()> {
        let mut at = 0;
        while at < df.height() {
            let n = COUNT_ROWS.min(df.height() - at);
            self.add_part(side, &df.slice(at as i64, n))?;
            at += n;
        }
        Ok(())
    }

    fn add_part(&mut self, side: Side, df: &DataFrame) -> PolarsResult<()> {
        let cols = &mut self.sides[side as usize];
        cols.par_iter_mut().try_for_each(|c| -> PolarsResult<()> {
            let col = df.column(c.stats.name.as_str())?;
            c.stats.update(col)?;
            let s = col.as_materialized_series();
            match &mut c.values {
                Values::Numeric(v) => v.add(s),
                Values::Categorical(v) => v.add(s),
            }
        })?;
        self.rows[side as usize] += df.height() as u64;
        let [a, b] = &mut self.sides;
        let counters = a
            .iter_mut()
            .chain(b.iter_mut())
            .flat_map(|c| [&mut c.stats.distinct, c.values.counter()]);
        self.spill
            .enforce(counters)
            .map_err(|e| spill_error(e, "spilling exact counts"))
    }

    /// Rows counted on each side.
    pub fn rows(&self) -> (u64, u64) {
        (self.rows[0], self.rows[1])
    }

    /// The drift of every column, then both sides' quality metrics.
    #[allow(clippy::type_complexity)]
    pub fn finish(
        mut self,
    ) -> PolarsResult<(Vec<ExactDrift>, Vec<ColumnMetrics>, Vec<ColumnMetrics>)> {
        let (bins, binning) = (self.options.bins, self.options.binning);
        let [a, b] = &mut self.sides;
        let drift: Vec<ExactDrift> = a
            .par_iter_mut()
            .zip(b.par_iter_mut())
            .zip(&self.columns)
            .map(|((r, c), name)| match (&mut r.values, &mut c.values) {
                (Values::Numeric(r), Values::Numeric(c)) => numeric(name, r, c, bins, binning),
                (Values::Categorical(r), Values::Categorical(c)) => categorical(name, r, c),
                _ => unreachable!("both sides of a column are typed alike"),
            })
            .collect::<std::io::Result<_>>()
            .map_err(|e| spill_error(e, "reading spilled counts"))?;
        let quality = |cols: &mut Vec<SideColumn>| -> PolarsResult<Vec<ColumnMetrics>> {
            cols.par_iter_mut()
                .map(|c| {
                    // Summarized once, in place (unresolved, `metrics` would copy the counts).
                    c.stats
                        .resolve()
                        .map_err(|e| spill_error(e, "counting exact value frequencies"))?;
                    Ok(c.stats.metrics())
                })
                .collect()
        };
        let (q_ref, q_cur) = (quality(a)?, quality(b)?);
        Ok((drift, q_ref, q_cur))
    }
}

fn spill_error(e: std::io::Error, what: &str) -> PolarsError {
    PolarsError::IO {
        error: std::sync::Arc::new(e),
        msg: Some(what.to_string().into()),
    }
}

/// The drift of `columns` between two frames held in memory (see the module docs),
/// fed in chunks of `chunk_rows`.
pub fn drift_frames(
    reference: &DataFrame,
    current: &DataFrame,
    columns: &[String],
    options: DriftOptions,
    chunk_rows: usize,
) -> PolarsResult<Vec<ExactDrift>> {
    let mut cmp = Comparison::new(columns, reference.schema(), current.schema(), options)?;
    for (side, df) in [(Side::Reference, reference), (Side::Current, current)] {
        let mut at = 0;
        loop {
            let n = chunk_rows.max(1).min(df.height() - at);
            cmp.add(side, &df.slice(at as i64, n))?;
            at += n;
            if at >= df.height() {
                break;
            }
        }
    }
    Ok(cmp.finish()?.0)
}

/// Chunks of a dataset's rows, in order.
pub type Chunks<'a> = Box<dyn Iterator<Item = crate::error::Result<DataFrame>> + 'a>;

/// One side of `scorch drift`: what the user named, its columns, and a reader of
/// its rows (of the columns asked for) in chunks.
pub struct Dataset<'a> {
    pub name: &'a str,
    pub schema: Schema,
    #[allow(clippy::type_complexity)]
    pub read: Box<dyn FnOnce(&[String]) -> crate::error::Result<Chunks<'a>> + 'a>,
}

/// Rows counted between two checks of the memory budget (a chunk read is cut so).
const COUNT_ROWS: usize = 1 << 16;

/// `scorch drift`'s JSON: exact drift of `columns` (default: every column both
/// sides have; a named column missing from either side is a data error naming it)
/// and both sides' column metrics, with the time taken. Both sides are read in
/// chunks (row group by row group), never whole. Returns the number of columns
/// compared and the document.
pub fn drift_document<'a>(
    reference: Dataset<'a>,
    current: Dataset<'a>,
    columns: &[String],
    options: DriftOptions,
) -> crate::error::Result<(usize, serde_json::Value)> {
    let started = std::time::Instant::now();
    let (r_schema, c_schema) = (reference.schema.clone(), current.schema.clone());
    let columns: Vec<String> = if columns.is_empty() {
        r_schema
            .iter_names()
            .filter(|n| c_schema.contains(n.as_str()))
            .map(|n| n.to_string())
            .collect()
    } else {
        for n in columns {
            for (side, schema) in [(reference.name, &r_schema), (current.name, &c_schema)] {
                if !schema.contains(n.as_str()) {
                    return Err(crate::error::Error::DataContract(format!(
                        "column `{n}` (from --columns) is not in {side}"
                    )));
                }
            }
        }
        columns.to_vec()
    };
    let (bins, binning, budget) = (options.bins, options.binning, options.memory_budget);
    let mut cmp = Comparison::new(&columns, &r_schema, &c_schema, options)?;
    let mut read_s = 0.0;
    let names = (reference.name, current.name);
    for (side, data) in [(Side::Reference, reference), (Side::Current, current)] {
        let name = data.name;
        let mut chunks = (data.read)(&columns)?;
        loop {
            let t = std::time::Instant::now();
            let Some(df) = chunks.next() else { break };
            read_s += t.elapsed().as_secs_f64();
            let df = df.map_err(|e| e.context(format!("reading {name}")))?;
            cmp.add(side, &df)?;
        }
    }
    let counted_s = started.elapsed().as_secs_f64();
    let (rows_r, rows_c) = cmp.rows();
    let (out, q_ref, q_cur) = cmp.finish()?;
    let spill_bytes: u64 = out.iter().map(|d| d.spill_bytes).sum::<u64>()
        + q_ref
            .iter()
            .chain(&q_cur)
            .map(|m| m.spill_bytes)
            .sum::<u64>();
    let doc = serde_json::json!({
        "reference": names.0,
        "current": names.1,
        "reference_rows": rows_r,
        "current_rows": rows_c,
        "binning": binning,
        "bins": bins,
        "memory_budget_mb": budget >> 20,
        "spill_bytes": spill_bytes,
        "read_seconds": read_s,
        "compute_seconds": started.elapsed().as_secs_f64() - read_s,
        "drift_seconds": started.elapsed().as_secs_f64() - counted_s,
        "columns": out,
        "quality": {"reference": q_ref, "current": q_cur},
    });
    Ok((columns.len(), doc))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::divergence::{bin_sorted, quantile_edges};

    #[test]
    fn quantile_edges_follow_numpy_linear() {
        let x: Vec<f64> = (0..11).map(|i| i as f64).collect();
        assert_eq!(quantile_edges(&x, 4), vec![2.5, 5.0, 7.5]);
        // Constant data: one edge.
        assert_eq!(quantile_edges(&[3.0; 5], 10), vec![3.0]);
    }

    #[test]
    fn bins_count_like_searchsorted_right() {
        let x = [0.5, 1.0, 2.5, 3.0, 3.0];
        assert_eq!(bin_sorted(&x, &[1.0, 2.0, 3.0]), vec![1, 1, 1, 2]);
    }

    use crate::reports::drift::{category_table, count_categories};
    use crate::stats::divergence::chi2_contingency;
    use proptest::prelude::*;

    fn value() -> impl Strategy<Value = Option<f64>> {
        proptest::option::weighted(
            0.9,
            prop_oneof![
                4 => (-4i32..4).prop_map(f64::from),
                2 => -1e3..1e3f64,
                1 => proptest::num::f64::ANY,
                1 => prop_oneof![
                    Just(f64::INFINITY),
                    Just(f64::NEG_INFINITY),
                    Just(f64::NAN),
                    Just(f64::MAX),
                    Just(-f64::MAX),
                    Just(5e-324),
                    Just(-0.0),
                ],
            ],
        )
    }

    fn sorted_finite(v: &[Option<f64>]) -> Vec<f64> {
        let mut v: Vec<f64> = v
            .iter()
            .flatten()
            .copied()
            .filter(|x| x.is_finite())
            .collect();
        ks::radix_sort(&mut v);
        v
    }

    fn options(
        binning: Binning,
        budget: usize,
        map: usize,
        buffer: usize,
        dir: &std::path::Path,
    ) -> DriftOptions {
        let mut o = DriftOptions::new(10, binning);
        o.memory_budget = budget;
        o.limits = Limits {
            map_entries: map,
            buffer_rows: buffer,
        };
        o.spill_dir = Some(dir.join("spill"));
        o
    }

    /// The oracle: the statistics over the sorted values in memory.
    fn numeric_oracle(r: &[f64], c: &[f64], binning: Binning) -> ExactDrift {
        let mut d = ExactDrift::new("x", r.len() as u64, c.len() as u64);
        if r.is_empty() || c.is_empty() {
            return d;
        }
        let k = ks::ks_2samp(r, c).unwrap();
        d.ks_statistic = Some(k.statistic);
        d.ks_p_value = Some(k.p_value);
        d.wasserstein_distance = ks::wasserstein(r, c).filter(|w| w.is_finite());
        d.wasserstein = d
            .wasserstein_distance
            .map(|w| w / crate::stats::mean_std(r).1.max(0.001));
        match binning {
            Binning::Quantile => {
                let edges = quantile_edges(r, 10);
                let (rc, cc) = (bin_sorted(r, &edges), bin_sorted(c, &edges));
                d.psi = Some(psi(&rc, &cc));
                d.js_distance = Some(js_distance(&rc, &cc));
                d.edges = Some(edges);
            }
            Binning::Evidently => {
                let lo = r[0].min(c[0]);
                let hi = r[r.len() - 1].max(c[c.len() - 1]);
                let edges = sturges_edges((r.len() + c.len()) as u64, lo, hi);
                let inner = &edges[1..edges.len() - 1];
                let (p, js) = evidently_distances(&bin_sorted(r, inner), &bin_sorted(c, inner));
                d.psi = Some(p);
                d.js_distance = Some(js);
                d.edges = Some(edges);
            }
        }
        d
    }

    fn same(a: Option<f64>, b: Option<f64>) -> bool {
        match (a, b) {
            (Some(a), Some(b)) => a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()),
            (None, None) => true,
            _ => false,
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 192, ..ProptestConfig::default() })]

        /// Streamed in chunks of any size, counted in memory or spilled at every
        /// chunk, with the counters' thresholds crossed: every figure equals the one
        /// over the sorted values in memory, to the bit (the normalized Wasserstein
        /// within 1e-9: the standard deviation is summed in another order).
        #[test]
        fn streamed_numeric_drift_equals_the_sorted_values(
            r in proptest::collection::vec(value(), 0..400),
            c in proptest::collection::vec(value(), 0..400),
            chunk in 1usize..120,
            budget in prop_oneof![Just(0usize), Just(1usize << 12), Just(usize::MAX >> 1)],
            map in prop_oneof![Just(1usize), 2usize..40, Just(1usize << 16)],
            buffer in prop_oneof![Just(1usize), 2usize..64, Just(usize::MAX)],
        ) {
            let dir = tempfile::tempdir().unwrap();
            let (rs, cs) = (sorted_finite(&r), sorted_finite(&c));
            let rdf = df!("x" => r).unwrap();
            let cdf = df!("x" => c).unwrap();
            for binning in [Binning::Quantile, Binning::Evidently] {
                let want = numeric_oracle(&rs, &cs, binning);
                let got = drift_frames(&rdf, &cdf, &["x".into()], options(binning, budget, map, buffer, dir.path()), chunk).unwrap();
                let got = &got[0];
                prop_assert_eq!(got.reference_values, want.reference_values);
                prop_assert_eq!(got.current_values, want.current_values);
                for (name, a, b) in [
                    ("ks", got.ks_statistic, want.ks_statistic),
                    ("ks_p", got.ks_p_value, want.ks_p_value),
                    ("w", got.wasserstein_distance, want.wasserstein_distance),
                    ("psi", got.psi, want.psi),
                    ("js", got.js_distance, want.js_distance),
                ] {
                    prop_assert!(same(a, b), "{} {:?}: {:?} != {:?}", name, binning, a, b);
                }
                match (got.wasserstein, want.wasserstein) {
                    (Some(a), Some(b)) => prop_assert!((a - b).abs() <= 1e-9 * b.abs().max(1e-300) || a == b, "{} != {}", a, b),
                    (a, b) => prop_assert_eq!(a.is_none(), b.is_none()),
                }
                let (ge, we) = (got.edges.clone().unwrap_or_default(), want.edges.clone().unwrap_or_default());
                prop_assert_eq!(ge.len(), we.len());
                // (-0.0 and 0.0 alike: the sample's smallest value is counted as 0.0.)
                prop_assert!(ge.iter().zip(&we).all(|(a, b)| a == b), "{:?} != {:?}", ge, we);
                if budget == 0 && (!rs.is_empty() || !cs.is_empty()) {
                    prop_assert!(got.spill_bytes > 0, "nothing spilled at budget 0");
                }
            }
            prop_assert!(!dir.path().join("spill").exists(), "the spill folder is left behind");
        }

        /// Categories (any strings, nulls) streamed and spilled: PSI, JS and
        /// chi-square equal those over the category table in memory, to the bit.
        #[test]
        fn streamed_categorical_drift_equals_the_category_table(
            r in proptest::collection::vec(proptest::option::weighted(0.9, prop_oneof![4 => "[a-e]", 1 => ".{0,12}", 1 => Just(String::new())]), 0..300),
            c in proptest::collection::vec(proptest::option::weighted(0.9, prop_oneof![4 => "[a-g]", 1 => ".{0,12}"]), 0..300),
            chunk in 1usize..100,
            budget in prop_oneof![Just(0usize), Just(usize::MAX >> 1)],
        ) {
            let dir = tempfile::tempdir().unwrap();
            let rdf = df!("x" => r).unwrap();
            let cdf = df!("x" => c).unwrap();
            let count = |df: &DataFrame| {
                let mut m = BTreeMap::new();
                let n = count_categories(df.column("x").unwrap().as_materialized_series(), &mut m).unwrap();
                (m, n)
            };
            let ((rm, rn), (cm, cn)) = (count(&rdf), count(&cdf));
            let (rv, cv, new) = category_table(&rm, rn, &cm, cn);
            let got = drift_frames(&rdf, &cdf, &["x".into()], options(Binning::Quantile, budget, 1 << 16, usize::MAX, dir.path()), chunk).unwrap();
            let got = &got[0];
            let both = rdf.height() > 0 && cdf.height() > 0;
            prop_assert_eq!(got.new_categories, Some(new));
            prop_assert!(same(got.psi, both.then(|| psi(&rv, &cv))));
            prop_assert!(same(got.js_distance, both.then(|| js_distance(&rv, &cv))));
            let (g, w) = (got.chi2.clone(), both.then(|| chi2_contingency(&rv, &cv)));
            prop_assert_eq!(g.is_some(), w.is_some());
            if let (Some(g), Some(w)) = (g, w) {
                prop_assert_eq!(g.dof, w.dof);
                prop_assert!(same(Some(g.statistic), Some(w.statistic)) && same(Some(g.p_value), Some(w.p_value)), "{:?} != {:?}", g, w);
            }
            prop_assert!(!dir.path().join("spill").exists());
        }
    }
}
