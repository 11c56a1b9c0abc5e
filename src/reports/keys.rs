//! Polars values as a [`Counter`] keeps them, and the check that a job's keys are
//! unique.
//!
//! Values are compared as Polars compares them for `n_unique`: integers, dates and
//! times by their physical integer, floats by their bits with `-0.0` as `0.0` and
//! every NaN as one NaN, strings and binary by their bytes; categorical and other
//! values by their text. A key of several columns is counted as the tuple of its
//! values (each tagged and length-prefixed, so no two tuples share an encoding).

use polars::prelude::*;
use serde::Serialize;

use super::distinct::{ByteString, Counter, Spill, Summary, Value, Width};

/// How the values of a column of `dtype` are kept.
pub fn width_of(dtype: &DataType) -> Width {
    if is_fixed(dtype) {
        Width::Fixed
    } else {
        Width::Bytes
    }
}

fn is_fixed(dtype: &DataType) -> bool {
    dtype.is_bool()
        || dtype.is_primitive_numeric()
        || (dtype.is_temporal() && dtype.to_physical().is_integer())
}

/// One canonical bit pattern per float value: `-0.0` as `0.0`, one NaN.
fn float_bits(v: f64) -> u64 {
    if v == 0.0 {
        0
    } else if v.is_nan() {
        f64::NAN.to_bits()
    } else {
        v.to_bits()
    }
}

/// The fixed-width patterns of a column without nulls (see [`is_fixed`]).
fn fixed_values(s: &Series) -> PolarsResult<Vec<u64>> {
    let dt = s.dtype();
    let mut out = Vec::with_capacity(s.len());
    if dt.is_bool() {
        for arr in s.bool()?.downcast_iter() {
            out.extend(arr.values_iter().map(|b| b as u64));
        }
    } else if dt.is_float() {
        let x = s.cast(&DataType::Float64)?;
        for arr in x.f64()?.downcast_iter() {
            out.extend(arr.values().iter().map(|&v| float_bits(v)));
        }
    } else if dt.is_unsigned_integer() {
        let x = s.cast(&DataType::UInt64)?;
        for arr in x.u64()?.downcast_iter() {
            out.extend_from_slice(arr.values());
        }
    } else {
        let x = s.to_physical_repr().cast(&DataType::Int64)?;
        for arr in x.i64()?.downcast_iter() {
            out.extend(arr.values().iter().map(|&v| v as u64));
        }
    }
    Ok(out)
}

/// Calls `f` with the bytes of each value of a column without nulls.
fn byte_values(s: &Series, mut f: impl FnMut(&[u8])) -> PolarsResult<()> {
    match s.dtype() {
        DataType::String => {
            for arr in s.str()?.downcast_iter() {
                arr.values_iter().for_each(|v| f(v.as_bytes()));
            }
        }
        DataType::Binary => {
            for arr in s.binary()?.downcast_iter() {
                arr.values_iter().for_each(&mut f);
            }
        }
        _ => match s.cast(&DataType::String) {
            Ok(t) => {
                for arr in t.str()?.downcast_iter() {
                    arr.iter().for_each(|v| f(v.unwrap_or("").as_bytes()));
                }
            }
            // No text cast (nested values): their display, in full.
            Err(_) => {
                for v in s.rechunk().iter() {
                    f(format!("{v}").as_bytes())
                }
            }
        },
    }
    Ok(())
}

/// Counts the values of a column without nulls.
pub fn count_column(counter: &mut Counter, non_null: &Series) -> PolarsResult<()> {
    match counter.width() {
        Width::Fixed => counter.add_fixed(&fixed_values(non_null)?),
        Width::Bytes => byte_values(non_null, |b| counter.add_bytes(b))?,
    }
    Ok(())
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

fn get_varint(b: &[u8], at: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let x = *b.get(*at)?;
        *at += 1;
        v |= ((x & 0x7f) as u64) << shift;
        if x & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// A value shown as the user wrote it: decoded through the column's type.
fn show_fixed(v: u64, dtype: &DataType) -> String {
    if dtype.is_bool() {
        return (v != 0).to_string();
    }
    if dtype.is_float() {
        return f64::from_bits(v).to_string();
    }
    if dtype.is_unsigned_integer() {
        return v.to_string();
    }
    let i = v as i64;
    if dtype.is_temporal() {
        let s = Series::new("v".into(), [i]);
        if let Ok(t) = s.cast(&dtype.to_physical()).and_then(|p| p.cast(dtype))
            && let Ok(av) = t.get(0)
        {
            return av.to_string();
        }
    }
    i.to_string()
}

fn show_bytes(b: &[u8], dtype: &DataType) -> String {
    match std::str::from_utf8(b) {
        Ok(s) if !dtype.is_binary() => format!("{s:?}"),
        _ => format!("0x{}", hex::encode(b)),
    }
}

/// The exact uniqueness of a job's keys over the rows a run writes.
#[derive(Debug, Clone)]
pub struct KeyCheck {
    columns: Vec<String>,
    dtypes: Vec<DataType>,
    counter: Counter,
    spill: Spill,
    /// Rows with a null in a key column (not counted: a null is no key).
    pub null_rows: u64,
}

/// What the key check found.
#[derive(Debug, Clone, Serialize)]
pub struct KeyReport {
    /// The key columns.
    pub keys: Vec<String>,
    /// Rows with a key (no null key column).
    pub rows: u64,
    /// Rows with a null in a key column.
    pub null_rows: u64,
    /// Distinct keys.
    pub distinct: u64,
    /// Keys that occur more than once.
    pub duplicated: u64,
    /// Rows beyond the first of each duplicated key.
    pub extra_rows: u64,
    /// Up to five duplicated keys, as text, with their counts.
    pub examples: Vec<(String, u64)>,
    /// `memory` or `spilled`.
    pub computed: &'static str,
    pub spill_bytes: u64,
}

impl KeyReport {
    /// `customer_id = 17 (2 rows), …` for messages.
    pub fn describe_examples(&self) -> String {
        let mut s: Vec<String> = self
            .examples
            .iter()
            .map(|(k, n)| format!("{k} ({n} rows)"))
            .collect();
        if self.duplicated > self.examples.len() as u64 {
            s.push(format!(
                "and {} more",
                self.duplicated - self.examples.len() as u64
            ));
        }
        s.join(", ")
    }
}

impl KeyCheck {
    /// A check of `columns` (their types in `schema`), holding at most `budget`
    /// bytes in memory before spilling.
    pub fn new(columns: &[String], schema: &Schema, budget: usize) -> PolarsResult<Self> {
        let dtypes = columns
            .iter()
            .map(|c| {
                schema
                    .get(c.as_str())
                    .cloned()
                    .ok_or_else(|| polars_err!(ColumnNotFound: "key column `{c}`"))
            })
            .collect::<PolarsResult<Vec<_>>>()?;
        let width = match dtypes.as_slice() {
            [one] => width_of(one),
            _ => Width::Bytes,
        };
        Ok(KeyCheck {
            columns: columns.to_vec(),
            dtypes,
            counter: Counter::new(width),
            spill: Spill::new(budget),
            null_rows: 0,
        })
    }

    /// Expects about `rows` keys: reserves their room within the budget.
    pub fn expect_rows(&mut self, rows: u64) {
        let budget = self.spill.budget;
        self.counter.reserve(rows as usize, budget);
    }

    /// Spilled runs go to `dir`.
    pub fn spill_to(&self, dir: std::path::PathBuf) {
        self.spill.place_in(dir);
    }

    /// Counts the keys of a chunk of rows.
    pub fn update(&mut self, df: &DataFrame) -> PolarsResult<()> {
        let cols: Vec<Series> = self
            .columns
            .iter()
            .map(|c| Ok(df.column(c.as_str())?.as_materialized_series().clone()))
            .collect::<PolarsResult<_>>()?;
        let mut valid: Option<BooleanChunked> = None;
        for c in &cols {
            if c.null_count() > 0 {
                let m = c.is_not_null();
                valid = Some(match valid {
                    None => m,
                    Some(v) => &v & &m,
                });
            }
        }
        let cols = match &valid {
            Some(m) => {
                self.null_rows += m.len() as u64 - m.sum().unwrap_or(0) as u64;
                cols.iter()
                    .map(|c| c.filter(m))
                    .collect::<PolarsResult<Vec<_>>>()?
            }
            None => cols,
        };
        if let [one] = cols.as_slice() {
            count_column(&mut self.counter, one)?;
        } else {
            let n = cols.first().map_or(0, |c| c.len());
            let mut rows: Vec<Vec<u8>> = vec![Vec::new(); n];
            for c in &cols {
                if is_fixed(c.dtype()) {
                    for (r, v) in rows.iter_mut().zip(fixed_values(c)?) {
                        r.push(b'f');
                        r.extend_from_slice(&v.to_be_bytes());
                    }
                } else {
                    let mut i = 0;
                    byte_values(c, |b| {
                        let r = &mut rows[i];
                        r.push(b'b');
                        put_varint(r, b.len() as u64);
                        r.extend_from_slice(b);
                        i += 1;
                    })?;
                }
            }
            for r in &rows {
                self.counter.add_bytes(r);
            }
        }
        self.spill
            .enforce(std::iter::once(&mut self.counter))
            .map_err(|e| polars_err!(ComputeError: "spilling the key check's counts: {e}"))
    }

    /// A key as text: `customer_id = 17`, or `(a = 1, b = "x")`.
    fn show(&self, v: &Value) -> String {
        match (v, self.dtypes.as_slice()) {
            (Value::Fixed(x), [dt]) => format!("{} = {}", self.columns[0], show_fixed(*x, dt)),
            (Value::Bytes(b), [dt]) => format!("{} = {}", self.columns[0], show_bytes(b, dt)),
            (Value::Bytes(b), dts) => {
                let mut at = 0;
                let mut parts = Vec::new();
                for (c, dt) in self.columns.iter().zip(dts) {
                    let tag = b.get(at).copied();
                    at += 1;
                    let text = match tag {
                        Some(b'f') if at + 8 <= b.len() => {
                            let v = u64::from_be_bytes(b[at..at + 8].try_into().expect("8"));
                            at += 8;
                            show_fixed(v, dt)
                        }
                        Some(b'b') => {
                            let n = get_varint(b, &mut at).unwrap_or(0) as usize;
                            let end = (at + n).min(b.len());
                            let t = show_bytes(&b[at..end], dt);
                            at = end;
                            t
                        }
                        _ => "?".into(),
                    };
                    parts.push(format!("{c} = {text}"));
                }
                format!("({})", parts.join(", "))
            }
            (Value::Fixed(x), _) => x.to_string(),
        }
    }

    /// The exact result over every row counted.
    pub fn finish(&mut self) -> std::io::Result<KeyReport> {
        let s: Summary = self.counter.summary()?;
        Ok(KeyReport {
            keys: self.columns.clone(),
            rows: s.values,
            null_rows: self.null_rows,
            distinct: s.distinct,
            duplicated: s.duplicated,
            extra_rows: s.values - s.distinct,
            examples: s.examples.iter().map(|(v, n)| (self.show(v), *n)).collect(),
            computed: if s.spilled { "spilled" } else { "memory" },
            spill_bytes: s.spill_bytes,
        })
    }

    /// Drops the counts (after [`KeyCheck::finish`]): the spill folder goes with them.
    pub fn discard_spill(&mut self) {
        self.counter = Counter::new(self.counter.width());
        self.spill = Spill::new(self.spill.budget);
    }

    /// Adds another part's keys (a shard's).
    pub fn merge(&mut self, other: &KeyCheck) {
        self.counter.merge(&other.counter);
        self.null_rows += other.null_rows;
    }

    /// Writes the counts into one run file `dir/name` (a shard's), for
    /// [`KeyCheck::to_bytes`] to name.
    pub fn freeze(&mut self, dir: &std::path::Path, name: &str) -> std::io::Result<()> {
        self.counter.freeze(dir, name)
    }

    /// Points a frozen check's run file (read back) at `resolve(name)`.
    pub fn locate(
        &mut self,
        resolve: impl FnMut(
            &str,
        ) -> std::io::Result<(
            std::path::PathBuf,
            Option<std::sync::Arc<super::distinct::SpillFolder>>,
        )>,
    ) -> std::io::Result<()> {
        self.counter.locate(resolve)
    }

    /// The check as bytes (MessagePack; the key columns' types as an empty Parquet
    /// file), after [`KeyCheck::freeze`].
    pub fn to_bytes(&self) -> PolarsResult<Vec<u8>> {
        let cols: Vec<Column> = self
            .columns
            .iter()
            .zip(&self.dtypes)
            .map(|(c, dt)| Column::new_empty(c.as_str().into(), dt))
            .collect();
        let mut empty = DataFrame::new(0, cols)?;
        let mut schema = Vec::new();
        ParquetWriter::new(&mut schema).finish(&mut empty)?;
        let doc = KeyCheckDoc {
            columns: self.columns.clone(),
            schema: ByteString(schema),
            counter: self.counter.clone(),
            null_rows: self.null_rows,
        };
        rmp_serde::to_vec_named(&doc)
            .map_err(|e| polars_err!(ComputeError: "serializing the key check: {e}"))
    }

    /// A check read back from [`KeyCheck::to_bytes`], holding at most `budget`
    /// bytes when merged into.
    pub fn from_bytes(bytes: &[u8], budget: usize) -> Result<Self, String> {
        let doc: KeyCheckDoc = rmp_serde::from_slice(bytes).map_err(|e| e.to_string())?;
        let schema = ParquetReader::new(std::io::Cursor::new(doc.schema.0))
            .schema()
            .map_err(|e| e.to_string())?;
        let schema = &*schema;
        let dtypes = doc
            .columns
            .iter()
            .map(|c| {
                schema
                    .get(c.as_str())
                    .map(DataType::from_arrow_field)
                    .ok_or_else(|| format!("no type for key column `{c}`"))
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(KeyCheck {
            columns: doc.columns,
            dtypes,
            counter: doc.counter,
            spill: Spill::new(budget),
            null_rows: doc.null_rows,
        })
    }
}

#[derive(Serialize, serde::Deserialize)]
struct KeyCheckDoc {
    columns: Vec<String>,
    schema: ByteString,
    counter: Counter,
    null_rows: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicated_keys_are_named_with_their_counts() {
        let df = df!(
            "id" => [Some(3i64), Some(1), None, Some(3), Some(2), Some(3)],
            "d" => ["a", "b", "c", "a", "b", "z"],
        )
        .unwrap();
        let mut k = KeyCheck::new(&["id".into()], df.schema(), 1 << 20).unwrap();
        k.update(&df).unwrap();
        let r = k.finish().unwrap();
        assert_eq!(
            (r.rows, r.null_rows, r.distinct, r.duplicated),
            (5, 1, 3, 1)
        );
        assert_eq!(r.examples, vec![("id = 3".to_string(), 3)]);
        // Two columns: the tuple is the key.
        let mut k2 = KeyCheck::new(&["id".into(), "d".into()], df.schema(), 0).unwrap();
        k2.update(&df).unwrap();
        let r = k2.finish().unwrap();
        assert_eq!((r.distinct, r.duplicated), (4, 1));
        assert_eq!(r.examples, vec![("(id = 3, d = \"a\")".to_string(), 2)]);
        assert_eq!(r.computed, "spilled");
    }

    #[test]
    fn floats_compare_as_polars_compares_them() {
        let s = Series::new(
            "x".into(),
            [0.0f64, -0.0, f64::NAN, -f64::NAN, 1.5, f64::INFINITY],
        );
        let mut c = Counter::new(width_of(s.dtype()));
        count_column(&mut c, &s).unwrap();
        let n = s.n_unique().unwrap() as u64;
        assert_eq!(c.summary().unwrap().distinct, n);
        assert_eq!(n, 4);
    }
}
