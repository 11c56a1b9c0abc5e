//! `scorch history`'s page: one self-contained HTML page (inline CSS and SVG, no
//! script, no network) over every run of a table, so a trend shows at a glance:
//! each date's overall status, row counts, the checks' verdicts, PSI per column
//! as a heat map of columns × dates, the estimated performance with its band and
//! the realized performance where labels arrived, and the multivariate drift.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::html::{STYLE, esc, num, short_label};
use crate::stats::calibration::Estimate;

/// What the page shows of one date: its latest run.
#[derive(Debug, Clone, Default)]
pub struct DatePoint {
    pub ds: String,
    pub run_id: String,
    pub rows: Option<f64>,
    /// `pass`, `warn`, `fail`, or empty when the run wrote no report.
    pub status: String,
    /// Check name → status.
    pub checks: BTreeMap<String, String>,
    /// Column → PSI.
    pub psi: BTreeMap<String, f64>,
    /// Estimated metrics (name → estimate): `auc`, `f1@0.5`, …
    pub estimated: BTreeMap<String, Estimate>,
    /// Realized metrics of the latest evaluation (same names).
    pub realized: BTreeMap<String, f64>,
    /// Multivariate drift: the mean reconstruction error and its band.
    pub reconstruction: Option<(f64, Option<(f64, f64)>)>,
}

const W: f64 = 1100.0;
const LEFT: f64 = 170.0;
const RIGHT: f64 = 20.0;

/// x of date `i` of `n` (cell centre), and the cell width.
fn x_of(i: usize, n: usize) -> (f64, f64) {
    let cell = (W - LEFT - RIGHT) / n.max(1) as f64;
    (LEFT + cell * (i as f64 + 0.5), cell)
}

/// Date labels along the bottom of a chart at `y`, slanted, at most 25 shown.
fn date_axis(s: &mut String, dates: &[&str], y: f64) {
    let every = dates.len().div_ceil(25).max(1);
    for (i, d) in dates.iter().enumerate() {
        if i % every == 0 || i + 1 == dates.len() {
            let (x, _) = x_of(i, dates.len());
            let _ = write!(
                s,
                "<text x=\"{x:.1}\" y=\"{y:.1}\" font-size=\"10\" text-anchor=\"end\" \
                 transform=\"rotate(-40 {x:.1} {y:.1})\">{}</text>",
                esc(d)
            );
        }
    }
}

fn status_color(st: &str) -> &'static str {
    match st {
        "pass" => "#2da44e",
        "warn" => "#d4a72c",
        "fail" => "#cf222e",
        _ => "#d0d7de",
    }
}

/// A PSI's colour: white at 0, yellow at 0.1, orange at 0.25, red at 0.5 and above.
fn psi_color(v: f64) -> String {
    let stops = [
        (0.0, (255.0, 255.0, 255.0)),
        (0.1, (255.0, 236.0, 153.0)),
        (0.25, (244.0, 162.0, 97.0)),
        (0.5, (192.0, 57.0, 43.0)),
    ];
    let v = if v.is_finite() { v.max(0.0) } else { 0.5 };
    let mut c = stops[stops.len() - 1].1;
    for w in stops.windows(2) {
        let ((a, ca), (b, cb)) = (w[0], w[1]);
        if v <= b {
            let t = (v - a) / (b - a);
            c = (
                ca.0 + t * (cb.0 - ca.0),
                ca.1 + t * (cb.1 - ca.1),
                ca.2 + t * (cb.2 - ca.2),
            );
            break;
        }
    }
    format!("rgb({:.0},{:.0},{:.0})", c.0, c.1, c.2)
}

/// A grid of coloured cells: one row per name, one column per date.
fn grid(
    s: &mut String,
    dates: &[&str],
    rows: &[String],
    cell: impl Fn(usize, &str) -> Option<(String, String)>,
) {
    let rh = 18.0;
    let h = 10.0 + rh * rows.len() as f64 + 80.0;
    let _ = write!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{h:.0}\" role=\"img\">"
    );
    for (r, name) in rows.iter().enumerate() {
        let y = 10.0 + rh * r as f64;
        let _ = write!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\">{}</text>",
            LEFT - 6.0,
            y + 13.0,
            esc(&short_label(name, 26))
        );
        for (i, _) in dates.iter().enumerate() {
            let (x, cw) = x_of(i, dates.len());
            let (fill, title) = cell(i, name).unwrap_or(("#f6f8fa".into(), "no value".into()));
            let _ = write!(
                s,
                "<rect x=\"{:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{fill}\" stroke=\"#fff\">\
                 <title>{} · {} · {}</title></rect>",
                x - cw / 2.0,
                cw,
                rh - 1.0,
                esc(name),
                esc(dates[i]),
                esc(&title)
            );
        }
    }
    date_axis(s, dates, 10.0 + rh * rows.len() as f64 + 12.0);
    s.push_str("</svg>");
}

/// A line chart over dates: `series` (name, colour, value per date, band per date)
/// and dots (`points`: name, colour, value per date).
#[allow(clippy::type_complexity)]
fn line_chart(
    s: &mut String,
    dates: &[&str],
    title: &str,
    series: &[(&str, &str, Vec<Option<f64>>, Vec<Option<(f64, f64)>>)],
    points: &[(&str, &str, Vec<Option<f64>>)],
    rule: Option<(f64, &str)>,
) {
    let (ht, top) = (180.0, 24.0);
    let values = series
        .iter()
        .flat_map(|(_, _, v, b)| {
            v.iter()
                .flatten()
                .copied()
                .chain(b.iter().flatten().flat_map(|(a, b)| [*a, *b]))
        })
        .chain(
            points
                .iter()
                .flat_map(|(_, _, v)| v.iter().flatten().copied()),
        )
        .chain(rule.map(|r| r.0))
        .filter(|v| v.is_finite());
    let (mut lo, mut hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
        (a.min(v), b.max(v))
    });
    if !lo.is_finite() {
        (lo, hi) = (0.0, 1.0);
    }
    let pad = ((hi - lo) * 0.1).max(1e-6);
    let (lo, hi) = (lo - pad, hi + pad);
    let y = |v: f64| top + (hi - v) / (hi - lo) * ht;
    let _ = write!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{:.0}\" role=\"img\" aria-label=\"{}\">\
         <text x=\"{LEFT}\" y=\"14\" font-size=\"12\" font-weight=\"600\">{}</text>\
         <line x1=\"{LEFT}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"#555\"/>\
         <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"end\">{}</text>\
         <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"end\">{}</text>",
        top + ht + 80.0,
        esc(title),
        esc(title),
        top + ht,
        W - RIGHT,
        top + ht,
        LEFT - 6.0,
        y(hi) + 4.0,
        num(Some(hi)),
        LEFT - 6.0,
        y(lo),
        num(Some(lo)),
    );
    if let Some((v, label)) = rule {
        let _ = write!(
            s,
            "<line x1=\"{LEFT}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"#8c959f\" stroke-dasharray=\"5 4\"><title>{}</title></line>",
            y(v),
            W - RIGHT,
            y(v),
            esc(label)
        );
    }
    let n = dates.len();
    for (name, colour, v, band) in series {
        // The band: a polygon over consecutive dates that have one.
        let mut upper = Vec::new();
        let mut lower = Vec::new();
        for (i, b) in band.iter().enumerate() {
            if let Some((a, b)) = b.filter(|(a, b)| a.is_finite() && b.is_finite()) {
                let (x, _) = x_of(i, n);
                upper.push(format!("{x:.1},{:.1}", y(b)));
                lower.push(format!("{x:.1},{:.1}", y(a)));
            }
        }
        if !upper.is_empty() {
            lower.reverse();
            let _ = write!(
                s,
                "<polygon points=\"{} {}\" fill=\"{colour}\" fill-opacity=\"0.18\" stroke=\"none\"><title>{} 95 % band</title></polygon>",
                upper.join(" "),
                lower.join(" "),
                esc(name)
            );
        }
        let pts: Vec<String> = v
            .iter()
            .enumerate()
            .filter_map(|(i, v)| {
                let v = v.filter(|v| v.is_finite())?;
                Some(format!("{:.1},{:.1}", x_of(i, n).0, y(v)))
            })
            .collect();
        let _ = write!(
            s,
            "<polyline points=\"{}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\"><title>{}</title></polyline>",
            pts.join(" "),
            esc(name)
        );
    }
    for (name, colour, v) in points {
        for (i, v) in v.iter().enumerate() {
            if let Some(v) = v.filter(|v| v.is_finite()) {
                let _ = write!(
                    s,
                    "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3.5\" fill=\"{colour}\"><title>{} {} {:.4}</title></circle>",
                    x_of(i, n).0,
                    y(v),
                    esc(name),
                    esc(dates[i]),
                    v
                );
            }
        }
    }
    date_axis(s, dates, top + ht + 14.0);
    s.push_str("</svg>");
}

/// Renders the page for `job`'s table `table`, dates in order.
pub fn render(job: &str, table: &str, points: &[DatePoint]) -> String {
    let mut s = String::with_capacity(128 * 1024);
    let dates: Vec<&str> = points.iter().map(|p| p.ds.as_str()).collect();
    let count = |st: &str| points.iter().filter(|p| p.status == st).count();
    let _ = write!(
        s,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>scorch history {job}</title><style>{STYLE}</style></head><body>\
         <h1>scorch history: {job}</h1>\
         <p>table <code>{table}</code> · {n} date(s){range} · latest run per date · \
         <span class=\"fail\">{f} failed</span>, <span class=\"warn\">{w} warned</span>, \
         <span class=\"pass\">{p} passed</span></p>",
        job = esc(job),
        table = esc(table),
        n = points.len(),
        range = match (dates.first(), dates.last()) {
            (Some(a), Some(b)) => format!(", {} to {}", esc(a), esc(b)),
            _ => String::new(),
        },
        f = count("fail"),
        w = count("warn"),
        p = count("pass"),
    );
    if points.is_empty() {
        s.push_str("<p>No runs with metrics in this range.</p></body></html>\n");
        return s;
    }
    status(&mut s, &dates, points);
    row_counts(&mut s, &dates, points);
    drift(&mut s, &dates, points);
    performance(&mut s, &dates, points);
    multivariate(&mut s, &dates, points);
    per_date(&mut s, points);
    s
}

/// The page's section of each date's status and check verdicts.
fn status(s: &mut String, dates: &[&str], points: &[DatePoint]) {
    s.push_str("<h2>Status and checks</h2>");
    let mut rows = vec!["overall status".to_string()];
    let mut checks: Vec<String> = points
        .iter()
        .flat_map(|p| p.checks.keys().cloned())
        .collect();
    checks.sort();
    checks.dedup();
    rows.extend(checks);
    grid(s, dates, &rows, |i, name| {
        let p = &points[i];
        let st = if name == "overall status" {
            Some(p.status.as_str()).filter(|s| !s.is_empty())
        } else {
            p.checks.get(name).map(String::as_str)
        }?;
        Some((status_color(st).to_string(), st.to_string()))
    });
}

/// The page's section of rows read per date.
fn row_counts(s: &mut String, dates: &[&str], points: &[DatePoint]) {
    let rows_series: Vec<Option<f64>> = points.iter().map(|p| p.rows).collect();
    line_chart(
        s,
        dates,
        "rows read",
        &[("rows", "#0969da", rows_series, vec![None; points.len()])],
        &[],
        None,
    );
}

/// The page's section of the drift heat map.
fn drift(s: &mut String, dates: &[&str], points: &[DatePoint]) {
    let mut columns: Vec<(String, f64)> = Vec::new();
    for p in points {
        for (c, v) in &p.psi {
            match columns.iter_mut().find(|(n, _)| n == c) {
                Some(e) => e.1 = e.1.max(*v),
                None => columns.push((c.clone(), *v)),
            }
        }
    }
    columns.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    s.push_str(
        "<h2>Drift: PSI per column and date</h2><p class=\"legend\">\
         <span style=\"background:#fff;border:1px solid #ccc\"></span>0\
         <span style=\"background:rgb(255,236,153)\"></span>0.1\
         <span style=\"background:rgb(244,162,97)\"></span>0.25\
         <span style=\"background:rgb(192,57,43)\"></span>≥ 0.5 · columns by their highest PSI</p>",
    );
    if columns.is_empty() {
        s.push_str("<p>No drift computed (<code>report.drift</code>).</p>");
    } else {
        let names: Vec<String> = columns.iter().map(|c| c.0.clone()).collect();
        grid(s, dates, &names, |i, name| {
            let v = *points[i].psi.get(name)?;
            Some((psi_color(v), format!("PSI {v:.4}")))
        });
    }
}

/// The page's section of estimated and realized performance.
fn performance(s: &mut String, dates: &[&str], points: &[DatePoint]) {
    let mut metrics: Vec<String> = points
        .iter()
        .flat_map(|p| p.estimated.keys().chain(p.realized.keys()).cloned())
        .collect();
    metrics.sort_by_key(|m| (m != "auc", m.clone()));
    metrics.dedup();
    s.push_str("<h2>Performance: estimated (line, 95 % band) and realized (dots)</h2>");
    if metrics.is_empty() {
        s.push_str(
            "<p>No performance estimated (<code>report.performance</code>) or evaluated \
             (<code>scorch evaluate</code>).</p>",
        );
    }
    for m in metrics.iter().filter(|m| {
        m.as_str() == "auc"
            || m.starts_with("f1@")
            || m.starts_with("precision@")
            || m.starts_with("recall@")
    }) {
        let est: Vec<Option<f64>> = points
            .iter()
            .map(|p| p.estimated.get(m).map(|e| e.value))
            .collect();
        let band: Vec<Option<(f64, f64)>> = points
            .iter()
            .map(|p| {
                p.estimated
                    .get(m)
                    .map(|e| (e.value - 1.96 * e.std_error, e.value + 1.96 * e.std_error))
            })
            .collect();
        let real: Vec<Option<f64>> = points.iter().map(|p| p.realized.get(m).copied()).collect();
        line_chart(
            s,
            dates,
            m,
            &[("estimated", "#0969da", est, band)],
            &[("realized", "#cf222e", real)],
            None,
        );
    }
}

/// The page's section of multivariate drift.
fn multivariate(s: &mut String, dates: &[&str], points: &[DatePoint]) {
    if points.iter().any(|p| p.reconstruction.is_some()) {
        s.push_str("<h2>Multivariate drift: PCA reconstruction error</h2>");
        let err: Vec<Option<f64>> = points
            .iter()
            .map(|p| p.reconstruction.map(|r| r.0))
            .collect();
        let band: Vec<Option<(f64, f64)>> = points
            .iter()
            .map(|p| p.reconstruction.and_then(|r| r.1))
            .collect();
        line_chart(
            s,
            dates,
            "mean reconstruction error, with the band from the reference's chunk-to-chunk spread",
            &[("reconstruction error", "#8250df", err, band)],
            &[],
            None,
        );
    }
}

/// The page's section of each date's exact values.
fn per_date(s: &mut String, points: &[DatePoint]) {
    s.push_str(
        "<h2>Per date</h2><table><tr><th class=\"l\">ds</th><th class=\"l\">status</th><th>rows</th>\
         <th>max PSI</th><th>estimated AUC</th><th>realized AUC</th><th class=\"l\">run</th></tr>",
    );
    for p in points {
        let max_psi = p
            .psi
            .values()
            .copied()
            .fold(None, |a: Option<f64>, v| Some(a.map_or(v, |a| a.max(v))));
        let _ = write!(
            s,
            "<tr><td class=\"l\">{}</td><td class=\"l {st}\">{st}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"l\"><code>{}</code></td></tr>",
            esc(&p.ds),
            num(p.rows),
            num(max_psi),
            p.estimated
                .get("auc")
                .filter(|e| e.value.is_finite())
                .map_or("–".into(), |e| match e.std_error {
                    se if se.is_finite() => format!("{:.4} ± {:.4}", e.value, 1.96 * se),
                    _ => format!("{:.4}", e.value),
                }),
            num(p.realized.get("auc").copied()),
            esc(&p.run_id),
            st = esc(if p.status.is_empty() {
                "–"
            } else {
                &p.status
            }),
        );
    }
    s.push_str("</table></body></html>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psi_colours_rise_and_odd_values_render() {
        assert_eq!(psi_color(0.0), "rgb(255,255,255)");
        assert_eq!(psi_color(0.1), "rgb(255,236,153)");
        assert_eq!(psi_color(3.0), "rgb(192,57,43)");
        assert_eq!(psi_color(f64::NAN), "rgb(192,57,43)");
        let mut p = DatePoint {
            ds: "2026-01-01".into(),
            status: "warn".into(),
            ..Default::default()
        };
        p.psi.insert("<x>".into(), f64::INFINITY);
        p.estimated.insert(
            "auc".into(),
            Estimate {
                value: f64::NAN,
                std_error: f64::NAN,
            },
        );
        let page = render("j", "t", &[p.clone(), p]);
        assert!(page.contains("&lt;x&gt;") && !page.contains("<x>"));
        assert!(!page.contains("NaN"));
        assert!(render("j", "t", &[]).contains("No runs"));
    }
}
