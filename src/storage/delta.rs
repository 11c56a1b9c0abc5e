//! Where Delta Lake tables live: delta-rs log stores over scorch's own object
//! stores (the same `object_store` clients, credentials and retries as every other
//! URL of a job) or a local folder. The Delta sink (`crate::sink::delta`) and the
//! Delta source (`crate::source::delta`) open their tables here.

use std::path::Path;
use std::sync::{Arc, Once};

use deltalake_core::DeltaTableBuilder;
use deltalake_core::logstore::{
    LogStore, LogStoreFactory, LogStoreRef, ObjectStoreRef, StorageConfig, default_logstore,
    logstore_factories,
};

use crate::error::{Error, Result};

/// Where a Delta table is.
pub enum Place<'a> {
    /// A local folder (it must exist).
    Local(&'a Path),
    /// An object-store URL and the store it is on (rooted at its bucket).
    Remote(&'a str, &'a super::Store),
}

/// delta-rs ships log stores for `file://` and `memory://` only; scorch hands it
/// its own object stores, so it registers delta-rs's default log store (commits by
/// conditional PUT) for the cloud schemes.
struct ConditionalPutLogStore;

impl LogStoreFactory for ConditionalPutLogStore {
    fn with_options(
        &self,
        prefixed_store: ObjectStoreRef,
        root_store: ObjectStoreRef,
        location: &url::Url,
        options: &StorageConfig,
    ) -> deltalake_core::DeltaResult<Arc<dyn LogStore>> {
        Ok(default_logstore(
            prefixed_store,
            root_store,
            location,
            options,
        ))
    }
}

fn register_schemes() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        for scheme in ["s3", "s3a", "gs", "az", "abfs", "abfss"] {
            let url = url::Url::parse(&format!("{scheme}://")).expect("scheme URL");
            logstore_factories().insert(url, Arc::new(ConditionalPutLogStore));
        }
    });
}

/// The table's URL and, on an object store, the store to reach it through.
pub fn location(place: &Place<'_>) -> Result<(url::Url, Option<ObjectStoreRef>)> {
    register_schemes();
    match place {
        Place::Local(dir) => {
            let abs = dir
                .canonicalize()
                .map_err(|e| Error::io("resolve", dir, e))?;
            let url = url::Url::from_directory_path(&abs)
                .map_err(|_| Error::Internal(format!("{} is not a file URL", abs.display())))?;
            Ok((url, None))
        }
        Place::Remote(url, store) => {
            let u = url::Url::parse(url).map_err(|e| {
                Error::usage(format!("the Delta table URL {url} is not a URL: {e}"))
            })?;
            Ok((u, Some(store.store.clone())))
        }
    }
}

/// A builder of the table at `place`, on scorch's store.
pub fn builder(place: &Place<'_>) -> Result<DeltaTableBuilder> {
    let (url, store) = location(place)?;
    let shown = match place {
        Place::Local(d) => d.display().to_string(),
        Place::Remote(u, _) => u.to_string(),
    };
    let mut b = DeltaTableBuilder::from_url(url.clone())
        .map_err(|e| Error::Internal(format!("opening the Delta table {shown}: {e}")))?;
    if let Some(store) = store {
        b = b.with_storage_backend(store, url);
    }
    Ok(b)
}

/// The log store of the table at `place` (which need not exist yet).
pub fn log_store(place: &Place<'_>) -> Result<LogStoreRef> {
    builder(place)?
        .build_storage()
        .map_err(|e| Error::Internal(format!("opening a Delta table: {e}")))
}
