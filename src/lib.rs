//! # rmsprop
//!
//! `optax.rmsprop`, exactly, over flat multi-tensor buffers, with a C ABI.
//!
//! Modules, in reading order:
//! - [`error`]: the error type; each variant has a fixed C status code.
//! - [`config`]: every argument of `optax.rmsprop`, optax's defaults, validation.
//! - [`schedule`]: optax's learning-rate schedules, formulas and count semantics.
//! - [`element`]: the element types (`f32`, `f64`), their dtype tags and byte encoding, the
//!   arithmetic the kernels use, and the seam between parameter and state types.
//! - [`lowp`]: `bfloat16` and `float16` ([`Bf16`], [`F16`]), every operation rounded to
//!   the type as XLA:CPU computes jitted optax.
//! - [`transform`]: gradient transforms in optax's chain order (maximize, clip by global
//!   norm, clip, weight decay) applied inside the step.
//! - [`preset`]: other frameworks' RMSProp (PyTorch, Keras 3, TF1), [`Flavor`].
//! - [`kernel`]: the fused one-pass kernel, specialised per configuration, compiled per
//!   instruction set and chosen at run time, and split over threads ([`kernel::split`]).
//! - [`optimizer`]: layout, state and the step entry points: the safe core API.
//! - [`any`]: [`AnyOptimizer`], an optimizer whose dtype is chosen at run time, and
//!   [`with_any!`].
//! - [`quant`]: block-wise 8-bit state quantization (bitsandbytes' maps and layout) and
//!   [`quant::Optimizer8bit`], the step with 8-bit state.
//! - [`checkpoint`]: the full state as versioned, checksummed bytes, and atomic files.
//! - `fork` (private): steps keep working in a `fork()`ed child.
//! - `capi`: the C ABI.
//!
//! `unsafe` code lives in `capi/` (the FFI boundary), in `kernel/simd.rs`, `transform.rs`
//! and `kernel/fpenv.rs` (calling `#[target_feature]` loops, setting the FTZ/DAZ bits) and in
//! `fork.rs` (one `pthread_atfork` call, so that steps survive `fork()`); every block has a
//! `SAFETY` comment, and the rest of the crate denies `unsafe_code`.
//!
//! ```
//! use rmsprop::{Config, Optimizer};
//! let mut opt = Optimizer::<f32>::new(Config::new(0.003), &[3]).unwrap();
//! let mut params = [1.0f32, 2.0, 3.0];
//! for _ in 0..5 {
//!     let grads: Vec<f32> = params.iter().map(|x| 2.0 * x).collect();
//!     let _ = opt.step(&mut params, &grads).unwrap();
//! }
//! let f: f32 = params.iter().map(|x| x * x).sum();
//! assert_eq!(format!("{f:.2E}"), "1.36E1");
//! ```
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod any;
pub mod checkpoint;
pub mod config;
pub mod element;
pub mod error;
mod fork;
pub mod kernel;
pub mod lowp;
pub mod optimizer;
pub mod preset;
pub mod quant;
pub mod schedule;
pub mod transform;

pub mod capi;

/// The element types; the old path of [`element`].
pub use element as real;
/// The thread split of a step; the old path of [`kernel::split`].
pub use kernel::split as parallel;

pub use any::{AnyElement, AnyOptimizer, DtypeMismatch};
pub use config::{Config, Hyper, LearningRate};
pub use element::{Dtype, Element, Real, StateOf};
pub use error::{Error, Result};
pub use lowp::{Bf16, F16};
pub use optimizer::{Component, Counts, Layout, Optimizer, Outcome, State, Threads};
pub use preset::Flavor;
pub use schedule::Schedule;
pub use transform::{Transforms, WeightDecayKind};
