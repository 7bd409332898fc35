//! Worker threads per handle.

use super::handle::{RmspropOptimizer, mutate, query};
use super::status::*;
use crate::with_any;

/// Worker threads for this handle's steps: 0 = rayon's global pool (default, one thread per
/// core), 1 = the calling thread only (no worker threads at all), n > 1 = a pool of n threads
/// owned by this handle (at most 1024). Use 1 or a small n in MPI ranks or inside a host's
/// own thread pool to avoid oversubscription. Results are bit-identical for every setting.
/// Safe after `fork()`: in a forked child (and its children), steps run on a thread pool
/// built in that process (the threads of rayon's global pool and of pools built before the
/// fork do not exist there), or on the calling thread if no pool can be built; results are
/// bit-identical to the parent's.
/// Errors: `RMSPROP_ERR_THREADS` (more than 1024, or the pool cannot be created);
/// `RMSPROP_ERR_NULL_POINTER`, `RMSPROP_ERR_MISALIGNED`, `RMSPROP_ERR_OVERFLOW` (`optimizer`
/// is NULL, misaligned, or wraps the address space), `RMSPROP_ERR_BUSY` (any other call is
/// running on this handle), `RMSPROP_ERR_POISONED`; unchanged on error. Threading: exclusive.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_set_threads(
    optimizer: *mut RmspropOptimizer,
    threads: usize,
) -> RmspropStatus {
    mutate(optimizer, |e| {
        Ok(with_any!(e, o => o.set_threads(threads))?)
    })
}

/// The thread setting (as passed to `rmsprop_set_threads`) into `*out`. Errors as `rmsprop_dtype`.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_get_threads(
    optimizer: *const RmspropOptimizer,
    out: *mut usize,
) -> RmspropStatus {
    query(optimizer, out, |e| {
        Ok(match with_any!(e, o => o.threads()) {
            crate::Threads::Global => 0,
            crate::Threads::Caller => 1,
            crate::Threads::Owned(n) => n,
        })
    })
}
