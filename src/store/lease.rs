//! Leases: at most one worker trains a run, whatever shares the results folder (`--jobs`
//! workers, `--shard` processes, Slurm array tasks on several machines over a shared
//! filesystem).
//!
//! A worker takes a run's lease by creating `lease.json` in its folder, whole, with a hard link
//! (exclusive on POSIX filesystems, NFS included; [`crate::files::create_new_with`]) and keeps it fresh by touching it at every epoch. A lease is
//! stale, and may be taken over, when its process is gone (same host: no `/proc/<pid>`) or when it
//! has not been touched for [`STALE_AFTER`] (another host). Taking over replaces the file with a
//! rename and reads it back, so of two workers taking over at once only one proceeds. The lease
//! is removed when the run is recorded, finished or failed; a result is `metrics.json` alone, so a
//! lease left by a killed worker never counts as one.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::StoreError;

/// Untouched this long, a lease from another host is stale (an epoch must be shorter).
pub const STALE_AFTER: Duration = Duration::from_secs(3600);

/// An unreadable lease younger than this is being written (by an older balms, or on a filesystem
/// without hard links), not abandoned.
const FRESH: Duration = Duration::from_secs(10);

/// Who holds a run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Holder {
    /// Host name of the holder (`/proc/sys/kernel/hostname`, `unknown` if unreadable); on this
    /// host, a holder is alive while `/proc/<pid>` exists.
    pub host: String,
    /// Process id.
    pub pid: u32,
    /// A random token telling two leases of one process apart.
    pub token: u64,
}

impl Holder {
    /// This process.
    fn me(token: u64) -> Holder {
        Holder { host: host_name(), pid: std::process::id(), token }
    }

    fn alive(&self) -> bool {
        self.host != host_name() || Path::new(&format!("/proc/{}", self.pid)).exists()
    }
}

/// A held lease; dropped (released) when the run is recorded.
#[derive(Debug)]
pub struct Lease {
    path: PathBuf,
    holder: Holder,
}

/// What trying to take a run's lease gave.
#[derive(Debug)]
pub enum Outcome {
    /// This process holds the run now.
    Held(Lease),
    /// Another live worker holds it.
    Busy(Holder),
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map_or_else(|_| "unknown".to_string(), |h| h.trim().to_string())
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io { path: path.to_path_buf(), source }
}

/// The holder written in the lease file `path`, if it is readable.
fn read_holder(path: &Path) -> Option<Holder> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

/// How long ago the lease file `path` was last touched (zero if unknown).
fn untouched(path: &Path) -> Duration {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .unwrap_or_default()
}

/// The live holder of `dir`'s lease, if another worker holds it.
#[must_use]
pub fn live_holder(dir: &Path) -> Option<Holder> {
    [dir.join("lease.json"), dir.join(LEGACY)].into_iter().find_map(|path| {
        let holder = read_holder(&path)?;
        (holder.alive() && untouched(&path) < STALE_AFTER && holder.pid != std::process::id())
            .then_some(holder)
    })
}

/// The lease file's earlier name, `claim.json`: a worker of an older binary still training (a job
/// array in the middle of an upgrade) holds its run by it, so a live one is honoured as a lease.
const LEGACY: &str = "claim.json";

/// Takes the lease of the run folder `dir` (created if missing).
///
/// # Errors
/// Filesystem errors, naming the file.
pub fn acquire(dir: &Path) -> Result<Outcome, StoreError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let legacy = dir.join(LEGACY);
    if let Some(holder) = read_holder(&legacy) {
        if holder.alive() && untouched(&legacy) < STALE_AFTER {
            return Ok(Outcome::Busy(holder));
        }
    }
    let path = dir.join("lease.json");
    #[expect(clippy::cast_possible_truncation, reason = "the clock's low 64 bits make a token")]
    let token = u64::from(std::process::id()) << 32
        ^ SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
    let me = Holder::me(token);
    let text = serde_json::to_string(&me).expect("serialisable");
    crate::files::before_write(&path).map_err(io(&path))?;
    // The lease appears whole or not at all, so a worker killed while taking it leaves no empty
    // lease that reads as "being written" to the next run.
    if crate::files::create_new_with(&path, text.as_bytes()).map_err(io(&path))? {
        return Ok(Outcome::Held(Lease { path, holder: me }));
    }
    let untouched = untouched(&path);
    match read_holder(&path) {
        Some(holder) if holder.alive() && untouched < STALE_AFTER => Ok(Outcome::Busy(holder)),
        // Created a moment ago and not written yet: its creator is alive and about to write.
        None if untouched < FRESH => {
            Ok(Outcome::Busy(Holder { host: "unknown".to_string(), pid: 0, token: 0 }))
        }
        _ => take_over(path, me, &text),
    }
}

/// Replaces a stale lease and checks, after a moment, that ours is the one that stayed.
fn take_over(path: PathBuf, me: Holder, text: &str) -> Result<Outcome, StoreError> {
    crate::files::write_atomic(&path, text.as_bytes()).map_err(io(&path))?;
    std::thread::sleep(Duration::from_millis(50));
    match read_holder(&path) {
        Some(holder) if holder == me => Ok(Outcome::Held(Lease { path, holder: me })),
        Some(holder) => Ok(Outcome::Busy(holder)),
        None => Ok(Outcome::Busy(me)),
    }
}

impl Lease {
    /// Marks the lease as alive now (called at every epoch).
    pub fn touch(&self) {
        if let Ok(file) = std::fs::OpenOptions::new().write(true).open(&self.path) {
            let _ = file.set_modified(SystemTime::now());
        }
    }

    /// Who holds it.
    #[must_use]
    pub fn holder(&self) -> &Holder {
        &self.holder
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        // Only our own lease is removed (a stale-lease takeover may have replaced it).
        if read_holder(&self.path).is_some_and(|h| h == self.holder) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_lease_at_a_time_and_a_dead_holder_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let Outcome::Held(first) = acquire(dir.path()).unwrap() else { panic!("free run") };
        // A second lease in this (live) process finds it busy.
        assert!(matches!(acquire(dir.path()).unwrap(), Outcome::Busy(h) if h == *first.holder()));
        first.touch();
        drop(first);
        assert!(!dir.path().join("lease.json").exists());
        // A lease by a process that no longer exists on this host is taken over.
        let dead = Holder { host: host_name(), pid: u32::MAX - 1, token: 7 };
        std::fs::write(dir.path().join("lease.json"), serde_json::to_string(&dead).unwrap())
            .unwrap();
        let Outcome::Held(second) = acquire(dir.path()).unwrap() else { panic!("stale lease") };
        assert_eq!(second.holder().pid, std::process::id());
        // A live lease of another host within the timeout is respected.
        drop(second);
        let remote = Holder { host: "elsewhere".to_string(), pid: 1, token: 8 };
        std::fs::write(dir.path().join("lease.json"), serde_json::to_string(&remote).unwrap())
            .unwrap();
        assert!(matches!(acquire(dir.path()).unwrap(), Outcome::Busy(h) if h.host == "elsewhere"));
        // An empty lease just created is being written; an old empty one is abandoned.
        let file = dir.path().join("lease.json");
        std::fs::write(&file, "").unwrap();
        assert!(matches!(acquire(dir.path()).unwrap(), Outcome::Busy(h) if h.pid == 0));
        let old = SystemTime::now() - Duration::from_secs(60);
        std::fs::OpenOptions::new().write(true).open(&file).unwrap().set_modified(old).unwrap();
        assert!(matches!(acquire(dir.path()).unwrap(), Outcome::Held(_)));
    }

    #[test]
    fn a_live_claim_of_an_older_balms_is_honoured() {
        let dir = tempfile::tempdir().unwrap();
        let remote = Holder { host: "elsewhere".to_string(), pid: 1, token: 8 };
        std::fs::write(dir.path().join(LEGACY), serde_json::to_string(&remote).unwrap()).unwrap();
        assert!(matches!(acquire(dir.path()).unwrap(), Outcome::Busy(h) if h.host == "elsewhere"));
        assert_eq!(live_holder(dir.path()).map(|h| h.host), Some("elsewhere".to_string()));
        assert!(!dir.path().join("lease.json").exists());
        // A dead one (this host, no such process) is ignored.
        let dead = Holder { host: host_name(), pid: u32::MAX, token: 9 };
        std::fs::write(dir.path().join(LEGACY), serde_json::to_string(&dead).unwrap()).unwrap();
        assert!(matches!(acquire(dir.path()).unwrap(), Outcome::Held(_)));
    }
}
