//! Rendering of templated strings in job specs.
//!
//! Two kinds of placeholders are understood:
//! - `{{ ds }}` — the run's logical date as `YYYY-MM-DD` (Airflow's name),
//!   `{{ ds_nodash }}` — the same as `YYYYMMDD`, and `{{ ds_add(N) }}` — the date N
//!   days later (negative: earlier), as `YYYY-MM-DD`, for date ranges;
//! - `${NAME}` — the environment variable `NAME` (per-machine settings and
//!   secrets). A value is secret because of where it is used, not because it came
//!   from the environment: a variable the job lists under `secrets:`, a credential
//!   field of a profile, the password of a URL's userinfo. Every rendered string
//!   also has a *redacted* form — secret variables left as `${NAME}`, URL passwords
//!   as `***` — which is what manifests, logs and Parquet metadata record; other
//!   variables (a deployment name such as `dev`) are recorded as their value.
//!
//! Anything else between `{{` and `}}` is an error, as is a `${NAME}` whose
//! variable is unset, so a typo cannot silently become an empty path.

use chrono::NaiveDate;

/// The values placeholders are filled from.
#[derive(Debug, Clone)]
pub struct TemplateVars {
    /// The logical date of the run.
    pub ds: NaiveDate,
    /// Environment variables whose values are secret (the job's `secrets:`).
    pub secret: Vec<String>,
}

impl TemplateVars {
    /// The variables of a run of a job for `ds` (the job's secret variables).
    pub fn new(ds: NaiveDate, secret: &[String]) -> Self {
        TemplateVars {
            ds,
            secret: secret.to_vec(),
        }
    }

    /// Date only: no variable is declared secret.
    pub fn date(ds: NaiveDate) -> Self {
        TemplateVars { ds, secret: vec![] }
    }
}

/// A rendered template: the real value, and the form safe to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub value: String,
    pub redacted: String,
    /// The secret values substituted (declared secret variables, URL passwords),
    /// each with what it is shown as (`${NAME}`, `***`), so derived strings
    /// (expanded file paths, error messages) can be redacted too.
    pub secrets: Vec<(String, String)>,
}

/// Renders `template`; `env` looks up environment variables (injectable for tests).
pub fn render_with(
    template: &str,
    vars: &TemplateVars,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Rendered, String> {
    let mut value = String::with_capacity(template.len());
    let mut redacted = String::with_capacity(template.len());
    let mut secrets = Vec::new();
    let mut rest = template;
    while !rest.is_empty() {
        let next_brace = rest.find("{{");
        let next_env = rest.find("${");
        let at = match (next_brace, next_env) {
            (None, None) => {
                value.push_str(rest);
                redacted.push_str(rest);
                break;
            }
            (Some(a), None) | (None, Some(a)) => a,
            (Some(a), Some(b)) => a.min(b),
        };
        value.push_str(&rest[..at]);
        redacted.push_str(&rest[..at]);
        rest = &rest[at..];
        if rest.starts_with("{{") {
            let end = rest
                .find("}}")
                .ok_or_else(|| format!("unclosed `{{{{` in template {template:?}"))?;
            let name = rest[2..end].trim();
            let v = match name {
                "ds" => vars.ds.format("%Y-%m-%d").to_string(),
                "ds_nodash" => vars.ds.format("%Y%m%d").to_string(),
                other => match parse_ds_add(other) {
                    Some(days) => add_days(vars.ds, days)
                        .ok_or_else(|| format!("`{other}` leaves the calendar in {template:?}"))?
                        .format("%Y-%m-%d")
                        .to_string(),
                    None => {
                        return Err(format!(
                            "unknown template variable `{other}` in {template:?} (known: ds, ds_nodash, ds_add(N))"
                        ));
                    }
                },
            };
            value.push_str(&v);
            redacted.push_str(&v);
            rest = &rest[end + 2..];
        } else {
            let end = rest
                .find('}')
                .ok_or_else(|| format!("unclosed `${{` in template {template:?}"))?;
            let name = &rest[2..end];
            if name.is_empty()
                || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                || name.starts_with(|c: char| c.is_ascii_digit())
            {
                return Err(format!(
                    "invalid environment variable name `{name}` in {template:?}"
                ));
            }
            let v = env(name).ok_or_else(|| {
                format!("environment variable `{name}` is not set (used in {template:?})")
            })?;
            value.push_str(&v);
            if vars.secret.iter().any(|s| s == name) {
                if !v.is_empty() {
                    secrets.push((v, format!("${{{name}}}")));
                }
                redacted.push_str(&rest[..=end]);
            } else {
                redacted.push_str(&v);
            }
            rest = &rest[end + 1..];
        }
    }
    // A URL's password is secret wherever it is written.
    if let Some(pw) = crate::spec::secret::url_password(&value) {
        redacted = crate::spec::secret::display_url(&redacted);
        secrets.push((pw, "***".into()));
    }
    Ok(Rendered {
        value,
        redacted,
        secrets,
    })
}

/// Parses `ds_add(N)` (spaces allowed) into N.
pub fn parse_ds_add(s: &str) -> Option<i64> {
    let inner = s
        .strip_prefix("ds_add")?
        .trim_start()
        .strip_prefix('(')?
        .strip_suffix(')')?;
    let n: i64 = inner.trim().parse().ok()?;
    (n.abs() <= 100_000).then_some(n)
}

/// `ds` moved by `days` days.
pub fn add_days(ds: NaiveDate, days: i64) -> Option<NaiveDate> {
    ds.checked_add_signed(chrono::TimeDelta::try_days(days)?)
}

/// Renders `template` against the process environment.
pub fn render(template: &str, vars: &TemplateVars) -> Result<Rendered, String> {
    render_with(template, vars, &|k| std::env::var(k).ok())
}

/// Checks that `rendered` stays inside the base folder of `template` — its text
/// before the first `{{` or `${`, up to the last `/` — so that neither a date nor
/// an environment value can walk an output path out with `..`. A template without
/// such parts is the user's own literal path and is not restricted; with an empty
/// base (`${ROOT}/x`), the rendered path may not contain `..` at all.
pub fn confine(template: &str, rendered: &str) -> Result<(), String> {
    let first = [template.find("{{"), template.find("${")]
        .into_iter()
        .flatten()
        .min();
    let Some(first) = first else {
        return Ok(());
    };
    let base = &template[..template[..first].rfind('/').map_or(0, |i| i + 1)];
    let norm = |p: &str| -> Option<Vec<String>> {
        let mut out: Vec<String> = Vec::new();
        for part in p.split('/') {
            match part {
                "." => {}
                "" if !out.is_empty() && !out.last().is_some_and(|l| l.ends_with(':')) => {}
                ".." => match out.last().map(String::as_str) {
                    // Above a relative path's start: kept, as the path means it.
                    None | Some("..") => out.push("..".into()),
                    // Above `/` or a URL's bucket.
                    Some(l) if l.is_empty() || l.ends_with(':') => return None,
                    Some(_) => {
                        out.pop();
                    }
                },
                other => out.push(other.to_string()),
            }
        }
        Some(out)
    };
    let escape = || {
        if base.is_empty() {
            format!("{rendered:?} (from {template:?}) contains `..`")
        } else {
            format!("{rendered:?} (from {template:?}) leaves its base folder `{base}`")
        }
    };
    if base.is_empty() {
        return if rendered.split('/').any(|c| c == "..") {
            Err(escape())
        } else {
            Ok(())
        };
    }
    let (Some(b), Some(r)) = (norm(base), norm(rendered)) else {
        return Err(escape());
    };
    if r.len() >= b.len() && r[..b.len()] == b[..] {
        Ok(())
    } else {
        Err(escape())
    }
}

/// Checks a template's syntax without needing the environment: every `{{ }}`
/// names a known variable and every `${}` a well-formed variable name.
pub fn check_syntax(template: &str) -> Result<(), String> {
    let vars = TemplateVars::date(NaiveDate::from_ymd_opt(2000, 1, 1).expect("valid date"));
    render_with(template, &vars, &|_| Some(String::new())).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> TemplateVars {
        TemplateVars::new(
            NaiveDate::from_ymd_opt(2026, 11, 28).unwrap(),
            &["BUCKET".into()],
        )
    }

    #[test]
    fn renders_dates_and_env_and_redacts_declared_secrets() {
        let env = |k: &str| match k {
            "BUCKET" => Some("s3cr3t".to_string()),
            "ENVNAME" => Some("dev".to_string()),
            _ => None,
        };
        let r = render_with("data/${BUCKET}/ds={{ ds }}/{{ds_nodash}}", &vars(), &env).unwrap();
        assert_eq!(r.value, "data/s3cr3t/ds=2026-11-28/20261128");
        assert_eq!(r.redacted, "data/${BUCKET}/ds=2026-11-28/20261128");
        assert_eq!(
            r.secrets,
            vec![("s3cr3t".to_string(), "${BUCKET}".to_string())]
        );
        // An undeclared variable is a setting, not a secret: recorded as its value.
        let r = render_with("out/${ENVNAME}/scores", &vars(), &env).unwrap();
        assert_eq!(r.redacted, "out/dev/scores");
        assert!(r.secrets.is_empty());
        // A URL's password is secret wherever it comes from.
        let r = render_with("http://u:pw@host:8080/x", &vars(), &env).unwrap();
        assert_eq!(r.redacted, "http://u:***@host:8080/x");
        assert_eq!(r.secrets, vec![("pw".to_string(), "***".to_string())]);
    }

    #[test]
    fn rendered_paths_stay_in_their_base_folder() {
        assert!(confine("output/{{ ds }}", "output/2026-11-28").is_ok());
        assert!(confine("output/${T}/x", "output/team-a/x").is_ok());
        assert!(confine("s3://lake/scores/${T}", "s3://lake/scores/a/b").is_ok());
        assert!(confine("../shared/out/{{ ds }}", "../shared/out/2026-11-28").is_ok());
        assert!(confine("literal/../path", "literal/../path").is_ok());
        let e = confine("output/${T}/x", "output/../../etc/x").unwrap_err();
        assert!(e.contains("leaves its base folder `output/`"), "{e}");
        assert!(confine("output/${T}", "output/..").is_err());
        assert!(confine("output/${T}", "output/a/../../b").is_err());
        assert!(confine("s3://lake/scores/${T}", "s3://lake/other").is_err());
        assert!(confine("s3://lake/scores/${T}", "s3://lake/scores/../../x").is_err());
        assert!(confine("${ROOT}/x", "/data/out/x").is_ok());
        assert!(confine("${ROOT}/x", "../x").is_err());
    }

    #[test]
    fn rejects_unknown_variables_and_unset_env() {
        let none = |_: &str| None;
        assert!(
            render_with("{{ dt }}", &vars(), &none)
                .unwrap_err()
                .contains("unknown template variable `dt`")
        );
        assert!(
            render_with("${NOPE}", &vars(), &none)
                .unwrap_err()
                .contains("`NOPE` is not set")
        );
        assert!(render_with("{{ ds ", &vars(), &none).is_err());
        let r = render_with("{{ ds_add(-6) }}..{{ds_add( 3 )}}", &vars(), &none).unwrap();
        assert_eq!(r.value, "2026-11-22..2026-12-01");
        assert!(render_with("{{ ds_add(x) }}", &vars(), &none).is_err());
        assert!(check_syntax("a/${1X}").is_err());
        assert!(check_syntax("a/${X}/{{ ds }}").is_ok());
    }
}

/// The secret values a run has seen (declared secret variables, credential fields
/// of profiles, URL passwords), to redact strings derived from them — expanded file
/// paths, error messages of drivers and stores — before they are recorded. It works
/// on those typed values (a path, a message), never on serialized output.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    /// (value, shown as), longest value first.
    secrets: Vec<(String, String)>,
}

impl Redactor {
    /// Remembers the secrets of a rendered template.
    pub fn add(&mut self, r: &Rendered) {
        for (value, shown) in &r.secrets {
            self.add_as(value, shown);
        }
    }
    /// Remembers a secret that did not come from a secret variable (a credential
    /// field of a profile).
    pub fn add_secret(&mut self, secret: &str) {
        self.add_as(secret, "***");
    }

    fn add_as(&mut self, secret: &str, shown: &str) {
        if !secret.is_empty() && !self.secrets.iter().any(|(s, _)| s == secret) {
            self.secrets.push((secret.to_string(), shown.to_string()));
            // Longest first, so a secret containing another is replaced whole.
            self.secrets
                .sort_by_key(|(s, _)| std::cmp::Reverse(s.len()));
        }
    }
    /// `s` with every remembered secret replaced by what it is shown as (`${NAME}`
    /// for a secret variable, `***` for a credential), and the password of any URL
    /// in it by `***`.
    pub fn redact(&self, s: &str) -> String {
        let mut out = crate::spec::secret::redact_urls(s);
        for (secret, shown) in &self.secrets {
            out = out.replace(secret.as_str(), shown);
        }
        out
    }
}
