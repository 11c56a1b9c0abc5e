//! The model registry: a folder (by default the project's `models/`) holding
//!
//! - immutable bundles, `<root>/<name>/<version>/` (`scorch model register` copies a
//!   bundle in after checking it opens, and refuses an existing version);
//! - aliases (`champion`, `challenger`, any name) as small pointer files,
//!   `<root>/<name>/_aliases/<alias>.json`, replaced atomically (write, then rename);
//! - an append-only audit log, `<root>/<name>/_audit.jsonl`: one JSON line per
//!   register, promote or rollback (when, who, what, from → to, why).
//!
//! Jobs name a registered model as `model: churn@champion` (an alias) or
//! `model: churn@1.0.0` (a version); a plain path still names a bundle folder.

pub mod store;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::Bundle;

/// Where an alias points.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AliasPointer {
    pub version: String,
    /// RFC 3339 time of the change.
    pub updated_at: String,
    pub by: String,
    #[serde(default)]
    pub why: String,
}

/// One line of the audit log.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AuditEntry {
    pub at: String,
    pub by: String,
    /// `register`, `promote` or `rollback`.
    pub action: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    pub to: String,
    #[serde(default)]
    pub why: String,
}

/// A registry rooted at a folder or an object-store URL.
#[derive(Debug, Clone)]
pub struct Registry {
    /// The folder or URL, as given.
    pub root: PathBuf,
    backend: store::Backend,
}

/// The descriptor file of a bundle, whose presence makes a version registered.
const BUNDLE_FILE: &str = "bundle.yaml";

/// Who is acting when no `--by` is given: `$SCORCH_USER`, else `$USER` or
/// `$LOGNAME`, else the OS user of the process (its password-file entry, else
/// `uid <N>`): never `unknown`.
pub fn who() -> String {
    let env = ["SCORCH_USER", "USER", "LOGNAME"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.trim().is_empty()));
    env.unwrap_or_else(os_user)
}

/// The name of the process's effective user.
fn os_user() -> String {
    // SAFETY: getpwuid_r writes into the buffers given; the result points into `buf`.
    unsafe {
        let uid = libc::geteuid();
        let mut pwd: libc::passwd = std::mem::zeroed();
        let mut buf = vec![0 as libc::c_char; 4096];
        let mut out: *mut libc::passwd = std::ptr::null_mut();
        if libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut out) == 0
            && !out.is_null()
            && !pwd.pw_name.is_null()
        {
            let name = std::ffi::CStr::from_ptr(pwd.pw_name)
                .to_string_lossy()
                .to_string();
            if !name.is_empty() {
                return name;
            }
        }
        format!("uid {uid}")
    }
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A name or alias is a path segment: letters, digits, `.`, `_`, `-`, not leading `.`/`_`.
fn check_segment(what: &str, s: &str) -> Result<()> {
    let ok = !s.is_empty()
        && !s.starts_with(['.', '_'])
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(Error::usage(format!(
            "{what} {s:?} must be letters, digits, '.', '_' or '-', not starting with '.' or '_'"
        )))
    }
}

/// Splits `name@ref` (a version or an alias).
pub fn parse_ref(s: &str) -> Option<(&str, &str)> {
    let (name, r) = s.split_once('@')?;
    (!name.is_empty() && !r.is_empty()).then_some((name, r))
}

/// The errors of reading a registry's records (exit 4), with the parser's error
/// as the source.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// An alias pointer (`_aliases/<alias>.json`) is not valid JSON of a pointer.
    #[error("{at} is not an alias pointer: {source}")]
    Alias {
        at: String,
        #[source]
        source: serde_json::Error,
    },
    /// A line of the audit log is not a valid entry.
    #[error("{at}: {source}")]
    Audit {
        at: String,
        #[source]
        source: serde_json::Error,
    },
}

impl crate::error::LayerError for RegistryError {
    fn kind(&self) -> crate::error::Kind {
        crate::error::Kind::Model
    }
}

/// The bundle folder a job's `model:` names, relative to the project folder `root`:
/// a path, or `name@version` / `name@alias` in the registry (`$SCORCH_REGISTRY`, else
/// `<root>/models`).
pub fn bundle_dir(root: &Path, model: &str) -> Result<PathBuf> {
    let direct = root.join(model);
    match parse_ref(model) {
        Some((name, reference)) if !direct.exists() => Ok(Registry::open(&default_root(root))?
            .resolve(name, reference)?
            .0),
        _ => Ok(direct),
    }
}

/// The registry jobs use: `$SCORCH_REGISTRY` (a URL, or a folder relative to `root`),
/// else `<root>/models`.
pub fn default_root(root: &Path) -> PathBuf {
    located(root, std::env::var_os("SCORCH_REGISTRY").map(PathBuf::from))
        .unwrap_or_else(|| root.join("models"))
}

/// A registry location given relative to the project folder: URLs as they are.
pub fn located(root: &Path, location: Option<PathBuf>) -> Option<PathBuf> {
    location.map(|r| {
        if crate::storage::is_url(&r.to_string_lossy()) {
            r
        } else {
            root.join(r)
        }
    })
}

impl Registry {
    /// A registry in a local folder.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        let root = root.into();
        Registry {
            backend: store::Backend::Local(root.clone()),
            root,
        }
    }

    /// A registry at a folder or an object-store URL (`s3://bucket/models`, …).
    pub fn open(location: &Path) -> Result<Self> {
        Ok(Registry {
            backend: store::Backend::open(&location.to_string_lossy())?,
            root: location.to_path_buf(),
        })
    }

    fn place(&self) -> String {
        self.backend.display()
    }

    /// Model names (folders holding at least one version).
    pub fn names(&self) -> Result<Vec<String>> {
        let mut out = vec![];
        for name in self.backend.dirs(&[])? {
            if !name.starts_with(['.', '_']) && !self.versions(&name)?.is_empty() {
                out.push(name);
            }
        }
        Ok(out)
    }

    /// Registered versions of `name` (folders with a `bundle.yaml`).
    pub fn versions(&self, name: &str) -> Result<Vec<String>> {
        let mut out = vec![];
        for v in self.backend.dirs(&[name])? {
            if !v.starts_with(['.', '_'])
                && self
                    .backend
                    .files(&[name, &v])?
                    .iter()
                    .any(|f| f == BUNDLE_FILE)
            {
                out.push(v);
            }
        }
        Ok(out)
    }

    /// The aliases of `name`.
    pub fn aliases(&self, name: &str) -> Result<BTreeMap<String, AliasPointer>> {
        let mut out = BTreeMap::new();
        for file in self.backend.files(&[name, "_aliases"])? {
            let Some(alias) = file.strip_suffix(".json") else {
                continue;
            };
            let Some((bytes, _)) = self.backend.read(&[name, "_aliases", &file])? else {
                continue;
            };
            let p: AliasPointer =
                serde_json::from_slice(&bytes).map_err(|source| RegistryError::Alias {
                    at: format!("{}/{name}/_aliases/{file}", self.place()),
                    source,
                })?;
            out.insert(alias.to_string(), p);
        }
        Ok(out)
    }

    /// The bundle folder `name@reference` names (a version, else an alias), and the
    /// version. From an object store, the version is downloaded into a local cache.
    pub fn resolve(&self, name: &str, reference: &str) -> Result<(PathBuf, String)> {
        let versions = self.versions(name)?;
        if versions.is_empty() {
            return Err(Error::Model(format!(
                "no model {name:?} in the registry {} (register one with `scorch model register`)",
                self.place()
            )));
        }
        let version = if versions.iter().any(|v| v == reference) {
            reference.to_string()
        } else if let Some(p) = self.aliases(name)?.get(reference) {
            p.version.clone()
        } else {
            return Err(Error::Model(format!(
                "{name}@{reference}: neither a version ({}) nor an alias of {name} in {}",
                versions.join(", "),
                self.place()
            )));
        };
        Ok((self.backend.local_version(name, &version)?, version))
    }

    /// One line per model (`scorch model list`): its versions and aliases.
    pub fn listing(&self) -> Result<Vec<String>> {
        let mut lines = Vec::new();
        for name in self.names()? {
            let al: Vec<String> = self
                .aliases(&name)?
                .iter()
                .map(|(a, p)| format!("{a} -> {}", p.version))
                .collect();
            lines.push(format!(
                "{name}: versions {}; aliases {}",
                self.versions(&name)?.join(", "),
                if al.is_empty() {
                    "none".into()
                } else {
                    al.join(", ")
                }
            ));
        }
        Ok(lines)
    }

    /// What `scorch model show` prints: a model's versions, aliases and audit log,
    /// and for `name@ref` the version it resolves to and its bundle.
    pub fn show(&self, model: &str) -> Result<serde_json::Value> {
        let name = parse_ref(model).map_or(model, |(n, _)| n);
        let mut doc = serde_json::json!({
            "name": name,
            "versions": self.versions(name)?,
            "aliases": self.aliases(name)?,
            "audit": self.audit(name)?,
        });
        if let Some((n, reference)) = parse_ref(model) {
            let (dir, version) = self.resolve(n, reference)?;
            let b = crate::model::Bundle::open(&dir)?;
            doc["resolved"] = serde_json::json!({
                "version": version,
                "bundle": dir,
                "description": b.spec.description,
                "model_sha256": b.spec.model_sha256,
                "features": b.spec.features.len(),
            });
        }
        Ok(doc)
    }

    /// The audit log of `name`, oldest first.
    pub fn audit(&self, name: &str) -> Result<Vec<AuditEntry>> {
        let Some((bytes, _)) = self.backend.read(&[name, "_audit.jsonl"])? else {
            return Ok(vec![]);
        };
        String::from_utf8_lossy(&bytes)
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| {
                serde_json::from_str(l).map_err(|source| {
                    Error::from(RegistryError::Audit {
                        at: format!("{}/{name}/_audit.jsonl line {}", self.place(), i + 1),
                        source,
                    })
                })
            })
            .collect()
    }

    fn append_audit(&self, e: &AuditEntry) -> Result<()> {
        let mut line = serde_json::to_string(e).expect("audit entry serializes");
        line.push('\n');
        self.backend.append_line(&[&e.name, "_audit.jsonl"], &line)
    }

    /// Copies the bundle at `bundle` into the registry as `<name>/<version>` (from its
    /// `bundle.yaml`), after checking it opens (hashes, pins). Refuses an existing version.
    pub fn register(&self, bundle: &Path, why: &str, by: &str) -> Result<(String, String)> {
        let b = Bundle::open(bundle)?;
        let (name, version) = (b.spec.name.clone(), b.spec.version.clone());
        check_segment("model name", &name)?;
        check_segment("version", &version)?;
        if self.versions(&name)?.contains(&version) {
            return Err(Error::usage(format!(
                "{name}@{version} is already registered in {}; registered versions are immutable: \
                 give the bundle a new version",
                self.place()
            )));
        }
        if !self.backend.add_version(bundle, &name, &version)? {
            return Err(Error::usage(format!(
                "{name}@{version} was registered meanwhile (or a registration of it did not \
                 finish: see {}/{name}/{version}); registered versions are immutable",
                self.place()
            )));
        }
        self.append_audit(&AuditEntry {
            at: now(),
            by: by.into(),
            action: "register".into(),
            name: name.clone(),
            alias: None,
            from: None,
            to: version.clone(),
            why: why.into(),
        })?;
        Ok((name, version))
    }

    fn set_alias(
        &self,
        name: &str,
        alias: &str,
        version: &str,
        why: &str,
        by: &str,
        action: &str,
    ) -> Result<Option<String>> {
        check_segment("alias", alias)?;
        if !self.versions(name)?.iter().any(|v| v == version) {
            return Err(Error::usage(format!(
                "{name}@{version} is not registered in {}",
                self.place()
            )));
        }
        // Every hash of the version (model file, preprocessing state, reference
        // profile) is verified before an alias points at it: a file changed after
        // registration is found now, not by the next nightly run.
        let (dir, _) = self.resolve(name, version)?;
        Bundle::open(&dir).map_err(|e| {
            Error::Model(format!(
                "refusing to {action} {name}@{alias} to {version}: {}",
                e.to_string().trim_start_matches("model bundle: ")
            ))
        })?;
        let previous = self.aliases(name)?.get(alias).map(|p| p.version.clone());
        let pointer = AliasPointer {
            version: version.into(),
            updated_at: now(),
            by: by.into(),
            why: why.into(),
        };
        let text = serde_json::to_string_pretty(&pointer).expect("pointer serializes");
        // Replaced whole: a reader sees the old pointer or the new one, never half.
        self.backend.write(
            &[name, "_aliases", &format!("{alias}.json")],
            text.as_bytes(),
        )?;
        self.append_audit(&AuditEntry {
            at: pointer.updated_at,
            by: pointer.by,
            action: action.into(),
            name: name.into(),
            alias: Some(alias.into()),
            from: previous.clone(),
            to: version.into(),
            why: why.into(),
        })?;
        Ok(previous)
    }

    /// Points `alias` of `name` at `version`; returns the version it pointed at before.
    pub fn promote(
        &self,
        name: &str,
        version: &str,
        alias: &str,
        why: &str,
        by: &str,
    ) -> Result<Option<String>> {
        self.set_alias(name, alias, version, why, by, "promote")
    }

    /// Points `alias` back at the version it named before its latest change; returns
    /// (from, to).
    pub fn rollback(
        &self,
        name: &str,
        alias: &str,
        why: &str,
        by: &str,
    ) -> Result<(String, String)> {
        let last = self
            .audit(name)?
            .into_iter()
            .rev()
            .find(|e| e.alias.as_deref() == Some(alias));
        let Some(AuditEntry {
            from: Some(previous),
            to: current,
            ..
        }) = last
        else {
            return Err(Error::usage(format!(
                "{name}@{alias} has no earlier version to roll back to (see its audit log, \
                 {}/{name}/_audit.jsonl)",
                self.place()
            )));
        };
        self.set_alias(name, alias, &previous, why, by, "rollback")?;
        Ok((current, previous))
    }
}
