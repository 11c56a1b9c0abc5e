//! Canary split: a deterministic, hash-selected share of the entities goes to the
//! challenger.
//!
//! An entity's bucket is the first 8 bytes of `SHA-256(salt ":" key)` read as a
//! big-endian integer and divided by 2^64, where `key` is the key columns' values as
//! text (Polars' cast to string: integers in decimal, dates as `YYYY-MM-DD`) joined by
//! `|`. The entity goes to the challenger when its bucket is below the fraction. The
//! split depends on nothing but the key and the salt, so it is the same in every run
//! and on every machine, and can be recomputed anywhere, e.g. in Python:
//!
//! ```python
//! h = hashlib.sha256(f"{salt}:{key}".encode()).digest()
//! challenger = int.from_bytes(h[:8], "big") / 2**64 < fraction
//! ```
//!
//! A row with a null key goes to the champion.

use polars::prelude::*;
use sha2::{Digest, Sha256};

use crate::error::Result;

/// Scorer index of the champion.
pub const CHAMPION: u8 = 0;
/// Scorer index of the challenger.
pub const CHALLENGER: u8 = 1;

/// The bucket in `[0, 1)` of one key under `salt`.
pub fn bucket(salt: &str, key: &str) -> f64 {
    let mut h = Sha256::new();
    h.update(salt.as_bytes());
    h.update(b":");
    h.update(key.as_bytes());
    let d = h.finalize();
    let x = u64::from_be_bytes(d[..8].try_into().expect("8 bytes"));
    x as f64 / 18_446_744_073_709_551_616.0
}

/// A split of entities between champion and challenger.
#[derive(Debug, Clone)]
pub struct Split {
    pub keys: Vec<String>,
    pub fraction: f64,
    pub salt: String,
}

impl Split {
    /// The scorer of every row of `df`: [`CHALLENGER`] or [`CHAMPION`].
    pub fn route(&self, df: &DataFrame) -> Result<Vec<u8>> {
        let cols = self
            .keys
            .iter()
            .map(|k| {
                let c = df.column(k)?.cast(&DataType::String)?;
                Ok(c.str()?.clone())
            })
            .collect::<PolarsResult<Vec<StringChunked>>>()?;
        let mut out = Vec::with_capacity(df.height());
        let mut key = String::new();
        for i in 0..df.height() {
            key.clear();
            let mut null = false;
            for (j, c) in cols.iter().enumerate() {
                if j > 0 {
                    key.push('|');
                }
                match c.get(i) {
                    Some(v) => key.push_str(v),
                    None => null = true,
                }
            }
            out.push(if !null && bucket(&self.salt, &key) < self.fraction {
                CHALLENGER
            } else {
                CHAMPION
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_matches_the_documented_recipe() {
        // python3 -c 'import hashlib; h=hashlib.sha256(b"s1:42").digest(); print(int.from_bytes(h[:8],"big")/2**64)'
        let h = Sha256::digest(b"s1:42");
        let want = u64::from_be_bytes(h[..8].try_into().unwrap()) as f64 / 2f64.powi(64);
        assert_eq!(bucket("s1", "42"), want);
        assert!((0.0..1.0).contains(&bucket("s1", "42")));
    }

    #[test]
    fn split_of_a_million_keys_is_within_one_percent_and_stable() {
        let ids: Vec<i64> = (0..1_000_000).collect();
        let df = DataFrame::new(ids.len(), vec![Column::new("id".into(), &ids)]).unwrap();
        for fraction in [0.1, 0.5] {
            let split = Split {
                keys: vec!["id".into()],
                fraction,
                salt: "canary-2026-11".into(),
            };
            let a = split.route(&df).unwrap();
            let share = a.iter().filter(|&&x| x == CHALLENGER).count() as f64 / ids.len() as f64;
            assert!(
                (share - fraction).abs() <= 0.01,
                "share {share} vs fraction {fraction}"
            );
            // Stable: the same keys in another order (another run's chunking) route the same.
            let rev = df.reverse();
            let mut b = split.route(&rev).unwrap();
            b.reverse();
            assert_eq!(a, b);
            // Another salt draws another split.
            let other = Split {
                salt: "other".into(),
                ..split.clone()
            };
            let c = other.route(&df).unwrap();
            let same = a.iter().zip(&c).filter(|(x, y)| x == y).count();
            assert!(same < ids.len() * 99 / 100);
        }
    }

    #[test]
    fn null_keys_go_to_the_champion_and_multi_column_keys_join_with_a_bar() {
        let df = df!("a" => [Some(1i64), None], "b" => ["x", "y"]).unwrap();
        let split = Split {
            keys: vec!["a".into(), "b".into()],
            fraction: 1.0,
            salt: "s".into(),
        };
        assert_eq!(split.route(&df).unwrap(), vec![CHALLENGER, CHAMPION]);
        let half = Split {
            fraction: bucket("s", "1|x"),
            ..split
        };
        // Exactly at the fraction is not below it.
        assert_eq!(half.route(&df).unwrap()[0], CHAMPION);
    }
}
