//! Feature frame → contiguous row-major `f32` matrix, filled in parallel.

use polars::prelude::*;
use rayon::prelude::*;

use crate::error::{Error, Result};

/// Rows per parallel block of the transpose.
const BLOCK_ROWS: usize = 2048;

/// Copies the Float64 `features` columns of `df` into a row-major `f32` buffer.
///
/// Columns may be in several chunks (as a streaming read leaves them); they are read
/// in place, not rechunked. Runs on the current rayon pool, a block of rows per task.
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
    let mut columns: Vec<&Float64Chunked> = Vec::with_capacity(k);
    for name in features {
        let ca = df.column(name)?.as_materialized_series().f64()?;
        if ca.null_count() > 0 {
            return Err(bad_value(ca, name, keys_frame, keys, row_offset));
        }
        columns.push(ca);
    }
    // Each column as (first row, values) pieces.
    let pieces: Vec<Vec<(usize, &[f64])>> = columns
        .iter()
        .map(|ca| {
            let mut start = 0;
            ca.downcast_iter()
                .map(|arr| {
                    let p = (start, arr.values().as_slice());
                    start += arr.len();
                    p
                })
                .collect()
        })
        .collect();
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
            let r1 = r0 + block.len() / k;
            let mut finite = true;
            // Split the block where any column's chunk ends, so that each part reads
            // one contiguous slice per column.
            let mut cuts = vec![r0, r1];
            for col in &pieces {
                cuts.extend(col.iter().map(|p| p.0).filter(|&s| s > r0 && s < r1));
            }
            cuts.sort_unstable();
            cuts.dedup();
            let mut src: Vec<&[f64]> = Vec::with_capacity(k);
            for w in cuts.windows(2) {
                let (from, to) = (w[0], w[1]);
                src.clear();
                for col in &pieces {
                    let &(start, values) = col
                        .iter()
                        .rfind(|p| p.0 <= from)
                        .expect("pieces cover every row");
                    src.push(&values[from - start..to - start]);
                }
                let rows_out = &mut block[(from - r0) * k..(to - r0) * k];
                finite &= transpose(&src, rows_out, k);
            }
            finite
        })
        .reduce(|| true, |a, b| a && b);
    if !all_finite {
        for (ca, name) in columns.iter().zip(features) {
            if ca.into_no_null_iter().any(|v| !v.is_finite()) {
                return Err(bad_value(ca, name, keys_frame, keys, row_offset));
            }
        }
    }
    Ok(out)
}

/// Writes `src[c][r]` to `out[r * k + c]` as `f32`; false if any value is not finite.
fn transpose(src: &[&[f64]], out: &mut [f32], k: usize) -> bool {
    let rows = out.len() / k;
    assert!(src.len() == k && src.iter().all(|s| s.len() == rows));
    let mut finite = true;
    // Tiles of rows keep the destination rows in L1 while each column streams in.
    const TILE: usize = 64;
    let mut t0 = 0;
    while t0 < rows {
        let t1 = (t0 + TILE).min(rows);
        for (c, col) in src.iter().enumerate() {
            let col = &col[t0..t1];
            let dst = &mut out[t0 * k..t1 * k];
            for (i, v) in col.iter().enumerate() {
                finite &= v.is_finite();
                dst[i * k + c] = *v as f32;
            }
        }
        t0 = t1;
    }
    finite
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
