//! An external sort of a shadow comparison's rows: fixed-size records sorted in
//! memory up to a budget, then written out as sorted run files and merged, so the
//! rank statistics (Spearman, top-k overlap, the AUC and its bootstrap) see every
//! row in score order at any row count, in bounded memory.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::PathBuf;

use rayon::prelude::*;

use crate::reports::distinct::SpillFolder;

/// One compared row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rec {
    /// The row's group (0 for the overall section, a segment value's index).
    pub group: u32,
    /// 0 negative, 1 positive, 2 unlabelled.
    pub label: u8,
    /// Bit `k`: in the champion's top share `TOP_K[k]` (set by the first walk).
    pub top: u8,
    /// The champion's score.
    pub a: f64,
    /// The challenger's score.
    pub b: f64,
    /// The row's place in the input (dates in order, then rows as written).
    pub row: u64,
    /// The champion's average rank in its group (set by the first walk).
    pub rank_a: f64,
}

/// Bytes of a record on disk.
const REC_BYTES: usize = 40;

impl Rec {
    pub fn labelled(&self) -> Option<bool> {
        match self.label {
            0 => Some(false),
            1 => Some(true),
            _ => None,
        }
    }

    fn write(&self, w: &mut impl Write) -> io::Result<()> {
        let mut buf = [0u8; REC_BYTES];
        buf[0..4].copy_from_slice(&self.group.to_le_bytes());
        buf[4] = self.label;
        buf[5] = self.top;
        buf[8..16].copy_from_slice(&self.a.to_bits().to_le_bytes());
        buf[16..24].copy_from_slice(&self.b.to_bits().to_le_bytes());
        buf[24..32].copy_from_slice(&self.row.to_le_bytes());
        buf[32..40].copy_from_slice(&self.rank_a.to_bits().to_le_bytes());
        w.write_all(&buf)
    }

    fn read(r: &mut impl Read) -> io::Result<Option<Rec>> {
        let mut buf = [0u8; REC_BYTES];
        match r.read_exact(&mut buf) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(e),
        }
        let u64_at = |i: usize| u64::from_le_bytes(buf[i..i + 8].try_into().expect("8 bytes"));
        Ok(Some(Rec {
            group: u32::from_le_bytes(buf[0..4].try_into().expect("4 bytes")),
            label: buf[4],
            top: buf[5],
            a: f64::from_bits(u64_at(8)),
            b: f64::from_bits(u64_at(16)),
            row: u64_at(24),
            rank_a: f64::from_bits(u64_at(32)),
        }))
    }
}

/// Which score a sort orders by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum By {
    Champion,
    Challenger,
}

/// A float's bits mapped so that unsigned order is `f64::total_cmp`'s order.
pub fn total_key(x: f64) -> u64 {
    let b = x.to_bits();
    if b >> 63 == 1 { !b } else { b | 1 << 63 }
}

/// The sort key: group, score ascending (`total_cmp`), then row descending, so
/// that the last rows of a group are its top rows with ties taken by row order.
fn key(r: &Rec, by: By) -> (u32, u64, Reverse<u64>) {
    let x = match by {
        By::Champion => r.a,
        By::Challenger => r.b,
    };
    (r.group, total_key(x), Reverse(r.row))
}

/// Records sorted in memory up to a budget, then in sorted run files.
pub struct Sorter {
    by: By,
    buf: Vec<Rec>,
    /// Records held in memory at most.
    cap: usize,
    runs: Vec<PathBuf>,
    folder: Option<SpillFolder>,
    /// Bytes written to run files.
    pub spill_bytes: u64,
}

/// Buffer of each run file read in a merge.
const READ_BUFFER: usize = 64 << 10;

impl Sorter {
    /// A sorter holding at most about `budget` bytes of records in memory.
    pub fn new(by: By, budget: usize) -> Self {
        Sorter {
            by,
            buf: Vec::new(),
            cap: (budget / std::mem::size_of::<Rec>()).max(1),
            runs: Vec::new(),
            folder: None,
            spill_bytes: 0,
        }
    }

    pub fn push(&mut self, r: Rec) -> io::Result<()> {
        self.buf.push(r);
        if self.buf.len() >= self.cap {
            self.spill()?;
        }
        Ok(())
    }

    fn sort_buffer(&mut self) {
        let by = self.by;
        self.buf.par_sort_unstable_by_key(|r| key(r, by));
    }

    fn spill(&mut self) -> io::Result<()> {
        self.sort_buffer();
        if self.folder.is_none() {
            let dir = crate::storage::create_temp_folder("scorch-shadow-")
                .map_err(|e| io::Error::other(e.to_string()))?;
            self.folder = Some(SpillFolder::adopt(dir));
        }
        let dir = self.folder.as_ref().expect("made").path();
        let path = dir.join(format!("run-{:06}.bin", self.runs.len()));
        let mut w = BufWriter::new(File::create(&path)?);
        for r in &self.buf {
            r.write(&mut w)?;
        }
        w.flush()?;
        self.spill_bytes += (self.buf.len() * REC_BYTES) as u64;
        self.runs.push(path);
        self.buf.clear();
        self.buf.shrink_to(self.cap.min(1 << 16));
        Ok(())
    }

    /// Every record pushed, in order.
    pub fn finish(mut self) -> io::Result<Merge> {
        self.sort_buffer();
        let mut sources: Vec<Source> = Vec::with_capacity(self.runs.len() + 1);
        for p in &self.runs {
            sources.push(Source::File(BufReader::with_capacity(
                READ_BUFFER,
                File::open(p)?,
            )));
        }
        sources.push(Source::Memory(std::mem::take(&mut self.buf).into_iter()));
        let mut m = Merge {
            by: self.by,
            sources,
            heap: BinaryHeap::new(),
            _folder: self.folder.take(),
        };
        for i in 0..m.sources.len() {
            m.refill(i)?;
        }
        Ok(m)
    }
}

enum Source {
    Memory(std::vec::IntoIter<Rec>),
    File(BufReader<File>),
}

impl Source {
    fn next(&mut self) -> io::Result<Option<Rec>> {
        match self {
            Source::Memory(it) => Ok(it.next()),
            Source::File(r) => Rec::read(r),
        }
    }
}

/// A source's head record in the merge heap (smallest key first).
struct Head {
    key: (u32, u64, Reverse<u64>),
    rec: Rec,
    source: usize,
}

impl PartialEq for Head {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for Head {}
impl PartialOrd for Head {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Head {
    fn cmp(&self, o: &Self) -> Ordering {
        o.key.cmp(&self.key).then(o.source.cmp(&self.source))
    }
}

/// The merge of a sorter's runs; its files are removed when it is dropped.
pub struct Merge {
    by: By,
    sources: Vec<Source>,
    heap: BinaryHeap<Head>,
    _folder: Option<SpillFolder>,
}

impl Merge {
    fn refill(&mut self, i: usize) -> io::Result<()> {
        if let Some(rec) = self.sources[i].next()? {
            self.heap.push(Head {
                key: key(&rec, self.by),
                rec,
                source: i,
            });
        }
        Ok(())
    }
}

impl Iterator for Merge {
    type Item = io::Result<Rec>;

    fn next(&mut self) -> Option<Self::Item> {
        let h = self.heap.pop()?;
        Some(self.refill(h.source).map(|()| h.rec))
    }
}

/// The records of one run of equal scores, held until the run ends (its average
/// rank is known only then): in memory up to a limit, past it in a file.
pub struct Ties {
    mem: Vec<Rec>,
    limit: usize,
    file: Option<(BufWriter<File>, PathBuf, SpillFolder)>,
    len: u64,
}

impl Ties {
    pub fn new(limit: usize) -> Self {
        Ties {
            mem: Vec::new(),
            limit: limit.max(1),
            file: None,
            len: 0,
        }
    }

    /// Records in the run of ties.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the run holds no record.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn push(&mut self, r: Rec) -> io::Result<()> {
        self.len += 1;
        if let Some((w, _, _)) = &mut self.file {
            return r.write(w);
        }
        self.mem.push(r);
        if self.mem.len() >= self.limit {
            let dir = crate::storage::create_temp_folder("scorch-shadow-ties-")
                .map_err(|e| io::Error::other(e.to_string()))?;
            let path = dir.join("ties.bin");
            let mut w = BufWriter::new(File::create(&path)?);
            for r in self.mem.drain(..) {
                r.write(&mut w)?;
            }
            self.file = Some((w, path, SpillFolder::adopt(dir)));
        }
        Ok(())
    }

    /// Hands every held record to `f`, in the order pushed, and empties the run.
    pub fn drain(&mut self, mut f: impl FnMut(Rec) -> io::Result<()>) -> io::Result<()> {
        if let Some((mut w, path, folder)) = self.file.take() {
            w.flush()?;
            drop(w);
            let mut r = BufReader::with_capacity(READ_BUFFER, File::open(&path)?);
            while let Some(rec) = Rec::read(&mut r)? {
                f(rec)?;
            }
            drop(folder);
        } else {
            for rec in self.mem.drain(..) {
                f(rec)?;
            }
        }
        self.len = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn value() -> impl Strategy<Value = f64> {
        prop_oneof![
            Just(0.0),
            Just(-0.0),
            Just(f64::NAN),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
            Just(0.5),
            0.0f64..1.0,
            any::<f64>(),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn spilled_sorts_equal_the_sort_in_memory(
            rows in proptest::collection::vec((0u32..3, value(), value()), 0..400),
            cap in 1usize..50,
        ) {
            for by in [By::Champion, By::Challenger] {
                let recs: Vec<Rec> = rows.iter().enumerate().map(|(i, &(group, a, b))| Rec {
                    group, label: (i % 3) as u8, top: 0, a, b, row: i as u64, rank_a: i as f64 * 0.5,
                }).collect();
                let mut s = Sorter::new(by, cap * std::mem::size_of::<Rec>());
                for r in &recs {
                    s.push(*r).unwrap();
                }
                let spilled = s.spill_bytes > 0;
                let got: Vec<Rec> = s.finish().unwrap().collect::<io::Result<_>>().unwrap();
                let mut want = recs.clone();
                want.sort_by(|p, q| {
                    let (x, y) = match by { By::Champion => (p.a, q.a), By::Challenger => (p.b, q.b) };
                    p.group.cmp(&q.group).then(x.total_cmp(&y)).then(q.row.cmp(&p.row))
                });
                let bits = |v: &[Rec]| v.iter().map(|r| (r.group, r.label, r.a.to_bits(), r.b.to_bits(), r.row, r.rank_a.to_bits())).collect::<Vec<_>>();
                prop_assert_eq!(bits(&got), bits(&want));
                prop_assert!(spilled || rows.len() < cap);
            }
        }

        #[test]
        fn ties_give_back_what_they_held(n in 0usize..200, limit in 1usize..20) {
            let mut t = Ties::new(limit);
            for i in 0..n {
                t.push(Rec { group: 0, label: 2, top: 0, a: 1.0, b: i as f64, row: i as u64, rank_a: 0.0 }).unwrap();
            }
            prop_assert_eq!(t.len(), n as u64);
            let mut rows = vec![];
            t.drain(|r| { rows.push(r.row); Ok(()) }).unwrap();
            prop_assert_eq!(rows, (0..n as u64).collect::<Vec<_>>());
            prop_assert_eq!(t.len(), 0);
        }
    }
}
