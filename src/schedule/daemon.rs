//! `scorch schedule JOBS_DIR`: a long-lived scheduler for the jobs of a folder that
//! have a `schedule:`.
//!
//! - Each fire runs `scorch run JOB --date <ds>` as a child process (so a run that
//!   has to be stopped can be, and the scheduler outlives any run); a job's
//!   `evaluate:` schedule runs `scorch evaluate JOB --date <ds> --window <w>` as
//!   the job `<name>-evaluate`.
//! - One run per job at a time: a fire that comes while the job's previous run is
//!   still going is recorded as `skipped` (overlap), never started.
//! - Missed fires: with `catchup: true`, the fires between the job's last recorded
//!   fire and now (at most `max_catchup`, the latest) run one after another at start;
//!   otherwise the scheduler waits for the next fire.
//! - SIGTERM or SIGINT: no new runs; running ones get `grace` to finish, then get
//!   SIGTERM (a run stopped mid-write leaves the published partition untouched),
//!   then SIGKILL after 10 s; they are recorded as `stopped`.
//! - Every fire is a row of the history ([`super::history`]).

use std::collections::VecDeque;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::cron::Schedule;
use super::run_history::History;
use crate::error::{Error, Result};
use crate::spec::job::JobSpec;

/// How the scheduler runs.
#[derive(Debug, Clone)]
pub struct SchedulerOptions {
    pub jobs_dir: PathBuf,
    pub root: PathBuf,
    pub history: PathBuf,
    /// How long running jobs may take to finish after SIGTERM/SIGINT.
    pub grace: Duration,
    pub profiles: Option<PathBuf>,
    /// The scorch binary that runs each fire.
    pub exe: PathBuf,
}

/// A job with a schedule: its runs, or its evaluations (`evaluate:`).
pub struct ScheduledJob {
    /// The job's name; `<name>-evaluate` for its evaluations.
    pub name: String,
    pub file: PathBuf,
    pub schedule: Schedule,
    /// `Some(window)`: a fire runs `scorch evaluate --date <ds> --window <window>`
    /// instead of `scorch run`.
    pub evaluate: Option<u32>,
}

impl ScheduledJob {
    /// The scorch arguments of a fire for `ds` (without the project flags).
    pub fn args(&self, ds: &str) -> Vec<String> {
        let file = self.file.display().to_string();
        match self.evaluate {
            None => vec![
                "run".into(),
                file,
                "--date".into(),
                ds.into(),
                "--no-progress".into(),
            ],
            Some(w) => vec![
                "evaluate".into(),
                file,
                "--date".into(),
                ds.into(),
                "--window".into(),
                w.to_string(),
            ],
        }
    }
}

/// The jobs of `dir` (`*.yaml`, `*.yml`) that have a `schedule:` (and their
/// evaluations, for those with an `evaluate:`), by file name.
pub fn scheduled_jobs(dir: &Path) -> Result<Vec<ScheduledJob>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io("read", dir, e))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    let mut out: Vec<ScheduledJob> = Vec::new();
    for file in files {
        let job = JobSpec::load(&file)?;
        let mut entries = Vec::new();
        if let Some(spec) = &job.schedule {
            entries.push((job.name.clone(), "schedule", spec, None));
        }
        if let Some(ev) = &job.evaluate {
            if job.labels().is_none() {
                return Err(Error::config(
                    &file,
                    "field `evaluate`: needs the job's `labels:` (where the outcomes arrive)",
                ));
            }
            entries.push((
                format!("{}-evaluate", job.name),
                "evaluate.schedule",
                &ev.schedule,
                Some(ev.window),
            ));
        }
        for (name, field, spec, evaluate) in entries {
            let schedule = Schedule::compile(spec)
                .map_err(|e| Error::config(&file, format!("field `{field}`: {e}")))?;
            if let Some(other) = out.iter().find(|j| j.name == name) {
                return Err(Error::config(
                    &file,
                    format!(
                        "job name `{name}` is also the name of {}; scheduled jobs need distinct names",
                        other.file.display()
                    ),
                ));
            }
            out.push(ScheduledJob {
                name,
                file: file.clone(),
                schedule,
                evaluate,
            });
        }
    }
    Ok(out)
}

/// `scorch schedule --list`: each scheduled job of `jobs` with its next `count`
/// fires after `now` and their logical dates.
pub fn upcoming(jobs: &Path, count: usize, now: DateTime<Utc>) -> Result<String> {
    let mut out = String::new();
    for j in scheduled_jobs(jobs)? {
        let spec = &j.schedule.spec;
        out.push_str(&format!(
            "{} ({}): {:?} in {}\n",
            j.name,
            j.file.display(),
            spec.cron,
            spec.timezone
        ));
        let mut t = now;
        for _ in 0..count {
            let Some(n) = j.schedule.next_after(t) else {
                break;
            };
            out.push_str(&format!(
                "  {}  ds={}\n",
                n.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                j.schedule.ds(n)
            ));
            t = n;
        }
    }
    Ok(out)
}

/// A run in progress.
struct Running {
    child: Child,
    row: i64,
    stdout: std::thread::JoinHandle<String>,
}

/// One job's state in the loop.
struct Slot {
    job: ScheduledJob,
    next: Option<DateTime<Utc>>,
    pending: VecDeque<DateTime<Utc>>,
    running: Option<Running>,
}

fn status_of(code: Option<i32>) -> &'static str {
    crate::sink::manifest::RunStatus::of_exit_code(code).as_str()
}

/// The manifest path a run printed (the record's, for an evaluation).
fn manifest_of(stdout: &str) -> Option<String> {
    stdout.lines().find_map(|l| {
        let l = l.trim();
        l.strip_prefix("manifest: ")
            .or_else(|| l.strip_prefix("record: "))
            .map(str::to_string)
    })
}

impl Slot {
    fn start(
        &mut self,
        fire: DateTime<Utc>,
        opts: &SchedulerOptions,
        history: &History,
    ) -> Result<()> {
        let ds = self.job.schedule.ds(fire).format("%Y-%m-%d").to_string();
        let mut cmd = Command::new(&opts.exe);
        cmd.envs(crate::observe::child_env());
        cmd.args(self.job.args(&ds))
            .arg("--project-dir")
            .arg(&opts.root)
            .stdout(Stdio::piped())
            .stdin(Stdio::null());
        if let Some(p) = &opts.profiles {
            cmd.arg("--profiles").arg(p);
        }
        let row = history.start(&self.job.name, &ds, fire)?;
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                history.finish(
                    row,
                    crate::sink::manifest::RunStatus::Failed.as_str(),
                    None,
                    Some(&format!("cannot start: {e}")),
                )?;
                return Ok(());
            }
        };
        let mut out = child.stdout.take().expect("piped");
        let stdout = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = out.read_to_string(&mut s);
            s
        });
        tracing::info!(job = %self.job.name, ds = %ds, fire = %fire, pid = child.id(), "run started");
        self.running = Some(Running { child, row, stdout });
        Ok(())
    }

    /// Records the run if it ended; `stopped` marks a run ended by the scheduler.
    fn reap(&mut self, history: &History, stopped: bool) -> Result<bool> {
        let Some(r) = self.running.as_mut() else {
            return Ok(true);
        };
        let Some(status) = r
            .child
            .try_wait()
            .map_err(|e| Error::Internal(format!("waiting for a run: {e}")))?
        else {
            return Ok(false);
        };
        let r = self.running.take().expect("running");
        let out = r.stdout.join().unwrap_or_default();
        let state = if stopped && status.code() != Some(0) {
            "stopped"
        } else {
            status_of(status.code())
        };
        history.finish(r.row, state, status.code(), manifest_of(&out).as_deref())?;
        tracing::info!(job = %self.job.name, status = state, exit_code = ?status.code(), "run ended");
        Ok(true)
    }
}

fn signal_child(child: &Child, sig: i32) {
    // SAFETY: kill(2) on our own child's pid.
    unsafe {
        libc::kill(child.id() as i32, sig);
    }
}

/// Runs the scheduler until SIGTERM or SIGINT.
pub fn run_scheduler(opts: &SchedulerOptions) -> Result<()> {
    let jobs = scheduled_jobs(&opts.jobs_dir)?;
    if jobs.is_empty() {
        return Err(Error::usage(format!(
            "no job in {} has a `schedule:` or an `evaluate:` schedule",
            opts.jobs_dir.display()
        )));
    }
    let history = History::open(&opts.history)?;
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .map_err(|e| Error::Internal(format!("cannot handle signals: {e}")))?;
    }
    let now = Utc::now();
    let mut slots: Vec<Slot> = Vec::new();
    for job in jobs {
        let mut pending = VecDeque::new();
        if job.schedule.spec.catchup
            && let Some(last) = history.last_fire(&job.name)?
        {
            pending.extend(
                job.schedule
                    .fires_between(last, now, job.schedule.spec.max_catchup),
            );
        }
        let next = job.schedule.next_after(now);
        tracing::info!(job = %job.name, next = ?next, catchup = pending.len(), "scheduled");
        slots.push(Slot {
            job,
            next,
            pending,
            running: None,
        });
    }
    while !stop.load(Ordering::Relaxed) {
        let now = Utc::now();
        for slot in &mut slots {
            slot.reap(&history, false)?;
            if let Some(fire) = slot.next.filter(|f| *f <= now) {
                // The next fire after now: fires missed while busy are not queued.
                slot.next = slot.job.schedule.next_after(now.max(fire));
                if slot.running.is_some() || !slot.pending.is_empty() {
                    let ds = slot.job.schedule.ds(fire).format("%Y-%m-%d").to_string();
                    history.skip(
                        &slot.job.name,
                        &ds,
                        fire,
                        "overlap: the previous run of this job was still running",
                    )?;
                    tracing::warn!(job = %slot.job.name, fire = %fire, "skipped: previous run still running");
                } else {
                    slot.pending.push_back(fire);
                }
            }
            if slot.running.is_none()
                && let Some(fire) = slot.pending.pop_front()
            {
                slot.start(fire, opts, &history)?;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // Shutdown: no new runs; running ones get the grace period, then SIGTERM, then SIGKILL.
    tracing::info!(grace_s = opts.grace.as_secs_f64(), "stopping");
    let t0 = Instant::now();
    let mut signalled: Option<Instant> = None;
    loop {
        let mut left = false;
        for slot in &mut slots {
            if !slot.reap(&history, signalled.is_some())? {
                left = true;
            }
        }
        if !left {
            break;
        }
        if signalled.is_none() && t0.elapsed() >= opts.grace {
            for slot in &slots {
                if let Some(r) = &slot.running {
                    tracing::warn!(job = %slot.job.name, "grace period over: stopping the run");
                    signal_child(&r.child, libc::SIGTERM);
                }
            }
            signalled = Some(Instant::now());
        }
        if let Some(s) = signalled
            && s.elapsed() >= Duration::from_secs(10)
        {
            for slot in &mut slots {
                if let Some(r) = slot.running.as_mut() {
                    let _ = r.child.kill();
                }
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}
