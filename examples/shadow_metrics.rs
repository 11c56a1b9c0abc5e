//! Prints scorch's shadow-comparison statistics of a Parquet file with Float64
//! columns `a` and `b` (two models' scores) and Boolean `y` (labels), as JSON, for
//! tests/py/shadow_metrics_check.py to compare with scipy.
//!
//!     shadow_metrics FILE.parquet

use polars::prelude::*;
use scorch::shadow::metrics::*;

fn main() {
    let path = std::env::args()
        .nth(1)
        .expect("usage: shadow_metrics FILE.parquet");
    let df = LazyFrame::scan_parquet(PlRefPath::new(&path), Default::default())
        .and_then(|lf| lf.collect())
        .expect("readable Parquet");
    let col = |n: &str| -> Vec<f64> {
        df.column(n)
            .unwrap()
            .f64()
            .unwrap()
            .into_no_null_iter()
            .collect()
    };
    let (a, b) = (col("a"), col("b"));
    let y: Vec<bool> = df
        .column("y")
        .unwrap()
        .bool()
        .unwrap()
        .iter()
        .map(|v| v.expect("labels without nulls"))
        .collect();
    let out = serde_json::json!({
        "pearson": pearson(&a, &b),
        "spearman": spearman(&a, &b),
        "auc_a": auc(&y, &a),
        "auc_b": auc(&y, &b),
        "log_loss_a": log_loss(&y, &a),
        "brier_a": brier(&y, &a),
        "agreement": agreement(&a, &b, 0.5),
        "top_k_jaccard_10": top_k_jaccard(&a, &b, 0.1),
    });
    println!("{out}");
}
