//! Training/serving parity: the example preprocessing applied by scorch (Rust
//! Polars) and by python/scorch_prep.py (polars-python) gives the same matrix.

use crate::common::*;
use polars::prelude::*;

fn read(path: &std::path::Path) -> DataFrame {
    ParquetReader::new(std::fs::File::open(path).unwrap())
        .finish()
        .unwrap()
}

#[test]
fn rust_and_python_feature_matrices_agree() {
    // Several days, including drifted ones with an unseen `family` plan.
    let p = Project::new(20, 1500);
    let data = p.path().join("data/churn/features/*/*.parquet");
    let data = data.to_str().unwrap();

    // Fit a fresh state with scorch itself on days before the drift, then apply it
    // both ways to every day.
    let train = p
        .path()
        .join("data/churn/features/ds=2026-11-1[0-4]/*.parquet");
    let state = p.path().join("state.json");
    p.fit(
        &repo().join("preprocess/churn_features.yaml"),
        &train,
        &state,
    );
    let rust_out = p.path().join("rust.parquet");
    p.apply(
        &state,
        std::path::Path::new(data),
        "customer_id,ds",
        &rust_out,
    );
    let py_out = p.path().join("python.parquet");
    let o = run_python(&[
        repo().join("tests/py/features_python.py").to_str().unwrap(),
        state.to_str().unwrap(),
        data,
        py_out.to_str().unwrap(),
        "customer_id",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));

    let r = read(&rust_out);
    let py = read(&py_out);
    assert_eq!(r.height(), 20 * 1500);
    assert_eq!(py.height(), r.height());
    let names: Vec<String> = r
        .get_column_names()
        .iter()
        .skip(2)
        .map(|s| s.to_string())
        .collect();
    let py_names: Vec<String> = py
        .get_column_names()
        .iter()
        .skip(1)
        .map(|s| s.to_string())
        .collect();
    assert_eq!(names, py_names);
    assert!(
        names.len() > 30,
        "one-hot expansion expected, got {} features",
        names.len()
    );
    assert!(names.iter().any(|n| n == "plan=__unknown__"));
    assert_eq!(
        r.column("customer_id").unwrap(),
        py.column("customer_id").unwrap()
    );
    let mut worst = (0.0f64, String::new());
    for n in &names {
        let a = r.column(n).unwrap().f64().unwrap();
        let b = py.column(n).unwrap().f64().unwrap();
        assert_eq!(a.null_count(), 0, "{n} has nulls");
        for (x, y) in a.into_no_null_iter().zip(b.into_no_null_iter()) {
            let d = (x - y).abs();
            assert!(!d.is_nan(), "{n}: {x} vs {y}");
            if d > worst.0 {
                worst = (d, n.clone());
            }
        }
    }
    eprintln!("max abs diff {} (column {})", worst.0, worst.1);
    assert!(
        worst.0 <= 1e-6,
        "Rust and Python differ by {} in {}",
        worst.0,
        worst.1
    );
    // The unseen `family` plan of the drifted days lands in the unknown bucket.
    let unknown = r
        .column("plan=__unknown__")
        .unwrap()
        .f64()
        .unwrap()
        .sum()
        .unwrap();
    assert!(unknown > 0.0);
}

/// The same training rows fit to the same state, to the bit, whether they come as
/// one file or split into files of any sizes (a statistic over several chunks would
/// sum in another order).
#[test]
fn fitting_the_same_rows_split_differently_gives_the_same_hash() {
    let p = Project::new(3, 700);
    let spec = repo().join("preprocess/churn_features.yaml");
    let days = p.path().join("data/churn/features/*/*.parquet");
    let mut all =
        LazyFrame::scan_parquet(PlRefPath::new(days.to_str().unwrap()), Default::default())
            .unwrap()
            .collect()
            .unwrap();
    let rows = all.height();
    let write = |df: &mut DataFrame, path: &std::path::Path| {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        ParquetWriter::new(std::fs::File::create(path).unwrap())
            .finish(df)
            .unwrap();
    };
    write(&mut all, &p.path().join("one/all.parquet"));
    // Uneven pieces: 1 row, a prime-sized middle, the rest.
    let mut start = 0;
    for (i, len) in [1, 997, rows - 998].into_iter().enumerate() {
        let mut piece = all.slice(start as i64, len);
        write(
            &mut piece,
            &p.path().join(format!("split/part-{i}.parquet")),
        );
        start += len;
    }
    let fit = |glob: &str, out: &str| -> serde_json::Value {
        p.fit(&spec, &p.path().join(glob), &p.path().join(out));
        read_json(p.path().join(out))
    };
    let (a, b, c) = (
        fit("one/*.parquet", "one.json"),
        fit("split/*.parquet", "split.json"),
        fit("data/churn/features/*/*.parquet", "days.json"),
    );
    assert_eq!(a["fitted"], b["fitted"]);
    assert_eq!(a["content_hash"], b["content_hash"]);
    assert_eq!(a["content_hash"], c["content_hash"]);
}
