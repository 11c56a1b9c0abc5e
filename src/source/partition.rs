//! Hash partitions of a date's scored rows and of its labels, spilled to Parquet
//! files, so that each partition is joined alone in memory (a Grace hash join):
//! rows with the same join key land in the same partition on both sides, so the
//! partitions' joins together are the whole join, exactly.

use std::path::{Path, PathBuf};

use polars::prelude::*;

use crate::error::{Error, Result};

/// Seed of the partitioning hash (any fixed value: both sides use the same).
const SEED: u64 = 0x5C0_7A6;

/// How many partitions a join of `rows` rows (both sides) on `on_columns` columns
/// needs to hold at most about `budget` bytes at once: 1 (no spill) when it fits.
/// A budget of 0 spills into 64 partitions.
pub fn partitions_for(rows: u64, on_columns: usize, budget: usize) -> usize {
    if budget == 0 {
        return 64;
    }
    // Each row: its join columns and value (8–16 bytes each), kept about four
    // times over by the join (inputs, hash table, output).
    let bytes = rows
        .saturating_mul(16 * (on_columns as u64 + 2))
        .saturating_mul(4);
    (bytes.div_ceil(budget as u64) as usize).clamp(1, 512)
}

/// One side's rows, split by the hash of their join columns into files.
pub struct Partitions {
    dir: PathBuf,
    name: &'static str,
    writers: Vec<
        Option<(
            PathBuf,
            polars::io::parquet::write::BatchedWriter<std::fs::File>,
        )>,
    >,
    /// Rows written.
    pub rows: u64,
}

impl Partitions {
    /// `count` partitions of the side `name`, as files in `dir`.
    pub fn new(dir: &Path, name: &'static str, count: usize) -> Self {
        Partitions {
            dir: dir.to_path_buf(),
            name,
            writers: (0..count).map(|_| None).collect(),
            rows: 0,
        }
    }

    /// Splits a chunk by the hash of its `on` columns and appends each part to its file.
    pub fn add(&mut self, df: &DataFrame, on: &[String]) -> Result<()> {
        let n = self.writers.len();
        let rs = PlSeedableRandomStateQuality::seed_from_u64(SEED);
        let mut h: Vec<u64> = Vec::with_capacity(df.height());
        for (i, c) in on.iter().enumerate() {
            let s = df.column(c)?.as_materialized_series();
            if i == 0 {
                s.vec_hash(rs.clone(), &mut h)?;
            } else {
                s.vec_hash_combine(rs.clone(), &mut h)?;
            }
        }
        let mut idx: Vec<Vec<IdxSize>> = vec![Vec::new(); n];
        for (row, &x) in h.iter().enumerate() {
            // The high bits (the hash's low bits may be weak for small integers).
            let p = ((x as u128 * n as u128) >> 64) as usize;
            idx[p].push(row as IdxSize);
        }
        for (p, rows) in idx.into_iter().enumerate() {
            if rows.is_empty() {
                continue;
            }
            let part = df.take(&IdxCa::from_vec("".into(), rows))?;
            if self.writers[p].is_none() {
                let path = self.dir.join(format!("{}-{p:03}.parquet", self.name));
                let f = std::fs::File::create(&path).map_err(|e| Error::io("writing", &path, e))?;
                let w = ParquetWriter::new(f)
                    .with_compression(ParquetCompression::Lz4Raw)
                    .batched(df.schema())?;
                self.writers[p] = Some((path, w));
            }
            let (_, w) = self.writers[p].as_mut().expect("opened");
            w.write_batch(&part)?;
        }
        self.rows += df.height() as u64;
        Ok(())
    }

    /// Closes the files: each partition's file, `None` for an empty one.
    pub fn finish(self) -> Result<Vec<Option<PathBuf>>> {
        self.writers
            .into_iter()
            .map(|w| match w {
                None => Ok(None),
                Some((path, w)) => {
                    w.finish()?;
                    Ok(Some(path))
                }
            })
            .collect()
    }
}

/// A partition's rows (its file read whole).
pub fn read(path: &Path) -> Result<DataFrame> {
    let f = std::fs::File::open(path).map_err(|e| Error::io("reading", path, e))?;
    Ok(ParquetReader::new(f).finish()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_keys_meet_in_one_partition_and_every_row_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let df = df!(
            "k" => (0..5000i64).map(|i| i % 777).collect::<Vec<_>>(),
            "s" => (0..5000).map(|i| format!("v{}", i % 3)).collect::<Vec<_>>(),
            "x" => (0..5000).map(|i| i as f64).collect::<Vec<_>>(),
        )
        .unwrap();
        let on = ["k".to_string(), "s".to_string()];
        let mut p = Partitions::new(dir.path(), "t", 7);
        for start in (0..5000).step_by(900) {
            p.add(&df.slice(start, 900), &on).unwrap();
        }
        assert_eq!(p.rows, 5000);
        let files = p.finish().unwrap();
        let mut seen = std::collections::HashMap::new();
        let mut total = 0;
        for (i, f) in files.iter().enumerate() {
            let Some(f) = f else { continue };
            let part = read(f).unwrap();
            total += part.height();
            let k = part.column("k").unwrap().i64().unwrap().clone();
            let s = part.column("s").unwrap().str().unwrap().clone();
            for (k, s) in k.iter().zip(s.iter()) {
                let key = (k.unwrap(), s.unwrap().to_string());
                assert_eq!(*seen.entry(key).or_insert(i), i, "a key in two partitions");
            }
        }
        assert_eq!(total, 5000);
        assert!(
            seen.values()
                .collect::<std::collections::HashSet<_>>()
                .len()
                > 3
        );
    }
}
