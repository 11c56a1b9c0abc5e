//! Warehouses through ADBC drivers (Snowflake, BigQuery, PostgreSQL, SQLite,
//! Flight SQL, …).
//!
//! A job names an `adbc` profile and a SQL file. The profile names the driver:
//! its shared library (`libadbc_driver_NAME.so`, as PyPI's `adbc-driver-NAME`
//! wheels ship it; `make adbc-drivers` installs them under `$SCORCH_CACHE/adbc`)
//! is loaded by the ADBC driver manager. Placeholders in the SQL become the
//! driver's bind parameters ([`super::bind`]): `$1::date` for PostgreSQL, `?` for
//! the others; dates are bound as Arrow `date32` (as text for SQLite, which keeps
//! dates as text).
//!
//! The driver streams Arrow record batches; each crosses into Polars through the
//! Arrow C data interface (no copy of the buffers) on a reader thread, and at
//! most one batch waits for the run, so memory stays bounded whatever the size
//! of the result. Only the columns the run needs are asked for (the query is
//! wrapped in `SELECT <columns> FROM (<query>)`).
//!
//! Column types: booleans, integers, floats, strings, dates and timestamps are
//! taken as they come. Others (decimals, binary, nested, intervals) are refused
//! with a message naming the column; cast them in the query. PostgreSQL's
//! `numeric` arrives as text through its ADBC driver, and Snowflake's `NUMBER` as
//! decimal unless the profile sets
//! `adbc.snowflake.sql.client_option.use_high_precision: "false"`.

use std::path::{Path, PathBuf};

use adbc_core::options::{AdbcVersion, OptionDatabase, OptionStatement, OptionValue};
use adbc_core::{Connection, Database, Driver, Optionable, Statement};
use arrow_array::{Array, RecordBatch, RecordBatchReader};
use arrow_schema::DataType as ArrowType;
use polars::prelude::*;

use super::bind::{Style, Value};
use crate::error::{Error, Result};
use crate::spec::profiles::AdbcProfile;
use crate::spec::template::{Redactor, TemplateVars, render};

/// Folders (`:`-separated) searched for drivers' shared libraries before the cache.
pub const DRIVERS_ENV: &str = "SCORCH_ADBC_DRIVERS";

/// The drivers `make adbc-drivers` installs, with their PyPI wheels' versions.
pub const KNOWN_DRIVERS: &[&str] = &["postgresql", "sqlite", "snowflake", "bigquery", "flightsql"];

/// The parameter style of a profile: its own, else `dollar` for PostgreSQL and
/// `qmark` for the other drivers.
pub fn param_style(p: &AdbcProfile) -> Style {
    p.param_style.unwrap_or_else(|| {
        if driver_name(&p.driver) == "postgresql" {
            Style::Dollar
        } else {
            Style::Qmark
        }
    })
}

/// The driver's short name: `postgresql` for `postgresql` and for
/// `/x/libadbc_driver_postgresql.so`.
fn driver_name(driver: &str) -> String {
    let stem = Path::new(driver)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| driver.to_string());
    stem.trim_start_matches("lib")
        .trim_start_matches("adbc_driver_")
        .to_ascii_lowercase()
}

/// The folders searched for a driver named by name: `$SCORCH_ADBC_DRIVERS`, then
/// `$SCORCH_CACHE/adbc`, then `~/.cache/scorch/adbc`.
pub fn driver_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os(DRIVERS_ENV)
        .map(|v| std::env::split_paths(&v).collect())
        .unwrap_or_default();
    if let Some(c) = std::env::var_os("SCORCH_CACHE") {
        dirs.push(PathBuf::from(c).join("adbc"));
    }
    if let Some(h) = std::env::var_os("HOME") {
        dirs.push(PathBuf::from(h).join(".cache/scorch/adbc"));
    }
    dirs.dedup();
    dirs
}

/// Finds a driver's shared library: a path (absolute, or relative to `root`), or
/// a name looked for in [`driver_dirs`] as `libadbc_driver_NAME.so`, directly or
/// in the wheel's `adbc_driver_NAME/` folder.
pub fn locate_driver(driver: &str, root: &Path) -> Result<PathBuf> {
    let looks_like_path = driver.contains('/') || driver.ends_with(".so");
    if looks_like_path {
        let p = root.join(driver);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(Error::usage(format!(
                "ADBC driver library {} does not exist; give the path of a driver's shared \
                 library (libadbc_driver_NAME.so) or a driver name ({})",
                p.display(),
                KNOWN_DRIVERS.join(", ")
            )))
        };
    }
    let name = driver_name(driver);
    let file = format!("libadbc_driver_{name}.so");
    let dirs = driver_dirs();
    for d in &dirs {
        for cand in [
            d.join(&file),
            d.join(format!("adbc_driver_{name}")).join(&file),
        ] {
            if cand.is_file() {
                return Ok(cand);
            }
        }
    }
    let fix = if KNOWN_DRIVERS.contains(&name.as_str()) {
        format!(
            "run `make adbc-drivers` (installs PyPI's adbc-driver-{} wheel into $SCORCH_CACHE/adbc), \
             or `pip install --target DIR adbc-driver-{}` and set ${DRIVERS_ENV}=DIR",
            name.replace('_', "-"),
            name.replace('_', "-")
        )
    } else {
        format!(
            "put {file} in one of those folders, set ${DRIVERS_ENV} to its folder, or give \
             `driver:` the library's path"
        )
    };
    Err(Error::usage(format!(
        "ADBC driver `{driver}` not found: no {file} in {}; {fix}",
        dirs.iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )))
}

/// The error of an ADBC operation. Authentication, permission, bad option and
/// SQL errors are configuration errors (exit 2); the rest runtime errors (exit 1).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct AdbcError {
    message: String,
    config: bool,
}

impl crate::error::LayerError for AdbcError {
    fn kind(&self) -> crate::error::Kind {
        if self.config {
            crate::error::Kind::Config
        } else {
            crate::error::Kind::Internal
        }
    }
}

/// Whether a driver option holds a credential (its value is then kept out of every
/// log, error and manifest, wherever it came from): `…password…`, `…secret…`,
/// `…token…`, `…credential…`, `…private_key…`.
fn is_credential(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    ["password", "secret", "token", "credential", "private_key"]
        .iter()
        .any(|p| k.contains(p))
}

/// Whether a driver's message says the credentials or the database were refused.
/// Drivers report those as I/O errors without an SQLSTATE (libpq's connection
/// errors, for one), yet they are the profile's to fix, not the network's.
fn refused_credentials(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    [
        "authentication failed",
        "password",
        "permission denied",
        "not authorized",
        "unauthorized",
        "invalid credentials",
        "incorrect username",
    ]
    .iter()
    .any(|p| m.contains(p))
        || (m.contains("database") && m.contains("does not exist"))
}

/// A query on an ADBC warehouse, ready to run.
#[derive(Clone)]
pub struct AdbcQuery {
    profile_name: String,
    library: PathBuf,
    driver: String,
    sql_file: PathBuf,
    sql: String,
    params: Vec<Value>,
    database_options: Vec<(String, String)>,
    statement_options: Vec<(String, String)>,
    /// Rows per FETCH of the PostgreSQL driver's cursor.
    fetch_rows: u32,
    /// For rewriting driver messages (secrets replaced).
    redactor: Redactor,
}

/// Builds the query from a profile, a SQL file and the job's params. Loads nothing.
pub fn prepare(
    profile_name: &str,
    profile: &AdbcProfile,
    root: &Path,
    sql_file: &Path,
    params: &std::collections::BTreeMap<String, String>,
    vars: &TemplateVars,
    red: &mut Redactor,
) -> Result<AdbcQuery> {
    let text = std::fs::read_to_string(sql_file).map_err(|e| {
        Error::config(
            sql_file,
            format!("cannot read SQL file (source.adbc.query): {e}"),
        )
    })?;
    if text.trim().is_empty() {
        return Err(Error::config(
            sql_file,
            "the SQL file is empty; write the query that selects the rows to score",
        ));
    }
    let style = param_style(profile);
    let (sql, placeholders) =
        super::bind::rewrite_with(&text, style).map_err(|e| Error::config(sql_file, e))?;
    let bound = super::bind::values(
        &placeholders,
        params,
        "source.adbc.params",
        sql_file,
        vars,
        red,
    )?;
    let mut field = |f: &str, v: &str, secret: bool| -> Result<String> {
        let r = render(v, vars)
            .map_err(|e| Error::usage(format!("profile `{profile_name}` field `{f}`: {e}")))?;
        red.add(&r);
        if secret {
            red.add_secret(&r.value);
        }
        Ok(r.value)
    };
    let driver = field("driver", &profile.driver, false)?;
    let mut database_options = Vec::new();
    let mut uri_password = None;
    if let Some(u) = &profile.uri {
        let u = field("uri", u, false)?;
        uri_password = super::postgres::url_password(&u);
        database_options.push(("uri".to_string(), u));
    }
    if let Some(u) = &profile.username {
        database_options.push(("username".to_string(), field("username", u, false)?));
    }
    if let Some(p) = &profile.password {
        database_options.push(("password".to_string(), field("password", p, true)?));
    }
    for (k, v) in &profile.options {
        let value = field(&format!("options.{k}"), v, is_credential(k))?;
        database_options.push((k.clone(), value));
    }
    let mut statement_options = Vec::new();
    for (k, v) in &profile.statement_options {
        statement_options.push((
            k.clone(),
            field(&format!("statement_options.{k}"), v, false)?,
        ));
    }
    if let Some(pw) = uri_password {
        red.add_secret(&pw);
    }
    let library = locate_driver(&driver, root)?;
    Ok(AdbcQuery {
        profile_name: profile_name.to_string(),
        driver: driver_name(&driver),
        library,
        sql_file: sql_file.to_path_buf(),
        sql,
        params: bound,
        database_options,
        statement_options,
        fetch_rows: profile.fetch_rows,
        redactor: red.clone(),
    })
}

/// An open connection; the driver and database live as long as it. Statements
/// made from it are dropped before it (they are declared first where they are held).
struct Session {
    conn: adbc_driver_manager::ManagedConnection,
    _db: adbc_driver_manager::ManagedDatabase,
    _driver: adbc_driver_manager::ManagedDriver,
}

/// The cursor through which the PostgreSQL driver streams a query with parameters.
const CURSOR: &str = "scorch_cursor";

impl AdbcQuery {
    fn what(&self) -> String {
        format!(
            "ADBC profile `{}` (driver {}), query {}",
            self.profile_name,
            self.driver,
            self.sql_file.display()
        )
    }

    /// Maps a driver error to scorch's exit codes.
    fn error(&self, phase: &str, e: adbc_core::error::Error) -> Error {
        use adbc_core::error::Status;
        let sqlstate: String = e
            .sqlstate
            .iter()
            .take_while(|c| **c != 0)
            .map(|c| *c as u8 as char)
            .collect();
        let config = matches!(
            e.status,
            Status::Unauthenticated
                | Status::Unauthorized
                | Status::InvalidArguments
                | Status::NotFound
                | Status::AlreadyExists
                | Status::NotImplemented
        ) || sqlstate.starts_with("42")
            || sqlstate.starts_with("28")
            || sqlstate == "3D000"
            || refused_credentials(&e.message);
        let mut message = format!("{}: {phase}: {}", self.what(), e.message.trim());
        if !sqlstate.is_empty() && sqlstate != "00000" {
            message.push_str(&format!(" (SQLSTATE {sqlstate})"));
        }
        AdbcError {
            message: self.redactor.redact(&message),
            config,
        }
        .into()
    }

    /// Loads the driver and connects.
    fn connect(&self) -> Result<Session> {
        let mut driver = adbc_driver_manager::ManagedDriver::load_dynamic_from_filename(
            &self.library,
            None,
            AdbcVersion::V110,
        )
        .map_err(|e| {
            Error::usage(format!(
                "{}: cannot load the ADBC driver {}: {}; reinstall it (`make adbc-drivers`) or \
                 point the profile's `driver` at a working library",
                self.what(),
                self.library.display(),
                e.message.trim()
            ))
        })?;
        let opts = self.database_options.iter().map(|(k, v)| {
            (
                OptionDatabase::from(k.as_str()),
                OptionValue::String(v.clone()),
            )
        });
        let db = driver.new_database_with_opts(opts).map_err(|e| {
            self.error("open the database (check the profile's uri and options)", e)
        })?;
        let conn = db.new_connection().map_err(|e| self.error("connect", e))?;
        Ok(Session {
            conn,
            _db: db,
            _driver: driver,
        })
    }

    /// A statement of `sql` with the profile's statement options, and the
    /// parameters bound when `bind`.
    fn statement(
        &self,
        session: &mut Session,
        sql: &str,
        bind: bool,
    ) -> Result<adbc_driver_manager::ManagedStatement> {
        let mut stmt = session
            .conn
            .new_statement()
            .map_err(|e| self.error("new statement", e))?;
        for (k, v) in &self.statement_options {
            stmt.set_option(
                OptionStatement::Other(k.clone()),
                OptionValue::String(v.clone()),
            )
            .map_err(|e| self.error(&format!("statement option `{k}`"), e))?;
        }
        stmt.set_sql_query(sql)
            .map_err(|e| self.error("set the query", e))?;
        if bind && !self.params.is_empty() {
            stmt.bind(self.param_batch()?)
                .map_err(|e| self.error("bind parameters", e))?;
        }
        Ok(stmt)
    }

    /// One row of parameters, in order: dates as `date32` (text for SQLite), text as strings.
    fn param_batch(&self) -> Result<RecordBatch> {
        use arrow_array::{ArrayRef, Date32Array, StringArray};
        let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid");
        let dates_as_text = self.driver == "sqlite";
        let columns: Vec<(String, ArrayRef)> = self
            .params
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let a: ArrayRef = match v {
                    Value::Date(d) if dates_as_text => {
                        std::sync::Arc::new(StringArray::from(vec![
                            d.format("%Y-%m-%d").to_string(),
                        ]))
                    }
                    Value::Date(d) => {
                        std::sync::Arc::new(Date32Array::from(vec![(*d - epoch).num_days() as i32]))
                    }
                    Value::Text(s) => std::sync::Arc::new(StringArray::from(vec![s.clone()])),
                };
                (format!("p{}", i + 1), a)
            })
            .collect();
        RecordBatch::try_from_iter(columns)
            .map_err(|e| Error::Internal(format!("{}: parameters: {e}", self.what())))
    }

    /// `SELECT <columns> FROM (<query>) AS scorch_query`, identifiers quoted for the driver.
    fn wrapped(&self, columns: &[String]) -> String {
        let q = if self.driver == "bigquery" { '`' } else { '"' };
        let select = columns
            .iter()
            .map(|c| format!("{q}{}{q}", c.replace(q, &format!("{q}{q}"))))
            .collect::<Vec<_>>()
            .join(", ");
        let body = self.sql.trim().trim_end_matches(';');
        format!("SELECT {select} FROM (\n{body}\n) AS scorch_query")
    }

    /// The result's schema: the driver's description of the query where it gives
    /// one (nothing executed), else the schema of the executed query's stream.
    pub fn schema(&self) -> Result<Schema> {
        let mut session = self.connect()?;
        let mut stmt = self.statement(&mut session, &self.sql, true)?;
        let arrow = match stmt.execute_schema() {
            Ok(s) => s,
            Err(e) if e.status == adbc_core::error::Status::NotImplemented => {
                let reader = stmt.execute().map_err(|e| self.error("execute", e))?;
                reader.schema().as_ref().clone()
            }
            Err(e) => return Err(self.error("describe the query", e)),
        };
        drop(stmt);
        let mut seen = std::collections::BTreeSet::new();
        let mut fields = Vec::with_capacity(arrow.fields().len());
        for f in arrow.fields() {
            if !seen.insert(f.name().clone()) {
                return Err(Error::usage(format!(
                    "{}: the query returns two columns named `{}`; alias one",
                    self.what(),
                    f.name()
                )));
            }
            let empty = arrow_array::new_empty_array(f.data_type());
            let s = self.to_series(f.name(), empty.as_ref())?;
            fields.push(Field::new(f.name().as_str().into(), s.dtype().clone()));
        }
        Ok(Schema::from_iter(fields))
    }

    /// A record batch as a frame, its buffers handed over through the C data interface.
    fn to_frame(&self, batch: &RecordBatch) -> Result<DataFrame> {
        let schema = batch.schema();
        let mut cols = Vec::with_capacity(batch.num_columns());
        for (f, a) in schema.fields().iter().zip(batch.columns()) {
            cols.push(self.to_series(f.name(), a.as_ref())?.into_column());
        }
        Ok(DataFrame::new(batch.num_rows(), cols)?)
    }

    fn to_series(&self, name: &str, a: &dyn Array) -> Result<Series> {
        let t = a.data_type();
        let supported = matches!(
            t,
            ArrowType::Null
                | ArrowType::Boolean
                | ArrowType::Int8
                | ArrowType::Int16
                | ArrowType::Int32
                | ArrowType::Int64
                | ArrowType::UInt8
                | ArrowType::UInt16
                | ArrowType::UInt32
                | ArrowType::UInt64
                | ArrowType::Float32
                | ArrowType::Float64
                | ArrowType::Utf8
                | ArrowType::LargeUtf8
                | ArrowType::Utf8View
                | ArrowType::Date32
                | ArrowType::Timestamp(_, _)
        );
        if !supported {
            return Err(Error::usage(format!(
                "{}: column `{name}` has Arrow type {t}, which scorch does not map; cast it in \
                 the query (to a float, integer, text, date or timestamp)",
                self.what()
            )));
        }
        let (array, schema) = arrow_array::ffi::to_ffi(&a.to_data())
            .map_err(|e| Error::Internal(format!("{}: column `{name}`: {e}", self.what())))?;
        // SAFETY: arrow-rs's FFI_ArrowArray / FFI_ArrowSchema and polars-arrow's
        // ArrowArray / ArrowSchema are both the C data interface's #[repr(C)]
        // structs; the array is moved (its release callback runs once, in
        // Polars), the schema is borrowed and released by arrow-rs.
        let imported = unsafe {
            let pschema = &*(&schema as *const arrow_array::ffi::FFI_ArrowSchema
                as *const polars_arrow::ffi::ArrowSchema);
            let field = polars_arrow::ffi::import_field_from_c(pschema)?;
            let parray: polars_arrow::ffi::ArrowArray = std::mem::transmute(array);
            polars_arrow::ffi::import_array_from_c(parray, field.dtype)?
        };
        Ok(Series::from_arrow(name.into(), imported)?)
    }

    /// Runs the query for `columns` and hands each batch to `sink` as a frame (at
    /// least one, possibly empty). `sink` returns false to stop early.
    fn stream(&self, columns: &[String], mut sink: impl FnMut(DataFrame) -> bool) -> Result<()> {
        let mut session = self.connect()?;
        let sql = self.wrapped(columns);
        if self.driver == "postgresql" && !self.params.is_empty() {
            return self.stream_cursor(&mut session, &sql, sink);
        }
        let mut stmt = self.statement(&mut session, &sql, true)?;
        let reader = stmt.execute().map_err(|e| self.error("execute", e))?;
        self.pump(reader, &mut true, &mut sink)?;
        Ok(())
    }

    /// Hands the reader's batches to `sink` as frames; an empty one only while
    /// none has been handed yet (`first`), so the schema is always seen. Returns
    /// the rows read, or `None` when `sink` asked to stop.
    fn pump(
        &self,
        reader: Box<dyn RecordBatchReader + Send>,
        first: &mut bool,
        sink: &mut impl FnMut(DataFrame) -> bool,
    ) -> Result<Option<usize>> {
        let schema = reader.schema();
        let mut rows = 0;
        for batch in reader {
            let batch = batch.map_err(|e| self.fetch_error(e))?;
            rows += batch.num_rows();
            if batch.num_rows() == 0 && !*first {
                continue;
            }
            *first = false;
            if !sink(self.to_frame(&batch)?) {
                return Ok(None);
            }
        }
        if *first {
            *first = false;
            if !sink(self.to_frame(&RecordBatch::new_empty(schema))?) {
                return Ok(None);
            }
        }
        Ok(Some(rows))
    }

    fn fetch_error(&self, e: arrow_schema::ArrowError) -> Error {
        Error::Internal(
            self.redactor
                .redact(&format!("{}: fetch: {e}", self.what())),
        )
    }

    /// The PostgreSQL driver streams a query through `COPY … TO STDOUT`, which
    /// takes no parameters; with parameters it would buffer the whole result (5 M
    /// rows: 5 GiB). So a query with parameters runs as a server-side cursor,
    /// declared with the parameters bound, in a read-only transaction, and is
    /// fetched `fetch_rows` rows at a time.
    fn stream_cursor(
        &self,
        session: &mut Session,
        sql: &str,
        mut sink: impl FnMut(DataFrame) -> bool,
    ) -> Result<()> {
        use adbc_core::options::OptionConnection;
        session
            .conn
            .set_option(
                OptionConnection::AutoCommit,
                OptionValue::String("false".into()),
            )
            .map_err(|e| self.error("begin a transaction", e))?;
        let mut begin = self.statement(session, "SET TRANSACTION READ ONLY", false)?;
        begin
            .execute_update()
            .map_err(|e| self.error("begin a read-only transaction", e))?;
        drop(begin);
        let mut declare = self.statement(
            session,
            &format!("DECLARE {CURSOR} NO SCROLL CURSOR FOR {sql}"),
            true,
        )?;
        declare
            .execute_update()
            .map_err(|e| self.error("execute", e))?;
        drop(declare);
        let fetch = format!("FETCH FORWARD {} FROM {CURSOR}", self.fetch_rows);
        let mut first = true;
        loop {
            let mut stmt = self.statement(session, &fetch, false)?;
            // FETCH cannot be wrapped in COPY: read the result as rows.
            stmt.set_option(
                OptionStatement::Other("adbc.postgresql.use_copy".into()),
                OptionValue::String("false".into()),
            )
            .map_err(|e| self.error("fetch", e))?;
            let reader = stmt.execute().map_err(|e| self.error("fetch", e))?;
            match self.pump(reader, &mut first, &mut sink)? {
                None => return Ok(()),
                Some(rows) if rows < self.fetch_rows as usize => break,
                Some(_) => {}
            }
        }
        session
            .conn
            .rollback()
            .map_err(|e| self.error("end the transaction", e))
    }

    /// Runs the query for `columns` and returns all rows as one frame.
    pub fn read(&self, columns: &[String]) -> Result<DataFrame> {
        super::stack_stream(|sink| self.stream(columns, sink))
    }

    /// Runs the query for `columns` on a reader thread and yields its batches; at
    /// most one batch waits in the channel, so memory stays bounded.
    pub fn batches(&self, columns: &[String]) -> Result<crate::source::Batches> {
        let q = self.clone();
        let columns = columns.to_vec();
        super::stream_batches("scorch-adbc", move |sink| q.stream(&columns, sink))
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
    fn driver_names_and_styles() {
        assert_eq!(driver_name("postgresql"), "postgresql");
        assert_eq!(driver_name("/x/libadbc_driver_sqlite.so"), "sqlite");
        let mut p: AdbcProfile = serde_saphyr::from_str("driver: postgresql").unwrap();
        assert_eq!(param_style(&p), Style::Dollar);
        p.driver = "snowflake".into();
        assert_eq!(param_style(&p), Style::Qmark);
        p.param_style = Some(Style::Dollar);
        assert_eq!(param_style(&p), Style::Dollar);
    }

    #[test]
    fn credential_options_are_secret() {
        for k in [
            "adbc.bigquery.sql.auth_credentials",
            "adbc.snowflake.sql.client_option.auth_token",
            "adbc.flight.sql.authorization_header_token",
            "adbc.snowflake.sql.client_option.jwt_private_key_pkcs8_password",
        ] {
            assert!(is_credential(k), "{k}");
        }
        assert!(!is_credential("adbc.snowflake.sql.warehouse"));
    }

    #[test]
    fn a_missing_driver_names_the_folders_and_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let e = locate_driver("nosuchdriver", dir.path()).unwrap_err();
        assert_eq!(e.exit_code(), crate::error::ExitCode::Config);
        assert!(
            e.to_string().contains("libadbc_driver_nosuchdriver.so"),
            "{e}"
        );
        let e = locate_driver("postgresql_missing_x", dir.path()).unwrap_err();
        assert!(
            e.to_string().contains("adbc_driver_postgresql_missing_x"),
            "{e}"
        );
        let e = locate_driver("drivers/libx.so", dir.path()).unwrap_err();
        assert!(e.to_string().contains("does not exist"), "{e}");
    }

    #[test]
    fn record_batches_cross_into_polars_with_nulls_and_types() {
        use arrow_array::*;
        use std::sync::Arc;
        let batch = RecordBatch::try_from_iter([
            (
                "i",
                Arc::new(Int64Array::from(vec![Some(1), None, Some(i64::MIN)])) as ArrayRef,
            ),
            (
                "f",
                Arc::new(Float64Array::from(vec![
                    Some(f64::NAN),
                    Some(f64::INFINITY),
                    None,
                ])),
            ),
            (
                "s",
                Arc::new(StringArray::from(vec![Some("é"), None, Some("")])),
            ),
            (
                "d",
                Arc::new(Date32Array::from(vec![Some(20000), None, Some(-1)])),
            ),
            (
                "t",
                Arc::new(
                    TimestampMicrosecondArray::from(vec![Some(1), None, Some(-5)])
                        .with_timezone("UTC"),
                ),
            ),
            (
                "b",
                Arc::new(BooleanArray::from(vec![Some(true), None, Some(false)])),
            ),
        ])
        .unwrap();
        let q = AdbcQuery {
            profile_name: "p".into(),
            library: PathBuf::new(),
            driver: "x".into(),
            sql_file: PathBuf::new(),
            sql: String::new(),
            params: vec![],
            database_options: vec![],
            statement_options: vec![],
            fetch_rows: 1000,
            redactor: Redactor::default(),
        };
        let df = q.to_frame(&batch).unwrap();
        assert_eq!(df.height(), 3);
        let i = df.column("i").unwrap().i64().unwrap();
        assert_eq!(i.get(0), Some(1));
        assert_eq!(i.get(1), None);
        assert_eq!(i.get(2), Some(i64::MIN));
        let f = df.column("f").unwrap().f64().unwrap();
        assert!(f.get(0).unwrap().is_nan());
        assert_eq!(f.get(1), Some(f64::INFINITY));
        assert_eq!(df.column("s").unwrap().str().unwrap().get(0), Some("é"));
        assert_eq!(df.column("d").unwrap().dtype(), &DataType::Date);
        assert_eq!(
            df.column("t").unwrap().dtype(),
            &DataType::Datetime(TimeUnit::Microseconds, Some(TimeZone::UTC))
        );
        assert_eq!(df.column("b").unwrap().bool().unwrap().get(1), None);
        // A sliced batch (offset ≠ 0) keeps its rows.
        let df = q.to_frame(&batch.slice(1, 2)).unwrap();
        assert_eq!(
            df.column("i").unwrap().i64().unwrap().get(1),
            Some(i64::MIN)
        );
        // Decimals are refused with the column's name.
        let dec = RecordBatch::try_from_iter([(
            "amount",
            Arc::new(
                Decimal128Array::from(vec![Some(1)])
                    .with_precision_and_scale(10, 2)
                    .unwrap(),
            ) as ArrayRef,
        )])
        .unwrap();
        let e = q.to_frame(&dec).unwrap_err();
        assert!(e.to_string().contains("`amount`"), "{e}");
    }
}
