//! Job specifications: the YAML files under `jobs/`, and the helpers every
//! other YAML file (preprocessing specs, model bundles) is read with.

pub mod job;
pub mod limits;
pub mod profiles;
pub mod secret;
pub mod template;

use std::path::Path;

use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

/// Reads a YAML file into `T`. Unknown fields, wrong types, duplicate keys and
/// syntax errors become a config error (exit 2) naming the file, line and column.
pub fn load_yaml<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::config(path, "file not found"),
        _ => Error::config(path, format!("cannot read: {e}")),
    })?;
    parse_yaml(path, &text)
}

/// Parses YAML text that came from `path` (used for messages only).
pub fn parse_yaml<T: DeserializeOwned>(path: &Path, text: &str) -> Result<T> {
    serde_saphyr::from_str(text).map_err(|e| {
        let msg = e.to_string();
        let msg = msg.strip_prefix("error: ").unwrap_or(&msg);
        Error::config(path, msg.replace("<input>", &path.display().to_string()))
    })
}

/// True when `name` is a usable identifier for jobs, features and columns we create:
/// ASCII letters, digits, `_`, `-` and `.`, not empty, at most 128 characters.
pub fn is_simple_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}
