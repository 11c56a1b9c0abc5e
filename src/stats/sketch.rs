//! Mergeable sketches: HyperLogLog for distinct counts, DDSketch for quantiles,
//! and the hash map their exact counterparts use. Every sketch accepts any value
//! (non-finite ones are left out) in bounded memory, and sketches of shards merge
//! into the sketch of the whole.

use serde::{Deserialize, Serialize};

/// Registers of the HyperLogLog sketch, as a power of two.
const HLL_P: u32 = 12;

/// A HyperLogLog sketch of 64-bit hashes (Flajolet et al. 2007, with the small-range
/// correction). Sketches of the same precision merge by taking register maxima.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Hll {
    registers: Vec<u8>,
}

impl Default for Hll {
    fn default() -> Self {
        Hll {
            registers: vec![0; 1 << HLL_P],
        }
    }
}

impl Hll {
    pub fn add(&mut self, hash: u64) {
        let idx = (hash >> (64 - HLL_P)) as usize;
        let rest = hash << HLL_P;
        let rank = (rest.leading_zeros() + 1).min(64 - HLL_P + 1) as u8;
        if rank > self.registers[idx] {
            self.registers[idx] = rank;
        }
    }

    pub fn merge(&mut self, other: &Hll) {
        for (a, b) in self.registers.iter_mut().zip(&other.registers) {
            *a = (*a).max(*b);
        }
    }

    pub fn estimate(&self) -> f64 {
        let m = self.registers.len() as f64;
        let alpha = 0.7213 / (1.0 + 1.079 / m);
        let sum: f64 = self.registers.iter().map(|&r| 2f64.powi(-(r as i32))).sum();
        let e = alpha * m * m / sum;
        let zeros = self.registers.iter().filter(|&&r| r == 0).count();
        if e <= 2.5 * m && zeros > 0 {
            m * (m / zeros as f64).ln()
        } else {
            e
        }
    }
}

/// Relative accuracy of [`QuantileSketch`].
pub const QUANTILE_ALPHA: f64 = 0.01;

/// A DDSketch (Masson, Rim & Lee 2019): values in logarithmic buckets of ratio
/// `γ = (1+α)/(1−α)`, so any quantile is returned within relative error α.
/// Bucket counts add, so sketches merge exactly. Buckets are dense arrays over the
/// range seen so far (a few thousand for data spanning many orders of magnitude).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct QuantileSketch {
    positive: Buckets,
    negative: Buckets,
    zeros: u64,
    n: u64,
}

/// Dense bucket counts from index `offset` on.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Buckets {
    offset: i32,
    counts: Vec<u64>,
}

impl Buckets {
    fn add(&mut self, k: i32, c: u64) {
        if self.counts.is_empty() {
            self.offset = k;
        }
        if k < self.offset {
            let grow = (self.offset - k) as usize;
            self.counts.splice(0..0, std::iter::repeat_n(0, grow));
            self.offset = k;
        }
        let i = (k - self.offset) as usize;
        if i >= self.counts.len() {
            self.counts.resize(i + 1, 0);
        }
        self.counts[i] += c;
    }

    fn iter(&self) -> impl DoubleEndedIterator<Item = (i32, u64)> + '_ {
        self.counts
            .iter()
            .enumerate()
            .filter(|(_, c)| **c > 0)
            .map(|(i, c)| (self.offset + i as i32, *c))
    }
}

impl QuantileSketch {
    fn gamma_ln() -> f64 {
        ((1.0 + QUANTILE_ALPHA) / (1.0 - QUANTILE_ALPHA)).ln()
    }

    fn bucket(x: f64) -> i32 {
        (x.ln() / Self::gamma_ln()).ceil() as i32
    }

    /// The value a bucket stands for: within α of every value in it.
    fn value(k: i32) -> f64 {
        let g = Self::gamma_ln();
        2.0 * (k as f64 * g).exp() / (1.0 + g.exp())
    }

    /// Adds a finite value; NaN and ±inf are ignored (they have no bucket: their
    /// index would be `i32::MAX` and the dense buckets would grow to gigabytes).
    pub fn add(&mut self, x: f64) {
        if !x.is_finite() {
            return;
        }
        // Magnitudes below 1e-300 count as zero (they would underflow the buckets).
        if x > 1e-300 {
            self.positive.add(Self::bucket(x), 1);
        } else if x < -1e-300 {
            self.negative.add(Self::bucket(-x), 1);
        } else {
            self.zeros += 1;
        }
        self.n += 1;
    }

    pub fn merge(&mut self, other: &QuantileSketch) {
        for (k, c) in other.positive.iter() {
            self.positive.add(k, c);
        }
        for (k, c) in other.negative.iter() {
            self.negative.add(k, c);
        }
        self.zeros += other.zeros;
        self.n += other.n;
    }

    /// The lengths of the dense bucket arrays of positive and negative values (the
    /// sketch's memory is proportional to their sum).
    pub fn dense_buckets(&self) -> (usize, usize) {
        (self.positive.counts.len(), self.negative.counts.len())
    }

    /// The value at rank `⌊q·(n−1)⌋` (0-based) of the sorted values, within α.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.n == 0 {
            return None;
        }
        let rank = (q * (self.n - 1) as f64).floor() as u64;
        let mut seen = 0u64;
        for (k, c) in self.negative.iter().rev() {
            seen += c;
            if seen > rank {
                return Some(-Self::value(k));
            }
        }
        seen += self.zeros;
        if seen > rank {
            return Some(0.0);
        }
        for (k, c) in self.positive.iter() {
            seen += c;
            if seen > rank {
                return Some(Self::value(k));
            }
        }
        None
    }
}
