//! Run locks: one writer per partition of a table (or per shard of a partition).
//!
//! A run, shard or commit holds `<table>/_locks/<partition>[.<shard>].lock` from
//! before it reads until after it published. The lock is created atomically — a
//! file opened with `O_CREAT|O_EXCL` on local disk, a conditional PUT
//! (`If-None-Match: *`) on object stores — and holds its holder as JSON: run id,
//! job, command, host, process id and start time, and a heartbeat refreshed every
//! [`heartbeat`] seconds.
//!
//! A second writer fails at once with exit 6 naming the holder, or with
//! `--wait-lock SECONDS` waits for it. A lock is *stale* — its holder is gone —
//! when its heartbeat is older than the lease (`SCORCH_LOCK_LEASE_S`, default
//! 120 s), or sooner when the holder is provably a dead process of this very
//! system: same host name, same boot (`/proc/sys/kernel/random/boot_id`) and same
//! PID namespace, and no process with its pid and start time. Containers that share
//! a host name but not a PID namespace (or a boot) are judged by the lease alone.
//! On local disk the heartbeat touches the lock file's own inode (its mtime), so a
//! heartbeat can never overwrite a lock that another run has taken over. A stale lock is taken over atomically — by
//! renaming it away (local; only one renamer can win) or by a PUT conditional on its
//! ETag (object stores) — so two runs breaking the same stale lock never both win.
//! `scorch unlock JOB --date D` shows the holder and removes a stale lock (`--force`:
//! any lock, for a holder known to be dead on another host).
//!
//! Publishing is fenced: a run publishes inside [`Lock::publish_guard`], which on
//! local disk holds an exclusive `flock` on `<lock>.publish` — the same one every
//! takeover and `scorch unlock` take — and checks there that the lock is still the
//! run's; so a run whose lock was taken over (after its heartbeats stopped for a
//! lease, or `scorch unlock --force`) exits 6 and publishes and deletes nothing. On
//! object stores, where nothing can be held across an upload, the partition
//! manifest is PUT conditionally on the version of the manifest the run saw right
//! after it took its lock (its fencing token, `crate::sink::Replaces`), so a writer
//! taken over even after its last check publishes nothing.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::sink::Table;

/// Folder of a table holding its locks.
pub const LOCKS_DIR: &str = "_locks";

/// Environment variable: the lease in seconds (default 120).
pub const LEASE_ENV: &str = "SCORCH_LOCK_LEASE_S";

fn lease() -> Duration {
    Duration::from_secs_f64(
        std::env::var(LEASE_ENV)
            .ok()
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|v| *v > 0.0)
            .unwrap_or(120.0),
    )
}

/// Seconds between heartbeats: a quarter of the lease.
pub fn heartbeat() -> Duration {
    lease() / 4
}

/// Who holds a lock.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Holder {
    pub run_id: String,
    pub job: String,
    /// `run`, `shard`, `commit`, `shadow`.
    pub command: String,
    pub host: String,
    pub pid: u32,
    /// The process's start time (clock ticks since boot, from `/proc/<pid>/stat`),
    /// so a reused pid is not taken for the holder.
    pub pid_start: Option<u64>,
    pub acquired_at: String,
    pub heartbeat_at: String,
    /// The boot the process runs in (`/proc/sys/kernel/random/boot_id`).
    #[serde(default)]
    pub boot_id: Option<String>,
    /// The process's PID namespace (`/proc/self/ns/pid`, e.g. `pid:[4026531836]`).
    #[serde(default)]
    pub pid_ns: Option<String>,
}

impl Holder {
    /// This process, as the holder of a lock for `run_id`.
    pub fn me(run_id: &str, job: &str, command: &str) -> Holder {
        let now = now();
        Holder {
            run_id: run_id.to_string(),
            job: job.to_string(),
            command: command.to_string(),
            host: hostname(),
            pid: std::process::id(),
            pid_start: pid_start(std::process::id()),
            acquired_at: now.clone(),
            heartbeat_at: now,
            boot_id: boot_id(),
            pid_ns: pid_ns(),
        }
    }

    /// Whether the holder's pid can be looked up in this process table: same host,
    /// same boot and same PID namespace (both known).
    fn same_process_table(&self) -> bool {
        let same = |a: &Option<String>, b: Option<String>| a.is_some() && *a == b;
        self.host == hostname() && same(&self.boot_id, boot_id()) && same(&self.pid_ns, pid_ns())
    }

    /// Whether the holder is gone: a dead process of this host, or no heartbeat
    /// for a lease.
    pub fn is_stale(&self) -> bool {
        // In the holder's own process table the table is the truth: alive (same pid
        // and start time) or not, whatever its heartbeat says.
        if self.same_process_table() {
            let alive = pid_start(self.pid).is_some_and(|s| self.pid_start.is_none_or(|h| h == s));
            return !alive;
        }
        let beat = chrono::DateTime::parse_from_rfc3339(&self.heartbeat_at)
            .map(|t| t.with_timezone(&chrono::Utc))
            .unwrap_or_default();
        let age = chrono::Utc::now() - beat;
        age.to_std().is_ok_and(|a| a > lease())
    }

    /// One line for messages.
    pub fn describe(&self) -> String {
        format!(
            "run {} of job {} ({}, pid {} on {}, since {}, last heartbeat {})",
            self.run_id,
            self.job,
            self.command,
            self.pid,
            self.host,
            self.acquired_at,
            self.heartbeat_at
        )
    }
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "unknown".into())
}

fn boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

fn pid_ns() -> Option<String> {
    std::fs::read_link("/proc/self/ns/pid")
        .ok()
        .map(|p| p.display().to_string())
}

/// The inode of an open file, as the local lock's "version".
fn inode(f: &std::fs::File) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    f.metadata()
        .ok()
        .map(|m| format!("ino:{}:{}", m.dev(), m.ino()))
}

/// Field 22 of `/proc/<pid>/stat` (after the parenthesised command name).
fn pid_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Removes the temporary files of lock writers that died mid-way
/// (`<lock>.pid<PID>.tmp` / `.broken` of processes that no longer exist).
fn remove_dead_leftovers(dir: &std::path::Path) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        let Some(rest) = name
            .strip_suffix(".tmp")
            .or_else(|| name.strip_suffix(".broken"))
        else {
            continue;
        };
        let pid = rest
            .rsplit_once(".pid")
            .and_then(|(_, p)| p.parse::<u32>().ok());
        if pid.is_some_and(|p| pid_start(p).is_none()) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// An exclusive `flock` on a file beside a local lock, released when dropped.
pub struct PublishGuard {
    _file: Option<std::fs::File>,
}

/// Takes the publish fence of a local lock file `lock` (`<lock>.publish`).
fn fence(lock: &std::path::Path) -> Result<PublishGuard> {
    use std::os::fd::AsRawFd;
    let path = lock.with_extension("lock.publish");
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io("create folder", dir, e))?;
    }
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| Error::io("open", &path, e))?;
    // SAFETY: flock on a descriptor we own; released when the file is closed.
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } != 0 {
        return Err(Error::io("lock", &path, std::io::Error::last_os_error()));
    }
    Ok(PublishGuard { _file: Some(f) })
}

impl Place {
    /// The publish fence (local locks; object stores fence with conditional PUTs).
    fn fence(&self) -> Result<PublishGuard> {
        match self {
            Place::Local(p) => fence(p),
            Place::Remote { .. } => Ok(PublishGuard { _file: None }),
        }
    }
}

/// Where a lock lives.
#[derive(Clone)]
enum Place {
    Local(PathBuf),
    Remote {
        url: String,
        store: crate::storage::Store,
        path: object_store::path::Path,
    },
}

impl Place {
    fn of(table: &Table, name: &str) -> Place {
        let file = format!("{name}.lock");
        match table {
            Table::Local(dir) => Place::Local(dir.join(LOCKS_DIR).join(file)),
            Table::Remote { url, store, prefix } => Place::Remote {
                url: format!("{url}/{LOCKS_DIR}/{file}"),
                store: store.clone(),
                path: prefix.clone().join(LOCKS_DIR).join(file.as_str()),
            },
        }
    }

    fn display(&self) -> String {
        match self {
            Place::Local(p) => p.display().to_string(),
            Place::Remote { url, .. } => url.clone(),
        }
    }

    /// The current lock and its version (ETag; local: none).
    fn read(&self) -> Result<Option<(Holder, Option<String>)>> {
        let (bytes, etag, modified) = match self {
            Place::Local(p) => match std::fs::read(p) {
                Ok(b) => {
                    let modified = std::fs::metadata(p)
                        .and_then(|m| m.modified())
                        .map(chrono::DateTime::<chrono::Utc>::from)
                        .unwrap_or_default();
                    (b, None, modified)
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(Error::io("read", p, e)),
            },
            Place::Remote { url, store, path } => {
                let got = crate::storage::runtime()?.block_on(async {
                    let r = store.store.get(path).await?;
                    let (etag, modified) = (r.meta.e_tag.clone(), r.meta.last_modified);
                    Ok::<_, object_store::Error>((r.bytes().await?, etag, modified))
                });
                match got {
                    Ok((b, etag, modified)) => (b.to_vec(), etag, modified),
                    Err(object_store::Error::NotFound { .. }) => return Ok(None),
                    Err(e) => {
                        return Err(crate::storage::runtime_error(&format!("reading {url}"), e));
                    }
                }
            }
        };
        // A lock that is not a holder (written by something else, or damaged)
        // counts as a holder elsewhere whose last heartbeat was the file's last
        // change: stale after a lease, never at once.
        let holder = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
            let at = modified.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            Holder {
                run_id: "?".into(),
                job: "?".into(),
                command: "unreadable lock".into(),
                host: "?".into(),
                pid: 0,
                pid_start: None,
                acquired_at: at.clone(),
                heartbeat_at: at,
                boot_id: None,
                pid_ns: None,
            }
        });
        let mut holder: Holder = holder;
        if matches!(self, Place::Local(_)) {
            // Local heartbeats touch the file: the later of the two counts.
            let beat = chrono::DateTime::parse_from_rfc3339(&holder.heartbeat_at)
                .map(|t| t.with_timezone(&chrono::Utc))
                .unwrap_or_default();
            if modified > beat {
                holder.heartbeat_at = modified.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            }
        }
        Ok(Some((holder, etag)))
    }

    /// Creates the lock if there is none; `Ok(Some(etag))` when created.
    fn create(&self, h: &Holder) -> Result<Option<Option<String>>> {
        let bytes = serde_json::to_vec_pretty(h).expect("holder serializes");
        match self {
            Place::Local(p) => {
                use std::io::Write;
                if let Some(dir) = p.parent() {
                    std::fs::create_dir_all(dir).map_err(|e| Error::io("create folder", dir, e))?;
                }
                // Write the holder beside, then link it into place: the lock appears
                // whole or not at all (`link` fails if it exists).
                if let Some(dir) = p.parent() {
                    remove_dead_leftovers(dir);
                }
                let tmp = p.with_extension(format!("lock.pid{}.tmp", std::process::id()));
                let mut f =
                    std::fs::File::create(&tmp).map_err(|e| Error::io("create", &tmp, e))?;
                f.write_all(&bytes)
                    .and_then(|_| f.sync_all())
                    .map_err(|e| Error::io("write", &tmp, e))?;
                let r = std::fs::hard_link(&tmp, p);
                let _ = std::fs::remove_file(&tmp);
                match r {
                    // Our version of the lock is the inode we linked into place.
                    Ok(()) => Ok(Some(inode(&f))),
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(None),
                    Err(e) => Err(Error::io("create", p, e)),
                }
            }
            Place::Remote { .. } => {
                let created = self.put(bytes, PutMode::Create)?;
                if created.is_none() {
                    return Ok(None);
                }
                // A store whose conditional PUT checks, then writes (as the tests'
                // s3s-fs does) can let two racing creates both succeed, the later
                // one's holder winning. Read the lock back after a moment: only the
                // run whose holder is there holds it. AWS S3, GCS and Azure are
                // atomic; there this costs one GET.
                std::thread::sleep(std::time::Duration::from_millis(50));
                match self.read()? {
                    Some((cur, _)) if cur.run_id == h.run_id => Ok(created),
                    _ => Ok(None),
                }
            }
        }
    }

    fn put(&self, bytes: Vec<u8>, mode: PutMode) -> Result<Option<Option<String>>> {
        let Place::Remote { url, store, path } = self else {
            unreachable!("remote only")
        };
        let opts = PutOptions {
            mode,
            ..Default::default()
        };
        match crate::storage::runtime()?.block_on(store.store.put_opts(
            path,
            PutPayload::from(bytes),
            opts,
        )) {
            Ok(r) => Ok(Some(r.e_tag)),
            Err(object_store::Error::AlreadyExists { .. })
            | Err(object_store::Error::Precondition { .. }) => Ok(None),
            Err(e) => Err(crate::storage::runtime_error(&format!("writing {url}"), e)),
        }
    }

    /// Replaces the stale lock of `old` (read with `etag`) by `h`, atomically;
    /// `Ok(Some(etag))` when this call won.
    fn take_over(
        &self,
        old: &Holder,
        h: &Holder,
        etag: Option<String>,
    ) -> Result<Option<Option<String>>> {
        match self {
            Place::Local(p) => {
                // Not while the holder is publishing (it checks under the same fence).
                let _fence = fence(p)?;
                // While this waited for the fence, the lock may have been released or
                // taken by another run: break only the stale one that was read.
                if self.read()?.is_none_or(|(cur, _)| cur.run_id != old.run_id) {
                    return Ok(None);
                }
                // Only one of several breakers can rename the same file away.
                let aside = p.with_extension(format!("lock.pid{}.broken", std::process::id()));
                match std::fs::rename(p, &aside) {
                    Ok(()) => {
                        let _ = std::fs::remove_file(&aside);
                        self.create(h)
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(Error::io("break", p, e)),
                }
            }
            Place::Remote { .. } => {
                let bytes = serde_json::to_vec_pretty(h).expect("holder serializes");
                match etag {
                    Some(e_tag) => self.put(
                        bytes,
                        PutMode::Update(UpdateVersion {
                            e_tag: Some(e_tag),
                            version: None,
                        }),
                    ),
                    // A store without ETags: delete, then create conditionally.
                    None => {
                        self.remove()?;
                        self.create(h)
                    }
                }
            }
        }
    }

    fn remove(&self) -> Result<()> {
        match self {
            Place::Local(p) => match std::fs::remove_file(p) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(Error::io("remove", p, e)),
            },
            Place::Remote { url, store, path } => {
                match crate::storage::runtime()?.block_on(store.store.delete(path)) {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                    Err(e) => Err(crate::storage::runtime_error(&format!("removing {url}"), e)),
                }
            }
        }
    }

    /// Refreshes the heartbeat of our lock; false when it is no longer ours.
    fn beat(&self, h: &mut Holder, etag: &mut Option<String>) -> Result<bool> {
        if let Place::Local(p) = self {
            // Touch our own inode: whatever is at the path now is opened, and only
            // touched if it is the file this run created. A lock taken over is another
            // inode, so a late heartbeat can never overwrite it.
            let f = match std::fs::File::open(p) {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
                Err(e) => return Err(Error::io("open", p, e)),
            };
            if etag.is_none() || inode(&f) != *etag {
                return Ok(false);
            }
            // An inode number can be reused by the file of the run that took over:
            // the holder written in the opened file must be this run, too.
            let mut text = Vec::new();
            std::io::Read::read_to_end(&mut &f, &mut text).map_err(|e| Error::io("read", p, e))?;
            if serde_json::from_slice::<Holder>(&text)
                .ok()
                .map(|c| c.run_id)
                .as_ref()
                != Some(&h.run_id)
            {
                return Ok(false);
            }
            f.set_modified(std::time::SystemTime::now())
                .map_err(|e| Error::io("touch", p, e))?;
            h.heartbeat_at = now();
            return Ok(true);
        }
        let Some((cur, cur_etag)) = self.read()? else {
            return Ok(false);
        };
        if cur.run_id != h.run_id {
            return Ok(false);
        }
        h.heartbeat_at = now();
        let bytes = serde_json::to_vec_pretty(&*h).expect("holder serializes");
        match self {
            Place::Local(_) => unreachable!("handled above"),
            Place::Remote { .. } => {
                let mode = PutMode::Update(UpdateVersion {
                    e_tag: cur_etag.or(etag.clone()),
                    version: None,
                });
                match self.put(bytes, mode)? {
                    Some(e) => {
                        *etag = e;
                        Ok(true)
                    }
                    None => Ok(false),
                }
            }
        }
    }
}

/// A held lock: released when dropped.
pub struct Lock {
    place: Place,
    holder: Arc<Mutex<Holder>>,
    lost: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    beat: Option<std::thread::JoinHandle<()>>,
}

impl Lock {
    /// Takes the lock `name` (e.g. `ds=2026-11-28`) of `table` for `holder`: at once,
    /// or within `wait` (polling every half second). Stale locks are taken over.
    pub fn acquire(
        table: &Table,
        name: &str,
        holder: Holder,
        wait: Option<Duration>,
    ) -> Result<Lock> {
        let place = Place::of(table, name);
        let start = std::time::Instant::now();
        loop {
            let got = match place.create(&holder)? {
                Some(etag) => Some(etag),
                None => match place.read()? {
                    // Released between our create and read: try again.
                    None => continue,
                    Some((cur, etag)) if cur.is_stale() => {
                        tracing::warn!(lock = %place.display(), holder = %cur.describe(), "taking over a stale lock");
                        place.take_over(&cur, &holder, etag)?
                    }
                    Some((cur, _)) => {
                        if wait.is_none_or(|w| start.elapsed() >= w) {
                            return Err(Error::Locked(format!(
                                "{} is held by {}; wait for it (--wait-lock SECONDS), or if that \
                                 run is dead on another host, `scorch unlock` it",
                                place.display(),
                                cur.describe()
                            )));
                        }
                        std::thread::sleep(Duration::from_millis(500));
                        None
                    }
                },
            };
            if let Some(etag) = got {
                return Ok(Lock::hold(place, holder, etag));
            }
        }
    }

    fn hold(place: Place, holder: Holder, etag: Option<String>) -> Lock {
        let holder = Arc::new(Mutex::new(holder));
        let lost = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let beat = {
            let (place, holder, lost, stop) =
                (place.clone(), holder.clone(), lost.clone(), stop.clone());
            let span = tracing::Span::current();
            std::thread::Builder::new()
                .name("scorch-lock".into())
                .spawn(move || {
                    let _entered = span.enter();
                    let mut etag = etag;
                    let every = heartbeat();
                    let mut since = std::time::Instant::now();
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(Duration::from_millis(50));
                        if since.elapsed() < every {
                            continue;
                        }
                        since = std::time::Instant::now();
                        let mut h = holder.lock().expect("holder lock");
                        match place.beat(&mut h, &mut etag) {
                            Ok(true) => {}
                            Ok(false) => {
                                tracing::error!(lock = %place.display(), "the run's lock was taken over; it will not publish");
                                lost.store(true, Ordering::Relaxed);
                                return;
                            }
                            Err(e) => tracing::warn!(lock = %place.display(), error = %e, "could not refresh the lock"),
                        }
                    }
                })
                .ok()
        };
        Lock {
            place,
            holder,
            lost,
            stop,
            beat,
        }
    }

    /// The publish fence, with the lock checked to be still this run's inside it:
    /// publish while the guard lives. A takeover or `scorch unlock` waits for it.
    pub fn publish_guard(&self) -> Result<PublishGuard> {
        let g = self.place.fence()?;
        self.check()?;
        Ok(g)
    }

    /// Checks that the lock is still this run's (before publishing).
    pub fn check(&self) -> Result<()> {
        let mine = self.holder.lock().expect("holder lock").run_id.clone();
        let cur = self.place.read()?;
        if self.lost.load(Ordering::Relaxed) || cur.as_ref().is_none_or(|(h, _)| h.run_id != mine) {
            return Err(Error::Locked(format!(
                "{}: this run's lock is now {} (removed by `scorch unlock --force`, or taken \
                 over after its heartbeats stopped for a lease); nothing was published",
                self.place.display(),
                cur.map(|(h, _)| h.describe())
                    .unwrap_or_else(|| "nobody".into())
            )));
        }
        Ok(())
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.beat.take() {
            let _ = t.join();
        }
        let mine = self
            .holder
            .lock()
            .map(|h| h.run_id.clone())
            .unwrap_or_default();
        if let Ok(Some((h, _))) = self.place.read()
            && h.run_id == mine
            && let Err(e) = self.place.remove()
        {
            tracing::warn!(lock = %self.place.display(), error = %e, "could not release the lock");
        }
    }
}

/// The holder of lock `name` of `table`, if any (for `scorch unlock`).
pub fn holder(table: &Table, name: &str) -> Result<Option<Holder>> {
    Ok(Place::of(table, name).read()?.map(|(h, _)| h))
}

/// Removes lock `name` of `table` when it is stale (or with `force`); returns the
/// holder it removed.
pub fn unlock(table: &Table, name: &str, force: bool) -> Result<Option<Holder>> {
    let place = Place::of(table, name);
    let Some((h, _)) = place.read()? else {
        return Ok(None);
    };
    if !force && !h.is_stale() {
        return Err(Error::Locked(format!(
            "{} is held by {}, which looks alive (same host and running, or a heartbeat within \
             the lease); use --force only if you know it is dead",
            place.display(),
            h.describe()
        )));
    }
    let _fence = place.fence()?;
    // While this waited for a publish to end, the lock may have been released or
    // taken by another run: remove only the one that was shown.
    match place.read()? {
        None => return Ok(None),
        Some((cur, _)) if cur.run_id != h.run_id => {
            return Err(Error::Locked(format!(
                "{} changed while this waited for a publish to end: it is now held by {}; \
                 run `scorch unlock` again if that one is dead too",
                place.display(),
                cur.describe()
            )));
        }
        Some(_) => {}
    }
    place.remove()?;
    Ok(Some(h))
}

/// What `scorch unlock` did.
#[derive(Debug)]
pub struct Unlocked {
    /// The lock: `ds=<date>` or `ds=<date>.<shard>`.
    pub name: String,
    pub job: String,
    /// The holder whose lock was removed (`None`: it was not locked).
    pub holder: Option<Holder>,
}

impl std::fmt::Display for Unlocked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.holder {
            Some(h) => write!(
                f,
                "scorch: removed the lock of {}, held by {}",
                self.name,
                h.describe()
            ),
            None => write!(f, "scorch: {} of job {} is not locked", self.name, self.job),
        }
    }
}

/// `scorch unlock`: removes the lock of `job_file`'s partition for `ds` (or of its
/// `shard`) when its holder is dead, or with `force` (see [`unlock`]).
pub fn unlock_date(
    job_file: &std::path::Path,
    root: &std::path::Path,
    profiles: Option<&std::path::Path>,
    ds: chrono::NaiveDate,
    shard: Option<(usize, usize)>,
    force: bool,
) -> Result<Unlocked> {
    let ctx = super::JobContext::open(job_file, root, profiles, ds)?;
    let mut name = format!("ds={}", ds.format("%Y-%m-%d"));
    if let Some((i, n)) = shard {
        name = format!("{name}.{}", super::shard::dir_name(i, n));
    }
    let holder = unlock(&ctx.table, &name, force)?;
    Ok(Unlocked {
        name,
        job: ctx.job.name,
        holder,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_holder_at_a_time_and_stale_locks_are_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let table = Table::Local(dir.path().to_path_buf());
        let a = Lock::acquire(&table, "ds=2026-11-28", Holder::me("a", "j", "run"), None).unwrap();
        let err = Lock::acquire(&table, "ds=2026-11-28", Holder::me("b", "j", "run"), None)
            .err()
            .unwrap();
        assert!(err.to_string().contains("held by run a of job j"), "{err}");
        // Another partition is free.
        let other =
            Lock::acquire(&table, "ds=2026-11-27", Holder::me("c", "j", "run"), None).unwrap();
        a.check().unwrap();
        drop(a);
        drop(other);
        assert!(holder(&table, "ds=2026-11-28").unwrap().is_none());
        // A lock of a dead process of this host is stale and taken over.
        let mut dead = Holder::me("d", "j", "run");
        dead.pid = u32::MAX - 1;
        let place = Place::of(&table, "ds=2026-11-28");
        place.create(&dead).unwrap().unwrap();
        assert!(holder(&table, "ds=2026-11-28").unwrap().unwrap().is_stale());
        let e = Lock::acquire(&table, "ds=2026-11-28", Holder::me("e", "j", "run"), None).unwrap();
        assert_eq!(
            holder(&table, "ds=2026-11-28").unwrap().unwrap().run_id,
            "e"
        );
        // A live holder cannot be unlocked without --force.
        assert!(unlock(&table, "ds=2026-11-28", false).is_err());
        assert_eq!(
            unlock(&table, "ds=2026-11-28", true)
                .unwrap()
                .unwrap()
                .run_id,
            "e"
        );
        assert!(e.check().is_err(), "a removed lock is not ours any more");
    }

    #[test]
    fn an_unreadable_lock_is_stale_only_after_a_lease() {
        let dir = tempfile::tempdir().unwrap();
        let table = Table::Local(dir.path().to_path_buf());
        std::fs::create_dir_all(dir.path().join(LOCKS_DIR)).unwrap();
        let file = dir.path().join(LOCKS_DIR).join("ds=x.lock");
        std::fs::write(&file, b"{\"run_").unwrap();
        // Just written: respected.
        let err = Lock::acquire(&table, "ds=x", Holder::me("n", "j", "run"), None)
            .err()
            .unwrap();
        assert!(err.to_string().contains("unreadable lock"), "{err}");
        // Unchanged for an hour: stale, taken over.
        let f = std::fs::File::options().write(true).open(&file).unwrap();
        f.set_modified(std::time::SystemTime::now() - Duration::from_secs(3600))
            .unwrap();
        let l = Lock::acquire(&table, "ds=x", Holder::me("n", "j", "run"), None).unwrap();
        l.check().unwrap();
    }

    #[test]
    fn another_pid_namespace_or_boot_is_judged_by_the_lease_alone() {
        // A holder on this host name whose pid is dead here.
        let mut h = Holder::me("x", "j", "run");
        h.pid = u32::MAX - 1;
        assert!(
            h.is_stale(),
            "same host, boot and namespace: the process table decides"
        );
        for other in [
            |h: &mut Holder| h.pid_ns = Some("pid:[1]".into()),
            |h: &mut Holder| h.boot_id = Some("another-boot".into()),
            |h: &mut Holder| h.pid_ns = None,
        ] {
            let mut c = h.clone();
            other(&mut c);
            assert!(
                !c.is_stale(),
                "a fresh heartbeat from another process table is alive"
            );
            c.heartbeat_at = (chrono::Utc::now() - chrono::TimeDelta::hours(1))
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            assert!(c.is_stale(), "no heartbeat for a lease: stale");
        }
    }

    #[test]
    fn a_late_heartbeat_never_overwrites_a_lock_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let table = Table::Local(dir.path().to_path_buf());
        let place = Place::of(&table, "ds=y");
        let mut a = Holder::me("a", "j", "run");
        let mut etag = place.create(&a).unwrap().unwrap();
        assert!(etag.is_some(), "a local lock knows its inode");
        assert!(place.beat(&mut a, &mut etag).unwrap());
        // b takes the lock over (as after a lapsed lease or `unlock --force`).
        let b = Holder::me("b", "j", "run");
        place.take_over(&a, &b, None).unwrap().unwrap();
        // A breaker that had read a's lock, and comes late, does not break b's.
        let c = Holder::me("c", "j", "run");
        assert!(place.take_over(&a, &c, None).unwrap().is_none());
        assert!(
            !place.beat(&mut a, &mut etag).unwrap(),
            "a sees it lost the lock"
        );
        assert_eq!(place.read().unwrap().unwrap().0.run_id, "b");
        // Its heartbeat is the file's mtime: a touched lock is fresh.
        let file = dir.path().join(LOCKS_DIR).join("ds=y.lock");
        let f = std::fs::File::options().write(true).open(&file).unwrap();
        f.set_modified(std::time::SystemTime::now() - Duration::from_secs(3600))
            .unwrap();
        let old = place.read().unwrap().unwrap().0.heartbeat_at;
        // (Later than the holder's own time, which can share its millisecond.)
        f.set_modified(std::time::SystemTime::now() + Duration::from_secs(60))
            .unwrap();
        let new = place.read().unwrap().unwrap().0.heartbeat_at;
        assert!(new > old, "{old} -> {new}");
    }
}
