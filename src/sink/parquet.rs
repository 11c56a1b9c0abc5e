//! Writing Parquet files: zstd, row groups, footer metadata, fsynced.

use std::fs::File;
use std::path::{Path, PathBuf};

use polars::prelude::*;

use crate::error::{Error, Kind, LayerError, Result};

/// The errors of the sink layer's file writer: Polars could not encode or write a
/// Parquet file (exit 1), with its error as the source.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("writing {}: {source}", .path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: PolarsError,
    },
}

impl LayerError for SinkError {
    fn kind(&self) -> Kind {
        Kind::Internal
    }
}

/// The error of writing `path`.
fn write_error(path: &Path) -> impl FnOnce(PolarsError) -> Error + '_ {
    move |source| {
        SinkError::Write {
            path: path.to_path_buf(),
            source,
        }
        .into()
    }
}

/// How Parquet files are written.
#[derive(Debug, Clone)]
pub struct ParquetOptions {
    pub zstd_level: i32,
    pub row_group_size: usize,
    /// Key-value pairs for the file footer.
    pub metadata: Vec<(String, String)>,
}

/// Writes `df` to `path` as one Parquet file and fsyncs it. Returns its size in bytes.
pub fn write_parquet(df: &mut DataFrame, path: &Path, opts: &ParquetOptions) -> Result<u64> {
    let file = File::create(path).map_err(|e| Error::io("create", path, e))?;
    let level = polars::polars_utils::compression::ZstdLevel::try_new(opts.zstd_level)
        .map_err(|e| Error::usage(format!("output.zstd_level: {e}")))?;
    ParquetWriter::new(&file)
        .with_compression(ParquetCompression::Zstd(Some(level)))
        .with_statistics(StatisticsOptions::default())
        .with_row_group_size(Some(opts.row_group_size))
        .with_key_value_metadata(Some(KeyValueMetadata::from_static(opts.metadata.clone())))
        .finish(df)
        .map_err(write_error(path))?;
    file.sync_all().map_err(|e| Error::io("sync", path, e))?;
    Ok(file.metadata().map(|m| m.len()).unwrap_or(0))
}

/// A Parquet file written batch by batch (each batch one or more row groups).
pub struct BatchWriter {
    path: PathBuf,
    file: File,
    inner: polars::io::parquet::write::BatchedWriter<File>,
}

impl BatchWriter {
    /// Creates `path` for frames of `schema`.
    pub fn create(path: &Path, schema: &Schema, opts: &ParquetOptions) -> Result<Self> {
        let file = File::create(path).map_err(|e| Error::io("create", path, e))?;
        let handle = file.try_clone().map_err(|e| Error::io("open", path, e))?;
        let level = polars::polars_utils::compression::ZstdLevel::try_new(opts.zstd_level)
            .map_err(|e| Error::usage(format!("output.zstd_level: {e}")))?;
        let inner = ParquetWriter::new(handle)
            .with_compression(ParquetCompression::Zstd(Some(level)))
            .with_statistics(StatisticsOptions::default())
            .with_row_group_size(Some(opts.row_group_size))
            .with_key_value_metadata(Some(KeyValueMetadata::from_static(opts.metadata.clone())))
            .batched(schema)
            .map_err(write_error(path))?;
        Ok(Self {
            path: path.to_path_buf(),
            file,
            inner,
        })
    }

    /// Appends a frame (same schema as at creation).
    pub fn write(&mut self, df: &mut DataFrame) -> Result<()> {
        df.rechunk_mut_par();
        self.inner.write_batch(df).map_err(write_error(&self.path))
    }

    /// Writes the footer and fsyncs. Returns the file size in bytes.
    pub fn finish(self) -> Result<u64> {
        self.inner.finish().map_err(write_error(&self.path))?;
        self.file
            .sync_all()
            .map_err(|e| Error::io("sync", &self.path, e))?;
        Ok(self.file.metadata().map(|m| m.len()).unwrap_or(0))
    }
}
