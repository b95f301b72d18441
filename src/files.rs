//! Files a reader never sees half of: every record and checkpoint is written to a temporary file
//! in the same folder, synced, then renamed over its name, so a crash, a signal or a full disk
//! leaves either the old file or the new one (and no temporary: it is removed on failure).
//!
//! For tests of those failures, `BALMS_FAIL_WRITE=N` makes the N-th write of this process (1 is
//! the first; atomic writes, log appends and lease files all count) fail as a full disk would.

use std::io::{self, Write as _};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use sha2::{Digest, Sha256};

/// Writes so far in this process, for `BALMS_FAIL_WRITE`.
static WRITES: AtomicUsize = AtomicUsize::new(0);

/// Counts a write about to happen and fails it when `BALMS_FAIL_WRITE` names it.
///
/// # Errors
/// [`io::ErrorKind::StorageFull`] for the write `BALMS_FAIL_WRITE` names.
pub fn before_write(path: &Path) -> io::Result<()> {
    let n = WRITES.fetch_add(1, Ordering::SeqCst) + 1;
    let fail = std::env::var("BALMS_FAIL_WRITE").ok().and_then(|v| v.parse::<usize>().ok());
    if fail == Some(n) {
        return Err(io::Error::new(
            io::ErrorKind::StorageFull,
            format!("no space left on device (BALMS_FAIL_WRITE={n}, `{}`)", path.display()),
        ));
    }
    Ok(())
}

/// Writes `bytes` to `path` atomically: a temporary file beside it, flushed and synced, renamed
/// over `path`; the parent folder is created if missing.
///
/// # Errors
/// The I/O error; the temporary file is removed and `path` is left as it was.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    before_write(path)?;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let tmp = path.with_extension(format!("{}.tmp", unique()));
    let written = std::fs::File::create(&tmp).and_then(|mut file| {
        file.write_all(bytes)?;
        file.sync_all()
    });
    let renamed = written.and_then(|()| std::fs::rename(&tmp, path));
    if renamed.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    // The rename itself is durable once the folder is synced (best effort: not every filesystem
    // lets a folder be opened for it).
    if let Some(parent) = path.parent().filter(|_| renamed.is_ok()) {
        let _ = std::fs::File::open(parent).and_then(|folder| folder.sync_all());
    }
    renamed
}

/// Creates `path` with `bytes` unless it exists, so that no reader ever sees it empty or half
/// written: the bytes go to a temporary file beside it, which is then hard-linked to `path`
/// (exclusive on POSIX filesystems, NFS included: the classic NFS lock, whose link count check
/// tells a retransmitted link that succeeded from one that found the file). On a filesystem without
/// hard links it falls back to an exclusive create followed by the write. Does not count as a
/// write for `BALMS_FAIL_WRITE`; the caller counts it.
///
/// # Errors
/// The I/O error; the temporary file is removed, and a `path` this call created is removed too.
/// Returns `Ok(false)`, leaving `path` as it was, when `path` already exists.
pub fn create_new_with(path: &Path, bytes: &[u8]) -> io::Result<bool> {
    use std::os::unix::fs::MetadataExt as _;
    let tmp = path.with_extension(format!("{}.tmp", unique()));
    let linked = std::fs::File::create(&tmp)
        .and_then(|mut file| file.write_all(bytes))
        .and_then(|()| std::fs::hard_link(&tmp, path))
        .or_else(|e| {
            // Over NFS a retransmitted link can report "exists" although it was made: the
            // temporary then has two links (the classic NFS lock's check).
            let made = e.kind() == io::ErrorKind::AlreadyExists
                && std::fs::metadata(&tmp).is_ok_and(|m| m.nlink() == 2);
            if made {
                Ok(())
            } else {
                Err(e)
            }
        });
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e)
            if matches!(e.kind(), io::ErrorKind::Unsupported | io::ErrorKind::PermissionDenied) =>
        {
            match std::fs::OpenOptions::new().write(true).create_new(true).open(path) {
                Ok(mut file) => file.write_all(bytes).map(|()| true).inspect_err(|_| {
                    let _ = std::fs::remove_file(path);
                }),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
                Err(e) => Err(e),
            }
        }
        Err(e) => Err(e),
    }
}

/// A temporary-file name part no other writer uses at the same time: this process's id, the
/// clock's nanoseconds and a count (processes on other hosts share a folder over NFS).
fn unique() -> String {
    static COUNT: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{}-{nanos}-{}", std::process::id(), COUNT.fetch_add(1, Ordering::SeqCst))
}

/// Lower-case hex SHA-256 of `bytes`.
#[must_use]
pub fn sha256(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

/// Lower-case hex SHA-256 of the file at `path`.
///
/// # Errors
/// The file cannot be read.
pub fn sha256_file(path: &Path) -> io::Result<String> {
    let mut hasher = Sha256::new();
    io::copy(&mut std::fs::File::open(path)?, &mut hasher)?;
    Ok(format!("{:x}", hasher.finalize()))
}

/// Whether `error`, or any error it was caused by, is a full disk (or quota).
#[must_use]
pub fn is_storage_full(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(e) = current {
        // tch's I/O errors are transparent: their `source` skips the `io::Error` they hold.
        let io = e.downcast_ref::<io::Error>().or_else(|| match e.downcast_ref() {
            Some(tch::TchError::Io(io)) => Some(io),
            _ => None,
        });
        if io.is_some_and(|io| {
            matches!(io.kind(), io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded)
        }) {
            return true;
        }
        current = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_write_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.json");
        write_atomic(&path, b"old").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        // A non-empty folder in the way: the temporary is written, the rename fails (even as
        // root), and the temporary is removed.
        let blocked = dir.path().join("blocked");
        std::fs::create_dir(&blocked).unwrap();
        std::fs::write(blocked.join("inside"), b"x").unwrap();
        assert!(write_atomic(&blocked, b"new").is_err());
        let mut names: Vec<_> =
            std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        names.sort();
        assert_eq!(names, ["a.json", "blocked"]);
        assert_eq!(sha256_file(&path).unwrap(), sha256(b"old"));
        assert_eq!(
            sha256(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn an_exclusive_create_is_whole_and_keeps_what_exists() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lease.json");
        assert!(create_new_with(&path, b"first").unwrap());
        assert!(!create_new_with(&path, b"second").unwrap());
        assert_eq!(std::fs::read(&path).unwrap(), b"first");
        // No temporary is left either way, and a missing folder is an error, not a panic.
        let names: Vec<_> =
            std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["lease.json"]);
        assert!(create_new_with(&dir.path().join("no/such/folder"), b"x").is_err());
    }

    #[test]
    fn storage_full_is_found_anywhere_in_the_chain() {
        let full = io::Error::from(io::ErrorKind::StorageFull);
        let wrapped = anyhow::Error::new(full).context("writing `x`").context("run y");
        assert!(is_storage_full(wrapped.as_ref()));
        let tch = tch::TchError::Io(io::Error::from(io::ErrorKind::StorageFull));
        assert!(is_storage_full(anyhow::Error::new(tch).context("writing `x.npz`").as_ref()));
        let other = anyhow::Error::new(io::Error::from(io::ErrorKind::NotFound));
        assert!(!is_storage_full(other.as_ref()));
    }
}
