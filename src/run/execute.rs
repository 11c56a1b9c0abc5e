//! Running a plan: take the lock, score into a staged partition, judge it (row
//! counts, report, contract), publish it fenced, and record the run.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use polars::prelude::*;

use super::checks::{check_row_count, write_report};
use super::input::Input;
use super::models::Models;
use super::output::{Layout, output_frame};
use super::plan::{Prepared, RunPlan, Setup};
use super::{RunSummary, lock, manifest_bytes, pipeline, progress, rollout, shard, write_manifest};
use crate::error::{Error, Result};
use crate::sink::manifest::*;
use crate::sink::{self, ParquetOptions};

impl RunPlan {
    /// Runs the plan: takes the partition's (or shard's) lock, scores into a staged
    /// partition, judges it, publishes it and writes the run's manifest — with
    /// `status: failed` and the error when the run fails.
    pub fn execute(self) -> Result<RunSummary> {
        let RunPlan {
            mut setup,
            manifest: mut m,
            models,
            input,
            prepared,
            layout,
        } = self;
        let waited = Instant::now();
        let lock = lock::Lock::acquire(
            &setup.ctx.table,
            &setup.lock_name,
            lock::Holder::me(&m.run_id, &setup.ctx.job.name, m.kind),
            setup.opts.wait_lock,
        )
        .map_err(|e| e.redacted(|m| setup.ctx.redactor.redact(m)))?;
        // Waiting for another run's lock is not this run's time.
        setup.t0 += waited.elapsed();
        // The fencing token: what this run's commit may replace, read under its lock.
        let replaces = match &setup.delta {
            Some(log) => log
                .partition(&m.ds, &sink::delta::app_id(&setup.ctx.job.name, &m.ds))
                .map(sink::Replaces::Delta),
            None => setup.ctx.table.replaces(&setup.replaces),
        }
        .map_err(|e| e.redacted(|m| setup.ctx.redactor.redact(m)))?;
        crate::observe::run_started(&m, &setup.ctx.location);
        let run = Run {
            s: &setup,
            models: &models,
            input: &input,
            prepared: &prepared,
            layout: &layout,
        };
        let result = run.stage_and_publish(&lock, &replaces, &mut m);
        match result {
            Ok(partition) => {
                setup.finish(&mut m);
                m.status = RunStatus::Succeeded;
                let manifest_path = setup
                    .ctx
                    .table
                    .run_log()
                    .write_manifest(&m.run_id, &manifest_bytes(&m))?;
                crate::observe::run_finished(&m, &setup.ctx.location);
                Ok(RunSummary {
                    manifest: m,
                    partition: setup.ctx.redactor.redact(&partition),
                    manifest_path: setup.ctx.redactor.redact(&manifest_path),
                })
            }
            Err(e) => Err(setup.fail(m, e)),
        }
    }
}

/// A plan's parts, borrowed while it runs.
struct Run<'a> {
    s: &'a Setup,
    models: &'a Models,
    input: &'a Input,
    prepared: &'a Prepared,
    layout: &'a Layout,
}

/// What the pipeline did, with the counts the output frames kept.
struct Scored {
    done: pipeline::Outcome,
    /// Rows the canary split sent to the challenger.
    to_challenger: u64,
    /// Scores written as null (`inference.invalid_scores: null`).
    null_scores: u64,
}

/// What judging a staged partition found.
struct Judged {
    /// Names of failed `fail` checks: the run publishes, then exits 5.
    gate: Vec<String>,
    /// The run's rows of the metrics history, appended once published.
    history: Option<DataFrame>,
}

impl Run<'_> {
    /// Stages the partition, scores and judges it, and publishes it; returns where
    /// it is. Nothing staged survives a failure.
    fn stage_and_publish(
        &self,
        lock: &lock::Lock,
        replaces: &sink::Replaces,
        m: &mut Manifest,
    ) -> Result<String> {
        let (s, partition) = (self.s, &self.s.partition);
        let staged = s.ctx.table.stage(partition, &m.run_id)?;
        let mut staged = match (&s.delta, &self.layout.delta) {
            (Some(log), Some(schema)) => sink::Staged::Delta(sink::DeltaStaged {
                inner: Box::new(staged),
                log: log.clone(),
                run_id: m.run_id.clone(),
                ds: m.ds.clone(),
                app_id: sink::delta::app_id(&s.ctx.job.name, &m.ds),
                schema: schema.clone(),
                info: Default::default(),
                version: None,
            }),
            _ => staged,
        };
        let quarantine_tmp = self
            .input
            .checker
            .as_ref()
            .map(|_| s.ctx.table.quarantine().tmp_file(partition, &m.run_id))
            .transpose()?;
        let result = self
            .score(&staged, quarantine_tmp.as_deref())
            .and_then(|scored| self.judge(scored, &staged, quarantine_tmp.as_deref(), m));
        if let Some(tmp) = &quarantine_tmp {
            let _ = std::fs::remove_file(tmp);
        }
        let judged = match result {
            Ok(j) => j,
            Err(e) => {
                staged.abandon();
                return Err(e);
            }
        };
        if let sink::Staged::Delta(d) = &mut staged {
            d.info = delta_commit_info(m, &s.ctx.job.name);
        }
        let (target, version) = publish_staged(staged, s.opts.shard, lock, replaces)?;
        if let (Some(v), Some(out)) = (version, m.output.as_mut()) {
            out.delta_version = Some(v);
            tracing::info!(version = v, "committed to the Delta table");
        }
        tracing::info!(partition = %s.ctx.redactor.redact(&target), rows = m.rows.written, "published");
        if let Some(mut h) = judged.history {
            s.ctx.table.history().append(partition, &m.run_id, &mut h)?;
        }
        if !judged.gate.is_empty() {
            return Err(Error::QualityGate(format!(
                "{} check(s) of severity fail did not hold: {}; the output was published to {} \
                 and the report written to {}",
                judged.gate.len(),
                judged.gate.join(", "),
                s.ctx.redactor.redact(&target),
                m.report.clone().unwrap_or_default()
            )));
        }
        Ok(target)
    }

    /// Reads, preprocesses, scores and writes every chunk into `staged`.
    fn score(&self, staged: &sink::Staged, quarantine: Option<&Path>) -> Result<Scored> {
        let (s, job, input, layout) = (self.s, &self.s.ctx.job, self.input, self.layout);
        let (bundle, second) = (&self.models.bundle, &self.models.second);
        // Chunks are whole multiples of the inference batch, so the model sees the same
        // batches whatever the source's own chunking: scores do not depend on it.
        let batch = s.inference.batch_size;
        let chunk_rows = s.inference.chunk_rows.div_ceil(batch) * batch;
        let model_name = format!("{} {}", bundle.spec.name, bundle.spec.version);
        let model_name2 = second
            .as_ref()
            .map(|(b2, _, _)| format!("{} {}", b2.spec.name, b2.spec.version))
            .unwrap_or_default();
        let mut scorers = vec![pipeline::Scorer {
            model: &model_name,
            state: &bundle.state,
            fused: self.prepared.fused.as_ref(),
            engine: &self.models.engine,
            score_columns: &layout.score_columns,
        }];
        if let (Some((b2, _, _)), Some(e2)) = (second, &self.models.engine2) {
            scorers.push(pipeline::Scorer {
                model: &model_name2,
                state: &b2.state,
                fused: self.prepared.fused2.as_ref(),
                engine: e2,
                score_columns: &layout.score_columns2,
            });
        }
        let split = job.rollout.as_ref().map(|r| rollout::Split {
            keys: job.keys.clone(),
            fraction: r.fraction,
            salt: r.salt.clone(),
        });
        let route = |df: &DataFrame| split.as_ref().expect("with a split").route(df);
        let plan = pipeline::Plan {
            source: &input.src,
            columns: &input.needed,
            keys: &input.carry,
            chunk_rows,
            batch_size: batch,
            scorers: &scorers,
            route: split.as_ref().map(|_| &route as &pipeline::RouteFn<'_>),
            contract: input.checker.as_ref(),
            profile: input.profile.as_ref(),
            invalid_scores: s.inference.invalid_scores,
        };
        // Exact counts past their memory budget spill into the staging folder (and
        // are removed before it is published).
        if let Some(p) = &input.profile {
            p.lock()
                .expect("profile lock")
                .spill_to(staged.dir().join(SPILL_REPORT));
        }
        if let Some(k) = &input.key_check {
            let mut k = k.lock().expect("key check lock");
            k.spill_to(staged.dir().join(SPILL_KEYS));
            if let Some(rows) = input.src.total_rows() {
                k.expect_rows(rows);
            }
        }
        let (to_challenger, null_scores) = (AtomicU64::new(0), AtomicU64::new(0));
        let file_name = |i: usize| staged.data_file_name(i);
        let frame = |keys: &DataFrame, scores: pipeline::ChunkScores| {
            if let Some(r) = &scores.route {
                let n = r.iter().filter(|&&x| x == rollout::CHALLENGER).count();
                to_challenger.fetch_add(n as u64, Ordering::Relaxed);
            }
            let (f, nulls) = output_frame(
                keys,
                &input.carry,
                &layout.scores,
                scores,
                &layout.constants,
                layout.model_columns,
            )?;
            null_scores.fetch_add(nulls, Ordering::Relaxed);
            Ok(f)
        };
        let output = pipeline::Output {
            dir: staged.dir(),
            file_name: &file_name,
            schema: &layout.schema,
            parquet: ParquetOptions {
                zstd_level: job.output.zstd_level,
                row_group_size: job.output.row_group_size,
                metadata: layout.meta.clone(),
            },
            max_file_bytes: job.output.max_file_mb.saturating_mul(1 << 20),
            frame: &frame,
            quarantine: quarantine.map(|p| (p, &layout.quarantine)),
            key_check: input.key_check.as_ref(),
        };
        let progress = s.opts.progress;
        let bar = progress::Bar::new(
            progress,
            if progress {
                input.src.total_rows()
            } else {
                None
            },
        );
        let done = pipeline::run(&plan, &output, &|rows| bar.set(rows));
        bar.finish();
        Ok(Scored {
            done: done?,
            to_challenger: to_challenger.into_inner(),
            null_scores: null_scores.into_inner(),
        })
    }

    /// Judges the staged partition — row counts, report, contract — records it
    /// in the manifest and writes the staged partition's manifest.
    fn judge(
        &self,
        scored: Scored,
        staged: &sink::Staged,
        quarantine: Option<&Path>,
        m: &mut Manifest,
    ) -> Result<Judged> {
        let (s, job, input) = (self.s, &self.s.ctx.job, self.input);
        let Scored {
            done,
            to_challenger,
            null_scores,
        } = scored;
        if s.opts.shard.is_none() {
            // Shards are judged together by `scorch commit`.
            check_row_count(
                &job.output,
                &s.ctx.table,
                s.delta.as_ref(),
                &s.partition,
                done.rows_read,
                done.rows_written,
            )?;
        }
        m.rows.read = done.rows_read;
        m.rows.scored = done.rows_scored;
        m.rows.written = done.rows_written;
        m.rows.quarantined = done.rows_quarantined;
        m.rows.null_scores = null_scores;
        if let Some(r) = &job.rollout {
            m.rollout = Some(RolloutInfo {
                fraction: r.fraction,
                salt: r.salt.clone(),
                rows_champion: done.rows_scored - to_challenger,
                rows_challenger: to_challenger,
            });
        }
        let mut judged = Judged {
            gate: vec![],
            history: None,
        };
        if let Some(k) = &input.key_check {
            let mut k = k.lock().expect("key check lock");
            let t_k = std::time::Instant::now();
            let r = k.finish().map_err(|e| {
                Error::Internal(format!("reading the key check's spilled counts: {e}"))
            })?;
            if s.opts.shard.is_some() {
                // `scorch commit` checks the keys of all shards together.
                shard::write_keys(staged.dir(), &mut k)?;
            }
            k.discard_spill();
            tracing::debug!(seconds = t_k.elapsed().as_secs_f64(), "key check finished");
            let found = key_duplicates(&r);
            m.keys = Some(r);
            if let Some(msg) = found {
                match job.output.on_duplicate_keys {
                    crate::spec::job::OnDuplicateKeys::Warn => m.warnings.push(msg),
                    _ => {
                        return Err(Error::DataContract(format!(
                            "{msg}; nothing was published (set `output.on_duplicate_keys: warn` \
                             to publish anyway)"
                        )));
                    }
                }
            }
        }
        if let (Some(profile), Some(spec)) = (&input.profile, &job.report) {
            let mut profile = profile.lock().expect("profile lock");
            if s.opts.shard.is_some() {
                // A shard's statistics are merged and judged by `scorch commit`.
                profile.freeze(staged.dir()).map_err(|e| {
                    Error::Internal(format!("writing the shard's exact value counts: {e}"))
                })?;
                shard::write_profile(&staged.dir().join(shard::PROFILE_FILE), &profile)?;
                profile.discard_spill();
            } else {
                let r = write_report(
                    &mut profile,
                    spec,
                    &s.ctx.table,
                    (&m.run_id, &job.name, &m.ds),
                    done.rows_read,
                    &s.ctx.redactor,
                )?;
                m.checks = r.checks;
                m.warnings.extend(r.warnings);
                m.report = Some(r.json);
                m.report_html = Some(r.html);
                judged.gate = r.gate;
                judged.history = Some(r.history);
            }
        }
        if let Some(checker) = &input.checker {
            // Quarantined rows are kept for inspection even when the contract fails the run.
            if done.rows_quarantined > 0
                && let Some(tmp) = quarantine
            {
                let at = s
                    .ctx
                    .table
                    .quarantine()
                    .publish(tmp, &s.partition, &m.run_id)?;
                if let Some(c) = m.contract.as_mut() {
                    c.quarantine = Some(s.ctx.redactor.redact(&at));
                }
            }
            checker.lock().expect("contract lock").finish(s.opts.ds)?;
        }
        self.record(&done, staged, m);
        let mut staged_manifest = m.clone();
        staged_manifest.status = if judged.gate.is_empty() {
            RunStatus::Succeeded
        } else {
            RunStatus::ChecksFailed
        };
        s.finish(&mut staged_manifest);
        write_manifest(
            &staged.dir().join(sink::PARTITION_MANIFEST),
            &staged_manifest,
        )?;
        Ok(judged)
    }

    /// Records the stages' seconds and the staged output in the manifest.
    fn record(&self, done: &pipeline::Outcome, staged: &sink::Staged, m: &mut Manifest) {
        let (s, input) = (self.s, self.input);
        let sec = &done.seconds;
        for (name, secs) in [
            ("read", sec.read),
            ("preprocess", sec.preprocess),
            ("tensorize", sec.tensorize),
            ("infer", sec.infer),
            ("write", sec.write),
            ("checks", sec.contract),
        ] {
            if name != "checks" || input.checker.is_some() || input.profile.is_some() {
                m.stages.insert(name, secs);
            }
        }
        tracing::info!(
            rows = m.rows.read,
            read_s = sec.read,
            preprocess_s = sec.preprocess,
            tensorize_s = sec.tensorize,
            infer_s = sec.infer,
            write_s = sec.write,
            threads = s.threads,
            "scored"
        );
        m.output = Some(OutputInfo {
            table: s.ctx.redactor.redact(&s.ctx.table.location()),
            partition: s.ctx.redactor.redact(&staged.target()),
            files: done
                .files
                .iter()
                .map(|f| OutputFile {
                    path: f.name.clone(),
                    bytes: f.bytes,
                    rows: f.rows,
                })
                .collect(),
            columns: self.layout.column_names(),
            delta_version: None,
        });
    }
}

/// Folders in the staging folder where exact counts spill (removed before publishing).
const SPILL_REPORT: &str = "_spill-report";
const SPILL_KEYS: &str = "_spill-keys";

/// The message for duplicated keys, if the key check found any.
pub(crate) fn key_duplicates(r: &crate::reports::keys::KeyReport) -> Option<String> {
    (r.duplicated > 0).then(|| {
        format!(
            "{} key value(s) of `{}` occur more than once among the {} rows written \
             ({} extra rows): {}",
            r.duplicated,
            r.keys.join(", "),
            r.rows,
            r.extra_rows,
            r.describe_examples()
        )
    })
}

/// Publishes a staged partition (or shard, `shard`) inside the lock's publish
/// guard, which a takeover must also take: a run whose lock was taken over
/// publishes nothing and exits 6; on object stores the manifest PUT is also
/// conditional on `replaces`. Returns where the partition is.
fn publish_staged(
    staged: sink::Staged,
    shard: Option<(usize, usize)>,
    lock: &lock::Lock,
    replaces: &sink::Replaces,
) -> Result<(String, Option<u64>)> {
    #[cfg(feature = "test-hooks")]
    if let Some(ms) = std::env::var(super::PAUSE_BEFORE_PUBLISH_ENV)
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }
    // Fenced: the lock is checked, and the files swapped, inside the publish guard
    // that a takeover must also take (a run whose lock was taken exits 6 here).
    let guard = match lock.publish_guard() {
        Ok(g) => g,
        Err(e) => {
            staged.abandon();
            return Err(e);
        }
    };
    #[cfg(feature = "test-hooks")]
    if let Some((ms, mark)) = std::env::var(super::PAUSE_IN_PUBLISH_ENV)
        .ok()
        .and_then(|v| {
            v.split_once(':')
                .map(|(a, b)| (a.to_string(), b.to_string()))
        })
        .and_then(|(ms, mark)| ms.parse::<u64>().ok().map(|ms| (ms, mark)))
    {
        let _ = std::fs::write(&mark, b"");
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }
    let target = match shard {
        Some((index, count)) => (
            staged.publish_shard(&shard::dir_name(index, count), replaces)?,
            None,
        ),
        None => staged.publish(replaces)?,
    };
    drop(guard);
    Ok(target)
}

/// What a Delta commit records about its run in `commitInfo` (`scorch.*`): who
/// wrote the date's files and with which model and preprocessing.
fn delta_commit_info(m: &Manifest, job: &str) -> serde_json::Map<String, serde_json::Value> {
    use serde_json::Value;
    let mut e: std::collections::BTreeMap<&str, Value> = [
        ("run_id", Value::from(m.run_id.clone())),
        ("job", Value::from(job)),
        ("ds", Value::from(m.ds.clone())),
        ("version", Value::from(env!("CARGO_PKG_VERSION"))),
        ("rows", Value::from(m.rows.written)),
    ]
    .into_iter()
    .collect();
    if let Some(model) = &m.model {
        e.insert("model_name", model.name.clone().into());
        e.insert("model_version", model.version.clone().into());
        e.insert("model_sha256", model.sha256.clone().into());
    }
    if let Some(p) = &m.preprocessing {
        e.insert("preprocessing_name", p.name.clone().into());
        e.insert("preprocessing_version", p.version.clone().into());
        e.insert("preprocessing_state_hash", p.state_hash.clone().into());
    }
    if let Some(c) = &m.challenger {
        e.insert("canary_model_name", c.name.clone().into());
        e.insert("canary_model_version", c.version.clone().into());
    }
    sink::delta::commit_info(e)
}
