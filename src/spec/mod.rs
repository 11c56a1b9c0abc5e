//! Job specifications: the YAML files under `jobs/`, and the helpers every
//! other YAML file (preprocessing specs, model bundles) is read with.

pub mod bundle;
pub mod gate;
pub mod inference;
pub mod job;
pub mod limits;
pub mod profiles;
pub mod report;
pub mod schedule;
pub mod secret;
pub mod template;

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

/// The errors of reading a configuration file (exit 2), with the I/O or YAML
/// parser's error as the source; the file is named first.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("cannot read: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Unknown fields, wrong types, duplicate keys, syntax: the parser's message,
    /// with line and column.
    #[error("{message}")]
    Yaml {
        path: PathBuf,
        message: String,
        #[source]
        source: serde_saphyr::Error,
    },
}

impl crate::error::LayerError for SpecError {
    fn kind(&self) -> crate::error::Kind {
        crate::error::Kind::Config
    }

    fn file(&self) -> Option<&Path> {
        match self {
            SpecError::Read { path, .. } | SpecError::Yaml { path, .. } => Some(path),
        }
    }
}

/// Reads a YAML file into `T`. Unknown fields, wrong types, duplicate keys and
/// syntax errors become a config error (exit 2) naming the file, line and column.
pub fn load_yaml<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::config(path, "file not found"),
        _ => SpecError::Read {
            path: path.to_path_buf(),
            source: e,
        }
        .into(),
    })?;
    parse_yaml(path, &text)
}

/// Parses YAML text that came from `path` (used for messages only).
pub fn parse_yaml<T: DeserializeOwned>(path: &Path, text: &str) -> Result<T> {
    serde_saphyr::from_str(text).map_err(|e| {
        let msg = e.to_string();
        let msg = msg.strip_prefix("error: ").unwrap_or(&msg);
        SpecError::Yaml {
            path: path.to_path_buf(),
            message: msg.replace("<input>", &path.display().to_string()),
            source: e,
        }
        .into()
    })
}

/// True when `name` is a usable identifier for jobs, features and columns we create:
/// ASCII letters, digits, `_`, `-` and `.`, not empty, at most 128 characters, and
/// not dots alone (`.` and `..` mean folders wherever a name becomes a path, as a
/// model's does in `models/<name>/<version>`).
pub fn is_simple_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        && !name.chars().all(|c| c == '.')
}

/// True when `s` looks like `sha256:<64 lowercase hex digits>`.
pub fn is_hash(s: &str) -> bool {
    s.strip_prefix("sha256:")
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Columns scorch adds to every output row; sources may not use these names as keys.
pub const RESERVED_COLUMNS: &[&str] = &["model_name", "model_version", "run_id", "scored_at"];

#[cfg(test)]
mod tests {
    use super::is_simple_name;

    proptest::proptest! {
        /// A simple name is a path component that stays where it is put: no
        /// separator, nothing outside its character set, never `.` or `..`.
        #[test]
        fn a_simple_name_is_one_path_component_that_stays_put(
            name in proptest::prop_oneof!["[.]{1,3}", "[a-z0-9._/ -]{0,12}", "\\PC{0,130}"]
        ) {
            if is_simple_name(&name) {
                let p = std::path::Path::new(&name);
                let parts: Vec<_> = p.components().collect();
                proptest::prop_assert_eq!(parts.len(), 1, "{:?}", name);
                proptest::prop_assert!(
                    matches!(parts[0], std::path::Component::Normal(_)),
                    "{:?}", name
                );
                proptest::prop_assert!((1..=128).contains(&name.len()));
            }
        }
    }

    #[test]
    fn dots_alone_and_separators_are_not_names() {
        for bad in ["", ".", "..", "...", "a/b", "a b", "é", &"x".repeat(129)] {
            assert!(!is_simple_name(bad), "{bad:?}");
        }
        for good in [
            "churn",
            "a.b",
            ".hidden",
            "v1.0.0",
            "x_y-z",
            &"x".repeat(128),
        ] {
            assert!(is_simple_name(good), "{good:?}");
        }
    }
}
