//! The last error: what went wrong in the most recent failed call on this thread.

use std::ffi::c_char;

use super::boundary::{boundary_value, last_error_ptr};

/// The message of the most recent failed call on the calling thread, as a NUL-terminated
/// string ("decay must be in [0, 1], got 1.5"); an empty string if no call has failed.
///
/// Ownership: the library owns the string; it stays valid until the next failing call on
/// this thread. Copy it if you need it longer.
/// Threading: per thread. (Go callers: lock the goroutine to its OS thread around the call
/// and this read, since goroutines migrate.) Never fails.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_last_error_message() -> *const c_char {
    boundary_value(c"".as_ptr(), last_error_ptr)
}
