//! Where a step runs: rayon's global pool, the caller's thread, or a pool the optimizer
//! owns.

use crate::error::{Error, Result};
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

/// An optimizer's thread setting and, for [`Threads::Owned`], its pool.
pub(super) struct Workers {
    threads: Threads,
    pool: Option<rayon::ThreadPool>,
}

impl Workers {
    /// rayon's global pool.
    pub(super) fn new() -> Workers {
        Workers {
            threads: Threads::Global,
            pool: None,
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
            n => (Threads::Owned(n), Some(build(n)?)),
        };
        self.threads = threads;
        self.pool = pool;
        Ok(())
    }

    /// Where a step over `total` elements runs.
    pub(super) fn exec(&mut self, total: usize) -> Exec<'_> {
        if total < SEQUENTIAL_BELOW {
            return Exec::Sequential;
        }
        match (self.threads, &self.pool) {
            (Threads::Caller, _) => Exec::Sequential,
            (Threads::Owned(_), Some(p)) => Exec::Pool(p),
            _ => Exec::Global,
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
