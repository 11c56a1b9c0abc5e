//! The shadow comparison as one self-contained page (no script, no network, inline
//! CSS and SVG): verdict of the promotion rules, the pair's agreement metrics, both
//! score distributions, labelled metrics with intervals, segments, and the rows the
//! models disagree on most.

use std::fmt::Write;

use super::compare::{Section, TOP_K};
use super::runner::Comparison;
use super::stream::ScoreHistogram;
use crate::reports::drift::Histogram;
use crate::reports::html::{STYLE, esc, num, svg_pair};

fn ci(lo: Option<f64>, hi: Option<f64>) -> String {
    match (lo, hi) {
        (Some(l), Some(h)) => format!("[{}, {}]", num(Some(l)), num(Some(h))),
        _ => "–".into(),
    }
}

/// Shares of both score columns in equal-width bins over their common range.
fn histogram(c: &Comparison, h: &ScoreHistogram) -> Histogram {
    let shares = |v: &[u64]| {
        let n = v.iter().sum::<u64>().max(1) as f64;
        v.iter().map(|&c| c as f64 / n).collect()
    };
    Histogram {
        column: c.score.clone(),
        labels: (0..h.champion.len())
            .map(|i| format!("{:.3}", h.lo + h.width * i as f64))
            .collect(),
        reference: shares(&h.champion),
        current: shares(&h.challenger),
    }
}

fn pair_rows(s: &Section) -> Vec<(String, Option<f64>)> {
    let mut v = vec![
        ("rows".to_string(), Some(s.rows as f64)),
        ("champion mean score".into(), s.champion_mean),
        ("challenger mean score".into(), s.challenger_mean),
        ("mean |difference|".into(), s.mean_abs_diff),
        ("max |difference|".into(), s.max_abs_diff),
        ("Pearson".into(), s.pearson),
        ("Spearman".into(), s.spearman),
    ];
    for a in &s.agreement {
        v.push((format!("agreement at {}", a.threshold), a.agreement));
    }
    for (t, (_, name)) in s.top_k.iter().zip(TOP_K) {
        v.push((name.replace('_', " "), t.jaccard));
    }
    v.push(("PSI (challenger over champion deciles)".into(), s.psi));
    v.push(("KS statistic".into(), s.ks));
    v.push(("KS p-value".into(), s.ks_p_value));
    v
}

/// Renders the page, with the scores' histogram when there were rows.
pub fn render(c: &Comparison, hist: Option<&ScoreHistogram>) -> String {
    let mut s = String::with_capacity(64 * 1024);
    let first = c.runs.first().map(|r| r.ds.as_str()).unwrap_or("");
    let last = c.runs.last().map(|r| r.ds.as_str()).unwrap_or("");
    let _ = write!(
        s,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>scorch shadow {job} {a} vs {b}</title><style>{STYLE}</style></head><body>\
         <h1>Shadow comparison: {name} {a} (champion) vs {b2} {b} (challenger)</h1>\
         <p>job <code>{job}</code> · {first} to {last} ({days} dates) · {rows} rows, {lab} labelled · \
         score <code>{score}</code> · <code>{id}</code></p>",
        job = esc(&c.job),
        name = esc(&c.champion.name),
        a = esc(&c.champion.version),
        b2 = esc(&c.challenger.name),
        b = esc(&c.challenger.version),
        first = esc(first),
        last = esc(last),
        days = c.runs.len(),
        rows = c.overall.rows,
        lab = c.overall.labelled_rows,
        score = esc(&c.score),
        id = esc(&c.shadow_id),
    );
    gate(&mut s, c);
    agreement(&mut s, c, hist);
    labelled(&mut s, c);
    segments(&mut s, c);
    disagreements(&mut s, c);
    runs(&mut s, c);
    s
}

/// The page's section of the promotion rules and their verdicts.
fn gate(s: &mut String, c: &Comparison) {
    s.push_str("<h2>Promotion rules</h2>");
    if c.gate.is_empty() {
        s.push_str("<p>No rules in the job (<code>shadow.gate</code>).</p>");
    } else {
        let _ = write!(
            s,
            "<p class=\"{cls}\">{verdict}</p><table><tr><th class=\"l\">rule</th><th>challenger</th>\
             <th>champion</th><th class=\"l\">status</th><th class=\"l\">why</th></tr>",
            cls = if c.passed { "pass" } else { "fail" },
            verdict = match (&c.promoted, c.passed) {
                (Some(a), _) => format!("every rule holds; promoted to alias `{}`", esc(a)),
                (None, true) => "every rule holds".into(),
                (None, false) => "rules failed: the challenger is not promoted".into(),
            }
        );
        for r in &c.gate {
            let st = if r.passed { "pass" } else { "fail" };
            let _ = write!(
                s,
                "<tr><td class=\"l\"><code>{}</code></td><td>{}</td><td>{}</td>\
                 <td class=\"l {st}\">{st}</td><td class=\"l\">{}</td></tr>",
                esc(&r.rule),
                num(r.value),
                num(r.baseline),
                esc(&r.why)
            );
        }
        s.push_str("</table>");
    }
}

/// The page's section of how far the two models' scores agree, with the histograms.
fn agreement(s: &mut String, c: &Comparison, hist: Option<&ScoreHistogram>) {
    s.push_str("<h2>Agreement</h2><table><tr><th class=\"l\">metric</th><th>value</th></tr>");
    for (name, v) in pair_rows(&c.overall) {
        let _ = write!(
            s,
            "<tr><td class=\"l\">{}</td><td>{}</td></tr>",
            esc(&name),
            num(v)
        );
    }
    for a in &c.overall.agreement {
        let _ = write!(
            s,
            "<tr><td class=\"l\">positive rate at {} (champion / challenger)</td><td>{} / {}</td></tr>",
            a.threshold,
            num(a.champion_positive_rate),
            num(a.challenger_positive_rate)
        );
    }
    s.push_str("</table>");
    if let Some(h) = hist.map(|h| histogram(c, h)) {
        let _ = write!(
            s,
            "<h2>Score distributions</h2><p class=\"legend\"><span style=\"background:#8c959f\"></span>\
             champion {} <span style=\"background:#0969da\"></span>challenger {} (share of rows per bin)</p>\
             <div class=\"hist\">{}</div>",
            esc(&c.champion.version),
            esc(&c.challenger.version),
            svg_pair(&h, ("champion", "challenger"))
        );
    }
}

/// The page's section of metrics with labels, with their bootstrap intervals.
fn labelled(s: &mut String, c: &Comparison) {
    s.push_str("<h2>With labels</h2>");
    match &c.overall.labelled {
        None => s.push_str("<p>No labelled rows (job field <code>labels</code>).</p>"),
        Some(l) => {
            let _ = write!(
                s,
                "<p>{} labelled rows, {} positive. Intervals: {} bootstrap, {} resamples, {:.0}%.</p>\
                 <table><tr><th class=\"l\">metric</th><th>champion</th><th>challenger</th>\
                 <th>challenger − champion</th><th>95% interval</th><th>P(challenger better)</th></tr>",
                c.overall.labelled_rows,
                l.positives,
                c.bootstrap.method,
                c.bootstrap.resamples,
                c.bootstrap.confidence * 100.0
            );
            let mut values = vec![
                (l.champion.auc, l.challenger.auc),
                (l.champion.log_loss, l.challenger.log_loss),
                (l.champion.brier, l.challenger.brier),
            ];
            for (x, y) in l.champion.accuracy.iter().zip(&l.challenger.accuracy) {
                values.push((*x, *y));
            }
            for (d, (x, y)) in l.deltas.iter().zip(values) {
                let _ = write!(
                    s,
                    "<tr><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    esc(&d.metric),
                    num(x),
                    num(y),
                    num(d.delta),
                    ci(d.ci_low, d.ci_high),
                    num(d.p_challenger_better)
                );
            }
            s.push_str("</table>");
        }
    }
}

/// The page's section of each segment value's comparison.
fn segments(s: &mut String, c: &Comparison) {
    if !c.segments.is_empty() {
        let t0 = c.thresholds.first().copied().unwrap_or(0.5);
        let _ = write!(
            s,
            "<h2>Segments</h2><table><tr><th class=\"l\">column</th><th class=\"l\">value</th><th>rows</th>\
             <th>agreement at {t0}</th><th>mean |diff|</th><th>Spearman</th><th>PSI</th>\
             <th>AUC champion</th><th>AUC challenger</th><th>AUC Δ</th><th>95% interval</th></tr>"
        );
        for seg in &c.segments {
            let x = &seg.section;
            let (aa, ab, d) = match &x.labelled {
                Some(l) => (l.champion.auc, l.challenger.auc, l.deltas.first()),
                None => (None, None, None),
            };
            let _ = write!(
                s,
                "<tr><td class=\"l\">{}</td><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{}</td>\
                 <td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&seg.column),
                esc(&seg.value),
                x.rows,
                num(x.agreement.first().and_then(|a| a.agreement)),
                num(x.mean_abs_diff),
                num(x.spearman),
                num(x.psi),
                num(aa),
                num(ab),
                num(d.and_then(|d| d.delta)),
                ci(d.and_then(|d| d.ci_low), d.and_then(|d| d.ci_high))
            );
        }
        s.push_str("</table>");
    }
}

/// The page's section of the rows the models disagree on most.
fn disagreements(s: &mut String, c: &Comparison) {
    if !c.disagreements.is_empty() {
        let _ = write!(
            s,
            "<h2>Rows the models disagree on most</h2><table><tr><th class=\"l\">ds</th><th class=\"l\">{}</th>",
            esc(&c.key_columns.join(", "))
        );
        for sc in &c.segment_columns {
            let _ = write!(s, "<th class=\"l\">{}</th>", esc(sc));
        }
        s.push_str(
            "<th>champion</th><th>challenger</th><th>|diff|</th><th class=\"l\">label</th></tr>",
        );
        for d in &c.disagreements {
            let _ = write!(
                s,
                "<tr><td class=\"l\">{}</td><td class=\"l\">{}</td>",
                esc(&d.ds),
                esc(&d.key.join(", "))
            );
            for v in &d.segments {
                let _ = write!(
                    s,
                    "<td class=\"l\">{}</td>",
                    esc(v.as_deref().unwrap_or("null"))
                );
            }
            let _ = write!(
                s,
                "<td>{}</td><td>{}</td><td>{}</td><td class=\"l\">{}</td></tr>",
                num(Some(d.champion)),
                num(Some(d.challenger)),
                num(Some(d.abs_diff)),
                match d.label {
                    Some(true) => "1",
                    Some(false) => "0",
                    None => "–",
                }
            );
        }
        s.push_str("</table>");
    }
}

/// The page's section of each date's shadow run.
fn runs(s: &mut String, c: &Comparison) {
    s.push_str("<h2>Runs</h2><table><tr><th class=\"l\">ds</th><th class=\"l\">run</th><th>rows</th><th>labelled</th><th class=\"l\">partition</th></tr>");
    for r in &c.runs {
        let _ = write!(
            s,
            "<tr><td class=\"l\">{}</td><td class=\"l\"><code>{}</code></td><td>{}</td><td>{}</td><td class=\"l\">{}</td></tr>",
            esc(&r.ds),
            esc(&r.run_id),
            r.rows,
            r.labelled_rows,
            esc(&r.partition)
        );
    }
    s.push_str("</table></body></html>\n");
}
