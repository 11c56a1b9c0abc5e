//! Bind parameters of warehouse queries: `{{ ds }}`, `{{ ds_add(N) }}`,
//! `{{ ds_nodash }}` and `{{ params.NAME }}` in a SQL file become parameters of
//! the driver's style, never text pasted into the query, so no value can change
//! the query. Shared by the PostgreSQL ([`super::postgres`]) and ADBC
//! ([`super::adbc`]) sources.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::NaiveDate;

use crate::error::{Error, Result};
pub use crate::spec::profiles::ParamStyle as Style;
use crate::spec::template::{Redactor, TemplateVars, render};

/// A placeholder found in a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placeholder {
    Ds,
    /// `{{ ds_add(N) }}`: the run date moved by N days, bound as a date.
    DsAdd(i64),
    DsNodash,
    Param(String),
}

/// Rewrites `{{ … }}` placeholders into numbered, typed bind parameters
/// (PostgreSQL's `$1::date`); see [`rewrite_with`].
pub fn rewrite(sql: &str) -> std::result::Result<(String, Vec<Placeholder>), String> {
    rewrite_with(sql, Style::Dollar)
}

/// Rewrites `{{ … }}` placeholders into bind parameters of `style` and returns the
/// placeholders in parameter order. Placeholders inside string literals, quoted
/// identifiers or dollar-quoted strings are refused (they would not be parameters
/// there), and so are hand-written parameters (`$1`, and `?` in the `qmark` style).
/// Comments are left as they are.
pub fn rewrite_with(
    sql: &str,
    style: Style,
) -> std::result::Result<(String, Vec<Placeholder>), String> {
    let b = sql.as_bytes();
    let mut out = String::with_capacity(sql.len());
    let mut found: Vec<Placeholder> = Vec::new();
    let mut i = 0;
    let mut line = 1;
    let quoted_err = |line: usize, what: &str| {
        format!(
            "line {line}: a `{{{{ … }}}}` placeholder inside {what}; write it bare \
             (`WHERE ds = {{{{ ds }}}}`): scorch binds it as a typed parameter"
        )
    };
    while i < b.len() {
        let c = b[i];
        // Copies a quoted span up to its closing delimiter, refusing placeholders in it.
        let skip_to = |end: &str, what: &str, from: usize| -> std::result::Result<usize, String> {
            let rest = &sql[from..];
            let stop = rest
                .find(end)
                .map(|p| from + p + end.len())
                .unwrap_or(sql.len());
            let span = &sql[i..stop];
            if !what.ends_with("comment") && span.contains("{{") {
                return Err(quoted_err(line, what));
            }
            Ok(stop)
        };
        let next = match c {
            b'\'' => skip_to("'", "a string literal", i + 1)?,
            b'"' => skip_to("\"", "a quoted identifier", i + 1)?,
            b'-' if b.get(i + 1) == Some(&b'-') => skip_to("\n", "a comment", i + 2)?,
            b'/' if b.get(i + 1) == Some(&b'*') => skip_to("*/", "a comment", i + 2)?,
            b'?' if style == Style::Qmark => {
                return Err(format!(
                    "line {line}: write `{{{{ params.NAME }}}}` (with `params:` in the job) instead of `?` parameters"
                ));
            }
            b'$' => {
                let rest = &sql[i + 1..];
                if rest.starts_with(|ch: char| ch.is_ascii_digit()) {
                    return Err(format!(
                        "line {line}: write `{{{{ params.NAME }}}}` (with `params:` in the job) instead of `$n` parameters"
                    ));
                }
                // Dollar quoting: $tag$ … $tag$
                let tag_len = rest.find('$').filter(|&p| {
                    rest[..p]
                        .chars()
                        .all(|ch| ch.is_alphanumeric() || ch == '_')
                });
                match tag_len {
                    Some(p) => {
                        let tag = &sql[i..i + p + 2];
                        skip_to(tag, "a dollar-quoted string", i + tag.len())?
                    }
                    None => i + 1,
                }
            }
            b'{' if b.get(i + 1) == Some(&b'{') => {
                let end = sql[i..]
                    .find("}}")
                    .map(|p| i + p)
                    .ok_or_else(|| format!("line {line}: unclosed `{{{{`"))?;
                let name = sql[i + 2..end].trim();
                let ph = match name {
                    "ds" => Placeholder::Ds,
                    n if crate::spec::template::parse_ds_add(n).is_some() => {
                        Placeholder::DsAdd(crate::spec::template::parse_ds_add(n).expect("checked"))
                    }
                    "ds_nodash" => Placeholder::DsNodash,
                    n => match n.strip_prefix("params.") {
                        Some(p) if !p.is_empty() => Placeholder::Param(p.to_string()),
                        _ => {
                            return Err(format!(
                                "line {line}: unknown placeholder `{n}` (known: ds, ds_nodash, ds_add(N), params.NAME)"
                            ));
                        }
                    },
                };
                match style {
                    Style::Dollar => {
                        let idx = match found.iter().position(|f| *f == ph) {
                            Some(k) => k + 1,
                            None => {
                                found.push(ph.clone());
                                found.len()
                            }
                        };
                        let ty = if matches!(ph, Placeholder::Ds | Placeholder::DsAdd(_)) {
                            "date"
                        } else {
                            "text"
                        };
                        out.push_str(&format!("${idx}::{ty}"));
                    }
                    Style::Qmark => {
                        found.push(ph);
                        out.push('?');
                    }
                }
                i = end + 2;
                continue;
            }
            _ => i + c.len_utf8_from_first_byte(),
        };
        line += sql[i..next].matches('\n').count();
        out.push_str(&sql[i..next]);
        i = next;
    }
    Ok((out, found))
}

trait Utf8Len {
    fn len_utf8_from_first_byte(self) -> usize;
}
impl Utf8Len for u8 {
    fn len_utf8_from_first_byte(self) -> usize {
        match self {
            0x00..=0x7f => 1,
            0xc0..=0xdf => 2,
            0xe0..=0xef => 3,
            _ => 4,
        }
    }
}

/// A bound parameter value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Date(NaiveDate),
    Text(String),
}

/// The values of `placeholders` for the run: dates from the run date, params
/// from the job's `params` (rendered, secrets remembered by `red`). `field` names
/// the job's params field in messages (`source.postgres.params`).
pub fn values(
    placeholders: &[Placeholder],
    params: &BTreeMap<String, String>,
    field: &str,
    sql_file: &Path,
    vars: &TemplateVars,
    red: &mut Redactor,
) -> Result<Vec<Value>> {
    let mut bound = Vec::with_capacity(placeholders.len());
    for ph in placeholders {
        bound.push(match ph {
            Placeholder::Ds => Value::Date(vars.ds),
            Placeholder::DsAdd(n) => Value::Date(
                crate::spec::template::add_days(vars.ds, *n).ok_or_else(|| {
                    Error::config(sql_file, format!("`ds_add({n})` leaves the calendar"))
                })?,
            ),
            Placeholder::DsNodash => Value::Text(vars.ds.format("%Y%m%d").to_string()),
            Placeholder::Param(name) => {
                let t = params.get(name).ok_or_else(|| {
                    Error::config(
                        sql_file,
                        format!("uses `{{{{ params.{name} }}}}`, but the job's `{field}` has no `{name}`"),
                    )
                })?;
                let r = render(t, vars).map_err(|e| Error::usage(format!("{field}.{name}: {e}")))?;
                red.add(&r);
                Value::Text(r.value)
            }
        });
    }
    Ok(bound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_become_typed_bind_parameters() {
        let (sql, ph) = rewrite(
            "SELECT * FROM t WHERE ds = {{ ds }} AND r = {{params.region}} AND d2 = {{ ds }} -- c\nAND x = 'a''b'",
        )
        .unwrap();
        assert_eq!(
            sql,
            "SELECT * FROM t WHERE ds = $1::date AND r = $2::text AND d2 = $1::date -- c\nAND x = 'a''b'"
        );
        assert_eq!(
            ph,
            vec![Placeholder::Ds, Placeholder::Param("region".into())]
        );
        let (sql, ph) = rewrite("WHERE ds BETWEEN {{ ds_add(-6) }} AND {{ ds }}").unwrap();
        assert_eq!(sql, "WHERE ds BETWEEN $1::date AND $2::date");
        assert_eq!(ph, vec![Placeholder::DsAdd(-6), Placeholder::Ds]);
    }

    #[test]
    fn quoted_placeholders_and_raw_parameters_are_refused() {
        assert!(
            rewrite("WHERE ds = '{{ ds }}'")
                .unwrap_err()
                .contains("string literal")
        );
        assert!(
            rewrite("WHERE ds = $1")
                .unwrap_err()
                .contains("params.NAME")
        );
        let (s, ph) = rewrite("/* {{ ds }} */ SELECT 1 -- {{ ds }}").unwrap();
        assert_eq!(s, "/* {{ ds }} */ SELECT 1 -- {{ ds }}");
        assert!(ph.is_empty());
        assert!(
            rewrite("SELECT $q${{ ds }}$q$")
                .unwrap_err()
                .contains("dollar-quoted")
        );
        assert!(
            rewrite("SELECT {{ nope }}")
                .unwrap_err()
                .contains("unknown placeholder")
        );
        // Dollar-quoted text without placeholders passes through untouched.
        let (s, _) = rewrite("SELECT $x$it's$x$, 'é{' FROM t").unwrap();
        assert_eq!(s, "SELECT $x$it's$x$, 'é{' FROM t");
    }

    #[test]
    fn qmark_style_binds_each_occurrence_and_refuses_raw_marks() {
        let (sql, ph) = rewrite_with(
            "SELECT * FROM t WHERE ds = {{ ds }} AND r = {{params.region}} AND d2 = {{ ds }} AND j = '?'",
            Style::Qmark,
        )
        .unwrap();
        assert_eq!(
            sql,
            "SELECT * FROM t WHERE ds = ? AND r = ? AND d2 = ? AND j = '?'"
        );
        assert_eq!(
            ph,
            vec![
                Placeholder::Ds,
                Placeholder::Param("region".into()),
                Placeholder::Ds
            ]
        );
        assert!(
            rewrite_with("WHERE a = ?", Style::Qmark)
                .unwrap_err()
                .contains("params.NAME")
        );
        // PostgreSQL's jsonb `?` operator is no parameter there.
        assert!(rewrite("WHERE doc ? 'k'").is_ok());
    }
}
