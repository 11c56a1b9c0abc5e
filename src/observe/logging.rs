//! Logs on stderr: human-readable lines, or one flat JSON object per event
//! (`--log-format json`) with the fields of the event and of its spans at the top
//! level, so a run's lines carry its `run_id` whatever thread wrote them.

/// Log formats (`--log-format`).
#[derive(Debug, Clone, Copy, clap::ValueEnum, PartialEq, Eq)]
pub enum LogFormat {
    Human,
    Json,
}

/// Whether logs are JSON (set once by [`init_logging`]).
static JSON_LOGS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether [`init_logging`] set up JSON logs: errors are then one more JSON line.
pub fn json_logs() -> bool {
    JSON_LOGS.load(std::sync::atomic::Ordering::Relaxed)
}

/// Sets up logging on stderr.
pub fn init_logging(format: LogFormat, verbose: u8, quiet: bool) {
    use tracing_subscriber::EnvFilter;
    let default = if quiet {
        "warn"
    } else {
        match verbose {
            // delta-rs and its kernel narrate every snapshot at info: warnings only.
            0 => "info,buoyant_kernel=warn,buoyant_kernel_engine=warn,deltalake_core=warn",
            1 => "debug",
            _ => "trace",
        }
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    JSON_LOGS.store(
        format == LogFormat::Json,
        std::sync::atomic::Ordering::Relaxed,
    );
    match format {
        LogFormat::Json => b
            .fmt_fields(tracing_subscriber::fmt::format::JsonFields::new())
            .event_format(FlatJson)
            .init(),
        LogFormat::Human => b
            .with_target(false)
            .with_ansi(colour())
            .fmt_fields(HumanFields)
            .init(),
    }
}

/// Whether human logs are coloured: only on a terminal, and never with a
/// non-empty `NO_COLOR` (<https://no-color.org>).
fn colour() -> bool {
    std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// A number as human logs show it: seconds (`*_s`, `seconds`) to the
/// millisecond, other numbers to 7 significant digits (very large and very small
/// ones with an exponent); ±inf and NaN as they are.
fn human_number(name: &str, v: f64) -> String {
    if !v.is_finite() {
        format!("{v}")
    } else if name.ends_with("_s") || name == "seconds" {
        format!("{v:.3}")
    } else {
        // Round through the exponent form, then print the shortest form of that.
        let r: f64 = format!("{v:.6e}").parse().unwrap_or(v);
        if r != 0.0 && (r.abs() >= 1e15 || r.abs() < 1e-4) {
            format!("{r:e}")
        } else {
            format!("{r}")
        }
    }
}

/// The fields of human log lines: tracing's default layout, with numbers rounded.
struct HumanFields;

impl<'a> tracing_subscriber::field::MakeVisitor<tracing_subscriber::fmt::format::Writer<'a>>
    for HumanFields
{
    type Visitor = HumanVisitor<'a>;

    fn make_visitor(&self, target: tracing_subscriber::fmt::format::Writer<'a>) -> Self::Visitor {
        HumanVisitor(tracing_subscriber::fmt::format::DefaultVisitor::new(
            target, true,
        ))
    }
}

struct HumanVisitor<'a>(tracing_subscriber::fmt::format::DefaultVisitor<'a>);

impl tracing::field::Visit for HumanVisitor<'_> {
    fn record_f64(&mut self, field: &tracing::field::Field, value: f64) {
        self.0.record_debug(
            field,
            &format_args!("{}", human_number(field.name(), value)),
        );
    }

    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.record_str(field, value);
    }

    fn record_error(
        &mut self,
        field: &tracing::field::Field,
        value: &(dyn std::error::Error + 'static),
    ) {
        self.0.record_error(field, value);
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.record_debug(field, value);
    }
}

impl tracing_subscriber::field::VisitOutput<std::fmt::Result> for HumanVisitor<'_> {
    fn finish(self) -> std::fmt::Result {
        self.0.finish()
    }
}

impl tracing_subscriber::field::VisitFmt for HumanVisitor<'_> {
    fn writer(&mut self) -> &mut dyn std::fmt::Write {
        self.0.writer()
    }
}

/// JSON log lines with the fields of the event and of every span it is in at the
/// top level: `{"timestamp", "level", "target", "message", "run_id", "job", …}`.
/// A run's lines (from any of its threads) carry its `run_id`.
struct FlatJson;

impl<S, N> tracing_subscriber::fmt::FormatEvent<S, N> for FlatJson
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        use serde_json::Value;
        let mut obj = serde_json::Map::new();
        obj.insert(
            "timestamp".into(),
            Value::from(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)),
        );
        obj.insert(
            "level".into(),
            Value::from(event.metadata().level().as_str()),
        );
        obj.insert("target".into(), Value::from(event.metadata().target()));
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                let ext = span.extensions();
                if let Some(f) = ext.get::<tracing_subscriber::fmt::FormattedFields<N>>()
                    && let Ok(Value::Object(m)) = serde_json::from_str::<Value>(&f.fields)
                {
                    obj.extend(m);
                }
            }
        }
        struct Fields<'a>(&'a mut serde_json::Map<String, Value>);
        impl tracing::field::Visit for Fields<'_> {
            fn record_debug(&mut self, f: &tracing::field::Field, v: &dyn std::fmt::Debug) {
                self.0
                    .insert(f.name().into(), Value::from(format!("{v:?}")));
            }
            fn record_str(&mut self, f: &tracing::field::Field, v: &str) {
                self.0.insert(f.name().into(), Value::from(v));
            }
            fn record_i64(&mut self, f: &tracing::field::Field, v: i64) {
                self.0.insert(f.name().into(), Value::from(v));
            }
            fn record_u64(&mut self, f: &tracing::field::Field, v: u64) {
                self.0.insert(f.name().into(), Value::from(v));
            }
            fn record_f64(&mut self, f: &tracing::field::Field, v: f64) {
                self.0.insert(f.name().into(), Value::from(v));
            }
            fn record_bool(&mut self, f: &tracing::field::Field, v: bool) {
                self.0.insert(f.name().into(), Value::from(v));
            }
        }
        event.record(&mut Fields(&mut obj));
        writeln!(writer, "{}", Value::Object(obj))
    }
}

#[cfg(test)]
mod tests {
    use super::human_number;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn every_number_prints_short_and_close(v in proptest::num::f64::ANY, seconds in any::<bool>()) {
            let name = if seconds { "infer_s" } else { "psi" };
            let text = human_number(name, v);
            if v.is_finite() && !seconds {
                prop_assert!(text.len() <= 16, "{v:e}: {text}");
                let back: f64 = text.parse().unwrap();
                prop_assert!((back - v).abs() <= 1e-6 * v.abs(), "{v:e}: {text}");
            }
            if v.is_finite() && seconds && v.abs() < 1e9 {
                prop_assert!(text.len() <= 14, "{v:e}: {text}");
            }
        }
    }

    #[test]
    fn human_logs_round_numbers_and_keep_odd_ones() {
        assert_eq!(human_number("read_s", 0.010656240999999999), "0.011");
        assert_eq!(human_number("seconds", 12.0), "12.000");
        assert_eq!(human_number("psi", 0.10656240999), "0.1065624");
        assert_eq!(human_number("rows", 20000.0), "20000");
        assert_eq!(human_number("x", 1e-300), "1e-300");
        assert_eq!(human_number("x", f64::MAX), "1.797693e308");
        assert_eq!(human_number("x", 0.00001234567891), "1.234568e-5");
        assert_eq!(human_number("x", -0.0), "-0");
        assert_eq!(human_number("read_s", f64::NAN), "NaN");
        assert_eq!(human_number("x", f64::NEG_INFINITY), "-inf");
    }
}
