//! PostgreSQL-protocol warehouse source.
//!
//! A job names a profile and a SQL file. `{{ ds }}`, `{{ ds_nodash }}` and
//! `{{ params.NAME }}` in the SQL become **bind parameters** (`$1::date`,
//! `$2::text`, …), never text pasted into the query, so no value can change the
//! query. Rows are fetched through a portal, `fetch_rows` at a time, and turned
//! into columns batch by batch; only the columns the run needs are selected (the
//! query is wrapped in `SELECT <columns> FROM (<query>)`).
//!
//! | PostgreSQL | Polars |
//! |---|---|
//! | `int2` / `int4` / `int8` | Int16 / Int32 / Int64 |
//! | `float4` / `float8` | Float32 / Float64 |
//! | `numeric` | Float64 (nearest double; `NaN` stays NaN) |
//! | `bool` | Boolean |
//! | `text`, `varchar`, `bpchar`, `name` | String |
//! | `date` | Date |
//! | `timestamp` | Datetime(µs) |
//! | `timestamptz` | Datetime(µs, UTC) |
//!
//! NULL is null for every type. Other types are refused with a message naming
//! the column; cast them in the query (`col::text`, `col::float8`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use polars::prelude::*;
use tokio_postgres::types::{FromSql, ToSql, Type};
use tokio_postgres::{Client, Row};

use crate::error::{Error, Result};
use crate::spec::profiles::{PostgresProfile, SslMode};
use crate::spec::template::{Redactor, TemplateVars, render};

use super::bind::Value;
pub use super::bind::{Placeholder, rewrite};

/// The error of a PostgreSQL operation: the message names the profile, query
/// file and phase; the driver's error is the source. Authentication, unknown
/// database, SQL and permission errors are configuration errors (exit 2), the
/// rest runtime errors (exit 1).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct PgError {
    message: String,
    config: bool,
    #[source]
    source: tokio_postgres::Error,
}

impl crate::error::LayerError for PgError {
    fn kind(&self) -> crate::error::Kind {
        if self.config {
            crate::error::Kind::Config
        } else {
            crate::error::Kind::Internal
        }
    }
}

/// A PostgreSQL query ready to run.
#[derive(Clone)]
pub struct PgQuery {
    profile_name: String,
    sql_file: PathBuf,
    sql: String,
    params: Vec<Value>,
    config: tokio_postgres::Config,
    ssl: SslMode,
    ca_file: Option<PathBuf>,
    connect_timeout: Duration,
    fetch_rows: u32,
    /// `host:port/dbname` for messages (no user, no password).
    target: String,
}

/// Builds the query from a profile, a SQL file and the job's params.
pub fn prepare(
    profile_name: &str,
    profile: &PostgresProfile,
    sql_file: &Path,
    params: &std::collections::BTreeMap<String, String>,
    vars: &TemplateVars,
    red: &mut Redactor,
) -> Result<PgQuery> {
    let text = std::fs::read_to_string(sql_file).map_err(|e| {
        Error::config(
            sql_file,
            format!("cannot read SQL file (source.postgres.query): {e}"),
        )
    })?;
    if text.trim().is_empty() {
        return Err(Error::config(
            sql_file,
            "the SQL file is empty; write the query that selects the rows to score",
        ));
    }
    let (sql, placeholders) = rewrite(&text).map_err(|e| Error::config(sql_file, e))?;
    let bound = super::bind::values(
        &placeholders,
        params,
        "source.postgres.params",
        sql_file,
        vars,
        red,
    )?;
    let field = |f: &str, v: &Option<String>, red: &mut Redactor| -> Result<Option<String>> {
        v.as_ref()
            .map(|t| {
                let r = render(t, vars).map_err(|e| {
                    Error::usage(format!("profile `{profile_name}` field `{f}`: {e}"))
                })?;
                red.add(&r);
                Ok(r.value)
            })
            .transpose()
    };
    let mut config: tokio_postgres::Config = match field("url", &profile.url, red)? {
        Some(u) => {
            let c = u.parse().map_err(|e| {
                Error::usage(format!(
                    "profile `{profile_name}` field `url` is not a PostgreSQL URL: {e}"
                ))
            })?;
            if let Some(pw) = url_password(&u) {
                red.add_secret(&pw);
            }
            c
        }
        None => tokio_postgres::Config::new(),
    };
    if let Some(h) = field("host", &profile.host, red)? {
        config.host(&h);
    }
    if let Some(p) = profile.port {
        config.port(p);
    }
    if let Some(u) = field("user", &profile.user, red)? {
        config.user(&u);
    }
    if let Some(pw) = field("password", &profile.password, red)? {
        red.add_secret(&pw);
        config.password(pw);
    }
    if let Some(d) = field("dbname", &profile.dbname, red)? {
        config.dbname(&d);
    }
    let ca_file = field("ca_file", &profile.ca_file, red)?.map(PathBuf::from);
    let timeout = Duration::from_secs(profile.connect_timeout_s);
    config.connect_timeout(timeout);
    config.application_name(&profile.application_name);
    config.ssl_mode(match profile.sslmode {
        SslMode::Disable => tokio_postgres::config::SslMode::Disable,
        SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
        SslMode::Require => tokio_postgres::config::SslMode::Require,
    });
    let host = config
        .get_hosts()
        .first()
        .map(|h| match h {
            tokio_postgres::config::Host::Tcp(s) => s.clone(),
            tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
        })
        .unwrap_or_else(|| "localhost".into());
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let target = red.redact(&format!(
        "{host}:{port}/{}",
        config.get_dbname().or(config.get_user()).unwrap_or("")
    ));
    Ok(PgQuery {
        profile_name: profile_name.to_string(),
        sql_file: sql_file.to_path_buf(),
        sql,
        params: bound,
        config,
        ssl: profile.sslmode,
        ca_file,
        connect_timeout: timeout,
        fetch_rows: profile.fetch_rows,
        target,
    })
}

/// The password in a `scheme://user:password@host/…` URL, if any.
pub(crate) fn url_password(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let userinfo = rest.split_once('@')?.0;
    Some(userinfo.split_once(':')?.1.to_string()).filter(|p| !p.is_empty())
}

/// How a PostgreSQL column becomes a Polars column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    I16,
    I32,
    I64,
    F32,
    F64,
    Numeric,
    Bool,
    Str,
    Date,
    Ts,
    TsTz,
}

impl Kind {
    fn of(t: &Type) -> Option<Kind> {
        Some(match *t {
            Type::INT2 => Kind::I16,
            Type::INT4 => Kind::I32,
            Type::INT8 => Kind::I64,
            Type::FLOAT4 => Kind::F32,
            Type::FLOAT8 => Kind::F64,
            Type::NUMERIC => Kind::Numeric,
            Type::BOOL => Kind::Bool,
            Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => Kind::Str,
            Type::DATE => Kind::Date,
            Type::TIMESTAMP => Kind::Ts,
            Type::TIMESTAMPTZ => Kind::TsTz,
            _ => return None,
        })
    }
    fn dtype(self) -> DataType {
        match self {
            Kind::I16 => DataType::Int16,
            Kind::I32 => DataType::Int32,
            Kind::I64 => DataType::Int64,
            Kind::F32 => DataType::Float32,
            Kind::F64 | Kind::Numeric => DataType::Float64,
            Kind::Bool => DataType::Boolean,
            Kind::Str => DataType::String,
            Kind::Date => DataType::Date,
            Kind::Ts => DataType::Datetime(TimeUnit::Microseconds, None),
            Kind::TsTz => DataType::Datetime(TimeUnit::Microseconds, Some(TimeZone::UTC)),
        }
    }
}

/// `numeric` in binary form, converted to the nearest f64.
struct NumericF64(f64);

impl<'a> FromSql<'a> for NumericF64 {
    fn from_sql(
        _: &Type,
        raw: &'a [u8],
    ) -> std::result::Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        let rd = |k: usize| -> std::result::Result<i16, Box<dyn std::error::Error + Sync + Send>> {
            raw.get(k..k + 2)
                .map(|s| i16::from_be_bytes([s[0], s[1]]))
                .ok_or_else(|| "truncated numeric".into())
        };
        let ndigits = rd(0)? as usize;
        let weight = rd(2)? as i32;
        let sign = rd(4)? as u16;
        match sign {
            0xC000 => return Ok(NumericF64(f64::NAN)),
            0xD000 => return Ok(NumericF64(f64::INFINITY)),
            0xF000 => return Ok(NumericF64(f64::NEG_INFINITY)),
            _ => {}
        }
        // Base-10000 digits → a decimal string → f64 (correctly rounded by Rust's parser).
        let mut s = String::with_capacity(ndigits * 4 + 8);
        if sign == 0x4000 {
            s.push('-');
        }
        s.push_str("0.");
        for k in 0..ndigits {
            s.push_str(&format!("{:04}", rd(8 + 2 * k)?));
        }
        if ndigits == 0 {
            s.push('0');
        }
        s.push_str(&format!("e{}", 4 * (weight + 1)));
        Ok(NumericF64(s.parse()?))
    }
    fn accepts(t: &Type) -> bool {
        *t == Type::NUMERIC
    }
}

enum Builder {
    I16(Vec<Option<i16>>),
    I32(Vec<Option<i32>>),
    I64(Vec<Option<i64>>),
    F32(Vec<Option<f32>>),
    F64(Vec<Option<f64>>),
    Bool(Vec<Option<bool>>),
    Str(Vec<Option<String>>),
    Date(Vec<Option<i32>>),
    Micros(Vec<Option<i64>>),
}

type GetResult<T> = std::result::Result<T, tokio_postgres::Error>;

fn get<'a, T: FromSql<'a>>(row: &'a Row, i: usize) -> GetResult<Option<T>> {
    row.try_get::<_, Option<T>>(i)
}

fn batch_to_frame(rows: &[Row], cols: &[(String, Kind)]) -> std::result::Result<DataFrame, String> {
    let n = rows.len();
    let mut out = Vec::with_capacity(cols.len());
    for (i, (name, kind)) in cols.iter().enumerate() {
        let err = |e: tokio_postgres::Error| format!("column `{name}`: {e}");
        let b = match kind {
            Kind::I16 => Builder::I16(
                rows.iter()
                    .map(|r| get(r, i))
                    .collect::<GetResult<_>>()
                    .map_err(err)?,
            ),
            Kind::I32 => Builder::I32(
                rows.iter()
                    .map(|r| get(r, i))
                    .collect::<GetResult<_>>()
                    .map_err(err)?,
            ),
            Kind::I64 => Builder::I64(
                rows.iter()
                    .map(|r| get(r, i))
                    .collect::<GetResult<_>>()
                    .map_err(err)?,
            ),
            Kind::F32 => Builder::F32(
                rows.iter()
                    .map(|r| get(r, i))
                    .collect::<GetResult<_>>()
                    .map_err(err)?,
            ),
            Kind::F64 => Builder::F64(
                rows.iter()
                    .map(|r| get(r, i))
                    .collect::<GetResult<_>>()
                    .map_err(err)?,
            ),
            Kind::Numeric => Builder::F64(
                rows.iter()
                    .map(|r| get::<NumericF64>(r, i).map(|v| v.map(|x| x.0)))
                    .collect::<GetResult<_>>()
                    .map_err(err)?,
            ),
            Kind::Bool => Builder::Bool(
                rows.iter()
                    .map(|r| get(r, i))
                    .collect::<GetResult<_>>()
                    .map_err(err)?,
            ),
            Kind::Str => Builder::Str(
                rows.iter()
                    .map(|r| get(r, i))
                    .collect::<GetResult<_>>()
                    .map_err(err)?,
            ),
            Kind::Date => {
                let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid");
                Builder::Date(
                    rows.iter()
                        .map(|r| {
                            get::<NaiveDate>(r, i).map(|v| v.map(|d| (d - epoch).num_days() as i32))
                        })
                        .collect::<GetResult<_>>()
                        .map_err(err)?,
                )
            }
            Kind::Ts => Builder::Micros(
                rows.iter()
                    .map(|r| {
                        get::<NaiveDateTime>(r, i)
                            .map(|v| v.map(|t| t.and_utc().timestamp_micros()))
                    })
                    .collect::<GetResult<_>>()
                    .map_err(err)?,
            ),
            Kind::TsTz => Builder::Micros(
                rows.iter()
                    .map(|r| get::<DateTime<Utc>>(r, i).map(|v| v.map(|t| t.timestamp_micros())))
                    .collect::<GetResult<_>>()
                    .map_err(err)?,
            ),
        };
        let name = PlSmallStr::from(name.as_str());
        let s = match b {
            Builder::I16(v) => Series::new(name, v),
            Builder::I32(v) => Series::new(name, v),
            Builder::I64(v) => Series::new(name, v),
            Builder::F32(v) => Series::new(name, v),
            Builder::F64(v) => Series::new(name, v),
            Builder::Bool(v) => Series::new(name, v),
            Builder::Str(v) => Series::new(name, v),
            Builder::Date(v) => Series::new(name, v)
                .cast(&DataType::Date)
                .map_err(|e| e.to_string())?,
            Builder::Micros(v) => Series::new(name, v)
                .cast(&kind.dtype())
                .map_err(|e| e.to_string())?,
        };
        out.push(s.into_column());
    }
    DataFrame::new(n, out).map_err(|e| e.to_string())
}

fn tls_config(ca_file: Option<&Path>) -> Result<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(f) => {
            let pem = std::fs::read(f)
                .map_err(|e| Error::usage(format!("ca_file {}: {e}", f.display())))?;
            for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
                let cert =
                    cert.map_err(|e| Error::usage(format!("ca_file {}: {e}", f.display())))?;
                roots
                    .add(cert)
                    .map_err(|e| Error::usage(format!("ca_file {}: {e}", f.display())))?;
            }
        }
        None => {
            for cert in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(cert);
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Internal(format!("TLS set-up: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

impl PgQuery {
    fn what(&self) -> String {
        format!(
            "PostgreSQL profile `{}` ({}), query {}",
            self.profile_name,
            self.target,
            self.sql_file.display()
        )
    }

    /// Maps a driver error to scorch's exit codes: authentication, unknown database,
    /// SQL and permission errors are configuration errors (2); lost connections,
    /// unreachable hosts and other server-side failures are runtime errors (1).
    fn error(&self, phase: &str, e: tokio_postgres::Error) -> Error {
        if let Some(db) = e.as_db_error() {
            let code = db.code().code();
            let mut message = format!(
                "{}: {phase}: {} (SQLSTATE {code})",
                self.what(),
                db.message()
            );
            if let Some(d) = db.detail() {
                message.push_str(&format!("; {d}"));
            }
            if let Some(h) = db.hint() {
                message.push_str(&format!("; hint: {h}"));
            }
            let config = code.starts_with("28") || code == "3D000" || code.starts_with("42");
            return PgError {
                message,
                config,
                source: e,
            }
            .into();
        }
        let mut message = format!("{}: {phase}: {e}", self.what());
        let mut src = std::error::Error::source(&e);
        while let Some(s) = src {
            message.push_str(&format!(": {s}"));
            src = s.source();
        }
        PgError {
            message,
            config: false,
            source: e,
        }
        .into()
    }

    async fn connect(&self) -> Result<Client> {
        let tls = match self.ssl {
            SslMode::Disable => None,
            _ => Some(tokio_postgres_rustls::MakeRustlsConnect::new(tls_config(
                self.ca_file.as_deref(),
            )?)),
        };
        let fut = async {
            let Some(tls) = tls else {
                let (client, conn) = self.config.connect(tokio_postgres::NoTls).await?;
                tokio::spawn(async move {
                    let _ = conn.await;
                });
                return Ok::<_, tokio_postgres::Error>(client);
            };
            let (client, conn) = self.config.connect(tls).await?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            Ok(client)
        };
        match tokio::time::timeout(self.connect_timeout + Duration::from_secs(1), fut).await {
            Ok(r) => r.map_err(|e| self.error("connect", e)),
            Err(_) => Err(Error::Internal(format!(
                "{}: connect: no answer within {} s",
                self.what(),
                self.connect_timeout.as_secs()
            ))),
        }
    }

    fn runtime() -> Result<tokio::runtime::Runtime> {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::Internal(format!("cannot start the async runtime: {e}")))
    }

    fn param_refs(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.params
            .iter()
            .map(|p| match p {
                Value::Date(d) => d as &(dyn ToSql + Sync),
                Value::Text(s) => s as &(dyn ToSql + Sync),
            })
            .collect()
    }

    fn columns_of(&self, stmt: &tokio_postgres::Statement) -> Result<Vec<(String, Kind)>> {
        stmt.columns()
            .iter()
            .map(|c| {
                Kind::of(c.type_()).map(|k| (c.name().to_string(), k)).ok_or_else(|| {
                    Error::usage(format!(
                        "{}: column `{}` has PostgreSQL type {}, which scorch does not map; cast it in the query \
                         (for example `{}::text` or `{}::float8`)",
                        self.what(),
                        c.name(),
                        c.type_(),
                        c.name(),
                        c.name()
                    ))
                })
            })
            .collect()
    }

    /// The result's schema, from the server's description of the prepared query
    /// (nothing is executed).
    pub fn schema(&self) -> Result<Schema> {
        Self::runtime()?.block_on(async {
            let client = self.connect().await?;
            let stmt = client
                .prepare(&self.sql)
                .await
                .map_err(|e| self.error("prepare", e))?;
            let cols = self.columns_of(&stmt)?;
            let mut seen = std::collections::BTreeSet::new();
            for (n, _) in &cols {
                if !seen.insert(n.as_str()) {
                    return Err(Error::usage(format!(
                        "{}: the query returns two columns named `{n}`; alias one",
                        self.what()
                    )));
                }
            }
            Ok(Schema::from_iter(
                cols.iter()
                    .map(|(n, k)| Field::new(n.as_str().into(), k.dtype())),
            ))
        })
    }

    /// Runs the query for `columns` in a read-only transaction and hands each batch
    /// of `fetch_rows` rows to `sink` as a frame (at least one, possibly empty, so the
    /// schema is always seen). `sink` returns false to stop early.
    fn stream(&self, columns: &[String], mut sink: impl FnMut(DataFrame) -> bool) -> Result<()> {
        let body = self.sql.trim().trim_end_matches(';');
        let select = columns
            .iter()
            .map(|c| format!("\"{}\"", c.replace('"', "\"\"")))
            .collect::<Vec<_>>()
            .join(", ");
        let wrapped = format!("SELECT {select} FROM (\n{body}\n) AS scorch_query");
        Self::runtime()?.block_on(async {
            let mut client = self.connect().await?;
            let tx = client
                .build_transaction()
                .read_only(true)
                .start()
                .await
                .map_err(|e| self.error("begin", e))?;
            let stmt = tx
                .prepare(&wrapped)
                .await
                .map_err(|e| self.error("prepare", e))?;
            let cols = self.columns_of(&stmt)?;
            let portal = tx
                .bind(&stmt, &self.param_refs())
                .await
                .map_err(|e| self.error("execute", e))?;
            let mut first = true;
            loop {
                let rows = tx
                    .query_portal(&portal, self.fetch_rows as i32)
                    .await
                    .map_err(|e| self.error("fetch", e))?;
                let done = rows.len() < self.fetch_rows as usize;
                if !rows.is_empty() || first {
                    first = false;
                    let batch = batch_to_frame(&rows, &cols)
                        .map_err(|e| Error::DataContract(format!("{}: {e}", self.what())))?;
                    drop(rows);
                    if !sink(batch) {
                        return Ok(());
                    }
                }
                if done {
                    break;
                }
            }
            tx.commit().await.map_err(|e| self.error("commit", e))
        })
    }

    /// Runs the query for `columns` and returns all rows as one frame.
    pub fn read(&self, columns: &[String]) -> Result<DataFrame> {
        super::stack_stream(|sink| self.stream(columns, sink))
    }

    /// Runs the query for `columns` on a background thread and yields its batches;
    /// at most one batch waits in the channel, so memory stays bounded whatever the
    /// result's size.
    pub fn batches(&self, columns: &[String]) -> Result<crate::source::Batches> {
        let q = self.clone();
        let columns = columns.to_vec();
        super::stream_batches("scorch-postgres", move |sink| q.stream(&columns, sink))
    }

    /// A description for logs and the manifest (no credentials).
    pub fn describe(&self) -> String {
        self.what()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_binary_decodes_to_nearest_double() {
        // 12345.678 = digits [1, 2345, 6780], weight 1, dscale 3
        let mut raw = Vec::new();
        for v in [3i16, 1, 0, 3, 1, 2345, 6780] {
            raw.extend_from_slice(&v.to_be_bytes());
        }
        let NumericF64(x) = NumericF64::from_sql(&Type::NUMERIC, &raw).unwrap();
        assert_eq!(x, 12345.678);
        // -0.0042 = digits [42], weight -1, sign negative
        let mut raw = Vec::new();
        for v in [1i16, -1, 0x4000u16 as i16, 4, 42] {
            raw.extend_from_slice(&v.to_be_bytes());
        }
        assert_eq!(
            NumericF64::from_sql(&Type::NUMERIC, &raw).unwrap().0,
            -0.0042
        );
    }

    #[test]
    fn password_is_found_in_urls() {
        assert_eq!(
            url_password("postgres://u:p%40ss@h:5/db").as_deref(),
            Some("p%40ss")
        );
        assert_eq!(url_password("postgres://u@h/db"), None);
    }
}
