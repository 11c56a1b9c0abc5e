//! Realized performance counted chunk by chunk, in bounded memory: the same
//! figures as [`crate::stats::calibration::realized`] over all rows at once.
//!
//! Counts at each threshold, log loss and Brier sums are running sums (in row
//! order, so equal to the whole-slice sums to the bit when the rows come in the
//! same order). The AUC needs every score: the scores of positive and of negative
//! rows are counted exactly ([`Counter`], in memory up to a budget, then spilled
//! as sorted runs) and walked together in ascending order, each distinct score
//! one step of the Mann–Whitney sum, ties counting half.

use std::io;

use crate::reports::distinct::{Counter, Merged, Spill, Width, float_order_key};
use crate::stats::calibration::{Realized, RealizedAt};

/// Realized performance of rows added chunk by chunk.
#[derive(Debug)]
pub struct RealizedCounter {
    thresholds: Vec<f64>,
    /// Per threshold: true positives, false positives, false negatives, true negatives.
    at: Vec<[u64; 4]>,
    rows: u64,
    positives: u64,
    /// Whether every score lies in [0, 1] (log loss and Brier need probabilities).
    probabilities: bool,
    log_loss: f64,
    brier: f64,
    /// Scores of positive and of negative rows.
    scores: [Counter; 2],
    spill: Spill,
}

impl RealizedCounter {
    /// Counts at `thresholds`, holding at most `budget` bytes of scores in memory
    /// (then spilling to `spill_dir`, or a temporary folder).
    pub fn new(thresholds: &[f64], budget: usize, spill_dir: Option<std::path::PathBuf>) -> Self {
        let spill = Spill::new(budget);
        if let Some(d) = spill_dir {
            spill.place_in(d);
        }
        RealizedCounter {
            thresholds: thresholds.to_vec(),
            at: vec![[0; 4]; thresholds.len()],
            rows: 0,
            positives: 0,
            probabilities: true,
            log_loss: 0.0,
            brier: 0.0,
            scores: [Counter::new(Width::Fixed), Counter::new(Width::Fixed)],
            spill,
        }
    }

    /// Adds labelled rows; rows whose score is NaN are left out.
    pub fn add(&mut self, scores: &[f64], labels: &[bool]) -> io::Result<()> {
        let eps = f64::EPSILON;
        let mut keys: [Vec<u64>; 2] = [Vec::new(), Vec::new()];
        for (&s, &y) in scores.iter().zip(labels) {
            if s.is_nan() {
                continue;
            }
            self.rows += 1;
            self.positives += y as u64;
            self.probabilities &= (0.0..=1.0).contains(&s);
            // As `calibration::log_loss` and `brier`, term by term.
            let q = s.clamp(eps, 1.0 - eps);
            self.log_loss += if y { -q.ln() } else { -(1.0 - q).ln() };
            self.brier += (s - if y { 1.0 } else { 0.0 }).powi(2);
            for (t, c) in self.thresholds.iter().zip(&mut self.at) {
                let i = match (s >= *t, y) {
                    (true, true) => 0,
                    (true, false) => 1,
                    (false, true) => 2,
                    (false, false) => 3,
                };
                c[i] += 1;
            }
            keys[y as usize].push(float_order_key(s));
        }
        for (c, k) in self.scores.iter_mut().zip(&keys) {
            c.add_fixed(k);
        }
        self.spill.enforce(self.scores.iter_mut())
    }

    /// Bytes of scores written to spill files.
    pub fn spill_bytes(&self) -> u64 {
        self.scores.iter().map(Counter::spill_bytes).sum()
    }

    /// The realized performance of every row added.
    pub fn finish(mut self) -> io::Result<Realized> {
        let n = self.rows;
        let at = self
            .thresholds
            .iter()
            .zip(&self.at)
            .map(|(&t, &counts)| RealizedAt::from_counts(t, counts))
            .collect();
        let (ll, br) = if self.probabilities && n > 0 {
            (Some(self.log_loss / n as f64), Some(self.brier / n as f64))
        } else {
            (None, None)
        };
        let auc = self.auc()?;
        Ok(Realized {
            rows: n,
            positives: self.positives,
            auc: auc.is_finite().then_some(auc),
            log_loss: ll,
            brier: br,
            at,
        })
    }

    /// The Mann–Whitney AUC from both classes' sorted scores
    /// ([`crate::stats::calibration::realized_auc`]'s sums, step for step).
    fn auc(&mut self) -> io::Result<f64> {
        let [neg_c, pos_c] = &mut self.scores;
        let mut p = pos_c.sorted_fixed()?.peekable();
        let mut q = neg_c.sorted_fixed()?.peekable();
        let (mut neg_below, mut sum, mut pos, mut neg) = (0.0, 0.0, 0.0, 0.0);
        loop {
            let k = match (head(&mut p)?, head(&mut q)?) {
                (Some(a), Some(b)) => a.min(b),
                (Some(a), None) => a,
                (None, Some(b)) => b,
                (None, None) => break,
            };
            let (p_k, n_k) = (take(&mut p, k)?, take(&mut q, k)?);
            sum += p_k * (neg_below + 0.5 * n_k);
            neg_below += n_k;
            pos += p_k;
            neg += n_k;
        }
        Ok(if pos == 0.0 || neg == 0.0 {
            f64::NAN
        } else {
            sum / (pos * neg)
        })
    }
}

type Walk<'a> = std::iter::Peekable<Merged<'a, u64>>;

/// The next key of a walk (an error it met is returned).
fn head(w: &mut Walk<'_>) -> io::Result<Option<u64>> {
    match w.peek() {
        None => Ok(None),
        Some(Ok((k, _))) => Ok(Some(*k)),
        Some(Err(_)) => Err(w.next().expect("peeked").expect_err("an error")),
    }
}

/// The count of key `k` when the walk is at it (then past it), else 0.
fn take(w: &mut Walk<'_>, k: u64) -> io::Result<f64> {
    Ok(match w.peek() {
        Some(Ok((x, _))) if *x == k => w.next().expect("peeked")?.1 as f64,
        _ => 0.0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reports::distinct::Limits;
    use crate::stats::calibration::realized;
    use proptest::prelude::*;

    fn score() -> impl Strategy<Value = f64> {
        prop_oneof![
            4 => (0u32..20).prop_map(|i| i as f64 / 19.0),
            3 => 0.0..=1.0f64,
            1 => prop_oneof![
                Just(f64::NAN),
                Just(-0.0),
                Just(f64::INFINITY),
                Just(f64::NEG_INFINITY),
                Just(2.5),
                Just(-1.0),
            ],
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        /// In chunks of any size, the scores in memory or spilled at every chunk
        /// (the counters' thresholds crossed): every figure equals `realized` over
        /// all rows at once, to the bit.
        #[test]
        fn chunked_and_spilled_realized_equals_the_whole(
            rows in proptest::collection::vec((score(), any::<bool>()), 0..400),
            chunk in 1usize..90,
            budget in prop_oneof![Just(0usize), Just(1usize << 30)],
            map in prop_oneof![Just(1usize), 2usize..30, Just(1usize << 16)],
        ) {
            let thresholds = [0.0, 0.3, 0.5, 1.0];
            let (s, y): (Vec<f64>, Vec<bool>) = rows.iter().copied().unzip();
            let want = realized(&s, &y, &thresholds);
            let dir = tempfile::tempdir().unwrap();
            let mut c = RealizedCounter::new(&thresholds, budget, Some(dir.path().join("spill")));
            let limits = Limits { map_entries: map, buffer_rows: usize::MAX };
            c.scores = [Counter::with_limits(Width::Fixed, limits), Counter::with_limits(Width::Fixed, limits)];
            for (a, b) in s.chunks(chunk).zip(y.chunks(chunk)) {
                c.add(a, b).unwrap();
            }
            if budget == 0 && s.iter().any(|v| !v.is_nan()) {
                prop_assert!(c.spill_bytes() > 0);
            }
            let got = c.finish().unwrap();
            let bits = |v: Option<f64>| v.map(f64::to_bits);
            prop_assert_eq!(got.rows, want.rows);
            prop_assert_eq!(got.positives, want.positives);
            prop_assert_eq!(bits(got.auc), bits(want.auc), "auc {:?} {:?}", got.auc, want.auc);
            prop_assert_eq!(bits(got.log_loss), bits(want.log_loss));
            prop_assert_eq!(bits(got.brier), bits(want.brier));
            prop_assert_eq!(&got.at, &want.at);
            prop_assert!(!dir.path().join("spill").exists());
        }
    }
}
