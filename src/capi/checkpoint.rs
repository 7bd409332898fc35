//! Checkpoints through the C ABI: the full optimizer state (configuration, schedule, skip
//! flag and counter, counts, layout, dtype, nu/mu/trace) as bytes or as an atomic file.
//! The format is specified in `docs/checkpoint-format.md`; the Rust side is
//! `crate::checkpoint`.

use std::ffi::{CStr, c_char, c_void};
use std::path::PathBuf;

use super::boundary::*;
use super::handle::{
    Engine, RmspropOptimizer, check_handle, new_handle, with_engine, with_engine_mut,
};
use super::status::*;
use crate::checkpoint::{self, CheckpointError};
use crate::with_any;

impl From<CheckpointError> for CError {
    fn from(e: CheckpointError) -> Self {
        let status = match &e {
            CheckpointError::Corrupt(_) => RMSPROP_ERR_CHECKPOINT_CORRUPT,
            CheckpointError::Version { .. } => RMSPROP_ERR_CHECKPOINT_VERSION,
            CheckpointError::Mismatch(_) => RMSPROP_ERR_CHECKPOINT_MISMATCH,
            CheckpointError::Io(_) => RMSPROP_ERR_IO,
        };
        CError::Other(status, e.to_string())
    }
}

/// A NUL-terminated C path: raw bytes on Unix, UTF-8 elsewhere.
fn path_arg(p: *const c_char) -> Result<PathBuf, CError> {
    if p.is_null() {
        return Err(CError::Null("path"));
    }
    // SAFETY: non-NULL; the caller passes a NUL-terminated string that stays valid and
    // unchanged for the duration of the call (documented).
    let c = unsafe { CStr::from_ptr(p) };
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        Ok(PathBuf::from(std::ffi::OsStr::from_bytes(c.to_bytes())))
    }
    #[cfg(not(unix))]
    {
        c.to_str()
            .map(PathBuf::from)
            .map_err(|_| CError::Other(RMSPROP_ERR_IO, "path is not valid UTF-8".into()))
    }
}

fn encoded_len(e: &Engine) -> usize {
    with_any!(e, o => checkpoint::encoded_len(o))
}

/// The exact size in bytes of this optimizer's checkpoint into `*out` (what
/// `rmsprop_checkpoint_save` writes and needs).
///
/// Mirrors: Rust `checkpoint::encoded_len`. Ownership: nothing is allocated.
/// Errors: `RMSPROP_ERR_NULL_POINTER`, `RMSPROP_ERR_MISALIGNED`, `RMSPROP_ERR_OVERFLOW`
/// (`optimizer` or `out` is NULL, misaligned, or wraps the address space), `RMSPROP_ERR_BUSY`
/// (a mutating call is running on this handle), `RMSPROP_ERR_POISONED`; `*out` untouched on
/// error.
/// Threading: const, may run concurrently with other const calls on the handle.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_checkpoint_size(
    optimizer: *const RmspropOptimizer,
    out: *mut usize,
) -> RmspropStatus {
    boundary(|| {
        let n = with_engine(optimizer, |e| Ok(encoded_len(e)))?;
        write_out(out, "out", n)?;
        Ok(RMSPROP_OK)
    })
}

/// Write the optimizer's checkpoint into `buf` (`len` bytes available): the whole state,
/// configuration included (format: docs/checkpoint-format.md, versioned, CRC-32 checked).
/// Exactly `rmsprop_checkpoint_size` bytes are written, from `buf[0]`; the rest of `buf` is
/// untouched. On success `*written` (may be NULL) receives that size.
///
/// Mirrors: saving the optax state pytree together with the `optax.rmsprop` arguments;
/// Rust `checkpoint::write_to`. Ownership: `buf` belongs to the caller; no allocation.
/// Errors: `RMSPROP_ERR_BUFFER_TOO_SMALL` (`len` below the size; the message says how many
/// bytes are needed), `RMSPROP_ERR_NULL_POINTER` (optimizer; buf when it is needed),
/// `RMSPROP_ERR_MISALIGNED` (optimizer, written), `RMSPROP_ERR_OVERFLOW` (a pointer range
/// wraps the address space), `RMSPROP_ERR_BUSY` (a mutating call is running on this handle),
/// `RMSPROP_ERR_POISONED`; on error nothing is written to `buf` or `*written`.
/// Threading: const, may run concurrently with other const calls on the handle.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_checkpoint_save(
    optimizer: *const RmspropOptimizer,
    buf: *mut c_void,
    len: usize,
    written: *mut usize,
) -> RmspropStatus {
    boundary(|| {
        if !written.is_null() {
            check_out(written, "written")?;
        }
        let n = with_engine(optimizer, |e| {
            let needed = encoded_len(e);
            if len < needed {
                return Err(CError::BufferTooSmall { needed, got: len });
            }
            // SAFETY: the caller passes `len` writable bytes at `buf` (documented) and
            // `needed <= len`; bytes have no alignment, and the buffer cannot alias the
            // library-owned state being read.
            let out = unsafe { slice_mut(buf.cast::<u8>(), needed, "buf")? };
            with_any!(e, o => checkpoint::write_to(o, out)?);
            Ok(needed)
        })?;
        write_optional(written, "written", n)?;
        Ok(RMSPROP_OK)
    })
}

/// Load a checkpoint (`len` bytes at `buf`) into the optimizer: its configuration
/// (hyperparameters, learning rate or schedule, centered/momentum, skip flag), skipped
/// counter, counts and nu/mu/trace all become the checkpoint's; the thread setting is
/// kept. The checkpoint's layout (tensor sizes) and dtype must equal the optimizer's.
/// Everything is validated before anything changes: on any error the optimizer is exactly
/// as it was.
///
/// Mirrors: restoring a saved optax state and its `optax.rmsprop` arguments; Rust
/// `checkpoint::restore`. Ownership: `buf` is only read, during the call.
/// Errors: `RMSPROP_ERR_CHECKPOINT_CORRUPT` (bad magic, truncated, checksum, invalid
/// content), `RMSPROP_ERR_CHECKPOINT_VERSION` (written by a newer format version),
/// `RMSPROP_ERR_CHECKPOINT_MISMATCH` (layout or dtype differs), `RMSPROP_ERR_NULL_POINTER`
/// (optimizer; buf when len > 0), `RMSPROP_ERR_MISALIGNED` (optimizer),
/// `RMSPROP_ERR_OVERFLOW` (`len` above `PTRDIFF_MAX`, or `buf + len` wraps the address
/// space), `RMSPROP_ERR_BUSY` (any other call is running on this handle),
/// `RMSPROP_ERR_POISONED`. Threading: exclusive use of the handle.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_checkpoint_load(
    optimizer: *mut RmspropOptimizer,
    buf: *const c_void,
    len: usize,
) -> RmspropStatus {
    boundary(|| {
        with_engine_mut(optimizer, |e| {
            // SAFETY: the caller passes `len` readable bytes at `buf` that nobody writes
            // during the call (documented); bytes have no alignment.
            let bytes = unsafe { slice(buf.cast::<u8>(), len, "buf")? };
            with_any!(e, o => checkpoint::restore(o, bytes)?);
            Ok(())
        })?;
        Ok(RMSPROP_OK)
    })
}

/// Save the optimizer's checkpoint to the file `path` (NUL-terminated; raw bytes on
/// Unix) atomically: written to a temporary file in the same directory, fsynced, renamed
/// over `path`, then the directory is fsynced. A crash at any point leaves either the
/// complete old file or the complete new one. On error the temporary file is removed and
/// `path` is untouched (a process killed mid-save may leave a `.rmsprop-tmp-*` file,
/// which is never read and can be deleted).
///
/// Mirrors: Rust `checkpoint::save_file`. Ownership: `path` is only read.
/// Errors: `RMSPROP_ERR_IO` (cannot create, write, sync or rename; the message names the
/// file and the OS error), `RMSPROP_ERR_NULL_POINTER` (optimizer, path),
/// `RMSPROP_ERR_MISALIGNED`, `RMSPROP_ERR_OVERFLOW` (`optimizer` is misaligned or wraps the
/// address space), `RMSPROP_ERR_BUSY` (a mutating call is running on this handle),
/// `RMSPROP_ERR_POISONED`.
/// Threading: const (the handle is read-locked while the file is written).
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_checkpoint_save_file(
    optimizer: *const RmspropOptimizer,
    path: *const c_char,
) -> RmspropStatus {
    boundary(|| {
        let path = path_arg(path)?;
        with_engine(optimizer, |e| {
            with_any!(e, o => checkpoint::save_file(o, &path)?);
            Ok(())
        })?;
        Ok(RMSPROP_OK)
    })
}

/// Read the checkpoint file `path` and load it as `rmsprop_checkpoint_load` does (full
/// state and configuration; layout and dtype must match; unchanged on any error).
///
/// Mirrors: Rust `checkpoint::load_file`. Ownership: `path` is only read.
/// Errors: `RMSPROP_ERR_IO` (cannot read the file), `RMSPROP_ERR_NULL_POINTER` (path), and
/// errors as `rmsprop_checkpoint_load`. Threading: exclusive use of the handle (the file is
/// read before the handle is locked).
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_checkpoint_load_file(
    optimizer: *mut RmspropOptimizer,
    path: *const c_char,
) -> RmspropStatus {
    boundary(|| {
        check_handle(optimizer)?;
        let path = path_arg(path)?;
        let bytes = std::fs::read(&path).map_err(|e| {
            CError::Other(
                RMSPROP_ERR_IO,
                format!("checkpoint I/O error: cannot read {}: {e}", path.display()),
            )
        })?;
        with_engine_mut(optimizer, |e| {
            with_any!(e, o => checkpoint::restore(o, &bytes)?);
            Ok(())
        })?;
        Ok(RMSPROP_OK)
    })
}

/// Create a new optimizer from a checkpoint (`len` bytes at `buf`), in the checkpoint's
/// dtype and layout, with its configuration and full state; threads: rayon's global pool
/// (as `rmsprop_create`). Query the result with `rmsprop_dtype`, `rmsprop_num_tensors`, ...
///
/// Mirrors: Rust `checkpoint::decode_any`. Ownership: `buf` is only read; on success `*out`
/// owns a new handle, to be released with `rmsprop_destroy`.
/// Errors: `RMSPROP_ERR_CHECKPOINT_CORRUPT`, `RMSPROP_ERR_CHECKPOINT_VERSION` (as
/// `rmsprop_checkpoint_load`), `RMSPROP_ERR_NULL_POINTER` (out; buf when len > 0),
/// `RMSPROP_ERR_MISALIGNED` (out), `RMSPROP_ERR_OVERFLOW` (`len` above `PTRDIFF_MAX`, or a
/// pointer range wraps the address space); `*out` untouched on error. Threading: any thread.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_create_from_checkpoint(
    buf: *const c_void,
    len: usize,
    out: *mut *mut RmspropOptimizer,
) -> RmspropStatus {
    boundary(|| {
        check_out(out, "out")?;
        // SAFETY: the caller passes `len` readable bytes at `buf` that nobody writes during
        // the call (documented); bytes have no alignment.
        let bytes = unsafe { slice(buf.cast::<u8>(), len, "buf")? };
        let engine: Engine = checkpoint::decode_any(bytes)?;
        write_box(out, "out", new_handle(engine))?;
        Ok(RMSPROP_OK)
    })
}
