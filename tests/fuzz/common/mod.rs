//! Fuzz-target logic shared by the cargo-fuzz targets (`tests/fuzz/fuzz_targets/*.rs`) and
//! the corpus replay test (`tests/fuzz_replay.rs`), so that every corpus file and every
//! regression input is re-checked by a plain `cargo test`, without libFuzzer.
//!
//! Two entry points, one per target:
//! - [`c_api_sequence`]: the input is a little program of C API calls (see [`Op`]), run
//!   against the `extern "C"` functions of `rmsprop::capi` with arbitrary arguments,
//!   NULL / misaligned / overlapping buffers where the API promises a checked error, and
//!   invariants checked after every call;
//! - [`checkpoint_load`]: the input is a checkpoint (after a mode byte), fed to every
//!   decoder, Rust and C.
//!
//! Every broken invariant is a `panic!` (libFuzzer turns it into a crash and saves the
//! input). `RMSPROP_ERR_INTERNAL` (a panic caught inside the library) is treated as one.
//! The documentation of `docs/fuzzing.md` lists the invariants.
//!
//! Files, by concern: `input` (decoding the input bytes), `elem` (f32/f64 and their typed
//! entry points), `checks` (the oracle: statuses, snapshots, invariants), `program` (the
//! program's context, operations and dispatch), `options`, `schedules`, `handles`, `steps`,
//! `state` (the operations, one family each), `checkpoint_target` (the second target),
//! `seeds` (seed inputs for both targets).
#![allow(
    dead_code,
    clippy::too_many_arguments,
    clippy::type_complexity,
    clippy::missing_safety_doc,
    clippy::needless_range_loop
)]

use std::ffi::{CStr, c_void};
use std::ptr::{null, null_mut};

use rmsprop::capi::*;
use rmsprop::checkpoint::{self, AnyOptimizer, CheckpointError};
use rmsprop::{Config, LearningRate, Optimizer, Schedule};

/// The largest layout (total elements) the C API target creates.
pub const MAX_ELEMS: usize = 4096;
pub(crate) const MAX_TENSORS: usize = 8;
pub(crate) const MAX_HANDLES: usize = 4;
pub(crate) const MAX_OPTIONS: usize = 4;
pub(crate) const MAX_SCHEDULES: usize = 8;
/// Calls per input; longer inputs are cut (keeps each run fast).
pub(crate) const MAX_OPS: usize = 48;

mod checkpoint_target;
mod checks;
mod elem;
mod handles;
mod input;
mod options;
mod program;
mod schedules;
mod seeds;
mod state;
mod steps;

pub(crate) use checkpoint_target::*;
pub(crate) use checks::*;
pub(crate) use elem::*;
pub(crate) use input::*;
pub(crate) use program::*;
// Only tests/fuzz_replay.rs writes seeds; the fuzz targets do not use them.
#[allow(unused_imports)]
pub(crate) use seeds::*;
pub(crate) use state::*;
pub(crate) use steps::*;
