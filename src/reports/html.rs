//! `report.html`: the run report as one self-contained page — no script, no network,
//! inline CSS and SVG — that a browser opens from disk or an object store.
//!
//! Sections: the run and its overall status (the worst verdict); quality checks
//! (pass / warn / fail); drift, sorted by PSI with a reference-versus-run
//! histogram per column; estimated performance with the reference's reliability
//! diagram; column metrics.

use std::fmt::Write;

use super::Report;
use super::drift::Histogram;

/// Escapes text for HTML content and attribute values.
pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

pub(crate) fn num(v: Option<f64>) -> String {
    match v {
        None => "–".into(),
        Some(x) if x == x.trunc() && x.abs() < 1e15 => format!("{x:.0}"),
        Some(x) if x.abs() >= 1e-3 && x.abs() < 1e6 => format!("{x:.4}"),
        Some(x) => format!("{x:.3e}"),
    }
}

pub(crate) const STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222}\
h1{font-size:20px}h2{font-size:16px;margin-top:28px}\
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}\
th{background:#f4f4f4}td.l,th.l{text-align:left}\
.pass{color:#1a7f37}.warn{color:#9a6700;font-weight:600}.fail{color:#cf222e;font-weight:700}\
.hist{display:inline-block;margin:6px 18px 6px 0;vertical-align:top}\
.legend span{display:inline-block;width:10px;height:10px;margin:0 4px 0 12px}";

/// One histogram as an SVG bar chart: reference and run shares side by side per bin.
fn svg(h: &Histogram) -> String {
    svg_pair(h, ("reference", "run"))
}

/// A histogram of two series (grey, blue) named `names` in the bars' tooltips.
pub(crate) fn svg_pair(h: &Histogram, names: (&str, &str)) -> String {
    let (w, ht, pad) = (360.0, 140.0, 18.0);
    let n = h.labels.len().max(1) as f64;
    let top = h
        .reference
        .iter()
        .chain(&h.current)
        .cloned()
        .fold(0.0f64, f64::max)
        .max(1e-9);
    let slot = (w - 2.0 * pad) / n;
    let bar = slot * 0.4;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{}\" role=\"img\" aria-label=\"{}\">",
        ht + 60.0,
        esc(&h.column)
    );
    for (i, (r, c)) in h.reference.iter().zip(&h.current).enumerate() {
        let x = pad + i as f64 * slot;
        let rh = r / top * ht;
        let ch = c / top * ht;
        let _ = write!(
            s,
            "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{bar:.1}\" height=\"{rh:.1}\" fill=\"#8c959f\"><title>{} {} {:.4}</title></rect>\
             <rect x=\"{:.1}\" y=\"{:.1}\" width=\"{bar:.1}\" height=\"{ch:.1}\" fill=\"#0969da\"><title>{} {} {:.4}</title></rect>",
            ht - rh + 4.0,
            esc(&h.labels[i]),
            esc(names.0),
            r,
            x + bar,
            ht - ch + 4.0,
            esc(&h.labels[i]),
            esc(names.1),
            c
        );
        // Labels slanted so neighbours never overlap; at most 12 shown (every k-th).
        let every = h.labels.len().div_ceil(12).max(1);
        if i % every == 0 {
            let label = short_label(&h.labels[i], 12);
            let (lx, ly) = (x + bar, ht + 14.0);
            let _ = write!(
                s,
                "<text x=\"{lx:.1}\" y=\"{ly:.1}\" font-size=\"9\" text-anchor=\"end\" \
                 transform=\"rotate(-35 {lx:.1} {ly:.1})\">{}</text>",
                esc(&label)
            );
        }
    }
    let _ = write!(
        s,
        "<line x1=\"{pad}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"#555\"/></svg>",
        ht + 4.0,
        w - pad,
        ht + 4.0
    );
    s
}

/// `label` cut to `max` characters, with an ellipsis when cut.
pub(crate) fn short_label(label: &str, max: usize) -> String {
    if label.chars().count() <= max {
        return label.to_string();
    }
    let mut out: String = label.chars().take(max - 1).collect();
    out.push('…');
    out
}

/// The run's overall status: the worst of its checks' and columns' drift verdicts.
pub fn overall_status(r: &Report) -> &'static str {
    let all = r
        .checks
        .iter()
        .map(|c| c.status)
        .chain(r.drift.iter().map(|d| d.status))
        .chain(r.multivariate.as_ref().map(|m| m.status));
    let mut worst = "pass";
    for st in all {
        match st {
            "fail" => return "fail",
            "warn" => worst = "warn",
            _ => {}
        }
    }
    worst
}

/// The multivariate drift section: the run's mean reconstruction error on a scale
/// with the reference's band.
fn multivariate_section(s: &mut String, m: &super::multivariate::MultivariateDrift) {
    let _ = write!(
        s,
        "<h2 id=\"multivariate\">Multivariate drift</h2><p>PCA reconstruction error of the model's \
         {} standardized features ({} principal components keep {:.1} % of the reference's \
         variance). A change in how the features move together raises it even when no single \
         column drifts.</p><table><tr><th class=\"l\">rows</th><th>mean error</th>\
         <th>band low</th><th>band high</th><th>reference</th><th class=\"l\">status</th></tr>\
         <tr><td class=\"l\">{}</td><td>{}</td><td>{:.4}</td><td>{:.4}</td><td>{:.4}</td>\
         <td class=\"l {st}\">{st}</td></tr></table>",
        m.features,
        m.components,
        100.0 * m.explained,
        m.rows,
        num(m.mean_error),
        m.lower,
        m.upper,
        m.reference_error,
        st = m.status
    );
    // A scale from the band to the value, with the band shaded.
    let Some(v) = m.mean_error else { return };
    let (lo, hi) = (v.min(m.lower), v.max(m.upper));
    let pad = ((hi - lo) * 0.1).max(1e-9);
    let (lo, hi) = (lo - pad, hi + pad);
    let x = |t: f64| 20.0 + (t - lo) / (hi - lo) * 560.0;
    let _ = write!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"600\" height=\"56\" role=\"img\" \
         aria-label=\"reconstruction error against its band\">\
         <line x1=\"20\" y1=\"30\" x2=\"580\" y2=\"30\" stroke=\"#8c959f\"/>\
         <rect x=\"{bx:.1}\" y=\"20\" width=\"{bw:.1}\" height=\"20\" fill=\"#8c959f\" \
         fill-opacity=\"0.35\"><title>band {lo4:.4} to {hi4:.4}</title></rect>\
         <circle cx=\"{vx:.1}\" cy=\"30\" r=\"6\" fill=\"{color}\"><title>this run: {v:.4}</title></circle>\
         <text x=\"{bx:.1}\" y=\"14\" font-size=\"10\" text-anchor=\"middle\">{lo4:.4}</text>\
         <text x=\"{bxe:.1}\" y=\"14\" font-size=\"10\" text-anchor=\"middle\">{hi4:.4}</text>\
         <text x=\"{vx:.1}\" y=\"54\" font-size=\"10\" text-anchor=\"middle\">{v:.4}</text></svg>",
        bx = x(m.lower),
        bw = (x(m.upper) - x(m.lower)).max(1.0),
        bxe = x(m.upper),
        lo4 = m.lower,
        hi4 = m.upper,
        vx = x(v),
        color = if m.status == "pass" {
            "#1a7f37"
        } else {
            "#cf222e"
        },
    );
}

/// The performance section: estimates with their 95 % band beside the reference,
/// and the reference's reliability diagram with the calibration map.
fn performance_section(
    s: &mut String,
    p: &super::performance::PerformanceReport,
    reference: Option<&super::performance::ReferencePerformance>,
) {
    let _ = write!(
        s,
        "<h2>Estimated performance</h2><p>Score <code>{}</code>: {} rows ({} without a score), \
         {:.0} positives expected. Estimated from the scores alone through the bundle's \
         calibration ({} labelled rows); it holds while only the inputs move (no concept drift). \
         Band: ±1.96 standard errors.</p>",
        esc(&p.score),
        p.rows,
        p.missing,
        p.expected_positives,
        p.calibration_rows
    );
    s.push_str(
        "<table><tr><th class=\"l\">metric</th><th>threshold</th><th>estimated</th>\
         <th>95 % band</th><th>reference</th><th>change</th></tr>",
    );
    let mut row = |name: &str,
                   t: Option<f64>,
                   e: crate::stats::calibration::Estimate,
                   r: Option<f64>| {
        let band = if e.value.is_finite() && e.std_error.is_finite() {
            format!(
                "{} – {}",
                num(Some(e.value - 1.96 * e.std_error)),
                num(Some(e.value + 1.96 * e.std_error))
            )
        } else {
            "–".into()
        };
        let change = r.filter(|_| e.value.is_finite()).map(|r| e.value - r);
        let _ = write!(
            s,
            "<tr><td class=\"l\">{name}</td><td>{}</td><td>{}</td><td>{band}</td><td>{}</td><td>{}</td></tr>",
            t.map_or(String::new(), |t| t.to_string()),
            num(Some(e.value).filter(|v| v.is_finite())),
            num(r),
            change.map_or("–".into(), |c| format!("{c:+.4}"))
        );
    };
    row("AUC", None, p.estimated_auc, p.reference_auc);
    for a in &p.at {
        let e = &a.estimated;
        let t = Some(e.threshold);
        row("precision", t, e.precision, a.reference_precision);
        row("recall", t, e.recall, a.reference_recall);
        row("F1", t, e.f1, a.reference_f1);
        row("accuracy", t, e.accuracy, a.reference_accuracy);
    }
    s.push_str("</table>");
    if let Some(r) = reference {
        s.push_str("<div class=\"hist\"><div><b>Reliability of the reference</b></div>");
        s.push_str(&reliability_svg(r));
        s.push_str("</div>");
    }
}

/// The reliability diagram: positive rate against mean score per bin of the
/// calibration rows (dots), the calibration map (steps) and the diagonal.
pub(crate) fn reliability_svg(r: &super::performance::ReferencePerformance) -> String {
    let (w, ht, pad) = (300.0, 240.0, 34.0);
    let (lo, hi) = r
        .reliability
        .iter()
        .map(|b| b.mean_score)
        .chain(
            r.calibration
                .edges
                .iter()
                .copied()
                .filter(|e| e.is_finite()),
        )
        .fold((0.0f64, 1.0f64), |(a, b), x| (a.min(x), b.max(x)));
    let span = (hi - lo).max(1e-12);
    let x = |v: f64| pad + (v - lo) / span * (w - 2.0 * pad);
    let y = |v: f64| ht - pad - v * (ht - 2.0 * pad);
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{ht}\" role=\"img\" \
         aria-label=\"reliability diagram\">\
         <rect x=\"{pad}\" y=\"{pad}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"none\" stroke=\"#ccc\"/>",
        w - 2.0 * pad,
        ht - 2.0 * pad
    );
    if lo >= 0.0 && hi <= 1.0 {
        let _ = write!(
            s,
            "<line x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"#bbb\" stroke-dasharray=\"4 3\"/>",
            x(lo),
            y(lo),
            x(hi),
            y(hi)
        );
    }
    let mut path = String::new();
    let mut prev = lo;
    for (e, v) in r.calibration.edges.iter().zip(&r.calibration.values) {
        let e = if e.is_finite() { e.clamp(lo, hi) } else { hi };
        let _ = write!(
            path,
            "{}{:.1},{:.1} L{:.1},{:.1} ",
            if path.is_empty() { "M" } else { "L" },
            x(prev),
            y(*v),
            x(e),
            y(*v)
        );
        prev = e;
    }
    let _ = write!(
        s,
        "<path d=\"{path}\" fill=\"none\" stroke=\"#0969da\" stroke-width=\"1.5\"><title>calibration map</title></path>"
    );
    for b in &r.reliability {
        let _ = write!(
            s,
            "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3.5\" fill=\"#cf222e\"><title>{} rows: mean score {:.4}, positive rate {:.4}</title></circle>",
            x(b.mean_score),
            y(b.positive_rate),
            b.rows,
            b.mean_score,
            b.positive_rate
        );
    }
    let _ = write!(
        s,
        "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"middle\">score ({} – {})</text>\
         <text x=\"10\" y=\"{:.1}\" font-size=\"10\" transform=\"rotate(-90 10 {:.1})\" text-anchor=\"middle\">positive rate (0 – 1)</text></svg>",
        w / 2.0,
        ht - 8.0,
        num(Some(lo)),
        num(Some(hi)),
        ht / 2.0,
        ht / 2.0
    );
    s
}

/// Renders the report page.
pub fn render(
    r: &Report,
    histograms: &[Histogram],
    reference: Option<&super::performance::ReferencePerformance>,
) -> String {
    let mut s = String::with_capacity(64 * 1024);
    let status = r.status;
    let count = |st: &str| {
        r.checks.iter().filter(|c| c.status == st).count()
            + r.drift.iter().filter(|d| d.status == st).count()
            + r.multivariate.iter().filter(|m| m.status == st).count()
    };
    let _ = write!(
        s,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>scorch report {job} {ds}</title><style>{STYLE}</style></head><body>\
         <h1>scorch report: {job}, ds={ds}</h1>\
         <p class=\"status {status}\" id=\"status\">Overall: {STATUS} · {fails} failed, {warns} warned, \
         {passes} passed (checks and drifted columns)</p>\
         <p>run <code>{run}</code> · {rows} rows read · report version {v}</p>",
        job = esc(&r.job),
        ds = esc(&r.ds),
        run = esc(&r.run_id),
        rows = r.rows,
        v = r.report_version,
        STATUS = status.to_uppercase(),
        fails = count("fail"),
        warns = count("warn"),
        passes = count("pass"),
    );
    // Checks.
    s.push_str("<h2>Quality checks</h2>");
    if r.checks.is_empty() {
        s.push_str("<p>No checks configured.</p>");
    } else {
        s.push_str("<table><tr><th class=\"l\">check</th><th>value</th><th>min</th><th>max</th><th class=\"l\">severity</th><th class=\"l\">status</th></tr>");
        for c in &r.checks {
            let _ = write!(
                s,
                "<tr><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"l\">{}</td><td class=\"l {st}\">{st}</td></tr>",
                esc(&c.name),
                num(c.value),
                num(c.min),
                num(c.max),
                match c.severity {
                    super::Severity::Warn => "warn",
                    super::Severity::Fail => "fail",
                },
                st = c.status
            );
        }
        s.push_str("</table>");
    }
    // Drift, most drifted first.
    s.push_str("<h2>Drift</h2>");
    if r.drift.is_empty() {
        s.push_str("<p>Drift is not computed for this job (<code>report.drift</code>).</p>");
    } else {
        let mut order: Vec<usize> = (0..r.drift.len()).collect();
        // Most severe first: fail, warn, pass, no data; then by PSI.
        let rank = |st: &str| match st {
            "fail" => 3,
            "warn" => 2,
            "pass" => 1,
            _ => 0,
        };
        order.sort_by(|&a, &b| {
            let (x, y) = (&r.drift[a], &r.drift[b]);
            rank(y.status)
                .cmp(&rank(x.status))
                .then(y.psi.total_cmp(&x.psi))
        });
        let _ = write!(
            s,
            "<p>Share of drifted columns: {:.1}%</p><table><tr><th class=\"l\">column</th><th>PSI</th>\
             <th>Jensen-Shannon</th><th>KS</th><th>KS p-value</th><th>Wasserstein (σ)</th>\
             <th>chi-square</th><th>p-value</th><th>new categories</th><th class=\"l\">status</th></tr>",
            r.drift_share.unwrap_or(0.0) * 100.0
        );
        for &i in &order {
            let d = &r.drift[i];
            let _ = write!(
                s,
                "<tr><td class=\"l\">{}</td><td>{:.4}</td><td>{:.4}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"l {st}\" title=\"{why}\">{st}</td></tr>",
                esc(&d.column),
                d.psi,
                d.js_distance,
                match (d.ks_statistic, d.ks_error) {
                    (Some(k), Some(e)) => format!("{k:.4} <small>+{e:.4}</small>"),
                    _ => "–".into(),
                },
                num(d.ks_p_value),
                match (d.wasserstein, d.wasserstein_error) {
                    (Some(w), Some(e)) => format!("{w:.4} <small>±{e:.4}</small>"),
                    _ => "–".into(),
                },
                num(d.chi2.as_ref().map(|c| c.statistic)),
                num(d.chi2.as_ref().map(|c| c.p_value)),
                d.new_categories.map_or("–".to_string(), |n| n.to_string()),
                st = d.status,
                why = esc(&d.reasons.join("; "))
            );
        }
        s.push_str(
            "</table><p class=\"legend\"><span style=\"background:#8c959f\"></span>reference\
                    <span style=\"background:#0969da\"></span>this run (share of rows per bin)</p>",
        );
        for &i in &order {
            if let Some(h) = histograms.iter().find(|h| h.column == r.drift[i].column) {
                let _ = write!(
                    s,
                    "<div class=\"hist\"><div><b>{}</b> PSI {:.3}</div>{}</div>",
                    esc(&h.column),
                    r.drift[i].psi,
                    svg(h)
                );
            }
        }
    }
    if let Some(m) = &r.multivariate {
        multivariate_section(&mut s, m);
    }
    if let Some(p) = &r.performance {
        performance_section(&mut s, p, reference);
    }
    // Metrics.
    s.push_str("<h2>Column metrics</h2><table><tr><th class=\"l\">column</th><th class=\"l\">type</th><th>completeness</th>\
                <th>distinct</th><th>uniqueness</th><th>min</th><th>p05</th><th>median</th><th>p95</th><th>max</th><th>mean</th><th>stddev</th></tr>");
    for c in &r.columns {
        let _ = write!(
            s,
            "<tr><td class=\"l\">{}</td><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&c.name),
            esc(&c.dtype),
            num(c.completeness),
            c.distinct
                .map_or(format!("≈{}", c.approx_distinct), |d| d.to_string()),
            num(c.uniqueness),
            num(c.min),
            num(c.get("p05")),
            num(c.get("p50")),
            num(c.get("p95")),
            num(c.max),
            num(c.mean),
            num(c.stddev)
        );
    }
    s.push_str("</table></body></html>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped() {
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
