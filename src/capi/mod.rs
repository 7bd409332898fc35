//! The C ABI: the FFI shell around the safe core.
//!
//! Conventions (the generated `include/rmsprop.h` documents each function):
//! - every fallible function returns an [`RmspropStatus`]; `RMSPROP_OK` is 0, errors are
//!   fixed positive values that are never reused;
//! - on error nothing is changed, out-parameters are not written, and
//!   [`rmsprop_last_error_message`] describes the failure (per thread);
//! - every exported function goes through the one panic boundary (`boundary`): no
//!   unwinding crosses it;
//! - every raw pointer passes the one pointer rule (`boundary::check_ptr`: NULL, alignment,
//!   size, address-space wrap) before use;
//! - enums arrive as plain integers and are checked, never transmuted.
//!
//! The modules are declared in reading order: cbindgen follows this order, so the header
//! reads as a manual (version, status, dtypes, options, schedules, the handle, steps, state,
//! hyperparameters, threads, checkpoints, errors).
#![allow(unsafe_code)]
#![deny(clippy::undocumented_unsafe_blocks)]
// The exported functions are called from C, where `unsafe` means nothing; each raw pointer
// they take is checked (NULL, alignment, size, overlap) before use, with a SAFETY line.
#![allow(clippy::not_unsafe_ptr_arg_deref)]

mod boundary;
mod hyper;
mod overlap;

// The header's sections, in reading order (one module each; rustfmt would sort a block of
// `mod` lines alphabetically, so each stands alone).

/// 1. The library's version.
pub mod version;

/// 2. Status codes and their names.
pub mod status;

/// 3. Element types.
pub mod dtype;

/// 4. Options: every `optax.rmsprop` argument.
pub mod options;

/// 4b. Gradient transforms: clipping, weight decay, maximize.
pub mod transforms;

/// 5. Learning-rate schedules.
pub mod schedules;

/// 6. The handle: create, destroy, queries.
pub mod handle;

/// 7. Steps: update and fused step, flat and over lists.
pub mod steps;

/// 8. State: nu, mu, trace, counts, reset.
pub mod state;

/// 9. Hyperparameters changed between steps.
pub mod hyperparameters;

/// 10. Worker threads.
pub mod threads;

/// 11. Checkpoints.
pub mod checkpoint;

/// 12. The last error message.
pub mod errors;

pub use checkpoint::*;
pub use dtype::*;
pub use errors::*;
pub use handle::*;
pub use hyperparameters::*;
pub use options::*;
pub use schedules::*;
pub use state::*;
pub use status::*;
pub use steps::*;
pub use threads::*;
pub use version::*;
