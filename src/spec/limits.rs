//! The bounds of every numeric setting, in one place: job YAML fields, command-line
//! flags and `SCORCH_*` environment variables are checked by the same [`Range`] or
//! [`Seconds`], so a value refused in a job file is refused on the command line
//! too (exit 2, naming the field or flag).

/// Bounds of a whole-number setting.
#[derive(Debug, Clone, Copy)]
pub struct Range {
    pub lo: u64,
    pub hi: u64,
    /// What a special value means, for the message (e.g. "0 = one per core").
    pub note: &'static str,
}

impl Range {
    /// Checks a value already read (from YAML).
    pub fn check(&self, v: u64) -> Result<(), String> {
        if (self.lo..=self.hi).contains(&v) {
            Ok(())
        } else {
            Err(self.expected())
        }
    }

    fn expected(&self) -> String {
        let note = if self.note.is_empty() {
            String::new()
        } else {
            format!(" ({})", self.note)
        };
        format!(
            "must be a whole number between {} and {}{note}",
            self.lo, self.hi
        )
    }

    /// Parses and checks a command-line or environment value.
    pub fn parse(&self, s: &str) -> Result<usize, String> {
        let v: u64 = s
            .trim()
            .parse()
            .map_err(|_| format!("{s:?} {}", self.expected()))?;
        self.check(v).map_err(|e| format!("{s:?} {e}"))?;
        usize::try_from(v).map_err(|_| format!("{s:?} {}", self.expected()))
    }
}

/// Bounds of a duration in seconds: finite, from 0 to `max`.
#[derive(Debug, Clone, Copy)]
pub struct Seconds {
    pub max: f64,
}

impl Seconds {
    pub fn check(&self, v: f64) -> Result<(), String> {
        if v.is_finite() && (0.0..=self.max).contains(&v) {
            Ok(())
        } else {
            Err(format!(
                "must be a number of seconds from 0 to {}",
                self.max
            ))
        }
    }

    pub fn parse(&self, s: &str) -> Result<f64, String> {
        let v: f64 = s
            .trim()
            .parse()
            .map_err(|_| format!("{s:?} is not a number of seconds"))?;
        self.check(v).map_err(|e| format!("{s:?} {e}"))?;
        Ok(v)
    }
}

/// `inference.threads`, `--threads`.
pub const THREADS: Range = Range {
    lo: 0,
    hi: 1024,
    note: "0 = one per core",
};
/// `inference.batch_size`, `--batch-size`.
pub const BATCH_SIZE: Range = Range {
    lo: 1,
    hi: 1 << 24,
    note: "",
};
/// `inference.chunk_rows`.
pub const CHUNK_ROWS: Range = Range {
    lo: 1,
    hi: 1 << 32,
    note: "",
};
/// `shards`, `--shards`, the COUNT of `--shard I/COUNT`.
pub const SHARDS: Range = Range {
    lo: 1,
    hi: 10_000,
    note: "",
};
/// `--parallel` of `scorch backfill`.
pub const PARALLEL: Range = Range {
    lo: 1,
    hi: 256,
    note: "",
};
/// `--count` of `scorch schedule --list`.
pub const COUNT: Range = Range {
    lo: 1,
    hi: 10_000,
    note: "",
};
/// `--limit` of `scorch runs`.
pub const LIMIT: Range = Range {
    lo: 1,
    hi: 1_000_000,
    note: "",
};
/// `--bins` of `scorch profile` and `scorch drift`.
pub const BINS: Range = Range {
    lo: 2,
    hi: 1000,
    note: "",
};
/// `--sketch` of `scorch profile`.
pub const SKETCH: Range = Range {
    lo: 2,
    hi: 100_000,
    note: "",
};
/// Memory budgets in MiB: `report.memory_budget_mb`, `output.keys_memory_mb`,
/// `--memory-budget-mb` of `scorch drift` (0 spills every chunk).
pub const MEMORY_MB: Range = Range {
    lo: 0,
    hi: 1 << 20,
    note: "0 = spill every chunk",
};
/// `--wait-lock`, `--grace`: at most a week.
pub const WAIT: Seconds = Seconds { max: 604_800.0 };

macro_rules! parsers {
    ($($name:ident: $t:ty = $bound:expr;)*) => {
        $(
            #[doc = concat!("Command-line parser of a `", stringify!($name), "` value.")]
            pub fn $name(s: &str) -> Result<$t, String> {
                $bound.parse(s)
            }
        )*
    };
}

parsers! {
    threads: usize = THREADS;
    batch_size: usize = BATCH_SIZE;
    shards: usize = SHARDS;
    parallel: usize = PARALLEL;
    count: usize = COUNT;
    limit: usize = LIMIT;
    bins: usize = BINS;
    sketch: usize = SKETCH;
    memory_mb: usize = MEMORY_MB;
    seconds: f64 = WAIT;
}

/// A probability or decision threshold: a number in [0, 1] (`--thresholds`).
pub fn unit_interval(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err(format!("{s:?} is not a number between 0 and 1")),
    }
}

/// A list of decision thresholds (`report.performance.thresholds`,
/// `shadow.thresholds`, `scorch profile --thresholds`): each in [0, 1], each once
/// (a threshold names its metrics, `estimated_f1@0.5`, so a repeat would write
/// the same metric twice), at most 64.
pub fn thresholds(ts: &[f64]) -> Result<(), String> {
    if let Some(t) = ts.iter().find(|t| !(0.0..=1.0).contains(*t)) {
        return Err(format!("threshold {t} is not between 0 and 1"));
    }
    for (i, t) in ts.iter().enumerate() {
        if ts[..i].contains(t) {
            return Err(format!("threshold {t} is listed twice"));
        }
    }
    if ts.len() > 64 {
        return Err(format!("{} thresholds: at most 64", ts.len()));
    }
    Ok(())
}

/// `--device` (and `inference.device`): `cpu`, `auto`, `cuda` or `cuda:N`.
pub fn device(s: &str) -> Result<String, String> {
    crate::spec::inference::DeviceChoice::parse(s).map(|_| s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_odd_number_is_refused_with_the_bounds() {
        for s in [
            "inf",
            "-inf",
            "nan",
            "NaN",
            "-1",
            "1e3",
            "9223372036854775808",
            "",
            " ",
        ] {
            assert!(threads(s).is_err(), "{s}");
        }
        assert_eq!(threads("0"), Ok(0));
        assert!(
            batch_size("0")
                .unwrap_err()
                .contains("between 1 and 16777216")
        );
        for s in ["inf", "nan", "-1", "-0.5", "1e300", "9223372036854775808"] {
            assert!(seconds(s).is_err(), "{s}");
        }
        assert_eq!(seconds("0"), Ok(0.0));
        assert_eq!(seconds("2.5"), Ok(2.5));
        assert!(device("cuda:x").is_err());
        assert_eq!(device("cuda:1").as_deref(), Ok("cuda:1"));
    }

    proptest::proptest! {
        /// Any list of numbers: accepted iff each lies in [0, 1], none repeats and
        /// there are at most 64.
        #[test]
        fn thresholds_are_in_the_unit_interval_distinct_and_few(
            ts in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::num::f64::ANY,
                    0.0..=1.0f64,
                    proptest::sample::select(vec![0.0, 1.0, 0.5, -0.0, f64::NAN, f64::INFINITY]),
                ],
                0..70,
            )
        ) {
            let ok = ts.iter().all(|t| (0.0..=1.0).contains(t))
                && ts.iter().enumerate().all(|(i, t)| !ts[..i].contains(t))
                && ts.len() <= 64;
            proptest::prop_assert_eq!(thresholds(&ts).is_ok(), ok, "{:?}", ts);
        }
    }
}
