//! Data contracts (`schemas/*.yaml`): what a job's input must look like.
//!
//! ```yaml
//! name: churn_features
//! columns:
//!   customer_id: {dtype: int64, nullable: false}
//!   age: {dtype: float64, min: 0, max: 120}
//!   plan: {dtype: string, allowed: [basic, standard, premium, enterprise]}
//! unique: [customer_id]
//! row_count: {min: 1000}
//! freshness: {column: last_seen, max_age_hours: 48}
//! max_invalid_fraction: 0.01
//! ```
//!
//! Three kinds of rule, checked at three moments:
//! - **schema** (a column missing, or of another type): before any row is read; the
//!   run stops with exit 3 naming the column and the contract file;
//! - **rows** (nulls where `nullable: false`, values outside `min`/`max`, not in
//!   `allowed`, not matching `regex`, a repeated `unique` key): each chunk, as it
//!   is read. Offending rows are not scored; they go to a quarantine Parquet file
//!   with a `quarantine_reason` column naming every rule they break;
//! - **dataset** (`row_count`, `freshness`, `max_invalid_fraction`): once all rows
//!   are read, before anything is published; a breach is exit 3 and the previous
//!   partition stays as it was.
//!
//! [`Contract::validate`] is pure; [`Checker`] does the work.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Problems, Result};
use crate::spec::load_yaml;

/// A data contract file.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Contract {
    /// Contract name, for messages and the manifest.
    pub name: String,
    /// Free text for humans.
    #[serde(default)]
    pub description: Option<String>,
    /// Column name → its rules. Columns not listed are not checked.
    #[serde(default)]
    pub columns: BTreeMap<String, ColumnRule>,
    /// Columns whose values together must be unique across the input (e.g. the entity
    /// key). The second and later rows with a key already seen are quarantined.
    #[serde(default)]
    pub unique: Vec<String>,
    /// Bounds on the number of rows read (before quarantine).
    #[serde(default)]
    pub row_count: Option<RowCount>,
    /// The newest value of a timestamp or date column must be at most this old,
    /// measured from the end of the run's logical date (`ds` + 1 day, 00:00 UTC), so
    /// backfills are judged as they would have been on the day.
    #[serde(default)]
    pub freshness: Option<Freshness>,
    /// The largest share of rows that may be quarantined before the run fails
    /// (exit 3). Default 0: any invalid row fails the run (the quarantine file is
    /// still written, for inspection).
    #[serde(default)]
    pub max_invalid_fraction: f64,
}

/// Rules for one column.
#[derive(Debug, Clone, Default, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ColumnRule {
    /// Required type: `int8/16/32/64`, `uint8/16/32/64`, `float32/64`, `bool`,
    /// `string`, `date`, `datetime`, or the families `integer`, `float`, `numeric`.
    #[serde(default)]
    pub dtype: Option<String>,
    /// `false`: a null is a row violation. Default `true`.
    #[serde(default = "default_true")]
    pub nullable: bool,
    /// Smallest allowed value (numbers), inclusive.
    #[serde(default)]
    pub min: Option<f64>,
    /// Largest allowed value (numbers), inclusive.
    #[serde(default)]
    pub max: Option<f64>,
    /// The only values allowed (compared as text); nulls are governed by `nullable`.
    #[serde(default)]
    pub allowed: Option<Vec<String>>,
    /// A regular expression (Rust `regex` syntax) that string values must match
    /// somewhere (anchor it with `^…$` for a whole-value match).
    #[serde(default)]
    pub regex: Option<String>,
    /// `true`: NaN and ±infinity are row violations (numbers). Default `false`.
    #[serde(default)]
    pub finite: bool,
}

/// Bounds on the row count.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RowCount {
    #[serde(default)]
    pub min: Option<u64>,
    #[serde(default)]
    pub max: Option<u64>,
}

/// How recent the data must be.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Freshness {
    /// A Date or Datetime column.
    pub column: String,
    /// The newest value may be at most this many hours before the end of the run date.
    pub max_age_hours: f64,
}

fn default_true() -> bool {
    true
}

const DTYPES: &[&str] = &[
    "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float32", "float64",
    "bool", "string", "date", "datetime", "integer", "float", "numeric",
];

fn dtype_matches(want: &str, dt: &DataType) -> bool {
    match want {
        "int8" => *dt == DataType::Int8,
        "int16" => *dt == DataType::Int16,
        "int32" => *dt == DataType::Int32,
        "int64" => *dt == DataType::Int64,
        "uint8" => *dt == DataType::UInt8,
        "uint16" => *dt == DataType::UInt16,
        "uint32" => *dt == DataType::UInt32,
        "uint64" => *dt == DataType::UInt64,
        "float32" => *dt == DataType::Float32,
        "float64" => *dt == DataType::Float64,
        "bool" => *dt == DataType::Boolean,
        "string" => *dt == DataType::String,
        "date" => *dt == DataType::Date,
        "datetime" => matches!(dt, DataType::Datetime(_, _)),
        "integer" => dt.is_integer(),
        "float" => dt.is_float(),
        "numeric" => dt.is_primitive_numeric(),
        _ => false,
    }
}

impl Contract {
    /// Reads and validates a contract file.
    pub fn load(path: &Path) -> Result<Self> {
        let c: Contract = load_yaml(path)?;
        c.validate().into_result(path)?;
        Ok(c)
    }

    /// Pure checks: known dtypes, compilable regexes, sensible bounds.
    pub fn validate(&self) -> Problems {
        let mut p = Problems::new();
        if self.name.trim().is_empty() {
            p.push("name", "must not be empty");
        }
        for (name, r) in &self.columns {
            let f = |k: &str| format!("columns.{name}.{k}");
            if let Some(d) = &r.dtype
                && !DTYPES.contains(&d.as_str())
            {
                p.push(
                    f("dtype"),
                    format!("{d:?} is not one of {}", DTYPES.join(", ")),
                );
            }
            if let (Some(lo), Some(hi)) = (r.min, r.max)
                && lo > hi
            {
                p.push(f("min"), format!("{lo} is above max {hi}"));
            }
            if let Some(re) = &r.regex
                && let Err(e) = regex::Regex::new(re)
            {
                p.push(f("regex"), format!("not a valid regular expression: {e}"));
            }
        }
        if let Some(rc) = &self.row_count
            && let (Some(lo), Some(hi)) = (rc.min, rc.max)
            && lo > hi
        {
            p.push("row_count.min", format!("{lo} is above max {hi}"));
        }
        if let Some(fr) = &self.freshness
            && !(fr.max_age_hours.is_finite() && fr.max_age_hours > 0.0)
        {
            p.push("freshness.max_age_hours", "must be a positive number");
        }
        if !(0.0..=1.0).contains(&self.max_invalid_fraction) {
            p.push("max_invalid_fraction", "must be between 0 and 1");
        }
        let mut seen = HashSet::new();
        for u in &self.unique {
            if !seen.insert(u) {
                p.push("unique", format!("column `{u}` is listed twice"));
            }
        }
        p
    }

    /// Every column the contract reads (to add to the columns a run reads).
    pub fn columns_read(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .columns
            .iter()
            .filter(|(_, r)| {
                !r.nullable
                    || r.min.is_some()
                    || r.max.is_some()
                    || r.allowed.is_some()
                    || r.regex.is_some()
            })
            .map(|(n, _)| n.clone())
            .collect();
        for u in &self.unique {
            if !out.contains(u) {
                out.push(u.clone());
            }
        }
        if let Some(f) = &self.freshness
            && !out.contains(&f.column)
        {
            out.push(f.column.clone());
        }
        out
    }

    /// Checks the input's schema: every listed column present with its dtype.
    pub fn check_schema(&self, file: &Path, schema: &Schema) -> Result<()> {
        let mut named: Vec<(&str, Option<&str>)> = self
            .columns
            .iter()
            .map(|(n, r)| (n.as_str(), r.dtype.as_deref()))
            .collect();
        named.extend(self.unique.iter().map(|u| (u.as_str(), None)));
        if let Some(f) = &self.freshness {
            named.push((f.column.as_str(), None));
        }
        for (name, want) in named {
            let Some(dt) = schema.get(name) else {
                return Err(Error::DataContract(format!(
                    "contract `{}` ({}): the input has no column `{name}`",
                    self.name,
                    file.display()
                )));
            };
            if let Some(w) = want
                && !dtype_matches(w, dt)
            {
                return Err(Error::DataContract(format!(
                    "contract `{}` ({}): column `{name}` is {dt}, the contract requires {w}",
                    self.name,
                    file.display()
                )));
            }
        }
        if let Some(f) = &self.freshness {
            let dt = schema.get(f.column.as_str()).expect("checked");
            if !matches!(dt, DataType::Date | DataType::Datetime(_, _)) {
                return Err(Error::DataContract(format!(
                    "contract `{}` ({}): freshness column `{}` is {dt}, not a date or datetime",
                    self.name,
                    file.display(),
                    f.column
                )));
            }
        }
        Ok(())
    }
}

/// The name of the reason column of quarantined rows.
pub const REASON_COLUMN: &str = "quarantine_reason";

/// A contract's rule could not be evaluated on a chunk (exit 3), with Polars'
/// error as the source.
#[derive(Debug, thiserror::Error)]
#[error("{who}: {source}")]
pub struct ContractError {
    /// `contract `<name>` (<file>)`.
    who: String,
    #[source]
    source: PolarsError,
}

impl crate::error::LayerError for ContractError {
    fn kind(&self) -> crate::error::Kind {
        crate::error::Kind::DataContract
    }
}

/// Applies a contract to a run's chunks, in order.
pub struct Checker {
    pub contract: Contract,
    pub file: PathBuf,
    /// One (violation expression, reason) per row rule.
    rules: Vec<(Expr, String)>,
    /// Hashes of the unique keys seen so far.
    seen: HashSet<u64>,
    /// Rows read and quarantined so far.
    pub rows: u64,
    pub invalid: u64,
    /// The newest value of the freshness column, in microseconds since the epoch.
    newest_us: Option<i64>,
}

/// A chunk split by the contract.
pub struct Split {
    /// Rows that pass, to be scored.
    pub valid: DataFrame,
    /// Rows that do not, with [`REASON_COLUMN`] (None when there are none).
    pub quarantined: Option<DataFrame>,
}

impl Checker {
    pub fn new(contract: Contract, file: PathBuf) -> Self {
        let mut rules = Vec::new();
        for (name, r) in &contract.columns {
            let c = || col(name.as_str());
            if !r.nullable {
                rules.push((c().is_null(), format!("{name} is null")));
            }
            if r.finite {
                rules.push((
                    c().cast(DataType::Float64)
                        .is_finite()
                        .not()
                        .fill_null(lit(false)),
                    format!("{name} is NaN or infinite"),
                ));
            }
            if let Some(lo) = r.min {
                rules.push((
                    c().cast(DataType::Float64)
                        .lt(lit(lo))
                        .fill_null(lit(false)),
                    format!("{name} < min {lo}"),
                ));
            }
            if let Some(hi) = r.max {
                rules.push((
                    c().cast(DataType::Float64)
                        .gt(lit(hi))
                        .fill_null(lit(false)),
                    format!("{name} > max {hi}"),
                ));
            }
            if let Some(allowed) = &r.allowed {
                let set = lit(Series::new(PlSmallStr::EMPTY, allowed.clone())).implode(true);
                rules.push((
                    c().cast(DataType::String)
                        .is_in(set, false)
                        .not()
                        .fill_null(lit(false)),
                    format!("{name} not in allowed values"),
                ));
            }
            if let Some(re) = &r.regex {
                rules.push((
                    c().cast(DataType::String)
                        .str()
                        .contains(lit(re.as_str()), true)
                        .not()
                        .fill_null(lit(false)),
                    format!("{name} does not match regex"),
                ));
            }
        }
        Checker {
            contract,
            file,
            rules,
            seen: HashSet::new(),
            rows: 0,
            invalid: 0,
            newest_us: None,
        }
    }

    /// Splits a chunk into valid and quarantined rows.
    pub fn split(&mut self, df: DataFrame) -> Result<Split> {
        let n = df.height();
        self.rows += n as u64;
        let who = format!(
            "contract `{}` ({})",
            self.contract.name,
            self.file.display()
        );
        let ctx = |source: PolarsError| {
            Error::from(ContractError {
                who: who.clone(),
                source,
            })
        };
        self.note_freshness(&df).map_err(ctx)?;
        // One boolean column per rule: true where the row breaks it.
        let mut flags: Vec<BooleanChunked> = Vec::with_capacity(self.rules.len() + 1);
        let mut reasons: Vec<String> = Vec::with_capacity(self.rules.len() + 1);
        if !self.rules.is_empty() {
            let exprs: Vec<Expr> = self
                .rules
                .iter()
                .enumerate()
                .map(|(i, (e, _))| e.clone().alias(format!("r{i}")))
                .collect();
            let out = df.clone().lazy().select(exprs).collect().map_err(ctx)?;
            for (i, (_, reason)) in self.rules.iter().enumerate() {
                flags.push(
                    out.column(&format!("r{i}"))
                        .map_err(ctx)?
                        .bool()
                        .map_err(ctx)?
                        .clone(),
                );
                reasons.push(reason.clone());
            }
        }
        if !self.contract.unique.is_empty() {
            let dup = self.duplicates(&df).map_err(ctx)?;
            flags.push(dup);
            reasons.push(format!("duplicate {}", self.contract.unique.join(", ")));
        }
        let mut any = BooleanChunked::full("any".into(), false, n);
        for f in &flags {
            any = &any | f;
        }
        let bad = any.sum().unwrap_or(0) as u64;
        if bad == 0 {
            return Ok(Split {
                valid: df,
                quarantined: None,
            });
        }
        self.invalid += bad;
        let mut text: Vec<String> = vec![String::new(); n];
        for (f, reason) in flags.iter().zip(&reasons) {
            for (i, v) in f.iter().enumerate() {
                if v == Some(true) {
                    if !text[i].is_empty() {
                        text[i].push_str("; ");
                    }
                    text[i].push_str(reason);
                }
            }
        }
        let valid = df.filter(&!&any).map_err(ctx)?;
        let mut q = df.filter(&any).map_err(ctx)?;
        let reason: Vec<String> = text.into_iter().filter(|t| !t.is_empty()).collect();
        q.with_column(Column::new(REASON_COLUMN.into(), reason))
            .map_err(ctx)?;
        Ok(Split {
            valid,
            quarantined: Some(q),
        })
    }

    /// True for rows whose unique key was already seen (in this chunk or an earlier one).
    fn duplicates(&mut self, df: &DataFrame) -> PolarsResult<BooleanChunked> {
        let state = PlSeedableRandomStateQuality::seed_from_u64(0x5C0C);
        let mut hashes: Vec<u64> = Vec::with_capacity(df.height());
        for (i, k) in self.contract.unique.iter().enumerate() {
            let s = df.column(k.as_str())?.as_materialized_series();
            if i == 0 {
                s.vec_hash(state.clone(), &mut hashes)?;
            } else {
                s.vec_hash_combine(state.clone(), &mut hashes)?;
            }
        }
        Ok(hashes
            .into_iter()
            .map(|h| !self.seen.insert(h))
            .collect::<BooleanChunked>())
    }

    fn note_freshness(&mut self, df: &DataFrame) -> PolarsResult<()> {
        let Some(f) = &self.contract.freshness else {
            return Ok(());
        };
        let c = df.column(f.column.as_str())?;
        let us = c
            .cast(&DataType::Datetime(TimeUnit::Microseconds, None))?
            .cast(&DataType::Int64)?;
        if let Some(m) = us.i64()?.max() {
            self.newest_us = Some(self.newest_us.map_or(m, |o| o.max(m)));
        }
        Ok(())
    }

    /// The dataset rules, once every chunk was split. `ds` is the run's logical date.
    pub fn finish(&self, ds: chrono::NaiveDate) -> Result<()> {
        let who = format!(
            "contract `{}` ({})",
            self.contract.name,
            self.file.display()
        );
        if let Some(rc) = &self.contract.row_count {
            if let Some(lo) = rc.min
                && self.rows < lo
            {
                return Err(Error::DataContract(format!(
                    "{who}: {} rows read, row_count.min is {lo}",
                    self.rows
                )));
            }
            if let Some(hi) = rc.max
                && self.rows > hi
            {
                return Err(Error::DataContract(format!(
                    "{who}: {} rows read, row_count.max is {hi}",
                    self.rows
                )));
            }
        }
        if let Some(f) = &self.contract.freshness {
            let end = ds
                .succ_opt()
                .unwrap_or(ds)
                .and_hms_opt(0, 0, 0)
                .expect("midnight")
                .and_utc()
                .timestamp_micros();
            let limit = end - (f.max_age_hours * 3600e6) as i64;
            match self.newest_us {
                None => {
                    return Err(Error::DataContract(format!(
                        "{who}: freshness column `{}` has no values",
                        f.column
                    )));
                }
                Some(t) if t < limit => {
                    let age_h = (end - t) as f64 / 3600e6;
                    return Err(Error::DataContract(format!(
                        "{who}: the newest `{}` is {age_h:.1} hours before the end of {ds}, \
                         freshness.max_age_hours is {}",
                        f.column, f.max_age_hours
                    )));
                }
                Some(_) => {}
            }
        }
        if self.invalid > 0 {
            let frac = self.invalid as f64 / self.rows.max(1) as f64;
            if frac > self.contract.max_invalid_fraction {
                return Err(Error::DataContract(format!(
                    "{who}: {} of {} rows ({:.4}%) break row rules, max_invalid_fraction is {}; \
                     see the quarantine file",
                    self.invalid,
                    self.rows,
                    frac * 100.0,
                    self.contract.max_invalid_fraction
                )));
            }
        }
        Ok(())
    }
}
