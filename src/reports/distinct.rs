//! Exact distinct counts and value frequencies at any size, in bounded memory.
//!
//! A [`Counter`] keeps every value itself — a 64-bit pattern for fixed-width types,
//! the bytes otherwise — never only a hash, so no collision can make two values one
//! or hide a duplicate. It counts in memory (a hash map while the column has few
//! distinct values; past [`Limits::map_entries`] a buffer of raw values, sorted by
//! radix sort into runs of `(value, count)` every [`Limits::buffer_rows`] rows).
//! When its owner's memory budget is passed ([`Spill`]), the counter writes what it
//! holds as one sorted run file and starts again empty; its summary merges every
//! run (a k-way merge, one small read buffer per file) and counts distinct values,
//! values seen once and values seen more than once — exactly, whatever the size.
//!
//! Counters of two parts of one column (chunks, shards) merge by adding each
//! other's runs, so a merged summary equals the summary of the whole. A shard
//! [`Counter::freeze`]s its counter into one file in its own folder, which the commit
//! reads back.
//!
//! Run files: a header (`SCDIST1\n` and the width), then records in ascending value
//! order — fixed: the value's delta from the previous one and the count, both as
//! LEB128 varints; bytes: the length, the bytes and the count.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

/// How a column's values are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Width {
    /// A 64-bit pattern per value (integers, floats, booleans, dates and times).
    Fixed,
    /// The value's bytes (strings, binary, anything else through its text).
    Bytes,
}

/// One value of a counter, as kept.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Value {
    Fixed(u64),
    Bytes(Vec<u8>),
}

/// The in-memory thresholds of a counter (the budget is its owner's, [`Spill`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Distinct values counted in a hash map before the counter switches to sorted
    /// runs (fixed width).
    pub map_entries: usize,
    /// Raw values buffered before they are sorted into an in-memory run of
    /// `(value, count)` (fixed width); by default never (the budget spills first).
    pub buffer_rows: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            map_entries: 1 << 16,
            // No compaction by default: the budget decides when the buffer is
            // sorted and written out (one sort per spill, none in between).
            buffer_rows: usize::MAX,
        }
    }
}

/// Open run files at most per counter: past it, they are merged into one.
const MAX_FILES: usize = 16;

/// Duplicated values a summary keeps as examples.
pub const EXAMPLES: usize = 5;

/// The key under which a finite (or infinite) float is counted so that keys sort
/// as the values do: its bits mapped to unsigned order, `-0.0` as `0.0`. NaN has
/// no place in this order (callers leave it out).
pub fn float_order_key(x: f64) -> u64 {
    let b = if x == 0.0 { 0 } else { x.to_bits() };
    if b >> 63 == 1 { !b } else { b | (1 << 63) }
}

/// The float of a [`float_order_key`].
pub fn float_of_order_key(k: u64) -> f64 {
    f64::from_bits(if k >> 63 == 1 { k & !(1 << 63) } else { !k })
}

/// A finalizing mixer (MurmurHash3's fmix64): a cheap, well-spread hash for the
/// in-memory maps (which compare values, so its quality only affects speed).
#[derive(Default, Clone, Copy)]
pub struct Mix(u64);

impl std::hash::Hasher for Mix {
    fn finish(&self) -> u64 {
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let v = u64::from_le_bytes(c.try_into().expect("8 bytes"));
            self.0 = (self.0 ^ v)
                .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                .rotate_left(29);
        }
        for &b in chunks.remainder() {
            self.0 = (self.0 ^ b as u64).wrapping_mul(0x100_0000_01B3);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 ^= v;
    }
    fn write_usize(&mut self, v: usize) {
        self.0 = self.0.rotate_left(7) ^ v as u64;
    }
}

type MixState = std::hash::BuildHasherDefault<Mix>;

pub use crate::storage::SpillFolder;

/// Where and when counters spill: a memory budget shared by the counters of one
/// owner (a run's profile, the key check) and the folder their runs go to, made on
/// the first spill (`<parent>/<name>`, or a temporary folder named for this
/// process when no parent is set).
#[derive(Debug)]
pub struct Spill {
    /// Bytes of counting state the owner may hold in memory.
    pub budget: usize,
    parent: Mutex<Option<PathBuf>>,
    folder: Mutex<Option<Arc<SpillFolder>>>,
    next: std::sync::atomic::AtomicU64,
}

impl Clone for Spill {
    fn clone(&self) -> Self {
        Spill {
            budget: self.budget,
            parent: Mutex::new(self.parent.lock().expect("spill lock").clone()),
            folder: Mutex::new(self.folder.lock().expect("spill lock").clone()),
            next: std::sync::atomic::AtomicU64::new(
                self.next.load(std::sync::atomic::Ordering::Relaxed),
            ),
        }
    }
}

impl Spill {
    pub fn new(budget: usize) -> Self {
        Spill {
            budget,
            parent: Mutex::new(None),
            folder: Mutex::new(None),
            next: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Spilled runs go to `dir` (created on the first spill, removed at the end).
    pub fn place_in(&self, dir: PathBuf) {
        *self.parent.lock().expect("spill lock") = Some(dir);
    }

    fn folder(&self) -> io::Result<Arc<SpillFolder>> {
        let mut f = self.folder.lock().expect("spill lock");
        if let Some(f) = &*f {
            return Ok(f.clone());
        }
        let path = match &*self.parent.lock().expect("spill lock") {
            Some(dir) => {
                std::fs::create_dir_all(dir)?;
                dir.clone()
            }
            None => crate::storage::create_temp_folder("scorch-spill-")
                .map_err(|e| io::Error::other(e.to_string()))?,
        };
        let made = Arc::new(SpillFolder::adopt(path));
        *f = Some(made.clone());
        Ok(made)
    }

    /// A new run file's path in the spill folder, and the folder.
    fn new_file(&self) -> io::Result<(PathBuf, Arc<SpillFolder>)> {
        let folder = self.folder()?;
        let n = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok((folder.path().join(format!("run-{n:06}.bin")), folder))
    }

    /// Spills the largest of `counters` until they hold at most half the budget,
    /// once they hold more than the budget.
    pub fn enforce<'a>(&self, counters: impl Iterator<Item = &'a mut Counter>) -> io::Result<()> {
        let mut all: Vec<&mut Counter> = counters.collect();
        let mut total: usize = all.iter().map(|c| c.memory()).sum();
        if total <= self.budget {
            return Ok(());
        }
        all.sort_by_key(|c| Reverse(c.memory()));
        for c in all {
            if total <= self.budget / 2 {
                break;
            }
            let before = c.memory();
            c.spill(self)?;
            total = total - before + c.memory();
        }
        Ok(())
    }
}

/// A run file of sorted `(value, count)` records.
#[derive(Debug, Clone)]
pub struct RunFile {
    pub path: PathBuf,
    pub bytes: u64,
    /// The folder that removes the file when no longer used (none for a frozen
    /// shard file, which the shard's folder owns).
    owner: Option<Arc<SpillFolder>>,
}

/// Exact value counts of one column (or key tuple).
#[derive(Debug, Clone)]
pub struct Counter {
    width: Width,
    limits: Limits,
    /// Fixed width, few distinct values: value → count.
    map: HashMap<u64, u64, MixState>,
    /// Fixed width past `map_entries`: raw values, and sorted runs of them.
    high: bool,
    buf: Vec<u64>,
    runs: Vec<Vec<(u64, u64)>>,
    /// Bytes: value → count, and the bytes held by the keys.
    bytes: HashMap<Box<[u8]>, u64, MixState>,
    bytes_held: usize,
    files: Vec<RunFile>,
    /// Bytes written to run files over the counter's life (merged parts included).
    spilled: u64,
}

/// What a counter's values were, exactly.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// Values counted (rows with a value).
    pub values: u64,
    /// Distinct values.
    pub distinct: u64,
    /// Values that occur exactly once.
    pub once: u64,
    /// Distinct values that occur more than once.
    pub duplicated: u64,
    /// The smallest duplicated values (in the counter's order) and their counts.
    pub examples: Vec<(Value, u64)>,
    /// Whether any part was spilled to disk past a memory budget.
    pub spilled: bool,
    /// Bytes written to run files.
    pub spill_bytes: u64,
}

fn put_varint(w: &mut impl Write, mut v: u64) -> io::Result<()> {
    let mut buf = [0u8; 10];
    let mut n = 0;
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            buf[n] = b;
            n += 1;
            break;
        }
        buf[n] = b | 0x80;
        n += 1;
    }
    w.write_all(&buf[..n])
}

/// A varint, or `None` at a clean end of file.
fn get_varint(r: &mut impl Read) -> io::Result<Option<u64>> {
    let mut v = 0u64;
    let mut shift = 0u32;
    let mut b = [0u8; 1];
    loop {
        match r.read(&mut b)? {
            0 if shift == 0 => return Ok(None),
            0 => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "truncated run file",
                ));
            }
            _ => {}
        }
        if shift >= 64 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "bad varint in a run file",
            ));
        }
        v |= ((b[0] & 0x7f) as u64) << shift;
        if b[0] & 0x80 == 0 {
            return Ok(Some(v));
        }
        shift += 7;
    }
}

const MAGIC: &[u8; 8] = b"SCDIST1\n";

/// Writes sorted `(value, count)` records.
struct RunWriter {
    w: BufWriter<std::fs::File>,
    width: Width,
    prev: u64,
    bytes: u64,
}

impl RunWriter {
    fn create(path: &Path, width: Width) -> io::Result<Self> {
        let f = std::fs::File::create(path)?;
        let mut w = BufWriter::with_capacity(1 << 18, f);
        w.write_all(MAGIC)?;
        w.write_all(&[width as u8])?;
        Ok(RunWriter {
            w,
            width,
            prev: 0,
            bytes: 9,
        })
    }

    fn fixed(&mut self, v: u64, c: u64) -> io::Result<()> {
        let mut rec = Vec::with_capacity(20);
        put_varint(&mut rec, v.wrapping_sub(self.prev))?;
        put_varint(&mut rec, c)?;
        self.prev = v;
        self.bytes += rec.len() as u64;
        self.w.write_all(&rec)
    }

    fn bytes(&mut self, v: &[u8], c: u64) -> io::Result<()> {
        let mut rec = Vec::with_capacity(v.len() + 20);
        put_varint(&mut rec, v.len() as u64)?;
        rec.extend_from_slice(v);
        put_varint(&mut rec, c)?;
        self.bytes += rec.len() as u64;
        self.w.write_all(&rec)
    }

    fn value(&mut self, v: &Value, c: u64) -> io::Result<()> {
        match v {
            Value::Fixed(x) => self.fixed(*x, c),
            Value::Bytes(b) => self.bytes(b, c),
        }
    }

    fn finish(mut self) -> io::Result<u64> {
        self.w.flush()?;
        self.w.get_ref().sync_data().ok();
        let _ = self.width;
        Ok(self.bytes)
    }
}

/// Reads a run file's records in order.
struct RunReader {
    r: BufReader<std::fs::File>,
    width: Width,
    prev: u64,
    path: PathBuf,
}

impl RunReader {
    fn open(path: &Path, width: Width) -> io::Result<Self> {
        let f = std::fs::File::open(path)?;
        let mut r = BufReader::with_capacity(1 << 16, f);
        let mut head = [0u8; 9];
        r.read_exact(&mut head)?;
        let want = width as u8;
        if &head[..8] != MAGIC || head[8] != want {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: not a scorch run file of this width", path.display()),
            ));
        }
        Ok(RunReader {
            r,
            width,
            prev: 0,
            path: path.to_path_buf(),
        })
    }

    fn next_record(&mut self) -> io::Result<Option<(Value, u64)>> {
        let bad = |p: &Path| {
            io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{}: truncated run file", p.display()),
            )
        };
        match self.width {
            Width::Fixed => {
                let Some(d) = get_varint(&mut self.r)? else {
                    return Ok(None);
                };
                let c = get_varint(&mut self.r)?.ok_or_else(|| bad(&self.path))?;
                self.prev = self.prev.wrapping_add(d);
                Ok(Some((Value::Fixed(self.prev), c)))
            }
            Width::Bytes => {
                let Some(n) = get_varint(&mut self.r)? else {
                    return Ok(None);
                };
                let mut v = vec![0u8; n as usize];
                self.r.read_exact(&mut v)?;
                let c = get_varint(&mut self.r)?.ok_or_else(|| bad(&self.path))?;
                Ok(Some((Value::Bytes(v), c)))
            }
        }
    }
}

impl RunReader {
    fn fixed(mut self) -> impl Iterator<Item = io::Result<(u64, u64)>> {
        std::iter::from_fn(move || match self.next_record() {
            Ok(Some((Value::Fixed(v), c))) => Some(Ok((v, c))),
            Ok(Some((Value::Bytes(_), _))) => Some(Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "a bytes record in a fixed-width run file",
            ))),
            Ok(None) => None,
            Err(e) => Some(Err(e)),
        })
    }

    fn bytes(mut self) -> impl Iterator<Item = io::Result<(Vec<u8>, u64)>> {
        std::iter::from_fn(move || match self.next_record() {
            Ok(Some((Value::Bytes(v), c))) => Some(Ok((v, c))),
            Ok(Some((Value::Fixed(_), _))) => Some(Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "a fixed-width record in a bytes run file",
            ))),
            Ok(None) => None,
            Err(e) => Some(Err(e)),
        })
    }
}

/// Sorts `v` ascending: LSD radix sort, 8 bits a pass, skipping passes whose digit
/// is the same for every value.
pub fn radix_sort_u64(v: &mut Vec<u64>) {
    if v.is_sorted() {
        return; // tables are often written in key order: one cheap pass
    }
    if v.len() < 512 {
        v.sort_unstable();
        return;
    }
    // Only the bytes that differ between values need a pass.
    let first = v[0];
    let diff = v.iter().fold(0u64, |d, &x| d | (x ^ first));
    let mut tmp = vec![0u64; v.len()];
    for p in 0..8 {
        let shift = p * 8;
        if (diff >> shift) & 0xff == 0 {
            continue;
        }
        let mut offs = [0usize; 256];
        for &k in v.iter() {
            offs[((k >> shift) & 0xff) as usize] += 1;
        }
        let mut sum = 0;
        for o in offs.iter_mut() {
            let n = *o;
            *o = sum;
            sum += n;
        }
        for &k in v.iter() {
            let d = ((k >> shift) & 0xff) as usize;
            tmp[offs[d]] = k;
            offs[d] += 1;
        }
        std::mem::swap(v, &mut tmp);
    }
}

/// Run-length counts of sorted values.
fn run_lengths(sorted: &[u64]) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    for &v in sorted {
        match out.last_mut() {
            Some((x, c)) if *x == v => *c += 1,
            _ => out.push((v, 1)),
        }
    }
    out
}

/// Two sorted runs as one, counts of equal values added.
fn merge_two(a: &[(u64, u64)], b: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].0.cmp(&b[j].0) {
            std::cmp::Ordering::Less => {
                out.push(a[i]);
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                out.push(b[j]);
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                out.push((a[i].0, a[i].1 + b[j].1));
                i += 1;
                j += 1;
            }
        }
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
    out
}

type Records<'a, K> = Box<dyn Iterator<Item = io::Result<(K, u64)>> + 'a>;

/// Sorted record streams merged into one: each distinct value once, with its total
/// count, in ascending order (a k-way merge; one stream is passed through).
pub struct Merged<'a, K> {
    sources: Vec<Records<'a, K>>,
    heap: BinaryHeap<Reverse<(K, usize, u64)>>,
    started: bool,
    failed: bool,
}

impl<'a, K: Ord> Merged<'a, K> {
    fn new(sources: Vec<Records<'a, K>>) -> Self {
        Merged {
            sources,
            heap: BinaryHeap::new(),
            started: false,
            failed: false,
        }
    }

    /// Pulls the next record of source `i` into the heap.
    fn pull(&mut self, i: usize) -> io::Result<()> {
        if let Some(r) = self.sources[i].next() {
            let (v, c) = r?;
            self.heap.push(Reverse((v, i, c)));
        }
        Ok(())
    }

    fn step(&mut self) -> io::Result<Option<(K, u64)>> {
        if self.sources.len() == 1 {
            // One sorted stream: already one record per value.
            return self.sources[0].next().transpose();
        }
        if !self.started {
            self.started = true;
            for i in 0..self.sources.len() {
                self.pull(i)?;
            }
        }
        let Some(Reverse((v, i, mut c))) = self.heap.pop() else {
            return Ok(None);
        };
        self.pull(i)?;
        while let Some(Reverse((w, _, _))) = self.heap.peek()
            && *w == v
        {
            let Reverse((_, j, d)) = self.heap.pop().expect("peeked");
            c += d;
            self.pull(j)?;
        }
        Ok(Some((v, c)))
    }
}

impl<K: Ord> Iterator for Merged<'_, K> {
    type Item = io::Result<(K, u64)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let r = self.step().transpose();
        self.failed = matches!(r, Some(Err(_)));
        r
    }
}

/// Merges sorted record streams, calling `f` once per distinct value with its total
/// count, in ascending order.
fn merge_all<K: Ord>(
    sources: Vec<Records<'_, K>>,
    mut f: impl FnMut(K, u64) -> io::Result<()>,
) -> io::Result<()> {
    for r in Merged::new(sources) {
        let (v, c) = r?;
        f(v, c)?;
    }
    Ok(())
}

/// `(value, count)` of a sorted slice of raw values (equal neighbours counted).
fn grouped(v: &[u64]) -> impl Iterator<Item = io::Result<(u64, u64)>> + '_ {
    let mut i = 0;
    std::iter::from_fn(move || {
        let x = *v.get(i)?;
        let start = i;
        while i < v.len() && v[i] == x {
            i += 1;
        }
        Some(Ok((x, (i - start) as u64)))
    })
}

impl Counter {
    pub fn new(width: Width) -> Self {
        Self::with_limits(width, Limits::default())
    }

    pub fn with_limits(width: Width, limits: Limits) -> Self {
        Counter {
            width,
            limits: Limits {
                map_entries: limits.map_entries.max(1),
                buffer_rows: limits.buffer_rows.max(1),
            },
            map: HashMap::default(),
            high: false,
            buf: Vec::new(),
            runs: Vec::new(),
            bytes: HashMap::default(),
            bytes_held: 0,
            files: Vec::new(),
            spilled: 0,
        }
    }

    pub fn width(&self) -> Width {
        self.width
    }

    /// Bytes written to run files so far (a spill; merged parts included).
    pub fn spill_bytes(&self) -> u64 {
        self.spilled
    }

    /// The same counter with other in-memory thresholds (before anything is counted).
    pub fn with_new_limits(&self, limits: Limits) -> Self {
        Counter::with_limits(self.width, limits)
    }

    /// Whether nothing was counted.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
            && self.buf.is_empty()
            && self.runs.is_empty()
            && self.bytes.is_empty()
            && self.files.is_empty()
    }

    /// Bytes of memory the counter holds (an estimate of its allocations).
    pub fn memory(&self) -> usize {
        let map = self.map.capacity() * 17;
        // The buffer's sort needs as much again as scratch.
        let buf = self.buf.capacity() * 16;
        let runs: usize = self.runs.iter().map(|r| r.capacity() * 16).sum();
        let bytes = self.bytes.capacity() * 25 + self.bytes_held + self.bytes.len() * 16;
        map + buf + runs + bytes
    }

    /// Reserves room for about `rows` more raw values (within `budget` bytes), so a
    /// column known to be large does not grow its buffer by copying.
    pub fn reserve(&mut self, rows: usize, budget: usize) {
        if self.width == Width::Fixed {
            let n = rows.min(budget / 16).min(self.limits.buffer_rows);
            self.buf.reserve(n.saturating_sub(self.buf.len()));
        }
    }

    /// Counts fixed-width values.
    pub fn add_fixed(&mut self, values: &[u64]) {
        debug_assert_eq!(self.width, Width::Fixed);
        let mut rest = values;
        if !self.high {
            let mut i = 0;
            while i < rest.len() {
                *self.map.entry(rest[i]).or_insert(0) += 1;
                i += 1;
                if self.map.len() > self.limits.map_entries {
                    // Many distinct values: raw values, sorted at the end, from here
                    // on. Counts seen so far go with them (as raw values when they are
                    // few per value, else as a sorted run).
                    let total: u64 = self.map.values().sum();
                    if total <= 4 * self.map.len() as u64 {
                        // In order, so that input in key order stays sorted (and
                        // needs no sort at the end).
                        let mut seen: Vec<(u64, u64)> = self.map.drain().collect();
                        seen.sort_unstable();
                        for (v, c) in seen {
                            self.buf.extend(std::iter::repeat_n(v, c as usize));
                        }
                    } else {
                        let mut run: Vec<(u64, u64)> = self.map.drain().collect();
                        run.sort_unstable();
                        self.runs.push(run);
                    }
                    self.map = HashMap::default();
                    self.high = true;
                    break;
                }
            }
            rest = &rest[i..];
        }
        if self.high {
            let mut rest = rest;
            if self.buf.len() >= self.limits.buffer_rows {
                self.compact();
            }
            while !rest.is_empty() {
                let room = self
                    .limits
                    .buffer_rows
                    .saturating_sub(self.buf.len())
                    .max(1);
                let take = room.min(rest.len());
                if self.buf.capacity() - self.buf.len() < take {
                    // Grow by a quarter, not double: the budget sees the memory
                    // before it is taken.
                    let more = (self.buf.len() / 4).max(take).max(4096);
                    self.buf.reserve_exact(more);
                }
                self.buf.extend_from_slice(&rest[..take]);
                rest = &rest[take..];
                if self.buf.len() >= self.limits.buffer_rows {
                    self.compact();
                }
            }
        }
    }

    /// Counts one value of bytes.
    pub fn add_bytes(&mut self, v: &[u8]) {
        debug_assert_eq!(self.width, Width::Bytes);
        if let Some(c) = self.bytes.get_mut(v) {
            *c += 1;
        } else {
            self.bytes_held += v.len();
            self.bytes.insert(v.into(), 1);
        }
    }

    /// Counts a value of either width.
    pub fn add(&mut self, v: &Value) {
        match v {
            Value::Fixed(x) => self.add_fixed(std::slice::from_ref(x)),
            Value::Bytes(b) => self.add_bytes(b),
        }
    }

    /// Sorts the buffer into a run and merges runs of similar length (so values
    /// seen in many buffers are counted once per run, and runs stay few).
    fn compact(&mut self) {
        if !self.buf.is_empty() {
            radix_sort_u64(&mut self.buf);
            let run = run_lengths(&self.buf);
            self.buf.clear();
            self.runs.push(run);
        }
        while self.runs.len() >= 2 {
            let n = self.runs.len();
            if self.runs[n - 1].len() * 2 < self.runs[n - 2].len() {
                break;
            }
            let b = self.runs.pop().expect("two runs");
            let a = self.runs.pop().expect("two runs");
            self.runs.push(merge_two(&a, &b));
        }
    }

    /// Everything in memory as one sorted run (fixed width), memory released.
    fn take_fixed(&mut self) -> Vec<(u64, u64)> {
        self.compact();
        let mut all: Vec<(u64, u64)> = self.map.drain().collect();
        self.map = HashMap::default();
        all.sort_unstable();
        for r in std::mem::take(&mut self.runs) {
            all = if all.is_empty() {
                r
            } else {
                merge_two(&all, &r)
            };
        }
        self.buf = Vec::new();
        all
    }

    /// Everything in memory sorted (bytes), memory released.
    fn take_bytes(&mut self) -> Vec<(Box<[u8]>, u64)> {
        let mut all: Vec<(Box<[u8]>, u64)> = std::mem::take(&mut self.bytes).into_iter().collect();
        self.bytes_held = 0;
        all.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        all
    }

    /// Writes what the counter holds in memory as one sorted run file.
    pub fn spill(&mut self, spill: &Spill) -> io::Result<()> {
        if self.is_memory_empty() {
            return Ok(());
        }
        let (path, folder) = spill.new_file()?;
        let bytes = self.write_memory(&path)?;
        self.spilled += bytes;
        self.files.push(RunFile {
            path,
            bytes,
            owner: Some(folder),
        });
        if self.files.len() > MAX_FILES {
            // Many files: merge them into one, so a summary opens few.
            let (path, folder) = spill.new_file()?;
            let bytes = self.merge_into(&path)?;
            self.spilled += bytes;
            self.files = vec![RunFile {
                path,
                bytes,
                owner: Some(folder),
            }];
        }
        Ok(())
    }

    fn is_memory_empty(&self) -> bool {
        self.map.is_empty() && self.buf.is_empty() && self.runs.is_empty() && self.bytes.is_empty()
    }

    /// The in-memory part written to `path` (then released); bytes written.
    fn write_memory(&mut self, path: &Path) -> io::Result<u64> {
        let files = std::mem::take(&mut self.files);
        let mut w = RunWriter::create(path, self.width)?;
        let written = self.for_each(|v, c| w.value(&v, c));
        self.files = files;
        written?;
        self.clear_memory();
        w.finish()
    }

    /// Releases the in-memory counts (after they were written out).
    fn clear_memory(&mut self) {
        self.map = HashMap::default();
        self.buf = Vec::new();
        self.runs = Vec::new();
        self.bytes = HashMap::default();
        self.bytes_held = 0;
    }

    /// Every run (memory and files) merged into one file at `path`; the memory is
    /// released, the file list left as it was. Bytes written.
    fn merge_into(&mut self, path: &Path) -> io::Result<u64> {
        let mut w = RunWriter::create(path, self.width)?;
        self.for_each(|v, c| w.value(&v, c))?;
        w.finish()
    }

    /// Calls `f` with every distinct value and its count, ascending. In-memory
    /// parts are sorted in place first; the counter stays usable.
    fn for_each(&mut self, mut f: impl FnMut(Value, u64) -> io::Result<()>) -> io::Result<()> {
        match self.width {
            Width::Fixed => self.for_each_fixed(|v, c| f(Value::Fixed(v), c)),
            Width::Bytes => self.for_each_bytes(|v, c| f(Value::Bytes(v), c)),
        }
    }

    fn open_files(&self) -> io::Result<Vec<RunReader>> {
        self.files
            .iter()
            .map(|file| {
                RunReader::open(&file.path, self.width)
                    .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", file.path.display())))
            })
            .collect()
    }

    fn for_each_fixed(&mut self, f: impl FnMut(u64, u64) -> io::Result<()>) -> io::Result<()> {
        let sources = self.fixed_sources()?;
        merge_all(sources, f)
    }

    fn for_each_bytes(&mut self, f: impl FnMut(Vec<u8>, u64) -> io::Result<()>) -> io::Result<()> {
        let sources = self.bytes_sources()?;
        merge_all(sources, f)
    }

    /// Every distinct value (fixed width) with its count, ascending: in-memory
    /// parts are sorted in place first, run files read as the iterator goes; the
    /// counter stays usable (another call walks the values again).
    pub fn sorted_fixed(&mut self) -> io::Result<Merged<'_, u64>> {
        debug_assert_eq!(self.width, Width::Fixed);
        Ok(Merged::new(self.fixed_sources()?))
    }

    /// Every distinct value (bytes) with its count, ascending (as [`Self::sorted_fixed`]).
    pub fn sorted_bytes(&mut self) -> io::Result<Merged<'_, Vec<u8>>> {
        debug_assert_eq!(self.width, Width::Bytes);
        Ok(Merged::new(self.bytes_sources()?))
    }

    fn fixed_sources(&mut self) -> io::Result<Vec<Records<'_, u64>>> {
        radix_sort_u64(&mut self.buf);
        if !self.map.is_empty() {
            let mut run: Vec<(u64, u64)> = self.map.drain().collect();
            run.sort_unstable();
            self.map = HashMap::default();
            self.runs.push(run);
            self.high = true;
        }
        let files = self.open_files()?;
        let mut sources: Vec<Records<'_, u64>> = Vec::new();
        if !self.buf.is_empty() {
            sources.push(Box::new(grouped(&self.buf)));
        }
        for r in &self.runs {
            sources.push(Box::new(r.iter().map(|&(v, c)| Ok((v, c)))));
        }
        for r in files {
            sources.push(Box::new(r.fixed()));
        }
        if sources.is_empty() {
            sources.push(Box::new(std::iter::empty()));
        }
        Ok(sources)
    }

    fn bytes_sources(&mut self) -> io::Result<Vec<Records<'_, Vec<u8>>>> {
        let files = self.open_files()?;
        let mut mem: Vec<(&[u8], u64)> = self.bytes.iter().map(|(k, &c)| (&**k, c)).collect();
        mem.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let mut sources: Vec<Records<'_, Vec<u8>>> = Vec::new();
        if !mem.is_empty() {
            sources.push(Box::new(mem.into_iter().map(|(v, c)| Ok((v.to_vec(), c)))));
        }
        for r in files {
            sources.push(Box::new(r.bytes()));
        }
        if sources.is_empty() {
            sources.push(Box::new(std::iter::empty()));
        }
        Ok(sources)
    }

    /// The exact summary of every value counted.
    pub fn summary(&mut self) -> io::Result<Summary> {
        let mut s = Summary {
            values: 0,
            distinct: 0,
            once: 0,
            duplicated: 0,
            examples: Vec::new(),
            // Past a budget (a shard's frozen file is not a spill).
            spilled: self.spilled > 0,
            spill_bytes: self.spilled,
        };
        if self.width == Width::Fixed
            && self.files.is_empty()
            && self.runs.is_empty()
            && self.map.is_empty()
        {
            // Everything in one buffer: sorted, then counted in one tight pass.
            radix_sort_u64(&mut self.buf);
            let v = &self.buf;
            let mut i = 0;
            while i < v.len() {
                let start = i;
                let x = v[i];
                i += 1;
                while i < v.len() && v[i] == x {
                    i += 1;
                }
                let c = (i - start) as u64;
                s.distinct += 1;
                if c == 1 {
                    s.once += 1;
                } else {
                    s.duplicated += 1;
                    if s.examples.len() < EXAMPLES {
                        s.examples.push((Value::Fixed(x), c));
                    }
                }
            }
            s.values = v.len() as u64;
            return Ok(s);
        }
        self.for_each(|v, c| {
            s.values += c;
            s.distinct += 1;
            if c == 1 {
                s.once += 1;
            } else {
                s.duplicated += 1;
                if s.examples.len() < EXAMPLES {
                    s.examples.push((v, c));
                }
            }
            Ok(())
        })?;
        Ok(s)
    }

    /// Adds the counts of `other` (another part of the same column): exact.
    pub fn merge(&mut self, other: &Counter) {
        debug_assert_eq!(self.width, other.width);
        let high = other.high || !other.buf.is_empty() || !other.runs.is_empty();
        if !self.high && !high {
            for (&v, &c) in &other.map {
                *self.map.entry(v).or_insert(0) += c;
            }
            if self.map.len() > self.limits.map_entries {
                let run = self.take_fixed();
                self.runs.push(run);
                self.high = true;
            }
        } else {
            if !self.high {
                let run = self.take_fixed();
                self.runs.push(run);
                self.high = true;
            }
            let mut theirs: Vec<(u64, u64)> = other.map.iter().map(|(&v, &c)| (v, c)).collect();
            theirs.sort_unstable();
            self.runs.push(theirs);
            self.runs.extend(other.runs.iter().cloned());
            let mut buf = other.buf.clone();
            radix_sort_u64(&mut buf);
            self.runs.push(run_lengths(&buf));
            self.runs.retain(|r| !r.is_empty());
            self.runs.sort_by_key(|r| Reverse(r.len()));
            self.compact();
        }
        for (v, &c) in &other.bytes {
            if let Some(x) = self.bytes.get_mut(v) {
                *x += c;
            } else {
                self.bytes_held += v.len();
                self.bytes.insert(v.clone(), c);
            }
        }
        self.files.extend(other.files.iter().cloned());
        self.spilled += other.spilled;
    }

    /// Writes every value into one run file `dir/name` (a shard's), which then is
    /// the counter's only part; memory is released.
    pub fn freeze(&mut self, dir: &Path, name: &str) -> io::Result<()> {
        let path = dir.join(name);
        let bytes = self.merge_into(&path)?;
        self.clear_memory();
        self.files = vec![RunFile {
            path: PathBuf::from(name),
            bytes,
            owner: None,
        }];
        Ok(())
    }

    /// Points run files with relative paths (a frozen shard's, read back) at
    /// `resolve(name)`, which may fetch them (the returned folder then owns them).
    pub fn locate(
        &mut self,
        mut resolve: impl FnMut(&str) -> io::Result<(PathBuf, Option<Arc<SpillFolder>>)>,
    ) -> io::Result<()> {
        for f in &mut self.files {
            if f.path.is_relative() {
                let (p, owner) = resolve(&f.path.to_string_lossy())?;
                f.path = p;
                f.owner = owner;
            }
        }
        Ok(())
    }

    /// The run files' names (relative for a frozen counter).
    pub fn files(&self) -> impl Iterator<Item = &RunFile> {
        self.files.iter()
    }
}

/// The serialized form: in-memory counts inline (sorted), run files by name.
#[derive(Serialize, Deserialize)]
struct CounterDoc {
    width: Width,
    #[serde(default)]
    fixed: Vec<(u64, u64)>,
    #[serde(default)]
    bytes: Vec<(ByteString, u64)>,
    #[serde(default)]
    files: Vec<(String, u64)>,
    #[serde(default)]
    spilled: u64,
}

/// Bytes serialized as a byte string (not a list of numbers).
#[derive(Debug, Clone)]
pub struct ByteString(pub Vec<u8>);

impl serde::Serialize for ByteString {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for ByteString {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = ByteString;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E>(self, v: &[u8]) -> Result<ByteString, E> {
                Ok(ByteString(v.to_vec()))
            }
            fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<ByteString, E> {
                Ok(ByteString(v))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<ByteString, A::Error> {
                let mut out = Vec::new();
                while let Some(b) = a.next_element::<u8>()? {
                    out.push(b);
                }
                Ok(ByteString(out))
            }
        }
        d.deserialize_byte_buf(V)
    }
}

impl Serialize for Counter {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut me = self.clone();
        let doc = CounterDoc {
            width: self.width,
            fixed: if self.width == Width::Fixed {
                me.take_fixed()
            } else {
                vec![]
            },
            bytes: me
                .take_bytes()
                .into_iter()
                .map(|(v, c)| (ByteString(v.into_vec()), c))
                .collect(),
            files: self
                .files
                .iter()
                .map(|f| (f.path.to_string_lossy().into_owned(), f.bytes))
                .collect(),
            spilled: self.spilled,
        };
        doc.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Counter {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let doc = CounterDoc::deserialize(d)?;
        let mut c = Counter::new(doc.width);
        if !doc.fixed.is_empty() {
            c.runs.push(doc.fixed);
            c.high = true;
        }
        for (v, n) in doc.bytes {
            c.bytes_held += v.0.len();
            c.bytes.insert(v.0.into_boxed_slice(), n);
        }
        c.files = doc
            .files
            .into_iter()
            .map(|(p, bytes)| RunFile {
                path: PathBuf::from(p),
                bytes,
                owner: None,
            })
            .collect();
        c.spilled = doc.spilled;
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The summary of `values` computed the plain way.
    fn oracle(values: &[Value]) -> (u64, u64, u64, u64) {
        let mut m: std::collections::BTreeMap<&Value, u64> = Default::default();
        for v in values {
            *m.entry(v).or_insert(0) += 1;
        }
        let once = m.values().filter(|&&c| c == 1).count() as u64;
        (
            values.len() as u64,
            m.len() as u64,
            once,
            m.len() as u64 - once,
        )
    }

    fn check(width: Width, values: &[Value], limits: Limits, budget: usize, parts: usize) {
        let spill = Spill::new(budget);
        let mut counters: Vec<Counter> = (0..parts.max(1))
            .map(|_| Counter::with_limits(width, limits))
            .collect();
        let chunk = 97;
        for (i, c) in values.chunks(chunk).enumerate() {
            let k = i % counters.len();
            match width {
                Width::Fixed => {
                    let raw: Vec<u64> = c
                        .iter()
                        .map(|v| match v {
                            Value::Fixed(x) => *x,
                            _ => unreachable!(),
                        })
                        .collect();
                    counters[k].add_fixed(&raw);
                }
                Width::Bytes => {
                    for v in c {
                        counters[k].add(v);
                    }
                }
            }
            spill.enforce(counters.iter_mut()).unwrap();
        }
        let mut all = counters.remove(0);
        for c in &counters {
            all.merge(c);
        }
        let s = all.summary().unwrap();
        let (n, d, once, dup) = oracle(values);
        assert_eq!(
            (s.values, s.distinct, s.once, s.duplicated),
            (n, d, once, dup)
        );
        // The examples are the smallest duplicated values with their counts.
        let mut m: std::collections::BTreeMap<&Value, u64> = Default::default();
        for v in values {
            *m.entry(v).or_insert(0) += 1;
        }
        let want: Vec<(Value, u64)> = m
            .into_iter()
            .filter(|(_, c)| *c > 1)
            .take(EXAMPLES)
            .map(|(v, c)| (v.clone(), c))
            .collect();
        assert_eq!(s.examples, want);
        // A summary again gives the same (the counter stays usable).
        assert_eq!(all.summary().unwrap().distinct, d);
    }

    fn fixed_values() -> impl Strategy<Value = Vec<Value>> {
        // Values from a small or a huge range: few or many duplicates.
        (1u64..5000, 0usize..3000).prop_flat_map(|(range, n)| {
            proptest::collection::vec(
                prop_oneof![
                    (0..range).prop_map(Value::Fixed),
                    any::<u64>().prop_map(Value::Fixed),
                    Just(Value::Fixed(u64::MAX)),
                    Just(Value::Fixed(0)),
                ],
                n,
            )
        })
    }

    fn byte_values() -> impl Strategy<Value = Vec<Value>> {
        proptest::collection::vec(
            prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..3).prop_map(Value::Bytes),
                proptest::collection::vec(any::<u8>(), 0..40).prop_map(Value::Bytes),
            ],
            0..2000,
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Any values, any limits (maps, buffers, budgets down to nothing: every
        /// chunk spills), any number of merged parts: the exact summary.
        #[test]
        fn fixed_counts_are_exact_across_every_limit(
            values in fixed_values(),
            map_entries in 1usize..300,
            buffer_rows in 1usize..600,
            budget in prop_oneof![Just(0usize), 1usize..20_000, Just(usize::MAX)],
            parts in 1usize..4,
        ) {
            check(Width::Fixed, &values, Limits { map_entries, buffer_rows }, budget, parts);
        }

        #[test]
        fn byte_counts_are_exact_across_every_limit(
            values in byte_values(),
            budget in prop_oneof![Just(0usize), 1usize..20_000, Just(usize::MAX)],
            parts in 1usize..4,
        ) {
            check(Width::Bytes, &values, Limits::default(), budget, parts);
        }

        #[test]
        fn radix_sort_sorts(mut v in proptest::collection::vec(any::<u64>(), 0..3000)) {
            let mut want = v.clone();
            want.sort_unstable();
            radix_sort_u64(&mut v);
            prop_assert_eq!(v, want);
        }
    }

    #[test]
    fn frozen_counters_round_trip_through_their_files() {
        let dir = tempfile::tempdir().unwrap();
        let spill = Spill::new(0);
        let mut a = Counter::with_limits(
            Width::Fixed,
            Limits {
                map_entries: 10,
                buffer_rows: 50,
            },
        );
        a.add_fixed(&(0..1000u64).collect::<Vec<_>>());
        spill.enforce(std::iter::once(&mut a)).unwrap();
        a.add_fixed(&[5, 5, 7]);
        a.freeze(dir.path(), "a.bin").unwrap();
        let bytes = rmp_serde::to_vec_named(&a).unwrap();
        let mut back: Counter = rmp_serde::from_slice(&bytes).unwrap();
        back.locate(|name| Ok((dir.path().join(name), None)))
            .unwrap();
        let s = back.summary().unwrap();
        assert_eq!((s.values, s.distinct, s.once), (1003, 1000, 998));
        assert_eq!(s.examples, vec![(Value::Fixed(5), 3), (Value::Fixed(7), 2)]);
        // A spill folder goes with its last user.
        let folder = spill.folder().unwrap().path().to_path_buf();
        assert!(folder.exists());
        drop(a);
        drop(spill);
        assert!(!folder.exists());
        // A truncated file is an error naming it, not a wrong count.
        let p = dir.path().join("a.bin");
        let len = std::fs::metadata(&p).unwrap().len();
        let f = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
        f.set_len(len - 1).unwrap();
        let err = back.summary().unwrap_err().to_string();
        assert!(err.contains("a.bin"), "{err}");
    }
}
