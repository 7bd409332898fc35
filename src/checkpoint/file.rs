//! Checkpoint files, saved atomically: a temporary file in the same directory, written,
//! flushed and fsynced, renamed over the target, and the directory fsynced.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::codec::write_io;
use super::{CheckpointError, Element, Result};
use crate::optimizer::Optimizer;

pub(super) fn io_err(what: &str, path: &Path, e: io::Error) -> CheckpointError {
    CheckpointError::Io(format!("{what} {}: {e}", path.display()))
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// How the names of temporary checkpoint files begin.
pub const TEMP_PREFIX: &str = ".rmsprop-tmp-";

/// Create a fresh temporary file next to `path` (same directory, so the rename is atomic).
///
/// The name, `.rmsprop-tmp-<pid>-<n>`, does not depend on the target's name, so it fits in
/// the directory whenever the target's does (at most 46 bytes; a filesystem's limit is
/// typically 255).
fn create_temp(dir: &Path) -> Result<(PathBuf, File)> {
    let mut last = None;
    for _ in 0..16 {
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp = dir.join(format!("{TEMP_PREFIX}{}-{n}", std::process::id()));
        match File::options().write(true).create_new(true).open(&tmp) {
            Ok(f) => return Ok((tmp, f)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(io_err("cannot create temporary file", &tmp, e)),
        }
    }
    Err(CheckpointError::Io(format!(
        "cannot create a temporary file in {}: {}",
        dir.display(),
        last.map_or_else(|| "no name was free".into(), |e| e.to_string())
    )))
}

/// Write the temporary file completely and durably, then rename it over `path`.
fn fill_and_rename<T: Element>(
    opt: &Optimizer<T>,
    file: &File,
    tmp: &Path,
    path: &Path,
) -> Result<()> {
    if let Ok(meta) = fs::metadata(path) {
        // Keep the permissions of the checkpoint being replaced (best effort).
        let _ = file.set_permissions(meta.permissions());
    }
    let mut w = BufWriter::with_capacity(1 << 20, file);
    write_io(opt, &mut w).map_err(|e| io_err("cannot write", tmp, e))?;
    w.flush().map_err(|e| io_err("cannot write", tmp, e))?;
    drop(w);
    file.sync_all().map_err(|e| io_err("cannot sync", tmp, e))?;
    fs::rename(tmp, path).map_err(|e| io_err("cannot rename the temporary file to", path, e))
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_err("saved, but cannot sync the directory", dir, e))
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> Result<()> {
    Ok(())
}

/// Save the checkpoint of `opt` to `path` atomically: it is written to a new temporary
/// file in the same directory (`.rmsprop-tmp-<pid>-<n>`, a name that fits wherever `path`
/// does), flushed and fsynced, renamed
/// over `path`, and the directory is fsynced. A reader (or a crash at any point) sees
/// either the complete previous file or the complete new one, never a mix. On error the
/// temporary file is removed and `path` is untouched (a process killed mid-save can leave
/// its temporary file behind; it is never read and can be deleted). The new file takes
/// the permissions of the file it replaces.
/// Errors: `Io`.
pub fn save_file<T: Element>(opt: &Optimizer<T>, path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    if path.file_name().is_none() {
        return Err(CheckpointError::Io(format!(
            "{} does not name a file",
            path.display()
        )));
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let (tmp, file) = create_temp(dir)?;
    let result = fill_and_rename(opt, &file, &tmp, path);
    drop(file);
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result?;
    sync_dir(dir)
}
