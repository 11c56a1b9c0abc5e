//! Feature frame → contiguous row-major `f32` matrix, filled in parallel.

use polars::prelude::*;
use rayon::prelude::*;

use crate::error::{Error, Result};

/// Rows per parallel block of the transpose.
const BLOCK_ROWS: usize = 2048;

/// Copies the Float64 `features` columns of `df` into a row-major `f32` buffer.
///
/// A null, NaN or infinite feature value is a data-contract error (exit 3) naming the
/// column, how many rows of this chunk are affected and the first such row (0-based in
/// the input: `row_offset` is the chunk's first row), with that row's values of the
/// `keys` columns of `keys_frame` (same rows, same order).
pub fn to_row_major(
    df: &DataFrame,
    features: &[String],
    keys_frame: &DataFrame,
    keys: &[String],
    row_offset: usize,
) -> Result<Vec<f32>> {
    let rows = df.height();
    let k = features.len();
    let mut owned: Vec<Float64Chunked> = Vec::with_capacity(k);
    for name in features {
        let ca = df.column(name)?.f64()?.rechunk().into_owned();
        if ca.null_count() > 0 {
            return Err(bad_value(&ca, name, keys_frame, keys, row_offset));
        }
        owned.push(ca);
    }
    let slices: Vec<&[f64]> = owned
        .iter()
        .map(|ca| ca.cont_slice())
        .collect::<PolarsResult<_>>()?;
    let mut out = vec![0f32; rows * k];
    if k == 0 {
        return Ok(out);
    }
    // Transpose block by block in parallel; non-finite values are noted on the way
    // and explained (slowly, once) only if there are any.
    let all_finite = out
        .par_chunks_mut(BLOCK_ROWS * k)
        .enumerate()
        .map(|(b, block)| {
            let r0 = b * BLOCK_ROWS;
            let n = block.len() / k;
            let mut finite = true;
            for (c, s) in slices.iter().enumerate() {
                for (dst, v) in block[c..].iter_mut().step_by(k).zip(&s[r0..r0 + n]) {
                    finite &= v.is_finite();
                    *dst = *v as f32;
                }
            }
            finite
        })
        .reduce(|| true, |a, b| a && b);
    if !all_finite {
        for (ca, name) in owned.iter().zip(features) {
            if ca.into_no_null_iter().any(|v| !v.is_finite()) {
                return Err(bad_value(ca, name, keys_frame, keys, row_offset));
            }
        }
    }
    Ok(out)
}

/// The data-contract error for a feature column holding nulls, NaN or infinities.
fn bad_value(
    ca: &Float64Chunked,
    name: &str,
    keys_frame: &DataFrame,
    keys: &[String],
    row_offset: usize,
) -> Error {
    let rows = ca.len();
    let is_bad = |v: Option<f64>| v.is_none_or(|x| !x.is_finite());
    let bad = ca.iter().filter(|v| is_bad(*v)).count();
    let first = ca.iter().position(is_bad).unwrap_or(0);
    let what = ca.get(first).map_or("null".to_string(), |x| x.to_string());
    Error::DataContract(format!(
        "feature `{name}` is {what} after preprocessing at row {}{} ({bad} such rows among input rows {}..{}); \
         add a fill_null step or fix the input",
        row_offset + first,
        describe_keys(keys_frame, keys, first),
        row_offset,
        row_offset + rows
    ))
}

/// `, key a=1, b=x` for row `row`, or empty.
pub fn describe_keys(df: &DataFrame, keys: &[String], row: usize) -> String {
    let parts: Vec<String> = keys
        .iter()
        .filter_map(|k| {
            let v = df.column(k).ok()?.get(row).ok()?;
            Some(format!("{k}={v}"))
        })
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!(", key {}", parts.join(", "))
    }
}
