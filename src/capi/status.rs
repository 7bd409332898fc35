//! Status codes, the per-thread last error, the panic boundary and the version.

use std::cell::RefCell;
use std::ffi::{CString, c_char};
use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::error::Error;

/// The result of every fallible call: `RMSPROP_OK` or one of the `RMSPROP_ERR_*` codes.
pub type RmspropStatus = i32;

/// Success.
pub const RMSPROP_OK: RmspropStatus = 0;
/// Success, but the step was skipped because a gradient was NaN or infinite (only with
/// `rmsprop_options_set_skip_non_finite`); parameters and state are unchanged, the skip is counted.
pub const RMSPROP_SKIPPED_NON_FINITE: RmspropStatus = 1;
/// A required pointer was NULL.
pub const RMSPROP_ERR_NULL_POINTER: RmspropStatus = 2;
/// A hyperparameter was NaN, infinite or out of range.
pub const RMSPROP_ERR_INVALID_HYPERPARAMETER: RmspropStatus = 3;
/// A schedule's arguments make no sense.
pub const RMSPROP_ERR_INVALID_SCHEDULE: RmspropStatus = 4;
/// A length did not match the layout.
pub const RMSPROP_ERR_LENGTH_MISMATCH: RmspropStatus = 5;
/// A tensor index was out of range.
pub const RMSPROP_ERR_OUT_OF_RANGE: RmspropStatus = 6;
/// The configuration has no such state component (`mu` without centered, `trace` without momentum).
pub const RMSPROP_ERR_NO_SUCH_STATE: RmspropStatus = 7;
/// A buffer was not aligned to its element type.
pub const RMSPROP_ERR_MISALIGNED: RmspropStatus = 8;
/// Buffers overlap where they must not.
pub const RMSPROP_ERR_OVERLAP: RmspropStatus = 9;
/// The entry point's dtype differs from the optimizer's.
pub const RMSPROP_ERR_WRONG_DTYPE: RmspropStatus = 10;
/// An enum argument had an unknown value.
pub const RMSPROP_ERR_BAD_ENUM: RmspropStatus = 11;
/// Another thread is using this optimizer right now.
pub const RMSPROP_ERR_BUSY: RmspropStatus = 12;
/// An earlier call panicked mid-step; the optimizer's buffers may be half-written.
pub const RMSPROP_ERR_POISONED: RmspropStatus = 13;
/// An internal error (a caught panic). Please report it.
pub const RMSPROP_ERR_INTERNAL: RmspropStatus = 14;
/// A size computation overflowed.
pub const RMSPROP_ERR_OVERFLOW: RmspropStatus = 15;
/// Worker threads could not be created.
pub const RMSPROP_ERR_THREADS: RmspropStatus = 16;
/// A caller-provided output buffer is too small.
pub const RMSPROP_ERR_BUFFER_TOO_SMALL: RmspropStatus = 17;
/// A file could not be read or written.
pub const RMSPROP_ERR_IO: RmspropStatus = 18;
/// A checkpoint is corrupt, truncated or not a checkpoint.
pub const RMSPROP_ERR_CHECKPOINT_CORRUPT: RmspropStatus = 19;
/// A checkpoint was written by a newer, unknown format version.
pub const RMSPROP_ERR_CHECKPOINT_VERSION: RmspropStatus = 20;
/// A valid checkpoint that does not fit this optimizer (layout, dtype or configuration).
pub const RMSPROP_ERR_CHECKPOINT_MISMATCH: RmspropStatus = 21;
/// Memory for the optimizer state could not be allocated.
pub const RMSPROP_ERR_OUT_OF_MEMORY: RmspropStatus = 22;

/// Element type of an optimizer (an `int32_t` in the ABI).
pub type RmspropDtype = i32;
/// `float` buffers.
pub const RMSPROP_DTYPE_F32: RmspropDtype = 1;
/// `double` buffers.
pub const RMSPROP_DTYPE_F64: RmspropDtype = 2;

/// A state component (an `int32_t` in the ABI).
pub type RmspropComponent = i32;
/// `nu`, the EMA of squared gradients (always present).
pub const RMSPROP_NU: RmspropComponent = 1;
/// `mu`, the EMA of gradients (centered only).
pub const RMSPROP_MU: RmspropComponent = 2;
/// `trace`, the momentum buffer (momentum set only).
pub const RMSPROP_TRACE: RmspropComponent = 3;

/// A failure at the boundary: a core error or a C-level problem.
#[derive(Debug)]
pub(crate) enum CError {
    Core(Error),
    Null(&'static str),
    Misaligned(&'static str),
    Overlap(String),
    WrongDtype {
        expected: &'static str,
        got: &'static str,
    },
    BadEnum {
        what: &'static str,
        value: i64,
    },
    Busy,
    Poisoned,
    Overflow(&'static str),
    BufferTooSmall {
        needed: usize,
        got: usize,
    },
    Other(RmspropStatus, String),
}

impl From<Error> for CError {
    fn from(e: Error) -> Self {
        CError::Core(e)
    }
}

impl CError {
    fn status(&self) -> RmspropStatus {
        match self {
            CError::Core(e) => match e {
                Error::InvalidHyperparameter { .. } => RMSPROP_ERR_INVALID_HYPERPARAMETER,
                Error::InvalidSchedule(_) => RMSPROP_ERR_INVALID_SCHEDULE,
                Error::LengthMismatch { .. } => RMSPROP_ERR_LENGTH_MISMATCH,
                Error::TensorOutOfRange { .. } => RMSPROP_ERR_OUT_OF_RANGE,
                Error::NoSuchState(..) => RMSPROP_ERR_NO_SUCH_STATE,
                Error::LayoutOverflow => RMSPROP_ERR_OVERFLOW,
                Error::ThreadPool { .. } => RMSPROP_ERR_THREADS,
                Error::OutOfMemory { .. } => RMSPROP_ERR_OUT_OF_MEMORY,
            },
            CError::Null(_) => RMSPROP_ERR_NULL_POINTER,
            CError::Misaligned(_) => RMSPROP_ERR_MISALIGNED,
            CError::Overlap(_) => RMSPROP_ERR_OVERLAP,
            CError::WrongDtype { .. } => RMSPROP_ERR_WRONG_DTYPE,
            CError::BadEnum { .. } => RMSPROP_ERR_BAD_ENUM,
            CError::Busy => RMSPROP_ERR_BUSY,
            CError::Poisoned => RMSPROP_ERR_POISONED,
            CError::Overflow(_) => RMSPROP_ERR_OVERFLOW,
            CError::BufferTooSmall { .. } => RMSPROP_ERR_BUFFER_TOO_SMALL,
            CError::Other(s, _) => *s,
        }
    }

    fn message(&self) -> String {
        match self {
            CError::Core(e) => e.to_string(),
            CError::Null(what) => format!("{what} must not be NULL"),
            CError::Misaligned(what) => format!("{what} is not aligned to its element type"),
            CError::Overlap(m) => m.clone(),
            CError::WrongDtype { expected, got } => {
                format!("this optimizer computes in {expected}, but the {got} entry point was called")
            }
            CError::BadEnum { what, value } => format!("unknown {what} value {value}"),
            CError::Busy => "the optimizer is in use by another thread".into(),
            CError::Poisoned => {
                "an earlier call panicked inside this optimizer; its state may be inconsistent: destroy it".into()
            }
            CError::Overflow(what) => format!("size overflow: {what}"),
            CError::BufferTooSmall { needed, got } => {
                format!("output buffer too small: need {needed} bytes, got {got}")
            }
            CError::Other(_, m) => m.clone(),
        }
    }
}

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

fn set_last_error(msg: String) {
    let c = CString::new(msg.replace('\0', " ")).unwrap_or_default();
    LAST_ERROR.with(|l| *l.borrow_mut() = c);
}

/// The panic boundary every exported function goes through: runs `f`, turns its error
/// or a panic into a status code and a last-error message.
pub(crate) fn boundary(f: impl FnOnce() -> Result<RmspropStatus, CError>) -> RmspropStatus {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            set_last_error(e.message());
            e.status()
        }
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            set_last_error(format!("internal error (caught panic): {what}"));
            RMSPROP_ERR_INTERNAL
        }
    }
}

/// Like [`boundary`] for functions that cannot report a status: returns `fallback` on panic.
pub(crate) fn boundary_value<T>(fallback: T, f: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(fallback)
}

/// The message of the most recent failed call on the calling thread, as a NUL-terminated
/// string ("decay must be in [0, 1], got 1.5"); an empty string if no call has failed.
///
/// Ownership: the library owns the string; it stays valid until the next failing call on
/// this thread. Copy it if you need it longer.
/// Threading: per thread. (Go callers: lock the goroutine to its OS thread around the call
/// and this read, since goroutines migrate.)
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_last_error_message() -> *const c_char {
    boundary_value(c"".as_ptr(), || LAST_ERROR.with(|l| l.borrow().as_ptr()))
}

/// A static, NUL-terminated name for a status code ("RMSPROP_ERR_BUSY"); "RMSPROP_UNKNOWN_STATUS"
/// for values this library never returns.
///
/// Ownership: static storage, never free it. Threading: any thread.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_status_name(status: RmspropStatus) -> *const c_char {
    let s: &'static std::ffi::CStr = match status {
        RMSPROP_OK => c"RMSPROP_OK",
        RMSPROP_SKIPPED_NON_FINITE => c"RMSPROP_SKIPPED_NON_FINITE",
        RMSPROP_ERR_NULL_POINTER => c"RMSPROP_ERR_NULL_POINTER",
        RMSPROP_ERR_INVALID_HYPERPARAMETER => c"RMSPROP_ERR_INVALID_HYPERPARAMETER",
        RMSPROP_ERR_INVALID_SCHEDULE => c"RMSPROP_ERR_INVALID_SCHEDULE",
        RMSPROP_ERR_LENGTH_MISMATCH => c"RMSPROP_ERR_LENGTH_MISMATCH",
        RMSPROP_ERR_OUT_OF_RANGE => c"RMSPROP_ERR_OUT_OF_RANGE",
        RMSPROP_ERR_NO_SUCH_STATE => c"RMSPROP_ERR_NO_SUCH_STATE",
        RMSPROP_ERR_MISALIGNED => c"RMSPROP_ERR_MISALIGNED",
        RMSPROP_ERR_OVERLAP => c"RMSPROP_ERR_OVERLAP",
        RMSPROP_ERR_WRONG_DTYPE => c"RMSPROP_ERR_WRONG_DTYPE",
        RMSPROP_ERR_BAD_ENUM => c"RMSPROP_ERR_BAD_ENUM",
        RMSPROP_ERR_BUSY => c"RMSPROP_ERR_BUSY",
        RMSPROP_ERR_POISONED => c"RMSPROP_ERR_POISONED",
        RMSPROP_ERR_INTERNAL => c"RMSPROP_ERR_INTERNAL",
        RMSPROP_ERR_OVERFLOW => c"RMSPROP_ERR_OVERFLOW",
        RMSPROP_ERR_THREADS => c"RMSPROP_ERR_THREADS",
        RMSPROP_ERR_BUFFER_TOO_SMALL => c"RMSPROP_ERR_BUFFER_TOO_SMALL",
        RMSPROP_ERR_IO => c"RMSPROP_ERR_IO",
        RMSPROP_ERR_CHECKPOINT_CORRUPT => c"RMSPROP_ERR_CHECKPOINT_CORRUPT",
        RMSPROP_ERR_CHECKPOINT_VERSION => c"RMSPROP_ERR_CHECKPOINT_VERSION",
        RMSPROP_ERR_CHECKPOINT_MISMATCH => c"RMSPROP_ERR_CHECKPOINT_MISMATCH",
        RMSPROP_ERR_OUT_OF_MEMORY => c"RMSPROP_ERR_OUT_OF_MEMORY",
        _ => c"RMSPROP_UNKNOWN_STATUS",
    };
    s.as_ptr()
}

/// The loaded library's version as `MAJOR * 10000 + MINOR * 100 + PATCH`; compare with
/// `RMSPROP_VERSION_NUMBER` from the header you compiled against.
///
/// Threading: any thread. Never fails.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_version_number() -> u32 {
    let p = |s: &str| s.parse::<u32>().unwrap_or(0);
    p(env!("CARGO_PKG_VERSION_MAJOR")) * 10000
        + p(env!("CARGO_PKG_VERSION_MINOR")) * 100
        + p(env!("CARGO_PKG_VERSION_PATCH"))
}

/// The loaded library's version as a static NUL-terminated string ("0.1.0").
///
/// Ownership: static storage, never free it. Threading: any thread.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_version_string() -> *const c_char {
    const V: &str = concat!(env!("CARGO_PKG_VERSION"), "\0");
    V.as_ptr().cast()
}

/// Write `*out = v` after checking `out`.
pub(crate) fn write_out<T>(out: *mut T, what: &'static str, v: T) -> Result<(), CError> {
    if out.is_null() {
        return Err(CError::Null(what));
    }
    if !out.is_aligned() {
        return Err(CError::Misaligned(what));
    }
    // SAFETY: `out` is non-NULL and aligned (checked above); the caller promises it points
    // to writable storage for one `T`, as every function's documentation requires.
    unsafe { out.write(v) };
    Ok(())
}

/// Check an out-pointer before anything is allocated for it.
pub(crate) fn check_out<T>(out: *mut T, what: &'static str) -> Result<(), CError> {
    if out.is_null() {
        return Err(CError::Null(what));
    }
    if !out.is_aligned() {
        return Err(CError::Misaligned(what));
    }
    Ok(())
}

/// Hand a new object to the caller through `out`. On error the box is dropped here, so a
/// bad out-pointer never leaks the object.
pub(crate) fn write_box<T>(out: *mut *mut T, what: &'static str, b: Box<T>) -> Result<(), CError> {
    check_out(out, what)?;
    write_out(out, what, Box::into_raw(b))
}

/// Borrow `n` elements at `p` as a slice. `n == 0` accepts any pointer, NULL included.
///
/// # Safety
/// When `n > 0`, `p` must point to `n` readable, initialised elements that stay valid and
/// are not written by anyone else for the lifetime `'a`.
pub(crate) unsafe fn slice<'a, T>(
    p: *const T,
    n: usize,
    what: &'static str,
) -> Result<&'a [T], CError> {
    if n == 0 {
        return Ok(&[]);
    }
    check_ptr(p, n, what)?;
    // SAFETY: non-NULL, aligned, size fits isize (checked), and the caller upholds validity.
    Ok(unsafe { std::slice::from_raw_parts(p, n) })
}

/// Mutable counterpart of [`slice`].
///
/// # Safety
/// When `n > 0`, `p` must point to `n` writable, initialised elements that nothing else
/// reads or writes for the lifetime `'a` (overlaps are checked by the callers).
pub(crate) unsafe fn slice_mut<'a, T>(
    p: *mut T,
    n: usize,
    what: &'static str,
) -> Result<&'a mut [T], CError> {
    if n == 0 {
        return Ok(&mut []);
    }
    check_ptr(p, n, what)?;
    // SAFETY: non-NULL, aligned, size fits isize (checked), and the caller upholds validity.
    Ok(unsafe { std::slice::from_raw_parts_mut(p, n) })
}

fn check_ptr<T>(p: *const T, n: usize, what: &'static str) -> Result<(), CError> {
    if p.is_null() {
        return Err(CError::Null(what));
    }
    if !p.is_aligned() {
        return Err(CError::Misaligned(what));
    }
    let bytes = n
        .checked_mul(size_of::<T>())
        .filter(|&b| b <= isize::MAX as usize)
        .ok_or(CError::Overflow(what))?;
    if (p as usize).checked_add(bytes).is_none() {
        return Err(CError::Overflow(what));
    }
    Ok(())
}
