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

pub mod checkpoint;
pub mod dtype;
pub mod errors;
pub mod handle;
pub mod hyperparameters;
pub mod options;
pub mod schedules;
pub mod state;
pub mod status;
pub mod steps;
pub mod threads;
pub mod version;

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
