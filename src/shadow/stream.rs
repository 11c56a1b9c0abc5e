//! The shadow comparison in bounded memory, at any row count: rows are fed chunk by
//! chunk as compact records; each grouping (the overall section, each segment
//! column) sorts them externally ([`super::sorted`]) by the champion's score, then
//! — with the champion's ranks attached — by the challenger's, and walks each sort
//! once:
//!
//! - walk 1 (champion order): average ranks, the champion's top-k rows, its AUC,
//!   and each bootstrap resample's weighted AUC;
//! - walk 2 (challenger order): the challenger's ranks (Spearman from both), its
//!   top-k and their overlap, its AUC and the resamples' weighted AUC and loss
//!   sums, and every order-free figure (means, differences, Pearson, agreement,
//!   positive rates, log loss, Brier, accuracy).
//!
//! The PSI and KS between the two score distributions come from exact counts of
//! each side's values ([`crate::reports::exact::Paired`], `scorch drift`'s
//! numeric comparison: finite values only). Every figure is the one the formulas
//! of [`super::metrics`] give over all rows held in memory: counts, ranks, top-k
//! sets, AUCs, KS and PSI exactly, sums up to their order of summation.
//!
//! A bootstrap resample weighs row `i` by a Poisson(1) draw from a generator keyed
//! by the seed, the resample and the row's place in the input, so a row has the
//! same weight in every section and however the rows were read.

use std::io;

use rayon::prelude::*;

use super::compare::{
    AtThreshold, BOOTSTRAP_SEED, Delta, Labelled, PSI_BINS, Poisson1, Quality, Section, TOP_K,
    TopK, interval, metric_names,
};
use super::sorted::{By, Rec, Sorter, Ties};
use crate::reports::distinct::{Limits, Spill};
use crate::reports::exact::Paired;

/// Records of one run of equal scores held in memory before it goes to a file, and
/// rows handed to the bootstrap at once: at most 65,536, fewer in small budgets.
fn limits(budget: usize) -> (usize, usize) {
    (
        (budget / 64).clamp(1, 1 << 16),
        (budget / 64).clamp(1, 1 << 16),
    )
}

/// The settings of a comparison.
#[derive(Debug, Clone)]
pub struct Settings {
    pub thresholds: Vec<f64>,
    pub bootstrap: usize,
    /// Bytes of sort buffers and exact counts held in memory, all groupings together.
    pub budget: usize,
}

/// Bins of the score histogram.
pub const HISTOGRAM_BINS: usize = 20;

/// Both scores' counts in equal-width bins over their common range.
#[derive(Debug, Clone)]
pub struct ScoreHistogram {
    pub lo: f64,
    pub width: f64,
    pub champion: Vec<u64>,
    pub challenger: Vec<u64>,
}

/// What is known of a group once its rows are fed.
#[derive(Debug)]
struct GroupFeed {
    n: u64,
    max_abs: [f64; 2],
    samples: Paired,
}

/// One grouping: the overall section (one group) or a segment column's values.
pub struct Grouping {
    sorter: Sorter,
    groups: Vec<GroupFeed>,
}

/// The rows of a comparison, fed in chunks, and every grouping's state.
pub struct Comparison {
    settings: Settings,
    groupings: Vec<Grouping>,
    spill: Spill,
    /// The range of every score seen (NaN left out), for the histogram.
    range: (f64, f64),
}

/// A fed row: the group of each grouping after the overall one (`None`: not in
/// any reported value of that segment column).
pub struct Row<'a> {
    pub a: f64,
    pub b: f64,
    pub label: Option<bool>,
    pub row: u64,
    pub groups: &'a [Option<u32>],
}

fn scale_of(m: f64) -> f64 {
    if m > 0.0 && m.is_finite() { m } else { 1.0 }
}

impl Comparison {
    /// A comparison with one grouping per entry of `group_counts` after the overall
    /// one (the number of reported values of each segment column).
    pub fn new(settings: Settings, group_counts: &[usize]) -> Self {
        let groupings_n = 1 + group_counts.len();
        let per = settings.budget / 2 / groupings_n;
        let spill = Spill::new(settings.budget / 2);
        let limits = Limits::default();
        let grouping = |k: usize| Grouping {
            sorter: Sorter::new(By::Champion, per),
            groups: (0..k)
                .map(|_| GroupFeed {
                    n: 0,
                    max_abs: [0.0, 0.0],
                    samples: Paired::new(limits),
                })
                .collect(),
        };
        let mut groupings = vec![grouping(1)];
        groupings.extend(group_counts.iter().map(|&k| grouping(k)));
        Comparison {
            settings,
            groupings,
            spill,
            range: (f64::INFINITY, f64::NEG_INFINITY),
        }
    }

    /// Feeds rows.
    pub fn add(&mut self, rows: &[Row<'_>]) -> io::Result<()> {
        for r in rows {
            self.range.0 = self.range.0.min(r.a).min(r.b);
            self.range.1 = self.range.1.max(r.a).max(r.b);
        }
        for (gi, grouping) in self.groupings.iter_mut().enumerate() {
            let mut per: Vec<(Vec<f64>, Vec<f64>)> = vec![(vec![], vec![]); grouping.groups.len()];
            for r in rows {
                let g = if gi == 0 {
                    0
                } else {
                    match r.groups[gi - 1] {
                        Some(g) => g,
                        None => continue,
                    }
                };
                let f = &mut grouping.groups[g as usize];
                f.n += 1;
                f.max_abs[0] = f.max_abs[0].max(r.a.abs());
                f.max_abs[1] = f.max_abs[1].max(r.b.abs());
                per[g as usize].0.push(r.a);
                per[g as usize].1.push(r.b);
                grouping.sorter.push(Rec {
                    group: g,
                    label: match r.label {
                        Some(false) => 0,
                        Some(true) => 1,
                        None => 2,
                    },
                    top: 0,
                    a: r.a,
                    b: r.b,
                    row: r.row,
                    rank_a: 0.0,
                })?;
            }
            grouping
                .groups
                .par_iter_mut()
                .zip(per.par_iter())
                .for_each(|(f, (a, b))| {
                    if !a.is_empty() {
                        f.samples.add(a, b)
                    }
                });
        }
        let counters = self
            .groupings
            .iter_mut()
            .flat_map(|g| g.groups.iter_mut())
            .flat_map(|f| f.samples.counters());
        self.spill.enforce(counters)
    }

    /// Every grouping's sections (one per group, in group order), the histogram
    /// of all rows, and the bytes spilled.
    pub fn finish(self) -> io::Result<(Vec<Vec<Section>>, Option<ScoreHistogram>, u64)> {
        let (lo, hi) = self.range;
        let histogram = (lo.is_finite() && hi.is_finite()).then(|| ScoreHistogram {
            lo,
            width: ((hi - lo) / HISTOGRAM_BINS as f64).max(1e-12),
            champion: vec![0; HISTOGRAM_BINS],
            challenger: vec![0; HISTOGRAM_BINS],
        });
        let mut out = Vec::new();
        let mut spilled = 0;
        let mut histogram = histogram;
        let per = self.settings.budget / 2 / self.groupings.len();
        for (gi, grouping) in self.groupings.into_iter().enumerate() {
            let h = if gi == 0 { histogram.as_mut() } else { None };
            let (sections, bytes) = grouping.finish(&self.settings, per, h)?;
            spilled += bytes;
            out.push(sections);
        }
        Ok((out, histogram, spilled))
    }
}

/// A weighted AUC being summed in score order (integer sums: ties' ½ stays exact).
#[derive(Debug, Clone, Default)]
struct AucSum {
    neg_below: u64,
    num2: u128,
    tp: u64,
    tn: u64,
    gp: u64,
    gn: u64,
}

impl AucSum {
    fn close_tie(&mut self) {
        // Most ties of a resample hold no positive weight: no 128-bit product then.
        if self.gp != 0 {
            self.num2 += u128::from(self.gp) * u128::from(2 * self.neg_below + self.gn);
        }
        self.neg_below += self.gn;
        self.tp += self.gp;
        self.tn += self.gn;
        self.gp = 0;
        self.gn = 0;
    }

    /// Branch-free: which class a row is in is a coin toss for the branch predictor.
    #[inline]
    fn add(&mut self, positive: bool, w: u64) {
        let p = u64::from(positive);
        self.gp += w * p;
        self.gn += w * (1 - p);
    }

    fn value(&mut self) -> f64 {
        self.close_tie();
        let (tp, tn) = (self.tp as f64, self.tn as f64);
        if tp > 0.0 && tn > 0.0 {
            self.num2 as f64 / 2.0 / (tp * tn)
        } else {
            f64::NAN
        }
    }
}

/// One labelled row as the bootstrap sees it.
#[derive(Debug, Clone, Copy)]
struct Entry {
    row: u64,
    positive: bool,
    /// The row starts a new run of equal scores.
    new_tie: bool,
    /// The score counts for the AUC (not NaN).
    ranked: bool,
    /// Challenger's log loss minus champion's, and Brier score likewise.
    dll: f64,
    dbr: f64,
    /// Bit `t`: correct at threshold `t`, champion and challenger.
    ca: u64,
    cb: u64,
}

/// Each resample's sums over one group, in one walk.
struct Resamples {
    poisson: Poisson1,
    seeds: Vec<u64>,
    auc: Vec<AucSum>,
    /// Walk 2 only: total weight, weighted log-loss and Brier differences, and
    /// accuracy differences per threshold.
    total: Vec<u64>,
    ll: Vec<f64>,
    br: Vec<f64>,
    acc: Vec<Vec<i64>>,
    block: Vec<Entry>,
    block_rows: usize,
    losses: bool,
    thresholds: usize,
}

impl Resamples {
    fn new(resamples: usize, thresholds: usize, losses: bool, block_rows: usize) -> Self {
        Resamples {
            poisson: Poisson1::new(),
            seeds: (0..resamples as u64)
                .map(|r| BOOTSTRAP_SEED ^ r.wrapping_mul(0xD1B5_4A32_D192_ED03))
                .collect(),
            auc: vec![AucSum::default(); resamples],
            total: vec![0; resamples],
            ll: vec![0.0; resamples],
            br: vec![0.0; resamples],
            acc: vec![vec![0; thresholds]; resamples],
            block: Vec::new(),
            block_rows,
            losses,
            thresholds,
        }
    }

    fn push(&mut self, e: Entry) {
        if self.seeds.is_empty() {
            return;
        }
        self.block.push(e);
        if self.block.len() >= self.block_rows {
            self.flush();
        }
    }

    fn flush(&mut self) {
        let block = std::mem::take(&mut self.block);
        let (poisson, losses, nt) = (&self.poisson, self.losses, self.thresholds);
        self.seeds
            .par_iter()
            .zip(self.auc.par_iter_mut())
            .zip(self.total.par_iter_mut())
            .zip(self.ll.par_iter_mut())
            .zip(self.br.par_iter_mut())
            .zip(self.acc.par_iter_mut())
            .for_each(|(((((&seed, auc), total), ll), br), acc)| {
                for e in &block {
                    let w = u64::from(poisson.weight(seed, e.row));
                    if e.ranked {
                        if e.new_tie {
                            auc.close_tie();
                        }
                        auc.add(e.positive, w);
                    }
                    if losses {
                        // Without a branch on the weight (zero for a third of the
                        // rows, at random): a zero weight adds nothing, and a row
                        // left out adds no NaN of its own to the sums.
                        *total += w;
                        let wf = w as f64;
                        let keep = w != 0;
                        *ll += if keep { e.dll * wf } else { 0.0 };
                        *br += if keep { e.dbr * wf } else { 0.0 };
                        for (t, s) in acc.iter_mut().enumerate().take(nt) {
                            let d =
                                i64::from((e.cb >> t) & 1 == 1) - i64::from((e.ca >> t) & 1 == 1);
                            *s += d * w as i64;
                        }
                    }
                }
            });
        self.block = block;
        self.block.clear();
    }

    /// Each resample's AUC, then (walk 2) its mean differences.
    fn finish(mut self) -> (Vec<f64>, Vec<Vec<f64>>) {
        self.flush();
        let aucs: Vec<f64> = self.auc.iter_mut().map(AucSum::value).collect();
        let per = (0..self.seeds.len())
            .map(|r| {
                let t = self.total[r] as f64;
                let mut d = vec![self.ll[r] / t, self.br[r] / t];
                d.extend(self.acc[r].iter().map(|&s| s as f64 / t));
                d
            })
            .collect();
        (aucs, per)
    }
}

/// The (unweighted) AUC of one score, summed in score order as
/// [`crate::stats::calibration::realized_auc`] sums it.
#[derive(Debug, Default)]
struct Auc {
    neg_below: f64,
    sum: f64,
    pos: f64,
    neg: f64,
}

impl Auc {
    fn tie(&mut self, p_k: f64, n_k: f64) {
        self.sum += p_k * (self.neg_below + 0.5 * n_k);
        self.neg_below += n_k;
        self.pos += p_k;
        self.neg += n_k;
    }

    fn value(&self) -> Option<f64> {
        (self.pos > 0.0 && self.neg > 0.0)
            .then(|| self.sum / (self.pos * self.neg))
            .filter(|v| v.is_finite())
    }
}

/// A Welford co-moment of two series.
#[derive(Debug, Default)]
struct CoMoment {
    n: f64,
    mx: f64,
    my: f64,
    cxy: f64,
    cxx: f64,
    cyy: f64,
}

impl CoMoment {
    fn add(&mut self, x: f64, y: f64) {
        self.n += 1.0;
        let dx = x - self.mx;
        self.mx += dx / self.n;
        let dy = y - self.my;
        self.my += dy / self.n;
        self.cxy += dx * (y - self.my);
        self.cxx += dx * (x - self.mx);
        self.cyy += dy * (y - self.my);
    }

    /// Pearson's correlation ([`super::metrics::pearson`]).
    fn correlation(&self) -> Option<f64> {
        if self.n < 2.0 || self.cxx == 0.0 || self.cyy == 0.0 {
            return None;
        }
        Some((self.cxy / (self.cxx.sqrt() * self.cyy.sqrt())).clamp(-1.0, 1.0))
            .filter(|r| r.is_finite())
    }
}

/// A compensated (Neumaier) sum.
#[derive(Debug, Default)]
struct Sum {
    s: f64,
    c: f64,
}

impl Sum {
    fn add(&mut self, x: f64) {
        let t = self.s + x;
        if !t.is_finite() {
            // ±inf or NaN: the plain sum's value (the compensation would be NaN).
            self.s = t;
            return;
        }
        if self.s.abs() >= x.abs() {
            self.c += (self.s - t) + x;
        } else {
            self.c += (x - t) + self.s;
        }
        self.s = t;
    }

    fn value(&self) -> f64 {
        if self.s.is_finite() {
            self.s + self.c
        } else {
            self.s
        }
    }
}

/// Rows of a group in the top share `k` of `n`: `ceil(k·n)`, at least one.
fn top_count(k: f64, n: u64) -> u64 {
    ((k * n as f64).ceil() as u64).clamp(1, n.max(1))
}

fn bin(h: &ScoreHistogram, x: f64) -> Option<usize> {
    (!x.is_nan()).then(|| (((x - h.lo) / h.width) as usize).min(HISTOGRAM_BINS - 1))
}

/// Walk 1 of one group: ranks and top-k bits set, records sent on to the second
/// sort; the champion's AUC and resampled AUCs.
struct First {
    n: u64,
    pos: u64,
    ties: Ties,
    tie_value: f64,
    auc: Auc,
    boot: Resamples,
}

impl First {
    fn new(n: u64, s: &Settings, first: f64) -> Self {
        First {
            n,
            pos: 0,
            ties: Ties::new(limits(s.budget).0),
            tie_value: first,
            auc: Auc::default(),
            boot: Resamples::new(s.bootstrap, 0, false, limits(s.budget).1),
        }
    }

    fn close_tie(
        &mut self,
        next: &mut Sorter,
        hist: &mut Option<&mut ScoreHistogram>,
    ) -> io::Result<()> {
        if self.ties.is_empty() {
            return Ok(());
        }
        let start = self.pos - self.ties.len();
        let rank = start as f64 + (self.ties.len() as f64 + 1.0) / 2.0;
        let (mut p_k, mut n_k, mut first) = (0.0, 0.0, true);
        let boot = &mut self.boot;
        self.ties.drain(|mut r| {
            r.rank_a = rank;
            if let Some(h) = hist.as_deref_mut()
                && let Some(i) = bin(h, r.a)
            {
                h.champion[i] += 1;
            }
            if let Some(y) = r.labelled() {
                let ranked = !r.a.is_nan();
                if ranked {
                    if y { p_k += 1.0 } else { n_k += 1.0 }
                }
                boot.push(Entry {
                    row: r.row,
                    positive: y,
                    new_tie: std::mem::take(&mut first),
                    ranked,
                    dll: 0.0,
                    dbr: 0.0,
                    ca: 0,
                    cb: 0,
                });
            }
            next.push(r)
        })?;
        if !self.tie_value.is_nan() {
            self.auc.tie(p_k, n_k);
        }
        Ok(())
    }

    /// Ends the group: its AUC and each resample's.
    fn end(
        mut self,
        next: &mut Sorter,
        hist: &mut Option<&mut ScoreHistogram>,
    ) -> io::Result<(Option<f64>, Vec<f64>)> {
        self.close_tie(next, hist)?;
        Ok((self.auc.value(), self.boot.finish().0))
    }
}

/// Walk 2's order-free sums and counts of one group.
#[derive(Default)]
struct Sums {
    mean_a: Sum,
    mean_b: Sum,
    mean_diff: Sum,
    max_diff: Option<f64>,
    scores: CoMoment,
    ranks: CoMoment,
    /// A score was NaN (no rank correlation, as scipy's `spearmanr`).
    nan: bool,
    agree: Vec<u64>,
    pos_a: Vec<u64>,
    pos_b: Vec<u64>,
    inter: [u64; 3],
    labelled: u64,
    positives: u64,
    ll: [Sum; 2],
    br: [Sum; 2],
    correct: [Vec<u64>; 2],
}

fn log_loss_of(q: f64, y: bool) -> f64 {
    let eps = f64::EPSILON;
    let q = q.clamp(eps, 1.0 - eps);
    if y { -q.ln() } else { -(1.0 - q).ln() }
}

fn brier_of(q: f64, y: bool) -> f64 {
    (q - if y { 1.0 } else { 0.0 }).powi(2)
}

impl Grouping {
    fn finish(
        self,
        s: &Settings,
        budget: usize,
        mut hist: Option<&mut ScoreHistogram>,
    ) -> io::Result<(Vec<Section>, u64)> {
        let Grouping { sorter, groups } = self;
        let mut spilled = sorter.spill_bytes;
        // Walk 1.
        let mut second = Sorter::new(By::Challenger, budget);
        let mut auc_a: Vec<Option<f64>> = vec![None; groups.len()];
        let mut boot_a: Vec<Vec<f64>> = vec![vec![]; groups.len()];
        let mut cur: Option<(u32, First)> = None;
        for r in sorter.finish()? {
            let mut r = r?;
            if cur.as_ref().is_none_or(|(g, _)| *g != r.group) {
                if let Some((g, f)) = cur.take() {
                    (auc_a[g as usize], boot_a[g as usize]) = f.end(&mut second, &mut hist)?;
                }
                cur = Some((r.group, First::new(groups[r.group as usize].n, s, r.a)));
            }
            let (_, f) = cur.as_mut().expect("set");
            if !f.ties.is_empty() && r.a != f.tie_value {
                f.close_tie(&mut second, &mut hist)?;
            }
            if f.ties.is_empty() {
                f.tie_value = r.a;
            }
            for (k, &(share, _)) in TOP_K.iter().enumerate() {
                if f.pos >= f.n - top_count(share, f.n) {
                    r.top |= 1 << k;
                }
            }
            f.pos += 1;
            f.ties.push(r)?;
        }
        if let Some((g, f)) = cur.take() {
            (auc_a[g as usize], boot_a[g as usize]) = f.end(&mut second, &mut hist)?;
        }
        spilled += second.spill_bytes;
        // Walk 2.
        let mut sections: Vec<Option<Section>> = (0..groups.len()).map(|_| None).collect();
        let mut state: Option<(u32, Second)> = None;
        let mut done = |g: u32, mut w: Second, hist: &mut Option<&mut ScoreHistogram>| {
            w.close_tie(s, hist)?;
            let f = &groups[g as usize];
            sections[g as usize] = Some(w.section(s, auc_a[g as usize], &boot_a[g as usize], f));
            Ok::<(), io::Error>(())
        };
        for r in second.finish()? {
            let r = r?;
            if state.as_ref().is_none_or(|(g, _)| *g != r.group) {
                if let Some((g, w)) = state.take() {
                    done(g, w, &mut hist)?;
                }
                let f = &groups[r.group as usize];
                state = Some((r.group, Second::new(f, s, r.b)));
            }
            let (_, w) = state.as_mut().expect("set");
            if !w.ties.is_empty() && r.b != w.tie_value {
                w.close_tie(s, &mut hist)?;
            }
            if w.ties.is_empty() {
                w.tie_value = r.b;
            }
            let mut r = r;
            for (k, &(share, _)) in TOP_K.iter().enumerate() {
                if w.pos >= w.n - top_count(share, w.n) && r.top & (1 << k) != 0 {
                    // Both tops: counted on the way out (the bit is reused).
                    r.top |= 1 << (k + 4);
                }
            }
            w.pos += 1;
            w.ties.push(r)?;
        }
        if let Some((g, w)) = state.take() {
            done(g, w, &mut hist)?;
        }
        let mut groups = groups;
        let mut out = Vec::with_capacity(groups.len());
        for (g, f) in groups.iter_mut().enumerate() {
            let mut sec = sections[g].take().unwrap_or_else(|| empty_section(s));
            let drift = f.samples.compare(PSI_BINS)?;
            spilled += drift.spill_bytes;
            sec.psi = drift.psi;
            sec.ks = drift.ks_statistic;
            sec.ks_p_value = drift.ks_p_value;
            out.push(sec);
        }
        Ok((out, spilled))
    }
}

/// Walk 2 of one group.
struct Second {
    n: u64,
    pos: u64,
    ties: Ties,
    tie_value: f64,
    scale: [f64; 2],
    auc: Auc,
    boot: Resamples,
    sums: Sums,
}

impl Second {
    fn new(f: &GroupFeed, s: &Settings, first: f64) -> Self {
        let nt = s.thresholds.len();
        Second {
            n: f.n,
            pos: 0,
            ties: Ties::new(limits(s.budget).0),
            tie_value: first,
            scale: [scale_of(f.max_abs[0]), scale_of(f.max_abs[1])],
            auc: Auc::default(),
            boot: Resamples::new(s.bootstrap, nt, true, limits(s.budget).1),
            sums: Sums {
                agree: vec![0; nt],
                pos_a: vec![0; nt],
                pos_b: vec![0; nt],
                correct: [vec![0; nt], vec![0; nt]],
                ..Sums::default()
            },
        }
    }

    fn close_tie(
        &mut self,
        s: &Settings,
        hist: &mut Option<&mut ScoreHistogram>,
    ) -> io::Result<()> {
        if self.ties.is_empty() {
            return Ok(());
        }
        let start = self.pos - self.ties.len();
        let rank = start as f64 + (self.ties.len() as f64 + 1.0) / 2.0;
        let (mut p_k, mut n_k, mut first) = (0.0, 0.0, true);
        let n = self.n as f64;
        let (sums, boot, scale) = (&mut self.sums, &mut self.boot, self.scale);
        self.ties.drain(|r| {
            if let Some(h) = hist.as_deref_mut()
                && let Some(i) = bin(h, r.b)
            {
                h.challenger[i] += 1;
            }
            let d = (r.a - r.b).abs();
            sums.mean_a.add(r.a / n);
            sums.mean_b.add(r.b / n);
            sums.mean_diff.add(d / n);
            sums.max_diff = Some(sums.max_diff.map_or(d, |m| m.max(d)));
            sums.scores.add(r.a / scale[0], r.b / scale[1]);
            sums.ranks.add(r.rank_a / n, rank / n);
            sums.nan |= r.a.is_nan() || r.b.is_nan();
            for (t, &th) in s.thresholds.iter().enumerate() {
                let (pa, pb) = (r.a >= th, r.b >= th);
                sums.agree[t] += u64::from(pa == pb);
                sums.pos_a[t] += u64::from(pa);
                sums.pos_b[t] += u64::from(pb);
            }
            for k in 0..TOP_K.len() {
                sums.inter[k] += u64::from(r.top & (1 << (k + 4)) != 0);
            }
            if let Some(y) = r.labelled() {
                sums.labelled += 1;
                sums.positives += u64::from(y);
                let (lla, llb) = (log_loss_of(r.a, y), log_loss_of(r.b, y));
                let (bra, brb) = (brier_of(r.a, y), brier_of(r.b, y));
                sums.ll[0].add(lla);
                sums.ll[1].add(llb);
                sums.br[0].add(bra);
                sums.br[1].add(brb);
                let (mut ca, mut cb) = (0u64, 0u64);
                for (t, &th) in s.thresholds.iter().enumerate() {
                    let (xa, xb) = ((r.a >= th) == y, (r.b >= th) == y);
                    sums.correct[0][t] += u64::from(xa);
                    sums.correct[1][t] += u64::from(xb);
                    ca |= u64::from(xa) << t;
                    cb |= u64::from(xb) << t;
                }
                let ranked = !r.b.is_nan();
                if ranked {
                    if y { p_k += 1.0 } else { n_k += 1.0 }
                }
                boot.push(Entry {
                    row: r.row,
                    positive: y,
                    new_tie: std::mem::take(&mut first),
                    ranked,
                    dll: llb - lla,
                    dbr: brb - bra,
                    ca,
                    cb,
                });
            }
            Ok(())
        })?;
        if !self.tie_value.is_nan() {
            self.auc.tie(p_k, n_k);
        }
        Ok(())
    }

    fn section(self, s: &Settings, auc_a: Option<f64>, boot_a: &[f64], f: &GroupFeed) -> Section {
        let Second {
            sums, auc, boot, ..
        } = self;
        let n = f.n;
        let rate = |c: u64| (n > 0).then(|| c as f64 / n as f64);
        let mut sec = Section {
            rows: n,
            labelled_rows: sums.labelled,
            champion_mean: (n > 0).then(|| sums.mean_a.value()),
            challenger_mean: (n > 0).then(|| sums.mean_b.value()),
            mean_abs_diff: (n > 0).then(|| sums.mean_diff.value()),
            max_abs_diff: sums.max_diff,
            pearson: sums.scores.correlation(),
            spearman: sums.ranks.correlation().filter(|_| !sums.nan),
            agreement: s
                .thresholds
                .iter()
                .enumerate()
                .map(|(t, &threshold)| AtThreshold {
                    threshold,
                    agreement: rate(sums.agree[t]),
                    champion_positive_rate: rate(sums.pos_a[t]),
                    challenger_positive_rate: rate(sums.pos_b[t]),
                })
                .collect(),
            top_k: TOP_K
                .iter()
                .enumerate()
                .map(|(k, &(share, _))| TopK {
                    k: share,
                    jaccard: (n > 0).then(|| {
                        let m = top_count(share, n);
                        let i = sums.inter[k];
                        i as f64 / (2 * m - i) as f64
                    }),
                })
                .collect(),
            psi: None,
            ks: None,
            ks_p_value: None,
            labelled: None,
        };
        let l = sums.labelled;
        if l == 0 {
            return sec;
        }
        let lf = l as f64;
        let quality = |w: usize, auc: Option<f64>| Quality {
            auc,
            log_loss: Some(sums.ll[w].value() / lf),
            brier: Some(sums.br[w].value() / lf),
            accuracy: sums.correct[w]
                .iter()
                .map(|&c| Some(c as f64 / lf))
                .collect(),
        };
        let (qa, qb) = (quality(0, auc_a), quality(1, auc.value()));
        let names = metric_names(&s.thresholds);
        let point = |q: &Quality| {
            let mut v = vec![q.auc, q.log_loss, q.brier];
            v.extend(q.accuracy.iter().cloned());
            v
        };
        let (pa, pb) = (point(&qa), point(&qb));
        let resampled: Option<Vec<Vec<f64>>> = (s.bootstrap > 0).then(|| {
            let (aucs_b, rest) = boot.finish();
            let mut per: Vec<Vec<f64>> = vec![Vec::with_capacity(s.bootstrap); names.len()];
            for r in 0..s.bootstrap {
                let a = boot_a.get(r).copied().unwrap_or(f64::NAN);
                per[0].push(aucs_b[r] - a);
                for (m, v) in rest[r].iter().enumerate() {
                    per[m + 1].push(*v);
                }
            }
            per
        });
        let deltas = names
            .iter()
            .enumerate()
            .map(|(m, name)| {
                let greater = !matches!(name.as_str(), "log_loss" | "brier");
                let (ci_low, ci_high, better) = match &resampled {
                    Some(d) => interval(&d[m], greater),
                    None => (None, None, None),
                };
                Delta {
                    metric: name.clone(),
                    delta: pa[m].zip(pb[m]).map(|(x, y)| y - x),
                    ci_low,
                    ci_high,
                    p_challenger_better: better,
                }
            })
            .collect();
        sec.labelled = Some(Labelled {
            positives: sums.positives,
            champion: qa,
            challenger: qb,
            deltas,
        });
        sec
    }
}

/// The section of no rows.
pub fn empty_section(s: &Settings) -> Section {
    Section {
        rows: 0,
        labelled_rows: 0,
        champion_mean: None,
        challenger_mean: None,
        mean_abs_diff: None,
        max_abs_diff: None,
        pearson: None,
        spearman: None,
        agreement: s
            .thresholds
            .iter()
            .map(|&threshold| AtThreshold {
                threshold,
                agreement: None,
                champion_positive_rate: None,
                challenger_positive_rate: None,
            })
            .collect(),
        top_k: TOP_K
            .iter()
            .map(|&(k, _)| TopK { k, jaccard: None })
            .collect(),
        psi: None,
        ks: None,
        ks_p_value: None,
        labelled: None,
    }
}

#[cfg(test)]
mod tests {
    use super::super::compare::{Rows, section};
    use super::*;
    use proptest::prelude::*;

    fn close(x: Option<f64>, y: Option<f64>, what: &str) -> Result<(), TestCaseError> {
        match (x, y) {
            (None, None) => Ok(()),
            (Some(x), Some(y)) if (x.is_nan() && y.is_nan()) || x == y => Ok(()),
            (Some(x), Some(y)) => {
                prop_assert!(
                    (x - y).abs() <= 1e-9 * (1.0 + x.abs().max(y.abs())),
                    "{}: {} vs {}",
                    what,
                    x,
                    y
                );
                Ok(())
            }
            _ => {
                prop_assert!(false, "{}: {:?} vs {:?}", what, x, y);
                Ok(())
            }
        }
    }

    fn same(got: &Section, want: &Section, finite: bool) -> Result<(), TestCaseError> {
        prop_assert_eq!(got.rows, want.rows);
        prop_assert_eq!(got.labelled_rows, want.labelled_rows);
        close(got.champion_mean, want.champion_mean, "champion_mean")?;
        close(got.challenger_mean, want.challenger_mean, "challenger_mean")?;
        close(got.mean_abs_diff, want.mean_abs_diff, "mean_abs_diff")?;
        prop_assert_eq!(
            got.max_abs_diff.map(f64::to_bits),
            want.max_abs_diff.map(f64::to_bits)
        );
        close(got.pearson, want.pearson, "pearson")?;
        close(got.spearman, want.spearman, "spearman")?;
        for (x, y) in got.agreement.iter().zip(&want.agreement) {
            prop_assert_eq!(x.agreement, y.agreement);
            prop_assert_eq!(
                x.champion_positive_rate.map(|v| (v * 1e9).round()),
                y.champion_positive_rate.map(|v| (v * 1e9).round())
            );
            prop_assert_eq!(
                x.challenger_positive_rate.map(|v| (v * 1e9).round()),
                y.challenger_positive_rate.map(|v| (v * 1e9).round())
            );
        }
        for (x, y) in got.top_k.iter().zip(&want.top_k) {
            prop_assert_eq!(x.jaccard, y.jaccard, "top {}", x.k);
        }
        if finite {
            prop_assert_eq!(got.psi.map(f64::to_bits), want.psi.map(f64::to_bits));
            prop_assert_eq!(got.ks.map(f64::to_bits), want.ks.map(f64::to_bits));
            prop_assert_eq!(
                got.ks_p_value.map(f64::to_bits),
                want.ks_p_value.map(f64::to_bits)
            );
        }
        prop_assert_eq!(got.labelled.is_some(), want.labelled.is_some());
        if let (Some(g), Some(w)) = (&got.labelled, &want.labelled) {
            prop_assert_eq!(g.positives, w.positives);
            for (q, r) in [(&g.champion, &w.champion), (&g.challenger, &w.challenger)] {
                prop_assert_eq!(q.auc.map(f64::to_bits), r.auc.map(f64::to_bits));
                close(q.log_loss, r.log_loss, "log_loss")?;
                close(q.brier, r.brier, "brier")?;
                prop_assert_eq!(&q.accuracy, &r.accuracy);
            }
            for (d, e) in g.deltas.iter().zip(&w.deltas) {
                prop_assert_eq!(&d.metric, &e.metric);
                close(d.delta, e.delta, &d.metric)?;
                // Resampled sums in the same order: the same intervals, to the bit.
                let bits = |v: Option<f64>| v.map(f64::to_bits);
                prop_assert_eq!(bits(d.ci_low), bits(e.ci_low), "{}", d.metric);
                prop_assert_eq!(bits(d.ci_high), bits(e.ci_high), "{}", d.metric);
                prop_assert_eq!(
                    bits(d.p_challenger_better),
                    bits(e.p_challenger_better),
                    "{}",
                    d.metric
                );
            }
        }
        Ok(())
    }

    fn score(nan: bool) -> BoxedStrategy<f64> {
        let base = prop_oneof![
            Just(0.0),
            Just(-0.0),
            Just(0.5),
            Just(1.0),
            Just(0.25),
            0.0f64..1.0,
            -2.0f64..2.0,
        ];
        if nan {
            prop_oneof![12 => base, 2 => Just(f64::NAN), 1 => Just(f64::INFINITY), 1 => Just(f64::NEG_INFINITY)].boxed()
        } else {
            base.boxed()
        }
    }

    fn rows(nan: bool) -> impl Strategy<Value = Vec<(f64, f64, Option<bool>, Option<u32>)>> {
        proptest::collection::vec(
            (
                score(nan),
                score(nan),
                proptest::option::of(any::<bool>()),
                proptest::option::weighted(0.8, 0u32..3),
            ),
            0..160,
        )
    }

    fn check(
        rows: &[(f64, f64, Option<bool>, Option<u32>)],
        budget: usize,
        chunk: usize,
        finite: bool,
    ) -> Result<(), TestCaseError> {
        let settings = Settings {
            thresholds: vec![0.5, 0.25],
            bootstrap: 30,
            budget,
        };
        let mut c = Comparison::new(settings.clone(), &[3]);
        let groups: Vec<[Option<u32>; 1]> = rows.iter().map(|r| [r.3]).collect();
        // Rows numbered out of order, as a partitioned label join hands them back.
        let ids: Vec<u64> = (0..rows.len() as u64)
            .map(|i| i * 7 % 1009 + i * 1009)
            .collect();
        let fed: Vec<Row<'_>> = rows
            .iter()
            .zip(&groups)
            .zip(&ids)
            .map(|((r, g), &row)| Row {
                a: r.0,
                b: r.1,
                label: r.2,
                row,
                groups: g,
            })
            .rev()
            .collect();
        for part in fed.chunks(chunk.max(1)) {
            c.add(part).unwrap();
        }
        let (sections, hist, spilled) = c.finish().unwrap();
        if budget < 256 && rows.len() > 8 {
            prop_assert!(spilled > 0);
        }
        let oracle = |pick: &dyn Fn(usize) -> bool| {
            let idx: Vec<usize> = (0..rows.len()).filter(|&i| pick(i)).collect();
            let a: Vec<f64> = idx.iter().map(|&i| rows[i].0).collect();
            let b: Vec<f64> = idx.iter().map(|&i| rows[i].1).collect();
            let l: Vec<Option<bool>> = idx.iter().map(|&i| rows[i].2).collect();
            let id: Vec<u64> = idx.iter().map(|&i| ids[i]).collect();
            section(
                &Rows {
                    champion: &a,
                    challenger: &b,
                    labels: &l,
                    ids: &id,
                },
                &settings.thresholds,
                settings.bootstrap,
            )
        };
        let want = oracle(&|_| true);
        if rows.is_empty() {
            prop_assert_eq!(sections[0][0].rows, 0);
        } else {
            same(&sections[0][0], &want, finite)?;
        }
        for g in 0..3u32 {
            let want = oracle(&|i| rows[i].3 == Some(g));
            if want.rows > 0 {
                same(&sections[1][g as usize], &want, finite)?;
            } else {
                prop_assert_eq!(sections[1][g as usize].rows, 0);
            }
        }
        if let Some(h) = hist {
            let n = rows.iter().filter(|r| !r.0.is_nan()).count() as u64;
            prop_assert_eq!(h.champion.iter().sum::<u64>(), n);
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Sorted and spilled (budgets from a few records to all in memory), fed in
        /// chunks of any size: the figures of the comparison held in memory.
        #[test]
        fn streamed_comparison_equals_the_one_in_memory(
            rows in rows(false),
            budget in prop_oneof![Just(64usize), Just(200), Just(4096), Just(1 << 24)],
            chunk in 1usize..70,
        ) {
            check(&rows, budget, chunk, true)?;
        }

        #[test]
        fn nan_scores_rank_and_count_as_in_memory(
            rows in rows(true),
            budget in prop_oneof![Just(64usize), Just(1 << 24)],
            chunk in 1usize..70,
        ) {
            check(&rows, budget, chunk, true)?;
        }
    }

    #[test]
    fn one_run_of_equal_scores_larger_than_the_budget_is_ranked_whole() {
        // Every score equal: one tie group spilled to a file in both walks.
        let rows: Vec<(f64, f64, Option<bool>, Option<u32>)> = (0..3000)
            .map(|i| {
                (
                    0.5,
                    if i % 3 == 0 { 0.5 } else { 0.7 },
                    Some(i % 2 == 0),
                    Some(0),
                )
            })
            .collect();
        check(&rows, 64, 500, true).unwrap();
    }
}
