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
    seconds: f64 = WAIT;
}

/// A probability or decision threshold: a number in [0, 1] (`--thresholds`).
pub fn unit_interval(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err(format!("{s:?} is not a number between 0 and 1")),
    }
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
}
