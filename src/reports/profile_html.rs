//! The reference profile's page (`scorch profile --html F`): what a bundle's
//! drift, performance and multivariate drift checks are judged against, as one
//! self-contained page (no script, no network).
//!
//! Sections: the profiled data and its columns (rows, nulls, bins or
//! categories); with a calibration, the realized reference performance per
//! threshold and the reliability diagram with the calibration map; with a PCA,
//! the variance each kept component explains and the reference chunks' mean
//! reconstruction errors with the ±3σ band.

use std::fmt::Write;

use super::drift::{ColumnRef, ReferenceProfile};
use super::html::{STYLE, esc, num, reliability_svg};

/// The page of `p`, the reference profile of the bundle `model` (`name version`).
pub fn render(p: &ReferenceProfile, model: &str) -> String {
    let mut s = String::with_capacity(32 * 1024);
    let _ = write!(
        s,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>scorch reference profile {m}</title><style>{STYLE}</style></head><body>\
         <h1>Reference profile: {m}</h1>\
         <p>{rows} rows of <code>{data}</code> · {bins} quantile bins per numeric column · \
         profile version {v}</p>",
        m = esc(model),
        rows = p.rows,
        data = esc(&p.data),
        bins = p.bins,
        v = p.profile_version,
    );
    columns(&mut s, p);
    performance(&mut s, p);
    multivariate(&mut s, p);
    s.push_str("</body></html>\n");
    s
}

/// The page's section of the profiled columns.
fn columns(s: &mut String, p: &ReferenceProfile) {
    s.push_str(
        "<h2>Columns</h2><table><tr><th class=\"l\">column</th><th class=\"l\">kind</th>\
         <th>nulls</th><th class=\"l\">bins or categories</th></tr>",
    );
    for c in &p.columns {
        let kind = if p.scores.iter().any(|x| x == c.name()) {
            "score"
        } else {
            "input"
        };
        let (nulls, what) = match c {
            ColumnRef::Numeric {
                edges,
                nulls,
                counts,
                ..
            } => (
                *nulls,
                format!(
                    "{} bins, edges {} … {}, largest bin {} rows",
                    counts.len(),
                    num(edges.first().copied()),
                    num(edges.last().copied()),
                    counts.iter().max().copied().unwrap_or(0)
                ),
            ),
            ColumnRef::Categorical {
                categories, nulls, ..
            } => {
                let mut top: Vec<(&String, &u64)> = categories.iter().collect();
                top.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
                let shown: Vec<String> = top
                    .iter()
                    .take(5)
                    .map(|(k, n)| format!("{} ({n})", esc(k)))
                    .collect();
                (
                    *nulls,
                    format!(
                        "{} categories: {}{}",
                        categories.len(),
                        shown.join(", "),
                        if top.len() > 5 { ", …" } else { "" }
                    ),
                )
            }
        };
        let _ = write!(
            s,
            "<tr><td class=\"l\">{}</td><td class=\"l\">{kind}</td><td>{nulls}</td><td class=\"l\">{what}</td></tr>",
            esc(c.name())
        );
    }
    s.push_str("</table>");
}

/// The page's section of the calibration and the reference performance.
fn performance(s: &mut String, p: &ReferenceProfile) {
    match &p.performance {
        Some(r) => {
            let x = &r.realized;
            let _ = write!(
                s,
                "<h2 id=\"performance\">Calibration and reference performance</h2>\
                 <p>Score <code>{}</code> calibrated against label <code>{}</code> on {} labelled \
                 rows ({} positive) of <code>{}</code>: an isotonic map of {} steps. Runs with \
                 <code>report.performance</code> estimate their performance through it.</p>\
                 <table><tr><th class=\"l\">AUC</th><th>log loss</th><th>Brier</th></tr>\
                 <tr><td class=\"l\">{}</td><td>{}</td><td>{}</td></tr></table>\
                 <table><tr><th class=\"l\">threshold</th><th>precision</th><th>recall</th>\
                 <th>F1</th><th>accuracy</th><th>TP</th><th>FP</th><th>FN</th><th>TN</th></tr>",
                esc(&r.score),
                esc(&r.label),
                x.rows,
                x.positives,
                esc(&r.data),
                r.calibration.values.len(),
                num(x.auc),
                num(x.log_loss),
                num(x.brier),
            );
            for a in &x.at {
                let _ = write!(
                    s,
                    "<tr><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
                     <td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    a.threshold,
                    num(a.precision),
                    num(a.recall),
                    num(a.f1),
                    num(a.accuracy),
                    a.tp,
                    a.fp,
                    a.fn_,
                    a.tn
                );
            }
            s.push_str(
                "</table><div class=\"hist\"><div><b>Reliability diagram</b>: positive rate \
                 against mean score per tenth of the labelled rows, with the calibration map</div>",
            );
            s.push_str(&reliability_svg(r));
            s.push_str("</div>");
        }
        None => s.push_str(
            "<h2 id=\"performance\">Calibration</h2><p>None: profile with <code>--labels</code> \
             (and held-out <code>--calibration-data</code>) for performance estimated without \
             labels.</p>",
        ),
    }
}

/// The page's section of the multivariate drift reference.
fn multivariate(s: &mut String, p: &ReferenceProfile) {
    match &p.reconstruction {
        Some(m) => {
            let explained: f64 = m.pca.explained.iter().sum();
            let (mean, sd) = crate::stats::mean_std(&m.chunk_means);
            let _ = write!(
                s,
                "<h2 id=\"multivariate\">Multivariate drift reference</h2><p>PCA of the model's {} \
                 standardized features on {} rows: {} components keep {:.1} % of the variance. \
                 Mean reconstruction error {:.4}; over {} chunks of {} rows its standard deviation \
                 is {:.4}, so a run of those rows is judged against {:.4} ± 3 × {:.4} (narrower for \
                 more rows, as 1/√rows).</p>",
                m.features.len(),
                m.rows,
                m.pca.components.len(),
                100.0 * explained,
                mean,
                m.chunk_means.len(),
                m.chunk_rows,
                sd,
                mean,
                sd
            );
            bars(
                s,
                "variance explained per kept component",
                &m.pca.explained,
                None,
                true,
            );
            bars(
                s,
                "mean reconstruction error per reference chunk",
                &m.chunk_means,
                Some((mean - 3.0 * sd, mean + 3.0 * sd)),
                false,
            );
        }
        None => s.push_str(
            "<h2 id=\"multivariate\">Multivariate drift reference</h2><p>None: the features \
             could not give a PCA (see what <code>scorch profile</code> printed).</p>",
        ),
    }
}

/// A bar chart of `values` (non-finite ones left out), with a shaded band. The
/// axis starts at 0 with `zero`, else just below the lowest value or band edge.
fn bars(s: &mut String, title: &str, values: &[f64], band: Option<(f64, f64)>, zero: bool) {
    let (w, ht, top, left) = (600.0, 140.0, 22.0, 50.0);
    let finite = values.iter().copied().filter(|v| v.is_finite());
    let mut hi = finite.clone().fold(f64::NEG_INFINITY, f64::max);
    let mut lo = finite.fold(f64::INFINITY, f64::min);
    if let Some((a, b)) = band.filter(|(a, b)| a.is_finite() && b.is_finite()) {
        lo = lo.min(a);
        hi = hi.max(b);
    }
    if !lo.is_finite() || !hi.is_finite() {
        (lo, hi) = (0.0, 1.0);
    }
    // Values near ±f64::MAX: a span that still fits in f64.
    (lo, hi) = (lo.max(-1e307), hi.min(1e307));
    if zero {
        lo = lo.min(0.0);
    } else {
        lo -= (hi - lo) * 0.2;
    }
    if hi <= lo {
        (lo, hi) = (lo - 0.5, lo + 0.5);
    }
    let y = |v: f64| top + (hi - v) / (hi - lo) * ht;
    let n = values.len().max(1) as f64;
    let bw = (w - left - 10.0) / n;
    let _ = write!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{}\" role=\"img\" \
         aria-label=\"{t}\"><text x=\"{left}\" y=\"14\" font-size=\"12\">{t}</text>\
         <text x=\"{}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"end\">{}</text>\
         <text x=\"{}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"end\">{}</text>",
        top + ht + 8.0,
        left - 4.0,
        y(hi) + 4.0,
        num(Some(hi)),
        left - 4.0,
        y(lo),
        num(Some(lo)),
        t = esc(title),
    );
    if let Some((a, b)) = band {
        let _ = write!(
            s,
            "<rect x=\"{left}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"#8c959f\" \
             fill-opacity=\"0.3\"><title>mean ± 3σ: {a:.4} to {b:.4}</title></rect>",
            y(b),
            w - left - 10.0,
            (y(a) - y(b)).max(1.0)
        );
    }
    for (i, v) in values.iter().enumerate().filter(|(_, v)| v.is_finite()) {
        let x = left + bw * i as f64;
        let c = v.clamp(lo, hi);
        let _ = write!(
            s,
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"#0969da\">\
             <title>{}: {}</title></rect>",
            x + 1.0,
            y(c),
            (bw - 2.0).max(1.0),
            y(lo) - y(c),
            i + 1,
            num(Some(*v))
        );
    }
    s.push_str("</svg>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_profile_without_calibration_or_pca_says_so_and_escapes_text() {
        let p = ReferenceProfile {
            profile_version: super::super::drift::PROFILE_VERSION,
            rows: 3,
            data: "<data>".into(),
            bins: 2,
            columns: vec![ColumnRef::Categorical {
                name: "c&".into(),
                categories: [("<a>".to_string(), 2u64)].into_iter().collect(),
                nulls: 1,
            }],
            scores: vec![],
            performance: None,
            reconstruction: None,
        };
        let html = render(&p, "m 1");
        assert!(
            html.contains("&lt;data&gt;")
                && html.contains("c&amp;")
                && html.contains("&lt;a&gt; (2)")
        );
        assert!(html.contains("None: profile with <code>--labels</code>"));
        assert!(html.contains("could not give a PCA"));
        assert!(!html.contains("<a>"));
    }

    #[test]
    fn bars_take_any_values() {
        for vals in [
            vec![],
            vec![0.0],
            vec![1.0, 1.0],
            vec![-1.0, f64::NAN, 2.0],
            vec![1e300, 1e-300],
            vec![f64::INFINITY],
            vec![f64::MAX, -f64::MAX],
        ] {
            for zero in [true, false] {
                let mut s = String::new();
                bars(&mut s, "t", &vals, Some((0.5, 0.7)), zero);
                assert!(
                    s.ends_with("</svg>") && !s.contains("NaN") && !s.contains("inf"),
                    "{s}"
                );
            }
        }
    }
}
