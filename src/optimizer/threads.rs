//! Where a step runs: rayon's global pool, the caller's thread, or a pool the optimizer
//! owns; after a `fork()`, on pools built in the forked process ([`crate::fork`]).

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::fork;
use crate::kernel::split::{Exec, SEQUENTIAL_BELOW};

/// The largest thread count [`Optimizer::set_threads`](super::Optimizer::set_threads) accepts.
pub const MAX_THREADS: usize = 1024;

/// How many threads a step may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Threads {
    /// rayon's global pool (the default).
    Global,
    /// The caller's thread only.
    Caller,
    /// An optimizer-owned pool of this many threads (at least 2).
    Owned(usize),
}

/// An optimizer's thread setting and, for [`Threads::Owned`], its pool. Fork-safe: see
/// [`crate::fork`].
pub(super) struct Workers {
    threads: Threads,
    pool: Option<OwnedPool>,
    /// The pool the global setting runs on in a forked process, for the step in progress.
    after_fork: Option<Arc<rayon::ThreadPool>>,
}

/// A pool and the fork generation it was built in.
struct OwnedPool {
    pool: Option<rayon::ThreadPool>,
    generation: u64,
}

impl OwnedPool {
    fn new(n: usize) -> Result<OwnedPool> {
        Ok(OwnedPool {
            pool: Some(build(n)?),
            generation: fork::generation(),
        })
    }

    /// Whether the pool's threads exist in this process.
    fn alive(&self) -> bool {
        self.generation == fork::generation()
    }
}

impl Drop for OwnedPool {
    fn drop(&mut self) {
        if let Some(p) = self.pool.take()
            && !self.alive()
        {
            // Built before a fork: its threads are gone, and dropping it could wait on
            // locks that a parent thread held at the fork.
            std::mem::forget(p);
        }
    }
}

impl Workers {
    /// rayon's global pool.
    pub(super) fn new() -> Workers {
        fork::watch();
        Workers {
            threads: Threads::Global,
            pool: None,
            after_fork: None,
        }
    }

    /// The setting.
    pub(super) fn threads(&self) -> Threads {
        self.threads
    }

    /// `0` = rayon's global pool, `1` = the caller's thread, `n > 1` = an owned pool of `n`.
    /// On error the setting is unchanged.
    pub(super) fn set(&mut self, n: usize) -> Result<()> {
        if n > MAX_THREADS {
            return Err(Error::ThreadPool {
                threads: n,
                reason: format!("at most {MAX_THREADS} threads per optimizer"),
            });
        }
        let (threads, pool) = match n {
            0 => (Threads::Global, None),
            1 => (Threads::Caller, None),
            n => (Threads::Owned(n), Some(OwnedPool::new(n)?)),
        };
        self.threads = threads;
        self.pool = pool;
        Ok(())
    }

    /// Where a step over `total` elements runs. In a forked process, a pool built before
    /// the fork is replaced first (when that fails, the step runs on the calling thread).
    pub(super) fn exec(&mut self, total: usize) -> Exec<'_> {
        self.after_fork = None;
        if total < SEQUENTIAL_BELOW {
            return Exec::Sequential;
        }
        match self.threads {
            Threads::Caller => Exec::Sequential,
            Threads::Owned(n) => {
                if !self.pool.as_ref().is_some_and(OwnedPool::alive) {
                    self.pool = OwnedPool::new(n).ok();
                }
                match self.pool.as_ref().and_then(|p| p.pool.as_ref()) {
                    Some(p) => Exec::Pool(p),
                    None => Exec::Sequential,
                }
            }
            Threads::Global => match fork::global_pool_after_fork() {
                None => Exec::Global,
                Some(pool) => {
                    self.after_fork = pool;
                    match &self.after_fork {
                        Some(p) => Exec::Pool(p),
                        None => Exec::Sequential,
                    }
                }
            },
        }
    }
}

/// A pool of `n` threads named `rmsprop-<i>`.
fn build(n: usize) -> Result<rayon::ThreadPool> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .thread_name(|i| format!("rmsprop-{i}"))
        .build()
        .map_err(|e| Error::ThreadPool {
            threads: n,
            reason: e.to_string(),
        })
}
