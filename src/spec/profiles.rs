//! Connection profiles: how to reach a warehouse, kept apart from job definitions
//! (dbt style) so jobs stay free of hosts and secrets.
//!
//! ```yaml
//! # profiles.yaml
//! warehouse:
//!   postgres:
//!     host: ${PGHOST}
//!     port: 5432
//!     user: scorch
//!     password: ${WAREHOUSE_PASSWORD}
//!     dbname: analytics
//!     sslmode: require
//! ```
//!
//! The file is found at `--profiles`, else `$SCORCH_PROFILES`, else
//! `profiles.yaml` in the project folder. Every string may use `${ENV}`; values
//! taken from the environment never reach a log, manifest or output.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Problems, Result};
use crate::spec::load_yaml;
use crate::spec::template::check_syntax;

/// Environment variable naming the profiles file.
pub const PROFILES_ENV: &str = "SCORCH_PROFILES";
/// Default file name in the project folder.
pub const PROFILES_FILE: &str = "profiles.yaml";

/// All profiles of a file, by name.
pub type Profiles = BTreeMap<String, Profile>;

/// One profile: exactly one kind of connection.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Profile {
    /// A PostgreSQL-protocol warehouse (PostgreSQL, Redshift, Greenplum, CockroachDB, …).
    Postgres(PostgresProfile),
    /// Settings for object-store URLs (`s3://`, `gs://`, `az://`), used by jobs that
    /// name it in `storage_profile`.
    ObjectStore(StorageProfile),
    /// A warehouse reached through an ADBC driver (Snowflake, BigQuery, PostgreSQL,
    /// SQLite, Flight SQL, …), for `source.adbc`.
    Adbc(AdbcProfile),
}

/// A connection through an ADBC driver.
///
/// ```yaml
/// snowflake:
///   adbc:
///     driver: snowflake
///     uri: ${SNOWFLAKE_URI}
///     options:
///       adbc.snowflake.sql.warehouse: SCORING_WH
/// ```
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AdbcProfile {
    /// The driver: a name (`postgresql`, `sqlite`, `snowflake`, `bigquery`,
    /// `flightsql`), whose shared library `libadbc_driver_NAME.so` is looked for
    /// under `$SCORCH_ADBC_DRIVERS` (folders separated by `:`), then
    /// `$SCORCH_CACHE/adbc` (what `make adbc-drivers` installs); or the path of a
    /// driver's shared library.
    pub driver: String,
    /// The database URI (`postgresql://…`, `file:/path/db.sqlite`, a Snowflake
    /// DSN, …): the driver's `uri` option. Use `${ENV}` for a password in it.
    #[serde(default)]
    pub uri: Option<String>,
    /// User name (the `username` option), where the driver takes one apart from the URI.
    #[serde(default)]
    pub username: Option<String>,
    /// Password (the `password` option); write `${NAME}` and keep the value in the environment.
    #[serde(default)]
    pub password: Option<String>,
    /// Other database options, by the driver's own keys (e.g.
    /// `adbc.snowflake.sql.warehouse`, `adbc.bigquery.sql.project_id`). Templated
    /// (`${ENV}`); values from the environment never reach a log.
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    /// Statement options, by the driver's own keys (e.g.
    /// `adbc.postgresql.batch_size_hint_bytes`, `adbc.sqlite.query.batch_rows`).
    #[serde(default)]
    pub statement_options: BTreeMap<String, String>,
    /// How the driver marks bind parameters: `dollar` (`$1::date`, PostgreSQL) or
    /// `qmark` (`?`). Default: `dollar` for the `postgresql` driver, `qmark` for the others.
    #[serde(default)]
    pub param_style: Option<ParamStyle>,
    /// Rows per fetch where scorch fetches through a cursor: a `postgresql`-driver
    /// query with parameters (without parameters that driver streams by COPY).
    #[serde(default = "default_fetch_rows")]
    pub fetch_rows: u32,
}

/// How a driver marks bind parameters in SQL text.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    serde::Deserialize,
    serde::Serialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ParamStyle {
    /// `$1::date`, `$2::text`: numbered and typed (PostgreSQL). A placeholder used
    /// twice is one parameter.
    #[default]
    Dollar,
    /// `?`: positional (SQLite, Snowflake, BigQuery, Flight SQL, DuckDB). Each
    /// occurrence is its own parameter, bound in order.
    Qmark,
}

impl AdbcProfile {
    /// Pure checks.
    pub fn validate(&self, name: &str) -> Problems {
        let mut p = Problems::new();
        let at = |f: &str| format!("{name}.adbc.{f}");
        if self.driver.trim().is_empty() {
            p.push(
                at("driver"),
                "name a driver (postgresql, sqlite, snowflake, bigquery, flightsql) or the path of its shared library",
            );
        }
        for (f, v) in [
            ("driver", Some(&self.driver)),
            ("uri", self.uri.as_ref()),
            ("username", self.username.as_ref()),
            ("password", self.password.as_ref()),
        ] {
            if let Some(v) = v
                && let Err(e) = check_syntax(v)
            {
                p.push(at(f), e);
            }
        }
        if self.fetch_rows == 0 {
            p.push(at("fetch_rows"), "must be at least 1");
        }
        for (group, opts) in [
            ("options", &self.options),
            ("statement_options", &self.statement_options),
        ] {
            for (k, v) in opts {
                if k.trim().is_empty() {
                    p.push(at(group), "an option key is empty");
                }
                if matches!(k.as_str(), "uri" | "username" | "password") {
                    p.push(
                        format!("{}.{k}", at(group)),
                        format!("give `{k}` as the profile's own field, not as an option"),
                    );
                }
                if let Err(e) = check_syntax(v) {
                    p.push(format!("{}.{k}", at(group)), e);
                }
            }
        }
        p
    }
}

/// Object-store settings.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StorageProfile {
    /// object_store configuration keys and values, e.g. `aws_endpoint`,
    /// `aws_allow_http`, `aws_region`, `aws_access_key_id` (use `${ENV}`),
    /// `google_service_account`, `azure_storage_account_name`. Unknown keys are errors.
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    /// How transient errors (timeouts, 5xx, throttling) are retried.
    #[serde(default)]
    pub retry: RetrySpec,
}

/// Retry with exponential backoff (object_store's RetryConfig).
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RetrySpec {
    /// Retries of one request before giving up.
    #[serde(default = "default_max_retries")]
    pub max_retries: usize,
    /// Give up retrying a request after this many seconds.
    #[serde(default = "default_retry_timeout")]
    pub timeout_s: u64,
    /// First backoff, doubled after each retry.
    #[serde(default = "default_initial_backoff")]
    pub initial_backoff_ms: u64,
    /// Largest backoff.
    #[serde(default = "default_max_backoff")]
    pub max_backoff_s: u64,
}

impl Default for RetrySpec {
    fn default() -> Self {
        Self {
            max_retries: default_max_retries(),
            timeout_s: default_retry_timeout(),
            initial_backoff_ms: default_initial_backoff(),
            max_backoff_s: default_max_backoff(),
        }
    }
}

fn default_max_retries() -> usize {
    10
}
fn default_retry_timeout() -> u64 {
    180
}
fn default_initial_backoff() -> u64 {
    100
}
fn default_max_backoff() -> u64 {
    15
}

/// A PostgreSQL connection. Give a `url`, fields, or both (fields override the URL).
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PostgresProfile {
    /// `postgres://user:password@host:port/dbname?options`; use `${ENV}` for the password.
    #[serde(default)]
    pub url: Option<String>,
    /// Host name or IP address (or a Unix socket folder).
    #[serde(default)]
    pub host: Option<String>,
    /// Port; default 5432.
    #[serde(default)]
    pub port: Option<u16>,
    /// User name.
    #[serde(default)]
    pub user: Option<String>,
    /// Password; write `${NAME}` and keep the value in the environment.
    #[serde(default)]
    pub password: Option<String>,
    /// Database name; default: the user name.
    #[serde(default)]
    pub dbname: Option<String>,
    /// `disable`, `prefer` (default) or `require`. TLS connections always verify the
    /// server's certificate against `ca_file` or the system's roots.
    #[serde(default)]
    pub sslmode: SslMode,
    /// PEM file of the certificate authorities to trust, instead of the system's.
    #[serde(default)]
    pub ca_file: Option<String>,
    /// Seconds to wait for a connection.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_s: u64,
    /// Rows fetched per round trip; bounds the memory a batch of rows in flight takes.
    #[serde(default = "default_fetch_rows")]
    pub fetch_rows: u32,
    /// `application_name` shown in `pg_stat_activity`.
    #[serde(default = "default_application_name")]
    pub application_name: String,
}

/// TLS use of a PostgreSQL connection.
#[derive(
    Debug, Clone, Copy, Default, Deserialize, Serialize, schemars::JsonSchema, PartialEq, Eq,
)]
#[serde(rename_all = "snake_case")]
pub enum SslMode {
    Disable,
    #[default]
    Prefer,
    Require,
}

fn default_connect_timeout() -> u64 {
    10
}
fn default_fetch_rows() -> u32 {
    50_000
}
fn default_application_name() -> String {
    "scorch".to_string()
}

impl PostgresProfile {
    /// Pure checks.
    pub fn validate(&self, name: &str) -> Problems {
        let mut p = Problems::new();
        let at = |f: &str| format!("{name}.postgres.{f}");
        if self.url.is_none() && self.host.is_none() {
            p.push(at("host"), "give `url` or `host`");
        }
        for (f, v) in [
            ("url", &self.url),
            ("host", &self.host),
            ("user", &self.user),
            ("password", &self.password),
            ("dbname", &self.dbname),
            ("ca_file", &self.ca_file),
        ] {
            if let Some(v) = v
                && let Err(e) = check_syntax(v)
            {
                p.push(at(f), e);
            }
        }
        if self.connect_timeout_s == 0 {
            p.push(at("connect_timeout_s"), "must be at least 1");
        }
        if self.fetch_rows == 0 {
            p.push(at("fetch_rows"), "must be at least 1");
        }
        p
    }
}

/// Where the profiles file is: `explicit`, else `$SCORCH_PROFILES`, else `<root>/profiles.yaml`.
pub fn locate(explicit: Option<&Path>, root: &Path) -> PathBuf {
    explicit
        .map(Path::to_path_buf)
        .or_else(|| std::env::var_os(PROFILES_ENV).map(PathBuf::from))
        .unwrap_or_else(|| root.join(PROFILES_FILE))
}

/// Reads and validates a profiles file.
pub fn load(path: &Path) -> Result<Profiles> {
    if !path.is_file() {
        return Err(Error::config(
            path,
            format!(
                "profiles file not found; create it, or point --profiles or ${PROFILES_ENV} at one"
            ),
        ));
    }
    let profiles: Profiles = load_yaml(path)?;
    let mut p = Problems::new();
    for (name, prof) in &profiles {
        match prof {
            Profile::Postgres(pg) => p.extend(pg.validate(name)),
            Profile::Adbc(a) => p.extend(a.validate(name)),
            Profile::ObjectStore(st) => {
                for (k, v) in &st.options {
                    if let Err(e) = check_syntax(v) {
                        p.push(format!("{name}.object_store.options.{k}"), e);
                    }
                }
            }
        }
    }
    p.into_result(path)?;
    Ok(profiles)
}

/// Finds profile `name` in the file at `path` and takes the kind `kind` out of it.
fn find<T>(path: &Path, name: &str, kind: &str, take: impl Fn(&Profile) -> Option<T>) -> Result<T> {
    let all = load(path)?;
    match all.get(name) {
        Some(p) => take(p).ok_or_else(|| {
            Error::config(path, format!("profile `{name}` is not a `{kind}` profile"))
        }),
        None => Err(Error::config(
            path,
            format!(
                "no profile named `{name}` (profiles: {})",
                all.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        )),
    }
}

/// The named PostgreSQL profile of a profiles file.
pub fn postgres(path: &Path, name: &str) -> Result<PostgresProfile> {
    find(path, name, "postgres", |p| match p {
        Profile::Postgres(pg) => Some(pg.clone()),
        _ => None,
    })
}

/// The named object-store profile of a profiles file.
pub fn storage(path: &Path, name: &str) -> Result<StorageProfile> {
    find(path, name, "object_store", |p| match p {
        Profile::ObjectStore(st) => Some(st.clone()),
        _ => None,
    })
}

/// The named ADBC profile of a profiles file.
pub fn adbc(path: &Path, name: &str) -> Result<AdbcProfile> {
    find(path, name, "adbc", |p| match p {
        Profile::Adbc(a) => Some(a.clone()),
        _ => None,
    })
}
