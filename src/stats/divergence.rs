//! Distances between distributions given as counts over shared bins (PSI,
//! Jensen–Shannon, chi-square with its p-value), and the quantile binning of sorted
//! samples they are computed over. numpy's and scipy's definitions, so values agree
//! with a notebook's.

use serde::Serialize;

/// Shares below this are raised to it in the PSI formula.
pub const EPSILON: f64 = 1e-4;

/// numpy's `quantile(x, q)` (method "linear") of sorted values.
pub fn quantile_linear(sorted: &[f64], q: f64) -> f64 {
    let n = sorted.len();
    let (lo, hi, t) = quantile_ranks(n as u64, q);
    lerp(sorted[lo as usize], sorted[hi as usize], t)
}

/// The ranks (0-based) numpy's linear quantile `q` of `n` values interpolates
/// between, and the weight of the upper one.
pub fn quantile_ranks(n: u64, q: f64) -> (u64, u64, f64) {
    let pos = q * (n - 1) as f64;
    let lo = pos.floor() as u64;
    let hi = (lo + 1).min(n - 1);
    (lo, hi, pos - lo as f64)
}

/// numpy's `_lerp`: `a + (b - a) t`, computed from the nearer end.
pub fn lerp(a: f64, b: f64, t: f64) -> f64 {
    let diff = b - a;
    if diff.is_infinite() && a.is_finite() && b.is_finite() {
        // b − a overflows (a and b near ∓f64::MAX): weights instead, which stay
        // finite and between a and b.
        return a * (1.0 - t) + b * t;
    }
    if t >= 0.5 {
        b - diff * (1.0 - t)
    } else {
        a + diff * t
    }
}

/// Inner bin edges at the quantiles `1/B … (B−1)/B` of sorted values, duplicates dropped.
pub fn quantile_edges(sorted: &[f64], bins: usize) -> Vec<f64> {
    let mut edges: Vec<f64> = Vec::with_capacity(bins.saturating_sub(1));
    if sorted.is_empty() {
        return edges;
    }
    for i in 1..bins {
        let q = quantile_linear(sorted, i as f64 / bins as f64);
        if edges.last().is_none_or(|&l| q > l) {
            edges.push(q);
        }
    }
    edges
}

/// Counts of sorted values in the bins of inner `edges` (value `x` in bin = number of
/// edges `<= x`).
pub fn bin_sorted(sorted: &[f64], edges: &[f64]) -> Vec<u64> {
    let mut counts = Vec::with_capacity(edges.len() + 1);
    let mut prev = 0usize;
    for &e in edges {
        let at = sorted.partition_point(|&v| v < e);
        counts.push((at - prev) as u64);
        prev = at;
    }
    counts.push((sorted.len() - prev) as u64);
    counts
}

/// PSI of two count vectors over the same bins (shares floored at [`EPSILON`]).
pub fn psi(reference: &[u64], current: &[u64]) -> f64 {
    let mut p = PsiSum::new(reference.iter().sum(), current.iter().sum());
    reference
        .iter()
        .zip(current)
        .for_each(|(&r, &c)| p.add(r, c));
    p.value()
}

/// [`psi`] summed bin by bin, the totals known first (bins streamed from a walk).
#[derive(Debug, Clone)]
pub struct PsiSum {
    rt: f64,
    ct: f64,
    sum: f64,
}

impl PsiSum {
    pub fn new(reference_total: u64, current_total: u64) -> Self {
        PsiSum {
            rt: reference_total.max(1) as f64,
            ct: current_total.max(1) as f64,
            sum: 0.0,
        }
    }

    pub fn add(&mut self, r: u64, c: u64) {
        let r = (r as f64 / self.rt).max(EPSILON);
        let c = (c as f64 / self.ct).max(EPSILON);
        self.sum += (c - r) * (c / r).ln();
    }

    pub fn value(&self) -> f64 {
        self.sum
    }
}

/// Jensen-Shannon distance of two count vectors over the same bins.
pub fn js_distance(p: &[u64], q: &[u64]) -> f64 {
    let f = |v: &[u64]| v.iter().map(|&x| x as f64).collect::<Vec<f64>>();
    js_distance_weights(&f(p), &f(q))
}

/// Jensen-Shannon distance (natural log) of two non-negative weight vectors over the
/// same bins, each normalised to sum 1 (`scipy.spatial.distance.jensenshannon`);
/// NaN when either sums to 0.
pub fn js_distance_weights(p: &[f64], q: &[f64]) -> f64 {
    let mut js = JsSum::new(p.iter().sum(), q.iter().sum());
    p.iter().zip(q).for_each(|(&a, &b)| js.add(a, b));
    js.value()
}

/// [`js_distance_weights`] summed bin by bin, the sums known first.
#[derive(Debug, Clone)]
pub struct JsSum {
    ps: f64,
    qs: f64,
    sum: f64,
}

impl JsSum {
    pub fn new(p_sum: f64, q_sum: f64) -> Self {
        JsSum {
            ps: p_sum,
            qs: q_sum,
            sum: 0.0,
        }
    }

    pub fn add(&mut self, a: f64, b: f64) {
        if self.ps == 0.0 || self.qs == 0.0 {
            return;
        }
        let rel = |x: f64, y: f64| if x > 0.0 { x * (x / y).ln() } else { 0.0 };
        let (a, b) = (a / self.ps, b / self.qs);
        let m = (a + b) / 2.0;
        self.sum += rel(a, m) + rel(b, m);
    }

    pub fn value(&self) -> f64 {
        if self.ps == 0.0 || self.qs == 0.0 {
            return f64::NAN;
        }
        (self.sum / 2.0).max(0.0).sqrt()
    }
}

/// A chi-square test result.
#[derive(Debug, Clone, Serialize)]
pub struct Chi2 {
    pub statistic: f64,
    pub p_value: f64,
    pub dof: u64,
}

/// Pearson's chi-square test of independence on the 2 × k table (`a`, `b`), with
/// Yates' continuity correction when there is one degree of freedom, as scipy's
/// `chi2_contingency(..., correction=True)`. Columns empty in both rows are dropped.
pub fn chi2_contingency(a: &[u64], b: &[u64]) -> Chi2 {
    let mut c = Chi2Sum::new(a.iter().sum(), b.iter().sum());
    a.iter().zip(b).for_each(|(&x, &y)| c.add(x, y));
    c.value()
}

/// [`chi2_contingency`] summed column by column, the row totals known first.
#[derive(Debug, Clone)]
pub struct Chi2Sum {
    ra: f64,
    rb: f64,
    /// Columns not empty in both rows.
    cols: u64,
    /// The first two of them (one degree of freedom takes Yates' correction).
    first: Vec<(f64, f64)>,
    /// The statistic without the correction.
    plain: f64,
}

impl Chi2Sum {
    pub fn new(a_total: u64, b_total: u64) -> Self {
        Chi2Sum {
            ra: a_total as f64,
            rb: b_total as f64,
            cols: 0,
            first: Vec::with_capacity(2),
            plain: 0.0,
        }
    }

    /// Adds the two terms of column `(x, y)` to `stat`.
    fn terms(&self, stat: &mut f64, x: f64, y: f64, yates: bool) {
        let n = self.ra + self.rb;
        let t = x + y;
        for (o, e) in [(x, self.ra * t / n), (y, self.rb * t / n)] {
            let o = if yates {
                // scipy: observed + 0.5 * sign(expected - observed), capped at expected.
                let d = e - o;
                o + (0.5f64).min(d.abs()) * d.signum()
            } else {
                o
            };
            *stat += (o - e) * (o - e) / e;
        }
    }

    pub fn add(&mut self, x: u64, y: u64) {
        if x + y == 0 {
            return;
        }
        let (x, y) = (x as f64, y as f64);
        self.cols += 1;
        if self.first.len() < 2 {
            self.first.push((x, y));
        }
        if self.ra > 0.0 && self.rb > 0.0 {
            let mut plain = self.plain;
            self.terms(&mut plain, x, y, false);
            self.plain = plain;
        }
    }

    pub fn value(&self) -> Chi2 {
        let dof = self.cols.saturating_sub(1);
        if dof == 0 || self.ra == 0.0 || self.rb == 0.0 {
            return Chi2 {
                statistic: 0.0,
                p_value: 1.0,
                dof,
            };
        }
        let stat = if dof == 1 {
            let mut s = 0.0;
            for &(x, y) in &self.first {
                self.terms(&mut s, x, y, true);
            }
            s
        } else {
            self.plain
        };
        Chi2 {
            statistic: stat,
            p_value: gamma_q(dof as f64 / 2.0, stat / 2.0),
            dof,
        }
    }
}

/// The regularized upper incomplete gamma function Q(a, x) (the chi-square survival
/// function is Q(dof/2, x/2)): a series for x < a + 1, Lentz's continued fraction
/// otherwise (Numerical Recipes 6.2), to about 1e-15 relative.
pub fn gamma_q(a: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    let ln_pre = a * x.ln() - x - ln_gamma(a);
    if x < a + 1.0 {
        let (mut sum, mut term, mut ap) = (1.0 / a, 1.0 / a, a);
        for _ in 0..10_000 {
            ap += 1.0;
            term *= x / ap;
            sum += term;
            if term.abs() < sum.abs() * 1e-17 {
                break;
            }
        }
        1.0 - sum * ln_pre.exp()
    } else {
        let tiny = 1e-300;
        let mut b = x + 1.0 - a;
        let mut c = 1.0 / tiny;
        let mut d = 1.0 / b;
        let mut h = d;
        for i in 1..10_000 {
            let an = -(i as f64) * (i as f64 - a);
            b += 2.0;
            d = an * d + b;
            if d.abs() < tiny {
                d = tiny;
            }
            c = b + an / c;
            if c.abs() < tiny {
                c = tiny;
            }
            d = 1.0 / d;
            let del = d * c;
            h *= del;
            if (del - 1.0).abs() < 1e-16 {
                break;
            }
        }
        ln_pre.exp() * h
    }
}

/// ln Γ(a) for a > 0 (Lanczos, g = 7, n = 9; about 1e-15 relative).
fn ln_gamma(a: f64) -> f64 {
    const G: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if a < 0.5 {
        let pi = std::f64::consts::PI;
        return (pi / (pi * a).sin()).ln() - ln_gamma(1.0 - a);
    }
    let a = a - 1.0;
    let mut x = G[0];
    for (i, g) in G.iter().enumerate().skip(1) {
        x += g / (a + i as f64);
    }
    let t = a + 7.5;
    0.5 * (2.0 * std::f64::consts::PI).ln() + (a + 0.5) * t.ln() - t + x.ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_between_the_ends_of_f64_are_finite_and_ordered() {
        let x = [f64::MIN, f64::MAX];
        let qs: Vec<f64> = (0..=10)
            .map(|i| quantile_linear(&x, i as f64 / 10.0))
            .collect();
        assert!(qs.iter().all(|q| q.is_finite()), "{qs:?}");
        assert!(qs.windows(2).all(|w| w[0] < w[1]), "{qs:?}");
        assert_eq!((qs[0], qs[10]), (f64::MIN, f64::MAX));
        let edges = quantile_edges(&x, 10);
        assert_eq!(edges.len(), 9, "{edges:?}");
        // Values whose difference does not overflow keep numpy's formula.
        assert_eq!(quantile_linear(&[1.0, 3.0], 0.25), 1.5);
    }
}
