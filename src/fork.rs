//! Surviving `fork()`: a forked child has only the thread that called `fork`; the worker
//! threads of every rayon pool (the global one, and each optimizer's own) do not exist
//! there, and a step that hands work to them would wait forever.
//!
//! A `pthread_atfork` child handler, installed once when the first optimizer is made,
//! advances a fork *generation* (an atomic counter; the handler does nothing else, so it is
//! async-signal-safe). Each owned pool remembers the generation it was built in; a step in a
//! later generation replaces it with a pool built in this process. rayon's global pool
//! cannot be rebuilt, so after any fork the global setting runs on a pool built by this
//! module in the current process instead ([`global_pool_after_fork`]). A stale pool is
//! leaked (`std::mem::forget`), never dropped: dropping signals threads that are not there
//! through locks that a parent thread may have held at the fork. Results are bit-identical
//! for every thread count, so a child steps to the same bits as its parent.
//!
//! # `unsafe`
//! One block, with a `SAFETY` comment: the `pthread_atfork` call.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, TryLockError};

/// Forks this process is descended through since the handler was installed: 0 in the
/// process that installed it.
static GENERATION: AtomicU64 = AtomicU64::new(0);
/// Set by the one call that installs the handler. Not a `Once`: a fork while another
/// thread is inside `call_once` would leave the child's `Once` running forever, and the
/// child's next optimizer would wait on it.
static INSTALLED: AtomicBool = AtomicBool::new(false);

#[cfg_attr(not(unix), allow(dead_code))]
extern "C" fn on_fork_child() {
    // Async-signal-safe: one atomic add, no allocation, no lock.
    GENERATION.fetch_add(1, Ordering::Relaxed);
}

/// Install the fork handler (once per process; later calls are one atomic load, and
/// never wait).
pub(crate) fn watch() {
    if INSTALLED.load(Ordering::Relaxed) || INSTALLED.swap(true, Ordering::Relaxed) {
        return;
    }
    #[cfg(unix)]
    {
        #[allow(unsafe_code)]
        // SAFETY: `pthread_atfork` only records the three function pointers; `None` is
        // allowed for each. `on_fork_child` is a plain `extern "C" fn()` with static
        // lifetime that touches nothing but an atomic, which is what POSIX allows in the
        // child of a multi-threaded process.
        let rc = unsafe { libc::pthread_atfork(None, None, Some(on_fork_child)) };
        // ENOMEM is the only documented failure; then forks go unnoticed, as before.
        let _ = rc;
    }
}

/// The current fork generation (see the module docs).
pub(crate) fn generation() -> u64 {
    GENERATION.load(Ordering::Relaxed)
}

/// The pool the global setting uses in a forked process, with the generation it was built
/// in.
static AFTER_FORK: Mutex<Option<(u64, Arc<rayon::ThreadPool>)>> = Mutex::new(None);

/// `None` in a process that has not forked since [`watch`] (use rayon's global pool).
/// After a fork: `Some` pool built in this process (rayon's default size), or `Some(None)`
/// when none can be had right now (another thread is building it, or the threads could
/// not be created): run on the calling thread.
pub(crate) fn global_pool_after_fork() -> Option<Option<Arc<rayon::ThreadPool>>> {
    let generation = generation();
    if generation == 0 {
        return None;
    }
    // `try_lock`: a lock held by a thread of the parent at the fork is held forever here.
    let mut slot = match AFTER_FORK.try_lock() {
        Ok(g) => g,
        Err(TryLockError::Poisoned(p)) => p.into_inner(),
        Err(TryLockError::WouldBlock) => return Some(None),
    };
    if let Some((g, pool)) = slot.as_ref()
        && *g == generation
    {
        return Some(Some(Arc::clone(pool)));
    }
    if let Some((_, stale)) = slot.take() {
        // Built before the last fork: its threads are gone.
        std::mem::forget(stale);
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .thread_name(|i| format!("rmsprop-forked-{i}"))
        .build()
        .ok()
        .map(Arc::new);
    if let Some(p) = &pool {
        *slot = Some((generation, Arc::clone(p)));
    }
    Some(pool)
}
