//! Versioned preprocessing in Polars: the spec ([`spec`]), its fitted state
//! ([`state`]), fitting ([`fit`]) and applying ([`apply`]).
//!
//! Fitting and applying build the very same Polars expressions (see
//! [`step_expr`]), so a state fitted here applies identically at serving time;
//! `python/scorch_prep.py` builds the same expressions with polars-python for
//! training, and a test proves the two agree.

pub mod fused;
pub mod spec;
pub mod state;

use std::path::Path;

use polars::prelude::*;

use crate::error::{Error, Result};
use spec::{CastTo, FillStrategy, PreprocessSpec, Scalar, Step, UNKNOWN_CATEGORY};
use state::{FittedState, FittedStep, Provenance, STATE_FORMAT_VERSION};

/// Loads and validates a preprocessing spec file.
pub fn load_spec(path: &Path) -> Result<PreprocessSpec> {
    let spec: PreprocessSpec = crate::spec::load_yaml(path)?;
    spec.validate().into_result(path)?;
    Ok(spec)
}

fn cast_dtype(c: CastTo) -> DataType {
    match c {
        CastTo::Float64 => DataType::Float64,
        CastTo::Float32 => DataType::Float32,
        CastTo::Int64 => DataType::Int64,
        CastTo::Int32 => DataType::Int32,
        CastTo::Boolean => DataType::Boolean,
        CastTo::String => DataType::String,
    }
}

fn scalar_lit(s: &Scalar) -> Expr {
    match s {
        Scalar::Bool(b) => lit(*b),
        Scalar::Int(i) => lit(*i),
        Scalar::Float(f) => lit(*f),
        Scalar::Str(s) => lit(s.as_str()),
    }
}

fn f64_col(e: Expr) -> Expr {
    e.cast(DataType::Float64)
}

fn categories_lit(cats: &[String]) -> Expr {
    lit(Series::new(PlSmallStr::EMPTY, cats)).implode(true)
}

/// The expression of one step applied to `e`, with its fitted value.
/// Returns several expressions only for `one_hot`.
fn step_expr(e: Expr, step: &Step, fitted: &FittedStep, out: &str) -> Result<Vec<Expr>> {
    let wrong = || {
        Error::Model(format!(
            "fitted value {fitted:?} does not belong to step `{}` of feature `{out}`",
            step.kind()
        ))
    };
    Ok(vec![match (step, fitted) {
        (Step::Cast(to), FittedStep::None) => e.strict_cast(cast_dtype(*to)),
        (Step::FillNull(f), FittedStep::None) if f.strategy == FillStrategy::Constant => {
            e.fill_null(scalar_lit(f.value.as_ref().ok_or_else(wrong)?))
        }
        (Step::FillNull(_), FittedStep::FillValue { value }) => e.fill_null(scalar_lit(value)),
        (Step::Clip(c), FittedStep::None) => {
            let x = f64_col(e);
            match (c.min, c.max) {
                (Some(lo), Some(hi)) => x.clip(lit(lo), lit(hi)),
                (Some(lo), None) => x.clip_min(lit(lo)),
                (None, Some(hi)) => x.clip_max(lit(hi)),
                (None, None) => x,
            }
        }
        (Step::Log1p, FittedStep::None) => f64_col(e).log1p(),
        (Step::Standardize, FittedStep::Standardize { mean, std }) => {
            (f64_col(e) - lit(*mean)) / lit(*std)
        }
        (Step::MinMax, FittedStep::MinMax { min, max }) => {
            let range = if max > min { max - min } else { 1.0 };
            (f64_col(e) - lit(*min)) / lit(range)
        }
        (Step::Ordinal(_), FittedStep::Vocabulary { categories }) => {
            let codes: Vec<f64> = (1..=categories.len()).map(|i| i as f64).collect();
            e.cast(DataType::String)
                .replace_strict(
                    lit(Series::new(PlSmallStr::EMPTY, categories)),
                    lit(Series::new(PlSmallStr::EMPTY, codes)),
                    Some(lit(0.0f64)),
                    Some(DataType::Float64),
                )
                .fill_null(lit(0.0f64))
        }
        (Step::OneHot(_), FittedStep::Vocabulary { categories }) => {
            let s = e.cast(DataType::String);
            let mut cols: Vec<Expr> = categories
                .iter()
                .map(|c| {
                    s.clone()
                        .eq(lit(c.as_str()))
                        .fill_null(lit(false))
                        .cast(DataType::Float64)
                        .alias(format!("{out}={c}"))
                })
                .collect();
            cols.push(
                s.is_in(categories_lit(categories), false)
                    .not()
                    .fill_null(lit(true))
                    .cast(DataType::Float64)
                    .alias(format!("{out}={UNKNOWN_CATEGORY}")),
            );
            return Ok(cols);
        }
        (Step::Bucketize(_), FittedStep::Boundaries { boundaries }) => {
            let x = f64_col(e);
            boundaries
                .iter()
                .map(|b| x.clone().gt_eq(lit(*b)).cast(DataType::Float64))
                .reduce(|a, b| a + b)
                .unwrap_or_else(|| x * lit(0.0f64))
        }
        _ => return Err(wrong()),
    }])
}

/// True for dtypes the numeric steps accept without a `cast`.
fn is_numeric(dt: &DataType) -> bool {
    dt.is_primitive_numeric() || dt.is_bool() || dt.is_null()
}

/// Checks that `schema` has every input column of `spec` with a usable type.
/// A missing column or a string column fed to numeric steps is a data-contract error (exit 3).
pub fn check_input_schema(spec: &PreprocessSpec, schema: &Schema) -> Result<()> {
    let derived: std::collections::BTreeSet<&str> =
        spec.derived.iter().map(|d| d.name.as_str()).collect();
    for c in spec.input_columns() {
        if schema.get(c.as_str()).is_none() {
            return Err(Error::DataContract(format!(
                "input has no column `{c}`, which preprocessing `{}` {} needs (columns present: {})",
                spec.name,
                spec.version,
                schema
                    .iter_names()
                    .map(|n| n.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    }
    for f in &spec.features {
        if derived.contains(f.column.as_str()) {
            continue;
        }
        let dt = schema.get(f.column.as_str()).expect("checked above");
        let first_typed = f
            .steps
            .iter()
            .find(|s| !matches!(s, Step::FillNull(_)))
            .cloned();
        let needs_number =
            !matches!(first_typed, Some(Step::Cast(_))) && !f.steps.iter().any(Step::is_encoder);
        if needs_number && !is_numeric(dt) {
            return Err(Error::DataContract(format!(
                "column `{}` has type {dt}, but feature `{}` of preprocessing `{}` needs a number; \
                 fix the data or add a `cast` step",
                f.column,
                f.out_name(),
                spec.name
            )));
        }
    }
    Ok(())
}

/// Adds the spec's derived columns (Polars SQL expressions) to `lf`.
pub fn with_derived(lf: LazyFrame, spec: &PreprocessSpec) -> Result<LazyFrame> {
    let mut lf = lf;
    for d in &spec.derived {
        let e = polars::sql::sql_expr(&d.sql).map_err(|e| {
            Error::usage(format!(
                "preprocessing `{}` derived column `{}`: {e}",
                spec.name, d.name
            ))
        })?;
        lf = lf.with_column(e.alias(d.name.as_str()));
    }
    Ok(lf)
}

/// The feature expressions of a fitted state, in model input order.
pub fn feature_exprs(state: &FittedState) -> Result<Vec<Expr>> {
    let mut out = Vec::with_capacity(state.feature_names.len());
    for (f, fitted) in state.spec.features.iter().zip(&state.fitted) {
        let mut e = col(f.column.as_str());
        let mut exprs = None;
        for (step, fs) in f.steps.iter().zip(fitted) {
            let mut v = step_expr(e.clone(), step, fs, f.out_name())?;
            if v.len() == 1 {
                e = v.pop().expect("one");
            } else {
                exprs = Some(v);
            }
        }
        match exprs {
            Some(v) => out.extend(v),
            None => out.push(e.cast(DataType::Float64).alias(f.out_name())),
        }
    }
    let names: Vec<String> = out
        .iter()
        .map(|e| {
            e.clone()
                .meta()
                .output_name()
                .map(|n| n.to_string())
                .unwrap_or_default()
        })
        .collect();
    if names != state.feature_names {
        return Err(Error::Model(format!(
            "preprocessing `{}`: the state's feature names do not match the spec's features",
            state.spec.name
        )));
    }
    Ok(out)
}

/// Applies a fitted state: derived columns, then `keep` columns unchanged followed
/// by the features (all Float64, in model order). Lazy: nothing is read here.
pub fn apply(lf: LazyFrame, state: &FittedState, keep: &[String]) -> Result<LazyFrame> {
    let lf = with_derived(lf, &state.spec)?;
    if !keep.is_empty() {
        check_keep(&lf, state, keep)?;
    }
    let mut sel: Vec<Expr> = keep.iter().map(|k| col(k.as_str())).collect();
    sel.extend(feature_exprs(state)?);
    Ok(lf.select(sel))
}

/// The `keep` columns exist in the input and collide with no feature nor each other.
fn check_keep(lf: &LazyFrame, state: &FittedState, keep: &[String]) -> Result<()> {
    let schema = lf.clone().collect_schema()?;
    for (i, k) in keep.iter().enumerate() {
        if keep[..i].contains(k) {
            return Err(Error::usage(format!("the column `{k}` is kept twice")));
        }
        if state.feature_names.iter().any(|f| f == k) {
            return Err(Error::usage(format!(
                "the kept column `{k}` has the name of a feature of preprocessing `{}`, so the \
                 output would hold two columns `{k}`: leave it out of the kept columns",
                state.spec.name
            )));
        }
        if !schema.contains(k) {
            let present: Vec<&str> = schema.iter_names().map(|n| n.as_str()).collect();
            return Err(Error::DataContract(format!(
                "the input has no column `{k}` to keep (columns present: {})",
                present.join(", ")
            )));
        }
    }
    Ok(())
}

fn scalar_from_any(v: AnyValue<'_>) -> Option<Scalar> {
    Some(match v {
        AnyValue::Null => return None,
        AnyValue::Boolean(b) => Scalar::Bool(b),
        AnyValue::String(s) => Scalar::Str(s.to_string()),
        AnyValue::StringOwned(s) => Scalar::Str(s.to_string()),
        AnyValue::Float32(f) => Scalar::Float(f as f64),
        AnyValue::Float64(f) => Scalar::Float(f),
        other => match other.extract::<i64>() {
            Some(i) if other.is_integer() => Scalar::Int(i),
            _ => Scalar::Float(other.extract::<f64>()?),
        },
    })
}

fn one_f64(df: &DataFrame, name: &str) -> Result<Option<f64>> {
    let c = df.column(name)?;
    Ok(c.get(0)?.extract::<f64>().filter(|v| !v.is_nan()))
}

/// Refuses a step's training values (`v`, the feature after the steps before it)
/// that hold NaN or ±inf: a mean, scale, bound or quantile learned from them would
/// not be a finite number, and serving refuses such features anyway. Names the
/// first such row (0-based, as the serving error does) and how many there are.
fn check_finite_input(frame: &LazyFrame, what: &str) -> Result<()> {
    let dtype = frame.clone().collect_schema()?.get("v").cloned();
    if !dtype.is_some_and(|d| d.is_float()) {
        return Ok(());
    }
    let bad = col("v").is_nan().or(col("v").is_infinite());
    let df = frame
        .clone()
        .with_row_index("row", None)
        .filter(bad)
        .select([
            len().alias("n"),
            col("row").first().alias("row"),
            col("v").cast(DataType::Float64).first().alias("v"),
        ])
        .collect()?;
    let n = df.column("n")?.get(0)?.extract::<u64>().unwrap_or(0);
    if n == 0 {
        return Ok(());
    }
    let row = df.column("row")?.get(0)?.extract::<u64>().unwrap_or(0);
    let v = df.column("v")?.get(0)?.extract::<f64>().unwrap_or(f64::NAN);
    let bound = "fix the data, or bound it with a clip step before this one";
    let (value, hint) = match v {
        v if v.is_nan() => (
            "NaN",
            "NaN is a value, not a null (fill_null does not replace it): fix the data",
        ),
        v if v > 0.0 => ("+inf", bound),
        _ => ("-inf", bound),
    };
    Err(Error::DataContract(format!(
        "cannot fit `{what}`: its training values hold {value} at row {row} ({n} such row{}); {hint}",
        if n == 1 { "" } else { "s" }
    )))
}

/// A learned number that is not finite (a sum or square past f64's range).
fn finite(x: f64, name: &str, what: &str) -> Result<f64> {
    if x.is_finite() {
        return Ok(x);
    }
    Err(Error::DataContract(format!(
        "cannot fit `{what}`: its {name} is {x} (the training values are too large for f64 \
         arithmetic); scale them down, or add a clip or log1p step before this one"
    )))
}

/// Learns what one step needs from `frame` (one column `v`: the feature after the previous steps).
fn fit_step(frame: &LazyFrame, step: &Step, what: &str) -> Result<FittedStep> {
    let v = || col("v");
    let none_left = || {
        Error::DataContract(format!(
            "cannot fit `{what}`: no non-null values in the training data"
        ))
    };
    let learns_numbers = match step {
        Step::Cast(_) | Step::Clip(_) | Step::Log1p | Step::OneHot(_) | Step::Ordinal(_) => false,
        Step::FillNull(f) => f.strategy != FillStrategy::Constant,
        Step::Bucketize(b) => b.boundaries.is_none(),
        Step::Standardize | Step::MinMax => true,
    };
    if learns_numbers {
        check_finite_input(frame, what)?;
    }
    Ok(match step {
        Step::Cast(_) | Step::Clip(_) | Step::Log1p => FittedStep::None,
        Step::FillNull(f) => match f.strategy {
            FillStrategy::Constant => FittedStep::None,
            FillStrategy::Mean => {
                let df = frame
                    .clone()
                    .select([f64_col(v()).mean().alias("m")])
                    .collect()?;
                let mean = one_f64(&df, "m")?.ok_or_else(none_left)?;
                FittedStep::FillValue {
                    value: Scalar::Float(finite(mean, "mean", what)?),
                }
            }
            FillStrategy::Mode => {
                let df = frame
                    .clone()
                    .drop_nulls(None)
                    .group_by([v()])
                    .agg([len().alias("n")])
                    .sort_by_exprs(
                        [col("n"), v()],
                        SortMultipleOptions::default().with_order_descending_multi([true, false]),
                    )
                    .limit(1)
                    .collect()?;
                if df.height() == 0 {
                    return Err(none_left());
                }
                let value = scalar_from_any(df.column("v")?.get(0)?).ok_or_else(none_left)?;
                FittedStep::FillValue { value }
            }
        },
        Step::Standardize => {
            let df = frame
                .clone()
                .select([
                    f64_col(v()).mean().alias("m"),
                    f64_col(v()).std(0).alias("s"),
                ])
                .collect()?;
            let mean = finite(one_f64(&df, "m")?.ok_or_else(none_left)?, "mean", what)?;
            let std = finite(
                one_f64(&df, "s")?.unwrap_or(0.0),
                "standard deviation",
                what,
            )?;
            FittedStep::Standardize {
                mean,
                std: if std > 0.0 && std.is_finite() {
                    std
                } else {
                    1.0
                },
            }
        }
        Step::MinMax => {
            let df = frame
                .clone()
                .select([f64_col(v()).min().alias("a"), f64_col(v()).max().alias("b")])
                .collect()?;
            FittedStep::MinMax {
                min: one_f64(&df, "a")?.ok_or_else(none_left)?,
                max: one_f64(&df, "b")?.ok_or_else(none_left)?,
            }
        }
        Step::OneHot(enc) | Step::Ordinal(enc) => {
            let mut q = frame
                .clone()
                .select([v().cast(DataType::String)])
                .drop_nulls(None)
                .group_by([v()])
                .agg([len().alias("n")])
                .filter(col("n").gt_eq(lit(enc.min_frequency)))
                .sort_by_exprs(
                    [col("n"), v()],
                    SortMultipleOptions::default().with_order_descending_multi([true, false]),
                );
            if let Some(k) = enc.max_categories {
                q = q.limit(k as IdxSize);
            }
            let df = q.collect()?;
            let categories: Vec<String> = df
                .column("v")?
                .str()?
                .iter()
                .map(|s| s.unwrap_or_default().to_string())
                .collect();
            if let Some(c) = categories.iter().find(|c| c.as_str() == UNKNOWN_CATEGORY) {
                return Err(Error::DataContract(format!(
                    "cannot fit `{what}`: the category `{c}` is reserved for the unknown bucket"
                )));
            }
            FittedStep::Vocabulary { categories }
        }
        Step::Bucketize(b) => {
            if let Some(bs) = &b.boundaries {
                FittedStep::Boundaries {
                    boundaries: bs.clone(),
                }
            } else {
                let q = b.quantiles.unwrap_or(2);
                let exprs: Vec<Expr> = (1..q)
                    .map(|i| {
                        f64_col(v())
                            .quantile(lit(i as f64 / q as f64), QuantileMethod::Linear)
                            .alias(format!("q{i}"))
                    })
                    .collect();
                let df = frame.clone().select(exprs).collect()?;
                let mut boundaries = Vec::with_capacity(q - 1);
                for i in 1..q {
                    let x = one_f64(&df, &format!("q{i}"))?.ok_or_else(none_left)?;
                    if boundaries.last().is_none_or(|&l: &f64| x > l) {
                        boundaries.push(x);
                    }
                }
                FittedStep::Boundaries { boundaries }
            }
        }
    })
}

/// Fits `spec` on `lf` (training data). `data` is recorded as provenance.
pub fn fit(spec: &PreprocessSpec, lf: LazyFrame, data: &str) -> Result<FittedState> {
    let schema = lf.clone().collect_schema()?;
    check_input_schema(spec, &schema)?;
    let cols: Vec<Expr> = spec
        .input_columns()
        .iter()
        .map(|c| col(c.as_str()))
        .collect();
    // One chunk: a statistic over several chunks (one per input file, or per
    // batch a frame arrived in) sums in another order, so the same rows split
    // differently would fit values a last bit apart and a different hash.
    let mut df = lf.select(cols).collect()?;
    df.rechunk_mut();
    let rows = df.height() as u64;
    if rows == 0 {
        return Err(Error::DataContract(format!(
            "training data {data} has no rows"
        )));
    }
    let mut base = with_derived(df.lazy(), spec)?.collect()?;
    base.rechunk_mut();
    let base = base.lazy();
    let mut fitted = Vec::with_capacity(spec.features.len());
    let mut feature_names = Vec::new();
    for (i, f) in spec.features.iter().enumerate() {
        let mut e = col(f.column.as_str());
        let mut steps = Vec::with_capacity(f.steps.len());
        let mut width = None;
        for (j, step) in f.steps.iter().enumerate() {
            let what = format!("features[{i}] ({}) step {j} {}", f.out_name(), step.kind());
            let frame = base.clone().select([e.clone().alias("v")]);
            let fs = fit_step(&frame, step, &what).map_err(|err| err.context(&spec.name))?;
            let v = step_expr(e.clone(), step, &fs, f.out_name())?;
            if v.len() == 1 {
                e = v.into_iter().next().expect("one");
            } else {
                width = Some(v);
            }
            steps.push(fs);
        }
        match width {
            Some(v) => {
                for x in v {
                    feature_names.push(
                        x.meta()
                            .output_name()
                            .map(|n| n.to_string())
                            .unwrap_or_default(),
                    );
                }
            }
            None => feature_names.push(f.out_name().to_string()),
        }
        fitted.push(steps);
    }
    let state = FittedState {
        format_version: STATE_FORMAT_VERSION,
        spec: spec.clone(),
        fitted,
        feature_names,
        fitted_on: Provenance {
            data: data.to_string(),
            rows,
            fitted_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        },
        content_hash: String::new(),
    }
    .seal();
    // Prove the state applies before handing it out.
    feature_exprs(&state)?;
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::parse_yaml;

    fn spec(yaml: &str) -> PreprocessSpec {
        let s: PreprocessSpec = parse_yaml(Path::new("p.yaml"), yaml).unwrap();
        assert!(s.validate().is_empty(), "{:?}", s.validate());
        s
    }

    fn frame() -> DataFrame {
        df!(
            "x" => [Some(1.0), Some(2.0), None, Some(4.0), Some(8.0), Some(0.0)],
            "n" => [Some(3i64), Some(1), Some(1), Some(3), None, Some(2)],
            "c" => [Some("b"), Some("a"), Some("b"), Some("c"), None, Some("b")],
        )
        .unwrap()
    }

    fn fitted(s: &PreprocessSpec) -> (FittedState, DataFrame) {
        let st = fit(s, frame().lazy(), "mem").unwrap();
        let out = apply(frame().lazy(), &st, &[]).unwrap().collect().unwrap();
        (st, out)
    }

    fn values(df: &DataFrame, c: &str) -> Vec<f64> {
        df.column(c)
            .unwrap()
            .f64()
            .unwrap()
            .into_no_null_iter()
            .collect()
    }

    #[test]
    fn mean_fill_then_standardize_uses_population_std() {
        let s = spec(
            "name: t\nversion: '1'\nfeatures:\n  - column: x\n    steps:\n      - fill_null: {strategy: mean}\n      - standardize\n",
        );
        let (st, out) = fitted(&s);
        let mean = 15.0 / 5.0;
        assert_eq!(
            st.fitted[0][0],
            FittedStep::FillValue {
                value: Scalar::Float(mean)
            }
        );
        let filled = [1.0, 2.0, mean, 4.0, 8.0, 0.0];
        let m = filled.iter().sum::<f64>() / 6.0;
        let sd = (filled.iter().map(|v| (v - m).powi(2)).sum::<f64>() / 6.0).sqrt();
        match &st.fitted[0][1] {
            FittedStep::Standardize { mean, std } => {
                assert!((mean - m).abs() < 1e-12 && (std - sd).abs() < 1e-12)
            }
            other => panic!("{other:?}"),
        }
        let got = values(&out, "x");
        for (g, f) in got.iter().zip(filled) {
            assert!((g - (f - m) / sd).abs() < 1e-12);
        }
    }

    #[test]
    fn mode_ties_go_to_the_smallest_value() {
        let s = spec(
            "name: t\nversion: '1'\nfeatures:\n  - column: n\n    steps:\n      - fill_null: {strategy: mode}\n",
        );
        let (st, out) = fitted(&s);
        assert_eq!(
            st.fitted[0][0],
            FittedStep::FillValue {
                value: Scalar::Int(1)
            }
        );
        assert_eq!(values(&out, "n"), [3.0, 1.0, 1.0, 3.0, 1.0, 2.0]);
    }

    #[test]
    fn one_hot_vocabulary_by_frequency_with_unknown_bucket() {
        let s = spec(
            "name: t\nversion: '1'\nfeatures:\n  - column: c\n    steps:\n      - one_hot: {min_frequency: 1, max_categories: 2}\n",
        );
        let (st, out) = fitted(&s);
        assert_eq!(
            st.fitted[0][0],
            FittedStep::Vocabulary {
                categories: vec!["b".into(), "a".into()]
            }
        );
        assert_eq!(st.feature_names, ["c=b", "c=a", "c=__unknown__"]);
        assert_eq!(values(&out, "c=b"), [1.0, 0.0, 1.0, 0.0, 0.0, 1.0]);
        assert_eq!(values(&out, "c=a"), [0.0, 1.0, 0.0, 0.0, 0.0, 0.0]);
        // "c" was cut by max_categories; null is unknown too.
        assert_eq!(
            values(&out, "c=__unknown__"),
            [0.0, 0.0, 0.0, 1.0, 1.0, 0.0]
        );
    }

    #[test]
    fn ordinal_codes_are_one_based_with_zero_for_unknown() {
        let s = spec(
            "name: t\nversion: '1'\nfeatures:\n  - column: c\n    steps:\n      - ordinal: {min_frequency: 2}\n",
        );
        let (_, out) = fitted(&s);
        assert_eq!(values(&out, "c"), [1.0, 0.0, 1.0, 0.0, 0.0, 1.0]);
    }

    #[test]
    fn bucketize_counts_boundaries_at_or_below() {
        let s = spec(
            "name: t\nversion: '1'\nfeatures:\n  - column: x\n    steps:\n      - fill_null: {strategy: constant, value: -1}\n      - bucketize: {boundaries: [0, 2, 4]}\n",
        );
        let (_, out) = fitted(&s);
        assert_eq!(values(&out, "x"), [1.0, 2.0, 0.0, 3.0, 3.0, 1.0]);
    }

    #[test]
    fn hash_is_stable_across_refits_and_follows_content() {
        let s = spec(
            "name: t\nversion: '1'\nfeatures:\n  - column: x\n    steps:\n      - fill_null: {strategy: mean}\n      - min_max\n",
        );
        let a = fit(&s, frame().lazy(), "one").unwrap();
        let b = fit(&s, frame().lazy(), "two").unwrap();
        assert_eq!(a.content_hash, b.content_hash);
        let other = frame().lazy().with_column(col("x") * lit(2.0));
        let c = fit(&s, other, "three").unwrap();
        assert_ne!(a.content_hash, c.content_hash);
        // A saved state loads back with the same hash (floats round-trip exactly).
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.json");
        a.save(&p).unwrap();
        assert_eq!(FittedState::load(&p).unwrap(), a);
    }

    #[test]
    fn string_column_without_cast_is_a_data_contract_error() {
        let s = spec(
            "name: t\nversion: '1'\nfeatures:\n  - column: c\n    steps:\n      - standardize\n",
        );
        let e = fit(&s, frame().lazy(), "mem").unwrap_err();
        assert_eq!(e.exit_code(), crate::error::ExitCode::DataContract);
        assert!(e.to_string().contains("`c`"), "{e}");
    }

    #[test]
    fn spec_validation_catches_misordered_and_incomplete_steps() {
        let s: PreprocessSpec = parse_yaml(
            Path::new("p.yaml"),
            "name: t\nversion: '1'\nfeatures:\n  - column: c\n    steps:\n      - one_hot: {}\n      - standardize\n  - column: x\n    steps:\n      - fill_null: {strategy: constant}\n      - clip: {}\n      - bucketize: {}\n",
        )
        .unwrap();
        let msg = s
            .validate()
            .into_result(Path::new("p.yaml"))
            .unwrap_err()
            .to_string();
        for needle in [
            "features[0].steps[0].one_hot",
            "needs a `value`",
            "give `min`, `max` or both",
            "exactly one of `boundaries` or `quantiles`",
        ] {
            assert!(msg.contains(needle), "{needle}: {msg}");
        }
    }

    fn one_column(values: Vec<Option<f64>>) -> DataFrame {
        df!("x" => values).unwrap()
    }

    const NUMBER_STEPS: [&str; 5] = [
        "standardize",
        "min_max",
        "fill_null: {strategy: mean}",
        "fill_null: {strategy: mode}",
        "bucketize: {quantiles: 3}",
    ];

    fn step_spec(step: &str) -> PreprocessSpec {
        spec(&format!(
            "name: t\nversion: '1'\nfeatures:\n  - column: x\n    steps:\n      - {step}\n"
        ))
    }

    #[test]
    fn training_values_with_nan_or_inf_are_refused_by_column_and_row() {
        for (bad, word) in [
            (f64::NAN, "NaN"),
            (f64::INFINITY, "+inf"),
            (f64::NEG_INFINITY, "-inf"),
        ] {
            for step in NUMBER_STEPS {
                let df = one_column(vec![Some(1.0), None, Some(bad), Some(2.0), Some(bad)]);
                let e = fit(&step_spec(step), df.lazy(), "mem").unwrap_err();
                let msg = e.to_string();
                assert_eq!(
                    e.exit_code(),
                    crate::error::ExitCode::DataContract,
                    "{step}: {msg}"
                );
                for needle in ["features[0] (x) step 0", word, "at row 2", "(2 such rows)"] {
                    assert!(msg.contains(needle), "{step} {word}: {needle}: {msg}");
                }
            }
        }
        // A clip before the step bounds ±inf: then it fits.
        let s = spec(
            "name: t\nversion: '1'\nfeatures:\n  - column: x\n    steps:\n      - clip: {min: -5, max: 5}\n      - standardize\n",
        );
        let df = one_column(vec![
            Some(1.0),
            Some(f64::INFINITY),
            Some(f64::NEG_INFINITY),
        ]);
        let st = fit(&s, df.lazy(), "mem").unwrap();
        let clipped = [1.0f64, 5.0, -5.0];
        let m = clipped.iter().sum::<f64>() / 3.0;
        let sd = (clipped.iter().map(|v| (v - m).powi(2)).sum::<f64>() / 3.0).sqrt();
        match st.fitted[0][1] {
            FittedStep::Standardize { mean, std } => {
                assert!(
                    (mean - m).abs() < 1e-12 && (std - sd).abs() < 1e-12,
                    "{mean} {std}"
                )
            }
            ref other => panic!("{other:?}"),
        }
        assert_eq!(
            st.fitted[0][1],
            FittedStep::Standardize {
                mean: 1.0 / 3.0,
                std: (2.0f64 * 25.0 / 3.0 + 1.0 / 3.0 - 1.0 / 9.0).sqrt()
            }
        );
    }

    #[test]
    fn a_spread_past_f64s_range_is_refused_not_scaled_by_one() {
        let df = one_column(vec![Some(1e308), Some(-1e308), Some(1e308)]);
        let e = fit(&step_spec("standardize"), df.lazy(), "mem").unwrap_err();
        assert!(e.to_string().contains("standard deviation is inf"), "{e}");
        let df = one_column(vec![Some(1.7e308), Some(1.7e308)]);
        let e = fit(&step_spec("fill_null: {strategy: mean}"), df.lazy(), "mem").unwrap_err();
        assert!(e.to_string().contains("mean is inf"), "{e}");
    }

    #[test]
    fn kept_columns_must_exist_and_not_shadow_a_feature() {
        let s = spec(
            "name: t\nversion: '1'\nfeatures:\n  - column: x\n    steps:\n      - standardize\n",
        );
        let (st, _) = fitted(&s);
        let keep = |k: &[&str]| {
            let k: Vec<String> = k.iter().map(|s| s.to_string()).collect();
            apply(frame().lazy(), &st, &k).map(|_| ())
        };
        keep(&["c", "n"]).unwrap();
        use crate::error::ExitCode::{Config, DataContract};
        for (k, code, needle) in [
            (
                &["x"][..],
                Config,
                "kept column `x` has the name of a feature",
            ),
            (
                &["nope"],
                DataContract,
                "no column `nope` to keep (columns present: x, n, c)",
            ),
            (&["c", "c"], Config, "`c` is kept twice"),
        ] {
            let e = keep(k).unwrap_err();
            assert_eq!(e.exit_code(), code, "{e}");
            assert!(e.to_string().contains(needle), "{e}");
        }
    }

    fn any_value() -> impl proptest::strategy::Strategy<Value = Option<f64>> {
        use proptest::prelude::*;
        prop_oneof![
            1 => Just(None),
            1 => prop::sample::select(vec![
                f64::NAN, f64::INFINITY, f64::NEG_INFINITY, f64::MAX, f64::MIN,
                f64::MIN_POSITIVE, 5e-324, -0.0, 0.0, 1e300, -1e300,
            ]).prop_map(Some),
            4 => (-1e6f64..1e6).prop_map(Some),
        ]
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        /// Whatever the training values, a fit either gives a state whose learned
        /// numbers are finite and that reads back as it was written, or refuses
        /// with a data error naming the feature and step; moderate finite values
        /// always fit.
        #[test]
        fn a_fit_gives_a_finite_state_or_a_data_error(
            values in proptest::collection::vec(any_value(), 0..40),
            step in proptest::sample::select(NUMBER_STEPS.to_vec()),
        ) {
            let df = one_column(values.clone());
            match fit(&step_spec(step), df.lazy(), "mem") {
                Ok(st) => {
                    for fs in &st.fitted[0] {
                        let nums: Vec<f64> = match fs {
                            FittedStep::FillValue { value: Scalar::Float(v) } => vec![*v],
                            FittedStep::Standardize { mean, std } => vec![*mean, *std],
                            FittedStep::MinMax { min, max } => vec![*min, *max],
                            FittedStep::Boundaries { boundaries } => boundaries.clone(),
                            _ => vec![],
                        };
                        proptest::prop_assert!(nums.iter().all(|v| v.is_finite()), "{fs:?}");
                    }
                    let text = serde_json::to_string(&st).unwrap();
                    let back = FittedState::from_json(&text, Path::new("mem")).unwrap();
                    proptest::prop_assert_eq!(back.content_hash, st.content_hash);
                }
                Err(e) => {
                    let msg = e.to_string();
                    proptest::prop_assert_eq!(e.exit_code(), crate::error::ExitCode::DataContract, "{}", msg);
                    let moderate = values.iter().flatten().all(|v| v.is_finite() && v.abs() < 1e150);
                    let some = values.iter().any(|v| v.is_some());
                    proptest::prop_assert!(!(moderate && some), "refused moderate values: {}", msg);
                    proptest::prop_assert!(
                        msg.contains("features[0] (x) step 0") || msg.contains("has no rows"),
                        "{}", msg
                    );
                }
            }
        }
    }
}
