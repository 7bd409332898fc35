//! [`Optimizer8bit`]: optax.rmsprop for `f32` parameters with 8-bit block-wise state.

use rayon::prelude::*;

use super::{BLOCK_256, BLOCK_2048, MIN_8BIT_SIZE, MapKind, QTensor, QuantMap, Rounding};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::kernel::q8::{QBuf, QBufs, QSpec, run_blocks};
use crate::kernel::split::SEQUENTIAL_BELOW;
use crate::kernel::{self, Bufs, Coeffs, KernelFn, Mode, Variant};
use crate::optimizer::{Component, Counts, Layout, step_coeffs};

/// How an [`Optimizer8bit`] stores its state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Q8Options {
    /// Elements per block: [`BLOCK_256`] (bitsandbytes' optimizers) or [`BLOCK_2048`].
    pub block: usize,
    /// The map of `nu`: [`MapKind::Unsigned`] by default (twice the resolution of the
    /// signed map; `nu` is never negative). bitsandbytes' `RMSprop8bit` uses
    /// [`MapKind::Signed`] for its `nu`; choose it to exchange state with it.
    pub nu_map: MapKind,
    /// How `nu` is rounded: [`Rounding::Up`] by default, so that no positive `nu` becomes
    /// 0 or shrinks (a `nu` rounded to 0 would turn the step into `lr * g / eps`), and,
    /// with `mu` rounded toward zero, the centered variance `nu - mu^2` is never smaller
    /// than from the exact values (rounded to nearest, it goes negative, giving NaN, for
    /// elements whose variance is small next to their block's `nu`). The price: `nu` is
    /// overestimated by at most one code gap, steps are smaller by at most half that.
    /// [`Rounding::Nearest`] or [`Rounding::BitsandbytesCpu`] (what bitsandbytes does) on
    /// request.
    pub nu_rounding: Rounding,
    /// How `mu` is rounded: [`Rounding::TowardZero`] by default (see `nu_rounding`).
    pub mu_rounding: Rounding,
    /// How `trace` is rounded: [`Rounding::Nearest`] by default.
    pub trace_rounding: Rounding,
    /// Tensors with fewer elements keep `f32` state ([`MIN_8BIT_SIZE`] by default,
    /// bitsandbytes' `min_8bit_size`).
    pub min_8bit_size: usize,
}

impl Default for Q8Options {
    fn default() -> Self {
        Q8Options {
            block: BLOCK_256,
            nu_map: MapKind::Unsigned,
            nu_rounding: Rounding::Up,
            mu_rounding: Rounding::TowardZero,
            trace_rounding: Rounding::Nearest,
            min_8bit_size: MIN_8BIT_SIZE,
        }
    }
}

/// The state of one tensor.
#[derive(Clone, Debug)]
enum TensorState {
    /// Small tensors: `f32`, exactly as [`crate::Optimizer`] keeps it.
    F32 {
        nu: Vec<f32>,
        mu: Vec<f32>,
        trace: Vec<f32>,
    },
    /// Quantized.
    Q8 {
        nu: QTensor,
        mu: Option<QTensor>,
        trace: Option<QTensor>,
    },
}

/// Blocks per parallel task (of one tensor).
const TASK_BLOCKS: usize = 64;

/// A piece of work: whole blocks of a quantized tensor, or a small `f32` tensor.
enum Unit<'a> {
    Q8(QBufs<'a>),
    F32(Bufs<'a, f32>),
}

/// A quantized tensor cut into tasks of [`TASK_BLOCKS`] blocks (`step` elements).
fn qbufs(q: &mut QTensor, step: usize) -> Vec<QBuf<'_>> {
    q.codes
        .chunks_mut(step)
        .zip(q.absmax.chunks_mut(TASK_BLOCKS))
        .map(|(codes, absmax)| QBuf { codes, absmax })
        .collect()
}

/// optax.rmsprop for `f32` parameters, with `nu`, `mu` and `trace` stored block-wise in
/// 8 bits ([`crate::quant`]): one byte per element and state buffer, plus 4 bytes per block.
///
/// Each step is the arithmetic of [`crate::Optimizer`]`<f32>` applied to the dequantized
/// state (the same kernel, bit for bit: `tests` check it), followed by requantization.
/// Every optax configuration is supported (centered, momentum, nesterov, schedules, bias
/// correction). Results are bit-identical for any thread count.
///
/// Non-finite state values are not representable: a NaN or infinite `nu`, `mu` or `trace`
/// element (which optax would keep forever) is not reproduced.
pub struct Optimizer8bit {
    config: Config,
    layout: Layout,
    opts: Q8Options,
    tensors: Vec<TensorState>,
    counts: Counts,
    variant: Variant,
    pool: Option<rayon::ThreadPool>,
    sequential: bool,
}

impl std::fmt::Debug for Optimizer8bit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Optimizer8bit")
            .field("config", &self.config)
            .field("layout", &self.layout)
            .field("opts", &self.opts)
            .finish_non_exhaustive()
    }
}

fn check_len(what: &'static str, expected: usize, got: usize) -> Result<()> {
    if expected == got {
        Ok(())
    } else {
        Err(Error::LengthMismatch {
            what,
            expected,
            got,
        })
    }
}

impl Optimizer8bit {
    /// optax `init` over tensors of `sizes` elements, with 8-bit state as `opts` says.
    pub fn new(config: Config, sizes: &[usize], opts: Q8Options) -> Result<Self> {
        config.validate()?;
        if opts.block != BLOCK_256 && opts.block != BLOCK_2048 {
            return Err(Error::InvalidHyperparameter {
                name: "block",
                rule: "256 or 2048",
                value: opts.block as f64,
            });
        }
        let layout = Layout::new(sizes)?;
        let mut o = Optimizer8bit {
            variant: Variant {
                centered: config.centered,
                eps_in_sqrt: config.eps_in_sqrt,
                momentum: config.momentum.is_some(),
                nesterov: config.nesterov,
                bias_correction: config.bias_correction,
            },
            config,
            layout,
            opts,
            tensors: Vec::new(),
            counts: Counts::default(),
            pool: None,
            sequential: false,
        };
        o.reset();
        Ok(o)
    }

    /// Back to the initial state: `nu = initial_scale`, `mu = trace = 0`, counts 0.
    pub fn reset(&mut self) {
        let c = &self.config;
        let (nu_map, signed) = (QuantMap::of(self.opts.nu_map), QuantMap::signed());
        let o = self.opts;
        let bs = o.block;
        let init = c.initial_scale as f32;
        self.tensors = self
            .layout
            .sizes()
            .iter()
            .map(|&n| {
                if n < self.opts.min_8bit_size {
                    TensorState::F32 {
                        nu: vec![init; n],
                        mu: if c.centered { vec![0.0; n] } else { vec![] },
                        trace: if c.momentum.is_some() {
                            vec![0.0; n]
                        } else {
                            vec![]
                        },
                    }
                } else {
                    TensorState::Q8 {
                        nu: QTensor::filled(nu_map, o.nu_rounding, bs, n, init),
                        mu: c
                            .centered
                            .then(|| QTensor::filled(signed, o.mu_rounding, bs, n, 0.0)),
                        trace: c
                            .momentum
                            .map(|_| QTensor::filled(signed, o.trace_rounding, bs, n, 0.0)),
                    }
                }
            })
            .collect();
        self.counts = Counts::default();
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The layout.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The quantization options.
    pub fn options(&self) -> &Q8Options {
        &self.opts
    }

    /// The counts.
    pub fn counts(&self) -> Counts {
        self.counts
    }

    /// Set the counts (for resuming).
    pub fn set_counts(&mut self, counts: Counts) {
        self.counts = counts;
    }

    /// Where steps run: `0` rayon's global pool (default), `1` the caller's thread, `n`
    /// an owned pool of `n` threads. Results are identical for every choice.
    pub fn set_threads(&mut self, n: usize) -> Result<()> {
        match n {
            0 => {
                self.pool = None;
                self.sequential = false;
            }
            1 => {
                self.pool = None;
                self.sequential = true;
            }
            _ => {
                let p = rayon::ThreadPoolBuilder::new()
                    .num_threads(n)
                    .build()
                    .map_err(|e| Error::ThreadPool {
                        threads: n,
                        reason: e.to_string(),
                    })?;
                self.pool = Some(p);
                self.sequential = false;
            }
        }
        Ok(())
    }

    /// Whether tensor `i` keeps quantized state (`false`: `f32`, it is below
    /// `min_8bit_size`).
    pub fn is_quantized(&self, i: usize) -> Result<bool> {
        match self.tensors.get(i) {
            Some(t) => Ok(matches!(t, TensorState::Q8 { .. })),
            None => Err(Error::TensorOutOfRange {
                index: i,
                count: self.tensors.len(),
            }),
        }
    }

    /// The quantized buffer of a state component of tensor `i` (codes and absmax, in
    /// bitsandbytes' layout), or `None` when that tensor keeps `f32` state.
    pub fn quantized(&self, c: Component, i: usize) -> Result<Option<&QTensor>> {
        self.check_component(c)?;
        let t = self.tensors.get(i).ok_or(Error::TensorOutOfRange {
            index: i,
            count: self.tensors.len(),
        })?;
        Ok(match t {
            TensorState::F32 { .. } => None,
            TensorState::Q8 { nu, mu, trace } => match c {
                Component::Nu => Some(nu),
                Component::Mu => mu.as_ref(),
                Component::Trace => trace.as_ref(),
            },
        })
    }

    /// Replace the quantized buffer of a state component of tensor `i` (for example state
    /// from bitsandbytes, or from a checkpoint): `q` must have one code per element and
    /// one absmax per block. Nothing changes on error; a tensor with `f32` state is
    /// refused (`NoSuchState`): set it with [`Optimizer8bit::set_state`].
    pub fn set_quantized(&mut self, c: Component, i: usize, q: QTensor) -> Result<()> {
        self.check_component(c)?;
        let count = self.tensors.len();
        let bs = self.opts.block;
        let t = self
            .tensors
            .get_mut(i)
            .ok_or(Error::TensorOutOfRange { index: i, count })?;
        let slot = match t {
            TensorState::F32 { .. } => {
                return Err(Error::NoSuchState(
                    "quantized",
                    "tensors of min_8bit_size elements or more",
                ));
            }
            TensorState::Q8 { nu, mu, trace } => match c {
                Component::Nu => nu,
                Component::Mu => mu.as_mut().expect("checked"),
                Component::Trace => trace.as_mut().expect("checked"),
            },
        };
        let n = slot.codes.len();
        check_len("codes", n, q.codes.len())?;
        check_len("absmax", n.div_ceil(bs), q.absmax.len())?;
        *slot = q;
        Ok(())
    }

    fn check_component(&self, c: Component) -> Result<()> {
        match c {
            Component::Mu if !self.config.centered => Err(Error::NoSuchState("mu", "centered")),
            Component::Trace if self.config.momentum.is_none() => {
                Err(Error::NoSuchState("trace", "momentum"))
            }
            _ => Ok(()),
        }
    }

    fn rounding_of(&self, c: Component) -> Rounding {
        match c {
            Component::Nu => self.opts.nu_rounding,
            Component::Mu => self.opts.mu_rounding,
            Component::Trace => self.opts.trace_rounding,
        }
    }

    fn map_of(&self, c: Component) -> &'static QuantMap {
        match c {
            Component::Nu => QuantMap::of(self.opts.nu_map),
            _ => QuantMap::signed(),
        }
    }

    /// A state component over the whole layout, dequantized to `f32`.
    pub fn state(&self, c: Component) -> Result<Vec<f32>> {
        self.check_component(c)?;
        let map = self.map_of(c);
        let mut out = Vec::with_capacity(self.layout.total());
        for t in &self.tensors {
            match t {
                TensorState::F32 { nu, mu, trace } => out.extend_from_slice(match c {
                    Component::Nu => nu,
                    Component::Mu => mu,
                    Component::Trace => trace,
                }),
                TensorState::Q8 { nu, mu, trace } => {
                    let q = match c {
                        Component::Nu => Some(nu),
                        Component::Mu => mu.as_ref(),
                        Component::Trace => trace.as_ref(),
                    };
                    out.extend(q.expect("checked").values(map, self.opts.block));
                }
            }
        }
        Ok(out)
    }

    /// Set a state component over the whole layout from `f32` values (quantized where
    /// the tensor is).
    pub fn set_state(&mut self, c: Component, values: &[f32]) -> Result<()> {
        self.check_component(c)?;
        check_len(c.name(), self.layout.total(), values.len())?;
        let map = self.map_of(c);
        let (r, bs) = (self.rounding_of(c), self.opts.block);
        for (t, off) in self.tensors.iter_mut().zip(self.layout.offsets()) {
            match t {
                TensorState::F32 { nu, mu, trace } => {
                    let dst = match c {
                        Component::Nu => nu,
                        Component::Mu => mu,
                        Component::Trace => trace,
                    };
                    let n = dst.len();
                    dst.copy_from_slice(&values[*off..off + n]);
                }
                TensorState::Q8 { nu, mu, trace } => {
                    let q = match c {
                        Component::Nu => Some(nu),
                        Component::Mu => mu.as_mut(),
                        Component::Trace => trace.as_mut(),
                    }
                    .expect("checked");
                    let n = q.codes.len();
                    map.quantize(r, bs, &values[*off..off + n], &mut q.codes, &mut q.absmax);
                }
            }
        }
        Ok(())
    }

    /// Bytes of state held (codes, absmax, and `f32` state of small tensors).
    pub fn state_bytes(&self) -> usize {
        let q = |t: &QTensor| t.codes.len() + 4 * t.absmax.len();
        self.tensors
            .iter()
            .map(|t| match t {
                TensorState::F32 { nu, mu, trace } => 4 * (nu.len() + mu.len() + trace.len()),
                TensorState::Q8 { nu, mu, trace } => {
                    q(nu) + mu.as_ref().map_or(0, q) + trace.as_ref().map_or(0, q)
                }
            })
            .sum()
    }

    fn run(&mut self, mode: Mode, grads: &[f32], dst: &mut [f32]) {
        let (k, next): (Coeffs<f32>, Counts) = step_coeffs(&self.config, self.counts);
        let f: KernelFn<f32> = kernel::select::<f32>(self.variant, mode);
        let spec = QSpec {
            block: self.opts.block,
            nu_map: QuantMap::of(self.opts.nu_map),
            signed_map: QuantMap::signed(),
            nu_rounding: self.opts.nu_rounding,
            mu_rounding: self.opts.mu_rounding,
            trace_rounding: self.opts.trace_rounding,
        };
        let total = self.layout.total();
        let mut units: Vec<Unit<'_>> = Vec::new();
        let mut grads = grads;
        let mut dst = dst;
        let bs = self.opts.block;
        for t in self.tensors.iter_mut() {
            let n = match t {
                TensorState::F32 { nu, .. } => nu.len(),
                TensorState::Q8 { nu, .. } => nu.codes.len(),
            };
            let (g, grest) = if grads.is_empty() {
                (&[][..], &[][..])
            } else {
                grads.split_at(n)
            };
            grads = grest;
            let (d, drest) = std::mem::take(&mut dst).split_at_mut(n);
            dst = drest;
            match t {
                TensorState::F32 { nu, mu, trace } => units.push(Unit::F32(Bufs {
                    grads: g,
                    dst: d,
                    nu,
                    mu,
                    trace,
                })),
                TensorState::Q8 { nu, mu, trace } => {
                    let step = TASK_BLOCKS * bs;
                    let qb = |q| qbufs(q, step);
                    let nus = qb(nu);
                    let mut mus = mu.as_mut().map(qb).map(Vec::into_iter);
                    let mut trs = trace.as_mut().map(qb).map(Vec::into_iter);
                    let gs: Vec<&[f32]> = if g.is_empty() {
                        vec![&[]; nus.len()]
                    } else {
                        g.chunks(step).collect()
                    };
                    for ((qn, gc), dc) in nus.into_iter().zip(gs).zip(d.chunks_mut(step)) {
                        units.push(Unit::Q8(QBufs {
                            grads: gc,
                            dst: dc,
                            nu: qn,
                            mu: mus.as_mut().and_then(Iterator::next),
                            trace: trs.as_mut().and_then(Iterator::next),
                        }));
                    }
                }
            }
        }
        let work = |u: Unit<'_>| match u {
            Unit::Q8(b) => run_blocks(f, &k, &spec, b),
            Unit::F32(b) => {
                let _env = crate::kernel::fpenv::KernelEnv::enter();
                f(&k, b)
            }
        };
        if self.sequential || total < SEQUENTIAL_BELOW {
            units.into_iter().for_each(work);
        } else if let Some(p) = &self.pool {
            p.install(|| units.into_par_iter().for_each(work));
        } else {
            units.into_par_iter().for_each(work);
        }
        self.counts = next;
    }

    /// optax `update`: `updates` receives the updates.
    pub fn update(&mut self, grads: &[f32], updates: &mut [f32]) -> Result<()> {
        check_len("grads", self.layout.total(), grads.len())?;
        check_len("updates", self.layout.total(), updates.len())?;
        self.run(Mode::Update, grads, updates);
        Ok(())
    }

    /// optax `update` with the updates written over the gradients.
    pub fn update_in_place(&mut self, grads_then_updates: &mut [f32]) -> Result<()> {
        check_len("grads", self.layout.total(), grads_then_updates.len())?;
        self.run(Mode::UpdateInPlace, &[], grads_then_updates);
        Ok(())
    }

    /// optax `update` + `apply_updates`, fused: `params += update`.
    pub fn step(&mut self, params: &mut [f32], grads: &[f32]) -> Result<()> {
        check_len("params", self.layout.total(), params.len())?;
        check_len("grads", self.layout.total(), grads.len())?;
        self.run(Mode::Step, grads, params);
        Ok(())
    }
}
