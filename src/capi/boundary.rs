//! The boundary every exported function goes through: the one panic catch, the per-thread
//! last error, and the one rule for checking a raw pointer from C. Exports nothing.

use std::cell::RefCell;
use std::ffi::CString;
use std::panic::{AssertUnwindSafe, catch_unwind};

use super::status::*;
use crate::error::Error;

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
                Error::NeedsParams => RMSPROP_ERR_NO_SUCH_STATE,
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

/// The calling thread's last error message; valid until the next failing call on this thread.
pub(crate) fn last_error_ptr() -> *const std::ffi::c_char {
    LAST_ERROR.with(|l| l.borrow().as_ptr())
}

/// The panic boundary every fallible exported function goes through: runs `f`, turns its
/// error or a panic into a status code and a last-error message.
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

/// [`boundary`] for a body that only succeeds or fails: `Ok(())` becomes `RMSPROP_OK`.
pub(crate) fn boundary_ok(f: impl FnOnce() -> Result<(), CError>) -> RmspropStatus {
    boundary(|| f().map(|()| RMSPROP_OK))
}

/// Like [`boundary`] for functions that cannot report a status: returns `fallback` on panic.
pub(crate) fn boundary_value<T>(fallback: T, f: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(fallback)
}

/// The one pointer rule, for `n` elements of `T` at `p` (`n >= 1`): not NULL, aligned to
/// `T`, a byte size that fits `isize`, and a range that does not wrap the address space.
/// Returns the byte range `(start, end)`.
#[inline]
pub(crate) fn check_ptr<T>(
    p: *const T,
    n: usize,
    what: &'static str,
) -> Result<(usize, usize), CError> {
    if p.is_null() {
        return Err(CError::Null(what));
    }
    if !p.is_aligned() {
        return Err(CError::Misaligned(what));
    }
    let start = p as usize;
    match n.checked_mul(size_of::<T>()) {
        Some(bytes) if bytes <= isize::MAX as usize => match start.checked_add(bytes) {
            Some(end) => Ok((start, end)),
            None => Err(CError::Overflow(what)),
        },
        _ => Err(CError::Overflow(what)),
    }
}

/// Borrow the one object at `p` (an opaque handle, options or schedule), after [`check_ptr`].
///
/// # Safety
/// `p` must point to a live `T` that nobody mutates for the lifetime `'a`.
pub(crate) unsafe fn object<'a, T>(p: *const T, what: &'static str) -> Result<&'a T, CError> {
    check_ptr(p, 1, what)?;
    // SAFETY: non-NULL and aligned (checked); the caller upholds liveness.
    Ok(unsafe { &*p })
}

/// Mutable counterpart of [`object`].
///
/// # Safety
/// `p` must point to a live `T` that nobody else reads or writes for the lifetime `'a`.
pub(crate) unsafe fn object_mut<'a, T>(p: *mut T, what: &'static str) -> Result<&'a mut T, CError> {
    check_ptr(p, 1, what)?;
    // SAFETY: non-NULL and aligned (checked); the caller upholds liveness and exclusivity.
    Ok(unsafe { &mut *p })
}

/// Read an optional value: NULL means `None`; otherwise the pointer rule applies.
pub(crate) fn read_optional<T: Copy>(p: *const T, what: &'static str) -> Result<Option<T>, CError> {
    if p.is_null() {
        return Ok(None);
    }
    check_ptr(p, 1, what)?;
    // SAFETY: non-NULL and aligned (checked); the caller passes a readable `T` (documented).
    Ok(Some(unsafe { p.read() }))
}

/// Check an out-pointer (before anything is computed or allocated for it).
pub(crate) fn check_out<T>(out: *mut T, what: &'static str) -> Result<(), CError> {
    check_ptr(out.cast_const(), 1, what).map(|_| ())
}

/// Write `*out = v` after checking `out`.
pub(crate) fn write_out<T>(out: *mut T, what: &'static str, v: T) -> Result<(), CError> {
    check_out(out, what)?;
    // SAFETY: `out` is non-NULL and aligned (checked above); the caller promises it points
    // to writable storage for one `T`, as every function's documentation requires.
    unsafe { out.write(v) };
    Ok(())
}

/// Write `*out = v` when `out` is not NULL (an optional out-pointer).
pub(crate) fn write_optional<T>(out: *mut T, what: &'static str, v: T) -> Result<(), CError> {
    if out.is_null() {
        Ok(())
    } else {
        write_out(out, what, v)
    }
}

/// Hand a new object to the caller through `out`. On error the box is dropped here, so a
/// bad out-pointer never leaks the object.
pub(crate) fn write_box<T>(out: *mut *mut T, what: &'static str, b: Box<T>) -> Result<(), CError> {
    check_out(out, what)?;
    write_out(out, what, Box::into_raw(b))
}

/// Free an object made by `Box::into_raw`; NULL is a no-op. Never fails, never unwinds.
///
/// # Safety
/// `p` is NULL or came from this library's `Box::into_raw` and is freed only once.
pub(crate) unsafe fn free_box<T>(p: *mut T) {
    boundary_value((), || {
        if !p.is_null() {
            // SAFETY: the caller's contract: a pointer from `Box::into_raw`, freed once.
            drop(unsafe { Box::from_raw(p) });
        }
    })
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
    // SAFETY: non-NULL, aligned, size fits isize, no wrap (checked); the caller upholds validity.
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
    // SAFETY: non-NULL, aligned, size fits isize, no wrap (checked); the caller upholds validity.
    Ok(unsafe { std::slice::from_raw_parts_mut(p, n) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pointer_rule() {
        let x = [0u64; 4];
        let p = x.as_ptr();
        let status = |r: Result<(usize, usize), CError>| r.map_err(|e| e.status());
        assert_eq!(
            status(check_ptr(p, 4, "x")),
            Ok((p as usize, p as usize + 32))
        );
        assert_eq!(
            status(check_ptr(std::ptr::null::<u64>(), 1, "x")),
            Err(RMSPROP_ERR_NULL_POINTER)
        );
        let mis = p.cast::<u8>().wrapping_add(1).cast::<u64>();
        assert_eq!(status(check_ptr(mis, 1, "x")), Err(RMSPROP_ERR_MISALIGNED));
        // A byte size above isize::MAX, and one that overflows usize.
        assert_eq!(
            status(check_ptr(p, usize::MAX / 8, "x")),
            Err(RMSPROP_ERR_OVERFLOW)
        );
        assert_eq!(
            status(check_ptr(p, usize::MAX, "x")),
            Err(RMSPROP_ERR_OVERFLOW)
        );
        // Ranges that wrap the address space, including one ending exactly at its end.
        let top = (usize::MAX - 7) as *const u64;
        assert_eq!(status(check_ptr(top, 1, "x")), Err(RMSPROP_ERR_OVERFLOW));
        assert_eq!(status(check_ptr(top, 2, "x")), Err(RMSPROP_ERR_OVERFLOW));
        let below = (usize::MAX - 15) as *const u64;
        assert_eq!(
            status(check_ptr(below, 1, "x")),
            Ok((usize::MAX - 15, usize::MAX - 7))
        );
    }

    #[test]
    fn empty_ranges_accept_any_pointer() {
        // SAFETY: n == 0: the pointer is never dereferenced.
        let s = unsafe { slice(std::ptr::dangling::<f32>().wrapping_add(1), 0, "x") };
        assert!(s.is_ok_and(|s| s.is_empty()));
        // SAFETY: as above.
        let s = unsafe { slice_mut(std::ptr::null_mut::<f64>(), 0, "x") };
        assert!(s.is_ok_and(|s| s.is_empty()));
    }
}
