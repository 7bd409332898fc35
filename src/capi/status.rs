//! Status codes: what every fallible function returns, and their names.

use std::ffi::c_char;

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
/// A pointer (buffer, handle, options, schedule or out-pointer) was not aligned to its type.
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
/// An internal error (a caught panic). Please report it. Any fallible function may return it
/// (it is not repeated in each function's list of errors).
pub const RMSPROP_ERR_INTERNAL: RmspropStatus = 14;
/// A size computation overflowed, or a pointer's range wraps the address space (a huge
/// length, or a pointer near the top of memory).
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
