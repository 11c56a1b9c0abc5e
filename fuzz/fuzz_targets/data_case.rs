// One data case: arbitrary column values pushed through preprocess → contract →
// report → drift with the example bundle and contract. Shared by the `data` fuzz
// target (long runs, `make fuzz`) and `tests/it/data_fuzz.rs` (a short budget in
// `make test`), both with `include!`. Panics only on a broken promise: every value
// is data, every written number reads back.

/// The example bundle and contract, opened once.
fn example() -> &'static (scorch::model::Bundle, scorch::contract::Contract) {
    static EX: std::sync::OnceLock<(scorch::model::Bundle, scorch::contract::Contract)> =
        std::sync::OnceLock::new();
    EX.get_or_init(|| {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let root = if root.join("models").is_dir() { root.to_path_buf() } else { root.join("..") };
        let bundle = scorch::model::Bundle::open(&root.join("models/churn/1.0.0")).expect("example bundle");
        let contract = scorch::contract::Contract::load(&root.join("schemas/churn_features.yaml"))
            .expect("example contract");
        (bundle, contract)
    })
}

/// Decodes `data` into a frame of the example's input columns: each row takes 8
/// bytes per numeric column (f64 bits, or i64 for integer columns; an all-ones
/// pattern is null) and one length byte plus that many bytes (lossy UTF-8) per
/// string column.
fn frame(data: &[u8]) -> polars::prelude::DataFrame {
    use polars::prelude::*;
    // The example day's columns (python/make_churn_data.py), customer_id aside.
    let f = DataType::Float64;
    let i = DataType::Int64;
    let t = DataType::String;
    let b = DataType::Boolean;
    let schema: Vec<(&str, DataType)> = vec![
        ("age", f.clone()),
        ("tenure_months", i.clone()),
        ("monthly_charges", f.clone()),
        ("total_charges", f.clone()),
        ("num_support_calls", i.clone()),
        ("num_logins_30d", i.clone()),
        ("avg_session_minutes", f.clone()),
        ("days_since_last_login", i.clone()),
        ("plan", t.clone()),
        ("region", t.clone()),
        ("payment_method", t.clone()),
        ("contract", t.clone()),
        ("device_os", t.clone()),
        ("has_partner", b.clone()),
        ("paperless_billing", b),
        ("discount_pct", f.clone()),
        ("num_products", i.clone()),
        ("late_payments_12m", i.clone()),
        ("nps_score", i),
        ("data_usage_gb", f),
    ];
    let mut cur = data;
    let mut take = |n: usize| -> Option<Vec<u8>> {
        if cur.len() < n {
            return None;
        }
        let (a, b) = cur.split_at(n);
        cur = b;
        Some(a.to_vec())
    };
    let mut cols: Vec<Vec<AnyValue<'static>>> = vec![vec![]; schema.len()];
    'rows: for _ in 0..4096 {
        let mut row = Vec::with_capacity(schema.len());
        for (_, t) in &schema {
            let v = if t.is_primitive_numeric() || t.is_bool() {
                let Some(b) = take(8) else { break 'rows };
                let bits = u64::from_le_bytes(b.try_into().expect("8 bytes"));
                if bits == u64::MAX {
                    AnyValue::Null
                } else if t.is_float() {
                    AnyValue::Float64(f64::from_bits(bits))
                } else if t.is_bool() {
                    AnyValue::Boolean(bits & 1 == 1)
                } else {
                    AnyValue::Int64(bits as i64)
                }
            } else {
                let Some(n) = take(1) else { break 'rows };
                if n[0] == 255 {
                    AnyValue::Null
                } else {
                    let Some(s) = take(n[0] as usize % 64) else { break 'rows };
                    AnyValue::StringOwned(String::from_utf8_lossy(&s).as_ref().into())
                }
            };
            row.push(v);
        }
        for (c, v) in cols.iter_mut().zip(row) {
            c.push(v);
        }
    }
    let columns: Vec<Column> = schema
        .iter()
        .zip(cols)
        .map(|((name, t), values)| {
            let name: PlSmallStr = (*name).into();
            let null = || Series::full_null(name.clone(), values.len(), t);
            let s = Series::from_any_values(name.clone(), &values, false).unwrap_or_else(|_| null());
            s.cast(t).unwrap_or_else(|_| null()).into_column()
        })
        .collect();
    let n = columns.first().map_or(0, |c| c.len());
    let ids = Column::new("customer_id".into(), (0..n as i64).collect::<Vec<_>>());
    // The run date, as hive partitioning gives it (the contract's freshness column).
    let ds = Series::new("ds".into(), vec![20_785i32; n])
        .cast(&DataType::Date)
        .expect("dates")
        .into_column();
    let mut all = vec![ids];
    all.extend(columns);
    all.push(ds);
    DataFrame::new_infer_height(all).expect("columns of one length")
}

/// Every number in the JSON text reads back as a finite f64 (non-finite ones are
/// written as null).
fn check_json<T: serde::Serialize>(v: &T) {
    fn walk(v: &serde_json::Value) {
        match v {
            serde_json::Value::Number(n) => assert!(n.as_f64().is_some_and(f64::is_finite), "{n}"),
            serde_json::Value::Array(a) => a.iter().for_each(walk),
            serde_json::Value::Object(o) => o.values().for_each(walk),
            _ => {}
        }
    }
    let text = serde_json::to_string(v).expect("serializes");
    walk(&serde_json::from_str(&text).expect("reads back"));
}

pub fn data_case(data: &[u8]) {
    use polars::prelude::*;
    let (bundle, contract) = example();
    let df = frame(data);
    // Contract: split into valid and quarantined rows, never an error on values.
    let mut checker =
        scorch::contract::Checker::new(contract.clone(), "schemas/churn_features.yaml".into());
    let split = checker.split(df.clone()).expect("the contract splits any values");
    let rows = split.valid.height() + split.quarantined.as_ref().map_or(0, |q| q.height());
    assert_eq!(rows, df.height());
    let _ = checker.finish(chrono::NaiveDate::from_ymd_opt(2026, 11, 28).expect("date"));
    // Preprocess: any value in, a frame out (or a named error, never a panic).
    let _ = scorch::preprocess::apply(df.clone().lazy(), &bundle.state, &["customer_id".into()])
        .and_then(|lf| lf.collect().map_err(Into::into));
    // Report and drift against the bundle's reference profile.
    let mut profile = scorch::reports::Profile::new(df.schema(), &[], 1000);
    if let Some(r) = &bundle.reference {
        profile.drift = Some(scorch::reports::drift::DriftCounter::new(r.clone()));
    }
    profile.update(&df).expect("profiles any values");
    let spec: scorch::spec::job::ReportSpec =
        serde_json::from_str(r#"{"drift": {}}"#).expect("report spec");
    let report = scorch::reports::Report::assemble(
        &profile,
        &spec,
        ("fuzz", "fuzz", "2026-11-28"),
        df.height() as u64,
        None,
    )
    .expect("assembles");
    check_json(&report);
    let _ = scorch::reports::html::render(&report, &profile.drift.as_ref().map(|d| d.histograms()).unwrap_or_default(), None);
    // The shard profile round trip (MessagePack) merges with itself.
    let bytes = rmp_serde::to_vec_named(&profile).expect("profile serializes");
    let back: scorch::reports::Profile = rmp_serde::from_slice(&bytes).expect("profile reads back");
    let mut twice = back.clone();
    twice.merge(&back).expect("merges with its like");
}
