//! Object stores: `s3://`, `gs://`, `az://` / `abfs://` and `file://` URLs, through
//! the `object_store` crate (the same one Polars reads with).
//!
//! Credentials come from each cloud's standard environment variables
//! (`AWS_ACCESS_KEY_ID`, `GOOGLE_APPLICATION_CREDENTIALS`, `AZURE_STORAGE_ACCOUNT_NAME`,
//! …). A job may name a storage profile (`storage_profile:`) whose `options` are
//! object_store configuration keys (`aws_endpoint`, `aws_allow_http`, …) and whose
//! `retry` sets the backoff used for transient errors.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use object_store::path::Path as ObjPath;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt, RetryConfig};
use polars::io::cloud::CloudOptions;
use polars::prelude::PlRefPath;
use url::Url;

pub mod delta;
pub mod local;

pub use local::{
    SpillFolder, alive, create_temp_folder, pid_of, remove_dead_temp_folders, sha256_file,
    sync_dir, write_file_atomic,
};

use crate::error::{Error, Result};
use crate::spec::profiles::StorageProfile;
use crate::spec::template::{Redactor, TemplateVars, render};

/// True for strings that name an object-store location rather than a local path.
pub fn is_url(s: &str) -> bool {
    s.split_once("://").is_some_and(|(scheme, _)| {
        !scheme.is_empty() && scheme.chars().all(|c| c.is_ascii_alphanumeric())
    })
}

/// An opened object store and the configuration Polars needs to read from it.
#[derive(Clone)]
pub struct Store {
    pub store: Arc<dyn ObjectStore>,
    /// `scheme://bucket` (no path, no credentials).
    pub root: String,
    /// Options for Polars' readers (same keys and retry settings).
    pub cloud: CloudOptions,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Store({})", self.root)
    }
}

/// The rendered options and retry settings of a storage profile.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub options: Vec<(String, String)>,
    pub retry: RetryConfig,
}

/// Renders a storage profile's options (templates, `${ENV}` secrets).
pub fn settings(
    profile: Option<(&str, &StorageProfile)>,
    vars: &TemplateVars,
    red: &mut Redactor,
) -> Result<Settings> {
    let Some((name, p)) = profile else {
        return Ok(Settings::default());
    };
    let mut options = Vec::new();
    for (k, v) in &p.options {
        let r = render(v, vars)
            .map_err(|e| Error::usage(format!("profile `{name}` option `{k}`: {e}")))?;
        red.add(&r);
        if crate::spec::secret::is_credential_key(k) {
            red.add_secret(&r.value);
        }
        options.push((k.clone(), r.value));
    }
    let retry = RetryConfig {
        backoff: object_store::BackoffConfig {
            init_backoff: Duration::from_millis(p.retry.initial_backoff_ms),
            max_backoff: Duration::from_secs(p.retry.max_backoff_s),
            base: 2.0,
        },
        max_retries: p.retry.max_retries,
        retry_timeout: Duration::from_secs(p.retry.timeout_s),
    };
    Ok(Settings { options, retry })
}

/// A runtime for object-store calls made from synchronous code.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Internal(format!("cannot start the async runtime: {e}")))
}

/// Opens the store of `url` and returns it with the object path the URL points at.
pub fn open(url: &str, s: &Settings) -> Result<(Store, ObjPath)> {
    let parsed = Url::parse(url).map_err(|e| Error::usage(format!("`{url}` is not a URL: {e}")))?;
    let bad_key = |k: &str| {
        Error::usage(format!(
            "storage option `{k}` is not an object_store configuration key for {}://",
            parsed.scheme()
        ))
    };
    // Each cloud's builder: environment first, then the URL, then the profile's
    // options (unknown keys are errors), then the retry settings.
    macro_rules! build {
        ($builder:ty) => {{
            let mut b = <$builder>::from_env().with_url(url);
            for (k, v) in &s.options {
                b = b.with_config(k.to_ascii_lowercase().parse().map_err(|_| bad_key(k))?, v);
            }
            Arc::new(
                b.with_retry(s.retry.clone())
                    .build()
                    .map_err(|e| store_error(url, e))?,
            )
        }};
    }
    let store: Arc<dyn ObjectStore> = match parsed.scheme() {
        "s3" | "s3a" => build!(object_store::aws::AmazonS3Builder),
        "gs" | "gcs" => build!(object_store::gcp::GoogleCloudStorageBuilder),
        "az" | "azure" | "abfs" | "abfss" | "adl" => {
            build!(object_store::azure::MicrosoftAzureBuilder)
        }
        "file" => Arc::new(object_store::local::LocalFileSystem::new()),
        other => {
            return Err(Error::usage(format!(
                "`{url}`: unsupported scheme `{other}://` (use s3://, gs://, az://, abfs:// or file://)"
            )));
        }
    };
    let path = ObjPath::from_url_path(parsed.path().trim_start_matches('/'))
        .map_err(|e| Error::usage(format!("`{url}`: bad object path: {e}")))?;
    let root = match parsed.host_str() {
        Some(h) => format!("{}://{h}", parsed.scheme()),
        None => format!("{}://", parsed.scheme()),
    };
    let mut cloud = CloudOptions::from_untyped_config(
        polars::prelude::CloudScheme::from_path(url),
        s.options.iter().map(|(k, v)| (k.as_str(), v.clone())),
    )
    .map_err(|e| Error::usage(format!("`{url}`: {e}")))?;
    cloud.retry_config = polars::io::cloud::CloudRetryConfig {
        max_retries: Some(s.retry.max_retries),
        retry_timeout: Some(s.retry.retry_timeout),
        retry_init_backoff: Some(s.retry.backoff.init_backoff),
        retry_max_backoff: Some(s.retry.backoff.max_backoff),
        retry_base_multiplier: None,
    };
    Ok((Store { store, root, cloud }, path))
}

fn store_error(url: &str, e: object_store::Error) -> Error {
    Error::usage(format!("cannot open object store for `{url}`: {e}"))
}

/// The errors of the storage layer: an object-store operation that failed (after
/// retries), with the `object_store` error as its source.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The object or bucket does not exist (exit 3).
    #[error("{what}: not found: {source}")]
    NotFound {
        what: String,
        #[source]
        source: object_store::Error,
    },
    /// The store refused the credentials or the operation (exit 2).
    #[error("{what}: access denied: {source}")]
    Denied {
        what: String,
        #[source]
        source: object_store::Error,
    },
    /// Any other failure of the store (exit 1).
    #[error("{what}: {source}")]
    Store {
        what: String,
        #[source]
        source: object_store::Error,
    },
}

impl crate::error::LayerError for StorageError {
    fn kind(&self) -> crate::error::Kind {
        use crate::error::Kind;
        match self {
            StorageError::NotFound { .. } => Kind::DataContract,
            StorageError::Denied { .. } => Kind::Config,
            StorageError::Store { .. } => Kind::Internal,
        }
    }
}

/// Maps an object-store error at run time (after retries) to scorch's codes;
/// `what` says what was being done (`reading s3://…`).
pub fn runtime_error(what: &str, e: object_store::Error) -> Error {
    let what = what.to_string();
    match &e {
        object_store::Error::NotFound { .. } => StorageError::NotFound { what, source: e },
        object_store::Error::PermissionDenied { .. }
        | object_store::Error::Unauthenticated { .. } => StorageError::Denied { what, source: e },
        _ => StorageError::Store { what, source: e },
    }
    .into()
}

fn glob_start(s: &str) -> Option<usize> {
    s.find(['*', '?', '['])
}

fn hidden_part(p: &str) -> bool {
    p.starts_with('_') || p.starts_with('.')
}

/// Lists the Parquet objects a URL names: one object, a "folder" (every `*.parquet`
/// below it), or a glob (`*`, `**`, `?`, `[..]` in the path). Objects and folders whose
/// name starts with `_` or `.` are skipped, as for local paths. Sorted by key.
pub fn list_parquet(url: &str, s: &Settings) -> Result<(Store, Vec<ObjectMeta>)> {
    let (store, path) = open(url, s)?;
    let key = path.as_ref().to_string();
    let rt = runtime()?;
    let found: Vec<ObjectMeta> = rt.block_on(async {
        let (prefix, pattern) = match glob_start(&key) {
            Some(g) => {
                let cut = key[..g].rfind('/').map(|i| &key[..i]).unwrap_or("");
                let pat = glob::Pattern::new(&key)
                    .map_err(|e| Error::usage(format!("bad glob `{url}`: {e}")))?;
                (ObjPath::from(cut), Some(pat))
            }
            None => {
                if let Ok(meta) = store.store.head(&path).await {
                    return Ok(vec![meta]);
                }
                (path.clone(), None)
            }
        };
        let mut out = Vec::new();
        let mut listing = store.store.list(Some(&prefix));
        while let Some(item) = listing.next().await {
            let meta = item.map_err(|e| runtime_error(&format!("listing `{url}`"), e))?;
            let k = meta.location.as_ref();
            let rel = k
                .strip_prefix(prefix.as_ref())
                .unwrap_or(k)
                .trim_start_matches('/');
            if rel.split('/').any(hidden_part) {
                continue;
            }
            let ok = match &pattern {
                Some(p) => p.matches_with(
                    k,
                    glob::MatchOptions {
                        case_sensitive: true,
                        require_literal_separator: true,
                        require_literal_leading_dot: false,
                    },
                ),
                None => k.ends_with(".parquet"),
            };
            if ok {
                out.push(meta);
            }
        }
        Ok::<_, Error>(out)
    })?;
    let mut found = found;
    found.sort_by(|a, b| a.location.as_ref().cmp(b.location.as_ref()));
    if found.is_empty() {
        return Err(Error::DataContract(format!(
            "no Parquet files match `{url}`"
        )));
    }
    Ok((store, found))
}

/// The full URL of an object of `store`, for Polars.
pub fn object_url(store: &Store, meta: &ObjectMeta) -> PlRefPath {
    PlRefPath::new(format!("{}/{}", store.root, meta.location.as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain_has_store_error(e: &Error) -> bool {
        let mut at: Option<&dyn std::error::Error> = Some(e);
        while let Some(x) = at {
            if x.downcast_ref::<object_store::Error>().is_some() {
                return true;
            }
            at = x.source();
        }
        false
    }

    #[test]
    fn store_errors_keep_their_code_their_message_and_their_source() {
        use crate::error::ExitCode;
        let not_found = object_store::Error::NotFound {
            path: "k".into(),
            source: "no such key".into(),
        };
        let text = not_found.to_string();
        let e = runtime_error("reading s3://b/k", not_found);
        assert_eq!(e.exit_code(), ExitCode::DataContract);
        assert_eq!(
            e.to_string(),
            format!("data contract: reading s3://b/k: not found: {text}")
        );
        assert!(chain_has_store_error(&e));
        let denied = object_store::Error::Unauthenticated {
            path: "k".into(),
            source: "bad signature".into(),
        };
        let text = denied.to_string();
        let e = runtime_error("writing s3://b/k", denied).context("table t");
        assert_eq!(e.exit_code(), ExitCode::Config);
        assert_eq!(
            e.to_string(),
            format!("table t: writing s3://b/k: access denied: {text}")
        );
        assert!(chain_has_store_error(&e));
        let other = object_store::Error::Generic {
            store: "S3",
            source: "connection reset".into(),
        };
        let e = runtime_error("listing s3://b/", other);
        assert_eq!(e.exit_code(), ExitCode::Internal);
        assert!(e.to_string().starts_with("listing s3://b/: "), "{e}");
        assert!(chain_has_store_error(&e));
    }
}
