//! The declarative preprocessing spec (YAML under `preprocess/`).
//!
//! ```yaml
//! name: churn_features
//! version: 1.0.0
//! derived:
//!   - name: charges_per_month
//!     sql: "total_charges / (tenure_months + 1)"
//! features:
//!   - column: age
//!     steps:
//!       - fill_null: {strategy: mean}
//!       - clip: {min: 18, max: 90}
//!       - standardize
//!   - column: plan
//!     steps:
//!       - fill_null: {strategy: constant, value: none}
//!       - one_hot: {max_categories: 10}
//! ```
//!
//! Each feature is one input (or derived) column pushed through its steps in
//! order. Steps that learn from data (`mean`/`mode` fills, `standardize`,
//! `min_max`, the encoders, quantile `bucketize`) are fitted on the training
//! data by `scorch preprocess fit`, each on the output of the steps before it,
//! and the learned values go into the state file the model bundle pins.

use serde::{Deserialize, Serialize};

use crate::error::Problems;
use crate::spec::is_simple_name;

/// A named, versioned preprocessing spec.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PreprocessSpec {
    /// Name of the spec; the model bundle pins it.
    pub name: String,
    /// Version of the spec (any string; semantic versions recommended); the bundle pins it.
    pub version: String,
    /// Free text for humans.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Columns computed first, in order, from Polars SQL expressions over the input
    /// columns and the derived columns before them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub derived: Vec<Derived>,
    /// The model's features, in the order the model sees them (one-hot features expand in place).
    pub features: Vec<FeatureSpec>,
}

/// A column computed by a SQL expression.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Derived {
    /// Name of the new column.
    pub name: String,
    /// A Polars SQL expression, e.g. `total_charges / (tenure_months + 1)` or
    /// `CASE WHEN plan = 'pro' THEN 1 ELSE 0 END`.
    pub sql: String,
}

/// One feature: an input column and the steps applied to it.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FeatureSpec {
    /// The input or derived column the feature is computed from.
    pub column: String,
    /// Name of the output feature; defaults to `column`. One-hot features are named
    /// `<name>=<category>` plus `<name>=__unknown__`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The steps, applied in order.
    #[serde(default)]
    pub steps: Vec<Step>,
}

impl FeatureSpec {
    /// The output name (before one-hot expansion).
    pub fn out_name(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.column)
    }
}

/// One preprocessing step.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema, PartialEq)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Step {
    /// Strict cast: a value that cannot be converted stops the run (exit 3).
    Cast(CastTo),
    /// Replace nulls by a constant, or by the fitted mean or mode.
    FillNull(FillNull),
    /// Limit values to `[min, max]` (either bound optional).
    Clip(Clip),
    /// `ln(1 + x)`.
    Log1p,
    /// `(x - mean) / std` with the fitted mean and population standard deviation
    /// (ddof = 0, as scikit-learn's StandardScaler); a zero std is replaced by 1.
    Standardize,
    /// `(x - min) / (max - min)` with the fitted min and max; a zero range is replaced by 1.
    MinMax,
    /// One column per fitted category (1.0 when equal, else 0.0), plus an unknown bucket
    /// column that is 1.0 for categories not in the vocabulary and for nulls. Must be last.
    OneHot(Encode),
    /// The fitted category's position in the vocabulary, 1-based; 0 is the unknown bucket
    /// (unseen categories and nulls). Must be last.
    Ordinal(Encode),
    /// The number of boundaries `<= x` (0..=len), from fixed `boundaries` or fitted quantiles.
    Bucketize(Bucketize),
}

impl Step {
    /// The step's name as written in YAML.
    pub fn kind(&self) -> &'static str {
        match self {
            Step::Cast(_) => "cast",
            Step::FillNull(_) => "fill_null",
            Step::Clip(_) => "clip",
            Step::Log1p => "log1p",
            Step::Standardize => "standardize",
            Step::MinMax => "min_max",
            Step::OneHot(_) => "one_hot",
            Step::Ordinal(_) => "ordinal",
            Step::Bucketize(_) => "bucketize",
        }
    }
    /// True for the encoders, which turn any value into numbers and must come last.
    pub fn is_encoder(&self) -> bool {
        matches!(self, Step::OneHot(_) | Step::Ordinal(_))
    }
}

/// Target types of `cast`.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, schemars::JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum CastTo {
    Float64,
    Float32,
    Int64,
    Int32,
    Boolean,
    String,
}

/// How `fill_null` finds its value.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FillNull {
    /// `constant` (needs `value`), `mean` (numbers) or `mode` (most frequent value; ties
    /// go to the smallest value).
    pub strategy: FillStrategy,
    /// The constant, for `strategy: constant`: a number, a string or a boolean.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Scalar>,
}

/// Strategies of `fill_null`.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, schemars::JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum FillStrategy {
    Constant,
    Mean,
    Mode,
}

/// A constant value in a spec or a fitted state.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema, PartialEq)]
#[serde(untagged)]
pub enum Scalar {
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
}

/// Bounds of `clip`.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Clip {
    /// Lower bound, inclusive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// Upper bound, inclusive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
}

/// Options of the encoders.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Encode {
    /// Keep at most this many categories (the most frequent; ties by value).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_categories: Option<usize>,
    /// Keep only categories seen at least this many times in the training data.
    #[serde(default = "default_min_frequency")]
    pub min_frequency: u64,
}

fn default_min_frequency() -> u64 {
    1
}

/// Options of `bucketize`: exactly one of `boundaries` or `quantiles`.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Bucketize {
    /// Fixed, strictly increasing boundaries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boundaries: Option<Vec<f64>>,
    /// Fit `quantiles - 1` boundaries at equally spaced quantiles (linear interpolation);
    /// duplicates are dropped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantiles: Option<usize>,
}

/// The name of the unknown bucket of `one_hot`.
pub const UNKNOWN_CATEGORY: &str = "__unknown__";

impl PreprocessSpec {
    /// Pure checks: names, step order and step options. Returns every problem.
    pub fn validate(&self) -> Problems {
        let mut p = Problems::new();
        if !is_simple_name(&self.name) {
            p.push("name", "must be 1-128 letters, digits, `_`, `-` or `.`");
        }
        if self.version.trim().is_empty() || self.version.len() > 64 {
            p.push("version", "must be 1-64 characters");
        }
        let mut derived_names = std::collections::BTreeSet::new();
        for (i, d) in self.derived.iter().enumerate() {
            if d.name.trim().is_empty() {
                p.push(format!("derived[{i}].name"), "must not be empty");
            }
            if !derived_names.insert(d.name.as_str()) {
                p.push(
                    format!("derived[{i}].name"),
                    format!("`{}` is defined twice", d.name),
                );
            }
            if let Err(e) = polars::sql::sql_expr(&d.sql) {
                p.push(
                    format!("derived[{i}].sql"),
                    format!("not a valid SQL expression: {e}"),
                );
            }
        }
        if self.features.is_empty() {
            p.push("features", "name at least one feature");
        }
        let mut names = std::collections::BTreeSet::new();
        for (i, f) in self.features.iter().enumerate() {
            let at = format!("features[{i}]");
            if f.column.trim().is_empty() {
                p.push(format!("{at}.column"), "must not be empty");
            }
            if !names.insert(f.out_name()) {
                p.push(
                    format!("{at}.name"),
                    format!(
                        "feature `{}` is defined twice; give one a distinct `name`",
                        f.out_name()
                    ),
                );
            }
            for (j, s) in f.steps.iter().enumerate() {
                let sat = format!("{at}.steps[{j}].{}", s.kind());
                if s.is_encoder() && j + 1 != f.steps.len() {
                    p.push(&sat, "an encoder must be the last step of its feature");
                }
                match s {
                    Step::FillNull(fill) => match (fill.strategy, &fill.value) {
                        (FillStrategy::Constant, None) => {
                            p.push(&sat, "strategy `constant` needs a `value`")
                        }
                        (FillStrategy::Mean | FillStrategy::Mode, Some(_)) => {
                            p.push(&sat, "`value` goes only with strategy `constant`")
                        }
                        _ => {}
                    },
                    Step::Clip(c) => match (c.min, c.max) {
                        (None, None) => p.push(&sat, "give `min`, `max` or both"),
                        (Some(a), Some(b)) if a > b => {
                            p.push(&sat, format!("min {a} is greater than max {b}"))
                        }
                        (a, b) if a.is_some_and(f64::is_nan) || b.is_some_and(f64::is_nan) => {
                            p.push(&sat, "bounds must be numbers, not NaN")
                        }
                        _ => {}
                    },
                    Step::OneHot(e) | Step::Ordinal(e) => {
                        if e.max_categories == Some(0) {
                            p.push(&sat, "`max_categories` must be at least 1");
                        }
                    }
                    Step::Bucketize(b) => match (&b.boundaries, b.quantiles) {
                        (Some(bs), None) => {
                            if bs.is_empty() || bs.windows(2).any(|w| w[0] >= w[1]) {
                                p.push(
                                    &sat,
                                    "`boundaries` must be non-empty and strictly increasing",
                                );
                            }
                            if bs.iter().any(|x| !x.is_finite()) {
                                p.push(&sat, "`boundaries` must be finite numbers");
                            }
                        }
                        (None, Some(q)) if !(2..=1000).contains(&q) => {
                            p.push(&sat, "`quantiles` must be between 2 and 1000")
                        }
                        (None, Some(_)) => {}
                        _ => p.push(&sat, "give exactly one of `boundaries` or `quantiles`"),
                    },
                    Step::Cast(_) | Step::Log1p | Step::Standardize | Step::MinMax => {}
                }
            }
        }
        p
    }

    /// Every column the spec reads from the input, in first-use order (derived columns excluded).
    /// Columns referenced inside derived SQL expressions are included.
    pub fn input_columns(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let derived: std::collections::BTreeSet<&str> =
            self.derived.iter().map(|d| d.name.as_str()).collect();
        let mut add = |c: String| {
            if !derived.contains(c.as_str()) && !out.contains(&c) {
                out.push(c);
            }
        };
        for d in &self.derived {
            if let Ok(e) = polars::sql::sql_expr(&d.sql) {
                for c in e.meta().root_names() {
                    add(c.to_string());
                }
            }
        }
        for f in &self.features {
            add(f.column.clone());
        }
        out
    }
}
