//! Where a registry's files live: a local folder, or an object store (`s3://`,
//! `gs://`, `az://`, `file://` URL; credentials and endpoint from object_store's
//! standard environment variables, e.g. `AWS_ACCESS_KEY_ID`, `AWS_ENDPOINT`,
//! `AWS_ALLOW_HTTP`).
//!
//! The layout is the same in both (`<name>/<version>/…`, `<name>/_aliases/<alias>.json`,
//! `<name>/_audit.jsonl`); what makes each operation safe differs:
//!
//! | operation | folder | object store |
//! |---|---|---|
//! | register a version | copy to a temporary folder, `rename(2)` into place (fails if the version exists) | create `<version>/.claim` with a conditional PUT (`If-None-Match: *`): exactly one registration wins; upload the files, `bundle.yaml` last — a version exists once its `bundle.yaml` does |
//! | move an alias | write a file, rename it over the old one | one PUT of the pointer object (objects are replaced whole) |
//! | append to the audit log | one `O_APPEND` write of one line | read the log with its ETag, PUT it back with `If-Match`; retry when another writer came first |
//! | open a version | the folder itself | download once into `$SCORCH_CACHE/registry/…` (a folder renamed into place when complete); the bundle's hashes are verified at every open |

use std::path::{Path, PathBuf};

use object_store::path::Path as ObjPath;
use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion};

use crate::error::{Error, Result};
use crate::storage::Store;

/// A registry's storage.
#[derive(Debug, Clone)]
pub enum Backend {
    Local(PathBuf),
    Remote {
        /// The registry URL (for messages; no credentials in it).
        url: String,
        store: Box<Store>,
        prefix: ObjPath,
        /// Local copies of downloaded versions.
        cache: PathBuf,
    },
}

/// The folder downloaded versions are kept in: `$SCORCH_CACHE/registry`, else
/// `~/.cache/scorch/registry`.
fn cache_root() -> PathBuf {
    std::env::var_os("SCORCH_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| ".".into()))
                .join(".cache/scorch")
        })
        .join("registry")
}

fn remote_err(what: String) -> impl FnOnce(object_store::Error) -> Error {
    move |e| crate::storage::runtime_error(&what, e)
}

impl Backend {
    /// A URL is an object-store registry; anything else a folder.
    pub fn open(location: &str) -> Result<Self> {
        if !crate::storage::is_url(location) {
            return Ok(Backend::Local(PathBuf::from(location)));
        }
        let url = location.trim_end_matches('/').to_string();
        let (store, prefix) = crate::storage::open(&url, &crate::storage::Settings::default())?;
        use sha2::Digest;
        let cache = cache_root().join(&hex::encode(sha2::Sha256::digest(url.as_bytes()))[..16]);
        Ok(Backend::Remote {
            url,
            store: Box::new(store),
            prefix,
            cache,
        })
    }

    /// Where the registry is, for messages.
    pub fn display(&self) -> String {
        match self {
            Backend::Local(p) => p.display().to_string(),
            Backend::Remote { url, .. } => url.clone(),
        }
    }

    fn obj(prefix: &ObjPath, rel: &[&str]) -> ObjPath {
        rel.iter()
            .fold(prefix.clone(), |p, part| p.clone().join(*part))
    }

    /// Names of the sub-folders of `rel`.
    pub fn dirs(&self, rel: &[&str]) -> Result<Vec<String>> {
        self.list(rel, true)
    }

    /// Names of the files in `rel`.
    pub fn files(&self, rel: &[&str]) -> Result<Vec<String>> {
        self.list(rel, false)
    }

    /// Names of the sub-folders (`dirs`) or files of `rel`, sorted.
    fn list(&self, rel: &[&str], dirs: bool) -> Result<Vec<String>> {
        let mut out: Vec<String> = match self {
            Backend::Local(root) => {
                let dir = rel.iter().fold(root.clone(), |p, r| p.join(r));
                let Ok(rd) = std::fs::read_dir(&dir) else {
                    return Ok(vec![]);
                };
                rd.flatten()
                    .filter(|e| e.path().is_dir() == dirs)
                    .map(|e| e.file_name().to_string_lossy().to_string())
                    .collect()
            }
            Backend::Remote {
                url, store, prefix, ..
            } => {
                let at = Self::obj(prefix, rel);
                let listing = crate::storage::runtime()?
                    .block_on(store.store.list_with_delimiter(Some(&at)))
                    .map_err(remote_err(format!("listing {url}/{}", rel.join("/"))))?;
                if dirs {
                    listing
                        .common_prefixes
                        .iter()
                        .filter_map(|p| p.filename().map(str::to_string))
                        .collect()
                } else {
                    listing
                        .objects
                        .iter()
                        .filter_map(|o| o.location.filename().map(str::to_string))
                        .collect()
                }
            }
        };
        out.sort();
        Ok(out)
    }

    /// The bytes of a file and its version tag (ETag); `None` when it does not exist.
    pub fn read(&self, rel: &[&str]) -> Result<Option<(Vec<u8>, Option<String>)>> {
        match self {
            Backend::Local(root) => {
                let p = rel.iter().fold(root.clone(), |p, r| p.join(r));
                match std::fs::read(&p) {
                    Ok(b) => Ok(Some((b, None))),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(Error::io("read", &p, e)),
                }
            }
            Backend::Remote {
                url, store, prefix, ..
            } => {
                let at = Self::obj(prefix, rel);
                let rt = crate::storage::runtime()?;
                match rt.block_on(store.store.get(&at)) {
                    Ok(r) => {
                        let etag = r.meta.e_tag.clone();
                        let bytes = rt
                            .block_on(r.bytes())
                            .map_err(remote_err(format!("reading {url}/{}", rel.join("/"))))?;
                        Ok(Some((bytes.to_vec(), etag)))
                    }
                    Err(object_store::Error::NotFound { .. }) => Ok(None),
                    Err(e) => Err(crate::storage::runtime_error(
                        &format!("reading {url}/{}", rel.join("/")),
                        e,
                    )),
                }
            }
        }
    }

    /// Replaces a file whole: readers see the old content or the new, never a part.
    pub fn write(&self, rel: &[&str], bytes: &[u8]) -> Result<()> {
        match self {
            Backend::Local(root) => {
                let p = rel.iter().fold(root.clone(), |p, r| p.join(r));
                if let Some(d) = p.parent() {
                    std::fs::create_dir_all(d).map_err(|e| Error::io("create", d, e))?;
                }
                crate::storage::write_file_atomic(&p, bytes)
            }
            Backend::Remote { .. } => self.put(rel, bytes, PutMode::Overwrite).map(|_| ()),
        }
    }

    /// A remote PUT; `Ok(false)` when its precondition failed (the object exists, or
    /// changed since it was read).
    fn put(&self, rel: &[&str], bytes: &[u8], mode: PutMode) -> Result<bool> {
        let Backend::Remote {
            url, store, prefix, ..
        } = self
        else {
            unreachable!("remote only")
        };
        let at = Self::obj(prefix, rel);
        let opts = PutOptions {
            mode,
            ..Default::default()
        };
        match crate::storage::runtime()?.block_on(store.store.put_opts(
            &at,
            PutPayload::from(bytes.to_vec()),
            opts,
        )) {
            Ok(_) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. })
            | Err(object_store::Error::Precondition { .. }) => Ok(false),
            Err(e) => Err(crate::storage::runtime_error(
                &format!("writing {url}/{}", rel.join("/")),
                e,
            )),
        }
    }

    /// Appends one line to a log file (see the module table for how).
    pub fn append_line(&self, rel: &[&str], line: &str) -> Result<()> {
        match self {
            Backend::Local(root) => {
                use std::io::Write;
                let p = rel.iter().fold(root.clone(), |p, r| p.join(r));
                // One write of one line with O_APPEND: lines never interleave.
                let mut f = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&p)
                    .map_err(|e| Error::io("open", &p, e))?;
                f.write_all(line.as_bytes())
                    .and_then(|_| f.sync_all())
                    .map_err(|e| Error::io("write", &p, e))
            }
            Backend::Remote { url, .. } => {
                for _ in 0..20 {
                    let (mut bytes, mode) = match self.read(rel)? {
                        Some((b, etag)) => (
                            b,
                            PutMode::Update(UpdateVersion {
                                e_tag: etag,
                                version: None,
                            }),
                        ),
                        None => (vec![], PutMode::Create),
                    };
                    bytes.extend_from_slice(line.as_bytes());
                    if self.put(rel, &bytes, mode)? {
                        return Ok(());
                    }
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(Error::Internal(format!(
                    "{url}/{}: could not append after 20 tries (too many concurrent writers)",
                    rel.join("/")
                )))
            }
        }
    }

    /// Stores a bundle folder as `<name>/<version>`; `Ok(false)` when that version
    /// exists (or another registration of it won).
    pub fn add_version(&self, bundle: &Path, name: &str, version: &str) -> Result<bool> {
        match self {
            Backend::Local(root) => {
                let dir = root.join(name);
                let target = dir.join(version);
                if target.exists() {
                    return Ok(false);
                }
                std::fs::create_dir_all(&dir).map_err(|e| Error::io("create", &dir, e))?;
                let tmp = dir.join(format!(".tmp-{version}-{}", std::process::id()));
                let _ = std::fs::remove_dir_all(&tmp);
                copy_dir(bundle, &tmp)?;
                // rename(2) onto an existing non-empty folder fails: two registrations of
                // the same version cannot both succeed.
                if let Err(e) = std::fs::rename(&tmp, &target) {
                    let _ = std::fs::remove_dir_all(&tmp);
                    return if target.exists() {
                        Ok(false)
                    } else {
                        Err(Error::io("rename", &target, e))
                    };
                }
                Ok(true)
            }
            Backend::Remote { .. } => {
                let claim = format!("{} {}\n", super::now(), super::who());
                if !self.put(
                    &[name, version, ".claim"],
                    claim.as_bytes(),
                    PutMode::Create,
                )? {
                    return Ok(false);
                }
                let mut files = vec![];
                list_files(bundle, bundle, &mut files)?;
                // bundle.yaml last: the version exists once it does.
                files.sort_by_key(|f| f == Path::new(super::BUNDLE_FILE));
                for rel in files {
                    let src = bundle.join(&rel);
                    let bytes = std::fs::read(&src).map_err(|e| Error::io("read", &src, e))?;
                    let rel = rel.to_string_lossy().to_string();
                    let mut parts = vec![name, version];
                    parts.extend(rel.split('/'));
                    self.put(&parts, &bytes, PutMode::Overwrite)?;
                }
                Ok(true)
            }
        }
    }

    /// A local folder holding `<name>/<version>` (downloaded once for a remote registry).
    pub fn local_version(&self, name: &str, version: &str) -> Result<PathBuf> {
        match self {
            Backend::Local(root) => Ok(root.join(name).join(version)),
            Backend::Remote {
                url,
                store,
                prefix,
                cache,
            } => {
                let target = cache.join(name).join(version);
                if target.join(super::BUNDLE_FILE).is_file() {
                    return Ok(target);
                }
                let rt = crate::storage::runtime()?;
                let at = Self::obj(prefix, &[name, version]);
                let objects: Vec<object_store::ObjectMeta> = rt
                    .block_on(async {
                        use futures_util::TryStreamExt;
                        store.store.list(Some(&at)).try_collect().await
                    })
                    .map_err(remote_err(format!("listing {url}/{name}/{version}")))?;
                let parent = cache.join(name);
                std::fs::create_dir_all(&parent).map_err(|e| Error::io("create", &parent, e))?;
                let tmp = parent.join(format!(".tmp-{version}-{}", std::process::id()));
                let _ = std::fs::remove_dir_all(&tmp);
                for o in objects {
                    let Some(rel) = o.location.prefix_match(&at) else {
                        continue;
                    };
                    let rel: Vec<String> = rel.map(|p| p.as_ref().to_string()).collect();
                    if rel.first().is_some_and(|f| f == ".claim") {
                        continue;
                    }
                    let dst = rel.iter().fold(tmp.clone(), |p, r| p.join(r));
                    let bytes = rt
                        .block_on(async { store.store.get(&o.location).await?.bytes().await })
                        .map_err(remote_err(format!("downloading {url}/{}", o.location)))?;
                    if let Some(d) = dst.parent() {
                        std::fs::create_dir_all(d).map_err(|e| Error::io("create", d, e))?;
                    }
                    std::fs::write(&dst, &bytes).map_err(|e| Error::io("write", &dst, e))?;
                }
                if let Err(e) = std::fs::rename(&tmp, &target) {
                    let _ = std::fs::remove_dir_all(&tmp);
                    // Another process downloaded it meanwhile.
                    if !target.join(super::BUNDLE_FILE).is_file() {
                        return Err(Error::io("rename", &target, e));
                    }
                }
                Ok(target)
            }
        }
    }
}

/// Paths of the regular files under `dir`, relative to `base`.
fn list_files(base: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for e in std::fs::read_dir(dir).map_err(|e| Error::io("read", dir, e))? {
        let p = e.map_err(|e| Error::io("read", dir, e))?.path();
        if p.is_dir() {
            list_files(base, &p, out)?;
        } else {
            out.push(p.strip_prefix(base).expect("under base").to_path_buf());
        }
    }
    Ok(())
}

/// Copies a bundle folder (regular files, subfolders too).
fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).map_err(|e| Error::io("create", to, e))?;
    for e in std::fs::read_dir(from).map_err(|e| Error::io("read", from, e))? {
        let e = e.map_err(|e| Error::io("read", from, e))?;
        let (src, dst) = (e.path(), to.join(e.file_name()));
        if src.is_dir() {
            copy_dir(&src, &dst)?;
        } else {
            std::fs::copy(&src, &dst).map_err(|e| Error::io("copy", &src, e))?;
        }
    }
    Ok(())
}
