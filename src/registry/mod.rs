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

use std::collections::BTreeMap;
use std::io::Write;
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

/// A registry rooted at a folder.
#[derive(Debug, Clone)]
pub struct Registry {
    pub root: PathBuf,
}

/// Who is acting: `$SCORCH_USER`, else `$USER`, else `unknown`.
pub fn who() -> String {
    std::env::var("SCORCH_USER")
        .or_else(|_| std::env::var("USER"))
        .unwrap_or_else(|_| "unknown".into())
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

/// The bundle folder a job's `model:` names, relative to the project folder `root`:
/// a path, or `name@version` / `name@alias` in the registry (`$SCORCH_REGISTRY`, else
/// `<root>/models`).
pub fn bundle_dir(root: &Path, model: &str) -> Result<PathBuf> {
    let direct = root.join(model);
    match parse_ref(model) {
        Some((name, reference)) if !direct.exists() => Ok(Registry::new(default_root(root))
            .resolve(name, reference)?
            .0),
        _ => Ok(direct),
    }
}

/// The registry jobs use: `$SCORCH_REGISTRY` (relative to `root`), else `<root>/models`.
pub fn default_root(root: &Path) -> PathBuf {
    std::env::var_os("SCORCH_REGISTRY")
        .map(|r| root.join(PathBuf::from(r)))
        .unwrap_or_else(|| root.join("models"))
}

impl Registry {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Registry { root: root.into() }
    }

    fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> Error + 'a {
        move |e| Error::io(op, path, e)
    }

    /// Model names (folders holding at least one version).
    pub fn names(&self) -> Result<Vec<String>> {
        let mut out = vec![];
        let Ok(rd) = std::fs::read_dir(&self.root) else {
            return Ok(out);
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if e.path().is_dir() && !self.versions(&name)?.is_empty() {
                out.push(name);
            }
        }
        out.sort();
        Ok(out)
    }

    /// Registered versions of `name` (folders with a `bundle.yaml`).
    pub fn versions(&self, name: &str) -> Result<Vec<String>> {
        let dir = self.root.join(name);
        let mut out = vec![];
        let Ok(rd) = std::fs::read_dir(&dir) else {
            return Ok(out);
        };
        for e in rd.flatten() {
            let v = e.file_name().to_string_lossy().to_string();
            if !v.starts_with(['.', '_']) && e.path().join("bundle.yaml").is_file() {
                out.push(v);
            }
        }
        out.sort();
        Ok(out)
    }

    /// The aliases of `name`.
    pub fn aliases(&self, name: &str) -> Result<BTreeMap<String, AliasPointer>> {
        let dir = self.root.join(name).join("_aliases");
        let mut out = BTreeMap::new();
        let Ok(rd) = std::fs::read_dir(&dir) else {
            return Ok(out);
        };
        for e in rd.flatten() {
            let file = e.path();
            let Some(alias) = file
                .file_name()
                .and_then(|f| f.to_str())
                .and_then(|f| f.strip_suffix(".json"))
            else {
                continue;
            };
            let text = std::fs::read_to_string(&file).map_err(Self::io("read", &file))?;
            let p: AliasPointer = serde_json::from_str(&text).map_err(|e| {
                Error::Model(format!("{} is not an alias pointer: {e}", file.display()))
            })?;
            out.insert(alias.to_string(), p);
        }
        Ok(out)
    }

    /// The bundle folder `name@reference` names (a version, else an alias).
    pub fn resolve(&self, name: &str, reference: &str) -> Result<(PathBuf, String)> {
        let versions = self.versions(name)?;
        if versions.is_empty() {
            return Err(Error::Model(format!(
                "no model {name:?} in the registry {} (register one with `scorch model register`)",
                self.root.display()
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
                self.root.display()
            )));
        };
        Ok((self.root.join(name).join(&version), version))
    }

    /// The audit log of `name`, oldest first.
    pub fn audit(&self, name: &str) -> Result<Vec<AuditEntry>> {
        let file = self.root.join(name).join("_audit.jsonl");
        let Ok(text) = std::fs::read_to_string(&file) else {
            return Ok(vec![]);
        };
        text.lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| {
                serde_json::from_str(l)
                    .map_err(|e| Error::Model(format!("{} line {}: {e}", file.display(), i + 1)))
            })
            .collect()
    }

    fn append_audit(&self, e: &AuditEntry) -> Result<()> {
        let file = self.root.join(&e.name).join("_audit.jsonl");
        let mut line = serde_json::to_string(e).expect("audit entry serializes");
        line.push('\n');
        // One write of one line with O_APPEND: lines never interleave.
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&file)
            .map_err(Self::io("open", &file))?;
        f.write_all(line.as_bytes())
            .and_then(|_| f.sync_all())
            .map_err(Self::io("write", &file))
    }

    /// Copies the bundle at `bundle` into the registry as `<name>/<version>` (from its
    /// `bundle.yaml`), after checking it opens (hashes, pins). Refuses an existing version.
    pub fn register(&self, bundle: &Path, why: &str) -> Result<(String, String)> {
        let b = Bundle::open(bundle)?;
        let (name, version) = (b.spec.name.clone(), b.spec.version.clone());
        check_segment("model name", &name)?;
        check_segment("version", &version)?;
        let dir = self.root.join(&name);
        let target = dir.join(&version);
        if target.exists() {
            return Err(Error::usage(format!(
                "{name}@{version} is already registered in {}; registered versions are immutable: \
                 give the bundle a new version",
                self.root.display()
            )));
        }
        std::fs::create_dir_all(&dir).map_err(Self::io("create", &dir))?;
        let tmp = dir.join(format!(".tmp-{version}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        copy_dir(bundle, &tmp)?;
        // rename(2) onto an existing non-empty folder fails: two registrations of the
        // same version cannot both succeed.
        if let Err(e) = std::fs::rename(&tmp, &target) {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(if target.exists() {
                Error::usage(format!(
                    "{name}@{version} was registered meanwhile; registered versions are immutable"
                ))
            } else {
                Error::io("rename", &target, e)
            });
        }
        self.append_audit(&AuditEntry {
            at: now(),
            by: who(),
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
        action: &str,
    ) -> Result<Option<String>> {
        check_segment("alias", alias)?;
        if !self.versions(name)?.iter().any(|v| v == version) {
            return Err(Error::usage(format!(
                "{name}@{version} is not registered in {}",
                self.root.display()
            )));
        }
        let previous = self.aliases(name)?.get(alias).map(|p| p.version.clone());
        let dir = self.root.join(name).join("_aliases");
        std::fs::create_dir_all(&dir).map_err(Self::io("create", &dir))?;
        let pointer = AliasPointer {
            version: version.into(),
            updated_at: now(),
            by: who(),
            why: why.into(),
        };
        let text = serde_json::to_string_pretty(&pointer).expect("pointer serializes");
        // Write then rename: a reader sees the old pointer or the new one, never half.
        crate::sink::write_file_atomic(&dir.join(format!("{alias}.json")), text.as_bytes())?;
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
    ) -> Result<Option<String>> {
        self.set_alias(name, alias, version, why, "promote")
    }

    /// Points `alias` back at the version it named before its latest change; returns
    /// (from, to).
    pub fn rollback(&self, name: &str, alias: &str, why: &str) -> Result<(String, String)> {
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
                 {})",
                self.root.join(name).join("_audit.jsonl").display()
            )));
        };
        self.set_alias(name, alias, &previous, why, "rollback")?;
        Ok((current, previous))
    }
}

/// Copies a bundle folder (regular files, one level of subfolders and deeper).
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
