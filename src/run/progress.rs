//! The progress bar of `scorch run` on a terminal: rows written, rows/s and the time
//! left when the input size is known (local Parquet files); a counter otherwise.
//! Off when stderr is not a terminal or with `--quiet` (the CLI decides).

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A progress bar, or nothing.
pub struct Bar(Option<ProgressBar>);

impl Bar {
    /// A bar over `total` rows (a counter when `None`); hidden unless `show`.
    pub fn new(show: bool, total: Option<u64>) -> Self {
        if !show {
            return Bar(None);
        }
        let bar = match total {
            Some(n) => ProgressBar::with_draw_target(Some(n), ProgressDrawTarget::stderr())
                .with_style(
                    ProgressStyle::with_template(
                        "{bar:30} {human_pos}/{human_len} rows  {per_sec:>14}  ETA {eta}",
                    )
                    .expect("valid template"),
                ),
            None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()).with_style(
                ProgressStyle::with_template(
                    "{spinner} {human_pos} rows  {per_sec:>14}  {elapsed}",
                )
                .expect("valid template"),
            ),
        };
        Bar(Some(bar))
    }

    /// Sets the rows written so far.
    pub fn set(&self, rows: u64) {
        if let Some(b) = &self.0 {
            b.set_position(rows);
        }
    }

    /// Removes the bar (the run summary follows).
    pub fn finish(&self) {
        if let Some(b) = &self.0 {
            b.finish_and_clear();
        }
    }
}
