//! The `c_api_sequence` program: its context (live options, schedules, handles), the
//! operations, decoding a program and dispatching each operation.

use super::*;

pub(crate) struct Opts {
    pub(crate) p: *mut RmspropOptions,
    pub(crate) config: Config,
    pub(crate) skip: bool,
}

pub(crate) struct Sched {
    pub(crate) p: *mut RmspropSchedule,
    pub(crate) model: Schedule,
}

pub(crate) struct Handle {
    pub(crate) p: *mut RmspropOptimizer,
    pub(crate) dtype: i32,
    pub(crate) sizes: Vec<usize>,
}

impl Handle {
    pub(crate) fn total(&self) -> usize {
        self.sizes.iter().sum()
    }
}

#[derive(Default)]
pub(crate) struct Ctx {
    pub(crate) opts: Vec<Opts>,
    pub(crate) scheds: Vec<Sched>,
    pub(crate) hs: Vec<Handle>,
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

pub(crate) fn depth(s: &Schedule) -> usize {
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

pub(crate) const OPS: [Op; 20] = [
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

pub(crate) fn run_program(data: &[u8]) {
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
    pub(crate) fn run(&mut self, op: Op, b: &mut Bytes<'_>) {
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
                        let bad = [0, 5, -1, i32::MAX, i32::MIN][b.below(5)];
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
}
