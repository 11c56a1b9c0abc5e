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
fn numeric(
    ca: &Float64Chunked,
    ops: &[NumOp],
    r0: usize,
    n: usize,
    block: &mut [f32],
    k: usize,
    col: usize,
) -> bool {
    let mut ok = true;
    let arrays: Vec<_> = ca.downcast_iter().collect();
    let lens: Vec<usize> = arrays.iter().map(|a| a.len()).collect();
    for (idx, at, off, len) in pieces(&lens, r0, n) {
        let arr = arrays[idx];
        let values = &arr.values()[off..off + len];
        let validity = arr.validity();
        for (i, &x) in values.iter().enumerate() {
            let mut v = Some(x);
            if let Some(bits) = validity
                && !bits.get_bit(off + i)
            {
                v = None;
            }
            for op in ops {
                v = match (op, v) {
                    (NumOp::Fill(f), None) => Some(*f),
                    (_, None) => None,
                    (NumOp::Fill(_), some) => some,
                    (NumOp::Clip(lo, hi), Some(x)) => Some(match (lo, hi) {
                        (Some(lo), Some(hi)) => {
                            if x < *lo {
                                *lo
                            } else if x > *hi {
                                *hi
                            } else {
                                x
                            }
                        }
                        (Some(lo), None) => {
                            if x < *lo {
                                *lo
                            } else {
                                x
                            }
                        }
                        (None, Some(hi)) => {
                            if x > *hi {
                                *hi
                            } else {
                                x
                            }
                        }
                        (None, None) => x,
                    }),
                    (NumOp::Log1p, Some(x)) => Some(x.ln_1p()),
                    (NumOp::Standardize { mean, std }, Some(x)) => Some((x - mean) / std),
                    (NumOp::MinMax { min, range }, Some(x)) => Some((x - min) / range),
                    // Polars orders NaN above every number in comparisons; leave NaN
                    // to the Polars path rather than guess.
                    (NumOp::Bucketize(_), Some(x)) if x.is_nan() => Some(f64::NAN),
                    (NumOp::Bucketize(bs), Some(x)) => Some(if bs.is_empty() {
                        x * 0.0
                    } else {
                        let mut acc = if x >= bs[0] { 1.0 } else { 0.0 };
                        for b in &bs[1..] {
                            acc += if x >= *b { 1.0 } else { 0.0 };
                        }
                        acc
                    }),
                    (NumOp::ToF32, Some(x)) => Some(x as f32 as f64),
                };
            }
            match v {
                Some(x) if x.is_finite() => block[(at + i) * k + col] = x as f32,
                _ => ok = false,
            }
        }
    }
    ok
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
