//! Errors of the safe core. Every variant maps to one fixed C status code
//! (see `crate::capi::boundary`), and its `Display` text is the message a C caller
//! reads back with `rmsprop_last_error_message`.

use thiserror::Error;

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the core. A failed call never changes the optimizer.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum Error {
    /// A hyperparameter is NaN, infinite or outside its documented range.
    #[error("{name} must be {rule}, got {value:?}")]
    InvalidHyperparameter {
        /// Argument name as optax spells it (`decay`, `eps`, ...).
        name: &'static str,
        /// The rule that was broken, in words ("in [0, 1]").
        rule: &'static str,
        /// The offending value.
        value: f64,
    },
    /// A schedule argument makes no sense (for example zero transition steps).
    #[error("invalid schedule: {0}")]
    InvalidSchedule(String),
    /// A buffer or list has the wrong number of elements.
    #[error("{what}: expected {expected} elements, got {got}")]
    LengthMismatch {
        /// Which argument.
        what: &'static str,
        /// The length the layout requires.
        expected: usize,
        /// The length that was passed.
        got: usize,
    },
    /// A tensor index past the end of the layout.
    #[error("tensor index {index} is out of range for a layout of {count} tensors")]
    TensorOutOfRange {
        /// The index passed.
        index: usize,
        /// The number of tensors in the layout.
        count: usize,
    },
    /// The configuration has no such state buffer (`mu` without `centered`, `trace` without momentum).
    #[error("this configuration has no `{0}` state (it exists only with {1})")]
    NoSuchState(&'static str, &'static str),
    /// The layout's total element count overflows `usize`.
    #[error("layout is too large: the total element count overflows")]
    LayoutOverflow,
    /// The state buffers could not be allocated.
    #[error("out of memory: could not allocate {bytes} bytes of optimizer state")]
    OutOfMemory {
        /// Bytes of the failed allocation.
        bytes: usize,
    },
    /// A worker pool could not be created.
    #[error("could not create a thread pool of {threads} threads: {reason}")]
    ThreadPool {
        /// Requested threads.
        threads: usize,
        /// Why rayon refused.
        reason: String,
    },
    /// Weight decay is set, and the entry point does not receive the parameters.
    #[error(
        "weight decay needs the parameters: use a step entry point (the update entry points do not receive them)"
    )]
    NeedsParams,
}
