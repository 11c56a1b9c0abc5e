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
            0 => "info",
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
        LogFormat::Human => b.with_target(false).init(),
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
