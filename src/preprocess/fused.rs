//! Fused preprocessing: a fitted state applied row block by row block straight into
//! the model's row-major `f32` input, in one pass over the chunk.
//!
//! The Polars path ([`super::apply`] then [`crate::infer::tensorize`]) materializes
//! every intermediate column (one-hot alone makes a boolean and a float column per
//! category) and then transposes. This path computes each feature value from the
//! input column and writes it to its place in the matrix, with the *same* floating
//! point operations in the same order (`(x - mean) / std`, `ln_1p`, the sum of
//! `x >= b` terms …), so its output is bit-identical to the Polars path; a test
//! checks that on the example data.
//!
//! It covers the steps on the column types where that identity is plain: numeric and
//! boolean inputs (Float64, integers, Boolean) through `fill_null`, `clip`, `log1p`,
//! `standardize`, `min_max`, `bucketize` and casts to floats; string inputs through
//! `fill_null` and a final `one_hot` or `ordinal`. [`Compiled::new`] returns `None`
//! for anything else and the run uses the Polars path. Derived columns are computed
//! by Polars first. When a chunk yields a null, NaN or infinite feature, the caller
//! reruns that chunk through the Polars path, which reports it exactly as before.

use std::collections::HashMap;

use polars::prelude::*;
use rayon::prelude::*;

use super::spec::{CastTo, Scalar, Step};
use super::state::{FittedState, FittedStep};

/// One operation of a numeric feature, on `f64` with a validity flag.
#[derive(Debug, Clone)]
enum NumOp {
    Fill(f64),
    Clip(Option<f64>, Option<f64>),
    Log1p,
    Standardize {
        mean: f64,
        std: f64,
    },
    MinMax {
        min: f64,
        range: f64,
    },
    Bucketize(Vec<f64>),
    /// Cast to Float32 (rounds to `f32` precision).
    ToF32,
}

#[derive(Debug, Clone)]
enum Feature {
    Numeric {
        column: String,
        ops: Vec<NumOp>,
    },
    Categorical {
        column: String,
        fill: Option<String>,
        categories: Vec<String>,
        one_hot: bool,
    },
}

impl Feature {
    fn width(&self) -> usize {
        match self {
            Feature::Categorical {
                categories,
                one_hot: true,
                ..
            } => categories.len() + 1,
            _ => 1,
        }
    }
}

/// A fitted state compiled for a given input schema.
#[derive(Debug, Clone)]
pub struct Compiled {
    features: Vec<Feature>,
    width: usize,
}

/// Rows per parallel block.
const BLOCK_ROWS: usize = 2048;

fn is_plain_numeric(dt: &DataType) -> bool {
    matches!(
        dt,
        DataType::Float64
            | DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
            | DataType::UInt64
            | DataType::Boolean
    )
}

impl Compiled {
    /// Compiles `state` for frames of `schema` (input columns plus derived columns).
    /// `None` when a feature needs a step or type only the Polars path handles.
    pub fn new(state: &FittedState, schema: &Schema) -> Option<Self> {
        let mut features = Vec::with_capacity(state.spec.features.len());
        for (f, fitted) in state.spec.features.iter().zip(&state.fitted) {
            let dtype = schema.get(f.column.as_str())?;
            let categorical = f.steps.last().is_some_and(Step::is_encoder);
            if categorical {
                if *dtype != DataType::String {
                    return None;
                }
                let mut fill = None;
                let n = f.steps.len();
                for (step, fs) in f.steps[..n - 1].iter().zip(fitted) {
                    match (step, fs) {
                        (Step::Cast(CastTo::String), FittedStep::None) => {}
                        (
                            Step::FillNull(_),
                            FittedStep::FillValue {
                                value: Scalar::Str(s),
                            },
                        ) => fill = Some(s.clone()),
                        (Step::FillNull(fl), FittedStep::None) => match &fl.value {
                            Some(Scalar::Str(s)) => fill = Some(s.clone()),
                            _ => return None,
                        },
                        _ => return None,
                    }
                }
                let FittedStep::Vocabulary { categories } = fitted.get(n - 1)? else {
                    return None;
                };
                features.push(Feature::Categorical {
                    column: f.column.clone(),
                    fill,
                    categories: categories.clone(),
                    one_hot: matches!(f.steps[n - 1], Step::OneHot(_)),
                });
                continue;
            }
            if !is_plain_numeric(dtype) {
                return None;
            }
            let is_bool = *dtype == DataType::Boolean;
            let mut ops = Vec::with_capacity(f.steps.len());
            for (i, (step, fs)) in f.steps.iter().zip(fitted).enumerate() {
                // A cast to Float32 is supported as the last step only.
                if matches!(step, Step::Cast(CastTo::Float32)) && i + 1 != f.steps.len() {
                    return None;
                }
                let fill = |v: &Scalar| match v {
                    Scalar::Int(i) if !is_bool => Some(NumOp::Fill(*i as f64)),
                    Scalar::Float(x) if !is_bool => Some(NumOp::Fill(*x)),
                    Scalar::Bool(b) if is_bool => Some(NumOp::Fill(if *b { 1.0 } else { 0.0 })),
                    _ => None,
                };
                ops.push(match (step, fs) {
                    (Step::Cast(CastTo::Float64), FittedStep::None) => continue,
                    (Step::Cast(CastTo::Float32), FittedStep::None) => NumOp::ToF32,
                    (Step::FillNull(_), FittedStep::FillValue { value }) => fill(value)?,
                    (Step::FillNull(fl), FittedStep::None) => fill(fl.value.as_ref()?)?,
                    (Step::Clip(c), FittedStep::None) => NumOp::Clip(c.min, c.max),
                    (Step::Log1p, FittedStep::None) => NumOp::Log1p,
                    (Step::Standardize, FittedStep::Standardize { mean, std }) => {
                        NumOp::Standardize {
                            mean: *mean,
                            std: *std,
                        }
                    }
                    (Step::MinMax, FittedStep::MinMax { min, max }) => NumOp::MinMax {
                        min: *min,
                        range: if max > min { max - min } else { 1.0 },
                    },
                    (Step::Bucketize(_), FittedStep::Boundaries { boundaries }) => {
                        NumOp::Bucketize(boundaries.clone())
                    }
                    _ => return None,
                });
            }
            features.push(Feature::Numeric {
                column: f.column.clone(),
                ops,
            });
        }
        let width = features.iter().map(Feature::width).sum();
        (width == state.feature_names.len()).then_some(Compiled { features, width })
    }

    /// The number of model inputs.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Computes the row-major feature matrix of `df` (input and derived columns) on
    /// the current rayon pool. `Ok(None)` when some feature value is null, NaN or
    /// infinite: the caller then uses the Polars path, which explains it.
    pub fn run(&self, df: &DataFrame) -> PolarsResult<Option<Vec<f32>>> {
        let rows = df.height();
        let k = self.width;
        let mut inputs: Vec<Input> = Vec::with_capacity(self.features.len());
        for f in &self.features {
            inputs.push(match f {
                Feature::Numeric { column, .. } => {
                    let c = df.column(column.as_str())?.cast(&DataType::Float64)?;
                    Input::Num(c.as_materialized_series().f64()?.clone())
                }
                Feature::Categorical { column, .. } => {
                    Input::Str(df.column(column.as_str())?.str()?.clone())
                }
            });
        }
        // Per categorical feature: category → position, for large vocabularies.
        let lookups: Vec<Option<HashMap<&str, usize>>> = self
            .features
            .iter()
            .map(|f| match f {
                Feature::Categorical { categories, .. } if categories.len() > 16 => Some(
                    categories
                        .iter()
                        .enumerate()
                        .map(|(i, c)| (c.as_str(), i))
                        .collect(),
                ),
                _ => None,
            })
            .collect();
        let mut out = vec![0f32; rows * k];
        if k == 0 || rows == 0 {
            return Ok(Some(out));
        }
        let ok = out
            .par_chunks_mut(BLOCK_ROWS * k)
            .enumerate()
            .map(|(b, block)| {
                let r0 = b * BLOCK_ROWS;
                let n = block.len() / k;
                let mut ok = true;
                let mut col = 0;
                for ((f, input), lookup) in self.features.iter().zip(&inputs).zip(&lookups) {
                    ok &= match (f, input) {
                        (Feature::Numeric { ops, .. }, Input::Num(ca)) => {
                            numeric(ca, ops, r0, n, block, k, col)
                        }
                        (
                            Feature::Categorical {
                                fill,
                                categories,
                                one_hot,
                                ..
                            },
                            Input::Str(ca),
                        ) => {
                            let code = |v: Option<&str>| -> Option<usize> {
                                let v = v.or(fill.as_deref())?;
                                match lookup {
                                    Some(m) => m.get(v).copied(),
                                    None => categories.iter().position(|c| c == v),
                                }
                            };
                            categorical(
                                ca,
                                &code,
                                categories.len(),
                                *one_hot,
                                r0,
                                n,
                                block,
                                k,
                                col,
                            );
                            true
                        }
                        _ => unreachable!("inputs follow features"),
                    };
                    col += f.width();
                }
                ok
            })
            .reduce(|| true, |a, b| a && b);
        Ok(ok.then_some(out))
    }
}

enum Input {
    Num(Float64Chunked),
    Str(StringChunked),
}

/// The parts of a column's arrays that overlap rows `r0..r0 + n`: (array index, first
/// row of the part within the block, offset into the array, length).
fn pieces(lens: &[usize], r0: usize, n: usize) -> Vec<(usize, usize, usize, usize)> {
    let mut out = Vec::with_capacity(2);
    let mut start = 0usize;
    for (idx, &len) in lens.iter().enumerate() {
        let (s, e) = (start, start + len);
        start = e;
        let (from, to) = (s.max(r0), e.min(r0 + n));
        if from < to {
            out.push((idx, from - r0, from - s, to - from));
        }
    }
    out
}

/// Applies `ops` to rows `r0..r0 + n` of `ca`, writing column `col` of `block`.
/// False when a result is null, NaN or infinite.
///
/// Works a tile of rows at a time, one operation over the whole tile before the
/// next, so each operation is a tight loop; values that are null at that point
/// are computed on and ignored (a later `fill_null` replaces them).
fn numeric(
    ca: &Float64Chunked,
    ops: &[NumOp],
    r0: usize,
    n: usize,
    block: &mut [f32],
    k: usize,
    col: usize,
) -> bool {
    const TILE: usize = 256;
    let mut ok = true;
    let arrays: Vec<_> = ca.downcast_iter().collect();
    let lens: Vec<usize> = arrays.iter().map(|a| a.len()).collect();
    let mut buf = [0f64; TILE];
    let mut valid = [true; TILE];
    for (idx, at, off, len) in pieces(&lens, r0, n) {
        let arr = arrays[idx];
        let values = arr.values();
        let validity = arr.validity();
        let mut t0 = 0;
        while t0 < len {
            let m = TILE.min(len - t0);
            let (x, v) = (&mut buf[..m], &mut valid[..m]);
            x.copy_from_slice(&values[off + t0..off + t0 + m]);
            match validity {
                Some(bits) => {
                    for (i, flag) in v.iter_mut().enumerate() {
                        *flag = bits.get_bit(off + t0 + i);
                    }
                }
                None => v.fill(true),
            }
            for op in ops {
                apply(op, x, v);
            }
            for (i, (&y, &ok_i)) in x.iter().zip(v.iter()).enumerate() {
                if ok_i && y.is_finite() {
                    block[(at + t0 + i) * k + col] = y as f32;
                } else {
                    ok = false;
                }
            }
            t0 += m;
        }
    }
    ok
}

/// One operation over a tile (`v`: which values are not null).
fn apply(op: &NumOp, x: &mut [f64], v: &mut [bool]) {
    match op {
        NumOp::Fill(f) => {
            for (y, flag) in x.iter_mut().zip(v.iter_mut()) {
                if !*flag {
                    *y = *f;
                    *flag = true;
                }
            }
        }
        // `clamp` as Polars writes it: NaN stays NaN.
        NumOp::Clip(Some(lo), Some(hi)) => x.iter_mut().for_each(|y| {
            *y = if *y < *lo {
                *lo
            } else if *y > *hi {
                *hi
            } else {
                *y
            }
        }),
        NumOp::Clip(Some(lo), None) => x.iter_mut().for_each(|y| {
            if *y < *lo {
                *y = *lo
            }
        }),
        NumOp::Clip(None, Some(hi)) => x.iter_mut().for_each(|y| {
            if *y > *hi {
                *y = *hi
            }
        }),
        NumOp::Clip(None, None) => {}
        NumOp::Log1p => x.iter_mut().for_each(|y| *y = y.ln_1p()),
        NumOp::Standardize { mean, std } => x.iter_mut().for_each(|y| *y = (*y - mean) / std),
        NumOp::MinMax { min, range } => x.iter_mut().for_each(|y| *y = (*y - min) / range),
        NumOp::Bucketize(bs) => x.iter_mut().for_each(|y| {
            // Polars orders NaN above every number in comparisons; leave NaN to the
            // Polars path rather than guess.
            *y = if y.is_nan() {
                f64::NAN
            } else if bs.is_empty() {
                *y * 0.0
            } else {
                let mut acc = if *y >= bs[0] { 1.0 } else { 0.0 };
                for b in &bs[1..] {
                    acc += if *y >= *b { 1.0 } else { 0.0 };
                }
                acc
            }
        }),
        NumOp::ToF32 => x.iter_mut().for_each(|y| *y = *y as f32 as f64),
    }
}

/// Encodes rows `r0..r0 + n` of `ca` (one-hot columns `col..col + len + 1`, or one
/// ordinal column `col`).
#[allow(clippy::too_many_arguments)]
fn categorical(
    ca: &StringChunked,
    code: &dyn Fn(Option<&str>) -> Option<usize>,
    len: usize,
    one_hot: bool,
    r0: usize,
    n: usize,
    block: &mut [f32],
    k: usize,
    col: usize,
) {
    let arrays: Vec<_> = ca.downcast_iter().collect();
    let lens: Vec<usize> = arrays.iter().map(|a| a.len()).collect();
    for (idx, at, off, cnt) in pieces(&lens, r0, n) {
        let arr = arrays[idx];
        for i in 0..cnt {
            let c = code(arr.get(off + i));
            let row = &mut block[(at + i) * k..(at + i + 1) * k];
            if one_hot {
                // Zero-initialized already; set the one hot position.
                row[col + c.unwrap_or(len)] = 1.0;
            } else {
                row[col] = c.map_or(0.0, |p| (p + 1) as f32);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_cover_a_block_across_array_boundaries() {
        // Arrays of 3, 4 and 5 rows; block rows 2..9.
        assert_eq!(
            pieces(&[3, 4, 5], 2, 7),
            [(0, 0, 2, 1), (1, 1, 0, 4), (2, 5, 0, 2)]
        );
        assert!(pieces(&[3], 5, 2).is_empty());
    }

    fn state(yaml: &str) -> FittedState {
        let spec: super::super::spec::PreprocessSpec = serde_saphyr::from_str(yaml).unwrap();
        let df = df!(
            "x" => [1.0f64, 2.0, 3.0],
            "i" => [1i64, 2, 3],
            "f" => [1.0f32, 2.0, 3.0],
            "s" => ["a", "b", "a"]
        )
        .unwrap();
        crate::preprocess::fit(&spec, df.lazy(), "test").unwrap()
    }

    fn schema() -> Schema {
        Schema::from_iter([
            Field::new("x".into(), DataType::Float64),
            Field::new("i".into(), DataType::Int64),
            Field::new("f".into(), DataType::Float32),
            Field::new("s".into(), DataType::String),
        ])
    }

    #[test]
    fn compiles_only_what_it_reproduces_exactly() {
        let ok = state(
            "name: t\nversion: '1'\nfeatures:\n  - column: x\n    steps: [log1p, standardize]\n  \
             - column: i\n    steps: [{clip: {max: 2}}]\n  - column: s\n    steps: [{one_hot: {}}]\n",
        );
        let c = Compiled::new(&ok, &schema()).expect("compiles");
        assert_eq!(c.width(), 1 + 1 + 3);
        // Float32 inputs and one-hot over integers stay on the Polars path.
        let f32_input =
            state("name: t\nversion: '1'\nfeatures:\n  - column: f\n    steps: [standardize]\n");
        assert!(Compiled::new(&f32_input, &schema()).is_none());
        let int_one_hot =
            state("name: t\nversion: '1'\nfeatures:\n  - column: i\n    steps: [{one_hot: {}}]\n");
        assert!(Compiled::new(&int_one_hot, &schema()).is_none());
    }
}
