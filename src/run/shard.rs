//! Sharded runs and their commit.
//!
//! `scorch run JOB --date D --shard I/N` scores rows `[start, end)` of the input
//! (its Parquet files in order): the rows are cut into N ranges whose boundaries
//! are multiples of the inference batch size, so every shard scores exactly the
//! batches a single run would — the committed partition is bit-identical to one
//! unsharded run. A shard's files and manifest go to
//! `<table>/_shards/ds=D/shard-I-of-N/` (a rerun of the shard replaces only that
//! folder). `scorch commit JOB --date D --shards N` checks that all N shards of
//! that job succeeded and cover the input, moves their files in shard order into
//! one staged partition with a manifest, and publishes it atomically like a run.
//!
//! With `report:`, each shard writes its input profile — the mergeable statistics
//! of [`crate::reports::Profile`]: counts, HyperLogLog registers, DDSketch buckets,
//! exact value frequencies, moments, check tallies and drift bin counts — to
//! `_profile.msgpack` in its folder instead of a report. The commit merges the
//! shards' profiles and writes one report, history rows and quality gate, as a
//! single run would: every count, sketch and drift statistic equals the single
//! run's exactly; means and standard deviations up to floating-point rounding.

use std::path::Path;

use chrono::NaiveDate;

use crate::error::{Error, Result};
use crate::sink::PARTITION_MANIFEST;
use crate::sink::manifest::{
    JobInfo, OutputFile, PublishedCommit, ReadModel, RunStatus, ShardManifest,
};
use crate::spec::job::JobSpec;
use crate::spec::template::Redactor;

/// A shard's input profile, in its folder (MessagePack).
pub const PROFILE_FILE: &str = "_profile.msgpack";

/// Layout version of [`PROFILE_FILE`].
const PROFILE_VERSION: u32 = 2;

#[derive(serde::Deserialize)]
struct ShardProfile {
    profile_version: u32,
    profile: crate::reports::Profile,
}

#[derive(serde::Serialize)]
struct ShardProfileRef<'a> {
    profile_version: u32,
    profile: &'a crate::reports::Profile,
}

/// A shard's key check, in its folder (MessagePack), and its counts.
pub const KEYS_FILE: &str = "_keys.msgpack";
const KEYS_RUN: &str = "_keys.bin";

/// Writes a shard's key check (its counts frozen into [`KEYS_RUN`] beside it), for
/// the commit to check the keys of every shard together.
pub fn write_keys(dir: &Path, keys: &mut crate::reports::keys::KeyCheck) -> Result<()> {
    keys.freeze(dir, KEYS_RUN)
        .map_err(|e| Error::Internal(format!("writing the shard's key counts: {e}")))?;
    let bytes = keys.to_bytes()?;
    crate::storage::write_file_atomic(&dir.join(KEYS_FILE), &bytes)
}

/// A folder for shard files fetched from an object store during a commit (removed
/// with the last use).
fn fetch_folder() -> Result<std::sync::Arc<crate::reports::distinct::SpillFolder>> {
    Ok(std::sync::Arc::new(
        crate::reports::distinct::SpillFolder::adopt(crate::storage::create_temp_folder(
            "scorch-commit-",
        )?),
    ))
}

/// Resolves the run files a shard's frozen counts name: on local tables where they
/// are, on object stores fetched into `fetched` (which then owns them).
fn shard_files<'a>(
    table: &'a crate::sink::Table,
    partition: &'a str,
    shard: &'a str,
    fetched: &'a std::sync::Arc<crate::reports::distinct::SpillFolder>,
) -> impl FnMut(
    &str,
) -> std::io::Result<(
    std::path::PathBuf,
    Option<std::sync::Arc<crate::reports::distinct::SpillFolder>>,
)> + 'a {
    move |file| {
        let at = table
            .shard_file_local(partition, shard, file, fetched.path())
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        Ok((at, Some(fetched.clone())))
    }
}

/// The shards' key checks merged: the exact check of the date's keys.
fn merged_keys(
    table: &crate::sink::Table,
    partition: &str,
    manifests: &[ShardEntry],
    budget: usize,
) -> Result<crate::reports::keys::KeyReport> {
    let fetched = fetch_folder()?;
    let mut merged: Option<crate::reports::keys::KeyCheck> = None;
    for (name, d, _) in manifests {
        let bytes = table
            .read_shard_file(partition, name, KEYS_FILE)?
            .ok_or_else(|| {
                Error::DataContract(format!(
                    "{d}: the shard has no key check ({KEYS_FILE}); rerun that shard"
                ))
            })?;
        let mut k = crate::reports::keys::KeyCheck::from_bytes(&bytes, budget).map_err(|e| {
            Error::DataContract(format!(
                "{d}/{KEYS_FILE}: not a key check ({e}); rerun that shard"
            ))
        })?;
        k.locate(shard_files(table, partition, name, &fetched))
            .map_err(|e| {
                Error::DataContract(format!(
                    "{d}: cannot read its key counts: {e}; rerun that shard"
                ))
            })?;
        match &mut merged {
            None => merged = Some(k),
            Some(all) => all.merge(&k),
        }
    }
    merged.expect("at least one shard").finish().map_err(|e| {
        Error::DataContract(format!(
            "reading the shards' key counts: {e}; rerun the shards"
        ))
    })
}

/// Writes a shard's input profile (its exact value counts frozen into run files
/// beside it, [`crate::reports::Profile::freeze`]).
pub fn write_profile(path: &Path, profile: &crate::reports::Profile) -> Result<()> {
    let doc = ShardProfileRef {
        profile_version: PROFILE_VERSION,
        profile,
    };
    let bytes = rmp_serde::to_vec_named(&doc)
        .map_err(|e| Error::Internal(format!("serializing the shard profile: {e}")))?;
    crate::storage::write_file_atomic(path, &bytes)
}

/// Reads a shard's input profile (`bytes` of its [`PROFILE_FILE`], if it has one;
/// `shard` names the shard in messages).
fn read_profile(shard: &str, bytes: Option<Vec<u8>>) -> Result<crate::reports::Profile> {
    let bytes = bytes.ok_or_else(|| {
        Error::DataContract(format!(
            "{shard}: the shard has no report statistics ({PROFILE_FILE}); rerun that shard"
        ))
    })?;
    let doc: ShardProfile = rmp_serde::from_slice(&bytes).map_err(|e| {
        Error::DataContract(format!(
            "{shard}/{PROFILE_FILE}: not a shard profile ({e}); rerun that shard"
        ))
    })?;
    if doc.profile_version != PROFILE_VERSION {
        return Err(Error::DataContract(format!(
            "{shard}/{PROFILE_FILE}: shard profile version {} (this scorch reads \
             {PROFILE_VERSION}); rerun that shard",
            doc.profile_version
        )));
    }
    Ok(doc.profile)
}

/// Rows `[start, end)` of shard `index` of `count` over `total` rows: equal ranges
/// of whole `batch`es (the last shard takes the remainder; trailing shards may be
/// empty).
pub fn share(total: u64, index: usize, count: usize, batch: usize) -> (u64, u64) {
    let batch = batch.max(1) as u64;
    let batches = total.div_ceil(batch);
    let per = batches.div_ceil(count.max(1) as u64) * batch;
    let start = (index as u64 * per).min(total);
    let end = (start + per).min(total);
    (start, end)
}

/// The folder name of a shard.
pub fn dir_name(index: usize, count: usize) -> String {
    format!("shard-{index:05}-of-{count:05}")
}

/// Parses `I/N` (0 <= I < N).
pub fn parse(s: &str) -> std::result::Result<(usize, usize), String> {
    let (i, n) = s
        .split_once('/')
        .ok_or_else(|| format!("{s:?}: write the shard as INDEX/COUNT, e.g. 0/4"))?;
    let i: usize = i
        .trim()
        .parse()
        .map_err(|_| format!("{s:?}: bad shard index"))?;
    let n: usize = n
        .trim()
        .parse()
        .map_err(|_| format!("{s:?}: bad shard count"))?;
    crate::spec::limits::SHARDS
        .check(n as u64)
        .map_err(|e| format!("{s:?}: COUNT {e}"))?;
    if i >= n {
        return Err(format!("{s:?}: the index must be 0 to COUNT-1"));
    }
    Ok((i, n))
}

/// What `scorch commit` did.
#[derive(Debug)]
pub enum CommitOutcome {
    /// Published the partition.
    Committed(Box<Committed>),
    /// The partition already held these shards (an earlier commit published them):
    /// their leftovers were removed.
    AlreadyCommitted {
        ds: String,
        run_id: String,
        partition: String,
    },
}

impl std::fmt::Display for CommitOutcome {
    /// The closing summary `scorch commit` prints.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CommitOutcome::Committed(c) => write!(
                f,
                "scorch: committed {} shards of job {} ds={} as run {}: {} rows in {} file(s)\n  output: {}",
                c.shards.len(),
                c.job.name,
                c.ds,
                c.run_id,
                c.rows,
                c.output.len(),
                c.partition
            ),
            CommitOutcome::AlreadyCommitted {
                ds,
                run_id,
                partition,
            } => write!(
                f,
                "scorch: ds={ds} was already committed from these shards as run {run_id}; \
                 removed their leftovers\n  output: {partition}"
            ),
        }
    }
}

/// The shard `--shards N` scores: index `$JOB_COMPLETION_INDEX` (a Kubernetes
/// Indexed Job's pod index) of `n`.
pub fn from_completion_index(n: usize) -> Result<(usize, usize)> {
    let index: usize = std::env::var("JOB_COMPLETION_INDEX")
        .map_err(|_| {
            Error::usage(
                "--shards N reads the shard index from $JOB_COMPLETION_INDEX, which is not set",
            )
        })?
        .parse()
        .map_err(|_| Error::usage("$JOB_COMPLETION_INDEX is not a number"))?;
    if n == 0 || index >= n {
        return Err(Error::usage(format!(
            "shard index {index} is not below --shards {n}"
        )));
    }
    Ok((index, n))
}

/// What `scorch commit` published.
#[derive(Debug, serde::Serialize)]
pub struct Committed {
    pub manifest_version: u32,
    pub kind: &'static str,
    pub run_id: String,
    pub job: JobInfo,
    pub ds: String,
    pub status: RunStatus,
    /// The shards' run ids, in shard order.
    pub shards: Vec<String>,
    pub rows: u64,
    pub output: Vec<OutputFile>,
    pub partition: String,
    pub committed_at: String,
    /// The results of the job's checks on the merged statistics (with `report:`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<crate::reports::CheckResult>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// The exact check of the job's keys over every shard's rows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keys: Option<crate::reports::keys::KeyReport>,
    /// The report of the merged statistics (with `report:`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report_html: Option<String>,
}

/// Assembles and publishes the partition of `ds` from its `count` shards.
/// Like a run, a commit logs inside a span carrying its run id, and sends its
/// OpenLineage events and Prometheus metrics (kind `commit`).
pub fn commit(
    job_file: &Path,
    root: &Path,
    ds: NaiveDate,
    count: usize,
    profiles: Option<&Path>,
    wait_lock: Option<std::time::Duration>,
) -> Result<CommitOutcome> {
    let (run_id, span) = super::begin("commit", ds);
    let _entered = span.enter();
    let ctx = super::JobContext::open(job_file, root, profiles, ds)?;
    let t0 = std::time::Instant::now();
    let mut m = observed(&ctx, &run_id, count);
    crate::observe::run_started(&m, &ctx.location);
    let result = commit_as(&ctx, count, wait_lock, &run_id);
    m.finished_at = super::now();
    m.stages.insert("total", t0.elapsed().as_secs_f64());
    match &result {
        Ok(CommitOutcome::Committed(c)) => {
            m.status = c.status;
            m.rows.read = c.rows;
            m.rows.scored = c.rows;
            m.rows.written = c.rows;
            m.checks = c.checks.clone();
            m.warnings = c.warnings.clone();
        }
        Ok(CommitOutcome::AlreadyCommitted { .. }) => m.status = RunStatus::Succeeded,
        Err(e) => m.record_failure(e, &ctx.redactor),
    }
    crate::observe::run_finished(&m, &ctx.location);
    result
}

/// The commit as a run manifest, for metrics and lineage.
fn observed(ctx: &super::JobContext, run_id: &str, count: usize) -> super::Manifest {
    let job = &ctx.job;
    let mut m = super::Manifest::start(
        run_id.to_string(),
        "commit",
        JobInfo {
            name: job.name.clone(),
            file: ctx.job_file.display().to_string(),
            sha256: ctx.job_sha256.clone(),
        },
        ctx.ds,
        crate::sink::manifest::InferenceInfo {
            device: job.inference.device.clone(),
            threads: job.inference.threads,
            batch_size: job.inference.batch_size,
            chunk_rows: job.inference.chunk_rows,
            precision: job.inference.precision.clone(),
        },
    );
    m.source = Some(format!("{count} shards"));
    m
}

fn commit_as(
    ctx: &super::JobContext,
    count: usize,
    wait_lock: Option<std::time::Duration>,
    run_id: &str,
) -> Result<CommitOutcome> {
    let (job, table, red, ds) = (&ctx.job, &ctx.table, &ctx.redactor, ctx.ds);
    let (job_file, job_sha) = (&ctx.job_file, ctx.job_sha256.clone());
    let partition = format!("ds={}", ds.format("%Y-%m-%d"));
    let run_id = run_id.to_string();
    // The partition's lock, then every shard's: no run of the date and no shard
    // rerun can be writing while the shards are read and assembled.
    let locks = lock_all(table, &partition, count, &run_id, &job.name, wait_lock)?;
    // The fencing token of the commit (see `sink::Replaces`), read under the locks.
    let replaces = table.replaces(&partition)?;
    let shards_dir = red.redact(&table.shard_location(&partition, ""));
    let shards_dir = shards_dir.trim_end_matches('/');
    // Every shard: present, succeeded, of this job file and count, covering the input.
    let (manifests, missing) = read_shards(table, &partition, count, red)?;
    if let Some(done) = already_committed(ctx, &partition, count, &manifests, &locks)? {
        return Ok(done);
    }
    if !missing.is_empty() {
        return Err(Error::DataContract(format!(
            "{}: shard(s) {} of {count} have not finished (no manifest under {}); run them, then commit",
            job.name,
            missing.join(", "),
            shards_dir
        )));
    }
    check_shards(&manifests, count, &job_sha, shards_dir)?;
    // The keys of every shard together, exactly, before anything is published.
    let (keys, key_warnings) = checked_keys(job, table, &partition, &manifests, count)?;
    // With `report:`: the shards' profiles, merged (read before anything moves).
    let mut profile = match &job.report {
        Some(_) => Some(merged_profile(table, &partition, &manifests)?),
        None => None,
    };
    let rows_read: u64 = manifests.iter().map(|(_, _, m)| m.rows.read).sum();
    let rows_written: u64 = manifests.iter().map(|(_, _, m)| m.rows.written).sum();
    super::checks::check_row_count(
        &job.output,
        table,
        None,
        &partition,
        rows_read,
        rows_written,
    )?;
    let ds_text = ds.format("%Y-%m-%d").to_string();
    let mut outcome = match (&mut profile, &job.report) {
        (Some(p), Some(spec)) => {
            let r = super::checks::write_report(
                p,
                spec,
                table,
                (&run_id, &job.name, &ds_text),
                rows_read,
                red,
            );
            Some(r?)
        }
        _ => None,
    };
    // The shards' data files in shard order, renamed part-00000, part-00001, …
    let (files, parts, shards, rows) = assemble(table, &run_id, &manifests);
    let gate = outcome.as_ref().map(|o| o.gate.clone()).unwrap_or_default();
    let committed = Committed {
        manifest_version: crate::sink::manifest::MANIFEST_VERSION,
        kind: "commit",
        run_id: run_id.clone(),
        job: JobInfo {
            name: job.name.clone(),
            file: job_file.display().to_string(),
            sha256: job_sha,
        },
        ds: ds_text,
        status: if gate.is_empty() {
            RunStatus::Succeeded
        } else {
            RunStatus::ChecksFailed
        },
        shards,
        rows,
        output: files,
        partition: red.redact(&table.partition_location(&partition)),
        committed_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        checks: outcome
            .as_ref()
            .map(|o| o.checks.clone())
            .unwrap_or_default(),
        warnings: key_warnings
            .into_iter()
            .chain(outcome.iter().flat_map(|o| o.warnings.clone()))
            .collect(),
        keys,
        report: outcome.as_ref().map(|o| o.json.clone()),
        report_html: outcome.as_ref().map(|o| o.html.clone()),
    };
    let text = format!(
        "{}\n",
        serde_json::to_string_pretty(&committed).expect("manifest serializes")
    );
    // Fenced by the partition's lock (see `Lock::publish_guard`), shards checked too.
    let guard = locks[0].publish_guard()?;
    for l in &locks[1..] {
        l.check()?;
    }
    let at = table.commit_shards(&partition, &run_id, &parts, text.as_bytes(), &replaces)?;
    drop(guard);
    if let Some(o) = outcome.as_mut() {
        table
            .history()
            .append(&partition, &run_id, &mut o.history)?;
    }
    table.run_log().write_manifest(&run_id, text.as_bytes())?;
    table.remove_shards(&partition);
    if !gate.is_empty() {
        return Err(Error::QualityGate(format!(
            "{} check(s) of severity fail did not hold on the merged statistics: {}; the \
             partition was published to {} and the report written to {}",
            gate.len(),
            gate.join(", "),
            red.redact(&at),
            committed.report.clone().unwrap_or_default()
        )));
    }
    Ok(CommitOutcome::Committed(Box::new(committed)))
}

/// Idempotent commits: a commit that published and was killed before it removed
/// the shards (or a retried commit task) finds the partition already holding
/// them; it removes the shards and reports the earlier commit.
fn already_committed(
    ctx: &super::JobContext,
    partition: &str,
    count: usize,
    manifests: &[ShardEntry],
    locks: &[super::lock::Lock],
) -> Result<Option<CommitOutcome>> {
    let table = &ctx.table;
    if let Some(prev) = table.partition_manifest(partition)?
        && let Ok(prev) = serde_json::from_slice::<PublishedCommit>(&prev)
        && prev.kind == "commit"
        && prev.job.sha256 == ctx.job_sha256
        && prev.shards.len() == count
        && manifests
            .iter()
            .all(|(_, _, m)| prev.shards.contains(&m.run_id))
    {
        for l in locks {
            l.check()?;
        }
        table.remove_shards(partition);
        return Ok(Some(CommitOutcome::AlreadyCommitted {
            ds: ctx.ds.format("%Y-%m-%d").to_string(),
            run_id: prev.run_id,
            partition: ctx.redactor.redact(&table.partition_location(partition)),
        }));
    }
    Ok(None)
}

/// The keys of every shard checked together, exactly (`output.on_duplicate_keys`):
/// the key report, and the warning a tolerated duplicate gives.
fn checked_keys(
    job: &JobSpec,
    table: &crate::sink::Table,
    partition: &str,
    manifests: &[ShardEntry],
    count: usize,
) -> Result<(Option<crate::reports::keys::KeyReport>, Vec<String>)> {
    let on = job.output.on_duplicate_keys;
    if on == crate::spec::job::OnDuplicateKeys::Off || job.keys.is_empty() {
        return Ok((None, vec![]));
    }
    let r = merged_keys(table, partition, manifests, job.output.keys_memory_mb << 20)?;
    let mut warnings = Vec::new();
    if let Some(msg) = super::execute::key_duplicates(&r) {
        if on == crate::spec::job::OnDuplicateKeys::Warn {
            warnings.push(msg);
        } else {
            return Err(Error::DataContract(format!(
                "{msg} (all {count} shards); nothing was published (set \
                 `output.on_duplicate_keys: warn` to publish anyway)"
            )));
        }
    }
    Ok((Some(r), warnings))
}

/// A shard's folder name, its location for messages and its manifest.
type ShardEntry = (String, String, ShardManifest);

/// Takes the partition's lock, then every shard's.
fn lock_all(
    table: &crate::sink::Table,
    partition: &str,
    count: usize,
    run_id: &str,
    job_name: &str,
    wait_lock: Option<std::time::Duration>,
) -> Result<Vec<super::lock::Lock>> {
    let holder = || super::lock::Holder::me(run_id, job_name, "commit");
    let mut held = vec![super::lock::Lock::acquire(
        table,
        partition,
        holder(),
        wait_lock,
    )?];
    for i in 0..count {
        let name = format!("{partition}.{}", dir_name(i, count));
        held.push(super::lock::Lock::acquire(
            table,
            &name,
            holder(),
            wait_lock,
        )?);
    }
    Ok(held)
}

/// The manifests of the shards that finished, and the indexes of those that did not.
fn read_shards(
    table: &crate::sink::Table,
    partition: &str,
    count: usize,
    red: &Redactor,
) -> Result<(Vec<ShardEntry>, Vec<String>)> {
    let mut missing = Vec::new();
    let mut manifests: Vec<ShardEntry> = Vec::new();
    for i in 0..count {
        let name = dir_name(i, count);
        let d = red.redact(&table.shard_location(partition, &name));
        match table.read_shard_file(partition, &name, PARTITION_MANIFEST)? {
            Some(b) => {
                let m = ShardManifest::parse(&b, &d)?;
                manifests.push((name, d, m));
            }
            None => missing.push(i.to_string()),
        }
    }
    Ok((manifests, missing))
}

/// Every shard succeeded, with this job file, model, count and input, and the
/// shards' rows continue each other and cover the input.
fn check_shards(
    manifests: &[ShardEntry],
    count: usize,
    job_sha: &str,
    shards_dir: &str,
) -> Result<()> {
    let mut expected_start = 0u64;
    let first = &manifests[0].2;
    for (i, (_, d, m)) in manifests.iter().enumerate() {
        let shard = &m.shard;
        let problem = if m.status != RunStatus::Succeeded {
            Some(format!("its status is {}", m.status))
        } else if m.job.sha256 != job_sha {
            Some("it was run with another version of the job file".into())
        } else if m.model != first.model {
            let model = |m: &ReadModel| format!("{} {} (sha256 {})", m.name, m.version, m.sha256);
            Some(format!(
                "it was scored by model {} but shard 0 by {} (an alias moved between \
                 shards?); rerun the shards with one model",
                model(&m.model),
                model(&first.model)
            ))
        } else if shard.count != count || shard.index != i {
            Some(format!("it is shard {} of {}", shard.index, shard.count))
        } else if let Some(p) = input_change(&first.inputs, &m.inputs) {
            Some(format!(
                "its input is not shard 0's: {p} (the input changed between shards); rerun \
                 every shard on the same input"
            ))
        } else if shard.row_start != expected_start || shard.total_rows != first.shard.total_rows {
            Some(
                "its rows do not continue the previous shard's (the input changed between shards?)"
                    .into(),
            )
        } else if m.output.files.iter().map(|f| f.rows).sum::<u64>() != m.rows.written {
            Some(format!(
                "its manifest says it wrote {} rows but lists files of {}",
                m.rows.written,
                m.output.files.iter().map(|f| f.rows).sum::<u64>()
            ))
        } else {
            None
        };
        if let Some(p) = problem {
            return Err(Error::DataContract(format!(
                "{d}: cannot commit: {p}; rerun that shard"
            )));
        }
        expected_start = shard.row_end;
    }
    let total = first.shard.total_rows;
    if total != expected_start {
        return Err(Error::DataContract(format!(
            "{shards_dir}: the shards cover {expected_start} of {total} rows"
        )));
    }
    Ok(())
}

/// The shards' report profiles, merged (read before anything moves).
fn merged_profile(
    table: &crate::sink::Table,
    partition: &str,
    manifests: &[ShardEntry],
) -> Result<crate::reports::Profile> {
    let mut merged: Option<crate::reports::Profile> = None;
    // Where the shards' exact value counts are fetched to (object stores).
    let fetched = fetch_folder()?;
    for (name, d, _) in manifests {
        let bytes = table.read_shard_file(partition, name, PROFILE_FILE)?;
        let mut p = read_profile(d, bytes)?;
        p.locate(shard_files(table, partition, name, &fetched))
            .map_err(|e| {
                Error::DataContract(format!(
                    "{d}: cannot read its exact value counts: {e}; rerun that shard"
                ))
            })?;
        match &mut merged {
            None => merged = Some(p),
            Some(all) => all.merge(&p).map_err(|e| {
                Error::DataContract(format!(
                    "{d}: cannot merge its report statistics with shard 0's: {e}; rerun that shard"
                ))
            })?,
        }
    }
    Ok(merged.expect("at least one shard"))
}

/// The shards' data files in shard order, renamed for the commit: the manifest's
/// files, the moves, the shards' run ids and the rows.
fn assemble(
    table: &crate::sink::Table,
    run_id: &str,
    manifests: &[ShardEntry],
) -> (
    Vec<OutputFile>,
    Vec<crate::sink::shards::Part>,
    Vec<String>,
    u64,
) {
    let mut files = Vec::new();
    let mut parts = Vec::new();
    let mut shards = Vec::new();
    let mut rows = 0u64;
    for (name, _, m) in manifests {
        shards.push(m.run_id.clone());
        for f in &m.output.files {
            let new_name = table.commit_file_name(run_id, files.len());
            parts.push(crate::sink::shards::Part {
                shard: name.clone(),
                file: f.path.clone(),
                name: new_name.clone(),
            });
            rows += f.rows;
            files.push(OutputFile {
                path: new_name,
                bytes: f.bytes,
                rows: f.rows,
            });
        }
    }
    (files, parts, shards, rows)
}

/// How shard inputs `b` differ from shard 0's `a` (path, size, modification
/// time, ETag, content hash), if they do.
fn input_change(a: &[crate::source::InputFile], b: &[crate::source::InputFile]) -> Option<String> {
    let paths =
        |v: &[crate::source::InputFile]| v.iter().map(|f| f.path.clone()).collect::<Vec<_>>();
    if paths(a) != paths(b) {
        let only = |x: &[crate::source::InputFile], y: &[crate::source::InputFile]| {
            x.iter()
                .find(|f| !y.iter().any(|g| g.path == f.path))
                .map(|f| f.path.clone())
        };
        return Some(match (only(a, b), only(b, a)) {
            (Some(p), _) => format!("it did not read {p}"),
            (_, Some(p)) => format!("it read {p}, which shard 0 did not"),
            _ => "it read the same files in another order".into(),
        });
    }
    a.iter().zip(b).find(|(x, y)| x != y).map(|(x, y)| {
        let what = if x.bytes != y.bytes {
            format!("{} bytes, shard 0 saw {}", y.bytes, x.bytes)
        } else if x.etag != y.etag {
            format!("ETag {:?}, shard 0 saw {:?}", y.etag, x.etag)
        } else if x.modified != y.modified {
            format!("modified {:?}, shard 0 saw {:?}", y.modified, x.modified)
        } else {
            "another content hash than shard 0 saw".into()
        };
        format!("{} was {what}", y.path)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_are_whole_batches_and_cover_the_input() {
        for (total, count, batch) in [
            (10_000u64, 4usize, 512usize),
            (7, 3, 4),
            (0, 2, 8),
            (100, 8, 1000),
        ] {
            let mut at = 0;
            for i in 0..count {
                let (s, e) = share(total, i, count, batch);
                assert_eq!(s, at, "{total} {count} {batch}");
                assert!(e >= s);
                if e < total {
                    assert_eq!(e % batch as u64, 0);
                }
                at = e;
            }
            assert_eq!(at, total);
        }
        assert_eq!(share(10_000, 0, 4, 512), (0, 2560));
        assert_eq!(share(10_000, 3, 4, 512), (7680, 10_000));
    }

    #[test]
    fn shard_arguments() {
        assert_eq!(parse("2/4"), Ok((2, 4)));
        assert!(parse("4/4").is_err());
        assert!(parse("1").is_err());
        assert!(parse("a/2").is_err());
    }
}
