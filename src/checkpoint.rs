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
//! [`Config::validate`]); no allocation is sized by a length that has not been checked
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

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::config::{Config, LearningRate};
use crate::optimizer::{Counts, Optimizer, State};
use crate::schedule::Schedule;

/// The first 8 bytes of every checkpoint.
pub const MAGIC: [u8; 8] = *b"RMSPCKPT";
/// The format version this library writes; it reads every version from 1 to this one.
pub const VERSION: u32 = 1;
/// Bytes before the body: magic (8), version (4), reserved (4), body length (8).
pub const HEADER_LEN: usize = 24;
/// Bytes after the body: the CRC-32 of everything before it.
pub const TRAILER_LEN: usize = 4;
/// The deepest schedule nesting (joins of joins) a checkpoint may hold.
pub const MAX_SCHEDULE_DEPTH: usize = 64;

const TAG_CONF: [u8; 4] = *b"CONF";
const TAG_LAYT: [u8; 4] = *b"LAYT";
const TAG_STAT: [u8; 4] = *b"STAT";
/// Section tag (4) and section length (8).
const SECTION_HEAD: usize = 12;

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

// ---------------------------------------------------------------------------------------
// CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320, as zlib.crc32), slicing by 8.

const fn crc_tables() -> [[u32; 256]; 8] {
    let mut t = [[0u32; 256]; 8];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        t[0][i] = c;
        i += 1;
    }
    let mut i = 0;
    while i < 256 {
        let mut k = 1;
        while k < 8 {
            let p = t[k - 1][i];
            t[k][i] = (p >> 8) ^ t[0][(p & 0xFF) as usize];
            k += 1;
        }
        i += 1;
    }
    t
}

static CRC_TABLES: [[u32; 256]; 8] = crc_tables();

/// Continue a CRC-32 over `data`; `crc` is the running value (start with 0).
pub fn crc32_update(crc: u32, data: &[u8]) -> u32 {
    let t = &CRC_TABLES;
    let mut c = !crc;
    let mut chunks = data.chunks_exact(8);
    for b in &mut chunks {
        let lo = u32::from_le_bytes([b[0], b[1], b[2], b[3]]) ^ c;
        let hi = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
        c = t[7][(lo & 0xFF) as usize]
            ^ t[6][((lo >> 8) & 0xFF) as usize]
            ^ t[5][((lo >> 16) & 0xFF) as usize]
            ^ t[4][(lo >> 24) as usize]
            ^ t[3][(hi & 0xFF) as usize]
            ^ t[2][((hi >> 8) & 0xFF) as usize]
            ^ t[1][((hi >> 16) & 0xFF) as usize]
            ^ t[0][(hi >> 24) as usize];
    }
    for &b in chunks.remainder() {
        c = t[0][((c ^ b as u32) & 0xFF) as usize] ^ (c >> 8);
    }
    !c
}

/// The CRC-32 of `data` (the value Python's `zlib.crc32(data)` returns).
pub fn crc32(data: &[u8]) -> u32 {
    crc32_update(0, data)
}

// ---------------------------------------------------------------------------------------
// Encoding.

fn put_u8(v: &mut Vec<u8>, x: u8) {
    v.push(x);
}
fn put_u64(v: &mut Vec<u8>, x: u64) {
    v.extend_from_slice(&x.to_le_bytes());
}
fn put_i32(v: &mut Vec<u8>, x: i32) {
    v.extend_from_slice(&x.to_le_bytes());
}
fn put_i64(v: &mut Vec<u8>, x: i64) {
    v.extend_from_slice(&x.to_le_bytes());
}
fn put_f64(v: &mut Vec<u8>, x: f64) {
    v.extend_from_slice(&x.to_le_bytes());
}
fn put_len(v: &mut Vec<u8>, n: usize) {
    put_u64(v, n as u64);
}
fn put_opt_f64(v: &mut Vec<u8>, x: Option<f64>) {
    put_u8(v, x.is_some() as u8);
    put_f64(v, x.unwrap_or(0.0));
}

const SCHED_CONSTANT: u8 = 1;
const SCHED_LINEAR: u8 = 2;
const SCHED_POLYNOMIAL: u8 = 3;
const SCHED_EXPONENTIAL: u8 = 4;
const SCHED_COSINE: u8 = 5;
const SCHED_WARMUP_COSINE: u8 = 6;
const SCHED_WARMUP_EXPONENTIAL: u8 = 7;
const SCHED_PIECEWISE: u8 = 8;
const SCHED_JOIN: u8 = 9;

fn put_schedule(v: &mut Vec<u8>, s: &Schedule) {
    match s {
        Schedule::Constant { value } => {
            put_u8(v, SCHED_CONSTANT);
            put_f64(v, *value);
        }
        Schedule::Linear {
            init_value,
            end_value,
            transition_steps,
            transition_begin,
        } => {
            put_u8(v, SCHED_LINEAR);
            put_f64(v, *init_value);
            put_f64(v, *end_value);
            put_i64(v, *transition_steps);
            put_i64(v, *transition_begin);
        }
        Schedule::Polynomial {
            init_value,
            end_value,
            power,
            transition_steps,
            transition_begin,
        } => {
            put_u8(v, SCHED_POLYNOMIAL);
            put_f64(v, *init_value);
            put_f64(v, *end_value);
            put_f64(v, *power);
            put_i64(v, *transition_steps);
            put_i64(v, *transition_begin);
        }
        Schedule::ExponentialDecay {
            init_value,
            transition_steps,
            decay_rate,
            transition_begin,
            staircase,
            end_value,
        } => {
            put_u8(v, SCHED_EXPONENTIAL);
            put_f64(v, *init_value);
            put_i64(v, *transition_steps);
            put_f64(v, *decay_rate);
            put_i64(v, *transition_begin);
            put_u8(v, *staircase as u8);
            put_opt_f64(v, *end_value);
        }
        Schedule::CosineDecay {
            init_value,
            decay_steps,
            alpha,
            exponent,
        } => {
            put_u8(v, SCHED_COSINE);
            put_f64(v, *init_value);
            put_i64(v, *decay_steps);
            put_f64(v, *alpha);
            put_f64(v, *exponent);
        }
        Schedule::WarmupCosineDecay {
            init_value,
            peak_value,
            warmup_steps,
            decay_steps,
            end_value,
            exponent,
        } => {
            put_u8(v, SCHED_WARMUP_COSINE);
            put_f64(v, *init_value);
            put_f64(v, *peak_value);
            put_i64(v, *warmup_steps);
            put_i64(v, *decay_steps);
            put_f64(v, *end_value);
            put_f64(v, *exponent);
        }
        Schedule::WarmupExponentialDecay {
            init_value,
            peak_value,
            warmup_steps,
            transition_steps,
            decay_rate,
            transition_begin,
            staircase,
            end_value,
        } => {
            put_u8(v, SCHED_WARMUP_EXPONENTIAL);
            put_f64(v, *init_value);
            put_f64(v, *peak_value);
            put_i64(v, *warmup_steps);
            put_i64(v, *transition_steps);
            put_f64(v, *decay_rate);
            put_i64(v, *transition_begin);
            put_u8(v, *staircase as u8);
            put_opt_f64(v, *end_value);
        }
        Schedule::PiecewiseConstant {
            init_value,
            boundaries_and_scales,
        } => {
            put_u8(v, SCHED_PIECEWISE);
            put_f64(v, *init_value);
            put_len(v, boundaries_and_scales.len());
            for &(b, s) in boundaries_and_scales {
                put_i64(v, b);
                put_f64(v, s);
            }
        }
        Schedule::Join {
            schedules,
            boundaries,
        } => {
            put_u8(v, SCHED_JOIN);
            put_len(v, schedules.len());
            for s in schedules {
                put_schedule(v, s);
            }
            put_len(v, boundaries.len());
            for &b in boundaries {
                put_i64(v, b);
            }
        }
    }
}

const FLAG_EPS_IN_SQRT: u8 = 1;
const FLAG_CENTERED: u8 = 2;
const FLAG_NESTEROV: u8 = 4;
const FLAG_BIAS_CORRECTION: u8 = 8;
const FLAG_SKIP_NON_FINITE: u8 = 16;
const FLAGS_KNOWN: u8 = 31;

const LR_FIXED: u8 = 0;
const LR_SCHEDULE: u8 = 1;

const HAS_NU: u8 = 1;
const HAS_MU: u8 = 2;
const HAS_TRACE: u8 = 4;

/// The `CONF` section's content.
fn conf_bytes(c: &Config, skip_non_finite: bool) -> Vec<u8> {
    let mut v = Vec::with_capacity(64);
    put_f64(&mut v, c.decay);
    put_f64(&mut v, c.eps);
    put_f64(&mut v, c.initial_scale);
    let flags = (c.eps_in_sqrt as u8 * FLAG_EPS_IN_SQRT)
        | (c.centered as u8 * FLAG_CENTERED)
        | (c.nesterov as u8 * FLAG_NESTEROV)
        | (c.bias_correction as u8 * FLAG_BIAS_CORRECTION)
        | (skip_non_finite as u8 * FLAG_SKIP_NON_FINITE);
    put_u8(&mut v, flags);
    put_opt_f64(&mut v, c.momentum);
    match &c.learning_rate {
        LearningRate::Fixed(lr) => {
            put_u8(&mut v, LR_FIXED);
            put_f64(&mut v, *lr);
        }
        LearningRate::Schedule(s) => {
            put_u8(&mut v, LR_SCHEDULE);
            put_schedule(&mut v, s);
        }
    }
    v
}

/// The `LAYT` section's content.
fn layt_bytes<T: Element>(opt: &Optimizer<T>) -> Vec<u8> {
    let sizes = opt.layout().sizes();
    let mut v = Vec::with_capacity(16 + 8 * sizes.len());
    put_u8(&mut v, T::DTYPE as u8);
    v.extend_from_slice(&[0; 7]);
    put_len(&mut v, sizes.len());
    for &s in sizes {
        put_len(&mut v, s);
    }
    v
}

/// The `STAT` section's fixed head; the buffers follow it.
fn stat_head<T: Element>(opt: &Optimizer<T>) -> Vec<u8> {
    let s = opt.full_state();
    let mut v = Vec::with_capacity(32);
    put_i32(&mut v, s.counts.schedule);
    put_i32(&mut v, s.counts.bias_correction);
    put_u64(&mut v, opt.skipped_steps());
    let mask = HAS_NU | (s.mu.is_some() as u8 * HAS_MU) | (s.trace.is_some() as u8 * HAS_TRACE);
    put_u8(&mut v, mask);
    v.extend_from_slice(&[0; 7]);
    put_len(&mut v, opt.layout().total());
    v
}

fn buffers<T: Element>(s: &State<T>) -> impl Iterator<Item = &[T]> {
    std::iter::once(s.nu.as_slice())
        .chain(s.mu.as_deref())
        .chain(s.trace.as_deref())
}

/// Everything but the buffers, built once per encode.
struct Plan {
    conf: Vec<u8>,
    layt: Vec<u8>,
    stat_head: Vec<u8>,
    stat_len: u64,
    body_len: u64,
}

fn plan<T: Element>(opt: &Optimizer<T>) -> Plan {
    let conf = conf_bytes(opt.config(), opt.skip_non_finite());
    let layt = layt_bytes(opt);
    let stat_head = stat_head(opt);
    let elems: u64 = buffers(opt.full_state()).map(|b| b.len() as u64).sum();
    let stat_len = stat_head.len() as u64 + elems * size_of::<T>() as u64;
    let body_len = (3 * SECTION_HEAD + conf.len() + layt.len()) as u64 + stat_len;
    Plan {
        conf,
        layt,
        stat_head,
        stat_len,
        body_len,
    }
}

/// The exact size in bytes of `encode(opt)`.
pub fn encoded_len<T: Element>(opt: &Optimizer<T>) -> usize {
    HEADER_LEN + plan(opt).body_len as usize + TRAILER_LEN
}

/// A writer that keeps the running CRC-32 of what passed through it.
struct CrcWriter<W> {
    inner: W,
    crc: u32,
}

impl<W: Write> CrcWriter<W> {
    fn put(&mut self, b: &[u8]) -> io::Result<()> {
        self.crc = crc32_update(self.crc, b);
        self.inner.write_all(b)
    }

    fn section(&mut self, tag: [u8; 4], len: u64) -> io::Result<()> {
        self.put(&tag)?;
        self.put(&len.to_le_bytes())
    }
}

fn write_io<T: Element, W: Write>(opt: &Optimizer<T>, w: W) -> io::Result<()> {
    let p = plan(opt);
    let mut w = CrcWriter { inner: w, crc: 0 };
    w.put(&MAGIC)?;
    w.put(&VERSION.to_le_bytes())?;
    w.put(&0u32.to_le_bytes())?;
    w.put(&p.body_len.to_le_bytes())?;
    w.section(TAG_CONF, p.conf.len() as u64)?;
    w.put(&p.conf)?;
    w.section(TAG_LAYT, p.layt.len() as u64)?;
    w.put(&p.layt)?;
    w.section(TAG_STAT, p.stat_len)?;
    w.put(&p.stat_head)?;
    const CHUNK: usize = 8192;
    let mut scratch = Vec::with_capacity(CHUNK * size_of::<T>());
    for buf in buffers(opt.full_state()) {
        for c in buf.chunks(CHUNK) {
            scratch.clear();
            T::put_le(c, &mut scratch);
            w.put(&scratch)?;
        }
    }
    let crc = w.crc;
    w.inner.write_all(&crc.to_le_bytes())?;
    w.inner.flush()
}

/// Stream the checkpoint of `opt` into `w` (exactly [`encoded_len`] bytes; nothing is
/// buffered beyond a small chunk, so a large state is never copied whole).
/// Errors: [`CheckpointError::Io`] when `w` fails.
pub fn write_to<T: Element, W: Write>(opt: &Optimizer<T>, w: W) -> Result<()> {
    write_io(opt, w).map_err(|e| CheckpointError::Io(e.to_string()))
}

/// The checkpoint of `opt`, [`encoded_len`] bytes.
pub fn encode<T: Element>(opt: &Optimizer<T>) -> Vec<u8> {
    let mut v = Vec::with_capacity(encoded_len(opt));
    // Writing into a Vec cannot fail.
    let _ = write_io(opt, &mut v);
    v
}

// ---------------------------------------------------------------------------------------
// Decoding.

/// A bounds-checked little-endian reader over one section.
struct Rd<'a> {
    b: &'a [u8],
    what: &'static str,
}

impl<'a> Rd<'a> {
    fn new(b: &'a [u8], what: &'static str) -> Self {
        Rd { b, what }
    }

    fn take(&mut self, n: usize, field: &str) -> Result<&'a [u8]> {
        if n > self.b.len() {
            return Err(corrupt(format!(
                "{}: {field} needs {n} bytes, only {} left",
                self.what,
                self.b.len()
            )));
        }
        let (h, t) = self.b.split_at(n);
        self.b = t;
        Ok(h)
    }

    fn arr<const N: usize>(&mut self, field: &str) -> Result<[u8; N]> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N, field)?);
        Ok(a)
    }

    fn u8(&mut self, field: &str) -> Result<u8> {
        Ok(self.arr::<1>(field)?[0])
    }
    fn u32(&mut self, field: &str) -> Result<u32> {
        Ok(u32::from_le_bytes(self.arr(field)?))
    }
    fn u64(&mut self, field: &str) -> Result<u64> {
        Ok(u64::from_le_bytes(self.arr(field)?))
    }
    fn i32(&mut self, field: &str) -> Result<i32> {
        Ok(i32::from_le_bytes(self.arr(field)?))
    }
    fn i64(&mut self, field: &str) -> Result<i64> {
        Ok(i64::from_le_bytes(self.arr(field)?))
    }
    fn f64(&mut self, field: &str) -> Result<f64> {
        Ok(f64::from_le_bytes(self.arr(field)?))
    }

    fn bool(&mut self, field: &str) -> Result<bool> {
        match self.u8(field)? {
            0 => Ok(false),
            1 => Ok(true),
            v => Err(corrupt(format!(
                "{}: {field} must be 0 or 1, got {v}",
                self.what
            ))),
        }
    }

    fn opt_f64(&mut self, field: &str) -> Result<Option<f64>> {
        let present = self.bool(field)?;
        let v = self.f64(field)?;
        match (present, v.to_bits()) {
            (true, _) => Ok(Some(v)),
            (false, 0) => Ok(None),
            (false, _) => Err(corrupt(format!(
                "{}: absent {field} must be stored as 0.0",
                self.what
            ))),
        }
    }

    fn zeros(&mut self, n: usize, field: &str) -> Result<()> {
        if self.take(n, field)?.iter().any(|&b| b != 0) {
            return Err(corrupt(format!(
                "{}: reserved bytes ({field}) must be 0",
                self.what
            )));
        }
        Ok(())
    }

    /// A `u64` element count whose elements of `elem_size` bytes must fit in what is left.
    fn count(&mut self, elem_size: usize, field: &str) -> Result<usize> {
        let n = self.u64(field)?;
        let left = self.b.len();
        match usize::try_from(n) {
            Ok(n) if n.checked_mul(elem_size).is_some_and(|b| b <= left) => Ok(n),
            _ => Err(corrupt(format!(
                "{}: {field} = {n} does not fit in the {left} bytes left",
                self.what
            ))),
        }
    }

    /// The next section, which must carry `tag`.
    fn section(&mut self, tag: [u8; 4], what: &'static str) -> Result<Rd<'a>> {
        let t = self.arr::<4>("section tag")?;
        if t != tag {
            return Err(corrupt(format!(
                "expected section {}, found {:?}",
                String::from_utf8_lossy(&tag),
                String::from_utf8_lossy(&t)
            )));
        }
        let len = self.count(1, what)?;
        Ok(Rd::new(self.take(len, what)?, what))
    }

    fn finish(&self) -> Result<()> {
        if self.b.is_empty() {
            Ok(())
        } else {
            Err(corrupt(format!(
                "{}: {} unexpected trailing bytes",
                self.what,
                self.b.len()
            )))
        }
    }
}

/// The smallest encoded schedule: a tag and one `f64`.
const MIN_SCHEDULE_LEN: usize = 9;

fn get_schedule(r: &mut Rd<'_>, depth: usize) -> Result<Schedule> {
    if depth > MAX_SCHEDULE_DEPTH {
        return Err(corrupt(format!(
            "schedule nested deeper than {MAX_SCHEDULE_DEPTH} levels"
        )));
    }
    Ok(match r.u8("schedule tag")? {
        SCHED_CONSTANT => Schedule::Constant {
            value: r.f64("value")?,
        },
        SCHED_LINEAR => Schedule::Linear {
            init_value: r.f64("init_value")?,
            end_value: r.f64("end_value")?,
            transition_steps: r.i64("transition_steps")?,
            transition_begin: r.i64("transition_begin")?,
        },
        SCHED_POLYNOMIAL => Schedule::Polynomial {
            init_value: r.f64("init_value")?,
            end_value: r.f64("end_value")?,
            power: r.f64("power")?,
            transition_steps: r.i64("transition_steps")?,
            transition_begin: r.i64("transition_begin")?,
        },
        SCHED_EXPONENTIAL => Schedule::ExponentialDecay {
            init_value: r.f64("init_value")?,
            transition_steps: r.i64("transition_steps")?,
            decay_rate: r.f64("decay_rate")?,
            transition_begin: r.i64("transition_begin")?,
            staircase: r.bool("staircase")?,
            end_value: r.opt_f64("end_value")?,
        },
        SCHED_COSINE => Schedule::CosineDecay {
            init_value: r.f64("init_value")?,
            decay_steps: r.i64("decay_steps")?,
            alpha: r.f64("alpha")?,
            exponent: r.f64("exponent")?,
        },
        SCHED_WARMUP_COSINE => Schedule::WarmupCosineDecay {
            init_value: r.f64("init_value")?,
            peak_value: r.f64("peak_value")?,
            warmup_steps: r.i64("warmup_steps")?,
            decay_steps: r.i64("decay_steps")?,
            end_value: r.f64("end_value")?,
            exponent: r.f64("exponent")?,
        },
        SCHED_WARMUP_EXPONENTIAL => Schedule::WarmupExponentialDecay {
            init_value: r.f64("init_value")?,
            peak_value: r.f64("peak_value")?,
            warmup_steps: r.i64("warmup_steps")?,
            transition_steps: r.i64("transition_steps")?,
            decay_rate: r.f64("decay_rate")?,
            transition_begin: r.i64("transition_begin")?,
            staircase: r.bool("staircase")?,
            end_value: r.opt_f64("end_value")?,
        },
        SCHED_PIECEWISE => {
            let init_value = r.f64("init_value")?;
            let n = r.count(16, "piecewise pair count")?;
            let mut pairs = Vec::with_capacity(n);
            for _ in 0..n {
                pairs.push((r.i64("boundary")?, r.f64("scale")?));
            }
            Schedule::PiecewiseConstant {
                init_value,
                boundaries_and_scales: pairs,
            }
        }
        SCHED_JOIN => {
            let n = r.count(MIN_SCHEDULE_LEN, "join schedule count")?;
            let mut schedules = Vec::with_capacity(n);
            for _ in 0..n {
                schedules.push(get_schedule(r, depth + 1)?);
            }
            let nb = r.count(8, "join boundary count")?;
            let mut boundaries = Vec::with_capacity(nb);
            for _ in 0..nb {
                boundaries.push(r.i64("boundary")?);
            }
            Schedule::Join {
                schedules,
                boundaries,
            }
        }
        t => return Err(corrupt(format!("unknown schedule tag {t}"))),
    })
}

/// A checkpoint checked for structure, with the buffers still as bytes.
struct Parsed<'a> {
    config: Config,
    skip_non_finite: bool,
    skipped: u64,
    dtype: Dtype,
    sizes: Vec<usize>,
    counts: Counts,
    nu: &'a [u8],
    mu: Option<&'a [u8]>,
    trace: Option<&'a [u8]>,
}

/// Check the frame (magic, length, checksum, version) and dispatch on the version.
fn parse(bytes: &[u8]) -> Result<Parsed<'_>> {
    let min = HEADER_LEN + TRAILER_LEN;
    if bytes.len() < min {
        return Err(corrupt(format!(
            "truncated: {} bytes, a checkpoint has at least {min}",
            bytes.len()
        )));
    }
    if bytes[..8] != MAGIC {
        return Err(corrupt("not an rmsprop checkpoint (bad magic bytes)"));
    }
    let mut h = Rd::new(&bytes[8..HEADER_LEN], "header");
    let version = h.u32("version")?;
    let reserved = h.u32("reserved")?;
    let body_len = h.u64("body length")?;
    let expected = usize::try_from(body_len)
        .ok()
        .and_then(|b| b.checked_add(min));
    if expected != Some(bytes.len()) {
        return Err(corrupt(format!(
            "length mismatch: the header announces a {body_len}-byte body, so {} bytes in all, but there are {} (truncated or trailing data)",
            expected.map_or_else(|| "more than addressable".into(), |e| e.to_string()),
            bytes.len()
        )));
    }
    let (framed, trailer) = bytes.split_at(bytes.len() - TRAILER_LEN);
    let stored = u32::from_le_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]);
    let actual = crc32(framed);
    if stored != actual {
        return Err(corrupt(format!(
            "checksum mismatch: stored CRC-32 {stored:#010x}, computed {actual:#010x}"
        )));
    }
    let body = &framed[HEADER_LEN..];
    match version {
        0 => Err(corrupt("format version 0 does not exist")),
        1 => parse_v1(reserved, body),
        found => Err(CheckpointError::Version {
            found,
            supported: VERSION,
        }),
    }
}

fn parse_v1(reserved: u32, body: &[u8]) -> Result<Parsed<'_>> {
    if reserved != 0 {
        return Err(corrupt(format!(
            "header: reserved word must be 0 in version 1, got {reserved:#x}"
        )));
    }
    let mut b = Rd::new(body, "body");

    let mut c = b.section(TAG_CONF, "CONF section")?;
    let decay = c.f64("decay")?;
    let eps = c.f64("eps")?;
    let initial_scale = c.f64("initial_scale")?;
    let flags = c.u8("flags")?;
    if flags & !FLAGS_KNOWN != 0 {
        return Err(corrupt(format!(
            "CONF section: unknown flag bits {:#x}",
            flags & !FLAGS_KNOWN
        )));
    }
    let momentum = c.opt_f64("momentum")?;
    let learning_rate = match c.u8("learning-rate kind")? {
        LR_FIXED => LearningRate::Fixed(c.f64("learning_rate")?),
        LR_SCHEDULE => LearningRate::Schedule(get_schedule(&mut c, 1)?),
        t => return Err(corrupt(format!("unknown learning-rate kind {t}"))),
    };
    c.finish()?;
    let config = Config {
        learning_rate,
        decay,
        eps,
        initial_scale,
        eps_in_sqrt: flags & FLAG_EPS_IN_SQRT != 0,
        centered: flags & FLAG_CENTERED != 0,
        momentum,
        nesterov: flags & FLAG_NESTEROV != 0,
        bias_correction: flags & FLAG_BIAS_CORRECTION != 0,
    };

    let mut l = b.section(TAG_LAYT, "LAYT section")?;
    let tag = l.u8("dtype")?;
    let dtype =
        Dtype::from_tag(tag.into()).ok_or_else(|| corrupt(format!("unknown dtype tag {tag}")))?;
    l.zeros(7, "padding after dtype")?;
    let n = l.count(8, "tensor count")?;
    let mut sizes = Vec::with_capacity(n);
    for _ in 0..n {
        let s = l.u64("tensor size")?;
        sizes.push(
            usize::try_from(s)
                .map_err(|_| corrupt(format!("tensor size {s} is not addressable")))?,
        );
    }
    l.finish()?;

    let mut s = b.section(TAG_STAT, "STAT section")?;
    let counts = Counts {
        schedule: s.i32("schedule count")?,
        bias_correction: s.i32("bias-correction count")?,
    };
    let skipped = s.u64("skipped steps")?;
    let mask = s.u8("buffer mask")?;
    s.zeros(7, "padding after buffer mask")?;
    if mask & !(HAS_NU | HAS_MU | HAS_TRACE) != 0 || mask & HAS_NU == 0 {
        return Err(corrupt(format!(
            "STAT section: invalid buffer mask {mask:#x}"
        )));
    }
    if (mask & HAS_MU != 0) != config.centered {
        return Err(corrupt(
            "STAT section: mu is present exactly when centered is set",
        ));
    }
    if (mask & HAS_TRACE != 0) != config.momentum.is_some() {
        return Err(corrupt(
            "STAT section: trace is present exactly when momentum is set",
        ));
    }
    let total = s.count(dtype.size(), "element count")?;
    let layout_total = sizes
        .iter()
        .try_fold(0usize, |a, &x| a.checked_add(x))
        .ok_or_else(|| corrupt("LAYT section: total element count overflows"))?;
    if total != layout_total {
        return Err(corrupt(format!(
            "STAT section: {total} elements per buffer, but the layout has {layout_total}"
        )));
    }
    // `count` checked that one buffer fits; `take` checks each of the others.
    let bytes = total * dtype.size();
    let nu = s.take(bytes, "nu")?;
    let mu = if mask & HAS_MU != 0 {
        Some(s.take(bytes, "mu")?)
    } else {
        None
    };
    let trace = if mask & HAS_TRACE != 0 {
        Some(s.take(bytes, "trace")?)
    } else {
        None
    };
    s.finish()?;
    b.finish()?;

    Ok(Parsed {
        config,
        skip_non_finite: flags & FLAG_SKIP_NON_FINITE != 0,
        skipped,
        dtype,
        sizes,
        counts,
        nu,
        mu,
        trace,
    })
}

impl Parsed<'_> {
    fn check_dtype<T: Element>(&self) -> Result<()> {
        if self.dtype == T::DTYPE {
            Ok(())
        } else {
            Err(CheckpointError::Mismatch(format!(
                "dtype: the checkpoint holds {} state, this optimizer computes in {}",
                self.dtype.name(),
                T::DTYPE.name()
            )))
        }
    }

    /// A new optimizer holding exactly this checkpoint (validates the configuration).
    fn build<T: Element>(&self) -> Result<Optimizer<T>> {
        self.check_dtype::<T>()?;
        let invalid = |e: crate::Error| corrupt(format!("invalid content: {e}"));
        let mut opt = Optimizer::<T>::new(self.config.clone(), &self.sizes).map_err(invalid)?;
        opt.set_full_state(State {
            nu: T::get_le(self.nu),
            mu: self.mu.map(T::get_le),
            trace: self.trace.map(T::get_le),
            counts: self.counts,
        })
        .map_err(invalid)?;
        opt.set_skip_non_finite(self.skip_non_finite);
        opt.set_skipped_steps(self.skipped);
        Ok(opt)
    }
}

fn check_layout(checkpoint: &[usize], mine: &[usize]) -> Result<()> {
    if checkpoint.len() != mine.len() {
        return Err(CheckpointError::Mismatch(format!(
            "layout: the checkpoint has {} tensors ({} elements), this optimizer {} ({} elements)",
            checkpoint.len(),
            checkpoint.iter().sum::<usize>(),
            mine.len(),
            mine.iter().sum::<usize>()
        )));
    }
    if let Some(i) = (0..mine.len()).find(|&i| checkpoint[i] != mine[i]) {
        return Err(CheckpointError::Mismatch(format!(
            "layout: tensor {i} has {} elements in the checkpoint, {} in this optimizer",
            checkpoint[i], mine[i]
        )));
    }
    Ok(())
}

/// A new optimizer from a checkpoint of dtype `T` (thread setting: rayon's global pool).
/// Errors: `Corrupt`, `Version`, `Mismatch` (the checkpoint holds the other dtype).
pub fn decode<T: Element>(bytes: &[u8]) -> Result<Optimizer<T>> {
    parse(bytes)?.build()
}

pub use crate::any::AnyOptimizer;

/// A new optimizer of whichever dtype the checkpoint holds.
/// Errors: `Corrupt`, `Version`.
pub fn decode_any(bytes: &[u8]) -> Result<AnyOptimizer> {
    let p = parse(bytes)?;
    Ok(match p.dtype {
        Dtype::F32 => AnyOptimizer::F32(p.build()?),
        Dtype::F64 => AnyOptimizer::F64(p.build()?),
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
    check_layout(&p.sizes, opt.layout().sizes())?;
    let new = p.build::<T>()?;
    opt.replace_keeping_threads(new);
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Files.

fn io_err(what: &str, path: &Path, e: io::Error) -> CheckpointError {
    CheckpointError::Io(format!("{what} {}: {e}", path.display()))
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Create a fresh temporary file next to `path` (same directory, so the rename is atomic).
fn create_temp(dir: &Path, name: &std::ffi::OsStr) -> Result<(PathBuf, File)> {
    let mut last = None;
    for _ in 0..16 {
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(name);
        tmp_name.push(format!(".tmp-{}-{n}", std::process::id()));
        let tmp = dir.join(tmp_name);
        match File::options().write(true).create_new(true).open(&tmp) {
            Ok(f) => return Ok((tmp, f)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(io_err("cannot create temporary file", &tmp, e)),
        }
    }
    Err(CheckpointError::Io(format!(
        "cannot create a temporary file in {}: {}",
        dir.display(),
        last.map_or_else(|| "no name was free".into(), |e| e.to_string())
    )))
}

/// Write the temporary file completely and durably, then rename it over `path`.
fn fill_and_rename<T: Element>(
    opt: &Optimizer<T>,
    file: &File,
    tmp: &Path,
    path: &Path,
) -> Result<()> {
    if let Ok(meta) = fs::metadata(path) {
        // Keep the permissions of the checkpoint being replaced (best effort).
        let _ = file.set_permissions(meta.permissions());
    }
    let mut w = BufWriter::with_capacity(1 << 20, file);
    write_io(opt, &mut w).map_err(|e| io_err("cannot write", tmp, e))?;
    w.flush().map_err(|e| io_err("cannot write", tmp, e))?;
    drop(w);
    file.sync_all().map_err(|e| io_err("cannot sync", tmp, e))?;
    fs::rename(tmp, path).map_err(|e| io_err("cannot rename the temporary file to", path, e))
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_err("saved, but cannot sync the directory", dir, e))
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> Result<()> {
    Ok(())
}

/// Save the checkpoint of `opt` to `path` atomically: it is written to a new temporary
/// file in the same directory (`.<name>.tmp-<pid>-<n>`), flushed and fsynced, renamed
/// over `path`, and the directory is fsynced. A reader (or a crash at any point) sees
/// either the complete previous file or the complete new one, never a mix. On error the
/// temporary file is removed and `path` is untouched (a process killed mid-save can leave
/// its temporary file behind; it is never read and can be deleted). The new file takes
/// the permissions of the file it replaces.
/// Errors: `Io`.
pub fn save_file<T: Element>(opt: &Optimizer<T>, path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    let name = path
        .file_name()
        .ok_or_else(|| CheckpointError::Io(format!("{} does not name a file", path.display())))?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let (tmp, file) = create_temp(dir, name)?;
    let result = fill_and_rename(opt, &file, &tmp, path);
    drop(file);
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result?;
    sync_dir(dir)
}

/// Read the checkpoint file at `path` and [`restore`] it into `opt`; on any error `opt`
/// is unchanged. Errors: `Io`, `Corrupt`, `Version`, `Mismatch`.
pub fn load_file<T: Element>(opt: &mut Optimizer<T>, path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    let bytes = fs::read(path).map_err(|e| io_err("cannot read", path, e))?;
    restore(opt, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_zlib() {
        assert_eq!(crc32(b""), 0);
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7 + 3) as u8).collect();
        // Incremental equals one-shot, for every split (covers the 8-byte path and the tail).
        for split in [0, 1, 7, 8, 9, 500, 999, 1000] {
            let (a, b) = data.split_at(split);
            assert_eq!(crc32_update(crc32(a), b), crc32(&data));
        }
        // Bitwise reference.
        let mut c = !0u32;
        for &b in &data {
            c ^= b as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
        }
        assert_eq!(!c, crc32(&data));
    }

    #[test]
    fn deep_schedules_are_rejected_without_recursing_far() {
        let mut s = Schedule::Constant { value: 0.1 };
        for _ in 0..MAX_SCHEDULE_DEPTH + 5 {
            s = Schedule::Join {
                schedules: vec![s],
                boundaries: vec![],
            };
        }
        let mut v = Vec::new();
        put_schedule(&mut v, &s);
        let err = get_schedule(&mut Rd::new(&v, "test"), 1).unwrap_err();
        assert!(err.to_string().contains("nested deeper"), "{err}");
    }
}
