//! Bounded Parquet reading for a run: file by file, one row group at a time, in
//! input order.
//!
//! Polars' streaming scan decodes row groups well ahead of a slow consumer (here: the
//! model), so its memory grows with the input. This reader decodes one row group
//! when the pipeline asks for it, with Polars' own Parquet decoder (columns in
//! parallel), so a run holds a row group and the chunks in flight, whatever the input
//! size. Object-store files are fetched whole, the next two while the current one is
//! decoded: memory is bounded by three times the largest input file.

use std::path::PathBuf;
use std::sync::Arc;

use polars::prelude::*;

use crate::error::{Error, Kind, LayerError, Result};
use crate::storage::Store;

/// The errors of reading Parquet files, with the library error as the source.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// A row group could not be decoded (exit 3: the file is not what it claims).
    #[error("{name}: cannot read row group: {source}")]
    RowGroup {
        name: String,
        #[source]
        source: PolarsError,
    },
    /// A local file could not be mapped into memory (exit 1).
    #[error("cannot map {}: {source}", .path.display())]
    Map {
        path: PathBuf,
        #[source]
        source: PolarsError,
    },
}

impl LayerError for SourceError {
    fn kind(&self) -> Kind {
        match self {
            SourceError::RowGroup { .. } => Kind::DataContract,
            SourceError::Map { .. } => Kind::Internal,
        }
    }
}

/// One input file.
#[derive(Debug, Clone)]
pub enum FileRef {
    Local(PathBuf),
    Object {
        /// The object's key in its store.
        path: object_store::path::Path,
        /// Its full URL (may hold secrets only through the redactor's values).
        url: String,
    },
}

impl FileRef {
    /// The path or URL, for messages.
    pub fn name(&self) -> String {
        match self {
            FileRef::Local(p) => p.display().to_string(),
            FileRef::Object { url, .. } => url.clone(),
        }
    }
}

/// The Parquet files of a source and the schema they are read into.
#[derive(Clone)]
pub struct ParquetFiles {
    pub files: Vec<FileRef>,
    /// Hive partition folders (`k=v`) become columns.
    pub hive: bool,
    /// The schema of the scan over all files (hive columns included).
    pub schema: Schema,
    /// The store of object-store files.
    pub store: Option<Store>,
    /// Read only the rows `[start, end)` of the files in order (a shard's share).
    pub range: Option<(u64, u64)>,
    /// With `range`: each file's first row in the whole input (from the footers).
    pub offsets: Vec<u64>,
}

/// Rows of each of `files`, from their footers. Object-store files (on `store`):
/// two ranged reads each (the footer's length, then the footer), all files at once.
pub fn footer_rows(files: &[FileRef], store: Option<&Store>) -> Result<Vec<u64>> {
    let bad = |name: String, e: &dyn std::fmt::Display| {
        Error::DataContract(format!("{name} is not a readable Parquet file: {e}"))
    };
    let mut rows = vec![0u64; files.len()];
    let mut remote = Vec::new();
    for (i, f) in files.iter().enumerate() {
        match f {
            FileRef::Local(p) => {
                let file = std::fs::File::open(p).map_err(|e| Error::io("open", p, e))?;
                rows[i] = ParquetReader::new(file)
                    .num_rows()
                    .map_err(|e| bad(f.name(), &e))? as u64;
            }
            FileRef::Object { path, .. } => remote.push((i, path.clone())),
        }
    }
    if remote.is_empty() {
        return Ok(rows);
    }
    let store = store.expect("object-store files have a store");
    let footers = crate::storage::runtime()?.block_on(async {
        let reads = remote.iter().map(|(_, path)| {
            let store = store.store.clone();
            async move { parquet_footer(&*store, path).await }
        });
        futures_util::future::join_all(reads).await
    });
    for ((i, _), footer) in remote.iter().zip(footers) {
        let name = files[*i].name();
        let footer = footer.map_err(|e| match e {
            FooterError::Store(e) => crate::storage::runtime_error(&format!("reading {name}"), e),
            FooterError::Format(e) => bad(name.clone(), &e),
        })?;
        rows[*i] = ParquetReader::new(std::io::Cursor::new(footer))
            .num_rows()
            .map_err(|e| bad(name, &e))? as u64;
    }
    Ok(rows)
}

/// The bytes of a file, ready for the decoder: a local file mapped once (not once
/// per row group, which would fault its pages in again each time), or an object
/// fetched whole.
#[derive(Clone)]
enum Bytes {
    Mapped(Arc<polars::polars_utils::mmap::MMapSemaphore>),
    Fetched(bytes::Bytes),
}

impl AsRef<[u8]> for Bytes {
    fn as_ref(&self) -> &[u8] {
        match self {
            Bytes::Mapped(m) => m.as_ref().as_ref(),
            Bytes::Fetched(b) => b.as_ref(),
        }
    }
}

type Opened = std::io::Cursor<Bytes>;

impl ParquetFiles {
    /// Rows of each file, from the footers. Object-store files: two ranged reads
    /// each (the footer's length, then the footer), all files at once.
    pub fn file_rows(&self) -> Result<Vec<u64>> {
        footer_rows(&self.files, self.store.as_ref())
    }

    /// Total rows, from the footers, when the files are local (object stores: `None`,
    /// to avoid a request per file before the run starts).
    pub fn total_rows(&self) -> Option<u64> {
        let mut total = 0u64;
        for f in &self.files {
            let FileRef::Local(p) = f else { return None };
            let file = std::fs::File::open(p).ok()?;
            total += ParquetReader::new(file).num_rows().ok()? as u64;
        }
        Some(total)
    }

    /// Reads `columns` (in this order) as frames of one row group each.
    pub fn row_groups(&self, columns: &[String]) -> Result<RowGroups> {
        for c in columns {
            if self.schema.get(c.as_str()).is_none() {
                return Err(Error::DataContract(format!(
                    "column `{c}` is not in the input"
                )));
            }
        }
        let runtime = match &self.store {
            Some(_) => Some(Arc::new(
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .thread_name("scorch-fetch")
                    .enable_all()
                    .build()
                    .map_err(|e| Error::Internal(format!("cannot start the async runtime: {e}")))?,
            )),
            None => None,
        };
        // With a row range, each file's first row in the whole input, so files and
        // row groups outside the range are never read.
        let offsets = self.offsets.clone();
        if self.range.is_some() && offsets.len() != self.files.len() {
            return Err(Error::Internal("a row range without file offsets".into()));
        }
        Ok(RowGroups {
            set: self.clone(),
            columns: columns.to_vec(),
            next_file: 0,
            current: None,
            prefetch: std::collections::VecDeque::new(),
            runtime,
            offsets,
        })
    }
}

/// Object-store files downloaded ahead of the one being decoded. Memory is bounded
/// by (1 + this) × the largest input file.
const PREFETCH_FILES: usize = 2;

type Fetch = tokio::task::JoinHandle<std::result::Result<bytes::Bytes, object_store::Error>>;

/// The file being read.
struct Current {
    index: usize,
    opened: Opened,
    metadata: polars::io::parquet::metadata::FileMetadataRef,
    /// Columns to read from the file itself (the rest come from hive folders).
    file_columns: Vec<String>,
    /// Hive columns of this file: name and value (already of the schema's type).
    hive: Vec<Column>,
    next_group: usize,
    group_start: usize,
}

/// Iterator over the row groups of all files, in order.
pub struct RowGroups {
    set: ParquetFiles,
    columns: Vec<String>,
    next_file: usize,
    current: Option<Current>,
    /// Object-store downloads in flight, in file order.
    prefetch: std::collections::VecDeque<(usize, Fetch)>,
    runtime: Option<Arc<tokio::runtime::Runtime>>,
    /// With `set.range`: each file's first row in the whole input.
    offsets: Vec<u64>,
}

impl RowGroups {
    /// Whether file `index` holds rows of the range (always, without one).
    fn in_range(&self, index: usize) -> bool {
        let Some((start, end)) = self.set.range else {
            return true;
        };
        let first = self.offsets[index];
        let next = self.offsets.get(index + 1).copied().unwrap_or(u64::MAX);
        next > start && first < end
    }

    fn start_fetch(&mut self, index: usize) {
        let (Some(rt), Some(store), Some(FileRef::Object { path, .. })) =
            (&self.runtime, &self.set.store, self.set.files.get(index))
        else {
            return;
        };
        if !self.in_range(index) {
            return;
        }
        let store = store.store.clone();
        let path = path.clone();
        let handle = rt.spawn(async move {
            use object_store::ObjectStoreExt;
            store.get(&path).await?.bytes().await
        });
        self.prefetch.push_back((index, handle));
    }

    fn open(&mut self, index: usize) -> Result<Current> {
        let file = &self.set.files[index];
        let name = file.name();
        let opened = match file {
            FileRef::Local(p) => {
                let f = std::fs::File::open(p).map_err(|e| Error::io("open", p, e))?;
                let map = polars::polars_utils::mmap::MMapSemaphore::new_from_file(&f).map_err(
                    |source| SourceError::Map {
                        path: p.clone(),
                        source,
                    },
                )?;
                std::io::Cursor::new(Bytes::Mapped(Arc::new(map)))
            }
            FileRef::Object { .. } => {
                // This file and the next PREFETCH_FILES download concurrently with
                // the decoding of this one.
                if self.prefetch.front().is_none_or(|(i, _)| *i != index) {
                    self.prefetch.clear();
                }
                let mut next = self.prefetch.back().map_or(index, |(i, _)| i + 1);
                while next <= index + PREFETCH_FILES {
                    self.start_fetch(next);
                    next += 1;
                }
                let (_, handle) = self.prefetch.pop_front().expect("fetch started");
                let rt = self
                    .runtime
                    .clone()
                    .expect("object-store files have a runtime");
                let bytes = rt
                    .block_on(handle)
                    .map_err(|e| Error::Internal(format!("fetching {name}: {e}")))?
                    .map_err(|e| crate::storage::runtime_error(&format!("reading {name}"), e))?;
                std::io::Cursor::new(Bytes::Fetched(bytes))
            }
        };
        let bad = |e: PolarsError| {
            Error::DataContract(format!("{name} is not a readable Parquet file: {e}"))
        };
        let (metadata, file_schema) = {
            let mut r = ParquetReader::new(opened.clone());
            (
                r.get_metadata().map_err(bad)?.clone(),
                r.schema().map_err(bad)?,
            )
        };
        let hive_values = if self.set.hive {
            hive_values(&name)
        } else {
            vec![]
        };
        let mut file_columns = Vec::new();
        let mut hive = Vec::new();
        for c in &self.columns {
            if file_schema.get(c.as_str()).is_some() {
                file_columns.push(c.clone());
                continue;
            }
            let dtype = self.set.schema.get(c.as_str()).expect("checked").clone();
            match hive_values.iter().find(|(k, _)| k == c) {
                Some((_, v)) => {
                    let s = hive_series(c, v.as_deref(), &dtype).map_err(|e| {
                        Error::DataContract(format!(
                            "{name}: partition folder value {c}={} is not a {dtype}: {e}",
                            v.as_deref().unwrap_or("")
                        ))
                    })?;
                    hive.push(s.into_column());
                }
                None => {
                    return Err(Error::DataContract(format!(
                        "{name} has no column `{c}` (the other input files have it)"
                    )));
                }
            }
        }
        Ok(Current {
            index,
            opened,
            metadata,
            file_columns,
            hive,
            next_group: 0,
            group_start: 0,
        })
    }

    fn read_group(&mut self) -> Option<Result<DataFrame>> {
        let cur = self.current.as_mut()?;
        let (mut slice, mut rows);
        loop {
            let group = cur.metadata.row_groups.get(cur.next_group)?;
            rows = group.num_rows();
            slice = (cur.group_start, rows);
            cur.next_group += 1;
            cur.group_start += rows;
            let Some((start, end)) = self.set.range else {
                break;
            };
            // The group's rows in the whole input, clipped to the range.
            let g = self.offsets[cur.index] + slice.0 as u64;
            let lo = start.max(g);
            let hi = end.min(g + rows as u64);
            if g >= end {
                return None;
            }
            if lo < hi {
                slice = (slice.0 + (lo - g) as usize, (hi - lo) as usize);
                rows = slice.1;
                break;
            }
        }
        let name = self.set.files[cur.index].name();
        let read = |df: PolarsResult<DataFrame>| {
            df.map_err(|source| {
                Error::from(SourceError::RowGroup {
                    name: name.clone(),
                    source,
                })
            })
        };
        let mut r = ParquetReader::new(cur.opened.clone())
            .with_columns(Some(cur.file_columns.clone()))
            .with_slice(Some(slice))
            .read_parallel(ParallelStrategy::Columns);
        r.set_metadata(cur.metadata.clone());
        let df = read(r.finish());
        Some(df.and_then(|df| self.shape(df, rows, &name)))
    }

    /// Puts the columns in the asked order, adds hive columns and casts to the scan's types.
    fn shape(&self, df: DataFrame, rows: usize, name: &str) -> Result<DataFrame> {
        let cur = self.current.as_ref().expect("reading a file");
        let mut out = Vec::with_capacity(self.columns.len());
        for c in &self.columns {
            let want = self.set.schema.get(c.as_str()).expect("checked");
            let column = match cur.hive.iter().find(|h| h.name().as_str() == c) {
                Some(h) => h.new_from_index(0, rows),
                None => df.column(c.as_str())?.clone(),
            };
            let column = if column.dtype() == want {
                column
            } else {
                column.strict_cast(want).map_err(|e| {
                    Error::DataContract(format!(
                        "{name}: column `{c}` is {} here but {want} in the other input files: {e}",
                        column.dtype()
                    ))
                })?
            };
            out.push(column);
        }
        Ok(DataFrame::new(rows, out)?)
    }
}

impl Iterator for RowGroups {
    type Item = Result<DataFrame>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(r) = self.read_group() {
                return Some(r);
            }
            if self.next_file >= self.set.files.len() {
                if self.current.is_none() && self.next_file == 0 {
                    // No files at all: one empty frame, so the schema is seen.
                    self.next_file = 1;
                    return Some(self.empty());
                }
                self.current = None;
                return None;
            }
            let i = self.next_file;
            self.next_file += 1;
            if self.set.range.is_some() {
                // Files wholly outside the range are not opened.
                if !self.in_range(i) {
                    if self.next_file >= self.set.files.len() {
                        // Keep `next` from taking this for "no files at all".
                        self.current = None;
                        return None;
                    }
                    continue;
                }
            }
            match self.open(i) {
                Ok(c) => self.current = Some(c),
                Err(e) => {
                    self.next_file = self.set.files.len() + 1;
                    self.current = None;
                    return Some(Err(e));
                }
            }
        }
    }
}

impl RowGroups {
    fn empty(&self) -> Result<DataFrame> {
        let schema: Schema = self
            .columns
            .iter()
            .map(|c| {
                let dtype = self.set.schema.get(c.as_str()).expect("checked").clone();
                Field::new(c.as_str().into(), dtype)
            })
            .collect();
        Ok(DataFrame::empty_with_schema(&schema))
    }
}

/// A one-value column of `dtype` from a partition folder's text.
fn hive_series(name: &str, v: Option<&str>, dtype: &DataType) -> PolarsResult<Series> {
    if *dtype == DataType::Date {
        let days = v
            .map(|t| {
                chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d")
                    .map(|d| {
                        (d - chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid")).num_days()
                            as i32
                    })
                    .map_err(|e| polars_err!(ComputeError: "{e}"))
            })
            .transpose()?;
        return Series::new(name.into(), [days]).cast(&DataType::Date);
    }
    Series::new(name.into(), [v]).strict_cast(dtype)
}

/// The `k=v` folders of a path or URL, in order (`__HIVE_DEFAULT_PARTITION__` is null).
fn hive_values(name: &str) -> Vec<(String, Option<String>)> {
    let mut parts: Vec<&str> = name.split('/').collect();
    parts.pop(); // the file name
    parts
        .into_iter()
        .filter_map(|p| p.split_once('='))
        .filter(|(k, _)| !k.is_empty())
        .map(|(k, v)| {
            let v = percent_decode(v);
            let v = (v != "__HIVE_DEFAULT_PARTITION__").then_some(v);
            (k.to_string(), v)
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Ok(hex) = std::str::from_utf8(&b[i + 1..i + 3])
            && let Ok(v) = u8::from_str_radix(hex, 16)
        {
            out.push(v);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Why a Parquet footer could not be read.
enum FooterError {
    Store(object_store::Error),
    Format(String),
}

/// The footer of a Parquet object, framed as a minimal Parquet file (`PAR1`,
/// metadata, length, `PAR1`) that Polars' reader opens for the metadata alone.
async fn parquet_footer(
    store: &dyn object_store::ObjectStore,
    path: &object_store::path::Path,
) -> std::result::Result<Vec<u8>, FooterError> {
    use object_store::ObjectStoreExt;
    let size = store.head(path).await.map_err(FooterError::Store)?.size;
    if size < 12 {
        return Err(FooterError::Format(format!("{size} bytes is too short")));
    }
    let tail = store
        .get_range(path, size - 8..size)
        .await
        .map_err(FooterError::Store)?;
    if &tail[4..] != b"PAR1" {
        return Err(FooterError::Format("no PAR1 magic at its end".into()));
    }
    let len = u32::from_le_bytes(tail[..4].try_into().expect("4 bytes")) as u64;
    if len + 12 > size {
        return Err(FooterError::Format(format!(
            "footer length {len} exceeds the file's {size} bytes"
        )));
    }
    let footer = store
        .get_range(path, size - 8 - len..size)
        .await
        .map_err(FooterError::Store)?;
    let mut framed = Vec::with_capacity(footer.len() + 4);
    framed.extend_from_slice(b"PAR1");
    framed.extend_from_slice(&footer);
    Ok(framed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hive_folders_become_values() {
        let v = hive_values("s3://b/t/ds=2026-11-28/region=a%20b/part-0.parquet");
        assert_eq!(
            v,
            [
                ("ds".to_string(), Some("2026-11-28".to_string())),
                ("region".to_string(), Some("a b".to_string()))
            ]
        );
        let v = hive_values("/x/k=__HIVE_DEFAULT_PARTITION__/f=1.parquet");
        assert_eq!(v, [("k".to_string(), None)]);
    }
}
