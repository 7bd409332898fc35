//! Checkpoints: the full optimizer state as a versioned, self-describing, checksummed
//! byte string, and atomic checkpoint files.
//!
//! A checkpoint holds everything [`Optimizer`] needs to continue bit-identically: the whole
//! configuration (every hyperparameter, the fixed learning rate or the whole schedule tree,
//! joins included), the `skip_non_finite` flag and the skipped-step counter, both counts,
//! the layout (tensor sizes), the dtype and every state buffer (`nu`, `mu`, `trace`).
//! The thread setting is not state and is not saved: a restored optimizer keeps its own,
//! and a decoded one starts on rayon's global pool, like [`Optimizer::new`].
//!
//! The byte layout, the versioning rule, the checksum and the atomic-save protocol are
//! specified in `docs/checkpoint-format.md`; in short:
//! - a 24-byte header (magic `RMSPCKPT`, format version, reserved word, body length), the
//!   body (sections `CONF`, `LAYT`, `STAT`, each with a tag and a length), and a CRC-32
//!   (IEEE, as `zlib.crc32`) of everything before it; all integers little-endian;
//! - the header framing and the CRC-32 trailer are the same in every format version, so a
//!   reader checks the checksum before it looks at the version; a version newer than
//!   [`VERSION`] is a [`CheckpointError::Version`], and every older version stays readable
//!   (the decoder switches on the version).
//!
//! Decoding validates everything (magic, length, checksum, version, every section and
//! count, enum tags, booleans, reserved bits, and the configuration through
//! [`Config::validate`](crate::Config::validate)); no allocation is sized by a length that has not been checked
//! against the bytes actually present. [`restore`] decodes into a temporary optimizer and
//! swaps it in only when everything is valid, so on any error the optimizer is exactly
//! as it was.
//!
//! Loading into an existing optimizer ([`restore`], [`load_file`]) replaces its whole
//! state *and configuration* with the checkpoint's (hyperparameters, learning rate or
//! schedule, `centered`/momentum and therefore which buffers exist, the skip flag and
//! counter); the checkpoint's layout and dtype must equal the optimizer's
//! ([`CheckpointError::Mismatch`] otherwise).
//!
//! Files: `format` (the frame: header, sections, version, CRC-32), `bytes` (little-endian
//! writers and the bounds-checked reader), `schedule_codec` (schedules, derived from their
//! declaration), `codec` (the version-1 sections), `file` (atomic save, load).
//!
//! ```
//! use rmsprop::{Config, Optimizer, checkpoint};
//! let mut a = Optimizer::<f32>::new(Config::new(0.01), &[2, 3]).unwrap();
//! let mut params = [1.0f32; 5];
//! let _ = a.step(&mut params, &[0.5; 5]).unwrap();
//! let bytes = checkpoint::encode(&a);
//! assert_eq!(bytes.len(), checkpoint::encoded_len(&a));
//! let mut b = Optimizer::<f32>::new(Config::new(0.5), &[2, 3]).unwrap();
//! checkpoint::restore(&mut b, &bytes).unwrap();
//! assert_eq!(b.config(), a.config());
//! assert_eq!(b.full_state(), a.full_state());
//! ```

mod bytes;
mod codec;
mod file;
mod format;
mod schedule_codec;

use std::io::Write;

pub use crate::any::AnyOptimizer;
use crate::optimizer::Optimizer;
pub use file::{TEMP_PREFIX, save_file};
pub use format::{
    HEADER_LEN, MAGIC, MAX_SCHEDULE_DEPTH, TRAILER_LEN, VERSION, crc32, crc32_update,
};

/// Why a checkpoint could not be written, read or loaded. Every failure leaves the
/// optimizer unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    /// Not a checkpoint, truncated, checksum mismatch, or invalid content.
    #[error("corrupt checkpoint: {0}")]
    Corrupt(String),
    /// Written by a newer format version than this library reads.
    #[error(
        "checkpoint format version {found} is newer than this library supports (1 to {supported}): upgrade the library"
    )]
    Version {
        /// The version in the checkpoint.
        found: u32,
        /// The newest version this library reads ([`VERSION`]).
        supported: u32,
    },
    /// A valid checkpoint whose layout or dtype differs from the optimizer's.
    #[error("checkpoint does not fit this optimizer: {0}")]
    Mismatch(String),
    /// A file could not be written, synced, renamed or read.
    #[error("checkpoint I/O error: {0}")]
    Io(String),
}

/// Result of the checkpoint functions.
pub type Result<T, E = CheckpointError> = std::result::Result<T, E>;

fn corrupt(msg: impl Into<String>) -> CheckpointError {
    CheckpointError::Corrupt(msg.into())
}

/// The element type stored in a checkpoint (tag byte in `LAYT`): [`crate::element::Dtype`].
pub use crate::element::Dtype;

/// The bound of the checkpoint functions: a type an optimizer computes in and a checkpoint
/// stores (`f32`, `f64`). The old name of [`crate::element::Real`], kept for callers.
pub use crate::element::Real as Element;

/// The exact size in bytes of `encode(opt)`.
pub fn encoded_len<T: Element>(opt: &Optimizer<T>) -> usize {
    HEADER_LEN + codec::plan(opt).body_len as usize + TRAILER_LEN
}

/// Stream the checkpoint of `opt` into `w` (exactly [`encoded_len`] bytes; nothing is
/// buffered beyond a small chunk, so a large state is never copied whole).
/// Errors: [`CheckpointError::Io`] when `w` fails.
pub fn write_to<T: Element, W: Write>(opt: &Optimizer<T>, w: W) -> Result<()> {
    codec::write_io(opt, w).map_err(|e| CheckpointError::Io(e.to_string()))
}

/// The checkpoint of `opt`, [`encoded_len`] bytes.
pub fn encode<T: Element>(opt: &Optimizer<T>) -> Vec<u8> {
    let mut v = Vec::with_capacity(encoded_len(opt));
    // Writing into a Vec cannot fail.
    let _ = codec::write_io(opt, &mut v);
    v
}

/// Check the frame (magic, length, checksum, version) and dispatch on the version.
fn parse(bytes: &[u8]) -> Result<codec::Parsed<'_>> {
    let f = format::frame(bytes)?;
    format::check_version(f.version)?;
    match f.version {
        1 => codec::parse_v1(f.reserved, f.body),
        found => Err(CheckpointError::Version {
            found,
            supported: VERSION,
        }),
    }
}

/// A new optimizer from a checkpoint of dtype `T` (thread setting: rayon's global pool).
/// Errors: `Corrupt`, `Version`, `Mismatch` (the checkpoint holds the other dtype).
pub fn decode<T: Element>(bytes: &[u8]) -> Result<Optimizer<T>> {
    parse(bytes)?.build()
}

/// A new optimizer of whichever dtype the checkpoint holds.
/// Errors: `Corrupt`, `Version`.
pub fn decode_any(bytes: &[u8]) -> Result<AnyOptimizer> {
    let p = parse(bytes)?;
    Ok(match p.dtype {
        Dtype::F32 => AnyOptimizer::F32(p.build()?),
        Dtype::F64 => AnyOptimizer::F64(p.build()?),
        Dtype::Bf16 => AnyOptimizer::Bf16(p.build()?),
        Dtype::F16 => AnyOptimizer::F16(p.build()?),
    })
}

/// Load a checkpoint into `opt`: its configuration, skip flag and counter, counts and
/// buffers all become the checkpoint's; its thread setting is kept. The checkpoint's
/// layout and dtype must equal `opt`'s. Everything is validated first: on any error `opt`
/// is exactly as it was.
/// Errors: `Corrupt`, `Version`, `Mismatch` (layout or dtype).
pub fn restore<T: Element>(opt: &mut Optimizer<T>, bytes: &[u8]) -> Result<()> {
    let p = parse(bytes)?;
    p.check_dtype::<T>()?;
    codec::check_layout(&p.sizes, opt.layout().sizes())?;
    let new = p.build::<T>()?;
    opt.replace_keeping_threads(new);
    Ok(())
}

/// Read the checkpoint file at `path` and [`restore`] it into `opt`; on any error `opt`
/// is unchanged. Errors: `Io`, `Corrupt`, `Version`, `Mismatch`.
pub fn load_file<T: Element>(
    opt: &mut Optimizer<T>,
    path: impl AsRef<std::path::Path>,
) -> Result<()> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| file::io_err("cannot read", path, e))?;
    restore(opt, &bytes)
}
