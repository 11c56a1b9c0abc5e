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
    let pos = q * (n - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = (lo + 1).min(n - 1);
    let t = pos - lo as f64;
    let (a, b) = (sorted[lo], sorted[hi]);
    // numpy's _lerp: a + (b - a) t, computed from the nearer end.
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
    let rt = reference.iter().sum::<u64>().max(1) as f64;
    let ct = current.iter().sum::<u64>().max(1) as f64;
    reference
        .iter()
        .zip(current)
        .map(|(&r, &c)| {
            let r = (r as f64 / rt).max(EPSILON);
            let c = (c as f64 / ct).max(EPSILON);
            (c - r) * (c / r).ln()
        })
        .sum()
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
    let ps: f64 = p.iter().sum();
    let qs: f64 = q.iter().sum();
    if ps == 0.0 || qs == 0.0 {
        return f64::NAN;
    }
    let rel = |x: f64, y: f64| if x > 0.0 { x * (x / y).ln() } else { 0.0 };
    let mut js = 0.0;
    for (&a, &b) in p.iter().zip(q) {
        let (a, b) = (a / ps, b / qs);
        let m = (a + b) / 2.0;
        js += rel(a, m) + rel(b, m);
    }
    (js / 2.0).max(0.0).sqrt()
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
    let cols: Vec<(f64, f64)> = a
        .iter()
        .zip(b)
        .filter(|(x, y)| **x + **y > 0)
        .map(|(&x, &y)| (x as f64, y as f64))
        .collect();
    let dof = cols.len().saturating_sub(1) as u64;
    let ra: f64 = cols.iter().map(|c| c.0).sum();
    let rb: f64 = cols.iter().map(|c| c.1).sum();
    let n = ra + rb;
    if dof == 0 || ra == 0.0 || rb == 0.0 {
        return Chi2 {
            statistic: 0.0,
            p_value: 1.0,
            dof,
        };
    }
    let mut stat = 0.0;
    for &(x, y) in &cols {
        let t = x + y;
        for (o, e) in [(x, ra * t / n), (y, rb * t / n)] {
            let o = if dof == 1 {
                // scipy: observed + 0.5 * sign(expected - observed), capped at expected.
                let d = e - o;
                o + (0.5f64).min(d.abs()) * d.signum()
            } else {
                o
            };
            stat += (o - e) * (o - e) / e;
        }
    }
    Chi2 {
        statistic: stat,
        p_value: gamma_q(dof as f64 / 2.0, stat / 2.0),
        dof,
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
