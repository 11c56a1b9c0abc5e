//! What the shadow comparison takes from each chunk of published rows: the segment
//! values reported (counted exactly first, the most frequent kept), the compact
//! rows of [`super::stream`], and the rows that disagree most (a bounded heap).

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};

use polars::prelude::*;

use super::runner::Disagreement;
use super::stream::{self, Row};
use crate::error::{Error, Result};
use crate::reports::distinct::{Counter, Spill, Width};
use crate::source::labels::ROW_NUMBER;

/// The text a segment value is reported as (null as `null`).
fn texts(df: &DataFrame, column: &str) -> Result<StringChunked> {
    let c = df.column(column)?.cast(&DataType::String)?;
    Ok(c.str()?.clone())
}

/// Exact counts of each segment column's values over every date.
pub struct SegmentCounts {
    columns: Vec<String>,
    counters: Vec<Counter>,
    spill: Spill,
}

impl SegmentCounts {
    /// Counts of `columns` (as named in the shadow table), in memory up to `budget`.
    pub fn new(columns: Vec<String>, budget: usize) -> Self {
        SegmentCounts {
            counters: columns.iter().map(|_| Counter::new(Width::Bytes)).collect(),
            columns,
            spill: Spill::new(budget),
        }
    }

    pub fn add(&mut self, df: &DataFrame) -> Result<()> {
        for (c, counter) in self.columns.iter().zip(&mut self.counters) {
            for v in texts(df, c)?.iter() {
                counter.add_bytes(v.unwrap_or("null").as_bytes());
            }
        }
        self.spill
            .enforce(self.counters.iter_mut())
            .map_err(|e| Error::io("spilling segment counts to", std::env::temp_dir(), e))
    }

    /// Each column's `limit` most frequent values (ties by value), most frequent first.
    pub fn top(mut self, limit: usize) -> Result<Vec<Vec<String>>> {
        let mut out = Vec::new();
        for counter in &mut self.counters {
            // The worst kept value on top: fewest rows, then the greatest value.
            let mut heap: BinaryHeap<(std::cmp::Reverse<u64>, Vec<u8>)> = BinaryHeap::new();
            let walk = counter
                .sorted_bytes()
                .map_err(|e| Error::io("reading segment counts in", std::env::temp_dir(), e))?;
            for r in walk {
                let (v, n) =
                    r.map_err(|e| Error::io("reading segment counts in", std::env::temp_dir(), e))?;
                heap.push((std::cmp::Reverse(n), v));
                if heap.len() > limit {
                    heap.pop();
                }
            }
            let mut kept = heap.into_vec();
            kept.sort();
            out.push(
                kept.into_iter()
                    .map(|(_, v)| String::from_utf8_lossy(&v).into_owned())
                    .collect(),
            );
        }
        Ok(out)
    }
}

/// A disagreement candidate: larger `|champion − challenger|` first (NaN above
/// all, as `total_cmp` orders), then the earlier row.
struct Candidate {
    diff: f64,
    row: u64,
    item: Disagreement,
}

impl PartialEq for Candidate {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for Candidate {}
impl PartialOrd for Candidate {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Candidate {
    /// Greater is worse: the heap's top is the first to drop.
    fn cmp(&self, o: &Self) -> Ordering {
        o.diff.total_cmp(&self.diff).then(self.row.cmp(&o.row))
    }
}

/// The columns of the rows fed, as named in the shadow table.
pub struct Columns {
    pub champion: String,
    pub challenger: String,
    pub label: Option<String>,
    pub keys: Vec<String>,
    /// The job's key names (for label errors).
    pub key_names: Vec<String>,
    pub segments: Vec<String>,
}

/// Feeds chunks of published rows to a comparison, keeping the top disagreements.
pub struct Feeder<'a> {
    pub columns: &'a Columns,
    /// Per segment column, the reported values' group numbers.
    pub groups: Vec<HashMap<String, u32>>,
    pub top: usize,
    heap: BinaryHeap<Candidate>,
}

impl<'a> Feeder<'a> {
    pub fn new(columns: &'a Columns, values: &[Vec<String>], top: usize) -> Self {
        Feeder {
            columns,
            groups: values
                .iter()
                .map(|v| {
                    v.iter()
                        .enumerate()
                        .map(|(i, s)| (s.clone(), i as u32))
                        .collect()
                })
                .collect(),
            top,
            heap: BinaryHeap::new(),
        }
    }

    /// Feeds one chunk; returns its labelled rows.
    pub fn add(&mut self, df: &DataFrame, cmp: &mut stream::Comparison) -> Result<u64> {
        let c = self.columns;
        let floats = |name: &str| -> Result<Vec<f64>> {
            let s = df.column(name)?.cast(&DataType::Float64)?;
            Ok(s.f64()?.iter().map(|v| v.unwrap_or(f64::NAN)).collect())
        };
        let (a, b) = (floats(&c.champion)?, floats(&c.challenger)?);
        let labels = match &c.label {
            Some(l) => crate::source::labels::labels_of(df, l, &c.key_names)?,
            None => vec![None; df.height()],
        };
        let ids: Vec<u64> = df.column(ROW_NUMBER)?.u64()?.into_no_null_iter().collect();
        let seg_groups: Vec<Vec<Option<u32>>> = c
            .segments
            .iter()
            .zip(&self.groups)
            .map(|(col, g)| {
                Ok(texts(df, col)?
                    .iter()
                    .map(|v| g.get(v.unwrap_or("null")).copied())
                    .collect())
            })
            .collect::<Result<_>>()?;
        let s = c.segments.len();
        let mut flat: Vec<Option<u32>> = Vec::with_capacity(a.len() * s);
        for i in 0..a.len() {
            flat.extend(seg_groups.iter().map(|g| g[i]));
        }
        let rows: Vec<Row<'_>> = (0..a.len())
            .map(|i| Row {
                a: a[i],
                b: b[i],
                label: labels[i],
                row: ids[i],
                groups: &flat[i * s..(i + 1) * s],
            })
            .collect();
        cmp.add(&rows)
            .map_err(|e| Error::io("spilling shadow rows to", std::env::temp_dir(), e))?;
        self.disagreements(df, &a, &b, &labels, &ids)?;
        Ok(labels.iter().filter(|l| l.is_some()).count() as u64)
    }

    fn disagreements(
        &mut self,
        df: &DataFrame,
        a: &[f64],
        b: &[f64],
        labels: &[Option<bool>],
        ids: &[u64],
    ) -> Result<()> {
        if self.top == 0 {
            return Ok(());
        }
        let beats = |heap: &BinaryHeap<Candidate>, diff: f64, row: u64| match heap.peek() {
            _ if heap.len() < self.top => true,
            None => true,
            Some(w) => diff.total_cmp(&w.diff).then(w.row.cmp(&row)) == Ordering::Greater,
        };
        let mut picked: Vec<usize> = (0..a.len())
            .filter(|&i| beats(&self.heap, (a[i] - b[i]).abs(), ids[i]))
            .collect();
        if picked.is_empty() {
            return Ok(());
        }
        // Only this chunk's best `top` can enter.
        picked.sort_by(|&i, &j| {
            let (di, dj) = ((a[i] - b[i]).abs(), (a[j] - b[j]).abs());
            dj.total_cmp(&di).then(ids[i].cmp(&ids[j]))
        });
        picked.truncate(self.top);
        let c = self.columns;
        let text_of = |col: &str| texts(df, col);
        let keys: Vec<StringChunked> = c.keys.iter().map(|k| text_of(k)).collect::<Result<_>>()?;
        let segs: Vec<StringChunked> = c
            .segments
            .iter()
            .map(|k| text_of(k))
            .collect::<Result<_>>()?;
        let ds = text_of("ds")?;
        for i in picked {
            let diff = (a[i] - b[i]).abs();
            if !beats(&self.heap, diff, ids[i]) {
                continue;
            }
            self.heap.push(Candidate {
                diff,
                row: ids[i],
                item: Disagreement {
                    ds: ds.get(i).unwrap_or_default().to_string(),
                    key: keys
                        .iter()
                        .map(|k| k.get(i).unwrap_or("null").to_string())
                        .collect(),
                    segments: segs.iter().map(|s| s.get(i).map(str::to_string)).collect(),
                    champion: a[i],
                    challenger: b[i],
                    abs_diff: diff,
                    label: labels[i],
                },
            });
            if self.heap.len() > self.top {
                self.heap.pop();
            }
        }
        Ok(())
    }

    /// The rows that disagree most, most first.
    pub fn finish(self) -> Vec<Disagreement> {
        let mut v = self.heap.into_vec();
        v.sort();
        v.into_iter().map(|c| c.item).collect()
    }
}
