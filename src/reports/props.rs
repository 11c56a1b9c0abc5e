//! Property tests: every statistic of a report takes any f64 (±inf, NaN, ±0,
//! subnormals, ±MAX) and any string, in bounded memory and without a panic, and
//! writes only numbers it can read back.

use super::drift::{ColumnRef, DriftCounter, ReferenceProfile};
use super::*;
use crate::stats::ks;
use proptest::prelude::*;

/// Any f64, with the awkward ones drawn often.
fn value() -> impl Strategy<Value = f64> {
    prop_oneof![
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(f64::NAN),
        Just(f64::MAX),
        Just(-f64::MAX),
        Just(f64::MIN_POSITIVE),
        Just(5e-324),
        Just(-0.0),
        Just(0.0),
        proptest::num::f64::ANY,
        -1e3..1e3f64,
    ]
}

fn values() -> impl Strategy<Value = Vec<Option<f64>>> {
    proptest::collection::vec(proptest::option::weighted(0.9, value()), 0..300)
}

/// Strings: empty, short, long, any Unicode.
fn strings() -> impl Strategy<Value = Vec<Option<String>>> {
    proptest::collection::vec(
        proptest::option::weighted(
            0.9,
            prop_oneof![Just(String::new()), "[a-c]{1,2}", ".{0,40}", "x{1000,3000}",],
        ),
        0..100,
    )
}

/// Every number in a JSON text parses back (serde_json writes non-finite as null).
fn reads_back<T: serde::Serialize>(v: &T) -> serde_json::Value {
    let text = serde_json::to_string(v).expect("serializes");
    serde_json::from_str(&text).expect("reads back")
}

fn finite_or_absent(v: &serde_json::Value, what: &str) {
    match v {
        serde_json::Value::Number(n) => {
            assert!(n.as_f64().is_some_and(f64::is_finite), "{what}: {n}")
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| finite_or_absent(x, what)),
        serde_json::Value::Object(o) => o.values().for_each(|x| finite_or_absent(x, what)),
        _ => {}
    }
}

/// Distinct non-null values and values seen once, computed by Polars' own group-by.
fn polars_frequencies(df: &DataFrame, c: &str) -> (u64, u64) {
    let g = df
        .select([c])
        .unwrap()
        .drop_nulls::<String>(None)
        .unwrap()
        .lazy()
        .group_by([col(c)])
        .agg([len().alias("__n")])
        .collect()
        .unwrap();
    let n = g.column("__n").unwrap().cast(&DataType::UInt64).unwrap();
    let once = n
        .u64()
        .unwrap()
        .into_no_null_iter()
        .filter(|&x| x == 1)
        .count();
    (g.height() as u64, once as u64)
}

/// A frame whose columns cross every in-memory limit of the exact counter: few and
/// many distinct integers, any f64 (±0, NaN, ±inf), short strings, dates.
fn frame() -> impl Strategy<Value = DataFrame> {
    (0usize..2500, 1i64..3000).prop_flat_map(|(n, range)| {
        (
            proptest::collection::vec(proptest::option::weighted(0.95, 0..range), n),
            proptest::collection::vec(proptest::option::weighted(0.9, value()), n),
            proptest::collection::vec(
                proptest::option::weighted(0.9, prop_oneof!["[a-c]{0,2}", ".{0,12}"]),
                n,
            ),
            proptest::collection::vec(any::<i64>(), n),
        )
            .prop_map(|(a, x, s, u)| {
                let days: Vec<i32> = a.iter().map(|v| v.unwrap_or(0) as i32 % 400).collect();
                let mut df = df!("a" => a, "x" => x, "s" => s, "u" => u, "d" => days).unwrap();
                let d = df.column("d").unwrap().cast(&DataType::Date).unwrap();
                df.with_column(d).unwrap();
                df
            })
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// `distinct`, `uniqueness` and `unique_value_ratio` equal Polars' own group-by
    /// on any data, whatever the chunking, the counters' map and buffer limits, the
    /// memory budget (down to spilling every chunk) and the number of shards (each
    /// frozen into its own files, read back and merged).
    #[test]
    fn frequency_metrics_equal_polars_across_every_limit(
        df in frame(),
        chunk in 1usize..700,
        map_entries in 1usize..400,
        buffer_rows in 1usize..800,
        budget in prop_oneof![Just(0usize), 1usize..40_000, Just(usize::MAX)],
        shards in 1usize..4,
    ) {
        let limits = distinct::Limits { map_entries, buffer_rows };
        let dir = tempfile::tempdir().unwrap();
        let n = df.height();
        let per = n.div_ceil(shards).max(1);
        let mut merged: Option<Profile> = None;
        for s in 0..shards {
            let mut p = Profile::new(df.schema(), &[], budget);
            p.set_counter_limits(limits);
            p.spill_to(dir.path().join(format!("spill-{s}")));
            let (lo, hi) = ((s * per).min(n), ((s + 1) * per).min(n));
            let mut at = lo;
            while at < hi {
                let len = chunk.min(hi - at);
                p.update(&df.slice(at as i64, len)).unwrap();
                at += len;
            }
            let p = if shards == 1 {
                p
            } else {
                // A shard: frozen into its folder, serialized, read back, located.
                let folder = dir.path().join(format!("shard-{s}"));
                std::fs::create_dir_all(&folder).unwrap();
                p.freeze(&folder).unwrap();
                let bytes = rmp_serde::to_vec_named(&p).unwrap();
                drop(p);
                let mut back: Profile = rmp_serde::from_slice(&bytes).unwrap();
                back.locate(|f| Ok((folder.join(f), None))).unwrap();
                back
            };
            match &mut merged {
                None => merged = Some(p),
                Some(m) => m.merge(&p).unwrap(),
            }
        }
        let mut p = merged.unwrap();
        p.resolve().unwrap();
        for c in &p.columns {
            let m = c.metrics();
            let (distinct, once) = polars_frequencies(&df, &c.name);
            let non_null = n as u64 - df.column(&c.name).unwrap().null_count() as u64;
            prop_assert_eq!(m.distinct, Some(distinct), "column {}", c.name);
            prop_assert_eq!(
                m.uniqueness,
                (non_null > 0).then(|| once as f64 / non_null as f64),
                "column {}", c.name
            );
            prop_assert_eq!(
                m.unique_value_ratio,
                (distinct > 0).then(|| once as f64 / distinct as f64),
                "column {}", c.name
            );
        }
        // Nothing of the spill folders is left once the profile is gone.
        p.discard_spill();
        drop(p);
        for s in 0..shards {
            let left = dir.path().join(format!("spill-{s}"));
            prop_assert!(!left.exists(), "{} left", left.display());
        }
    }

    #[test]
    fn column_stats_take_any_value_and_merge(v in values(), cut in 0usize..300) {
        let col = Column::new("x".into(), v.clone());
        let mut whole = ColumnStats::new("x", &DataType::Float64);
        whole.update(&col).unwrap();
        let cut = cut.min(v.len());
        let mut a = ColumnStats::new("x", &DataType::Float64);
        let mut b = a.clone();
        a.update(&col.slice(0, cut)).unwrap();
        b.update(&col.slice(cut as i64, v.len())).unwrap();
        let b: ColumnStats = rmp_serde::from_slice(&rmp_serde::to_vec_named(&b).unwrap()).unwrap();
        a.merge(&b);
        let non_finite = v.iter().flatten().filter(|x| !x.is_finite()).count() as u64;
        for s in [&whole, &a] {
            let m = s.metrics();
            prop_assert_eq!(m.count, v.len() as u64);
            prop_assert_eq!(m.non_finite, non_finite);
            finite_or_absent(&reads_back(&m), "metrics");
            // Bounded: the quantile buckets span the f64 exponent range at most.
            let (positive, negative) = s.quantiles.dense_buckets();
            prop_assert!(positive <= 80_000);
            prop_assert!(negative <= 80_000);
        }
        let (x, y) = (whole.metrics(), a.metrics());
        prop_assert_eq!(x.min, y.min);
        prop_assert_eq!(x.max, y.max);
        prop_assert_eq!(x.quantiles, y.quantiles);
        prop_assert_eq!(x.distinct, y.distinct);
        let finite: Vec<f64> = v.iter().flatten().copied().filter(|x| x.is_finite()).collect();
        if let Some(mean) = x.mean {
            let lo = finite.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = finite.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            prop_assert!(mean >= lo && mean <= hi, "mean {} outside [{}, {}]", mean, lo, hi);
        } else {
            prop_assert!(finite.is_empty());
        }
    }

    #[test]
    fn string_columns_take_any_text(v in strings()) {
        let col = Column::new("s".into(), v.clone());
        let mut st = ColumnStats::new("s", &DataType::String);
        st.update(&col).unwrap();
        let m = st.metrics();
        prop_assert_eq!(m.nulls, v.iter().filter(|s| s.is_none()).count() as u64);
        finite_or_absent(&reads_back(&m), "string metrics");
        let distinct: std::collections::BTreeSet<_> = v.iter().flatten().collect();
        prop_assert_eq!(m.distinct, Some(distinct.len() as u64));
    }

    #[test]
    fn drift_takes_any_reference_and_any_run(r in values(), c in values(), s in strings()) {
        let rdf = df!("x" => r.clone(), "s" => (0..r.len()).map(|i| s.get(i % s.len().max(1)).cloned().flatten()).collect::<Vec<_>>()).unwrap();
        let cdf = df!("x" => c.clone(), "s" => (0..c.len()).map(|i| s.get((i + 1) % s.len().max(1)).cloned().flatten()).collect::<Vec<_>>()).unwrap();
        let profile = ReferenceProfile::build(rdf.clone().lazy(), &["x".into(), "s".into()], 10, 50, "mem").unwrap();
        // The reference profile is JSON that reads back into itself.
        let text = serde_json::to_string(&profile).unwrap();
        let back: ReferenceProfile = serde_json::from_str(&text).unwrap();
        prop_assert_eq!(&back, &profile);
        if let ColumnRef::Numeric { edges, sketch, .. } = &profile.columns[0] {
            prop_assert!(edges.iter().all(|e| e.is_finite()));
            if let Some(sk) = sketch {
                prop_assert!(sk.mean.is_finite() && sk.std.is_finite());
            }
        }
        let mut counter = DriftCounter::new(profile);
        counter.update(&cdf, false).unwrap();
        let spec: crate::spec::job::DriftSpec = serde_json::from_str("{}").unwrap();
        for d in counter.results(&spec) {
            let v = reads_back(&d);
            if d.status != "no_data" {
                prop_assert!(d.psi.is_finite(), "psi {}", d.psi);
            }
            for k in ["ks_statistic", "ks_p_value", "wasserstein"] {
                if let Some(x) = v.get(k) {
                    prop_assert!(x.as_f64().is_some_and(f64::is_finite), "{}: {}", k, x);
                }
            }
        }
        let _ = counter.histograms();
    }

    #[test]
    fn exact_drift_takes_any_values(r in values(), c in values()) {
        let rdf = df!("x" => r).unwrap();
        let cdf = df!("x" => c).unwrap();
        for binning in [exact::Binning::Quantile, exact::Binning::Evidently] {
            let d = exact::drift_frames(&rdf, &cdf, &["x".into()], exact::DriftOptions::new(10, binning), 7).unwrap();
            finite_or_absent(&reads_back(&d), "exact drift");
        }
    }

    #[test]
    fn distances_take_any_counts(a in proptest::collection::vec(0u64..1_000_000, 1..20), b in proptest::collection::vec(0u64..1_000_000, 1..20)) {
        let n = a.len().min(b.len());
        let (a, b) = (&a[..n], &b[..n]);
        let p = crate::stats::divergence::psi(a, b);
        prop_assert!(p.is_finite() && p >= -1e-12);
        let js = crate::stats::divergence::js_distance(a, b);
        prop_assert!(js.is_nan() || (0.0..=1.0).contains(&js));
        let chi = crate::stats::divergence::chi2_contingency(a, b);
        prop_assert!(chi.statistic.is_finite() && (0.0..=1.0).contains(&chi.p_value), "{:?}", chi);
    }

    #[test]
    fn ks_and_wasserstein_take_any_finite_samples(mut a in proptest::collection::vec(value(), 1..200), mut b in proptest::collection::vec(value(), 1..200)) {
        a.retain(|x| x.is_finite());
        b.retain(|x| x.is_finite());
        prop_assume!(!a.is_empty() && !b.is_empty());
        ks::radix_sort(&mut a);
        ks::radix_sort(&mut b);
        let k = ks::ks_2samp(&a, &b).unwrap();
        prop_assert!((0.0..=1.0).contains(&k.statistic));
        prop_assert!((0.0..=1.0).contains(&k.p_value), "{:?}", k);
        let w = ks::wasserstein(&a, &b).unwrap();
        prop_assert!(w >= 0.0 || w.is_nan());
    }

    #[test]
    fn anomaly_baselines_take_any_history(h in proptest::collection::vec(value(), 0..30), now in value()) {
        let spec: crate::spec::report::AnomalySpec = serde_json::from_str(r#"{"metric": "mean", "column": "x", "min_history": 2}"#).unwrap();
        let h: Vec<f64> = h.into_iter().filter(|x| x.is_finite()).collect();
        let r = spec.judge(Some(now).filter(|x| x.is_finite()), &h);
        finite_or_absent(&reads_back(&r), "anomaly");
    }
}
