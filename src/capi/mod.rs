//! The C ABI: the only module with `unsafe` code.
//!
//! Conventions (the generated `include/rmsprop.h` documents each function):
//! - every fallible function returns an [`RmspropStatus`]; `RMSPROP_OK` is 0, errors are
//!   fixed positive values that are never reused;
//! - on error nothing is changed, out-parameters are not written, and
//!   [`rmsprop_last_error_message`] describes the failure (per thread);
//! - every exported function catches panics: no unwinding crosses the boundary;
//! - enums arrive as plain integers and are checked, never transmuted.
#![allow(unsafe_code)]
#![deny(clippy::undocumented_unsafe_blocks)]
// The exported functions are called from C, where `unsafe` means nothing; each raw pointer
// they take is checked (NULL, alignment, size, overlap) before use, with a SAFETY line.
#![allow(clippy::not_unsafe_ptr_arg_deref)]

pub mod checkpoint;
pub mod handle;
pub mod options;
pub mod status;

pub use checkpoint::*;
pub use handle::*;
pub use options::*;
pub use status::*;
