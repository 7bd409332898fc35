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
const MAX_TENSORS: usize = 8;
const MAX_HANDLES: usize = 4;
const MAX_OPTIONS: usize = 4;
const MAX_SCHEDULES: usize = 8;
/// Calls per input; longer inputs are cut (keeps each run fast).
const MAX_OPS: usize = 48;

// ---------------------------------------------------------------------------------------
// Input bytes.

/// Reads typed values off the input; an exhausted input reads as zeros.
pub struct Bytes<'a> {
    d: &'a [u8],
}

const F64S: [f64; 32] = [
    0.0,
    -0.0,
    1.0,
    -1.0,
    0.5,
    0.9,
    0.99,
    1e-8,
    1e-3,
    0.1,
    2.0,
    10.0,
    1e300,
    -1e300,
    f64::MAX,
    f64::MIN_POSITIVE,
    5e-324,
    f64::NAN,
    f64::INFINITY,
    f64::NEG_INFINITY,
    1.0000000000000002,
    0.9999999999999999,
    3.4028234663852886e38,
    3.5e38,
    1e-45,
    100.0,
    -0.5,
    1.5,
    1e-30,
    -1e-8,
    0.3,
    7.0,
];

const I64S: [i64; 16] = [
    0,
    1,
    -1,
    2,
    3,
    5,
    10,
    100,
    1000,
    i32::MAX as i64,
    i32::MIN as i64,
    i32::MAX as i64 + 1,
    i64::MAX,
    i64::MIN,
    7,
    -5,
];

const I32S: [i32; 12] = [
    0,
    1,
    2,
    3,
    10,
    100,
    i32::MAX,
    i32::MAX - 1,
    -1,
    i32::MIN,
    1000,
    5,
];

impl<'a> Bytes<'a> {
    /// A reader over `d`.
    pub fn new(d: &'a [u8]) -> Self {
        Bytes { d }
    }

    /// Whether everything was read.
    pub fn is_empty(&self) -> bool {
        self.d.is_empty()
    }

    fn u8(&mut self) -> u8 {
        match self.d.split_first() {
            Some((&b, rest)) => {
                self.d = rest;
                b
            }
            None => 0,
        }
    }

    fn arr<const N: usize>(&mut self) -> [u8; N] {
        let mut a = [0u8; N];
        for x in &mut a {
            *x = self.u8();
        }
        a
    }

    fn u16(&mut self) -> u16 {
        u16::from_le_bytes(self.arr())
    }

    fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.arr())
    }

    fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.arr())
    }

    /// A value in `0..n` (`n` at most 256; 0 when `n` is 0).
    fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { self.u8() as usize % n }
    }

    fn bool(&mut self) -> bool {
        self.u8() & 1 == 1
    }

    /// Mostly interesting values, sometimes an arbitrary bit pattern.
    fn f64(&mut self) -> f64 {
        let s = self.u8();
        if s < 0xC0 {
            F64S[s as usize % F64S.len()]
        } else {
            f64::from_bits(self.u64())
        }
    }

    fn i64(&mut self) -> i64 {
        let s = self.u8();
        if s < 0xC0 {
            I64S[s as usize % I64S.len()]
        } else {
            self.u64() as i64
        }
    }

    fn i32(&mut self) -> i32 {
        let s = self.u8();
        if s < 0xC0 {
            I32S[s as usize % I32S.len()]
        } else {
            self.u32() as i32
        }
    }
}

/// A small deterministic generator for bulk values (seeded from the input).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        let mut x = self.0 | 1;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// `n` values as `f64`: a repeated pattern from the input, a constant, pseudo-random
/// numbers, or a pseudo-random mix including non-finite values.
fn values(b: &mut Bytes<'_>, n: usize) -> Vec<f64> {
    match b.below(5) {
        0 => {
            let k = b.below(8) + 1;
            let pat: Vec<f64> = (0..k).map(|_| b.f64()).collect();
            (0..n).map(|i| pat[i % k]).collect()
        }
        1 => vec![b.f64(); n],
        2 | 3 => {
            let mut r = Rng(b.u64());
            let scale = [1.0, 1e-3, 1e3, 1e-20, 1e20][b.below(5)];
            (0..n)
                .map(|_| ((r.next() >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * scale)
                .collect()
        }
        _ => {
            let mut r = Rng(b.u64());
            (0..n)
                .map(|_| {
                    let x = r.next();
                    if x.is_multiple_of(16) {
                        F64S[(x >> 8) as usize % F64S.len()]
                    } else {
                        ((x >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * 4.0
                    }
                })
                .collect()
        }
    }
}

// ---------------------------------------------------------------------------------------
// Element types.

/// `f32` or `f64`, with the typed C entry points.
pub trait Elem: Copy + PartialEq + std::fmt::Debug + 'static {
    /// The C dtype.
    const DT: i32;
    /// The other C dtype.
    const OTHER: i32;
    /// Size in bytes.
    const SIZE: usize;
    /// The smallest positive normal value, widened.
    const MIN_NORMAL: f64;
    /// Round from `f64`.
    fn from_f64(x: f64) -> Self;
    /// Widen to `f64`.
    fn to_f64(self) -> f64;
    /// The bits, widened.
    fn bits(self) -> u64;
    /// `self + o` in this type.
    fn add(self, o: Self) -> Self;
    /// NaN?
    fn is_nan(self) -> bool;
    /// Finite?
    fn finite(self) -> bool;
    /// `rmsprop_update_*`.
    fn update(h: *mut RmspropOptimizer, g: *const Self, u: *mut Self, n: usize) -> i32;
    /// `rmsprop_step_*`.
    fn step(h: *mut RmspropOptimizer, p: *mut Self, g: *const Self, n: usize) -> i32;
    /// `rmsprop_update_tensors_*`.
    fn update_tensors(
        h: *mut RmspropOptimizer,
        g: *const *const Self,
        u: *const *mut Self,
        n: usize,
    ) -> i32;
    /// `rmsprop_step_tensors_*`.
    fn step_tensors(
        h: *mut RmspropOptimizer,
        p: *const *mut Self,
        g: *const *const Self,
        n: usize,
    ) -> i32;
    /// `rmsprop_get_state_*`.
    fn get_state(h: *const RmspropOptimizer, c: i32, t: usize, out: *mut Self, n: usize) -> i32;
    /// `rmsprop_set_state_*`.
    fn set_state(h: *mut RmspropOptimizer, c: i32, t: usize, v: *const Self, n: usize) -> i32;
}

macro_rules! elem {
    ($t:ty, $dt:expr, $other:expr, $upd:ident, $step:ident, $updt:ident, $stept:ident, $get:ident, $set:ident) => {
        impl Elem for $t {
            const DT: i32 = $dt;
            const OTHER: i32 = $other;
            const SIZE: usize = size_of::<$t>();
            const MIN_NORMAL: f64 = <$t>::MIN_POSITIVE as f64;
            fn from_f64(x: f64) -> Self {
                x as $t
            }
            fn to_f64(self) -> f64 {
                self as f64
            }
            fn bits(self) -> u64 {
                self.to_bits() as u64
            }
            fn add(self, o: Self) -> Self {
                self + o
            }
            fn is_nan(self) -> bool {
                <$t>::is_nan(self)
            }
            fn finite(self) -> bool {
                <$t>::is_finite(self)
            }
            fn update(h: *mut RmspropOptimizer, g: *const Self, u: *mut Self, n: usize) -> i32 {
                $upd(h, g, u, n)
            }
            fn step(h: *mut RmspropOptimizer, p: *mut Self, g: *const Self, n: usize) -> i32 {
                $step(h, p, g, n)
            }
            fn update_tensors(
                h: *mut RmspropOptimizer,
                g: *const *const Self,
                u: *const *mut Self,
                n: usize,
            ) -> i32 {
                $updt(h, g, u, n)
            }
            fn step_tensors(
                h: *mut RmspropOptimizer,
                p: *const *mut Self,
                g: *const *const Self,
                n: usize,
            ) -> i32 {
                $stept(h, p, g, n)
            }
            fn get_state(
                h: *const RmspropOptimizer,
                c: i32,
                t: usize,
                out: *mut Self,
                n: usize,
            ) -> i32 {
                $get(h, c, t, out, n)
            }
            fn set_state(
                h: *mut RmspropOptimizer,
                c: i32,
                t: usize,
                v: *const Self,
                n: usize,
            ) -> i32 {
                $set(h, c, t, v, n)
            }
        }
    };
}
elem!(
    f32,
    RMSPROP_DTYPE_F32,
    RMSPROP_DTYPE_F64,
    rmsprop_update_f32,
    rmsprop_step_f32,
    rmsprop_update_tensors_f32,
    rmsprop_step_tensors_f32,
    rmsprop_get_state_f32,
    rmsprop_set_state_f32
);
elem!(
    f64,
    RMSPROP_DTYPE_F64,
    RMSPROP_DTYPE_F32,
    rmsprop_update_f64,
    rmsprop_step_f64,
    rmsprop_update_tensors_f64,
    rmsprop_step_tensors_f64,
    rmsprop_get_state_f64,
    rmsprop_set_state_f64
);

/// Bitwise equality, except that any NaN equals any NaN (payloads may differ between
/// code paths that compute the same value).
fn same_nan<T: Elem>(a: T, b: T) -> bool {
    a.bits() == b.bits() || (a.is_nan() && b.is_nan())
}

// ---------------------------------------------------------------------------------------
// Statuses.

const COMPONENTS: [i32; 3] = [RMSPROP_NU, RMSPROP_MU, RMSPROP_TRACE];

fn last_error() -> String {
    let p = rmsprop_last_error_message();
    assert!(!p.is_null(), "rmsprop_last_error_message returned NULL");
    // SAFETY: the library returns a NUL-terminated string valid until the next failing
    // call on this thread; it is copied right away.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

/// Check a returned status: never `RMSPROP_ERR_INTERNAL`, always a documented code with a
/// name, and an error always comes with a message.
fn st(s: i32, what: &str) -> i32 {
    if s == RMSPROP_ERR_INTERNAL {
        panic!(
            "{what}: RMSPROP_ERR_INTERNAL (a caught panic): {}",
            last_error()
        );
    }
    assert!(
        (RMSPROP_OK..=RMSPROP_ERR_OUT_OF_MEMORY).contains(&s),
        "{what}: undocumented status {s}"
    );
    let name = rmsprop_status_name(s);
    // SAFETY: static NUL-terminated storage.
    let name = unsafe { CStr::from_ptr(name) }.to_string_lossy();
    assert!(
        name != "RMSPROP_UNKNOWN_STATUS",
        "{what}: status {s} has no name"
    );
    if s >= RMSPROP_ERR_NULL_POINTER {
        assert!(
            !last_error().is_empty(),
            "{what}: error {name} without a message"
        );
    }
    s
}

fn name(s: i32) -> String {
    // SAFETY: static NUL-terminated storage.
    unsafe { CStr::from_ptr(rmsprop_status_name(s)) }
        .to_string_lossy()
        .into_owned()
}

/// `defects` are the errors the arguments deserve (any one of them may be reported, the
/// order of the checks is not documented); with none, the call must return `ok`.
fn expect(s: i32, defects: &[i32], ok: i32, what: &str) {
    st(s, what);
    if defects.is_empty() {
        assert!(
            s == ok,
            "{what}: expected {}, got {} ({})",
            name(ok),
            name(s),
            if s >= 2 { last_error() } else { String::new() }
        );
    } else {
        assert!(
            defects.contains(&s),
            "{what}: expected one of {:?}, got {} ({})",
            defects.iter().map(|&d| name(d)).collect::<Vec<_>>(),
            name(s),
            if s >= 2 { last_error() } else { String::new() }
        );
    }
}

// ---------------------------------------------------------------------------------------
// Snapshots of a handle, through the C API only.

/// Everything observable about a handle.
#[derive(Clone, Debug, PartialEq)]
struct Snap {
    dtype: i32,
    sizes: Vec<usize>,
    has: [bool; 3],
    /// Per component (nu, mu, trace): the flat state bits, via per-tensor get_state.
    state: [Option<Vec<u64>>; 3],
    counts: (i32, i32),
    skipped: u64,
    lr_bits: u64,
    threads: usize,
    /// Decoded from the checkpoint.
    config: Config,
    skip: bool,
    ckpt: Vec<u8>,
}

fn ok(s: i32, what: &str) {
    expect(s, &[], RMSPROP_OK, what);
}

fn read_state<T: Elem>(h: *const RmspropOptimizer, c: i32, sizes: &[usize]) -> Vec<u64> {
    let mut all = Vec::new();
    for (t, &n) in sizes.iter().enumerate() {
        let mut buf = vec![T::from_f64(0.0); n];
        ok(
            T::get_state(h, c, t, buf.as_mut_ptr(), n),
            "get_state (snapshot)",
        );
        all.extend(buf.iter().map(|x| x.bits()));
    }
    all
}

fn save(h: *const RmspropOptimizer) -> Vec<u8> {
    let mut size = 0usize;
    ok(rmsprop_checkpoint_size(h, &mut size), "checkpoint_size");
    let mut buf = vec![0u8; size];
    let mut written = usize::MAX;
    ok(
        rmsprop_checkpoint_save(h, buf.as_mut_ptr().cast(), size, &mut written),
        "checkpoint_save",
    );
    assert_eq!(written, size, "checkpoint_save wrote a different size");
    buf
}

fn bits_of<T: checkpoint::Element + Elem>(v: &[T]) -> Vec<u64> {
    v.iter().map(|x| Elem::bits(*x)).collect()
}

fn snap(h: *const RmspropOptimizer) -> Snap {
    let mut dtype = 0;
    ok(rmsprop_dtype(h, &mut dtype), "dtype");
    let mut num = 0usize;
    ok(rmsprop_num_tensors(h, &mut num), "num_tensors");
    let mut sizes = Vec::with_capacity(num);
    for t in 0..num {
        let mut s = 0usize;
        ok(rmsprop_tensor_size(h, t, &mut s), "tensor_size");
        sizes.push(s);
    }
    let mut total = 0usize;
    ok(rmsprop_total_elements(h, &mut total), "total_elements");
    assert_eq!(total, sizes.iter().sum::<usize>(), "total != sum of sizes");
    let mut has = [false; 3];
    let mut state: [Option<Vec<u64>>; 3] = [None, None, None];
    for (i, &c) in COMPONENTS.iter().enumerate() {
        ok(rmsprop_has_state(h, c, &mut has[i]), "has_state");
        if has[i] {
            state[i] = Some(match dtype {
                RMSPROP_DTYPE_F32 => read_state::<f32>(h, c, &sizes),
                RMSPROP_DTYPE_F64 => read_state::<f64>(h, c, &sizes),
                d => panic!("rmsprop_dtype returned {d}"),
            });
        }
    }
    assert!(has[0], "nu must always exist");
    let mut counts = (-7, -7);
    ok(
        rmsprop_get_counts(h, &mut counts.0, &mut counts.1),
        "get_counts",
    );
    assert!(counts.0 >= 0 && counts.1 >= 0, "negative counts {counts:?}");
    let mut skipped = 0u64;
    ok(rmsprop_skipped_steps(h, &mut skipped), "skipped_steps");
    let mut lr = 0.0f64;
    ok(rmsprop_current_learning_rate(h, &mut lr), "current_lr");
    let mut threads = 0usize;
    ok(rmsprop_get_threads(h, &mut threads), "get_threads");
    let ckpt = save(h);
    // The checkpoint must hold exactly what the C API shows.
    let (config, skip) = match checkpoint::decode_any(&ckpt) {
        Ok(AnyOptimizer::F32(o)) => {
            check_decoded(
                &o,
                RMSPROP_DTYPE_F32,
                dtype,
                &sizes,
                &state,
                counts,
                skipped,
            );
            (o.config().clone(), o.skip_non_finite())
        }
        Ok(AnyOptimizer::F64(o)) => {
            check_decoded(
                &o,
                RMSPROP_DTYPE_F64,
                dtype,
                &sizes,
                &state,
                counts,
                skipped,
            );
            (o.config().clone(), o.skip_non_finite())
        }
        Err(e) => panic!("a checkpoint just saved does not decode: {e}"),
    };
    assert_eq!(has[1], config.centered, "has mu != centered");
    assert_eq!(has[2], config.momentum.is_some(), "has trace != momentum");
    Snap {
        dtype,
        sizes,
        has,
        state,
        counts,
        skipped,
        lr_bits: lr.to_bits(),
        threads,
        config,
        skip,
        ckpt,
    }
}

fn check_decoded<T: checkpoint::Element + Elem>(
    o: &Optimizer<T>,
    dt: i32,
    dtype: i32,
    sizes: &[usize],
    state: &[Option<Vec<u64>>; 3],
    counts: (i32, i32),
    skipped: u64,
) {
    assert_eq!(dt, dtype, "checkpoint dtype differs from rmsprop_dtype");
    assert_eq!(o.layout().sizes(), sizes, "checkpoint layout differs");
    let s = o.full_state();
    assert_eq!(
        (s.counts.schedule, s.counts.bias_correction),
        counts,
        "checkpoint counts differ"
    );
    assert_eq!(o.skipped_steps(), skipped, "checkpoint skipped differs");
    let bufs = [Some(&s.nu), s.mu.as_ref(), s.trace.as_ref()];
    for (i, b) in bufs.iter().enumerate() {
        assert_eq!(
            b.map(|v| bits_of(v)).as_ref(),
            state[i].as_ref(),
            "checkpoint state component {i} differs from get_state"
        );
    }
}

/// The first field where two snapshots differ.
fn diff(a: &Snap, b: &Snap, ignore_threads: bool) -> Option<&'static str> {
    if a.dtype != b.dtype {
        return Some("dtype");
    }
    if a.sizes != b.sizes {
        return Some("sizes");
    }
    if a.has != b.has {
        return Some("has_state");
    }
    if a.state != b.state {
        return Some("state");
    }
    if a.counts != b.counts {
        return Some("counts");
    }
    if a.skipped != b.skipped {
        return Some("skipped");
    }
    if a.lr_bits != b.lr_bits {
        return Some("current learning rate");
    }
    if !ignore_threads && a.threads != b.threads {
        return Some("threads");
    }
    if a.config != b.config {
        return Some("config");
    }
    if a.skip != b.skip {
        return Some("skip flag");
    }
    if a.ckpt != b.ckpt {
        return Some("checkpoint bytes");
    }
    None
}

fn assert_unchanged(before: &Snap, after: &Snap, what: &str) {
    if let Some(f) = diff(before, after, false) {
        panic!("{what}: {f} changed although the call failed or must not mutate");
    }
}

/// `after` equals `before` except for the fields an operation may change.
fn assert_only(before: &Snap, after: &Snap, expected: &Snap, what: &str) {
    let _ = before;
    let mut e = expected.clone();
    e.ckpt.clone_from(&after.ckpt);
    if let Some(f) = diff(&e, after, false) {
        panic!("{what}: unexpected {f} after the call");
    }
}

// ---------------------------------------------------------------------------------------
// The C API program.

struct Opts {
    p: *mut RmspropOptions,
    config: Config,
    skip: bool,
}

struct Sched {
    p: *mut RmspropSchedule,
    model: Schedule,
}

struct Handle {
    p: *mut RmspropOptimizer,
    dtype: i32,
    sizes: Vec<usize>,
}

impl Handle {
    fn total(&self) -> usize {
        self.sizes.iter().sum()
    }
}

#[derive(Default)]
struct Ctx {
    opts: Vec<Opts>,
    scheds: Vec<Sched>,
    hs: Vec<Handle>,
}

impl Drop for Ctx {
    fn drop(&mut self) {
        for o in self.opts.drain(..) {
            rmsprop_options_free(o.p);
        }
        for s in self.scheds.drain(..) {
            rmsprop_schedule_free(s.p);
        }
        for h in self.hs.drain(..) {
            rmsprop_destroy(h.p);
        }
    }
}

fn depth(s: &Schedule) -> usize {
    match s {
        Schedule::Join { schedules, .. } => 1 + schedules.iter().map(depth).max().unwrap_or(0),
        _ => 1,
    }
}

/// The operations of a program; the first byte of each picks one (modulo the count).
#[derive(Clone, Copy, Debug)]
pub enum Op {
    /// `rmsprop_options_new`.
    OptionsNew,
    /// One `rmsprop_options_set_*` call.
    OptionsSet,
    /// `rmsprop_options_free`.
    OptionsFree,
    /// A schedule constructor.
    ScheduleNew,
    /// `rmsprop_schedule_join`, optionally nested many times.
    ScheduleJoin,
    /// `rmsprop_schedule_value` or `rmsprop_schedule_free`.
    ScheduleValueFree,
    /// `rmsprop_create`.
    Create,
    /// `rmsprop_destroy`.
    Destroy,
    /// Flat update or step, typed or untyped.
    Flat,
    /// List update or step.
    List,
    /// `rmsprop_get_state_*`.
    GetState,
    /// `rmsprop_set_state_*`.
    SetState,
    /// `rmsprop_get_counts` / `rmsprop_set_counts`.
    Counts,
    /// `rmsprop_reset`.
    Reset,
    /// `rmsprop_set_learning_rate` / `_schedule` / `_decay` / `_eps` / ...
    Hyper,
    /// `rmsprop_set_threads`.
    Threads,
    /// The queries, with NULL outs.
    Queries,
    /// Checkpoint save / load / create_from_checkpoint, intact or corrupted.
    Checkpoint,
    /// The same step on a copy of a handle through another entry point and thread setting.
    Twin,
    /// Calls with a NULL handle or path, and file I/O errors.
    Nulls,
}

const OPS: [Op; 20] = [
    Op::OptionsNew,
    Op::OptionsSet,
    Op::OptionsFree,
    Op::ScheduleNew,
    Op::ScheduleJoin,
    Op::ScheduleValueFree,
    Op::Create,
    Op::Destroy,
    Op::Flat,
    Op::List,
    Op::GetState,
    Op::SetState,
    Op::Counts,
    Op::Reset,
    Op::Hyper,
    Op::Threads,
    Op::Queries,
    Op::Checkpoint,
    Op::Twin,
    Op::Nulls,
];

/// Separates independent programs inside one input: each part runs from a fresh state, as
/// if it were its own input. The checked-in corpus bundles several minimized programs per
/// file this way (`tests/fuzz/minimize.py --pack`) to keep the file count small.
pub const PROGRAM_SEPARATOR: &[u8] = b"\xFF\x00RMSPROP-FUZZ-NEXT-PROGRAM\x00\xFF";

/// The `c_api_sequence` target: run the input as programs of C API calls (usually one;
/// see [`PROGRAM_SEPARATOR`]).
pub fn c_api_sequence(data: &[u8]) {
    let mut rest = data;
    while let Some(at) = rest
        .windows(PROGRAM_SEPARATOR.len())
        .position(|w| w == PROGRAM_SEPARATOR)
    {
        run_program(&rest[..at]);
        rest = &rest[at + PROGRAM_SEPARATOR.len()..];
    }
    run_program(rest);
}

fn run_program(data: &[u8]) {
    let mut b = Bytes::new(data);
    let mut ctx = Ctx::default();
    let mut n = 0;
    while !b.is_empty() && n < MAX_OPS {
        let op = OPS[b.below(OPS.len())];
        ctx.run(op, &mut b);
        n += 1;
    }
    // Every surviving handle must still be consistent.
    for h in &ctx.hs {
        let s = snap(h.p);
        assert_eq!(s.dtype, h.dtype);
        assert_eq!(s.sizes, h.sizes);
    }
}

/// Encode a program (for seeds): each op is its index followed by its argument bytes.
pub fn program(ops: &[(Op, &[u8])]) -> Vec<u8> {
    let mut v = Vec::new();
    for (op, args) in ops {
        v.push(*op as u8);
        v.extend_from_slice(args);
    }
    v
}

impl Ctx {
    fn run(&mut self, op: Op, b: &mut Bytes<'_>) {
        match op {
            Op::OptionsNew => self.options_new(b),
            Op::OptionsSet => self.options_set(b),
            Op::OptionsFree => {
                if !self.opts.is_empty() {
                    let i = b.below(self.opts.len());
                    rmsprop_options_free(self.opts.remove(i).p);
                }
            }
            Op::ScheduleNew => self.schedule_new(b),
            Op::ScheduleJoin => self.schedule_join(b),
            Op::ScheduleValueFree => self.schedule_value_free(b),
            Op::Create => self.create(b),
            Op::Destroy => {
                if !self.hs.is_empty() {
                    let i = b.below(self.hs.len());
                    rmsprop_destroy(self.hs.remove(i).p);
                }
            }
            Op::Flat => {
                let i = self.handle(b);
                match b.below(4) {
                    0 => flat::<f32>(&self.hs[i], b, None),
                    1 => flat::<f64>(&self.hs[i], b, None),
                    2 => {
                        let dt = self.hs[i].dtype;
                        if dt == RMSPROP_DTYPE_F32 {
                            flat::<f32>(&self.hs[i], b, Some(dt))
                        } else {
                            flat::<f64>(&self.hs[i], b, Some(dt))
                        }
                    }
                    _ => {
                        let bad = [0, 3, -1, i32::MAX, i32::MIN][b.below(5)];
                        flat::<f32>(&self.hs[i], b, Some(bad))
                    }
                }
            }
            Op::List => {
                let i = self.handle(b);
                if b.below(4) == 0 {
                    // The wrong dtype on purpose (or the right one).
                    if b.bool() {
                        list::<f32>(&self.hs[i], b)
                    } else {
                        list::<f64>(&self.hs[i], b)
                    }
                } else if self.hs[i].dtype == RMSPROP_DTYPE_F32 {
                    list::<f32>(&self.hs[i], b)
                } else {
                    list::<f64>(&self.hs[i], b)
                }
            }
            Op::GetState | Op::SetState => {
                let i = self.handle(b);
                let wrong = b.below(6) == 0;
                let f32_entry = (self.hs[i].dtype == RMSPROP_DTYPE_F32) != wrong;
                let set = matches!(op, Op::SetState);
                if f32_entry {
                    state_access::<f32>(&self.hs[i], b, set)
                } else {
                    state_access::<f64>(&self.hs[i], b, set)
                }
            }
            Op::Counts => {
                let i = self.handle(b);
                counts(&self.hs[i], b)
            }
            Op::Reset => {
                let i = self.handle(b);
                reset(&self.hs[i])
            }
            Op::Hyper => {
                let i = self.handle(b);
                self.hyper(i, b)
            }
            Op::Threads => {
                let i = self.handle(b);
                threads(&self.hs[i], b)
            }
            Op::Queries => {
                let i = self.handle(b);
                queries(&self.hs[i], b)
            }
            Op::Checkpoint => self.checkpoint(b),
            Op::Twin => {
                let i = self.handle(b);
                if self.hs[i].dtype == RMSPROP_DTYPE_F32 {
                    twin::<f32>(&self.hs[i], b)
                } else {
                    twin::<f64>(&self.hs[i], b)
                }
            }
            Op::Nulls => self.nulls(b),
        }
    }

    // --- options -----------------------------------------------------------------------

    fn options_new(&mut self, b: &mut Bytes<'_>) {
        let lr = b.f64();
        let null_out = b.below(16) == 0;
        let mut out: *mut RmspropOptions = null_mut();
        let outp = if null_out {
            null_mut()
        } else {
            &mut out as *mut _
        };
        let s = rmsprop_options_new(lr, outp);
        let mut defects = vec![];
        if !lr.is_finite() {
            defects.push(RMSPROP_ERR_INVALID_HYPERPARAMETER);
        }
        if null_out {
            defects.push(RMSPROP_ERR_NULL_POINTER);
        }
        expect(s, &defects, RMSPROP_OK, "options_new");
        if s == RMSPROP_OK {
            assert!(!out.is_null());
            self.push_opts(Opts {
                p: out,
                config: Config::new(lr),
                skip: false,
            });
        } else {
            assert!(out.is_null(), "options_new wrote *out on error");
        }
    }

    fn push_opts(&mut self, o: Opts) {
        if self.opts.len() >= MAX_OPTIONS {
            rmsprop_options_free(self.opts.remove(0).p);
        }
        self.opts.push(o);
    }

    fn default_opts(&mut self) -> usize {
        if self.opts.is_empty() {
            let mut out = null_mut();
            ok(rmsprop_options_new(1e-3, &mut out), "options_new(default)");
            self.opts.push(Opts {
                p: out,
                config: Config::new(1e-3),
                skip: false,
            });
        }
        self.opts.len() - 1
    }

    fn options_set(&mut self, b: &mut Bytes<'_>) {
        let null_opts = b.below(16) == 0;
        let i = if null_opts {
            usize::MAX
        } else {
            let i = self.default_opts();
            if self.opts.len() > 1 {
                b.below(self.opts.len())
            } else {
                i
            }
        };
        let p = if null_opts {
            null_mut()
        } else {
            self.opts[i].p
        };
        let which = b.below(12);
        let v = b.f64();
        let flag = b.bool();
        let mut defects = vec![];
        if null_opts {
            defects.push(RMSPROP_ERR_NULL_POINTER);
        }
        let mut config = if null_opts {
            Config::new(0.0)
        } else {
            self.opts[i].config.clone()
        };
        let mut skip = if null_opts { false } else { self.opts[i].skip };
        let s = match which {
            0 => {
                if !v.is_finite() {
                    defects.push(RMSPROP_ERR_INVALID_HYPERPARAMETER);
                }
                config.learning_rate = LearningRate::Fixed(v);
                rmsprop_options_set_learning_rate(p, v)
            }
            1 => {
                let sp = if self.scheds.is_empty() || b.below(8) == 0 {
                    defects.push(RMSPROP_ERR_NULL_POINTER);
                    null()
                } else {
                    let k = b.below(self.scheds.len());
                    config.learning_rate = LearningRate::Schedule(self.scheds[k].model.clone());
                    self.scheds[k].p as *const _
                };
                rmsprop_options_set_learning_rate_schedule(p, sp)
            }
            2 => {
                if !(v.is_finite() && (0.0..=1.0).contains(&v)) {
                    defects.push(RMSPROP_ERR_INVALID_HYPERPARAMETER);
                }
                config.decay = v;
                rmsprop_options_set_decay(p, v)
            }
            3 => {
                if !(v.is_finite() && v >= 0.0) {
                    defects.push(RMSPROP_ERR_INVALID_HYPERPARAMETER);
                }
                config.eps = v;
                rmsprop_options_set_eps(p, v)
            }
            4 => {
                if !(v.is_finite() && v >= 0.0) {
                    defects.push(RMSPROP_ERR_INVALID_HYPERPARAMETER);
                }
                config.initial_scale = v;
                rmsprop_options_set_initial_scale(p, v)
            }
            5 => {
                config.eps_in_sqrt = flag;
                rmsprop_options_set_eps_in_sqrt(p, flag)
            }
            6 => {
                config.centered = flag;
                rmsprop_options_set_centered(p, flag)
            }
            7 => {
                if !v.is_finite() {
                    defects.push(RMSPROP_ERR_INVALID_HYPERPARAMETER);
                }
                config.momentum = Some(v);
                rmsprop_options_set_momentum(p, v)
            }
            8 => {
                config.momentum = None;
                rmsprop_options_clear_momentum(p)
            }
            9 => {
                config.nesterov = flag;
                rmsprop_options_set_nesterov(p, flag)
            }
            10 => {
                config.bias_correction = flag;
                rmsprop_options_set_bias_correction(p, flag)
            }
            _ => {
                skip = flag;
                rmsprop_options_set_skip_non_finite(p, flag)
            }
        };
        expect(s, &defects, RMSPROP_OK, "options_set");
        if s == RMSPROP_OK {
            self.opts[i].config = config;
            self.opts[i].skip = skip;
        }
    }

    // --- schedules -----------------------------------------------------------------------

    fn push_sched(&mut self, s: Sched) {
        if self.scheds.len() >= MAX_SCHEDULES {
            rmsprop_schedule_free(self.scheds.remove(0).p);
        }
        self.scheds.push(s);
    }

    fn schedule_new(&mut self, b: &mut Bytes<'_>) {
        let kind = b.below(8);
        let null_out = b.below(32) == 0;
        let mut out: *mut RmspropSchedule = null_mut();
        let outp = if null_out {
            null_mut()
        } else {
            &mut out as *mut _
        };
        // Documented rejections: non-finite values and step arguments outside int32.
        let mut must_reject = false;
        let mut f = |b: &mut Bytes<'_>| {
            let v = b.f64();
            must_reject |= !v.is_finite();
            v
        };
        let (s, model, extra_defects): (i32, Schedule, Vec<i32>) = match kind {
            0 => {
                let value = f(b);
                (
                    rmsprop_schedule_constant(value, outp),
                    Schedule::Constant { value },
                    vec![],
                )
            }
            1 => {
                let (init_value, end_value) = (f(b), f(b));
                let (transition_steps, transition_begin) = (b.i64(), b.i64());
                (
                    rmsprop_schedule_linear(
                        init_value,
                        end_value,
                        transition_steps,
                        transition_begin,
                        outp,
                    ),
                    Schedule::Linear {
                        init_value,
                        end_value,
                        transition_steps,
                        transition_begin,
                    },
                    vec![],
                )
            }
            2 => {
                let (init_value, end_value, power) = (f(b), f(b), f(b));
                let (transition_steps, transition_begin) = (b.i64(), b.i64());
                (
                    rmsprop_schedule_polynomial(
                        init_value,
                        end_value,
                        power,
                        transition_steps,
                        transition_begin,
                        outp,
                    ),
                    Schedule::Polynomial {
                        init_value,
                        end_value,
                        power,
                        transition_steps,
                        transition_begin,
                    },
                    vec![],
                )
            }
            3 | 6 => {
                // peak_value and warmup_steps only exist for the warmup variant.
                let init_value = f(b);
                let (peak_value, warmup_steps) = if kind == 6 { (f(b), b.i64()) } else { (0.0, 0) };
                let transition_steps = b.i64();
                let decay_rate = f(b);
                let transition_begin = b.i64();
                let staircase = b.bool();
                let end = if b.bool() { Some(f(b)) } else { None };
                // A misaligned end_value pointer is a checked error.
                let misaligned = end.is_some() && b.below(16) == 0;
                let mut raw = [0u8; 16];
                let endv = end.unwrap_or(0.0);
                let endp: *const f64 = match end {
                    None => null(),
                    Some(_) if misaligned => misaligned_in(&mut raw, 8).cast(),
                    Some(_) => &endv,
                };
                let extra = if misaligned {
                    vec![RMSPROP_ERR_MISALIGNED]
                } else {
                    vec![]
                };
                if kind == 3 {
                    (
                        rmsprop_schedule_exponential_decay(
                            init_value,
                            transition_steps,
                            decay_rate,
                            transition_begin,
                            staircase,
                            endp,
                            outp,
                        ),
                        Schedule::ExponentialDecay {
                            init_value,
                            transition_steps,
                            decay_rate,
                            transition_begin,
                            staircase,
                            end_value: end,
                        },
                        extra,
                    )
                } else {
                    (
                        rmsprop_schedule_warmup_exponential_decay(
                            init_value,
                            peak_value,
                            warmup_steps,
                            transition_steps,
                            decay_rate,
                            transition_begin,
                            staircase,
                            endp,
                            outp,
                        ),
                        Schedule::WarmupExponentialDecay {
                            init_value,
                            peak_value,
                            warmup_steps,
                            transition_steps,
                            decay_rate,
                            transition_begin,
                            staircase,
                            end_value: end,
                        },
                        extra,
                    )
                }
            }
            4 => {
                let init_value = f(b);
                let decay_steps = b.i64();
                let (alpha, exponent) = (f(b), f(b));
                if decay_steps <= 0 {
                    must_reject = true;
                }
                (
                    rmsprop_schedule_cosine_decay(init_value, decay_steps, alpha, exponent, outp),
                    Schedule::CosineDecay {
                        init_value,
                        decay_steps,
                        alpha,
                        exponent,
                    },
                    vec![],
                )
            }
            5 => {
                let (init_value, peak_value) = (f(b), f(b));
                let (warmup_steps, decay_steps) = (b.i64(), b.i64());
                let (end_value, exponent) = (f(b), f(b));
                (
                    rmsprop_schedule_warmup_cosine_decay(
                        init_value,
                        peak_value,
                        warmup_steps,
                        decay_steps,
                        end_value,
                        exponent,
                        outp,
                    ),
                    Schedule::WarmupCosineDecay {
                        init_value,
                        peak_value,
                        warmup_steps,
                        decay_steps,
                        end_value,
                        exponent,
                    },
                    vec![],
                )
            }
            _ => {
                let init_value = f(b);
                let count = b.below(9);
                let mut bounds = Vec::with_capacity(count);
                let mut scales = Vec::with_capacity(count);
                let increasing = b.bool();
                let mut last = b.i64() % 8;
                for _ in 0..count {
                    let bd = if increasing {
                        last = last.saturating_add(1 + b.below(50) as i64);
                        last
                    } else {
                        b.i64()
                    };
                    bounds.push(bd);
                    scales.push(f(b));
                }
                let mut extra = vec![];
                for (k, (&bd, &sc)) in bounds.iter().zip(&scales).enumerate() {
                    if i32::try_from(bd).is_err() || sc.is_nan() || sc < 0.0 {
                        must_reject = true;
                    }
                    if k > 0 && bounds[k - 1] >= bd {
                        must_reject = true;
                    }
                }
                let nulls = b.below(8);
                let (bp, sp) = match nulls {
                    0 => (null(), scales.as_ptr()),
                    1 => (bounds.as_ptr(), null()),
                    _ => (bounds.as_ptr(), scales.as_ptr()),
                };
                if nulls < 2 && count > 0 {
                    extra.push(RMSPROP_ERR_NULL_POINTER);
                }
                (
                    rmsprop_schedule_piecewise_constant(init_value, bp, sp, count, outp),
                    Schedule::PiecewiseConstant {
                        init_value,
                        boundaries_and_scales: bounds.into_iter().zip(scales).collect(),
                    },
                    extra,
                )
            }
        };
        let what = format!("schedule_new(kind {kind})");
        st(s, &what);
        let int_reject = match &model {
            Schedule::Linear {
                transition_steps,
                transition_begin,
                ..
            }
            | Schedule::Polynomial {
                transition_steps,
                transition_begin,
                ..
            }
            | Schedule::ExponentialDecay {
                transition_steps,
                transition_begin,
                ..
            } => {
                i32::try_from(*transition_steps).is_err()
                    || i32::try_from(*transition_begin).is_err()
            }
            Schedule::CosineDecay { decay_steps, .. } => i32::try_from(*decay_steps).is_err(),
            Schedule::WarmupCosineDecay {
                warmup_steps,
                decay_steps,
                ..
            } => {
                i32::try_from(*warmup_steps).is_err()
                    || i32::try_from(*decay_steps).is_err()
                    || decay_steps <= warmup_steps
            }
            Schedule::WarmupExponentialDecay {
                warmup_steps,
                transition_steps,
                transition_begin,
                ..
            } => {
                i32::try_from(*warmup_steps).is_err()
                    || i32::try_from(*transition_steps).is_err()
                    || i32::try_from(*transition_begin).is_err()
            }
            _ => false,
        };
        let mut allowed = extra_defects.clone();
        allowed.push(RMSPROP_ERR_INVALID_SCHEDULE);
        if null_out {
            allowed.push(RMSPROP_ERR_NULL_POINTER);
        }
        if must_reject || int_reject || null_out || !extra_defects.is_empty() {
            assert!(
                allowed.contains(&s),
                "{what}: expected one of {allowed:?}, got {} for {model:?}",
                name(s)
            );
        } else {
            assert!(
                s == RMSPROP_OK || s == RMSPROP_ERR_INVALID_SCHEDULE,
                "{what}: got {}",
                name(s)
            );
            if matches!(model, Schedule::Constant { .. }) {
                assert_eq!(s, RMSPROP_OK, "{what}: a finite constant must be accepted");
            }
        }
        if s == RMSPROP_OK {
            assert!(!out.is_null());
            self.check_schedule(out, &model, b);
            self.push_sched(Sched { p: out, model });
        } else {
            assert!(out.is_null(), "{what}: *out written on error");
        }
    }

    /// A new schedule evaluates without error for both dtypes at a few counts.
    fn check_schedule(&self, p: *const RmspropSchedule, model: &Schedule, b: &mut Bytes<'_>) {
        for count in [0, 1, b.i32(), i32::MAX] {
            for (dt, want) in [
                (RMSPROP_DTYPE_F32, model.value::<f32>(count) as f64),
                (RMSPROP_DTYPE_F64, model.value::<f64>(count)),
            ] {
                let mut v = f64::NAN;
                ok(
                    rmsprop_schedule_value(p, count, dt, &mut v),
                    "schedule_value",
                );
                assert_eq!(
                    v.to_bits(),
                    want.to_bits(),
                    "schedule_value differs from the copied model"
                );
            }
        }
    }

    fn schedule_join(&mut self, b: &mut Bytes<'_>) {
        if self.scheds.is_empty() {
            let mut out = null_mut();
            ok(rmsprop_schedule_constant(0.01, &mut out), "constant");
            self.scheds.push(Sched {
                p: out,
                model: Schedule::Constant { value: 0.01 },
            });
        }
        if b.below(6) == 0 {
            // Nest one schedule `k` times: joins deeper than the limit must be rejected
            // cleanly, and anything accepted must survive a checkpoint round trip.
            let i = b.below(self.scheds.len());
            let k = b.below(72) + 1;
            let mut cur = self.scheds[i].p;
            let mut model = self.scheds[i].model.clone();
            let mut owned = false;
            for _ in 0..k {
                let mut out = null_mut();
                let list = [cur as *const RmspropSchedule];
                let s = st(
                    rmsprop_schedule_join(list.as_ptr(), 1, null(), 0, &mut out),
                    "schedule_join(nest)",
                );
                let next = Schedule::Join {
                    schedules: vec![model.clone()],
                    boundaries: vec![],
                };
                if s != RMSPROP_OK {
                    assert_eq!(s, RMSPROP_ERR_INVALID_SCHEDULE);
                    assert!(
                        depth(&next) > 64,
                        "join of depth {} rejected: {}",
                        depth(&next),
                        last_error()
                    );
                    break;
                }
                if owned {
                    rmsprop_schedule_free(cur);
                }
                cur = out;
                owned = true;
                model = next;
            }
            if owned {
                self.schedule_roundtrip(cur);
                self.push_sched(Sched { p: cur, model });
            }
            return;
        }
        let num = b.below(5);
        let mut ptrs = Vec::with_capacity(num);
        let mut models = Vec::with_capacity(num);
        let mut null_entry = false;
        for _ in 0..num {
            if b.below(16) == 0 {
                ptrs.push(null());
                null_entry = true;
            } else {
                let k = b.below(self.scheds.len());
                ptrs.push(self.scheds[k].p as *const RmspropSchedule);
                models.push(self.scheds[k].model.clone());
            }
        }
        let nb = match b.below(4) {
            0 => num.saturating_sub(1) + b.below(3),
            _ => num.saturating_sub(1),
        };
        let mut bounds = Vec::with_capacity(nb);
        let mut last = 0i64;
        let sorted = b.bool();
        for _ in 0..nb {
            let v = if sorted {
                last = last.saturating_add(b.below(40) as i64);
                last
            } else {
                b.i64()
            };
            bounds.push(v);
        }
        let null_arrays = b.below(16);
        let sp = if null_arrays == 0 {
            null()
        } else {
            ptrs.as_ptr()
        };
        let bp = if null_arrays == 1 {
            null()
        } else {
            bounds.as_ptr()
        };
        let mut out = null_mut();
        let s = st(
            rmsprop_schedule_join(sp, num, bp, nb, &mut out),
            "schedule_join",
        );
        let mut allowed = vec![RMSPROP_OK, RMSPROP_ERR_INVALID_SCHEDULE];
        if null_entry || (null_arrays == 0 && num > 0) || (null_arrays == 1 && nb > 0) {
            allowed.push(RMSPROP_ERR_NULL_POINTER);
        }
        assert!(allowed.contains(&s), "schedule_join: {}", name(s));
        let bad_shape = num == 0
            || nb + 1 != num
            || bounds.windows(2).any(|w| w[0] > w[1])
            || bounds.iter().any(|&x| i32::try_from(x).is_err());
        if s == RMSPROP_OK {
            assert!(
                !bad_shape && !null_entry,
                "schedule_join accepted {num} schedules, boundaries {bounds:?}"
            );
            let model = Schedule::Join {
                schedules: models,
                boundaries: bounds,
            };
            self.check_schedule(out, &model, b);
            self.push_sched(Sched { p: out, model });
        } else {
            assert!(out.is_null(), "schedule_join wrote *out on error");
        }
    }

    /// Options with this schedule, a tiny optimizer, and a checkpoint round trip.
    fn schedule_roundtrip(&self, sched: *mut RmspropSchedule) {
        let mut o = null_mut();
        ok(rmsprop_options_new(0.1, &mut o), "options_new");
        ok(
            rmsprop_options_set_learning_rate_schedule(o, sched),
            "set_learning_rate_schedule",
        );
        let mut h = null_mut();
        let sizes = [1usize];
        ok(
            rmsprop_create(o, sizes.as_ptr(), 1, RMSPROP_DTYPE_F64, &mut h),
            "create(schedule)",
        );
        rmsprop_options_free(o);
        let bytes = save(h);
        let mut h2 = null_mut();
        ok(
            rmsprop_create_from_checkpoint(bytes.as_ptr().cast(), bytes.len(), &mut h2),
            "create_from_checkpoint of an accepted schedule",
        );
        assert_eq!(save(h2), bytes, "schedule checkpoint round trip");
        rmsprop_destroy(h2);
        rmsprop_destroy(h);
    }

    fn schedule_value_free(&mut self, b: &mut Bytes<'_>) {
        if self.scheds.is_empty() {
            return;
        }
        let i = b.below(self.scheds.len());
        match b.below(4) {
            0 => rmsprop_schedule_free(self.scheds.remove(i).p),
            1 => {
                // NULL out, NULL schedule, bad dtype.
                let mut v = 0.0;
                let sel = b.below(3);
                let (p, dt, outp): (*const RmspropSchedule, i32, *mut f64) = match sel {
                    0 => (self.scheds[i].p, RMSPROP_DTYPE_F32, null_mut()),
                    1 => (null(), RMSPROP_DTYPE_F64, &mut v),
                    _ => (self.scheds[i].p, [0, 3, -1][b.below(3)], &mut v),
                };
                let want = if sel == 2 {
                    RMSPROP_ERR_BAD_ENUM
                } else {
                    RMSPROP_ERR_NULL_POINTER
                };
                expect(
                    rmsprop_schedule_value(p, b.i32(), dt, outp),
                    &[want],
                    RMSPROP_OK,
                    "schedule_value(bad)",
                );
                assert_eq!(v, 0.0, "schedule_value wrote *out on error");
            }
            _ => {
                let p = self.scheds[i].p;
                let model = self.scheds[i].model.clone();
                self.check_schedule(p, &model, b);
            }
        }
    }

    // --- handles -------------------------------------------------------------------------

    /// A handle index; creates a default handle when there is none.
    fn handle(&mut self, b: &mut Bytes<'_>) -> usize {
        if self.hs.is_empty() {
            let o = self.default_opts();
            let sizes = vec![3usize, 0, 5];
            let mut h = null_mut();
            ok(
                rmsprop_create(self.opts[o].p, sizes.as_ptr(), 3, RMSPROP_DTYPE_F32, &mut h),
                "create(default)",
            );
            self.hs.push(Handle {
                p: h,
                dtype: RMSPROP_DTYPE_F32,
                sizes,
            });
            return 0;
        }
        b.below(self.hs.len())
    }

    fn push_handle(&mut self, h: Handle) {
        if self.hs.len() >= MAX_HANDLES {
            rmsprop_destroy(self.hs.remove(0).p);
        }
        self.hs.push(h);
    }

    fn create(&mut self, b: &mut Bytes<'_>) {
        let null_opts = b.below(32) == 0;
        let oi = if null_opts {
            usize::MAX
        } else {
            let d = self.default_opts();
            if self.opts.len() > 1 {
                b.below(self.opts.len())
            } else {
                d
            }
        };
        let num = b.below(MAX_TENSORS + 1);
        let mut sizes = Vec::with_capacity(num);
        let mut left = MAX_ELEMS;
        let huge = b.below(24) == 0;
        for _ in 0..num {
            let sel = b.u8();
            let s = if sel < 0x60 {
                (sel % 8) as usize
            } else if sel < 0xF0 {
                b.u16() as usize % 1100
            } else {
                b.u16() as usize
            };
            let s = s.min(left);
            left -= s;
            sizes.push(s);
        }
        let mut defects = vec![];
        if huge {
            // Sizes whose total (or byte size) overflows: must be a clean RMSPROP_ERR_OVERFLOW,
            // without allocating.
            let big = [usize::MAX, usize::MAX / 2 + 1, isize::MAX as usize / 4 + 1][b.below(3)];
            sizes.push(big);
            if b.bool() {
                sizes.push(big);
            }
            defects.push(RMSPROP_ERR_OVERFLOW);
        }
        let num = sizes.len();
        let null_sizes = num > 0 && b.below(32) == 0;
        let dtype = match b.below(9) {
            0..=3 => RMSPROP_DTYPE_F32,
            4..=7 => RMSPROP_DTYPE_F64,
            _ => [0, 3, -1, i32::MIN][b.below(4)],
        };
        let null_out = b.below(32) == 0;
        if null_opts || null_sizes || null_out {
            defects.push(RMSPROP_ERR_NULL_POINTER);
        }
        if dtype != RMSPROP_DTYPE_F32 && dtype != RMSPROP_DTYPE_F64 {
            defects.push(RMSPROP_ERR_BAD_ENUM);
        }
        let mut out: *mut RmspropOptimizer = null_mut();
        let s = rmsprop_create(
            if null_opts { null() } else { self.opts[oi].p },
            if null_sizes { null() } else { sizes.as_ptr() },
            num,
            dtype,
            if null_out { null_mut() } else { &mut out },
        );
        expect(s, &defects, RMSPROP_OK, "create");
        if s != RMSPROP_OK {
            assert!(out.is_null(), "create wrote *out on error");
            return;
        }
        let h = Handle {
            p: out,
            dtype,
            sizes,
        };
        let sn = snap(h.p);
        let o = &self.opts[oi];
        assert_eq!(sn.dtype, dtype, "create: dtype");
        assert_eq!(sn.sizes, h.sizes, "create: layout");
        assert_eq!(
            sn.config, o.config,
            "create: config differs from the options"
        );
        assert_eq!(
            sn.skip, o.skip,
            "create: skip flag differs from the options"
        );
        assert_eq!(sn.counts, (0, 0), "create: counts");
        assert_eq!(sn.skipped, 0, "create: skipped");
        assert_eq!(sn.threads, 0, "create: threads");
        check_init_state(&sn, o.config.initial_scale, "create");
        self.push_handle(h);
    }

    fn hyper(&mut self, i: usize, b: &mut Bytes<'_>) {
        let h = &self.hs[i];
        let before = snap(h.p);
        let v = b.f64();
        let mut defects = vec![];
        let mut expected = before.clone();
        let mut sched_model = None;
        let which = b.below(6);
        let s = match which {
            0 => {
                if !v.is_finite() {
                    defects.push(RMSPROP_ERR_INVALID_HYPERPARAMETER);
                }
                expected.config.learning_rate = LearningRate::Fixed(v);
                expected.lr_bits = round_lr(h.dtype, v).to_bits();
                rmsprop_set_learning_rate(h.p, v)
            }
            1 => {
                let sp = if self.scheds.is_empty() || b.below(8) == 0 {
                    defects.push(RMSPROP_ERR_NULL_POINTER);
                    null()
                } else {
                    let k = b.below(self.scheds.len());
                    sched_model = Some(self.scheds[k].model.clone());
                    self.scheds[k].p as *const _
                };
                rmsprop_set_learning_rate_schedule(h.p, sp)
            }
            2 => {
                if !(v.is_finite() && (0.0..=1.0).contains(&v)) {
                    defects.push(RMSPROP_ERR_INVALID_HYPERPARAMETER);
                }
                expected.config.decay = v;
                rmsprop_set_decay(h.p, v)
            }
            3 => {
                if !(v.is_finite() && v >= 0.0) {
                    defects.push(RMSPROP_ERR_INVALID_HYPERPARAMETER);
                }
                expected.config.eps = v;
                rmsprop_set_eps(h.p, v)
            }
            4 => {
                if !(v.is_finite() && v >= 0.0) {
                    defects.push(RMSPROP_ERR_INVALID_HYPERPARAMETER);
                }
                expected.config.initial_scale = v;
                rmsprop_set_initial_scale(h.p, v)
            }
            _ => {
                if !v.is_finite() {
                    defects.push(RMSPROP_ERR_INVALID_HYPERPARAMETER);
                }
                if !before.has[2] {
                    defects.push(RMSPROP_ERR_NO_SUCH_STATE);
                }
                expected.config.momentum = Some(v);
                rmsprop_set_momentum(h.p, v)
            }
        };
        expect(s, &defects, RMSPROP_OK, "handle hyperparameter setter");
        let after = snap(h.p);
        if s != RMSPROP_OK {
            assert_unchanged(&before, &after, "hyperparameter setter");
            return;
        }
        if let Some(m) = sched_model {
            expected.config.learning_rate = LearningRate::Schedule(m.clone());
            let c = before.counts.0;
            expected.lr_bits = if h.dtype == RMSPROP_DTYPE_F32 {
                (m.value::<f32>(c) as f64).to_bits()
            } else {
                m.value::<f64>(c).to_bits()
            };
        }
        assert_only(&before, &after, &expected, "hyperparameter setter");
    }

    fn checkpoint(&mut self, b: &mut Bytes<'_>) {
        let ai = self.handle(b);
        let a = self.hs[ai].p;
        let before = snap(a);
        let bytes = before.ckpt.clone();
        // Save variants on A: a buffer too small, a bigger one, NULL buf, misaligned written.
        match b.below(5) {
            0 => {
                let short = b.below(bytes.len().min(256)) % bytes.len();
                let mut buf = vec![0xABu8; short.max(1)];
                let mut written = 12345usize;
                expect(
                    rmsprop_checkpoint_save(a, buf.as_mut_ptr().cast(), short, &mut written),
                    &[RMSPROP_ERR_BUFFER_TOO_SMALL],
                    RMSPROP_OK,
                    "checkpoint_save(short)",
                );
                assert!(buf.iter().all(|&x| x == 0xAB), "save wrote on error");
                assert_eq!(written, 12345, "save wrote *written on error");
            }
            1 => {
                let extra = b.below(16) + 1;
                let mut buf = vec![0xCDu8; bytes.len() + extra];
                let s = rmsprop_checkpoint_save(a, buf.as_mut_ptr().cast(), buf.len(), null_mut());
                ok(s, "checkpoint_save(big)");
                assert_eq!(&buf[..bytes.len()], &bytes[..], "save(big) differs");
                assert!(
                    buf[bytes.len()..].iter().all(|&x| x == 0xCD),
                    "save wrote past its size"
                );
            }
            2 => {
                expect(
                    rmsprop_checkpoint_save(a, null_mut(), bytes.len(), null_mut()),
                    &[RMSPROP_ERR_NULL_POINTER],
                    RMSPROP_OK,
                    "checkpoint_save(NULL buf)",
                );
                let mut w = [0u8; 16];
                let wp = misaligned_in(&mut w, 8).cast::<usize>();
                let mut buf = vec![0xEEu8; bytes.len()];
                expect(
                    rmsprop_checkpoint_save(a, buf.as_mut_ptr().cast(), buf.len(), wp),
                    &[RMSPROP_ERR_MISALIGNED],
                    RMSPROP_OK,
                    "checkpoint_save(misaligned written)",
                );
                assert!(buf.iter().all(|&x| x == 0xEE), "save wrote on error");
                expect(
                    rmsprop_checkpoint_size(a, wp),
                    &[RMSPROP_ERR_MISALIGNED],
                    RMSPROP_OK,
                    "checkpoint_size(misaligned)",
                );
                expect(
                    rmsprop_checkpoint_size(a, null_mut()),
                    &[RMSPROP_ERR_NULL_POINTER],
                    RMSPROP_OK,
                    "checkpoint_size(NULL)",
                );
            }
            _ => {}
        }
        assert_unchanged(&before, &snap(a), "checkpoint_save");
        // Load: intact into some handle, or corrupted.
        match b.below(6) {
            0..=2 => {
                let ci = b.below(self.hs.len());
                let c = self.hs[ci].p;
                let cb = snap(c);
                let s = rmsprop_checkpoint_load(c, bytes.as_ptr().cast(), bytes.len());
                let mismatch = cb.dtype != before.dtype || cb.sizes != before.sizes;
                let defects = if mismatch {
                    vec![RMSPROP_ERR_CHECKPOINT_MISMATCH]
                } else {
                    vec![]
                };
                expect(s, &defects, RMSPROP_OK, "checkpoint_load");
                let ca = snap(c);
                if s == RMSPROP_OK {
                    let mut want = before.clone();
                    want.threads = cb.threads;
                    if let Some(f) = diff(&want, &ca, false) {
                        panic!("checkpoint round trip: {f} differs after load");
                    }
                } else {
                    assert_unchanged(&cb, &ca, "checkpoint_load(mismatch)");
                }
            }
            3 => {
                // Corrupt: truncated, one byte changed, one byte appended, NULL buf.
                let mut bad = bytes.clone();
                let kind = b.below(4);
                let mut defects = vec![RMSPROP_ERR_CHECKPOINT_CORRUPT];
                let (p, len) = match kind {
                    0 => {
                        let cut = b.u16() as usize % bad.len();
                        bad.truncate(cut);
                        (bad.as_ptr(), bad.len())
                    }
                    1 => {
                        let at = b.u16() as usize % bad.len();
                        let x = b.u8() | 1;
                        bad[at] ^= x;
                        (bad.as_ptr(), bad.len())
                    }
                    2 => {
                        bad.push(b.u8());
                        (bad.as_ptr(), bad.len())
                    }
                    _ => {
                        defects = vec![RMSPROP_ERR_NULL_POINTER];
                        (null(), bad.len())
                    }
                };
                let ci = b.below(self.hs.len());
                let c = self.hs[ci].p;
                let cb = snap(c);
                expect(
                    rmsprop_checkpoint_load(c, p.cast(), len),
                    &defects,
                    RMSPROP_OK,
                    "checkpoint_load(corrupt)",
                );
                assert_unchanged(&cb, &snap(c), "checkpoint_load(corrupt)");
                let mut out = null_mut();
                expect(
                    rmsprop_create_from_checkpoint(p.cast(), len, &mut out),
                    &defects,
                    RMSPROP_OK,
                    "create_from_checkpoint(corrupt)",
                );
                assert!(out.is_null(), "create_from_checkpoint wrote *out on error");
            }
            _ => {
                let sel = b.below(8);
                let mut out: *mut RmspropOptimizer = null_mut();
                let mut raw = [0u8; 16];
                let (outp, defects) = match sel {
                    0 => (null_mut(), vec![RMSPROP_ERR_NULL_POINTER]),
                    1 => (
                        misaligned_in(&mut raw, 8).cast(),
                        vec![RMSPROP_ERR_MISALIGNED],
                    ),
                    _ => (&mut out as *mut _, vec![]),
                };
                let s = rmsprop_create_from_checkpoint(bytes.as_ptr().cast(), bytes.len(), outp);
                expect(s, &defects, RMSPROP_OK, "create_from_checkpoint");
                if s == RMSPROP_OK {
                    let mut want = before.clone();
                    want.threads = 0;
                    let got = snap(out);
                    if let Some(f) = diff(&want, &got, false) {
                        panic!("create_from_checkpoint: {f} differs");
                    }
                    self.push_handle(Handle {
                        p: out,
                        dtype: before.dtype,
                        sizes: before.sizes.clone(),
                    });
                } else {
                    assert!(raw.iter().all(|&x| x == 0));
                }
            }
        }
    }

    fn nulls(&mut self, b: &mut Bytes<'_>) {
        let mut u = 0usize;
        let mut d = 0i32;
        let mut f = 0.0f64;
        let mut bo = false;
        let mut u64v = 0u64;
        let mut buf = [0.0f32; 4];
        let mut dbuf = [0.0f64; 4];
        let n = null_mut::<RmspropOptimizer>();
        let c = null::<RmspropOptimizer>();
        let s = match b.below(30) {
            0 => rmsprop_update_f32(n, buf.as_ptr(), buf.as_mut_ptr(), 0),
            1 => rmsprop_step_f64(n, dbuf.as_mut_ptr(), dbuf.as_ptr(), 0),
            2 => rmsprop_update(n, null(), null_mut(), 0, RMSPROP_DTYPE_F32),
            3 => rmsprop_step(n, null_mut(), null(), 0, RMSPROP_DTYPE_F64),
            4 => rmsprop_update_tensors_f32(n, null(), null(), 0),
            5 => rmsprop_step_tensors_f64(n, null(), null(), 0),
            6 => rmsprop_get_state_f32(c, RMSPROP_NU, 0, buf.as_mut_ptr(), 0),
            7 => rmsprop_set_state_f64(n, RMSPROP_NU, 0, dbuf.as_ptr(), 0),
            8 => rmsprop_dtype(c, &mut d),
            9 => rmsprop_num_tensors(c, &mut u),
            10 => rmsprop_total_elements(c, &mut u),
            11 => rmsprop_tensor_size(c, 0, &mut u),
            12 => rmsprop_has_state(c, RMSPROP_NU, &mut bo),
            13 => rmsprop_get_counts(c, null_mut(), null_mut()),
            14 => rmsprop_set_counts(n, 0, 0),
            15 => rmsprop_reset(n),
            16 => rmsprop_skipped_steps(c, &mut u64v),
            17 => rmsprop_current_learning_rate(c, &mut f),
            18 => rmsprop_set_learning_rate(n, 0.1),
            19 => rmsprop_set_decay(n, 0.5),
            20 => rmsprop_set_threads(n, 1),
            21 => rmsprop_get_threads(c, &mut u),
            22 => rmsprop_checkpoint_size(c, &mut u),
            23 => rmsprop_checkpoint_save(c, buf.as_mut_ptr().cast(), 16, null_mut()),
            24 => rmsprop_checkpoint_load(n, buf.as_ptr().cast(), 16),
            25 => rmsprop_set_momentum(n, 0.5),
            26 => rmsprop_checkpoint_save_file(c, c"/nonexistent-rmsprop-fuzz/x".as_ptr()),
            27 => {
                // File errors on a live handle: NULL path, unreadable path.
                let i = self.handle(b);
                let h = self.hs[i].p;
                let before = snap(h);
                expect(
                    rmsprop_checkpoint_load_file(h, null()),
                    &[RMSPROP_ERR_NULL_POINTER],
                    RMSPROP_OK,
                    "load_file(NULL)",
                );
                expect(
                    rmsprop_checkpoint_save_file(h, null()),
                    &[RMSPROP_ERR_NULL_POINTER],
                    RMSPROP_OK,
                    "save_file(NULL)",
                );
                expect(
                    rmsprop_checkpoint_load_file(h, c"/nonexistent-rmsprop-fuzz/x".as_ptr()),
                    &[RMSPROP_ERR_IO],
                    RMSPROP_OK,
                    "load_file(missing)",
                );
                expect(
                    rmsprop_checkpoint_save_file(h, c"/nonexistent-rmsprop-fuzz/x".as_ptr()),
                    &[RMSPROP_ERR_IO],
                    RMSPROP_OK,
                    "save_file(missing dir)",
                );
                assert_unchanged(&before, &snap(h), "file errors");
                return;
            }
            28 => {
                rmsprop_destroy(null_mut());
                rmsprop_options_free(null_mut());
                rmsprop_schedule_free(null_mut());
                return;
            }
            _ => rmsprop_checkpoint_load_file(n, c"/nonexistent-rmsprop-fuzz/x".as_ptr()),
        };
        expect(s, &[RMSPROP_ERR_NULL_POINTER], RMSPROP_OK, "NULL handle");
        assert!(
            u == 0 && d == 0 && f == 0.0 && !bo && u64v == 0,
            "an out-parameter was written on error"
        );
    }
}

fn round_lr(dtype: i32, v: f64) -> f64 {
    if dtype == RMSPROP_DTYPE_F32 {
        v as f32 as f64
    } else {
        v
    }
}

/// nu = initial_scale (in the dtype), mu = trace = 0, everywhere.
fn check_init_state(s: &Snap, initial_scale: f64, what: &str) {
    let (nu, zero) = if s.dtype == RMSPROP_DTYPE_F32 {
        ((initial_scale as f32).to_bits() as u64, 0u64)
    } else {
        (initial_scale.to_bits(), 0u64)
    };
    for (i, c) in s.state.iter().enumerate() {
        if let Some(v) = c {
            let want = if i == 0 { nu } else { zero };
            assert!(
                v.iter().all(|&x| x == want),
                "{what}: component {i} is not at its initial value"
            );
        }
    }
}

/// A pointer `align`-misaligned inside `raw` (which has room for one value after it).
fn misaligned_in(raw: &mut [u8; 16], align: usize) -> *mut u8 {
    let base = raw.as_mut_ptr();
    let off = if (base as usize + 1).is_multiple_of(align) {
        2
    } else {
        1
    };
    base.wrapping_add(off)
}

// ---------------------------------------------------------------------------------------
// Steps.

/// Flat update / step: `untyped` is `Some(dtype argument)` for `rmsprop_update` / `rmsprop_step`.
fn flat<T: Elem>(h: &Handle, b: &mut Bytes<'_>, untyped: Option<i32>) {
    let total = h.total();
    let mode = b.below(3); // 0 update, 1 update in place, 2 step
    let n = match b.below(10) {
        0 => total + 1,
        1 => total.saturating_sub(1),
        2 => 0,
        _ => total,
    };
    let ptrsel = b.below(20);
    let gvals = values(b, n);
    let pvals = values(b, n);
    let before = snap(h.p);

    // One arena: grads at [0, n), a gap, the destination at [n + 1, 2n + 1), a gap.
    let cap = 2 * n + 2;
    let sentinel = T::from_f64(-7.25);
    let mut arena = vec![sentinel; cap];
    for i in 0..n {
        arena[i] = T::from_f64(gvals[i]);
        arena[n + 1 + i] = if mode == 2 {
            T::from_f64(pvals[i])
        } else {
            sentinel
        };
    }
    let base = arena.as_mut_ptr();
    let mut src = base as *const T;
    let mut dst = base.wrapping_add(n + 1);
    if mode == 1 {
        dst = base;
    }
    let mut defects = vec![];
    if let Some(d) = untyped
        && d != RMSPROP_DTYPE_F32
        && d != RMSPROP_DTYPE_F64
    {
        defects.push(RMSPROP_ERR_BAD_ENUM);
    }
    if T::DT != h.dtype {
        defects.push(RMSPROP_ERR_WRONG_DTYPE);
    }
    if n != total {
        defects.push(RMSPROP_ERR_LENGTH_MISMATCH);
    }
    match ptrsel {
        0 => {
            src = null();
            if mode == 1 {
                dst = null_mut();
            }
        }
        1 => dst = null_mut(),
        2 => {
            src = null();
            dst = null_mut();
        }
        3 => {
            src = (base as *const u8).wrapping_add(1).cast();
            if mode == 1 {
                dst = src as *mut T;
            }
        }
        4 => dst = (dst as *mut u8).wrapping_add(1).cast(),
        5 | 6 if n >= 2 => {
            // Partial overlap of the two buffers.
            let k = 1 + b.below(n - 1);
            dst = base.wrapping_add(k);
            if ptrsel == 6 {
                src = base.wrapping_add(k) as *const T;
                dst = base;
            }
        }
        _ => {}
    }
    if n > 0 {
        if src.is_null() || dst.is_null() {
            defects.push(RMSPROP_ERR_NULL_POINTER);
        }
        if !(src as usize).is_multiple_of(T::SIZE) || !(dst as usize).is_multiple_of(T::SIZE) {
            defects.push(RMSPROP_ERR_MISALIGNED);
        }
        // As documented: the same pointer twice is an in-place update; any other
        // intersection of the two ranges (NULL counts as address 0) is an overlap.
        let (s0, d0) = (src as usize, dst as usize);
        let bytes = n * T::SIZE;
        let in_place = mode != 2 && s0 == d0;
        if !in_place && s0 < d0 + bytes && d0 < s0 + bytes {
            defects.push(RMSPROP_ERR_OVERLAP);
        }
    }
    let arena_before: Vec<u64> = arena.iter().map(|x| x.bits()).collect();
    // The gradients as the library will read them (aligned, in place or not).
    let grads_now: Vec<T> = if n > 0 && !src.is_null() && (src as usize).is_multiple_of(T::SIZE) {
        let off = (src as usize - base as usize) / T::SIZE;
        arena[off..off + n].to_vec()
    } else {
        vec![]
    };
    let skip_expected = before.skip && grads_now.iter().any(|g| !g.finite());
    let ok_status = if skip_expected {
        RMSPROP_SKIPPED_NON_FINITE
    } else {
        RMSPROP_OK
    };
    let s = match (untyped, mode) {
        (None, 2) => T::step(h.p, dst, src, n),
        (None, _) => T::update(h.p, src, dst, n),
        (Some(d), 2) => rmsprop_step(h.p, dst.cast(), src.cast(), n, d),
        (Some(d), _) => rmsprop_update(h.p, src.cast(), dst.cast(), n, d),
    };
    expect(s, &defects, ok_status, &format!("flat (mode {mode})"));
    let after = snap(h.p);
    let arena_after: Vec<u64> = arena.iter().map(|x| x.bits()).collect();
    if s >= RMSPROP_ERR_NULL_POINTER {
        assert_unchanged(&before, &after, "flat step/update error");
        assert!(
            arena_before == arena_after,
            "flat: buffers written on error"
        );
        return;
    }
    let off = if n > 0 {
        (dst as usize - base as usize) / T::SIZE
    } else {
        0
    };
    // Outside the destination nothing changed.
    for (i, (x, y)) in arena_before.iter().zip(&arena_after).enumerate() {
        if i < off || i >= off + n {
            assert_eq!(x, y, "flat: element {i} outside the destination written");
        }
    }
    check_step_state(&before, &after, s, "flat");
    if s == RMSPROP_SKIPPED_NON_FINITE {
        if mode == 2 {
            assert!(arena_before == arena_after, "skipped step changed params");
        } else {
            assert!(
                arena[off..off + n].iter().all(|x| x.to_f64() == 0.0),
                "skipped update must write zero updates"
            );
        }
    }
}

/// After a successful or skipped step: what may change.
fn check_step_state(before: &Snap, after: &Snap, s: i32, what: &str) {
    let mut want = before.clone();
    if s == RMSPROP_SKIPPED_NON_FINITE {
        want.skipped += 1;
        want.ckpt.clone_from(&after.ckpt);
        if let Some(f) = diff(&want, after, false) {
            panic!("{what}: skipped step changed {f}");
        }
        return;
    }
    want.counts = (
        before.counts.0.saturating_add(1),
        before.counts.1.saturating_add(1),
    );
    want.state = after.state.clone();
    want.lr_bits = after.lr_bits;
    want.ckpt.clone_from(&after.ckpt);
    if let Some(f) = diff(&want, after, false) {
        panic!("{what}: step changed {f} unexpectedly");
    }
    let sched = match &before.config.learning_rate {
        LearningRate::Fixed(v) => {
            assert_eq!(after.lr_bits, round_lr(before.dtype, *v).to_bits());
            return;
        }
        LearningRate::Schedule(s) => s,
    };
    let c = after.counts.0;
    let v = if before.dtype == RMSPROP_DTYPE_F32 {
        sched.value::<f32>(c) as f64
    } else {
        sched.value::<f64>(c)
    };
    assert_eq!(
        after.lr_bits,
        v.to_bits(),
        "{what}: learning rate after step"
    );
}

/// Per-tensor placement of list buffers in one arena.
struct ListBufs<T> {
    arena: Vec<T>,
    src: Vec<*const T>,
    dst: Vec<*mut T>,
}

fn list<T: Elem>(h: &Handle, b: &mut Bytes<'_>) {
    let mode = b.below(3); // 0 update, 1 update in place, 2 step
    let nt = h.sizes.len();
    let num = match b.below(10) {
        0 => nt + 1,
        1 => nt.saturating_sub(1),
        _ => nt,
    };
    let sizes: Vec<usize> = (0..num)
        .map(|i| h.sizes.get(i).copied().unwrap_or(4))
        .collect();
    let total: usize = sizes.iter().sum();
    let placement = b.below(8); // 0..=4 sequential, 5..=6 one tensor moved, 7 random
    // Regions start below `room_end`; the slack after it keeps every pointer passed valid
    // for the largest tensor (plus a misaligned byte), whichever region it was moved to.
    let room_end = 2 * total + 2 * num + 8;
    let cap = room_end + sizes.iter().copied().max().unwrap_or(0) + 2;
    let sentinel = T::from_f64(-7.25);
    let mut lb = ListBufs {
        arena: vec![sentinel; cap],
        src: vec![],
        dst: vec![],
    };
    let base = lb.arena.as_mut_ptr();
    let mut off = 0usize;
    let mut soff = Vec::with_capacity(num);
    let mut doff = Vec::with_capacity(num);
    for &n in &sizes {
        soff.push(off);
        off += n + 1;
        doff.push(off);
        off += n + 1;
    }
    let moved = b.below(num.max(1));
    for i in 0..num {
        if placement == 7 || (placement >= 5 && i == moved) {
            soff[i] = b.u16() as usize % room_end;
            doff[i] = b.u16() as usize % room_end;
        }
    }
    // Gradients and parameters written in placement order (later ones win on overlap).
    let gvals = values(b, total);
    let pvals = values(b, total);
    let mut k = 0;
    for (i, &n) in sizes.iter().enumerate() {
        for j in 0..n {
            if mode == 2 {
                lb.arena[doff[i] + j] = T::from_f64(pvals[k + j]);
            }
        }
        k += n;
    }
    let mut k = 0;
    for (i, &n) in sizes.iter().enumerate() {
        for j in 0..n {
            lb.arena[soff[i] + j] = T::from_f64(gvals[k + j]);
        }
        k += n;
    }
    for i in 0..num {
        lb.src.push(base.wrapping_add(soff[i]) as *const T);
        lb.dst.push(if mode == 1 {
            base.wrapping_add(soff[i])
        } else {
            base.wrapping_add(doff[i])
        });
    }
    // Per-tensor pointer defects.
    let ndef = b.below(4);
    for _ in 0..ndef {
        if num == 0 {
            break;
        }
        let i = b.below(num);
        match b.below(7) {
            0 => lb.src[i] = null(),
            1 => lb.dst[i] = null_mut(),
            2 => lb.src[i] = (lb.src[i] as *const u8).wrapping_add(1).cast(),
            3 => lb.dst[i] = (lb.dst[i] as *mut u8).wrapping_add(1).cast(),
            4 => lb.dst[i] = lb.src[i] as *mut T,
            5 => {
                let j = b.below(num);
                lb.dst[i] = lb.dst[j];
            }
            _ => {
                let j = b.below(num);
                lb.dst[i] = lb.src[j] as *mut T;
            }
        }
    }
    let null_arrays = b.below(20);
    let srcs = if null_arrays == 0 {
        null()
    } else {
        lb.src.as_ptr()
    };
    let dsts = if null_arrays == 1 {
        null()
    } else {
        lb.dst.as_ptr()
    };

    // The oracle.
    let mut defects = vec![];
    if T::DT != h.dtype {
        defects.push(RMSPROP_ERR_WRONG_DTYPE);
    }
    if num != nt {
        defects.push(RMSPROP_ERR_LENGTH_MISMATCH);
    }
    if num > 0 && (srcs.is_null() || dsts.is_null()) {
        defects.push(RMSPROP_ERR_NULL_POINTER);
    }
    // In place: every non-empty tensor's update overwrites its gradient (empty tensors'
    // pointers decide nothing).
    let in_place = mode != 2
        && num > 0
        && (0..num).all(|i| sizes[i] == 0 || std::ptr::eq(lb.src[i], lb.dst[i] as *const T));
    let span = |p: usize, n: usize| (p, p + n * T::SIZE);
    let mut dsp = vec![];
    let mut ssp = vec![];
    for i in 0..num {
        if sizes[i] == 0 {
            continue;
        }
        let (s, d) = (lb.src[i], lb.dst[i]);
        if s.is_null() || d.is_null() {
            defects.push(RMSPROP_ERR_NULL_POINTER);
        }
        if !(s as usize).is_multiple_of(T::SIZE) || !(d as usize).is_multiple_of(T::SIZE) {
            defects.push(RMSPROP_ERR_MISALIGNED);
        }
        dsp.push(span(d as usize, sizes[i]));
        ssp.push(span(s as usize, sizes[i]));
    }
    let inter = |a: (usize, usize), c: (usize, usize)| a.0 < c.1 && c.0 < a.1;
    let mut overlap = false;
    for (x, &a) in dsp.iter().enumerate() {
        for &c in &dsp[x + 1..] {
            overlap |= inter(a, c);
        }
        if !in_place {
            for &c in &ssp {
                overlap |= inter(a, c);
            }
        }
    }
    if overlap {
        defects.push(RMSPROP_ERR_OVERLAP);
    }
    // Gradients overlapping each other: allowed by the implementation (they are only
    // read), outside the documented contract; accept either outcome.
    let mut src_overlap = false;
    for (x, &a) in ssp.iter().enumerate() {
        for &c in &ssp[x + 1..] {
            src_overlap |= inter(a, c);
        }
    }

    let before = snap(h.p);
    let arena_before: Vec<u64> = lb.arena.iter().map(|x| x.bits()).collect();
    let grads_now: Vec<T> = (0..num)
        .filter(|&i| {
            sizes[i] > 0 && !lb.src[i].is_null() && (lb.src[i] as usize).is_multiple_of(T::SIZE)
        })
        .flat_map(|i| {
            let o = (lb.src[i] as usize - base as usize) / T::SIZE;
            lb.arena[o..o + sizes[i]].to_vec()
        })
        .collect();
    let ok_status = if before.skip && grads_now.iter().any(|g| !g.finite()) {
        RMSPROP_SKIPPED_NON_FINITE
    } else {
        RMSPROP_OK
    };
    let s = if mode == 2 {
        T::step_tensors(h.p, dsts, srcs, num)
    } else {
        T::update_tensors(h.p, srcs, dsts, num)
    };
    let what = format!("list (mode {mode}, placement {placement})");
    if src_overlap && defects.is_empty() {
        st(s, &what);
        assert!(
            s == ok_status || s == RMSPROP_ERR_OVERLAP,
            "{what}: {}",
            name(s)
        );
    } else {
        expect(s, &defects, ok_status, &what);
    }
    let after = snap(h.p);
    let arena_after: Vec<u64> = lb.arena.iter().map(|x| x.bits()).collect();
    if s >= RMSPROP_ERR_NULL_POINTER {
        assert_unchanged(&before, &after, "list error");
        assert!(
            arena_before == arena_after,
            "list: buffers written on error"
        );
        return;
    }
    // Outside the destinations nothing changed.
    let mut in_dst = vec![false; cap];
    for i in (0..num).filter(|&i| sizes[i] > 0) {
        let o = (lb.dst[i] as usize - base as usize) / T::SIZE;
        for f in &mut in_dst[o..o + sizes[i]] {
            *f = true;
        }
    }
    for i in 0..cap {
        if !in_dst[i] {
            assert_eq!(
                arena_before[i], arena_after[i],
                "{what}: element {i} outside the destinations written"
            );
        }
    }
    check_step_state(&before, &after, s, &what);
    if s == RMSPROP_SKIPPED_NON_FINITE {
        for i in 0..cap {
            if in_dst[i] {
                if mode == 2 {
                    assert_eq!(
                        arena_before[i], arena_after[i],
                        "skipped step changed params"
                    );
                } else {
                    assert!(
                        lb.arena[i].to_f64() == 0.0,
                        "skipped update: non-zero update"
                    );
                }
            }
        }
    }
}

fn state_access<T: Elem>(h: &Handle, b: &mut Bytes<'_>, set: bool) {
    let comp = match b.below(10) {
        0..=2 => RMSPROP_NU,
        3 | 4 => RMSPROP_MU,
        5 | 6 => RMSPROP_TRACE,
        7 => 0,
        8 => 4,
        _ => b.i32(),
    };
    let nt = h.sizes.len();
    let tensor = match b.below(10) {
        0 => nt + b.below(3),
        1 => usize::MAX,
        _ => b.below(nt.max(1)),
    };
    let size = h.sizes.get(tensor).copied();
    let n = match b.below(10) {
        0 => size.unwrap_or(0) + 1,
        1 => 0,
        _ => size.unwrap_or(3),
    };
    let ptrsel = b.below(12);
    let vals = values(b, n);
    let before = snap(h.p);
    let ci = COMPONENTS.iter().position(|&c| c == comp);
    let mut defects = vec![];
    if T::DT != h.dtype {
        defects.push(RMSPROP_ERR_WRONG_DTYPE);
    }
    match ci {
        None => defects.push(RMSPROP_ERR_BAD_ENUM),
        Some(i) if !before.has[i] => defects.push(RMSPROP_ERR_NO_SUCH_STATE),
        _ => {}
    }
    match size {
        None => defects.push(RMSPROP_ERR_OUT_OF_RANGE),
        Some(sz) if sz != n => defects.push(RMSPROP_ERR_LENGTH_MISMATCH),
        _ => {}
    }
    let sentinel = T::from_f64(-3.5);
    let mut arena = vec![sentinel; n + 1];
    if set {
        for i in 0..n {
            arena[i] = T::from_f64(vals[i]);
        }
    }
    let base = arena.as_mut_ptr();
    let p = match ptrsel {
        0 => null_mut(),
        1 => (base as *mut u8).wrapping_add(1).cast::<T>(),
        _ => base,
    };
    if n > 0 && ptrsel == 0 {
        defects.push(RMSPROP_ERR_NULL_POINTER);
    }
    if n > 0 && ptrsel == 1 {
        defects.push(RMSPROP_ERR_MISALIGNED);
    }
    let arena_before: Vec<u64> = arena.iter().map(|x| x.bits()).collect();
    let s = if set {
        T::set_state(h.p, comp, tensor, p, n)
    } else {
        T::get_state(h.p, comp, tensor, p, n)
    };
    let what = if set { "set_state" } else { "get_state" };
    expect(s, &defects, RMSPROP_OK, what);
    let after = snap(h.p);
    let arena_after: Vec<u64> = arena.iter().map(|x| x.bits()).collect();
    if s != RMSPROP_OK || !set {
        assert_unchanged(&before, &after, what);
    }
    if s != RMSPROP_OK || set {
        assert!(arena_before == arena_after, "{what}: buffer written");
        if s != RMSPROP_OK {
            return;
        }
    }
    let ci = ci.unwrap_or(0);
    let off: usize = h.sizes[..tensor].iter().sum();
    if set {
        let mut want = before.clone();
        if let Some(v) = want.state[ci].as_mut() {
            for j in 0..n {
                v[off + j] = arena[j].bits();
            }
        }
        assert_only(&before, &after, &want, "set_state");
    } else {
        let st = before.state[ci].as_ref().expect("has state");
        for j in 0..n {
            assert_eq!(
                arena[j].bits(),
                st[off + j],
                "get_state returned other values"
            );
        }
        assert_eq!(
            arena_after[n], arena_before[n],
            "get_state wrote past n elements"
        );
    }
}

fn counts(h: &Handle, b: &mut Bytes<'_>) {
    let before = snap(h.p);
    if b.bool() {
        let mut x = -9i32;
        let mut y = -9i32;
        let (px, py) = match b.below(4) {
            0 => (null_mut(), &mut y as *mut i32),
            1 => (&mut x as *mut i32, null_mut()),
            2 => (null_mut(), null_mut()),
            _ => (&mut x as *mut i32, &mut y as *mut i32),
        };
        ok(rmsprop_get_counts(h.p, px, py), "get_counts");
        if !px.is_null() {
            assert_eq!(x, before.counts.0);
        }
        if !py.is_null() {
            assert_eq!(y, before.counts.1);
        }
        assert_unchanged(&before, &snap(h.p), "get_counts");
        return;
    }
    let (x, y) = (b.i32(), b.i32());
    let s = rmsprop_set_counts(h.p, x, y);
    let defects = if x < 0 || y < 0 {
        vec![RMSPROP_ERR_INVALID_HYPERPARAMETER]
    } else {
        vec![]
    };
    expect(s, &defects, RMSPROP_OK, "set_counts");
    let after = snap(h.p);
    if s != RMSPROP_OK {
        assert_unchanged(&before, &after, "set_counts");
        return;
    }
    let mut want = before.clone();
    want.counts = (x, y);
    want.lr_bits = after.lr_bits;
    assert_only(&before, &after, &want, "set_counts");
    if let LearningRate::Schedule(m) = &before.config.learning_rate {
        let v = if h.dtype == RMSPROP_DTYPE_F32 {
            m.value::<f32>(x) as f64
        } else {
            m.value::<f64>(x)
        };
        assert_eq!(after.lr_bits, v.to_bits(), "lr after set_counts");
    } else {
        assert_eq!(after.lr_bits, before.lr_bits);
    }
}

fn reset(h: &Handle) {
    let before = snap(h.p);
    ok(rmsprop_reset(h.p), "reset");
    let after = snap(h.p);
    let mut want = before.clone();
    want.state = after.state.clone();
    want.counts = (0, 0);
    want.lr_bits = after.lr_bits;
    assert_only(&before, &after, &want, "reset");
    check_init_state(&after, before.config.initial_scale, "reset");
}

fn threads(h: &Handle, b: &mut Bytes<'_>) {
    let before = snap(h.p);
    let n = match b.below(8) {
        0 => 1025,
        1 => usize::MAX,
        x => (x - 2) % 4,
    };
    let s = rmsprop_set_threads(h.p, n);
    let defects = if n > 1024 {
        vec![RMSPROP_ERR_THREADS]
    } else {
        vec![]
    };
    expect(s, &defects, RMSPROP_OK, "set_threads");
    let after = snap(h.p);
    if s != RMSPROP_OK {
        assert_unchanged(&before, &after, "set_threads");
        return;
    }
    let mut want = before.clone();
    want.threads = n;
    assert_only(&before, &after, &want, "set_threads");
}

fn queries(h: &Handle, b: &mut Bytes<'_>) {
    let before = snap(h.p);
    let t = if b.bool() {
        b.u64() as usize
    } else {
        b.below(9)
    };
    let mut u = 77usize;
    let s = rmsprop_tensor_size(h.p, t, &mut u);
    if t < h.sizes.len() {
        ok(s, "tensor_size");
        assert_eq!(u, h.sizes[t]);
    } else {
        expect(s, &[RMSPROP_ERR_OUT_OF_RANGE], RMSPROP_OK, "tensor_size");
        assert_eq!(u, 77, "tensor_size wrote *out on error");
    }
    let mut bo = false;
    let c = b.i32();
    let s = rmsprop_has_state(h.p, c, &mut bo);
    if COMPONENTS.contains(&c) {
        ok(s, "has_state");
    } else {
        expect(s, &[RMSPROP_ERR_BAD_ENUM], RMSPROP_OK, "has_state");
    }
    let s = match b.below(9) {
        0 => rmsprop_dtype(h.p, null_mut()),
        1 => rmsprop_num_tensors(h.p, null_mut()),
        2 => rmsprop_total_elements(h.p, null_mut()),
        3 => rmsprop_tensor_size(h.p, 0, null_mut()),
        4 => rmsprop_has_state(h.p, RMSPROP_NU, null_mut()),
        5 => rmsprop_skipped_steps(h.p, null_mut()),
        6 => rmsprop_current_learning_rate(h.p, null_mut()),
        7 => rmsprop_get_threads(h.p, null_mut()),
        _ => rmsprop_checkpoint_size(h.p, null_mut()),
    };
    // tensor_size(0) on an empty layout may report the range first.
    let allowed = if h.sizes.is_empty() {
        vec![RMSPROP_ERR_NULL_POINTER, RMSPROP_ERR_OUT_OF_RANGE]
    } else {
        vec![RMSPROP_ERR_NULL_POINTER]
    };
    expect(s, &allowed, RMSPROP_OK, "query(NULL out)");
    assert_unchanged(&before, &snap(h.p), "queries");
}

/// Copy handle A through its checkpoint into B, give B another thread setting, run the same
/// gradients through two entry points (flat/list, update/in place/step), and compare.
fn twin<T: Elem>(h: &Handle, b: &mut Bytes<'_>) {
    let total = h.total();
    let ma = b.below(6);
    let mb = b.below(6);
    let threads_b = b.below(4);
    let gvals: Vec<T> = values(b, total).into_iter().map(T::from_f64).collect();
    let pvals: Vec<T> = values(b, total).into_iter().map(T::from_f64).collect();
    let sa = snap(h.p);
    let mut hb = null_mut();
    ok(
        rmsprop_create_from_checkpoint(sa.ckpt.as_ptr().cast(), sa.ckpt.len(), &mut hb),
        "twin: create_from_checkpoint",
    );
    ok(rmsprop_set_threads(hb, threads_b), "twin: set_threads");
    let (st_a, out_a) = run_mode(h.p, &h.sizes, ma, &gvals, &pvals);
    let (st_b, out_b) = run_mode(hb, &h.sizes, mb, &gvals, &pvals);
    st(st_a, "twin A");
    st(st_b, "twin B");
    assert_eq!(st_a, st_b, "twin: statuses differ (modes {ma}, {mb})");
    assert!(st_a == RMSPROP_OK || st_a == RMSPROP_SKIPPED_NON_FINITE);
    if st_a == RMSPROP_SKIPPED_NON_FINITE {
        for (mode, out) in [(ma, &out_a), (mb, &out_b)] {
            for (i, x) in out.iter().enumerate() {
                if mode % 3 == 2 {
                    assert_eq!(
                        x.bits(),
                        pvals[i].bits(),
                        "twin: skipped step changed params"
                    );
                } else {
                    assert!(x.to_f64() == 0.0, "twin: skipped update is not zero");
                }
            }
        }
    } else {
        // New parameters: the step's output, or params + update.
        let eff = |mode: usize, out: &[T]| -> Vec<T> {
            if mode % 3 == 2 {
                out.to_vec()
            } else {
                pvals.iter().zip(out).map(|(p, u)| p.add(*u)).collect()
            }
        };
        let (pa, pb) = (eff(ma, &out_a), eff(mb, &out_b));
        // Kernels run with subnormals flushed to zero (FTZ/DAZ, as XLA:CPU; see
        // src/dispatch.rs), while `params + update` is added here without flushing: a step
        // and an update plus the addition may differ by less than the smallest normal.
        let mixed = (ma % 3 == 2) != (mb % 3 == 2);
        let tiny = T::MIN_NORMAL;
        for i in 0..total {
            let close = mixed && (pa[i].to_f64() - pb[i].to_f64()).abs() <= tiny;
            assert!(
                same_nan(pa[i], pb[i]) || close,
                "twin: element {i} differs: {:?} vs {:?} (modes {ma}, {mb}, threads {threads_b}; \
                 param {:?}, grad {:?}, outputs {:?} / {:?}, config {:?}, counts {:?})",
                pa[i],
                pb[i],
                pvals[i],
                gvals[i],
                out_a[i],
                out_b[i],
                sa.config,
                sa.counts
            );
            if ma % 3 != 2 && mb % 3 != 2 {
                assert!(same_nan(out_a[i], out_b[i]), "twin: updates differ at {i}");
            }
        }
    }
    let (a, bb) = (snap(h.p), snap(hb));
    assert_eq!(bb.threads, threads_b);
    assert_eq!(a.counts, bb.counts, "twin: counts");
    assert_eq!(a.skipped, bb.skipped, "twin: skipped");
    assert_eq!(a.config, bb.config, "twin: config");
    assert_eq!(a.lr_bits, bb.lr_bits, "twin: lr");
    for c in 0..3 {
        match (&a.state[c], &bb.state[c]) {
            (Some(x), Some(y)) => {
                for (i, (p, q)) in x.iter().zip(y).enumerate() {
                    let nan = |v: u64| {
                        if a.dtype == RMSPROP_DTYPE_F32 {
                            f32::from_bits(v as u32).is_nan()
                        } else {
                            f64::from_bits(v).is_nan()
                        }
                    };
                    assert!(
                        p == q || (nan(*p) && nan(*q)),
                        "twin: state component {c} element {i} differs (modes {ma}, {mb}, threads {threads_b})"
                    );
                }
            }
            (None, None) => {}
            _ => panic!("twin: state presence differs"),
        }
    }
    rmsprop_destroy(hb);
}

/// Mode: 0 flat update, 1 flat in place, 2 flat step, 3 list update, 4 list in place,
/// 5 list step. Returns the status and the updates (or the new params for a step).
fn run_mode<T: Elem>(
    h: *mut RmspropOptimizer,
    sizes: &[usize],
    mode: usize,
    g: &[T],
    p: &[T],
) -> (i32, Vec<T>) {
    let n = g.len();
    let mut g1 = g.to_vec();
    let mut out = if mode % 3 == 2 {
        p.to_vec()
    } else {
        vec![T::from_f64(-7.25); n]
    };
    let s = match mode {
        0 => T::update(h, g1.as_ptr(), out.as_mut_ptr(), n),
        1 => {
            let s = T::update(h, g1.as_ptr(), g1.as_mut_ptr(), n);
            out.copy_from_slice(&g1);
            s
        }
        2 => T::step(h, out.as_mut_ptr(), g1.as_ptr(), n),
        _ => {
            let mut gp: Vec<*const T> = vec![];
            let mut dp: Vec<*mut T> = vec![];
            let mut off = 0;
            let gbase = g1.as_mut_ptr();
            let obase = out.as_mut_ptr();
            for &sz in sizes {
                gp.push(gbase.wrapping_add(off));
                dp.push(if mode == 4 {
                    gbase.wrapping_add(off)
                } else {
                    obase.wrapping_add(off)
                });
                off += sz;
            }
            let s = if mode == 5 {
                T::step_tensors(h, dp.as_ptr(), gp.as_ptr(), sizes.len())
            } else {
                T::update_tensors(h, gp.as_ptr(), dp.as_ptr(), sizes.len())
            };
            if mode == 4 {
                out.copy_from_slice(&g1);
            }
            s
        }
    };
    (s, out)
}

// ---------------------------------------------------------------------------------------
// The checkpoint target.

/// Make the frame of `b` consistent: body length and CRC-32 (when long enough).
pub fn fix_frame(b: &mut [u8]) {
    if b.len() < checkpoint::HEADER_LEN + checkpoint::TRAILER_LEN {
        return;
    }
    let body = (b.len() - checkpoint::HEADER_LEN - checkpoint::TRAILER_LEN) as u64;
    b[16..24].copy_from_slice(&body.to_le_bytes());
    let n = b.len();
    let crc = checkpoint::crc32(&b[..n - 4]);
    b[n - 4..].copy_from_slice(&crc.to_le_bytes());
}

/// The layouts (and dtypes) of the handles checkpoints are loaded into; the seeds are
/// checkpoints of these.
pub const LAYOUTS: [(i32, &[usize]); 6] = [
    (RMSPROP_DTYPE_F32, &[3, 0, 5]),
    (RMSPROP_DTYPE_F64, &[3, 0, 5]),
    (RMSPROP_DTYPE_F32, &[]),
    (RMSPROP_DTYPE_F64, &[1]),
    (RMSPROP_DTYPE_F32, &[2, 3]),
    (RMSPROP_DTYPE_F64, &[4, 1, 0]),
];

fn status_of(e: &CheckpointError) -> i32 {
    match e {
        CheckpointError::Corrupt(_) => RMSPROP_ERR_CHECKPOINT_CORRUPT,
        CheckpointError::Version { .. } => RMSPROP_ERR_CHECKPOINT_VERSION,
        CheckpointError::Mismatch(_) => RMSPROP_ERR_CHECKPOINT_MISMATCH,
        CheckpointError::Io(_) => RMSPROP_ERR_IO,
    }
}

/// The `checkpoint_load` target. The first byte is a mode: bit 0 set means "repair the
/// frame" (body length and CRC-32) so that mutations reach the section parser; bit 1
/// selects centered+momentum handles to load into. The rest is the checkpoint.
pub fn checkpoint_load(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut bytes = rest.to_vec();
    if mode & 1 != 0 {
        fix_frame(&mut bytes);
    }
    load_everywhere(&bytes, mode & 2 != 0);
}

fn rust_restore<T: checkpoint::Element + Elem>(
    bytes: &[u8],
    sizes: &[usize],
    full: bool,
    threads: usize,
) -> Result<(), CheckpointError> {
    let mut c = Config::new(0.25);
    if full {
        c.centered = true;
        c.momentum = Some(0.5);
        c.nesterov = true;
    }
    let mut opt = Optimizer::<T>::new(c, sizes).expect("fixed optimizer");
    let mut p = vec![<T as Elem>::from_f64(0.5); opt.layout().total()];
    let g: Vec<T> = (0..p.len())
        .map(|i| <T as Elem>::from_f64(i as f64 - 1.5))
        .collect();
    let _ = opt.step(&mut p, &g).expect("fixed step");
    opt.set_threads(threads).expect("threads");
    let before_cfg = opt.config().clone();
    let before_state = opt.full_state().clone();
    let before_bytes = checkpoint::encode(&opt);
    let r = checkpoint::restore(&mut opt, bytes);
    match &r {
        Ok(()) => {
            assert_eq!(
                checkpoint::encode(&opt),
                bytes,
                "restored optimizer re-encodes differently"
            );
        }
        Err(_) => {
            assert_eq!(
                opt.config(),
                &before_cfg,
                "restore error changed the config"
            );
            let (a, b) = (opt.full_state(), &before_state);
            assert_eq!(a.counts, b.counts, "restore error changed the counts");
            assert_eq!(bits_of(&a.nu), bits_of(&b.nu), "restore error changed nu");
            assert_eq!(
                checkpoint::encode(&opt),
                before_bytes,
                "restore error changed state"
            );
        }
    }
    assert_eq!(
        opt.threads(),
        match threads {
            0 => rmsprop::Threads::Global,
            1 => rmsprop::Threads::Caller,
            n => rmsprop::Threads::Owned(n),
        },
        "restore changed the thread setting"
    );
    r
}

fn load_everywhere(bytes: &[u8], full: bool) {
    // Rust: decode_any, decode::<f32/f64>.
    let any = checkpoint::decode_any(bytes);
    let d32 = checkpoint::decode::<f32>(bytes);
    let d64 = checkpoint::decode::<f64>(bytes);
    let any_dtype = match &any {
        Ok(AnyOptimizer::F32(o)) => {
            assert_eq!(
                checkpoint::encode(o),
                bytes,
                "decode_any(f32) re-encodes differently"
            );
            assert_eq!(checkpoint::encoded_len(o), bytes.len());
            assert!(d32.is_ok(), "decode::<f32> fails where decode_any succeeds");
            assert!(matches!(d64, Err(CheckpointError::Mismatch(_))));
            Some(RMSPROP_DTYPE_F32)
        }
        Ok(AnyOptimizer::F64(o)) => {
            assert_eq!(
                checkpoint::encode(o),
                bytes,
                "decode_any(f64) re-encodes differently"
            );
            assert_eq!(checkpoint::encoded_len(o), bytes.len());
            assert!(d64.is_ok(), "decode::<f64> fails where decode_any succeeds");
            assert!(matches!(d32, Err(CheckpointError::Mismatch(_))));
            Some(RMSPROP_DTYPE_F64)
        }
        Err(e) => {
            assert!(
                !matches!(e, CheckpointError::Mismatch(_) | CheckpointError::Io(_)),
                "decode_any: {e}"
            );
            // The typed decoders fail too: with the same error, or a dtype mismatch.
            for (d, what) in [(d32.as_ref().err(), "f32"), (d64.as_ref().err(), "f64")] {
                let d =
                    d.unwrap_or_else(|| panic!("decode::<{what}> succeeds where decode_any fails"));
                assert!(
                    d == e || matches!(d, CheckpointError::Mismatch(_)),
                    "decode::<{what}> disagrees: {d} vs {e}"
                );
            }
            None
        }
    };
    if let Ok(o) = &d32 {
        assert_eq!(checkpoint::encode(o), bytes);
    }
    if let Ok(o) = &d64 {
        assert_eq!(checkpoint::encode(o), bytes);
    }
    // C: create_from_checkpoint.
    let mut out = null_mut();
    let s = rmsprop_create_from_checkpoint(bytes.as_ptr().cast::<c_void>(), bytes.len(), &mut out);
    let want = match &any {
        Ok(_) => RMSPROP_OK,
        Err(e) => status_of(e),
    };
    expect(s, &[], want, "create_from_checkpoint");
    if s == RMSPROP_OK {
        let sn = snap(out);
        assert_eq!(Some(sn.dtype), any_dtype);
        assert_eq!(
            sn.ckpt, bytes,
            "create_from_checkpoint: re-saved bytes differ"
        );
        assert_eq!(sn.threads, 0);
        // And once more from its own save.
        let mut again = null_mut();
        ok(
            rmsprop_create_from_checkpoint(sn.ckpt.as_ptr().cast(), sn.ckpt.len(), &mut again),
            "create_from_checkpoint(again)",
        );
        if let Some(f) = diff(&sn, &snap(again), false) {
            panic!("second load differs in {f}");
        }
        rmsprop_destroy(again);
        rmsprop_destroy(out);
    } else {
        assert!(out.is_null(), "create_from_checkpoint wrote *out on error");
    }
    // Rust restore and C load into fixed handles.
    for (k, &(dt, sizes)) in LAYOUTS.iter().enumerate() {
        // 0 and 1 only: a dropped rayon pool ends its threads asynchronously, which
        // LeakSanitizer reports as a leak (pools are exercised by c_api_sequence).
        let threads = k % 2;
        let r = if dt == RMSPROP_DTYPE_F32 {
            rust_restore::<f32>(bytes, sizes, full, threads)
        } else {
            rust_restore::<f64>(bytes, sizes, full, threads)
        };
        let h = fixed_handle(dt, sizes, full, threads);
        let before = snap(h);
        let s = rmsprop_checkpoint_load(h, bytes.as_ptr().cast(), bytes.len());
        let want = match &r {
            Ok(()) => RMSPROP_OK,
            Err(e) => status_of(e),
        };
        expect(s, &[], want, "checkpoint_load");
        let after = snap(h);
        if s == RMSPROP_OK {
            assert_eq!(after.ckpt, bytes, "checkpoint_load: re-saved bytes differ");
            assert_eq!(
                after.threads, before.threads,
                "checkpoint_load changed threads"
            );
            // Loading the same bytes again changes nothing.
            ok(
                rmsprop_checkpoint_load(h, bytes.as_ptr().cast(), bytes.len()),
                "checkpoint_load(again)",
            );
            assert_unchanged(&after, &snap(h), "second load");
        } else {
            assert_unchanged(&before, &after, "checkpoint_load error");
        }
        rmsprop_destroy(h);
    }
}

/// A handle of a fixed layout that has taken one step.
fn fixed_handle(dt: i32, sizes: &[usize], full: bool, threads: usize) -> *mut RmspropOptimizer {
    let mut o = null_mut();
    ok(rmsprop_options_new(0.25, &mut o), "options_new");
    if full {
        ok(rmsprop_options_set_centered(o, true), "centered");
        ok(rmsprop_options_set_momentum(o, 0.5), "momentum");
        ok(rmsprop_options_set_nesterov(o, true), "nesterov");
    }
    let mut h = null_mut();
    ok(
        rmsprop_create(o, sizes.as_ptr(), sizes.len(), dt, &mut h),
        "create(fixed)",
    );
    rmsprop_options_free(o);
    ok(rmsprop_set_threads(h, threads), "set_threads(fixed)");
    let total: usize = sizes.iter().sum();
    let g: Vec<f64> = (0..total).map(|i| i as f64 - 1.5).collect();
    if dt == RMSPROP_DTYPE_F32 {
        let mut p = vec![0.5f32; total];
        let g: Vec<f32> = g.iter().map(|&x| x as f32).collect();
        ok(
            rmsprop_step_f32(h, p.as_mut_ptr(), g.as_ptr(), total),
            "step(fixed)",
        );
    } else {
        let mut p = vec![0.5f64; total];
        ok(
            rmsprop_step_f64(h, p.as_mut_ptr(), g.as_ptr(), total),
            "step(fixed)",
        );
    }
    h
}

// ---------------------------------------------------------------------------------------
// Seeds.

/// Valid checkpoints for the `checkpoint_load` seeds: each fixed layout and dtype, with
/// every configuration flag, every schedule kind, nested joins, after a few steps. Each
/// is prefixed with a mode byte (see [`checkpoint_load`]).
pub fn checkpoint_seeds() -> Vec<(String, Vec<u8>)> {
    let scheds: Vec<Schedule> = vec![
        Schedule::Constant { value: 0.01 },
        Schedule::Linear {
            init_value: 0.1,
            end_value: 0.0,
            transition_steps: 10,
            transition_begin: 2,
        },
        Schedule::Polynomial {
            init_value: 0.1,
            end_value: 0.01,
            power: 2.0,
            transition_steps: 10,
            transition_begin: 0,
        },
        Schedule::ExponentialDecay {
            init_value: 0.1,
            transition_steps: 5,
            decay_rate: 0.5,
            transition_begin: 1,
            staircase: true,
            end_value: Some(0.001),
        },
        Schedule::CosineDecay {
            init_value: 0.1,
            decay_steps: 20,
            alpha: 0.1,
            exponent: 1.0,
        },
        Schedule::WarmupCosineDecay {
            init_value: 0.0,
            peak_value: 0.1,
            warmup_steps: 3,
            decay_steps: 30,
            end_value: 0.001,
            exponent: 1.0,
        },
        Schedule::WarmupExponentialDecay {
            init_value: 0.0,
            peak_value: 0.1,
            warmup_steps: 3,
            transition_steps: 4,
            decay_rate: 0.9,
            transition_begin: 0,
            staircase: false,
            end_value: None,
        },
        Schedule::PiecewiseConstant {
            init_value: 0.1,
            boundaries_and_scales: vec![(2, 0.5), (5, 0.1), (9, 2.0)],
        },
    ];
    let join = Schedule::Join {
        schedules: vec![scheds[1].clone(), scheds[7].clone(), scheds[4].clone()],
        boundaries: vec![3, 8],
    };
    let mut nested = scheds[0].clone();
    for _ in 0..5 {
        nested = Schedule::Join {
            schedules: vec![nested.clone(), scheds[2].clone()],
            boundaries: vec![4],
        };
    }
    let mut out = Vec::new();
    let mut k = 0usize;
    let mut push = |name: String, bytes: Vec<u8>, out: &mut Vec<(String, Vec<u8>)>| {
        // Mode 1 (repair the frame) for most; mode 0 (raw) and mode 3 for some.
        let mode = [1u8, 1, 3, 0][k % 4];
        k += 1;
        let mut v = vec![mode];
        v.extend_from_slice(&bytes);
        out.push((name, v));
    };
    for (li, &(dt, sizes)) in LAYOUTS.iter().enumerate() {
        let lrs: Vec<LearningRate> = std::iter::once(LearningRate::Fixed(0.01))
            .chain(scheds.iter().cloned().map(LearningRate::Schedule))
            .chain([
                LearningRate::Schedule(join.clone()),
                LearningRate::Schedule(nested.clone()),
            ])
            .collect();
        for (si, lr) in lrs.into_iter().enumerate() {
            let mut c = Config::new(lr);
            // Vary the flags with the schedule index.
            c.centered = si % 2 == 1;
            c.momentum = (si % 3 != 0).then_some(0.9);
            c.nesterov = si % 4 == 2;
            c.bias_correction = si % 5 == 1;
            c.eps_in_sqrt = si % 3 != 2;
            c.initial_scale = if si % 2 == 0 { 0.0 } else { 1.0 };
            let skip = si % 4 == 3;
            let bytes = if dt == RMSPROP_DTYPE_F32 {
                seed_bytes::<f32>(c, sizes, skip, si)
            } else {
                seed_bytes::<f64>(c, sizes, skip, si)
            };
            push(format!("seed-l{li}-s{si}"), bytes, &mut out);
        }
    }
    out
}

fn seed_bytes<T: checkpoint::Element + Elem + rmsprop::Real>(
    c: Config,
    sizes: &[usize],
    skip: bool,
    steps: usize,
) -> Vec<u8> {
    let mut opt = Optimizer::<T>::new(c, sizes).expect("seed optimizer");
    opt.set_skip_non_finite(skip);
    let n = opt.layout().total();
    let mut p: Vec<T> = (0..n).map(|i| Elem::from_f64(i as f64 * 0.1)).collect();
    for s in 0..steps % 4 {
        let g: Vec<T> = (0..n)
            .map(|i| Elem::from_f64((i as f64 - 2.0) * (s as f64 + 1.0)))
            .collect();
        let _ = opt.step(&mut p, &g).expect("seed step");
    }
    if skip && n > 0 {
        let mut g = vec![Elem::from_f64(0.0); n];
        g[0] = Elem::from_f64(f64::NAN);
        let _ = opt.step(&mut p, &g).expect("seed skip");
    }
    checkpoint::encode(&opt)
}

/// Hand-written programs for the `c_api_sequence` seeds.
pub fn c_api_seeds() -> Vec<(String, Vec<u8>)> {
    use Op::*;
    fn p(ops: &[(Op, &[u8])]) -> Vec<u8> {
        program(ops)
    }
    let progs: Vec<(&str, Vec<u8>)> = vec![
        (
            "steps-f32",
            p(&[
                (Flat, &[0, 0, 0, 5, 9, 0, 2, 0x11]),
                (Flat, &[0, 0, 2, 5, 9, 2, 1, 2]),
            ]),
        ),
        (
            "create-f64-step-list",
            p(&[
                (OptionsNew, &[8]),
                (OptionsSet, &[1, 0, 6, 0, 1]),
                (OptionsSet, &[1, 0, 7, 5]),
                (Create, &[1, 0, 3, 3, 0x70, 0x10, 0x00, 0, 4, 5, 1]),
                (List, &[1, 1, 0, 5, 0, 2, 7, 1, 1, 1, 9, 9]),
                (Twin, &[1, 2, 5, 2, 1, 5, 2]),
                (Checkpoint, &[1, 4, 0, 1]),
            ]),
        ),
        (
            "schedules",
            p(&[
                (ScheduleNew, &[1, 1, 9, 0, 6, 2, 1]),
                (ScheduleNew, &[4, 1, 9, 7, 0, 2]),
                (ScheduleNew, &[7, 1, 9, 1, 2, 1, 4, 5, 2, 3, 9, 2]),
                (ScheduleJoin, &[1, 3, 0, 1, 2, 1, 1, 5, 7]),
                (OptionsNew, &[8]),
                (OptionsSet, &[0, 1, 1, 3]),
                (Create, &[0, 0, 2, 3, 4, 0, 5, 1]),
                (Flat, &[0, 1, 2, 5, 9, 3, 3, 0]),
                (Hyper, &[0, 0, 5, 1, 1]),
                (Counts, &[0, 0, 6, 7]),
                (Reset, &[0]),
            ]),
        ),
        (
            "state-and-threads",
            p(&[
                (SetState, &[0, 1, 0, 2, 2, 2, 1, 0, 4]),
                (GetState, &[0, 1, 0, 2, 2, 2]),
                (Threads, &[0, 4]),
                (Twin, &[0, 0, 3, 2, 0, 2]),
                (Queries, &[0, 1, 3, 0, 4]),
                (Nulls, &[27, 0]),
            ]),
        ),
        ("deep-join", p(&[(ScheduleJoin, &[0, 0, 70])])),
    ];
    progs
        .into_iter()
        .map(|(n, v)| (format!("seed-{n}"), v))
        .collect()
}
